//! The `audio_dataset` stage: WAV files -> cached, normalised STFT features -> splits that load
//! their samples from the cache one batch at a time.

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
use crate::{
    AudioDataset, AudioError, CacheEntry, CacheStatus, FeatureCache, FeatureConfig, FeatureExtractor, NormStats,
    Normalize, SpecAugment,
};

/// Configuration of `audio_dataset`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AudioDatasetConfig {
    /// A folder of class folders, `root/<class>/*.wav` (classes sorted by name).
    pub root: Option<String>,
    /// Or a CSV manifest with a `path,label` header (paths relative to the CSV).
    pub manifest: Option<String>,
    /// Validate on this separate folder instead of a split of the training set.
    pub valid_root: Option<String>,
    /// Or on this separate manifest.
    pub valid_manifest: Option<String>,
    /// Share of each class held out for validation (stratified, by the run's seed) when no
    /// separate validation set is given.
    #[schemars(range(min = 0))]
    #[schemars(extend("exclusiveMaximum" = 1))]
    pub valid_fraction: f64,
    /// Use only the first N files of each class (in listing order), for quick runs.
    #[schemars(range(min = 1))]
    pub per_class_limit: Option<usize>,
    /// What the WAV files must be, the STFT, the planes and their normalisation.
    pub features: FeatureConfig,
    /// Where features are cached (relative paths against the pipeline's base directory).
    pub cache_dir: String,
    /// SpecAugment time and frequency masks drawn afresh for every training sample in every
    /// epoch (seeded by the run's seed, the epoch and the sample); validation is never masked.
    pub spec_augment: Option<SpecAugment>,
}

impl Default for AudioDatasetConfig {
    fn default() -> Self {
        Self {
            root: None,
            manifest: None,
            valid_root: None,
            valid_manifest: None,
            valid_fraction: 0.2,
            per_class_limit: None,
            features: FeatureConfig::default(),
            cache_dir: ".kindling-cache/audio".to_owned(),
            spec_augment: None,
        }
    }
}

impl StageConfig for AudioDatasetConfig {
    const KEY_DOCS: &'static [(&'static str, &'static str)] = &[
        ("root", "folder of class folders root/<class>/*.wav"),
        ("manifest", "or a CSV manifest path,label (paths relative to the CSV)"),
        ("valid_root", "validate on this separate folder instead of a split"),
        ("valid_manifest", "or on this separate manifest"),
        ("valid_fraction", "share of each class held out for validation when no separate set is given"),
        ("per_class_limit", "use only the first N files of each class"),
        (
            "features",
            "wav {channels, sample_rate, duration, length, mono}, stft {n_fft, hop_length, win_length, center}, \
             channels [l_mag, r_mag, l_phase, r_phase], normalize per_sample | fitted | none",
        ),
        ("cache_dir", "where computed features are kept, keyed by file content and parameters"),
        (
            "spec_augment",
            "training-time masking: {freq_mask_param, time_mask_param, freq_masks, time_masks, time_mask_p, iid_masks, mask_value}",
        ),
    ];

    fn check(&self, issues: &mut Issues) {
        match (&self.root, &self.manifest) {
            (Some(_), Some(_)) => issues.push("manifest", "give either root or manifest, not both"),
            (None, None) => issues.push("", "give `root` (a folder of class folders) or `manifest` (a CSV)"),
            _ => {}
        }
        if self.valid_root.is_some() && self.valid_manifest.is_some() {
            issues.push("valid_manifest", "give either valid_root or valid_manifest, not both");
        }
        issues.require(
            (0.0..1.0).contains(&self.valid_fraction),
            "valid_fraction",
            format!("must be in [0, 1), got {}", self.valid_fraction),
        );
        issues.require(self.per_class_limit != Some(0), "per_class_limit", "must be at least 1");
        issues.at("features", |i| self.features.check(i));
        if let Some(a) = &self.spec_augment {
            issues.at("spec_augment", |i| a.check(i));
        }
    }
}

pub(crate) fn audio_dataset() -> StageDef {
    StageDef::new::<AudioDatasetConfig>(
        "audio_dataset",
        "stereo WAV files -> cached, normalised STFT magnitude/phase features -> train/valid splits",
        &[],
        &["dataset"],
        |config| Box::new(AudioStage { config }),
    )
    .with_roles(&[(KeyRole::HeldOutFolder, "valid_root"), (KeyRole::HeldOutManifest, "valid_manifest")])
}

struct AudioStage {
    config: AudioDatasetConfig,
}

/// One listed set and the config key that named it.
pub(crate) fn list(
    base: &Path,
    root: Option<&String>,
    manifest: Option<&String>,
) -> Option<Result<AudioDataset, AudioError>> {
    match (root, manifest) {
        (Some(r), _) => Some(AudioDataset::from_folder(&base.join(r))),
        (None, Some(m)) => Some(AudioDataset::from_manifest(&base.join(m))),
        (None, None) => None,
    }
}

impl AudioStage {
    fn train_set(&self, base: &Path) -> Option<Result<AudioDataset, AudioError>> {
        let c = &self.config;
        list(base, c.root.as_ref(), c.manifest.as_ref()).map(|r| r.map(|d| limit(d, c.per_class_limit)))
    }

    fn valid_set(&self, base: &Path) -> Option<Result<AudioDataset, AudioError>> {
        let c = &self.config;
        list(base, c.valid_root.as_ref(), c.valid_manifest.as_ref()).map(|r| r.map(|d| limit(d, c.per_class_limit)))
    }

    /// The data set, and the statistics fitted on its training split (when it fits some).
    fn load(&self, io: &StageIo<'_>) -> Result<(Dataset, Option<Arc<NormStats>>), StageError> {
        let c = &self.config;
        let base = io.base_dir;
        let domain = StageError::domain;
        let train_set = self.train_set(base).unwrap_or_else(|| Err(AudioError::Config(Vec::new()))).map_err(domain)?;
        let (train_items, valid_items) = match self.valid_set(base) {
            Some(valid) => {
                let valid = valid.map_err(domain)?;
                let items = relabel(&valid, &train_set.classes)?;
                ((0..train_set.items.len()).map(|i| train_set.items[i].clone()).collect::<Vec<_>>(), items)
            }
            None => {
                let (t, v) = train_set.split(c.valid_fraction, io.seed).map_err(domain)?;
                (
                    t.iter().map(|&i| train_set.items[i].clone()).collect(),
                    v.iter().map(|&i| train_set.items[i].clone()).collect(),
                )
            }
        };
        let cache = Arc::new(FeatureCache::new(base.join(&c.cache_dir), c.features.clone()).map_err(domain)?);
        let files: Vec<PathBuf> = train_items.iter().chain(&valid_items).map(|i| i.path.clone()).collect();
        let mut entries = compute_entries(&cache, &files)?;
        let valid_entries = entries.split_off(train_items.len());
        let stats = match c.features.normalize {
            Normalize::Fitted => {
                let stats = cache.fit_stats(&entries).map_err(domain)?;
                let text = serde_json::to_string_pretty(&stats).unwrap_or_default();
                io.run_dir
                    .write("norm_stats.json", text.as_bytes())
                    .map_err(|e| StageError::io(io.run_dir.path().join("norm_stats.json"), e))?;
                Some(Arc::new(stats))
            }
            _ => None,
        };
        let augment = c.spec_augment.clone().map(|a| (Arc::new(a), io.seed));
        let split = |items: &[crate::AudioItem], entries: Vec<CacheEntry>| Split {
            x: Vec::new(),
            y: items.iter().map(|i| i.label).collect(),
            source: Some(Arc::new(CachedSamples {
                cache: Arc::clone(&cache),
                entries,
                stats: stats.clone(),
                augment: augment.clone(),
            })),
        };
        let shape = entries.first().or(valid_entries.first()).map_or_else(Vec::new, |e| e.shape.to_vec());
        let data = Dataset {
            shape,
            classes: train_set.classes.clone(),
            train: split(&train_items, entries),
            valid: split(&valid_items, valid_entries),
            test: None,
        };
        Ok((data, stats))
    }
}

/// The cache entries of `files`, computed (in parallel) where the cache lacks them; every file
/// that cannot be used is reported (the first five named).
pub(crate) fn compute_entries(cache: &FeatureCache, files: &[PathBuf]) -> Result<Vec<CacheEntry>, StageError> {
    let start = Instant::now();
    let results = cache.compute_all(files);
    let mut entries = Vec::with_capacity(results.len());
    let mut failures = Vec::new();
    for r in results {
        match r {
            Ok(e) => entries.push(e),
            Err(e) => failures.push(e.to_string()),
        }
    }
    if !failures.is_empty() {
        let shown: Vec<&str> = failures.iter().take(5).map(String::as_str).collect();
        let more = if failures.len() > 5 { format!("\n... and {} more", failures.len() - 5) } else { String::new() };
        return Err(StageError::Stopped(format!(
            "{} of {} audio files could not be used:\n{}{more}",
            failures.len(),
            files.len(),
            shown.join("\n")
        )));
    }
    let computed = entries.iter().filter(|e| e.status != CacheStatus::Hit).count();
    eprintln!(
        "audio: {} files, {} computed, {} from the cache ({}) in {:.1} s",
        entries.len(),
        computed,
        entries.len() - computed,
        cache.dir().display(),
        start.elapsed().as_secs_f64()
    );
    Ok(entries)
}

/// Keeps the first `limit` items of each class.
fn limit(mut d: AudioDataset, limit: Option<usize>) -> AudioDataset {
    if let Some(n) = limit {
        let mut seen = vec![0usize; d.classes.len()];
        d.items.retain(|i| {
            let k = &mut seen[i.label as usize];
            *k += 1;
            *k <= n
        });
    }
    d
}

/// The items of a separate validation or test set, labelled by the training set's class names.
pub(crate) fn relabel(set: &AudioDataset, classes: &[String]) -> Result<Vec<crate::AudioItem>, StageError> {
    set.items
        .iter()
        .map(|item| {
            let name = &set.classes[item.label as usize];
            let label = classes.iter().position(|c| c == name).ok_or_else(|| {
                StageError::Stopped(format!(
                    "{}: class `{name}` of this held-out set is not a training class ({})",
                    item.path.display(),
                    classes.join(", ")
                ))
            })?;
            Ok(crate::AudioItem { path: item.path.clone(), label: label as u32 })
        })
        .collect()
}

/// A split's samples in the feature cache, loaded one at a time (with the fitted statistics
/// applied, when there are any).
#[derive(Debug)]
pub(crate) struct CachedSamples {
    pub(crate) cache: Arc<FeatureCache>,
    pub(crate) entries: Vec<CacheEntry>,
    pub(crate) stats: Option<Arc<NormStats>>,
    /// Training-time masking and the run's seed.
    pub(crate) augment: Option<(Arc<SpecAugment>, u64)>,
}

impl SampleSource for CachedSamples {
    fn load_train(&self, i: usize, epoch: usize, out: &mut [f32]) -> Result<(), String> {
        self.load(i, out)?;
        if let Some((augment, seed)) = &self.augment {
            let shape = self.entries[i].shape;
            augment.apply_seeded(out, shape, *seed, epoch as u64, i as u64).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn load(&self, i: usize, out: &mut [f32]) -> Result<(), String> {
        let entry = self.entries.get(i).ok_or_else(|| format!("no sample {i} in the split"))?;
        let mut features = self.cache.load(entry).map_err(|e| e.to_string())?;
        if let Some(stats) = &self.stats {
            stats.apply(&mut features).map_err(|e| e.to_string())?;
        }
        if features.data.len() != out.len() {
            return Err(format!(
                "{}: {} feature values, the data set's samples have {}",
                entry.source.display(),
                features.data.len(),
                out.len()
            ));
        }
        out.copy_from_slice(&features.data);
        Ok(())
    }
}

impl Stage for AudioStage {
    fn plan(&self, cx: &mut PlanCx<'_>) {
        let c = &self.config;
        let key = if c.root.is_some() { "root" } else { "manifest" };
        let classes = match self.train_set(cx.base_dir) {
            Some(Ok(d)) => Some(d.classes.len()),
            Some(Err(e)) => {
                cx.issues.push(key, e.to_string());
                None
            }
            None => None,
        };
        let valid_key = if c.valid_root.is_some() { "valid_root" } else { "valid_manifest" };
        if let Some(Err(e)) = self.valid_set(cx.base_dir) {
            cx.issues.push(valid_key, e.to_string());
        }
        let shape = match FeatureExtractor::new(c.features.clone()) {
            Ok(x) => x.shape(),
            Err(e) => {
                cx.issues.push("features", e.to_string());
                return;
            }
        };
        let Some(shape) = shape else {
            cx.issues.push(
                "features.wav.duration",
                "set a duration (with length: pad_or_crop) so every sample has the same shape",
            );
            return;
        };
        if let Some(classes) = classes {
            cx.facts.insert(DataSpec { shape: shape.to_vec(), classes });
        }
    }

    fn run(&mut self, io: &mut StageIo<'_>) -> Result<(), StageError> {
        let (data, stats) = self.load(io)?;
        let extractor = FeatureExtractor::new(self.config.features.clone()).map_err(StageError::domain)?;
        eprintln!(
            "data: {} train, {} valid samples of {:?}, {} classes",
            data.train.len(),
            data.valid.len(),
            data.shape,
            data.classes.len()
        );
        io.artifacts.insert(data);
        let input: Box<dyn InputReader> = Box::new(AudioInput { extractor, stats });
        io.artifacts.insert(input);
        Ok(())
    }
}
