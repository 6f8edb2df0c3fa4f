//! The quickstart pipeline, shortened to a few hundred samples: it trains, writes its run
//! directory, learns, and repeats itself exactly under the same seed.

use std::path::Path;

/// Runs the quickstart with small limits and returns the run directory.
fn run_short(root: &Path, extra: &[&str]) -> std::path::PathBuf {
    let registry = tests::registry();
    let mut set: Vec<String> = [
        "device=cpu",
        "idx_dataset.train_limit=640",
        "idx_dataset.test_limit=200",
        "idx_dataset.valid_fraction=0.2",
        "train.epochs=2",
        "train.batch_size=32",
    ]
    .map(String::from)
    .to_vec();
    set.extend(extra.iter().map(|s| (*s).to_owned()));
    let file = tests::repo_root().join("pipelines/quickstart.yaml");
    let plan = kindling_pipeline::load(&file, &registry, &set).unwrap_or_else(|e| panic!("{e}"));
    kindling_pipeline::run(plan, root).unwrap_or_else(|e| panic!("{e}")).run_dir
}

/// history.csv without the seconds column, which no seed fixes.
fn history_without_times(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("history.csv")).unwrap();
    text.lines().map(|l| l.rsplit_once(',').unwrap().0.to_owned()).collect()
}

#[test]
fn a_short_quickstart_learns_writes_its_files_and_repeats_exactly() {
    let root = tests::scratch("quickstart");
    let first = run_short(&root, &[]);
    for file in [
        "config.yaml",
        "history.csv",
        "metrics.json",
        "model.safetensors",
        "confusion_train.csv",
        "confusion_valid.csv",
        "confusion_test.csv",
        "model.pytorch.safetensors",
        "model.pytorch.json",
        "model.check.safetensors",
    ] {
        let meta = std::fs::metadata(first.join(file)).unwrap_or_else(|_| panic!("{file} is missing"));
        assert!(meta.len() > 0, "{file} is empty");
    }
    // One TensorBoard event file: a version record, then 5 scalars per epoch, each record at
    // least 16 bytes of framing (`cargo xtask check tensorboard` reads it with TensorBoard).
    let events: Vec<_> = std::fs::read_dir(&first)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("events.out.tfevents."))
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(std::fs::metadata(&events[0]).unwrap().len() > 11 * 16);
    let leftovers: Vec<_> = std::fs::read_dir(&first)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') || n.contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind: {leftovers:?}");

    // The resolved configuration records the overrides and the defaults.
    let config = std::fs::read_to_string(first.join("config.yaml")).unwrap();
    assert!(config.contains("train_limit: 640"), "{config}");
    assert!(config.contains("eps: 1.0e-8") || config.contains("eps: 1e-8"), "{config}");

    // It learned: the loss fell from the first epoch to the second, on both splits.
    let history = history_without_times(&first);
    assert_eq!(history[0], "epoch,split,loss,accuracy,lr");
    let loss = |row: &str| row.split(',').nth(2).unwrap().parse::<f64>().unwrap();
    assert_eq!(history.len(), 5, "{history:?}");
    assert!(loss(&history[3]) < loss(&history[1]), "train loss did not fall: {history:?}");
    assert!(loss(&history[4]) < loss(&history[2]), "valid loss did not fall: {history:?}");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(first.join("metrics.json")).unwrap()).unwrap();
    let test_acc = metrics["test"]["accuracy"].as_f64().unwrap();
    assert!(test_acc > 0.5, "test accuracy after 2 short epochs: {test_acc}");
    assert_eq!(metrics["test"]["samples"], 200);

    // The test confusion matrix holds every test sample, its diagonal the accuracy, and the
    // per-class report agrees with it.
    let confusion = std::fs::read_to_string(first.join("confusion_test.csv")).unwrap();
    let rows: Vec<Vec<&str>> = confusion.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(rows[0][0], "true\\predicted");
    assert_eq!(rows[1][0], "T-shirt/top");
    let counts: Vec<Vec<u64>> = rows[1..].iter().map(|r| r[1..].iter().map(|v| v.parse().unwrap()).collect()).collect();
    assert_eq!(counts.len(), 10);
    assert_eq!(counts.iter().flatten().sum::<u64>(), 200);
    let diagonal: u64 = (0..10).map(|i| counts[i][i]).sum();
    assert!((diagonal as f64 / 200.0 - test_acc).abs() < 1e-9);
    assert!((metrics["per_class"]["test"]["accuracy"].as_f64().unwrap() - test_acc).abs() < 1e-9);
    let shirts = &metrics["per_class"]["test"]["classes"]["Shirt"];
    let support: u64 = counts[6].iter().sum();
    assert_eq!(shirts["support"].as_u64(), Some(support));

    // Same seed, same device: the same numbers.
    let second = run_short(&root, &[]);
    assert_ne!(first, second);
    assert_eq!(history_without_times(&second), history);
    // Another seed: other numbers.
    let third = run_short(&root, &["seed=7"]);
    assert_ne!(history_without_times(&third), history);
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_diverging_run_stops_with_the_epoch_and_step() {
    let root = tests::scratch("diverge");
    let registry = tests::registry();
    let set: Vec<String> = [
        "device=cpu",
        "idx_dataset.train_limit=256",
        "idx_dataset.test_limit=10",
        "train.epochs=3",
        "train.optimizer={name: sgd, lr: 1.0e30}",
    ]
    .map(String::from)
    .to_vec();
    let file = tests::repo_root().join("pipelines/quickstart.yaml");
    let plan = kindling_pipeline::load(&file, &registry, &set).unwrap_or_else(|e| panic!("{e}"));
    let err = kindling_pipeline::run(plan, &root).unwrap_err().to_string();
    assert!(err.contains("stage 2 (`train`) failed: the training loss became"), "{err}");
    assert!(err.contains("at epoch 1, step "), "{err}");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn the_learning_rate_each_epoch_follows_the_schedule_and_is_logged() {
    let root = tests::scratch("schedule");
    let dir = run_short(
        &root,
        &[
            "train.epochs=3",
            "train.scheduler={name: step, step_size: 1, gamma: 0.5}",
            "train.warmup={epochs: 2, start_factor: 0.5}",
        ],
    );
    let rates: Vec<f64> = history_without_times(&dir)
        .iter()
        .skip(1)
        .filter(|row| row.contains(",train,"))
        .map(|row| row.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    // StepLR(1, 0.5) from 1e-3 times LinearLR(0.5 over 2 epochs): 1e-3 * 0.5, 5e-4 * 0.75, 2.5e-4.
    let want = [0.0005, 0.000375, 0.00025];
    assert_eq!(rates.len(), 3, "{rates:?}");
    for (got, want) in rates.iter().zip(want) {
        assert!((got - want).abs() < 1e-12, "{rates:?}");
    }
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn class_weights_an_l1_penalty_and_clipping_change_training_and_still_learn() {
    let root = tests::scratch("regularise");
    let plain = history_without_times(&run_short(&root, &[]));
    let weights = "train.class_weights=[1, 1, 1, 1, 1, 1, 3, 1, 1, 1]";
    let regularised =
        history_without_times(&run_short(&root, &[weights, "train.l1={lambda: 0.001}", "train.clip_grad_norm=1.0"]));
    assert_ne!(plain, regularised);
    let loss = |row: &str| row.split(',').nth(2).unwrap().parse::<f64>().unwrap();
    assert!(loss(&regularised[3]) < loss(&regularised[1]), "{regularised:?}");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn early_stopping_stops_on_a_plateau_and_keeps_the_best_epoch() {
    let root = tests::scratch("early");
    // With min_delta 10, no epoch after the first counts as an improvement: patience 2 stops
    // training after epoch 3, and the model kept is epoch 1's.
    let early = "train.early_stopping={patience: 2, min_delta: 10}";
    let dir = run_short(&root, &["train.epochs=6", early]);
    let history = history_without_times(&dir);
    assert_eq!(history.len(), 1 + 2 * 3, "{history:?}");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("metrics.json")).unwrap()).unwrap();
    let e = &metrics["early_stopping"];
    assert_eq!(
        (e["stopped_epoch"].as_u64(), e["best_epoch"].as_u64(), e["restored_best"].as_bool()),
        (Some(3), Some(1), Some(true))
    );
    // The validation confusion matrix is the kept model's: its accuracy is epoch 1's.
    let epoch1_valid_acc: f64 = history[2].split(',').nth(3).unwrap().parse().unwrap();
    let kept = metrics["per_class"]["valid"]["accuracy"].as_f64().unwrap();
    assert!((kept - epoch1_valid_acc).abs() < 1e-6, "kept {kept}, epoch 1 {epoch1_valid_acc}");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_runs_config_yaml_is_a_pipeline_that_repeats_the_run() {
    let root = tests::scratch("rerun");
    let first = run_short(&root, &[]);
    let registry = tests::registry();
    let plan = kindling_pipeline::load(&first.join("config.yaml"), &registry, &[]).unwrap_or_else(|e| panic!("{e}"));
    let again = kindling_pipeline::run(plan, &root).unwrap_or_else(|e| panic!("{e}")).run_dir;
    assert_eq!(history_without_times(&again), history_without_times(&first));
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_saved_model_loads_into_a_new_run_and_starts_where_it_ended() {
    let root = tests::scratch("weights");
    let first = run_short(&root, &[]);
    let weights = format!("model.weights={}", first.join("model.safetensors").display());
    let resumed = history_without_times(&run_short(&root, &[&weights]));
    let original = history_without_times(&first);
    let loss = |row: &str| row.split(',').nth(2).unwrap().parse::<f64>().unwrap();
    // Starting from the trained weights, the first epoch's training loss is already below the
    // original run's second (last) epoch.
    assert!(loss(&resumed[1]) < loss(&original[3]), "resumed {resumed:?}\noriginal {original:?}");

    // Weights of another architecture are refused with the file named.
    let registry = tests::registry();
    let file = tests::repo_root().join("pipelines/quickstart.yaml");
    let set = ["device=cpu", "model.preset=lenet5", &weights].map(String::from).to_vec();
    let plan = kindling_pipeline::load(&file, &registry, &set).unwrap_or_else(|e| panic!("{e}"));
    let err = kindling_pipeline::run(plan, &root).unwrap_err().to_string();
    assert!(err.contains("model.safetensors: cannot load the weights"), "{err}");
    std::fs::remove_dir_all(&root).unwrap();
}
