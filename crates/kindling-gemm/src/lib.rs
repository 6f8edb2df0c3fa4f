//! `f32` matrix multiplication through the `gemm` crate, the library behind burn's CPU
//! backend: [`sgemm`] over row-major slices ([`MatRef`], read as stored or transposed).
//!
//! `gemm::gemm` takes raw pointers and strides, so calling it is unsafe; this crate is the one
//! place in the workspace that does (its lints deny unsafe code but for that one call, every
//! other crate forbids it), and it checks what the call relies on first. The training path's
//! im2col (`kindling-cpu`) and the teaching crate (`kindling-kernels`) both multiply through
//! it, so neither depends on the other and both sides of `cargo xtask bench conv` multiply with
//! the same code. It does not write a GEMM of its own, pick thread counts, or know about
//! tensors.

/// A read-only matrix operand of [`sgemm`]: row-major storage, read as stored or transposed.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    data: &'a [f32],
    /// Rows and columns as stored.
    rows: usize,
    cols: usize,
    transposed: bool,
}

impl<'a> MatRef<'a> {
    /// The `rows x cols` matrix stored row-major in `data`.
    ///
    /// # Panics
    ///
    /// When `data.len() != rows * cols`.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert_eq!(
            data.len(),
            rows * cols,
            "a {rows} x {cols} operand holds {} values, got {}",
            rows * cols,
            data.len()
        );
        Self { data, rows, cols, transposed: false }
    }

    /// The same storage read as its transpose; no data moves, only the strides swap.
    #[must_use]
    pub fn t(self) -> Self {
        Self { transposed: !self.transposed, ..self }
    }

    /// Rows and columns as read.
    fn dims(&self) -> (usize, usize) {
        if self.transposed { (self.cols, self.rows) } else { (self.rows, self.cols) }
    }

    /// Row and column strides as read, in elements.
    fn strides(&self) -> (isize, isize) {
        let stored_row = self.cols as isize;
        if self.transposed { (1, stored_row) } else { (stored_row, 1) }
    }
}

/// `c = a · b`, or `c += a · b` when `accumulate`; `c` is `m x n` row-major, where `a` reads
/// as `m x k` and `b` as `k x n`.
///
/// `threads <= 1` runs on the calling thread (`gemm::Parallelism::None`): the training path calls
/// it once per image from its own rayon tasks, and the teaching kernels use it by default, so
/// that comparing them with the single-threaded direct loop compares algorithms rather than
/// thread counts. More threads use rayon's global pool (`gemm::Parallelism::Rayon`), which only
/// pays off for large products.
///
/// # Panics
///
/// When the inner dimensions differ or `c.len() != m * n`.
// `gemm::gemm` takes raw pointers and strides, so calling it is unsafe; this function is the
// one place that does, and it checks what the call relies on first.
#[allow(unsafe_code)]
pub fn sgemm(a: MatRef<'_>, b: MatRef<'_>, c: &mut [f32], accumulate: bool, threads: usize) {
    let (m, k) = a.dims();
    let (kb, n) = b.dims();
    assert_eq!(k, kb, "inner dimensions differ: {m} x {k} times {kb} x {n}");
    assert_eq!(c.len(), m * n, "the {m} x {n} product needs {} values, got {}", m * n, c.len());
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        // An empty sum: nothing to add, or zeros to write.
        if !accumulate {
            c.fill(0.0);
        }
        return;
    }
    let (a_rs, a_cs) = a.strides();
    let (b_rs, b_cs) = b.strides();
    let parallelism = if threads <= 1 { gemm::Parallelism::None } else { gemm::Parallelism::Rayon(threads) };
    // SAFETY: `gemm` reads `a` at `i * a_rs + p * a_cs` for `i < m`, `p < k`. For a stored
    // `r x s` matrix those offsets are `i * s + p` (as stored: `i < r`, `p < s`) or `p * s + i`
    // (transposed: `i < s`, `p < r`), both at most `r * s - 1`, and `MatRef::new` checked that
    // `data.len() == r * s`; the same holds for `b`. It writes `c` at `i * n + j` with `i < m`,
    // `j < n`, inside the `m * n` values asserted above. `c` is a unique borrow, so it cannot
    // overlap `a` or `b`. The element type is `f32`, which `gemm` supports (other types panic
    // rather than misbehave).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a_cs,
            a_rs,
            b.data.as_ptr(),
            b_cs,
            b_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook triple loop, as the reference for the library call.
    fn naive(a: &[f32], a_t: bool, b: &[f32], b_t: bool, m: usize, n: usize, k: usize) -> Vec<f32> {
        let at = |i: usize, p: usize| if a_t { a[p * m + i] } else { a[i * k + p] };
        let bt = |p: usize, j: usize| if b_t { b[j * k + p] } else { b[p * n + j] };
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| at(i, p) * bt(p, j)).sum();
            }
        }
        c
    }

    #[test]
    fn every_transpose_combination_matches_the_triple_loop() {
        let (m, n, k) = (5, 7, 3);
        // Small integers, so every product and sum is exact in `f32`.
        let a: Vec<f32> = (0..m * k).map(|i| (i * 7 % 11) as f32 - 5.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i * 5 % 13) as f32 - 6.0).collect();
        for (a_t, b_t) in [(false, false), (true, false), (false, true), (true, true)] {
            let ar = if a_t { MatRef::new(&a, k, m).t() } else { MatRef::new(&a, m, k) };
            let br = if b_t { MatRef::new(&b, n, k).t() } else { MatRef::new(&b, k, n) };
            for threads in [1, 2] {
                let mut c = vec![f32::NAN; m * n];
                sgemm(ar, br, &mut c, false, threads);
                let want = naive(&a, a_t, &b, b_t, m, n, k);
                for (got, want) in c.iter().zip(&want) {
                    assert!((got - want).abs() < 1e-5, "a_t {a_t} b_t {b_t}: {got} vs {want}");
                }
            }
        }
    }

    #[test]
    fn accumulate_adds_to_what_is_there() {
        let a = [1.0, 2.0];
        let b = [3.0, 4.0];
        let mut c = [10.0];
        sgemm(MatRef::new(&a, 1, 2), MatRef::new(&b, 2, 1), &mut c, true, 1);
        assert_eq!(c, [21.0]);
        sgemm(MatRef::new(&a, 1, 2), MatRef::new(&b, 2, 1), &mut c, false, 1);
        assert_eq!(c, [11.0]);
    }

    #[test]
    fn an_empty_inner_dimension_writes_zeros() {
        let mut c = [5.0; 4];
        sgemm(MatRef::new(&[], 2, 0), MatRef::new(&[], 0, 2), &mut c, false, 1);
        assert_eq!(c, [0.0; 4]);
    }
}
