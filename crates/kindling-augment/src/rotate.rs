//! `random_rotation` and `rotate`: rotations about the image centre (or a given pivot),
//! anticlockwise for positive angles, as torchvision's tensor path rotates.

mod sample;

use kindling_core::Issues;
use rand::Rng;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::Deserializer;
use serde::{Deserialize, Serialize};

use sample::Geometry;
pub use sample::Interpolation;

use crate::Image;
use crate::transform::Op;
use crate::transform::parse::Settings;
use crate::values::{Fill, Span, uniform};

/// torchvision's `RandomRotation(degrees, interpolation=NEAREST, expand=False, center=None,
/// fill=0)`: an angle uniform in `[-d, d]` (or `[min, max]`), then [`Rotate`]'s rotation.
///
/// `expand` gives every angle its own output size, so with a range of angles the images of a
/// batch would differ in size; `Op::shape` refuses that combination.
///
/// ```yaml
/// - random_rotation: 15                      # or [-10, 30], or {degrees: 15}
/// - random_rotation: {degrees: 15, interpolation: bilinear, fill: [0.5, 0.5, 0.5]}
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RandomRotation {
    /// One number `d` for `[-d, d]`, or `[min, max]`, in degrees.
    pub degrees: Span,
    /// How the rotated image is sampled.
    #[serde(default)]
    pub interpolation: Interpolation,
    /// Whether the output grows to hold the whole rotated image.
    #[serde(default)]
    pub expand: bool,
    /// The pivot `[x, y]`, where pixel `(row i, column j)` covers `[j, j + 1) x [i, i + 1)`;
    /// the default is the image centre `[w / 2, h / 2]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub center: Option<[f64; 2]>,
    /// The value of pixels rotated in from outside: one number or one per channel.
    #[serde(default)]
    pub fill: Fill,
}

/// A rotation by a fixed `angle` in degrees, anticlockwise when positive (torchvision's
/// `functional.rotate`). Options as in [`RandomRotation`].
///
/// ```yaml
/// - rotate: 90                    # or {angle: 90, expand: true}
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotate {
    /// The angle in degrees.
    pub angle: f64,
    /// How the rotated image is sampled.
    #[serde(default)]
    pub interpolation: Interpolation,
    /// Whether the output grows to hold the whole rotated image.
    #[serde(default)]
    pub expand: bool,
    /// The pivot `[x, y]` as in [`RandomRotation::center`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub center: Option<[f64; 2]>,
    /// The value of pixels rotated in from outside.
    #[serde(default)]
    pub fill: Fill,
}

impl RandomRotation {
    /// A random rotation within `degrees` with torchvision's defaults.
    pub fn new(degrees: Span) -> Self {
        Self { degrees, interpolation: Interpolation::Nearest, expand: false, center: None, fill: Fill::default() }
    }

    fn geometry(&self) -> Geometry<'_> {
        Geometry { interpolation: self.interpolation, expand: self.expand, center: self.center, fill: &self.fill }
    }

    /// Draws an angle and rotates by it.
    pub(crate) fn apply<R: Rng + ?Sized>(&self, image: Image, rng: &mut R) -> Image {
        let angle = uniform(rng, self.degrees.bounds(0.0, f64::NEG_INFINITY));
        self.geometry().rotate(image, angle)
    }
}

impl Rotate {
    /// A rotation by `angle` degrees with torchvision's defaults.
    pub fn new(angle: f64) -> Self {
        Self { angle, interpolation: Interpolation::Nearest, expand: false, center: None, fill: Fill::default() }
    }

    fn geometry(&self) -> Geometry<'_> {
        Geometry { interpolation: self.interpolation, expand: self.expand, center: self.center, fill: &self.fill }
    }

    /// Rotates by the fixed angle.
    pub(crate) fn apply(&self, image: Image) -> Image {
        self.geometry().rotate(image, self.angle)
    }
}

/// Problems with the options both rotations share.
fn check_options(center: Option<[f64; 2]>, fill: &Fill, issues: &mut Issues) {
    if let Some(c) = center {
        issues.require(c.iter().all(|v| v.is_finite()), "center", "must be two finite numbers [x, y]");
    }
    issues.require(fill.is_finite(), "fill", "must be finite");
}

impl Op for RandomRotation {
    fn check(&self, issues: &mut Issues) {
        let ok = match self.degrees {
            Span::Spread(d) => d.is_finite() && d >= 0.0,
            Span::Range([lo, hi]) => lo.is_finite() && hi.is_finite() && lo <= hi,
        };
        issues.require(ok, "degrees", "must be a non-negative number d (for [-d, d]) or [min, max] with min <= max");
        check_options(self.center, &self.fill, issues);
    }

    fn shape(&self, [c, h, w]: [usize; 3]) -> Result<[usize; 3], String> {
        self.fill.fits(c)?;
        let [lo, hi] = self.degrees.bounds(0.0, f64::NEG_INFINITY);
        if self.expand && lo != hi {
            return Err("with `expand: true` every angle gives its own size, so images would not batch; \
                        use `expand: false`, or `rotate` for one fixed angle"
                .into());
        }
        let [oh, ow] = self.geometry().output_size(lo, h, w);
        Ok([c, oh, ow])
    }
}

impl Op for Rotate {
    fn check(&self, issues: &mut Issues) {
        issues.require(self.angle.is_finite(), "angle", "must be a finite number of degrees");
        check_options(self.center, &self.fill, issues);
    }

    fn shape(&self, [c, h, w]: [usize; 3]) -> Result<[usize; 3], String> {
        self.fill.fits(c)?;
        let [oh, ow] = self.geometry().output_size(self.angle, h, w);
        Ok([c, oh, ow])
    }
}

impl Settings for RandomRotation {
    const FORMS: &'static str = "degrees as one number or [min, max], or a map with `degrees` and optional \
                                 `interpolation`, `expand`, `center`, `fill`";

    fn short<'de, D: Deserializer<'de>>(value: D) -> Option<Result<Self, D::Error>> {
        Some(Span::deserialize(value).map(RandomRotation::new))
    }

    fn short_schema(generator: &mut SchemaGenerator) -> Option<Schema> {
        Some(generator.subschema_for::<Span>())
    }
}

impl Settings for Rotate {
    const FORMS: &'static str = "an angle in degrees, or a map with `angle` and optional `interpolation`, `expand`, \
                                 `center`, `fill`";

    fn short<'de, D: Deserializer<'de>>(value: D) -> Option<Result<Self, D::Error>> {
        Some(f64::deserialize(value).map(Rotate::new))
    }

    fn short_schema(_generator: &mut SchemaGenerator) -> Option<Schema> {
        Some(json_schema!({"type": "number", "description": "the angle in degrees"}))
    }
}

#[cfg(test)]
mod tests;
