//! The CIFAR-10 binary format (`data_batch_1.bin` ... `data_batch_5.bin`, `test_batch.bin`).
//!
//! Each record is one label byte (0-9) then a 32 x 32 colour image as three planes of 1024
//! bytes (red, green, blue), rows top to bottom. There is no header: a file is a whole number of
//! 3,073-byte records. `batches.meta.txt`, next to the batches, lists the class names one per
//! line.

use std::path::Path;

use crate::VisionError;

/// Side of a CIFAR image.
pub const CIFAR_SIDE: usize = 32;
/// Bytes of one record: the label and 3 x 32 x 32 pixels.
pub const CIFAR_RECORD: usize = 1 + 3 * CIFAR_SIDE * CIFAR_SIDE;

/// The images of one or more CIFAR-10 batch files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CifarImages {
    /// `len() x 32 x 32 x 3` bytes, each image row by row with RGB interleaved (the layout
    /// decoded image files have, so one path serves both).
    pub pixels: Vec<u8>,
    /// Label of each image, 0-9.
    pub labels: Vec<u32>,
}

impl CifarImages {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Reads a batch file and appends its images.
    pub fn read_batch(&mut self, path: &Path) -> Result<(), VisionError> {
        let bytes = std::fs::read(path).map_err(|source| VisionError::Io { path: path.to_owned(), source })?;
        if bytes.is_empty() {
            return Err(VisionError::malformed(path, "is empty; a CIFAR-10 batch holds 3,073-byte records"));
        }
        if bytes.len() % CIFAR_RECORD != 0 {
            return Err(VisionError::malformed(
                path,
                format!(
                    "truncated or not a CIFAR-10 batch: {} bytes is not a whole number of 3,073-byte records \
                     ({} records and {} bytes over)",
                    bytes.len(),
                    bytes.len() / CIFAR_RECORD,
                    bytes.len() % CIFAR_RECORD
                ),
            ));
        }
        let plane = CIFAR_SIDE * CIFAR_SIDE;
        self.pixels.reserve(bytes.len() / CIFAR_RECORD * 3 * plane);
        for (n, record) in bytes.chunks_exact(CIFAR_RECORD).enumerate() {
            let label = record[0];
            if label > 9 {
                return Err(VisionError::malformed(
                    path,
                    format!("record {n} (byte {}) has label {label}; CIFAR-10 labels are 0-9", n * CIFAR_RECORD),
                ));
            }
            self.labels.push(u32::from(label));
            let (r, rest) = record[1..].split_at(plane);
            let (g, b) = rest.split_at(plane);
            for p in 0..plane {
                self.pixels.extend_from_slice(&[r[p], g[p], b[p]]);
            }
        }
        Ok(())
    }
}

/// Class names from `batches.meta.txt` (one per line, blank lines ignored).
pub fn read_cifar_classes(path: &Path) -> Result<Vec<String>, VisionError> {
    let text = std::fs::read_to_string(path).map_err(|source| VisionError::Io { path: path.to_owned(), source })?;
    let names: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect();
    if names.len() != 10 {
        return Err(VisionError::malformed(path, format!("lists {} class names; CIFAR-10 has 10", names.len())));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record whose red plane is all `r`, green all `g`, blue all `b`, except pixel 0.
    fn record(label: u8, r: u8, g: u8, b: u8) -> Vec<u8> {
        let plane = CIFAR_SIDE * CIFAR_SIDE;
        let mut out = vec![label];
        for v in [r, g, b] {
            let mut p = vec![v; plane];
            p[0] = 0;
            out.extend(p);
        }
        out
    }

    fn temp(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("kindling-cifar-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn planes_become_interleaved_rgb_and_labels_are_read() {
        let bytes = [record(3, 10, 20, 30), record(9, 1, 2, 3)].concat();
        let path = temp("two.bin", &bytes);
        let mut images = CifarImages::default();
        images.read_batch(&path).unwrap();
        assert_eq!(images.labels, [3, 9]);
        let per = 3 * CIFAR_SIDE * CIFAR_SIDE;
        assert_eq!(images.pixels.len(), 2 * per);
        assert_eq!(&images.pixels[..6], &[0, 0, 0, 10, 20, 30]);
        assert_eq!(&images.pixels[per + 3..per + 6], &[1, 2, 3]);
    }

    #[test]
    fn truncated_files_and_bad_labels_are_errors_naming_the_file() {
        let mut bytes = [record(1, 0, 0, 0), record(2, 0, 0, 0)].concat();
        bytes.truncate(bytes.len() - 5);
        let path = temp("short.bin", &bytes);
        let err = CifarImages::default().read_batch(&path).unwrap_err().to_string();
        assert!(err.starts_with(&path.display().to_string()), "{err}");
        assert!(err.contains("1 records and 3068 bytes over"), "{err}");

        let path = temp("label.bin", &[record(0, 0, 0, 0), record(12, 0, 0, 0)].concat());
        let err = CifarImages::default().read_batch(&path).unwrap_err().to_string();
        assert!(err.contains("record 1 (byte 3073) has label 12"), "{err}");

        let path = temp("meta.txt", b"airplane\nautomobile\n\n");
        assert!(read_cifar_classes(&path).unwrap_err().to_string().contains("lists 2 class names"));
    }
}
