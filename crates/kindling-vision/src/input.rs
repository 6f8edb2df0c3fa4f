//! Single image files as model inputs: the [`InputReader`] the image stages leave behind, so
//! `kindling predict` preprocesses a file exactly as the run's evaluation split was.

use std::error::Error;
use std::path::Path;

use kindling_augment::{Pipeline, Step, Transform, rng_for, to_tensor};
use kindling_core::InputReader;
use serde_json::Value;

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

/// The reader an image run's `model.json` describes (`{"kind": "image", "transforms": [...]}`,
/// as [`InputReader::describe`] wrote it): the evaluation-time transforms, applied to files
/// decoded to the channels of the shape each read is given.
pub fn image_reader(description: &Value) -> Result<Box<dyn InputReader>, String> {
    if description.get("kind").and_then(Value::as_str) != Some("image") {
        return Err(format!("describes no image input: {description}"));
    }
    let transforms = description.get("transforms").cloned().unwrap_or(Value::Array(Vec::new()));
    let pipeline: Pipeline =
        serde_json::from_value(transforms).map_err(|e| format!("the input's `transforms` do not read back: {e}"))?;
    Ok(Box::new(ImageInput { pipeline }))
}

impl InputReader for ImageInput {
    /// The steps evaluation applies (those marked for every split), each with its `apply`.
    fn describe(&self) -> Option<Value> {
        let eval = Pipeline::new(self.pipeline.steps.iter().filter(|s| s.applies(false)).cloned().collect());
        let transforms = serde_json::to_value(&eval).ok()?;
        Some(serde_json::json!({"kind": "image", "transforms": transforms}))
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_description_keeps_only_the_evaluation_steps_and_reads_back() {
        let transforms: Pipeline = serde_json::from_value(serde_json::json!([
            "random_horizontal_flip",
            {"center_crop": 4, "apply": "all"},
            {"normalize": {"mean": [0.1307], "std": [0.3081]}},
        ]))
        .unwrap();
        let reader = ImageInput::reader(&transforms, None);
        let described = reader.describe().unwrap();
        assert_eq!(described["kind"], "image");
        assert_eq!(described["transforms"].as_array().unwrap().len(), 2, "{described}");
        let again = image_reader(&described).unwrap();
        assert_eq!(again.describe().unwrap(), described);
        assert!(image_reader(&serde_json::json!({"kind": "audio"})).is_err());
    }
}
