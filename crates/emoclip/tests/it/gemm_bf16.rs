//! The bf16 GEMM (`nn::cpu::gemm_bf16`, `nn::matmul_bf16`) against an f64 reference within the bound of its
//! arithmetic, its backward, and the dispatch to the f32 path when the kernel is switched off.
//!
//! Bound: with `u = 2⁻⁸` (bf16 unit roundoff, 8-bit significand) the operands are `a(1+δ)`, `b(1+ε)`,
//! `|δ|, |ε| ≤ u`; the product of two bf16 numbers is exact in f32; the K products are summed in f32 with at
//! most K roundings (`γ_K = K·2⁻²⁴ / (1 − K·2⁻²⁴)`). So `|c − Σ a·b| ≤ ((1+u)²(1+γ_K) − 1) · Σ|a|·|b|`.
use candle_core::{DType, Device, Tensor, Var};
use emoclip::nn::autocast::autocast;
use emoclip::nn::cpu::gemm_bf16;
use emoclip::nn::{matmul_bf16, Linear};
use rand::{Rng, SeedableRng};

fn bound_factor(k: usize) -> f64 {
    let u = 2f64.powi(-8);
    let e = k as f64 * 2f64.powi(-24);
    (1.0 + u).powi(2) * (1.0 + e / (1.0 - e)) - 1.0
}

fn f32_factor(k: usize) -> f64 {
    let e = k as f64 * 2f64.powi(-24);
    e / (1.0 - e)
}

fn randv(rng: &mut rand::rngs::StdRng, n: usize) -> Vec<f32> {
    // Normal-ish values of mixed magnitude (no subnormals), a few exact zeros and negative values.
    (0..n)
        .map(|i| {
            if i % 97 == 13 {
                0.0
            } else {
                let x: f32 = rng.random_range(-1.0..1.0);
                x * 2f32.powi(rng.random_range(-6..4))
            }
        })
        .collect()
}

/// Max over elements of |c − ref| / Σ|a||b| (the quantity the bound limits), for `c [m, n]` and
/// `A[i][k] = a[i·ars + k·acs]`, `B[k][j] = b[k·brs + j·bcs]`.
#[allow(clippy::too_many_arguments)]
fn worst_ratio(
    c: &[f32],
    a: &[f32],
    (ars, acs): (usize, usize),
    b: &[f32],
    (brs, bcs): (usize, usize),
    m: usize,
    n: usize,
    k: usize,
) -> f64 {
    let mut worst = 0f64;
    for i in 0..m {
        for j in 0..n {
            let (mut s, mut abs) = (0f64, 0f64);
            for l in 0..k {
                let p = a[i * ars + l * acs] as f64 * b[l * brs + j * bcs] as f64;
                s += p;
                abs += p.abs();
            }
            let err = (c[i * n + j] as f64 - s).abs();
            if abs == 0.0 {
                assert_eq!(err, 0.0, "({i}, {j}): {} for an all-zero product", c[i * n + j]);
            } else {
                worst = worst.max(err / abs);
            }
        }
    }
    worst
}

const SHAPES: &[(usize, usize, usize)] = &[
    (1, 1, 1),
    (1, 1, 2),
    (2, 3, 1),
    (1, 70, 33),
    (7, 1, 64),
    (5, 9, 31),
    (6, 64, 32),
    (7, 65, 3),
    (13, 130, 97),
    (61, 127, 129),
    (50, 50, 64),    // attention scores of one ViT-B/32 head (QKᵀ)
    (50, 64, 50),    // attention-weighted values (AV)
    (50, 2304, 768), // in_proj of one frame
    (50, 768, 3072), // mlp.c_proj of one frame
    (49, 768, 3072), // patch embedding of one frame
    (16, 2048, 512), // text-tower c_fc
];

#[test]
fn kernel_is_within_the_bf16_bound_on_awkward_shapes_and_layouts() {
    if !gemm_bf16::cpu_supported() {
        eprintln!("this CPU has no AVX-512 BF16: the kernel cannot run here (the fallback is tested separately)");
        return;
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(14);
    for &(m, n, k) in SHAPES {
        let a = randv(&mut rng, m * k);
        let b = randv(&mut rng, k * n);
        // A row-major or transposed ([K, M] storage); B row-major [K, N] or transposed ([N, K], nn.Linear).
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            let asd = if ta { (1, m) } else { (k, 1) };
            let bsd = if tb { (1, k) } else { (n, 1) };
            let mut c = vec![f32::NAN; m * n];
            gemm_bf16::matmul_strided(&a, (m, k), asd, &b, n, bsd, &mut c, true);
            let worst = worst_ratio(&c, &a, asd, &b, bsd, m, n, k);
            let bound = bound_factor(k);
            assert!(worst <= bound, "{m}x{n}x{k} (At {ta}, Bt {tb}): error {worst:.3e} Σ|ab| > bound {bound:.3e}");
            // The operands were really rounded to bf16: an f32 product could not be this far off.
            assert!(worst > f32_factor(k), "{m}x{n}x{k}: error {worst:.3e} is within f32 rounding");
        }
    }
}

#[test]
fn candle_op_handles_transposed_views_batches_and_its_backward() {
    if !gemm_bf16::cpu_supported() {
        eprintln!("no AVX-512 BF16 on this CPU");
        return;
    }
    let dev = Device::Cpu;
    let (bt, m, n, k) = (3, 9, 21, 35);
    let a = Var::from_tensor(&Tensor::randn(0f32, 1.0, (bt, k, m), &dev).unwrap()).unwrap();
    let b = Var::from_tensor(&Tensor::randn(0f32, 1.0, (bt, k, n), &dev).unwrap()).unwrap();
    let at = a.as_tensor().transpose(1, 2).unwrap(); // [bt, m, k], a strided view
    let c = matmul_bf16::matmul(&at, b.as_tensor()).unwrap();
    assert_eq!(c.dims(), &[bt, m, n]);
    let g = Tensor::randn(0f32, 1.0, (bt, m, n), &dev).unwrap();
    let grads = (&c * &g).unwrap().sum_all().unwrap().backward().unwrap();
    let v = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let (av, bv, cv, gv) = (v(&at.contiguous().unwrap()), v(b.as_tensor()), v(&c), v(&g));
    let (da, db) = (v(grads.get(a.as_tensor()).unwrap()), v(grads.get(b.as_tensor()).unwrap()));
    for i in 0..bt {
        let (ai, bi, gi) = (&av[i * m * k..], &bv[i * k * n..], &gv[i * m * n..]);
        let w = worst_ratio(&cv[i * m * n..(i + 1) * m * n], ai, (k, 1), bi, (n, 1), m, n, k);
        assert!(w <= bound_factor(k), "forward {i}: {w:.3e}");
        // dA = G·Bᵀ is [m, k]; the variable is Aᵀ [k, m], so compare dA against grads[a] transposed.
        let da_i: Vec<f32> = (0..m * k).map(|x| da[i * k * m + (x % k) * m + x / k]).collect();
        let w = worst_ratio(&da_i, gi, (n, 1), bi, (1, n), m, k, n);
        assert!(w <= bound_factor(n), "dA {i}: {w:.3e}");
        // dB = Aᵀ·G is [k, n].
        let w = worst_ratio(&db[i * k * n..(i + 1) * k * n], ai, (1, k), gi, (n, 1), k, n, m);
        assert!(w <= bound_factor(m), "dB {i}: {w:.3e}");
    }
    // A 2-d weight shared by a batch: its gradient sums over the batch.
    let w = Var::from_tensor(&Tensor::randn(0f32, 1.0, (k, n), &dev).unwrap()).unwrap();
    let x = Tensor::randn(0f32, 1.0, (bt, m, k), &dev).unwrap();
    let y = matmul_bf16::matmul(&x, w.as_tensor()).unwrap();
    let want = x.broadcast_matmul(w.as_tensor()).unwrap();
    let rel = ((&y - &want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap())
        / want.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(rel < 1e-2 && rel > 0.0, "shared weight: relative error {rel}");
    let gw = (y * &g).unwrap().sum_all().unwrap().backward().unwrap();
    let gw = gw.get(w.as_tensor()).unwrap();
    let want = x.reshape((bt * m, k)).unwrap().t().unwrap().matmul(&g.reshape((bt * m, n)).unwrap()).unwrap();
    let rel = ((gw - &want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap())
        / want.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(rel < 1e-2, "shared weight gradient: relative error {rel}");
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn forced_fallback_takes_the_f32_path_bit_for_bit() {
    let dev = Device::Cpu;
    let x = Tensor::randn(0f32, 1.0, (2, 37, 48), &dev).unwrap();
    let w = Tensor::randn(0f32, 0.2, (80, 48), &dev).unwrap();
    let bias = Tensor::randn(0f32, 0.2, 80, &dev).unwrap();
    let lin = Linear::from_parts(w.clone(), Some(bias));
    let f32_out = lin.forward_act(&x, Some(emoclip::nn::Activation::Gelu)).unwrap();
    let q = Tensor::randn(0f32, 1.0, (2, 3, 11, 16), &dev).unwrap();
    let k = Tensor::randn(0f32, 1.0, (2, 3, 13, 16), &dev).unwrap();
    let v = Tensor::randn(0f32, 1.0, (2, 3, 13, 16), &dev).unwrap();
    let f32_att = emoclip::nn::attention::attend(&q, &k, &v, None, 0.0, false).unwrap();
    let _bf16 = autocast(Some(DType::BF16));
    {
        let _off = gemm_bf16::force_fallback();
        assert!(!gemm_bf16::available());
        let out = lin.forward_act(&x, Some(emoclip::nn::Activation::Gelu)).unwrap();
        assert_eq!(max_abs_diff(&out, &f32_out), 0.0, "fallback linear differs from f32");
        let att = emoclip::nn::attention::attend(&q, &k, &v, None, 0.0, false).unwrap();
        assert_eq!(max_abs_diff(&att, &f32_att), 0.0, "fallback attention differs from f32");
    }
    if gemm_bf16::cpu_supported() {
        assert!(gemm_bf16::available(), "the guard restores the kernel");
        let out = lin.forward_act(&x, Some(emoclip::nn::Activation::Gelu)).unwrap();
        let d = max_abs_diff(&out, &f32_out);
        assert!(d > 0.0 && d < 0.05, "bf16 linear vs f32: {d}");
        let att = emoclip::nn::attention::attend(&q, &k, &v, None, 0.0, false).unwrap();
        let d = max_abs_diff(&att, &f32_att);
        assert!(d > 0.0 && d < 0.05, "bf16 attention vs f32: {d}");
    }
}

#[test]
fn packed_linear_fuses_bias_and_activation_and_repacks_a_new_weight() {
    if !gemm_bf16::cpu_supported() {
        eprintln!("no AVX-512 BF16 on this CPU");
        return;
    }
    let dev = Device::Cpu;
    let x = Tensor::randn(0f32, 1.0, (19, 40), &dev).unwrap();
    let w = Tensor::randn(0f32, 0.3, (70, 40), &dev).unwrap();
    let bias = Tensor::randn(0f32, 0.3, 70, &dev).unwrap();
    let mut lin = Linear::from_parts(w.clone(), Some(bias.clone()));
    // Reference: the differentiable bf16 product (same rounding), then f32 bias + GELU.
    let want = {
        let _bf16 = autocast(Some(DType::BF16));
        matmul_bf16::matmul(&x, &w.t().unwrap()).unwrap().broadcast_add(&bias).unwrap().gelu_erf().unwrap()
    };
    let _bf16 = autocast(Some(DType::BF16));
    let got = lin.forward_act(&x, Some(emoclip::nn::Activation::Gelu)).unwrap();
    assert!(max_abs_diff(&got, &want) < 1e-5, "fused epilogue: {}", max_abs_diff(&got, &want));
    // A new weight tensor in the same layer is packed anew, not served from the cache.
    lin.weight = (w * 2.0).unwrap();
    let got2 = lin.forward(&x).unwrap();
    let want2 = matmul_bf16::matmul(&x, &lin.weight.t().unwrap()).unwrap().broadcast_add(&bias).unwrap();
    assert!(max_abs_diff(&got2, &want2) < 1e-5, "stale packed weight: {}", max_abs_diff(&got2, &want2));
}

/// The skip connection fused into the output pass (`Linear::forward_residual`, what every pre-norm block does
/// in bf16 inference) gives bit for bit the residual added after the product; with a 3-d input, odd row and
/// column counts (partial register tiles) and K over one block (two passes over C).
#[test]
fn fused_residual_equals_adding_it_after() {
    if !gemm_bf16::cpu_supported() {
        eprintln!("no AVX-512 BF16 on this CPU");
        return;
    }
    let dev = Device::Cpu;
    for (b, l, k, n) in [(2, 19, 40, 70), (3, 50, 800, 768), (1, 1, 3, 1)] {
        let x = Tensor::randn(0f32, 1.0, (b, l, k), &dev).unwrap();
        let res = Tensor::randn(0f32, 1.0, (b, l, n), &dev).unwrap();
        let w = Tensor::randn(0f32, 0.3, (n, k), &dev).unwrap();
        let bias = Tensor::randn(0f32, 0.3, n, &dev).unwrap();
        let lin = Linear::from_parts(w, Some(bias));
        let _bf16 = autocast(Some(DType::BF16));
        let want = (&res + lin.forward(&x).unwrap()).unwrap();
        let got = lin.forward_residual(&x, &res).unwrap();
        assert_eq!(got.dims(), want.dims());
        let (g, w) = (
            got.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            want.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        );
        assert_eq!(g, w, "fused residual differs for [{b}, {l}, {k}] × [{k}, {n}]");
        // A non-contiguous residual (a transposed view) is made contiguous first.
        let res_t = res.transpose(0, 1).unwrap().contiguous().unwrap().transpose(0, 1).unwrap();
        let got_t = lin.forward_residual(&x, &res_t).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(got_t, w, "non-contiguous residual");
    }
}

/// Training under bf16 autocast (`precision = "bf16"`): `Linear` (x Wᵀ + b, f32 master weights tracked as
/// variables) multiplies on the kernel forward and backward. With `loss = Σ y ⊙ G` the gradients `dX = G·W` and
/// `dW = Gᵀ·X` are computed by the backward alone, so their error proves which arithmetic the backward ran: within
/// the bf16 bound of an f64 reference, and beyond what f32 products could be off (the operands were rounded).
#[test]
fn linear_training_gradients_run_on_the_kernel_within_bf16_bounds() {
    if !gemm_bf16::cpu_supported() {
        eprintln!("no AVX-512 BF16 on this CPU");
        return;
    }
    let dev = Device::Cpu;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let (bt, rows, k, n) = (2, 37, 200, 130); // flattened M = 74; K and N not multiples of 32
    let m = bt * rows;
    let (xv, wv, gv) = (randv(&mut rng, m * k), randv(&mut rng, n * k), randv(&mut rng, m * n));
    let bv = randv(&mut rng, n);
    let x = Var::from_tensor(&Tensor::from_vec(xv.clone(), (bt, rows, k), &dev).unwrap()).unwrap();
    let w = Var::from_tensor(&Tensor::from_vec(wv.clone(), (n, k), &dev).unwrap()).unwrap();
    let b = Var::from_tensor(&Tensor::from_vec(bv.clone(), n, &dev).unwrap()).unwrap();
    let g = Tensor::from_vec(gv.clone(), (bt, rows, n), &dev).unwrap();
    let lin = Linear::from_parts(w.as_tensor().clone(), Some(b.as_tensor().clone()));
    let _bf16 = autocast(Some(DType::BF16));
    let y = lin.forward(x.as_tensor()).unwrap();
    let grads = (&y * &g).unwrap().sum_all().unwrap().backward().unwrap();
    let v = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    // Forward: Y = X·Wᵀ (+ b, exact in the check below up to one f32 rounding).
    let yv: Vec<f32> = v(&y).iter().enumerate().map(|(i, &y)| y - bv[i % n]).collect();
    let fwd = worst_ratio(&yv, &xv, (k, 1), &wv, (1, k), m, n, k);
    assert!(fwd <= bound_factor(k) + 2f64.powi(-23), "forward: {fwd:.3e} > bf16 bound {:.3e}", bound_factor(k));
    // dX [m, k] = G [m, n] · W [n, k].
    let dx = v(grads.get(x.as_tensor()).expect("dX"));
    let wdx = worst_ratio(&dx, &gv, (n, 1), &wv, (k, 1), m, k, n);
    // dW [n, k] = Gᵀ [n, m] · X [m, k].
    let dw = v(grads.get(w.as_tensor()).expect("dW"));
    let wdw = worst_ratio(&dw, &gv, (1, n), &xv, (k, 1), n, k, m);
    eprintln!("bf16 training linear: forward {fwd:.2e}, dX {wdx:.2e}, dW {wdw:.2e} (of Σ|a||b|)");
    assert!(wdx <= bound_factor(n), "dX: {wdx:.3e} > bf16 bound {:.3e}", bound_factor(n));
    assert!(wdw <= bound_factor(m), "dW: {wdw:.3e} > bf16 bound {:.3e}", bound_factor(m));
    assert!(wdx > f32_factor(n) && wdw > f32_factor(m), "the backward products were not in bf16: {wdx:.2e}, {wdw:.2e}");
    // The bias gradient is Σ over rows of G (f32 sums).
    let db = v(grads.get(b.as_tensor()).expect("db"));
    for j in 0..n {
        let want: f64 = (0..m).map(|i| gv[i * n + j] as f64).sum();
        assert!((db[j] as f64 - want).abs() <= 1e-5 * (1.0 + want.abs()), "db[{j}] = {} vs {want}", db[j]);
    }
}

/// The fused bf16 attention (`nn::attention_bf16`, one task per sample and head on views of the projection)
/// equals the composed path (`attend` on contiguous, pre-scaled q and contiguous k, v) bit for bit: self-
/// attention from a fused `[B, L, 3D]` projection without a mask, with a per-sample `[B, 1, L, L]` mask
/// (−inf entries, as SAAM) and a causal `[L, L]` one; cross-attention of one query over odd-length keys; an
/// odd head width; and through `MultiheadAttention::forward`.
#[test]
fn fused_bf16_attention_equals_the_composed_path_bit_for_bit() {
    if !gemm_bf16::cpu_supported() {
        eprintln!("no AVX-512 BF16 on this CPU");
        return;
    }
    let dev = Device::Cpu;
    let bits = |t: &Tensor| -> Vec<u32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().map(|x| x.to_bits()).collect()
    };
    let _bf16 = autocast(Some(DType::BF16));
    for (b, h, l, hd) in [(2, 3, 51, 64), (3, 2, 7, 13), (1, 4, 1, 8)] {
        let d = h * hd;
        let qkv = Tensor::randn(0f32, 1.0, (b, l, 3 * d), &dev).unwrap();
        let qkv5 = qkv.reshape((b, l, 3, h, hd)).unwrap().permute((2, 0, 3, 1, 4)).unwrap();
        let (q, k, v) = (qkv5.get(0).unwrap(), qkv5.get(1).unwrap(), qkv5.get(2).unwrap());
        let scale = 1.0 / (hd as f64).sqrt();
        let sample_mask: Vec<f32> =
            (0..b * l * l).map(|i| if i % 5 == 1 { f32::NEG_INFINITY } else { (i % 3) as f32 * 0.25 }).collect();
        let sample_mask = Tensor::from_vec(sample_mask, (b, 1, l, l), &dev).unwrap();
        let causal: Vec<f32> = (0..l * l).map(|i| if i % l > i / l { f32::NEG_INFINITY } else { 0.0 }).collect();
        let causal = Tensor::from_vec(causal, (l, l), &dev).unwrap();
        for mask in [None, Some(&sample_mask), Some(&causal)] {
            let qs = (q.contiguous().unwrap() * scale).unwrap();
            let kc = k.contiguous().unwrap();
            let vc = v.contiguous().unwrap();
            let want = emoclip::nn::attention::attend(&qs, &kc, &vc, mask, 0.0, false).unwrap();
            let got = emoclip::nn::attention_bf16::attention(&q, &k, &v, mask, scale).unwrap();
            assert_eq!(got.dims(), want.dims());
            assert_eq!(bits(&got), bits(&want), "{b}×{h}×{l}×{hd}, mask {:?}", mask.map(|m| m.dims().to_vec()));
        }
        // One query (the CLS row) over all keys, from a separate tensor.
        let q1 = Tensor::randn(0f32, 1.0, (b, 1, d), &dev).unwrap();
        let q1 = q1.reshape((b, 1, h, hd)).unwrap().transpose(1, 2).unwrap();
        let qs = (q1.contiguous().unwrap() * scale).unwrap();
        let want =
            emoclip::nn::attention::attend(&qs, &k.contiguous().unwrap(), &v.contiguous().unwrap(), None, 0.0, false)
                .unwrap();
        let got = emoclip::nn::attention_bf16::attention(&q1, &k, &v, None, scale).unwrap();
        assert_eq!(bits(&got), bits(&want), "one query, {b}×{h}×{l}×{hd}");
    }
    // Through the layer: the fused path (inference) equals the composed one (taken when the input is tracked).
    let (dim, heads, l) = (48, 4, 9);
    let w = Tensor::randn(0f32, 0.2, (3 * dim, dim), &dev).unwrap();
    let bias = Tensor::randn(0f32, 0.2, 3 * dim, &dev).unwrap();
    let ow = Tensor::randn(0f32, 0.2, (dim, dim), &dev).unwrap();
    let mha = emoclip::nn::MultiheadAttention::from_parts(
        Linear::from_parts(w, Some(bias)),
        Linear::from_parts(ow, None),
        heads,
        0.0,
    )
    .unwrap();
    let x = Tensor::randn(0f32, 1.0, (2, l, dim), &dev).unwrap();
    let fused = mha.forward(&x, &x, None, false).unwrap();
    let var = candle_core::Var::from_tensor(&x).unwrap();
    let composed = mha.forward(var.as_tensor(), var.as_tensor(), None, false).unwrap();
    assert_eq!(bits(&fused), bits(&composed.detach()), "MultiheadAttention: fused vs composed");
}
