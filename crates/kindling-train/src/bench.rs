//! Throughput of a preset model on synthetic data: what `cargo xtask bench train` measures.

use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution, Int, Tensor};
use kindling_core::DeviceChoice;
use kindling_models::{InitConfig, LayerSpec, Sequential, Shape, device, infer, preset};
use kindling_optim::{Adam, OptimizerConfig};
use serde::Serialize;

/// What to measure: a preset, the shape of its synthetic samples and the protocol.
#[derive(Clone, Debug)]
pub struct BenchSpec {
    /// The preset.
    pub model: String,
    /// Samples per step.
    pub batch_size: usize,
    /// One sample's `[channels, height, width]`.
    pub input: [usize; 3],
    /// Classes of the synthetic labels (the preset's last layer).
    pub classes: usize,
    /// Untimed training steps first (allocation, autotuning).
    pub warmup: usize,
    /// Timed training steps, and as many timed inference batches.
    pub steps: usize,
    /// When above 0, then times each part of this many more training steps.
    pub profile_steps: usize,
}

impl BenchSpec {
    /// `model` on the input it was built for ([`natural_input`]), 5 untimed and 60 timed
    /// steps, no profile: the protocol of the PyTorch peer script.
    pub fn new(model: &str, batch_size: usize) -> Self {
        let (input, classes) = natural_input(model);
        Self { model: model.to_owned(), batch_size, input, classes, warmup: 5, steps: 60, profile_steps: 0 }
    }
}

/// The sample shape and class count a preset was built for: the stereo experiment's
/// 4 x 257 x 382 spectrograms and 11 directions for `stereo_cnn`, five interaural planes of the
/// same size for `direction_cnn`, MNIST's 1 x 28 x 28 and 10 classes for the rest.
pub fn natural_input(model: &str) -> ([usize; 3], usize) {
    match model {
        "stereo_cnn" => ([4, 257, 382], 11),
        "direction_cnn" => ([5, 257, 382], 11),
        _ => ([1, 28, 28], 10),
    }
}

/// What one benchmark run measured.
#[derive(Clone, Debug, Serialize)]
pub struct BenchResult {
    /// The preset.
    pub model: String,
    /// Samples per step.
    pub batch_size: usize,
    /// One sample's `[channels, height, width]`.
    pub input: [usize; 3],
    /// Rayon threads the kernels ran on.
    pub threads: usize,
    /// The widest vector instructions the CPU kernels ran (`kindling_cpu::isa`).
    pub isa: &'static str,
    /// The device, as described to people.
    pub device: String,
    /// Training samples per second (forward, loss, backward, Adam step).
    pub train_samples_per_s: f64,
    /// Inference samples per second (forward only, validation mode).
    pub infer_samples_per_s: f64,
    /// Peak resident memory of the process, MiB (Linux).
    pub peak_rss_mib: Option<f64>,
    /// Where a training step's time goes, when asked for (`profile_steps > 0`).
    pub profile: Vec<ProfileRow>,
}

/// One part of a training step and its mean time.
#[derive(Clone, Debug, Serialize)]
pub struct ProfileRow {
    /// `forward: conv2d 1->16 3x3`, `backward (all layers)`, `optimizer step`, ...
    pub part: String,
    /// Mean milliseconds per step.
    pub ms_per_step: f64,
}

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The preset name is unknown.
    #[error("unknown preset `{0}`")]
    UnknownPreset(String),
    /// The preset does not fit the benchmark's input.
    #[error("preset `{0}` does not fit a {1:?} input (channels, height, width)")]
    Shape(String, [usize; 3]),
    /// The device could not be had.
    #[error(transparent)]
    Device(#[from] device::DeviceError),
}

/// Trains the spec's preset with Adam (lr 1e-3) for `warmup` untimed and `steps` timed steps
/// on a pool of 8 synthetic batches, then times `steps` inference batches (the same protocol
/// as the PyTorch peer script); then, when `profile_steps > 0`, times each part of that many
/// more training steps.
pub fn bench_train(spec: &BenchSpec, choice: DeviceChoice) -> Result<BenchResult, BenchError> {
    let BenchSpec { ref model, batch_size, input, classes, warmup, steps, profile_steps } = *spec;
    let model = model.as_str();
    let layers = preset(model, classes).ok_or_else(|| BenchError::UnknownPreset(model.to_owned()))?;
    let infos = infer(&layers, &Shape::Image(input)).map_err(|_| BenchError::Shape(model.to_owned(), input))?;
    let resolved = device::resolve(choice)?;
    let dev = &resolved.device;
    dev.seed(0);
    let [c, h, w] = input;
    let pool: Vec<(Tensor<4>, Tensor<1, Int>)> = (0..8)
        .map(|_| {
            (
                Tensor::random([batch_size, c, h, w], Distribution::Normal(0.0, 1.0), dev),
                Tensor::<1, Int>::random([batch_size], Distribution::Uniform(0.0, classes as f64), dev),
            )
        })
        .collect();
    let mut net =
        Sequential::new(&layers, &infos, &InitConfig::default(), &mut kindling_core::rng_from_seed(0, "init"), dev);
    let mut optimizer = OptimizerConfig::Adam(Adam::default()).build();
    let loss_fn = CrossEntropyLossConfig::new().init(dev);

    let mut timed = 0.0;
    for step in 0..warmup + steps {
        if step == warmup {
            dev.sync().ok();
        }
        let start = Instant::now();
        let (x, y) = pool[step % pool.len()].clone();
        let loss = loss_fn.forward(net.forward(x), y);
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optimizer.step(1e-3, net, grads);
        if step >= warmup {
            if step + 1 == warmup + steps {
                dev.sync().ok();
            }
            timed += start.elapsed().as_secs_f64();
        }
    }

    let profile = profile_training(&mut net, &mut optimizer, &layers, &pool, profile_steps, dev);

    let eval = net.valid();
    let plain = dev.clone().inner();
    let inputs: Vec<Tensor<4>> = pool.iter().map(|(x, _)| x.clone().inner().to_device(&plain)).collect();
    for x in inputs.iter().take(warmup.min(inputs.len())) {
        let _ = eval.forward(x.clone());
    }
    plain.sync().ok();
    let start = Instant::now();
    for i in 0..steps {
        let _ = eval.forward(inputs[i % inputs.len()].clone());
    }
    plain.sync().ok();
    let infer_secs = start.elapsed().as_secs_f64();

    Ok(BenchResult {
        model: model.to_owned(),
        batch_size,
        input,
        threads: rayon::current_num_threads(),
        isa: kindling_cpu::isa(),
        device: resolved.description.clone(),
        train_samples_per_s: (steps * batch_size) as f64 / timed.max(1e-9),
        infer_samples_per_s: (steps * batch_size) as f64 / infer_secs.max(1e-9),
        peak_rss_mib: peak_rss_mib(),
        profile,
    })
}

/// Times each part of `steps` training steps separately, syncing the device between parts so
/// the times belong to the part (on the eager CPU backend the syncs cost nothing).
fn profile_training(
    net: &mut Sequential,
    optimizer: &mut burn::optim::ModuleOptimizer,
    layers: &[LayerSpec],
    pool: &[(Tensor<4>, Tensor<1, Int>)],
    steps: usize,
    dev: &Device,
) -> Vec<ProfileRow> {
    if steps == 0 {
        return Vec::new();
    }
    let loss_fn = CrossEntropyLossConfig::new().init(dev);
    let mut names: Vec<String> = layers.iter().map(|l| format!("forward: {l}")).collect();
    names.extend(["loss (cross-entropy)", "backward (all layers)", "optimizer step (Adam)"].map(String::from));
    names.extend(kindling_cpu::BackwardTimes::default().parts().map(|(part, _)| format!("  of backward: {part}")));
    let mut secs = vec![0.0; names.len()];
    let n = layers.len();
    for step in 0..steps {
        let (x, y) = pool[step % pool.len()].clone();
        dev.sync().ok();
        let mut mark = Instant::now();
        let logits = net.forward_inspect(x, |i, _| {
            dev.sync().ok();
            secs[i] += mark.elapsed().as_secs_f64();
            mark = Instant::now();
        });
        let mut lap = |slot: usize, mark: &mut Instant| {
            dev.sync().ok();
            secs[slot] += mark.elapsed().as_secs_f64();
            *mark = Instant::now();
        };
        let loss = loss_fn.forward(logits, y);
        lap(n, &mut mark);
        let before = kindling_cpu::backward_times();
        let grads = loss.backward();
        lap(n + 1, &mut mark);
        // The parts of the backward pass that Kindling's CPU kernels ran (timed inside them).
        let parts = kindling_cpu::backward_times().since(&before);
        let grads = GradientsParams::from_grads(grads, &*net);
        let taken = std::mem::replace(net, Sequential { layers: Vec::new() });
        *net = optimizer.step(1e-3, taken, grads);
        lap(n + 2, &mut mark);
        for (slot, (_, s)) in parts.parts().into_iter().enumerate() {
            secs[n + 3 + slot] += s;
        }
    }
    names.into_iter().zip(secs).map(|(part, s)| ProfileRow { part, ms_per_step: 1e3 * s / steps as f64 }).collect()
}

/// The process's peak resident set size (`VmHWM`), in MiB.
fn peak_rss_mib() -> Option<f64> {
    kindling_core::peak_memory().map(|b| b as f64 / f64::from(1u32 << 20))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two Adam steps of every CPU preset on fixed data, in rayon pools of 1, 2 and 3
    /// threads: the weights come out bit for bit the same (failed before convolution weight
    /// gradients were summed in a fixed number of pieces). (Batch 70 puts vgg3's batch norm
    /// after its 256-wide linear layer over the size where its sums are split.)
    #[test]
    fn training_is_bit_identical_whatever_the_thread_count() {
        use burn::store::{ModuleSnapshot, SafetensorsStore};
        use burn::tensor::TensorData;
        use rand::RngExt;
        let dev = device::resolve(DeviceChoice::Cpu).unwrap().device;
        for (model, shape, batch) in [
            ("mlp", [3, 32, 32], 20),
            ("mnist_cnn", [1, 28, 28], 20),
            ("mnist_cnn_bn", [1, 28, 28], 20),
            ("lenet5", [1, 28, 28], 20),
            ("vgg3", [3, 32, 32], 70),
        ] {
            // Dropout masks come from burn's one global generator, which tests running beside
            // this one draw from too: p = 0 keeps the comparison about the arithmetic.
            let layers: Vec<LayerSpec> = preset(model, 10)
                .unwrap()
                .into_iter()
                .map(|l| match l {
                    LayerSpec::Dropout(_) => LayerSpec::Dropout(kindling_models::DropoutSpec { p: 0.0 }),
                    other => other,
                })
                .collect();
            let infos = infer(&layers, &Shape::Image(shape)).unwrap();
            let mut rng = kindling_core::rng_from_seed(1, "data");
            let n = batch * shape.iter().product::<usize>();
            let x: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
            let y: Vec<i64> = (0..batch).map(|i| (i % 10) as i64).collect();
            let weights = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                pool.install(|| {
                    let mut net = Sequential::new(
                        &layers,
                        &infos,
                        &InitConfig::default(),
                        &mut kindling_core::rng_from_seed(0, "init"),
                        &dev,
                    );
                    let mut optimizer = OptimizerConfig::Adam(Adam::default()).build();
                    let loss_fn = CrossEntropyLossConfig::new().init(&dev);
                    for _ in 0..2 {
                        let [c, h, w] = shape;
                        let xs = Tensor::<4>::from_data(TensorData::new(x.clone(), [batch, c, h, w]), &dev);
                        let ys = Tensor::<1, Int>::from_data(TensorData::new(y.clone(), [batch]), &dev);
                        let loss = loss_fn.forward(net.forward(xs), ys);
                        let grads = GradientsParams::from_grads(loss.backward(), &net);
                        net = optimizer.step(1e-3, net, grads);
                    }
                    let mut store = SafetensorsStore::from_bytes(None);
                    net.save_into(&mut store).unwrap();
                    crate::weights::canonical(&store.get_bytes().unwrap()).unwrap()
                })
            };
            let one = weights(1);
            for threads in [2, 3] {
                assert!(weights(threads) == one, "{model}: {threads} threads train other weights than 1");
            }
        }
    }

    /// Every preset fits the input [`natural_input`] names for it; the stereo CNN refuses
    /// MNIST's, with the shape in the message.
    #[test]
    fn each_preset_fits_its_natural_input_and_a_wrong_one_is_named() {
        for model in kindling_models::PRESETS {
            let (input, classes) = natural_input(model);
            let layers = preset(model, classes).unwrap();
            assert!(infer(&layers, &Shape::Image(input)).is_ok(), "{model} on {input:?}");
        }
        let spec = BenchSpec { input: [1, 28, 28], ..BenchSpec::new("stereo_cnn", 2) };
        let e = bench_train(&spec, DeviceChoice::Cpu).unwrap_err().to_string();
        assert!(e.contains("stereo_cnn") && e.contains("[1, 28, 28]"), "{e}");
    }

    /// The profile splits the backward pass into the parts Kindling's CPU kernels ran: on the
    /// CPU device LeNet-5 has convolution and average-pooling gradients, and no max pooling.
    #[test]
    fn the_profile_names_the_parts_of_the_backward_pass() {
        let spec = BenchSpec { warmup: 1, steps: 1, profile_steps: 2, ..BenchSpec::new("lenet5", 8) };
        let r = bench_train(&spec, DeviceChoice::Cpu).unwrap();
        let ms = |name: &str| r.profile.iter().find(|p| p.part.contains(name)).map(|p| p.ms_per_step).unwrap();
        assert!(ms("conv weight gradients") > 0.0 && ms("conv input gradients") > 0.0);
        assert!(ms("average pooling") > 0.0);
        assert_eq!(ms("max pooling"), 0.0);
        assert!(ms("conv weight gradients") < ms("backward (all layers)"));
    }
}
