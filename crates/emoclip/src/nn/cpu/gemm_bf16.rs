//! bf16 matrix product for x86-64 CPUs with AVX-512 BF16: `C[M, N] (f32) = A[M, K] · B[K, N]` with both
//! operands rounded to bf16 (round to nearest even, as `torch.Tensor.bfloat16()`) and f32 accumulation by
//! `vdpbf16ps` (`_mm512_dpbf16_ps`: 16 lanes, each adding a pair of bf16 products). B (a weight) is converted
//! and packed once ([`PackedB`]), A (activations) is converted on the fly ([`ConvA`]); the driver runs
//! `MR × NR` register tiles over 2-D tasks on rayon's pool, with B blocked in K.
//!
//! Written by hand (the Intel® intrinsics guide is the reference for the instructions): candle's CPU matmul,
//! i.e. the `gemm` crate 0.19, has no bf16 kernel ("widen to f32, multiply, narrow back", gemm-f16 does the same
//! for f16), matrixmultiply and faer are f32/f64 only, and the oneDNN bindings on crates.io (onednn-sys 0.0.1,
//! onednnl 0.0.1) are unmaintained and build oneDNN's C++ from source.
use std::cell::Cell;
use std::sync::OnceLock;

/// Rows of the register tile (one `vpbroadcastd` of an A pair each).
pub const MR: usize = 6;
/// Columns of the register tile and of a B panel (four zmm vectors of 16 f32).
pub const NR: usize = 64;
/// K pairs per block (a `KC × NR` slice of a B panel is 96 KiB, in L2): all of K = 768, and few enough passes
/// over C for K = 3072; smaller blocks (L1-sized) measured slower, the per-call overhead of the tile dominates.
const KC: usize = 384;
/// Row tiles per L2 chunk of A (see `run_task`).
const MC_BLOCKS: usize = 32;

thread_local! {
    static FORCED_OFF: Cell<bool> = const { Cell::new(false) };
}

/// True when this CPU has AVX-512F and AVX-512 BF16 (detected once).
pub fn cpu_supported() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bf16")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// `EMOCLIP_BF16_KERNEL=off` (or `0`) switches the kernel off for the whole process.
fn env_off() -> bool {
    static OFF: OnceLock<bool> = OnceLock::new();
    *OFF.get_or_init(|| {
        std::env::var("EMOCLIP_BF16_KERNEL").map(|v| matches!(v.trim(), "off" | "0" | "false")).unwrap_or(false)
    })
}

/// Whether bf16 matrix products on this thread use the kernel: the CPU supports it and neither
/// `EMOCLIP_BF16_KERNEL=off` nor a live [`force_fallback`] guard switched it off. Callers take their f32 path
/// otherwise.
pub fn available() -> bool {
    cpu_supported() && !env_off() && !FORCED_OFF.with(|f| f.get())
}

/// Restores the previous setting of [`force_fallback`] when dropped.
#[must_use = "the fallback is only forced while the guard lives"]
pub struct FallbackGuard {
    prev: bool,
}

impl Drop for FallbackGuard {
    fn drop(&mut self) {
        FORCED_OFF.with(|f| f.set(self.prev));
    }
}

/// Makes [`available`] false on this thread while the guard lives (tests of the fallback path; a CPU
/// without the instructions behaves the same).
pub fn force_fallback() -> FallbackGuard {
    FallbackGuard { prev: FORCED_OFF.with(|f| f.replace(true)) }
}

/// f32 → bf16 bits, round to nearest even; subnormals become signed zero and NaN stays NaN, as
/// `vcvtne2ps2bf16` does, so scalar and vector conversions agree bit for bit.
#[inline]
pub fn to_bf16(x: f32) -> u16 {
    let b = x.to_bits();
    if x.is_nan() {
        return ((b >> 16) | 0x40) as u16;
    }
    if b & 0x7f80_0000 == 0 {
        return ((b >> 16) & 0x8000) as u16;
    }
    ((b + 0x7fff + ((b >> 16) & 1)) >> 16) as u16
}

/// bf16 bits → f32 (exact).
#[inline]
pub fn from_bf16(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// One 64-byte line, so packed panels start on cache lines (unaligned zmm loads split lines).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u32; 16]);

/// A zero-filled buffer of `n` u32 aligned to 64 bytes.
#[derive(Clone)]
struct Aligned {
    lines: Vec<Line>,
    len: usize,
}

impl Aligned {
    fn zeros(len: usize) -> Self {
        Self { lines: vec![Line([0; 16]); len.div_ceil(16)], len }
    }
    fn as_slice(&self) -> &[u32] {
        // SAFETY: `Line` is 16 u32 with no padding; `len` ≤ 16 · lines.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr() as *const u32, self.len) }
    }
    fn as_mut_slice(&mut self) -> &mut [u32] {
        // SAFETY: as above.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr() as *mut u32, self.len) }
    }
}

/// B `[K, N]` rounded to bf16 and packed in panels of [`NR`] columns: panel `j`, pair `p`, column `c` holds
/// `B[2p, 64j + c]` (low half) and `B[2p + 1, 64j + c]` (high half), zero beyond K and N.
#[derive(Clone)]
pub struct PackedB {
    pub k: usize,
    pub n: usize,
    kp: usize,
    data: Aligned,
}

impl std::fmt::Debug for PackedB {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackedB({}x{}, bf16)", self.k, self.n)
    }
}

impl PackedB {
    /// Packs `B[k][n] = src[k·rs + n·cs]`. `rs == 1` is a transposed operand (a `[N, K]` row-major weight,
    /// `nn.Linear` layout), `cs == 1` a row-major `[K, N]` one; other strides take a scalar path.
    pub fn pack(src: &[f32], k: usize, n: usize, rs: usize, cs: usize) -> Self {
        let kp = k.div_ceil(2);
        let panels = n.div_ceil(NR);
        let mut data = Aligned::zeros(panels * kp * NR);
        if k > 0 && n > 0 {
            assert!((k - 1) * rs + (n - 1) * cs < src.len(), "PackedB::pack: source too short");
        }
        let out = data.as_mut_slice();
        let panel_len = kp * NR;
        let vector = available();
        let fill = |j: usize, dst: &mut [u32]| {
            let cols = NR.min(n - j * NR);
            #[cfg(target_arch = "x86_64")]
            if vector && cs == 1 {
                // SAFETY: the CPU has the features (`available`), indices checked above.
                unsafe { x86::pack_b_rows(src, k, rs, j * NR, cols, dst) };
                return;
            }
            #[cfg(target_arch = "x86_64")]
            if vector && rs == 1 {
                // SAFETY: as above.
                unsafe { x86::pack_b_cols(src, k, cs, j * NR, cols, dst) };
                return;
            }
            let _ = vector;
            for p in 0..kp {
                for c in 0..cols {
                    let col = j * NR + c;
                    let lo = to_bf16(src[2 * p * rs + col * cs]) as u32;
                    let hi = if 2 * p + 1 < k { to_bf16(src[(2 * p + 1) * rs + col * cs]) as u32 } else { 0 };
                    dst[p * NR + c] = lo | (hi << 16);
                }
            }
        };
        if panel_len > 0 {
            for_chunks(out, panel_len, k * n >= PAR_MIN, fill);
        }
        Self { k, n, kp, data }
    }

    /// Packs a row-major `[N, K]` weight (`nn.Linear`), i.e. `B = Wᵀ`.
    pub fn from_weight(w: &[f32], n: usize, k: usize) -> Self {
        Self::pack(w, k, n, 1, k)
    }

    fn panel(&self, j: usize) -> &[u32] {
        &self.data.as_slice()[j * self.kp * NR..(j + 1) * self.kp * NR]
    }
}

/// A `[M, K]` rounded to bf16 as pairs `(A[i, 2p], A[i, 2p + 1])`, row-major (`[M, ⌈K/2⌉]`) or, from a
/// transposed source, pair-major (`[⌈K/2⌉, M]`); the microkernel reads either through `(rs, cs)`. Converted
/// here, or borrowed from activations already in bf16 ([`ConvA::from_pairs`]).
pub struct ConvA<'a> {
    pub m: usize,
    pub k: usize,
    kp: usize,
    rs: usize,
    cs: usize,
    data: std::borrow::Cow<'a, [u32]>,
}

/// Elements below which conversion and packing stay on the calling thread.
const PAR_MIN: usize = 1 << 16;

/// Runs `f(i)` for every `i < n` on rayon's pool (waiting threads sleep, which keeps a loaded machine usable);
/// `EMOCLIP_BF16_POOL=candle` takes candle's spinning worker pool (`candle_core::utils::barrier_pool`, the one
/// its element-wise kernels use) instead. Inline for `n ≤ 1` and when nested.
pub fn par_for(n: usize, f: impl Fn(usize) + Sync) {
    if n <= 1 || IN_PAR.with(|p| p.get()) {
        (0..n).for_each(f);
        return;
    }
    static CANDLE: OnceLock<bool> = OnceLock::new();
    if !*CANDLE.get_or_init(|| std::env::var("EMOCLIP_BF16_POOL").is_ok_and(|v| v == "candle")) {
        use rayon::prelude::*;
        (0..n).into_par_iter().for_each(|i| {
            let _in = InPar(IN_PAR.with(|p| p.replace(true)));
            f(i)
        });
        return;
    }
    candle_core::utils::barrier_pool().execute_chunked(n, |r| {
        let _in = InPar(IN_PAR.with(|p| p.replace(true)));
        r.for_each(&f)
    });
}

thread_local! {
    /// Set while this thread runs [`par_for`] work.
    static IN_PAR: Cell<bool> = const { Cell::new(false) };
}

/// Restores [`IN_PAR`] (also when the work panics).
struct InPar(bool);

impl Drop for InPar {
    fn drop(&mut self) {
        IN_PAR.with(|p| p.set(self.0));
    }
}

/// A mutable slice split into `chunk`-long pieces that [`par_for`] tasks fill independently.
struct Chunks<T> {
    ptr: *mut T,
    len: usize,
    chunk: usize,
}
// SAFETY: tasks take disjoint chunks (by index).
unsafe impl<T: Send> Sync for Chunks<T> {}

impl<T> Chunks<T> {
    fn new(v: &mut [T], chunk: usize) -> Self {
        Self { ptr: v.as_mut_ptr(), len: v.len(), chunk: chunk.max(1) }
    }
    fn count(&self) -> usize {
        self.len.div_ceil(self.chunk)
    }
    /// Chunk `i`. SAFETY: each index is taken by one task at a time.
    #[allow(clippy::mut_from_ref)]
    unsafe fn get(&self, i: usize) -> &mut [T] {
        let a = i * self.chunk;
        std::slice::from_raw_parts_mut(self.ptr.add(a), self.chunk.min(self.len - a))
    }
}

/// `f(index, chunk)` over the `chunk`-long pieces of `v`, on the pool when `parallel`.
fn for_chunks<T: Send>(v: &mut [T], chunk: usize, parallel: bool, f: impl Fn(usize, &mut [T]) + Sync) {
    if !parallel {
        v.chunks_mut(chunk.max(1)).enumerate().for_each(|(i, c)| f(i, c));
        return;
    }
    let c = Chunks::new(v, chunk);
    // SAFETY: par_for hands each index to one task.
    par_for(c.count(), |i| f(i, unsafe { c.get(i) }));
}

/// A new `len`-long buffer filled by [`for_chunks`]; each task zeroes its own chunk first
/// ([`super::rows::zeroed`]), not the calling thread the whole buffer.
fn new_chunks<T: Copy + Default + Send>(
    len: usize,
    chunk: usize,
    parallel: bool,
    f: impl Fn(usize, &mut [T]) + Sync,
) -> Vec<T> {
    let mut v = Vec::with_capacity(len);
    for_chunks(&mut v.spare_capacity_mut()[..len], chunk, parallel, |i, c| f(i, super::rows::zeroed(c)));
    // SAFETY: the chunks cover all `len` elements and each was initialised by `zeroed`.
    unsafe { v.set_len(len) };
    v
}

impl<'a> ConvA<'a> {
    /// Converts `A[i][k] = src[i·rs + k·cs]`.
    pub fn convert(src: &[f32], m: usize, k: usize, rs: usize, cs: usize) -> Self {
        let kp = k.div_ceil(2);
        if m > 0 && k > 0 {
            assert!((m - 1) * rs + (k - 1) * cs < src.len(), "ConvA::convert: source too short");
        }
        let par = m * k >= PAR_MIN;
        let vector = available();
        if rs == 1 && cs != 1 && m > 1 {
            // Transposed source: rows of pairs run along M.
            let fill = |p: usize, dst: &mut [u32]| {
                #[cfg(target_arch = "x86_64")]
                if vector {
                    // SAFETY: features checked, bounds asserted above.
                    unsafe { x86::interleave_rows(src, 2 * p * cs, (2 * p + 1 < k).then(|| (2 * p + 1) * cs), dst) };
                    return;
                }
                let _ = vector;
                for (i, d) in dst.iter_mut().enumerate() {
                    let lo = to_bf16(src[i + 2 * p * cs]) as u32;
                    let hi = if 2 * p + 1 < k { to_bf16(src[i + (2 * p + 1) * cs]) as u32 } else { 0 };
                    *d = lo | (hi << 16);
                }
            };
            let data = if m > 0 { new_chunks(m * kp, m, par, fill) } else { Vec::new() };
            return Self { m, k, kp, rs: 1, cs: m, data: data.into() };
        }
        let fill = |i: usize, dst: &mut [u32]| {
            #[cfg(target_arch = "x86_64")]
            if vector && (cs == 1 || k == 1) {
                // SAFETY: as above.
                unsafe { x86::convert_row(&src[i * rs..i * rs + k], dst) };
                return;
            }
            for (p, d) in dst.iter_mut().enumerate() {
                let lo = to_bf16(src[i * rs + 2 * p * cs]) as u32;
                let hi = if 2 * p + 1 < k { to_bf16(src[i * rs + (2 * p + 1) * cs]) as u32 } else { 0 };
                *d = lo | (hi << 16);
            }
        };
        let data = match 4096usize.checked_div(kp) {
            // Several rows per task.
            Some(per) => {
                let rows = per.max(1);
                new_chunks(m * kp, rows * kp, par, |t, d| {
                    d.chunks_mut(kp).enumerate().for_each(|(r, row)| fill(t * rows + r, row))
                })
            }
            None => Vec::new(),
        };
        Self { m, k, kp, rs: kp, cs: 1, data: data.into() }
    }

    /// `[M, K]` already in bf16, row-major pairs (`pairs[i·⌈K/2⌉ + p]` holds `A[i, 2p]` in its low half,
    /// `A[i, 2p + 1]` (zero beyond K) in its high half): used as it is, no copy.
    pub fn from_pairs(pairs: impl Into<std::borrow::Cow<'a, [u32]>>, m: usize, k: usize) -> Self {
        let (kp, data) = (k.div_ceil(2), pairs.into());
        assert!(data.len() >= m * kp, "ConvA::from_pairs: {} pairs for [{m}, {k}]", data.len());
        Self { m, k, kp, rs: kp, cs: 1, data }
    }
}

/// `src` rounded to bf16 (as [`to_bf16`]) in pairs: `dst[p]` = `src[2p]` (low half) and `src[2p + 1]` (high
/// half, zero beyond `src`); `dst` must hold `⌈len/2⌉` pairs.
pub fn to_bf16_pairs(src: &[f32], dst: &mut [u32]) {
    assert!(dst.len() >= src.len().div_ceil(2), "to_bf16_pairs: output too short");
    #[cfg(target_arch = "x86_64")]
    if cpu_supported() {
        // SAFETY: features checked, lengths asserted above.
        unsafe { x86::convert_row(src, dst) };
        return;
    }
    for (p, d) in dst.iter_mut().take(src.len().div_ceil(2)).enumerate() {
        let lo = to_bf16(src[2 * p]) as u32;
        let hi = src.get(2 * p + 1).map_or(0, |&x| to_bf16(x) as u32);
        *d = lo | (hi << 16);
    }
}

/// What happens to the product before it is stored.
#[derive(Clone, Copy, Default)]
pub enum Epilogue<'a> {
    #[default]
    None,
    /// `c + bias[column]`, in registers.
    Bias(&'a [f32]),
    /// `gelu_erf(c + bias[column])` (PyTorch `nn.GELU()`; erf as [`crate::nn::cpu::bias_act::erf_fast`]), in registers.
    Gelu(Option<&'a [f32]>),
    /// `(c + bias[column]) + residual[row, column]` (a pre-norm block's skip connection; `residual` row-major
    /// `[M, N]`), in L1 right after the tile is stored: the same f32 additions as adding the residual after.
    BiasResidual(Option<&'a [f32]>, &'a [f32]),
    /// Any function of each finished output row segment `(row, first column, values)`, after the store.
    Custom(&'a (dyn Fn(usize, usize, &mut [f32]) + Sync)),
}

/// Raw output pointer shared by parallel tasks that each write their own disjoint part of one buffer (tiles,
/// batch elements, attention heads); whoever makes one guarantees the parts are disjoint.
#[derive(Clone, Copy)]
pub struct OutPtr(pub *mut f32);
// SAFETY: the tasks sharing it write disjoint elements (the contract of making one).
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// The pointer (a method, so closures capture the `Sync` wrapper rather than its field).
    pub fn get(self) -> *mut f32 {
        self.0
    }
}

/// `C = A · B` (`c` row-major with row stride `ldc`, overwritten), then `epilogue`. `parallel`: split the work
/// over the CPU pool ([`par_for`]; else run on this thread, for callers that already parallelise over a
/// batch). Panics on a CPU without the instructions (callers check [`available`] first).
pub fn gemm(a: &ConvA, b: &PackedB, c: &mut [f32], ldc: usize, epilogue: Epilogue, parallel: bool) {
    let (m, n) = (a.m, b.n);
    if m == 0 || n == 0 {
        return;
    }
    assert!(ldc >= n && c.len() >= (m - 1) * ldc + n, "gemm_bf16: output too small");
    // SAFETY: the output holds every (row, column) written.
    unsafe { gemm_raw(a, b, c.as_mut_ptr(), ldc, epilogue, parallel) }
}

/// [`gemm`] into a new row-major `[M, N]` vector (not zero-filled first: every element is written).
pub fn gemm_new(a: &ConvA, b: &PackedB, epilogue: Epilogue, parallel: bool) -> Vec<f32> {
    let len = a.m * b.n;
    let mut out: Vec<f32> = Vec::with_capacity(len);
    // SAFETY: gemm_raw stores every element of the m × n tile grid (the first K block stores, never loads,
    // and K = 0 stores zeros) before anything reads them.
    unsafe {
        gemm_raw(a, b, out.as_mut_ptr(), b.n, epilogue, parallel);
        out.set_len(len);
    }
    out
}

/// [`gemm`] on a raw output (for outputs that several tasks write side by side, e.g. attention heads into
/// their columns of one row-major tensor).
///
/// # Safety
/// `c` is valid for writes of rows `0..M` × columns `0..N` at stride `ldc`, and nothing else accesses those
/// elements meanwhile.
pub unsafe fn gemm_raw(a: &ConvA, b: &PackedB, c: *mut f32, ldc: usize, epilogue: Epilogue, parallel: bool) {
    assert_eq!(a.k, b.k, "gemm_bf16: inner dimensions differ");
    let (m, n) = (a.m, b.n);
    if m == 0 || n == 0 {
        return;
    }
    assert!(cpu_supported(), "gemm_bf16 called on a CPU without AVX-512 BF16");
    if let Epilogue::Bias(x) | Epilogue::Gelu(Some(x)) | Epilogue::BiasResidual(Some(x), _) = epilogue {
        assert!(x.len() >= n, "gemm_bf16: bias of {} for {n} columns", x.len());
    }
    if let Epilogue::BiasResidual(_, r) = epilogue {
        assert!(r.len() >= m * n, "gemm_bf16: residual of {} for {m} × {n}", r.len());
    }
    let out = OutPtr(c);
    let panels = n.div_ceil(NR);
    let mblocks = m.div_ceil(MR);
    let threads = if parallel { candle_core::utils::get_num_threads() } else { 1 };
    // Task grid: groups of panels × ranges of row blocks, at least ~4 tasks per thread when the product is
    // big enough to share.
    let flops = m * n * a.k;
    let want = if threads > 1 && flops >= 1 << 20 { 4 * threads } else { 1 };
    let pgroups = panels.min(want);
    let mgroups = want.div_ceil(pgroups).min(mblocks).max(1);
    let tasks = pgroups * mgroups;
    let run = |t: usize| {
        let (pg, mg) = (t % pgroups, t / pgroups);
        let (p0, p1) = (pg * panels / pgroups, (pg + 1) * panels / pgroups);
        let (b0, b1) = (mg * mblocks / mgroups, (mg + 1) * mblocks / mgroups);
        // SAFETY: features checked; tiles of this task are disjoint from others'.
        unsafe { run_task(a, b, out.get(), ldc, p0..p1, b0..b1, epilogue) };
    };
    par_for(tasks, run);
}

/// One task: panels `ps` × row blocks `bs`, K in blocks of [`KC`] pairs.
unsafe fn run_task(
    a: &ConvA,
    b: &PackedB,
    c: *mut f32,
    ldc: usize,
    ps: std::ops::Range<usize>,
    bs: std::ops::Range<usize>,
    epilogue: Epilogue,
) {
    let (m, n, kp) = (a.m, b.n, a.kp);
    let opt = |x: Option<&[f32]>| x.map_or(std::ptr::null(), |x| x.as_ptr());
    let (bias, gelu, residual) = match epilogue {
        Epilogue::Bias(x) => (x.as_ptr(), false, std::ptr::null()),
        Epilogue::Gelu(x) => (opt(x), true, std::ptr::null()),
        Epilogue::BiasResidual(x, r) => (opt(x), false, r.as_ptr()),
        _ => (std::ptr::null(), false, std::ptr::null()),
    };
    let mut k0 = 0;
    loop {
        let kc = KC.min(kp - k0);
        let first = k0 == 0;
        let last = k0 + kc >= kp;
        // Rows in chunks of MC_BLOCKS tiles: the chunk of A (≤ 192 rows × KC pairs, 288 KiB) stays in L2
        // while the task's panels pass over it.
        let mut c0 = bs.start;
        while c0 < bs.end {
            let c1 = (c0 + MC_BLOCKS).min(bs.end);
            for j in ps.clone() {
                let panel = &b.panel(j)[k0 * NR..];
                let col0 = j * NR;
                let cols = NR.min(n - col0);
                for blk in c0..c1 {
                    let row0 = blk * MR;
                    let rows = MR.min(m - row0);
                    let ap = a.data.as_ptr().add(row0 * a.rs + k0 * a.cs);
                    let cp = c.add(row0 * ldc + col0);
                    #[cfg(target_arch = "x86_64")]
                    {
                        let post = if last {
                            x86::Post {
                                bias: if bias.is_null() { bias } else { bias.add(col0) },
                                gelu,
                                residual: if residual.is_null() { residual } else { residual.add(row0 * n + col0) },
                                ldr: n,
                            }
                        } else {
                            x86::Post::default()
                        };
                        x86::kernel(rows, kc, ap, a.rs, a.cs, panel.as_ptr(), cp, ldc, cols, !first, post);
                    }
                    if last {
                        if let Epilogue::Custom(f) = epilogue {
                            for r in 0..rows {
                                let row = std::slice::from_raw_parts_mut(cp.add(r * ldc), cols);
                                f(row0 + r, col0, row);
                            }
                        }
                    }
                }
            }
            c0 = c1;
        }
        if last {
            break;
        }
        k0 += kc;
    }
    let _ = (m, kp);
}

/// `C = A · B` for `A[i][k] = a[i·ars + k·acs]` (`m × k`) and `B[k][j] = b[k·brs + j·bcs]` (`k × n`), into
/// the row-major `c` (`m × n`): convert, pack, multiply. For one-off products (attention); weights should be
/// packed once with [`PackedB`].
#[allow(clippy::too_many_arguments)]
pub fn matmul_strided(
    a: &[f32],
    (m, k): (usize, usize),
    (ars, acs): (usize, usize),
    b: &[f32],
    n: usize,
    (brs, bcs): (usize, usize),
    c: &mut [f32],
    parallel: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c[..m * n].fill(0.0);
        return;
    }
    let ca = ConvA::convert(a, m, k, ars, acs);
    let pb = PackedB::pack(b, k, n, brs, bcs);
    gemm(&ca, &pb, c, n, Epilogue::None, parallel);
}

/// This CPU's bf16 peak as measured on the calling thread: `(GHz, vdpbf16ps per cycle)`, best of `rounds`
/// interleaved probes (the clock from a chain of dependent integer adds, one per cycle; the rate from 24
/// independent `vdpbf16ps` chains). The peak of `c` cores is `c · GHz · per-cycle · 64` GFLOP/s (each
/// instruction does 16 lanes × 2 products × multiply-add). `None` without the instructions.
pub fn measure_peak(rounds: usize) -> Option<(f64, f64)> {
    if !cpu_supported() {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let (mut ghz, mut rate) = (0f64, 0f64);
        for _ in 0..rounds.max(1) {
            ghz = ghz.max(x86::clock_ghz());
            // SAFETY: features checked above.
            rate = rate.max(unsafe { x86::dp_rate() });
        }
        Some((ghz, rate / (ghz * 1e9)))
    }
    #[cfg(not(target_arch = "x86_64"))]
    None
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{from_bf16, to_bf16, MR, NR};
    use std::arch::x86_64::*;

    #[inline(always)]
    unsafe fn bh(x: __m512i) -> __m512bh {
        std::mem::transmute(x)
    }

    /// 16 f32 → 16 bf16 bits zero-extended to 32-bit lanes (RNE).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bf16,avx512bw")]
    unsafe fn cvt16(x: __m512) -> __m512i {
        let h: __m256i = std::mem::transmute(_mm512_cvtneps_pbh(x));
        _mm512_cvtepu16_epi32(h)
    }

    fn mask(n: usize) -> __mmask16 {
        if n >= 16 {
            0xffff
        } else {
            ((1u32 << n) - 1) as __mmask16
        }
    }

    /// One row of A (`src`, K contiguous f32) → K/2 pairs (zero-padded to `dst.len()`).
    #[target_feature(enable = "avx512f,avx512bf16,avx512bw")]
    pub(super) unsafe fn convert_row(src: &[f32], dst: &mut [u32]) {
        let k = src.len();
        let mut i = 0;
        let s = src.as_ptr();
        let d = dst.as_mut_ptr();
        while i + 32 <= k {
            let lo = _mm512_loadu_ps(s.add(i));
            let hi = _mm512_loadu_ps(s.add(i + 16));
            let v: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
            _mm512_storeu_si512(d.add(i / 2) as *mut _, v);
            i += 32;
        }
        while i < k {
            let r = k - i;
            let lo = _mm512_maskz_loadu_ps(mask(r), s.add(i));
            let hi = _mm512_maskz_loadu_ps(mask(r.saturating_sub(16)), s.add(i + 16.min(r)));
            let v: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
            let pairs = r.div_ceil(2).min(16);
            _mm512_mask_storeu_epi32(d.add(i / 2) as *mut _, mask(pairs), v);
            i += 32;
        }
        debug_assert!(k.div_ceil(2) <= dst.len());
        let _ = (from_bf16, to_bf16);
    }

    /// Pairs `(src[lo + i], src[hi + i])` for `i < dst.len()` (a missing `hi` row is zero).
    #[target_feature(enable = "avx512f,avx512bf16,avx512bw")]
    pub(super) unsafe fn interleave_rows(src: &[f32], lo: usize, hi: Option<usize>, dst: &mut [u32]) {
        let n = dst.len();
        let s = src.as_ptr();
        let mut i = 0;
        while i < n {
            let mk = mask(n - i);
            let l = cvt16(_mm512_maskz_loadu_ps(mk, s.add(lo + i)));
            let h = match hi {
                Some(h) => cvt16(_mm512_maskz_loadu_ps(mk, s.add(h + i))),
                None => _mm512_setzero_si512(),
            };
            let v = _mm512_or_si512(l, _mm512_slli_epi32::<16>(h));
            _mm512_mask_storeu_epi32(dst.as_mut_ptr().add(i) as *mut _, mk, v);
            i += 16;
        }
    }

    /// Panel of a row-major B (`B[k][c] = src[k·rs + col0 + c]`): pairs of rows interleaved.
    #[target_feature(enable = "avx512f,avx512bf16,avx512bw")]
    pub(super) unsafe fn pack_b_rows(src: &[f32], k: usize, rs: usize, col0: usize, cols: usize, dst: &mut [u32]) {
        for p in 0..k.div_ceil(2) {
            let hi = (2 * p + 1 < k).then(|| (2 * p + 1) * rs + col0);
            interleave_rows(src, 2 * p * rs + col0, hi, &mut dst[p * NR..p * NR + cols]);
        }
    }

    /// Panel of a transposed B (`B[k][c] = src[k + (col0 + c)·cs]`, e.g. an `[N, K]` weight): each column is
    /// a contiguous row of the source, converted to pairs and written down the panel.
    #[target_feature(enable = "avx512f,avx512bf16,avx512bw")]
    pub(super) unsafe fn pack_b_cols(src: &[f32], k: usize, cs: usize, col0: usize, cols: usize, dst: &mut [u32]) {
        let kp = k.div_ceil(2);
        let mut tmp = vec![0u32; kp.next_multiple_of(16)];
        for c in 0..cols {
            let row = &src[(col0 + c) * cs..(col0 + c) * cs + k];
            convert_row(row, &mut tmp);
            for (p, &v) in tmp[..kp].iter().enumerate() {
                *dst.get_unchecked_mut(p * NR + c) = v;
            }
        }
    }

    /// Clock of this core in GHz: 8 dependent adds per loop iteration take 8 cycles.
    pub(super) fn clock_ghz() -> f64 {
        let n: u64 = 500_000;
        let t = std::time::Instant::now();
        // SAFETY: register-only arithmetic.
        unsafe {
            std::arch::asm!(
                "2:",
                "add {x}, 1", "add {x}, 1", "add {x}, 1", "add {x}, 1",
                "add {x}, 1", "add {x}, 1", "add {x}, 1", "add {x}, 1",
                "sub {n}, 1",
                "jnz 2b",
                n = inout(reg) n => _,
                x = inout(reg) 0u64 => _,
                options(nomem, nostack),
            );
        }
        (8 * n) as f64 / t.elapsed().as_secs_f64() / 1e9
    }

    /// `vdpbf16ps` per second on this thread (24 independent accumulators).
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn dp_rate() -> f64 {
        let iters = 100_000usize;
        let a = bh(_mm512_set1_epi32(0x3f80_3f80));
        let mut acc = [_mm512_setzero_ps(); 24];
        let t = std::time::Instant::now();
        for _ in 0..iters {
            for x in acc.iter_mut() {
                *x = _mm512_dpbf16_ps(*x, a, a);
            }
            std::arch::asm!("", options(nomem, nostack));
        }
        let secs = t.elapsed().as_secs_f64();
        let mut s = _mm512_setzero_ps();
        for x in acc {
            s = _mm512_add_ps(s, x);
        }
        std::hint::black_box(s);
        (iters * 24) as f64 / secs
    }

    /// In-register work before the store: `+ bias[column]` (null: none), then GELU.
    #[derive(Clone, Copy)]
    pub(super) struct Post {
        pub bias: *const f32,
        pub gelu: bool,
        /// The tile's first element of a row-major residual with row stride `ldr` (null: none).
        pub residual: *const f32,
        pub ldr: usize,
    }

    impl Default for Post {
        fn default() -> Self {
            Self { bias: std::ptr::null(), gelu: false, residual: std::ptr::null(), ldr: 0 }
        }
    }

    /// Dispatches the register tile on its row count.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(super) unsafe fn kernel(
        rows: usize,
        kp: usize,
        a: *const u32,
        ars: usize,
        acs: usize,
        b: *const u32,
        c: *mut f32,
        ldc: usize,
        cols: usize,
        acc: bool,
        post: Post,
    ) {
        match rows {
            6 => tile::<6>(kp, a, ars, acs, b, c, ldc, cols, acc, post),
            5 => tile::<5>(kp, a, ars, acs, b, c, ldc, cols, acc, post),
            4 => tile::<4>(kp, a, ars, acs, b, c, ldc, cols, acc, post),
            3 => tile::<3>(kp, a, ars, acs, b, c, ldc, cols, acc, post),
            2 => tile::<2>(kp, a, ars, acs, b, c, ldc, cols, acc, post),
            1 => tile::<1>(kp, a, ars, acs, b, c, ldc, cols, acc, post),
            _ => unreachable!("tile of {rows} rows (MR = {MR})"),
        }
    }

    /// `gelu_erf(v) = v·(1 + erf(v/√2))/2` with erf as `nn::cpu::bias_act::erf_fast` (rational function on [-4, 4]).
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn gelu(v: __m512) -> __m512 {
        let c = _mm512_set1_ps;
        let x = _mm512_mul_ps(v, c(std::f32::consts::FRAC_1_SQRT_2));
        let x = _mm512_min_ps(_mm512_max_ps(x, c(-4.0)), c(4.0));
        let x2 = _mm512_mul_ps(x, x);
        let mut p = c(-2.726_142_3e-10);
        for k in [2.770_681_4e-8, -2.101_024e-6, -5.692_506_4e-5, -7.349_906_3e-4, -2.954_6e-3, -1.609_603_3e-2] {
            p = _mm512_fmadd_ps(p, x2, c(k));
        }
        let mut q = c(-1.456_607_2e-5);
        for k in [-2.133_740_6e-4, -1.682_827e-3, -7.373_329_3e-3, -1.426_474e-2] {
            q = _mm512_fmadd_ps(q, x2, c(k));
        }
        let erf = _mm512_div_ps(_mm512_mul_ps(x, p), q);
        _mm512_mul_ps(_mm512_mul_ps(v, c(0.5)), _mm512_add_ps(erf, c(1.0)))
    }

    /// The `R × 64` register tile: per K pair, four 16-column B vectors and one broadcast A pair per row,
    /// `4R` independent `vdpbf16ps` accumulators. `acc`: add to the values already in C.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn tile<const R: usize>(
        kp: usize,
        a: *const u32,
        ars: usize,
        acs: usize,
        b: *const u32,
        c: *mut f32,
        ldc: usize,
        cols: usize,
        acc: bool,
        post: Post,
    ) {
        let m =
            [mask(cols), mask(cols.saturating_sub(16)), mask(cols.saturating_sub(32)), mask(cols.saturating_sub(48))];
        let mut s = [[_mm512_setzero_ps(); 4]; R];
        if acc {
            for (r, sr) in s.iter_mut().enumerate() {
                for (v, x) in sr.iter_mut().enumerate() {
                    *x = _mm512_maskz_loadu_ps(m[v], c.add(r * ldc + 16 * v));
                }
            }
        }
        let mut ap = a;
        let mut bp = b;
        for _ in 0..kp {
            let b0 = bh(_mm512_load_si512(bp as *const _));
            let b1 = bh(_mm512_load_si512(bp.add(16) as *const _));
            let b2 = bh(_mm512_load_si512(bp.add(32) as *const _));
            let b3 = bh(_mm512_load_si512(bp.add(48) as *const _));
            for (r, sr) in s.iter_mut().enumerate() {
                let av = bh(_mm512_set1_epi32(*ap.add(r * ars) as i32));
                sr[0] = _mm512_dpbf16_ps(sr[0], b0, av);
                sr[1] = _mm512_dpbf16_ps(sr[1], b1, av);
                sr[2] = _mm512_dpbf16_ps(sr[2], b2, av);
                sr[3] = _mm512_dpbf16_ps(sr[3], b3, av);
            }
            ap = ap.add(acs);
            bp = bp.add(NR);
        }
        for (r, sr) in s.iter().enumerate() {
            for (v, x) in sr.iter().enumerate() {
                _mm512_mask_storeu_ps(c.add(r * ldc + 16 * v), m[v], *x);
            }
        }
        // Bias and GELU on the tile just stored (in L1): touching the accumulators here would make LLVM keep
        // them in a stack array for the whole loop.
        if !post.bias.is_null() || post.gelu || !post.residual.is_null() {
            let zero = _mm512_setzero_ps();
            let bias = if post.bias.is_null() {
                [zero; 4]
            } else {
                [0, 1, 2, 3].map(|v| _mm512_maskz_loadu_ps(m[v], post.bias.add(16 * v)))
            };
            for r in 0..R {
                for v in 0..4 {
                    let p = c.add(r * ldc + 16 * v);
                    let mut x = _mm512_add_ps(_mm512_maskz_loadu_ps(m[v], p), bias[v]);
                    if post.gelu {
                        x = gelu(x);
                    }
                    if !post.residual.is_null() {
                        x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m[v], post.residual.add(r * post.ldr + 16 * v)));
                    }
                    _mm512_mask_storeu_ps(p, m[v], x);
                }
            }
        }
    }
}
