//! What the kernel tests share: seeded inputs, a tolerance check, and the output and input
//! gradient of an operation.

use burn::tensor::{Device, Tensor, TensorData};

/// Deterministic values in [-1, 1) from a small linear congruential stream.
pub fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// A tensor of [`values`] in [-1, 1).
pub fn tensor<const D: usize>(shape: [usize; D], seed: u64, device: &Device) -> Tensor<D> {
    scaled(shape, seed, 1.0, 0.0, device)
}

/// A tensor of [`values`] times `scale` plus `offset`.
pub fn scaled<const D: usize>(shape: [usize; D], seed: u64, scale: f32, offset: f32, device: &Device) -> Tensor<D> {
    let v: Vec<f32> = values(shape.iter().product(), seed).into_iter().map(|v| v * scale + offset).collect();
    Tensor::from_data(TensorData::new(v, shape), device)
}

/// `got` equals `want` within 1e-4 relative.
pub fn assert_close<const D: usize>(what: &str, got: Tensor<D>, want: Tensor<D>) {
    assert_within(what, got, want, 1e-4);
}

/// `got` equals `want` within `tolerance` relative to each value, or to the largest value for
/// those near 0.
pub fn assert_within<const D: usize>(what: &str, got: Tensor<D>, want: Tensor<D>, tolerance: f32) {
    assert_eq!(got.dims(), want.dims(), "{what}: shapes");
    let (g, w): (Vec<f32>, Vec<f32>) = (got.into_data().iter().collect(), want.into_data().iter().collect());
    let scale = w.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        assert!((a - b).abs() <= tolerance * b.abs().max(scale), "{what}[{i}]: {a} vs {b} (scale {scale})");
    }
}

/// `f(x)` and the gradient of `sum(f(x) * r)` with respect to `x` (a tracked leaf), for a fixed
/// random `r` drawn from `seed`.
pub fn output_and_grad<const D: usize>(
    x: Tensor<D>,
    f: impl Fn(Tensor<D>) -> Tensor<D>,
    seed: u64,
) -> (Tensor<D>, Tensor<D>) {
    let x = x.require_grad();
    let y = f(x.clone());
    let r = tensor(y.dims(), seed, &y.device());
    let grads = (y.clone() * r).sum().backward();
    (y.inner(), x.grad(&grads).expect("dx"))
}
