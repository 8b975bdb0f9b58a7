//! EmotionCLIP pre-training (paper §3.4, appendix B.2): SNCE loss, fused AdamW, schedules, parameter groups, data, loop, checkpoints.
pub mod adamw;
pub mod param_groups;
pub mod schedule;
pub mod snce;

pub use adamw::{AdamW, ParamGroup};
pub use param_groups::{param_groups, GroupPreset, OFFICIAL, PAPER};
pub use schedule::LrSchedule;
pub use snce::{clip_loss, emotion_weights, snce_loss, EmotionWeights, SnceConfig};
pub mod checkpoint;
pub mod data;
pub mod distributed;
pub mod rendezvous;
pub mod trainer;
pub use trainer::{StepMetrics, TrainConfig, Trainer};
