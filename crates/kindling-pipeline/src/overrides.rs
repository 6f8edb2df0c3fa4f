//! `--set path=value` overrides, applied to the parsed document before validation.

use kindling_core::ConfigIssue;
use serde_yaml::{Mapping, Value};

/// Top-level keys of a pipeline file.
/// `sweep:` belongs to the sweep engine: a plain run ignores it, and it cannot be overridden.
pub(crate) const TOP_KEYS: &[&str] = &["name", "seed", "device", "base_dir", "stages", "sweep"];

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

fn apply_one(doc: &mut Value, assignment: &str) -> Result<String, String> {
    let (path, raw) = assignment.split_once('=').ok_or("expected path=value")?;
    let value: Value =
        crate::source::parse_yaml(raw).map_err(|e| format!("the value is not valid YAML ({})", e.message))?;
    let (head, rest) = path.split_once('.').unwrap_or((path, ""));
    if head == "sweep" {
        return Err("the sweep block describes many runs; it cannot be set for one".to_owned());
    }
    let canonical = if TOP_KEYS.contains(&head) || head.starts_with("stages[") {
        path.to_owned()
    } else {
        let stages = doc.get("stages").and_then(Value::as_sequence).map(Vec::as_slice).unwrap_or_default();
        let names: Vec<&str> = stages.iter().filter_map(|s| s.get("stage").and_then(Value::as_str)).collect();
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

    #[test]
    fn bad_overrides_are_all_reported() {
        let mut d = doc();
        let set = ["trian.lr=1", "stages[5].with.x=1", "seed"].map(String::from);
        let got: Vec<String> = apply(&mut d, &set).unwrap_err().iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                "--set trian.lr=1: `trian` is neither a top-level key nor a stage of this pipeline (known: name, seed, device, base_dir, stages, sweep, data, train)",
                "--set stages[5].with.x=1: index 5 is past the end of a list of 2",
                "--set seed: expected path=value",
            ]
        );
    }
}
