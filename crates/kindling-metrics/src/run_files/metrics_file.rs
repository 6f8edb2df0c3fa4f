//! `metrics.json`: what a finished run reports, in one type the train stage writes and sweeps
//! read back.

use serde::{Deserialize, Serialize};

use super::history::{EpochRecord, Measure, SplitMetrics};
use super::{Named, RunFileError};
use crate::{ClassMetrics, ConfusionMatrix};

/// The format version `RunMetrics::to_json` writes. Raise it when a field changes meaning or
/// goes away (adding an optional field does not need it); readers refuse newer versions.
pub const METRICS_VERSION: u32 = 1;

fn first_version() -> u32 {
    1
}

/// `metrics.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunMetrics {
    /// The format version ([`METRICS_VERSION`] when written; files from before the field are 1).
    #[serde(default = "first_version")]
    pub version: u32,
    /// The device trained on, in words.
    pub device: String,
    /// Epochs trained.
    pub epochs: usize,
    /// Trainable parameters of the model.
    pub parameters: usize,
    /// Seconds spent training (validation excluded), over every epoch.
    pub train_seconds: f64,
    /// Seconds from the start of the stage to the end of training and evaluation.
    pub wall_seconds: f64,
    /// Training samples per second of training time.
    pub train_samples_per_second: f64,
    /// The last epoch trained.
    pub final_epoch: Option<EpochRecord>,
    /// The epoch whose model the run kept: the best one when early stopping restored it, else
    /// the last.
    pub kept_epoch: Option<EpochRecord>,
    /// The test split evaluated with the kept model, when there is one.
    pub test: Option<SplitMetrics>,
    /// Per split (headline split first): precision, recall and F1 by class with the kept model.
    pub per_class: Named<PerClassReport>,
    /// What early stopping decided, when it was on.
    pub early_stopping: Option<EarlyStoppingResult>,
    /// The run's diagnostics: findings and the signals behind them (absent in files from
    /// before diagnostics, and when `train.diagnostics` is off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<crate::diagnostics::Diagnostics>,
    /// Per split (headline split first), the direction metrics when every class name is a
    /// number (an azimuth, say): exact accuracy, accuracy within one class step, mean absolute
    /// error, per class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Named<crate::direction::DirectionReport>>,
}

impl RunMetrics {
    /// The file's text (pretty JSON).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Reads the file's text back, refusing a version newer than this crate's.
    pub fn from_json(text: &str) -> Result<Self, RunFileError> {
        let m: Self = serde_json::from_str(text)?;
        if m.version > METRICS_VERSION {
            return Err(RunFileError::Version { found: m.version, supported: METRICS_VERSION });
        }
        Ok(m)
    }

    /// The epoch kept out of `epochs`: `early`'s best epoch when it restored that epoch's model,
    /// else the last.
    pub fn kept<'a>(epochs: &'a [EpochRecord], early: Option<&EarlyStoppingResult>) -> Option<&'a EpochRecord> {
        let kept = early.filter(|e| e.restored_best).map(|e| e.best_epoch);
        kept.and_then(|n| epochs.get(n.wrapping_sub(1))).or(epochs.last())
    }

    /// `measure` on `split` for the kept model: the kept epoch's for `train` and `valid`, the
    /// final evaluation's for `test`; `None` when the run has no such split (or it is NaN).
    pub fn value(&self, split: &str, measure: Measure) -> Option<f64> {
        let metrics = match split {
            "test" => self.test,
            "train" => self.kept_epoch.as_ref().map(|e| e.train),
            "valid" => self.kept_epoch.as_ref().and_then(|e| e.valid),
            _ => None,
        };
        metrics.map(|m| m.get(measure)).filter(|v| !v.is_nan())
    }
}

/// What early stopping decided.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EarlyStoppingResult {
    /// The epoch it stopped after, when it stopped before the last.
    pub stopped_epoch: Option<usize>,
    /// The epoch of the best monitored value (0 when none was seen).
    pub best_epoch: usize,
    /// The best monitored value (NaN, written `null`, when none was seen).
    #[serde(deserialize_with = "super::nan_if_null")]
    pub best: f64,
    /// Whether the run ended with the best epoch's model.
    pub restored_best: bool,
}

/// A classification report of one split, with the class names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PerClassReport {
    /// Share of samples predicted correctly.
    pub accuracy: f64,
    /// The plain mean over classes.
    pub macro_avg: ClassMetrics,
    /// The mean over classes weighted by support.
    pub weighted_avg: ClassMetrics,
    /// One entry per class, by name, in class order.
    pub classes: Named<ClassMetrics>,
}

impl PerClassReport {
    /// The report of `confusion`, whose classes are called `names`.
    pub fn new(confusion: &ConfusionMatrix, names: &[String]) -> Self {
        let report = confusion.report();
        let classes = names.iter().cloned().zip(report.classes).collect();
        Self {
            accuracy: report.accuracy,
            macro_avg: report.macro_avg,
            weighted_avg: report.weighted_avg,
            classes: Named(classes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(epoch: usize, valid: f64) -> EpochRecord {
        let m = |a: f64| SplitMetrics { loss: 1.0 - a, accuracy: a, samples: 10 };
        EpochRecord { epoch, train: m(0.5), valid: Some(m(valid)), lr: 0.1, train_seconds: 1.0, valid_seconds: 0.5 }
    }

    fn example() -> RunMetrics {
        let epochs = [record(1, 0.6), record(2, 0.8), record(3, 0.7)];
        let early = EarlyStoppingResult { stopped_epoch: Some(3), best_epoch: 2, best: 0.8, restored_best: true };
        let cm = ConfusionMatrix::from_predictions(2, &[0, 1, 1], &[0, 1, 0]);
        RunMetrics {
            version: METRICS_VERSION,
            device: "cpu".into(),
            epochs: 3,
            parameters: 10,
            train_seconds: 3.0,
            wall_seconds: 5.0,
            train_samples_per_second: 10.0,
            final_epoch: epochs.last().cloned(),
            kept_epoch: RunMetrics::kept(&epochs, Some(&early)).cloned(),
            test: None,
            per_class: Named(vec![("valid".into(), PerClassReport::new(&cm, &["no".into(), "yes".into()]))]),
            early_stopping: Some(early),
            diagnostics: None,
            direction: None,
        }
    }

    #[test]
    fn metrics_json_reads_back_and_answers_by_split() {
        let m = example();
        let text = m.to_json();
        assert!(text.starts_with("{\n  \"version\": 1,\n  \"device\": \"cpu\","), "{text}");
        // Class names are keys in class order.
        assert!(text.find("\"no\": {").unwrap() < text.find("\"yes\": {").unwrap(), "{text}");
        let back = RunMetrics::from_json(&text).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.value("valid", Measure::Accuracy), Some(0.8), "the restored best epoch");
        assert_eq!(back.value("test", Measure::Accuracy), None);
        assert_eq!(back.per_class.get("valid").map(|r| r.classes.0.len()), Some(2));
    }

    #[test]
    fn no_best_value_is_written_null_and_read_as_nan() {
        let mut m = example();
        m.early_stopping =
            Some(EarlyStoppingResult { stopped_epoch: None, best_epoch: 0, best: f64::NAN, restored_best: false });
        let text = m.to_json();
        assert!(text.contains("\"best\": null"), "{text}");
        let back = RunMetrics::from_json(&text).unwrap();
        assert!(back.early_stopping.unwrap().best.is_nan());
        // Not restored: the kept epoch is the last.
        assert_eq!(RunMetrics::kept(&[record(1, 0.6), record(2, 0.8)], m.early_stopping.as_ref()).unwrap().epoch, 2);
    }

    #[test]
    fn newer_versions_are_refused() {
        let text = example().to_json().replacen("\"version\": 1", "\"version\": 9", 1);
        let e = RunMetrics::from_json(&text).unwrap_err();
        assert_eq!(e.to_string(), "format version 9, this Kindling reads up to 1; read it with a newer Kindling");
        // Files from before the version field are version 1.
        let old = example().to_json().replacen("\"version\": 1,", "", 1);
        assert_eq!(RunMetrics::from_json(&old).unwrap().version, 1);
    }
}
