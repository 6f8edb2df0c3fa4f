//! Watching a sweep: how many trials stand where, waiting for a submitted cluster job's trials
//! to end, and the launcher a cluster worker runs.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::local::{LaunchOutcome, Local};
use crate::store::{Manifest, Status, Store, TrialState};

/// How often [`wait`] looks at the store.
const POLL: Duration = Duration::from_millis(500);

/// How many of a sweep's trials stand where.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Not started, or their last attempt died without a result.
    pub pending: usize,
    /// Claimed by a live owner.
    pub running: usize,
    /// Trained to the end.
    pub done: usize,
    /// Stopped by the pruner.
    pub pruned: usize,
    /// Their last attempt failed.
    pub failed: usize,
}

impl Counts {
    /// The counts of `manifest`'s trials in `store`, now.
    pub fn of(store: &Store, manifest: &Manifest) -> Self {
        let mut c = Self::default();
        for t in &manifest.trials {
            let slot = match store.state(&t.id) {
                TrialState::Pending => &mut c.pending,
                TrialState::Running(_) => &mut c.running,
                TrialState::Ended(r) => match r.status {
                    Status::Done => &mut c.done,
                    Status::Pruned => &mut c.pruned,
                    Status::Failed => &mut c.failed,
                },
            };
            *slot += 1;
        }
        c
    }

    /// Trials that have not ended (pending or running).
    pub fn unfinished(&self) -> usize {
        self.pending + self.running
    }
}

/// How [`wait`] ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WaitOutcome {
    /// Every trial has ended.
    Ended(LaunchOutcome),
    /// The job has left the queue with this many trials not run (`--resume` submits them).
    LeftQueue(usize),
}

/// Waits for the trials of Slurm job `job`: until every trial of `manifest` has ended, or the
/// job has left the queue with trials still pending. `progress` hears the counts whenever they
/// change, with the seconds since the wait began.
pub fn wait(store: &Store, manifest: &Manifest, job: &str, mut progress: impl FnMut(&Counts, f64)) -> WaitOutcome {
    let start = Instant::now();
    let mut last = None;
    loop {
        let c = Counts::of(store, manifest);
        if last != Some(c) {
            progress(&c, start.elapsed().as_secs_f64());
            last = Some(c);
        }
        if c.unfinished() == 0 {
            let (done, pruned, failed) = (c.done, c.pruned, c.failed);
            let submitted = Some(job.to_owned());
            return WaitOutcome::Ended(LaunchOutcome { done, pruned, failed, skipped: 0, submitted });
        }
        if c.running == 0 && !in_queue(job) {
            // Re-check: a task may have ended between the two looks.
            let c = Counts::of(store, manifest);
            if c.unfinished() > 0 {
                return WaitOutcome::LeftQueue(c.unfinished());
            }
        }
        std::thread::sleep(POLL);
    }
}

/// Whether any task of Slurm job `job` is still pending or running.
fn in_queue(job: &str) -> bool {
    std::process::Command::new("squeue")
        .args(["-h", "-j", job, "-t", "PENDING,RUNNING,CONFIGURING,COMPLETING,REQUEUED", "-o", "%i"])
        .output()
        .is_ok_and(|o| o.status.success() && !String::from_utf8_lossy(&o.stdout).trim().is_empty())
}

/// The launcher a cluster worker runs (`kindling sweep --worker DIR`): the local claim loop,
/// one trial at a time, with the CPUs the scheduler gave (`SLURM_CPUS_PER_TASK`, else every
/// core) and the scheduler's job recorded in its claims (a Slurm array task, a Slurm job or a
/// Kubernetes completion index).
pub fn cluster_worker(exe: PathBuf) -> Local {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let job = match (env("SLURM_ARRAY_JOB_ID"), env("SLURM_ARRAY_TASK_ID")) {
        (Some(j), Some(t)) => Some(format!("{j}_{t}")),
        _ => env("SLURM_JOB_ID").or_else(|| env("JOB_COMPLETION_INDEX").map(|i| format!("k8s-{i}"))),
    };
    let threads = env("SLURM_CPUS_PER_TASK")
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    Local { exe, parallel: 1, threads_per_trial: threads, job }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::manifest;
    use crate::store::{TrialResult, hostname};

    fn end(store: &Store, id: &str, status: Status) {
        let claim = store.try_claim(id, None).unwrap().unwrap();
        let host = hostname().to_owned();
        let result = TrialResult { status, metric: None, epochs: 1, seconds: 1.0, attempt: 0, host, error: None };
        assert!(claim.finish(result).unwrap());
    }

    #[test]
    fn trials_are_counted_by_where_they_stand_and_waiting_ends_when_all_have_ended() {
        let dir = std::env::temp_dir().join(format!("kindling-supervise-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let m = manifest(&["a", "b", "c", "d", "e"]);
        let configs: Vec<String> = m.trials.iter().map(|t| format!("# {}\n", t.id)).collect();
        let store = Store::create(&dir, &m, &configs).unwrap();
        end(&store, "a", Status::Done);
        end(&store, "b", Status::Failed);
        end(&store, "c", Status::Pruned);
        let running = store.try_claim("d", None).unwrap().unwrap();
        let c = Counts::of(&store, &m);
        assert_eq!(c, Counts { pending: 1, running: 1, done: 1, pruned: 1, failed: 1 });
        assert_eq!(c.unfinished(), 2);

        let host = hostname().to_owned();
        let done =
            TrialResult { status: Status::Done, metric: None, epochs: 1, seconds: 1.0, attempt: 0, host, error: None };
        assert!(running.finish(done).unwrap());
        end(&store, "e", Status::Done);
        let mut heard = Vec::new();
        let outcome = wait(&store, &m, "17", |c, _| heard.push(*c));
        let expected = LaunchOutcome { done: 3, pruned: 1, failed: 1, skipped: 0, submitted: Some("17".into()) };
        assert_eq!(outcome, WaitOutcome::Ended(expected));
        assert_eq!(heard, [Counts { pending: 0, running: 0, done: 3, pruned: 1, failed: 1 }]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
