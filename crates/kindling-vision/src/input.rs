//! Single image files as model inputs: the [`InputReader`] the image stages leave behind, so
//! `kindling predict` preprocesses a file exactly as the run's evaluation split was.

use std::error::Error;
use std::path::Path;

use kindling_augment::{Pipeline, Step, Transform, rng_for, to_tensor};
use kindling_core::InputReader;

use crate::{Normalize, decode_file};

/// Decodes an image file to the model's channel count (as PIL converts) and applies the
/// stage's evaluation-time transforms.
#[derive(Debug)]
pub(crate) struct ImageInput {
    pipeline: Pipeline,
}

impl ImageInput {
    /// A stage's `transforms`, followed by the IDX stage's older `normalize` key when it is set
    /// (the two never meet: validation refuses `normalize` beside transforms).
    pub(crate) fn reader(transforms: &Pipeline, normalize: Option<&Normalize>) -> Box<dyn InputReader> {
        let mut pipeline = transforms.clone();
        if let Some(n) = normalize {
            let step = kindling_augment::Normalize {
                mean: n.mean.iter().map(|&m| m as f32).collect(),
                std: n.std.iter().map(|&s| s as f32).collect(),
            };
            pipeline.steps.push(Step::new(Transform::Normalize(step)));
        }
        Box::new(Self { pipeline })
    }
}

impl InputReader for ImageInput {
    fn read(&self, index: usize, file: &Path, shape: &[usize]) -> Result<Vec<f32>, Box<dyn Error + Send + Sync>> {
        let channels = shape.first().copied().unwrap_or(1);
        let px = decode_file(file, channels)?;
        let image = to_tensor(&px.data, px.height, px.width, px.channels);
        let image = self.pipeline.try_apply(image, false, &mut rng_for(0, 0, index))?;
        let got = [image.channels, image.height, image.width];
        if got[..] != *shape {
            return Err(format!(
                "{}: is {got:?} after the run's transforms; the model takes {shape:?}",
                file.display()
            )
            .into());
        }
        Ok(image.data)
    }
}
