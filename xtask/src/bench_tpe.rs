//! `cargo xtask bench tpe`: TPE against random search on a real objective.
//!
//! `pipelines/quickstart-tpe.yaml` (LeNet-5 with batch norm and dropout on the shipped
//! Fashion-MNIST subset, a few seconds a trial) is swept over its learning rate, weight decay
//! and dropout twice per sweep seed: with `search: tpe` and with `search: random` (the same
//! space, trials and seed). For every number of trials n it reports the best validation accuracy
//! among the first n trials (in the order they were decided), averaged over the seeds, then
//! the mean accuracy of the trials after the first 10 (TPE's startup trials are random search's
//! first 10 draws for the same seed, so that is where the two differ), writes every trial to
//! `target/bench-tpe/curves.csv` and draws the mean best-so-far curves in
//! `target/bench-tpe/best-so-far.png`.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

const USAGE: &str = "cargo xtask bench tpe [--seeds N] [--trials N] [--parallel N] [--train-limit N] [--epochs N]";

pub(crate) fn run(args: &[String]) -> Result<()> {
    let (mut seeds, mut trials, mut parallel, mut train_limit, mut epochs) = (3u64, 30usize, 1usize, 2000usize, 2usize);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--seeds" => seeds = value()?.parse()?,
            "--trials" => trials = value()?.parse()?,
            "--parallel" => parallel = value()?.parse()?,
            "--train-limit" => train_limit = value()?.parse()?,
            "--epochs" => epochs = value()?.parse()?,
            other => bail!("unknown flag {other} (usage: {USAGE})"),
        }
    }
    crate::cargo(&["build", "--workspace", "--release", "--quiet"])?;
    let exe = std::path::absolute("target/release/kindling")?;
    let pipeline = std::path::absolute("pipelines/quickstart-tpe.yaml")?;
    let scratch = std::path::absolute("target/bench-tpe")?;
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)?;
    let mut csv = String::from("search,seed,trial,accuracy,best_so_far\n");
    // curves[search][seed][n]: best so far after n + 1 trials.
    let mut curves: Vec<Vec<Vec<f64>>> = vec![Vec::new(), Vec::new()];
    let start = Instant::now();
    for seed in 1..=seeds {
        for (s, search) in ["tpe", "random"].iter().enumerate() {
            let file = scratch.join(format!("{search}-{seed}.yaml"));
            std::fs::write(
                &file,
                format!(
                    "pipeline: {}\nsweep:\n  search: {search}\n  random:\n    train.optimizer.lr: {{loguniform: \
                     [1.0e-4, 3.0e-2]}}\n    train.optimizer.weight_decay: {{loguniform: [1.0e-6, 1.0e-2]}}\n    \
                     model.dropout: {{uniform: [0.0, 0.6]}}\n  trials: {trials}\n  metric: valid.accuracy\n  seed: \
                     {seed}\n",
                    pipeline.display()
                ),
            )?;
            let dir = scratch.join(format!("{search}-{seed}"));
            let t = Instant::now();
            let out = Command::new(&exe)
                .arg("sweep")
                .arg(&file)
                .args(["--parallel", &parallel.to_string(), "--dir"])
                .arg(&dir)
                .args(["--set", &format!("idx_dataset.train_limit={train_limit}")])
                .args(["--set", &format!("train.epochs={epochs}"), "--set", "device=cpu"])
                .output()?;
            if !out.status.success() {
                bail!("the {search} sweep (seed {seed}) failed:\n{}", String::from_utf8_lossy(&out.stderr));
            }
            let accuracies = accuracies(&dir)?;
            let mut best = f64::NEG_INFINITY;
            let curve: Vec<f64> = accuracies
                .iter()
                .map(|a| {
                    best = best.max(*a);
                    best
                })
                .collect();
            for (n, (a, b)) in accuracies.iter().zip(&curve).enumerate() {
                csv += &format!("{search},{seed},{},{a},{b}\n", n + 1);
            }
            eprintln!(
                "{search:>6} seed {seed}: best {:.4} after {} trials ({:.0} s)",
                curve.last().copied().unwrap_or(f64::NAN),
                curve.len(),
                t.elapsed().as_secs_f64()
            );
            curves[s].push(curve);
        }
    }
    std::fs::write(scratch.join("curves.csv"), &csv)?;
    println!("best-so-far validation accuracy, mean over {seeds} sweep seed(s) (min..max):");
    println!("{:>7}  {:>22}  {:>22}", "trials", "tpe", "random");
    let mut marks: Vec<usize> = (1..=trials).filter(|n| n % 5 == 0 || *n == trials || *n == 1).collect();
    marks.dedup();
    for n in marks {
        let cell = |c: &Vec<Vec<f64>>| {
            let v: Vec<f64> = c.iter().filter_map(|curve| curve.get(n - 1).copied()).collect();
            let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
            let (lo, hi) = v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), x| (l.min(*x), h.max(*x)));
            format!("{mean:.4} ({lo:.4}..{hi:.4})")
        };
        println!("{n:>7}  {:>22}  {:>22}", cell(&curves[0]), cell(&curves[1]));
    }
    // Where the searches differ: the trials after the 10 random ones both start with.
    println!("mean validation accuracy of trials 11..{trials}, per seed:");
    for search in ["tpe", "random"] {
        let means: Vec<String> = accuracies_after(&csv, search, 10).iter().map(|m| format!("{m:.4}")).collect();
        println!("{search:>7}  {}", means.join("  "));
    }
    // The figure: the mean best-so-far curves, drawn by kindling-report's `lines_png` example.
    let mut mean_csv = String::from("series,trials,accuracy\n");
    for (name, c) in ["tpe", "random"].iter().zip(&curves) {
        for n in 1..=trials {
            let v: Vec<f64> = c.iter().filter_map(|curve| curve.get(n - 1).copied()).collect();
            mean_csv += &format!("{name},{n},{}\n", v.iter().sum::<f64>() / v.len().max(1) as f64);
        }
    }
    let (mean_file, png) = (scratch.join("best-so-far.csv"), scratch.join("best-so-far.png"));
    std::fs::write(&mean_file, mean_csv)?;
    let title = format!("Best so far, mean of {seeds} seeds");
    let (input, output) = (mean_file.display().to_string(), png.display().to_string());
    crate::cargo(&[
        "run",
        "--release",
        "--quiet",
        "-p",
        "kindling-report",
        "--example",
        "lines_png",
        "--",
        &input,
        &output,
        &title,
        "trials",
        "validation accuracy",
    ])?;
    println!(
        "({:.0} s in all; every trial in {}, the figure in {})",
        start.elapsed().as_secs_f64(),
        scratch.join("curves.csv").display(),
        png.display()
    );
    Ok(())
}

/// Per seed, the mean accuracy of `search`'s trials after the first `skip`, from the CSV.
fn accuracies_after(csv: &str, search: &str, skip: usize) -> Vec<f64> {
    let mut by_seed: std::collections::BTreeMap<u64, Vec<f64>> = Default::default();
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if f[0] == search && f[2].parse::<usize>().unwrap_or(0) > skip {
            by_seed.entry(f[1].parse().unwrap_or(0)).or_default().push(f[3].parse().unwrap_or(f64::NAN));
        }
    }
    by_seed.values().map(|v| v.iter().sum::<f64>() / v.len() as f64).collect()
}

/// Every trial's validation accuracy in the order its values were decided: the TPE
/// suggestions' order, or the manifest's for random search.
fn accuracies(dir: &Path) -> Result<Vec<f64>> {
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("sweep.json"))?)?;
    let mut trials: Vec<(u64, String)> = manifest["trials"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| Some((t["index"].as_u64()?, t["id"].as_str()?.to_owned())))
        .collect();
    if let Ok(entries) = std::fs::read_dir(dir.join("suggestions")) {
        for e in entries.flatten().filter(|e| !e.file_name().to_string_lossy().starts_with('.')) {
            let t: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(e.path())?)?;
            trials.push((t["index"].as_u64().unwrap_or_default(), t["id"].as_str().unwrap_or_default().to_owned()));
        }
    }
    trials.sort();
    trials
        .iter()
        .map(|(_, id)| {
            let path = dir.join("trials").join(id).join("result.json");
            let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
            r["metric"].as_f64().with_context(|| format!("{}: no metric", path.display()))
        })
        .collect()
}
