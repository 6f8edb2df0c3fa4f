//! The direct weight gradient for 3 x 3 kernels: the output gradient laid out position-major,
//! up to 48 output channels x 9 taps accumulating in registers per input channel.

use rayon::prelude::*;

use super::{LANES, avx512, has_avx512};
use crate::Geometry;
use crate::im2col::sum_pieces;
use crate::scratch::Buf;

/// Taps of the weight-gradient kernel: 3 x 3 only.
const WT: usize = 9;
/// Vectors of output channels per register block of the weight gradient: 3 x 16 channels x 9
/// taps = 27 accumulators, plus 3 output-gradient vectors and a broadcast input value.
const WV: usize = 3;

impl Geometry {
    /// Whether the weight gradient runs direct (see `weight_grad_direct`): 3 x 3 kernels,
    /// stride 1, no dilation, at most a third more positions than pixels, and AVX-512.
    pub fn direct_weight_grad(&self) -> bool {
        let l = self.layout();
        self.stride == [1, 1]
            && self.dilation == [1, 1]
            && self.kernel == [3, 3]
            && self.input[0] >= 8
            && l.positions * 3 <= self.pixels() * 4
            && has_avx512()
    }
}

/// `dW[o, c, t] = sum over images b and positions j of dY_b[o, j] * padded_b[c][j + offset_t]`.
/// Per image, the output gradient is laid out position-major on the padded grid (`[j][o]`, 16
/// output channels to a vector, zero at dropped positions), and for each input channel and
/// block of up to 48 output channels, all 9 taps accumulate in registers over every position:
/// 3 vector loads and 9 broadcast input values feed 27 multiply-adds, with no column matrix and
/// no horizontal sums. Images are split into a fixed number of pieces (whatever the threads,
/// so the sum is the same on any pool), each with its own `[c][t][o]` accumulator, added up
/// in order and transposed to `[o][c][t]` at the end.
pub(crate) fn weight_grad_direct(x: &[f32], dy: &[f32], n: usize, out_channels: usize, g: &Geometry) -> Vec<f32> {
    let ([c, h, wd], [oh, ow], l) = (g.input, g.output, g.layout());
    let (image, pixels) = (c * h * wd, oh * ow);
    let lanes = out_channels.div_ceil(LANES) * LANES;
    let per = crate::im2col::batch_piece(n);
    let partials: Vec<Vec<f32>> = (0..n.div_ceil(per))
        .into_par_iter()
        .map(|worker| {
            let mut dw = vec![0.0f32; c * WT * lanes];
            let (mut padded, mut grads) = (Buf::zeroed(c * l.plane), Buf::zeroed(l.positions * lanes));
            for b in (worker * per)..((worker + 1) * per).min(n) {
                g.pad_into(&x[b * image..][..image], &mut padded, l.plane);
                // Row by row, so the positions written for one output row (`ow x lanes` values)
                // stay in cache while every channel's row is read into them.
                let dy = &dy[b * out_channels * pixels..][..out_channels * pixels];
                for oy in 0..oh {
                    let grads = &mut grads[oy * l.wp * lanes..][..ow * lanes];
                    for (o, row) in dy.chunks_exact(pixels).map(|p| &p[oy * ow..][..ow]).enumerate() {
                        for (at, v) in grads.chunks_exact_mut(lanes).zip(row) {
                            at[o] = *v;
                        }
                    }
                }
                avx512(WeightImage { padded: &padded, grads: &grads, plane: l.plane, lanes, wp: l.wp, dw: &mut dw });
            }
            dw
        })
        .collect();
    let total = sum_pieces(partials, c * WT * lanes);
    let mut dw = vec![0.0f32; out_channels * c * WT];
    dw.par_chunks_mut(c * WT).enumerate().for_each(|(o, dw)| {
        for (d, row) in dw.iter_mut().zip(total.chunks_exact(lanes)) {
            *d = row[o];
        }
    });
    dw
}

/// One image's contribution to `dw` (`[c][t][lanes]`), added on.
struct WeightImage<'a> {
    /// `channels` padded planes.
    padded: &'a [f32],
    /// The output gradient on the padded grid, position-major: `[positions][lanes]`.
    grads: &'a [f32],
    plane: usize,
    /// Output channels rounded up to whole vectors.
    lanes: usize,
    /// Padded row width.
    wp: usize,
    dw: &'a mut [f32],
}

impl pulp::WithSimd for WeightImage<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        assert_eq!(S::F32_LANES, LANES, "the register block is sized for 16-lane vectors");
        let WeightImage { padded, grads, plane, lanes, wp, dw } = self;
        let vectors = lanes / LANES;
        for (input, dw) in padded.chunks_exact(plane).zip(dw.chunks_exact_mut(WT * lanes)) {
            let mut first = 0;
            while first < vectors {
                match vectors - first {
                    1 => taps::<S, 1>(simd, input, grads, lanes, first, wp, dw),
                    2 => taps::<S, 2>(simd, input, grads, lanes, first, wp, dw),
                    _ => taps::<S, WV>(simd, input, grads, lanes, first, wp, dw),
                }
                first += WV.min(vectors - first);
            }
        }
    }
}

/// One input channel and `V` vectors of output channels from vector `first` on: `dw[t][o] +=
/// sum over j of grads[j][o] * input[j + offsets[t]]`.
#[inline(always)]
fn taps<S: pulp::Simd, const V: usize>(
    simd: S,
    input: &[f32],
    grads: &[f32],
    lanes: usize,
    first: usize,
    wp: usize,
    dw: &mut [f32],
) {
    let load = |s: &[f32]| -> S::f32s { pulp::bytemuck::cast_slice::<f32, S::f32s>(&s[..LANES])[0] };
    let at = |t: usize, v: usize| t * lanes + (first + v) * LANES;
    let mut acc: [[S::f32s; V]; WT] = std::array::from_fn(|t| std::array::from_fn(|v| load(&dw[at(t, v)..])));
    // The three kernel rows as windows of three values sliding along the plane in step with
    // the positions, so the taps are constant indices into them.
    let rows = input[..].windows(3).zip(input[wp..].windows(3)).zip(input[2 * wp..].windows(3));
    for (row, ((r0, r1), r2)) in grads.chunks_exact(lanes).zip(rows) {
        let d: [S::f32s; V] = std::array::from_fn(|v| load(&row[(first + v) * LANES..]));
        let taps = [r0[0], r0[1], r0[2], r1[0], r1[1], r1[2], r2[0], r2[1], r2[2]];
        for (acc, tap) in acc.iter_mut().zip(taps) {
            let x = simd.splat_f32s(tap);
            for (a, d) in acc.iter_mut().zip(&d) {
                *a = simd.mul_add_e_f32s(*d, x, *a);
            }
        }
    }
    for (t, acc) in acc.iter().enumerate() {
        for (v, a) in acc.iter().enumerate() {
            let dst: &mut [S::f32s] = pulp::bytemuck::cast_slice_mut(&mut dw[at(t, v)..][..LANES]);
            dst[0] = *a;
        }
    }
}
