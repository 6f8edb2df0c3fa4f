//! A convolutional network from first principles: a teaching module, and an independent check
//! of the framework path.
//!
//! Every operation a small CNN needs is written out here on plain `Vec<f32>`, forward and
//! backward: 2-D convolution with stride, padding and dilation, two ways ([`conv2d_direct`],
//! the sliding-window loop, and [`conv2d_im2col`], im2col + GEMM); max pooling that keeps its
//! argmax for the backward pass ([`max_pool2d`]) and average pooling ([`avg_pool2d`]); the
//! fully connected layer ([`dense_forward`]); relu, leaky relu, sigmoid and tanh with their
//! derivatives ([`Activation`]). [`ShallowNet`] chains them into the seed's shallow network
//! and trains it by hand-written backpropagation and SGD. The tests check every gradient
//! against burn's autodiff and against finite differences, and both convolutions against
//! burn's `conv2d`; `cargo xtask bench conv` times the two convolutions against burn's.
//!
//! What it does not do: automatic differentiation (each backward pass is written by hand),
//! grouped or transposed convolution, any element type but `f32`, GPUs. Kindling's models
//! train through burn; nothing in the training path calls this crate.
//!
//! # Layout and shapes
//!
//! [`Tensor4`] stores `[batch, channels, height, width]` row-major (NCHW): element
//! `(n, c, y, x)` is at `((n * C + c) * H + y) * W + x`. A convolution takes
//!
//! ```text
//! input  [batch, in_c, h, w]  x  weight [out_c, in_c, kh, kw]  (+ bias [out_c])
//!   ->   output [batch, out_c, oh, ow]
//!
//! oh = (h + 2·p_h - d_h·(kh - 1) - 1) / s_h + 1     (rounded down; likewise ow)
//! out[n, o, y, x] = bias[o] + Σ_{c < in_c, i < kh, j < kw}
//!                   in[n, c, y·s_h + i·d_h - p_h, x·s_w + j·d_w - p_w] · weight[o, c, i, j]
//! ```
//!
//! with `s` the stride, `p` the zero padding on each side and `d` the dilation (the gap
//! between taps; 1 means adjacent); reads that fall in the padding are zeros. As in every
//! framework this is a cross-correlation: the kernel is not flipped. See [`Conv2dParams`].
//!
//! # The im2col layout
//!
//! For each image, [`im2col`] builds a matrix with one row per kernel tap and one column per
//! output position:
//!
//! ```text
//! cols [in_c·kh·kw, oh·ow]     row    r = (c·kh + i)·kw + j      (tap: channel c, kernel row i, column j)
//!                              column q = y·ow + x               (output position y, x)
//!                              cols[r, q] = in[n, c, y·s_h + i·d_h - p_h, x·s_w + j·d_w - p_w]  (0 in the padding)
//! ```
//!
//! Column `q` is the receptive field of output `(y, x)`, laid out in the same order as one
//! filter of the weight tensor; so the weight read row-major is already the matrix
//! `W [out_c, in_c·kh·kw]`, and the convolution of image `n` is one product,
//! `out[n] = W · cols` (`[out_c, oh·ow]`, which is NCHW order for that image). The backward
//! pass is two more: `dW += dY · colsᵀ` and `dcols = Wᵀ · dY`, after which [`col2im`] (the
//! adjoint of im2col, a scatter-add) folds `dcols` back onto the input's pixels.
//!
//! The GEMMs go through the `gemm` crate ([`sgemm`], re-exported from `kindling-gemm`, which
//! holds the workspace's one unsafe call), on the calling thread unless asked for more
//! ([`conv2d_im2col_with_threads`]), so that direct and im2col compare algorithms, not thread
//! counts. The GEMM itself is not written here on purpose: a fast GEMM is a study of its own
//! (cache blocking, packing, SIMD micro-kernels); what im2col teaches is how convolution
//! becomes one. `gemm` is the library behind burn's CPU backend, so both sides of the
//! benchmark multiply with the same code.

mod activation;
mod conv;
mod dense;
mod pool;
mod shallow;
mod tensor;

pub use activation::{
    Activation, leaky_relu, leaky_relu_derivative, relu, relu_derivative, sigmoid, sigmoid_derivative, tanh,
    tanh_derivative,
};
pub use conv::{
    Conv2dGrads, Conv2dParams, col2im, conv2d_backward_direct, conv2d_backward_im2col, conv2d_direct, conv2d_im2col,
    conv2d_im2col_with_threads, im2col,
};
pub use dense::{DenseGrads, dense_backward, dense_forward};
pub use kindling_gemm::{MatRef, sgemm};
pub use pool::{MaxPool2d, Pool2dParams, avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward};
pub use shallow::{ShallowGrads, ShallowNet, ShallowTrace, squared_error};
pub use tensor::{Matrix, Tensor4, uniform};

/// The README's example, compiled and run as a doctest so it cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
#[derive(Debug)]
pub struct ReadmeDoctests;
