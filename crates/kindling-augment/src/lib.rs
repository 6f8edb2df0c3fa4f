//! torchvision-compatible image transforms on CHW f32 images, seeded per sample.
//!
//! An [`Image`] is what torchvision's `ToTensor` makes of a decoded picture ([`to_tensor`]):
//! channel planes of floats in [0, 1]. A [`Pipeline`] is a list of [`Step`]s, each a
//! [`Transform`] (`resize`, `center_crop`, `random_crop`, `random_resized_crop`, the two
//! random flips, `random_rotation`, `rotate`, `color_jitter`, `normalize`) and the splits it
//! applies to ([`Apply`]): augmentations transform training images only unless marked
//! `apply: all`; `normalize` applies everywhere by default, since it sets the scale of the
//! model's inputs and normalising only the training split is always a mistake. The
//! transforms follow torchvision's tensor code path: its parameter defaults, its random draws
//! (in the same order, though from a different generator, so the distributions match and the
//! numbers do not), its rounding, its padding and its interpolation formulas.
//!
//! Randomness comes from [`rng_for`]`(seed, epoch, index)`, so a sample's augmentation
//! depends on those three numbers only, never on the number of workers or their order.
//!
//! Validation comes before data: [`Pipeline::check`] reports bad settings with paths like
//! `[2].random_rotation.degrees`, and [`Pipeline::output_shape`] the shapes each split
//! produces or the step that cannot take them.
//!
//! This crate decodes no files, batches nothing and knows nothing of burn: the vision crate
//! feeds it decoded pixels and stacks its outputs.
//!
//! ```
//! use kindling_augment::{Image, Pipeline, rng_for, to_tensor};
//!
//! let pipeline: Pipeline = serde_yaml::from_str(
//!     "
//! - resize: 34
//! - center_crop: 28
//! - random_horizontal_flip
//! - random_rotation: 15
//! - normalize: {mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}
//! ",
//! )?;
//! let mut issues = kindling_core::Issues::default();
//! pipeline.check(&mut issues);
//! assert!(issues.is_empty());
//! assert_eq!(pipeline.output_shape([3, 20, 30], true)?, [3, 28, 28]);
//! assert!(pipeline.output_shape([1, 20, 30], false).is_err()); // 3 means for 1 channel
//!
//! let image = to_tensor(&[128; 20 * 30 * 3], 20, 30, 3);
//! let train = pipeline.apply(image.clone(), true, &mut rng_for(7, 0, 42));
//! assert_eq!(train.shape(), [3, 28, 28]);
//! assert_eq!(train, pipeline.apply(image.clone(), true, &mut rng_for(7, 0, 42)));
//! // Evaluation only normalises: 128 / 255 becomes (0.50196 - 0.5) / 0.25.
//! let eval: Image = pipeline.apply(image, false, &mut rng_for(7, 0, 42));
//! assert!((eval.get(0, 0, 0) - 0.00784).abs() < 1e-4);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod color;
mod crop;
mod error;
mod flip;
mod image;
mod normalize;
mod pipeline;
mod resize;
mod resized_crop;
mod rotate;
mod step;
mod transform;
mod values;

pub use color::ColorJitter;
pub use crop::{CenterCrop, PadMode, RandomCrop};
pub use error::AugmentError;
pub use flip::Flip;
pub use image::{Image, to_pixels, to_tensor};
pub use normalize::Normalize;
pub use pipeline::{Pipeline, rng_for};
pub use resize::Resize;
pub use resized_crop::RandomResizedCrop;
pub use rotate::{Interpolation, RandomRotation, Rotate};
pub use step::{Apply, Step};
pub use transform::{NAMES, Transform};
pub use values::{Fill, Padding, Size, Span};
