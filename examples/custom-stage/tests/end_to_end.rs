//! The `kindling-custom` binary end to end, as a user runs it: it lists the new stage next to
//! Kindling's own, validates the example pipeline (and reports a bad one), and trains it to
//! high accuracy, writing the run directory the `train` stage writes for any data set.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary Cargo built for this test.
const BIN: &str = env!("CARGO_BIN_EXE_kindling-custom");

fn pipeline() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("blobs.yaml")
}

/// A fresh, empty scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kindling-custom-stage-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir is writable");
    dir
}

/// Runs the binary with `args`.
fn kindling(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every file named `name` under `dir`.
fn find(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("a readable directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            found.extend(find(&path, name));
        } else if path.file_name().is_some_and(|n| n == name) {
            found.push(path);
        }
    }
    found
}

#[test]
fn the_schema_of_this_binary_knows_the_new_stage() {
    let out = kindling(&["schema"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the schema is JSON");
    let names = schema["$defs"]["stage_entry"]["properties"]["stage"]["enum"].as_array().unwrap();
    assert!(names.iter().any(|n| n == "csv_dataset") && names.iter().any(|n| n == "train"), "{names:?}");
    let with = &schema["$defs"]["csv_dataset.with"]["properties"];
    assert_eq!(with["label"]["default"], "label");
    assert_eq!(with["valid_fraction"]["exclusiveMaximum"], 1);
    assert_eq!(
        with["file"]["description"],
        "CSV file with a header row: numeric feature columns and one label column (required)"
    );
}

#[test]
fn the_new_stage_is_listed_next_to_the_default_ones() {
    let out = kindling(&["stages"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing = text(&out.stdout);
    assert!(listing.contains("csv_dataset  (custom-stage)"), "{listing}");
    for key in ["file", "label", "features", "valid_fraction", "test_file", "standardize"] {
        assert!(listing.contains(&format!("    {key} ")), "{key} is not listed: {listing}");
    }
    // The default plugins are all still there.
    for stage in ["idx_dataset", "image_dataset", "model", "train"] {
        assert!(listing.contains(&format!("{stage}  (")), "{stage} is missing: {listing}");
    }
}

#[test]
fn validate_accepts_the_pipeline_and_names_a_missing_file() {
    let file = pipeline();
    let file = file.to_str().expect("a UTF-8 path");
    let out = kindling(&["validate", file]);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("ok (3 stages)"), "{}", text(&out.stdout));

    let out = kindling(&["validate", file, "--set", "csv_dataset.file=data/missing.csv"]);
    assert_eq!(out.status.code(), Some(2), "{}{}", text(&out.stdout), text(&out.stderr));
    let report = text(&out.stdout);
    assert!(report.contains("stages[0].with.file: "), "{report}");
    assert!(report.contains("missing.csv: no such file"), "{report}");

    // A label column that is not in the header, with the columns that are.
    let out = kindling(&["validate", file, "--set", "csv_dataset.label=kind"]);
    assert_eq!(out.status.code(), Some(2), "{}{}", text(&out.stdout), text(&out.stderr));
    let report = text(&out.stdout);
    assert!(report.contains("blobs.csv:1: no label column `kind` in the header"), "{report}");
}

#[test]
fn a_run_learns_the_blobs_and_writes_its_run_directory() {
    let runs = scratch("run");
    let file = pipeline();
    let out = Command::new(BIN)
        .args(["run", "--device", "cpu", "--runs-dir"])
        .arg(&runs)
        .arg(&file)
        .output()
        .expect("the binary runs");
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));

    let metrics = find(&runs, "metrics.json");
    assert_eq!(metrics.len(), 1, "{metrics:?}");
    let run_dir = metrics[0].parent().expect("metrics.json is in the run directory");
    for name in ["config.yaml", "history.csv", "confusion_test.csv", "model.safetensors", "standardize.csv"] {
        assert!(run_dir.join(name).is_file(), "{name} is missing from {}", run_dir.display());
    }
    let standardize = std::fs::read_to_string(run_dir.join("standardize.csv")).expect("standardize.csv");
    assert_eq!(standardize.lines().next(), Some("feature,mean,std"));
    assert_eq!(standardize.lines().count(), 5, "{standardize}");

    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&metrics[0]).expect("metrics.json")).expect("JSON");
    assert_eq!(m["test"]["samples"], 60, "{m}");
    let test = m["test"]["accuracy"].as_f64().expect("a test accuracy");
    let valid = m["final_epoch"]["valid"]["accuracy"].as_f64().expect("a validation accuracy");
    assert!(test > 0.9, "test accuracy {test}");
    assert!(valid > 0.9, "validation accuracy {valid}");
    assert_eq!(m["final_epoch"]["valid"]["samples"], 30, "{m}");

    // The summary on stdout carries the stage's own line.
    let summary = text(&out.stdout);
    assert!(summary.contains("120 train, 30 valid, 60 test rows of 4 features, 3 classes"), "{summary}");
    std::fs::remove_dir_all(&runs).expect("the scratch directory is removable");
}
