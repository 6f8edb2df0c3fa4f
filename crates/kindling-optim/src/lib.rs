//! Optimizers with PyTorch's names, parameters and defaults: SGD, Adam, AdamW, Adagrad and
//! RMSprop, each computing what PyTorch computes for f32 parameters to within a few ulp.
//!
//! SGD is burn's, configured with PyTorch's values (burn's defaults differ: dampening 0.1).
//! Adam, AdamW, Adagrad and RMSprop are burn [`Optimizer`](burn::optim::Optimizer)s of their
//! own, written in PyTorch's operation order: burn's keep betas and `alpha` in f32 and compute
//! `1 - beta` and the bias corrections in f32, which with PyTorch's `beta_2 = 0.999` moves 20
//! Adam steps 3e-5 away from PyTorch's (see `adam.rs`), and burn's Adagrad cannot start the sum
//! of squared gradients at `initial_accumulator_value`. Every value is set explicitly from
//! [`OptimizerConfig`], whose defaults are PyTorch's. The result is burn's type-erased
//! [`ModuleOptimizer`], so training code does not care which optimizer it holds, and every
//! optimizer's state saves and loads through [`ModuleOptimizer::into_bytes`] and
//! [`ModuleOptimizer::from_bytes`].
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

mod adagrad;
mod adam;
mod rmsprop;
mod schedule;

pub use schedule::{
    CosineAnnealingLr, ExponentialLr, Mode, Monitor, MultiStepLr, ReduceOnPlateau, Scheduler, SchedulerConfig, StepLr,
    ThresholdMode, Warmup,
};

use std::borrow::Cow;

use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{ModuleOptimizer, SgdConfig};
use kindling_core::Issues;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

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
    /// `torch.optim.AdamW` (decoupled weight decay).
    Adamw(AdamW),
    /// `torch.optim.Adagrad`.
    Adagrad(Adagrad),
    /// `torch.optim.RMSprop`.
    Rmsprop(RmsProp),
}

impl<'de> Deserialize<'de> for OptimizerConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// The same shape as [`OptimizerConfig`], with serde's tag handling.
        #[derive(Deserialize)]
        #[serde(tag = "name", rename_all = "snake_case")]
        enum Tagged {
            Sgd(Sgd),
            Adam(Adam),
            Adamw(AdamW),
            Adagrad(Adagrad),
            Rmsprop(RmsProp),
        }
        let mut value = serde_json::Value::deserialize(deserializer)?;
        if let Some(map) = value.as_object_mut() {
            map.entry("name").or_insert_with(|| "adam".into());
        }
        match Tagged::deserialize(value).map_err(serde::de::Error::custom)? {
            Tagged::Sgd(s) => Ok(Self::Sgd(s)),
            Tagged::Adam(a) => Ok(Self::Adam(a)),
            Tagged::Adamw(a) => Ok(Self::Adamw(a)),
            Tagged::Adagrad(a) => Ok(Self::Adagrad(a)),
            Tagged::Rmsprop(r) => Ok(Self::Rmsprop(r)),
        }
    }
}

/// The forms [`OptimizerConfig`]'s `Deserialize` reads (`kindling schema`): each optimizer's
/// settings with its `name`, where Adam's may leave `name` out.
impl JsonSchema for OptimizerConfig {
    fn schema_name() -> Cow<'static, str> {
        "OptimizerConfig".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        /// The settings' schema with `name` (first) holding `name`, required unless `optional`.
        fn named(name: &str, mut schema: Schema, optional: bool) -> Schema {
            let object = schema.ensure_object();
            let mut properties = Map::new();
            properties.insert("name".to_owned(), json!({"type": "string", "const": name}));
            if let Some(Value::Object(rest)) = object.remove("properties") {
                properties.extend(rest);
            }
            object.insert("properties".to_owned(), Value::Object(properties));
            if !optional {
                match object.entry("required").or_insert_with(|| json!([])) {
                    Value::Array(required) => required.insert(0, "name".into()),
                    other => *other = json!(["name"]),
                }
            }
            schema
        }
        json_schema!({
            "description": "an optimizer with PyTorch's parameters and defaults, chosen by `name`; \
                            without `name`, Adam",
            "oneOf": [
                named("sgd", Sgd::json_schema(generator), false),
                named("adam", Adam::json_schema(generator), true),
                named("adamw", AdamW::json_schema(generator), false),
                named("adagrad", Adagrad::json_schema(generator), false),
                named("rmsprop", RmsProp::json_schema(generator), false),
            ],
        })
    }
}

/// `torch.optim.SGD(lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Sgd {
    /// Learning rate.
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub lr: f64,
    /// Momentum factor; 0 disables momentum.
    #[schemars(range(min = 0))]
    pub momentum: f64,
    /// Dampening of the momentum's gradient term (PyTorch 0, burn 0.1).
    #[schemars(range(min = 0, max = 1))]
    pub dampening: f64,
    /// L2 penalty added to the gradient.
    #[schemars(range(min = 0))]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Adam {
    /// Learning rate.
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub lr: f64,
    /// Decay rates of the first and second moment estimates.
    #[schemars(extend("items" = {"type": "number", "minimum": 0, "exclusiveMaximum": 1}))]
    pub betas: [f64; 2],
    /// Added to the denominator.
    #[schemars(range(min = 0))]
    pub eps: f64,
    /// L2 penalty added to the gradient (not decoupled: that is AdamW).
    #[schemars(range(min = 0))]
    pub weight_decay: f64,
    /// Use the maximum of past second moments (AMSGrad).
    pub amsgrad: bool,
}

impl Default for Adam {
    fn default() -> Self {
        Self { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0.0, amsgrad: false }
    }
}

/// `torch.optim.AdamW(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AdamW {
    /// Learning rate.
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub lr: f64,
    /// Decay rates of the first and second moment estimates.
    #[schemars(extend("items" = {"type": "number", "minimum": 0, "exclusiveMaximum": 1}))]
    pub betas: [f64; 2],
    /// Added to the denominator.
    #[schemars(range(min = 0))]
    pub eps: f64,
    /// Decoupled decay: each step multiplies the weights by `1 - lr * weight_decay` (PyTorch's
    /// default 1e-2; burn's AdamW has 1e-4).
    #[schemars(range(min = 0))]
    pub weight_decay: f64,
    /// Use the maximum of past second moments (AMSGrad).
    pub amsgrad: bool,
}

impl Default for AdamW {
    fn default() -> Self {
        Self { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 1e-2, amsgrad: false }
    }
}

/// `torch.optim.Adagrad(lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Adagrad {
    /// Learning rate.
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub lr: f64,
    /// The rate at step t is `lr / (1 + (t - 1) * lr_decay)`.
    #[schemars(range(min = 0))]
    pub lr_decay: f64,
    /// L2 penalty added to the gradient.
    #[schemars(range(min = 0))]
    pub weight_decay: f64,
    /// Starting value of the sum of squared gradients.
    #[schemars(range(min = 0))]
    pub initial_accumulator_value: f64,
    /// Added to the denominator.
    #[schemars(range(min = 0))]
    pub eps: f64,
}

impl Default for Adagrad {
    fn default() -> Self {
        Self { lr: 1e-2, lr_decay: 0.0, weight_decay: 0.0, initial_accumulator_value: 0.0, eps: 1e-10 }
    }
}

/// `torch.optim.RMSprop(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RmsProp {
    /// Learning rate.
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub lr: f64,
    /// Smoothing constant of the squared-gradient average.
    #[schemars(range(min = 0, max = 1))]
    pub alpha: f64,
    /// Added to the denominator.
    #[schemars(range(min = 0))]
    pub eps: f64,
    /// L2 penalty added to the gradient.
    #[schemars(range(min = 0))]
    pub weight_decay: f64,
    /// Momentum factor (PyTorch's default 0; burn's RMSprop has 0.9).
    #[schemars(range(min = 0))]
    pub momentum: f64,
    /// Normalise by the estimated variance of the gradient rather than its second moment.
    pub centered: bool,
}

impl Default for RmsProp {
    fn default() -> Self {
        Self { lr: 1e-2, alpha: 0.99, eps: 1e-8, weight_decay: 0.0, momentum: 0.0, centered: false }
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
            Self::Adamw(a) => a.lr,
            Self::Adagrad(a) => a.lr,
            Self::Rmsprop(r) => r.lr,
        }
    }

    /// Its name as written in a pipeline (`sgd`, `adam`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sgd(_) => "sgd",
            Self::Adam(_) => "adam",
            Self::Adamw(_) => "adamw",
            Self::Adagrad(_) => "adagrad",
            Self::Rmsprop(_) => "rmsprop",
        }
    }

    /// Its weight decay (AdamW's decoupled one for `adamw`).
    pub fn weight_decay(&self) -> f64 {
        match self {
            Self::Sgd(s) => s.weight_decay,
            Self::Adam(a) => a.weight_decay,
            Self::Adamw(a) => a.weight_decay,
            Self::Adagrad(a) => a.weight_decay,
            Self::Rmsprop(r) => r.weight_decay,
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
            Self::Adam(a) => check_adam_like(a.betas, a.eps, a.weight_decay, issues),
            Self::Adamw(a) => check_adam_like(a.betas, a.eps, a.weight_decay, issues),
            Self::Adagrad(a) => {
                issues.require(a.lr_decay >= 0.0, "lr_decay", "must be at least 0");
                issues.require(a.weight_decay >= 0.0, "weight_decay", "must be at least 0");
                issues.require(a.eps >= 0.0, "eps", "must be at least 0");
                issues.require(a.initial_accumulator_value >= 0.0, "initial_accumulator_value", "must be at least 0");
            }
            Self::Rmsprop(r) => {
                issues.require((0.0..=1.0).contains(&r.alpha), "alpha", "must be in [0, 1]");
                issues.require(r.eps >= 0.0, "eps", "must be at least 0");
                issues.require(r.weight_decay >= 0.0, "weight_decay", "must be at least 0");
                issues.require(r.momentum >= 0.0, "momentum", "must be at least 0");
            }
        }
    }

    /// The optimizer, with every hyper-parameter set from this configuration.
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
            Self::Adam(a) => ModuleOptimizer::from(adam::TorchAdam {
                betas: a.betas,
                eps: a.eps,
                weight_decay: a.weight_decay,
                decoupled_weight_decay: 0.0,
                amsgrad: a.amsgrad,
            }),
            Self::Adamw(a) => ModuleOptimizer::from(adam::TorchAdam {
                betas: a.betas,
                eps: a.eps,
                weight_decay: 0.0,
                decoupled_weight_decay: a.weight_decay,
                amsgrad: a.amsgrad,
            }),
            Self::Adagrad(a) => ModuleOptimizer::from(adagrad::TorchAdagrad {
                lr_decay: a.lr_decay,
                weight_decay: a.weight_decay,
                initial_accumulator_value: a.initial_accumulator_value,
                eps: a.eps,
            }),
            Self::Rmsprop(r) => ModuleOptimizer::from(rmsprop::TorchRmsProp {
                alpha: r.alpha,
                eps: r.eps,
                weight_decay: r.weight_decay,
                momentum: r.momentum,
                centered: r.centered,
            }),
        }
    }
}

/// The checks Adam and AdamW share.
fn check_adam_like(betas: [f64; 2], eps: f64, weight_decay: f64, issues: &mut Issues) {
    for (i, b) in betas.iter().enumerate() {
        issues.require((0.0..1.0).contains(b), &format!("betas[{i}]"), format!("must be in [0, 1), got {b}"));
    }
    issues.require(eps >= 0.0, "eps", "must be at least 0");
    issues.require(weight_decay >= 0.0, "weight_decay", "must be at least 0");
}

fn decay(penalty: f64) -> Option<WeightDecayConfig> {
    (penalty > 0.0).then(|| WeightDecayConfig::new(penalty as f32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_names_the_optimizers_the_reader_takes() {
        let mut generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
        let schema = OptimizerConfig::json_schema(&mut generator).to_value();
        let variants = schema["oneOf"].as_array().unwrap();
        let names: Vec<&str> = variants.iter().map(|v| v["properties"]["name"]["const"].as_str().unwrap()).collect();
        assert_eq!(names, ["sgd", "adam", "adamw", "adagrad", "rmsprop"]);
        for (name, variant) in names.iter().zip(variants) {
            let config: OptimizerConfig = serde_json::from_value(json!({"name": name})).unwrap();
            // What the reader makes of the name serialises under the same name.
            assert_eq!(serde_json::to_value(&config).unwrap()["name"], *name);
            // Only Adam may leave the name out, as the reader allows.
            assert_eq!(variant["required"] == json!(["name"]), *name != "adam", "{name}");
        }
        let unnamed: OptimizerConfig = serde_json::from_value(json!({"lr": 0.1})).unwrap();
        assert!(matches!(unnamed, OptimizerConfig::Adam(_)));
    }
}
