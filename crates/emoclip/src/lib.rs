//! emoclip: EmotionCLIP (Zhang et al., CVPR 2023) and MER-CLIP in Rust on candle.
//!
//! Data flows one way: media → [`media`] preprocessing → [`emotionclip`] / [`clip`] encoders → embeddings.
pub mod error;
pub mod nn;
pub mod clip;
pub mod emotionclip;
pub mod weights;
pub mod tokenizer;
pub mod media;
pub mod embed;
pub mod output;
pub mod plot;
pub mod prep;
pub mod probe;
pub mod train;
pub mod text_emotion;
pub mod detect;
pub mod shards;
pub mod mer;

pub use error::{Error, Result};
