//! The little CSV the run files need: fields quoted when they hold a comma, a quote or a line
//! break, and split back the same way.

/// `s` as one CSV field: quoted (quotes doubled) when it holds a comma, a quote or a line break.
pub(crate) fn field(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_owned() }
}

/// The fields of one CSV line, quotes undone (the inverse of joining [`field`]s with commas).
pub(crate) fn split(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        let last = out.len() - 1;
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                out[last].push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(String::new()),
            c => out[last].push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_through_quoting() {
        let fields = ["plain", "a,b", "say \"hi\"", "", "T-shirt/top"];
        let line: Vec<String> = fields.iter().map(|f| field(f)).collect();
        assert_eq!(line.join(","), "plain,\"a,b\",\"say \"\"hi\"\"\",,T-shirt/top");
        assert_eq!(split(&line.join(",")), fields);
    }
}
