//! `torch.optim.Adam` and `torch.optim.AdamW` as a burn [`Optimizer`], in PyTorch's operation
//! order with PyTorch's scalar precision.
//!
//! burn's Adam holds `beta_1`, `beta_2` and `epsilon` as f32 and computes `1 - beta` and the bias
//! corrections `1 - beta^t` in f32. With PyTorch's `beta_2 = 0.999` both lose about five
//! digits to cancellation (`1 - 0.999_f32^t` is off by up to an f32 ulp of 1, 6e-8, out of
//! 0.001 t), and 20 steps end 3e-5 (relative) away from what PyTorch computes. PyTorch
//! computes these scalars as Python floats (f64) and rounds each to f32 once, where it meets a
//! tensor; so does this optimizer.

use burn::optim::{LearningRate, Optimizer, RecordState, StateSink, StateSource};
use burn::store::burn_pack::Scalar;
use burn::tensor::{Device, Tensor};

/// The update of `torch.optim.Adam` (coupled weight decay) or `torch.optim.AdamW` (decoupled),
/// for one parameter tensor at a time.
#[derive(Clone, Debug)]
pub(crate) struct TorchAdam {
    pub(crate) betas: [f64; 2],
    pub(crate) eps: f64,
    /// Adam's L2 penalty, added to the gradient.
    pub(crate) weight_decay: f64,
    /// AdamW's decay: the weights are multiplied by `1 - lr * decoupled_weight_decay` first.
    pub(crate) decoupled_weight_decay: f64,
    pub(crate) amsgrad: bool,
}

/// PyTorch's per-parameter state, saved under the same names: `step` (a scalar), `exp_avg`,
/// `exp_avg_sq` and, with AMSGrad, `max_exp_avg_sq`.
#[derive(Clone, Debug)]
pub(crate) struct AdamState<const D: usize> {
    step: u64,
    exp_avg: Tensor<D>,
    exp_avg_sq: Tensor<D>,
    max_exp_avg_sq: Option<Tensor<D>>,
}

impl Optimizer for TorchAdam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        mut tensor: Tensor<D>,
        mut grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        // PyTorch starts every moment at zero, which the first update below turns into the
        // first gradient's share exactly.
        let AdamState { step, exp_avg, exp_avg_sq, max_exp_avg_sq } = state.unwrap_or_else(|| AdamState {
            step: 0,
            exp_avg: grad.zeros_like(),
            exp_avg_sq: grad.zeros_like(),
            max_exp_avg_sq: self.amsgrad.then(|| grad.zeros_like()),
        });
        let step = step + 1;
        let [beta1, beta2] = self.betas;
        if self.decoupled_weight_decay != 0.0 {
            tensor = tensor.mul_scalar(1.0 - lr * self.decoupled_weight_decay);
        }
        if self.weight_decay != 0.0 {
            grad = grad.add(tensor.clone().mul_scalar(self.weight_decay));
        }
        let exp_avg = lerp(exp_avg, grad.clone(), 1.0 - beta1);
        // `exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)`.
        let exp_avg_sq = exp_avg_sq.mul_scalar(beta2).add(grad.clone().mul_scalar(1.0 - beta2).mul(grad));
        let t = step as f64;
        let step_size = lr / (1.0 - beta1.powf(t));
        let bias_correction2_sqrt = (1.0 - beta2.powf(t)).sqrt();
        let max_exp_avg_sq = self
            .amsgrad
            .then(|| max_exp_avg_sq.unwrap_or_else(|| exp_avg_sq.zeros_like()).max_pair(exp_avg_sq.clone()));
        let second = max_exp_avg_sq.as_ref().unwrap_or(&exp_avg_sq).clone();
        let denom = second.sqrt().div_scalar(bias_correction2_sqrt).add_scalar(self.eps);
        // `param.addcdiv_(exp_avg, denom, value=-step_size)`.
        let tensor = tensor - exp_avg.clone().mul_scalar(step_size).div(denom);
        (tensor, Some(AdamState { step, exp_avg, exp_avg_sq, max_exp_avg_sq }))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        AdamState {
            step: state.step,
            exp_avg: state.exp_avg.to_device(device),
            exp_avg_sq: state.exp_avg_sq.to_device(device),
            max_exp_avg_sq: state.max_exp_avg_sq.map(|t| t.to_device(device)),
        }
    }
}

impl<const D: usize> RecordState for AdamState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        out.push_scalar(prefix, "step", Scalar::from(self.step));
        out.push_tensor(prefix, "exp_avg", self.exp_avg.to_data());
        out.push_tensor(prefix, "exp_avg_sq", self.exp_avg_sq.to_data());
        if let Some(max) = &self.max_exp_avg_sq {
            out.push_tensor(prefix, "max_exp_avg_sq", max.to_data());
        }
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let step = u64::try_from(src.take_scalar(prefix, "step")?).ok()?;
        let mut tensor = |name: &str| src.take_tensor(prefix, name).map(|data| Tensor::from_data(data, device));
        Some(Self {
            step,
            exp_avg: tensor("exp_avg")?,
            exp_avg_sq: tensor("exp_avg_sq")?,
            max_exp_avg_sq: tensor("max_exp_avg_sq"),
        })
    }
}

/// `start.lerp_(end, weight)` with a Python-float weight, as ATen computes it on f32: two
/// formulas, each accurate near its own end.
pub(crate) fn lerp<const D: usize>(start: Tensor<D>, end: Tensor<D>, weight: f64) -> Tensor<D> {
    let weight = weight as f32;
    let diff = end.clone() - start.clone();
    if weight.abs() < 0.5 { start + diff.mul_scalar(weight) } else { end - diff.mul_scalar(1.0 - weight) }
}
