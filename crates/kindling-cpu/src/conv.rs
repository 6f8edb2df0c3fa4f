//! [`conv2d`], the drop-in for burn's convolution, and its autodiff step: on the autodiff CPU
//! device the forward pass and every gradient are this crate's, registered with burn-autodiff
//! as one `Backward` step; the kernel for each pass is chosen per geometry (the direct kernels
//! where `Geometry::direct*` says so, then Winograd where `Geometry::winograd_*` says so, else
//! im2col + GEMM). [`conv2d_eval`] (evaluation: batch norm, activation and pool after the
//! convolution) and [`conv2d_relu`] (training: ReLU and max pool) run what follows the
//! convolution in its output pass, through the kernels' `Epilogue`.

use std::sync::Arc;

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::tensor::Tensor;
use burn::tensor::ops::ConvOptions;
use rayon::prelude::*;

use crate::act::{Nonlinearity, activation, backward_flex};
use crate::epilogue::{Affine, Epilogue, Pool2x2};
use crate::flex::{Ad, AdTensor, dims4, flex, values};
use crate::im2col::{forward_im2col_then, input_grad_im2col, weight_grad_im2col};
use crate::norm::{batch_norm_eval, batch_norm_relu_eval};
use crate::pool::{AvgPool, MaxPool, avg_pool2d, max_pool_backward_values, max_pool2d};
use crate::simd::{lane_sum, simd};
use crate::switch::{enabled, f32_only};
use crate::timing::{count_fused_weight_grad, timed};
use crate::winograd::{forward_winograd_then, input_grad_winograd, weight_grad_winograd};
use crate::{Geometry, direct};

/// `burn::tensor::module::conv2d`, faster on the CPU device: on autodiff flex tensors with
/// this crate's forward pass and backward step, on plain flex tensors (evaluation) with its
/// forward pass, anywhere else burn's own.
pub fn conv2d(x: Tensor<4>, weight: Tensor<4>, bias: Option<Tensor<1>>, options: ConvOptions<2>) -> Tensor<4> {
    if takes(&x, &weight, &options) {
        if let Some((x, w, b)) = on_autodiff(&x, &weight, &bias) {
            return Tensor::from_primitive::<Ad>(autodiff_conv(x, w, b, options));
        }
        if let Some((x, w, b)) = on_plain(&x, &weight, &bias) {
            return Tensor::from_primitive::<Flex>(forward(&x, &w, b.as_ref(), &options));
        }
    }
    burn::tensor::module::conv2d(x, weight, bias, options)
}

/// Whether this crate's kernels take the convolution: switched on, not grouped, all `f32`, and a
/// kernel that fits the padded input (one wider has no output: burn's op says so).
fn takes(x: &Tensor<4>, weight: &Tensor<4>, options: &ConvOptions<2>) -> bool {
    let ([_, _, h, w], [_, _, kh, kw]) = (x.dims(), weight.dims());
    let fits = |len: usize, k: usize, axis: usize| {
        let (p0, p1) = options.padding[axis];
        len + p0 + p1 > options.dilation[axis] * (k.max(1) - 1)
    };
    enabled() && options.groups == 1 && f32_only(&[x.dtype(), weight.dtype()]) && fits(h, kh, 0) && fits(w, kw, 1)
}

/// The input, weight and bias as autodiff flex primitives, when all three are.
fn on_autodiff(
    x: &Tensor<4>,
    weight: &Tensor<4>,
    bias: &Option<Tensor<1>>,
) -> Option<(AdTensor, AdTensor, Option<AdTensor>)> {
    let x = x.clone().try_into_primitive::<Ad>().ok()?;
    let w = weight.clone().try_into_primitive::<Ad>().ok()?;
    Some((x, w, bias.clone().map(|b| b.try_into_primitive::<Ad>()).transpose().ok()?))
}

/// The input, weight and bias as plain flex primitives, when all three are.
fn on_plain(
    x: &Tensor<4>,
    weight: &Tensor<4>,
    bias: &Option<Tensor<1>>,
) -> Option<(FlexTensor, FlexTensor, Option<FlexTensor>)> {
    let x = x.clone().try_into_primitive::<Flex>().ok()?;
    let w = weight.clone().try_into_primitive::<Flex>().ok()?;
    Some((x, w, bias.clone().map(|b| b.try_into_primitive::<Flex>()).transpose().ok()?))
}

/// Batch normalisation with running statistics (`nn.BatchNorm2d` in evaluation mode), as
/// [`batch_norm_eval`](crate::batch_norm_eval) takes it: one value per channel each.
#[derive(Clone, Debug)]
pub struct EvalBatchNorm {
    /// The running mean.
    pub mean: Tensor<1>,
    /// The running variance.
    pub variance: Tensor<1>,
    /// The scale.
    pub gamma: Tensor<1>,
    /// The shift.
    pub beta: Tensor<1>,
    /// Added to the variance.
    pub epsilon: f64,
}

/// A pool after a convolution at evaluation (see [`conv2d_eval`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvalPool {
    /// `nn.MaxPool2d`.
    Max(MaxPool),
    /// `nn.AvgPool2d`.
    Avg(AvgPool),
}

impl EvalPool {
    /// The pool the output pass applies itself: 2x2 windows at stride 2, no border, floor mode.
    fn fused(&self) -> Option<Pool2x2> {
        match self {
            Self::Max(p) if p.is_plain_2x2() => Some(Pool2x2::Max),
            Self::Avg(p) if p.is_plain_2x2() => Some(Pool2x2::Avg),
            _ => None,
        }
    }

    /// The pool as its own operation.
    fn run(self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Self::Max(p) => max_pool2d(x, p),
            Self::Avg(p) => avg_pool2d(x, p),
        }
    }
}

/// A convolution at evaluation followed, each optional and in this order, by batch norm
/// (`norm`), an activation (`act`) and a pool (`pool`): on plain flex tensors in one pass, each
/// image's output normalised, activated and (for 2x2 windows at stride 2 without border)
/// pooled while it is still in cache, bit for bit what the separate operations give; anywhere
/// else (autodiff tensors, other devices, grouped convolutions, other pools) the operations one
/// after another. For evaluation only: `norm` uses the given statistics, never the batch's.
pub fn conv2d_eval(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
    norm: Option<EvalBatchNorm>,
    act: Option<Nonlinearity>,
    pool: Option<EvalPool>,
) -> Tensor<4> {
    let out_channels = weight.dims()[0];
    if takes(&x, &weight, &options)
        && let Some((xf, wf, bf)) = on_plain(&x, &weight, &bias)
    {
        let affine = match &norm {
            Some(n) => eval_affine(n, out_channels).map(Some),
            None => Some(None),
        };
        if let Some(affine) = affine {
            let fused_pool = pool.and_then(|p| p.fused());
            let epilogue = Epilogue { norm: affine, act, pool: fused_pool, args: None };
            let y = Tensor::from_primitive::<Flex>(forward_then(&xf, &wf, bf.as_ref(), &options, &epilogue));
            return match pool {
                Some(p) if fused_pool.is_none() => p.run(y),
                _ => y,
            };
        }
    }
    let mut y = conv2d(x, weight, bias, options);
    let mut act = act;
    if let Some(n) = norm {
        y = if act == Some(Nonlinearity::Relu) {
            act = None;
            batch_norm_relu_eval(y, n.mean, n.variance, n.gamma, n.beta, n.epsilon)
        } else {
            batch_norm_eval(y, n.mean, n.variance, n.gamma, n.beta, n.epsilon)
        };
    }
    if let Some(kind) = act {
        y = activation(y, kind);
    }
    match pool {
        Some(p) => p.run(y),
        None => y,
    }
}

/// The batch norm's per-channel values when all are plain `f32` flex tensors of one value per
/// output channel, else `None` (the separate operations then run, and report bad shapes as
/// burn's do).
fn eval_affine(n: &EvalBatchNorm, out_channels: usize) -> Option<Affine> {
    let tensors = [&n.mean, &n.variance, &n.gamma, &n.beta];
    if !tensors.iter().all(|t| t.dims() == [out_channels] && t.dtype() == burn::tensor::DType::F32) {
        return None;
    }
    let v = tensors.map(|t| t.clone().try_into_primitive::<Flex>().ok());
    let [Some(m), Some(var), Some(g), Some(b)] = v else { return None };
    Some(Affine::eval(&values(&m), &values(&var), &values(&g), &values(&b), n.epsilon))
}

/// What the backward step keeps: the input, the weight, the options and what the output went
/// through after the convolution.
type State = (FlexTensor, FlexTensor, ConvOptions<2>, After);

/// What a convolution's output went through in the same step (`conv2d_relu`), with what its
/// gradient needs.
#[derive(Clone, Debug)]
enum After {
    /// Nothing: the output is the convolution's.
    Nothing,
    /// ReLU: its output.
    Relu(FlexTensor),
    /// ReLU, then a 2x2 max pool: its output, each output's argmax offset in its input plane,
    /// and the shape before the pool.
    ReluMaxPool { pooled: FlexTensor, arg: Arc<Vec<u32>>, full: [usize; 4] },
}

impl After {
    /// The gradient of the convolution's output, from that of the step's output: the pool's
    /// and ReLU's backward steps, the same arithmetic as `max_pool2d`'s and `relu`'s (ReLU
    /// passes the gradient where its output is positive or NaN; at a window's maximum that
    /// output is the pooled value).
    fn gradient(self, grad: FlexTensor) -> FlexTensor {
        match self {
            Self::Nothing => grad,
            Self::Relu(y) => timed(|t| &mut t.activation, || backward_flex(Nonlinearity::Relu, &y, grad)),
            Self::ReluMaxPool { pooled, arg, full } => {
                let masked = timed(|t| &mut t.activation, || backward_flex(Nonlinearity::Relu, &pooled, grad));
                let [n, c, h, w] = full;
                timed(
                    |t| &mut t.max_pool,
                    || flex(max_pool_backward_values(&values(&masked), &arg, n * c, h * w, true), full),
                )
            }
        }
    }
}

#[derive(Debug)]
struct ConvWithBias;
#[derive(Debug)]
struct ConvNoBias;

/// Registers the gradients of the parents that need one.
fn backward_grads(
    state: State,
    grad: FlexTensor,
    [node_x, node_w, node_b]: [Option<burn::backend::autodiff::NodeId>; 3],
    grads: &mut Gradients,
) {
    let (x, w, options, after) = state;
    let grad = after.gradient(grad);
    let (xd, wd) = (dims4(&x), dims4(&w));
    let g = Geometry::new(xd, wd, &options);
    let dy = values(&grad);
    if let Some(id) = node_w {
        let dw = timed(|t| &mut t.conv_weight, || weight_grad_values(&values(&x), &dy, xd[0], wd[0], &g));
        count_fused_weight_grad();
        grads.register::<Flex>(id, flex(dw, wd));
    }
    if let Some(id) = node_b {
        grads.register::<Flex>(id, timed(|t| &mut t.conv_bias, || bias_grad(&grad)));
    }
    if let Some(id) = node_x {
        let dx = timed(|t| &mut t.conv_input, || input_grad_values(&dy, &values(&w), xd[0], wd[0], &g));
        grads.register::<Flex>(id, flex(dx, xd));
    }
}

impl Backward<Flex, 3> for ConvWithBias {
    type State = State;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x, w, b] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        backward_grads(ops.state, grad, [x.map(|n| n.id), w.map(|n| n.id), b.map(|n| n.id)], grads);
    }
}

impl Backward<Flex, 2> for ConvNoBias {
    type State = State;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x, w] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        backward_grads(ops.state, grad, [x.map(|n| n.id), w.map(|n| n.id), None], grads);
    }
}

/// The forward convolution of flex tensors.
fn forward(x: &FlexTensor, w: &FlexTensor, b: Option<&FlexTensor>, options: &ConvOptions<2>) -> FlexTensor {
    forward_then(x, w, b, options, &Epilogue::NONE)
}

/// [`forward`], each image's output then through `epilogue`.
fn forward_then(
    x: &FlexTensor,
    w: &FlexTensor,
    b: Option<&FlexTensor>,
    options: &ConvOptions<2>,
    epilogue: &Epilogue,
) -> FlexTensor {
    let (xd, wd) = (dims4(x), dims4(w));
    let g = Geometry::new(xd, wd, options);
    let bias = b.map(values);
    let y = forward_values_then(&values(x), &values(w), bias.as_deref(), xd[0], wd[0], &g, epilogue);
    let [oh, ow] = epilogue.output(g.output);
    flex(y, [xd[0], wd[0], oh, ow])
}

fn autodiff_conv(x: AdTensor, w: AdTensor, b: Option<AdTensor>, options: ConvOptions<2>) -> AdTensor {
    autodiff_conv_then(x, w, b, options, None)
}

/// [`autodiff_conv`]; with `relu = Some(pool)`, followed by ReLU and, when `pool` is set, a
/// 2x2 max pool, in the same output pass and the same backward step.
fn autodiff_conv_then(
    x: AdTensor,
    w: AdTensor,
    b: Option<AdTensor>,
    options: ConvOptions<2>,
    relu: Option<bool>,
) -> AdTensor {
    let run = |tracked: bool| {
        let (xp, wp) = (x.primitive(), w.primitive());
        let Some(pool) = relu else {
            return (forward(xp, wp, b.as_ref().map(|b| b.primitive()), &options), After::Nothing);
        };
        let (xd, wd) = (dims4(xp), dims4(wp));
        let g = Geometry::new(xd, wd, &options);
        let full = [xd[0], wd[0], g.output[0], g.output[1]];
        let mut epilogue = Epilogue::relu_max_pool(pool, xd[0], wd[0], g.output);
        if !tracked {
            epilogue.args = None;
        }
        let y = forward_then(xp, wp, b.as_ref().map(|b| b.primitive()), &options, &epilogue);
        let after = match (tracked, pool) {
            (false, _) => After::Nothing,
            (true, false) => After::Relu(y.clone()),
            (true, true) => After::ReluMaxPool { pooled: y.clone(), arg: Arc::new(epilogue.take_args()), full },
        };
        (y, after)
    };
    let state = |after| (x.primitive().clone(), w.primitive().clone(), options.clone(), after);
    match &b {
        Some(bias) => {
            match ConvWithBias.prepare::<NoCheckpointing>([x.node(), w.node(), bias.node()]).compute_bound().stateful()
            {
                OpsKind::Tracked(prep) => {
                    let (y, after) = run(true);
                    prep.finish(state(after), y)
                }
                OpsKind::UnTracked(prep) => prep.finish(run(false).0),
            }
        }
        None => match ConvNoBias.prepare::<NoCheckpointing>([x.node(), w.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (y, after) = run(true);
                prep.finish(state(after), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(run(false).0),
        },
    }
}

/// A convolution followed by ReLU and, optionally, a max pool (`nn.Conv2d`, `nn.ReLU`,
/// `nn.MaxPool2d`), on the CPU device in one step: the ReLU and a pool of 2x2 windows at
/// stride 2 without border run on each image's output while it is in cache, and the
/// full-size activation is neither written out nor kept for the backward step (which needs
/// only the pooled output and its argmax). Values and gradients are bit for bit those of the
/// separate operations. In evaluation it is [`conv2d_eval`]; on other devices, for grouped
/// convolutions and for other pools, the operations one after another.
pub fn conv2d_relu(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
    pool: Option<MaxPool>,
) -> Tensor<4> {
    let fused_pool = pool.filter(MaxPool::is_plain_2x2);
    if takes(&x, &weight, &options)
        && let Some((xa, wa, ba)) = on_autodiff(&x, &weight, &bias)
    {
        let y = Tensor::from_primitive::<Ad>(autodiff_conv_then(xa, wa, ba, options, Some(fused_pool.is_some())));
        return match pool {
            Some(p) if fused_pool.is_none() => max_pool2d(y, p),
            _ => y,
        };
    }
    if !x.device().is_autodiff() {
        return conv2d_eval(x, weight, bias, options, None, Some(Nonlinearity::Relu), pool.map(EvalPool::Max));
    }
    let y = activation(conv2d(x, weight, bias, options), Nonlinearity::Relu);
    match pool {
        Some(p) => max_pool2d(y, p),
        None => y,
    }
}

/// The forward convolution plus the bias, images in parallel: the direct kernels where
/// [`Geometry::direct_rows`] or [`Geometry::direct`] says so, then Winograd where
/// [`Geometry::winograd_forward`] does, else per image `W · im2col(x_b)`.
pub fn forward_values(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    n: usize,
    out_channels: usize,
    g: &Geometry,
) -> Vec<f32> {
    forward_values_then(x, w, bias, n, out_channels, g, &Epilogue::NONE)
}

/// [`forward_values`], each image's output then through `epilogue` while it is in cache.
pub(crate) fn forward_values_then(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    n: usize,
    out_channels: usize,
    g: &Geometry,
    epilogue: &Epilogue,
) -> Vec<f32> {
    if g.direct_rows() {
        return direct::forward_rows(x, w, bias, n, out_channels, g, epilogue);
    }
    if g.direct() {
        return direct::forward_direct(x, w, bias, n, out_channels, g, epilogue);
    }
    if g.winograd_forward() {
        return forward_winograd_then(x, w, bias, n, out_channels, g, epilogue);
    }
    forward_im2col_then(x, w, bias, n, out_channels, g, epilogue)
}

/// The input gradient, images in parallel: the direct kernel where
/// [`Geometry::direct_input_grad`] says so, then Winograd where
/// [`Geometry::winograd_input_grad`] does, else per image `col2im(Wᵀ · dY_b)`.
pub fn input_grad_values(dy: &[f32], w: &[f32], n: usize, out_channels: usize, g: &Geometry) -> Vec<f32> {
    if g.direct_input_grad() {
        return direct::input_grad_direct(dy, w, n, out_channels, g);
    }
    if g.winograd_input_grad() {
        return input_grad_winograd(dy, w, n, out_channels, g);
    }
    input_grad_im2col(dy, w, n, out_channels, g)
}

/// `dW` of a convolution: the direct kernel where [`Geometry::direct_weight_grad`] says so,
/// then Winograd where [`Geometry::winograd_weight_grad`] does,
/// else per image one GEMM `dY_b · im2col(x_b)ᵀ`; the batch split across the rayon pool, each
/// worker with its own accumulator.
pub fn weight_grad_values(x: &[f32], dy: &[f32], n: usize, out_channels: usize, g: &Geometry) -> Vec<f32> {
    let (image, pixels) = (g.input.iter().product::<usize>(), g.pixels());
    assert_eq!(x.len(), n * image);
    assert_eq!(dy.len(), n * out_channels * pixels);
    if g.direct_weight_grad() {
        return direct::weight_grad_direct(x, dy, n, out_channels, g);
    }
    if g.winograd_weight_grad() {
        return weight_grad_winograd(x, dy, n, out_channels, g);
    }
    weight_grad_im2col(x, dy, n, out_channels, g)
}

/// `db[o]`: the output gradient summed over images and pixels, channels in parallel.
fn bias_grad(dy: &FlexTensor) -> FlexTensor {
    let [n, o, oh, ow] = dims4(dy);
    let v = values(dy);
    let pixels = oh * ow;
    let db: Vec<f32> = (0..o)
        .into_par_iter()
        .map(|ch| simd(|| (0..n).map(|b| lane_sum(&v[(b * o + ch) * pixels..][..pixels], |x| x)).sum()))
        .collect();
    flex(db, [o])
}
