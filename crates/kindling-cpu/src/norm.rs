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

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::{Shape, Tensor};

use crate::flex::{Ad, flex, values};
use crate::switch::{enabled, f32_only};

mod autodiff;
mod narrow;
mod values;
mod wide;

use autodiff::{autodiff_train, autodiff_train_pooled};
pub(crate) use values::eval_scale;
pub use values::{batch_norm_eval_values, batch_norm_grad_values, batch_norm_train_values};
use values::{eval_values, train_values};

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

/// [`batch_norm_relu_train`] followed by a max pool (`nn.BatchNorm2d`, `nn.ReLU`,
/// `nn.MaxPool2d` in training), as one operation on the autodiff CPU device for 2x2 windows at
/// stride 2 without border: each channel's planes are normalised, cut at 0 and pooled while in
/// cache, so the full-size output is never written, and the backward step runs the pool's
/// scatter before batch norm's own. Values and gradients are bit for bit those of the three
/// operations, which run one after another anywhere else. The statistics are the batch's, as
/// for [`batch_norm_train`].
pub fn batch_norm_relu_pool_train(
    input: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
    pool: crate::MaxPool,
) -> BatchNormBatch<4> {
    check_shapes(&input.dims(), &[&gamma, &beta]);
    if pool.is_plain_2x2()
        && Planes::of(&input.dims()).rest >= WIDE
        && fast(&input, &[&gamma, &beta])
        && let (Ok(x), Ok(g), Ok(b)) = (
            input.clone().try_into_primitive::<Ad>(),
            gamma.clone().try_into_primitive::<Ad>(),
            beta.clone().try_into_primitive::<Ad>(),
        )
    {
        return autodiff_train_pooled(x, g, b, epsilon, true, true);
    }
    let batch = batch_norm_relu_train(input, gamma, beta, epsilon);
    BatchNormBatch { output: crate::max_pool2d(batch.output, pool), ..batch }
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
    let relu_after = |batch: BatchNormBatch<D>| BatchNormBatch { output: crate::act::relu(batch.output), ..batch };
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
    if relu { crate::act::relu(y) } else { y }
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

/// How many consecutive items of `len` values one task should take at least.
fn min_items(len: usize) -> usize {
    (GRAIN / len.max(1)).max(1)
}
