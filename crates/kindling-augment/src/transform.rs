//! The list of transforms: one table row per YAML name, from which the enum, the names, the
//! YAML reader and the dispatch to the module that implements each transform are generated.
//! Adding a transform means a settings struct implementing [`Op`] and [`parse::Settings`] in
//! a module of its own, and one row in the `transforms!` table below.

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

/// Declares the transforms from one table: each row gives the variant's docs, its settings
/// type, its YAML name, whether applying it draws from the generator, and how it applies. From
/// the rows come the [`Transform`] enum (serialised under the YAML name), [`NAMES`],
/// [`Transform::name`], [`Transform::is_random`], the application, the [`Op`] dispatch, the
/// YAML reader ([`parse::settings`]) and its JSON Schema ([`value_schemas`]), so a new
/// transform is one row here plus its module.
macro_rules! transforms {
    ($(
        $(#[doc = $doc:literal])*
        $variant:ident($settings:ty) = $name:literal, random: $random:literal,
            apply: |$t:ident, $image:ident, $rng:ident| $apply:expr;
    )*) => {
        /// One transform with its settings. In YAML the variant's name (snake_case) is the key
        /// and the settings its value; see [`crate::Step`] for the accepted forms.
        #[derive(Clone, Debug, PartialEq, Serialize)]
        pub enum Transform {
            $(
                $(#[doc = $doc])*
                #[serde(rename = $name)]
                $variant($settings),
            )*
        }

        /// Every transform's YAML name, in the order the reference lists them.
        pub const NAMES: &[&str] = &[$($name),*];

        impl Transform {
            /// The YAML name (`random_rotation`).
            pub fn name(&self) -> &'static str {
                match self {
                    $(Transform::$variant(_) => $name,)*
                }
            }

            /// Whether applying it draws from the generator.
            pub fn is_random(&self) -> bool {
                match self {
                    $(Transform::$variant(_) => $random,)*
                }
            }

            /// Transforms `image`; the caller has checked its shape with
            /// [`Transform::output_shape`].
            pub(crate) fn apply<R: Rng + ?Sized>(&self, image: Image, rng: &mut R) -> Image {
                match self {
                    $(Transform::$variant($t) => {
                        let ($image, $rng) = (image, &mut *rng);
                        $apply
                    })*
                }
            }

            /// Runs `f` on the settings as an [`Op`].
            fn op<T>(&self, f: impl FnOnce(&dyn Op) -> T) -> T {
                match self {
                    $(Transform::$variant(t) => f(t),)*
                }
            }
        }

        /// Each transform's YAML name, whether it has a bare form, and the JSON Schema of the
        /// value under its name, in table order.
        pub(crate) fn value_schemas(
            generator: &mut schemars::SchemaGenerator,
        ) -> Vec<(&'static str, bool, schemars::Schema)> {
            vec![$((
                $name,
                <$settings as parse::Settings>::bare().is_some(),
                parse::value_schema::<$settings>(generator, concat!($($doc),*)),
            ),)*]
        }

        /// Reads the value under the transform name `name` into its settings.
        pub(crate) fn settings<'de, D: serde::Deserializer<'de>>(name: &str, value: D) -> Result<Transform, D::Error> {
            match name {
                $($name => parse::read::<$settings, D>($name, value).map(Transform::$variant),)*
                _ => Err(serde::de::Error::custom(parse::unknown(name))),
            }
        }
    };
}

transforms! {
    /// Bilinear resize, antialiased when shrinking.
    Resize(Resize) = "resize", random: false, apply: |t, image, _rng| t.apply(image);
    /// The centre window of a size, padded with 0 when the image is smaller.
    CenterCrop(CenterCrop) = "center_crop", random: false, apply: |t, image, _rng| t.apply(image);
    /// A window at a uniformly random position, after optional padding.
    RandomCrop(RandomCrop) = "random_crop", random: true, apply: |t, image, rng| t.apply(image, rng);
    /// A random window of random area and aspect ratio, resized to a size.
    RandomResizedCrop(RandomResizedCrop) = "random_resized_crop", random: true,
        apply: |t, image, rng| t.apply(image, rng);
    /// A left-right mirror with probability `p`.
    RandomHorizontalFlip(Flip) = "random_horizontal_flip", random: true,
        apply: |t, image, rng| t.apply_horizontal(image, rng);
    /// An upside-down mirror with probability `p`.
    RandomVerticalFlip(Flip) = "random_vertical_flip", random: true,
        apply: |t, image, rng| t.apply_vertical(image, rng);
    /// A rotation by an angle drawn uniformly from a range.
    RandomRotation(RandomRotation) = "random_rotation", random: true, apply: |t, image, rng| t.apply(image, rng);
    /// A rotation by a fixed angle.
    Rotate(Rotate) = "rotate", random: false, apply: |t, image, _rng| t.apply(image);
    /// Random brightness, contrast, saturation and hue, in a random order.
    ColorJitter(ColorJitter) = "color_jitter", random: true, apply: |t, image, rng| t.apply(image, rng);
    /// `(x - mean) / std` per channel.
    Normalize(Normalize) = "normalize", random: false, apply: |t, image, _rng| t.apply(image);
}

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
}
