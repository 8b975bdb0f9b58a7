//! `emoclip bench`: full-size EmotionCLIP (random weights) inference timing on this machine, beside the
//! PyTorch reference (`bench/pytorch_emotionclip.py`) run in the same invocation when `--pytorch` is given;
//! `--train`: one full pre-training step (forward, SNCE, backward, fused AdamW), beside
//! `bench/pytorch_train_step.py`, with a per-phase breakdown.
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use clap::Args;
use emoclip::encoder::{load_encoder, Encoder, ModelKind};
use std::time::Instant;

#[derive(Args)]
pub struct BenchArgs {
    /// Built-in backbone config.
    #[arg(long, default_value = "ViT-B-32")]
    pub config: String,
    /// Clips per batch for the throughput measurement.
    #[arg(long, default_value_t = 4, value_parser = crate::commands::at_least_one)]
    pub batch: usize,
    /// Timed iterations (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Rounds of measurement; with --pytorch each round times emoclip and then PyTorch, so a slow drift of
    /// this machine's speed (other tenants, clock) falls on both. Figures are medians over the rounds, and the
    /// ratio of each round is printed.
    #[arg(long, default_value_t = 1, value_parser = crate::commands::at_least_one)]
    pub rounds: usize,
    /// Python interpreter with torch installed: also time the PyTorch reference in this run.
    #[arg(long)]
    pub pytorch: Option<String>,
    /// Path of the PyTorch timing script (default: bench/pytorch_emotionclip.py, or
    /// bench/pytorch_train_step.py with --train).
    #[arg(long)]
    pub pytorch_script: Option<String>,
    /// Time one training step instead (trainer path: SAP, temporal head with dropout, SNCE β 10, official
    /// parameter groups, fused AdamW, logit-scale clamp) on `--train-batch` clips of 8 frames + captions.
    #[arg(long)]
    pub train: bool,
    /// Clips (and captions) per training step.
    #[arg(long, default_value_t = 2, value_parser = crate::commands::at_least_one)]
    pub train_batch: usize,
    /// Device of the training step: cpu, cuda or cuda:N (the PyTorch side uses the same).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Training precision: fp32, or bf16 mixed precision (ours: `nn::autocast`; PyTorch: `torch.autocast`).
    #[arg(long, default_value = "fp32")]
    pub precision: String,
    /// Peak dense TFLOP/s of the device at this precision (e.g. 989 for H100 SXM bf16), to print MFU.
    #[arg(long)]
    pub peak_tflops: Option<f64>,
    /// Inference precision: f32, or bf16 (f32 weights, matrix products on the AVX-512 BF16 kernel where the
    /// CPU has it); with --pytorch, bf16 also times PyTorch in bf16 (the faster of `model.bfloat16()` and
    /// `torch.autocast`) beside its fp32.
    #[arg(long, value_enum, default_value = "f32")]
    pub dtype: crate::commands::Precision,
    /// Time `emoclip embed`'s loop end to end (decoding + preprocessing pipelined with the model) on real videos
    /// against the model alone on the same, already prepared clips, in batches of `--batch`.
    #[arg(long)]
    pub embed: bool,
    /// Videos for `--embed`, repeated in turn up to `--embed-clips`.
    #[arg(long, num_args = 1.., default_values = ["media/vtest.avi", "media/Megamind.avi", "media/carphone_pristine.mp4"])]
    pub embed_media: Vec<std::path::PathBuf>,
    /// Clips embedded per `--embed` run.
    #[arg(long, default_value_t = 9, value_parser = crate::commands::at_least_one)]
    pub embed_clips: usize,
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

/// FLOPs (2 per multiply-add) of the matrix products of `encode_video` on one clip: frame tower (patch
/// embedding, per block QKV/out/MLP and the two attention products, projection) on every frame, temporal head.
fn video_flops(cfg: &emoclip::emotionclip::EmotionClipConfig) -> f64 {
    let v = &cfg.backbone.vision_cfg;
    let (d, e) = (v.width as f64, cfg.backbone.embed_dim as f64);
    let g = (v.image_size / v.patch_size) as f64;
    let extra = if cfg.subject == emoclip::emotionclip::SubjectMode::None { 0.0 } else { 1.0 };
    let l = g * g + 1.0 + extra;
    let mlp = d * v.mlp_ratio;
    let frame = 2.0 * g * g * (3 * v.patch_size * v.patch_size) as f64 * d
        + v.layers as f64 * (2.0 * l * (4.0 * d * d + 2.0 * d * mlp) + 4.0 * l * l * d)
        + 2.0 * d * e;
    let t = cfg.video_len as f64;
    let h = &cfg.temporal;
    let head = match h.fusion {
        emoclip::emotionclip::TemporalFusion::Transformer => {
            h.layers as f64 * (2.0 * t * (4.0 * e * e + 2.0 * e * h.ff as f64) + 4.0 * t * t * e)
        }
        emoclip::emotionclip::TemporalFusion::Mean => 0.0,
    };
    t * frame + head
}

/// FLOPs of `encode_video` on one clip that bf16 inference does not compute: in the frame tower's last block
/// only the CLS token is a query and passes `out_proj` and the MLP (`clip::Transformer::forward_cls`).
fn skipped_flops(cfg: &emoclip::emotionclip::EmotionClipConfig) -> f64 {
    let v = &cfg.backbone.vision_cfg;
    let d = v.width as f64;
    let g = (v.image_size / v.patch_size) as f64;
    let extra = if cfg.subject == emoclip::emotionclip::SubjectMode::None { 0.0 } else { 1.0 };
    let l = g * g + 1.0 + extra;
    // Per frame: (L − 1) rows of out_proj and the MLP, and (L − 1) query rows of the two attention products.
    cfg.video_len as f64 * (l - 1.0) * (2.0 * (d * d + 2.0 * d * d * v.mlp_ratio) + 4.0 * l * d)
}

/// FLOPs of `encode_text` on `n` prompts run on their first `len` tokens.
fn text_flops(cfg: &emoclip::clip::OpenClipConfig, n: usize, len: usize) -> f64 {
    let t = &cfg.text_cfg;
    let (w, l) = (t.width as f64, len as f64);
    let per = t.layers as f64 * (2.0 * l * (4.0 * w * w + 2.0 * w * w * t.mlp_ratio) + 4.0 * l * l * w)
        + 2.0 * w * cfg.embed_dim as f64;
    n as f64 * per
}

pub fn run(a: BenchArgs, threads: Option<usize>) -> Result<i32> {
    if a.train {
        return run_train(a, threads);
    }
    if a.embed {
        return run_embed(a, threads);
    }
    let dev = Device::Cpu;
    let bf16 = matches!(a.dtype, crate::commands::Precision::Bf16);
    if matches!(a.dtype, crate::commands::Precision::F16) {
        bail!("--dtype f16: the benchmark runs f32 or bf16 on the CPU");
    }
    let dtype = if bf16 { DType::BF16 } else { DType::F32 };
    let mut enc = load_encoder(&format!("random:{}", a.config), None, ModelKind::EmotionClip, dtype, &dev)?;
    // bf16: f32 weights, bf16 matrix products on this thread (as `emoclip embed --dtype bf16`).
    let _autocast = emoclip::nn::autocast::autocast(emoclip::nn::autocast::split(dtype, &dev).1);
    // As an `Embedder`: in bf16 the weights are packed for the kernel now and their f32 copies dropped.
    let kernel = enc.for_inference(dtype, &dev)?;
    let Encoder::Emotion(m) = &enc else { bail!("internal: expected EmotionCLIP") };
    if bf16 && !kernel {
        eprintln!("this CPU has no AVX-512 BF16 (or EMOCLIP_BF16_KERNEL=off): bf16 runs the f32 path");
    }
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
    let (vb, mb) = clip(a.batch)?;
    let tok = emoclip::tokenizer::ClipTokenizer::new()?;
    let prompts: Vec<String> = (0..8).map(|i| format!("a photo of a person who feels emotion number {i}")).collect();
    let refs: Vec<&str> = prompts.iter().map(String::as_str).collect();
    let ids = tok.tokenize_tensor(&refs, 77, emoclip::tokenizer::Truncation::ForceEot, &dev)?;
    let n_threads = threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let ours = || -> Result<Speed> {
        let single = time(a.warmup, a.iters, || {
            m.encode_video(&v1, Some(&m1))?.to_vec2::<f32>()?;
            Ok(())
        })?;
        let batched = time(a.warmup.min(1), a.iters, || {
            m.encode_video(&vb, Some(&mb))?.to_vec2::<f32>()?;
            Ok(())
        })?;
        let text = time(a.warmup.min(1), a.iters, || {
            m.encode_text(&ids)?.to_vec2::<f32>()?;
            Ok(())
        })?;
        Ok(Speed { clip_s: single, clips_per_s: a.batch as f64 / batched, text_s: text })
    };
    // Rounds: ours, then PyTorch's, in turn.
    let (mut rust_rounds, mut torch_rounds) = (Vec::new(), Vec::new());
    for r in 0..a.rounds {
        if a.rounds > 1 {
            eprintln!("round {}/{}", r + 1, a.rounds);
        }
        rust_rounds.push(ours()?);
        if let Some(py) = &a.pytorch {
            torch_rounds.push(run_pytorch(py, &a, n_threads)?);
        }
    }
    let rust = Speed::median(&rust_rounds);
    let torch = TorchSpeed::median(&torch_rounds);
    // Text runs on its first `len` tokens: up to the last pooled (EOT) position.
    let text_len = m.backbone.text()?.pool_positions(&ids.to_vec2::<u32>()?).into_iter().map(|p| p + 1).max();
    let vflops = video_flops(&m.config);
    let tflops = text_flops(&m.config.backbone, 8, text_len.unwrap_or(77) as usize);
    let peak = emoclip::nn::cpu::gemm_bf16::measure_peak(50);
    let precision = if kernel { "bf16 (AVX-512 BF16 kernel)" } else { "fp32" };
    let rounds = if a.rounds > 1 {
        format!("median over {} rounds (emoclip, then PyTorch, in turn) of medians of {} runs", a.rounds, a.iters)
    } else {
        format!("median of {} runs", a.iters)
    };
    println!(
        "\nEmotionCLIP {} (SAP, 8 frames, temporal transformer), {precision} CPU, {n_threads} thread(s), {rounds}\n",
        a.config
    );
    println!(
        "| implementation | s / clip (batch 1) | clips/s (batch {}) | s / 8 prompts (text) | GFLOP/s (batch 1, batch {}, text) |",
        a.batch, a.batch
    );
    println!("|---|---|---|---|---|");
    let row = |name: &str, x: &Speed| {
        println!(
            "| {name} | {:.3} | {:.2} | {:.3} | {:.0}, {:.0}, {:.0} |",
            x.clip_s,
            x.clips_per_s,
            x.text_s,
            vflops / x.clip_s / 1e9,
            vflops * x.clips_per_s / 1e9,
            tflops / x.text_s / 1e9
        )
    };
    let ratio = |name: &str, x: &Speed| {
        println!(
            "| ratio (emoclip speed / {name}) | {:.2}x | {:.2}x | {:.2}x | |",
            x.clip_s / rust.clip_s,
            rust.clips_per_s / x.clips_per_s,
            x.text_s / rust.text_s
        )
    };
    row(&format!("emoclip (candle) {}", if bf16 { "bf16" } else { "fp32" }), &rust);
    if let Some(t) = &torch {
        row(&format!("PyTorch {} fp32", t.version), &t.fp32);
        if let Some((b, how)) = &t.bf16 {
            row(&format!("PyTorch {} bf16 ({how})", t.version), b);
        }
        ratio("PyTorch fp32", &t.fp32);
        if let Some((b, _)) = &t.bf16 {
            ratio("PyTorch bf16", b);
        }
    }
    if a.rounds > 1 {
        // Each round's ratios against PyTorch's fastest precision timed (bf16 when timed).
        for (i, (ours, theirs)) in rust_rounds.iter().zip(&torch_rounds).enumerate() {
            let (t, name) = match &theirs.bf16 {
                Some((b, _)) => (b, "bf16"),
                None => (&theirs.fp32, "fp32"),
            };
            println!(
                "round {}: emoclip {:.3} s/clip, {:.2} clips/s; PyTorch {name} {:.3} s/clip, {:.2} clips/s; ratio {:.2}x / {:.2}x",
                i + 1,
                ours.clip_s,
                ours.clips_per_s,
                t.clip_s,
                t.clips_per_s,
                t.clip_s / ours.clip_s,
                ours.clips_per_s / t.clips_per_s
            );
        }
    }
    println!(
        "\nmodel FLOPs (2 per multiply-add, matrix products): {:.1} GFLOP per clip, {:.2} GFLOP per 8 prompts ({} tokens); \
         GFLOP/s above are effective (these FLOPs / time){}",
        vflops / 1e9,
        tflops / 1e9,
        text_len.unwrap_or(77),
        if kernel {
            format!(
                ": emoclip bf16 skips {:.1} GFLOP per clip of them (the frame tower's last block computes only the \
                 CLS token, the one the model uses)",
                skipped_flops(&m.config) / 1e9
            )
        } else {
            String::new()
        }
    );
    if let Some((ghz, per_cycle)) = peak {
        let cores = n_threads.min(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
        let bf16_peak = cores as f64 * ghz * per_cycle.round() * 64.0;
        println!(
            "bf16 peak: {cores} core(s) × {ghz:.2} GHz × {:.0} vdpbf16ps/cycle (measured {per_cycle:.2}) × 64 FLOP = {bf16_peak:.0} GFLOP/s \
             (clock from a dependent-add chain, rate from 24 independent vdpbf16ps chains, best of 50 probes); \
             emoclip at batch 1 / batch {}: {:.0}% / {:.0}% of it",
            per_cycle.round(),
            a.batch,
            100.0 * vflops / rust.clip_s / 1e9 / bf16_peak,
            100.0 * vflops * rust.clips_per_s / 1e9 / bf16_peak
        );
    }
    Ok(0)
}

/// `emoclip bench --embed`: the embedding loop (`Embedder::embed_each`: decoding and preprocessing on a
/// producer thread, the model on this one) end to end on real videos, beside the same clips through the model
/// alone (prepared beforehand), the preparation alone, and the two one after the other (the loop without the
/// overlap). Medians of `--iters` runs after a warm-up.
fn run_embed(a: BenchArgs, threads: Option<usize>) -> Result<i32> {
    use emoclip::encoder::{preprocessor_for, Embedder, MediaInput, Prepared};
    use std::ops::ControlFlow;
    if matches!(a.dtype, crate::commands::Precision::F16) {
        bail!("--dtype f16: the benchmark runs f32 or bf16 on the CPU");
    }
    if a.embed_media.is_empty() {
        bail!("--embed-media: give at least one video");
    }
    for p in &a.embed_media {
        if !p.is_file() {
            bail!(
                "--embed-media {}: no such file; run `bash scripts/fetch_media.sh` or name other videos",
                p.display()
            );
        }
    }
    let bf16 = matches!(a.dtype, crate::commands::Precision::Bf16);
    let dtype = if bf16 { DType::BF16 } else { DType::F32 };
    let dev = Device::Cpu;
    let enc = load_encoder(&format!("random:{}", a.config), None, ModelKind::EmotionClip, dtype, &dev)?;
    let pre = preprocessor_for(enc.image_size(), emoclip::media::IMAGENET);
    let emb = Embedder::new(enc, pre, dev, dtype, 8)?;
    let files: Vec<std::path::PathBuf> =
        (0..a.embed_clips).map(|i| a.embed_media[i % a.embed_media.len()].clone()).collect();
    let input = |i: usize| -> emoclip::Result<MediaInput> { Ok(MediaInput::new(files[i].clone(), None)) };
    let indices: Vec<usize> = (0..files.len()).collect();
    let prepare_all = || -> Result<Vec<Prepared>> {
        let mut out = Vec::new();
        for chunk in indices.chunks(a.batch) {
            out.extend(prepare_batch(&emb, &files, chunk)?);
        }
        Ok(out)
    };
    let prepared = prepare_all()?;
    let encode_all = |items: &[Prepared]| -> Result<usize> {
        let mut n = 0;
        for chunk in items.chunks(a.batch) {
            n += emb.encode(chunk)?.len();
        }
        Ok(n)
    };
    let pipelined = || -> Result<()> {
        let run = emb.embed_each(&indices, a.batch, input, &mut |_| ControlFlow::Continue(()))?;
        if !run.failures.is_empty() || run.rows.len() != files.len() {
            bail!("embedding failed: {:?}", run.failures);
        }
        Ok(())
    };
    // Interleaved, so machine load drifts alike over all four. Each run's wall and process CPU seconds.
    let (mut t_model, mut t_prep, mut t_seq, mut t_pipe) = (vec![], vec![], vec![], vec![]);
    let clock = |f: &mut dyn FnMut() -> Result<()>| -> Result<(f64, f64)> {
        let (s, c) = (Instant::now(), process_cpu_s());
        f()?;
        Ok((s.elapsed().as_secs_f64(), process_cpu_s() - c))
    };
    for round in 0..a.warmup.min(1) + a.iters.max(1) {
        let m = clock(&mut || encode_all(&prepared).map(|_| ()))?;
        let p = clock(&mut || prepare_all().map(|_| ()))?;
        let q = clock(&mut || {
            // The loop without the overlap: each batch prepared, then encoded.
            for chunk in indices.chunks(a.batch) {
                emb.encode(&prepare_batch(&emb, &files, chunk)?)?;
            }
            Ok(())
        })?;
        let e = clock(&mut || pipelined())?;
        if round >= a.warmup.min(1) {
            t_model.push(m);
            t_prep.push(p);
            t_seq.push(q);
            t_pipe.push(e);
        }
    }
    let n_threads = threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let kernel = bf16 && emoclip::nn::cpu::gemm_bf16::available();
    let names: Vec<String> = a.embed_media.iter().map(|p| p.display().to_string()).collect();
    println!(
        "\nemoclip embed loop, EmotionCLIP {} random weights, {}, {} clips ({} in turn), batch {}, {n_threads} thread(s), median of {} runs\n",
        a.config,
        if kernel { "bf16 (AVX-512 BF16 kernel)" } else if bf16 { "bf16 requested, f32 path (no AVX-512 BF16)" } else { "f32" },
        files.len(),
        names.join(", "),
        a.batch,
        a.iters.max(1)
    );
    let n = files.len() as f64;
    println!("| run | s (all clips) | s / clip | vs model only | CPU s |");
    println!("|---|---|---|---|---|");
    let wall = |t: &[(f64, f64)]| median(t.iter().map(|x| x.0).collect());
    let cpu = |t: &[(f64, f64)]| median(t.iter().map(|x| x.1).collect());
    let model = wall(&t_model);
    // No overlap finishes before the CPU work of both halves is done on all of the machine's cores, nor before
    // either half alone.
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let bound = ((cpu(&t_model) + cpu(&t_prep)) / cores as f64).max(model).max(wall(&t_prep));
    for (name, t) in [
        ("model only (clips prepared beforehand)", &t_model),
        ("decode + preprocess only", &t_prep),
        ("prepare then encode, per batch (no overlap)", &t_seq),
        ("embed loop, pipelined (Embedder::embed_each)", &t_pipe),
    ] {
        let m = wall(t);
        let runs: Vec<String> = t.iter().map(|x| format!("{:.2}", x.0)).collect();
        println!("| {name} | {m:.3} ({}) | {:.3} | {:.2}x | {:.2} |", runs.join(", "), m / n, m / model, cpu(t));
    }
    println!(
        "| bound for any overlap: (model + preparation CPU s) / {cores} core(s) | {bound:.3} | {:.3} | {:.2}x | |",
        bound / n,
        bound / model
    );
    if n_threads >= 2 {
        run_embed_split(&a, &emb, &files, &prepared, n_threads)?;
    }
    Ok(0)
}

/// The clips `chunk` of `files` decoded and preprocessed in parallel, in the current pool (as the embed loop's
/// producer prepares a batch).
fn prepare_batch(
    emb: &emoclip::encoder::Embedder,
    files: &[std::path::PathBuf],
    chunk: &[usize],
) -> emoclip::Result<Vec<emoclip::encoder::Prepared>> {
    use rayon::prelude::*;
    chunk.par_iter().map(|&i| emb.prepare(&emoclip::encoder::MediaInput::new(files[i].clone(), None))).collect()
}

/// The embed loop where the model is the bottleneck, as on a GPU (or a machine with cores to spare for
/// decoding): the model in a pool of `threads - 1`, decoding and preprocessing in a pool of its own thread.
/// Beside the model alone in the same pool (also while the preparation runs beside it, independently), and what
/// a perfect overlap takes: the model alone plus preparing the first batch, which nothing can overlap.
fn run_embed_split(
    a: &BenchArgs,
    emb: &emoclip::encoder::Embedder,
    files: &[std::path::PathBuf],
    prepared: &[emoclip::encoder::Prepared],
    threads: usize,
) -> Result<()> {
    use emoclip::encoder::{MediaInput, Prepared};
    use std::ops::ControlFlow;
    let model_pool = rayon::ThreadPoolBuilder::new().num_threads(threads - 1).build()?;
    let prep_pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let indices: Vec<usize> = (0..files.len()).collect();
    let prepare = |chunk: &[usize]| -> Result<Vec<Prepared>> {
        prep_pool.install(|| prepare_batch(emb, files, chunk)).map_err(Into::into)
    };
    let encode_all = || -> Result<f64> {
        let s = Instant::now();
        model_pool.install(|| prepared.chunks(a.batch).try_for_each(|c| emb.encode(c).map(|_| ())))?;
        Ok(s.elapsed().as_secs_f64())
    };
    let (mut t_model, mut t_prep, mut t_first, mut t_pipe, mut t_beside) = (vec![], vec![], vec![], vec![], vec![]);
    for round in 0..a.warmup.min(1) + a.iters.max(1) {
        let m = encode_all()?;
        // The model while all clips are prepared on the other thread, neither waiting for the other: what the
        // two cost each other in shared caches, memory bandwidth and the kernel's memory bookkeeping.
        let b = std::thread::scope(|s| -> Result<f64> {
            let prep = s.spawn(|| indices.chunks(a.batch).try_for_each(|c| prepare(c).map(|_| ())));
            let b = encode_all();
            prep.join().map_err(|_| anyhow::anyhow!("the preparation thread panicked"))??;
            b
        })?;
        let s = Instant::now();
        prepare(&indices[..a.batch.min(indices.len())])?;
        let f = s.elapsed().as_secs_f64();
        let s = Instant::now();
        for chunk in indices.chunks(a.batch) {
            prepare(chunk)?;
        }
        let p = s.elapsed().as_secs_f64();
        let s = Instant::now();
        let run = model_pool.install(|| {
            let input = |i: usize| -> emoclip::Result<MediaInput> { Ok(MediaInput::new(files[i].clone(), None)) };
            emb.embed_each_in(Some(&prep_pool), &indices, a.batch, input, &mut |_| ControlFlow::Continue(()))
        })?;
        let e = s.elapsed().as_secs_f64();
        if !run.failures.is_empty() || run.rows.len() != files.len() {
            bail!("embedding failed: {:?}", run.failures);
        }
        if round >= a.warmup.min(1) {
            t_model.push(m);
            t_first.push(f);
            t_prep.push(p);
            t_pipe.push(e);
            t_beside.push(b);
        }
    }
    let n = files.len() as f64;
    let model = median(t_model.clone());
    println!(
        "\nthe same loop with the model as the bottleneck (as on a GPU): the model on {} thread(s), decoding and \
         preprocessing on 1 thread of their own\n",
        threads - 1
    );
    println!("| run | s (all clips) | s / clip | vs model only |");
    println!("|---|---|---|---|");
    let bound = model + median(t_first.clone());
    for (name, t) in [
        ("model only (clips prepared beforehand)", &t_model),
        ("model only, while all clips are prepared beside it", &t_beside),
        ("decode + preprocess only", &t_prep),
        ("embed loop, pipelined (Embedder::embed_each_in)", &t_pipe),
    ] {
        let m = median(t.clone());
        let runs: Vec<String> = t.iter().map(|x| format!("{x:.2}")).collect();
        println!("| {name} | {m:.3} ({}) | {:.3} | {:.2}x |", runs.join(", "), m / n, m / model);
    }
    println!(
        "| expected: model only + preparing the first batch (the part nothing overlaps) | {bound:.3} | {:.3} | {:.2}x |",
        bound / n,
        bound / model
    );
    Ok(())
}

/// CPU seconds this process has used (all threads, user + system).
fn process_cpu_s() -> f64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `t` is a valid timespec to write; CLOCK_PROCESS_CPUTIME_ID exists on every Linux.
    if unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) } != 0 {
        return f64::NAN;
    }
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

/// One implementation's inference speed.
#[derive(Clone, Copy)]
struct Speed {
    clip_s: f64,
    clips_per_s: f64,
    text_s: f64,
}

impl Speed {
    /// Each figure's median over `runs` (non-empty).
    fn median(runs: &[Speed]) -> Speed {
        let m = |f: fn(&Speed) -> f64| median(runs.iter().map(f).collect());
        Speed { clip_s: m(|s| s.clip_s), clips_per_s: m(|s| s.clips_per_s), text_s: m(|s| s.text_s) }
    }
}

/// PyTorch's figures: fp32 and, with `--dtype bf16`, bf16 (and which way of running it was faster).
struct TorchSpeed {
    fp32: Speed,
    bf16: Option<(Speed, String)>,
    version: String,
}

impl TorchSpeed {
    /// Medians over rounds (`None` for none); the bf16 label is the first round's.
    fn median(rounds: &[TorchSpeed]) -> Option<TorchSpeed> {
        let first = rounds.first()?;
        let fp32 = Speed::median(&rounds.iter().map(|r| r.fp32).collect::<Vec<_>>());
        let bf16s: Vec<Speed> = rounds.iter().filter_map(|r| r.bf16.as_ref().map(|b| b.0)).collect();
        let bf16 = first.bf16.as_ref().map(|(_, how)| (Speed::median(&bf16s), how.clone()));
        Some(TorchSpeed { fp32, bf16, version: first.version.clone() })
    }
}

/// Runs a PyTorch timing script (`--pytorch-script`, else `default_script`) with `args` and parses the JSON line
/// it prints last.
fn pytorch_json(py: &str, a: &BenchArgs, default_script: &str, args: &[String]) -> Result<serde_json::Value> {
    let script = a.pytorch_script.clone().unwrap_or_else(|| default_script.into());
    let out = std::process::Command::new(py)
        .arg(&script)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {py} {script}"))?;
    if !out.status.success() {
        bail!("PyTorch benchmark {script} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .context("no JSON line from the PyTorch benchmark")?;
    Ok(serde_json::from_str(line)?)
}

/// Runs the PyTorch inference timing script.
fn run_pytorch(py: &str, a: &BenchArgs, threads: usize) -> Result<TorchSpeed> {
    let bf16 = matches!(a.dtype, crate::commands::Precision::Bf16);
    let mut args: Vec<String> =
        ["--threads", &threads.to_string(), "--batch", &a.batch.to_string(), "--iters", &a.iters.to_string(), "--text"]
            .map(String::from)
            .to_vec();
    if bf16 {
        args.extend(["--dtype".to_string(), "bf16".to_string()]);
    }
    let v = pytorch_json(py, a, "bench/pytorch_emotionclip.py", &args)?;
    let f = |k: &str| v.get(k).and_then(|x| x.as_f64()).with_context(|| format!("PyTorch result lacks {k}"));
    let fp32 =
        Speed { clip_s: f("s_per_clip")?, clips_per_s: f("clips_per_s_batch")?, text_s: f("text_s_per_batch8")? };
    let bf16 = if bf16 {
        let how = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("?").to_string();
        let hows = [how("bf16_s_per_clip_how"), how("bf16_clips_per_s_batch_how"), how("bf16_text_s_per_batch8_how")];
        let label = if hows.iter().all(|h| h == &hows[0]) {
            hows[0].clone()
        } else {
            format!("clip: {}, batch: {}, text: {}", hows[0], hows[1], hows[2])
        };
        eprintln!("PyTorch bf16 variants: {}", v.get("bf16_variants").map(|x| x.to_string()).unwrap_or_default());
        Some((
            Speed {
                clip_s: f("bf16_s_per_clip")?,
                clips_per_s: f("bf16_clips_per_s_batch")?,
                text_s: f("bf16_text_s_per_batch8")?,
            },
            label,
        ))
    } else {
        None
    };
    Ok(TorchSpeed { fp32, bf16, version: v.get("torch").and_then(|x| x.as_str()).unwrap_or("?").to_string() })
}

/// Median seconds of each phase of a training step.
#[derive(Clone, Copy, Debug, Default)]
struct Phases {
    step: f64,
    forward: f64,
    loss: f64,
    backward: f64,
    optimizer: f64,
    /// Process CPU seconds (user + system, all threads) of the step, and the system part.
    cpu: f64,
    sys: f64,
}

/// This process's (user, system) CPU seconds so far (Linux `/proc/self/stat`; zeros elsewhere).
fn cpu_times() -> (f64, f64) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return (0.0, 0.0) };
    // Fields after the parenthesised command name: state is field 3; utime, stime are fields 14, 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = 100.0; // USER_HZ on Linux
    let get = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0) / tick;
    (get(11), get(12))
}

impl Phases {
    fn median(runs: &[Phases]) -> Phases {
        let m = |f: fn(&Phases) -> f64| median(runs.iter().map(f).collect());
        Phases {
            step: m(|p| p.step),
            forward: m(|p| p.forward),
            loss: m(|p| p.loss),
            backward: m(|p| p.backward),
            optimizer: m(|p| p.optimizer),
            cpu: m(|p| p.cpu),
            sys: m(|p| p.sys),
        }
    }
}

/// `emoclip bench --train`: one full-size training step, timed by phase, beside PyTorch.
fn run_train(a: BenchArgs, threads: Option<usize>) -> Result<i32> {
    use emoclip::emotionclip::{EmotionClipConfig, SubjectMode, TemporalFusion};
    use emoclip::nn::l2_normalize;
    use emoclip::train::{param_groups, snce_loss, AdamW, SnceConfig, OFFICIAL};
    let dev = crate::commands::parse_device(&a.device)?;
    let autocast = match a.precision.as_str() {
        "fp32" => None,
        "bf16" => Some(DType::BF16),
        other => bail!("--precision {other:?}: use fp32 or bf16"),
    };
    let mut cfg = match a.config.as_str() {
        "ViT-B-32" | "vit-b-32" | "ViT-B/32" => EmotionClipConfig::default(),
        "tiny" => emoclip::train::trainer::tiny_config(),
        other => bail!("--config {other:?}: use ViT-B-32 or tiny"),
    };
    cfg.subject = SubjectMode::Sap;
    cfg.temporal.fusion = TemporalFusion::Transformer;
    let b = a.train_batch.max(2);
    let (s, t, ctx) = (cfg.backbone.vision_cfg.image_size, cfg.video_len, cfg.backbone.text_cfg.context_length);
    let (model, varmap) = emoclip::train::trainer::build_trainable(
        &cfg,
        Default::default(),
        0,
        &dev,
        std::path::Path::new("<random init>"),
    )?;
    let mut opt = AdamW::new(&varmap, param_groups(&varmap, &OFFICIAL)?)?;
    let n_params: usize = varmap.all_vars().iter().map(|v| v.elem_count()).sum();
    let video = Tensor::randn(0f32, 1.0, (b, t, 3, s, s), &dev)?;
    let mut mask = vec![0f32; b * t * s * s];
    for (i, x) in mask.iter_mut().enumerate() {
        let (y, xx) = ((i / s) % s, i % s);
        *x = f32::from(y > s / 4 && y < 3 * s / 4 && xx > s / 3 && xx < 2 * s / 3);
    }
    let masks = Tensor::from_vec(mask, (b, t, s, s), &dev)?;
    let tok = emoclip::tokenizer::ClipTokenizer::new()?;
    let caps: Vec<String> = (0..b).map(|i| format!("a person who is visibly upset about thing number {i}")).collect();
    let refs: Vec<&str> = caps.iter().map(String::as_str).collect();
    let vocab = cfg.backbone.text_cfg.vocab_size as u32;
    let ids = tok.tokenize_tensor(&refs, ctx, emoclip::tokenizer::Truncation::ForceEot, &dev)?;
    // The tiny config's small vocabulary: fold the BPE ids into it (timing only).
    let ids = if vocab < 49408 {
        Tensor::from_vec(
            ids.flatten_all()?.to_vec1::<u32>()?.into_iter().map(|x| x % vocab).collect::<Vec<_>>(),
            ids.dims(),
            &dev,
        )?
    } else {
        ids
    };
    let emotion = (Tensor::randn(0f32, 1.0, (b, 7), &dev)? * 2.0)?;
    let snce = SnceConfig::default();
    let mut step_no = 0u64;
    // Model FLOPs of one step by the dense rule 6 · parameters · tokens per tower (attention scores left out):
    // the frame encoder sees b·t frames of (S/P)² + 1 tokens, the text tower b captions of `ctx` tokens.
    let count = |prefix: &str| -> usize {
        let data = varmap
            .data()
            .lock()
            .map(|d| d.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, v)| v.elem_count()).sum())
            .unwrap_or(0);
        data
    };
    let grid = s / cfg.backbone.vision_cfg.patch_size;
    let frame_tokens = (b * t * (grid * grid + 1)) as f64;
    let flops = 6.0
        * (count("backbone.visual.") as f64 * frame_tokens
            + count("backbone.transformer.") as f64 * (b * ctx) as f64
            + count("visual_head.") as f64 * (b * (t + 1)) as f64);
    let _autocast = emoclip::nn::autocast::autocast(autocast);
    let mut one_step = || -> Result<Phases> {
        dev.synchronize()?;
        let (u0, s0) = cpu_times();
        let t0 = Instant::now();
        emoclip::nn::seed_dropout(step_no);
        step_no += 1;
        let v = l2_normalize(&model.encode_video_t(&video, Some(&masks), true)?)?;
        let tx = l2_normalize(&model.encode_text(&ids)?)?;
        dev.synchronize()?;
        let t1 = Instant::now();
        let loss = snce_loss(&v, &tx, model.logit_scale(), &emotion, &snce)?;
        let _ = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        let t2 = Instant::now();
        let grads = loss.backward()?;
        dev.synchronize()?;
        let t3 = Instant::now();
        opt.step(&grads)?;
        let clamped = model.logit_scale().clamp(0.0, emoclip::train::trainer::LOGIT_SCALE_MAX)?;
        if let Some(var) = varmap.data().lock().map_err(|_| anyhow::anyhow!("VarMap lock poisoned"))?.get("logit_scale")
        {
            var.set(&clamped)?;
        }
        drop(grads);
        dev.synchronize()?;
        let t4 = Instant::now();
        let (u1, s1) = cpu_times();
        let d = |x: Instant, y: Instant| y.duration_since(x).as_secs_f64();
        Ok(Phases {
            step: d(t0, t4),
            forward: d(t0, t1),
            loss: d(t1, t2),
            backward: d(t2, t3),
            optimizer: d(t3, t4),
            cpu: u1 - u0 + s1 - s0,
            sys: s1 - s0,
        })
    };
    for _ in 0..a.warmup.min(1) {
        one_step()?;
    }
    let runs: Vec<Phases> = (0..a.iters.max(1)).map(|_| one_step()).collect::<Result<_>>()?;
    let ours = Phases::median(&runs);
    let n_threads = threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    eprintln!(
        "emoclip step times (s): {:?}",
        runs.iter().map(|p| (p.step * 1000.0).round() / 1000.0).collect::<Vec<_>>()
    );
    let torch = match &a.pytorch {
        None => None,
        Some(_) if !matches!(a.config.as_str(), "ViT-B-32" | "vit-b-32" | "ViT-B/32") => {
            bail!("--pytorch times the full ViT-B-32 model only; drop --config {}", a.config)
        }
        Some(py) => {
            // bf16: PyTorch's bf16 (autocast) step and, for scale, its fp32 step, both in this run.
            let mut v = vec![run_pytorch_train(py, &a, b, n_threads, &a.precision)?];
            if a.precision != "fp32" {
                v.push(run_pytorch_train(py, &a, b, n_threads, "fp32")?);
            }
            Some(v)
        }
    };
    println!(
        "\nEmotionCLIP {} training step ({:.1} M parameters, SAP, temporal transformer, SNCE β {}, AdamW official groups), {b} clips × {t} frames + {b} captions, {} on {}, {n_threads} CPU thread(s), median of {} steps after {} warm-up\n",
        a.config,
        n_params as f64 / 1e6,
        snce.beta,
        a.precision,
        a.device,
        a.iters.max(1),
        a.warmup.min(1)
    );
    println!("| implementation | s / step | forward | loss | backward | optimiser | CPU s / step (system) | clips/s | model TFLOP/s | MFU |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let row = |name: &str, p: &Phases| {
        let tflops = flops / p.step / 1e12;
        let mfu = a.peak_tflops.map(|peak| format!("{:.1}%", 100.0 * tflops / peak)).unwrap_or_else(|| "—".into());
        println!(
            "| {name} | {:.3} | {:.3} | {:.4} | {:.3} | {:.3} | {:.2} ({:.2}) | {:.2} | {tflops:.3} | {mfu} |",
            p.step,
            p.forward,
            p.loss,
            p.backward,
            p.optimizer,
            p.cpu,
            p.sys,
            b as f64 / p.step
        )
    };
    let kernel = autocast == Some(DType::BF16) && dev.is_cpu() && emoclip::nn::cpu::gemm_bf16::available();
    row(&format!("emoclip (candle) {}{}", a.precision, if kernel { " (AVX-512 BF16 kernel)" } else { "" }), &ours);
    for (p, ver, precision) in torch.iter().flatten() {
        row(&format!("PyTorch {ver} {precision}"), p);
    }
    for (p, _, precision) in torch.iter().flatten() {
        println!(
            "| ratio (PyTorch {precision} time / emoclip time) | {:.2}x | {:.2}x | {:.2}x | {:.2}x | {:.2}x | {:.2}x |",
            p.step / ours.step,
            p.forward / ours.forward,
            p.loss / ours.loss,
            p.backward / ours.backward,
            p.optimizer / ours.optimizer,
            p.cpu / ours.cpu
        );
    }
    println!("\nmodel FLOPs per step (6 · parameters · tokens per tower): {:.2} TFLOP", flops / 1e12);
    Ok(0)
}

/// Runs `bench/pytorch_train_step.py` (or `--pytorch-script`) at `precision`.
fn run_pytorch_train(
    py: &str,
    a: &BenchArgs,
    batch: usize,
    threads: usize,
    precision: &str,
) -> Result<(Phases, String, String)> {
    let args = [
        "--threads",
        &threads.to_string(),
        "--batch",
        &batch.to_string(),
        "--iters",
        &a.iters.max(1).to_string(),
        "--warmup",
        &a.warmup.min(1).to_string(),
        "--device",
        &a.device,
        "--precision",
        precision,
    ]
    .map(String::from);
    let v = pytorch_json(py, a, "bench/pytorch_train_step.py", &args)?;
    let f = |k: &str| v.get(k).and_then(|x| x.as_f64()).with_context(|| format!("PyTorch result lacks {k}"));
    eprintln!("PyTorch {precision} step times (s): {}", v.get("steps_s").map(|x| x.to_string()).unwrap_or_default());
    Ok((
        Phases {
            step: f("step_s")?,
            forward: f("forward_s")?,
            loss: f("loss_s")?,
            backward: f("backward_s")?,
            optimizer: f("optimizer_s")?,
            cpu: f("cpu_s")?,
            sys: f("sys_s")?,
        },
        v.get("torch").and_then(|x| x.as_str()).unwrap_or("?").to_string(),
        precision.to_string(),
    ))
}
