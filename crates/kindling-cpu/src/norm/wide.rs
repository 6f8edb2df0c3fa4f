//! Batch normalisation channel by channel, for inputs with at least `WIDE` values per image
//! and channel: each rayon task owns whole channels and makes all its passes over one channel
//! while its values are in cache.

use rayon::prelude::*;

use super::values::{Affine, input_grad_terms, relu_f32, relu_mask};
use super::{BLOCK, BatchNormGrads, BatchNormValues, BatchStats, Planes, min_items};
use crate::pool::max_2x2_planes_with_args;
use crate::scratch::Buf;
use crate::simd::lane_sum;

/// Channel `c`'s runs of `p.rest` values, one per image.
fn planes(v: &[f32], p: Planes, c: usize) -> impl Iterator<Item = &[f32]> {
    (0..p.batch).map(move |b| &v[(b * p.channels + c) * p.rest..][..p.rest])
}

/// Channel `c`'s values in pieces of at most `BLOCK`.
fn blocks(v: &[f32], p: Planes, c: usize) -> impl Iterator<Item = &[f32]> {
    planes(v, p, c).flat_map(|plane| plane.chunks(BLOCK))
}

/// The runs of `out` (layout `p`) grouped by channel, so that each task can own whole channels.
fn by_channel<T>(out: &mut [T], p: Planes) -> Vec<Vec<&mut [T]>> {
    let mut groups: Vec<Vec<&mut [T]>> = (0..p.channels).map(|_| Vec::with_capacity(p.batch)).collect();
    for (i, run) in out.chunks_exact_mut(p.rest).enumerate() {
        groups[i % p.channels].push(run);
    }
    groups
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

pub(super) fn train_wide(
    x: &[f32],
    p: Planes,
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
    relu: bool,
) -> (BatchNormValues, Affine) {
    let mut y = vec![0.0f32; x.len()];
    let stats: Vec<(f32, f32, f32)> = by_channel(&mut y, p)
        .into_par_iter()
        .enumerate()
        .with_min_len(min_items(p.per_channel()))
        .map(|(c, outs)| {
            let (mean, var, scale) = channel_stats(x, p, c, gamma[c], epsilon);
            let shift = beta[c];
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
    gathered(y, stats, beta)
}

/// The output and each channel's `(mean, variance, scale)` as the pass's values and affine.
fn gathered(y: Vec<f32>, stats: Vec<(f32, f32, f32)>, beta: &[f32]) -> (BatchNormValues, Affine) {
    let mut values = BatchNormValues { output: y, stats: BatchStats::default() };
    let mut scale = Vec::with_capacity(stats.len());
    for (mean, var, s) in stats {
        values.stats.mean.push(mean);
        values.stats.variance.push(var);
        scale.push(s);
    }
    (values, Affine { scale, shift: beta.to_vec() })
}

/// Channel `c`'s mean, biased variance and scale `gamma / sqrt(var + epsilon)`: three passes
/// over the channel; after the first its values are in cache.
fn channel_stats(x: &[f32], p: Planes, c: usize, gamma: f32, epsilon: f64) -> (f32, f64, f32) {
    let m = p.per_channel() as f64;
    let mean = (blocks(x, p, c).map(|b| f64::from(lane_sum(b, |v| v))).sum::<f64>() / m) as f32;
    let dev = |v: f32| (v - mean) * (v - mean);
    let var = blocks(x, p, c).map(|b| f64::from(lane_sum(b, dev))).sum::<f64>() / m;
    (mean, var, (f64::from(gamma) / (var + epsilon).sqrt()) as f32)
}

/// [`train_wide`] with the ReLU, then a 2x2 max pool (stride 2, floor mode) of each `[h, w]`
/// plane while it is in cache: the pooled output (`[batch, channels, h / 2, w / 2]`), the
/// statistics, the scale and shift, and each output's argmax offset in its plane, as
/// `max_pool2d` gives them.
pub(super) fn train_wide_pooled(
    x: &[f32],
    p: Planes,
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
    [h, w]: [usize; 2],
) -> (BatchNormValues, Affine, Vec<u32>) {
    assert_eq!(p.rest, h * w, "planes of h x w");
    let q = Planes { rest: (h / 2) * (w / 2), ..p };
    let (mut y, mut arg) = (vec![0.0f32; q.len()], vec![0u32; q.len()]);
    let stats: Vec<(f32, f32, f32)> = by_channel(&mut y, q)
        .into_par_iter()
        .zip(by_channel(&mut arg, q))
        .enumerate()
        .with_min_len(min_items(p.per_channel()))
        .map(|(c, (outs, args))| {
            let (mean, var, scale) = channel_stats(x, p, c, gamma[c], epsilon);
            let shift = beta[c];
            // One channel's plane before its pool, written whole before it is read.
            let mut full = Buf::reused(p.rest);
            for ((out, arg), x) in outs.into_iter().zip(args).zip(planes(x, p, c)) {
                full.iter_mut().zip(x).for_each(|(o, v)| *o = relu_f32((v - mean) * scale + shift));
                max_2x2_planes_with_args(&full, [h, w], out, arg);
            }
            (mean, var as f32, scale)
        })
        .collect();
    let (values, affine) = gathered(y, stats, beta);
    (values, affine, arg)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn grads_wide(
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
