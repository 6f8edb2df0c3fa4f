//! A list of steps: its validation, the shapes it produces, and its seeded application.

use kindling_core::{ConfigIssue, Issues};
use rand::Rng;
use rand::rngs::StdRng;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Apply, AugmentError, Image, Step, Transform};

/// The transforms of a data set, in order. In YAML it is just the list of [`Step`]s.
///
/// Training images go through every step; the other splits only through the steps marked
/// `apply: all` (by default `normalize`), so augmentation never touches evaluation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Pipeline {
    /// The steps, first applied first.
    pub steps: Vec<Step>,
}

/// The generator for sample `index` in `epoch` of a run seeded with `seed`: the same three
/// numbers always give the same augmentation, whichever worker draws it and in whatever
/// order. Evaluation, which sees each sample once, uses epoch 0.
pub fn rng_for(seed: u64, epoch: usize, index: usize) -> StdRng {
    kindling_core::rng_from_seed(seed, &format!("augment/{epoch}/{index}"))
}

impl Pipeline {
    /// A pipeline of `steps`.
    pub fn new(steps: Vec<Step>) -> Self {
        Self { steps }
    }

    /// The steps that transform the training split (`train`) or the others, with their
    /// positions.
    pub fn active(&self, train: bool) -> impl Iterator<Item = (usize, &Step)> {
        self.steps.iter().enumerate().filter(move |(_, s)| s.applies(train))
    }

    /// Whether no step transforms that split.
    pub fn is_identity(&self, train: bool) -> bool {
        self.active(train).next().is_none()
    }

    /// Records every problem with the steps' settings, at paths like
    /// `[2].random_rotation.degrees`, and a `normalize` limited to training.
    pub fn check(&self, issues: &mut Issues) {
        for (i, step) in self.steps.iter().enumerate() {
            issues.at(&format!("[{i}].{}", step.transform.name()), |nested| step.transform.check(nested));
            if matches!(step.transform, Transform::Normalize(_)) && step.apply == Apply::Train {
                issues.push_issue(
                    ConfigIssue::new(
                        format!("[{i}].apply"),
                        "`normalize` sets the scale of the model's inputs, so evaluating on unnormalised \
                         images would be wrong",
                    )
                    .with_help("remove `apply: train`; `normalize` applies to every split by default"),
                );
            }
        }
    }

    /// The `[channels, height, width]` that an image of shape `input` has after the steps of
    /// that split, or why it cannot go through them (the step, the shape it would get, the
    /// reason).
    pub fn output_shape(&self, input: [usize; 3], train: bool) -> Result<[usize; 3], String> {
        let mut shape = input;
        for (index, step) in self.active(train) {
            shape = step
                .transform
                .output_shape(shape)
                .map_err(|reason| shape_error(index, step, shape, reason).to_string())?;
        }
        Ok(shape)
    }

    /// Transforms `image` with the steps of its split, drawing from `rng` for the random
    /// ones (also outside training, for a random step marked `apply: all`).
    pub fn try_apply<R: Rng + ?Sized>(
        &self,
        mut image: Image,
        train: bool,
        rng: &mut R,
    ) -> Result<Image, AugmentError> {
        if image.data.len() != image.channels * image.height * image.width {
            return Err(AugmentError::Buffer { len: image.data.len(), shape: image.shape() });
        }
        for (index, step) in self.active(train) {
            let shape = image.shape();
            step.transform.output_shape(shape).map_err(|reason| shape_error(index, step, shape, reason))?;
            image = step.transform.apply(image, rng);
        }
        Ok(image)
    }

    /// As [`Pipeline::try_apply`], for images whose shape [`Pipeline::output_shape`] has
    /// accepted.
    ///
    /// # Panics
    ///
    /// When a step cannot take the image, which `output_shape` would have reported before
    /// any data was loaded.
    pub fn apply<R: Rng + ?Sized>(&self, image: Image, train: bool, rng: &mut R) -> Image {
        self.try_apply(image, train, rng).unwrap_or_else(|e| panic!("{e}"))
    }
}

fn shape_error(index: usize, step: &Step, shape: [usize; 3], reason: String) -> AugmentError {
    AugmentError::Shape { index, name: step.transform.name(), shape, reason }
}
