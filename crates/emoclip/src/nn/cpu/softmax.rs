//! Differentiable fused CPU kernel: the softmax over the last dimension (PyTorch `softmax(dim=-1)`; backward
//! `dx = y·(g − Σ g·y)`), one multi-threaded pass each way. f32 on CPU only; callers fall back to composed ops.
use super::rows::{f32_slice, map_rows};
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};

fn slices<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    f32_slice(s, l, "softmax", what)
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
        let out = map_rows([x], n, |orow, [xrow]| {
            let m = xrow.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0f32;
            for (o, &v) in orow.iter_mut().zip(xrow) {
                *o = (v - m).exp();
                sum += *o;
            }
            let inv = 1.0 / sum;
            orow.iter_mut().for_each(|o| *o *= inv);
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
        let out = map_rows([y, g], n, |orow, [yrow, grow]| {
            let dot: f32 = yrow.iter().zip(grow).map(|(&a, &b)| a * b).sum();
            for ((o, &yy), &gg) in orow.iter_mut().zip(yrow).zip(grow) {
                *o = yy * (gg - dot);
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// Softmax over the last dimension, differentiable (CPU, f32).
pub fn softmax_last_dim(xs: &Tensor) -> Result<Tensor> {
    xs.contiguous()?.apply_op1(SoftmaxOp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

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
}
