//! MER-CLIP (Song & Cho, WACV 2025): multimodal emotion recognition on CMU-MOSI / CMU-MOSEI. The MMSA feature
//! files ([`pickle`], [`data`]), the model (emotion query [`prompt`], label embeddings [`label_encoder`],
//! cross-modal [`decoder`], [`heads`]: [`model`]), training and evaluation ([`train`], [`metrics`]) and the
//! query-word ablation ([`ablation`]).
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
