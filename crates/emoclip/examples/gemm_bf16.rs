//! Micro-benchmark of the bf16 GEMM (`nn::cpu::gemm_bf16`) against candle's f32 matmul on the model's shapes.
//! `cargo run --release -p emoclip --example gemm_bf16 [-- M N K ...]`; prints GFLOP/s (median of runs).
use candle_core::{Device, Tensor};
use emoclip::nn::cpu::gemm_bf16::{gemm, ConvA, PackedB};
use std::time::Instant;

fn median<F: FnMut()>(iters: usize, mut f: F) -> f64 {
    f();
    let mut t: Vec<f64> = (0..iters)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(|a, b| a.total_cmp(b));
    t[t.len() / 2]
}

fn main() -> candle_core::Result<()> {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    // (M, N, K): one 8-frame clip of ViT-B/32 (400 tokens): qkv, out, c_fc, c_proj; batch of 4 clips; patch
    // embedding; text tower (8 prompts × 16 tokens).
    let shapes: Vec<(usize, usize, usize)> = if args.len() >= 3 {
        args.chunks(3).filter(|c| c.len() == 3).map(|c| (c[0], c[1], c[2])).collect()
    } else {
        vec![
            (400, 2304, 768),
            (400, 768, 768),
            (400, 3072, 768),
            (400, 768, 3072),
            (1600, 3072, 768),
            (1600, 768, 3072),
            (392, 768, 3072),
            (128, 2048, 512),
        ]
    };
    let dev = Device::Cpu;
    println!("threads: {}", rayon::current_num_threads());
    println!("| M | N | K | candle f32 GFLOP/s | bf16 kernel GFLOP/s (incl. A conversion) | speed-up |");
    println!("|---|---|---|---|---|---|");
    for (m, n, k) in shapes {
        let a = Tensor::randn(0f32, 1.0, (m, k), &dev)?;
        let w = Tensor::randn(0f32, 1.0, (n, k), &dev)?;
        let wt = w.t()?;
        let iters = 15;
        let t32 = median(iters, || {
            let _ = a.matmul(&wt).unwrap();
        });
        let av: Vec<f32> = a.flatten_all()?.to_vec1()?;
        let wv: Vec<f32> = w.flatten_all()?.to_vec1()?;
        let pb = PackedB::from_weight(&wv, n, k);
        let mut c = vec![0f32; m * n];
        let t16 = median(iters, || {
            let ca = ConvA::convert(&av, m, k, k, 1);
            gemm(&ca, &pb, &mut c, n, None, true);
        });
        let want: Vec<f32> = a.matmul(&wt)?.flatten_all()?.to_vec1()?;
        let scale = want.iter().fold(0f32, |m, x| m.max(x.abs()));
        let err = c.iter().zip(&want).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(err < 0.02 * scale && err > 0.0, "max error {err} for scale {scale}");
        let fl = 2.0 * (m * n * k) as f64;
        println!("| {m} | {n} | {k} | {:.0} | {:.0} | {:.2}x |", fl / t32 / 1e9, fl / t16 / 1e9, t32 / t16);
    }
    Ok(())
}
