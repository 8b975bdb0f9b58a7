//! Linear-probe evaluation end to end against the official `linear_eval.py` and scikit-learn
//! (fixtures/probe_e2e/expected.json from scripts/fixtures/gen_probe_e2e.py): the BoLD and Emotic fixture datasets →
//! features of the official tiny model (fixtures/e2e) → OvR logistic regression with the official C → mAP, per-class
//! AP, ROC-AUC, and BoLD VAD R²; and per-class F1 against `sklearn.metrics.f1_score(average=None)`.
use crate::common;
use candle_core::{DType, Device};
use emoclip::encoder::{load_encoder, preprocessor_for, Embedder, MediaInput, ModelKind};
use emoclip::media;
use emoclip::probe::datasets::{bold, emotic, AdapterOptions, DatasetTask};
use emoclip::probe::eval::{evaluate, f1_per_class, ProbeResult};
use emoclip::probe::manifest::{BoxesSpec, Label, Split};
use emoclip::probe::{LogisticRegression, Mat, OneVsRest};
use serde_json::Value;

/// Features: the frames are JPEGs, decoded by PIL for the reference and by the `image` crate here (see
/// media::jpeg_decoding_close_to_pil); measured max |Δ| on the unit-norm features: 6.0e-4 (Emotic), 2.4e-4 (BoLD).
const FEATURE_ATOL: f64 = 2e-3;
/// Rank metrics (AP, ROC-AUC) ×100 are exactly reproducible when no two scores of a class are closer than the
/// classifiers' difference: 1e-9 leaves only float noise.
const RANK_ATOL: f64 = 1e-9;
/// Probabilities of the OvR logistic regression: scikit-learn stops `sag` at tol 1e-4 while emoclip converges
/// further, on slightly different features: measured max |Δ| 3.7e-4.
const PROBA_ATOL: f64 = 1.2e-3;
/// BoLD VAD R² ×100 (Ridge on the features): measured |Δ| 5.8e-3.
const R2_ATOL: f64 = 0.02;

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(common::fixture("probe_e2e/expected.json")).unwrap()).unwrap()
}

fn official_embedder() -> Embedder {
    let cfg = emoclip::weights::load::read_config(&common::fixture("e2e/official_tiny_config.json")).unwrap();
    let w = common::fixture("e2e/official_tiny.pt");
    let enc = load_encoder(w.to_str().unwrap(), Some(&cfg), ModelKind::EmotionClip, DType::F32, &Device::Cpu).unwrap();
    let pre = preprocessor_for(enc.image_size(), media::IMAGENET);
    Embedder::new(enc, pre, Device::Cpu, DType::F32, 8).unwrap()
}

fn features(emb: &Embedder, task: &DatasetTask) -> Mat {
    let prepared: Vec<_> = task
        .manifest
        .items
        .iter()
        .map(|it| {
            let boxes = it.boxes.as_ref().map(BoxesSpec::load).transpose().unwrap();
            emb.prepare(&MediaInput::new(it.path.clone(), boxes).with_options(it.media.clone())).unwrap()
        })
        .collect();
    let rows: Vec<Vec<f64>> =
        emb.encode(&prepared).unwrap().into_iter().map(|r| r.into_iter().map(f64::from).collect()).collect();
    Mat::from_rows(&rows).unwrap()
}

fn rows_of(task: &DatasetTask, s: Split) -> Vec<usize> {
    task.manifest.items.iter().enumerate().filter(|(_, it)| it.split == s).map(|(i, _)| i).collect()
}

fn split_name(s: Split) -> &'static str {
    match s {
        Split::Train => "train",
        Split::Val => "val",
        Split::Test => "test",
    }
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

/// Our features of every split against the official ones (rows in the CSV order, missing media dropped).
fn check_features(name: &str, task: &DatasetTask, x: &Mat, want: &Value) -> f64 {
    let mut worst = 0f64;
    for s in [Split::Train, Split::Val, Split::Test] {
        let rows = rows_of(task, s);
        let Some(w) = want.get(split_name(s)) else {
            assert!(rows.is_empty());
            continue;
        };
        let w = w.as_array().unwrap();
        assert_eq!(rows.len(), w.len(), "{name} {}: item count", split_name(s));
        for (r, wr) in rows.iter().zip(w) {
            let d = max_abs_diff(x.row(*r), &floats(wr));
            assert!(d <= FEATURE_ATOL, "{name} {} row {r}: features |Δ| {d:e}", split_name(s));
            worst = worst.max(d);
        }
    }
    eprintln!("{name}: features vs official max |Δ| {worst:.2e}");
    worst
}

/// 0/1 label matrix of the multi-label items `idx`.
fn labels(task: &DatasetTask, idx: &[usize]) -> Mat {
    let k = task.manifest.classes.len();
    let rows: Vec<Vec<f64>> = idx
        .iter()
        .map(|&i| match &task.manifest.items[i].label {
            Label::Classes(c) => (0..k).map(|j| f64::from(u8::from(c.contains(&j)))).collect(),
            other => panic!("not multi-label: {other:?}"),
        })
        .collect();
    Mat::from_rows(&rows).unwrap()
}

/// Metrics of one split of a multi-label task against the official / scikit-learn numbers.
fn check_multilabel(name: &str, task: &DatasetTask, x: &Mat, r: &ProbeResult, split: Split, want: &Value) {
    let s = split_name(split);
    // labels as the official dataset class produced them
    let idx = rows_of(task, split);
    let y = labels(task, &idx);
    let wl: Vec<f64> = want["labels"].as_array().unwrap().iter().flat_map(floats).collect();
    assert_eq!(y.data, wl, "{name} {s}: labels");
    // the classifier itself: probabilities
    let tr = rows_of(task, Split::Train);
    let model = OneVsRest::new(LogisticRegression::new(r.c.unwrap()))
        .fit(&x.select_rows(&tr).unwrap(), &labels(task, &tr))
        .unwrap();
    let p = model.predict_proba(&x.select_rows(&idx).unwrap()).unwrap();
    let wp: Vec<f64> = want["proba"].as_array().unwrap().iter().flat_map(floats).collect();
    let dp = max_abs_diff(&p.data, &wp);
    eprintln!("{name} {s}: OvR probabilities vs scikit-learn max |Δ| {dp:.2e}");
    assert!(dp <= PROBA_ATOL, "{name} {s}: probabilities |Δ| {dp:e}");
    // rank metrics
    for (metric, key) in [("mAP (macro)", "mAP (macro)"), ("ROC-AUC (defined classes)", "ROC-AUC (defined classes)")] {
        let (g, w) = (r.get(metric, s).unwrap(), want[key].as_f64().unwrap());
        eprintln!("{name} {s}: {metric} {g:.6} (official / scikit-learn {w:.6})");
        assert!((g - w).abs() <= RANK_ATOL, "{name} {s}: {metric} {g} vs {w}");
    }
    for metric in ["AP", "ROC-AUC"] {
        let got = &r.per_class.iter().find(|p| p.metric == metric && p.split == s).unwrap().values;
        let w = want[metric].as_array().unwrap();
        assert_eq!(got.len(), w.len());
        for (k, (g, w)) in got.iter().zip(w).enumerate() {
            match (g, w.as_f64()) {
                (Some(g), Some(w)) => assert!((g - w).abs() <= RANK_ATOL, "{name} {s}: {metric} class {k}: {g} vs {w}"),
                (None, None) => {}
                (g, w) => panic!("{name} {s}: {metric} class {k}: {g:?} vs scikit-learn {w:?}"),
            }
        }
    }
}

#[test]
fn bold_probe_matches_official_linear_eval() {
    let e = expected();
    let want = &e["bold"];
    let tasks = bold::load(&common::fixture("probe_datasets/bold"), &AdapterOptions::default()).unwrap();
    let (cat, vad) = (&tasks[0], &tasks[1]);
    let x = features(&official_embedder(), cat);
    check_features("BoLD", cat, &x, &want["features"]);
    let r = evaluate(&cat.manifest, &x, &cat.options).unwrap();
    assert_eq!(r.c, Some(3.16));
    check_multilabel("BoLD", cat, &x, &r, Split::Val, &want["val"]);
    let rv = evaluate(&vad.manifest, &x, &vad.options).unwrap();
    let (g, w) =
        (rv.get("R2 (uniform average)", "val").unwrap() * 100.0, want["val"]["R2 (uniform average)"].as_f64().unwrap());
    eprintln!("BoLD val: VAD R² ×100 {g:.6} (official {w:.6}, |Δ| {:.2e})", (g - w).abs());
    assert!((g - w).abs() <= R2_ATOL, "BoLD VAD R²");
}

#[test]
fn emotic_probe_matches_official_linear_eval() {
    let e = expected();
    let want = &e["emotic"];
    let tasks = emotic::load(&common::fixture("probe_datasets/emotic"), &AdapterOptions::default()).unwrap();
    let t = &tasks[0];
    let x = features(&official_embedder(), t);
    check_features("Emotic", t, &x, &want["features"]);
    let r = evaluate(&t.manifest, &x, &t.options).unwrap();
    assert_eq!(r.c, Some(2.5));
    check_multilabel("Emotic", t, &x, &r, Split::Val, &want["val"]);
    check_multilabel("Emotic", t, &x, &r, Split::Test, &want["test"]);
}

/// `f1_per_class` against `f1_score(average=None, labels=range(k), zero_division=0)`: equal where the class has true
/// samples; a class without any is `None` here (scikit-learn reports 0 with a warning).
#[test]
fn per_class_f1_matches_scikit_learn() {
    let e = expected();
    let mut worst = 0f64;
    for (i, c) in e["f1_per_class"].as_array().unwrap().iter().enumerate() {
        let k = c["k"].as_u64().unwrap() as usize;
        let ints = |v: &Value| v.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect::<Vec<i64>>();
        let (yt, yp) = (ints(&c["y_true"]), ints(&c["y_pred"]));
        let got = f1_per_class(&yt, &yp, k);
        let (want, support) = (floats(&c["f1"]), ints(&c["support"]));
        assert_eq!(got.len(), k);
        for j in 0..k {
            match got[j] {
                Some(g) => {
                    let d = (g * 100.0 - want[j]).abs();
                    worst = worst.max(d);
                    assert!(support[j] > 0 && d <= 1e-12, "case {i} class {j}: {} vs {}", g * 100.0, want[j]);
                }
                None => assert_eq!((support[j], want[j]), (0, 0.0), "case {i} class {j}"),
            }
        }
        let fw = emoclip::probe::f1_weighted(&yt, &yp).unwrap() * 100.0;
        assert!((fw - c["f1_weighted"].as_f64().unwrap()).abs() <= 1e-12, "case {i}: weighted F1 {fw}");
    }
    assert!(e["f1_per_class"].as_array().unwrap().iter().any(|c| c["support"].as_array().unwrap().contains(&0.into())));
    eprintln!("per-class F1 vs scikit-learn: max |Δ| {worst:.1e}");
}
