//! The `spatial_dataset` stage: a stereo direction training set rendered afresh for every
//! sample in every epoch from measured HRIRs and source recordings (see [`crate::render`]),
//! validated on a fixed set of WAV files read through the feature cache, and optionally tested
//! once after training on another fixed set.
//!
//! (Over 300 lines: one stage's configuration, checks, plan and sample source; 109 of its
//! lines are tests.)

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use kindling_core::{
    DataSpec, Dataset, InputReader, Issues, KeyRole, PlanCx, SampleSource, Split, Stage, StageConfig, StageDef,
    StageError, StageIo,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::input::AudioInput;
use crate::render::{Conditions, Head, PACKAGES, Renderer, THEME_SOURCES, find_sources};
use crate::spatial::class_name;
use crate::stage::{CachedSamples, compute_entries, list, relabel};
use crate::{Audio, FeatureCache, FeatureConfig, FeatureExtractor, Normalize};

/// Configuration of `spatial_dataset`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SpatialDatasetConfig {
    /// The measured head training samples are rendered through: `kemar` or `fabian` (the SSR
    /// packages' HRIR files).
    pub head: Option<Head>,
    /// Or an HRIR file in the SSR layout (720 channels; relative to the pipeline).
    pub hrir: Option<String>,
    /// Source recordings: WAV or Ogg Vorbis files, or folders of them (relative to the
    /// pipeline). Default: the ALSA and freedesktop sound themes' recordings.
    pub sources: Vec<String>,
    /// Azimuths of the classes in degrees, counter-clockwise from the front (+90 = left);
    /// class `i` is named `<i>_az<azimuth>` (`03_az-36`) as `kindling data spatialize` names it.
    pub directions: Vec<i32>,
    /// Training samples per class per epoch.
    #[schemars(range(min = 1))]
    pub per_class: usize,
    /// Diffuse noise at an SNR drawn from `[lo, hi]` dB per sample; none when unset.
    pub snr_db: Option<[f64; 2]>,
    /// A late-reverberation tail with an RT60 drawn from `[lo, hi]` seconds; none when unset.
    pub rt60: Option<[f64; 2]>,
    /// The tail's direct-to-reverberant ratio, drawn from `[lo, hi]` dB.
    pub drr_db: [f64; 2],
    /// Head size: the HRIR pair stretched in time by a factor from `[1 - s, 1 + s]`, which
    /// scales the interaural time difference by it.
    #[schemars(range(min = 0, max = 0.5))]
    pub itd_scale: f64,
    /// Per-ear EQ: six band gains (125 Hz to 4 kHz) per ear from `[-e, e]` dB.
    #[schemars(range(min = 0, max = 20))]
    pub eq_db: f64,
    /// Spectral tilt common to both ears from `[-t, t]` dB per octave.
    #[schemars(range(min = 0, max = 6))]
    pub tilt_db: f64,
    /// A broadband level difference between the ears from `[-j, j]` dB.
    #[schemars(range(min = 0, max = 20))]
    pub ild_jitter_db: f64,
    /// The fixed validation set: a folder of class folders...
    pub valid_root: Option<String>,
    /// ...or a CSV manifest with a `path,label` header (paths relative to the CSV).
    pub valid_manifest: Option<String>,
    /// A fixed test set, evaluated once after training (another head, other conditions): a
    /// folder of class folders...
    pub test_root: Option<String>,
    /// ...or a CSV manifest with a `path,label` header.
    pub test_manifest: Option<String>,
    /// The rendered length and rate (`wav.duration`, `wav.sample_rate`), the STFT, the planes
    /// and their normalisation (`per_sample` or `none`), as in `audio_dataset`.
    pub features: FeatureConfig,
    /// Where the validation set's features are cached (relative to the pipeline).
    pub cache_dir: String,
}

impl Default for SpatialDatasetConfig {
    fn default() -> Self {
        let c = Conditions::default();
        Self {
            head: None,
            hrir: None,
            sources: Vec::new(),
            directions: (0..11).map(|i| -90 + 18 * i).collect(),
            per_class: 64,
            snr_db: c.snr_db,
            rt60: c.rt60,
            drr_db: c.drr_db,
            itd_scale: c.itd_scale,
            eq_db: c.eq_db,
            tilt_db: c.tilt_db,
            ild_jitter_db: c.ild_jitter_db,
            valid_root: None,
            valid_manifest: None,
            test_root: None,
            test_manifest: None,
            features: FeatureConfig::default(),
            cache_dir: ".kindling-cache/audio".to_owned(),
        }
    }
}

impl SpatialDatasetConfig {
    /// The ranges each sample's conditions are drawn from.
    pub fn conditions(&self) -> Conditions {
        Conditions {
            snr_db: self.snr_db,
            rt60: self.rt60,
            drr_db: self.drr_db,
            itd_scale: self.itd_scale,
            eq_db: self.eq_db,
            tilt_db: self.tilt_db,
            ild_jitter_db: self.ild_jitter_db,
        }
    }

    /// The HRIR file, and the key that named it.
    fn hrir_path(&self, base: &Path) -> Option<(PathBuf, &'static str)> {
        match (&self.hrir, self.head) {
            (Some(h), _) => Some((base.join(h), "hrir")),
            (None, Some(head)) => Some((head.path(), "head")),
            (None, None) => None,
        }
    }

    /// The source recordings (folders listed), and the key they come from.
    fn source_files(&self, base: &Path) -> Result<Vec<PathBuf>, String> {
        let roots: Vec<PathBuf> = if self.sources.is_empty() {
            THEME_SOURCES.iter().map(PathBuf::from).collect()
        } else {
            self.sources.iter().map(|s| base.join(s)).collect()
        };
        let found = find_sources(&roots).map_err(|e| e.to_string())?;
        if found.is_empty() {
            let shown: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
            return Err(format!("no WAV or Ogg Vorbis recordings in {}", shown.join(", ")));
        }
        Ok(found)
    }

    fn class_names(&self) -> Vec<String> {
        self.directions.iter().enumerate().map(|(i, &az)| class_name(i, az)).collect()
    }
}

impl StageConfig for SpatialDatasetConfig {
    const KEY_DOCS: &'static [(&'static str, &'static str)] = &[
        ("head", "measured head to render training samples through: kemar | fabian (SSR's HRIR files)"),
        ("hrir", "or an HRIR file in the SSR layout (720 channels)"),
        ("sources", "source recordings: WAV/Ogg files or folders (default: the ALSA and freedesktop sound themes)"),
        ("directions", "class azimuths in degrees, +90 = left (default -90 to 90 in 18-degree steps)"),
        ("per_class", "training samples rendered per class per epoch"),
        ("snr_db", "[lo, hi]: diffuse noise at an SNR drawn per sample (dB)"),
        ("rt60", "[lo, hi]: a reverberation tail with an RT60 drawn per sample (s)"),
        ("drr_db", "[lo, hi]: the tail's direct-to-reverberant ratio (dB)"),
        ("itd_scale", "head size: HRIRs stretched by a factor in [1 - s, 1 + s], scaling the ITD"),
        ("eq_db", "per-ear EQ: six band gains per ear in [-e, e] dB"),
        ("tilt_db", "spectral tilt in [-t, t] dB per octave, both ears"),
        ("ild_jitter_db", "a level difference between the ears in [-j, j] dB"),
        ("valid_root", "the fixed validation set: a folder of class folders"),
        ("valid_manifest", "or a CSV manifest path,label"),
        ("test_root", "a fixed test set evaluated once after training: a folder of class folders"),
        ("test_manifest", "or a CSV manifest path,label"),
        ("features", "as in audio_dataset; wav.duration and wav.sample_rate set what is rendered"),
        ("cache_dir", "where the validation set's features are cached"),
    ];

    fn check(&self, issues: &mut Issues) {
        if self.head.is_some() && self.hrir.is_some() {
            issues.push("hrir", "give either head or hrir, not both");
        } else if self.head.is_none() && self.hrir.is_none() {
            issues.push("", "give `head` (kemar or fabian) or `hrir` (an HRIR file)");
        }
        if self.directions.is_empty() {
            issues.push("directions", "must list at least one azimuth");
        }
        for (i, az) in self.directions.iter().enumerate() {
            if self.directions[..i].contains(az) {
                issues.push(&format!("directions[{i}]"), format!("{az} is listed twice"));
            }
        }
        issues.require(self.per_class >= 1, "per_class", "must be at least 1");
        self.conditions().check(issues);
        match (&self.valid_root, &self.valid_manifest) {
            (Some(_), Some(_)) => issues.push("valid_manifest", "give either valid_root or valid_manifest, not both"),
            (None, None) => issues.push("", "give `valid_manifest` (or `valid_root`): the fixed validation set"),
            _ => {}
        }
        if self.test_root.is_some() && self.test_manifest.is_some() {
            issues.push("test_manifest", "give either test_root or test_manifest, not both");
        }
        issues.at("features", |i| self.features.check(i));
        issues.require(
            self.features.normalize != Normalize::Fitted,
            "features.normalize",
            "rendered training samples have no fixed set to fit statistics on: use per_sample or none",
        );
        issues.require(
            self.features.wav.channels == 2,
            "features.wav.channels",
            format!("renders are stereo: must be 2, got {}", self.features.wav.channels),
        );
    }
}

pub(crate) fn spatial_dataset() -> StageDef {
    StageDef::new::<SpatialDatasetConfig>(
        "spatial_dataset",
        "stereo direction training samples rendered afresh every epoch from measured HRIRs (noise, reverberation, \
         head variation), validated on a fixed set",
        &[],
        &["dataset"],
        |config| Box::new(SpatialStage { config }),
    )
    // `kindling eval --data` replaces the test set, the split a run is evaluated on.
    .with_roles(&[(KeyRole::HeldOutFolder, "test_root"), (KeyRole::HeldOutManifest, "test_manifest")])
}

struct SpatialStage {
    config: SpatialDatasetConfig,
}

/// Checks that `path` is an HRIR set in the SSR layout by its header alone.
fn check_hrir_header(path: &Path) -> Result<(), String> {
    let reader = hound::WavReader::open(path).map_err(|e| {
        let hint = if path.starts_with(crate::render::SSR_HRIRS) {
            format!(" (apt-get install {PACKAGES})")
        } else {
            String::new()
        };
        format!("{}: not a readable WAV file ({e}){hint}", path.display())
    })?;
    let channels = reader.spec().channels;
    if channels != 720 {
        return Err(format!(
            "{}: has {channels} channels; an HRIR set has 720 (left and right ear for each degree)",
            path.display()
        ));
    }
    Ok(())
}

impl Stage for SpatialStage {
    fn plan(&self, cx: &mut PlanCx<'_>) {
        let c = &self.config;
        if let Some((path, key)) = c.hrir_path(cx.base_dir)
            && let Err(e) = check_hrir_header(&path)
        {
            cx.issues.push(key, e);
        }
        if let Err(e) = c.source_files(cx.base_dir) {
            cx.issues.push("sources", e);
        }
        let held_out = [
            (if c.valid_root.is_some() { "valid_root" } else { "valid_manifest" }, &c.valid_root, &c.valid_manifest),
            (if c.test_root.is_some() { "test_root" } else { "test_manifest" }, &c.test_root, &c.test_manifest),
        ];
        for (key, root, manifest) in held_out {
            match list(cx.base_dir, root.as_ref(), manifest.as_ref()) {
                Some(Err(e)) => cx.issues.push(key, e.to_string()),
                Some(Ok(set)) => {
                    let names = c.class_names();
                    if let Some(stray) = set.classes.iter().find(|v| !names.contains(v)) {
                        cx.issues.push(
                            key,
                            format!("class `{stray}` is not one of the rendered directions ({})", names.join(", ")),
                        );
                    }
                }
                None => {}
            }
        }
        let shape = match FeatureExtractor::new(c.features.clone()) {
            Ok(x) => x.shape(),
            Err(e) => {
                cx.issues.push("features", e.to_string());
                return;
            }
        };
        let Some(shape) = shape else {
            cx.issues.push("features.wav.duration", "set the duration every rendered and validation sample has");
            return;
        };
        if !c.directions.is_empty() {
            cx.facts.insert(DataSpec { shape: shape.to_vec(), classes: c.directions.len() });
        }
    }

    fn run(&mut self, io: &mut StageIo<'_>) -> Result<(), StageError> {
        let c = &self.config;
        let base = io.base_dir;
        let domain = StageError::domain;
        let (hrir, _) = c.hrir_path(base).ok_or_else(|| StageError::Stopped("give `head` or `hrir`".into()))?;
        let sources = c.source_files(base).map_err(StageError::Stopped)?;
        let extractor = FeatureExtractor::new(c.features.clone()).map_err(domain)?;
        let shape = extractor
            .shape()
            .ok_or_else(|| StageError::Stopped("features.wav.duration: set the rendered duration".into()))?;
        let wav = &c.features.wav;
        let duration = wav.duration.unwrap_or_default();
        let start = Instant::now();
        let renderer = Renderer::load(&hrir, &sources, &c.directions, wav.sample_rate, duration, c.conditions())
            .map_err(StageError::domain)?;
        eprintln!(
            "spatial: {} directions through {}, {} sources, loaded in {:.1} s",
            c.directions.len(),
            hrir.display(),
            sources.len(),
            start.elapsed().as_secs_f64()
        );
        let classes = c.class_names();
        let valid = list(base, c.valid_root.as_ref(), c.valid_manifest.as_ref())
            .ok_or_else(|| StageError::Stopped("give `valid_manifest` or `valid_root`".into()))?
            .map_err(domain)?;
        let cache = Arc::new(FeatureCache::new(base.join(&c.cache_dir), c.features.clone()).map_err(domain)?);
        let fixed = |set: &crate::AudioDataset| -> Result<Split, StageError> {
            let items = relabel(set, &classes)?;
            let files: Vec<PathBuf> = items.iter().map(|i| i.path.clone()).collect();
            let entries = compute_entries(&cache, &files)?;
            Ok(Split {
                x: Vec::new(),
                y: items.iter().map(|i| i.label).collect(),
                source: Some(Arc::new(CachedSamples { cache: cache.clone(), entries, stats: None, augment: None })),
            })
        };
        let valid = fixed(&valid)?;
        let test = match list(base, c.test_root.as_ref(), c.test_manifest.as_ref()) {
            Some(set) => Some(fixed(&set.map_err(domain)?)?),
            None => None,
        };
        let n = c.directions.len() * c.per_class;
        let data = Dataset {
            shape: shape.to_vec(),
            classes,
            train: Split {
                x: Vec::new(),
                y: (0..n).map(|i| (i / c.per_class) as u32).collect(),
                source: Some(Arc::new(RenderedSamples {
                    renderer: Arc::new(renderer),
                    extractor: extractor.clone(),
                    per_class: c.per_class,
                    seed: io.seed,
                })),
            },
            valid,
            test,
        };
        let tested = data.test.as_ref().map_or(String::new(), |t| format!(", {} test samples", t.len()));
        eprintln!(
            "data: {} train samples rendered per epoch, {} valid samples{tested} of {:?}, {} classes",
            data.train.len(),
            data.valid.len(),
            data.shape,
            data.classes.len()
        );
        io.artifacts.insert(data);
        let input: Box<dyn InputReader> = Box::new(AudioInput { extractor, stats: None });
        io.artifacts.insert(input);
        Ok(())
    }
}

/// Training samples rendered on demand: sample `i` is direction `i / per_class`, drawn for
/// (the run's seed, the epoch, `i`). Evaluation reads (`load`) see epoch 0's renders.
#[derive(Debug)]
pub(crate) struct RenderedSamples {
    pub(crate) renderer: Arc<Renderer>,
    pub(crate) extractor: FeatureExtractor,
    pub(crate) per_class: usize,
    pub(crate) seed: u64,
}

impl SampleSource for RenderedSamples {
    fn load_train(&self, i: usize, epoch: usize, out: &mut [f32]) -> Result<(), String> {
        let dir = i / self.per_class.max(1);
        if dir >= self.renderer.directions() {
            return Err(format!("no sample {i} in the rendered split"));
        }
        let [l, r] = self.renderer.render(dir, self.seed, epoch as u64, i as u64);
        let audio = Audio { sample_rate: self.renderer.rate(), channels: vec![l, r] };
        let name = PathBuf::from(format!("<rendered sample {i} of epoch {epoch}>"));
        let features = self.extractor.from_audio(&name, &audio).map_err(|e| e.to_string())?;
        if features.data.len() != out.len() {
            return Err(format!(
                "{}: {} feature values, the data set's samples have {}",
                name.display(),
                features.data.len(),
                out.len()
            ));
        }
        out.copy_from_slice(&features.data);
        Ok(())
    }

    fn load(&self, i: usize, out: &mut [f32]) -> Result<(), String> {
        self.load_train(i, 0, out)
    }
}

#[cfg(test)]
mod tests {
    use rayon::prelude::*;

    use super::*;
    use crate::spatial::{Hrirs, load_hrirs, write_synthetic_hrirs};
    use crate::testutil::TempDir;
    use crate::{Channel, StftConfig, WavExpect};

    fn features(duration: f64) -> FeatureConfig {
        FeatureConfig {
            wav: WavExpect { duration: Some(duration), ..WavExpect::default() },
            stft: StftConfig { n_fft: 256, hop_length: Some(128), ..StftConfig::default() },
            channels: vec![Channel::LLogmag, Channel::RLogmag],
            normalize: Normalize::PerSample,
            ..FeatureConfig::default()
        }
    }

    fn samples(dir: &TempDir) -> RenderedSamples {
        let hrir = dir.join("hrirs.wav");
        write_synthetic_hrirs(&hrir, 16_000, 32).unwrap();
        let hrirs: Hrirs = load_hrirs(&hrir, &[-90, 0, 90], 16_000).unwrap();
        let mut rng = kindling_core::rng_from_seed(4, "stage-test-source");
        let source: Vec<f32> = (0..8000).map(|_| crate::spatial::gauss(&mut rng) as f32).collect();
        let conditions = Conditions {
            snr_db: Some([0.0, 20.0]),
            rt60: Some([0.1, 0.3]),
            itd_scale: 0.15,
            eq_db: 3.0,
            tilt_db: 1.0,
            ild_jitter_db: 2.0,
            ..Conditions::default()
        };
        let renderer = Renderer::new(hrirs, vec![source], 16_000, 0.5, conditions).unwrap();
        RenderedSamples {
            renderer: Arc::new(renderer),
            extractor: FeatureExtractor::new(features(0.5)).unwrap(),
            per_class: 4,
            seed: 11,
        }
    }

    #[test]
    fn rendered_features_repeat_by_seed_epoch_and_sample_whatever_the_threads() {
        let dir = TempDir::new("render-stage");
        let s = samples(&dir);
        let shape = s.extractor.shape().unwrap();
        assert_eq!(shape, [2, 129, 63]);
        let per: usize = shape.iter().product();
        let load = |i: usize, epoch: usize| {
            let mut out = vec![0.0f32; per];
            s.load_train(i, epoch, &mut out).unwrap();
            out.iter().map(|v| v.to_bits()).collect::<Vec<u32>>()
        };
        let serial: Vec<Vec<u32>> = (0..12).map(|i| load(i, 2)).collect();
        for threads in [1, 4] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let mut parallel: Vec<(usize, Vec<u32>)> =
                pool.install(|| (0..12).rev().collect::<Vec<_>>().into_par_iter().map(|i| (i, load(i, 2))).collect());
            parallel.sort_by_key(|(i, _)| *i);
            assert!(parallel.into_iter().all(|(i, p)| p == serial[i]), "{threads} threads");
        }
        assert_ne!(load(5, 2), load(5, 3), "another epoch, another render");
        // Evaluation reads are epoch 0's renders.
        let mut out = vec![0.0f32; per];
        s.load(5, &mut out).unwrap();
        assert_eq!(out.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), load(5, 0));
        let e = s.load_train(12, 0, &mut out).unwrap_err();
        assert_eq!(e, "no sample 12 in the rendered split");
        let e = s.load_train(0, 0, &mut out[1..]).unwrap_err();
        assert!(e.contains("<rendered sample 0 of epoch 0>"), "{e}");
    }

    #[test]
    fn bad_values_are_reported_with_their_keys() {
        let json = r#"{"hrir": "h.wav", "head": "kemar", "directions": [0, 18, 0], "per_class": 0,
            "snr_db": [10, -5], "rt60": [0.2, 9], "itd_scale": 0.7, "ild_jitter_db": -2,
            "features": {"normalize": "fitted"}}"#;
        let config: SpatialDatasetConfig = serde_json::from_str(json).unwrap();
        let mut issues = Issues::default();
        config.check(&mut issues);
        let text: Vec<String> = issues.into_vec().iter().map(ToString::to_string).collect();
        let text = text.join("\n");
        for key in [
            "hrir: give either head or hrir",
            "directions[2]: 0 is listed twice",
            "per_class: must be at least 1",
            "snr_db: must be [lo, hi]",
            "rt60: must lie in",
            "itd_scale",
            "ild_jitter_db",
            "give `valid_manifest`",
            "features.normalize",
        ] {
            assert!(text.contains(key), "`{text}` lacks `{key}`");
        }
        assert!(serde_json::from_str::<SpatialDatasetConfig>(r#"{"itd_scaling": 0.1}"#).is_err());
        let fine: SpatialDatasetConfig = serde_json::from_str(
            r#"{"head": "fabian", "valid_manifest": "v.csv", "snr_db": [0, 20],
                "features": {"wav": {"duration": 1.0}}}"#,
        )
        .unwrap();
        let mut issues = Issues::default();
        fine.check(&mut issues);
        assert!(issues.is_empty(), "{:?}", issues.into_vec());
        assert_eq!(fine.class_names()[0], "00_az-90");
        assert_eq!(fine.class_names()[10], "10_az+90");
    }
}
