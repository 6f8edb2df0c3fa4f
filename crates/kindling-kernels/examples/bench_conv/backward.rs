//! The forward + backward table: what one training step of the layer costs each method.
//!
//! burn differentiates `sum(conv2d(x, W, b))` with its autodiff, so the output gradient is all
//! ones; ours gets the same ones. The sum adds one reduction over the output to burn's time.

use std::time::Duration;

use burn::tensor::Device;
use burn::tensor::module::{conv2d, conv2d_weight_backward};
use burn::tensor::ops::ConvOptions;
use kindling_kernels::{
    Conv2dGrads, Tensor4, conv2d_backward_direct, conv2d_backward_im2col, conv2d_direct, conv2d_im2col,
};

use crate::{Inputs, Row, SHAPES, agree, consume, print_rows, time};

/// The direct loop needs seconds per call on the realistic shape; it stops after this long.
const DIRECT_BUDGET: Duration = Duration::from_secs(30);

pub(crate) fn table(iterations: usize, gpu: Option<&Device>) {
    println!("| shape | method | calls | ms per call | speed-up over direct | speed-up over burn flex |");
    println!("|---|---|---:|---:|---:|---:|");
    for shape in &SHAPES {
        let inputs = Inputs::new(shape);
        print_rows(shape.label, &rows(&inputs, iterations, gpu), None);
    }
}

fn rows(inputs: &Inputs<'_>, iterations: usize, gpu: Option<&Device>) -> Vec<Row> {
    let Inputs { x, w, b, shape } = inputs;
    let p = &shape.params;
    let ones = Tensor4::from_vec(inputs.out_shape(), vec![1.0; inputs.out_shape().iter().product()]);
    let reference = conv2d_backward_im2col(x, w, &ones, p);
    agree("direct dL/dx", reference.input.data(), conv2d_backward_direct(x, w, &ones, p).input.data());
    let mut rows = Vec::new();
    let direct = time(iterations, Some(DIRECT_BUDGET), || {
        consume(conv2d_direct(x, w, Some(b), p));
        consume(conv2d_backward_direct(x, w, &ones, p));
    });
    let im2col_row = push(&mut rows, "direct loop", direct, None) + 1;
    let im2col = time(iterations, None, || {
        consume(conv2d_im2col(x, w, Some(b), p));
        consume(conv2d_backward_im2col(x, w, &ones, p));
    });
    push(&mut rows, "im2col + GEMM", im2col, None);
    let backward = time(iterations, None, || consume(conv2d_backward_im2col(x, w, &ones, p)));
    push(&mut rows, "the backward pass", backward, Some(im2col_row));

    let flex = Device::flex();
    let flex_row = push(&mut rows, "burn conv2d + autodiff, flex", burn(inputs, &flex, iterations, &reference), None);
    let dw = weight_backward(inputs, &flex, iterations, &reference);
    push(&mut rows, "conv2d_weight_backward (dL/dW alone)", dw, Some(flex_row));
    if let Some(device) = gpu {
        push(&mut rows, "burn conv2d + autodiff, wgpu", burn(inputs, device, iterations, &reference), None);
    }
    rows
}

/// Appends a row and returns its index.
fn push(rows: &mut Vec<Row>, method: &str, (ms, calls): (f64, usize), part_of: Option<usize>) -> usize {
    rows.push(Row { method: method.to_owned(), ms, calls, part_of });
    rows.len() - 1
}

/// Forward and backward through burn's autodiff on `device`, checked against `reference`.
fn burn(inputs: &Inputs<'_>, device: &Device, iterations: usize, reference: &Conv2dGrads) -> (f64, usize) {
    let p = &inputs.shape.params;
    let (x, w, b) = inputs.on(&device.clone().autodiff());
    let (x, w, b) = (x.require_grad(), w.require_grad(), b.require_grad());
    let options = ConvOptions::new(p.stride, p.padding, p.dilation, 1);
    let step = || {
        let grads = conv2d(x.clone(), w.clone(), Some(b.clone()), options.clone()).sum().backward();
        let grad = |t: Option<burn::tensor::Tensor<4>>| t.expect("a gradient");
        (grad(x.grad(&grads)), grad(w.grad(&grads)), b.grad(&grads).expect("a gradient"))
    };
    let (gx, gw, gb) = step();
    agree("burn dL/dx", reference.input.data(), &gx.into_data().try_to_vec::<f32>().expect("f32"));
    agree("burn dL/dW", reference.weight.data(), &gw.into_data().try_to_vec::<f32>().expect("f32"));
    agree("burn dL/db", &reference.bias, &gb.into_data().try_to_vec::<f32>().expect("f32"));
    time(iterations, None, || {
        let grads = step();
        device.sync().expect("device sync");
        consume(grads);
    })
}

/// burn's weight gradient alone, without autodiff: the part BENCHMARKS.md names the prime
/// suspect of flex's slow training step.
fn weight_backward(inputs: &Inputs<'_>, device: &Device, iterations: usize, reference: &Conv2dGrads) -> (f64, usize) {
    let p = &inputs.shape.params;
    let (x, w, _) = inputs.on(device);
    let ones = burn::tensor::Tensor::<4>::ones(inputs.out_shape(), device);
    let options = ConvOptions::new(p.stride, p.padding, p.dilation, 1);
    let run = || conv2d_weight_backward(x.clone(), w.clone(), ones.clone(), options.clone());
    agree("burn conv2d_weight_backward", reference.weight.data(), &run().into_data().try_to_vec::<f32>().expect("f32"));
    time(iterations, None, || {
        let gw = run();
        device.sync().expect("device sync");
        consume(gw);
    })
}
