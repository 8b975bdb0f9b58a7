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

/// `keep_only_bf16` (what an `Embedder` in bf16 does on load): the f32 weights go, the bf16 results stay
/// bit-identical, the clone it was made from keeps working in f32, and f32 use of the slimmed model fails
/// with a message saying why.
#[test]
fn keeping_only_bf16_weights_changes_no_result_and_refuses_f32() {
    if !gemm_bf16::cpu_supported() {
        eprintln!("skipped: this CPU has no AVX-512 BF16 (keep_only_bf16 is only used with the kernel)");
        return;
    }
    let io: HashMap<String, Tensor> =
        candle_core::safetensors::load(fixture("models/io.safetensors"), &Device::Cpu).unwrap();
    for (file, subject) in
        [("emotionclip_sap.pt", SubjectMode::Sap), ("emotionclip_saam.safetensors", SubjectMode::Saam)]
    {
        let ck = Checkpoint::open(&fixture(&format!("models/{file}"))).unwrap();
        let opts = LoadOptions { config: Some(tiny_config(subject)), ..LoadOptions::default() };
        let (full, _) = ck.load_emotionclip(&opts).unwrap();
        let run = |m: &emoclip::emotionclip::EmotionClip| -> Vec<Vec<f32>> {
            let _bf16 = autocast(Some(DType::BF16));
            [
                m.encode_video(&io["video"], Some(&io["video_mask"])).unwrap(),
                m.encode_image(&io["image"], Some(&io["image_mask"])).unwrap(),
                m.encode_text(&io["text"]).unwrap(),
            ]
            .iter()
            .map(|t| t.flatten_all().unwrap().to_vec1::<f32>().unwrap())
            .collect()
        };
        let want = run(&full);
        let f32_before = full.encode_video(&io["video"], Some(&io["video_mask"])).unwrap();
        let mut slim = full.clone();
        slim.keep_only_bf16().unwrap();
        assert_eq!(slim.backbone.visual.conv1_weight.elem_count(), 0, "{file}: the f32 patch weight is still held");
        let blk = &slim.backbone.visual.transformer.resblocks[0];
        for (name, l) in [("attn.in_proj", &blk.attn.in_proj), ("c_fc", &blk.c_fc), ("c_proj", &blk.c_proj)] {
            assert_eq!(l.weight.elem_count(), 0, "{file}: {name} still holds its f32 weight");
        }
        assert_eq!(run(&slim), want, "{file}: results changed after dropping the f32 weights");
        let err = slim.encode_video(&io["video"], Some(&io["video_mask"])).unwrap_err().to_string();
        assert!(err.contains("keeps only its bf16 weights") && err.contains("dtype f32"), "{file}: {err}");
        let err = slim.encode_text(&io["text"]).unwrap_err().to_string();
        assert!(err.contains("keeps only its bf16 weights"), "{file}: {err}");
        // The model it was cloned from still runs in f32, unchanged.
        let f32_after = full.encode_video(&io["video"], Some(&io["video_mask"])).unwrap();
        assert_eq!(f32_after.to_vec2::<f32>().unwrap(), f32_before.to_vec2::<f32>().unwrap(), "{file}");
        // Cross-attention through the fused projection (q/kv views are dropped with it) equals the f32 model's
        // q/kv path in bf16.
        let attn = &full.backbone.visual.transformer.resblocks[0].attn;
        let slim_attn = &slim.backbone.visual.transformer.resblocks[0].attn;
        let d = attn.out_proj.out_dim().unwrap();
        let q = Tensor::randn(0f32, 1.0, (2, 3, d), &Device::Cpu).unwrap();
        let kv = Tensor::randn(0f32, 1.0, (2, 5, d), &Device::Cpu).unwrap();
        let _bf16 = autocast(Some(DType::BF16));
        let a = attn.forward(&q, &kv, None, false).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let b = slim_attn.forward(&q, &kv, None, false).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(a, b, "{file}: cross-attention changed after dropping the f32 weights");
    }
}

/// In bf16 inference the vision tower's last block computes only the CLS token (`Transformer::forward_cls`):
/// bit-identical to running the whole stack and taking row 0, with and without SAAM's per-sample mask, with
/// the f32 weights kept and with only the packed bf16 weights; `ResidualAttentionBlock::forward_first` on
/// several leading tokens equals those rows of the full block.
#[test]
fn bf16_last_block_on_the_cls_token_alone_is_bit_identical() {
    if !gemm_bf16::cpu_supported() {
        eprintln!("skipped: this CPU has no AVX-512 BF16 (the shortcut is only taken on the kernel)");
        return;
    }
    let ck = Checkpoint::open(&fixture("models/emotionclip_saam.safetensors")).unwrap();
    let opts = LoadOptions { config: Some(tiny_config(SubjectMode::Saam)), ..LoadOptions::default() };
    let (full, _) = ck.load_emotionclip(&opts).unwrap();
    let mut slim = full.clone();
    slim.keep_only_bf16().unwrap();
    let tf = &full.backbone.visual.transformer;
    let d = tf.resblocks[0].c_proj.out_dim().unwrap();
    let grid2 = full.backbone.visual.num_patches();
    let (b, l) = (3, grid2 + 2);
    let x = Tensor::randn(0f32, 1.0, (b, l, d), &Device::Cpu).unwrap();
    let cover: Vec<f32> = (0..b * grid2).map(|i| ((i * 7) % 3) as f32 - 1.0).collect();
    let mask = emoclip::emotionclip::saam::attention_mask(&Tensor::from_vec(cover, (b, grid2), &Device::Cpu).unwrap())
        .unwrap();
    let rows = |t: Tensor| -> Vec<f32> { t.flatten_all().unwrap().to_vec1().unwrap() };
    let _bf16 = autocast(Some(DType::BF16));
    for mask in [None, Some(&mask)] {
        let want = rows(tf.forward(&x, mask).unwrap().narrow(1, 0, 1).unwrap());
        assert_eq!(rows(tf.forward_cls(&x, mask).unwrap()), want, "forward_cls (mask: {})", mask.is_some());
        let slim_tf = &slim.backbone.visual.transformer;
        assert_eq!(rows(slim_tf.forward_cls(&x, mask).unwrap()), want, "packed-only forward_cls");
        let last = tf.resblocks.last().unwrap();
        let block = rows(last.forward(&x, mask).unwrap().narrow(1, 0, 4).unwrap());
        assert_eq!(rows(last.forward_first(&x, 4, mask).unwrap()), block, "forward_first of 4 tokens");
    }
}
