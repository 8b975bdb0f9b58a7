//! Differentiable building blocks. candle-nn's fused `softmax_last_dim` and `layer_norm` have no backward
//! pass and would silently cut the autograd graph, so every block here picks the fused kernel only when no
//! input takes part in a graph (pure inference) and a composed, differentiable version otherwise.
pub mod activation;
pub mod attention;
pub mod fused;
pub mod layer_norm;
pub mod linear;

pub use activation::Activation;
pub use attention::MultiheadAttention;
pub use layer_norm::LayerNorm;
pub use linear::Linear;

use candle_core::{DType, Result, Tensor, D};

/// True when any tensor takes part in an autograd graph (is a variable or derives from one).
pub(crate) fn tracked(ts: &[&Tensor]) -> bool {
    ts.iter().any(|t| t.track_op())
}

/// Softmax over the last dimension: fused kernel for inference, composed ops when gradients are needed.
pub fn softmax_last_dim(xs: &Tensor) -> Result<Tensor> {
    if !tracked(&[xs]) && xs.dtype() != DType::F64 {
        return candle_nn::ops::softmax_last_dim(&xs.contiguous()?);
    }
    // The max is detached: softmax is invariant to the shift, so the gradient is unchanged.
    let max = xs.max_keepdim(D::Minus1)?.detach();
    let e = xs.broadcast_sub(&max)?.exp()?;
    let s = e.sum_keepdim(D::Minus1)?;
    e.broadcast_div(&s)
}

/// Dropout with inverted scaling, differentiable (a multiplication by a random mask). `p == 0` is identity.
pub fn dropout(xs: &Tensor, p: f32, train: bool) -> Result<Tensor> {
    if !train || p <= 0.0 {
        return Ok(xs.clone());
    }
    let keep = xs.rand_like(0.0, 1.0)?.ge(p as f64)?.to_dtype(xs.dtype())?;
    (xs * keep)? * (1.0 / (1.0 - p as f64))
}
