//! Zero-shot ensembling and saved linear heads of `emoclip::analyze` against references (fixtures from
//! `scripts/fixtures/gen_analyze.py`): the official `ZeroShotClassifier` ensembling in torch, and scikit-learn
//! 1.9.1's `predict_proba` / `predict` for LogisticRegression (multinomial and binary), OneVsRestClassifier with a
//! constant label, and Ridge.
//!
//! Tolerances: class embeddings 1e-6 (f32 storage of f64 results), logits 1e-4 (scale ~ 50 × f32 rounding),
//! probabilities 1e-6; head outputs 1e-12 (same f64 arithmetic on the same f32 inputs).
use std::path::Path;

use emoclip::analyze::prompts::{PromptSet, EMOTIC};
use emoclip::analyze::zeroshot::ZeroShot;
use emoclip::encoder::EncoderId;
use emoclip::head::{Head, Prediction};
use serde_json::Value;

use crate::common::fixture;

fn load(rel: &str) -> Value {
    let p = fixture(rel);
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

fn v64(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn v32(v: &Value) -> Vec<f32> {
    v64(v).into_iter().map(|x| x as f32).collect()
}

#[track_caller]
fn close(a: &[f64], b: &[f64], tol: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: length");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol, "{what}[{i}]: {x} vs {y} (tol {tol:e})");
    }
}

#[test]
fn zero_shot_ensembling_matches_the_official_reference() {
    let f = load("analyze/zeroshot.json");
    let labels: Vec<String> = f["labels"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
    let per_class: Vec<Vec<Vec<f32>>> = f["template_embeddings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_array().unwrap().iter().map(v32).collect())
        .collect();
    let scale = f["scale"].as_f64().unwrap() as f32;
    let z = ZeroShot::from_template_embeddings("fixture", &labels, &per_class, scale).unwrap();
    for (k, want) in f["class_embeddings"].as_array().unwrap().iter().enumerate() {
        let got: Vec<f64> = z.classes[k].iter().map(|&x| x as f64).collect();
        close(&got, &v64(want), 1e-6, &format!("class embedding {k}"));
    }
    for (i, v) in f["visual"].as_array().unwrap().iter().enumerate() {
        let v = v32(v);
        close(&z.logits(&v).unwrap(), &v64(&f["logits"][i]), 1e-4, &format!("logits {i}"));
        close(&z.probs(&v).unwrap(), &v64(&f["probs"][i]), 1e-6, &format!("probs {i}"));
    }
}

#[test]
fn zero_shot_build_encodes_every_class_template_pair_once() {
    // a fake text encoder: a one-hot per distinct text, so ensembling is visible in the result
    let prompts = PromptSet::Sentiment.load().unwrap();
    let mut calls = 0;
    let z = ZeroShot::build(&prompts, 10.0, |texts| {
        calls += 1;
        assert_eq!(texts.len(), 3 * prompts.templates.len());
        assert_eq!(texts[1], "a positive person.");
        Ok(texts
            .iter()
            .enumerate()
            .map(|(i, _)| (0..texts.len()).map(|j| if i == j { 2.0 } else { 0.0 }).collect())
            .collect())
    })
    .unwrap();
    assert_eq!(calls, 1);
    let t = prompts.templates.len();
    // class c = mean of its t orthonormal template vectors, renormalised: 1/sqrt(t) on its own coordinates
    let expect = 1.0 / (t as f32).sqrt();
    assert!((z.classes[1][t] - expect).abs() < 1e-6 && z.classes[1][0] == 0.0);
}

#[test]
fn emotic_prompt_set_equals_the_probe_categories() {
    assert_eq!(EMOTIC, emoclip::probe::datasets::emotic::CLASSES);
    let e = PromptSet::Emotic.load().unwrap();
    assert_eq!(e.labels, EMOTIC);
}

#[test]
fn heads_match_scikit_learn() {
    let expected = load("analyze/heads_expected.json");
    let features: Vec<Vec<f32>> = expected["features"].as_array().unwrap().iter().map(v32).collect();
    for name in ["logistic", "binary", "ovr", "ridge"] {
        let path = fixture(&format!("analyze/heads/{name}.head.json"));
        let head = Head::load(&path).unwrap();
        let want = &expected["heads"][name];
        for (i, x) in features.iter().enumerate() {
            let p = head.predict_proba(x).unwrap();
            close(&p, &v64(&want["proba"][i]), 1e-12, &format!("{name} predict_proba row {i}"));
            match head.predict(x).unwrap() {
                Prediction::Class(c) => assert_eq!(c as i64, want["predict"][i].as_i64().unwrap(), "{name} row {i}"),
                Prediction::Labels(l) => {
                    let w: Vec<bool> = v64(&want["predict"][i]).iter().map(|&v| v == 1.0).collect();
                    assert_eq!(l, w, "{name} row {i}");
                }
                Prediction::Values(v) => close(&v, &v64(&want["predict"][i]), 1e-12, &format!("{name} predict {i}")),
            }
        }
        if name == "logistic" {
            let s: f64 = head.predict_proba(&features[0]).unwrap().iter().sum();
            assert!((s - 1.0).abs() < 1e-12);
        }
    }
}

#[test]
fn a_head_from_another_encoder_is_refused() {
    let path = fixture("analyze/heads/logistic.head.json");
    let head = Head::load(&path).unwrap();
    let mine = EncoderId { fingerprint: "sha256:0000".into(), name: "my weights".into(), preprocess: None };
    let e = head.check_encoder(&mine, &path).unwrap_err().to_string();
    assert!(e.contains("logistic.head.json") && e.contains("sha256:0000") && e.contains("my weights"), "{e}");
    assert!(e.contains(&head.encoder.fingerprint), "{e}");
    head.check_encoder(&head.encoder.clone(), Path::new("x")).unwrap();
}
