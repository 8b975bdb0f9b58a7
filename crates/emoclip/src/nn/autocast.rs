//! Mixed precision in the manner of `torch.autocast` (what the official trainer's AMP does on GPU): inside an
//! [`autocast`] scope, matrix products cast their f32 inputs to bf16 (or f16), multiply, and return f32, while
//! parameters (the optimiser's f32 master copy), LayerNorm, softmax and the loss stay in f32. The casts are
//! differentiable (candle's `to_dtype` backward casts the gradient back), so gradients reach the f32 weights.
use candle_core::{DType, Result, Tensor};
use std::cell::Cell;

thread_local! {
    static AUTOCAST: Cell<Option<DType>> = const { Cell::new(None) };
}

/// Restores the previous autocast setting of this thread when dropped.
#[must_use = "autocast is only active while the guard lives"]
pub struct AutocastGuard {
    prev: Option<DType>,
}

impl Drop for AutocastGuard {
    fn drop(&mut self) {
        AUTOCAST.with(|a| a.set(self.prev));
    }
}

/// Enters an autocast scope on this thread: `Some(DType::BF16)` / `Some(DType::F16)` for mixed precision,
/// `None` (or `Some(DType::F32)`) for plain f32.
pub fn autocast(dtype: Option<DType>) -> AutocastGuard {
    let dtype = dtype.filter(|d| *d != DType::F32);
    let prev = AUTOCAST.with(|a| a.replace(dtype));
    AutocastGuard { prev }
}

/// The low-precision dtype of the current scope, if any.
pub fn current() -> Option<DType> {
    AUTOCAST.with(|a| a.get())
}

/// `a @ b`, in the autocast dtype when one is active and both inputs are f32 (result in f32). bf16 on a CPU
/// with AVX-512 BF16 runs the bf16 kernel ([`super::matmul_bf16`]), in inference and training alike. Without
/// it, products that take part in autograd cast to bf16 for candle's matmul (slow on CPU, but the same
/// rounding of the operands), and inference products take the f32 path.
pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    match current() {
        Some(DType::BF16) if super::matmul_bf16::active(&[a, b]) => super::matmul_bf16::matmul(a, b),
        Some(DType::BF16) if a.device().is_cpu() && !super::tracked(&[a, b]) => a.matmul(b),
        Some(dt) if a.dtype() == DType::F32 && b.dtype() == DType::F32 => {
            a.to_dtype(dt)?.matmul(&b.to_dtype(dt)?)?.to_dtype(DType::F32)
        }
        _ => a.matmul(b),
    }
}

/// Storage dtype and autocast dtype for a model asked to run in `dtype` on `device`: bf16 on the CPU keeps
/// f32 weights and activations and runs the matrix products in bf16 (`(F32, Some(BF16))`: LayerNorm,
/// softmax, GELU and residual adds stay f32); any other request runs as asked (`(dtype, None)`).
pub fn split(dtype: DType, device: &candle_core::Device) -> (DType, Option<DType>) {
    if dtype == DType::BF16 && device.is_cpu() {
        (DType::F32, Some(DType::BF16))
    } else {
        (dtype, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn bf16_matmul_is_close_and_differentiable() -> Result<()> {
        let dev = Device::Cpu;
        let a = Var::from_tensor(&Tensor::randn(0f32, 1.0, (5, 7), &dev)?)?;
        let b = Tensor::randn(0f32, 1.0, (7, 3), &dev)?;
        let exact = a.as_tensor().matmul(&b)?;
        let mixed = {
            let _g = autocast(Some(DType::BF16));
            assert_eq!(current(), Some(DType::BF16));
            matmul(a.as_tensor(), &b)?
        };
        assert_eq!(current(), None, "the guard restores the previous setting");
        assert_eq!(mixed.dtype(), DType::F32);
        let err = (&mixed - &exact)?.abs()?.max_all()?.to_scalar::<f32>()?;
        let scale = exact.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(err > 0.0, "bf16 rounding must change the product (else autocast did nothing)");
        assert!(err < 2e-2 * scale, "bf16 product off by {err} (scale {scale})");
        let grads = mixed.sum_all()?.backward()?;
        let g = grads.get(a.as_tensor()).expect("gradient reaches the f32 input");
        assert_eq!(g.dtype(), DType::F32);
        // d(sum(a b))/da = 1 bᵀ: every row equals the row sums of b.
        let want = b.sum(1)?.unsqueeze(0)?.broadcast_as((5, 7))?;
        let gerr = (g - want)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(gerr < 5e-2, "gradient off by {gerr}");
        Ok(())
    }
}
