//! Times full-size EmotionCLIP (ViT-B/32, SAP, random weights) `encode_video` in f32 and in bf16 mode (developer
//! tool; `emoclip bench` is the user-facing benchmark). Prints min and median seconds per clip.
//! `cargo run --release -p emoclip --example bf16_model [-- BATCH ITERS [bf16|f32]]`
use candle_core::{DType, Device, Tensor};
use emoclip::encoder::{load_encoder, Encoder, ModelKind};
use std::time::Instant;

// As the CLI: mimalloc, freed buffers kept (not returned to the kernel and re-faulted).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> emoclip::Result<()> {
    // SAFETY: `mi_option_purge_delay` (15) = -1 (never), set before other threads exist, as the CLI does.
    unsafe { libmimalloc_sys::mi_option_set(15, -1) };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let batch: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(1);
    let iters: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    let modes: Vec<&str> = match args.get(2).map(String::as_str) {
        Some(m) => vec![m],
        None => vec!["f32", "bf16"],
    };
    let dev = Device::Cpu;
    let enc = load_encoder("random:ViT-B-32", None, ModelKind::EmotionClip, DType::F32, &dev)?;
    let Encoder::Emotion(m) = enc else { unreachable!() };
    let s = m.backbone.visual.image_size;
    let video = Tensor::randn(0f32, 1.0, (batch, 8, 3, s, s), &dev)?;
    let masks = Tensor::ones((batch, 8, s, s), DType::F32, &dev)?;
    for mode in modes {
        let _g = emoclip::nn::autocast::autocast((mode == "bf16").then_some(DType::BF16));
        m.encode_video(&video, Some(&masks))?.to_vec2::<f32>()?;
        let mut t: Vec<f64> = (0..iters)
            .map(|_| {
                let st = Instant::now();
                m.encode_video(&video, Some(&masks)).unwrap().to_vec2::<f32>().unwrap();
                st.elapsed().as_secs_f64() / batch as f64
            })
            .collect();
        t.sort_by(|a, b| a.total_cmp(b));
        println!("{mode} batch {batch}: s/clip min {:.4} median {:.4}", t[0], t[t.len() / 2]);
    }
    Ok(())
}
