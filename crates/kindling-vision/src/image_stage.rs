//! The `image_dataset` stage: an image folder (`root/<class>/*`) or a CSV manifest -> decoded,
//! cached, transformed train/valid/test splits; and the `cifar_dataset` stage for the CIFAR-10
//! binary batches. Both hand out their samples through [`ImageSource`], which applies the
//! configured transforms (augmentation in training only, unless a step says `apply: all`).
//!
//! (Over 450 lines: one stage's configuration, listing, decoding and checks; 163 of its lines are
//! its tests.)

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kindling_augment::Pipeline;
use kindling_core::{
    DataSpec, Dataset, Issues, KeyRole, LabelledFiles, PlanCx, Split, Stage, StageConfig, StageDef, StageError,
    StageIo, stratified_split,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::decode::{IMAGE_EXTENSIONS, image_size};
use crate::store::{ImageSource, ImageStore};

/// What to do with a file that cannot be decoded, or a class folder with no images.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Stop with an error naming the file (the default).
    #[default]
    Fail,
    /// Leave it out and print a warning listing everything left out.
    Skip,
}

/// Configuration of `image_dataset`. Relative paths are resolved against the pipeline file's
/// directory.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ImageDatasetConfig {
    /// Folder of class folders, `root/<class>/**/*.{png,jpg,jpeg,bmp,gif,webp}`.
    pub root: Option<String>,
    /// A `path,label` CSV instead of `root`.
    pub manifest: Option<String>,
    /// Test images in a folder of the same class folders, evaluated once after training.
    pub test_root: Option<String>,
    /// Test images listed in a `path,label` CSV.
    pub test_manifest: Option<String>,
    /// 1 (grey) or 3 (RGB): every image is converted to this.
    #[schemars(extend("enum" = [1, 3]))]
    pub channels: usize,
    /// Share of each class held out for validation, in [0, 1).
    #[schemars(range(min = 0))]
    #[schemars(extend("exclusiveMaximum" = 1))]
    pub valid_fraction: f64,
    /// Use only the first N files (in sorted order) of each class, for training and for test.
    #[schemars(range(min = 1))]
    pub limit_per_class: Option<usize>,
    /// `fail` on an undecodable file or an empty class folder, or `skip` it with a warning.
    pub on_error: OnError,
    /// Keep decoded images in memory up to this many MiB; larger sets are decoded on every read.
    pub cache_mib: usize,
    /// torchvision-style transforms after `ToTensor` (see `kindling-augment`).
    pub transforms: Pipeline,
}

impl Default for ImageDatasetConfig {
    fn default() -> Self {
        Self {
            root: None,
            manifest: None,
            test_root: None,
            test_manifest: None,
            channels: 3,
            valid_fraction: 0.1,
            limit_per_class: None,
            on_error: OnError::Fail,
            cache_mib: 2048,
            transforms: Pipeline::default(),
        }
    }
}

impl StageConfig for ImageDatasetConfig {
    const KEY_DOCS: &'static [(&'static str, &'static str)] = &[
        ("root", "folder of class folders: root/<class>/*.{png,jpg,jpeg,bmp,gif,webp} (or manifest)"),
        ("manifest", "CSV with `path` and `label` columns, instead of root"),
        ("test_root", "test images in the same class folders, evaluated once after training"),
        ("test_manifest", "test images as a path,label CSV"),
        ("channels", "1 (grey) or 3 (RGB); every image is converted (default 3)"),
        ("valid_fraction", "share of each class held out for validation, in [0, 1)"),
        ("limit_per_class", "use only the first N files of each class"),
        ("on_error", "fail (default) or skip undecodable files and empty class folders, with a warning"),
        ("cache_mib", "keep decoded images in memory up to this size (default 2048)"),
        (
            "transforms",
            "list of transforms: resize, center_crop, random_crop, random_resized_crop, random_horizontal_flip, random_vertical_flip, random_rotation, rotate, color_jitter, normalize; `apply: all` also applies one to evaluation",
        ),
    ];

    fn check(&self, issues: &mut Issues) {
        issues.require(
            self.root.is_some() != self.manifest.is_some(),
            "root",
            "give exactly one of root (a folder of class folders) and manifest (a path,label CSV)",
        );
        issues.require(
            !(self.test_root.is_some() && self.test_manifest.is_some()),
            "test_root",
            "give at most one of test_root and test_manifest",
        );
        issues.require(matches!(self.channels, 1 | 3), "channels", format!("must be 1 or 3, got {}", self.channels));
        check_common(issues, self.valid_fraction, self.limit_per_class, &self.transforms);
    }
}

/// Checks shared by the image stages.
fn check_common(issues: &mut Issues, valid_fraction: f64, limit: Option<usize>, transforms: &Pipeline) {
    issues.require(
        (0.0..1.0).contains(&valid_fraction),
        "valid_fraction",
        format!("must be in [0, 1), got {valid_fraction}"),
    );
    issues.require(limit != Some(0), "limit_per_class", "must be at least 1");
    issues.at("transforms", |i| transforms.check(i));
}

pub(crate) fn image_dataset() -> StageDef {
    StageDef::new::<ImageDatasetConfig>(
        "image_dataset",
        "an image folder or path,label CSV -> decoded, cached, transformed train/valid/test splits",
        &[],
        &["dataset"],
        |config| Box::new(ImageDataset { config }),
    )
    .with_roles(&[(KeyRole::HeldOutFolder, "test_root"), (KeyRole::HeldOutManifest, "test_manifest")])
}

struct ImageDataset {
    config: ImageDatasetConfig,
}

impl ImageDataset {
    /// The training listing (`root` or `manifest`), with the classes left empty.
    fn list(
        &self,
        base: &Path,
        root: Option<&str>,
        manifest: Option<&str>,
    ) -> Result<(LabelledFiles, Vec<PathBuf>), String> {
        let allow_empty = self.config.on_error == OnError::Skip;
        let mut listed = match (root, manifest) {
            (Some(root), _) => LabelledFiles::from_folder(&base.join(root), &IMAGE_EXTENSIONS, allow_empty),
            (None, Some(csv)) => LabelledFiles::from_manifest(&base.join(csv)).map(|l| (l, Vec::new())),
            (None, None) => return Err("give root or manifest".to_owned()),
        }
        .map_err(|e| e.to_string())?;
        if let Some(limit) = self.config.limit_per_class {
            let mut seen = vec![0usize; listed.0.classes.len()];
            listed.0.items.retain(|&(_, label)| {
                seen[label as usize] += 1;
                seen[label as usize] <= limit
            });
        }
        Ok(listed)
    }

    fn load(&self, base: &Path, seed: u64) -> Result<Dataset, String> {
        let c = &self.config;
        let (train, empty) = self.list(base, c.root.as_deref(), c.manifest.as_deref())?;
        let cache = c.cache_mib.saturating_mul(1 << 20);
        let skip = c.on_error == OnError::Skip;
        let (store, kept, mut skipped) = ImageStore::decode(&train.paths(), c.channels, cache, skip)?;
        let labels: Vec<u32> = kept.iter().map(|&i| train.items[i].1).collect();
        let store = Arc::new(store);
        let shape = sample_shape(&store, &c.transforms)?;
        same_size(&store, &c.transforms, shape)?;
        let pipeline = Arc::new(c.transforms.clone());
        let (train_idx, valid_idx) = stratified_split(&labels, c.valid_fraction, seed);
        let split = |idx: Vec<usize>| source_split(&store, &labels, idx, &pipeline, seed, shape);
        let test = match (c.test_root.as_deref(), c.test_manifest.as_deref()) {
            (None, None) => None,
            (root, manifest) => {
                let (listed, _) = self.list(base, root, manifest)?;
                let test_labels = map_classes(&listed, &train.classes)?;
                let (test_store, test_kept, test_skipped) =
                    ImageStore::decode(&listed.paths(), c.channels, cache, skip)?;
                skipped.extend(test_skipped);
                same_size(&test_store, &c.transforms, shape)?;
                let test_labels: Vec<u32> = test_kept.iter().map(|&i| test_labels[i]).collect();
                let all = (0..test_labels.len()).collect();
                Some(source_split(&Arc::new(test_store), &test_labels, all, &pipeline, seed, shape))
            }
        };
        if !empty.is_empty() || !skipped.is_empty() {
            eprintln!(
                "warning: on_error: skip left out {} class folder(s) and {} file(s):",
                empty.len(),
                skipped.len()
            );
            for dir in &empty {
                eprintln!("  {}: no images", dir.display());
            }
            for (_, why) in &skipped {
                eprintln!("  {why}");
            }
        }
        if !store.in_memory() {
            eprintln!("data: the decoded images exceed cache_mib ({}); decoding on every read", c.cache_mib);
        }
        Ok(Dataset {
            shape: shape.to_vec(),
            classes: train.classes,
            train: split(train_idx),
            valid: split(valid_idx),
            test,
        })
    }
}

/// The labels of a test listing in the training classes' numbering (by name).
fn map_classes(test: &LabelledFiles, classes: &[String]) -> Result<Vec<u32>, String> {
    let ids: Vec<Option<u32>> =
        test.classes.iter().map(|name| classes.iter().position(|c| c == name).map(|i| i as u32)).collect();
    if let Some(missing) = test.classes.iter().zip(&ids).find(|(_, id)| id.is_none()) {
        let file = test
            .items
            .iter()
            .find(|(_, l)| test.classes[*l as usize] == *missing.0)
            .map(|(p, _)| p.display().to_string());
        return Err(format!(
            "{}: the test class `{}` is not one of the training classes {:?}",
            file.unwrap_or_default(),
            missing.0,
            classes
        ));
    }
    Ok(test.items.iter().map(|&(_, l)| ids[l as usize].unwrap_or(0)).collect())
}

/// The shape every sample has after the transforms: that of the first image, which the
/// source then checks every other sample against.
fn sample_shape(store: &ImageStore, transforms: &Pipeline) -> Result<[usize; 3], String> {
    let first = store.tensor(0)?;
    let input = [first.channels, first.height, first.width];
    shapes(input, transforms).map_err(|e| format!("{}: {e}", store.name(0)))
}

/// Checks, while the data set loads, that every image held in memory comes out of the
/// transforms as `shape`: images of different sizes need a resizing transform, and the
/// error names the first file that differs (a store decoded on every read checks each
/// sample as it is read instead).
fn same_size(store: &ImageStore, transforms: &Pipeline, shape: [usize; 3]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for i in 0..store.len() {
        let Some((h, w)) = store.size(i) else { return Ok(()) };
        if !seen.insert((h, w)) {
            continue;
        }
        let out = shapes([store.channels(), h, w], transforms).map_err(|e| format!("{}: {e}", store.name(i)))?;
        if out != shape {
            return Err(format!(
                "{}: is {h} x {w} pixels and comes out of the transforms as {}x{}x{}, but {} comes out as {}x{}x{}: \
                 images of different sizes need a resizing transform (add resize and center_crop to the transforms)",
                store.name(i),
                out[0],
                out[1],
                out[2],
                store.name(0),
                shape[0],
                shape[1],
                shape[2]
            ));
        }
    }
    Ok(())
}

/// The sample shape for an input shape: training and evaluation must agree.
pub(crate) fn shapes(input: [usize; 3], transforms: &Pipeline) -> Result<[usize; 3], String> {
    let train = transforms.output_shape(input, true)?;
    let eval = transforms.output_shape(input, false)?;
    if train != eval {
        return Err(format!(
            "the transforms make training samples {train:?} but evaluation samples {eval:?}; \
             mark the size-changing steps `apply: all`"
        ));
    }
    Ok(train)
}

/// A split whose samples are `idx` of `store`, transformed.
pub(crate) fn source_split(
    store: &Arc<ImageStore>,
    labels: &[u32],
    idx: Vec<usize>,
    pipeline: &Arc<Pipeline>,
    seed: u64,
    shape: [usize; 3],
) -> Split {
    let y = idx.iter().map(|&i| labels[i]).collect();
    let source = ImageSource::new(Arc::clone(store), idx, Arc::clone(pipeline), seed, shape);
    Split { x: Vec::new(), y, source: Some(Arc::new(source)) }
}

impl Stage for ImageDataset {
    fn plan(&self, cx: &mut PlanCx<'_>) {
        let c = &self.config;
        let key = if c.root.is_some() { "root" } else { "manifest" };
        let listed = match self.list(cx.base_dir, c.root.as_deref(), c.manifest.as_deref()) {
            Ok((listed, _)) => listed,
            Err(e) => return cx.issues.push(key, e),
        };
        // The sample shape comes from the first image (with `on_error: skip`, the first one
        // whose header reads).
        let skip = c.on_error == OnError::Skip;
        let mut sizes = listed.items.iter().map(|(p, _)| (p, image_size(p)));
        let first = if skip { sizes.find(|(_, r)| r.is_ok()) } else { sizes.next() };
        let Some((first, size)) = first else { return };
        match size {
            Ok((h, w)) => match shapes([c.channels, h, w], &c.transforms) {
                Ok(shape) => cx.facts.insert(DataSpec { shape: shape.to_vec(), classes: listed.classes.len() }),
                Err(e) => cx.issues.push("transforms", format!("{}: {e}", first.display())),
            },
            Err(e) => cx.issues.push(key, e.to_string()),
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

/// One line on what was loaded.
pub(crate) fn report(data: &Dataset) {
    eprintln!(
        "data: {} train, {} valid, {} test samples of {:?}, {} classes",
        data.train.len(),
        data.valid.len(),
        data.test.as_ref().map_or(0, Split::len),
        data.shape,
        data.classes.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma, Rgb, RgbImage, Rgba, RgbaImage};

    struct Folder(PathBuf);

    impl Folder {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("kindling-imgstage-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        /// `class/name.png`: a 4 x 4 image whose pixels all hold `value` (grey, RGB or RGBA).
        fn image(&self, class: &str, name: &str, kind: &str, value: u8) -> PathBuf {
            let dir = self.0.join(class);
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(name);
            match kind {
                "grey" => GrayImage::from_pixel(4, 4, Luma([value])).save(&path).unwrap(),
                "rgb" => RgbImage::from_pixel(4, 4, Rgb([value, 0, 0])).save(&path).unwrap(),
                _ => RgbaImage::from_pixel(4, 4, Rgba([value, value, value, 10])).save(&path).unwrap(),
            }
            path
        }
    }

    impl Drop for Folder {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn config(root: &Path) -> ImageDatasetConfig {
        ImageDatasetConfig {
            root: Some(root.display().to_string()),
            valid_fraction: 0.0,
            ..ImageDatasetConfig::default()
        }
    }

    fn load(config: ImageDatasetConfig) -> Result<Dataset, String> {
        ImageDataset { config }.load(Path::new("/"), 3)
    }

    fn sample(split: &Split, i: usize, len: usize) -> Vec<f32> {
        let mut out = vec![0.0; len];
        split.sample_into(i, &mut out).unwrap();
        out
    }

    #[test]
    fn mixed_grey_rgb_and_rgba_files_are_coerced_to_the_configured_channels() {
        let f = Folder::new("mixed");
        f.image("b_cat", "1.png", "grey", 51);
        f.image("a_dog", "2.png", "rgb", 255);
        f.image("a_dog", "3.PNG", "rgba", 102);
        std::fs::write(f.0.join("a_dog/notes.txt"), "not an image").unwrap();
        let rgb = load(config(&f.0)).unwrap();
        assert_eq!(rgb.classes, ["a_dog", "b_cat"]);
        assert_eq!((rgb.shape.clone(), rgb.train.y.clone()), (vec![3, 4, 4], vec![0, 0, 1]));
        // Red stays red, RGBA loses its alpha, grey is repeated: ToTensor scales to [0, 1].
        assert_eq!(sample(&rgb.train, 0, 48)[..17], [[1.0; 16].as_slice(), &[0.0]].concat());
        assert!(sample(&rgb.train, 1, 48).iter().all(|&v| (v - 0.4).abs() < 1e-6));
        assert!(sample(&rgb.train, 2, 48).iter().all(|&v| (v - 0.2).abs() < 1e-6));

        let grey = load(ImageDatasetConfig { channels: 1, ..config(&f.0) }).unwrap();
        assert_eq!(grey.shape, [1, 4, 4]);
        // PIL's luma of pure red: 0.299 * 255 = 76.2 -> 76.
        assert!((sample(&grey.train, 0, 16)[0] - 76.0 / 255.0).abs() < 1e-6);
    }

    #[test]
    fn undecodable_files_and_empty_classes_fail_naming_them_or_are_skipped() {
        let f = Folder::new("broken");
        f.image("a", "ok.png", "grey", 1);
        f.image("a", "ok2.png", "grey", 2);
        let bad = f.0.join("a/bad.png");
        std::fs::write(&bad, b"not a png").unwrap();
        let err = load(config(&f.0)).unwrap_err();
        assert!(err.starts_with(&bad.display().to_string()) && err.contains("cannot be decoded"), "{err}");
        std::fs::create_dir_all(f.0.join("b_empty")).unwrap();
        let err = load(config(&f.0)).unwrap_err();
        assert!(err.contains("b_empty: is a class folder with no *.png"), "{err}");

        let skipped = load(ImageDatasetConfig { on_error: OnError::Skip, ..config(&f.0) }).unwrap();
        assert_eq!(skipped.classes, ["a", "b_empty"]);
        assert_eq!(skipped.train.len(), 2);

        let empty = Folder::new("none");
        let err = load(config(&empty.0)).unwrap_err();
        assert!(err.contains("has no class folders"), "{err}");
    }

    #[test]
    fn sets_over_the_cache_budget_are_decoded_on_every_read_with_the_same_values() {
        let f = Folder::new("budget");
        f.image("a", "1.png", "rgb", 200);
        f.image("b", "2.png", "grey", 30);
        let files = [f.0.join("a/1.png"), f.0.join("b/2.png")];
        let (cached, _, _) = ImageStore::decode(&files, 3, 1 << 20, false).unwrap();
        let (streamed, kept, _) = ImageStore::decode(&files, 3, 60, false).unwrap();
        assert!(cached.in_memory() && !streamed.in_memory());
        assert_eq!(kept, [0, 1]);
        for i in 0..2 {
            assert_eq!(cached.tensor(i).unwrap(), streamed.tensor(i).unwrap());
        }
        let data = load(ImageDatasetConfig { cache_mib: 0, ..config(&f.0) }).unwrap();
        assert!((sample(&data.train, 0, 48)[0] - 200.0 / 255.0).abs() < 1e-6);
    }

    #[test]
    fn a_test_folder_is_numbered_by_the_training_class_names() {
        let train = Folder::new("train");
        train.image("a", "1.png", "grey", 1);
        train.image("b", "1.png", "grey", 2);
        train.image("c", "1.png", "grey", 3);
        let test = Folder::new("test");
        test.image("c", "1.png", "grey", 3);
        let c = ImageDatasetConfig { test_root: Some(test.0.display().to_string()), ..config(&train.0) };
        let data = load(c.clone()).unwrap();
        assert_eq!(data.test.unwrap().y, [2]);
        test.image("zebra", "1.png", "grey", 3);
        let err = load(c).unwrap_err();
        assert!(err.contains("the test class `zebra` is not one of the training classes"), "{err}");
    }

    #[test]
    fn augmentation_is_drawn_per_epoch_and_sample_and_images_of_another_size_are_named() {
        let f = Folder::new("augment");
        for i in 0..4 {
            let dir = f.0.join("x");
            std::fs::create_dir_all(&dir).unwrap();
            let img = RgbImage::from_fn(4, 4, |x, y| Rgb([(x * 60 + i) as u8, (y * 60) as u8, 7]));
            img.save(dir.join(format!("{i}.png"))).unwrap();
        }
        let transforms: Pipeline = serde_json::from_str(r#"[{"random_horizontal_flip": {"p": 0.5}}]"#).unwrap();
        let data = load(ImageDatasetConfig { transforms, ..config(&f.0) }).unwrap();
        let epoch = |e: usize, i: usize| {
            let mut out = vec![0.0; 48];
            data.train.train_sample_into(i, e, &mut out).unwrap();
            out
        };
        assert_eq!(epoch(1, 0), epoch(1, 0), "the same (epoch, sample) draws the same flip");
        let views: Vec<Vec<f32>> = (1..=12).map(|e| epoch(e, 0)).collect();
        assert!(views.iter().any(|v| *v != views[0]), "12 epochs never flipped");
        assert_eq!(sample(&data.train, 0, 48), sample(&data.train, 0, 48));

        // A larger image in the folder is an error while the set loads, naming its file...
        let big = f.0.join("x/9.png");
        RgbImage::from_pixel(5, 4, Rgb([0, 0, 0])).save(&big).unwrap();
        let err = load(config(&f.0)).unwrap_err();
        assert!(err.starts_with(&big.display().to_string()) && err.contains("is 4 x 5 pixels"), "{err}");
        assert!(err.contains("need a resizing transform"), "{err}");
        // ...and, for a set decoded on every read, when it is read.
        let data = load(ImageDatasetConfig { cache_mib: 0, ..config(&f.0) }).unwrap();
        let last = data.train.len() - 1;
        let err = data.train.sample_into(last, &mut [0.0; 48]).unwrap_err();
        assert!(err.starts_with(&big.display().to_string()) && err.contains("is 3x4x5 after the transforms"), "{err}");
    }
}
