//! The im2col method: copy every receptive field into a column of a matrix, then do one
//! matrix multiplication per image.
//!
//! For one image the column matrix has `in_c * kh * kw` rows and `oh * ow` columns (layout in
//! the crate docs). The weight, read row-major, already is the `out_c x (in_c * kh * kw)`
//! matrix, so `out = W · cols` lands directly in NCHW order. The copy costs memory traffic
//! (each input pixel is copied up to `kh * kw` times) but turns the arithmetic into a GEMM,
//! which blocks for cache and runs SIMD micro-kernels.

use super::{Conv2dGrads, Conv2dParams, check_grad_shape, check_shapes};
use crate::Tensor4;
use kindling_gemm::{MatRef, sgemm};

/// Fills `cols` (`in_c * kh * kw` rows by `oh * ow` columns, row-major) with the receptive
/// fields of image `n` of `x` for a `kernel = [kh, kw]` convolution with `params`.
///
/// Row `(c * kh + ky) * kw + kx`, column `oy * ow + ox` holds
/// `x[n, c, oy·s + ky·d - p, ox·s + kx·d - p]`, or 0 where that falls in the padding.
///
/// # Panics
///
/// When `cols` has the wrong length or the geometry does not fit.
pub fn im2col(x: &Tensor4, n: usize, kernel: [usize; 2], params: &Conv2dParams, cols: &mut [f32]) {
    let [_, in_c, h, w] = x.shape();
    let [kh, kw] = kernel;
    let [oh, ow] = params.output_size([h, w], kernel);
    assert_eq!(cols.len(), in_c * kh * kw * oh * ow, "the column matrix needs {} values", in_c * kh * kw * oh * ow);
    let image = &x.data()[n * in_c * h * w..][..in_c * h * w];
    let (sx, dx, px) = (params.stride[1], params.dilation[1], params.padding[1]);
    let mut rows = cols.chunks_exact_mut(oh * ow);
    for c in 0..in_c {
        let plane = &image[c * h * w..][..h * w];
        for ky in 0..kh {
            for kx in 0..kw {
                let row = rows.next().expect("one row per (channel, ky, kx)");
                // The columns whose tap falls inside the input, found once per tap so the copy
                // below needs no test per element; the rest are padding.
                let valid = params.valid_outputs(1, kx, ow, w);
                for (oy, out_row) in row.chunks_exact_mut(ow).enumerate() {
                    let Some(iy) = params.source(0, oy, ky, h) else {
                        out_row.fill(0.0);
                        continue;
                    };
                    out_row[..valid.start].fill(0.0);
                    out_row[valid.end..].fill(0.0);
                    if valid.is_empty() {
                        // This tap column only ever meets padding; `first` would lie past the row.
                        continue;
                    }
                    let first = valid.start * sx + kx * dx - px;
                    let input_row = &plane[iy * w..][..w];
                    if sx == 1 {
                        out_row[valid.clone()].copy_from_slice(&input_row[first..first + valid.len()]);
                    } else {
                        let taken = input_row[first..].iter().step_by(sx);
                        out_row[valid.clone()].iter_mut().zip(taken).for_each(|(v, x)| *v = *x);
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: adds every entry of `cols` back onto the input pixel it was
/// copied from, into image `n` of `grad_x`. Pixels copied into several columns receive the
/// sum; entries that came from the padding are dropped.
///
/// # Panics
///
/// When `cols` has the wrong length or the geometry does not fit.
pub fn col2im(cols: &[f32], kernel: [usize; 2], params: &Conv2dParams, grad_x: &mut Tensor4, n: usize) {
    let [_, in_c, h, w] = grad_x.shape();
    let [kh, kw] = kernel;
    let [oh, ow] = params.output_size([h, w], kernel);
    assert_eq!(cols.len(), in_c * kh * kw * oh * ow, "the column matrix needs {} values", in_c * kh * kw * oh * ow);
    let image = &mut grad_x.data_mut()[n * in_c * h * w..][..in_c * h * w];
    let (sx, dx, px) = (params.stride[1], params.dilation[1], params.padding[1]);
    let mut rows = cols.chunks_exact(oh * ow);
    for c in 0..in_c {
        let plane = &mut image[c * h * w..][..h * w];
        for ky in 0..kh {
            for kx in 0..kw {
                let row = rows.next().expect("one row per (channel, ky, kx)");
                let valid = params.valid_outputs(1, kx, ow, w);
                if valid.is_empty() {
                    continue;
                }
                for (oy, in_row) in row.chunks_exact(ow).enumerate() {
                    let Some(iy) = params.source(0, oy, ky, h) else { continue };
                    let first = valid.start * sx + kx * dx - px;
                    let input_row = plane[iy * w..][..w][first..].iter_mut().step_by(sx);
                    input_row.zip(&in_row[valid.clone()]).for_each(|(x, v)| *x += v);
                }
            }
        }
    }
}

/// The same convolution as [`conv2d_direct`](super::conv2d_direct), by im2col + GEMM on the
/// calling thread.
///
/// # Panics
///
/// When the shapes disagree (see [`Conv2dParams::output_shape`]).
pub fn conv2d_im2col(x: &Tensor4, weight: &Tensor4, bias: Option<&[f32]>, params: &Conv2dParams) -> Tensor4 {
    conv2d_im2col_with_threads(x, weight, bias, params, 1)
}

/// [`conv2d_im2col`] with the GEMM spread over `threads` threads of rayon's global pool
/// (`1` or `0`: the calling thread only). The im2col copy itself stays on one thread.
pub fn conv2d_im2col_with_threads(
    x: &Tensor4,
    weight: &Tensor4,
    bias: Option<&[f32]>,
    params: &Conv2dParams,
    threads: usize,
) -> Tensor4 {
    let out_shape = check_shapes(x, weight, bias, params);
    let [batch, out_c, oh, ow] = out_shape;
    let [_, in_c, kh, kw] = weight.shape();
    let (rows, positions) = (in_c * kh * kw, oh * ow);
    let mut cols = vec![0.0; rows * positions];
    let mut out = Tensor4::zeros(out_shape);
    let w = MatRef::new(weight.data(), out_c, rows);
    for (n, image_out) in out.data_mut().chunks_exact_mut(out_c * positions).enumerate() {
        im2col(x, n, [kh, kw], params, &mut cols);
        sgemm(w, MatRef::new(&cols, rows, positions), image_out, false, threads);
        if let Some(bias) = bias {
            for (plane, b) in image_out.chunks_exact_mut(positions).zip(bias) {
                plane.iter_mut().for_each(|v| *v += b);
            }
        }
    }
    debug_assert_eq!(out.shape(), [batch, out_c, oh, ow]);
    out
}

/// The gradients of a convolution as two GEMMs per image:
/// `dW += dY · colsᵀ` (`out_c x K` from `out_c x P` times `P x K`) and
/// `dcols = Wᵀ · dY` (`K x P`), which [`col2im`] folds back onto the input; `db` sums `dY`
/// over images and positions. `K = in_c * kh * kw`, `P = oh * ow`. The columns are rebuilt
/// from `x` rather than kept from the forward pass, trading time for memory.
///
/// # Panics
///
/// When the shapes disagree.
pub fn conv2d_backward_im2col(x: &Tensor4, weight: &Tensor4, grad_out: &Tensor4, params: &Conv2dParams) -> Conv2dGrads {
    let [_, out_c, oh, ow] = check_grad_shape(x, weight, grad_out, params);
    let [_, in_c, kh, kw] = weight.shape();
    let (rows, positions) = (in_c * kh * kw, oh * ow);
    let mut cols = vec![0.0; rows * positions];
    let mut grad_cols = vec![0.0; rows * positions];
    let mut grad_x = Tensor4::zeros(x.shape());
    let mut grad_w = Tensor4::zeros(weight.shape());
    let mut grad_b = vec![0.0; out_c];
    let w = MatRef::new(weight.data(), out_c, rows);
    for (n, dy) in grad_out.data().chunks_exact(out_c * positions).enumerate() {
        let dy_mat = MatRef::new(dy, out_c, positions);
        im2col(x, n, [kh, kw], params, &mut cols);
        sgemm(dy_mat, MatRef::new(&cols, rows, positions).t(), grad_w.data_mut(), n > 0, 1);
        sgemm(w.t(), dy_mat, &mut grad_cols, false, 1);
        col2im(&grad_cols, [kh, kw], params, &mut grad_x, n);
        for (b, plane) in grad_b.iter_mut().zip(dy.chunks_exact(positions)) {
            *b += plane.iter().sum::<f32>();
        }
    }
    Conv2dGrads { input: grad_x, weight: grad_w, bias: grad_b }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn im2col_lays_receptive_fields_out_as_columns() {
        // 1 channel, 3 x 3 input, 2 x 2 kernel: four windows, four taps each.
        let x = Tensor4::from_vec([1, 1, 3, 3], (1..=9).map(|v| v as f32).collect());
        let mut cols = vec![0.0; 16];
        im2col(&x, 0, [2, 2], &Conv2dParams::default(), &mut cols);
        #[rustfmt::skip]
        let want = [
            1.0, 2.0, 4.0, 5.0, // tap (0, 0) in each of the four windows
            2.0, 3.0, 5.0, 6.0, // tap (0, 1)
            4.0, 5.0, 7.0, 8.0, // tap (1, 0)
            5.0, 6.0, 8.0, 9.0, // tap (1, 1)
        ];
        assert_eq!(cols, want);
    }

    #[test]
    fn padding_reads_as_zeros() {
        let x = Tensor4::from_vec([1, 1, 1, 1], vec![7.0]);
        let mut cols = vec![f32::NAN; 9];
        im2col(&x, 0, [3, 3], &Conv2dParams::square(1, 1, 1), &mut cols);
        assert_eq!(cols, [0.0, 0.0, 0.0, 0.0, 7.0, 0.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn col2im_is_the_adjoint_of_im2col() {
        // <im2col(x), c> == <x, col2im(c)> for any x and c is what makes col2im the right
        // backward pass; check it on an awkward geometry.
        let params = Conv2dParams { stride: [2, 1], padding: [1, 2], dilation: [1, 2] };
        let x = Tensor4::random([2, 3, 5, 6], 11);
        let [oh, ow] = params.output_size([5, 6], [3, 2]);
        let len = 3 * 3 * 2 * oh * ow;
        let c = crate::uniform(len, 12);
        let mut cols = vec![0.0; len];
        im2col(&x, 1, [3, 2], &params, &mut cols);
        let lhs: f64 = cols.iter().zip(&c).map(|(a, b)| f64::from(a * b)).sum();
        let mut back = Tensor4::zeros(x.shape());
        col2im(&c, [3, 2], &params, &mut back, 1);
        let rhs: f64 = x.data().iter().zip(back.data()).map(|(a, b)| f64::from(a * b)).sum();
        assert!((lhs - rhs).abs() < 1e-4, "{lhs} vs {rhs}");
        assert!(back.data()[..90].iter().all(|&v| v == 0.0), "image 0 untouched");
    }
}
