//! candle operations on the bf16 CPU kernel ([`super::cpu::gemm_bf16`]), the counterpart of PyTorch's bf16
//! `addmm`/`bmm` under `torch.autocast("cpu", dtype=torch.bfloat16)`: f32 tensors in and out, products of
//! bf16-rounded operands with f32 accumulation. [`matmul`] is differentiable (its backward runs the same kernel
//! for `dA = dC·Bᵀ` and `dB = Aᵀ·dC`); [`linear`] multiplies by a weight packed once ([`WeightCache`]) and fuses
//! the bias and activation into the output pass (inference only).
use super::cpu::gemm_bf16::{self, ConvA, Epilogue, OutPtr, PackedB};
use super::Activation;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor, TensorId};
use std::sync::{Arc, Mutex};

/// True when matrix products of `ts` take the kernel: the thread is in bf16 [`super::autocast`], the kernel is
/// [`gemm_bf16::available`], and all are f32 on the CPU.
pub fn active(ts: &[&Tensor]) -> bool {
    super::autocast::current() == Some(DType::BF16)
        && gemm_bf16::available()
        && ts.iter().all(|t| t.device().is_cpu() && t.dtype() == DType::F32)
}

/// [`active`] for `others`, with the product's input `x` f32 or already bf16 (rounded by the op before it, e.g.
/// [`crate::nn::LayerNorm::forward_into_products`]) on the CPU.
pub fn active_input(x: &Tensor, others: &[&Tensor]) -> bool {
    active(others) && x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::BF16)
}

/// A weight's packed bf16 form, made on first use and kept with the layer (clones share it). Keyed by the
/// weight tensor's id, so assigning another tensor to the layer repacks; a weight whose storage is changed in
/// place must be a tracked variable (then nothing is cached: training packs per call). After
/// [`WeightCache::pack_only`] the packed form is all the layer has: its f32 weight is gone.
#[derive(Clone, Default)]
pub struct WeightCache(Arc<Mutex<Option<Cached>>>);

/// The id of the weight tensor a packed form was made from (`None`: the f32 weight was dropped), and the
/// packed form.
type Cached = (Option<TensorId>, Arc<Packed>);

impl std::fmt::Debug for WeightCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.0.lock().as_deref() {
            Ok(Some((Some(_), _))) => "packed",
            Ok(Some((None, _))) => "packed only (f32 weight dropped)",
            Ok(None) => "empty",
            Err(_) => "poisoned",
        };
        write!(f, "WeightCache({state})")
    }
}

/// A packed weight `[N, K]` (as `B = Wᵀ`) and its bias.
pub struct Packed {
    b: PackedB,
    bias: Option<Vec<f32>>,
}

/// The error for a layer used outside bf16 inference after [`WeightCache::pack_only`].
pub fn dropped_f32_error() -> candle_core::Error {
    candle_core::Error::Msg(
        "this layer keeps only its bf16 weights (the model was loaded for bf16 inference on the CPU), so it cannot \
         run in f32, on another device or with autograd; load the model again with dtype f32 for that"
            .into(),
    )
}

impl WeightCache {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Option<Cached>>> {
        self.0.lock().map_err(|_| candle_core::Error::Msg("bf16 weight cache poisoned".into()))
    }

    /// The packed form of `weight [N, ...]` (flattened to `[N, K]`) and `bias [N]`, packing it now if it is not
    /// cached yet; an error when the cached form was packed with a bias and `bias` is none, or the other way
    /// round. After [`Self::pack_only`] the arguments are not read.
    fn get(&self, weight: &Tensor, bias: Option<&Tensor>) -> Result<Arc<Packed>> {
        let mut g = self.lock()?;
        match g.as_ref() {
            Some((None, p)) => return Ok(p.clone()),
            Some((Some(id), p)) if *id == weight.id() => {
                if p.bias.is_some() != bias.is_some() {
                    candle_core::bail!("bf16 linear: the cached weight was packed with a different bias");
                }
                return Ok(p.clone());
            }
            _ => {}
        }
        let n = weight.dim(0)?;
        let k = weight.elem_count() / n.max(1);
        let w: Vec<f32> = weight.flatten_all()?.to_vec1()?;
        let bias = match bias {
            Some(b) => Some(b.flatten_all()?.to_vec1::<f32>()?),
            None => None,
        };
        let p = Arc::new(Packed { b: PackedB::from_weight(&w, n, k), bias });
        *g = Some((Some(weight.id()), p.clone()));
        Ok(p)
    }

    /// A new cache holding `weight` and `bias` packed (reusing this cache's packed form when it has one), not
    /// tied to the tensor, so the caller can drop its f32 copy: only bf16 inference ([`linear`]) runs with it.
    /// Clones sharing this cache (and their f32 weights) are not affected.
    pub fn pack_only(&self, weight: &Tensor, bias: Option<&Tensor>) -> Result<Self> {
        let p = self.get(weight, bias)?;
        Ok(Self(Arc::new(Mutex::new(Some((None, p))))))
    }

    /// True after [`Self::pack_only`].
    pub fn is_pack_only(&self) -> bool {
        self.0.lock().map(|g| matches!(g.as_ref(), Some((None, _)))).unwrap_or(false)
    }

    /// `(N, K)` of the weight after [`Self::pack_only`] (the packed form is then the only record of them).
    pub fn pack_only_dims(&self) -> Option<(usize, usize)> {
        match self.0.lock().ok()?.as_ref() {
            Some((None, p)) => Some((p.b.n, p.b.k)),
            _ => None,
        }
    }
}

/// `act(x · weightᵀ + bias)` for `x [M, K]`, `weight [N, K]` (or `[N, ...]` flattened, e.g. a patch-embedding
/// convolution; packed once into `cache`), `bias [N]`. Inference:
/// nothing may be tracked (the caller checks). The bias is taken from the cache with the weight.
pub fn linear(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    act: Option<Activation>,
    cache: &WeightCache,
) -> Result<Tensor> {
    let packed = cache.get(weight, bias)?;
    x.apply_op1_no_bwd(&PackedLinear { packed, act })
}

/// `residual + (x · weightᵀ + bias)` for `x [M, K]` and `residual [M, N]` (a pre-norm block's skip
/// connection), the addition fused into the product's output pass; otherwise as [`linear`].
pub fn linear_residual(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    residual: &Tensor,
    cache: &WeightCache,
) -> Result<Tensor> {
    let packed = cache.get(weight, bias)?;
    x.apply_op2_no_bwd(&residual.contiguous()?, &PackedLinear { packed, act: None })
}

struct PackedLinear {
    packed: Arc<Packed>,
    act: Option<Activation>,
}

impl PackedLinear {
    /// `x [M, K]` for the kernel, checked against the packed weight: f32 (any strides) converted, bf16
    /// (contiguous rows of even width, e.g. from [`crate::nn::LayerNorm::forward_into_products`]) used in place.
    fn input<'a>(&self, s: &'a CpuStorage, l: &Layout) -> Result<ConvA<'a>> {
        let (m, k) = match l.dims() {
            [m, k] => (*m, *k),
            d => candle_core::bail!("bf16 linear: input must be [M, K], got {d:?}"),
        };
        if k != self.packed.b.k {
            candle_core::bail!("bf16 linear: input width {k} for a weight of width {}", self.packed.b.k);
        }
        let (rs, cs) = (l.stride()[0], l.stride()[1]);
        match s {
            CpuStorage::F32(x) => Ok(ConvA::convert(&x[l.start_offset()..], m, k, rs, cs)),
            CpuStorage::BF16(x) => match l.contiguous_offsets() {
                Some((a, b)) if k.is_multiple_of(2) => Ok(ConvA::from_pairs(bf16_pairs(&x[a..b]), m, k)),
                _ => candle_core::bail!("bf16 linear: a bf16 input must be contiguous with an even width"),
            },
            _ => candle_core::bail!("bf16 linear: f32 or bf16 input only"),
        }
    }
}

/// Contiguous bf16 elements (an even count) as the kernel's pairs: pair `p` holds elements `2p` (low half) and
/// `2p + 1` (high half), which is their layout in memory on little-endian x86-64 (where the kernel runs), so
/// aligned data is used without a copy.
fn bf16_pairs(x: &[half::bf16]) -> std::borrow::Cow<'_, [u32]> {
    // SAFETY: bf16 is 2 plain bytes; `align_to` only yields a middle part of properly aligned whole u32.
    let (head, mid, tail) = unsafe { x.align_to::<u32>() };
    if head.is_empty() && tail.is_empty() {
        return mid.into();
    }
    x.chunks(2).map(|p| p[0].to_bits() as u32 | (p.get(1).map_or(0, |h| h.to_bits() as u32) << 16)).collect()
}

impl CustomOp2 for PackedLinear {
    fn name(&self) -> &'static str {
        "emoclip-bf16-linear-residual"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let a = self.input(s1, l1)?;
        let (m, n) = (a.m, self.packed.b.n);
        let CpuStorage::F32(r) = s2 else { candle_core::bail!("bf16 linear: f32 residual only") };
        if l2.dims() != [m, n] || !l2.is_contiguous() {
            candle_core::bail!("bf16 linear: residual {:?} for an output [{m}, {n}] (contiguous)", l2.dims());
        }
        let r = &r[l2.start_offset()..l2.start_offset() + m * n];
        let epilogue = Epilogue::BiasResidual(self.packed.bias.as_deref(), r);
        let out = gemm_bf16::gemm_new(&a, &self.packed.b, epilogue, true);
        Ok((CpuStorage::F32(out), Shape::from((m, n))))
    }
}

impl CustomOp1 for PackedLinear {
    fn name(&self) -> &'static str {
        "emoclip-bf16-linear"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let a = self.input(s, l)?;
        let pb = &self.packed.b;
        let (m, n) = (a.m, pb.n);
        let bias = self.packed.bias.as_deref();
        let act = self.act;
        let custom = move |_row: usize, col0: usize, v: &mut [f32]| match bias {
            Some(b) => v.iter_mut().zip(&b[col0..]).for_each(|(o, &bb)| *o = super::cpu::bias_act::apply(act, *o + bb)),
            None => v.iter_mut().for_each(|o| *o = super::cpu::bias_act::apply(act, *o)),
        };
        let epilogue = match (act, bias) {
            (None, None) => Epilogue::None,
            (None, Some(b)) => Epilogue::Bias(b),
            (Some(Activation::Gelu), b) => Epilogue::Gelu(b),
            (Some(_), _) => Epilogue::Custom(&custom),
        };
        let out = gemm_bf16::gemm_new(&a, pb, epilogue, true);
        Ok((CpuStorage::F32(out), Shape::from((m, n))))
    }
}

/// `a @ b` on the kernel for f32 CPU tensors `a [.., M, K]`, `b [.., K, N]` (equal batch dimensions, or a 2-d
/// `b` shared by the batch), any strides (transposed views need no copy). Differentiable.
pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    a.apply_op2(b, Bf16Matmul)
}

/// Forward without recording a backward (for the backward products themselves).
fn matmul_no_bwd(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    a.apply_op2_no_bwd(b, &Bf16Matmul)
}

struct Bf16Matmul;

/// Offsets of each batch element of `l` (all dimensions but the last two), row-major over the batch.
fn batch_offsets(l: &Layout) -> Vec<usize> {
    let dims = l.dims();
    let r = dims.len();
    let mut offs = vec![l.start_offset()];
    for (&n, &s) in dims.iter().zip(l.stride()).take(r.saturating_sub(2)) {
        offs = offs.iter().flat_map(|&o| (0..n).map(move |i| o + i * s)).collect();
    }
    offs
}

impl CustomOp2 for Bf16Matmul {
    fn name(&self) -> &'static str {
        "emoclip-bf16-matmul"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(a), CpuStorage::F32(b)) = (s1, s2) else {
            candle_core::bail!("bf16 matmul: f32 inputs only")
        };
        let (da, db) = (l1.dims(), l2.dims());
        if da.len() < 2 || db.len() < 2 {
            candle_core::bail!("bf16 matmul: operands {da:?} and {db:?} must have at least two dimensions");
        }
        let (ra, rb) = (da.len(), db.len());
        let (m, k, k2, n) = (da[ra - 2], da[ra - 1], db[rb - 2], db[rb - 1]);
        let shared_b = rb == 2 && ra > 2;
        if k != k2 || (!shared_b && da[..ra - 2] != db[..rb - 2]) {
            candle_core::bail!("bf16 matmul: shapes {da:?} and {db:?} do not multiply");
        }
        let (ars, acs) = (l1.stride()[ra - 2], l1.stride()[ra - 1]);
        let (brs, bcs) = (l2.stride()[rb - 2], l2.stride()[rb - 1]);
        let aoffs = batch_offsets(l1);
        let boffs = batch_offsets(l2);
        let batch = aoffs.len();
        let mut out = vec![0f32; batch * m * n];
        let mut dims = da[..ra - 2].to_vec();
        dims.extend([m, n]);
        if m * n == 0 {
            return Ok((CpuStorage::F32(out), Shape::from(dims)));
        }
        if shared_b && batch > 1 {
            // One weight for all: pack once.
            let pb = PackedB::pack(&b[boffs[0]..], k, n, brs, bcs);
            let o = OutPtr(out.as_mut_ptr());
            let one = |i: usize, par: bool| {
                // SAFETY: block i of the output, disjoint per i.
                let c = unsafe { std::slice::from_raw_parts_mut(o.get().add(i * m * n), m * n) };
                let ca = ConvA::convert(&a[aoffs[i]..], m, k, ars, acs);
                gemm_bf16::gemm(&ca, &pb, c, n, Epilogue::None, par);
            };
            for i in 0..batch {
                one(i, true);
            }
            return Ok((CpuStorage::F32(out), Shape::from(dims)));
        }
        // Small products (attention heads): one per task; big ones: each on the whole pool.
        let small = m * n * k < 1 << 21 && batch > 1;
        let o = OutPtr(out.as_mut_ptr());
        let one = |i: usize, par: bool| {
            // SAFETY: block i of the output, disjoint per i.
            let c = unsafe { std::slice::from_raw_parts_mut(o.get().add(i * m * n), m * n) };
            let bo = if shared_b { boffs[0] } else { boffs[i] };
            gemm_bf16::matmul_strided(&a[aoffs[i]..], (m, k), (ars, acs), &b[bo..], n, (brs, bcs), c, par);
        };
        if small {
            gemm_bf16::par_for(batch, |i| one(i, false));
        } else {
            for i in 0..batch {
                one(i, true);
            }
        }
        Ok((CpuStorage::F32(out), Shape::from(dims)))
    }

    fn bwd(&self, a: &Tensor, b: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        // dA = dC · Bᵀ, dB = Aᵀ · dC (summed over the batch when B is shared); transposes are strided views.
        let da = if a.track_op() { Some(matmul_no_bwd(grad, &b.t()?)?) } else { None };
        let db = if b.track_op() {
            if b.rank() == 2 && a.rank() > 2 {
                let k = a.dim(candle_core::D::Minus1)?;
                let n = grad.dim(candle_core::D::Minus1)?;
                let a2 = a.contiguous()?.reshape(((), k))?;
                let g2 = grad.contiguous()?.reshape(((), n))?;
                Some(matmul_no_bwd(&a2.t()?, &g2)?)
            } else {
                Some(matmul_no_bwd(&a.t()?, grad)?)
            }
        } else {
            None
        };
        Ok((da, db))
    }
}
