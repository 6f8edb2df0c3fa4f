//! The image that transforms work on (CHW planes of f32) and the conversions from and to the
//! HWC bytes that decoders and PNG writers use.

use crate::AugmentError;

/// A CHW image of f32 values, row-major within each channel plane: the layout torchvision's
/// `ToTensor` produces. Values lie in [0, 1] until `normalize` rescales them.
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    /// Number of planes (1 for grey, 3 for RGB).
    pub channels: usize,
    /// Rows per plane.
    pub height: usize,
    /// Columns per row.
    pub width: usize,
    /// `channels * height * width` values; the value at `(c, y, x)` is at
    /// `(c * height + y) * width + x`.
    pub data: Vec<f32>,
}

impl Image {
    /// An image over `data`, which must hold exactly `channels * height * width` values.
    pub fn new(channels: usize, height: usize, width: usize, data: Vec<f32>) -> Result<Self, AugmentError> {
        let expected = channels.checked_mul(height).and_then(|n| n.checked_mul(width));
        if expected != Some(data.len()) {
            return Err(AugmentError::Buffer { len: data.len(), shape: [channels, height, width] });
        }
        Ok(Self { channels, height, width, data })
    }

    /// A black image.
    pub fn zeros(channels: usize, height: usize, width: usize) -> Self {
        Self::filled(channels, height, width, 0.0)
    }

    /// An image with every value set to `value`.
    pub fn filled(channels: usize, height: usize, width: usize, value: f32) -> Self {
        Self { channels, height, width, data: vec![value; channels * height * width] }
    }

    /// `[channels, height, width]`, the order [`crate::Pipeline::output_shape`] uses.
    pub fn shape(&self) -> [usize; 3] {
        [self.channels, self.height, self.width]
    }

    /// The value of channel `c` at row `y`, column `x`.
    ///
    /// # Panics
    ///
    /// When the position lies outside the image.
    pub fn get(&self, c: usize, y: usize, x: usize) -> f32 {
        assert!(
            c < self.channels && y < self.height && x < self.width,
            "({c}, {y}, {x}) is outside {:?}",
            self.shape()
        );
        self.data[(c * self.height + y) * self.width + x]
    }

    /// The values of channel `c`, row after row.
    pub fn plane(&self, c: usize) -> &[f32] {
        let len = self.height * self.width;
        &self.data[c * len..(c + 1) * len]
    }
}

/// `v / 255` for every byte, computed at compile time: a division (rather than a
/// multiplication by 1/255) gives torchvision's values bit for bit, and a table lookup keeps
/// the divisions out of the per-pixel loop.
const BYTE_TO_UNIT: [f32; 256] = {
    let mut table = [0.0; 256];
    let mut v = 0;
    while v < 256 {
        table[v] = v as f32 / 255.0;
        v += 1;
    }
    table
};

/// torchvision's `ToTensor`: interleaved HWC bytes to CHW floats divided by 255.
///
/// # Panics
///
/// When `pixels` does not hold `height * width * channels` bytes: a decoder bug, not a data
/// problem.
pub fn to_tensor(pixels: &[u8], height: usize, width: usize, channels: usize) -> Image {
    let plane = height * width;
    assert_eq!(pixels.len(), plane * channels, "{height}x{width}x{channels} pixels need {} bytes", plane * channels);
    let mut data = vec![0.0; pixels.len()];
    if channels > 0 {
        for (p, pixel) in pixels.chunks_exact(channels).enumerate() {
            for (c, &v) in pixel.iter().enumerate() {
                data[c * plane + p] = BYTE_TO_UNIT[usize::from(v)];
            }
        }
    }
    Image { channels, height, width, data }
}

/// The inverse of [`to_tensor`] for previews: CHW floats to interleaved HWC bytes, scaled by
/// 255, rounded and clamped. A normalised image must be unnormalised first to look right.
pub fn to_pixels(image: &Image) -> Vec<u8> {
    let plane = image.height * image.width;
    let mut pixels = vec![0; image.data.len()];
    for c in 0..image.channels {
        for (p, &v) in image.plane(c).iter().enumerate() {
            // `as u8` saturates and maps NaN to 0, which is what a preview wants.
            pixels[p * image.channels + c] = (v * 255.0).round().clamp(0.0, 255.0) as u8;
        }
    }
    debug_assert_eq!(pixels.len(), plane * image.channels);
    pixels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_tensor_moves_channels_first_and_scales() {
        // Two pixels of RGB: (0, 51, 255) and (255, 102, 0).
        let image = to_tensor(&[0, 51, 255, 255, 102, 0], 1, 2, 3);
        assert_eq!(image.shape(), [3, 1, 2]);
        assert_eq!(image.data, vec![0.0, 1.0, 0.2, 0.4, 1.0, 0.0]);
        assert_eq!(image.get(1, 0, 1), 0.4);
        assert_eq!(to_pixels(&image), vec![0, 51, 255, 255, 102, 0]);
    }

    #[test]
    fn the_table_divides_exactly() {
        for v in 0..=255u8 {
            assert_eq!(BYTE_TO_UNIT[usize::from(v)].to_bits(), (f32::from(v) / 255.0).to_bits());
        }
    }

    #[test]
    fn to_pixels_clamps_and_rounds() {
        let image = Image::new(1, 1, 4, vec![-0.5, 0.5, 1.5, 0.2]).unwrap();
        assert_eq!(to_pixels(&image), vec![0, 128, 255, 51]);
    }

    #[test]
    fn new_rejects_buffers_of_the_wrong_length() {
        let err = Image::new(3, 2, 2, vec![0.0; 11]).unwrap_err();
        assert_eq!(err.to_string(), "a buffer of 11 values cannot hold a 3x2x2 (CxHxW) image");
        assert_eq!(Image::zeros(2, 3, 4).data.len(), 24);
    }
}
