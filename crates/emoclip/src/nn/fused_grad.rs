//! Differentiable fused CPU kernels for training, where candle's composed autograd runs many single-purpose
//! (and, for reductions, single-threaded) passes: `gelu_erf(x + b)` (PyTorch `nn.GELU()` after `nn.Linear`;
//! backward `dx = g·(Φ(v) + v·φ(v))`, `db = Σ_rows dx`) and `nn.LayerNorm` (biased variance; backward
//! `dx = rstd·(g·w − mean(g·w) − x̂·mean(g·w·x̂))`, `dw = Σ_rows g·x̂`, `db = Σ_rows g`) and the softmax over
//! the last dimension (backward `dx = y·(g − Σ g·y)`). Row sums run as
//! `[1, rows] × [rows, n]` products (multi-threaded). f32 on CPU only; callers fall back to composed ops.
use super::fused::erf_fast;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Rows per parallel chunk: about 16 k elements.
fn rows_per_chunk(n: usize) -> usize {
    (16384 / n.max(1)).max(1)
}

fn slices<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else { candle_core::bail!("bias-gelu: {what} must be f32") };
    let Some((a, b)) = l.contiguous_offsets() else { candle_core::bail!("bias-gelu: {what} must be contiguous") };
    Ok(&v[a..b])
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
        let mut out = vec![0f32; x.len()];
        let c = rows_per_chunk(n) * n;
        out.par_chunks_mut(c).zip(x.par_chunks(c)).for_each(|(o, xi)| {
            for (orow, xrow) in o.chunks_mut(n).zip(xi.chunks(n)) {
                for ((o, &v), &bb) in orow.iter_mut().zip(xrow).zip(b) {
                    *o = gelu(v + bb);
                }
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
        let mut out = vec![0f32; x.len()];
        let c = rows_per_chunk(n) * n;
        out.par_chunks_mut(c).zip(x.par_chunks(c).zip(g.par_chunks(c))).for_each(|(o, (xi, gi))| {
            for ((orow, xrow), grow) in o.chunks_mut(n).zip(xi.chunks(n)).zip(gi.chunks(n)) {
                for (((o, &v), &bb), &gg) in orow.iter_mut().zip(xrow).zip(b).zip(grow) {
                    *o = gg * gelu_grad(v + bb);
                }
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// Mean and 1/sqrt(var + eps) of one row (two passes, f64 accumulation as the composed f32 path rounds less).
#[inline]
fn row_stats(x: &[f32], eps: f32) -> (f32, f32) {
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    (mean as f32, (1.0 / (var + eps as f64).sqrt()) as f32)
}

/// LayerNorm over the last dimension: `(x, w, b) → (x − mean)·rstd·w + b`.
struct LayerNormOp(f32);

/// `(x, w, g) → dx`.
struct LayerNormGradX(f32);

/// `(x, g) → g · x̂` (summed over rows for dw).
struct LayerNormGxhat(f32);

fn ln_check(l: &Layout, n: usize, what: &str) -> Result<()> {
    if n == 0 || l.dims().last() != Some(&n) {
        candle_core::bail!("layer-norm: {what} {:?} does not end in the normalised width {n}", l.dims());
    }
    Ok(())
}

impl CustomOp3 for LayerNormOp {
    fn name(&self) -> &'static str {
        "emoclip-layer-norm"
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
        let (x, w, b) = (slices(s1, l1, "input")?, slices(s2, l2, "weight")?, slices(s3, l3, "bias")?);
        let n = w.len();
        ln_check(l1, n, "input")?;
        if b.len() != n {
            candle_core::bail!("layer-norm: bias of {} for width {n}", b.len());
        }
        let mut out = vec![0f32; x.len()];
        let c = rows_per_chunk(n) * n;
        out.par_chunks_mut(c).zip(x.par_chunks(c)).for_each(|(o, xi)| {
            for (orow, xrow) in o.chunks_mut(n).zip(xi.chunks(n)) {
                let (mean, rstd) = row_stats(xrow, self.0);
                for (((o, &v), &ww), &bb) in orow.iter_mut().zip(xrow).zip(w).zip(b) {
                    *o = (v - mean) * rstd * ww + bb;
                }
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = grad.contiguous()?;
        let dx = x.apply_op3_no_bwd(w, &g, &LayerNormGradX(self.0))?;
        let n = w.elem_count();
        let rows = x.elem_count() / n.max(1);
        let gxhat = x.apply_op2_no_bwd(&g, &LayerNormGxhat(self.0))?;
        let ones = Tensor::ones((1, rows), DType::F32, x.device())?;
        let dw = ones.matmul(&gxhat.reshape((rows, n))?)?.reshape(w.shape())?;
        let db = ones.matmul(&g.reshape((rows, n))?)?.reshape(b.shape())?;
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

impl CustomOp3 for LayerNormGradX {
    fn name(&self) -> &'static str {
        "emoclip-layer-norm-grad-x"
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
        let (x, w, g) = (slices(s1, l1, "input")?, slices(s2, l2, "weight")?, slices(s3, l3, "gradient")?);
        let n = w.len();
        ln_check(l1, n, "input")?;
        if g.len() != x.len() {
            candle_core::bail!("layer-norm backward: gradient {:?} for input {:?}", l3.dims(), l1.dims());
        }
        let mut out = vec![0f32; x.len()];
        let c = rows_per_chunk(n) * n;
        out.par_chunks_mut(c).zip(x.par_chunks(c).zip(g.par_chunks(c))).for_each(|(o, (xi, gi))| {
            for ((orow, xrow), grow) in o.chunks_mut(n).zip(xi.chunks(n)).zip(gi.chunks(n)) {
                let (mean, rstd) = row_stats(xrow, self.0);
                let (mut m1, mut m2) = (0f64, 0f64);
                for ((&v, &ww), &gg) in xrow.iter().zip(w).zip(grow) {
                    let gy = (gg * ww) as f64;
                    m1 += gy;
                    m2 += gy * ((v - mean) * rstd) as f64;
                }
                let (m1, m2) = ((m1 / n as f64) as f32, (m2 / n as f64) as f32);
                for (((o, &v), &ww), &gg) in orow.iter_mut().zip(xrow).zip(w).zip(grow) {
                    let xhat = (v - mean) * rstd;
                    *o = rstd * (gg * ww - m1 - xhat * m2);
                }
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

impl CustomOp2 for LayerNormGxhat {
    fn name(&self) -> &'static str {
        "emoclip-layer-norm-g-xhat"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, g) = (slices(s1, l1, "input")?, slices(s2, l2, "gradient")?);
        let n = *l1.dims().last().unwrap_or(&0);
        if n == 0 || g.len() != x.len() {
            candle_core::bail!("layer-norm backward: gradient {:?} for input {:?}", l2.dims(), l1.dims());
        }
        let mut out = vec![0f32; x.len()];
        let c = rows_per_chunk(n) * n;
        out.par_chunks_mut(c).zip(x.par_chunks(c).zip(g.par_chunks(c))).for_each(|(o, (xi, gi))| {
            for ((orow, xrow), grow) in o.chunks_mut(n).zip(xi.chunks(n)).zip(gi.chunks(n)) {
                let (mean, rstd) = row_stats(xrow, self.0);
                for ((o, &v), &gg) in orow.iter_mut().zip(xrow).zip(grow) {
                    *o = gg * (v - mean) * rstd;
                }
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// LayerNorm over the last dimension (`weight`, `bias`: `[n]`), differentiable in all three inputs.
pub fn layer_norm(xs: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    xs.contiguous()?.apply_op3(&weight.contiguous()?, &bias.contiguous()?, LayerNormOp(eps as f32))
}

/// True when [`layer_norm`] applies: CPU, f32 everywhere, 1-d weight and bias of the last dimension.
pub fn ln_usable(xs: &Tensor, weight: &Tensor, bias: &Tensor) -> bool {
    let n = xs.dims().last().copied();
    xs.device().is_cpu()
        && [xs, weight, bias].iter().all(|t| t.dtype() == DType::F32)
        && weight.rank() == 1
        && bias.rank() == 1
        && n == Some(weight.elem_count())
        && n == Some(bias.elem_count())
}

/// Softmax over the last dimension.
struct SoftmaxOp;

/// `(y, g) → y·(g − Σ g·y)`.
struct SoftmaxGrad;

impl candle_core::CustomOp1 for SoftmaxOp {
    fn name(&self) -> &'static str {
        "emoclip-softmax"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = slices(s1, l1, "input")?;
        let n = *l1.dims().last().unwrap_or(&0);
        if n == 0 {
            candle_core::bail!("softmax over an empty dimension {:?}", l1.dims());
        }
        let mut out = vec![0f32; x.len()];
        let c = rows_per_chunk(n) * n;
        out.par_chunks_mut(c).zip(x.par_chunks(c)).for_each(|(o, xi)| {
            for (orow, xrow) in o.chunks_mut(n).zip(xi.chunks(n)) {
                let m = xrow.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0f32;
                for (o, &v) in orow.iter_mut().zip(xrow) {
                    *o = (v - m).exp();
                    sum += *o;
                }
                let inv = 1.0 / sum;
                orow.iter_mut().for_each(|o| *o *= inv);
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(res.apply_op2_no_bwd(&grad.contiguous()?, &SoftmaxGrad)?))
    }
}

impl CustomOp2 for SoftmaxGrad {
    fn name(&self) -> &'static str {
        "emoclip-softmax-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (y, g) = (slices(s1, l1, "softmax output")?, slices(s2, l2, "gradient")?);
        let n = *l1.dims().last().unwrap_or(&0);
        if n == 0 || y.len() != g.len() {
            candle_core::bail!("softmax backward: gradient {:?} for output {:?}", l2.dims(), l1.dims());
        }
        let mut out = vec![0f32; y.len()];
        let c = rows_per_chunk(n) * n;
        out.par_chunks_mut(c).zip(y.par_chunks(c).zip(g.par_chunks(c))).for_each(|(o, (yi, gi))| {
            for ((orow, yrow), grow) in o.chunks_mut(n).zip(yi.chunks(n)).zip(gi.chunks(n)) {
                let dot: f32 = yrow.iter().zip(grow).map(|(&a, &b)| a * b).sum();
                for ((o, &yy), &gg) in orow.iter_mut().zip(yrow).zip(grow) {
                    *o = yy * (gg - dot);
                }
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// Softmax over the last dimension, differentiable (CPU, f32).
pub fn softmax_last_dim(xs: &Tensor) -> Result<Tensor> {
    xs.contiguous()?.apply_op1(SoftmaxOp)
}

/// True when the differentiable fused kernel applies: CPU and f32.
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

    #[test]
    fn softmax_value_and_gradient_match_composed_ops() {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 3.0, (3, 5, 17), &dev).unwrap()).unwrap();
        let up = Tensor::randn(0f32, 1.0, (3, 5, 17), &dev).unwrap();
        let fused = softmax_last_dim(x.as_tensor()).unwrap();
        let x_ = x.as_tensor();
        let e = x_.broadcast_sub(&x_.max_keepdim(candle_core::D::Minus1).unwrap().detach()).unwrap().exp().unwrap();
        let composed = e.broadcast_div(&e.sum_keepdim(candle_core::D::Minus1).unwrap()).unwrap();
        let max = |t: Tensor| t.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
        assert!(max((&fused - &composed).unwrap()) < 1e-6);
        let gf = (fused * &up).unwrap().sum_all().unwrap().backward().unwrap();
        let gc = (composed * &up).unwrap().sum_all().unwrap().backward().unwrap();
        let (a, c) = (gf.get(x.as_tensor()).unwrap(), gc.get(x.as_tensor()).unwrap());
        assert!(max((a - c).unwrap()) < 1e-5 * max(c.clone()).max(1.0));
        assert!(max(a.clone()) > 0.0);
    }

    #[test]
    fn layer_norm_value_and_gradients_match_composed_ops() {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&(Tensor::randn(0f32, 3.0, (2, 37, 48), &dev).unwrap() + 1.5).unwrap()).unwrap();
        let w = Var::from_tensor(&(Tensor::randn(0f32, 0.3, 48, &dev).unwrap() + 1.0).unwrap()).unwrap();
        let b = Var::from_tensor(&Tensor::randn(0f32, 0.3, 48, &dev).unwrap()).unwrap();
        let up = Tensor::randn(0f32, 1.0, (2, 37, 48), &dev).unwrap();
        let fused = layer_norm(x.as_tensor(), w.as_tensor(), b.as_tensor(), 1e-5).unwrap();
        // The composed differentiable path (crate::nn::LayerNorm with tracked inputs).
        let ln = crate::nn::LayerNorm { weight: w.as_tensor().clone(), bias: b.as_tensor().clone(), eps: 1e-5 };
        let x_ = x.as_tensor();
        let mean = x_.mean_keepdim(candle_core::D::Minus1).unwrap();
        let xc = x_.broadcast_sub(&mean).unwrap();
        let var = xc.sqr().unwrap().mean_keepdim(candle_core::D::Minus1).unwrap();
        let composed = xc
            .broadcast_div(&(var + 1e-5).unwrap().sqrt().unwrap())
            .unwrap()
            .broadcast_mul(&ln.weight)
            .unwrap()
            .broadcast_add(&ln.bias)
            .unwrap();
        let max = |t: Tensor| t.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
        assert!(max((&fused - &composed).unwrap()) < 5e-6);
        let gf = (fused * &up).unwrap().sum_all().unwrap().backward().unwrap();
        let gc = (composed * &up).unwrap().sum_all().unwrap().backward().unwrap();
        for (name, v) in [("x", &x), ("w", &w), ("b", &b)] {
            let (a, c) = (gf.get(v.as_tensor()).unwrap(), gc.get(v.as_tensor()).unwrap());
            let err = max((a - c).unwrap());
            let scale = max(c.clone()).max(1.0);
            assert!(err / scale < 1e-5, "d{name}: max error {err} (scale {scale})");
            assert!(max(a.clone()) > 0.0);
        }
    }
}
