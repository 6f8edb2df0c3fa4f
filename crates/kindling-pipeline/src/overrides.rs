//! `--set path=value` overrides, applied to the parsed document before validation.

use std::path::PathBuf;

use kindling_core::{ConfigIssue, DeviceChoice, KeyRole, Registry};
use serde_yaml::{Mapping, Value};

/// What a caller sets on a pipeline besides its file: `--set` assignments, and typed values
/// that need no text round trip. All go through the same checks as the file's own values, and
/// problems they cause say so.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `path=value` assignments (`train.epochs=3`), applied in order.
    pub set: Vec<String>,
    /// The device (`kindling run --device`), applied after them.
    pub device: Option<DeviceChoice>,
    /// Keys named by their role, each set in the first stage that declares the role (the
    /// weights of a reopened run, `kindling eval --data`'s held-out data).
    pub roles: Vec<(KeyRole, PathBuf)>,
}

impl Overrides {
    /// Only `path=value` assignments.
    pub fn from_set(set: &[String]) -> Self {
        Self { set: set.to_vec(), ..Self::default() }
    }
}

/// Top-level keys of a pipeline file.
/// `sweep:` belongs to the sweep engine: a plain run ignores it, and it cannot be overridden.
/// `vars:` may be set (`--set vars.root=/data`): interpolation runs after the overrides.
pub(crate) const TOP_KEYS: &[&str] = &["name", "seed", "device", "base_dir", "stages", "vars", "sweep"];

/// Applies each `path=value` to `doc` and returns the canonical dotted paths it set
/// (`train.optimizer.lr` -> `stages[2].with.optimizer.lr`), or the issues that stopped it.
///
/// The first segment is a top-level key (`seed=1`), an indexed stage (`stages[2].with.lr=..`),
/// or the name of a stage in the pipeline (`train.epochs=3`, meaning that stage's `with:`).
/// Values are read as YAML, so `3e-4` is a number, `[1, 2]` a list and `adam` a string.
pub(crate) fn apply(doc: &mut Value, assignments: &[String]) -> Result<Vec<String>, Vec<ConfigIssue>> {
    let mut issues = Vec::new();
    let mut paths = Vec::new();
    for a in assignments {
        match apply_one(doc, a) {
            Ok(p) => paths.push(p),
            Err(msg) => issues.push(ConfigIssue::new("", format!("--set {a}: {msg}"))),
        }
    }
    if issues.is_empty() { Ok(paths) } else { Err(issues) }
}

/// Applies the typed overrides (after the assignments) and returns the canonical dotted paths
/// they set, or the issues that stopped them.
pub(crate) fn apply_typed(
    doc: &mut Value,
    overrides: &Overrides,
    registry: &Registry,
) -> Result<Vec<String>, Vec<ConfigIssue>> {
    let mut issues = Vec::new();
    let mut paths = Vec::new();
    if let Some(device) = overrides.device {
        let value = serde_yaml::to_value(device).unwrap_or(Value::Null);
        set(doc, "device", value).map_err(|msg| vec![ConfigIssue::new("device", msg)])?;
        paths.push("device".to_owned());
    }
    for (role, value) in &overrides.roles {
        let stages = doc.get("stages").and_then(Value::as_sequence).map(Vec::as_slice).unwrap_or_default();
        let names: Vec<&str> = stages.iter().filter_map(|s| s.get("stage").and_then(Value::as_str)).collect();
        let found = names
            .iter()
            .enumerate()
            .find_map(|(i, name)| registry.get(name).ok().and_then(|d| d.key_for(*role)).map(|key| (i, key)));
        let Some((i, key)) = found else {
            let takers: Vec<&str> =
                registry.iter().filter(|(_, d)| d.key_for(*role).is_some()).map(|(_, d)| d.name).collect();
            let takers = if takers.is_empty() { "none".to_owned() } else { takers.join(", ") };
            issues.push(
                ConfigIssue::new("stages", format!("no stage of this pipeline takes {}", describe(*role)))
                    .with_help(format!("stages that do: {takers}; or use --set")),
            );
            continue;
        };
        let path = format!("stages[{i}].with.{key}");
        let text = value.to_string_lossy().into_owned();
        match set(doc, &path, Value::String(text)) {
            Ok(()) => paths.push(path),
            Err(msg) => issues.push(ConfigIssue::new(path, msg)),
        }
    }
    if issues.is_empty() { Ok(paths) } else { Err(issues) }
}

fn describe(role: KeyRole) -> &'static str {
    match role {
        KeyRole::HeldOutFolder => "held-out data as a folder of class folders",
        KeyRole::HeldOutManifest => "held-out data as a path,label CSV",
        KeyRole::Weights => "model weights",
    }
}

fn apply_one(doc: &mut Value, assignment: &str) -> Result<String, String> {
    let (path, raw) = assignment.split_once('=').ok_or("expected path=value")?;
    let value: Value =
        crate::source::parse_yaml(raw).map_err(|e| format!("the value is not valid YAML ({})", e.message))?;
    let (head, rest) = path.split_once('.').unwrap_or((path, ""));
    if head == "sweep" {
        return Err("the sweep block describes many runs; it cannot be set for one".to_owned());
    }
    if head == "extends" {
        return Err("`extends:` is followed before --set applies; set the values themselves".to_owned());
    }
    let canonical = if TOP_KEYS.contains(&head) || head.starts_with("stages[") {
        path.to_owned()
    } else {
        let stages = doc.get("stages").and_then(Value::as_sequence).map(Vec::as_slice).unwrap_or_default();
        // A stage is named by its `id:`, else its stage name.
        let names: Vec<&str> = stages
            .iter()
            .filter_map(|s| s.get("id").and_then(Value::as_str).or_else(|| s.get("stage").and_then(Value::as_str)))
            .collect();
        let hits: Vec<usize> = (0..names.len()).filter(|&i| names[i] == head).collect();
        match hits.as_slice() {
            [i] if rest.is_empty() => format!("stages[{i}].with"),
            [i] => format!("stages[{i}].with.{rest}"),
            [] => {
                let known: Vec<&str> = TOP_KEYS.iter().copied().chain(names.iter().copied()).collect();
                return Err(format!(
                    "`{head}` is neither a top-level key nor a stage of this pipeline (known: {})",
                    known.join(", ")
                ));
            }
            many => {
                return Err(format!(
                    "{} stages are named `{head}`: write stages[{}].with... instead",
                    many.len(),
                    many[0]
                ));
            }
        }
    };
    set(doc, &canonical, value)?;
    Ok(canonical)
}

/// Sets `path` in `doc`, creating missing mappings on the way; list indices must exist.
fn set(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let mut cur = doc;
    let parts: Vec<&str> = path.split('.').collect();
    for (n, part) in parts.iter().enumerate() {
        let (key, indices) = part.split_once('[').map_or((*part, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            if cur.is_null() {
                *cur = Value::Mapping(Mapping::new());
            }
            let map =
                cur.as_mapping_mut().ok_or_else(|| format!("`{key}` is set inside a value that is not a mapping"))?;
            cur = map.entry(Value::String(key.to_owned())).or_insert(Value::Null);
        }
        for idx in indices.split('[').filter(|s| !s.is_empty()) {
            let i: usize = idx.trim_end_matches(']').parse().map_err(|_| format!("bad index `[{idx}`"))?;
            let seq = cur.as_sequence_mut().ok_or_else(|| format!("`{part}` indexes a value that is not a list"))?;
            let len = seq.len();
            cur = seq.get_mut(i).ok_or_else(|| format!("index {i} is past the end of a list of {len}"))?;
        }
        if n + 1 == parts.len() {
            *cur = value;
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        serde_yaml::from_str("seed: 1\nstages:\n  - stage: data\n  - stage: train\n    with: {epochs: 2}\n").unwrap()
    }

    #[test]
    fn stage_names_top_keys_and_indices_resolve() {
        let mut d = doc();
        let set = ["train.optimizer.lr=3e-4", "seed=7", "stages[0].with.limit=10", "train.epochs=5"].map(String::from);
        let paths = apply(&mut d, &set).unwrap();
        assert_eq!(paths, ["stages[1].with.optimizer.lr", "seed", "stages[0].with.limit", "stages[1].with.epochs"]);
        assert_eq!(d["stages"][1]["with"]["optimizer"]["lr"].as_f64(), Some(3e-4));
        assert_eq!(d["stages"][1]["with"]["epochs"].as_u64(), Some(5));
        assert_eq!(d["stages"][0]["with"]["limit"].as_u64(), Some(10));
        assert_eq!(d["seed"].as_u64(), Some(7));
    }

    #[derive(Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields, default)]
    struct DataConfig {
        test_root: Option<String>,
    }

    impl kindling_core::StageConfig for DataConfig {
        const KEY_DOCS: &'static [(&'static str, &'static str)] = &[("test_root", "held-out data")];
    }

    struct Nothing;

    impl kindling_core::Stage for Nothing {
        fn run(&mut self, _: &mut kindling_core::StageIo<'_>) -> Result<(), kindling_core::StageError> {
            Ok(())
        }
    }

    /// A registry whose `data` stage takes held-out data as `test_root`.
    fn registry() -> Registry {
        let data = kindling_core::StageDef::new::<DataConfig>("data", "test data", &[], &[], |_| Box::new(Nothing))
            .with_roles(&[(KeyRole::HeldOutFolder, "test_root")]);
        Registry::new(vec![kindling_core::Plugin { name: "test", stages: vec![data] }]).unwrap()
    }

    #[test]
    fn typed_overrides_set_the_device_and_the_key_that_plays_a_role() {
        let mut d = doc();
        let o = Overrides {
            device: Some(DeviceChoice::Cpu),
            roles: vec![(KeyRole::HeldOutFolder, "/data/test".into())],
            ..Overrides::default()
        };
        let paths = apply_typed(&mut d, &o, &registry()).unwrap();
        assert_eq!(paths, ["device", "stages[0].with.test_root"]);
        assert_eq!(d["device"].as_str(), Some("cpu"));
        assert_eq!(d["stages"][0]["with"]["test_root"].as_str(), Some("/data/test"));

        let o = Overrides { roles: vec![(KeyRole::Weights, "w".into())], ..Overrides::default() };
        let got: Vec<String> =
            apply_typed(&mut d, &o, &registry()).unwrap_err().iter().map(ToString::to_string).collect();
        assert_eq!(got, ["stages: no stage of this pipeline takes model weights (stages that do: none; or use --set)"]);
    }

    #[test]
    fn bad_overrides_are_all_reported() {
        let mut d = doc();
        let set = ["trian.lr=1", "stages[5].with.x=1", "seed"].map(String::from);
        let got: Vec<String> = apply(&mut d, &set).unwrap_err().iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                "--set trian.lr=1: `trian` is neither a top-level key nor a stage of this pipeline (known: name, seed, device, base_dir, stages, vars, sweep, data, train)",
                "--set stages[5].with.x=1: index 5 is past the end of a list of 2",
                "--set seed: expected path=value",
            ]
        );
    }
}
