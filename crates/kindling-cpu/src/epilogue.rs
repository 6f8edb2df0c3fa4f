//! What an evaluation pass applies to a convolution's output in the pass that writes it: batch
//! normalisation with running statistics, then ReLU or tanh, one image at a time while its
//! output is still in cache. Separately, each is a pass of its own over the whole activation
//! (and, for batch norm, a new buffer).
//!
//! The arithmetic is exactly that of the separate operations, in the same order (the scale
//! `gamma / sqrt(var + eps)` computed in `f64` as `batch_norm_eval` does, then `(v - mean)
//! scale + beta`, then the activation), so the fused output is bit for bit the unfused one.

use crate::act::Nonlinearity;
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
        let scale = variance.iter().zip(gamma).map(|(v, g)| (f64::from(*g) / (f64::from(*v) + epsilon).sqrt()) as f32);
        Self { mean: mean.to_vec(), scale: scale.collect(), shift: beta.to_vec() }
    }
}

/// What follows the convolution: nothing, batch norm, an activation, or both in that order.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Epilogue {
    pub(crate) norm: Option<Affine>,
    pub(crate) act: Option<Nonlinearity>,
}

impl Epilogue {
    /// Nothing: the convolution's output as it is.
    pub(crate) const NONE: Self = Self { norm: None, act: None };

    /// Applies it to one image's output, `[out_channels][pixels]`.
    pub(crate) fn apply(&self, out: &mut [f32], pixels: usize) {
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
