//! Emotion query Z^E (MER-CLIP paper, Alg. 1 input): `[SOT] p_1 … p_n <query word> . [EOT]`, CoOp-style learnable
//! prompt vectors p_i (N(0, 0.02)) in place of token embeddings, run through the CLIP text transformer
//! (causal mask, `ln_final`); the query is the whole sequence of hidden states `[1, Lq, width]`.
use super::config::MerConfig;
use crate::clip::TextTransformer;
use crate::tokenizer::{ClipTokenizer, EOT, SOT};
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use candle_nn::VarBuilder;

#[derive(Clone, Debug)]
pub struct EmotionQuery {
    /// Learnable prompt vectors `[n_prompt, width]` (key `prompt.ctx`).
    pub ctx: Tensor,
    /// Token ids after the prompt vectors: the query word's BPE ids (if any), ".", EOT.
    pub suffix_ids: Vec<u32>,
    suffix: Tensor,
    sot: Tensor,
}

impl EmotionQuery {
    /// `vb` at the model root; creates / loads `prompt.ctx`.
    pub fn new(vb: VarBuilder, cfg: &MerConfig, tokenizer: &ClipTokenizer, device: &Device) -> Result<Self> {
        let width = cfg.width();
        let ctx = if cfg.n_prompt == 0 {
            Tensor::zeros((0, width), vb.dtype(), device)?
        } else {
            vb.get_with_hints(
                (cfg.n_prompt, width),
                "prompt.ctx",
                candle_nn::Init::Randn { mean: 0.0, stdev: cfg.prompt_init_std },
            )?
        };
        // "<word>." splits into the word's tokens and "." exactly as CoOp's "X X X X <word>." prompt does.
        let text = match &cfg.query_word {
            Some(w) => format!("{w}."),
            None => ".".to_string(),
        };
        let mut suffix_ids = tokenizer.encode(&text)?;
        suffix_ids.push(EOT);
        let len = 1 + cfg.n_prompt + suffix_ids.len();
        if len > cfg.clip.text_cfg.context_length {
            return Err(Error::Shape(format!(
                "the emotion query has {len} tokens (1 SOT + {} prompts + {} for {:?}), more than the context length {}; use fewer prompts or a shorter query word",
                cfg.n_prompt,
                suffix_ids.len(),
                cfg.query_word,
                cfg.clip.text_cfg.context_length
            )));
        }
        let suffix = Tensor::new(suffix_ids.as_slice(), device)?;
        let sot = Tensor::new(&[SOT], device)?;
        Ok(Self { ctx, suffix_ids, suffix, sot })
    }

    /// Number of query tokens Lq (the EOT, last, is the pooled position).
    pub fn len(&self) -> usize {
        1 + self.ctx.dims()[0] + self.suffix_ids.len()
    }

    /// Never empty (SOT, ".", EOT are always there); for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Token ids of the query with `0` where the prompt vectors sit (for display and checks).
    pub fn ids(&self) -> Vec<u32> {
        let mut ids = vec![SOT];
        ids.extend(std::iter::repeat_n(0, self.ctx.dims()[0]));
        ids.extend(&self.suffix_ids);
        ids
    }

    /// Token embeddings of the query sequence `[1, Lq, width]` (differentiable w.r.t. the prompts).
    pub fn embeddings(&self, text: &TextTransformer) -> Result<Tensor> {
        let sot = text.token_embedding.index_select(&self.sot, 0)?;
        let suffix = text.token_embedding.index_select(&self.suffix, 0)?;
        let ctx = self.ctx.to_dtype(sot.dtype())?;
        Ok(Tensor::cat(&[&sot, &ctx, &suffix], 0)?.unsqueeze(0)?)
    }

    /// Z^E: hidden states of the query sequence after `ln_final`, `[1, Lq, width]`.
    pub fn forward(&self, text: &TextTransformer) -> Result<Tensor> {
        Ok(text.hidden_from_embeds(&self.embeddings(text)?)?)
    }
}
