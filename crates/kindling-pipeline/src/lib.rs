//! Pipelines: a YAML file -> a validated [`Plan`] -> a run that executes its stages in order.
//!
//! Parsing and validation collect every problem of a file before any compute: unknown keys and
//! stages (with "did you mean"), wrong types, out-of-range values, and stages whose inputs no
//! earlier stage produces. Each [`kindling_core::ConfigIssue`] names the dotted path and, where
//! the file shows it, the line and column. `--set path=value` overrides (and the typed
//! [`Overrides`]) go through the same checks. [`run`] creates the run directory, writes the
//! resolved configuration into it and runs the stages; [`reopen`] builds a finished run's data
//! and model again for evaluation and prediction.
//!
//! [`schema`] is the format's JSON Schema (`kindling schema`), for editors and other tools.
//!
//! This crate does no maths and knows no backend: stages come from a
//! [`kindling_core::Registry`] that the caller builds from plugins.

mod compose;
mod interpolate;
mod locate;
mod overrides;
mod plan;
mod reopen;
mod run;
mod schema;
mod source;

pub use compose::{Composed, compose};
pub use locate::locate;
pub use overrides::Overrides;
pub use plan::{Plan, PlanError, PlannedStage, load, load_with, parse, parse_with};
pub use reopen::{ReopenError, reopen};
pub use run::{RunError, RunOutcome, load_data, prepare, resume, run, run_in};
pub use schema::schema;
pub use source::{MAX_BYTES, MAX_DEPTH, parse_yaml, read_source};
