//! Cross-modal decoder (MER-CLIP paper, Alg. 1 step 2): for m in L, V, A, Z^[i] = TransformerDecoder_m(Z^[i-1],
//! memory = proj_m(X^m)), Z^[0] = Z^E. Each layer is PyTorch `nn.TransformerDecoderLayer(d_model, nhead,
//! dim_feedforward, dropout, activation, batch_first=True, norm_first=False)`: post-norm self-attention,
//! cross-attention (with `memory_key_padding_mask`), FFN; each stack is `nn.TransformerDecoder` without a
//! final norm.
use super::config::{CmdActivation, CmdConfig};
use crate::nn::{dropout, Activation, LayerNorm, Linear, MultiheadAttention};
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

#[derive(Clone, Debug)]
pub struct DecoderLayer {
    pub self_attn: MultiheadAttention,
    pub multihead_attn: MultiheadAttention,
    pub linear1: Linear,
    pub linear2: Linear,
    pub norm1: LayerNorm,
    pub norm2: LayerNorm,
    pub norm3: LayerNorm,
    pub activation: CmdActivation,
    pub dropout: f32,
}

impl DecoderLayer {
    /// Keys as PyTorch: `self_attn.*`, `multihead_attn.*`, `linear1.*`, `linear2.*`, `norm{1,2,3}.*`.
    pub fn load(vb: VarBuilder, width: usize, cfg: &CmdConfig) -> Result<Self> {
        Ok(Self {
            self_attn: MultiheadAttention::load(vb.pp("self_attn"), width, cfg.heads, cfg.dropout)?,
            multihead_attn: MultiheadAttention::load(vb.pp("multihead_attn"), width, cfg.heads, cfg.dropout)?,
            linear1: Linear::load(vb.pp("linear1"), width, cfg.ff, true)?,
            linear2: Linear::load(vb.pp("linear2"), cfg.ff, width, true)?,
            norm1: LayerNorm::load(vb.pp("norm1"), width, cfg.layer_norm_eps)?,
            norm2: LayerNorm::load(vb.pp("norm2"), width, cfg.layer_norm_eps)?,
            norm3: LayerNorm::load(vb.pp("norm3"), width, cfg.layer_norm_eps)?,
            activation: cfg.activation,
            dropout: cfg.dropout,
        })
    }

    /// `x: [B, Lq, D]` queries, `memory: [B, S, D]`, `memory_mask`: additive `[B, 1, 1, S]` or `None`.
    pub fn forward(&self, x: &Tensor, memory: &Tensor, memory_mask: Option<&Tensor>, train: bool) -> Result<Tensor> {
        let p = self.dropout;
        let sa = self.self_attn.forward(x, x, None, train)?;
        let x = self.norm1.forward(&(x + dropout(&sa, p, train)?)?)?;
        let ca = self.multihead_attn.forward(&x, memory, memory_mask, train)?;
        let x = self.norm2.forward(&(&x + dropout(&ca, p, train)?)?)?;
        let h = match self.activation {
            CmdActivation::Gelu => self.linear1.forward_act(&x, Some(Activation::Gelu))?,
            CmdActivation::Relu => self.linear1.forward(&x)?.relu()?,
        };
        let h = self.linear2.forward(&dropout(&h, p, train)?)?;
        self.norm3.forward(&(&x + dropout(&h, p, train)?)?)
    }
}

/// One modality's `nn.TransformerDecoder` (keys `layers.{i}.*`).
#[derive(Clone, Debug)]
pub struct Decoder {
    pub layers: Vec<DecoderLayer>,
}

impl Decoder {
    pub fn load(vb: VarBuilder, width: usize, cfg: &CmdConfig) -> Result<Self> {
        let vb = vb.pp("layers");
        let layers = (0..cfg.layers).map(|i| DecoderLayer::load(vb.pp(i), width, cfg)).collect::<Result<Vec<_>>>()?;
        Ok(Self { layers })
    }

    pub fn forward(&self, x: &Tensor, memory: &Tensor, memory_mask: Option<&Tensor>, train: bool) -> Result<Tensor> {
        let mut x = x.clone();
        for l in &self.layers {
            x = l.forward(&x, memory, memory_mask, train)?;
        }
        Ok(x)
    }
}

/// Additive key padding mask `[B, 1, 1, S]`: 0 for positions `< len`, −inf after (PyTorch's boolean
/// `key_padding_mask`, True = padding, becomes −inf the same way).
pub fn key_padding_mask(lens: &[usize], s: usize, device: &candle_core::Device) -> Result<Tensor> {
    let v: Vec<f32> =
        lens.iter().flat_map(|&n| (0..s).map(move |j| if j < n { 0.0 } else { f32::NEG_INFINITY })).collect();
    Tensor::from_vec(v, (lens.len(), 1, 1, s), device)
}
