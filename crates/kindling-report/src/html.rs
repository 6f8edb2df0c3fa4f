//! report.html: one self-contained page (figures embedded as data URIs, no scripts or styles
//! fetched from anywhere) with a run's summary, figures, tables and configuration.

use std::fmt::Write as _;

use base64::Engine as _;

use crate::chart::LineChart;
use crate::grid::ConfusionGrid;

/// A PNG figure of the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figure {
    /// Heading above it.
    pub title: String,
    /// The PNG bytes.
    pub png: Vec<u8>,
}

/// One cell of a [`Table`]: its text, and optionally a link, a hover text, a background colour
/// (CSS) and an alert style (a failure, say).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cell {
    /// What the cell shows.
    pub text: String,
    /// Where the text links to (a path relative to the page).
    pub link: Option<String>,
    /// Shown on hover.
    pub hint: Option<String>,
    /// A CSS colour behind the text.
    pub background: Option<String>,
    /// Drawn as a warning.
    pub alert: bool,
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Self { text, ..Self::default() }
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        text.to_owned().into()
    }
}

/// A table of the page: a caption, a header row and rows of cells.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Table {
    /// Heading above it.
    pub title: String,
    /// A sentence under the heading.
    pub note: Option<String>,
    /// Column names.
    pub header: Vec<String>,
    /// Cells, each row as long as the header.
    pub rows: Vec<Vec<Cell>>,
}

/// One part of the page under its own heading.
#[derive(Debug, Clone, PartialEq)]
pub enum Section {
    /// A PNG figure.
    Figure(Figure),
    /// A table.
    Table(Table),
    /// An SVG line chart.
    Chart(LineChart),
    /// Confusion matrices side by side.
    Confusions(ConfusionGrid),
}

/// What the page reports on, which its browser title says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PageKind {
    /// One training run (`runs/<pipeline>/<id>/report.html`).
    #[default]
    Run,
    /// A sweep's trials compared (`<sweep>/report.html`).
    Sweep,
}

/// Everything the page shows, in order: summary, sections, configuration.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page {
    /// The page title (the run's or the sweep's name).
    pub title: String,
    /// A run's page or a sweep's.
    pub kind: PageKind,
    /// Key/value lines of the summary.
    pub summary: Vec<(String, String)>,
    /// The figures, charts and tables, in order.
    pub sections: Vec<Section>,
    /// The resolved configuration, shown verbatim.
    pub config: Option<String>,
}

/// A background from red (0) through yellow to green (1), for cells shaded by how good a
/// score is.
pub fn score_shade(t: f64) -> String {
    format!("hsl({:.0}, 70%, 80%)", 120.0 * t.clamp(0.0, 1.0))
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
h1{margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}p.note{color:#555;margin:.3em 0}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}\
th{background:#f3f6fa}td:first-child,th:first-child{text-align:left}td.alert{color:#b00}\
img{max-width:100%;border:1px solid #eee}pre{background:#f6f8fa;padding:1em;overflow:auto}\
.scroll{overflow-x:auto}svg.chart{font-size:12px;max-width:100%;height:auto}svg .gridline{stroke:#eee}\
svg .frame{fill:none;stroke:#999}svg .tick{font-size:11px;fill:#444}svg .axis{font-size:13px}\
svg .series:hover polyline{stroke-width:4}\
table.grid>tbody>tr>td{vertical-align:top;text-align:left}.caption{font-size:.85em;margin-bottom:.2em}\
table.confusion td{text-align:center;font-size:.75em;padding:.15em .3em;min-width:1.8em}\
table.confusion th{font-size:.7em;font-weight:normal;padding:.15em .3em}\
table.confusion th.predicted{writing-mode:vertical-rl;transform:rotate(180deg);text-align:left}";

/// Reports on `body` what the browser actually laid out: `data-images-rendered` (figures
/// decoded), `data-ticks-rendered` (chart tick labels with a size) and
/// `data-class-names-rendered` (confusion-table class names with a size), each `shown/total`,
/// so a headless browser (or a person with devtools) can tell a page that shows everything from
/// one whose data is broken.
const SCRIPT: &str = "window.addEventListener('load',function(){var b=document.body;\
function count(list,shown,name){var n=0;for(var k=0;k<list.length;k++){if(shown(list[k]))n++;}\
b.setAttribute(name,n+'/'+list.length);}\
count(document.images,function(i){return i.complete&&i.naturalWidth>0;},'data-images-rendered');\
count(document.querySelectorAll('svg.chart .tick'),function(t){var r=t.getBBox();return r.width>0&&r.height>0;},'data-ticks-rendered');\
count(document.querySelectorAll('table.confusion th.class'),function(t){return t.textContent.length>0&&t.offsetWidth>0&&t.offsetHeight>0;},'data-class-names-rendered');});";

fn heading(h: &mut String, title: &str, note: Option<&String>) {
    let _ = writeln!(h, "<h2>{}</h2>", escape(title));
    if let Some(note) = note {
        let _ = writeln!(h, "<p class=\"note\">{}</p>", escape(note));
    }
}

fn table_html(h: &mut String, t: &Table) {
    heading(h, &t.title, t.note.as_ref());
    h.push_str("<table>\n<tr>");
    for c in &t.header {
        let _ = write!(h, "<th>{}</th>", escape(c));
    }
    h.push_str("</tr>\n");
    for row in &t.rows {
        h.push_str("<tr>");
        for c in row {
            h.push_str("<td");
            if c.alert {
                h.push_str(" class=\"alert\"");
            }
            if let Some(bg) = &c.background {
                let _ = write!(h, " style=\"background:{}\"", escape(bg));
            }
            if let Some(hint) = &c.hint {
                let _ = write!(h, " title=\"{}\"", escape(hint));
            }
            let text = escape(&c.text);
            match &c.link {
                Some(link) => {
                    let _ = write!(h, "><a href=\"{}\">{text}</a></td>", escape(link));
                }
                None => {
                    let _ = write!(h, ">{text}</td>");
                }
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
}

impl Page {
    /// The page as HTML.
    pub fn to_html(&self) -> String {
        let mut h = String::new();
        let title = escape(&self.title);
        let kind = match self.kind {
            PageKind::Run => "run",
            PageKind::Sweep => "sweep",
        };
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>{title}: Kindling {kind} report</title><style>{STYLE}</style><script>{SCRIPT}</script></head>\n<body>\n\
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
        for section in &self.sections {
            match section {
                Section::Figure(f) => {
                    let t = escape(&f.title);
                    let _ = writeln!(
                        h,
                        "<h2>{t}</h2>\n<img alt=\"{t}\" src=\"data:image/png;base64,{}\">",
                        engine.encode(&f.png)
                    );
                }
                Section::Table(t) => table_html(&mut h, t),
                Section::Chart(c) => {
                    heading(&mut h, &c.title, c.note.as_ref());
                    h += &c.to_svg();
                }
                Section::Confusions(g) => {
                    heading(&mut h, &g.title, g.note.as_ref());
                    let _ = writeln!(h, "<div class=\"scroll\">{}</div>", g.to_html());
                }
            }
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
            sections: vec![
                Section::Figure(Figure { title: "Curves".into(), png: vec![0x89, b'P', b'N', b'G'] }),
                Section::Table(Table {
                    title: "Per class".into(),
                    header: vec!["class".into(), "f1".into()],
                    rows: vec![
                        vec!["T-shirt/top & co".into(), "0.9".into()],
                        vec![
                            Cell { text: "t01".into(), link: Some("trials/t01/config.yaml".into()), ..Cell::default() },
                            Cell {
                                text: "failed".into(),
                                hint: Some("NaN <loss>".into()),
                                alert: true,
                                ..Cell::default()
                            },
                        ],
                    ],
                    ..Table::default()
                }),
            ],
            config: Some("name: \"x\"\n".into()),
            ..Page::default()
        };
        let html = page.to_html();
        assert!(html.contains("<h1>a&lt;b&gt;</h1>"));
        assert!(html.contains("src=\"data:image/png;base64,iVBORw==\""), "{html}");
        assert!(html.contains("<td>T-shirt/top &amp; co</td>"));
        assert!(html.contains("<pre>name: &quot;x&quot;\n</pre>"));
        assert!(!html.contains("http"), "nothing is fetched");
        assert_eq!(html.matches("<img").count(), 1);
        assert!(html.contains("<title>a&lt;b&gt;: Kindling run report</title>"));
        assert!(html.contains("<td><a href=\"trials/t01/config.yaml\">t01</a></td>"), "{html}");
        assert!(html.contains("<td class=\"alert\" title=\"NaN &lt;loss&gt;\">failed</td>"), "{html}");
    }
}
