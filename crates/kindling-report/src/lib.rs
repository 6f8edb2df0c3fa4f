//! What training runs and sweeps leave for people to look at, drawn without any installed fonts
//! or browsers: PNG figures made with plotters, SVG charts and a self-contained HTML page.
//!
//! - [`curves_png`]: loss, accuracy and learning rate per epoch, the kept epoch marked;
//! - [`confusion_png`]: a confusion matrix as a heat map with class names and counts;
//! - [`gallery_png`]: a grid of samples with captions (the worst mistakes of a run);
//! - [`LineChart`]: many series (a sweep's trials) over shared axes with ticks and a legend, as
//!   inline SVG;
//! - [`ConfusionGrid`] and [`confusion_table`]: confusion matrices as HTML tables with class
//!   names, side by side;
//! - [`Page`]: report.html (a run's or a sweep's), one style for both, its [`Section`]s in
//!   order and the figures embedded.
//!
//! The crate decides how things look; what to show (which runs, which numbers) is the caller's.
//!
//! ```
//! use kindling_metrics::ConfusionMatrix;
//! let cm = ConfusionMatrix::from_predictions(2, &[0, 1, 1], &[0, 1, 0]);
//! let png = kindling_report::confusion_png(&cm, &["no".into(), "yes".into()], "valid").unwrap();
//! assert_eq!(&png[1..4], b"PNG");
//! let page = kindling_report::Page {
//!     title: "demo".into(),
//!     sections: vec![kindling_report::Section::Figure(kindling_report::Figure { title: "Confusion".into(), png })],
//!     ..Default::default()
//! };
//! assert!(page.to_html().contains("data:image/png;base64,"));
//! ```
//!
//! Text is drawn with 8x8 bitmap glyphs ([`text::BitmapText`]), so the figures are the same on
//! every machine.

mod chart;
mod grid;
mod html;
mod plot;
pub mod text;

pub use chart::{LineChart, PALETTE, Series};
pub use grid::{ConfusionCell, ConfusionGrid, confusion_table};
pub use html::{Cell, Figure, Page, PageKind, Section, Table, escape, score_shade};
pub use plot::{
    DrawError, EpochPoint, GalleryItem, Thumbnail, blues, confusion_png, curves_png, encode_png, gallery_png, heat,
    lines_png, lr_find_png,
};
