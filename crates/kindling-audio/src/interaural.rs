//! Interaural features: what differs between the ears, with the source's own spectrum cancelled.
//!
//! From the one-sided STFTs `L` and `R` of the two ears (the `torch.stft` conventions of
//! [`crate::stft`]), per bin `k` and frame `t`:
//!
//! - the normalised cross-spectrum `P = L conj(R) / |L conj(R)|`, a unit complex number whose
//!   angle is the interaural phase difference `angle(L) - angle(R)`; where `L conj(R)` is zero
//!   (digital silence in either ear) it carries no phase, and `P = 0`;
//! - `ipd_cos = Re(P)`, `ipd_sin = Im(P)`: the cosine and sine of the interaural phase
//!   difference, in [-1, 1]. For a right ear that hears the left ear's signal `d` seconds late,
//!   `R = L e^(-2 pi i f d)` and the phase difference is `+2 pi f d` (wrapped);
//! - `ild = ln(|L| + eps) - ln(|R| + eps)` with the log-magnitude's `eps` ([`crate::stft::LOG_EPS`]),
//!   exactly `l_logmag - r_logmag`: positive where the left ear is louder;
//! - `gcc_phat`: per frame, the generalised cross-correlation with the phase transform,
//!   evaluated at [`GCC_MAX_LAG_S`]-bounded fractional lags, one lag per row so the plane stacks
//!   with the `F x T` planes: row `r` of `F` holds lag
//!   `tau_r = max_lag (2 r / (F - 1) - 1)` seconds ([`gcc_lags`]), and
//!   `G[r, t] = (1 / n_fft) sum_k w_k Re(P[k, t] e^(-2 pi i k tau_r sr / n_fft))`, `w_k` 1 for
//!   the DC and Nyquist bins and 2 for the others (the one-sided sum of the full spectrum), so
//!   `G` is the inverse DFT of `P` read at lag `tau`, in [-1, 1], 1 at the lag of a pure delay.
//!   **Sign**: a positive lag means the left ear leads (the sound reaches the left ear first,
//!   a source on the listener's left); `G` is the PHAT-weighted `sum_n l[n] r[n + tau]`, the
//!   textbook `R(tau) = IDFT(L conj(R))(tau)` read at `-tau`. With 16 kHz and `n_fft` 512 the
//!   257 rows step by 1/8 sample (7.8 us) from -1 ms to +1 ms, wider than a human head's ITD
//!   (about 0.7 ms at 90 degrees).
//!
//! - `coherence`: the interaural coherence `|sum L conj(R)| / sqrt(sum |L|^2 sum |R|^2)`, the
//!   sums over a window of `coherence_frames` frames centred on the frame (clipped at the ends
//!   of the signal), in [0, 1]: 1 where one ear hears a filtered copy of the other (a single
//!   source in the free field), near `1 / sqrt(window)` where the ears hear unrelated sound
//!   (diffuse noise, late reverberation); 0 where either ear is silent over the window.
//!   With `coherence_weighting`, `P` is multiplied by it before `ipd_cos`, `ipd_sin` and
//!   `gcc_phat` are taken, so the bins that noise and reverberation dominate count less.
//!
//! [`gcc_phat_itd`] is the classical estimator built from the same cross-spectrum: `P` summed
//! over all frames, its correlation read at lags of 1/`upsample` sample up to `max_lag_s`, the
//! lag of the peak being the file's interaural time difference.

use realfft::num_complex::Complex32;

use crate::stft::{LOG_EPS, Stft, StftConfig, StftError};
use crate::wav::Audio;

/// The largest lag of the `gcc_phat` plane, in seconds: rows span `-1 ms ..= +1 ms`. Part of
/// what the cached values mean; changing it needs a new cache format version.
pub const GCC_MAX_LAG_S: f64 = 1e-3;

/// The lag in seconds of each of the `rows` rows of a `gcc_phat` plane: evenly spaced from
/// `-max_lag_s` to `+max_lag_s` (one row: lag 0).
pub fn gcc_lags(rows: usize, max_lag_s: f64) -> Vec<f64> {
    if rows < 2 {
        return vec![0.0; rows];
    }
    (0..rows).map(|r| max_lag_s * (2.0 * r as f64 / (rows - 1) as f64 - 1.0)).collect()
}

/// Where [`compute`] writes; each requested output is `bins x frames`, row-major.
#[derive(Debug, Default)]
pub(crate) struct InterauralOutputs<'a> {
    pub(crate) ipd_cos: Option<&'a mut [f32]>,
    pub(crate) ipd_sin: Option<&'a mut [f32]>,
    pub(crate) ild: Option<&'a mut [f32]>,
    pub(crate) gcc_phat: Option<&'a mut [f32]>,
    pub(crate) coherence: Option<&'a mut [f32]>,
}

impl InterauralOutputs<'_> {
    pub(crate) fn any(&self) -> bool {
        self.ipd_cos.is_some()
            || self.ipd_sin.is_some()
            || self.ild.is_some()
            || self.gcc_phat.is_some()
            || self.coherence.is_some()
    }
}

/// How the coherence is estimated and used: the window of [`coherence`] in frames (odd), and
/// whether it weights the phase planes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CoherenceUse {
    pub(crate) frames: usize,
    pub(crate) weighting: bool,
}

/// The interaural coherence of every bin and frame (see the module's documentation) over the
/// `window` frames centred on each (`window / 2` on either side, clipped at the ends), into
/// `out` (`bins x frames`, row-major). Summed directly in f64 per window rather than by running
/// sums, so a silent stretch after a loud one is exactly 0, not the rounding of a difference.
pub(crate) fn coherence(
    left: &[Complex32],
    right: &[Complex32],
    bins: usize,
    frames: usize,
    window: usize,
    out: &mut [f32],
) {
    let half = window / 2;
    let mut terms = vec![[0.0f64; 4]; frames];
    for k in 0..bins {
        let row = k * frames..(k + 1) * frames;
        for ((term, l), r) in terms.iter_mut().zip(&left[row.clone()]).zip(&right[row.clone()]) {
            let (lr, li, rr, ri) = (f64::from(l.re), f64::from(l.im), f64::from(r.re), f64::from(r.im));
            *term = [lr * rr + li * ri, li * rr - lr * ri, lr * lr + li * li, rr * rr + ri * ri];
        }
        for (t, o) in out[row].iter_mut().enumerate() {
            let mut s = [0.0f64; 4];
            for term in &terms[t.saturating_sub(half)..(t + half + 1).min(frames)] {
                for (a, b) in s.iter_mut().zip(term) {
                    *a += b;
                }
            }
            let den = (s[2] * s[3]).sqrt();
            *o = if den > 0.0 && den.is_finite() { (s[0].hypot(s[1]) / den).min(1.0) as f32 } else { 0.0 };
        }
    }
}

/// The normalised cross-spectrum `P = L conj(R) / |L conj(R)|` (0 where the product is 0) of
/// one bin, as `(re, im)`.
fn phat(l: Complex32, r: Complex32) -> (f32, f32) {
    // In f64: the product of two quiet bins (1e-20 each) would underflow in f32.
    let (lr, li, rr, ri) = (f64::from(l.re), f64::from(l.im), f64::from(r.re), f64::from(r.im));
    let (re, im) = (lr * rr + li * ri, li * rr - lr * ri);
    let m = re.hypot(im);
    if m > 0.0 && m.is_finite() { ((re / m) as f32, (im / m) as f32) } else { (0.0, 0.0) }
}

/// The one-sided weight of bin `k` of an `n_fft`-point spectrum: 1 for DC and Nyquist, else 2.
fn weight(k: usize, n_fft: usize) -> f64 {
    if k == 0 || 2 * k == n_fft { 1.0 } else { 2.0 }
}

/// The shape of the two ears' spectra and the STFT they come from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Grid {
    pub(crate) bins: usize,
    pub(crate) frames: usize,
    pub(crate) n_fft: usize,
    pub(crate) sample_rate: u32,
}

/// Writes the requested interaural planes from the complex STFTs of the two ears (`bins x
/// frames` each, row-major, as [`Stft::compute`] writes them). The caller checked the lengths.
pub(crate) fn compute(
    left: &[Complex32],
    right: &[Complex32],
    grid: Grid,
    coherence_use: CoherenceUse,
    out: InterauralOutputs<'_>,
) {
    let Grid { bins, frames, n_fft, sample_rate } = grid;
    let InterauralOutputs { ipd_cos, ipd_sin, ild, gcc_phat, coherence: coherence_out } = out;
    if let Some(ild) = ild {
        for ((d, l), r) in ild.iter_mut().zip(left).zip(right) {
            // The same expression as the STFT's log-magnitude, so `ild` is `l_logmag - r_logmag`
            // to the last bit.
            let ll = ((l.re * l.re + l.im * l.im).sqrt() + LOG_EPS).ln();
            let rl = ((r.re * r.re + r.im * r.im).sqrt() + LOG_EPS).ln();
            *d = ll - rl;
        }
    }
    let phase_planes = ipd_cos.is_some() || ipd_sin.is_some() || gcc_phat.is_some();
    let weighting = coherence_use.weighting && phase_planes;
    // The coherence is computed once: into its plane when asked for, else (only to weight)
    // into a buffer of its own.
    let mut own = Vec::new();
    let target: Option<&mut [f32]> = match coherence_out {
        Some(out) => Some(out),
        None if weighting => {
            own.resize(bins * frames, 0.0f32);
            Some(&mut own)
        }
        None => None,
    };
    let gamma = target.map(|g| {
        coherence(left, right, bins, frames, coherence_use.frames, g);
        &*g
    });
    if !phase_planes {
        return;
    }
    let (mut re, mut im) = (vec![0.0f32; bins * frames], vec![0.0f32; bins * frames]);
    for (((pr, pi), l), r) in re.iter_mut().zip(im.iter_mut()).zip(left).zip(right) {
        (*pr, *pi) = phat(*l, *r);
    }
    if let (true, Some(g)) = (weighting, gamma) {
        for ((pr, pi), w) in re.iter_mut().zip(im.iter_mut()).zip(g) {
            *pr *= w;
            *pi *= w;
        }
    }
    if let Some(g) = gcc_phat {
        correlate(&re, &im, bins, frames, n_fft, sample_rate, g);
    }
    if let Some(c) = ipd_cos {
        c.copy_from_slice(&re);
    }
    if let Some(s) = ipd_sin {
        s.copy_from_slice(&im);
    }
}

/// `G[r, t] = sum_k (C[r, k] P_re[k, t] + S[r, k] P_im[k, t])`, with `C` and `S` the weighted
/// cosines and sines of `2 pi k tau_r sr / n_fft`: a matrix product over whole rows of frames.
fn correlate(re: &[f32], im: &[f32], bins: usize, frames: usize, n_fft: usize, sample_rate: u32, out: &mut [f32]) {
    let lags = gcc_lags(bins, GCC_MAX_LAG_S);
    let mut acc = vec![0.0f32; frames];
    for (r, row) in out.chunks_exact_mut(frames).enumerate().take(bins) {
        acc.iter_mut().for_each(|a| *a = 0.0);
        let turns = lags[r] * f64::from(sample_rate) / n_fft as f64;
        for k in 0..bins {
            let theta = 2.0 * std::f64::consts::PI * k as f64 * turns;
            let w = weight(k, n_fft) / n_fft as f64;
            let (c, s) = ((w * theta.cos()) as f32, (w * theta.sin()) as f32);
            let (pr, pi) = (&re[k * frames..(k + 1) * frames], &im[k * frames..(k + 1) * frames]);
            for ((a, &x), &y) in acc.iter_mut().zip(pr).zip(pi) {
                *a += c * x + s * y;
            }
        }
        row.copy_from_slice(&acc);
    }
}

/// The parameters of [`gcc_phat_itd`].
#[derive(Clone, Debug, PartialEq)]
pub struct ItdConfig {
    /// The STFT the cross-spectrum is taken with. Default `n_fft` 512, hop 256.
    pub stft: StftConfig,
    /// The largest lag searched, in seconds. Default 1.2 ms.
    pub max_lag_s: f64,
    /// Lags are searched in steps of `1 / upsample` sample. Default 8.
    pub upsample: usize,
}

impl Default for ItdConfig {
    fn default() -> Self {
        Self {
            stft: StftConfig { n_fft: 512, hop_length: Some(256), ..StftConfig::default() },
            max_lag_s: 1.2e-3,
            upsample: 8,
        }
    }
}

/// Why [`gcc_phat_itd`] could not estimate an ITD.
#[derive(Debug, thiserror::Error)]
pub enum ItdError {
    /// The parameters are invalid.
    #[error("invalid ITD parameters: {0}")]
    Config(String),
    /// The audio is not stereo, or its channels differ in length.
    #[error("{0}")]
    Audio(String),
    /// The STFT could not be taken (a signal too short).
    #[error(transparent)]
    Stft(#[from] StftError),
}

/// The interaural time difference of a stereo signal, in seconds, positive when the left ear
/// leads: the classical GCC-PHAT estimator. The phase-transform-weighted cross-spectrum
/// `P = L conj(R) / |L conj(R)|` of every STFT frame is summed over frames, and its
/// cross-correlation `sum_k w_k Re(P_k e^(-2 pi i k tau sr / n_fft))` is read at the lags
/// `j / (upsample sr)`, `|j| <= max_lag_s upsample sr`; the lag of the largest value wins (the
/// one nearest zero among equals). Evaluating the correlation at fractional lags is what an
/// `upsample`-times zero-padded inverse FFT gives, without the padding.
pub fn gcc_phat_itd(audio: &Audio, config: &ItdConfig) -> Result<f64, ItdError> {
    if audio.channels.len() != 2 {
        return Err(ItdError::Audio(format!("needs 2 channels, the audio has {}", audio.channels.len())));
    }
    let (left, right) = (&audio.channels[0], &audio.channels[1]);
    if left.len() != right.len() {
        return Err(ItdError::Audio(format!(
            "the left channel has {} samples and the right {}",
            left.len(),
            right.len()
        )));
    }
    if audio.sample_rate == 0 {
        return Err(ItdError::Config("the sample rate is 0".into()));
    }
    if !config.max_lag_s.is_finite() || config.max_lag_s < 0.0 {
        return Err(ItdError::Config(format!("max_lag_s must be finite and >= 0, got {}", config.max_lag_s)));
    }
    if config.upsample == 0 {
        return Err(ItdError::Config("upsample must be at least 1".into()));
    }
    let stft = Stft::new(&config.stft)?;
    let (l, r) = (stft.complex(left)?, stft.complex(right)?);
    let (bins, n_fft) = (stft.bins(), config.stft.n_fft);
    let frames = l.len() / bins;
    let mut sum = vec![(0.0f64, 0.0f64); bins];
    for (k, s) in sum.iter_mut().enumerate() {
        for t in 0..frames {
            let (re, im) = phat(l[k * frames + t], r[k * frames + t]);
            s.0 += f64::from(re);
            s.1 += f64::from(im);
        }
    }
    let rate = f64::from(audio.sample_rate);
    let steps = (config.max_lag_s * config.upsample as f64 * rate).floor() as i64;
    let step = 1.0 / (config.upsample as f64 * rate);
    let value = |tau: f64| -> f64 {
        let turns = tau * rate / n_fft as f64;
        sum.iter()
            .enumerate()
            .map(|(k, &(re, im))| {
                let theta = 2.0 * std::f64::consts::PI * k as f64 * turns;
                weight(k, n_fft) * (re * theta.cos() + im * theta.sin())
            })
            .sum()
    };
    // From lag 0 outwards, so ties go to the smaller lag.
    let mut best = (value(0.0), 0.0);
    for j in 1..=steps {
        for tau in [j as f64 * step, -(j as f64) * step] {
            let v = value(tau);
            if v > best.0 {
                best = (v, tau);
            }
        }
    }
    Ok(best.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::f64::consts::PI;

    /// A deterministic uniform value in [-0.5, 0.5) per call (xorshift64).
    struct Noise(u64);

    impl Noise {
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        }
    }

    /// `sum_i a_i sin(2 pi f_i (n / sr - delay) + phi_i)`, scaled by `gain`: a sum of sinusoids
    /// delayed by any real `delay` seconds, exactly.
    fn tones(samples: usize, sr: f64, parts: &[(f64, f64, f64)], delay: f64, gain: f64) -> Vec<f32> {
        (0..samples)
            .map(|n| {
                let t = n as f64 / sr - delay;
                (gain * parts.iter().map(|&(f, a, phi)| a * (2.0 * PI * f * t + phi).sin()).sum::<f64>()) as f32
            })
            .collect()
    }

    fn stft(n_fft: usize, hop: usize) -> Stft {
        Stft::new(&StftConfig { n_fft, hop_length: Some(hop), ..StftConfig::default() }).unwrap()
    }

    /// Every interaural plane of `left`, `right`: `[ipd_cos, ipd_sin, ild, gcc_phat]`.
    fn planes(stft: &Stft, left: &[f32], right: &[f32], sr: u32) -> ([Vec<f32>; 4], usize) {
        let (l, r) = (stft.complex(left).unwrap(), stft.complex(right).unwrap());
        let bins = stft.bins();
        let frames = l.len() / bins;
        let mut p: [Vec<f32>; 4] = std::array::from_fn(|_| vec![f32::NAN; bins * frames]);
        let [a, b, c, d] = &mut p;
        let out =
            InterauralOutputs { ipd_cos: Some(a), ipd_sin: Some(b), ild: Some(c), gcc_phat: Some(d), coherence: None };
        let unweighted = CoherenceUse { frames: 5, weighting: false };
        let grid = Grid { bins, frames, n_fft: stft.config().n_fft, sample_rate: sr };
        compute(&l, &r, grid, unweighted, out);
        (p, frames)
    }

    /// `[ipd_cos, ipd_sin, gcc_phat, coherence]` with the coherence over `window` frames,
    /// weighting the phase planes or not.
    fn weighted_planes(stft: &Stft, left: &[f32], right: &[f32], window: usize, weighting: bool) -> [Vec<f32>; 4] {
        let (l, r) = (stft.complex(left).unwrap(), stft.complex(right).unwrap());
        let bins = stft.bins();
        let frames = l.len() / bins;
        let mut p: [Vec<f32>; 4] = std::array::from_fn(|_| vec![f32::NAN; bins * frames]);
        let [a, b, c, d] = &mut p;
        let out =
            InterauralOutputs { ipd_cos: Some(a), ipd_sin: Some(b), ild: None, gcc_phat: Some(c), coherence: Some(d) };
        let grid = Grid { bins, frames, n_fft: stft.config().n_fft, sample_rate: 16_000 };
        compute(&l, &r, grid, CoherenceUse { frames: window, weighting }, out);
        p
    }

    #[test]
    fn coherence_is_its_definition_high_for_one_source_and_low_for_unrelated_ears() {
        let (n_fft, hop, samples) = (256, 128, 16_000);
        let stft = stft(n_fft, hop);
        let bins = stft.bins();
        let mut noise = Noise(5);
        let source: Vec<f32> = (0..samples + 8).map(|_| noise.next() as f32).collect();
        let other: Vec<f32> = (0..samples).map(|_| noise.next() as f32).collect();
        // One source, the right ear hearing it 3 samples late and quieter: coherent.
        let (left, late) = (&source[8..], &source[5..5 + samples]);
        let right: Vec<f32> = late.iter().map(|x| 0.5 * x).collect();
        let [.., coherent] = weighted_planes(&stft, left, &right, 7, false);
        let frames = coherent.len() / bins;
        let mean = |p: &[f32]| p.iter().map(|&x| f64::from(x)).sum::<f64>() / p.len() as f64;
        assert!(mean(&coherent) > 0.97, "{}", mean(&coherent));
        // Unrelated noise in each ear: about 1 / sqrt(7) on average, far below.
        let [.., unrelated] = weighted_planes(&stft, left, &other, 7, false);
        assert!((0.2..0.5).contains(&mean(&unrelated)), "{}", mean(&unrelated));
        // The definition in f64 from the complex STFTs, windows clipped at both ends.
        let (l, r) = (stft.complex(left).unwrap(), stft.complex(&other).unwrap());
        for k in [0, 1, 40, bins - 1] {
            for t in [0, 1, 3, frames / 2, frames - 2, frames - 1] {
                let (mut re, mut im, mut pl, mut pr) = (0.0, 0.0, 0.0, 0.0);
                for u in t.saturating_sub(3)..=(t + 3).min(frames - 1) {
                    let (a, b) = (l[k * frames + u], r[k * frames + u]);
                    let (a, b) = ((f64::from(a.re), f64::from(a.im)), (f64::from(b.re), f64::from(b.im)));
                    re += a.0 * b.0 + a.1 * b.1;
                    im += a.1 * b.0 - a.0 * b.1;
                    pl += a.0 * a.0 + a.1 * a.1;
                    pr += b.0 * b.0 + b.1 * b.1;
                }
                let want = (re * re + im * im).sqrt() / (pl * pr).sqrt();
                let got = f64::from(unrelated[k * frames + t]);
                assert!((got - want).abs() < 1e-5, "bin {k} frame {t}: {got} vs {want}");
            }
        }
        // A wider window averages more unrelated frames: lower still.
        let [.., wide] = weighted_planes(&stft, left, &other, 31, false);
        assert!(mean(&wide) < mean(&unrelated) - 0.1, "{} vs {}", mean(&wide), mean(&unrelated));
        // Silence in one ear: 0, not NaN.
        let [.., silent] = weighted_planes(&stft, left, &vec![0.0; samples], 7, false);
        assert!(silent.iter().all(|&x| x == 0.0));
    }

    #[test]
    fn coherence_weighting_scales_the_phase_planes_by_the_coherence() {
        let stft = stft(256, 128);
        let mut noise = Noise(9);
        let left: Vec<f32> = (0..8000).map(|_| noise.next() as f32).collect();
        // Half the right ear is the left ear delayed, half unrelated noise.
        let right: Vec<f32> = (0..8000usize).map(|n| 0.5 * left[n.saturating_sub(2)] + noise.next() as f32).collect();
        let [cos, sin, gcc, gamma] = weighted_planes(&stft, &left, &right, 5, false);
        let [wcos, wsin, wgcc, wgamma] = weighted_planes(&stft, &left, &right, 5, true);
        assert_eq!(gamma, wgamma);
        assert!(gamma.iter().any(|&g| g < 0.5) && gamma.iter().any(|&g| g > 0.9));
        for i in 0..cos.len() {
            assert!((wcos[i] - gamma[i] * cos[i]).abs() < 1e-6, "{i}: {} vs {} x {}", wcos[i], gamma[i], cos[i]);
            assert!((wsin[i] - gamma[i] * sin[i]).abs() < 1e-6);
        }
        // The GCC image of the weighted cross-spectrum, from its definition in f64.
        let bins = stft.bins();
        let frames = cos.len() / bins;
        let lags = gcc_lags(bins, GCC_MAX_LAG_S);
        for t in [1, frames / 2] {
            for (row, &tau) in lags.iter().enumerate().step_by(16) {
                let mut want = 0.0;
                for k in 0..bins {
                    let i = k * frames + t;
                    let theta = 2.0 * PI * k as f64 * tau * 16_000.0 / 256.0;
                    let w = if k == 0 || k == bins - 1 { 1.0 } else { 2.0 };
                    want += w * (f64::from(wcos[i]) * theta.cos() + f64::from(wsin[i]) * theta.sin());
                }
                want /= 256.0;
                let got = f64::from(wgcc[row * frames + t]);
                assert!((got - want).abs() < 1e-4, "row {row} frame {t}: {got} vs {want}");
            }
        }
        assert_ne!(gcc, wgcc);
    }

    #[test]
    fn ipd_and_ild_of_a_delayed_attenuated_copy_are_the_delay_and_the_gain() {
        // Sinusoids centred on every third bin: a bin-centred tone leaks into its two
        // neighbours only (periodic Hann), so bins 3m hold one tone each and, away from the
        // padded edges, the right ear's bin is exactly the left one delayed and scaled.
        let (sr, n_fft, hop, samples) = (16_000.0, 256, 64, 4000);
        let mut noise = Noise(7);
        let parts: Vec<(f64, f64, f64)> =
            (1..43).map(|m| (3.0 * m as f64 * sr / n_fft as f64, 0.02, 2.0 * PI * noise.next())).collect();
        let (delay, gain) = (0.31e-3, 0.5);
        let left = tones(samples, sr, &parts, 0.0, 1.0);
        let right = tones(samples, sr, &parts, delay, gain);
        let stft = stft(n_fft, hop);
        let ([cos, sin, ild, _], frames) = planes(&stft, &left, &right, 16_000);
        let interior = (n_fft / 2).div_ceil(hop)..=(samples - n_fft / 2) / hop;
        for m in 1..43 {
            let k = 3 * m;
            let f = k as f64 * sr / n_fft as f64;
            // angle(L) - angle(R) = 2 pi f d: the right ear hears the same tone d later.
            let ipd = 2.0 * PI * f * delay;
            for t in interior.clone() {
                let i = k * frames + t;
                assert!(
                    (f64::from(cos[i]) - ipd.cos()).abs() < 2e-3,
                    "bin {k} frame {t}: cos {} vs {}",
                    cos[i],
                    ipd.cos()
                );
                assert!(
                    (f64::from(sin[i]) - ipd.sin()).abs() < 2e-3,
                    "bin {k} frame {t}: sin {} vs {}",
                    sin[i],
                    ipd.sin()
                );
                assert!((f64::from(ild[i]) - 2f64.ln()).abs() < 1e-3, "bin {k} frame {t}: ild {}", ild[i]);
            }
        }
        // Everywhere, the planes are the definitions: the cosine and sine of the difference of
        // the STFT's phases, and the difference of its log-magnitudes.
        let (l_mag, l_phase) = stft.magnitude_phase(&left).unwrap();
        let (r_mag, r_phase) = stft.magnitude_phase(&right).unwrap();
        for i in 0..cos.len() {
            let d = f64::from(l_phase[i]) - f64::from(r_phase[i]);
            if l_mag[i] * r_mag[i] > 1e-6 {
                assert!((f64::from(cos[i]) - d.cos()).abs() < 1e-4 && (f64::from(sin[i]) - d.sin()).abs() < 1e-4);
            }
            let want = (l_mag[i] + LOG_EPS).ln() - (r_mag[i] + LOG_EPS).ln();
            assert!((ild[i] - want).abs() <= 1e-5 * want.abs().max(1.0), "{} vs {want}", ild[i]);
        }
    }

    #[test]
    fn silent_bins_carry_no_phase() {
        let stft = stft(64, 16);
        let left: Vec<f32> = (0..640).map(|n| (n as f32 * 0.3).sin()).collect();
        let ([cos, sin, ild, gcc], _) = planes(&stft, &left, &vec![0.0; 640], 16_000);
        assert!(cos.iter().chain(&sin).chain(&gcc).all(|&x| x == 0.0));
        assert!(ild.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn gcc_phat_image_peaks_at_the_row_of_the_delay_and_matches_its_definition() {
        let (sr, n_fft, hop, samples) = (16_000u32, 512, 256, 8000);
        let mut noise = Noise(3);
        let source: Vec<f32> = (0..samples + 20).map(|_| noise.next() as f32).collect();
        let stft = stft(n_fft, hop);
        let lags = gcc_lags(stft.bins(), GCC_MAX_LAG_S);
        assert_eq!((lags[0], lags[128], lags[256]), (-1e-3, 0.0, 1e-3));
        // Rows step by 2 ms / 256 = 1/8 sample at 16 kHz: a delay of 5 samples is row 128 + 40.
        for (d, row) in [(5i64, 168usize), (-5, 88), (0, 128)] {
            // right[n] = left[n - d]: with d > 0 the left ear leads, a positive lag.
            let left = &source[10..10 + samples];
            let start = (10 - d) as usize;
            let right = &source[start..start + samples];
            let ([.., gcc], frames) = planes(&stft, left, right, sr);
            for t in 2..frames - 2 {
                let column: Vec<f32> = (0..stft.bins()).map(|r| gcc[r * frames + t]).collect();
                let peak = (0..column.len()).max_by(|&a, &b| column[a].total_cmp(&column[b])).unwrap();
                assert_eq!(peak, row, "delay {d}, frame {t}");
                assert!(column[peak] > 0.5 && column[peak] <= 1.0 + 1e-5, "{}", column[peak]);
            }
        }
        // The definition, in f64 from the complex STFTs, at every row of a few frames.
        let (left, right) = (&source[10..10 + samples], &source[7..7 + samples]);
        let ([.., gcc], frames) = planes(&stft, left, right, sr);
        let (l, r) = (stft.complex(left).unwrap(), stft.complex(right).unwrap());
        let bins = stft.bins();
        for t in [0, 7, frames - 1] {
            for (row, &tau) in lags.iter().enumerate() {
                let mut want = 0.0;
                for k in 0..bins {
                    let (a, b) = (l[k * frames + t], r[k * frames + t]);
                    let ipd = f64::from(a.im).atan2(f64::from(a.re)) - f64::from(b.im).atan2(f64::from(b.re));
                    let w = if k == 0 || k == bins - 1 { 1.0 } else { 2.0 };
                    want += w * (ipd - 2.0 * PI * k as f64 * tau * f64::from(sr) / n_fft as f64).cos();
                }
                want /= n_fft as f64;
                let got = f64::from(gcc[row * frames + t]);
                assert!((got - want).abs() < 2e-4, "row {row} frame {t}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn gcc_phat_itd_finds_fractional_delays_of_broadband_sound() {
        let sr = 16_000.0;
        let mut noise = Noise(11);
        let parts: Vec<(f64, f64, f64)> =
            (0..200).map(|_| (100.0 + 7400.0 * (noise.next() + 0.5), 0.01, 2.0 * PI * noise.next())).collect();
        let left = tones(16_000, sr, &parts, 0.0, 1.0);
        let config = ItdConfig::default();
        // 7 and 9.375 samples late, 4.8 samples early (between two 1/8-sample steps).
        for delay in [7.0 / sr, 9.375 / sr, -4.8 / sr, 0.0] {
            let right = tones(16_000, sr, &parts, delay, 0.7);
            let audio = Audio { sample_rate: 16_000, channels: vec![left.clone(), right] };
            let itd = gcc_phat_itd(&audio, &config).unwrap();
            assert!((itd - delay).abs() <= 0.5 / (8.0 * sr) + 1e-9, "{itd} vs {delay}");
        }
        // Lags beyond max_lag_s are not searched: the estimate stops at the bound.
        let right = tones(16_000, sr, &parts, 1.5e-3, 1.0);
        let audio = Audio { sample_rate: 16_000, channels: vec![left.clone(), right] };
        assert!(gcc_phat_itd(&audio, &config).unwrap().abs() <= 1.2e-3 + 1e-12);
    }

    #[test]
    fn gcc_phat_itd_refuses_bad_input_with_a_reason() {
        let config = ItdConfig::default();
        let mono = Audio { sample_rate: 16_000, channels: vec![vec![0.0; 4000]] };
        assert!(gcc_phat_itd(&mono, &config).unwrap_err().to_string().contains("2 channels"));
        let ragged = Audio { sample_rate: 16_000, channels: vec![vec![0.0; 4000], vec![0.0; 3000]] };
        assert!(gcc_phat_itd(&ragged, &config).unwrap_err().to_string().contains("3000"));
        let short = Audio { sample_rate: 16_000, channels: vec![vec![0.0; 100]; 2] };
        assert!(matches!(gcc_phat_itd(&short, &config), Err(ItdError::Stft(_))));
        let stereo = Audio { sample_rate: 16_000, channels: vec![vec![0.0; 4000]; 2] };
        let bad = ItdConfig { upsample: 0, ..ItdConfig::default() };
        assert!(gcc_phat_itd(&stereo, &bad).unwrap_err().to_string().contains("upsample"));
        let bad = ItdConfig { max_lag_s: f64::NAN, ..ItdConfig::default() };
        assert!(gcc_phat_itd(&stereo, &bad).unwrap_err().to_string().contains("max_lag_s"));
        // Silence has no delay to find: lag 0.
        assert_eq!(gcc_phat_itd(&stereo, &config).unwrap(), 0.0);
    }
}
