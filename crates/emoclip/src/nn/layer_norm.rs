//! LayerNorm over the last dimension (PyTorch `nn.LayerNorm`, biased variance), differentiable.
use candle_core::{DType, Result, Tensor, D};
use candle_nn::VarBuilder;

#[derive(Clone, Debug)]
pub struct LayerNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub eps: f64,
}

impl LayerNorm {
    /// Loads `{prefix}.weight` and `{prefix}.bias` of shape `[dim]` (initialised to 1 and 0 when created).
    pub fn load(vb: VarBuilder, dim: usize, eps: f64) -> Result<Self> {
        let weight = vb.get_with_hints(dim, "weight", candle_nn::Init::Const(1.0))?;
        let bias = vb.get_with_hints(dim, "bias", candle_nn::Init::Const(0.0))?;
        Ok(Self { weight, bias, eps })
    }

    /// [`Self::forward`] for an output that only feeds matrix products: in bf16 inference on the bf16 kernel
    /// it comes as bf16 (the rounding each product applies to its input anyway, done here in one pass,
    /// [`super::cpu::layer_norm_bf16`]), otherwise as [`Self::forward`]'s.
    pub fn forward_into_products(&self, xs: &Tensor) -> Result<Tensor> {
        if super::matmul_bf16::active(&[xs, &self.weight, &self.bias])
            && super::cpu::layer_norm_bf16::usable(xs, &self.weight, &self.bias)
        {
            return super::cpu::layer_norm_bf16::layer_norm_bf16(xs, &self.weight, &self.bias, self.eps);
        }
        self.forward(xs)
    }

    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        if !super::tracked(&[xs, &self.weight, &self.bias]) && xs.dtype() != DType::F64 {
            return candle_nn::ops::layer_norm(&xs.contiguous()?, &self.weight, &self.bias, self.eps as f32);
        }
        // Training on CPU in f32: one fused kernel with its own backward instead of ~30 composed passes.
        if super::cpu::layer_norm::usable(xs, &self.weight, &self.bias) {
            return super::cpu::layer_norm::layer_norm(xs, &self.weight, &self.bias, self.eps);
        }
        let dtype = xs.dtype();
        // Statistics in f32 at least, as PyTorch does for half precision.
        let x = if dtype == DType::F64 { xs.clone() } else { xs.to_dtype(DType::F32)? };
        let mean = x.mean_keepdim(D::Minus1)?;
        let xc = x.broadcast_sub(&mean)?;
        let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
        let xn = xc.broadcast_div(&(var + self.eps)?.sqrt()?)?.to_dtype(dtype)?;
        xn.broadcast_mul(&self.weight)?.broadcast_add(&self.bias)
    }
}
