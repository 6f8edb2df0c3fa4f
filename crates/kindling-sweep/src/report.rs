//! `kindling report <sweep-dir>`: every trial compared, as CSV, Markdown and HTML.
//!
//! - `report.csv` and `report.md`: one row per trial, best first (finished trials by the
//!   metric, then pruned ones, then failed, running and pending ones), the best configuration,
//!   and, when seeds were swept, each point's mean +- sample standard deviation over seeds.
//! - `report.html`: the same tables, a heat map of the metric over two swept keys (mean over
//!   everything else), the validation accuracy and loss curves of every trial overlaid (one
//!   chart each), and the trials'
//!   validation confusion matrices side by side in a grid laid out by two swept keys.
//!
//! This module only aggregates (ranks, groups, picks the trial each cell shows) and reads the
//! trials' run files through their types (`kindling_metrics::run_files`); how the page looks is
//! kindling-report's, the same as a run's report.html.

mod page;
mod text;

use std::path::{Path, PathBuf};

use kindling_core::write_atomic;
use kindling_metrics::diagnostics::Finding;
use kindling_metrics::run_files::RunMetrics;
use serde_json::Value;

use crate::SweepError;
use crate::local::curve;
use crate::spec::{Metric, Mode, display_value, short_key};
use crate::store::{Status, Store, StoreError, TrialEntry, TrialState};

/// Choices of what the report lays out.
#[derive(Clone, Debug, Default)]
pub struct ReportOptions {
    /// The two keys of the heat map (rows, columns); default: the first two swept keys.
    pub heatmap: Option<(String, String)>,
    /// The two keys of the confusion-matrix grid (rows, columns); default: the heat map's.
    pub grid: Option<(String, String)>,
}

/// The files a report wrote, and its Markdown text.
#[derive(Clone, Debug)]
pub struct ReportFiles {
    /// `report.csv`.
    pub csv: PathBuf,
    /// `report.md`.
    pub markdown: PathBuf,
    /// `report.html`.
    pub html: PathBuf,
    /// The Markdown report's text.
    pub text: String,
}

/// One trial as the report shows it.
struct Row {
    entry: TrialEntry,
    status: &'static str,
    metric: Option<f64>,
    epochs: usize,
    seconds: Option<f64>,
    error: Option<String>,
    /// The validation curve of the sweep's measure (loss or accuracy).
    curve: Vec<f64>,
    /// The validation curve of the other measure.
    other_curve: Vec<f64>,
    /// What the trial's diagnostics found (`None`: no metrics.json, or diagnostics off).
    findings: Option<Vec<Finding>>,
}

/// The findings in a trial's metrics.json, when it has one with diagnostics.
fn findings(store: &Store, id: &str) -> Option<Vec<Finding>> {
    let text = std::fs::read_to_string(store.run_dir(id).join("metrics.json")).ok()?;
    Some(RunMetrics::from_json(&text).ok()?.diagnostics?.findings)
}

/// A row's findings as one cell: their names, `none`, or empty when not known.
fn findings_cell(r: &Row) -> String {
    match &r.findings {
        None => String::new(),
        Some(f) if f.is_empty() => "none".into(),
        Some(f) => f.iter().map(|f| f.kind.title()).collect::<Vec<_>>().join("; "),
    }
}

/// Writes `report.{csv,md,html}` into the sweep directory `dir`.
pub fn write(dir: &Path, opts: &ReportOptions) -> Result<ReportFiles, SweepError> {
    let (store, manifest) = Store::open(dir)?;
    let spec = &manifest.spec;
    let valid_metric = Metric { split: "valid".into(), name: spec.metric.name.clone() };
    let other = if spec.metric.name == "loss" { "accuracy" } else { "loss" };
    let other_metric = Metric { split: "valid".into(), name: other.into() };
    let mut rows: Vec<Row> = manifest
        .trials
        .iter()
        .map(|t| {
            let mut row = Row {
                entry: t.clone(),
                status: "pending",
                metric: None,
                epochs: 0,
                seconds: None,
                error: None,
                curve: curve(&store, &t.id, &valid_metric),
                other_curve: curve(&store, &t.id, &other_metric),
                findings: findings(&store, &t.id),
            };
            match store.state(&t.id) {
                TrialState::Pending => {}
                TrialState::Running(_) => row.status = "running",
                TrialState::Ended(r) => {
                    row.status = match r.status {
                        Status::Done => "done",
                        Status::Pruned => "pruned",
                        Status::Failed => "failed",
                    };
                    row.metric = r.metric;
                    row.epochs = r.epochs;
                    row.seconds = Some(r.seconds);
                    row.error = r.error;
                }
            }
            row
        })
        .collect();
    let rank = |s: &str| ["done", "pruned", "failed", "running", "pending"].iter().position(|x| *x == s).unwrap_or(5);
    rows.sort_by(|a, b| {
        rank(a.status).cmp(&rank(b.status)).then_with(|| match (a.metric, b.metric) {
            (Some(x), Some(y)) => match spec.mode {
                Mode::Max => y.total_cmp(&x),
                Mode::Min => x.total_cmp(&y),
            },
            (x, y) => y.is_some().cmp(&x.is_some()),
        })
    });
    let keys = spec.keys();
    let plain_keys: Vec<String> = keys.iter().filter(|k| *k != "seed").cloned().collect();
    let heat = opts.heatmap.clone().or_else(|| match plain_keys.as_slice() {
        [a, b, ..] => Some((a.clone(), b.clone())),
        _ => None,
    });
    let grid = opts.grid.clone().or_else(|| heat.clone());
    for (a, b) in heat.iter().chain(grid.iter()) {
        for k in [a, b] {
            if !keys.iter().any(|x| x == k || short_key(x) == k) {
                return Err(SweepError::Launch(format!("`{k}` is not a swept key (swept: {})", keys.join(", "))));
            }
        }
    }

    let csv = text::csv_text(&rows, &keys, &spec.metric);
    let groups = seed_groups(&rows, spec);
    let mut md = text::markdown(&manifest, &rows, &keys, &groups);
    let heat_cells = heat.as_ref().map(|(a, b)| heat_map(&rows, a, b));
    if let (Some((a, b)), Some(cells)) = (&heat, &heat_cells) {
        md += &text::heat_markdown(a, b, cells, &spec.metric);
    }
    let html = page::html_text(
        &store,
        &manifest,
        &rows,
        &keys,
        &groups,
        heat.as_ref().zip(heat_cells.as_ref()),
        grid.as_ref(),
    );

    let files = ReportFiles {
        csv: dir.join("report.csv"),
        markdown: dir.join("report.md"),
        html: dir.join("report.html"),
        text: md.clone(),
    };
    for (path, text) in [(&files.csv, &csv), (&files.markdown, &md), (&files.html, &html)] {
        write_atomic(path, text.as_bytes())
            .map_err(|e| SweepError::Store(StoreError { path: path.clone(), message: e.to_string() }))?;
    }
    Ok(files)
}

fn cell(v: Option<Value>) -> String {
    v.map(|v| display_value(&v)).unwrap_or_default()
}

/// One point of the sweep (its values without the seed) over its seeds.
struct Group {
    label: String,
    values: Vec<f64>,
    mean: f64,
    std: Option<f64>,
}

fn seed_groups(rows: &[Row], spec: &crate::SweepSpec) -> Vec<Group> {
    if spec.seeds.len() < 2 {
        return Vec::new();
    }
    let mut groups: Vec<Group> = Vec::new();
    for r in rows.iter().filter(|r| r.status == "done") {
        let label = r.entry.spec.point_label();
        let Some(m) = r.metric else { continue };
        match groups.iter_mut().find(|g| g.label == label) {
            Some(g) => g.values.push(m),
            None => groups.push(Group { label, values: vec![m], mean: 0.0, std: None }),
        }
    }
    for g in &mut groups {
        let n = g.values.len() as f64;
        g.mean = g.values.iter().sum::<f64>() / n;
        g.std = (g.values.len() > 1)
            .then(|| (g.values.iter().map(|v| (v - g.mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
    }
    groups.sort_by(|a, b| match spec.mode {
        Mode::Max => b.mean.total_cmp(&a.mean),
        Mode::Min => a.mean.total_cmp(&b.mean),
    });
    groups
}

/// Distinct values of `key` among the rows, in order of first appearance.
fn distinct(rows: &[Row], key: &str) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut by_index: Vec<&Row> = rows.iter().collect();
    by_index.sort_by_key(|r| r.entry.spec.index);
    for r in by_index {
        if let Some(v) = r.entry.spec.value(key)
            && !out.contains(&v)
        {
            out.push(v);
        }
    }
    out
}

struct HeatCells {
    rows: Vec<Value>,
    cols: Vec<Value>,
    /// Mean metric of finished trials per (row, col).
    mean: Vec<Vec<Option<f64>>>,
}

fn heat_map(rows: &[Row], a: &str, b: &str) -> HeatCells {
    let (rv, cv) = (distinct(rows, a), distinct(rows, b));
    let mean = rv
        .iter()
        .map(|x| {
            cv.iter()
                .map(|y| {
                    let v: Vec<f64> = rows
                        .iter()
                        .filter(|r| r.status == "done")
                        .filter(|r| {
                            r.entry.spec.value(a).as_ref() == Some(x) && r.entry.spec.value(b).as_ref() == Some(y)
                        })
                        .filter_map(|r| r.metric)
                        .collect();
                    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
                })
                .collect()
        })
        .collect();
    HeatCells { rows: rv, cols: cv, mean }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{SweepSpec, TrialSpec};
    use crate::store::{Manifest, TrialEntry, TrialResult};
    use std::fs;

    /// A store of a 2 x 2 grid over two seeds with made-up outcomes, as trials would leave it.
    fn fake_sweep(dir: &Path) {
        let spec = crate::spec::parse_block(
            &serde_yaml::from_str("grid: {train.optimizer.lr: [0.1, 0.01], model.dropout: [0.5, 0.2]}\nseeds: [1, 2]")
                .unwrap(),
            0,
        )
        .unwrap();
        let trials: Vec<TrialEntry> =
            spec.trials().into_iter().map(|t| TrialEntry { id: format!("t{:02}", t.index), spec: t }).collect();
        let manifest = Manifest {
            version: 1,
            pipeline: "p.yaml".into(),
            name: "fake".into(),
            base_overrides: vec![],
            spec: SweepSpec { ..spec },
            trials,
            device: Default::default(),
        };
        let configs: Vec<String> = manifest.trials.iter().map(|t| format!("# {}\n", t.id)).collect();
        let store = Store::create(dir, &manifest, &configs).unwrap();
        for t in &manifest.trials {
            let TrialSpec { index, .. } = t.spec;
            // Accuracy grows with the index; trial 7 failed, trial 6 was pruned.
            let acc = 0.5 + 0.05 * index as f64;
            let claim = store.try_claim(&t.id, None).unwrap().unwrap();
            let run = store.run_dir(&t.id);
            fs::create_dir_all(&run).unwrap();
            fs::write(
                run.join("history.csv"),
                format!("epoch,split,loss,accuracy,lr,seconds\n1,train,1,0.4,0.1,1\n1,valid,1,{},0.1,1\n2,valid,1,{acc},0.1,1\n", acc - 0.1),
            )
            .unwrap();
            fs::write(run.join("confusion_valid.csv"), "true\\predicted,cat,\"dog, big\"\ncat,3,1\n\"dog, big\",0,4\n")
                .unwrap();
            // Trial 0's diagnostics found a collapse, trial 1's nothing; the others have none.
            let findings = match index {
                0 => {
                    r#"[{"kind": "prediction_collapse", "epochs": [1, 2], "evidence": "at epoch 2, 90.0% of the validation predictions are class 'cat'.", "advice": "try 1e-4"}]"#
                }
                1 => "[]",
                _ => "",
            };
            if !findings.is_empty() {
                let metrics = format!(
                    r#"{{"device": "cpu", "epochs": 2, "parameters": 10, "train_seconds": 1.0, "wall_seconds": 2.0,
                    "train_samples_per_second": 5.0, "final_epoch": null, "kept_epoch": null, "test": null,
                    "per_class": {{}}, "early_stopping": null,
                    "diagnostics": {{"findings": {findings}, "epochs": [], "data": {{"classes": [], "counts": [], "duplicates": []}}}}}}"#
                );
                fs::write(run.join("metrics.json"), metrics).unwrap();
            }
            let (status, metric, error) = match index {
                7 => (Status::Failed, None, Some("error: the training loss became NaN".to_owned())),
                6 => (Status::Pruned, Some(acc - 0.1), Some("successive halving".to_owned())),
                _ => (Status::Done, Some(acc), None),
            };
            let r = TrialResult { status, metric, epochs: 2, seconds: 1.0, attempt: 0, host: "h".into(), error };
            assert!(claim.finish(r).unwrap());
        }
    }

    #[test]
    fn the_report_ranks_groups_and_lays_out_the_grid() {
        let dir = std::env::temp_dir().join(format!("kindling-report-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fake_sweep(&dir);
        let files = write(&dir, &ReportOptions::default()).unwrap();
        let md = &files.text;
        assert!(md.contains("8 trials: 6 done, 1 pruned, 1 failed, 0 running, 0 pending."), "{md}");
        assert!(md.contains("Best: **lr=0.01 dropout=0.5 seed=2**, valid.accuracy 0.7500"), "{md}");
        // Seeds 1 and 2 of lr=0.01 dropout=0.5 (trials 4 and 5): 0.70 and 0.75.
        assert!(md.contains("| lr=0.01 dropout=0.5 | 0.7250 ± 0.0354 | 2 |"), "{md}");
        // lr=0.01 dropout=0.2 has no finished trial (one pruned, one failed): no mean.
        assert!(!md.contains("| lr=0.01 dropout=0.2 |"), "{md}");
        assert!(md.contains("- `t07` (lr=0.01 dropout=0.2 seed=2): error: the training loss became NaN"), "{md}");
        // Heat map: rows lr, columns dropout, mean of finished trials.
        assert!(md.contains("| lr \\ dropout | 0.5 | 0.2 |"), "{md}");
        assert!(md.contains("| 0.1 | 0.5250 | 0.6250 |"), "{md}");
        assert!(md.contains("| 0.01 | 0.7250 |  |"), "{md}");

        let csv = fs::read_to_string(&files.csv).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "rank,trial,status,train.optimizer.lr,model.dropout,seed,valid.accuracy,epochs,seconds,findings,error"
        );
        // Each trial's findings: named in the table, in full in their own section.
        let trial = |id: &str| lines.iter().find(|l| l.split(',').nth(1) == Some(id)).unwrap().to_owned();
        assert!(trial("t00").ends_with(",prediction collapse,"), "{csv}");
        assert!(trial("t01").ends_with(",none,"), "{csv}");
        assert!(trial("t02").ends_with(",1.0,,"), "{csv}");
        assert!(
            md.contains(
                "## Findings\n\n- `t00` (lr=0.1 dropout=0.5 seed=1): prediction collapse: at epoch 2, 90.0% of the \
                 validation predictions are class 'cat'. Next: try 1e-4\n"
            ),
            "{md}"
        );
        assert!(lines[1].starts_with("1,t05,done,0.01,0.5,2,0.750000,"), "{csv}");
        assert!(lines[7].starts_with("7,t06,pruned,"), "{csv}");
        assert!(
            lines[8].starts_with("8,t07,failed,") && lines[8].ends_with(",error: the training loss became NaN"),
            "{csv}"
        );

        let html = fs::read_to_string(&files.html).unwrap();
        assert!(html.contains("<title>Sweep of fake: Kindling sweep report</title>"), "{html}");
        assert!(html.contains("<tr><th>trials</th><td>8: 6 done, 1 pruned, 1 failed, 0 running, 0 pending</td></tr>"));
        // Two charts, the sweep's measure and the other one, every trial overlaid on each.
        assert!(html.contains("Validation accuracy by epoch") && html.contains("Validation loss by epoch"));
        assert_eq!(html.matches("<polyline").count(), 16, "every trial's two curves");
        assert_eq!(html.matches("<g class=\"legend\">").count(), 16, "every trial in both legends");
        assert_eq!(html.matches("stroke-dasharray").count(), 4, "the pruned one dashed, in the plots and the legends");
        assert!(html.matches("class=\"tick\"").count() >= 4, "axis ticks");
        // A 2 x 2 grid of confusion matrices (one cell has no finished trial), class names read
        // back through CSV quoting.
        assert!(html.contains("<h2>Validation confusion matrices by lr and dropout</h2>"), "{html}");
        assert_eq!(html.matches("<table class=\"confusion\">").count(), 3);
        assert!(html.contains("<th class=\"class\">dog, big</th>"), "{html}");
        assert!(html.contains("title=\"dog, big as cat: 0\""));
        assert!(
            html.contains(
                "<td class=\"alert\" title=\"prediction collapse: at epoch 2, 90.0% of the validation \
                           predictions are class &#39;cat&#39;. Next: try 1e-4\">prediction collapse</td>"
            ),
            "{html}"
        );
        // The trials link to their configurations; the failure shows its error on hover.
        assert!(html.contains("<td><a href=\"trials/t05/config.yaml\">t05</a></td>"), "{html}");
        assert!(
            html.contains("<td class=\"alert\" title=\"error: the training loss became NaN\">failed</td>"),
            "{html}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unknown_layout_keys_are_refused() {
        let dir = std::env::temp_dir().join(format!("kindling-report-keys-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fake_sweep(&dir);
        let opts = ReportOptions { heatmap: Some(("lr".into(), "momentum".into())), grid: None };
        let e = write(&dir, &opts).unwrap_err().to_string();
        assert_eq!(e, "`momentum` is not a swept key (swept: train.optimizer.lr, model.dropout, seed)");
        fs::remove_dir_all(&dir).unwrap();
    }
}
