//! The short-time Fourier transform, as `torch.stft` defines it.
//!
//! [`Stft`] computes what
//! `torch.stft(x, n_fft, hop_length, win_length, window=torch.hann_window(win_length),
//! center=True, pad_mode='reflect', onesided=True, return_complex=True)` returns:
//!
//! - the window is the periodic Hann window of `win_length` samples,
//!   `w[n] = 0.5 - 0.5 cos(2 pi n / win_length)`, zero-padded on both sides to `n_fft` with
//!   `(n_fft - win_length) / 2` (rounded down) zeros on the left, as torch does;
//! - with `center`, the signal is padded with `n_fft / 2` samples on each side, by reflection
//!   (`x[2], x[1] | x[0] .. x[N-1] | x[N-2], x[N-3]`, the edge sample not repeated) or with
//!   zeros, and frame `t` starts at `t * hop_length` of the padded signal;
//! - there are `1 + (N + 2 * (n_fft / 2) - n_fft) / hop_length` frames (rounded down), which
//!   is `1 + N / hop_length` for an even `n_fft` (97,600 samples, `n_fft` 512, hop 256: 382
//!   frames); without `center`, `1 + (N - n_fft) / hop_length`;
//! - bin `k` of frame `t` is `X[k, t] = sum_n w[n] x_pad[t * hop + n] e^(-2 pi i k n / n_fft)`
//!   for `k` in `0..=n_fft / 2` (one-sided), unnormalised.
//!
//! Outputs are laid out `[F, T]` row-major, frequency-major like torch's result:
//! element `k * T + t`. From the complex value `X = re + i im`:
//! - magnitude `|X| = sqrt(re^2 + im^2)`; power `|X|^2`;
//! - phase `atan2(im, re)` in (-pi, pi] (a fast vectorisable `atan2`, within 4e-7 rad);
//! - log-magnitude `ln(|X| + 1e-6)` ([`LOG_EPS`]).
//!
//! The FFT plan, the window and all buffers are made once ([`Stft::new`], [`StftScratch`]) and
//! reused across frames and files; a [`Stft`] is `Sync`, so threads share one and each keeps
//! its own scratch.
//!
//! (Over 450 lines: `torch.stft`'s semantics (padding, windows, framing, the FFT) in one place; 188
//! of its lines are its tests against the definition.)

use std::sync::Arc;

use kindling_core::Issues;
use realfft::num_complex::Complex32;
use realfft::{RealFftPlanner, RealToComplex};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fastmath;

/// The `eps` of the log-magnitude output, `ln(|X| + eps)`.
///
/// With samples in [-1, 1], the quantisation noise of 16-bit audio alone puts about 1e-4 in
/// every bin of a 512-point Hann-windowed frame, so 1e-6 only matters for digital silence,
/// where it gives ln(1e-6) = -13.8 instead of minus infinity. `ln(1 + |X|)` (log1p) was not
/// chosen because it is nearly linear below 1, where most bins of real audio lie, so it would
/// not give the log scale that the output is for.
pub const LOG_EPS: f32 = 1e-6;

/// Frames transformed before their results are written out, so each output row is written
/// in runs of whole cache lines.
const BLOCK: usize = 16;

/// STFT parameters, named and defaulted as in `torch.stft`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct StftConfig {
    /// FFT size; `n_fft / 2 + 1` frequency bins. Default 512 (torch has no default).
    #[schemars(range(min = 2))]
    pub n_fft: usize,
    /// Samples between frames. Default `n_fft / 4`, as torch.
    #[schemars(range(min = 1))]
    pub hop_length: Option<usize>,
    /// Length of the Hann window, at most `n_fft`. Default `n_fft`.
    #[schemars(range(min = 1))]
    pub win_length: Option<usize>,
    /// Pad `n_fft / 2` on each side so frame `t` is centred on sample `t * hop_length`.
    pub center: bool,
    /// How `center` pads.
    pub pad_mode: PadMode,
}

impl Default for StftConfig {
    fn default() -> Self {
        Self { n_fft: 512, hop_length: None, win_length: None, center: true, pad_mode: PadMode::Reflect }
    }
}

/// Padding used by `center`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "StftPadMode")]
#[serde(rename_all = "snake_case")]
pub enum PadMode {
    /// Mirror the signal around its first and last samples (torch's default).
    #[default]
    Reflect,
    /// Pad with zeros (librosa's default since 0.10).
    Constant,
}

impl StftConfig {
    /// The hop length after defaults.
    pub fn hop(&self) -> usize {
        self.hop_length.unwrap_or(self.n_fft / 4)
    }

    /// The window length after defaults.
    pub fn win(&self) -> usize {
        self.win_length.unwrap_or(self.n_fft)
    }

    /// Frequency bins, `n_fft / 2 + 1`.
    pub fn bins(&self) -> usize {
        self.n_fft / 2 + 1
    }

    /// Records every problem with these parameters (paths relative to this block).
    pub fn check(&self, issues: &mut Issues) {
        issues.require(self.n_fft >= 2, "n_fft", format!("must be at least 2, got {}", self.n_fft));
        if self.hop_length.is_some() || self.n_fft >= 4 {
            issues.require(self.hop() >= 1, "hop_length", "must be at least 1");
        } else {
            issues.push("hop_length", "is needed when n_fft < 4 (its default n_fft / 4 would be 0)");
        }
        let win = self.win();
        issues.require(
            win >= 1 && win <= self.n_fft,
            "win_length",
            format!("must be between 1 and n_fft = {}, got {win}", self.n_fft),
        );
    }
}

/// Why an STFT could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum StftError {
    /// The parameters are invalid (see [`StftConfig::check`]).
    #[error("invalid STFT parameters: {0}")]
    Config(String),
    /// The signal is too short for the padding or for one frame.
    #[error("the signal has {samples} samples, {why}")]
    TooShort {
        /// Samples in the signal.
        samples: usize,
        /// What needs more, and how many.
        why: String,
    },
    /// An output buffer has the wrong length.
    #[error("the {name} output holds {got} values, expected {expected} ({bins} bins x {frames} frames)")]
    OutputLength {
        /// Which output.
        name: &'static str,
        /// Its length.
        got: usize,
        /// `bins * frames`.
        expected: usize,
        /// Frequency bins.
        bins: usize,
        /// Frames.
        frames: usize,
    },
    /// The FFT library refused a buffer (a bug in this crate).
    #[error("FFT failed: {0}")]
    Fft(String),
}

/// A prepared STFT: FFT plan and window, built once and shared.
#[derive(Clone)]
pub struct Stft {
    config: StftConfig,
    hop: usize,
    bins: usize,
    window: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
}

impl std::fmt::Debug for Stft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stft").field("config", &self.config).finish_non_exhaustive()
    }
}

/// Reusable buffers for [`Stft::compute`]: one per thread.
#[derive(Debug, Default)]
pub struct StftScratch {
    padded: Vec<f32>,
    frame: Vec<f32>,
    spectra: Vec<Complex32>,
    fft: Vec<Complex32>,
    block_a: Vec<f32>,
    block_b: Vec<f32>,
}

/// Where [`Stft::compute`] writes; each requested output is `bins x frames`, row-major.
#[derive(Debug, Default)]
pub struct StftOutputs<'a> {
    /// The complex spectrum.
    pub complex: Option<&'a mut [Complex32]>,
    /// `|X|`.
    pub magnitude: Option<&'a mut [f32]>,
    /// `atan2(im, re)` in (-pi, pi].
    pub phase: Option<&'a mut [f32]>,
    /// `|X|^2`.
    pub power: Option<&'a mut [f32]>,
    /// `ln(|X| + LOG_EPS)`.
    pub log_magnitude: Option<&'a mut [f32]>,
}

impl Stft {
    /// Plans the FFT and builds the window.
    pub fn new(config: &StftConfig) -> Result<Self, StftError> {
        let mut issues = Issues::default();
        config.check(&mut issues);
        if !issues.is_empty() {
            let text: Vec<String> = issues.into_vec().iter().map(ToString::to_string).collect();
            return Err(StftError::Config(text.join("; ")));
        }
        let (n_fft, win) = (config.n_fft, config.win());
        let left = (n_fft - win) / 2;
        let mut window = vec![0.0f32; n_fft];
        for (n, w) in window[left..left + win].iter_mut().enumerate() {
            let phase = 2.0 * std::f64::consts::PI * n as f64 / win as f64;
            *w = (0.5 - 0.5 * phase.cos()) as f32;
        }
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n_fft);
        Ok(Self { config: config.clone(), hop: config.hop(), bins: config.bins(), window, fft })
    }

    /// The parameters.
    pub fn config(&self) -> &StftConfig {
        &self.config
    }

    /// Frequency bins, `n_fft / 2 + 1`.
    pub fn bins(&self) -> usize {
        self.bins
    }

    /// The window, zero-padded to `n_fft` and centred as torch does.
    pub fn window(&self) -> &[f32] {
        &self.window
    }

    /// Frames for a signal of `samples` samples, or why it is too short.
    pub fn frames(&self, samples: usize) -> Result<usize, StftError> {
        let n_fft = self.config.n_fft;
        let half = n_fft / 2;
        if self.config.center {
            if self.config.pad_mode == PadMode::Reflect && samples <= half {
                return Err(StftError::TooShort {
                    samples,
                    why: format!(
                        "reflect padding by n_fft / 2 = {half} needs at least {} (pad the audio or use pad_mode: constant)",
                        half + 1
                    ),
                });
            }
            if samples == 0 {
                return Err(StftError::TooShort { samples, why: "at least 1 is needed".into() });
            }
            Ok(1 + (samples + 2 * half - n_fft) / self.hop)
        } else if samples < n_fft {
            Err(StftError::TooShort { samples, why: format!("a frame without center padding needs n_fft = {n_fft}") })
        } else {
            Ok(1 + (samples - n_fft) / self.hop)
        }
    }

    /// Fresh buffers for [`Stft::compute`].
    pub fn scratch(&self) -> StftScratch {
        StftScratch::default()
    }

    /// The complex spectrum, `bins x frames` row-major.
    pub fn complex(&self, signal: &[f32]) -> Result<Vec<Complex32>, StftError> {
        let mut out = vec![Complex32::new(0.0, 0.0); self.bins * self.frames(signal.len())?];
        self.compute(signal, &mut self.scratch(), StftOutputs { complex: Some(&mut out), ..StftOutputs::default() })?;
        Ok(out)
    }

    /// Magnitude and phase, each `bins x frames` row-major, in one pass.
    pub fn magnitude_phase(&self, signal: &[f32]) -> Result<(Vec<f32>, Vec<f32>), StftError> {
        let len = self.bins * self.frames(signal.len())?;
        let (mut mag, mut phase) = (vec![0.0; len], vec![0.0; len]);
        self.compute(
            signal,
            &mut self.scratch(),
            StftOutputs { magnitude: Some(&mut mag), phase: Some(&mut phase), ..StftOutputs::default() },
        )?;
        Ok((mag, phase))
    }

    /// Transforms `signal` and writes every requested output; nothing is allocated once
    /// `scratch` has served a signal of this length.
    pub fn compute(
        &self,
        signal: &[f32],
        scratch: &mut StftScratch,
        mut out: StftOutputs<'_>,
    ) -> Result<(), StftError> {
        let frames = self.frames(signal.len())?;
        let (n_fft, bins, hop) = (self.config.n_fft, self.bins, self.hop);
        let expected = bins * frames;
        let lengths = [
            ("complex", out.complex.as_deref().map(<[Complex32]>::len)),
            ("magnitude", out.magnitude.as_deref().map(<[f32]>::len)),
            ("phase", out.phase.as_deref().map(<[f32]>::len)),
            ("power", out.power.as_deref().map(<[f32]>::len)),
            ("log_magnitude", out.log_magnitude.as_deref().map(<[f32]>::len)),
        ];
        for (name, len) in lengths {
            if let Some(got) = len.filter(|&l| l != expected) {
                return Err(StftError::OutputLength { name, got, expected, bins, frames });
            }
        }

        let StftScratch { padded, frame, spectra, fft: fft_scratch, block_a, block_b } = scratch;
        let source: &[f32] = if self.config.center {
            self.pad(signal, padded);
            padded
        } else {
            signal
        };
        frame.resize(n_fft, 0.0);
        spectra.resize(BLOCK * bins, Complex32::new(0.0, 0.0));
        fft_scratch.resize(self.fft.get_scratch_len(), Complex32::new(0.0, 0.0));
        block_a.resize(BLOCK * bins, 0.0);
        block_b.resize(BLOCK * bins, 0.0);

        for t0 in (0..frames).step_by(BLOCK) {
            let nb = BLOCK.min(frames - t0);
            for j in 0..nb {
                let start = (t0 + j) * hop;
                let segment = &source[start..start + n_fft];
                for ((f, &x), &w) in frame.iter_mut().zip(segment).zip(&self.window) {
                    *f = x * w;
                }
                self.fft
                    .process_with_scratch(frame, &mut spectra[j * bins..(j + 1) * bins], fft_scratch)
                    .map_err(|e| StftError::Fft(e.to_string()))?;
            }
            let spectra = &spectra[..nb * bins];
            let (block_a, block_b) = (&mut block_a[..nb * bins], &mut block_b[..nb * bins]);
            if let Some(dst) = out.complex.as_deref_mut() {
                scatter(spectra, dst, bins, frames, t0, nb);
            }
            match (out.magnitude.as_deref_mut(), out.phase.as_deref_mut()) {
                (Some(mag), Some(phase)) => {
                    // Real and imaginary parts apart first, so the loops below run on whole
                    // SIMD vectors.
                    for ((c, re), im) in spectra.iter().zip(block_a.iter_mut()).zip(block_b.iter_mut()) {
                        *re = c.re;
                        *im = c.im;
                    }
                    for (re, im) in block_a.iter_mut().zip(block_b.iter_mut()) {
                        let (x, y) = (*re, *im);
                        *re = (x * x + y * y).sqrt();
                        *im = fastmath::atan2(y, x);
                    }
                    scatter(block_a, mag, bins, frames, t0, nb);
                    scatter(block_b, phase, bins, frames, t0, nb);
                }
                (Some(mag), None) => {
                    for (c, m) in spectra.iter().zip(block_a.iter_mut()) {
                        *m = (c.re * c.re + c.im * c.im).sqrt();
                    }
                    scatter(block_a, mag, bins, frames, t0, nb);
                }
                (None, Some(phase)) => {
                    for (c, p) in spectra.iter().zip(block_b.iter_mut()) {
                        *p = fastmath::atan2(c.im, c.re);
                    }
                    scatter(block_b, phase, bins, frames, t0, nb);
                }
                (None, None) => {}
            }
            if let Some(power) = out.power.as_deref_mut() {
                for (c, p) in spectra.iter().zip(block_a.iter_mut()) {
                    *p = c.re * c.re + c.im * c.im;
                }
                scatter(block_a, power, bins, frames, t0, nb);
            }
            if let Some(log_mag) = out.log_magnitude.as_deref_mut() {
                for (c, l) in spectra.iter().zip(block_a.iter_mut()) {
                    *l = ((c.re * c.re + c.im * c.im).sqrt() + LOG_EPS).ln();
                }
                scatter(block_a, log_mag, bins, frames, t0, nb);
            }
        }
        Ok(())
    }

    /// Writes the centre-padded signal into `padded` (the caller checked the length).
    fn pad(&self, signal: &[f32], padded: &mut Vec<f32>) {
        let half = self.config.n_fft / 2;
        let n = signal.len();
        padded.clear();
        padded.reserve(n + 2 * half);
        match self.config.pad_mode {
            PadMode::Reflect => {
                padded.extend(signal[1..=half].iter().rev());
                padded.extend_from_slice(signal);
                padded.extend(signal[n - 1 - half..n - 1].iter().rev());
            }
            PadMode::Constant => {
                padded.resize(half, 0.0);
                padded.extend_from_slice(signal);
                padded.resize(n + 2 * half, 0.0);
            }
        }
    }
}

/// Copies a block laid out `[frame][bin]` into columns `t0..t0 + nb` of a `[bin][frame]` output.
fn scatter<T: Copy>(block: &[T], out: &mut [T], bins: usize, frames: usize, t0: usize, nb: usize) {
    for (k, row) in out.chunks_exact_mut(frames).enumerate().take(bins) {
        for (j, dst) in row[t0..t0 + nb].iter_mut().enumerate() {
            *dst = block[j * bins + k];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, in f64: reflect or zero padding by index arithmetic, the periodic Hann
    /// window placed as torch places it, and a direct complex sum per bin.
    fn direct_dft(x: &[f32], c: &StftConfig) -> (usize, usize, Vec<(f64, f64)>) {
        let (n_fft, hop, win) = (c.n_fft, c.hop(), c.win());
        let half = if c.center { n_fft / 2 } else { 0 };
        let n = x.len() as i64;
        let sample = |i: i64| -> f64 {
            let j = i - half as i64;
            let j = match c.pad_mode {
                PadMode::Reflect if j < 0 => -j,
                PadMode::Reflect if j >= n => 2 * (n - 1) - j,
                PadMode::Constant if j < 0 || j >= n => return 0.0,
                _ => j,
            };
            f64::from(x[j as usize])
        };
        let left = (n_fft - win) / 2;
        let w = |m: usize| -> f64 {
            if m < left || m >= left + win {
                0.0
            } else {
                0.5 - 0.5 * (2.0 * std::f64::consts::PI * (m - left) as f64 / win as f64).cos()
            }
        };
        let padded_len = x.len() + 2 * half;
        let frames = 1 + (padded_len - n_fft) / hop;
        let bins = n_fft / 2 + 1;
        let mut out = vec![(0.0, 0.0); bins * frames];
        for t in 0..frames {
            for k in 0..bins {
                let (mut re, mut im) = (0.0, 0.0);
                for m in 0..n_fft {
                    let v = w(m) * sample((t * hop + m) as i64);
                    let angle = -2.0 * std::f64::consts::PI * (k * m) as f64 / n_fft as f64;
                    re += v * angle.cos();
                    im += v * angle.sin();
                }
                out[k * frames + t] = (re, im);
            }
        }
        (bins, frames, out)
    }

    fn signal(len: usize) -> Vec<f32> {
        (0..len)
            .map(|i| ((i as f32 * 0.37).sin() + 0.5 * (i as f32 * 1.91).cos() + 0.01 * i as f32).clamp(-1.5, 1.5))
            .collect()
    }

    /// Compares every output of [`Stft::compute`] with the direct DFT: complex values and
    /// magnitudes within 1e-4 of the largest magnitude, phases within 1e-4 rad wherever the
    /// magnitude exceeds 1e-3 of the largest (elsewhere the phase is ill-conditioned).
    fn check_against_dft(config: StftConfig, len: usize) {
        let x = signal(len);
        let (bins, frames, want) = direct_dft(&x, &config);
        let stft = Stft::new(&config).unwrap();
        assert_eq!(stft.frames(len).unwrap(), frames, "{config:?}");
        let n = bins * frames;
        let (mut cx, mut mag, mut phase, mut power, mut logm) =
            (vec![Complex32::new(0.0, 0.0); n], vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        let outputs = StftOutputs {
            complex: Some(&mut cx),
            magnitude: Some(&mut mag),
            phase: Some(&mut phase),
            power: Some(&mut power),
            log_magnitude: Some(&mut logm),
        };
        stft.compute(&x, &mut stft.scratch(), outputs).unwrap();
        let max = want.iter().map(|&(re, im)| re.hypot(im)).fold(0.0, f64::max);
        let tol = 1e-4 * max;
        for (i, &(re, im)) in want.iter().enumerate() {
            let at = format!("{config:?} bin {} frame {}", i / frames, i % frames);
            let m = re.hypot(im);
            assert!((f64::from(cx[i].re) - re).abs() <= tol && (f64::from(cx[i].im) - im).abs() <= tol, "{at}");
            assert!((f64::from(mag[i]) - m).abs() <= tol, "{at}: {} vs {m}", mag[i]);
            assert!((f64::from(power[i]) - m * m).abs() <= 2.0 * tol * max, "{at}");
            assert!((f64::from(logm[i]) - (m + f64::from(LOG_EPS)).ln()).abs() <= 1e-4 || m < 1e-3 * max, "{at}");
            assert!(phase[i] > -std::f32::consts::PI && phase[i] <= std::f32::consts::PI, "{at}");
            if m > 1e-3 * max {
                let d = (f64::from(phase[i]) - im.atan2(re)).abs();
                let d = d.min(2.0 * std::f64::consts::PI - d);
                assert!(d <= 1e-4, "{at}: phase off by {d}");
            }
        }
    }

    #[test]
    fn matches_the_definition_with_reflect_padding_at_the_edges() {
        check_against_dft(StftConfig { n_fft: 16, hop_length: Some(4), ..StftConfig::default() }, 101);
        // hop other than n_fft / 2 and not dividing the length; the edges reach into the padding.
        check_against_dft(StftConfig { n_fft: 64, hop_length: Some(23), ..StftConfig::default() }, 300);
        // The experiment's parameters on a short signal; 2 blocks of frames.
        check_against_dft(StftConfig { n_fft: 512, hop_length: Some(256), ..StftConfig::default() }, 5000);
    }

    #[test]
    fn matches_the_definition_with_a_window_shorter_than_n_fft() {
        check_against_dft(
            StftConfig { n_fft: 32, hop_length: Some(5), win_length: Some(20), ..StftConfig::default() },
            97,
        );
        check_against_dft(
            StftConfig { n_fft: 32, hop_length: Some(8), win_length: Some(13), ..StftConfig::default() },
            64,
        );
        // Odd n_fft: the bins stop at floor(n_fft / 2).
        check_against_dft(
            StftConfig { n_fft: 15, hop_length: Some(3), win_length: Some(11), ..StftConfig::default() },
            50,
        );
    }

    #[test]
    fn matches_the_definition_without_center_and_with_zero_padding() {
        check_against_dft(StftConfig { n_fft: 64, hop_length: Some(32), center: false, ..StftConfig::default() }, 300);
        check_against_dft(
            StftConfig { n_fft: 32, hop_length: Some(7), pad_mode: PadMode::Constant, ..StftConfig::default() },
            90,
        );
        // Constant padding accepts a signal shorter than the reflection needs.
        check_against_dft(
            StftConfig { n_fft: 32, hop_length: Some(7), pad_mode: PadMode::Constant, ..StftConfig::default() },
            5,
        );
    }

    #[test]
    fn frame_count_follows_torch() {
        let stft = Stft::new(&StftConfig { n_fft: 512, hop_length: Some(256), ..StftConfig::default() }).unwrap();
        assert_eq!(stft.bins(), 257);
        assert_eq!(stft.frames(97_600).unwrap(), 382);
        let (mag, phase) = stft.magnitude_phase(&signal(97_600)).unwrap();
        assert_eq!((mag.len(), phase.len()), (257 * 382, 257 * 382));
        // torch's default hop is n_fft / 4.
        assert_eq!(Stft::new(&StftConfig::default()).unwrap().frames(97_600).unwrap(), 763);
    }

    #[test]
    fn too_short_signals_and_bad_buffers_are_errors() {
        let stft = Stft::new(&StftConfig { n_fft: 512, hop_length: Some(256), ..StftConfig::default() }).unwrap();
        let err = stft.magnitude_phase(&signal(256)).unwrap_err().to_string();
        assert!(err.contains("256 samples") && err.contains("at least 257"), "{err}");
        assert!(stft.magnitude_phase(&signal(257)).is_ok());
        assert!(stft.magnitude_phase(&[]).is_err());
        let plain = Stft::new(&StftConfig { n_fft: 64, center: false, ..StftConfig::default() }).unwrap();
        assert!(plain.complex(&signal(63)).is_err());
        assert_eq!(plain.complex(&signal(64)).unwrap().len(), 33);

        let mut short = vec![0.0; 10];
        let err = stft
            .compute(
                &signal(1000),
                &mut stft.scratch(),
                StftOutputs { phase: Some(&mut short), ..StftOutputs::default() },
            )
            .unwrap_err();
        assert!(matches!(err, StftError::OutputLength { name: "phase", got: 10, .. }), "{err}");
    }

    #[test]
    fn invalid_parameters_are_listed() {
        let err =
            Stft::new(&StftConfig { n_fft: 1, hop_length: Some(0), win_length: Some(9), ..StftConfig::default() })
                .unwrap_err()
                .to_string();
        assert!(err.contains("n_fft") && err.contains("hop_length") && err.contains("win_length"), "{err}");
        assert!(serde_json::from_str::<StftConfig>(r#"{"n_fft": 512, "hop": 256}"#).is_err());
        let c: StftConfig = serde_json::from_str(r#"{"n_fft": 400, "hop_length": 160}"#).unwrap();
        assert_eq!((c.hop(), c.win(), c.center), (160, 400, true));
    }

    #[test]
    fn scratch_is_reused_across_lengths() {
        let stft = Stft::new(&StftConfig { n_fft: 64, hop_length: Some(16), ..StftConfig::default() }).unwrap();
        let mut scratch = stft.scratch();
        for len in [1000, 100, 3000] {
            let x = signal(len);
            let mut mag = vec![0.0; stft.bins() * stft.frames(len).unwrap()];
            stft.compute(&x, &mut scratch, StftOutputs { magnitude: Some(&mut mag), ..StftOutputs::default() })
                .unwrap();
            assert_eq!(mag, stft.magnitude_phase(&x).unwrap().0);
        }
    }
}
