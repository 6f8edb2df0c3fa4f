//! The fast ReLU and tanh against burn's: the same outputs within 1e-6 relative and input
//! gradients within 1e-4 relative to the largest (tanh's gradient `1 - y²` turns a last-place
//! difference in `y` near ±1 into a large relative difference of a tiny gradient), on image and
//! flat tensors, with and without autodiff; and the caller's tensor is left alone when its
//! buffer is shared (the kernels write in place only into buffers of their own).

use burn::tensor::{Device, Tensor, TensorData};

use crate::common::{assert_within, output_and_grad, scaled};

type Activation<const D: usize> = fn(Tensor<D>) -> Tensor<D>;

/// Output and input gradient of `f` on values in [-4, 4).
fn run<const D: usize>(f: Activation<D>, shape: [usize; D]) -> (Tensor<D>, Tensor<D>) {
    // Through a product first, so the activation's input is an intermediate whose buffer the
    // graph does not keep, as after a convolution.
    output_and_grad(scaled(shape, 1, 4.0, 0.0, &Device::flex().autodiff()), |x| f(x * 1.5), 2)
}

fn check<const D: usize>(name: &str, fast: Activation<D>, reference: Activation<D>, shape: [usize; D]) {
    let (y, dx) = run(fast, shape);
    let (y_ref, dx_ref) = run(reference, shape);
    assert_within(&format!("{name} y {shape:?}"), y, y_ref, 1e-6);
    assert_within(&format!("{name} dx {shape:?}"), dx, dx_ref, 1e-4);
    // Without autodiff.
    let plain = scaled(shape, 3, 4.0, 0.0, &Device::flex());
    assert_within(&format!("{name} plain {shape:?}"), fast(plain.clone()), reference(plain), 1e-6);
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
        let x = scaled([2, 3, 4, 4], 4, 4.0, 0.0, &device);
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
