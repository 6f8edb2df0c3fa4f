//! Reading and parsing pipeline source text within fixed limits, so that no file, however
//! crafted, makes validation slow or unbounded in memory.
//!
//! The YAML parser underneath takes time that grows faster than quadratically with unclosed
//! flow nesting (`[[[[...`: 40,000 levels took 4 s, 80,000 took 21 s), and would read a file
//! of any size into memory. Pipeline files are small and shallow, so both are bounded before
//! the parser sees the text: a file over [`MAX_BYTES`] or nested more than [`MAX_DEPTH`]
//! levels is refused with a message saying which limit it broke and where.

use std::io::Read;
use std::path::Path;

use kindling_core::ConfigIssue;
use serde_yaml::Value;

/// The largest pipeline (or sweep) file accepted: 1 MiB, far above any real pipeline.
pub const MAX_BYTES: u64 = 1 << 20;

/// The deepest flow nesting (`[`/`{`) accepted. The YAML deserialiser refuses anything
/// nested deeper than 128 levels in any style; real pipelines nest fewer than ten.
pub const MAX_DEPTH: usize = 64;

/// Reads a pipeline or sweep file, refusing one larger than [`MAX_BYTES`] without reading it
/// all.
pub fn read_source(path: &Path) -> Result<String, ConfigIssue> {
    let file = std::fs::File::open(path).map_err(|e| ConfigIssue::new("", format!("cannot read the file: {e}")))?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(ConfigIssue::new("", "this is a directory, not a pipeline file"));
    }
    let mut bytes = Vec::new();
    file.take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ConfigIssue::new("", format!("cannot read the file: {e}")))?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(too_large());
    }
    String::from_utf8(bytes).map_err(|e| {
        ConfigIssue::new("", format!("not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to()))
    })
}

/// Parses YAML text after checking it against [`MAX_BYTES`] and [`MAX_DEPTH`]; a syntax error
/// carries the parser's line and column.
pub fn parse_yaml(src: &str) -> Result<Value, ConfigIssue> {
    if src.len() as u64 > MAX_BYTES {
        return Err(too_large());
    }
    if let Some((line, column)) = too_deep(src) {
        let mut issue = ConfigIssue::new("", format!("nested more than {MAX_DEPTH} levels deep"))
            .with_help("pipeline files nest a few levels; this looks like a damaged or generated file");
        issue.location = Some((line, column));
        return Err(issue);
    }
    serde_yaml::from_str(src).map_err(|e| {
        let mut issue = ConfigIssue::new("", format!("not valid YAML: {e}"));
        issue.location = e.location().map(|l| (l.line(), l.column()));
        issue
    })
}

fn too_large() -> ConfigIssue {
    ConfigIssue::new("", format!("larger than {} KiB, the limit for a pipeline file", MAX_BYTES / 1024))
}

/// The 1-based line and column of the first flow bracket that opens level `MAX_DEPTH + 1`,
/// counting brackets outside quoted scalars and comments. Brackets inside plain scalars
/// (`a[0]`) are counted too, which can only overstate the depth of a file that already
/// balances them.
fn too_deep(src: &str) -> Option<(usize, usize)> {
    let mut depth = 0usize;
    for (l, line) in src.lines().enumerate() {
        let mut quote: Option<char> = None;
        let mut prev = ' ';
        let mut chars = line.chars().enumerate().peekable();
        while let Some((c, ch)) = chars.next() {
            match (quote, ch) {
                (Some('"'), '\\') => {
                    chars.next();
                }
                (Some(q), _) if ch == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') => quote = Some(ch),
                (None, '#') if prev.is_whitespace() => break,
                (None, '[' | '{') => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Some((l + 1, c + 1));
                    }
                }
                (None, ']' | '}') => depth = depth.saturating_sub(1),
                _ => {}
            }
            prev = ch;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn deep_flow_nesting_is_refused_at_the_bracket_that_crosses_the_limit() {
        let src = format!("name: x\nstages: {}", "[".repeat(200_000));
        let started = Instant::now();
        let issue = parse_yaml(&src).unwrap_err();
        assert!(started.elapsed().as_secs_f64() < 1.0, "took {:?}", started.elapsed());
        assert_eq!(issue.location, Some((2, 9 + MAX_DEPTH)));
        assert!(issue.message.contains("nested more than 64"), "{}", issue.message);
    }

    #[test]
    fn brackets_in_quotes_and_comments_do_not_count_and_shallow_files_parse() {
        let deep = "[".repeat(100);
        let src = format!("a: \"{deep}\"\nb: '{deep}'\nc: [1, {{d: [2]}}] # {deep}\ne: \"\\\"{deep}\"\n");
        let doc = parse_yaml(&src).unwrap();
        assert_eq!(doc["a"].as_str(), Some(deep.as_str()));
        assert!(parse_yaml(&format!("x: {}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH))).is_ok());
    }

    #[test]
    fn oversized_files_are_refused_before_they_are_read_whole() {
        let dir = std::env::temp_dir().join(format!("kindling-source-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let big = dir.join("big.yaml");
        std::fs::write(&big, "# x\n".repeat((MAX_BYTES / 4 + 1) as usize)).unwrap();
        assert!(read_source(&big).unwrap_err().message.contains("larger than 1024 KiB"));
        assert!(read_source(&dir).unwrap_err().message.contains("directory"));
        std::fs::write(&big, b"name: \xff\n").unwrap();
        assert!(read_source(&big).unwrap_err().message.contains("not UTF-8"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn syntax_errors_keep_their_location_and_alias_bombs_are_refused() {
        let issue = parse_yaml("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(issue.location.is_some());
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10u8 {
            let (name, prev) = ((b'a' + i) as char, (b'a' + i - 1) as char);
            let refs = vec![format!("*{prev}"); 10].join(", ");
            bomb.push_str(&format!("{name}: &{name} [{refs}]\n"));
        }
        let started = Instant::now();
        assert!(parse_yaml(&bomb).is_err());
        assert!(started.elapsed().as_secs_f64() < 1.0);
    }
}
