//! `nn.MultiheadAttention(d, h, dropout, batch_first=True)` with separate query and key/value inputs (the
//! decoder's self- and cross-attention; PyTorch layout: fused `in_proj_weight [3D, D]` split into q/k/v rows,
//! `in_proj_bias`, `out_proj`), additive key mask, dropout on the attention weights in training.
use crate::nn::Linear;
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

#[derive(Clone, Debug)]
pub struct Attention {
    /// Rows `0..D` of `in_proj`.
    pub q: Linear,
    /// Rows `D..3D` of `in_proj` (keys, then values).
    pub kv: Linear,
    pub out_proj: Linear,
    pub num_heads: usize,
    pub dropout: f32,
}

impl Attention {
    /// Keys `in_proj_weight`, `in_proj_bias`, `out_proj.{weight,bias}`; initialised as PyTorch does
    /// (Xavier-uniform in_proj, zero biases) when created.
    pub fn load(vb: VarBuilder, dim: usize, num_heads: usize, dropout: f32) -> Result<Self> {
        if num_heads == 0 || !dim.is_multiple_of(num_heads) {
            candle_core::bail!("attention width {dim} is not divisible by {num_heads} heads");
        }
        let bound = (6.0 / (4 * dim) as f64).sqrt(); // xavier_uniform_ on [3D, D]
        let w =
            vb.get_with_hints((3 * dim, dim), "in_proj_weight", candle_nn::Init::Uniform { lo: -bound, up: bound })?;
        let b = vb.get_with_hints(3 * dim, "in_proj_bias", candle_nn::Init::Const(0.0))?;
        let ow = vb.get_with_hints((dim, dim), "out_proj.weight", candle_nn::init::DEFAULT_KAIMING_UNIFORM)?;
        let ob = vb.get_with_hints(dim, "out_proj.bias", candle_nn::Init::Const(0.0))?;
        Ok(Self {
            q: Linear::from_parts(w.narrow(0, 0, dim)?, Some(b.narrow(0, 0, dim)?)),
            kv: Linear::from_parts(w.narrow(0, dim, 2 * dim)?, Some(b.narrow(0, dim, 2 * dim)?)),
            out_proj: Linear::from_parts(ow, Some(ob)),
            num_heads,
            dropout,
        })
    }

    /// `query: [B, Lq, D]`, `kv: [B, S, D]`, `mask`: additive, broadcastable to `[B, H, Lq, S]` (e.g. a key
    /// padding mask `[B, 1, 1, S]` of 0 / −inf). Returns `[B, Lq, D]`.
    pub fn forward(&self, query: &Tensor, kv: &Tensor, mask: Option<&Tensor>, train: bool) -> Result<Tensor> {
        let (b, lq, d) = query.dims3()?;
        let s = kv.dim(1)?;
        let h = self.num_heads;
        let hd = d / h;
        let q = self.q.forward(query)?.reshape((b, lq, h, hd))?.transpose(1, 2)?; // [B, H, Lq, hd]
        let q = (q.contiguous()? * (1.0 / (hd as f64).sqrt()))?;
        let kvp = self.kv.forward(kv)?.reshape((b, s, 2, h, hd))?.permute((2, 0, 3, 1, 4))?; // [2, B, H, S, hd]
        let k = kvp.get(0)?.contiguous()?;
        let v = kvp.get(1)?.contiguous()?;
        let y = crate::nn::attention::attend(&q, &k, &v, mask, self.dropout, train)?;
        self.out_proj.forward(&y)
    }
}
