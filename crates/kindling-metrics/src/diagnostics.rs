//! Run diagnostics: cheap signals recorded while a model trains, turned into findings with
//! evidence and one concrete next step each.
//!
//! The training loop records [`EpochSignals`] (step losses, sampled gradient norms, dead ReLU
//! units on a probe batch, the validation predictions) and the data stage's splits give
//! [`DataSignals`]; [`diagnose`] reads them with the run's history and returns the
//! [`Finding`]s. Everything here is a pure function of those numbers, so every threshold is
//! tested on constructed cases; the thresholds are the `pub const`s below.
//!
//! ```
//! use kindling_metrics::diagnostics::{Context, DataSignals, diagnose};
//! let cx = Context { classes: 10, optimizer: "adam".into(), lr: 1e-3, weight_decay: 0.0, early_stopping: false };
//! // No epochs, no data problems: nothing to say.
//! assert!(diagnose(&[], &[], &DataSignals::default(), &cx).is_empty());
//! ```

use serde::{Deserialize, Serialize};

use crate::run_files::EpochRecord;

/// Prediction collapse: the most predicted validation class takes at least this share of the
/// predictions...
pub const COLLAPSE_SHARE: f64 = 0.5;
/// ... and at least this many times its share of the labels.
pub const COLLAPSE_RATIO: f64 = 2.0;
/// Predictions "do not change" between two epochs when at least this share is the same.
pub const FROZEN_SHARE: f64 = 0.99;
/// Not learning: the best epoch's training loss is above this fraction of the first step's
/// loss (it fell by less than 10%) ...
pub const NOT_LEARNING_LOSS: f64 = 0.9;
/// ... or the best training accuracy is below this many times chance (1 / classes).
pub const NOT_LEARNING_CHANCE: f64 = 1.5;
/// Divergence: the last epoch's training loss is at least this many times the lowest, or...
pub const DIVERGENCE_RISE: f64 = 1.5;
/// ... a training step's loss is at least this many times the first step's (which is about
/// the loss of guessing, ln(classes), for a freshly initialised model).
pub const DIVERGENCE_STEP: f64 = 4.0;
/// Loss spikes: a step whose loss is above this many times the running mean of the steps
/// before it (exponential, weight [`SPIKE_EMA`]) and above the first step's loss...
pub const SPIKE_FACTOR: f64 = 2.0;
/// Weight of the newest step in the running mean of the step losses.
pub const SPIKE_EMA: f64 = 0.1;
/// ... counted as a finding from this many such steps in a run.
pub const SPIKE_STEPS: usize = 3;
/// Exploding gradients: a sampled global gradient norm at least this many times the first
/// epoch's median.
pub const EXPLODING_FACTOR: f64 = 100.0;
/// Vanishing gradients: the first weighted layer's gradient-to-weight norm ratio is below this
/// fraction of the last weighted layer's.
pub const VANISHING_FACTOR: f64 = 1e-3;
/// Dead units: at least this share of a ReLU's units output zero for every sample of the probe
/// batch (a unit is a channel of an image activation, a feature of a flat one). A ReLU fed by
/// non-negative inputs (after another ReLU) has many such units even in a healthy run: the
/// quickstart's 100-unit linear layer has about 45%; a network killed by too high a learning
/// rate has 85-100% in every layer.
pub const DEAD_SHARE: f64 = 0.75;
/// Overfitting: the last validation loss is at least this many times its minimum...
pub const OVERFIT_RISE: f64 = 1.1;
/// ... at least this many epochs after it, while the training loss kept falling and the
/// valid-train gap at least doubled.
pub const OVERFIT_EPOCHS: usize = 2;
/// Class imbalance: the largest class of the training split has at least this many times the
/// samples of the smallest.
pub const IMBALANCE_RATIO: f64 = 3.0;
/// Duplicates: at least this share of a held-out split's samples are exact copies of
/// training samples.
pub const DUPLICATE_SHARE: f64 = 0.01;

/// What a finding is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// Most validation predictions are one class.
    PredictionCollapse,
    /// The training loss rose over the epochs.
    Divergence,
    /// Steps whose loss jumped far above the running mean.
    LossSpikes,
    /// The global gradient norm grew by orders of magnitude.
    ExplodingGradients,
    /// The training loss stayed where it started.
    NotLearning,
    /// ReLU units that output zero for every sample.
    DeadUnits,
    /// Early layers get orders of magnitude less gradient (relative to their weights) than
    /// late ones.
    VanishingGradients,
    /// Validation loss rising while training loss falls.
    Overfitting,
    /// A training split whose classes have very different sizes.
    ClassImbalance,
    /// Classes that a held-out split has no sample of.
    MissingClasses,
    /// Held-out samples that are exact copies of training samples.
    DuplicateSamples,
}

impl FindingKind {
    /// Its name in words.
    pub fn title(self) -> &'static str {
        match self {
            Self::PredictionCollapse => "prediction collapse",
            Self::Divergence => "divergence",
            Self::LossSpikes => "loss spikes",
            Self::ExplodingGradients => "exploding gradients",
            Self::NotLearning => "not learning",
            Self::DeadUnits => "dead units",
            Self::VanishingGradients => "vanishing gradients",
            Self::Overfitting => "overfitting",
            Self::ClassImbalance => "class imbalance",
            Self::MissingClasses => "missing classes",
            Self::DuplicateSamples => "duplicate samples",
        }
    }
}

/// One thing the run's numbers say is wrong, with the numbers and a next step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// What it is about.
    pub kind: FindingKind,
    /// The epochs it is based on (empty for data findings).
    pub epochs: Vec<usize>,
    /// What was measured, with the numbers.
    pub evidence: String,
    /// One concrete next step.
    pub advice: String,
}

impl Finding {
    /// `kind: evidence. Next: advice` on one line.
    pub fn line(&self) -> String {
        format!("{}: {} Next: {}", self.kind.title(), self.evidence, self.advice)
    }
}

/// A weighted layer's gradient and weight norms in one epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerNorms {
    /// Index of the layer in the model's layer list.
    pub layer: usize,
    /// Its kind (`conv2d`, `linear`).
    pub kind: String,
    /// Median over the sampled steps of the L2 norm of its weight's gradient.
    pub grad_norm: f64,
    /// L2 norm of its weight at the end of the epoch.
    pub weight_norm: f64,
}

impl LayerNorms {
    /// Gradient norm over weight norm (0 for zero weights).
    pub fn ratio(&self) -> f64 {
        if self.weight_norm > 0.0 { self.grad_norm / self.weight_norm } else { 0.0 }
    }
}

/// A ReLU's dead units on the probe batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeadUnits {
    /// Index of the ReLU in the model's layer list.
    pub layer: usize,
    /// Units (channels of an image activation, features of a flat one).
    pub units: usize,
    /// Units that are zero for every sample of the probe batch.
    pub dead: usize,
}

impl DeadUnits {
    /// The dead share.
    pub fn share(&self) -> f64 {
        if self.units == 0 { 0.0 } else { self.dead as f64 / self.units as f64 }
    }
}

/// What one epoch's training recorded besides loss and accuracy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochSignals {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Loss of the epoch's first step.
    pub first_step_loss: f64,
    /// The highest step loss.
    pub max_step_loss: f64,
    /// Steps counted as spikes ([`SPIKE_FACTOR`]).
    pub spikes: usize,
    /// Median and maximum of the sampled global gradient norms.
    pub grad_norm_median: f64,
    /// The largest sampled global gradient norm.
    pub grad_norm_max: f64,
    /// Steps whose gradients were sampled.
    pub grad_samples: usize,
    /// Per weighted layer.
    pub layers: Vec<LayerNorms>,
    /// Per ReLU, on the probe batch after the epoch.
    pub dead: Vec<DeadUnits>,
    /// Samples in the probe batch.
    pub probe_samples: usize,
    /// The most predicted validation class, its share of the predictions.
    pub top_class: Option<u32>,
    /// Share of validation predictions in `top_class`.
    pub top_share: Option<f64>,
    /// Share of validation predictions equal to the previous epoch's (none in the first).
    pub unchanged: Option<f64>,
}

/// Per split, the samples of each class, and what is known about duplicates.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DataSignals {
    /// Class names, in label order.
    pub classes: Vec<String>,
    /// `(split, samples per class)`, train first.
    pub counts: Vec<(String, Vec<usize>)>,
    /// `(split, samples that are exact copies of a training sample, samples checked)` for the
    /// held-out splits held in memory (splits read from disk per batch are not checked).
    pub duplicates: Vec<(String, usize, usize)>,
}

/// What the advice depends on: the run's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Context {
    /// Number of classes.
    pub classes: usize,
    /// The optimizer's name (`adam`, `adagrad`, ...).
    pub optimizer: String,
    /// Its base learning rate.
    pub lr: f64,
    /// Its weight decay.
    pub weight_decay: f64,
    /// Whether early stopping was on.
    pub early_stopping: bool,
}

/// What metrics.json keeps: the findings and the signals they came from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Diagnostics {
    /// What the numbers say, most serious first (empty for a healthy run).
    pub findings: Vec<Finding>,
    /// Per epoch.
    pub epochs: Vec<EpochSignals>,
    /// The data.
    pub data: DataSignals,
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

fn num(x: f64) -> String {
    if x != 0.0 && (x.abs() < 1e-3 || x.abs() >= 1e4) { format!("{x:.2e}") } else { format!("{x:.4}") }
}

/// The step the optimizer's settings suggest first, if any: a weight decay so strong it holds
/// the weights at zero, or a learning rate too low to move them.
fn settings_advice(cx: &Context) -> Option<String> {
    if cx.weight_decay >= 0.01 && cx.optimizer != "adamw" || cx.weight_decay >= 0.5 {
        return Some(format!(
            "weight decay {} with {} pulls the weights to zero faster than the data moves them: try 1e-4",
            cx.weight_decay, cx.optimizer
        ));
    }
    (cx.lr < 1e-4).then(|| {
        format!(
            "lr {} is too low to move the weights: run `kindling lr-find` on the pipeline, or try {}",
            num(cx.lr),
            num(cx.lr * 100.0)
        )
    })
}

/// The findings the numbers support, most serious first.
pub fn diagnose(history: &[EpochRecord], signals: &[EpochSignals], data: &DataSignals, cx: &Context) -> Vec<Finding> {
    let mut out = Vec::new();
    divergence(history, signals, cx, &mut out);
    exploding(signals, cx, &mut out);
    spikes(signals, cx, &mut out);
    collapse(signals, data, cx, &mut out);
    not_learning(history, signals, cx, &mut out);
    dead(signals, cx, &mut out);
    vanishing(signals, &mut out);
    overfitting(history, cx, &mut out);
    data_findings(data, &mut out);
    out
}

/// The label share of each class in the validation split, when counted.
fn valid_label_shares(data: &DataSignals) -> Option<Vec<f64>> {
    let (_, counts) = data.counts.iter().find(|(s, _)| s == "valid")?;
    let total: usize = counts.iter().sum();
    (total > 0).then(|| counts.iter().map(|&c| c as f64 / total as f64).collect())
}

fn class_name(data: &DataSignals, c: u32) -> String {
    data.classes.get(c as usize).map_or_else(|| c.to_string(), |n| format!("'{n}'"))
}

fn collapse(signals: &[EpochSignals], data: &DataSignals, cx: &Context, out: &mut Vec<Finding>) {
    if cx.classes < 3 {
        return;
    }
    let Some(last) = signals.last() else { return };
    let (Some(class), Some(share)) = (last.top_class, last.top_share) else { return };
    let label_share =
        valid_label_shares(data).and_then(|s| s.get(class as usize).copied()).unwrap_or(1.0 / cx.classes as f64);
    if share < COLLAPSE_SHARE || share < COLLAPSE_RATIO * label_share {
        return;
    }
    let first_collapsed = signals
        .iter()
        .position(|s| s.top_share.is_some_and(|x| x >= COLLAPSE_SHARE) && s.top_class == Some(class))
        .map_or(last.epoch, |i| signals[i].epoch);
    let mut evidence = format!(
        "at epoch {}, {} of the validation predictions are class {}, which is {} of the labels",
        last.epoch,
        pct(share),
        class_name(data, class),
        pct(label_share)
    );
    if first_collapsed < last.epoch {
        evidence += &format!(" (so since epoch {first_collapsed})");
    }
    let frozen: Vec<&EpochSignals> =
        signals.iter().filter(|s| s.unchanged.is_some_and(|u| u >= FROZEN_SHARE)).collect();
    if !frozen.is_empty() && frozen.len() + 1 == signals.len() {
        evidence += &format!(
            "; the predictions did not change from one epoch to the next (at least {} the same)",
            pct(frozen.iter().filter_map(|s| s.unchanged).fold(1.0, f64::min))
        );
    }
    let advice = settings_advice(cx).unwrap_or_else(|| {
        "look at the class balance of the training split, then find a learning rate with `kindling lr-find`".into()
    });
    out.push(Finding {
        kind: FindingKind::PredictionCollapse,
        epochs: (first_collapsed..=last.epoch).collect(),
        evidence: evidence + ".",
        advice,
    });
}

fn not_learning(history: &[EpochRecord], signals: &[EpochSignals], cx: &Context, out: &mut Vec<Finding>) {
    let (Some(first), Some(initial)) = (history.first(), signals.first().map(|s| s.first_step_loss)) else { return };
    if !initial.is_finite() || initial <= 0.0 {
        return;
    }
    let best = history.iter().min_by(|a, b| a.train.loss.total_cmp(&b.train.loss)).unwrap_or(first);
    let best_acc = history.iter().map(|e| e.train.accuracy).fold(0.0, f64::max);
    let chance = 1.0 / cx.classes.max(1) as f64;
    let flat = best.train.loss >= NOT_LEARNING_LOSS * initial;
    let at_chance = best_acc < NOT_LEARNING_CHANCE * chance;
    if !flat && !at_chance {
        return;
    }
    let last = history.last().unwrap_or(first);
    let change = 1.0 - best.train.loss / initial;
    let mut evidence = format!(
        "the training loss went from {} at the first step to {} at best (epoch {}), {} {}; the best training \
         accuracy is {} (chance is {})",
        num(initial),
        num(best.train.loss),
        best.epoch,
        pct(change.abs()),
        if change >= 0.0 { "lower" } else { "higher" },
        pct(best_acc),
        pct(chance)
    );
    let dead = signals.last().and_then(|s| s.dead.iter().max_by(|a, b| a.share().total_cmp(&b.share())));
    let advice = if let Some(d) = dead.filter(|d| d.share() >= 0.9) {
        evidence += &format!("; {} of the units after layer {} are dead", pct(d.share()), d.layer);
        "the network is dead: lower the learning rate or use Kaiming initialisation (`model.init: {conv: \
         kaiming_normal, linear: kaiming_normal}`)"
            .into()
    } else {
        settings_advice(cx).unwrap_or_else(|| {
            format!(
                "find a learning rate with `kindling lr-find` (lr is {}), and check that the labels match the inputs",
                cx.lr
            )
        })
    };
    out.push(Finding {
        kind: FindingKind::NotLearning,
        epochs: (first.epoch..=last.epoch).collect(),
        evidence: evidence + ".",
        advice,
    });
}

fn lower_lr(cx: &Context) -> String {
    format!(
        "lower the learning rate (lr {}: try {}) or clip gradients (`clip_grad_norm: 1.0`)",
        cx.lr,
        num(cx.lr / 10.0)
    )
}

fn divergence(history: &[EpochRecord], signals: &[EpochSignals], cx: &Context, out: &mut Vec<Finding>) {
    let mut epochs = Vec::new();
    let mut evidence = Vec::new();
    let initial = signals.first().map_or(f64::NAN, |s| s.first_step_loss);
    if let Some(worst) = signals.iter().max_by(|a, b| a.max_step_loss.total_cmp(&b.max_step_loss))
        && initial > 0.0
        && worst.max_step_loss >= DIVERGENCE_STEP * initial
    {
        epochs.push(worst.epoch);
        evidence.push(format!(
            "a training step's loss reached {} in epoch {}, {:.0}x the first step's {}",
            num(worst.max_step_loss),
            worst.epoch,
            worst.max_step_loss / initial,
            num(initial)
        ));
    }
    if let (Some(best), Some(last)) =
        (history.iter().min_by(|a, b| a.train.loss.total_cmp(&b.train.loss)), history.last())
        && last.epoch > best.epoch
        && last.train.loss >= DIVERGENCE_RISE * best.train.loss
    {
        epochs.extend(best.epoch..=last.epoch);
        evidence.push(format!(
            "the training loss rose from {} at epoch {} to {} at epoch {} ({:.1}x)",
            num(best.train.loss),
            best.epoch,
            num(last.train.loss),
            last.epoch,
            last.train.loss / best.train.loss
        ));
    }
    if evidence.is_empty() {
        return;
    }
    epochs.sort_unstable();
    epochs.dedup();
    out.push(Finding {
        kind: FindingKind::Divergence,
        epochs,
        evidence: evidence.join("; ") + ".",
        advice: lower_lr(cx),
    });
}

fn spikes(signals: &[EpochSignals], cx: &Context, out: &mut Vec<Finding>) {
    let total: usize = signals.iter().map(|s| s.spikes).sum();
    if total < SPIKE_STEPS {
        return;
    }
    let epochs: Vec<usize> = signals.iter().filter(|s| s.spikes > 0).map(|s| s.epoch).collect();
    let worst = signals.iter().max_by(|a, b| a.max_step_loss.total_cmp(&b.max_step_loss));
    let initial = signals.first().map_or(f64::NAN, |s| s.first_step_loss);
    out.push(Finding {
        kind: FindingKind::LossSpikes,
        evidence: format!(
            "{total} steps in epochs {} had a loss above {SPIKE_FACTOR}x the running mean and above the first step's \
             {}; the highest was {} (epoch {}).",
            list(&epochs),
            num(initial),
            num(worst.map_or(f64::NAN, |s| s.max_step_loss)),
            worst.map_or(0, |s| s.epoch)
        ),
        epochs,
        advice: lower_lr(cx),
    });
}

fn exploding(signals: &[EpochSignals], cx: &Context, out: &mut Vec<Finding>) {
    let Some(first) = signals.first().filter(|s| s.grad_samples > 0 && s.grad_norm_median > 0.0) else { return };
    let Some(worst) = signals.iter().max_by(|a, b| a.grad_norm_max.total_cmp(&b.grad_norm_max)) else { return };
    let factor = worst.grad_norm_max / first.grad_norm_median;
    if factor.is_nan() || factor < EXPLODING_FACTOR {
        return;
    }
    out.push(Finding {
        kind: FindingKind::ExplodingGradients,
        epochs: vec![first.epoch, worst.epoch],
        evidence: format!(
            "the global gradient norm reached {} at epoch {}, {:.0}x epoch {}'s median of {}.",
            num(worst.grad_norm_max),
            worst.epoch,
            factor,
            first.epoch,
            num(first.grad_norm_median)
        ),
        advice: format!("clip gradients (`clip_grad_norm: 1.0`) or lower the learning rate (lr {})", cx.lr),
    });
}

fn vanishing(signals: &[EpochSignals], out: &mut Vec<Finding>) {
    let Some(last) = signals.last() else { return };
    let (Some(early), Some(late)) = (last.layers.first(), last.layers.last()) else { return };
    // A layer with no gradient at all is dead rather than starved: the dead-unit finding says so.
    if last.layers.len() < 2
        || early.ratio() <= 0.0
        || late.ratio().is_nan()
        || early.ratio() >= VANISHING_FACTOR * late.ratio()
    {
        return;
    }
    out.push(Finding {
        kind: FindingKind::VanishingGradients,
        epochs: vec![last.epoch],
        evidence: format!(
            "at epoch {}, the gradient-to-weight norm ratio of the first weighted layer ({} {}) is {}, {:.0}x smaller \
             than the last one's ({} {}: {}).",
            last.epoch,
            early.kind,
            early.layer,
            num(early.ratio()),
            late.ratio() / early.ratio(),
            late.kind,
            late.layer,
            num(late.ratio())
        ),
        advice: "add batch norm after the early layers, use ReLU rather than sigmoid or tanh, or Kaiming \
                 initialisation (`model.init: {conv: kaiming_normal}`)"
            .into(),
    });
}

fn dead(signals: &[EpochSignals], cx: &Context, out: &mut Vec<Finding>) {
    let Some(last) = signals.last() else { return };
    let dead: Vec<&DeadUnits> = last.dead.iter().filter(|d| d.share() >= DEAD_SHARE).collect();
    if dead.is_empty() {
        return;
    }
    let layers: Vec<String> =
        dead.iter().map(|d| format!("layer {}: {} of {} ({})", d.layer, d.dead, d.units, pct(d.share()))).collect();
    out.push(Finding {
        kind: FindingKind::DeadUnits,
        epochs: vec![last.epoch],
        evidence: format!(
            "after epoch {}, ReLU units output zero for every one of {} probe samples: {}.",
            last.epoch,
            last.probe_samples,
            layers.join("; ")
        ),
        advice: format!(
            "lower the learning rate (lr {}), use Kaiming initialisation, or `leaky_relu` in place of `relu`",
            cx.lr
        ),
    });
}

fn overfitting(history: &[EpochRecord], cx: &Context, out: &mut Vec<Finding>) {
    let valid: Vec<(&EpochRecord, f64)> = history.iter().filter_map(|e| Some((e, e.valid?.loss))).collect();
    let Some(&(best, min)) = valid.iter().min_by(|a, b| a.1.total_cmp(&b.1)) else { return };
    let Some(&(last, end)) = valid.last() else { return };
    if last.epoch < best.epoch + OVERFIT_EPOCHS
        || end.is_nan()
        || end < OVERFIT_RISE * min
        || last.train.loss >= best.train.loss
    {
        return;
    }
    let (gap_best, gap_end) = (min - best.train.loss, end - last.train.loss);
    if gap_end < 2.0 * gap_best.max(0.01) {
        return;
    }
    let best_acc = best.valid.map_or(f64::NAN, |v| v.accuracy);
    let advice = if cx.early_stopping {
        format!(
            "early stopping watched another metric or too long a patience: epoch {} had the lowest validation loss; \
             also add regularisation (dropout, weight decay, augmentation)",
            best.epoch
        )
    } else {
        format!(
            "early stopping would have kept epoch {} (validation accuracy {}): add `early_stopping: {{monitor: \
             valid_loss, patience: 3}}`, or regularise more (dropout, weight decay, augmentation)",
            best.epoch,
            pct(best_acc)
        )
    };
    out.push(Finding {
        kind: FindingKind::Overfitting,
        epochs: (best.epoch..=last.epoch).collect(),
        evidence: format!(
            "the validation loss fell to {} at epoch {} and rose to {} by epoch {} (+{}) while the training loss fell \
             from {} to {}; the gap grew from {} to {}.",
            num(min),
            best.epoch,
            num(end),
            last.epoch,
            pct(end / min - 1.0),
            num(best.train.loss),
            num(last.train.loss),
            num(gap_best),
            num(gap_end)
        ),
        advice,
    });
}

fn data_findings(data: &DataSignals, out: &mut Vec<Finding>) {
    let name = |c: usize| data.classes.get(c).cloned().unwrap_or_else(|| c.to_string());
    if let Some((_, train)) = data.counts.iter().find(|(s, _)| s == "train") {
        let nonzero = train.iter().copied().filter(|&c| c > 0);
        let (min, max) = (nonzero.clone().min().unwrap_or(0), train.iter().copied().max().unwrap_or(0));
        if min > 0 && max as f64 >= IMBALANCE_RATIO * min as f64 {
            let total: usize = train.iter().sum();
            let k = train.len() as f64;
            // PyTorch users' usual balancing: n_samples / (n_classes * count).
            let weights: Vec<String> = train
                .iter()
                .map(|&c| if c == 0 { "1.0".into() } else { format!("{:.3}", total as f64 / (k * c as f64)) })
                .collect();
            let (lo, hi) = (train.iter().position(|&c| c == min), train.iter().position(|&c| c == max));
            out.push(Finding {
                kind: FindingKind::ClassImbalance,
                epochs: Vec::new(),
                evidence: format!(
                    "the training split has {max} samples of '{}' but {min} of '{}' ({:.1}x).",
                    name(hi.unwrap_or(0)),
                    name(lo.unwrap_or(0)),
                    max as f64 / min as f64
                ),
                advice: format!("weight the loss by class: `train.class_weights: [{}]`", weights.join(", ")),
            });
        }
        for (split, counts) in data.counts.iter().filter(|(s, _)| s != "train") {
            if counts.iter().sum::<usize>() == 0 {
                continue;
            }
            let missing: Vec<String> = counts
                .iter()
                .enumerate()
                .filter(|&(c, &n)| n == 0 && train.get(c).is_some_and(|&t| t > 0))
                .map(|(c, _)| format!("'{}'", name(c)))
                .collect();
            if !missing.is_empty() {
                out.push(Finding {
                    kind: FindingKind::MissingClasses,
                    epochs: Vec::new(),
                    evidence: format!(
                        "the {split} split has no sample of {} of {} classes: {}.",
                        missing.len(),
                        counts.len(),
                        missing.join(", ")
                    ),
                    advice: format!(
                        "give the {split} split samples of every class (a larger valid_fraction, or a {split} \
                         manifest or folder with every class)"
                    ),
                });
            }
        }
    }
    for (split, copies, checked) in &data.duplicates {
        if *copies > 0 && *copies as f64 >= DUPLICATE_SHARE * *checked as f64 {
            out.push(Finding {
                kind: FindingKind::DuplicateSamples,
                epochs: Vec::new(),
                evidence: format!(
                    "{copies} of the {checked} {split} samples ({}) are exact copies of training samples, so the \
                     {split} figures overstate how the model does on new data.",
                    pct(*copies as f64 / *checked as f64)
                ),
                advice: format!("remove the copies from one of the two splits before trusting the {split} figures"),
            });
        }
    }
}

/// `1, 2, 5` (the first 8, then how many more).
fn list(epochs: &[usize]) -> String {
    let shown: Vec<String> = epochs.iter().take(8).map(ToString::to_string).collect();
    let more = epochs.len().saturating_sub(8);
    if more > 0 { format!("{} and {more} more", shown.join(", ")) } else { shown.join(", ") }
}

/// Counts the spikes of a sequence of step losses as [`EpochSignals::spikes`] does, carrying
/// the running mean `ema` (None before the first step) from one call to the next.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SpikeCounter {
    /// The running mean of the steps so far.
    pub ema: Option<f64>,
    /// The first step's loss of the run.
    pub initial: Option<f64>,
}

impl SpikeCounter {
    /// Takes one step's loss and says whether it is a spike.
    pub fn step(&mut self, loss: f64) -> bool {
        let initial = *self.initial.get_or_insert(loss);
        let spike = self.ema.is_some_and(|ema| loss > SPIKE_FACTOR * ema && loss > initial);
        self.ema = Some(self.ema.map_or(loss, |ema| (1.0 - SPIKE_EMA) * ema + SPIKE_EMA * loss));
        spike
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run_files::SplitMetrics;

    fn cx() -> Context {
        Context { classes: 10, optimizer: "adam".into(), lr: 1e-3, weight_decay: 0.0, early_stopping: false }
    }

    fn split(loss: f64, accuracy: f64) -> SplitMetrics {
        SplitMetrics { loss, accuracy, samples: 100 }
    }

    /// Epochs with these (train loss, train accuracy, valid loss).
    fn history(rows: &[(f64, f64, f64)]) -> Vec<EpochRecord> {
        rows.iter()
            .enumerate()
            .map(|(i, &(tl, ta, vl))| EpochRecord {
                epoch: i + 1,
                train: split(tl, ta),
                valid: Some(split(vl, ta)),
                lr: 1e-3,
                train_seconds: 1.0,
                valid_seconds: 0.1,
            })
            .collect()
    }

    fn signals(n: usize, initial: f64) -> Vec<EpochSignals> {
        (1..=n)
            .map(|epoch| EpochSignals {
                epoch,
                first_step_loss: initial,
                max_step_loss: initial,
                grad_norm_median: 1.0,
                grad_norm_max: 2.0,
                grad_samples: 8,
                top_class: Some(0),
                top_share: Some(0.12),
                unchanged: (epoch > 1).then_some(0.9),
                probe_samples: 256,
                ..EpochSignals::default()
            })
            .collect()
    }

    fn balanced() -> DataSignals {
        DataSignals {
            classes: (0..10).map(|c| format!("c{c}")).collect(),
            counts: vec![("train".into(), vec![100; 10]), ("valid".into(), vec![20; 10])],
            duplicates: vec![("valid".into(), 0, 200)],
        }
    }

    fn kinds(f: &[Finding]) -> Vec<FindingKind> {
        f.iter().map(|f| f.kind).collect()
    }

    /// A run that learns: loss falls, valid follows.
    fn healthy() -> (Vec<EpochRecord>, Vec<EpochSignals>) {
        let h = history(&[(0.9, 0.7, 0.7), (0.6, 0.8, 0.6), (0.5, 0.83, 0.55), (0.45, 0.85, 0.53)]);
        (h, signals(4, 2.3))
    }

    #[test]
    fn a_healthy_run_has_no_findings() {
        let (h, s) = healthy();
        assert_eq!(diagnose(&h, &s, &balanced(), &cx()), []);
    }

    #[test]
    fn most_predictions_in_one_class_is_a_collapse_with_the_settings_advice() {
        let h = history(&[(2.30, 0.1, 2.30), (2.30, 0.1, 2.30)]);
        let mut s = signals(2, 2.31);
        for e in &mut s {
            e.top_class = Some(3);
            e.top_share = Some(0.8);
        }
        s[1].unchanged = Some(1.0);
        let adagrad = Context { optimizer: "adagrad".into(), lr: 1e-5, weight_decay: 0.9, ..cx() };
        let f = diagnose(&h, &s, &balanced(), &adagrad);
        assert_eq!(kinds(&f), [FindingKind::PredictionCollapse, FindingKind::NotLearning]);
        assert!(f[0].evidence.contains("80.0% of the validation predictions are class 'c3'"), "{}", f[0].evidence);
        assert!(f[0].evidence.contains("10.0% of the labels"));
        assert!(f[0].evidence.contains("did not change"), "{}", f[0].evidence);
        assert_eq!(f[0].epochs, [1, 2]);
        assert!(f[0].advice.starts_with("weight decay 0.9 with adagrad"), "{}", f[0].advice);
        assert!(f[0].advice.ends_with("try 1e-4"));
        // Just below the threshold: no collapse.
        for e in &mut s {
            e.top_share = Some(COLLAPSE_SHARE - 0.01);
        }
        assert!(!kinds(&diagnose(&h, &s, &balanced(), &adagrad)).contains(&FindingKind::PredictionCollapse));
        // Half the predictions in a class that is 40% of the labels is not a collapse.
        let mut skewed = balanced();
        skewed.counts[1].1 = vec![80, 13, 13, 14, 13, 13, 13, 14, 13, 14];
        for e in &mut s {
            e.top_class = Some(0);
            e.top_share = Some(0.6);
        }
        assert!(!kinds(&diagnose(&h, &s, &skewed, &cx())).contains(&FindingKind::PredictionCollapse));
    }

    #[test]
    fn a_loss_that_stays_where_it_started_is_not_learning_and_a_low_lr_is_named() {
        let h = history(&[(2.29, 0.11, 2.29), (2.28, 0.12, 2.28), (2.27, 0.12, 2.27)]);
        let low = Context { lr: 1e-7, optimizer: "sgd".into(), ..cx() };
        let f = diagnose(&h, &signals(3, 2.31), &balanced(), &low);
        assert_eq!(kinds(&f), [FindingKind::NotLearning]);
        assert!(
            f[0].evidence.contains("from 2.3100 at the first step to 2.2700 at best (epoch 3)"),
            "{}",
            f[0].evidence
        );
        assert!(f[0].advice.starts_with("lr 1.00e-7 is too low"), "{}", f[0].advice);
        assert!(f[0].advice.contains("1.00e-5"), "{}", f[0].advice);
        // A 12% drop with accuracy well above chance is learning.
        let h = history(&[(2.03, 0.3, 2.0), (2.02, 0.31, 2.0)]);
        assert!(diagnose(&h, &signals(2, 2.31), &balanced(), &low).is_empty());
    }

    #[test]
    fn a_rising_training_loss_is_divergence_and_exploding_norms_are_found() {
        let h = history(&[(1.0, 0.6, 1.0), (0.8, 0.7, 0.9), (1.3, 0.5, 1.4), (2.0, 0.3, 2.2)]);
        let mut s = signals(4, 2.3);
        s[3].grad_norm_max = 150.0;
        let f = diagnose(&h, &s, &balanced(), &cx());
        assert_eq!(kinds(&f), [FindingKind::Divergence, FindingKind::ExplodingGradients]);
        assert!(f[0].evidence.contains("from 0.8000 at epoch 2 to 2.0000 at epoch 4 (2.5x)"), "{}", f[0].evidence);
        assert_eq!(f[0].epochs, [2, 3, 4]);
        assert!(f[0].advice.contains("try 1.00e-4"), "{}", f[0].advice);
        assert!(f[1].evidence.contains("150x epoch 1's median"), "{}", f[1].evidence);
        // A step far above the first step's loss is divergence even when the epochs' means fall.
        let h = history(&[(9.1, 0.1, 2.3), (2.30, 0.1, 2.3)]);
        let mut s = signals(2, 2.3);
        s[0].max_step_loss = 568.0;
        let f = diagnose(&h, &s, &balanced(), &cx());
        assert_eq!(f[0].kind, FindingKind::Divergence);
        assert_eq!(f[0].epochs, [1]);
        assert!(
            f[0].evidence.contains("reached 568.0000 in epoch 1, 247x the first step's 2.3000"),
            "{}",
            f[0].evidence
        );
        s[0].max_step_loss = DIVERGENCE_STEP * 2.3 - 0.01;
        assert!(!kinds(&diagnose(&h, &s, &balanced(), &cx())).contains(&FindingKind::Divergence));
        // 1.4x is below the threshold; 99x too.
        let h = history(&[(1.0, 0.6, 1.0), (0.8, 0.7, 0.9), (1.12, 0.5, 1.1)]);
        let mut s = signals(3, 2.3);
        s[2].grad_norm_max = 99.0;
        assert!(diagnose(&h, &s, &balanced(), &cx()).is_empty());
    }

    #[test]
    fn spikes_are_counted_above_the_running_mean_and_the_initial_loss() {
        let mut counter = SpikeCounter::default();
        let mut losses = vec![2.3];
        losses.extend([0.5; 40]);
        losses.extend([1.2, 0.5, 2.5, 0.5]);
        let spikes: Vec<bool> = losses.iter().map(|&l| counter.step(l)).collect();
        // 1.2 is above 2x the running mean but below the first loss; 2.5 is above both.
        assert_eq!(spikes.iter().filter(|&&s| s).count(), 1);
        assert!(spikes[43]);
        let (h, mut s) = healthy();
        s[1].spikes = 2;
        assert!(diagnose(&h, &s, &balanced(), &cx()).is_empty());
        s[3].spikes = 1;
        s[3].max_step_loss = 9.0;
        let f = diagnose(&h, &s, &balanced(), &cx());
        assert_eq!(kinds(&f), [FindingKind::LossSpikes]);
        assert_eq!(f[0].epochs, [2, 4]);
        assert!(f[0].evidence.contains("3 steps in epochs 2, 4"), "{}", f[0].evidence);
        assert!(f[0].evidence.contains("9.0000 (epoch 4)"), "{}", f[0].evidence);
    }

    #[test]
    fn dead_units_and_vanishing_gradients_name_their_layers() {
        let (h, mut s) = healthy();
        let last = s.last_mut().unwrap();
        last.dead = vec![DeadUnits { layer: 1, units: 16, dead: 2 }, DeadUnits { layer: 4, units: 32, dead: 26 }];
        let norms = |layer, grad_norm, weight_norm| LayerNorms { layer, kind: "conv2d".into(), grad_norm, weight_norm };
        last.layers = vec![norms(0, 1e-6, 1.0), norms(2, 1e-3, 1.0), norms(7, 0.01, 1.0)];
        let f = diagnose(&h, &s, &balanced(), &cx());
        assert_eq!(kinds(&f), [FindingKind::DeadUnits, FindingKind::VanishingGradients]);
        assert!(f[0].evidence.contains("layer 4: 26 of 32 (81.2%)"), "{}", f[0].evidence);
        assert!(!f[0].evidence.contains("layer 1"));
        assert!(f[1].evidence.contains("(conv2d 0) is 1.00e-6, 10000x smaller"), "{}", f[1].evidence);
        // 1e-3 of the last layer's ratio is the limit.
        let last = s.last_mut().unwrap();
        last.dead.clear();
        last.layers[0].grad_norm = 1e-5;
        assert!(diagnose(&h, &s, &balanced(), &cx()).is_empty());
    }

    #[test]
    fn a_valid_loss_that_rises_while_training_loss_falls_is_overfitting() {
        let h = history(&[(1.0, 0.6, 0.9), (0.6, 0.8, 0.7), (0.4, 0.86, 0.75), (0.25, 0.92, 0.85), (0.15, 0.95, 0.95)]);
        let f = diagnose(&h, &signals(5, 2.3), &balanced(), &cx());
        assert_eq!(kinds(&f), [FindingKind::Overfitting]);
        assert_eq!(f[0].epochs, [2, 3, 4, 5]);
        assert!(f[0].evidence.contains("fell to 0.7000 at epoch 2 and rose to 0.9500 by epoch 5"), "{}", f[0].evidence);
        assert!(f[0].advice.starts_with("early stopping would have kept epoch 2"), "{}", f[0].advice);
        // One epoch of rise is not enough.
        assert!(diagnose(&h[..3], &signals(3, 2.3), &balanced(), &cx()).is_empty());
    }

    #[test]
    fn data_problems_are_found_with_concrete_advice() {
        let (h, s) = healthy();
        let mut data = balanced();
        data.counts[0].1 = vec![300, 100, 100, 100, 100, 100, 100, 100, 100, 90];
        data.counts[1].1 = vec![20, 20, 20, 0, 20, 20, 20, 20, 20, 0];
        data.duplicates = vec![("valid".into(), 3, 160)];
        let f = diagnose(&h, &s, &data, &cx());
        assert_eq!(
            kinds(&f),
            [FindingKind::ClassImbalance, FindingKind::MissingClasses, FindingKind::DuplicateSamples]
        );
        assert!(f[0].evidence.contains("300 samples of 'c0' but 90 of 'c9' (3.3x)"), "{}", f[0].evidence);
        assert!(f[0].advice.contains("class_weights: [0.397, 1.190"), "{}", f[0].advice);
        assert!(f[1].evidence.contains("no sample of 2 of 10 classes: 'c3', 'c9'"), "{}", f[1].evidence);
        assert!(f[2].evidence.starts_with("3 of the 160 valid samples (1.9%)"), "{}", f[2].evidence);
        // One copy in 200 is below the share.
        data.duplicates = vec![("valid".into(), 1, 200)];
        assert!(!kinds(&diagnose(&h, &s, &data, &cx())).contains(&FindingKind::DuplicateSamples));
    }

    #[test]
    fn diagnostics_round_trip_through_json() {
        let d = Diagnostics {
            findings: vec![Finding {
                kind: FindingKind::NotLearning,
                epochs: vec![1],
                evidence: "e".into(),
                advice: "a".into(),
            }],
            epochs: signals(1, 2.3),
            data: balanced(),
        };
        let text = serde_json::to_string(&d).unwrap();
        assert!(text.contains("\"not_learning\""));
        assert_eq!(serde_json::from_str::<Diagnostics>(&text).unwrap(), d);
    }
}
