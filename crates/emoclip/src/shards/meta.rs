//! The schema of a training sample's `json` member, written by `emoclip prepare` (`prep::pipeline`) and read
//! by the trainer (`train::data::ShardDataset`); the other members are `frameNNN.jpg`.
use serde::{Deserialize, Serialize};

/// Metadata stored as the `json` member of each sample.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SampleMeta {
    pub video_id: String,
    pub start: f64,
    pub end: f64,
    pub text: String,
    pub emotion_labels: Vec<String>,
    pub emotion_logits: Vec<f32>,
    pub neutral: f32,
    pub fps: f64,
    /// Time (s) of each stored frame.
    pub frame_times: Vec<f64>,
    /// Person boxes per stored frame, `[x1, y1, x2, y2, conf]` in original-frame pixels.
    pub boxes: Vec<Vec<[f32; 5]>>,
    pub frame_size: [u32; 2],
}
