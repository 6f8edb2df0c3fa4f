//! Inference with a finished run's model: evaluation on labelled data and prediction of files.
//!
//! A [`Predictor`] is built from a run's model package ([`Predictor::from_package`]: its
//! `model.json` and `model.safetensors`, nothing else), or from what a reopened run's stages
//! built (see `kindling_pipeline::reopen`: the data set, the model, the device). Either way it
//! holds the data stage's [`InputReader`], which turns a file into a sample with exactly the
//! evaluation-time preprocessing of the run. Results are typed; printing them is the caller's
//! business.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::{Device, Tensor, TensorData};
use kindling_core::{
    Artifacts, Dataset, DeviceChoice, InputReader, LabelledFiles, Package, SampleSource, Split, StageError,
};
use kindling_metrics::ConfusionMatrix;
use kindling_models::device::{ResolvedDevice, resolve};
use kindling_models::{InitConfig, LayerSpec, Model, Sequential, Shape};

use crate::history::SplitMetrics;

/// Why inference could not run.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    /// The run's stages did not build something inference needs.
    #[error("the run's pipeline builds no {0}")]
    Missing(&'static str),
    /// The model's samples are not images or spectrograms.
    #[error("samples are not [c, h, w]")]
    Shape,
    /// There is nothing labelled to evaluate on.
    #[error("the run's data has no test or validation split to evaluate")]
    NoSplit,
    /// The run's `model.json` does not describe a model this Kindling can build.
    #[error("{0}")]
    Package(String),
    /// The run's data stage cannot read single files.
    #[error("the run's data stage cannot read single files, so its model cannot predict them")]
    NoReader,
    /// A file (or a file the run recorded) could not be read; the error names it.
    #[error(transparent)]
    Read(Box<dyn Error + Send + Sync>),
    /// The evaluation failed.
    #[error(transparent)]
    Stage(#[from] StageError),
}

/// A finished run's model with its preprocessing, and its data when it was reopened.
pub struct Predictor {
    classes: Vec<String>,
    /// The reopened run's data set; `None` when built from the package alone.
    data: Option<Dataset>,
    net: Sequential,
    device: Device,
    shape: [usize; 3],
    input: Option<Arc<dyn InputReader>>,
}

impl std::fmt::Debug for Predictor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Predictor").field("shape", &self.shape).field("classes", &self.classes).finish()
    }
}

/// What [`Predictor::evaluate`] measures.
#[derive(Clone, Debug)]
pub struct EvalReport {
    /// Samples evaluated.
    pub samples: usize,
    /// Mean loss and accuracy.
    pub metrics: SplitMetrics,
    /// True class by predicted class.
    pub confusion: ConfusionMatrix,
}

/// One class and the model's probability for it.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassScore {
    /// The class name.
    pub class: String,
    /// Its softmax probability.
    pub probability: f32,
}

/// The model's answer for one file.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// The file.
    pub file: PathBuf,
    /// Every class, most probable first (ties in class order).
    pub scores: Vec<ClassScore>,
}

impl Predictor {
    /// Takes the data set, model, device and input reader out of a reopened run's
    /// `artifacts`; the reader takes what the run recorded in `run_dir` (fitted statistics).
    pub fn from_artifacts(mut artifacts: Artifacts, run_dir: &Path) -> Result<Self, InferError> {
        let data = artifacts.take::<Dataset>().ok_or(InferError::Missing("data set"))?;
        let model = artifacts.take::<Model>().ok_or(InferError::Missing("model"))?;
        let device = artifacts.take::<ResolvedDevice>().ok_or(InferError::Missing("device"))?;
        let mut input = artifacts.take::<Box<dyn InputReader>>();
        if let Some(input) = &mut input {
            input.use_run_files(run_dir).map_err(InferError::Read)?;
        }
        let shape: [usize; 3] = data.shape.as_slice().try_into().map_err(|_| InferError::Shape)?;
        Ok(Self {
            net: model.net.valid(),
            device: device.device.inner(),
            classes: data.classes.clone(),
            data: Some(data),
            shape,
            input: input.map(Arc::from),
        })
    }

    /// The model `package` describes (the run in `run_dir`'s `model.json`), with the weights
    /// of its `weights` file, on the device `choice` resolves to, reading files through `input`
    /// (the reader its `input` describes). Nothing else of the run is read: neither its
    /// configuration nor its data.
    pub fn from_package(
        run_dir: &Path,
        package: &Package,
        input: Box<dyn InputReader>,
        choice: DeviceChoice,
    ) -> Result<Self, InferError> {
        let bad = |why: String| {
            InferError::Package(format!("{}: {why}", run_dir.join(kindling_core::PACKAGE_FILE).display()))
        };
        let layers: Vec<LayerSpec> =
            serde_json::from_value(package.model.layers.clone()).map_err(|e| bad(format!("`model.layers`: {e}")))?;
        let shape: [usize; 3] = package.model.input.as_slice().try_into().map_err(|_| InferError::Shape)?;
        let input_shape = Shape::from_dims(&package.model.input).ok_or(InferError::Shape)?;
        let infos = kindling_models::infer(&layers, &input_shape).map_err(|errors| {
            let text: Vec<String> = errors.iter().map(|e| format!("layer {}: {}", e.layer, e.message)).collect();
            bad(format!("the layers do not fit the input: {}", text.join("; ")))
        })?;
        if infos.last().map(|i| i.output.clone()) != Some(Shape::Flat(package.classes.len())) {
            return Err(bad(format!("the last layer does not give one output per class ({})", package.classes.len())));
        }
        // As the model stage does: a hostile layer list must not allocate past the machine.
        kindling_models::fits_in_memory(&input_shape, &infos, 1).map_err(bad)?;
        let resolved = resolve(choice).map_err(|e| InferError::Read(Box::new(e)))?;
        let mut net = Sequential::new(
            &layers,
            &infos,
            &InitConfig::default(),
            &mut kindling_core::rng_from_seed(0, "init"),
            &resolved.device,
        );
        let weights = run_dir.join(&package.weights);
        let fail = |why: String| InferError::Package(format!("{}: cannot load the weights: {why}", weights.display()));
        let result = net.load_from(&mut SafetensorsStore::from_file(&weights)).map_err(|e| fail(e.to_string()))?;
        if !result.is_success() || !result.missing.is_empty() {
            let missing: Vec<&str> = result.missing.iter().map(|(name, _)| name.as_str()).collect();
            return Err(fail(format!(
                "they do not match the model of model.json (missing: {}; errors: {})",
                if missing.is_empty() { "none".to_owned() } else { missing.join(", ") },
                result.errors.len()
            )));
        }
        Ok(Self {
            classes: package.classes.clone(),
            data: None,
            net: net.valid(),
            device: resolved.device.inner(),
            shape,
            input: Some(Arc::from(input)),
        })
    }

    /// The class names, in label order.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// Loss, accuracy and confusion matrix over labelled files (a folder of class folders or
    /// a `path,label` manifest, listed by [`LabelledFiles`]), each read through the run's
    /// preprocessing, in batches of `batch_size`. The files' classes are matched to the
    /// model's by name; a class the model does not know is an error naming one of its files.
    pub fn evaluate_files(&self, listed: &LabelledFiles, batch_size: usize) -> Result<EvalReport, InferError> {
        let input = self.input.as_ref().ok_or(InferError::NoReader)?;
        let ids: Vec<Option<u32>> =
            listed.classes.iter().map(|name| self.classes.iter().position(|c| c == name).map(|i| i as u32)).collect();
        if let Some((name, _)) = listed.classes.iter().zip(&ids).find(|(_, id)| id.is_none()) {
            let file = listed
                .items
                .iter()
                .find(|(_, l)| listed.classes[*l as usize] == *name)
                .map(|(p, _)| p.display().to_string());
            return Err(InferError::Read(
                format!(
                    "{}: the class `{name}` is not one of the model's classes {:?}",
                    file.unwrap_or_default(),
                    self.classes
                )
                .into(),
            ));
        }
        if listed.items.is_empty() {
            return Err(InferError::NoSplit);
        }
        let y = listed.items.iter().map(|&(_, l)| ids[l as usize].unwrap_or(0)).collect();
        let files = listed.items.iter().map(|(p, _)| p.clone()).collect();
        let source = FileSource { input: Arc::clone(input), files, shape: self.shape };
        let split = Split { x: Vec::new(), y, source: Some(Arc::new(source)) };
        self.evaluate_split(&split, batch_size)
    }

    /// Loss, accuracy and confusion matrix over the run's test split, or its validation split
    /// when it has no test split (or over the held-out data the run was reopened with), in
    /// batches of `batch_size`.
    /// Built from a package, it has no data of its own: see [`Predictor::evaluate_files`].
    pub fn evaluate(&self, batch_size: usize) -> Result<EvalReport, InferError> {
        let data = self.data.as_ref().ok_or(InferError::NoSplit)?;
        let split = data.test.as_ref().or(Some(&data.valid)).filter(|s| !s.is_empty()).ok_or(InferError::NoSplit)?;
        self.evaluate_split(split, batch_size)
    }

    fn evaluate_split(&self, split: &Split, batch_size: usize) -> Result<EvalReport, InferError> {
        let (metrics, confusion) = crate::evaluate(
            &self.net,
            split,
            self.shape,
            self.classes.len(),
            batch_size,
            &CrossEntropyLossConfig::new(),
            &self.device,
        )?;
        Ok(EvalReport { samples: split.len(), metrics, confusion })
    }

    /// The class probabilities of each of `files`, read through the run's preprocessing and
    /// classified in one batch. The first file that cannot be read fails the whole request;
    /// [`Predictor::predict_batches`] reads in parallel, in batches, and goes on past such files.
    pub fn predict(&self, files: &[PathBuf]) -> Result<Vec<Prediction>, InferError> {
        let input = self.input.as_ref().ok_or(InferError::NoReader)?;
        let per: usize = self.shape.iter().product();
        let mut samples = Vec::with_capacity(files.len() * per);
        for (i, file) in files.iter().enumerate() {
            samples.extend(input.read(i, file, &self.shape).map_err(InferError::Read)?);
        }
        let probs = self.probabilities(samples, files.len());
        Ok(files.iter().zip(probs.chunks(self.classes.len())).map(|(f, p)| self.prediction(f, p)).collect())
    }

    /// The class probabilities of each of `files`, one batch of up to `batch_size` files at a
    /// time: a batch's files are read (decoded and preprocessed) in parallel on rayon's
    /// threads, then classified in one forward pass. Each item of the iterator is one batch's
    /// outcomes in file order: a [`Prediction`], or the [`FileError`] of a file that could not
    /// be read (the others of its batch are classified all the same). A file's index in
    /// `files` is its index for [`InputReader::read`], as in [`Predictor::predict`], whose
    /// predictions these are for the same files (`tests/predict.rs` of `kindling-cli` checks
    /// them to 1e-6 across batch sizes).
    pub fn predict_batches<'a>(
        &'a self,
        files: &'a [PathBuf],
        batch_size: usize,
    ) -> Result<impl Iterator<Item = Vec<Result<Prediction, FileError>>> + 'a, InferError> {
        use rayon::prelude::*;
        let input = self.input.as_ref().ok_or(InferError::NoReader)?;
        let batch_size = batch_size.max(1);
        Ok(files.chunks(batch_size).enumerate().map(move |(b, chunk)| {
            let start = b * batch_size;
            let read: Vec<Result<Vec<f32>, FileError>> = chunk
                .par_iter()
                .enumerate()
                .map(|(i, file)| {
                    input
                        .read(start + i, file, &self.shape)
                        .map_err(|e| FileError { file: file.clone(), message: e.to_string() })
                })
                .collect();
            let per: usize = self.shape.iter().product();
            let ok = read.iter().filter(|r| r.is_ok()).count();
            let mut samples = Vec::with_capacity(ok * per);
            for sample in read.iter().flatten() {
                samples.extend_from_slice(sample);
            }
            let probs = if ok > 0 { self.probabilities(samples, ok) } else { Vec::new() };
            let mut probs = probs.chunks(self.classes.len().max(1));
            chunk
                .iter()
                .zip(read)
                .map(|(file, r)| {
                    r.map(|_| self.prediction(file, probs.next().expect("one row of probabilities per sample read")))
                })
                .collect()
        }))
    }

    /// The softmax of the model's output for `n` samples laid end to end, row by row.
    fn probabilities(&self, samples: Vec<f32>, n: usize) -> Vec<f32> {
        let [c, h, w] = self.shape;
        let x = Tensor::<4>::from_data(TensorData::new(samples, [n, c, h, w]), &self.device);
        let probs = burn::tensor::activation::softmax(self.net.forward(x), 1).into_data();
        probs.iter::<f32>().collect()
    }

    /// `file` with every class and its probability in `p`, most probable first.
    fn prediction(&self, file: &Path, p: &[f32]) -> Prediction {
        let classes = &self.classes;
        let mut order: Vec<usize> = (0..classes.len()).collect();
        order.sort_by(|&i, &j| p[j].total_cmp(&p[i]));
        let scores = order.into_iter().map(|c| ClassScore { class: classes[c].clone(), probability: p[c] }).collect();
        Prediction { file: file.to_owned(), scores }
    }
}

/// A file [`Predictor::predict_batches`] could not read, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FileError {
    /// The file.
    pub file: PathBuf,
    /// Why, as the data stage's reader put it (it names the file).
    pub message: String,
}

/// Files read through a run's [`InputReader`], as a split's samples: what
/// [`Predictor::evaluate_files`] evaluates. Sample `i` is read with index `i`.
struct FileSource {
    input: Arc<dyn InputReader>,
    files: Vec<PathBuf>,
    shape: [usize; 3],
}

impl std::fmt::Debug for FileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSource").field("files", &self.files.len()).field("shape", &self.shape).finish()
    }
}

impl SampleSource for FileSource {
    fn load(&self, i: usize, out: &mut [f32]) -> Result<(), String> {
        let file = self.files.get(i).ok_or_else(|| format!("no sample {i}"))?;
        let sample = self.input.read(i, file, &self.shape).map_err(|e| e.to_string())?;
        if sample.len() != out.len() {
            return Err(format!("{}: {} values, expected {}", file.display(), sample.len(), out.len()));
        }
        out.copy_from_slice(&sample);
        Ok(())
    }
}
