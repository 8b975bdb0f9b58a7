//! Parity of the CLIP towers and EmotionCLIP with the PyTorch reference (open_clip, transformers and the
//! official EmotionCLIP semantics) on tiny random-weight fixtures from `scripts/fixtures/gen_models.py`,
//! and strict checkpoint loading errors.
use crate::common;
use candle_core::{DType, Device, Tensor};
use common::{fixture, Tol};
use emoclip::clip::OpenClipConfig;
use emoclip::emotionclip::{EmotionClipConfig, SubjectMode, TemporalConfig, TemporalFusion, VisualHead};
use emoclip::weights::{Checkpoint, LoadOptions};
use std::collections::HashMap;

/// Elementwise tolerance of every f32 comparison here: 3× the measured worst element (max |Δ| 2.0e-6 on outputs up
/// to 3.8; worst element: `sap text`, at 19% of `1e-5 + 1e-4·|ref|`).
const TOL: Tol = Tol::new(5.8e-6, 5.8e-5);
/// bf16 / f16 video features vs the f32 reference: 3× the measured worst (max |Δ| 3.7e-2 in bf16, 3.4e-3 in f16).
const BF16_TOL: Tol = Tol::new(7.9e-2, 7.9e-2);
const F16_TOL: Tol = Tol::new(6.3e-3, 6.3e-3);

fn io() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixture("models/io.safetensors"), &Device::Cpu).unwrap()
}

fn tiny_backbone() -> OpenClipConfig {
    OpenClipConfig::from_file(&fixture("models/tiny_open_clip.json")).unwrap()
}

fn tiny_config(subject: SubjectMode) -> EmotionClipConfig {
    EmotionClipConfig {
        backbone: tiny_backbone(),
        video_len: 8,
        temporal: TemporalConfig { fusion: TemporalFusion::Transformer, layers: 2, heads: 4, ff: 64, dropout: 0.1 },
        subject,
    }
}

fn opts(cfg: EmotionClipConfig) -> LoadOptions {
    LoadOptions { config: Some(cfg), ..LoadOptions::default() }
}

fn assert_close(name: &str, got: &Tensor, want: &Tensor) {
    common::assert_close(name, got, want, TOL);
}

#[test]
fn open_clip_state_dicts_match_open_clip() {
    let io = io();
    for file in ["openclip_state.pt", "openclip_state.bin", "openclip_state.safetensors"] {
        let ck = Checkpoint::open(&fixture(&format!("models/{file}"))).unwrap();
        let (clip, report) = ck.load_clip(&opts(tiny_config(SubjectMode::None))).unwrap();
        assert!(report.is_clean());
        assert_close(
            &format!("{file} image"),
            &clip.encode_image(&io["image"]).unwrap(),
            &io["openclip.image_features"],
        );
        assert_close(&format!("{file} text"), &clip.encode_text(&io["text"]).unwrap(), &io["openclip.text_features"]);
        assert_close(&format!("{file} logit_scale"), &clip.logit_scale, &io["openclip.logit_scale"]);
    }
}

#[test]
fn hf_clip_model_matches_transformers() {
    let io = io();
    // Config comes from the directory's config.json (quick_gelu, argmax pooling).
    let ck = Checkpoint::open(&fixture("models/hf_clip")).unwrap();
    let (clip, _) = ck.load_clip(&LoadOptions::default()).unwrap();
    assert!(clip.config.quick_gelu);
    assert_close("hf image", &clip.encode_image(&io["image"]).unwrap(), &io["hf.image_features"]);
    assert_close("hf text", &clip.encode_text(&io["text"]).unwrap(), &io["hf.text_features"]);
}

#[test]
fn emotionclip_sap_checkpoint_matches_official_semantics() {
    let io = io();
    let ck = Checkpoint::open(&fixture("models/emotionclip_sap.pt")).unwrap();
    let (m, report) = ck.load_emotionclip(&opts(tiny_config(SubjectMode::Sap))).unwrap();
    assert!(report.is_clean(), "{}", report.describe());
    let hmn = emoclip::emotionclip::sap::hmn_token(&m.backbone.visual, &io["image_mask"]).unwrap().squeeze(1).unwrap();
    assert_close("sap hmn token", &hmn, &io["sap.hmn_token"]);
    assert_close(
        "sap image",
        &m.encode_image(&io["image"], Some(&io["image_mask"])).unwrap(),
        &io["sap.image_features"],
    );
    let frames = m.encode_frames(&io["video"], Some(&io["video_mask"])).unwrap();
    assert_close("sap frames", &frames, &io["sap.frame_features"]);
    assert_close(
        "sap video",
        &m.encode_video(&io["video"], Some(&io["video_mask"])).unwrap(),
        &io["sap.video_features"],
    );
    assert_close(
        "sap video (mean head)",
        &VisualHead::Mean.forward(&frames, false).unwrap(),
        &io["sap.video_features_mean"],
    );
    assert_close("sap text", &m.encode_text(&io["text"]).unwrap(), &io["sap.text_features"]);
    assert_close("sap logit_scale", m.logit_scale(), &io["sap.logit_scale"]);
}

#[test]
fn emotionclip_saam_matches_reference() {
    let io = io();
    let ck = Checkpoint::open(&fixture("models/emotionclip_saam.safetensors")).unwrap();
    let (m, _) = ck.load_emotionclip(&opts(tiny_config(SubjectMode::Saam))).unwrap();
    assert_close(
        "saam image",
        &m.encode_image(&io["image"], Some(&io["image_mask"])).unwrap(),
        &io["saam.image_features"],
    );
    assert_close(
        "saam video",
        &m.encode_video(&io["video"], Some(&io["video_mask"])).unwrap(),
        &io["saam.video_features"],
    );
}

#[test]
fn saam_subject_mode_is_inferred_from_keys() {
    let ck = Checkpoint::open(&fixture("models/emotionclip_saam.safetensors")).unwrap();
    assert_eq!(ck.resolve_config(None).unwrap().subject, SubjectMode::Saam);
    let ck = Checkpoint::open(&fixture("models/emotionclip_sap.pt")).unwrap();
    let cfg = ck.resolve_config(None).unwrap();
    assert_eq!((cfg.subject, cfg.temporal.layers, cfg.temporal.ff, cfg.video_len), (SubjectMode::Sap, 2, 64, 8));
}

#[test]
fn emotionclip_in_f16_and_bf16_stays_close() {
    let io = io();
    let ck = Checkpoint::open(&fixture("models/emotionclip_sap.pt")).unwrap();
    for dt in [DType::BF16, DType::F16] {
        let o = LoadOptions { dtype: dt, ..opts(tiny_config(SubjectMode::Sap)) };
        let (m, _) = ck.load_emotionclip(&o).unwrap();
        let v = m.encode_video(&io["video"].to_dtype(dt).unwrap(), Some(&io["video_mask"])).unwrap();
        let tol = if dt == DType::BF16 { BF16_TOL } else { F16_TOL };
        common::assert_close(&format!("sap video in {dt:?}"), &v, &io["sap.video_features"], tol);
    }
}

/// Writes a modified copy of the SAP checkpoint as safetensors and returns the error text of loading it.
fn load_error(
    modify: impl FnOnce(&mut HashMap<String, Tensor>),
    cfg: EmotionClipConfig,
) -> (String, std::path::PathBuf, tempfile::TempDir) {
    let ck = Checkpoint::open(&fixture("models/emotionclip_sap.pt")).unwrap();
    let mut t = ck.tensors.clone();
    modify(&mut t);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.safetensors");
    candle_core::safetensors::save(&t, &path).unwrap();
    let err = match Checkpoint::open(&path).and_then(|c| c.load_emotionclip(&opts(cfg)).map(|_| ())) {
        Ok(()) => panic!("loading a broken checkpoint succeeded"),
        Err(e) => e.to_string(),
    };
    (err, path, dir)
}

#[test]
fn strict_loading_lists_every_problem_in_one_error() {
    let (err, path, _dir) = load_error(
        |t| {
            t.remove("backbone.visual.ln_post.bias");
            t.remove("visual_head.fusion_layer.norm.weight");
            t.insert("backbone.visual.proj".into(), Tensor::zeros((64, 31), DType::F32, &Device::Cpu).unwrap());
            t.insert("backbone.something_else".into(), Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap());
        },
        tiny_config(SubjectMode::Sap),
    );
    eprintln!("{err}");
    assert!(err.contains(&path.display().to_string()), "error does not name the file: {err}");
    for needle in [
        "2 missing",
        "backbone.visual.ln_post.bias",
        "visual_head.fusion_layer.norm.weight",
        "1 wrong shape",
        "backbone.visual.proj: checkpoint [64, 31], model expects [64, 32]",
        "1 unexpected",
        "backbone.something_else",
        "fix:",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in: {err}");
    }
}

#[test]
fn wrong_config_is_reported_against_the_file() {
    // A config with a wider text tower than the checkpoint: every text weight is mis-shaped.
    let mut cfg = tiny_config(SubjectMode::Sap);
    cfg.backbone.text_cfg.width = 48;
    cfg.backbone.text_cfg.heads = 4;
    let (err, path, _dir) = load_error(|_| {}, cfg);
    assert!(
        err.contains(&path.display().to_string())
            && err.contains("wrong shape")
            && err.contains("backbone.token_embedding.weight"),
        "{err}"
    );
    // An inconsistent config file is rejected with its own path.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.json");
    std::fs::write(&p, r#"{"embed_dim": 32, "vision_cfg": {"image_size": 60, "patch_size": 16}, "text_cfg": {}}"#)
        .unwrap();
    let err = EmotionClipConfig::from_file(&p).unwrap_err().to_string();
    assert!(err.contains("bad.json") && err.contains("not a multiple of patch_size"), "{err}");
}

#[test]
fn truncated_and_foreign_files_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read(fixture("models/emotionclip_sap.pt")).unwrap();
    let cut = dir.path().join("cut.pt");
    std::fs::write(&cut, &src[..src.len() / 3]).unwrap();
    let err = Checkpoint::open(&cut).err().expect("truncated checkpoint loaded").to_string();
    assert!(err.contains("cut.pt") && err.contains("re-download"), "{err}");

    let st = std::fs::read(fixture("models/openclip_state.safetensors")).unwrap();
    let cut = dir.path().join("cut.safetensors");
    std::fs::write(&cut, &st[..st.len() / 2]).unwrap();
    let err = Checkpoint::open(&cut).err().expect("truncated safetensors loaded").to_string();
    assert!(err.contains("cut.safetensors"), "{err}");

    let junk = dir.path().join("junk.bin");
    std::fs::write(&junk, b"hello, this is not a checkpoint").unwrap();
    let err = Checkpoint::open(&junk).err().unwrap().to_string();
    assert!(err.contains("junk.bin") && err.contains("not a safetensors file"), "{err}");

    let err = Checkpoint::open(&dir.path().join("nope.pt")).err().unwrap().to_string();
    assert!(err.contains("nope.pt") && err.contains("no such file"), "{err}");
}

#[test]
fn training_path_with_composed_ops_matches_too() {
    // Loading into a VarMap makes every weight a Var, so the differentiable (composed) LayerNorm and
    // softmax run instead of the fused inference kernels; both must agree with the reference.
    let io = io();
    let ck = Checkpoint::open(&fixture("models/emotionclip_sap.pt")).unwrap();
    let o = LoadOptions { varmap: Some(candle_nn::VarMap::new()), ..opts(tiny_config(SubjectMode::Sap)) };
    let (m, _) = ck.load_emotionclip(&o).unwrap();
    assert!(m.logit_scale().track_op());
    assert_close(
        "sap video (training path)",
        &m.encode_video(&io["video"], Some(&io["video_mask"])).unwrap(),
        &io["sap.video_features"],
    );
    assert_close("sap text (training path)", &m.encode_text(&io["text"]).unwrap(), &io["sap.text_features"]);
}

#[test]
fn text_rows_encoded_alone_match_the_batch_reference() {
    // Each row alone runs on its own shortest causal prefix (e.g. 7 tokens for row 0).
    let io = io();
    let ck = Checkpoint::open(&fixture("models/openclip_state.safetensors")).unwrap();
    let (clip, _) = ck.load_clip(&opts(tiny_config(SubjectMode::None))).unwrap();
    for r in 0..3 {
        let ids = io["text"].narrow(0, r, 1).unwrap();
        let want = io["openclip.text_features"].narrow(0, r, 1).unwrap();
        assert_close(&format!("text row {r} alone"), &clip.encode_text(&ids).unwrap(), &want);
    }
}
