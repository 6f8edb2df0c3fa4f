//! Run diagnostics on constructed cases: the quickstart as shipped gets no finding; the seed's
//! Adagrad setting collapses, a learning rate far too low does not learn, one far too high
//! diverges, a small training split overfits. Each finding is in metrics.json, the summary
//! and report.html.

use std::path::{Path, PathBuf};

use kindling_metrics::diagnostics::FindingKind;
use kindling_metrics::run_files::RunMetrics;

/// Runs the quickstart with `set` overrides (after the CPU device) and returns the run
/// directory.
fn run(root: &Path, set: &[&str]) -> PathBuf {
    let registry = tests::registry();
    let set: Vec<String> = std::iter::once("device=cpu").chain(set.iter().copied()).map(String::from).collect();
    let file = tests::repo_root().join("pipelines/quickstart.yaml");
    let plan = kindling_pipeline::load(&file, &registry, &set).unwrap_or_else(|e| panic!("{e}"));
    kindling_pipeline::run(plan, root).unwrap_or_else(|e| panic!("{e}")).run_dir
}

/// A shortened quickstart (2,000 training images, 100 test images) with `set` on top.
fn short(root: &Path, set: &[&str]) -> PathBuf {
    let mut all = vec!["idx_dataset.train_limit=2000", "idx_dataset.test_limit=100"];
    all.extend_from_slice(set);
    run(root, &all)
}

fn metrics(dir: &Path) -> RunMetrics {
    RunMetrics::from_json(&std::fs::read_to_string(dir.join("metrics.json")).unwrap()).unwrap()
}

fn kinds(m: &RunMetrics) -> Vec<FindingKind> {
    m.diagnostics.as_ref().expect("diagnostics are on by default").findings.iter().map(|f| f.kind).collect()
}

/// The finding of `kind`, which must be there, as its one line.
fn line(m: &RunMetrics, kind: FindingKind) -> String {
    let d = m.diagnostics.as_ref().unwrap();
    d.findings.iter().find(|f| f.kind == kind).unwrap_or_else(|| panic!("no {kind:?} in {:?}", d.findings)).line()
}

fn report(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("report.html")).unwrap()
}

#[test]
fn the_quickstart_as_shipped_has_no_findings() {
    let root = tests::scratch("diagnostics-healthy");
    let dir = run(&root, &[]);
    let m = metrics(&dir);
    assert_eq!(kinds(&m), [], "{:?}", m.diagnostics.as_ref().unwrap().findings);
    let d = m.diagnostics.unwrap();
    // The signals are there: one record per epoch, gradient norms sampled, the ReLUs probed.
    assert_eq!(d.epochs.len(), m.epochs);
    assert!(d.epochs.iter().all(|e| e.grad_samples >= 8 && e.grad_norm_median > 0.0 && e.dead.len() == 4));
    assert_eq!(d.data.duplicates, [("valid".to_owned(), 0, 599), ("test".to_owned(), 0, 1000)]);
    assert!(report(&dir).contains("<h2>Diagnostics</h2>"));
    assert!(report(&dir).contains("No findings"));
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn the_seeds_adagrad_setting_collapses_and_a_tiny_lr_does_not_learn() {
    let root = tests::scratch("diagnostics-collapse");
    // Experiment 1's seed: Adagrad, lr 1e-5, weight decay 0.9.
    let dir = short(&root, &["train.epochs=2", "train.optimizer={name: adagrad, lr: 1.0e-5, weight_decay: 0.9}"]);
    let m = metrics(&dir);
    assert_eq!(kinds(&m), [FindingKind::PredictionCollapse, FindingKind::NotLearning]);
    let collapse = line(&m, FindingKind::PredictionCollapse);
    assert!(collapse.contains("of the validation predictions are class 'Pullover'"), "{collapse}");
    assert!(collapse.contains("did not change from one epoch to the next"), "{collapse}");
    assert!(
        collapse.ends_with(
            "Next: weight decay 0.9 with adagrad pulls the weights to zero faster than the data moves them: try 1e-4"
        ),
        "{collapse}"
    );
    let html = report(&dir);
    assert!(html.contains("<td>prediction collapse</td>") && html.contains("<td>not learning</td>"), "{html}");

    let dir = short(&root, &["train.epochs=2", "train.optimizer={name: sgd, lr: 1.0e-6}"]);
    let m = metrics(&dir);
    assert!(kinds(&m).contains(&FindingKind::NotLearning), "{:?}", kinds(&m));
    let stalled = line(&m, FindingKind::NotLearning);
    assert!(stalled.contains("Next: lr 1.00e-6 is too low to move the weights: run `kindling lr-find`"), "{stalled}");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_far_too_high_lr_diverges_and_kills_the_network() {
    let root = tests::scratch("diagnostics-diverge");
    let dir = short(&root, &["train.epochs=1", "train.optimizer={name: adam, lr: 0.05}"]);
    let m = metrics(&dir);
    let found = kinds(&m);
    assert_eq!(found.first(), Some(&FindingKind::Divergence), "{found:?}");
    assert!(found.contains(&FindingKind::DeadUnits), "{found:?}");
    let diverged = line(&m, FindingKind::Divergence);
    assert!(diverged.contains("a training step's loss reached"), "{diverged}");
    assert!(
        diverged
            .ends_with("Next: lower the learning rate (lr 0.05: try 0.0050) or clip gradients (`clip_grad_norm: 1.0`)")
    );
    assert!(report(&dir).contains("<td>divergence</td>"));
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_small_training_split_overfits_and_early_stopping_would_have_stopped_it() {
    let root = tests::scratch("diagnostics-overfit");
    // 300 training images, 1,700 validation images, small batches, 12 epochs.
    let dir = short(&root, &["idx_dataset.valid_fraction=0.85", "train.batch_size=8", "train.epochs=12"]);
    let m = metrics(&dir);
    assert_eq!(kinds(&m), [FindingKind::Overfitting]);
    let overfit = line(&m, FindingKind::Overfitting);
    let d = m.diagnostics.as_ref().unwrap();
    let best = d.findings[0].epochs[0];
    assert!(overfit.contains(&format!("Next: early stopping would have kept epoch {best}")), "{overfit}");
    assert!(best < 12);
    assert!(report(&dir).contains("<td>overfitting</td>"));
    // Off, nothing is recorded.
    let dir = short(&root, &["train.epochs=1", "train.diagnostics=false"]);
    assert_eq!(metrics(&dir).diagnostics, None);
    assert!(!report(&dir).contains("Diagnostics"));
    std::fs::remove_dir_all(&root).unwrap();
}
