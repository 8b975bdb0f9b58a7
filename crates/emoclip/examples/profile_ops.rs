//! Times the building blocks of one ViT-B/32 layer at batch 4 × 8 frames on CPU (developer tool).
use candle_core::{Device, Tensor, D};
use std::time::Instant;

fn t<F: FnMut() -> candle_core::Result<Tensor>>(name: &str, mut f: F) {
    f().unwrap();
    let n = 5;
    let s = Instant::now();
    for _ in 0..n {
        let _ = f().unwrap();
    }
    println!("{name:40} {:8.2} ms", s.elapsed().as_secs_f64() * 1000.0 / n as f64);
}

fn main() {
    let dev = Device::Cpu;
    let rows = 32 * 51;
    let x = Tensor::randn(0f32, 1.0, (rows, 768), &dev).unwrap();
    let w = Tensor::randn(0f32, 1.0, (2304, 768), &dev).unwrap();
    let wt = w.t().unwrap().contiguous().unwrap();
    let w1 = Tensor::randn(0f32, 1.0, (3072, 768), &dev).unwrap();
    let h = Tensor::randn(0f32, 1.0, (rows, 3072), &dev).unwrap();
    t("qkv x@W^T (strided)", || x.matmul(&w.t()?));
    t("qkv x@Wt (contiguous)", || x.matmul(&wt));
    t("fc1 x@W1^T", || x.matmul(&w1.t()?));
    t("gelu_erf [rows,3072]", || h.gelu_erf());
    t("gelu (tanh) [rows,3072]", || h.gelu());
    let q = Tensor::randn(0f32, 1.0, (32, 12, 51, 64), &dev).unwrap();
    let k = q.transpose(2, 3).unwrap().contiguous().unwrap();
    t("q@k^T batched", || q.matmul(&k));
    let a = Tensor::randn(0f32, 1.0, (32, 12, 51, 51), &dev).unwrap();
    t("softmax_last_dim", || candle_nn::ops::softmax_last_dim(&a));
    t("att@v", || a.matmul(&q));
    let x3 = x.reshape((32, 51, 768)).unwrap();
    let g = Tensor::ones(768, candle_core::DType::F32, &dev).unwrap();
    let b = Tensor::zeros(768, candle_core::DType::F32, &dev).unwrap();
    t("layer_norm fused", || candle_nn::ops::layer_norm(&x3, &g, &b, 1e-5));
    let qkv = x.matmul(&wt).unwrap().reshape((32, 51, 3, 12, 64)).unwrap();
    t("qkv permute+contiguous", || qkv.permute((2, 0, 3, 1, 4))?.contiguous());
    t("add residual", || &x + &x);
    t("sum_keepdim", || h.sum_keepdim(D::Minus1));
    let bias = Tensor::randn(0f32, 1.0, 3072, &dev).unwrap();
    t("broadcast_add bias [rows,3072]", || h.broadcast_add(&bias));
    // A whole pre-norm block with random weights.
    let checked = emoclip::weights::CheckedTensors::new(Default::default(), emoclip::weights::Missing::Init, None);
    let vb = checked.var_builder(candle_core::DType::F32, &dev);
    let blk =
        emoclip::clip::ResidualAttentionBlock::load(vb, 768, 12, 3072, emoclip::nn::Activation::Gelu, 1e-5).unwrap();
    t("ResidualAttentionBlock [32,51,768]", || blk.forward(&x3, None));
    let ln = emoclip::nn::LayerNorm { weight: g.clone(), bias: b.clone(), eps: 1e-5 };
    t("our LayerNorm", || ln.forward(&x3));
    t("attn", || blk.attn.forward(&x3, &x3, None, false));
    t("c_fc linear", || blk.c_fc.forward(&x3));
    {
        let n = 8;
        let q = Tensor::randn(0f32, 1.0, (n, 12, 51, 64), &dev).unwrap();
        let kt = q.transpose(2, 3).unwrap().contiguous().unwrap();
        t("n=8 q@kT", || q.matmul(&kt));
        let a = Tensor::randn(0f32, 1.0, (n, 12, 51, 51), &dev).unwrap();
        t("n=8 softmax", || candle_nn::ops::softmax_last_dim(&a));
        t("n=8 att@v", || a.matmul(&q));
        t("n=8 k transpose contiguous", || q.transpose(2, 3)?.contiguous());
        let xs = Tensor::randn(0f32, 1.0, (n * 51, 768), &dev).unwrap();
        let qkv = xs.matmul(&wt).unwrap();
        t("n=8 qkv matmul", || xs.matmul(&wt));
        let qkv5 = qkv.reshape((n, 51, 3, 12, 64)).unwrap();
        t("n=8 permute contiguous", || qkv5.permute((2, 0, 3, 1, 4))?.contiguous());
        t("n=8 scale q", || q.affine(0.125, 0.0));
        let y = Tensor::randn(0f32, 1.0, (n, 12, 51, 64), &dev).unwrap();
        t("n=8 y transpose contiguous", || y.transpose(1, 2)?.contiguous());
        let x8 = Tensor::randn(0f32, 1.0, (n, 51, 768), &dev).unwrap();
        t("n=8 full attn", || blk.attn.forward(&x8, &x8, None, false));
        t("n=8 ln", || blk.ln_1.forward(&x8));
        t("n=8 add", || &x8 + &x8);
    }
    for n in [8usize, 16, 32] {
        let xs = Tensor::randn(0f32, 1.0, (n, 51, 768), &dev).unwrap();
        t(&format!("block n={n}"), || blk.forward(&xs, None));
        t(&format!("attn n={n}"), || blk.attn.forward(&xs, &xs, None, false));
        t(&format!("c_fc n={n}"), || blk.c_fc.forward(&xs));
        let xx = xs.reshape((n * 51, 768)).unwrap();
        t(&format!("raw matmul fc n={n}"), || xx.matmul(&w1.t()?));
        let hh = Tensor::randn(0f32, 1.0, (n * 51, 3072), &dev).unwrap();
        t(&format!("gelu n={n}"), || hh.gelu_erf());
    }
}
