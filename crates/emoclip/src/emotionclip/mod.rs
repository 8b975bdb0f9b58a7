//! EmotionCLIP (Zhang et al., CVPR 2023): subject-aware frame encoder, temporal head, CLIP text encoder.
pub mod config;
pub mod model;
pub mod saam;
pub mod sap;
pub mod temporal;

pub use config::{EmotionClipConfig, SubjectMode, TemporalConfig, TemporalFusion};
pub use model::EmotionClip;
pub use temporal::VisualHead;
