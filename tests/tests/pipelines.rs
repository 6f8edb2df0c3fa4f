//! Every shipped pipeline runs: one short epoch on a few hundred samples each, on the CPU.

#[test]
fn every_shipped_pipeline_runs_one_short_epoch() {
    let registry = tests::registry();
    let root = tests::scratch("pipelines");
    let audio = root.join("audio");
    std::fs::create_dir_all(&audio).unwrap();
    for file in tests::shipped_pipelines() {
        let mut set: Vec<String> =
            ["device=cpu", "train.epochs=1", "train.save_model=false"].map(String::from).to_vec();
        set.extend(tests::small_data_overrides(&file, &audio));
        let plan = kindling_pipeline::load(&file, &registry, &set).unwrap_or_else(|e| panic!("{e}"));
        let outcome = kindling_pipeline::run(plan, &root).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let history = std::fs::read_to_string(outcome.run_dir.join("history.csv")).unwrap();
        let rows: Vec<&str> = history.lines().collect();
        assert_eq!(rows.len(), 3, "{}: {history}", file.display());
        let loss: f64 = rows[1].split(',').nth(2).unwrap().parse().unwrap();
        assert!(loss.is_finite() && loss > 0.0, "{}: {history}", file.display());
    }
    std::fs::remove_dir_all(&root).unwrap();
}
