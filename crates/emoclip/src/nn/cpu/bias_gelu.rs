//! Differentiable fused CPU kernel for training: `gelu_erf(x + b)` (PyTorch `nn.GELU()` after `nn.Linear`;
//! backward `dx = g·(Φ(v) + v·φ(v))`, `db = Σ_rows dx`) in one multi-threaded pass each way, where candle's
//! composed autograd runs ~15 single-purpose passes. Row sums run as `[1, rows] × [rows, n]` products
//! (multi-threaded). f32 on CPU only; callers fall back to composed ops.
use super::bias_act::erf_fast;
use super::rows::{f32_slice, map_rows};
use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor};

fn slices<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    f32_slice(s, l, "bias-gelu", what)
}

#[inline(always)]
fn gelu(v: f32) -> f32 {
    (erf_fast(v * std::f32::consts::FRAC_1_SQRT_2) + 1.0) * 0.5 * v
}

/// d gelu_erf / dv = Φ(v) + v·φ(v).
#[inline(always)]
fn gelu_grad(v: f32) -> f32 {
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    (erf_fast(v * std::f32::consts::FRAC_1_SQRT_2) + 1.0) * 0.5 + v * INV_SQRT_2PI * (-0.5 * v * v).exp()
}

/// Forward op `(x [rows, n], b [n]) → gelu(x + b)`.
struct BiasGelu;

/// Backward op `(x, b, g) → g · gelu'(x + b)`.
struct BiasGeluGrad;

impl CustomOp2 for BiasGelu {
    fn name(&self) -> &'static str {
        "emoclip-bias-gelu"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, b) = (slices(s1, l1, "input")?, slices(s2, l2, "bias")?);
        let n = b.len();
        if n == 0 || l1.dims().last() != Some(&n) {
            candle_core::bail!("bias-gelu: bias of {n} for input {:?}", l1.dims());
        }
        let out = map_rows([x], n, |orow, [xrow]| {
            for ((o, &v), &bb) in orow.iter_mut().zip(xrow).zip(b) {
                *o = gelu(v + bb);
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, b: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dx = x.apply_op3_no_bwd(b, &grad.contiguous()?, &BiasGeluGrad)?;
        let n = b.elem_count();
        let rows = dx.elem_count() / n.max(1);
        // Σ over rows as a [1, rows] × [rows, n] product: multi-threaded, unlike a dim-0 reduction.
        let ones = Tensor::ones((1, rows), DType::F32, dx.device())?;
        let db = ones.matmul(&dx.reshape((rows, n))?)?.reshape(b.shape())?;
        Ok((Some(dx), Some(db)))
    }
}

impl CustomOp3 for BiasGeluGrad {
    fn name(&self) -> &'static str {
        "emoclip-bias-gelu-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, b, g) = (slices(s1, l1, "input")?, slices(s2, l2, "bias")?, slices(s3, l3, "gradient")?);
        let n = b.len();
        if n == 0 || x.len() != g.len() || l1.dims().last() != Some(&n) {
            candle_core::bail!("bias-gelu backward: shapes {:?}, {:?}, {:?}", l1.dims(), l2.dims(), l3.dims());
        }
        let out = map_rows([x, g], n, |orow, [xrow, grow]| {
            for (((o, &v), &bb), &gg) in orow.iter_mut().zip(xrow).zip(b).zip(grow) {
                *o = gg * gelu_grad(v + bb);
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// True when [`bias_gelu`] applies: CPU, f32, a 1-d bias of the last dimension.
pub fn usable(xs: &Tensor, bias: &Tensor) -> bool {
    xs.device().is_cpu()
        && xs.dtype() == DType::F32
        && bias.dtype() == DType::F32
        && bias.rank() == 1
        && xs.dims().last() == Some(&bias.elem_count())
}

/// `gelu_erf(xs + bias)` (bias broadcast over the last dimension), differentiable in both inputs.
pub fn bias_gelu(xs: &Tensor, bias: &Tensor) -> Result<Tensor> {
    xs.contiguous()?.apply_op2(&bias.contiguous()?, BiasGelu)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn bias_gelu_value_and_gradients_match_composed_ops() {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 2.0, (67, 40), &dev).unwrap()).unwrap();
        let b = Var::from_tensor(&Tensor::randn(0f32, 1.0, 40, &dev).unwrap()).unwrap();
        let w = Tensor::randn(0f32, 1.0, (67, 40), &dev).unwrap(); // a non-uniform upstream gradient
        let fused = bias_gelu(x.as_tensor(), b.as_tensor()).unwrap();
        let composed = x.as_tensor().broadcast_add(b.as_tensor()).unwrap().gelu_erf().unwrap();
        let max = |t: Tensor| t.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
        assert!(max((&fused - &composed).unwrap()) < 2e-6);
        let gf = (fused * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let gc = (composed * &w).unwrap().sum_all().unwrap().backward().unwrap();
        for (name, v) in [("x", &x), ("b", &b)] {
            let (a, c) = (gf.get(v.as_tensor()).unwrap(), gc.get(v.as_tensor()).unwrap());
            let err = max((a - c).unwrap());
            let scale = max(c.clone()).max(1.0);
            assert!(err / scale < 1e-5, "d{name}: max error {err} (scale {scale})");
            assert!(max(a.clone()) > 0.0);
        }
    }
}
