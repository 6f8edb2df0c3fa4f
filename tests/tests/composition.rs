//! The shipped pipelines as they run: each one's composed, standalone configuration (what its
//! run directory's `config.yaml` holds, with the tests' small-data overrides) is recorded under
//! `composed/`, so rewriting a pipeline with `extends:`, patches and `vars:` is checked to
//! change nothing that runs. The repository root is shown as `REPO` and the scratch directory
//! as `SCRATCH`. Set `UPDATE_EXPECT=1` to rewrite the records.

#[test]
fn shipped_pipelines_compose_to_their_recorded_configurations() {
    let registry = tests::registry();
    let repo = tests::repo_root();
    let scratch = tests::scratch("composed");
    let records = repo.join("tests/composed");
    let mut failures = Vec::new();
    let mut seen = Vec::new();
    for file in tests::shipped_pipelines() {
        let set = tests::small_data_overrides(&file, &scratch);
        let plan = kindling_pipeline::load(&file, &registry, &set).unwrap_or_else(|e| panic!("{e}"));
        let got = plan
            .resolved_yaml()
            .replace(&scratch.display().to_string(), "SCRATCH")
            .replace(&repo.display().to_string(), "REPO");
        let rel = file.strip_prefix(repo.join("pipelines")).unwrap().display().to_string().replace('/', "__");
        let record = records.join(&rel);
        seen.push(rel);
        if std::env::var_os("UPDATE_EXPECT").is_some() {
            std::fs::create_dir_all(&records).unwrap();
            std::fs::write(&record, &got).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&record).unwrap_or_default();
        if got != expected {
            failures.push(format!("{}:\n--- recorded\n{expected}--- composed\n{got}", file.display()));
        }
    }
    // A record without its pipeline is a pipeline that went missing.
    for entry in std::fs::read_dir(&records).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(seen.contains(&name), "tests/composed/{name} has no pipeline");
    }
    std::fs::remove_dir_all(&scratch).unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
