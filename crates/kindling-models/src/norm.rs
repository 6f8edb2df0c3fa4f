//! Batch normalisation with PyTorch's running statistics.
//!
//! burn 0.22.1's `BatchNorm` normalises a training batch with its biased variance, as PyTorch
//! does, but also moves `running_var` towards that biased variance. PyTorch's
//! `BatchNorm{1,2}d` moves it towards the unbiased one, `n / (n - 1)` times larger with `n`
//! values per channel (batch x height x width). The running statistics are what evaluation
//! uses and what the PyTorch export carries, so Kindling keeps burn's module (its parameters,
//! records and export names) and replaces its forward: the arithmetic is `kindling_cpu`'s batch
//! norm (one pass per channel and its own backward step on the CPU device, burn's ops anywhere
//! else), the running statistics are updated here.

use burn::nn::BatchNorm;
use burn::tensor::Tensor;

/// `bn` applied to `[batch, channels, ...]` as `torch.nn.BatchNorm{1,2}d` applies it:
///
/// - evaluating (no autodiff, or the layer frozen): normalised with the running statistics, as
///   burn's forward does;
/// - training: normalised with the batch mean and biased variance, and the running statistics
///   updated as `running = (1 - momentum) running + momentum batch`, with the batch's
///   unbiased variance for `running_var`.
///
/// With one value per channel the unbiased variance is undefined: PyTorch refuses to train
/// ("Expected more than 1 value per channel when training"); here the running variance is left
/// as it is.
///
/// With `relu`, a ReLU follows, fused into the same operation (`kindling_cpu`'s
/// `batch_norm_relu_*`: no pass of its own each way on the CPU device).
pub(crate) fn batch_norm<const D: usize>(bn: &BatchNorm, input: Tensor<D>, relu: bool) -> Tensor<D> {
    // The same test as burn's forward, so that frozen layers and validation take the
    // evaluation pass. Both passes are `kindling_cpu`'s, faster on the CPU device and burn's ops
    // anywhere else.
    if !trains(bn, &input) {
        let device = input.device();
        let (mean, var) = (bn.running_mean.value().to_device(&device), bn.running_var.value().to_device(&device));
        let (gamma, beta) = (bn.gamma.val(), bn.beta.val());
        return if relu {
            kindling_cpu::batch_norm_relu_eval(input, mean, var, gamma, beta, bn.epsilon)
        } else {
            kindling_cpu::batch_norm_eval(input, mean, var, gamma, beta, bn.epsilon)
        };
    }
    let dims = input.dims();
    let per_channel = dims.iter().product::<usize>() / dims[1];
    let batch = if relu {
        kindling_cpu::batch_norm_relu_train(input, bn.gamma.val(), bn.beta.val(), bn.epsilon)
    } else {
        kindling_cpu::batch_norm_train(input, bn.gamma.val(), bn.beta.val(), bn.epsilon)
    };
    update_running(bn, batch, per_channel)
}

/// Whether `bn` applied to `input` takes the training pass (batch statistics): an autodiff
/// device and a layer that is not frozen, burn's test.
pub(crate) fn trains<const D: usize>(bn: &BatchNorm, input: &Tensor<D>) -> bool {
    input.device().is_autodiff() && bn.training.is_enabled()
}

/// The training pass of `bn` followed by ReLU and the max pool `pool`, as one operation
/// (`kindling_cpu::batch_norm_relu_pool_train`), with PyTorch's running-statistics update as in
/// [`batch_norm`]. For a layer that [`trains`].
pub(crate) fn batch_norm_relu_pool(bn: &BatchNorm, input: Tensor<4>, pool: kindling_cpu::MaxPool) -> Tensor<4> {
    let dims = input.dims();
    let per_channel = dims.iter().product::<usize>() / dims[1];
    let batch = kindling_cpu::batch_norm_relu_pool_train(input, bn.gamma.val(), bn.beta.val(), bn.epsilon, pool);
    update_running(bn, batch, per_channel)
}

/// Moves `bn`'s running statistics towards the batch's (the unbiased variance, PyTorch's rule)
/// and returns the batch's output.
fn update_running<const D: usize>(
    bn: &BatchNorm,
    batch: kindling_cpu::BatchNormBatch<D>,
    per_channel: usize,
) -> Tensor<D> {
    let device = batch.output.device();
    let momentum = bn.momentum;
    let running = |old: Tensor<1>, new: Tensor<1>| {
        old.to_device(&device).mul_scalar(1.0 - momentum).add(new.detach().mul_scalar(momentum)).detach()
    };
    bn.running_mean.update(running(bn.running_mean.value_sync(), batch.mean));
    if per_channel > 1 {
        let unbiased = batch.variance.mul_scalar(per_channel as f64 / (per_channel - 1) as f64);
        bn.running_var.update(running(bn.running_var.value_sync(), unbiased));
    }
    batch.output
}
