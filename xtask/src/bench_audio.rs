//! `cargo xtask bench audio`: 200 stereo 6.1 s WAVs -> normalised 4 x 257 x 382 features,
//! files/s, Kindling cold (no feature cache), filling the cache and warm (cache hits), against
//! torch.stft, librosa and numpy on the same files in the same run. The files are a stereo
//! direction set (10 directions x 20), built with `kindling data spatialize`.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

pub(crate) fn run(args: &[String]) -> Result<()> {
    let mut repeat = 3;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--repeat" => repeat = it.next().context("--repeat needs a value")?.parse()?,
            other => bail!("unknown flag {other} (usage: cargo xtask bench audio [--repeat N])"),
        }
    }
    crate::data::ensure_packages()?;
    crate::cargo(&["build", "--release", "--quiet", "-p", "kindling-cli"])?;
    crate::cargo(&["build", "--release", "--quiet", "-p", "kindling-audio", "--example", "bench_features"])?;
    let wavs = Path::new("target/bench-audio/wavs");
    if !wavs.join("manifest.csv").exists() {
        crate::data::spatialize(wavs, "20", &["--classes", "10", "--seed", "7"])?;
    }
    let python = crate::bench::venv()?;
    let has_peers = Command::new(&python).args(["-c", "import numpy, librosa"]).output()?.status.success();
    if !has_peers {
        eprintln!("installing numpy and librosa into the bench environment (once)");
        let ok = Command::new(python.with_file_name("pip"))
            .args(["install", "--quiet", "--no-cache-dir", "numpy", "librosa"])
            .status()?
            .success();
        if !ok {
            bail!("pip install numpy librosa failed");
        }
    }
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
