//! The trial store: a sweep directory on a (possibly shared) file system that says, for every
//! trial, whether it is pending, running, finished or failed, so any number of workers on any
//! number of hosts can resume a sweep without running a finished trial twice.
//!
//! ```text
//! <sweep>/sweep.json               the sweep as created: pipeline, spec, every trial's id and values
//! <sweep>/events.log               append-only: claim, done, failed, pruned, lost-lease, with host and pid
//! <sweep>/trials/<id>/config.yaml  the trial's resolved pipeline; `kindling run` repeats it
//! <sweep>/trials/<id>/claim.<n>    attempt n's claim: host, pid, job; its mtime is the lease heartbeat
//! <sweep>/trials/<id>/ended.<n>    attempt n has ended (its result was recorded)
//! <sweep>/trials/<id>/result.json  written once an attempt ends (atomically): done, failed or pruned
//! <sweep>/trials/<id>/failed.<n>.json  a failed attempt's result, set aside by `--resume`
//! <sweep>/trials/<id>/run/         the run directory (history.csv, metrics.json, confusion_*.csv, ...)
//! <sweep>/trials/<id>/log.txt      the trial process's output
//! <sweep>/suggestions/<k>.json     `search: tpe`: trial k's values, id and how they were decided
//! ```
//!
//! **Suggestions** (`search: tpe`). A TPE sweep's manifest lists no trials: trial `k`'s values
//! are decided when a worker first comes to it, from the results recorded at that moment, and
//! recorded as `suggestions/<k>.json` before it is claimed. The record is written to a
//! temporary file and hard-linked into place, which, like `create_new`, fails when the name
//! exists (on NFS too): of several workers suggesting trial `k` at once one record wins and
//! every worker runs the trial it names. Its configuration is written before the record, so a
//! recorded trial always has one. [`Store::open`] lists the recorded suggestions as the
//! manifest's trials, so reports, `--status` and `--resume` see them as any other trial, and
//! a resumed sweep runs exactly the values first suggested.
//!
//! A trial's id is a hash of its resolved configuration, so the same configuration is the same
//! trial however the sweep is listed.
//!
//! **Claims.** Attempt `n` of a trial is claimed by creating `claim.<n>` with `O_CREAT|O_EXCL`
//! (`create_new`): of several workers racing for the same attempt exactly one succeeds. That
//! operation is atomic on local file systems and on NFSv3 and later (the client sends an
//! exclusive CREATE to the server), which is why the store relies on it and on `rename`, and not
//! on `flock`/`fcntl` locks, whose NFS support depends on lockd. A claim is live while its
//! owner heartbeats it (touches its mtime, every [`HEARTBEAT`]) and has not finished. A claim
//! whose mtime is older than the lease, or whose owner process is gone from this host, is stale:
//! the next worker claims attempt `n + 1`. An owner finishing an attempt checks that no later
//! attempt was claimed before it records its result, so at most one attempt of a trial records
//! a completion. `--resume` sets failed results aside ([`Store::reset_failed`]), which makes
//! those trials pending again; done and pruned trials are never run again.
//!
//! (Over 450 lines: the store's layout, claims and leases form one protocol that must be read
//! whole; 156 of its lines are its tests.)

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use kindling_core::hostname;
use kindling_core::{DeviceChoice, write_atomic};
use serde::{Deserialize, Serialize};

use crate::spec::{Search, SweepSpec, TrialSpec};

/// How often a live owner touches its claim.
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// A claim not touched for this long is stale (six missed heartbeats; NFS attribute caching
/// delays what another host sees by up to a minute at worst, still well inside it).
pub const LEASE: Duration = Duration::from_secs(120);

/// What went wrong with the store: always names the file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct StoreError {
    /// The file or directory.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

impl StoreError {
    fn io(path: &Path, e: std::io::Error) -> Self {
        Self { path: path.to_owned(), message: e.to_string() }
    }
}

/// `sweep.json`: the sweep as created.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout version of the store.
    pub version: u32,
    /// The pipeline file (absolute).
    pub pipeline: PathBuf,
    /// The pipeline's name.
    pub name: String,
    /// Overrides applied to every trial (`kindling sweep --set ...`).
    pub base_overrides: Vec<String>,
    /// The sweep block, resolved.
    pub spec: SweepSpec,
    /// Every trial, in expansion order.
    pub trials: Vec<TrialEntry>,
    /// The device the trials ask for: the first trial's (they share it unless the sweep varies
    /// it); `auto` in sweeps created before it was recorded.
    #[serde(default)]
    pub device: DeviceChoice,
}

/// A trial of the manifest.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrialEntry {
    /// Hash of the resolved configuration (16 hex digits).
    pub id: String,
    /// The values it sets.
    #[serde(flatten)]
    pub spec: TrialSpec,
}

/// `suggestions/<k>.json`: a TPE trial's values, decided when it was first reached.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Suggestion {
    /// The trial.
    #[serde(flatten)]
    pub entry: TrialEntry,
    /// How the values were decided: `random (startup)` or `tpe` with the history's size.
    pub how: String,
}

/// How an attempt of a trial ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Trained to the end; the metric is its final (kept) value.
    Done,
    /// Stopped early by the pruner; the metric is its best value so far.
    Pruned,
    /// The trial's process failed; `error` says why.
    Failed,
}

/// `result.json`: how a trial's attempt ended.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrialResult {
    /// How it ended.
    pub status: Status,
    /// The sweep's metric, when the trial measured it.
    pub metric: Option<f64>,
    /// Epochs trained.
    pub epochs: usize,
    /// Wall-clock seconds of the attempt.
    pub seconds: f64,
    /// The attempt number (the claim it ran under).
    pub attempt: u32,
    /// The host it ran on.
    pub host: String,
    /// Why it failed or was pruned.
    pub error: Option<String>,
}

/// Contents of a claim file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClaimInfo {
    /// Host of the owner.
    pub host: String,
    /// Process id of the owner.
    pub pid: u32,
    /// The scheduler's job id, when the owner runs under one (`SLURM_JOB_ID`).
    pub job: Option<String>,
    /// Process id of the trial process the owner started (on the owner's host), once started.
    /// The claim stays live while it runs, even if the owner is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child: Option<u32>,
}

/// Where a trial stands.
#[derive(Clone, Debug)]
pub enum TrialState {
    /// Not started, or its last attempt died without a result.
    Pending,
    /// An attempt is claimed by a live owner.
    Running(ClaimInfo),
    /// Its last attempt ended.
    Ended(TrialResult),
}

/// A sweep directory.
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// Creates the store for a new sweep: `sweep.json` and each trial's `config.yaml`
    /// (`configs[i]` belongs to `manifest.trials[i]`); a TPE sweep's with no trials.
    pub fn create(dir: &Path, manifest: &Manifest, configs: &[String]) -> Result<Self, StoreError> {
        if dir.join("sweep.json").exists() {
            return Err(StoreError {
                path: dir.to_owned(),
                message: "already holds a sweep; resume it with --resume".into(),
            });
        }
        let store = Self { dir: dir.to_owned() };
        // A TPE sweep starts with no trial directories to make it.
        fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        // A TPE sweep's trials are recorded as they are suggested (the manifest's are draws that
        // validated its space).
        let tpe = manifest.spec.search == Search::Tpe;
        let manifest = &Manifest { trials: if tpe { Vec::new() } else { manifest.trials.clone() }, ..manifest.clone() };
        for (t, config) in manifest.trials.iter().zip(configs) {
            let tdir = store.trial_dir(&t.id);
            fs::create_dir_all(&tdir).map_err(|e| StoreError::io(&tdir, e))?;
            let path = tdir.join("config.yaml");
            write_atomic(&path, config.as_bytes()).map_err(|e| StoreError::io(&path, e))?;
        }
        // The manifest last: a directory with sweep.json is a complete store.
        let path = dir.join("sweep.json");
        let text = serde_json::to_string_pretty(manifest)
            .map_err(|e| StoreError { path: path.clone(), message: e.to_string() })?;
        write_atomic(&path, text.as_bytes()).map_err(|e| StoreError::io(&path, e))?;
        Ok(store)
    }

    /// Opens an existing sweep directory.
    pub fn open(dir: &Path) -> Result<(Self, Manifest), StoreError> {
        let path = dir.join("sweep.json");
        let text = fs::read_to_string(&path).map_err(|e| StoreError {
            path: path.clone(),
            message: format!("cannot read ({e}); is {} a sweep directory?", dir.display()),
        })?;
        let mut manifest: Manifest = serde_json::from_str(&text)
            .map_err(|e| StoreError { path: path.clone(), message: format!("not a sweep manifest: {e}") })?;
        let store = Self { dir: dir.to_owned() };
        if manifest.spec.search == Search::Tpe {
            manifest.trials = store.suggestions();
        }
        Ok((store, manifest))
    }

    /// The recorded suggestions of a TPE sweep, by index.
    pub fn suggestions(&self) -> Vec<TrialEntry> {
        let mut out: Vec<TrialEntry> = fs::read_dir(self.dir.join("suggestions"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_str().is_some_and(|n| n.ends_with(".json") && !n.starts_with('.')))
            .filter_map(|e| serde_json::from_str::<Suggestion>(&fs::read_to_string(e.path()).ok()?).ok())
            .map(|s| s.entry)
            .collect();
        out.sort_by_key(|t| t.spec.index);
        out
    }

    /// Trial `index`'s recorded suggestion, if one was made.
    pub fn suggestion(&self, index: usize) -> Option<TrialEntry> {
        let text = fs::read_to_string(self.dir.join("suggestions").join(format!("{index}.json"))).ok()?;
        serde_json::from_str::<Suggestion>(&text).ok().map(|s| s.entry)
    }

    /// Records a suggestion (its trial's `config` first) unless one for its index exists;
    /// returns the recorded one, which is another worker's when it was first.
    pub fn record_suggestion(&self, suggestion: &Suggestion, config: &str) -> Result<TrialEntry, StoreError> {
        let tdir = self.trial_dir(&suggestion.entry.id);
        fs::create_dir_all(&tdir).map_err(|e| StoreError::io(&tdir, e))?;
        let path = tdir.join("config.yaml");
        if !path.exists() {
            write_atomic(&path, config.as_bytes()).map_err(|e| StoreError::io(&path, e))?;
        }
        let dir = self.dir.join("suggestions");
        fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
        let index = suggestion.entry.spec.index;
        let to = dir.join(format!("{index}.json"));
        let tmp = dir.join(format!(".{index}.{}.{}", hostname(), std::process::id()));
        let text = serde_json::to_string_pretty(suggestion).unwrap_or_default();
        fs::write(&tmp, text.as_bytes()).map_err(|e| StoreError::io(&tmp, e))?;
        let linked = fs::hard_link(&tmp, &to);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                self.event("suggest", &suggestion.entry.id, &format!("trial={index} {}", suggestion.how));
                Ok(suggestion.entry.clone())
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                self.suggestion(index).ok_or_else(|| StoreError { path: to, message: "unreadable suggestion".into() })
            }
            Err(e) => Err(StoreError::io(&to, e)),
        }
    }

    /// The sweep directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A trial's directory.
    pub fn trial_dir(&self, id: &str) -> PathBuf {
        self.dir.join("trials").join(id)
    }

    /// The trial's run directory.
    pub fn run_dir(&self, id: &str) -> PathBuf {
        self.trial_dir(id).join("run")
    }

    /// The trial's last result, if an attempt ended.
    pub fn result(&self, id: &str) -> Option<TrialResult> {
        let text = fs::read_to_string(self.trial_dir(id).join("result.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Where the trial stands.
    pub fn state(&self, id: &str) -> TrialState {
        let result = self.result(id);
        let (attempt, claim) = self.last_claim(id);
        let claim = claim.filter(|_| !self.attempt_ended(id, attempt));
        match result {
            Some(r) if r.attempt >= attempt => TrialState::Ended(r),
            // A result of a done trial stands whatever claims came after it.
            Some(r) if r.status != Status::Failed => TrialState::Ended(r),
            r => match claim {
                Some((info, mtime)) if attempt > 0 && !stale(&info, mtime) => TrialState::Running(info),
                _ => r.map_or(TrialState::Pending, TrialState::Ended),
            },
        }
    }

    /// Whether attempt `n` recorded its result (it may since have been set aside).
    fn attempt_ended(&self, id: &str, n: u32) -> bool {
        self.trial_dir(id).join(format!("ended.{n}")).exists()
    }

    /// Sets every failed trial's result aside (`failed.<n>.json`), so those trials are pending
    /// again: what `--resume` does before it runs or submits anything. Returns how many.
    pub fn reset_failed(&self, manifest: &Manifest) -> Result<usize, StoreError> {
        let mut n = 0;
        for t in &manifest.trials {
            if let Some(r) = self.result(&t.id).filter(|r| r.status == Status::Failed) {
                let dir = self.trial_dir(&t.id);
                let to = dir.join(format!("failed.{}.json", r.attempt));
                fs::rename(dir.join("result.json"), &to).map_err(|e| StoreError::io(&to, e))?;
                self.event("reset", &t.id, &format!("attempt={}", r.attempt));
                n += 1;
            }
        }
        Ok(n)
    }

    /// The highest claimed attempt (0 when none) with its owner and heartbeat time.
    fn last_claim(&self, id: &str) -> (u32, Option<(ClaimInfo, SystemTime)>) {
        let dir = self.trial_dir(id);
        let last = fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_prefix("claim.")?.parse::<u32>().ok())
            .max()
            .unwrap_or(0);
        if last == 0 {
            return (0, None);
        }
        let path = dir.join(format!("claim.{last}"));
        let info = fs::read_to_string(&path).ok().and_then(|t| serde_json::from_str::<ClaimInfo>(&t).ok());
        let mtime = fs::metadata(&path).and_then(|m| m.modified()).ok();
        // A claim file being written (empty for a moment) counts as live.
        let info = info.unwrap_or_else(|| ClaimInfo { host: String::new(), pid: 0, job: None, child: None });
        (last, Some((info, mtime.unwrap_or_else(SystemTime::now))))
    }

    /// Claims the trial's next attempt, unless it has a result or a live owner holds it.
    /// `None`: someone else has it, or there is nothing to do.
    pub fn try_claim(&self, id: &str, job: Option<String>) -> Result<Option<Claim>, StoreError> {
        // One look at the result and the last claim decides; the exclusive create below makes
        // the decision safe against a worker that claimed in between (its claim has our number).
        if self.result(id).is_some() {
            return Ok(None);
        }
        let (last, claim) = self.last_claim(id);
        let last_ended = self.attempt_ended(id, last);
        if let Some((info, mtime)) = &claim
            && !last_ended
            && !stale(info, *mtime)
        {
            return Ok(None);
        }
        let attempt = last + 1;
        let path = self.trial_dir(id).join(format!("claim.{attempt}"));
        let info = ClaimInfo { host: hostname().to_owned(), pid: std::process::id(), job, child: None };
        let mut file = match fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(None),
            Err(e) => return Err(StoreError::io(&path, e)),
        };
        let text = serde_json::to_string(&info).unwrap_or_default();
        file.write_all(text.as_bytes()).and_then(|()| file.sync_all()).map_err(|e| StoreError::io(&path, e))?;
        // Someone may have finished the trial between our look and our claim.
        if self.result(id).is_some() {
            let _ = fs::remove_file(&path);
            return Ok(None);
        }
        self.event("claim", id, &format!("attempt={attempt}"));
        Ok(Some(Claim { store: self.clone(), id: id.to_owned(), attempt, path, info }))
    }

    /// Appends a line to `events.log`: time, host, pid, what happened, trial id, details.
    /// Each line is one `write` to a file opened for appending, so lines from several
    /// processes do not interleave.
    pub fn event(&self, what: &str, id: &str, detail: &str) {
        let ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let line = format!("{ms} {} {} {what} {id} {detail}\n", hostname(), std::process::id());
        let path = self.dir.join("events.log");
        if let Ok(mut f) = fs::OpenOptions::new().create(true).append(true).open(&path) {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// An attempt of a trial that this process owns.
#[derive(Debug)]
pub struct Claim {
    store: Store,
    id: String,
    attempt: u32,
    path: PathBuf,
    info: ClaimInfo,
}

impl Claim {
    /// The trial's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The attempt number.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Records the trial process this owner started, so the claim stays owned while that
    /// process lives even if this one dies first (it is rewritten atomically, and the rewrite
    /// renews the lease).
    pub fn set_child(&mut self, pid: u32) -> Result<(), StoreError> {
        self.info.child = Some(pid);
        let text = serde_json::to_string(&self.info).unwrap_or_default();
        write_atomic(&self.path, text.as_bytes()).map_err(|e| StoreError::io(&self.path, e))
    }

    /// Renews the lease.
    pub fn heartbeat(&self) {
        if let Ok(f) = fs::File::options().append(true).open(&self.path) {
            let _ = f.set_modified(SystemTime::now());
        }
    }

    /// Whether a later attempt was claimed (this one's lease was judged expired).
    pub fn lost(&self) -> bool {
        self.store.trial_dir(&self.id).join(format!("claim.{}", self.attempt + 1)).exists()
    }

    /// Records how the attempt ended. Returns `false` (and records nothing but an event) when
    /// the lease was lost to a later attempt, which then owns the trial.
    pub fn finish(self, mut result: TrialResult) -> Result<bool, StoreError> {
        if self.lost() {
            self.store.event("lost-lease", &self.id, &format!("attempt={}", self.attempt));
            return Ok(false);
        }
        result.attempt = self.attempt;
        let path = self.store.trial_dir(&self.id).join("result.json");
        let text = serde_json::to_string_pretty(&result).unwrap_or_default();
        write_atomic(&path, text.as_bytes()).map_err(|e| StoreError::io(&path, e))?;
        let ended = self.store.trial_dir(&self.id).join(format!("ended.{}", self.attempt));
        fs::write(&ended, b"").map_err(|e| StoreError::io(&ended, e))?;
        let what = match result.status {
            Status::Done => "done",
            Status::Pruned => "pruned",
            Status::Failed => "failed",
        };
        self.store.event(what, &self.id, &format!("attempt={}", self.attempt));
        Ok(true)
    }
}

/// How long a claim whose owner died waits for the owner's trial process to notice and exit
/// (it looks for its launcher ten times a second; see `crate::local::follow_launcher`).
const ORPHAN_GRACE: Duration = Duration::from_secs(5);

/// Whether a claim's owner is gone: its heartbeat is older than the lease, or it ran on this
/// host and neither its process nor the trial process it started exists. A trial process
/// that outlives its owner stops by itself within a fraction of a second; it is waited for
/// (up to [`ORPHAN_GRACE`]), so a resume right after a kill never runs a trial beside its
/// previous attempt.
fn stale(info: &ClaimInfo, heartbeat: SystemTime) -> bool {
    let age = SystemTime::now().duration_since(heartbeat).unwrap_or_default();
    if age > LEASE {
        return true;
    }
    if info.pid == 0 || info.host != hostname() || process_alive(info.pid) {
        return false;
    }
    let Some(child) = info.child else { return true };
    let start = std::time::Instant::now();
    while process_alive(child) {
        if start.elapsed() > ORPHAN_GRACE {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Whether process `pid` exists on this host; where that cannot be told it is assumed alive,
/// and the lease decides.
fn process_alive(pid: u32) -> bool {
    kindling_core::process_alive(pid).unwrap_or(true)
}

/// A stable 64-bit FNV-1a hash as 16 hex digits: the trial id of a resolved configuration.
/// (Collisions are out of reach for sweeps of any size a person would run: a million trials
/// collide with probability about 3e-8.)
pub fn trial_id(config: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in config.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::spec::{Metric, Mode};

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kindling-store-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    /// A manifest of trials `ids` (a one-seed grid of nothing), for tests here and elsewhere.
    pub(crate) fn manifest(ids: &[&str]) -> Manifest {
        Manifest {
            version: 1,
            pipeline: "p.yaml".into(),
            name: "p".into(),
            base_overrides: vec![],
            spec: SweepSpec {
                grid: vec![],
                random: vec![],
                trials: 1,
                seeds: vec![1],
                metric: Metric { split: "valid".into(), name: "accuracy".into() },
                mode: Mode::Max,
                prune: None,
                seed: 0,
                search: Default::default(),
            },
            trials: ids
                .iter()
                .enumerate()
                .map(|(index, id)| TrialEntry {
                    id: (*id).into(),
                    spec: TrialSpec { index, params: vec![], seed: Some(index as u64) },
                })
                .collect(),
            device: Default::default(),
        }
    }

    fn result(status: Status) -> TrialResult {
        TrialResult {
            status,
            metric: Some(0.5),
            epochs: 1,
            seconds: 1.0,
            attempt: 0,
            host: hostname().to_owned(),
            error: None,
        }
    }

    #[test]
    fn one_claim_per_attempt_among_racing_workers() {
        let dir = scratch("race");
        let store = Store::create(&dir, &manifest(&["a"]), &["x".into()]).unwrap();
        let wins: usize = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8).map(|_| s.spawn(|| store.try_claim("a", None).unwrap())).collect();
            hs.into_iter().map(|h| h.join().unwrap()).filter(Option::is_some).count()
        });
        assert_eq!(wins, 1);
        assert!(matches!(store.state("a"), TrialState::Running(_)), "our own process holds it");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn finished_trials_are_never_claimed_again_failed_ones_only_on_retry() {
        let dir = scratch("finish");
        let store = Store::create(&dir, &manifest(&["a", "b"]), &["x".into(), "y".into()]).unwrap();
        let c = store.try_claim("a", None).unwrap().unwrap();
        assert!(c.finish(result(Status::Done)).unwrap());
        assert!(store.try_claim("a", None).unwrap().is_none());
        let c = store.try_claim("b", None).unwrap().unwrap();
        assert!(c.finish(result(Status::Failed)).unwrap());
        assert!(store.try_claim("b", None).unwrap().is_none());
        let (_, m) = Store::open(&dir).unwrap();
        assert_eq!(store.reset_failed(&m).unwrap(), 1, "only the failed trial");
        assert!(matches!(store.state("b"), TrialState::Pending));
        let again = store.try_claim("b", None).unwrap().unwrap();
        assert_eq!(again.attempt(), 2);
        assert!(store.trial_dir("b").join("failed.1.json").exists());
        let (reopened, m) = Store::open(&dir).unwrap();
        assert_eq!(m.trials.len(), 2);
        assert!(matches!(reopened.state("a"), TrialState::Ended(TrialResult { status: Status::Done, .. })));
        let log = fs::read_to_string(dir.join("events.log")).unwrap();
        assert_eq!(log.lines().filter(|l| l.contains(" done a ")).count(), 1);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_dead_owners_claim_is_taken_over_and_the_old_owner_cannot_record() {
        let dir = scratch("stale");
        let store = Store::create(&dir, &manifest(&["a"]), &["x".into()]).unwrap();
        // An owner on this host whose process has exited.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let info = ClaimInfo { host: hostname().to_owned(), pid, job: None, child: None };
        fs::write(store.trial_dir("a").join("claim.1"), serde_json::to_string(&info).unwrap()).unwrap();
        assert!(matches!(store.state("a"), TrialState::Pending));
        let claim = store.try_claim("a", None).unwrap().unwrap();
        assert_eq!(claim.attempt(), 2);

        // An owner on another host that stopped heartbeating is stale after the lease.
        let other = ClaimInfo { host: "elsewhere".into(), pid: 1, job: Some("17_3".into()), child: None };
        let path = store.trial_dir("a").join("claim.3");
        fs::write(&path, serde_json::to_string(&other).unwrap()).unwrap();
        assert!(claim.lost(), "attempt 3 exists, so attempt 2 lost its lease");
        assert!(matches!(store.state("a"), TrialState::Running(_)));
        fs::File::options().append(true).open(&path).unwrap().set_modified(SystemTime::now() - LEASE * 2).unwrap();
        assert!(matches!(store.state("a"), TrialState::Pending));
        assert!(!claim.finish(result(Status::Done)).unwrap(), "a lost lease records nothing");
        assert!(store.result("a").is_none());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_dead_owners_claim_stays_owned_until_its_trial_process_exits() {
        let dir = scratch("orphan");
        let store = Store::create(&dir, &manifest(&["a"]), &["x".into()]).unwrap();
        let mut owner = std::process::Command::new("true").spawn().unwrap();
        let pid = owner.id();
        owner.wait().unwrap();
        // The owner is gone but the trial process it started still runs for a moment: the
        // claim is judged only once that process has exited, never beside it.
        let mut trial = std::process::Command::new("sleep").arg("0.4").spawn().unwrap();
        let info = ClaimInfo { host: hostname().to_owned(), pid, job: None, child: Some(trial.id()) };
        fs::write(store.trial_dir("a").join("claim.1"), serde_json::to_string(&info).unwrap()).unwrap();
        let start = std::time::Instant::now();
        let claim = store.try_claim("a", None).unwrap().unwrap();
        assert!(start.elapsed() >= Duration::from_millis(300), "claimed beside a live trial process");
        assert!(trial.try_wait().unwrap().is_some());
        assert_eq!(claim.attempt(), 2);

        // A claim records its trial process, and the record survives a reader.
        let mut claim = claim;
        claim.set_child(4242).unwrap();
        let text = fs::read_to_string(store.trial_dir("a").join("claim.2")).unwrap();
        assert_eq!(serde_json::from_str::<ClaimInfo>(&text).unwrap().child, Some(4242));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn creating_over_an_existing_sweep_is_refused() {
        let dir = scratch("twice");
        Store::create(&dir, &manifest(&["a"]), &["x".into()]).unwrap();
        let e = Store::create(&dir, &manifest(&["a"]), &["x".into()]).unwrap_err();
        assert!(e.to_string().ends_with("already holds a sweep; resume it with --resume"), "{e}");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn trial_ids_are_stable_hashes() {
        assert_eq!(trial_id(""), "cbf29ce484222325");
        assert_ne!(trial_id("seed: 1\n"), trial_id("seed: 2\n"));
    }
}
