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
        tensor: Tensor<D>,
        grad: Tensor<D>,
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
        let t = step as f64;
        // On the CPU device, one pass with the same operations and scalars (bit for bit the
        // tensor form below; tested).
        let scalars = kindling_cpu::AdamScalars {
            decay: (self.decoupled_weight_decay != 0.0).then_some((1.0 - lr * self.decoupled_weight_decay) as f32),
            l2: (self.weight_decay != 0.0).then_some(self.weight_decay as f32),
            lerp_weight: (1.0 - beta1) as f32,
            beta2: beta2 as f32,
            one_minus_beta2: (1.0 - beta2) as f32,
            step_size: (lr / (1.0 - beta1.powf(t))) as f32,
            bias_correction2_sqrt: (1.0 - beta2.powf(t)).sqrt() as f32,
            eps: self.eps as f32,
        };
        let max_exp_avg_sq = self.amsgrad.then(|| max_exp_avg_sq.unwrap_or_else(|| exp_avg_sq.zeros_like()));
        match kindling_cpu::adam_step(tensor, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, &scalars) {
            Ok(u) => {
                let state =
                    AdamState { step, exp_avg: u.exp_avg, exp_avg_sq: u.exp_avg_sq, max_exp_avg_sq: u.max_exp_avg_sq };
                (u.param, Some(state))
            }
            Err(inputs) => {
                let (tensor, grad, exp_avg, exp_avg_sq, max_exp_avg_sq) = *inputs;
                let state = AdamState { step, exp_avg, exp_avg_sq, max_exp_avg_sq };
                self.tensor_step(lr, tensor, grad, state)
            }
        }
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

impl TorchAdam {
    /// The step as tensor operations (any device): `state` holds the step count already
    /// advanced and the moments before it (zeros on the first step).
    fn tensor_step<const D: usize>(
        &self,
        lr: LearningRate,
        mut tensor: Tensor<D>,
        mut grad: Tensor<D>,
        state: AdamState<D>,
    ) -> (Tensor<D>, Option<AdamState<D>>) {
        let AdamState { step, exp_avg, exp_avg_sq, max_exp_avg_sq } = state;
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
        let max_exp_avg_sq = max_exp_avg_sq.map(|max| max.max_pair(exp_avg_sq.clone()));
        let second = max_exp_avg_sq.as_ref().unwrap_or(&exp_avg_sq).clone();
        let denom = second.sqrt().div_scalar(bias_correction2_sqrt).add_scalar(self.eps);
        // `param.addcdiv_(exp_avg, denom, value=-step_size)`.
        let tensor = tensor - exp_avg.clone().mul_scalar(step_size).div(denom);
        (tensor, Some(AdamState { step, exp_avg, exp_avg_sq, max_exp_avg_sq }))
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

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    /// `n` values in [-1, 1) with full-width mantissas, from a linear congruential stream.
    fn tensor(n: usize, seed: u64) -> Tensor<2> {
        let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let v: Vec<f32> = (0..n)
            .map(|_| {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                (x >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect();
        Tensor::from_data(TensorData::new(v, [n / 50, 50]), &Device::flex())
    }

    fn bits(t: &Tensor<2>) -> Vec<u32> {
        t.to_data().iter::<f32>().map(f32::to_bits).collect()
    }

    /// The one-pass CPU update equals the tensor operations bit for bit over several steps,
    /// for Adam, AdamW, the L2 penalty and AMSGrad (a parameter large enough to be split
    /// across tasks).
    #[test]
    fn the_fused_cpu_step_is_the_tensor_step_bit_for_bit() {
        let variants = [(0.0, 0.0, false), (0.01, 0.0, false), (0.0, 0.05, true), (0.02, 0.1, true)];
        for (weight_decay, decoupled_weight_decay, amsgrad) in variants {
            let adam = TorchAdam { betas: [0.9, 0.999], eps: 1e-8, weight_decay, decoupled_weight_decay, amsgrad };
            let (mut fused, mut plain) = (tensor(40_000, 1), tensor(40_000, 1));
            let (mut fused_state, mut plain_state) = (None, None);
            for step in 0..4u64 {
                let grad = tensor(40_000, 7 + step);
                (fused, fused_state) = adam.step(1e-2, fused, grad.clone(), fused_state);
                let state = plain_state.unwrap_or_else(|| AdamState {
                    step: 0,
                    exp_avg: grad.zeros_like(),
                    exp_avg_sq: grad.zeros_like(),
                    max_exp_avg_sq: amsgrad.then(|| grad.zeros_like()),
                });
                let state = AdamState { step: state.step + 1, ..state };
                (plain, plain_state) = adam.tensor_step(1e-2, plain, grad, state);
                let what =
                    format!("wd {weight_decay}, decoupled {decoupled_weight_decay}, amsgrad {amsgrad}, step {step}");
                assert_eq!(bits(&fused), bits(&plain), "parameter, {what}");
                let (f, p) = (fused_state.as_ref().unwrap(), plain_state.as_ref().unwrap());
                assert_eq!(bits(&f.exp_avg_sq), bits(&p.exp_avg_sq), "second moment, {what}");
                assert_eq!(bits(&f.exp_avg), bits(&p.exp_avg), "first moment, {what}");
            }
        }
    }
}
