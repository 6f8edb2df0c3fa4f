//! Helpers shared by the unit tests: scratch directories and WAV writers.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A directory under the system's temporary directory, removed when dropped.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("kindling-audio-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a scratch directory");
        Self(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes interleaved integer samples with hound.
pub(crate) fn write_int_wav(path: &Path, channels: u16, rate: u32, bits: u16, samples: &[i32]) {
    let spec =
        hound::WavSpec { channels, sample_rate: rate, bits_per_sample: bits, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(path, spec).expect("create wav");
    for &s in samples {
        if bits == 8 {
            w.write_sample(s as i8).expect("write sample");
        } else if bits == 16 {
            w.write_sample(s as i16).expect("write sample");
        } else {
            w.write_sample(s).expect("write sample");
        }
    }
    w.finalize().expect("finish wav");
}

/// Writes interleaved 32-bit float samples with hound.
pub(crate) fn write_float_wav(path: &Path, channels: u16, rate: u32, samples: &[f32]) {
    let spec =
        hound::WavSpec { channels, sample_rate: rate, bits_per_sample: 32, sample_format: hound::SampleFormat::Float };
    let mut w = hound::WavWriter::create(path, spec).expect("create wav");
    for &s in samples {
        w.write_sample(s).expect("write sample");
    }
    w.finalize().expect("finish wav");
}

/// A deterministic stereo test signal: two tones with different levels per side, 16-bit.
pub(crate) fn stereo_tone_wav(path: &Path, rate: u32, frames: usize, seed: u32) {
    let mut samples = Vec::with_capacity(frames * 2);
    for n in 0..frames {
        let t = n as f64 / f64::from(rate);
        let f = 440.0 + 37.0 * f64::from(seed);
        let l =
            0.5 * (2.0 * std::f64::consts::PI * f * t).sin() + 0.1 * (2.0 * std::f64::consts::PI * 3.1 * f * t).cos();
        let r = 0.25 * (2.0 * std::f64::consts::PI * f * t + 0.3).sin();
        samples.push((l * 32767.0) as i32);
        samples.push((r * 32767.0) as i32);
    }
    write_int_wav(path, 2, rate, 16, &samples);
}
