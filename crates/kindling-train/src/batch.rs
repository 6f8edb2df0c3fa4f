//! Batching a split into tensors, and evaluating a model on a split.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, Int, Tensor, TensorData};
use std::sync::mpsc::{Receiver, sync_channel};

use kindling_core::{SampleSource, Split};
use kindling_metrics::ConfusionMatrix;
use kindling_models::Sequential;
use rayon::prelude::*;

use crate::history::SplitMetrics;

/// Mini-batches of a split in a given order: `(images [b, c, h, w], labels [b])`.
///
/// In-memory splits are copied batch by batch as they are asked for. Splits whose samples
/// come from a [`kindling_core::SampleSource`] (decoded images, cached spectrograms) are
/// loaded by a background thread that fills each batch in parallel and keeps
/// `PREFETCH` batches ready, so decoding and augmentation overlap the training step.
#[derive(Debug)]
pub struct Batches<'a> {
    split: &'a Split,
    shape: [usize; 3],
    order: Vec<usize>,
    batch_size: usize,
    pos: usize,
    epoch: Option<usize>,
    prefetched: Option<Receiver<HostBatch>>,
    device: Device,
}

/// How many loaded batches the background loader keeps ahead of the consumer.
pub const PREFETCH: usize = 2;

/// A batch on the host: sample values and labels, or why it could not be loaded.
type HostBatch = Result<(Vec<f32>, Vec<i64>), String>;

impl<'a> Batches<'a> {
    /// Batches of `split` (samples of `shape`) in `order`, the last one possibly short, as
    /// evaluation sees them (no augmentation).
    pub fn new(split: &'a Split, shape: [usize; 3], order: Vec<usize>, batch_size: usize, device: &Device) -> Self {
        Self::load(split, shape, order, batch_size, None, device)
    }

    /// Batches as training sees them in `epoch`: augmented, where the split's source augments.
    pub fn train(
        split: &'a Split,
        shape: [usize; 3],
        order: Vec<usize>,
        batch_size: usize,
        epoch: usize,
        device: &Device,
    ) -> Self {
        Self::load(split, shape, order, batch_size, Some(epoch), device)
    }

    fn load(
        split: &'a Split,
        shape: [usize; 3],
        order: Vec<usize>,
        batch_size: usize,
        epoch: Option<usize>,
        device: &Device,
    ) -> Self {
        let batch_size = batch_size.max(1);
        let prefetched = split.source.clone().map(|source| {
            let per: usize = shape.iter().product();
            let labels = split.y.clone();
            let order = order.clone();
            let (tx, rx) = sync_channel(PREFETCH);
            std::thread::spawn(move || {
                for idx in order.chunks(batch_size) {
                    let batch = load_batch(source.as_ref(), &labels, idx, per, epoch);
                    let failed = batch.is_err();
                    // The consumer hung up (the epoch ended early): stop loading.
                    if tx.send(batch).is_err() || failed {
                        break;
                    }
                }
            });
            rx
        });
        Self { split, shape, order, batch_size, pos: 0, epoch, prefetched, device: device.clone() }
    }

    /// Number of batches.
    pub fn len(&self) -> usize {
        self.order.len().div_ceil(self.batch_size)
    }

    /// Whether there are no batches.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The next batch's values and labels, from the loader thread or from memory.
    fn next_host(&mut self) -> Option<HostBatch> {
        let idx = self.order.get(self.pos..(self.pos + self.batch_size).min(self.order.len()))?;
        if idx.is_empty() {
            return None;
        }
        self.pos += idx.len();
        if let Some(rx) = &self.prefetched {
            return Some(rx.recv().unwrap_or_else(|_| Err("the data loader thread stopped".to_owned())));
        }
        let per: usize = self.shape.iter().product();
        let mut x = vec![0.0f32; idx.len() * per];
        for (slot, &i) in x.chunks_exact_mut(per).zip(idx) {
            let loaded = match self.epoch {
                Some(epoch) => self.split.train_sample_into(i, epoch, slot),
                None => self.split.sample_into(i, slot),
            };
            if let Err(e) = loaded {
                return Some(Err(e));
            }
        }
        Some(Ok((x, idx.iter().map(|&i| i64::from(self.split.y[i])).collect())))
    }
}

/// Loads the samples at `idx` from `source` in parallel (training reads when `epoch` is set).
fn load_batch(source: &dyn SampleSource, labels: &[u32], idx: &[usize], per: usize, epoch: Option<usize>) -> HostBatch {
    let mut x = vec![0.0f32; idx.len() * per];
    x.par_chunks_mut(per).zip(idx.par_iter()).try_for_each(|(slot, &i)| match epoch {
        Some(epoch) => source.load_train(i, epoch, slot),
        None => source.load(i, slot),
    })?;
    let y = idx.iter().map(|&i| labels.get(i).map(|&l| i64::from(l)).ok_or_else(|| format!("no label for sample {i}")));
    Ok((x, y.collect::<Result<_, _>>()?))
}

impl Iterator for Batches<'_> {
    /// A batch, or why its samples could not be loaded (the error names the file).
    type Item = Result<(Tensor<4>, Tensor<1, Int>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        let (x, y) = match self.next_host()? {
            Ok(batch) => batch,
            Err(e) => return Some(Err(e)),
        };
        let n = y.len();
        let [c, h, w] = self.shape;
        let images = Tensor::from_data(TensorData::new(x, [n, c, h, w]), &self.device);
        let labels = Tensor::from_data(TensorData::new(y, [n]), &self.device);
        Some(Ok((images, labels)))
    }
}

/// Loss (with `loss`, the training criterion, as PyTorch loops evaluate with the same one),
/// accuracy and confusion matrix of `net` (already in validation mode, on a plain device) over
/// `split`, for `classes` classes.
pub fn evaluate(
    net: &Sequential,
    split: &Split,
    shape: [usize; 3],
    classes: usize,
    batch_size: usize,
    loss: &CrossEntropyLossConfig,
    device: &Device,
) -> Result<(SplitMetrics, ConfusionMatrix), kindling_core::StageError> {
    let e = evaluate_detailed(net, split, shape, classes, batch_size, loss, device, false)?;
    Ok((e.metrics, e.confusion))
}

/// A sample the model got wrong.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mistake {
    /// Index of the sample in its split.
    pub index: usize,
    /// Its label.
    pub truth: u32,
    /// The class predicted.
    pub predicted: u32,
    /// Softmax probability of the predicted class.
    pub confidence: f32,
    /// Softmax probability of the true class.
    pub p_true: f32,
}

/// What [`evaluate_detailed`] finds.
#[derive(Clone, Debug)]
pub struct Evaluation {
    /// Mean loss and accuracy.
    pub metrics: SplitMetrics,
    /// True class by predicted class.
    pub confusion: ConfusionMatrix,
    /// Every misclassified sample, most confident first (empty unless asked for).
    pub mistakes: Vec<Mistake>,
}

/// As [`evaluate`], and with `mistakes` also every misclassified sample with the softmax
/// probabilities of its predicted and true classes.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_detailed(
    net: &Sequential,
    split: &Split,
    shape: [usize; 3],
    classes: usize,
    batch_size: usize,
    loss: &CrossEntropyLossConfig,
    device: &Device,
    mistakes: bool,
) -> Result<Evaluation, kindling_core::StageError> {
    let loss_fn = loss.init(device);
    let mut loss_sum = 0.0_f64;
    let mut confusion = ConfusionMatrix::new(classes);
    let mut wrong = Vec::new();
    let mut at = 0;
    for batch in Batches::new(split, shape, (0..split.len()).collect(), batch_size, device) {
        let (images, labels) = batch.map_err(kindling_core::StageError::Stopped)?;
        let n = labels.dims()[0];
        let logits = net.forward(images);
        let loss = loss_fn.forward(logits.clone(), labels);
        loss_sum += f64::from(loss.into_scalar::<f32>()) * n as f64;
        let probabilities: Option<Vec<f32>> =
            mistakes.then(|| burn::tensor::activation::softmax(logits.clone(), 1).into_data().iter::<f32>().collect());
        let predicted = logits.argmax(1).squeeze_dim::<1>(1).into_data();
        for (row, (&truth, p)) in split.y[at..at + n].iter().zip(predicted.iter::<i64>()).enumerate() {
            confusion.add(truth, p as u32);
            if let Some(probs) = probabilities.as_ref().filter(|_| p as u32 != truth) {
                let prob = |c: usize| probs.get(row * classes + c).copied().unwrap_or(f32::NAN);
                wrong.push(Mistake {
                    index: at + row,
                    truth,
                    predicted: p as u32,
                    confidence: prob(p as usize),
                    p_true: prob(truth as usize),
                });
            }
        }
        at += n;
    }
    wrong.sort_by(|a, b| b.confidence.total_cmp(&a.confidence).then(a.index.cmp(&b.index)));
    let correct: u64 = (0..classes).map(|c| confusion.count(c, c)).sum();
    Ok(Evaluation { metrics: SplitMetrics::new(loss_sum, correct as usize, split.len()), confusion, mistakes: wrong })
}

/// How many rows of `logits` have their maximum at the label.
pub(crate) fn count_correct(logits: Tensor<2>, labels: Tensor<1, Int>) -> usize {
    let predicted = logits.argmax(1).squeeze_dim::<1>(1);
    predicted.equal(labels).int().sum().into_scalar::<i64>() as usize
}
