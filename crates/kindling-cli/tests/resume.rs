//! `kindling run --resume`: a training process killed with SIGKILL in the middle of an epoch
//! continues from its last checkpoint and ends exactly where an uninterrupted run ends: the
//! same history (timings aside), the same early-stopping decision and the same weights.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn kindling() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kindling"));
    c.current_dir(root()).env("XDG_RUNTIME_DIR", std::env::temp_dir());
    c
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Dropout (drawn from the backend's generator), a plateau schedule and early stopping that
/// keeps the best epoch: everything a resumed run must reproduce.
const OVERRIDES: &[&str] = &[
    "device=cpu",
    "idx_dataset.train_limit=1500",
    "idx_dataset.test_limit=200",
    "model.preset=mnist_cnn_dropout2d",
    "train.epochs=6",
    "train.batch_size=50",
    "train.scheduler={name: reduce_on_plateau, monitor: valid_loss, patience: 1, factor: 0.5}",
    "train.early_stopping={monitor: valid_accuracy, patience: 3}",
];

fn run_to_end(dir: &Path) -> Output {
    let mut c = kindling();
    c.args(["run", "pipelines/quickstart.yaml", "--run-dir"]).arg(dir);
    for o in OVERRIDES {
        c.args(["--set", o]);
    }
    c.output().expect("the binary runs")
}

/// `history.csv` without its seconds column.
fn history(dir: &Path) -> Vec<String> {
    let csv = std::fs::read_to_string(dir.join("history.csv")).unwrap();
    csv.lines().map(|l| l.rsplit_once(',').map_or(l, |(head, _)| head).to_owned()).collect()
}

/// Every tensor of a safetensors file, by name, as raw bytes (the header's metadata map is
/// written in no fixed order, so whole files are not compared).
fn tensors(path: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let data = &bytes[8 + n..];
    header
        .into_iter()
        .filter(|(k, _)| k != "__metadata__")
        .map(|(k, v)| {
            let at = |i: usize| v["data_offsets"][i].as_u64().unwrap() as usize;
            (k, data[at(0)..at(1)].to_vec())
        })
        .collect()
}

fn metrics(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("metrics.json")).unwrap()).unwrap()
}

#[test]
fn a_run_killed_mid_epoch_resumes_to_the_same_history_and_weights() {
    let scratch = std::env::temp_dir().join(format!("kindling-resume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let (whole, broken) = (scratch.join("whole"), scratch.join("broken"));

    let out = run_to_end(&whole);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // Start the same run and kill it once two epochs are checkpointed, part-way into the third.
    let mut c = kindling();
    c.args(["run", "pipelines/quickstart.yaml", "--run-dir"]).arg(&broken);
    for o in OVERRIDES {
        c.args(["--set", o]);
    }
    let mut child = c.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let history_rows = |dir: &Path| std::fs::read_to_string(dir.join("history.csv")).map_or(0, |h| h.lines().count());
    let start = Instant::now();
    while history_rows(&broken) < 5 {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be killed");
        assert!(start.elapsed() < Duration::from_secs(300), "no second epoch after 300 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(!broken.join("metrics.json").exists(), "the run finished before it was killed");
    assert!(broken.join("checkpoints/last.ckpt").exists());

    // What a kill in the middle of an atomic write leaves (a writer that is no longer running:
    // pids above the kernel's ceiling), which the resume removes.
    let debris = [broken.join("checkpoints/.last.ckpt.tmp-4194305"), broken.join("model.safetensors.4194305-0.tmp")];
    for d in &debris {
        std::fs::write(d, b"half").unwrap();
    }

    // Resumed with one compute thread where the first epochs had two: training is
    // bit-identical whatever the thread count, so the run still ends as the whole one did.
    let out = kindling().args(["run", "--resume"]).arg(&broken).env("RAYON_NUM_THREADS", "1").output().unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("resuming after epoch"), "{stderr}");
    for d in &debris {
        assert!(!d.exists(), "{} survived the resume", d.display());
    }

    assert_eq!(history(&broken), history(&whole));
    let (a, b) = (metrics(&whole), metrics(&broken));
    for key in ["early_stopping", "final_epoch", "kept_epoch", "test", "per_class"] {
        let strip = |v: &serde_json::Value| {
            let mut v = v.clone();
            if let Some(o) = v.as_object_mut() {
                o.remove("train_seconds");
                o.remove("valid_seconds");
            }
            v
        };
        assert_eq!(strip(&a[key]), strip(&b[key]), "{key}");
    }
    let (a, b) = (tensors(&whole.join("model.safetensors")), tensors(&broken.join("model.safetensors")));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, bytes) in &a {
        assert!(*bytes == b[name], "the resumed run's `{name}` differs");
    }
    // Same seed, same bytes: the files themselves, headers included.
    for f in ["model.safetensors", "model.pytorch.safetensors"] {
        assert!(std::fs::read(whole.join(f)).unwrap() == std::fs::read(broken.join(f)).unwrap(), "{f} differs");
    }
    for f in ["confusion_valid.csv", "confusion_test.csv", "confusion_train.csv"] {
        assert_eq!(std::fs::read_to_string(whole.join(f)).unwrap(), std::fs::read_to_string(broken.join(f)).unwrap());
    }
    std::fs::remove_dir_all(&scratch).unwrap();
}

#[test]
fn resume_needs_a_run_directory() {
    let out = kindling().args(["run", "--resume", "/nonexistent/run"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("/nonexistent/run: no config.yaml here"), "{}", text(&out.stderr));
}
