//! The trained model for PyTorch: `model.pytorch.safetensors` holds the state dict of the
//! equivalent `torch.nn.Sequential` (keys `<layer index>.weight`, `.bias`, `.running_mean`,
//! `.running_var`; linear weights as `[out, in]`), `model.pytorch.json` the layer list and input
//! shape to build that module from, and `model.check.safetensors` a few inputs with this
//! model's outputs for them, so a loader can check it gets the same predictions
//! (`cargo xtask check export` does, with PyTorch). `model.onnx` is the same model as ONNX
//! (see [`crate::onnx`]), built from the same state dict.
//!
//! [`export_run`] writes either again from a finished run (`kindling export`).

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot, SafetensorsStore};
use burn::tensor::{Device, Tensor, TensorData};
use kindling_core::{Artifacts, Dataset, RunDir, Split, StageError};
use kindling_models::device::ResolvedDevice;
use kindling_models::{LayerSpec, Model, Sequential};

/// Writes the three files into `dir`. `net` is in validation mode on `device`; `check` supplies
/// the inputs (its first few samples of `shape`).
pub(crate) fn write(
    net: &Sequential,
    layers: &[LayerSpec],
    shape: [usize; 3],
    check: &Split,
    device: &Device,
    dir: &RunDir,
) -> Result<(), StageError> {
    let state = pytorch_state(net).map_err(|e| {
        StageError::Stopped(format!(
            "{}: cannot save the model: {e}",
            dir.path().join("model.pytorch.safetensors").display()
        ))
    })?;
    dir.write("model.pytorch.safetensors", &state)
        .map_err(|e| StageError::io(dir.path().join("model.pytorch.safetensors"), e))?;

    let meta = serde_json::json!({ "input": shape, "layers": layers });
    let text = serde_json::to_string_pretty(&meta).unwrap_or_default();
    dir.write("model.pytorch.json", text.as_bytes())
        .map_err(|e| StageError::io(dir.path().join("model.pytorch.json"), e))?;

    // A few samples, fewer when they are large (a 4 x 257 x 382 spectrogram is 1.5 MB).
    let per: usize = shape.iter().product();
    let n = check.len().min((1_000_000 / per.max(1)).clamp(1, 4));
    if n == 0 {
        return Ok(());
    }
    let mut inputs = vec![0.0f32; n * per];
    for (i, slot) in inputs.chunks_exact_mut(per).enumerate() {
        check.sample_into(i, slot).map_err(StageError::Stopped)?;
    }
    let [c, h, w] = shape;
    let x = Tensor::<4>::from_data(TensorData::new(inputs.clone(), [n, c, h, w]), device);
    let y = net.forward(x);
    let classes = y.dims()[1];
    let outputs: Vec<f32> = y.into_data().iter::<f32>().collect();
    let bytes = safetensors(&[("inputs", &[n, c, h, w], &inputs), ("outputs", &[n, classes], &outputs)]);
    dir.write("model.check.safetensors", &bytes)
        .map_err(|e| StageError::io(dir.path().join("model.check.safetensors"), e))?;
    Ok(())
}

/// The state dict of the equivalent `torch.nn.Sequential` as safetensors bytes, with a
/// canonical header (`weights::canonical`).
fn pytorch_state(net: &Sequential) -> Result<Vec<u8>, String> {
    let mut store = SafetensorsStore::from_bytes(None)
        .with_to_adapter(BurnToPyTorchAdapter)
        .with_key_remapping(r"^layers\.([0-9]+)\.[A-Za-z0-9]+\.", "$1.");
    net.save_into(&mut store).map_err(|e| e.to_string())?;
    let bytes = store.get_bytes().map_err(|e| e.to_string())?;
    crate::weights::canonical(&bytes)
}

/// What `model.onnx`'s `kindling.preprocessing` holds: the data stage's input reader's own
/// description (the evaluation-time steps and fitted statistics `model.json` holds, no data
/// paths) where it gives one, else the data stage of the run's `config.yaml`.
pub fn preprocessing(
    reader: Option<&dyn kindling_core::InputReader>,
    config_yaml: Option<&str>,
) -> Result<serde_json::Value, String> {
    if let Some(description) = reader.and_then(kindling_core::InputReader::describe) {
        return Ok(description);
    }
    match config_yaml {
        Some(text) => crate::onnx::preprocessing(text).map_err(|e| format!("config.yaml: {e}")),
        None => Ok(serde_json::Value::Null),
    }
}

/// `model.onnx` of `net` (in validation mode) as bytes, with `preprocessing` (see
/// [`preprocessing`]) in its metadata.
pub fn onnx_bytes(
    net: &Sequential,
    layers: &[LayerSpec],
    shape: [usize; 3],
    classes: &[String],
    preprocessing: serde_json::Value,
) -> Result<Vec<u8>, String> {
    let state = crate::onnx::read_safetensors(&pytorch_state(net)?)?;
    let facts = crate::onnx::Facts { classes: classes.to_vec(), preprocessing };
    Ok(crate::onnx::encode(&crate::onnx::build(layers, shape, &state, &facts)?))
}

/// Writes `model.onnx` into the run directory `dir` (whose `config.yaml` it describes).
pub(crate) fn write_onnx(
    net: &Sequential,
    layers: &[LayerSpec],
    shape: [usize; 3],
    classes: &[String],
    reader: Option<&dyn kindling_core::InputReader>,
    dir: &RunDir,
) -> Result<PathBuf, StageError> {
    let path = dir.path().join("model.onnx");
    let config = std::fs::read_to_string(dir.path().join("config.yaml")).ok();
    let bytes = preprocessing(reader, config.as_deref())
        .and_then(|p| onnx_bytes(net, layers, shape, classes, p))
        .map_err(|e| StageError::Stopped(format!("{}: cannot export the model: {e}", path.display())))?;
    dir.write("model.onnx", &bytes).map_err(|e| StageError::io(path, e))
}

/// Which export [`export_run`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// `model.onnx`.
    Onnx,
    /// `model.pytorch.safetensors`, `model.pytorch.json` and `model.check.safetensors`.
    Pytorch,
}

/// Writes an export of a reopened run's model (`artifacts` from `kindling_pipeline::reopen`
/// of `run_dir`): ONNX into the file `output` (default `run_dir/model.onnx`), PyTorch's three
/// files into the folder `output` (default `run_dir`). The files are those the run wrote, byte
/// for byte. Returns the paths written.
pub fn export_run(
    mut artifacts: Artifacts,
    run_dir: &Path,
    format: ExportFormat,
    output: Option<&Path>,
) -> Result<Vec<PathBuf>, StageError> {
    let missing =
        |what: &str| StageError::Stopped(format!("{}: the run's pipeline builds no {what}", run_dir.display()));
    let data = artifacts.take::<Dataset>().ok_or_else(|| missing("data set"))?;
    let model = artifacts.take::<Model>().ok_or_else(|| missing("model"))?;
    let device = artifacts.take::<ResolvedDevice>().ok_or_else(|| missing("device"))?;
    let shape: [usize; 3] = data.shape.as_slice().try_into().map_err(|_| {
        StageError::Stopped(format!("{}: samples are {:?}, not [c, h, w]", run_dir.display(), data.shape))
    })?;
    let net = model.net.valid();
    match format {
        ExportFormat::Onnx => {
            let path = output.map_or_else(|| run_dir.join("model.onnx"), Path::to_path_buf);
            let config_path = run_dir.join("config.yaml");
            let config = std::fs::read_to_string(&config_path).map_err(|e| StageError::io(config_path, e))?;
            let reader = artifacts.get::<Box<dyn kindling_core::InputReader>>().map(|r| r.as_ref());
            let bytes = preprocessing(reader, Some(&config))
                .and_then(|p| onnx_bytes(&net, &model.layers, shape, &data.classes, p))
                .map_err(|e| StageError::Stopped(format!("{}: cannot export the model: {e}", path.display())))?;
            kindling_core::write_atomic(&path, &bytes).map_err(|e| StageError::io(path.clone(), e))?;
            Ok(vec![path])
        }
        ExportFormat::Pytorch => {
            let folder = output.unwrap_or(run_dir);
            let dir = RunDir::at(folder).map_err(|e| StageError::io(folder.to_path_buf(), e))?;
            let check = if data.valid.is_empty() { &data.train } else { &data.valid };
            write(&net, &model.layers, shape, check, &device.device.inner(), &dir)?;
            let names = ["model.pytorch.safetensors", "model.pytorch.json", "model.check.safetensors"];
            Ok(names.iter().map(|n| folder.join(n)).filter(|p| p.is_file()).collect())
        }
    }
}

/// A safetensors file of f32 tensors: an 8-byte header length, the JSON header (padded with
/// spaces to a multiple of 8), then the little-endian data in order.
fn safetensors(tensors: &[(&str, &[usize], &[f32])]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut offset = 0;
    for (name, shape, data) in tensors {
        let end = offset + 4 * data.len();
        header.insert(
            (*name).to_owned(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut text = serde_json::Value::Object(header).to_string();
    while !text.len().is_multiple_of(8) {
        text.push(' ');
    }
    let mut out = Vec::with_capacity(8 + text.len() + offset);
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    for (_, _, data) in tensors {
        for v in *data {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safetensors_layout_is_header_then_data() {
        let bytes = safetensors(&[("a", &[2], &[1.0, 2.0]), ("b", &[1, 1], &[3.0])]);
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert_eq!(n % 8, 0);
        let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
        assert_eq!(header["a"]["data_offsets"], serde_json::json!([0, 8]));
        assert_eq!(header["b"]["shape"], serde_json::json!([1, 1]));
        let data = &bytes[8 + n..];
        assert_eq!(data.len(), 12);
        assert_eq!(f32::from_le_bytes(data[8..12].try_into().unwrap()), 3.0);
    }

    /// Every preset's real weights (as `Sequential::new` builds them) go into `model.onnx`
    /// with the PyTorch export's names and shapes.
    #[test]
    fn every_preset_exports_its_weights_to_onnx() {
        use kindling_models::{InitConfig, PRESETS, Shape, infer, preset};
        use rand::SeedableRng;
        let device = Device::flex();
        for name in PRESETS {
            let shape = if *name == "stereo_cnn" || *name == "direction_cnn" { [4, 257, 382] } else { [1, 28, 28] };
            let layers = preset(name, 10).unwrap();
            let infos = infer(&layers, &Shape::Image(shape)).unwrap();
            let mut rng = rand::rngs::StdRng::seed_from_u64(1);
            let net = Sequential::new(&layers, &infos, &InitConfig::default(), &mut rng, &device);
            let classes: Vec<String> = (0..10).map(|c| c.to_string()).collect();
            let bytes = onnx_bytes(&net, &layers, shape, &classes, serde_json::Value::Null).unwrap();
            assert_eq!(
                bytes,
                onnx_bytes(&net, &layers, shape, &classes, serde_json::Value::Null).unwrap(),
                "{name}: deterministic"
            );
            let m = crate::onnx::decode(&bytes).unwrap();
            let g = m.graph.unwrap();
            let values: usize = g
                .initializer
                .iter()
                .map(|t| {
                    let n = t.dims.iter().product::<i64>() as usize;
                    assert_eq!(t.raw_data.as_ref().unwrap().len(), 4 * n, "{name}: {}", t.name());
                    n
                })
                .sum();
            let params: usize = infos.iter().map(|i| i.params).sum();
            let running: usize = layers
                .iter()
                .zip(&infos)
                .filter(|(l, _)| matches!(l, LayerSpec::Batchnorm(_)))
                .map(|(_, i)| i.params)
                .sum();
            assert_eq!(values, params + running, "{name}: parameters and running statistics");
            // burn counts the running statistics among a module's parameters.
            assert_eq!(net.num_params(), params + running, "{name}");
        }
    }
}
