//! Reopening a finished run: its data and model stages built again from its own
//! `config.yaml`, with the weights it trained, for evaluation and prediction.

use std::path::{Path, PathBuf};

use kindling_core::{Artifacts, KeyRole, Registry};

use crate::{Overrides, PlanError, RunError, load_with, prepare};

/// Why a finished run could not be reopened.
#[derive(Debug, thiserror::Error)]
pub enum ReopenError {
    /// A file every finished run has is missing.
    #[error("{}: missing; give the directory of a finished run", .0.display())]
    Missing(PathBuf),
    /// A file could not be resolved.
    #[error("{}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The run's configuration no longer validates (with the overrides given).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A stage failed while building the data or the model.
    #[error(transparent)]
    Run(#[from] RunError),
}

/// Validates the run in `run_dir` from its `config.yaml` with `overrides` and the run's
/// `model.safetensors` as the model's weights, runs the stages before training (data, model)
/// and returns their artifacts: the data set, the model, the device and the data stage's
/// [`kindling_core::InputReader`].
pub fn reopen(run_dir: &Path, registry: &Registry, overrides: &Overrides) -> Result<Artifacts, ReopenError> {
    let config = run_dir.join("config.yaml");
    let weights = run_dir.join("model.safetensors");
    for f in [&config, &weights] {
        if !f.is_file() {
            return Err(ReopenError::Missing(f.clone()));
        }
    }
    let weights = weights.canonicalize().map_err(|source| ReopenError::Io { path: weights.clone(), source })?;
    let mut overrides = overrides.clone();
    overrides.roles.push((KeyRole::Weights, weights));
    let plan = load_with(&config, registry, &overrides)?;
    Ok(prepare(plan)?)
}
