//! The Tree-structured Parzen Estimator (Bergstra et al., "Algorithms for Hyper-Parameter
//! Optimization", NeurIPS 2011) behind `search: tpe`, following Optuna's `TPESampler` defaults
//! (univariate, `constant_liar=True`): the first [`N_STARTUP`] trials are random draws; after
//! that the trials so far are split into the best `gamma(n) = min(ceil(0.1 n), 25)` ("below")
//! and the rest ("above"), each key gets two Parzen estimators `l` (of below) and `g` (of
//! above), [`N_EI_CANDIDATES`] candidates are drawn from `l`, and the one maximising
//! `l(x) / g(x)` is suggested.
//!
//! Parzen estimators as Optuna builds them: one truncated Gaussian per observation on the
//! key's range (in log space for `loguniform`; `int` as a discrete distribution over
//! `[low - 0.5, high + 0.5]`), plus a prior kernel (mean the middle of the range, width the
//! range) of weight 1; each kernel's bandwidth is the larger distance to its sorted neighbours
//! (the outermost take their inner neighbour's), clipped to
//! `[range / min(100, 1 + kernels), range]` ("magic clip"); with more than 25 observations the
//! older ones' weights ramp down linearly. A `choice` key's kernels are categorical
//! distributions: `prior_weight / kernels` on every choice, plus 1 on the observed one.
//!
//! Trials still running (or suggested and not yet finished) are the constant liar's: they
//! count towards `n` and always fall in "above". Pruned trials rank after every completed one,
//! by how far they got, then by their last intermediate value, as in Optuna. Failed trials are
//! left out.
//!
//! A suggestion is a pure function of the sweep's seed, the trial's index and the history it
//! is given; the caller records it before the trial runs. The startup trials are the draws
//! `search: random` makes with the same seed, so a comparison of the two searches is paired.

use kindling_core::rng_from_seed;
use rand::RngExt;
use serde_json::Value;

use crate::spec::{Distribution, Mode, SweepSpec};

/// Random trials before the estimator is used (Optuna's `n_startup_trials`).
pub const N_STARTUP: usize = 10;
/// Candidates drawn from `l` per suggestion (Optuna's `n_ei_candidates`).
pub const N_EI_CANDIDATES: usize = 24;
/// Weight of the prior kernel (Optuna's `prior_weight`).
pub const PRIOR_WEIGHT: f64 = 1.0;

/// How a trial of the history stands.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Finished with this metric value.
    Complete(f64),
    /// Stopped by the pruner after `steps` epochs, its last value `value`.
    Pruned {
        /// Epochs it ran.
        steps: usize,
        /// Its metric at the last of them.
        value: f64,
    },
    /// Running or not yet run: the constant liar makes it the worst.
    Running,
}

/// A trial of the history: its values of the random keys (in the spec's order) and outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    /// Values of `spec.random`'s keys, in order.
    pub params: Vec<Value>,
    /// How it stands.
    pub outcome: Outcome,
}

/// Optuna's `default_gamma`: how many of `n` trials count as good.
pub fn gamma(n: usize) -> usize {
    n.div_ceil(10).min(25)
}

/// Optuna's `default_weights`: 1 for each of `n` observations up to 25, and for more, a linear
/// ramp from `1/n` up for the oldest `n - 25`.
pub fn default_weights(n: usize) -> Vec<f64> {
    if n < 25 {
        return vec![1.0; n];
    }
    let ramp = n - 25;
    let mut w: Vec<f64> = (0..ramp)
        .map(|i| {
            if ramp == 1 {
                1.0 / n as f64
            } else {
                1.0 / n as f64 + (1.0 - 1.0 / n as f64) * i as f64 / (ramp - 1) as f64
            }
        })
        .collect();
    w.extend(std::iter::repeat_n(1.0, 25));
    w
}

/// Splits `history` into (below, above), each as indices in history order.
pub fn split(history: &[Observation], mode: Mode) -> (Vec<usize>, Vec<usize>) {
    let loss = |v: f64| if mode == Mode::Max { -v } else { v };
    let mut n_below = gamma(history.len());
    let mut complete: Vec<(usize, f64)> = Vec::new();
    let mut pruned: Vec<(usize, usize, f64)> = Vec::new();
    let mut above = Vec::new();
    for (i, o) in history.iter().enumerate() {
        match o.outcome {
            Outcome::Complete(v) => complete.push((i, loss(v))),
            Outcome::Pruned { steps, value } => pruned.push((i, steps, loss(value))),
            Outcome::Running => above.push(i),
        }
    }
    complete.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    pruned.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.total_cmp(&b.2)).then(a.0.cmp(&b.0)));
    let mut below = Vec::new();
    for i in complete.iter().map(|c| c.0).chain(pruned.iter().map(|p| p.0)) {
        if n_below > 0 {
            below.push(i);
            n_below -= 1;
        } else {
            above.push(i);
        }
    }
    below.sort_unstable();
    above.sort_unstable();
    (below, above)
}

/// A key's range in the space the estimator works in.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Range {
    low: f64,
    high: f64,
    /// `int`: values are integers and probabilities are masses of `[x - 0.5, x + 0.5]`.
    discrete: bool,
}

fn numeric(d: &Distribution) -> Option<Range> {
    match d {
        Distribution::Uniform([lo, hi]) => Some(Range { low: *lo, high: *hi, discrete: false }),
        Distribution::Loguniform([lo, hi]) => Some(Range { low: lo.ln(), high: hi.ln(), discrete: false }),
        Distribution::Int([lo, hi]) => Some(Range { low: *lo as f64 - 0.5, high: *hi as f64 + 0.5, discrete: true }),
        Distribution::Choice(_) => None,
    }
}

/// A value of the key in the estimator's space (the index of a choice).
fn internal(d: &Distribution, v: &Value) -> Option<f64> {
    match d {
        Distribution::Choice(c) => c.iter().position(|x| x == v).map(|i| i as f64),
        Distribution::Loguniform(_) => v.as_f64().filter(|x| *x > 0.0).map(f64::ln),
        _ => v.as_f64(),
    }
}

fn external(d: &Distribution, x: f64) -> Value {
    match d {
        Distribution::Choice(c) => c[x as usize].clone(),
        Distribution::Uniform([lo, hi]) => Value::from(x.clamp(*lo, *hi)),
        Distribution::Loguniform([lo, hi]) => Value::from(x.exp().clamp(*lo, *hi)),
        Distribution::Int([lo, hi]) => Value::from((x.round() as i64).clamp(*lo, *hi)),
    }
}

/// A mixture of truncated Gaussians (or of categorical distributions) with its weights.
#[derive(Clone, Debug, PartialEq)]
pub struct Parzen {
    /// Mixture weights, summing to 1 (the prior's last).
    pub weights: Vec<f64>,
    kernels: Kernels,
}

#[derive(Clone, Debug, PartialEq)]
enum Kernels {
    Numeric {
        mus: Vec<f64>,
        sigmas: Vec<f64>,
        range: Range,
    },
    /// `probs[k][c]`: kernel k's probability of choice c.
    Categorical {
        probs: Vec<Vec<f64>>,
    },
}

/// Mixture weights of `n` observations and the prior, normalised.
fn mixture_weights(n: usize) -> Vec<f64> {
    let mut w = default_weights(n);
    w.push(PRIOR_WEIGHT);
    let s: f64 = w.iter().sum();
    w.iter().map(|x| x / s).collect()
}

/// Optuna's univariate `_calculate_numerical_params` with `consider_prior`,
/// `consider_magic_clip` and not `consider_endpoints`: the kernels' means and bandwidths,
/// the prior's last.
pub fn bandwidths(observations: &[f64], low: f64, high: f64) -> (Vec<f64>, Vec<f64>) {
    let mut mus = observations.to_vec();
    mus.push(0.5 * (low + high));
    let mut order: Vec<usize> = (0..mus.len()).collect();
    order.sort_by(|&a, &b| mus[a].total_cmp(&mus[b]).then(a.cmp(&b)));
    let mut e = Vec::with_capacity(mus.len() + 2);
    e.push(low);
    e.extend(order.iter().map(|&i| mus[i]));
    e.push(high);
    let m = e.len();
    let mut sorted: Vec<f64> = (1..m - 1).map(|i| (e[i] - e[i - 1]).max(e[i + 1] - e[i])).collect();
    if m >= 4 {
        let last = sorted.len() - 1;
        sorted[0] = e[2] - e[1];
        sorted[last] = e[m - 2] - e[m - 3];
    }
    let mut sigmas = vec![0.0; mus.len()];
    for (k, &i) in order.iter().enumerate() {
        sigmas[i] = sorted[k];
    }
    let max_sigma = high - low;
    let min_sigma = (high - low) / (1.0 + mus.len() as f64).min(100.0);
    for s in &mut sigmas {
        *s = s.clamp(min_sigma, max_sigma);
    }
    let last = sigmas.len() - 1;
    sigmas[last] = high - low;
    (mus, sigmas)
}

/// Optuna's `_calculate_categorical_params`: each observation's kernel puts
/// `prior_weight / kernels` on every choice and 1 more on its own; the prior's is uniform.
pub fn categorical_kernels(observed: &[usize], choices: usize) -> Vec<Vec<f64>> {
    let kernels = observed.len() + 1;
    let base = PRIOR_WEIGHT / kernels as f64;
    let mut rows: Vec<Vec<f64>> = observed
        .iter()
        .map(|&c| {
            let mut r = vec![base; choices];
            r[c] += 1.0;
            r
        })
        .collect();
    rows.push(vec![base; choices]);
    for r in &mut rows {
        let s: f64 = r.iter().sum();
        r.iter_mut().for_each(|x| *x /= s);
    }
    rows
}

impl Parzen {
    fn new(d: &Distribution, observations: &[f64]) -> Self {
        let weights = mixture_weights(observations.len());
        let kernels = match (d, numeric(d)) {
            (Distribution::Choice(c), _) => Kernels::Categorical {
                probs: categorical_kernels(&observations.iter().map(|&x| x as usize).collect::<Vec<_>>(), c.len()),
            },
            (_, Some(range)) => {
                let (mus, sigmas) = bandwidths(observations, range.low, range.high);
                Kernels::Numeric { mus, sigmas, range }
            }
            _ => unreachable!("every distribution but choice is numeric"),
        };
        Self { weights, kernels }
    }

    /// The kernels' bandwidths (numeric keys).
    pub fn sigmas(&self) -> Option<&[f64]> {
        match &self.kernels {
            Kernels::Numeric { sigmas, .. } => Some(sigmas),
            Kernels::Categorical { .. } => None,
        }
    }

    fn sample(&self, rng: &mut impl RngExt) -> f64 {
        let u: f64 = rng.random_range(0.0..1.0);
        let mut acc = 0.0;
        let mut k = self.weights.len() - 1;
        for (i, w) in self.weights.iter().enumerate() {
            acc += w;
            if u < acc {
                k = i;
                break;
            }
        }
        match &self.kernels {
            Kernels::Categorical { probs } => {
                let u: f64 = rng.random_range(0.0..1.0);
                let mut acc = 0.0;
                for (c, p) in probs[k].iter().enumerate() {
                    acc += p;
                    if u < acc {
                        return c as f64;
                    }
                }
                (probs[k].len() - 1) as f64
            }
            Kernels::Numeric { mus, sigmas, range } => {
                // Rejection from the Gaussian: the mean lies in the range and the bandwidth is at
                // most the range, so at least a third of the draws land in it.
                let x = loop {
                    let x = mus[k] + sigmas[k] * standard_normal(rng);
                    if (range.low..=range.high).contains(&x) {
                        break x;
                    }
                };
                if range.discrete { x.round().clamp(range.low + 0.5, range.high - 0.5) } else { x }
            }
        }
    }

    /// The log density (log mass for discrete and categorical keys) at `x`.
    pub fn log_pdf(&self, x: f64) -> f64 {
        let terms: Vec<f64> = match &self.kernels {
            Kernels::Categorical { probs } => {
                probs.iter().zip(&self.weights).map(|(p, w)| w.ln() + p[x as usize].ln()).collect()
            }
            Kernels::Numeric { mus, sigmas, range } => mus
                .iter()
                .zip(sigmas)
                .zip(&self.weights)
                .map(|((mu, s), w)| {
                    let z = normal_cdf((range.high - mu) / s) - normal_cdf((range.low - mu) / s);
                    let p = if range.discrete {
                        (normal_cdf((x + 0.5 - mu) / s) - normal_cdf((x - 0.5 - mu) / s)).max(f64::MIN_POSITIVE).ln()
                    } else {
                        let d = (x - mu) / s;
                        -0.5 * d * d - 0.5 * (2.0 * std::f64::consts::PI).ln() - s.ln()
                    };
                    w.ln() + p - z.max(f64::MIN_POSITIVE).ln()
                })
                .collect(),
        };
        let m = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if m == f64::NEG_INFINITY { m } else { m + terms.iter().map(|t| (t - m).exp()).sum::<f64>().ln() }
    }
}

fn standard_normal(rng: &mut impl RngExt) -> f64 {
    // Box-Muller; 1 - u keeps the logarithm finite.
    let u: f64 = 1.0 - rng.random_range(0.0..1.0);
    let v: f64 = rng.random_range(0.0..1.0);
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// The standard normal CDF, through `erfc` (Numerical Recipes' Chebyshev fit, relative error
/// below 1.2e-7).
fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// The values of `spec.random`'s keys for trial `index`, given the trials so far.
pub fn suggest(spec: &SweepSpec, index: usize, history: &[Observation]) -> Vec<(String, Value)> {
    if history.len() < N_STARTUP {
        // The startup trials are random search's draws for the same seed (trial `index` of
        // `search: random`), so the two searches differ only once the estimator starts.
        let mut rng = rng_from_seed(spec.seed, "sweep.random");
        let mut draw = || spec.random.iter().map(|(k, d)| (k.clone(), d.draw(&mut rng))).collect::<Vec<_>>();
        for _ in 0..index {
            draw();
        }
        return draw();
    }
    let mut rng = rng_from_seed(spec.seed, &format!("sweep.tpe.{index}"));
    let (below, above) = split(history, spec.mode);
    spec.random
        .iter()
        .enumerate()
        .map(|(p, (key, d))| {
            let values = |idx: &[usize]| -> Vec<f64> {
                idx.iter().filter_map(|&i| history[i].params.get(p).and_then(|v| internal(d, v))).collect()
            };
            let l = Parzen::new(d, &values(&below));
            let g = Parzen::new(d, &values(&above));
            let mut best = (f64::NEG_INFINITY, None);
            for _ in 0..N_EI_CANDIDATES {
                let x = l.sample(&mut rng);
                let score = l.log_pdf(x) - g.log_pdf(x);
                if best.1.is_none() || score > best.0 {
                    best = (score, Some(x));
                }
            }
            (key.clone(), external(d, best.1.unwrap_or_default()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::parse_block;

    fn spec(yaml: &str) -> SweepSpec {
        parse_block(&serde_yaml::from_str(yaml).unwrap(), 0).unwrap()
    }

    fn obs(x: f64, outcome: Outcome) -> Observation {
        Observation { params: vec![Value::from(x)], outcome }
    }

    #[test]
    fn gamma_and_weights_are_optunas_defaults() {
        assert_eq!([gamma(1), gamma(10), gamma(11), gamma(100), gamma(1000)], [1, 1, 2, 10, 25]);
        assert_eq!(default_weights(3), [1.0, 1.0, 1.0]);
        let w = default_weights(30);
        assert_eq!(w.len(), 30);
        // numpy.linspace(1/30, 1, 5) then 25 ones.
        assert!((w[0] - 1.0 / 30.0).abs() < 1e-12 && (w[4] - 1.0).abs() < 1e-12, "{w:?}");
        assert!((w[2] - (1.0 / 30.0 + 1.0) / 2.0).abs() < 1e-12);
        assert!(w[5..].iter().all(|x| *x == 1.0));
    }

    #[test]
    fn the_good_set_is_the_best_gamma_of_complete_trials_then_pruned_and_never_running() {
        let mut h: Vec<Observation> = (0..15).map(|i| obs(i as f64, Outcome::Complete(i as f64))).collect();
        // gamma(15) = 2: for max, the two largest values.
        assert_eq!(split(&h, Mode::Max).0, [13, 14]);
        assert_eq!(split(&h, Mode::Min).0, [0, 1]);
        let (below, above) = split(&h, Mode::Max);
        assert_eq!(below.len() + above.len(), 15);
        // Running trials (the constant liar) are always above, even with the best values around.
        h.push(obs(0.0, Outcome::Running));
        h.push(obs(0.0, Outcome::Running));
        h.push(obs(0.0, Outcome::Running));
        h.push(obs(0.0, Outcome::Running));
        h.push(obs(0.0, Outcome::Running));
        h.push(obs(0.0, Outcome::Running));
        assert_eq!(gamma(h.len()), 3);
        let (below, above) = split(&h, Mode::Max);
        assert_eq!(below, [12, 13, 14]);
        assert!(above.contains(&20));
        // Pruned trials come after every complete one: by epochs reached, then value.
        let h = vec![
            obs(0.0, Outcome::Pruned { steps: 3, value: 0.9 }),
            obs(0.0, Outcome::Complete(0.1)),
            obs(0.0, Outcome::Pruned { steps: 1, value: 0.99 }),
            obs(0.0, Outcome::Pruned { steps: 3, value: 0.95 }),
        ];
        assert_eq!(split(&h, Mode::Max).0, [1], "the complete trial is best even with a lower value");
        let no_complete = vec![h[0].clone(), h[2].clone(), h[3].clone()];
        assert_eq!(split(&no_complete, Mode::Max).0, [2], "the pruned trial that went furthest with the best value");
    }

    #[test]
    fn bandwidths_are_the_larger_neighbour_gap_clipped_with_the_prior_as_wide_as_the_range() {
        // Kernels at 2, 4, 9 and the prior at 5 on [0, 10]: sorted 2, 4, 5, 9 with ends 0 and 10.
        // Gaps: 2 -> max(2, 2) but the first takes its inner gap 2; 4 -> max(2, 1) = 2;
        // 5 -> max(1, 4) = 4; 9 -> its inner gap 4. Clip to [10 / 5, 10]; the prior gets 10.
        let (mus, sigmas) = bandwidths(&[2.0, 4.0, 9.0], 0.0, 10.0);
        assert_eq!(mus, [2.0, 4.0, 9.0, 5.0]);
        assert_eq!(sigmas, [2.0, 2.0, 4.0, 10.0]);
        // Close observations are clipped up to range / (1 + kernels).
        let (_, sigmas) = bandwidths(&[5.0, 5.01, 5.02], 0.0, 10.0);
        assert_eq!(sigmas[..3], [2.0, 2.0, 2.0]);
        // No observation: the prior alone.
        assert_eq!(bandwidths(&[], -1.0, 1.0), (vec![0.0], vec![2.0]));
        // Many kernels: the floor is range / 100.
        let many: Vec<f64> = (0..200).map(|i| 5.0 + i as f64 * 1e-6).collect();
        let (_, sigmas) = bandwidths(&many, 0.0, 10.0);
        assert!(sigmas[..200].iter().all(|s| (*s - 0.1).abs() < 1e-12));
    }

    #[test]
    fn categorical_kernels_add_one_to_the_observed_choice_over_the_prior() {
        let k = categorical_kernels(&[0, 2], 3);
        // Three kernels: 1/3 on every choice, +1 on the observed one, normalised by 2.
        let third = 1.0 / 3.0;
        assert_eq!(k.len(), 3);
        assert!((k[0][0] - (1.0 + third) / 2.0).abs() < 1e-12 && (k[0][1] - third / 2.0).abs() < 1e-12);
        assert!((k[1][2] - (1.0 + third) / 2.0).abs() < 1e-12);
        assert!(k[2].iter().all(|p| (p - third).abs() < 1e-12));
        // The mixture's masses sum to 1.
        let p = Parzen::new(&Distribution::Choice(vec![1.into(), 2.into(), 3.into()]), &[0.0, 2.0]);
        let total: f64 = (0..3).map(|c| p.log_pdf(c as f64).exp()).sum();
        assert!((total - 1.0).abs() < 1e-9);
    }

    #[test]
    fn densities_integrate_to_one_over_the_range() {
        let p = Parzen::new(&Distribution::Uniform([0.0, 1.0]), &[0.1, 0.15, 0.9]);
        let n = 20_000;
        let integral: f64 = (0..n).map(|i| p.log_pdf((i as f64 + 0.5) / n as f64).exp() / n as f64).sum();
        assert!((integral - 1.0).abs() < 1e-3, "{integral}");
        let p = Parzen::new(&Distribution::Int([1, 5]), &[2.0, 2.0, 5.0]);
        let total: f64 = (1..=5).map(|x| p.log_pdf(x as f64).exp()).sum();
        assert!((total - 1.0).abs() < 1e-5, "{total}");
        assert!(p.log_pdf(2.0) > p.log_pdf(4.0));
    }

    /// Runs `n` sequential trials of `f` (minimised), TPE after startup or random throughout.
    fn optimise(seed: u64, n: usize, tpe: bool, f: impl Fn(f64) -> f64) -> Vec<f64> {
        let s = spec(&format!("random: {{x: {{uniform: [-5.0, 5.0]}}}}\ntrials: {n}\nmode: min\nseed: {seed}"));
        let mut history = Vec::new();
        let mut xs = Vec::new();
        for k in 0..n {
            let given = if tpe { history.as_slice() } else { &[] };
            let x = suggest(&s, k, given)[0].1.as_f64().unwrap();
            assert!((-5.0..=5.0).contains(&x));
            history.push(obs(x, Outcome::Complete(f(x))));
            xs.push(x);
        }
        xs
    }

    #[test]
    fn on_a_quadratic_tpe_concentrates_near_the_optimum_more_than_random_search() {
        let f = |x: f64| (x - 1.3) * (x - 1.3);
        let (mut tpe, mut random) = (0.0, 0.0);
        for seed in 0..8 {
            // Mean distance to the optimum of trials 30..40.
            let d = |xs: Vec<f64>| xs[30..].iter().map(|x| (x - 1.3).abs()).sum::<f64>() / 10.0;
            tpe += d(optimise(seed, 40, true, f)) / 8.0;
            random += d(optimise(seed, 40, false, f)) / 8.0;
        }
        // Random's mean distance is about 2.6 on [-5, 5]; TPE's under half of it (1.17 over these
        // seeds: with 3 or 4 good trials the magic clip keeps l's bandwidths at least a fifth of
        // the range, so TPE still explores, as Optuna's does).
        assert!(random > 2.0, "{random}");
        assert!(tpe < random / 2.0, "tpe {tpe} vs random {random}");
    }

    #[test]
    fn startup_trials_are_random_searchs_draws() {
        let s = spec("random: {lr: {loguniform: [1.0e-5, 1.0e-1]}, o: {choice: [a, b]}}\ntrials: 12\nseed: 9");
        let random = s.trials();
        for (k, t) in random.iter().enumerate().take(N_STARTUP) {
            assert_eq!(suggest(&s, k, &[]), t.params);
        }
    }

    #[test]
    fn suggestions_are_a_function_of_seed_index_and_history() {
        let f = |x: f64| (x - 1.3).abs();
        assert_eq!(optimise(3, 20, true, f), optimise(3, 20, true, f));
        assert_ne!(optimise(3, 20, true, f), optimise(4, 20, true, f));
        let s = spec("random: {lr: {loguniform: [1.0e-5, 1.0e-1]}, n: {int: [1, 4]}, o: {choice: [a, b]}}\ntrials: 20");
        let history: Vec<Observation> = (0..12)
            .map(|k| {
                let params = suggest(&s, k, &[]).into_iter().map(|(_, v)| v).collect();
                let outcome = if k == 11 { Outcome::Running } else { Outcome::Complete(k as f64) };
                Observation { params, outcome }
            })
            .collect();
        let a = suggest(&s, 12, &history);
        assert_eq!(a, suggest(&s, 12, &history));
        assert_ne!(a, suggest(&s, 13, &history));
        let lr = a[0].1.as_f64().unwrap();
        assert!((1e-5..=1e-1).contains(&lr));
        assert!((1..=4).contains(&a[1].1.as_i64().unwrap()));
        assert!(["a", "b"].contains(&a[2].1.as_str().unwrap()));
        // A different result changes the suggestion's inputs.
        let mut other = history.clone();
        other[3].outcome = Outcome::Complete(100.0);
        let (b1, _) = split(&history, s.mode);
        let (b2, _) = split(&other, s.mode);
        assert_ne!(b1, b2);
    }
}
