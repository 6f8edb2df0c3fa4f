//! The direct method: slide the kernel over the input and multiply-add tap by tap.
//!
//! Seven nested loops (image, output channel, output row, output column, input channel,
//! kernel row, kernel column) and no extra memory. It is the definition of the operation and
//! the easiest to check, and slow for real layers: the innermost loop is only `kw` taps long,
//! each output value walks `in_c * kh` separate input rows, and nothing is reused from cache
//! in the way a GEMM arranges it.

use super::{Conv2dGrads, Conv2dParams, check_grad_shape, check_shapes};
use crate::Tensor4;

/// The convolution of `x` (`[batch, in_c, h, w]`) with `weight` (`[out_c, in_c, kh, kw]`) plus
/// `bias` (one per output channel), by the sliding-window loop: `[batch, out_c, oh, ow]`.
///
/// `out[n, o, y, x] = bias[o] + Σ_{c, i, j} in[n, c, y·s + i·d - p, x·s + j·d - p] · W[o, c, i, j]`,
/// where reads outside the input are zeros.
///
/// # Panics
///
/// When the shapes disagree (see [`Conv2dParams::output_shape`]).
pub fn conv2d_direct(x: &Tensor4, weight: &Tensor4, bias: Option<&[f32]>, params: &Conv2dParams) -> Tensor4 {
    let out_shape = check_shapes(x, weight, bias, params);
    let [batch, out_c, oh, ow] = out_shape;
    let [_, in_c, h, w] = x.shape();
    let [_, _, kh, kw] = weight.shape();
    let (xs, ws) = (x.data(), weight.data());
    let mut out = Vec::with_capacity(out_shape.iter().product());
    for n in 0..batch {
        for o in 0..out_c {
            let b = bias.map_or(0.0, |b| b[o]);
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = b;
                    for c in 0..in_c {
                        let plane = &xs[(n * in_c + c) * h * w..][..h * w];
                        let kernel = &ws[(o * in_c + c) * kh * kw..][..kh * kw];
                        for ky in 0..kh {
                            let Some(iy) = params.source(0, oy, ky, h) else { continue };
                            for kx in 0..kw {
                                let Some(ix) = params.source(1, ox, kx, w) else { continue };
                                acc += plane[iy * w + ix] * kernel[ky * kw + kx];
                            }
                        }
                    }
                    out.push(acc);
                }
            }
        }
    }
    Tensor4::from_vec(out_shape, out)
}

/// The gradients of a convolution by the same loop run backwards: every product
/// `in · W` that fed an output value passes that value's gradient `g` back as `g · W` to
/// the input pixel and `g · in` to the weight tap; the bias collects `g` itself.
///
/// `grad_out` is `dL/d(out)`, shaped like [`conv2d_direct`]'s result.
///
/// # Panics
///
/// When the shapes disagree.
pub fn conv2d_backward_direct(x: &Tensor4, weight: &Tensor4, grad_out: &Tensor4, params: &Conv2dParams) -> Conv2dGrads {
    let [batch, out_c, oh, ow] = check_grad_shape(x, weight, grad_out, params);
    let [_, in_c, h, w] = x.shape();
    let [_, _, kh, kw] = weight.shape();
    let (xs, ws, gs) = (x.data(), weight.data(), grad_out.data());
    let mut grad_x = Tensor4::zeros(x.shape());
    let mut grad_w = Tensor4::zeros(weight.shape());
    let mut grad_b = vec![0.0; out_c];
    let (gx, gw) = (grad_x.data_mut(), grad_w.data_mut());
    for n in 0..batch {
        for o in 0..out_c {
            for oy in 0..oh {
                for ox in 0..ow {
                    let g = gs[((n * out_c + o) * oh + oy) * ow + ox];
                    grad_b[o] += g;
                    for c in 0..in_c {
                        let plane = (n * in_c + c) * h * w;
                        let kernel = (o * in_c + c) * kh * kw;
                        for ky in 0..kh {
                            let Some(iy) = params.source(0, oy, ky, h) else { continue };
                            for kx in 0..kw {
                                let Some(ix) = params.source(1, ox, kx, w) else { continue };
                                let (xi, wi) = (plane + iy * w + ix, kernel + ky * kw + kx);
                                gx[xi] += g * ws[wi];
                                gw[wi] += g * xs[xi];
                            }
                        }
                    }
                }
            }
        }
    }
    Conv2dGrads { input: grad_x, weight: grad_w, bias: grad_b }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hand_worked_example() {
        // 1 x 1 x 3 x 3 input, one 2 x 2 kernel, bias 0.5: each output is the sum of a 2 x 2
        // window weighted by [1 0; 0 -1], i.e. top-left minus bottom-right, plus 0.5.
        let x = Tensor4::from_vec([1, 1, 3, 3], (1..=9).map(|v| v as f32).collect());
        let w = Tensor4::from_vec([1, 1, 2, 2], vec![1.0, 0.0, 0.0, -1.0]);
        let out = conv2d_direct(&x, &w, Some(&[0.5]), &Conv2dParams::default());
        assert_eq!(out.shape(), [1, 1, 2, 2]);
        assert_eq!(out.data(), [-3.5; 4]);

        // With every output gradient 1, dW[i, j] is the sum of the inputs that tap met.
        let grads =
            conv2d_backward_direct(&x, &w, &Tensor4::from_vec([1, 1, 2, 2], vec![1.0; 4]), &Conv2dParams::default());
        assert_eq!(grads.weight.data(), [12.0, 16.0, 24.0, 28.0]);
        assert_eq!(grads.bias, [4.0]);
        assert_eq!(grads.input.data(), [1.0, 1.0, 0.0, 1.0, 0.0, -1.0, 0.0, -1.0, -1.0]);
    }
}
