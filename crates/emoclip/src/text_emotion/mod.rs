//! The frozen 7-class text-emotion model of EmotionCLIP's data pipeline: `j-hartmann/emotion-english-
//! distilroberta-base` (HF `RobertaForSequenceClassification`), used to score captions (appendix A).
pub mod classifier;
pub mod config;
pub mod roberta;

pub use classifier::EmotionClassifier;
pub use config::RobertaConfig;
pub use roberta::RobertaForSequenceClassification;
