//! Frozen HF text encoders: the 7-class text-emotion model of EmotionCLIP's data pipeline
//! (`j-hartmann/emotion-english-distilroberta-base`, HF `RobertaForSequenceClassification`, used to score
//! captions, appendix A) and the BERT encoder MER-CLIP's `--text bert` features come from; both run the one
//! BERT-family encoder of [`bert`].
pub mod bert;
pub mod bert_load;
pub mod classifier;
pub mod config;
pub mod roberta;

pub use bert::{BertEncoder, EncoderInput};
pub use bert_load::BertModel;
pub use classifier::EmotionClassifier;
pub use config::{EncoderConfig, Family, RobertaConfig};
pub use roberta::RobertaForSequenceClassification;
