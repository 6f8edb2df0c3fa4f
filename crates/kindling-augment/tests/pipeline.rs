//! Whole pipelines: seeding, splits, shapes and validation.

use kindling_augment::*;
use kindling_core::Issues;

fn parse(yaml: &str) -> Pipeline {
    serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}\n-> {e}"))
}

/// The benchmark's pipeline: MNIST-sized colour images, the usual light augmentation.
const MNIST: &str = "
- resize: 34
- center_crop: 28
- random_horizontal_flip
- random_rotation: 15
- normalize: {mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}
";

/// A 28x28 colour image with some structure, so that flips and rotations show.
fn sample(k: usize) -> Image {
    let pixels: Vec<u8> = (0..28 * 28 * 3).map(|i| ((i * 7 + k * 13) % 256) as u8).collect();
    to_tensor(&pixels, 28, 28, 3)
}

fn run(p: &Pipeline, seed: u64, epoch: usize, index: usize, train: bool) -> Image {
    p.apply(sample(index), train, &mut rng_for(seed, epoch, index))
}

#[test]
fn same_seed_epoch_and_index_give_the_same_image() {
    let p = parse(MNIST);
    for index in 0..10 {
        assert_eq!(run(&p, 1, 3, index, true), run(&p, 1, 3, index, true));
    }
    // Order does not matter: sample 5 is the same whether drawn first or after others.
    let alone = run(&p, 1, 3, 5, true);
    let after: Vec<Image> = (0..8).rev().map(|i| run(&p, 1, 3, i, true)).collect();
    assert_eq!(after[2], alone);
}

#[test]
fn epochs_seeds_and_indices_change_the_augmentation() {
    let p = parse(MNIST);
    let base = run(&p, 1, 0, 4, true);
    let differing = (1..6).filter(|&epoch| run(&p, 1, epoch, 4, true) != base).count();
    assert!(differing >= 4, "only {differing} of 5 epochs differ");
    assert_ne!(run(&p, 2, 0, 4, true), base);
    // Different indices differ in their draws, not only in their pixels.
    let mut a = rng_for(1, 0, 4);
    let mut b = rng_for(1, 0, 5);
    assert_ne!(rand::RngExt::random::<u64>(&mut a), rand::RngExt::random::<u64>(&mut b));
}

#[test]
fn evaluation_runs_only_the_steps_marked_all() {
    let p = parse(MNIST);
    let eval = run(&p, 1, 0, 0, false);
    // Only `normalize` runs: (x - 0.5) / 0.25 of the original, no resize, crop, flip or turn.
    let want: Vec<f32> = sample(0).data.iter().map(|x| (x - 0.5) / 0.25).collect();
    assert_eq!(eval.data, want);
    assert_eq!(p.output_shape([3, 28, 28], false), Ok([3, 28, 28]));
    assert!(!p.is_identity(false));
    assert!(parse("- random_horizontal_flip").is_identity(false));
    assert!(Pipeline::default().is_identity(true));

    // A random step marked `all` runs outside training too, with the sample's generator.
    let flip = parse("- {random_horizontal_flip: 1.0, apply: all}");
    let mut flipped = sample(0);
    for row in flipped.data.chunks_exact_mut(28) {
        row.reverse();
    }
    assert_eq!(run(&flip, 1, 0, 0, false), flipped);
}

#[test]
fn output_shapes_follow_the_split() {
    let p = parse(
        "
- {resize: 32, apply: all}
- random_crop: {size: 28, padding: 2}
- random_rotation: {degrees: [90, 90], expand: true}
",
    );
    assert_eq!(p.output_shape([3, 64, 48], true), Ok([3, 28, 28]));
    assert_eq!(p.output_shape([3, 64, 48], false), Ok([3, 42, 32]));
    let wide = parse("- {rotate: {angle: 90, expand: true}, apply: all}");
    assert_eq!(wide.output_shape([1, 10, 30], false), Ok([1, 30, 10]));
    let out = wide.apply(Image::zeros(1, 10, 30), false, &mut rng_for(0, 0, 0));
    assert_eq!(out.shape(), [1, 30, 10]);
}

#[test]
fn output_shape_names_the_step_that_cannot_take_the_image() {
    let p = parse(MNIST);
    let err = p.output_shape([1, 28, 28], true).unwrap_err();
    assert!(err.starts_with("step [4] `normalize` cannot take a 1x28x28 (CxHxW) image"), "{err}");
    assert!(err.contains("3 means and 3 stds for an image with 1 channel;"), "{err}");
    let crop = parse("- random_crop: 32");
    let err = crop.output_shape([3, 28, 28], true).unwrap_err();
    assert!(err.contains("pad_if_needed"), "{err}");
    // Evaluation skips the crop, so any size is fine there.
    assert_eq!(crop.output_shape([3, 28, 28], false), Ok([3, 28, 28]));
    let zero = parse("- {center_crop: 0, apply: all}");
    assert!(zero.output_shape([3, 28, 28], false).unwrap_err().contains("empty"));
    assert!(parse(MNIST).output_shape([3, 0, 28], true).unwrap_err().contains("empty"));

    let err = p.try_apply(sample(0), true, &mut rng_for(0, 0, 0));
    assert!(err.is_ok());
    let grey = Image::zeros(1, 28, 28);
    let err = p.try_apply(grey, true, &mut rng_for(0, 0, 0)).unwrap_err();
    assert!(matches!(err, AugmentError::Shape { index: 4, name: "normalize", .. }), "{err}");
}

#[test]
fn check_reports_every_bad_setting_with_its_path() {
    let p = parse(
        "
- resize: {size: 34, max_size: 30}
- random_horizontal_flip: 1.5
- random_rotation: [30, -30]
- random_resized_crop: {size: 8, scale: [0.9, 0.1], ratio: [0, 1]}
- color_jitter: {brightness: -1, hue: 0.7}
- normalize: {mean: [0.5, 0.5], std: [0.2, 0]}
  apply: train
",
    );
    let mut issues = Issues::under("augment");
    p.check(&mut issues);
    let got: Vec<String> = issues.into_vec().into_iter().map(|i| i.path).collect();
    assert_eq!(
        got,
        vec![
            "augment[0].resize.max_size",
            "augment[1].random_horizontal_flip.p",
            "augment[2].random_rotation.degrees",
            "augment[3].random_resized_crop.scale",
            "augment[3].random_resized_crop.ratio",
            "augment[4].color_jitter.brightness",
            "augment[4].color_jitter.hue",
            "augment[5].normalize.std",
            "augment[5].apply",
        ]
    );
    let mut issues = Issues::default();
    parse(include_str!("test_data/every_form.yaml").trim_end().trim_end_matches("apply: train")).check(&mut issues);
    assert!(issues.is_empty(), "{:?}", issues.into_vec());
}
