//! Evaluating a model on a split: loss, accuracy, confusion matrix and, when asked, the
//! misclassified samples.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, Tensor};
use kindling_core::{Split, StageError};
use kindling_metrics::ConfusionMatrix;
use kindling_models::Sequential;

use crate::batch::Batches;
use crate::history::SplitMetrics;

/// What stays the same across the evaluations of a run: the sample shape, the class count,
/// the batch size, the criterion and the (plain, not autodiff) device.
#[derive(Clone, Copy, Debug)]
pub struct Evaluator<'a> {
    /// The shape of one sample, `[c, h, w]`.
    pub shape: [usize; 3],
    /// Number of classes.
    pub classes: usize,
    /// Samples per batch.
    pub batch_size: usize,
    /// The loss reported: the training criterion, as PyTorch loops evaluate with the same one.
    pub loss: &'a CrossEntropyLossConfig,
    /// Where the model runs.
    pub device: &'a Device,
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

/// What [`Evaluator::detailed`] finds.
#[derive(Clone, Debug)]
pub struct Evaluation {
    /// Mean loss and accuracy.
    pub metrics: SplitMetrics,
    /// True class by predicted class.
    pub confusion: ConfusionMatrix,
    /// Every misclassified sample, most confident first (empty unless asked for).
    pub mistakes: Vec<Mistake>,
    /// The class predicted for each sample, in split order.
    pub predictions: Vec<u32>,
}

impl Evaluator<'_> {
    /// Loss, accuracy and confusion matrix of `net` (already in validation mode, on the plain
    /// device) over `split`.
    pub fn evaluate(&self, net: &Sequential, split: &Split) -> Result<(SplitMetrics, ConfusionMatrix), StageError> {
        let e = self.detailed(net, split, false)?;
        Ok((e.metrics, e.confusion))
    }

    /// As [`evaluate`](Self::evaluate), and with `mistakes` also every misclassified sample
    /// with the softmax probabilities of its predicted and true classes.
    pub fn detailed(&self, net: &Sequential, split: &Split, mistakes: bool) -> Result<Evaluation, StageError> {
        self.run(split, mistakes, |images| net.forward(images))
    }

    /// As [`detailed`](Self::detailed), calling `after(layer, &output)` after each layer of
    /// each batch (see [`Sequential::forward_inspect`]).
    pub fn detailed_inspect(
        &self,
        net: &Sequential,
        split: &Split,
        mistakes: bool,
        mut after: impl FnMut(usize, &kindling_models::Activation),
    ) -> Result<Evaluation, StageError> {
        self.run(split, mistakes, |images| net.forward_inspect(images, &mut after))
    }

    /// [`detailed`](Self::detailed) with `forward` giving each batch's logits.
    fn run(
        &self,
        split: &Split,
        mistakes: bool,
        mut forward: impl FnMut(Tensor<4>) -> Tensor<2>,
    ) -> Result<Evaluation, StageError> {
        let classes = self.classes;
        let loss_fn = self.loss.init(self.device);
        let mut loss_sum = 0.0_f64;
        let mut confusion = ConfusionMatrix::new(classes);
        let mut wrong = Vec::new();
        let mut predictions = Vec::with_capacity(split.len());
        let mut at = 0;
        for batch in Batches::new(split, self.shape, (0..split.len()).collect(), self.batch_size, self.device) {
            let (images, labels) = batch.map_err(StageError::Stopped)?;
            let n = labels.dims()[0];
            let logits = forward(images);
            let loss = loss_fn.forward(logits.clone(), labels);
            loss_sum += f64::from(loss.into_scalar::<f32>()) * n as f64;
            let probabilities: Option<Vec<f32>> = mistakes
                .then(|| burn::tensor::activation::softmax(logits.clone(), 1).into_data().iter::<f32>().collect());
            let predicted = logits.argmax(1).squeeze_dim::<1>(1).into_data();
            for (row, (&truth, p)) in split.y[at..at + n].iter().zip(predicted.iter::<i64>()).enumerate() {
                confusion.add(truth, p as u32);
                predictions.push(p as u32);
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
        let metrics = SplitMetrics::new(loss_sum, correct as usize, split.len());
        Ok(Evaluation { metrics, confusion, mistakes: wrong, predictions })
    }
}

/// [`Evaluator::evaluate`] in one call (what `kindling eval` uses).
pub fn evaluate(
    net: &Sequential,
    split: &Split,
    shape: [usize; 3],
    classes: usize,
    batch_size: usize,
    loss: &CrossEntropyLossConfig,
    device: &Device,
) -> Result<(SplitMetrics, ConfusionMatrix), StageError> {
    Evaluator { shape, classes, batch_size, loss, device }.evaluate(net, split)
}
