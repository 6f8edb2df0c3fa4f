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
    for path in files {
        kindling_pipeline::load(&path, &registry, &[]).unwrap_or_else(|e| panic!("{e}"));
    }
}
