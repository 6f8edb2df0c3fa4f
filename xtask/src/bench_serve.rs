//! `cargo xtask bench serve`: `kindling serve` under load on localhost.
//!
//! A small Fashion-MNIST run (`pipelines/quickstart.yaml`, 1,000 samples, one epoch; reused
//! from `target/bench-serve/run` when there) is served on 127.0.0.1. After 20 warm-up
//! requests, `--clients` threads (8) send `--requests` POSTs (400) of 28 x 28 PNGs, one
//! connection per request, as fast as answers come; then one client sends 100 more, one at a
//! time. Reported: requests/s, p50 and p99 latency, failed requests (anything but 200), and
//! the server's mean batch size; then the model's inference samples/s from `kindling bench
//! --model mnist_cnn --json` (batch 64, synthetic data) in the same run, for comparison.
//!
//! `--audio`: the same with the stereo model of `cargo xtask bench predict` (a 1-epoch
//! `stereo_cnn` run on 4 x 257 x 382 STFT features, built there when missing) and its 220
//! stereo 6.1 s WAVs as `audio/wav` bodies; the inference figure is `kindling bench --model
//! stereo_cnn --batch-size 16`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

pub(crate) fn run(args: &[String]) -> Result<()> {
    let mut requests = 400;
    let mut clients = 8;
    let mut audio = false;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--requests" => requests = value()?.parse()?,
            "--clients" => clients = value()?.parse()?,
            "--audio" => audio = true,
            other => {
                bail!("unknown flag {other} (usage: cargo xtask bench serve [--requests N] [--clients N] [--audio])")
            }
        }
    }
    crate::cargo(&["build", "--workspace", "--release", "--quiet"])?;
    let exe = std::path::absolute("target/release/kindling")?;
    let scratch = std::path::absolute("target/bench-serve")?;
    let (run, bodies, model) = if audio { audio_run(&exe)? } else { image_run(&exe, &scratch)? };
    serve(&exe, &run, &bodies, model, requests, clients)
}

/// What a benchmark serves: the run, the request bodies, and the model's preset.
type Served = (std::path::PathBuf, Arc<Vec<(Vec<u8>, &'static str)>>, &'static str);

/// The stereo run and WAVs of `cargo xtask bench predict`, made there when missing.
fn audio_run(exe: &std::path::Path) -> Result<Served> {
    let dir = std::path::absolute("target/bench-predict")?;
    std::fs::create_dir_all(&dir)?;
    let (wavs, _) = crate::bench_predict::stereo_run(exe, &dir)?;
    let bodies = crate::bench_predict::files_under(&wavs, "wav")?
        .iter()
        .map(|path| Ok((std::fs::read(path)?, "audio/wav")))
        .collect::<Result<Vec<_>>>()?;
    if bodies.is_empty() {
        bail!("no WAVs under {}", wavs.display());
    }
    Ok((dir.join("runs").join("stereo_cnn"), Arc::new(bodies), "stereo_cnn"))
}

/// A 1-epoch quickstart run on 1,000 images and 20 of the shipped PNGs.
fn image_run(exe: &std::path::Path, scratch: &std::path::Path) -> Result<Served> {
    let run = scratch.join("run");
    if !run.join("model.safetensors").is_file() {
        let _ = std::fs::remove_dir_all(&run);
        let out = Command::new(exe)
            .args(["run", "pipelines/quickstart.yaml", "--run-dir"])
            .arg(&run)
            .args(["--set", "device=cpu", "--set", "idx_dataset.train_limit=1000"])
            .args(["--set", "idx_dataset.test_limit=200", "--set", "train.epochs=1"])
            .output()?;
        if !out.status.success() {
            bail!("training the run failed: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    let images = scratch.join("images");
    if !images.is_dir() {
        let out = Command::new(exe)
            .args(["data", "image-folder", "--images", "data/fashion-mnist/train-images-idx3-ubyte.gz"])
            .args(["--labels", "data/fashion-mnist/train-labels-idx1-ubyte.gz", "--out"])
            .arg(&images)
            .args(["--per-class", "2"])
            .output()?;
        if !out.status.success() {
            bail!("exporting images failed: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    let pngs = crate::bench_predict::files_under(&images, "png")?
        .iter()
        .map(|path| Ok((std::fs::read(path)?, "image/png")))
        .collect::<Result<Vec<_>>>()?;
    Ok((run, Arc::new(pngs), "mnist_cnn"))
}

/// Serves `run`, loads it, stops it and prints the figures beside `model`'s inference rate.
fn serve(
    exe: &std::path::Path,
    run: &std::path::Path,
    pngs: &Arc<Vec<(Vec<u8>, &'static str)>>,
    model: &str,
    requests: usize,
    clients: usize,
) -> Result<()> {
    let mut child = Command::new(exe)
        .arg("serve")
        .arg(run)
        .args(["--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut first = String::new();
    BufReader::new(child.stdout.take().context("no stdout")?).read_line(&mut first)?;
    let Some(addr) = first.trim().strip_prefix("listening on http://").map(str::to_owned) else {
        let _ = child.kill();
        bail!("the server did not start: {first}");
    };

    let (_, warm_failed) = load(&addr, pngs, 20, 1);
    let start = Instant::now();
    let (mut latencies, failed) = load(&addr, pngs, requests, clients);
    let wall = start.elapsed().as_secs_f64();
    let (mut single, single_failed) = load(&addr, pngs, 100, 1);

    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status()?;
    let status = child.wait()?;
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut stderr)?;
    }
    if !status.success() {
        bail!("the server exited with {status}: {stderr}");
    }
    // "stopped after N prediction request(s) in M batch(es)"
    let numbers: Vec<f64> = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("stopped after"))
        .map(|l| l.split(' ').filter_map(|w| w.parse().ok()).collect())
        .unwrap_or_default();
    let mean_batch = match numbers.as_slice() {
        [n, m] if *m > 0.0 => n / m,
        _ => f64::NAN,
    };

    let batch = if model == "stereo_cnn" { "16" } else { "64" };
    let out = Command::new(exe).args(["bench", "--model", model, "--batch-size", batch, "--json"]).output()?;
    let bench: serde_json::Value = serde_json::from_slice(&out.stdout).context("kindling bench --json")?;
    let infer = bench["infer_samples_per_s"].as_f64().unwrap_or(f64::NAN);

    let (p50, p99) = percentiles(&mut latencies);
    let (s50, s99) = percentiles(&mut single);
    println!("kindling serve, {model} run, {requests} requests from {clients} clients (one connection each):");
    println!(
        "  throughput {:.0} requests/s, latency p50 {p50:.1} ms, p99 {p99:.1} ms, failed {failed}",
        requests as f64 / wall
    );
    println!("  one client, 100 requests: p50 {s50:.1} ms, p99 {s99:.1} ms, failed {single_failed}");
    println!("  mean batch over every request (warm-up and single client included): {mean_batch:.1}");
    println!("  model inference (kindling bench --model {model}, batch {batch}): {infer:.0} samples/s");
    println!(
        "| {:.0} req/s | {p50:.1} ms | {p99:.1} ms | {failed} | {s50:.1} ms | {mean_batch:.1} | {infer:.0} samples/s |",
        requests as f64 / wall
    );
    let failed = failed + warm_failed + single_failed;
    if failed > 0 {
        bail!("{failed} request(s) failed");
    }
    Ok(())
}

/// Sends `n` requests from `clients` threads; returns each successful latency (ms) and the
/// number of failures.
fn load(addr: &str, pngs: &Arc<Vec<(Vec<u8>, &'static str)>>, n: usize, clients: usize) -> (Vec<f64>, usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (addr, pngs, next) = (addr.to_owned(), Arc::clone(pngs), Arc::clone(&next));
            std::thread::spawn(move || {
                let (mut latencies, mut failed) = (Vec::new(), 0);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let start = Instant::now();
                    let (body, kind) = &pngs[i % pngs.len()];
                    match post(&addr, body, kind) {
                        Ok(200) => latencies.push(start.elapsed().as_secs_f64() * 1e3),
                        _ => failed += 1,
                    }
                }
                (latencies, failed)
            })
        })
        .collect();
    let (mut all, mut failed) = (Vec::new(), 0);
    for t in threads {
        match t.join() {
            Ok((l, f)) => {
                all.extend(l);
                failed += f;
            }
            Err(_) => failed += 1,
        }
    }
    (all, failed)
}

/// One `POST /predict` on a fresh connection; the status of the answer (its body is read
/// through to the end).
fn post(addr: &str, png: &[u8], kind: &str) -> Result<u16> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let head = format!(
        "POST /predict HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        png.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(png)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let text = String::from_utf8_lossy(&answer);
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).context("no status line")?;
    if !text.contains("\"predictions\"") && status == 200 {
        bail!("a 200 without predictions");
    }
    Ok(status)
}

fn percentiles(latencies: &mut [f64]) -> (f64, f64) {
    if latencies.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}
