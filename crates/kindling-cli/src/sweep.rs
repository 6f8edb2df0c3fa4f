//! `kindling sweep`: arguments, and which launcher runs the trials.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use kindling_core::{DeviceChoice, Registry};
use kindling_sweep::cluster::{Kubernetes, Slurm, slurm_jobs};
use kindling_sweep::store::TrialState;
use kindling_sweep::{Counts, LaunchOutcome, Launcher, Local, Manifest, Status, Store, WaitOutcome};

#[derive(Debug, Args)]
pub(crate) struct SweepArgs {
    /// A pipeline with a `sweep:` block, or a sweep file naming a pipeline.
    #[arg(required_unless_present_any = ["status", "worker", "dir"])]
    pipeline: Option<PathBuf>,
    /// Override a value of every trial, as `run --set`.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    set: Vec<String>,
    /// Local launcher: trials at once (default: one per core on the CPU, one on a GPU).
    #[arg(long)]
    parallel: Option<usize>,
    /// Continue a sweep: run (or submit) exactly the trials that have not finished, failed ones
    /// again. Without --dir, the newest sweep of this pipeline.
    #[arg(long)]
    resume: bool,
    /// The sweep directory (default: `<runs-dir>/<pipeline>-sweep/<time>/`).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Where sweep directories go.
    #[arg(long, default_value = "runs")]
    runs_dir: PathBuf,
    /// Validate every trial and print how many there are and the first few configurations;
    /// run nothing.
    #[arg(long)]
    dry_run: bool,
    /// How many resolved configurations --dry-run prints.
    #[arg(long, default_value_t = 3)]
    show: usize,
    /// Where trials run: here (`local`), as a Slurm job array (`slurm`), or a rendered
    /// Kubernetes Indexed Job to apply (`kubernetes`).
    #[arg(long, value_enum, default_value_t = LauncherKind::Local)]
    launcher: LauncherKind,
    /// Slurm: the partition.
    #[arg(long)]
    partition: Option<String>,
    /// Slurm / Kubernetes: workers at once (`--array=0-N%K`, `parallelism`).
    #[arg(long)]
    max_concurrent: Option<usize>,
    /// Slurm: time limit per worker (`--time`).
    #[arg(long)]
    time: Option<String>,
    /// Slurm / Kubernetes: GPUs per worker.
    #[arg(long, default_value_t = 0)]
    gpus_per_trial: usize,
    /// Slurm / Kubernetes: CPUs per worker (its trials' threads).
    #[arg(long)]
    cpus_per_trial: Option<usize>,
    /// Slurm: an extra `#SBATCH` line, e.g. `--sbatch-arg=--mem=8G` (repeatable).
    #[arg(long = "sbatch-arg", value_name = "ARG", allow_hyphen_values = true)]
    sbatch_args: Vec<String>,
    /// Kubernetes: the image holding `kindling`.
    #[arg(long, default_value = "kindling:latest")]
    image: String,
    /// Kubernetes: the ReadWriteMany volume claim holding sweeps and data.
    #[arg(long, default_value = "kindling-sweeps")]
    volume_claim: String,
    /// Slurm: after submitting, wait until every trial has ended, showing progress.
    #[arg(long)]
    wait: bool,
    /// Show where each trial of a sweep directory stands (and its Slurm jobs); run nothing.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["pipeline", "worker"])]
    status: Option<PathBuf>,
    /// Run as a cluster worker of this sweep directory: claim and train trials until none is
    /// left (what the Slurm and Kubernetes launchers start).
    #[arg(long, value_name = "DIR", hide = true, conflicts_with = "pipeline")]
    worker: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LauncherKind {
    Local,
    Slurm,
    Kubernetes,
}

pub(crate) fn run(registry: &Registry, a: SweepArgs) -> Result<ExitCode> {
    if let Some(dir) = &a.status {
        return status(dir);
    }
    if let Some(dir) = &a.worker {
        return worker(registry, dir);
    }
    // Resuming a named directory needs only the store: the sweep continues as it was created,
    // whatever the pipeline file says now.
    let prepared = match &a.pipeline {
        Some(pipeline) if !(a.resume && a.dir.is_some()) => match kindling_sweep::prepare(pipeline, registry, &a.set) {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("{e}");
                return Ok(ExitCode::from(2));
            }
        },
        _ => None,
    };
    if a.dry_run {
        match &prepared {
            Some(p) => print!("{}", p.describe(a.show)),
            None => bail!("--dry-run needs the pipeline"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (store, manifest) = match (&a.dir, &prepared) {
        (Some(dir), _) if a.resume => Store::open(dir)?,
        (None, Some(p)) if a.resume => {
            let parent = a.runs_dir.join(format!("{}-sweep", p.manifest.name));
            let newest = std::fs::read_dir(&parent)
                .ok()
                .into_iter()
                .flatten()
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.join("sweep.json").exists())
                .max()
                .with_context(|| format!("{}: no sweep of this pipeline to resume", parent.display()))?;
            let (store, manifest) = Store::open(&newest)?;
            let now: Vec<&str> = p.manifest.trials.iter().map(|t| t.id.as_str()).collect();
            let changed = if manifest.spec.search == kindling_sweep::spec::Search::Tpe {
                // Its trials are decided as it runs; the spec is what can change.
                serde_json::to_string(&manifest.spec).ok() != serde_json::to_string(&p.manifest.spec).ok()
            } else {
                manifest.trials.iter().any(|t| !now.contains(&t.id.as_str())) || now.len() != manifest.trials.len()
            };
            if changed {
                eprintln!("note: the pipeline changed since this sweep was created; it resumes as created");
            }
            (store, manifest)
        }
        (dir, Some(p)) => {
            let dir = match dir {
                Some(d) => d.clone(),
                None => {
                    kindling_core::RunDir::create(&a.runs_dir, &format!("{}-sweep", p.manifest.name))?.path().to_owned()
                }
            };
            // The manifest as stored (a TPE sweep's trials are recorded as they are suggested).
            Store::create(&dir, &p.manifest, &p.configs)?;
            Store::open(&dir)?
        }
        (_, None) => bail!("a new sweep needs the pipeline (or --resume --dir D)"),
    };
    if a.resume {
        let reset = store.reset_failed(&manifest)?;
        if reset > 0 {
            eprintln!("resume: {reset} failed trial(s) will run again");
        }
    }
    let exe = std::env::current_exe().context("cannot find the kindling executable")?;
    match a.launcher {
        LauncherKind::Local => local(registry, &store, &manifest, exe, a.parallel),
        LauncherKind::Slurm => {
            let slurm = Slurm {
                exe,
                partition: a.partition,
                max_concurrent: a.max_concurrent,
                time: a.time,
                gpus_per_trial: a.gpus_per_trial,
                cpus_per_trial: a.cpus_per_trial,
                sbatch_args: a.sbatch_args,
            };
            let outcome = slurm.launch(&store, &manifest)?;
            let Some(job) = outcome.submitted else {
                println!("nothing to submit: all {} trials have ended", outcome.skipped);
                return Ok(ExitCode::SUCCESS);
            };
            println!("submitted Slurm job {job}: {} trial(s) to run", manifest.trials.len() - outcome.skipped);
            println!("  {:<10} kindling sweep --status {}", "watch", store.dir().display());
            println!("  {:<10} kindling sweep --resume --launcher slurm --dir {}", "resume", store.dir().display());
            if a.wait {
                return wait(&store, &manifest, &job);
            }
            Ok(ExitCode::SUCCESS)
        }
        LauncherKind::Kubernetes => {
            let k = Kubernetes {
                image: a.image,
                volume_claim: a.volume_claim,
                max_concurrent: a.max_concurrent,
                gpus_per_trial: a.gpus_per_trial,
                cpus_per_trial: a.cpus_per_trial,
            };
            let outcome = k.launch(&store, &manifest)?;
            match outcome.submitted {
                Some(path) => println!("wrote {path}\n  submit with: kubectl apply -f {path}"),
                None => println!("nothing to submit: all {} trials have ended", outcome.skipped),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Resolves a TPE trial's configuration as `prepare` resolved the validated ones: the sweep's
/// pipeline (as recorded in its manifest) with the trial's overrides.
fn resolver<'a>(registry: &'a Registry, manifest: &'a Manifest) -> impl Fn(&[String]) -> Result<String, String> + 'a {
    move |overrides: &[String]| {
        let path = &manifest.pipeline;
        let src = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        kindling_pipeline::parse(path, &src, registry, overrides).map(|p| p.resolved_yaml()).map_err(|e| e.to_string())
    }
}

fn local(
    registry: &Registry,
    store: &Store,
    manifest: &Manifest,
    exe: PathBuf,
    parallel: Option<usize>,
) -> Result<ExitCode> {
    let gpu = match manifest.device {
        DeviceChoice::Cpu => false,
        DeviceChoice::Wgpu => true,
        DeviceChoice::Auto => kindling_models::device::hardware_gpu(),
    };
    let parallel = parallel.unwrap_or_else(|| kindling_sweep::default_parallel(gpu)).max(1);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads_per_trial = (cores / parallel).max(1);
    let tpe = manifest.spec.search == kindling_sweep::spec::Search::Tpe;
    eprintln!(
        "sweep: {} trial(s){}, {parallel} at once ({threads_per_trial} thread(s) each) -> {}",
        if tpe { manifest.spec.trials } else { manifest.trials.len() },
        if tpe { " searched by TPE" } else { "" },
        store.dir().display()
    );
    let local = Local { exe, parallel, threads_per_trial, job: None };
    let start = Instant::now();
    let outcome = local.launch_with(store, manifest, &resolver(registry, manifest))?;
    finish(store, &outcome, start.elapsed().as_secs_f64())
}

fn finish(store: &Store, outcome: &LaunchOutcome, seconds: f64) -> Result<ExitCode> {
    let files = kindling_sweep::report::write(store.dir(), &Default::default())?;
    println!();
    println!("sweep done in {seconds:.1} s");
    println!(
        "  {:<10} {} done, {} pruned, {} failed, {} already finished",
        "trials", outcome.done, outcome.pruned, outcome.failed, outcome.skipped
    );
    if let Some(best) = files.text.lines().find(|l| l.starts_with("Best:")) {
        println!("  {:<10} {}", "best", best.trim_start_matches("Best: ").replace("**", ""));
    }
    println!("  {:<10} {}", "report", files.html.display());
    println!("  {:<10} {}", "sweep dir", store.dir().display());
    if outcome.failed > 0 {
        println!("{} trial(s) failed (errors in the report); `--resume` runs them again", outcome.failed);
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// A cluster worker: the claim loop, one trial at a time, with the CPUs the scheduler gave.
fn worker(registry: &Registry, dir: &Path) -> Result<ExitCode> {
    let (store, manifest) = Store::open(dir)?;
    let exe = std::env::current_exe().context("cannot find the kindling executable")?;
    let local = kindling_sweep::supervise::cluster_worker(exe);
    eprintln!(
        "worker {} on {}: {}",
        local.job.as_deref().unwrap_or("-"),
        kindling_sweep::store::hostname(),
        dir.display()
    );
    let outcome = local.launch_with(&store, &manifest, &resolver(registry, &manifest))?;
    // Every worker that runs out of work refreshes the report; the last one's is complete.
    kindling_sweep::report::write(store.dir(), &Default::default())?;
    eprintln!("worker done: {} done, {} pruned, {} failed", outcome.done, outcome.pruned, outcome.failed);
    Ok(ExitCode::SUCCESS)
}

fn status(dir: &Path) -> Result<ExitCode> {
    let (store, manifest) = Store::open(dir)?;
    let Counts { pending, running, done, pruned, failed } = Counts::of(&store, &manifest);
    println!(
        "{}: {} trials: {pending} pending, {running} running, {done} done, {pruned} pruned, {failed} failed",
        dir.display(),
        manifest.trials.len()
    );
    if manifest.spec.search == kindling_sweep::spec::Search::Tpe {
        println!("search: tpe: {} of {} trials suggested so far", manifest.trials.len(), manifest.spec.trials);
    }
    let jobs = slurm_jobs(dir);
    if !jobs.is_empty() {
        println!("slurm jobs: {}", jobs.join(", "));
    }
    for t in &manifest.trials {
        let line = match store.state(&t.id) {
            TrialState::Pending => format!("pending  {}  {}", t.id, t.spec.label()),
            TrialState::Running(c) => format!(
                "running  {}  {}  (on {}, pid {}{})",
                t.id,
                t.spec.label(),
                c.host,
                c.pid,
                c.job.map(|j| format!(", job {j}")).unwrap_or_default()
            ),
            TrialState::Ended(r) => {
                let what = match r.status {
                    Status::Done => "done    ",
                    Status::Pruned => "pruned  ",
                    Status::Failed => "failed  ",
                };
                let metric = r.metric.map(|m| format!("  {} {m:.4}", manifest.spec.metric)).unwrap_or_default();
                let error = match (r.status, &r.error) {
                    (Status::Failed, Some(e)) => format!("\n         {}", e.lines().next().unwrap_or_default()),
                    _ => String::new(),
                };
                format!("{what} {}  {}{metric}  (attempt {} on {}){error}", t.id, t.spec.label(), r.attempt, r.host)
            }
        };
        println!("  {line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Waits for a submitted sweep, showing progress, then reports as a local sweep does.
fn wait(store: &Store, manifest: &Manifest, job: &str) -> Result<ExitCode> {
    let start = Instant::now();
    let progress = |c: &Counts, seconds: f64| {
        eprintln!(
            "[{seconds:>5.0} s] {} pending, {} running, {} done, {} pruned, {} failed",
            c.pending, c.running, c.done, c.pruned, c.failed
        );
    };
    match kindling_sweep::supervise::wait(store, manifest, job, progress) {
        WaitOutcome::Ended(outcome) => finish(store, &outcome, start.elapsed().as_secs_f64()),
        WaitOutcome::LeftQueue(not_run) => {
            println!(
                "job {job} has left the queue with {not_run} trial(s) not run; `--resume --launcher slurm` submits them"
            );
            Ok(ExitCode::FAILURE)
        }
    }
}
