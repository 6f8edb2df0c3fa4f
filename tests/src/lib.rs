//! Shared helpers of Kindling's end-to-end tests (see `tests/tests/`).

use std::path::{Path, PathBuf};

/// The registry the `kindling` binary builds, with every plugin.
pub fn registry() -> kindling_core::Registry {
    kindling_core::Registry::new(kindling_cli::default_plugins()).expect("plugins offer distinct stage names")
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the repository").to_owned()
}

/// A fresh, empty scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kindling-tests-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir is writable");
    dir
}

/// Every pipeline file under `pipelines/`, subfolders included (not `fragments/`), sorted.
pub fn shipped_pipelines() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("pipelines/ is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                // Fragments are parts of pipelines (a data block), not pipelines.
                if path.file_name().is_none_or(|n| n != "fragments") {
                    walk(&path, out);
                }
            } else if path.extension().is_some_and(|e| e == "yaml") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo_root().join("pipelines"), &mut out);
    out.sort();
    out
}

/// Writes a deterministic 0.4 s mono noise burst at 16 kHz (a stand-in recording).
pub fn noise_source(path: &Path) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("a writable scratch directory");
    let mut x: u32 = 0x9e37_79b9;
    for _ in 0..6400 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        w.write_sample((x >> 16) as i16 / 4).expect("a writable scratch directory");
    }
    w.finalize().expect("a writable scratch directory");
}

/// A tiny stereo direction set in `dir/set/`, made as `kindling data spatialize` makes the real
/// one but with synthetic HRIRs: `classes` directions from -90 to +90 degrees, `per_class`
/// one-second samples each. Returns its manifest.
pub fn tiny_stereo_set(dir: &Path, classes: usize, per_class: usize) -> PathBuf {
    use kindling_audio::spatial::{SpatialConfig, spatialize, write_synthetic_hrirs};
    let hrir = dir.join("hrirs.wav");
    write_synthetic_hrirs(&hrir, 16_000, 32).expect("a writable scratch directory");
    noise_source(&dir.join("source.wav"));
    let mut cfg = SpatialConfig::new(hrir, vec![dir.join("source.wav")]);
    cfg.directions = (0..classes).map(|i| -90 + (180 * i / (classes - 1).max(1)) as i32).collect();
    cfg.per_class = per_class;
    cfg.duration = 1.0;
    spatialize(&cfg, &dir.join("set")).expect("the synthetic set builds").manifest
}

/// A small RGB image folder made from the shipped Fashion-MNIST subset, as `cargo xtask data
/// fashion-rgb` makes the whole one: `dir/images/train` (24 images per class) and
/// `dir/images/test` (8 per class). Made once per scratch directory; returns `dir/images`.
pub fn tiny_image_folder(dir: &Path) -> PathBuf {
    let out = dir.join("images");
    let data = repo_root().join("data/fashion-mnist");
    for (split, prefix, per_class) in [("train", "train", 24), ("test", "t10k", 8)] {
        if out.join(split).exists() {
            continue;
        }
        kindling_vision::export_idx_folder(
            &data.join(format!("{prefix}-images-idx3-ubyte.gz")),
            &data.join(format!("{prefix}-labels-idx1-ubyte.gz")),
            &out.join(split),
            true,
            None,
            Some(per_class),
        )
        .expect("the shipped subset exports");
    }
    out
}

/// A stand-in for the CIFAR-10 binary batches in `dir/cifar`: the five training batches and
/// the test batch of the real set's file names and record format (a label byte, then the red,
/// green and blue 32 x 32 planes), 20 images each, pixels from a fixed pseudo-random stream.
pub fn tiny_cifar(dir: &Path) -> PathBuf {
    let out = dir.join("cifar");
    std::fs::create_dir_all(&out).expect("a writable scratch directory");
    let mut x: u32 = 0x2545_f491;
    let names = (1..=5).map(|i| format!("data_batch_{i}.bin")).chain(["test_batch.bin".to_owned()]);
    for name in names {
        let mut bytes = Vec::with_capacity(20 * 3073);
        for n in 0..20u8 {
            bytes.push(n % 10);
            for _ in 0..3072 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                bytes.push((x >> 24) as u8);
            }
        }
        std::fs::write(out.join(name), bytes).expect("a writable scratch directory");
    }
    out
}

/// Overrides that make a shipped pipeline small and self-contained for tests: a few hundred
/// images for IDX pipelines, a small RGB folder for image-folder pipelines, a few synthetic
/// CIFAR-10 batches for CIFAR pipelines; for audio pipelines, a tiny synthetic stereo set of 11 directions
/// made in `scratch` (the real sets are built by `cargo xtask data stereo`), one second long.
pub fn small_data_overrides(pipeline: &Path, scratch: &Path) -> Vec<String> {
    let src = std::fs::read_to_string(pipeline).expect("a readable pipeline");
    // What the pipeline says once composed with the files it extends.
    let composed = kindling_pipeline::compose(pipeline, &src).expect("a pipeline that composes");
    let stages = composed.doc.get("stages").and_then(serde_yaml::Value::as_sequence).cloned().unwrap_or_default();
    let stage = |kind: &str| stages.iter().find(|s| s.get("stage").and_then(serde_yaml::Value::as_str) == Some(kind));
    let has_key = |kind: &str, key: &str| stage(kind).and_then(|s| s.get("with")).is_some_and(|w| w.get(key).is_some());
    let mut set = Vec::new();
    if stage("idx_dataset").is_some() {
        set.extend(
            ["idx_dataset.train_limit=256", "idx_dataset.test_limit=64", "idx_dataset.valid_fraction=0.25"]
                .map(String::from),
        );
    }
    if stage("image_dataset").is_some() {
        let root = tiny_image_folder(scratch);
        set.push(format!("image_dataset.root={}", root.join("train").display()));
        if has_key("image_dataset", "test_root") {
            set.push(format!("image_dataset.test_root={}", root.join("test").display()));
        }
        set.push("image_dataset.valid_fraction=0.25".to_owned());
    }
    if stage("cifar_dataset").is_some() {
        set.push(format!("cifar_dataset.root={}", tiny_cifar(scratch).display()));
    }
    if stage("audio_dataset").is_some() {
        let manifest = scratch.join("set/manifest.csv");
        if !manifest.exists() {
            tiny_stereo_set(scratch, 11, 4);
        }
        set.push(format!("audio_dataset.manifest={}", manifest.display()));
        set.push(format!("audio_dataset.cache_dir={}", scratch.join("cache").display()));
        set.push("audio_dataset.features.wav.duration=1.0".to_owned());
        if has_key("audio_dataset", "valid_manifest") {
            set.push(format!("audio_dataset.valid_manifest={}", manifest.display()));
        }
    }
    if stage("spatial_dataset").is_some() {
        // Rendered from the tiny set's synthetic head and source, validated on the tiny set.
        let manifest = scratch.join("set/manifest.csv");
        if !manifest.exists() {
            tiny_stereo_set(scratch, 11, 4);
        }
        set.push("spatial_dataset.head=null".to_owned());
        set.push(format!("spatial_dataset.hrir={}", scratch.join("hrirs.wav").display()));
        set.push(format!("spatial_dataset.sources=[{}]", scratch.join("source.wav").display()));
        set.push("spatial_dataset.per_class=4".to_owned());
        set.push(format!("spatial_dataset.valid_manifest={}", manifest.display()));
        if has_key("spatial_dataset", "test_manifest") {
            set.push(format!("spatial_dataset.test_manifest={}", manifest.display()));
        }
        set.push(format!("spatial_dataset.cache_dir={}", scratch.join("cache").display()));
        set.push("spatial_dataset.features.wav.duration=1.0".to_owned());
    }
    set
}
