//! The learning-rate range test behind `kindling lr-find` (Smith, "Cyclical Learning Rates",
//! 2017; the form fastai and Lightning ship): train the pipeline's own model on its own data
//! and optimizer for a few hundred steps while the rate grows exponentially, record the
//! smoothed loss, stop once it diverges, and suggest a rate.
//!
//! Defaults are Lightning's `lr_find`: 100 steps from 1e-8 to 1, the loss smoothed with `beta`
//! 0.98 and bias-corrected, a stop when the smoothed loss exceeds 4 times the best seen. The
//! suggestion is fastai's `lr_min`: a tenth of the rate at the smoothed loss's minimum.
//! Lightning's rule, the steepest descent of the smoothed loss (`numpy.gradient` over the
//! steps, the first 10 and the last point left out), is reported beside it. Measured on the
//! two experiments that have a sweep to check against, the tenth-of-minimum rule landed at the
//! best rate on the stereo CNN (1.1e-3 against the sweep's best 1e-3, where the steepest point,
//! 3.8e-3, kills the network) and within a factor of two of the best on the quickstart (6.1e-3
//! against 3e-3; the steepest point: 9.5e-3).

use burn::nn::loss::CrossEntropyLossConfig;
use kindling_core::{Artifact, Artifacts, Dataset, StageError, rng_from_seed};
use kindling_models::Model;
use kindling_models::device::ResolvedDevice;
use rand::seq::SliceRandom;

use crate::batch::Batches;
use crate::config::TrainConfig;

/// How the range test sweeps the rate.
#[derive(Clone, Debug, PartialEq)]
pub struct RangeTest {
    /// The first rate.
    pub start_lr: f64,
    /// The last rate (reached at the last step unless the loss diverges first).
    pub end_lr: f64,
    /// Optimizer steps, one batch each.
    pub steps: usize,
    /// Weight of the running mean of the loss (0.98: about the last 50 steps).
    pub beta: f64,
    /// Stop once the smoothed loss is this many times the best smoothed loss.
    pub diverge: f64,
}

impl Default for RangeTest {
    fn default() -> Self {
        Self { start_lr: 1e-8, end_lr: 1.0, steps: 100, beta: 0.98, diverge: 4.0 }
    }
}

impl RangeTest {
    /// The rate of step `i`: `start_lr * (end_lr / start_lr) ^ (i / (steps - 1))`.
    pub fn lr(&self, i: usize) -> f64 {
        let t = if self.steps > 1 { i as f64 / (self.steps - 1) as f64 } else { 0.0 };
        self.start_lr * (self.end_lr / self.start_lr).powf(t)
    }

    /// Why these settings cannot run, if they cannot.
    pub fn check(&self) -> Result<(), String> {
        if !(self.start_lr > 0.0 && self.end_lr > self.start_lr && self.end_lr.is_finite()) {
            return Err(format!("need 0 < start < end, got {} and {}", self.start_lr, self.end_lr));
        }
        if self.steps < 12 {
            return Err(format!("need at least 12 steps (the first 10 are not used to suggest), got {}", self.steps));
        }
        if !(0.0..1.0).contains(&self.beta) || self.diverge <= 1.0 {
            return Err(format!("need beta in [0, 1) and diverge > 1, got {} and {}", self.beta, self.diverge));
        }
        Ok(())
    }
}

/// One step of the test.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RangePoint {
    /// The rate the step used.
    pub lr: f64,
    /// The batch's loss.
    pub loss: f64,
    /// The bias-corrected running mean of the loss up to this step.
    pub smoothed: f64,
}

/// What the test found.
#[derive(Clone, Debug, PartialEq)]
pub struct RangeResult {
    /// Every step taken.
    pub points: Vec<RangePoint>,
    /// The suggested rate: a tenth of the rate at the smoothed loss's minimum (fastai's
    /// `lr_min`); `None` when too few steps were taken.
    pub suggestion: Option<f64>,
    /// Where the smoothed loss falls fastest (Lightning's suggestion).
    pub steepest: Option<f64>,
    /// The test stopped before its last step because the loss diverged.
    pub diverged: bool,
}

impl RangeResult {
    /// lr-find.png: the loss against the rate on a log axis, the suggestion marked.
    pub fn plot_png(&self) -> Result<Vec<u8>, kindling_report::DrawError> {
        let points: Vec<(f64, f64, f64)> = self.points.iter().map(|p| (p.lr, p.loss, p.smoothed)).collect();
        kindling_report::lr_find_png(&points, self.suggestion)
    }

    /// lr-find.csv: `step,lr,loss,smoothed_loss`, one row per step.
    pub fn csv(&self) -> String {
        let mut out = String::from("step,lr,loss,smoothed_loss\n");
        for (i, p) in self.points.iter().enumerate() {
            out.push_str(&format!("{},{:e},{},{}\n", i + 1, p.lr, p.loss, p.smoothed));
        }
        out
    }
}

/// Runs the range test on the artifacts of a pipeline's stages before `train` (its data, its
/// freshly initialised model, the device) with the train stage's configuration (optimizer,
/// batch size, class weights, L1, clipping). Batches are drawn as training draws them
/// (shuffled with `seed`, augmented); the model is consumed.
pub fn range_test(
    artifacts: &mut Artifacts,
    train: &TrainConfig,
    seed: u64,
    test: &RangeTest,
) -> Result<RangeResult, StageError> {
    test.check().map_err(StageError::Stopped)?;
    let model = artifacts.take::<Model>().ok_or(StageError::MissingArtifact(Model::KIND))?;
    let device = artifacts.get::<ResolvedDevice>().ok_or(StageError::MissingArtifact("device"))?.clone();
    let data = artifacts.get::<Dataset>().ok_or(StageError::MissingArtifact(Dataset::KIND))?;
    let shape: [usize; 3] = data.shape.as_slice().try_into().map_err(|_| {
        StageError::Stopped(format!("lr-find expects image samples [c, h, w], the data has {:?}", data.shape))
    })?;
    if data.train.is_empty() {
        return Err(StageError::Stopped("the training split is empty".into()));
    }
    let weights = train.class_weights.as_ref().map(|w| w.iter().map(|&x| x as f32).collect());
    let loss_fn = CrossEntropyLossConfig::new().with_weights(weights).init(&device.device);
    let mut optimizer = train.optimizer.build();
    let mut net = model.net;
    let (mut points, mut avg, mut best) = (Vec::with_capacity(test.steps), 0.0_f64, f64::INFINITY);
    let mut diverged = false;
    let mut epoch = 0;
    'epochs: while points.len() < test.steps {
        epoch += 1;
        let mut order: Vec<usize> = (0..data.train.len()).collect();
        if train.shuffle {
            order.shuffle(&mut rng_from_seed(seed, &format!("shuffle/{epoch}")));
        }
        for batch in Batches::train(&data.train, shape, order, train.batch_size, epoch, &device.device) {
            let step = points.len();
            if step == test.steps {
                break 'epochs;
            }
            let lr = test.lr(step);
            let (images, labels) = batch.map_err(StageError::Stopped)?;
            let data_loss = loss_fn.forward(net.forward(images), labels);
            let value = f64::from(data_loss.clone().into_scalar::<f32>());
            if !value.is_finite() {
                diverged = true;
                break 'epochs;
            }
            avg = test.beta * avg + (1.0 - test.beta) * value;
            let smoothed = avg / (1.0 - test.beta.powi(step as i32 + 1));
            points.push(RangePoint { lr, loss: value, smoothed });
            if step > 0 && smoothed > test.diverge * best {
                diverged = true;
                break 'epochs;
            }
            best = best.min(smoothed);
            let l1 = train.l1.as_ref().map(|l1| (l1.lambda, l1.weights_only));
            net = crate::fit::update(net, &mut optimizer, data_loss, l1, train.clip_grad_norm, lr, None);
        }
    }
    let (suggestion, steepest) = (suggest(&points), steepest(&points));
    Ok(RangeResult { points, suggestion, steepest, diverged })
}

/// The suggested rate: a tenth of the rate where the smoothed loss is lowest (fastai's
/// `lr_min`), over the same points [`steepest`] reads (the first 10 left out). `None` when it
/// has no point.
pub fn suggest(points: &[RangePoint]) -> Option<f64> {
    const SKIP_BEGIN: usize = 10;
    if points.len() < SKIP_BEGIN + 4 {
        return None;
    }
    let lowest = points[SKIP_BEGIN..]
        .iter()
        .filter(|p| p.smoothed.is_finite())
        .min_by(|a, b| a.smoothed.total_cmp(&b.smoothed))?;
    Some(lowest.lr / 10.0)
}

/// The rate at the steepest descent of the smoothed loss: `numpy.gradient` (central
/// differences inside, one-sided at the ends) over the points after the first 10 and before
/// the last, as Lightning's `suggestion()` computes it. `None` with fewer than 3 such points.
pub fn steepest(points: &[RangePoint]) -> Option<f64> {
    const SKIP_BEGIN: usize = 10;
    if points.len() < SKIP_BEGIN + 4 {
        return None;
    }
    let used: Vec<&RangePoint> =
        points[SKIP_BEGIN..points.len() - 1].iter().filter(|p| p.smoothed.is_finite()).collect();
    let n = used.len();
    if n < 3 {
        return None;
    }
    let y = |i: usize| used[i].smoothed;
    let gradient = |i: usize| match i {
        0 => y(1) - y(0),
        i if i == n - 1 => y(n - 1) - y(n - 2),
        i => (y(i + 1) - y(i - 1)) / 2.0,
    };
    let steepest = (0..n).min_by(|&a, &b| gradient(a).total_cmp(&gradient(b)))?;
    Some(used[steepest].lr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(smoothed: &[f64]) -> Vec<RangePoint> {
        let test = RangeTest { steps: smoothed.len(), ..RangeTest::default() };
        smoothed.iter().enumerate().map(|(i, &s)| RangePoint { lr: test.lr(i), loss: s, smoothed: s }).collect()
    }

    #[test]
    fn rates_grow_exponentially_from_start_to_end() {
        let t = RangeTest { start_lr: 1e-6, end_lr: 1e-2, steps: 5, ..RangeTest::default() };
        let lrs: Vec<f64> = (0..5).map(|i| t.lr(i)).collect();
        for (got, want) in lrs.iter().zip([1e-6, 1e-5, 1e-4, 1e-3, 1e-2]) {
            assert!((got / want - 1.0).abs() < 1e-12, "{lrs:?}");
        }
        assert!(RangeTest { steps: 5, ..RangeTest::default() }.check().is_err());
        assert!(RangeTest { end_lr: 1e-9, ..RangeTest::default() }.check().is_err());
        assert!(RangeTest::default().check().is_ok());
    }

    #[test]
    fn the_suggestion_is_a_tenth_of_the_lowest_and_the_steepest_point_is_reported() {
        // Flat, a steep fall centred on step 20, flat, then a rise; the steepest central
        // difference is at step 20 (numpy.gradient gives -1.0 there and -0.5 either side).
        let mut s = vec![3.0; 40];
        for (i, v) in s.iter_mut().enumerate() {
            *v = match i {
                0..=19 => 3.0,
                20 => 2.5,
                21..=34 => 2.0,
                _ => 2.0 + (i - 34) as f64,
            };
        }
        let p = points(&s);
        assert_eq!(steepest(&p), Some(p[20].lr));
        // The lowest smoothed loss is 2.0 from step 21 to 34; the first of them, divided by 10.
        assert_eq!(suggest(&p), Some(p[21].lr / 10.0));
        // The first 10 points are left out: the fall after the spike at step 3 does not count.
        // The dip at step 20 falls fastest into it, at step 19 ((y20 - y18) / 2 = -0.05).
        let mut early = vec![2.0; 30];
        early[3] = 9.0;
        early[20] = 1.9;
        let p = points(&early);
        assert_eq!(steepest(&p), Some(p[19].lr));
        assert_eq!(suggest(&p), Some(p[20].lr / 10.0));
        assert_eq!(steepest(&points(&[1.0; 12])), None);
        assert_eq!(suggest(&points(&[1.0; 12])), None);
    }
}
