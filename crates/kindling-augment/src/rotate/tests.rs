//! Rotations checked against exact pixel permutations and hand-computed samples.

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;

/// A `c x h x w` image whose values are all distinct.
fn ramp(c: usize, h: usize, w: usize) -> Image {
    Image::new(c, h, w, (0..c * h * w).map(|v| v as f32 + 1.0).collect()).unwrap()
}

/// The image whose pixel `(c, y, x)` is `f(c, y, x)`.
fn build(c: usize, h: usize, w: usize, f: impl Fn(usize, usize, usize) -> f32) -> Image {
    let mut data = Vec::new();
    for ch in 0..c {
        for y in 0..h {
            for x in 0..w {
                data.push(f(ch, y, x));
            }
        }
    }
    Image::new(c, h, w, data).unwrap()
}

fn rotate(image: &Image, angle: f64, interpolation: Interpolation, expand: bool) -> Image {
    let rotate = Rotate { interpolation, expand, fill: Fill::Value(-1.0), ..Rotate::new(angle) };
    assert_eq!(rotate.shape(image.shape()).unwrap(), rotate.apply(image.clone()).shape());
    rotate.apply(image.clone())
}

const BOTH: [Interpolation; 2] = [Interpolation::Nearest, Interpolation::Bilinear];

#[test]
fn quarter_turns_of_squares_are_transpose_and_flip() {
    for n in [1, 2, 3, 4, 5] {
        let im = ramp(2, n, n);
        // Anticlockwise: transpose, then turn upside down (numpy's rot90).
        let left = build(2, n, n, |c, y, x| im.get(c, x, n - 1 - y));
        let right = build(2, n, n, |c, y, x| im.get(c, n - 1 - x, y));
        let half = build(2, n, n, |c, y, x| im.get(c, n - 1 - y, n - 1 - x));
        for interpolation in BOTH {
            assert_eq!(rotate(&im, 90.0, interpolation, false), left, "{n} {interpolation:?}");
            assert_eq!(rotate(&im, -90.0, interpolation, false), right);
            assert_eq!(rotate(&im, 270.0, interpolation, false), right);
            assert_eq!(rotate(&im, 180.0, interpolation, false), half);
            assert_eq!(rotate(&im, 0.0, interpolation, false), im);
            assert_eq!(rotate(&im, 360.0, interpolation, true), im);
        }
    }
}

#[test]
fn quarter_turns_of_rectangles_with_expand_swap_the_sides() {
    let (h, w) = (2, 4);
    let im = ramp(3, h, w);
    let left = build(3, w, h, |c, y, x| im.get(c, x, w - 1 - y));
    let right = build(3, w, h, |c, y, x| im.get(c, h - 1 - x, y));
    for interpolation in BOTH {
        assert_eq!(rotate(&im, 90.0, interpolation, true), left);
        assert_eq!(rotate(&im, -90.0, interpolation, true), right);
    }
}

#[test]
fn quarter_turns_of_rectangles_without_expand_keep_the_frame() {
    // 2 rows by 4 columns, turned about the centre (1.5, 0.5) in pixel indices: output pixel
    // (y, x) reads input row x - 1, column 2 - y, and the fill where that is outside.
    let im = ramp(1, 2, 4);
    let want = build(1, 2, 4, |_, y, x| if (1..3).contains(&x) { im.get(0, x - 1, 2 - y) } else { -1.0 });
    for interpolation in BOTH {
        assert_eq!(rotate(&im, 90.0, interpolation, false), want);
    }
}

#[test]
fn a_45_degree_turn_fills_the_corners() {
    let ones = Image::filled(3, 5, 5, 1.0);
    let rotate = Rotate { fill: Fill::PerChannel(vec![0.25, 0.5, 0.75]), ..Rotate::new(45.0) };
    let out = rotate.apply(ones.clone());
    for (c, fill) in [0.25, 0.5, 0.75].into_iter().enumerate() {
        for (y, x) in [(0, 0), (0, 4), (4, 0), (4, 4)] {
            assert_eq!(out.get(c, y, x), fill);
        }
        assert_eq!(out.get(c, 2, 2), 1.0);
        assert_eq!(out.get(c, 0, 2), 1.0);
    }
    // With expand, a 3x3 square turned by 45 degrees spans 2.12 each way from its centre
    // 1.5: from -0.62 to 3.62, so 5 pixels.
    let expand = Rotate { expand: true, ..Rotate::new(45.0) };
    assert_eq!(expand.shape([1, 3, 3]), Ok([1, 5, 5]));
    assert_eq!(expand.shape([1, 3, 3]).unwrap(), expand.apply(Image::zeros(1, 3, 3)).shape());
    assert!(rotate.shape([2, 5, 5]).unwrap_err().contains("3 values for 2 channels"));
}

#[test]
fn bilinear_edges_blend_with_the_fill_as_torchvision() {
    // A 1x2 row [1, 3] turned 90 degrees in place: both outputs sample at column 0.5, rows
    // -0.5 and 0.5, so half the bilinear weight falls outside. torchvision blends the
    // zero-padded sample 0.25 * (1 + 3) = 1 with the fill 0.2 by the inside weight 0.5:
    // 1 * 0.5 + 0.5 * 0.2 = 0.6.
    let im = Image::new(1, 1, 2, vec![1.0, 3.0]).unwrap();
    let bilinear = Rotate { interpolation: Interpolation::Bilinear, fill: Fill::Value(0.2), ..Rotate::new(90.0) };
    let out = bilinear.apply(im.clone());
    assert!(out.data.iter().all(|v| (v - 0.6).abs() < 1e-6), "{:?}", out.data);
    // Nearest rounds 0.5 and -0.5 to the even 0: both read the first pixel.
    let nearest = Rotate { fill: Fill::Value(0.2), ..Rotate::new(90.0) };
    assert_eq!(nearest.apply(im).data, vec![1.0, 1.0]);
}

#[test]
fn a_pivot_stays_put() {
    // About the centre of pixel (0, 0), which is the point [0.5, 0.5]: output (y, x) reads
    // input (x, -y), so only the top row has a source, and it holds the first column.
    let im = ramp(1, 3, 3);
    let rotate = Rotate { center: Some([0.5, 0.5]), fill: Fill::Value(0.0), ..Rotate::new(90.0) };
    let out = rotate.apply(im.clone());
    let want = build(1, 3, 3, |_, y, x| if y == 0 { im.get(0, x, 0) } else { 0.0 });
    assert_eq!(out, want);
}

#[test]
fn random_rotation_draws_within_degrees() {
    let im = ramp(1, 5, 5);
    let random = RandomRotation::new(Span::Spread(30.0));
    let mut angles = Vec::new();
    for seed in 0..20 {
        // Two generators from one seed: one to predict the angle, one for the transform.
        let angle = uniform(&mut StdRng::seed_from_u64(seed), [-30.0, 30.0]);
        let mut rng = StdRng::seed_from_u64(seed);
        assert!((-30.0..30.0).contains(&angle));
        assert_eq!(random.apply(im.clone(), &mut rng), Rotate::new(angle).apply(im.clone()));
        angles.push(angle);
    }
    assert!(angles.iter().any(|&a| a < -15.0) && angles.iter().any(|&a| a > 15.0), "{angles:?}");
    // A range of [90, 90] is a quarter turn.
    let quarter = RandomRotation::new(Span::Range([90.0, 90.0]));
    let out = quarter.apply(im.clone(), &mut StdRng::seed_from_u64(0));
    assert_eq!(out, rotate(&im, 90.0, Interpolation::Nearest, false));
    let expand = RandomRotation { expand: true, ..random };
    assert!(expand.shape([1, 5, 5]).unwrap_err().contains("expand"));
    let fixed = RandomRotation { expand: true, ..quarter };
    assert_eq!(fixed.shape([1, 2, 4]), Ok([1, 4, 2]));
}
