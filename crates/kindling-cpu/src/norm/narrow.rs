//! Batch normalisation row by row, for inputs with fewer than `WIDE` values per image and
//! channel (`[N, C]` after a linear layer): a running `f64` sum per position over fixed ranges
//! of rows, so every loop reads contiguous memory and the result does not depend on scheduling.

use rayon::prelude::*;

use super::values::{input_grad_terms, normalise};
use super::{BatchNormGrads, BatchNormValues, BatchStats, GRAIN, Planes, min_items};

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
pub(super) fn spread(per_channel: &[f32], rest: usize) -> Vec<f32> {
    per_channel.iter().flat_map(|v| std::iter::repeat_n(*v, rest)).collect()
}

pub(super) fn train_narrow(x: &[f32], p: Planes, gamma: &[f32], beta: &[f32], epsilon: f64) -> BatchNormValues {
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

pub(super) fn grads_narrow(
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
