//! `cargo xtask bench images`: a 10-class x 600-image folder of 28 x 28 RGB PNGs (made from
//! Fashion-MNIST with `kindling data image-folder`) through Resize(34), CenterCrop(28),
//! RandomHorizontalFlip, RandomRotation(15) and Normalize into shuffled batches of 64, and the
//! same with Normalize only, images/s over one full pass: Kindling cold (list + decode + pass)
//! and warm (a second pass over the decoded images), against torchvision's ImageFolder +
//! DataLoader (2 workers, first and second pass) on the same folder in the same run.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// The first 600 images of each class of Fashion-MNIST's training set, written once.
const FOLDER: &str = "target/bench-images/fmnist-rgb";
const PER_CLASS: usize = 600;
const EXAMPLE: &str = "target/release/examples/bench_images";

pub(crate) fn run(args: &[String]) -> Result<()> {
    let mut repeat = 3;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--repeat" => repeat = it.next().context("--repeat needs a value")?.parse()?,
            other => bail!("unknown flag {other} (usage: cargo xtask bench images [--repeat N])"),
        }
    }
    if repeat == 0 {
        bail!("--repeat must be at least 1");
    }
    crate::cargo(&["build", "--release", "--quiet", "-p", "kindling-cli"])?;
    crate::cargo(&["build", "--release", "--quiet", "-p", "kindling-train", "--example", "bench_images"])?;
    // Installs Fashion-MNIST when missing; keeps the folder once written.
    let folder = Path::new(FOLDER);
    crate::data::fashion_rgb("train", folder, Some(PER_CLASS))?;
    let python = crate::bench::venv()?;
    let has_peer = Command::new(&python).args(["-c", "import torchvision, PIL"]).output()?.status.success();
    if !has_peer {
        // `--no-deps` with torch already there: pip must not replace the CPU setup of
        // `venv()` with torch's full CUDA dependency set.
        eprintln!("installing torchvision into the bench environment (once)");
        crate::bench::sh(Command::new(python.with_file_name("pip")).args([
            "install",
            "--quiet",
            "--no-cache-dir",
            "--no-deps",
            "torchvision==0.26.*",
            "pillow",
            "numpy",
        ]))?;
    }

    // Alternate the two so drift in machine load touches both alike; report medians.
    let mut ours = Vec::new();
    let mut peers: Vec<Value> = Vec::new();
    for round in 0..repeat {
        eprintln!("round {}/{repeat}", round + 1);
        let out = Command::new(EXAMPLE).arg(folder).output().with_context(|| format!("running {EXAMPLE}"))?;
        if !out.status.success() {
            bail!("bench_images failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        ours.push(serde_json::from_slice::<Value>(&out.stdout)?);
        let out = Command::new(&python).arg("xtask/bench/images_peer.py").arg(folder).output()?;
        if !out.status.success() {
            bail!("the torchvision peer failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            peers.push(serde_json::from_str(line)?);
        }
    }
    print_table(repeat, &ours, &peers);
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn print_table(repeat: usize, ours: &[Value], peers: &[Value]) {
    let ours_of = |key: &str| median(ours.iter().filter_map(|o| o[key].as_f64()).collect());
    let peer_of = |variant: &str, key: &str| {
        median(peers.iter().filter(|p| p["variant"] == variant).filter_map(|p| p[key].as_f64()).collect())
    };
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let images = ours.first().and_then(|o| o["images"].as_u64()).unwrap_or(0);
    let threads = ours.first().and_then(|o| o["threads"].as_u64()).unwrap_or(0);
    let version = peers.first().and_then(|p| p["torchvision"].as_str()).unwrap_or("-");
    println!(
        "\nmachine: {cpu}, {cores} cores; {images} 28 x 28 RGB PNGs (10 classes), batch 64, shuffled; \
         {repeat} rounds, medians; Kindling with {threads} loader threads; torchvision {version} \
         with 2 workers, torch 2 threads\n"
    );
    println!("augmented: Resize(34), CenterCrop(28), RandomHorizontalFlip, RandomRotation(15), ToTensor, Normalize");
    println!("plain: ToTensor, Normalize\n");
    println!("| pipeline | images/s | vs torchvision |");
    println!("|---|---:|---:|");
    let mut goals = Vec::new();
    for variant in ["augmented", "plain"] {
        let cold = ours_of(&format!("{variant}_cold_images_per_s"));
        let warm = ours_of(&format!("{variant}_warm_images_per_s"));
        let (first, second) = (peer_of(variant, "cold_images_per_s"), peer_of(variant, "warm_images_per_s"));
        for (name, v, base) in [
            ("Kindling, cold (list, decode, first pass)", cold, first),
            ("Kindling, warm (second pass, decoded in memory)", warm, second),
            ("torchvision ImageFolder + DataLoader, first pass (listing, worker start-up included)", first, first),
            ("torchvision ImageFolder + DataLoader, second pass (workers start again)", second, second),
        ] {
            println!("| {variant}: {name} | {v:.0} | {:.2}x |", v / base);
        }
        goals.push(format!(
            "goal: Kindling {variant}, one full pass cold >= 3x torchvision: {:.2}x (warm: {:.2}x)",
            cold / first,
            warm / second
        ));
    }
    for goal in goals {
        println!("{goal}");
    }
}
