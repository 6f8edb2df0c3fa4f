//! Inference with a finished run's model: evaluation on labelled data and prediction of files.
//!
//! A [`Predictor`] holds what a reopened run's stages built (see `kindling_pipeline::reopen`):
//! the data set, the model, the device, and the data stage's [`InputReader`], which turns a
//! file into a sample with exactly the evaluation-time preprocessing of the run. Results are
//! typed; printing them is the caller's business.

use std::error::Error;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, Tensor, TensorData};
use kindling_core::{Artifacts, Dataset, InputReader, StageError};
use kindling_metrics::ConfusionMatrix;
use kindling_models::device::ResolvedDevice;
use kindling_models::{Model, Sequential};

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

/// A finished run's model with its data and preprocessing.
pub struct Predictor {
    data: Dataset,
    net: Sequential,
    device: Device,
    shape: [usize; 3],
    input: Option<Box<dyn InputReader>>,
}

impl std::fmt::Debug for Predictor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Predictor").field("shape", &self.shape).field("classes", &self.data.classes).finish()
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
        Ok(Self { net: model.net.valid(), device: device.device.inner(), data, shape, input })
    }

    /// The class names, in label order.
    pub fn classes(&self) -> &[String] {
        &self.data.classes
    }

    /// Loss, accuracy and confusion matrix over the run's test split, or its validation split
    /// when it has no test split (or over the held-out data the run was reopened with), in
    /// batches of `batch_size`.
    pub fn evaluate(&self, batch_size: usize) -> Result<EvalReport, InferError> {
        let data = &self.data;
        let split = data.test.as_ref().or(Some(&data.valid)).filter(|s| !s.is_empty()).ok_or(InferError::NoSplit)?;
        let (metrics, confusion) = crate::evaluate(
            &self.net,
            split,
            self.shape,
            data.classes.len(),
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
        Ok(files.iter().zip(probs.chunks(self.data.classes.len())).map(|(f, p)| self.prediction(f, p)).collect())
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
            let mut probs = probs.chunks(self.data.classes.len().max(1));
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
        let classes = &self.data.classes;
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
