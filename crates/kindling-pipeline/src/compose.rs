//! Composition: a pipeline built on others with `extends:`, stages patched by id, and `vars:`
//! interpolated as `${name}`.
//!
//! - `extends: base.yaml` (or a list, merged in order) names files relative to the one that
//!   says it. Mappings merge key by key, the extending file winning; lists and other values
//!   are replaced whole; a value tagged `!replace` replaces even a mapping.
//! - `stages:` written as a list replaces the base's stages; written as a mapping it patches
//!   them by id (a stage's `id:`, else its stage name): `train: {with: {epochs: 3}}` merges
//!   into the base's `train`, `remove: true` drops a stage, and an id the base lacks inserts a
//!   stage (`before:` or `after:` an id, else at the end).
//! - `vars:` (merged like any mapping) holds values that `${name}` brings anywhere: a whole
//!   value (any type) or part of a string (`${root}/train`). `$${` writes a literal `${`.
//!   Interpolation runs after `--set`, so `--set vars.root=...` changes every use.
//! - `name:` is never inherited (a run's directory is named after the file that is run), and a
//!   base's relative `base_dir:` is taken relative to the base file.
//!
//! Every value remembers the file and the dotted path it was written at, so a problem in a
//! value that came from a base is reported at the base's line, with the `extends:` lines that
//! pulled it in.
//!
//! (Over 450 lines: extends, merging and stage patches are one algorithm over one annotated tree,
//! and its issues need the sources it read; interpolation is in `interpolate.rs`.)

use std::path::{Path, PathBuf};

use kindling_core::{ConfigIssue, Origin};
use serde_yaml::{Mapping, Value};

use crate::locate::locate;
use crate::source::{parse_yaml, read_source};

/// The longest chain of `extends:` followed; far beyond any real pipeline.
pub(crate) const MAX_CHAIN: usize = 32;

/// Keys a stage patch (an entry of `stages:` written as a mapping) may hold.
pub(crate) const PATCH_KEYS: &[&str] = &["stage", "with", "before", "after", "remove"];

/// A pipeline document with its `extends:` merged in, before `--set` and interpolation.
#[derive(Debug)]
pub struct Composed {
    /// The merged document; `vars:` is still in it until [`Composed::interpolate`].
    pub doc: Value,
    sources: Vec<Source>,
    /// Composed dotted path -> (source index, dotted path in that source).
    origins: Vec<(String, usize, String)>,
    /// Paths whose `${...}` could not be resolved (their values are left as written).
    unresolved: Vec<String>,
}

#[derive(Debug)]
struct Source {
    path: PathBuf,
    text: String,
    /// The file whose `extends:` names this one, and the dotted path of that entry.
    pulled_in: Option<(usize, String)>,
}

/// Where a value was written: source index and dotted path there.
#[derive(Clone, Debug)]
struct At {
    file: usize,
    path: String,
}

#[derive(Clone, Debug)]
struct Node {
    at: At,
    /// Tagged `!replace`: replaces what it merges onto.
    replace: bool,
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    Map(Vec<(Value, Node)>),
    Seq(Vec<Node>),
    Leaf(Value),
}

impl Node {
    fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Map(entries) => entries.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v),
            _ => None,
        }
    }

    fn take(&mut self, key: &str) -> Option<Node> {
        match &mut self.kind {
            Kind::Map(entries) => {
                let i = entries.iter().position(|(k, _)| k.as_str() == Some(key))?;
                Some(entries.remove(i).1)
            }
            _ => None,
        }
    }

    fn set(&mut self, key: &str, value: Node) {
        if let Kind::Map(entries) = &mut self.kind {
            match entries.iter_mut().find(|(k, _)| k.as_str() == Some(key)) {
                Some((_, v)) => *v = value,
                None => entries.push((Value::String(key.to_owned()), value)),
            }
        }
    }

    fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Leaf(v) => v.as_str(),
            _ => None,
        }
    }

    /// A stage entry's id: its `id:`, else its stage name.
    fn stage_id(&self) -> Option<&str> {
        self.get("id").and_then(Node::as_str).or_else(|| self.get("stage").and_then(Node::as_str))
    }
}

pub(crate) fn key_text(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other).map(|s| s.trim().to_owned()).unwrap_or_default(),
    }
}

pub(crate) fn child_path(parent: &str, key: &str) -> String {
    if parent.is_empty() { key.to_owned() } else { format!("{parent}.{key}") }
}

fn to_node(v: Value, at: At) -> Node {
    let (replace, v) = match v {
        Value::Tagged(t) if t.tag == "replace" => (true, t.value),
        other => (false, other),
    };
    let kind = match v {
        Value::Mapping(map) => Kind::Map(
            map.into_iter()
                .map(|(k, v)| {
                    let path = child_path(&at.path, &key_text(&k));
                    (k, to_node(v, At { file: at.file, path }))
                })
                .collect(),
        ),
        Value::Sequence(items) => Kind::Seq(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| to_node(v, At { file: at.file, path: format!("{}[{i}]", at.path) }))
                .collect(),
        ),
        other => Kind::Leaf(other),
    };
    Node { at, replace, kind }
}

/// Reads `file` (whose text is `src`) and everything it extends, and merges them.
pub fn compose(file: &Path, src: &str) -> Result<Composed, Vec<ConfigIssue>> {
    let mut c = Composer { sources: Vec::new(), issues: Vec::new(), stack: Vec::new() };
    c.sources.push(Source { path: file.to_owned(), text: src.to_owned(), pulled_in: None });
    let root = c.load(0);
    if !c.issues.is_empty() {
        return Err(c.issues);
    }
    let Some(root) = root else { return Err(c.issues) };
    let mut origins = Vec::new();
    let doc = flatten(root, "", &mut origins);
    Ok(Composed { doc, sources: c.sources, origins, unresolved: Vec::new() })
}

struct Composer {
    sources: Vec<Source>,
    issues: Vec<ConfigIssue>,
    /// Canonical paths of the files being composed, outermost first (cycle detection).
    stack: Vec<PathBuf>,
}

impl Composer {
    fn issue(&mut self, file: usize, path: &str, message: impl Into<String>, help: Option<String>) {
        let mut issue = ConfigIssue::new(path, message);
        issue.help = help;
        place_at(&self.sources, file, path, &mut issue);
        self.issues.push(issue);
    }

    /// The document of source `idx` with its bases merged under it.
    fn load(&mut self, idx: usize) -> Option<Node> {
        let doc = match parse_yaml(&self.sources[idx].text) {
            Ok(doc) => doc,
            Err(mut issue) => {
                if idx > 0 {
                    issue.origin = Some(Box::new(origin_of(&self.sources, idx)));
                }
                self.issues.push(issue);
                return None;
            }
        };
        if !doc.is_mapping() {
            self.issue(
                idx,
                "",
                "a pipeline file is a mapping with `stages:` (and optionally name, seed, device)",
                None,
            );
            return None;
        }
        let canonical =
            std::fs::canonicalize(&self.sources[idx].path).unwrap_or_else(|_| self.sources[idx].path.clone());
        self.stack.push(canonical);
        let mut node = to_node(doc, At { file: idx, path: String::new() });
        let extends = node.take("extends");
        let mut merged: Option<Node> = None;
        for (entry, at) in extends.map(|e| self.extends_entries(e)).unwrap_or_default() {
            if let Some(base) = self.load_base(idx, &entry, &at) {
                merged = Some(match merged {
                    Some(m) => self.merge(m, base),
                    None => base,
                });
            }
        }
        self.stack.pop();
        if idx > 0 {
            // A base names no run; its relative base_dir is relative to itself.
            node.take("name");
            self.rebase_dir(&mut node, idx);
        }
        let mut node = match merged {
            Some(base) => self.merge(base, node),
            None => node,
        };
        // The pipeline itself: stages still written as patches (no base had a list) become
        // the list, in order.
        if idx == 0
            && let Some(stages) = node.take("stages")
        {
            let stages = if matches!(stages.kind, Kind::Map(_)) { self.merge_stages(None, stages) } else { stages };
            node.set("stages", stages);
        }
        Some(node)
    }

    /// The file names of an `extends:` value, with where each is written.
    fn extends_entries(&mut self, e: Node) -> Vec<(String, At)> {
        let items = match e.kind {
            Kind::Seq(items) => items,
            Kind::Leaf(_) => vec![e],
            Kind::Map(_) => Vec::new(),
        };
        let mut out = Vec::new();
        for item in items {
            match item.as_str() {
                Some(s) => out.push((s.to_owned(), item.at)),
                None => self.issue(
                    item.at.file,
                    &item.at.path.clone(),
                    "expected the path of a pipeline file, or a list of them",
                    Some("`extends: base.yaml`, relative to this file".to_owned()),
                ),
            }
        }
        out
    }

    fn load_base(&mut self, from: usize, rel: &str, at: &At) -> Option<Node> {
        let dir = self.sources[from].path.parent().map(Path::to_owned).unwrap_or_default();
        let path = dir.join(rel);
        let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if let Some(first) = self.stack.iter().position(|p| *p == canonical) {
            let mut chain: Vec<String> = self.stack[first..].iter().map(|p| display_name(p)).collect();
            chain.push(display_name(&canonical));
            self.issue(
                from,
                &at.path,
                format!("`{rel}` closes a cycle of `extends:` ({})", chain.join(" -> ")),
                Some("a pipeline cannot build on itself; remove one of the `extends:`".to_owned()),
            );
            return None;
        }
        if self.stack.len() >= MAX_CHAIN {
            self.issue(from, &at.path, format!("more than {MAX_CHAIN} files deep in `extends:`"), None);
            return None;
        }
        let text = match read_source(&path) {
            Ok(text) => text,
            Err(e) => {
                self.issue(from, &at.path, format!("`{}`: {}", path.display(), e.message), None);
                return None;
            }
        };
        self.sources.push(Source { path, text, pulled_in: Some((from, at.path.clone())) });
        let idx = self.sources.len() - 1;
        self.load(idx)
    }

    /// Makes a base's relative `base_dir:` absolute, since it is relative to the base file.
    fn rebase_dir(&mut self, node: &mut Node, idx: usize) {
        let Some(dir) = node.get("base_dir") else { return };
        let Some(rel) = dir.as_str() else { return };
        let file_dir = self.sources[idx].path.parent().map(Path::to_owned).unwrap_or_default();
        let joined = file_dir.join(rel);
        let absolute = std::path::absolute(&joined).unwrap_or(joined);
        let at = dir.at.clone();
        node.set(
            "base_dir",
            Node { at, replace: false, kind: Kind::Leaf(Value::String(absolute.display().to_string())) },
        );
    }

    /// `over` merged onto `base`.
    fn merge(&mut self, base: Node, over: Node) -> Node {
        if over.replace {
            return Node { replace: false, ..over };
        }
        match (base.kind, over.kind) {
            (Kind::Map(mut entries), Kind::Map(over_entries)) => {
                for (k, v) in over_entries {
                    let is_stages = over.at.path.is_empty() && k.as_str() == Some("stages");
                    match entries.iter().position(|(bk, _)| *bk == k) {
                        Some(i) => {
                            let (bk, bv) = entries.remove(i);
                            let merged = if is_stages { self.merge_stages(Some(bv), v) } else { self.merge(bv, v) };
                            entries.insert(i, (bk, merged));
                        }
                        None => {
                            let v = if is_stages { self.merge_stages(None, v) } else { v };
                            entries.push((k, v));
                        }
                    }
                }
                Node { at: base.at, replace: false, kind: Kind::Map(entries) }
            }
            (_, kind) => Node { at: over.at, replace: false, kind },
        }
    }

    /// A `stages:` value merged onto the base's stages (if any).
    fn merge_stages(&mut self, base: Option<Node>, over: Node) -> Node {
        let patches = match over.kind {
            Kind::Map(patches) if !over.replace => patches,
            // A list (or `!replace`) replaces the base's stages.
            kind => return Node { at: over.at, replace: false, kind },
        };
        // Patches onto patches (two fragments): the first set becomes a list first.
        let base = match base {
            Some(b) if matches!(b.kind, Kind::Map(_)) && !b.replace => Some(self.merge_stages(None, b)),
            other => other,
        };
        let (at, mut list) = match base {
            Some(Node { at, kind: Kind::Seq(items), .. }) => (at, items),
            Some(other) => (other.at, Vec::new()),
            None => (over.at.clone(), Vec::new()),
        };
        for (key, mut patch) in patches {
            let id = key_text(&key);
            let patch_at = patch.at.clone();
            let Kind::Map(entries) = &patch.kind else {
                self.issue(
                    patch_at.file,
                    &patch_at.path,
                    format!("a stage patch is a mapping, such as `{id}: {{with: {{...}}}}`"),
                    Some("`remove: true` drops the stage".to_owned()),
                );
                continue;
            };
            for (k, v) in entries {
                let name = key_text(k);
                if !PATCH_KEYS.contains(&name.as_str()) {
                    let help = match kindling_core::closest(&name, PATCH_KEYS.iter().copied()) {
                        Some(best) => format!("did you mean `{best}`?"),
                        None => format!("a stage patch holds {}", PATCH_KEYS.join(", ")),
                    };
                    self.issue(v.at.file, &v.at.path, format!("unknown key `{name}`"), Some(help));
                }
            }
            let hits: Vec<usize> = (0..list.len()).filter(|&i| list[i].stage_id() == Some(id.as_str())).collect();
            if hits.len() > 1 {
                self.issue(
                    patch_at.file,
                    &patch_at.path,
                    format!("{} stages of the base have the id `{id}`", hits.len()),
                    Some("give them distinct `id:`s in the base, and patch by those".to_owned()),
                );
                continue;
            }
            let remove = patch.take("remove");
            let before = patch.take("before");
            let after = patch.take("after");
            if let Some(r) = &remove {
                match &r.kind {
                    Kind::Leaf(Value::Bool(true)) => {
                        match hits.first() {
                            Some(&i) => {
                                list.remove(i);
                            }
                            None => self.issue(
                                r.at.file,
                                &r.at.path.clone(),
                                format!("no stage `{id}` to remove"),
                                Some(ids_help(&list)),
                            ),
                        }
                        continue;
                    }
                    Kind::Leaf(Value::Bool(false)) => {}
                    _ => {
                        self.issue(r.at.file, &r.at.path.clone(), "expected true or false", None);
                        continue;
                    }
                }
            }
            let entry = match hits.first() {
                Some(&i) => {
                    let existing = list.remove(i);
                    if let (Some(old), Some(new)) = (existing.get("stage").and_then(Node::as_str), patch.get("stage"))
                        && new.as_str() != Some(old)
                        && !patch.replace
                    {
                        let at = new.at.clone();
                        self.issue(
                            at.file,
                            &at.path,
                            format!("the base's `{id}` is a `{old}` stage; a patch cannot make it another kind"),
                            Some(format!("write `{id}: !replace {{stage: ..., with: ...}}` to replace it")),
                        );
                    }
                    let position = if before.is_some() || after.is_some() { None } else { Some(i) };
                    let merged = self.merge(existing, patch);
                    (merged, position)
                }
                None => {
                    let patch = Node { replace: false, ..patch };
                    let mut patch = patch;
                    if patch.get("stage").is_none() {
                        let at = At { file: patch_at.file, path: patch_at.path.clone() };
                        patch.set("stage", Node { at, replace: false, kind: Kind::Leaf(Value::String(id.clone())) });
                    }
                    if patch.get("stage").and_then(Node::as_str) != Some(id.as_str()) {
                        let at = At { file: patch_at.file, path: patch_at.path.clone() };
                        patch.set("id", Node { at, replace: false, kind: Kind::Leaf(Value::String(id.clone())) });
                    }
                    (patch, None)
                }
            };
            let (entry, position) = entry;
            let index = match position {
                Some(i) => i,
                None => self.anchor(&list, before.as_ref(), after.as_ref()).unwrap_or(list.len()),
            };
            list.insert(index.min(list.len()), entry);
        }
        Node { at, replace: false, kind: Kind::Seq(list) }
    }

    /// Where `before:` / `after:` place a stage in `list` (None: at the end).
    fn anchor(&mut self, list: &[Node], before: Option<&Node>, after: Option<&Node>) -> Option<usize> {
        let (anchor, offset) = match (before, after) {
            (Some(_), Some(a)) => {
                self.issue(a.at.file, &a.at.path, "give `before:` or `after:`, not both", None);
                return None;
            }
            (Some(b), None) => (b, 0),
            (None, Some(a)) => (a, 1),
            (None, None) => return None,
        };
        let Some(id) = anchor.as_str() else {
            self.issue(anchor.at.file, &anchor.at.path, "expected the id of a stage", Some(ids_help(list)));
            return None;
        };
        match list.iter().position(|s| s.stage_id() == Some(id)) {
            Some(i) => Some(i + offset),
            None => {
                self.issue(anchor.at.file, &anchor.at.path, format!("no stage `{id}` here"), Some(ids_help(list)));
                None
            }
        }
    }
}

fn ids_help(list: &[Node]) -> String {
    let ids: Vec<&str> = list.iter().filter_map(Node::stage_id).collect();
    if ids.is_empty() { "the base has no stages".to_owned() } else { format!("the stages are: {}", ids.join(", ")) }
}

fn display_name(p: &Path) -> String {
    p.file_name().map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// The node as a plain value, recording where each of its values was written.
fn flatten(node: Node, path: &str, origins: &mut Vec<(String, usize, String)>) -> Value {
    origins.push((path.to_owned(), node.at.file, node.at.path));
    match node.kind {
        Kind::Leaf(v) => v,
        Kind::Seq(items) => Value::Sequence(
            items.into_iter().enumerate().map(|(i, n)| flatten(n, &format!("{path}[{i}]"), origins)).collect(),
        ),
        Kind::Map(entries) => {
            let mut map = Mapping::new();
            for (k, n) in entries {
                let p = child_path(path, &key_text(&k));
                map.insert(k, flatten(n, &p, origins));
            }
            Value::Mapping(map)
        }
    }
}

fn origin_of(sources: &[Source], file: usize) -> Origin {
    let mut pulled_in_by = Vec::new();
    let mut cur = file;
    while let Some((parent, path)) = &sources[cur].pulled_in {
        pulled_in_by.push((sources[*parent].path.clone(), locate(&sources[*parent].text, path)));
        cur = *parent;
    }
    Origin { file: sources[file].path.clone(), pulled_in_by }
}

fn place_at(sources: &[Source], file: usize, path: &str, issue: &mut ConfigIssue) {
    issue.location = locate(&sources[file].text, path);
    if file > 0 {
        issue.origin = Some(Box::new(origin_of(sources, file)));
    }
}

/// Whether dotted path `path` is `prefix` or lies inside it.
fn within<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    path.strip_prefix(prefix).filter(|rest| prefix.is_empty() || rest.is_empty() || rest.starts_with(['.', '[']))
}

impl Composed {
    /// Sets `issue`'s line, column and file from where the value at its (composed) path was
    /// written. Paths that no file wrote (`--set` created them) are located at their deepest
    /// written ancestor.
    pub fn place(&self, issue: &mut ConfigIssue) {
        let best = self
            .origins
            .iter()
            .filter_map(|(composed, file, src_path)| {
                within(&issue.path, composed).map(|rest| (composed.len(), *file, src_path, rest))
            })
            .max_by_key(|(len, ..)| *len);
        let Some((_, file, src_path, rest)) = best else { return };
        let path = if rest.is_empty() {
            src_path.clone()
        } else if src_path.is_empty() {
            rest.trim_start_matches('.').to_owned()
        } else {
            format!("{src_path}{rest}")
        };
        place_at(&self.sources, file, &path, issue);
    }

    /// Whether the value at `path` (or one inside it) kept an unresolved `${...}`: problems
    /// found in it later would only echo the interpolation's own.
    pub fn is_unresolved(&self, path: &str) -> bool {
        self.unresolved.iter().any(|p| within(path, p).is_some())
    }

    /// Replaces every `${name}` in the document with `vars:`'s value and removes `vars:`;
    /// returns the problems (an unknown name, a cycle, a list inside a string), placed.
    pub fn interpolate(&mut self) -> Vec<ConfigIssue> {
        let (mut issues, unresolved) = crate::interpolate::interpolate(&mut self.doc);
        self.unresolved = unresolved;
        for issue in &mut issues {
            self.place(issue);
        }
        issues
    }
}
