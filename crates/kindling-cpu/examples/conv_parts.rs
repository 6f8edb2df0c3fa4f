//! Times each part of a convolution on the flex backend against this crate's kernels, on the
//! layers of `mnist_cnn` at batch 64, and the max pooling after its second convolution:
//! `cargo run --release --example conv_parts [-- --vgg3]` (from the workspace root, so the build
//! shares the workspace's features). `-- --winograd` times the kernels picked today against
//! Winograd on every padded 3 x 3 layer (add `-p kindling-cpu --no-default-features` for the
//! AVX2 build).

use std::time::Instant;

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::backend::ops::ModuleOps;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Shape, TensorData};
use kindling_cpu::Geometry;

fn data(n: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect()
}

fn flex(v: &[f32], shape: [usize; 4]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v.to_vec(), Shape::new(shape)))
}

/// Median milliseconds of `f` over 15 runs after 3 warm-ups.
fn time(mut f: impl FnMut()) -> f64 {
    for _ in 0..3 {
        f();
    }
    let mut t: Vec<f64> = (0..15)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

/// `--gemm`: single-thread GFLOP/s of the products the convolutions run, per image and for
/// several images at once.
fn gemm_shapes() {
    use kindling_gemm::{MatRef, sgemm};
    println!("| m x n x k | GFLOP/s, one thread |\n|---|---:|");
    for (m, n, k) in
        [(512, 512, 512), (32, 784, 288), (64, 196, 576), (128, 49, 1152), (128, 392, 1152), (64, 784, 576)]
    {
        let (a, b) = (data(m * k), data(k * n));
        let mut c = vec![0.0f32; m * n];
        let ms = time(|| sgemm(MatRef::new(&a, m, k), MatRef::new(&b, k, n), &mut c, false, 1));
        println!("| {m} x {n} x {k} | {:.0} |", 2.0 * (m * n * k) as f64 / ms / 1e6);
    }
}

/// `--winograd`: the kernels the dispatch picks (direct, Winograd or im2col) against Winograd
/// F(2 x 2, 3 x 3), per part, on every padded 3 x 3 layer of `mnist_cnn` and `vgg3`; with
/// `KINDLING_WINOGRAD=0` the first column is never Winograd.
fn winograd() {
    let layers = [
        ([64, 16, 28, 28], [32, 16, 3, 3]),
        ([64, 32, 14, 14], [64, 32, 3, 3]),
        ([64, 32, 28, 28], [32, 32, 3, 3]),
        ([64, 32, 14, 14], [64, 32, 3, 3]),
        ([64, 64, 14, 14], [64, 64, 3, 3]),
        ([64, 64, 7, 7], [128, 64, 3, 3]),
        ([64, 128, 7, 7], [128, 128, 3, 3]),
    ];
    println!("| layer | part | picked (ms) | Winograd (ms) |\n|---|---|---:|---:|");
    for (xs, ws) in layers {
        let g = Geometry::new(xs, ws, &ConvOptions::new([1, 1], [1, 1], [1, 1], 1));
        let (n, o) = (xs[0], ws[0]);
        let (x, w, b) = (data(xs.iter().product()), data(ws.iter().product()), data(o));
        let dy = data(n * o * g.pixels());
        let name = format!("{}->{} {}x{}", xs[1], o, xs[2], xs[3]);
        let today = time(|| drop(kindling_cpu::forward_values(&x, &w, Some(&b), n, o, &g)));
        let wino = time(|| drop(kindling_cpu::forward_winograd(&x, &w, Some(&b), n, o, &g)));
        println!("| {name} | forward | {today:.2} | {wino:.2} |");
        let today = time(|| drop(kindling_cpu::input_grad_values(&dy, &w, n, o, &g)));
        let wino = time(|| drop(kindling_cpu::input_grad_winograd(&dy, &w, n, o, &g)));
        println!("| {name} | input grad | {today:.2} | {wino:.2} |");
        let today = time(|| drop(kindling_cpu::weight_grad_values(&x, &dy, n, o, &g)));
        let wino = time(|| drop(kindling_cpu::weight_grad_winograd(&x, &dy, n, o, &g)));
        println!("| {name} | weight grad | {today:.2} | {wino:.2} |");
    }
}

fn main() {
    if std::env::args().any(|a| a == "--gemm") {
        return gemm_shapes();
    }
    if std::env::args().any(|a| a == "--winograd") {
        return winograd();
    }
    // `--vgg3`: the square layers of `vgg3` instead (one per resolution).
    let layers = if std::env::args().any(|a| a == "--vgg3") {
        [([64, 32, 28, 28], [32, 32, 3, 3]), ([64, 64, 14, 14], [64, 64, 3, 3]), ([64, 128, 7, 7], [128, 128, 3, 3])]
    } else {
        [([64, 1, 28, 28], [16, 1, 3, 3]), ([64, 16, 28, 28], [32, 16, 3, 3]), ([64, 32, 14, 14], [64, 32, 3, 3])]
    };
    println!("| layer | part | flex (ms) | kindling-cpu (ms) |\n|---|---|---:|---:|");
    for (xs, ws) in layers {
        let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
        let g = Geometry::new(xs, ws, &options);
        let ys = [xs[0], ws[0], g.output[0], g.output[1]];
        let (x, w, dy) = (data(xs.iter().product()), data(ws.iter().product()), data(ys.iter().product()));
        let b = data(ws[0]);
        let name = format!("{}->{} {}x{}", xs[1], ws[0], xs[2], xs[3]);
        let f = time(|| {
            let bias = FlexTensor::from_data(TensorData::new(b.clone(), Shape::new([ws[0]])));
            drop(<Flex as ModuleOps<Flex>>::conv2d(flex(&x, xs), flex(&w, ws), Some(bias), options.clone()));
        });
        let k = time(|| drop(kindling_cpu::forward_values(&x, &w, Some(&b), xs[0], ws[0], &g)));
        println!("| {name} | forward | {f:.2} | {k:.2} |");
        let f = time(|| {
            drop(<Flex as ModuleOps<Flex>>::conv2d_x_backward(
                flex(&x, xs),
                flex(&w, ws),
                flex(&dy, ys),
                options.clone(),
            ))
        });
        let k = time(|| drop(kindling_cpu::input_grad_values(&dy, &w, xs[0], ws[0], &g)));
        println!("| {name} | input grad | {f:.2} | {k:.2} |");
        let f = time(|| {
            drop(<Flex as ModuleOps<Flex>>::conv2d_weight_backward(
                flex(&x, xs),
                flex(&w, ws),
                flex(&dy, ys),
                options.clone(),
            ))
        });
        let k = time(|| drop(kindling_cpu::weight_grad_values(&x, &dy, xs[0], ws[0], &g)));
        println!("| {name} | weight grad | {f:.2} | {k:.2} |");
    }
    // The max pooling after the second convolution, as training runs it (keeping the argmax).
    let shape = [64, 32, 28, 28];
    let v = data(shape.iter().product());
    let f = time(|| {
        let out = <Flex as ModuleOps<Flex>>::max_pool2d_with_indices(
            flex(&v, shape),
            [2, 2],
            [2, 2],
            [0, 0],
            [1, 1],
            false,
            burn::tensor::IntDType::I64,
        );
        drop(out);
    });
    let pool =
        kindling_cpu::MaxPool { kernel: [2, 2], stride: [2, 2], padding: [0, 0], dilation: [1, 1], ceil_mode: false };
    let k = time(|| drop(pool.forward_values(&v, 64 * 32, [28, 28])));
    println!("| 32 ch 28x28 | max pool 2x2 with argmax | {f:.2} | {k:.2} |");
    // The same after a ReLU, as in training: half the inputs are 0, so ties are common.
    let relu: Vec<f32> = v.iter().map(|x| x.max(0.0)).collect();
    let k = time(|| drop(pool.forward_values(&relu, 64 * 32, [28, 28])));
    println!("| 32 ch 28x28 | max pool 2x2 with argmax, after ReLU | | {k:.2} |");
    let (out, arg) = pool.forward_values(&relu, 64 * 32, [28, 28]);
    let k = time(|| drop(kindling_cpu::max_pool_backward_values(&out, &arg, 64 * 32, 28 * 28, true)));
    println!("| 32 ch 28x28 | max pool 2x2 backward | | {k:.2} |");
}
