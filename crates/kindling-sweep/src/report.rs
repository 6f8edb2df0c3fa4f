//! `kindling report <sweep-dir>`: every trial compared, as CSV, Markdown and HTML.
//!
//! - `report.csv` and `report.md`: one row per trial, best first (finished trials by the
//!   metric, then pruned ones, then failed, running and pending ones), the best configuration,
//!   and, when seeds were swept, each point's mean +- sample standard deviation over seeds.
//! - `report.html`: the same tables, a heat map of the metric over two swept keys (mean over
//!   everything else), the validation curves of every trial overlaid, and the trials'
//!   validation confusion matrices side by side in a grid laid out by two swept keys.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use kindling_core::write_atomic;
use serde_json::Value;

use crate::SweepError;
use crate::local::curve;
use crate::spec::{Metric, Mode, display_value, short_key};
use crate::store::{Manifest, Status, Store, StoreError, TrialEntry, TrialState};

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

struct Row {
    entry: TrialEntry,
    status: &'static str,
    metric: Option<f64>,
    epochs: usize,
    seconds: Option<f64>,
    error: Option<String>,
    curve: Vec<f64>,
}

/// Writes `report.{csv,md,html}` into the sweep directory `dir`.
pub fn write(dir: &Path, opts: &ReportOptions) -> Result<ReportFiles, SweepError> {
    let (store, manifest) = Store::open(dir)?;
    let spec = &manifest.spec;
    let valid_metric = Metric { split: "valid".into(), name: spec.metric.name.clone() };
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

    let csv = csv_text(&rows, &keys, &spec.metric);
    let groups = seed_groups(&rows, spec);
    let mut md = markdown(&manifest, &rows, &keys, &groups);
    let heat_cells = heat.as_ref().map(|(a, b)| heat_map(&rows, a, b));
    if let (Some((a, b)), Some(cells)) = (&heat, &heat_cells) {
        md += &heat_markdown(a, b, cells, &spec.metric);
    }
    let html =
        html_text(&store, &manifest, &rows, &keys, &groups, heat.as_ref().zip(heat_cells.as_ref()), grid.as_ref());

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

fn csv_text(rows: &[Row], keys: &[String], metric: &Metric) -> String {
    let mut out = format!("rank,trial,status,{},{metric},epochs,seconds,error\n", keys.join(","));
    for (i, r) in rows.iter().enumerate() {
        let values: Vec<String> = keys.iter().map(|k| csv_field(&cell(r.entry.spec.value(k)))).collect();
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{}",
            i + 1,
            r.entry.id,
            r.status,
            values.join(","),
            r.metric.map_or_else(String::new, |m| format!("{m:.6}")),
            r.epochs,
            r.seconds.map_or_else(String::new, |s| format!("{s:.1}")),
            csv_field(r.error.as_deref().unwrap_or_default().lines().next().unwrap_or_default()),
        );
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_owned() }
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

fn mean_std(g: &Group) -> String {
    match g.std {
        Some(s) => format!("{:.4} ± {s:.4}", g.mean),
        None => format!("{:.4}", g.mean),
    }
}

fn markdown(manifest: &Manifest, rows: &[Row], keys: &[String], groups: &[Group]) -> String {
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
        "## Trials\n\n| # | trial | {} | status | {} | epochs | seconds |\n|{}",
        short.join(" | "),
        spec.metric,
        "---|".repeat(keys.len() + 6)
    );
    for (i, r) in rows.iter().enumerate() {
        let values: Vec<String> = keys.iter().map(|k| cell(r.entry.spec.value(k))).collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            i + 1,
            r.entry.id,
            values.join(" | "),
            r.status,
            r.metric.map_or_else(String::new, |m| format!("{m:.4}")),
            r.epochs,
            r.seconds.map_or_else(String::new, |s| format!("{s:.1}")),
        );
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

fn heat_markdown(a: &str, b: &str, h: &HeatCells, metric: &Metric) -> String {
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

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A colour from red (0) through yellow to green (1).
fn shade(t: f64) -> String {
    let t = t.clamp(0.0, 1.0);
    let hue = 120.0 * t;
    format!("hsl({hue:.0}, 70%, 80%)")
}

const PALETTE: &[&str] =
    &["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

fn html_text(
    store: &Store,
    manifest: &Manifest,
    rows: &[Row],
    keys: &[String],
    groups: &[Group],
    heat: Option<(&(String, String), &HeatCells)>,
    grid: Option<&(String, String)>,
) -> String {
    let spec = &manifest.spec;
    let mut h = String::from(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Sweep report</title><style>\
         body{font-family:sans-serif;margin:2em;max-width:75em}table{border-collapse:collapse;margin:1em 0}\
         td,th{border:1px solid #ccc;padding:.25em .5em;text-align:right}th{background:#f3f3f3}\
         .cm td{width:1.6em;height:1.6em;padding:0;font-size:.7em;text-align:center}\
         .grid>tbody>tr>td{vertical-align:top;text-align:left}.failed{color:#b00}</style></head><body>\n",
    );
    let _ = writeln!(h, "<h1>Sweep of {}</h1>", esc(&manifest.name));
    // The Markdown summary lines, as paragraphs.
    let md = markdown(manifest, rows, keys, groups);
    for line in md.lines().skip(2).take_while(|l| !l.starts_with("##")) {
        if !line.is_empty() {
            let _ = writeln!(h, "<p>{}</p>", esc(line).replace("**", ""));
        }
    }
    if !groups.is_empty() {
        let _ = writeln!(
            h,
            "<h2>Over seeds</h2><table><tr><th>point</th><th>{} (mean ± std)</th><th>n</th></tr>",
            spec.metric
        );
        for g in groups {
            let _ =
                writeln!(h, "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", esc(&g.label), mean_std(g), g.values.len());
        }
        h += "</table>\n";
    }
    if let Some(((a, b), cells)) = heat {
        let values: Vec<f64> = cells.mean.iter().flatten().flatten().copied().collect();
        let (lo, hi) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, u), &v| (l.min(v), u.max(v)));
        let _ = writeln!(
            h,
            "<h2>{} by {} and {}</h2><p>Mean over every other key and seed; greener is better.</p><table><tr><th>{} \\ {}</th>",
            spec.metric,
            esc(short_key(a)),
            esc(short_key(b)),
            esc(short_key(a)),
            esc(short_key(b))
        );
        for c in &cells.cols {
            let _ = write!(h, "<th>{}</th>", esc(&display_value(c)));
        }
        h += "</tr>\n";
        for (x, line) in cells.rows.iter().zip(&cells.mean) {
            let _ = write!(h, "<tr><th>{}</th>", esc(&display_value(x)));
            for m in line {
                match m {
                    Some(m) => {
                        let t = if hi > lo { (m - lo) / (hi - lo) } else { 1.0 };
                        let t = if spec.mode == Mode::Max { t } else { 1.0 - t };
                        let _ = write!(h, "<td style=\"background:{}\">{m:.4}</td>", shade(t));
                    }
                    None => h += "<td></td>",
                }
            }
            h += "</tr>\n";
        }
        h += "</table>\n";
    }
    h += &curves_svg(rows, &spec.metric.name);
    if let Some((a, b)) = grid {
        h += &confusion_grid(store, rows, a, b);
    } else if let Some(k) = keys.first() {
        h += &confusion_grid(store, rows, "", k);
    }
    let _ = writeln!(
        h,
        "<h2>Trials</h2><table><tr><th>#</th><th>trial</th>{}<th>status</th><th>{}</th><th>epochs</th><th>seconds</th></tr>",
        keys.iter().map(|k| format!("<th>{}</th>", esc(short_key(k)))).collect::<String>(),
        spec.metric
    );
    for (i, r) in rows.iter().enumerate() {
        let values: String = keys.iter().map(|k| format!("<td>{}</td>", esc(&cell(r.entry.spec.value(k))))).collect();
        let title = r.error.as_deref().map(|e| format!(" title=\"{}\"", esc(e))).unwrap_or_default();
        let class = if r.status == "failed" { " class=\"failed\"" } else { "" };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td><a href=\"trials/{id}/config.yaml\">{id}</a></td>{values}<td{class}{title}>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            i + 1,
            r.status,
            r.metric.map_or_else(String::new, |m| format!("{m:.4}")),
            r.epochs,
            r.seconds.map_or_else(String::new, |s| format!("{s:.1}")),
            id = r.entry.id,
        );
    }
    h += "</table>\n</body></html>\n";
    h
}

/// Every trial's validation curve, overlaid, as an inline SVG.
fn curves_svg(rows: &[Row], name: &str) -> String {
    let curves: Vec<&Row> = rows.iter().filter(|r| !r.curve.is_empty()).collect();
    if curves.is_empty() {
        return String::new();
    }
    let (w, hgt, pad) = (720.0, 360.0, 48.0);
    let epochs = curves.iter().map(|r| r.curve.len()).max().unwrap_or(1).max(2);
    let all: Vec<f64> = curves.iter().flat_map(|r| r.curve.iter().copied()).filter(|v| v.is_finite()).collect();
    let (mut lo, mut hi) = all.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, u), &v| (l.min(v), u.max(v)));
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        lo -= 0.5;
        hi += 0.5;
    }
    let x = |e: usize| pad + (w - 2.0 * pad) * e as f64 / (epochs - 1) as f64;
    let y = |v: f64| hgt - pad - (hgt - 2.0 * pad) * (v - lo) / (hi - lo);
    let mut s = format!(
        "<h2>Validation {name} by epoch</h2>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{hgt}\" \
         style=\"border:1px solid #ccc\">\n<text x=\"{pad}\" y=\"20\" font-size=\"12\">{hi:.4}</text>\
         <text x=\"{pad}\" y=\"{}\" font-size=\"12\">{lo:.4}</text><text x=\"{}\" y=\"{}\" font-size=\"12\">epoch {epochs}</text>\n",
        hgt - 8.0,
        w - pad - 40.0,
        hgt - 8.0
    );
    for (i, r) in curves.iter().enumerate() {
        let points: Vec<String> =
            r.curve.iter().enumerate().map(|(e, &v)| format!("{:.1},{:.1}", x(e), y(v))).collect();
        let dash = if r.status == "pruned" { " stroke-dasharray=\"4 3\"" } else { "" };
        let _ = writeln!(
            s,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\"{dash} points=\"{}\"><title>{}</title></polyline>",
            PALETTE[i % PALETTE.len()],
            points.join(" "),
            esc(&r.entry.spec.label())
        );
    }
    s += "</svg>\n<p>";
    for (i, r) in curves.iter().enumerate().take(20) {
        let _ = write!(
            s,
            "<span style=\"color:{}\">■</span> {} &nbsp; ",
            PALETTE[i % PALETTE.len()],
            esc(&r.entry.spec.label())
        );
    }
    s += "(dashed: pruned)</p>\n";
    s
}

/// A confusion matrix read back from `confusion_valid.csv`.
fn read_confusion(path: &Path) -> Option<(Vec<String>, Vec<Vec<u64>>)> {
    let text = fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    let header = split_csv(lines.next()?);
    let names = header[1..].to_vec();
    let mut counts = Vec::new();
    for l in lines {
        let f = split_csv(l);
        counts.push(f[1..].iter().map(|v| v.parse().unwrap_or(0)).collect());
    }
    Some((names, counts))
}

fn split_csv(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                if let Some(s) = out.last_mut() {
                    s.push('"');
                }
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(String::new()),
            c => {
                if let Some(s) = out.last_mut() {
                    s.push(c);
                }
            }
        }
    }
    out
}

/// The best finished trial of each (a, b) cell's validation confusion matrix, in a grid with
/// a's values down and b's across (`a` empty: one row).
fn confusion_grid(store: &Store, rows: &[Row], a: &str, b: &str) -> String {
    let rv = if a.is_empty() { vec![Value::Null] } else { distinct(rows, a) };
    let cv = distinct(rows, b);
    let mut s = format!(
        "<h2>Validation confusion matrices{}</h2><p>Rows: true class; columns: predicted. Each cell shows the best finished trial \
         with those values; shading is per true class.</p><table class=\"grid\"><tr><th>{}</th>",
        if a.is_empty() {
            format!(" by {}", esc(short_key(b)))
        } else {
            format!(" by {} and {}", esc(short_key(a)), esc(short_key(b)))
        },
        if a.is_empty() { String::new() } else { format!("{} \\ {}", esc(short_key(a)), esc(short_key(b))) }
    );
    for c in &cv {
        let _ = write!(s, "<th>{}</th>", esc(&display_value(c)));
    }
    s += "</tr>\n";
    let mut any = false;
    for x in &rv {
        let _ = write!(s, "<tr><th>{}</th>", if a.is_empty() { String::new() } else { esc(&display_value(x)) });
        for y in &cv {
            // Rows are sorted best first, so the first match is the cell's best.
            let best = rows.iter().find(|r| {
                r.status == "done"
                    && (a.is_empty() || r.entry.spec.value(a).as_ref() == Some(x))
                    && r.entry.spec.value(b).as_ref() == Some(y)
            });
            let Some(r) = best else {
                s += "<td></td>";
                continue;
            };
            let Some((names, counts)) = read_confusion(&store.run_dir(&r.entry.id).join("confusion_valid.csv")) else {
                s += "<td>(no confusion matrix)</td>";
                continue;
            };
            any = true;
            let _ = write!(
                s,
                "<td><div>{} {:.4}</div><table class=\"cm\">",
                esc(&r.entry.spec.label()),
                r.metric.unwrap_or(f64::NAN)
            );
            for (t, line) in counts.iter().enumerate() {
                let total: u64 = line.iter().sum::<u64>().max(1);
                s += "<tr>";
                for (p, &n) in line.iter().enumerate() {
                    let share = n as f64 / total as f64;
                    let color =
                        if t == p { format!("rgba(0,128,0,{share:.2})") } else { format!("rgba(200,0,0,{share:.2})") };
                    let _ = write!(
                        s,
                        "<td style=\"background:{color}\" title=\"{} as {}: {n}\">{n}</td>",
                        esc(names.get(t).map_or("", String::as_str)),
                        esc(names.get(p).map_or("", String::as_str))
                    );
                }
                s += "</tr>";
            }
            s += "</table></td>";
        }
        s += "</tr>\n";
    }
    s += "</table>\n";
    if any { s } else { String::new() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{SweepSpec, TrialSpec};
    use crate::store::{Manifest, TrialEntry, TrialResult};

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
            "rank,trial,status,train.optimizer.lr,model.dropout,seed,valid.accuracy,epochs,seconds,error"
        );
        assert!(lines[1].starts_with("1,t05,done,0.01,0.5,2,0.750000,"), "{csv}");
        assert!(lines[7].starts_with("7,t06,pruned,"), "{csv}");
        assert!(
            lines[8].starts_with("8,t07,failed,") && lines[8].ends_with(",error: the training loss became NaN"),
            "{csv}"
        );

        let html = fs::read_to_string(&files.html).unwrap();
        assert_eq!(html.matches("<polyline").count(), 8, "every trial's curve");
        assert_eq!(html.matches("stroke-dasharray").count(), 1, "the pruned one dashed");
        // A 2 x 2 grid of confusion matrices (one cell has no finished trial), class names read
        // back through CSV quoting.
        assert_eq!(html.matches("<table class=\"cm\">").count(), 3);
        assert!(html.contains("title=\"dog, big as cat: 0\""));
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
