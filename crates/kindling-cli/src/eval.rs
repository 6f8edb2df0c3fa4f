//! `kindling eval` and `kindling predict`: a finished run's model on other data.
//!
//! Both reopen the run (`kindling_pipeline::reopen`: its data and model stages from its own
//! `config.yaml`, with the weights from its `model.safetensors`), so a sample goes through
//! exactly the decoding, features and evaluation transforms the run's validation saw; the
//! inference itself is `kindling_train::infer`. This module parses and prints.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use kindling_core::{KeyRole, Registry};
use kindling_pipeline::Overrides;
use kindling_train::infer::Predictor;

#[derive(Debug, Args)]
pub(crate) struct EvalArgs {
    /// The run directory (`runs/<pipeline>/<run-id>`).
    run: PathBuf,
    /// Evaluate on this folder of class folders or `path,label` CSV instead of the run's test
    /// split (image-folder and audio runs).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Overrides of the run's configuration (`idx_dataset.test_images=...`).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    set: Vec<String>,
    /// Samples per batch.
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
}

#[derive(Debug, Args)]
pub(crate) struct PredictArgs {
    /// The run directory (`runs/<pipeline>/<run-id>`).
    run: PathBuf,
    /// Image files (for image runs) or WAV files (for audio runs).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// How many classes to print per file, most probable first.
    #[arg(long, default_value_t = 3)]
    top: usize,
}

/// The run in `run` with its data and model built again.
fn open(registry: &Registry, run: &Path, overrides: &Overrides) -> Result<Predictor> {
    let artifacts = kindling_pipeline::reopen(run, registry, overrides)?;
    Ok(Predictor::from_artifacts(artifacts, run)?)
}

pub(crate) fn eval(registry: &Registry, a: EvalArgs) -> Result<ExitCode> {
    let mut overrides = Overrides::from_set(&a.set);
    if let Some(data) = &a.data {
        let data = data.canonicalize().with_context(|| format!("{}: no such file or folder", data.display()))?;
        let csv = data.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        let role = if csv { KeyRole::HeldOutManifest } else { KeyRole::HeldOutFolder };
        overrides.roles.push((role, data));
    }
    let predictor = open(registry, &a.run, &overrides)?;
    let result = predictor.evaluate(a.batch_size)?;
    let classes = predictor.classes();
    println!(
        "{}: {} samples, accuracy {:.2}%, loss {:.4}",
        a.run.display(),
        result.samples,
        100.0 * result.metrics.accuracy,
        result.metrics.loss
    );
    let report = result.confusion.report();
    println!("{:<16} {:>9} {:>7} {:>7} {:>8}", "class", "precision", "recall", "f1", "support");
    for (name, m) in classes.iter().zip(&report.classes) {
        println!("{name:<16} {:>9.3} {:>7.3} {:>7.3} {:>8}", m.precision, m.recall, m.f1, m.support);
    }
    let w = &report.weighted_avg;
    println!("{:<16} {:>9.3} {:>7.3} {:>7.3} {:>8}", "weighted avg", w.precision, w.recall, w.f1, w.support);
    println!("\nconfusion matrix (rows: true class):\n{}", result.confusion.to_csv(classes));
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn predict(registry: &Registry, a: PredictArgs) -> Result<ExitCode> {
    let predictor = open(registry, &a.run, &Overrides::default())?;
    for p in predictor.predict(&a.files)? {
        let top: Vec<String> =
            p.scores.iter().take(a.top.max(1)).map(|s| format!("{} {:.3}", s.class, s.probability)).collect();
        println!("{}\t{}", p.file.display(), top.join("\t"));
    }
    Ok(ExitCode::SUCCESS)
}
