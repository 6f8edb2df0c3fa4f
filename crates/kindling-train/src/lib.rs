//! Training and evaluation of classifiers: the `train` stage and the loop behind it.
//!
//! The loop is written on burn's `autodiff` and `optim` directly rather than on `burn-train`
//! (whose terminal UI and system-metrics crates we do not need): shuffle with the run's seed,
//! forward, cross-entropy, backward, optimizer step; evaluate in validation mode after every
//! epoch; evaluate the test split once at the end. A non-finite loss stops the run with the
//! epoch and step. Each epoch appends to `history.csv`; the end writes `metrics.json` and the
//! model as safetensors, all atomically.
//!
//! Module map: `config` (the stage's settings), `stage` (setup, resume, the epoch loop, the final
//! evaluation and files), `progress` (the per-epoch bookkeeping shared by trained and replayed
//! epochs), `fit` (one pass over the training split), `evaluation` ([`Evaluator`]), `checkpoint`,
//! `history` and `lines` (what is printed). The run files' types (`history.csv`, metrics.json,
//! confusion CSVs) live in `kindling_metrics::run_files`, where sweeps read them back.
//! [`infer`] evaluates and applies a finished run's model ([`infer::Predictor`]), for
//! `kindling eval` and `kindling predict`.
//!
//! This crate reads no YAML and builds no models (see `kindling-models`).

mod batch;
pub mod bench;
mod checkpoint;
mod clip;
mod config;
mod diagnose;
mod early;
mod evaluation;
mod export;
mod figures;
mod fit;
mod history;
pub mod infer;
mod lines;
mod lr_find;
pub mod onnx;
mod progress;
mod stage;
mod weights;

pub use batch::Batches;
pub use checkpoint::CHECKPOINT_DIR;
pub use clip::clip_grad_norm;
pub use config::{L1, TrainConfig};
pub use early::EarlyStopping;
pub use evaluation::{Evaluation, Evaluator, Mistake, evaluate};
pub use export::{ExportFormat, export_run, onnx_bytes, preprocessing};
pub use history::{EpochRecord, History, SplitMetrics};
pub use lr_find::{RangePoint, RangeResult, RangeTest, range_test, steepest, suggest};

/// The stages this crate offers.
pub fn plugin() -> kindling_core::Plugin {
    kindling_core::Plugin { name: "train", stages: vec![stage::train()] }
}
