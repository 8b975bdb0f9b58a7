//! RoBERTa sequence classifier (HF `modeling_roberta.py` `RobertaForSequenceClassification`): the shared
//! [`BertEncoder`] in its RoBERTa form (padding-aware positions) under `roberta.`, then
//! `RobertaClassificationHead` dense → tanh → out_proj on the `<s>` token. Inference only: the model is frozen
//! in EmotionCLIP.
use super::bert::BertEncoder;
use super::config::RobertaConfig;
use crate::nn::Linear;
use candle_core::{DType, Device, Result, Tensor};
use candle_nn::VarBuilder;

pub struct RobertaForSequenceClassification {
    encoder: BertEncoder,
    dense: Linear,
    out_proj: Linear,
    pub num_labels: usize,
}

impl RobertaForSequenceClassification {
    /// Keys: `roberta.embeddings.*`, `roberta.encoder.layer.{i}.*`, `classifier.{dense,out_proj}.*`.
    pub fn load(vb: VarBuilder, c: &RobertaConfig, num_labels: usize) -> Result<Self> {
        let h = c.hidden_size;
        let cls = vb.pp("classifier");
        Ok(Self {
            encoder: BertEncoder::load(vb.pp("roberta"), c)?,
            dense: Linear::load(cls.pp("dense"), h, h, true)?,
            out_proj: Linear::load(cls.pp("out_proj"), h, num_labels, true)?,
            num_labels,
        })
    }

    /// Logits `[B, num_labels]` for right-padded ids (`pad_token_id` marks padding).
    pub fn forward(&self, ids: &[Vec<u32>], device: &Device) -> Result<Tensor> {
        let x = self.encoder.forward(&self.encoder.roberta_input(ids), device)?;
        let cls = x.narrow(1, 0, 1)?.squeeze(1)?;
        let h = self.dense.forward(&cls)?.tanh()?;
        self.out_proj.forward(&h)?.to_dtype(DType::F32)
    }
}
