//! `emoclip embed` / `similarity`: inputs expanded from files and folders, the batch loop with progress and
//! per-item failures, the feature cache, and zero-shot scoring; the model work is [`crate::encoder`]'s.
pub mod batch;
pub mod cache;
pub mod inputs;
pub mod zero_shot;

pub use batch::{EmbedEvent, Embedded, Failure, OutsideBoxes};
pub use cache::FeatureCache;
pub use inputs::{boxes_beside, expand_inputs};
