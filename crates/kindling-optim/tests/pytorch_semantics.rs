//! Each optimizer against PyTorch's documented update rule, computed here in f64: five steps on
//! `loss = 0.5 * sum(w^2)` (so the gradient is `w` and changes every step, exercising momentum
//! and moment estimates), from the same start, must give the same weights.

use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use kindling_optim::{Adam, OptimizerConfig, Sgd};

#[derive(Module, Debug)]
struct Weights {
    w: Param<Tensor<1>>,
}

const START: [f64; 4] = [1.0, -2.0, 0.5, 3.0];
const STEPS: usize = 5;

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

/// `torch.optim.Adam`'s algorithm, from its documentation.
fn adam_reference(a: &Adam) -> Vec<f64> {
    let [b1, b2] = a.betas;
    let mut w = START.to_vec();
    let (mut m, mut v, mut v_max) = (vec![0.0; 4], vec![0.0; 4], vec![0.0_f64; 4]);
    for t in 1..=STEPS {
        for i in 0..w.len() {
            let g = w[i] + a.weight_decay * w[i];
            m[i] = b1 * m[i] + (1.0 - b1) * g;
            v[i] = b2 * v[i] + (1.0 - b2) * g * g;
            let m_hat = m[i] / (1.0 - b1.powi(t as i32));
            v_max[i] = v_max[i].max(v[i]);
            let v_used = if a.amsgrad { v_max[i] } else { v[i] };
            let v_hat = v_used / (1.0 - b2.powi(t as i32));
            w[i] -= a.lr * m_hat / (v_hat.sqrt() + a.eps);
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
