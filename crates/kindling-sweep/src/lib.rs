//! Sweeps over Kindling pipelines: many trials of one pipeline, each a separate process, with a
//! store that makes resuming exact, optional pruning, and a comparison report.
//!
//! A sweep is a `sweep:` block in a pipeline (or a sweep file naming a pipeline):
//!
//! ```yaml
//! sweep:
//!   grid:                           # cartesian product, last key fastest
//!     train.optimizer.lr: [0.001, 0.0005]
//!     train.optimizer.weight_decay: [0.005, 0.001]
//!   random:                         # drawn `trials` times per grid point, seeded
//!     model.dropout: {uniform: [0.1, 0.5]}
//!   trials: 4
//!   seeds: [1, 2, 3]                # every point once per seed: mean +- std in the report
//!   metric: valid.accuracy          # default; mode follows (max; min for a loss)
//!   prune: {kind: asha}             # or {kind: median}; off by default
//! ```
//!
//! [`prepare`] expands and validates every trial's configuration before anything runs;
//! [`Store`] keeps the sweep directory; a [`Launcher`] runs the trials (the [`Local`] one runs
//! them as child processes of this machine; [`cluster::Slurm`] submits a job array of workers
//! that run the same claim loop on other machines; [`cluster::Kubernetes`] renders an Indexed
//! Job of them); [`supervise`] counts where trials stand and waits for a submitted job;
//! [`report::write`] compares them.
//!
//! ```no_run
//! # fn registry() -> kindling_core::Registry { unimplemented!() }
//! use std::path::Path;
//! use kindling_sweep::{Launcher, Local, Store};
//!
//! let prepared = kindling_sweep::prepare(Path::new("pipelines/vgg3-grid.yaml"), &registry(), &[])?;
//! let dir = Path::new("runs/vgg3-grid-sweep/first");
//! let store = Store::create(dir, &prepared.manifest, &prepared.configs)?;
//! let local = Local { exe: "kindling".into(), parallel: 2, threads_per_trial: 1, job: None };
//! let outcome = local.launch(&store, &prepared.manifest)?;
//! println!("{} done, {} failed", outcome.done, outcome.failed);
//! kindling_sweep::report::write(dir, &kindling_sweep::report::ReportOptions::default())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use kindling_core::Registry;
use kindling_pipeline::PlanError;

pub mod cluster;
mod local;
pub mod prune;
pub mod report;
pub mod spec;
pub mod store;
pub mod supervise;
pub mod tpe;

pub use local::{
    LAUNCHER_PID, LaunchOutcome, Launcher, Local, Resolve, curve, default_parallel, follow_launcher, read_metrics,
};
pub use spec::{SweepSource, SweepSpec, TrialSpec};
pub use store::{Manifest, Status, Store, StoreError, TrialEntry, TrialResult};
pub use supervise::{Counts, WaitOutcome};

/// Why a sweep could not be prepared or run.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The sweep block or the sweep file is wrong.
    #[error("{0}")]
    Spec(#[from] PlanError),
    /// Some trials' configurations do not validate; the text lists each distinct problem once
    /// with the trials it affects.
    #[error("{0}")]
    Trials(String),
    /// The sweep directory could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A trial process could not be started.
    #[error("{0}")]
    Launch(String),
}

/// A sweep ready to run: its manifest and each trial's resolved configuration.
#[derive(Debug)]
pub struct Prepared {
    /// The sweep as read.
    pub source: SweepSource,
    /// What the store records. For `search: tpe`, whose trials are decided as it runs, its
    /// trials are the random draws over its space that were validated, and the store records
    /// none of them ([`Store::create`]).
    pub manifest: Manifest,
    /// `configs[i]`: trial i's resolved pipeline (a runnable YAML document).
    pub configs: Vec<String>,
}

/// Reads the sweep in `file`, expands its trials and validates every trial's configuration (the
/// pipeline with `base_overrides` and the trial's values applied), all before any compute.
pub fn prepare(file: &Path, registry: &Registry, base_overrides: &[String]) -> Result<Prepared, SweepError> {
    let source = spec::load(file)?;
    let absolute = std::path::absolute(&source.pipeline).unwrap_or_else(|_| source.pipeline.clone());
    let mut entries = Vec::new();
    let mut configs = Vec::new();
    let mut name = String::new();
    let mut device = None;
    // Distinct problem -> the trials it affects.
    let mut problems: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    let trials = source.spec.trials();
    let count = trials.len();
    for trial in trials {
        let overrides: Vec<String> = base_overrides.iter().cloned().chain(trial.overrides()).collect();
        match kindling_pipeline::parse(&source.pipeline, &source.pipeline_src, registry, &overrides) {
            Ok(plan) => {
                let config = plan.resolved_yaml();
                let id = store::trial_id(&config);
                // Two trials that resolve to the same configuration are one trial.
                if seen.insert(id.clone()) {
                    name.clone_from(&plan.name);
                    device = device.or(Some(plan.device));
                    entries.push(TrialEntry { id, spec: TrialSpec { index: entries.len(), ..trial } });
                    configs.push(config);
                }
            }
            Err(e) => {
                for line in e.to_string().lines() {
                    problems
                        .entry(line.replace("the value comes from --set", "the value comes from the sweep"))
                        .or_default()
                        .push(trial.label());
                }
            }
        }
    }
    if !problems.is_empty() {
        let mut text = String::new();
        for (problem, labels) in &problems {
            let which = if labels.len() == count {
                "every trial".to_owned()
            } else {
                let mut shown: Vec<&str> = labels.iter().take(3).map(String::as_str).collect();
                if labels.len() > 3 {
                    shown.push("...");
                }
                format!("{} of {count} trials: {}", labels.len(), shown.join("; "))
            };
            text += &format!("{problem}\n  (in {which})\n");
        }
        text += &format!("{} problem(s); nothing was run", problems.len());
        return Err(SweepError::Trials(text));
    }
    let manifest = Manifest {
        version: 1,
        pipeline: absolute,
        name,
        base_overrides: base_overrides.to_vec(),
        spec: source.spec.clone(),
        trials: entries,
        device: device.unwrap_or_default(),
    };
    Ok(Prepared { source, manifest, configs })
}

impl Prepared {
    /// What `kindling sweep --dry-run` prints: the number of trials and the first `show`
    /// resolved configurations.
    pub fn describe(&self, show: usize) -> String {
        let spec = &self.manifest.spec;
        let count = if spec.search == spec::Search::Tpe { spec.trials } else { self.manifest.trials.len() };
        let mut out = format!(
            "{}: {} trial(s), compared by {} ({}), pruning {}\n",
            self.source.pipeline.display(),
            count,
            spec.metric,
            if spec.mode == spec::Mode::Max { "higher is better" } else { "lower is better" },
            match &spec.prune {
                None => "off".to_owned(),
                Some(p) => format!("{p:?}").to_lowercase(),
            }
        );
        if spec.search == spec::Search::Tpe {
            out += &format!(
                "search: tpe ({} random trials, then the Parzen estimator); each trial's values are decided when \
                 it starts; {} random draws over the space were validated, the first shown below\n",
                tpe::N_STARTUP.min(spec.trials),
                self.manifest.trials.len()
            );
        }
        for (t, config) in self.manifest.trials.iter().zip(&self.configs).take(show) {
            out += &format!("\n# trial {} [{}]: {}\n", t.spec.index, t.id, t.spec.label());
            out += config;
        }
        if self.manifest.trials.len() > show {
            out += &format!("\n... and {} more\n", self.manifest.trials.len() - show);
        }
        out
    }
}
