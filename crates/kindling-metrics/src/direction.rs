//! Metrics for classes that stand for ordered numeric values, such as the azimuths of a sound
//! direction set: besides exact accuracy, how far a wrong prediction lands from the truth.
//!
//! Each class has a value (its azimuth in degrees, say); a sample of class `t` predicted as `p`
//! is off by `|value[p] - value[t]|` (on a circle of `period`, the shorter way round). From a
//! [`ConfusionMatrix`] this gives the accuracy within a tolerance (within 18 degrees: at most one
//! class step of 18 off) and the mean absolute error, over all samples and per true class.
//!
//! ```
//! use kindling_metrics::ConfusionMatrix;
//! use kindling_metrics::direction::{class_values, direction_report};
//! let names: Vec<String> = ["00_az-18", "01_az+00", "02_az+18"].map(String::from).into();
//! let values = class_values(&names).unwrap();
//! assert_eq!(values, [-18.0, 0.0, 18.0]);
//! // Two samples of -18 (one predicted as 0), two of +18 (one predicted as -18).
//! let cm = ConfusionMatrix::from_predictions(3, &[0, 0, 2, 2], &[0, 1, 2, 0]);
//! let r = direction_report(&cm, &values, 18.0, None).unwrap();
//! assert_eq!((r.accuracy, r.within_tolerance, r.mean_absolute_error), (0.5, 0.75, 13.5));
//! ```

use serde::{Deserialize, Serialize};

use crate::ConfusionMatrix;

/// The direction metrics of one split: over all samples and per true class.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DirectionReport {
    /// The largest error that counts as within tolerance, in the values' unit.
    pub tolerance: f64,
    /// The period of circular values (360 for azimuths all round), or `None` for values on a
    /// line (the difference is then taken as it is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<f64>,
    /// Samples counted.
    pub samples: u64,
    /// Share of samples predicted as their own class.
    pub accuracy: f64,
    /// Share of samples whose predicted class's value is at most `tolerance` from the truth's.
    pub within_tolerance: f64,
    /// Mean over samples of `|predicted value - true value|`.
    pub mean_absolute_error: f64,
    /// One entry per class, in class order.
    pub classes: Vec<DirectionClass>,
}

/// The direction metrics of the samples of one true class.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DirectionClass {
    /// The class's value.
    pub value: f64,
    /// Samples of this class.
    pub support: u64,
    /// Share of them predicted as this class (its recall).
    pub accuracy: f64,
    /// Share of them predicted within the tolerance.
    pub within_tolerance: f64,
    /// Their mean absolute error.
    pub mean_absolute_error: f64,
}

/// Why a report cannot be computed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DirectionError {
    /// The values do not match the matrix's classes.
    #[error("{values} class values for a confusion matrix of {classes} classes")]
    Count {
        /// Values given.
        values: usize,
        /// Classes of the matrix.
        classes: usize,
    },
    /// A class value is NaN or infinite.
    #[error("the value of class {0} is not a finite number")]
    Value(usize),
    /// The tolerance is negative, NaN or infinite.
    #[error("the tolerance must be a finite number at least 0, got {0}")]
    Tolerance(f64),
    /// The period is not a positive finite number.
    #[error("the period must be a positive finite number, got {0}")]
    Period(f64),
}

/// How far apart two values are: `|a - b|`, or with a `period`, the shorter way round.
pub fn distance(a: f64, b: f64, period: Option<f64>) -> f64 {
    let d = (a - b).abs();
    match period {
        Some(p) => {
            let d = d % p;
            d.min(p - d)
        }
        None => d,
    }
}

/// The direction metrics of `matrix`, whose class `i` stands for `values[i]`: accuracy, the
/// share within `tolerance` (an error at most `tolerance`, allowing 1e-9 of rounding) and the
/// mean absolute error, overall and per true class. Values are on a line, or on a circle of
/// `period`. Ratios and means over no samples are 0.
pub fn direction_report(
    matrix: &ConfusionMatrix,
    values: &[f64],
    tolerance: f64,
    period: Option<f64>,
) -> Result<DirectionReport, DirectionError> {
    let n = matrix.classes();
    if values.len() != n {
        return Err(DirectionError::Count { values: values.len(), classes: n });
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(DirectionError::Value(i));
    }
    if !(tolerance.is_finite() && tolerance >= 0.0) {
        return Err(DirectionError::Tolerance(tolerance));
    }
    if let Some(p) = period
        && !(p.is_finite() && p > 0.0)
    {
        return Err(DirectionError::Period(p));
    }
    // Sums over (true, predicted) cells: samples, exact hits, hits within tolerance, errors.
    let row = |t: usize| {
        let mut sums = (0u64, 0u64, 0u64, 0.0f64);
        for p in 0..n {
            let count = matrix.count(t, p);
            let error = distance(values[p], values[t], period);
            sums.0 += count;
            if p == t {
                sums.1 += count;
            }
            if error <= tolerance + 1e-9 {
                sums.2 += count;
            }
            sums.3 += count as f64 * error;
        }
        sums
    };
    let rows: Vec<(u64, u64, u64, f64)> = (0..n).map(row).collect();
    let classes = rows
        .iter()
        .zip(values)
        .map(|(&(support, exact, within, error), &value)| DirectionClass {
            value,
            support,
            accuracy: ratio(exact as f64, support),
            within_tolerance: ratio(within as f64, support),
            mean_absolute_error: ratio(error, support),
        })
        .collect();
    let samples: u64 = rows.iter().map(|r| r.0).sum();
    Ok(DirectionReport {
        tolerance,
        period,
        samples,
        accuracy: ratio(rows.iter().map(|r| r.1).sum::<u64>() as f64, samples),
        within_tolerance: ratio(rows.iter().map(|r| r.2).sum::<u64>() as f64, samples),
        mean_absolute_error: ratio(rows.iter().map(|r| r.3).sum(), samples),
        classes,
    })
}

/// The numeric value of a class name, or `None` when it has none: the name itself as a number
/// (`-90`, `+45`, `22.5`), or the number after its last `az` (any case, optionally followed by
/// `_`, `=` or `:`), as the spatialiser's `03_az-36` and `az-30`, `az_30`, `AZ=+45`; a
/// trailing `deg` or `°` is allowed. NaN and infinities are not values.
pub fn class_value(name: &str) -> Option<f64> {
    let number = |text: &str| {
        let text = text.trim();
        let text = text.strip_suffix('°').or_else(|| text.strip_suffix("deg")).unwrap_or(text).trim_end();
        // Only digits, signs, a point and exponents: keeps out `nan`, `inf` and `infinity`.
        let plain = !text.is_empty() && text.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c));
        text.parse::<f64>().ok().filter(|v| plain && v.is_finite())
    };
    if let Some(v) = number(name) {
        return Some(v);
    }
    let at = name.to_ascii_lowercase().rfind("az")?;
    let rest = &name[at + 2..];
    number(rest.strip_prefix(['_', '=', ':']).unwrap_or(rest))
}

/// The values of every class name ([`class_value`]), or `None` unless all of them have one
/// (and there is at least one).
pub fn class_values(names: &[String]) -> Option<Vec<f64>> {
    if names.is_empty() {
        return None;
    }
    names.iter().map(|n| class_value(n)).collect()
}

/// The smallest gap between two distinct class values (18 for the seed's azimuths): the
/// natural tolerance, "within one class step". `None` with fewer than two distinct values or a
/// value that is not finite.
pub fn class_step(values: &[f64]) -> Option<f64> {
    if values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.windows(2).map(|w| w[1] - w[0]).filter(|d| *d > 0.0).min_by(f64::total_cmp)
}

fn ratio(a: f64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a / b as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    /// The seed's 11 azimuths, -90 to +90 in steps of 18.
    fn azimuths() -> Vec<f64> {
        (0..11).map(|i| f64::from(-90 + 18 * i)).collect()
    }

    #[test]
    fn names_parse_as_the_spatialiser_writes_them_and_as_plain_numbers() {
        // kindling-audio's spatial::class_name: `{i:02}_az{az:+03}`.
        let seed: Vec<String> =
            azimuths().iter().enumerate().map(|(i, az)| format!("{i:02}_az{:+03}", *az as i32)).collect();
        assert_eq!(seed[0], "00_az-90");
        assert_eq!(seed[5], "05_az+00");
        assert_eq!(class_values(&seed), Some(azimuths()));
        for (name, value) in [
            ("-90", -90.0),
            ("+45", 45.0),
            ("22.5", 22.5),
            (" 30 ", 30.0),
            ("az-30", -30.0),
            ("az_30", 30.0),
            ("AZ=+45", 45.0),
            ("left_az:60deg", 60.0),
            ("az-15°", -15.0),
            ("azimuth_az+10", 10.0),
        ] {
            assert_eq!(class_value(name), Some(value), "{name}");
        }
        for name in ["left", "centre", "", "az", "az-", "nan", "inf", "-infinity", "azNaN", "3_cats", "az 1 2", "1e999"]
        {
            assert_eq!(class_value(name), None, "{name}");
        }
        assert_eq!(class_values(&names(&["-18", "0", "left"])), None);
        assert_eq!(class_values(&[]), None);
    }

    #[test]
    fn the_step_is_the_smallest_gap_between_distinct_values() {
        assert_eq!(class_step(&azimuths()), Some(18.0));
        assert_eq!(class_step(&[30.0, -30.0, 0.0, 0.0, 90.0]), Some(30.0));
        assert_eq!(class_step(&[5.0, 5.0]), None);
        assert_eq!(class_step(&[5.0]), None);
        assert_eq!(class_step(&[0.0, f64::NAN]), None);
    }

    /// A matrix built by hand over the seed's azimuths, each figure counted out in the comment.
    #[test]
    fn a_constructed_matrix_gives_the_counted_figures() {
        let values = azimuths();
        let mut cm = ConfusionMatrix::new(11);
        // Class 0 (-90): 3 right, 1 at -72 (18 off). Class 5 (0): 2 right, 1 at +36 (36 off).
        // Class 10 (+90): 1 at -90 (180 off). Class 3 (-36): none.
        for (t, p, count) in [(0, 0, 3), (0, 1, 1), (5, 5, 2), (5, 7, 1), (10, 0, 1)] {
            for _ in 0..count {
                cm.add(t, p);
            }
        }
        let r = direction_report(&cm, &values, 18.0, None).unwrap();
        assert_eq!(r.samples, 8);
        assert_eq!(r.accuracy, 5.0 / 8.0);
        assert_eq!(r.within_tolerance, 6.0 / 8.0);
        assert_eq!(r.mean_absolute_error, (18.0 + 36.0 + 180.0) / 8.0);
        let c0 = r.classes[0];
        assert_eq!((c0.value, c0.support, c0.accuracy, c0.within_tolerance), (-90.0, 4, 0.75, 1.0));
        assert_eq!(c0.mean_absolute_error, 4.5);
        let c5 = r.classes[5];
        assert_eq!((c5.accuracy, c5.within_tolerance, c5.mean_absolute_error), (2.0 / 3.0, 2.0 / 3.0, 12.0));
        let c10 = r.classes[10];
        assert_eq!((c10.accuracy, c10.within_tolerance, c10.mean_absolute_error), (0.0, 0.0, 180.0));
        // A class without samples reports zeros, as the crate's other ratios do.
        let c3 = r.classes[3];
        assert_eq!((c3.support, c3.accuracy, c3.within_tolerance, c3.mean_absolute_error), (0, 0.0, 0.0, 0.0));
        // Per-class accuracy is the confusion report's recall.
        let recalls: Vec<f64> = cm.report().classes.iter().map(|c| c.recall).collect();
        assert_eq!(r.classes.iter().map(|c| c.accuracy).collect::<Vec<_>>(), recalls);
        // Tolerance 0 is exact accuracy; 36 takes in the 36-degree miss too.
        assert_eq!(direction_report(&cm, &values, 0.0, None).unwrap().within_tolerance, r.accuracy);
        assert_eq!(direction_report(&cm, &values, 36.0, None).unwrap().within_tolerance, 7.0 / 8.0);
    }

    #[test]
    fn circular_values_take_the_shorter_way_round() {
        // Azimuths all round in steps of 90: 270 predicted for 0 is 90 off, not 270.
        let values = [0.0, 90.0, 180.0, 270.0];
        let cm = ConfusionMatrix::from_predictions(4, &[0, 1, 2], &[3, 1, 0]);
        let line = direction_report(&cm, &values, 90.0, None).unwrap();
        assert_eq!(line.mean_absolute_error, (270.0 + 0.0 + 180.0) / 3.0);
        assert_eq!(line.within_tolerance, 1.0 / 3.0);
        let circle = direction_report(&cm, &values, 90.0, Some(360.0)).unwrap();
        assert_eq!(circle.mean_absolute_error, (90.0 + 0.0 + 180.0) / 3.0);
        assert_eq!(circle.within_tolerance, 2.0 / 3.0);
        assert_eq!(distance(-170.0, 170.0, Some(360.0)), 20.0);
        assert_eq!(distance(10.0, 730.0, Some(360.0)), 0.0);
    }

    #[test]
    fn bad_input_is_an_error_and_an_empty_matrix_is_zeros() {
        let cm = ConfusionMatrix::new(2);
        let empty = direction_report(&cm, &[0.0, 18.0], 18.0, None).unwrap();
        assert_eq!(
            (empty.samples, empty.accuracy, empty.within_tolerance, empty.mean_absolute_error),
            (0, 0.0, 0.0, 0.0)
        );
        assert_eq!(direction_report(&cm, &[0.0], 18.0, None), Err(DirectionError::Count { values: 1, classes: 2 }));
        assert_eq!(direction_report(&cm, &[0.0, f64::NAN], 18.0, None), Err(DirectionError::Value(1)));
        assert!(matches!(direction_report(&cm, &[0.0, 1.0], -1.0, None), Err(DirectionError::Tolerance(_))));
        assert!(matches!(direction_report(&cm, &[0.0, 1.0], f64::NAN, None), Err(DirectionError::Tolerance(_))));
        assert!(matches!(direction_report(&cm, &[0.0, 1.0], 1.0, Some(0.0)), Err(DirectionError::Period(_))));
        let e = direction_report(&cm, &[0.0], 18.0, None).unwrap_err();
        assert_eq!(e.to_string(), "1 class values for a confusion matrix of 2 classes");
    }

    #[test]
    fn the_report_serialises_with_its_names_and_reads_back() {
        let cm = ConfusionMatrix::from_predictions(2, &[0, 1], &[0, 0]);
        let r = direction_report(&cm, &[-18.0, 18.0], 18.0, None).unwrap();
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["within_tolerance"], 0.5);
        assert_eq!(json["mean_absolute_error"], 18.0);
        assert_eq!(json["classes"][1]["value"], 18.0);
        assert!(json.get("period").is_none(), "no period on a line");
        let back: DirectionReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
    }
}
