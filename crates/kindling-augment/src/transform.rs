//! The list of transforms: one enum variant per YAML name, and the dispatch from a step to
//! the module that implements it. Adding a transform means a settings struct implementing
//! [`Op`] and [`parse::Settings`], a variant here, and its name in [`NAMES`] and in
//! [`parse::settings`].

pub(crate) mod parse;

use kindling_core::Issues;
use rand::Rng;
use serde::Serialize;

use crate::Image;
use crate::color::ColorJitter;
use crate::crop::{CenterCrop, RandomCrop};
use crate::flip::Flip;
use crate::normalize::Normalize;
use crate::resize::Resize;
use crate::resized_crop::RandomResizedCrop;
use crate::rotate::{RandomRotation, Rotate};

/// One transform with its settings. In YAML the variant's name (snake_case) is the key and
/// the settings its value; see [`crate::Step`] for the accepted forms.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// Bilinear resize, antialiased when shrinking.
    Resize(Resize),
    /// The centre window of a size, padded with 0 when the image is smaller.
    CenterCrop(CenterCrop),
    /// A window at a uniformly random position, after optional padding.
    RandomCrop(RandomCrop),
    /// A random window of random area and aspect ratio, resized to a size.
    RandomResizedCrop(RandomResizedCrop),
    /// A left-right mirror with probability `p`.
    RandomHorizontalFlip(Flip),
    /// An upside-down mirror with probability `p`.
    RandomVerticalFlip(Flip),
    /// A rotation by an angle drawn uniformly from a range.
    RandomRotation(RandomRotation),
    /// A rotation by a fixed angle.
    Rotate(Rotate),
    /// Random brightness, contrast, saturation and hue, in a random order.
    ColorJitter(ColorJitter),
    /// `(x - mean) / std` per channel.
    Normalize(Normalize),
}

/// Every transform's YAML name, in the order the reference lists them.
pub const NAMES: &[&str] = &[
    "resize",
    "center_crop",
    "random_crop",
    "random_resized_crop",
    "random_horizontal_flip",
    "random_vertical_flip",
    "random_rotation",
    "rotate",
    "color_jitter",
    "normalize",
];

/// What every settings struct provides besides its own `apply` (which is generic over the
/// generator, so it stays an inherent method and this trait stays object-safe).
pub(crate) trait Op {
    /// Records problems with the settings alone, at paths relative to them.
    fn check(&self, issues: &mut Issues);

    /// The `[channels, height, width]` an input of shape `input` becomes, or why that input
    /// does not work. `input` has no zero dimension. Whatever this accepts, `apply` handles
    /// without panicking, even with settings that `check` reports.
    fn shape(&self, input: [usize; 3]) -> Result<[usize; 3], String>;
}

impl Transform {
    /// The YAML name (`random_rotation`).
    pub fn name(&self) -> &'static str {
        match self {
            Transform::Resize(_) => "resize",
            Transform::CenterCrop(_) => "center_crop",
            Transform::RandomCrop(_) => "random_crop",
            Transform::RandomResizedCrop(_) => "random_resized_crop",
            Transform::RandomHorizontalFlip(_) => "random_horizontal_flip",
            Transform::RandomVerticalFlip(_) => "random_vertical_flip",
            Transform::RandomRotation(_) => "random_rotation",
            Transform::Rotate(_) => "rotate",
            Transform::ColorJitter(_) => "color_jitter",
            Transform::Normalize(_) => "normalize",
        }
    }

    /// Whether applying it draws from the generator.
    pub fn is_random(&self) -> bool {
        !matches!(
            self,
            Transform::Resize(_) | Transform::CenterCrop(_) | Transform::Rotate(_) | Transform::Normalize(_)
        )
    }

    /// The splits it applies to when the YAML does not say: every split for `normalize`,
    /// which sets the model's input scale, training only for the rest, which augment.
    pub fn default_apply(&self) -> crate::Apply {
        match self {
            Transform::Normalize(_) => crate::Apply::All,
            _ => crate::Apply::Train,
        }
    }

    /// Records every problem with the settings, at paths relative to them (`degrees`).
    pub fn check(&self, issues: &mut Issues) {
        self.op(|op| op.check(issues))
    }

    /// The `[channels, height, width]` an image of shape `input` becomes, or why that image
    /// does not work (a `normalize` with 3 means on a grey image, a crop larger than the
    /// image without padding, ...).
    pub fn output_shape(&self, input: [usize; 3]) -> Result<[usize; 3], String> {
        if input.contains(&0) {
            return Err("the image is empty; transforms need at least one channel, row and column".into());
        }
        let out = self.op(|op| op.shape(input))?;
        if out.contains(&0) {
            return Err(format!("the output would be empty ({}x{}x{})", out[0], out[1], out[2]));
        }
        Ok(out)
    }

    /// Transforms `image`; the caller has checked its shape with [`Transform::output_shape`].
    pub(crate) fn apply<R: Rng + ?Sized>(&self, image: Image, rng: &mut R) -> Image {
        match self {
            Transform::Resize(t) => t.apply(image),
            Transform::CenterCrop(t) => t.apply(image),
            Transform::RandomCrop(t) => t.apply(image, rng),
            Transform::RandomResizedCrop(t) => t.apply(image, rng),
            Transform::RandomHorizontalFlip(t) => t.apply_horizontal(image, rng),
            Transform::RandomVerticalFlip(t) => t.apply_vertical(image, rng),
            Transform::RandomRotation(t) => t.apply(image, rng),
            Transform::Rotate(t) => t.apply(image),
            Transform::ColorJitter(t) => t.apply(image, rng),
            Transform::Normalize(t) => t.apply(image),
        }
    }

    /// Runs `f` on the settings as an [`Op`].
    fn op<T>(&self, f: impl FnOnce(&dyn Op) -> T) -> T {
        match self {
            Transform::Resize(t) => f(t),
            Transform::CenterCrop(t) => f(t),
            Transform::RandomCrop(t) => f(t),
            Transform::RandomResizedCrop(t) => f(t),
            Transform::RandomHorizontalFlip(t) | Transform::RandomVerticalFlip(t) => f(t),
            Transform::RandomRotation(t) => f(t),
            Transform::Rotate(t) => f(t),
            Transform::ColorJitter(t) => f(t),
            Transform::Normalize(t) => f(t),
        }
    }
}
