//! The direct forward pass by rows, for outputs exactly 7 wide (where the flattened layout
//! computes 64 positions for 49): output channels in the vector lanes, one output row of 7
//! pixels per register block.

use rayon::prelude::*;

use super::{LANES, avx512, has_avx512};
use crate::Geometry;
use crate::epilogue::Epilogue;
use crate::scratch::Buf;

/// Output pixels per register block of the row kernel: one whole output row of 7.
const ROW: usize = 7;
/// Vectors of output channels per register block of the row kernel: 7 pixels x 3 vectors = 21
/// accumulators, plus 3 weight vectors and a broadcast input value.
const RV: usize = 3;

impl Geometry {
    /// Whether the forward pass runs with the row kernel (`forward_rows`): stride 1, no
    /// dilation, output rows of exactly 7 pixels (`vgg3`'s last block), and AVX-512. There the
    /// flattened layout of [`direct`](Self::direct) would compute 64 positions for 49.
    pub fn direct_rows(&self) -> bool {
        self.stride == [1, 1] && self.dilation == [1, 1] && self.output[1] == ROW && has_avx512()
    }
}

/// The forward convolution with output channels in the vector lanes: per image and output row,
/// a block of 7 pixels x 48 output channels accumulates in registers over every input channel
/// and tap (3 vector loads of weights and 7 broadcast input values per 21 multiply-adds), with
/// no dropped positions; the pixel-major result is transposed into the output planes.
pub(crate) fn forward_rows(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    n: usize,
    out_channels: usize,
    g: &Geometry,
    epilogue: &Epilogue,
) -> Vec<f32> {
    let ([c, h, wd], [oh, ow], [kh, kw]) = (g.input, g.output, g.kernel);
    let (image, pixels, taps) = (c * h * wd, oh * ow, kh * kw);
    let (hp, wp) = (oh + kh - 1, ow + kw - 1);
    let plane = hp * wp;
    let lanes = out_channels.div_ceil(LANES) * LANES;
    // [c][t][lanes], zero past the last output channel.
    let mut packed = vec![0.0f32; c * taps * lanes];
    for (o, filter) in w.chunks_exact(c * taps).enumerate() {
        for (ct, v) in filter.iter().enumerate() {
            packed[ct * lanes + o] = *v;
        }
    }
    let mut bias_lanes = vec![0.0f32; lanes];
    if let Some(b) = bias {
        bias_lanes[..out_channels].copy_from_slice(b);
    }
    let offsets = g.tap_offsets();
    let kept = epilogue.output(g.output).iter().product::<usize>();
    let mut y = vec![0.0f32; n * out_channels * kept];
    let scratch = || (Buf::zeroed(c * plane), Buf::zeroed(pixels * lanes));
    y.par_chunks_mut(out_channels * kept).enumerate().for_each_init(scratch, |(padded, rows), (b, out)| {
        g.pad_into(&x[b * image..][..image], padded, plane);
        avx512(Rows { padded, plane, wp, packed: &packed, offsets: &offsets, bias: &bias_lanes, out: rows });
        epilogue.image(b, out, out_channels, g.output, |out| {
            for (o, dst) in out.chunks_exact_mut(pixels).enumerate() {
                dst.iter_mut().zip(rows.chunks_exact(lanes)).for_each(|(d, r)| *d = r[o]);
            }
        });
    });
    y
}

/// One image through the row kernel: `out[p][o] = bias[o] + sum over c, t of packed[c][t][o] *
/// padded[c][row(p) + offsets[t] + col(p)]`, `out` pixel-major (`[pixels][lanes]`).
struct Rows<'a> {
    padded: &'a [f32],
    plane: usize,
    wp: usize,
    packed: &'a [f32],
    offsets: &'a [usize],
    bias: &'a [f32],
    out: &'a mut [f32],
}

impl pulp::WithSimd for Rows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(mut self, simd: S) {
        assert_eq!(S::F32_LANES, LANES, "the register block is sized for 16-lane vectors");
        let vectors = self.bias.len() / LANES;
        let mut first = 0;
        while first < vectors {
            match vectors - first {
                1 => self.block::<S, 1>(simd, first),
                2 => self.block::<S, 2>(simd, first),
                _ => self.block::<S, RV>(simd, first),
            }
            first += RV.min(vectors - first);
        }
    }
}

impl Rows<'_> {
    /// Output channel vectors `first..first + V`, every output row.
    #[inline(always)]
    fn block<S: pulp::Simd, const V: usize>(&mut self, simd: S, first: usize) {
        let (padded, plane, wp, packed, offsets, bias) =
            (self.padded, self.plane, self.wp, self.packed, self.offsets, self.bias);
        let lanes = bias.len();
        let taps = offsets.len();
        let load = |s: &[f32]| -> S::f32s { pulp::bytemuck::cast_slice::<f32, S::f32s>(&s[..LANES])[0] };
        let out_rows = self.out.len() / (ROW * lanes);
        for oy in 0..out_rows {
            let mut acc: [[S::f32s; V]; ROW] = [std::array::from_fn(|v| load(&bias[(first + v) * LANES..])); ROW];
            for (input, weights) in padded.chunks_exact(plane).zip(packed.chunks_exact(taps * lanes)) {
                let input = &input[oy * wp..];
                for (&offset, w) in offsets.iter().zip(weights.chunks_exact(lanes)) {
                    let xs: &[f32; ROW] = input[offset..offset + ROW].try_into().expect("a row of 7");
                    let wv: [S::f32s; V] = std::array::from_fn(|v| load(&w[(first + v) * LANES..]));
                    for (acc, &x) in acc.iter_mut().zip(xs) {
                        let x = simd.splat_f32s(x);
                        for (a, w) in acc.iter_mut().zip(&wv) {
                            *a = simd.mul_add_e_f32s(*w, x, *a);
                        }
                    }
                }
            }
            for (p, acc) in acc.iter().enumerate() {
                let at = (oy * ROW + p) * lanes + first * LANES;
                let dst: &mut [S::f32s] = pulp::bytemuck::cast_slice_mut(&mut self.out[at..at + V * LANES]);
                dst.copy_from_slice(acc);
            }
        }
    }
}
