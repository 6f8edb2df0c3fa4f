//! Shared helpers of Kindling's end-to-end tests (see `tests/tests/`).

use std::path::{Path, PathBuf};

/// The registry the `kindling` binary builds, with every plugin.
pub fn registry() -> kindling_core::Registry {
    kindling_core::Registry::new(vec![
        kindling_vision::plugin(),
        kindling_audio::plugin(),
        kindling_models::plugin(),
        kindling_train::plugin(),
    ])
    .expect("plugins offer distinct stage names")
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the repository").to_owned()
}

/// A fresh, empty scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kindling-tests-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir is writable");
    dir
}

/// Every pipeline file under `pipelines/`, subfolders included, sorted.
pub fn shipped_pipelines() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("pipelines/ is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo_root().join("pipelines"), &mut out);
    out.sort();
    out
}
