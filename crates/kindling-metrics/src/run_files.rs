//! The files a training run leaves in its directory and other programs read back (a sweep
//! ranks trials by them, draws their curves and confusion matrices), each with one type that
//! both the writer and every reader go through:
//!
//! - `history.csv`: [`HistoryCsv`], one [`HistoryRow`] per epoch and split, built from the run's
//!   [`EpochRecord`]s;
//! - `metrics.json`: [`RunMetrics`] (with its format [`METRICS_VERSION`]), holding the
//!   [`EarlyStoppingResult`] and a [`PerClassReport`] per split;
//! - `confusion_<split>.csv`: [`ConfusionMatrix::to_csv`](crate::ConfusionMatrix::to_csv) and
//!   [`ConfusionMatrix::from_csv`](crate::ConfusionMatrix::from_csv).
//!
//! Nothing here opens files: callers read and write the text (the train stage through its run
//! directory's atomic writes).

mod history;
mod metrics_file;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

pub use history::{EpochRecord, HistoryCsv, HistoryRow, Measure, SplitMetrics};
pub use metrics_file::{EarlyStoppingResult, METRICS_VERSION, PerClassReport, RunMetrics};

/// A run file that does not parse.
#[derive(Debug, thiserror::Error)]
pub enum RunFileError {
    /// The CSV's header is not the one this version writes.
    #[error("the header is `{found}`, expected `{expected}`")]
    Header {
        /// The header read.
        found: String,
        /// The header written.
        expected: String,
    },
    /// A CSV line has a field that does not parse.
    #[error("line {line}: {message}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// The file is empty.
    #[error("the file is empty")]
    Empty,
    /// metrics.json is not valid JSON of its type.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// The file was written by a newer Kindling, in a format this one does not know.
    #[error("format version {found}, this Kindling reads up to {supported}; read it with a newer Kindling")]
    Version {
        /// The file's version.
        found: u32,
        /// The newest version known here.
        supported: u32,
    },
}

/// Entries keyed by name, in order: serialised as a JSON object whose keys keep that order
/// (class names in class order, splits headline first).
#[derive(Clone, Debug, PartialEq)]
pub struct Named<V>(pub Vec<(String, V)>);

impl<V> Default for Named<V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<V> Named<V> {
    /// The entry named `name`.
    pub fn get(&self, name: &str) -> Option<&V> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

impl<V: Serialize> Serialize for Named<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Named<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Entries<V> {
            type Value = Named<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    out.push(entry);
                }
                Ok(Named(out))
            }
        }
        deserializer.deserialize_map(Entries(std::marker::PhantomData))
    }
}

/// Reads a float that JSON wrote as `null` because it was not finite (serde_json writes NaN and
/// infinities so) back as NaN.
pub(crate) fn nan_if_null<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN))
}
