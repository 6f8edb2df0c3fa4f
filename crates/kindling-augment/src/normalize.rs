//! `normalize`: `(x - mean) / std` per channel, torchvision's `Normalize`.
//!
//! Unlike the augmentations, it applies to every split by default: it defines the scale of
//! the model's inputs, so normalising only the training images would feed evaluation inputs
//! the model has never seen the like of. [`crate::Pipeline::check`] reports
//! `apply: train` on it for that reason.

use kindling_core::Issues;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Image;
use crate::transform::Op;
use crate::transform::parse::Settings;

/// torchvision's `Normalize(mean, std)`: one mean and one standard deviation per channel.
///
/// ```yaml
/// - normalize: {mean: [0.1307], std: [0.3081]}
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "NormalizeTransform")]
#[serde(deny_unknown_fields)]
pub struct Normalize {
    /// Subtracted from each channel.
    #[schemars(length(min = 1))]
    pub mean: Vec<f32>,
    /// Each channel is divided by it afterwards; positive.
    #[schemars(extend("items" = {"type": "number", "exclusiveMinimum": 0}))]
    pub std: Vec<f32>,
}

impl Normalize {
    /// Normalises in place. Dividing (rather than multiplying by `1 / std`) gives
    /// torchvision's values exactly.
    pub(crate) fn apply(&self, mut image: Image) -> Image {
        let plane = image.height * image.width;
        for ((values, &m), &s) in image.data.chunks_exact_mut(plane.max(1)).zip(&self.mean).zip(&self.std) {
            for v in values {
                *v = (*v - m) / s;
            }
        }
        image
    }
}

impl Op for Normalize {
    fn check(&self, issues: &mut Issues) {
        issues.require(!self.mean.is_empty(), "mean", "needs one value per channel");
        issues.require(
            self.mean.len() == self.std.len(),
            "std",
            format!("has {} values but `mean` has {}; give one of each per channel", self.std.len(), self.mean.len()),
        );
        issues.require(self.mean.iter().all(|m| m.is_finite()), "mean", "must be finite");
        issues.require(
            self.std.iter().all(|s| s.is_finite() && *s > 0.0),
            "std",
            "must be positive (a zero std divides by zero)",
        );
    }

    fn shape(&self, input: [usize; 3]) -> Result<[usize; 3], String> {
        let c = input[0];
        if self.mean.len() != c || self.std.len() != c {
            return Err(format!(
                "`normalize` has {} means and {} stds for an image with {c} channel{}; give one of each per channel",
                self.mean.len(),
                self.std.len(),
                if c == 1 { "" } else { "s" }
            ));
        }
        Ok(input)
    }
}

impl Settings for Normalize {
    const FORMS: &'static str = "a map with `mean` and `std`, one value per channel each";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtracts_and_divides_per_channel() {
        let norm = Normalize { mean: vec![0.5, 0.1], std: vec![0.25, 2.0] };
        let image = Image::new(2, 1, 2, vec![0.0, 1.0, 0.1, 0.5]).unwrap();
        assert_eq!(norm.apply(image).data, vec![-2.0, 2.0, 0.0, 0.2]);
        assert_eq!(norm.shape([2, 5, 5]), Ok([2, 5, 5]));
        let err = norm.shape([3, 5, 5]).unwrap_err();
        assert!(err.contains("2 means and 2 stds for an image with 3 channels"), "{err}");
    }

    #[test]
    fn check_reports_every_problem() {
        let mut issues = Issues::default();
        Normalize { mean: vec![0.5, 0.5], std: vec![0.0] }.check(&mut issues);
        let paths: Vec<_> = issues.into_vec().into_iter().map(|i| i.path).collect();
        assert_eq!(paths, vec!["std", "std"]);
    }
}
