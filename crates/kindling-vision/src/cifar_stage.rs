//! The `cifar_dataset` stage: CIFAR-10 binary batches -> transformed train/valid/test splits.

use std::path::Path;
use std::sync::Arc;

use kindling_augment::Pipeline;
use kindling_core::{
    DataSpec, Dataset, Issues, PlanCx, Stage, StageConfig, StageDef, StageError, StageIo, stratified_split,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cifar::{CIFAR_SIDE, CifarImages, read_cifar_classes};
use crate::image_stage::{report, shapes, source_split};
use crate::store::ImageStore;

/// CIFAR-10's class names, in label order (used when `batches.meta.txt` is absent).
pub const CIFAR10_CLASSES: [&str; 10] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/// Configuration of `cifar_dataset`. Relative paths are resolved against the pipeline file's
/// directory.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
// `check` requires these; a schema can say so (serde's `default` lets them be absent).
#[schemars(extend("required" = ["root"]))]
#[serde(deny_unknown_fields, default)]
pub struct CifarDatasetConfig {
    /// The folder holding the batch files (`cifar-10-batches-bin`).
    pub root: String,
    /// Training batch files, relative to `root`.
    #[schemars(length(min = 1))]
    pub train_batches: Vec<String>,
    /// The test batch, relative to `root`; `null` for none.
    pub test_batch: Option<String>,
    /// Share of each class held out for validation, in [0, 1).
    #[schemars(range(min = 0))]
    #[schemars(extend("exclusiveMaximum" = 1))]
    pub valid_fraction: f64,
    /// Use only the first N training images (before the split).
    #[schemars(range(min = 1))]
    pub train_limit: Option<usize>,
    /// torchvision-style transforms after `ToTensor` (see `kindling-augment`).
    pub transforms: Pipeline,
}

impl Default for CifarDatasetConfig {
    fn default() -> Self {
        Self {
            root: String::new(),
            train_batches: (1..=5).map(|i| format!("data_batch_{i}.bin")).collect(),
            test_batch: Some("test_batch.bin".to_owned()),
            valid_fraction: 0.1,
            train_limit: None,
            transforms: Pipeline::default(),
        }
    }
}

impl StageConfig for CifarDatasetConfig {
    const KEY_DOCS: &'static [(&'static str, &'static str)] = &[
        ("root", "folder of the CIFAR-10 binary batches (required)"),
        ("train_batches", "training batch files (default data_batch_1.bin .. data_batch_5.bin)"),
        ("test_batch", "test batch file (default test_batch.bin; null for none)"),
        ("valid_fraction", "share of each class held out for validation, in [0, 1)"),
        ("train_limit", "use only the first N training images"),
        ("transforms", "list of transforms, as for image_dataset"),
    ];

    fn check(&self, issues: &mut Issues) {
        issues.require(!self.root.is_empty(), "root", "is required");
        issues.require(!self.train_batches.is_empty(), "train_batches", "list at least one batch file");
        issues.require(self.train_limit != Some(0), "train_limit", "must be at least 1");
        issues.require(
            (0.0..1.0).contains(&self.valid_fraction),
            "valid_fraction",
            format!("must be in [0, 1), got {}", self.valid_fraction),
        );
        issues.at("transforms", |i| self.transforms.check(i));
    }
}

pub(crate) fn cifar_dataset() -> StageDef {
    StageDef::new::<CifarDatasetConfig>(
        "cifar_dataset",
        "CIFAR-10 binary batches -> transformed train/valid/test splits",
        &[],
        &["dataset"],
        |config| Box::new(CifarDataset { config }),
    )
}

struct CifarDataset {
    config: CifarDatasetConfig,
}

impl CifarDataset {
    fn read(&self, root: &Path, files: &[String], limit: Option<usize>) -> Result<(ImageStore, Vec<u32>), String> {
        let mut images = CifarImages::default();
        let mut origin = Vec::new();
        for f in files {
            let before = images.len();
            images.read_batch(&root.join(f)).map_err(|e| e.to_string())?;
            origin.extend((0..images.len() - before).map(|n| (f.clone(), n)));
        }
        let n = limit.map_or(images.len(), |l| l.min(images.len()));
        let per = CIFAR_SIDE * CIFAR_SIDE * 3;
        images.pixels.truncate(n * per);
        images.labels.truncate(n);
        let store = ImageStore::from_pixels(images.pixels, n, [CIFAR_SIDE, CIFAR_SIDE, 3], |i| {
            let (file, record) = &origin[i];
            format!("{}#{record}", root.join(file).display())
        });
        Ok((store, images.labels))
    }

    fn load(&self, base: &Path, seed: u64) -> Result<Dataset, String> {
        let c = &self.config;
        let root = base.join(&c.root);
        let meta = root.join("batches.meta.txt");
        let classes = if meta.is_file() {
            read_cifar_classes(&meta).map_err(|e| e.to_string())?
        } else {
            CIFAR10_CLASSES.map(str::to_owned).to_vec()
        };
        let shape = shapes([3, CIFAR_SIDE, CIFAR_SIDE], &c.transforms)?;
        let pipeline = Arc::new(c.transforms.clone());
        let (store, labels) = self.read(&root, &c.train_batches, c.train_limit)?;
        let store = Arc::new(store);
        let (train_idx, valid_idx) = stratified_split(&labels, c.valid_fraction, seed);
        let test = match &c.test_batch {
            Some(f) => {
                let (test_store, test_labels) = self.read(&root, std::slice::from_ref(f), None)?;
                let all = (0..test_labels.len()).collect();
                Some(source_split(&Arc::new(test_store), &test_labels, all, &pipeline, seed, shape))
            }
            None => None,
        };
        Ok(Dataset {
            shape: shape.to_vec(),
            classes,
            train: source_split(&store, &labels, train_idx, &pipeline, seed, shape),
            valid: source_split(&store, &labels, valid_idx, &pipeline, seed, shape),
            test,
        })
    }
}

impl Stage for CifarDataset {
    fn plan(&self, cx: &mut PlanCx<'_>) {
        let root = cx.base_dir.join(&self.config.root);
        let files = self
            .config
            .train_batches
            .iter()
            .map(|f| ("train_batches", f))
            .chain(self.config.test_batch.iter().map(|f| ("test_batch", f)));
        for (key, f) in files {
            let path = root.join(f);
            if !path.is_file() {
                cx.issues.push(key, format!("{}: no such file", path.display()));
            }
        }
        match shapes([3, CIFAR_SIDE, CIFAR_SIDE], &self.config.transforms) {
            Ok(shape) => cx.facts.insert(DataSpec { shape: shape.to_vec(), classes: 10 }),
            Err(e) => cx.issues.push("transforms", e),
        }
    }

    fn run(&mut self, io: &mut StageIo<'_>) -> Result<(), StageError> {
        let data = self.load(io.base_dir, io.seed).map_err(StageError::Stopped)?;
        report(&data);
        io.artifacts.insert(data);
        io.artifacts.insert(crate::input::ImageInput::reader(&self.config.transforms, None));
        Ok(())
    }
}
