//! Launchers, and the local one: trials as child processes of this machine.

use std::collections::VecDeque;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kindling_metrics::run_files::{HistoryCsv, Measure, RunMetrics};

use crate::SweepError;
use crate::prune::{Curve, judge};
use crate::spec::{Metric, Mode, Search, SweepSpec, TrialSpec};
use crate::store::{
    self, Claim, HEARTBEAT, Manifest, Status, Store, Suggestion, TrialEntry, TrialResult, TrialState, hostname,
};
use crate::tpe::{self, Observation, Outcome};

/// Runs a sweep's trials somewhere. The local launcher runs them here; a cluster launcher
/// submits workers that run the same claim loop against the same store, so trials and
/// reports do not depend on where they ran.
pub trait Launcher {
    /// Runs (or submits, or prepares the submission of) every trial of `store` that has no
    /// result and no live owner.
    fn launch(&self, store: &Store, manifest: &Manifest) -> Result<LaunchOutcome, SweepError>;
}

/// What a launch did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LaunchOutcome {
    /// Trials trained to the end.
    pub done: usize,
    /// Trials stopped by the pruner.
    pub pruned: usize,
    /// Trials whose process failed.
    pub failed: usize,
    /// Trials not run: already ended, or held by a live worker elsewhere.
    pub skipped: usize,
    /// What a cluster launcher submitted or wrote (a job id, a manifest's path).
    pub submitted: Option<String>,
}

/// How often the launcher checks whether a trial's process has exited.
const POLL: Duration = Duration::from_millis(10);
/// How often it reads running trials' histories for pruning.
const LOOK: Duration = Duration::from_millis(200);

/// Runs trials as child processes (`<exe> run <trial>/config.yaml --run-dir <trial>/run`), at
/// most `parallel` at once, each with its compute threads limited to `threads_per_trial`.
/// A process per trial means no memory, allocator state or global RNG carries from one trial
/// to the next.
#[derive(Clone, Debug)]
pub struct Local {
    /// The `kindling` executable.
    pub exe: PathBuf,
    /// Trials at once.
    pub parallel: usize,
    /// `RAYON_NUM_THREADS` of each trial (burn's CPU backend and its GEMM use rayon's pool).
    pub threads_per_trial: usize,
    /// The scheduler's job this launcher runs in (a Slurm array task), recorded in its claims.
    pub job: Option<String>,
}

struct Running {
    entry: TrialEntry,
    claim: Claim,
    child: Child,
    started: Instant,
    beat: Instant,
    judged: usize,
    pruned: Option<(String, Vec<f64>)>,
}

/// Resolves a trial's configuration from its `--set` overrides (the sweep's base overrides
/// and the trial's values): what a TPE sweep needs to turn a suggestion into a trial.
pub type Resolve<'a> = dyn Fn(&[String]) -> Result<String, String> + 'a;

impl Launcher for Local {
    fn launch(&self, store: &Store, manifest: &Manifest) -> Result<LaunchOutcome, SweepError> {
        self.launch_with(store, manifest, &|_| Err("this launcher cannot resolve trial configurations".into()))
    }
}

impl Local {
    /// [`Launcher::launch`], with what resolves the configurations of a TPE sweep's trials as
    /// they are suggested. Trial `k` of a TPE sweep is suggested (from every recorded trial's
    /// result, running ones counted by the constant liar) and recorded in the store when this
    /// launcher first reaches it with a free slot, then claimed as any trial.
    pub fn launch_with(
        &self,
        store: &Store,
        manifest: &Manifest,
        resolve: &Resolve<'_>,
    ) -> Result<LaunchOutcome, SweepError> {
        let tpe = manifest.spec.search == Search::Tpe;
        let mut queue: VecDeque<TrialEntry> =
            if tpe { VecDeque::new() } else { manifest.trials.iter().cloned().collect() };
        let total = if tpe { manifest.spec.trials } else { queue.len() };
        let mut next = 0;
        let mut running: Vec<Running> = Vec::new();
        let mut outcome = LaunchOutcome::default();
        let mut finished = 0;
        let spec = &manifest.spec;
        let mut last_look = Instant::now();
        loop {
            while running.len() < self.parallel.max(1) {
                let entry = if tpe {
                    if next >= spec.trials {
                        break;
                    }
                    next += 1;
                    suggest(store, manifest, next - 1, resolve)?
                } else {
                    let Some(entry) = queue.pop_front() else { break };
                    entry
                };
                let Some(mut claim) = store.try_claim(&entry.id, self.job.clone())? else {
                    outcome.skipped += 1;
                    finished += 1;
                    continue;
                };
                let child = self.spawn(store, &entry, &claim)?;
                claim.set_child(child.id())?;
                let now = Instant::now();
                running.push(Running { entry, claim, child, started: now, beat: now, judged: 0, pruned: None });
            }
            if running.is_empty() {
                break;
            }
            // Exits are noticed within a poll (a trial's slot is refilled at once); the
            // history files that pruning reads are looked at less often.
            std::thread::sleep(POLL);
            let look = last_look.elapsed() >= LOOK;
            if look {
                last_look = Instant::now();
            }
            let mut i = 0;
            while i < running.len() {
                let r = &mut running[i];
                let exited =
                    r.child.try_wait().map_err(|e| SweepError::Launch(format!("trial {}: {e}", r.entry.id)))?;
                if let Some(status) = exited {
                    let r = running.swap_remove(i);
                    finished += 1;
                    let result = conclude(store, &spec.metric, spec.mode, r.pruned.clone(), status.success(), &r);
                    let line = progress_line(finished, total, &r.entry, &result, &spec.metric);
                    match result.status {
                        Status::Done => outcome.done += 1,
                        Status::Pruned => outcome.pruned += 1,
                        Status::Failed => outcome.failed += 1,
                    }
                    if r.claim.finish(result)? {
                        eprintln!("{line}");
                    } else {
                        eprintln!(
                            "[{finished}/{total}] {}: another worker took this trial over; its result stands",
                            r.entry.id
                        );
                    }
                    continue;
                }
                if r.beat.elapsed() >= HEARTBEAT {
                    r.claim.heartbeat();
                    r.beat = Instant::now();
                }
                if let Some(prune) = &spec.prune
                    && look
                    && r.pruned.is_none()
                {
                    let own = curve(store, &r.entry.id, &spec.metric);
                    if own.len() > r.judged {
                        r.judged = own.len();
                        let trials = if tpe { store.suggestions() } else { manifest.trials.clone() };
                        let others = other_curves(store, &trials, &r.entry.id, &spec.metric);
                        if let Some(reason) = judge(prune, spec.mode, &own, &others) {
                            // The process is ours; stopping it is the point.
                            let _ = r.child.kill();
                            r.pruned = Some((reason, own));
                        }
                    }
                }
                i += 1;
            }
        }
        Ok(outcome)
    }

    fn spawn(&self, store: &Store, entry: &TrialEntry, claim: &Claim) -> Result<Child, SweepError> {
        let tdir = store.trial_dir(&entry.id);
        let run_dir = store.run_dir(&entry.id);
        // A dead attempt's partial run directory: the new attempt starts clean.
        if run_dir.exists() {
            fs::remove_dir_all(&run_dir).map_err(|e| {
                SweepError::Launch(format!("{}: cannot clear the last attempt: {e}", run_dir.display()))
            })?;
        }
        let log_path = tdir.join("log.txt");
        let open_log = || fs::OpenOptions::new().create(true).append(true).open(&log_path);
        let mut log = open_log().map_err(|e| SweepError::Launch(format!("{}: {e}", log_path.display())))?;
        use std::io::Write;
        let _ = writeln!(log, "--- attempt {} on {} ---", claim.attempt(), hostname());
        let err = open_log().map_err(|e| SweepError::Launch(format!("{}: {e}", log_path.display())))?;
        Command::new(&self.exe)
            .arg("run")
            .arg(tdir.join("config.yaml"))
            .arg("--run-dir")
            .arg(&run_dir)
            .env("RAYON_NUM_THREADS", self.threads_per_trial.max(1).to_string())
            .env(LAUNCHER_PID, std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| SweepError::Launch(format!("cannot start {}: {e}", self.exe.display())))
    }
}

/// The variable through which the local launcher tells a trial process its launcher's pid.
pub const LAUNCHER_PID: &str = "KINDLING_LAUNCHER_PID";

/// In a trial process started by the local launcher (its [`LAUNCHER_PID`] is set): stops this
/// process as soon as the launcher is gone, so a killed sweep leaves no trial training
/// unsupervised beside the next attempt (a `--resume` waits for it to stop before it claims
/// the trial again). A watcher thread compares the parent's pid with the launcher's ten times
/// a second; files are written atomically, so stopping at any moment loses at most the epoch
/// in progress. Elsewhere it does nothing.
pub fn follow_launcher() {
    #[cfg(unix)]
    {
        let Some(launcher) = std::env::var(LAUNCHER_PID).ok().and_then(|v| v.parse::<u32>().ok()) else { return };
        let gone = move || std::os::unix::process::parent_id() != launcher;
        let stop = || {
            eprintln!("the sweep that started this trial is gone: stopping (its --resume reruns the trial)");
            std::process::exit(143)
        };
        if gone() {
            stop();
        }
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(100));
                if gone() {
                    stop();
                }
            }
        });
    }
}

/// The result of an attempt whose process has exited.
fn conclude(
    store: &Store,
    metric: &Metric,
    mode: Mode,
    pruned: Option<(String, Vec<f64>)>,
    success: bool,
    r: &Running,
) -> TrialResult {
    let run_dir = store.run_dir(&r.entry.id);
    let mut result = TrialResult {
        status: Status::Done,
        metric: None,
        epochs: 0,
        seconds: r.started.elapsed().as_secs_f64(),
        attempt: r.claim.attempt(),
        host: hostname().to_owned(),
        error: None,
    };
    if let Some((reason, values)) = pruned {
        result.status = Status::Pruned;
        result.epochs = values.len();
        result.metric = values.into_iter().reduce(|a, b| if mode.better(b, a) { b } else { a });
        result.error = Some(reason);
    } else if success {
        match read_metrics(&run_dir, metric) {
            Ok((value, epochs)) => {
                result.metric = Some(value);
                result.epochs = epochs;
            }
            Err(e) => {
                result.status = Status::Failed;
                result.error = Some(e);
            }
        }
    } else {
        result.status = Status::Failed;
        result.error = Some(failure(&store.trial_dir(&r.entry.id).join("log.txt")));
    }
    result
}

/// The metric of a finished run: the kept epoch's for train/valid (the best epoch when early
/// stopping restored it), the test evaluation's for test; and the number of epochs trained.
pub fn read_metrics(run_dir: &Path, metric: &Metric) -> Result<(f64, usize), String> {
    let path = run_dir.join("metrics.json");
    let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let m = RunMetrics::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let value = m.value(&metric.split, measure(metric)).ok_or_else(|| {
        format!("{}: has no {metric} (does the pipeline have a {} split?)", path.display(), metric.split)
    })?;
    Ok((value, m.epochs))
}

/// Which of a split's numbers `metric` names.
fn measure(metric: &Metric) -> Measure {
    if metric.name == "loss" { Measure::Loss } else { Measure::Accuracy }
}

/// The per-epoch values of `metric` so far, from the trial's `history.csv` (none while it has
/// no such file, or one that does not read).
pub fn curve(store: &Store, id: &str, metric: &Metric) -> Vec<f64> {
    let Ok(text) = fs::read_to_string(store.run_dir(id).join("history.csv")) else { return Vec::new() };
    HistoryCsv::from_csv(&text).map_or_else(|_| Vec::new(), |h| h.curve(&metric.split, measure(metric)))
}

fn other_curves(store: &Store, trials: &[TrialEntry], own: &str, metric: &Metric) -> Vec<Curve> {
    trials
        .iter()
        .filter(|t| t.id != own)
        .map(|t| Curve {
            values: curve(store, &t.id, metric),
            finished: matches!(store.state(&t.id), TrialState::Ended(TrialResult { status: Status::Done, .. })),
        })
        .collect()
}

/// Trial `index` of a TPE sweep: its recorded suggestion, or a new one made from the results
/// recorded so far and recorded now (another worker's, when it recorded one first).
fn suggest(store: &Store, manifest: &Manifest, index: usize, resolve: &Resolve<'_>) -> Result<TrialEntry, SweepError> {
    if let Some(entry) = store.suggestion(index) {
        return Ok(entry);
    }
    let spec = &manifest.spec;
    let history = tpe_history(store, spec, index);
    let params = tpe::suggest(spec, index, &history);
    let trial = TrialSpec { index, params, seed: None };
    let overrides: Vec<String> = manifest.base_overrides.iter().cloned().chain(trial.overrides()).collect();
    let config = resolve(&overrides)
        .map_err(|e| SweepError::Launch(format!("trial {index} ({}) does not resolve: {e}", trial.label())))?;
    let how = if history.len() < tpe::N_STARTUP {
        format!("random (startup, {} trial(s) recorded)", history.len())
    } else {
        let lies = history.iter().filter(|o| o.outcome == Outcome::Running).count();
        format!("tpe ({} trial(s) recorded, {lies} of them running)", history.len())
    };
    let suggestion = Suggestion { entry: TrialEntry { id: store::trial_id(&config), spec: trial }, how };
    Ok(store.record_suggestion(&suggestion, &config)?)
}

/// What TPE knows when it suggests trial `index`: every other recorded trial, finished (its
/// metric), pruned (its last epoch's value, as Optuna uses a pruned trial's last intermediate
/// value) or not yet ended (the constant liar's); failed ones are left out.
pub(crate) fn tpe_history(store: &Store, spec: &SweepSpec, index: usize) -> Vec<Observation> {
    store
        .suggestions()
        .into_iter()
        .filter(|t| t.spec.index != index)
        .filter_map(|t| {
            let outcome = match store.state(&t.id) {
                TrialState::Ended(TrialResult { status: Status::Done, metric: Some(v), .. }) => Outcome::Complete(v),
                TrialState::Ended(TrialResult { status: Status::Pruned, metric, epochs, .. }) => {
                    let value = curve(store, &t.id, &spec.metric).last().copied().or(metric)?;
                    Outcome::Pruned { steps: epochs, value }
                }
                TrialState::Ended(_) => return None,
                TrialState::Pending | TrialState::Running(_) => Outcome::Running,
            };
            let params = spec.random.iter().map(|(k, _)| t.spec.value(k).unwrap_or_default()).collect();
            Some(Observation { params, outcome })
        })
        .collect()
}

/// Why a trial's process failed: its `error:` line, else the last lines of its log.
fn failure(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let attempt = text.rsplit_once("--- attempt").map_or(text.as_str(), |(_, last)| last);
    let lines: Vec<&str> = attempt.lines().skip(1).filter(|l| !l.trim().is_empty()).collect();
    if let Some(pos) = lines.iter().position(|l| l.starts_with("error:")) {
        return lines[pos..].join("\n");
    }
    let tail = lines.len().saturating_sub(5);
    let tail = lines[tail..].join("\n");
    if tail.is_empty() { format!("the trial process failed without output (see {})", log.display()) } else { tail }
}

fn progress_line(n: usize, total: usize, entry: &TrialEntry, r: &TrialResult, metric: &Metric) -> String {
    let what = match r.status {
        Status::Done => "done  ",
        Status::Pruned => "pruned",
        Status::Failed => "FAILED",
    };
    let value = r.metric.map_or_else(String::new, |v| format!("  {metric} {v:.4}"));
    let mut line =
        format!("[{n}/{total}] {what} {}{value}  ({} epochs, {:.1} s)", entry.spec.label(), r.epochs, r.seconds);
    if r.status == Status::Failed
        && let Some(e) = &r.error
    {
        line += &format!("\n    {}", e.lines().next().unwrap_or_default());
    }
    line
}

/// Default parallelism: one trial per core on the CPU, one at a time on a GPU.
pub fn default_parallel(gpu: bool) -> usize {
    if gpu { 1 } else { std::thread::available_parallelism().map_or(1, |n| n.get()) }
}
