//! Errors of the image readers.

use std::path::PathBuf;

/// Why an image data set could not be read. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    /// The file could not be opened or read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not what it should be (bad magic number, truncated, wrong element type).
    #[error("{}: {message}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong, in one sentence.
        message: String,
    },
    /// The image folder or manifest could not be listed.
    #[error(transparent)]
    Listing(#[from] kindling_core::ListingError),
    /// Two files that belong together disagree (image and label counts).
    #[error("{}: {message}", path.display())]
    Mismatch {
        /// The file found to disagree with its partner.
        path: PathBuf,
        /// What disagrees.
        message: String,
    },
}

impl VisionError {
    pub(crate) fn malformed(path: &std::path::Path, message: impl Into<String>) -> Self {
        Self::Malformed { path: path.to_owned(), message: message.into() }
    }
}
