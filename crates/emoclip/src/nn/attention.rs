//! Multi-head attention: PyTorch `nn.MultiheadAttention(d, h, dropout, batch_first=True)` (parameters, init
//! and forward as `torch/nn/modules/activation.py` and `F.multi_head_attention_forward`): fused
//! `in_proj_weight [3D, D]` (rows q, k, v), `in_proj_bias [3D]`, `out_proj.{weight,bias}`; separate query and
//! key/value inputs (self-attention passes the same tensor twice), an additive mask, dropout on the attention
//! weights in training.
use super::{softmax_last_dim, Linear};
use candle_core::{Result, Tensor, D};
use candle_nn::VarBuilder;

#[derive(Clone, Debug)]
pub struct MultiheadAttention {
    /// The fused projection `[3D, D]` (self-attention: one matrix product for q, k and v).
    pub in_proj: Linear,
    /// Rows `0..D` of `in_proj` (a view of the same storage).
    pub q: Linear,
    /// Rows `D..3D` of `in_proj` (keys, then values; a view of the same storage).
    pub kv: Linear,
    pub out_proj: Linear,
    pub num_heads: usize,
    /// Dropout probability on the attention weights (training only).
    pub dropout: f32,
}

impl MultiheadAttention {
    /// Keys `in_proj_weight`, `in_proj_bias`, `out_proj.{weight,bias}`; when created (not in the checkpoint)
    /// initialised as PyTorch's `_reset_parameters`: Xavier-uniform `in_proj_weight`, zero biases.
    pub fn load(vb: VarBuilder, dim: usize, num_heads: usize, dropout: f32) -> Result<Self> {
        let bound = (6.0 / (4 * dim) as f64).sqrt(); // xavier_uniform_ on [3D, D]: fan_in + fan_out = 4D
        let w =
            vb.get_with_hints((3 * dim, dim), "in_proj_weight", candle_nn::Init::Uniform { lo: -bound, up: bound })?;
        let b = vb.get_with_hints(3 * dim, "in_proj_bias", candle_nn::Init::Const(0.0))?;
        let ow = vb.get_with_hints((dim, dim), "out_proj.weight", candle_nn::init::DEFAULT_KAIMING_UNIFORM)?;
        let ob = vb.get_with_hints(dim, "out_proj.bias", candle_nn::Init::Const(0.0))?;
        Self::from_parts(Linear::from_parts(w, Some(b)), Linear::from_parts(ow, Some(ob)), num_heads, dropout)
    }

    /// From a fused `in_proj` `[3D, D]` (rows q, k, v) and `out_proj` `[D, D]`.
    pub fn from_parts(in_proj: Linear, out_proj: Linear, num_heads: usize, dropout: f32) -> Result<Self> {
        let (rows, dim) = in_proj.weight.dims2()?;
        if rows != 3 * dim {
            candle_core::bail!("attention in_proj_weight is [{rows}, {dim}], expected [{}, {dim}]", 3 * dim);
        }
        if num_heads == 0 || !dim.is_multiple_of(num_heads) {
            candle_core::bail!("attention width {dim} is not divisible by {num_heads} heads");
        }
        let rows_of = |start: usize, len: usize| -> Result<Linear> {
            let w = in_proj.weight.narrow(0, start, len)?;
            let b = in_proj.bias.as_ref().map(|b| b.narrow(0, start, len)).transpose()?;
            Ok(Linear::from_parts(w, b))
        };
        let (q, kv) = (rows_of(0, dim)?, rows_of(dim, 2 * dim)?);
        Ok(Self { in_proj, q, kv, out_proj, num_heads, dropout })
    }

    /// Bf16 inference on the CPU only ([`Linear::keep_only_bf16`]): the fused projection and `out_proj` keep
    /// only their packed bf16 weights; `q`/`kv` (views of the fused weight) are dropped with it, and
    /// cross-attention then projects through the fused weight.
    pub fn keep_only_bf16(&mut self) -> Result<()> {
        self.in_proj.keep_only_bf16()?;
        self.out_proj.keep_only_bf16()?;
        for l in [&mut self.q, &mut self.kv] {
            l.weight = Tensor::zeros(0, l.weight.dtype(), l.weight.device())?;
            l.bias = None;
        }
        Ok(())
    }

    /// `query: [B, Lq, D]` attends over `kv: [B, S, D]` (self-attention: the same tensor); `mask`: additive,
    /// broadcastable to `[B, H, Lq, S]` (e.g. `[L, L]` causal, `[B, 1, L, L]` per sample, or a key padding mask
    /// `[B, 1, 1, S]` of 0 / −inf); `train` switches dropout on. Returns `[B, Lq, D]`.
    pub fn forward(&self, query: &Tensor, kv: &Tensor, mask: Option<&Tensor>, train: bool) -> Result<Tensor> {
        self.out_proj.forward(&self.heads(query, kv, mask, train)?)
    }

    /// `residual + forward(query, kv, mask, train)`, the addition fused into `out_proj`'s output pass where
    /// [`Linear::forward_residual`] can (a pre-norm block's skip connection).
    pub fn forward_residual(
        &self,
        query: &Tensor,
        kv: &Tensor,
        mask: Option<&Tensor>,
        train: bool,
        residual: &Tensor,
    ) -> Result<Tensor> {
        self.out_proj.forward_residual(&self.heads(query, kv, mask, train)?, residual)
    }

    /// The attention heads concatenated, `[B, Lq, D]`, before `out_proj`.
    fn heads(&self, query: &Tensor, kv: &Tensor, mask: Option<&Tensor>, train: bool) -> Result<Tensor> {
        let (b, lq, d) = query.dims3()?;
        let h = self.num_heads;
        let hd = d / h;
        let scale = 1.0 / (hd as f64).sqrt();
        // q, k, v as views of the projections, [B, H, L, hd].
        let (q, k, v) = if query.id() == kv.id() {
            let qkv = self.in_proj.forward(query)?; // [B, L, 3D]
            let qkv = qkv.reshape((b, lq, 3, h, hd))?.permute((2, 0, 3, 1, 4))?; // [3, B, H, L, hd]
            (view(&qkv, 0)?, view(&qkv, 1)?, view(&qkv, 2)?)
        } else {
            let s = kv.dim(1)?;
            let (q, kvp) = if self.in_proj.bf16.is_pack_only() {
                // Only the fused weight is left (bf16 inference): project both and keep the rows each needs.
                let q = self.in_proj.forward(query)?.narrow(D::Minus1, 0, d)?;
                (q, self.in_proj.forward(kv)?.narrow(D::Minus1, d, 2 * d)?)
            } else {
                (self.q.forward(query)?, self.kv.forward(kv)?)
            };
            let q = q.reshape((b, lq, h, hd))?.transpose(1, 2)?; // [B, H, Lq, hd]
            let kvp = kvp.reshape((b, s, 2, h, hd))?.permute((2, 0, 3, 1, 4))?; // [2, B, H, S, hd]
            (q, view(&kvp, 0)?, view(&kvp, 1)?)
        };
        if super::attention_bf16::usable(&q, &k, &v) && !(train && self.dropout > 0.0) {
            // bf16 inference: one pass per (sample, head) on the views, bit-identical to the composed path.
            return super::attention_bf16::attention(&q, &k, &v, mask, scale);
        }
        let q = (q.contiguous()? * scale)?;
        attend(&q, &k.contiguous()?, &v.contiguous()?, mask, self.dropout, train)
    }
}

/// `t[i]` as a strided view (candle's `get` copies a non-contiguous tensor).
fn view(t: &Tensor, i: usize) -> Result<Tensor> {
    t.narrow(0, i, 1)?.squeeze(0)
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
