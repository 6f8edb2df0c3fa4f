//! Layer lists as data: what YAML describes, with shapes inferred and checked before any
//! tensor exists.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A size written as one number (`3`) or as `[height, width]`, as PyTorch accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AvgPoolSpec {
    /// Window size.
    pub kernel_size: Pair,
    /// Stride; defaults to the kernel size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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

/// `nn.LeakyReLU(negative_slope=0.01)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeakyReluSpec {
    /// Slope for negative inputs.
    #[serde(default = "hundredth")]
    pub negative_slope: f64,
}

/// `nn.ELU(alpha=1.0)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EluSpec {
    /// Saturation value for negative inputs.
    #[serde(default = "one_f")]
    pub alpha: f64,
}

/// `nn.Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, bias=True)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conv2dSpec {
    /// Checked against the input's channels when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_channels: Option<usize>,
    /// Number of filters.
    pub out_channels: usize,
    /// Kernel size.
    pub kernel_size: Pair,
    /// Stride.
    #[serde(default = "one")]
    pub stride: Pair,
    /// Zero padding on each side.
    #[serde(default = "zero")]
    pub padding: Pair,
    /// Dilation.
    #[serde(default = "one")]
    pub dilation: Pair,
    /// Whether the layer adds a learned bias.
    #[serde(default = "yes")]
    pub bias: bool,
}

/// `nn.BatchNorm{1,2}d(num_features, eps=1e-5, momentum=0.1)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchNormSpec {
    /// Checked against the input's channels or features when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_features: Option<usize>,
    /// Added to the variance for stability.
    #[serde(default = "eps")]
    pub eps: f64,
    /// Weight of the current batch in the running statistics (PyTorch's convention).
    #[serde(default = "momentum")]
    pub momentum: f64,
}

/// `nn.MaxPool2d(kernel_size, stride=kernel_size, padding=0)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaxPoolSpec {
    /// Window size.
    pub kernel_size: Pair,
    /// Stride; defaults to the kernel size, as in PyTorch (burn's default differs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stride: Option<Pair>,
    /// Implicit padding on each side.
    #[serde(default = "zero")]
    pub padding: Pair,
    /// Round the output size up rather than down.
    #[serde(default)]
    pub ceil_mode: bool,
}

/// `nn.Dropout(p=0.5)` and `nn.Dropout2d(p=0.5)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropoutSpec {
    /// Probability of zeroing an element while training.
    #[serde(default = "half")]
    pub p: f64,
}

/// `nn.Linear(in_features, out_features, bias=True)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearSpec {
    /// Checked against the input's features when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_features: Option<usize>,
    /// Output features; for the last layer, the number of classes.
    pub out_features: usize,
    /// Whether the layer adds a learned bias.
    #[serde(default = "yes")]
    pub bias: bool,
}

fn one() -> Pair {
    Pair::Square(1)
}
fn zero() -> Pair {
    Pair::Square(0)
}
fn yes() -> bool {
    true
}
fn eps() -> f64 {
    1e-5
}
fn momentum() -> f64 {
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
    /// `conv2d 16, 3x3, padding 1`, `maxpool2d 2x2`, `linear 100`, `dropout 0.5`.
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

/// The shape of one sample between layers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `[channels, height, width]`.
    Image([usize; 3]),
    /// `[features]`.
    Flat(usize),
}

impl Shape {
    /// From a data set's sample shape.
    pub fn from_dims(dims: &[usize]) -> Option<Self> {
        match *dims {
            [c, h, w] => Some(Self::Image([c, h, w])),
            [n] => Some(Self::Flat(n)),
            _ => None,
        }
    }

    /// Number of values.
    pub fn numel(&self) -> usize {
        match self {
            Self::Image([c, h, w]) => c * h * w,
            Self::Flat(n) => *n,
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Image([c, h, w]) => write!(f, "{c} x {h} x {w}"),
            Self::Flat(n) => write!(f, "{n}"),
        }
    }
}

/// A layer's inferred shapes and parameter count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerInfo {
    /// The layer's input shape.
    pub input: Shape,
    /// The layer's output shape.
    pub output: Shape,
    /// Trainable parameters.
    pub params: usize,
}

/// A shape problem: the index of the layer and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeError {
    /// Index into the layer list.
    pub layer: usize,
    /// One sentence.
    pub message: String,
}

/// Infers every layer's shapes from the input shape, reporting every inconsistency that does
/// not depend on an earlier one (inference continues with the declared size where one is given).
pub fn infer(layers: &[LayerSpec], input: &Shape) -> Result<Vec<LayerInfo>, Vec<ShapeError>> {
    let mut infos = Vec::with_capacity(layers.len());
    let mut errors = Vec::new();
    let mut cur = input.clone();
    for (i, layer) in layers.iter().enumerate() {
        match infer_one(layer, &cur) {
            Ok((output, params)) => {
                infos.push(LayerInfo { input: cur.clone(), output: output.clone(), params });
                cur = output;
            }
            Err(message) => {
                errors.push(ShapeError { layer: i, message });
                // Later layers would only repeat this problem.
                break;
            }
        }
    }
    if errors.is_empty() { Ok(infos) } else { Err(errors) }
}

fn infer_one(layer: &LayerSpec, input: &Shape) -> Result<(Shape, usize), String> {
    let image = |what: &str| match input {
        Shape::Image(d) => Ok(*d),
        Shape::Flat(n) => Err(format!(
            "{what} needs an image input [channels, height, width], the layer before gives {n} features (is a flatten misplaced?)"
        )),
    };
    let flat = |what: &str| match input {
        Shape::Flat(n) => Ok(*n),
        Shape::Image(_) => {
            Err(format!("{what} needs flat features, the layer before gives {input} (add a flatten before it)"))
        }
    };
    Ok(match layer {
        LayerSpec::Conv2d(c) => {
            let [ch, h, w] = image("conv2d")?;
            expect(c.in_channels, ch, "conv2d expects", "input channels")?;
            let [kh, kw] = c.kernel_size.hw();
            let oh = out_size(h, kh, c.stride.hw()[0], c.padding.hw()[0], c.dilation.hw()[0]);
            let ow = out_size(w, kw, c.stride.hw()[1], c.padding.hw()[1], c.dilation.hw()[1]);
            let (Some(oh), Some(ow)) = (oh, ow) else {
                return Err(format!("conv2d with kernel {kh} x {kw} does not fit a {h} x {w} input"));
            };
            let params = c.out_channels * ch * kh * kw + if c.bias { c.out_channels } else { 0 };
            (Shape::Image([c.out_channels, oh, ow]), params)
        }
        LayerSpec::Batchnorm(b) => {
            let n = match input {
                Shape::Image([c, _, _]) => *c,
                Shape::Flat(n) => *n,
            };
            expect(b.num_features, n, "batchnorm expects", "features")?;
            (input.clone(), 2 * n)
        }
        LayerSpec::Maxpool2d(p) => {
            let (what, window) = ("maxpool2d", (p.kernel_size, p.stride, p.padding, p.ceil_mode));
            (pool_shape(what, image(what)?, window)?, 0)
        }
        LayerSpec::Avgpool2d(p) => {
            let (what, window) = ("avgpool2d", (p.kernel_size, p.stride, p.padding, p.ceil_mode));
            (pool_shape(what, image(what)?, window)?, 0)
        }
        LayerSpec::Dropout2d(_) => {
            image("dropout2d")?;
            (input.clone(), 0)
        }
        LayerSpec::Softmax => (Shape::Flat(flat("softmax")?), 0),
        LayerSpec::LogSoftmax => (Shape::Flat(flat("log_softmax")?), 0),
        LayerSpec::Dropout(_)
        | LayerSpec::Relu
        | LayerSpec::LeakyRelu(_)
        | LayerSpec::Elu(_)
        | LayerSpec::Gelu
        | LayerSpec::Tanh
        | LayerSpec::Sigmoid => (input.clone(), 0),
        LayerSpec::Flatten => (Shape::Flat(input.numel()), 0),
        LayerSpec::Linear(l) => {
            let n = flat("linear")?;
            expect(l.in_features, n, "linear expects", "inputs")?;
            (Shape::Flat(l.out_features), n * l.out_features + if l.bias { l.out_features } else { 0 })
        }
    })
}

/// The output of a pooling window `(kernel, stride, padding, ceil_mode)` over `[c, h, w]`.
fn pool_shape(what: &str, [ch, h, w]: [usize; 3], window: (Pair, Option<Pair>, Pair, bool)) -> Result<Shape, String> {
    let (kernel, stride, padding, ceil) = window;
    let [kh, kw] = kernel.hw();
    let [sh, sw] = stride.unwrap_or(kernel).hw();
    let [ph, pw] = padding.hw();
    if 2 * ph > kh || 2 * pw > kw {
        return Err(format!("{what} padding must be at most half the kernel size"));
    }
    match (pool_size(h, kh, sh, ph, ceil), pool_size(w, kw, sw, pw, ceil)) {
        (Some(oh), Some(ow)) => Ok(Shape::Image([ch, oh, ow])),
        _ => Err(format!("{what} with kernel {kh} x {kw} does not fit a {h} x {w} input")),
    }
}

/// PyTorch's pooling output size: floor or ceil of `(size + 2 padding - kernel) / stride` plus
/// one, where with `ceil_mode` the last window must start inside the input or its left padding.
fn pool_size(size: usize, kernel: usize, stride: usize, padding: usize, ceil: bool) -> Option<usize> {
    let padded = size + 2 * padding;
    if padded < kernel || stride == 0 {
        return None;
    }
    let span = padded - kernel;
    let mut out = if ceil { span.div_ceil(stride) + 1 } else { span / stride + 1 };
    if ceil && (out - 1) * stride >= size + padding {
        out -= 1;
    }
    Some(out)
}

/// `(size + 2 padding - dilation (kernel - 1) - 1) / stride + 1`, or `None` when nothing fits.
fn out_size(size: usize, kernel: usize, stride: usize, padding: usize, dilation: usize) -> Option<usize> {
    let span = dilation * (kernel.max(1) - 1) + 1;
    let padded = size + 2 * padding;
    (padded >= span && stride > 0).then(|| (padded - span) / stride + 1)
}

fn expect(declared: Option<usize>, actual: usize, what: &str, unit: &str) -> Result<(), String> {
    match declared {
        Some(d) if d != actual => Err(format!("{what} {d} {unit}, the layer before gives {actual}")),
        _ => Ok(()),
    }
}

/// The layers of a named preset for `classes` outputs, or `None` for an unknown name. Sizes
/// that follow from the input are inferred, so presets fit any input large enough.
pub fn preset(name: &str, classes: usize) -> Option<Vec<LayerSpec>> {
    let strided = |out, k, s, p| {
        LayerSpec::Conv2d(Conv2dSpec {
            in_channels: None,
            out_channels: out,
            kernel_size: Pair::Square(k),
            stride: Pair::Square(s),
            padding: Pair::Square(p),
            dilation: one(),
            bias: true,
        })
    };
    let conv = |out, k, p| strided(out, k, 1, p);
    let max_pool = || {
        LayerSpec::Maxpool2d(MaxPoolSpec {
            kernel_size: Pair::Square(2),
            stride: None,
            padding: zero(),
            ceil_mode: false,
        })
    };
    let avg_pool = || {
        LayerSpec::Avgpool2d(AvgPoolSpec {
            kernel_size: Pair::Square(2),
            stride: None,
            padding: zero(),
            ceil_mode: false,
            count_include_pad: true,
        })
    };
    let linear = |out| LayerSpec::Linear(LinearSpec { in_features: None, out_features: out, bias: true });
    let bn = || LayerSpec::Batchnorm(BatchNormSpec { num_features: None, eps: eps(), momentum: momentum() });
    let dropout = |p| LayerSpec::Dropout(DropoutSpec { p });
    let dropout2d = |p| LayerSpec::Dropout2d(DropoutSpec { p });
    use LayerSpec::{Flatten, Relu, Tanh};
    Some(match name {
        // Experiment 2: conv16-conv32-pool-conv64-pool-fc100-fc10.
        "mnist_cnn" => vec![
            conv(16, 3, 1),
            Relu,
            conv(32, 3, 1),
            Relu,
            max_pool(),
            conv(64, 3, 1),
            Relu,
            max_pool(),
            Flatten,
            linear(100),
            Relu,
            linear(classes),
        ],
        // The same with batch norm after every convolution and the hidden linear layer.
        "mnist_cnn_bn" => vec![
            conv(16, 3, 1),
            bn(),
            Relu,
            conv(32, 3, 1),
            bn(),
            Relu,
            max_pool(),
            conv(64, 3, 1),
            bn(),
            Relu,
            max_pool(),
            Flatten,
            linear(100),
            bn(),
            Relu,
            linear(classes),
        ],
        // The same with Dropout2d(0.2) after each pooling.
        "mnist_cnn_dropout2d" => vec![
            conv(16, 3, 1),
            Relu,
            conv(32, 3, 1),
            Relu,
            max_pool(),
            dropout2d(0.2),
            conv(64, 3, 1),
            Relu,
            max_pool(),
            dropout2d(0.2),
            Flatten,
            linear(100),
            Relu,
            linear(classes),
        ],
        // Experiment 3: (conv-BN-ReLU x2, max-pool) x3, (FC-BN-ReLU-Dropout) x2, FC.
        "vgg3" => {
            let mut layers = Vec::new();
            for width in [32, 64, 128] {
                layers.extend([conv(width, 3, 1), bn(), Relu, conv(width, 3, 1), bn(), Relu, max_pool()]);
            }
            layers.push(Flatten);
            for width in [256, 128] {
                layers.extend([linear(width), bn(), Relu, dropout(0.5)]);
            }
            layers.push(linear(classes));
            layers
        }
        // Experiment 1: the stereo direction CNN on 4 x 257 x 382 STFT features: conv 7x7 stride
        // 2 -> pool -> conv 3x3 -> pool -> conv 3x3 -> pool (64, 64, 32 channels, no padding:
        // 32 x 14 x 22 = 9,856 features), then linear 256, 256, 64 with ReLU and dropout 0.5, and
        // the class layer with log-softmax (the seed trained it with NLLLoss).
        "stereo_cnn" => {
            let mut layers = vec![
                strided(64, 7, 2, 0),
                Relu,
                max_pool(),
                conv(64, 3, 0),
                Relu,
                max_pool(),
                conv(32, 3, 0),
                Relu,
                max_pool(),
                Flatten,
            ];
            for width in [256, 256, 64] {
                layers.extend([linear(width), Relu, dropout(0.5)]);
            }
            layers.extend([linear(classes), LayerSpec::LogSoftmax]);
            layers
        }
        // Experiment 4: a 3072-128-10 perceptron for 3 x 32 x 32 inputs, and its variants.
        "mlp" => vec![Flatten, linear(128), Relu, linear(classes)],
        "dropout_mlp" => vec![Flatten, linear(128), Relu, dropout(0.5), linear(classes)],
        "bn_mlp" => vec![Flatten, linear(128), bn(), Relu, linear(classes)],
        // Experiment 5: LeNet-5 with tanh and average pooling; padding 2 lets 28 x 28 inputs
        // reach the classic 16 x 5 x 5 before the first fully connected layer.
        "lenet5" => vec![
            conv(6, 5, 2),
            Tanh,
            avg_pool(),
            conv(16, 5, 0),
            Tanh,
            avg_pool(),
            Flatten,
            linear(120),
            Tanh,
            linear(84),
            Tanh,
            linear(classes),
        ],
        // Experiment 5's variant with batch norm and dropout 0.3 (seed 004; the seed also
        // switches to Xavier init, which is the model stage's `init:`). Batch norm sits between
        // each convolution or hidden linear layer and its tanh, as in `mnist_cnn_bn` and
        // `vgg3`; dropout follows the tanh of each hidden linear layer, so it drops inputs of
        // the second and the class layer, as the seed's `dropout(tanh(bn(fc(x))))` does.
        "lenet5_bn" => vec![
            conv(6, 5, 2),
            bn(),
            Tanh,
            avg_pool(),
            conv(16, 5, 0),
            bn(),
            Tanh,
            avg_pool(),
            Flatten,
            linear(120),
            bn(),
            Tanh,
            dropout(0.3),
            linear(84),
            bn(),
            Tanh,
            dropout(0.3),
            linear(classes),
        ],
        _ => return None,
    })
}

/// Names accepted by [`preset`].
pub const PRESETS: &[&str] = &[
    "mnist_cnn",
    "mnist_cnn_bn",
    "mnist_cnn_dropout2d",
    "vgg3",
    "stereo_cnn",
    "mlp",
    "dropout_mlp",
    "bn_mlp",
    "lenet5",
    "lenet5_bn",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn check(yaml_layers: serde_json::Value, input: Shape, expected: Result<&str, &str>) {
        let layers: Vec<LayerSpec> = serde_json::from_value(yaml_layers).unwrap();
        let got = infer(&layers, &input)
            .map(|infos| infos.iter().map(|i| i.output.to_string()).collect::<Vec<_>>().join(" | "))
            .map_err(|e| format!("layers[{}]: {}", e[0].layer, e[0].message));
        assert_eq!(got.as_deref().map_err(String::as_str), expected);
    }

    #[test]
    fn mnist_cnn_shapes_and_parameters_match_pytorch() {
        let layers = preset("mnist_cnn", 10).unwrap();
        let infos = infer(&layers, &Shape::Image([1, 28, 28])).unwrap();
        assert_eq!(infos[8].output, Shape::Flat(3136));
        assert_eq!(infos.last().unwrap().output, Shape::Flat(10));
        // sum(p.numel() for p in model.parameters()) of the same PyTorch model.
        assert_eq!(infos.iter().map(|i| i.params).sum::<usize>(), 160 + 4640 + 18496 + 313_700 + 1010);
    }

    #[test]
    fn every_preset_fits_grey_and_colour_inputs_and_known_counts_match() {
        // The stereo CNN is sized for spectrograms (its own test below).
        for name in PRESETS.iter().filter(|n| **n != "stereo_cnn") {
            for input in [Shape::Image([1, 28, 28]), Shape::Image([3, 32, 32])] {
                let infos = infer(&preset(name, 10).unwrap(), &input).unwrap_or_else(|e| panic!("{name}: {e:?}"));
                assert_eq!(infos.last().unwrap().output, Shape::Flat(10), "{name}");
            }
        }
        let params =
            |name, input| infer(&preset(name, 10).unwrap(), &input).unwrap().iter().map(|i| i.params).sum::<usize>();
        // LeNet-5's classic 61,706 parameters; the 3072-128-10 perceptron's 394,634.
        assert_eq!(params("lenet5", Shape::Image([1, 28, 28])), 61_706);
        // The same plus batch norm's weight and bias per channel or feature: 2 x (6 + 16 + 120
        // + 84) = 452 (running statistics are buffers, not parameters, in PyTorch too).
        assert_eq!(params("lenet5_bn", Shape::Image([1, 28, 28])), 62_158);
        assert_eq!(params("mlp", Shape::Image([3, 32, 32])), 3072 * 128 + 128 + 128 * 10 + 10);
        assert_eq!(params("bn_mlp", Shape::Image([3, 32, 32])), params("mlp", Shape::Image([3, 32, 32])) + 2 * 128);
        assert!(preset("nope", 10).is_none());
    }

    #[test]
    fn stereo_cnn_matches_the_seeds_network() {
        let layers = preset("stereo_cnn", 11).unwrap();
        let infos = infer(&layers, &Shape::Image([4, 257, 382])).unwrap();
        let shapes: Vec<String> = infos.iter().map(|i| i.output.to_string()).collect();
        assert_eq!(
            shapes[..10],
            [
                "64 x 126 x 188",
                "64 x 126 x 188",
                "64 x 63 x 94",
                "64 x 61 x 92",
                "64 x 61 x 92",
                "64 x 30 x 46",
                "32 x 28 x 44",
                "32 x 28 x 44",
                "32 x 14 x 22",
                "9856"
            ]
        );
        assert_eq!(infos.last().unwrap().output, Shape::Flat(11));
        assert!(matches!(layers.last(), Some(LayerSpec::LogSoftmax)));
        // The PyTorch module's sum(p.numel()): convs 12,608 + 36,928 + 18,464; linears
        // 2,523,392 + 65,792 + 16,448 + 715.
        assert_eq!(infos.iter().map(|i| i.params).sum::<usize>(), 2_674_347);
    }

    #[test]
    fn shapes_follow_pytorch_formulas() {
        check(
            serde_json::json!([{"conv2d": {"out_channels": 8, "kernel_size": 7, "stride": 2, "padding": 3}}, {"maxpool2d": {"kernel_size": 3, "stride": 2, "padding": 1}}]),
            Shape::Image([4, 257, 382]),
            Ok("8 x 129 x 191 | 8 x 65 x 96"),
        );
        check(
            serde_json::json!([{"conv2d": {"out_channels": 2, "kernel_size": [3, 1], "dilation": 2}}, "flatten", {"batchnorm": {}}]),
            Shape::Image([1, 10, 10]),
            Ok("2 x 6 x 10 | 120 | 120"),
        );
    }

    #[test]
    fn pooling_rounds_as_pytorch_does() {
        // nn.MaxPool2d(3, 2, ceil_mode=True) on 6 x 6: ceil(3/2) + 1 = 3; floor gives 2.
        check(
            serde_json::json!([{"maxpool2d": {"kernel_size": 3, "stride": 2, "ceil_mode": true}}]),
            Shape::Image([1, 6, 6]),
            Ok("1 x 3 x 3"),
        );
        check(
            serde_json::json!([{"avgpool2d": {"kernel_size": 3, "stride": 2}}]),
            Shape::Image([1, 6, 6]),
            Ok("1 x 2 x 2"),
        );
        // With padding 1 on 5 x 5, kernel 2, stride 2: ceil(5/2) + 1 = 4, but the fourth window
        // would start at 6, in the right padding (6 >= 5 + 1), so PyTorch drops it: 3.
        check(
            serde_json::json!([{"avgpool2d": {"kernel_size": 2, "padding": 1, "ceil_mode": true}}]),
            Shape::Image([1, 5, 5]),
            Ok("1 x 3 x 3"),
        );
        // Kernel 2, stride 2 on 5 x 5 without padding: ceil(3/2) + 1 = 3, last start 4 < 5: 3.
        check(
            serde_json::json!([{"maxpool2d": {"kernel_size": 2, "ceil_mode": true}}]),
            Shape::Image([1, 5, 5]),
            Ok("1 x 3 x 3"),
        );
        check(
            serde_json::json!(["tanh", "sigmoid", "gelu", {"leaky_relu": {}}, {"elu": {"alpha": 0.5}}, {"dropout2d": {"p": 0.2}}, "flatten", "log_softmax"]),
            Shape::Image([2, 3, 3]),
            Ok("2 x 3 x 3 | 2 x 3 x 3 | 2 x 3 x 3 | 2 x 3 x 3 | 2 x 3 x 3 | 2 x 3 x 3 | 18 | 18"),
        );
        check(
            serde_json::json!(["flatten", {"dropout2d": {}}]),
            Shape::Image([2, 3, 3]),
            Err(
                "layers[1]: dropout2d needs an image input [channels, height, width], the layer before gives 18 features (is a flatten misplaced?)",
            ),
        );
    }

    #[test]
    fn inconsistencies_name_the_layer_and_both_sizes() {
        check(
            serde_json::json!(["flatten", {"linear": {"in_features": 3136, "out_features": 10}}]),
            Shape::Image([32, 14, 14]),
            Err("layers[1]: linear expects 3136 inputs, the layer before gives 6272"),
        );
        check(
            serde_json::json!([{"linear": {"out_features": 10}}]),
            Shape::Image([1, 28, 28]),
            Err("layers[0]: linear needs flat features, the layer before gives 1 x 28 x 28 (add a flatten before it)"),
        );
        check(
            serde_json::json!([{"conv2d": {"out_channels": 1, "kernel_size": 5}}]),
            Shape::Image([1, 3, 3]),
            Err("layers[0]: conv2d with kernel 5 x 5 does not fit a 3 x 3 input"),
        );
    }
}
