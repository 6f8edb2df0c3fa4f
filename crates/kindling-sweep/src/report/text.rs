//! `report.csv` and `report.md`: the trials ranked, as text.

use std::fmt::Write as _;

use super::{Group, HeatCells, Row, cell, findings_cell};
use crate::spec::{Metric, Mode, display_value, short_key};
use crate::store::Manifest;

pub(super) fn csv_text(rows: &[Row], keys: &[String], metric: &Metric) -> String {
    let mut out = format!("rank,trial,status,{},{metric},epochs,seconds,findings,error\n", keys.join(","));
    for (i, r) in rows.iter().enumerate() {
        let values: Vec<String> = keys.iter().map(|k| csv_field(&cell(r.entry.spec.value(k)))).collect();
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{}",
            i + 1,
            r.entry.id,
            r.status,
            values.join(","),
            r.metric.map_or_else(String::new, |m| format!("{m:.6}")),
            r.epochs,
            r.seconds.map_or_else(String::new, |s| format!("{s:.1}")),
            csv_field(&findings_cell(r)),
            csv_field(r.error.as_deref().unwrap_or_default().lines().next().unwrap_or_default()),
        );
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_owned() }
}

pub(super) fn mean_std(g: &Group) -> String {
    match g.std {
        Some(s) => format!("{:.4} ± {s:.4}", g.mean),
        None => format!("{:.4}", g.mean),
    }
}

pub(super) fn markdown(manifest: &Manifest, rows: &[Row], keys: &[String], groups: &[Group]) -> String {
    let spec = &manifest.spec;
    let count = |s: &str| rows.iter().filter(|r| r.status == s).count();
    let mut out = format!(
        "# Sweep of {}\n\n{} trials: {} done, {} pruned, {} failed, {} running, {} pending. Compared by {} ({}).\n\n",
        manifest.name,
        rows.len(),
        count("done"),
        count("pruned"),
        count("failed"),
        count("running"),
        count("pending"),
        spec.metric,
        if spec.mode == Mode::Max { "higher is better" } else { "lower is better" },
    );
    if let Some(best) = rows.first().filter(|r| r.status == "done") {
        let _ = writeln!(
            out,
            "Best: **{}**, {} {:.4} (configuration: `trials/{}/config.yaml`)\n",
            best.entry.spec.label(),
            spec.metric,
            best.metric.unwrap_or(f64::NAN),
            best.entry.id
        );
    }
    if !groups.is_empty() {
        let _ = writeln!(
            out,
            "## Over seeds ({} each)\n\n| point | {} (mean ± std) | n |\n|---|---|---|",
            spec.seeds.len(),
            spec.metric
        );
        for g in groups {
            let _ = writeln!(out, "| {} | {} | {} |", g.label, mean_std(g), g.values.len());
        }
        out.push('\n');
    }
    let short: Vec<&str> = keys.iter().map(|k| short_key(k)).collect();
    let _ = writeln!(
        out,
        "## Trials\n\n| # | trial | {} | status | {} | epochs | seconds | findings |\n|{}",
        short.join(" | "),
        spec.metric,
        "---|".repeat(keys.len() + 7)
    );
    for (i, r) in rows.iter().enumerate() {
        let values: Vec<String> = keys.iter().map(|k| cell(r.entry.spec.value(k))).collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            i + 1,
            r.entry.id,
            values.join(" | "),
            r.status,
            r.metric.map_or_else(String::new, |m| format!("{m:.4}")),
            r.epochs,
            r.seconds.map_or_else(String::new, |s| format!("{s:.1}")),
            findings_cell(r),
        );
    }
    let diagnosed: Vec<&Row> = rows.iter().filter(|r| r.findings.as_ref().is_some_and(|f| !f.is_empty())).collect();
    if !diagnosed.is_empty() {
        out += "\n## Findings\n\n";
        for r in diagnosed {
            for f in r.findings.iter().flatten() {
                let _ = writeln!(out, "- `{}` ({}): {}", r.entry.id, r.entry.spec.label(), f.line());
            }
        }
    }
    let failed: Vec<&Row> = rows.iter().filter(|r| r.status == "failed").collect();
    if !failed.is_empty() {
        out += "\n## Failures\n\n";
        for r in failed {
            let _ = writeln!(
                out,
                "- `{}` ({}): {}",
                r.entry.id,
                r.entry.spec.label(),
                r.error.as_deref().unwrap_or("no error recorded").lines().next().unwrap_or_default()
            );
        }
    }
    out
}

pub(super) fn heat_markdown(a: &str, b: &str, h: &HeatCells, metric: &Metric) -> String {
    let mut out = format!(
        "\n## {metric} by {} (rows) and {} (columns), mean over the rest\n\n| {} \\ {} | {} |\n|{}\n",
        short_key(a),
        short_key(b),
        short_key(a),
        short_key(b),
        h.cols.iter().map(display_value).collect::<Vec<_>>().join(" | "),
        "---|".repeat(h.cols.len() + 1)
    );
    for (x, line) in h.rows.iter().zip(&h.mean) {
        let cells: Vec<String> = line.iter().map(|m| m.map_or_else(String::new, |m| format!("{m:.4}"))).collect();
        let _ = writeln!(out, "| {} | {} |", display_value(x), cells.join(" | "));
    }
    out
}
