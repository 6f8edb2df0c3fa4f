//! `train:`, the stage's configuration: plain values with PyTorch's names, checked before any
//! compute.

use kindling_core::{Issues, StageConfig};
use kindling_optim::{OptimizerConfig, SchedulerConfig, Warmup};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::early::EarlyStopping;

/// Configuration of `train`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Passes over the training split.
    #[schemars(range(min = 1))]
    pub epochs: usize,
    /// Samples per optimizer step. PyTorch's `DataLoader` defaults to 1, which no one trains
    /// a CNN with; 64 is what the experiments use.
    #[schemars(range(min = 1))]
    pub batch_size: usize,
    /// Reshuffle the training split every epoch (seeded by the run's seed and the epoch).
    pub shuffle: bool,
    /// The optimizer, `{name: sgd | adam | adamw | adagrad | rmsprop, lr: ..., ...}` with
    /// PyTorch's parameters.
    pub optimizer: OptimizerConfig,
    /// A learning-rate schedule stepped per epoch (`{name: step, step_size: 5}`); none keeps
    /// the optimizer's `lr`.
    pub scheduler: Option<SchedulerConfig>,
    /// A linear warm-up chained with the schedule (`{epochs: 5, start_factor: 0.333}`).
    pub warmup: Option<Warmup>,
    /// Per-class weights of the cross-entropy (`nn.CrossEntropyLoss(weight=...)`), one per
    /// class, positive; the mean is weighted as PyTorch weights it.
    #[schemars(extend("items" = {"type": "number", "exclusiveMinimum": 0}))]
    pub class_weights: Option<Vec<f64>>,
    /// An explicit L1 penalty added to the loss (PyTorch has none built in).
    pub l1: Option<L1>,
    /// Stop when a metric stops improving and keep the best epoch's model:
    /// `{monitor: valid_loss, patience: 7, min_delta: 0, restore_best: true}`; `mode` follows the
    /// metric (`max` for accuracy) unless given.
    pub early_stopping: Option<EarlyStopping>,
    /// Clip the global L2 norm of all gradients to this value before each step
    /// (`torch.nn.utils.clip_grad_norm_`; burn's own clipping is per tensor).
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub clip_grad_norm: Option<f64>,
    /// Samples per batch when evaluating (no gradients: larger batches are cheaper).
    #[schemars(range(min = 1))]
    pub eval_batch_size: usize,
    /// Write the trained weights to `model.safetensors` in the run directory.
    pub save_model: bool,
    /// Write `checkpoints/last.ckpt` (and `best.ckpt`) after every epoch, so that
    /// `kindling run --resume` can continue the run after an interruption.
    pub checkpoints: bool,
    /// Record cheap signals while training (step losses, sampled gradient norms, dead ReLU
    /// units on a probe batch, the validation predictions, duplicates across splits) and report
    /// what they show (prediction collapse, divergence, not learning, overfitting, ...) in the
    /// summary, metrics.json and report.html.
    pub diagnostics: bool,
}

/// `loss + lambda * sum(|p|)` over the weights (or every parameter).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct L1 {
    /// Strength of the penalty.
    #[schemars(range(min = 0))]
    pub lambda: f64,
    /// Penalise only convolution and linear weights (not biases or batch-norm parameters).
    #[serde(default = "yes")]
    pub weights_only: bool,
}

fn yes() -> bool {
    true
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 64,
            shuffle: true,
            optimizer: OptimizerConfig::default(),
            scheduler: None,
            warmup: None,
            class_weights: None,
            l1: None,
            clip_grad_norm: None,
            early_stopping: None,
            eval_batch_size: 256,
            save_model: true,
            checkpoints: true,
            diagnostics: true,
        }
    }
}

impl StageConfig for TrainConfig {
    const KEY_DOCS: &'static [(&'static str, &'static str)] = &[
        ("epochs", "passes over the training split"),
        ("batch_size", "samples per optimizer step"),
        ("shuffle", "reshuffle the training split every epoch (seeded)"),
        ("optimizer", "{name: sgd | adam | adamw | adagrad | rmsprop, lr, ...} with PyTorch's names and defaults"),
        (
            "scheduler",
            "per-epoch LR schedule: {name: step | multi_step | exponential | cosine_annealing | reduce_on_plateau, ...}",
        ),
        ("warmup", "linear warm-up chained with the schedule: {epochs: 5, start_factor: 0.333}"),
        ("class_weights", "cross-entropy weight per class, e.g. [1.0, 2.0, ...]"),
        ("l1", "explicit L1 penalty added to the loss: {lambda: 1e-5, weights_only: true}"),
        ("clip_grad_norm", "max_norm of one L2 norm over all gradients, as torch.nn.utils.clip_grad_norm_"),
        (
            "early_stopping",
            "{monitor: valid_loss | valid_accuracy | train_loss, patience: 7, min_delta: 0, restore_best: true}",
        ),
        ("eval_batch_size", "samples per batch when evaluating"),
        (
            "save_model",
            "write the trained weights to model.safetensors, and for PyTorch model.pytorch.safetensors (state_dict \
             names), model.pytorch.json (layers) and model.check.safetensors (inputs and outputs)",
        ),
        (
            "checkpoints",
            "write checkpoints/last.ckpt (model, optimizer, history) and best.ckpt after every epoch, for `kindling run --resume`",
        ),
        (
            "diagnostics",
            "record cheap signals while training and report findings (prediction collapse, divergence, not learning, \
             dead units, overfitting, data problems) with evidence and a next step",
        ),
    ];

    fn check(&self, issues: &mut Issues) {
        issues.require(self.epochs >= 1, "epochs", "must be at least 1");
        issues.require(self.batch_size >= 1, "batch_size", "must be at least 1");
        issues.require(self.eval_batch_size >= 1, "eval_batch_size", "must be at least 1");
        issues.at("optimizer", |nested| self.optimizer.check(nested));
        if let Some(s) = &self.scheduler {
            issues.at("scheduler", |nested| s.check(nested));
        }
        if let Some(w) = &self.warmup {
            issues.at("warmup", |nested| w.check(nested));
        }
        if let Some(weights) = &self.class_weights {
            issues.require(weights.iter().all(|&w| w > 0.0), "class_weights", "every weight must be positive");
        }
        if let Some(l1) = &self.l1 {
            issues.require(l1.lambda >= 0.0, "l1.lambda", "must be at least 0");
        }
        if let Some(e) = &self.early_stopping {
            issues.at("early_stopping", |nested| e.check(nested));
        }
        if let Some(max_norm) = self.clip_grad_norm {
            issues.require(max_norm > 0.0, "clip_grad_norm", "must be positive");
        }
    }
}
