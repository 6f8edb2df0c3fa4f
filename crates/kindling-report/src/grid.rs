//! Confusion matrices as HTML tables with their class names, and grids of them (one matrix per
//! combination of two settings), for pages that compare runs side by side.

use std::fmt::Write as _;

use kindling_metrics::ConfusionMatrix;

use crate::html::escape;
use crate::plot::blues;

/// One cell of a [`ConfusionGrid`]: a run's matrix under a caption.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfusionCell {
    /// The line above the matrix (which run, its score).
    pub caption: String,
    /// Class names, in class order.
    pub classes: Vec<String>,
    /// The counts.
    pub matrix: ConfusionMatrix,
}

/// Confusion matrices laid out by two settings: one row per value of the first (or a single
/// unlabelled row), one column per value of the second.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConfusionGrid {
    /// Heading above it.
    pub title: String,
    /// A sentence under the heading.
    pub note: Option<String>,
    /// `rows \ columns` in the corner.
    pub corner: String,
    /// Column headings.
    pub columns: Vec<String>,
    /// Row heading and one cell per column (`None`: no run there).
    pub rows: Vec<(String, Vec<Option<ConfusionCell>>)>,
}

/// `matrix` as a table: true classes down, predicted classes across, both named; each count
/// shaded by its share of its row with the same colours as the run's confusion heat maps.
pub fn confusion_table(matrix: &ConfusionMatrix, classes: &[String]) -> String {
    let n = matrix.classes();
    let name = |i: usize| escape(classes.get(i).map_or("?", String::as_str));
    let mut h = String::from("<table class=\"confusion\"><tr><th class=\"corner\">true \\ predicted</th>");
    for p in 0..n {
        let _ = write!(h, "<th class=\"class predicted\">{}</th>", name(p));
    }
    h += "</tr>";
    for t in 0..n {
        let total: u64 = (0..n).map(|p| matrix.count(t, p)).sum();
        let _ = write!(h, "<tr><th class=\"class\">{}</th>", name(t));
        for p in 0..n {
            let count = matrix.count(t, p);
            let share = if total == 0 { 0.0 } else { count as f64 / total as f64 };
            let c = blues(share);
            let ink = if share > 0.5 { "#fff" } else { "#222" };
            let _ = write!(
                h,
                "<td style=\"background:rgb({},{},{});color:{ink}\" title=\"{} as {}: {count}\">{count}</td>",
                c.0,
                c.1,
                c.2,
                name(t),
                name(p)
            );
        }
        h += "</tr>";
    }
    h += "</table>";
    h
}

impl ConfusionGrid {
    /// The grid as a table of captioned matrices.
    pub fn to_html(&self) -> String {
        let mut h = format!("<table class=\"grid\"><tr><th>{}</th>", escape(&self.corner));
        for c in &self.columns {
            let _ = write!(h, "<th>{}</th>", escape(c));
        }
        h += "</tr>\n";
        for (label, cells) in &self.rows {
            let _ = write!(h, "<tr><th>{}</th>", escape(label));
            for cell in cells {
                match cell {
                    Some(c) => {
                        let _ = write!(
                            h,
                            "<td><div class=\"caption\">{}</div>{}</td>",
                            escape(&c.caption),
                            confusion_table(&c.matrix, &c.classes)
                        );
                    }
                    None => h += "<td></td>",
                }
            }
            h += "</tr>\n";
        }
        h += "</table>\n";
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_name_every_class_and_shade_by_row() {
        let cm = ConfusionMatrix::from_predictions(2, &[0, 0, 1, 1], &[0, 0, 1, 0]);
        let html = confusion_table(&cm, &["cat".into(), "dog & co".into()]);
        assert_eq!(html.matches("<th class=\"class predicted\">").count(), 2);
        assert!(html.contains("<th class=\"class\">dog &amp; co</th>"), "{html}");
        let dark = blues(1.0);
        assert!(
            html.contains(&format!(
                "rgb({},{},{});color:#fff\" title=\"cat as cat: 2\">2</td>",
                dark.0, dark.1, dark.2
            ))
        );
        assert!(html.contains("title=\"dog &amp; co as cat: 1\">1</td>"), "{html}");
        let grid = ConfusionGrid {
            title: "t".into(),
            corner: "lr \\ dropout".into(),
            columns: vec!["0.5".into(), "0.2".into()],
            rows: vec![(
                "0.1".into(),
                vec![
                    None,
                    Some(ConfusionCell { caption: "best".into(), classes: vec!["a".into(), "b".into()], matrix: cm }),
                ],
            )],
            ..Default::default()
        };
        let html = grid.to_html();
        assert_eq!(html.matches("<table class=\"confusion\">").count(), 1);
        assert!(html.contains("<tr><th>0.1</th><td></td><td><div class=\"caption\">best</div>"), "{html}");
    }
}
