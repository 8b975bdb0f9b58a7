//! Official-release dataset adapters for the linear probe (EmotionCLIP `linear_eval.py`, reference.md §8): each
//! reads one dataset's own layout and yields the [`Manifest`]s the generic probe ([`super::eval`]) evaluates.
pub mod bold;
pub mod emotic;
pub mod liris;
pub mod meld;
pub mod moviegraphs;

use super::eval::EvalOptions;
use super::manifest::Manifest;

/// One probe the paper reports for a dataset (BoLD has two: 26 categories and VAD regression).
#[derive(Debug, Clone)]
pub struct DatasetTask {
    /// Dataset and task, e.g. `bold/categories`, `bold/vad`, `meld/emotion`.
    pub name: String,
    /// Items, labels and splits read from the official layout.
    pub manifest: Manifest,
    /// Dataset-specific evaluation settings (official C, Savitzky–Golay smoothing, ...).
    pub options: EvalOptions,
}
