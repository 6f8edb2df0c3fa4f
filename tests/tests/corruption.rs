//! Every reader of untrusted bytes against thousands of damaged copies of valid inputs:
//! truncated, bit-flipped, with lying length fields, spans deleted and duplicated (see
//! `kindling_core::mutate`). Each must answer with a value or an error: no panic, no abort, no
//! hang (each reader's loop has a time limit), and no unbounded allocation (this test
//! executable's peak memory is checked at the end of each loop).
//!
//! Checkpoints have the same test inside kindling-train (their reader is private there).

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kindling_core::mutate::mutations;
use kindling_core::peak_memory;

/// Mutations per reader: thousands, within a few seconds each on a 2-core machine.
const COUNT: usize = 2000;
/// No reader may take longer than this for all its mutations.
const LIMIT: Duration = Duration::from_secs(120);
/// The whole executable's peak resident memory stays below this.
const MEMORY: u64 = 3 << 30;

/// Runs `read` (which says whether the bytes were accepted) on every mutation of `valid` on a
/// worker thread, failing on a panic (with the mutation that caused it written next to the
/// scratch files) or on exceeding [`LIMIT`]. The valid input itself must be accepted, so the
/// mutations start from something the reader understands.
fn check(name: &str, valid: Vec<u8>, read: impl Fn(&[u8]) -> bool + Send + 'static) {
    assert!(read(&valid), "{name}: the valid input is refused");
    let (tx, rx) = mpsc::channel();
    let label = name.to_owned();
    std::thread::spawn(move || {
        let started = Instant::now();
        for (i, bytes) in mutations(&valid, COUNT, 0x5eed).enumerate() {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                read(&bytes);
            }));
            if outcome.is_err() {
                let keep = std::env::temp_dir().join(format!("kindling-corrupt-{label}-{i}.bin"));
                let _ = std::fs::write(&keep, &bytes);
                let _ = tx.send(Err(format!("{label}: mutation {i} panicked (input kept in {})", keep.display())));
                return;
            }
        }
        let _ = tx.send(Ok(started.elapsed()));
    });
    match rx.recv_timeout(LIMIT) {
        Ok(Ok(took)) => eprintln!("{name}: {COUNT} damaged inputs in {:.1} s", took.as_secs_f64()),
        Ok(Err(e)) => panic!("{e}"),
        Err(_) => panic!("{name}: {COUNT} damaged inputs took over {LIMIT:?}: a reader hangs"),
    }
    if let Some(peak) = peak_memory() {
        assert!(peak < MEMORY, "{name}: peak memory {} MiB", peak >> 20);
    }
}

/// A scratch file that the reader under test gets the damaged bytes through.
fn through_file(dir: &Path, name: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    dir.join(name)
}

#[test]
fn wav_files() {
    let dir = tests::scratch("corrupt-wav");
    let path = dir.join("valid.wav");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    for i in 0..400 {
        w.write_sample((i * 37 % 2000) as i16).unwrap();
    }
    w.finalize().unwrap();
    let valid = std::fs::read(&path).unwrap();
    check("wav", valid, move |bytes| kindling_audio::wav::decode_wav(&path, bytes).is_ok());
}

#[test]
fn idx_files_plain_and_gzipped() {
    let dir = tests::scratch("corrupt-idx");
    // Three 4 x 4 images: magic (u8 data, 3 dimensions), then the sizes, then the pixels.
    let mut idx = vec![0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 4];
    idx.extend((0..48).map(|i| i as u8));
    let plain = through_file(&dir, "images-idx3-ubyte");
    check("idx", idx, move |bytes| {
        std::fs::write(&plain, bytes).unwrap();
        kindling_vision::read_idx_header(&plain).is_ok() & kindling_vision::read_idx(&plain).is_ok()
    });
    let labels = std::fs::read(tests::repo_root().join("data/fashion-mnist/t10k-labels-idx1-ubyte.gz")).unwrap();
    let gz = through_file(&dir, "labels-idx1-ubyte.gz");
    check("idx.gz", labels, move |bytes| {
        std::fs::write(&gz, bytes).unwrap();
        kindling_vision::read_idx(&gz).is_ok()
    });
}

#[test]
fn cifar_batches() {
    let dir = tests::scratch("corrupt-cifar");
    let mut batch = Vec::new();
    for r in 0..3u8 {
        batch.push(r);
        batch.extend((0..3072).map(|i| (i % 251) as u8 ^ r));
    }
    let path = through_file(&dir, "data_batch_1.bin");
    check("cifar", batch, move |bytes| {
        std::fs::write(&path, bytes).unwrap();
        kindling_vision::CifarImages::default().read_batch(&path).is_ok()
    });
}

#[test]
fn image_files_of_every_format() {
    let dir = tests::scratch("corrupt-images");
    let img = image::RgbImage::from_fn(12, 9, |x, y| image::Rgb([(x * 20) as u8, (y * 25) as u8, 90]));
    for ext in ["png", "jpg", "bmp", "gif", "webp"] {
        let path = dir.join(format!("valid.{ext}"));
        img.save(&path).unwrap();
        let valid = std::fs::read(&path).unwrap();
        let damaged = through_file(&dir, &format!("damaged.{ext}"));
        check(ext, valid, move |bytes| {
            std::fs::write(&damaged, bytes).unwrap();
            kindling_vision::image_size(&damaged).is_ok() & kindling_vision::decode_file(&damaged, 3).is_ok()
        });
    }
}

#[test]
fn pipeline_files() {
    let file = tests::repo_root().join("pipelines/quickstart.yaml");
    let valid = std::fs::read(&file).unwrap();
    let registry = tests::registry();
    check("pipeline", valid, move |bytes| {
        let src = String::from_utf8_lossy(bytes);
        kindling_pipeline::parse(&file, &src, &registry, &[]).is_ok()
    });
}

#[test]
fn trial_store_files() {
    let registry = tests::registry();
    let sweep = tests::repo_root().join("tests/sweeps/tiny.yaml");
    let prepared = kindling_sweep::prepare(&sweep, &registry, &[]).unwrap();
    let dir = tests::scratch("corrupt-store").join("sweep");
    let store = kindling_sweep::Store::create(&dir, &prepared.manifest, &prepared.configs).unwrap();
    let id = prepared.manifest.trials[0].id.clone();
    let claim = store.try_claim(&id, None).unwrap().unwrap();
    let result = kindling_sweep::TrialResult {
        status: kindling_sweep::Status::Done,
        metric: Some(0.5),
        epochs: 2,
        seconds: 1.0,
        attempt: 0,
        host: "here".to_owned(),
        error: None,
    };
    assert!(claim.finish(result).unwrap());
    let manifest = std::fs::read(dir.join("sweep.json")).unwrap();
    let trial = store.trial_dir(&id);
    let result = std::fs::read(trial.join("result.json")).unwrap();
    let claim = std::fs::read(trial.join("claim.1")).unwrap();
    let (file, root) = (dir.join("sweep.json"), dir.clone());
    check("sweep.json", manifest, move |bytes| {
        std::fs::write(&file, bytes).unwrap();
        match kindling_sweep::Store::open(&root) {
            Ok((store, manifest)) => {
                for t in &manifest.trials {
                    let _ = store.state(&t.id);
                }
                true
            }
            Err(_) => false,
        }
    });
    for (name, valid, file) in
        [("result.json", result, trial.join("result.json")), ("claim", claim, trial.join("claim.1"))]
    {
        let (store, id, path) = (store.clone(), id.clone(), file.clone());
        check(name, valid.clone(), move |bytes| {
            std::fs::write(&path, bytes).unwrap();
            let _ = store.state(&id);
            store.result(&id).is_some()
        });
        // The next file's mutations start from an otherwise valid store.
        std::fs::write(&file, &valid).unwrap();
    }
}
