//! Layer lists as data: what YAML describes (PyTorch's layers, parameter names and defaults),
//! the short label of each layer, and the check of parameters that are out of range. Shapes
//! are inferred in `infer.rs`; the named presets are in `presets.rs`.

use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// A size written as one number (`3`) or as `[height, width]`, as PyTorch accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Pair {
    /// The same value for height and width.
    Square(usize),
    /// `[height, width]`.
    Rect([usize; 2]),
}

impl Pair {
    /// As `[height, width]`.
    pub fn hw(self) -> [usize; 2] {
        match self {
            Self::Square(n) => [n, n],
            Self::Rect(p) => p,
        }
    }
}

/// One layer, with PyTorch's parameter names and defaults. Sizes that follow from the layer
/// before (`in_channels`, `in_features`, `num_features`) are inferred; when given they are
/// checked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerSpec {
    /// `nn.Conv2d`.
    Conv2d(Conv2dSpec),
    /// `nn.BatchNorm2d` after a convolution, `nn.BatchNorm1d` after a linear layer.
    Batchnorm(BatchNormSpec),
    /// `nn.MaxPool2d`.
    Maxpool2d(MaxPoolSpec),
    /// `nn.AvgPool2d`.
    Avgpool2d(AvgPoolSpec),
    /// `nn.AdaptiveAvgPool2d(output_size)`: averages each of `output_size` cells, cell `i`
    /// spanning rows `floor(i h / out_h)` up to `ceil((i + 1) h / out_h)` (and so for columns);
    /// `null` keeps that dimension (`[null, 1]` averages over the width only).
    AdaptiveAvgPool2d(AdaptiveAvgPoolSpec),
    /// `nn.Dropout`: zeroes single elements.
    Dropout(DropoutSpec),
    /// `nn.Dropout2d`: zeroes whole channels of an image activation.
    Dropout2d(DropoutSpec),
    /// `nn.Flatten`: `[c, h, w]` -> `[c * h * w]`.
    Flatten,
    /// `nn.Linear`.
    Linear(LinearSpec),
    /// `nn.ReLU`.
    Relu,
    /// `nn.LeakyReLU(negative_slope=0.01)`.
    LeakyRelu(LeakyReluSpec),
    /// `nn.ELU(alpha=1.0)`.
    Elu(EluSpec),
    /// `nn.GELU()` (exact, with erf).
    Gelu,
    /// `nn.Tanh`.
    Tanh,
    /// `nn.Sigmoid`.
    Sigmoid,
    /// `nn.Softmax(dim=1)` over flat features.
    Softmax,
    /// `nn.LogSoftmax(dim=1)` over flat features: the seeds' output layer. The training loss
    /// (cross-entropy on logits) then equals PyTorch's `NLLLoss` on these log-probabilities,
    /// because log-softmax leaves log-probabilities unchanged.
    LogSoftmax,
}

/// `nn.AvgPool2d(kernel_size, stride=kernel_size, padding=0, ceil_mode=False, count_include_pad=True)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AvgPoolSpec {
    /// Window size.
    #[schemars(schema_with = "positive_pair")]
    pub kernel_size: Pair,
    /// Stride; defaults to the kernel size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_positive_pair")]
    pub stride: Option<Pair>,
    /// Implicit zero padding on each side.
    #[serde(default = "zero")]
    pub padding: Pair,
    /// Round the output size up rather than down.
    #[serde(default)]
    pub ceil_mode: bool,
    /// Count the padding zeros in the average.
    #[serde(default = "yes")]
    pub count_include_pad: bool,
}

/// `nn.AdaptiveAvgPool2d(output_size)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdaptiveAvgPoolSpec {
    /// Output size: one number for both dimensions (`1`: global average pooling) or
    /// `[height, width]`, where `null` keeps the input's size in that dimension.
    #[schemars(schema_with = "output_size")]
    pub output_size: OutputSize,
}

/// An adaptive pool's output size as PyTorch accepts it: `1`, `[4, 1]` or `[null, 1]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum OutputSize {
    /// The same size for height and width.
    Square(usize),
    /// `[height, width]`; `None` (`null`) keeps the input's size.
    Rect([Option<usize>; 2]),
}

impl OutputSize {
    /// `[height, width]` for an input of `[height, width]` (`None` takes the input's size).
    pub fn resolve(self, [h, w]: [usize; 2]) -> [usize; 2] {
        match self {
            Self::Square(n) => [n, n],
            Self::Rect([oh, ow]) => [oh.unwrap_or(h), ow.unwrap_or(w)],
        }
    }

    /// The sizes given, `None` where the input's is kept.
    fn given(self) -> [Option<usize>; 2] {
        match self {
            Self::Square(n) => [Some(n), Some(n)],
            Self::Rect(p) => p,
        }
    }
}

/// `nn.LeakyReLU(negative_slope=0.01)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LeakyReluSpec {
    /// Slope for negative inputs.
    #[serde(default = "hundredth")]
    pub negative_slope: f64,
}

/// `nn.ELU(alpha=1.0)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EluSpec {
    /// Saturation value for negative inputs.
    #[serde(default = "one_f")]
    pub alpha: f64,
}

/// `nn.Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, bias=True)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Conv2dSpec {
    /// Checked against the input's channels when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_channels: Option<usize>,
    /// Number of filters.
    #[schemars(range(min = 1))]
    pub out_channels: usize,
    /// Kernel size.
    #[schemars(schema_with = "positive_pair")]
    pub kernel_size: Pair,
    /// Stride.
    #[serde(default = "one")]
    #[schemars(schema_with = "positive_pair")]
    pub stride: Pair,
    /// Zero padding on each side.
    #[serde(default = "zero")]
    pub padding: Pair,
    /// Dilation.
    #[serde(default = "one")]
    #[schemars(schema_with = "positive_pair")]
    pub dilation: Pair,
    /// Whether the layer adds a learned bias.
    #[serde(default = "yes")]
    pub bias: bool,
}

/// `nn.BatchNorm{1,2}d(num_features, eps=1e-5, momentum=0.1)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchNormSpec {
    /// Checked against the input's channels or features when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_features: Option<usize>,
    /// Added to the variance for stability.
    #[serde(default = "eps")]
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub eps: f64,
    /// Weight of the current batch in the running statistics (PyTorch's convention).
    #[serde(default = "momentum")]
    #[schemars(range(min = 0, max = 1))]
    pub momentum: f64,
}

/// `nn.MaxPool2d(kernel_size, stride=kernel_size, padding=0)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MaxPoolSpec {
    /// Window size.
    #[schemars(schema_with = "positive_pair")]
    pub kernel_size: Pair,
    /// Stride; defaults to the kernel size, as in PyTorch (burn's default differs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_positive_pair")]
    pub stride: Option<Pair>,
    /// Implicit padding on each side.
    #[serde(default = "zero")]
    pub padding: Pair,
    /// Round the output size up rather than down.
    #[serde(default)]
    pub ceil_mode: bool,
}

/// `nn.Dropout(p=0.5)` and `nn.Dropout2d(p=0.5)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DropoutSpec {
    /// Probability of zeroing an element while training.
    #[serde(default = "half")]
    #[schemars(range(min = 0, max = 1))]
    pub p: f64,
}

/// `nn.Linear(in_features, out_features, bias=True)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinearSpec {
    /// Checked against the input's features when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_features: Option<usize>,
    /// Output features; for the last layer, the number of classes.
    #[schemars(range(min = 1))]
    pub out_features: usize,
    /// Whether the layer adds a learned bias.
    #[serde(default = "yes")]
    pub bias: bool,
}

/// The JSON Schema of a [`Pair`] whose values must be at least 1 (kernel sizes, strides and
/// dilations; `check_layers` refuses 0).
fn positive_pair(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "anyOf": [
            {"type": "integer", "minimum": 1},
            {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 2, "maxItems": 2},
        ],
    })
}

/// The JSON Schema of an [`OutputSize`]: a positive integer, or two of them where either may
/// be `null`.
fn output_size(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "anyOf": [
            {"type": "integer", "minimum": 1},
            {
                "type": "array",
                "items": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}]},
                "minItems": 2,
                "maxItems": 2,
            },
        ],
    })
}

/// [`positive_pair`], or absent (`null`).
fn optional_positive_pair(generator: &mut SchemaGenerator) -> Schema {
    json_schema!({"anyOf": [positive_pair(generator), {"type": "null"}]})
}

pub(crate) fn one() -> Pair {
    Pair::Square(1)
}
pub(crate) fn zero() -> Pair {
    Pair::Square(0)
}
fn yes() -> bool {
    true
}
pub(crate) fn eps() -> f64 {
    1e-5
}
pub(crate) fn momentum() -> f64 {
    0.1
}
fn half() -> f64 {
    0.5
}
fn hundredth() -> f64 {
    0.01
}
fn one_f() -> f64 {
    1.0
}

impl fmt::Display for LayerSpec {
    /// A short label, PyTorch-like, leaving out parameters at their defaults:
    /// `conv2d 16, 3x3, padding 1`, `maxpool2d 2x2`, `adaptive_avg_pool2d (None, 1)`,
    /// `linear 100`, `dropout 0.5`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Conv2d(c) => write!(
                f,
                "conv2d {}, {}{}",
                c.out_channels,
                kernel(c.kernel_size),
                extra(&[
                    (c.stride.hw() != [1, 1], "stride", pair(c.stride)),
                    (c.padding.hw() != [0, 0], "padding", pair(c.padding)),
                    (c.dilation.hw() != [1, 1], "dilation", pair(c.dilation)),
                    (!c.bias, "bias", "false".into()),
                ])
            ),
            Self::Batchnorm(_) => write!(f, "batchnorm"),
            Self::Maxpool2d(p) => {
                let window = (p.kernel_size, p.stride, p.padding, p.ceil_mode);
                write!(f, "maxpool2d {}", pool_label(window, &[]))
            }
            Self::Avgpool2d(p) => {
                let window = (p.kernel_size, p.stride, p.padding, p.ceil_mode);
                let more = [(!p.count_include_pad, "count_include_pad", "false".to_owned())];
                write!(f, "avgpool2d {}", pool_label(window, &more))
            }
            // `1x1`, `4x2`; with a kept dimension PyTorch's own form, `(None, 1)`.
            Self::AdaptiveAvgPool2d(a) => match a.output_size.given() {
                [Some(h), Some(w)] => write!(f, "adaptive_avg_pool2d {h}x{w}"),
                [h, w] => {
                    let size = |v: Option<usize>| v.map_or_else(|| "None".to_owned(), |n| n.to_string());
                    write!(f, "adaptive_avg_pool2d ({}, {})", size(h), size(w))
                }
            },
            Self::Dropout(d) => write!(f, "dropout {}", d.p),
            Self::Dropout2d(d) => write!(f, "dropout2d {}", d.p),
            Self::Flatten => write!(f, "flatten"),
            Self::Linear(l) => write!(f, "linear {}{}", l.out_features, extra(&[(!l.bias, "bias", "false".into())])),
            Self::Relu => write!(f, "relu"),
            Self::LeakyRelu(l) => write!(f, "leaky_relu {}", l.negative_slope),
            Self::Elu(e) => write!(f, "elu {}", e.alpha),
            Self::Gelu => write!(f, "gelu"),
            Self::Tanh => write!(f, "tanh"),
            Self::Sigmoid => write!(f, "sigmoid"),
            Self::Softmax => write!(f, "softmax"),
            Self::LogSoftmax => write!(f, "log_softmax"),
        }
    }
}

/// Records every out-of-range layer parameter, at `[i].<layer>.<key>` (relative to the
/// `layers:` list), before shapes are inferred.
pub fn check_layers(layers: &[LayerSpec], issues: &mut kindling_core::Issues) {
    let positive = |issues: &mut kindling_core::Issues, at: &str, key: &str, p: Pair| {
        issues.require(p.hw().iter().all(|&v| v >= 1), &format!("{at}.{key}"), "must be at least 1");
    };
    for (i, layer) in layers.iter().enumerate() {
        match layer {
            LayerSpec::Conv2d(c) => {
                let at = format!("[{i}].conv2d");
                issues.require(c.out_channels >= 1, &format!("{at}.out_channels"), "must be at least 1");
                for (key, p) in [("kernel_size", c.kernel_size), ("stride", c.stride), ("dilation", c.dilation)] {
                    positive(issues, &at, key, p);
                }
            }
            LayerSpec::Maxpool2d(MaxPoolSpec { kernel_size, stride, .. })
            | LayerSpec::Avgpool2d(AvgPoolSpec { kernel_size, stride, .. }) => {
                let at = format!(
                    "[{i}].{}",
                    if matches!(layer, LayerSpec::Maxpool2d(_)) { "maxpool2d" } else { "avgpool2d" }
                );
                positive(issues, &at, "kernel_size", *kernel_size);
                if let Some(s) = stride {
                    positive(issues, &at, "stride", *s);
                }
            }
            LayerSpec::AdaptiveAvgPool2d(a) => issues.require(
                a.output_size.given().iter().all(|v| v.is_none_or(|n| n >= 1)),
                &format!("[{i}].adaptive_avg_pool2d.output_size"),
                "must be at least 1 (or null to keep the input's size)",
            ),
            LayerSpec::Dropout(d) | LayerSpec::Dropout2d(d) => {
                let name = if matches!(layer, LayerSpec::Dropout(_)) { "dropout" } else { "dropout2d" };
                issues.require(
                    (0.0..=1.0).contains(&d.p),
                    &format!("[{i}].{name}.p"),
                    format!("must be in [0, 1], got {}", d.p),
                );
            }
            LayerSpec::Linear(l) => {
                issues.require(l.out_features >= 1, &format!("[{i}].linear.out_features"), "must be at least 1");
            }
            LayerSpec::Batchnorm(b) => {
                issues.require(b.eps > 0.0, &format!("[{i}].batchnorm.eps"), "must be positive");
                issues.require(
                    (0.0..=1.0).contains(&b.momentum),
                    &format!("[{i}].batchnorm.momentum"),
                    "must be in [0, 1]",
                );
            }
            LayerSpec::Elu(e) => issues.require(e.alpha.is_finite(), &format!("[{i}].elu.alpha"), "must be a number"),
            LayerSpec::LeakyRelu(l) => issues.require(
                l.negative_slope.is_finite(),
                &format!("[{i}].leaky_relu.negative_slope"),
                "must be a number",
            ),
            _ => {}
        }
    }
}

/// A pair as written: `2` or `3x1`.
fn pair(p: Pair) -> String {
    match p {
        Pair::Square(n) => n.to_string(),
        Pair::Rect([h, w]) => format!("{h}x{w}"),
    }
}

/// A kernel size, always `h x w`.
fn kernel(p: Pair) -> String {
    let [h, w] = p.hw();
    format!("{h}x{w}")
}

/// `, key value` for each setting whose flag is set.
fn extra(parts: &[(bool, &str, String)]) -> String {
    parts.iter().filter(|(show, _, _)| *show).map(|(_, k, v)| format!(", {k} {v}")).collect()
}

/// The label of a pooling window `(kernel, stride, padding, ceil_mode)`, with `more` settings
/// shown when their flag is set.
fn pool_label(
    (kernel_size, stride, padding, ceil_mode): (Pair, Option<Pair>, Pair, bool),
    more: &[(bool, &str, String)],
) -> String {
    let mut parts = vec![
        (stride.is_some_and(|s| s.hw() != kernel_size.hw()), "stride", stride.map(pair).unwrap_or_default()),
        (padding.hw() != [0, 0], "padding", pair(padding)),
        (ceil_mode, "ceil_mode", "true".to_owned()),
    ];
    parts.extend(more.iter().cloned());
    format!("{}{}", kernel(kernel_size), extra(&parts))
}
