//! The seed's experiment: the shallow network learns by hand-written backpropagation and plain
//! SGD, and its loss falls over 100 epochs.

use kindling_kernels::{ShallowNet, Tensor4};

/// A 6 x 6 image with a bright bar in column 2 (vertical) or row 2 (horizontal) on a dim,
/// slightly textured background.
fn bar(vertical: bool, shift: usize) -> Tensor4 {
    Tensor4::from_fn([1, 1, 6, 6], |[_, _, y, x]| {
        let on = if vertical { x == 2 + shift } else { y == 2 + shift };
        if on { 1.0 } else { 0.05 * ((x + 2 * y) % 3) as f32 }
    })
}

#[test]
fn loss_falls_over_100_epochs_of_sgd() {
    let samples: Vec<(Tensor4, f32)> =
        (0..2).flat_map(|shift| [(bar(true, shift), 1.0), (bar(false, shift), 0.0)]).collect();
    let mut net = ShallowNet::new(7);
    let before: Vec<f32> = samples.iter().map(|(x, _)| net.forward(x).output[0]).collect();
    let losses = net.fit(&samples, 100, 1.0);

    assert_eq!(losses.len(), 100);
    let (first, middle, last) = (losses[0], losses[49], losses[99]);
    assert!(middle < first && last < middle, "the loss should keep falling: epoch 1 {first}, 50 {middle}, 100 {last}");
    assert!(last < 0.1 * first, "100 epochs should cut the loss tenfold: {first} -> {last}");
    // The network now separates the two kinds of bar, which it did not at the start.
    for ((x, target), start) in samples.iter().zip(before) {
        let y = net.forward(x).output[0];
        assert!((y - target).abs() < 0.3, "target {target}: output {start} before training, {y} after");
    }
}

#[test]
fn one_sgd_step_on_one_image_lowers_its_loss() {
    let x = bar(true, 0);
    let mut net = ShallowNet::new(11);
    let (before, grads) = net.loss_and_grads(&x, &[1.0]);
    net.sgd_step(&grads, 0.5);
    let (after, _) = net.loss_and_grads(&x, &[1.0]);
    assert!(after < before, "{before} -> {after}");
}
