//! A PNG grid of samples, to see what a model sees: one row per sample, one column per view
//! (for instance the evaluation view, then the augmented views of a few epochs).
//!
//! Samples are CHW floats after the transforms, so after `normalize` they are no longer in
//! [0, 1]: each tile is stretched from its own minimum to its maximum for display. Three-channel
//! samples are drawn in colour; any other count shows the first channel in grey (the left
//! magnitude of a stereo spectrogram, say). Small samples are enlarged by a whole factor
//! (nearest neighbour) so a 28 x 28 image is visible; a spectrogram is drawn with low
//! frequencies at the bottom.

use std::path::Path;

use image::ImageEncoder;
use image::codecs::png::PngEncoder;
use kindling_augment::Image;

use crate::VisionError;

/// Gap between tiles, in pixels.
const GAP: usize = 4;
/// Tiles are enlarged until their longer side is at least this many pixels.
const MIN_SIDE: usize = 96;

/// Draws `rows` (each a list of equally-sized samples) as a grid and writes it to `path` as a
/// PNG (atomically: a temporary file renamed into place). `flip_vertical` draws row 0 of each
/// sample at the bottom (spectrograms).
pub fn preview_grid(rows: &[Vec<Image>], flip_vertical: bool, path: &Path) -> Result<(), VisionError> {
    let first = rows.iter().flatten().next().ok_or_else(|| VisionError::malformed(path, "no samples to draw"))?;
    let (h, w) = (first.height, first.width);
    let scale = MIN_SIDE.div_ceil(h.max(w).max(1)).max(1);
    let (th, tw) = (h * scale, w * scale);
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let (height, width) = (GAP + rows.len() * (th + GAP), GAP + cols * (tw + GAP));
    let mut canvas = vec![255u8; height * width * 3];
    for (r, row) in rows.iter().enumerate() {
        for (c, tile) in row.iter().enumerate() {
            if (tile.height, tile.width) != (h, w) {
                return Err(VisionError::malformed(path, "all samples of a preview must have the same size"));
            }
            let rgb = tile_rgb(tile);
            let (top, left) = (GAP + r * (th + GAP), GAP + c * (tw + GAP));
            for y in 0..th {
                let sy = if flip_vertical { h - 1 - y / scale } else { y / scale };
                for x in 0..tw {
                    let src = (sy * w + x / scale) * 3;
                    let dst = ((top + y) * width + left + x) * 3;
                    canvas[dst..dst + 3].copy_from_slice(&rgb[src..src + 3]);
                }
            }
        }
    }
    let mut png = Vec::new();
    PngEncoder::new(&mut png)
        .write_image(&canvas, width as u32, height as u32, image::ExtendedColorType::Rgb8)
        .map_err(|e| VisionError::malformed(path, format!("could not be encoded: {e}")))?;
    kindling_core::write_atomic(path, &png).map_err(|source| VisionError::Io { path: path.to_owned(), source })
}

/// A sample as interleaved RGB bytes, stretched from its minimum to its maximum.
fn tile_rgb(tile: &Image) -> Vec<u8> {
    let plane = tile.height * tile.width;
    let shown = if tile.channels == 3 { 3 } else { 1 };
    let values = &tile.data[..plane * shown];
    let (lo, hi) = values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let span = if hi > lo { hi - lo } else { 1.0 };
    let byte = |v: f32| if v.is_finite() { ((v - lo) / span * 255.0).round().clamp(0.0, 255.0) as u8 } else { 0 };
    let mut out = Vec::with_capacity(plane * 3);
    for p in 0..plane {
        if shown == 3 {
            out.extend([byte(values[p]), byte(values[plane + p]), byte(values[2 * plane + p])]);
        } else {
            let g = byte(values[p]);
            out.extend([g, g, g]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_file;

    #[test]
    fn tiles_are_stretched_enlarged_and_laid_out_in_rows_and_columns() {
        // A 2 x 2 grey sample with values -1 .. 2: stretched to 0 .. 255.
        let a = Image { channels: 1, height: 2, width: 2, data: vec![-1.0, 0.0, 1.0, 2.0] };
        let red = Image { channels: 3, height: 2, width: 2, data: [vec![1.0; 4], vec![0.0; 4], vec![0.0; 4]].concat() };
        let dir = std::env::temp_dir().join(format!("kindling-preview-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("grid.png");
        preview_grid(&[vec![a.clone(), a], vec![red]], false, &path).unwrap();
        let png = decode_file(&path, 3).unwrap();
        // 2 px tiles enlarged 48x to 96; 2 rows x 2 columns with 4 px gaps.
        assert_eq!((png.height, png.width), (4 + 2 * 100, 4 + 2 * 100));
        let at = |y: usize, x: usize| &png.data[(y * png.width + x) * 3..(y * png.width + x) * 3 + 3];
        assert_eq!(at(4, 4), [0, 0, 0]);
        assert_eq!(at(4 + 95, 4 + 95), [255, 255, 255]);
        assert_eq!(at(4 + 48, 4), [170, 170, 170]);
        // The red sample is all red, its empty neighbour cell stays white.
        assert_eq!(at(104 + 10, 4 + 10), [255, 0, 0]);
        assert_eq!(at(104 + 10, 104 + 10), [255, 255, 255]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
