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
        let mut a = vec!["mer", "train", "--task", "sentiment", "--dataset", "mosi", "--data", &mosi, "--tiny", "--epochs", "2", "--batch-size", "8", "--lr", "2e-3", "--out"];
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
    let cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("best/config.json")).unwrap()).unwrap();
    assert_eq!(cfg["query_word"], serde_json::Value::Null);
    // Resuming a finished run trains nothing more and reports the same test scores.
    let o2 = train(&["--resume"]);
    let (so2, se2) = text(&o2);
    assert!(o2.status.success() && se2.contains("resuming from") && se2.contains("step 6"), "{se2}");
    assert_eq!(so2.lines().last(), so.lines().last());
    // eval on the best weights reproduces the test scores and writes predictions.
    let pj = dir.path().join("pred.json");
    let best = out.join("best").display().to_string();
    let e = emoclip(&["mer", "eval", "--model", &best, "--data", &mosi, "--task", "sentiment", "--dataset", "mosi", "--out", &pj.display().to_string()]);
    let (eo, ee) = text(&e);
    assert!(e.status.success(), "{eo}\n{ee}");
    let want: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("test.json")).unwrap()).unwrap();
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
    let o = emoclip(&["mer", "ablation", "--task", "emotion", "--dataset", "mosei", "--data", &mosei, "--tiny", "--epochs", "1", "--batch-size", "12", "--out", &out]);
    let (so, se) = text(&o);
    assert!(o.status.success(), "{so}\n{se}");
    assert!(so.contains("| Words | Accuracy(%) | Precision(%) | Recall(%) | Micro-F1(%) |"), "{so}");
    for w in ["Emotion", "Sentiment", "Feeling", "Impression", "Mood", "Sensation", "(no word)"] {
        assert!(so.contains(&format!("| {w} | ")), "{w} row missing:\n{so}");
    }
    assert!(so.contains("<b>"));
    let j: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("ablation.json")).unwrap()).unwrap();
    assert_eq!(j["rows"].as_array().unwrap().len(), 7);
    assert!(dir.path().join("no-word/test.json").is_file() && dir.path().join("ablation.md").is_file());
}
