//! Single WAV files as model inputs: the [`InputReader`] the `audio_dataset` stage leaves
//! behind, so `kindling predict` computes features exactly as the run's validation split did.

use std::error::Error;
use std::path::Path;
use std::sync::Arc;

use kindling_core::InputReader;
use serde_json::Value;

use crate::{FeatureConfig, FeatureExtractor, NormStats};

/// The stage's feature extraction, then its fitted statistics when it fitted some.
#[derive(Debug)]
pub(crate) struct AudioInput {
    pub(crate) extractor: FeatureExtractor,
    pub(crate) stats: Option<Arc<NormStats>>,
}

/// The reader an audio run's `model.json` describes (`{"kind": "audio", "features": {...},
/// "stats": ...}`, as [`InputReader::describe`] wrote it): the same feature extraction and the
/// statistics the run fitted, if it fitted some.
pub fn audio_reader(description: &Value) -> Result<Box<dyn InputReader>, String> {
    if description.get("kind").and_then(Value::as_str) != Some("audio") {
        return Err(format!("describes no audio input: {description}"));
    }
    let features = description.get("features").cloned().ok_or("the audio input has no `features`")?;
    let config: FeatureConfig =
        serde_json::from_value(features).map_err(|e| format!("the input's `features` do not read back: {e}"))?;
    let extractor = FeatureExtractor::new(config).map_err(|e| format!("the input's `features`: {e}"))?;
    let stats = match description.get("stats") {
        None | Some(Value::Null) => None,
        Some(s) => Some(Arc::new(
            serde_json::from_value::<NormStats>(s.clone())
                .map_err(|e| format!("the input's `stats` do not read back: {e}"))?,
        )),
    };
    Ok(Box::new(AudioInput { extractor, stats }))
}

impl InputReader for AudioInput {
    /// The feature settings (WAV expectations, STFT, planes, normalisation) and the fitted
    /// statistics, `null` when the run fitted none.
    fn describe(&self) -> Option<Value> {
        let features = serde_json::to_value(self.extractor.config()).ok()?;
        let stats = serde_json::to_value(self.stats.as_deref()).ok()?;
        Some(serde_json::json!({"kind": "audio", "features": features, "stats": stats}))
    }

    /// The statistics the run fitted and recorded (`norm_stats.json`), rather than those this
    /// process fitted again.
    fn use_run_files(&mut self, run_dir: &Path) -> Result<(), Box<dyn Error + Send + Sync>> {
        let path = run_dir.join("norm_stats.json");
        if path.is_file() {
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let stats: NormStats = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            self.stats = Some(Arc::new(stats));
        }
        Ok(())
    }

    fn read(&self, _index: usize, file: &Path, shape: &[usize]) -> Result<Vec<f32>, Box<dyn Error + Send + Sync>> {
        let mut f = self.extractor.from_path(file)?;
        if let Some(s) = &self.stats {
            s.apply(&mut f)?;
        }
        if f.shape()[..] != *shape {
            return Err(format!("{}: features are {:?}; the model takes {shape:?}", file.display(), f.shape()).into());
        }
        Ok(f.data)
    }
}
