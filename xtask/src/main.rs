//! Project automation: `cargo xtask <task>`. Cheapest checks run first.
//!
//! - `ci`: format check, clippy with warnings denied, then every test (the README's test
//!   command, and what `.ci/run` runs).
//! - `sweep <pipeline> [kindling sweep options]`: builds the release `kindling` binary and runs
//!   `kindling sweep` with the same arguments (`--parallel N`, `--resume`, `--dry-run`, ...).
//!   The engine is the `kindling-sweep` crate; this is a thin driver.
//! - `data stereo [--per-class N]`: the stereo direction data sets of experiment 1 (installs the
//!   measured HRIRs and recordings with apt-get when missing), under `data/stereo-direction/`.
//! - `check tensorboard`: a short run's event file read back by the `tensorboard` Python
//!   package and compared with its `history.csv`.
//! - `bench conv [--iterations N]`: the direct loop, im2col + GEMM and burn's conv2d on the
//!   seed's shapes and a realistic layer, forward and forward + backward (the kernels'
//!   `bench_conv` example).
//! - `bench audio [--baseline-only | --no-baseline]`: 200 stereo WAVs -> normalised 4 x 257 x
//!   382 features, files/s cold and warm, against torch.stft, librosa and numpy in the same run;
//!   then experiment 1's trivial baseline (logistic regression on per-band level differences).
//! - `bench sweep [--parallel N]`: a 16-trial sweep of a ~1 s model against 16 single runs
//!   divided by the parallelism: the sweep's overhead per trial.
//! - `bench serve [--requests N] [--clients N]`: `kindling serve` on localhost under N
//!   concurrent clients: requests/s, p50/p99 latency, failures, mean batch, against the model's
//!   inference samples/s from `kindling bench` in the same run.
//! - `bench train [--model M[,M...]|all] [--batch-size N] [--device D] [--no-peer]`: training
//!   and inference samples/s of preset models on a device (`all`: the four CPU presets, one
//!   table), against the same models in PyTorch on the CPU with 2 threads, measured in the same
//!   run. PyTorch is installed into a throwaway virtual
//!   environment under `target/bench-venv` on first use. `--profile` adds where a training
//!   step's time goes on both sides.
//! - `bench predict [--rounds N] [--per-class N]`: `kindling predict` on a folder of 2,000 PNGs
//!   (images/s, end to end) for 1-epoch `mnist_cnn` and `vgg3` runs, against the same models'
//!   inference samples/s from `kindling bench --batch-size 256`, measured in the same rounds.
//! - `bench tpe [--seeds N] [--trials N] [--parallel N] [--train-limit N] [--epochs N]`: TPE
//!   against random search on `pipelines/quickstart-tpe.yaml`: best-so-far validation accuracy
//!   by number of trials, averaged over sweep seeds.
//! - `bench diagnostics [--rounds N] [--epochs N]`: the quickstart with `train.diagnostics` on
//!   and off, alternating: what the run diagnostics cost in training samples/s and stage time.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

mod bench;
mod bench_audio;
mod bench_diagnostics;
mod bench_images;
mod bench_predict;
mod bench_serve;
mod bench_sweep;
mod bench_tpe;
mod check;
mod data;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    std::env::set_current_dir(&root)?;
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("bench") if args.get(1).map(String::as_str) == Some("sweep") => bench_sweep::run(&args[2..]),
        Some("bench") if args.get(1).map(String::as_str) == Some("audio") => bench_audio::run(&args[2..]),
        Some("bench") if args.get(1).map(String::as_str) == Some("serve") => bench_serve::run(&args[2..]),
        Some("bench") if args.get(1).map(String::as_str) == Some("predict") => bench_predict::run(&args[2..]),
        Some("bench") if args.get(1).map(String::as_str) == Some("tpe") => bench_tpe::run(&args[2..]),
        Some("bench") if args.get(1).map(String::as_str) == Some("diagnostics") => bench_diagnostics::run(&args[2..]),
        Some("bench") => bench::run(&args[1..]),
        Some("sweep") => sweep(&args[1..]),
        Some("check") => check::run(&args[1..]),
        Some("data") => data::run(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask ci | sweep <pipeline> [--parallel N] [--resume] [--dry-run] | bench train [--model M[,M...]|all] [--batch-size N] [--device D] [--no-peer] [--profile] | bench audio [--baseline-only | --no-baseline] | bench conv [--iterations N] | bench sweep [--parallel N] | bench predict [--rounds N] [--per-class N] | bench serve [--requests N] [--clients N] | bench tpe [--seeds N] [--trials N] | bench diagnostics [--rounds N] [--epochs N]"
            );
            bail!("unknown or missing task")
        }
    }
}

fn ci() -> Result<()> {
    cargo(&["fmt", "--all", "--", "--check"]).context("`cargo fmt --all` fixes the formatting")?;
    // `--release` for clippy too: build scripts and proc macros are then shared with the
    // release build of the tests instead of being compiled twice. Clippy reads the default
    // build (what `cargo kindling` compiles); the tests run with the GPU backend too, so the
    // wgpu smoke test runs where an adapter exists (CI installs a software one).
    cargo(&["clippy", "--workspace", "--all-targets", "--release", "--", "-D", "warnings"])?;
    cargo(&["test", "--workspace", "--release", "--features", "kindling-cli/wgpu"])?;
    Ok(())
}

/// `cargo xtask sweep ...`: the release binary, then `kindling sweep ...` with the caller's
/// arguments; its exit status is ours.
fn sweep(args: &[String]) -> Result<()> {
    if args.is_empty() {
        bail!("usage: cargo xtask sweep <pipeline> [--parallel N] [--resume] [--dir D] [--dry-run]");
    }
    cargo(&["build", "--release", "--quiet", "-p", "kindling-cli"])?;
    let exe = Path::new("target/release/kindling");
    let status =
        Command::new(exe).arg("sweep").args(args).status().with_context(|| format!("running {}", exe.display()))?;
    if !status.success() {
        std::process::exit(status.code().unwrap_or(1));
    }
    Ok(())
}

/// Runs cargo with `args`, failing when it fails.
pub(crate) fn cargo(args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("$ cargo {}", args.join(" "));
    let status = Command::new(cargo).args(args).status()?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_owned).unwrap_or_default()
}
