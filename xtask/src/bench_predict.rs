//! `cargo xtask bench predict [--rounds N] [--per-class N]`: `kindling predict` on a folder of
//! PNGs, and on a folder of stereo WAVs, against the same model's inference rate from
//! `kindling bench`, measured in the same run.
//!
//! In `target/bench-predict/`: a folder of `10 x per-class` (default 200: 2,000) 28 x 28 grey
//! PNGs exported from the shipped Fashion-MNIST subset, and a 1-epoch run of each preset
//! (`mnist_cnn`, `vgg3`) on 300 other PNGs of the same kind (an `image_dataset` pipeline, so
//! the model's input is the 1 x 28 x 28 that `kindling bench` times). Each round times
//! `kindling predict RUN FOLDER --format csv --output FILE` end to end (process start,
//! reopening the run, listing, decoding, the forward passes, writing) and reads
//! `kindling bench --model M --batch-size 256 --json`'s inference samples/s. Speed does not
//! depend on accuracy, so the runs are tiny.
//!
//! Audio: 220 stereo 6.1 s WAVs (`kindling data spatialize`, 11 directions x 20) and a
//! 1-epoch `stereo_cnn` run on them with the stereo experiment's seed input (left and right
//! STFT magnitude and phase, 4 x 257 x 382, the input `kindling bench --model stereo_cnn`
//! times); predict and bench both run batches of 16, the experiment's batch size. Predicting
//! decodes each WAV and computes its STFT features (the run's feature cache is not used).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

/// The timed models: the run's name under `target/bench-predict/runs`, the preset `kindling
/// bench` times, and the batch size of both.
const MODELS: [(&str, &str, &str); 3] =
    [("mnist_cnn", "mnist_cnn", "256"), ("vgg3", "vgg3", "256"), ("stereo_cnn", "stereo_cnn", "16")];

pub(crate) fn run(args: &[String]) -> Result<()> {
    let mut rounds = 3usize;
    let mut per_class = 200usize;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| -> Result<usize> {
            it.next().and_then(|v| v.parse().ok()).with_context(|| format!("{name} takes a positive number"))
        };
        match arg.as_str() {
            "--rounds" => rounds = value("--rounds")?.max(1),
            "--per-class" => per_class = value("--per-class")?.max(1),
            other => bail!("unknown option {other}; usage: cargo xtask bench predict [--rounds N] [--per-class N]"),
        }
    }
    crate::cargo(&["build", "--workspace", "--release", "--quiet"])?;
    let exe = PathBuf::from("target/release/kindling");
    let dir = PathBuf::from("target/bench-predict");
    std::fs::create_dir_all(&dir)?;

    let images = dir.join(format!("predict-{per_class}"));
    if !images.exists() {
        export(&exe, "train", per_class, &images)?;
    }
    let files = files_under(&images, "png")?.len();
    // The runs train on the test file's images, so the predicted ones are unseen.
    let train = dir.join("train-30");
    if !train.exists() {
        export(&exe, "t10k", 30, &train)?;
    }
    let pipeline = dir.join("pipeline.yaml");
    std::fs::write(
        &pipeline,
        "name: bench-predict\nseed: 1\ndevice: cpu\nstages:\n  - stage: image_dataset\n    with:\n      root: train-30\n      \
         channels: 1\n      valid_fraction: 0.2\n      transforms:\n        - normalize: {mean: [0.2860], std: [0.3530]}\n  \
         - stage: model\n    with:\n      preset: mnist_cnn\n  - stage: train\n    with:\n      epochs: 1\n      batch_size: 64\n",
    )?;
    for preset in ["mnist_cnn", "vgg3"] {
        let run = dir.join("runs").join(preset);
        if !run.join("model.safetensors").is_file() {
            let _ = std::fs::remove_dir_all(&run);
            let out = Command::new(&exe)
                .arg("run")
                .arg(&pipeline)
                .arg("--run-dir")
                .arg(&run)
                .args(["--set", &format!("model.preset={preset}")])
                .output()?;
            if !out.status.success() {
                bail!("training the {preset} run failed:\n{}", String::from_utf8_lossy(&out.stderr));
            }
        }
    }

    let (wavs, wav_files) = stereo_run(&exe, &dir)?;

    let nproc = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "{files} PNGs (1 x 28 x 28) in {}; {wav_files} stereo WAVs (4 x 257 x 382 features) in {}; {nproc} CPU threads; {rounds} rounds\n",
        images.display(),
        wavs.display()
    );
    println!("| round | model | batch | predict files/s | bench inference samples/s | ratio |");
    println!("|---|---|---:|---:|---:|---:|");
    let mut results: Vec<(&str, Vec<f64>, Vec<f64>)> = MODELS.iter().map(|m| (m.0, Vec::new(), Vec::new())).collect();
    for round in 1..=rounds {
        for ((name, predicted, inferred), (_, preset, batch)) in results.iter_mut().zip(MODELS) {
            let run = dir.join("runs").join(*name);
            let (input, files) = if preset == "stereo_cnn" { (&wavs, wav_files) } else { (&images, files) };
            let output = dir.join("predictions.csv");
            let start = Instant::now();
            let out = Command::new(&exe)
                .arg("predict")
                .arg(&run)
                .arg(input)
                .args(["--batch-size", batch, "--format", "csv", "--output"])
                .arg(&output)
                .output()?;
            let seconds = start.elapsed().as_secs_f64();
            if !out.status.success() {
                bail!("kindling predict failed:\n{}", String::from_utf8_lossy(&out.stderr));
            }
            let lines = std::fs::read_to_string(&output)?.lines().count();
            if lines != files + 1 {
                bail!("{}: {lines} lines for {files} files", output.display());
            }
            let rate = files as f64 / seconds;
            let bench = Command::new(&exe)
                .args(["bench", "--model", preset, "--batch-size", batch, "--json", "--device", "cpu"])
                .output()?;
            if !bench.status.success() {
                bail!("kindling bench failed:\n{}", String::from_utf8_lossy(&bench.stderr));
            }
            let json: serde_json::Value = serde_json::from_slice(&bench.stdout)?;
            let infer = json["infer_samples_per_s"].as_f64().context("bench JSON without infer_samples_per_s")?;
            println!("| {round} | {name} | {batch} | {rate:.0} | {infer:.0} | {:.2} |", rate / infer);
            predicted.push(rate);
            inferred.push(infer);
        }
    }
    println!(
        "\n| model | predict files/s (median, min-max) | inference samples/s (median, min-max) | ratio of medians |"
    );
    println!("|---|---:|---:|---:|");
    for (preset, predicted, inferred) in &results {
        let (p, i) = (median(predicted), median(inferred));
        println!(
            "| {preset} | {p:.0} ({:.0}-{:.0}) | {i:.0} ({:.0}-{:.0}) | {:.2} |",
            min(predicted),
            max(predicted),
            min(inferred),
            max(inferred),
            p / i
        );
    }
    Ok(())
}

/// The stereo WAVs (11 directions x 20, built once) and a 1-epoch `stereo_cnn` run on them with
/// the seed's 4 x 257 x 382 input; returns the folder and its WAV count.
pub(crate) fn stereo_run(exe: &Path, dir: &Path) -> Result<(PathBuf, usize)> {
    let wavs = dir.join("wavs");
    if !wavs.join("manifest.csv").exists() {
        crate::data::ensure_packages()?;
        let _ = std::fs::remove_dir_all(&wavs);
        crate::data::spatialize(&wavs, "20", &["--classes", "11", "--seed", "7"])?;
    }
    let files = files_under(&wavs, "wav")?.len();
    let run = dir.join("runs").join("stereo_cnn");
    if !run.join("model.safetensors").is_file() {
        let _ = std::fs::remove_dir_all(&run);
        let pipeline = dir.join("stereo.yaml");
        std::fs::write(
            &pipeline,
            "name: bench-predict-stereo\nseed: 1\ndevice: cpu\nstages:\n  - stage: audio_dataset\n    with:\n      \
             manifest: wavs/manifest.csv\n      valid_fraction: 0.2\n      features:\n        \
             wav: {channels: 2, sample_rate: 16000, duration: 6.1, length: pad_or_crop}\n        \
             stft: {n_fft: 512, hop_length: 256}\n        channels: [l_mag, r_mag, l_phase, r_phase]\n  \
             - stage: model\n    with:\n      preset: stereo_cnn\n  - stage: train\n    with:\n      epochs: 1\n      \
             batch_size: 16\n",
        )?;
        let out = Command::new(exe).arg("run").arg(&pipeline).arg("--run-dir").arg(&run).output()?;
        if !out.status.success() {
            bail!("training the stereo_cnn run failed:\n{}", String::from_utf8_lossy(&out.stderr));
        }
    }
    Ok((wavs, files))
}

/// `kindling data image-folder` of `per_class` grey PNGs per class from the shipped subset's
/// `prefix` files (`train` or `t10k`) into `out`.
fn export(exe: &Path, prefix: &str, per_class: usize, out: &Path) -> Result<()> {
    let data = Path::new("data/fashion-mnist");
    let status = Command::new(exe)
        .args(["data", "image-folder", "--images"])
        .arg(data.join(format!("{prefix}-images-idx3-ubyte.gz")))
        .arg("--labels")
        .arg(data.join(format!("{prefix}-labels-idx1-ubyte.gz")))
        .arg("--out")
        .arg(out)
        .args(["--per-class", &per_class.to_string()])
        .status()?;
    if !status.success() {
        bail!("exporting {} failed", out.display());
    }
    Ok(())
}

/// The files under `dir` (recursively) whose extension is `ext`, sorted by path.
pub(crate) fn files_under(dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            found.extend(files_under(&path, ext)?);
        } else if path.extension().is_some_and(|e| e == ext) {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(0.0, f64::max)
}
