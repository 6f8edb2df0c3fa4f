//! Line charts as inline SVG, for pages that compare many runs: every series drawn over one
//! pair of axes with ticks and grid lines, and a legend laid out in columns under the plot, so
//! a dozen series stay legible (each line also names its series when hovered).

use std::fmt::Write as _;

use crate::html::escape;
use crate::plot::tick;

/// Distinct colours for series, in order: Tableau's ten and two darker ones, so a dozen series
/// get a colour each.
pub const PALETTE: [&str; 12] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#393b79", "#637939",
];

/// One line of a chart.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    /// Its name in the legend and on hover.
    pub name: String,
    /// `(x, y)` points in order; non-finite values are left out.
    pub points: Vec<(f64, f64)>,
    /// Drawn dashed (a run stopped early, say).
    pub dashed: bool,
}

/// A chart of series over shared axes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LineChart {
    /// Heading above it.
    pub title: String,
    /// A sentence under the heading, when the chart needs explaining.
    pub note: Option<String>,
    /// Name of the horizontal axis.
    pub x_label: String,
    /// Name of the vertical axis.
    pub y_label: String,
    /// Whole-number x values only (epochs): ticks fall on integers.
    pub integer_x: bool,
    /// The lines, drawn in order with [`PALETTE`]'s colours.
    pub series: Vec<Series>,
}

const WIDTH: f64 = 760.0;
const PLOT_HEIGHT: f64 = 300.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 48.0;
const LEGEND_ROW: f64 = 18.0;
const LEGEND_LEFT: f64 = 8.0;
/// Average width of a character of the legend's 12 px sans-serif text, generously.
const CHAR: f64 = 6.5;

/// About `target` round-numbered ticks covering `lo..=hi` (steps of 1, 2, 2.5 or 5 times a
/// power of ten; at least 1 when `integer`).
pub(crate) fn nice_ticks(lo: f64, hi: f64, target: usize, integer: bool) -> Vec<f64> {
    let span = (hi - lo).abs().max(f64::MIN_POSITIVE);
    let raw = span / target.max(1) as f64;
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].into_iter().map(|m| m * power).find(|s| *s >= raw).unwrap_or(10.0 * power);
    let step = if integer { step.max(1.0).round() } else { step };
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    // Multiplying an integer count by the step keeps 0.1 * 3 from drifting into 0.30000000000000004.
    (first..=last).map(|k| k as f64 * step).map(|v| if v.abs() < step * 1e-9 { 0.0 } else { v }).collect()
}

/// The smallest and largest of `values`.
fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)))
}

impl LineChart {
    /// The chart as an `<svg>` element (empty when no series has a finite point).
    pub fn to_svg(&self) -> String {
        let finite: Vec<(f64, f64)> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        if finite.is_empty() {
            return String::new();
        }
        let (mut x0, mut x1) = span(finite.iter().map(|p| p.0));
        let (mut y0, mut y1) = span(finite.iter().map(|p| p.1));
        if x1 <= x0 {
            (x0, x1) = (x0 - 1.0, x1 + 1.0);
        }
        let pad = if y1 > y0 { (y1 - y0) * 0.06 } else { y0.abs().max(1.0) * 0.05 };
        (y0, y1) = (y0 - pad, y1 + pad);
        let (pw, ph) = (WIDTH - LEFT - RIGHT, PLOT_HEIGHT - TOP - BOTTOM);
        let sx = |x: f64| LEFT + pw * (x - x0) / (x1 - x0);
        let sy = |y: f64| TOP + ph * (1.0 - (y - y0) / (y1 - y0));

        // The legend: as many columns as the longest name allows, filled row by row.
        let longest = self.series.iter().map(|s| s.name.chars().count()).max().unwrap_or(0) as f64;
        let column = (longest * CHAR + 40.0).min(WIDTH - 2.0 * LEGEND_LEFT);
        let columns = (((WIDTH - 2.0 * LEGEND_LEFT) / column).floor() as usize).max(1);
        let rows = self.series.len().div_ceil(columns);
        let height = PLOT_HEIGHT + 8.0 + rows as f64 * LEGEND_ROW;

        let mut s = String::new();
        let _ = writeln!(
            s,
            "<svg class=\"chart\" width=\"{WIDTH}\" height=\"{height}\" \
             viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\"{}\">",
            escape(&self.title)
        );
        for y in nice_ticks(y0, y1, 6, false) {
            let at = sy(y);
            let _ = writeln!(
                s,
                "<line class=\"gridline\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{at:.1}\" y2=\"{at:.1}\"/>\
                 <text class=\"tick\" x=\"{:.1}\" y=\"{at:.1}\" text-anchor=\"end\" dominant-baseline=\"middle\">{}</text>",
                LEFT + pw,
                LEFT - 6.0,
                tick(y)
            );
        }
        for x in nice_ticks(x0, x1, 10, self.integer_x) {
            let at = sx(x);
            let _ = writeln!(
                s,
                "<line class=\"gridline\" x1=\"{at:.1}\" x2=\"{at:.1}\" y1=\"{TOP}\" y2=\"{:.1}\"/>\
                 <text class=\"tick\" x=\"{at:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                TOP + ph,
                TOP + ph + 16.0,
                tick(x)
            );
        }
        let _ = writeln!(
            s,
            "<rect class=\"frame\" x=\"{LEFT}\" y=\"{TOP}\" width=\"{pw:.1}\" height=\"{ph:.1}\"/>\n\
             <text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n\
             <text class=\"axis\" transform=\"translate(16 {:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
            LEFT + pw / 2.0,
            TOP + ph + 38.0,
            escape(&self.x_label),
            TOP + ph / 2.0,
            escape(&self.y_label)
        );
        for (i, series) in self.series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let dash = if series.dashed { " stroke-dasharray=\"5 4\"" } else { "" };
            let points: Vec<(f64, f64)> =
                series.points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
            let path: Vec<String> = points.iter().map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y))).collect();
            let name = escape(&series.name);
            let _ = write!(
                s,
                "<g class=\"series\"><title>{name}</title><polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"{dash} points=\"{}\"/>",
                path.join(" ")
            );
            if points.len() <= 40 {
                for &(x, y) in &points {
                    let _ = write!(s, "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{color}\"/>", sx(x), sy(y));
                }
            }
            s += "</g>\n";
            let (lx, ly) =
                (LEFT + (i % columns) as f64 * column, PLOT_HEIGHT + 8.0 + (i / columns) as f64 * LEGEND_ROW);
            let _ = writeln!(
                s,
                "<g class=\"legend\"><line x1=\"{lx:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{color}\" stroke-width=\"3\"{dash}/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" dominant-baseline=\"middle\">{name}</text></g>",
                lx + 24.0,
                ly + 6.0,
                ly + 6.0,
                lx + 30.0,
                ly + 6.0
            );
        }
        s += "</svg>\n";
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(lo: f64, hi: f64, target: usize, integer: bool) -> Vec<String> {
        nice_ticks(lo, hi, target, integer).into_iter().map(tick).collect()
    }

    #[test]
    fn ticks_are_round_numbers_inside_the_range() {
        assert_eq!(labels(0.0, 1.0, 5, false), ["0", "0.2", "0.4", "0.6", "0.8", "1"]);
        assert_eq!(labels(0.62, 0.81, 6, false), ["0.65", "0.7", "0.75", "0.8"]);
        assert_eq!(labels(1.0, 4.0, 10, true), ["1", "2", "3", "4"]);
        assert_eq!(labels(1.0, 40.0, 10, true), ["5", "10", "15", "20", "25", "30", "35", "40"]);
        assert_eq!(labels(-0.05, 0.05, 4, false), ["-0.05", "-0.025", "0", "0.025", "0.05"]);
    }

    fn chart(series: usize) -> LineChart {
        LineChart {
            title: "Validation accuracy by epoch".into(),
            note: None,
            x_label: "epoch".into(),
            y_label: "valid accuracy".into(),
            integer_x: true,
            series: (0..series)
                .map(|i| Series {
                    name: format!("lr=0.00{i} dropout=0.15 weight_decay=0.005 seed={i}"),
                    points: (1..=5).map(|e| (e as f64, 0.5 + 0.01 * (e * i) as f64)).collect(),
                    dashed: i == 3,
                })
                .collect(),
        }
    }

    #[test]
    fn a_dozen_series_get_their_own_colours_ticks_and_legend_rows() {
        let svg = chart(12).to_svg();
        assert_eq!(svg.matches("<polyline").count(), 12);
        for color in PALETTE {
            assert!(svg.contains(&format!("stroke=\"{color}\" stroke-width=\"2\"")), "{color}");
        }
        // Epoch ticks 1..5 and value ticks, as text.
        for label in ["1", "5"] {
            assert!(svg.contains(&format!("text-anchor=\"middle\">{label}</text>")), "x tick {label}");
        }
        assert!(svg.matches("class=\"tick\"").count() >= 8, "{svg}");
        // Names of about 45 characters: two legend columns, six rows under the plot.
        assert_eq!(svg.matches("<g class=\"legend\">").count(), 12);
        assert!(svg.contains(&format!("height=\"{}\"", PLOT_HEIGHT + 8.0 + 6.0 * LEGEND_ROW)), "{svg}");
        // The dashed series is dashed in the plot and in the legend.
        assert_eq!(svg.matches("stroke-dasharray").count(), 2);
        assert!(LineChart::default().to_svg().is_empty());
    }
}
