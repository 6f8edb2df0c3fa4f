//! What an evaluation pass applies to a convolution's output in the pass that writes it: batch
//! normalisation with running statistics, then ReLU or tanh, then a 2x2 max or average pool,
//! one image at a time while its output is still in cache. Separately, each is a pass of its
//! own over the whole activation and a new buffer; with the pool, the full-size activation is
//! never written out at all.
//!
//! The arithmetic is exactly that of the separate operations, in the same order (the scale
//! `gamma / sqrt(var + eps)` computed in `f64` as `batch_norm_eval` does, then `(v - mean)
//! scale + beta`, then the activation, then the pool's comparisons or sums), so the fused
//! output is bit for bit the unfused one.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::act::Nonlinearity;
use crate::norm::eval_scale;
use crate::pool::{max_2x2_planes_with_args, pool_2x2_planes};
use crate::scratch::Buf;
use crate::simd::simd;

/// Batch normalisation with given statistics, per output channel: `y = (v - mean) scale + shift`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Affine {
    pub(crate) mean: Vec<f32>,
    pub(crate) scale: Vec<f32>,
    pub(crate) shift: Vec<f32>,
}

impl Affine {
    /// The evaluation pass of batch norm with these per-channel values, as `batch_norm_eval`
    /// computes its scale.
    pub(crate) fn eval(mean: &[f32], variance: &[f32], gamma: &[f32], beta: &[f32], epsilon: f64) -> Self {
        Self { mean: mean.to_vec(), scale: eval_scale(variance, gamma, epsilon), shift: beta.to_vec() }
    }
}

/// A pool of 2x2 windows at stride 2 (no border, floor mode): the maximum or the average.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pool2x2 {
    Max,
    Avg,
}

/// What follows the convolution, each optional, in this order: batch norm, an activation, a
/// 2x2 pool. With `args` (training, max pool only), each output's window maximum is also
/// recorded, as `max_pool2d` records it for its backward step: the offset in its input plane,
/// at `args[image * per_image + output]` (each image writes only its own slots).
#[derive(Debug, Default)]
pub(crate) struct Epilogue {
    pub(crate) norm: Option<Affine>,
    pub(crate) act: Option<Nonlinearity>,
    pub(crate) pool: Option<Pool2x2>,
    pub(crate) args: Option<Vec<AtomicU32>>,
}

impl Epilogue {
    /// Nothing: the convolution's output as it is.
    pub(crate) const NONE: Self = Self { norm: None, act: None, pool: None, args: None };

    /// ReLU and, with `pool`, a 2x2 max pool recording its argmax for `n` images of
    /// `out_channels` planes of `[oh, ow]` (the training pass of `conv2d_relu`).
    pub(crate) fn relu_max_pool(pool: bool, n: usize, out_channels: usize, [oh, ow]: [usize; 2]) -> Self {
        let args = pool.then(|| (0..n * out_channels * (oh / 2) * (ow / 2)).map(|_| AtomicU32::new(0)).collect());
        Self { norm: None, act: Some(Nonlinearity::Relu), pool: pool.then_some(Pool2x2::Max), args }
    }

    /// The recorded argmax offsets (empty without `args`).
    pub(crate) fn take_args(&mut self) -> Vec<u32> {
        self.args.take().map(|a| a.into_iter().map(AtomicU32::into_inner).collect()).unwrap_or_default()
    }

    /// Height and width of one output plane, for a convolution output of `[oh, ow]`.
    pub(crate) fn output(&self, [oh, ow]: [usize; 2]) -> [usize; 2] {
        if self.pool.is_some() { [oh / 2, ow / 2] } else { [oh, ow] }
    }

    /// One image: `produce` writes the convolution's output (`[out_channels][oh][ow]`), which
    /// then goes through the epilogue into `out` (`out_channels` planes of
    /// [`output`](Self::output)). Without a pool, `produce` writes into `out` itself; with
    /// one, into a scratch buffer of this thread, pooled from there while in cache.
    pub(crate) fn image(
        &self,
        image: usize,
        out: &mut [f32],
        out_channels: usize,
        [oh, ow]: [usize; 2],
        produce: impl FnOnce(&mut [f32]),
    ) {
        let Some(pool) = self.pool else {
            produce(out);
            self.apply(out, oh * ow);
            return;
        };
        let mut full = Buf::reused(out_channels * oh * ow);
        produce(&mut full);
        self.apply(&mut full, oh * ow);
        match &self.args {
            Some(args) => {
                let mut arg = vec![0u32; out.len()];
                max_2x2_planes_with_args(&full, [oh, ow], out, &mut arg);
                for (slot, a) in args[image * out.len()..][..out.len()].iter().zip(arg) {
                    slot.store(a, Ordering::Relaxed);
                }
            }
            None => pool_2x2_planes(&full, [oh, ow], pool == Pool2x2::Max, out),
        }
    }

    /// Applies the batch norm and the activation to one image's output,
    /// `[out_channels][pixels]`.
    fn apply(&self, out: &mut [f32], pixels: usize) {
        if self.norm.is_none() && self.act.is_none() {
            return;
        }
        for (o, plane) in out.chunks_exact_mut(pixels).enumerate() {
            let norm = self.norm.as_ref().map(|n| (n.mean[o], n.scale[o], n.shift[o]));
            simd(Plane { plane, norm, act: self.act });
        }
    }
}

/// One output plane through the epilogue.
struct Plane<'a> {
    plane: &'a mut [f32],
    norm: Option<(f32, f32, f32)>,
    act: Option<Nonlinearity>,
}

impl pulp::WithSimd for Plane<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        if let Some((mean, scale, shift)) = self.norm {
            for v in self.plane.iter_mut() {
                *v = (*v - mean) * scale + shift;
            }
        }
        if let Some(act) = self.act {
            act.apply(self.plane);
        }
    }
}
