//! Running a plan: the run directory, the stages in order, and the summary.

use std::path::{Path, PathBuf};
use std::time::Instant;

use kindling_core::{
    Artifacts, Dataset, InputReader, ModelDescription, PACKAGE_FILE, PACKAGE_VERSION, Package, Resume, RunDir,
    StageError, StageIo, Summary,
};

use crate::Plan;

/// What a finished run leaves for its caller to show.
#[derive(Debug)]
pub struct RunOutcome {
    /// The run directory.
    pub run_dir: PathBuf,
    /// Summary lines the stages recorded.
    pub summary: Summary,
    /// Wall-clock seconds of each stage.
    pub stage_seconds: Vec<(String, f64)>,
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The run directory or its configuration could not be written.
    #[error("{}: {source}", path.display())]
    RunDir {
        /// The directory or file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A stage failed; the files already in the run directory stay as they are.
    #[error("stage {index} (`{kind}`) failed: {source}\n(run directory: {})", run_dir.display())]
    Stage {
        /// Position of the stage in the pipeline.
        index: usize,
        /// The stage's name.
        kind: String,
        /// The run directory.
        run_dir: PathBuf,
        /// What went wrong.
        #[source]
        source: StageError,
    },
}

/// Runs `plan` in a new directory under `runs_root/<plan.name>/`. The resolved configuration is
/// written first, so even a failed run records what it tried.
pub fn run(plan: Plan, runs_root: &Path) -> Result<RunOutcome, RunError> {
    let run_dir = RunDir::create(runs_root, &plan.name).map_err(dir_error(runs_root))?;
    run_stages(plan, run_dir, false)
}

/// Continues the interrupted run in `dir`, whose `config.yaml` `plan` was loaded from: the
/// stages run again in the same directory, and those that keep checkpoints (training) pick up
/// after the last epoch they finished.
pub fn resume(plan: Plan, dir: &Path) -> Result<RunOutcome, RunError> {
    let run_dir = RunDir::at(dir).map_err(dir_error(dir))?;
    for path in run_dir.remove_interrupted_writes().map_err(dir_error(dir))? {
        eprintln!("removed {}: left by an interrupted write", path.display());
    }
    run_stages(plan, run_dir, true)
}

/// Runs `plan` in exactly `dir` (created if missing): how a sweep places each trial's run
/// inside its trial directory.
pub fn run_in(plan: Plan, dir: &Path) -> Result<RunOutcome, RunError> {
    let run_dir = RunDir::at(dir).map_err(dir_error(dir))?;
    run_stages(plan, run_dir, false)
}

fn dir_error(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + use<> {
    let path = path.to_owned();
    move |source| RunError::RunDir { path, source }
}

fn run_stages(plan: Plan, run_dir: RunDir, resume: bool) -> Result<RunOutcome, RunError> {
    run_dir.write("config.yaml", plan.resolved_yaml().as_bytes()).map_err(dir_error(run_dir.path()))?;
    eprintln!("run: {} ({} stages) -> {}", plan.name, plan.stages.len(), run_dir.path().display());

    let mut artifacts = Artifacts::default();
    artifacts.insert(plan.device);
    artifacts.insert(Summary::default());
    if resume {
        artifacts.insert(Resume);
    }
    let mut stage_seconds = Vec::new();
    for (index, mut s) in plan.stages.into_iter().enumerate() {
        let start = Instant::now();
        eprintln!("[{}] {}", index, s.kind);
        let mut io =
            StageIo { artifacts: &mut artifacts, run_dir: &run_dir, seed: plan.seed, base_dir: &plan.base_dir };
        s.prepared.stage.run(&mut io).map_err(|source| RunError::Stage {
            index,
            kind: s.kind.clone(),
            run_dir: run_dir.path().to_owned(),
            source,
        })?;
        stage_seconds.push((s.kind, start.elapsed().as_secs_f64()));
    }
    if let Some(package) = package(&artifacts, &run_dir) {
        run_dir.write(PACKAGE_FILE, package.to_json().as_bytes()).map_err(dir_error(run_dir.path()))?;
    }
    Ok(RunOutcome {
        run_dir: run_dir.path().to_owned(),
        summary: artifacts.take::<Summary>().unwrap_or_default(),
        stage_seconds,
    })
}

/// The run's model package (`model.json`), when the stages left what it needs: the weights
/// (`model.safetensors`, written by training), the data set's classes and sample shape, a data
/// stage's input reader that can describe itself, and the model stage's description.
fn package(artifacts: &Artifacts, run_dir: &RunDir) -> Option<Package> {
    const WEIGHTS: &str = "model.safetensors";
    if !run_dir.path().join(WEIGHTS).is_file() {
        return None;
    }
    let data = artifacts.get::<Dataset>()?;
    let model = artifacts.get::<ModelDescription>()?;
    let mut input = artifacts.get::<Box<dyn InputReader>>()?.describe()?;
    input.as_object_mut()?.insert("shape".to_owned(), serde_json::json!(data.shape));
    Some(Package {
        version: PACKAGE_VERSION,
        classes: data.classes.clone(),
        input,
        model: model.clone(),
        weights: WEIGHTS.to_owned(),
    })
}

/// Runs `plan`'s stages only until one has produced the data set, and returns it: what
/// `kindling preview` shows. The stages run in a scratch directory that is removed afterwards.
pub fn load_data(plan: Plan) -> Result<Dataset, RunError> {
    let mut artifacts = run_scratch(plan, |_, artifacts| artifacts.get::<Dataset>().is_some())?;
    artifacts.take::<Dataset>().ok_or_else(|| RunError::Stage {
        index: 0,
        kind: "data".to_owned(),
        run_dir: std::env::temp_dir(),
        source: StageError::MissingArtifact("dataset"),
    })
}

/// Runs every stage of `plan` before its `train` stage (data, model) and returns their
/// artifacts: how `kindling eval` and `kindling predict` get a run's data and model back.
pub fn prepare(plan: Plan) -> Result<Artifacts, RunError> {
    run_scratch(plan, |next, _| next == Some("train"))
}

/// Runs the stages of `plan` in a scratch directory (removed afterwards) until `done(kind of
/// the next stage, artifacts so far)` says to stop.
fn run_scratch(plan: Plan, done: impl Fn(Option<&str>, &Artifacts) -> bool) -> Result<Artifacts, RunError> {
    let scratch = std::env::temp_dir().join(format!("kindling-scratch-{}-{}", plan.name, std::process::id()));
    let run_dir = RunDir::at(&scratch).map_err(dir_error(&scratch))?;
    let mut artifacts = Artifacts::default();
    artifacts.insert(plan.device);
    artifacts.insert(Summary::default());
    let mut stages = plan.stages.into_iter().enumerate().peekable();
    let mut result = Ok(());
    while !done(stages.peek().map(|(_, s)| s.kind.as_str()), &artifacts) {
        let Some((index, mut s)) = stages.next() else { break };
        let mut io =
            StageIo { artifacts: &mut artifacts, run_dir: &run_dir, seed: plan.seed, base_dir: &plan.base_dir };
        if let Err(source) = s.prepared.stage.run(&mut io) {
            result = Err(RunError::Stage { index, kind: s.kind, run_dir: scratch.clone(), source });
            break;
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    result.map(|()| artifacts)
}
