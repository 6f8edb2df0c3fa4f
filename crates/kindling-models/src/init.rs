//! Weight initialisation, as `torch.nn.init` defines it, drawn from the run's own stream.
//!
//! burn's initialisers draw from a process-wide generator, so two models initialised at the
//! same time (tests, sweeps in one process) would interleave their draws. Drawing from a
//! generator owned by the caller keeps a run's numbers a function of its seed alone.

use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};
use kindling_core::Issues;
use rand::RngExt;
use rand::rngs::StdRng;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The nonlinearity that follows a layer, for `torch.nn.init.calculate_gain`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Nonlinearity {
    /// Gain 1.
    Linear,
    /// Gain 1.
    Sigmoid,
    /// Gain 5/3.
    Tanh,
    /// Gain sqrt(2).
    Relu,
    /// Gain sqrt(2 / (1 + a^2)), with `a` the negative slope.
    #[default]
    LeakyRelu,
}

/// Which fan a Kaiming initialiser preserves the variance of.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FanMode {
    /// The forward pass (`fan_in`).
    #[default]
    FanIn,
    /// The backward pass (`fan_out`).
    FanOut,
}

/// An initialiser, `{name: ..., ...}` or just its name, with `torch.nn.init`'s parameters and
/// defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "name", rename_all = "snake_case", deny_unknown_fields)]
pub enum Init {
    /// PyTorch's layer default: `kaiming_uniform_(a=sqrt(5))` for weights, which is
    /// `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`, and the same bound for biases.
    Default,
    /// `xavier_uniform_(gain=1)`: `U(-b, b)`, `b = gain * sqrt(6 / (fan_in + fan_out))`.
    XavierUniform {
        /// Scale factor.
        #[serde(default = "one")]
        gain: f64,
    },
    /// `xavier_normal_(gain=1)`: `N(0, gain^2 * 2 / (fan_in + fan_out))`.
    XavierNormal {
        /// Scale factor.
        #[serde(default = "one")]
        gain: f64,
    },
    /// `kaiming_uniform_(a=0, mode='fan_in', nonlinearity='leaky_relu')`.
    KaimingUniform {
        /// Negative slope of the following leaky ReLU.
        #[serde(default)]
        a: f64,
        /// `fan_in` or `fan_out`.
        #[serde(default)]
        mode: FanMode,
        /// The nonlinearity that follows.
        #[serde(default)]
        nonlinearity: Nonlinearity,
    },
    /// `kaiming_normal_(a=0, mode='fan_in', nonlinearity='leaky_relu')`.
    KaimingNormal {
        /// Negative slope of the following leaky ReLU.
        #[serde(default)]
        a: f64,
        /// `fan_in` or `fan_out`.
        #[serde(default)]
        mode: FanMode,
        /// The nonlinearity that follows.
        #[serde(default)]
        nonlinearity: Nonlinearity,
    },
    /// `normal_(mean=0, std=1)`.
    Normal {
        /// Mean.
        #[serde(default)]
        mean: f64,
        /// Standard deviation.
        #[serde(default = "one")]
        #[schemars(range(min = 0))]
        std: f64,
    },
    /// `uniform_(a=0, b=1)`.
    Uniform {
        /// Lower bound.
        #[serde(default)]
        a: f64,
        /// Upper bound.
        #[serde(default = "one")]
        b: f64,
    },
    /// `constant_(val)`.
    Constant {
        /// The value.
        val: f64,
    },
    /// `zeros_`.
    Zeros,
}

fn one() -> f64 {
    1.0
}

/// Reads an initialiser given as `{name: ..., ...}` or as just its name (`xavier_uniform`).
fn init_or_name<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Init>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    value
        .map(|v| {
            let v = match v {
                serde_json::Value::String(name) => serde_json::json!({ "name": name }),
                other => other,
            };
            Init::deserialize(v).map_err(serde::de::Error::custom)
        })
        .transpose()
}

/// The JSON Schema of what [`init_or_name`] reads: nothing, an initialiser's name where none of
/// its parameters is required, or the full `{name: ..., ...}` form.
fn init_or_name_schema(generator: &mut SchemaGenerator) -> Schema {
    let full = Init::json_schema(generator);
    let variants = full.get("oneOf").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let names: Vec<&Value> = variants
        .iter()
        .filter(|v| v.get("required").and_then(Value::as_array).is_some_and(|r| r.len() == 1))
        .filter_map(|v| v.pointer("/properties/name/const"))
        .collect();
    json_schema!({
        "anyOf": [
            {"type": "null"},
            {"type": "string", "enum": names},
            generator.subschema_for::<Init>(),
        ],
    })
}

/// Initialisers per kind of parameter: `init: {conv: xavier_uniform, linear: kaiming_normal,
/// bias: zeros}`. Absent kinds keep PyTorch's default.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct InitConfig {
    /// Convolution weights.
    #[serde(deserialize_with = "init_or_name")]
    #[schemars(schema_with = "init_or_name_schema")]
    pub conv: Option<Init>,
    /// Linear-layer weights.
    #[serde(deserialize_with = "init_or_name")]
    #[schemars(schema_with = "init_or_name_schema")]
    pub linear: Option<Init>,
    /// Biases of convolutions and linear layers.
    #[serde(deserialize_with = "init_or_name")]
    #[schemars(schema_with = "init_or_name_schema")]
    pub bias: Option<Init>,
}

impl InitConfig {
    /// Records values PyTorch would reject: Xavier and Kaiming need a weight's two fans, so
    /// they cannot initialise a bias; standard deviations and ranges must make sense.
    pub fn check(&self, issues: &mut Issues) {
        for (key, init) in [("conv", &self.conv), ("linear", &self.linear), ("bias", &self.bias)] {
            let Some(init) = init else { continue };
            match init {
                Init::XavierUniform { .. }
                | Init::XavierNormal { .. }
                | Init::KaimingUniform { .. }
                | Init::KaimingNormal { .. }
                    if key == "bias" =>
                {
                    issues.push(key, "Xavier and Kaiming need fan_in and fan_out, which a bias (1-D) does not have")
                }
                Init::Normal { std, .. } if *std < 0.0 => issues.push(key, "std must be at least 0"),
                Init::Uniform { a, b } if a > b => issues.push(key, "a must not exceed b"),
                _ => {}
            }
        }
    }
}

/// `torch.nn.init.calculate_gain`.
pub fn gain(nonlinearity: Nonlinearity, negative_slope: f64) -> f64 {
    match nonlinearity {
        Nonlinearity::Linear | Nonlinearity::Sigmoid => 1.0,
        Nonlinearity::Tanh => 5.0 / 3.0,
        Nonlinearity::Relu => 2.0_f64.sqrt(),
        Nonlinearity::LeakyRelu => (2.0 / (1.0 + negative_slope * negative_slope)).sqrt(),
    }
}

/// How values are drawn.
enum Draw {
    Uniform(f64, f64),
    Normal(f64, f64),
    Constant(f64),
}

impl Init {
    /// The distribution for a parameter with these fans. A bias passes its layer's fans (the
    /// default bias bound uses the layer's `fan_in`).
    fn draw(&self, fan_in: usize, fan_out: usize) -> Draw {
        let (fi, fo) = (fan_in.max(1) as f64, fan_out.max(1) as f64);
        let fan = |mode: FanMode| if mode == FanMode::FanIn { fi } else { fo };
        match *self {
            Init::Default => Draw::Uniform(-1.0 / fi.sqrt(), 1.0 / fi.sqrt()),
            Init::XavierUniform { gain } => {
                let b = gain * (6.0 / (fi + fo)).sqrt();
                Draw::Uniform(-b, b)
            }
            Init::XavierNormal { gain } => Draw::Normal(0.0, gain * (2.0 / (fi + fo)).sqrt()),
            Init::KaimingUniform { a, mode, nonlinearity } => {
                let b = 3.0_f64.sqrt() * gain(nonlinearity, a) / fan(mode).sqrt();
                Draw::Uniform(-b, b)
            }
            Init::KaimingNormal { a, mode, nonlinearity } => {
                Draw::Normal(0.0, gain(nonlinearity, a) / fan(mode).sqrt())
            }
            Init::Normal { mean, std } => Draw::Normal(mean, std),
            Init::Uniform { a, b } => Draw::Uniform(a, b),
            Init::Constant { val } => Draw::Constant(val),
            Init::Zeros => Draw::Constant(0.0),
        }
    }

    /// `n` values for a parameter with these fans.
    pub fn sample(&self, n: usize, fan_in: usize, fan_out: usize, rng: &mut StdRng) -> Vec<f32> {
        match self.draw(fan_in, fan_out) {
            Draw::Uniform(lo, hi) if lo < hi => (0..n).map(|_| rng.random_range(lo..hi) as f32).collect(),
            Draw::Uniform(lo, _) | Draw::Constant(lo) => vec![lo as f32; n],
            Draw::Normal(mean, std) => (0..n).map(|_| (mean + std * standard_normal(rng)) as f32).collect(),
        }
    }

    /// A parameter of `shape` drawn from this initialiser.
    pub(crate) fn param<const D: usize>(
        &self,
        shape: [usize; D],
        fans: (usize, usize),
        rng: &mut StdRng,
        device: &Device,
    ) -> Param<Tensor<D>> {
        let values = self.sample(shape.iter().product(), fans.0, fans.1, rng);
        Param::from_tensor(Tensor::from_data(TensorData::new(values, shape), device))
    }
}

/// One draw from N(0, 1) by the Box-Muller transform.
fn standard_normal(rng: &mut StdRng) -> f64 {
    // 1 - u lies in (0, 1], so the logarithm is finite.
    let u: f64 = 1.0 - rng.random::<f64>();
    let v: f64 = rng.random::<f64>();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Empirical mean, standard deviation, minimum and maximum of a million draws.
    fn stats(init: &Init, fan_in: usize, fan_out: usize) -> (f64, f64, f64, f64) {
        let v = init.sample(1_000_000, fan_in, fan_out, &mut kindling_core::rng_from_seed(1, "init-test"));
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        let var = v.iter().map(|&x| (f64::from(x) - mean).powi(2)).sum::<f64>() / n;
        let min = v.iter().copied().fold(f32::INFINITY, f32::min);
        let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        (mean, var.sqrt(), f64::from(min), f64::from(max))
    }

    /// A uniform initialiser: bounds within `bound`, std `bound / sqrt(3)`, mean 0.
    fn check_uniform(init: Init, fan_in: usize, fan_out: usize, bound: f64) {
        let (mean, std, min, max) = stats(&init, fan_in, fan_out);
        // Draws are made in f64 and stored as f32: allow the rounding.
        let edge = bound * (1.0 + 1e-6);
        assert!(min >= -edge && max <= edge, "{init:?}: [{min}, {max}] outside +-{bound}");
        assert!(min < -0.99 * bound && max > 0.99 * bound, "{init:?}: [{min}, {max}] does not reach +-{bound}");
        assert!((std - bound / 3.0_f64.sqrt()).abs() < 0.01 * bound, "{init:?}: std {std}");
        assert!(mean.abs() < 0.005 * bound, "{init:?}: mean {mean}");
    }

    fn check_normal(init: Init, fan_in: usize, fan_out: usize, want_mean: f64, want_std: f64) {
        let (mean, std, _, _) = stats(&init, fan_in, fan_out);
        assert!((std - want_std).abs() < 0.01 * want_std, "{init:?}: std {std}, want {want_std}");
        assert!((mean - want_mean).abs() < 0.005 * want_std.max(1e-9), "{init:?}: mean {mean}, want {want_mean}");
    }

    #[test]
    fn uniform_initialisers_follow_torch_nn_init() {
        // A conv 16 -> 32 with 3x3 kernels: fan_in 144, fan_out 288.
        check_uniform(Init::Default, 144, 288, 1.0 / 12.0);
        check_uniform(Init::XavierUniform { gain: 1.0 }, 144, 288, (6.0_f64 / 432.0).sqrt());
        check_uniform(Init::XavierUniform { gain: 5.0 / 3.0 }, 144, 288, 5.0 / 3.0 * (6.0_f64 / 432.0).sqrt());
        let relu = Init::KaimingUniform { a: 0.0, mode: FanMode::FanIn, nonlinearity: Nonlinearity::Relu };
        check_uniform(relu, 144, 288, (6.0_f64 / 144.0).sqrt());
        // PyTorch's own default is kaiming_uniform(a = sqrt 5): the same bound as `Default`.
        let torch_default =
            Init::KaimingUniform { a: 5.0_f64.sqrt(), mode: FanMode::FanIn, nonlinearity: Nonlinearity::LeakyRelu };
        check_uniform(torch_default, 144, 288, 1.0 / 12.0);
        let fan_out = Init::KaimingUniform { a: 0.0, mode: FanMode::FanOut, nonlinearity: Nonlinearity::Tanh };
        check_uniform(fan_out, 144, 288, 3.0_f64.sqrt() * 5.0 / 3.0 / 288.0_f64.sqrt());
    }

    #[test]
    fn normal_initialisers_follow_torch_nn_init() {
        check_normal(Init::XavierNormal { gain: 1.0 }, 100, 300, 0.0, (2.0_f64 / 400.0).sqrt());
        let relu = Init::KaimingNormal { a: 0.0, mode: FanMode::FanIn, nonlinearity: Nonlinearity::Relu };
        check_normal(relu, 3136, 100, 0.0, (2.0_f64 / 3136.0).sqrt());
        let leaky = Init::KaimingNormal { a: 0.2, mode: FanMode::FanOut, nonlinearity: Nonlinearity::LeakyRelu };
        check_normal(leaky, 3136, 100, 0.0, (2.0_f64 / 1.04).sqrt() / 10.0);
        check_normal(Init::Normal { mean: 0.0, std: 0.02 }, 1, 1, 0.0, 0.02);
        check_normal(Init::Normal { mean: 1.5, std: 0.5 }, 1, 1, 1.5, 0.5);
    }

    #[test]
    fn constants_and_names() {
        let mut rng = kindling_core::rng_from_seed(0, "x");
        assert!(Init::Zeros.sample(10, 1, 1, &mut rng).iter().all(|&v| v == 0.0));
        assert!(Init::Constant { val: 0.1 }.sample(10, 1, 1, &mut rng).iter().all(|&v| v == 0.1));
        check_uniform(Init::Uniform { a: -0.5, b: 0.5 }, 1, 1, 0.5);
        let parsed: InitConfig =
            serde_json::from_value(serde_json::json!({"conv": "xavier_uniform", "linear": {"name": "kaiming_normal", "nonlinearity": "relu"}, "bias": "zeros"}))
                .unwrap();
        assert_eq!(parsed.conv, Some(Init::XavierUniform { gain: 1.0 }));
        assert_eq!(
            parsed.linear,
            Some(Init::KaimingNormal { a: 0.0, mode: FanMode::FanIn, nonlinearity: Nonlinearity::Relu })
        );
        assert_eq!(parsed.bias, Some(Init::Zeros));
        let mut issues = Issues::default();
        InitConfig { bias: Some(Init::XavierNormal { gain: 1.0 }), ..InitConfig::default() }.check(&mut issues);
        assert_eq!(issues.into_vec()[0].path, "bias");
    }
}
