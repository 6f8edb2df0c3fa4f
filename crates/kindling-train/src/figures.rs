//! What a finished run leaves for people: curves.png, `confusion_<split>.png`, misclassified.png
//! and report.html (drawn by `kindling-report`).
//!
//! The figures come after metrics.json and the model are safely written: a figure that cannot
//! be drawn is a warning, never the loss of a finished run.

use kindling_core::{Split, StageError, StageIo};
use kindling_metrics::ConfusionMatrix;
use kindling_metrics::diagnostics::Diagnostics;
use kindling_report::{Cell, EpochPoint, Figure, GalleryItem, Page, Section, Table, Thumbnail};

use crate::evaluation::Mistake;
use crate::history::History;

/// How many mistakes misclassified.png shows.
pub(crate) const GALLERY: usize = 24;

/// The misclassified samples of one split, most confident first.
pub(crate) struct Gallery<'a> {
    /// Which split ("test", "valid" or "train").
    pub split_name: &'static str,
    /// Its samples.
    pub split: &'a Split,
    /// Its mistakes, most confident first.
    pub mistakes: Vec<Mistake>,
    /// The shape of one sample.
    pub shape: [usize; 3],
}

/// Everything the figures and the page are drawn from.
pub(crate) struct RunFigures<'a> {
    /// The epochs run.
    pub history: &'a History,
    /// The epoch whose weights were kept when early stopping chose one, and how to label it.
    pub kept: Option<(usize, String)>,
    /// Class names.
    pub classes: &'a [String],
    /// Confusion matrices after training, by split, headline split first.
    pub confusions: Vec<(&'static str, ConfusionMatrix)>,
    /// The mistakes to show.
    pub gallery: Option<Gallery<'a>>,
    /// The run's summary lines.
    pub summary: Vec<(String, String)>,
    /// What the diagnostics found, when they ran.
    pub diagnostics: Option<&'a Diagnostics>,
}

/// The findings as a table; "no findings" as its note when there are none.
fn diagnostics_table(d: &Diagnostics) -> Table {
    let epochs = |e: &[usize]| match e {
        [] => "-".to_owned(),
        [one] => one.to_string(),
        [first, .., last] if last - first + 1 == e.len() => format!("{first}-{last}"),
        _ => e.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
    };
    Table {
        title: "Diagnostics".into(),
        header: ["finding", "epochs", "evidence", "next step"].map(String::from).to_vec(),
        rows: d
            .findings
            .iter()
            .map(|f| {
                vec![
                    f.kind.title().into(),
                    epochs(&f.epochs).into(),
                    f.evidence.clone().into(),
                    f.advice.clone().into(),
                ]
            })
            .collect(),
        note: d.findings.is_empty().then(|| {
            "No findings: no prediction collapse, divergence, loss spikes, exploding or vanishing gradients, \
             stalled loss, dead units, overfitting, class imbalance, missing classes or duplicates across splits."
                .to_owned()
        }),
    }
}

fn points(history: &History) -> Vec<EpochPoint> {
    history
        .epochs
        .iter()
        .map(|e| EpochPoint {
            epoch: e.epoch,
            train_loss: e.train.loss,
            train_accuracy: e.train.accuracy,
            valid_loss: e.valid.map(|v| v.loss),
            valid_accuracy: e.valid.map(|v| v.accuracy),
            lr: e.lr,
        })
        .collect()
}

fn gallery_items(g: &Gallery<'_>, classes: &[String]) -> Result<Vec<GalleryItem>, String> {
    let [c, h, w] = g.shape;
    let name = |i: u32| classes.get(i as usize).map_or_else(|| i.to_string(), Clone::clone);
    g.mistakes
        .iter()
        .take(GALLERY)
        .map(|m| {
            let mut values = vec![0.0; c * h * w];
            g.split.sample_into(m.index, &mut values)?;
            Ok(GalleryItem {
                thumbnail: Thumbnail { channels: c, height: h, width: w, values },
                caption: vec![
                    format!("true: {}", name(m.truth)),
                    format!("pred: {}", name(m.predicted)),
                    format!("p={:.2}  #{}", m.confidence, m.index),
                ],
            })
        })
        .collect()
}

fn per_class_table(split: &str, cm: &ConfusionMatrix, classes: &[String]) -> Table {
    let report = cm.report();
    let row = |name: &str, m: &kindling_metrics::ClassMetrics| -> Vec<Cell> {
        vec![
            name.into(),
            format!("{:.4}", m.precision).into(),
            format!("{:.4}", m.recall).into(),
            format!("{:.4}", m.f1).into(),
            m.support.to_string().into(),
        ]
    };
    let mut rows: Vec<Vec<Cell>> =
        report.classes.iter().enumerate().map(|(i, m)| row(classes.get(i).map_or("?", String::as_str), m)).collect();
    rows.push(row("macro avg", &report.macro_avg));
    rows.push(row("weighted avg", &report.weighted_avg));
    Table {
        title: format!("Per class ({split}, accuracy {:.2}%)", 100.0 * report.accuracy),
        header: ["class", "precision", "recall", "f1", "support"].map(String::from).to_vec(),
        rows,
        note: None,
    }
}

fn history_table(history: &History) -> Table {
    let cell = |v: Option<f64>, pct: bool| -> Cell {
        v.map_or_else(|| "-".to_owned(), |v| if pct { format!("{:.2}%", 100.0 * v) } else { format!("{v:.4}") }).into()
    };
    Table {
        title: "Epochs".into(),
        header: ["epoch", "train loss", "train acc", "valid loss", "valid acc", "lr", "seconds"]
            .map(String::from)
            .to_vec(),
        rows: history
            .epochs
            .iter()
            .map(|e| {
                vec![
                    e.epoch.to_string().into(),
                    cell(Some(e.train.loss), false),
                    cell(Some(e.train.accuracy), true),
                    cell(e.valid.map(|v| v.loss), false),
                    cell(e.valid.map(|v| v.accuracy), true),
                    format!("{}", e.lr).into(),
                    format!("{:.1}", e.train_seconds + e.valid_seconds).into(),
                ]
            })
            .collect(),
        note: None,
    }
}

/// Draws the figures into the run directory and writes report.html. Drawing problems are
/// warnings; only failing to write a file is an error.
pub(crate) fn write(io: &StageIo<'_>, f: &RunFigures<'_>) -> Result<(), StageError> {
    let mut sections: Vec<Section> = f.diagnostics.map(|d| Section::Table(diagnostics_table(d))).into_iter().collect();
    let mut keep = |file: String, title: String, png: Result<Vec<u8>, String>| -> Result<(), StageError> {
        match png {
            Ok(png) => {
                io.run_dir.write(&file, &png).map_err(|e| StageError::io(io.run_dir.path().join(&file), e))?;
                sections.push(Section::Figure(Figure { title, png }));
            }
            Err(e) => eprintln!("warning: {file} not drawn: {e}"),
        }
        Ok(())
    };
    if !f.history.epochs.is_empty() {
        let kept = f.kept.as_ref().map(|(e, label)| (*e, label.as_str()));
        let png = kindling_report::curves_png(&points(f.history), kept).map_err(|e| e.to_string());
        keep("curves.png".into(), "Learning curves".into(), png)?;
    }
    for (split, cm) in &f.confusions {
        let png = kindling_report::confusion_png(cm, f.classes, split).map_err(|e| e.to_string());
        keep(format!("confusion_{split}.png"), format!("Confusion matrix ({split})"), png)?;
    }
    if let Some(g) = &f.gallery {
        let title = format!(
            "Most confident mistakes on {} ({} of {})",
            g.split_name,
            g.mistakes.len().min(GALLERY),
            g.mistakes.len()
        );
        let png = gallery_items(g, f.classes)
            .and_then(|items| kindling_report::gallery_png(&title, &items).map_err(|e| e.to_string()));
        keep("misclassified.png".into(), title, png)?;
    }
    if let Some((split, cm)) = f.confusions.first() {
        sections.push(Section::Table(per_class_table(split, cm, f.classes)));
    }
    sections.push(Section::Table(history_table(f.history)));
    let title = io.run_dir.path().file_name().map_or_else(|| "run".to_owned(), |n| n.to_string_lossy().into_owned());
    let page = Page {
        title,
        kind: kindling_report::PageKind::Run,
        summary: f.summary.clone(),
        sections,
        config: std::fs::read_to_string(io.run_dir.path().join("config.yaml")).ok(),
    };
    io.run_dir
        .write("report.html", page.to_html().as_bytes())
        .map(drop)
        .map_err(|e| StageError::io(io.run_dir.path().join("report.html"), e))
}
