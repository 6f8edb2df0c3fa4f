//! Max pooling on the CPU device: one pass that keeps each window's argmax as a `u32` offset in
//! its plane, and a backward step that adds each output gradient onto that input pixel. flex
//! runs 2-D pooling as 3-D pooling and keeps 64-bit indices; this is the same arithmetic with a
//! quarter of the index traffic and planes spread over the rayon pool.

use std::sync::Arc;

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::tensor::Tensor;
use rayon::prelude::*;

use crate::flex::{Ad, AdTensor, dims4, flex, values};
use crate::simd::simd;
use crate::switch::{enabled, f32_only};
use crate::timing::timed;

/// A max-pooling window: kernel, stride, padding (both sides), dilation and ceil mode, as
/// `torch.nn.MaxPool2d` takes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool {
    /// Window height and width.
    pub kernel: [usize; 2],
    /// Step between windows.
    pub stride: [usize; 2],
    /// Implicit `-inf` border on each side.
    pub padding: [usize; 2],
    /// Spacing of the window's taps.
    pub dilation: [usize; 2],
    /// Round the output size up, keeping a last window that starts inside the input.
    pub ceil_mode: bool,
}

impl MaxPool {
    /// The same window as burn's options (for burn's op, the fallback and the reference).
    pub fn options(&self) -> burn::tensor::ops::MaxPoolOptions<2> {
        burn::tensor::ops::MaxPoolOptions {
            kernel_size: self.kernel,
            stride: self.stride,
            padding: self.padding.map(|p| (p, p)),
            dilation: self.dilation,
            ceil_mode: self.ceil_mode,
        }
    }

    /// Output length along `axis` for an input of `len` (PyTorch's rule).
    pub fn output_len(&self, axis: usize, len: usize) -> usize {
        let (k, s, p, d) = (self.kernel[axis], self.stride[axis], self.padding[axis], self.dilation[axis]);
        let span = d * (k - 1) + 1;
        let padded = len + 2 * p;
        if padded < span {
            return usize::from(self.ceil_mode);
        }
        if self.ceil_mode {
            let out = (padded - span).div_ceil(s) + 1;
            if (out - 1) * s >= len + p { out - 1 } else { out }
        } else {
            (padded - span) / s + 1
        }
    }

    /// The presets' pool on an `h x w` input: 2x2 windows, stride 2, no border, every window
    /// inside the input.
    fn is_2x2(&self, [h, w]: [usize; 2]) -> bool {
        self.kernel == [2, 2]
            && self.stride == [2, 2]
            && self.padding == [0, 0]
            && self.dilation == [1, 1]
            && self.output_len(0, h) * 2 <= h
            && self.output_len(1, w) * 2 <= w
    }

    /// Whether these are 2x2 windows at stride 2 without border or dilation, in floor mode:
    /// the pool a convolution at evaluation can apply in its output pass.
    pub(crate) fn is_plain_2x2(&self) -> bool {
        self.kernel == [2, 2]
            && self.stride == [2, 2]
            && self.padding == [0, 0]
            && self.dilation == [1, 1]
            && !self.ceil_mode
    }

    /// Whether the windows tile the input without overlapping (each input pixel is in at most
    /// one window), so the backward step can store gradients instead of adding them.
    fn disjoint(&self) -> bool {
        self.stride[0] >= self.kernel[0]
            && self.stride[1] >= self.kernel[1]
            && self.padding == [0, 0]
            && self.dilation == [1, 1]
    }

    /// Pools `x` (`planes` planes of `h x w`): the outputs and, per output, the offset of the
    /// maximum in its plane.
    pub fn forward_values(&self, x: &[f32], planes: usize, [h, w]: [usize; 2]) -> (Vec<f32>, Vec<u32>) {
        let (oh, ow) = (self.output_len(0, h), self.output_len(1, w));
        let mut out = vec![0.0f32; planes * oh * ow];
        let mut arg = vec![0u32; planes * oh * ow];
        let (simple, quad) = (self.padding == [0, 0] && self.dilation == [1, 1], self.is_2x2([h, w]));
        out.par_chunks_mut(oh * ow).zip(arg.par_chunks_mut(oh * ow)).enumerate().for_each(|(p, (out, arg))| {
            let plane = &x[p * h * w..][..h * w];
            if quad {
                // Here the output is exactly `[h / 2, w / 2]`.
                max_2x2_planes_with_args(plane, [h, w], out, arg);
                return;
            }
            if simple {
                // No border, contiguous taps: the window is rows y0..y1, columns x0..x1.
                for oy in 0..oh {
                    let (y0, y1) = (oy * self.stride[0], (oy * self.stride[0] + self.kernel[0]).min(h));
                    for ox in 0..ow {
                        let (x0, x1) = (ox * self.stride[1], (ox * self.stride[1] + self.kernel[1]).min(w));
                        let (mut best, mut at) = (plane[y0 * w + x0], y0 * w + x0);
                        for iy in y0..y1 {
                            for (ix, &v) in plane[iy * w + x0..iy * w + x1].iter().enumerate() {
                                if v > best || (v.is_nan() && !best.is_nan()) {
                                    (best, at) = (v, iy * w + x0 + ix);
                                }
                            }
                        }
                        out[oy * ow + ox] = best;
                        arg[oy * ow + ox] = at as u32;
                    }
                }
                return;
            }
            for oy in 0..oh {
                for ox in 0..ow {
                    let (mut best, mut at) = (f32::NEG_INFINITY, u32::MAX);
                    for ky in 0..self.kernel[0] {
                        let Some(iy) = (oy * self.stride[0] + ky * self.dilation[0]).checked_sub(self.padding[0])
                        else {
                            continue;
                        };
                        if iy >= h {
                            break;
                        }
                        for kx in 0..self.kernel[1] {
                            let Some(ix) = (ox * self.stride[1] + kx * self.dilation[1]).checked_sub(self.padding[1])
                            else {
                                continue;
                            };
                            if ix >= w {
                                break;
                            }
                            let v = plane[iy * w + ix];
                            // NaN wins, as in PyTorch; ties keep the first tap.
                            if v > best || (v.is_nan() && !best.is_nan()) || at == u32::MAX {
                                (best, at) = (v, (iy * w + ix) as u32);
                            }
                        }
                    }
                    out[oy * ow + ox] = best;
                    arg[oy * ow + ox] = at;
                }
            }
        });
        (out, arg)
    }
}

/// One output row of the 2x2/stride-2 pool, without branches (after a ReLU the maximum is a
/// coin toss between zeros and positives, which a branch mispredicts about half the time): `rows`
/// are the two input rows, `first` the plane offset of the window row's first pixel, `w` the
/// input width. The first tap wins ties and a NaN wins over numbers, as in PyTorch.
#[inline(always)]
fn pool_2x2_row((r0, r1): (&[f32], &[f32]), first: u32, w: u32, out: &mut [f32], arg: &mut [u32]) {
    let windows = r0.chunks_exact(2).zip(r1.chunks_exact(2));
    for (ox, ((o, a), (p, q))) in out.iter_mut().zip(arg.iter_mut()).zip(windows).enumerate() {
        let (mut best, mut at) = (p[0], 0u32);
        for (v, offset) in [(p[1], 1), (q[0], w), (q[1], w + 1)] {
            let take = (v > best) | (v.is_nan() & !best.is_nan());
            best = if take { v } else { best };
            at = if take { offset } else { at };
        }
        *o = best;
        *a = first + 2 * ox as u32 + at;
    }
}

/// One output row of the 2x2/stride-2 max pool without the argmax (evaluation): the same
/// comparisons as [`pool_2x2_row`], so the same values.
#[inline(always)]
fn max_2x2_row((r0, r1): (&[f32], &[f32]), out: &mut [f32]) {
    let windows = r0.chunks_exact(2).zip(r1.chunks_exact(2));
    for (o, (p, q)) in out.iter_mut().zip(windows) {
        let mut best = p[0];
        for v in [p[1], q[0], q[1]] {
            let take = (v > best) | (v.is_nan() & !best.is_nan());
            best = if take { v } else { best };
        }
        *o = best;
    }
}

/// One output row of the 2x2/stride-2 average pool.
#[inline(always)]
fn avg_2x2_row((r0, r1): (&[f32], &[f32]), out: &mut [f32]) {
    let windows = r0.chunks_exact(2).zip(r1.chunks_exact(2));
    out.iter_mut().zip(windows).for_each(|(o, (a, b))| *o = ((a[0] + a[1]) + (b[0] + b[1])) * 0.25);
}

/// The 2x2/stride-2 pool of `planes` (`[c][h][w]`, no border, floor mode) into `out`
/// (`[c][h / 2][w / 2]`): the maximum (`max`) or the average of each window, the values of
/// [`max_pool2d`] and [`avg_pool2d`] with those windows.
pub(crate) fn pool_2x2_planes(planes: &[f32], [h, w]: [usize; 2], max: bool, out: &mut [f32]) {
    let (oh, ow) = (h / 2, w / 2);
    if oh == 0 || ow == 0 {
        return;
    }
    for (plane, out) in planes.chunks_exact(h * w).zip(out.chunks_exact_mut(oh * ow)) {
        for (oy, out) in out.chunks_exact_mut(ow).enumerate() {
            let rows = (&plane[2 * oy * w..][..2 * ow], &plane[(2 * oy + 1) * w..][..2 * ow]);
            if max {
                simd(|| max_2x2_row(rows, out));
            } else {
                simd(|| avg_2x2_row(rows, out));
            }
        }
    }
}

/// [`pool_2x2_planes`] for the maximum, also writing each window maximum's offset in its input
/// plane to `arg`, as [`max_pool2d`] records it.
pub(crate) fn max_2x2_planes_with_args(planes: &[f32], [h, w]: [usize; 2], out: &mut [f32], arg: &mut [u32]) {
    let (oh, ow) = (h / 2, w / 2);
    if oh == 0 || ow == 0 {
        return;
    }
    let per_plane = oh * ow;
    for ((plane, out), arg) in
        planes.chunks_exact(h * w).zip(out.chunks_exact_mut(per_plane)).zip(arg.chunks_exact_mut(per_plane))
    {
        for oy in 0..oh {
            let rows = (&plane[2 * oy * w..][..2 * ow], &plane[(2 * oy + 1) * w..][..2 * ow]);
            let (out, arg) = (&mut out[oy * ow..][..ow], &mut arg[oy * ow..][..ow]);
            simd(|| pool_2x2_row(rows, (2 * oy * w) as u32, w as u32, out, arg));
        }
    }
}

/// The input gradient: each output gradient added onto its window's maximum.
/// `disjoint` says no input pixel is in two windows, so each gradient is stored rather than
/// added (no read of the slot, no dependency between neighbours).
pub fn max_pool_backward_values(dy: &[f32], arg: &[u32], planes: usize, plane_in: usize, disjoint: bool) -> Vec<f32> {
    let plane_out = dy.len() / planes.max(1);
    let mut dx = vec![0.0f32; planes * plane_in];
    dx.par_chunks_mut(plane_in).enumerate().for_each(|(p, dx)| {
        let (dy, arg) = (&dy[p * plane_out..][..plane_out], &arg[p * plane_out..][..plane_out]);
        for (g, &a) in dy.iter().zip(arg) {
            if let Some(slot) = dx.get_mut(a as usize) {
                if disjoint {
                    *slot = *g;
                } else {
                    *slot += g;
                }
            }
        }
    });
    dx
}

#[derive(Debug)]
struct MaxPoolBackward;

impl Backward<Flex, 1> for MaxPoolBackward {
    /// The argmax offsets, the input's shape and whether the windows are disjoint.
    type State = (Arc<Vec<u32>>, [usize; 4], bool);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (arg, [n, c, h, w], disjoint) = ops.state;
        if let Some(node) = node {
            let dx =
                timed(|t| &mut t.max_pool, || max_pool_backward_values(&values(&grad), &arg, n * c, h * w, disjoint));
            grads.register::<Flex>(node.id, flex(dx, [n, c, h, w]));
        }
    }
}

fn pool_flex(x: &FlexTensor, pool: &MaxPool) -> (FlexTensor, Vec<u32>) {
    let [n, c, h, w] = dims4(x);
    let (out, arg) = pool.forward_values(&values(x), n * c, [h, w]);
    let shape = [n, c, pool.output_len(0, h), pool.output_len(1, w)];
    (flex(out, shape), arg)
}

fn autodiff_pool(x: AdTensor, pool: &MaxPool) -> AdTensor {
    match MaxPoolBackward.prepare::<NoCheckpointing>([x.node()]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let (y, arg) = pool_flex(x.primitive(), pool);
            prep.finish((Arc::new(arg), dims4(x.primitive()), pool.disjoint()), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(pool_flex(x.primitive(), pool).0),
    }
}

/// `burn::tensor::module::max_pool2d`, faster on the CPU device (autodiff or not); burn's own
/// anywhere else.
pub fn max_pool2d(x: Tensor<4>, pool: MaxPool) -> Tensor<4> {
    if enabled() && f32_only(&[x.dtype()]) && pool.kernel.iter().all(|&k| k > 0) && pool.stride.iter().all(|&s| s > 0) {
        if let Ok(t) = x.clone().try_into_primitive::<Ad>() {
            return Tensor::from_primitive::<Ad>(autodiff_pool(t, &pool));
        }
        if let Ok(t) = x.clone().try_into_primitive::<Flex>() {
            return Tensor::from_primitive::<Flex>(pool_flex(&t, &pool).0);
        }
    }
    burn::tensor::module::max_pool2d(x, pool.options())
}

/// An average-pooling window as `torch.nn.AvgPool2d` takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPool {
    /// Window height and width.
    pub kernel: [usize; 2],
    /// Step between windows.
    pub stride: [usize; 2],
    /// Implicit zero border on each side.
    pub padding: [usize; 2],
    /// Round the output size up, keeping a last window that starts inside the input.
    pub ceil_mode: bool,
    /// Divide by the whole window (padding included) rather than by the pixels inside.
    pub count_include_pad: bool,
}

impl AvgPool {
    /// The same window as burn's options (for burn's op, the fallback and the reference).
    pub fn options(&self) -> burn::tensor::ops::AvgPoolOptions<2> {
        burn::tensor::ops::AvgPoolOptions::new(self.kernel)
            .with_stride(self.stride)
            .with_padding_pairs(self.padding.map(|p| (p, p)))
            .with_count_include_pad(self.count_include_pad)
            .with_ceil_mode(self.ceil_mode)
    }

    fn as_max(&self) -> MaxPool {
        MaxPool {
            kernel: self.kernel,
            stride: self.stride,
            padding: self.padding,
            dilation: [1, 1],
            ceil_mode: self.ceil_mode,
        }
    }

    /// Output length along `axis` (PyTorch's rule, as for max pooling).
    pub fn output_len(&self, axis: usize, len: usize) -> usize {
        self.as_max().output_len(axis, len)
    }

    /// The window of output `o` along `axis` inside an input of `len`, and its length in
    /// the padded input (PyTorch's divisor with `count_include_pad`).
    fn window(&self, axis: usize, o: usize, len: usize) -> (std::ops::Range<usize>, usize) {
        let (k, s, p) = (self.kernel[axis], self.stride[axis], self.padding[axis]);
        let start = o * s;
        let end = (start + k).min(len + 2 * p);
        let padded = end - start;
        (start.saturating_sub(p).min(len)..end.saturating_sub(p).min(len), padded)
    }

    fn divisor(&self, ys: &std::ops::Range<usize>, xs: &std::ops::Range<usize>, padded: usize) -> f32 {
        let n = if self.count_include_pad { padded } else { ys.len() * xs.len() };
        n.max(1) as f32
    }

    /// As [`MaxPool::is_plain_2x2`] (every divisor is then 4).
    pub(crate) fn is_plain_2x2(&self) -> bool {
        self.as_max().is_plain_2x2()
    }

    /// LeNet-5's pool, the same windows as max pooling's 2x2 case (so every divisor is 4,
    /// whatever `count_include_pad` says).
    fn is_2x2(&self, dims: [usize; 2]) -> bool {
        self.as_max().is_2x2(dims)
    }

    /// Pools `x` (`planes` planes of `h x w`).
    pub fn forward_values(&self, x: &[f32], planes: usize, [h, w]: [usize; 2]) -> Vec<f32> {
        let (oh, ow) = (self.output_len(0, h), self.output_len(1, w));
        let mut out = vec![0.0f32; planes * oh * ow];
        let quad = self.is_2x2([h, w]);
        out.par_chunks_mut(oh * ow).enumerate().for_each(|(p, out)| {
            let plane = &x[p * h * w..][..h * w];
            if quad {
                pool_2x2_planes(plane, [h, w], false, out);
                return;
            }
            for oy in 0..oh {
                let (ys, ph) = self.window(0, oy, h);
                for ox in 0..ow {
                    let (xs, pw) = self.window(1, ox, w);
                    let sum: f32 = ys.clone().map(|iy| plane[iy * w..][xs.clone()].iter().sum::<f32>()).sum();
                    out[oy * ow + ox] = sum / self.divisor(&ys, &xs, ph * pw);
                }
            }
        });
        out
    }

    /// The input gradient: each output gradient spread evenly over its window.
    pub fn backward_values(&self, dy: &[f32], planes: usize, [h, w]: [usize; 2]) -> Vec<f32> {
        let (oh, ow) = (self.output_len(0, h), self.output_len(1, w));
        let mut dx = vec![0.0f32; planes * h * w];
        let quad = self.is_2x2([h, w]);
        dx.par_chunks_mut(h * w).enumerate().for_each(|(p, dx)| {
            let dy = &dy[p * oh * ow..][..oh * ow];
            if quad {
                // Disjoint windows: each input pixel gets a quarter of its window's gradient.
                for (oy, dy) in dy.chunks_exact(ow).enumerate() {
                    let (r0, rest) = dx[2 * oy * w..].split_at_mut(w);
                    let r1 = &mut rest[..w];
                    simd(|| {
                        let pairs = r0.chunks_exact_mut(2).zip(r1.chunks_exact_mut(2));
                        dy.iter().zip(pairs).for_each(|(g, (a, b))| {
                            let q = g * 0.25;
                            a.fill(q);
                            b.fill(q);
                        });
                    });
                }
                return;
            }
            for oy in 0..oh {
                let (ys, ph) = self.window(0, oy, h);
                for ox in 0..ow {
                    let (xs, pw) = self.window(1, ox, w);
                    let g = dy[oy * ow + ox] / self.divisor(&ys, &xs, ph * pw);
                    for iy in ys.clone() {
                        dx[iy * w..][xs.clone()].iter_mut().for_each(|d| *d += g);
                    }
                }
            }
        });
        dx
    }
}

#[derive(Debug)]
struct AvgPoolBackward;

impl Backward<Flex, 1> for AvgPoolBackward {
    /// The pool and the input's shape.
    type State = (AvgPool, [usize; 4]);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (pool, [n, c, h, w]) = ops.state;
        if let Some(node) = node {
            let dx = timed(|t| &mut t.avg_pool, || pool.backward_values(&values(&grad), n * c, [h, w]));
            grads.register::<Flex>(node.id, flex(dx, [n, c, h, w]));
        }
    }
}

fn avg_flex(x: &FlexTensor, pool: &AvgPool) -> FlexTensor {
    let [n, c, h, w] = dims4(x);
    let out = pool.forward_values(&values(x), n * c, [h, w]);
    flex(out, [n, c, pool.output_len(0, h), pool.output_len(1, w)])
}

/// `burn::tensor::module::avg_pool2d`, faster on the CPU device; burn's own anywhere else.
pub fn avg_pool2d(x: Tensor<4>, pool: AvgPool) -> Tensor<4> {
    if enabled() && f32_only(&[x.dtype()]) && pool.kernel.iter().all(|&k| k > 0) && pool.stride.iter().all(|&s| s > 0) {
        if let Ok(t) = x.clone().try_into_primitive::<Ad>() {
            let y = match AvgPoolBackward.prepare::<NoCheckpointing>([t.node()]).compute_bound().stateful() {
                OpsKind::Tracked(prep) => prep.finish((pool, dims4(t.primitive())), avg_flex(t.primitive(), &pool)),
                OpsKind::UnTracked(prep) => prep.finish(avg_flex(t.primitive(), &pool)),
            };
            return Tensor::from_primitive::<Ad>(y);
        }
        if let Ok(t) = x.clone().try_into_primitive::<Flex>() {
            return Tensor::from_primitive::<Flex>(avg_flex(&t, &pool));
        }
    }
    burn::tensor::module::avg_pool2d(x, pool.options())
}
