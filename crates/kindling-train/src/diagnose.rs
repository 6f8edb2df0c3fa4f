//! Recording the run's diagnostic signals while it trains; `kindling_metrics::diagnostics`
//! turns them into findings.
//!
//! What it costs: the step losses are read anyway; the gradient norms are sampled on
//! [`GRAD_SAMPLES`] steps an epoch (one sum of squares per parameter, one device read); dead
//! ReLU units are counted on the validation pass (one max-reduction per ReLU and batch; without
//! a validation split, one probe batch of at most [`PROBE`] training samples runs forward), and
//! the validation predictions (computed anyway) are compared with the last epoch's.
//! Before the first epoch, the held-out splits in memory are hashed against the training split
//! to find exact copies. `cargo xtask bench diagnostics` measures the whole against a run with
//! `train.diagnostics: false`.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use burn::module::ParamId;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use kindling_core::{Dataset, Split};
use kindling_metrics::diagnostics::{DataSignals, DeadUnits, EpochSignals, LayerNorms, SpikeCounter};
use kindling_models::{Activation, Layer, Sequential};
use serde::{Deserialize, Serialize};

use crate::batch::Batches;
use crate::clip::square_sum;

/// Steps an epoch whose gradient norms are sampled.
pub(crate) const GRAD_SAMPLES: usize = 8;
/// Samples in the probe batch that counts dead units.
pub(crate) const PROBE: usize = 256;

/// A parameter whose gradient norm is sampled: its id and rank, and the weighted layer it is
/// the weight of (biases and batch-norm parameters count in the global norm only).
struct Param {
    id: ParamId,
    rank: usize,
    weight_of: Option<(usize, &'static str)>,
}

fn params(net: &Sequential) -> Vec<Param> {
    let mut out = Vec::new();
    for (i, layer) in net.layers.iter().enumerate() {
        match layer {
            Layer::Conv2d(c) => {
                out.push(Param { id: c.weight.id, rank: 4, weight_of: Some((i, "conv2d")) });
                out.extend(c.bias.as_ref().map(|b| Param { id: b.id, rank: 1, weight_of: None }));
            }
            Layer::Linear(l) => {
                out.push(Param { id: l.weight.id, rank: 2, weight_of: Some((i, "linear")) });
                out.extend(l.bias.as_ref().map(|b| Param { id: b.id, rank: 1, weight_of: None }));
            }
            Layer::BatchNorm(b) => {
                out.push(Param { id: b.gamma.id, rank: 1, weight_of: None });
                out.push(Param { id: b.beta.id, rank: 1, weight_of: None });
            }
            _ => {}
        }
    }
    out
}

/// The sums of squares of `tensors`, read from the device at once.
fn sums_of_squares(tensors: Vec<Tensor<1>>) -> Vec<f64> {
    if tensors.is_empty() {
        return Vec::new();
    }
    let data = Tensor::cat(tensors, 0).into_data();
    data.iter::<f32>().map(f64::from).collect()
}

/// What one epoch's steps record.
#[derive(Debug, Default)]
pub(crate) struct StepSignals {
    first: Option<f64>,
    max: f64,
    spikes: usize,
    /// Sampled global norms.
    global: Vec<f64>,
    /// Per weighted layer, its sampled norms.
    layers: Vec<(usize, &'static str, Vec<f64>)>,
    /// Sample every this many steps.
    every: usize,
}

impl StepSignals {
    pub(crate) fn new(steps: usize) -> Self {
        Self { every: steps.div_ceil(GRAD_SAMPLES).max(1), ..Self::default() }
    }

    /// Whether step `step` (0-based) samples the gradients.
    pub(crate) fn samples(&self, step: usize) -> bool {
        step.is_multiple_of(self.every)
    }

    /// Records the gradient norms of `grads` (before clipping).
    pub(crate) fn grads(&mut self, net: &Sequential, grads: &GradientsParams) {
        let params = params(net);
        let mut kept = Vec::new();
        let squares: Vec<Tensor<1>> =
            params.iter().filter_map(|p| square_sum(grads, p.id, p.rank).inspect(|_| kept.push(p.weight_of))).collect();
        let values = sums_of_squares(squares);
        self.global.push(values.iter().sum::<f64>().sqrt());
        for (weight_of, v) in kept.into_iter().zip(values) {
            let Some((layer, kind)) = weight_of else { continue };
            match self.layers.iter_mut().find(|(l, _, _)| *l == layer) {
                Some((_, _, norms)) => norms.push(v.sqrt()),
                None => self.layers.push((layer, kind, vec![v.sqrt()])),
            }
        }
    }
}

fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 { values[n / 2] } else { 0.5 * (values[n / 2 - 1] + values[n / 2]) }
}

/// What is kept across epochs (and in the checkpoint, so a resumed run diagnoses the same).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Recorder {
    /// The epochs recorded.
    pub(crate) epochs: Vec<EpochSignals>,
    /// The running mean of the step losses and the run's first step loss.
    #[serde(default)]
    spikes: SpikeCounter,
    /// The last epoch's validation predictions.
    #[serde(default)]
    previous: Vec<u32>,
}

impl Recorder {
    /// Records one step's loss into `s`.
    pub(crate) fn step_loss(&mut self, s: &mut StepSignals, loss: f64) {
        if self.spikes.step(loss) {
            s.spikes += 1;
        }
        s.first.get_or_insert(loss);
        s.max = s.max.max(loss);
    }

    /// Ends `epoch`: the step signals, the weight norms of `net`, the dead units `dead` saw and
    /// the validation `predictions`.
    pub(crate) fn end_epoch(
        &mut self,
        epoch: usize,
        mut steps: StepSignals,
        net: &Sequential,
        dead: DeadProbe,
        predictions: Option<&[u32]>,
    ) {
        let weights: Vec<(usize, &'static str, Tensor<1>)> = net
            .layers
            .iter()
            .enumerate()
            .filter_map(|(i, l)| match l {
                Layer::Conv2d(c) => Some((i, "conv2d", c.weight.val().square().sum())),
                Layer::Linear(l) => Some((i, "linear", l.weight.val().square().sum())),
                _ => None,
            })
            .collect();
        let ids: Vec<(usize, &'static str)> = weights.iter().map(|(i, k, _)| (*i, *k)).collect();
        let weight_norms = sums_of_squares(weights.into_iter().map(|(_, _, t)| t).collect());
        let layers = ids
            .iter()
            .zip(&weight_norms)
            .map(|(&(layer, kind), w)| {
                let mut grads =
                    steps.layers.iter().find(|(l, _, _)| *l == layer).map(|x| x.2.clone()).unwrap_or_default();
                LayerNorms { layer, kind: kind.into(), grad_norm: median(&mut grads), weight_norm: w.sqrt() }
            })
            .collect();
        let (dead, probe_samples) = dead.finish();
        let (mut top_class, mut top_share, mut unchanged) = (None, None, None);
        if let Some(p) = predictions.filter(|p| !p.is_empty()) {
            let mut counts: HashMap<u32, usize> = HashMap::new();
            for &c in p {
                *counts.entry(c).or_default() += 1;
            }
            let (class, n) = counts.into_iter().max_by_key(|&(c, n)| (n, std::cmp::Reverse(c))).unwrap_or((0, 0));
            top_class = Some(class);
            top_share = Some(n as f64 / p.len() as f64);
            if self.previous.len() == p.len() {
                let same = p.iter().zip(&self.previous).filter(|(a, b)| a == b).count();
                unchanged = Some(same as f64 / p.len() as f64);
            }
            self.previous = p.to_vec();
        }
        let grad_norm_max = steps.global.iter().copied().fold(0.0, f64::max);
        self.epochs.push(EpochSignals {
            epoch,
            first_step_loss: steps.first.unwrap_or(f64::NAN),
            max_step_loss: steps.max,
            spikes: steps.spikes,
            grad_samples: steps.global.len(),
            grad_norm_median: median(&mut steps.global),
            grad_norm_max,
            layers,
            dead,
            probe_samples,
            top_class,
            top_share,
            unchanged,
        });
    }
}

/// Per ReLU of a model, the largest output of each unit over the samples seen: fed the
/// activations of the validation pass (so it costs one reduction per ReLU and batch), or of a
/// probe batch of training samples when there is no validation split.
pub(crate) struct DeadProbe {
    relus: Vec<bool>,
    maxima: Vec<(usize, Tensor<1>)>,
    samples: usize,
}

impl DeadProbe {
    pub(crate) fn new(net: &Sequential) -> Self {
        Self { relus: net.layers.iter().map(|l| matches!(l, Layer::Relu(_))).collect(), maxima: Vec::new(), samples: 0 }
    }

    /// Takes layer `i`'s output `x` (of a batch of `n` samples, counted at its first ReLU).
    pub(crate) fn observe(&mut self, i: usize, x: &Activation) {
        if !self.relus.get(i).copied().unwrap_or(false) {
            return;
        }
        // A unit's largest output over the batch (and, for a channel, over its positions);
        // ReLU outputs are never negative, so 0 means always 0.
        let (m, n) = match x {
            Activation::Image(t) => {
                let [b, c, h, w] = t.dims();
                (t.clone().swap_dims(0, 1).reshape([c, b * h * w]).max_dim(1).reshape([c]), b)
            }
            Activation::Flat(t) => (t.clone().max_dim(0).flatten(0, 1), t.dims()[0]),
        };
        if self.maxima.first().is_none_or(|(first, _)| *first == i) {
            self.samples += n;
        }
        match self.maxima.iter_mut().find(|(layer, _)| *layer == i) {
            Some((_, acc)) => *acc = acc.clone().max_pair(m),
            None => self.maxima.push((i, m)),
        }
    }

    /// Runs the first [`PROBE`] samples of `split` through `net` (evaluation mode, plain
    /// device) into the probe.
    pub(crate) fn probe(
        &mut self,
        net: &Sequential,
        split: &Split,
        shape: [usize; 3],
        device: &Device,
    ) -> Result<(), String> {
        let n = split.len().min(PROBE);
        if let Some(batch) = Batches::new(split, shape, (0..n).collect(), PROBE, device).next() {
            let (images, _) = batch?;
            net.forward_inspect(images, |i, x| self.observe(i, x));
        }
        Ok(())
    }

    /// The dead units of each ReLU, and over how many samples.
    fn finish(self) -> (Vec<DeadUnits>, usize) {
        let out = self
            .maxima
            .into_iter()
            .map(|(layer, m)| {
                let values: Vec<f32> = m.into_data().iter::<f32>().collect();
                DeadUnits { layer, units: values.len(), dead: values.iter().filter(|&&v| v <= 0.0).count() }
            })
            .collect();
        (out, self.samples)
    }
}

/// Samples per class of each split, and exact copies of training samples among the held-out
/// splits kept in memory.
pub(crate) fn data_signals(data: &Dataset, shape: [usize; 3]) -> DataSignals {
    let k = data.classes.len();
    let counts = |s: &Split| {
        let mut c = vec![0; k];
        for &y in &s.y {
            if let Some(n) = c.get_mut(y as usize) {
                *n += 1;
            }
        }
        c
    };
    let mut held_out: Vec<(&str, &Split)> = Vec::new();
    if !data.valid.is_empty() {
        held_out.push(("valid", &data.valid));
    }
    if let Some(t) = data.test.as_ref().filter(|t| !t.is_empty()) {
        held_out.push(("test", t));
    }
    let mut out = DataSignals {
        classes: data.classes.clone(),
        counts: std::iter::once(("train".to_owned(), counts(&data.train)))
            .chain(held_out.iter().map(|(n, s)| ((*n).to_owned(), counts(s))))
            .collect(),
        duplicates: Vec::new(),
    };
    let per: usize = shape.iter().product();
    if data.train.source.is_some() || per == 0 || data.train.x.len() != data.train.len() * per {
        return out;
    }
    fn sample(s: &Split, per: usize, i: usize) -> &[f32] {
        &s.x[i * per..(i + 1) * per]
    }
    let hash = |v: &[f32]| {
        let mut h = DefaultHasher::new();
        for x in v {
            x.to_bits().hash(&mut h);
        }
        h.finish()
    };
    let mut index: HashMap<u64, Vec<usize>> = HashMap::new();
    for i in 0..data.train.len() {
        index.entry(hash(sample(&data.train, per, i))).or_default().push(i);
    }
    for (name, split) in held_out {
        if split.source.is_some() || split.x.len() != split.len() * per {
            continue;
        }
        let copies = (0..split.len())
            .filter(|&i| {
                let v = sample(split, per, i);
                index.get(&hash(v)).is_some_and(|hits| hits.iter().any(|&j| sample(&data.train, per, j) == v))
            })
            .count();
        out.duplicates.push((name.to_owned(), copies, split.len()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_across_splits_are_counted_exactly() {
        let shape = [1, 1, 2];
        let train = Split::new(vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0], vec![0, 1, 1]);
        // The first valid sample is training sample 1; the second differs in one value.
        let valid = Split::new(vec![2.0, 3.0, 4.0, 5.5], vec![1, 0]);
        let data = Dataset {
            classes: vec!["a".into(), "b".into(), "c".into()],
            shape: shape.to_vec(),
            train,
            valid,
            test: None,
        };
        let s = data_signals(&data, shape);
        assert_eq!(s.counts, [("train".to_owned(), vec![1, 2, 0]), ("valid".to_owned(), vec![1, 1, 0])]);
        assert_eq!(s.duplicates, [("valid".to_owned(), 1, 2)]);
    }

    #[test]
    fn median_of_even_and_odd_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }
}
