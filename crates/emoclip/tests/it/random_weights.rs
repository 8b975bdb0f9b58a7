//! `--weights random[:CONFIG][@SEED]` (embed.rs `load_encoder`): seeded, so a smoke test reproduces (issue 11 §2.11).
use crate::common;
use candle_core::{DType, Device, Tensor};
use emoclip::emotionclip::SubjectMode;
use emoclip::encoder::{load_encoder, Encoder, ModelKind, RandomSpec};

/// Video and text embeddings of fixed inputs through the encoder built from `spec` (micro config).
fn embeddings(spec: &str) -> Vec<f32> {
    let cfg = common::micro_config(SubjectMode::Sap);
    let enc = load_encoder(spec, Some(&cfg), ModelKind::EmotionClip, DType::F32, &Device::Cpu).unwrap();
    let Encoder::Emotion(m) = enc else { panic!("EmotionCLIP expected") };
    let (t, s) = (cfg.video_len, cfg.backbone.vision_cfg.image_size);
    let n = t * 3 * s * s;
    let video = Tensor::from_vec(
        (0..n).map(|i| ((i % 97) as f32 / 48.0) - 1.0).collect::<Vec<_>>(),
        (1, t, 3, s, s),
        &Device::Cpu,
    )
    .unwrap();
    let masks = Tensor::ones((1, t, s, s), DType::F32, &Device::Cpu).unwrap();
    let ctx = cfg.backbone.text_cfg.context_length;
    let vocab = cfg.backbone.text_cfg.vocab_size as u32;
    let ids =
        Tensor::from_vec((0..ctx as u32).map(|i| (i * 5 + 1) % vocab).collect::<Vec<_>>(), (1, ctx), &Device::Cpu)
            .unwrap();
    let v = m.encode_video(&video, Some(&masks)).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let w = m.encode_text(&ids).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    v.into_iter().chain(w).collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn random_weights_are_seeded() {
    let a = embeddings("random");
    assert!(a.iter().all(|x| x.is_finite()) && a.iter().any(|&x| x != 0.0));
    assert_eq!(bits(&a), bits(&embeddings("random")), "two loads of `random` differ");
    assert_eq!(bits(&a), bits(&embeddings("random@0")), "the default seed is 0");
    assert_eq!(bits(&a), bits(&embeddings("random:ViT-B-32@0")), "with --config the name is not used");
    let b = embeddings("random@1");
    assert_eq!(a.len(), b.len());
    assert!(a.iter().zip(&b).filter(|(x, y)| x != y).count() > a.len() / 2, "seed 1 gives other weights");
}

#[test]
fn random_specs_parse() {
    let p = |s: &str| RandomSpec::parse(s).unwrap().map(|r| (r.config, r.seed));
    assert_eq!(p("random"), Some(("ViT-B-32".into(), 0)));
    assert_eq!(p("random@7"), Some(("ViT-B-32".into(), 7)));
    assert_eq!(p("random:ViT-B-16"), Some(("ViT-B-16".into(), 0)));
    assert_eq!(p("random:ViT-L-14@3"), Some(("ViT-L-14".into(), 3)));
    // Files whose names start with "random" are files.
    assert_eq!(p("random_init.safetensors"), None);
    assert_eq!(p("weights/random"), None);
    for bad in ["random@x", "random@-1", "random:@2"] {
        let err = RandomSpec::parse(bad).unwrap_err().to_string();
        assert!(err.contains(bad) && err.contains("random[:CONFIG][@SEED]"), "{err}");
    }
    let err =
        load_encoder("random:ViT-X@1", None, ModelKind::Clip, DType::F32, &Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("ViT-X") && err.contains("ViT-B-32"), "{err}");
}
