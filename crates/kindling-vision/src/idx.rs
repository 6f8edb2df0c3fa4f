//! The IDX format (MNIST family): a big-endian header, then unsigned bytes.
//!
//! Layout: two zero bytes, an element-type code (0x08 = unsigned byte, the only one image sets
//! use), the number of dimensions, each dimension as a big-endian u32, then the data.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use flate2::read::GzDecoder;

use crate::VisionError;

/// An IDX file's header: its dimensions (`[count, rows, cols]` for images, `[count]` for labels).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxHeader {
    /// The dimensions, outermost first.
    pub dims: Vec<usize>,
}

/// A whole IDX file of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// The dimensions, outermost first.
    pub dims: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<u8>,
}

/// Reads only the header (cheap: for planning before any compute).
pub fn read_idx_header(path: &Path) -> Result<IdxHeader, VisionError> {
    let mut reader = open(path)?;
    parse_header(path, &mut reader)
}

/// Reads a whole IDX file, gzipped (detected by its magic bytes) or not.
pub fn read_idx(path: &Path) -> Result<IdxArray, VisionError> {
    let mut reader = open(path)?;
    let header = parse_header(path, &mut reader)?;
    let expected = header.dims.iter().try_fold(1_usize, |n, &d| n.checked_mul(d)).ok_or_else(|| {
        VisionError::malformed(path, format!("header dimensions {} overflow", dims_text(&header.dims)))
    })?;
    // The header is not trusted with the allocation: reserve at most what a sane file holds
    // and let the vector grow as data actually arrives.
    let mut data = Vec::with_capacity(expected.min(1 << 28));
    reader.take(expected as u64 + 1).read_to_end(&mut data).map_err(|e| io_or_corrupt(path, e))?;
    if data.len() < expected {
        return Err(VisionError::malformed(
            path,
            format!(
                "truncated: the header promises {expected} bytes of data ({}), the file holds {}",
                dims_text(&header.dims),
                data.len()
            ),
        ));
    }
    if data.len() > expected {
        return Err(VisionError::malformed(
            path,
            format!("has data past the {expected} bytes its header promises ({})", dims_text(&header.dims)),
        ));
    }
    Ok(IdxArray { dims: header.dims, data })
}

/// An IDX image file and its label file, read whole and checked to agree: images
/// `[count, rows, cols]`, labels `[count]`. The `idx_dataset` stage and the image-folder export
/// both read their data this way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IdxPair {
    /// The pixels, `count * rows * cols` bytes, image after image.
    pub(crate) pixels: Vec<u8>,
    /// One label per image.
    pub(crate) labels: Vec<u8>,
    /// Images, rows, columns.
    pub(crate) dims: [usize; 3],
}

impl IdxPair {
    /// Reads `images` and `labels`; an error names the file at fault.
    pub(crate) fn read(images: &Path, labels: &Path) -> Result<Self, VisionError> {
        let img = read_idx(images)?;
        let lab = read_idx(labels)?;
        let &[count, rows, cols] = img.dims.as_slice() else {
            return Err(VisionError::malformed(
                images,
                format!("expected images [count, rows, cols], found {} dimensions", img.dims.len()),
            ));
        };
        if lab.dims.len() != 1 {
            return Err(VisionError::malformed(
                labels,
                format!("expected labels [count], found {} dimensions", lab.dims.len()),
            ));
        }
        if count != lab.dims[0] {
            return Err(VisionError::Mismatch {
                path: labels.to_owned(),
                message: format!("{} labels for {count} images in {}", lab.dims[0], images.display()),
            });
        }
        Ok(Self { pixels: img.data, labels: lab.data, dims: [count, rows, cols] })
    }

    /// The number of classes the label file implies: its highest label + 1.
    pub(crate) fn class_count(&self) -> usize {
        class_count(&self.labels)
    }
}

/// Highest label + 1 (0 for no labels).
pub(crate) fn class_count(labels: &[u8]) -> usize {
    labels.iter().copied().max().map_or(0, |m| usize::from(m) + 1)
}

fn open(path: &Path) -> Result<Box<dyn Read>, VisionError> {
    let io = |source| VisionError::Io { path: path.to_owned(), source };
    let mut file = BufReader::new(File::open(path).map_err(io)?);
    let mut magic = [0_u8; 2];
    let n = file.read(&mut magic).map_err(io)?;
    // Re-open rather than seek-and-chain: simpler, and the header read is tiny.
    let file = BufReader::new(File::open(path).map_err(io)?);
    Ok(if n == 2 && magic == [0x1f, 0x8b] { Box::new(GzDecoder::new(file)) } else { Box::new(file) })
}

fn parse_header(path: &Path, reader: &mut dyn Read) -> Result<IdxHeader, VisionError> {
    let mut magic = [0_u8; 4];
    read_exact(path, reader, &mut magic, "its 4-byte magic number")?;
    if magic[0] != 0 || magic[1] != 0 {
        return Err(VisionError::malformed(
            path,
            format!(
                "not an IDX file: bad magic number {:02x}{:02x}{:02x}{:02x}",
                magic[0], magic[1], magic[2], magic[3]
            ),
        ));
    }
    if magic[2] != 0x08 {
        return Err(VisionError::malformed(
            path,
            format!("IDX element type 0x{:02x} is not supported (only unsigned bytes, 0x08)", magic[2]),
        ));
    }
    let ndim = usize::from(magic[3]);
    if ndim == 0 {
        return Err(VisionError::malformed(path, "IDX header declares zero dimensions"));
    }
    let mut dims = Vec::with_capacity(ndim);
    for _ in 0..ndim {
        let mut d = [0_u8; 4];
        read_exact(path, reader, &mut d, "its header")?;
        dims.push(u32::from_be_bytes(d) as usize);
    }
    Ok(IdxHeader { dims })
}

fn read_exact(path: &Path, reader: &mut dyn Read, buf: &mut [u8], what: &str) -> Result<(), VisionError> {
    reader.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => {
            VisionError::malformed(path, format!("truncated: the file ends inside {what}"))
        }
        _ => io_or_corrupt(path, e),
    })
}

fn io_or_corrupt(path: &Path, e: std::io::Error) -> VisionError {
    match e.kind() {
        std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof => {
            VisionError::malformed(path, format!("corrupt gzip stream ({e})"))
        }
        _ => VisionError::Io { path: path.to_owned(), source: e },
    }
}

fn dims_text(dims: &[usize]) -> String {
    dims.iter().map(ToString::to_string).collect::<Vec<_>>().join(" x ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    /// Writes `bytes` to a fresh file and returns what reading it gives, errors as text.
    fn check(name: &str, bytes: &[u8]) -> Result<IdxArray, String> {
        let dir = std::env::temp_dir().join(format!("kindling-vision-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let got = read_idx(&path).map_err(|e| e.to_string().replace(&dir.display().to_string(), "DIR"));
        std::fs::remove_file(&path).unwrap();
        got
    }

    #[test]
    fn plain_and_gzipped_files_read_the_same() {
        let raw = idx(&[2, 2, 3], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        let a = check("a.idx", &raw).unwrap();
        assert_eq!(a.dims, [2, 2, 3]);
        assert_eq!(a.data[11], 12);
        assert_eq!(check("a.idx.gz", &gz(&raw)).unwrap(), a);
    }

    #[test]
    fn broken_files_get_errors_that_name_them() {
        let cases: &[(&str, Vec<u8>, &str)] = &[
            ("magic", vec![1, 2, 3, 4], "DIR/magic: not an IDX file: bad magic number 01020304"),
            (
                "type",
                vec![0, 0, 0x0d, 1, 0, 0, 0, 1],
                "DIR/type: IDX element type 0x0d is not supported (only unsigned bytes, 0x08)",
            ),
            ("short-header", vec![0, 0, 8, 3, 0, 0], "DIR/short-header: truncated: the file ends inside its header"),
            (
                "short-data",
                idx(&[2, 2], &[1, 2, 3]),
                "DIR/short-data: truncated: the header promises 4 bytes of data (2 x 2), the file holds 3",
            ),
            ("long-data", idx(&[1], &[1, 2]), "DIR/long-data: has data past the 1 bytes its header promises (1)"),
            ("empty", vec![], "DIR/empty: truncated: the file ends inside its 4-byte magic number"),
            (
                "huge",
                idx(&[u32::MAX, u32::MAX, u32::MAX], &[1, 2]),
                "DIR/huge: header dimensions 4294967295 x 4294967295 x 4294967295 overflow",
            ),
            (
                "promises-much",
                idx(&[1 << 20, 1 << 10], &[1, 2]),
                "DIR/promises-much: truncated: the header promises 1073741824 bytes of data (1048576 x 1024), the file holds 2",
            ),
        ];
        for (name, bytes, expected) in cases {
            assert_eq!(check(name, bytes).unwrap_err(), *expected);
        }
        let mut cut = gz(&idx(&[100], &[7; 100]));
        cut.truncate(cut.len() - 12);
        let err = check("cut.gz", &cut).unwrap_err();
        assert!(err.starts_with("DIR/cut.gz: "), "{err}");
        let missing = read_idx(Path::new("/nonexistent/x.idx")).unwrap_err().to_string();
        assert!(missing.starts_with("/nonexistent/x.idx: "), "{missing}");
    }
}
