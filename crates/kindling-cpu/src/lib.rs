//! Faster CPU kernels for the training path on burn's flex backend, without patching burn.
//!
//! [`conv2d`] is a drop-in for `burn::tensor::module::conv2d`. On the autodiff CPU device
//! (flex under `Autodiff`) it records its own step with burn's autodiff: forward and input
//! gradient by im2col + GEMM per image, images spread over the rayon pool, and a weight
//! gradient that is one fused reduction over the batch:
//!
//! ```text
//! dW[o, (c, ky, kx)] = sum over images b of  dY_b[o, :] · im2col(x_b)[(c, ky, kx), :]ᵀ
//! ```
//!
//! one GEMM per image (m = out channels, n = in channels x kernel area, k = output pixels),
//! each worker accumulating its own `dW`. burn 0.22's generic weight gradient instead runs a
//! convolution over batch/channel-swapped tensors, one GEMM with n = kernel area per input
//! channel, each re-reading the whole output gradient; BENCHMARKS.md has the measured
//! difference per layer. On plain flex tensors (evaluation) it is the same forward pass; on any
//! other device, or for grouped convolutions, it is burn's `conv2d`.
//!
//! [`conv2d_eval`] is the evaluation pass of a convolution followed by batch norm (running
//! statistics), ReLU or tanh and a 2x2 pool, each optional: on plain flex tensors they run on
//! each image's output while it is in cache, bit for bit the separate operations.
//!
//! [`max_pool2d`], [`avg_pool2d`], [`relu`], [`tanh`], [`batch_norm_train`] and
//! [`batch_norm_eval`] are drop-ins of the same kind for burn's ops: one parallel pass each (per
//! channel for batch norm), activations in place when the buffer is not shared. [`adam_step`]
//! is the Adam/AdamW update of one parameter in one pass, bit for bit the tensor operations'.
//!
//! Every path is checked against burn's own op and its gradients (tests/kernels/: conv.rs,
//! act.rs, norm.rs; the Adam step in kindling-optim).
//! Setting `KINDLING_FAST_CPU=0` turns the fast path off, for comparisons.
//!
//! # Where things are
//!
//! `conv.rs` is the convolution drop-in and its autodiff step; `geometry.rs` describes one
//! convolution and picks its layout; `im2col.rs` (products through `kindling-gemm`, the
//! workspace's one audited unsafe call), `direct.rs` and `winograd.rs` are its three kinds of
//! kernel (Winograd F(2x2, 3x3) where the AVX-512 direct kernels do not run), and
//! `epilogue.rs` what they apply to each image's output at evaluation; `pool.rs`,
//! `act.rs`, `norm.rs` and `optim.rs` are the other drop-ins; `flex.rs`, `simd.rs`, `switch.rs`,
//! `timing.rs` and `scratch.rs` are what they all share (tensor buffers, SIMD dispatch, the
//! on/off switches, the per-thread backward timers and the per-thread pools of scratch
//! buffers).

mod act;
mod conv;
mod direct;
mod epilogue;
mod flex;
mod geometry;
mod im2col;
mod norm;
mod optim;
mod pool;
mod scratch;
mod simd;
mod switch;
mod timing;
mod winograd;

pub use act::{Nonlinearity, relu, tanh};
pub use conv::{
    EvalBatchNorm, EvalPool, conv2d, conv2d_eval, conv2d_relu, forward_values, input_grad_values, weight_grad_values,
};
pub use direct::has_avx512;
pub use geometry::Geometry;
pub use im2col::{forward_im2col, input_grad_im2col, weight_grad_im2col};
pub use norm::*;
pub use optim::{AdamInputs, AdamScalars, AdamUpdate, adam_step};
pub use pool::{AvgPool, MaxPool, avg_pool2d, max_pool_backward_values, max_pool2d};
pub use simd::isa;
pub use switch::enabled;
pub use timing::{BackwardTimes, backward_times, fused_weight_grads};
pub use winograd::{forward_winograd, input_grad_winograd, weight_grad_winograd};
