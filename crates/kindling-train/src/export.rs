//! The trained model for PyTorch: `model.pytorch.safetensors` holds the state dict of the
//! equivalent `torch.nn.Sequential` (keys `<layer index>.weight`, `.bias`, `.running_mean`,
//! `.running_var`; linear weights as `[out, in]`), `model.pytorch.json` the layer list and input
//! shape to build that module from, and `model.check.safetensors` a few inputs with this
//! model's outputs for them, so a loader can check it gets the same predictions
//! (`cargo xtask check export` does, with PyTorch).

use burn::store::{BurnToPyTorchAdapter, SafetensorsStore};
use burn::tensor::{Device, Tensor, TensorData};
use kindling_core::{RunDir, Split, StageError};
use kindling_models::{LayerSpec, Sequential};

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
    let store = SafetensorsStore::from_bytes(None)
        .with_to_adapter(BurnToPyTorchAdapter)
        .with_key_remapping(r"^layers\.([0-9]+)\.[A-Za-z0-9]+\.", "$1.");
    crate::weights::write(net, store, dir, "model.pytorch.safetensors")?;

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
}
