//! MER-CLIP (Song & Cho, WACV 2025; seed 003): multimodal emotion recognition. So far: the safe pickle
//! reader for the MMSA feature files.
pub mod ablation;
pub mod bert_text;
pub mod config;
pub mod data;
pub mod decoder;
pub mod heads;
pub mod label_encoder;
pub mod metrics;
pub mod model;
pub mod pickle;
pub mod prompt;
pub mod train;

pub use config::{CmdActivation, CmdConfig, FeatureDims, MerConfig, MerTask, QUERY_WORDS};
pub use model::{read_clip_config, MerClip, MerInputs, MerOutputs, MODALITIES};
