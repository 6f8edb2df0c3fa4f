//! `cargo xtask bench audio`: 200 stereo 6.1 s WAVs -> normalised 4 x 257 x 382 features,
//! files/s, Kindling cold (no feature cache), filling the cache and warm (cache hits), against
//! torch.stft, librosa and numpy on the same files in the same run. The files are a stereo
//! direction set (10 directions x 20), built with `kindling data spatialize`.
//!
//! Then the trivial baseline of experiment 1 (`xtask/bench/audio_baseline.py`): a logistic
//! regression on 32 per-band interaural level differences, trained on `kemar-hard` and tested on
//! `fabian-hard` (the setting of `pipelines/stereo-direction-hard.yaml`), trained on `kemar` and
//! tested on `fabian` (clean, another head), and on 80/20 splits of the clean and hard KEMAR
//! sets for reference. Beside it, the classical baseline
//! (`crates/kindling-audio/examples/itd_baseline.rs`): one GCC-PHAT interaural time difference
//! per file (`kindling_audio::interaural::gcc_phat_itd`), assigned to the class whose
//! training-set median ITD is nearest, on every set of the stereo-direction table: the KEMAR
//! clean held-out split (same head), KEMAR clean -> FABIAN clean and KEMAR hard -> FABIAN hard.
//! They need `data/stereo-direction/` (built with `cargo xtask data stereo` when missing).
//! `--baseline-only` skips the files/s rounds, `--no-baseline` the baselines.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

pub(crate) fn run(args: &[String]) -> Result<()> {
    let mut repeat = 3;
    let (mut speed, mut baseline) = (true, true);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--repeat" => repeat = it.next().context("--repeat needs a value")?.parse()?,
            "--baseline-only" => speed = false,
            "--no-baseline" => baseline = false,
            other => bail!(
                "unknown flag {other} (usage: cargo xtask bench audio [--repeat N] [--baseline-only | --no-baseline])"
            ),
        }
    }
    if speed {
        files_per_second(repeat)?;
    }
    if baseline {
        level_difference_baseline()?;
        itd_baseline()?;
    }
    Ok(())
}

/// The Python of the bench venv, with numpy, scipy and librosa installed.
fn peer_python() -> Result<std::path::PathBuf> {
    let python = crate::bench::venv()?;
    let has_peers = Command::new(&python).args(["-c", "import numpy, scipy, librosa"]).output()?.status.success();
    if !has_peers {
        eprintln!("installing numpy and librosa into the bench environment (once)");
        let ok = Command::new(python.with_file_name("pip"))
            .args(["install", "--quiet", "--no-cache-dir", "numpy", "scipy", "librosa"])
            .status()?
            .success();
        if !ok {
            bail!("pip install numpy scipy librosa failed");
        }
    }
    Ok(python)
}

fn files_per_second(repeat: usize) -> Result<()> {
    crate::data::ensure_packages()?;
    // `--workspace`, like every other build of the checkout: `-p` alone would resolve other
    // features and rebuild burn.
    crate::cargo(&["build", "--release", "--quiet", "--workspace"])?;
    crate::cargo(&["build", "--release", "--quiet", "--workspace", "--example", "bench_features"])?;
    let wavs = Path::new("target/bench-audio/wavs");
    if !wavs.join("manifest.csv").exists() {
        crate::data::spatialize(wavs, "20", &["--classes", "10", "--seed", "7"])?;
    }
    let python = peer_python()?;
    let mut ours = Vec::new();
    let mut peers: Vec<Value> = Vec::new();
    for round in 0..repeat {
        eprintln!("round {}/{repeat}", round + 1);
        let out = Command::new("target/release/examples/bench_features")
            .arg(wavs)
            .arg("target/bench-audio/cache")
            .output()?;
        if !out.status.success() {
            bail!("bench_features failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        ours.push(serde_json::from_slice::<Value>(&out.stdout)?);
        let out = Command::new(&python).arg("xtask/bench/audio_peer.py").arg(wavs).output()?;
        if !out.status.success() {
            bail!("the peer script failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            peers.push(serde_json::from_str(line)?);
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let ours_of = |key: &str| median(ours.iter().filter_map(|o| o[key].as_f64()).collect());
    let peer_of = |name: &str| {
        median(peers.iter().filter(|p| p["peer"] == name).filter_map(|p| p["files_per_s"].as_f64()).collect())
    };
    let files = ours[0]["files"].as_u64().unwrap_or(0);
    let cold = ours_of("cold_files_per_s");
    let fastest = ["torch.stft", "librosa", "numpy"].iter().map(|p| peer_of(p)).fold(0.0, f64::max);
    println!("{files} stereo 6.1 s WAVs -> normalised 4 x 257 x 382 features, files/s (median of {repeat})");
    println!("| pipeline | files/s | vs fastest peer |");
    println!("|---|---:|---:|");
    for (name, v) in [
        ("Kindling, cold (no cache; decode, STFT, normalise)", cold),
        ("Kindling, filling an empty cache", ours_of("fill_files_per_s")),
        ("Kindling, warm (cache hits, features loaded)", ours_of("warm_files_per_s")),
        ("torch.stft (2 threads)", peer_of("torch.stft")),
        ("librosa.stft", peer_of("librosa")),
        ("numpy rfft", peer_of("numpy")),
    ] {
        println!("| {name} | {v:.0} | {:.2}x |", v / fastest);
    }
    println!("goal: Kindling cold >= 3x the fastest peer: {:.2}x", cold / fastest);
    Ok(())
}

/// Runs `audio_baseline.py` on the experiment's sets and prints its accuracies, and the
/// confusion matrix of the cross-head experiment.
fn level_difference_baseline() -> Result<()> {
    let data = Path::new("data/stereo-direction");
    let sets = ["kemar", "kemar-hard", "fabian-hard", "fabian"];
    if sets.iter().any(|s| !data.join(s).join("manifest.csv").exists()) {
        eprintln!("building the stereo direction sets for the baseline (cargo xtask data stereo)");
        crate::data::run(&["stereo".to_owned()])?;
    }
    let python = peer_python()?;
    eprintln!("baseline: logistic regression on per-band level differences");
    let out = Command::new(&python).arg("xtask/bench/audio_baseline.py").arg(data).output()?;
    if !out.status.success() {
        bail!("the baseline script failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let results: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
    println!();
    println!("baseline: multinomial logistic regression on 32 per-band level differences (dB, 250 Hz bands)");
    println!("| trained and tested on | train / test files | L2 lambda (5-fold CV) | test accuracy |");
    println!("|---|---:|---:|---:|");
    for r in &results {
        println!(
            "| {} | {} / {} | {} | {:.2}% |",
            r["baseline"].as_str().unwrap_or("?"),
            r["train"],
            r["test"],
            r["lambda"],
            100.0 * r["accuracy"].as_f64().unwrap_or(f64::NAN)
        );
    }
    if let Some(r) = results.first() {
        let classes: Vec<&str> =
            r["classes"].as_array().map(|c| c.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        println!();
        println!(
            "confusion matrix of {} (rows: true class, columns: predicted)",
            r["baseline"].as_str().unwrap_or("?")
        );
        println!("| true class | {} |", classes.join(" | "));
        println!("|---|{}", "---:|".repeat(classes.len()));
        for (name, row) in classes.iter().zip(r["confusion"].as_array().into_iter().flatten()) {
            let cells: Vec<String> = row.as_array().into_iter().flatten().map(Value::to_string).collect();
            println!("| {name} | {} |", cells.join(" | "));
        }
    }
    Ok(())
}

/// Runs the GCC-PHAT ITD baseline (`itd_baseline` example) on the experiment's sets and prints
/// its accuracies, and the confusion matrix of the hard cross-head experiment.
fn itd_baseline() -> Result<()> {
    crate::cargo(&["build", "--release", "--quiet", "--workspace", "--example", "itd_baseline"])?;
    eprintln!("baseline: GCC-PHAT interaural time difference, nearest class median");
    let out = Command::new("target/release/examples/itd_baseline").arg("data/stereo-direction").output()?;
    if !out.status.success() {
        bail!("the ITD baseline failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let results: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
    let percent = |r: &Value, key: &str| 100.0 * r[key].as_f64().unwrap_or(f64::NAN);
    println!();
    println!(
        "baseline: one GCC-PHAT ITD per file (n_fft 512, hop 256, +-1.2 ms, 1/8 sample), class of the nearest \
         training-set median ITD"
    );
    println!("| trained and tested on | train / test files | test accuracy | within one class (18 degrees) |");
    println!("|---|---:|---:|---:|");
    for r in &results {
        println!(
            "| {} | {} / {} | {:.2}% | {:.2}% |",
            r["baseline"].as_str().unwrap_or("?"),
            r["train"],
            r["test"],
            percent(r, "accuracy"),
            percent(r, "within_one_class")
        );
    }
    if let Some(r) = results.iter().find(|r| r["baseline"] == "kemar-hard -> fabian-hard") {
        let classes: Vec<&str> =
            r["classes"].as_array().map(|c| c.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        let medians: Vec<String> = r["median_itd_us"].as_array().into_iter().flatten().map(Value::to_string).collect();
        println!();
        println!("training-set median ITDs (us, positive: left ear leads): {}", medians.join(", "));
        println!(
            "confusion matrix of the ITD baseline, kemar-hard -> fabian-hard (rows: true class, columns: predicted)"
        );
        println!("| true class | {} |", classes.join(" | "));
        println!("|---|{}", "---:|".repeat(classes.len()));
        for (name, row) in classes.iter().zip(r["confusion"].as_array().into_iter().flatten()) {
            let cells: Vec<String> = row.as_array().into_iter().flatten().map(Value::to_string).collect();
            println!("| {name} | {} |", cells.join(" | "));
        }
    }
    Ok(())
}
