//! The data-set artifact: decoded, normalised samples ready to batch.

use crate::artifact::Artifact;

/// Samples of one split: `x` holds `len()` samples of `shape` f32 values each, row-major.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Split {
    /// Sample values, `len() * shape.iter().product()` of them.
    pub x: Vec<f32>,
    /// Class index of each sample.
    pub y: Vec<u32>,
}

impl Split {
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
