//! `torch.optim.RMSprop` as a burn [`Optimizer`], in PyTorch's operation order with PyTorch's
//! scalar precision.
//!
//! burn's RMSprop holds `alpha` as f32 and computes `1 - alpha` in f32: with PyTorch's
//! `alpha = 0.99` that factor is 0.0099999905 rather than 0.01 (1e-6 relative), which momentum
//! amplifies to 1e-5 after 20 steps. Here `1 - alpha` is a Python float (f64) rounded once.

use burn::optim::{LearningRate, Optimizer, RecordState, StateSink, StateSource};
use burn::tensor::{Device, Tensor};

use crate::adam::lerp;

/// The update of `torch.optim.RMSprop` for one parameter tensor at a time.
#[derive(Clone, Debug)]
pub(crate) struct TorchRmsProp {
    pub(crate) alpha: f64,
    pub(crate) eps: f64,
    pub(crate) weight_decay: f64,
    pub(crate) momentum: f64,
    pub(crate) centered: bool,
}

/// PyTorch's per-parameter state, saved under the same names: `square_avg`, with momentum
/// `momentum_buffer`, and when centered `grad_avg`. (PyTorch's `step` counter does not enter
/// the update, so it is not kept.)
#[derive(Clone, Debug)]
pub(crate) struct RmsPropState<const D: usize> {
    square_avg: Tensor<D>,
    momentum_buffer: Option<Tensor<D>>,
    grad_avg: Option<Tensor<D>>,
}

impl Optimizer for TorchRmsProp {
    type State<const D: usize> = RmsPropState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        mut grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        // PyTorch starts every average and the buffer at zero.
        let zeros = || grad.zeros_like();
        let RmsPropState { square_avg, momentum_buffer, grad_avg } =
            state.unwrap_or_else(|| RmsPropState { square_avg: zeros(), momentum_buffer: None, grad_avg: None });
        if self.weight_decay != 0.0 {
            grad = grad.add(tensor.clone().mul_scalar(self.weight_decay));
        }
        // `square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)`.
        let square_avg =
            square_avg.mul_scalar(self.alpha).add(grad.clone().mul_scalar(1.0 - self.alpha).mul(grad.clone()));
        let (avg, grad_avg) = if self.centered {
            let grad_avg = lerp(grad_avg.unwrap_or_else(|| grad.zeros_like()), grad.clone(), 1.0 - self.alpha);
            // `square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()`.
            (square_avg.clone().sub(grad_avg.clone().mul(grad_avg.clone())).sqrt(), Some(grad_avg))
        } else {
            (square_avg.clone().sqrt(), None)
        };
        let avg = avg.add_scalar(self.eps);
        let (tensor, momentum_buffer) = if self.momentum > 0.0 {
            // `buf.mul_(momentum).addcdiv_(grad, avg)`, then `param.add_(buf, alpha=-lr)`.
            let buffer =
                momentum_buffer.unwrap_or_else(|| grad.zeros_like()).mul_scalar(self.momentum).add(grad.div(avg));
            (tensor - buffer.clone().mul_scalar(lr), Some(buffer))
        } else {
            // `param.addcdiv_(grad, avg, value=-lr)`.
            (tensor - grad.mul_scalar(lr).div(avg), None)
        };
        (tensor, Some(RmsPropState { square_avg, momentum_buffer, grad_avg }))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        RmsPropState {
            square_avg: state.square_avg.to_device(device),
            momentum_buffer: state.momentum_buffer.map(|t| t.to_device(device)),
            grad_avg: state.grad_avg.map(|t| t.to_device(device)),
        }
    }
}

impl<const D: usize> RecordState for RmsPropState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        out.push_tensor(prefix, "square_avg", self.square_avg.to_data());
        for (name, tensor) in [("momentum_buffer", &self.momentum_buffer), ("grad_avg", &self.grad_avg)] {
            if let Some(tensor) = tensor {
                out.push_tensor(prefix, name, tensor.to_data());
            }
        }
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let mut tensor = |name: &str| src.take_tensor(prefix, name).map(|data| Tensor::from_data(data, device));
        Some(Self {
            square_avg: tensor("square_avg")?,
            momentum_buffer: tensor("momentum_buffer"),
            grad_avg: tensor("grad_avg"),
        })
    }
}
