//! Shape inference: every layer's output shape and parameter count from the input's, or an
//! error naming the layer that does not fit and both sizes, with PyTorch's formulas.

use std::fmt;

use crate::spec::{LayerSpec, Pair};

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

/// Bytes that training a model of `infos` on samples of `input` with batches of `batch` needs
/// at least, in f32: each parameter with its gradient and two optimizer moments, and the
/// batch's input with every layer's output and its gradient. An estimate from below (no
/// workspace buffers), so a configuration over it cannot fit.
pub fn training_bytes(input: &Shape, infos: &[LayerInfo], batch: usize) -> u128 {
    let params: u128 = infos.iter().map(|i| i.params as u128).sum();
    let activations: u128 = input.numel() as u128 + infos.iter().map(|i| i.output.numel() as u128).sum::<u128>();
    4 * (4 * params + 2 * batch as u128 * activations)
}

/// An error message when [`training_bytes`] exceeds `memory` bytes.
pub fn check_fits(input: &Shape, infos: &[LayerInfo], batch: usize, memory: u64) -> Result<(), String> {
    let needed = training_bytes(input, infos, batch);
    if needed <= u128::from(memory) {
        return Ok(());
    }
    let params: usize = infos.iter().map(|i| i.params).sum();
    Err(format!(
        "training this model ({params} parameters, samples of {input}) with batches of {batch} needs at least {}, \
         more than this machine's {} of memory",
        gib(needed),
        gib(u128::from(memory))
    ))
}

/// [`check_fits`] against this machine's physical memory (no check where it cannot be read):
/// what the model stage asks before it builds a model and the train stage before its first
/// batch, so a configuration that cannot fit is an error rather than an abort.
pub fn fits_in_memory(input: &Shape, infos: &[LayerInfo], batch: usize) -> Result<(), String> {
    kindling_core::physical_memory().map_or(Ok(()), |memory| check_fits(input, infos, batch, memory))
}

/// Bytes as GiB with one decimal (TiB past 1024 GiB).
fn gib(bytes: u128) -> String {
    let g = bytes as f64 / f64::from(1u32 << 30);
    if g >= 1024.0 { format!("{:.1} TiB", g / 1024.0) } else { format!("{g:.1} GiB") }
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
        LayerSpec::AdaptiveAvgPool2d(a) => {
            let [ch, h, w] = image("adaptive_avg_pool2d")?;
            let [oh, ow] = a.output_size.resolve([h, w]);
            if oh == 0 || ow == 0 {
                return Err("adaptive_avg_pool2d output_size must be at least 1".to_owned());
            }
            (Shape::Image([ch, oh, ow]), 0)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed's 20000 x 20000 image through mnist_cnn: a 3.3 TB linear layer is refused by
    /// arithmetic, before anything is allocated; the model on its own data fits.
    #[test]
    fn a_model_that_cannot_fit_in_memory_is_refused_before_it_is_built() {
        let layers = crate::preset("mnist_cnn", 10).unwrap();
        let small = Shape::Image([1, 28, 28]);
        let small_infos = infer(&layers, &small).unwrap();
        assert!(check_fits(&small, &small_infos, 64, 24 << 30).is_ok());
        let huge = Shape::Image([3, 20_000, 20_000]);
        let e = check_fits(&huge, &infer(&layers, &huge).unwrap(), 1, 24 << 30).unwrap_err();
        assert!(e.contains("TiB, more than this machine's 24.0 GiB of memory"), "{e}");
        // Batches count: the same model at a batch that cannot fit.
        let per_sample = training_bytes(&small, &small_infos, 2) - training_bytes(&small, &small_infos, 1);
        let e = check_fits(&small, &small_infos, 1 + (1 << 30) / per_sample as usize, 1 << 30).unwrap_err();
        assert!(e.contains("with batches of"), "{e}");
    }

    fn check(yaml_layers: serde_json::Value, input: Shape, expected: Result<&str, &str>) {
        let layers: Vec<LayerSpec> = serde_json::from_value(yaml_layers).unwrap();
        let got = infer(&layers, &input)
            .map(|infos| infos.iter().map(|i| i.output.to_string()).collect::<Vec<_>>().join(" | "))
            .map_err(|e| format!("layers[{}]: {}", e[0].layer, e[0].message));
        assert_eq!(got.as_deref().map_err(String::as_str), expected);
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
    fn adaptive_pooling_gives_its_output_size_and_keeps_null_dimensions() {
        check(
            serde_json::json!([{"adaptive_avg_pool2d": {"output_size": 1}}, "flatten"]),
            Shape::Image([8, 33, 47]),
            Ok("8 x 1 x 1 | 8"),
        );
        check(
            serde_json::json!([{"adaptive_avg_pool2d": {"output_size": [null, 1]}}, {"adaptive_avg_pool2d": {"output_size": [3, null]}}]),
            Shape::Image([4, 32, 47]),
            Ok("4 x 32 x 1 | 4 x 3 x 1"),
        );
        let label = |size: serde_json::Value| {
            let layer: LayerSpec =
                serde_json::from_value(serde_json::json!({"adaptive_avg_pool2d": {"output_size": size}})).unwrap();
            layer.to_string()
        };
        assert_eq!(label(serde_json::json!(1)), "adaptive_avg_pool2d 1x1");
        assert_eq!(label(serde_json::json!([4, 2])), "adaptive_avg_pool2d 4x2");
        assert_eq!(label(serde_json::json!([null, 1])), "adaptive_avg_pool2d (None, 1)");
        // Larger than the input is allowed, as in PyTorch (cells then overlap).
        check(
            serde_json::json!([{"adaptive_avg_pool2d": {"output_size": [5, 2]}}]),
            Shape::Image([1, 3, 2]),
            Ok("1 x 5 x 2"),
        );
        check(
            serde_json::json!(["flatten", {"adaptive_avg_pool2d": {"output_size": 1}}]),
            Shape::Image([2, 3, 3]),
            Err(
                "layers[1]: adaptive_avg_pool2d needs an image input [channels, height, width], the layer before gives 18 features (is a flatten misplaced?)",
            ),
        );
        // A size of 0 is refused when the configuration is checked, and by inference.
        let layers: Vec<LayerSpec> =
            serde_json::from_value(serde_json::json!(["relu", {"adaptive_avg_pool2d": {"output_size": [0, null]}}]))
                .unwrap();
        let mut issues = kindling_core::Issues::under("layers");
        crate::spec::check_layers(&layers, &mut issues);
        let issues = issues.into_vec();
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].path, "layers[1].adaptive_avg_pool2d.output_size");
        check(
            serde_json::json!([{"adaptive_avg_pool2d": {"output_size": [0, null]}}]),
            Shape::Image([2, 3, 3]),
            Err("layers[0]: adaptive_avg_pool2d output_size must be at least 1"),
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
