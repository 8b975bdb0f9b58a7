//! LayerNorm for bf16 inference whose output goes straight into the bf16 kernel's products: PyTorch
//! `nn.LayerNorm` over the last dimension (two-pass mean and biased variance, as `torch.native_layer_norm` on
//! CPU) in f32 with 16 lane-wise partial sums, written as bf16 (round to nearest even, as
//! [`super::gemm_bf16::to_bf16`]): the rounding the product would apply to an f32 output, without writing,
//! reading and converting that f32 tensor. candle's f32 `layer_norm` sums each row in one scalar chain
//! (`E[x²] − E[x]²`), ~4× slower on the model's rows. No backward (inference only).
use super::gemm_bf16;
use super::rows::{f32_slice, rows_per_chunk, zeroed};
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Lanes of the partial sums (one zmm of f32).
const LANES: usize = 16;

/// `(x, w, b)` contiguous f32 on the CPU, `w` and `b` of the last dimension's width, that width even (each
/// output row is whole bf16 pairs), nothing tracked by autograd.
pub fn usable(x: &Tensor, w: &Tensor, b: &Tensor) -> bool {
    let n = x.dims().last().copied().unwrap_or(0);
    n > 0
        && n.is_multiple_of(2)
        && [x, w, b].iter().all(|t| t.device().is_cpu() && t.dtype() == candle_core::DType::F32)
        && w.elem_count() == n
        && b.elem_count() == n
        && !crate::nn::tracked(&[x, w, b])
}

/// `(x − mean)·rstd·w + b` over the last dimension of `x`, as a bf16 tensor of `x`'s shape.
pub fn layer_norm_bf16(x: &Tensor, w: &Tensor, b: &Tensor, eps: f64) -> Result<Tensor> {
    x.contiguous()?.apply_op3_no_bwd(&w.contiguous()?, &b.contiguous()?, &LayerNormBf16(eps as f32))
}

/// Sum of `f(x)` over `x` in [`LANES`] partial sums (lane `j` adds elements `j, j + 16, …` in order), then the
/// lanes added in order: a fixed order, vectorised by the compiler.
#[inline]
fn lane_sum(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += f(v);
        }
    }
    for (a, &v) in acc.iter_mut().zip(tail) {
        *a += f(v);
    }
    acc.iter().sum()
}

/// A row's mean, then `1/sqrt(var + eps)` of the biased variance of the centred values.
#[inline]
fn row_stats(x: &[f32], eps: f32) -> (f32, f32) {
    let n = x.len() as f32;
    let mean = lane_sum(x, |v| v) / n;
    let var = lane_sum(x, |v| (v - mean) * (v - mean)) / n;
    (mean, 1.0 / (var + eps).sqrt())
}

/// One row: its statistics, then the affine map, rounded to bf16 pairs in `out` via the f32 row `tmp`.
fn row(x: &[f32], w: &[f32], b: &[f32], eps: f32, tmp: &mut [f32], out: &mut [u32]) {
    let (mean, rstd) = row_stats(x, eps);
    for (((t, &v), &w), &b) in tmp.iter_mut().zip(x).zip(w).zip(b) {
        *t = (v - mean) * rstd * w + b;
    }
    gemm_bf16::to_bf16_pairs(tmp, out);
}

struct LayerNormBf16(f32);

impl CustomOp3 for LayerNormBf16 {
    fn name(&self) -> &'static str {
        "emoclip-layer-norm-bf16"
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
        let x = f32_slice(s1, l1, "layer-norm-bf16", "input")?;
        let w = f32_slice(s2, l2, "layer-norm-bf16", "weight")?;
        let b = f32_slice(s3, l3, "layer-norm-bf16", "bias")?;
        let n = l1.dims().last().copied().unwrap_or(0);
        if n == 0 || !n.is_multiple_of(2) || w.len() != n || b.len() != n {
            candle_core::bail!(
                "layer-norm-bf16: width {n} (must be even) with weight {} and bias {}",
                w.len(),
                b.len()
            );
        }
        let rows = x.len() / n;
        // Whole rows per task (as `rows::map_rows`), each task zeroing its own chunk.
        let per = rows_per_chunk(n);
        let mut out: Vec<half::bf16> = Vec::with_capacity(rows * n);
        out.spare_capacity_mut()[..rows * n].par_chunks_mut(per * n).zip(x.par_chunks(per * n)).for_each(|(o, xs)| {
            let o = zeroed(o);
            let mut tmp = vec![0f32; n];
            let mut pairs = vec![0u32; n / 2];
            for (orow, xrow) in o.chunks_mut(n).zip(xs.chunks(n)) {
                row(xrow, w, b, self.0, &mut tmp, &mut pairs);
                // Pair p holds element 2p in its low half: little-endian, the row's bf16 elements in order.
                for (d, &p) in orow.chunks_exact_mut(2).zip(&pairs) {
                    d[0] = half::bf16::from_bits(p as u16);
                    d[1] = half::bf16::from_bits((p >> 16) as u16);
                }
            }
        });
        // SAFETY: every chunk of the first `rows · n` elements was initialised by `zeroed`.
        unsafe { out.set_len(rows * n) };
        Ok((CpuStorage::BF16(out), l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::cpu::gemm_bf16::to_bf16;

    /// The scalar definition of one row's output elements ([`row`] with the scalar [`to_bf16`]).
    fn reference_row(x: &[f32], w: &[f32], b: &[f32], eps: f32) -> Vec<u16> {
        let (mean, rstd) = row_stats(x, eps);
        x.iter().zip(w).zip(b).map(|((&v, &w), &b)| to_bf16((v - mean) * rstd * w + b)).collect()
    }

    /// f64 LayerNorm of one row.
    fn f64_row(x: &[f32], w: &[f32], b: &[f32], eps: f64) -> Vec<f64> {
        let n = x.len() as f64;
        let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        let rstd = 1.0 / (var + eps).sqrt();
        x.iter().zip(w).zip(b).map(|((&v, &w), &b)| (v as f64 - mean) * rstd * w as f64 + b as f64).collect()
    }

    #[test]
    fn rows_equal_the_scalar_definition_and_f64_within_bf16_rounding() {
        use rand::Rng;
        let mut rng = crate::rng::named_rng(7, "layer-norm-bf16");
        for &(rows, n) in &[(1usize, 2usize), (3, 18), (5, 768), (70, 512), (2, 1000)] {
            let x: Vec<f32> = (0..rows * n).map(|i| rng.random_range(-3.0f32..3.0) + (i % 7) as f32).collect();
            let w: Vec<f32> = (0..n).map(|_| rng.random_range(0.8f32..1.2)).collect();
            let b: Vec<f32> = (0..n).map(|_| rng.random_range(-0.1f32..0.1)).collect();
            let xt = Tensor::from_vec(x.clone(), (rows, n), &candle_core::Device::Cpu).unwrap();
            let wt = Tensor::from_vec(w.clone(), n, &candle_core::Device::Cpu).unwrap();
            let bt = Tensor::from_vec(b.clone(), n, &candle_core::Device::Cpu).unwrap();
            let y = layer_norm_bf16(&xt, &wt, &bt, 1e-5).unwrap();
            assert_eq!(y.dims(), &[rows, n]);
            let got: Vec<u16> =
                y.flatten_all().unwrap().to_vec1::<half::bf16>().unwrap().iter().map(|h| h.to_bits()).collect();
            for r in 0..rows {
                let xr = &x[r * n..(r + 1) * n];
                assert_eq!(
                    &got[r * n..(r + 1) * n],
                    reference_row(xr, &w, &b, 1e-5).as_slice(),
                    "[{rows}, {n}] row {r}"
                );
                // Within one bf16 rounding (2⁻⁸ relative) plus f32 arithmetic of the statistics.
                for (g, e) in got[r * n..(r + 1) * n].iter().zip(f64_row(xr, &w, &b, 1e-5)) {
                    let g = gemm_bf16::from_bf16(*g) as f64;
                    assert!((g - e).abs() <= e.abs() * 2f64.powi(-8) + 1e-5, "[{rows}, {n}] row {r}: {g} vs {e}");
                }
            }
        }
    }
}
