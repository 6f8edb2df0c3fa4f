//! The epochs of a run: the `history` artifact, and `history.csv`, written through
//! [`HistoryCsv`] (kindling-metrics), the type sweeps read it back with.

use kindling_core::Artifact;
use kindling_metrics::run_files::HistoryCsv;
pub use kindling_metrics::run_files::{EpochRecord, SplitMetrics};

/// The epochs of a run so far.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// The epochs, in order.
    pub epochs: Vec<EpochRecord>,
}

impl Artifact for History {
    const KIND: &'static str = "history";
}

impl History {
    /// `history.csv`: one row per epoch and split, `epoch,split,loss,accuracy,lr,seconds`.
    pub fn to_csv(&self) -> String {
        HistoryCsv::from_epochs(&self.epochs).to_csv()
    }
}
