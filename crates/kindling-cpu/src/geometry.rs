//! The geometry of one convolution (channels, sizes, stride, padding, dilation) in the terms
//! the kernels use, and the tests that pick a layout for it: the general im2col layout or the
//! "wide" one over padded rows (see `im2col.rs`); `direct.rs` adds the direct kernels' tests.

use burn::tensor::ops::ConvOptions;

/// The geometry of one convolution, in the terms the kernels use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Input channels, height, width.
    pub input: [usize; 3],
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Output height and width.
    pub output: [usize; 2],
    /// Stride per axis.
    pub stride: [usize; 2],
    /// Padding before the first row and column.
    pub pad: [usize; 2],
    /// Dilation per axis.
    pub dilation: [usize; 2],
}

impl Geometry {
    /// The geometry of `x [n, c, h, w]` convolved with `w [o, c, kh, kw]` under `options`.
    pub fn new(x: [usize; 4], w: [usize; 4], options: &ConvOptions<2>) -> Self {
        let [_, c, h, wd] = x;
        let [_, _, kh, kw] = w;
        let out = |len: usize, axis: usize, k: usize| {
            let (p0, p1) = options.padding[axis];
            (len + p0 + p1 - options.dilation[axis] * (k - 1) - 1) / options.stride[axis] + 1
        };
        Self {
            input: [c, h, wd],
            kernel: [kh, kw],
            output: [out(h, 0, kh), out(wd, 1, kw)],
            stride: options.stride,
            pad: [options.padding[0].0, options.padding[1].0],
            dilation: options.dilation,
        }
    }

    /// Rows of the column matrix: `c * kh * kw`.
    pub fn patch(&self) -> usize {
        self.input[0] * self.kernel[0] * self.kernel[1]
    }

    /// Columns of the column matrix: `oh * ow`.
    pub fn pixels(&self) -> usize {
        self.output[0] * self.output[1]
    }

    /// The input index read by output position `o` through tap `k` on `axis`, if inside.
    pub(crate) fn source(&self, axis: usize, o: usize, k: usize) -> Option<usize> {
        (o * self.stride[axis] + k * self.dilation[axis])
            .checked_sub(self.pad[axis])
            .filter(|&i| i < self.input[axis + 1])
    }

    /// The output columns whose kernel column `kx` reads inside the input row: those with
    /// `ox·s + kx·d - p` in `0..w`, a contiguous range found by arithmetic (it runs once per
    /// tap and image, so it allocates nothing).
    pub(crate) fn valid_columns(&self, kx: usize) -> std::ops::Range<usize> {
        let (s, p, offset, w, ow) = (self.stride[1], self.pad[1], kx * self.dilation[1], self.input[2], self.output[1]);
        let lo = p.saturating_sub(offset).div_ceil(s).min(ow);
        let hi = (w + p).saturating_sub(offset).div_ceil(s).min(ow);
        lo..hi.max(lo)
    }

    /// Whether the input gradient runs in the "wide" layout: stride 1, no dilation, and a padded
    /// width at most a sixth over the output width. The output gradient is then spread over
    /// every column of the padded input (`oh x wp`, zero in the last `kw - 1` columns of each
    /// row), so that each row of the column-matrix gradient adds onto one contiguous slice of
    /// the padded plane: long vector adds instead of one short add per output row. The price is
    /// the zero columns' share of the product (7% at 28 x 28, 14% at 14 x 14). The forward pass
    /// and the weight gradient take the same layout only where rows are short
    /// ([`wide_forward`](Self::wide_forward)).
    pub fn wide(&self) -> bool {
        let [_, wp] = self.padded();
        self.stride == [1, 1] && self.dilation == [1, 1] && (wp - self.output[1]) * 6 <= self.output[1]
    }

    /// Height and width of the padded input: `oh + kh - 1`, `ow + kw - 1` (stride 1).
    pub(crate) fn padded(&self) -> [usize; 2] {
        [self.output[0] + self.kernel[0] - 1, self.output[1] + self.kernel[1] - 1]
    }

    /// Values per padded plane: the padded input plus `kw - 1` zeros that the last row's
    /// discarded columns read past its end.
    pub(crate) fn padded_plane(&self) -> usize {
        let [hp, wp] = self.padded();
        hp * wp + self.kernel[1] - 1
    }

    /// Columns of the wide column matrix: `oh * wp`.
    pub(crate) fn wide_pixels(&self) -> usize {
        self.output[0] * self.padded()[1]
    }

    /// Whether the forward pass and the weight gradient run in the wide layout too: where the
    /// output rows are short (at most 16 columns) and the discarded columns no more than the
    /// kept ones. There the general im2col pays one short copy per output row, and the product's
    /// row count is a poor fit for gemm's 16-row tiles (49 rows at 7 x 7 run as 64), which the
    /// wide rows fit better (63). Measured on `vgg3`: +3% training, +5% inference; on LeNet-5's
    /// second convolution (10 columns kept of 14): +4% training, +8% inference. At 28 x 28 the
    /// wide forward pass was slower, so it stays general there. Where the direct kernels apply
    /// ([`direct`](Self::direct), [`direct_weight_grad`](Self::direct_weight_grad), AVX-512
    /// only) they come first.
    pub fn wide_forward(&self) -> bool {
        let [_, wp] = self.padded();
        self.stride == [1, 1]
            && self.dilation == [1, 1]
            && self.output[1] <= 16
            && wp - self.output[1] <= self.output[1]
    }

    /// Copies `image` into the interior of `padded` (`c` padded planes, `plane` values apart);
    /// the border is left as it is (zero, written once when the buffer was made).
    pub(crate) fn pad_into(&self, image: &[f32], padded: &mut [f32], plane: usize) {
        let [c, h, w] = self.input;
        let [_, wp] = self.padded();
        for ch in 0..c {
            for iy in 0..h {
                let at = ch * plane + (iy + self.pad[0]) * wp + self.pad[1];
                padded[at..at + w].copy_from_slice(&image[(ch * h + iy) * w..][..w]);
            }
        }
    }
}
