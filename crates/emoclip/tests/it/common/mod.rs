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

/// A very small EmotionCLIP config for fast tests: the library's `train::trainer::tiny_config` (32×32 images,
/// 16-px patches, a 2×2 grid) with the given subject mode.
pub fn micro_config(subject: SubjectMode) -> EmotionClipConfig {
    EmotionClipConfig { subject, ..emoclip::train::trainer::tiny_config() }
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

/// Whether the tests run in CI (`CI` set and not `false`/`0`): there, missing sample media or tools fail the
/// test instead of skipping it.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// `media/NAME` (fetched by `bash scripts/fetch_media.sh`, which scripts/test.sh runs first). When it is missing
/// the test is skipped with a message, except in CI (`CI` set), where it fails.
pub fn sample_media(name: &str) -> Option<PathBuf> {
    let p = repo_root().join("media").join(name);
    if p.is_file() {
        return Some(p);
    }
    let msg = format!("sample media {} is missing: run `bash scripts/fetch_media.sh` first", p.display());
    assert!(!in_ci(), "{msg} (CI is set, so a missing sample fails instead of skipping)");
    eprintln!("skip: {msg}");
    None
}

/// Whether the ffmpeg command-line tool runs (scripts/install_deps.sh installs it). Missing: skip with a message,
/// or fail in CI.
pub fn have_ffmpeg_cli() -> bool {
    let ok = std::process::Command::new("ffmpeg")
        .arg("-version")
        .stdin(std::process::Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let msg = "the ffmpeg command-line tool is not installed (bash scripts/install_deps.sh installs it)";
        assert!(!in_ci(), "{msg} (CI is set, so this fails instead of skipping)");
        eprintln!("skip: {msg}");
    }
    ok
}
