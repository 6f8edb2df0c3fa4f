//! A model's weights as a safetensors file whose bytes depend only on the weights.
//!
//! burn's store writes the header's `__metadata__` from a hash map, so two saves of the same
//! weights list its keys in different orders and the files differ. Every safetensors file a
//! run leaves goes through [`write`], which serialises in memory, rewrites the header with
//! its keys sorted, and writes the file atomically through the run directory: same seed,
//! same bytes.

use std::path::PathBuf;

use burn::store::{ModuleSnapshot, SafetensorsStore};
use kindling_core::{RunDir, StageError};
use kindling_models::Sequential;

/// Saves `net` through `store` (an in-memory store, `SafetensorsStore::from_bytes(None)` with
/// any adapters) into `dir/name`, with a canonical header.
pub(crate) fn write(
    net: &Sequential,
    mut store: SafetensorsStore,
    dir: &RunDir,
    name: &str,
) -> Result<PathBuf, StageError> {
    let path = dir.path().join(name);
    let fail = |e: String| StageError::Stopped(format!("{}: cannot save the model: {e}", path.display()));
    net.save_into(&mut store).map_err(|e| fail(e.to_string()))?;
    let bytes = store.get_bytes().map_err(|e| fail(e.to_string()))?;
    let bytes = canonical(&bytes).map_err(fail)?;
    dir.write(name, &bytes).map_err(|e| StageError::io(path.clone(), e))
}

/// A safetensors file's JSON header and where the tensor bytes start (the offsets in the
/// header count from there).
pub(crate) fn safetensors_header(bytes: &[u8]) -> Result<(serde_json::Map<String, serde_json::Value>, usize), String> {
    let len = bytes.get(..8).ok_or("shorter than a safetensors header")?;
    let len = usize::try_from(u64::from_le_bytes(len.try_into().map_err(|_| "bad header length")?))
        .map_err(|_| "header length out of range")?;
    let end = 8usize.checked_add(len).filter(|&e| e <= bytes.len()).ok_or("header longer than the file")?;
    let header = serde_json::from_slice(&bytes[8..end]).map_err(|e| format!("header is not JSON: {e}"))?;
    Ok((header, end))
}

/// The same safetensors file with its header's keys (tensor names and `__metadata__`'s keys)
/// in sorted order, padded with spaces to a multiple of 8 bytes as the format asks. The
/// tensors' bytes and offsets do not change: offsets count from the end of the header.
pub(crate) fn canonical(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let (header, end) = safetensors_header(bytes)?;
    let mut text = serde_json::Value::Object(sorted(header)).to_string();
    while !text.len().is_multiple_of(8) {
        text.push(' ');
    }
    let mut out = Vec::with_capacity(8 + text.len() + bytes.len() - end);
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&bytes[end..]);
    Ok(out)
}

fn sorted(map: serde_json::Map<String, serde_json::Value>) -> serde_json::Map<String, serde_json::Value> {
    let mut entries: Vec<(String, serde_json::Value)> = map.into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                // Tensor entries keep their fields (dtype, shape, offsets) as they are;
                // only the metadata map's keys are free-form and unordered.
                serde_json::Value::Object(m) if k == "__metadata__" => serde_json::Value::Object(sorted(m)),
                v => v,
            };
            (k, v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(header: &str, data: &[u8]) -> Vec<u8> {
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn headers_that_differ_only_in_key_order_become_the_same_bytes() {
        let data = [1u8, 2, 3, 4, 5, 6, 7, 8];
        let tensor = r#"{"dtype":"F32","shape":[2],"data_offsets":[0,8]}"#;
        let a = file(&format!(r#"{{"__metadata__":{{"format":"pt","version":"1"}},"w":{tensor}}}"#), &data);
        let b = file(&format!(r#"{{"w":{tensor},"__metadata__":{{"version":"1","format":"pt"}}}}"#), &data);
        assert_ne!(a, b);
        let (ca, cb) = (canonical(&a).unwrap(), canonical(&b).unwrap());
        assert_eq!(ca, cb);
        let n = u64::from_le_bytes(ca[..8].try_into().unwrap()) as usize;
        assert_eq!(n % 8, 0, "padded to 8 bytes");
        assert_eq!(&ca[8 + n..], &data, "tensor bytes untouched");
        assert_eq!(canonical(&ca).unwrap(), ca, "idempotent");
    }

    #[test]
    fn damaged_headers_are_errors_not_panics() {
        for bad in [&b"\x01\x02"[..], &b"\xff\xff\xff\xff\xff\xff\xff\xff{}"[..], &file("{not json", &[])[..]] {
            assert!(canonical(bad).is_err());
        }
    }
}
