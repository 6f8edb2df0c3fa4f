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
const ALL_MODELS: &[&str] = &["mnist_cnn", "mnist_cnn_bn", "lenet5", "vgg3", "stereo_cnn"];

/// A preset's batch size and timed steps unless `--batch-size`/`--steps` say otherwise: the
/// stereo experiment's batch of 16 spectrograms (4 x 257 x 382) takes about half a second a step
/// on 2 cores, so fewer steps; the MNIST-size presets run batches of 64.
fn defaults(model: &str) -> (&'static str, &'static str) {
    if model == "stereo_cnn" { ("16", "15") } else { ("64", "60") }
}

struct Options {
    /// The preset being measured; `models` lists them all.
    model: String,
    models: Vec<String>,
    /// `--batch-size` and `--steps` when given, for every preset.
    batch_size: Option<String>,
    steps: Option<String>,
    device: String,
    repeat: usize,
    /// Threads on both sides (Kindling's rayon pool, torch's intra-op pool).
    threads: usize,
    /// `avx2`: Kindling built without its AVX-512 paths, PyTorch held to AVX2.
    isa: Option<String>,
    peer: bool,
    profile: bool,
}

impl Options {
    fn batch_size(&self) -> &str {
        self.batch_size.as_deref().unwrap_or(defaults(&self.model).0)
    }

    fn steps(&self) -> &str {
        self.steps.as_deref().unwrap_or(defaults(&self.model).1)
    }

    /// The CLI binary: the default build, or with `--isa avx2` the one built without the
    /// `avx512` feature.
    fn kindling(&self) -> &'static str {
        if self.isa.is_some() { AVX2_BINARY } else { "target/release/kindling" }
    }

    /// The Kindling side's command, its thread count set.
    fn kindling_command(&self) -> Command {
        let mut cmd = Command::new(self.kindling());
        cmd.env("RAYON_NUM_THREADS", self.threads.to_string());
        cmd
    }

    /// The PyTorch side's command, its thread count set and, with `--isa avx2`, ATen, oneDNN
    /// and MKL held to AVX2 (each has its own dispatch and its own switch).
    fn torch_command(&self, python: &Path) -> Command {
        let mut cmd = Command::new(python);
        cmd.args(["xtask/bench/torch_peer.py", "--threads", &self.threads.to_string()]);
        cmd.args(["--model", &self.model, "--batch-size", self.batch_size()]);
        if self.isa.is_some() {
            cmd.envs(AVX2_TORCH);
        }
        cmd
    }
}

/// Where `--isa avx2` keeps the CLI built without its `avx512` feature.
const AVX2_BINARY: &str = "target/avx2/kindling";

/// What holds PyTorch to AVX2: ATen's kernels, oneDNN's convolutions and MKL's GEMMs.
const AVX2_TORCH: [(&str, &str); 3] =
    [("ATEN_CPU_CAPABILITY", "avx2"), ("ONEDNN_MAX_CPU_ISA", "AVX2"), ("MKL_ENABLE_INSTRUCTIONS", "AVX2")];

pub(crate) fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("train") => train(&args[1..]),
        Some("conv") => conv(&args[1..]),
        Some("images") => crate::bench_images::run(&args[1..]),
        _ => bail!(
            "usage: cargo xtask bench train [--model M[,M...]|all] [--batch-size N] [--device D] [--steps N] [--repeat N] [--threads N] [--isa avx2] [--no-peer] [--profile] | bench conv [--iterations N] | bench images [--repeat N]"
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
        batch_size: None,
        steps: None,
        device: "cpu".into(),
        repeat: 3,
        threads: 2,
        isa: None,
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
            "--batch-size" => o.batch_size = Some(value()?),
            "--device" => o.device = value()?,
            "--steps" => o.steps = Some(value()?),
            "--repeat" => o.repeat = value()?.parse()?,
            "--threads" => {
                o.threads = value()?.parse()?;
                if o.threads == 0 {
                    bail!("--threads needs at least 1");
                }
            }
            "--isa" => {
                let v = value()?;
                if v != "avx2" {
                    bail!("--isa takes `avx2` (the default build already picks AVX-512 where the CPU has it)");
                }
                o.isa = Some(v);
            }
            "--no-peer" => o.peer = false,
            "--profile" => o.profile = true,
            other => bail!("unknown flag {other}"),
        }
    }
    if o.isa.is_some() {
        // Built in the same target directory (only gemm, burn's CPU backend and what depends on
        // them differ), copied aside, and the default binary put back.
        crate::cargo(&["build", "--release", "--quiet", "-p", "kindling-cli", "--no-default-features"])?;
        std::fs::create_dir_all("target/avx2")?;
        std::fs::copy("target/release/kindling", AVX2_BINARY).context("copying the AVX2 build aside")?;
    }
    // The GPU backend is a feature of its own (not in the default build).
    let mut build = vec!["build", "--release", "--quiet", "-p", "kindling-cli"];
    if o.device != "cpu" {
        build.extend(["--features", "wgpu"]);
    }
    crate::cargo(&build)?;
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
    let status = o
        .kindling_command()
        .args(["bench", "--model", &o.model, "--batch-size", o.batch_size(), "--device", &o.device])
        .args(["--steps", "10", "--profile", "30"])
        .status()?;
    if !status.success() {
        bail!("kindling bench --profile failed");
    }
    if let Some(py) = python {
        println!("\nPyTorch, torch.profiler over 10 training steps (self CPU time):\n");
        let out = o.torch_command(py).args(["--train-steps", "10", "--infer-batches", "10", "--profile"]).output()?;
        print!("{}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

fn kindling(o: &Options) -> Result<Value> {
    let out = o
        .kindling_command()
        .args(["bench", "--json", "--model", &o.model, "--batch-size", o.batch_size(), "--device", &o.device])
        .args(["--steps", o.steps()])
        .output()?;
    if !out.status.success() {
        bail!("kindling bench failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn torch(python: &Path, o: &Options) -> Result<Value> {
    let out = o.torch_command(python).args(["--train-steps", o.steps(), "--infer-batches", o.steps()]).output()?;
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
    let field = |v: Option<&Value>, key: &str| v.and_then(|v| v[key].as_str()).unwrap_or("-").to_owned();
    let ours = first.and_then(|r| r.1.first());
    let theirs = first.and_then(|r| r.2.first());
    let device = field(ours, "device");
    println!(
        "\nmachine: {cpu}, {cores} cores; {} rounds, medians; {} thread(s) a side; Kindling's kernels {}, PyTorch {} ({}){}\n",
        o.repeat,
        o.threads,
        field(ours, "isa"),
        field(theirs, "torch"),
        field(theirs, "isa"),
        if o.isa.is_some() {
            format!(" held by {}", AVX2_TORCH.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" "))
        } else {
            String::new()
        }
    );
    println!("| model | batch | Kindling device | metric | Kindling | PyTorch (CPU) | ratio |");
    println!("|---|---|---|---|---:|---:|---:|");
    for (model, ours, theirs) in results {
        let batch = ours.first().and_then(|v| v["batch_size"].as_u64()).unwrap_or(0);
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
            println!("| {model} | {batch} | {device} | {label} | {} | {} | {ratio} |", fmt(a), fmt(b));
        }
    }
}
