//! Optimizers with PyTorch's names, parameters and defaults, built onto burn's optimizers.
//!
//! burn's defaults differ from PyTorch's in places that change results (SGD dampening 0.1,
//! Adam epsilon 1e-5); every value here is set explicitly from [`OptimizerConfig`], whose
//! defaults are PyTorch's. The result is burn's type-erased [`ModuleOptimizer`], so training
//! code does not care which optimizer it holds.
//!
//! ```
//! let config: kindling_optim::OptimizerConfig =
//!     serde_json::from_value(serde_json::json!({"name": "sgd", "lr": 0.1, "momentum": 0.9})).unwrap();
//! assert_eq!(config.lr(), 0.1);
//! let _optimizer = config.build();
//! ```
//!
//! [`Scheduler`] gives the learning rate of each epoch for PyTorch's `StepLR`, `MultiStepLR`,
//! `ExponentialLR`, `CosineAnnealingLR` and `ReduceLROnPlateau`, optionally chained with a
//! linear warm-up, stepped per epoch as PyTorch code steps them (burn's schedulers step per
//! iteration).
//!
//! This crate does not read YAML or run training loops.

mod schedule;

pub use schedule::{
    CosineAnnealingLr, ExponentialLr, Mode, Monitor, MultiStepLr, ReduceOnPlateau, Scheduler, SchedulerConfig, StepLr,
    ThresholdMode, Warmup,
};

use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, ModuleOptimizer, SgdConfig};
use kindling_core::Issues;
use serde::{Deserialize, Serialize};

/// An optimizer and its hyper-parameters, tagged by `name` (`{name: adam, lr: 1e-3}`). A
/// block without `name` is Adam, the training stage's default, so `--set
/// train.optimizer.lr=3e-4` works on a pipeline that does not name its optimizer.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum OptimizerConfig {
    /// `torch.optim.SGD`.
    Sgd(Sgd),
    /// `torch.optim.Adam`.
    Adam(Adam),
}

impl<'de> Deserialize<'de> for OptimizerConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// The same shape as [`OptimizerConfig`], with serde's tag handling.
        #[derive(Deserialize)]
        #[serde(tag = "name", rename_all = "snake_case")]
        enum Tagged {
            Sgd(Sgd),
            Adam(Adam),
        }
        let mut value = serde_json::Value::deserialize(deserializer)?;
        if let Some(map) = value.as_object_mut() {
            map.entry("name").or_insert_with(|| "adam".into());
        }
        match Tagged::deserialize(value).map_err(serde::de::Error::custom)? {
            Tagged::Sgd(s) => Ok(Self::Sgd(s)),
            Tagged::Adam(a) => Ok(Self::Adam(a)),
        }
    }
}

/// `torch.optim.SGD(lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sgd {
    /// Learning rate.
    pub lr: f64,
    /// Momentum factor; 0 disables momentum.
    pub momentum: f64,
    /// Dampening of the momentum's gradient term (PyTorch 0, burn 0.1).
    pub dampening: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// Nesterov momentum (needs momentum > 0 and dampening 0, as in PyTorch).
    pub nesterov: bool,
}

impl Default for Sgd {
    fn default() -> Self {
        Self { lr: 1e-3, momentum: 0.0, dampening: 0.0, weight_decay: 0.0, nesterov: false }
    }
}

/// `torch.optim.Adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Adam {
    /// Learning rate.
    pub lr: f64,
    /// Decay rates of the first and second moment estimates.
    pub betas: [f64; 2],
    /// Added to the denominator (PyTorch 1e-8, burn 1e-5).
    pub eps: f64,
    /// L2 penalty added to the gradient (not decoupled: that is AdamW).
    pub weight_decay: f64,
    /// Use the maximum of past second moments (AMSGrad).
    pub amsgrad: bool,
}

impl Default for Adam {
    fn default() -> Self {
        Self { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0.0, amsgrad: false }
    }
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        Self::Adam(Adam::default())
    }
}

impl OptimizerConfig {
    /// The base learning rate.
    pub fn lr(&self) -> f64 {
        match self {
            Self::Sgd(s) => s.lr,
            Self::Adam(a) => a.lr,
        }
    }

    /// Records every out-of-range value, with paths relative to the optimizer's block.
    pub fn check(&self, issues: &mut Issues) {
        let lr = self.lr();
        issues.require(lr.is_finite() && lr > 0.0, "lr", format!("must be a positive number, got {lr}"));
        match self {
            Self::Sgd(s) => {
                issues.require(s.momentum >= 0.0, "momentum", "must be at least 0");
                issues.require((0.0..=1.0).contains(&s.dampening), "dampening", "must be in [0, 1]");
                issues.require(s.weight_decay >= 0.0, "weight_decay", "must be at least 0");
                issues.require(
                    !s.nesterov || (s.momentum > 0.0 && s.dampening == 0.0),
                    "nesterov",
                    "Nesterov momentum requires a momentum and zero dampening",
                );
            }
            Self::Adam(a) => {
                for (i, b) in a.betas.iter().enumerate() {
                    issues.require(
                        (0.0..1.0).contains(b),
                        &format!("betas[{i}]"),
                        format!("must be in [0, 1), got {b}"),
                    );
                }
                issues.require(a.eps >= 0.0, "eps", "must be at least 0");
                issues.require(a.weight_decay >= 0.0, "weight_decay", "must be at least 0");
            }
        }
    }

    /// The burn optimizer with every hyper-parameter set from this configuration.
    pub fn build(&self) -> ModuleOptimizer {
        match self {
            Self::Sgd(s) => {
                let momentum = (s.momentum > 0.0).then(|| {
                    MomentumConfig::new()
                        .with_momentum(s.momentum)
                        .with_dampening(s.dampening)
                        .with_nesterov(s.nesterov)
                });
                SgdConfig::new().with_momentum(momentum).with_weight_decay(decay(s.weight_decay)).init()
            }
            Self::Adam(a) => AdamConfig::new()
                .with_beta_1(a.betas[0] as f32)
                .with_beta_2(a.betas[1] as f32)
                .with_epsilon(a.eps as f32)
                .with_amsgrad(a.amsgrad)
                .with_weight_decay(decay(a.weight_decay))
                .init(),
        }
    }
}

fn decay(penalty: f64) -> Option<WeightDecayConfig> {
    (penalty > 0.0).then(|| WeightDecayConfig::new(penalty as f32))
}
