//! `emoclip probe` end to end (the official `linear_eval.py` flow) on tiny generated images with a random micro model: report files, feature-cache reuse, skipped rows and exit codes.
use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_emoclip")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Uncompressed 24-bit BMP (bottom-up rows, 4-byte aligned).
fn write_bmp(path: &Path, w: u32, h: u32, px: impl Fn(u32, u32) -> [u8; 3]) {
    let row = (w * 3).div_ceil(4) * 4;
    let size = 54 + row * h;
    let mut b = Vec::with_capacity(size as usize);
    b.extend_from_slice(b"BM");
    b.extend_from_slice(&size.to_le_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&54u32.to_le_bytes());
    b.extend_from_slice(&40u32.to_le_bytes());
    b.extend_from_slice(&(w as i32).to_le_bytes());
    b.extend_from_slice(&(h as i32).to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&24u16.to_le_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&(row * h).to_le_bytes());
    b.extend_from_slice(&[0; 16]);
    for y in (0..h).rev() {
        for x in 0..w {
            let [r, g, bl] = px(x, y);
            b.extend_from_slice(&[bl, g, r]);
        }
        b.resize(b.len() + (row - w * 3) as usize, 0);
    }
    std::fs::write(path, b).unwrap();
}

/// 14 images: bright "happy" and dark "sad", train 6 / val 4 / test 4; returns the manifest lines (no header).
fn make_dataset(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    let splits = ["train", "train", "train", "val", "val", "test", "test"];
    for (g, (label, base)) in [("happy", 200u8), ("sad", 30u8)].into_iter().enumerate() {
        for (i, split) in splits.iter().enumerate() {
            let name = format!("{label}_{i}.bmp");
            let seed = (g * 7 + i) as u32;
            write_bmp(&dir.join(&name), 32, 32, |x, y| {
                let n = ((x * 31 + y * 17 + seed * 13) % 23) as u8;
                [base.saturating_add(n), base.saturating_add(n / 2), base]
            });
            lines.push(format!("{name},{split},{label}"));
        }
    }
    lines
}

fn probe(manifest: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let config = repo().join("fixtures/cli/micro_random.json");
    let mut cmd = Command::new(bin());
    cmd.arg("probe")
        .arg(manifest)
        .args(["--weights", "random", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(out)
        .args(["--trials", "3"])
        .args(extra)
        .env("RUST_LOG", "info");
    cmd.output().unwrap()
}

fn count_cache(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|r| r.filter_map(|e| e.ok()).filter(|e| e.path().extension().is_some_and(|x| x == "safetensors")).count())
        .unwrap_or(0)
}

#[test]
fn probe_end_to_end_with_cache_reuse() {
    let tmp = tempfile::tempdir().unwrap();
    let lines = make_dataset(tmp.path());
    let manifest = tmp.path().join("data.csv");
    std::fs::write(&manifest, format!("path,split,label\n{}\n", lines.join("\n"))).unwrap();
    let out = tmp.path().join("out");
    let cache = tmp.path().join("cache");
    let o = probe(&manifest, &out, &["--cache", cache.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "stderr:\n{err}");
    for f in ["probe.md", "probe.json", "per_class.svg"] {
        assert!(out.join(f).is_file(), "{f} missing; stderr:\n{err}");
    }
    let j: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("probe.json")).unwrap()).unwrap();
    assert_eq!(j["task"], "single");
    assert_eq!(j["counts"]["train"], 6);
    assert!(j["metrics"]["Accuracy"]["test"].as_f64().is_some(), "{j}");
    assert!(j["metrics"]["F1 (weighted)"]["val"].as_f64().is_some(), "{j}");
    let md = std::fs::read_to_string(out.join("probe.md")).unwrap();
    assert!(md.contains("| metric | val | test |"), "{md}");
    let n_cache = count_cache(&cache);
    assert_eq!(n_cache, 14);
    assert!(err.contains("0 from cache, 14 to embed"), "{err}");

    // Second run: every feature comes from the cache, no model is loaded; the fitted classifier is saved as a
    // head (a directory path: `<manifest stem>.head.json`).
    let heads = tmp.path().join("heads");
    let o2 = probe(&manifest, &out, &["--cache", cache.to_str().unwrap(), "--save-head", heads.to_str().unwrap()]);
    let err2 = String::from_utf8_lossy(&o2.stderr);
    assert_eq!(o2.status.code(), Some(0), "stderr:\n{err2}");
    assert!(err2.contains("14 from cache, 0 to embed"), "{err2}");
    assert!(err2.contains("no embedding needed"), "{err2}");
    assert!(!err2.contains("RANDOM weights"), "the model was loaded although everything was cached:\n{err2}");
    assert_eq!(count_cache(&cache), n_cache);
    let j2: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("probe.json")).unwrap()).unwrap();
    assert_eq!(j["metrics"], j2["metrics"], "cached features gave different metrics");
    let head = emoclip::head::Head::load(&heads.join("data.head.json")).unwrap();
    assert_eq!((head.name.as_str(), head.task), ("data", emoclip::head::HeadTask::Logistic));
    assert_eq!(head.labels, ["happy", "sad"]);
    assert_eq!((head.coef.len(), head.intercept.len()), (1, 1), "binary: one row, as scikit-learn");
    assert_eq!(head.fit["C"], j2["c"]);
    assert_eq!(head.fit["metrics_test"]["Accuracy"], j2["metrics"]["Accuracy"]["test"]);
}

#[test]
fn probe_missing_file_is_listed_and_exit_1() {
    let tmp = tempfile::tempdir().unwrap();
    let mut lines = make_dataset(tmp.path());
    lines.push("does_not_exist.bmp,train,happy".into());
    let manifest = tmp.path().join("data.csv");
    std::fs::write(&manifest, format!("path,split,label\n{}\n", lines.join("\n"))).unwrap();
    let out = tmp.path().join("out");
    let o = probe(&manifest, &out, &["--c", "1"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "stderr:\n{err}");
    assert!(err.contains("does_not_exist.bmp") && err.contains("row 16"), "{err}");
    assert!(out.join("probe.json").is_file());
    let md = std::fs::read_to_string(out.join("probe.md")).unwrap();
    assert!(md.contains("does_not_exist.bmp"), "{md}");
}

#[test]
fn probe_nothing_usable_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let manifest = tmp.path().join("data.jsonl");
    std::fs::write(
        &manifest,
        "{\"path\": \"a.bmp\", \"split\": \"train\", \"label\": \"happy\"}\n{\"path\": \"b.bmp\", \"split\": \"test\", \"label\": \"sad\"}\n",
    )
    .unwrap();
    let o = probe(&manifest, &tmp.path().join("out"), &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "stderr:\n{err}");
    assert!(err.contains("train split is empty"), "{err}");
}

#[test]
fn probe_clip_baseline_on_fixture_manifests() {
    let tmp = tempfile::tempdir().unwrap();
    let fx = repo().join("fixtures/probe_manifest");
    // Multi-label JSONL (inline boxes, class sidecar), CLIP image tower, fixed C.
    let out = tmp.path().join("multi");
    let o = probe(&fx.join("multi.jsonl"), &out, &["--model", "clip", "--c", "1"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "stderr:\n{err}");
    let j: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("probe.json")).unwrap()).unwrap();
    assert_eq!(j["task"], "multi");
    assert_eq!(j["model"], "clip");
    assert!(j["metrics"]["mAP (macro)"]["test"].as_f64().is_some(), "{j}");
    assert!(out.join("per_class.svg").is_file());
    // Regression with two targets.
    let out = tmp.path().join("reg");
    let o = probe(&fx.join("regression.csv"), &out, &["--targets", "valence,arousal"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "stderr:\n{err}");
    let j: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("probe.json")).unwrap()).unwrap();
    assert_eq!(j["task"], "regression");
    assert!(j["metrics"]["MSE arousal"]["test"].as_f64().is_some(), "{j}");
    // Single-label CSV with a video, a box file and a missing row: runs, lists it, exit 1.
    let out = tmp.path().join("single");
    let o = probe(&fx.join("single.csv"), &out, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "stderr:\n{err}");
    assert!(err.contains("row 8") && err.contains("missing_on_purpose.jpg"), "{err}");
}

fn probe_dataset(dataset: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    let config = repo().join("fixtures/cli/micro_random.json");
    Command::new(bin())
        .args(["probe", "--dataset", dataset, "--root"])
        .arg(repo().join("fixtures/probe_datasets").join(dataset))
        .args(["--weights", "random", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

/// MELD, LIRIS-ACCEDE and MovieGraphs official layouts → features (random micro EmotionCLIP and the CLIP
/// baseline) → official protocol → per-task reports → the Table-4 suite across both models.
#[test]
fn probe_datasets_two_models_and_suite_report() {
    let tmp = tempfile::tempdir().unwrap();
    // (dataset, one of its tasks, metrics, split, extra args); BoLD / Emotic are helper P1's adapters
    let cases = [
        ("meld", "meld/emotion", vec!["Accuracy", "F1 (weighted)"], "test", vec![]),
        (
            "liris",
            "liris/valence-arousal",
            vec!["MSE valence", "Pearson r arousal", "MSE (mean)"],
            "test",
            vec!["--savgol", "7"],
        ),
        ("moviegraphs", "moviegraphs/emotion", vec!["Accuracy (top-1 in labels)"], "val", vec![]),
        ("bold", "bold/categories", vec!["mAP (macro)"], "val", vec![]),
        ("emotic", "emotic/categories", vec!["mAP (macro)"], "test", vec![]),
    ];
    for (model_dir, model_args) in [("ec", vec![]), ("clip", vec!["--model", "clip"])] {
        for (dataset, task, metrics, split, extra) in &cases {
            let out = tmp.path().join(model_dir);
            let mut args: Vec<&str> = model_args.clone();
            args.extend(extra.iter().copied());
            let o = probe_dataset(dataset, &out, &args);
            let err = String::from_utf8_lossy(&o.stderr);
            if ["meld", "liris", "moviegraphs"].contains(dataset) {
                // each of these fixtures has one row without usable media/labels: listed, exit 1
                assert_eq!(o.status.code(), Some(1), "{dataset} {model_dir}: stderr:\n{err}");
                assert!(err.contains("1 item(s) skipped"), "{err}");
            } else {
                assert!(matches!(o.status.code(), Some(0 | 1)), "{dataset} {model_dir}: stderr:\n{err}");
            }
            let j = read_json(&out.join(task).join("probe.json"));
            assert_eq!(j["dataset"], *task);
            assert_eq!(j["model"], if model_dir == "ec" { "emotionclip" } else { "clip" });
            for m in metrics {
                let v = j["metrics"][m][split].as_f64().unwrap_or_else(|| panic!("{task}: {m} missing: {j}"));
                assert!(v.is_finite(), "{task}: {m} = {v}");
            }
            assert!(out.join(task).join("per_class.svg").is_file());
        }
    }
    let meld = read_json(&tmp.path().join("ec/meld/emotion/probe.json"));
    assert_eq!(meld["c"], 8.0, "official C by default");
    assert_eq!(meld["counts"]["val"], 9);

    let suite = tmp.path().join("suite");
    let o = Command::new(bin())
        .arg("probe-report")
        .arg(tmp.path().join("ec"))
        .arg(tmp.path().join("clip"))
        .arg("--out")
        .arg(&suite)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "stderr:\n{err}");
    let md = std::fs::read_to_string(suite.join("suite.md")).unwrap();
    let j = read_json(&suite.join("suite.json"));
    let svg = std::fs::read_to_string(suite.join("suite.svg")).unwrap();
    assert!(
        svg.contains("<svg")
            && svg.contains("CLIP (baseline)")
            && svg.contains("MELD Acc")
            && svg.contains("MG Test Acc"),
        "suite.svg"
    );
    let rows = j["table4"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{j}");
    assert_eq!(rows[0]["model"], "EmotionCLIP");
    assert_eq!(rows[1]["model"], "CLIP (baseline)");
    let cols = j["table4"]["columns"].as_array().unwrap();
    let col = |task: &str, metric: &str, split: &str| {
        cols.iter().position(|c| c["task"] == task && c["metric"] == metric && c["split"] == split).unwrap()
    };
    for r in rows {
        let v = &r["values"];
        assert!(v[col("meld/emotion", "F1 (weighted)", "test")].as_f64().is_some(), "{r}");
        assert!(v[col("moviegraphs/emotion", "Accuracy (top-1 in labels)", "test")].as_f64().is_some(), "{r}");
        assert!(v[col("liris/valence-arousal", "MSE arousal", "test")].as_f64().is_some(), "{r}");
        for (task, metric, split) in [
            ("bold/categories", "mAP (macro)", "val"),
            ("bold/vad", "R2 (uniform average)", "val"),
            ("emotic/categories", "ROC-AUC (defined classes)", "test"),
        ] {
            assert!(v[col(task, metric, split)].as_f64().is_some(), "{task}: {r}");
        }
    }
    // Table 5: the 26 categories in the paper's order, BoLD and Emotic per-class AP / AUC for both models
    let cats = j["table5"]["categories"].as_array().unwrap();
    assert_eq!(cats.len(), 26, "{j}");
    assert_eq!((cats[0].as_str(), cats[9].as_str()), (Some("Affection"), Some("Doubt/Confusion")));
    for r in j["table5"]["rows"].as_array().unwrap() {
        for d in ["BoLD", "Emotic"] {
            let ap = r["datasets"][d]["AP"].as_array().unwrap();
            assert_eq!(ap.len(), 26);
            assert!(ap.iter().any(|v| v.as_f64().is_some()), "{d}: {r}");
        }
    }
    assert!(md.contains("## Table 5") && md.contains("| Average |"), "{md}");
    assert_eq!(rows[0]["values"][col("meld/emotion", "Accuracy", "test")], meld["metrics"]["Accuracy"]["test"]);
    assert!(md.contains("| CLIP (baseline) |"), "{md}");
    // a suite with MELD only: the other cells are shown as —
    let o = Command::new(bin())
        .arg("probe-report")
        .arg(tmp.path().join("ec/meld"))
        .arg("--out")
        .arg(tmp.path().join("s1"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let md1 = std::fs::read_to_string(tmp.path().join("s1/suite.md")).unwrap();
    let ec_line = md1.lines().find(|l| l.starts_with("| EmotionCLIP |")).unwrap();
    assert_eq!(ec_line.matches("| — ").count(), 12, "{ec_line}");
}

#[test]
fn probe_dataset_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    // a root that does not exist
    let o = Command::new(bin())
        .args(["probe", "--dataset", "meld", "--root"])
        .arg(tmp.path().join("nope"))
        .args(["--weights", "random"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("dataset root not found"), "{err}");
    // --dataset without --root
    let o = Command::new(bin()).args(["probe", "--dataset", "meld", "--weights", "random"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--root"));
    // LIRIS with the official window on a 12-second test set: a clear error, no report
    let out = tmp.path().join("liris");
    let o = probe_dataset("liris", &out, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("window_length (100)"), "{err}");
    assert!(!out.join("liris/valence-arousal/probe.json").exists());
    // probe-report over results without a dataset task
    let manifest_run = tmp.path().join("m");
    std::fs::create_dir_all(&manifest_run).unwrap();
    std::fs::write(manifest_run.join("probe.json"), r#"{"manifest": "x.csv", "model": "clip", "metrics": {}}"#)
        .unwrap();
    let o = Command::new(bin())
        .arg("probe-report")
        .arg(&manifest_run)
        .arg("--out")
        .arg(tmp.path().join("s"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("no dataset probe results"), "{err}");
}

#[test]
fn probe_warns_once_about_items_without_boxes_and_boxes_outside_and_logs_progress_without_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let lines = make_dataset(tmp.path());
    // JSONL manifest; the first item has one box entirely outside its 32x32 image, the others none.
    let rows: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let f: Vec<&str> = l.split(',').collect();
            let boxes = if i == 0 { ", \"boxes\": [[500, 500, 600, 600, 0.9]]" } else { "" };
            format!("{{\"path\": \"{}\", \"split\": \"{}\", \"label\": \"{}\"{boxes}}}", f[0], f[1], f[2])
        })
        .collect();
    let manifest = tmp.path().join("data.jsonl");
    std::fs::write(&manifest, rows.join("\n") + "\n").unwrap();
    let config = repo().join("fixtures/cli/micro_random.json");
    let o = Command::new(bin())
        .arg("probe")
        .arg(&manifest)
        .args(["--weights", "random", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(tmp.path().join("out"))
        .args(["--c", "1", "--batch", "4"])
        .env("RUST_LOG", "info")
        .env("EMOCLIP_PROGRESS_SECS", "0")
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(err.matches("13 of 14 item(s) have no person boxes").count(), 1, "{err}");
    assert_eq!(err.matches("lie entirely outside the frame").count(), 1, "{err}");
    assert!(err.contains("[500, 500, 600, 600] on a 32x32 frame"), "{err}");
    assert!(err.contains("embedding: 4/14") && err.contains("embedding: done, 14/14 (100%)"), "{err}");
    assert!(!o.stderr.contains(&0x1b), "ANSI escape in non-terminal stderr: {err:?}");
}
