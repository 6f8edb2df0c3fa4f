//! Training checkpoints: everything a run needs to continue after being killed, in one file
//! written atomically after every epoch.
//!
//! `checkpoints/last.ckpt` holds the epoch reached, the history so far, the last validation
//! confusion matrix, the training model (burnpack bytes, which keep the parameter ids the
//! optimizer state is keyed by), the optimizer state, and the best epoch's model when early
//! stopping keeps one. `checkpoints/best.ckpt` holds the best model on its own, for people.
//! Nothing else needs saving: the learning-rate schedule and early stopping are replayed from
//! the history, and every random draw (shuffling, augmentation, dropout) is seeded from the
//! run's seed and the epoch.
//!
//! Layout: the magic `KLCKPT01`, then four sections, each a little-endian u64 length and its
//! bytes: the JSON state, the model, the optimizer, the best model (possibly empty). A file
//! that does not parse is an error naming it.

use std::path::{Path, PathBuf};

use burn::optim::ModuleOptimizer;
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::Bytes;
use kindling_core::{StageError, write_atomic};
use kindling_metrics::ConfusionMatrix;
use kindling_models::Sequential;
use serde::{Deserialize, Serialize};

use crate::history::EpochRecord;

const MAGIC: &[u8; 8] = b"KLCKPT01";

/// Where a run keeps its checkpoints, relative to the run directory.
pub const CHECKPOINT_DIR: &str = "checkpoints";

/// What a checkpoint records besides tensors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct State {
    /// Epochs completed.
    pub(crate) epoch: usize,
    /// Their records.
    pub(crate) history: Vec<EpochRecord>,
    /// The last validation confusion matrix.
    pub(crate) last_valid_confusion: Option<ConfusionMatrix>,
    /// The best epoch's validation confusion matrix, when its model is kept.
    pub(crate) best_confusion: Option<ConfusionMatrix>,
    /// The epoch early stopping stopped at, when it did.
    pub(crate) stopped_at: Option<usize>,
    /// The TensorBoard event file's name, so a resumed run rewrites the same file.
    pub(crate) events_name: String,
    /// The diagnostic signals so far (absent in checkpoints from before diagnostics).
    #[serde(default)]
    pub(crate) diagnostics: Option<crate::diagnose::Recorder>,
}

/// A checkpoint read back.
pub(crate) struct Loaded {
    pub(crate) state: State,
    pub(crate) net: Sequential,
    pub(crate) optimizer: ModuleOptimizer,
    pub(crate) best: Option<Sequential>,
}

/// `run_dir/checkpoints/<name>`.
pub(crate) fn path(run_dir: &Path, name: &str) -> PathBuf {
    run_dir.join(CHECKPOINT_DIR).join(name)
}

fn model_bytes(net: &Sequential, file: &Path) -> Result<Vec<u8>, StageError> {
    let mut store = BurnpackStore::from_bytes(None);
    net.save_into(&mut store).map_err(|e| fail(file, format!("cannot save the model: {e}")))?;
    let bytes = store.get_bytes().map_err(|e| fail(file, format!("cannot save the model: {e}")))?;
    Ok(bytes.to_vec())
}

fn fail(file: &Path, message: impl std::fmt::Display) -> StageError {
    StageError::Stopped(format!("{}: {message}", file.display()))
}

/// Writes `file` atomically: the state, the model, the optimizer and the best model.
pub(crate) fn save(
    file: &Path,
    state: &State,
    net: &Sequential,
    optimizer: Option<&ModuleOptimizer>,
    best: Option<&Sequential>,
) -> Result<(), StageError> {
    let json = serde_json::to_vec(state).map_err(|e| fail(file, e))?;
    let model = model_bytes(net, file)?;
    let optim = match optimizer {
        Some(o) => o.into_bytes().map_err(|e| fail(file, format!("cannot save the optimizer state: {e}")))?.to_vec(),
        None => Vec::new(),
    };
    let best = best.map(|b| model_bytes(b, file)).transpose()?.unwrap_or_default();
    let mut out = Vec::with_capacity(8 + 32 + json.len() + model.len() + optim.len() + best.len());
    out.extend_from_slice(MAGIC);
    for section in [&json, &model, &optim, &best] {
        out.extend_from_slice(&(section.len() as u64).to_le_bytes());
        out.extend_from_slice(section);
    }
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| StageError::io(dir.to_owned(), e))?;
    }
    write_atomic(file, &out).map_err(|e| StageError::io(file.to_owned(), e))
}

/// Splits a checkpoint file into its four sections.
fn sections(file: &Path, bytes: &[u8]) -> Result<[Vec<u8>; 4], StageError> {
    let corrupt = |what: &str| fail(file, format!("is not a Kindling checkpoint ({what})"));
    let mut rest = bytes.strip_prefix(MAGIC.as_slice()).ok_or_else(|| corrupt("bad magic"))?;
    let mut out: [Vec<u8>; 4] = Default::default();
    for section in &mut out {
        let (len, tail) = rest.split_first_chunk::<8>().ok_or_else(|| corrupt("truncated"))?;
        let len = usize::try_from(u64::from_le_bytes(*len)).map_err(|_| corrupt("bad length"))?;
        if tail.len() < len {
            return Err(corrupt("truncated"));
        }
        *section = tail[..len].to_vec();
        rest = &tail[len..];
    }
    if !rest.is_empty() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(out)
}

/// Reads `file` into `net` (a freshly built model of the same layers) and `optimizer` (a fresh
/// one of the same configuration).
pub(crate) fn load(
    file: &Path,
    mut net: Sequential,
    optimizer: ModuleOptimizer,
    best_template: Option<Sequential>,
) -> Result<Loaded, StageError> {
    let bytes = std::fs::read(file).map_err(|e| StageError::io(file.to_owned(), e))?;
    let [json, model, optim, best] = sections(file, &bytes)?;
    let state: State = serde_json::from_slice(&json).map_err(|e| fail(file, format!("bad state: {e}")))?;
    let mut store = BurnpackStore::from_bytes(Some(Bytes::from_bytes_vec(model)));
    net.load_from(&mut store).map_err(|e| fail(file, format!("the model does not load: {e}")))?;
    let optimizer = if optim.is_empty() {
        optimizer
    } else {
        optimizer
            .from_bytes(Bytes::from_bytes_vec(optim))
            .map_err(|e| fail(file, format!("the optimizer state does not load: {e}")))?
    };
    let best = match (best_template, best.is_empty()) {
        (Some(mut b), false) => {
            let mut store = BurnpackStore::from_bytes(Some(Bytes::from_bytes_vec(best)));
            b.load_from(&mut store).map_err(|e| fail(file, format!("the best model does not load: {e}")))?;
            Some(b)
        }
        _ => None,
    };
    Ok(Loaded { state, net, optimizer, best })
}

#[cfg(test)]
mod tests {
    use burn::module::Module;
    use burn::nn::loss::CrossEntropyLossConfig;
    use burn::optim::GradientsParams;
    use burn::tensor::{Distribution, Int, Tensor};
    use kindling_models::{InitConfig, Shape, infer, preset};
    use kindling_optim::{Adam, OptimizerConfig};

    use super::*;

    /// A small model with one Adam step taken (so the optimizer has state), on the CPU.
    fn trained() -> (Sequential, ModuleOptimizer) {
        let layers = preset("mlp", 10).unwrap();
        let infos = infer(&layers, &Shape::Image([3, 32, 32])).unwrap();
        let dev = &kindling_models::device::resolve(kindling_core::DeviceChoice::Cpu).unwrap().device;
        let mut rng = kindling_core::rng_from_seed(0, "init");
        let net = Sequential::new(&layers, &infos, &InitConfig::default(), &mut rng, dev);
        let mut optimizer = OptimizerConfig::Adam(Adam::default()).build();
        let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Normal(0.0, 1.0), dev);
        let y = Tensor::<1, Int>::from_ints([1, 2], dev);
        let loss = CrossEntropyLossConfig::new().init(dev).forward(net.forward(x), y);
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        let net = optimizer.step(1e-3, net, grads);
        (net, optimizer)
    }

    /// Damaged checkpoints (every section: state, model, optimizer, best model) are errors
    /// naming the file: never a panic, whatever the bytes say.
    #[test]
    fn damaged_checkpoints_are_errors_never_panics() {
        let dir = std::env::temp_dir().join(format!("kindling-ckpt-corrupt-{}", std::process::id()));
        let file = dir.join("last.ckpt");
        let (net, optimizer) = trained();
        let state = State {
            epoch: 1,
            history: Vec::new(),
            last_valid_confusion: None,
            best_confusion: None,
            stopped_at: None,
            events_name: "events".into(),
            diagnostics: None,
        };
        save(&file, &state, &net, Some(&optimizer), Some(&net.valid())).unwrap();
        let valid = std::fs::read(&file).unwrap();
        let fresh = || {
            let (n, _) = trained();
            (n.clone(), OptimizerConfig::Adam(Adam::default()).build(), Some(n))
        };
        let (n, o, b) = fresh();
        assert!(load(&file, n, o, b).is_ok(), "the valid checkpoint loads");
        let started = std::time::Instant::now();
        let mut errors = 0;
        for (i, bytes) in kindling_core::mutate::mutations(&valid, 600, 0xc4e7).enumerate() {
            std::fs::write(&file, &bytes).unwrap();
            let (n, o, b) = fresh();
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| load(&file, n, o, b)));
            match outcome {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    errors += 1;
                    assert!(e.to_string().contains("last.ckpt"), "{e}");
                }
                Err(_) => {
                    let keep = dir.join(format!("panicked-{i}.ckpt"));
                    std::fs::write(&keep, &bytes).unwrap();
                    panic!("mutation {i} panicked the checkpoint reader (kept in {})", keep.display());
                }
            }
        }
        assert!(errors > 300, "most damaged checkpoints are refused: {errors}");
        assert!(started.elapsed().as_secs() < 120, "took {:?}", started.elapsed());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn damaged_files_are_errors_naming_them() {
        let file = Path::new("runs/x/checkpoints/last.ckpt");
        let msg = |bytes: &[u8]| match sections(file, bytes) {
            Err(StageError::Stopped(m)) => m,
            other => panic!("{:?}", other.map(|_| ())),
        };
        assert_eq!(msg(b"nonsense"), "runs/x/checkpoints/last.ckpt: is not a Kindling checkpoint (bad magic)");
        let mut good = MAGIC.to_vec();
        for section in [b"{}".as_slice(), b"m", b"", b""] {
            good.extend_from_slice(&(section.len() as u64).to_le_bytes());
            good.extend_from_slice(section);
        }
        assert_eq!(sections(file, &good).unwrap()[0], b"{}");
        assert!(msg(&good[..good.len() - 9]).ends_with("(truncated)"));
        let mut long = good.clone();
        long.push(0);
        assert!(msg(&long).ends_with("(trailing bytes)"));
    }
}
