//! im2col + GEMM, the convolution path for every geometry and CPU: per image, the receptive
//! fields become the columns of a matrix and the convolution one product with the weights.
//! Where rows are short ([`Geometry::wide`], [`Geometry::wide_forward`]) the matrix is built
//! over whole padded rows instead ("wide"), so each of its rows is one contiguous slice.

use rayon::prelude::*;

use kindling_gemm::{MatRef, sgemm};

use crate::Geometry;
use crate::epilogue::Epilogue;
use crate::scratch::Buf;
use crate::simd::simd;

impl Geometry {
    /// Fills `cols` (`patch()` rows by `pixels()` columns) with the receptive fields of
    /// `image` (`c * h * w` values): row `(c * kh + ky) * kw + kx`, column `oy * ow + ox`
    /// holds `image[c, oy·s + ky·d - p, ox·s + kx·d - p]`, or 0 in the padding.
    pub fn im2col(&self, image: &[f32], cols: &mut [f32]) {
        let [c, h, w] = self.input;
        let [kh, kw] = self.kernel;
        let [oh, ow] = self.output;
        assert_eq!(image.len(), c * h * w);
        assert_eq!(cols.len(), self.patch() * self.pixels());
        let mut rows = cols.chunks_exact_mut(oh * ow);
        for ch in 0..c {
            let plane = &image[ch * h * w..][..h * w];
            for ky in 0..kh {
                for kx in 0..kw {
                    let row = rows.next().expect("one row per tap");
                    let std::ops::Range { start: lo, end: hi } = self.valid_columns(kx);
                    for (oy, out) in row.chunks_exact_mut(ow).enumerate() {
                        let Some(iy) = self.source(0, oy, ky) else {
                            out.fill(0.0);
                            continue;
                        };
                        out[..lo].fill(0.0);
                        out[hi.max(lo)..].fill(0.0);
                        if hi <= lo {
                            continue;
                        }
                        let input = &plane[iy * w..][..w];
                        let first = lo * self.stride[1] + kx * self.dilation[1] - self.pad[1];
                        if self.stride[1] == 1 {
                            out[lo..hi].copy_from_slice(&input[first..first + hi - lo]);
                        } else {
                            out[lo..hi]
                                .iter_mut()
                                .zip(input[first..].iter().step_by(self.stride[1]))
                                .for_each(|(o, i)| *o = *i);
                        }
                    }
                }
            }
        }
    }

    /// The wide column matrix (`patch()` rows of `wide_pixels()`) of a padded image: row
    /// `(c, ky, kx)` is the padded plane `c` from offset `ky * wp + kx` on.
    fn im2col_wide(&self, padded: &[f32], cols: &mut [f32]) {
        let ([_, wp], plane, n) = (self.padded(), self.padded_plane(), self.wide_pixels());
        let taps = self.kernel[0] * self.kernel[1];
        for (r, row) in cols.chunks_exact_mut(n).enumerate() {
            let (ch, t) = (r / taps, r % taps);
            let at = ch * plane + (t / self.kernel[1]) * wp + t % self.kernel[1];
            row.copy_from_slice(&padded[at..at + n]);
        }
    }

    /// Wide rows back to output planes, dropping the discarded columns.
    fn narrow(&self, wide: &[f32], planes: &mut [f32]) {
        let ([oh, ow], wp, n) = (self.output, self.padded()[1], self.wide_pixels());
        for (row, plane) in wide.chunks_exact(n).zip(planes.chunks_exact_mut(oh * ow)) {
            for (src, dst) in row.chunks_exact(wp).zip(plane.chunks_exact_mut(ow)) {
                dst.copy_from_slice(&src[..ow]);
            }
        }
    }

    /// The adjoint of a wide column matrix (row `(c, ky, kx)` being the padded plane `c` from
    /// offset `ky * wp + kx` on): adds each row of `cols` onto its slice of the padded planes
    /// `padded` (which the caller zeroes first).
    fn col2im_wide(&self, cols: &[f32], padded: &mut [f32]) {
        let ([_, wp], plane, n) = (self.padded(), self.padded_plane(), self.wide_pixels());
        let taps = self.kernel[0] * self.kernel[1];
        for (r, row) in cols.chunks_exact(n).enumerate() {
            let (ch, t) = (r / taps, r % taps);
            let at = ch * plane + (t / self.kernel[1]) * wp + t % self.kernel[1];
            simd(|| padded[at..at + n].iter_mut().zip(row).for_each(|(d, g)| *d += g));
        }
    }

    /// The interior of padded planes, as an image (`c * h * w` values).
    fn crop(&self, padded: &[f32], image: &mut [f32]) {
        let [c, h, w] = self.input;
        let ([_, wp], plane) = (self.padded(), self.padded_plane());
        for ch in 0..c {
            for iy in 0..h {
                let at = ch * plane + (iy + self.pad[0]) * wp + self.pad[1];
                image[(ch * h + iy) * w..][..w].copy_from_slice(&padded[at..at + w]);
            }
        }
    }

    /// Output planes (`channels` of `oh x ow`) to wide rows (`channels` of `oh x wp`), leaving
    /// the discarded columns as they are (zero).
    fn widen(&self, planes: &[f32], wide: &mut [f32]) {
        let ([oh, ow], wp, n) = (self.output, self.padded()[1], self.wide_pixels());
        for (plane, row) in planes.chunks_exact(oh * ow).zip(wide.chunks_exact_mut(n)) {
            for (src, dst) in plane.chunks_exact(ow).zip(row.chunks_exact_mut(wp)) {
                dst[..ow].copy_from_slice(src);
            }
        }
    }

    /// The adjoint of [`im2col`](Self::im2col): adds every entry of `cols` onto the input
    /// pixel it was copied from, into `image`; entries from the padding are dropped.
    pub fn col2im(&self, cols: &[f32], image: &mut [f32]) {
        let [c, h, w] = self.input;
        let [kh, kw] = self.kernel;
        let [oh, ow] = self.output;
        assert_eq!(image.len(), c * h * w);
        assert_eq!(cols.len(), self.patch() * self.pixels());
        let mut rows = cols.chunks_exact(oh * ow);
        for ch in 0..c {
            let plane = &mut image[ch * h * w..][..h * w];
            for ky in 0..kh {
                for kx in 0..kw {
                    let row = rows.next().expect("one row per tap");
                    let std::ops::Range { start: lo, end: hi } = self.valid_columns(kx);
                    if hi <= lo {
                        continue;
                    }
                    for (oy, grads) in row.chunks_exact(ow).enumerate() {
                        let Some(iy) = self.source(0, oy, ky) else { continue };
                        let input = &mut plane[iy * w..][..w];
                        let first = lo * self.stride[1] + kx * self.dilation[1] - self.pad[1];
                        if self.stride[1] == 1 {
                            // Contiguous on both sides: plain slices, so the adds vectorise.
                            let taps = &mut input[first..first + hi - lo];
                            taps.iter_mut().zip(&grads[lo..hi]).for_each(|(i, g)| *i += g);
                        } else {
                            let taps = input[first..].iter_mut().step_by(self.stride[1]);
                            taps.zip(&grads[lo..hi]).for_each(|(i, g)| *i += g);
                        }
                    }
                }
            }
        }
    }
}

/// [`forward_values`](crate::forward_values) by im2col + GEMM whatever the CPU and the
/// geometry (the path where the direct kernel does not apply).
pub fn forward_im2col(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    n: usize,
    out_channels: usize,
    g: &Geometry,
) -> Vec<f32> {
    forward_im2col_then(x, w, bias, n, out_channels, g, &Epilogue::NONE)
}

/// [`forward_im2col`], each image's output then through `epilogue`.
pub(crate) fn forward_im2col_then(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    n: usize,
    out_channels: usize,
    g: &Geometry,
    epilogue: &Epilogue,
) -> Vec<f32> {
    let [c, h, wd] = g.input;
    let (image, patch, pixels) = (c * h * wd, g.patch(), g.pixels());
    let kept = epilogue.output(g.output).iter().product::<usize>();
    let mut y = vec![0.0f32; n * out_channels * kept];
    if g.wide_forward() {
        let wide = g.wide_pixels();
        // Per task: the padded image, its column matrix and the wide output.
        let scratch =
            || (Buf::zeroed(c * g.padded_plane()), Buf::reused(patch * wide), Buf::reused(out_channels * wide));
        y.par_chunks_mut(out_channels * kept).enumerate().for_each_init(scratch, |(padded, cols, y_wide), (b, out)| {
            g.pad_into(&x[b * image..][..image], padded, g.padded_plane());
            g.im2col_wide(padded, cols);
            if let Some(bias) = bias {
                y_wide.chunks_exact_mut(wide).zip(bias).for_each(|(row, v)| row.fill(*v));
            }
            sgemm(MatRef::new(w, out_channels, patch), MatRef::new(cols, patch, wide), y_wide, bias.is_some(), 1);
            epilogue.image(b, out, out_channels, g.output, |out| g.narrow(y_wide, out));
        });
        return y;
    }
    y.par_chunks_mut(out_channels * kept).enumerate().for_each_init(
        || Buf::reused(patch * pixels),
        |cols, (b, out)| {
            g.im2col(&x[b * image..][..image], cols);
            epilogue.image(b, out, out_channels, g.output, |out| {
                if let Some(bias) = bias {
                    out.chunks_exact_mut(pixels).zip(bias).for_each(|(row, v)| row.fill(*v));
                }
                sgemm(MatRef::new(w, out_channels, patch), MatRef::new(cols, patch, pixels), out, bias.is_some(), 1);
            });
        },
    );
    y
}

/// [`input_grad_values`](crate::input_grad_values) by GEMM + col2im whatever the CPU and the geometry.
pub fn input_grad_im2col(dy: &[f32], w: &[f32], n: usize, out_channels: usize, g: &Geometry) -> Vec<f32> {
    let [c, h, wd] = g.input;
    let (image, patch, pixels) = (c * h * wd, g.patch(), g.pixels());
    let mut dx = vec![0.0f32; n * image];
    if g.wide() {
        let wide = g.wide_pixels();
        // Per task: the output gradient widened (its discarded columns stay zero, so they add
        // nothing), the column-matrix gradient and the padded input gradient.
        let scratch =
            || (Buf::zeroed(out_channels * wide), Buf::reused(patch * wide), Buf::reused(c * g.padded_plane()));
        dx.par_chunks_mut(image).enumerate().for_each_init(scratch, |(dy_wide, cols, padded), (b, out)| {
            g.widen(&dy[b * out_channels * pixels..][..out_channels * pixels], dy_wide);
            sgemm(MatRef::new(w, out_channels, patch).t(), MatRef::new(dy_wide, out_channels, wide), cols, false, 1);
            padded.fill(0.0);
            g.col2im_wide(cols, padded);
            g.crop(padded, out);
        });
        return dx;
    }
    dx.par_chunks_mut(image).enumerate().for_each_init(
        || Buf::reused(patch * pixels),
        |cols, (b, out)| {
            let grad = MatRef::new(&dy[b * out_channels * pixels..][..out_channels * pixels], out_channels, pixels);
            sgemm(MatRef::new(w, out_channels, patch).t(), grad, cols, false, 1);
            g.col2im(cols, out);
        },
    );
    dx
}

/// Pieces a batch's weight-gradient sum is split into: a fixed count, whatever the number of
/// threads, so the partial sums (added up in order afterwards) and therefore the trained
/// weights are bit for bit the same on 1, 2 or 16 threads. 16 keeps 16 threads busy at the
/// usual batch sizes; the extra partials cost well under 1% of a step.
const BATCH_PIECES: usize = 16;

/// Images per piece of a batch of `n` (see [`BATCH_PIECES`]); at least 1.
pub(crate) fn batch_piece(n: usize) -> usize {
    n.div_ceil(BATCH_PIECES).max(1)
}

/// The pieces' partial sums (each `len` values) added up in piece order, value by value:
/// `((p0 + p1) + p2) + ...`, the order of a sequential fold, so bit for bit the same on any
/// number of threads. The values are split between the pool's threads; one thread alone read
/// every partial while the others waited (16 partials of 147,456 values for `vgg3`'s
/// 128-channel weight gradient).
pub(crate) fn sum_pieces(partials: Vec<Vec<f32>>, len: usize) -> Vec<f32> {
    /// Values per task.
    const CHUNK: usize = 1 << 13;
    let mut pieces = partials.into_iter();
    let Some(mut total) = pieces.next() else {
        return vec![0.0; len];
    };
    let rest: Vec<Vec<f32>> = pieces.collect();
    total.par_chunks_mut(CHUNK).enumerate().for_each(|(i, total)| {
        for piece in &rest {
            total.iter_mut().zip(&piece[i * CHUNK..]).for_each(|(a, b)| *a += b);
        }
    });
    total
}

/// [`weight_grad_values`](crate::weight_grad_values) by im2col + GEMM whatever the CPU and the geometry.
pub fn weight_grad_im2col(x: &[f32], dy: &[f32], n: usize, out_channels: usize, g: &Geometry) -> Vec<f32> {
    let [c, h, w] = g.input;
    let (image, patch, pixels) = (c * h * w, g.patch(), g.pixels());
    assert_eq!(x.len(), n * image);
    assert_eq!(dy.len(), n * out_channels * pixels);
    let per = batch_piece(n);
    let partials: Vec<Vec<f32>> = (0..n.div_ceil(per))
        .into_par_iter()
        .map(|t| {
            let mut dw = vec![0.0f32; out_channels * patch];
            let images = (t * per)..((t + 1) * per).min(n);
            if g.wide_forward() {
                let wide = g.wide_pixels();
                let (mut padded, mut cols) = (Buf::zeroed(c * g.padded_plane()), Buf::reused(patch * wide));
                // The output gradient widened: its discarded columns stay zero, so they add nothing.
                let mut dy_wide = Buf::zeroed(out_channels * wide);
                for b in images {
                    g.pad_into(&x[b * image..][..image], &mut padded, g.padded_plane());
                    g.im2col_wide(&padded, &mut cols);
                    g.widen(&dy[b * out_channels * pixels..][..out_channels * pixels], &mut dy_wide);
                    let grad = MatRef::new(&dy_wide, out_channels, wide);
                    sgemm(grad, MatRef::new(&cols, patch, wide).t(), &mut dw, true, 1);
                }
                return dw;
            }
            let mut cols = Buf::reused(patch * pixels);
            for b in images {
                g.im2col(&x[b * image..][..image], &mut cols);
                let grad = MatRef::new(&dy[b * out_channels * pixels..][..out_channels * pixels], out_channels, pixels);
                sgemm(grad, MatRef::new(&cols, patch, pixels).t(), &mut dw, true, 1);
            }
            dw
        })
        .collect();
    sum_pieces(partials, out_channels * patch)
}

#[cfg(test)]
mod tests {
    use super::sum_pieces;

    /// The pieces' sum on the pool's threads is the sequential fold's, bit for bit, on any
    /// number of threads: the values are chosen so that the sum depends on the order in which
    /// the pieces are added, and there are more of them than one task takes.
    #[test]
    fn pieces_are_summed_in_order_on_any_number_of_threads() {
        let len = 3 * (1 << 13) + 5;
        let value = |p: usize, i: usize| {
            let base = [1e8f32, 1.0, -1e8, 0.3][(p + i) % 4];
            base * (1.0 + i as f32 * 1e-6)
        };
        let pieces: Vec<Vec<f32>> = (0..16).map(|p| (0..len).map(|i| value(p, i)).collect()).collect();
        let fold = pieces.iter().skip(1).fold(pieces[0].clone(), |mut a, b| {
            a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
            a
        });
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let sum = pool.install(|| sum_pieces(pieces.clone(), len));
            assert!(sum.iter().zip(&fold).all(|(a, b)| a.to_bits() == b.to_bits()), "{threads} threads");
        }
        assert_eq!(sum_pieces(Vec::new(), 4), vec![0.0; 4]);
    }
}
