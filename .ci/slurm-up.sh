#!/usr/bin/env bash
# Starts a real single-node Slurm cluster on localhost, without systemd, for the Slurm
# launcher's tests: munged on a private socket, slurmctld and slurmd, one partition `debug`.
#
#   eval "$(.ci/slurm-up.sh [state-dir])"    # prints the exports the tests need
#
# Installs slurmctld, slurmd, slurm-client and munge with apt-get when they are missing.
# Everything (key, sockets, state, logs) lives under the state dir (default /tmp/kindling-slurm).
set -euo pipefail
DIR=${1:-/tmp/kindling-slurm}
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    slurmctld slurmd slurm-client munge >&2
fi
# A cluster left over from an earlier call: stop it first.
for pidfile in "$DIR/slurmctld.pid" "$DIR/slurmd.pid" "$DIR/munge/munged.pid"; do
  [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
done
sleep 0.5
rm -rf "$DIR"
mkdir -p "$DIR"/{state,spool,log,munge}
chmod 700 "$DIR/munge"

dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$DIR/munge/munge.key"
munged --force --key-file="$DIR/munge/munge.key" --socket="$DIR/munge/socket" \
  --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/seed"

HOST=$(hostname -s)
NODE=$(slurmd -C | head -n 1 | sed "s/^NodeName=[^ ]*/NodeName=localhost NodeAddr=127.0.0.1/")
cat > "$DIR/slurm.conf" <<CONF
ClusterName=kindling
SlurmctldHost=$HOST(127.0.0.1)
AuthType=auth/munge
CredType=cred/munge
# A short credential lifetime also shortens the delay before a requeued job can start.
AuthInfo=socket=$DIR/munge/socket,cred_expire=10
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MailProg=/bin/true
ReturnToService=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=batch_sched_delay=0,sched_interval=1,bf_interval=1
# No slurmdbd here: finished jobs are kept in slurmctld's memory and a text file instead.
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.txt
MinJobAge=3600
$NODE
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$DIR/slurm.conf"
slurmctld
slurmd -N localhost
for _ in $(seq 1 60); do
  if [ "$(sinfo -h -o %t 2>/dev/null)" = "idle" ]; then
    echo "export SLURM_CONF=$SLURM_CONF"
    echo "export KINDLING_REQUIRE_SLURM=1"
    exit 0
  fi
  sleep 0.5
done
echo "slurm did not come up; logs in $DIR/log" >&2
tail -n 20 "$DIR"/log/*.log >&2
exit 1
