//! The fast ReLU and tanh against burn's: the same outputs within 1e-6 relative and input
//! gradients within 1e-4 relative to the largest (tanh's gradient `1 - y²` turns a last-place
//! difference in `y` near ±1 into a large relative difference of a tiny gradient), on image and flat tensors, with and without autodiff; and the caller's tensor is
//! left alone when its buffer is shared (the kernels write in place only into buffers of their
//! own).

use burn::tensor::{Device, Tensor, TensorData};

/// Deterministic values in [-4, 4) from a small linear congruential stream.
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 8.0 - 4.0
        })
        .collect()
}

fn tensor<const D: usize>(shape: [usize; D], seed: u64, device: &Device) -> Tensor<D> {
    let n = shape.iter().product();
    Tensor::from_data(TensorData::new(values(n, seed), shape), device)
}

fn assert_close<const D: usize>(what: &str, got: Tensor<D>, want: Tensor<D>, tolerance: f32) {
    let (g, w): (Vec<f32>, Vec<f32>) = (got.into_data().iter().collect(), want.into_data().iter().collect());
    assert_eq!(g.len(), w.len(), "{what}: sizes");
    // Relative to the value, or to the largest value for those near 0 (as the convolution
    // tests measure).
    let scale = w.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        assert!((a - b).abs() <= tolerance * b.abs().max(scale), "{what}[{i}]: {a} vs {b} (scale {scale})");
    }
}

type Activation<const D: usize> = fn(Tensor<D>) -> Tensor<D>;

/// Output and input gradient of `f` (then times a fixed random tensor, summed).
fn run<const D: usize>(f: Activation<D>, shape: [usize; D]) -> (Tensor<D>, Tensor<D>) {
    let device = Device::flex().autodiff();
    // Through a product first, so the activation's input is an intermediate whose buffer the
    // graph does not keep, as after a convolution.
    let x = tensor(shape, 1, &device).require_grad();
    let y = f(x.clone() * 1.5);
    let r = tensor(shape, 2, &device);
    let grads = (y.clone() * r).sum().backward();
    (y.inner(), x.grad(&grads).expect("dx"))
}

fn check<const D: usize>(name: &str, fast: Activation<D>, reference: Activation<D>, shape: [usize; D]) {
    let (y, dx) = run(fast, shape);
    let (y_ref, dx_ref) = run(reference, shape);
    assert_close(&format!("{name} y {shape:?}"), y, y_ref, 1e-6);
    assert_close(&format!("{name} dx {shape:?}"), dx, dx_ref, 1e-4);
    // Without autodiff.
    let plain = tensor(shape, 3, &Device::flex());
    assert_close(&format!("{name} plain {shape:?}"), fast(plain.clone()), reference(plain), 1e-6);
}

#[test]
fn relu_and_tanh_match_burn() {
    check("relu", kindling_cpu::relu::<4>, burn::tensor::activation::relu::<4>, [3, 5, 28, 28]);
    check("relu", kindling_cpu::relu::<2>, burn::tensor::activation::relu::<2>, [7, 100]);
    check("tanh", kindling_cpu::tanh::<4>, burn::tensor::activation::tanh::<4>, [3, 6, 28, 28]);
    check("tanh", kindling_cpu::tanh::<2>, burn::tensor::activation::tanh::<2>, [7, 84]);
}

#[test]
fn a_shared_input_is_not_written() {
    for device in [Device::flex(), Device::flex().autodiff()] {
        let x = tensor([2, 3, 4, 4], 4, &device);
        let before: Vec<f32> = x.clone().into_data().iter().collect();
        let _relu = kindling_cpu::relu(x.clone());
        let _tanh = kindling_cpu::tanh(x.clone());
        let after: Vec<f32> = x.into_data().iter().collect();
        assert_eq!(before, after, "the input changed on {device:?}");
    }
}

#[test]
fn nan_stays_nan() {
    let x = Tensor::<2>::from_data(TensorData::new(vec![f32::NAN, -1.0, 2.0, 0.0], [1, 4]), &Device::flex());
    let relu: Vec<f32> = kindling_cpu::relu(x.clone()).into_data().iter().collect();
    let tanh: Vec<f32> = kindling_cpu::tanh(x).into_data().iter().collect();
    assert!(relu[0].is_nan() && tanh[0].is_nan());
    assert_eq!(&relu[1..], &[0.0, 2.0, 0.0]);
    assert!((tanh[2] - 2f32.tanh()).abs() <= 2.0 * f32::EPSILON);
}
