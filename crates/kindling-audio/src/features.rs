//! Stereo audio -> a `C x F x T` feature tensor: chosen STFT quantities of chosen channels.
//!
//! The default selection is the seed experiment's `[l_mag, r_mag, l_phase, r_phase]`, giving
//! `4 x 257 x 382` for 6.1 s at 16 kHz with `n_fft` 512 and hop 256. Any subset, in any order,
//! of magnitude, phase, power and log-magnitude of either side may be asked for, and the
//! interaural planes of [`crate::interaural`] (`ipd_cos`, `ipd_sin`, `ild`, `gcc_phat`,
//! `coherence`), which compare the two sides; each side is transformed once however many of its quantities are used.

use std::cell::RefCell;
use std::path::Path;

use kindling_core::Issues;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use realfft::num_complex::Complex32;

use crate::AudioError;
use crate::interaural::{self, InterauralOutputs};
use crate::norm::{self, Normalize};
use crate::stft::{Stft, StftConfig, StftOutputs, StftScratch};
use crate::wav::{Audio, WavExpect};

/// One feature plane: an STFT quantity of the left (`l_`) or right (`r_`) channel, or an
/// interaural quantity comparing the two (`ipd_cos`, `ipd_sin`, `ild`, `gcc_phat`, `coherence`;
/// defined in the `interaural` module).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Left magnitude, `|X|`.
    LMag,
    /// Right magnitude.
    RMag,
    /// Left phase, `atan2(im, re)` in (-pi, pi].
    LPhase,
    /// Right phase.
    RPhase,
    /// Left power, `|X|^2`.
    LPower,
    /// Right power.
    RPower,
    /// Left log-magnitude, `ln(|X| + 1e-6)`.
    LLogmag,
    /// Right log-magnitude.
    RLogmag,
    /// Cosine of the interaural phase difference `angle(L) - angle(R)`, in [-1, 1]; 0 where
    /// either side is silent.
    IpdCos,
    /// Sine of the interaural phase difference.
    IpdSin,
    /// Interaural level difference, `l_logmag - r_logmag`: positive where the left is louder.
    Ild,
    /// GCC-PHAT per frame: row `r` of `F` is the lag `(2 r / (F - 1) - 1)` ms, positive when
    /// the left ear leads.
    GccPhat,
    /// Interaural coherence over `coherence_frames` frames, in [0, 1]: 1 for one coherent
    /// source, low where diffuse noise or reverberation dominates; 0 where either side is silent.
    Coherence,
}

/// The STFT quantity a [`Channel`] holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Quantity {
    /// `|X|`.
    Magnitude,
    /// `atan2(im, re)`.
    Phase,
    /// `|X|^2`.
    Power,
    /// `ln(|X| + eps)`.
    LogMagnitude,
    /// `cos(angle(L) - angle(R))`.
    PhaseDifferenceCos,
    /// `sin(angle(L) - angle(R))`.
    PhaseDifferenceSin,
    /// `ln(|L| + eps) - ln(|R| + eps)`.
    LevelDifference,
    /// GCC-PHAT, lag x time.
    CrossCorrelation,
    /// Interaural coherence.
    Coherence,
}

impl Quantity {
    /// Whether its values lie in [-1, 1] by construction (they are left as they are by every
    /// normalisation).
    pub fn is_bounded(self) -> bool {
        matches!(self, Self::PhaseDifferenceCos | Self::PhaseDifferenceSin | Self::CrossCorrelation | Self::Coherence)
    }
}

impl Channel {
    /// Every channel, in declaration order.
    pub const ALL: [Channel; 13] = [
        Channel::LMag,
        Channel::RMag,
        Channel::LPhase,
        Channel::RPhase,
        Channel::LPower,
        Channel::RPower,
        Channel::LLogmag,
        Channel::RLogmag,
        Channel::IpdCos,
        Channel::IpdSin,
        Channel::Ild,
        Channel::GccPhat,
        Channel::Coherence,
    ];

    /// The seed experiment's selection.
    pub const STEREO_MAG_PHASE: [Channel; 4] = [Channel::LMag, Channel::RMag, Channel::LPhase, Channel::RPhase];

    /// The audio channel it is computed from: `Some(0)` (left) or `Some(1)` (right); `None`
    /// for the interaural planes, which need both.
    pub fn side(self) -> Option<usize> {
        match self {
            Self::LMag | Self::LPhase | Self::LPower | Self::LLogmag => Some(0),
            Self::RMag | Self::RPhase | Self::RPower | Self::RLogmag => Some(1),
            Self::IpdCos | Self::IpdSin | Self::Ild | Self::GccPhat | Self::Coherence => None,
        }
    }

    /// The audio channels it needs: 1 for a left plane, 2 for a right or interaural one.
    pub fn channels_needed(self) -> usize {
        self.side().map_or(2, |s| s + 1)
    }

    /// The quantity it holds.
    pub fn quantity(self) -> Quantity {
        match self {
            Self::LMag | Self::RMag => Quantity::Magnitude,
            Self::LPhase | Self::RPhase => Quantity::Phase,
            Self::LPower | Self::RPower => Quantity::Power,
            Self::LLogmag | Self::RLogmag => Quantity::LogMagnitude,
            Self::IpdCos => Quantity::PhaseDifferenceCos,
            Self::IpdSin => Quantity::PhaseDifferenceSin,
            Self::Ild => Quantity::LevelDifference,
            Self::GccPhat => Quantity::CrossCorrelation,
            Self::Coherence => Quantity::Coherence,
        }
    }

    /// Its name in configuration files (`l_mag`).
    pub fn name(self) -> &'static str {
        match self {
            Self::LMag => "l_mag",
            Self::RMag => "r_mag",
            Self::LPhase => "l_phase",
            Self::RPhase => "r_phase",
            Self::LPower => "l_power",
            Self::RPower => "r_power",
            Self::LLogmag => "l_logmag",
            Self::RLogmag => "r_logmag",
            Self::IpdCos => "ipd_cos",
            Self::IpdSin => "ipd_sin",
            Self::Ild => "ild",
            Self::GccPhat => "gcc_phat",
            Self::Coherence => "coherence",
        }
    }
}

/// Everything that decides the features of a file: what the WAV must look like, the STFT, the
/// channel selection and the normalisation.
///
/// ```yaml
/// wav: {channels: 2, sample_rate: 16000, duration: 6.1, length: pad_or_crop}
/// stft: {n_fft: 512, hop_length: 256}
/// channels: [l_mag, r_mag, l_phase, r_phase]   # the default; also l_/r_power, l_/r_logmag,
///                                              # ipd_cos, ipd_sin, ild, gcc_phat, coherence
/// normalize: per_sample                        # per_sample (default) | fitted | none
/// coherence_frames: 5                          # the coherence's window, odd, 3..=63
/// coherence_weighting: false                   # ipd_cos, ipd_sin, gcc_phat times coherence
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FeatureConfig {
    /// What every WAV file must look like.
    pub wav: WavExpect,
    /// The STFT.
    pub stft: StftConfig,
    /// The planes of the output, in order.
    pub channels: Vec<Channel>,
    /// How the planes are normalised (see [`Normalize`]).
    pub normalize: Normalize,
    /// The frames the interaural coherence is summed over, centred on each frame: odd, 3 to
    /// 63 (5 frames are 80 ms at 16 kHz with hop 256). Used by the `coherence` plane and by
    /// `coherence_weighting`.
    pub coherence_frames: usize,
    /// Multiply the normalised cross-spectrum by the interaural coherence before `ipd_cos`,
    /// `ipd_sin` and `gcc_phat` are taken, so bins dominated by noise or reverberation count
    /// less.
    pub coherence_weighting: bool,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        Self {
            wav: WavExpect::default(),
            stft: StftConfig::default(),
            channels: Channel::STEREO_MAG_PHASE.to_vec(),
            normalize: Normalize::PerSample,
            coherence_frames: 5,
            coherence_weighting: false,
        }
    }
}

impl FeatureConfig {
    /// Records every problem with this configuration (paths relative to this block).
    pub fn check(&self, issues: &mut Issues) {
        issues.at("wav", |i| self.wav.check(i));
        issues.at("stft", |i| self.stft.check(i));
        issues.require(
            (1..=2).contains(&self.wav.channels),
            "wav.channels",
            format!("must be 1 or 2: features use the left and right channels, got {}", self.wav.channels),
        );
        issues.require(!self.channels.is_empty(), "channels", "must name at least one plane (l_mag, r_mag, ...)");
        for (i, c) in self.channels.iter().enumerate() {
            if self.channels[..i].contains(c) {
                issues.push(&format!("channels[{i}]"), format!("{} is listed twice", c.name()));
            }
            if c.channels_needed() > usize::from(self.wav.channels) {
                let needs = if c.side().is_some() { "a right channel" } else { "both a left and a right channel" };
                issues.push(
                    &format!("channels[{i}]"),
                    format!("{} needs {needs} but wav.channels is {}", c.name(), self.wav.channels),
                );
            }
        }
        issues.require(
            self.coherence_frames % 2 == 1 && (3..=63).contains(&self.coherence_frames),
            "coherence_frames",
            format!(
                "must be odd and 3 to 63 (a window centred on each frame; one frame always gives 1), got {}",
                self.coherence_frames
            ),
        );
        let phase = [Channel::IpdCos, Channel::IpdSin, Channel::GccPhat];
        if self.coherence_weighting && !self.channels.iter().any(|c| phase.contains(c)) {
            issues.push("coherence_weighting", "weights ipd_cos, ipd_sin and gcc_phat, and channels has none of them");
        }
    }

    /// Whether any plane depends on `coherence_frames`: a `coherence` plane, or weighting.
    pub(crate) fn coherence_depends(&self) -> bool {
        self.coherence_weighting || self.channels.contains(&Channel::Coherence)
    }

    /// How the interaural planes use the coherence.
    pub(crate) fn coherence_use(&self) -> interaural::CoherenceUse {
        interaural::CoherenceUse { frames: self.coherence_frames, weighting: self.coherence_weighting }
    }
}

/// A `C x F x T` feature tensor, row-major: plane `c`, bin `k`, frame `t` is
/// `data[(c * bins + k) * frames + t]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Features {
    /// What each plane holds.
    pub channels: Vec<Channel>,
    /// Frequency bins, `F`.
    pub bins: usize,
    /// Frames, `T`.
    pub frames: usize,
    /// The values.
    pub data: Vec<f32>,
}

impl Features {
    /// `[C, F, T]`.
    pub fn shape(&self) -> [usize; 3] {
        [self.channels.len(), self.bins, self.frames]
    }

    /// Plane `c`, `F x T` row-major.
    pub fn plane(&self, c: usize) -> &[f32] {
        let n = self.bins * self.frames;
        &self.data[c * n..(c + 1) * n]
    }

    /// Plane `c`, mutable.
    pub fn plane_mut(&mut self, c: usize) -> &mut [f32] {
        let n = self.bins * self.frames;
        &mut self.data[c * n..(c + 1) * n]
    }
}

thread_local! {
    /// Each thread keeps its STFT buffers, and the two sides' complex spectra the interaural
    /// planes are made from, between files, so a batch allocates them once.
    static SCRATCH: RefCell<(StftScratch, [Vec<Complex32>; 2])> = RefCell::new(Default::default());
}

/// A checked [`FeatureConfig`] with its STFT planned: turns files into [`Features`]. Cheap to
/// clone and `Sync`, so threads share one.
#[derive(Clone, Debug)]
pub struct FeatureExtractor {
    config: FeatureConfig,
    stft: Stft,
}

impl FeatureExtractor {
    /// Checks `config` (every problem at once) and plans the STFT.
    pub fn new(config: FeatureConfig) -> Result<Self, AudioError> {
        let mut issues = Issues::default();
        config.check(&mut issues);
        if !issues.is_empty() {
            return Err(AudioError::Config(issues.into_vec()));
        }
        let stft = Stft::new(&config.stft)
            .map_err(|e| AudioError::Config(vec![kindling_core::ConfigIssue::new("stft", e.to_string())]))?;
        Ok(Self { config, stft })
    }

    /// The configuration.
    pub fn config(&self) -> &FeatureConfig {
        &self.config
    }

    /// The planned STFT.
    pub fn stft(&self) -> &Stft {
        &self.stft
    }

    /// The shape every file gives, when `wav.duration` fixes the length.
    pub fn shape(&self) -> Option<[usize; 3]> {
        let frames = self.stft.frames(self.config.wav.target_frames()?).ok()?;
        Some([self.config.channels.len(), self.stft.bins(), frames])
    }

    /// Reads, checks and transforms one file. With `normalize: per_sample` the result is
    /// normalised; with `fitted` it is raw, for [`crate::NormStats::apply`].
    pub fn from_path(&self, path: &Path) -> Result<Features, AudioError> {
        let bytes = std::fs::read(path).map_err(|e| AudioError::io(path, e))?;
        self.from_bytes(path, &bytes)
    }

    /// As [`FeatureExtractor::from_path`], for the bytes of `path` already in memory.
    pub fn from_bytes(&self, path: &Path, bytes: &[u8]) -> Result<Features, AudioError> {
        let audio = self.config.wav.decode(path, bytes)?;
        self.from_audio(path, &audio)
    }

    /// Transforms audio that already fits `wav` (see [`WavExpect::conform`]); `path` names the
    /// source in errors.
    pub fn from_audio(&self, path: &Path, audio: &Audio) -> Result<Features, AudioError> {
        let channels = &self.config.channels;
        if let Some(c) = channels.iter().find(|c| c.channels_needed() > audio.channels.len()) {
            return Err(AudioError::mismatch(
                path,
                format!("has {} channel(s), {} needs a right channel", audio.channels.len(), c.name()),
            ));
        }
        let stft_error = |source| AudioError::Stft { path: path.to_owned(), source };
        let frames = self.stft.frames(audio.frames()).map_err(stft_error)?;
        let bins = self.stft.bins();
        let plane = bins * frames;
        let mut data = vec![0.0f32; channels.len() * plane];
        let mut planes: Vec<Option<&mut [f32]>> = data.chunks_exact_mut(plane).map(Some).collect();
        let mut between = InterauralOutputs::default();
        for (c, slot) in channels.iter().zip(planes.iter_mut()) {
            match c.quantity() {
                Quantity::PhaseDifferenceCos => between.ipd_cos = slot.take(),
                Quantity::PhaseDifferenceSin => between.ipd_sin = slot.take(),
                Quantity::LevelDifference => between.ild = slot.take(),
                Quantity::CrossCorrelation => between.gcc_phat = slot.take(),
                Quantity::Coherence => between.coherence = slot.take(),
                _ => {}
            }
        }
        let interaural = between.any();
        SCRATCH.with(|scratch| {
            let (scratch, spectra) = &mut *scratch.borrow_mut();
            for (side, signal) in audio.channels.iter().enumerate().take(2) {
                let mut out = StftOutputs::default();
                let mut any = false;
                for (c, slot) in channels.iter().zip(planes.iter_mut()) {
                    if c.side() != Some(side) {
                        continue;
                    }
                    any = true;
                    let target = slot.take();
                    match c.quantity() {
                        Quantity::Magnitude => out.magnitude = target,
                        Quantity::Phase => out.phase = target,
                        Quantity::Power => out.power = target,
                        Quantity::LogMagnitude => out.log_magnitude = target,
                        _ => {}
                    }
                }
                if interaural {
                    spectra[side].resize(plane, Complex32::new(0.0, 0.0));
                    out.complex = Some(&mut spectra[side]);
                }
                if any || interaural {
                    self.stft.compute(signal, scratch, out).map_err(stft_error)?;
                }
            }
            if interaural {
                let [left, right] = &*spectra;
                let grid =
                    interaural::Grid { bins, frames, n_fft: self.config.stft.n_fft, sample_rate: audio.sample_rate };
                interaural::compute(left, right, grid, self.config.coherence_use(), between);
            }
            Ok::<(), AudioError>(())
        })?;
        let mut features = Features { channels: channels.clone(), bins, frames, data };
        if self.config.normalize == Normalize::PerSample {
            norm::normalize_per_sample(&mut features);
        }
        Ok(features)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{TempDir, stereo_tone_wav, write_int_wav};

    fn config(channels: &[Channel], normalize: Normalize) -> FeatureConfig {
        FeatureConfig {
            wav: WavExpect { duration: Some(0.5), ..WavExpect::default() },
            stft: StftConfig { n_fft: 128, hop_length: Some(64), ..StftConfig::default() },
            channels: channels.to_vec(),
            normalize,
            ..FeatureConfig::default()
        }
    }

    #[test]
    fn stereo_file_gives_mag_and_phase_planes_in_order() {
        let dir = TempDir::new("features");
        let path = dir.join("a.wav");
        stereo_tone_wav(&path, 16_000, 8000, 1);
        let ex = FeatureExtractor::new(config(&Channel::STEREO_MAG_PHASE, Normalize::None)).unwrap();
        let f = ex.from_path(&path).unwrap();
        assert_eq!(f.shape(), [4, 65, 126]);
        assert_eq!(ex.shape(), Some([4, 65, 126]));

        let audio = read_expected(&ex, &path);
        let (l_mag, l_phase) = ex.stft().magnitude_phase(&audio.channels[0]).unwrap();
        let (r_mag, r_phase) = ex.stft().magnitude_phase(&audio.channels[1]).unwrap();
        assert_eq!(f.plane(0), &l_mag[..]);
        assert_eq!(f.plane(1), &r_mag[..]);
        assert_eq!(f.plane(2), &l_phase[..]);
        assert_eq!(f.plane(3), &r_phase[..]);
        // The right channel is quieter: its magnitudes are smaller.
        assert!(r_mag.iter().sum::<f32>() < l_mag.iter().sum::<f32>());

        // Any subset in any order, including the derived quantities.
        let pick = [Channel::RPhase, Channel::LLogmag, Channel::RPower];
        let g = FeatureExtractor::new(config(&pick, Normalize::None)).unwrap().from_path(&path).unwrap();
        assert_eq!(g.shape(), [3, 65, 126]);
        assert_eq!(g.plane(0), &r_phase[..]);
        for ((&lg, &m), (&p, &rm)) in g.plane(1).iter().zip(&l_mag).zip(g.plane(2).iter().zip(&r_mag)) {
            assert!((lg - (m + crate::stft::LOG_EPS).ln()).abs() < 1e-5);
            assert!((p - rm * rm).abs() <= 1e-5 * rm * rm + 1e-6);
        }
    }

    fn read_expected(ex: &FeatureExtractor, path: &Path) -> Audio {
        ex.config().wav.read(path).unwrap()
    }

    #[test]
    fn per_sample_normalisation_is_applied_on_extraction() {
        let dir = TempDir::new("features-norm");
        let path = dir.join("a.wav");
        stereo_tone_wav(&path, 16_000, 8000, 2);
        let f = FeatureExtractor::new(config(&Channel::STEREO_MAG_PHASE, Normalize::PerSample))
            .unwrap()
            .from_path(&path)
            .unwrap();
        let mags: Vec<f64> = f.plane(0).iter().chain(f.plane(1)).map(|&x| f64::from(x)).collect();
        let mean = mags.iter().sum::<f64>() / mags.len() as f64;
        let var = mags.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / mags.len() as f64;
        assert!(mean.abs() < 1e-4 && (var.sqrt() - 1.0).abs() < 1e-4, "{mean} {var}");
        let raw = FeatureExtractor::new(config(&Channel::STEREO_MAG_PHASE, Normalize::Fitted))
            .unwrap()
            .from_path(&path)
            .unwrap();
        assert_ne!(raw.data, f.data);
    }

    #[test]
    fn interaural_planes_are_their_definitions_beside_the_per_side_planes() {
        let dir = TempDir::new("features-interaural");
        let path = dir.join("a.wav");
        stereo_tone_wav(&path, 16_000, 8000, 3);
        let pick =
            [Channel::GccPhat, Channel::LLogmag, Channel::Ild, Channel::IpdSin, Channel::RLogmag, Channel::IpdCos];
        let ex = FeatureExtractor::new(config(&pick, Normalize::None)).unwrap();
        let f = ex.from_path(&path).unwrap();
        assert_eq!(f.shape(), [6, 65, 126]);
        let audio = read_expected(&ex, &path);
        let (_, l_phase) = ex.stft().magnitude_phase(&audio.channels[0]).unwrap();
        let (_, r_phase) = ex.stft().magnitude_phase(&audio.channels[1]).unwrap();
        // ILD is the difference of the log-magnitude planes, to the last bit.
        for ((&d, &l), &r) in f.plane(2).iter().zip(f.plane(1)).zip(f.plane(4)) {
            assert_eq!(d, l - r);
        }
        // IPD: cosine and sine of the difference of the phases, wherever both sides are heard.
        let (l, r) = (ex.stft().complex(&audio.channels[0]).unwrap(), ex.stft().complex(&audio.channels[1]).unwrap());
        for i in 0..f.bins * f.frames {
            if l[i].norm() * r[i].norm() > 1e-6 {
                let d = f64::from(l_phase[i]) - f64::from(r_phase[i]);
                assert!((f64::from(f.plane(5)[i]) - d.cos()).abs() < 1e-4, "cos at {i}");
                assert!((f64::from(f.plane(3)[i]) - d.sin()).abs() < 1e-4, "sin at {i}");
            }
        }
        // GCC-PHAT: bounded, one row per lag.
        assert!(f.plane(0).iter().all(|x| x.abs() <= 1.0 + 1e-5));

        // Per-sample normalisation leaves the interaural planes as they are.
        let g = FeatureExtractor::new(config(&pick, Normalize::PerSample)).unwrap().from_path(&path).unwrap();
        for c in [0, 2, 3, 5] {
            assert_eq!(g.plane(c), f.plane(c), "plane {c}");
        }
        assert_ne!(g.plane(1), f.plane(1));
        // Asked for alone, they are the same planes.
        let alone = FeatureExtractor::new(config(&[Channel::Ild], Normalize::None)).unwrap().from_path(&path).unwrap();
        assert_eq!(alone.plane(0), f.plane(2));

        // The coherence plane, per-sample normalisation leaving it in [0, 1]; with weighting,
        // the IPD planes are the unweighted ones times it.
        let mut weighted = config(&[Channel::IpdCos, Channel::Coherence, Channel::IpdSin], Normalize::PerSample);
        weighted.coherence_weighting = true;
        let w = FeatureExtractor::new(weighted).unwrap().from_path(&path).unwrap();
        let gamma = w.plane(1);
        assert!(gamma.iter().all(|g| (0.0..=1.0).contains(g)) && gamma.iter().any(|&g| g > 0.5));
        for (i, g) in gamma.iter().enumerate() {
            assert!((w.plane(0)[i] - g * f.plane(5)[i]).abs() < 1e-6, "weighted cos at {i}");
            assert!((w.plane(2)[i] - g * f.plane(3)[i]).abs() < 1e-6, "weighted sin at {i}");
        }
    }

    #[test]
    fn interaural_channels_parse_by_name_and_need_two_channels() {
        let parsed: FeatureConfig =
            serde_json::from_str(r#"{"channels": ["ipd_cos", "ipd_sin", "ild", "gcc_phat", "l_logmag"]}"#).unwrap();
        assert_eq!(
            parsed.channels,
            [Channel::IpdCos, Channel::IpdSin, Channel::Ild, Channel::GccPhat, Channel::LLogmag]
        );
        for c in Channel::ALL {
            assert_eq!(serde_json::to_value(c).unwrap(), c.name());
        }
        for bad in ["ipd", "itd", "gcc", "IPD_COS"] {
            assert!(serde_json::from_str::<FeatureConfig>(&format!(r#"{{"channels": ["{bad}"]}}"#)).is_err(), "{bad}");
        }
        let mut mono = config(&[Channel::LMag, Channel::Ild, Channel::GccPhat], Normalize::None);
        mono.wav.channels = 1;
        let err = FeatureExtractor::new(mono).unwrap_err().to_string();
        for key in ["channels[1]: ild needs both a left and a right", "channels[2]: gcc_phat needs both"] {
            assert!(err.contains(key), "`{err}` lacks `{key}`");
        }
        assert!(!err.contains("channels[0]"), "{err}");
    }

    #[test]
    fn configuration_errors_are_collected_with_their_keys() {
        let mut bad = config(&[Channel::LMag, Channel::LMag, Channel::RMag], Normalize::None);
        bad.wav.channels = 1;
        bad.stft.n_fft = 1;
        let err = FeatureExtractor::new(bad).unwrap_err().to_string();
        for key in ["stft.n_fft", "channels[1]: l_mag is listed twice", "channels[2]: r_mag needs a right channel"] {
            assert!(err.contains(key), "`{err}` lacks `{key}`");
        }
        let mut quad = config(&[Channel::LMag], Normalize::None);
        quad.wav.channels = 4;
        assert!(FeatureExtractor::new(quad).unwrap_err().to_string().contains("wav.channels: must be 1 or 2"));
        for frames in [0, 1, 4, 65] {
            let mut window = config(&[Channel::Coherence], Normalize::None);
            window.coherence_frames = frames;
            let err = FeatureExtractor::new(window).unwrap_err().to_string();
            assert!(
                err.contains("coherence_frames: must be odd and 3 to 63") && err.contains(&format!("got {frames}"))
            );
        }
        let mut nothing_to_weight = config(&[Channel::Ild, Channel::Coherence], Normalize::None);
        nothing_to_weight.coherence_weighting = true;
        let err = FeatureExtractor::new(nothing_to_weight).unwrap_err().to_string();
        assert!(err.contains("coherence_weighting: weights ipd_cos, ipd_sin and gcc_phat"), "{err}");
        let mut weighted = config(&[Channel::IpdCos, Channel::Coherence], Normalize::PerSample);
        weighted.coherence_weighting = true;
        assert!(FeatureExtractor::new(weighted).is_ok());
        let parsed: FeatureConfig = serde_json::from_str(
            r#"{"channels": ["l_mag", "r_mag"], "normalize": "fitted", "stft": {"n_fft": 512, "hop_length": 256}}"#,
        )
        .unwrap();
        assert_eq!(parsed.channels, [Channel::LMag, Channel::RMag]);
        assert!(serde_json::from_str::<FeatureConfig>(r#"{"channels": ["left_mag"]}"#).is_err());
        assert!(serde_json::from_str::<FeatureConfig>(r#"{"normalise": "none"}"#).is_err());
    }

    #[test]
    fn mono_and_short_files_are_errors_naming_the_file() {
        let dir = TempDir::new("features-bad");
        let mono = dir.join("mono.wav");
        write_int_wav(&mono, 1, 16_000, 16, &vec![0; 8000]);
        let ex = FeatureExtractor::new(config(&Channel::STEREO_MAG_PHASE, Normalize::None)).unwrap();
        let err = ex.from_path(&mono).unwrap_err().to_string();
        assert!(err.contains("mono.wav") && err.contains("mono"), "{err}");

        let short = dir.join("short.wav");
        write_int_wav(&short, 2, 16_000, 16, &vec![0; 100]);
        let mut any_length = config(&Channel::STEREO_MAG_PHASE, Normalize::None);
        any_length.wav.duration = None;
        let err = FeatureExtractor::new(any_length).unwrap().from_path(&short).unwrap_err().to_string();
        assert!(err.contains("short.wav") && err.contains("50 samples") && err.contains("at least 65"), "{err}");
    }
}
