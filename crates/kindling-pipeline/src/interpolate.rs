//! `${name}` interpolation of a composed pipeline's `vars:`.

use kindling_core::ConfigIssue;
use serde_yaml::{Mapping, Value};

use crate::compose::{MAX_CHAIN, child_path, key_text};

/// Replaces every `${name}` in `doc` with `vars:`'s value and removes `vars:`. Returns the
/// problems (at composed dotted paths, not yet placed) and the paths whose values kept an
/// unresolved reference.
pub(crate) fn interpolate(doc: &mut Value) -> (Vec<ConfigIssue>, Vec<String>) {
    let vars = doc.as_mapping_mut().and_then(|m| m.remove("vars"));
    let mut issues = Vec::new();
    let vars = match vars {
        None | Some(Value::Null) => Mapping::new(),
        Some(Value::Mapping(m)) => m,
        Some(_) => {
            issues.push(ConfigIssue::new("vars", "expected a mapping of names to values"));
            Mapping::new()
        }
    };
    let mut resolver = Resolver { vars: &vars, issues: &mut issues, stack: Vec::new(), failed: Vec::new() };
    resolver.walk(doc, "");
    let failed = resolver.failed;
    (issues, failed)
}

struct Resolver<'v> {
    vars: &'v Mapping,
    issues: &'v mut Vec<ConfigIssue>,
    /// Names being resolved (cycle detection).
    stack: Vec<String>,
    /// Paths of the values that could not be expanded.
    failed: Vec<String>,
}

impl Resolver<'_> {
    fn walk(&mut self, v: &mut Value, path: &str) {
        match v {
            Value::String(s) if s.contains('$') => match self.expand(s, path) {
                Some(new) => *v = new,
                None => self.failed.push(path.to_owned()),
            },
            Value::Sequence(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.walk(item, &format!("{path}[{i}]"));
                }
            }
            Value::Mapping(map) => {
                for (k, item) in map.iter_mut() {
                    let p = child_path(path, &key_text(k));
                    self.walk(item, &p);
                }
            }
            Value::Tagged(t) => self.walk(&mut t.value, path),
            _ => {}
        }
    }

    /// The value of string `s` with its references expanded (None: unchanged or failed).
    fn expand(&mut self, s: &str, path: &str) -> Option<Value> {
        // A whole-value reference keeps the variable's type.
        if let Some(name) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}'))
            && !name.contains(['{', '}', '$'])
        {
            return self.var(name, path);
        }
        let mut out = String::new();
        let mut rest = s;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let after = &rest[i..];
            if let Some(r) = after.strip_prefix("$${") {
                out.push_str("${");
                rest = r;
            } else if let Some(r) = after.strip_prefix("${") {
                let Some(end) = r.find('}') else {
                    self.issues.push(
                        ConfigIssue::new(path, format!("`{s}`: `${{` is not closed"))
                            .with_help("write `${name}`, or `$${` for a literal `${`"),
                    );
                    return None;
                };
                let value = self.var(&r[..end], path)?;
                match value {
                    Value::String(t) => out.push_str(&t),
                    Value::Number(n) => out.push_str(&n.to_string()),
                    Value::Bool(b) => out.push_str(&b.to_string()),
                    _ => {
                        self.issues.push(ConfigIssue::new(
                            path,
                            format!(
                                "`${{{}}}` is a list or mapping; it can only be a whole value, not part of `{s}`",
                                &r[..end]
                            ),
                        ));
                        return None;
                    }
                }
                rest = &r[end + 1..];
            } else {
                out.push('$');
                rest = &after[1..];
            }
        }
        out.push_str(rest);
        Some(Value::String(out))
    }

    fn var(&mut self, name: &str, path: &str) -> Option<Value> {
        let Some(value) = self.vars.get(name) else {
            let names: Vec<&str> = self.vars.keys().filter_map(Value::as_str).collect();
            let help = match kindling_core::closest(name, names.iter().copied()) {
                Some(best) => format!("did you mean `{best}`?"),
                None if names.is_empty() => "there is no `vars:` block".to_owned(),
                None => format!("vars: {}", names.join(", ")),
            };
            self.issues.push(ConfigIssue::new(path, format!("unknown variable `${{{name}}}`")).with_help(help));
            return None;
        };
        if self.stack.iter().any(|n| n == name) {
            let chain = format!("{} -> {name}", self.stack.join(" -> "));
            self.issues.push(ConfigIssue::new(path, format!("variables refer to each other in a cycle: {chain}")));
            return None;
        }
        if self.stack.len() >= MAX_CHAIN {
            self.issues.push(ConfigIssue::new(path, "variables nest too deeply"));
            return None;
        }
        self.stack.push(name.to_owned());
        let mut value = value.clone();
        let before = self.issues.len();
        self.walk(&mut value, &format!("vars.{name}"));
        self.stack.pop();
        (self.issues.len() == before).then_some(value)
    }
}
