//! One AdamW step over ~170 M f32 parameters (EmotionCLIP ViT-B/32 scale): fused in-place kernel
//! (`emoclip::optim::AdamW`) vs its generic tensor path vs `candle_nn::AdamW`.
//!
//! `cargo run --release -p emoclip --example bench_adamw -- [millions of parameters, default 170] [timed steps, default 3]`
use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var};
use candle_nn::{Optimizer, ParamsAdamW};
use emoclip::optim::{AdamW, ParamGroup};
use std::collections::HashMap;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let millions: usize = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(170);
    let steps: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(3).max(1);
    let dev = Device::Cpu;
    // Transformer-like shapes: [768, 3072] matrices plus some 768-vectors (biases / gains).
    let mat = 768 * 3072;
    let n_mat = (millions * 1_000_000 / mat).max(1);
    let n_vec = 200;
    let mut vars = HashMap::new();
    let mut grads = GradStore::default();
    let mut total = 0usize;
    for i in 0..n_mat + n_vec {
        let shape: Vec<usize> = if i < n_mat { vec![768, 3072] } else { vec![768] };
        let var = Var::from_tensor(&Tensor::randn(0f32, 0.02, shape.as_slice(), &dev)?)?;
        grads.insert(var.as_tensor(), Tensor::randn(0f32, 1e-3, shape.as_slice(), &dev)?);
        total += var.elem_count();
        vars.insert(format!("p{i:04}"), var);
    }
    let names: Vec<String> = vars.keys().cloned().collect();
    let groups = vec![ParamGroup {
        name: "all".into(),
        lr: 1e-5,
        betas: (0.98, 0.9),
        eps: 1e-6,
        weight_decay: 0.1,
        params: names,
    }];
    let threads = rayon::current_num_threads();
    println!("AdamW step over {:.1} M f32 parameters in {} tensors, {threads} rayon threads, median of {steps} steps after 1 warm-up", total as f64 / 1e6, vars.len());

    let time =
        |f: &mut dyn FnMut() -> Result<(), Box<dyn std::error::Error>>| -> Result<f64, Box<dyn std::error::Error>> {
            f()?; // warm-up (first-touch allocation of the moments)
            let mut ts = Vec::new();
            for _ in 0..steps {
                let t0 = Instant::now();
                f()?;
                ts.push(t0.elapsed().as_secs_f64());
            }
            ts.sort_by(|a, b| a.total_cmp(b));
            Ok(ts[ts.len() / 2])
        };

    let mut rows = Vec::new();
    {
        let mut opt = AdamW::from_named_vars(&vars, groups.clone())?;
        rows.push(("emoclip fused (in place)", time(&mut || Ok(opt.step(&grads)?))?));
    }
    {
        let mut opt = AdamW::from_named_vars(&vars, groups.clone())?;
        opt.set_fused(false)?;
        rows.push(("emoclip generic (tensor ops)", time(&mut || Ok(opt.step(&grads)?))?));
    }
    {
        let all: Vec<Var> = vars.values().cloned().collect();
        let params = ParamsAdamW { lr: 1e-5, beta1: 0.98, beta2: 0.9, eps: 1e-6, weight_decay: 0.1 };
        let mut opt = candle_nn::AdamW::new(all, params)?;
        rows.push(("candle_nn::AdamW", time(&mut || Ok(opt.step(&grads)?))?));
    }
    let base = rows.last().map(|r| r.1).unwrap_or(1.0);
    // The fused pass reads p, g, m, v and writes p, m, v: 28 bytes per parameter.
    println!("| optimiser | s / step | GB/s (28 B/param) | speed-up vs candle_nn |");
    println!("|---|---|---|---|");
    for (name, s) in &rows {
        println!("| {name} | {s:.3} | {:.1} | {:.1}x |", 28.0 * total as f64 / s / 1e9, base / s);
    }
    Ok(())
}
