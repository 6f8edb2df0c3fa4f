//! Hue shifts: each pixel goes to HSV (the hexcone model of Python's `colorsys`, which
//! torchvision's tensor code follows), turns around the hue circle, and comes back.

use crate::Image;

/// Turns the hue of every pixel of a three-channel image by `shift` (a fraction of the full
/// circle, in [-0.5, 0.5]); other images stay as they are, as in torchvision.
pub(crate) fn shift_hue(image: &mut Image, shift: f32) {
    if image.channels != 3 {
        return;
    }
    let plane = image.height * image.width;
    let (r, rest) = image.data.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
        let (h, s, v) = to_hsv(*r, *g, *b);
        (*r, *g, *b) = from_hsv((h + shift).rem_euclid(1.0), s, v);
    }
}

/// Hue in [0, 1), saturation and value. A grey pixel has hue 0 and saturation 0.
fn to_hsv(r: f32, g: f32, b: f32) -> (f32, f32, f32) {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let chroma = max - min;
    if chroma == 0.0 {
        return (0.0, 0.0, max);
    }
    let s = chroma / max;
    // The sixth of the circle comes from which channel is largest (red first on ties).
    let sixths = if max == r {
        (g - b) / chroma
    } else if max == g {
        2.0 + (b - r) / chroma
    } else {
        4.0 + (r - g) / chroma
    };
    ((sixths / 6.0 + 1.0) % 1.0, s, max)
}

/// The inverse of [`to_hsv`], with the intermediate levels clamped to [0, 1] as torchvision
/// clamps them.
fn from_hsv(h: f32, s: f32, v: f32) -> (f32, f32, f32) {
    let sector = (h * 6.0).floor();
    let f = h * 6.0 - sector;
    let p = (v * (1.0 - s)).clamp(0.0, 1.0);
    let q = (v * (1.0 - s * f)).clamp(0.0, 1.0);
    let t = (v * (1.0 - s * (1.0 - f))).clamp(0.0, 1.0);
    match (sector as i32).rem_euclid(6) {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pixel(rgb: [f32; 3], shift: f32) -> [f32; 3] {
        let mut image = Image::new(3, 1, 1, rgb.to_vec()).unwrap();
        shift_hue(&mut image, shift);
        [image.data[0], image.data[1], image.data[2]]
    }

    fn close(got: [f32; 3], want: [f32; 3]) {
        assert!(got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-6), "{got:?} vs {want:?}");
    }

    #[test]
    fn a_third_of_a_turn_cycles_the_primaries() {
        close(pixel([1.0, 0.0, 0.0], 1.0 / 3.0), [0.0, 1.0, 0.0]);
        close(pixel([0.0, 1.0, 0.0], 1.0 / 3.0), [0.0, 0.0, 1.0]);
        close(pixel([1.0, 0.0, 0.0], -1.0 / 3.0), [0.0, 0.0, 1.0]);
        // Half a turn of orange (hue 1/12) is azure (hue 7/12), with saturation and value kept.
        close(pixel([0.8, 0.5, 0.2], 0.5), [0.2, 0.5, 0.8]);
    }

    #[test]
    fn greys_and_zero_shifts_stay() {
        close(pixel([0.3, 0.3, 0.3], 0.25), [0.3, 0.3, 0.3]);
        close(pixel([0.9, 0.2, 0.4], 0.0), [0.9, 0.2, 0.4]);
        let mut grey = Image::filled(1, 2, 2, 0.7);
        shift_hue(&mut grey, 0.3);
        assert_eq!(grey.data, vec![0.7; 4]);
    }

    #[test]
    fn hsv_round_trips() {
        for rgb in [[0.1, 0.5, 0.9], [0.9, 0.9, 0.1], [0.6, 0.2, 0.6], [1.0, 0.0, 0.5]] {
            let (h, s, v) = to_hsv(rgb[0], rgb[1], rgb[2]);
            let (r, g, b) = from_hsv(h, s, v);
            close([r, g, b], rgb);
        }
    }
}
