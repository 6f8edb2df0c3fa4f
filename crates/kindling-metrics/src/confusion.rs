//! The confusion matrix and what it implies.

use serde::{Deserialize, Serialize};

use crate::csv;
use crate::run_files::RunFileError;

/// Counts of (true class, predicted class) pairs. Serialised as its class count and its
/// row-major counts (how training checkpoints keep the last validation matrix).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfusionMatrix {
    classes: usize,
    counts: Vec<u64>,
}

/// Precision, recall, F1 and support of one class.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    /// Of the samples predicted as this class, the share that are.
    pub precision: f64,
    /// Of the samples of this class, the share predicted as it.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Number of samples of this class.
    pub support: u64,
}

/// Per-class metrics with their macro (unweighted) and support-weighted averages.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// One entry per class, in class order.
    pub classes: Vec<ClassMetrics>,
    /// The plain mean over classes.
    pub macro_avg: ClassMetrics,
    /// The mean over classes weighted by support.
    pub weighted_avg: ClassMetrics,
    /// Share of all samples predicted correctly.
    pub accuracy: f64,
}

impl ConfusionMatrix {
    /// An empty matrix for `classes` classes.
    pub fn new(classes: usize) -> Self {
        Self { classes, counts: vec![0; classes * classes] }
    }

    /// The matrix of paired `labels` and `predictions` (equal lengths; values below `classes`).
    ///
    /// # Panics
    /// When the lengths differ or a value is out of range: both are caller bugs.
    pub fn from_predictions(classes: usize, labels: &[u32], predictions: &[u32]) -> Self {
        assert_eq!(labels.len(), predictions.len(), "one prediction per label");
        let mut m = Self::new(classes);
        for (&t, &p) in labels.iter().zip(predictions) {
            m.add(t, p);
        }
        m
    }

    /// Counts one sample of class `truth` predicted as `predicted`.
    pub fn add(&mut self, truth: u32, predicted: u32) {
        let (t, p) = (truth as usize, predicted as usize);
        assert!(t < self.classes && p < self.classes, "class index out of range");
        self.counts[t * self.classes + p] += 1;
    }

    /// Adds another matrix's counts (from another batch).
    pub fn merge(&mut self, other: &Self) {
        assert_eq!(self.classes, other.classes, "matrices of different sizes");
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Samples of class `truth` predicted as `predicted`.
    pub fn count(&self, truth: usize, predicted: usize) -> u64 {
        self.counts[truth * self.classes + predicted]
    }

    /// All samples counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Share of samples on the diagonal.
    pub fn accuracy(&self) -> f64 {
        let correct: u64 = (0..self.classes).map(|i| self.count(i, i)).sum();
        ratio(correct, self.total())
    }

    /// Per-class precision, recall and F1, with macro and weighted averages.
    pub fn report(&self) -> Report {
        let n = self.classes;
        let classes: Vec<ClassMetrics> = (0..n)
            .map(|c| {
                let tp = self.count(c, c);
                let predicted: u64 = (0..n).map(|t| self.count(t, c)).sum();
                let support: u64 = (0..n).map(|p| self.count(c, p)).sum();
                let (precision, recall) = (ratio(tp, predicted), ratio(tp, support));
                let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
                ClassMetrics { precision, recall, f1, support }
            })
            .collect();
        let total = self.total();
        let average = |weight: &dyn Fn(&ClassMetrics) -> f64| {
            let w: f64 = classes.iter().map(weight).sum();
            let mean = |f: fn(&ClassMetrics) -> f64| {
                if w == 0.0 { 0.0 } else { classes.iter().map(|c| weight(c) * f(c)).sum::<f64>() / w }
            };
            ClassMetrics {
                precision: mean(|c| c.precision),
                recall: mean(|c| c.recall),
                f1: mean(|c| c.f1),
                support: total,
            }
        };
        Report {
            macro_avg: average(&|_| 1.0),
            weighted_avg: average(&|c| c.support as f64),
            accuracy: self.accuracy(),
            classes,
        }
    }

    /// The matrix as CSV (`confusion_<split>.csv`): a header of predicted class names, then one
    /// row per true class. [`from_csv`](Self::from_csv) reads it back.
    pub fn to_csv(&self, names: &[String]) -> String {
        let name = |i: usize| names.get(i).map_or_else(|| i.to_string(), |n| csv::field(n));
        let mut out = String::from("true\\predicted");
        for p in 0..self.classes {
            out.push(',');
            out.push_str(&name(p));
        }
        out.push('\n');
        for t in 0..self.classes {
            out.push_str(&name(t));
            for p in 0..self.classes {
                out.push_str(&format!(",{}", self.count(t, p)));
            }
            out.push('\n');
        }
        out
    }

    /// The class names and the matrix of a [`to_csv`](Self::to_csv) text.
    pub fn from_csv(text: &str) -> Result<(Vec<String>, Self), RunFileError> {
        let mut lines = text.lines().filter(|l| !l.is_empty());
        let header = csv::split(lines.next().ok_or(RunFileError::Empty)?);
        if header.first().map(String::as_str) != Some("true\\predicted") {
            let expected = "true\\predicted,<class names>".to_owned();
            return Err(RunFileError::Header { found: header.join(","), expected });
        }
        let names = header[1..].to_vec();
        let n = names.len();
        let mut m = Self::new(n);
        let mut rows = 0;
        for (i, line) in lines.enumerate() {
            let bad = |message: String| RunFileError::Line { line: i + 2, message };
            let fields = csv::split(line);
            if fields.len() != n + 1 || i >= n {
                return Err(bad(format!("{} fields in row {}, expected {} rows of {}", fields.len(), i + 1, n, n + 1)));
            }
            for (p, v) in fields[1..].iter().enumerate() {
                m.counts[i * n + p] = v.parse().map_err(|e| bad(format!("count `{v}`: {e}")))?;
            }
            rows += 1;
        }
        if rows != n {
            return Err(RunFileError::Line { line: rows + 2, message: format!("{rows} rows, expected {n}") });
        }
        Ok((names, m))
    }
}

/// Share of samples whose label is among the `k` highest of their `classes` scores (`scores`
/// holds one row of `classes` values per label).
pub fn top_k_accuracy(scores: &[f32], classes: usize, labels: &[u32], k: usize) -> f64 {
    assert_eq!(scores.len(), classes * labels.len(), "one row of scores per label");
    let hits = labels
        .iter()
        .zip(scores.chunks(classes))
        .filter(|&(&y, row)| {
            let own = row[y as usize];
            // Ties count against the label, so an all-equal row is not a hit for k < classes.
            row.iter().filter(|&&s| s >= own).count() <= k
        })
        .count();
    ratio(hits as u64, labels.len() as u64)
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A case worked by hand: 3 classes, 10 samples.
    ///
    /// ```text
    ///            pred 0  pred 1  pred 2
    /// true 0       3       1       0      support 4
    /// true 1       0       2       1      support 3
    /// true 2       1       0       2      support 3
    /// ```
    fn example() -> ConfusionMatrix {
        let labels = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2];
        let preds = [0, 0, 0, 1, 1, 1, 2, 0, 2, 2];
        ConfusionMatrix::from_predictions(3, &labels, &preds)
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }

    #[test]
    fn per_class_metrics_match_the_hand_computation() {
        let r = example().report();
        close(r.accuracy, 0.7);
        // Class 0: tp 3, predicted 4, support 4.
        close(r.classes[0].precision, 0.75);
        close(r.classes[0].recall, 0.75);
        // Class 1: tp 2, predicted 3, support 3. Class 2: tp 2, predicted 3, support 3.
        close(r.classes[1].precision, 2.0 / 3.0);
        close(r.classes[2].recall, 2.0 / 3.0);
        close(r.classes[1].f1, 2.0 / 3.0);
        close(r.macro_avg.f1, (0.75 + 2.0 / 3.0 + 2.0 / 3.0) / 3.0);
        close(r.weighted_avg.recall, (4.0 * 0.75 + 3.0 * 2.0 / 3.0 + 3.0 * 2.0 / 3.0) / 10.0);
        assert_eq!(r.weighted_avg.support, 10);
    }

    #[test]
    fn empty_classes_give_zero_not_nan() {
        let m = ConfusionMatrix::from_predictions(3, &[0, 0], &[0, 1]);
        let r = m.report();
        assert_eq!(r.classes[2], ClassMetrics { precision: 0.0, recall: 0.0, f1: 0.0, support: 0 });
        close(r.classes[1].precision, 0.0);
        assert!(ConfusionMatrix::new(2).report().macro_avg.f1 == 0.0);
    }

    #[test]
    fn csv_rows_are_true_classes() {
        let names = ["T-shirt/top", "a,b", "c"].map(String::from);
        assert_eq!(
            example().to_csv(&names),
            "true\\predicted,T-shirt/top,\"a,b\",c\nT-shirt/top,3,1,0\n\"a,b\",0,2,1\nc,1,0,2\n"
        );
        let (read, back) = ConfusionMatrix::from_csv(&example().to_csv(&names)).unwrap();
        assert_eq!((read.as_slice(), &back), (names.as_slice(), &example()));
        let e = ConfusionMatrix::from_csv("true\\predicted,a,b\na,1,2\n").unwrap_err();
        assert_eq!(e.to_string(), "line 3: 1 rows, expected 2");
        let e = ConfusionMatrix::from_csv("true\\predicted,a\na,x\n").unwrap_err();
        assert_eq!(e.to_string(), "line 2: count `x`: invalid digit found in string");
        let mut m = example();
        m.merge(&example());
        assert_eq!(m.count(0, 0), 6);
    }

    #[test]
    fn top_k_counts_the_label_among_the_highest_scores() {
        let scores = [0.1, 0.7, 0.2, 0.5, 0.3, 0.2, 0.3, 0.3, 0.4];
        let labels = [2, 0, 0];
        close(top_k_accuracy(&scores, 3, &labels, 1), 1.0 / 3.0);
        // Row 1 ranks 0.2 second; row 3's 0.3 ties for second with the label's 0.3.
        close(top_k_accuracy(&scores, 3, &labels, 2), 2.0 / 3.0);
        close(top_k_accuracy(&scores, 3, &labels, 3), 1.0);
    }
}
