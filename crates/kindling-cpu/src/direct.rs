//! Direct convolution for stride 1 and no dilation, on CPUs with AVX-512: no column matrix.
//!
//! Each image is copied once into zero-padded planes (`wp = ow + kw - 1` values a row). An
//! output position `j = oy * wp + ox` of the flattened padded grid then reads tap `(ky, kx)` of
//! input channel `c` at `padded[c][j + ky * wp + kx]`: every tap is one shifted, contiguous run
//! of the plane. The positions past `ow` in each row (`kw - 1` of them) are computed and
//! dropped; that price is bounded by the `Geometry::direct*` tests.
//!
//! - **Forward pass**: a block of 8 output channels x 32 consecutive positions lives in 16
//!   vector registers; per input channel and tap, two unaligned vector loads of the input and
//!   8 broadcast weights feed 16 fused multiply-adds.
//! - **Forward pass by rows** (outputs exactly 7 wide, where the flattened layout computes 64
//!   positions for 49): output channels in the vector lanes, 7 pixels x 48 channels in 21
//!   registers, 3 weight vectors and 7 broadcast input values per 21 multiply-adds, nothing
//!   dropped; the pixel-major result is transposed into the output planes.
//! - **Input gradient**: the flattened forward kernel, on the output gradient padded by
//!   `k - 1 - pad`, with the weights flipped and their channel axes swapped.
//! - **Weight gradient** (3 x 3 kernels): the output gradient is laid out position-major, 16
//!   output channels to a vector; per input channel, a block of up to 48 output channels x 9
//!   taps accumulates in 27 registers over every position (3 vector loads and 9 broadcast
//!   input values per 27 multiply-adds), with no horizontal sums.
//!
//! What each replaced on `vgg3`'s layers at batch 64 (milliseconds, the im2col + GEMM paths
//! against these in one run): the 32-channel 28 x 28 forward pass 4.6 -> 3.6, its input
//! gradient 4.2 -> 3.6 and weight gradient 5.3 -> 4.0; the 64-channel 14 x 14 forward pass
//! 3.8 -> 3.5; the 128-channel 7 x 7 input gradient 4.7 -> 3.9; the 7 x 7 forward passes 2.3
//! -> 1.8 (64 -> 128 channels) and 3.9 -> 3.4 (128 -> 128) by rows.

use rayon::prelude::*;

use crate::Geometry;
use crate::epilogue::Epilogue;
use crate::scratch::Buf;

mod rows;
mod weight_grad;

pub(crate) use rows::forward_rows;
pub(crate) use weight_grad::weight_grad_direct;

/// Output channels in one register block.
const CO: usize = 8;
/// Output positions in one register block: two vectors of 16 lanes.
const PX: usize = 32;
const LANES: usize = PX / 2;

/// Where the padded planes and the flattened output of one image lie.
#[derive(Clone, Copy, Debug)]
struct Layout {
    /// Padded row width: `ow + kw - 1`.
    wp: usize,
    /// Output positions computed per channel: `oh * wp` rounded up to a whole block.
    positions: usize,
    /// Values per padded plane, with room for the last block's reads past the padded grid.
    plane: usize,
}

impl Geometry {
    /// Whether the forward pass runs as a direct convolution on the flattened grid: stride 1,
    /// no dilation, at most a quarter more positions computed than kept (28 x 28 and 14 x 14
    /// images with 3 x 3 kernels; not 7 x 7, which computes 64 positions for 49: the row kernel
    /// of [`direct_rows`](Self::direct_rows) takes those), and a CPU with AVX-512 (the register
    /// block is sized for its 32 vector registers; elsewhere im2col + GEMM).
    pub fn direct(&self) -> bool {
        let l = self.layout();
        self.stride == [1, 1] && self.dilation == [1, 1] && l.positions * 4 <= self.pixels() * 5 && has_avx512()
    }

    /// Whether the input gradient runs as a direct convolution of the output gradient with
    /// the flipped, transposed weights (see `input_grad_direct`): stride 1, no dilation,
    /// padding narrower than the kernel on every side, at most about a third more positions
    /// computed than kept (7 x 7 images compute 64 positions for 49), and AVX-512.
    pub fn direct_input_grad(&self) -> bool {
        if self.stride != [1, 1] || self.dilation != [1, 1] {
            return false;
        }
        // The padding after the last row and column (stride 1: `oh = h + before + after - k + 1`).
        let after = |axis: usize| self.output[axis] + self.kernel[axis] - 1 - self.input[axis + 1] - self.pad[axis];
        if !(0..2).all(|a| self.pad[a] < self.kernel[a] && after(a) < self.kernel[a]) {
            return false;
        }
        let t = self.transposed();
        t.layout().positions * 3 <= t.pixels() * 4 && has_avx512()
    }

    /// The input gradient's convolution (stride 1, no dilation, padding narrower than the
    /// kernel): the output gradient `[o, oh, ow]` padded by `k - 1 - pad`, convolved to
    /// `[c, h, w]`. Its channel count is left 0: the layout does not depend on it, and
    /// `input_grad_direct` sets it.
    pub(crate) fn transposed(&self) -> Geometry {
        let [_, h, w] = self.input;
        Geometry {
            input: [0, self.output[0], self.output[1]],
            kernel: self.kernel,
            output: [h, w],
            stride: [1, 1],
            pad: [self.kernel[0] - 1 - self.pad[0], self.kernel[1] - 1 - self.pad[1]],
            dilation: [1, 1],
        }
    }

    /// Where tap `(ky, kx)` reads, relative to the output position, in a padded plane:
    /// `ky * wp + kx`, taps in row-major order.
    fn tap_offsets(&self) -> Vec<usize> {
        let ([_, wp], kw) = (self.padded(), self.kernel[1]);
        (0..self.kernel[0] * kw).map(|t| (t / kw) * wp + t % kw).collect()
    }

    fn layout(&self) -> Layout {
        let [oh, ow] = self.output;
        let [kh, kw] = self.kernel;
        let (hp, wp) = (oh + kh - 1, ow + kw - 1);
        let positions = (oh * wp).div_ceil(PX) * PX;
        let reach = (kh - 1) * wp + kw - 1;
        Layout { wp, positions, plane: (hp * wp).max(positions + reach) }
    }
}

/// Whether this CPU has the AVX-512 instructions the direct kernels are written for (chosen at
/// run time; elsewhere convolutions take im2col + GEMM), and this build may use them (the
/// crate's `avx512` feature).
#[cfg(target_arch = "x86_64")]
pub fn has_avx512() -> bool {
    cfg!(feature = "avx512") && pulp::x86::V4::try_new().is_some()
}

/// Whether this CPU has the AVX-512 instructions the direct kernels are written for: never off
/// x86-64.
#[cfg(not(target_arch = "x86_64"))]
pub fn has_avx512() -> bool {
    false
}

/// Runs a kernel of this module compiled for AVX-512 (only called where [`has_avx512`] holds,
/// which every `Geometry::direct*` test requires).
#[cfg(target_arch = "x86_64")]
fn avx512<Op: pulp::WithSimd>(kernel: Op) -> Op::Output {
    let isa = pulp::x86::V4::try_new().expect("the direct kernels run only where AVX-512 is");
    pulp::Simd::vectorize(isa, kernel)
}

#[cfg(not(target_arch = "x86_64"))]
fn avx512<Op: pulp::WithSimd>(_: Op) -> Op::Output {
    unreachable!("the Geometry::direct* tests are false off x86-64")
}

/// The weights `[o, c, kh, kw]` regrouped for the kernel: per block of 8 output channels, per
/// input channel, per tap, the block's 8 weights side by side (zero for the channels past `o`).
fn pack(w: &[f32], out_channels: usize, g: &Geometry) -> Vec<f32> {
    let (c, taps) = (g.input[0], g.kernel[0] * g.kernel[1]);
    let blocks = out_channels.div_ceil(CO);
    let mut packed = vec![0.0f32; blocks * c * taps * CO];
    for (o, filter) in w.chunks_exact(c * taps).enumerate() {
        for (ci, channel) in filter.chunks_exact(taps).enumerate() {
            for (t, v) in channel.iter().enumerate() {
                packed[(((o / CO) * c + ci) * taps + t) * CO + o % CO] = *v;
            }
        }
    }
    packed
}

/// The forward convolution (see the module comment): images in parallel, the output
/// `[n, o, oh, ow]`.
pub(crate) fn forward_direct(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    n: usize,
    out_channels: usize,
    g: &Geometry,
    epilogue: &Epilogue,
) -> Vec<f32> {
    let ([c, h, wd], [oh, ow], l) = (g.input, g.output, g.layout());
    let (image, pixels) = (c * h * wd, oh * ow);
    let blocks = out_channels.div_ceil(CO);
    let packed = pack(w, out_channels, g);
    let bias: Vec<f32> = (0..blocks * CO).map(|o| bias.and_then(|b| b.get(o)).copied().unwrap_or(0.0)).collect();
    let offsets = g.tap_offsets();
    let three_by_three = g.kernel == [3, 3];
    let kept = epilogue.output(g.output).iter().product::<usize>();
    let mut y = vec![0.0f32; n * out_channels * kept];
    // Per task: the padded image (its border and tail stay zero: only the interior is written)
    // and the flattened output.
    let scratch = || (Buf::zeroed(c * l.plane), Buf::zeroed(blocks * CO * l.positions));
    y.par_chunks_mut(out_channels * kept).enumerate().for_each_init(scratch, |(padded, flat), (b, out)| {
        g.pad_into(&x[b * image..][..image], padded, l.plane);
        let block =
            Block { padded, plane: l.plane, channels: c, packed: &packed, offsets: &offsets, bias: &bias, out: flat };
        if three_by_three {
            avx512(ThreeByThree(block));
        } else {
            avx512(block);
        }
        epilogue.image(b, out, out_channels, g.output, |out| {
            for (dst, src) in out.chunks_exact_mut(pixels).zip(flat.chunks_exact(l.positions)) {
                for (d, s) in dst.chunks_exact_mut(ow).zip(src.chunks_exact(l.wp)) {
                    d.copy_from_slice(&s[..ow]);
                }
            }
        });
    });
    y
}

/// One image's products: `out[o][j] = bias[o] + sum over c, t of packed[o, c, t] *
/// padded[c][j + offsets[t]]`, for every block of output channels and positions.
struct Block<'a> {
    padded: &'a [f32],
    plane: usize,
    channels: usize,
    packed: &'a [f32],
    offsets: &'a [usize],
    bias: &'a [f32],
    out: &'a mut [f32],
}

impl pulp::WithSimd for Block<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        assert_eq!(S::F32_LANES, LANES, "the register block is sized for 16-lane vectors");
        let Block { padded, plane, channels, packed, offsets, bias, out } = self;
        let taps = offsets.len();
        let per_block = channels * taps * CO;
        let positions = out.len() / bias.len();
        let load = |s: &[f32]| -> S::f32s { pulp::bytemuck::cast_slice::<f32, S::f32s>(&s[..LANES])[0] };
        for ((weights, bias), out) in
            packed.chunks_exact(per_block).zip(bias.chunks_exact(CO)).zip(out.chunks_exact_mut(CO * positions))
        {
            for j in (0..positions).step_by(PX) {
                let mut acc: [[S::f32s; 2]; CO] = std::array::from_fn(|k| [simd.splat_f32s(bias[k]); 2]);
                for (input, weights) in padded.chunks_exact(plane).zip(weights.chunks_exact(taps * CO)) {
                    let input = &input[j..];
                    for (&offset, w) in offsets.iter().zip(weights.chunks_exact(CO)) {
                        let x = [load(&input[offset..]), load(&input[offset + LANES..])];
                        tap(simd, &mut acc, x, w);
                    }
                }
                store::<S>(out, positions, j, &acc);
            }
        }
    }
}

/// One tap of a register block: the two input vectors `x` times each of the block's 8 weights
/// `w`, added onto the accumulators.
#[inline(always)]
fn tap<S: pulp::Simd>(simd: S, acc: &mut [[S::f32s; 2]; CO], x: [S::f32s; 2], w: &[f32]) {
    for (acc, &w) in acc.iter_mut().zip(w) {
        let w = simd.splat_f32s(w);
        acc[0] = simd.mul_add_e_f32s(w, x[0], acc[0]);
        acc[1] = simd.mul_add_e_f32s(w, x[1], acc[1]);
    }
}

/// A finished register block into its 8 output rows (`positions` apart) at position `j`.
#[inline(always)]
fn store<S: pulp::Simd>(out: &mut [f32], positions: usize, j: usize, acc: &[[S::f32s; 2]; CO]) {
    for (row, acc) in out.chunks_exact_mut(positions).zip(acc) {
        let dst: &mut [S::f32s] = pulp::bytemuck::cast_slice_mut(&mut row[j..j + PX]);
        dst.copy_from_slice(acc);
    }
}

/// [`Block`] for 3 x 3 kernels: per input channel, the three input rows the block reads are
/// taken once as fixed-length runs, so the nine taps are constant offsets into them (unrolled,
/// with no per-tap offset load or bounds check). Its own operation, so that the general
/// kernel's code is compiled as before.
struct ThreeByThree<'a>(Block<'a>);

impl pulp::WithSimd for ThreeByThree<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        assert_eq!(S::F32_LANES, LANES, "the register block is sized for 16-lane vectors");
        const RUN: usize = PX + 2;
        let Block { padded, plane, channels, packed, offsets, bias, out } = self.0;
        assert_eq!(offsets.len(), 9, "a 3 x 3 kernel");
        let wp = offsets[3];
        let per_block = channels * 9 * CO;
        let positions = out.len() / bias.len();
        let load = |s: &[f32]| -> S::f32s { pulp::bytemuck::cast_slice::<f32, S::f32s>(&s[..LANES])[0] };
        for ((weights, bias), out) in
            packed.chunks_exact(per_block).zip(bias.chunks_exact(CO)).zip(out.chunks_exact_mut(CO * positions))
        {
            for j in (0..positions).step_by(PX) {
                let mut acc: [[S::f32s; 2]; CO] = std::array::from_fn(|k| [simd.splat_f32s(bias[k]); 2]);
                for (input, weights) in padded.chunks_exact(plane).zip(weights.chunks_exact(9 * CO)) {
                    let rows: [&[f32; RUN]; 3] = std::array::from_fn(|ky| {
                        input[j + ky * wp..][..RUN].try_into().expect("a run of the padded plane")
                    });
                    let weights: &[f32; 9 * CO] = weights.try_into().expect("a channel's weights");
                    for (ky, row) in rows.iter().enumerate() {
                        for kx in 0..3 {
                            let x = [load(&row[kx..]), load(&row[kx + LANES..])];
                            tap(simd, &mut acc, x, &weights[(ky * 3 + kx) * CO..][..CO]);
                        }
                    }
                }
                store::<S>(out, positions, j, &acc);
            }
        }
    }
}

/// The input gradient of a stride-1 convolution ([`Geometry::direct_input_grad`]): the output
/// gradient, padded by `k - 1 - pad`, convolved with the weights flipped in both spatial axes
/// and with input and output channels swapped, by the same kernel as the forward pass.
pub(crate) fn input_grad_direct(dy: &[f32], w: &[f32], n: usize, out_channels: usize, g: &Geometry) -> Vec<f32> {
    let t = Geometry { input: [out_channels, g.output[0], g.output[1]], ..g.transposed() };
    forward_direct(dy, &flipped_weights(w, out_channels, g), None, n, g.input[0], &t, &Epilogue::NONE)
}

/// The weights `[o][c][kh][kw]` of `g` flipped in both spatial axes, with input and output
/// channels swapped (`[c][o][kh][kw]`): the kernel of the input gradient's convolution.
pub(crate) fn flipped_weights(w: &[f32], out_channels: usize, g: &Geometry) -> Vec<f32> {
    let (c, taps) = (g.input[0], g.kernel[0] * g.kernel[1]);
    let mut flipped = vec![0.0f32; w.len()];
    for (o, filter) in w.chunks_exact(c * taps).enumerate() {
        for (ci, channel) in filter.chunks_exact(taps).enumerate() {
            for (t, v) in channel.iter().enumerate() {
                flipped[(ci * out_channels + o) * taps + taps - 1 - t] = *v;
            }
        }
    }
    flipped
}
