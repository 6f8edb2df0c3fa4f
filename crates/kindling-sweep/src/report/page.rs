//! `report.html`: what the sweep shows, handed to kindling-report, which draws it in the same
//! page style as a run's report.html.

use std::fs;

use kindling_metrics::ConfusionMatrix;
use kindling_metrics::diagnostics::Finding;
use kindling_report::{
    Cell, ConfusionCell, ConfusionGrid, LineChart, Page, PageKind, Section, Series, Table, score_shade,
};
use serde_json::Value;

use super::text::mean_std;
use super::{Group, HeatCells, Row, cell, distinct};
use crate::spec::{Metric, Mode, display_value, short_key};
use crate::store::{Manifest, Store};

/// `report.html`: the page style of a run's report.html (kindling-report), with the summary,
/// the seed groups, the heat map, every trial's validation curve, the confusion grid and the
/// trials.
pub(super) fn html_text(
    store: &Store,
    manifest: &Manifest,
    rows: &[Row],
    keys: &[String],
    groups: &[Group],
    heat: Option<(&(String, String), &HeatCells)>,
    grid: Option<&(String, String)>,
) -> String {
    let spec = &manifest.spec;
    let mut sections = Vec::new();
    if !groups.is_empty() {
        sections.push(Section::Table(Table {
            title: "Over seeds".into(),
            note: Some(format!("Each point's finished trials over {} seeds, best mean first.", spec.seeds.len())),
            header: vec!["point".into(), format!("{} (mean ± std)", spec.metric), "n".into()],
            rows: groups
                .iter()
                .map(|g| vec![g.label.as_str().into(), mean_std(g).into(), g.values.len().to_string().into()])
                .collect(),
        }));
    }
    if let Some(((a, b), cells)) = heat {
        sections.push(Section::Table(heat_table(a, b, cells, &spec.metric, spec.mode)));
    }
    // The sweep's measure first, then the other: a comparison of models reads both.
    let other = if spec.metric.name == "loss" { "accuracy" } else { "loss" };
    sections.push(Section::Chart(curves(rows, &spec.metric.name, |r| &r.curve)));
    sections.push(Section::Chart(curves(rows, other, |r| &r.other_curve)));
    let confusions = match grid {
        Some((a, b)) => confusion_grid(store, rows, a, b),
        None => keys.first().and_then(|k| confusion_grid(store, rows, "", k)),
    };
    sections.extend(confusions.map(Section::Confusions));
    sections.push(Section::Table(trials_table(rows, keys, &spec.metric)));
    Page {
        title: format!("Sweep of {}", manifest.name),
        kind: PageKind::Sweep,
        summary: summary(manifest, rows),
        sections,
        config: None,
    }
    .to_html()
}

/// The page's summary lines: the counts, the metric, the best trial.
fn summary(manifest: &Manifest, rows: &[Row]) -> Vec<(String, String)> {
    let spec = &manifest.spec;
    let count = |s: &str| rows.iter().filter(|r| r.status == s).count();
    let mut lines = vec![
        (
            "trials".to_owned(),
            format!(
                "{}: {} done, {} pruned, {} failed, {} running, {} pending",
                rows.len(),
                count("done"),
                count("pruned"),
                count("failed"),
                count("running"),
                count("pending")
            ),
        ),
        (
            "compared by".to_owned(),
            format!(
                "{} ({})",
                spec.metric,
                if spec.mode == Mode::Max { "higher is better" } else { "lower is better" }
            ),
        ),
    ];
    if let Some(best) = rows.first().filter(|r| r.status == "done") {
        lines.push((
            "best".to_owned(),
            format!(
                "{}: {} {:.4} (trials/{}/config.yaml)",
                best.entry.spec.label(),
                spec.metric,
                best.metric.unwrap_or(f64::NAN),
                best.entry.id
            ),
        ));
    }
    lines
}

/// The heat map: the mean metric per pair of values, shaded from worst (red) to best (green).
fn heat_table(a: &str, b: &str, cells: &HeatCells, metric: &Metric, mode: Mode) -> Table {
    let values: Vec<f64> = cells.mean.iter().flatten().flatten().copied().collect();
    let (lo, hi) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, u), &v| (l.min(v), u.max(v)));
    let mut header = vec![format!("{} \\ {}", short_key(a), short_key(b))];
    header.extend(cells.cols.iter().map(display_value));
    let rows = cells
        .rows
        .iter()
        .zip(&cells.mean)
        .map(|(x, line)| {
            let mut row: Vec<Cell> = vec![display_value(x).into()];
            row.extend(line.iter().map(|m| match m {
                Some(m) => {
                    let t = if hi > lo { (m - lo) / (hi - lo) } else { 1.0 };
                    let t = if mode == Mode::Max { t } else { 1.0 - t };
                    Cell { text: format!("{m:.4}"), background: Some(score_shade(t)), ..Cell::default() }
                }
                None => Cell::default(),
            }));
            row
        })
        .collect();
    Table {
        title: format!("{metric} by {} and {}", short_key(a), short_key(b)),
        note: Some("Mean over every other key and seed; greener is better.".into()),
        header,
        rows,
    }
}

/// Every trial's validation curve of `name` (loss or accuracy, read from the row by `of`), the
/// pruned ones dashed.
fn curves(rows: &[Row], name: &str, of: impl Fn(&Row) -> &Vec<f64>) -> LineChart {
    let series = rows
        .iter()
        .filter(|r| !of(r).is_empty())
        .map(|r| Series {
            name: r.entry.spec.label(),
            points: of(r).iter().enumerate().map(|(e, &v)| ((e + 1) as f64, v)).collect(),
            dashed: r.status == "pruned",
        })
        .collect();
    LineChart {
        title: format!("Validation {name} by epoch"),
        note: Some("One line per trial, best first; dashed: pruned.".into()),
        x_label: "epoch".into(),
        y_label: format!("valid {name}"),
        integer_x: true,
        series,
    }
}

/// The trials, best first, each linking to its configuration; a failure shows its error on
/// hover.
fn trials_table(rows: &[Row], keys: &[String], metric: &Metric) -> Table {
    let mut header = vec!["#".to_owned(), "trial".to_owned()];
    header.extend(keys.iter().map(|k| short_key(k).to_owned()));
    header.extend(["status", &metric.to_string(), "epochs", "seconds", "findings"].map(String::from));
    let rows = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut row: Vec<Cell> = vec![
                (i + 1).to_string().into(),
                Cell {
                    text: r.entry.id.clone(),
                    link: Some(format!("trials/{}/config.yaml", r.entry.id)),
                    ..Cell::default()
                },
            ];
            row.extend(keys.iter().map(|k| Cell::from(cell(r.entry.spec.value(k)))));
            row.push(Cell {
                text: r.status.into(),
                hint: r.error.clone(),
                alert: r.status == "failed",
                ..Cell::default()
            });
            row.push(r.metric.map_or_else(String::new, |m| format!("{m:.4}")).into());
            row.push(r.epochs.to_string().into());
            row.push(r.seconds.map_or_else(String::new, |s| format!("{s:.1}")).into());
            let lines: Vec<String> = r.findings.iter().flatten().map(Finding::line).collect();
            row.push(Cell {
                text: super::findings_cell(r),
                hint: (!lines.is_empty()).then(|| lines.join("\n")),
                alert: !lines.is_empty(),
                ..Cell::default()
            });
            row
        })
        .collect();
    Table { title: "Trials".into(), note: None, header, rows }
}

/// The validation confusion matrix of the best finished trial of each (a, b) cell, with a's
/// values down and b's across (`a` empty: one row); `None` when no trial left one.
fn confusion_grid(store: &Store, rows: &[Row], a: &str, b: &str) -> Option<ConfusionGrid> {
    let rv = if a.is_empty() { vec![Value::Null] } else { distinct(rows, a) };
    let cv = distinct(rows, b);
    let mut any = false;
    let grid_rows: Vec<(String, Vec<Option<ConfusionCell>>)> = rv
        .iter()
        .map(|x| {
            let cells: Vec<Option<ConfusionCell>> = cv
                .iter()
                .map(|y| {
                    // Rows are sorted best first, so the first match is the cell's best.
                    let r = rows.iter().find(|r| {
                        r.status == "done"
                            && (a.is_empty() || r.entry.spec.value(a).as_ref() == Some(x))
                            && r.entry.spec.value(b).as_ref() == Some(y)
                    })?;
                    let path = store.run_dir(&r.entry.id).join("confusion_valid.csv");
                    let (classes, matrix) = ConfusionMatrix::from_csv(&fs::read_to_string(path).ok()?).ok()?;
                    any = true;
                    let caption = format!("{} {:.4}", r.entry.spec.label(), r.metric.unwrap_or(f64::NAN));
                    Some(ConfusionCell { caption, classes, matrix })
                })
                .collect();
            (if a.is_empty() { String::new() } else { display_value(x) }, cells)
        })
        .collect();
    let (title, corner) = if a.is_empty() {
        (format!("Validation confusion matrices by {}", short_key(b)), String::new())
    } else {
        (
            format!("Validation confusion matrices by {} and {}", short_key(a), short_key(b)),
            format!("{} \\ {}", short_key(a), short_key(b)),
        )
    };
    any.then(|| ConfusionGrid {
        title,
        note: Some(
            "Rows: true class; columns: predicted. Each cell shows the best finished trial with those values; \
             shading is per true class."
                .into(),
        ),
        corner,
        columns: cv.iter().map(display_value).collect(),
        rows: grid_rows,
    })
}
