//! `resize`: bilinear resampling with half-pixel centres, as torchvision resizes float
//! tensors. Shrinking with `antialias` widens the triangle filter's support by the scale
//! factor, so every input pixel contributes (PIL's and torchvision's antialiased bilinear);
//! without it, shrinking samples two neighbours and aliases.
//!
//! The filter is separable: one pass along rows, one along columns, each with weights computed
//! once per call for its axis.

mod taps;

use kindling_core::Issues;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::Deserializer;
use serde::{Deserialize, Serialize};

use crate::Image;
use crate::transform::Op;
use crate::transform::parse::Settings;
use crate::values::{Size, yes};
use taps::Taps;

/// torchvision's `Resize(size, max_size=None, antialias=True)`, bilinear.
///
/// ```yaml
/// - resize: 34                  # the smaller edge becomes 34, the aspect ratio stays
/// - resize: [32, 48]            # exactly 32 rows, 48 columns
/// - resize: {size: 34, max_size: 40, antialias: false}
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resize {
    /// One number for the smaller edge (the longer becomes `int(size * long / short)`), or
    /// `[height, width]`.
    pub size: Size,
    /// With one-number sizes: the longer edge's limit; when it would exceed this, it becomes
    /// `max_size` and the shorter edge shrinks in proportion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<usize>,
    /// Whether shrinking filters with a support widened by the scale factor.
    #[serde(default = "yes")]
    pub antialias: bool,
}

impl Resize {
    /// A resize to `size` with torchvision's defaults.
    pub fn new(size: Size) -> Self {
        Self { size, max_size: None, antialias: true }
    }

    /// Resizes `image`, whose shape [`Op::shape`] accepted.
    pub(crate) fn apply(&self, image: Image) -> Image {
        match self.output_size(image.height, image.width) {
            Ok([h, w]) => resample(image, h, w, self.antialias),
            Err(_) => image,
        }
    }

    /// torchvision's `_compute_resized_output_size`, as `[height, width]`.
    fn output_size(&self, height: usize, width: usize) -> Result<[usize; 2], String> {
        let s = match self.size {
            Size::Exact(hw) if self.max_size.is_none() => return Ok(hw),
            Size::Exact(_) => return Err("`max_size` only works with a one-number `size`".into()),
            Size::Edge(s) => s,
        };
        let (short, long) = if width <= height { (width, height) } else { (height, width) };
        // Python's `int(size * long / short)`: an exact integer product, one correctly rounded
        // division, then truncation; f64 does the same steps.
        let mut new_short = s;
        let mut new_long = ((s * long) as f64 / short as f64) as usize;
        if let Some(max) = self.max_size {
            if max <= s {
                return Err(format!("`max_size` ({max}) must be larger than `size` ({s})"));
            }
            if new_long > max {
                new_short = ((max * new_short) as f64 / new_long as f64) as usize;
                new_long = max;
            }
        }
        Ok(if width <= height { [new_long, new_short] } else { [new_short, new_long] })
    }
}

impl Op for Resize {
    fn check(&self, issues: &mut Issues) {
        issues.require(!self.size.square().contains(&0), "size", "must be positive");
        match (self.size, self.max_size) {
            (Size::Exact(_), Some(_)) => issues.push("max_size", "only works with a one-number `size`"),
            (Size::Edge(s), Some(max)) if max <= s => {
                issues.push("max_size", format!("must be larger than `size` ({s}), got {max}"))
            }
            _ => {}
        }
    }

    fn shape(&self, [c, h, w]: [usize; 3]) -> Result<[usize; 3], String> {
        let [oh, ow] = self.output_size(h, w)?;
        Ok([c, oh, ow])
    }
}

impl Settings for Resize {
    const FORMS: &'static str = "a size like 34 or [height, width], or a map with `size`";

    fn short<'de, D: Deserializer<'de>>(value: D) -> Option<Result<Self, D::Error>> {
        Some(Size::deserialize(value).map(Resize::new))
    }

    fn short_schema(generator: &mut SchemaGenerator) -> Option<Schema> {
        Some(generator.subschema_for::<Size>())
    }
}

/// Bilinear resampling of every plane to `height x width`, rows first, then columns (the order
/// torch uses; it only changes float rounding).
pub(crate) fn resample(image: Image, height: usize, width: usize, antialias: bool) -> Image {
    if (image.height, image.width) == (height, width) {
        return image;
    }
    let c = image.channels;
    let across = Taps::new(image.width, width, antialias);
    let mut wide = vec![0.0; c * image.height * width];
    for (row_in, row_out) in image.data.chunks_exact(image.width).zip(wide.chunks_exact_mut(width)) {
        if across.width == 2 {
            // Enlarging, the common case in augmentation: two taps, unrolled by hand.
            for (x, out) in row_out.iter_mut().enumerate() {
                let (start, w) = across.get(x);
                *out = row_in[start] * w[0] + row_in[start + 1] * w[1];
            }
        } else {
            for (x, out) in row_out.iter_mut().enumerate() {
                let (start, w) = across.get(x);
                *out = row_in[start..start + w.len()].iter().zip(w).map(|(v, w)| v * w).sum();
            }
        }
    }
    let down = Taps::new(image.height, height, antialias);
    // The input's buffer is free now; reusing it saves an allocation per image.
    let mut data = image.data;
    data.clear();
    data.resize(c * height * width, 0.0);
    for (plane_in, plane_out) in wide.chunks_exact(image.height * width).zip(data.chunks_exact_mut(height * width)) {
        for (y, row_out) in plane_out.chunks_exact_mut(width).enumerate() {
            let (start, weights) = down.get(y);
            for (k, &w) in weights.iter().enumerate().filter(|(_, w)| **w != 0.0) {
                let row_in = &plane_in[(start + k) * width..(start + k + 1) * width];
                for (o, &v) in row_out.iter_mut().zip(row_in) {
                    *o += w * v;
                }
            }
        }
    }
    Image { channels: c, height, width, data }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(values: &[f32]) -> Image {
        Image::new(1, 1, values.len(), values.to_vec()).unwrap()
    }

    fn close(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn upscale_2x2_to_4x4_uses_half_pixel_centres() {
        // Along each axis the sources are -0.25 (clamped to 0), 0.25, 0.75 and 1.25 (past the
        // last pixel, so the last pixel): weights 0, 1/4, 3/4, 1 on the second pixel.
        let along = [0.0, 0.25, 0.75, 1.0];
        let want: Vec<f32> = (0..16).map(|k| along[k % 4] + 2.0 * along[k / 4]).collect();
        for antialias in [false, true] {
            let image = Image::new(1, 2, 2, vec![0.0, 1.0, 2.0, 3.0]).unwrap();
            let out = resample(image, 4, 4, antialias);
            close(&out.data, &want);
        }
    }

    #[test]
    fn antialiased_downscale_4_to_2_uses_the_widened_triangle() {
        // Scale 2: support 2, centres 1 and 3. Output 0 covers inputs 0..3 with triangle
        // weights 0.75, 0.75, 0.25 (sum 1.75), output 1 covers inputs 1..4 with 0.25, 0.75,
        // 0.75: 5/7 and 16/7 for the row 0, 1, 2, 3.
        close(&resample(row(&[0.0, 1.0, 2.0, 3.0]), 1, 2, true).data, &[5.0 / 7.0, 16.0 / 7.0]);
        // Without antialiasing the sources 0.5 and 2.5 sit halfway between two neighbours.
        close(&resample(row(&[0.0, 1.0, 2.0, 3.0]), 1, 2, false).data, &[0.5, 2.5]);
    }

    #[test]
    fn antialiased_downscale_3_to_1_averages_with_triangle_weights() {
        // Scale 3, centre 1.5: inputs at offsets -1, 0, 1 from the centre weigh 2/3, 1, 2/3.
        let want = (2.0 / 3.0 * 3.0 + 6.0 + 2.0 / 3.0 * 9.0) / (2.0 / 3.0 + 1.0 + 2.0 / 3.0);
        close(&resample(row(&[3.0, 6.0, 9.0]), 1, 1, true).data, &[want]);
    }

    #[test]
    fn same_size_is_identity_and_channels_stay_apart() {
        let image = Image::new(2, 2, 2, vec![0.0, 1.0, 2.0, 3.0, 10.0, 10.0, 10.0, 10.0]).unwrap();
        assert_eq!(resample(image.clone(), 2, 2, true), image);
        let out = resample(image, 3, 5, true);
        assert_eq!(out.shape(), [2, 3, 5]);
        close(out.plane(1), &[10.0; 15]);
    }

    #[test]
    fn output_size_follows_torchvision() {
        let shape = |size, max_size, h, w| Resize { size, max_size, antialias: true }.shape([3, h, w]);
        assert_eq!(shape(Size::Edge(34), None, 28, 28), Ok([3, 34, 34]));
        // int(34 * 40 / 30) = 45 for the longer edge, wherever it lies.
        assert_eq!(shape(Size::Edge(34), None, 30, 40), Ok([3, 34, 45]));
        assert_eq!(shape(Size::Edge(34), None, 40, 30), Ok([3, 45, 34]));
        // 45 > 40: the long edge becomes 40 and the short one int(40 * 34 / 45) = 30.
        assert_eq!(shape(Size::Edge(34), Some(40), 30, 40), Ok([3, 30, 40]));
        assert_eq!(shape(Size::Exact([5, 7]), None, 30, 40), Ok([3, 5, 7]));
        assert!(shape(Size::Exact([5, 7]), Some(9), 30, 40).is_err());
        assert!(shape(Size::Edge(34), Some(34), 30, 40).unwrap_err().contains("max_size"));
    }
}
