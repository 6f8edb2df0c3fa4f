//! Learning-rate schedules stepped once per epoch, as PyTorch's `lr_scheduler` classes are
//! when `scheduler.step()` is called after each epoch. (burn's schedulers step per iteration.)

use kindling_core::Issues;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A schedule, tagged by `name`, with PyTorch's parameter names and defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum SchedulerConfig {
    /// `StepLR(step_size, gamma=0.1)`: `lr0 * gamma^floor(epoch / step_size)`.
    Step(StepLr),
    /// `MultiStepLR(milestones, gamma=0.1)`: `lr0 * gamma^(milestones reached)`.
    MultiStep(MultiStepLr),
    /// `ExponentialLR(gamma)`: `lr0 * gamma^epoch`.
    Exponential(ExponentialLr),
    /// `CosineAnnealingLR(T_max, eta_min=0)`, in its closed form.
    CosineAnnealing(CosineAnnealingLr),
    /// `ReduceLROnPlateau(mode, factor, patience, threshold, threshold_mode, cooldown, min_lr)`,
    /// driven by a metric of each epoch.
    ReduceOnPlateau(ReduceOnPlateau),
}

/// `torch.optim.lr_scheduler.StepLR`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepLr {
    /// Epochs between decays.
    #[schemars(range(min = 1))]
    pub step_size: usize,
    /// Multiplicative decay.
    #[serde(default = "tenth")]
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub gamma: f64,
}

/// `torch.optim.lr_scheduler.MultiStepLR`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MultiStepLr {
    /// Epochs (0-based, increasing) at which the rate is multiplied by `gamma`.
    pub milestones: Vec<usize>,
    /// Multiplicative decay.
    #[serde(default = "tenth")]
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub gamma: f64,
}

/// `torch.optim.lr_scheduler.ExponentialLR`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExponentialLr {
    /// Multiplicative decay per epoch.
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub gamma: f64,
}

/// `torch.optim.lr_scheduler.CosineAnnealingLR`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CosineAnnealingLr {
    /// Epochs of a half cosine period.
    #[schemars(range(min = 1))]
    pub t_max: usize,
    /// The minimum rate.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub eta_min: f64,
}

/// Whether a smaller or a larger metric is better.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Smaller is better (a loss).
    #[default]
    Min,
    /// Larger is better (an accuracy).
    Max,
}

/// How `threshold` defines a significant improvement.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdMode {
    /// Relative to the best value so far.
    #[default]
    Rel,
    /// An absolute difference.
    Abs,
}

/// The per-epoch metric a plateau schedule watches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Monitor {
    /// Validation loss.
    #[default]
    ValidLoss,
    /// Validation accuracy (use with `mode: max`).
    ValidAccuracy,
    /// Training loss.
    TrainLoss,
}

/// `torch.optim.lr_scheduler.ReduceLROnPlateau`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ReduceOnPlateau {
    /// The metric watched.
    pub monitor: Monitor,
    /// Whether the metric should fall (`min`) or rise (`max`); by default what the monitored
    /// metric calls for (`max` for accuracy, `min` for losses).
    pub mode: Option<Mode>,
    /// Factor the rate is multiplied by on a plateau.
    #[schemars(extend("exclusiveMinimum" = 0, "exclusiveMaximum" = 1))]
    pub factor: f64,
    /// Epochs without improvement tolerated before reducing.
    pub patience: usize,
    /// Smallest change that counts as an improvement.
    #[schemars(range(min = 0))]
    pub threshold: f64,
    /// `rel` or `abs` interpretation of `threshold`.
    pub threshold_mode: ThresholdMode,
    /// Epochs to wait after a reduction before counting again.
    pub cooldown: usize,
    /// Lower bound on the rate.
    #[schemars(range(min = 0))]
    pub min_lr: f64,
    /// Reductions smaller than this are ignored.
    #[schemars(range(min = 0))]
    pub eps: f64,
}

impl Monitor {
    /// The direction in which the metric improves.
    pub fn natural_mode(self) -> Mode {
        match self {
            Monitor::ValidAccuracy => Mode::Max,
            Monitor::ValidLoss | Monitor::TrainLoss => Mode::Min,
        }
    }

    /// `mode` when given, else the metric's natural direction.
    pub fn mode_or_natural(self, mode: Option<Mode>) -> Mode {
        mode.unwrap_or_else(|| self.natural_mode())
    }
}

impl Default for ReduceOnPlateau {
    fn default() -> Self {
        Self {
            monitor: Monitor::ValidLoss,
            mode: None,
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            threshold_mode: ThresholdMode::Rel,
            cooldown: 0,
            min_lr: 0.0,
            eps: 1e-8,
        }
    }
}

/// Linear warm-up (`LinearLR(start_factor, end_factor=1, total_iters=epochs)`) chained with the
/// schedule, as `ChainedScheduler` does: the two factors multiply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Warmup {
    /// Epochs over which the factor rises to 1.
    #[schemars(range(min = 1))]
    pub epochs: usize,
    /// The factor of the first epoch.
    #[schemars(range(max = 1), extend("exclusiveMinimum" = 0))]
    pub start_factor: f64,
}

impl Default for Warmup {
    fn default() -> Self {
        Self { epochs: 5, start_factor: 1.0 / 3.0 }
    }
}

fn tenth() -> f64 {
    0.1
}

impl SchedulerConfig {
    /// Records every out-of-range value, with paths relative to the scheduler's block.
    pub fn check(&self, issues: &mut Issues) {
        match self {
            Self::Step(s) => {
                issues.require(s.step_size >= 1, "step_size", "must be at least 1");
                issues.require(s.gamma > 0.0, "gamma", "must be positive");
            }
            Self::MultiStep(m) => {
                issues.require(m.milestones.windows(2).all(|w| w[0] < w[1]), "milestones", "must be increasing");
                issues.require(m.gamma > 0.0, "gamma", "must be positive");
            }
            Self::Exponential(e) => issues.require(e.gamma > 0.0, "gamma", "must be positive"),
            Self::CosineAnnealing(c) => {
                issues.require(c.t_max >= 1, "t_max", "must be at least 1");
                issues.require(c.eta_min >= 0.0, "eta_min", "must be at least 0");
            }
            Self::ReduceOnPlateau(p) => {
                issues.require(p.factor > 0.0 && p.factor < 1.0, "factor", "must be in (0, 1)");
                issues.require(p.eps >= 0.0, "eps", "must be at least 0");
                issues.require(
                    p.threshold_mode == ThresholdMode::Abs || p.threshold < 1.0,
                    "threshold",
                    "a relative threshold must be below 1",
                );
                issues.require(p.threshold >= 0.0, "threshold", "must be at least 0");
                issues.require(p.min_lr >= 0.0, "min_lr", "must be at least 0");
            }
        }
    }
}

impl Warmup {
    /// Records every out-of-range value, with paths relative to the warm-up's block.
    pub fn check(&self, issues: &mut Issues) {
        issues.require(self.epochs >= 1, "epochs", "must be at least 1");
        issues.require(self.start_factor > 0.0 && self.start_factor <= 1.0, "start_factor", "must be in (0, 1]");
    }
}

/// The learning rate through a run: ask [`lr`](Self::lr) before an epoch, call
/// [`step`](Self::step) after it.
#[derive(Clone, Debug)]
pub struct Scheduler {
    base_lr: f64,
    schedule: Option<SchedulerConfig>,
    warmup: Option<Warmup>,
    epoch: usize,
    plateau: PlateauState,
}

#[derive(Clone, Debug)]
struct PlateauState {
    lr: f64,
    best: f64,
    bad_epochs: usize,
    cooldown_left: usize,
}

impl Scheduler {
    /// A schedule starting from `base_lr` (the optimizer's `lr`).
    pub fn new(base_lr: f64, schedule: Option<SchedulerConfig>, warmup: Option<Warmup>) -> Self {
        let best = match &schedule {
            Some(SchedulerConfig::ReduceOnPlateau(p)) if p.monitor.mode_or_natural(p.mode) == Mode::Max => {
                f64::NEG_INFINITY
            }
            _ => f64::INFINITY,
        };
        Self {
            base_lr,
            schedule,
            warmup,
            epoch: 0,
            plateau: PlateauState { lr: base_lr, best, bad_epochs: 0, cooldown_left: 0 },
        }
    }

    /// The metric a plateau schedule needs after each epoch, if any.
    pub fn monitor(&self) -> Option<Monitor> {
        match &self.schedule {
            Some(SchedulerConfig::ReduceOnPlateau(p)) => Some(p.monitor),
            _ => None,
        }
    }

    /// The rate for the current epoch.
    pub fn lr(&self) -> f64 {
        let e = self.epoch as f64;
        let lr0 = self.base_lr;
        let scheduled = match &self.schedule {
            None => lr0,
            Some(SchedulerConfig::Step(s)) => lr0 * s.gamma.powi((self.epoch / s.step_size) as i32),
            Some(SchedulerConfig::MultiStep(m)) => {
                lr0 * m.gamma.powi(m.milestones.iter().filter(|&&x| x <= self.epoch).count() as i32)
            }
            Some(SchedulerConfig::Exponential(x)) => lr0 * x.gamma.powi(self.epoch as i32),
            Some(SchedulerConfig::CosineAnnealing(c)) => {
                c.eta_min + (lr0 - c.eta_min) * (1.0 + (std::f64::consts::PI * e / c.t_max as f64).cos()) / 2.0
            }
            Some(SchedulerConfig::ReduceOnPlateau(_)) => self.plateau.lr,
        };
        let warm = match &self.warmup {
            Some(w) if self.epoch < w.epochs => w.start_factor + (1.0 - w.start_factor) * e / w.epochs as f64,
            _ => 1.0,
        };
        scheduled * warm
    }

    /// Ends an epoch. `metric` is the value of [`monitor`](Self::monitor) for that epoch; other
    /// schedules ignore it.
    pub fn step(&mut self, metric: Option<f64>) {
        self.epoch += 1;
        let (Some(SchedulerConfig::ReduceOnPlateau(p)), Some(current)) = (&self.schedule, metric) else { return };
        let s = &mut self.plateau;
        let better = match (p.monitor.mode_or_natural(p.mode), p.threshold_mode) {
            (Mode::Min, ThresholdMode::Rel) => current < s.best * (1.0 - p.threshold),
            (Mode::Min, ThresholdMode::Abs) => current < s.best - p.threshold,
            (Mode::Max, ThresholdMode::Rel) => current > s.best * (1.0 + p.threshold),
            (Mode::Max, ThresholdMode::Abs) => current > s.best + p.threshold,
        };
        if better {
            s.best = current;
            s.bad_epochs = 0;
        } else {
            s.bad_epochs += 1;
        }
        if s.cooldown_left > 0 {
            s.cooldown_left -= 1;
            s.bad_epochs = 0;
        }
        if s.bad_epochs > p.patience {
            let reduced = (s.lr * p.factor).max(p.min_lr);
            if s.lr - reduced > p.eps {
                s.lr = reduced;
            }
            s.cooldown_left = p.cooldown;
            s.bad_epochs = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rates of the first `n` epochs.
    fn rates(config: serde_json::Value, warmup: Option<Warmup>, n: usize) -> Vec<f64> {
        let config: SchedulerConfig = serde_json::from_value(config).unwrap();
        let mut s = Scheduler::new(0.1, Some(config), warmup);
        (0..n)
            .map(|_| {
                let lr = s.lr();
                s.step(None);
                lr
            })
            .collect()
    }

    fn close(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() <= 1e-12 * w.abs().max(1e-12), "got {got:?}\nwant {want:?}");
        }
    }

    #[test]
    fn closed_forms_match_pytorch() {
        close(&rates(serde_json::json!({"name": "step", "step_size": 2}), None, 5), &[0.1, 0.1, 0.01, 0.01, 0.001]);
        close(
            &rates(serde_json::json!({"name": "multi_step", "milestones": [1, 3], "gamma": 0.5}), None, 5),
            &[0.1, 0.05, 0.05, 0.025, 0.025],
        );
        close(&rates(serde_json::json!({"name": "exponential", "gamma": 0.9}), None, 3), &[0.1, 0.09, 0.081]);
        // eta_min + (lr0 - eta_min)(1 + cos(pi e / T_max)) / 2 with T_max 4, eta_min 0.02.
        let cos = rates(serde_json::json!({"name": "cosine_annealing", "t_max": 4, "eta_min": 0.02}), None, 5);
        let want: Vec<f64> =
            (0..5).map(|e| 0.02 + 0.08 * (1.0 + (std::f64::consts::PI * f64::from(e) / 4.0).cos()) / 2.0).collect();
        close(&cos, &want);
        assert!((cos[4] - 0.02).abs() < 1e-12 && (cos[2] - 0.06).abs() < 1e-12);
    }

    #[test]
    fn warmup_multiplies_the_schedule() {
        let warm = Warmup { epochs: 4, start_factor: 0.25 };
        // LinearLR factors 0.25, 0.4375, 0.625, 0.8125, 1 times StepLR(2, 0.1).
        close(
            &rates(serde_json::json!({"name": "step", "step_size": 2}), Some(warm), 5),
            &[0.025, 0.04375, 0.00625, 0.008125, 0.001],
        );
    }

    /// A scripted metric sequence against rates derived by hand from PyTorch's algorithm.
    #[test]
    fn plateau_reduces_after_patience_and_respects_cooldown_and_floor() {
        let p = ReduceOnPlateau { patience: 1, cooldown: 1, factor: 0.5, min_lr: 0.02, ..ReduceOnPlateau::default() };
        let mut s = Scheduler::new(0.1, Some(SchedulerConfig::ReduceOnPlateau(p)), None);
        let metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95];
        let mut got = Vec::new();
        for m in metrics {
            got.push(s.lr());
            s.step(Some(m));
        }
        got.push(s.lr());
        // Epochs 0-1 improve. Epochs 2-3 are two bad epochs (> patience 1): halve to 0.05 from
        // epoch 4, whose bad count the cooldown swallows. Epochs 5-6: 0.025 from epoch 7, which
        // the cooldown swallows. Epochs 8-9 would give 0.0125, floored at 0.02 from epoch 10.
        close(&got, &[0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.02]);
    }

    #[test]
    fn plateau_on_accuracy_waits_for_it_to_rise_without_being_told() {
        let p = ReduceOnPlateau { monitor: Monitor::ValidAccuracy, patience: 0, ..ReduceOnPlateau::default() };
        let mut s = Scheduler::new(1.0, Some(SchedulerConfig::ReduceOnPlateau(p)), None);
        for accuracy in [0.5, 0.6, 0.7] {
            s.step(Some(accuracy));
        }
        assert_eq!(s.lr(), 1.0, "rising accuracy is an improvement");
        s.step(Some(0.65));
        assert!((s.lr() - 0.1).abs() < 1e-12);
    }

    #[test]
    fn plateau_in_max_mode_with_an_absolute_threshold() {
        let p = ReduceOnPlateau {
            mode: Some(Mode::Max),
            threshold_mode: ThresholdMode::Abs,
            threshold: 0.01,
            patience: 0,
            ..ReduceOnPlateau::default()
        };
        let mut s = Scheduler::new(1.0, Some(SchedulerConfig::ReduceOnPlateau(p)), None);
        let mut got = Vec::new();
        for m in [0.5, 0.505, 0.6] {
            got.push(s.lr());
            s.step(Some(m));
        }
        got.push(s.lr());
        // 0.505 is not 0.01 above 0.5: a bad epoch with patience 0 reduces at once.
        close(&got, &[1.0, 1.0, 0.1, 0.1]);
    }
}
