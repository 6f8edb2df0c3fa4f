//! Image data for Kindling: readers for standard image data-set formats and the stage that
//! turns them into a normalised [`kindling_core::Dataset`].
//!
//! Today: the IDX format of MNIST and its relatives (Fashion-MNIST, KMNIST), gzipped or not,
//! with errors that name the file and what is wrong with it. The readers return plain bytes and
//! shapes; they know nothing of tensors or devices, so they are useful outside Kindling:
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
//! This crate does not read YAML, train, or augment (see `kindling-augment`).

mod error;
mod idx;
mod stage;

pub use error::VisionError;
pub use idx::{IdxArray, IdxHeader, read_idx, read_idx_header};
pub use stage::{IdxDatasetConfig, Normalize};

/// The stages this crate offers.
pub fn plugin() -> kindling_core::Plugin {
    kindling_core::Plugin { name: "vision", stages: vec![stage::idx_dataset()] }
}
