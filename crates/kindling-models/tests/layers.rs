//! Layers whose behaviour is Kindling's own rather than burn's.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use kindling_models::{InitConfig, LayerSpec, Sequential, Shape, infer};

fn build(layers: serde_json::Value, input: [usize; 3], device: &Device) -> Sequential {
    let layers: Vec<LayerSpec> = serde_json::from_value(layers).unwrap();
    let infos = infer(&layers, &Shape::Image(input)).unwrap();
    Sequential::new(&layers, &infos, &InitConfig::default(), &mut kindling_core::rng_from_seed(1, "init"), device)
}

#[test]
fn dropout2d_zeroes_whole_channels_while_training_only() {
    let device = Device::flex().autodiff();
    device.seed(5);
    let net = build(serde_json::json!([{"dropout2d": {"p": 0.5}}]), [64, 3, 3], &device);
    let x = Tensor::<4>::ones([4, 64, 3, 3], &device);
    let out: Vec<f32> = net.forward(x).flatten::<1>(0, 1).into_data().try_to_vec().unwrap();
    let channels: Vec<&[f32]> = out.chunks(9).collect();
    // Every channel is all zeros or all 1 / (1 - p) = 2, and both kinds occur.
    assert!(channels.iter().all(|c| c.iter().all(|&v| v == 0.0) || c.iter().all(|&v| v == 2.0)), "{channels:?}");
    let dropped = channels.iter().filter(|c| c[0] == 0.0).count();
    assert!((64..192).contains(&dropped), "{dropped} of 256 channels dropped at p = 0.5");

    let eval = net.valid();
    let plain = Tensor::<4>::ones([4, 64, 3, 3], &device.clone().inner());
    let same: Vec<f32> = eval.forward(plain).flatten::<1>(0, 1).into_data().try_to_vec().unwrap();
    assert!(same.iter().all(|&v| v == 1.0), "validation mode must not drop anything");
}

#[test]
fn activations_compute_pytorchs_functions() {
    let device = Device::flex();
    let x = Tensor::<4>::from_floats([[[[-2.0, -0.5, 0.0, 1.5]]]], &device);
    let check = |layer: serde_json::Value, f: fn(f64) -> f64| {
        let net = build(serde_json::json!([layer]), [1, 1, 4], &device);
        let got: Vec<f32> = net.forward(x.clone()).into_data().try_to_vec().unwrap();
        for (g, v) in got.iter().zip([-2.0, -0.5, 0.0, 1.5]) {
            assert!((f64::from(*g) - f(v)).abs() < 1e-5, "{layer}: {got:?}");
        }
    };
    check(serde_json::json!("tanh"), f64::tanh);
    check(serde_json::json!("sigmoid"), |v| 1.0 / (1.0 + (-v).exp()));
    check(serde_json::json!({"leaky_relu": {"negative_slope": 0.2}}), |v| if v < 0.0 { 0.2 * v } else { v });
    check(serde_json::json!({"elu": {"alpha": 0.5}}), |v| if v < 0.0 { 0.5 * (v.exp() - 1.0) } else { v });
    // GELU with the exact erf: x * Phi(x) = x (1 + erf(x / sqrt 2)) / 2, computed in f64.
    check(serde_json::json!("gelu"), |v| match v {
        -2.0 => -0.045_500_263_896_358_42,
        -0.5 => -0.154_268_769_362_993_44,
        0.0 => 0.0,
        _ => 1.399_789_198_096_713,
    });
}

#[test]
fn l1_norm_sums_absolute_weights_and_optionally_the_rest() {
    let device = Device::flex();
    let layers: Vec<LayerSpec> = serde_json::from_value(serde_json::json!([
        {"conv2d": {"out_channels": 2, "kernel_size": 3}}, {"batchnorm": {}}, "relu", "flatten", {"linear": {"out_features": 3}}
    ]))
    .unwrap();
    let infos = infer(&layers, &Shape::Image([1, 4, 4])).unwrap();
    let init: InitConfig = serde_json::from_value(serde_json::json!({
        "conv": {"name": "constant", "val": -0.5}, "linear": {"name": "constant", "val": 0.25}, "bias": {"name": "constant", "val": 0.1}
    }))
    .unwrap();
    let net = Sequential::new(&layers, &infos, &init, &mut kindling_core::rng_from_seed(1, "init"), &device);
    let norm = |weights_only| net.l1_norm(weights_only).unwrap().into_scalar::<f32>();
    // conv: 2 x 1 x 3 x 3 weights of 0.5; linear: 8 -> 3, 24 weights of 0.25.
    assert!((norm(true) - (18.0 * 0.5 + 24.0 * 0.25)).abs() < 1e-5);
    // Plus biases (2 + 3 of 0.1) and batch norm's gamma (2 of 1) and beta (2 of 0).
    assert!((norm(false) - (15.0 + 5.0 * 0.1 + 2.0)).abs() < 1e-5);
}

#[test]
fn log_softmax_gives_log_probabilities() {
    let device = Device::flex();
    let net = build(serde_json::json!(["flatten", "log_softmax"]), [1, 1, 4], &device);
    let x = [-2.0_f64, -0.5, 0.0, 1.5];
    let input = Tensor::<4>::from_floats([[[[-2.0, -0.5, 0.0, 1.5]]]], &device);
    let got: Vec<f32> = net.forward(input).into_data().try_to_vec().unwrap();
    let lse = x.iter().map(|v| v.exp()).sum::<f64>().ln();
    for (g, v) in got.iter().zip(x) {
        assert!((f64::from(*g) - (v - lse)).abs() < 1e-5, "{got:?}");
    }
}

/// After training-mode forwards of three batches, a batch norm's running statistics are
/// PyTorch's: `running = 0.9 running + 0.1 batch` from mean 0 and variance 1, with the batch's
/// unbiased variance (`n / (n - 1)` times the biased one, `n` values per channel), while each
/// batch is normalised with its biased variance; evaluation then normalises with the running
/// statistics. Computed here in f64 from these definitions (checked against
/// `torch.nn.BatchNorm2d`). burn's own update, with the biased variance, misses by 1 / (n - 1):
/// 4% for the 2-d case, 33% for the 1-d case.
#[test]
fn batchnorm_keeps_pytorchs_running_statistics() {
    // BatchNorm2d over 2 channels of 2 x 3 values (n = 4 x 6 = 24 per channel).
    check_batch_norm(serde_json::json!([{"batchnorm": {}}]), [2, 2, 3], 2);
    // BatchNorm1d over 3 features (n = 4 per feature).
    check_batch_norm(serde_json::json!(["flatten", {"batchnorm": {}}]), [1, 1, 3], 3);
}

/// Trains the net of `layers` (ending in a batch norm over `channels`) on three batches of 4
/// samples of shape `input` and compares outputs and running statistics with the definitions.
fn check_batch_norm(layers: serde_json::Value, input: [usize; 3], channels: usize) {
    const BATCH: usize = 4;
    let device = Device::flex().autodiff();
    let net = build(layers, input, &device);
    let Some(kindling_models::Layer::BatchNorm(bn)) = net.layers.last() else { panic!("ends in a batch norm") };
    let per_sample: usize = input.iter().product();
    // Channel of the i-th value of a flattened [batch, c, h, w] or [batch, features] batch.
    let channel_of = |i: usize| (i % per_sample) / (per_sample / channels);
    let close = |got: f64, want: f64, what: &str| {
        assert!((got - want).abs() <= 1e-5 * want.abs().max(1.0), "{what}: got {got}, want {want}");
    };
    let (mut mean, mut var) = (vec![0.0_f64; channels], vec![1.0_f64; channels]);
    let mut seed = 7_u32;
    for b in 0..3 {
        // Values with a different scale and offset per batch and channel.
        let x: Vec<f32> = (0..BATCH * per_sample)
            .map(|i| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let u = f64::from(seed >> 8) / f64::from(1_u32 << 24) - 0.5;
                (u * (b + 1 + channel_of(i)) as f64 + b as f64 - 0.5 * channel_of(i) as f64) as f32
            })
            .collect();
        let [c, h, w] = input;
        let out = net.forward(Tensor::<4>::from_data(TensorData::new(x.clone(), [BATCH, c, h, w]), &device));
        let out: Vec<f32> = out.into_data().try_to_vec().unwrap();
        for ch in 0..channels {
            let values: Vec<f64> = (0..x.len()).filter(|&i| channel_of(i) == ch).map(|i| f64::from(x[i])).collect();
            let n = values.len() as f64;
            let m = values.iter().sum::<f64>() / n;
            let biased = values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n;
            for i in (0..x.len()).filter(|&i| channel_of(i) == ch) {
                close(f64::from(out[i]), (f64::from(x[i]) - m) / (biased + 1e-5).sqrt(), "training output");
            }
            mean[ch] = 0.9 * mean[ch] + 0.1 * m;
            var[ch] = 0.9 * var[ch] + 0.1 * biased * n / (n - 1.0);
        }
    }
    let stat = |t: Tensor<1>| -> Vec<f64> { t.into_data().iter::<f32>().map(f64::from).collect() };
    for (ch, (got_mean, got_var)) in
        stat(bn.running_mean.value_sync()).into_iter().zip(stat(bn.running_var.value_sync())).enumerate()
    {
        close(got_mean, mean[ch], &format!("running_mean[{ch}]"));
        close(got_var, var[ch], &format!("running_var[{ch}]"));
    }

    // Evaluation normalises with the running statistics.
    let eval = net.valid();
    let x: Vec<f32> = (0..per_sample).map(|i| i as f32 * 0.25 - 1.0).collect();
    let [c, h, w] = input;
    let out = eval.forward(Tensor::<4>::from_data(TensorData::new(x.clone(), [1, c, h, w]), &device.clone().inner()));
    let out: Vec<f32> = out.into_data().try_to_vec().unwrap();
    for (i, (o, v)) in out.iter().zip(&x).enumerate() {
        let ch = channel_of(i);
        close(f64::from(*o), (f64::from(*v) - mean[ch]) / (var[ch] + 1e-5).sqrt(), "evaluation output");
    }
}

/// At evaluation a convolution and the batch norm, activation and pool after it run as one
/// fused operation: the output is bit for bit that of the layers one after another, and
/// `forward_inspect` still reports every layer once, in order, the fused ones with the run's
/// output, a pool on its own (so that a ReLU's index gets the ReLU's output).
#[test]
fn fused_evaluation_runs_give_the_layers_output_and_report_every_layer() {
    use kindling_models::{Activation, Layer};
    let train = Device::flex().autodiff();
    let layers = serde_json::json!([
        {"conv2d": {"out_channels": 4, "kernel_size": 3, "padding": 1}}, {"batchnorm": {}}, "relu", {"maxpool2d": {"kernel_size": 2}},
        {"conv2d": {"out_channels": 3, "kernel_size": 3, "padding": 1}}, "tanh", {"avgpool2d": {"kernel_size": 2}},
        {"conv2d": {"out_channels": 2, "kernel_size": 1}}, {"batchnorm": {}}, "flatten"
    ]);
    let net = build(layers, [2, 9, 9], &train);
    let x: Vec<f32> = (0..3 * 2 * 9 * 9).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
    // One training step moves the running statistics away from (0, 1).
    drop(net.forward(Tensor::<4>::from_data(TensorData::new(x.clone(), [3, 2, 9, 9]), &train)));
    let net = net.valid();
    let device = train.inner();
    let input = Tensor::<4>::from_data(TensorData::new(x, [3, 2, 9, 9]), &device);
    let mut seen = Vec::new();
    let inspected = net.forward_inspect(input.clone(), |i, a| {
        let (dims, min) = match a {
            Activation::Image(t) => (t.dims().to_vec(), t.clone().min().into_scalar::<f32>()),
            Activation::Flat(t) => (t.dims().to_vec(), t.clone().min().into_scalar::<f32>()),
        };
        seen.push((i, dims, min));
    });
    let indices: Vec<usize> = seen.iter().map(|(i, ..)| *i).collect();
    assert_eq!(indices, (0..10).collect::<Vec<_>>(), "every layer once, in order");
    // The first convolution's index gets the run's output, after the ReLU (the run was fused),
    // at full size (the pool ran on its own).
    assert_eq!((seen[0].1.clone(), seen[0].2), (vec![3, 4, 9, 9], 0.0), "the first run's output");
    assert_eq!(seen[3].1, vec![3, 4, 4, 4], "the pool's output");
    assert!(seen[7].2 < 0.0, "the last convolution and batch norm give negative values too");
    // The same layers one after another, through the separate operations.
    let conv = |l: &Layer, t: Tensor<4>, pad: usize| {
        let Layer::Conv2d(c) = l else { panic!("a convolution") };
        let options = burn::tensor::ops::ConvOptions::new([1, 1], [pad, pad], [1, 1], 1);
        kindling_cpu::conv2d(t, c.weight.val(), c.bias.as_ref().map(|b| b.val()), options)
    };
    let norm = |l: &Layer, t: Tensor<4>| {
        let Layer::BatchNorm(b) = l else { panic!("a batch norm") };
        let (m, v) = (b.running_mean.value(), b.running_var.value());
        assert!(m.clone().abs().sum().into_scalar::<f32>() > 0.0, "trained statistics");
        kindling_cpu::batch_norm_eval(t, m, v, b.gamma.val(), b.beta.val(), b.epsilon)
    };
    let pool =
        kindling_cpu::MaxPool { kernel: [2, 2], stride: [2, 2], padding: [0, 0], dilation: [1, 1], ceil_mode: false };
    let avg = kindling_cpu::AvgPool {
        kernel: [2, 2],
        stride: [2, 2],
        padding: [0, 0],
        ceil_mode: false,
        count_include_pad: true,
    };
    let l = &net.layers;
    let y = kindling_cpu::max_pool2d(kindling_cpu::relu(norm(&l[1], conv(&l[0], input.clone(), 1))), pool);
    let y = kindling_cpu::avg_pool2d(kindling_cpu::tanh(conv(&l[4], y, 1)), avg);
    let y = norm(&l[8], conv(&l[7], y, 0));
    let want: Vec<f32> = y.flatten::<2>(1, 3).into_data().try_to_vec().unwrap();
    for (what, got) in [("forward", net.forward(input)), ("forward_inspect", inspected)] {
        let got: Vec<f32> = got.into_data().try_to_vec().unwrap();
        assert_eq!(got.len(), want.len(), "{what}");
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert_eq!(a.to_bits(), b.to_bits(), "{what} [{i}]: {a} vs {b}");
        }
    }
}
