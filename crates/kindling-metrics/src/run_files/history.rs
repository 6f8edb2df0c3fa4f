//! Per-epoch records and `history.csv`, the file they become.

use serde::{Deserialize, Serialize};

use super::RunFileError;

/// Loss and accuracy over one split.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitMetrics {
    /// Mean cross-entropy per sample.
    #[serde(deserialize_with = "super::nan_if_null")]
    pub loss: f64,
    /// Share of samples whose highest logit is the label.
    #[serde(deserialize_with = "super::nan_if_null")]
    pub accuracy: f64,
    /// Number of samples.
    pub samples: usize,
}

/// Which of a split's numbers: its loss or its accuracy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    /// Mean cross-entropy.
    Loss,
    /// Share of correct predictions.
    Accuracy,
}

impl SplitMetrics {
    /// From a summed loss and a count of correct predictions over `n` samples.
    pub fn new(loss_sum: f64, correct: usize, n: usize) -> Self {
        let n_f = n.max(1) as f64;
        Self { loss: loss_sum / n_f, accuracy: correct as f64 / n_f, samples: n }
    }

    /// The loss or the accuracy.
    pub fn get(&self, measure: Measure) -> f64 {
        match measure {
            Measure::Loss => self.loss,
            Measure::Accuracy => self.accuracy,
        }
    }
}

/// One epoch: training metrics (accumulated over the epoch's steps, as PyTorch loops usually
/// report them), validation metrics (after the epoch), the learning rate and the time taken.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Training split, accumulated during the epoch.
    pub train: SplitMetrics,
    /// Validation split, after the epoch (absent when there is no validation split).
    pub valid: Option<SplitMetrics>,
    /// Learning rate used during the epoch.
    pub lr: f64,
    /// Seconds spent training the epoch (validation excluded).
    pub train_seconds: f64,
    /// Seconds spent on validation.
    pub valid_seconds: f64,
}

/// One line of `history.csv`: an epoch's numbers on one split.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryRow {
    /// 1-based epoch number.
    pub epoch: usize,
    /// `train` or `valid`.
    pub split: String,
    /// Mean loss (6 decimals in the file).
    pub loss: f64,
    /// Accuracy (6 decimals in the file).
    pub accuracy: f64,
    /// Learning rate of the epoch, every digit.
    pub lr: f64,
    /// Seconds spent on the split (3 decimals in the file).
    pub seconds: f64,
}

impl HistoryRow {
    /// The loss or the accuracy.
    pub fn get(&self, measure: Measure) -> f64 {
        match measure {
            Measure::Loss => self.loss,
            Measure::Accuracy => self.accuracy,
        }
    }
}

/// `history.csv`: a header, then one row per epoch and split (train, then valid when there is
/// one). The header is the format: a reader refuses any other.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct HistoryCsv {
    /// The rows, in file order.
    pub rows: Vec<HistoryRow>,
}

impl HistoryCsv {
    /// The header line, without its line break.
    pub const HEADER: &'static str = "epoch,split,loss,accuracy,lr,seconds";

    /// The rows of `epochs`.
    pub fn from_epochs(epochs: &[EpochRecord]) -> Self {
        let mut rows = Vec::with_capacity(2 * epochs.len());
        for e in epochs {
            let row = |split: &str, m: &SplitMetrics, seconds: f64| HistoryRow {
                epoch: e.epoch,
                split: split.to_owned(),
                loss: m.loss,
                accuracy: m.accuracy,
                lr: e.lr,
                seconds,
            };
            rows.push(row("train", &e.train, e.train_seconds));
            if let Some(v) = &e.valid {
                rows.push(row("valid", v, e.valid_seconds));
            }
        }
        Self { rows }
    }

    /// The file's text.
    pub fn to_csv(&self) -> String {
        let mut out = format!("{}\n", Self::HEADER);
        for r in &self.rows {
            out += &format!(
                "{},{},{:.6},{:.6},{},{:.3}\n",
                r.epoch,
                crate::csv::field(&r.split),
                r.loss,
                r.accuracy,
                r.lr,
                r.seconds
            );
        }
        out
    }

    /// Reads the file's text back.
    pub fn from_csv(text: &str) -> Result<Self, RunFileError> {
        let mut lines = text.lines();
        let header = lines.next().ok_or(RunFileError::Empty)?;
        if header != Self::HEADER {
            return Err(RunFileError::Header { found: header.to_owned(), expected: Self::HEADER.to_owned() });
        }
        let rows = lines
            .enumerate()
            .filter(|(_, l)| !l.is_empty())
            .map(|(i, l)| {
                let bad = |message: String| RunFileError::Line { line: i + 2, message };
                let fields = crate::csv::split(l);
                let [epoch, split, loss, accuracy, lr, seconds] =
                    <[String; 6]>::try_from(fields).map_err(|f| bad(format!("{} fields, expected 6", f.len())))?;
                let number = |name: &str, v: &str| v.parse::<f64>().map_err(|e| bad(format!("{name} `{v}`: {e}")));
                Ok::<_, RunFileError>(HistoryRow {
                    epoch: epoch.parse::<usize>().map_err(|e| bad(format!("epoch `{epoch}`: {e}")))?,
                    loss: number("loss", &loss)?,
                    accuracy: number("accuracy", &accuracy)?,
                    lr: number("lr", &lr)?,
                    seconds: number("seconds", &seconds)?,
                    split,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { rows })
    }

    /// The per-epoch values of `measure` on `split`, in epoch order.
    pub fn curve(&self, split: &str, measure: Measure) -> Vec<f64> {
        self.rows.iter().filter(|r| r.split == split).map(|r| r.get(measure)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_has_a_row_per_epoch_and_split_and_reads_back() {
        let m = SplitMetrics::new(3.0, 3, 4);
        let epochs =
            [EpochRecord { epoch: 1, train: m, valid: Some(m), lr: 0.001, train_seconds: 1.5, valid_seconds: 0.25 }];
        let csv = HistoryCsv::from_epochs(&epochs).to_csv();
        assert_eq!(
            csv,
            "epoch,split,loss,accuracy,lr,seconds\n1,train,0.750000,0.750000,0.001,1.500\n1,valid,0.750000,0.750000,0.001,0.250\n"
        );
        let back = HistoryCsv::from_csv(&csv).unwrap();
        assert_eq!(back, HistoryCsv::from_epochs(&epochs));
        assert_eq!(back.curve("valid", Measure::Accuracy), [0.75]);
        assert_eq!(back.curve("test", Measure::Loss), Vec::<f64>::new());
    }

    #[test]
    fn damaged_history_names_the_line() {
        let e = HistoryCsv::from_csv("epoch,split,loss\n").unwrap_err();
        assert_eq!(e.to_string(), "the header is `epoch,split,loss`, expected `epoch,split,loss,accuracy,lr,seconds`");
        let e = HistoryCsv::from_csv("epoch,split,loss,accuracy,lr,seconds\n1,train,x,0.5,0.1,1\n").unwrap_err();
        assert_eq!(e.to_string(), "line 2: loss `x`: invalid float literal");
        assert!(matches!(HistoryCsv::from_csv(""), Err(RunFileError::Empty)));
    }
}
