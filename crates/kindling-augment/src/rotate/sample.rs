//! Rotation by inverse mapping, the way torchvision rotates tensors: every output pixel's
//! centre is mapped back into the input and sampled there (`grid_sample` with
//! `align_corners=False`).
//!
//! Coordinates are measured from the image centre in pixels, `x` to the right and `y` down,
//! with pixel `(i, j)` centred at `(j + 0.5 - w / 2, i + 0.5 - h / 2)`. So the default pivot is
//! the centre of the image's rectangle, which is pixel index `((w - 1) / 2, (h - 1) / 2)`: the
//! middle pixel of an odd side, the corner shared by the two middle pixels of an even one. A
//! quarter turn of a square image is therefore an exact permutation of its pixels.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Image;
use crate::values::Fill;

/// How a rotated image is sampled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Interpolation {
    /// The nearest input pixel (ties to even, as `grid_sample`); torchvision's default.
    #[default]
    Nearest,
    /// The four nearest input pixels, weighted by distance.
    Bilinear,
}

/// Everything about a rotation except its angle.
pub(crate) struct Geometry<'a> {
    pub(crate) interpolation: Interpolation,
    pub(crate) expand: bool,
    /// The pivot in torchvision's convention: pixel `(i, j)` covers `[j, j + 1) x [i, i + 1)`,
    /// so the image centre is `(w / 2, h / 2)`.
    pub(crate) center: Option<[f64; 2]>,
    pub(crate) fill: &'a Fill,
}

/// Sample positions beyond this many pixels from the input are outside any image.
const FAR: f64 = 1e9;

/// Rounds half to even: adding 1.5 * 2^52 pushes the fraction out of the mantissa, where the
/// default rounding (to nearest, ties to even) does the work. Exact for |x| < 2^51.
/// `round_ties_even` would be a library call on baseline x86-64, in the innermost loop.
fn round_even(x: f64) -> f64 {
    const SHIFT: f64 = 6_755_399_441_055_744.0;
    (x + SHIFT) - SHIFT
}

/// `floor` for |x| < 2^63 without the library call: truncate, then step down for negative
/// fractions.
fn floor(x: f64) -> f64 {
    let t = x as i64 as f64;
    if t > x { t - 1.0 } else { t }
}

/// Sine and cosine of an angle in degrees, exact at multiples of 90 so that quarter turns
/// move whole pixels (floating-point `cos(pi / 2)` is 6e-17, not 0).
fn sin_cos(degrees: f64) -> (f64, f64) {
    match degrees.rem_euclid(360.0) {
        0.0 => (0.0, 1.0),
        90.0 => (1.0, 0.0),
        180.0 => (0.0, -1.0),
        270.0 => (-1.0, 0.0),
        _ => degrees.to_radians().sin_cos(),
    }
}

impl Geometry<'_> {
    /// The map from output to input coordinates (both centre-relative), `[a, b, tx, d, e, ty]`
    /// for `x_in = a x + b y + tx`, `y_in = d x + e y + ty`: the rotation by `-angle` about the
    /// pivot, undoing the anticlockwise rotation the output shows.
    fn inverse(&self, angle: f64, height: usize, width: usize) -> [f64; 6] {
        let (s, c) = sin_cos(angle);
        let [cx, cy] = self.center.map_or([0.0, 0.0], |[x, y]| [x - width as f64 / 2.0, y - height as f64 / 2.0]);
        [c, -s, cx - c * cx + s * cy, s, c, cy - s * cx - c * cy]
    }

    /// `[height, width]` of the output: the input's, or with `expand` the bounding box of the
    /// rotated corners, rounded outwards after cutting the coordinates to four decimals (so
    /// that `3.0000000001` does not become 4), as torchvision does.
    pub(crate) fn output_size(&self, angle: f64, height: usize, width: usize) -> [usize; 2] {
        if !self.expand {
            return [height, width];
        }
        let [a, b, tx, d, e, ty] = self.inverse(angle, height, width);
        let (hw, hh) = (width as f64 / 2.0, height as f64 / 2.0);
        let mut lo = [f64::INFINITY; 2];
        let mut hi = [f64::NEG_INFINITY; 2];
        for (x, y) in [(-hw, -hh), (-hw, hh), (hw, hh), (hw, -hh)] {
            for (k, v) in [a * x + b * y + tx + hw, d * x + e * y + ty + hh].into_iter().enumerate() {
                lo[k] = lo[k].min(v);
                hi[k] = hi[k].max(v);
            }
        }
        let cut = |v: f64| (v * 1e4).trunc() / 1e4;
        let size = |k: usize| (cut(hi[k]).ceil() - cut(lo[k]).floor()).max(1.0) as usize;
        [size(1), size(0)]
    }

    /// Rotates `image` anticlockwise by `angle` degrees; pixels from outside get the fill.
    pub(crate) fn rotate(&self, image: Image, angle: f64) -> Image {
        let (c, h, w) = (image.channels, image.height, image.width);
        let [oh, ow] = self.output_size(angle, h, w);
        let [a, b, tx, d, e, ty] = self.inverse(angle, h, w);
        let (plane_in, plane_out) = (h * w, oh * ow);
        let mut out = vec![0.0; c * plane_out];
        let fill = |ch: usize| f64::from(self.fill.channel(ch));
        for yo in 0..oh {
            let y = yo as f64 + 0.5 - oh as f64 / 2.0;
            for xo in 0..ow {
                let x = xo as f64 + 0.5 - ow as f64 / 2.0;
                // Input pixel indices: centre-relative coordinates shifted by (w - 1) / 2.
                let sx = a * x + b * y + tx + (w as f64 - 1.0) / 2.0;
                let sy = d * x + e * y + ty + (h as f64 - 1.0) / 2.0;
                let o = yo * ow + xo;
                // Coordinates far outside, or NaN from settings that `check` reports, take the
                // fill; the bound also keeps the fast rounding below exact.
                if !(sx.abs() < FAR && sy.abs() < FAR) {
                    for ch in 0..c {
                        out[ch * plane_out + o] = fill(ch) as f32;
                    }
                    continue;
                }
                match self.interpolation {
                    Interpolation::Nearest => {
                        let (rx, ry) = (round_even(sx) as isize, round_even(sy) as isize);
                        if (0..w as isize).contains(&rx) && (0..h as isize).contains(&ry) {
                            let i = ry as usize * w + rx as usize;
                            for ch in 0..c {
                                out[ch * plane_out + o] = image.data[ch * plane_in + i];
                            }
                        } else {
                            for ch in 0..c {
                                out[ch * plane_out + o] = fill(ch) as f32;
                            }
                        }
                    }
                    Interpolation::Bilinear => {
                        let (x0, y0) = (floor(sx), floor(sy));
                        let (fx, fy) = (sx - x0, sy - y0);
                        let (xi, yi) = (x0 as isize, y0 as isize);
                        let weights = [(1.0 - fx) * (1.0 - fy), fx * (1.0 - fy), (1.0 - fx) * fy, fx * fy];
                        if xi >= 0 && yi >= 0 && xi + 1 < w as isize && yi + 1 < h as isize {
                            // All four neighbours inside, the common case.
                            let i = yi as usize * w + xi as usize;
                            for ch in 0..c {
                                let s = &image.data[ch * plane_in..(ch + 1) * plane_in];
                                let v = weights[0] * f64::from(s[i])
                                    + weights[1] * f64::from(s[i + 1])
                                    + weights[2] * f64::from(s[i + w])
                                    + weights[3] * f64::from(s[i + w + 1]);
                                out[ch * plane_out + o] = v as f32;
                            }
                        } else {
                            let corners = [(xi, yi), (xi + 1, yi), (xi, yi + 1), (xi + 1, yi + 1)];
                            let mut taps = [(0usize, 0.0f64); 4];
                            let (mut n, mut inside, mut clipped) = (0, 0.0, false);
                            for ((cx, cy), wt) in corners.into_iter().zip(weights) {
                                if wt == 0.0 {
                                    continue;
                                }
                                if (0..w as isize).contains(&cx) && (0..h as isize).contains(&cy) {
                                    taps[n] = (cy as usize * w + cx as usize, wt);
                                    n += 1;
                                    inside += wt;
                                } else {
                                    clipped = true;
                                }
                            }
                            for ch in 0..c {
                                let s = &image.data[ch * plane_in..(ch + 1) * plane_in];
                                let v: f64 = taps[..n].iter().map(|&(i, wt)| wt * f64::from(s[i])).sum();
                                // torchvision samples a mask of ones alongside the image and
                                // blends `v * mask + (1 - mask) * fill`, where `v` already lacks
                                // the outside corners: edge pixels are dimmed twice. Kept for
                                // parity.
                                let v = if clipped { v * inside + (1.0 - inside) * fill(ch) } else { v };
                                out[ch * plane_out + o] = v as f32;
                            }
                        }
                    }
                }
            }
        }
        Image { channels: c, height: oh, width: ow, data: out }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_rounding_matches_the_library() {
        for x in [-2.5, -1.5, -0.5, -0.49, -0.0, 0.0, 0.5, 1.5, 2.5, 2.51, 3.0, -3.7, 1e6 + 0.5, 27.999999] {
            assert_eq!(round_even(x), x.round_ties_even(), "{x}");
            assert_eq!(floor(x), x.floor(), "{x}");
        }
    }
}
