//! A finished run as a model package: `model.json` beside `model.safetensors` describes
//! everything inference needs (classes, the input and its evaluation-time preprocessing, the
//! layers), so `kindling predict` and `eval --data` need neither the run's configuration nor its
//! training data.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::artifact::Artifact;

/// The package's file name in a run directory.
pub const PACKAGE_FILE: &str = "model.json";

/// The most bytes a `model.json` may have: a layer list is a few kilobytes, and an audio run's
/// statistics a few more.
pub const MAX_PACKAGE_BYTES: u64 = 4 << 20;

/// The version [`Package`] is written with; raise it when a field changes meaning or goes away.
pub const PACKAGE_VERSION: u32 = 1;

/// What `model.json` holds.
///
/// ```json
/// {"version": 1, "classes": ["a", "b"],
///  "input": {"kind": "image", "shape": [1, 28, 28], "transforms": [{"normalize": {...}}]},
///  "model": {"input": [1, 28, 28], "layers": [{"conv2d": {...}}, "relu", ...]},
///  "weights": "model.safetensors"}
/// ```
///
/// `input` is what the data stage's [`crate::InputReader::describe`] gives (its `kind` says
/// which reader reads it back), with the sample `shape` added.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Package {
    /// [`PACKAGE_VERSION`] when written.
    pub version: u32,
    /// Class names; output `i` of the model is `classes[i]`.
    pub classes: Vec<String>,
    /// The input reader's description: `kind`, `shape` and the reader's own settings.
    pub input: Value,
    /// The layers and the shape of one input sample.
    pub model: ModelDescription,
    /// The weights' file, relative to the run directory.
    pub weights: String,
}

/// The model's part of a [`Package`]: its layer list (as the model stage's layer specs
/// serialise) and the shape of one sample. The model stage leaves one in the artifacts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelDescription {
    /// Shape of one input sample.
    pub input: Vec<usize>,
    /// The layers, in order.
    pub layers: Value,
}

impl Artifact for ModelDescription {
    const KIND: &'static str = "model description";
}

impl Package {
    /// The input's `kind` (`"image"`, `"audio"`), if it names one.
    pub fn input_kind(&self) -> Option<&str> {
        self.input.get("kind").and_then(Value::as_str)
    }

    /// The package in `run_dir`: `Ok(None)` when the run has none (made before packages were
    /// written, or by a pipeline whose data stage cannot read single files); an error naming
    /// the file when it cannot be read, does not parse or has another version.
    pub fn read(run_dir: &Path) -> Result<Option<Self>, String> {
        let path = run_dir.join(PACKAGE_FILE);
        if !path.is_file() {
            return Ok(None);
        }
        let size = std::fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?.len();
        if size > MAX_PACKAGE_BYTES {
            return Err(format!(
                "{}: {size} bytes, more than a model.json may have ({MAX_PACKAGE_BYTES})",
                path.display()
            ));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let value: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        match value.get("version").and_then(Value::as_u64) {
            Some(v) if v == u64::from(PACKAGE_VERSION) => {}
            other => {
                return Err(format!(
                    "{}: has version {}; this Kindling reads version {PACKAGE_VERSION}",
                    path.display(),
                    other.map_or_else(|| "none".to_owned(), |v| v.to_string())
                ));
            }
        }
        let package: Self = serde_json::from_value(value).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut parts = Path::new(&package.weights).components();
        if !matches!((parts.next(), parts.next()), (Some(std::path::Component::Normal(_)), None)) {
            return Err(format!(
                "{}: `weights` must name a file of the run directory, not {:?}",
                path.display(),
                package.weights
            ));
        }
        Ok(Some(package))
    }

    /// The package as pretty JSON with a final line break.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_package_reads_back_and_other_versions_are_refused() {
        let dir = std::env::temp_dir().join(format!("kindling-package-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(Package::read(&dir).unwrap(), None);
        let package = Package {
            version: PACKAGE_VERSION,
            classes: vec!["a".into(), "b".into()],
            input: serde_json::json!({"kind": "image", "shape": [1, 2, 2], "transforms": []}),
            model: ModelDescription { input: vec![1, 2, 2], layers: serde_json::json!(["flatten"]) },
            weights: "model.safetensors".into(),
        };
        std::fs::write(dir.join(PACKAGE_FILE), package.to_json()).unwrap();
        let read = Package::read(&dir).unwrap().unwrap();
        assert_eq!(read, package);
        assert_eq!(read.input_kind(), Some("image"));
        std::fs::write(dir.join(PACKAGE_FILE), package.to_json().replace("\"version\": 1", "\"version\": 7")).unwrap();
        let err = Package::read(&dir).unwrap_err();
        assert!(err.contains("has version 7"), "{err}");
        let outside = Package { weights: "../elsewhere.safetensors".into(), ..package };
        std::fs::write(dir.join(PACKAGE_FILE), outside.to_json()).unwrap();
        let err = Package::read(&dir).unwrap_err();
        assert!(err.contains("must name a file of the run directory"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
