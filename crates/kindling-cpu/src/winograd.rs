//! Winograd F(2 x 2, 3 x 3) for 3 x 3 convolutions with stride 1 and padding 1 (Lavin and
//! Gray, "Fast Algorithms for Convolutional Neural Networks", 2016): each 2 x 2 block of
//! outputs comes from a 4 x 4 tile of input through 16 products per channel pair instead of 36.
//!
//! With the transforms
//!
//! ```text
//! Bᵀ = | 1  0 -1  0 |    G = | 1    0    0  |    Aᵀ = | 1  1  1  0 |
//!      | 0  1  1  0 |        | 1/2  1/2  1/2|         | 0  1 -1 -1 |
//!      | 0 -1  1  0 |        | 1/2 -1/2  1/2|
//!      | 0  1  0 -1 |        | 0    0    1  |
//! ```
//!
//! an output tile is `Y = Aᵀ [ Σ_c (G g_oc Gᵀ) ⊙ (Bᵀ d_c B) ] A`. Laid out as 16 planes (one per
//! position ξ of the 4 x 4 transformed tile), each a tiles x channels matrix, the sum over input
//! channels is one GEMM per ξ: `M[ξ] (tiles x out) = V[ξ] (tiles x in) · U[ξ]ᵀ`; several
//! images' tiles share one product so that it is wide enough for gemm's kernels. With the
//! channels innermost, the transforms work on 16 channels at a time (the images are transposed
//! to that layout four rows at a time by shuffles, and the outputs back).
//!
//! - **Forward pass**: transform the weights once per call (`U`), each image's tiles (`V`),
//!   16 GEMMs, then the output transform with the bias.
//! - **Input gradient**: the same forward pass on the output gradient with the weights flipped
//!   and their channel axes swapped (stride 1, padding 1: the same geometry).
//! - **Weight gradient**: the exact gradient of the forward formula, which equals the
//!   convolution's: `dU[ξ] = (A dY Aᵀ)[ξ]ᵀ · V[ξ]` summed over tiles, one accumulating GEMM
//!   per ξ, then `dW = Gᵀ dU G`. The batch is summed in the same fixed pieces as the other
//!   weight gradients, so results do not depend on the number of threads.
//!
//! Output sizes need not be even: the last row or column of tiles reads zeros past the padded
//! input and its extra outputs are dropped (a tile's extra output gradient is zero).

// The transforms index small fixed arrays by row and column, as the formulas read.
#![allow(clippy::needless_range_loop)]

use rayon::prelude::*;

use kindling_gemm::{MatRef, sgemm};

use crate::direct::flipped_weights;
use crate::epilogue::Epilogue;
use crate::im2col::{batch_piece, sum_pieces};
use crate::scratch::Buf;
use crate::simd::simd;
use crate::switch::winograd_enabled;
use crate::{Geometry, has_avx512};

/// Planes of the transformed tile: 4 x 4.
const XI: usize = 16;
/// Tiles a product aims for (its rows): images are grouped until their tiles fill it.
const TARGET_COLUMNS: usize = 196;

/// The tiling of one geometry: `rows x cols` tiles of 2 x 2 outputs over an input padded to
/// `2 * rows + 2` by `2 * cols + 2` (the padding of 1, plus one more zero row or column where
/// the output size is odd).
#[derive(Clone, Copy, Debug)]
struct Tiles {
    rows: usize,
    cols: usize,
}

impl Tiles {
    fn of(g: &Geometry) -> Self {
        Self { rows: g.output[0].div_ceil(2), cols: g.output[1].div_ceil(2) }
    }

    fn count(self) -> usize {
        self.rows * self.cols
    }

    /// Padded height and width.
    fn padded(self) -> [usize; 2] {
        [2 * self.rows + 2, 2 * self.cols + 2]
    }

    /// Images per product: enough for about [`TARGET_COLUMNS`] tiles.
    fn group(self, n: usize) -> usize {
        (TARGET_COLUMNS / self.count()).clamp(1, n.max(1))
    }
}

impl Geometry {
    /// Whether a convolution fits the Winograd kernels: 3 x 3, stride 1, no dilation, padding
    /// 1 on every side (so the output is the input's size).
    pub fn winograd(&self) -> bool {
        self.kernel == [3, 3]
            && self.stride == [1, 1]
            && self.dilation == [1, 1]
            && self.pad == [1, 1]
            && self.output == [self.input[1], self.input[2]]
    }

    /// Whether the forward pass runs by Winograd: a [`winograd`](Self::winograd) geometry with
    /// at least 32 input channels, on a CPU or build without the AVX-512 direct kernels (where
    /// they run, they were as fast or faster on most layers measured). Measured per layer at
    /// AVX2, batch 64 (`conv_parts --winograd`, BENCHMARKS.md): 1.1-1.4x faster than im2col +
    /// GEMM from 32 input channels on, slower with 16 (28 x 28: 5.1 against 4.4 ms).
    pub fn winograd_forward(&self) -> bool {
        self.winograd() && self.input[0] >= 32 && !has_avx512() && winograd_enabled()
    }

    /// Whether the input gradient runs by Winograd: as the forward pass (the same rule on the
    /// forward pass's input channels, which the gradient outputs; with 16 it was slower, 5.4
    /// against 4.3 ms).
    pub fn winograd_input_grad(&self) -> bool {
        self.winograd_forward()
    }

    /// Whether the weight gradient runs by Winograd: as the forward pass, from 16 input
    /// channels on (faster on every such layer measured at AVX2).
    pub fn winograd_weight_grad(&self) -> bool {
        self.winograd() && self.input[0] >= 16 && !has_avx512() && winograd_enabled()
    }
}

/// `U[ξ][o][c] = (G g_oc Gᵀ)[ξ]` for weights `[o][c][3][3]`.
fn transform_weights(w: &[f32], out_channels: usize, in_channels: usize) -> Vec<f32> {
    assert_eq!(w.len(), out_channels * in_channels * 9);
    let pairs = out_channels * in_channels;
    let mut u = vec![0.0f32; XI * pairs];
    for (p, g) in w.chunks_exact(9).enumerate() {
        // G g: 4 rows of 3.
        let mut gg = [[0.0f32; 3]; 4];
        for x in 0..3 {
            let (g0, g1, g2) = (g[x], g[3 + x], g[6 + x]);
            gg[0][x] = g0;
            gg[1][x] = 0.5 * (g0 + g1 + g2);
            gg[2][x] = 0.5 * (g0 - g1 + g2);
            gg[3][x] = g2;
        }
        // (G g) Gᵀ: each row of 3 becomes 4.
        for (k, r) in gg.iter().enumerate() {
            let row = [r[0], 0.5 * (r[0] + r[1] + r[2]), 0.5 * (r[0] - r[1] + r[2]), r[2]];
            for (l, v) in row.into_iter().enumerate() {
                u[(k * 4 + l) * pairs + p] = v;
            }
        }
    }
    u
}

/// `dW = Gᵀ dU G` per channel pair: the adjoint of [`transform_weights`].
fn untransform_weight_grad(du: &[f32], pairs: usize) -> Vec<f32> {
    let mut dw = vec![0.0f32; pairs * 9];
    for (p, out) in dw.chunks_exact_mut(9).enumerate() {
        let m = |k: usize, l: usize| du[(k * 4 + l) * pairs + p];
        // Gᵀ X: 3 rows of 4.
        let mut r = [[0.0f32; 4]; 3];
        for l in 0..4 {
            let (x0, x1, x2, x3) = (m(0, l), m(1, l), m(2, l), m(3, l));
            r[0][l] = x0 + 0.5 * (x1 + x2);
            r[1][l] = 0.5 * (x1 - x2);
            r[2][l] = 0.5 * (x1 + x2) + x3;
        }
        // (Gᵀ X) G: each row of 4 becomes 3.
        for (k, row) in r.iter().enumerate() {
            out[k * 3] = row[0] + 0.5 * (row[1] + row[2]);
            out[k * 3 + 1] = 0.5 * (row[1] - row[2]);
            out[k * 3 + 2] = 0.5 * (row[1] + row[2]) + row[3];
        }
    }
    dw
}

/// Channels per step of the transforms: one AVX-512 vector, or two AVX2 ones.
const LANES: usize = 16;
type Lane = [f32; LANES];

/// `LANES` values of `s` from `at` on, zero past its end.
#[inline(always)]
fn load(s: &[f32], at: usize) -> Lane {
    if let Some(v) = s.get(at..at + LANES) {
        return v.try_into().expect("LANES values");
    }
    let mut l = [0.0; LANES];
    let n = s.len().saturating_sub(at).min(LANES);
    l[..n].copy_from_slice(&s[at..at + n]);
    l
}

/// Stores the first `n` values of `l` at `d[at..]`.
#[inline(always)]
fn store(d: &mut [f32], at: usize, l: &Lane, n: usize) {
    if n == LANES {
        // A copy of known size: vector stores, not a call.
        let to: &mut Lane = (&mut d[at..at + LANES]).try_into().expect("LANES values");
        *to = *l;
    } else {
        d[at..at + n].copy_from_slice(&l[..n]);
    }
}

#[inline(always)]
fn add(a: &Lane, b: &Lane) -> Lane {
    let mut r = [0.0; LANES];
    for i in 0..LANES {
        r[i] = a[i] + b[i];
    }
    r
}

#[inline(always)]
fn sub(a: &Lane, b: &Lane) -> Lane {
    let mut r = [0.0; LANES];
    for i in 0..LANES {
        r[i] = a[i] - b[i];
    }
    r
}

/// Matrices transposed four rows at a time on instruction set `S`: four vectors (one from
/// each row) interleaved by shuffles (`interleave_shfl_f32s`) leave each column's four values
/// side by side, and each such group is one store of known size.
#[derive(Clone, Copy)]
struct Transposer<S> {
    simd: S,
    /// Which column of a vector each group of four comes out as (see [`Transposer::new`]);
    /// `None` where the shuffles do not give whole columns, and every value goes on its own.
    columns: Option<[usize; 2 * LANES]>,
}

impl<S: pulp::Simd> Transposer<S> {
    /// The shuffles keep each column's four values together and in row order, but may order
    /// the columns within a vector otherwise (pulp promises only that interleaving undoes
    /// deinterleaving): the order is read off four vectors of known values, once per
    /// transforming operation rather than per row.
    #[inline(always)]
    fn new(simd: S) -> Self {
        let lanes = S::F32_LANES;
        if !(4..=2 * LANES).contains(&lanes) {
            return Self { simd, columns: None };
        }
        let probe: [S::f32s; 4] = std::array::from_fn(|k| {
            let v: [f32; 2 * LANES] = std::array::from_fn(|lane| (k * 100 + lane) as f32);
            pulp::bytemuck::cast_slice::<f32, S::f32s>(&v[..lanes])[0]
        });
        let probe = simd.interleave_shfl_f32s(probe);
        let probe: &[f32] = pulp::bytemuck::cast_slice(&probe);
        let mut columns = [usize::MAX; 2 * LANES];
        let mut seen = [false; 2 * LANES];
        for (slot, g) in columns.iter_mut().zip(probe.chunks_exact(4)) {
            let column = g[0] as usize;
            if column >= lanes || seen[column] || (0..4).any(|k| g[k] != (k * 100 + column) as f32) {
                return Self { simd, columns: None };
            }
            (*slot, seen[column]) = (column, true);
        }
        Self { simd, columns: Some(columns) }
    }

    /// `dst[j * dst_stride + i] = src[i * src_stride + j]` for `i < rows`, `j < cols`. Rows
    /// past the last group of four, and the columns of a vector that reach past `cols`, go
    /// value by value.
    #[inline(always)]
    fn run(&self, src: &[f32], src_stride: usize, rows: usize, cols: usize, dst: &mut [f32], dst_stride: usize) {
        let lanes = S::F32_LANES;
        let (whole, columns) = match &self.columns {
            Some(columns) => (cols - cols % lanes, &columns[..]),
            None => (0, &[][..]),
        };
        for i0 in (0..rows - rows % 4).step_by(4) {
            for j0 in (0..whole).step_by(lanes) {
                let v: [S::f32s; 4] = std::array::from_fn(|k| {
                    pulp::bytemuck::cast_slice::<f32, S::f32s>(&src[(i0 + k) * src_stride + j0..][..lanes])[0]
                });
                let v = self.simd.interleave_shfl_f32s(v);
                let groups: &[f32] = pulp::bytemuck::cast_slice(&v);
                for (&j, group) in columns.iter().zip(groups.chunks_exact(4)) {
                    let group: [f32; 4] = group.try_into().expect("4 values");
                    let at = (j0 + j) * dst_stride + i0;
                    let to: &mut [f32; 4] = (&mut dst[at..at + 4]).try_into().expect("4 values");
                    *to = group;
                }
            }
            for i in i0..i0 + 4 {
                for j in whole..cols {
                    dst[j * dst_stride + i] = src[i * src_stride + j];
                }
            }
        }
        for i in rows - rows % 4..rows {
            for j in 0..cols {
                dst[j * dst_stride + i] = src[i * src_stride + j];
            }
        }
    }
}

/// Per task: one image padded with its channels innermost, the transformed tiles of a group
/// of images, the products, and one image's outputs (or output gradient) channels innermost;
/// from this thread's pool ([`Buf`]). `padded`'s border and what of `pixels` lies past the
/// output's edge are zeroed when taken (each image's transposes write the rest, and the
/// transforms read those parts as zeros); `v` and `m` are written whole before they are read.
struct Scratch {
    padded: Buf,
    v: Buf,
    m: Buf,
    pixels: Buf,
}

impl Scratch {
    fn new(g: &Geometry, tiles: Tiles, out_channels: usize, group: usize) -> Self {
        let ([c, h, w], [oh, ow]) = (g.input, g.output);
        let ([ph, pw], width) = (tiles.padded(), 2 * tiles.cols);
        let columns = group * tiles.count();
        // Only the parts read as zeros, not the whole buffers (the transposes write the rest
        // for every image).
        let mut padded = Buf::reused(ph * pw * c);
        zero_outside(&mut padded, pw * c, [1, h + 1], [c, (w + 1) * c]);
        let mut pixels = Buf::reused(2 * tiles.rows * width * out_channels);
        zero_outside(&mut pixels, width * out_channels, [0, oh], [0, ow * out_channels]);
        Self { padded, v: Buf::reused(XI * columns * c), m: Buf::reused(XI * columns * out_channels), pixels }
    }
}

/// Zeroes what of `grid` (rows of `row` values) lies outside rows `ys[0]..ys[1]` and, within
/// those rows, outside values `xs[0]..xs[1]`.
fn zero_outside(grid: &mut [f32], row: usize, ys: [usize; 2], xs: [usize; 2]) {
    grid[..ys[0] * row].fill(0.0);
    for line in grid[ys[0] * row..ys[1] * row].chunks_exact_mut(row) {
        line[..xs[0]].fill(0.0);
        line[xs[1]..].fill(0.0);
    }
    grid[ys[1] * row..].fill(0.0);
}

/// The transformed tiles `Bᵀ d B` of one image (`[c][h][w]`) into `v` (`[ξ][column][c]`), its
/// tiles from column `col0` on. The image is first padded with its channels innermost, so
/// every step works on [`LANES`] channels at once.
///
/// An operation for [`simd`]: `with_simd` is always inlined into the dispatch, so its loops
/// are compiled for the chosen instruction set (a closure this large would not be inlined, and
/// would run at the baseline's 4 lanes).
struct TransformInput<'a> {
    g: &'a Geometry,
    tiles: Tiles,
    image: &'a [f32],
    s: &'a mut Scratch,
    columns: usize,
    col0: usize,
}

impl pulp::WithSimd for TransformInput<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let Self { g, tiles, image, s, columns, col0 } = self;
        let [c, h, w] = g.input;
        let pw = tiles.padded()[1];
        let transposer = Transposer::new(simd);
        for iy in 0..h {
            // Row iy of every channel (channel-major, `h * w` apart) to pixel-major.
            let dst = &mut s.padded[((iy + 1) * pw + 1) * c..];
            transposer.run(&image[iy * w..], h * w, c, w, dst, c);
        }
        for ty in 0..tiles.rows {
            for tx in 0..tiles.cols {
                let col = col0 + ty * tiles.cols + tx;
                for c0 in (0..c).step_by(LANES) {
                    let n = (c - c0).min(LANES);
                    let d = |i: usize, j: usize| load(&s.padded, ((2 * ty + i) * pw + 2 * tx + j) * c + c0);
                    // Bᵀ d: rows d0 - d2, d1 + d2, d2 - d1, d1 - d3, column by column.
                    let mut t = [[[0.0f32; LANES]; 4]; 4];
                    for j in 0..4 {
                        let (d0, d1, d2, d3) = (d(0, j), d(1, j), d(2, j), d(3, j));
                        t[0][j] = sub(&d0, &d2);
                        t[1][j] = add(&d1, &d2);
                        t[2][j] = sub(&d2, &d1);
                        t[3][j] = sub(&d1, &d3);
                    }
                    // (Bᵀ d) B: the same combination of the columns.
                    for (k, [a, b, cc, dd]) in t.iter().enumerate() {
                        let at = |l: usize| ((k * 4 + l) * columns + col) * c + c0;
                        store(&mut s.v, at(0), &sub(a, cc), n);
                        store(&mut s.v, at(1), &add(b, cc), n);
                        store(&mut s.v, at(2), &sub(cc, b), n);
                        store(&mut s.v, at(3), &sub(b, dd), n);
                    }
                }
            }
        }
    }
}

/// `A dY Aᵀ` of one image's output gradient (`[o][oh][ow]`) into `dm` (`[ξ][column][o]`), its
/// tiles from column `col0` on; outputs past the edge count as zero.
///
/// An operation for [`simd`], as [`TransformInput`].
struct TransformOutputGrad<'a> {
    g: &'a Geometry,
    tiles: Tiles,
    dy: &'a [f32],
    s: &'a mut Scratch,
    out_channels: usize,
    columns: usize,
    col0: usize,
}

impl pulp::WithSimd for TransformOutputGrad<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let Self { g, tiles, dy, s, out_channels, columns, col0 } = self;
        let [oh, ow] = g.output;
        let (o_n, width) = (out_channels, 2 * tiles.cols);
        // The output gradient with its channels innermost, on a grid of whole tiles.
        let transposer = Transposer::new(simd);
        for y in 0..oh {
            transposer.run(&dy[y * ow..], oh * ow, o_n, ow, &mut s.pixels[y * width * o_n..], o_n);
        }
        for ty in 0..tiles.rows {
            for tx in 0..tiles.cols {
                let col = col0 + ty * tiles.cols + tx;
                for o0 in (0..o_n).step_by(LANES) {
                    let n = (o_n - o0).min(LANES);
                    let y = |i: usize, j: usize| load(&s.pixels, ((2 * ty + i) * width + 2 * tx + j) * o_n + o0);
                    let (a, b, c, d) = (y(0, 0), y(0, 1), y(1, 0), y(1, 1));
                    let zero = [0.0; LANES];
                    // A dY: rows y0, y0 + y1, y0 - y1, -y1; then each row [p, q] gives
                    // p, p + q, p - q, -q.
                    let rows = [
                        (a, b),
                        (add(&a, &c), add(&b, &d)),
                        (sub(&a, &c), sub(&b, &d)),
                        (sub(&zero, &c), sub(&zero, &d)),
                    ];
                    for (k, (p, q)) in rows.iter().enumerate() {
                        let at = |l: usize| ((k * 4 + l) * columns + col) * o_n + o0;
                        store(&mut s.m, at(0), p, n);
                        store(&mut s.m, at(1), &add(p, q), n);
                        store(&mut s.m, at(2), &sub(p, q), n);
                        store(&mut s.m, at(3), &sub(&zero, q), n);
                    }
                }
            }
        }
    }
}

/// `Aᵀ M A` plus the bias: one image's outputs (`[o][oh][ow]`) from `m` (`[ξ][column][o]`),
/// its tiles from column `col0` on.
///
/// An operation for [`simd`], as [`TransformInput`].
struct TransformOutput<'a> {
    g: &'a Geometry,
    tiles: Tiles,
    s: &'a mut Scratch,
    bias: Option<&'a [f32]>,
    out: &'a mut [f32],
    out_channels: usize,
    columns: usize,
    col0: usize,
}

impl pulp::WithSimd for TransformOutput<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let Self { g, tiles, s, bias, out, out_channels, columns, col0 } = self;
        let [oh, ow] = g.output;
        let (o_n, width) = (out_channels, 2 * tiles.cols);
        for ty in 0..tiles.rows {
            for tx in 0..tiles.cols {
                let col = col0 + ty * tiles.cols + tx;
                for o0 in (0..o_n).step_by(LANES) {
                    let n = (o_n - o0).min(LANES);
                    let x = |k: usize, l: usize| load(&s.m, ((k * 4 + l) * columns + col) * o_n + o0);
                    let b = bias.map_or([0.0; LANES], |b| load(b, o0));
                    // Aᵀ M: rows m0 + m1 + m2 and m1 - m2 - m3; then the same of the columns.
                    let (mut s0, mut s1) = ([[0.0f32; LANES]; 4], [[0.0f32; LANES]; 4]);
                    for l in 0..4 {
                        let (m0, m1, m2, m3) = (x(0, l), x(1, l), x(2, l), x(3, l));
                        s0[l] = add(&add(&m0, &m1), &m2);
                        s1[l] = sub(&sub(&m1, &m2), &m3);
                    }
                    for (k, r) in [s0, s1].iter().enumerate() {
                        let at = |j: usize| ((2 * ty + k) * width + 2 * tx + j) * o_n + o0;
                        store(&mut s.pixels, at(0), &add(&add(&add(&r[0], &r[1]), &r[2]), &b), n);
                        store(&mut s.pixels, at(1), &add(&sub(&sub(&r[1], &r[2]), &r[3]), &b), n);
                    }
                }
            }
        }
        // Back to output planes, dropping what lies past the edge.
        let transposer = Transposer::new(simd);
        for y in 0..oh {
            transposer.run(&s.pixels[y * width * o_n..], o_n, ow, o_n, &mut out[y * ow..], oh * ow);
        }
    }
}

/// The 16 products `M[ξ] = V[ξ] · U[ξ]ᵀ` (columns x out) of a group.
fn products(u: &[f32], s: &mut Scratch, out_channels: usize, in_channels: usize, columns: usize) {
    let (uw, vw, mw) = (out_channels * in_channels, columns * in_channels, columns * out_channels);
    for xi in 0..XI {
        sgemm(
            MatRef::new(&s.v[xi * vw..][..vw], columns, in_channels),
            MatRef::new(&u[xi * uw..][..uw], out_channels, in_channels).t(),
            &mut s.m[xi * mw..][..mw],
            false,
            1,
        );
    }
}

/// [`forward_values`](crate::forward_values) by Winograd F(2 x 2, 3 x 3); `g` must satisfy
/// [`Geometry::winograd`]. Groups of images in parallel.
pub fn forward_winograd(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    n: usize,
    out_channels: usize,
    g: &Geometry,
) -> Vec<f32> {
    forward_winograd_then(x, w, bias, n, out_channels, g, &Epilogue::NONE)
}

/// [`forward_winograd`], each image's output then through `epilogue`.
pub(crate) fn forward_winograd_then(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    n: usize,
    out_channels: usize,
    g: &Geometry,
    epilogue: &Epilogue,
) -> Vec<f32> {
    assert!(g.winograd(), "not a Winograd geometry: {g:?}");
    let [c, h, wd] = g.input;
    let (image, tiles) = (c * h * wd, Tiles::of(g));
    assert_eq!(x.len(), n * image);
    let u = transform_weights(w, out_channels, c);
    let group = tiles.group(n);
    let kept = epilogue.output(g.output).iter().product::<usize>();
    let mut y = vec![0.0f32; n * out_channels * kept];
    y.par_chunks_mut(group * out_channels * kept).enumerate().for_each_init(
        || Scratch::new(g, tiles, out_channels, group),
        |s, (k, out)| {
            let images = out.len() / (out_channels * kept);
            let columns = images * tiles.count();
            for i in 0..images {
                let b = k * group + i;
                simd(TransformInput { g, tiles, image: &x[b * image..][..image], s, columns, col0: i * tiles.count() });
            }
            products(&u, s, out_channels, c, columns);
            for (i, out) in out.chunks_exact_mut(out_channels * kept).enumerate() {
                epilogue.image(k * group + i, out, out_channels, g.output, |out| {
                    simd(TransformOutput { g, tiles, s, bias, out, out_channels, columns, col0: i * tiles.count() });
                });
            }
        },
    );
    y
}

/// [`input_grad_values`](crate::input_grad_values) by Winograd: the forward pass of the output
/// gradient with the weights flipped and their channel axes swapped.
pub fn input_grad_winograd(dy: &[f32], w: &[f32], n: usize, out_channels: usize, g: &Geometry) -> Vec<f32> {
    assert!(g.winograd(), "not a Winograd geometry: {g:?}");
    let back = Geometry { input: [out_channels, g.output[0], g.output[1]], ..g.transposed() };
    forward_winograd(dy, &flipped_weights(w, out_channels, g), None, n, g.input[0], &back)
}

/// [`weight_grad_values`](crate::weight_grad_values) by Winograd: per piece of the batch, the
/// transformed output gradient times the transformed input tiles, summed over tiles.
pub fn weight_grad_winograd(x: &[f32], dy: &[f32], n: usize, out_channels: usize, g: &Geometry) -> Vec<f32> {
    assert!(g.winograd(), "not a Winograd geometry: {g:?}");
    let [c, h, wd] = g.input;
    let (image, pixels, tiles) = (c * h * wd, g.pixels(), Tiles::of(g));
    assert_eq!(x.len(), n * image);
    assert_eq!(dy.len(), n * out_channels * pixels);
    let per = batch_piece(n);
    let group = tiles.group(per);
    let pairs = out_channels * c;
    let partials: Vec<Vec<f32>> = (0..n.div_ceil(per))
        .into_par_iter()
        .map(|piece| {
            let mut du = vec![0.0f32; XI * pairs];
            let mut s = Scratch::new(g, tiles, out_channels, group);
            let images: Vec<usize> = ((piece * per)..((piece + 1) * per).min(n)).collect();
            for chunk in images.chunks(group) {
                let columns = chunk.len() * tiles.count();
                for (i, &b) in chunk.iter().enumerate() {
                    let col0 = i * tiles.count();
                    simd(TransformInput { g, tiles, image: &x[b * image..][..image], s: &mut s, columns, col0 });
                    let grad = &dy[b * out_channels * pixels..][..out_channels * pixels];
                    simd(TransformOutputGrad { g, tiles, dy: grad, s: &mut s, out_channels, columns, col0 });
                }
                let (vw, mw) = (columns * c, columns * out_channels);
                for xi in 0..XI {
                    sgemm(
                        MatRef::new(&s.m[xi * mw..][..mw], columns, out_channels).t(),
                        MatRef::new(&s.v[xi * vw..][..vw], columns, c),
                        &mut du[xi * pairs..][..pairs],
                        true,
                        1,
                    );
                }
            }
            du
        })
        .collect();
    untransform_weight_grad(&sum_pieces(partials, XI * pairs), pairs)
}

#[cfg(test)]
mod tests {
    use burn::tensor::ops::ConvOptions;

    use super::*;
    use crate::im2col::{forward_im2col, input_grad_im2col, weight_grad_im2col};

    fn data(len: usize, seed: usize) -> Vec<f32> {
        (0..len).map(|i| (((i + seed) * 7919) % 1000) as f32 / 500.0 - 1.0).collect()
    }

    /// Largest difference relative to the largest value of the reference.
    fn rel(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
        a.iter().zip(b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs())) / scale
    }

    /// Fills every thread's scratch pool with buffers of garbage, as other kernels can leave
    /// them, so that a part of a buffer the Winograd kernels read without writing or zeroing it
    /// first shows in their results.
    fn poison_scratch() {
        fn poison() {
            let held: Vec<Buf> = (12..20)
                .map(|k| {
                    let mut b = Buf::reused(1 << k);
                    b.fill(7.0);
                    b
                })
                .collect();
            drop(held);
        }
        rayon::broadcast(|_| poison());
        poison();
    }

    /// The transpose by interleaving shuffles against its definition, on every instruction set
    /// this CPU has, with row and column counts around the group of four and the vector width.
    #[test]
    fn transpose_matches_its_definition() {
        struct Case {
            rows: usize,
            cols: usize,
        }
        impl pulp::WithSimd for Case {
            type Output = ();
            #[inline(always)]
            fn with_simd<S: pulp::Simd>(self, simd: S) {
                let Case { rows, cols } = self;
                let (ss, ds) = (cols + 3, rows + 5);
                let src = data(rows * ss, rows + cols);
                let mut dst = vec![f32::NAN; cols * ds];
                Transposer::new(simd).run(&src, ss, rows, cols, &mut dst, ds);
                for i in 0..rows {
                    for j in 0..cols {
                        assert_eq!(dst[j * ds + i], src[i * ss + j], "{rows} x {cols} at ({i}, {j})");
                    }
                }
            }
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(isa) = pulp::x86::V3::try_new() {
            assert!(Transposer::new(isa).columns.is_some(), "AVX2's shuffles give whole columns");
        }
        for rows in [1, 3, 4, 5, 7, 8, 14, 16, 28, 33] {
            for cols in [1, 4, 7, 8, 14, 16, 17, 28, 32, 49] {
                pulp::WithSimd::with_simd(Case { rows, cols }, pulp::Scalar::new());
                simd(Case { rows, cols });
                #[cfg(target_arch = "x86_64")]
                if let Some(isa) = pulp::x86::V3::try_new() {
                    pulp::Simd::vectorize(isa, Case { rows, cols });
                }
            }
        }
    }

    #[test]
    fn winograd_matches_im2col_on_even_and_odd_sizes() {
        // Odd and even sizes, square and not, groups of several images, partial last groups;
        // channel counts below, at and above a block of 16 (the transposes' whole and partial
        // blocks).
        let shapes = [
            (3, 5, 7, 6, 6),
            (5, 8, 4, 7, 7),
            (2, 3, 16, 9, 4),
            (4, 16, 8, 28, 28),
            (1, 2, 3, 1, 1),
            (2, 33, 17, 15, 13),
        ];
        for (n, c, o, h, w) in shapes {
            let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
            let g = Geometry::new([n, c, h, w], [o, c, 3, 3], &options);
            assert!(g.winograd());
            let (x, wt, b) = (data(n * c * h * w, 1), data(o * c * 9, 2), data(o, 3));
            let dy = data(n * o * h * w, 4);
            let what = format!("n {n}, c {c}, o {o}, {h} x {w}");
            // Each kernel starts from scratch buffers full of garbage.
            poison_scratch();
            let fwd = rel(&forward_winograd(&x, &wt, Some(&b), n, o, &g), &forward_im2col(&x, &wt, Some(&b), n, o, &g));
            assert!(fwd < 1e-5, "forward, {what}: {fwd}");
            poison_scratch();
            let dx = rel(&input_grad_winograd(&dy, &wt, n, o, &g), &input_grad_im2col(&dy, &wt, n, o, &g));
            assert!(dx < 1e-5, "input gradient, {what}: {dx}");
            poison_scratch();
            let dw = rel(&weight_grad_winograd(&x, &dy, n, o, &g), &weight_grad_im2col(&x, &dy, n, o, &g));
            assert!(dw < 1e-5, "weight gradient, {what}: {dw}");
        }
    }

    #[test]
    fn only_padded_stride_one_three_by_three_convolutions_are_winograd() {
        let geometry = |k: usize, stride: usize, pad: usize, dilation: usize| {
            Geometry::new([1, 4, 8, 8], [4, 4, k, k], &ConvOptions::new([stride; 2], [pad; 2], [dilation; 2], 1))
        };
        assert!(geometry(3, 1, 1, 1).winograd());
        assert!(!geometry(3, 2, 1, 1).winograd());
        assert!(!geometry(3, 1, 0, 1).winograd());
        assert!(!geometry(3, 1, 2, 2).winograd());
        assert!(!geometry(5, 1, 1, 1).winograd());
    }
}
