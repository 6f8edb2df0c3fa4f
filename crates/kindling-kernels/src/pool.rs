//! Max and average pooling over each channel plane, forward and backward.
//!
//! Max pooling keeps, for every output, the flat input index of the value it took (the
//! argmax). Its backward pass is then a scatter, sometimes called max-unpooling: each output
//! gradient goes to the one input that won its window, and every other input gets nothing.
//! Average pooling spreads each output gradient evenly over its window.

use crate::Tensor4;

/// Window size, stride and padding of a pooling layer, each as `[along h, along w]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2dParams {
    /// Window height and width (at least 1).
    pub kernel: [usize; 2],
    /// Step between windows (at least 1).
    pub stride: [usize; 2],
    /// Padding on each side, at most half the window, as PyTorch requires. Max pooling pads
    /// with `-inf` (padding never wins); average pooling pads with zeros and still divides by
    /// the full window (PyTorch's default `count_include_pad=True`).
    pub padding: [usize; 2],
}

impl Pool2dParams {
    /// A `kernel` window with stride equal to the window and no padding: PyTorch's default.
    pub fn new(kernel: [usize; 2]) -> Self {
        Self { kernel, stride: kernel, padding: [0, 0] }
    }

    /// `[batch, c, oh, ow]` for an input of `shape`, `oh = (h + 2p - k) / s + 1`.
    ///
    /// # Panics
    ///
    /// When a window or stride is 0, the padding exceeds half a window, or the window does
    /// not fit the padded input.
    pub fn output_shape(&self, shape: [usize; 4]) -> [usize; 4] {
        let [n, c, h, w] = shape;
        let [oh, ow] = [(0, h), (1, w)].map(|(axis, len)| {
            let (k, s, p) = (self.kernel[axis], self.stride[axis], self.padding[axis]);
            assert!(k > 0 && s > 0, "pooling window and stride must be at least 1, got {self:?}");
            assert!(2 * p <= k, "padding {p} is more than half the window {k}");
            assert!(len + 2 * p >= k, "a window of {k} does not fit an input of {len} with padding {p}");
            (len + 2 * p - k) / s + 1
        });
        [n, c, oh, ow]
    }

    /// The input positions (flat offsets within one plane) of window `(oy, ox)`, skipping
    /// the padding.
    fn window(&self, oy: usize, ox: usize, h: usize, w: usize) -> impl Iterator<Item = usize> + use<> {
        let [kh, kw] = self.kernel;
        let ([sy, sx], [py, px]) = (self.stride, self.padding);
        let rows = (0..kh).filter_map(move |ky| (oy * sy + ky).checked_sub(py).filter(|&y| y < h));
        rows.flat_map(move |y| {
            (0..kw).filter_map(move |kx| (ox * sx + kx).checked_sub(px).filter(|&x| x < w)).map(move |x| y * w + x)
        })
    }
}

/// The result of [`max_pool2d`]: the pooled values and where each came from.
#[derive(Clone, Debug, PartialEq)]
pub struct MaxPool2d {
    /// `[batch, c, oh, ow]`.
    pub output: Tensor4,
    /// For each output value, in the same order, the flat index into the input's data of the
    /// value it took. On ties the first in row-major window order wins.
    pub argmax: Vec<usize>,
}

/// Max pooling of every channel plane of `x`.
pub fn max_pool2d(x: &Tensor4, params: &Pool2dParams) -> MaxPool2d {
    let out_shape = params.output_shape(x.shape());
    let [batch, channels, oh, ow] = out_shape;
    let [_, _, h, w] = x.shape();
    let mut output = Vec::with_capacity(out_shape.iter().product());
    let mut argmax = Vec::with_capacity(output.capacity());
    for plane in 0..batch * channels {
        let base = plane * h * w;
        let values = &x.data()[base..][..h * w];
        for oy in 0..oh {
            for ox in 0..ow {
                let (mut best, mut at) = (f32::NEG_INFINITY, None);
                for i in params.window(oy, ox, h, w) {
                    // `at.is_none()` takes the first value even if it is -inf or NaN.
                    if values[i] > best || at.is_none() {
                        (best, at) = (values[i], Some(i));
                    }
                }
                let at = at.expect("the padding is at most half a window, so every window meets the input");
                output.push(best);
                argmax.push(base + at);
            }
        }
    }
    MaxPool2d { output: Tensor4::from_vec(out_shape, output), argmax }
}

/// The gradient of max pooling with respect to its input: each output gradient added at its
/// argmax (overlapping windows that share a winner add up), zeros elsewhere.
///
/// # Panics
///
/// When `argmax` and `grad_out` differ in length or an index lies outside `input_shape`.
pub fn max_pool2d_backward(grad_out: &Tensor4, argmax: &[usize], input_shape: [usize; 4]) -> Tensor4 {
    assert_eq!(grad_out.data().len(), argmax.len(), "one argmax per output gradient");
    let mut grad_x = Tensor4::zeros(input_shape);
    let gx = grad_x.data_mut();
    for (&g, &i) in grad_out.data().iter().zip(argmax) {
        gx[i] += g;
    }
    grad_x
}

/// Average pooling of every channel plane of `x`; windows that overlap the padding count the
/// padded zeros (the divisor is always `kh * kw`).
pub fn avg_pool2d(x: &Tensor4, params: &Pool2dParams) -> Tensor4 {
    let out_shape = params.output_shape(x.shape());
    let [batch, channels, oh, ow] = out_shape;
    let [_, _, h, w] = x.shape();
    let scale = 1.0 / (params.kernel[0] * params.kernel[1]) as f32;
    let mut output = Vec::with_capacity(out_shape.iter().product());
    for values in x.data().chunks_exact(h * w).take(batch * channels) {
        for oy in 0..oh {
            for ox in 0..ow {
                output.push(params.window(oy, ox, h, w).map(|i| values[i]).sum::<f32>() * scale);
            }
        }
    }
    Tensor4::from_vec(out_shape, output)
}

/// The gradient of average pooling with respect to its input: each output gradient divided
/// by the window size and added to every input in its window.
///
/// # Panics
///
/// When `grad_out` is not shaped like the pooled output of `input_shape`.
pub fn avg_pool2d_backward(grad_out: &Tensor4, input_shape: [usize; 4], params: &Pool2dParams) -> Tensor4 {
    let [_, _, oh, ow] = params.output_shape(input_shape);
    assert_eq!(
        grad_out.shape(),
        params.output_shape(input_shape),
        "the output gradient must be shaped like the output"
    );
    let [_, _, h, w] = input_shape;
    let scale = 1.0 / (params.kernel[0] * params.kernel[1]) as f32;
    let mut grad_x = Tensor4::zeros(input_shape);
    for (gx, gs) in grad_x.data_mut().chunks_exact_mut(h * w).zip(grad_out.data().chunks_exact(oh * ow)) {
        for oy in 0..oh {
            for ox in 0..ow {
                let g = gs[oy * ow + ox] * scale;
                params.window(oy, ox, h, w).for_each(|i| gx[i] += g);
            }
        }
    }
    grad_x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_pool_keeps_the_winner_and_unpools_onto_it() {
        #[rustfmt::skip]
        let x = Tensor4::from_vec([1, 1, 4, 4], vec![
            1.0, 5.0,  2.0, 0.0,
            3.0, 4.0,  8.0, 7.0,
            0.0, 0.0, -1.0, -2.0,
            9.0, 0.0, -4.0, -3.0,
        ]);
        let pooled = max_pool2d(&x, &Pool2dParams::new([2, 2]));
        assert_eq!(pooled.output.data(), [5.0, 8.0, 9.0, -1.0]);
        assert_eq!(pooled.argmax, [1, 6, 12, 10]);
        let back = max_pool2d_backward(
            &Tensor4::from_vec([1, 1, 2, 2], vec![10.0, 20.0, 30.0, 40.0]),
            &pooled.argmax,
            x.shape(),
        );
        #[rustfmt::skip]
        let want = [
            0.0, 10.0, 0.0, 0.0,
            0.0,  0.0, 20.0, 0.0,
            0.0,  0.0, 40.0, 0.0,
            30.0, 0.0, 0.0, 0.0,
        ];
        assert_eq!(back.data(), want);
    }

    #[test]
    fn avg_pool_counts_padding_in_the_divisor() {
        let x = Tensor4::from_vec([1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]);
        let params = Pool2dParams { kernel: [2, 2], stride: [2, 2], padding: [1, 1] };
        let out = avg_pool2d(&x, &params);
        assert_eq!(out.data(), [0.25, 0.5, 0.75, 1.0]);
        let back = avg_pool2d_backward(&Tensor4::from_vec([1, 1, 2, 2], vec![4.0; 4]), x.shape(), &params);
        assert_eq!(back.data(), [1.0; 4]);
    }
}
