//! `kindling schema` and its committed copy, `docs/pipeline.schema.json`, which editors read
//! through the first line of every shipped pipeline. Set `UPDATE_EXPECT=1` to rewrite the
//! committed copy.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the committed schema lives, relative to the repository root.
const SCHEMA: &str = "docs/pipeline.schema.json";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn printed_schema() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_kindling")).arg("schema").output().expect("the binary runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("the schema is UTF-8")
}

#[test]
fn the_committed_schema_is_what_kindling_schema_prints() {
    let printed = printed_schema();
    let committed_path = root().join(SCHEMA);
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&committed_path, &printed).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
    if committed != printed {
        let line = committed
            .lines()
            .zip(printed.lines())
            .position(|(a, b)| a != b)
            .map_or_else(|| committed.lines().count().min(printed.lines().count()) + 1, |i| i + 1);
        panic!(
            "{SCHEMA} is stale (first difference at line {line}): the stages' configuration types changed. \
             Regenerate it with `cargo build --workspace --release && target/release/kindling schema > {SCHEMA}` \
             (or `UPDATE_EXPECT=1` and this test), and commit it."
        );
    }
}

#[test]
fn the_schema_describes_every_stage_with_its_keys_and_defaults() {
    let schema: serde_json::Value = serde_json::from_str(&printed_schema()).expect("valid JSON");
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert_eq!(schema["additionalProperties"], false);
    let top: Vec<&str> = schema["properties"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(top, ["name", "seed", "device", "base_dir", "stages", "vars", "sweep", "extends"]);
    let names = &schema["$defs"]["stage_entry"]["properties"]["stage"]["enum"];
    assert_eq!(
        *names,
        serde_json::json!([
            "audio_dataset",
            "cifar_dataset",
            "idx_dataset",
            "image_dataset",
            "model",
            "spatial_dataset",
            "train"
        ])
    );
    let epochs = &schema["$defs"]["train.with"]["properties"]["epochs"];
    assert_eq!(epochs["type"], "integer");
    assert_eq!(epochs["minimum"], 1);
    assert_eq!(epochs["default"], 10);
    assert_eq!(epochs["description"], "passes over the training split");
    let valid_fraction = &schema["$defs"]["idx_dataset.with"]["properties"]["valid_fraction"];
    assert_eq!((&valid_fraction["minimum"], &valid_fraction["exclusiveMaximum"]), (&0.into(), &1.into()));
}

/// The relative path from the folder `from` to `to` (both under the repository root).
fn relative(from: &Path, to: &Path) -> PathBuf {
    let depth = from.components().count();
    let mut path: PathBuf = std::iter::repeat_n("..", depth).collect();
    path.push(to);
    path
}

#[test]
fn every_shipped_pipeline_points_editors_to_the_schema() {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = dir.join(entry.unwrap().file_name());
            if root.join(&path).is_dir() {
                walk(root, &path, out);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                out.push(path);
            }
        }
    }
    let root = root();
    let mut files = Vec::new();
    walk(&root, Path::new("pipelines"), &mut files);
    assert!(files.len() >= 20, "pipelines went missing: {files:?}");
    let mut wrong = Vec::new();
    for file in &files {
        let expected = format!(
            "# yaml-language-server: $schema={}",
            relative(file.parent().unwrap(), Path::new(SCHEMA)).display()
        );
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        if text.lines().next() != Some(expected.as_str()) {
            wrong.push(format!("{}: the first line should be `{expected}`", file.display()));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
