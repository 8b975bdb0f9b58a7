//! Differentiable building blocks. candle-nn's fused `softmax_last_dim` and `layer_norm` have no backward
//! pass and would silently cut the autograd graph, so every block here picks the fused kernel only when no
//! input takes part in a graph (pure inference) and a composed, differentiable version otherwise.
pub mod activation;
pub mod attention;
pub mod attention_bf16;
pub mod autocast;
pub mod cpu;
pub mod layer_norm;
pub mod linear;
pub mod matmul_bf16;

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
    if xs.device().is_cpu() && xs.dtype() == DType::F32 {
        // Training on CPU: one fused kernel with its own backward (cpu/softmax.rs).
        return cpu::softmax::softmax_last_dim(xs);
    }
    // The max is detached: softmax is invariant to the shift, so the gradient is unchanged.
    let max = xs.max_keepdim(D::Minus1)?.detach();
    let e = xs.broadcast_sub(&max)?.exp()?;
    let s = e.sum_keepdim(D::Minus1)?;
    e.broadcast_div(&s)
}

thread_local! {
    /// Source of dropout masks; reseeded by [`seed_dropout`] so training runs (and resumed runs) are reproducible.
    static DROPOUT_RNG: std::cell::RefCell<rand::rngs::StdRng> =
        std::cell::RefCell::new(<rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0));
}

/// Reseeds this thread's dropout mask generator (the trainer calls it once per step with a hash of (seed, step)).
pub fn seed_dropout(seed: u64) {
    DROPOUT_RNG.with(|r| *r.borrow_mut() = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed));
}

/// L2 normalisation over the last dimension (`F.normalize(x, dim=-1)`, eps 1e-12).
pub fn l2_normalize(xs: &Tensor) -> Result<Tensor> {
    let n = xs.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.clamp(1e-12, f64::INFINITY)?;
    xs.broadcast_div(&n)
}

/// Dropout with inverted scaling, differentiable (a multiplication by a constant random 0/1 mask drawn from a
/// seeded per-thread generator, see [`seed_dropout`]). `p == 0` is identity.
pub fn dropout(xs: &Tensor, p: f32, train: bool) -> Result<Tensor> {
    if !train || p <= 0.0 {
        return Ok(xs.clone());
    }
    let n = xs.elem_count();
    let mask: Vec<f32> = DROPOUT_RNG.with(|r| {
        use rand::Rng;
        let mut r = r.borrow_mut();
        (0..n).map(|_| if r.random::<f32>() >= p { 1.0 } else { 0.0 }).collect()
    });
    let keep = Tensor::from_vec(mask, xs.shape(), xs.device())?.to_dtype(xs.dtype())?;
    (xs * keep)? * (1.0 / (1.0 - p as f64))
}
