//! `color_jitter`: random brightness, contrast, saturation and hue, applied in a random order,
//! with torchvision's float-tensor formulas.
//!
//! Each adjustment blends the image with a reference and clamps to [0, 1]: black for
//! brightness (`x * f`), the mean grey level of the whole image for contrast, each pixel's
//! grey level for saturation. Grey is torchvision's `0.2989 R + 0.587 G + 0.114 B` (not the
//! rounder 0.299 of ITU-R 601), and a one-channel image is its own grey. Like torchvision,
//! saturation and hue leave a one-channel image as it is; contrast, saturation and hue take
//! only one- or three-channel images.

mod hsv;

use kindling_core::Issues;
use rand::Rng;
use rand::seq::SliceRandom;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Image;
use crate::transform::Op;
use crate::transform::parse::Settings;
use crate::values::{Span, uniform};

/// torchvision's `ColorJitter(brightness=0, contrast=0, saturation=0, hue=0)`.
///
/// Brightness, contrast and saturation take one number `b` for a factor in
/// `[max(0, 1 - b), 1 + b]`, or `[min, max]`; hue takes `h` in [0, 0.5] for a shift of the
/// hue circle in `[-h, h]`, or `[min, max]` within [-0.5, 0.5]. A setting whose range is the
/// neutral value alone (0 for the one-number form) is off.
///
/// ```yaml
/// - color_jitter: {brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1}
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ColorJitter {
    /// Brightness factor range.
    pub brightness: Span,
    /// Contrast factor range.
    pub contrast: Span,
    /// Saturation factor range.
    pub saturation: Span,
    /// Hue shift range, in turns of the colour circle.
    pub hue: Span,
}

impl Default for ColorJitter {
    fn default() -> Self {
        let off = Span::Spread(0.0);
        Self { brightness: off, contrast: off, saturation: off, hue: off }
    }
}

impl ColorJitter {
    fn factors(&self) -> [Option<[f64; 2]>; 4] {
        [
            self.brightness.active(1.0, 0.0),
            self.contrast.active(1.0, 0.0),
            self.saturation.active(1.0, 0.0),
            self.hue.active(0.0, f64::NEG_INFINITY),
        ]
    }

    /// Draws an order (a permutation of all four, as torchvision's `randperm(4)`), then a
    /// value for each enabled adjustment in the fixed order brightness, contrast, saturation,
    /// hue, then applies them in the drawn order.
    pub(crate) fn apply<R: Rng + ?Sized>(&self, mut image: Image, rng: &mut R) -> Image {
        let mut order = [0, 1, 2, 3];
        order.shuffle(rng);
        let values = self.factors().map(|range| range.map(|r| uniform(rng, r) as f32));
        for k in order {
            match (k, values[k]) {
                (0, Some(f)) => brightness(&mut image, f),
                (1, Some(f)) => contrast(&mut image, f),
                (2, Some(f)) => saturation(&mut image, f),
                (3, Some(f)) => hsv::shift_hue(&mut image, f),
                _ => {}
            }
        }
        image
    }
}

/// `clamp(f * x, 0, 1)`.
pub(crate) fn brightness(image: &mut Image, factor: f32) {
    for v in &mut image.data {
        *v = (factor * *v).clamp(0.0, 1.0);
    }
}

/// Blends towards the mean grey level of the whole image.
pub(crate) fn contrast(image: &mut Image, factor: f32) {
    let plane = image.height * image.width;
    // A one-channel image is its own grey; other counts never get here (`shape` refuses
    // them), but averaging every value keeps this total.
    let mean = if image.channels == 3 {
        (0..plane).map(|p| f64::from(grey(&image.data, plane, p))).sum::<f64>() / plane.max(1) as f64
    } else {
        image.data.iter().map(|&v| f64::from(v)).sum::<f64>() / image.data.len().max(1) as f64
    } as f32;
    for v in &mut image.data {
        *v = (factor * *v + (1.0 - factor) * mean).clamp(0.0, 1.0);
    }
}

/// Blends each pixel of a three-channel image towards its own grey level.
pub(crate) fn saturation(image: &mut Image, factor: f32) {
    if image.channels != 3 {
        return;
    }
    let plane = image.height * image.width;
    for p in 0..plane {
        let g = (1.0 - factor) * grey(&image.data, plane, p);
        for c in 0..3 {
            let v = &mut image.data[c * plane + p];
            *v = (factor * *v + g).clamp(0.0, 1.0);
        }
    }
}

/// The grey level of pixel `p` of a three-channel image with planes of `plane` values.
fn grey(data: &[f32], plane: usize, p: usize) -> f32 {
    0.2989 * data[p] + 0.587 * data[plane + p] + 0.114 * data[2 * plane + p]
}

impl Op for ColorJitter {
    fn check(&self, issues: &mut Issues) {
        for (name, span) in
            [("brightness", self.brightness), ("contrast", self.contrast), ("saturation", self.saturation)]
        {
            let ok = match span {
                Span::Spread(b) => b.is_finite() && b >= 0.0,
                Span::Range([lo, hi]) => lo.is_finite() && hi.is_finite() && 0.0 <= lo && lo <= hi,
            };
            issues.require(ok, name, "must be a non-negative number b, or [min, max] with 0 <= min <= max");
        }
        let ok = match self.hue {
            Span::Spread(h) => (0.0..=0.5).contains(&h),
            Span::Range([lo, hi]) => -0.5 <= lo && lo <= hi && hi <= 0.5,
        };
        issues.require(ok, "hue", "must be a number h in [0, 0.5], or [min, max] with -0.5 <= min <= max <= 0.5");
    }

    fn shape(&self, [c, h, w]: [usize; 3]) -> Result<[usize; 3], String> {
        let [_, contrast, saturation, hue] = self.factors().map(|f| f.is_some());
        if (contrast || saturation || hue) && c != 1 && c != 3 {
            return Err(format!("contrast, saturation and hue need 1 or 3 channels, not {c}"));
        }
        Ok([c, h, w])
    }
}

impl Settings for ColorJitter {
    const FORMS: &'static str = "a map with any of `brightness`, `contrast`, `saturation`, `hue`";

    fn bare() -> Option<Self> {
        Some(Self::default())
    }
}

#[cfg(test)]
mod tests;
