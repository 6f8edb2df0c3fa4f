//! Classification metrics as pure functions of labels and predictions: accuracy, top-k
//! accuracy, an N x N confusion matrix, per-class precision/recall/F1 with macro and weighted
//! averages. No tensors, no I/O beyond formatting and parsing, no dependency on the rest of Kindling:
//!
//! ```
//! use kindling_metrics::ConfusionMatrix;
//! let cm = ConfusionMatrix::from_predictions(3, &[0, 1, 2, 2], &[0, 2, 2, 2]);
//! assert_eq!(cm.count(1, 2), 1); // one sample of class 1 predicted as 2
//! assert_eq!(cm.accuracy(), 0.75);
//! let report = cm.report();
//! assert_eq!(report.classes[2].precision, 2.0 / 3.0);
//! ```
//!
//! [`tensorboard::EventFile`] writes scalars in TensorBoard's event-file format.
//!
//! [`run_files`] holds the types of the files a training run leaves and other programs read
//! back (`history.csv`, `metrics.json`, `confusion_<split>.csv`): the train stage writes them and
//! a sweep reads them through the same types, so neither reads the other's files by column index
//! or string key. They live here because this crate is the one both sides already depend on
//! without pulling in burn.
//!
//! Conventions follow scikit-learn's `classification_report`: rows are true classes, columns
//! predictions; a ratio whose denominator is zero is 0.

mod confusion;
mod csv;
pub mod diagnostics;
pub mod direction;
pub mod run_files;
pub mod tensorboard;

pub use confusion::{ClassMetrics, ConfusionMatrix, Report, top_k_accuracy};
