//! Stages: the units a pipeline runs, their typed configuration and their declared wiring.

use std::error::Error;
use std::path::{Path, PathBuf};

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::artifact::{Artifacts, Facts};
use crate::issue::{ConfigIssue, Issues};
use crate::rundir::RunDir;

/// A stage's `with:` block as a typed struct. Unknown keys are rejected by the deserializer
/// (`#[serde(deny_unknown_fields)]` on the struct); `Default` gives the documented defaults.
/// `JsonSchema` (derived next to `Deserialize`, so it follows the same serde attributes) gives
/// the block's JSON Schema for `kindling schema` ([`StageDef::schema`]).
pub trait StageConfig: DeserializeOwned + Serialize + JsonSchema + Default + 'static {
    /// One line of documentation per top-level key, shown by `kindling stages`; also the list
    /// of keys a `with:` block may use. `tests/tests/stage_keys.rs` holds it equal, for every
    /// registered stage, to the keys the configuration serialises
    /// ([`StageDef::serialized_keys`]), so a field missing from it fails a test.
    const KEY_DOCS: &'static [(&'static str, &'static str)];

    /// Checks values that parse but make no sense (a negative learning rate), recording every
    /// problem rather than stopping at the first.
    fn check(&self, issues: &mut Issues) {
        let _ = issues;
    }
}

/// What a stage sees while the pipeline is validated.
#[derive(Debug)]
pub struct PlanCx<'a> {
    /// Facts recorded by earlier stages' plans.
    pub facts: &'a mut Facts,
    /// Where this stage's problems go; paths are relative to its `with:` block.
    pub issues: &'a mut Issues,
    /// The directory relative paths in the configuration are resolved against (the pipeline
    /// file's directory).
    pub base_dir: &'a Path,
}

/// Everything a running stage may touch.
#[derive(Debug)]
pub struct StageIo<'a> {
    /// Artifacts of earlier stages, and run-wide resources such as the device.
    pub artifacts: &'a mut Artifacts,
    /// Where this run writes its files.
    pub run_dir: &'a RunDir,
    /// The run's seed; derive per-purpose streams with [`crate::derive_seed`].
    pub seed: u64,
    /// The directory relative paths in the configuration are resolved against.
    pub base_dir: &'a Path,
}

/// Why a stage failed while running.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// The pipeline's wiring check should prevent this; it remains a clear error, not a panic.
    #[error("no earlier stage produced the `{0}` artifact this stage needs")]
    MissingArtifact(&'static str),
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The stage stopped on purpose (diverging loss, data that does not fit the model).
    #[error("{0}")]
    Stopped(String),
    /// An error from a domain crate, which already names the file or value at fault.
    #[error(transparent)]
    Domain(Box<dyn Error + Send + Sync>),
}

impl StageError {
    /// Wraps a domain crate's error.
    pub fn domain(e: impl Error + Send + Sync + 'static) -> Self {
        Self::Domain(Box::new(e))
    }

    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}

/// A configured stage, ready to be planned and run.
pub trait Stage: Send {
    /// Records what this stage will produce that later stages need to know before any compute
    /// (input shape, number of classes), and checks what earlier stages recorded. Only cheap
    /// work belongs here (reading a file header is fine; decoding a data set is not).
    fn plan(&self, cx: &mut PlanCx<'_>) {
        let _ = cx;
    }

    /// Does the stage's work.
    fn run(&mut self, io: &mut StageIo<'_>) -> Result<(), StageError>;
}

/// A configuration key of a stage, with its default, for `kindling stages`.
#[derive(Clone, Debug)]
pub struct ConfigKey {
    /// The key as written under `with:`.
    pub name: &'static str,
    /// Its default value (`null` where the key is required or optional without a default).
    pub default: Value,
    /// One line of documentation.
    pub doc: &'static str,
}

/// A stage built from its configuration, with the configuration as resolved (defaults filled).
pub struct PreparedStage {
    /// The stage.
    pub stage: Box<dyn Stage>,
    /// The configuration with every default filled in, for the run directory.
    pub resolved: Value,
}

impl std::fmt::Debug for PreparedStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedStage").field("resolved", &self.resolved).finish_non_exhaustive()
    }
}

type Prepare = Box<dyn Fn(Value) -> Result<PreparedStage, Vec<ConfigIssue>> + Send + Sync>;

/// What a configuration key means to tools that reopen a finished run (`kindling eval --data`
/// sets the held-out data, every reopening sets the weights), so they name the role and the
/// stage that declares it names the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyRole {
    /// Labelled data evaluated instead of the run's own: a folder of class folders.
    HeldOutFolder,
    /// The same as a `path,label` CSV manifest.
    HeldOutManifest,
    /// The weights file a model is initialised from.
    Weights,
}

/// A named stage kind a plugin offers: its description, wiring and factory.
pub struct StageDef {
    /// The name used in pipelines (`stage: train`).
    pub name: &'static str,
    /// One line saying what the stage does.
    pub summary: &'static str,
    /// Artifact kinds the stage needs from earlier stages.
    pub inputs: &'static [&'static str],
    /// Artifact kinds the stage produces.
    pub outputs: &'static [&'static str],
    keys: fn() -> Vec<ConfigKey>,
    serialized_keys: fn() -> Vec<String>,
    schema: fn(&mut SchemaGenerator) -> Schema,
    prepare: Prepare,
    roles: &'static [(KeyRole, &'static str)],
}

impl std::fmt::Debug for StageDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageDef").field("name", &self.name).finish_non_exhaustive()
    }
}

impl StageDef {
    /// Declares a stage whose `with:` block is a `C`, built into a stage by `build`.
    pub fn new<C: StageConfig>(
        name: &'static str,
        summary: &'static str,
        inputs: &'static [&'static str],
        outputs: &'static [&'static str],
        build: fn(C) -> Box<dyn Stage>,
    ) -> Self {
        let prepare = move |value: Value| -> Result<PreparedStage, Vec<ConfigIssue>> {
            let (config, mut issues) = crate::parse::parse_config::<C>(value);
            let Some(config) = config else { return Err(issues) };
            // Range checks run on what parsed (values that did not parse left at their
            // defaults), so one pass reports both kinds; a check on a value already reported
            // would only echo it.
            let mut checked = Issues::default();
            config.check(&mut checked);
            for issue in checked.into_vec() {
                if !issues.iter().any(|i| crate::parse::related(&i.path, &issue.path)) {
                    issues.push(issue);
                }
            }
            if !issues.is_empty() {
                return Err(issues);
            }
            let resolved = serde_json::to_value(&config).unwrap_or(Value::Null);
            Ok(PreparedStage { stage: build(config), resolved })
        };
        Self {
            name,
            summary,
            inputs,
            outputs,
            keys: keys_of::<C>,
            serialized_keys: serialized_keys_of::<C>,
            schema: schema_of::<C>,
            prepare: Box::new(prepare),
            roles: &[],
        }
    }

    /// Declares which of the stage's keys play which [`KeyRole`].
    pub fn with_roles(mut self, roles: &'static [(KeyRole, &'static str)]) -> Self {
        self.roles = roles;
        self
    }

    /// The key that plays `role` in this stage, if one does.
    pub fn key_for(&self, role: KeyRole) -> Option<&'static str> {
        self.roles.iter().find(|(r, _)| *r == role).map(|(_, key)| *key)
    }

    /// The configuration keys with their defaults and documentation.
    pub fn keys(&self) -> Vec<ConfigKey> {
        (self.keys)()
    }

    /// The top-level keys of the default configuration serialised, in field order: the keys
    /// the configuration struct reads and writes, which should be exactly the documented ones
    /// ([`keys`](Self::keys)).
    pub fn serialized_keys(&self) -> Vec<String> {
        (self.serialized_keys)()
    }

    /// The JSON Schema of the `with:` block (which may also be `null` when no key is
    /// required), generated from the configuration type as serde reads it; each key's
    /// description is its [`KEY_DOCS`](StageConfig::KEY_DOCS) line and its default the
    /// configuration's default. Types it names are added to `generator`'s definitions.
    pub fn schema(&self, generator: &mut SchemaGenerator) -> Schema {
        (self.schema)(generator)
    }

    /// Parses and checks a `with:` block (`null` when absent) and builds the stage. Issue paths
    /// are relative to the `with:` block.
    pub fn prepare(&self, with: Value) -> Result<PreparedStage, Vec<ConfigIssue>> {
        (self.prepare)(with)
    }
}

fn keys_of<C: StageConfig>() -> Vec<ConfigKey> {
    let defaults = serde_json::to_value(C::default()).unwrap_or(Value::Null);
    C::KEY_DOCS
        .iter()
        .map(|&(name, doc)| ConfigKey { name, default: defaults.get(name).cloned().unwrap_or(Value::Null), doc })
        .collect()
}

fn schema_of<C: StageConfig>(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = C::json_schema(generator);
    let defaults = serde_json::to_value(C::default()).unwrap_or(Value::Null);
    // A key `check` requires (`#[schemars(required)]`) has a placeholder, not a default.
    let required = schema.get("required").cloned().unwrap_or_default();
    if let Some(Value::Object(properties)) = schema.get_mut("properties") {
        for (key, property) in properties.iter_mut() {
            let Value::Object(property) = property else { continue };
            // `kindling stages` shows the same line, so an editor and the command agree.
            if let Some((_, doc)) = C::KEY_DOCS.iter().find(|(k, _)| k == key) {
                property.insert("description".to_owned(), Value::from(*doc));
            }
            match defaults.get(key) {
                Some(default) if !required.as_array().is_some_and(|r| r.iter().any(|k| k == key)) => {
                    property.insert("default".to_owned(), default.clone());
                }
                _ => {
                    property.remove("default");
                }
            }
        }
    }
    // `with:` written with nothing after it is YAML's null, read as an empty block: fine
    // unless a key is required.
    if let Some(ty) = schema.get_mut("type")
        && *ty == "object"
        && required.as_array().is_none_or(Vec::is_empty)
    {
        *ty = serde_json::json!(["object", "null"]);
    }
    schema
}

fn serialized_keys_of<C: StageConfig>() -> Vec<String> {
    match serde_json::to_value(C::default()) {
        Ok(Value::Object(map)) => map.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, Serialize, JsonSchema)]
    #[serde(deny_unknown_fields, default)]
    struct Toy {
        lr: f64,
        mode: Mode,
        inner: Inner,
    }

    #[derive(Debug, Default, Deserialize, Serialize, JsonSchema)]
    #[serde(deny_unknown_fields, default)]
    struct Inner {
        depth: u32,
    }

    #[derive(Debug, Default, Deserialize, Serialize, JsonSchema)]
    #[serde(rename_all = "snake_case")]
    enum Mode {
        #[default]
        Min,
        Max,
    }

    impl Default for Toy {
        fn default() -> Self {
            Self { lr: 0.1, mode: Mode::Min, inner: Inner::default() }
        }
    }

    impl StageConfig for Toy {
        const KEY_DOCS: &'static [(&'static str, &'static str)] =
            &[("lr", "learning rate"), ("mode", "min or max"), ("inner", "nested")];
        fn check(&self, issues: &mut Issues) {
            issues.require(self.lr > 0.0, "lr", "must be positive");
        }
    }

    struct Nop;
    impl Stage for Nop {
        fn run(&mut self, _: &mut StageIo<'_>) -> Result<(), StageError> {
            Ok(())
        }
    }

    fn def() -> StageDef {
        StageDef::new::<Toy>("toy", "a toy", &[], &[], |_| Box::new(Nop))
    }

    fn errors(v: Value) -> Vec<String> {
        def().prepare(v).err().unwrap().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn every_unknown_key_is_reported_with_a_suggestion() {
        let got = errors(serde_json::json!({"lrr": 1, "mdoe": "max"}));
        assert_eq!(
            got,
            ["lrr: unknown key `lrr` (did you mean `lr`?)", "mdoe: unknown key `mdoe` (did you mean `mode`?)"]
        );
    }

    #[test]
    fn serialized_keys_are_the_fields_in_order() {
        let documented: Vec<&str> = def().keys().iter().map(|k| k.name).collect();
        assert_eq!(def().serialized_keys(), documented);
    }

    #[test]
    fn nested_and_type_errors_carry_their_path() {
        assert_eq!(
            errors(serde_json::json!({"inner": {"dpth": 1}})),
            ["inner.dpth: unknown key `dpth` (did you mean `depth`?)"]
        );
        assert_eq!(errors(serde_json::json!({"mode": "maxx"})), ["mode: unknown value `maxx` (did you mean `max`?)"]);
        assert_eq!(errors(serde_json::json!({"lr": "fast"})), ["lr: expected a number, found the text \"fast\""]);
    }

    #[test]
    fn every_type_error_and_range_error_of_a_block_is_reported_in_one_pass() {
        let mut got = errors(serde_json::json!({"lr": [1], "mode": "maxx", "inner": {"depth": -2}}));
        got.sort();
        assert_eq!(
            got,
            [
                "inner.depth: expected a whole number >= 0, found -2",
                "lr: expected a number, found a list",
                "mode: unknown value `maxx` (did you mean `max`?)",
            ]
        );
        // A wrong type next to a value out of range: both.
        assert_eq!(
            errors(serde_json::json!({"lr": -1.0, "inner": {"depth": "deep"}})),
            ["inner.depth: expected a whole number >= 0, found the text \"deep\"", "lr: must be positive"]
        );
    }

    #[test]
    fn range_checks_run_after_parsing_and_defaults_are_resolved() {
        assert_eq!(errors(serde_json::json!({"lr": -1.0})), ["lr: must be positive"]);
        let ok = def().prepare(Value::Null).unwrap();
        assert_eq!(ok.resolved, serde_json::json!({"lr": 0.1, "mode": "min", "inner": {"depth": 0}}));
        let keys = def().keys();
        assert_eq!(keys[0].name, "lr");
        assert_eq!(keys[0].default, serde_json::json!(0.1));
    }

    #[test]
    fn the_schema_describes_each_key_with_its_doc_line_and_default() {
        let mut generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
        let schema = def().schema(&mut generator);
        let schema = schema.as_value();
        assert_eq!(schema["type"], serde_json::json!(["object", "null"]));
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["properties"]["lr"]["description"], "learning rate");
        assert_eq!(schema["properties"]["lr"]["default"], 0.1);
        assert_eq!(schema["properties"]["mode"]["default"], "min");
        assert_eq!(schema["properties"]["inner"]["default"], serde_json::json!({"depth": 0}));
        // Nested types are definitions the properties refer to.
        assert!(generator.definitions().contains_key("Mode"), "{:?}", generator.definitions().keys());
    }
}
