//! Reading a stage's `with:` block into its typed configuration, reporting every problem of the
//! block in one pass and in the user's terms.
//!
//! serde stops at the first error. So the block is read, the value at fault is reported and
//! taken out (its key then takes its default), and the block is read again, until it parses:
//! three wrong types in one stage give three issues, each at its own dotted path. Where serde's
//! path stops short (inside an internally tagged enum such as `optimizer:`, it names the block,
//! not the key), the key is found by taking the block's keys out one at a time. serde's
//! messages speak Rust (`invalid type: sequence, expected f64`); they are said again as
//! "expected a number, found a list".

use serde_json::{Map, Value};

use crate::issue::{ConfigIssue, Issues, PathStep as Step, path_steps as steps};
use crate::stage::StageConfig;

/// More rounds than any block has values to remove.
const MAX_ROUNDS: usize = 64;

/// Parses `value` into `C`. Returns the configuration when the block parses once every value
/// at fault is taken out (so its range checks can still run), and every issue found.
pub(crate) fn parse_config<C: StageConfig>(value: Value) -> (Option<C>, Vec<ConfigIssue>) {
    let value = if value.is_null() { Value::Object(Map::new()) } else { value };
    let Value::Object(map) = &value else {
        return (None, vec![ConfigIssue::new("", format!("expected a mapping of keys, found {}", kind_of(&value)))]);
    };
    let known: Vec<&str> = C::KEY_DOCS.iter().map(|(k, _)| *k).collect();
    let mut issues: Vec<ConfigIssue> =
        map.keys().filter(|k| !known.contains(&k.as_str())).map(|k| unknown_key(k, &known)).collect();
    let mut work = value.clone();
    let mut removed: Vec<String> = issues.iter().map(|i| i.path.clone()).collect();
    let mut lists = Lists::default();
    let mut at_least_one: Vec<(usize, String)> = Vec::new();
    for path in &removed {
        remove(&mut work, path);
    }
    for _ in 0..MAX_ROUNDS {
        let (path, message) = match attempt::<C>(&work) {
            Ok(config) => {
                least_one::<C>(&work, &mut issues, &at_least_one);
                return (Some(config), issues);
            }
            Err(e) => e,
        };
        let path = refine::<C>(&work, &path, &message);
        // A block that no longer parses because a value we took out of it was required (a
        // layer without its `out_channels`) is a consequence, not a problem: it goes too.
        let consequence = match quoted_after(&message, "missing field `") {
            Some(field) => removed.contains(&join(&path, field)),
            None => !path.is_empty() && removed.iter().any(|r| within(r, &path)),
        };
        if !consequence {
            let mut issue = describe(&work, &path, &message);
            if issue.message.starts_with("expected a whole number >= 0,") {
                at_least_one.push((issues.len(), path.clone()));
            }
            issue.path = lists.original(&path);
            issues.push(issue);
        }
        if path.is_empty() || !remove(&mut work, &path) {
            return (None, issues);
        }
        lists.removed(&path);
        removed.push(path);
    }
    (None, issues)
}

/// Says "a whole number >= 1" for the keys among `candidates` (issue index, path in `work`)
/// whose own check refuses 0, now that the rest of the block parses.
fn least_one<C: StageConfig>(work: &Value, issues: &mut [ConfigIssue], candidates: &[(usize, String)]) {
    for (i, path) in candidates {
        if least_is_one::<C>(work, path) {
            issues[*i].message = issues[*i].message.replacen(">= 0", ">= 1", 1);
        }
    }
}

/// The list items taken out so far, so that later paths (into the shortened lists) are
/// reported with the indices the file has.
#[derive(Default)]
struct Lists {
    /// (list path as in the shortened value, original indices taken out of it).
    taken: Vec<(String, Vec<usize>)>,
}

impl Lists {
    /// Records that the item at `path` (a path ending in `[i]`) was taken out.
    fn removed(&mut self, path: &str) {
        let Some((list, i)) = split_index(path) else { return };
        let original = self.index(list, i);
        match self.taken.iter_mut().find(|(l, _)| l == list) {
            Some((_, indices)) => {
                indices.push(original);
                indices.sort_unstable();
            }
            None => self.taken.push((list.to_owned(), vec![original])),
        }
    }

    /// The original index of item `i` of the shortened list at `list`.
    fn index(&self, list: &str, i: usize) -> usize {
        let Some((_, taken)) = self.taken.iter().find(|(l, _)| l == list) else { return i };
        (0..).filter(|k| !taken.contains(k)).nth(i).unwrap_or(i)
    }

    /// `path` with the index into each shortened list made the original one.
    fn original(&self, path: &str) -> String {
        for (list, _) in &self.taken {
            if let Some(rest) = path.strip_prefix(list.as_str()).and_then(|r| r.strip_prefix('['))
                && let Some((n, tail)) = rest.split_once(']')
                && let Ok(i) = n.parse::<usize>()
            {
                return format!("{list}[{}]{tail}", self.index(list, i));
            }
        }
        path.to_owned()
    }
}

/// `a.b[3]` -> (`a.b`, 3).
fn split_index(path: &str) -> Option<(&str, usize)> {
    let (list, n) = path.strip_suffix(']')?.rsplit_once('[')?;
    Some((list, n.parse().ok()?))
}

/// Whether two dotted paths are the same value or one lies inside the other.
pub(crate) fn related(a: &str, b: &str) -> bool {
    within(a, b) || within(b, a)
}

fn within(path: &str, prefix: &str) -> bool {
    prefix.is_empty() || path.strip_prefix(prefix).is_some_and(|r| r.is_empty() || r.starts_with(['.', '[']))
}

/// One deserialisation: the configuration, or the dotted path and message of the first error.
fn attempt<C: StageConfig>(work: &Value) -> Result<C, (String, String)> {
    serde_path_to_error::deserialize::<_, C>(work).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        (path, e.into_inner().to_string())
    })
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

/// The text between `prefix` and the next backquote, when `message` starts with `prefix`.
fn quoted_after<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    message.strip_prefix(prefix)?.split('`').next()
}

fn get<'v>(v: &'v Value, path: &str) -> Option<&'v Value> {
    steps(path).into_iter().try_fold(v, |v, step| match step {
        Step::Key(k) => v.get(k),
        Step::Index(i) => v.get(i),
    })
}

/// The value `steps` lead to inside `v`.
fn get_mut<'v>(v: &'v mut Value, steps: &[Step<'_>]) -> Option<&'v mut Value> {
    steps.iter().try_fold(v, |v, step| match step {
        Step::Key(k) => v.get_mut(*k),
        Step::Index(i) => v.get_mut(*i),
    })
}

/// Takes the value at `path` out of `v`: a key is removed, a list item is removed (and
/// [`Lists`] maps later indices back). Whether something was there.
fn remove(v: &mut Value, path: &str) -> bool {
    let steps = steps(path);
    let Some((last, parents)) = steps.split_last() else { return false };
    let Some(cur) = get_mut(v, parents) else { return false };
    match (last, cur) {
        (Step::Key(k), Value::Object(map)) => map.remove(*k).is_some(),
        (Step::Index(i), Value::Array(items)) if *i < items.len() => {
            items.remove(*i);
            true
        }
        _ => false,
    }
}

/// The path of the value at fault, deeper than serde's where serde stopped at a block.
fn refine<C: StageConfig>(work: &Value, path: &str, message: &str) -> String {
    let Some(Value::Object(block)) = get(work, path) else { return path.to_owned() };
    if let Some(key) = quoted_after(message, "unknown field `")
        && block.contains_key(key)
    {
        return join(path, key);
    }
    if let Some(variant) = quoted_after(message, "unknown variant `")
        && let Some((key, _)) = block.iter().find(|(_, v)| v.as_str() == Some(variant))
    {
        return join(path, key);
    }
    if message.starts_with("missing field") || message.contains("found a map") || message.contains(", expected struct")
    {
        return path.to_owned();
    }
    // The error is inside the block: find the key that, alone in the block (with the keys the
    // block cannot do without), still gives it.
    let needed: Vec<&String> = block
        .keys()
        .filter(|key| {
            let mut without = work.clone();
            remove(&mut without, &join(path, key));
            matches!(attempt::<C>(&without), Err((_, m)) if quoted_after(&m, "missing field `") == Some(key.as_str()))
        })
        .collect();
    for key in block.keys().filter(|k| !needed.contains(k)) {
        let mut alone = work.clone();
        for other in block.keys().filter(|k| *k != key && !needed.contains(k)) {
            remove(&mut alone, &join(path, other));
        }
        if matches!(attempt::<C>(&alone), Err((_, m)) if m == message) {
            return refine::<C>(work, &join(path, key), message);
        }
    }
    path.to_owned()
}

/// The issue for serde's `message` about the value at `path`, in the user's terms.
fn describe(work: &Value, path: &str, message: &str) -> ConfigIssue {
    for (what, noun) in [("unknown field `", "key"), ("unknown variant `", "value")] {
        let Some(rest) = message.strip_prefix(what) else { continue };
        let Some((name, expected)) = rest.split_once('`') else { continue };
        let options: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        let issue = ConfigIssue::new(path, format!("unknown {noun} `{name}`"));
        return match crate::registry::closest(name, options.iter().copied()) {
            Some(best) => issue.with_help(format!("did you mean `{best}`?")),
            None if !options.is_empty() => issue.with_help(format!("expected one of: {}", options.join(", "))),
            None => issue,
        };
    }
    if let Some(name) = quoted_after(message, "missing field `") {
        return ConfigIssue::new(path, format!("missing key `{name}`"));
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        let Some(rest) = message.strip_prefix(prefix) else { continue };
        let Some((found, expected)) = rest.split_once(", expected ") else { continue };
        let expected = expected_in_words(expected);
        return ConfigIssue::new(path, format!("expected {expected}, found {}", found_in_words(found)));
    }
    if let Some(rest) = message.strip_prefix("invalid length ")
        && let Some((n, expected)) = rest.split_once(", expected ")
    {
        return ConfigIssue::new(path, format!("expected {}, found {n} values", expected_in_words(expected)));
    }
    if message.starts_with("data did not match any variant of untagged enum") {
        let found = get(work, path).map_or("this value", kind_of);
        return ConfigIssue::new(path, format!("{found} is not a form this key takes"))
            .with_help("`kindling stages` lists each key's forms");
    }
    ConfigIssue::new(path, message.to_owned())
}

/// Whether the key at `path`, set to 0 in `work` (which parses), fails the configuration's own
/// check there.
fn least_is_one<C: StageConfig>(work: &Value, path: &str) -> bool {
    let mut zero = work.clone();
    let steps = steps(path);
    let Some((Step::Key(key), parents)) = steps.split_last() else { return false };
    let Some(block) = get_mut(&mut zero, parents).and_then(Value::as_object_mut) else { return false };
    block.insert((*key).to_owned(), Value::from(0));
    let Ok(config) = attempt::<C>(&zero) else { return false };
    let mut issues = Issues::default();
    config.check(&mut issues);
    issues.into_vec().iter().any(|i| i.path == path)
}

/// serde's "expected ..." in the words of a pipeline's author.
fn expected_in_words(expected: &str) -> String {
    let unsigned = ["usize", "u8", "u16", "u32", "u64", "u128"];
    let signed = ["isize", "i8", "i16", "i32", "i64", "i128"];
    match expected {
        e if unsigned.contains(&e) => "a whole number >= 0".to_owned(),
        e if signed.contains(&e) => "a whole number".to_owned(),
        e if e.starts_with("a nonzero ") || e.starts_with("a non-zero ") => "a whole number >= 1".to_owned(),
        "f32" | "f64" => "a number".to_owned(),
        "a boolean" => "true or false".to_owned(),
        "a string" => "text".to_owned(),
        "a character" => "a single character".to_owned(),
        "a sequence" => "a list".to_owned(),
        "a map" => "a mapping".to_owned(),
        e if e.starts_with("struct ") || e.starts_with("struct variant") => "a mapping of keys".to_owned(),
        e if e.starts_with("internally tagged enum") => "a mapping with a `name:`".to_owned(),
        e if e.starts_with("an array of length ") => format!("a list of {} values", &e["an array of length ".len()..]),
        e if e.starts_with("a tuple of size ") || e.starts_with("tuple of ") => {
            let n: String = e.chars().filter(char::is_ascii_digit).collect();
            format!("a list of {n} values")
        }
        other => other.to_owned(),
    }
}

/// serde's description of a found value in a pipeline author's words.
fn found_in_words(found: &str) -> String {
    let quoted = |prefix: &str| found.strip_prefix(prefix).map(|r| r.trim_matches('`').to_owned());
    if let Some(n) = quoted("integer ").or_else(|| quoted("floating point ")) {
        return n;
    }
    if let Some(b) = quoted("boolean ") {
        return b;
    }
    if let Some(s) = found.strip_prefix("string ") {
        return format!("the text {s}");
    }
    match found {
        "sequence" => "a list".to_owned(),
        "map" => "a mapping".to_owned(),
        "unit value" | "null" => "nothing (null)".to_owned(),
        other => other.to_owned(),
    }
}

/// An "unknown key" issue, with the closest known key when one is close enough to be a typo.
fn unknown_key(key: &str, known: &[&str]) -> ConfigIssue {
    let issue = ConfigIssue::new(key, format!("unknown key `{key}`"));
    match crate::registry::closest(key, known.iter().copied()) {
        Some(best) => issue.with_help(format!("did you mean `{best}`?")),
        None => issue.with_help(format!("known keys: {}", known.join(", "))),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}
