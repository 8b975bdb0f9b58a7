//! `emoclip probe --dataset bold|emotic` with the official tiny model (fixtures/e2e): the exact exit code (1: each
//! fixture has one row whose media is missing on purpose, listed and skipped) and the reported numbers against the
//! official `linear_eval.py` + scikit-learn (fixtures/probe_e2e/expected.json, scripts/fixtures/gen_probe_e2e.py).
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn probe(dataset: &str, out: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_emoclip"))
        .args(["probe", "--dataset", dataset, "--root"])
        .arg(repo().join("fixtures/probe_datasets").join(dataset))
        .arg("--weights")
        .arg(repo().join("fixtures/e2e/official_tiny.pt"))
        .arg("--config")
        .arg(repo().join("fixtures/e2e/official_tiny_config.json"))
        .arg("--out")
        .arg(out)
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
