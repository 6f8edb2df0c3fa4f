//! Multi-condition rendering on the fly: every training sample drawn afresh from the measured
//! HRIRs and the source recordings, seeded by (seed, epoch, sample), so a network sees a new
//! room, noise level and head every epoch instead of memorising one fixed set.
//!
//! One render, given its direction and its [`Draw`]:
//!
//! 1. the dry signal: a random source from a random offset, repeated with random gaps, at a
//!    random gain (as [`crate::spatial::render`] builds it);
//! 2. head variation on the direction's HRIR pair: both ears stretched in time by the drawn
//!    factor (a larger or smaller head: every interaural delay scales by the factor, the
//!    spectral features move down or up by it), a smooth random EQ per ear (six log-spaced
//!    bands between 125 Hz and 4 kHz), a spectral tilt common to both ears (dB per octave
//!    about 1 kHz) and a broadband level offset between the ears (ILD jitter: `+j/2` dB left,
//!    `-j/2` dB right);
//! 3. the source through that pair, plus a late-reverberation tail of the drawn RT60 and
//!    direct-to-reverberant ratio (decaying Gaussian noise, independent per ear), in one
//!    frequency-domain product per ear;
//! 4. diffuse noise (independent per ear) at the drawn SNR; both ears scaled together to a
//!    peak of 0.9.
//!
//! Every parameter is drawn in a fixed order from the sample's own stream whatever the ranges
//! are, so switching one augmentation off leaves the others' draws unchanged, and a render
//! does not depend on the thread that makes it or on the order of the calls.
//!
//! (Over 300 lines: one renderer, its conditions and its band-limited stretch; 195 of its
//! lines are tests of each augmentation against its definition.)

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::RngExt;
use rand::rngs::StdRng;
use rayon::prelude::*;
use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::spatial::{Hrirs, SpatialError, load_hrirs, load_source, power};
use kindling_core::Issues;

/// The SSR packages' HRIR folder (`apt-get install soundscaperenderer-common`).
pub const SSR_HRIRS: &str = "/usr/share/ssr/impulse_responses/hrirs";
/// The sound themes' recordings used as sources by default (`apt-get install alsa-utils
/// sound-theme-freedesktop`).
pub const THEME_SOURCES: &[&str] = &["/usr/share/sounds/alsa", "/usr/share/sounds/freedesktop/stereo"];
/// The packages that hold [`SSR_HRIRS`] and [`THEME_SOURCES`].
pub const PACKAGES: &str = "soundscaperenderer-common alsa-utils sound-theme-freedesktop";

/// A measured head of the SSR packages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Head {
    /// KEMAR (Wierstorf et al., 2011), `hrirs_kemar.wav`.
    Kemar,
    /// FABIAN (Lindau and Weinzierl, 2007), `hrirs_fabian_min_phase_eq.wav`.
    Fabian,
}

impl Head {
    /// The head's HRIR file under [`SSR_HRIRS`].
    pub fn path(self) -> PathBuf {
        Path::new(SSR_HRIRS).join(match self {
            Head::Kemar => "hrirs_kemar.wav",
            Head::Fabian => "hrirs_fabian_min_phase_eq.wav",
        })
    }
}

/// The recordings under `roots`: files as given, folders listed (`.wav`, `.oga`, `.ogg`,
/// sorted by name). A root that does not exist is an error naming it.
pub fn find_sources(roots: &[PathBuf]) -> Result<Vec<PathBuf>, SpatialError> {
    let mut sources = Vec::new();
    for root in roots {
        if root.is_dir() {
            let entries = std::fs::read_dir(root)
                .map_err(|e| SpatialError::File { path: root.clone(), message: format!("cannot list: {e}") })?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| ["wav", "oga", "ogg"].contains(&e.to_ascii_lowercase().as_str()))
                })
                .collect();
            found.sort();
            sources.extend(found);
        } else if root.exists() {
            sources.push(root.clone());
        } else {
            return Err(SpatialError::File { path: root.clone(), message: "no such file or folder".into() });
        }
    }
    Ok(sources)
}

/// The ranges each training sample's conditions are drawn from (uniformly). The defaults draw
/// nothing: a clean render through the measured head.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Conditions {
    /// Diffuse noise (independent per ear) at an SNR drawn from `[lo, hi]` dB; none when unset.
    pub snr_db: Option<[f64; 2]>,
    /// A late-reverberation tail with an RT60 drawn from `[lo, hi]` seconds; none when unset.
    pub rt60: Option<[f64; 2]>,
    /// The tail's direct-to-reverberant energy ratio, drawn from `[lo, hi]` dB.
    pub drr_db: [f64; 2],
    /// Head size: both ears' HRIRs stretched in time by a factor drawn from `[1 - s, 1 + s]`,
    /// which scales the interaural time difference by that factor (0.15: +-15%).
    #[schemars(range(min = 0, max = 0.5))]
    pub itd_scale: f64,
    /// Per-ear EQ: six band gains per ear, each drawn from `[-e, e]` dB.
    #[schemars(range(min = 0))]
    pub eq_db: f64,
    /// Spectral tilt common to both ears, drawn from `[-t, t]` dB per octave.
    #[schemars(range(min = 0))]
    pub tilt_db: f64,
    /// A broadband level difference added between the ears, drawn from `[-j, j]` dB.
    #[schemars(range(min = 0))]
    pub ild_jitter_db: f64,
}

impl Default for Conditions {
    fn default() -> Self {
        Self {
            snr_db: None,
            rt60: None,
            drr_db: [0.0, 0.0],
            itd_scale: 0.0,
            eq_db: 0.0,
            tilt_db: 0.0,
            ild_jitter_db: 0.0,
        }
    }
}

/// Checks a `[lo, hi]` range: finite, ordered, inside `[min, max]`.
fn check_range(issues: &mut Issues, key: &str, r: [f64; 2], min: f64, max: f64) {
    if !(r[0].is_finite() && r[1].is_finite()) || r[0] > r[1] {
        issues.push(key, format!("must be [lo, hi] with lo <= hi, got [{}, {}]", r[0], r[1]));
    } else if r[0] < min || r[1] > max {
        issues.push(key, format!("must lie in [{min}, {max}], got [{}, {}]", r[0], r[1]));
    }
}

fn check_amount(issues: &mut Issues, key: &str, v: f64, max: f64, unit: &str) {
    issues.require(v.is_finite() && (0.0..=max).contains(&v), key, format!("must be in [0, {max}]{unit}, got {v}"));
}

impl Conditions {
    /// Records every out-of-range value, under the keys of this struct.
    pub fn check(&self, issues: &mut Issues) {
        if let Some(r) = self.snr_db {
            check_range(issues, "snr_db", r, -30.0, 100.0);
        }
        if let Some(r) = self.rt60 {
            check_range(issues, "rt60", r, 0.01, 3.0);
        }
        check_range(issues, "drr_db", self.drr_db, -30.0, 30.0);
        check_amount(issues, "itd_scale", self.itd_scale, 0.5, "");
        check_amount(issues, "eq_db", self.eq_db, 20.0, " dB");
        check_amount(issues, "tilt_db", self.tilt_db, 6.0, " dB per octave");
        check_amount(issues, "ild_jitter_db", self.ild_jitter_db, 20.0, " dB");
    }
}

/// Number of EQ bands per ear.
pub const EQ_BANDS: usize = 6;
/// Their centre frequencies (Hz); the gain is interpolated linearly in dB over log frequency
/// between them and held constant outside.
pub const EQ_CENTRES: [f64; EQ_BANDS] = [125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0];

/// The random choices of one render.
#[derive(Clone, Debug, PartialEq)]
pub struct Draw {
    /// Which source recording.
    pub source: usize,
    /// Where in it the first repetition starts (samples).
    pub offset: usize,
    /// Silence before the first repetition (samples).
    pub lead: usize,
    /// The dry signal's gain (dB).
    pub gain_db: f64,
    /// Diffuse noise's SNR (dB), if any.
    pub snr_db: Option<f64>,
    /// The tail's RT60 (s), if any.
    pub rt60: Option<f64>,
    /// The tail's direct-to-reverberant ratio (dB).
    pub drr_db: f64,
    /// Time-stretch factor of the HRIR pair (the ITD's scale).
    pub itd_factor: f64,
    /// Band gains (dB), left ear then right ear.
    pub eq_db: [[f64; EQ_BANDS]; 2],
    /// Tilt (dB per octave about 1 kHz), both ears.
    pub tilt_db: f64,
    /// Added level difference, left minus right (dB).
    pub ild_db: f64,
}

impl Draw {
    /// The gain (dB) this draw's EQ, tilt and ILD apply to `ear` (0 left, 1 right) at `f` Hz.
    pub fn ear_gain_db(&self, ear: usize, f: f64) -> f64 {
        let octaves = (f.max(1.0) / 1000.0).log2();
        let eq = &self.eq_db[ear];
        let x = f.max(1.0).log2();
        let first = EQ_CENTRES[0].log2();
        let last = EQ_CENTRES[EQ_BANDS - 1].log2();
        let band = if x <= first {
            eq[0]
        } else if x >= last {
            eq[EQ_BANDS - 1]
        } else {
            // Centres are an octave apart.
            let pos = x - first;
            let k = pos.floor() as usize;
            let t = pos - k as f64;
            eq[k] * (1.0 - t) + eq[(k + 1).min(EQ_BANDS - 1)] * t
        };
        let side = if ear == 0 { 0.5 } else { -0.5 };
        band + self.tilt_db * octaves + side * self.ild_db
    }
}

/// The stream of sample `index` in `epoch` of a run seeded `seed`.
pub fn sample_rng(seed: u64, epoch: u64, index: u64) -> StdRng {
    kindling_core::rng_from_seed(seed, &format!("render/{epoch}/{index}"))
}

/// `lo + u (hi - lo)` for a fresh uniform `u`, drawn even when the range is empty.
fn uniform(rng: &mut StdRng, lo: f64, hi: f64) -> f64 {
    let u: f64 = rng.random_range(0.0..1.0);
    lo + u * (hi - lo)
}

/// Renders training samples: the loaded HRIRs and sources, the conditions, and FFT plans
/// shared by every thread.
pub struct Renderer {
    hrirs: Hrirs,
    sources: Vec<Vec<f32>>,
    rate: u32,
    len: usize,
    conditions: Conditions,
    /// Transform length: the output plus the longest HRIR and tail, rounded up to a power of 2.
    n: usize,
    fwd: Arc<dyn RealToComplex<f32>>,
    inv: Arc<dyn ComplexToReal<f32>>,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer")
            .field("directions", &self.hrirs.pairs.len())
            .field("sources", &self.sources.len())
            .field("rate", &self.rate)
            .field("len", &self.len)
            .field("conditions", &self.conditions)
            .finish_non_exhaustive()
    }
}

impl Renderer {
    /// A renderer of `duration` seconds at `rate` Hz through `hrirs` (one pair per class).
    pub fn new(
        hrirs: Hrirs,
        sources: Vec<Vec<f32>>,
        rate: u32,
        duration: f64,
        conditions: Conditions,
    ) -> Result<Self, SpatialError> {
        let mut issues = Issues::default();
        conditions.check(&mut issues);
        if let Some(issue) = issues.into_vec().into_iter().next() {
            return Err(SpatialError::Config(issue.to_string()));
        }
        if hrirs.pairs.is_empty() {
            return Err(SpatialError::Config("no directions".into()));
        }
        if sources.is_empty() || sources.iter().any(Vec::is_empty) {
            return Err(SpatialError::Config("no source recordings, or an empty one".into()));
        }
        if !(duration.is_finite() && duration > 0.0 && rate > 0) {
            return Err(SpatialError::Config(format!("cannot render {duration} s at {rate} Hz")));
        }
        let len = (duration * f64::from(rate)).round() as usize;
        let taps = hrirs.pairs.iter().flatten().map(Vec::len).max().unwrap_or(0);
        let stretched = (taps as f64 * (1.0 + conditions.itd_scale)).ceil() as usize + 2 * STRETCH_HALF_WIDTH + 2;
        let tail = conditions
            .rt60
            .map_or(0, |r| (r[1] * f64::from(rate)).round() as usize + (0.01 * f64::from(rate)) as usize);
        let n = (len + stretched.max(tail)).next_power_of_two();
        let mut planner = RealFftPlanner::<f32>::new();
        let (fwd, inv) = (planner.plan_fft_forward(n), planner.plan_fft_inverse(n));
        Ok(Self { hrirs, sources, rate, len, conditions, n, fwd, inv })
    }

    /// Loads `directions` of the HRIR file and the sources (in parallel), at `rate`.
    pub fn load(
        hrir: &Path,
        sources: &[PathBuf],
        directions: &[i32],
        rate: u32,
        duration: f64,
        conditions: Conditions,
    ) -> Result<Self, SpatialError> {
        if sources.is_empty() {
            return Err(SpatialError::Config("no source recordings".into()));
        }
        let hrirs = load_hrirs(hrir, directions, rate)?;
        let sources: Vec<Vec<f32>> = sources.par_iter().map(|p| load_source(p, rate)).collect::<Result<_, _>>()?;
        Self::new(hrirs, sources, rate, duration, conditions)
    }

    /// Samples per ear of a render.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether renders are empty (never, for a renderer that was made).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The sample rate (Hz).
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Number of directions.
    pub fn directions(&self) -> usize {
        self.hrirs.pairs.len()
    }

    /// Draws every parameter of a render from `rng`, in a fixed order whatever the ranges.
    pub fn draw(&self, rng: &mut StdRng) -> Draw {
        let c = &self.conditions;
        let rate = f64::from(self.rate);
        let source = rng.random_range(0..self.sources.len());
        let offset = rng.random_range(0..self.sources[source].len());
        let lead = rng.random_range(0..(0.5 * rate).max(1.0) as usize);
        let gain_db = uniform(rng, -6.0, 0.0);
        let snr = uniform(rng, c.snr_db.map_or(0.0, |r| r[0]), c.snr_db.map_or(0.0, |r| r[1]));
        let rt60 = uniform(rng, c.rt60.map_or(0.0, |r| r[0]), c.rt60.map_or(0.0, |r| r[1]));
        let drr_db = uniform(rng, c.drr_db[0], c.drr_db[1]);
        let itd_factor = uniform(rng, 1.0 - c.itd_scale, 1.0 + c.itd_scale);
        let mut eq_db = [[0.0; EQ_BANDS]; 2];
        for g in eq_db.iter_mut().flatten() {
            *g = uniform(rng, -c.eq_db, c.eq_db);
        }
        let tilt_db = uniform(rng, -c.tilt_db, c.tilt_db);
        let ild_db = uniform(rng, -c.ild_jitter_db, c.ild_jitter_db);
        Draw {
            source,
            offset,
            lead,
            gain_db,
            snr_db: c.snr_db.map(|_| snr),
            rt60: c.rt60.map(|_| rt60),
            drr_db,
            itd_factor,
            eq_db,
            tilt_db,
            ild_db,
        }
    }

    /// Sample `index` of `epoch` for a run seeded `seed`, from direction `dir`: `(left, right)`.
    pub fn render(&self, dir: usize, seed: u64, epoch: u64, index: u64) -> [Vec<f32>; 2] {
        let mut rng = sample_rng(seed, epoch, index);
        let draw = self.draw(&mut rng);
        self.render_drawn(dir, &draw, &mut rng)
    }

    /// The dry signal: the source from `draw.offset`, after `draw.lead` samples of silence,
    /// repeated with gaps of 0.1 to 0.5 s, at `draw.gain_db`.
    fn dry(&self, draw: &Draw, rng: &mut StdRng) -> Vec<f32> {
        let rate = f64::from(self.rate);
        let source = &self.sources[draw.source.min(self.sources.len() - 1)];
        let gain = 10f64.powf(draw.gain_db / 20.0) as f32;
        let mut dry = vec![0.0f32; self.len];
        let mut pos = draw.lead;
        let mut from = draw.offset.min(source.len());
        while pos < self.len {
            let part = &source[from..];
            let n = part.len().min(self.len - pos);
            for (d, &s) in dry[pos..pos + n].iter_mut().zip(part) {
                *d = s * gain;
            }
            pos += part.len() + rng.random_range((0.1 * rate) as usize..(0.5 * rate).max(0.1 * rate + 1.0) as usize);
            from = 0;
        }
        dry
    }

    /// The forward transform of `x`, zero-padded to the plan's length.
    fn spectrum(&self, x: &[f32]) -> Vec<Complex<f32>> {
        let mut buf = vec![0.0f32; self.n];
        let k = x.len().min(self.n);
        buf[..k].copy_from_slice(&x[..k]);
        let mut out = self.fwd.make_output_vec();
        // Lengths come from the plan, so the transform cannot fail.
        self.fwd.process(&mut buf, &mut out).expect("buffer lengths match the plan");
        out
    }

    /// Sample from direction `dir` with the choices of `draw`; noise and the tail come from `rng`.
    pub fn render_drawn(&self, dir: usize, draw: &Draw, rng: &mut StdRng) -> [Vec<f32>; 2] {
        let rate = f64::from(self.rate);
        let dry = self.dry(draw, rng);
        let x = self.spectrum(&dry);
        let bins = x.len();
        let pair = &self.hrirs.pairs[dir.min(self.hrirs.pairs.len() - 1)];
        // Direct sound per ear: X . H . G, with G the draw's EQ, tilt and ILD.
        let direct: Vec<Vec<Complex<f32>>> = (0..2)
            .map(|ear| {
                let h = if draw.itd_factor == 1.0 { pair[ear].clone() } else { stretch(&pair[ear], draw.itd_factor) };
                let mut y = self.spectrum(&h);
                let mut last_gain = (f64::NAN, 0.0f32);
                for (k, (v, &xv)) in y.iter_mut().zip(&x).enumerate() {
                    let f = k as f64 * rate / self.n as f64;
                    // The gain is smooth: evaluate it every 1 Hz step at most.
                    let fq = f.floor();
                    if fq != last_gain.0 {
                        last_gain = (fq, 10f64.powf(draw.ear_gain_db(ear, fq.max(0.5)) / 20.0) as f32);
                    }
                    *v = *v * xv * last_gain.1;
                }
                y
            })
            .collect();
        // Energies from the spectra (Parseval, one-sided).
        let energy = |s: &[Complex<f32>]| -> f64 {
            let total: f64 = s.iter().map(|c| f64::from(c.norm_sqr())).sum::<f64>() * 2.0;
            let edges = f64::from(s[0].norm_sqr()) + f64::from(s[bins - 1].norm_sqr());
            (total - edges) / self.n as f64
        };
        let direct_energy = (energy(&direct[0]) + energy(&direct[1])) / 2.0;
        let mut ears: Vec<Vec<f32>> = Vec::with_capacity(2);
        for mut y in direct {
            if let Some(rt60) = draw.rt60 {
                // Late reverberation: decaying Gaussian noise (-60 dB at rt60) after a 10 ms
                // pre-delay, scaled to the direct-to-reverberant ratio.
                let taps = (rt60 * rate).round() as usize;
                let pre = (0.01 * rate) as usize;
                let mut tail = vec![0.0f32; pre + taps];
                add_gauss(rng, &mut tail[pre..], 1.0);
                let decay = (-6.907_755 / (rt60 * rate)).exp();
                let mut g = 1.0f64;
                for t in &mut tail[pre..] {
                    *t = (f64::from(*t) * g) as f32;
                    g *= decay;
                }
                let mut wet = self.spectrum(&tail);
                for (w, &xv) in wet.iter_mut().zip(&x) {
                    *w *= xv;
                }
                let scale = (direct_energy / energy(&wet).max(1e-20) / 10f64.powf(draw.drr_db / 10.0)).sqrt() as f32;
                for (v, w) in y.iter_mut().zip(&wet) {
                    *v += w * scale;
                }
            }
            // A real signal's spectrum is real at DC and Nyquist; drop rounding there.
            y[0].im = 0.0;
            y[bins - 1].im = 0.0;
            let mut out = self.inv.make_output_vec();
            self.inv.process(&mut y, &mut out).expect("buffer lengths match the plan");
            out.truncate(self.len);
            let scale = 1.0 / self.n as f32;
            for v in &mut out {
                *v *= scale;
            }
            ears.push(out);
        }
        let mut ears: [Vec<f32>; 2] = [std::mem::take(&mut ears[0]), std::mem::take(&mut ears[1])];
        if let Some(snr) = draw.snr_db {
            let signal = (power(&ears[0]) + power(&ears[1])) / 2.0;
            let sigma = (signal / 10f64.powf(snr / 10.0)).sqrt();
            for ear in &mut ears {
                add_gauss(rng, ear, sigma);
            }
        }
        // Both ears scaled together (level differences are the cue) to a peak of 0.9.
        let peak = ears.iter().flatten().fold(0.0f32, |m, &s| m.max(s.abs()));
        if peak > 0.0 {
            for e in ears.iter_mut().flatten() {
                *e *= 0.9 / peak;
            }
        }
        ears
    }
}

/// Adds `sigma` times standard normal draws to `out`: Box-Muller, both outputs of each pair.
fn add_gauss(rng: &mut StdRng, out: &mut [f32], sigma: f64) {
    for pair in out.chunks_mut(2) {
        let u1: f64 = rng.random_range(f64::EPSILON..1.0);
        let u2: f64 = rng.random_range(0.0..1.0);
        let r = sigma * (-2.0 * u1.ln()).sqrt();
        let (sin, cos) = (std::f64::consts::TAU * u2).sin_cos();
        pair[0] += (r * cos) as f32;
        if let Some(second) = pair.get_mut(1) {
            *second += (r * sin) as f32;
        }
    }
}

/// Half-width of the interpolation kernel, in input samples (at the cutoff).
const STRETCH_HALF_WIDTH: usize = 16;

/// `h` stretched in time by `factor` (`h_s(t) = h(t / factor) / factor`, band-limited):
/// windowed-sinc interpolation, low-passed at `factor` times Nyquist when it compresses.
/// Every delay in `h` scales by `factor`; the response at `f` becomes `h`'s at `f * factor`.
pub fn stretch(h: &[f32], factor: f64) -> Vec<f32> {
    if h.is_empty() || !(factor.is_finite() && factor > 0.0) {
        return h.to_vec();
    }
    let fc = factor.min(1.0);
    let half = STRETCH_HALF_WIDTH as f64 / fc;
    let out_len = (h.len() as f64 * factor).ceil() as usize + (half * factor).ceil() as usize;
    let pi = std::f64::consts::PI;
    // Each step to the next input sample rotates the sinc's and the window's angles by a
    // fixed amount: one sin_cos per output sample, then rotations.
    let (sin_step_a, cos_step_a) = (pi * fc).sin_cos();
    let (sin_step_b, cos_step_b) = (pi / half).sin_cos();
    (0..out_len)
        .map(|n| {
            let t = n as f64 / factor;
            let lo = (t - half).ceil().max(0.0) as usize;
            let hi = ((t + half).floor() as usize).min(h.len() - 1);
            if lo > hi {
                return 0.0;
            }
            let d0 = t - lo as f64;
            let (mut sa, mut ca) = (pi * fc * d0).sin_cos();
            let (mut sb, mut cb) = (pi * d0 / half).sin_cos();
            let mut acc = 0.0f64;
            for (j, &hk) in h[lo..=hi].iter().enumerate() {
                let d = d0 - j as f64;
                // fc * sinc(fc d), with sinc(x) = sin(pi x) / (pi x).
                let sinc = if d.abs() < 1e-9 { fc } else { sa / (pi * d) };
                // Hann window over [-half, half].
                let w = 0.5 + 0.5 * cb;
                acc += f64::from(hk) * sinc * w;
                (sa, ca) = (sa * cos_step_a - ca * sin_step_a, ca * cos_step_a + sa * sin_step_a);
                (sb, cb) = (sb * cos_step_b - cb * sin_step_b, cb * cos_step_b + sb * sin_step_b);
            }
            (acc / factor) as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spatial::gauss;

    /// Gaussian noise, `seconds` long at `rate`, unit RMS.
    fn noise(rate: u32, seconds: f64, seed: u64) -> Vec<f32> {
        let mut rng = kindling_core::rng_from_seed(seed, "render-test-noise");
        (0..(seconds * f64::from(rate)) as usize).map(|_| gauss(&mut rng) as f32).collect()
    }

    /// One direction whose left ear hears an impulse at `left` samples and the right at
    /// `right`, 6 dB quieter.
    fn impulse_pair(left: usize, right: usize, taps: usize) -> Hrirs {
        let mut l = vec![0.0f32; taps];
        let mut r = vec![0.0f32; taps];
        l[left] = 1.0;
        r[right] = 0.5;
        Hrirs { pairs: vec![[l, r]] }
    }

    fn renderer(rate: u32, hrirs: Hrirs, conditions: Conditions) -> Renderer {
        Renderer::new(hrirs, vec![noise(rate, 0.6, 1), noise(rate, 0.3, 2)], rate, 0.5, conditions).unwrap()
    }

    /// The lag (samples) at which `r` best matches `l` delayed, within `max_lag`, refined by a
    /// parabola through the peak and its neighbours.
    fn xcorr_peak_lag(l: &[f32], r: &[f32], max_lag: usize) -> f64 {
        let c = |lag: isize| -> f64 {
            (0..l.len())
                .filter_map(|n| {
                    let m = n as isize + lag;
                    (m >= 0 && (m as usize) < r.len()).then(|| f64::from(l[n]) * f64::from(r[m as usize]))
                })
                .sum()
        };
        let lags: Vec<isize> = (-(max_lag as isize)..=max_lag as isize).collect();
        let values: Vec<f64> = lags.iter().map(|&k| c(k)).collect();
        let best = (1..values.len() - 1).max_by(|&a, &b| values[a].total_cmp(&values[b])).unwrap();
        let (a, b, d) = (values[best - 1], values[best], values[best + 1]);
        lags[best] as f64 + 0.5 * (a - d) / (a - 2.0 * b + d)
    }

    fn level_difference_db([l, r]: &[Vec<f32>; 2]) -> f64 {
        10.0 * (power(l) / power(r)).log10()
    }

    #[test]
    fn itd_scaling_scales_the_cross_correlation_lag_by_the_drawn_factor() {
        // 48 kHz, so the lags are long enough to measure to a fraction of a sample: the
        // right ear hears the source 30 samples (0.625 ms) after the left.
        let conditions = Conditions { itd_scale: 0.15, ..Conditions::default() };
        let r = renderer(48_000, impulse_pair(8, 38, 64), conditions);
        let mut factors = Vec::new();
        for index in 0..6 {
            let mut rng = sample_rng(3, 1, index);
            let draw = r.draw(&mut rng);
            assert!((0.85..=1.15).contains(&draw.itd_factor), "{draw:?}");
            let ears = r.render_drawn(0, &draw, &mut rng);
            let lag = xcorr_peak_lag(&ears[0], &ears[1], 60);
            assert!((lag - 30.0 * draw.itd_factor).abs() < 0.25, "factor {}: lag {lag}", draw.itd_factor);
            factors.push(draw.itd_factor);
        }
        assert!(factors.iter().any(|&f| f < 0.97) && factors.iter().any(|&f| f > 1.03), "{factors:?}");
        // Unscaled, the lag is the HRIRs' own.
        let r = renderer(48_000, impulse_pair(8, 38, 64), Conditions::default());
        let lag = xcorr_peak_lag(&r.render(0, 3, 1, 0)[0], &r.render(0, 3, 1, 0)[1], 60);
        assert!((lag - 30.0).abs() < 0.05, "{lag}");
    }

    #[test]
    fn ild_jitter_shifts_the_level_difference_by_the_drawn_db() {
        let plain = renderer(16_000, impulse_pair(2, 6, 16), Conditions::default());
        let jittered =
            renderer(16_000, impulse_pair(2, 6, 16), Conditions { ild_jitter_db: 4.0, ..Conditions::default() });
        let mut shifts = Vec::new();
        for index in 0..5 {
            let base = level_difference_db(&plain.render(0, 7, 2, index));
            assert!((base - 20.0 * 2f64.log10()).abs() < 0.05, "the HRIRs' own 6 dB: {base}");
            let draw = jittered.draw(&mut sample_rng(7, 2, index));
            let shifted = level_difference_db(&jittered.render(0, 7, 2, index));
            assert!(
                (shifted - base - draw.ild_db).abs() < 1e-3,
                "drawn {} dB, measured {}",
                draw.ild_db,
                shifted - base
            );
            shifts.push(draw.ild_db);
        }
        assert!(shifts.iter().all(|s| s.abs() <= 4.0) && shifts.iter().any(|s| s.abs() > 0.5), "{shifts:?}");
    }

    /// Level difference (dB) between the ears in `[lo, hi]` Hz, from the power spectra.
    fn band_ild_db(ears: &[Vec<f32>; 2], rate: u32, lo: f64, hi: f64) -> f64 {
        let n = ears[0].len().next_power_of_two();
        let mut planner = RealFftPlanner::<f32>::new();
        let fft = planner.plan_fft_forward(n);
        let band = |x: &[f32]| -> f64 {
            let mut buf = vec![0.0f32; n];
            buf[..x.len()].copy_from_slice(x);
            let mut out = fft.make_output_vec();
            fft.process(&mut buf, &mut out).unwrap();
            let hz = f64::from(rate) / n as f64;
            out.iter()
                .enumerate()
                .filter(|(k, _)| (lo..hi).contains(&(*k as f64 * hz)))
                .map(|(_, c)| f64::from(c.norm_sqr()))
                .sum()
        };
        10.0 * (band(&ears[0]) / band(&ears[1])).log10()
    }

    #[test]
    fn per_ear_eq_and_tilt_change_each_band_as_drawn() {
        let conditions = Conditions { eq_db: 6.0, tilt_db: 2.0, ..Conditions::default() };
        let plain = renderer(16_000, impulse_pair(2, 6, 16), Conditions::default());
        let eq = renderer(16_000, impulse_pair(2, 6, 16), conditions);
        let draw = eq.draw(&mut sample_rng(1, 0, 4));
        // The gain curve is its definition: band gains at the centres, held outside, tilt
        // about 1 kHz, half the ILD on each side.
        assert_eq!(draw.ear_gain_db(0, 1000.0), draw.eq_db[0][3]);
        assert!((draw.ear_gain_db(1, 2000.0) - draw.eq_db[1][4] - draw.tilt_db).abs() < 1e-9);
        assert!((draw.ear_gain_db(0, 60.0) - draw.eq_db[0][0] - draw.tilt_db * (0.06f64).log2()).abs() < 1e-9);
        let mid =
            (draw.eq_db[1][1] + draw.eq_db[1][2]) / 2.0 + draw.tilt_db * (353.553_390_593_273_8f64 / 1000.0).log2();
        assert!((draw.ear_gain_db(1, 353.553_390_593_273_8) - mid).abs() < 1e-9);
        // Rendered: the interaural level difference per band moves by the two ears' EQ
        // difference (the tilt is common and cancels), where the gain is flat.
        let (a, b) = (plain.render(0, 1, 0, 4), eq.render(0, 1, 0, 4));
        for (lo, hi, band) in [(4_500.0, 7_500.0, 5), (40.0, 110.0, 0)] {
            let expected = draw.eq_db[0][band] - draw.eq_db[1][band];
            let moved = band_ild_db(&b, 16_000, lo, hi) - band_ild_db(&a, 16_000, lo, hi);
            assert!((moved - expected).abs() < 0.3, "{lo}-{hi} Hz: expected {expected}, got {moved}");
        }
    }

    #[test]
    fn a_sample_is_the_same_whatever_the_threads_and_order_and_differs_by_epoch() {
        let conditions = Conditions {
            snr_db: Some([0.0, 20.0]),
            rt60: Some([0.1, 0.4]),
            drr_db: [-3.0, 6.0],
            itd_scale: 0.15,
            eq_db: 3.0,
            tilt_db: 1.0,
            ild_jitter_db: 2.0,
        };
        let r = renderer(16_000, impulse_pair(2, 6, 16), conditions);
        let bits = |ears: [Vec<f32>; 2]| ears.iter().flatten().map(|v| v.to_bits()).collect::<Vec<u32>>();
        let serial: Vec<Vec<u32>> = (0..8).map(|i| bits(r.render(0, 5, 3, i))).collect();
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        let mut parallel: Vec<(u64, Vec<u32>)> = pool.install(|| {
            (0..8u64).rev().collect::<Vec<_>>().into_par_iter().map(|i| (i, bits(r.render(0, 5, 3, i)))).collect()
        });
        parallel.sort_by_key(|(i, _)| *i);
        for (i, p) in parallel {
            assert!(serial[i as usize] == p, "sample {i} differs between threads");
        }
        assert_ne!(serial[0], serial[1], "samples differ");
        assert_ne!(serial[2], bits(r.render(0, 5, 4, 2)), "epochs differ");
        assert_ne!(serial[2], bits(r.render(0, 6, 3, 2)), "seeds differ");
    }

    #[test]
    fn bad_conditions_are_refused_with_their_keys() {
        let mut issues = Issues::default();
        Conditions {
            snr_db: Some([20.0, 0.0]),
            rt60: Some([0.0, 0.4]),
            drr_db: [0.0, f64::NAN],
            itd_scale: 0.8,
            eq_db: -1.0,
            tilt_db: 0.5,
            ild_jitter_db: 30.0,
        }
        .check(&mut issues);
        let text: Vec<String> = issues.into_vec().iter().map(ToString::to_string).collect();
        let text = text.join("\n");
        for key in [
            "snr_db: must be [lo, hi] with lo <= hi",
            "rt60: must lie in [0.01, 3]",
            "drr_db",
            "itd_scale",
            "eq_db",
            "ild_jitter_db",
        ] {
            assert!(text.contains(key), "`{text}` lacks `{key}`");
        }
        assert!(!text.contains("tilt_db"), "{text}");
        let e = Renderer::new(impulse_pair(0, 1, 4), vec![], 16_000, 1.0, Conditions::default()).unwrap_err();
        assert!(e.to_string().contains("no source recordings"), "{e}");
        let e = find_sources(&[PathBuf::from("/nonexistent/sounds")]).unwrap_err();
        assert_eq!(e.to_string(), "/nonexistent/sounds: no such file or folder");
    }
}
