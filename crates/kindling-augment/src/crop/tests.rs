//! Hand-computed windows for `center_crop` and `random_crop`.

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;

/// A one-row image holding `0, 1, ..., n - 1`.
fn row(n: usize) -> Image {
    Image::new(1, 1, n, (0..n).map(|x| x as f32).collect()).unwrap()
}

fn center(n: usize, t: usize) -> Vec<f32> {
    CenterCrop { size: Size::Exact([1, t]) }.apply(row(n)).data
}

#[test]
fn center_crop_rounds_half_to_even() {
    // Even differences split evenly: (4 - 2) / 2 = 1.
    assert_eq!(center(4, 2), vec![1.0, 2.0]);
    // Odd differences: round(0.5) = 0, round(1.5) = 2, round(2.5) = 2, round(3.5) = 4.
    assert_eq!(center(3, 2), vec![0.0, 1.0]);
    assert_eq!(center(5, 2), vec![2.0, 3.0]);
    assert_eq!(center(7, 2), vec![2.0, 3.0]);
    assert_eq!(center(9, 2), vec![4.0, 5.0]);
    assert_eq!(center(6, 3), vec![2.0, 3.0, 4.0]);
}

#[test]
fn center_crop_pads_small_images_with_zero() {
    // 3 missing columns: (3) // 2 = 1 before, the other 2 after.
    let image = Image::new(1, 1, 2, vec![5.0, 6.0]).unwrap();
    let out = CenterCrop { size: Size::Exact([1, 5]) }.apply(image);
    assert_eq!(out.data, vec![0.0, 5.0, 6.0, 0.0, 0.0]);
    // Padded rows, cropped columns, in one image of two channels.
    let image = Image::new(2, 1, 3, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    let out = CenterCrop { size: Size::Edge(2) }.apply(image);
    // Rows: 1 missing, 0 before and 1 after. Columns: round(0.5) = 0.
    assert_eq!(out.data, vec![1.0, 2.0, 0.0, 0.0, 4.0, 5.0, 0.0, 0.0]);
}

fn padded(mode: PadMode) -> Vec<f32> {
    let crop = RandomCrop {
        padding: Some(Padding { left: 2, top: 0, right: 2, bottom: 0 }),
        fill: 9.0,
        padding_mode: mode,
        ..RandomCrop::new(Size::Exact([1, 7]))
    };
    assert_eq!(crop.shape([1, 1, 3]), Ok([1, 1, 7]));
    let image = Image::new(1, 1, 3, vec![1.0, 2.0, 3.0]).unwrap();
    crop.apply(image, &mut StdRng::seed_from_u64(0)).data
}

#[test]
fn random_crop_padding_modes() {
    // The padded row is exactly the window, so no position is drawn.
    assert_eq!(padded(PadMode::Constant), vec![9.0, 9.0, 1.0, 2.0, 3.0, 9.0, 9.0]);
    assert_eq!(padded(PadMode::Edge), vec![1.0, 1.0, 1.0, 2.0, 3.0, 3.0, 3.0]);
    assert_eq!(padded(PadMode::Reflect), vec![3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 1.0]);
    assert_eq!(padded(PadMode::Symmetric), vec![2.0, 1.0, 1.0, 2.0, 3.0, 3.0, 2.0]);
}

#[test]
fn random_crop_positions_are_uniform_over_every_fit() {
    let crop = RandomCrop::new(Size::Exact([1, 2]));
    let mut rng = StdRng::seed_from_u64(3);
    let mut seen = [0; 4];
    for _ in 0..400 {
        let out = crop.apply(row(5), &mut rng).data;
        assert_eq!(out[1], out[0] + 1.0, "not a window: {out:?}");
        seen[out[0] as usize] += 1;
    }
    assert!(seen.iter().all(|&n| n > 60), "positions 0..=3 should each come up about 100 times: {seen:?}");
}

#[test]
fn pad_if_needed_pads_the_shortfall_on_both_sides() {
    // Width 2 for a window of 4: 2 columns of fill on each side, so the padded row is
    // `0 0 5 6 0 0` and the window starts at 0, 1 or 2.
    let crop = RandomCrop { pad_if_needed: true, ..RandomCrop::new(Size::Exact([1, 4])) };
    assert_eq!(crop.shape([1, 1, 2]), Ok([1, 1, 4]));
    let padded = [0.0, 0.0, 5.0, 6.0, 0.0, 0.0];
    let mut starts = std::collections::BTreeSet::new();
    let mut rng = StdRng::seed_from_u64(1);
    for _ in 0..60 {
        let image = Image::new(1, 1, 2, vec![5.0, 6.0]).unwrap();
        let out = crop.apply(image, &mut rng).data;
        let start = (0..3).find(|&j| padded[j..j + 4] == out[..]).expect("a window of the padded row");
        starts.insert(start);
    }
    assert_eq!(starts.into_iter().collect::<Vec<_>>(), vec![0, 1, 2]);
}

#[test]
fn random_crop_refuses_what_torchvision_refuses() {
    let crop = RandomCrop::new(Size::Edge(4));
    assert!(crop.shape([1, 3, 5]).unwrap_err().contains("pad_if_needed"));
    let reflect = RandomCrop {
        padding: Some(Padding { left: 3, top: 0, right: 3, bottom: 0 }),
        padding_mode: PadMode::Reflect,
        ..RandomCrop::new(Size::Edge(2))
    };
    assert!(reflect.shape([1, 3, 3]).unwrap_err().contains("reflect padding of 3"));
    assert_eq!(reflect.shape([1, 3, 4]), Ok([1, 2, 2]));
    let symmetric = RandomCrop { padding_mode: PadMode::Symmetric, ..reflect };
    assert_eq!(symmetric.shape([1, 3, 3]), Ok([1, 2, 2]));
}
