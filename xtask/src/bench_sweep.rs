//! `cargo xtask bench sweep`: what a sweep costs beyond its trials.
//!
//! A small CNN that trains in about a second is run once as a plain `kindling run` (the
//! single-trial time, as a user would measure it), then as a 16-trial sweep with `--parallel P`.
//! The sweep's wall time is compared with `16 x single / P`; the difference, per trial, is the
//! sweep's overhead (process start, data read, claim and result files, report). The single trial
//! is timed twice: with every core, and with the threads each sweep trial gets (`cores / P`),
//! which isolates the overhead from how well training scales with threads.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

const PIPELINE: &str = "\
name: bench-sweep
seed: 1
device: cpu
base_dir: BASE
stages:
  - stage: idx_dataset
    with:
      train_images: data/fashion-mnist/train-images-idx3-ubyte.gz
      train_labels: data/fashion-mnist/train-labels-idx1-ubyte.gz
      train_limit: 1000
      valid_fraction: 0.2
  - stage: model
    with: {preset: mnist_cnn}
  - stage: train
    with:
      epochs: 1
      batch_size: 64
      save_model: false
sweep:
  grid:
    train.optimizer.lr: [0.003, 0.001, 0.0003, 0.0001]
  seeds: [1, 2, 3, 4]
";

pub(crate) fn run(args: &[String]) -> Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut parallel = cores;
    let mut repeat = 3;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--parallel" => parallel = value()?.parse()?,
            "--repeat" => repeat = value()?.parse()?,
            other => bail!("unknown flag {other} (usage: cargo xtask bench sweep [--parallel N] [--repeat N])"),
        }
    }
    crate::cargo(&["build", "--release", "--quiet", "-p", "kindling-cli"])?;
    let exe = std::path::absolute("target/release/kindling")?;
    let scratch = std::path::absolute("target/bench-sweep")?;
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)?;
    let pipeline = scratch.join("bench-sweep.yaml");
    let root = std::env::current_dir()?;
    std::fs::write(&pipeline, PIPELINE.replace("BASE", &root.display().to_string()))?;

    let single = |threads: usize| -> Result<f64> {
        let mut times = Vec::new();
        for _ in 0..repeat {
            let start = Instant::now();
            let status = Command::new(&exe)
                .args(["run", pipeline.to_str().unwrap_or_default(), "--runs-dir"])
                .arg(scratch.join("single"))
                .env("RAYON_NUM_THREADS", threads.to_string())
                .output()?
                .status;
            if !status.success() {
                bail!("the single trial failed");
            }
            times.push(start.elapsed().as_secs_f64());
        }
        Ok(median(times))
    };
    let threads = (cores / parallel).max(1);
    eprintln!("single trial, {cores} thread(s) and {threads} thread(s), {repeat} times each");
    let single_all = single(cores)?;
    let single_share = single(threads)?;

    let mut sweeps = Vec::new();
    let mut reports = Vec::new();
    let mut trial_means = Vec::new();
    for round in 0..repeat {
        let dir = scratch.join(format!("sweep-{round}"));
        eprintln!("sweep {}/{repeat}: 16 trials, --parallel {parallel}", round + 1);
        let start = Instant::now();
        let out = Command::new(&exe)
            .args(["sweep", pipeline.to_str().unwrap_or_default(), "--parallel", &parallel.to_string(), "--dir"])
            .arg(&dir)
            .output()?;
        if !out.status.success() {
            bail!("the sweep failed:\n{}", String::from_utf8_lossy(&out.stderr));
        }
        sweeps.push(start.elapsed().as_secs_f64());
        trial_means.push(mean_trial_seconds(&dir)?);
        let start = Instant::now();
        let ok = Command::new(&exe).arg("report").arg(&dir).output()?.status.success();
        if !ok {
            bail!("the report failed");
        }
        reports.push(start.elapsed().as_secs_f64());
    }
    let sweep = median(sweeps);
    let trial = median(trial_means);
    // Wall time not explained by the trials' own processes running P at a time.
    let gaps = sweep - 16.0 * trial / parallel as f64;
    let report = median(reports);
    let ideal_all = 16.0 * single_all / parallel as f64;
    let ideal_share = 16.0 * single_share / parallel as f64;
    println!("sweep overhead, 16 trials of mnist_cnn (1,000 samples, 1 epoch), --parallel {parallel}, {cores} cores");
    println!("| measure | seconds |");
    println!("|---|---|");
    println!("| single trial (`kindling run`, {cores} threads) | {single_all:.2} |");
    println!("| single trial ({threads} thread(s), as in the sweep) | {single_share:.2} |");
    println!("| 16-trial sweep, wall | {sweep:.2} |");
    println!(
        "| 16 x single / {parallel} ({cores} threads) | {ideal_all:.2} (sweep is {:.2}x; goal <= 1.5x) |",
        sweep / ideal_all
    );
    println!(
        "| 16 x single / {parallel} ({threads} thread(s)) | {ideal_share:.2} (sweep is {:.2}x) |",
        sweep / ideal_share
    );
    println!(
        "| overhead per trial (vs the {threads}-thread single) | {:.3} |",
        (sweep - ideal_share) / 16.0 * parallel as f64
    );
    println!("| a trial's process inside the sweep (mean) | {trial:.2} |");
    println!("| launcher time per trial (wall not spent in trial processes) | {:.3} |", gaps / 16.0 * parallel as f64);
    println!("| `kindling report` of the 16 trials | {report:.2} |");
    let _ = std::fs::remove_dir_all(Path::new(&scratch));
    Ok(())
}

/// Mean wall seconds of the trial processes of the sweep in `dir` (from each `result.json`).
fn mean_trial_seconds(dir: &Path) -> Result<f64> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir.join("trials"))? {
        let text = std::fs::read_to_string(entry?.path().join("result.json"))?;
        let v: serde_json::Value = serde_json::from_str(&text)?;
        all.push(v["seconds"].as_f64().context("result.json without seconds")?);
    }
    Ok(all.iter().sum::<f64>() / all.len().max(1) as f64)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
