//! CLIP text tower (open_clip `CLIP.encode_text`): token + positional embeddings, causal transformer,
//! `ln_final`, pooling at the EOT position (argmax of the ids), `text_projection`.
use super::config::OpenClipConfig;
use super::transformer::Transformer;
use crate::nn::LayerNorm;
use candle_core::{DType, Device, Result, Tensor};
use candle_nn::VarBuilder;

#[derive(Clone, Debug)]
pub struct TextTransformer {
    pub token_embedding: Tensor,
    pub positional_embedding: Tensor,
    pub transformer: Transformer,
    pub ln_final: LayerNorm,
    /// `[width, embed_dim]`.
    pub text_projection: Tensor,
    pub vocab_size: usize,
    pub context_length: usize,
    /// `None`: pool at `argmax(ids)` (open_clip). `Some(id)`: first position of `id` (newer HF configs).
    pub eos_token_id: Option<u32>,
}

impl TextTransformer {
    /// Keys at the model root: `token_embedding.weight`, `positional_embedding`, `transformer.*`,
    /// `ln_final.*`, `text_projection`.
    pub fn load(vb: VarBuilder, cfg: &OpenClipConfig) -> Result<Self> {
        let t = &cfg.text_cfg;
        let token_embedding = vb.get_with_hints(
            (t.vocab_size, t.width),
            "token_embedding.weight",
            candle_nn::Init::Randn { mean: 0.0, stdev: 0.02 },
        )?;
        let positional_embedding = vb.get_with_hints(
            (t.context_length, t.width),
            "positional_embedding",
            candle_nn::Init::Randn { mean: 0.0, stdev: 0.01 },
        )?;
        let transformer = Transformer::load(
            vb.pp("transformer"),
            t.width,
            t.layers,
            t.heads,
            t.mlp_ratio,
            cfg.activation(),
            cfg.layer_norm_eps,
        )?;
        let ln_final = LayerNorm::load(vb.pp("ln_final"), t.width, cfg.layer_norm_eps)?;
        let text_projection = vb.get_with_hints(
            (t.width, cfg.embed_dim),
            "text_projection",
            candle_nn::Init::Randn { mean: 0.0, stdev: (t.width as f64).powf(-0.5) },
        )?;
        Ok(Self {
            token_embedding,
            positional_embedding,
            transformer,
            ln_final,
            text_projection,
            vocab_size: t.vocab_size,
            context_length: t.context_length,
            eos_token_id: cfg.eos_token_id,
        })
    }

    /// Bf16 CPU inference only: the transformer keeps just its packed bf16 weights.
    pub fn keep_only_bf16(&mut self) -> Result<()> {
        self.transformer.keep_only_bf16()
    }

    /// Additive causal mask `[L, L]`: `-inf` above the diagonal.
    pub fn causal_mask(len: usize, device: &Device) -> Result<Tensor> {
        let v: Vec<f32> =
            (0..len).flat_map(|i| (0..len).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 })).collect();
        Tensor::from_vec(v, (len, len), device)
    }

    /// Pooling positions per row: argmax of the ids (first maximum, as `torch.argmax`), or first EOS.
    pub fn pool_positions(&self, ids: &[Vec<u32>]) -> Vec<u32> {
        ids.iter()
            .map(|row| {
                if let Some(eos) = self.eos_token_id {
                    if let Some(p) = row.iter().position(|&t| t == eos) {
                        return p as u32;
                    }
                }
                let mut best = 0usize;
                for (i, &t) in row.iter().enumerate() {
                    if t > row[best] {
                        best = i;
                    }
                }
                best as u32
            })
            .collect()
    }

    /// Hidden states after `ln_final` for token embeddings `embeds: [B, L, width]` (L ≤ context_length):
    /// adds the first L positional embeddings and runs the causal transformer. Used by prompt learning
    /// (learnable vectors in place of some token embeddings), so it is differentiable w.r.t. `embeds`.
    pub fn hidden_from_embeds(&self, embeds: &Tensor) -> Result<Tensor> {
        let (_, l, _) = embeds.dims3()?;
        if l > self.context_length {
            candle_core::bail!("token sequence of length {l} exceeds the context length {}", self.context_length);
        }
        let x = embeds.broadcast_add(&self.positional_embedding.narrow(0, 0, l)?.unsqueeze(0)?)?;
        let mask = Self::causal_mask(l, embeds.device())?.to_dtype(x.dtype())?;
        let x = self.transformer.forward(&x, Some(&mask))?;
        self.ln_final.forward(&x)
    }

    /// `ids: [B, L]` integer token ids (L ≤ context_length). Returns unnormalised features `[B, embed_dim]`.
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, l) = ids.dims2()?;
        if l > self.context_length {
            candle_core::bail!("token sequence of length {l} exceeds the context length {}", self.context_length);
        }
        let rows: Vec<Vec<u32>> = ids.to_dtype(DType::U32)?.to_vec2()?;
        if let Some(bad) = rows.iter().flatten().find(|&&t| t as usize >= self.vocab_size) {
            candle_core::bail!("token id {bad} is outside the vocabulary of {} entries", self.vocab_size);
        }
        let dev = ids.device();
        let pos = self.pool_positions(&rows);
        // With a causal mask, no position attends to later ones: tokens after the last pooled position
        // (padding) cannot change the result, so the batch runs on the shortest prefix that holds them.
        // Exact, and several times faster for short prompts.
        let l = pos.iter().map(|&p| p as usize + 1).max().unwrap_or(l).min(l);
        let ids = ids.narrow(1, 0, l)?;
        let flat = ids.to_dtype(DType::U32)?.flatten_all()?;
        let x = self.token_embedding.index_select(&flat, 0)?.reshape((b, l, ()))?;
        let x = x.broadcast_add(&self.positional_embedding.narrow(0, 0, l)?.unsqueeze(0)?)?;
        let mask = Self::causal_mask(l, dev)?.to_dtype(x.dtype())?;
        let x = self.transformer.forward(&x, Some(&mask))?;
        let x = self.ln_final.forward(&x)?;
        let idx: Vec<u32> = pos.iter().enumerate().map(|(i, &p)| (i * l) as u32 + p).collect();
        let idx = Tensor::from_vec(idx, b, dev)?;
        let pooled = x.reshape((b * l, ()))?.index_select(&idx, 0)?;
        pooled.matmul(&self.text_projection)
    }
}
