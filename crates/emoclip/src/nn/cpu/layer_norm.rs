//! Differentiable fused CPU kernel for training: PyTorch `nn.LayerNorm` over the last dimension (biased
//! variance; backward `dx = rstd·(g·w − mean(g·w) − x̂·mean(g·w·x̂))`, `dw = Σ_rows g·x̂`, `db = Σ_rows g`), one
//! multi-threaded pass per output where candle's composed autograd runs ~30. Row sums run as
//! `[1, rows] × [rows, n]` products (multi-threaded). f32 on CPU only; callers fall back to composed ops.
use super::rows::{f32_slice, map_rows};
use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor};

fn slices<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    f32_slice(s, l, "layer-norm", what)
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
        let out = map_rows([x], n, |orow, [xrow]| {
            let (mean, rstd) = row_stats(xrow, self.0);
            for (((o, &v), &ww), &bb) in orow.iter_mut().zip(xrow).zip(w).zip(b) {
                *o = (v - mean) * rstd * ww + bb;
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
        let out = map_rows([x, g], n, |orow, [xrow, grow]| {
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
        let out = map_rows([x, g], n, |orow, [xrow, grow]| {
            let (mean, rstd) = row_stats(xrow, self.0);
            for ((o, &v), &gg) in orow.iter_mut().zip(xrow).zip(grow) {
                *o = gg * (v - mean) * rstd;
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
pub fn usable(xs: &Tensor, weight: &Tensor, bias: &Tensor) -> bool {
    let n = xs.dims().last().copied();
    xs.device().is_cpu()
        && [xs, weight, bias].iter().all(|t| t.dtype() == DType::F32)
        && weight.rank() == 1
        && bias.rank() == 1
        && n == Some(weight.elem_count())
        && n == Some(bias.elem_count())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

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
