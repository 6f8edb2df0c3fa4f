//! Writing an IDX image set out as an image folder, `out/<class>/<index>.png`, so experiments
//! written for `ImageFolder` (experiment 3's 3-channel Fashion-MNIST) run on real files.
//!
//! Class folders are named `<label>_<name>` with the label zero-padded, so that sorting the
//! folders by name (what `ImageFolder` and `image_dataset` do) gives back the IDX label order;
//! characters that cannot be in a folder name (`/` in "T-shirt/top") become `-`. The folder
//! is written under a temporary name and renamed into place at the end, so an interrupted
//! export leaves no half-written folder behind, and an existing non-empty folder is never
//! written into.

use std::path::{Path, PathBuf};

use image::{ColorType, ImageFormat};
use rayon::prelude::*;

use crate::VisionError;
use crate::idx::IdxPair;

/// What an export wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportSummary {
    /// The class folder names, in label order.
    pub folders: Vec<String>,
    /// Images written per class.
    pub counts: Vec<usize>,
}

/// Writes the images of `images` (IDX `[n, rows, cols]`) with the labels of `labels` to
/// `out/<class>/<index>.png`: grey, or RGB with the grey value in every channel (`rgb`).
/// `classes` names the labels (default: the label numbers); `limit_per_class` keeps the first N
/// images of each class.
pub fn export_idx_folder(
    images: &Path,
    labels: &Path,
    out: &Path,
    rgb: bool,
    classes: Option<&[String]>,
    limit_per_class: Option<usize>,
) -> Result<ExportSummary, VisionError> {
    let pair = IdxPair::read(images, labels)?;
    let class_count = pair.class_count();
    if let Some(names) = classes
        && names.len() < class_count
    {
        return Err(VisionError::Mismatch {
            path: labels.to_owned(),
            message: format!("holds label {}, but only {} class names were given", class_count - 1, names.len()),
        });
    }
    let width = (class_count.max(1) - 1).to_string().len();
    let folders: Vec<String> = (0..class_count)
        .map(|c| match classes {
            Some(names) => format!("{c:0width$}_{}", folder_name(&names[c])),
            None => format!("{c:0width$}"),
        })
        .collect();

    if out.exists()
        && std::fs::read_dir(out).map_err(|source| VisionError::Io { path: out.to_owned(), source })?.next().is_some()
    {
        return Err(VisionError::malformed(
            out,
            "exists and is not empty; choose a new folder (nothing is overwritten)",
        ));
    }
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "export".to_owned());
    let tmp = out.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| VisionError::Io { path, source }
    };
    for f in &folders {
        std::fs::create_dir_all(tmp.join(f)).map_err(io(&tmp))?;
    }

    let [count, rows, cols] = pair.dims;
    let per = rows * cols;
    let mut counts = vec![0usize; class_count];
    let mut jobs: Vec<(usize, usize)> = Vec::new();
    for (i, &l) in pair.labels.iter().enumerate() {
        let l = usize::from(l);
        if limit_per_class.is_none_or(|limit| counts[l] < limit) {
            counts[l] += 1;
            jobs.push((i, l));
        }
    }
    let digits = count.max(1).to_string().len();
    let written: Result<(), VisionError> = jobs.par_iter().try_for_each(|&(i, l)| {
        let grey = &pair.pixels[i * per..(i + 1) * per];
        let path: PathBuf = tmp.join(&folders[l]).join(format!("{i:0digits$}.png"));
        let saved = if rgb {
            let pixels: Vec<u8> = grey.iter().flat_map(|&g| [g, g, g]).collect();
            image::save_buffer_with_format(&path, &pixels, cols as u32, rows as u32, ColorType::Rgb8, ImageFormat::Png)
        } else {
            image::save_buffer_with_format(&path, grey, cols as u32, rows as u32, ColorType::L8, ImageFormat::Png)
        };
        saved.map_err(|e| VisionError::malformed(&path, format!("could not be written: {e}")))
    });
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if out.exists() {
        // An empty folder was there (checked above): replace it.
        std::fs::remove_dir(out).map_err(io(out))?;
    }
    std::fs::rename(&tmp, out).map_err(io(out))?;
    Ok(ExportSummary { folders, counts })
}

/// A class name usable as one folder name.
fn folder_name(name: &str) -> String {
    name.chars().map(|c| if matches!(c, '/' | '\\' | '\0') { '-' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_file;
    use crate::read_idx;

    fn data_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist")
    }

    #[test]
    fn an_idx_set_round_trips_through_rgb_pngs_in_label_order() {
        let dir = std::env::temp_dir().join(format!("kindling-export-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let out = dir.join("fmnist");
        let names: Vec<String> =
            ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
                .map(str::to_owned)
                .to_vec();
        let images = data_dir().join("t10k-images-idx3-ubyte.gz");
        let labels = data_dir().join("t10k-labels-idx1-ubyte.gz");
        let summary = export_idx_folder(&images, &labels, &out, true, Some(&names), Some(3)).unwrap();
        assert_eq!(summary.folders[0], "0_T-shirt-top");
        assert_eq!(summary.counts, [3; 10]);
        let mut sorted = summary.folders.clone();
        sorted.sort();
        assert_eq!(sorted, summary.folders, "sorting the folders must give the label order back");

        // The first test image is an ankle boot (label 9): its PNG holds its pixels, 3 times.
        let idx = read_idx(&images).unwrap();
        let png = decode_file(&out.join("9_Ankle boot").join("0000.png"), 3).unwrap();
        assert_eq!((png.height, png.width, png.channels), (28, 28, 3));
        let grey: Vec<u8> = png.data.iter().step_by(3).copied().collect();
        assert_eq!(grey, &idx.data[..784]);

        // A second export into the same folder is refused and leaves it as it was.
        let err = export_idx_folder(&images, &labels, &out, false, None, Some(1)).unwrap_err().to_string();
        assert!(err.contains("exists and is not empty"), "{err}");
        assert_eq!(std::fs::read_dir(out.join("0_T-shirt-top")).unwrap().count(), 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
