//! The fast batch normalisation against burn's own: the training output, the batch statistics
//! and the gradients of the input, `gamma` and `beta` within 1e-4 relative, for 4-D inputs
//! (channel by channel) and 2-D/3-D ones (row by row), with all, some or no parents tracked, a
//! non-contiguous input and one value per channel; the plain flex forward pass and the
//! evaluation pass; batch norm with a fused ReLU against burn's batch norm then ReLU; and
//! statistics against an `f64` reference on a large batch far from 0.

use burn::tensor::{Device, Tensor, TensorData};

use crate::common::{assert_close, scaled, values};

/// Which of input, gamma and beta require a gradient.
#[derive(Clone, Copy, Debug)]
struct Tracked {
    x: bool,
    gamma: bool,
    beta: bool,
}

const ALL: Tracked = Tracked { x: true, gamma: true, beta: true };

type Train<const D: usize> = fn(Tensor<D>, Tensor<1>, Tensor<1>, f64) -> (Tensor<D>, Tensor<1>, Tensor<1>);

fn ours<const D: usize>(x: Tensor<D>, g: Tensor<1>, b: Tensor<1>, eps: f64) -> (Tensor<D>, Tensor<1>, Tensor<1>) {
    let out = kindling_cpu::batch_norm_train(x, g, b, eps);
    (out.output, out.mean, out.variance)
}

fn burns<const D: usize>(x: Tensor<D>, g: Tensor<1>, b: Tensor<1>, eps: f64) -> (Tensor<D>, Tensor<1>, Tensor<1>) {
    let out = burn::tensor::module::batch_norm_train(x, g, b, eps);
    (out.output, out.mean, out.variance)
}

/// Everything one training step gives: output, mean, variance and the gradients of the tracked
/// parents (`None` for the others).
struct Step<const D: usize> {
    y: Tensor<D>,
    mean: Tensor<1>,
    var: Tensor<1>,
    dx: Option<Tensor<D>>,
    dgamma: Option<Tensor<1>>,
    dbeta: Option<Tensor<1>>,
}

fn step<const D: usize>(train: Train<D>, shape: [usize; D], tracked: Tracked, x: Option<Tensor<D>>) -> Step<D> {
    let device = Device::flex().autodiff();
    let c = shape[1];
    let track = |t: Tensor<1>, on: bool| if on { t.require_grad() } else { t };
    let x = x.unwrap_or_else(|| scaled(shape, 1, 2.0, 0.5, &device));
    let x = if tracked.x { x.require_grad() } else { x };
    let gamma = track(scaled([c], 2, 0.5, 1.0, &device), tracked.gamma);
    let beta = track(scaled([c], 3, 1.0, 0.0, &device), tracked.beta);
    let (y, mean, var) = train(x.clone(), gamma.clone(), beta.clone(), 1e-5);
    assert!(!mean.is_require_grad() && !var.is_require_grad(), "statistics are detached");
    let (mut dx, mut dgamma, mut dbeta) = (None, None, None);
    if tracked.x || tracked.gamma || tracked.beta {
        let r = scaled(y.dims(), 4, 1.0, 0.0, &device);
        let grads = (y.clone() * r).sum().backward();
        dx = tracked.x.then(|| x.grad(&grads).expect("dx"));
        dgamma = tracked.gamma.then(|| gamma.grad(&grads).expect("dgamma"));
        dbeta = tracked.beta.then(|| beta.grad(&grads).expect("dbeta"));
    }
    Step { y: y.inner(), mean: mean.inner(), var: var.inner(), dx, dgamma, dbeta }
}

fn compare<const D: usize>(case: &str, fast: Step<D>, reference: Step<D>) {
    assert_close(&format!("y {case}"), fast.y, reference.y);
    assert_close(&format!("mean {case}"), fast.mean, reference.mean);
    assert_close(&format!("variance {case}"), fast.var, reference.var);
    match (fast.dx, reference.dx) {
        (Some(a), Some(b)) => assert_close(&format!("dx {case}"), a, b),
        (None, None) => {}
        _ => panic!("dx {case}: present on one side only"),
    }
    for (name, a, b) in [("dgamma", fast.dgamma, reference.dgamma), ("dbeta", fast.dbeta, reference.dbeta)] {
        match (a, b) {
            (Some(a), Some(b)) => assert_close(&format!("{name} {case}"), a, b),
            (None, None) => {}
            _ => panic!("{name} {case}: present on one side only"),
        }
    }
}

fn ours_relu<const D: usize>(x: Tensor<D>, g: Tensor<1>, b: Tensor<1>, eps: f64) -> (Tensor<D>, Tensor<1>, Tensor<1>) {
    let out = kindling_cpu::batch_norm_relu_train(x, g, b, eps);
    (out.output, out.mean, out.variance)
}

fn burns_relu<const D: usize>(x: Tensor<D>, g: Tensor<1>, b: Tensor<1>, eps: f64) -> (Tensor<D>, Tensor<1>, Tensor<1>) {
    let out = burn::tensor::module::batch_norm_train(x, g, b, eps);
    (burn::tensor::activation::relu(out.output), out.mean, out.variance)
}

/// Runs both with the same tracked parents and checks that this crate's backward step ran.
fn check<const D: usize>(shape: [usize; D], tracked: Tracked) {
    let before = kindling_cpu::backward_times().batch_norm;
    let fast = step(ours::<D>, shape, tracked, None);
    if tracked.x || tracked.gamma || tracked.beta {
        assert!(kindling_cpu::backward_times().batch_norm > before, "{shape:?}: the fast backward step did not run");
    }
    compare(&format!("{shape:?} {tracked:?}"), fast, step(burns::<D>, shape, tracked, None));
}

/// Batch norm with a fused ReLU against burn's batch norm then ReLU. `fused`: whether the ReLU
/// should have run inside batch norm's backward step (no activation step of its own).
fn check_relu<const D: usize>(shape: [usize; D], tracked: Tracked, fused: bool) {
    let before = kindling_cpu::backward_times();
    let fast = step(ours_relu::<D>, shape, tracked, None);
    let after = kindling_cpu::backward_times();
    assert!(after.batch_norm > before.batch_norm, "{shape:?}: the fast backward step did not run");
    assert_eq!(after.activation == before.activation, fused, "{shape:?}: a ReLU step of its own ran: {}", !fused);
    let reference = step(burns_relu::<D>, shape, tracked, None);
    // The mask matters: a good share of the outputs is cut to 0.
    let zeros = reference.y.clone().equal_elem(0.0).int().sum().into_scalar::<i64>() as usize;
    let total = shape.iter().product::<usize>();
    assert!(zeros * 5 > total && zeros * 5 < total * 4, "{shape:?}: {zeros} of {total} outputs are 0");
    compare(&format!("relu {shape:?} {tracked:?}"), fast, reference);
}

#[test]
fn fused_relu_matches_batch_norm_then_relu() {
    // Fused channel by channel (at least 16 values per image and channel).
    check_relu([4, 3, 5, 6], ALL, true);
    check_relu([2, 5, 40, 30], ALL, true);
    check_relu([3, 4, 6, 5], Tracked { x: true, gamma: false, beta: false }, true);
    check_relu([3, 4, 6, 5], Tracked { x: false, gamma: true, beta: true }, true);
    // Row by row: batch norm, then the ReLU kernel.
    check_relu([64, 100], ALL, false);
    check_relu([6, 4, 1, 1], ALL, false);
}

#[test]
fn training_matches_burn_values_and_gradients() {
    // Channel by channel: 4-D inputs with at least 16 values per image and channel, one of them
    // with planes longer than a summation block (1024 values).
    check([4, 3, 5, 6], ALL);
    check([3, 8, 7, 7], ALL);
    check([2, 5, 40, 30], ALL);
    // Row by row: BatchNorm1d after a linear layer, a short 3-D sequence, 1x1 images.
    check([5, 6], ALL);
    check([64, 100], ALL);
    check([3, 4, 5], ALL);
    check([6, 4, 1, 1], ALL);
}

#[test]
fn only_the_tracked_parents_get_gradients() {
    for tracked in [
        Tracked { x: false, gamma: true, beta: true },
        Tracked { x: true, gamma: false, beta: false },
        Tracked { x: false, gamma: false, beta: true },
        Tracked { x: false, gamma: true, beta: false },
    ] {
        check([3, 4, 6, 5], tracked);
        check([7, 5], tracked);
    }
    // Nothing tracked: no backward step, the same forward values.
    let none = Tracked { x: false, gamma: false, beta: false };
    check([2, 3, 4, 4], none);
    check([4, 3], none);
}

#[test]
fn non_contiguous_input_and_single_values_match_burn() {
    let device = Device::flex().autodiff();
    // [C, N, H, W] swapped to [N, C, H, W]: a strided view.
    let x = scaled([3, 4, 6, 5], 9, 1.5, -0.5, &device).swap_dims(0, 1);
    let fast = step(ours::<4>, [4, 3, 6, 5], ALL, Some(x.clone()));
    compare("swapped [4, 3, 6, 5]", fast, step(burns::<4>, [4, 3, 6, 5], ALL, Some(x)));
    // (A batch of 2 would make dx nearly 0: the output then hardly depends on the input.)
    let x = scaled([6, 5], 10, 1.0, 0.0, &device).transpose();
    let fast = step(ours::<2>, [5, 6], ALL, Some(x.clone()));
    compare("transposed [5, 6]", fast, step(burns::<2>, [5, 6], ALL, Some(x)));
    // One value per channel: variance 0, the output is beta (the forward pass allows it).
    let fast = step(ours::<2>, [1, 3], Tracked { x: false, gamma: true, beta: true }, None);
    let reference = step(burns::<2>, [1, 3], Tracked { x: false, gamma: true, beta: true }, None);
    assert_eq!(fast.var.clone().into_data().iter::<f32>().collect::<Vec<_>>(), vec![0.0; 3]);
    compare("[1, 3]", fast, reference);
}

#[test]
fn plain_flex_training_forward_matches_burn() {
    let device = Device::flex();
    for (shape, seed) in [([4usize, 3, 5, 6], 20u64), ([2, 6, 9, 11], 21), ([3, 5, 2, 2], 22)] {
        let x = scaled(shape, seed, 3.0, 1.0, &device);
        let (g, b) = (scaled([shape[1]], seed + 1, 0.5, 1.0, &device), scaled([shape[1]], seed + 2, 1.0, 0.0, &device));
        let fast = kindling_cpu::batch_norm_train(x.clone(), g.clone(), b.clone(), 1e-3);
        let reference = burn::tensor::module::batch_norm_train(x, g, b, 1e-3);
        assert_close(&format!("plain y {shape:?}"), fast.output, reference.output);
        assert_close(&format!("plain mean {shape:?}"), fast.mean, reference.mean);
        assert_close(&format!("plain variance {shape:?}"), fast.variance, reference.variance);
    }
    let x = scaled([9, 7], 30, 2.0, -1.0, &device);
    let (g, b) = (scaled([7], 31, 0.5, 1.0, &device), scaled([7], 32, 1.0, 0.0, &device));
    let fast = kindling_cpu::batch_norm_train(x.clone(), g.clone(), b.clone(), 1e-5);
    let reference = burn::tensor::module::batch_norm_train(x, g, b, 1e-5);
    assert_close("plain y [9, 7]", fast.output, reference.output);
    assert_close("plain mean [9, 7]", fast.mean, reference.mean);
    assert_close("plain variance [9, 7]", fast.variance, reference.variance);
}

/// `(x - mean) / sqrt(var + eps) * gamma + beta` from tensor ops, the statistics broadcast
/// over axis 1.
fn composed<const D: usize>(x: Tensor<D>, stats: [Tensor<1>; 4], eps: f64) -> Tensor<D> {
    let mut shape = [1usize; D];
    shape[1] = x.dims()[1];
    let [mean, var, gamma, beta] = stats.map(|t| t.reshape(shape));
    (x - mean) / (var + eps).sqrt() * gamma + beta
}

fn eval_case<const D: usize>(shape: [usize; D], device: &Device) {
    let c = shape[1];
    let x = scaled(shape, 40, 2.0, 0.3, device);
    let stats = [
        scaled([c], 41, 0.5, 0.0, device),
        scaled([c], 42, 0.4, 0.6, device),
        scaled([c], 43, 0.5, 1.0, device),
        scaled([c], 44, 1.0, 0.0, device),
    ];
    let [mean, var, gamma, beta] = stats.clone();
    let fast = kindling_cpu::batch_norm_eval(x.clone(), mean, var, gamma, beta, 1e-5);
    let reference = composed(x, stats, 1e-5);
    assert_close(&format!("eval {shape:?} autodiff={}", device.is_autodiff()), fast.inner(), reference.inner());
}

#[test]
fn fused_relu_evaluation_matches_the_formula_then_relu() {
    for device in [Device::flex(), Device::flex().autodiff()] {
        for shape in [[4usize, 3, 5, 6], [6, 4, 2, 3]] {
            let c = shape[1];
            let x = scaled(shape, 40, 2.0, 0.3, &device);
            let stats = [
                scaled([c], 41, 0.5, 0.0, &device),
                scaled([c], 42, 0.4, 0.6, &device),
                scaled([c], 43, 0.5, 1.0, &device),
                scaled([c], 44, 1.0, 0.0, &device),
            ];
            let [mean, var, gamma, beta] = stats.clone();
            let fast = kindling_cpu::batch_norm_relu_eval(x.clone(), mean, var, gamma, beta, 1e-5);
            let reference = burn::tensor::activation::relu(composed(x, stats, 1e-5));
            let zeros = reference.clone().equal_elem(0.0).int().sum().into_scalar::<i64>() as usize;
            assert!(zeros > 0, "{shape:?}: no output is cut");
            assert_close(
                &format!("eval relu {shape:?} autodiff={}", device.is_autodiff()),
                fast.inner(),
                reference.inner(),
            );
        }
    }
}

#[test]
fn evaluation_matches_the_formula() {
    let device = Device::flex();
    eval_case([4, 3, 5, 6], &device);
    eval_case([2, 5, 40, 30], &device);
    eval_case([6, 4, 2, 3], &device);
    eval_case([8, 10], &device);
    eval_case([3, 4, 5], &device);
    // A frozen layer during training: burn's ops on autodiff tensors, gradients included.
    let device = Device::flex().autodiff();
    eval_case([2, 3, 4, 5], &device);
    let x = scaled([2, 3, 4, 5], 50, 1.0, 0.0, &device).require_grad();
    let stats = || vec![0.1f32, 0.2, 0.3];
    let t = |v: Vec<f32>| Tensor::<1>::from_data(TensorData::new(v, [3]), &device);
    let y = kindling_cpu::batch_norm_eval(x.clone(), t(stats()), t(stats()), t(vec![2.0; 3]), t(vec![0.0; 3]), 0.0);
    let dx = x.grad(&y.sum().backward()).expect("dx through the frozen layer");
    let want: Vec<f32> = (0..120).map(|i| 2.0 / [0.1f32, 0.2, 0.3][(i / 20) % 3].sqrt()).collect();
    assert_close("frozen dx", dx, Tensor::<4>::from_data(TensorData::new(want, [2, 3, 4, 5]), &Device::flex()));
}

#[test]
fn large_batch_statistics_match_an_f64_reference() {
    // 64 x 4 x 32 x 32, far from 0: the mean dominates each value, so a sloppy variance shows.
    let shape = [64usize, 4, 32, 32];
    let device = Device::flex();
    let v: Vec<f32> = values(shape.iter().product(), 60).into_iter().map(|v| 100.0 + 0.01 * v).collect();
    let x = Tensor::<4>::from_data(TensorData::new(v.clone(), shape), &device);
    let ones = Tensor::<1>::from_data(TensorData::new(vec![1.0f32; 4], [4]), &device);
    let zeros = Tensor::<1>::from_data(TensorData::new(vec![0.0f32; 4], [4]), &device);
    let out = kindling_cpu::batch_norm_train(x, ones, zeros, 0.0);
    let (mean, var): (Vec<f32>, Vec<f32>) =
        (out.mean.into_data().iter().collect(), out.variance.into_data().iter().collect());
    let plane = 32 * 32;
    for c in 0..4 {
        let xs = (0..64).flat_map(|b| v[(b * 4 + c) * plane..][..plane].iter().map(|x| f64::from(*x)));
        let m = xs.clone().sum::<f64>() / (64 * plane) as f64;
        let s = xs.map(|x| (x - m) * (x - m)).sum::<f64>() / (64 * plane) as f64;
        assert!((f64::from(mean[c]) - m).abs() <= 1e-6 * m, "mean[{c}]: {} vs {m}", mean[c]);
        assert!((f64::from(var[c]) - s).abs() <= 1e-4 * s, "variance[{c}]: {} vs {s}", var[c]);
    }
}

/// Batch norm, ReLU and a max pool in one training step (`batch_norm_relu_pool_train`): the
/// output, the statistics and the gradients of the input, `gamma` and `beta` are bit for bit
/// those of the three operations, with even and odd sizes; a pool that is not 2x2 and planes
/// narrower than the channel-by-channel path take the three operations.
#[test]
fn batch_norm_relu_and_pool_is_the_three_operations_bit_for_bit() {
    use kindling_cpu::MaxPool;
    let max =
        |k: usize| MaxPool { kernel: [k; 2], stride: [2; 2], padding: [0; 2], dilation: [1; 2], ceil_mode: false };
    let bits = |t: Tensor<4>| t.into_data().iter::<f32>().map(f32::to_bits).collect::<Vec<u32>>();
    let bits1 = |t: Tensor<1>| t.into_data().iter::<f32>().map(f32::to_bits).collect::<Vec<u32>>();
    let device = Device::flex().autodiff();
    for (shape, k) in
        [([4, 6, 28, 28], 2), ([3, 5, 7, 7], 2), ([2, 3, 9, 14], 2), ([2, 4, 12, 12], 3), ([3, 2, 3, 3], 2)]
    {
        let run = |fused: bool| {
            let x = scaled(shape, 31, 2.0, 0.3, &device).require_grad();
            let g = scaled([shape[1]], 32, 0.5, 1.0, &device).require_grad();
            let b = scaled([shape[1]], 33, 0.5, 0.0, &device).require_grad();
            let batch = if fused {
                kindling_cpu::batch_norm_relu_pool_train(x.clone(), g.clone(), b.clone(), 1e-5, max(k))
            } else {
                let batch = kindling_cpu::batch_norm_relu_train(x.clone(), g.clone(), b.clone(), 1e-5);
                kindling_cpu::BatchNormBatch { output: kindling_cpu::max_pool2d(batch.output, max(k)), ..batch }
            };
            let y = batch.output;
            let r = scaled(y.dims(), 34, 1.0, 0.0, &device);
            let grads = (y.clone() * r).sum().backward();
            let (dg, db) = (g.grad(&grads).expect("dgamma"), b.grad(&grads).expect("dbeta"));
            (
                [bits(y.inner()), bits(x.grad(&grads).expect("dx"))],
                [bits1(batch.mean), bits1(batch.variance), bits1(dg), bits1(db)],
            )
        };
        let (fused, separate) = (run(true), run(false));
        for (what, (a, b)) in ["y", "dx"].iter().zip(fused.0.iter().zip(&separate.0)) {
            assert_eq!(a.len(), b.len(), "{what} {shape:?} {k}x{k}");
            assert!(
                a == b,
                "{what} {shape:?} {k}x{k}: {} values differ",
                a.iter().zip(b).filter(|(a, b)| a != b).count()
            );
        }
        for (what, (a, b)) in ["mean", "variance", "dgamma", "dbeta"].iter().zip(fused.1.iter().zip(&separate.1)) {
            assert_eq!(a, b, "{what} {shape:?} {k}x{k}");
        }
    }
}
