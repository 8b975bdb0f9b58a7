//! `emoclip probe --dataset bold|emotic` with the official tiny model (fixtures/e2e): the exact exit code (1: each
//! fixture has one row whose media is missing on purpose, listed and skipped) and the reported numbers against the
//! official `linear_eval.py` + scikit-learn (fixtures/probe_e2e/expected.json, scripts/fixtures/gen_probe_e2e.py).
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn probe(dataset: &str, out: &Path) -> std::process::Output {
    probe_with(dataset, out, &[])
}

fn probe_with(dataset: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_emoclip"))
        .args(["probe", "--dataset", dataset, "--root"])
        .arg(repo().join("fixtures/probe_datasets").join(dataset))
        .arg("--weights")
        .arg(repo().join("fixtures/e2e/official_tiny.pt"))
        .arg("--config")
        .arg(repo().join("fixtures/e2e/official_tiny_config.json"))
        .arg("--out")
        .arg(out)
        .args(extra)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

/// (metric in probe.json, key in expected.json, scale to the official units, absolute tolerance): rank metrics are
/// reproduced to float noise; R² follows the features (JPEG decoding differs slightly from PIL's).
const METRICS: [(&str, &str, f64, f64); 3] = [
    ("mAP (macro)", "mAP (macro)", 1.0, 1e-9),
    ("ROC-AUC (defined classes)", "ROC-AUC (defined classes)", 1.0, 1e-9),
    ("R2 (uniform average)", "R2 (uniform average)", 100.0, 0.02),
];

#[test]
fn probe_bold_and_emotic_exit_1_and_report_the_official_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    let want = json(&repo().join("fixtures/probe_e2e/expected.json"));
    for (dataset, tasks, splits, n_compared) in [
        ("bold", vec!["bold/categories", "bold/vad"], vec!["val"], 3),
        ("emotic", vec!["emotic/categories"], vec!["val", "test"], 4),
    ] {
        let mut compared = 0;
        let out = tmp.path().join(dataset);
        let o = probe(dataset, &out);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{dataset}: exit code (one item skipped); stderr:\n{err}");
        assert!(err.contains("1 item(s) skipped"), "{dataset}: {err}");
        for task in tasks {
            let j = json(&out.join(task).join("probe.json"));
            for split in &splits {
                for (metric, key, scale, tol) in METRICS {
                    let Some(w) = want[dataset][split][key].as_f64() else { continue };
                    let Some(g) = j["metrics"][metric][split].as_f64() else { continue };
                    let g = g * scale;
                    eprintln!("{task} {split}: {metric} {g:.6} (official {w:.6}, |Δ| {:.1e})", (g - w).abs());
                    assert!((g - w).abs() <= tol, "{task} {split}: {metric} {g} vs official {w}");
                    compared += 1;
                }
            }
        }
        assert_eq!(compared, n_compared, "{dataset}: numbers compared");
    }
}

/// The official validation features of `dataset` (rows as in expected.json).
fn official_features(want: &serde_json::Value, dataset: &str, split: &str) -> Vec<Vec<f32>> {
    want[dataset]["features"][split]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect())
        .collect()
}

/// Largest |head(official features) − official prediction| over the rows of `split`.
fn head_vs_official(head: &emoclip::head::Head, feats: &[Vec<f32>], want: &serde_json::Value) -> f64 {
    let rows = want.as_array().unwrap();
    assert_eq!(rows.len(), feats.len());
    let mut worst = 0f64;
    for (x, w) in feats.iter().zip(rows) {
        let p = head.predict_proba(x).unwrap();
        let w: Vec<f64> = w.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        assert_eq!(p.len(), w.len(), "{}: outputs", head.name);
        worst = p.iter().zip(&w).map(|(a, b)| (a - b).abs()).fold(worst, f64::max);
    }
    worst
}

/// `probe --save-head` writes the fitted classifiers and regressor: applied to the official features they give the
/// official `linear_eval.py` classifier's `predict_proba` (OvR logistic) and the Ridge VAD predictions (scikit-learn
/// stops `sag` at tol 1e-4 and our features differ from PIL-decoded ones by ≤ 6e-4, so the heads differ slightly);
/// they carry the encoder's fingerprint and the official C, a rerun refuses to overwrite them before embedding, and
/// `analyze --head` applies them with the same weights.
#[test]
fn saved_heads_reproduce_the_official_classifiers_and_analyze_applies_them() {
    // measured 3.6e-4 (Emotic OvR), 4.4e-5 (BoLD OvR), 2.7e-4 (BoLD VAD Ridge)
    const HEAD_ATOL: f64 = 1.2e-3;
    let tmp = tempfile::tempdir().unwrap();
    let want = json(&repo().join("fixtures/probe_e2e/expected.json"));
    let heads = tmp.path().join("heads");
    let cfg = emoclip::weights::load::read_config(&repo().join("fixtures/e2e/official_tiny_config.json")).unwrap();
    let ours = emoclip::encoder::encoder_id(
        repo().join("fixtures/e2e/official_tiny.pt").to_str().unwrap(),
        Some(&cfg),
        emoclip::encoder::ModelKind::EmotionClip,
        emoclip::media::Normalization::IMAGENET,
        8,
    )
    .unwrap();
    for (dataset, files, c) in [
        ("emotic", vec![("emotic_categories", "proba")], 2.5),
        ("bold", vec![("bold_categories", "proba"), ("bold_vad", "vad_pred")], 3.16),
    ] {
        let out = tmp.path().join(dataset);
        let o = probe_with(dataset, &out, &["--save-head", heads.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{dataset}: stderr:\n{err}");
        let feats = official_features(&want, dataset, "val");
        for (file, key) in files {
            let path = heads.join(format!("{file}.head.json"));
            let head = emoclip::head::Head::load(&path).unwrap_or_else(|e| panic!("{e}\n{err}"));
            assert_eq!(head.encoder, ours, "{file}: encoder identity");
            assert_eq!(head.dim(), feats[0].len());
            if key == "proba" {
                assert_eq!(head.task, emoclip::head::HeadTask::OneVsRest);
                assert_eq!(head.labels.len(), 26);
                assert_eq!(head.fit["C"], c, "{file}: the official C");
            } else {
                assert_eq!(head.task, emoclip::head::HeadTask::Ridge);
                assert_eq!(head.labels, ["valence", "arousal", "dominance"]);
            }
            let d = head_vs_official(&head, &feats, &want[dataset]["val"][key]);
            eprintln!("{file}: max |head(official val features) − official| = {d:.1e}");
            assert!(d <= HEAD_ATOL, "{file}: {d}");
        }
    }
    // a rerun would overwrite a head: refused before any embedding
    let o = probe_with("emotic", &tmp.path().join("again"), &["--save-head", heads.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("emotic_categories.head.json") && err.contains("already exists"), "{err}");
    assert!(!tmp.path().join("again").exists(), "nothing written");
    // several tasks into one .json file: refused
    let o = probe_with("bold", &tmp.path().join("b2"), &["--save-head", tmp.path().join("h.json").to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.code() == Some(2) && err.contains("give a directory"), "{err}");

    // analyze applies the BoLD heads with the same weights, per window and subject
    let video = repo().join("media/vtest.avi");
    if !video.is_file() {
        assert!(std::env::var_os("CI").is_none(), "{} missing: run scripts/fetch_media.sh", video.display());
        return;
    }
    let segs = tmp.path().join("segments.csv");
    std::fs::write(&segs, "1,3\n").unwrap();
    let aout = tmp.path().join("analysis");
    let o = Command::new(env!("CARGO_BIN_EXE_emoclip"))
        .arg("analyze")
        .arg(&video)
        .arg("--weights")
        .arg(repo().join("fixtures/e2e/official_tiny.pt"))
        .arg("--config")
        .arg(repo().join("fixtures/e2e/official_tiny_config.json"))
        .arg("--segments")
        .arg(&segs)
        .arg("--head")
        .arg(heads.join("bold_categories.head.json"))
        .arg("--head")
        .arg(heads.join("bold_vad.head.json"))
        .arg("--out")
        .arg(&aout)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let tl = std::fs::read_to_string(aout.join("vtest.avi/timeline.jsonl")).unwrap();
    let row: serde_json::Value = serde_json::from_str(tl.lines().next().unwrap()).unwrap();
    let text = row.to_string();
    assert!(text.contains("bold/categories:peace") && text.contains("bold/vad:valence"), "{text}");
}
