//! `cargo xtask bench diagnostics`: what the run diagnostics cost.
//!
//! The quickstart (shipped Fashion-MNIST subset, `mnist_cnn`, CPU) is run with
//! `train.diagnostics` on and off, alternating which goes first in each round so that drift of
//! the machine falls on both. Per round it prints the training samples/s (training time only:
//! step losses and sampled gradient norms) and the train stage's wall time (which also holds
//! the per-epoch probe batch, the prediction comparison and the duplicate check), and the
//! overhead of each; then the median over the rounds.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

const USAGE: &str = "cargo xtask bench diagnostics [--rounds N] [--epochs N]";

/// Training samples/s and the train stage's wall seconds of one run.
fn measure(exe: &Path, runs: &Path, on: bool, epochs: usize) -> Result<(f64, f64, usize)> {
    let dir = runs.join(if on { "on" } else { "off" });
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(exe)
        .args(["run", "pipelines/quickstart.yaml", "--run-dir"])
        .arg(&dir)
        .args(["--set", "device=cpu", "--set", &format!("train.epochs={epochs}")])
        .args(["--set", &format!("train.diagnostics={on}")])
        .output()?;
    if !out.status.success() {
        bail!("the quickstart failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let metrics: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("metrics.json"))?)?;
    let rate = metrics["train_samples_per_second"].as_f64().context("no train_samples_per_second")?;
    let wall = metrics["wall_seconds"].as_f64().context("no wall_seconds")?;
    let findings = metrics["diagnostics"]["findings"].as_array().map_or(0, Vec::len);
    Ok((rate, wall, findings))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { f64::NAN } else { v[v.len() / 2] }
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    let (mut rounds, mut epochs) = (3usize, 3usize);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--rounds" => rounds = value()?.parse()?,
            "--epochs" => epochs = value()?.parse()?,
            other => bail!("unknown flag {other} (usage: {USAGE})"),
        }
    }
    crate::cargo(&["build", "--workspace", "--release", "--quiet"])?;
    let exe = std::path::absolute("target/release/kindling")?;
    let runs = std::path::absolute("target/bench-diagnostics")?;
    std::fs::create_dir_all(&runs)?;
    println!("quickstart, {epochs} epochs, CPU; diagnostics on vs off\n");
    println!(
        "| round | samples/s on | samples/s off | training overhead | stage s on | stage s off | stage overhead |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let (mut train_overheads, mut stage_overheads) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        // Alternate the order so the machine's drift does not favour one side.
        let order = if round % 2 == 1 { [true, false] } else { [false, true] };
        let mut got = [(0.0, 0.0, 0); 2];
        for on in order {
            got[usize::from(!on)] = measure(&exe, &runs, on, epochs)?;
        }
        let [(rate_on, wall_on, findings), (rate_off, wall_off, _)] = got;
        if findings > 0 {
            bail!("the quickstart had {findings} finding(s); see {}", runs.join("on/metrics.json").display());
        }
        let train = 100.0 * (rate_off / rate_on - 1.0);
        let stage = 100.0 * (wall_on / wall_off - 1.0);
        train_overheads.push(train);
        stage_overheads.push(stage);
        println!(
            "| {round} | {rate_on:.0} | {rate_off:.0} | {train:+.1}% | {wall_on:.2} | {wall_off:.2} | {stage:+.1}% |"
        );
    }
    println!(
        "\nmedian overhead: training {:+.1}%, train stage {:+.1}% ({rounds} rounds)",
        median(train_overheads),
        median(stage_overheads)
    );
    Ok(())
}
