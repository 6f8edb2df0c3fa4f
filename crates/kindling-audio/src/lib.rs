//! Stereo audio for Kindling, usable on its own: WAV files in, normalised STFT feature tensors
//! out, with the data-set listing, augmentation and on-disk cache a training loop needs.
//!
//! The pipeline, and where each step lives:
//!
//! ```text
//! WAV file ──wav──> Audio (planar f32, checked: channels, rate, length)
//!          ──stft──> per channel: magnitude / phase / power / log-magnitude, F x T
//!          ──features──> C x F x T, planes chosen by name (default l_mag, r_mag, l_phase, r_phase)
//!          ──norm──> z-scored: L+R levels jointly, each phase alone; per sample or fitted
//!          ──cache──> <cache>/<key>.kfeat, keyed by file content and parameters
//! ```
//!
//! - [`wav`]: hound-based reading of 8/16/24/32-bit integer and 32-bit float WAV, and
//!   [`WavExpect`], which checks a file against the configuration (channels, sample rate,
//!   duration with a pad/crop policy, mono handling) with errors that name the file.
//! - [`stft`]: [`Stft`], `torch.stft` semantics (periodic Hann window, centre reflect padding,
//!   one-sided, `[F, T]` layout) on a reusable realfft plan, tested against the DFT definition.
//! - [`features`]: [`FeatureExtractor`] turns a file into [`Features`], a `C x F x T` row-major
//!   `Vec<f32>` with its shape: 6.1 s of 16 kHz stereo with `n_fft` 512 and hop 256 is
//!   `4 x 257 x 382`.
//! - [`interaural`]: what differs between the ears (IPD cosine and sine, ILD, a GCC-PHAT
//!   lag x time image) as feature planes, and [`interaural::gcc_phat_itd`], the classical ITD.
//! - [`norm`]: the seed experiment's normalisation ([`Normalize`]), and [`NormStats`] fitted
//!   by streaming over a training split.
//! - [`augment`]: [`SpecAugment`] time and frequency masks, seeded per (seed, epoch, index).
//! - [`dataset`]: [`AudioDataset`] from class folders or a `path,label` CSV, with a stratified
//!   split.
//! - [`cache`]: [`FeatureCache`], computed in parallel with rayon, validated on every read.
//! - [`render`]: [`render::Renderer`], training samples rendered afresh per (seed, epoch, sample)
//!   from measured HRIRs with random noise, reverberation and head variation (the
//!   `spatial_dataset` stage).
//!
//! ```
//! use kindling_audio::{Channel, FeatureConfig, FeatureExtractor, StftConfig, WavExpect};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A one-second stereo WAV, written with hound.
//! let dir = std::env::temp_dir().join(format!("kindling-audio-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let path = dir.join("tone.wav");
//! let spec = hound::WavSpec { channels: 2, sample_rate: 16_000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
//! let mut writer = hound::WavWriter::create(&path, spec)?;
//! for n in 0..16_000 {
//!     let s = (n as f32 * 0.1).sin();
//!     writer.write_sample((s * 20_000.0) as i16)?; // left
//!     writer.write_sample((s * 5_000.0) as i16)?; // right, quieter
//! }
//! writer.finalize()?;
//!
//! let extractor = FeatureExtractor::new(FeatureConfig {
//!     wav: WavExpect { duration: Some(1.0), ..WavExpect::default() },
//!     stft: StftConfig { n_fft: 512, hop_length: Some(256), ..StftConfig::default() },
//!     ..FeatureConfig::default() // l_mag, r_mag, l_phase, r_phase; per-sample normalisation
//! })?;
//! let features = extractor.from_path(&path)?;
//! assert_eq!(features.shape(), [4, 257, 63]); // 1 + 16000 / 256 frames
//! assert_eq!(features.channels, Channel::STEREO_MAG_PHASE);
//! assert_eq!(features.data.len(), 4 * 257 * 63);
//! std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```
//!
//! This crate does not read YAML or know about tensors on devices: it hands out `Vec<f32>` with
//! a shape, and the caller makes tensors of them. Two more pieces serve Kindling's pipelines:
//! [`spatial`] builds the stereo direction data set from measured head-related impulse
//! responses (`kindling data spatialize`), and the `audio_dataset` stage (see [`plugin`]) turns a
//! folder or manifest of WAV files into cached features that load one batch at a time.

pub mod augment;
pub mod cache;
pub mod dataset;
mod error;
mod fastmath;
pub mod features;
pub mod hash;
mod input;
pub mod interaural;
pub mod norm;
pub mod render;
mod render_stage;
pub mod spatial;
mod stage;
pub mod stft;
#[cfg(test)]
mod testutil;
pub mod wav;

pub use augment::{MaskValue, SpecAugment};
pub use cache::{CacheEntry, CacheStatus, FeatureCache, compute_all};
pub use dataset::{AudioDataset, AudioItem};
pub use error::AudioError;
pub use features::{Channel, FeatureConfig, FeatureExtractor, Features};
pub use input::audio_reader;
pub use norm::{NormFitter, NormStats, Normalize};
pub use render_stage::SpatialDatasetConfig;
pub use stage::AudioDatasetConfig;
pub use stft::{PadMode, Stft, StftConfig};
pub use wav::{Audio, LengthPolicy, MonoPolicy, WavExpect, read_wav};

/// The audio stages, for a [`kindling_core::Registry`]: `audio_dataset` and `spatial_dataset`.
pub fn plugin() -> kindling_core::Plugin {
    kindling_core::Plugin { name: "audio", stages: vec![stage::audio_dataset(), render_stage::spatial_dataset()] }
}

/// The README's example, compiled and run as a doctest so it cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
#[derive(Debug)]
pub struct ReadmeDoctests;
