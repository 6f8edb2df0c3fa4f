//! `cargo xtask data stereo` and `cargo xtask data fashion-rgb`: the data sets of the
//! experiments, built from real data installed from Debian packages (nothing of them is
//! committed).
//!
//! `data/fashion-mnist-rgb/{train,test}`: the whole of Fashion-MNIST (60,000 + 10,000 images)
//! as 3-channel PNGs in class folders, the image folder of experiment 3 (no package ships an
//! RGB set; the grey value is repeated in each channel).
//!
//! - `data/stereo-direction/kemar`: 11 directions x 80 clean samples, KEMAR head.
//! - `data/stereo-direction/kemar-hard`: the same directions with diffuse noise at 0 dB SNR and a
//!   0.4 s RT60 reverberation tail (training set of the hard experiment).
//! - `data/stereo-direction/fabian-hard`: as kemar-hard but through the FABIAN head and another
//!   seed (validation set of the hard experiment: a head the model never heard).
//! - `data/stereo-direction/fabian`: clean, through the FABIAN head, its own seed (the clean
//!   cross-head test set).
//!
//! The binary is built with `--workspace`, the feature set every other build of this checkout
//! uses, so the build reuses what is there instead of rebuilding burn for another one.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The package Fashion-MNIST comes from, and where it puts the IDX files.
pub(crate) const FASHION_MNIST: (&str, &str) = ("dataset-fashion-mnist", "/usr/share/datasets/fashion-mnist");

/// Fashion-MNIST's class names, in label order.
pub(crate) const FASHION_CLASSES: &str = "T-shirt/top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Ankle boot";

/// The packages the sets are made from, and a file each provides.
const PACKAGES: &[(&str, &str)] = &[
    ("soundscaperenderer-common", "/usr/share/ssr/impulse_responses/hrirs/hrirs_kemar.wav"),
    ("alsa-utils", "/usr/share/sounds/alsa/Front_Center.wav"),
    ("sound-theme-freedesktop", "/usr/share/sounds/freedesktop/stereo/bell.oga"),
];

pub(crate) fn run(args: &[String]) -> Result<()> {
    let mut per_class = "80".to_owned();
    match args.first().map(String::as_str) {
        Some("stereo") => {}
        Some("fashion-rgb") => {
            crate::cargo(&["build", "--release", "--quiet", "--workspace"])?;
            let out = Path::new("data/fashion-mnist-rgb");
            for (split, prefix) in [("train", "train"), ("test", "t10k")] {
                fashion_rgb(prefix, &out.join(split), None)?;
            }
            return Ok(());
        }
        _ => bail!("usage: cargo xtask data stereo [--per-class N] | cargo xtask data fashion-rgb"),
    }
    let mut it = args[1..].iter();
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--per-class" => per_class = it.next().cloned().context("--per-class needs a value")?,
            other => bail!("unknown flag {other}"),
        }
    }
    ensure_packages()?;
    crate::cargo(&["build", "--release", "--quiet", "--workspace"])?;
    let sets: &[(&str, &[&str])] = &[
        ("kemar", &["--head", "kemar", "--seed", "1"]),
        ("kemar-hard", &["--head", "kemar", "--seed", "2", "--snr-db", "0", "--rt60", "0.4"]),
        ("fabian-hard", &["--head", "fabian", "--seed", "3", "--snr-db", "0", "--rt60", "0.4"]),
        ("fabian", &["--head", "fabian", "--seed", "4"]),
    ];
    for (name, extra) in sets {
        spatialize(&Path::new("data/stereo-direction").join(name), &per_class, extra)?;
    }
    Ok(())
}

/// Runs `kindling data spatialize --out <out> --per-class <n> <extra...>` (the binary must be
/// built).
pub(crate) fn spatialize(out: &Path, per_class: &str, extra: &[&str]) -> Result<()> {
    eprintln!("building {}", out.display());
    let status = Command::new("target/release/kindling")
        .args(["data", "spatialize", "--out"])
        .arg(out)
        .args(["--per-class", per_class])
        .args(extra)
        .status()?;
    if !status.success() {
        bail!("kindling data spatialize failed for {}", out.display());
    }
    Ok(())
}

/// Writes Fashion-MNIST's `prefix` (`train` or `t10k`) images as an RGB image folder at `out`
/// (the first `per_class` of each class, or all), unless `out` already holds one. The binary
/// must be built.
pub(crate) fn fashion_rgb(prefix: &str, out: &Path, per_class: Option<usize>) -> Result<()> {
    if out.is_dir() && std::fs::read_dir(out)?.next().is_some() {
        eprintln!("{} exists; keeping it", out.display());
        return Ok(());
    }
    ensure(&[FASHION_MNIST])?;
    let idx = Path::new(FASHION_MNIST.1);
    let mut cmd = Command::new("target/release/kindling");
    cmd.args(["data", "image-folder", "--rgb", "--classes", FASHION_CLASSES, "--images"])
        .arg(idx.join(format!("{prefix}-images-idx3-ubyte.gz")))
        .arg("--labels")
        .arg(idx.join(format!("{prefix}-labels-idx1-ubyte.gz")))
        .arg("--out")
        .arg(out);
    if let Some(n) = per_class {
        cmd.args(["--per-class", &n.to_string()]);
    }
    if !cmd.status()?.success() {
        bail!("kindling data image-folder failed for {}", out.display());
    }
    Ok(())
}

/// Installs the packages the stereo sets are made from, when their files are missing.
pub(crate) fn ensure_packages() -> Result<()> {
    ensure(PACKAGES)
}

/// Installs with apt-get those of `packages` whose file (or folder) is missing.
pub(crate) fn ensure(packages: &[(&str, &str)]) -> Result<()> {
    let missing: Vec<&str> = packages.iter().filter(|(_, f)| !Path::new(f).exists()).map(|(p, _)| *p).collect();
    if !missing.is_empty() {
        eprintln!("$ apt-get install -y --no-install-recommends {}", missing.join(" "));
        let ok = Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .with_context(|| format!("apt-get is needed to install {}", missing.join(" ")))?
            .success();
        if !ok {
            bail!("apt-get install {} failed (run it as root, after apt-get update)", missing.join(" "));
        }
    }
    Ok(())
}
