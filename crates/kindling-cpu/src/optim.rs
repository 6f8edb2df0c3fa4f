//! The Adam/AdamW update of one parameter tensor in a single pass on the CPU device.
//!
//! Written as tensor operations, `torch.optim.Adam`'s update is about a dozen passes over the
//! parameter, each allocating its result (flex runs them one by one). Here each value goes
//! through the same operations, in the same order and with the same `f32` scalars, so the
//! result is bit for bit the one the tensor operations give (tested in kindling-optim), while
//! the parameter and the moments are updated in place when their buffers are not shared.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::Tensor;
use rayon::prelude::*;

use crate::flex::{owned, values};
use crate::simd::simd;
use crate::switch::{enabled, f32_only};

/// The scalars of one Adam step, each already rounded to `f32` as the tensor operations round
/// them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamScalars {
    /// AdamW: the parameter is first multiplied by this (`1 - lr * weight_decay`).
    pub decay: Option<f32>,
    /// Adam: this times the parameter is added to the gradient (the L2 penalty).
    pub l2: Option<f32>,
    /// `1 - beta1`, the weight of `exp_avg.lerp_(grad, 1 - beta1)`.
    pub lerp_weight: f32,
    /// `beta2`.
    pub beta2: f32,
    /// `1 - beta2`.
    pub one_minus_beta2: f32,
    /// `lr / (1 - beta1^t)`.
    pub step_size: f32,
    /// `sqrt(1 - beta2^t)`.
    pub bias_correction2_sqrt: f32,
    /// `eps`.
    pub eps: f32,
}

/// The parameter and its moments after one step.
#[derive(Debug)]
pub struct AdamUpdate<const D: usize> {
    /// The updated parameter.
    pub param: Tensor<D>,
    /// The first moment.
    pub exp_avg: Tensor<D>,
    /// The second moment.
    pub exp_avg_sq: Tensor<D>,
    /// The running maximum of the second moment (AMSGrad).
    pub max_exp_avg_sq: Option<Tensor<D>>,
}

/// The inputs of [`adam_step`], handed back when the fast path does not apply.
pub type AdamInputs<const D: usize> = (Tensor<D>, Tensor<D>, Tensor<D>, Tensor<D>, Option<Tensor<D>>);

/// `t`'s flex buffer, taken without keeping a second reference (so that it can be written in
/// place), or `t` back when it is not a plain CPU tensor.
fn flex_of<const D: usize>(t: Tensor<D>) -> Result<FlexTensor, Box<Tensor<D>>> {
    match t.clone().try_into_primitive::<Flex>() {
        Ok(p) => {
            drop(t);
            Ok(p)
        }
        Err(_) => Err(Box::new(t)),
    }
}

/// One Adam/AdamW (optionally AMSGrad) step for `param` with `grad`, on plain CPU tensors of
/// `f32`; `Err` gives the inputs back untouched anywhere else (the caller then runs the tensor
/// operations).
pub fn adam_step<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    exp_avg: Tensor<D>,
    exp_avg_sq: Tensor<D>,
    max_exp_avg_sq: Option<Tensor<D>>,
    s: &AdamScalars,
) -> Result<AdamUpdate<D>, Box<AdamInputs<D>>> {
    let mut types = vec![param.dtype(), grad.dtype(), exp_avg.dtype(), exp_avg_sq.dtype()];
    types.extend(max_exp_avg_sq.as_ref().map(|t| t.dtype()));
    let same_shape = [grad.dims(), exp_avg.dims(), exp_avg_sq.dims()].iter().all(|d| *d == param.dims())
        && max_exp_avg_sq.as_ref().is_none_or(|t| t.dims() == param.dims());
    if !(enabled() && f32_only(&types) && same_shape) {
        return Err(Box::new((param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq)));
    }
    // All live on one device: if the parameter is a plain CPU tensor, so are the others.
    let param = match flex_of(param) {
        Ok(p) => p,
        Err(param) => return Err(Box::new((*param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq))),
    };
    let back = |t: FlexTensor| Tensor::<D>::from_primitive::<Flex>(t);
    let (grad, exp_avg, exp_avg_sq) = match (flex_of(grad), flex_of(exp_avg), flex_of(exp_avg_sq)) {
        (Ok(g), Ok(m), Ok(v)) => (g, m, v),
        (g, m, v) => {
            let undo = |r: Result<FlexTensor, Box<Tensor<D>>>| r.map_or_else(|t| *t, back);
            return Err(Box::new((back(param), undo(g), undo(m), undo(v), max_exp_avg_sq)));
        }
    };
    let max = match max_exp_avg_sq.map(flex_of) {
        None => None,
        Some(Ok(t)) => Some(owned(t)),
        Some(Err(t)) => return Err(Box::new((back(param), back(grad), back(exp_avg), back(exp_avg_sq), Some(*t)))),
    };
    let (mut p, mut m, mut v, mut max) = (owned(param), owned(exp_avg), owned(exp_avg_sq), max);
    let n = p.layout().num_elements();
    let g = values(&grad);
    {
        let pv = &mut p.try_storage_mut::<f32>().expect("an owned buffer")[..n];
        let mv = &mut m.try_storage_mut::<f32>().expect("an owned buffer")[..n];
        let vv = &mut v.try_storage_mut::<f32>().expect("an owned buffer")[..n];
        let xv = max.as_mut().map(|t| &mut t.try_storage_mut::<f32>().expect("an owned buffer")[..n]);
        update(pv, &g, mv, vv, xv, s);
    }
    Ok(AdamUpdate { param: back(p), exp_avg: back(m), exp_avg_sq: back(v), max_exp_avg_sq: max.map(back) })
}

/// Values per parallel task.
const CHUNK: usize = 1 << 14;

/// The update on values, in chunks spread over the rayon pool.
fn update(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], max: Option<&mut [f32]>, s: &AdamScalars) {
    let chunks =
        p.par_chunks_mut(CHUNK).zip(g.par_chunks(CHUNK)).zip(m.par_chunks_mut(CHUNK)).zip(v.par_chunks_mut(CHUNK));
    match max {
        Some(max) => chunks.zip(max.par_chunks_mut(CHUNK)).for_each(|((((p, g), m), v), x)| {
            simd(|| {
                p.iter_mut().zip(g).zip(m).zip(v).zip(x).for_each(|((((p, g), m), v), x)| step(p, *g, m, v, Some(x), s))
            });
        }),
        None => chunks.for_each(|(((p, g), m), v)| {
            simd(|| p.iter_mut().zip(g).zip(m).zip(v).for_each(|(((p, g), m), v)| step(p, *g, m, v, None, s)));
        }),
    }
}

/// One value's step, operation for operation as kindling-optim's tensor form (and PyTorch's):
/// Rust does not fuse a multiply and an add, so each operation rounds as its tensor
/// counterpart does.
#[inline(always)]
fn step(p: &mut f32, g: f32, m: &mut f32, v: &mut f32, max: Option<&mut f32>, s: &AdamScalars) {
    let mut param = *p;
    if let Some(decay) = s.decay {
        param *= decay;
    }
    let grad = match s.l2 {
        Some(l2) => g + param * l2,
        None => g,
    };
    // `exp_avg.lerp_(grad, w)`, with ATen's two formulas.
    let w = s.lerp_weight;
    let diff = grad - *m;
    *m = if w.abs() < 0.5 { *m + diff * w } else { grad - diff * (1.0 - w) };
    *v = *v * s.beta2 + grad * s.one_minus_beta2 * grad;
    let second = match max {
        Some(x) => {
            *x = x.max(*v);
            *x
        }
        None => *v,
    };
    let denom = second.sqrt() / s.bias_correction2_sqrt + s.eps;
    *p = param - *m * s.step_size / denom;
}
