//! `torch.optim.Adagrad` as a burn [`Optimizer`]. burn's own AdaGrad has the learning-rate
//! decay but always starts its sum of squared gradients at zero, so PyTorch's
//! `initial_accumulator_value` needs an optimizer of its own; this one is written in PyTorch's
//! operation order so that f32 results agree with PyTorch's f32 results to a few ulp.

use burn::optim::{LearningRate, Optimizer, RecordState, StateSink, StateSource};
use burn::store::burn_pack::Scalar;
use burn::tensor::{Device, Tensor};

/// The update of `torch.optim.Adagrad` for one parameter tensor at a time.
#[derive(Clone, Debug)]
pub(crate) struct TorchAdagrad {
    pub(crate) lr_decay: f64,
    pub(crate) weight_decay: f64,
    pub(crate) initial_accumulator_value: f64,
    pub(crate) eps: f64,
}

/// What PyTorch keeps per parameter (`state["step"]`, `state["sum"]`), saved under the names
/// `step` (a scalar) and `sum` (a tensor of the parameter's shape) in burn's optimizer records.
#[derive(Clone, Debug)]
pub(crate) struct AdagradState<const D: usize> {
    /// Steps taken so far.
    step: u64,
    /// The sum of squared gradients, starting at `initial_accumulator_value`.
    sum: Tensor<D>,
}

impl Optimizer for TorchAdagrad {
    type State<const D: usize> = AdagradState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        mut grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        // PyTorch creates the state in the constructor; here it appears with the first gradient,
        // which gives the same values.
        let AdagradState { step, sum } =
            state.unwrap_or_else(|| AdagradState { step: 0, sum: grad.full_like(self.initial_accumulator_value) });
        let step = step + 1;
        if self.weight_decay != 0.0 {
            grad = grad.add(tensor.clone().mul_scalar(self.weight_decay));
        }
        // The scalars are Python floats in PyTorch: computed in f64, rounded once when applied.
        let clr = lr / (1.0 + (step - 1) as f64 * self.lr_decay);
        let sum = sum.add(grad.clone().mul(grad.clone()));
        let std = sum.clone().sqrt().add_scalar(self.eps);
        // `param.addcdiv_(grad, std, value=-clr)` evaluates `param + (-clr * grad) / std`.
        let tensor = tensor - grad.mul_scalar(clr).div(std);
        (tensor, Some(AdagradState { step, sum }))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        AdagradState { step: state.step, sum: state.sum.to_device(device) }
    }
}

impl<const D: usize> RecordState for AdagradState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        out.push_scalar(prefix, "step", Scalar::from(self.step));
        out.push_tensor(prefix, "sum", self.sum.to_data());
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let step = u64::try_from(src.take_scalar(prefix, "step")?).ok()?;
        let sum = Tensor::from_data(src.take_tensor(prefix, "sum")?, device);
        Some(Self { step, sum })
    }
}
