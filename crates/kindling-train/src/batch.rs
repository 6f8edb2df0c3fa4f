//! Batching a split into tensors.

use burn::tensor::{Device, Int, Tensor, TensorData};
use std::sync::mpsc::{Receiver, sync_channel};

use kindling_core::{SampleSource, Split};
use rayon::prelude::*;

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
        Self::load(split, shape, order, batch_size, None, device, true)
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
        Self::load(split, shape, order, batch_size, Some(epoch), device, true)
    }

    /// The batches, a source split's loaded by a background thread where `prefetch` is set and
    /// a thread can be started: a process at its limit of threads loads them on the consumer's
    /// thread instead (the same batches, without the overlap) rather than panicking as
    /// `std::thread::spawn` does.
    fn load(
        split: &'a Split,
        shape: [usize; 3],
        order: Vec<usize>,
        batch_size: usize,
        epoch: Option<usize>,
        device: &Device,
        prefetch: bool,
    ) -> Self {
        let batch_size = batch_size.max(1);
        let prefetched = split.source.clone().filter(|_| prefetch).and_then(|source| {
            let per: usize = shape.iter().product();
            let labels = split.y.clone();
            let order = order.clone();
            let (tx, rx) = sync_channel(PREFETCH);
            let loader = move || {
                for idx in order.chunks(batch_size) {
                    let batch = load_batch(source.as_ref(), &labels, idx, per, epoch);
                    let failed = batch.is_err();
                    // The consumer hung up (the epoch ended early): stop loading.
                    if tx.send(batch).is_err() || failed {
                        break;
                    }
                }
            };
            std::thread::Builder::new().name("kindling-loader".to_owned()).spawn(loader).ok().map(|_| rx)
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

    /// The next batch's values and labels: from the loader thread, else from the split's
    /// source on this thread, else from memory.
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
        if let Some(source) = &self.split.source {
            // No loader thread: the same loading, on this thread.
            return Some(load_batch(source.as_ref(), &self.split.y, idx, per, self.epoch));
        }
        // In memory: no augmentation, so training and evaluation read the same values.
        let mut x = vec![0.0f32; idx.len() * per];
        for (slot, &i) in x.chunks_exact_mut(per).zip(idx) {
            if let Err(e) = self.split.sample_into(i, slot) {
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

/// How many rows of `logits` have their maximum at the label.
pub(crate) fn count_correct(logits: Tensor<2>, labels: Tensor<1, Int>) -> usize {
    let predicted = logits.argmax(1).squeeze_dim::<1>(1);
    predicted.equal(labels).int().sum().into_scalar::<i64>() as usize
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use kindling_core::SampleSource;

    use super::*;

    /// Sample `i` of epoch `e` is `i * 1000 + e` everywhere (evaluation reads are epoch 0's);
    /// sample 7 cannot be read.
    #[derive(Debug)]
    struct Numbered;

    impl SampleSource for Numbered {
        fn load(&self, i: usize, out: &mut [f32]) -> Result<(), String> {
            self.load_train(i, 0, out)
        }

        fn load_train(&self, i: usize, epoch: usize, out: &mut [f32]) -> Result<(), String> {
            if i == 7 {
                return Err("<sample 7>: unreadable".to_owned());
            }
            out.fill((i * 1000 + epoch) as f32);
            Ok(())
        }
    }

    /// Every batch's values and labels (as the device holds them), or its error.
    fn read(batches: Batches<'_>) -> Vec<HostBatch> {
        batches
            .map(|b| {
                b.map(|(x, y)| {
                    let labels = y.into_data().convert::<i64>().try_to_vec::<i64>().unwrap();
                    (x.into_data().try_to_vec::<f32>().unwrap(), labels)
                })
            })
            .collect()
    }

    #[test]
    fn a_source_split_without_a_loader_thread_gives_the_same_batches_and_errors() {
        let device = Device::flex();
        let split = Split { x: Vec::new(), y: (0..10).map(|i| i % 3).collect(), source: Some(Arc::new(Numbered)) };
        let shape = [1, 2, 2];
        let order: Vec<usize> = vec![3, 1, 4, 0, 5, 9, 2, 6, 8];
        for epoch in [None, Some(2)] {
            let threaded = read(Batches::load(&split, shape, order.clone(), 4, epoch, &device, true));
            let inline = read(Batches::load(&split, shape, order.clone(), 4, epoch, &device, false));
            assert_eq!(threaded, inline, "{epoch:?}");
            let (x, y) = threaded[0].clone().unwrap();
            let e = epoch.unwrap_or(0) as f32;
            assert_eq!(x[..4], [3000.0 + e; 4]);
            assert_eq!(y, [0, 1, 1, 0]);
            assert_eq!(threaded.len(), 3);
        }
        // An unreadable sample is an error naming it, on either path.
        for prefetch in [true, false] {
            let batches = read(Batches::load(&split, shape, vec![0, 7, 1], 2, None, &device, prefetch));
            assert_eq!(batches[0], Err("<sample 7>: unreadable".to_owned()), "prefetch {prefetch}");
        }
    }
}
