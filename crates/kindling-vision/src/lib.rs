//! Image data for Kindling: readers for standard image data-set formats and the stages that
//! turn them into a [`kindling_core::Dataset`] whose samples go through torchvision-style
//! transforms (`kindling-augment`).
//!
//! - [`read_idx`]: the IDX format of MNIST and its relatives (Fashion-MNIST, KMNIST), gzipped
//!   or not; [`CifarImages`]: the CIFAR-10 binary batches; [`decode_file`]: PNG, JPEG, BMP,
//!   GIF and WebP through the `image` crate, converted to 1 or 3 channels as PIL converts.
//! - [`ImageStore`] decodes an image folder once, in parallel, and keeps the pixels in memory
//!   when they fit; [`ImageSource`] hands out samples through a transform pipeline, seeded per
//!   (seed, epoch, sample), so a run is reproducible whatever the number of loader threads.
//! - [`export_idx_folder`] writes an IDX set out as an image folder (optionally RGB), and
//!   [`preview_grid`] draws a grid of augmented samples as a PNG.
//! - Stages: `idx_dataset`, `image_dataset` (a folder of class folders or a `path,label` CSV),
//!   `cifar_dataset`.
//!
//! The readers return plain bytes and shapes and report errors that name the file; they know
//! nothing of tensors or devices, so they are useful outside Kindling:
//!
//! ```
//! # fn main() -> Result<(), kindling_vision::VisionError> {
//! let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist");
//! let labels = kindling_vision::read_idx(&dir.join("t10k-labels-idx1-ubyte.gz"))?;
//! assert_eq!(labels.dims, [1000]);
//! let header = kindling_vision::read_idx_header(&dir.join("t10k-images-idx3-ubyte.gz"))?;
//! assert_eq!(header.dims, [1000, 28, 28]);
//! # Ok(())
//! # }
//! ```
//!
//! This crate does not read YAML or train.

mod cifar;
mod cifar_stage;
mod decode;
mod error;
mod export;
mod idx;
mod idx_stage;
mod image_stage;
mod input;
mod preview;
mod store;

pub use cifar::{CIFAR_RECORD, CIFAR_SIDE, CifarImages, read_cifar_classes};
pub use cifar_stage::{CIFAR10_CLASSES, CifarDatasetConfig};
pub use decode::{IMAGE_EXTENSIONS, MAX_IMAGE_PIXELS, Pixels, decode_file, image_size};
pub use error::VisionError;
pub use export::{ExportSummary, export_idx_folder};
pub use idx::{IdxArray, IdxHeader, read_idx, read_idx_header};
pub use idx_stage::{IdxDatasetConfig, Normalize};
pub use image_stage::{ImageDatasetConfig, OnError};
pub use input::image_reader;
/// The sample type of [`preview_grid`] (`kindling-augment`'s CHW image).
pub use kindling_augment::Image;
pub use preview::preview_grid;
pub use store::{ImageSource, ImageStore, Skipped};

/// The stages this crate offers.
pub fn plugin() -> kindling_core::Plugin {
    kindling_core::Plugin {
        name: "vision",
        stages: vec![idx_stage::idx_dataset(), image_stage::image_dataset(), cifar_stage::cifar_dataset()],
    }
}
