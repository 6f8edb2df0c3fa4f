//! Each optimizer against PyTorch's documented update rule, computed here in f64: 20 steps on
//! `loss = 0.5 * sum(w^2)` (so the gradient is `w` and changes every step, exercising momentum
//! and moment estimates), from the same start, must give the same weights to within 1e-5
//! relative. (burn computes in f32; after 20 Adam steps its rounding alone reaches a few 1e-6,
//! so 1e-6 would test f32 rather than the algorithm.)

use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use kindling_optim::{Adagrad, Adam, AdamW, OptimizerConfig, RmsProp, Sgd};

#[derive(Module, Debug)]
struct Weights {
    w: Param<Tensor<1>>,
}

const START: [f64; 4] = [1.0, -2.0, 0.5, 3.0];
const STEPS: usize = 20;

/// The weights after `STEPS` steps of `config` through burn.
fn burn_weights(config: &OptimizerConfig) -> Vec<f64> {
    let device = Device::flex().autodiff();
    let start: Vec<f32> = START.iter().map(|&v| v as f32).collect();
    let mut model = Weights { w: Param::from_tensor(Tensor::from_data(TensorData::new(start, [4]), &device)) };
    let mut optimizer = config.build();
    for _ in 0..STEPS {
        let loss = model.w.val().powi_scalar(2).sum().mul_scalar(0.5);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(config.lr(), model, grads);
    }
    model.w.val().into_data().try_to_vec::<f32>().unwrap().into_iter().map(f64::from).collect()
}

/// `torch.optim.SGD`'s algorithm, from its documentation.
fn sgd_reference(s: &Sgd) -> Vec<f64> {
    let mut w = START.to_vec();
    let mut buf = vec![0.0; w.len()];
    for t in 1..=STEPS {
        for i in 0..w.len() {
            let mut g = w[i] + s.weight_decay * w[i];
            if s.momentum != 0.0 {
                buf[i] = if t == 1 { g } else { s.momentum * buf[i] + (1.0 - s.dampening) * g };
                g = if s.nesterov { g + s.momentum * buf[i] } else { buf[i] };
            }
            w[i] -= s.lr * g;
        }
    }
    w
}

/// `torch.optim.Adam`'s algorithm, from its documentation: weight decay added to the gradient.
fn adam_reference(a: &Adam) -> Vec<f64> {
    adam_family(a.lr, a.betas, a.eps, a.amsgrad, a.weight_decay, 0.0)
}

/// `torch.optim.AdamW`'s algorithm, from its documentation: weights decayed by `lr * wd` first.
fn adamw_reference(a: &AdamW) -> Vec<f64> {
    adam_family(a.lr, a.betas, a.eps, a.amsgrad, 0.0, a.weight_decay)
}

/// The Adam update with coupled (`l2`, added to the gradient) and decoupled (`decoupled`,
/// applied to the weights before the step) weight decay.
fn adam_family(lr: f64, [b1, b2]: [f64; 2], eps: f64, amsgrad: bool, l2: f64, decoupled: f64) -> Vec<f64> {
    let mut w = START.to_vec();
    let (mut m, mut v, mut v_max) = (vec![0.0; 4], vec![0.0; 4], vec![0.0_f64; 4]);
    for t in 1..=STEPS {
        for i in 0..w.len() {
            let g = w[i] + l2 * w[i];
            w[i] -= lr * decoupled * w[i];
            m[i] = b1 * m[i] + (1.0 - b1) * g;
            v[i] = b2 * v[i] + (1.0 - b2) * g * g;
            let m_hat = m[i] / (1.0 - b1.powi(t as i32));
            v_max[i] = v_max[i].max(v[i]);
            let v_used = if amsgrad { v_max[i] } else { v[i] };
            let v_hat = v_used / (1.0 - b2.powi(t as i32));
            w[i] -= lr * m_hat / (v_hat.sqrt() + eps);
        }
    }
    w
}

/// `torch.optim.Adagrad`'s algorithm, from its documentation.
fn adagrad_reference(a: &Adagrad) -> Vec<f64> {
    let mut w = START.to_vec();
    let mut sum = [a.initial_accumulator_value; 4];
    for t in 1..=STEPS {
        let clr = a.lr / (1.0 + (t - 1) as f64 * a.lr_decay);
        for i in 0..w.len() {
            let g = w[i] + a.weight_decay * w[i];
            sum[i] += g * g;
            w[i] -= clr * g / (sum[i].sqrt() + a.eps);
        }
    }
    w
}

/// `torch.optim.RMSprop`'s algorithm, from its documentation.
fn rmsprop_reference(r: &RmsProp) -> Vec<f64> {
    let mut w = START.to_vec();
    let (mut v, mut g_avg, mut buf) = (vec![0.0; 4], vec![0.0; 4], vec![0.0; 4]);
    for _ in 1..=STEPS {
        for i in 0..w.len() {
            let g = w[i] + r.weight_decay * w[i];
            v[i] = r.alpha * v[i] + (1.0 - r.alpha) * g * g;
            let mut v_tilde = v[i];
            if r.centered {
                g_avg[i] = r.alpha * g_avg[i] + (1.0 - r.alpha) * g;
                v_tilde -= g_avg[i] * g_avg[i];
            }
            let step = g / (v_tilde.sqrt() + r.eps);
            if r.momentum > 0.0 {
                buf[i] = r.momentum * buf[i] + step;
                w[i] -= r.lr * buf[i];
            } else {
                w[i] -= r.lr * step;
            }
        }
    }
    w
}

fn check(config: OptimizerConfig, expected: Vec<f64>) {
    let got = burn_weights(&config);
    for (g, e) in got.iter().zip(&expected) {
        assert!((g - e).abs() <= 1e-5 * e.abs().max(1.0), "{config:?}\n got {got:?}\nwant {expected:?}");
    }
    // The reference moved the weights, so the comparison means something.
    assert!(expected.iter().zip(START).any(|(e, s)| (e - s).abs() > 1e-3), "{config:?} did not move");
}

#[test]
fn sgd_matches_pytorch() {
    let cases = [
        Sgd { lr: 0.1, ..Sgd::default() },
        Sgd { lr: 0.1, momentum: 0.9, ..Sgd::default() },
        Sgd { lr: 0.05, momentum: 0.9, dampening: 0.5, ..Sgd::default() },
        Sgd { lr: 0.05, momentum: 0.8, nesterov: true, ..Sgd::default() },
        Sgd { lr: 0.1, momentum: 0.9, weight_decay: 0.01, ..Sgd::default() },
    ];
    for s in cases {
        check(OptimizerConfig::Sgd(s.clone()), sgd_reference(&s));
    }
}

#[test]
fn adam_matches_pytorch() {
    let cases = [
        Adam { lr: 0.1, ..Adam::default() },
        Adam { lr: 0.01, betas: [0.8, 0.99], eps: 1e-6, ..Adam::default() },
        Adam { lr: 0.1, weight_decay: 0.1, ..Adam::default() },
        Adam { lr: 0.1, amsgrad: true, ..Adam::default() },
    ];
    for a in cases {
        check(OptimizerConfig::Adam(a.clone()), adam_reference(&a));
    }
}

#[test]
fn adamw_matches_pytorch() {
    let cases = [
        AdamW { lr: 0.05, ..AdamW::default() },
        AdamW { lr: 0.05, weight_decay: 0.5, ..AdamW::default() },
        AdamW { lr: 0.05, amsgrad: true, betas: [0.8, 0.9], ..AdamW::default() },
    ];
    for a in cases {
        check(OptimizerConfig::Adamw(a.clone()), adamw_reference(&a));
    }
}

#[test]
fn adagrad_matches_pytorch() {
    let cases = [
        Adagrad { lr: 0.1, ..Adagrad::default() },
        Adagrad { lr: 0.1, lr_decay: 0.05, ..Adagrad::default() },
        Adagrad { lr: 0.1, weight_decay: 0.1, eps: 1e-6, ..Adagrad::default() },
    ];
    for a in cases {
        check(OptimizerConfig::Adagrad(a.clone()), adagrad_reference(&a));
    }
}

#[test]
fn rmsprop_matches_pytorch() {
    let cases = [
        RmsProp { lr: 0.01, ..RmsProp::default() },
        RmsProp { lr: 0.01, momentum: 0.9, ..RmsProp::default() },
        RmsProp { lr: 0.01, centered: true, alpha: 0.9, ..RmsProp::default() },
        RmsProp { lr: 0.01, centered: true, momentum: 0.5, weight_decay: 0.1, ..RmsProp::default() },
    ];
    for r in cases {
        check(OptimizerConfig::Rmsprop(r.clone()), rmsprop_reference(&r));
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
}
