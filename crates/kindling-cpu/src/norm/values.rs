//! Batch normalisation on plain values: the training pass, the evaluation pass and the
//! gradients, each choosing the channel-by-channel path (`wide.rs`) or the row-by-row one
//! (`narrow.rs`) by the layout, and the normalisation both paths end with.

use rayon::prelude::*;

use super::narrow::{grads_narrow, spread, train_narrow};
use super::wide::{grads_wide, train_wide};
use super::{BatchNormGrads, BatchNormValues, BatchStats, Planes, WIDE, min_items};

/// The training forward pass on values in layout `p`: per-channel mean and biased variance of
/// `x`, and `y = (x - mean) / sqrt(var + epsilon) * gamma + beta`.
pub fn batch_norm_train_values(x: &[f32], p: Planes, gamma: &[f32], beta: &[f32], epsilon: f64) -> BatchNormValues {
    train_values(x, p, gamma, beta, epsilon, false).0
}

/// The scale and shift per channel of a normalisation: `y = (x - mean) scale + shift`.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Affine {
    pub(super) scale: Vec<f32>,
    pub(super) shift: Vec<f32>,
}

/// [`batch_norm_train_values`], followed by ReLU when `relu` is set (channel by channel only:
/// `p.rest >= WIDE`), and the scale and shift it used (empty on the row-by-row path).
pub(super) fn train_values(
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
pub(super) fn eval_values(
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
    normalise(x, p, &stats.mean, &eval_scale(&stats.variance, gamma, epsilon), beta, relu)
}

/// The evaluation pass's scale per channel, `gamma / sqrt(variance + epsilon)`, computed in
/// `f64` (shared with the convolution's fused evaluation, which must match it bit for bit).
pub(crate) fn eval_scale(variance: &[f32], gamma: &[f32], epsilon: f64) -> Vec<f32> {
    variance.iter().zip(gamma).map(|(v, g)| (f64::from(*g) / (f64::from(*v) + epsilon).sqrt()) as f32).collect()
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
pub(super) fn grad_values(
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
pub(super) fn input_grad_terms(gamma: f32, invstd: f64, sum_dy: f64, sum_dy_dev: f64, m: f64) -> [f32; 3] {
    let a = f64::from(gamma) * invstd;
    // dgamma = invstd sum_dy_dev; the xhat dgamma term is (x - mean) invstd² sum_dy_dev.
    [a as f32, (-a * invstd * invstd * sum_dy_dev / m) as f32, (-a * sum_dy / m) as f32]
}

/// ReLU of a value, as [`relu`](crate::relu) computes it: NaN passes through.
#[inline(always)]
pub(super) fn relu_f32(y: f32) -> f32 {
    if y > 0.0 || y.is_nan() { y } else { 0.0 }
}

/// The output gradient where ReLU let `y` through, else 0.
#[inline(always)]
pub(super) fn relu_mask(dy: f32, y: f32) -> f32 {
    if y > 0.0 || y.is_nan() { dy } else { 0.0 }
}

/// `y = (x - mean) scale + shift` per channel, then ReLU when `relu` is set, in parallel over
/// runs (wide) or rows (narrow).
pub(super) fn normalise(x: &[f32], p: Planes, mean: &[f32], scale: &[f32], shift: &[f32], relu: bool) -> Vec<f32> {
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
