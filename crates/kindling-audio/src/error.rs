//! Errors of the audio crate.

use std::path::{Path, PathBuf};

use kindling_core::{ConfigIssue, ListingError};

use crate::stft::StftError;

/// Why audio could not be read, turned into features, listed or cached. Every variant that
/// concerns a file names it, so a message read in a log says where to look.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// The file could not be opened, read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a WAV file, or its header is damaged.
    #[error("{}: not a readable WAV file: {message}", path.display())]
    NotWav {
        /// The file.
        path: PathBuf,
        /// What the header parser found.
        message: String,
    },
    /// The WAV header is readable but the audio is not: truncated data, an unsupported sample
    /// layout, a non-finite float sample, no samples at all.
    #[error("{}: {message}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong, in one sentence.
        message: String,
    },
    /// The file is a good WAV file but not what the configuration expects (channels, sample
    /// rate, length).
    #[error("{}: {message}", path.display())]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// What differs, and how to accept it where the configuration can.
        message: String,
    },
    /// The STFT of the file's audio could not be taken (a signal too short to pad).
    #[error("{}: {source}", path.display())]
    Stft {
        /// The file.
        path: PathBuf,
        /// The STFT's complaint.
        #[source]
        source: StftError,
    },
    /// The data set's folder or manifest could not be listed (unreadable, no classes, an empty
    /// class folder, bad manifest lines); the message names the folder, or the manifest and
    /// its lines.
    #[error(transparent)]
    Listing(#[from] ListingError),
    /// The feature configuration is invalid; every problem is listed with its key.
    #[error("invalid audio feature configuration: {}", join_issues(.0))]
    Config(Vec<ConfigIssue>),
}

impl AudioError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io { path: path.to_owned(), source }
    }

    pub(crate) fn malformed(path: &Path, message: impl Into<String>) -> Self {
        Self::Malformed { path: path.to_owned(), message: message.into() }
    }

    pub(crate) fn mismatch(path: &Path, message: impl Into<String>) -> Self {
        Self::Mismatch { path: path.to_owned(), message: message.into() }
    }

    /// The file this error is about, where there is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::Io { path, .. }
            | Self::NotWav { path, .. }
            | Self::Malformed { path, .. }
            | Self::Mismatch { path, .. }
            | Self::Stft { path, .. }
            | Self::Listing(
                ListingError::Io { path, .. } | ListingError::Empty { path, .. } | ListingError::Manifest { path, .. },
            ) => Some(path),
            Self::Config(_) => None,
        }
    }
}

fn join_issues(issues: &[ConfigIssue]) -> String {
    issues.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}
