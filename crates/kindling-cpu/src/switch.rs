//! When the fast path applies: the `KINDLING_FAST_CPU` switch and the element type. Every
//! drop-in checks both before it looks at the device. `KINDLING_WINOGRAD=0` keeps the
//! convolutions off the Winograd kernels (for comparisons).

use std::sync::OnceLock;

/// Whether the fast path is on: unless `KINDLING_FAST_CPU=0`.
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var("KINDLING_FAST_CPU").map_or(true, |v| v != "0"))
}

/// Whether the Winograd kernels may run where `Geometry::winograd_*` picks them: unless
/// `KINDLING_WINOGRAD=0`.
pub(crate) fn winograd_enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var("KINDLING_WINOGRAD").map_or(true, |v| v != "0"))
}

/// The kernels compute in `f32`; tensors of any other type take burn's ops.
pub(crate) fn f32_only(types: &[burn::tensor::DType]) -> bool {
    types.iter().all(|t| *t == burn::tensor::DType::F32)
}
