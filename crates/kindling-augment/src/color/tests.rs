//! `color_jitter`'s formulas with fixed factors, and its random order.

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;

fn rgb(values: &[f32]) -> Image {
    Image::new(3, 1, values.len() / 3, values.to_vec()).unwrap()
}

fn close(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len());
    assert!(got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-6), "{got:?} vs {want:?}");
}

#[test]
fn brightness_scales_and_clamps() {
    let mut image = rgb(&[0.2, 0.6, 0.1, 0.3, 0.5, 0.0]);
    brightness(&mut image, 1.5);
    close(&image.data, &[0.3, 0.9, 0.15, 0.45, 0.75, 0.0]);
    brightness(&mut image, 2.0);
    close(&image.data, &[0.6, 1.0, 0.3, 0.9, 1.0, 0.0]);
}

#[test]
fn contrast_blends_with_the_mean_grey() {
    // Two pixels, (1, 0, 0) and (0, 0, 1): greys 0.2989 and 0.114, mean 0.20645.
    let mut image = rgb(&[1.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
    contrast(&mut image, 0.5);
    let m = 0.5 * 0.20645;
    close(&image.data, &[0.5 + m, m, m, m, m, 0.5 + m]);
    // One channel: the mean of the values, 0.5 here; factor 3 pushes 0.2 below 0.
    let mut grey = Image::new(1, 1, 2, vec![0.2, 0.8]).unwrap();
    contrast(&mut grey, 3.0);
    close(&grey.data, &[0.0, 1.0]);
    let mut grey = Image::new(1, 1, 2, vec![0.4, 0.6]).unwrap();
    contrast(&mut grey, 2.0);
    close(&grey.data, &[0.3, 0.7]);
}

#[test]
fn saturation_blends_with_each_pixels_grey() {
    // (0.5, 0.25, 0) has grey 0.2989 * 0.5 + 0.587 * 0.25 = 0.29620; factor 0 is that grey.
    let mut image = rgb(&[0.5, 0.25, 0.0]);
    saturation(&mut image, 0.0);
    close(&image.data, &[0.2962; 3]);
    let mut image = rgb(&[0.5, 0.25, 0.0]);
    saturation(&mut image, 2.0);
    close(&image.data, &[1.0 - 0.2962, 0.25 * 2.0 - 0.2962, 0.0]);
    let mut grey = Image::new(1, 1, 2, vec![0.2, 0.8]).unwrap();
    saturation(&mut grey, 0.0);
    assert_eq!(grey.data, vec![0.2, 0.8]);
}

#[test]
fn ranges_follow_torchvision() {
    let jitter = ColorJitter {
        brightness: Span::Spread(0.4),
        contrast: Span::Spread(2.0),
        saturation: Span::Range([0.5, 0.5]),
        hue: Span::Spread(0.0),
    };
    assert_eq!(jitter.factors(), [Some([0.6, 1.4]), Some([0.0, 3.0]), Some([0.5, 0.5]), None]);
    assert_eq!(ColorJitter::default().factors(), [None; 4]);
    assert_eq!(jitter.shape([3, 4, 4]), Ok([3, 4, 4]));
    assert!(jitter.shape([2, 4, 4]).is_err());
    let bright = ColorJitter { brightness: Span::Spread(0.4), ..ColorJitter::default() };
    assert_eq!(bright.shape([2, 4, 4]), Ok([2, 4, 4]));
}

#[test]
fn the_order_is_random() {
    // Brightness 2 then saturation 0 differs from saturation 0 then brightness 2 once the
    // clamp bites: (0.9, 0.1, 0.1) -> (1, 0.2, 0.2) -> its grey 0.4391 everywhere, against
    // the grey 0.33911 doubled to 0.67822.
    let jitter = ColorJitter {
        brightness: Span::Range([2.0, 2.0]),
        saturation: Span::Range([0.0, 0.0]),
        ..ColorJitter::default()
    };
    let mut outcomes = std::collections::BTreeSet::new();
    for seed in 0..40 {
        let out = jitter.apply(rgb(&[0.9, 0.1, 0.1]), &mut StdRng::seed_from_u64(seed));
        outcomes.insert((out.data[0] * 1e4).round() as i32);
    }
    assert_eq!(outcomes.into_iter().collect::<Vec<_>>(), vec![4391, 6782]);
}
