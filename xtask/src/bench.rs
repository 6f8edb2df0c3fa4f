//! `cargo xtask bench train`: Kindling against PyTorch, measured in the same run.
//! `cargo xtask bench conv`: convolution from first principles (`kindling-kernels`) against
//! burn's.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// torch's CPU path needs these CUDA runtime libraries at load time even without a GPU (the
/// only Linux x86-64 wheel published is a CUDA build); the pins are torch 2.11.0's own.
/// Installing just these, with `--no-deps`, skips about 0.5 GB of GPU-only packages.
const TORCH: &str = "torch==2.11.0";
const TORCH_PURE_DEPS: &[&str] =
    &["filelock", "typing-extensions>=4.10", "sympy>=1.13.3", "networkx>=2.5.1", "jinja2", "fsspec>=0.8.5"];
const TORCH_NATIVE_DEPS: &[&str] = &[
    "nvidia-cuda-runtime==13.0.96",
    "nvidia-cuda-cupti==13.0.85",
    "nvidia-cublas==13.1.0.3",
    "nvidia-cufft==12.0.0.61",
    "nvidia-cufile==1.15.1.6",
    "nvidia-curand==10.4.0.35",
    "nvidia-cusparse==12.6.3.3",
    "nvidia-nvjitlink==13.0.88",
    "nvidia-cudnn-cu13==9.19.0.56",
    "nvidia-cusparselt-cu13==0.8.0",
    "nvidia-nccl-cu13==2.28.9",
    "nvidia-nvshmem-cu13==3.4.5",
];

/// The presets `--model all` measures: every one the PyTorch peer also builds.
const ALL_MODELS: &[&str] = &["mnist_cnn", "mnist_cnn_bn", "lenet5", "vgg3"];

struct Options {
    /// The preset being measured; `models` lists them all.
    model: String,
    models: Vec<String>,
    batch_size: String,
    device: String,
    steps: String,
    repeat: usize,
    peer: bool,
    profile: bool,
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("train") => train(&args[1..]),
        Some("conv") => conv(&args[1..]),
        Some("images") => crate::bench_images::run(&args[1..]),
        _ => bail!(
            "usage: cargo xtask bench train [--model M[,M...]|all] [--batch-size N] [--device D] [--steps N] [--repeat N] [--no-peer] [--profile] | bench conv [--iterations N] | bench images [--repeat N]"
        ),
    }
}

/// The direct loop, im2col + GEMM and burn's `conv2d` on the seed's shapes and a realistic
/// layer: `kindling-kernels`' `bench_conv` example, which prints the table.
fn conv(args: &[String]) -> Result<()> {
    let mut cmd = vec!["run", "--release", "--quiet", "-p", "kindling-kernels", "--example", "bench_conv", "--"];
    cmd.extend(args.iter().map(String::as_str));
    crate::cargo(&cmd)
}

fn train(args: &[String]) -> Result<()> {
    let mut o = Options {
        model: String::new(),
        models: vec!["mnist_cnn".into()],
        batch_size: "64".into(),
        device: "cpu".into(),
        steps: "60".into(),
        repeat: 3,
        peer: true,
        profile: false,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => {
                let v = value()?;
                o.models = if v == "all" {
                    ALL_MODELS.iter().map(|m| (*m).to_owned()).collect()
                } else {
                    v.split(',').map(str::trim).filter(|m| !m.is_empty()).map(str::to_owned).collect()
                };
                if o.models.is_empty() {
                    bail!("--model needs a preset name, a comma-separated list or `all`");
                }
            }
            "--batch-size" => o.batch_size = value()?,
            "--device" => o.device = value()?,
            "--steps" => o.steps = value()?,
            "--repeat" => o.repeat = value()?.parse()?,
            "--no-peer" => o.peer = false,
            "--profile" => o.profile = true,
            other => bail!("unknown flag {other}"),
        }
    }
    crate::cargo(&["build", "--release", "--quiet", "-p", "kindling-cli"])?;
    let python = if o.peer { Some(venv()?) } else { None };

    // Alternate the two so drift in machine load touches both alike; report medians. Several
    // presets run one after the other, each with its own alternating rounds, into one table.
    let mut results = Vec::new();
    for model in o.models.clone() {
        o.model = model;
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for round in 0..o.repeat {
            eprintln!("{}: round {}/{}", o.model, round + 1, o.repeat);
            ours.push(kindling(&o)?);
            if let Some(py) = &python {
                theirs.push(torch(py, &o)?);
            }
        }
        results.push((o.model.clone(), ours, theirs));
    }
    print_table(&o, &results);
    if o.profile {
        for model in o.models.clone() {
            o.model = model;
            profile(&o, python.as_deref())?;
        }
    }
    Ok(())
}

/// Where a training step's time goes, on both sides: Kindling's per-part timings and
/// torch.profiler's table of operators.
fn profile(o: &Options, python: Option<&Path>) -> Result<()> {
    println!("\n{}: Kindling, per part of a training step:\n", o.model);
    let status = Command::new("target/release/kindling")
        .args(["bench", "--model", &o.model, "--batch-size", &o.batch_size, "--device", &o.device])
        .args(["--steps", "10", "--profile", "30"])
        .status()?;
    if !status.success() {
        bail!("kindling bench --profile failed");
    }
    if let Some(py) = python {
        println!("\nPyTorch, torch.profiler over 10 training steps (self CPU time):\n");
        let out = Command::new(py)
            .args(["xtask/bench/torch_peer.py", "--threads", "2", "--model", &o.model, "--batch-size", &o.batch_size])
            .args(["--train-steps", "10", "--infer-batches", "10", "--profile"])
            .output()?;
        print!("{}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

fn kindling(o: &Options) -> Result<Value> {
    let out = Command::new("target/release/kindling")
        .args([
            "bench",
            "--json",
            "--model",
            &o.model,
            "--batch-size",
            &o.batch_size,
            "--device",
            &o.device,
            "--steps",
            &o.steps,
        ])
        .output()?;
    if !out.status.success() {
        bail!("kindling bench failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn torch(python: &Path, o: &Options) -> Result<Value> {
    let out = Command::new(python)
        .args(["xtask/bench/torch_peer.py", "--threads", "2", "--model", &o.model, "--batch-size", &o.batch_size])
        .args(["--train-steps", &o.steps, "--infer-batches", &o.steps])
        .output()?;
    if !out.status.success() {
        bail!("the PyTorch peer failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// A throwaway virtual environment with PyTorch for CPU, under `target/`.
pub(crate) fn venv() -> Result<std::path::PathBuf> {
    let dir = Path::new("target/bench-venv");
    let python = dir.join("bin/python");
    let marker = dir.join(format!(".{TORCH}"));
    if marker.exists() {
        return Ok(python);
    }
    eprintln!("installing {TORCH} for CPU into {} (about 2.2 GB, once)", dir.display());
    sh(Command::new("python3").args(["-m", "venv", "--clear"]).arg(dir))?;
    let pip = dir.join("bin/pip");
    sh(Command::new(&pip).args(["install", "--quiet", "--no-cache-dir", "--no-deps", TORCH]))?;
    sh(Command::new(&pip).args(["install", "--quiet", "--no-cache-dir"]).args(TORCH_PURE_DEPS))?;
    sh(Command::new(&pip).args(["install", "--quiet", "--no-cache-dir", "--no-deps"]).args(TORCH_NATIVE_DEPS))?;
    std::fs::write(&marker, "")?;
    Ok(python)
}

pub(crate) fn sh(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(())
}

fn median(values: &[Value], key: &str) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().filter_map(|x| x[key].as_f64()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

/// One table for every preset measured: (preset, Kindling's rounds, PyTorch's rounds).
fn print_table(o: &Options, results: &[(String, Vec<Value>, Vec<Value>)]) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let first = results.first();
    let device = first.and_then(|r| r.1.first()).and_then(|v| v["device"].as_str()).unwrap_or("?");
    let torch = first.and_then(|r| r.2.first()).and_then(|v| v["torch"].as_str()).unwrap_or("-");
    println!("\nmachine: {cpu}, {cores} cores; {} rounds, medians; PyTorch {torch} with 2 threads\n", o.repeat);
    println!("| model | batch | Kindling device | metric | Kindling | PyTorch (CPU) | ratio |");
    println!("|---|---|---|---|---:|---:|---:|");
    for (model, ours, theirs) in results {
        for (label, key, unit) in [
            ("training", "train_samples_per_s", "samples/s"),
            ("inference", "infer_samples_per_s", "samples/s"),
            ("peak memory", "peak_rss_mib", "MiB"),
        ] {
            let a = median(ours, key);
            let b = median(theirs, key);
            let fmt = |x: Option<f64>| x.map_or_else(|| "-".to_owned(), |x| format!("{x:.0} {unit}"));
            let ratio = match (a, b) {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
                _ => "-".to_owned(),
            };
            println!("| {model} | {} | {device} | {label} | {} | {} | {ratio} |", o.batch_size, fmt(a), fmt(b));
        }
    }
}
