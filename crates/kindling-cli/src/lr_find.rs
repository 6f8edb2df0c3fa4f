//! `kindling lr-find`: the learning-rate range test on a pipeline's own data, model and
//! optimizer (see `kindling_train::range_test`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use kindling_core::{DeviceChoice, Registry};
use kindling_train::{RangeTest, TrainConfig};

#[derive(Debug, Args)]
pub(crate) struct LrFindArgs {
    /// The pipeline file (it needs a `train` stage; its epochs and schedule are not used).
    pipeline: PathBuf,
    /// Overrides, applied as `run` would (`--set train.batch_size=128`).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    set: Vec<String>,
    /// Device: auto, cpu or wgpu.
    #[arg(long)]
    device: Option<DeviceChoice>,
    /// The first learning rate.
    #[arg(long, default_value_t = 1e-8)]
    start_lr: f64,
    /// The last learning rate.
    #[arg(long, default_value_t = 1.0)]
    end_lr: f64,
    /// Optimizer steps (one batch each) from the first rate to the last.
    #[arg(long, default_value_t = 100)]
    steps: usize,
    /// Where the plot goes; the steps go beside it as CSV (`lr-find.csv`).
    #[arg(long, default_value = "lr-find.png")]
    out: PathBuf,
}

pub(crate) fn run(registry: &Registry, args: LrFindArgs) -> Result<ExitCode> {
    let test = RangeTest { start_lr: args.start_lr, end_lr: args.end_lr, steps: args.steps, ..RangeTest::default() };
    if let Err(e) = test.check() {
        anyhow::bail!("--start-lr, --end-lr, --steps: {e}");
    }
    let overrides = kindling_pipeline::Overrides { set: args.set, device: args.device, roles: Vec::new() };
    let plan = match kindling_pipeline::load_with(&args.pipeline, registry, &overrides) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(2));
        }
    };
    let Some(train) = plan.stages.iter().find(|s| s.kind == "train") else {
        anyhow::bail!("{}: no `train` stage, so no optimizer to test", args.pipeline.display());
    };
    let config: TrainConfig =
        serde_json::from_value(train.prepared.resolved.clone()).context("the train stage's configuration")?;
    let seed = plan.seed;
    let mut artifacts = kindling_pipeline::prepare(plan)?;
    eprintln!(
        "range test: {} steps of batch {} from lr {} to {}",
        test.steps, config.batch_size, test.start_lr, test.end_lr
    );
    let result = kindling_train::range_test(&mut artifacts, &config, seed, &test)?;
    let png = result.plot_png().map_err(|e| anyhow::anyhow!("{e}"))?;
    // Written whole or not at all (a temporary file renamed into place).
    kindling_core::write_atomic(&args.out, &png).with_context(|| format!("{}", args.out.display()))?;
    let csv = args.out.with_file_name("lr-find.csv");
    kindling_core::write_atomic(&csv, result.csv().as_bytes()).with_context(|| format!("{}", csv.display()))?;
    let last = result.points.last().map_or(0.0, |p| p.lr);
    if result.diverged {
        println!("the loss diverged at lr {last:.3e} (step {} of {})", result.points.len(), test.steps);
    }
    match result.suggestion {
        Some(lr) => {
            println!("suggested lr: {lr:.3e} (a tenth of the rate at the smoothed loss's minimum, fastai's lr_min)");
            if let Some(steep) = result.steepest {
                println!("steepest descent at lr {steep:.3e} (Lightning's suggestion; often too high)");
            }
        }
        None => {
            println!("no suggestion: only {} steps before the loss diverged; lower --start-lr", result.points.len())
        }
    }
    println!("plot: {}  steps: {}", args.out.display(), csv.display());
    Ok(ExitCode::SUCCESS)
}
