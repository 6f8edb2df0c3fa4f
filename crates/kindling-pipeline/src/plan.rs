//! Parsing and validating a pipeline file into a [`Plan`].

use std::fmt;
use std::path::{Path, PathBuf};

use kindling_core::{ConfigIssue, DeviceChoice, Facts, Issues, PlanCx, PreparedStage, Registry};
use serde_yaml::Value;

use crate::compose::compose;
use crate::overrides::{self, Overrides, TOP_KEYS};

/// A validated pipeline: every stage parsed, checked and wired, ready to run.
#[derive(Debug)]
pub struct Plan {
    /// The pipeline file.
    pub file: PathBuf,
    /// The pipeline's name (`name:`, else the file's stem); names its runs directory.
    pub name: String,
    /// The run's seed (`seed:`, default 0).
    pub seed: u64,
    /// The requested device (`device:`, default `auto`).
    pub device: DeviceChoice,
    /// Relative paths in stage configurations are resolved against this directory.
    pub base_dir: PathBuf,
    /// The stages, in order.
    pub stages: Vec<PlannedStage>,
    /// What the stages' plans established before any compute (sample shape, the model's
    /// layer table), for tools such as `kindling summary`.
    pub facts: Facts,
}

/// One stage of a plan.
#[derive(Debug)]
pub struct PlannedStage {
    /// The stage's registered name.
    pub kind: String,
    /// The stage's `id:`, where the pipeline gives one (two stages of one kind, or a stage
    /// inserted under another name by composition).
    pub id: Option<String>,
    /// The configured stage and its resolved configuration.
    pub prepared: PreparedStage,
}

impl Plan {
    /// The configuration as it will run: overrides applied, every default filled in, and the
    /// absolute `base_dir`, so the text is itself a pipeline that repeats the run.
    pub fn resolved_yaml(&self) -> String {
        let stages: Vec<serde_json::Value> = self
            .stages
            .iter()
            .map(|s| match &s.id {
                Some(id) => serde_json::json!({"stage": s.kind, "id": id, "with": s.prepared.resolved}),
                None => serde_json::json!({"stage": s.kind, "with": s.prepared.resolved}),
            })
            .collect();
        let base_dir = std::path::absolute(&self.base_dir).unwrap_or_else(|_| self.base_dir.clone());
        let doc = serde_json::json!({
            "name": self.name,
            "seed": self.seed,
            "device": self.device,
            "base_dir": base_dir,
            "stages": stages,
        });
        serde_yaml::to_string(&doc).unwrap_or_default()
    }
}

/// Every problem found in one pipeline file.
#[derive(Debug, thiserror::Error)]
pub struct PlanError {
    /// The file.
    pub file: PathBuf,
    /// The problems, in the order of the file.
    pub issues: Vec<ConfigIssue>,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, issue) in self.issues.iter().enumerate() {
            if n > 0 {
                writeln!(f)?;
            }
            let file = issue.origin.as_ref().map_or(self.file.as_path(), |o| o.file.as_path());
            write!(f, "{}", file.display())?;
            if let Some((line, col)) = issue.location {
                write!(f, ":{line}:{col}")?;
            }
            write!(f, ": {issue}")?;
            if let Some(origin) = &issue.origin {
                let chain: Vec<String> = origin
                    .pulled_in_by
                    .iter()
                    .map(|(file, at)| match at {
                        Some((line, col)) => format!("{}:{line}:{col}", file.display()),
                        None => file.display().to_string(),
                    })
                    .collect();
                if !chain.is_empty() {
                    write!(f, " [extended by {}]", chain.join(", by "))?;
                }
            }
        }
        Ok(())
    }
}

/// Reads `file` and validates it (see [`parse`]).
pub fn load(file: &Path, registry: &Registry, overrides: &[String]) -> Result<Plan, PlanError> {
    load_with(file, registry, &Overrides::from_set(overrides))
}

/// Reads `file` and validates it with typed `overrides` (see [`parse_with`]).
pub fn load_with(file: &Path, registry: &Registry, overrides: &Overrides) -> Result<Plan, PlanError> {
    let src =
        crate::source::read_source(file).map_err(|issue| PlanError { file: file.to_owned(), issues: vec![issue] })?;
    parse_with(file, &src, registry, overrides)
}

/// Validates the pipeline source `src` (read from `file`) with `overrides` applied, collecting
/// every problem before any compute.
pub fn parse(file: &Path, src: &str, registry: &Registry, overrides: &[String]) -> Result<Plan, PlanError> {
    parse_with(file, src, registry, &Overrides::from_set(overrides))
}

/// As [`parse`], with typed overrides besides the `path=value` ones.
pub fn parse_with(file: &Path, src: &str, registry: &Registry, overrides: &Overrides) -> Result<Plan, PlanError> {
    let fail = |issues: Vec<ConfigIssue>| PlanError { file: file.to_owned(), issues };
    let mut composed = compose(file, src).map_err(fail)?;
    let mut overridden = overrides::apply(&mut composed.doc, &overrides.set).map_err(&fail)?;
    overridden.extend(overrides::apply_typed(&mut composed.doc, overrides, registry).map_err(&fail)?);
    let mut issues = composed.interpolate();
    let mut builder = Builder { registry, issues: Vec::new() };
    let plan = builder.build(file, &composed.doc);
    for mut issue in builder.issues {
        if composed.is_unresolved(&issue.path) {
            continue;
        }
        if overridden.iter().any(|p| path_within(&issue.path, p) || path_within(p, &issue.path)) {
            issue.help.get_or_insert_with(|| "the value comes from --set".to_owned());
        } else if issue.location.is_none() {
            composed.place(&mut issue);
        }
        issues.push(issue);
    }
    for issue in &mut issues {
        if let Some(command) = generated_by(&issue.message) {
            issue.help.get_or_insert_with(|| format!("this data set is made by `{command}`; run it once"));
        }
    }
    // In the order of the files: the pipeline's own lines, then each base's.
    issues.sort_by_key(|i| (i.origin.as_ref().map(|o| o.file.clone()), i.location));
    match plan {
        Some(plan) if issues.is_empty() => Ok(plan),
        _ => Err(fail(issues)),
    }
}

/// An issue for every NaN or infinite number inside `v`, at its dotted path; such a value in
/// a mapping is taken out (its key then takes its default, so the rest of the block is still
/// checked). Returns the issues and whether a value in a list was found (which cannot be
/// taken out without shifting the list).
fn take_non_finite(v: &mut Value, at: &str) -> (Vec<ConfigIssue>, bool) {
    let issue = |n: &serde_yaml::Number, at: &str| {
        let what = if n.as_f64().is_some_and(f64::is_nan) { "NaN (not a number)" } else { "infinity" };
        let key = at.rsplit(['.', '[']).next().unwrap_or(at).trim_end_matches(']');
        ConfigIssue::new(at, format!("{what} is not a valid `{key}`")).with_help("give a finite number")
    };
    let bad = |n: &serde_yaml::Number| n.as_f64().is_some_and(|x| !x.is_finite());
    match v {
        Value::Sequence(items) => {
            let mut out = (Vec::new(), false);
            for (i, item) in items.iter_mut().enumerate() {
                let here = format!("{at}[{i}]");
                if let Value::Number(n) = item
                    && bad(n)
                {
                    out.0.push(issue(n, &here));
                    out.1 = true;
                    continue;
                }
                let (issues, fatal) = take_non_finite(item, &here);
                out.0.extend(issues);
                out.1 |= fatal;
            }
            out
        }
        Value::Mapping(map) => {
            let mut out = (Vec::new(), false);
            let mut remove = Vec::new();
            for (k, item) in map.iter_mut() {
                let key = k.as_str().map_or_else(|| format!("{k:?}"), str::to_owned);
                let here = format!("{at}.{key}");
                if let Value::Number(n) = item
                    && bad(n)
                {
                    out.0.push(issue(n, &here));
                    remove.push(k.clone());
                    continue;
                }
                let (issues, fatal) = take_non_finite(item, &here);
                out.0.extend(issues);
                out.1 |= fatal;
            }
            for k in remove {
                map.remove(&k);
            }
            out
        }
        Value::Tagged(t) => take_non_finite(&mut t.value, at),
        _ => (Vec::new(), false),
    }
}

/// Data folders of this repository that a command makes rather than ships, and the command.
const GENERATED_DATA: &[(&str, &str)] = &[
    ("data/stereo-direction/", "cargo xtask data stereo"),
    ("data/fashion-mnist-rgb/", "cargo xtask data fashion-rgb"),
];

/// The command that makes the missing file a message names, where it lies in one of
/// [`GENERATED_DATA`]'s folders and that folder does not exist (the command has not been run).
fn generated_by(message: &str) -> Option<&'static str> {
    if !message.contains("No such file or directory") && !message.contains("no such file") {
        return None;
    }
    GENERATED_DATA.iter().find_map(|(dir, command)| {
        let end = message.find(dir)? + dir.len();
        // The path starts after the last `: ` before the folder (issues read "path: error").
        let start = message[..end].rfind(": ").map_or(0, |i| i + 2);
        (!Path::new(&message[start..end]).exists()).then_some(*command)
    })
}

/// Whether `c` may appear in a pipeline's name.
fn name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// Whether dotted path `path` is `prefix` or lies inside it (`a.b[0]` is within `a.b`;
/// `a.bc` is not).
fn path_within(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

struct Builder<'r> {
    registry: &'r Registry,
    issues: Vec<ConfigIssue>,
}

impl Builder<'_> {
    fn build(&mut self, file: &Path, doc: &Value) -> Option<Plan> {
        self.unknown_keys(doc, "", TOP_KEYS);
        // The name becomes a directory under the runs folder, and appears in sweep scripts and
        // job names: one plain component of letters, digits, `-`, `_` and `.`, not starting
        // with a dot. A name taken from the file's stem has other characters replaced by `_`.
        let stem = file.file_stem().map_or_else(|| "pipeline".to_owned(), |s| s.to_string_lossy().into_owned());
        let stem: String = stem.chars().map(|c| if name_char(c) { c } else { '_' }).collect();
        let name: String = self.field(doc, "name").unwrap_or(stem);
        if name.is_empty() || name.starts_with('.') || !name.chars().all(name_char) {
            self.issues.push(ConfigIssue::new(
                "name",
                format!("`{name}` cannot name a runs directory: use letters, digits, -, _ and . (not first)"),
            ));
        }
        let seed: u64 = self.field(doc, "seed").unwrap_or(0);
        let device: DeviceChoice = self.field(doc, "device").unwrap_or_default();
        // Relative paths in stages resolve against `base_dir:` (itself relative to the file) or
        // the file's directory. Run directories record the absolute base, so their config.yaml
        // runs again from where it lies.
        let file_dir = file.parent().map(Path::to_owned).unwrap_or_default();
        let base_dir = match self.field::<PathBuf>(doc, "base_dir") {
            Some(dir) => file_dir.join(dir),
            None => file_dir,
        };

        let Some(list) = doc.get("stages").and_then(Value::as_sequence).filter(|l| !l.is_empty()) else {
            self.issues.push(ConfigIssue::new("stages", "a pipeline needs a non-empty list of stages"));
            return None;
        };
        let mut stages = Vec::new();
        let mut produced: Vec<&str> = Vec::new();
        // After an unknown stage, what is produced is unknown: wiring errors would only echo it.
        let mut wiring_known = true;
        let mut ids: Vec<String> = Vec::new();
        for (i, entry) in list.iter().enumerate() {
            let at = format!("stages[{i}]");
            self.unknown_keys(entry, &at, &["stage", "id", "with"]);
            let id = entry.get("id").map(|v| match v.as_str() {
                Some(id) if !id.is_empty() => id.to_owned(),
                _ => {
                    self.issues.push(ConfigIssue::new(format!("{at}.id"), "expected a name for the stage"));
                    String::new()
                }
            });
            if let Some(id) = &id
                && !id.is_empty()
            {
                if ids.contains(id) {
                    self.issues.push(ConfigIssue::new(format!("{at}.id"), format!("two stages have the id `{id}`")));
                }
                ids.push(id.clone());
            }
            let Some(kind) = entry.get("stage").and_then(Value::as_str) else {
                self.issues.push(
                    ConfigIssue::new(format!("{at}.stage"), "each stage needs `stage: <name>`")
                        .with_help("`kindling stages` lists them"),
                );
                continue;
            };
            let def = match self.registry.get(kind) {
                Ok(def) => def,
                Err(issue) => {
                    self.issues.push(issue.under(&format!("{at}.stage")));
                    wiring_known = false;
                    continue;
                }
            };
            for input in def.inputs {
                if wiring_known && !produced.contains(input) {
                    self.issues.push(
                        ConfigIssue::new(
                            format!("{at}.stage"),
                            format!("`{kind}` needs a `{input}`, which no earlier stage produces"),
                        )
                        .with_help(self.producers_of(input)),
                    );
                }
            }
            produced.extend(def.outputs);
            let mut with = entry.get("with").cloned().unwrap_or(Value::Null);
            // JSON has no NaN or infinity (they would arrive as null, "invalid type: null"):
            // say what the value is, where it is.
            let (non_finite, fatal) = take_non_finite(&mut with, &format!("{at}.with"));
            let taken: Vec<String> = non_finite.iter().map(|i| i.path.clone()).collect();
            self.issues.extend(non_finite);
            if fatal {
                continue;
            }
            let with = match serde_json::to_value(&with) {
                Ok(v) => v,
                Err(e) => {
                    self.issues
                        .push(ConfigIssue::new(format!("{at}.with"), format!("cannot be read as configuration: {e}")));
                    continue;
                }
            };
            match def.prepare(with) {
                Ok(_) if !taken.is_empty() => {}
                Ok(prepared) => stages.push((i, PlannedStage { kind: kind.to_owned(), id, prepared })),
                Err(found) => self.issues.extend(
                    found
                        .into_iter()
                        .map(|x| x.under(&format!("{at}.with")))
                        .filter(|x| !taken.iter().any(|t| path_within(&x.path, t) || path_within(t, &x.path))),
                ),
            }
        }
        // Plan the stages that parsed, in order, so each sees what earlier ones established.
        let mut facts = Facts::default();
        let base = if base_dir.as_os_str().is_empty() { Path::new(".") } else { &base_dir };
        for (i, s) in &stages {
            let mut issues = Issues::under(format!("stages[{i}].with"));
            s.prepared.stage.plan(&mut PlanCx { facts: &mut facts, issues: &mut issues, base_dir: base });
            self.issues.extend(issues.into_vec());
        }
        let stages = stages.into_iter().map(|(_, s)| s).collect();
        Some(Plan { file: file.to_owned(), name, seed, device, base_dir: base.to_owned(), stages, facts })
    }

    fn field<T: serde::de::DeserializeOwned>(&mut self, doc: &Value, key: &str) -> Option<T> {
        let v = doc.get(key)?;
        serde_yaml::from_value(v.clone()).map_err(|e| self.issues.push(ConfigIssue::new(key, e.to_string()))).ok()
    }

    fn unknown_keys(&mut self, v: &Value, at: &str, known: &[&str]) {
        let Some(map) = v.as_mapping() else {
            if !at.is_empty() {
                self.issues.push(ConfigIssue::new(
                    at,
                    "expected a mapping such as `stage: train` with an optional `with:` block",
                ));
            }
            return;
        };
        for key in map.keys() {
            let name = key.as_str().unwrap_or("?");
            if !known.contains(&name) {
                let prefix = if at.is_empty() { String::new() } else { format!("{at}.") };
                let mut issue = ConfigIssue::new(format!("{prefix}{name}"), format!("unknown key `{name}`"));
                issue = match kindling_core::closest(name, known.iter().copied()) {
                    Some(best) => issue.with_help(format!("did you mean `{best}`?")),
                    None => issue.with_help(format!("known keys: {}", known.join(", "))),
                };
                self.issues.push(issue);
            }
        }
    }

    fn producers_of(&self, kind: &str) -> String {
        // Stages that only pass the artifact on (train takes a model and gives it back) are no help.
        let names: Vec<&str> = self
            .registry
            .iter()
            .filter(|(_, d)| d.outputs.contains(&kind) && !d.inputs.contains(&kind))
            .map(|(_, d)| d.name)
            .collect();
        match names.as_slice() {
            [] => "no registered stage produces it".to_owned(),
            _ => format!("add one of these stages before it: {}", names.join(", ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::path_within;

    #[test]
    fn paths_nest_by_segment_not_by_text() {
        assert!(path_within("stages[1].with.lr", "stages[1].with.lr"));
        assert!(path_within("stages[1].with.optimizer.lr", "stages[1].with.optimizer"));
        assert!(path_within("stages[1].with.layers[2]", "stages[1].with.layers"));
        assert!(!path_within("stages[10].with", "stages[1]"));
        assert!(!path_within("stages[1].with.lr_decay", "stages[1].with.lr"));
    }
}
