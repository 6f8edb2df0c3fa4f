//! The CPU kernels against burn's own ops, in one test executable (each one links burn, so
//! one link instead of three): convolution, the activations and batch normalisation.

mod act;
mod common;
mod conv;
mod norm;
