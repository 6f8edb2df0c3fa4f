//! Weight initialisation from the run's own random stream.
//!
//! burn's initialisers draw from a process-wide generator, so two models initialised at the
//! same time (tests, sweeps in one process) would interleave their draws. Drawing from a
//! generator owned by the caller keeps a run's numbers a function of its seed alone.

use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};
use rand::RngExt;
use rand::rngs::StdRng;

/// PyTorch's default for `nn.Conv2d` and `nn.Linear`: weights from `kaiming_uniform_(a=sqrt(5))`
/// and biases from `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`. Both reduce to the same bound,
/// `gain * sqrt(3 / fan_in)` with `gain = sqrt(2 / (1 + 5))`, that is `1 / sqrt(fan_in)`.
pub(crate) fn pytorch_default_bound(fan_in: usize) -> f64 {
    1.0 / (fan_in.max(1) as f64).sqrt()
}

/// A parameter of `shape` filled from `U(-bound, bound)`.
pub(crate) fn uniform<const D: usize>(
    shape: [usize; D],
    bound: f64,
    rng: &mut StdRng,
    device: &Device,
) -> Param<Tensor<D>> {
    let n: usize = shape.iter().product();
    let bound = bound as f32;
    let values: Vec<f32> = (0..n).map(|_| rng.random_range(-bound..bound)).collect();
    Param::from_tensor(Tensor::from_data(TensorData::new(values, shape), device))
}
