//! Single WAV files as model inputs: the [`InputReader`] the `audio_dataset` stage leaves
//! behind, so `kindling predict` computes features exactly as the run's validation split did.

use std::error::Error;
use std::path::Path;
use std::sync::Arc;

use kindling_core::InputReader;

use crate::{FeatureExtractor, NormStats};

/// The stage's feature extraction, then its fitted statistics when it fitted some.
#[derive(Debug)]
pub(crate) struct AudioInput {
    pub(crate) extractor: FeatureExtractor,
    pub(crate) stats: Option<Arc<NormStats>>,
}

impl InputReader for AudioInput {
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
