//! Per-epoch records and the files they become.

use serde::{Deserialize, Serialize};

/// Loss and accuracy over one split.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitMetrics {
    /// Mean cross-entropy per sample.
    pub loss: f64,
    /// Share of samples whose highest logit is the label.
    pub accuracy: f64,
    /// Number of samples.
    pub samples: usize,
}

impl SplitMetrics {
    /// From a summed loss and a count of correct predictions over `n` samples.
    pub fn new(loss_sum: f64, correct: usize, n: usize) -> Self {
        let n_f = n.max(1) as f64;
        Self { loss: loss_sum / n_f, accuracy: correct as f64 / n_f, samples: n }
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

/// The epochs of a run so far.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// The epochs, in order.
    pub epochs: Vec<EpochRecord>,
}

impl History {
    /// `history.csv`: one row per epoch and split, `epoch,split,loss,accuracy,lr,seconds`.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("epoch,split,loss,accuracy,lr,seconds\n");
        for e in &self.epochs {
            let row = |split: &str, m: &SplitMetrics, secs: f64| {
                format!("{},{split},{:.6},{:.6},{},{:.3}\n", e.epoch, m.loss, m.accuracy, e.lr, secs)
            };
            out += &row("train", &e.train, e.train_seconds);
            if let Some(v) = &e.valid {
                out += &row("valid", v, e.valid_seconds);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_has_a_row_per_epoch_and_split() {
        let m = SplitMetrics::new(3.0, 3, 4);
        let h = History {
            epochs: vec![EpochRecord {
                epoch: 1,
                train: m,
                valid: Some(m),
                lr: 0.001,
                train_seconds: 1.5,
                valid_seconds: 0.25,
            }],
        };
        assert_eq!(
            h.to_csv(),
            "epoch,split,loss,accuracy,lr,seconds\n1,train,0.750000,0.750000,0.001,1.500\n1,valid,0.750000,0.750000,0.001,0.250\n"
        );
    }
}
