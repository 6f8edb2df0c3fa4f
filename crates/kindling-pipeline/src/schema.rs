//! The JSON Schema of the pipeline format (`kindling schema`), for editors and other tools.
//!
//! It is generated, never written by hand: the top-level keys are [`TOP_KEYS`] and `extends`,
//! a stage patch's keys are [`PATCH_KEYS`], and each registered stage's `with:` block is
//! [`StageDef::schema`], derived from the same configuration type validation deserialises. A
//! binary with more plugins prints a schema with more stages.
//!
//! What a schema can say, it says: unknown keys, types, enumerated values (stage names,
//! optimizers, presets, ...) and the ranges a configuration's `check` enforces on single
//! values. What it cannot say is left to `kindling validate`: the wiring between stages, files
//! on disk, shapes, rules across several keys, what `${name}` stands for, and what a stage
//! patch (`stages:` written as a mapping) merges into.

use kindling_core::{DeviceChoice, Registry};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value, json};

use crate::compose::PATCH_KEYS;
use crate::overrides::TOP_KEYS;

/// The JSON Schema (draft 2020-12) of a pipeline file whose stages are those of `registry`.
pub fn schema(registry: &Registry) -> Value {
    let mut generator = SchemaSettings::draft2020_12().into_generator();
    let mut stage_defs = Vec::new();
    let (mut names, mut summaries, mut checks, mut patch_checks, mut patch_by_id) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Map::new());
    for (_, def) in registry.iter() {
        let reference = format!("#/$defs/{}", with_def(def.name));
        let mut with = def.schema(&mut generator).to_value();
        if let Value::Object(map) = &mut with {
            map.insert("title".to_owned(), format!("`with:` of `{}`", def.name).into());
        }
        // A stage with a required key cannot leave out its `with:`.
        let required = with.get("required").and_then(Value::as_array).is_some_and(|r| !r.is_empty());
        stage_defs.push((with_def(def.name), with));
        names.push(Value::from(def.name));
        summaries.push(Value::from(def.summary));
        // The `with:` schema of the stage an entry names.
        let mut then = json!({"properties": {"with": {"$ref": reference}}});
        if required {
            then["required"] = json!(["with"]);
        }
        checks.push(json!({
            "if": {"properties": {"stage": {"const": def.name}}, "required": ["stage"]},
            "then": then,
        }));
        // A patch is partial (it merges into the base's stage), so of its `with:` only the
        // keys are checked: those of the stage it names, or of the stage its id is the name of.
        let keys: Vec<&str> = def.keys().iter().map(|k| k.name).collect();
        let patch_keys = json!({"properties": {"with": {"propertyNames": {"enum": keys}}}});
        patch_checks.push(json!({
            "if": {"properties": {"stage": {"const": def.name}}, "required": ["stage"]},
            "then": patch_keys,
        }));
        patch_by_id.insert(
            def.name.to_owned(),
            json!({"allOf": [
                {"$ref": "#/$defs/stage_patch"},
                {"if": {"not": {"required": ["stage"]}}, "then": patch_keys},
            ]}),
        );
    }
    let stage_name = json!({
        "description": "the kind of stage (`kindling stages` lists them)",
        "type": "string",
        "enum": names,
        "enumDescriptions": summaries,
    });
    let entry = json!({
        "description": "a stage: its kind, an optional id (to tell two stages of a kind apart, and to patch it \
                        by), and its configuration",
        "type": "object",
        "properties": {
            "stage": stage_name,
            "id": {"description": "the stage's id (default: its stage name)", "type": "string", "minLength": 1},
            "with": {"description": "the stage's configuration; absent keys take their defaults"},
        },
        "required": ["stage"],
        "additionalProperties": false,
        "allOf": checks,
    });
    let patch = patch_schema(stage_name, patch_checks);
    let mut top = Map::new();
    for key in TOP_KEYS.iter().copied().chain(["extends"]) {
        top.insert(key.to_owned(), top_key(key, &mut generator));
    }
    let mut defs: Vec<(String, Value)> = generator.take_definitions(true).into_iter().collect();
    defs.extend(stage_defs);
    defs.push(("stage_entry".to_owned(), entry));
    defs.push(("stage_patch".to_owned(), patch));
    defs.push((
        "stage_patches".to_owned(),
        json!({
            "type": "object",
            "properties": patch_by_id,
            "additionalProperties": {"$ref": "#/$defs/stage_patch"},
        }),
    ));
    defs.sort_by(|a, b| a.0.cmp(&b.0));
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Kindling pipeline",
        "description": "A Kindling pipeline file: stages that load data, build a model and train it. Generated \
                        by `kindling schema`; `kindling validate` checks everything this schema cannot (wiring, \
                        files, shapes, rules across keys).",
        "type": "object",
        "properties": top,
        "additionalProperties": false,
        "$defs": defs.into_iter().collect::<Map<String, Value>>(),
    })
}

/// The name under `$defs` of stage `name`'s `with:` schema (not a Rust type's name, which the
/// generator uses for the others).
fn with_def(name: &str) -> String {
    format!("{name}.with")
}

/// A stage patch: an entry of `stages:` written as a mapping of ids to patches.
fn patch_schema(stage_name: Value, checks: Vec<Value>) -> Value {
    let mut properties = Map::new();
    for &key in PATCH_KEYS {
        let schema = match key {
            "stage" => stage_name.clone(),
            "with" => json!({
                "description": "keys merged into the base stage's configuration",
                "type": ["object", "null"],
            }),
            "before" => json!({"description": "insert the new stage before the stage with this id", "type": "string"}),
            "after" => json!({"description": "insert the new stage after the stage with this id", "type": "string"}),
            "remove" => json!({"description": "true: drop the base's stage with this id", "type": "boolean"}),
            other => unreachable!("stage patch key `{other}` has no schema"),
        };
        properties.insert(key.to_owned(), schema);
    }
    json!({
        "description": "a patch of the base's stage with this id (merged key by key), or a new stage inserted \
                        (`stage:` its kind; at the end, or `before:`/`after:` an id)",
        "type": "object",
        "properties": properties,
        "additionalProperties": false,
        "allOf": checks,
    })
}

/// The schema of top-level key `key`.
fn top_key(key: &str, generator: &mut SchemaGenerator) -> Value {
    match key {
        "name" => json!({
            "description": "the pipeline's name, which names its runs directory (default: the file name): \
                            letters, digits, -, _ and ., not starting with a dot",
            "type": "string",
            "pattern": r"^[\w-][\w.-]*$",
        }),
        "seed" => json!({
            "description": "the run's seed; every random stream is derived from it (default 0)",
            "type": "integer",
            "minimum": 0,
        }),
        "device" => {
            let mut device = DeviceChoice::json_schema(generator).to_value();
            if let Value::Object(map) = &mut device {
                map.insert("description".to_owned(), "auto (default), cpu or wgpu; --device overrides it".into());
            }
            device
        }
        "base_dir" => json!({
            "description": "the folder relative paths in stages resolve against, itself relative to this file \
                            (default: this file's folder)",
            "type": "string",
        }),
        "stages" => json!({
            "description": "the stages, in order; or, in a pipeline that extends another, a mapping of stage ids \
                            to patches",
            "if": {"type": "array"},
            "then": {"items": {"$ref": "#/$defs/stage_entry"}, "minItems": 1},
            "else": {"$ref": "#/$defs/stage_patches"},
        }),
        "vars" => json!({
            "description": "values that `${name}` brings anywhere in the pipeline (a whole value, or part of a \
                            string)",
            "type": "object",
        }),
        "sweep" => json!({
            "description": "what `kindling sweep` varies: grid, random, trials, seeds, metric, mode, prune, seed \
                            (a plain run ignores it)",
            "type": "object",
        }),
        "extends" => json!({
            "description": "pipeline files this one builds on, relative to it; later ones and this file win",
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "string"}, "minItems": 1},
            ],
        }),
        other => unreachable!("top-level key `{other}` has no schema"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_top_level_and_patch_key_has_a_schema() {
        // No stage: the keys of the format itself.
        let schema = schema(&Registry::default());
        let top: Vec<&str> = schema["properties"].as_object().unwrap().keys().map(String::as_str).collect();
        let expected: Vec<&str> = TOP_KEYS.iter().copied().chain(["extends"]).collect();
        assert_eq!(top, expected);
        let patch: Vec<&str> =
            schema["$defs"]["stage_patch"]["properties"].as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(patch, PATCH_KEYS);
        assert_eq!(schema["$defs"]["stage_entry"]["required"], json!(["stage"]));
    }
}
