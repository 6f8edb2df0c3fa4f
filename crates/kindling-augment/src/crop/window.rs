//! Cutting a window out of an image whose borders may have been padded, possibly twice
//! (`random_crop` pads explicitly, then again with `pad_if_needed`). Rather than building the
//! padded images, each output row and column is traced back through the paddings to an input
//! index, or to the fill value.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Image;

/// How padding invents pixels beyond the border (torchvision's `padding_mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "CropPaddingMode")]
#[serde(rename_all = "snake_case")]
pub enum PadMode {
    /// The fill value.
    #[default]
    Constant,
    /// The nearest border pixel, repeated.
    Edge,
    /// A mirror image that does not repeat the border pixel: `2 1 | 0 1 2 | 1 0`. torch
    /// requires the padding to be smaller than the side it mirrors.
    Reflect,
    /// A mirror image that repeats the border pixel: `1 0 | 0 1 2 | 2 1`. The padding may be
    /// at most the side it mirrors.
    Symmetric,
}

impl PadMode {
    /// Where padded position `p` (counted from the unpadded first index, so negative before
    /// it) reads from in a side of `n` pixels; `None` for the fill value. Positions further out
    /// than one mirror image keep folding, though torch would refuse such paddings.
    pub(crate) fn source(self, p: isize, n: usize) -> Option<usize> {
        let n_signed = n as isize;
        if (0..n_signed).contains(&p) {
            return Some(p as usize);
        }
        match self {
            PadMode::Constant => None,
            PadMode::Edge => Some(p.clamp(0, n_signed - 1) as usize),
            PadMode::Reflect if n == 1 => Some(0),
            PadMode::Reflect => {
                let period = 2 * (n_signed - 1);
                let m = p.rem_euclid(period);
                Some(if m < n_signed { m } else { period - m } as usize)
            }
            PadMode::Symmetric => {
                let period = 2 * n_signed;
                let m = p.rem_euclid(period);
                Some(if m < n_signed { m } else { period - 1 - m } as usize)
            }
        }
    }

    /// The YAML name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            PadMode::Constant => "constant",
            PadMode::Edge => "edge",
            PadMode::Reflect => "reflect",
            PadMode::Symmetric => "symmetric",
        }
    }

    /// The largest padding torch accepts on a side of `n` pixels.
    pub(crate) fn limit(self, n: usize) -> usize {
        match self {
            PadMode::Constant | PadMode::Edge => usize::MAX,
            PadMode::Reflect => n - 1,
            PadMode::Symmetric => n,
        }
    }
}

/// One padding of one axis: `before` pixels ahead of a side of `len` pixels.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pad {
    pub(crate) before: usize,
    pub(crate) len: usize,
}

/// For each of `out` positions starting at `start` along an axis padded by `pads` (innermost
/// first), the input index it reads, or `None` for the fill value.
pub(crate) fn trace(out: usize, start: isize, pads: &[Pad], mode: PadMode) -> Vec<Option<usize>> {
    (0..out as isize)
        .map(|k| {
            let mut p = start + k;
            for pad in pads.iter().rev() {
                p = mode.source(p - pad.before as isize, pad.len)? as isize;
            }
            Some(p as usize)
        })
        .collect()
}

/// The window whose rows and columns read from `rows` and `cols` (see [`trace`]).
pub(crate) fn cut(image: &Image, rows: &[Option<usize>], cols: &[Option<usize>], fill: f32) -> Image {
    let (h, w) = (rows.len(), cols.len());
    let mut data = Vec::with_capacity(image.channels * h * w);
    // A run of consecutive input columns is a plain slice copy, the common case.
    let first = cols.first().copied().flatten().unwrap_or(0);
    let contiguous = cols.iter().enumerate().all(|(k, &x)| x == Some(first + k));
    for c in 0..image.channels {
        let plane = image.plane(c);
        for row in rows {
            match row {
                None => data.resize(data.len() + w, fill),
                Some(y) => {
                    let line = &plane[y * image.width..(y + 1) * image.width];
                    if contiguous {
                        data.extend_from_slice(&line[first..first + w]);
                    } else {
                        data.extend(cols.iter().map(|x| x.map_or(fill, |x| line[x])));
                    }
                }
            }
        }
    }
    Image { channels: image.channels, height: h, width: w, data }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn along(mode: PadMode, n: usize, from: isize, to: isize) -> Vec<Option<usize>> {
        (from..to).map(|p| mode.source(p, n)).collect()
    }

    #[test]
    fn modes_mirror_like_torch() {
        // A side of 3 pixels, padded by 2 on each side.
        let s = |v: &[usize]| v.iter().map(|&x| Some(x)).collect::<Vec<_>>();
        assert_eq!(along(PadMode::Edge, 3, -2, 5), s(&[0, 0, 0, 1, 2, 2, 2]));
        assert_eq!(along(PadMode::Reflect, 3, -2, 5), s(&[2, 1, 0, 1, 2, 1, 0]));
        assert_eq!(along(PadMode::Symmetric, 3, -2, 5), s(&[1, 0, 0, 1, 2, 2, 1]));
        assert_eq!(along(PadMode::Constant, 3, -1, 4), vec![None, Some(0), Some(1), Some(2), None]);
    }

    #[test]
    fn two_paddings_compose() {
        // Reflect-pad 1 on a side of 3 (`1 | 0 1 2 | 1`), then reflect-pad 2 more on the
        // padded side of 5: `1 0 | 1 0 1 2 1 | 2 1`, which no single padding of 3 gives.
        let pads = [Pad { before: 1, len: 3 }, Pad { before: 2, len: 5 }];
        let got: Vec<_> = trace(9, 0, &pads, PadMode::Reflect).into_iter().map(Option::unwrap).collect();
        assert_eq!(got, vec![1, 0, 1, 0, 1, 2, 1, 2, 1]);
    }

    #[test]
    fn cut_copies_and_fills() {
        let image = Image::new(1, 2, 3, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let rows = trace(3, -1, &[Pad { before: 0, len: 2 }], PadMode::Constant);
        let cols = trace(2, 1, &[Pad { before: 0, len: 3 }], PadMode::Constant);
        assert_eq!(cut(&image, &rows, &cols, 9.0).data, vec![9.0, 9.0, 2.0, 3.0, 5.0, 6.0]);
        let cols = trace(2, 2, &[Pad { before: 0, len: 3 }], PadMode::Constant);
        assert_eq!(cut(&image, &rows, &cols, 9.0).data, vec![9.0, 9.0, 3.0, 9.0, 6.0, 9.0]);
    }
}
