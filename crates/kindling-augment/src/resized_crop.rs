//! `random_resized_crop`: a window of random area and aspect ratio, resized to a fixed size,
//! the usual ImageNet-style augmentation.

use kindling_core::Issues;
use rand::{Rng, RngExt};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::Deserializer;
use serde::{Deserialize, Serialize};

use crate::Image;
use crate::crop::{Pad, PadMode, cut, trace};
use crate::resize::resample;
use crate::transform::Op;
use crate::transform::parse::Settings;
use crate::values::{Size, uniform, yes};

/// torchvision's `RandomResizedCrop(size, scale=(0.08, 1.0), ratio=(3/4, 4/3),
/// antialias=True)`, bilinear.
///
/// Up to ten tries draw an area `H * W * U(scale)` and an aspect ratio `exp(U(ln ratio))`,
/// giving `w = round(sqrt(area * ratio))`, `h = round(sqrt(area / ratio))`; the first that
/// fits is placed uniformly. When none fits, the window is the largest centred one whose
/// aspect ratio lies in `ratio`. Rounding is Python's, half to even.
///
/// ```yaml
/// - random_resized_crop: 224
/// - random_resized_crop: {size: [32, 32], scale: [0.5, 1.0], ratio: [0.75, 1.333]}
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RandomResizedCrop {
    /// The output: one number for a square, or `[height, width]`.
    pub size: Size,
    /// `[min, max]` share of the image's area a window covers.
    #[serde(default = "default_scale")]
    #[schemars(extend("items" = {"type": "number", "exclusiveMinimum": 0}))]
    pub scale: [f64; 2],
    /// `[min, max]` width over height of a window.
    #[serde(default = "default_ratio")]
    #[schemars(extend("items" = {"type": "number", "exclusiveMinimum": 0}))]
    pub ratio: [f64; 2],
    /// Whether shrinking filters with a support widened by the scale factor.
    #[serde(default = "yes")]
    pub antialias: bool,
}

fn default_scale() -> [f64; 2] {
    [0.08, 1.0]
}

fn default_ratio() -> [f64; 2] {
    [3.0 / 4.0, 4.0 / 3.0]
}

impl RandomResizedCrop {
    /// A random resized crop to `size` with torchvision's defaults.
    pub fn new(size: Size) -> Self {
        Self { size, scale: default_scale(), ratio: default_ratio(), antialias: true }
    }

    /// Draws a window and resizes it.
    pub(crate) fn apply<R: Rng + ?Sized>(&self, image: Image, rng: &mut R) -> Image {
        let [top, left, h, w] = self.window(image.height, image.width, rng);
        let rows = trace(h, top as isize, &[Pad { before: 0, len: image.height }], PadMode::Constant);
        let cols = trace(w, left as isize, &[Pad { before: 0, len: image.width }], PadMode::Constant);
        let [oh, ow] = self.size.square();
        resample(cut(&image, &rows, &cols, 0.0), oh, ow, self.antialias)
    }

    /// torchvision's `get_params`: `[top, left, height, width]` of the window.
    fn window<R: Rng + ?Sized>(&self, height: usize, width: usize, rng: &mut R) -> [usize; 4] {
        let area = (height * width) as f64;
        let log_ratio = [self.ratio[0].ln(), self.ratio[1].ln()];
        for _ in 0..10 {
            let target = area * uniform(rng, self.scale);
            let aspect = uniform(rng, log_ratio).exp();
            let w = (target * aspect).sqrt().round_ties_even();
            let h = (target / aspect).sqrt().round_ties_even();
            // The comparisons are false for NaN, which settings that `check` reports produce.
            if w > 0.0 && w <= width as f64 && h > 0.0 && h <= height as f64 {
                let (h, w) = (h as usize, w as usize);
                let top = rng.random_range(0..=height - h);
                let left = rng.random_range(0..=width - w);
                return [top, left, h, w];
            }
        }
        let in_ratio = width as f64 / height as f64;
        let (lo, hi) = (self.ratio[0].min(self.ratio[1]), self.ratio[0].max(self.ratio[1]));
        let (h, w) = if in_ratio < lo {
            ((width as f64 / lo).round_ties_even() as usize, width)
        } else if in_ratio > hi {
            (height, (height as f64 * hi).round_ties_even() as usize)
        } else {
            (height, width)
        };
        // Valid ratios keep the window inside the image already; the clamp only keeps odd
        // settings from indexing outside it.
        let (h, w) = (h.clamp(1, height), w.clamp(1, width));
        [(height - h) / 2, (width - w) / 2, h, w]
    }
}

impl Op for RandomResizedCrop {
    fn check(&self, issues: &mut Issues) {
        issues.require(!self.size.square().contains(&0), "size", "must be positive");
        for (name, [lo, hi]) in [("scale", self.scale), ("ratio", self.ratio)] {
            issues.require(
                lo.is_finite() && hi.is_finite() && 0.0 < lo && lo <= hi,
                name,
                format!("must be [min, max] with 0 < min <= max, got [{lo}, {hi}]"),
            );
        }
    }

    fn shape(&self, [c, _, _]: [usize; 3]) -> Result<[usize; 3], String> {
        let [h, w] = self.size.square();
        Ok([c, h, w])
    }
}

impl Settings for RandomResizedCrop {
    const FORMS: &'static str = "a size like 224 or [height, width], or a map with `size` and optional `scale`, \
                                 `ratio`, `antialias`";

    fn short<'de, D: Deserializer<'de>>(value: D) -> Option<Result<Self, D::Error>> {
        Some(Size::deserialize(value).map(RandomResizedCrop::new))
    }

    fn short_schema(generator: &mut SchemaGenerator) -> Option<Schema> {
        Some(generator.subschema_for::<Size>())
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn windows_fit_and_respect_scale_and_ratio() {
        let crop = RandomResizedCrop { scale: [0.25, 0.5], ratio: [0.5, 2.0], ..RandomResizedCrop::new(Size::Edge(8)) };
        let mut rng = StdRng::seed_from_u64(9);
        for _ in 0..500 {
            let [top, left, h, w] = crop.window(40, 60, &mut rng);
            assert!(top + h <= 40 && left + w <= 60);
            let share = (h * w) as f64 / 2400.0;
            // Rounding each side to whole pixels moves the area a little.
            assert!((0.22..=0.53).contains(&share), "{share}");
            let aspect = w as f64 / h as f64;
            assert!((0.45..=2.1).contains(&aspect), "{aspect}");
        }
    }

    #[test]
    fn impossible_draws_fall_back_to_the_clamped_centre() {
        // A 10x100 strip cannot hold a window of ratio <= 2 and area >= the whole image, so
        // all ten tries fail: the fallback is 10 rows by round(10 * 2) = 20 columns, centred.
        let crop = RandomResizedCrop { scale: [1.0, 1.0], ratio: [1.0, 2.0], ..RandomResizedCrop::new(Size::Edge(4)) };
        assert_eq!(crop.window(10, 100, &mut StdRng::seed_from_u64(0)), [0, 40, 10, 20]);
        assert_eq!(crop.window(100, 10, &mut StdRng::seed_from_u64(0)), [45, 0, 10, 10]);
        // A ratio range holding the image's own ratio keeps all of it.
        let square = RandomResizedCrop { scale: [2.0, 2.0], ..RandomResizedCrop::new(Size::Edge(4)) };
        assert_eq!(square.window(30, 30, &mut StdRng::seed_from_u64(0)), [0, 0, 30, 30]);
    }

    #[test]
    fn the_whole_image_resized_when_scale_and_ratio_pin_it() {
        // scale 1 and ratio 1 on a square image: the window is the image, then resized.
        let crop = RandomResizedCrop { scale: [1.0, 1.0], ratio: [1.0, 1.0], ..RandomResizedCrop::new(Size::Edge(2)) };
        let image = Image::new(1, 4, 4, (0..16).map(|v| v as f32).collect()).unwrap();
        let out = crop.apply(image.clone(), &mut StdRng::seed_from_u64(0));
        assert_eq!(out, resample(image, 2, 2, true));
        assert_eq!(crop.shape([3, 9, 9]), Ok([3, 2, 2]));
    }
}
