//! One pass over the training split: the inner loop of the `train` stage.

use std::io::IsTerminal;

use burn::nn::loss::CrossEntropyLoss;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use indicatif::{ProgressBar, ProgressStyle};
use kindling_core::{Split, StageError, rng_from_seed};
use kindling_models::Sequential;
use rand::seq::SliceRandom;

use crate::batch::{Batches, count_correct};
use crate::clip::clip_grad_norm;
use crate::diagnose::{Recorder, StepSignals};
use crate::history::SplitMetrics;

/// What stays the same across the epochs of a run.
pub(crate) struct Fit<'a> {
    pub(crate) device: &'a Device,
    pub(crate) loss: CrossEntropyLoss,
    pub(crate) shape: [usize; 3],
    pub(crate) batch_size: usize,
    pub(crate) shuffle: bool,
    pub(crate) seed: u64,
    pub(crate) epochs: usize,
    /// Explicit L1 penalty: `(lambda, weights_only)`.
    pub(crate) l1: Option<(f64, bool)>,
    /// `max_norm` of global gradient-norm clipping.
    pub(crate) clip_grad_norm: Option<f64>,
}

impl Fit<'_> {
    /// A progress bar over an epoch's `samples` on a terminal (loss, accuracy, samples/s,
    /// time left); hidden when stderr is not a terminal, where each epoch gets one plain line.
    fn progress_bar(&self, epoch: usize, samples: usize) -> ProgressBar {
        if !std::io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let template = format!("  epoch {epoch}/{} [{{bar:30}}] {{pos}}/{{len}} {{msg}} eta {{eta}}", self.epochs);
        let style = ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar());
        ProgressBar::new(samples as u64).with_style(style.progress_chars("=> "))
    }

    /// Trains `net` for one epoch at learning rate `lr` and returns it with the epoch's
    /// accumulated metrics. A non-finite loss stops training with the epoch and step.
    /// `diagnostics` records the step losses and sampled gradient norms when given.
    pub(crate) fn epoch(
        &self,
        mut net: Sequential,
        optimizer: &mut ModuleOptimizer,
        train: &Split,
        epoch: usize,
        lr: f64,
        mut diagnostics: Option<(&mut Recorder, &mut StepSignals)>,
    ) -> Result<(Sequential, SplitMetrics), StageError> {
        let mut order: Vec<usize> = (0..train.len()).collect();
        if self.shuffle {
            order.shuffle(&mut rng_from_seed(self.seed, &format!("shuffle/{epoch}")));
        }
        let batches = Batches::train(train, self.shape, order, self.batch_size, epoch, self.device);
        let steps = batches.len();
        let progress = self.progress_bar(epoch, train.len());
        let (mut loss_sum, mut correct, mut seen) = (0.0_f64, 0_usize, 0_usize);
        for (step, batch) in batches.enumerate() {
            let (images, labels) = batch.map_err(StageError::Stopped)?;
            let n = labels.dims()[0];
            let logits = net.forward(images);
            let data_loss = self.loss.forward(logits.clone(), labels.clone());
            // History reports the data loss, so runs with and without a penalty compare.
            let value = f64::from(data_loss.clone().into_scalar::<f32>());
            if !value.is_finite() {
                return Err(StageError::Stopped(format!(
                    "the training loss became {value} at epoch {epoch}, step {} of {steps}: training diverged \
                     (try a lower learning rate; lr is {lr})",
                    step + 1
                )));
            }
            loss_sum += value * n as f64;
            seen += n;
            correct += count_correct(logits.detach(), labels);
            let probe = match diagnostics.as_mut() {
                Some((recorder, signals)) => {
                    recorder.step_loss(signals, value);
                    signals.samples(step).then_some(&mut **signals)
                }
                None => None,
            };
            net = update(net, optimizer, data_loss, self.l1, self.clip_grad_norm, lr, probe);
            progress.inc(n as u64);
            if step % 10 == 9 || step + 1 == steps {
                let (mean, acc) = (loss_sum / seen as f64, 100.0 * correct as f64 / seen as f64);
                let rate = seen as f64 / progress.elapsed().as_secs_f64().max(1e-9);
                progress.set_message(format!("loss {mean:.4} acc {acc:.2}% {rate:.0} samples/s"));
            }
        }
        progress.finish_and_clear();
        Ok((net, SplitMetrics::new(loss_sum, correct, train.len())))
    }
}

/// One optimizer update from a batch's data loss: the L1 penalty `(lambda, weights_only)` added
/// when asked, the backward pass, global-norm clipping to `clip`, the step at `lr`; `probe`
/// records the gradient norms before clipping. Training and the learning-rate range test share
/// it.
pub(crate) fn update(
    net: Sequential,
    optimizer: &mut ModuleOptimizer,
    data_loss: Tensor<1>,
    l1: Option<(f64, bool)>,
    clip: Option<f64>,
    lr: f64,
    probe: Option<&mut StepSignals>,
) -> Sequential {
    let loss = match l1.and_then(|(lambda, weights_only)| Some((lambda, net.l1_norm(weights_only)?))) {
        Some((lambda, norm)) => data_loss + norm.mul_scalar(lambda),
        None => data_loss,
    };
    let mut grads = GradientsParams::from_grads(loss.backward(), &net);
    if let Some(probe) = probe {
        probe.grads(&net, &grads);
    }
    if let Some(max_norm) = clip {
        clip_grad_norm(&mut grads, &net.param_ids(), max_norm);
    }
    optimizer.step(lr, net, grads)
}
