//! Shared helpers for the integration tests.
#![allow(dead_code)]
use candle_core::{Device, Tensor};
use emoclip::clip::{OpenClipConfig, TextConfig, VisionConfig};
use emoclip::emotionclip::{EmotionClipConfig, SubjectMode, TemporalConfig, TemporalFusion};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn fixture(rel: &str) -> PathBuf {
    repo_root().join("fixtures").join(rel)
}

/// A very small EmotionCLIP config for fast tests: 32×32 images, 16-px patches (a 2×2 grid).
pub fn micro_config(subject: SubjectMode) -> EmotionClipConfig {
    let backbone = OpenClipConfig {
        embed_dim: 16,
        quick_gelu: false,
        vision_cfg: VisionConfig { image_size: 32, layers: 2, width: 32, head_width: 16, mlp_ratio: 2.0, patch_size: 16, extra: BTreeMap::new() },
        text_cfg: TextConfig { context_length: 12, vocab_size: 64, width: 32, heads: 2, layers: 2, mlp_ratio: 2.0, extra: BTreeMap::new() },
        layer_norm_eps: 1e-5,
        eos_token_id: None,
        extra: BTreeMap::new(),
    };
    EmotionClipConfig {
        backbone,
        video_len: 8,
        temporal: TemporalConfig { fusion: TemporalFusion::Transformer, layers: 2, heads: 2, ff: 32, dropout: 0.1 },
        subject,
    }
}

/// Max relative error `max|a-b| / max|b|`.
pub fn rel_err(a: &Tensor, b: &Tensor) -> f32 {
    let a = a.to_dtype(candle_core::DType::F32).unwrap().flatten_all().unwrap();
    let b = b.to_dtype(candle_core::DType::F32).unwrap().flatten_all().unwrap();
    assert_eq!(a.dims(), b.dims(), "shape mismatch");
    let d = (&a - &b).unwrap().abs().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
    let m = b.abs().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
    d / m.max(1e-12)
}

pub fn device() -> Device {
    Device::Cpu
}
