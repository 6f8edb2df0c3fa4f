//! Every backward pass against central finite differences, on small cases.
//!
//! For a kernel `f` and a fixed random `r`, the loss is `L = Σ f(...) · r`, summed in f64, and
//! each partial derivative is estimated as `(L(θ + ε) - L(θ - ε)) / 2ε`. Convolution, average
//! pooling and the dense layer are linear in each argument, so the estimate has no truncation
//! error and a large ε (0.1) keeps f32 rounding small next to it. Max pooling is piecewise
//! linear: its inputs here are distinct values at least 1/len apart, so a step of 1e-3 never
//! changes a window's winner. Sigmoid and tanh are smooth: ε = 1e-2 makes the truncation error
//! (about ε²/6 · |f'''|) and the rounding error (about 1e-7 · |f| / ε) both near 1e-5.
//!
//! Tolerance: `|analytic - estimate| <= 1e-3 · (|estimate| + max |estimate|)`, the estimate
//! being the less exact of the two; the maximum runs over the tensor, or for the shallow
//! network over all its gradients (see `check_with_scale`).

use kindling_kernels::{
    Activation, Conv2dParams, Matrix, Pool2dParams, ShallowNet, Tensor4, avg_pool2d, avg_pool2d_backward,
    conv2d_backward_direct, conv2d_backward_im2col, conv2d_direct, dense_backward, dense_forward, max_pool2d,
    max_pool2d_backward, uniform,
};

const REL: f64 = 1e-3;

/// `Σ out · r` in f64.
fn dot(out: &[f32], r: &[f32]) -> f64 {
    out.iter().zip(r).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum()
}

/// The central-difference gradient of `loss` with respect to every element of `params`.
fn estimate(params: &[f32], eps: f32, mut loss: impl FnMut(&[f32]) -> f64) -> Vec<f32> {
    let mut p = params.to_vec();
    (0..p.len())
        .map(|i| {
            let keep = p[i];
            p[i] = keep + eps;
            let up = loss(&p);
            p[i] = keep - eps;
            let down = loss(&p);
            p[i] = keep;
            ((up - down) / f64::from(2.0 * eps)) as f32
        })
        .collect()
}

/// The one comparison every test uses, with the largest estimate of the tensor as the scale.
fn check(what: &str, analytic: &[f32], estimate: &[f32]) {
    let scale = estimate.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    check_with_scale(what, analytic, estimate, scale);
}

/// `check` with the scale of the absolute term given: where several tensors are gradients of
/// one loss, the largest of all of them, because a tiny gradient next to large ones is
/// measured with the same absolute rounding error of the loss.
fn check_with_scale(what: &str, analytic: &[f32], estimate: &[f32], scale: f32) {
    assert_eq!(analytic.len(), estimate.len(), "{what}: lengths differ");
    let scale = f64::from(scale);
    for (i, (a, e)) in analytic.iter().zip(estimate).enumerate() {
        let (a, e) = (f64::from(*a), f64::from(*e));
        assert!(
            (a - e).abs() <= REL * (e.abs() + scale),
            "{what}: element {i} is {a} by backprop, {e} by finite differences"
        );
    }
}

#[test]
fn conv_gradients_match_finite_differences() {
    let cases = [
        ([1, 1, 6, 6], [1, 1, 3, 3], Conv2dParams::default()),
        ([2, 2, 5, 6], [3, 2, 3, 2], Conv2dParams { stride: [2, 1], padding: [1, 2], dilation: [1, 2] }),
        ([1, 3, 7, 7], [2, 3, 3, 3], Conv2dParams::square(2, 1, 2)),
    ];
    for (i, (input, weight, params)) in cases.into_iter().enumerate() {
        let x = Tensor4::random(input, 10 + i as u64);
        let w = Tensor4::random(weight, 20 + i as u64);
        let b = uniform(weight[0], 30 + i as u64);
        let r = Tensor4::random(params.output_shape(input, weight), 40 + i as u64);
        let loss = |x: &[f32], w: &[f32], b: &[f32]| {
            let out = conv2d_direct(
                &Tensor4::from_vec(input, x.to_vec()),
                &Tensor4::from_vec(weight, w.to_vec()),
                Some(b),
                &params,
            );
            dot(out.data(), r.data())
        };
        let want_x = estimate(x.data(), 0.1, |p| loss(p, w.data(), &b));
        let want_w = estimate(w.data(), 0.1, |p| loss(x.data(), p, &b));
        let want_b = estimate(&b, 0.1, |p| loss(x.data(), w.data(), p));
        for (method, ours) in [
            ("direct", conv2d_backward_direct(&x, &w, &r, &params)),
            ("im2col", conv2d_backward_im2col(&x, &w, &r, &params)),
        ] {
            check(&format!("case {i}, {method}, dL/dx"), ours.input.data(), &want_x);
            check(&format!("case {i}, {method}, dL/dW"), ours.weight.data(), &want_w);
            check(&format!("case {i}, {method}, dL/db"), &ours.bias, &want_b);
        }
    }
}

/// Distinct values in `[0, 1)`, at least `1/len` apart, in a scrambled order (37 and the
/// lengths used here are coprime).
fn distinct(shape: [usize; 4]) -> Tensor4 {
    let len: usize = shape.iter().product();
    let data = (0..len).map(|i| ((i * 37) % len) as f32 / len as f32).collect();
    Tensor4::from_vec(shape, data)
}

#[test]
fn pooling_gradients_match_finite_differences() {
    let cases = [
        ([1, 2, 4, 4], Pool2dParams::new([2, 2])),
        ([2, 1, 5, 5], Pool2dParams { kernel: [3, 3], stride: [2, 2], padding: [1, 1] }),
        ([1, 1, 4, 5], Pool2dParams { kernel: [2, 3], stride: [1, 1], padding: [0, 1] }),
    ];
    for (i, (shape, params)) in cases.into_iter().enumerate() {
        let x = distinct(shape);
        let pooled = max_pool2d(&x, &params);
        let r = Tensor4::random(pooled.output.shape(), 50 + i as u64);
        let want = estimate(x.data(), 1e-3, |p| {
            dot(max_pool2d(&Tensor4::from_vec(shape, p.to_vec()), &params).output.data(), r.data())
        });
        check(&format!("max pool case {i}"), max_pool2d_backward(&r, &pooled.argmax, shape).data(), &want);

        let want = estimate(x.data(), 0.1, |p| {
            dot(avg_pool2d(&Tensor4::from_vec(shape, p.to_vec()), &params).data(), r.data())
        });
        check(&format!("avg pool case {i}"), avg_pool2d_backward(&r, shape, &params).data(), &want);
    }
}

#[test]
fn dense_gradients_match_finite_differences() {
    let (batch, inputs, outputs) = (3, 5, 2);
    let x = Matrix::random(batch, inputs, 60);
    let w = Matrix::random(outputs, inputs, 61);
    let b = uniform(outputs, 62);
    let r = Matrix::random(batch, outputs, 63);
    let loss = |x: &[f32], w: &[f32], b: &[f32]| {
        let y = dense_forward(
            &Matrix::from_vec(batch, inputs, x.to_vec()),
            &Matrix::from_vec(outputs, inputs, w.to_vec()),
            b,
        );
        dot(y.data(), r.data())
    };
    let ours = dense_backward(&x, &w, &r);
    check("dense, dL/dx", ours.input.data(), &estimate(x.data(), 0.1, |p| loss(p, w.data(), &b)));
    check("dense, dL/dW", ours.weight.data(), &estimate(w.data(), 0.1, |p| loss(x.data(), p, &b)));
    check("dense, dL/db", &ours.bias, &estimate(&b, 0.1, |p| loss(x.data(), w.data(), p)));
}

#[test]
fn activation_derivatives_match_finite_differences() {
    // Inputs over [-4, 4), at least ε from relu's kink so the difference never straddles it.
    let xs: Vec<f32> = uniform(64, 70).into_iter().map(|v| 4.0 * v).filter(|v| v.abs() > 0.05).collect();
    for act in [Activation::Relu, Activation::LeakyRelu { slope: 0.1 }, Activation::Sigmoid, Activation::Tanh] {
        let ones = vec![1.0; xs.len()];
        // With r = 1 and an element-wise function, the gradient is the derivative itself.
        let want = estimate(&xs, 1e-2, |p| dot(&act.forward(p), &ones));
        check(&format!("{act:?}"), &act.backward(&xs, &ones), &want);
        let pointwise: Vec<f32> = xs.iter().map(|&x| act.derivative(x)).collect();
        check(&format!("{act:?}, pointwise"), &pointwise, &want);
    }
}

#[test]
fn shallow_network_gradients_match_finite_differences() {
    // Inputs for which no pooling window has two values within reach of the step; the
    // assertion in `loss_with` checks it, as finite differences across a switch of the
    // winner measure a kink, not a derivative.
    let net = ShallowNet::new(5);
    let x = Tensor4::random([2, 1, 6, 6], 82);
    let targets = [1.0, 0.0];
    let (_, ours) = net.loss_and_grads(&x, &targets);
    let argmax = net.forward(&x).pooled.argmax;

    let eps = 1e-2;
    // Each parameter tensor is perturbed through a copy of the network; the max-pooling
    // winners must not move, or the loss is not differentiable along that step.
    let loss_with = |edit: &dyn Fn(&mut ShallowNet, &[f32]), p: &[f32]| {
        let mut moved = net.clone();
        edit(&mut moved, p);
        let trace = moved.forward(&x);
        assert_eq!(trace.pooled.argmax, argmax, "a pooling window changed its winner; pick other inputs");
        f64::from(kindling_kernels::squared_error(&trace.output, &targets))
    };
    let conv_w =
        estimate(net.conv_weight.data(), eps, |p| loss_with(&|n, p| n.conv_weight.data_mut().copy_from_slice(p), p));
    let conv_b = estimate(&net.conv_bias, eps, |p| loss_with(&|n, p| n.conv_bias.copy_from_slice(p), p));
    let fc_w = estimate(net.fc_weight.data(), eps, |p| loss_with(&|n, p| n.fc_weight.data_mut().copy_from_slice(p), p));
    let fc_b = estimate(&net.fc_bias, eps, |p| loss_with(&|n, p| n.fc_bias.copy_from_slice(p), p));
    let scale = [&conv_w, &conv_b, &fc_w, &fc_b].iter().flat_map(|g| g.iter()).fold(0.0f32, |m, v| m.max(v.abs()));
    check_with_scale("dL/d(conv weight)", ours.conv_weight.data(), &conv_w, scale);
    check_with_scale("dL/d(conv bias)", &ours.conv_bias, &conv_b, scale);
    check_with_scale("dL/d(fc weight)", ours.fc_weight.data(), &fc_w, scale);
    check_with_scale("dL/d(fc bias)", &ours.fc_bias, &fc_b, scale);
}
