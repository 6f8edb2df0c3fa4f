//! 2-D convolution (cross-correlation, as in every deep-learning framework): the geometry
//! shared by both methods, and the gradients they return.

mod direct;
mod im2col;

pub use direct::{conv2d_backward_direct, conv2d_direct};
pub use im2col::{col2im, conv2d_backward_im2col, conv2d_im2col, conv2d_im2col_with_threads, im2col};

use crate::Tensor4;

/// Stride, zero padding and dilation of a convolution, each as `[along h, along w]`.
///
/// The default is PyTorch's: stride 1, no padding, dilation 1. Groups are not supported
/// (every output channel sees every input channel).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dParams {
    /// Step between two output positions, in input pixels (at least 1).
    pub stride: [usize; 2],
    /// Zeros added on each side of the input (top and bottom, left and right alike).
    pub padding: [usize; 2],
    /// Gap between two kernel taps, in input pixels (1: adjacent taps; at least 1).
    pub dilation: [usize; 2],
}

impl Default for Conv2dParams {
    fn default() -> Self {
        Self { stride: [1, 1], padding: [0, 0], dilation: [1, 1] }
    }
}

impl Conv2dParams {
    /// The same stride, padding and dilation along both axes.
    pub fn square(stride: usize, padding: usize, dilation: usize) -> Self {
        Self { stride: [stride; 2], padding: [padding; 2], dilation: [dilation; 2] }
    }

    /// The output height and width for an `h x w` input and a `kh x kw` kernel:
    /// `(h + 2p - d(k - 1) - 1) / s + 1` along each axis, rounded down.
    ///
    /// # Panics
    ///
    /// When a stride or dilation is 0, or the dilated kernel is larger than the padded input.
    pub fn output_size(&self, [h, w]: [usize; 2], [kh, kw]: [usize; 2]) -> [usize; 2] {
        [0, 1].map(|axis| {
            let (len, k) = if axis == 0 { (h, kh) } else { (w, kw) };
            let (s, p, d) = (self.stride[axis], self.padding[axis], self.dilation[axis]);
            assert!(s > 0 && d > 0, "stride and dilation must be at least 1, got {self:?}");
            assert!(k > 0, "a kernel needs at least one tap per axis");
            let span = d * (k - 1) + 1;
            assert!(
                len + 2 * p >= span,
                "a kernel spanning {span} pixels does not fit an input of {len} with padding {p}"
            );
            (len + 2 * p - span) / s + 1
        })
    }

    /// `[batch, out_c, oh, ow]` for input `[batch, in_c, h, w]` and weight `[out_c, in_c, kh, kw]`.
    ///
    /// # Panics
    ///
    /// When the channel counts disagree, or as [`output_size`](Self::output_size).
    pub fn output_shape(&self, input: [usize; 4], weight: [usize; 4]) -> [usize; 4] {
        let [n, c, h, w] = input;
        let [oc, ic, kh, kw] = weight;
        assert_eq!(c, ic, "the input has {c} channels but the weight expects {ic} (weight shape {weight:?})");
        let [oh, ow] = self.output_size([h, w], [kh, kw]);
        [n, oc, oh, ow]
    }

    /// The input row read by output row `o` through kernel row `k`, or `None` where that
    /// falls in the zero padding. `axis` is 0 for rows, 1 for columns.
    pub(crate) fn source(&self, axis: usize, o: usize, k: usize, len: usize) -> Option<usize> {
        let pos = o * self.stride[axis] + k * self.dilation[axis];
        pos.checked_sub(self.padding[axis]).filter(|&i| i < len)
    }

    /// The output positions `o < out_len` whose kernel tap `k` reads inside the input (where
    /// [`source`](Self::source) is `Some`): a loop over this range needs no bounds test, and
    /// with stride 1 it reads a contiguous run of the input row.
    pub(crate) fn valid_outputs(&self, axis: usize, k: usize, out_len: usize, len: usize) -> std::ops::Range<usize> {
        let (s, p, offset) = (self.stride[axis], self.padding[axis], k * self.dilation[axis]);
        // o·s + offset >= p, rounded up, and o·s + offset - p < len, rounded up (exclusive).
        let lo = p.saturating_sub(offset).div_ceil(s).min(out_len);
        let hi = (len + p).saturating_sub(offset).div_ceil(s).min(out_len);
        lo..hi.max(lo)
    }
}

/// The gradients of a loss with respect to a convolution's three inputs, given the gradient
/// with respect to its output.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv2dGrads {
    /// `dL/dx`, shaped like the input.
    pub input: Tensor4,
    /// `dL/dW`, shaped like the weight.
    pub weight: Tensor4,
    /// `dL/db`, one value per output channel.
    pub bias: Vec<f32>,
}

/// Checks the shapes every convolution entry point shares and returns the output shape.
fn check_shapes(x: &Tensor4, weight: &Tensor4, bias: Option<&[f32]>, params: &Conv2dParams) -> [usize; 4] {
    let out = params.output_shape(x.shape(), weight.shape());
    if let Some(b) = bias {
        assert_eq!(b.len(), out[1], "{} output channels need {} biases, got {}", out[1], out[1], b.len());
    }
    out
}

/// Checks that `grad_out` is shaped like the forward output and returns that shape.
fn check_grad_shape(x: &Tensor4, weight: &Tensor4, grad_out: &Tensor4, params: &Conv2dParams) -> [usize; 4] {
    let out = check_shapes(x, weight, None, params);
    assert_eq!(grad_out.shape(), out, "the output gradient must be shaped like the output");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_size_follows_the_formula() {
        // (h + 2p - d(k - 1) - 1) / s + 1 along each axis.
        let cases = [
            (Conv2dParams::default(), [6, 6], [3, 3], [4, 4]),
            (Conv2dParams::square(1, 1, 1), [28, 28], [3, 3], [28, 28]),
            (Conv2dParams::square(2, 0, 1), [7, 7], [3, 3], [3, 3]),
            (Conv2dParams::square(1, 0, 2), [7, 7], [3, 3], [3, 3]),
            (Conv2dParams { stride: [2, 1], padding: [1, 0], dilation: [1, 2] }, [5, 9], [3, 2], [3, 7]),
        ];
        for (params, input, kernel, want) in cases {
            assert_eq!(params.output_size(input, kernel), want, "{params:?} {input:?} {kernel:?}");
        }
    }

    #[test]
    fn valid_outputs_are_exactly_where_source_reads_the_input() {
        for (stride, padding, dilation) in [(1, 0, 1), (1, 1, 1), (2, 1, 1), (3, 2, 2), (1, 3, 1), (2, 0, 3), (1, 2, 1)]
        {
            let p = Conv2dParams::square(stride, padding, dilation);
            for (len, k_len) in [(5, 3), (7, 2), (4, 1), (9, 4), (1, 5), (2, 3)] {
                let Some(out_len) = (len + 2 * padding).checked_sub(dilation * (k_len - 1) + 1).map(|v| v / stride + 1)
                else {
                    continue;
                };
                for k in 0..k_len {
                    let want: Vec<usize> = (0..out_len).filter(|&o| p.source(0, o, k, len).is_some()).collect();
                    let range = p.valid_outputs(0, k, out_len, len);
                    assert!(range.end <= out_len, "{p:?}, len {len}, tap {k}: {range:?} leaves 0..{out_len}");
                    assert_eq!(range.collect::<Vec<_>>(), want, "{p:?}, len {len}, tap {k} of {k_len}");
                }
            }
        }
    }

    #[test]
    fn source_skips_the_padding() {
        let p = Conv2dParams::square(2, 1, 1);
        assert_eq!(p.source(0, 0, 0, 5), None);
        assert_eq!(p.source(0, 0, 1, 5), Some(0));
        assert_eq!(p.source(0, 2, 2, 5), None);
        assert_eq!(p.source(0, 2, 1, 5), Some(4));
    }
}
