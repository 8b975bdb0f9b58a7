//! Multi-head self-attention with PyTorch `nn.MultiheadAttention` parameter layout (fused `in_proj_weight
//! [3D, D]`, `in_proj_bias [3D]`, `out_proj.{weight,bias}`), batch-first, optional additive mask.
use super::{softmax_last_dim, Linear};
use candle_core::{Result, Tensor, D};
use candle_nn::VarBuilder;

#[derive(Clone, Debug)]
pub struct MultiheadAttention {
    pub in_proj: Linear,
    pub out_proj: Linear,
    pub num_heads: usize,
    pub dropout: f32,
}

impl MultiheadAttention {
    pub fn load(vb: VarBuilder, dim: usize, num_heads: usize) -> Result<Self> {
        if num_heads == 0 || !dim.is_multiple_of(num_heads) {
            candle_core::bail!("attention width {dim} is not divisible by {num_heads} heads");
        }
        let init = candle_nn::init::DEFAULT_KAIMING_NORMAL;
        let w = vb.get_with_hints((3 * dim, dim), "in_proj_weight", init)?;
        let b = vb.get_with_hints(3 * dim, "in_proj_bias", candle_nn::Init::Const(0.0))?;
        let out_proj = Linear::load(vb.pp("out_proj"), dim, dim, true)?;
        Ok(Self { in_proj: Linear::from_parts(w, Some(b)), out_proj, num_heads, dropout: 0.0 })
    }

    /// `xs: [B, L, D]`; `mask`: additive, broadcastable to `[B, H, L, L]` (e.g. `[L, L]` causal or
    /// `[B, 1, L, L]` per sample). Returns `[B, L, D]`.
    pub fn forward(&self, xs: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        self.forward_t(xs, mask, false)
    }

    pub fn forward_t(&self, xs: &Tensor, mask: Option<&Tensor>, train: bool) -> Result<Tensor> {
        let (b, l, d) = xs.dims3()?;
        let h = self.num_heads;
        let hd = d / h;
        let qkv = self.in_proj.forward(xs)?; // [B, L, 3D]
        let qkv = qkv.reshape((b, l, 3, h, hd))?.permute((2, 0, 3, 1, 4))?; // [3, B, H, L, hd]
        let q = (qkv.get(0)?.contiguous()? * (1.0 / (hd as f64).sqrt()))?;
        let k = qkv.get(1)?.contiguous()?;
        let v = qkv.get(2)?.contiguous()?;
        let y = attend(&q, &k, &v, mask, self.dropout, train)?;
        self.out_proj.forward(&y)
    }
}

/// Scaled dot-product attention of `q: [B, H, Lq, hd]` (already scaled by 1/√hd) over `k, v: [B, H, S, hd]`:
/// additive `mask` broadcastable to `[B, H, Lq, S]`, differentiable softmax, dropout `p` on the weights in
/// training, matrix products under [`super::autocast`]. Returns the heads concatenated, `[B, Lq, H·hd]`.
pub fn attend(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>, p: f32, train: bool) -> Result<Tensor> {
    let (b, h, lq, hd) = q.dims4()?;
    let kt = k.transpose(D::Minus2, D::Minus1)?;
    // The bf16 kernel packs the transposed view directly; the f32 path multiplies a contiguous copy.
    let kt = if super::matmul_bf16::active(&[q, k]) { kt } else { kt.contiguous()? };
    let mut att = super::autocast::matmul(q, &kt)?; // [B, H, Lq, S]
    if let Some(m) = mask {
        att = att.broadcast_add(&m.to_dtype(att.dtype())?)?;
    }
    let att = softmax_last_dim(&att)?;
    let att = super::dropout(&att, p, train)?;
    let y = super::autocast::matmul(&att, v)?; // [B, H, Lq, hd]
    y.transpose(1, 2)?.contiguous()?.reshape((b, lq, h * hd))
}
