//! A finished run is a model package: `model.json` beside `model.safetensors` is all that
//! `kindling predict` and `kindling eval --data` read of it, so a copy of the run directory
//! predicts and evaluates as the original did after the data it was trained on is gone.

use std::path::{Path, PathBuf};

mod common;
use common::{kindling, text};

/// `args`, which must succeed; its stdout and stderr.
fn ok(args: &[&str]) -> (String, String) {
    let out = kindling(args);
    assert!(out.status.success(), "kindling {}\n{}", args.join(" "), text(&out.stderr));
    (text(&out.stdout), text(&out.stderr))
}

/// A fresh scratch folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kindling-package-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Trains `pipeline` (written into `dir`) into `dir/run` and returns the run and its package.
fn train(dir: &Path, pipeline: &str) -> (PathBuf, serde_json::Value) {
    let file = dir.join("pipeline.yaml");
    std::fs::write(&file, pipeline).unwrap();
    let run = dir.join("run");
    ok(&["run", file.to_str().unwrap(), "--run-dir", run.to_str().unwrap()]);
    let package = std::fs::read_to_string(run.join("model.json")).expect("a finished run has a model.json");
    (run, serde_json::from_str(&package).unwrap())
}

/// `predict` of every image below `held` (all classes, CSV) and `eval --data held` of `run`:
/// stdout of each (eval's first line without the run's path), and eval's stderr.
fn answers(run: &Path, held: &Path) -> (String, String, String) {
    let (run, held) = (run.to_str().unwrap(), held.to_str().unwrap());
    let (predicted, _) = ok(&["predict", run, held, "--top", "10", "--format", "csv"]);
    let (evaluated, stderr) = ok(&["eval", run, "--data", held, "--batch-size", "7"]);
    let evaluated = evaluated.strip_prefix(run).expect("eval's first line names the run").to_owned();
    (predicted, evaluated, stderr)
}

const SMALL_CNN: &str = "
  - stage: model
    with:
      layers:
        - conv2d: {out_channels: 4, kernel_size: 3}
        - relu
        - maxpool2d: {kernel_size: 2}
        - flatten
        - linear: {out_features: 10}
  - stage: train
    with:
      epochs: 1
      batch_size: 16
";

#[test]
fn an_image_folder_run_predicts_and_evaluates_from_a_copy_without_its_data() {
    let dir = scratch("image");
    common::image_folder("train", &dir.join("data/train"), 8, &[]);
    let held = dir.join("held");
    common::image_folder("t10k", &held, 2, &[]);
    let pipeline = format!(
        "name: package-image
seed: 3
device: cpu
stages:
  - stage: image_dataset
    with:
      root: data/train
      channels: 1
      valid_fraction: 0.25
      transforms:
        - random_horizontal_flip
        - {{center_crop: 26, apply: all}}
        - normalize: {{mean: [0.2860], std: [0.3530]}}
{SMALL_CNN}"
    );
    let (run, package) = train(&dir, &pipeline);

    // What the package says: classes, the input with the evaluation steps only, the layers.
    assert_eq!(package["version"], 1);
    assert_eq!(package["classes"].as_array().unwrap().len(), 10);
    assert_eq!(package["input"]["kind"], "image");
    assert_eq!(package["input"]["shape"], serde_json::json!([1, 26, 26]));
    let steps = package["input"]["transforms"].as_array().unwrap();
    assert_eq!(steps.len(), 2, "only the steps evaluation applies: {package}");
    assert!(steps[0].get("center_crop").is_some() && steps[1].get("normalize").is_some(), "{package}");
    assert_eq!(package["model"]["input"], serde_json::json!([1, 26, 26]));
    assert_eq!(package["model"]["layers"].as_array().unwrap().len(), 5);
    assert_eq!(package["weights"], "model.safetensors");

    // With the data still there: the package, and the run reopened from its configuration
    // (a run made before packages: no model.json, a note on stderr) answer the same.
    let (predicted, evaluated, stderr) = answers(&run, &held);
    assert_eq!(predicted.lines().count(), 21, "{predicted}");
    assert!(evaluated.starts_with(": 20 samples, accuracy"), "{evaluated}");
    assert!(!stderr.contains("note:"), "{stderr}");
    let legacy = dir.join("legacy");
    copy_dir(&run, &legacy);
    std::fs::remove_file(legacy.join("model.json")).unwrap();
    let (legacy_predicted, legacy_evaluated, legacy_stderr) = answers(&legacy, &held);
    assert!(legacy_stderr.contains("note:") && legacy_stderr.contains("no model.json"), "{legacy_stderr}");
    assert_eq!(legacy_predicted, predicted);
    assert_eq!(legacy_evaluated, evaluated);

    // The training data gone, a copy of the run in an empty folder answers the same.
    std::fs::rename(dir.join("data"), dir.join("data-gone")).unwrap();
    let copy = dir.join("elsewhere/run");
    copy_dir(&run, &copy);
    let (copy_predicted, copy_evaluated, _) = answers(&copy, &held);
    assert_eq!(copy_predicted, predicted);
    assert_eq!(copy_evaluated, evaluated);
    // `--device cpu`: the CPU whatever the machine has, the same answers from the copy and the
    // original; an unknown device is a usage error naming the choices.
    let on_cpu = |run: &Path| {
        let (run, held) = (run.to_str().unwrap(), held.to_str().unwrap());
        let (predicted, _) = ok(&["predict", run, held, "--top", "10", "--format", "csv", "--device", "cpu"]);
        let (evaluated, _) = ok(&["eval", run, "--data", held, "--device", "cpu"]);
        (predicted, evaluated.strip_prefix(run).unwrap().to_owned())
    };
    assert_eq!(on_cpu(&copy), on_cpu(&run));
    let out = kindling(&["predict", copy.to_str().unwrap(), held.to_str().unwrap(), "--device", "tpu"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("expected auto, cpu or wgpu"), "{}", text(&out.stderr));
    // Without a package the run cannot be rebuilt any more.
    let out = kindling(&["predict", legacy.to_str().unwrap(), held.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));

    // A damaged or mismatched package is an error naming it, never a panic.
    let broken = dir.join("broken");
    copy_dir(&run, &broken);
    let json = std::fs::read_to_string(broken.join("model.json")).unwrap();
    for (damage, expected) in [
        (json[..json.len() / 2].to_owned(), "model.json"),
        (json.replace("\"out_features\": 10", "\"out_features\": 11"), "model.json"),
        (json.replace("\"version\": 1", "\"version\": 2"), "has version 2"),
        (json.replace("\"kind\": \"image\"", "\"kind\": \"tabular\""), "tabular"),
    ] {
        std::fs::write(broken.join("model.json"), &damage).unwrap();
        let out = kindling(&["predict", broken.to_str().unwrap(), held.to_str().unwrap()]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(expected) && !stderr.contains("panicked"), "{stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_idx_run_evaluates_a_labelled_folder_from_a_copy_without_its_data() {
    let dir = scratch("idx");
    std::fs::create_dir_all(dir.join("idx")).unwrap();
    for f in ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"] {
        std::fs::copy(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist").join(f),
            dir.join("idx").join(f),
        )
        .unwrap();
    }
    let held = dir.join("held");
    common::image_folder("t10k", &held, 2, &[]);
    let pipeline = format!(
        "name: package-idx
seed: 4
device: cpu
stages:
  - stage: idx_dataset
    with:
      train_images: idx/train-images-idx3-ubyte.gz
      train_labels: idx/train-labels-idx1-ubyte.gz
      train_limit: 200
      valid_fraction: 0.2
      normalize: {{mean: [0.2860], std: [0.3530]}}
{}",
        SMALL_CNN
    );
    let (run, package) = train(&dir, &pipeline);
    assert_eq!(package["input"]["kind"], "image");
    assert_eq!(package["input"]["shape"], serde_json::json!([1, 28, 28]));
    let steps = package["input"]["transforms"].as_array().unwrap();
    assert!(steps.len() == 1 && steps[0].get("normalize").is_some(), "the older `normalize` key: {package}");
    let (predicted, evaluated, _) = answers(&run, &held);
    assert!(evaluated.starts_with(": 20 samples, accuracy"), "{evaluated}");

    std::fs::rename(dir.join("idx"), dir.join("idx-gone")).unwrap();
    let copy = dir.join("elsewhere/run");
    copy_dir(&run, &copy);
    let (copy_predicted, copy_evaluated, _) = answers(&copy, &held);
    assert_eq!(copy_predicted, predicted);
    assert_eq!(copy_evaluated, evaluated);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `records` CIFAR-10 records (a label byte, then the red, green and blue 32 x 32 planes) with
/// labels cycling through the ten classes, and pixels from a fixed pseudo-random stream around
/// a level of the label's, so the classes can be told apart a little.
fn cifar_records(records: usize, seed: u32) -> Vec<u8> {
    let mut x = seed;
    let mut bytes = Vec::with_capacity(records * 3073);
    for n in 0..records {
        let label = (n % 10) as u8;
        bytes.push(label);
        for i in 0..3072 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            // Each channel gets its own level, so a swap of planes or channels changes the
            // answers.
            let level = u32::from(label) * 20 + (i / 1024) as u32 * 30;
            bytes.push(((x >> 26) + level).min(255) as u8);
        }
    }
    bytes
}

/// The records of a CIFAR-10 batch as 24-bit BMP files (bottom-up rows, blue-green-red
/// pixels) in `out/<class>/<n>.bmp`, the class named from `classes`.
fn cifar_to_bmp_folder(batch: &[u8], classes: &[&str], out: &Path) {
    for (n, record) in batch.chunks_exact(3073).enumerate() {
        let (label, planes) = (record[0], &record[1..]);
        let mut bmp = Vec::with_capacity(54 + 3072);
        bmp.extend_from_slice(b"BM");
        bmp.extend_from_slice(&(54u32 + 3072).to_le_bytes());
        bmp.extend_from_slice(&[0; 4]);
        bmp.extend_from_slice(&54u32.to_le_bytes());
        bmp.extend_from_slice(&40u32.to_le_bytes());
        bmp.extend_from_slice(&32i32.to_le_bytes());
        bmp.extend_from_slice(&32i32.to_le_bytes());
        bmp.extend_from_slice(&1u16.to_le_bytes());
        bmp.extend_from_slice(&24u16.to_le_bytes());
        bmp.extend_from_slice(&[0; 4]); // no compression
        bmp.extend_from_slice(&3072u32.to_le_bytes());
        bmp.extend_from_slice(&[0; 16]); // resolution and palette: none
        for row in (0..32).rev() {
            for col in 0..32 {
                let at = row * 32 + col;
                bmp.extend_from_slice(&[planes[2048 + at], planes[1024 + at], planes[at]]);
            }
        }
        let dir = out.join(classes[usize::from(label)]);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{n:03}.bmp")), bmp).unwrap();
    }
}

#[test]
fn a_cifar_run_predicts_and_evaluates_from_a_copy_without_its_data() {
    const CLASSES: [&str; 10] =
        ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];
    let dir = scratch("cifar");
    let cifar = dir.join("cifar");
    std::fs::create_dir_all(&cifar).unwrap();
    for (i, name) in ["data_batch_1.bin", "data_batch_2.bin"].iter().enumerate() {
        std::fs::write(cifar.join(name), cifar_records(40, 0x2545_f491 + i as u32)).unwrap();
    }
    let test_batch = cifar_records(20, 0x9e37_79b9);
    std::fs::write(cifar.join("test_batch.bin"), &test_batch).unwrap();
    // The test batch again as image files, as a user would have their own images.
    let held = dir.join("held");
    cifar_to_bmp_folder(&test_batch, &CLASSES, &held);
    let pipeline = format!(
        "name: package-cifar
seed: 5
device: cpu
stages:
  - stage: cifar_dataset
    with:
      root: cifar
      train_batches: [data_batch_1.bin, data_batch_2.bin]
      valid_fraction: 0.25
      transforms:
        - random_horizontal_flip
        - normalize: {{mean: [0.4914, 0.4822, 0.4465], std: [0.2470, 0.2435, 0.2616]}}
{SMALL_CNN}"
    );
    let (run, package) = train(&dir, &pipeline);
    assert_eq!(package["input"]["kind"], "image");
    assert_eq!(package["input"]["shape"], serde_json::json!([3, 32, 32]));
    assert_eq!(package["classes"], serde_json::json!(CLASSES));
    let steps = package["input"]["transforms"].as_array().unwrap();
    assert!(steps.len() == 1 && steps[0].get("normalize").is_some(), "evaluation's steps only: {package}");

    let (predicted, evaluated, _) = answers(&run, &held);
    assert_eq!(predicted.lines().count(), 21, "{predicted}");
    assert!(evaluated.starts_with(": 20 samples, accuracy"), "{evaluated}");
    // The test batch read by the run's own stage (reopened from config.yaml) and the same
    // pixels as image files read through the package: the same numbers, so the package reads
    // an image exactly as the stage read the record (channel order, scaling, normalisation).
    let (own, _) = ok(&["eval", run.to_str().unwrap(), "--batch-size", "7"]);
    let own = own.strip_prefix(run.to_str().unwrap()).unwrap();
    let (first, rest) = evaluated.split_once('\n').unwrap();
    let (own_first, own_rest) = own.split_once('\n').unwrap();
    assert_eq!(own_rest, rest);
    let loss = |line: &str| line.rsplit_once("loss ").unwrap().1.trim().parse::<f64>().unwrap();
    assert!((loss(first) - loss(own_first)).abs() <= 1e-3, "{first} / {own_first}");
    assert_eq!(first.rsplit_once("loss ").unwrap().0, own_first.rsplit_once("loss ").unwrap().0);

    std::fs::rename(&cifar, dir.join("cifar-gone")).unwrap();
    let copy = dir.join("elsewhere/run");
    copy_dir(&run, &copy);
    let (copy_predicted, copy_evaluated, _) = answers(&copy, &held);
    assert_eq!(copy_predicted, predicted);
    assert_eq!(copy_evaluated, evaluated);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A deterministic 0.4 s mono noise burst, 16-bit at 16 kHz: the source the direction set is
/// made from.
fn write_noise(path: &Path) {
    let samples: Vec<i16> = {
        let mut x: u32 = 0x9e37_79b9;
        (0..6400)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 16) as i16 / 4
            })
            .collect()
    };
    let data_len = (samples.len() * 2) as u32;
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"RIFF");
    bytes.extend_from_slice(&(36 + data_len).to_le_bytes());
    bytes.extend_from_slice(b"WAVEfmt ");
    bytes.extend_from_slice(&16u32.to_le_bytes());
    bytes.extend_from_slice(&1u16.to_le_bytes()); // PCM
    bytes.extend_from_slice(&1u16.to_le_bytes()); // mono
    bytes.extend_from_slice(&16_000u32.to_le_bytes());
    bytes.extend_from_slice(&32_000u32.to_le_bytes());
    bytes.extend_from_slice(&2u16.to_le_bytes());
    bytes.extend_from_slice(&16u16.to_le_bytes());
    bytes.extend_from_slice(b"data");
    bytes.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        bytes.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

/// A 3-direction stereo set (`per_class` one-second samples each) in `out`, made as `kindling
/// data spatialize` makes one, with synthetic HRIRs.
fn stereo_set(dir: &Path, out: &Path, per_class: usize, seed: u64) {
    use kindling_audio::spatial::{SpatialConfig, spatialize, write_synthetic_hrirs};
    let hrir = dir.join("hrirs.wav");
    if !hrir.is_file() {
        write_synthetic_hrirs(&hrir, 16_000, 32).unwrap();
        write_noise(&dir.join("source.wav"));
    }
    let mut cfg = SpatialConfig::new(hrir, vec![dir.join("source.wav")]);
    cfg.directions = vec![-90, 0, 90];
    cfg.per_class = per_class;
    cfg.duration = 1.0;
    cfg.seed = seed;
    spatialize(&cfg, out).unwrap();
}

#[test]
fn an_audio_run_with_fitted_statistics_predicts_and_evaluates_from_a_copy_without_its_data() {
    let dir = scratch("audio");
    stereo_set(&dir, &dir.join("data/set"), 4, 1);
    let held = dir.join("held");
    stereo_set(&dir, &held, 2, 2);
    std::fs::remove_file(held.join("manifest.csv")).unwrap();
    let pipeline = "name: package-audio
seed: 3
device: cpu
stages:
  - stage: audio_dataset
    with:
      manifest: data/set/manifest.csv
      valid_fraction: 0.25
      features:
        wav: {channels: 2, sample_rate: 16000, duration: 1.0, length: pad_or_crop}
        stft: {n_fft: 512, hop_length: 256}
        normalize: fitted
      cache_dir: cache
  - stage: model
    with: {preset: stereo_cnn}
  - stage: train
    with: {epochs: 1, batch_size: 4, optimizer: {name: adam, lr: 0.001}}
";
    let (run, package) = train(&dir, pipeline);
    assert_eq!(package["input"]["kind"], "audio");
    assert_eq!(package["input"]["shape"], serde_json::json!([4, 257, 63]));
    assert_eq!(package["input"]["features"]["stft"]["n_fft"], 512);
    assert_eq!(package["input"]["features"]["wav"]["sample_rate"], 16000);
    assert_eq!(package["input"]["features"]["normalize"], "fitted");
    let recorded: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("norm_stats.json")).unwrap()).unwrap();
    assert_eq!(package["input"]["stats"], recorded, "the statistics the run fitted and recorded");

    let (predicted, evaluated, _) = answers(&run, &held);
    assert_eq!(predicted.lines().count(), 7, "{predicted}");
    assert!(evaluated.starts_with(": 6 samples, accuracy"), "{evaluated}");
    let legacy = dir.join("legacy");
    copy_dir(&run, &legacy);
    std::fs::remove_file(legacy.join("model.json")).unwrap();
    let (legacy_predicted, legacy_evaluated, legacy_stderr) = answers(&legacy, &held);
    assert!(legacy_stderr.contains("no model.json"), "{legacy_stderr}");
    assert_eq!(legacy_predicted, predicted);
    // The reopened run evaluates features from its cache, the package reads the WAV files
    // through the reader as `predict` does: the same classes, the loss to 1e-3.
    let (first, rest) = evaluated.split_once('\n').unwrap();
    let (legacy_first, legacy_rest) = legacy_evaluated.split_once('\n').unwrap();
    assert_eq!(legacy_rest, rest);
    let loss = |line: &str| line.rsplit_once("loss ").unwrap().1.trim().parse::<f64>().unwrap();
    assert!((loss(first) - loss(legacy_first)).abs() <= 1e-3, "{first} / {legacy_first}");
    assert_eq!(first.rsplit_once("loss ").unwrap().0, legacy_first.rsplit_once("loss ").unwrap().0);

    std::fs::rename(dir.join("data"), dir.join("data-gone")).unwrap();
    let copy = dir.join("elsewhere/run");
    copy_dir(&run, &copy);
    let (copy_predicted, copy_evaluated, _) = answers(&copy, &held);
    assert_eq!(copy_predicted, predicted);
    assert_eq!(copy_evaluated, evaluated);
    let _ = std::fs::remove_dir_all(&dir);
}
