//! burn modules built from a layer list.

use burn::module::{Module, ParamId};
use burn::nn::Initializer;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{
    AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, AvgPool2d, AvgPool2dConfig, MaxPool2d, MaxPool2dConfig,
};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Elu, EluConfig, Gelu, LeakyRelu, LeakyReluConfig, Linear,
    LinearConfig, PaddingConfig2d, Relu, Sigmoid, Tanh,
};
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Device, Tensor};

use kindling_cpu::{EvalBatchNorm, EvalPool, Nonlinearity};
use rand::rngs::StdRng;

use crate::infer::{LayerInfo, Shape};
use crate::init::{Init, InitConfig};
use crate::norm::{batch_norm, batch_norm_relu_pool, trains};
use crate::spec::LayerSpec;

/// `nn.Flatten`: keeps the batch dimension, joins the rest.
#[derive(Module, Debug)]
pub struct Flatten;

/// `nn.Dropout2d`: zeroes whole channels. burn's dropout is element-wise, so this draws its
/// mask on `[batch, channels, 1, 1]` through burn's [`Dropout`] (which also decides whether
/// the layer is training) and broadcasts it over the image.
#[derive(Module, Debug)]
pub struct Dropout2d {
    /// Draws and scales the per-channel mask.
    pub mask: Dropout,
}

impl Dropout2d {
    /// Applies the layer to `[batch, channels, height, width]`.
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let [n, c, _, _] = input.dims();
        let ones = Tensor::<4>::ones([n, c, 1, 1], &input.device());
        input * self.mask.forward(ones)
    }
}

/// One layer of a [`Sequential`].
#[derive(Module, Debug)]
#[allow(missing_docs, reason = "each variant is the burn layer of the same name")]
pub enum Layer {
    Conv2d(Conv2d),
    /// burn's module, run with PyTorch's running-variance update (see `norm.rs`).
    BatchNorm(BatchNorm),
    MaxPool2d(MaxPool2d),
    AvgPool2d(AvgPool2d),
    /// burn's module (its `output_size` resolved from the input: no `None` left), which runs
    /// `burn::tensor::module::adaptive_avg_pool2d`.
    AdaptiveAvgPool2d(AdaptiveAvgPool2d),
    Dropout(Dropout),
    Dropout2d(Dropout2d),
    Flatten(Flatten),
    Linear(Linear),
    Relu(Relu),
    LeakyRelu(LeakyRelu),
    Elu(Elu),
    Gelu(Gelu),
    Tanh(Tanh),
    Sigmoid(Sigmoid),
    Softmax(Softmax),
}

/// `nn.Softmax(dim=1)` or, with `log`, `nn.LogSoftmax(dim=1)`.
#[derive(Module, Debug)]
pub struct Softmax {
    /// Log-probabilities rather than probabilities.
    pub log: bool,
}

impl Softmax {
    /// Applies the layer to `[batch, features]`.
    pub fn forward(&self, input: Tensor<2>) -> Tensor<2> {
        if self.log { log_softmax(input, 1) } else { softmax(input, 1) }
    }
}

/// Layers applied in order to a batch of images, ending in class logits.
#[derive(Module, Debug)]
pub struct Sequential {
    /// The layers.
    pub layers: Vec<Layer>,
}

/// An activation between layers: image-shaped or flat.
#[derive(Debug)]
pub enum Activation {
    /// `[batch, channels, height, width]`.
    Image(Tensor<4>),
    /// `[batch, features]`.
    Flat(Tensor<2>),
}

use Activation as Act;

impl Sequential {
    /// Builds the layers on `device`, initialised by `init` (PyTorch's defaults where it names
    /// nothing), drawing from `rng` in layer order, weight before bias. `infos` are the shapes
    /// inferred by [`crate::infer`] for the same layers; callers get them from validation, so
    /// they are consistent.
    pub fn new(
        layers: &[LayerSpec],
        infos: &[LayerInfo],
        init: &InitConfig,
        rng: &mut StdRng,
        device: &Device,
    ) -> Self {
        let pick = |i: &Option<Init>| i.clone().unwrap_or(Init::Default);
        let (conv_init, linear_init, bias_init) = (pick(&init.conv), pick(&init.linear), pick(&init.bias));
        let layers = layers
            .iter()
            .zip(infos)
            .map(|(spec, info)| match spec {
                LayerSpec::Conv2d(c) => {
                    let Shape::Image([in_c, _, _]) = info.input else { unreachable!("checked by infer") };
                    let [ph, pw] = c.padding.hw();
                    let [kh, kw] = c.kernel_size.hw();
                    let mut conv = Conv2dConfig::new([in_c, c.out_channels], [kh, kw])
                        .with_stride(c.stride.hw())
                        .with_dilation(c.dilation.hw())
                        .with_padding(PaddingConfig2d::Explicit(ph, pw, ph, pw))
                        .with_bias(c.bias)
                        .with_initializer(Initializer::Zeros)
                        .init(device);
                    let fans = (in_c * kh * kw, c.out_channels * kh * kw);
                    conv.weight = conv_init.param([c.out_channels, in_c, kh, kw], fans, rng, device);
                    conv.bias = c.bias.then(|| bias_init.param([c.out_channels], fans, rng, device));
                    Layer::Conv2d(conv)
                }
                LayerSpec::Batchnorm(b) => {
                    let n = match info.input {
                        Shape::Image([c, _, _]) => c,
                        Shape::Flat(n) => n,
                    };
                    Layer::BatchNorm(BatchNormConfig::new(n).with_epsilon(b.eps).with_momentum(b.momentum).init(device))
                }
                LayerSpec::Maxpool2d(p) => {
                    let [ph, pw] = p.padding.hw();
                    Layer::MaxPool2d(
                        MaxPool2dConfig::new(p.kernel_size.hw())
                            .with_strides(p.stride.unwrap_or(p.kernel_size).hw())
                            .with_padding(PaddingConfig2d::Explicit(ph, pw, ph, pw))
                            .with_ceil_mode(p.ceil_mode)
                            .init(),
                    )
                }
                LayerSpec::Avgpool2d(p) => {
                    let [ph, pw] = p.padding.hw();
                    Layer::AvgPool2d(
                        AvgPool2dConfig::new(p.kernel_size.hw())
                            .with_strides(p.stride.unwrap_or(p.kernel_size).hw())
                            .with_padding(PaddingConfig2d::Explicit(ph, pw, ph, pw))
                            .with_ceil_mode(p.ceil_mode)
                            .with_count_include_pad(p.count_include_pad)
                            .init(),
                    )
                }
                LayerSpec::AdaptiveAvgPool2d(a) => {
                    let Shape::Image([_, h, w]) = info.input else { unreachable!("checked by infer") };
                    Layer::AdaptiveAvgPool2d(AdaptiveAvgPool2dConfig::new(a.output_size.resolve([h, w])).init())
                }
                LayerSpec::Dropout(d) => Layer::Dropout(DropoutConfig::new(d.p).init()),
                LayerSpec::Dropout2d(d) => Layer::Dropout2d(Dropout2d { mask: DropoutConfig::new(d.p).init() }),
                LayerSpec::LeakyRelu(l) => {
                    Layer::LeakyRelu(LeakyReluConfig::new().with_negative_slope(l.negative_slope).init())
                }
                LayerSpec::Elu(e) => Layer::Elu(EluConfig::new().with_alpha(e.alpha).init()),
                LayerSpec::Gelu => Layer::Gelu(Gelu::new()),
                LayerSpec::Tanh => Layer::Tanh(Tanh::new()),
                LayerSpec::Sigmoid => Layer::Sigmoid(Sigmoid::new()),
                LayerSpec::Softmax => Layer::Softmax(Softmax { log: false }),
                LayerSpec::LogSoftmax => Layer::Softmax(Softmax { log: true }),
                LayerSpec::Flatten => Layer::Flatten(Flatten),
                LayerSpec::Linear(l) => {
                    let Shape::Flat(n) = info.input else { unreachable!("checked by infer") };
                    let mut linear = LinearConfig::new(n, l.out_features)
                        .with_bias(l.bias)
                        .with_initializer(Initializer::Zeros)
                        .init(device);
                    let fans = (n, l.out_features);
                    let shape = linear.weight.dims();
                    linear.weight = linear_init.param(shape, fans, rng, device);
                    linear.bias = l.bias.then(|| bias_init.param([l.out_features], fans, rng, device));
                    Layer::Linear(linear)
                }
                LayerSpec::Relu => Layer::Relu(Relu::new()),
            })
            .collect();
        Self { layers }
    }

    /// The sum of absolute values of the weights (of convolutions and linear layers), or of
    /// every parameter (biases and batch-norm scales and shifts too) when `weights_only` is
    /// false: the explicit L1 penalty PyTorch users add to the loss. `None` for a model
    /// without parameters.
    pub fn l1_norm(&self, weights_only: bool) -> Option<Tensor<1>> {
        let mut parts: Vec<Tensor<1>> = Vec::new();
        for layer in &self.layers {
            match layer {
                Layer::Conv2d(c) => {
                    parts.push(c.weight.val().abs().sum());
                    if !weights_only && let Some(b) = &c.bias {
                        parts.push(b.val().abs().sum());
                    }
                }
                Layer::Linear(l) => {
                    parts.push(l.weight.val().abs().sum());
                    if !weights_only && let Some(b) = &l.bias {
                        parts.push(b.val().abs().sum());
                    }
                }
                Layer::BatchNorm(b) if !weights_only => {
                    parts.push(b.gamma.val().abs().sum());
                    parts.push(b.beta.val().abs().sum());
                }
                _ => {}
            }
        }
        parts.into_iter().reduce(|a, b| a + b)
    }

    /// Every parameter's id and rank (4 for convolution weights, 2 for linear weights, 1 for
    /// biases and batch-norm scales and shifts), for code that handles gradients by parameter.
    pub fn param_ids(&self) -> Vec<(ParamId, usize)> {
        let mut out = Vec::new();
        for layer in &self.layers {
            match layer {
                Layer::Conv2d(c) => {
                    out.push((c.weight.id, 4));
                    out.extend(c.bias.as_ref().map(|b| (b.id, 1)));
                }
                Layer::Linear(l) => {
                    out.push((l.weight.id, 2));
                    out.extend(l.bias.as_ref().map(|b| (b.id, 1)));
                }
                Layer::BatchNorm(b) => out.extend([(b.gamma.id, 1), (b.beta.id, 1)]),
                _ => {}
            }
        }
        out
    }

    /// Class logits `[batch, classes]` for images `[batch, channels, height, width]`.
    ///
    /// At evaluation (not on an autodiff device) a convolution and what follows it of, in this
    /// order, a batch norm, a ReLU or tanh, and a max or average pool run as one operation
    /// (`kindling_cpu`'s `conv2d_eval`: the same values, without a pass of their own over the
    /// activation). In training a convolution followed by a ReLU, and a max pool after that,
    /// run as one step (`kindling_cpu`'s `conv2d_relu`: the same values and gradients), and so
    /// do a batch norm, its ReLU and a max pool (`batch_norm_relu_pool_train`).
    pub fn forward(&self, input: Tensor<4>) -> Tensor<2> {
        self.run(input, true, |_, _| {})
    }

    /// [`forward`](Self::forward), calling `after(index, &output)` after each layer: for
    /// profiling (sync the device in the callback) or for looking at activations. Some runs of
    /// layers execute as one fused operation, and then every index of the run gets the run's
    /// output (its last layer's), in order, after the whole of it:
    ///
    /// - a batch norm followed by a ReLU;
    /// - at evaluation, a convolution followed by a batch norm, a ReLU or tanh, or both;
    /// - in training, a convolution followed by a ReLU.
    ///
    /// Unlike [`forward`](Self::forward), a pool after them runs on its own here, so that an
    /// activation's index gets exactly the activation's output.
    pub fn forward_inspect(&self, input: Tensor<4>, after: impl FnMut(usize, &Activation)) -> Tensor<2> {
        self.run(input, false, after)
    }

    /// The forward pass, pools fused into the convolution before them at evaluation when
    /// `pools` is set.
    fn run(&self, input: Tensor<4>, pools: bool, mut after: impl FnMut(usize, &Activation)) -> Tensor<2> {
        let mut x = Act::Image(input);
        let mut fused = 0usize;
        for (i, layer) in self.layers.iter().enumerate() {
            if fused > 0 {
                // This layer ran inside the fused operation before it.
                fused -= 1;
                after(i, &x);
                continue;
            }
            let relu_next = matches!(self.layers.get(i + 1), Some(Layer::Relu(_)));
            x = match (layer, x) {
                (Layer::Conv2d(l), Act::Image(t)) => {
                    if let Some(run) = self.eval_run(i, &t, pools) {
                        fused = run.run;
                        Act::Image(conv2d_eval(l, t, run))
                    } else if let Some((pool, run)) = self.relu_run(i, &t, pools) {
                        fused = run;
                        Act::Image(conv2d_relu(l, t, pool))
                    } else {
                        Act::Image(conv2d(l, t))
                    }
                }
                (Layer::BatchNorm(l), Act::Image(t)) => {
                    // In training, a max pool after the ReLU joins them (with `pools`).
                    let pool = match self.layers.get(i + 2) {
                        Some(Layer::MaxPool2d(p)) if pools && relu_next && trains(l, &t) => kindling_pool(p),
                        _ => None,
                    };
                    fused = usize::from(relu_next) + usize::from(pool.is_some());
                    match pool {
                        Some(p) => Act::Image(batch_norm_relu_pool(l, t, p)),
                        None => Act::Image(batch_norm(l, t, relu_next)),
                    }
                }
                (Layer::BatchNorm(l), Act::Flat(t)) => {
                    fused = usize::from(relu_next);
                    Act::Flat(batch_norm(l, t, relu_next))
                }
                (Layer::MaxPool2d(l), Act::Image(t)) => Act::Image(max_pool2d(l, t)),
                (Layer::AvgPool2d(l), Act::Image(t)) => Act::Image(avg_pool2d(l, t)),
                (Layer::AdaptiveAvgPool2d(l), Act::Image(t)) => Act::Image(l.forward(t)),
                (Layer::Dropout2d(l), Act::Image(t)) => Act::Image(l.forward(t)),
                (Layer::LeakyRelu(l), Act::Image(t)) => Act::Image(l.forward(t)),
                (Layer::LeakyRelu(l), Act::Flat(t)) => Act::Flat(l.forward(t)),
                (Layer::Elu(l), Act::Image(t)) => Act::Image(l.forward(t)),
                (Layer::Elu(l), Act::Flat(t)) => Act::Flat(l.forward(t)),
                (Layer::Gelu(l), Act::Image(t)) => Act::Image(l.forward(t)),
                (Layer::Gelu(l), Act::Flat(t)) => Act::Flat(l.forward(t)),
                (Layer::Tanh(_), Act::Image(t)) => Act::Image(kindling_cpu::tanh(t)),
                (Layer::Tanh(_), Act::Flat(t)) => Act::Flat(kindling_cpu::tanh(t)),
                (Layer::Sigmoid(l), Act::Image(t)) => Act::Image(l.forward(t)),
                (Layer::Sigmoid(l), Act::Flat(t)) => Act::Flat(l.forward(t)),
                (Layer::Softmax(l), Act::Flat(t)) => Act::Flat(l.forward(t)),
                (Layer::Dropout(l), Act::Image(t)) => Act::Image(l.forward(t)),
                (Layer::Dropout(l), Act::Flat(t)) => Act::Flat(l.forward(t)),
                (Layer::Relu(_), Act::Image(t)) => Act::Image(kindling_cpu::relu(t)),
                (Layer::Relu(_), Act::Flat(t)) => Act::Flat(kindling_cpu::relu(t)),
                (Layer::Flatten(_), Act::Image(t)) => Act::Flat(t.flatten(1, 3)),
                (Layer::Linear(l), Act::Flat(t)) => Act::Flat(l.forward(t)),
                (layer, _) => unreachable!("layer shapes are checked before building: {layer:?}"),
            };
            after(i, &x);
        }
        match x {
            Act::Flat(t) => t,
            Act::Image(t) => t.flatten(1, 3),
        }
    }
}

impl Sequential {
    /// For the convolution at `i` with input `t` at evaluation (not on an autodiff device): the
    /// batch norm, the activation and (with `pools`) the pool right after it that
    /// `kindling_cpu::conv2d_eval` runs with the convolution, and how many layers that is;
    /// `None` when there is nothing to fuse.
    fn eval_run(&self, i: usize, t: &Tensor<4>, pools: bool) -> Option<EvalRun> {
        let device = t.device();
        if device.is_autodiff() {
            return None;
        }
        let mut next = i + 1;
        let norm = match self.layers.get(next) {
            Some(Layer::BatchNorm(bn)) => {
                next += 1;
                Some(EvalBatchNorm {
                    mean: bn.running_mean.value().to_device(&device),
                    variance: bn.running_var.value().to_device(&device),
                    gamma: bn.gamma.val(),
                    beta: bn.beta.val(),
                    epsilon: bn.epsilon,
                })
            }
            _ => None,
        };
        let act = match self.layers.get(next) {
            Some(Layer::Relu(_)) => Some(Nonlinearity::Relu),
            Some(Layer::Tanh(_)) => Some(Nonlinearity::Tanh),
            _ => None,
        };
        next += usize::from(act.is_some());
        let pool = match self.layers.get(next).filter(|_| pools) {
            Some(Layer::MaxPool2d(p)) => kindling_pool(p).map(EvalPool::Max),
            Some(Layer::AvgPool2d(p)) => kindling_avg_pool(p).map(EvalPool::Avg),
            _ => None,
        };
        next += usize::from(pool.is_some());
        let run = next - i - 1;
        (run > 0).then_some(EvalRun { norm, act, pool, run })
    }

    /// For the convolution at `i` with input `t` on an autodiff device (training): whether a
    /// ReLU follows it and, with `pools`, a max pool after that, which
    /// `kindling_cpu::conv2d_relu` runs in the same step; the pool and how many layers that is.
    fn relu_run(&self, i: usize, t: &Tensor<4>, pools: bool) -> Option<(Option<kindling_cpu::MaxPool>, usize)> {
        if !t.device().is_autodiff() || !matches!(self.layers.get(i + 1), Some(Layer::Relu(_))) {
            return None;
        }
        let pool = match self.layers.get(i + 2).filter(|_| pools) {
            Some(Layer::MaxPool2d(p)) => kindling_pool(p),
            _ => None,
        };
        Some((pool, 1 + usize::from(pool.is_some())))
    }
}

/// [`conv2d`], ReLU and the pool as one step (see [`Sequential::relu_run`]).
fn conv2d_relu(layer: &Conv2d, input: Tensor<4>, pool: Option<kindling_cpu::MaxPool>) -> Tensor<4> {
    match conv_options(layer) {
        Some(options) => {
            kindling_cpu::conv2d_relu(input, layer.weight.val(), layer.bias.as_ref().map(|b| b.val()), options, pool)
        }
        None => {
            let y = kindling_cpu::relu(conv2d(layer, input));
            match pool {
                Some(p) => kindling_cpu::max_pool2d(y, p),
                None => y,
            }
        }
    }
}

/// What follows a convolution at evaluation and runs with it (see [`Sequential::eval_run`]):
/// a batch norm, an activation and a pool, each optional, `run` layers in all.
struct EvalRun {
    norm: Option<EvalBatchNorm>,
    act: Option<Nonlinearity>,
    pool: Option<EvalPool>,
    run: usize,
}

/// [`conv2d`] followed by what [`Sequential::eval_run`] found, as one operation.
fn conv2d_eval(layer: &Conv2d, input: Tensor<4>, run: EvalRun) -> Tensor<4> {
    let EvalRun { norm, act, pool, .. } = run;
    match conv_options(layer) {
        Some(options) => kindling_cpu::conv2d_eval(
            input,
            layer.weight.val(),
            layer.bias.as_ref().map(|b| b.val()),
            options,
            norm,
            act,
            pool,
        ),
        None => {
            let y = conv2d(layer, input);
            let y = match norm {
                Some(n) => kindling_cpu::batch_norm_eval(y, n.mean, n.variance, n.gamma, n.beta, n.epsilon),
                None => y,
            };
            let y = match act {
                Some(Nonlinearity::Relu) => kindling_cpu::relu(y),
                Some(Nonlinearity::Tanh) => kindling_cpu::tanh(y),
                None => y,
            };
            match pool {
                Some(EvalPool::Max(p)) => kindling_cpu::max_pool2d(y, p),
                Some(EvalPool::Avg(p)) => kindling_cpu::avg_pool2d(y, p),
                None => y,
            }
        }
    }
}

/// A convolution's options with explicit padding; `None` for `Same` padding, which goes
/// through burn's module.
fn conv_options(layer: &Conv2d) -> Option<burn::tensor::ops::ConvOptions<2>> {
    let padding = match layer.padding {
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
        PaddingConfig2d::Valid => [(0, 0), (0, 0)],
        PaddingConfig2d::Same => return None,
    };
    Some(burn::tensor::ops::ConvOptions::new_with_padding(layer.stride, padding, layer.dilation, layer.groups))
}

/// `Conv2d::forward` through `kindling_cpu::conv2d`, which fuses the weight gradient on the
/// autodiff CPU device and is burn's own convolution everywhere else. Kindling builds its
/// convolutions with explicit padding; any other padding goes through burn's module.
fn conv2d(layer: &Conv2d, input: Tensor<4>) -> Tensor<4> {
    match conv_options(layer) {
        Some(options) => kindling_cpu::conv2d(input, layer.weight.val(), layer.bias.as_ref().map(|b| b.val()), options),
        None => layer.forward(input),
    }
}

/// The padding of a pool as `[rows, columns]` when it is the same on both sides (how Kindling
/// builds its pools); `None` sends the layer to burn's own module.
fn symmetric_padding(padding: &PaddingConfig2d) -> Option<[usize; 2]> {
    match *padding {
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => Some([top, left]),
        PaddingConfig2d::Valid => Some([0, 0]),
        _ => None,
    }
}

/// `MaxPool2d::forward` through `kindling_cpu::max_pool2d` (faster on the CPU device, burn's
/// elsewhere). Kindling builds its pools with explicit, symmetric padding.
fn max_pool2d(layer: &MaxPool2d, input: Tensor<4>) -> Tensor<4> {
    match kindling_pool(layer) {
        Some(pool) => kindling_cpu::max_pool2d(input, pool),
        None => layer.forward(input),
    }
}

/// The layer as `kindling_cpu`'s pool, when its padding is symmetric.
fn kindling_pool(layer: &MaxPool2d) -> Option<kindling_cpu::MaxPool> {
    Some(kindling_cpu::MaxPool {
        kernel: layer.kernel_size,
        stride: layer.stride,
        padding: symmetric_padding(&layer.padding)?,
        dilation: layer.dilation,
        ceil_mode: layer.ceil_mode,
    })
}

/// `AvgPool2d::forward` through `kindling_cpu::avg_pool2d` (faster on the CPU device, burn's
/// elsewhere).
fn avg_pool2d(layer: &AvgPool2d, input: Tensor<4>) -> Tensor<4> {
    match kindling_avg_pool(layer) {
        Some(pool) => kindling_cpu::avg_pool2d(input, pool),
        None => layer.forward(input),
    }
}

/// The layer as `kindling_cpu`'s pool, when its padding is symmetric.
fn kindling_avg_pool(layer: &AvgPool2d) -> Option<kindling_cpu::AvgPool> {
    Some(kindling_cpu::AvgPool {
        kernel: layer.kernel_size,
        stride: layer.stride,
        padding: symmetric_padding(&layer.padding)?,
        ceil_mode: layer.ceil_mode,
        count_include_pad: layer.count_include_pad,
    })
}

#[cfg(test)]
mod tests {
    use burn::tensor::TensorData;

    use super::*;
    use crate::infer::infer;

    /// `nn.AdaptiveAvgPool2d` computed directly, in f64: cell `(i, j)` of an `oh x ow` output
    /// averages rows `floor(i h / oh) .. ceil((i + 1) h / oh)` and the same for columns.
    /// Returns the output and the gradient of `sum(output * weight)` with respect to the input.
    fn direct(x: &[f32], [n, c, h, w]: [usize; 4], [oh, ow]: [usize; 2], weight: &[f32]) -> (Vec<f64>, Vec<f64>) {
        let span = |i: usize, size: usize, out: usize| (i * size / out)..((i + 1) * size).div_ceil(out);
        let mut out = Vec::new();
        let mut grad = vec![0.0; x.len()];
        for plane in 0..n * c {
            for i in 0..oh {
                for j in 0..ow {
                    let cells: Vec<usize> = span(i, h, oh)
                        .flat_map(|r| span(j, w, ow).map(move |col| plane * h * w + r * w + col))
                        .collect();
                    let count = cells.len() as f64;
                    out.push(cells.iter().map(|&k| f64::from(x[k])).sum::<f64>() / count);
                    let g = f64::from(weight[out.len() - 1]) / count;
                    for k in cells {
                        grad[k] += g;
                    }
                }
            }
        }
        (out, grad)
    }

    /// Distinct, irregular values in [-1, 1].
    fn values(len: usize, seed: f32) -> Vec<f32> {
        (0..len).map(|i| ((i as f32 + seed) * 12.9898).sin()).collect()
    }

    /// The layer as `Sequential` trains it (burn's op on the autodiff CPU device) against the
    /// direct computation, values and input gradient, on sizes that divide and sizes that do
    /// not, `null` dimensions, global pooling and outputs larger than the input.
    #[test]
    fn adaptive_avg_pool2d_matches_pytorchs_definition_and_its_gradient() {
        let device = Device::flex().autodiff();
        for (input, output_size, resolved) in [
            ([2, 3, 7, 5], serde_json::json!([3, 2]), [3, 2]),
            ([1, 2, 10, 9], serde_json::json!([4, 4]), [4, 4]),
            ([2, 2, 6, 11], serde_json::json!([null, 1]), [6, 1]),
            ([1, 3, 8, 12], serde_json::json!([4, null]), [4, 12]),
            ([2, 1, 5, 7], serde_json::json!(1), [1, 1]),
            ([1, 2, 3, 2], serde_json::json!([5, 3]), [5, 3]),
        ] {
            let [n, c, h, w] = input;
            let layers: Vec<LayerSpec> =
                serde_json::from_value(serde_json::json!([{"adaptive_avg_pool2d": {"output_size": output_size}}]))
                    .unwrap();
            let infos = infer(&layers, &Shape::Image([c, h, w])).unwrap();
            assert_eq!(infos[0].output, Shape::Image([c, resolved[0], resolved[1]]), "{input:?} -> {output_size}");
            let net = Sequential::new(
                &layers,
                &infos,
                &InitConfig::default(),
                &mut kindling_core::rng_from_seed(1, "init"),
                &device,
            );
            let x = values(n * c * h * w, 1.0);
            let weight = values(n * c * resolved[0] * resolved[1], 7.0);
            let xt = Tensor::<4>::from_data(TensorData::new(x.clone(), input), &device).require_grad();
            let out = net.forward(xt.clone());
            let wt = Tensor::<2>::from_data(TensorData::new(weight.clone(), out.dims()), &device);
            let got: Vec<f32> = out.clone().into_data().try_to_vec().unwrap();
            let grads = (out * wt).sum().backward();
            let got_grad: Vec<f32> = xt.grad(&grads).unwrap().into_data().try_to_vec().unwrap();
            let (want, want_grad) = direct(&x, input, resolved, &weight);
            assert_eq!(got.len(), want.len());
            for (what, got, want) in [("output", &got, &want), ("gradient", &got_grad, &want_grad)] {
                for (k, (g, v)) in got.iter().zip(want.iter()).enumerate() {
                    assert!((f64::from(*g) - v).abs() < 1e-6, "{input:?} -> {output_size}: {what}[{k}] {g} != {v}");
                }
            }
        }
    }
}
