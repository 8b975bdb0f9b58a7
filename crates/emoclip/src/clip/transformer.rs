//! Pre-norm residual attention block and stack (open_clip `ResidualAttentionBlock` / `Transformer`).
use crate::nn::{Activation, LayerNorm, Linear, MultiheadAttention};
use candle_core::{Result, Tensor, D};
use candle_nn::VarBuilder;

#[derive(Clone, Debug)]
pub struct ResidualAttentionBlock {
    pub ln_1: LayerNorm,
    pub attn: MultiheadAttention,
    pub ln_2: LayerNorm,
    pub c_fc: Linear,
    pub c_proj: Linear,
    pub act: Activation,
}

impl ResidualAttentionBlock {
    /// Keys: `ln_1.*`, `attn.in_proj_weight`, `attn.in_proj_bias`, `attn.out_proj.*`, `ln_2.*`,
    /// `mlp.c_fc.*`, `mlp.c_proj.*`.
    pub fn load(
        vb: VarBuilder,
        width: usize,
        heads: usize,
        mlp_width: usize,
        act: Activation,
        eps: f64,
    ) -> Result<Self> {
        Ok(Self {
            ln_1: LayerNorm::load(vb.pp("ln_1"), width, eps)?,
            attn: MultiheadAttention::load(vb.pp("attn"), width, heads, 0.0)?,
            ln_2: LayerNorm::load(vb.pp("ln_2"), width, eps)?,
            c_fc: Linear::load(vb.pp("mlp").pp("c_fc"), width, mlp_width, true)?,
            c_proj: Linear::load(vb.pp("mlp").pp("c_proj"), mlp_width, width, true)?,
            act,
        })
    }

    /// Bf16 CPU inference only: keeps just the packed bf16 weights ([`Linear::keep_only_bf16`]).
    pub fn keep_only_bf16(&mut self) -> Result<()> {
        self.attn.keep_only_bf16()?;
        self.c_fc.keep_only_bf16()?;
        self.c_proj.keep_only_bf16()
    }

    /// `x + attn(ln_1(x)); x + mlp(ln_2(x))`, batch-first `[B, L, D]`.
    pub fn forward(&self, xs: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let h = self.ln_1.forward_into_products(xs)?;
        let xs = self.attn.forward_residual(&h, &h, mask, false, xs)?;
        let h = self.c_fc.forward_act(&self.ln_2.forward_into_products(&xs)?, Some(self.act))?;
        self.c_proj.forward_residual(&h, &xs)
    }

    /// [`Self::forward`]'s output for the first `n` tokens only, `[B, n, D]`: every token still gives keys and
    /// values, but only the first `n` are queries, and only they pass `out_proj` and the MLP. Each output row
    /// is the same sequence of operations as in the full block. `mask` has the full block's shape.
    pub fn forward_first(&self, xs: &Tensor, n: usize, mask: Option<&Tensor>) -> Result<Tensor> {
        let h = self.ln_1.forward_into_products(xs)?;
        let q = h.narrow(1, 0, n)?.contiguous()?;
        let residual = xs.narrow(1, 0, n)?.contiguous()?;
        // An additive mask with a row per query keeps the rows of these queries.
        let mask = match mask {
            Some(m) if m.rank() >= 2 && m.dim(D::Minus2)? > 1 => Some(m.narrow(m.rank() - 2, 0, n)?),
            other => other.cloned(),
        };
        let xs = self.attn.forward_residual(&q, &h, mask.as_ref(), false, &residual)?;
        let h = self.c_fc.forward_act(&self.ln_2.forward_into_products(&xs)?, Some(self.act))?;
        self.c_proj.forward_residual(&h, &xs)
    }
}

#[derive(Clone, Debug)]
pub struct Transformer {
    pub resblocks: Vec<ResidualAttentionBlock>,
}

impl Transformer {
    /// Keys: `resblocks.{i}.*`.
    pub fn load(
        vb: VarBuilder,
        width: usize,
        layers: usize,
        heads: usize,
        mlp_ratio: f64,
        act: Activation,
        eps: f64,
    ) -> Result<Self> {
        let mlp_width = (width as f64 * mlp_ratio) as usize;
        let vb = vb.pp("resblocks");
        let resblocks = (0..layers)
            .map(|i| ResidualAttentionBlock::load(vb.pp(i), width, heads, mlp_width, act, eps))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { resblocks })
    }

    /// Bf16 CPU inference only: every block keeps just its packed bf16 weights.
    pub fn keep_only_bf16(&mut self) -> Result<()> {
        self.resblocks.iter_mut().try_for_each(|b| b.keep_only_bf16())
    }

    pub fn forward(&self, xs: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let mut xs = xs.clone();
        for b in &self.resblocks {
            xs = b.forward(&xs, mask)?;
        }
        Ok(xs)
    }

    /// The output of token 0 (CLS), `[B, D]`. In bf16 inference on the CPU kernel, whose output rows do not
    /// depend on the other rows, the last block computes only that token ([`ResidualAttentionBlock::forward_first`]:
    /// 9 of its 12 D² multiply-adds per token skipped, bit-identical); otherwise the whole stack runs, so f32
    /// and autograd are unchanged.
    pub fn forward_cls(&self, xs: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let first_only = crate::nn::matmul_bf16::active(&[xs]) && !crate::nn::tracked(&[xs]);
        let Some((last, rest)) = self.resblocks.split_last().filter(|_| first_only) else {
            return self.forward(xs, mask)?.narrow(1, 0, 1)?.squeeze(1);
        };
        let mut xs = xs.clone();
        for b in rest {
            xs = b.forward(&xs, mask)?;
        }
        last.forward_first(&xs, 1, mask)?.squeeze(1)
    }
}
