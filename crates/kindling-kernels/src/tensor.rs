//! The two array types every kernel reads and writes: `Tensor4` (NCHW) and `Matrix`.

/// A dense `[n, c, h, w]` array of `f32` in row-major (NCHW) order.
///
/// Element `(n, c, y, x)` lives at `((n * C + c) * H + y) * W + x`: the last index moves
/// fastest, so one image row is contiguous, then one channel plane, then one image. This is
/// the layout of PyTorch's and burn's default tensors, so data can be copied between them
/// as flat vectors.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor4 {
    shape: [usize; 4],
    data: Vec<f32>,
}

impl Tensor4 {
    /// A tensor of zeros.
    pub fn zeros(shape: [usize; 4]) -> Self {
        Self { shape, data: vec![0.0; shape.iter().product()] }
    }

    /// Wraps `data`, which must hold exactly `n * c * h * w` values in NCHW order.
    ///
    /// # Panics
    ///
    /// When `data.len()` does not match the shape.
    pub fn from_vec(shape: [usize; 4], data: Vec<f32>) -> Self {
        let want: usize = shape.iter().product();
        assert_eq!(data.len(), want, "a tensor of shape {shape:?} holds {want} values, got {}", data.len());
        Self { shape, data }
    }

    /// A tensor whose element at `[n, c, y, x]` is `f([n, c, y, x])`, filled in memory order.
    pub fn from_fn(shape: [usize; 4], mut f: impl FnMut([usize; 4]) -> f32) -> Self {
        let [n, c, h, w] = shape;
        let mut data = Vec::with_capacity(n * c * h * w);
        for a in 0..n {
            for b in 0..c {
                for y in 0..h {
                    for x in 0..w {
                        data.push(f([a, b, y, x]));
                    }
                }
            }
        }
        Self { shape, data }
    }

    /// Deterministic pseudo-random values, uniform in `[-1, 1)`, from `seed` (see
    /// [`uniform`]); the same seed always gives the same tensor.
    pub fn random(shape: [usize; 4], seed: u64) -> Self {
        Self { shape, data: uniform(shape.iter().product(), seed) }
    }

    /// `[n, c, h, w]`.
    pub fn shape(&self) -> [usize; 4] {
        self.shape
    }

    /// The values in NCHW order.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The values in NCHW order, for writing.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// The flat vector, without copying.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }

    /// Where `[n, c, y, x]` lives in [`data`](Self::data).
    pub fn offset(&self, [n, c, y, x]: [usize; 4]) -> usize {
        let [ns, cs, hs, ws] = self.shape;
        debug_assert!(n < ns && c < cs && y < hs && x < ws, "index {:?} outside shape {:?}", [n, c, y, x], self.shape);
        ((n * cs + c) * hs + y) * ws + x
    }

    /// The element at `[n, c, y, x]`.
    pub fn at(&self, index: [usize; 4]) -> f32 {
        self.data[self.offset(index)]
    }

    /// The same values seen as a `[n, c * h * w]` matrix: what a fully connected layer after
    /// a convolution reads. No copy, because NCHW already stores each image contiguously.
    pub fn flatten(self) -> Matrix {
        let [n, c, h, w] = self.shape;
        Matrix::from_vec(n, c * h * w, self.data)
    }
}

/// A dense `rows x cols` matrix of `f32`, row-major: `(i, j)` lives at `i * cols + j`.
///
/// Fully connected layers use it with one sample per row (`[batch, features]`) and weights as
/// `[out_features, in_features]`, PyTorch's layout.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<f32>,
}

impl Matrix {
    /// A matrix of zeros.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Self { rows, cols, data: vec![0.0; rows * cols] }
    }

    /// Wraps `data`, which must hold exactly `rows * cols` values in row-major order.
    ///
    /// # Panics
    ///
    /// When `data.len()` does not match.
    pub fn from_vec(rows: usize, cols: usize, data: Vec<f32>) -> Self {
        assert_eq!(
            data.len(),
            rows * cols,
            "a {rows} x {cols} matrix holds {} values, got {}",
            rows * cols,
            data.len()
        );
        Self { rows, cols, data }
    }

    /// Deterministic pseudo-random values, uniform in `[-1, 1)`, from `seed`.
    pub fn random(rows: usize, cols: usize, seed: u64) -> Self {
        Self { rows, cols, data: uniform(rows * cols, seed) }
    }

    /// The number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The values in row-major order.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The values in row-major order, for writing.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// The flat vector, without copying.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }

    /// The element at row `i`, column `j`.
    pub fn at(&self, i: usize, j: usize) -> f32 {
        self.data[i * self.cols + j]
    }

    /// The same values as an NCHW tensor of `shape` (the inverse of [`Tensor4::flatten`]).
    ///
    /// # Panics
    ///
    /// When `shape` does not hold `rows * cols` values.
    pub fn into_tensor4(self, shape: [usize; 4]) -> Tensor4 {
        Tensor4::from_vec(shape, self.data)
    }
}

/// `len` deterministic pseudo-random values, uniform in `[-1, 1)`, from `seed`.
///
/// The generator is splitmix64, small enough to read and good enough for test inputs and
/// initial weights; it keeps this crate free of a random-number dependency.
pub fn uniform(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            // The top 24 bits give every f32 in [0, 1) on a grid of 2^-24, exactly.
            let unit = (z >> 40) as f32 / (1u64 << 24) as f32;
            2.0 * unit - 1.0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_nchw_row_major() {
        let t = Tensor4::from_fn([2, 3, 4, 5], |[n, c, y, x]| (1000 * n + 100 * c + 10 * y + x) as f32);
        assert_eq!(t.offset([1, 2, 3, 4]), ((3 + 2) * 4 + 3) * 5 + 4);
        assert_eq!(t.at([1, 2, 3, 4]), 1234.0);
        assert_eq!(t.data()[t.offset([0, 1, 0, 0])], 100.0);
    }

    #[test]
    fn uniform_values_stay_in_range_and_repeat_per_seed() {
        let a = uniform(10_000, 7);
        assert!(a.iter().all(|v| (-1.0..1.0).contains(v)));
        assert_eq!(a, uniform(10_000, 7));
        assert_ne!(a, uniform(10_000, 8));
        let mean = a.iter().sum::<f32>() / a.len() as f32;
        assert!(mean.abs() < 0.05, "mean {mean}");
    }

    #[test]
    fn flatten_keeps_each_image_in_one_row() {
        let t = Tensor4::from_fn([2, 2, 1, 2], |[n, c, _, x]| (10 * n + 2 * c + x) as f32);
        let m = t.flatten();
        assert_eq!((m.rows(), m.cols()), (2, 4));
        assert_eq!(m.data(), [0.0, 1.0, 2.0, 3.0, 10.0, 11.0, 12.0, 13.0]);
    }
}
