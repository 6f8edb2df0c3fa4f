//! `cargo xtask bench conv`: the direct loop, im2col + GEMM and burn's `conv2d`, timed on the
//! seed's shapes and on a realistic layer. Prints two Markdown tables: the forward pass, then
//! the forward and backward pass together (one training step of the layer).
//!
//! Every method computes the same convolution (with bias) from the same inputs, checked to
//! agree before it is timed, after one untimed warm-up call; a time is the mean over
//! `--iterations` calls (100 by default). burn's device is synchronised after every call, so
//! its time includes all of the work. Parts of a method are also timed alone, to show where
//! its time goes. The one exception to the call count: the direct loop's forward + backward
//! stops after 30 s of calls (seconds each on the realistic shape); the table gives the count.

mod backward;
mod forward;

use std::hint::black_box;
use std::time::{Duration, Instant};

use burn::tensor::{Device, Tensor, TensorData};
use kindling_core::DeviceChoice;
use kindling_kernels::{Conv2dParams, Tensor4, uniform};

/// One benchmarked layer.
struct Shape {
    label: &'static str,
    input: [usize; 4],
    weight: [usize; 4],
    params: Conv2dParams,
}

const NO_PADDING: Conv2dParams = Conv2dParams { stride: [1, 1], padding: [0, 0], dilation: [1, 1] };

const SHAPES: [Shape; 3] = [
    Shape { label: "seed: 1x1x3x3, 16 filters 3x3", input: [1, 1, 3, 3], weight: [16, 1, 3, 3], params: NO_PADDING },
    Shape { label: "seed: 1x3x6x6, 16 filters 3x3", input: [1, 3, 6, 6], weight: [16, 3, 3, 3], params: NO_PADDING },
    Shape {
        label: "realistic: 64x32x28x28, 64 filters 3x3, padding 1",
        input: [64, 32, 28, 28],
        weight: [64, 32, 3, 3],
        params: Conv2dParams { stride: [1, 1], padding: [1, 1], dilation: [1, 1] },
    },
];

/// The inputs of one shape, on our side.
struct Inputs<'a> {
    shape: &'a Shape,
    x: Tensor4,
    w: Tensor4,
    b: Vec<f32>,
}

impl<'a> Inputs<'a> {
    fn new(shape: &'a Shape) -> Self {
        Self {
            shape,
            x: Tensor4::random(shape.input, 1),
            w: Tensor4::random(shape.weight, 2),
            b: uniform(shape.weight[0], 3),
        }
    }

    fn out_shape(&self) -> [usize; 4] {
        self.shape.params.output_shape(self.shape.input, self.shape.weight)
    }

    /// Multiply-adds times two.
    fn flops(&self) -> f64 {
        let [batch, out_c, oh, ow] = self.out_shape();
        let [_, in_c, kh, kw] = self.shape.weight;
        2.0 * (batch * out_c * oh * ow * in_c * kh * kw) as f64
    }

    /// `x`, `w` and `b` as burn tensors on `device`.
    fn on(&self, device: &Device) -> (Tensor<4>, Tensor<4>, Tensor<1>) {
        (
            Tensor::from_data(TensorData::new(self.x.data().to_vec(), self.shape.input), device),
            Tensor::from_data(TensorData::new(self.w.data().to_vec(), self.shape.weight), device),
            Tensor::from_data(TensorData::new(self.b.clone(), [self.b.len()]), device),
        )
    }
}

fn main() {
    let iterations = parse_iterations();
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("model name"))?;
            line.split(':').nth(1).map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());

    // The same rule as training's `device: auto`: a hardware GPU through wgpu, never a software
    // adapter (lavapipe is slower than the CPU backend).
    let gpu = match kindling_models::device::resolve(DeviceChoice::Auto) {
        Ok(d) if d.description.starts_with("wgpu") => Some((d.device.without_autodiff(), d.description)),
        _ => None,
    };
    let gpu_device = gpu.as_ref().map(|(d, _)| d);

    println!("machine: {cpu}, {threads} cores; {iterations} calls per cell unless stated, mean time per call");
    println!("direct and im2col run on 1 thread unless marked; burn's flex backend uses every core");
    println!("all shapes stride 1, dilation 1; the seed's shapes without padding");
    match &gpu {
        Some((_, description)) => println!("wgpu: {description}"),
        None => println!(
            "wgpu: skipped, no hardware adapter, or a build without kindling-models' `wgpu` feature \
             (automatic selection ignores software adapters)"
        ),
    }
    println!("speed-up: the time of the direct loop (or of burn flex) over the method's time; above 1x is faster");

    println!("\nForward pass\n");
    forward::table(iterations, threads, gpu_device);
    println!("\nForward and backward pass (dL/dx, dL/dW, dL/db for an output gradient of ones)\n");
    backward::table(iterations, gpu_device);
}

fn parse_iterations() -> usize {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => 100,
        [flag, n] if flag == "--iterations" => n.parse().unwrap_or_else(|_| usage()),
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!("usage: bench_conv [--iterations N]");
    std::process::exit(2)
}

/// One timed line of a table; `part_of` names the row whose time this is a part of.
struct Row {
    method: String,
    ms: f64,
    calls: usize,
    part_of: Option<usize>,
}

/// Mean milliseconds per call of `f` over `iterations` calls after one untimed call, and the
/// number of calls: fewer than `iterations` when `budget` is given and runs out first.
fn time(iterations: usize, budget: Option<Duration>, mut f: impl FnMut()) -> (f64, usize) {
    f();
    let start = Instant::now();
    let mut calls = 0;
    while calls < iterations.max(1) {
        f();
        calls += 1;
        if budget.is_some_and(|b| start.elapsed() >= b) {
            break;
        }
    }
    (start.elapsed().as_secs_f64() * 1e3 / calls as f64, calls)
}

/// Drops `value` where the optimiser cannot see that it is unused.
fn consume<T>(value: T) {
    drop(black_box(value));
}

/// Panics unless `got` matches `reference` to 1e-4 of the largest reference value.
fn agree(what: &str, reference: &[f32], got: &[f32]) {
    assert_eq!(reference.len(), got.len(), "{what}: lengths differ");
    let scale = reference.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let worst = reference.iter().zip(got).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(worst <= 1e-4 * scale, "{what}: off by {worst} (largest value {scale})");
}

fn fmt_ms(ms: f64) -> String {
    if ms < 0.1 { format!("{ms:.4}") } else { format!("{ms:.2}") }
}

fn ratio(r: f64) -> String {
    if r.is_finite() { format!("{r:.2}x") } else { "-".to_owned() }
}

/// Prints the rows of one shape: parts show their share of their parent row instead of
/// speed-ups; `flops` (when given) adds a GFLOP/s column.
fn print_rows(label: &str, rows: &[Row], flops: Option<f64>) {
    let direct = rows[0].ms;
    let flex =
        rows.iter().find(|r| r.method.starts_with("burn") && r.method.contains("flex")).map_or(f64::NAN, |r| r.ms);
    for row in rows {
        let calls = row.calls.to_string();
        let gflops = flops.map(|f| format!(" {:.2} |", f / row.ms / 1e6)).unwrap_or_default();
        match row.part_of {
            Some(parent) => {
                let share = 100.0 * row.ms / rows[parent].ms;
                let blank = if flops.is_some() { " |" } else { "" };
                println!(
                    "| {label} | of which {} ({share:.0}% of its row) | {calls} | {} |{blank} | |",
                    row.method,
                    fmt_ms(row.ms)
                );
            }
            None => println!(
                "| {label} | {} | {calls} | {} |{gflops} {} | {} |",
                row.method,
                fmt_ms(row.ms),
                ratio(direct / row.ms),
                ratio(flex / row.ms)
            ),
        }
    }
}
