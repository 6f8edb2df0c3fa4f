//! Early termination: whether a running trial should stop, judged on per-epoch metric curves.

use crate::spec::{Mode, Prune};

/// A trial's per-epoch values of the sweep's metric (index 0 is epoch 1), and whether it has
/// finished training.
#[derive(Clone, Debug, Default)]
pub struct Curve {
    /// Values by epoch.
    pub values: Vec<f64>,
    /// Trained to the end (not pruned, not running).
    pub finished: bool,
}

/// Whether the trial whose curve is `own` (just extended to `own.len()` epochs) should stop,
/// given every other trial's curve; `Some(reason)` when it should.
pub fn judge(prune: &Prune, mode: Mode, own: &[f64], others: &[Curve]) -> Option<String> {
    let epoch = own.len();
    let last = *own.last()?;
    match *prune {
        Prune::Median { warmup_epochs, min_trials } => {
            if epoch < warmup_epochs.max(1) {
                return None;
            }
            let mut at: Vec<f64> =
                others.iter().filter(|c| c.finished).filter_map(|c| c.values.get(epoch - 1).copied()).collect();
            if at.len() < min_trials {
                return None;
            }
            let median = median(&mut at);
            let best = own.iter().copied().reduce(|a, b| if mode.better(b, a) { b } else { a })?;
            mode.better(median, best).then(|| {
                format!(
                    "median rule: best {best:.4} by epoch {epoch} is worse than the median {median:.4} of {} trials",
                    at.len()
                )
            })
        }
        Prune::Asha { min_epochs, reduction_factor } => {
            // Is `epoch` a rung? min_epochs * rf^k.
            let mut rung = min_epochs;
            while rung < epoch {
                rung = rung.saturating_mul(reduction_factor);
            }
            if rung != epoch {
                return None;
            }
            let mut at: Vec<f64> = others.iter().filter_map(|c| c.values.get(epoch - 1).copied()).collect();
            at.push(last);
            let keep = (at.len() / reduction_factor).max(1);
            mode.sort(&mut at);
            let threshold = at[keep - 1];
            // Ties with the threshold continue.
            mode.better(threshold, last).then(|| {
                format!(
                    "successive halving: {last:.4} at the epoch-{epoch} rung is not in the best {keep} of {}",
                    at.len()
                )
            })
        }
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(values: &[f64]) -> Curve {
        Curve { values: values.to_vec(), finished: true }
    }

    #[test]
    fn median_rule_waits_for_warmup_and_enough_trials_then_stops_the_worse_half() {
        let prune = Prune::Median { warmup_epochs: 2, min_trials: 3 };
        let others = [done(&[0.5, 0.6, 0.7]), done(&[0.4, 0.5, 0.6]), done(&[0.6, 0.7, 0.8])];
        // Epoch 1 is within the warm-up.
        assert_eq!(judge(&prune, Mode::Max, &[0.1], &others), None);
        // Epoch 2: median of 0.6, 0.5, 0.7 is 0.6; the best so far 0.55 is worse.
        assert!(judge(&prune, Mode::Max, &[0.1, 0.55], &others).unwrap().contains("median 0.6000 of 3 trials"));
        // The best so far counts, not the last value.
        assert_eq!(judge(&prune, Mode::Max, &[0.65, 0.3], &others), None);
        // Two finished trials are not enough to judge.
        assert_eq!(judge(&prune, Mode::Max, &[0.1, 0.1], &others[..2]), None);
        // Running trials do not count for the median.
        let running = [others[0].clone(), others[1].clone(), Curve { values: vec![0.9, 0.9], finished: false }];
        assert_eq!(judge(&prune, Mode::Max, &[0.1, 0.1], &running), None);
        // For a loss, smaller is better.
        let losses = [done(&[1.0, 0.8]), done(&[1.0, 0.6]), done(&[1.0, 0.7])];
        assert!(judge(&prune, Mode::Min, &[1.0, 0.75], &losses).is_some());
        assert_eq!(judge(&prune, Mode::Min, &[1.0, 0.65], &losses), None);
    }

    #[test]
    fn asha_keeps_the_best_third_at_each_rung_and_only_judges_at_rungs() {
        let prune = Prune::Asha { min_epochs: 1, reduction_factor: 3 };
        let mk = |v: &[f64]| Curve { values: v.to_vec(), finished: false };
        // The first trial at a rung always continues.
        assert_eq!(judge(&prune, Mode::Max, &[0.1], &[]), None);
        // Five others at rung 1: with us, 6 values, keep the best 2 (0.9, 0.8).
        let others: Vec<Curve> = [0.9, 0.8, 0.5, 0.4, 0.3].iter().map(|&v| mk(&[v, v, v])).collect();
        assert!(judge(&prune, Mode::Max, &[0.6], &others).is_some());
        assert_eq!(judge(&prune, Mode::Max, &[0.85], &others), None);
        // Epoch 2 is not a rung (1, 3, 9, ...): no judgement however bad.
        assert_eq!(judge(&prune, Mode::Max, &[0.85, 0.0], &others), None);
        // Epoch 3 is.
        assert!(judge(&prune, Mode::Max, &[0.85, 0.85, 0.1], &others).is_some());
        // Ties with the threshold continue.
        assert_eq!(judge(&prune, Mode::Max, &[0.8], &others), None);
    }
}
