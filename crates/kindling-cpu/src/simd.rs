//! Run-time SIMD dispatch for the elementwise loops: the crate is built for baseline x86-64,
//! so a loop is compiled once per instruction set through pulp (gemm's dispatch, already in
//! the build) and the widest this CPU has is chosen when it runs.

/// Runs `f` compiled for the widest vector instructions this CPU has (AVX-512, else AVX2 with
/// FMA, else the baseline), chosen at run time: the crate is built for baseline x86-64, where
/// the compiler vectorises a loop only 4 lanes wide. `f` should be a plain loop over slices,
/// inlined into the closure, so that the compiler can vectorise it for the chosen set.
/// AVX-512 only when the crate's `avx512` feature is on.
///
/// A closure too large for the compiler to inline stays compiled for the baseline; such an
/// operation is a type implementing `pulp::WithSimd` with an `#[inline(always)]` `with_simd`
/// (as in `winograd.rs`), which is always compiled for the chosen set.
#[inline(always)]
pub(crate) fn simd<Op: pulp::WithSimd>(op: Op) -> Op::Output {
    #[cfg(target_arch = "x86_64")]
    {
        if cfg!(feature = "avx512")
            && let Some(isa) = pulp::x86::V4::try_new()
        {
            return pulp::Simd::vectorize(isa, op);
        }
        if let Some(isa) = pulp::x86::V3::try_new() {
            return pulp::Simd::vectorize(isa, op);
        }
    }
    op.with_simd(pulp::Scalar::new())
}

/// The widest vector instructions the kernels of this build run on this CPU: `avx512` (only
/// with the crate's `avx512` feature), `avx2` (with FMA) or `baseline`.
pub fn isa() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if crate::has_avx512() {
            return "avx512";
        }
        if pulp::x86::V3::try_new().is_some() {
            return "avx2";
        }
    }
    "baseline"
}

/// `sum f(v)` in 16 independent `f32` lanes, which the compiler turns into vector adds (a plain
/// `iter().sum()` is one serial chain of float additions).
#[inline(always)]
pub(crate) fn lane_sum(v: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0.0f32; 16];
    let chunks = v.chunks_exact(16);
    let rest: f32 = chunks.remainder().iter().map(|x| f(*x)).sum();
    for chunk in chunks {
        lanes.iter_mut().zip(chunk).for_each(|(l, x)| *l += f(*x));
    }
    lanes.iter().sum::<f32>() + rest
}
