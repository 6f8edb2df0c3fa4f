//! `kindling schema` judged by a JSON Schema implementation Kindling did not write: Python's
//! `jsonschema` (Draft202012Validator) must accept every shipped pipeline and every
//! configuration they run with, and agree with `kindling validate` on the golden broken
//! pipelines (`validate/*.yaml`) for the problems a schema can express: unknown keys and
//! values, wrong types, and values out of a single key's range. Where validation reports
//! something else (wiring, files, shapes, rules across keys), the schema must accept the file.
//!
//! Without python3 and its jsonschema package the test says so and passes, unless
//! `KINDLING_REQUIRE_JSONSCHEMA=1` (set by CI, which installs `python3-jsonschema`).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

/// Golden cases whose problems lie beyond what a schema of single files can say: the schema
/// must accept these files, and validation must report none of the problems
/// [`schema_expressible`] claims.
const BEYOND_SCHEMA: &[(&str, &str)] = &[
    ("class-weights-count", "the number of weights must match the classes the data set has"),
    ("classes", "the last layer's outputs must match the classes the data set has"),
    ("dropout-ignored", "`dropout` needs a preset with dropout layers: a rule across two keys"),
    ("files", "the files must exist and their headers agree; the schema sees only their names"),
    ("shapes", "`in_features` must match the shape inferred through the layers before it"),
    ("wiring", "each stage needs artifacts an earlier stage produces: the order of stages"),
];

/// Golden cases the schema cannot be given at all.
const NOT_READ: &[(&str, &str)] = &[
    ("nesting", "deeper than Kindling reads (MAX_DEPTH); the limit is the reader's, not a schema's"),
    ("not-a-number", "NaN and infinity have no JSON form, so no JSON Schema validator sees them"),
    ("syntax", "not YAML, so there is no document to validate"),
];

/// Reads each document and reports every error, with the dotted paths it points at: its own,
/// those of the errors under a `oneOf`/`anyOf` it explains, the keys an `additionalProperties`
/// or `propertyNames` error refuses and the keys a `required` error misses.
const VALIDATOR: &str = r#"
import json, sys
try:
    from jsonschema import Draft202012Validator
except ImportError:
    print(json.dumps({"missing": "the Python package jsonschema 4 or later (python3-jsonschema)"}))
    sys.exit(0)

data = json.load(open(sys.argv[1]))
Draft202012Validator.check_schema(data["schema"])
validator = Draft202012Validator(data["schema"])

def dotted(path):
    out = ""
    for p in path:
        out += "[%d]" % p if isinstance(p, int) else ("." if out else "") + p
    return out

def points(error, out):
    base = list(error.absolute_path)
    out.add(dotted(base))
    instance = error.instance
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        known = error.schema.get("properties", {})
        out.update(dotted(base + [k]) for k in instance if k not in known)
    elif error.validator == "required" and isinstance(instance, dict):
        out.update(dotted(base + [k]) for k in error.validator_value if k not in instance)
    elif "propertyNames" in error.absolute_schema_path and isinstance(instance, str):
        out.add(dotted(base + [instance]))
    for sub in error.context:
        points(sub, out)

results = {}
for name, doc in data["documents"].items():
    errors = []
    for error in validator.iter_errors(doc):
        found = set()
        points(error, found)
        errors.append({"path": dotted(error.absolute_path), "points": sorted(found), "message": error.message})
    results[name] = errors
print(json.dumps({"results": results}))
"#;

/// One problem `kindling validate` reports in a golden file.
#[derive(Debug)]
struct Expected {
    path: String,
    message: String,
}

/// One error of the independent validator.
#[derive(Debug)]
struct Found {
    path: String,
    points: Vec<String>,
    message: String,
}

/// Whether a schema can express the problem `message` describes: an unknown key or value, a
/// wrong type, a missing key, a name that breaks a pattern, or a single value out of its
/// range.
fn schema_expressible(message: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "unknown key",
        "unknown value",
        "unknown stage",
        "unknown variant",
        "unknown preset",
        "must be at least",
        "must be in [",
        "must be between",
        "must be positive",
        "must be a positive number",
        "every weight must be positive",
        "is required",
    ];
    PREFIXES.iter().any(|p| message.starts_with(p))
        || (message.starts_with("expected ") && message.contains(", found "))
        || message.contains("cannot name a runs directory")
}

/// Whether `a` is `b` or lies inside it (`x.y[0]` is within `x.y`; `x.yz` is not).
fn within(a: &str, b: &str) -> bool {
    b.is_empty() || a.strip_prefix(b).is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

/// The problems of an `.expected` file: `DIR/<file>:<line>:<col>: <path>: <message>`.
fn expected_problems(text: &str) -> Vec<Expected> {
    text.lines()
        .filter(|l| !l.starts_with("ok"))
        .map(|line| {
            let rest = line.strip_prefix("DIR/").and_then(|l| l.split_once(": ")).map_or(line, |(_, r)| r);
            let (path, message) = rest.split_once(": ").unwrap_or(("", rest));
            Expected { path: path.to_owned(), message: message.to_owned() }
        })
        .collect()
}

/// `value` with YAML tags (`!replace`) taken off, as a YAML language server that knows them
/// reads it.
fn untagged(value: serde_yaml::Value) -> serde_yaml::Value {
    use serde_yaml::Value as Y;
    match value {
        Y::Tagged(t) => untagged(t.value),
        Y::Mapping(m) => Y::Mapping(m.into_iter().map(|(k, v)| (k, untagged(v))).collect()),
        Y::Sequence(s) => Y::Sequence(s.into_iter().map(untagged).collect()),
        other => other,
    }
}

fn json_of(path: &Path) -> Value {
    let src = std::fs::read_to_string(path).unwrap();
    let yaml = kindling_pipeline::parse_yaml(&src).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::to_value(untagged(yaml)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(yaml_files(&path));
        } else if path.extension().is_some_and(|e| e == "yaml") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Runs [`VALIDATOR`] on `documents` (name -> JSON); `None` when python3 or jsonschema is
/// missing and the check may be skipped.
fn validate(schema: &Value, documents: &serde_json::Map<String, Value>) -> Option<Vec<(String, Vec<Found>)>> {
    let scratch = tests::scratch("schema");
    let input = scratch.join("input.json");
    std::fs::write(&input, serde_json::to_vec(&json!({"schema": schema, "documents": documents})).unwrap()).unwrap();
    let required = std::env::var_os("KINDLING_REQUIRE_JSONSCHEMA").is_some_and(|v| v == "1");
    // `KINDLING_PYTHON` names another interpreter (CI's virtual environment where the
    // system's jsonschema is older than 4).
    let python = std::env::var("KINDLING_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let run = Command::new(python).arg("-c").arg(VALIDATOR).arg(&input).output();
    std::fs::remove_dir_all(&scratch).unwrap();
    let out = match run {
        Ok(out) => out,
        Err(e) => {
            assert!(!required, "KINDLING_REQUIRE_JSONSCHEMA=1 but python3 does not run: {e}");
            eprintln!("skipped: python3 does not run ({e}); the schema was not checked by an independent validator");
            return None;
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the validator failed:\n{}{}", stdout, String::from_utf8_lossy(&out.stderr));
    let reply: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    if let Some(missing) = reply["missing"].as_str() {
        assert!(!required, "KINDLING_REQUIRE_JSONSCHEMA=1 but python3 lacks {missing}");
        eprintln!("skipped: python3 lacks {missing}; the schema was not checked by an independent validator");
        return None;
    }
    let results = reply["results"].as_object().expect("results by document");
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    Some(
        results
            .iter()
            .map(|(name, errors)| {
                let found = errors
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| Found {
                        path: text(&e["path"]),
                        points: e["points"].as_array().unwrap().iter().map(text).collect(),
                        message: text(&e["message"]),
                    })
                    .collect();
                (name.clone(), found)
            })
            .collect(),
    )
}

#[test]
fn an_independent_validator_agrees_with_kindling_validate() {
    let repo = tests::repo_root();
    let schema = kindling_pipeline::schema(&tests::registry());
    let mut documents = serde_json::Map::new();
    // Must validate: every pipeline file as written (patches and fragments too) and the
    // configuration each runs with (every default filled in).
    let mut must_pass = Vec::new();
    for file in yaml_files(&repo.join("pipelines")).into_iter().chain(yaml_files(&repo.join("tests/composed"))) {
        let name = file.strip_prefix(&repo).unwrap().display().to_string();
        documents.insert(name.clone(), json_of(&file));
        must_pass.push(name);
    }
    assert!(must_pass.len() >= 40, "pipelines went missing: {must_pass:?}");
    // Every form a transform list's entry may take, as an image data set's transforms.
    let forms = "crates/kindling-augment/tests/test_data/every_form.yaml";
    let with = json!({"root": "images", "transforms": json_of(&repo.join(forms))});
    documents.insert(forms.to_owned(), json!({"stages": [{"stage": "image_dataset", "with": with}]}));
    must_pass.push(forms.to_owned());

    // The golden cases a schema sees as written: no composition and no overrides.
    let golden = repo.join("tests/validate");
    let mut cases = Vec::new();
    for file in yaml_files(&golden).into_iter().filter(|f| f.parent() == Some(golden.as_path())) {
        let case = file.file_stem().unwrap().to_string_lossy().into_owned();
        let src = std::fs::read_to_string(&file).unwrap();
        let composed =
            src.lines().any(|l| l.starts_with("extends:") || l.starts_with("vars:") || l.starts_with("# set:"));
        if composed || NOT_READ.iter().any(|(c, _)| *c == case) {
            continue;
        }
        let expected = expected_problems(&std::fs::read_to_string(file.with_extension("expected")).unwrap());
        documents.insert(format!("tests/validate/{case}.yaml"), json_of(&file));
        cases.push((case, expected));
    }
    assert!(cases.len() >= 15, "golden cases went missing: {cases:?}");
    for (listed, _) in BEYOND_SCHEMA.iter().chain(NOT_READ) {
        assert!(golden.join(format!("{listed}.yaml")).exists(), "{listed} is listed but has no golden file");
    }

    let Some(results) = validate(&schema, &documents) else { return };
    let found = |name: &str| results.iter().find(|(n, _)| n == name).map(|(_, f)| f.as_slice()).unwrap();
    let show = |errors: &[Found]| errors.iter().map(|e| format!("  {}: {}", e.path, e.message)).collect::<Vec<_>>();
    let mut failures = Vec::new();
    for name in &must_pass {
        let errors = found(name);
        if !errors.is_empty() {
            failures.push(format!("{name}: the schema refuses a pipeline Kindling runs:\n{}", show(errors).join("\n")));
        }
    }
    for (case, expected) in &cases {
        let name = format!("tests/validate/{case}.yaml");
        let errors = found(&name);
        let beyond = BEYOND_SCHEMA.iter().find(|(c, _)| c == case);
        // Each problem a schema can express is found at its path (or inside it: a list's item).
        for e in expected.iter().filter(|e| schema_expressible(&e.message)) {
            if beyond.is_some() {
                failures.push(format!("{name}: `{}: {}` is a schema's to find; list it no longer", e.path, e.message));
            } else if !errors.iter().any(|f| f.points.iter().any(|p| within(p, &e.path))) {
                failures.push(format!(
                    "{name}: the schema misses `{}: {}`; the validator said:\n{}",
                    e.path,
                    e.message,
                    show(errors).join("\n")
                ));
            }
        }
        // And the validator finds nothing where validation finds nothing: each error points at
        // (or into, or around) a problem validation reports.
        for f in errors {
            let explained = |e: &Expected| {
                f.points.iter().filter(|p| !p.is_empty()).any(|p| within(p, &e.path) || within(&e.path, p))
            };
            if !expected.iter().any(explained) {
                failures
                    .push(format!("{name}: the schema refuses `{}` ({}), which validation accepts", f.path, f.message));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_expected_files_parse_into_paths_and_messages() {
    let got = expected_problems(
        "DIR/typos.yaml:2:1: sede: unknown key `sede` (did you mean `seed`?)\n\
         DIR/x.yaml:8:7: stages[0].with.valid_fraction: must be in [0, 1), got 1.5\n",
    );
    assert_eq!(got[0].path, "sede");
    assert!(schema_expressible(&got[0].message));
    assert_eq!(got[1].path, "stages[0].with.valid_fraction");
    assert_eq!(got[1].message, "must be in [0, 1), got 1.5");
    assert!(!schema_expressible("must be increasing"));
    assert!(!schema_expressible("`train` needs a `dataset`, which no earlier stage produces"));
    assert!(within("a.b[0]", "a.b") && within("a", "") && !within("a.bc", "a.b"));
}
