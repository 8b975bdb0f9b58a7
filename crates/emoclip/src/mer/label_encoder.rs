//! Label embeddings Z^L (MER-CLIP paper, Alg. 1 input): CLIP `encode_text` of each bare label word
//! (`[SOT] word [EOT]`, no "a photo of" template), L2-normalised, `[n_labels, embed]`.
use super::config::MerConfig;
use crate::clip::TextTransformer;
use crate::nn::l2_normalize;
use crate::tokenizer::{ClipTokenizer, Truncation};
use crate::Result;
use candle_core::{Device, Tensor};

#[derive(Clone, Debug)]
pub struct LabelEncoder {
    /// Token ids `[n_labels, context_length]` (open_clip `tokenize` rows).
    pub ids: Tensor,
    pub words: Vec<String>,
}

impl LabelEncoder {
    pub fn new(cfg: &MerConfig, tokenizer: &ClipTokenizer, device: &Device) -> Result<Self> {
        let words: Vec<&str> = cfg.label_words.iter().map(|s| s.as_str()).collect();
        let ids = tokenizer.tokenize_tensor(&words, cfg.clip.text_cfg.context_length, Truncation::ForceEot, device)?;
        Ok(Self { ids, words: cfg.label_words.clone() })
    }

    /// Z^L `[n_labels, embed]`, unit rows. Differentiable w.r.t. the tower's tensors when they are tracked.
    pub fn forward(&self, text: &TextTransformer) -> Result<Tensor> {
        Ok(l2_normalize(&text.forward(&self.ids)?)?)
    }
}
