//! Composition through the public API: files written to a scratch folder, composed, and the
//! merged document compared with what it should say.

use std::path::{Path, PathBuf};

use serde_yaml::Value;

fn scratch(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kindling-compose-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for (file, text) in files {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

fn composed(path: &Path) -> Value {
    let src = std::fs::read_to_string(path).unwrap();
    let mut c = kindling_pipeline::compose(path, &src).unwrap_or_else(|e| panic!("{e:?}"));
    let issues = c.interpolate();
    assert!(issues.is_empty(), "{issues:?}");
    c.doc
}

fn yaml(s: &str) -> Value {
    serde_yaml::from_str(s).unwrap()
}

const BASE: &str = "\
name: base
seed: 3
vars: {root: data, n: 4}
stages:
  - stage: load
    with: {path: '${root}/x.csv', limit: '${n}', opts: {a: 1, b: 2}}
  - stage: fit
    with: {epochs: 2, optimizer: {name: adam, lr: 0.001}}
";

#[test]
fn mappings_merge_lists_replace_and_replace_tags_replace_mappings() {
    let dir = scratch(
        "merge",
        &[
            ("base.yaml", BASE),
            (
                "child.yaml",
                "extends: base.yaml\nstages:\n  load:\n    with: {opts: !replace {c: 3}}\n  fit:\n    with: {optimizer: {lr: 0.01}}\n",
            ),
        ],
    );
    let doc = composed(&dir.join("child.yaml"));
    // The name is not inherited; the seed is.
    assert_eq!(doc.get("name"), None);
    assert_eq!(doc["seed"], yaml("3"));
    assert_eq!(doc["stages"][0]["with"]["opts"], yaml("{c: 3}"));
    assert_eq!(doc["stages"][1]["with"]["optimizer"], yaml("{name: adam, lr: 0.01}"));
    // A whole-value reference keeps its type; one inside a string is text.
    assert_eq!(doc["stages"][0]["with"]["limit"], yaml("4"));
    assert_eq!(doc["stages"][0]["with"]["path"], yaml("data/x.csv"));
    assert_eq!(doc.get("vars"), None);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn stages_are_inserted_removed_and_replaced_by_id() {
    let child = "\
extends: base.yaml
stages:
  check:
    stage: load
    before: fit
    with: {path: other.csv}
  report: {with: {format: html}}
  load: {remove: true}
";
    let dir = scratch("ids", &[("base.yaml", BASE), ("child.yaml", child)]);
    let doc = composed(&dir.join("child.yaml"));
    let stages = doc["stages"].as_sequence().unwrap();
    let kinds: Vec<&str> = stages.iter().map(|s| s["stage"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["load", "fit", "report"]);
    // The inserted `load` keeps its id; the base's `load` is gone.
    assert_eq!(stages[0]["id"], yaml("check"));
    assert_eq!(stages[0]["with"]["path"], yaml("other.csv"));
    // A stage listed whole replaces the base's list.
    let dir2 = scratch("list", &[("base.yaml", BASE), ("child.yaml", "extends: base.yaml\nstages: [{stage: only}]\n")]);
    assert_eq!(composed(&dir2.join("child.yaml"))["stages"], yaml("[{stage: only}]"));
    for d in [dir, dir2] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn fragments_add_up_and_variables_are_set_by_the_file_that_is_run() {
    let dir = scratch(
        "fragments",
        &[
            ("parts/data.yaml", "vars: {root: ../data}\nstages:\n  load:\n    with: {path: '${root}/x.csv'}\n"),
            ("parts/fit.yaml", "stages:\n  fit:\n    with: {epochs: 1}\n"),
            ("run/a.yaml", "extends: [../parts/data.yaml, ../parts/fit.yaml]\nvars: {root: ../../data}\n"),
            ("run/b.yaml", "extends: a.yaml\nvars: {root: '$${literal}'}\nbase_dir: ..\n"),
        ],
    );
    let doc = composed(&dir.join("run/a.yaml"));
    assert_eq!(doc["stages"], yaml("[{stage: load, with: {path: ../../data/x.csv}}, {stage: fit, with: {epochs: 1}}]"));
    let doc = composed(&dir.join("run/b.yaml"));
    assert_eq!(doc["stages"][0]["with"]["path"], yaml("'${literal}/x.csv'"));
    // base_dir stays relative to the file that wrote it (the top file's is resolved later).
    assert_eq!(doc["base_dir"], yaml(".."));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_bases_base_dir_is_relative_to_the_base() {
    let dir = scratch(
        "base-dir",
        &[("lib/base.yaml", "base_dir: data\nstages: [{stage: load}]\n"), ("child.yaml", "extends: lib/base.yaml\n")],
    );
    let doc = composed(&dir.join("child.yaml"));
    let base_dir = PathBuf::from(doc["base_dir"].as_str().unwrap());
    assert!(base_dir.is_absolute() && base_dir.ends_with("lib/data"), "{base_dir:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn errors_in_a_base_name_the_base_line_and_the_extends_that_pulled_it_in() {
    let dir = scratch(
        "placed",
        &[
            ("base.yaml", "# base\nstages:\n  - stage: fit\n    with:\n      epochs: 2\n"),
            ("child.yaml", "# child\nextends: base.yaml\n"),
        ],
    );
    let path = dir.join("child.yaml");
    let src = std::fs::read_to_string(&path).unwrap();
    let c = kindling_pipeline::compose(&path, &src).unwrap();
    let mut issue = kindling_core::ConfigIssue::new("stages[0].with.epochs", "bad");
    c.place(&mut issue);
    assert_eq!(issue.location, Some((5, 7)));
    let origin = *issue.origin.unwrap();
    assert_eq!(origin.file, dir.join("base.yaml"));
    assert_eq!(origin.pulled_in_by, [(path.clone(), Some((2, 1)))]);
    std::fs::remove_dir_all(&dir).unwrap();
}
