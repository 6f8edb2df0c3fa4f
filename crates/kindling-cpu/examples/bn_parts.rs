//! Times batch normalisation on the flex backend against this crate's, on the layers of
//! `mnist_cnn_bn` at batch 64: the training forward pass and its backward step through autodiff
//! (parameters and input tracked, as in training), and the evaluation pass on plain tensors:
//! `cargo run --release --example bn_parts` (from the workspace root, so the build shares the
//! workspace's features).
//!
//! The backward column times `output.backward()`, which seeds a gradient of ones the size of
//! the output and then runs the batch-norm step (the same seeding on both sides); for this
//! crate the step alone, as `BackwardTimes::batch_norm` measures it, is in brackets.

use std::time::Instant;

use burn::tensor::{Device, Tensor, TensorData};

const RUNS: usize = 21;

fn data(n: usize, seed: usize) -> Vec<f32> {
    (0..n).map(|i| (((i + seed) * 7919) % 1000) as f32 / 500.0 - 1.0).collect()
}

fn tensor<const D: usize>(shape: [usize; D], seed: usize, device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(data(shape.iter().product(), seed), shape), device)
}

fn median(mut t: Vec<f64>) -> f64 {
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

type Train<const D: usize> = fn(Tensor<D>, Tensor<1>, Tensor<1>) -> Tensor<D>;

fn ours<const D: usize>(x: Tensor<D>, g: Tensor<1>, b: Tensor<1>) -> Tensor<D> {
    kindling_cpu::batch_norm_train(x, g, b, 1e-5).output
}

fn burns<const D: usize>(x: Tensor<D>, g: Tensor<1>, b: Tensor<1>) -> Tensor<D> {
    burn::tensor::module::batch_norm_train(x, g, b, 1e-5).output
}

/// Median milliseconds of the tracked forward pass and of the backward pass, after 3 warm-ups,
/// and the median of this crate's own backward step time.
fn train_times<const D: usize>(shape: [usize; D], train: Train<D>) -> (f64, f64, f64) {
    let device = Device::flex().autodiff();
    let c = shape[1];
    let x = tensor(shape, 1, &device).require_grad();
    let (g, b) = (tensor([c], 2, &device).require_grad(), tensor([c], 3, &device).require_grad());
    let (mut fwd, mut bwd, mut step) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..RUNS + 3 {
        let start = Instant::now();
        let y = train(x.clone(), g.clone(), b.clone());
        let forward = start.elapsed().as_secs_f64() * 1e3;
        let before = kindling_cpu::backward_times().batch_norm;
        let start = Instant::now();
        drop(y.backward());
        let backward = start.elapsed().as_secs_f64() * 1e3;
        if run >= 3 {
            fwd.push(forward);
            bwd.push(backward);
            step.push((kindling_cpu::backward_times().batch_norm - before) * 1e3);
        }
    }
    (median(fwd), median(bwd), median(step))
}

fn eval_times<const D: usize>(shape: [usize; D]) -> (f64, f64) {
    let device = Device::flex();
    let c = shape[1];
    let x = tensor(shape, 1, &device);
    let stats =
        [tensor([c], 2, &device), tensor([c], 3, &device).abs(), tensor([c], 4, &device), tensor([c], 5, &device)];
    let time = |f: &dyn Fn() -> Tensor<D>| {
        median(
            (0..RUNS + 3)
                .map(|_| {
                    let start = Instant::now();
                    drop(f());
                    start.elapsed().as_secs_f64() * 1e3
                })
                .skip(3)
                .collect(),
        )
    };
    let [m, v, g, b] = stats;
    let burn = time(&|| {
        let (m, v, g, b) = (m.clone(), v.clone(), g.clone(), b.clone());
        burn::tensor::module::batch_norm(x.clone(), g, b, m, v, 1e-5)
    });
    let ours = time(&|| kindling_cpu::batch_norm_eval(x.clone(), m.clone(), v.clone(), g.clone(), b.clone(), 1e-5));
    (burn, ours)
}

fn row<const D: usize>(shape: [usize; D]) {
    let (f_burn, b_burn, _) = train_times(shape, burns::<D>);
    let (f_ours, b_ours, step) = train_times(shape, ours::<D>);
    let (e_burn, e_ours) = eval_times(shape);
    println!(
        "| {shape:?} | {f_burn:.2} | {f_ours:.2} | {b_burn:.2} | {b_ours:.2} ({step:.2}) | {e_burn:.2} | {e_ours:.2} |"
    );
}

fn main() {
    println!(
        "| input | forward, burn (ms) | forward, kindling-cpu (ms) | backward, burn (ms) | backward, kindling-cpu \
         (ms) (step alone) | eval, burn (ms) | eval, kindling-cpu (ms) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    row([64, 32, 28, 28]);
    row([64, 16, 28, 28]);
    row([64, 64, 14, 14]);
    row([64, 100]);
}
