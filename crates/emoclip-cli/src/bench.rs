//! `emoclip bench`: full-size EmotionCLIP (random weights) inference timing on this machine, beside the
//! PyTorch reference (`bench/pytorch_emotionclip.py`) run in the same invocation when `--pytorch` is given.
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use clap::Args;
use emoclip::embed::{load_encoder, Encoder, ModelKind};
use std::time::Instant;

#[derive(Args)]
pub struct BenchArgs {
    /// Built-in backbone config.
    #[arg(long, default_value = "ViT-B-32")]
    pub config: String,
    /// Clips per batch for the throughput measurement.
    #[arg(long, default_value_t = 4)]
    pub batch: usize,
    /// Timed iterations (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Python interpreter with torch installed: also time the PyTorch reference in this run.
    #[arg(long)]
    pub pytorch: Option<String>,
    /// Path of the PyTorch timing script.
    #[arg(long, default_value = "bench/pytorch_emotionclip.py")]
    pub pytorch_script: String,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn time<F: FnMut() -> Result<()>>(warmup: usize, iters: usize, mut f: F) -> Result<f64> {
    for _ in 0..warmup {
        f()?;
    }
    let mut t = Vec::new();
    for _ in 0..iters.max(1) {
        let s = Instant::now();
        f()?;
        t.push(s.elapsed().as_secs_f64());
    }
    Ok(median(t))
}

pub fn run(a: BenchArgs, threads: Option<usize>) -> Result<i32> {
    let dev = Device::Cpu;
    let enc = load_encoder(&format!("random:{}", a.config), None, ModelKind::EmotionClip, DType::F32, &dev)?;
    let Encoder::Emotion(m) = &enc else { bail!("internal: expected EmotionCLIP") };
    let s = m.backbone.visual.image_size;
    let t = m.config.video_len;
    let clip = |b: usize| -> Result<(Tensor, Tensor)> {
        let v = Tensor::randn(0f32, 1.0, (b, t, 3, s, s), &dev)?;
        let mut mask = vec![0f32; b * t * s * s];
        for (i, x) in mask.iter_mut().enumerate() {
            let (y, xx) = ((i / s) % s, i % s);
            *x = f32::from(y > s / 4 && y < 3 * s / 4 && xx > s / 3 && xx < 2 * s / 3);
        }
        Ok((v, Tensor::from_vec(mask, (b, t, s, s), &dev)?))
    };
    let (v1, m1) = clip(1)?;
    let single = time(a.warmup, a.iters, || {
        m.encode_video(&v1, Some(&m1))?.to_vec2::<f32>()?;
        Ok(())
    })?;
    let (vb, mb) = clip(a.batch)?;
    let batched = time(a.warmup.min(1), a.iters, || {
        m.encode_video(&vb, Some(&mb))?.to_vec2::<f32>()?;
        Ok(())
    })?;
    let tok = emoclip::tokenizer::ClipTokenizer::new()?;
    let prompts: Vec<String> = (0..8).map(|i| format!("a photo of a person who feels emotion number {i}")).collect();
    let refs: Vec<&str> = prompts.iter().map(String::as_str).collect();
    let ids = tok.tokenize_tensor(&refs, 77, emoclip::tokenizer::Truncation::ForceEot, &dev)?;
    let text = time(a.warmup.min(1), a.iters, || {
        m.encode_text(&ids)?.to_vec2::<f32>()?;
        Ok(())
    })?;
    let n_threads = threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let rust = (single, a.batch as f64 / batched, text);
    let torch = match &a.pytorch {
        None => None,
        Some(py) => Some(run_pytorch(py, &a, n_threads)?),
    };
    println!("\nEmotionCLIP {} (SAP, 8 frames, temporal transformer), fp32 CPU, {n_threads} thread(s), median of {} runs\n", a.config, a.iters);
    println!("| implementation | s / clip (batch 1) | clips/s (batch {}) | s / 8 prompts (text) |", a.batch);
    println!("|---|---|---|---|");
    println!("| emoclip (candle) | {:.3} | {:.2} | {:.3} |", rust.0, rust.1, rust.2);
    if let Some((ts, tc, tt, ver)) = torch {
        println!("| PyTorch {ver} | {ts:.3} | {tc:.2} | {tt:.3} |");
        println!(
            "| ratio (emoclip speed / PyTorch) | {:.2}x | {:.2}x | {:.2}x |",
            ts / rust.0,
            rust.1 / tc,
            tt / rust.2
        );
    }
    Ok(0)
}

/// Runs the PyTorch timing script and parses its JSON line.
fn run_pytorch(py: &str, a: &BenchArgs, threads: usize) -> Result<(f64, f64, f64, String)> {
    let out = std::process::Command::new(py)
        .args([&a.pytorch_script, "--threads", &threads.to_string(), "--batch", &a.batch.to_string(), "--iters", &a.iters.to_string(), "--text"])
        .output()
        .with_context(|| format!("cannot run {py} {}", a.pytorch_script))?;
    if !out.status.success() {
        bail!("PyTorch benchmark failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().rev().find(|l| l.trim_start().starts_with('{')).context("no JSON line from the PyTorch benchmark")?;
    let v: serde_json::Value = serde_json::from_str(line)?;
    let f = |k: &str| v.get(k).and_then(|x| x.as_f64()).with_context(|| format!("PyTorch result lacks {k}"));
    Ok((f("s_per_clip")?, f("clips_per_s_batch")?, f("text_s_per_batch8")?, v.get("torch").and_then(|x| x.as_str()).unwrap_or("?").to_string()))
}
