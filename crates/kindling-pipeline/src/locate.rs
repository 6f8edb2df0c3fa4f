//! Finding the line and column of a dotted path in block-style YAML source.
//!
//! serde gives positions only for syntax errors, and a stage's `with:` block is checked after
//! parsing, so this walks the text itself. It understands block mappings and sequences (what
//! pipelines are written in); inside flow style (`{a: 1}`) it stops at the deepest key it found.

use kindling_core::{PathStep as Step, path_steps as steps};

/// A line's structure: where its content starts once any `- ` sequence markers are stripped.
struct Line<'a> {
    /// Column of each `- ` marker on the line.
    dashes: Vec<usize>,
    /// Column where the content starts.
    col: usize,
    content: &'a str,
}

fn parse_line(text: &str) -> Option<Line<'_>> {
    let mut col = text.len() - text.trim_start().len();
    let mut rest = text.trim_start();
    if rest.is_empty() || rest.starts_with('#') {
        return None;
    }
    let mut dashes = Vec::new();
    while rest == "-" || rest.starts_with("- ") {
        dashes.push(col);
        let after = &rest[1..];
        let skip = after.len() - after.trim_start().len();
        col += 1 + skip;
        rest = after.trim_start();
    }
    Some(Line { dashes, col, content: rest })
}

/// The 1-based (line, column) where `path` is written in `src`, or of its deepest written
/// ancestor; `None` when not even the first step is found.
pub fn locate(src: &str, path: &str) -> Option<(usize, usize)> {
    let lines: Vec<Option<Line<'_>>> = src.lines().map(parse_line).collect();
    // The search window: lines [from, to) and the minimum column of the container's children.
    let (mut from, mut to, mut min_col) = (0, lines.len(), 0);
    let mut found = None;
    // Where a sequence item begins on a line that also holds content (`- stage: x`).
    let mut item_col: Option<usize> = None;
    for step in steps(path) {
        // (line, column of the value's start, column at or left of which the value's block ends)
        let hit = match step {
            Step::Key(key) => {
                // Keys of this mapping sit at one column: the item's content column, or the
                // column of the window's first line.
                let level = item_col.or_else(|| (from..to).find_map(|i| lines[i].as_ref().map(|l| l.col)));
                (from..to).find_map(|i| {
                    let l = lines[i].as_ref()?;
                    let own_line = l.dashes.is_empty() || (item_col.is_some() && i == from);
                    let is_key = l.content.strip_prefix(key).is_some_and(|r| r.starts_with(':'));
                    (Some(l.col) == level && own_line && is_key).then_some((i, l.col, l.col))
                })
            }
            Step::Index(n) => {
                let mut seen = 0;
                // The list's items sit at the column of its first `- `; deeper dashes belong
                // to lists inside the items.
                let mut item_dash: Option<usize> = None;
                (from..to).find_map(|i| {
                    let l = lines[i].as_ref()?;
                    let dash = l.dashes.iter().position(|&d| d >= min_col)?;
                    let col = *item_dash.get_or_insert(l.dashes[dash]);
                    if l.dashes[dash] != col {
                        return None;
                    }
                    if seen == n {
                        let content = l.dashes.get(dash + 1).copied().unwrap_or(l.col);
                        return Some((i, content, l.dashes[dash]));
                    }
                    seen += 1;
                    None
                })
            }
        };
        let Some((line, col, edge)) = hit else { break };
        found = Some((line + 1, col + 1));
        // The value's block: following lines indented deeper than this key or item.
        let end = (line + 1..to)
            .find(|&i| lines[i].as_ref().is_some_and(|l| l.dashes.first().copied().unwrap_or(l.col) <= edge))
            .unwrap_or(to);
        match step {
            Step::Index(_) => {
                // Content on the dash's own line belongs to the item.
                item_col = Some(col);
                from = line;
            }
            Step::Key(_) => {
                item_col = None;
                from = line + 1;
            }
        }
        min_col = edge + 1;
        to = end;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "\
name: demo
stages:
  - stage: idx_dataset
    with:
      train_images: a.gz
  # a comment
  - stage: train
    with:
      epochs: 3
      optimizer:
        name: adam
        lrr: 0.1
      flow: {a: 1}
";

    #[test]
    fn block_paths_are_found_where_they_are_written() {
        let check = |path, expected| assert_eq!(locate(SRC, path), expected, "{path}");
        check("name", Some((1, 1)));
        check("stages[0].stage", Some((3, 5)));
        check("stages[1].stage", Some((7, 5)));
        check("stages[1].with.epochs", Some((9, 7)));
        check("stages[1].with.optimizer.lrr", Some((12, 9)));
        check("stages[0].with.train_images", Some((5, 7)));
        // Items of a list inside an item are not items of the outer list.
        let nested = "stages:\n  - stage: a\n    with:\n      t:\n        - x\n        - y\n  - stage: b\n";
        assert_eq!(locate(nested, "stages[1].stage"), Some((7, 5)));
        assert_eq!(locate(nested, "stages[0].with.t[1]"), Some((6, 11)));
        // Inside flow style, the deepest written ancestor.
        check("stages[1].with.flow.a", Some((13, 7)));
        check("nothing", None);
    }
}
