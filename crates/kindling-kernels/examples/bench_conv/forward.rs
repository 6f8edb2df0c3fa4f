//! The forward table: direct loop, im2col + GEMM (and its two parts), burn's `conv2d`.

use burn::tensor::Device;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use kindling_kernels::{MatRef, conv2d_direct, conv2d_im2col, conv2d_im2col_with_threads, im2col, sgemm};

use crate::{Inputs, Row, SHAPES, agree, consume, print_rows, time};

pub(crate) fn table(iterations: usize, threads: usize, gpu: Option<&Device>) {
    println!("| shape | method | calls | ms per call | GFLOP/s | speed-up over direct | speed-up over burn flex |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for shape in &SHAPES {
        let inputs = Inputs::new(shape);
        let rows = rows(&inputs, iterations, threads, gpu);
        print_rows(shape.label, &rows, Some(inputs.flops()));
    }
}

fn rows(inputs: &Inputs<'_>, iterations: usize, threads: usize, gpu: Option<&Device>) -> Vec<Row> {
    let Inputs { x, w, b, shape } = inputs;
    let p = &shape.params;
    let [batch, out_c, oh, ow] = inputs.out_shape();
    let [_, in_c, kh, kw] = shape.weight;
    let reference = conv2d_direct(x, w, Some(b), p);
    let mut rows = Vec::new();
    let mut add = |method: String, (ms, calls): (f64, usize), part_of: Option<usize>| {
        rows.push(Row { method, ms, calls, part_of });
    };

    add("direct loop".into(), time(iterations, None, || consume(conv2d_direct(x, w, Some(b), p))), None);
    agree("im2col", reference.data(), conv2d_im2col(x, w, Some(b), p).data());
    add("im2col + GEMM".into(), time(iterations, None, || consume(conv2d_im2col(x, w, Some(b), p))), None);

    // The two parts alone: the copy into columns, then the GEMMs on those columns.
    let (k, positions) = (in_c * kh * kw, oh * ow);
    let mut cols = vec![0.0; k * positions];
    let copy = time(iterations, None, || {
        for n in 0..batch {
            im2col(x, n, [kh, kw], p, &mut cols);
        }
        consume(&cols);
    });
    add("the im2col copy".into(), copy, Some(1));
    let mut out = vec![0.0; out_c * positions];
    let gemms = time(iterations, None, || {
        for _ in 0..batch {
            sgemm(MatRef::new(w.data(), out_c, k), MatRef::new(&cols, k, positions), &mut out, false, 1);
        }
        consume(&out);
    });
    add("the GEMMs".into(), gemms, Some(1));

    if threads > 1 {
        agree("im2col, threaded", reference.data(), conv2d_im2col_with_threads(x, w, Some(b), p, threads).data());
        let t = time(iterations, None, || consume(conv2d_im2col_with_threads(x, w, Some(b), p, threads)));
        add(format!("im2col + GEMM, GEMM on {threads} threads"), t, None);
    }

    add("burn conv2d, flex".into(), burn(inputs, &Device::flex(), iterations, reference.data()), None);
    if let Some(device) = gpu {
        add("burn conv2d, wgpu".into(), burn(inputs, device, iterations, reference.data()), None);
    }
    rows
}

/// burn's `conv2d` on `device`, checked against `reference`.
fn burn(inputs: &Inputs<'_>, device: &Device, iterations: usize, reference: &[f32]) -> (f64, usize) {
    let p = &inputs.shape.params;
    let (x, w, b) = inputs.on(device);
    let options = ConvOptions::new(p.stride, p.padding, p.dilation, 1);
    let run = || conv2d(x.clone(), w.clone(), Some(b.clone()), options.clone());
    let out: Vec<f32> = run().into_data().try_to_vec().expect("f32 output");
    agree("burn conv2d", reference, &out);
    time(iterations, None, || {
        let y = run();
        device.sync().expect("device sync");
        consume(y);
    })
}
