//! The `kindling` binary as a user runs it: exit codes and what it prints.

use std::path::PathBuf;
use std::process::{Command, Output};

fn kindling(args: &[&str]) -> Output {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    Command::new(env!("CARGO_BIN_EXE_kindling")).args(args).current_dir(root).output().expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn stages_lists_every_stage_with_keys_and_defaults() {
    let out = kindling(&["stages"]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    for expected in
        ["idx_dataset  (vision)", "model  (models)", "train  (train)", "valid_fraction   0.1", "batch_size       64"]
    {
        assert!(stdout.contains(expected), "missing `{expected}` in:\n{stdout}");
    }
    assert!(stdout.contains(r#"default: {"name":"adam","lr":0.001"#), "{stdout}");
}

#[test]
fn validate_reports_every_file_and_fails_with_status_2() {
    let out =
        kindling(&["validate", "pipelines/quickstart.yaml", "tests/validate/typos.yaml", "tests/validate/shapes.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("pipelines/quickstart.yaml: ok (3 stages)"), "{stdout}");
    assert!(
        stdout
            .contains("tests/validate/typos.yaml:9:5: stages[1].stage: unknown stage `modle` (did you mean `model`?)"),
        "{stdout}"
    );
    assert!(stdout.contains("linear expects 3136 inputs, the layer before gives 6272"), "{stdout}");
    assert!(stdout.ends_with("2 of 3 file(s) have problems\n"), "{stdout}");
}

#[test]
fn run_refuses_a_broken_pipeline_before_any_compute() {
    let runs = std::env::temp_dir().join(format!("kindling-cli-runs-{}", std::process::id()));
    let runs_arg = runs.display().to_string();
    let out = kindling(&["run", "pipelines/quickstart.yaml", "--set", "train.epochs=0", "--runs-dir", &runs_arg]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("stages[2].with.epochs: must be at least 1 (the value comes from --set)"), "{stderr}");
    assert!(!runs.exists(), "a refused run created {}", runs.display());

    let out = kindling(&["run", "pipelines/quickstart.yaml", "--device", "tpu"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown device `tpu` (expected auto, cpu or wgpu)"), "{}", text(&out.stderr));
}

#[test]
fn summary_prints_the_layer_table_with_shapes_and_parameters() {
    let out = kindling(&["summary", "pipelines/quickstart.yaml"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let rows: Vec<&str> = stdout.lines().collect();
    assert_eq!(rows.len(), 15, "{stdout}");
    assert!(
        rows[4].starts_with("2    conv2d 32, 3x3, padding 1") && rows[4].ends_with("32 x 28 x 28         4640"),
        "{stdout}"
    );
    assert!(rows[10].contains("3136"), "{stdout}");
    assert!(rows[14].trim_start().starts_with("total") && rows[14].ends_with("338006"), "{stdout}");
}

#[test]
fn model_dropout_sets_every_dropout_layer_and_is_range_checked() {
    let out = kindling(&["summary", "pipelines/vgg3-grid.yaml", "--set", "model.dropout=0.3"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.matches("dropout 0.3 ").count(), 2, "{stdout}");
    let out = kindling(&["summary", "pipelines/vgg3-grid.yaml", "--set", "model.dropout=1.5"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("stages[1].with.dropout: must be in [0, 1), got 1.5"), "{}", text(&out.stderr));
}
