//! Every shipped pipeline runs: one short epoch on a few hundred samples each, on the CPU.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

/// One pipeline's short run, with what went wrong as an error.
fn one_short_epoch(file: &Path, registry: &kindling_core::Registry, root: &Path, audio: &Path) -> Result<(), String> {
    let mut set: Vec<String> = ["device=cpu", "train.epochs=1", "train.save_model=false"].map(String::from).to_vec();
    set.extend(tests::small_data_overrides(file, audio));
    let plan = kindling_pipeline::load(file, registry, &set).map_err(|e| format!("does not load: {e}"))?;
    let outcome = kindling_pipeline::run(plan, root).map_err(|e| format!("does not run: {e}"))?;
    let history =
        std::fs::read_to_string(outcome.run_dir.join("history.csv")).map_err(|e| format!("history.csv: {e}"))?;
    let rows: Vec<&str> = history.lines().collect();
    let loss = rows.get(1).and_then(|row| row.split(',').nth(2)).and_then(|l| l.parse::<f64>().ok());
    match loss {
        Some(loss) if rows.len() == 3 && loss.is_finite() && loss > 0.0 => Ok(()),
        _ => Err(format!("not one epoch with a finite loss in history.csv:\n{history}")),
    }
}

/// Every pipeline runs, each on its own, so that one failing does not hide the others; the
/// failures are listed together at the end of the output, where a truncated log still shows
/// them.
#[test]
fn every_shipped_pipeline_runs_one_short_epoch() {
    let registry = tests::registry();
    let root = tests::scratch("pipelines");
    let audio = root.join("audio");
    std::fs::create_dir_all(&audio).unwrap();
    let mut failures = Vec::new();
    for file in tests::shipped_pipelines() {
        let result = catch_unwind(AssertUnwindSafe(|| one_short_epoch(&file, &registry, &root, &audio)));
        let failure = match result {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e,
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                format!("panicked: {message}")
            }
        };
        failures.push(format!("{}: {failure}", file.display()));
    }
    if !failures.is_empty() {
        eprintln!("\n{} shipped pipeline(s) failed:\n{}", failures.len(), failures.join("\n"));
        // The list above is the report: no backtrace of this assertion after it.
        std::panic::set_hook(Box::new(|_| {}));
        panic!("{} shipped pipeline(s) failed", failures.len());
    }
    std::fs::remove_dir_all(&root).unwrap();
}
