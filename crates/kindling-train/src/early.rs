//! Early stopping: stop when a monitored metric stops improving, and keep the best model.

use kindling_core::Issues;
use kindling_metrics::ConfusionMatrix;
use kindling_models::Sequential;
use kindling_optim::{Mode, Monitor};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::history::SplitMetrics;

/// `early_stopping:` of the train stage. An epoch improves when the metric beats the best so far
/// by more than `min_delta` (the `delta` of the widely used PyTorch `EarlyStopping` helper,
/// whose defaults these are: patience 7, delta 0, checkpoint of the best validation loss).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct EarlyStopping {
    /// The metric watched.
    pub monitor: Monitor,
    /// Whether the metric should fall (`min`) or rise (`max`); by default what the monitored
    /// metric calls for (`max` for accuracy, `min` for losses).
    pub mode: Option<Mode>,
    /// Epochs without improvement before training stops.
    #[schemars(range(min = 1))]
    pub patience: usize,
    /// Smallest change that counts as an improvement.
    #[schemars(range(min = 0))]
    pub min_delta: f64,
    /// End with the weights of the best epoch rather than the last (burn's own early stopping
    /// returns the last).
    pub restore_best: bool,
}

impl Default for EarlyStopping {
    fn default() -> Self {
        Self { monitor: Monitor::ValidLoss, mode: None, patience: 7, min_delta: 0.0, restore_best: true }
    }
}

impl EarlyStopping {
    /// Records every out-of-range value, with paths relative to the block.
    pub fn check(&self, issues: &mut Issues) {
        issues.require(self.patience >= 1, "patience", "must be at least 1");
        issues.require(self.min_delta >= 0.0, "min_delta", "must be at least 0");
    }
}

/// The value of `monitor` for an epoch.
pub(crate) fn monitored(monitor: Monitor, train: &SplitMetrics, valid: Option<&SplitMetrics>) -> Option<f64> {
    match monitor {
        Monitor::TrainLoss => Some(train.loss),
        Monitor::ValidLoss => valid.map(|v| v.loss),
        Monitor::ValidAccuracy => valid.map(|v| v.accuracy),
    }
}

/// The state of early stopping through a run.
pub(crate) struct Watch {
    config: EarlyStopping,
    best: Option<(f64, usize)>,
    waited: usize,
    /// The best epoch's model and validation confusion matrix, kept when restoring.
    pub(crate) best_model: Option<(Sequential, Option<ConfusionMatrix>)>,
}

impl Watch {
    pub(crate) fn new(config: EarlyStopping) -> Self {
        Self { config, best: None, waited: 0, best_model: None }
    }

    pub(crate) fn monitor(&self) -> Monitor {
        self.config.monitor
    }

    /// Takes an epoch's metric; returns true when training should stop. The model is cloned
    /// (cheap: tensors are shared, not copied) when it is the best so far.
    pub(crate) fn observe(
        &mut self,
        epoch: usize,
        value: f64,
        net: &Sequential,
        confusion: Option<&ConfusionMatrix>,
    ) -> bool {
        let (improved, stop) = self.observe_value(epoch, value);
        if improved && self.config.restore_best {
            self.best_model = Some((net.clone(), confusion.cloned()));
        }
        stop
    }

    /// Takes an epoch's metric without its model (replaying a resumed run's history):
    /// returns whether it improved and whether training should stop.
    pub(crate) fn observe_value(&mut self, epoch: usize, value: f64) -> (bool, bool) {
        let d = self.config.min_delta;
        let improved = match (self.best, self.config.monitor.mode_or_natural(self.config.mode)) {
            (None, _) => true,
            (Some((best, _)), Mode::Min) => value < best - d,
            (Some((best, _)), Mode::Max) => value > best + d,
        };
        if improved {
            self.best = Some((value, epoch));
            self.waited = 0;
            (true, false)
        } else {
            self.waited += 1;
            (false, self.waited >= self.config.patience)
        }
    }

    /// Whether the best epoch's model is kept to end with.
    pub(crate) fn restores_best(&self) -> bool {
        self.config.restore_best
    }

    /// The best value and its epoch.
    pub(crate) fn best(&self) -> Option<(f64, usize)> {
        self.best
    }
}
