//! Scaled dot-product attention for bf16 inference on the CPU kernel, one task per (sample, head) with its
//! operands in cache. The same operations as [`super::attention::attend`] in bf16 mode, in the same order and
//! bit-identical (q scaled in f32, QKᵀ and PV as bf16 products with f32 accumulation, the additive mask and
//! candle's softmax in f32), but q, k and v are read where the projection wrote them and each head writes its
//! columns of `[B, Lq, H·hd]`: the composed path's copies of q, k, v and of the output, and its two
//! `[B, H, Lq, S]` tensors, are not made.
use super::cpu::gemm_bf16::{self, ConvA, Epilogue, OutPtr, PackedB};
use candle_core::cpu::kernels::VecOps;
use candle_core::{CpuStorage, DType, Layout, Result, Storage, Tensor};

/// True when [`attention`] can take `q, k, v` (and `mask`): bf16 mode on the kernel, no autograd.
pub fn usable(q: &Tensor, k: &Tensor, v: &Tensor) -> bool {
    super::matmul_bf16::active(&[q, k, v]) && !super::tracked(&[q, k, v])
}

/// Softmax`(scale·q kᵀ + mask) v` for `q: [B, H, Lq, hd]`, `k, v: [B, H, S, hd]` (f32 CPU, any strides, e.g.
/// views of a fused projection) and an additive `mask` broadcastable to `[B, H, Lq, S]`. Returns the heads
/// concatenated, `[B, Lq, H·hd]`. Inference only (no dropout, no backward; see [`usable`]).
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>, scale: f64) -> Result<Tensor> {
    let (b, h, lq, hd) = q.dims4()?;
    let s = k.dim(2)?;
    if k.dims() != [b, h, s, hd] || v.dims() != [b, h, s, hd] {
        candle_core::bail!("bf16 attention: q {:?}, k {:?}, v {:?} do not fit", q.dims(), k.dims(), v.dims());
    }
    let mask = match mask {
        Some(m) => Some(m.to_dtype(DType::F32)?.broadcast_as((b, h, lq, s))?),
        None => None,
    };
    let (qs, ql) = q.storage_and_layout();
    let (ks, kl) = k.storage_and_layout();
    let (vs, vl) = v.storage_and_layout();
    let ms = mask.as_ref().map(|m| m.storage_and_layout());
    let qd = f32_data(&qs)?;
    let kd = f32_data(&ks)?;
    let vd = f32_data(&vs)?;
    let md = match &ms {
        Some((st, l)) => Some((f32_data(st)?, *l)),
        None => None,
    };
    let d = h * hd;
    let len = b * lq * d;
    let mut out: Vec<f32> = Vec::with_capacity(len);
    let o = OutPtr(out.as_mut_ptr());
    let scale = scale as f32;
    let task = |t: usize| {
        let (bi, hi) = (t / h, t % h);
        let at = |l: &Layout| l.start_offset() + bi * l.stride()[0] + hi * l.stride()[1];
        let st = |l: &Layout| (l.stride()[2], l.stride()[3]);
        // q · scale as candle's affine (`x * scale + 0`), then the scores q kᵀ.
        let (q0, (qr, qc)) = (at(ql), st(ql));
        let mut qv = Vec::with_capacity(lq * hd);
        for i in 0..lq {
            qv.extend((0..hd).map(|c| qd[q0 + i * qr + c * qc] * scale + 0.0));
        }
        let (k0, (kr, kc)) = (at(kl), st(kl));
        let kt = PackedB::pack(&kd[k0..], hd, s, kc, kr);
        let mut att = vec![0f32; lq * s];
        gemm_bf16::gemm(&ConvA::convert(&qv, lq, hd, hd, 1), &kt, &mut att, s, Epilogue::None, false);
        for (i, row) in att.chunks_mut(s).enumerate() {
            if let Some((m, l)) = md {
                let m0 = at(l) + i * l.stride()[2];
                let mc = l.stride()[3];
                row.iter_mut().enumerate().for_each(|(j, x)| *x += m[m0 + j * mc]);
            }
            softmax_row(row);
        }
        let (v0, (vr, vc)) = (at(vl), st(vl));
        let pv = PackedB::pack(&vd[v0..], s, hd, vr, vc);
        // SAFETY: this task alone writes columns hi·hd.. (hi + 1)·hd of sample bi's Lq rows.
        unsafe {
            let c = o.get().add(bi * lq * d + hi * hd);
            gemm_bf16::gemm_raw(&ConvA::convert(&att, lq, s, s, 1), &pv, c, d, Epilogue::None, false);
        }
    };
    if len > 0 {
        gemm_bf16::par_for(b * h, task);
    }
    // SAFETY: the tasks wrote every (sample, row, head column) of the output (s = 0 gives zeros).
    unsafe { out.set_len(len) };
    Tensor::from_vec(out, (b, lq, d), q.device())
}

/// candle's CPU `softmax_last_dim` on one row, operation for operation (the same reductions and `exp`).
fn softmax_row(row: &mut [f32]) {
    if row.is_empty() {
        return;
    }
    let mut max = f32::NEG_INFINITY;
    // SAFETY: `row` is non-empty and `max`/`sum` are valid for writes.
    unsafe { f32::vec_reduce_max(row.as_ptr(), &mut max, row.len()) };
    row.iter_mut().for_each(|x| *x = (*x - max).exp());
    let mut sum = 0f32;
    unsafe { f32::vec_reduce_sum(row.as_ptr(), &mut sum, row.len()) };
    row.iter_mut().for_each(|x| *x /= sum);
}

/// The f32 elements of a CPU storage.
fn f32_data(s: &Storage) -> Result<&[f32]> {
    match s {
        Storage::Cpu(CpuStorage::F32(v)) => Ok(v),
        _ => candle_core::bail!("bf16 attention: f32 CPU tensors only"),
    }
}
