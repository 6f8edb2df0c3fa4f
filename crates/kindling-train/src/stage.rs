//! The `train` stage: sets up a run, resumes it from its checkpoint when asked, trains its
//! epochs (the bookkeeping is [`Progress`]'s), then evaluates the kept model and writes
//! metrics.json, the confusion matrices, the weights and the figures.

use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::store::SafetensorsStore;
use kindling_core::{
    Artifact, DataSpec, Dataset, PlanCx, Resume, Split, Stage, StageDef, StageError, StageIo, Summary,
};
use kindling_metrics::ConfusionMatrix;
use kindling_metrics::diagnostics::{Context, DataSignals, Diagnostics, EpochSignals, diagnose};
use kindling_metrics::direction;
use kindling_metrics::run_files::{EarlyStoppingResult, METRICS_VERSION, Named, PerClassReport, RunMetrics};
use kindling_models::device::ResolvedDevice;
use kindling_models::{LayerInfo, LayerSpec, Model, Sequential};
use kindling_optim::Monitor;

use crate::checkpoint;
use crate::config::TrainConfig;
use crate::evaluation::Evaluator;
use crate::figures;
use crate::fit::Fit;
use crate::history::History;
use crate::lines::{kept_label, summarize};
use crate::progress::Progress;

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

/// The outcome of the epochs, before the final evaluation.
struct Trained {
    /// The model kept (the best epoch's when early stopping restored it).
    net: Sequential,
    /// Its layers as configured and as inferred.
    layers: Vec<LayerSpec>,
    infos: Vec<LayerInfo>,
    history: History,
    /// The kept model's validation confusion matrix.
    valid_confusion: Option<ConfusionMatrix>,
    early: Option<EarlyStoppingResult>,
    /// The diagnostic signals, when recorded.
    signals: Option<(Vec<EpochSignals>, DataSignals)>,
    /// When the stage started.
    started: Instant,
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
        let batch = c.batch_size.min(data.train.len());
        kindling_models::fits_in_memory(&kindling_models::Shape::Image(shape), &model.infos, batch)
            .map_err(StageError::Stopped)?;
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
        let mut progress = Progress::new(c);
        for (what, monitor) in progress.monitors() {
            if monitor.is_some_and(|m| m != Monitor::TrainLoss) && data.valid.is_empty() {
                return Err(StageError::Stopped(format!(
                    "{what} watches a validation metric, but there is no validation split (set valid_fraction)"
                )));
            }
        }
        // Evaluation runs without autodiff, on the same hardware.
        let plain = device.device.clone().inner();
        let eval = Evaluator {
            shape,
            classes: data.classes.len(),
            batch_size: c.eval_batch_size,
            loss: &criterion,
            device: &plain,
        };
        let mut optimizer = c.optimizer.build();
        let mut net = model.net;
        let started = Instant::now();
        let data_signals = c.diagnostics.then(|| crate::diagnose::data_signals(data, shape));
        let last_file = checkpoint::path(io.run_dir.path(), "last.ckpt");
        let mut first_epoch = 1;

        // Resuming: the model and optimizer come from the checkpoint; the schedule and early
        // stopping are functions of the metrics seen, so the recorded epochs are replayed.
        if io.artifacts.get::<Resume>().is_some() && last_file.exists() {
            let best_template = progress.watch.as_ref().filter(|w| w.restores_best()).map(|_| net.clone());
            let loaded = checkpoint::load(&last_file, net, optimizer, best_template)?;
            (net, optimizer) = (loaded.net, loaded.optimizer);
            let done = loaded.state.epoch;
            first_epoch = progress.replay(loaded.state, loaded.best, &last_file)?;
            eprintln!("resuming after epoch {done} of {} from {}", c.epochs, last_file.display());
        } else if io.artifacts.get::<Resume>().is_some() {
            eprintln!("no checkpoint in {}: training from the start", last_file.display());
        }

        let epochs = if progress.stopped_at.is_some() { first_epoch..=0 } else { first_epoch..=c.epochs };
        for epoch in epochs {
            net = progress.epoch(&fit, &eval, data, net, &mut optimizer, epoch)?;
            progress.save(io, epoch, &net, &optimizer, c.checkpoints)?;
            if progress.stopped_at.is_some() {
                break;
            }
        }
        let early = progress.finish(&mut net);
        let signals = progress.diagnostics.take().map(|r| r.epochs).zip(data_signals);
        let trained = Trained {
            net,
            layers: model.layers,
            infos: model.infos,
            history: progress.history,
            valid_confusion: progress.last_valid_confusion,
            early,
            signals,
            started,
        };
        self.conclude(io, &eval, &device, trained)
    }
}

impl Train {
    /// Evaluates the kept model on every split, then writes the confusion matrices, the
    /// weights, metrics.json and the figures, and hands the model and history on.
    fn conclude(
        &self,
        io: &mut StageIo<'_>,
        eval: &Evaluator<'_>,
        device: &ResolvedDevice,
        trained: Trained,
    ) -> Result<(), StageError> {
        let Trained { net, layers, infos, history, valid_confusion, early, signals, started } = trained;
        let data = io.artifacts.get::<Dataset>().ok_or(StageError::MissingArtifact(Dataset::KIND))?;
        let shape = eval.shape;
        let eval_net = net.valid();
        // The gallery of mistakes comes from the split the run is judged on: test, else valid.
        let gallery_split = match (&data.test, data.valid.is_empty()) {
            (Some(_), _) => "test",
            (None, false) => "valid",
            (None, true) => "train",
        };
        let detailed = |split: &Split, name: &str| eval.detailed(&eval_net, split, name == gallery_split);
        let train_eval = detailed(&data.train, "train")?;
        let test = data.test.as_ref().map(|t| detailed(t, "test")).transpose()?;
        // The kept model's validation matrix is known; its mistakes need one more pass.
        let valid_mistakes =
            if gallery_split == "valid" { detailed(&data.valid, "valid")?.mistakes } else { Vec::new() };
        let confusions = [
            ("test", test.as_ref().map(|t| t.confusion.clone())),
            ("valid", valid_confusion),
            ("train", Some(train_eval.confusion.clone())),
        ];
        let confusions: Vec<(&'static str, ConfusionMatrix)> =
            confusions.into_iter().filter_map(|(split, cm)| Some((split, cm?))).collect();
        let mut per_class = Named::default();
        // Classes named by numbers (azimuths) are ordered: how far off the mistakes are counts.
        // Names 0..k-1 in order are usually plain labels (digits), not quantities.
        let values =
            direction::class_values(&data.classes).filter(|v| !v.iter().enumerate().all(|(i, &x)| x == i as f64));
        let mut directions = Named::default();
        for (split, confusion) in &confusions {
            if let Some(v) = &values
                && let Ok(report) =
                    direction::direction_report(confusion, v, direction::class_step(v).unwrap_or(0.0), None)
            {
                directions.0.push(((*split).to_owned(), report));
            }
            write(io, &format!("confusion_{split}.csv"), confusion.to_csv(&data.classes).as_bytes())?;
            per_class.0.push(((*split).to_owned(), PerClassReport::new(confusion, &data.classes)));
        }
        let gallery = match gallery_split {
            "test" => data.test.as_ref().zip(test.as_ref()).map(|(s, e)| (s, e.mistakes.clone())),
            "valid" => Some((&data.valid, valid_mistakes)),
            _ => Some((&data.train, train_eval.mistakes.clone())),
        }
        .map(|(split, mistakes)| figures::Gallery { split_name: gallery_split, split, mistakes, shape });
        let test = test.map(|t| t.metrics);
        if self.config.save_model {
            crate::weights::write(&eval_net, SafetensorsStore::from_bytes(None), io.run_dir, "model.safetensors")?;
            let check = if data.valid.is_empty() { &data.train } else { &data.valid };
            crate::export::write(&eval_net, &layers, shape, check, eval.device, io.run_dir)?;
            let reader = io.artifacts.get::<Box<dyn kindling_core::InputReader>>().map(|r| r.as_ref());
            crate::export::write_onnx(&eval_net, &layers, shape, &data.classes, reader, io.run_dir)?;
        }
        let epochs = history.epochs.len();
        let train_seconds: f64 = history.epochs.iter().map(|e| e.train_seconds).sum();
        let metrics = RunMetrics {
            version: METRICS_VERSION,
            device: device.description.clone(),
            epochs,
            parameters: infos.iter().map(|i| i.params).sum(),
            train_seconds,
            wall_seconds: started.elapsed().as_secs_f64(),
            train_samples_per_second: (data.train.len() * epochs) as f64 / train_seconds.max(1e-9),
            final_epoch: history.epochs.last().cloned(),
            kept_epoch: RunMetrics::kept(&history.epochs, early.as_ref()).cloned(),
            test,
            per_class,
            early_stopping: early,
            diagnostics: signals.map(|(epochs, data)| {
                let c = &self.config;
                let cx = Context {
                    classes: data.classes.len(),
                    optimizer: c.optimizer.name().into(),
                    lr: c.optimizer.lr(),
                    weight_decay: c.optimizer.weight_decay(),
                    early_stopping: c.early_stopping.is_some(),
                };
                Diagnostics { findings: diagnose(&history.epochs, &epochs, &data, &cx), epochs, data }
            }),
            direction: values.is_some().then_some(directions),
        };
        write(io, "metrics.json", metrics.to_json().as_bytes())?;
        let mut own = Summary::default();
        summarize(&metrics, &mut own);
        // The page shows the earlier stages' lines (data, model) and this stage's.
        let mut summary = io.artifacts.get::<Summary>().map(|s| s.lines.clone()).unwrap_or_default();
        summary.push(("parameters".into(), metrics.parameters.to_string()));
        summary.extend(own.lines.iter().cloned());
        let run_figures = figures::RunFigures {
            history: &history,
            kept: kept_label(&metrics),
            classes: &data.classes,
            confusions,
            gallery,
            summary,
            diagnostics: metrics.diagnostics.as_ref(),
        };
        figures::write(io, &run_figures)?;
        if let Some(summary) = io.artifacts.get_mut::<Summary>() {
            summary.lines.extend(own.lines);
        }
        io.artifacts.insert(Model { net, layers, infos });
        io.artifacts.insert(history);
        Ok(())
    }
}

/// Writes `name` into the run directory atomically.
pub(crate) fn write(io: &StageIo<'_>, name: &str, bytes: &[u8]) -> Result<(), StageError> {
    io.run_dir.write(name, bytes).map(drop).map_err(|e| StageError::io(io.run_dir.path().join(name), e))
}
