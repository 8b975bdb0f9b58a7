//! emoclip: EmotionCLIP (Zhang et al., CVPR 2023) and MER-CLIP in Rust on candle.
//!
//! # Flow
//! ```text
//! videos + captions ─ prep ─▶ shards ─ train ─▶ run (ckpt-<step>/) ─▶ weights ─┬─ embed ─▶ vectors, zero-shot scores
//!                                                                              ├─ probe ─▶ linear-probe reports, saved heads
//!                                                                              └─ analyze
//! MMSA feature files ─ mer ─▶ run (ckpt-<step>/, best/) ─▶ test scores
//! ```
//! [`prep`] turns videos and closed captions into WebDataset [`shards`] (the contract between preparation and
//! training: [`shards::SampleMeta`]); [`train`] streams them into EmotionCLIP pre-training, writing a run
//! directory ([`run`]); [`weights`] opens that checkpoint (or an open_clip / Hugging Face one), [`encoder`] turns
//! media and text into vectors, which [`embed`] writes and scores, [`probe`] evaluates with linear probes and
//! [`analyze`] lays out per window and person, scoring with prompts and the [`head`]s `probe` saves. [`mer`] trains MER-CLIP on
//! CMU-MOSI / CMU-MOSEI features through the same [`run`] and [`optim`] layers.
//!
//! # Layers
//! Dependencies point down only; a feature never imports another feature's modules.
//! ```text
//! features  prep · train · mer · probe · embed · analyze
//! shared    encoder · head · labels · probability · shards · run · optim · rng · hash · output · plot · weights · media · tokenizer · detect · text_emotion
//! models    clip · emotionclip
//! kernels   nn
//! ```
//! The command-line tool (`emoclip-cli`) only parses flags, shows progress and prints; every decision is here.
pub mod analyze;
pub mod clip;
pub mod detect;
pub mod embed;
pub mod emotionclip;
pub mod encoder;
pub mod error;
pub mod hash;
pub mod head;
pub mod labels;
pub mod media;
pub mod mer;
pub mod nn;
pub mod optim;
pub mod output;
pub mod plot;
pub mod prep;
pub mod probability;
pub mod probe;
pub mod rng;
pub mod run;
pub mod shards;
pub mod text_emotion;
pub mod tokenizer;
pub mod train;
pub mod weights;

pub use error::{Error, Result};
