//! How a data stage reads one file as a model input: what `kindling predict` classifies.

use std::error::Error;
use std::path::Path;

/// Reads one file (an image, a WAV) into a sample exactly as the data stage's evaluation split
/// sees its own: decoded, converted and preprocessed with the evaluation-time steps only. A
/// data stage that can read single files inserts one into the artifacts when it runs, as a
/// `Box<dyn InputReader>`, so inference needs no knowledge of the stage's configuration.
pub trait InputReader: Send + Sync {
    /// Takes what the original run recorded for inference from its directory (the audio
    /// stage's fitted statistics) in place of what this process computed again, so a restored
    /// run predicts with the numbers it trained with. Most readers record nothing.
    fn use_run_files(&mut self, run_dir: &Path) -> Result<(), Box<dyn Error + Send + Sync>> {
        let _ = run_dir;
        Ok(())
    }

    /// What inference needs to build this reader again without the run's data or
    /// configuration, as JSON with a `kind` (`"image"`, `"audio"`) that says which crate reads
    /// it back: the run's `model.json` holds it (see [`crate::Package`]). `None` (the default)
    /// for a reader that cannot describe itself; such a run has no `model.json`.
    fn describe(&self) -> Option<serde_json::Value> {
        None
    }

    /// The sample for `file`, checked to have `shape`. `index` is the file's position in the
    /// request: it seeds any random step marked for every split, as a sample's index does in
    /// a split. Errors name the file.
    fn read(&self, index: usize, file: &Path, shape: &[usize]) -> Result<Vec<f32>, Box<dyn Error + Send + Sync>>;
}
