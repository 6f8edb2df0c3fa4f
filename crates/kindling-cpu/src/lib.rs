//! Faster CPU kernels for the training path on burn's flex backend, without patching burn.
//!
//! [`conv2d`] is a drop-in for `burn::tensor::module::conv2d`. On the autodiff CPU device
//! (flex under `Autodiff`) it records its own step with burn's autodiff: forward and input
//! gradient by im2col + GEMM per image, images spread over the rayon pool, and a weight
//! gradient that is one fused reduction over the batch:
//!
//! ```text
//! dW[o, (c, ky, kx)] = sum over images b of  dY_b[o, :] · im2col(x_b)[(c, ky, kx), :]ᵀ
//! ```
//!
//! one GEMM per image (m = out channels, n = in channels x kernel area, k = output pixels),
//! each worker accumulating its own `dW`. burn 0.22's generic weight gradient instead runs a
//! convolution over batch/channel-swapped tensors, one GEMM with n = kernel area per input
//! channel, each re-reading the whole output gradient; BENCHMARKS.md has the measured
//! difference per layer. On plain flex tensors (evaluation) it is the same forward pass; on any
//! other device, or for grouped convolutions, it is burn's `conv2d`.
//!
//! [`max_pool2d`], [`avg_pool2d`], [`relu`], [`tanh`], [`batch_norm_train`] and
//! [`batch_norm_eval`] are drop-ins of the same kind for burn's ops: one parallel pass each (per
//! channel for batch norm), activations in place when the buffer is not shared. [`adam_step`]
//! is the Adam/AdamW update of one parameter in one pass, bit for bit the tensor operations'.
//!
//! Every path is checked against burn's own op and its gradients (tests/kernels/: conv.rs,
//! act.rs, norm.rs; the Adam step in kindling-optim).
//! Setting `KINDLING_FAST_CPU=0` turns the fast path off, for comparisons.

use std::cell::Cell;
use std::sync::OnceLock;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Shape, Tensor, TensorData};
use kindling_kernels::{MatRef, sgemm};
use rayon::prelude::*;

mod act;
mod direct;
mod norm;
mod optim;
mod pool;

pub use act::{relu, tanh};
pub use direct::has_avx512;
pub use norm::*;
pub use optim::{AdamInputs, AdamScalars, AdamUpdate, adam_step};
pub use pool::{AvgPool, MaxPool, avg_pool2d, max_pool_backward_values, max_pool2d};

type Ad = Autodiff<Flex, NoCheckpointing>;

/// The kernels compute in `f32`; tensors of any other type take burn's ops.
pub(crate) fn f32_only(types: &[burn::tensor::DType]) -> bool {
    types.iter().all(|t| *t == burn::tensor::DType::F32)
}

/// Runs `f` compiled for the widest vector instructions this CPU has (AVX-512, else AVX2 with
/// FMA, else the baseline), chosen at run time: the crate is built for baseline x86-64, where
/// the compiler vectorises a loop only 4 lanes wide. `f` should be a plain loop over slices,
/// inlined into the closure, so that the compiler can vectorise it for the chosen set.
#[inline(always)]
pub(crate) fn simd<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if let Some(isa) = pulp::x86::V4::try_new() {
            return isa.vectorize(f);
        }
        if let Some(isa) = pulp::x86::V3::try_new() {
            return isa.vectorize(f);
        }
    }
    f()
}

/// Whether the fast path is on: unless `KINDLING_FAST_CPU=0`.
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var("KINDLING_FAST_CPU").map_or(true, |v| v != "0"))
}

thread_local! {
    static FUSED_WEIGHT_GRADS: Cell<usize> = const { Cell::new(0) };
}

/// How many weight gradients the fused kernel has computed for backward passes run on this
/// thread (so tests and benchmarks can tell that the fast path ran).
pub fn fused_weight_grads() -> usize {
    FUSED_WEIGHT_GRADS.with(Cell::get)
}

/// Seconds spent in this crate's backward steps on this thread, by kind (for profiles: burn
/// runs a backward pass as one call, so this is how its parts are told apart).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BackwardTimes {
    /// Convolution weight gradients (the fused kernel).
    pub conv_weight: f64,
    /// Convolution input gradients.
    pub conv_input: f64,
    /// Convolution bias gradients.
    pub conv_bias: f64,
    /// Max-pooling input gradients.
    pub max_pool: f64,
    /// Average-pooling input gradients.
    pub avg_pool: f64,
    /// Batch-normalisation gradients (input, scale and shift).
    pub batch_norm: f64,
    /// Activation (ReLU, tanh) input gradients.
    pub activation: f64,
}

impl BackwardTimes {
    /// Each kind with its name, in a fixed order (how profiles list them).
    pub fn parts(&self) -> [(&'static str, f64); 7] {
        [
            ("conv weight gradients", self.conv_weight),
            ("conv input gradients", self.conv_input),
            ("conv bias gradients", self.conv_bias),
            ("max pooling", self.max_pool),
            ("average pooling", self.avg_pool),
            ("batch norm", self.batch_norm),
            ("activations", self.activation),
        ]
    }

    /// Each field of `self` minus the same field of `before`.
    #[must_use]
    pub fn since(&self, before: &Self) -> Self {
        Self {
            conv_weight: self.conv_weight - before.conv_weight,
            conv_input: self.conv_input - before.conv_input,
            conv_bias: self.conv_bias - before.conv_bias,
            max_pool: self.max_pool - before.max_pool,
            avg_pool: self.avg_pool - before.avg_pool,
            batch_norm: self.batch_norm - before.batch_norm,
            activation: self.activation - before.activation,
        }
    }
}

thread_local! {
    static TIMES: Cell<BackwardTimes> = Cell::new(BackwardTimes::default());
}

/// The backward time so far on this thread.
pub fn backward_times() -> BackwardTimes {
    TIMES.with(Cell::get)
}

/// Runs `f`, adding its duration to the field `slot` picks.
pub(crate) fn timed<T>(slot: fn(&mut BackwardTimes) -> &mut f64, f: impl FnOnce() -> T) -> T {
    let start = std::time::Instant::now();
    let out = f();
    TIMES.with(|t| {
        let mut times = t.get();
        *slot(&mut times) += start.elapsed().as_secs_f64();
        t.set(times);
    });
    out
}

/// `burn::tensor::module::conv2d`, faster on the CPU device: on autodiff flex tensors with
/// this crate's forward pass and backward step, on plain flex tensors (evaluation) with its
/// forward pass, anywhere else burn's own.
pub fn conv2d(x: Tensor<4>, weight: Tensor<4>, bias: Option<Tensor<1>>, options: ConvOptions<2>) -> Tensor<4> {
    let ([_, _, h, w], [_, _, kh, kw]) = (x.dims(), weight.dims());
    // A kernel wider than the padded input has no output: burn's op says so.
    let fits = |len: usize, k: usize, axis: usize| {
        let (p0, p1) = options.padding[axis];
        len + p0 + p1 > options.dilation[axis] * (k.max(1) - 1)
    };
    if enabled() && options.groups == 1 && f32_only(&[x.dtype(), weight.dtype()]) && fits(h, kh, 0) && fits(w, kw, 1) {
        let tracked = (
            x.clone().try_into_primitive::<Ad>(),
            weight.clone().try_into_primitive::<Ad>(),
            bias.clone().map(|b| b.try_into_primitive::<Ad>()).transpose(),
        );
        if let (Ok(x), Ok(w), Ok(b)) = tracked {
            return Tensor::from_primitive::<Ad>(autodiff_conv(x, w, b, options));
        }
        let plain = (
            x.clone().try_into_primitive::<Flex>(),
            weight.clone().try_into_primitive::<Flex>(),
            bias.clone().map(|b| b.try_into_primitive::<Flex>()).transpose(),
        );
        if let (Ok(x), Ok(w), Ok(b)) = plain {
            return Tensor::from_primitive::<Flex>(forward(&x, &w, b.as_ref(), &options));
        }
    }
    burn::tensor::module::conv2d(x, weight, bias, options)
}

type AdTensor = burn::backend::tensor::FloatTensor<Ad>;

/// What the backward step keeps: the input, the weight and the options.
type State = (FlexTensor, FlexTensor, ConvOptions<2>);

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
    let (x, w, options) = state;
    let (xd, wd) = (dims4(&x), dims4(&w));
    let g = Geometry::new(xd, wd, &options);
    let dy = values(&grad);
    if let Some(id) = node_w {
        let dw = timed(|t| &mut t.conv_weight, || weight_grad_values(&values(&x), &dy, xd[0], wd[0], &g));
        FUSED_WEIGHT_GRADS.with(|n| n.set(n.get() + 1));
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
    let (xd, wd) = (dims4(x), dims4(w));
    let g = Geometry::new(xd, wd, options);
    let bias = b.map(values);
    let y = forward_values(&values(x), &values(w), bias.as_deref(), xd[0], wd[0], &g);
    flex(y, [xd[0], wd[0], g.output[0], g.output[1]])
}

fn autodiff_conv(x: AdTensor, w: AdTensor, b: Option<AdTensor>, options: ConvOptions<2>) -> AdTensor {
    let y = || forward(x.primitive(), w.primitive(), b.as_ref().map(|b| b.primitive()), &options);
    let state = || (x.primitive().clone(), w.primitive().clone(), options.clone());
    match &b {
        Some(bias) => {
            match ConvWithBias.prepare::<NoCheckpointing>([x.node(), w.node(), bias.node()]).compute_bound().stateful()
            {
                OpsKind::Tracked(prep) => prep.finish(state(), y()),
                OpsKind::UnTracked(prep) => prep.finish(y()),
            }
        }
        None => match ConvNoBias.prepare::<NoCheckpointing>([x.node(), w.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(state(), y()),
            OpsKind::UnTracked(prep) => prep.finish(y()),
        },
    }
}

/// The values of a flex tensor in row-major order (copied only when it is not contiguous).
pub(crate) fn values(t: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(t.to_contiguous().as_slice::<f32>().expect("contiguous f32").to_vec()),
    }
}

/// `t` with a buffer of its own, contiguous from offset 0 (moved when it already is, copied
/// otherwise), so it can be written in place.
pub(crate) fn owned(t: FlexTensor) -> FlexTensor {
    if t.is_unique() && t.layout().is_contiguous() && t.layout().start_offset() == 0 {
        return t;
    }
    let shape = t.layout().shape().clone();
    flex(crate::values(&t).into_owned(), shape)
}

/// A contiguous flex tensor of `v` in `shape`.
pub(crate) fn flex(v: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v, shape))
}

pub(crate) fn dims4(t: &FlexTensor) -> [usize; 4] {
    let d = t.layout().shape().dims::<4>();
    [d[0], d[1], d[2], d[3]]
}

/// The geometry of one convolution, in the terms the kernels use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Input channels, height, width.
    pub input: [usize; 3],
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Output height and width.
    pub output: [usize; 2],
    /// Stride per axis.
    pub stride: [usize; 2],
    /// Padding before the first row and column.
    pub pad: [usize; 2],
    /// Dilation per axis.
    pub dilation: [usize; 2],
}

impl Geometry {
    /// The geometry of `x [n, c, h, w]` convolved with `w [o, c, kh, kw]` under `options`.
    pub fn new(x: [usize; 4], w: [usize; 4], options: &ConvOptions<2>) -> Self {
        let [_, c, h, wd] = x;
        let [_, _, kh, kw] = w;
        let out = |len: usize, axis: usize, k: usize| {
            let (p0, p1) = options.padding[axis];
            (len + p0 + p1 - options.dilation[axis] * (k - 1) - 1) / options.stride[axis] + 1
        };
        Self {
            input: [c, h, wd],
            kernel: [kh, kw],
            output: [out(h, 0, kh), out(wd, 1, kw)],
            stride: options.stride,
            pad: [options.padding[0].0, options.padding[1].0],
            dilation: options.dilation,
        }
    }

    /// Rows of the column matrix: `c * kh * kw`.
    pub fn patch(&self) -> usize {
        self.input[0] * self.kernel[0] * self.kernel[1]
    }

    /// Columns of the column matrix: `oh * ow`.
    pub fn pixels(&self) -> usize {
        self.output[0] * self.output[1]
    }

    /// The input index read by output position `o` through tap `k` on `axis`, if inside.
    fn source(&self, axis: usize, o: usize, k: usize) -> Option<usize> {
        (o * self.stride[axis] + k * self.dilation[axis])
            .checked_sub(self.pad[axis])
            .filter(|&i| i < self.input[axis + 1])
    }

    /// The output columns whose kernel column `kx` reads inside the input row: those with
    /// `ox·s + kx·d - p` in `0..w`, a contiguous range found by arithmetic (it runs once per
    /// tap and image, so it allocates nothing).
    fn valid_columns(&self, kx: usize) -> std::ops::Range<usize> {
        let (s, p, offset, w, ow) = (self.stride[1], self.pad[1], kx * self.dilation[1], self.input[2], self.output[1]);
        let lo = p.saturating_sub(offset).div_ceil(s).min(ow);
        let hi = (w + p).saturating_sub(offset).div_ceil(s).min(ow);
        lo..hi.max(lo)
    }

    /// Fills `cols` (`patch()` rows by `pixels()` columns) with the receptive fields of
    /// `image` (`c * h * w` values): row `(c * kh + ky) * kw + kx`, column `oy * ow + ox`
    /// holds `image[c, oy·s + ky·d - p, ox·s + kx·d - p]`, or 0 in the padding.
    pub fn im2col(&self, image: &[f32], cols: &mut [f32]) {
        let [c, h, w] = self.input;
        let [kh, kw] = self.kernel;
        let [oh, ow] = self.output;
        assert_eq!(image.len(), c * h * w);
        assert_eq!(cols.len(), self.patch() * self.pixels());
        let mut rows = cols.chunks_exact_mut(oh * ow);
        for ch in 0..c {
            let plane = &image[ch * h * w..][..h * w];
            for ky in 0..kh {
                for kx in 0..kw {
                    let row = rows.next().expect("one row per tap");
                    let std::ops::Range { start: lo, end: hi } = self.valid_columns(kx);
                    for (oy, out) in row.chunks_exact_mut(ow).enumerate() {
                        let Some(iy) = self.source(0, oy, ky) else {
                            out.fill(0.0);
                            continue;
                        };
                        out[..lo].fill(0.0);
                        out[hi.max(lo)..].fill(0.0);
                        if hi <= lo {
                            continue;
                        }
                        let input = &plane[iy * w..][..w];
                        let first = lo * self.stride[1] + kx * self.dilation[1] - self.pad[1];
                        if self.stride[1] == 1 {
                            out[lo..hi].copy_from_slice(&input[first..first + hi - lo]);
                        } else {
                            out[lo..hi]
                                .iter_mut()
                                .zip(input[first..].iter().step_by(self.stride[1]))
                                .for_each(|(o, i)| *o = *i);
                        }
                    }
                }
            }
        }
    }

    /// Whether the input gradient runs in the "wide" layout: stride 1, no dilation, and a padded
    /// width at most a sixth over the output width. The output gradient is then spread over
    /// every column of the padded input (`oh x wp`, zero in the last `kw - 1` columns of each
    /// row), so that each row of the column-matrix gradient adds onto one contiguous slice of
    /// the padded plane: long vector adds instead of one short add per output row. The price is
    /// the zero columns' share of the product (7% at 28 x 28, 14% at 14 x 14). The forward pass
    /// and the weight gradient take the same layout only where rows are short
    /// ([`wide_forward`](Self::wide_forward)).
    pub fn wide(&self) -> bool {
        let [_, wp] = self.padded();
        self.stride == [1, 1] && self.dilation == [1, 1] && (wp - self.output[1]) * 6 <= self.output[1]
    }

    /// Height and width of the padded input: `oh + kh - 1`, `ow + kw - 1` (stride 1).
    fn padded(&self) -> [usize; 2] {
        [self.output[0] + self.kernel[0] - 1, self.output[1] + self.kernel[1] - 1]
    }

    /// Values per padded plane: the padded input plus `kw - 1` zeros that the last row's
    /// discarded columns read past its end.
    fn padded_plane(&self) -> usize {
        let [hp, wp] = self.padded();
        hp * wp + self.kernel[1] - 1
    }

    /// Columns of the wide column matrix: `oh * wp`.
    fn wide_pixels(&self) -> usize {
        self.output[0] * self.padded()[1]
    }

    /// Whether the forward pass and the weight gradient run in the wide layout too: where the
    /// output rows are short (at most 16 columns) and the discarded columns no more than the
    /// kept ones. There the general im2col pays one short copy per output row, and the product's
    /// row count is a poor fit for gemm's 16-row tiles (49 rows at 7 x 7 run as 64), which the
    /// wide rows fit better (63). Measured on `vgg3`: +3% training, +5% inference; on LeNet-5's
    /// second convolution (10 columns kept of 14): +4% training, +8% inference. At 28 x 28 the
    /// wide forward pass was slower, so it stays general there. Where the direct kernels apply
    /// ([`direct`](Self::direct), [`direct_weight_grad`](Self::direct_weight_grad), AVX-512
    /// only) they come first.
    pub fn wide_forward(&self) -> bool {
        let [_, wp] = self.padded();
        self.stride == [1, 1]
            && self.dilation == [1, 1]
            && self.output[1] <= 16
            && wp - self.output[1] <= self.output[1]
    }

    /// Copies `image` into the interior of `padded` (`c` padded planes, `plane` values apart);
    /// the border is left as it is (zero, written once when the buffer was made).
    fn pad_into(&self, image: &[f32], padded: &mut [f32], plane: usize) {
        let [c, h, w] = self.input;
        let [_, wp] = self.padded();
        for ch in 0..c {
            for iy in 0..h {
                let at = ch * plane + (iy + self.pad[0]) * wp + self.pad[1];
                padded[at..at + w].copy_from_slice(&image[(ch * h + iy) * w..][..w]);
            }
        }
    }

    /// The wide column matrix (`patch()` rows of `wide_pixels()`) of a padded image: row
    /// `(c, ky, kx)` is the padded plane `c` from offset `ky * wp + kx` on.
    fn im2col_wide(&self, padded: &[f32], cols: &mut [f32]) {
        let ([_, wp], plane, n) = (self.padded(), self.padded_plane(), self.wide_pixels());
        let taps = self.kernel[0] * self.kernel[1];
        for (r, row) in cols.chunks_exact_mut(n).enumerate() {
            let (ch, t) = (r / taps, r % taps);
            let at = ch * plane + (t / self.kernel[1]) * wp + t % self.kernel[1];
            row.copy_from_slice(&padded[at..at + n]);
        }
    }

    /// Wide rows back to output planes, dropping the discarded columns.
    fn narrow(&self, wide: &[f32], planes: &mut [f32]) {
        let ([oh, ow], wp, n) = (self.output, self.padded()[1], self.wide_pixels());
        for (row, plane) in wide.chunks_exact(n).zip(planes.chunks_exact_mut(oh * ow)) {
            for (src, dst) in row.chunks_exact(wp).zip(plane.chunks_exact_mut(ow)) {
                dst.copy_from_slice(&src[..ow]);
            }
        }
    }

    /// The adjoint of a wide column matrix (row `(c, ky, kx)` being the padded plane `c` from
    /// offset `ky * wp + kx` on): adds each row of `cols` onto its slice of the padded planes
    /// `padded` (which the caller zeroes first).
    fn col2im_wide(&self, cols: &[f32], padded: &mut [f32]) {
        let ([_, wp], plane, n) = (self.padded(), self.padded_plane(), self.wide_pixels());
        let taps = self.kernel[0] * self.kernel[1];
        for (r, row) in cols.chunks_exact(n).enumerate() {
            let (ch, t) = (r / taps, r % taps);
            let at = ch * plane + (t / self.kernel[1]) * wp + t % self.kernel[1];
            simd(|| padded[at..at + n].iter_mut().zip(row).for_each(|(d, g)| *d += g));
        }
    }

    /// The interior of padded planes, as an image (`c * h * w` values).
    fn crop(&self, padded: &[f32], image: &mut [f32]) {
        let [c, h, w] = self.input;
        let ([_, wp], plane) = (self.padded(), self.padded_plane());
        for ch in 0..c {
            for iy in 0..h {
                let at = ch * plane + (iy + self.pad[0]) * wp + self.pad[1];
                image[(ch * h + iy) * w..][..w].copy_from_slice(&padded[at..at + w]);
            }
        }
    }

    /// Output planes (`channels` of `oh x ow`) to wide rows (`channels` of `oh x wp`), leaving
    /// the discarded columns as they are (zero).
    fn widen(&self, planes: &[f32], wide: &mut [f32]) {
        let ([oh, ow], wp, n) = (self.output, self.padded()[1], self.wide_pixels());
        for (plane, row) in planes.chunks_exact(oh * ow).zip(wide.chunks_exact_mut(n)) {
            for (src, dst) in plane.chunks_exact(ow).zip(row.chunks_exact_mut(wp)) {
                dst[..ow].copy_from_slice(src);
            }
        }
    }

    /// The adjoint of [`im2col`](Self::im2col): adds every entry of `cols` onto the input
    /// pixel it was copied from, into `image`; entries from the padding are dropped.
    pub fn col2im(&self, cols: &[f32], image: &mut [f32]) {
        let [c, h, w] = self.input;
        let [kh, kw] = self.kernel;
        let [oh, ow] = self.output;
        assert_eq!(image.len(), c * h * w);
        assert_eq!(cols.len(), self.patch() * self.pixels());
        let mut rows = cols.chunks_exact(oh * ow);
        for ch in 0..c {
            let plane = &mut image[ch * h * w..][..h * w];
            for ky in 0..kh {
                for kx in 0..kw {
                    let row = rows.next().expect("one row per tap");
                    let std::ops::Range { start: lo, end: hi } = self.valid_columns(kx);
                    if hi <= lo {
                        continue;
                    }
                    for (oy, grads) in row.chunks_exact(ow).enumerate() {
                        let Some(iy) = self.source(0, oy, ky) else { continue };
                        let input = &mut plane[iy * w..][..w];
                        let first = lo * self.stride[1] + kx * self.dilation[1] - self.pad[1];
                        if self.stride[1] == 1 {
                            // Contiguous on both sides: plain slices, so the adds vectorise.
                            let taps = &mut input[first..first + hi - lo];
                            taps.iter_mut().zip(&grads[lo..hi]).for_each(|(i, g)| *i += g);
                        } else {
                            let taps = input[first..].iter_mut().step_by(self.stride[1]);
                            taps.zip(&grads[lo..hi]).for_each(|(i, g)| *i += g);
                        }
                    }
                }
            }
        }
    }
}

/// The forward convolution plus the bias, images in parallel: the direct kernels where
/// [`Geometry::direct_rows`] or [`Geometry::direct`] says so, else per image `W · im2col(x_b)`.
pub fn forward_values(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    n: usize,
    out_channels: usize,
    g: &Geometry,
) -> Vec<f32> {
    if g.direct_rows() {
        return direct::forward_rows(x, w, bias, n, out_channels, g);
    }
    if g.direct() {
        return direct::forward_direct(x, w, bias, n, out_channels, g);
    }
    forward_im2col(x, w, bias, n, out_channels, g)
}

/// [`forward_values`] by im2col + GEMM whatever the CPU and the geometry (the path where the
/// direct kernel does not apply).
pub fn forward_im2col(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    n: usize,
    out_channels: usize,
    g: &Geometry,
) -> Vec<f32> {
    let [c, h, wd] = g.input;
    let (image, patch, pixels) = (c * h * wd, g.patch(), g.pixels());
    let mut y = vec![0.0f32; n * out_channels * pixels];
    if g.wide_forward() {
        let wide = g.wide_pixels();
        // Per task: the padded image, its column matrix and the wide output.
        let scratch =
            || (vec![0.0f32; c * g.padded_plane()], vec![0.0f32; patch * wide], vec![0.0f32; out_channels * wide]);
        y.par_chunks_mut(out_channels * pixels).enumerate().for_each_init(
            scratch,
            |(padded, cols, y_wide), (b, out)| {
                g.pad_into(&x[b * image..][..image], padded, g.padded_plane());
                g.im2col_wide(padded, cols);
                if let Some(bias) = bias {
                    y_wide.chunks_exact_mut(wide).zip(bias).for_each(|(row, v)| row.fill(*v));
                }
                sgemm(MatRef::new(w, out_channels, patch), MatRef::new(cols, patch, wide), y_wide, bias.is_some(), 1);
                g.narrow(y_wide, out);
            },
        );
        return y;
    }
    y.par_chunks_mut(out_channels * pixels).enumerate().for_each_init(
        || vec![0.0f32; patch * pixels],
        |cols, (b, out)| {
            g.im2col(&x[b * image..][..image], cols);
            if let Some(bias) = bias {
                out.chunks_exact_mut(pixels).zip(bias).for_each(|(row, v)| row.fill(*v));
            }
            sgemm(MatRef::new(w, out_channels, patch), MatRef::new(cols, patch, pixels), out, bias.is_some(), 1);
        },
    );
    y
}

/// The input gradient, images in parallel: the direct kernel where
/// [`Geometry::direct_input_grad`] says so, else per image `col2im(Wᵀ · dY_b)`.
pub fn input_grad_values(dy: &[f32], w: &[f32], n: usize, out_channels: usize, g: &Geometry) -> Vec<f32> {
    if g.direct_input_grad() {
        return direct::input_grad_direct(dy, w, n, out_channels, g);
    }
    input_grad_im2col(dy, w, n, out_channels, g)
}

/// [`input_grad_values`] by GEMM + col2im whatever the CPU and the geometry.
pub fn input_grad_im2col(dy: &[f32], w: &[f32], n: usize, out_channels: usize, g: &Geometry) -> Vec<f32> {
    let [c, h, wd] = g.input;
    let (image, patch, pixels) = (c * h * wd, g.patch(), g.pixels());
    let mut dx = vec![0.0f32; n * image];
    if g.wide() {
        let wide = g.wide_pixels();
        // Per task: the output gradient widened (its discarded columns stay zero, so they add
        // nothing), the column-matrix gradient and the padded input gradient.
        let scratch =
            || (vec![0.0f32; out_channels * wide], vec![0.0f32; patch * wide], vec![0.0f32; c * g.padded_plane()]);
        dx.par_chunks_mut(image).enumerate().for_each_init(scratch, |(dy_wide, cols, padded), (b, out)| {
            g.widen(&dy[b * out_channels * pixels..][..out_channels * pixels], dy_wide);
            sgemm(MatRef::new(w, out_channels, patch).t(), MatRef::new(dy_wide, out_channels, wide), cols, false, 1);
            padded.fill(0.0);
            g.col2im_wide(cols, padded);
            g.crop(padded, out);
        });
        return dx;
    }
    dx.par_chunks_mut(image).enumerate().for_each_init(
        || vec![0.0f32; patch * pixels],
        |cols, (b, out)| {
            let grad = MatRef::new(&dy[b * out_channels * pixels..][..out_channels * pixels], out_channels, pixels);
            sgemm(MatRef::new(w, out_channels, patch).t(), grad, cols, false, 1);
            g.col2im(cols, out);
        },
    );
    dx
}

/// `dW` of a convolution: the direct kernel where [`Geometry::direct_weight_grad`] says so,
/// else per image one GEMM `dY_b · im2col(x_b)ᵀ`; the batch split across the rayon pool, each
/// worker with its own accumulator.
pub fn weight_grad_values(x: &[f32], dy: &[f32], n: usize, out_channels: usize, g: &Geometry) -> Vec<f32> {
    let (image, pixels) = (g.input.iter().product::<usize>(), g.pixels());
    assert_eq!(x.len(), n * image);
    assert_eq!(dy.len(), n * out_channels * pixels);
    if g.direct_weight_grad() {
        return direct::weight_grad_direct(x, dy, n, out_channels, g);
    }
    weight_grad_im2col(x, dy, n, out_channels, g)
}

/// Pieces a batch's weight-gradient sum is split into: a fixed count, whatever the number of
/// threads, so the partial sums (added up in order afterwards) and therefore the trained
/// weights are bit for bit the same on 1, 2 or 16 threads. 16 keeps 16 threads busy at the
/// usual batch sizes; the extra partials cost well under 1% of a step.
const BATCH_PIECES: usize = 16;

/// Images per piece of a batch of `n` (see [`BATCH_PIECES`]); at least 1.
pub(crate) fn batch_piece(n: usize) -> usize {
    n.div_ceil(BATCH_PIECES).max(1)
}

/// [`weight_grad_values`] by im2col + GEMM whatever the CPU and the geometry.
pub fn weight_grad_im2col(x: &[f32], dy: &[f32], n: usize, out_channels: usize, g: &Geometry) -> Vec<f32> {
    let [c, h, w] = g.input;
    let (image, patch, pixels) = (c * h * w, g.patch(), g.pixels());
    assert_eq!(x.len(), n * image);
    assert_eq!(dy.len(), n * out_channels * pixels);
    let per = batch_piece(n);
    let partials: Vec<Vec<f32>> = (0..n.div_ceil(per))
        .into_par_iter()
        .map(|t| {
            let mut dw = vec![0.0f32; out_channels * patch];
            let images = (t * per)..((t + 1) * per).min(n);
            if g.wide_forward() {
                let wide = g.wide_pixels();
                let (mut padded, mut cols) = (vec![0.0f32; c * g.padded_plane()], vec![0.0f32; patch * wide]);
                // The output gradient widened: its discarded columns stay zero, so they add nothing.
                let mut dy_wide = vec![0.0f32; out_channels * wide];
                for b in images {
                    g.pad_into(&x[b * image..][..image], &mut padded, g.padded_plane());
                    g.im2col_wide(&padded, &mut cols);
                    g.widen(&dy[b * out_channels * pixels..][..out_channels * pixels], &mut dy_wide);
                    let grad = MatRef::new(&dy_wide, out_channels, wide);
                    sgemm(grad, MatRef::new(&cols, patch, wide).t(), &mut dw, true, 1);
                }
                return dw;
            }
            let mut cols = vec![0.0f32; patch * pixels];
            for b in images {
                g.im2col(&x[b * image..][..image], &mut cols);
                let grad = MatRef::new(&dy[b * out_channels * pixels..][..out_channels * pixels], out_channels, pixels);
                sgemm(grad, MatRef::new(&cols, patch, pixels).t(), &mut dw, true, 1);
            }
            dw
        })
        .collect();
    let total = partials.into_iter().reduce(|mut a, b| {
        a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
        a
    });
    total.unwrap_or_else(|| vec![0.0; out_channels * patch])
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

/// `sum f(v)` in 16 independent `f32` lanes, which the compiler turns into vector adds (a plain
/// `iter().sum()` is one serial chain of float additions).
#[inline(always)]
pub(crate) fn lane_sum(v: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0.0f32; 16];
    let chunks = v.chunks_exact(16);
    let rest: f32 = chunks.remainder().iter().map(|x| f(*x)).sum();
    for chunk in chunks {
        lanes.iter_mut().zip(chunk).for_each(|(l, x)| *l += f(*x));
    }
    lanes.iter().sum::<f32>() + rest
}
