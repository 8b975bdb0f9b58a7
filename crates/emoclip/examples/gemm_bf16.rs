//! Micro-benchmark of the bf16 GEMM (`nn::cpu::gemm_bf16`) against candle's f32 matmul on the model's shapes,
//! and this CPU's measured bf16 peak. `cargo run --release -p emoclip --example gemm_bf16 [-- M N K ...]`.
//! GFLOP/s from the best of 15 runs (wall time), and from the median CPU time of the kernel's threads
//! (robust on a shared machine; equals the wall-time figure × threads on an idle one).
use candle_core::{Device, Tensor};
use emoclip::nn::cpu::gemm_bf16::{gemm, measure_peak, ConvA, Epilogue, PackedB};
use std::time::Instant;

/// CPU seconds this process's threads have run (sum of `/proc/self/task/*/schedstat`, nanoseconds): on a
/// shared machine, unlike wall time, it does not count the time other processes hold the cores.
fn cpu_seconds() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return f64::NAN };
    dir.filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .sum::<f64>()
        / 1e9
}

/// (best wall seconds, median CPU seconds) per call over `iters` calls.
fn best<F: FnMut()>(iters: usize, mut f: F) -> (f64, f64) {
    f();
    let mut t: Vec<(f64, f64)> = (0..iters)
        .map(|_| {
            let (s, c) = (Instant::now(), cpu_seconds());
            f();
            (s.elapsed().as_secs_f64(), cpu_seconds() - c)
        })
        .collect();
    let mut cpu: Vec<f64> = t.iter().map(|x| x.1).collect();
    cpu.sort_by(|a, b| a.total_cmp(b));
    t.sort_by(|a, b| a.0.total_cmp(&b.0));
    (t[0].0, cpu[cpu.len() / 2])
}

fn main() -> candle_core::Result<()> {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    // (M, N, K): one 8-frame clip of ViT-B/32 with SAP (408 tokens): qkv, out, c_fc, c_proj; a batch of 4
    // clips; the patch embedding; the text tower (8 prompts × 16 tokens).
    let shapes: Vec<(usize, usize, usize)> = if args.len() >= 3 {
        args.chunks(3).filter(|c| c.len() == 3).map(|c| (c[0], c[1], c[2])).collect()
    } else {
        vec![
            (408, 2304, 768),
            (408, 768, 768),
            (408, 3072, 768),
            (408, 768, 3072),
            (1632, 3072, 768),
            (1632, 768, 3072),
            (392, 768, 3072),
            (128, 2048, 512),
        ]
    };
    let dev = Device::Cpu;
    let threads = rayon::current_num_threads();
    if let Some((ghz, per_cycle)) = measure_peak(50) {
        println!(
            "measured: {ghz:.2} GHz, {per_cycle:.2} vdpbf16ps/cycle -> bf16 peak {:.0} GFLOP/s per core, {:.0} for {threads}",
            ghz * per_cycle.round() * 64.0,
            threads as f64 * ghz * per_cycle.round() * 64.0
        );
    }
    println!("threads: {threads}");
    println!("| M | N | K | candle f32 GFLOP/s | bf16 GFLOP/s (incl. A conversion) | speed-up | bf16 GFLOP/s per CPU-second |");
    println!("|---|---|---|---|---|---|---|");
    for (m, n, k) in shapes {
        let a = Tensor::randn(0f32, 1.0, (m, k), &dev)?;
        let w = Tensor::randn(0f32, 1.0, (n, k), &dev)?;
        let wt = w.t()?;
        let iters = 15;
        let (t32, _) = best(iters, || {
            let _ = a.matmul(&wt).unwrap();
        });
        let av: Vec<f32> = a.flatten_all()?.to_vec1()?;
        let wv: Vec<f32> = w.flatten_all()?.to_vec1()?;
        let pb = PackedB::from_weight(&wv, n, k);
        let mut c = vec![0f32; m * n];
        let (t16, c16) = best(iters, || {
            let ca = ConvA::convert(&av, m, k, k, 1);
            gemm(&ca, &pb, &mut c, n, Epilogue::None, true);
        });
        let want: Vec<f32> = a.matmul(&wt)?.flatten_all()?.to_vec1()?;
        let scale = want.iter().fold(0f32, |m, x| m.max(x.abs()));
        let err = c.iter().zip(&want).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(err < 0.02 * scale && err > 0.0, "max error {err} for scale {scale}");
        let fl = 2.0 * (m * n * k) as f64;
        println!(
            "| {m} | {n} | {k} | {:.0} | {:.0} | {:.2}x | {:.0} |",
            fl / t32 / 1e9,
            fl / t16 / 1e9,
            t32 / t16,
            fl / c16 / 1e9
        );
    }
    Ok(())
}
