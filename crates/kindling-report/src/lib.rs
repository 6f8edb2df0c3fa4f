//! What a training run leaves for people to look at, drawn without any installed fonts or
//! browsers: PNG figures made with plotters and a self-contained HTML page.
//!
//! - [`curves_png`]: loss, accuracy and learning rate per epoch, the kept epoch marked;
//! - [`confusion_png`]: a confusion matrix as a heat map with class names and counts;
//! - [`gallery_png`]: a grid of samples with captions (the worst mistakes of a run);
//! - [`Page`]: report.html, with the figures embedded.
//!
//! ```
//! use kindling_metrics::ConfusionMatrix;
//! let cm = ConfusionMatrix::from_predictions(2, &[0, 1, 1], &[0, 1, 0]);
//! let png = kindling_report::confusion_png(&cm, &["no".into(), "yes".into()], "valid").unwrap();
//! assert_eq!(&png[1..4], b"PNG");
//! let page = kindling_report::Page {
//!     title: "demo".into(),
//!     figures: vec![kindling_report::Figure { title: "Confusion".into(), png }],
//!     ..Default::default()
//! };
//! assert!(page.to_html().contains("data:image/png;base64,"));
//! ```
//!
//! Text is drawn with 8x8 bitmap glyphs ([`text::BitmapText`]), so the figures are the same on
//! every machine.

mod html;
mod plot;
pub mod text;

pub use html::{Figure, Page, Table, escape};
pub use plot::{
    DrawError, EpochPoint, GalleryItem, Thumbnail, blues, confusion_png, curves_png, encode_png, gallery_png, heat,
};
