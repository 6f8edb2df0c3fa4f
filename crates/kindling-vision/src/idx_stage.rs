//! The `idx_dataset` stage: IDX files -> a normalised, split [`Dataset`]. The training and
//! test files are read the same way; each split's samples are then either scaled and
//! normalised in memory (the `normalize` key) or read through the transforms (`transforms`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kindling_augment::Pipeline;
use kindling_core::{
    DataSpec, Dataset, Issues, PlanCx, Split, Stage, StageConfig, StageDef, StageError, StageIo, stratified_split,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::idx::{IdxPair, class_count};
use crate::image_stage::{report, shapes, source_split};
use crate::store::ImageStore;
use crate::{VisionError, read_idx, read_idx_header};

/// Configuration of `idx_dataset`. Relative paths are resolved against the pipeline file's
/// directory.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
// `check` requires these; a schema can say so (serde's `default` lets them be absent).
#[schemars(extend("required" = ["train_images", "train_labels"]))]
#[serde(deny_unknown_fields, default)]
pub struct IdxDatasetConfig {
    /// Training images (`[count, rows, cols]` IDX, gzipped or not).
    pub train_images: String,
    /// Training labels (`[count]` IDX).
    pub train_labels: String,
    /// Test images, evaluated once after training.
    pub test_images: Option<String>,
    /// Test labels.
    pub test_labels: Option<String>,
    /// Share of each class of the training files held out for validation.
    #[schemars(range(min = 0))]
    #[schemars(extend("exclusiveMaximum" = 1))]
    pub valid_fraction: f64,
    /// Use only the first N training samples (before the split).
    #[schemars(range(min = 1))]
    pub train_limit: Option<usize>,
    /// Use only the first N test samples.
    #[schemars(range(min = 1))]
    pub test_limit: Option<usize>,
    /// Class names, in label order; default `"0"`, `"1"`, ...
    pub classes: Option<Vec<String>>,
    /// Per-channel mean/std applied after scaling pixels to [0, 1] (torchvision's `ToTensor`
    /// then `Normalize`); absent means scaling only.
    pub normalize: Option<Normalize>,
    /// torchvision-style transforms after `ToTensor` (see `kindling-augment`); with them,
    /// normalisation is a `normalize` step of the list rather than the `normalize` key.
    pub transforms: Pipeline,
}

/// torchvision's `Normalize(mean, std)`: `x' = (x - mean) / std`, per channel.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "IdxNormalize")]
#[serde(deny_unknown_fields)]
pub struct Normalize {
    /// Per-channel mean.
    #[schemars(length(equal = 1))]
    pub mean: Vec<f64>,
    /// Per-channel standard deviation.
    #[schemars(length(equal = 1))]
    #[schemars(extend("items" = {"type": "number", "exclusiveMinimum": 0}))]
    pub std: Vec<f64>,
}

impl Default for IdxDatasetConfig {
    fn default() -> Self {
        Self {
            train_images: String::new(),
            train_labels: String::new(),
            test_images: None,
            test_labels: None,
            valid_fraction: 0.1,
            train_limit: None,
            test_limit: None,
            classes: None,
            normalize: None,
            transforms: Pipeline::default(),
        }
    }
}

impl StageConfig for IdxDatasetConfig {
    const KEY_DOCS: &'static [(&'static str, &'static str)] = &[
        ("train_images", "IDX file of training images (required; .gz or plain)"),
        ("train_labels", "IDX file of training labels (required)"),
        ("test_images", "IDX file of test images, evaluated once after training"),
        ("test_labels", "IDX file of test labels (required with test_images)"),
        ("valid_fraction", "share of each class held out for validation, in [0, 1)"),
        ("train_limit", "use only the first N training samples"),
        ("test_limit", "use only the first N test samples"),
        ("classes", "class names in label order (default: \"0\", \"1\", ...)"),
        ("normalize", "{mean: [..], std: [..]} per channel, after scaling to [0, 1]"),
        ("transforms", "list of transforms, as for image_dataset (normalize then goes in the list)"),
    ];

    fn check(&self, issues: &mut Issues) {
        issues.require(!self.train_images.is_empty(), "train_images", "is required");
        issues.require(!self.train_labels.is_empty(), "train_labels", "is required");
        issues.require(
            self.test_images.is_some() == self.test_labels.is_some(),
            if self.test_images.is_some() { "test_labels" } else { "test_images" },
            "test_images and test_labels go together",
        );
        issues.require(
            (0.0..1.0).contains(&self.valid_fraction),
            "valid_fraction",
            format!("must be in [0, 1), got {}", self.valid_fraction),
        );
        issues.require(self.train_limit != Some(0), "train_limit", "must be at least 1");
        issues.require(self.test_limit != Some(0), "test_limit", "must be at least 1");
        if let Some(n) = &self.normalize {
            issues.require(n.mean.len() == 1, "normalize.mean", "IDX images have 1 channel: give one mean");
            issues.require(n.std.len() == 1, "normalize.std", "IDX images have 1 channel: give one std");
            issues.require(n.std.iter().all(|&s| s > 0.0), "normalize.std", "must be positive");
            issues.require(
                self.transforms.steps.is_empty(),
                "normalize",
                "with transforms, normalise with a `normalize` step at the end of the list instead",
            );
        }
        issues.at("transforms", |i| self.transforms.check(i));
    }
}

pub(crate) fn idx_dataset() -> StageDef {
    StageDef::new::<IdxDatasetConfig>(
        "idx_dataset",
        "IDX image files (MNIST, Fashion-MNIST) -> normalised train/valid/test splits",
        &[],
        &["dataset"],
        |config| Box::new(IdxDataset { config }),
    )
}

struct IdxDataset {
    config: IdxDatasetConfig,
}

/// The configuration keys of the four files, in the order [`IdxDataset::paths`] gives them.
const SLOTS: [&str; 4] = ["train_images", "train_labels", "test_images", "test_labels"];

impl IdxDataset {
    fn paths(&self, base: &Path) -> [(Option<PathBuf>, &'static str); 4] {
        let c = &self.config;
        let p = |s: &str| Some(base.join(s));
        let files = [
            p(&c.train_images),
            p(&c.train_labels),
            c.test_images.as_deref().and_then(p),
            c.test_labels.as_deref().and_then(p),
        ];
        let mut slots = SLOTS.into_iter();
        files.map(|f| (f, slots.next().unwrap_or_default()))
    }

    /// Reads the files (training pair, then test pair) and builds the splits, each through
    /// [`Samples`]: scaled and normalised in memory, or read through the transforms.
    fn load(&self, base: &Path, seed: u64) -> Result<Dataset, VisionError> {
        let c = &self.config;
        let [(Some(ti), _), (Some(tl), _), (test_i, _), (test_l, _)] = self.paths(base) else {
            unreachable!("training paths are always present")
        };
        let (x, y, shape, all_classes) = load_pair(&ti, &tl, c.train_limit)?;
        let classes = class_names(c.classes.as_deref(), all_classes, &tl)?;
        let (train_idx, valid_idx) = stratified_split(&y, c.valid_fraction, seed);
        let [_, h, w] = [shape[0], shape[1], shape[2]];
        let transformed = if c.transforms.steps.is_empty() {
            None
        } else {
            let out = shapes([1, h, w], &c.transforms)
                .map_err(|message| VisionError::Mismatch { path: PathBuf::from(&c.train_images), message })?;
            Some((Arc::new(c.transforms.clone()), out))
        };
        let samples = |x: Vec<u8>, n: usize, file: &str| match &transformed {
            None => Samples::Scaled { x, per: h * w, normalize: c.normalize.as_ref() },
            Some((pipeline, out)) => {
                let file = file.to_owned();
                let store = ImageStore::from_pixels(x, n, [h, w, 1], move |i| format!("{file}#{i}"));
                Samples::Transformed { store: Arc::new(store), pipeline, seed, shape: *out }
            }
        };
        let test = match (test_i, test_l) {
            (Some(i), Some(l)) => {
                let (tx, ty, tshape, test_classes) = load_pair(&i, &l, c.test_limit)?;
                if tshape != shape {
                    return Err(VisionError::Mismatch {
                        path: i,
                        message: format!("test images are {tshape:?}, training images are {shape:?}"),
                    });
                }
                class_names(Some(&classes), test_classes, &l)?;
                let all = (0..ty.len()).collect();
                Some(samples(tx, ty.len(), &i.display().to_string()).split(&ty, all))
            }
            _ => None,
        };
        let train = samples(x, y.len(), &c.train_images);
        let shape = transformed.as_ref().map_or(shape, |(_, out)| out.to_vec());
        Ok(Dataset { shape, classes, train: train.split(&y, train_idx), valid: train.split(&y, valid_idx), test })
    }
}

/// How the samples of one IDX file become a split.
enum Samples<'a> {
    /// Scaled to [0, 1] and normalised once, held in memory (the `normalize` key, or no key).
    Scaled {
        /// The file's pixels.
        x: Vec<u8>,
        /// Pixels per image.
        per: usize,
        /// The mean and std to normalise with, if any.
        normalize: Option<&'a Normalize>,
    },
    /// Read through the transforms each time a sample is loaded (the `transforms` key).
    Transformed {
        /// The file's pixels as images.
        store: Arc<ImageStore>,
        /// The transforms.
        pipeline: &'a Arc<Pipeline>,
        /// The run's seed (the transforms' draws derive from it).
        seed: u64,
        /// The sample shape after the transforms.
        shape: [usize; 3],
    },
}

impl Samples<'_> {
    /// The split of the samples at `idx`, with their labels from `y`.
    fn split(&self, y: &[u32], idx: Vec<usize>) -> Split {
        match self {
            Self::Scaled { x, per, normalize } => gather(x, y, &idx, *per, *normalize),
            Self::Transformed { store, pipeline, seed, shape } => source_split(store, y, idx, pipeline, *seed, *shape),
        }
    }
}

impl Stage for IdxDataset {
    fn plan(&self, cx: &mut PlanCx<'_>) {
        // Sample counts per slot (train images, train labels, test images, test labels), for
        // the files whose headers could be read.
        let mut counts = [None; 4];
        let mut shape = None;
        for (slot, (path, key)) in self.paths(cx.base_dir).into_iter().enumerate() {
            let Some(path) = path else { continue };
            match read_idx_header(&path) {
                Ok(h) if key.ends_with("images") && h.dims.len() != 3 => cx.issues.push(
                    key,
                    format!(
                        "{}: expected images [count, rows, cols], found {} dimensions",
                        path.display(),
                        h.dims.len()
                    ),
                ),
                Ok(h) if key.ends_with("labels") && h.dims.len() != 1 => cx.issues.push(
                    key,
                    format!("{}: expected labels [count], found {} dimensions", path.display(), h.dims.len()),
                ),
                Ok(h) => {
                    if key == "train_images" {
                        match shapes([1, h.dims[1], h.dims[2]], &self.config.transforms) {
                            Ok(s) => shape = Some(s.to_vec()),
                            Err(e) => cx.issues.push("transforms", e),
                        }
                    }
                    counts[slot] = Some(h.dims[0]);
                }
                Err(e) => cx.issues.push(key, e.to_string()),
            }
        }
        for (images, labels) in [(0, 1), (2, 3)] {
            if let (Some(ni), Some(nl)) = (counts[images], counts[labels])
                && ni != nl
            {
                cx.issues.push(SLOTS[labels], format!("{nl} labels for {ni} images in {}", SLOTS[images]));
            }
        }
        // The class count comes from the names or, without them, from the whole training
        // label file (small: one byte a sample), as the run counts it.
        let classes = match &self.config.classes {
            Some(names) => Some(names.len()),
            None => {
                self.paths(cx.base_dir)[1].0.as_deref().and_then(|p| read_idx(p).ok()).map(|l| class_count(&l.data))
            }
        };
        if let (Some(shape), Some(classes)) = (shape, classes) {
            cx.facts.insert(DataSpec { shape, classes });
        }
    }

    fn run(&mut self, io: &mut StageIo<'_>) -> Result<(), StageError> {
        let data = self.load(io.base_dir, io.seed).map_err(StageError::domain)?;
        report(&data);
        io.artifacts.insert(data);
        io.artifacts.insert(crate::input::ImageInput::reader(&self.config.transforms, self.config.normalize.as_ref()));
        Ok(())
    }
}

/// Raw pixels, labels, the per-sample shape, and the class count of the whole label file
/// (highest label + 1, before any limit).
type Pair = (Vec<u8>, Vec<u32>, Vec<usize>, usize);

/// Reads an image file and its label file, checking that they agree and hold at least one
/// image, and keeps the first `limit` samples.
fn load_pair(images: &Path, labels: &Path, limit: Option<usize>) -> Result<Pair, VisionError> {
    let pair = IdxPair::read(images, labels)?;
    let [count, rows, cols] = pair.dims;
    if count == 0 {
        return Err(VisionError::malformed(images, "holds no images"));
    }
    let n = limit.map_or(count, |l| l.min(count));
    let classes = pair.class_count();
    let mut x = pair.pixels;
    x.truncate(n * rows * cols);
    let y = pair.labels[..n].iter().map(|&b| u32::from(b)).collect();
    Ok((x, y, vec![1, rows, cols], classes))
}

/// The class names: the configured ones (checked to cover all `count` classes of the label
/// file at `path`) or "0".."count-1".
fn class_names(names: Option<&[String]>, count: usize, path: &Path) -> Result<Vec<String>, VisionError> {
    match names {
        Some(names) if count > names.len() => Err(VisionError::Mismatch {
            path: path.to_owned(),
            message: format!("holds label {}, but only {} class names are configured", count - 1, names.len()),
        }),
        Some(names) => Ok(names.to_vec()),
        None => Ok((0..count).map(|i| i.to_string()).collect()),
    }
}

/// Copies the samples at `idx`, scaled to [0, 1] and normalised.
fn gather(x: &[u8], y: &[u32], idx: &[usize], per: usize, normalize: Option<&Normalize>) -> Split {
    let (mean, std) = normalize.map_or((0.0, 1.0), |n| (n.mean[0] as f32, n.std[0] as f32));
    let mut out = Vec::with_capacity(idx.len() * per);
    for &i in idx {
        out.extend(x[i * per..(i + 1) * per].iter().map(|&p| (f32::from(p) / 255.0 - mean) / std));
    }
    Split::new(out, idx.iter().map(|&i| y[i]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kindling_core::Facts;

    fn data_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist")
    }

    fn config() -> IdxDatasetConfig {
        IdxDatasetConfig {
            train_images: "train-images-idx3-ubyte.gz".into(),
            train_labels: "train-labels-idx1-ubyte.gz".into(),
            test_images: Some("t10k-images-idx3-ubyte.gz".into()),
            test_labels: Some("t10k-labels-idx1-ubyte.gz".into()),
            train_limit: Some(500),
            test_limit: Some(100),
            valid_fraction: 0.2,
            normalize: Some(Normalize { mean: vec![0.5], std: vec![0.5] }),
            ..IdxDatasetConfig::default()
        }
    }

    #[test]
    fn the_shipped_subset_loads_split_and_normalised() {
        let stage = IdxDataset { config: config() };
        let d = stage.load(&data_dir(), 1).unwrap();
        assert_eq!(d.shape, [1, 28, 28]);
        assert_eq!(d.classes.len(), 10);
        assert_eq!((d.train.len(), d.valid.len()), (400, 100));
        assert_eq!(d.test.as_ref().unwrap().len(), 100);
        assert_eq!(d.train.x.len(), 400 * 784);
        assert!(d.train.x.iter().all(|v| (-1.0..=1.0).contains(v)));
        assert!(d.train.x.iter().any(|&v| v > 0.9) && d.train.x.iter().any(|&v| v == -1.0));
    }

    #[test]
    fn plan_reads_headers_and_reports_every_bad_file() {
        let mut facts = Facts::default();
        let mut issues = Issues::default();
        let stage = IdxDataset { config: config() };
        stage.plan(&mut PlanCx { facts: &mut facts, issues: &mut issues, base_dir: &data_dir() });
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(facts.get::<DataSpec>(), Some(&DataSpec { shape: vec![1, 28, 28], classes: 10 }));

        let swapped = IdxDatasetConfig {
            train_labels: "t10k-labels-idx1-ubyte.gz".into(),
            test_images: Some("nope.gz".into()),
            ..config()
        };
        let mut issues = Issues::default();
        IdxDataset { config: swapped }.plan(&mut PlanCx {
            facts: &mut facts,
            issues: &mut issues,
            base_dir: &data_dir(),
        });
        let got: Vec<String> = issues.into_vec().iter().map(|i| i.path.clone()).collect();
        assert_eq!(got, ["test_images", "train_labels"]);
    }

    #[test]
    fn labels_beyond_the_class_names_are_an_error_naming_the_file() {
        let c = IdxDatasetConfig { classes: Some(vec!["a".into(), "b".into()]), ..config() };
        let err = IdxDataset { config: c }.load(&data_dir(), 1).unwrap_err().to_string();
        assert!(
            err.ends_with("train-labels-idx1-ubyte.gz: holds label 9, but only 2 class names are configured"),
            "{err}"
        );
    }
}
