//! MER-CLIP (Song & Cho, WACV 2025; seed 003): multimodal emotion recognition. So far: the safe pickle
//! reader for the MMSA feature files.
pub mod pickle;
pub mod data;
pub mod bert_text;
pub mod metrics;
pub mod train;
pub mod ablation;
pub mod config;
pub mod prompt;
pub mod label_encoder;
pub mod attention;
pub mod cmd;
pub mod heads;
pub mod model;

pub use config::{CmdActivation, CmdConfig, FeatureDims, MerConfig, MerTask, QUERY_WORDS};
pub use model::{read_clip_config, MerClip, MerInputs, MerOutputs, MODALITIES};
