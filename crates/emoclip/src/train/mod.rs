//! EmotionCLIP pre-training (paper §3.4, appendix B.2): SNCE loss, parameter groups, data, loop, checkpoints.
//! The optimiser and schedules are [`crate::optim`]'s.
pub mod param_groups;
pub mod snce;

pub use param_groups::{param_groups, GroupPreset, OFFICIAL, PAPER};
pub use snce::{clip_loss, emotion_weights, snce_loss, EmotionWeights, SnceConfig};
pub mod config;
pub mod data;
pub mod distributed;
pub mod rendezvous;
pub mod trainer;
/// For `emoclip-cli/src/bench.rs`, written against this path; use [`crate::optim::AdamW`].
pub use crate::optim::AdamW;
pub use config::TrainConfig;
pub use trainer::{StepMetrics, Trainer};
