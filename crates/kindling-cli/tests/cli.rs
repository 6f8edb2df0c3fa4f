//! The `kindling` binary as a user runs it: exit codes and what it prints.

use std::path::PathBuf;
use std::process::Command;

mod common;
use common::{kindling, text};

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

/// `kindling data image-folder` on the shipped Fashion-MNIST subset: `per_class` RGB PNGs of
/// each class in a fresh folder `name` under the temp dir.
fn image_folder(name: &str, per_class: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kindling-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let printed =
        common::image_folder("train", &dir, per_class.parse().unwrap(), &["--rgb", "--classes", common::CLASSES]);
    assert!(printed.contains(&format!("{} RGB PNGs in 10 class folders", 10 * per_class.parse::<usize>().unwrap())));
    dir
}

#[test]
fn model_dropout_sets_every_dropout_layer_and_is_range_checked() {
    let folder = image_folder("dropout", "2");
    let root = format!("image_dataset.root={}", folder.display());
    let test = format!("image_dataset.test_root={}", folder.display());
    let summary = |dropout: &str| {
        kindling(&["summary", "pipelines/vgg3-grid.yaml", "--set", &root, "--set", &test, "--set", dropout])
    };
    let out = summary("model.dropout=0.3");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.matches("dropout 0.3 ").count(), 2, "{stdout}");
    let out = summary("model.dropout=1.5");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("stages[1].with.dropout: must be in [0, 1), got 1.5"), "{}", text(&out.stderr));

    // Exporting into a folder that is not empty is refused and leaves it alone.
    let before = std::fs::read_dir(folder.join("0_T-shirt-top")).unwrap().count();
    let out = kindling(&[
        "data",
        "image-folder",
        "--images",
        "data/fashion-mnist/train-images-idx3-ubyte.gz",
        "--labels",
        "data/fashion-mnist/train-labels-idx1-ubyte.gz",
        "--out",
        folder.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("exists and is not empty"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_dir(folder.join("0_T-shirt-top")).unwrap().count(), before);
    std::fs::remove_dir_all(&folder).unwrap();
}

#[test]
fn preview_draws_the_evaluation_view_and_the_augmented_epochs_of_each_sample() {
    let png = std::env::temp_dir().join(format!("kindling-cli-preview-{}.png", std::process::id()));
    let out = kindling(&[
        "preview",
        "pipelines/mnist-augment.yaml",
        "--set",
        "idx_dataset.train_limit=200",
        "--samples",
        "4",
        "--epochs",
        "3",
        "--out",
        png.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("4 samples x (evaluation view + 3 training epochs)"), "{}", text(&out.stdout));
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    // IHDR: width and height, big-endian, at bytes 16..24. 28 px tiles are drawn 4x (112 px)
    // with 4 px gaps: 4 columns and 4 rows.
    let side = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    assert_eq!((side(16), side(20)), (4 + 4 * 116, 4 + 4 * 116));
    std::fs::remove_file(&png).unwrap();
}

#[test]
fn eval_and_predict_use_a_finished_runs_model_and_data_pipeline() {
    let run = std::env::temp_dir().join(format!("kindling-cli-eval-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&run);
    let r = run.to_str().unwrap();
    common::quickstart_run(r, 600, 300);
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap();
    let accuracy = metrics["test"]["accuracy"].as_f64().unwrap();

    // The run's own test split, through its own pipeline: the run's figure again.
    let out = kindling(&["eval", r]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains(&format!("300 samples, accuracy {:.2}%", 100.0 * accuracy)), "{stdout}");
    assert!(stdout.contains("weighted avg") && stdout.contains("confusion matrix"), "{stdout}");

    // Two PNGs from an exported folder: one line each with the three likeliest classes.
    let folder = image_folder("predict", "1");
    let pngs: Vec<String> = ["0_T-shirt-top", "9_Ankle boot"]
        .iter()
        .map(|c| {
            let dir = folder.join(c);
            let file = std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
            file.to_str().unwrap().to_owned()
        })
        .collect();
    let out = kindling(&["predict", r, &pngs[0], &pngs[1]]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    for (line, png) in lines.iter().zip(&pngs) {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!((fields[0], fields.len()), (png.as_str(), 4), "{line}");
    }
    // An RGB file for a grey model is converted; a missing one is an error naming it.
    let out = kindling(&["predict", r, "/nonexistent.png"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("/nonexistent.png"), "{}", text(&out.stderr));
    std::fs::remove_dir_all(&run).unwrap();
    std::fs::remove_dir_all(&folder).unwrap();
}

/// A reader that goes away (`kindling stages | head -1`) ends the command quietly, as it ends
/// `cat`: killed by SIGPIPE at its next write, never a panic (exit 101) with a message.
#[cfg(unix)]
#[test]
fn a_closed_pipe_ends_commands_quietly() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    for args in [&["stages"][..], &["validate", "pipelines/quickstart.yaml", "tests/validate/typos.yaml"]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kindling"))
            .args(args)
            .current_dir(&root)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the read end before the command prints anything.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.signal(), Some(13), "{args:?}: {:?} {}", out.status, text(&out.stderr));
        assert!(!text(&out.stderr).contains("panicked"), "{}", text(&out.stderr));
    }
}

/// Bad input never makes the binary panic: a pipeline nested 200,000 levels deep is refused
/// at once, and a run name that is not a plain directory name is refused with the rule.
#[test]
fn hostile_pipelines_are_refused_quickly_and_clearly() {
    let dir = std::env::temp_dir().join(format!("kindling-cli-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let deep = dir.join("deep.yaml");
    std::fs::write(&deep, format!("name: deep\nstages: {}", "[".repeat(200_000))).unwrap();
    let started = std::time::Instant::now();
    let out = kindling(&["validate", deep.to_str().unwrap()]);
    assert!(started.elapsed().as_secs_f64() < 5.0, "took {:?}", started.elapsed());
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stdout).contains("deep.yaml:2:73: nested more than 64 levels deep"), "{}", text(&out.stdout));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A training split emptied by `valid_fraction` says why, and a batch larger than the
/// training split says what happens instead of training silently on one batch.
#[test]
fn an_emptied_split_and_an_oversized_batch_are_explained() {
    let runs = std::env::temp_dir().join(format!("kindling-cli-splits-{}", std::process::id()));
    let runs_dir = runs.to_str().unwrap();
    let common = ["--set", "idx_dataset.train_limit=10", "--set", "train.epochs=1", "--device", "cpu"];
    let mut args = vec!["run", "pipelines/quickstart.yaml", "--runs-dir", runs_dir];
    args.extend(common);
    let mut empty = args.clone();
    empty.extend(["--set", "idx_dataset.valid_fraction=0.9"]);
    let out = kindling(&empty);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("the training split is empty: the data stage put 10 sample(s) in validation"), "{stderr}");
    assert!(stderr.contains("lower its valid_fraction"), "{stderr}");

    let mut big = args.clone();
    big.extend(["--set", "train.batch_size=1000000000"]);
    let out = kindling(&big);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("warning: batch_size 1000000000 is larger than the training split (10 samples)"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&runs).unwrap();
}

/// `kindling completions SHELL` prints clap's completion script for the shell, from the same
/// definitions the parser uses: every subcommand is in it.
#[test]
fn completions_cover_every_subcommand_in_each_shell() {
    for (shell, marker) in [("bash", "_kindling()"), ("zsh", "#compdef kindling"), ("fish", "complete -c kindling")] {
        let out = kindling(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        assert!(script.contains(marker), "{shell}: no `{marker}`");
        for sub in ["run", "validate", "sweep", "predict", "completions"] {
            assert!(script.contains(sub), "{shell}: `{sub}` missing");
        }
    }
    assert_eq!(kindling(&["completions", "tcsh"]).status.code(), Some(2), "an unknown shell is a usage error");
}

#[test]
fn validate_print_shows_the_composed_pipeline_which_stands_alone() {
    let out = kindling(&["validate", "--print", "pipelines/mnist-ablations/sgd.yaml", "--set", "train.epochs=2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    for expected in
        ["name: mnist-sgd\n", "    epochs: 2\n", "      name: sgd\n", "      momentum: 0.9\n", "normalize:\n"]
    {
        assert!(printed.contains(expected), "{expected:?} missing from:\n{printed}");
    }
    assert!(!printed.contains("extends") && !printed.contains("${"), "{printed}");
    // The printed pipeline, saved anywhere, is itself the same pipeline.
    let dir = std::env::temp_dir().join(format!("kindling-print-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("standalone.yaml");
    std::fs::write(&copy, printed.split_once('\n').unwrap().1).unwrap();
    let again = kindling(&["validate", "--print", copy.to_str().unwrap()]);
    assert!(again.status.success(), "{}", text(&again.stdout));
    assert_eq!(text(&again.stdout).split_once('\n').unwrap().1, printed.split_once('\n').unwrap().1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn lr_find_suggests_a_rate_and_draws_the_range_test() {
    let dir = std::env::temp_dir().join(format!("kindling-lr-find-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join("range.png");
    let out = kindling(&[
        "lr-find",
        "pipelines/quickstart.yaml",
        "--set",
        "device=cpu",
        "--set",
        "idx_dataset.train_limit=1024",
        "--steps",
        "60",
        "--start-lr",
        "1e-6",
        "--out",
        png.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    let lr: f64 = printed
        .lines()
        .find_map(|l| l.strip_prefix("suggested lr: "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no suggestion in:\n{printed}"))
        .parse()
        .unwrap();
    // Adam on the quickstart's CNN learns between these (a run at 1e-6 barely moves, one at
    // 1 diverges).
    assert!((1e-4..=0.1).contains(&lr), "suggested {lr}");
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 5000, "{} bytes", bytes.len());
    let csv = std::fs::read_to_string(dir.join("lr-find.csv")).unwrap();
    assert_eq!(csv.lines().next(), Some("step,lr,loss,smoothed_loss"));
    assert!(csv.lines().count() > 20, "{csv}");
    // Bad settings are refused before any work.
    let bad = kindling(&["lr-find", "pipelines/quickstart.yaml", "--steps", "5"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad.stderr).contains("at least 12 steps"), "{}", text(&bad.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `kindling bench` refuses sizes it cannot use with status 2 (no panic), names a shape the
/// preset does not fit, and times a preset on its own input (the stereo CNN's spectrograms).
#[test]
fn bench_checks_its_sizes_and_times_a_preset_on_its_own_input() {
    for bad in [["--classes", "0"], ["--batch-size", "0"], ["--input", "1,28"], ["--input", "1,0,28"]] {
        let out = kindling(&["bench", "--model", "mnist_cnn", "--steps", "1", "--warmup", "0", bad[0], bad[1]]);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", text(&out.stderr));
    }
    let out = kindling(&["bench", "--model", "mnist_cnn", "--steps", "1", "--warmup", "0", "--input", "1,1,1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("does not fit a [1, 1, 1] input"), "{}", text(&out.stderr));
    let out =
        kindling(&["bench", "--model", "stereo_cnn", "--batch-size", "1", "--steps", "1", "--warmup", "0", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["input"], serde_json::json!([4, 257, 382]));
    assert!(json["train_samples_per_s"].as_f64().unwrap() > 0.0, "{json}");
}
