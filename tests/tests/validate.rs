//! Golden tests of `validate`'s messages: each `validate/<name>.yaml` is a broken (or valid)
//! pipeline and `validate/<name>.expected` is exactly what validation says about it, with the
//! directory of the file shown as `DIR`. Set `UPDATE_EXPECT=1` to rewrite the expected files.

use std::path::Path;

#[test]
fn validation_messages_match_their_golden_files() {
    let dir = tests::repo_root().join("tests/validate");
    let registry = tests::registry();
    let mut cases: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    cases.retain(|p| p.extension().is_some_and(|e| e == "yaml"));
    cases.sort();
    assert!(cases.len() >= 8, "golden cases went missing: {cases:?}");
    let mut failures = Vec::new();
    for case in &cases {
        let got = check(case, &registry);
        let expected_path = case.with_extension("expected");
        if std::env::var_os("UPDATE_EXPECT").is_some() {
            std::fs::write(&expected_path, &got).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if got != expected {
            failures.push(format!("{}:\n--- expected\n{expected}--- got\n{got}", case.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// What validation says about `file`, one line per problem (or `ok`).
fn check(file: &Path, registry: &kindling_core::Registry) -> String {
    // Overrides are written in the case file's first line: `# set: a=1 b=2`.
    let src = std::fs::read_to_string(file).unwrap();
    let set: Vec<String> = src
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("# set: "))
        .map(|s| s.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    let dir = file.parent().unwrap().display().to_string();
    match kindling_pipeline::load(file, registry, &set) {
        Ok(plan) => format!("ok: {} stages\n", plan.stages.len()),
        Err(e) => format!("{}\n", e.to_string().replace(&dir, "DIR")),
    }
}

#[test]
fn every_shipped_pipeline_validates() {
    let registry = tests::registry();
    let files = tests::shipped_pipelines();
    assert!(files.len() >= 20, "pipelines went missing: {files:?}");
    let mut sweeps = 0;
    let scratch = tests::scratch("validate-shipped");
    for path in files {
        // Audio and image-folder pipelines point at sets `cargo xtask data stereo` and `cargo
        // xtask data fashion-rgb` build; here, tiny stand-ins.
        let set = tests::small_data_overrides(&path, &scratch);
        kindling_pipeline::load(&path, &registry, &set).unwrap_or_else(|e| panic!("{e}"));
        // A pipeline with a sweep: every trial's configuration validates too.
        let src = std::fs::read_to_string(&path).unwrap();
        if kindling_pipeline::compose(&path, &src).unwrap().doc.get("sweep").is_some() {
            let prepared = kindling_sweep::prepare(&path, &registry, &set).unwrap_or_else(|e| panic!("{e}"));
            assert!(prepared.manifest.trials.len() > 1, "{}", path.display());
            sweeps += 1;
        }
    }
    assert!(sweeps >= 1, "the shipped sweeps went missing");
}

#[test]
fn the_vgg3_grid_is_experiment_3s_twelve_trials() {
    let registry = tests::registry();
    let path = tests::repo_root().join("pipelines/vgg3-grid.yaml");
    let scratch = tests::scratch("vgg3-grid");
    let set = tests::small_data_overrides(&path, &scratch);
    let prepared = kindling_sweep::prepare(&path, &registry, &set).unwrap_or_else(|e| panic!("{e}"));
    let labels: Vec<String> = prepared.manifest.trials.iter().map(|t| t.spec.label()).collect();
    assert_eq!(labels.len(), 12);
    assert_eq!(labels[0], "lr=0.001 dropout=0.15 weight_decay=0.005");
    assert_eq!(labels[11], "lr=5e-4 dropout=0.1 weight_decay=5e-4");
    // Each trial's resolved configuration carries its values.
    assert!(prepared.configs[11].contains("dropout: 0.1\n"), "{}", prepared.configs[11]);
    assert!(prepared.configs[11].contains("weight_decay: 0.0005\n"), "{}", prepared.configs[11]);
    std::fs::remove_dir_all(&scratch).unwrap();
}
