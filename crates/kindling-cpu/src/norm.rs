//! Batch normalisation on the CPU device: the training forward pass (normalising with the
//! batch's own mean and biased variance) with its own backward step, and the evaluation pass
//! (normalising with given statistics).
//!
//! Per channel `c`, over its `M = batch x rest` values:
//!
//! ```text
//! mean, var (biased), invstd = 1 / sqrt(var + eps), xhat = (x - mean) invstd
//! y      = gamma xhat + beta
//! dbeta  = sum dy
//! dgamma = sum dy xhat
//! dx     = gamma invstd / M (M dy - dbeta - xhat dgamma)
//! ```
//!
//! burn 0.22's generic batch norm runs each of these as separate tensor ops (swapped axes,
//! reshapes, means, broadcasts), every one a pass over the whole tensor. Here, for inputs with
//! at least 16 values per image and channel (`[N, C, H, W]`), each rayon task owns whole
//! channels and does all passes over one channel while its values are still in cache: two
//! reductions and the output in the forward pass, one reduction and the input gradient in the
//! backward step. Narrower inputs (`[N, C]` after a linear layer) go row by row instead, with a
//! running sum per position, so every loop reads contiguous memory. Sums are taken in 16 `f32`
//! lanes over blocks of at most 1024 values (or straight in `f64` on the narrow path) and
//! added up in `f64`, so large batches keep their accuracy; the split into parallel tasks is
//! fixed, so results do not depend on scheduling.
//!
//! Everything is checked against burn's `batch_norm_train`, its gradients and its `batch_norm`
//! (tests/kernels/norm.rs).

use std::sync::Arc;

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::tensor::{Shape, Tensor};
use rayon::prelude::*;

use crate::{Ad, AdTensor, enabled, f32_only, flex, lane_sum, timed, values};

/// Inputs with at least this many values per image and channel are processed channel by
/// channel; narrower ones row by row.
const WIDE: usize = 16;

/// The most values summed in `f32` lanes before the partial sum joins an `f64` total.
const BLOCK: usize = 1024;

/// About how many values one parallel task should get, so small tensors are not split up.
const GRAIN: usize = 16 * 1024;

/// How a `[batch, channels, rest...]` tensor lies in memory (row-major): `batch` blocks of
/// `channels` runs of `rest` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Planes {
    /// Size of the first axis.
    pub batch: usize,
    /// Size of the second axis.
    pub channels: usize,
    /// Product of the remaining axes (1 for `[batch, channels]`).
    pub rest: usize,
}

impl Planes {
    /// The layout of a tensor of shape `dims` (at least two axes).
    pub fn of(dims: &[usize]) -> Self {
        assert!(dims.len() >= 2, "batch norm requires an input rank of at least 2");
        Self { batch: dims[0], channels: dims[1], rest: dims[2..].iter().product() }
    }

    /// Values per channel (`M`): batch times rest.
    pub fn per_channel(&self) -> usize {
        self.batch * self.rest
    }

    /// All values.
    pub fn len(&self) -> usize {
        self.batch * self.channels * self.rest
    }

    /// Whether there are no values at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values in one batch row (`channels x rest`).
    fn row(&self) -> usize {
        self.channels * self.rest
    }
}

/// Per-channel batch statistics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchStats {
    /// The mean of each channel.
    pub mean: Vec<f32>,
    /// The biased (population) variance of each channel, without epsilon.
    pub variance: Vec<f32>,
}

/// The training forward pass on plain values: the output and the batch statistics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchNormValues {
    /// The normalised input, in the input's layout.
    pub output: Vec<f32>,
    /// The statistics the output was normalised with.
    pub stats: BatchStats,
}

/// Gradients of the training forward pass on plain values.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchNormGrads {
    /// The input gradient, in the input's layout, when it was asked for.
    pub input: Option<Vec<f32>>,
    /// The gradient of the scale `gamma`, one per channel.
    pub gamma: Vec<f32>,
    /// The gradient of the shift `beta`, one per channel.
    pub beta: Vec<f32>,
}

/// The result of [`batch_norm_train`]: the normalised batch and its statistics.
#[derive(Clone, Debug)]
pub struct BatchNormBatch<const D: usize> {
    /// The normalised input, the same shape as the input (tracked on autodiff devices).
    pub output: Tensor<D>,
    /// The batch mean per channel, detached.
    pub mean: Tensor<1>,
    /// The biased (population) batch variance per channel, without epsilon, detached.
    pub variance: Tensor<1>,
}

/// `burn::tensor::module::batch_norm_train`, faster on the CPU device: normalises `input`
/// (`[batch, channels, ...]`) with its own per-channel mean and biased variance, then scales by
/// `gamma` and shifts by `beta`. On autodiff flex tensors with this module's forward pass and
/// backward step (gradients for the input, `gamma` and `beta`, each when it is tracked), on
/// plain flex tensors with its forward pass, anywhere else burn's own. The returned statistics
/// are detached; running statistics are the caller's business.
pub fn batch_norm_train<const D: usize>(
    input: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
) -> BatchNormBatch<D> {
    train(input, gamma, beta, epsilon, false)
}

/// [`batch_norm_train`] followed by ReLU, as one operation where it pays: for inputs with at
/// least 16 values per image and channel (`[N, C, H, W]` feature maps), the forward pass writes
/// `max(y, 0)` in the same pass as `y`, and the backward step masks the output gradient where
/// `y <= 0` (recomputing `y` from the saved input, bit for bit) inside batch norm's own two
/// passes, so the ReLU costs neither a pass of its own each way nor a saved output. Elsewhere
/// it is [`batch_norm_train`] then [`relu`](crate::relu). As with ReLU, NaN passes through.
pub fn batch_norm_relu_train<const D: usize>(
    input: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
) -> BatchNormBatch<D> {
    train(input, gamma, beta, epsilon, true)
}

/// The training pass, followed by ReLU when `relu` is set: fused channel by channel on the
/// CPU device, as its own operation after batch norm anywhere else.
fn train<const D: usize>(
    input: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
    relu: bool,
) -> BatchNormBatch<D> {
    check_shapes(&input.dims(), &[&gamma, &beta]);
    let fused = relu && Planes::of(&input.dims()).rest >= WIDE;
    let relu_after = |batch: BatchNormBatch<D>| BatchNormBatch { output: crate::relu(batch.output), ..batch };
    if let Some(batch) = fast_train(&input, &gamma, &beta, epsilon, fused) {
        return if relu && !fused { relu_after(batch) } else { batch };
    }
    let out = burn::tensor::module::batch_norm_train(input, gamma, beta, epsilon);
    let batch = BatchNormBatch { output: out.output, mean: out.mean, variance: out.variance };
    if relu { relu_after(batch) } else { batch }
}

/// This module's training pass (with the ReLU fused when `relu` is set), on autodiff or plain
/// flex tensors; `None` where burn's op must run.
fn fast_train<const D: usize>(
    input: &Tensor<D>,
    gamma: &Tensor<1>,
    beta: &Tensor<1>,
    epsilon: f64,
    relu: bool,
) -> Option<BatchNormBatch<D>> {
    if !fast(input, &[gamma, beta]) {
        return None;
    }
    let tracked = (
        input.clone().try_into_primitive::<Ad>(),
        gamma.clone().try_into_primitive::<Ad>(),
        beta.clone().try_into_primitive::<Ad>(),
    );
    if let (Ok(x), Ok(g), Ok(b)) = tracked {
        return Some(autodiff_train(x, g, b, epsilon, relu));
    }
    let plain = (
        input.clone().try_into_primitive::<Flex>(),
        gamma.clone().try_into_primitive::<Flex>(),
        beta.clone().try_into_primitive::<Flex>(),
    );
    let (Ok(x), Ok(g), Ok(b)) = plain else { return None };
    let (out, _) = train_values(&values(&x), planes_of(&x), &values(&g), &values(&b), epsilon, relu);
    Some(BatchNormBatch {
        output: Tensor::from_primitive::<Flex>(flex(out.output, x.layout().shape().clone())),
        mean: Tensor::from_primitive::<Flex>(channel_tensor(out.stats.mean)),
        variance: Tensor::from_primitive::<Flex>(channel_tensor(out.stats.variance)),
    })
}

/// `burn::tensor::module::batch_norm` (note the argument order: statistics first), faster on
/// plain flex tensors: `y = (x - mean) / sqrt(variance + epsilon) * gamma + beta` per channel
/// in one pass. Anywhere else, autodiff flex tensors included (a frozen layer), burn's own,
/// which autodiff differentiates as composed tensor ops.
pub fn batch_norm_eval<const D: usize>(
    input: Tensor<D>,
    mean: Tensor<1>,
    variance: Tensor<1>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
) -> Tensor<D> {
    eval(input, [mean, variance, gamma, beta], epsilon, false)
}

/// [`batch_norm_eval`] followed by ReLU, in one pass on plain flex tensors; elsewhere the two
/// operations.
pub fn batch_norm_relu_eval<const D: usize>(
    input: Tensor<D>,
    mean: Tensor<1>,
    variance: Tensor<1>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
) -> Tensor<D> {
    eval(input, [mean, variance, gamma, beta], epsilon, true)
}

/// The evaluation pass with `[mean, variance, gamma, beta]`, followed by ReLU when `relu` is
/// set.
fn eval<const D: usize>(input: Tensor<D>, per_channel: [Tensor<1>; 4], epsilon: f64, relu: bool) -> Tensor<D> {
    check_shapes(&input.dims(), &per_channel.each_ref());
    if fast(&input, &per_channel.each_ref()) {
        let x = input.clone().try_into_primitive::<Flex>();
        let p = per_channel.clone().map(|t| t.try_into_primitive::<Flex>());
        if let (Ok(x), [Ok(m), Ok(v), Ok(g), Ok(b)]) = (x, p) {
            let stats = BatchStats { mean: values(&m).into_owned(), variance: values(&v).into_owned() };
            let y = eval_values(&values(&x), planes_of(&x), &stats, &values(&g), &values(&b), epsilon, relu);
            return Tensor::from_primitive::<Flex>(flex(y, x.layout().shape().clone()));
        }
    }
    let [mean, variance, gamma, beta] = per_channel;
    let y = burn::tensor::module::batch_norm(input, gamma, beta, mean, variance, epsilon);
    if relu { crate::relu(y) } else { y }
}

/// The same checks as burn's ops, so both paths fail alike.
fn check_shapes(dims: &[usize], per_channel: &[&Tensor<1>]) {
    assert!(dims.len() >= 2, "batch norm requires an input rank of at least 2");
    for t in per_channel {
        assert_eq!(t.dims(), [dims[1]], "invalid batch norm parameter shape");
    }
}

/// Whether this module's kernels apply: switched on, all `f32`, not empty.
fn fast<const D: usize>(input: &Tensor<D>, per_channel: &[&Tensor<1>]) -> bool {
    let mut types = vec![input.dtype()];
    types.extend(per_channel.iter().map(|t| t.dtype()));
    enabled() && f32_only(&types) && input.dims().iter().all(|&d| d > 0)
}

fn planes_of(t: &FlexTensor) -> Planes {
    Planes::of(t.layout().shape())
}

fn channel_tensor(v: Vec<f32>) -> FlexTensor {
    let n = v.len();
    flex(v, Shape::new([n]))
}

/// What the backward step keeps: the input, `gamma`, the batch statistics, epsilon and the
/// layout.
#[derive(Clone, Debug)]
struct Saved {
    x: FlexTensor,
    gamma: Arc<Vec<f32>>,
    stats: Arc<BatchStats>,
    epsilon: f64,
    planes: Planes,
    /// For a fused ReLU, the scale and shift per channel the forward pass used.
    relu: Option<Arc<Affine>>,
}

#[derive(Debug)]
struct BatchNormStep;

impl Backward<Flex, 3> for BatchNormStep {
    type State = Saved;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let s = ops.state;
        let g = timed(
            |t| &mut t.batch_norm,
            || {
                let (x, dy) = (values(&s.x), values(&grad));
                grad_values(&x, &dy, s.planes, &s.stats, &s.gamma, s.epsilon, node_x.is_some(), s.relu.as_deref())
            },
        );
        if let Some(node) = node_gamma {
            grads.register::<Flex>(node.id, channel_tensor(g.gamma));
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, channel_tensor(g.beta));
        }
        if let (Some(node), Some(dx)) = (node_x, g.input) {
            grads.register::<Flex>(node.id, flex(dx, s.x.layout().shape().clone()));
        }
    }
}

fn autodiff_train<const D: usize>(
    x: AdTensor,
    gamma: AdTensor,
    beta: AdTensor,
    epsilon: f64,
    relu: bool,
) -> BatchNormBatch<D> {
    let p = planes_of(x.primitive());
    let gamma_values = values(gamma.primitive()).into_owned();
    let (out, affine) =
        train_values(&values(x.primitive()), p, &gamma_values, &values(beta.primitive()), epsilon, relu);
    let y = flex(out.output, x.primitive().layout().shape().clone());
    let (mean, variance) = (channel_tensor(out.stats.mean.clone()), channel_tensor(out.stats.variance.clone()));
    let output = match BatchNormStep
        .prepare::<NoCheckpointing>([x.node(), gamma.node(), beta.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let saved = Saved {
                x: x.primitive().clone(),
                gamma: Arc::new(gamma_values),
                stats: Arc::new(out.stats),
                epsilon,
                planes: p,
                relu: relu.then(|| Arc::new(affine)),
            };
            prep.finish(saved, y)
        }
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    BatchNormBatch {
        output: Tensor::from_primitive::<Ad>(output),
        // New leaves without history: detached, as burn's op returns them.
        mean: Tensor::from_primitive::<Ad>(AdTensor::new(mean)),
        variance: Tensor::from_primitive::<Ad>(AdTensor::new(variance)),
    }
}

/// The training forward pass on values in layout `p`: per-channel mean and biased variance of
/// `x`, and `y = (x - mean) / sqrt(var + epsilon) * gamma + beta`.
pub fn batch_norm_train_values(x: &[f32], p: Planes, gamma: &[f32], beta: &[f32], epsilon: f64) -> BatchNormValues {
    train_values(x, p, gamma, beta, epsilon, false).0
}

/// The scale and shift per channel of a normalisation: `y = (x - mean) scale + shift`.
#[derive(Clone, Debug, Default, PartialEq)]
struct Affine {
    scale: Vec<f32>,
    shift: Vec<f32>,
}

/// [`batch_norm_train_values`], followed by ReLU when `relu` is set (channel by channel only:
/// `p.rest >= WIDE`), and the scale and shift it used (empty on the row-by-row path).
fn train_values(
    x: &[f32],
    p: Planes,
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
    relu: bool,
) -> (BatchNormValues, Affine) {
    assert_eq!(x.len(), p.len(), "input size");
    assert_eq!((gamma.len(), beta.len()), (p.channels, p.channels), "one gamma and beta per channel");
    assert!(!relu || p.rest >= WIDE, "a fused ReLU runs channel by channel only");
    if p.is_empty() {
        let nan = vec![f32::NAN; p.channels];
        let values = BatchNormValues { output: Vec::new(), stats: BatchStats { mean: nan.clone(), variance: nan } };
        return (values, Affine::default());
    }
    if p.rest >= WIDE {
        train_wide(x, p, gamma, beta, epsilon, relu)
    } else {
        (train_narrow(x, p, gamma, beta, epsilon), Affine::default())
    }
}

/// The evaluation pass on values in layout `p`: `y = (x - mean) / sqrt(var + epsilon) * gamma +
/// beta` with the given statistics.
pub fn batch_norm_eval_values(
    x: &[f32],
    p: Planes,
    stats: &BatchStats,
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
) -> Vec<f32> {
    eval_values(x, p, stats, gamma, beta, epsilon, false)
}

/// [`batch_norm_eval_values`], followed by ReLU in the same pass when `relu` is set.
fn eval_values(
    x: &[f32],
    p: Planes,
    stats: &BatchStats,
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
    relu: bool,
) -> Vec<f32> {
    assert_eq!(x.len(), p.len(), "input size");
    let c = p.channels;
    assert!([stats.mean.len(), stats.variance.len(), gamma.len(), beta.len()] == [c; 4], "one value per channel");
    let scale: Vec<f32> = stats
        .variance
        .iter()
        .zip(gamma)
        .map(|(v, g)| (f64::from(*g) / (f64::from(*v) + epsilon).sqrt()) as f32)
        .collect();
    normalise(x, p, &stats.mean, &scale, beta, relu)
}

/// The gradients of the training forward pass, given the input `x`, the output gradient `dy`
/// (both in layout `p`), the batch statistics the forward pass used, `gamma` and epsilon. The
/// input gradient is computed only when `input` is set.
pub fn batch_norm_grad_values(
    x: &[f32],
    dy: &[f32],
    p: Planes,
    stats: &BatchStats,
    gamma: &[f32],
    epsilon: f64,
    input: bool,
) -> BatchNormGrads {
    grad_values(x, dy, p, stats, gamma, epsilon, input, None)
}

/// [`batch_norm_grad_values`]; with `relu`, of batch norm followed by ReLU, given the scale
/// and shift the forward pass used (channel by channel only).
#[allow(clippy::too_many_arguments)]
fn grad_values(
    x: &[f32],
    dy: &[f32],
    p: Planes,
    stats: &BatchStats,
    gamma: &[f32],
    epsilon: f64,
    input: bool,
    relu: Option<&Affine>,
) -> BatchNormGrads {
    assert_eq!((x.len(), dy.len()), (p.len(), p.len()), "input and gradient sizes");
    assert!(relu.is_none() || p.rest >= WIDE, "a fused ReLU runs channel by channel only");
    let c = p.channels;
    assert!([stats.mean.len(), stats.variance.len(), gamma.len()] == [c; 3], "one value per channel");
    if p.is_empty() {
        return BatchNormGrads { input: input.then(Vec::new), gamma: vec![0.0; c], beta: vec![0.0; c] };
    }
    let invstd: Vec<f64> = stats.variance.iter().map(|v| 1.0 / (f64::from(*v) + epsilon).sqrt()).collect();
    if p.rest >= WIDE {
        grads_wide(x, dy, p, &stats.mean, &invstd, gamma, input, relu)
    } else {
        grads_narrow(x, dy, p, &stats.mean, &invstd, gamma, input)
    }
}

/// The per-channel constants of the input gradient, `dx = a dy + b (x - mean) + c`, from the
/// channel's sums `sum dy` and `sum dy (x - mean)`.
fn input_grad_terms(gamma: f32, invstd: f64, sum_dy: f64, sum_dy_dev: f64, m: f64) -> [f32; 3] {
    let a = f64::from(gamma) * invstd;
    // dgamma = invstd sum_dy_dev; the xhat dgamma term is (x - mean) invstd² sum_dy_dev.
    [a as f32, (-a * invstd * invstd * sum_dy_dev / m) as f32, (-a * sum_dy / m) as f32]
}

// ---- Channel by channel (at least `WIDE` values per image and channel). ----

/// Channel `c`'s runs of `p.rest` values, one per image.
fn planes(v: &[f32], p: Planes, c: usize) -> impl Iterator<Item = &[f32]> {
    (0..p.batch).map(move |b| &v[(b * p.channels + c) * p.rest..][..p.rest])
}

/// Channel `c`'s values in pieces of at most `BLOCK`.
fn blocks(v: &[f32], p: Planes, c: usize) -> impl Iterator<Item = &[f32]> {
    planes(v, p, c).flat_map(|plane| plane.chunks(BLOCK))
}

/// The runs of `out` (layout `p`) grouped by channel, so that each task can own whole channels.
fn by_channel(out: &mut [f32], p: Planes) -> Vec<Vec<&mut [f32]>> {
    let mut groups: Vec<Vec<&mut [f32]>> = (0..p.channels).map(|_| Vec::with_capacity(p.batch)).collect();
    for (i, run) in out.chunks_exact_mut(p.rest).enumerate() {
        groups[i % p.channels].push(run);
    }
    groups
}

/// How many consecutive items of `len` values one task should take at least.
fn min_items(len: usize) -> usize {
    (GRAIN / len.max(1)).max(1)
}

/// `(sum dy, sum dy (x - mean))` in 16 `f32` lanes each, with `dy` passed through `mask(dy,
/// x)` (the identity without a fused ReLU).
#[inline(always)]
fn lane_dot(dy: &[f32], x: &[f32], mean: f32, mask: impl Fn(f32, f32) -> f32) -> (f32, f32) {
    let (mut s, mut t) = ([0.0f32; 16], [0.0f32; 16]);
    let (dc, xc) = (dy.chunks_exact(16), x.chunks_exact(16));
    let (mut rs, mut rt) = (0.0f32, 0.0f32);
    for (d, v) in dc.remainder().iter().zip(xc.remainder()) {
        let d = mask(*d, *v);
        rs += d;
        rt += d * (v - mean);
    }
    for (d, v) in dc.zip(xc) {
        s.iter_mut().zip(t.iter_mut()).zip(d).zip(v).for_each(|(((s, t), d), v)| {
            let d = mask(*d, *v);
            *s += d;
            *t += d * (v - mean);
        });
    }
    (s.iter().sum::<f32>() + rs, t.iter().sum::<f32>() + rt)
}

/// ReLU of a value, as [`relu`](crate::relu) computes it: NaN passes through.
#[inline(always)]
fn relu_f32(y: f32) -> f32 {
    if y > 0.0 || y.is_nan() { y } else { 0.0 }
}

/// The output gradient where ReLU let `y` through, else 0.
#[inline(always)]
fn relu_mask(dy: f32, y: f32) -> f32 {
    if y > 0.0 || y.is_nan() { dy } else { 0.0 }
}

fn train_wide(
    x: &[f32],
    p: Planes,
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
    relu: bool,
) -> (BatchNormValues, Affine) {
    let m = p.per_channel() as f64;
    let mut y = vec![0.0f32; x.len()];
    let stats: Vec<(f32, f32, f32)> = by_channel(&mut y, p)
        .into_par_iter()
        .enumerate()
        .with_min_len(min_items(p.per_channel()))
        .map(|(c, outs)| {
            // Three passes over the channel; after the first its values are in cache.
            let mean = (blocks(x, p, c).map(|b| f64::from(lane_sum(b, |v| v))).sum::<f64>() / m) as f32;
            let dev = |v: f32| (v - mean) * (v - mean);
            let var = blocks(x, p, c).map(|b| f64::from(lane_sum(b, dev))).sum::<f64>() / m;
            let (scale, shift) = ((f64::from(gamma[c]) / (var + epsilon).sqrt()) as f32, beta[c]);
            for (out, x) in outs.into_iter().zip(planes(x, p, c)) {
                if relu {
                    out.iter_mut().zip(x).for_each(|(o, v)| *o = relu_f32((v - mean) * scale + shift));
                } else {
                    out.iter_mut().zip(x).for_each(|(o, v)| *o = (v - mean) * scale + shift);
                }
            }
            (mean, var as f32, scale)
        })
        .collect();
    let mut values = BatchNormValues { output: y, stats: BatchStats::default() };
    let mut scale = Vec::with_capacity(p.channels);
    for (mean, var, s) in stats {
        values.stats.mean.push(mean);
        values.stats.variance.push(var);
        scale.push(s);
    }
    (values, Affine { scale, shift: beta.to_vec() })
}

#[allow(clippy::too_many_arguments)]
fn grads_wide(
    x: &[f32],
    dy: &[f32],
    p: Planes,
    mean: &[f32],
    invstd: &[f64],
    gamma: &[f32],
    input: bool,
    relu: Option<&Affine>,
) -> BatchNormGrads {
    let m = p.per_channel() as f64;
    let mut dx = if input { vec![0.0f32; x.len()] } else { Vec::new() };
    let outs = if input { by_channel(&mut dx, p) } else { (0..p.channels).map(|_| Vec::new()).collect() };
    let sums: Vec<(f32, f32)> = outs
        .into_par_iter()
        .enumerate()
        .with_min_len(min_items(p.per_channel()))
        .map(|(c, outs)| {
            let mu = mean[c];
            // With a fused ReLU, the output gradient is masked where the forward pass's output
            // (recomputed here with the same operations, so bit for bit the same) was cut to 0.
            let (scale, shift) = relu.map_or((0.0, 0.0), |r| (r.scale[c], r.shift[c]));
            let mask = |d: f32, v: f32| if relu.is_some() { relu_mask(d, (v - mu) * scale + shift) } else { d };
            let (mut sum_dy, mut sum_dy_dev) = (0.0f64, 0.0f64);
            for (d, v) in blocks(dy, p, c).zip(blocks(x, p, c)) {
                let (s, t) = lane_dot(d, v, mu, mask);
                sum_dy += f64::from(s);
                sum_dy_dev += f64::from(t);
            }
            if !outs.is_empty() {
                let [a, b, k] = input_grad_terms(gamma[c], invstd[c], sum_dy, sum_dy_dev, m);
                for ((out, d), v) in outs.into_iter().zip(planes(dy, p, c)).zip(planes(x, p, c)) {
                    out.iter_mut().zip(d).zip(v).for_each(|((o, d), v)| *o = a * mask(*d, *v) + b * (v - mu) + k);
                }
            }
            ((sum_dy_dev * invstd[c]) as f32, sum_dy as f32)
        })
        .collect();
    let (gamma_grad, beta_grad) = sums.into_iter().unzip();
    BatchNormGrads { input: input.then_some(dx), gamma: gamma_grad, beta: beta_grad }
}

// ---- Row by row (fewer than `WIDE` values per image and channel, e.g. `[N, C]`). ----

/// `add(b, acc)` for every batch row `b`, into `width` `f64` accumulators: rows split into
/// consecutive ranges whose count depends only on the input's size (at most 16), one
/// accumulator set per range, added up in order, so the result depends neither on scheduling
/// nor on the number of threads.
fn batch_sums(p: Planes, width: usize, add: impl Fn(usize, &mut [f64]) + Sync) -> Vec<f64> {
    let tasks = p.len().div_ceil(GRAIN).clamp(1, p.batch.clamp(1, 16));
    let per = p.batch.div_ceil(tasks);
    let partials: Vec<Vec<f64>> = (0..tasks)
        .into_par_iter()
        .map(|t| {
            let mut acc = vec![0.0f64; width];
            for b in (t * per)..((t + 1) * per).min(p.batch) {
                add(b, &mut acc);
            }
            acc
        })
        .collect();
    partials
        .into_iter()
        .reduce(|mut a, b| {
            a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
            a
        })
        .unwrap_or_else(|| vec![0.0; width])
}

/// Per-position totals (`channels x rest`) summed into per-channel totals.
fn channel_totals(positions: &[f64], p: Planes) -> Vec<f64> {
    positions.chunks_exact(p.rest).map(|run| run.iter().sum()).collect()
}

/// One value per channel repeated for each of its `rest` positions in a row.
fn spread(per_channel: &[f32], rest: usize) -> Vec<f32> {
    per_channel.iter().flat_map(|v| std::iter::repeat_n(*v, rest)).collect()
}

fn train_narrow(x: &[f32], p: Planes, gamma: &[f32], beta: &[f32], epsilon: f64) -> BatchNormValues {
    let (row, m) = (p.row(), p.per_channel() as f64);
    let rows = |b: usize| &x[b * row..][..row];
    let sums = batch_sums(p, row, |b, acc| acc.iter_mut().zip(rows(b)).for_each(|(a, v)| *a += f64::from(*v)));
    let mean: Vec<f32> = channel_totals(&sums, p).iter().map(|s| (s / m) as f32).collect();
    let mean_at = spread(&mean, p.rest);
    let squares = batch_sums(p, row, |b, acc| {
        acc.iter_mut().zip(rows(b)).zip(&mean_at).for_each(|((a, v), mu)| *a += f64::from((v - mu) * (v - mu)));
    });
    let var: Vec<f64> = channel_totals(&squares, p).iter().map(|s| s / m).collect();
    let scale: Vec<f32> = var.iter().zip(gamma).map(|(v, g)| (f64::from(*g) / (v + epsilon).sqrt()) as f32).collect();
    let output = normalise(x, p, &mean, &scale, beta, false);
    BatchNormValues { output, stats: BatchStats { mean, variance: var.iter().map(|v| *v as f32).collect() } }
}

fn grads_narrow(
    x: &[f32],
    dy: &[f32],
    p: Planes,
    mean: &[f32],
    invstd: &[f64],
    gamma: &[f32],
    input: bool,
) -> BatchNormGrads {
    let (row, m) = (p.row(), p.per_channel() as f64);
    let mean_at = spread(mean, p.rest);
    let sums = batch_sums(p, 2 * row, |b, acc| {
        let (s, t) = acc.split_at_mut(row);
        let (d, v) = (&dy[b * row..][..row], &x[b * row..][..row]);
        s.iter_mut().zip(t).zip(d).zip(v).zip(&mean_at).for_each(|((((s, t), d), v), mu)| {
            *s += f64::from(*d);
            *t += f64::from(d * (v - mu));
        });
    });
    let (sum_dy, sum_dy_dev) = sums.split_at(row);
    let (sum_dy, sum_dy_dev) = (channel_totals(sum_dy, p), channel_totals(sum_dy_dev, p));
    let dx = input.then(|| {
        let terms: Vec<[f32; 3]> =
            (0..p.channels).map(|c| input_grad_terms(gamma[c], invstd[c], sum_dy[c], sum_dy_dev[c], m)).collect();
        let term = |i: usize| spread(&terms.iter().map(|t| t[i]).collect::<Vec<_>>(), p.rest);
        let (a, b, k) = (term(0), term(1), term(2));
        let mut dx = vec![0.0f32; x.len()];
        dx.par_chunks_mut(row).zip(dy.par_chunks(row)).zip(x.par_chunks(row)).with_min_len(min_items(row)).for_each(
            |((out, d), v)| {
                let params = a.iter().zip(&b).zip(&k).zip(&mean_at);
                out.iter_mut().zip(d).zip(v).zip(params).for_each(|(((o, d), v), (((a, b), k), mu))| {
                    *o = a * d + b * (v - mu) + k;
                });
            },
        );
        dx
    });
    let gamma_grad = sum_dy_dev.iter().zip(invstd).map(|(t, i)| (t * i) as f32).collect();
    BatchNormGrads { input: dx, gamma: gamma_grad, beta: sum_dy.iter().map(|s| *s as f32).collect() }
}

/// `y = (x - mean) scale + shift` per channel, then ReLU when `relu` is set, in parallel over
/// runs (wide) or rows (narrow).
fn normalise(x: &[f32], p: Planes, mean: &[f32], scale: &[f32], shift: &[f32], relu: bool) -> Vec<f32> {
    let act = |y: f32| if relu { relu_f32(y) } else { y };
    let mut y = vec![0.0f32; x.len()];
    if p.is_empty() {
        return y;
    }
    if p.rest >= WIDE {
        y.par_chunks_mut(p.rest).zip(x.par_chunks(p.rest)).enumerate().with_min_len(min_items(p.rest)).for_each(
            |(i, (out, x))| {
                let c = i % p.channels;
                let (mu, s, t) = (mean[c], scale[c], shift[c]);
                out.iter_mut().zip(x).for_each(|(o, v)| *o = act((v - mu) * s + t));
            },
        );
    } else {
        let (mean, scale, shift) = (spread(mean, p.rest), spread(scale, p.rest), spread(shift, p.rest));
        let row = p.row();
        y.par_chunks_mut(row).zip(x.par_chunks(row)).with_min_len(min_items(row)).for_each(|(out, x)| {
            let params = mean.iter().zip(&scale).zip(&shift);
            out.iter_mut().zip(x).zip(params).for_each(|((o, v), ((mu, s), t))| *o = act((v - mu) * s + t));
        });
    }
    y
}
