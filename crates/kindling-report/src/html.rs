//! report.html: one self-contained page (figures embedded as data URIs, no scripts or styles
//! fetched from anywhere) with a run's summary, figures, tables and configuration.

use std::fmt::Write as _;

use base64::Engine as _;

/// A PNG figure of the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figure {
    /// Heading above it.
    pub title: String,
    /// The PNG bytes.
    pub png: Vec<u8>,
}

/// A table of the page: a caption, a header row and rows of cells.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Table {
    /// Heading above it.
    pub title: String,
    /// Column names.
    pub header: Vec<String>,
    /// Cells, each row as long as the header.
    pub rows: Vec<Vec<String>>,
}

/// Everything the page shows, in order: summary, figures, tables, configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    /// The page title (the run's name).
    pub title: String,
    /// Key/value lines of the summary.
    pub summary: Vec<(String, String)>,
    /// Figures, in order.
    pub figures: Vec<Figure>,
    /// Tables, in order.
    pub tables: Vec<Table>,
    /// The resolved configuration, shown verbatim.
    pub config: Option<String>,
}

/// `s` with HTML's special characters escaped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1000px;padding:0 1em;color:#222}\
h1{margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}\
th{background:#f3f6fa}td:first-child,th:first-child{text-align:left}\
img{max-width:100%;border:1px solid #eee}pre{background:#f6f8fa;padding:1em;overflow:auto}";

/// Counts the figures the browser decoded into `body[data-images-rendered]`, so a headless
/// browser (or a person with devtools) can tell a page whose pictures all show from one whose
/// data is broken.
const SCRIPT: &str = "window.addEventListener('load',function(){var i=document.images,n=0;\
for(var k=0;k<i.length;k++){if(i[k].complete&&i[k].naturalWidth>0)n++;}\
document.body.setAttribute('data-images-rendered',n+'/'+i.length);});";

impl Page {
    /// The page as HTML.
    pub fn to_html(&self) -> String {
        let mut h = String::new();
        let title = escape(&self.title);
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>{title}: Kindling run report</title><style>{STYLE}</style><script>{SCRIPT}</script></head>\n<body>\n\
             <h1>{title}</h1>\n"
        );
        if !self.summary.is_empty() {
            h += "<h2>Summary</h2>\n<table>\n";
            for (k, v) in &self.summary {
                let _ = writeln!(h, "<tr><th>{}</th><td>{}</td></tr>", escape(k), escape(v));
            }
            h += "</table>\n";
        }
        let engine = base64::engine::general_purpose::STANDARD;
        for f in &self.figures {
            let t = escape(&f.title);
            let _ =
                writeln!(h, "<h2>{t}</h2>\n<img alt=\"{t}\" src=\"data:image/png;base64,{}\">", engine.encode(&f.png));
        }
        for t in &self.tables {
            let _ = writeln!(h, "<h2>{}</h2>\n<table>", escape(&t.title));
            h += "<tr>";
            for c in &t.header {
                let _ = write!(h, "<th>{}</th>", escape(c));
            }
            h += "</tr>\n";
            for row in &t.rows {
                h += "<tr>";
                for c in row {
                    let _ = write!(h, "<td>{}</td>", escape(c));
                }
                h += "</tr>\n";
            }
            h += "</table>\n";
        }
        if let Some(config) = &self.config {
            let _ = writeln!(h, "<h2>Configuration</h2>\n<pre>{}</pre>", escape(config));
        }
        h += "</body></html>\n";
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_embeds_figures_and_escapes_text() {
        let page = Page {
            title: "a<b>".into(),
            summary: vec![("valid accuracy".into(), "91.2%".into())],
            figures: vec![Figure { title: "Curves".into(), png: vec![0x89, b'P', b'N', b'G'] }],
            tables: vec![Table {
                title: "Per class".into(),
                header: vec!["class".into(), "f1".into()],
                rows: vec![vec!["T-shirt/top & co".into(), "0.9".into()]],
            }],
            config: Some("name: \"x\"\n".into()),
        };
        let html = page.to_html();
        assert!(html.contains("<h1>a&lt;b&gt;</h1>"));
        assert!(html.contains("src=\"data:image/png;base64,iVBORw==\""), "{html}");
        assert!(html.contains("<td>T-shirt/top &amp; co</td>"));
        assert!(html.contains("<pre>name: &quot;x&quot;\n</pre>"));
        assert!(!html.contains("http"), "nothing is fetched");
        assert_eq!(html.matches("<img").count(), 1);
    }
}
