//! `emoclip prepare`'s numbers (fixtures/prepare_numbers/ from scripts/fixtures/gen_prepare_numbers.py) on the committed
//! real clip with the neutral filter on: stored emotion logits and neutral scores against transformers (as the
//! official get_sentiment_logits.py / get_neutral_scores.py compute them), which captions the filter keeps, and the
//! person boxes stored per 8-fps frame from `--boxes-dir` (the source frame the ffmpeg CLI's fps=8 filter picks) and
//! from an ONNX detector whose boxes depend on its letterboxed input (ultralytics LetterBox + NMS + scale_boxes).
use emoclip::shards::read_shard;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Logits / neutral probability (f32 against transformers' f32, padded to 77 tokens there): measured max |Δ| 9.5e-9 /
/// 1.4e-8; the neutral threshold sits 1.8e-6 from the nearest score.
const LOGIT_ATOL: f64 = 3e-8;
const NEUTRAL_ATOL: f64 = 5e-8;
/// Detector boxes in frame pixels: emoclip's letterbox resamples with its own bilinear filter (not OpenCV's), which
/// moves the block means the toy detector reads: measured max |Δ| 0.28 px.
const BOX_ATOL: f64 = 0.85;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fx(rel: &str) -> PathBuf {
    repo().join("fixtures").join(rel)
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fx("prepare_numbers/expected.json")).unwrap()).unwrap()
}

fn prepare(out: &Path, extra: &[&str]) {
    let e = expected();
    let lib = repo().join("third_party/onnxruntime/libonnxruntime.so");
    assert!(lib.is_file(), "{} missing: run scripts/install_deps.sh (the test command does)", lib.display());
    let o = Command::new(env!("CARGO_BIN_EXE_emoclip"))
        .arg("prepare")
        .arg(fx("media/clip_vtest40.mp4"))
        .arg("--captions-dir")
        .arg(fx("prepare_numbers/captions"))
        .arg("--emotion-model")
        .arg(fx("text_emotion"))
        .arg("--out")
        .arg(out)
        .args(["--neutral-max", &e["neutral_max"].as_f64().unwrap().to_string()])
        .args(extra)
        .env("ORT_DYLIB_PATH", &lib)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "prepare {extra:?}:\n{}", String::from_utf8_lossy(&o.stderr));
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

/// Per-caption checks of the index; returns the texts kept.
fn check_index(out: &Path) -> Vec<String> {
    let e = expected();
    let index = std::fs::read_to_string(out.join("index/clip_vtest40.jsonl")).unwrap();
    let cands: Vec<Value> = index.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let caps = e["captions"].as_array().unwrap();
    assert_eq!(cands.len(), caps.len(), "one candidate per caption");
    let (mut dl, mut dn) = (0f64, 0f64);
    let mut kept = Vec::new();
    for want in caps {
        let text = want["text"].as_str().unwrap();
        let c = cands.iter().find(|c| c["text"] == text).unwrap_or_else(|| panic!("no candidate {text:?}: {index}"));
        for (g, w) in floats(&c["emotion_logits"]).iter().zip(floats(&want["logits"])) {
            dl = dl.max((g - w).abs());
            assert!((g - w).abs() <= LOGIT_ATOL, "{text}: logit {g} vs transformers {w}");
        }
        let (g, w) = (c["neutral"].as_f64().unwrap(), want["neutral"].as_f64().unwrap());
        dn = dn.max((g - w).abs());
        assert!((g - w).abs() <= NEUTRAL_ATOL, "{text}: neutral {g} vs transformers pipeline {w}");
        assert_eq!(c["kept"], want["kept"], "{text}: kept (neutral {g}, threshold {})", e["neutral_max"]);
        if want["kept"] == true {
            kept.push(text.to_string());
        }
    }
    let n_kept = kept.len();
    assert!(n_kept >= 2 && caps.len() - n_kept >= 2, "the filter must keep some and drop some: {n_kept} kept");
    eprintln!("prepare: logits max |Δ| {dl:.1e}, neutral max |Δ| {dn:.1e}; {n_kept} of {} kept", caps.len());
    kept
}

/// (stored frame k, boxes `[x1, y1, x2, y2, conf]`) of every frame of every stored sample; checks the sample texts.
fn stored_boxes(out: &Path, kept: &[String]) -> Vec<(usize, Vec<Vec<f64>>)> {
    let samples = read_shard(&out.join("shards/clip_vtest40.tar")).unwrap();
    assert_eq!(samples.len(), kept.len());
    let mut frames = Vec::new();
    for s in &samples {
        let meta: Value = serde_json::from_slice(&s.files.iter().find(|f| f.0 == "json").unwrap().1).unwrap();
        assert!(kept.iter().any(|t| meta["text"] == t.as_str()), "{} was not to be kept", meta["text"]);
        let fps = meta["fps"].as_f64().unwrap();
        for (t, b) in meta["frame_times"].as_array().unwrap().iter().zip(meta["boxes"].as_array().unwrap()) {
            let k = (t.as_f64().unwrap() * fps).round() as usize;
            frames.push((k, b.as_array().unwrap().iter().map(floats).collect()));
        }
    }
    assert!(!frames.is_empty());
    frames
}

#[test]
fn prepare_scores_filters_and_boxes_from_a_box_directory() {
    let e = expected();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    prepare(&out, &["--boxes-dir", fx("prepare_numbers/boxes").to_str().unwrap()]);
    let kept = check_index(&out);
    let frames = stored_boxes(&out, &kept);
    for (k, got) in &frames {
        let want = &e["frames"][*k];
        let w: Vec<Vec<f64>> = want["dir_boxes"].as_array().unwrap().iter().map(floats).collect();
        assert_eq!(got, &w, "stored frame {k}: boxes of source frame {} (the ffmpeg CLI's fps=8 pick)", want["source"]);
    }
    eprintln!("prepare --boxes-dir: {} stored frames carry their source frame's boxes", frames.len());
}

#[test]
fn prepare_boxes_from_an_input_dependent_detector() {
    let e = expected();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    prepare(&out, &["--yolo", fx("prepare_numbers/detector.onnx").to_str().unwrap()]);
    let kept = check_index(&out);
    let frames = stored_boxes(&out, &kept);
    let mut worst = 0f64;
    let mut distinct = std::collections::BTreeSet::new();
    for (k, got) in &frames {
        let want: Vec<Vec<f64>> = e["frames"][*k]["detector_boxes"].as_array().unwrap().iter().map(floats).collect();
        assert_eq!(got.len(), want.len(), "frame {k}: {got:?} vs {want:?}");
        for (g, w) in got.iter().zip(&want) {
            for i in 0..4 {
                worst = worst.max((g[i] - w[i]).abs());
                assert!((g[i] - w[i]).abs() <= BOX_ATOL, "frame {k}: box {g:?} vs reference {w:?}");
            }
            assert!((g[4] - w[4]).abs() <= 1e-6, "frame {k}: confidence {} vs {}", g[4], w[4]);
        }
        distinct.insert(format!("{:.2}", got[0][0]));
    }
    assert!(distinct.len() > 3, "the detector's boxes must follow the frames: {distinct:?}");
    eprintln!(
        "prepare --yolo: {} frames, box corners max |Δ| {worst:.3} px vs ultralytics + onnxruntime",
        frames.len()
    );
}
