//! Temporal encoder (official `VisualHead`, `temporal_fusion='transformer'`): learned frame positions,
//! `nn.TransformerEncoder` of post-norm `TransformerEncoderLayer`s (GELU, batch-first) with a final
//! LayerNorm, a residual around the whole stack, then the mean over time. Or the parameter-free `mean`.
use super::config::{TemporalConfig, TemporalFusion};
use crate::nn::{dropout, Activation, LayerNorm, Linear, MultiheadAttention};
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

/// One post-norm `nn.TransformerEncoderLayer` (`norm_first=False`).
#[derive(Clone, Debug)]
pub struct EncoderLayer {
    pub self_attn: MultiheadAttention,
    pub linear1: Linear,
    pub linear2: Linear,
    pub norm1: LayerNorm,
    pub norm2: LayerNorm,
    pub dropout: f32,
}

impl EncoderLayer {
    /// Keys: `self_attn.*`, `linear1.*`, `linear2.*`, `norm1.*`, `norm2.*`.
    pub fn load(vb: VarBuilder, d: usize, heads: usize, ff: usize, p: f32) -> Result<Self> {
        Ok(Self {
            self_attn: MultiheadAttention::load(vb.pp("self_attn"), d, heads, p)?,
            linear1: Linear::load(vb.pp("linear1"), d, ff, true)?,
            linear2: Linear::load(vb.pp("linear2"), ff, d, true)?,
            norm1: LayerNorm::load(vb.pp("norm1"), d, 1e-5)?,
            norm2: LayerNorm::load(vb.pp("norm2"), d, 1e-5)?,
            dropout: p,
        })
    }

    /// Bf16 CPU inference only: keeps just the packed bf16 weights ([`Linear::keep_only_bf16`]).
    pub fn keep_only_bf16(&mut self) -> Result<()> {
        self.self_attn.keep_only_bf16()?;
        self.linear1.keep_only_bf16()?;
        self.linear2.keep_only_bf16()
    }

    /// `x: [B, T, D]`; `train` switches dropout on.
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let sa = self.self_attn.forward(x, x, None, train)?;
        let x = self.norm1.forward(&(x + dropout(&sa, self.dropout, train)?)?)?;
        let h = self.linear1.forward_act(&x, Some(Activation::Gelu))?;
        let h = self.linear2.forward(&dropout(&h, self.dropout, train)?)?;
        self.norm2.forward(&(x + dropout(&h, self.dropout, train)?)?)
    }
}

#[derive(Clone, Debug)]
pub enum VisualHead {
    Transformer {
        /// `frame_position_embedding.weight [video_len, D]`.
        frame_position_embedding: Tensor,
        layers: Vec<EncoderLayer>,
        norm: LayerNorm,
    },
    Mean,
}

impl VisualHead {
    /// Keys under `visual_head.`: `frame_position_embedding.weight`, `fusion_layer.layers.{i}.*`,
    /// `fusion_layer.norm.*` (the `position_ids` buffer is checked by the loader, not a parameter).
    pub fn load(vb: VarBuilder, cfg: &TemporalConfig, embed_dim: usize, video_len: usize) -> Result<Self> {
        match cfg.fusion {
            TemporalFusion::Mean => Ok(VisualHead::Mean),
            TemporalFusion::Transformer => {
                let frame_position_embedding = vb.get_with_hints(
                    (video_len, embed_dim),
                    "frame_position_embedding.weight",
                    candle_nn::Init::Randn { mean: 0.0, stdev: 1.0 },
                )?;
                let fl = vb.pp("fusion_layer");
                let layers = (0..cfg.layers)
                    .map(|i| EncoderLayer::load(fl.pp("layers").pp(i), embed_dim, cfg.heads, cfg.ff, cfg.dropout))
                    .collect::<Result<Vec<_>>>()?;
                let norm = LayerNorm::load(fl.pp("norm"), embed_dim, 1e-5)?;
                Ok(VisualHead::Transformer { frame_position_embedding, layers, norm })
            }
        }
    }

    /// Bf16 CPU inference only: every layer keeps just its packed bf16 weights.
    pub fn keep_only_bf16(&mut self) -> Result<()> {
        match self {
            VisualHead::Mean => Ok(()),
            VisualHead::Transformer { layers, .. } => layers.iter_mut().try_for_each(|l| l.keep_only_bf16()),
        }
    }

    /// `frames: [B, T, D]` (projected frame features, not normalised) → `[B, D]`; `train` switches dropout on.
    pub fn forward(&self, frames: &Tensor, train: bool) -> Result<Tensor> {
        match self {
            VisualHead::Mean => frames.mean(1),
            VisualHead::Transformer { frame_position_embedding, layers, norm } => {
                let (_, t, _) = frames.dims3()?;
                let rows = frame_position_embedding.dim(0)?;
                if t != rows {
                    candle_core::bail!("the temporal head takes exactly {rows} frames per clip, got {t}; resample the clip to {rows} frames");
                }
                let mut y = frames.broadcast_add(&frame_position_embedding.unsqueeze(0)?)?;
                for l in layers {
                    y = l.forward(&y, train)?;
                }
                let y = norm.forward(&y)?;
                (y + frames)?.mean(1)
            }
        }
    }
}
