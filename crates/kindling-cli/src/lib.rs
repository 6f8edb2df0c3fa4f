//! The `kindling` command as a library: argument parsing, dispatch to the library crates, and
//! rendering of their results and errors. It computes nothing itself.
//!
//! [`main_with`] runs the command with a list of plugins; [`default_plugins`] is the list the
//! `kindling` binary links (it also restores SIGPIPE's default action, so a closed output pipe
//! ends the command quietly). Another crate builds its own `kindling` with more stages by adding
//! its plugins to that list:
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     let plugins = kindling_cli::default_plugins();
//!     // plugins.push(my_crate::plugin());
//!     kindling_cli::main_with(plugins)
//! }
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use kindling_core::{DeviceChoice, Plugin, Registry};

mod data;
mod eval;
mod export;
mod lr_find;
mod preview;
mod serve;
mod sigpipe;
mod sweep;

/// The plugins the `kindling` binary links: every stage Kindling ships.
pub fn default_plugins() -> Vec<Plugin> {
    vec![kindling_vision::plugin(), kindling_audio::plugin(), kindling_models::plugin(), kindling_train::plugin()]
}

/// Runs the `kindling` command (arguments from the process) with the stages of `plugins`, and
/// returns its exit status: 0 on success, 2 when a pipeline does not validate, 1 on any other
/// error (printed to stderr).
pub fn main_with(plugins: Vec<Plugin>) -> ExitCode {
    sigpipe::restore_default();
    match real_main(plugins) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Declarative deep-learning experiments: YAML pipelines that train, evaluate and report.
#[derive(Debug, Parser)]
#[command(name = "kindling", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a pipeline, then train, evaluate and write a run directory.
    Run {
        /// The pipeline file.
        #[arg(required_unless_present = "resume")]
        pipeline: Option<PathBuf>,
        /// Continue the interrupted run in this directory (`runs/<pipeline>/<run-id>`), with
        /// its own config.yaml, from its last checkpoint.
        #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["pipeline", "set", "runs_dir", "run_dir", "device"])]
        resume: Option<PathBuf>,
        /// Override a value: `train.optimizer.lr=3e-4`, `seed=1`, `stages[2].with.epochs=3`.
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<String>,
        /// Device: auto (a GPU through wgpu when one exists, else CPU), cpu or wgpu.
        #[arg(long)]
        device: Option<DeviceChoice>,
        /// Where run directories go (`<runs-dir>/<pipeline>/<run-id>/`).
        #[arg(long, default_value = "runs")]
        runs_dir: PathBuf,
        /// Run in exactly this directory instead (how a sweep places its trials).
        #[arg(long, hide = true, conflicts_with = "runs_dir")]
        run_dir: Option<PathBuf>,
    },
    /// Run a sweep: every trial of the pipeline's `sweep:` block, one process each, resumable,
    /// here or on a cluster.
    Sweep(Box<sweep::SweepArgs>),
    /// Evaluate a finished run's model on its test split, or on other labelled data.
    Eval(eval::EvalArgs),
    /// Classify files with a finished run's model: the most probable classes of each.
    Predict(eval::PredictArgs),
    /// Write a finished run's model again as ONNX (`model.onnx`) or for PyTorch (its state
    /// dict, layer list and check outputs), byte for byte the files the run wrote.
    Export(export::ExportArgs),
    /// Serve a finished run's model over HTTP: `POST /predict` with an image or WAV file as the
    /// body, or files in a multipart form upload (`curl -F file=@cat.png`), answers the
    /// likeliest classes as JSON; also `GET /model` and `GET /health`.
    Serve(serve::ServeArgs),
    /// Find a learning rate: the range test (rate growing exponentially over a few hundred
    /// steps) on the pipeline's own data, model and optimizer; prints the suggested rate and
    /// writes a plot of the loss against the rate.
    LrFind(lr_find::LrFindArgs),
    /// Write a PNG grid of training samples as the model sees them: the evaluation view, then
    /// the augmented views of the first epochs.
    Preview(preview::PreviewArgs),
    /// Build data sets (`kindling data spatialize ...`, `kindling data image-folder ...`).
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Compare the trials of a sweep directory: report.csv, report.md and report.html.
    Report {
        /// The sweep directory.
        dir: PathBuf,
        /// The heat map's two keys, `rows,columns` (default: the first two swept keys).
        #[arg(long, value_name = "KEY,KEY")]
        heatmap: Option<String>,
        /// The confusion-matrix grid's two keys, `rows,columns` (default: the heat map's).
        #[arg(long, value_name = "KEY,KEY")]
        grid: Option<String>,
    },
    /// Check pipelines and report every problem of every file, without running anything.
    Validate {
        /// Pipeline files.
        #[arg(required = true)]
        pipelines: Vec<PathBuf>,
        /// Overrides, checked as `run` would apply them.
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<String>,
        /// Print each valid pipeline as it will run: composed with what it extends, variables
        /// and overrides applied, every default filled in (the run directory's config.yaml).
        #[arg(long)]
        print: bool,
    },
    /// List every stage with its description and configuration keys.
    Stages,
    /// Print the JSON Schema of the pipeline format: every stage's keys, types, defaults and
    /// documentation, for editors (docs/pipeline.schema.json is this output).
    Schema,
    /// Print a shell completion script (bash, zsh, fish, elvish or powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Validate a pipeline and print its model's layers, output shapes and parameter counts.
    Summary {
        /// The pipeline file.
        pipeline: PathBuf,
        /// Overrides, applied as `run` would.
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<String>,
    },
    /// Measure training and inference speed of a preset model on synthetic data.
    Bench {
        /// The preset to measure.
        #[arg(long, default_value = "mnist_cnn")]
        model: String,
        /// Samples per step.
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
        batch_size: u64,
        /// One synthetic sample's shape, `C,H,W` (default: what the preset was built for:
        /// 4,257,382 for stereo_cnn, 5,257,382 for direction_cnn, 1,28,28 otherwise).
        #[arg(long, value_parser = parse_chw)]
        input: Option<[usize; 3]>,
        /// Classes of the synthetic labels (default: 11 for the stereo presets, else 10).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        classes: Option<u64>,
        /// Device: auto, cpu or wgpu.
        #[arg(long, default_value = "cpu")]
        device: DeviceChoice,
        /// Untimed steps first (allocation, autotuning).
        #[arg(long, default_value_t = 5)]
        warmup: usize,
        /// Timed training steps (and inference batches).
        #[arg(long, default_value_t = 60)]
        steps: usize,
        /// Also time each part of this many training steps (forward per layer, loss,
        /// backward, optimizer).
        #[arg(long, default_value_t = 0)]
        profile: usize,
        /// Print one JSON line instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `C,H,W` as three positive sizes.
fn parse_chw(s: &str) -> Result<[usize; 3], String> {
    let dims: Vec<usize> = s
        .split(',')
        .map(|d| d.trim().parse::<usize>().ok().filter(|d| *d > 0))
        .collect::<Option<_>>()
        .ok_or_else(|| format!("`{s}`: expected three positive sizes, C,H,W (e.g. 4,257,382)"))?;
    dims.try_into().map_err(|_| format!("`{s}`: expected three sizes, C,H,W (e.g. 4,257,382)"))
}

fn real_main(plugins: Vec<Plugin>) -> Result<ExitCode> {
    let cli = Cli::parse();
    let registry = Registry::new(plugins).map_err(anyhow::Error::msg)?;
    match cli.command {
        Command::Run { resume: Some(dir), .. } => {
            let config = dir.join("config.yaml");
            if !config.is_file() {
                anyhow::bail!("{}: no config.yaml here; --resume takes a run directory", dir.display());
            }
            let plan = match kindling_pipeline::load(&config, &registry, &[]) {
                Ok(plan) => plan,
                Err(e) => {
                    eprintln!("{e}");
                    return Ok(ExitCode::from(2));
                }
            };
            let start = Instant::now();
            let outcome = kindling_pipeline::resume(plan, &dir)?;
            print_summary(&outcome, start.elapsed().as_secs_f64());
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { pipeline, set, device, runs_dir, run_dir, resume: None } => {
            kindling_sweep::follow_launcher();
            let Some(pipeline) = pipeline else { anyhow::bail!("give a pipeline file or --resume RUN_DIR") };
            let overrides = kindling_pipeline::Overrides { set, device, roles: Vec::new() };
            let plan = match kindling_pipeline::load_with(&pipeline, &registry, &overrides) {
                Ok(plan) => plan,
                Err(e) => {
                    eprintln!("{e}");
                    eprintln!("{} problem(s); nothing was run", e.issues.len());
                    return Ok(ExitCode::from(2));
                }
            };
            let start = Instant::now();
            let outcome = match run_dir {
                Some(dir) => kindling_pipeline::run_in(plan, &dir)?,
                None => kindling_pipeline::run(plan, &runs_dir)?,
            };
            print_summary(&outcome, start.elapsed().as_secs_f64());
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate { pipelines, set, print } => {
            let mut failed = 0;
            for file in &pipelines {
                match kindling_pipeline::load(file, &registry, &set) {
                    Ok(plan) if print => {
                        println!("# {}: ok ({} stages)", file.display(), plan.stages.len());
                        print!("{}", plan.resolved_yaml());
                    }
                    Ok(plan) => println!("{}: ok ({} stages)", file.display(), plan.stages.len()),
                    Err(e) => {
                        failed += 1;
                        println!("{e}");
                    }
                }
            }
            if failed > 0 {
                println!("{failed} of {} file(s) have problems", pipelines.len());
                return Ok(ExitCode::from(2));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Summary { pipeline, set } => {
            let plan = match kindling_pipeline::load(&pipeline, &registry, &set) {
                Ok(plan) => plan,
                Err(e) => {
                    eprintln!("{e}");
                    return Ok(ExitCode::from(2));
                }
            };
            match plan.facts.get::<kindling_models::ModelSummary>() {
                Some(summary) => print!("{}", summary.table()),
                None => println!("{}: no model stage", pipeline.display()),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Sweep(args) => sweep::run(&registry, *args),
        Command::Data(command) => data::run(command),
        Command::Preview(args) => preview::run(&registry, args),
        Command::LrFind(args) => lr_find::run(&registry, args),
        Command::Eval(args) => eval::eval(&registry, args),
        Command::Predict(args) => eval::predict(&registry, args),
        Command::Serve(args) => serve::run(&registry, args),
        Command::Export(args) => export::run(&registry, args),
        Command::Report { dir, heatmap, grid } => {
            let pair = |s: Option<String>| -> Result<Option<(String, String)>> {
                s.map(|s| {
                    s.split_once(',')
                        .map(|(a, b)| (a.trim().to_owned(), b.trim().to_owned()))
                        .with_context(|| format!("`{s}`: expected two keys, `rows,columns`"))
                })
                .transpose()
            };
            let opts = kindling_sweep::report::ReportOptions { heatmap: pair(heatmap)?, grid: pair(grid)? };
            let files = kindling_sweep::report::write(&dir, &opts)?;
            print!("{}", files.text);
            println!(
                "
report: {} (also {}, {})",
                files.html.display(),
                files.markdown.display(),
                files.csv.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "kindling", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Stages => {
            for (plugin, def) in registry.iter() {
                println!("{}  ({plugin})", def.name);
                println!("    {}", def.summary);
                if !def.inputs.is_empty() || !def.outputs.is_empty() {
                    println!("    needs: {}   gives: {}", list(def.inputs), list(def.outputs));
                }
                for key in def.keys() {
                    let default = match &key.default {
                        serde_json::Value::Null => "-".to_owned(),
                        serde_json::Value::String(s) if s.is_empty() => "-".to_owned(),
                        v => v.to_string(),
                    };
                    if default.len() <= 12 {
                        println!("    {:<16} {default:<12} {}", key.name, key.doc);
                    } else {
                        println!("    {:<16} {:<12} {}", key.name, "", key.doc);
                        println!("    {:<16} {:<12} default: {default}", "", "");
                    }
                }
                println!();
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema => {
            println!("{}", serde_json::to_string_pretty(&kindling_pipeline::schema(&registry))?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench { model, batch_size, input, classes, device, warmup, steps, profile, json } => {
            let natural = kindling_train::bench::BenchSpec::new(&model, batch_size as usize);
            let spec = kindling_train::bench::BenchSpec {
                input: input.unwrap_or(natural.input),
                classes: classes.map_or(natural.classes, |c| c as usize),
                warmup,
                steps,
                profile_steps: profile,
                ..natural
            };
            let r =
                kindling_train::bench::bench_train(&spec, device).with_context(|| format!("benchmarking `{model}`"))?;
            if json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!(
                    "{} batch {} on {}: train {:.0} samples/s, inference {:.0} samples/s",
                    r.model, r.batch_size, r.device, r.train_samples_per_s, r.infer_samples_per_s
                );
                // Indented rows are parts of the row above them, not more time.
                let total: f64 = r.profile.iter().filter(|p| !p.part.starts_with(' ')).map(|p| p.ms_per_step).sum();
                for p in &r.profile {
                    println!(
                        "  {:<38} {:>8.2} ms/step  {:>5.1}%",
                        p.part,
                        p.ms_per_step,
                        100.0 * p.ms_per_step / total
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn list(items: &[&str]) -> String {
    if items.is_empty() { "-".to_owned() } else { items.join(", ") }
}

fn print_summary(outcome: &kindling_pipeline::RunOutcome, seconds: f64) {
    println!();
    println!("done in {seconds:.1} s");
    for (label, value) in &outcome.summary.lines {
        println!("  {label:<10} {value}");
    }
    println!("  {:<10} {}", "run dir", outcome.run_dir.display());
    let mut files: Vec<String> = std::fs::read_dir(&outcome.run_dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    files.retain(|f| !f.starts_with('.'));
    files.sort();
    println!("  {:<10} {}", "files", files.join(" "));
}
