//! The `train` stage.

use std::io::IsTerminal;
use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use kindling_core::{
    Artifact, Dataset, Issues, Stage, StageConfig, StageDef, StageError, StageIo, Summary, rng_from_seed,
};
use kindling_models::Model;
use kindling_models::device::ResolvedDevice;
use kindling_optim::OptimizerConfig;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::batch::{Batches, count_correct, evaluate};
use crate::history::{EpochRecord, History, SplitMetrics};

/// Configuration of `train`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Passes over the training split.
    pub epochs: usize,
    /// Samples per optimizer step. PyTorch's `DataLoader` defaults to 1, which no one trains
    /// a CNN with; 64 is what the experiments use.
    pub batch_size: usize,
    /// Reshuffle the training split every epoch (seeded by the run's seed and the epoch).
    pub shuffle: bool,
    /// The optimizer, `{name: adam | sgd, lr: ..., ...}` with PyTorch's parameters.
    pub optimizer: OptimizerConfig,
    /// Samples per batch when evaluating (no gradients: larger batches are cheaper).
    pub eval_batch_size: usize,
    /// Write the trained weights to `model.safetensors` in the run directory.
    pub save_model: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 64,
            shuffle: true,
            optimizer: OptimizerConfig::default(),
            eval_batch_size: 256,
            save_model: true,
        }
    }
}

impl StageConfig for TrainConfig {
    const KEY_DOCS: &'static [(&'static str, &'static str)] = &[
        ("epochs", "passes over the training split"),
        ("batch_size", "samples per optimizer step"),
        ("shuffle", "reshuffle the training split every epoch (seeded)"),
        ("optimizer", "{name: adam | sgd, lr, ...} with PyTorch's parameter names and defaults"),
        ("eval_batch_size", "samples per batch when evaluating"),
        ("save_model", "write the trained weights to model.safetensors"),
    ];

    fn check(&self, issues: &mut Issues) {
        issues.require(self.epochs >= 1, "epochs", "must be at least 1");
        issues.require(self.batch_size >= 1, "batch_size", "must be at least 1");
        issues.require(self.eval_batch_size >= 1, "eval_batch_size", "must be at least 1");
        let mut optimizer = Issues::under("optimizer");
        self.optimizer.check(&mut optimizer);
        for issue in optimizer.into_vec() {
            issues.push_issue(issue);
        }
    }
}

pub(crate) fn train() -> StageDef {
    StageDef::new::<TrainConfig>(
        "train",
        "train the model with cross-entropy; validate every epoch, test at the end; write history, metrics, weights",
        &["dataset", "model"],
        &["model", "history"],
        |config| Box::new(Train { config }),
    )
}

struct Train {
    config: TrainConfig,
}

impl Artifact for History {
    const KIND: &'static str = "history";
}

impl Stage for Train {
    fn run(&mut self, io: &mut StageIo<'_>) -> Result<(), StageError> {
        let c = &self.config;
        let model = io.artifacts.take::<Model>().ok_or(StageError::MissingArtifact(Model::KIND))?;
        let device = io.artifacts.get::<ResolvedDevice>().ok_or(StageError::MissingArtifact("device"))?.clone();
        let data = io.artifacts.get::<Dataset>().ok_or(StageError::MissingArtifact(Dataset::KIND))?;
        let shape: [usize; 3] = data.shape.as_slice().try_into().map_err(|_| {
            StageError::Stopped(format!("train expects image samples [c, h, w], the data has {:?}", data.shape))
        })?;
        if data.train.is_empty() {
            return Err(StageError::Stopped("the training split is empty".into()));
        }
        let plain = device.device.clone().inner();
        let loss_fn = CrossEntropyLossConfig::new().init(&device.device);
        let mut optimizer = c.optimizer.build();
        let lr = c.optimizer.lr();
        let mut net = model.net;
        let mut history = History::default();
        let progress = std::io::stderr().is_terminal();
        let started = Instant::now();
        let mut train_seconds = 0.0;

        for epoch in 1..=c.epochs {
            let t0 = Instant::now();
            let mut order: Vec<usize> = (0..data.train.len()).collect();
            if c.shuffle {
                order.shuffle(&mut rng_from_seed(io.seed, &format!("shuffle/{epoch}")));
            }
            let batches = Batches::new(&data.train, shape, order, c.batch_size, &device.device);
            let steps = batches.len();
            let (mut loss_sum, mut correct) = (0.0_f64, 0_usize);
            for (step, (images, labels)) in batches.enumerate() {
                let n = labels.dims()[0];
                let logits = net.forward(images);
                let loss = loss_fn.forward(logits.clone(), labels.clone());
                let value = f64::from(loss.clone().into_scalar::<f32>());
                if !value.is_finite() {
                    return Err(StageError::Stopped(format!(
                        "the training loss became {value} at epoch {epoch}, step {} of {steps}: training diverged \
                         (try a lower learning rate; lr is {lr})",
                        step + 1
                    )));
                }
                loss_sum += value * n as f64;
                correct += count_correct(logits.detach(), labels);
                let grads = GradientsParams::from_grads(loss.backward(), &net);
                net = optimizer.step(lr, net, grads);
                if progress && (step % 10 == 9 || step + 1 == steps) {
                    eprint!(
                        "\r  epoch {epoch}/{}  step {}/{steps}  loss {:.4}   ",
                        c.epochs,
                        step + 1,
                        loss_sum / ((step * c.batch_size + n) as f64)
                    );
                }
            }
            if progress {
                eprint!("\r{:60}\r", "");
            }
            let epoch_train = t0.elapsed().as_secs_f64();
            train_seconds += epoch_train;
            let t1 = Instant::now();
            let valid =
                (!data.valid.is_empty()).then(|| evaluate(&net.valid(), &data.valid, shape, c.eval_batch_size, &plain));
            let record = EpochRecord {
                epoch,
                train: SplitMetrics::new(loss_sum, correct, data.train.len()),
                valid,
                lr,
                train_seconds: epoch_train,
                valid_seconds: t1.elapsed().as_secs_f64(),
            };
            eprintln!("{}", epoch_line(&record, c.epochs));
            history.epochs.push(record);
            io.run_dir
                .write("history.csv", history.to_csv().as_bytes())
                .map_err(|e| StageError::io(io.run_dir.path().join("history.csv"), e))?;
        }

        let eval_net = net.valid();
        let test = data.test.as_ref().map(|t| evaluate(&eval_net, t, shape, c.eval_batch_size, &plain));
        if c.save_model {
            let path = io.run_dir.path().join("model.safetensors");
            let mut store = SafetensorsStore::from_file(&path).overwrite(true);
            eval_net
                .save_into(&mut store)
                .map_err(|e| StageError::Stopped(format!("{}: cannot save the model: {e}", path.display())))?;
        }
        let last = history.epochs.last().cloned();
        let samples_per_s = (data.train.len() * c.epochs) as f64 / train_seconds.max(1e-9);
        let metrics = serde_json::json!({
            "device": device.description,
            "epochs": c.epochs,
            "parameters": model.infos.iter().map(|i| i.params).sum::<usize>(),
            "train_seconds": train_seconds,
            "wall_seconds": started.elapsed().as_secs_f64(),
            "train_samples_per_second": samples_per_s,
            "final_epoch": last,
            "test": test,
        });
        let json = serde_json::to_string_pretty(&metrics).unwrap_or_default();
        io.run_dir
            .write("metrics.json", json.as_bytes())
            .map_err(|e| StageError::io(io.run_dir.path().join("metrics.json"), e))?;

        if let Some(summary) = io.artifacts.get_mut::<Summary>() {
            summary.push("device", device.description.clone());
            summary.push(
                "training",
                format!("{} epochs in {train_seconds:.1} s ({samples_per_s:.0} samples/s)", c.epochs),
            );
            if let Some(v) = last.as_ref().and_then(|l| l.valid) {
                summary.push("valid", format!("accuracy {:.2}%, loss {:.4}", 100.0 * v.accuracy, v.loss));
            }
            if let Some(t) = test {
                summary.push(
                    "test",
                    format!("accuracy {:.2}%, loss {:.4} ({} samples)", 100.0 * t.accuracy, t.loss, t.samples),
                );
            }
        }
        io.artifacts.insert(Model { net, layers: model.layers, infos: model.infos });
        io.artifacts.insert(history);
        Ok(())
    }
}

fn epoch_line(r: &EpochRecord, epochs: usize) -> String {
    let valid =
        r.valid.map_or_else(String::new, |v| format!("  valid loss {:.4} acc {:5.2}%", v.loss, 100.0 * v.accuracy));
    format!(
        "epoch {:>3}/{epochs}  train loss {:.4} acc {:5.2}%{valid}  lr {}  {:.1}s",
        r.epoch,
        r.train.loss,
        100.0 * r.train.accuracy,
        r.lr,
        r.train_seconds + r.valid_seconds
    )
}
