//! `emoclip mer train|eval|ablation` end to end on the tiny MOSI / MOSEI pickles with the tiny model: outputs,
//! resume of a finished run, the ablation table, and exit code 2 with clear messages on bad input.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn emoclip(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_emoclip")).args(args).env("RUST_LOG", "warn").output().unwrap()
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn fixture(name: &str) -> String {
    repo().join("fixtures/mmsa").join(name).display().to_string()
}

#[test]
fn train_eval_and_resume_on_tiny_mosi() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mosi = fixture("mosi_tiny.pkl");
    let train = |extra: &[&str]| {
        let mut a = vec![
            "mer",
            "train",
            "--task",
            "sentiment",
            "--dataset",
            "mosi",
            "--data",
            &mosi,
            "--tiny",
            "--epochs",
            "2",
            "--batch-size",
            "8",
            "--lr",
            "2e-3",
            "--out",
        ];
        let o = out.display().to_string();
        a.push(&o);
        a.extend_from_slice(extra);
        emoclip(&a)
    };
    let o = train(&["--query-word", "none"]);
    let (so, se) = text(&o);
    assert!(o.status.success(), "{so}\n{se}");
    assert!(so.contains("CMU-MOSI Sentiment test (8 utterances") && so.contains("Acc-2"), "{so}");
    assert!(se.contains("RANDOM"), "the random text tower is announced: {se}");
    assert!(se.contains("not CMU-MOSI's usual"), "{se}");
    for f in ["best/model.safetensors", "test.json", "metrics.jsonl", "training.svg", "ckpt-6/state.json"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("best/config.json")).unwrap()).unwrap();
    assert_eq!(cfg["query_word"], serde_json::Value::Null);
    // Resuming a finished run trains nothing more and reports the same test scores.
    let o2 = train(&["--resume"]);
    let (so2, se2) = text(&o2);
    assert!(o2.status.success() && se2.contains("resuming from") && se2.contains("step 6"), "{se2}");
    assert_eq!(so2.lines().last(), so.lines().last());
    // eval on the best weights reproduces the test scores and writes predictions.
    let pj = dir.path().join("pred.json");
    let best = out.join("best").display().to_string();
    let e = emoclip(&[
        "mer",
        "eval",
        "--model",
        &best,
        "--data",
        &mosi,
        "--task",
        "sentiment",
        "--dataset",
        "mosi",
        "--out",
        &pj.display().to_string(),
    ]);
    let (eo, ee) = text(&e);
    assert!(e.status.success(), "{eo}\n{ee}");
    let want: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("test.json")).unwrap()).unwrap();
    let got: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&pj).unwrap()).unwrap();
    assert_eq!(got["scores"], want["scores"]);
    assert_eq!(got["predictions"], want["predictions"]);
    // Wrong task for the model.
    let e = emoclip(&["mer", "eval", "--model", &best, "--data", &mosi, "--task", "emotion"]);
    assert_eq!(e.status.code(), Some(2));
    assert!(text(&e).1.contains("trained for Sentiment"));
}

#[test]
fn bad_inputs_exit_2_with_clear_messages() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().display().to_string();
    let cases: [(&str, &str, &str, &[&str]); 4] = [
        ("sentiment", "mosi", "truncated.pkl", &["truncated.pkl", "truncated"]),
        ("sentiment", "mosi", "object.pkl", &["object.pkl", "refusing"]),
        ("sentiment", "mosi", "dims_mismatch.pkl", &["dims_mismatch.pkl", "'vision'"]),
        ("emotion", "mosi", "mosi_tiny.pkl", &["CMU-MOSI has sentiment labels only"]),
    ];
    for (task, ds, file, needles) in cases {
        let data = fixture(file);
        let o = emoclip(&["mer", "train", "--task", task, "--dataset", ds, "--data", &data, "--tiny", "--out", &out]);
        let (_, se) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{file}: {se}");
        for n in needles {
            assert!(se.contains(n), "{file}: {se:?} lacks {n:?}");
        }
    }
}

#[test]
fn ablation_prints_the_seed_table_for_every_word() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().display().to_string();
    let mosei = fixture("mosei_tiny.pkl");
    let o = emoclip(&[
        "mer",
        "ablation",
        "--task",
        "emotion",
        "--dataset",
        "mosei",
        "--data",
        &mosei,
        "--tiny",
        "--epochs",
        "1",
        "--batch-size",
        "12",
        "--out",
        &out,
    ]);
    let (so, se) = text(&o);
    assert!(o.status.success(), "{so}\n{se}");
    assert!(so.contains("| Words | Accuracy(%) | Precision(%) | Recall(%) | Micro-F1(%) |"), "{so}");
    for w in ["Emotion", "Sentiment", "Feeling", "Impression", "Mood", "Sensation", "(no word)"] {
        assert!(so.contains(&format!("| {w} | ")), "{w} row missing:\n{so}");
    }
    assert!(so.contains("<b>"));
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("ablation.json")).unwrap()).unwrap();
    assert_eq!(j["rows"].as_array().unwrap().len(), 7);
    assert!(dir.path().join("no-word/test.json").is_file() && dir.path().join("ablation.md").is_file());
}

#[test]
fn bert_text_train_and_eval() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run").display().to_string();
    let cache = dir.path().join("bert-cache").display().to_string();
    let data = fixture("mosi_bert_tiny.pkl");
    let bert = repo().join("fixtures/bert_tiny").display().to_string();
    let run_on = |file: &str, extra: &[&str]| {
        let base = [
            "mer",
            "train",
            "--task",
            "sentiment",
            "--dataset",
            "mosi",
            "--data",
            file,
            "--tiny",
            "--epochs",
            "8",
            "--batch-size",
            "16",
            "--lr",
            "3e-3",
        ];
        emoclip(&[&base[..], extra].concat())
    };
    let run = |extra: &[&str]| run_on(&data, extra);
    let o = run(&["--text", "bert", "--bert", &bert, "--bert-cache", &cache, "--out", &out]);
    let (so, se) = text(&o);
    assert!(o.status.success(), "{so}\n{se}");
    assert!(se.contains("BERT text features (32 dims) for 416 utterances"), "{se}");
    assert!(!se.contains("not CMU-MOSI's usual [300"), "the BERT width is expected: {se}");
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 3, "one cached feature file per split");
    let acc: f64 = so.split("Acc-2 ").nth(1).and_then(|s| s.split('/').next()).unwrap().parse().unwrap();
    assert!(acc > 85.0, "text-only task learned from BERT features: {so}");
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(Path::new(&out).join("best/config.json")).unwrap()).unwrap();
    assert_eq!(cfg["bert"], serde_json::Value::String(bert.clone()));
    assert_eq!(cfg["dims"]["text"], 32);
    // eval re-encodes with the model's own BERT (no --text needed) and reproduces the test scores.
    let best = Path::new(&out).join("best").display().to_string();
    let pj = dir.path().join("pred.json").display().to_string();
    let e = emoclip(&["mer", "eval", "--model", &best, "--data", &data, "--out", &pj]);
    let (eo, ee) = text(&e);
    assert!(e.status.success(), "{eo}\n{ee}");
    let want: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(Path::new(&out).join("test.json")).unwrap()).unwrap();
    let got: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&pj).unwrap()).unwrap();
    assert_eq!(got["predictions"], want["predictions"]);
    // Inconsistent options and inputs exit 2 with the fix (into a fresh --out: `out` holds a run now).
    let mosi = fixture("mosi_tiny.pkl");
    let out = dir.path().join("fresh").display().to_string();
    let cases: [(Vec<&str>, &[&str]); 4] = [
        (vec!["--text", "bert", "--out", &out], &["--text bert needs the BERT weights", "--bert"]),
        (vec!["--bert", &bert, "--out", &out], &["without --text bert"]),
        (vec!["--text", "glove", "--out", &out], &["mosi_bert_tiny.pkl", "'text'", "--text bert"]),
        (vec!["--text", "bert", "--bert", "/nonexistent/bert", "--out", &out], &["/nonexistent/bert", "no such file"]),
    ];
    for (extra, needles) in cases {
        let o = run(&extra);
        let (_, se) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {se}");
        for n in needles {
            assert!(se.contains(n), "{extra:?}: {se:?} lacks {n:?}");
        }
    }
    let o = run_on(&mosi, &["--text", "bert", "--bert", &bert, "--out", &out]);
    assert_eq!(o.status.code(), Some(2));
    let se = text(&o).1;
    assert!(se.contains("mosi_tiny.pkl") && se.contains("vocabulary") && se.contains("--bert"), "{se}");
    let e = emoclip(&["mer", "eval", "--model", &best, "--data", &mosi, "--text", "glove"]);
    assert_eq!(e.status.code(), Some(2));
    assert!(text(&e).1.contains("trained on BERT text"), "{}", text(&e).1);
}
