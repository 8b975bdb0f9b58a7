//! Pre-training data preparation (appendix A): captions → timed sentences → filters → WebDataset shards (`emoclip prepare`).
pub mod box_files;
pub mod captions;
pub mod claim;
pub mod filters;
pub mod pipeline;
#[cfg(feature = "onnx")]
pub mod punctuation;
pub mod report;
pub mod sentences;
pub mod settings;
pub mod srt;
pub mod videos;
pub mod vtt;
pub mod youtube_json;

pub use captions::{
    decode_caption_bytes, detect_format, parse_captions, read_captions, sniff_format, CaptionChunk, CaptionFormat,
    Captions, ParseReport, TimedWord,
};
pub use sentences::{
    official_preprocess, sentences, sentences_with_model, split_words_evenly, timed_words, BoundarySource,
    PunctuationModel, Regroup, Sentence, SentenceConfig,
};
