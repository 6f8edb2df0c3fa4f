//! `cargo xtask data stereo`: the stereo direction data sets of experiment 1, built from real
//! measurements installed from Debian packages (nothing of them is committed).
//!
//! - `data/stereo-direction/kemar`: 11 directions x 80 clean samples, KEMAR head.
//! - `data/stereo-direction/kemar-hard`: the same directions with diffuse noise at 0 dB SNR and a
//!   0.4 s RT60 reverberation tail (training set of the hard experiment).
//! - `data/stereo-direction/fabian-hard`: as kemar-hard but through the FABIAN head and another
//!   seed (validation set of the hard experiment: a head the model never heard).

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

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
        _ => bail!("usage: cargo xtask data stereo [--per-class N]"),
    }
    let mut it = args[1..].iter();
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--per-class" => per_class = it.next().cloned().context("--per-class needs a value")?,
            other => bail!("unknown flag {other}"),
        }
    }
    ensure_packages()?;
    crate::cargo(&["build", "--release", "--quiet", "-p", "kindling-cli"])?;
    let sets: &[(&str, &[&str])] = &[
        ("kemar", &["--head", "kemar", "--seed", "1"]),
        ("kemar-hard", &["--head", "kemar", "--seed", "2", "--snr-db", "0", "--rt60", "0.4"]),
        ("fabian-hard", &["--head", "fabian", "--seed", "3", "--snr-db", "0", "--rt60", "0.4"]),
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

/// Installs the packages the sets are made from, with apt-get, when their files are missing.
pub(crate) fn ensure_packages() -> Result<()> {
    let missing: Vec<&str> = PACKAGES.iter().filter(|(_, f)| !Path::new(f).exists()).map(|(p, _)| *p).collect();
    if !missing.is_empty() {
        eprintln!("$ apt-get install -y --no-install-recommends {}", missing.join(" "));
        let ok = Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .context("apt-get is needed to install the measured HRIRs and the recordings")?
            .success();
        if !ok {
            bail!("apt-get install {} failed (run it as root, after apt-get update)", missing.join(" "));
        }
    }
    Ok(())
}
