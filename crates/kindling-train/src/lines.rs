//! What the stage prints: a line per epoch, and the run's summary lines (the terminal's and
//! report.html's).

use kindling_core::Summary;
use kindling_metrics::run_files::RunMetrics;

use crate::history::EpochRecord;

/// The summary lines of a finished run.
pub(crate) fn summarize(m: &RunMetrics, summary: &mut Summary) {
    summary.push("device", &m.device);
    let (secs, rate) = (m.train_seconds, m.train_samples_per_second);
    summary.push("training", format!("{} epochs in {secs:.1} s ({rate:.0} samples/s)", m.epochs));
    if let Some(e) = &m.early_stopping {
        let stopped =
            e.stopped_epoch.map_or_else(|| "ran all epochs".to_owned(), |n| format!("stopped after epoch {n}"));
        let kept = if e.restored_best { "kept" } else { "best was" };
        summary.push("early stop", format!("{stopped}; {kept} epoch {}", e.best_epoch));
    }
    if let Some(v) = m.kept_epoch.as_ref().and_then(|l| l.valid) {
        summary.push("valid", format!("accuracy {:.2}%, loss {:.4}", 100.0 * v.accuracy, v.loss));
    }
    if let Some(t) = m.test {
        let text = format!("accuracy {:.2}%, loss {:.4} ({} samples)", 100.0 * t.accuracy, t.loss, t.samples);
        summary.push("test", text);
    }
    if let Some((split, d)) = m.direction.as_ref().and_then(|d| d.0.first()) {
        summary.push(
            "direction",
            format!(
                "{split}: {:.2}% exact, {:.2}% within {}, mean absolute error {:.2}",
                100.0 * d.accuracy,
                100.0 * d.within_tolerance,
                d.tolerance,
                d.mean_absolute_error
            ),
        );
    }
    if let Some(d) = &m.diagnostics {
        if d.findings.is_empty() {
            summary.push("diagnostics", "no findings");
        }
        for f in &d.findings {
            summary.push("finding", f.line());
        }
    }
}

/// The epoch early stopping chose and its label on the curves (`best epoch 7, restored`).
pub(crate) fn kept_label(m: &RunMetrics) -> Option<(usize, String)> {
    let e = m.early_stopping.as_ref().filter(|e| e.best_epoch > 0)?;
    let restored = if e.restored_best { ", restored" } else { "" };
    Some((e.best_epoch, format!("best epoch {}{restored}", e.best_epoch)))
}

/// One epoch's line on stderr.
pub(crate) fn epoch_line(r: &EpochRecord, epochs: usize) -> String {
    let valid =
        r.valid.map_or_else(String::new, |v| format!("  valid loss {:.4} acc {:5.2}%", v.loss, 100.0 * v.accuracy));
    format!(
        "epoch {:>3}/{epochs}  train loss {:.4} acc {:5.2}%{valid}  lr {}  {:.1}s",
        r.epoch,
        r.train.loss,
        100.0 * r.train.accuracy,
        short(r.lr),
        r.train_seconds + r.valid_seconds
    )
}

/// A number to 6 significant digits, without trailing zeros: a decayed learning rate of
/// 0.0001 * 0.9 prints as 9e-5, not 0.00008999999999999999, and like `%g` switches to an
/// exponent below 1e-4 (history.csv keeps every digit).
fn short(x: f64) -> String {
    let s = format!("{x:.5e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        let v: f64 = format!("{mantissa}e{exp}").parse().unwrap_or(x);
        let digits = (5 - exp).max(0) as usize;
        let fixed = format!("{v:.digits$}");
        if fixed.contains('.') { fixed.trim_end_matches('0').trim_end_matches('.').to_owned() } else { fixed }
    } else {
        format!("{mantissa}e{exp}")
    }
}

#[cfg(test)]
mod tests {
    use super::short;

    #[test]
    fn learning_rates_print_short() {
        assert_eq!(short(0.0001 * 0.9), "9e-5");
        assert_eq!(short(0.001), "0.001");
        assert_eq!(short(0.05), "0.05");
        assert_eq!(short(1.0), "1");
        assert_eq!(short(1e-6), "1e-6");
        assert_eq!(short(3e-7 * 0.5), "1.5e-7");
        assert_eq!(short(0.1 + 0.2), "0.3");
        assert_eq!(short(123456.0), "123456");
    }
}
