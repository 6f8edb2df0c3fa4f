//! The fast convolution against burn's own: the same outputs and the same gradients for the
//! input, the weight and the bias, within 1e-4 relative, over strides, paddings (also uneven),
//! dilations and layers with and without bias; and proof that the fused kernel ran.

use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};

use kindling_cpu::Geometry;

use crate::common::{assert_close, output_and_grad, tensor, values};

/// Output and gradients of `conv` for one case: (y, dx, dw, db).
fn run(
    conv: fn(Tensor<4>, Tensor<4>, Option<Tensor<1>>, ConvOptions<2>) -> Tensor<4>,
    x: [usize; 4],
    w: [usize; 4],
    bias: bool,
    options: &ConvOptions<2>,
) -> (Tensor<4>, Tensor<4>, Tensor<4>, Option<Tensor<4>>) {
    let device = Device::flex().autodiff();
    let xt = tensor(x, 1, &device).require_grad();
    let wt = tensor(w, 2, &device).require_grad();
    let bt = bias.then(|| tensor([w[0]], 3, &device).require_grad());
    let y = conv(xt.clone(), wt.clone(), bt.clone(), options.clone());
    let r = tensor(y.dims(), 4, &device);
    let grads = (y.clone() * r).sum().backward();
    let dx = xt.grad(&grads).expect("dx");
    let dw = wt.grad(&grads).expect("dw");
    let db = bt.map(|b| b.grad(&grads).expect("db").reshape([1, 1, 1, w[0]]));
    (y.inner(), dx, dw, db)
}

#[test]
fn fast_conv_matches_burn_values_and_gradients() {
    let cases: Vec<([usize; 4], [usize; 4], bool, ConvOptions<2>)> = vec![
        // mnist_cnn's layers.
        ([8, 1, 28, 28], [16, 1, 3, 3], true, ConvOptions::new([1, 1], [1, 1], [1, 1], 1)),
        ([8, 16, 28, 28], [32, 16, 3, 3], true, ConvOptions::new([1, 1], [1, 1], [1, 1], 1)),
        ([8, 32, 14, 14], [64, 32, 3, 3], true, ConvOptions::new([1, 1], [1, 1], [1, 1], 1)),
        // LeNet-5's second layer: 5x5, no padding, 10 of 14 columns kept in the wide forward pass.
        ([4, 6, 14, 14], [16, 6, 5, 5], true, ConvOptions::new([1, 1], [0, 0], [1, 1], 1)),
        // The stereo CNN's first layer: 7x7, stride 2, no padding.
        ([3, 4, 33, 41], [8, 4, 7, 7], true, ConvOptions::new([2, 2], [0, 0], [1, 1], 1)),
        // Dilation, no bias, odd sizes, a one-image batch.
        ([1, 3, 11, 9], [5, 3, 3, 2], false, ConvOptions::new([1, 2], [2, 1], [2, 1], 1)),
        // Padding wider than the input: some taps read only padding (an empty valid range).
        ([2, 2, 1, 4], [3, 2, 5, 3], true, ConvOptions::new([1, 1], [3, 1], [1, 1], 1)),
        // Padding as wide as the kernel at stride 1: outputs that see only padding, and no
        // direct input gradient (its padding, `k - 1 - pad`, would be negative).
        ([2, 2, 4, 4], [3, 2, 3, 3], true, ConvOptions::new([1, 1], [3, 3], [1, 1], 1)),
        // The input gradient's "wide" layout (stride 1, narrow padding): uneven padding, a 4x4
        // kernel, and no padding at all.
        ([3, 3, 20, 24], [4, 3, 4, 4], true, ConvOptions::new_with_padding([1, 1], [(1, 2), (2, 1)], [1, 1], 1)),
        ([2, 3, 30, 30], [4, 3, 3, 3], false, ConvOptions::new([1, 1], [0, 0], [1, 1], 1)),
        // Uneven padding (as PaddingConfig2d::Same gives for even kernels) and stride 3.
        ([5, 2, 10, 12], [4, 2, 4, 4], true, ConvOptions::new_with_padding([3, 3], [(1, 2), (2, 1)], [1, 1], 1)),
        // The direct weight gradient with output channels that fill no whole vector (20 of 32
        // lanes), on odd sizes.
        ([2, 8, 9, 11], [20, 8, 3, 3], true, ConvOptions::new([1, 1], [1, 1], [1, 1], 1)),
        // The row kernel of 7 x 7 outputs: 24 output channels (one block of 2 vectors, the
        // second half empty) and 56 (blocks of 3 and 1 vectors).
        ([3, 16, 7, 7], [24, 16, 3, 3], true, ConvOptions::new([1, 1], [1, 1], [1, 1], 1)),
        ([2, 8, 7, 7], [56, 8, 3, 3], false, ConvOptions::new([1, 1], [1, 1], [1, 1], 1)),
    ];
    // Both layouts of the input gradient are exercised: the wide one (mnist_cnn's layers, the
    // two cases above) and the general one (stride, dilation, broad padding).
    let wide = cases.iter().filter(|(x, w, _, o)| Geometry::new(*x, *w, o).wide()).count();
    assert!((5..cases.len() - 2).contains(&wide), "{wide} of {} cases take the wide layout", cases.len());
    // The forward pass and weight gradient take it only for short rows (14 x 14, 10 x 10, 7 x 7).
    let wide_forward = cases.iter().filter(|(x, w, _, o)| Geometry::new(*x, *w, o).wide_forward()).count();
    assert!((1..cases.len() - 2).contains(&wide_forward), "{wide_forward} cases take the wide forward pass");
    // With AVX-512, the direct kernels: the forward pass by rows of 7 pixels, or where few
    // positions are dropped (28 x 28, 14 x 14, 20 x 24 with uneven padding, no padding), the
    // input gradient at stride 1,
    // the weight gradient for 3 x 3 kernels over 8 or more channels. The paths they replace
    // are checked below.
    let count = |f: fn(&Geometry) -> bool| cases.iter().filter(|(x, w, _, o)| f(&Geometry::new(*x, *w, o))).count();
    let direct = [
        count(Geometry::direct_rows),
        count(Geometry::direct),
        count(Geometry::direct_input_grad),
        count(Geometry::direct_weight_grad),
    ];
    assert_eq!(direct, if kindling_cpu::has_avx512() { [2, 5, 9, 5] } else { [0; 4] });
    for (x, w, bias, options) in cases {
        let before = kindling_cpu::fused_weight_grads();
        let fast = run(kindling_cpu::conv2d, x, w, bias, &options);
        assert!(kindling_cpu::fused_weight_grads() > before, "{x:?} * {w:?}: the fused kernel did not run");
        let reference = run(burn::tensor::module::conv2d, x, w, bias, &options);
        let case = format!("{x:?} * {w:?} {options:?}");
        assert_close(&format!("y {case}"), fast.0, reference.0);
        assert_close(&format!("dx {case}"), fast.1, reference.1);
        assert_close(&format!("dw {case}"), fast.2, reference.2);
        if let (Some(a), Some(b)) = (fast.3, reference.3) {
            assert_close(&format!("db {case}"), a, b);
        }
    }
}

/// Stride-1 geometries swept: kernel sizes 1 to 5 (square and not), 1 x 9 and 9 x 1, no,
/// narrow, full and uneven padding, output widths around the direct kernels' thresholds (7, 8,
/// 14, 16, 28) and channel counts that fill no whole register block: whichever kernel each
/// takes, values and gradients match burn's.
#[test]
fn stride_one_geometries_match_burn() {
    let mut taken = [0usize; 4];
    for (kernel, padding) in [
        ([1, 1], [(0, 0), (0, 0)]),
        ([2, 3], [(1, 0), (1, 1)]),
        ([3, 3], [(1, 1), (1, 1)]),
        ([3, 3], [(0, 2), (2, 0)]),
        ([5, 5], [(2, 2), (2, 2)]),
        ([5, 3], [(4, 0), (1, 2)]),
        // Nine taps in one row or one column: not a 3 x 3 kernel to the unrolled forward pass.
        ([1, 9], [(0, 0), (4, 4)]),
        ([9, 1], [(4, 4), (0, 0)]),
    ] {
        for (h, w) in [(7, 7), (5, 8), (14, 14), (9, 16), (28, 28)] {
            for (c, o) in [(3, 5), (9, 20)] {
                let (x, wt) = ([2, c, h, w], [o, c, kernel[0], kernel[1]]);
                let options = ConvOptions::new_with_padding([1, 1], padding, [1, 1], 1);
                let g = Geometry::new(x, wt, &options);
                taken[0] += usize::from(g.direct_rows());
                taken[1] += usize::from(g.direct());
                taken[2] += usize::from(g.direct_input_grad());
                taken[3] += usize::from(g.direct_weight_grad());
                let fast = run(kindling_cpu::conv2d, x, wt, true, &options);
                let reference = run(burn::tensor::module::conv2d, x, wt, true, &options);
                let case = format!("{x:?} * {wt:?} {padding:?}");
                assert_close(&format!("y {case}"), fast.0, reference.0);
                assert_close(&format!("dx {case}"), fast.1, reference.1);
                assert_close(&format!("dw {case}"), fast.2, reference.2);
            }
        }
    }
    if kindling_cpu::has_avx512() {
        assert!(taken.iter().all(|&n| n >= 4), "cases per direct kernel (rows, flat, dx, dw): {taken:?}");
    }
}

/// The im2col + GEMM paths, which the direct kernels replace on AVX-512 machines, still match
/// burn's op on the cases where the direct kernels would run.
#[test]
fn im2col_paths_match_burn_where_the_direct_kernels_apply() {
    let cases: Vec<([usize; 4], [usize; 4], ConvOptions<2>)> = vec![
        ([4, 16, 28, 28], [32, 16, 3, 3], ConvOptions::new([1, 1], [1, 1], [1, 1], 1)),
        ([3, 32, 14, 14], [64, 32, 3, 3], ConvOptions::new([1, 1], [1, 1], [1, 1], 1)),
        ([3, 3, 20, 24], [4, 3, 4, 4], ConvOptions::new_with_padding([1, 1], [(1, 2), (2, 1)], [1, 1], 1)),
        ([2, 8, 9, 11], [20, 8, 3, 3], ConvOptions::new([1, 1], [1, 1], [1, 1], 1)),
        ([2, 8, 7, 7], [56, 8, 3, 3], ConvOptions::new([1, 1], [1, 1], [1, 1], 1)),
    ];
    for (x, w, options) in cases {
        let (y, dx, dw, db) = run(burn::tensor::module::conv2d, x, w, true, &options);
        let g = Geometry::new(x, w, &options);
        let [n, o] = [x[0], w[0]];
        let (xv, wv, bv, dy) =
            (values(x.iter().product(), 1), values(w.iter().product(), 2), values(o, 3), values(n * o * g.pixels(), 4));
        let case = format!("{x:?} * {w:?}");
        let device = y.device();
        let as_tensor = |v: Vec<f32>, shape: [usize; 4]| Tensor::<4>::from_data(TensorData::new(v, shape), &device);
        let [oh, ow] = g.output;
        let got = kindling_cpu::forward_im2col(&xv, &wv, Some(&bv), n, o, &g);
        assert_close(&format!("im2col y {case}"), as_tensor(got, [n, o, oh, ow]), y);
        let got = kindling_cpu::input_grad_im2col(&dy, &wv, n, o, &g);
        assert_close(&format!("im2col dx {case}"), as_tensor(got, x), dx.inner());
        let got = kindling_cpu::weight_grad_im2col(&xv, &dy, n, o, &g);
        assert_close(&format!("im2col dw {case}"), as_tensor(got, w), dw.inner());
        assert!(db.is_some());
    }
}

#[test]
fn evaluation_on_plain_flex_tensors_matches_burn() {
    let device = Device::flex();
    for (x, w, options) in [
        ([4, 3, 13, 17], [6, 3, 3, 3], ConvOptions::new([1, 1], [1, 1], [1, 1], 1)),
        ([2, 4, 20, 20], [5, 4, 5, 3], ConvOptions::new_with_padding([2, 1], [(0, 1), (2, 0)], [1, 2], 1)),
    ] {
        let (xt, wt, bt) = (tensor(x, 7, &device), tensor(w, 8, &device), tensor([w[0]], 9, &device));
        let fast = kindling_cpu::conv2d(xt.clone(), wt.clone(), Some(bt.clone()), options.clone());
        let reference = burn::tensor::module::conv2d(xt, wt, Some(bt), options);
        assert_close(&format!("plain {x:?} * {w:?}"), fast, reference);
    }
}

/// A convolution at evaluation followed by batch norm, an activation and a pool, fused into
/// the output pass (`conv2d_eval`), gives bit for bit the separate operations' output, on every
/// kind of forward kernel, with even and odd output sizes (the pool's floor mode): the row kernel (7 x 7 outputs), the flattened direct kernel (28 x
/// 28), the wide im2col layout (LeNet-5's 10 x 10) and the general one (stride 2); on an
/// autodiff device it is the separate operations, gradients included.
#[test]
fn evaluation_with_batch_norm_activation_and_pool_is_the_separate_operations_bit_for_bit() {
    use kindling_cpu::{AvgPool, EvalBatchNorm, EvalPool, MaxPool, Nonlinearity};
    let cases: [([usize; 4], [usize; 4], ConvOptions<2>); 4] = [
        ([3, 16, 7, 7], [24, 16, 3, 3], ConvOptions::new([1, 1], [1, 1], [1, 1], 1)),
        ([2, 8, 28, 28], [20, 8, 3, 3], ConvOptions::new([1, 1], [1, 1], [1, 1], 1)),
        ([4, 6, 14, 14], [16, 6, 5, 5], ConvOptions::new([1, 1], [0, 0], [1, 1], 1)),
        ([3, 4, 33, 41], [8, 4, 7, 7], ConvOptions::new([2, 2], [0, 0], [1, 1], 1)),
    ];
    let device = Device::flex();
    for (x, w, options) in &cases {
        let (xt, wt, bt) = (tensor(*x, 11, &device), tensor(*w, 12, &device), tensor([w[0]], 13, &device));
        let o = w[0];
        let norm = EvalBatchNorm {
            mean: tensor([o], 14, &device),
            variance: crate::common::scaled([o], 15, 0.5, 1.0, &device),
            gamma: tensor([o], 16, &device),
            beta: tensor([o], 17, &device),
            epsilon: 1e-5,
        };
        let acts = [None, Some(Nonlinearity::Relu), Some(Nonlinearity::Tanh)];
        let max =
            |k: usize| MaxPool { kernel: [k; 2], stride: [2; 2], padding: [0; 2], dilation: [1; 2], ceil_mode: false };
        let avg =
            AvgPool { kernel: [2; 2], stride: [2; 2], padding: [0; 2], ceil_mode: false, count_include_pad: true };
        // The 2x2 pools run in the output pass; a 3x3 one after it, as its own operation.
        let pools = [None, Some(EvalPool::Max(max(2))), Some(EvalPool::Avg(avg)), Some(EvalPool::Max(max(3)))];
        let combos = [None, Some(norm)].into_iter().flat_map(|n| acts.map(|a| (n.clone(), a)));
        for ((norm, act), pool) in combos.flat_map(|c| pools.map(|p| (c.clone(), p))) {
            let (b, o) = (Some(bt.clone()), options.clone());
            let fused = kindling_cpu::conv2d_eval(xt.clone(), wt.clone(), b, o, norm.clone(), act, pool);
            let mut y = kindling_cpu::conv2d(xt.clone(), wt.clone(), Some(bt.clone()), options.clone());
            if let Some(n) = &norm {
                y = kindling_cpu::batch_norm_eval(
                    y,
                    n.mean.clone(),
                    n.variance.clone(),
                    n.gamma.clone(),
                    n.beta.clone(),
                    n.epsilon,
                );
            }
            y = match act {
                Some(Nonlinearity::Relu) => kindling_cpu::relu(y),
                Some(Nonlinearity::Tanh) => kindling_cpu::tanh(y),
                None => y,
            };
            y = match pool {
                Some(EvalPool::Max(p)) => kindling_cpu::max_pool2d(y, p),
                Some(EvalPool::Avg(p)) => kindling_cpu::avg_pool2d(y, p),
                None => y,
            };
            let case = format!("{x:?} * {w:?}, norm {}, {act:?}, {pool:?}", norm.is_some());
            assert_eq!(fused.dims(), y.dims(), "{case}");
            let (got, want): (Vec<f32>, Vec<f32>) =
                (fused.into_data().iter().collect(), y.into_data().iter().collect());
            assert_eq!(got.len(), want.len(), "{case}");
            for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                assert_eq!(a.to_bits(), b.to_bits(), "{case} [{i}]: {a} vs {b}");
            }
        }
    }
    let device = Device::flex().autodiff();
    let (x, w, options) = &cases[1];
    let xt = tensor(*x, 11, &device).require_grad();
    let y = kindling_cpu::conv2d_eval(
        xt.clone(),
        tensor(*w, 12, &device),
        None,
        options.clone(),
        None,
        Some(Nonlinearity::Relu),
        None,
    );
    let reference =
        kindling_cpu::relu(kindling_cpu::conv2d(xt.clone(), tensor(*w, 12, &device), None, options.clone()));
    assert_close("autodiff", y.clone(), reference);
    assert!(xt.grad(&y.sum().backward()).is_some(), "autodiff: no input gradient");
}

/// A convolution, ReLU and max pool in one training step (`conv2d_relu`): the output and the
/// gradients of the input, the weight and the bias are bit for bit those of the separate
/// operations, on every kind of forward kernel, with even and odd sizes, without a pool, with
/// the fused 2x2 one and with a 3x3 one that runs on its own.
#[test]
fn training_conv_relu_and_pool_is_the_separate_operations_bit_for_bit() {
    use kindling_cpu::MaxPool;
    let cases: [([usize; 4], [usize; 4], ConvOptions<2>); 4] = [
        ([3, 16, 7, 7], [24, 16, 3, 3], ConvOptions::new([1, 1], [1, 1], [1, 1], 1)),
        ([2, 8, 28, 28], [20, 8, 3, 3], ConvOptions::new([1, 1], [1, 1], [1, 1], 1)),
        ([4, 6, 14, 14], [16, 6, 5, 5], ConvOptions::new([1, 1], [0, 0], [1, 1], 1)),
        ([3, 4, 33, 41], [8, 4, 7, 7], ConvOptions::new([2, 2], [0, 0], [1, 1], 1)),
    ];
    let max =
        |k: usize| MaxPool { kernel: [k; 2], stride: [2; 2], padding: [0; 2], dilation: [1; 2], ceil_mode: false };
    let bits = |t: Tensor<4>| t.into_data().iter::<f32>().map(f32::to_bits).collect::<Vec<u32>>();
    let device = Device::flex().autodiff();
    for (x, w, options) in cases {
        for pool in [None, Some(max(2)), Some(max(3))] {
            let run = |fused: bool| {
                let xt = tensor(x, 21, &device).require_grad();
                let wt = tensor(w, 22, &device).require_grad();
                let bt = tensor([w[0]], 23, &device).require_grad();
                let y = if fused {
                    kindling_cpu::conv2d_relu(xt.clone(), wt.clone(), Some(bt.clone()), options.clone(), pool)
                } else {
                    let y = kindling_cpu::relu(kindling_cpu::conv2d(
                        xt.clone(),
                        wt.clone(),
                        Some(bt.clone()),
                        options.clone(),
                    ));
                    pool.map_or(y.clone(), |p| kindling_cpu::max_pool2d(y, p))
                };
                let r = tensor(y.dims(), 24, &device);
                let grads = (y.clone() * r).sum().backward();
                let db = bt.grad(&grads).expect("db").reshape([1, 1, 1, w[0]]);
                [y.inner(), xt.grad(&grads).expect("dx"), wt.grad(&grads).expect("dw"), db].map(bits)
            };
            let (fused, separate) = (run(true), run(false));
            for (what, (a, b)) in ["y", "dx", "dw", "db"].iter().zip(fused.iter().zip(&separate)) {
                assert_eq!(a.len(), b.len(), "{what} {x:?} * {w:?} {pool:?}");
                let differ = a.iter().zip(b).filter(|(a, b)| a != b).count();
                assert_eq!(differ, 0, "{what} {x:?} * {w:?} {pool:?}: {differ} values differ");
            }
        }
    }
}

#[test]
fn grouped_convolutions_use_burns_conv() {
    let device = Device::flex().autodiff();
    let x = tensor([2, 4, 6, 6], 5, &device).require_grad();
    let w = tensor([4, 2, 3, 3], 6, &device).require_grad();
    let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 2);
    let before = kindling_cpu::fused_weight_grads();
    let y = kindling_cpu::conv2d(x.clone(), w.clone(), None, options.clone());
    drop(y.sum().backward());
    assert_eq!(kindling_cpu::fused_weight_grads(), before, "groups are burn's");
    let reference = burn::tensor::module::conv2d(x.clone(), w, None, options.clone());
    let y = kindling_cpu::conv2d(x, tensor([4, 2, 3, 3], 6, &device), None, options);
    assert_close("grouped", y.inner(), reference.inner());
}

#[test]
fn max_pooling_matches_burn_values_and_gradients() {
    use kindling_cpu::MaxPool;
    let pools = [
        (
            [3, 4, 28, 28],
            MaxPool { kernel: [2, 2], stride: [2, 2], padding: [0, 0], dilation: [1, 1], ceil_mode: false },
        ),
        (
            [2, 3, 15, 13],
            MaxPool { kernel: [3, 3], stride: [2, 2], padding: [1, 1], dilation: [1, 1], ceil_mode: true },
        ),
        (
            [2, 2, 11, 12],
            MaxPool { kernel: [3, 2], stride: [2, 3], padding: [1, 0], dilation: [1, 1], ceil_mode: false },
        ),
        ([1, 2, 9, 9], MaxPool { kernel: [2, 2], stride: [1, 1], padding: [0, 0], dilation: [2, 2], ceil_mode: false }),
        // The presets' pool on odd sizes: the last row and column belong to no window.
        ([2, 3, 7, 9], MaxPool { kernel: [2, 2], stride: [2, 2], padding: [0, 0], dilation: [1, 1], ceil_mode: false }),
        // Disjoint windows wider than 2: the backward step stores rather than adds.
        (
            [2, 2, 9, 10],
            MaxPool { kernel: [3, 3], stride: [3, 3], padding: [0, 0], dilation: [1, 1], ceil_mode: false },
        ),
    ];
    for (shape, pool) in pools {
        // After a ReLU, as in the presets, windows often hold several zeros: ties must send the
        // gradient to the same tap as burn's op (the first).
        let device = Device::flex().autodiff();
        let relu_x = || burn::tensor::activation::relu(tensor(shape, 13, &device)).detach();
        let fast = output_and_grad(relu_x(), |x| kindling_cpu::max_pool2d(x, pool), 14);
        let reference = output_and_grad(relu_x(), |x| burn::tensor::module::max_pool2d(x, pool.options()), 14);
        assert_close(&format!("pool after relu y {shape:?} {pool:?}"), fast.0, reference.0);
        assert_close(&format!("pool after relu dx {shape:?} {pool:?}"), fast.1, reference.1);

        let fast = output_and_grad(tensor(shape, 11, &device), |x| kindling_cpu::max_pool2d(x, pool), 12);
        let reference =
            output_and_grad(tensor(shape, 11, &device), |x| burn::tensor::module::max_pool2d(x, pool.options()), 12);
        assert_close(&format!("pool y {shape:?} {pool:?}"), fast.0, reference.0);
        assert_close(&format!("pool dx {shape:?} {pool:?}"), fast.1, reference.1);
        // And without autodiff.
        let plain = tensor(shape, 11, &Device::flex());
        let expected = burn::tensor::module::max_pool2d(plain.clone(), pool.options());
        assert_close(&format!("pool plain {shape:?}"), kindling_cpu::max_pool2d(plain, pool), expected);
    }
}

#[test]
fn average_pooling_matches_burn_values_and_gradients() {
    use kindling_cpu::AvgPool;
    let pool = |kernel, stride, padding, ceil_mode, count_include_pad| AvgPool {
        kernel,
        stride,
        padding,
        ceil_mode,
        count_include_pad,
    };
    let cases = [
        // LeNet-5's pool.
        ([3, 6, 28, 28], pool([2, 2], [2, 2], [0, 0], false, true)),
        // The same on odd sizes (the last row and column are in no window), and with ceil mode
        // (a last, partial window: the general path).
        ([2, 3, 7, 9], pool([2, 2], [2, 2], [0, 0], false, false)),
        ([2, 3, 7, 9], pool([2, 2], [2, 2], [0, 0], true, false)),
        ([2, 3, 15, 13], pool([3, 3], [2, 2], [1, 1], false, true)),
        ([2, 3, 15, 13], pool([3, 3], [2, 2], [1, 1], false, false)),
        ([2, 2, 11, 12], pool([3, 2], [2, 3], [1, 0], true, true)),
        ([2, 2, 11, 12], pool([3, 2], [2, 3], [1, 1], true, false)),
    ];
    for (shape, p) in cases {
        let device = Device::flex().autodiff();
        let fast = output_and_grad(tensor(shape, 21, &device), |x| kindling_cpu::avg_pool2d(x, p), 22);
        let want =
            output_and_grad(tensor(shape, 21, &device), |x| burn::tensor::module::avg_pool2d(x, p.options()), 22);
        assert_close(&format!("avg y {shape:?} {p:?}"), fast.0, want.0);
        assert_close(&format!("avg dx {shape:?} {p:?}"), fast.1, want.1);
    }
}

#[test]
fn other_float_types_take_burns_ops() {
    // f64 tensors on the CPU: the kernels are f32-only, so burn computes (and no fused
    // gradient runs); the values still agree with burn's.
    let device = Device::flex().autodiff();
    let x = tensor([2, 3, 8, 8], 31, &device).cast(burn::tensor::DType::F64).require_grad();
    let w = tensor([4, 3, 3, 3], 32, &device).cast(burn::tensor::DType::F64).require_grad();
    let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    let before = kindling_cpu::fused_weight_grads();
    let y = kindling_cpu::conv2d(x.clone(), w.clone(), None, options.clone());
    drop(y.clone().sum().backward());
    assert_eq!(kindling_cpu::fused_weight_grads(), before);
    let want = burn::tensor::module::conv2d(x, w, None, options);
    assert_close("f64", y.inner().cast(burn::tensor::DType::F32), want.inner().cast(burn::tensor::DType::F32));
}
