//! The data-set artifact: decoded, normalised samples ready to batch.

use crate::artifact::Artifact;

/// Samples of one split: `x` holds `len()` samples of `shape` f32 values each, row-major;
/// or, for data sets too large to hold (spectrograms), `source` loads them one at a time.
#[derive(Clone, Debug, Default)]
pub struct Split {
    /// Sample values, `len() * shape.iter().product()` of them (empty when `source` is set).
    pub x: Vec<f32>,
    /// Class index of each sample.
    pub y: Vec<u32>,
    /// Loads samples on demand instead of `x` (from a feature cache on disk, say).
    pub source: Option<std::sync::Arc<dyn SampleSource>>,
}

/// Samples kept outside memory, loaded when a batch needs them.
pub trait SampleSource: Send + Sync + std::fmt::Debug {
    /// Writes sample `i` (as many values as `out` holds) into `out`; the error names the file.
    fn load(&self, i: usize, out: &mut [f32]) -> Result<(), String>;

    /// Writes sample `i` as training sees it in `epoch`: with the random augmentation drawn
    /// for (the run's seed, `epoch`, `i`), so it does not depend on which thread loads it or
    /// in what order. The default has no augmentation and is [`SampleSource::load`].
    fn load_train(&self, i: usize, epoch: usize, out: &mut [f32]) -> Result<(), String> {
        let _ = epoch;
        self.load(i, out)
    }
}

impl Split {
    /// In-memory samples.
    pub fn new(x: Vec<f32>, y: Vec<u32>) -> Self {
        Self { x, y, source: None }
    }

    /// Writes sample `i` (`out.len()` values) into `out`, from memory or from the source.
    pub fn sample_into(&self, i: usize, out: &mut [f32]) -> Result<(), String> {
        match &self.source {
            Some(source) => source.load(i, out),
            None => {
                let per = out.len();
                let values = self.x.get(i * per..(i + 1) * per).ok_or_else(|| format!("no sample {i} in the split"))?;
                out.copy_from_slice(values);
                Ok(())
            }
        }
    }

    /// Writes sample `i` as training sees it in `epoch` (augmented, when the source augments).
    pub fn train_sample_into(&self, i: usize, epoch: usize, out: &mut [f32]) -> Result<(), String> {
        match &self.source {
            Some(source) => source.load_train(i, epoch, out),
            None => self.sample_into(i, out),
        }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// Whether the split has no samples.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }
}

/// A classification data set: train/valid splits, an optional test split, the per-sample
/// shape (`[channels, height, width]` for images) and the class names.
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    /// Shape of one sample.
    pub shape: Vec<usize>,
    /// Class names; a label `y` names `classes[y]`.
    pub classes: Vec<String>,
    /// Training samples.
    pub train: Split,
    /// Validation samples, evaluated after every epoch.
    pub valid: Split,
    /// Held-out test samples, evaluated once at the end.
    pub test: Option<Split>,
}

impl Artifact for Dataset {
    const KIND: &'static str = "dataset";
}

/// What the data stage knows before decoding anything: recorded as a fact at plan time so the
/// model can infer its shapes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataSpec {
    /// Shape of one sample.
    pub shape: Vec<usize>,
    /// Number of classes.
    pub classes: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sample i is `per` copies of i; sample 3 cannot be read.
    #[derive(Debug)]
    struct Counting;

    impl SampleSource for Counting {
        fn load(&self, i: usize, out: &mut [f32]) -> Result<(), String> {
            if i == 3 {
                return Err("cache/3.f32: truncated".into());
            }
            out.fill(i as f32);
            Ok(())
        }
    }

    #[test]
    fn samples_come_from_memory_or_from_the_source() {
        let mut out = [0.0; 2];
        let memory = Split::new(vec![1.0, 2.0, 3.0, 4.0], vec![0, 1]);
        memory.sample_into(1, &mut out).unwrap();
        assert_eq!(out, [3.0, 4.0]);
        assert_eq!(memory.sample_into(2, &mut out).unwrap_err(), "no sample 2 in the split");

        let lazy = Split { x: Vec::new(), y: vec![0; 4], source: Some(std::sync::Arc::new(Counting)) };
        lazy.sample_into(2, &mut out).unwrap();
        assert_eq!(out, [2.0, 2.0]);
        assert_eq!(lazy.sample_into(3, &mut out).unwrap_err(), "cache/3.f32: truncated");
        // Without augmentation, training reads the same values in every epoch.
        lazy.train_sample_into(2, 7, &mut out).unwrap();
        assert_eq!(out, [2.0, 2.0]);
        memory.train_sample_into(0, 7, &mut out).unwrap();
        assert_eq!(out, [1.0, 2.0]);
    }

    /// Adds the epoch to every value in training.
    #[derive(Debug)]
    struct Shifting;

    impl SampleSource for Shifting {
        fn load(&self, i: usize, out: &mut [f32]) -> Result<(), String> {
            out.fill(i as f32);
            Ok(())
        }

        fn load_train(&self, i: usize, epoch: usize, out: &mut [f32]) -> Result<(), String> {
            out.fill((i + epoch) as f32);
            Ok(())
        }
    }

    #[test]
    fn training_reads_go_through_the_sources_augmentation_and_evaluation_reads_do_not() {
        let split = Split { x: Vec::new(), y: vec![0; 2], source: Some(std::sync::Arc::new(Shifting)) };
        let mut out = [0.0; 1];
        split.train_sample_into(1, 10, &mut out).unwrap();
        assert_eq!(out, [11.0]);
        split.sample_into(1, &mut out).unwrap();
        assert_eq!(out, [1.0]);
    }
}
