//! Every kernel against burn on the same inputs (flex device): forward values against burn's
//! operations, gradients against burn's autodiff.
//!
//! Each gradient is taken of `L = Σ out · r` for a fixed random `r`, so `dL/d(out) = r` is the
//! output gradient handed to our backward functions, and burn differentiates the same `L`.
//!
//! Tolerance: `|ours - burn| <= 1e-5 · (|burn| + max |burn|)` per element, that is 1e-5
//! relative to the element plus 1e-5 relative to the largest element of the tensor. The second
//! term is there because an element near zero is the result of cancellation in a sum of
//! larger terms, and the two sides add those terms in different orders (the direct loop tap by
//! tap, GEMM in SIMD blocks); its rounding error scales with the terms, not with the result.

use burn::tensor::activation;
use burn::tensor::module::{avg_pool2d, conv2d, linear, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions};
use burn::tensor::{Device, Tensor, TensorData};
use kindling_kernels::{
    Activation, Conv2dParams, Matrix, Pool2dParams, ShallowNet, Tensor4, avg_pool2d_backward, conv2d_backward_direct,
    conv2d_backward_im2col, conv2d_direct, conv2d_im2col, conv2d_im2col_with_threads, dense_backward, dense_forward,
    max_pool2d_backward, uniform,
};

const REL: f32 = 1e-5;

fn device() -> Device {
    Device::flex().autodiff()
}

fn burn_tensor<const D: usize>(data: &[f32], shape: [usize; D]) -> Tensor<D> {
    Tensor::from_data(TensorData::new(data.to_vec(), shape), &device())
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().expect("f32 tensor")
}

/// The one comparison every test uses; names the worst element when it fails.
fn check(what: &str, ours: &[f32], reference: &[f32]) {
    assert_eq!(ours.len(), reference.len(), "{what}: lengths differ");
    let scale = reference.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let mut worst = (0.0f32, 0);
    for (i, (a, b)) in ours.iter().zip(reference).enumerate() {
        let excess = (a - b).abs() / (REL * (b.abs() + scale)).max(f32::MIN_POSITIVE);
        if excess > worst.0 {
            worst = (excess, i);
        }
    }
    let (excess, i) = worst;
    assert!(
        excess <= 1.0,
        "{what}: element {i} is {} here, {} in burn ({excess:.1}x the tolerance)",
        ours[i],
        reference[i]
    );
}

struct ConvCase {
    input: [usize; 4],
    weight: [usize; 4],
    params: Conv2dParams,
}

fn conv_cases() -> Vec<ConvCase> {
    let p = |stride: [usize; 2], padding: [usize; 2], dilation: [usize; 2]| Conv2dParams { stride, padding, dilation };
    vec![
        // The seed's shapes and the shallow network's convolution.
        ConvCase { input: [1, 1, 3, 3], weight: [16, 1, 3, 3], params: p([1, 1], [0, 0], [1, 1]) },
        ConvCase { input: [1, 3, 6, 6], weight: [16, 3, 3, 3], params: p([1, 1], [0, 0], [1, 1]) },
        ConvCase { input: [1, 1, 6, 6], weight: [1, 1, 3, 3], params: p([1, 1], [0, 0], [1, 1]) },
        // Padding, stride, dilation, alone and mixed, square and not.
        ConvCase { input: [2, 3, 7, 6], weight: [4, 3, 3, 3], params: p([1, 1], [1, 1], [1, 1]) },
        ConvCase { input: [2, 2, 8, 8], weight: [4, 2, 5, 5], params: p([3, 3], [2, 2], [1, 1]) },
        ConvCase { input: [1, 2, 10, 10], weight: [3, 2, 3, 3], params: p([1, 1], [2, 2], [2, 2]) },
        ConvCase { input: [2, 3, 9, 8], weight: [5, 3, 3, 2], params: p([2, 1], [1, 0], [1, 2]) },
        ConvCase { input: [3, 4, 5, 5], weight: [2, 4, 1, 1], params: p([2, 2], [0, 0], [1, 1]) },
        // Padding wider than the input: some kernel columns never meet it.
        ConvCase { input: [1, 2, 3, 1], weight: [2, 2, 3, 5], params: p([1, 1], [1, 2], [1, 1]) },
        // A realistic layer, scaled down: 32 -> 16 channels, 12 x 12, padding 1.
        ConvCase { input: [2, 32, 12, 12], weight: [16, 32, 3, 3], params: p([1, 1], [1, 1], [1, 1]) },
    ]
}

fn burn_conv_options(p: &Conv2dParams) -> ConvOptions<2> {
    ConvOptions::new(p.stride, p.padding, p.dilation, 1)
}

#[test]
fn conv_forward_matches_burn_conv2d() {
    for (i, case) in conv_cases().iter().enumerate() {
        let x = Tensor4::random(case.input, 100 + i as u64);
        let w = Tensor4::random(case.weight, 200 + i as u64);
        let b = uniform(case.weight[0], 300 + i as u64);
        let reference = conv2d(
            burn_tensor(x.data(), case.input),
            burn_tensor(w.data(), case.weight),
            Some(burn_tensor(&b, [b.len()])),
            burn_conv_options(&case.params),
        );
        let out_shape = case.params.output_shape(case.input, case.weight);
        assert_eq!(reference.dims(), out_shape, "case {i}: output shape");
        let reference = values(reference);
        let what =
            |method: &str| format!("case {i} ({:?} * {:?}, {:?}), {method}", case.input, case.weight, case.params);
        check(&what("direct"), conv2d_direct(&x, &w, Some(&b), &case.params).data(), &reference);
        check(&what("im2col"), conv2d_im2col(&x, &w, Some(&b), &case.params).data(), &reference);
        check(
            &what("im2col, 2 threads"),
            conv2d_im2col_with_threads(&x, &w, Some(&b), &case.params, 2).data(),
            &reference,
        );
    }
}

#[test]
fn conv_gradients_match_burn_autodiff() {
    for (i, case) in conv_cases().iter().enumerate() {
        let x = Tensor4::random(case.input, 400 + i as u64);
        let w = Tensor4::random(case.weight, 500 + i as u64);
        let b = uniform(case.weight[0], 600 + i as u64);
        let out_shape = case.params.output_shape(case.input, case.weight);
        let r = Tensor4::random(out_shape, 700 + i as u64);

        let bx = burn_tensor(x.data(), case.input).require_grad();
        let bw = burn_tensor(w.data(), case.weight).require_grad();
        let bb = burn_tensor(&b, [b.len()]).require_grad();
        let out = conv2d(bx.clone(), bw.clone(), Some(bb.clone()), burn_conv_options(&case.params));
        let grads = (out * burn_tensor(r.data(), out_shape)).sum().backward();
        let want_x = values(bx.grad(&grads).expect("dL/dx"));
        let want_w = values(bw.grad(&grads).expect("dL/dW"));
        let want_b = values(bb.grad(&grads).expect("dL/db"));

        for (method, ours) in [
            ("direct", conv2d_backward_direct(&x, &w, &r, &case.params)),
            ("im2col", conv2d_backward_im2col(&x, &w, &r, &case.params)),
        ] {
            let what = |grad: &str| {
                format!("case {i} ({:?} * {:?}, {:?}), {method}, {grad}", case.input, case.weight, case.params)
            };
            check(&what("dL/dx"), ours.input.data(), &want_x);
            check(&what("dL/dW"), ours.weight.data(), &want_w);
            check(&what("dL/db"), &ours.bias, &want_b);
        }
    }
}

fn pool_cases() -> Vec<([usize; 4], Pool2dParams)> {
    vec![
        ([2, 3, 6, 6], Pool2dParams::new([2, 2])),
        ([1, 2, 7, 7], Pool2dParams { kernel: [3, 3], stride: [2, 2], padding: [1, 1] }),
        ([2, 1, 5, 7], Pool2dParams { kernel: [2, 3], stride: [1, 2], padding: [0, 1] }),
        ([1, 1, 4, 4], Pool2dParams { kernel: [2, 2], stride: [2, 2], padding: [1, 1] }),
    ]
}

#[test]
fn max_pool_and_its_unpooling_match_burn() {
    for (i, (shape, params)) in pool_cases().into_iter().enumerate() {
        let x = Tensor4::random(shape, 800 + i as u64);
        let pooled = kindling_kernels::max_pool2d(&x, &params);
        let r = Tensor4::random(pooled.output.shape(), 900 + i as u64);

        let bx = burn_tensor(x.data(), shape).require_grad();
        let options = MaxPoolOptions::new(params.kernel).with_stride(params.stride).with_padding(params.padding);
        let out = max_pool2d(bx.clone(), options);
        assert_eq!(out.dims(), pooled.output.shape(), "case {i}: output shape");
        check(&format!("max pool case {i}, forward"), pooled.output.data(), &values(out.clone()));
        let grads = (out * burn_tensor(r.data(), pooled.output.shape())).sum().backward();
        let ours = max_pool2d_backward(&r, &pooled.argmax, shape);
        check(&format!("max pool case {i}, dL/dx"), ours.data(), &values(bx.grad(&grads).expect("dL/dx")));
    }
}

#[test]
fn avg_pool_matches_burn() {
    for (i, (shape, params)) in pool_cases().into_iter().enumerate() {
        let x = Tensor4::random(shape, 1000 + i as u64);
        let ours = kindling_kernels::avg_pool2d(&x, &params);
        let r = Tensor4::random(ours.shape(), 1100 + i as u64);

        let bx = burn_tensor(x.data(), shape).require_grad();
        let options = AvgPoolOptions::new(params.kernel).with_stride(params.stride).with_padding(params.padding);
        let out = avg_pool2d(bx.clone(), options);
        assert_eq!(out.dims(), ours.shape(), "case {i}: output shape");
        check(&format!("avg pool case {i}, forward"), ours.data(), &values(out.clone()));
        let grads = (out * burn_tensor(r.data(), ours.shape())).sum().backward();
        let back = avg_pool2d_backward(&r, shape, &params);
        check(&format!("avg pool case {i}, dL/dx"), back.data(), &values(bx.grad(&grads).expect("dL/dx")));
    }
}

#[test]
fn dense_matches_burn_linear() {
    for (i, (batch, inputs, outputs)) in [(1, 4, 1), (3, 5, 4), (16, 64, 10)].into_iter().enumerate() {
        let x = Matrix::random(batch, inputs, 1200 + i as u64);
        let w = Matrix::random(outputs, inputs, 1300 + i as u64);
        let b = uniform(outputs, 1400 + i as u64);
        let r = Matrix::random(batch, outputs, 1500 + i as u64);

        let bx = burn_tensor(x.data(), [batch, inputs]).require_grad();
        let bw = burn_tensor(w.data(), [outputs, inputs]).require_grad();
        let bb = burn_tensor(&b, [outputs]).require_grad();
        // burn's `linear` takes the weight as [in, out]; ours is PyTorch's [out, in].
        let out = linear(bx.clone(), bw.clone().transpose(), Some(bb.clone()));
        check(&format!("dense case {i}, forward"), dense_forward(&x, &w, &b).data(), &values(out.clone()));
        let grads = (out * burn_tensor(r.data(), [batch, outputs])).sum().backward();
        let ours = dense_backward(&x, &w, &r);
        check(&format!("dense case {i}, dL/dx"), ours.input.data(), &values(bx.grad(&grads).expect("dL/dx")));
        check(&format!("dense case {i}, dL/dW"), ours.weight.data(), &values(bw.grad(&grads).expect("dL/dW")));
        check(&format!("dense case {i}, dL/db"), &ours.bias, &values(bb.grad(&grads).expect("dL/db")));
    }
}

/// burn's version of one activation.
type BurnActivation = fn(Tensor<1>) -> Tensor<1>;

#[test]
fn activations_and_derivatives_match_burn() {
    // Inputs over [-6, 6), away from relu's kink at exactly 0.
    let xs: Vec<f32> = uniform(256, 1600).into_iter().map(|v| 6.0 * v).filter(|v| v.abs() > 1e-3).collect();
    let r = uniform(xs.len(), 1601);
    let cases: [(Activation, BurnActivation); 5] = [
        (Activation::Relu, activation::relu),
        (Activation::LeakyRelu { slope: 0.01 }, |t| activation::leaky_relu(t, 0.01)),
        (Activation::LeakyRelu { slope: 0.2 }, |t| activation::leaky_relu(t, 0.2)),
        (Activation::Sigmoid, activation::sigmoid),
        (Activation::Tanh, activation::tanh),
    ];
    for (act, burn_fn) in cases {
        let bx = burn_tensor(&xs, [xs.len()]).require_grad();
        let out = burn_fn(bx.clone());
        check(&format!("{act:?}, forward"), &act.forward(&xs), &values(out.clone()));
        let grads = (out * burn_tensor(&r, [r.len()])).sum().backward();
        check(&format!("{act:?}, dL/dx"), &act.backward(&xs, &r), &values(bx.grad(&grads).expect("dL/dx")));
    }
}

#[test]
fn shallow_network_gradients_match_burn_autodiff() {
    let net = ShallowNet::new(3);
    let x = Tensor4::random([3, 1, 6, 6], 1700);
    let targets = [1.0, 0.0, 1.0];
    let (loss, ours) = net.loss_and_grads(&x, &targets);

    let w1 = burn_tensor(net.conv_weight.data(), [1, 1, 3, 3]).require_grad();
    let b1 = burn_tensor(&net.conv_bias, [1]).require_grad();
    let w2 = burn_tensor(net.fc_weight.data(), [1, 4]).require_grad();
    let b2 = burn_tensor(&net.fc_bias, [1]).require_grad();
    let conv = conv2d(
        burn_tensor(x.data(), [3, 1, 6, 6]),
        w1.clone(),
        Some(b1.clone()),
        ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
    );
    let pooled = max_pool2d(activation::sigmoid(conv), MaxPoolOptions::new([2, 2]));
    let y = activation::sigmoid(linear(pooled.reshape([3, 4]), w2.clone().transpose(), Some(b2.clone())));
    let burn_loss = (y - burn_tensor(&targets, [3, 1])).powi_scalar(2).mean();
    check("loss", &[loss], &values(burn_loss.clone()));
    let grads = burn_loss.backward();
    check("dL/d(conv weight)", ours.conv_weight.data(), &values(w1.grad(&grads).expect("conv weight")));
    check("dL/d(conv bias)", &ours.conv_bias, &values(b1.grad(&grads).expect("conv bias")));
    check("dL/d(fc weight)", ours.fc_weight.data(), &values(w2.grad(&grads).expect("fc weight")));
    check("dL/d(fc bias)", &ours.fc_bias, &values(b2.grad(&grads).expect("fc bias")));
}
