//! A run's progress through its epochs: the learning-rate schedule, early stopping, the history
//! and the TensorBoard events. A trained epoch and an epoch replayed from a checkpoint go through
//! the same [`Progress::record`], so a resumed run's schedule and early stopping are exactly
//! those of an uninterrupted one.

use std::path::Path;
use std::time::Instant;

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use kindling_core::{Dataset, StageError, StageIo, derive_seed};
use kindling_metrics::ConfusionMatrix;
use kindling_metrics::run_files::EarlyStoppingResult;
use kindling_metrics::tensorboard::{self, EventFile};
use kindling_models::Sequential;
use kindling_optim::{Monitor, Scheduler};

use crate::checkpoint;
use crate::config::TrainConfig;
use crate::diagnose::{DeadProbe, Recorder, StepSignals};
use crate::early::{Watch, monitored};
use crate::evaluation::Evaluator;
use crate::fit::Fit;
use crate::history::{EpochRecord, History};
use crate::lines::epoch_line;

/// Everything that changes from one epoch to the next, besides the model and the optimizer.
pub(crate) struct Progress {
    scheduler: Scheduler,
    /// Early stopping, when configured.
    pub(crate) watch: Option<Watch>,
    /// The epochs so far.
    pub(crate) history: History,
    /// TensorBoard scalars, rewritten (atomically, like every run file) after each epoch.
    events: EventFile,
    events_name: String,
    /// The validation confusion matrix of the last epoch.
    pub(crate) last_valid_confusion: Option<ConfusionMatrix>,
    /// The epoch early stopping stopped at, when it did.
    pub(crate) stopped_at: Option<usize>,
    /// The diagnostic signals so far, when `diagnostics` is on.
    pub(crate) diagnostics: Option<Recorder>,
}

/// Seconds since the Unix epoch, as TensorBoard stamps events.
fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

impl Progress {
    /// The state before the first epoch.
    pub(crate) fn new(c: &TrainConfig) -> Self {
        Self {
            scheduler: Scheduler::new(c.optimizer.lr(), c.scheduler.clone(), c.warmup.clone()),
            watch: c.early_stopping.clone().map(Watch::new),
            history: History::default(),
            events: EventFile::new(now()),
            events_name: tensorboard::file_name(now(), kindling_core::hostname()),
            last_valid_confusion: None,
            stopped_at: None,
            diagnostics: c.diagnostics.then(Recorder::default),
        }
    }

    /// The metrics the schedule and early stopping watch, by the name of their setting.
    pub(crate) fn monitors(&self) -> [(&'static str, Option<Monitor>); 2] {
        [("reduce_on_plateau", self.scheduler.monitor()), ("early_stopping", self.watch.as_ref().map(Watch::monitor))]
    }

    /// Replays the epochs of a checkpoint's `state` (`best`: the best epoch's model it kept) and
    /// returns the first epoch left to train. An epoch whose learning rate this configuration
    /// would not give is an error naming the checkpoint `file`.
    pub(crate) fn replay(
        &mut self,
        state: checkpoint::State,
        best: Option<Sequential>,
        file: &Path,
    ) -> Result<usize, StageError> {
        for record in state.history {
            if (self.scheduler.lr() - record.lr).abs() > 1e-12 * record.lr.abs().max(1.0) {
                return Err(StageError::Stopped(format!(
                    "{}: epoch {} ran at lr {} but this configuration gives {}; resume with the run's own config.yaml",
                    file.display(),
                    record.epoch,
                    record.lr,
                    self.scheduler.lr()
                )));
            }
            self.record(record, None);
        }
        if let (Some(w), Some(best)) = (self.watch.as_mut(), best) {
            w.best_model = Some((best, state.best_confusion));
        }
        self.last_valid_confusion = state.last_valid_confusion;
        self.stopped_at = state.stopped_at;
        self.events_name = state.events_name;
        if self.diagnostics.is_some() {
            self.diagnostics = Some(state.diagnostics.unwrap_or_default());
        }
        Ok(state.epoch + 1)
    }

    /// Trains and validates `epoch`, records it and returns the trained model.
    pub(crate) fn epoch(
        &mut self,
        fit: &Fit<'_>,
        eval: &Evaluator<'_>,
        data: &Dataset,
        net: Sequential,
        optimizer: &mut ModuleOptimizer,
        epoch: usize,
    ) -> Result<Sequential, StageError> {
        let t0 = Instant::now();
        let lr = self.scheduler.lr();
        // Dropout draws from the backend's generator: seeding it per epoch makes an epoch's
        // masks the same whether or not the run was interrupted before it.
        fit.device.seed(derive_seed(fit.seed, &format!("dropout/{epoch}")));
        let mut steps = self.diagnostics.as_ref().map(|_| StepSignals::new(data.train.len().div_ceil(fit.batch_size)));
        let recording = self.diagnostics.as_mut().zip(steps.as_mut());
        let (net, train) = fit.epoch(net, optimizer, &data.train, epoch, lr, recording)?;
        let train_seconds = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let valid_net = net.valid();
        let mut dead = self.diagnostics.as_ref().map(|_| DeadProbe::new(&valid_net));
        // With diagnostics, each ReLU's own output is looked at; without, the faster forward
        // pass (its pools fused into the convolutions) gives the same metrics.
        let valid = (!data.valid.is_empty())
            .then(|| match dead.as_mut() {
                Some(d) => eval.detailed_inspect(&valid_net, &data.valid, false, |i, x| d.observe(i, x)),
                None => eval.detailed(&valid_net, &data.valid, false),
            })
            .transpose()?;
        let (valid, predictions) = match valid {
            Some(e) => {
                self.last_valid_confusion = Some(e.confusion);
                (Some(e.metrics), Some(e.predictions))
            }
            None => {
                self.last_valid_confusion = None;
                (None, None)
            }
        };
        let valid_seconds = t1.elapsed().as_secs_f64();
        if let (Some(recorder), Some(steps), Some(mut dead)) = (self.diagnostics.as_mut(), steps, dead) {
            if data.valid.is_empty() {
                dead.probe(&valid_net, &data.train, eval.shape, eval.device).map_err(StageError::Stopped)?;
            }
            recorder.end_epoch(epoch, steps, &valid_net, dead, predictions.as_deref());
        }
        let record = EpochRecord { epoch, train, valid, lr, train_seconds, valid_seconds };
        eprintln!("{}", epoch_line(&record, fit.epochs));
        if self.record(record, Some(&net)) {
            self.stopped_at = Some(epoch);
        }
        Ok(net)
    }

    /// The bookkeeping of one finished epoch, trained (`net` is its model) or replayed (`None`):
    /// steps the schedule, adds the TensorBoard scalars, lets early stopping see the epoch and
    /// appends it to the history. Returns whether early stopping says to stop.
    fn record(&mut self, record: EpochRecord, net: Option<&Sequential>) -> bool {
        let value = |m: Monitor| monitored(m, &record.train, record.valid.as_ref());
        self.scheduler.step(self.scheduler.monitor().and_then(value));
        events_scalars(&mut self.events, &record, now());
        let stop = match (self.watch.as_mut(), net) {
            (Some(w), Some(net)) => {
                value(w.monitor()).is_some_and(|v| w.observe(record.epoch, v, net, self.last_valid_confusion.as_ref()))
            }
            (Some(w), None) => value(w.monitor()).is_some_and(|v| w.observe_value(record.epoch, v).1),
            (None, _) => false,
        };
        self.history.epochs.push(record);
        stop
    }

    /// Writes what a resumed run restarts from after `epoch`: the checkpoints (when
    /// `checkpoints`), then history.csv and the TensorBoard events, which are rebuilt from
    /// the checkpoint on resume.
    pub(crate) fn save(
        &self,
        io: &StageIo<'_>,
        epoch: usize,
        net: &Sequential,
        optimizer: &ModuleOptimizer,
        checkpoints: bool,
    ) -> Result<(), StageError> {
        if checkpoints {
            let best = self.watch.as_ref().and_then(|w| w.best_model.as_ref());
            let state = checkpoint::State {
                epoch,
                history: self.history.epochs.clone(),
                last_valid_confusion: self.last_valid_confusion.clone(),
                best_confusion: best.and_then(|(_, cm)| cm.clone()),
                stopped_at: self.stopped_at,
                events_name: self.events_name.clone(),
                diagnostics: self.diagnostics.clone(),
            };
            if best.is_some() && self.watch.as_ref().and_then(Watch::best).is_some_and(|(_, e)| e == epoch) {
                let best_file = checkpoint::path(io.run_dir.path(), "best.ckpt");
                checkpoint::save(&best_file, &state, net, None, None)?;
            }
            let last_file = checkpoint::path(io.run_dir.path(), "last.ckpt");
            checkpoint::save(&last_file, &state, net, Some(optimizer), best.map(|(b, _)| b))?;
        }
        crate::stage::write(io, "history.csv", self.history.to_csv().as_bytes())?;
        crate::stage::write(io, &self.events_name, self.events.bytes())
    }

    /// What early stopping decided, once training is over; when it kept the best epoch's
    /// model, `net` and the last validation matrix become that epoch's.
    pub(crate) fn finish(&mut self, net: &mut Sequential) -> Option<EarlyStoppingResult> {
        let stopped_at = self.stopped_at;
        let last_valid_confusion = &mut self.last_valid_confusion;
        self.watch.as_mut().map(|w| {
            let (best, best_epoch) = w.best().unwrap_or((f64::NAN, 0));
            let restored = w.best_model.take().map(|(best_net, confusion)| {
                *net = best_net;
                *last_valid_confusion = confusion;
            });
            if let Some(epoch) = stopped_at {
                eprintln!("early stopping after epoch {epoch}: no improvement for {} epochs", epoch - best_epoch);
            }
            EarlyStoppingResult { stopped_epoch: stopped_at, best_epoch, best, restored_best: restored.is_some() }
        })
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
