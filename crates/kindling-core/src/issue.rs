//! Configuration issues: problems found before any compute, each tied to a place.

use std::fmt;
use std::path::PathBuf;

/// One problem in a configuration, with the dotted path of the value it concerns
/// (`stages[2].with.lr`) and, where known, a hint on how to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Dotted path from the document root; empty for the whole document.
    pub path: String,
    /// What is wrong, in one sentence.
    pub message: String,
    /// How to fix it, when there is something useful to say ("did you mean `lr`?").
    pub help: Option<String>,
    /// 1-based line and column in the source file, where the parser gave them.
    pub location: Option<(usize, usize)>,
    /// Where the value is written when that is not the file being checked: a base file the
    /// pipeline extends. `None` for the pipeline file itself.
    pub origin: Option<Box<Origin>>,
}

/// The file an issue's value is written in, and the `extends:` lines that pulled it in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The file holding the value.
    pub file: PathBuf,
    /// Each file that extends it on the way up to the pipeline itself, with the line and
    /// column of its `extends:` entry: nearest first.
    pub pulled_in_by: Vec<(PathBuf, Option<(usize, usize)>)>,
}

impl ConfigIssue {
    /// An issue at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { path: path.into(), message: message.into(), help: None, location: None, origin: None }
    }

    /// Adds a fix hint.
    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Prefixes the path, so a stage can report relative paths and the pipeline anchor them.
    #[must_use]
    pub fn under(mut self, prefix: &str) -> Self {
        self.path = join_path(prefix, &self.path);
        self
    }
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)?;
        } else {
            write!(f, "{}: {}", self.path, self.message)?;
        }
        if let Some(help) = &self.help {
            write!(f, " ({help})")?;
        }
        Ok(())
    }
}

/// One step of a dotted path: a mapping key or a list index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathStep<'a> {
    /// `.key`
    Key(&'a str),
    /// `[index]`
    Index(usize),
}

/// The steps of a dotted path such as an issue's (`a.b[2].c` -> `a`, `b`, `[2]`, `c`).
pub fn path_steps(path: &str) -> Vec<PathStep<'_>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, mut rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            out.push(PathStep::Key(key));
        }
        while let Some((n, r)) = rest.split_once(']') {
            if let Ok(i) = n.parse() {
                out.push(PathStep::Index(i));
            }
            rest = r.strip_prefix('[').unwrap_or(r);
        }
    }
    out
}

/// Joins a prefix and a relative dotted path (`a.b` + `c` -> `a.b.c`, `a` + `[0]` -> `a[0]`).
pub(crate) fn join_path(prefix: &str, rest: &str) -> String {
    match (prefix.is_empty(), rest.is_empty()) {
        (true, _) => rest.to_owned(),
        (_, true) => prefix.to_owned(),
        _ if rest.starts_with('[') => format!("{prefix}{rest}"),
        _ => format!("{prefix}.{rest}"),
    }
}

/// A collector of issues, so checks can report everything instead of stopping at the first.
#[derive(Debug, Default)]
pub struct Issues {
    prefix: String,
    items: Vec<ConfigIssue>,
}

impl Issues {
    /// An empty collector whose paths are relative to `prefix`.
    pub fn under(prefix: impl Into<String>) -> Self {
        Self { prefix: prefix.into(), items: Vec::new() }
    }

    /// Records an issue at `path` (relative to this collector's prefix).
    pub fn push(&mut self, path: &str, message: impl Into<String>) {
        self.items.push(ConfigIssue::new(join_path(&self.prefix, path), message));
    }

    /// Records a prepared issue (its path is taken as relative to this collector's prefix).
    pub fn push_issue(&mut self, issue: ConfigIssue) {
        self.items.push(issue.under(&self.prefix));
    }

    /// Runs `check` with paths relative to `path` (itself relative to this collector's
    /// prefix), for nested configuration blocks.
    pub fn at(&mut self, path: &str, check: impl FnOnce(&mut Issues)) {
        let mut nested = Issues::under(join_path(&self.prefix, path));
        check(&mut nested);
        self.items.extend(nested.items);
    }

    /// Checks `cond` and records `message` at `path` when it does not hold.
    pub fn require(&mut self, cond: bool, path: &str, message: impl Into<String>) {
        if !cond {
            self.push(path, message);
        }
    }

    /// Whether nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The recorded issues.
    pub fn into_vec(self) -> Vec<ConfigIssue> {
        self.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_like_the_yaml_they_point_into() {
        assert_eq!(join_path("stages[2]", "with.lr"), "stages[2].with.lr");
        assert_eq!(join_path("layers", "[3]"), "layers[3]");
        assert_eq!(join_path("", "lr"), "lr");
        assert_eq!(join_path("lr", ""), "lr");
    }

    #[test]
    fn paths_split_into_keys_and_indices() {
        use PathStep::{Index, Key};
        assert_eq!(path_steps("stages[1].with.lr"), [Key("stages"), Index(1), Key("with"), Key("lr")]);
        assert_eq!(path_steps("a[0][2]"), [Key("a"), Index(0), Index(2)]);
    }

    #[test]
    fn issues_collect_under_their_prefix() {
        let mut issues = Issues::under("stages[1].with");
        issues.require(false, "lr", "must be positive");
        issues.require(true, "epochs", "never");
        issues.at("optimizer", |nested| nested.push("betas[0]", "must be below 1"));
        let v = issues.into_vec();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].to_string(), "stages[1].with.lr: must be positive");
        assert_eq!(v[1].to_string(), "stages[1].with.optimizer.betas[0]: must be below 1");
    }
}
