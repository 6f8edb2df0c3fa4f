//! The `train` stage.

use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::store::SafetensorsStore;
use kindling_core::{
    Artifact, DataSpec, Dataset, Issues, PlanCx, Resume, Split, Stage, StageConfig, StageDef, StageError, StageIo,
    Summary, derive_seed,
};
use kindling_metrics::ConfusionMatrix;
use kindling_metrics::tensorboard::{self, EventFile};
use kindling_models::Model;
use kindling_models::device::ResolvedDevice;
use kindling_optim::{Monitor, OptimizerConfig, Scheduler, SchedulerConfig, Warmup};
use serde::{Deserialize, Serialize};

use crate::batch::{evaluate, evaluate_detailed};
use crate::checkpoint;
use crate::early::{EarlyStopping, Watch, monitored};
use crate::figures;
use crate::fit::Fit;
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
    /// The optimizer, `{name: sgd | adam | adamw | adagrad | rmsprop, lr: ..., ...}` with
    /// PyTorch's parameters.
    pub optimizer: OptimizerConfig,
    /// A learning-rate schedule stepped per epoch (`{name: step, step_size: 5}`); none keeps
    /// the optimizer's `lr`.
    pub scheduler: Option<SchedulerConfig>,
    /// A linear warm-up chained with the schedule (`{epochs: 5, start_factor: 0.333}`).
    pub warmup: Option<Warmup>,
    /// Per-class weights of the cross-entropy (`nn.CrossEntropyLoss(weight=...)`), one per
    /// class, positive; the mean is weighted as PyTorch weights it.
    pub class_weights: Option<Vec<f64>>,
    /// An explicit L1 penalty added to the loss (PyTorch has none built in).
    pub l1: Option<L1>,
    /// Stop when a metric stops improving and keep the best epoch's model:
    /// `{monitor: valid_loss, patience: 7, min_delta: 0, restore_best: true}`; `mode` follows the
    /// metric (`max` for accuracy) unless given.
    pub early_stopping: Option<EarlyStopping>,
    /// Clip the global L2 norm of all gradients to this value before each step
    /// (`torch.nn.utils.clip_grad_norm_`; burn's own clipping is per tensor).
    pub clip_grad_norm: Option<f64>,
    /// Samples per batch when evaluating (no gradients: larger batches are cheaper).
    pub eval_batch_size: usize,
    /// Write the trained weights to `model.safetensors` in the run directory.
    pub save_model: bool,
    /// Write `checkpoints/last.ckpt` (and `best.ckpt`) after every epoch, so that
    /// `kindling run --resume` can continue the run after an interruption.
    pub checkpoints: bool,
}

/// `loss + lambda * sum(|p|)` over the weights (or every parameter).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct L1 {
    /// Strength of the penalty.
    pub lambda: f64,
    /// Penalise only convolution and linear weights (not biases or batch-norm parameters).
    #[serde(default = "yes")]
    pub weights_only: bool,
}

fn yes() -> bool {
    true
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 64,
            shuffle: true,
            optimizer: OptimizerConfig::default(),
            scheduler: None,
            warmup: None,
            class_weights: None,
            l1: None,
            clip_grad_norm: None,
            early_stopping: None,
            eval_batch_size: 256,
            save_model: true,
            checkpoints: true,
        }
    }
}

impl StageConfig for TrainConfig {
    const KEY_DOCS: &'static [(&'static str, &'static str)] = &[
        ("epochs", "passes over the training split"),
        ("batch_size", "samples per optimizer step"),
        ("shuffle", "reshuffle the training split every epoch (seeded)"),
        ("optimizer", "{name: sgd | adam | adamw | adagrad | rmsprop, lr, ...} with PyTorch's names and defaults"),
        (
            "scheduler",
            "per-epoch LR schedule: {name: step | multi_step | exponential | cosine_annealing | reduce_on_plateau, ...}",
        ),
        ("warmup", "linear warm-up chained with the schedule: {epochs: 5, start_factor: 0.333}"),
        ("class_weights", "cross-entropy weight per class, e.g. [1.0, 2.0, ...]"),
        ("l1", "explicit L1 penalty added to the loss: {lambda: 1e-5, weights_only: true}"),
        ("clip_grad_norm", "max_norm of one L2 norm over all gradients, as torch.nn.utils.clip_grad_norm_"),
        (
            "early_stopping",
            "{monitor: valid_loss | valid_accuracy | train_loss, patience: 7, min_delta: 0, restore_best: true}",
        ),
        ("eval_batch_size", "samples per batch when evaluating"),
        (
            "save_model",
            "write the trained weights to model.safetensors, and for PyTorch model.pytorch.safetensors (state_dict \
             names), model.pytorch.json (layers) and model.check.safetensors (inputs and outputs)",
        ),
        (
            "checkpoints",
            "write checkpoints/last.ckpt (model, optimizer, history) and best.ckpt after every epoch, for `kindling run --resume`",
        ),
    ];

    fn check(&self, issues: &mut Issues) {
        issues.require(self.epochs >= 1, "epochs", "must be at least 1");
        issues.require(self.batch_size >= 1, "batch_size", "must be at least 1");
        issues.require(self.eval_batch_size >= 1, "eval_batch_size", "must be at least 1");
        issues.at("optimizer", |nested| self.optimizer.check(nested));
        if let Some(s) = &self.scheduler {
            issues.at("scheduler", |nested| s.check(nested));
        }
        if let Some(w) = &self.warmup {
            issues.at("warmup", |nested| w.check(nested));
        }
        if let Some(weights) = &self.class_weights {
            issues.require(weights.iter().all(|&w| w > 0.0), "class_weights", "every weight must be positive");
        }
        if let Some(l1) = &self.l1 {
            issues.require(l1.lambda >= 0.0, "l1.lambda", "must be at least 0");
        }
        if let Some(e) = &self.early_stopping {
            issues.at("early_stopping", |nested| e.check(nested));
        }
        if let Some(max_norm) = self.clip_grad_norm {
            issues.require(max_norm > 0.0, "clip_grad_norm", "must be positive");
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

impl Train {
    /// The training criterion, `nn.CrossEntropyLoss(weight=class_weights)`.
    fn criterion(&self) -> CrossEntropyLossConfig {
        let weights = self.config.class_weights.as_ref().map(|w| w.iter().map(|&x| x as f32).collect());
        CrossEntropyLossConfig::new().with_weights(weights)
    }
}

impl Stage for Train {
    fn plan(&self, cx: &mut PlanCx<'_>) {
        if let (Some(weights), Some(spec)) = (&self.config.class_weights, cx.facts.get::<DataSpec>())
            && weights.len() != spec.classes
        {
            cx.issues.push("class_weights", format!("{} weights for {} classes", weights.len(), spec.classes));
        }
    }

    fn run(&mut self, io: &mut StageIo<'_>) -> Result<(), StageError> {
        let c = &self.config;
        let model = io.artifacts.take::<Model>().ok_or(StageError::MissingArtifact(Model::KIND))?;
        let device = io.artifacts.get::<ResolvedDevice>().ok_or(StageError::MissingArtifact("device"))?.clone();
        let data = io.artifacts.get::<Dataset>().ok_or(StageError::MissingArtifact(Dataset::KIND))?;
        let shape: [usize; 3] = data.shape.as_slice().try_into().map_err(|_| {
            StageError::Stopped(format!("train expects image samples [c, h, w], the data has {:?}", data.shape))
        })?;
        if data.train.is_empty() {
            return Err(StageError::Stopped(format!(
                "the training split is empty: the data stage put {} sample(s) in validation and none in training; \
                 lower its valid_fraction or give it more samples",
                data.valid.len()
            )));
        }
        if c.batch_size > data.train.len() {
            eprintln!(
                "warning: batch_size {} is larger than the training split ({} samples): each epoch is one batch of {}",
                c.batch_size,
                data.train.len(),
                data.train.len()
            );
        }
        if let Some(memory) = kindling_core::physical_memory() {
            let summary = kindling_models::ModelSummary {
                input: kindling_models::Shape::Image(shape),
                layers: model.layers.clone(),
                infos: model.infos.clone(),
            };
            summary.check_fits(c.batch_size.min(data.train.len()), memory).map_err(StageError::Stopped)?;
        }
        let criterion = self.criterion();
        let fit = Fit {
            device: &device.device,
            loss: criterion.init(&device.device),
            shape,
            batch_size: c.batch_size,
            shuffle: c.shuffle,
            seed: io.seed,
            epochs: c.epochs,
            l1: c.l1.as_ref().map(|l1| (l1.lambda, l1.weights_only)),
            clip_grad_norm: c.clip_grad_norm,
        };
        let mut scheduler = Scheduler::new(c.optimizer.lr(), c.scheduler.clone(), c.warmup.clone());
        let mut watch = c.early_stopping.clone().map(Watch::new);
        for (what, monitor) in
            [("reduce_on_plateau", scheduler.monitor()), ("early_stopping", watch.as_ref().map(Watch::monitor))]
        {
            if monitor.is_some_and(|m| m != Monitor::TrainLoss) && data.valid.is_empty() {
                return Err(StageError::Stopped(format!(
                    "{what} watches a validation metric, but there is no validation split (set valid_fraction)"
                )));
            }
        }
        let mut stopped_at = None;
        // Evaluation runs without autodiff, on the same hardware.
        let plain = device.device.clone().inner();
        let mut optimizer = c.optimizer.build();
        let mut net = model.net;
        let mut history = History::default();
        // TensorBoard scalars, rewritten (atomically, like every run file) after each epoch.
        let now =
            || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        let mut events = EventFile::new(now());
        let mut events_name = tensorboard::file_name(now(), kindling_core::hostname());
        let classes = data.classes.len();
        let mut last_valid_confusion = None;
        let started = Instant::now();
        let last_file = checkpoint::path(io.run_dir.path(), "last.ckpt");
        let mut first_epoch = 1;

        if io.artifacts.get::<Resume>().is_some() && last_file.exists() {
            let best_template = watch.as_ref().filter(|w| w.restores_best()).map(|_| net.clone());
            let loaded = checkpoint::load(&last_file, net, optimizer, best_template)?;
            let state = loaded.state;
            (net, optimizer) = (loaded.net, loaded.optimizer);
            // The schedule and early stopping are functions of the metrics seen: replay them.
            for record in &state.history {
                if (scheduler.lr() - record.lr).abs() > 1e-12 * record.lr.abs().max(1.0) {
                    return Err(StageError::Stopped(format!(
                        "{}: epoch {} ran at lr {} but this configuration gives {}; resume with the run's own config.yaml",
                        last_file.display(),
                        record.epoch,
                        record.lr,
                        scheduler.lr()
                    )));
                }
                scheduler.step(scheduler.monitor().and_then(|m| monitored(m, &record.train, record.valid.as_ref())));
                if let Some(w) = watch.as_mut()
                    && let Some(value) = monitored(w.monitor(), &record.train, record.valid.as_ref())
                {
                    w.observe_value(record.epoch, value);
                }
                events_scalars(&mut events, record, now());
            }
            if let (Some(w), Some(best)) = (watch.as_mut(), loaded.best) {
                w.best_model = Some((best, state.best_confusion.clone()));
            }
            eprintln!("resuming after epoch {} of {} from {}", state.epoch, c.epochs, last_file.display());
            first_epoch = state.epoch + 1;
            history.epochs = state.history;
            last_valid_confusion = state.last_valid_confusion;
            stopped_at = state.stopped_at;
            events_name = state.events_name;
        } else if io.artifacts.get::<Resume>().is_some() {
            eprintln!("no checkpoint in {}: training from the start", last_file.display());
        }

        let epochs = if stopped_at.is_some() { first_epoch..=0 } else { first_epoch..=c.epochs };
        for epoch in epochs {
            let t0 = Instant::now();
            let lr = scheduler.lr();
            // Dropout draws from the backend's generator: seeding it per epoch makes an epoch's
            // masks the same whether or not the run was interrupted before it.
            device.device.seed(derive_seed(io.seed, &format!("dropout/{epoch}")));
            let (trained, train) = fit.epoch(net, &mut optimizer, &data.train, epoch, lr)?;
            net = trained;
            let train_seconds = t0.elapsed().as_secs_f64();
            let t1 = Instant::now();
            let valid = (!data.valid.is_empty())
                .then(|| evaluate(&net.valid(), &data.valid, shape, classes, c.eval_batch_size, &criterion, &plain))
                .transpose()?;
            let (valid, valid_confusion) = valid.map_or((None, None), |(m, cm)| (Some(m), Some(cm)));
            last_valid_confusion = valid_confusion;
            let valid_seconds = t1.elapsed().as_secs_f64();
            scheduler.step(scheduler.monitor().and_then(|m| monitored(m, &train, valid.as_ref())));
            let record = EpochRecord { epoch, train, valid, lr, train_seconds, valid_seconds };
            eprintln!("{}", epoch_line(&record, c.epochs));
            events_scalars(&mut events, &record, now());
            history.epochs.push(record);
            if let Some(w) = watch.as_mut()
                && let Some(value) = monitored(w.monitor(), &train, valid.as_ref())
                && w.observe(epoch, value, &net, last_valid_confusion.as_ref())
            {
                stopped_at = Some(epoch);
            }
            // The checkpoint first: history.csv and the events are rebuilt from it on resume.
            let best = watch.as_ref().and_then(|w| w.best_model.as_ref());
            let state = checkpoint::State {
                epoch,
                history: history.epochs.clone(),
                last_valid_confusion: last_valid_confusion.clone(),
                best_confusion: best.and_then(|(_, cm)| cm.clone()),
                stopped_at,
                events_name: events_name.clone(),
            };
            if c.checkpoints {
                let best_net = best.map(|(b, _)| b);
                if best.is_some() && watch.as_ref().and_then(Watch::best).is_some_and(|(_, e)| e == epoch) {
                    let best_file = checkpoint::path(io.run_dir.path(), "best.ckpt");
                    checkpoint::save(&best_file, &state, &net, None, None)?;
                }
                checkpoint::save(&last_file, &state, &net, Some(&optimizer), best_net)?;
            }
            write(io, "history.csv", history.to_csv().as_bytes())?;
            write(io, &events_name, events.bytes())?;
            if stopped_at.is_some() {
                break;
            }
        }
        let early = watch.as_mut().map(|w| {
            let (best, best_epoch) = w.best().unwrap_or((f64::NAN, 0));
            let restored = w.best_model.take().map(|(best_net, confusion)| {
                net = best_net;
                last_valid_confusion = confusion;
            });
            if let Some(epoch) = stopped_at {
                eprintln!("early stopping after epoch {epoch}: no improvement for {} epochs", epoch - best_epoch);
            }
            serde_json::json!({
                "stopped_epoch": stopped_at,
                "best_epoch": best_epoch,
                "best": best,
                "restored_best": restored.is_some(),
            })
        });

        let eval_net = net.valid();
        // The gallery of mistakes comes from the split the run is judged on: test, else valid.
        let gallery_split = match (&data.test, data.valid.is_empty()) {
            (Some(_), _) => "test",
            (None, false) => "valid",
            (None, true) => "train",
        };
        let detailed = |split: &Split, name: &str| {
            evaluate_detailed(
                &eval_net,
                split,
                shape,
                classes,
                c.eval_batch_size,
                &criterion,
                &plain,
                name == gallery_split,
            )
        };
        let train_eval = detailed(&data.train, "train")?;
        let test = data.test.as_ref().map(|t| detailed(t, "test")).transpose()?;
        // The kept model's validation matrix is known; its mistakes need one more pass.
        let valid_mistakes =
            if gallery_split == "valid" { detailed(&data.valid, "valid")?.mistakes } else { Vec::new() };
        let confusions = [
            ("test", test.as_ref().map(|t| t.confusion.clone())),
            ("valid", last_valid_confusion),
            ("train", Some(train_eval.confusion.clone())),
        ];
        let confusions: Vec<(&'static str, ConfusionMatrix)> =
            confusions.into_iter().filter_map(|(split, cm)| Some((split, cm?))).collect();
        let mut reports = serde_json::Map::new();
        for (split, confusion) in &confusions {
            write(io, &format!("confusion_{split}.csv"), confusion.to_csv(&data.classes).as_bytes())?;
            reports.insert((*split).to_owned(), per_class_json(confusion, &data.classes));
        }
        let gallery = match gallery_split {
            "test" => data.test.as_ref().zip(test.as_ref()).map(|(s, e)| (s, e.mistakes.clone())),
            "valid" => Some((&data.valid, valid_mistakes)),
            _ => Some((&data.train, train_eval.mistakes.clone())),
        }
        .map(|(split, mistakes)| figures::Gallery { split_name: gallery_split, split, mistakes, shape });
        let test = test.map(|t| t.metrics);
        if c.save_model {
            crate::weights::write(&eval_net, SafetensorsStore::from_bytes(None), io.run_dir, "model.safetensors")?;
            let check = if data.valid.is_empty() { &data.train } else { &data.valid };
            crate::export::write(&eval_net, &model.layers, shape, check, &plain, io.run_dir)?;
        }
        let report = Report {
            device: &device.description,
            parameters: model.infos.iter().map(|i| i.params).sum(),
            history: &history,
            train_samples: data.train.len(),
            wall_seconds: started.elapsed().as_secs_f64(),
            test,
            per_class: reports,
            early,
        };
        write(io, "metrics.json", report.metrics_json().as_bytes())?;
        let mut own = Summary::default();
        report.summarize(&mut own);
        // The page shows the earlier stages' lines (data, model) and this stage's.
        let mut summary = io.artifacts.get::<Summary>().map(|s| s.lines.clone()).unwrap_or_default();
        summary.push(("parameters".into(), report.parameters.to_string()));
        summary.extend(own.lines.iter().cloned());
        let kept = report.early.as_ref().and_then(|e| {
            let best = e["best_epoch"].as_u64().filter(|&b| b > 0)? as usize;
            let restored = if e["restored_best"] == true { ", restored" } else { "" };
            Some((best, format!("best epoch {best}{restored}")))
        });
        let run_figures =
            figures::RunFigures { history: &history, kept, classes: &data.classes, confusions, gallery, summary };
        figures::write(io, &run_figures)?;
        if let Some(summary) = io.artifacts.get_mut::<Summary>() {
            summary.lines.extend(own.lines);
        }
        io.artifacts.insert(Model { net, layers: model.layers, infos: model.infos });
        io.artifacts.insert(history);
        Ok(())
    }
}

/// Adds an epoch's scalars (loss, accuracy, lr) to the TensorBoard events.
fn events_scalars(events: &mut EventFile, record: &EpochRecord, wall_time: f64) {
    let step = record.epoch as i64;
    let mut scalar = |tag: &str, v: f64| events.scalar(tag, step, v as f32, wall_time);
    scalar("train/loss", record.train.loss);
    scalar("train/accuracy", record.train.accuracy);
    if let Some(v) = &record.valid {
        scalar("valid/loss", v.loss);
        scalar("valid/accuracy", v.accuracy);
    }
    scalar("lr", record.lr);
}

/// Writes `name` into the run directory atomically.
fn write(io: &StageIo<'_>, name: &str, bytes: &[u8]) -> Result<(), StageError> {
    io.run_dir.write(name, bytes).map(drop).map_err(|e| StageError::io(io.run_dir.path().join(name), e))
}

/// A classification report as JSON, with the class names.
fn per_class_json(confusion: &ConfusionMatrix, names: &[String]) -> serde_json::Value {
    let report = confusion.report();
    let classes: serde_json::Map<String, serde_json::Value> = names
        .iter()
        .zip(&report.classes)
        .map(|(name, m)| (name.clone(), serde_json::to_value(m).unwrap_or_default()))
        .collect();
    serde_json::json!({
        "accuracy": report.accuracy,
        "macro_avg": report.macro_avg,
        "weighted_avg": report.weighted_avg,
        "classes": classes,
    })
}

/// What a finished training run reports: `metrics.json` and the summary lines.
struct Report<'a> {
    device: &'a str,
    parameters: usize,
    history: &'a History,
    train_samples: usize,
    wall_seconds: f64,
    test: Option<SplitMetrics>,
    /// Per split: per-class precision/recall/F1 and their averages, after training.
    per_class: serde_json::Map<String, serde_json::Value>,
    /// What early stopping decided, when it was on.
    early: Option<serde_json::Value>,
}

impl Report<'_> {
    fn train_seconds(&self) -> f64 {
        self.history.epochs.iter().map(|e| e.train_seconds).sum()
    }

    fn samples_per_second(&self) -> f64 {
        (self.train_samples * self.history.epochs.len()) as f64 / self.train_seconds().max(1e-9)
    }

    /// The epoch whose model is kept: the best one when early stopping restored it, else the
    /// last.
    fn kept_epoch(&self) -> Option<&EpochRecord> {
        let kept = match &self.early {
            Some(e) if e["restored_best"] == true => e["best_epoch"].as_u64().map(|n| n as usize),
            _ => None,
        };
        kept.and_then(|n| self.history.epochs.get(n.wrapping_sub(1))).or(self.history.epochs.last())
    }

    fn metrics_json(&self) -> String {
        let metrics = serde_json::json!({
            "device": self.device,
            "epochs": self.history.epochs.len(),
            "parameters": self.parameters,
            "train_seconds": self.train_seconds(),
            "wall_seconds": self.wall_seconds,
            "train_samples_per_second": self.samples_per_second(),
            "final_epoch": self.history.epochs.last(),
            "kept_epoch": self.kept_epoch(),
            "test": self.test,
            "per_class": self.per_class,
            "early_stopping": self.early,
        });
        serde_json::to_string_pretty(&metrics).unwrap_or_default()
    }

    fn summarize(&self, summary: &mut Summary) {
        summary.push("device", self.device);
        let epochs = self.history.epochs.len();
        let (secs, rate) = (self.train_seconds(), self.samples_per_second());
        summary.push("training", format!("{epochs} epochs in {secs:.1} s ({rate:.0} samples/s)"));
        if let Some(e) = &self.early {
            let stopped = e["stopped_epoch"]
                .as_u64()
                .map_or_else(|| "ran all epochs".to_owned(), |n| format!("stopped after epoch {n}"));
            let kept = if e["restored_best"] == true { "kept" } else { "best was" };
            summary.push("early stop", format!("{stopped}; {kept} epoch {}", e["best_epoch"]));
        }
        if let Some(v) = self.kept_epoch().and_then(|l| l.valid) {
            summary.push("valid", format!("accuracy {:.2}%, loss {:.4}", 100.0 * v.accuracy, v.loss));
        }
        if let Some(t) = self.test {
            let text = format!("accuracy {:.2}%, loss {:.4} ({} samples)", 100.0 * t.accuracy, t.loss, t.samples);
            summary.push("test", text);
        }
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
        short(r.lr),
        r.train_seconds + r.valid_seconds
    )
}

/// A number to 6 significant digits, without trailing zeros: a decayed learning rate of
/// 0.0001 * 0.9 prints as 9e-5, not 0.00008999999999999999, and like `%g` switches to an
/// exponent below 1e-4 (history.csv keeps every digit).
fn short(x: f64) -> String {
    let s = format!("{x:.5e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        let v: f64 = format!("{mantissa}e{exp}").parse().unwrap_or(x);
        let digits = (5 - exp).max(0) as usize;
        let fixed = format!("{v:.digits$}");
        if fixed.contains('.') { fixed.trim_end_matches('0').trim_end_matches('.').to_owned() } else { fixed }
    } else {
        format!("{mantissa}e{exp}")
    }
}

#[cfg(test)]
mod tests {
    use super::short;

    #[test]
    fn learning_rates_print_short() {
        assert_eq!(short(0.0001 * 0.9), "9e-5");
        assert_eq!(short(0.001), "0.001");
        assert_eq!(short(0.05), "0.05");
        assert_eq!(short(1.0), "1");
        assert_eq!(short(1e-6), "1e-6");
        assert_eq!(short(3e-7 * 0.5), "1.5e-7");
        assert_eq!(short(0.1 + 0.2), "0.3");
        assert_eq!(short(123456.0), "123456");
    }
}
