//! The shared vocabulary of Kindling: what a stage is, how plugins list them, the typed
//! artifacts stages pass to each other, configuration issues, seeding and run directories.
//!
//! A [`Plugin`] is a plain value a crate exports, listing [`StageDef`]s. The CLI builds one
//! explicit [`Registry`] from all plugins; there is no link-time registration. A stage's
//! configuration is its own typed struct (see [`StageConfig`]); this crate turns a generic
//! configuration value into that struct and collects every [`ConfigIssue`] on the way.
//!
//! This crate does no maths, reads no YAML and knows nothing of burn: artifacts are stored by
//! type in [`Artifacts`], so a domain crate can pass its own types (a model, a device) through
//! the pipeline without this crate naming them.

mod artifact;
mod dataset;
mod device;
mod input;
mod issue;
mod listing;
pub mod mutate;
mod package;
mod parse;
mod registry;
mod rundir;
mod seed;
mod split;
mod stage;

pub use artifact::{Artifact, Artifacts, Facts, TypeMap};
pub use dataset::{DataSpec, Dataset, SampleSource, Split};
pub use device::{DeviceChoice, Summary};
pub use input::InputReader;
pub use issue::{ConfigIssue, Issues, Origin, PathStep, path_steps};
pub use listing::{LabelledFiles, ListingError, split_csv};
pub use package::{MAX_PACKAGE_BYTES, ModelDescription, PACKAGE_FILE, PACKAGE_VERSION, Package};
pub use registry::{Plugin, Registry, closest};
pub use rundir::{Resume, RunDir, hostname, peak_memory, physical_memory, process_alive, write_atomic};
pub use seed::{derive_seed, rng_from_seed};
pub use split::stratified_split;
pub use stage::{ConfigKey, KeyRole, PlanCx, PreparedStage, Stage, StageConfig, StageDef, StageError, StageIo};
