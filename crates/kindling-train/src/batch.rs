//! Batching a split into tensors, and evaluating a model on a split.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, Int, Tensor, TensorData};
use kindling_core::Split;
use kindling_metrics::ConfusionMatrix;
use kindling_models::Sequential;

use crate::history::SplitMetrics;

/// Mini-batches of a split in a given order: `(images [b, c, h, w], labels [b])`.
#[derive(Debug)]
pub struct Batches<'a> {
    split: &'a Split,
    shape: [usize; 3],
    order: Vec<usize>,
    batch_size: usize,
    pos: usize,
    device: Device,
}

impl<'a> Batches<'a> {
    /// Batches of `split` (samples of `shape`) in `order`, the last one possibly short.
    pub fn new(split: &'a Split, shape: [usize; 3], order: Vec<usize>, batch_size: usize, device: &Device) -> Self {
        Self { split, shape, order, batch_size, pos: 0, device: device.clone() }
    }

    /// Number of batches.
    pub fn len(&self) -> usize {
        self.order.len().div_ceil(self.batch_size)
    }

    /// Whether there are no batches.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

impl Iterator for Batches<'_> {
    /// A batch, or why its samples could not be loaded (the error names the file).
    type Item = Result<(Tensor<4>, Tensor<1, Int>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        let idx = self.order.get(self.pos..(self.pos + self.batch_size).min(self.order.len()))?;
        if idx.is_empty() {
            return None;
        }
        self.pos += idx.len();
        let per: usize = self.shape.iter().product();
        let mut x = vec![0.0f32; idx.len() * per];
        let mut y = Vec::with_capacity(idx.len());
        for (slot, &i) in x.chunks_exact_mut(per).zip(idx) {
            if let Err(e) = self.split.sample_into(i, slot) {
                return Some(Err(e));
            }
            y.push(i64::from(self.split.y[i]));
        }
        let [c, h, w] = self.shape;
        let images = Tensor::from_data(TensorData::new(x, [idx.len(), c, h, w]), &self.device);
        let labels = Tensor::from_data(TensorData::new(y, [idx.len()]), &self.device);
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
    let loss_fn = loss.init(device);
    let mut loss_sum = 0.0_f64;
    let mut confusion = ConfusionMatrix::new(classes);
    let mut at = 0;
    for batch in Batches::new(split, shape, (0..split.len()).collect(), batch_size, device) {
        let (images, labels) = batch.map_err(kindling_core::StageError::Stopped)?;
        let n = labels.dims()[0];
        let logits = net.forward(images);
        let loss = loss_fn.forward(logits.clone(), labels);
        loss_sum += f64::from(loss.into_scalar::<f32>()) * n as f64;
        let predicted = logits.argmax(1).squeeze_dim::<1>(1).into_data();
        for (&truth, p) in split.y[at..at + n].iter().zip(predicted.iter::<i64>()) {
            confusion.add(truth, p as u32);
        }
        at += n;
    }
    let correct: u64 = (0..classes).map(|c| confusion.count(c, c)).sum();
    Ok((SplitMetrics::new(loss_sum, correct as usize, split.len()), confusion))
}

/// How many rows of `logits` have their maximum at the label.
pub(crate) fn count_correct(logits: Tensor<2>, labels: Tensor<1, Int>) -> usize {
    let predicted = logits.argmax(1).squeeze_dim::<1>(1);
    predicted.equal(labels).int().sum().into_scalar::<i64>() as usize
}
