//! emoclip: EmotionCLIP (Zhang et al., CVPR 2023) and MER-CLIP in Rust on candle.
//!
//! Data flows one way: media → [`media`] preprocessing → [`emotionclip`] / [`clip`] encoders → embeddings.
pub mod clip;
pub mod detect;
pub mod embed;
pub mod emotionclip;
pub mod error;
pub mod hash;
pub mod media;
pub mod mer;
pub mod nn;
pub mod optim;
pub mod output;
pub mod plot;
pub mod prep;
pub mod probe;
pub mod rng;
pub mod run;
pub mod shards;
pub mod text_emotion;
pub mod tokenizer;
pub mod train;
pub mod weights;

pub use error::{Error, Result};
