//! Each optimizer against PyTorch: 20 steps on `loss = 0.5 * sum(w^2)` (so the gradient is `w`
//! and changes every step, exercising momentum and moment estimates), from the same start, must
//! give the same weights to within 1e-6 relative as
//!
//! - a reference implementation of PyTorch's update rule written here, and
//! - PyTorch itself: `test_data/pytorch_20_steps.jsonl` holds each case (an optimizer block as
//!   Kindling reads it) with the weights PyTorch computed, made by the script beside it.
//!
//! The references compute what PyTorch computes for f32 parameters: f32 values, updated in the
//! order of PyTorch's single-tensor implementations (the ones it uses on the CPU), with the
//! hyper-parameters and the scalars derived from them (`1 - beta`, bias corrections, Adagrad's
//! decayed rate) as Python floats, that is f64 rounded to f32 where they meet a tensor. They
//! agree with the recorded PyTorch weights to 6e-7 relative (PyTorch fuses some multiply-adds)
//! and with Kindling's optimizers bit for bit.
//!
//! These tests once needed 1e-5, and an f64 reference was not the reason (it agrees with the f32
//! one to 3e-7): burn's own Adam and RMSprop keep `beta`/`alpha` in f32 and compute `1 - beta`
//! and `1 - beta^t` in f32, which with PyTorch's `beta_2 = 0.999` or `alpha = 0.99` loses about
//! five digits; Kindling's optimizers now compute those scalars as PyTorch does (see
//! `burns_own_adam_misses_pytorch_by_3e_5`).

use burn::module::{Module, Param};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};
use kindling_optim::{Adagrad, Adam, AdamW, OptimizerConfig, RmsProp, Sgd};

#[derive(Module, Debug)]
struct Weights {
    w: Param<Tensor<1>>,
}

const START: [f32; 4] = [1.0, -2.0, 0.5, 3.0];
const STEPS: usize = 20;

/// The gradient of `0.5 * sum(w^2)` for the weights, one optimizer step, `steps` times.
fn train(model: Weights, optimizer: &mut ModuleOptimizer, lr: f64, steps: usize) -> Weights {
    (0..steps).fold(model, |model, _| {
        let loss = model.w.val().powi_scalar(2).sum().mul_scalar(0.5);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        optimizer.step(lr, model, grads)
    })
}

fn start(device: &Device) -> Weights {
    Weights { w: Param::from_tensor(Tensor::from_data(TensorData::new(START.to_vec(), [4]), device)) }
}

fn values(model: &Weights) -> Vec<f32> {
    model.w.val().into_data().try_to_vec::<f32>().unwrap()
}

/// The weights after `STEPS` steps of `config` through burn.
fn burn_weights(config: &OptimizerConfig) -> Vec<f32> {
    values(&train(start(&Device::flex().autodiff()), &mut config.build(), config.lr(), STEPS))
}

/// A Python float meeting an f32 tensor: PyTorch rounds it to the tensor's type.
fn f(x: f64) -> f32 {
    x as f32
}

/// `torch.lerp(start, end, weight)` on f32, as ATen computes it (two formulas, for accuracy
/// near either end).
fn lerp(start: f32, end: f32, weight: f32) -> f32 {
    if weight.abs() < 0.5 { start + weight * (end - start) } else { end - (end - start) * (1.0 - weight) }
}

/// `grad.add(param, alpha=weight_decay)`, skipped at 0 as PyTorch skips it.
fn l2(grad: f32, param: f32, weight_decay: f64) -> f32 {
    if weight_decay != 0.0 { grad + f(weight_decay) * param } else { grad }
}

/// `torch.optim.SGD`'s update, as `_single_tensor_sgd` computes it.
fn sgd_reference(s: &Sgd) -> Vec<f32> {
    let mut w = START.to_vec();
    let mut buf = vec![0.0_f32; w.len()];
    for t in 1..=STEPS {
        for i in 0..w.len() {
            let mut g = l2(w[i], w[i], s.weight_decay);
            if s.momentum != 0.0 {
                // The buffer starts as a copy of the first gradient, without dampening.
                buf[i] = if t == 1 { g } else { buf[i] * f(s.momentum) + f(1.0 - s.dampening) * g };
                g = if s.nesterov { g + f(s.momentum) * buf[i] } else { buf[i] };
            }
            w[i] += f(-s.lr) * g;
        }
    }
    w
}

/// `torch.optim.Adam`'s update: weight decay added to the gradient.
fn adam_reference(a: &Adam) -> Vec<f32> {
    adam_family(a.lr, a.betas, a.eps, a.amsgrad, a.weight_decay, 0.0)
}

/// `torch.optim.AdamW`'s update: the weights decayed by `lr * weight_decay` first.
fn adamw_reference(a: &AdamW) -> Vec<f32> {
    adam_family(a.lr, a.betas, a.eps, a.amsgrad, 0.0, a.weight_decay)
}

/// `_single_tensor_adam` with coupled (`coupled`, added to the gradient) and decoupled
/// (`decoupled`, `param.mul_(1 - lr * decoupled)` before the step) weight decay.
fn adam_family(lr: f64, [b1, b2]: [f64; 2], eps: f64, amsgrad: bool, coupled: f64, decoupled: f64) -> Vec<f32> {
    let mut w = START.to_vec();
    let (mut m, mut v, mut v_max) = (vec![0.0_f32; 4], vec![0.0_f32; 4], vec![0.0_f32; 4]);
    for t in 1..=STEPS {
        let step = t as f64;
        let step_size = lr / (1.0 - b1.powf(step));
        let bias_correction2_sqrt = (1.0 - b2.powf(step)).sqrt();
        for i in 0..w.len() {
            let grad = w[i];
            if decoupled != 0.0 {
                w[i] *= f(1.0 - lr * decoupled);
            }
            let g = l2(grad, w[i], coupled);
            m[i] = lerp(m[i], g, f(1.0 - b1));
            v[i] = v[i] * f(b2) + f(1.0 - b2) * g * g;
            v_max[i] = v_max[i].max(v[i]);
            let second = if amsgrad { v_max[i] } else { v[i] };
            let denom = second.sqrt() / f(bias_correction2_sqrt) + f(eps);
            w[i] += f(-step_size) * m[i] / denom;
        }
    }
    w
}

/// `torch.optim.Adagrad`'s update, as `_single_tensor_adagrad` computes it.
fn adagrad_reference(a: &Adagrad) -> Vec<f32> {
    let mut w = START.to_vec();
    let mut sum = [f(a.initial_accumulator_value); 4];
    for t in 1..=STEPS {
        let clr = a.lr / (1.0 + (t - 1) as f64 * a.lr_decay);
        for i in 0..w.len() {
            let g = l2(w[i], w[i], a.weight_decay);
            sum[i] += g * g;
            let std = sum[i].sqrt() + f(a.eps);
            w[i] += f(-clr) * g / std;
        }
    }
    w
}

/// `torch.optim.RMSprop`'s update, as `_single_tensor_rmsprop` computes it.
fn rmsprop_reference(r: &RmsProp) -> Vec<f32> {
    let mut w = START.to_vec();
    let (mut v, mut g_avg, mut buf) = (vec![0.0_f32; 4], vec![0.0_f32; 4], vec![0.0_f32; 4]);
    for _ in 1..=STEPS {
        for i in 0..w.len() {
            let g = l2(w[i], w[i], r.weight_decay);
            v[i] = v[i] * f(r.alpha) + f(1.0 - r.alpha) * g * g;
            let avg = if r.centered {
                g_avg[i] = lerp(g_avg[i], g, f(1.0 - r.alpha));
                (v[i] + -g_avg[i] * g_avg[i]).sqrt()
            } else {
                v[i].sqrt()
            } + f(r.eps);
            if r.momentum > 0.0 {
                buf[i] = buf[i] * f(r.momentum) + g / avg;
                w[i] += f(-r.lr) * buf[i];
            } else {
                w[i] += f(-r.lr) * g / avg;
            }
        }
    }
    w
}

/// One line of `test_data/pytorch_20_steps.jsonl`.
#[derive(serde::Deserialize)]
struct Recorded {
    optimizer: OptimizerConfig,
    pytorch: Vec<f32>,
}

/// The recorded cases of the optimizer called `name`.
fn recorded(name: &str) -> Vec<Recorded> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/test_data/pytorch_20_steps.jsonl");
    let text = std::fs::read_to_string(path).unwrap();
    let cases: Vec<Recorded> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{path}: {e}: {line}")))
        .filter(|case: &Recorded| serde_json::to_value(&case.optimizer).unwrap()["name"] == name)
        .collect();
    assert!(cases.len() >= 3, "{path} has {} cases of {name}", cases.len());
    cases
}

/// Each element of `got` is within 1e-6 relative of `want`.
fn close(got: &[f32], want: &[f32]) -> bool {
    got.len() == want.len() && got.iter().zip(want).all(|(g, w)| (g - w).abs() <= 1e-6 * w.abs())
}

/// Every recorded case of `name`: Kindling's weights after `STEPS` steps, the reference's and
/// PyTorch's agree within 1e-6 relative.
fn check(name: &str, reference: impl Fn(&OptimizerConfig) -> Vec<f32>) {
    for Recorded { optimizer, pytorch } in recorded(name) {
        let expected = reference(&optimizer);
        assert!(
            close(&expected, &pytorch),
            "{optimizer:?}: the reference is not PyTorch's\n got {expected:?}\nwant {pytorch:?}"
        );
        let got = burn_weights(&optimizer);
        assert!(close(&got, &expected), "{optimizer:?}\n got {got:?}\nwant {expected:?}");
        // The weights moved, so the comparison means something.
        assert!(expected.iter().zip(START).any(|(e, s)| (e - s).abs() > 1e-3), "{optimizer:?} did not move");
    }
}

#[test]
fn sgd_matches_pytorch() {
    check("sgd", |c| match c {
        OptimizerConfig::Sgd(s) => sgd_reference(s),
        other => unreachable!("{other:?}"),
    });
}

#[test]
fn adam_matches_pytorch() {
    check("adam", |c| match c {
        OptimizerConfig::Adam(a) => adam_reference(a),
        other => unreachable!("{other:?}"),
    });
}

#[test]
fn adamw_matches_pytorch() {
    check("adamw", |c| match c {
        OptimizerConfig::Adamw(a) => adamw_reference(a),
        other => unreachable!("{other:?}"),
    });
}

/// Including `initial_accumulator_value` 0.1, alone and with `lr_decay` (and weight decay).
#[test]
fn adagrad_matches_pytorch() {
    check("adagrad", |c| match c {
        OptimizerConfig::Adagrad(a) => adagrad_reference(a),
        other => unreachable!("{other:?}"),
    });
}

#[test]
fn rmsprop_matches_pytorch() {
    check("rmsprop", |c| match c {
        OptimizerConfig::Rmsprop(r) => rmsprop_reference(r),
        other => unreachable!("{other:?}"),
    });
}

/// Why Kindling has its own Adam: burn 0.22.1's, given PyTorch's values, ends 2.7e-5 (relative)
/// away from PyTorch after the 20 steps, because it computes `1 - beta_2` and `1 - beta_2^t` in
/// f32. Should burn compute them in f64 one day, this test fails, and Kindling can go back to
/// burn's Adam.
#[test]
fn burns_own_adam_misses_pytorch_by_3e_5() {
    let adam = Adam { lr: 0.1, ..Adam::default() };
    let mut burns = burn::optim::AdamConfig::new().with_beta_1(0.9).with_beta_2(0.999).with_epsilon(1e-8).init();
    let got = values(&train(start(&Device::flex().autodiff()), &mut burns, adam.lr, STEPS));
    let expected = adam_reference(&adam);
    let worst = got.iter().zip(&expected).map(|(g, e)| ((g - e) / e).abs()).fold(0.0, f32::max);
    assert!(worst > 1e-5, "burn's Adam is now within {worst:e} of PyTorch's");
    assert!(close(&burn_weights(&OptimizerConfig::Adam(adam.clone())), &expected));
}

/// Saving the optimizer after 7 steps and loading it into a freshly built one, as a training
/// checkpoint does, continues exactly where the uninterrupted run goes; a fresh optimizer
/// without the saved state does not (so the state, not luck, makes the two agree).
#[test]
fn every_optimizer_resumes_exactly_from_its_saved_state() {
    let configs = [
        OptimizerConfig::Sgd(Sgd { lr: 0.05, momentum: 0.9, nesterov: true, ..Sgd::default() }),
        OptimizerConfig::Adam(Adam { lr: 0.1, ..Adam::default() }),
        OptimizerConfig::Adam(Adam { lr: 0.1, amsgrad: true, ..Adam::default() }),
        OptimizerConfig::Adamw(AdamW { lr: 0.05, ..AdamW::default() }),
        OptimizerConfig::Adagrad(Adagrad { lr: 0.1, ..Adagrad::default() }),
        OptimizerConfig::Adagrad(Adagrad {
            lr: 0.1,
            lr_decay: 0.05,
            initial_accumulator_value: 0.1,
            ..Adagrad::default()
        }),
        OptimizerConfig::Rmsprop(RmsProp { lr: 0.01, ..RmsProp::default() }),
        OptimizerConfig::Rmsprop(RmsProp { lr: 0.01, centered: true, momentum: 0.5, ..RmsProp::default() }),
    ];
    let device = Device::flex().autodiff();
    for config in configs {
        let lr = config.lr();
        let uninterrupted = values(&train(start(&device), &mut config.build(), lr, STEPS));

        let mut first = config.build();
        let halfway = train(start(&device), &mut first, lr, 7);
        let bytes = first.into_bytes().unwrap();
        let mut second = config.build().from_bytes(bytes).unwrap();
        let resumed = values(&train(halfway.clone(), &mut second, lr, STEPS - 7));
        assert_eq!(resumed, uninterrupted, "{config:?}");

        let restarted = values(&train(halfway, &mut config.build(), lr, STEPS - 7));
        assert_ne!(restarted, uninterrupted, "{config:?}: the state makes no difference, the test proves nothing");
    }
}

#[test]
fn defaults_are_pytorchs_not_burns() {
    let sgd: OptimizerConfig = serde_json::from_value(serde_json::json!({"name": "sgd"})).unwrap();
    assert_eq!(
        sgd,
        OptimizerConfig::Sgd(Sgd { lr: 1e-3, momentum: 0.0, dampening: 0.0, weight_decay: 0.0, nesterov: false })
    );
    // Without a name, Adam (the training stage's default optimizer).
    let adam: OptimizerConfig = serde_json::from_value(serde_json::json!({"lr": 1e-3})).unwrap();
    assert_eq!(
        adam,
        OptimizerConfig::Adam(Adam { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0.0, amsgrad: false })
    );
    let adagrad: OptimizerConfig = serde_json::from_value(serde_json::json!({"name": "adagrad"})).unwrap();
    assert_eq!(
        adagrad,
        OptimizerConfig::Adagrad(Adagrad {
            lr: 1e-2,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10
        })
    );
}
