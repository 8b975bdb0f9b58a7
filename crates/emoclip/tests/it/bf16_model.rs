//! EmotionCLIP in bf16 mode (`nn::autocast` bf16 on the CPU kernel: f32 weights, bf16 matrix products) against
//! the same model in f32: `encode_video`, `encode_image` and `encode_text` on the committed parity fixtures
//! (SAP and SAAM) and on the full-size ViT-B/32 with random weights. Cosine similarity per row ≥ 0.999.
use crate::common::fixture;
use candle_core::{DType, Device, Tensor};
use emoclip::emotionclip::{EmotionClipConfig, SubjectMode, TemporalConfig, TemporalFusion};
use emoclip::nn::autocast::autocast;
use emoclip::nn::cpu::gemm_bf16;
use emoclip::weights::{Checkpoint, LoadOptions};
use std::collections::HashMap;

const MIN_COSINE: f32 = 0.999;

/// Smallest cosine similarity between corresponding rows of `a` and `b` (`[N, E]`), and max |a − b|.
fn min_cosine(a: &Tensor, b: &Tensor) -> (f32, f32) {
    let a: Vec<Vec<f32>> = a.to_dtype(DType::F32).unwrap().to_vec2().unwrap();
    let b: Vec<Vec<f32>> = b.to_dtype(DType::F32).unwrap().to_vec2().unwrap();
    assert_eq!(a.len(), b.len());
    let mut worst = 1f32;
    let mut diff = 0f32;
    for (x, y) in a.iter().zip(&b) {
        let dot: f64 = x.iter().zip(y).map(|(&p, &q)| p as f64 * q as f64).sum();
        let nx: f64 = x.iter().map(|&p| (p as f64).powi(2)).sum::<f64>().sqrt();
        let ny: f64 = y.iter().map(|&p| (p as f64).powi(2)).sum::<f64>().sqrt();
        worst = worst.min((dot / (nx * ny).max(1e-30)) as f32);
        diff = x.iter().zip(y).fold(diff, |d, (p, q)| d.max((p - q).abs()));
    }
    (worst, diff)
}

/// Runs `f` in f32 and in bf16 mode and checks the rows agree; returns the minimum cosine.
fn compare(name: &str, f: impl Fn() -> Tensor) -> f32 {
    let want = f();
    let got = {
        let _bf16 = autocast(Some(DType::BF16));
        f()
    };
    let (cos, diff) = min_cosine(&got, &want);
    eprintln!("{name}: bf16 vs f32 min cosine {cos:.6}, max |diff| {diff:.3e}");
    assert!(cos >= MIN_COSINE, "{name}: bf16 vs f32 cosine {cos} < {MIN_COSINE}");
    if gemm_bf16::cpu_supported() {
        assert!(diff > 0.0, "{name}: bf16 mode changed nothing (the kernel did not run)");
    }
    cos
}

fn tiny_config(subject: SubjectMode) -> EmotionClipConfig {
    EmotionClipConfig {
        backbone: emoclip::clip::OpenClipConfig::from_file(&fixture("models/tiny_open_clip.json")).unwrap(),
        video_len: 8,
        temporal: TemporalConfig { fusion: TemporalFusion::Transformer, layers: 2, heads: 4, ff: 64, dropout: 0.1 },
        subject,
    }
}

#[test]
fn bf16_mode_matches_f32_on_the_parity_fixtures() {
    let io: HashMap<String, Tensor> =
        candle_core::safetensors::load(fixture("models/io.safetensors"), &Device::Cpu).unwrap();
    let mut worst = 1f32;
    for (file, subject) in
        [("emotionclip_sap.pt", SubjectMode::Sap), ("emotionclip_saam.safetensors", SubjectMode::Saam)]
    {
        let ck = Checkpoint::open(&fixture(&format!("models/{file}"))).unwrap();
        let opts = LoadOptions { config: Some(tiny_config(subject)), ..LoadOptions::default() };
        let (m, _) = ck.load_emotionclip(&opts).unwrap();
        worst = worst.min(compare(&format!("{file} encode_video"), || {
            m.encode_video(&io["video"], Some(&io["video_mask"])).unwrap()
        }));
        worst = worst.min(compare(&format!("{file} encode_image"), || {
            m.encode_image(&io["image"], Some(&io["image_mask"])).unwrap()
        }));
        worst = worst.min(compare(&format!("{file} encode_text"), || m.encode_text(&io["text"]).unwrap()));
    }
    eprintln!("parity fixtures: minimum cosine {worst:.6}");
}

#[test]
fn bf16_mode_matches_f32_on_full_size_vit_b_32() {
    use emoclip::encoder::{load_encoder, Encoder, ModelKind};
    let dev = Device::Cpu;
    let enc = load_encoder("random:ViT-B-32", None, ModelKind::EmotionClip, DType::F32, &dev).unwrap();
    let Encoder::Emotion(m) = enc else { panic!("expected EmotionCLIP") };
    assert_eq!(m.config.subject, SubjectMode::Sap);
    let s = m.backbone.visual.image_size;
    // Two clips of 8 frames: smooth images (a real frame's spatial correlation) plus noise; a subject box.
    let (b, t) = (2, m.config.video_len);
    let mut px = Vec::with_capacity(b * t * 3 * s * s);
    let mut mask = vec![0f32; b * t * s * s];
    for clip in 0..b {
        for f in 0..t {
            for c in 0..3 {
                for y in 0..s {
                    for x in 0..s {
                        let v = ((x as f32 * 0.05 + c as f32 + f as f32 * 0.3).sin()
                            + (y as f32 * 0.07 - clip as f32).cos())
                            * 0.8
                            + (((x * 7919 + y * 104729 + c * 31 + f * 131 + clip * 17) % 1000) as f32 / 1000.0 - 0.5)
                                * 0.4;
                        px.push(v);
                    }
                }
            }
            for y in s / 4 + 3 * f..3 * s / 4 {
                for x in s / 3..2 * s / 3 + 2 * clip {
                    mask[((clip * t + f) * s + y) * s + x] = 1.0;
                }
            }
        }
    }
    let video = Tensor::from_vec(px, (b, t, 3, s, s), &dev).unwrap();
    let masks = Tensor::from_vec(mask, (b, t, s, s), &dev).unwrap();
    let frames = video.narrow(1, 0, 2).unwrap().reshape((4, 3, s, s)).unwrap();
    let fmasks = masks.narrow(1, 0, 2).unwrap().reshape((4, s, s)).unwrap();
    let tok = emoclip::tokenizer::ClipTokenizer::new().unwrap();
    let prompts = ["a photo of a happy person", "someone who is furious about the delay", "sad", "a calm face"];
    let ids = tok.tokenize_tensor(&prompts, 77, emoclip::tokenizer::Truncation::ForceEot, &dev).unwrap();
    let mut worst = compare("ViT-B/32 encode_video", || m.encode_video(&video, Some(&masks)).unwrap());
    worst = worst.min(compare("ViT-B/32 encode_image", || m.encode_image(&frames, Some(&fmasks)).unwrap()));
    worst = worst.min(compare("ViT-B/32 encode_text", || m.encode_text(&ids).unwrap()));
    eprintln!("full-size ViT-B/32 (random weights): minimum cosine {worst:.6}");
}
