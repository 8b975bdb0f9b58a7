//! Shared helpers for the integration tests.
#![allow(dead_code)]
use candle_core::{Device, Tensor};
use emoclip::emotionclip::{EmotionClipConfig, SubjectMode};
use std::path::PathBuf;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn fixture(rel: &str) -> PathBuf {
    repo_root().join("fixtures").join(rel)
}

/// A very small EmotionCLIP config for fast tests: the library's `EmotionClipConfig::tiny` (32×32 images,
/// 16-px patches, a 2×2 grid) with the given subject mode.
pub fn micro_config(subject: SubjectMode) -> EmotionClipConfig {
    EmotionClipConfig { subject, ..EmotionClipConfig::tiny() }
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
