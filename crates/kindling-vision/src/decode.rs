//! Decoding one image file into interleaved 8-bit pixels with the channel count asked for.
//!
//! Colour handling follows what torchvision's `ImageFolder` does through PIL: an RGBA or
//! palette image becomes RGB by dropping alpha (no compositing), and RGB becomes grey with
//! ITU-R 601 weights, `L = (299 R + 587 G + 114 B) / 1000` (PIL's `convert("L")`). Grey
//! images asked for 3 channels repeat the grey value. 16-bit images are scaled to 8 bits.

use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader};

use crate::VisionError;

/// The extensions an image folder's files may have (matched in any case).
pub const IMAGE_EXTENSIONS: [&str; 6] = ["png", "jpg", "jpeg", "bmp", "gif", "webp"];

/// An image as interleaved 8-bit pixels, `height x width x channels`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pixels {
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// 1 (grey) or 3 (RGB).
    pub channels: usize,
    /// `height * width * channels` bytes, row by row, channels interleaved.
    pub data: Vec<u8>,
}

/// The most pixels an image may have: PIL's `Image.MAX_IMAGE_PIXELS` (89,478,485, about
/// 9459 x 9459), past which PIL warns of a decompression bomb. A larger image is refused by
/// its header, before any pixel is decoded: a 389 KB PNG can declare 20000 x 20000 pixels,
/// 4.8 GB as the f32 tensor a model would see.
pub const MAX_IMAGE_PIXELS: u64 = 89_478_485;

/// Decodes the file at `path` (format guessed from its content) to `channels` (1 or 3).
/// Images over [`MAX_IMAGE_PIXELS`] are refused before decoding.
pub fn decode_file(path: &Path, channels: usize) -> Result<Pixels, VisionError> {
    let decoder =
        reader(path)?.into_decoder().map_err(|e| VisionError::malformed(path, format!("cannot be decoded: {e}")))?;
    let (w, h) = decoder.dimensions();
    check_pixels(path, w, h)?;
    let image = DynamicImage::from_decoder(decoder)
        .map_err(|e| VisionError::malformed(path, format!("cannot be decoded: {e}")))?;
    Ok(convert(image, channels))
}

/// Reads only the header: `(height, width)`. Images over [`MAX_IMAGE_PIXELS`] are errors
/// here too, so validation refuses them before a data set is decoded.
pub fn image_size(path: &Path) -> Result<(usize, usize), VisionError> {
    let (w, h) = reader(path)?
        .into_dimensions()
        .map_err(|e| VisionError::malformed(path, format!("is not a readable image: {e}")))?;
    check_pixels(path, w, h)?;
    Ok((h as usize, w as usize))
}

fn reader(path: &Path) -> Result<ImageReader<std::io::BufReader<std::fs::File>>, VisionError> {
    ImageReader::open(path)
        .map_err(|source| VisionError::Io { path: path.to_owned(), source })?
        .with_guessed_format()
        .map_err(|source| VisionError::Io { path: path.to_owned(), source })
}

fn check_pixels(path: &Path, w: u32, h: u32) -> Result<(), VisionError> {
    if u64::from(w) * u64::from(h) > MAX_IMAGE_PIXELS {
        return Err(VisionError::malformed(
            path,
            format!(
                "is {w} x {h} pixels, more than the {MAX_IMAGE_PIXELS} an image may have (PIL's MAX_IMAGE_PIXELS); \
                 shrink it before training"
            ),
        ));
    }
    Ok(())
}

/// Converts a decoded image to 8-bit grey (`channels == 1`) or RGB (otherwise).
pub(crate) fn convert(image: DynamicImage, channels: usize) -> Pixels {
    let (width, height) = (image.width() as usize, image.height() as usize);
    let grey_source = !image.color().has_color();
    let data = match (channels, grey_source) {
        (1, true) => image.into_luma8().into_raw(),
        (1, false) => image.into_rgb8().into_raw().chunks_exact(3).map(luma).collect(),
        (_, true) => image.into_luma8().into_raw().iter().flat_map(|&g| [g, g, g]).collect(),
        (_, false) => image.into_rgb8().into_raw(),
    };
    Pixels { height, width, channels: if channels == 1 { 1 } else { 3 }, data }
}

/// PIL's `convert("L")`: ITU-R 601 luma in integer arithmetic, rounded.
fn luma(rgb: &[u8]) -> u8 {
    let [r, g, b] = [rgb[0], rgb[1], rgb[2]].map(u32::from);
    ((r * 299 + g * 587 + b * 114 + 500) / 1000) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Rgb, RgbImage, Rgba, RgbaImage};

    #[test]
    fn colour_becomes_grey_with_pil_weights_and_grey_becomes_three_equal_channels() {
        let rgb = RgbImage::from_pixel(2, 1, Rgb([200, 100, 50]));
        let grey = convert(DynamicImage::ImageRgb8(rgb.clone()), 1);
        // 0.299 * 200 + 0.587 * 100 + 0.114 * 50 = 124.2
        assert_eq!(grey, Pixels { height: 1, width: 2, channels: 1, data: vec![124, 124] });
        assert_eq!(convert(DynamicImage::ImageRgb8(rgb), 3).data, [200, 100, 50, 200, 100, 50]);

        let g = GrayImage::from_raw(1, 2, vec![7, 9]).unwrap();
        let three = convert(DynamicImage::ImageLuma8(g), 3);
        assert_eq!((three.height, three.width, three.data), (2, 1, vec![7, 7, 7, 9, 9, 9]));
    }

    #[test]
    fn alpha_is_dropped_not_composited() {
        let rgba = RgbaImage::from_pixel(1, 1, Rgba([10, 20, 30, 0]));
        assert_eq!(convert(DynamicImage::ImageRgba8(rgba), 3).data, [10, 20, 30]);
    }

    /// The CRC-32 of PNG chunks (ISO 3309, reflected, polynomial 0xEDB88320).
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    #[test]
    fn unreadable_files_are_errors_naming_them() {
        let dir = std::env::temp_dir().join(format!("kindling-decode-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("broken.png");
        std::fs::write(&bad, b"\x89PNG\r\n\x1a\nnot really").unwrap();
        let err = decode_file(&bad, 3).unwrap_err().to_string();
        assert!(err.starts_with(&bad.display().to_string()) && err.contains("cannot be decoded"), "{err}");
        // A valid PNG that declares more pixels than the budget: refused from its header.
        let huge = dir.join("huge.png");
        let mut png = Vec::new();
        let encoder = image::codecs::png::PngEncoder::new(&mut png);
        let row = vec![0u8; 10_000];
        // Encode a 10000 x 1 image, then patch its header's height (the IHDR chunk's CRC is
        // recomputed) so it declares 10000 x 9000 pixels without holding them.
        image::ImageEncoder::write_image(encoder, &row, 10_000, 1, image::ExtendedColorType::L8).unwrap();
        png[20..24].copy_from_slice(&9_000u32.to_be_bytes());
        let crc = crc32(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        std::fs::write(&huge, &png).unwrap();
        for err in [image_size(&huge).unwrap_err().to_string(), decode_file(&huge, 3).unwrap_err().to_string()] {
            assert!(err.contains("huge.png") && err.contains("10000 x 9000 pixels"), "{err}");
        }
        let missing = dir.join("missing.png");
        assert!(decode_file(&missing, 3).unwrap_err().to_string().starts_with(&missing.display().to_string()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
