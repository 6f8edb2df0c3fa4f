//! `random_horizontal_flip` and `random_vertical_flip`: mirror images, in place.

use kindling_core::Issues;
use rand::{Rng, RngExt};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::Deserializer;
use serde::{Deserialize, Serialize};

use crate::Image;
use crate::transform::Op;
use crate::transform::parse::Settings;

/// torchvision's `RandomHorizontalFlip(p=0.5)` and `RandomVerticalFlip(p=0.5)`: one uniform
/// draw `u`, and a flip when `u < p`. The draw happens whatever `p` is, as in torchvision.
///
/// ```yaml
/// - random_horizontal_flip          # p = 0.5
/// - random_vertical_flip: 0.1       # or {p: 0.1}
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Flip {
    /// The probability of flipping, in [0, 1].
    #[schemars(range(min = 0, max = 1))]
    pub p: f64,
}

impl Default for Flip {
    fn default() -> Self {
        Self { p: 0.5 }
    }
}

impl Flip {
    /// Mirrors left to right with probability `p`.
    pub(crate) fn apply_horizontal<R: Rng + ?Sized>(&self, mut image: Image, rng: &mut R) -> Image {
        if rng.random::<f64>() < self.p {
            flip_horizontal(&mut image);
        }
        image
    }

    /// Turns upside down with probability `p`.
    pub(crate) fn apply_vertical<R: Rng + ?Sized>(&self, mut image: Image, rng: &mut R) -> Image {
        if rng.random::<f64>() < self.p {
            flip_vertical(&mut image);
        }
        image
    }
}

/// Reverses every row.
pub(crate) fn flip_horizontal(image: &mut Image) {
    for row in image.data.chunks_exact_mut(image.width) {
        row.reverse();
    }
}

/// Reverses the order of the rows of every plane.
pub(crate) fn flip_vertical(image: &mut Image) {
    let (h, w) = (image.height, image.width);
    for plane in image.data.chunks_exact_mut(h * w) {
        let (top, bottom) = plane.split_at_mut(h / 2 * w);
        // The middle row of an odd height stays; `bottom` starts with it then.
        let bottom = &mut bottom[(h % 2) * w..];
        for (a, b) in top.chunks_exact_mut(w).zip(bottom.chunks_exact_mut(w).rev()) {
            a.swap_with_slice(b);
        }
    }
}

impl Op for Flip {
    fn check(&self, issues: &mut Issues) {
        issues.require((0.0..=1.0).contains(&self.p), "p", format!("must be between 0 and 1, got {}", self.p));
    }

    fn shape(&self, input: [usize; 3]) -> Result<[usize; 3], String> {
        Ok(input)
    }
}

impl Settings for Flip {
    const FORMS: &'static str = "nothing, a probability like 0.5, or a map with `p`";

    fn bare() -> Option<Self> {
        Some(Self::default())
    }

    fn short<'de, D: Deserializer<'de>>(value: D) -> Option<Result<Self, D::Error>> {
        Some(f64::deserialize(value).map(|p| Flip { p }))
    }

    fn short_schema(_generator: &mut SchemaGenerator) -> Option<Schema> {
        Some(json_schema!({"type": "number", "minimum": 0, "maximum": 1, "description": "the probability p"}))
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn image(h: usize, w: usize) -> Image {
        Image::new(2, h, w, (0..2 * h * w).map(|v| v as f32).collect()).unwrap()
    }

    #[test]
    fn flips_mirror_rows_and_columns() {
        let mut im = image(3, 2);
        flip_horizontal(&mut im);
        assert_eq!(im.data, vec![1.0, 0.0, 3.0, 2.0, 5.0, 4.0, 7.0, 6.0, 9.0, 8.0, 11.0, 10.0]);
        for (h, w) in [(3, 2), (4, 3), (1, 5)] {
            let mut im = image(h, w);
            flip_vertical(&mut im);
            for c in 0..2 {
                for y in 0..h {
                    for x in 0..w {
                        assert_eq!(im.get(c, y, x), image(h, w).get(c, h - 1 - y, x));
                    }
                }
            }
        }
    }

    #[test]
    fn p_sets_how_often() {
        let mut rng = StdRng::seed_from_u64(5);
        let never = Flip { p: 0.0 };
        let always = Flip { p: 1.0 };
        let mut flipped = image(2, 3);
        flip_horizontal(&mut flipped);
        for _ in 0..20 {
            assert_eq!(never.apply_horizontal(image(2, 3), &mut rng), image(2, 3));
            assert_eq!(always.apply_horizontal(image(2, 3), &mut rng), flipped);
        }
        let half = Flip::default();
        let count = (0..1000).filter(|_| half.apply_horizontal(image(2, 3), &mut rng) == flipped).count();
        assert!((400..600).contains(&count), "{count} flips in 1000");
    }
}
