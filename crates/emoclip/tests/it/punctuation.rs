//! ONNX punctuation restoration (FullStop format) on a constructed model whose marks are known
//! (`scripts/fixtures/gen_punctuation.py`), and sentence splitting driven by it.
use crate::common;
use emoclip::prep::punctuation::OnnxPunctuation;
use emoclip::prep::{sentences_with_model, BoundarySource, CaptionChunk, Regroup, SentenceConfig};

fn all_marks() -> SentenceConfig {
    SentenceConfig { regroup: Regroup::AllMarks, ..SentenceConfig::default() }
}

fn model() -> OnnxPunctuation {
    common::ort_runtime();
    OnnxPunctuation::from_dir(&common::fixture("punctuation")).unwrap()
}

#[test]
fn marks_follow_the_model() {
    let m = model();
    let words = ["Hello", "how", "are", "you", "fine", "thanks", "unknownword"];
    let lower: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
    let refs: Vec<&str> = lower.iter().map(String::as_str).collect();
    let got = m.try_predict(&refs).unwrap();
    assert_eq!(got, vec![Some('.'), None, None, Some('?'), Some(','), Some('.'), None]);
}

#[test]
fn unpunctuated_captions_are_split_by_the_model_in_windows() {
    let mut m = model();
    m.window = 4; // several model calls for one transcript
    let chunks = vec![
        CaptionChunk { text: "hello how are you".into(), start: 0.0, end: 2.0, words: None },
        CaptionChunk { text: "fine thanks i am here".into(), start: 2.0, end: 4.5, words: None },
    ];
    let (s, src) = sentences_with_model(&chunks, &all_marks(), Some(&m));
    assert_eq!(src, BoundarySource::Model);
    let texts: Vec<&str> = s.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(texts, vec!["hello.", "how are you?", "fine, thanks.", "i am here."]);
    assert!((s[1].start - 0.5).abs() < 1e-9 && (s[1].end - 2.0).abs() < 1e-9, "{:?}", s[1]);
    // The official rule (default): sentences between two predicted periods, marks not in the text.
    let (s, _) = sentences_with_model(&chunks, &SentenceConfig::default(), Some(&m));
    let texts: Vec<&str> = s.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(texts, vec!["how are you fine thanks", "i am here"]);
    assert!((s[0].start - 0.5).abs() < 1e-9 && (s[0].end - 3.0).abs() < 1e-9, "{:?}", s[0]);
}

#[test]
fn a_missing_model_file_is_a_clear_error() {
    let _ = model();
    let dir = tempfile::tempdir().unwrap();
    for f in ["tokenizer.json", "config.json"] {
        std::fs::copy(common::fixture("punctuation").join(f), dir.path().join(f)).unwrap();
    }
    let err = OnnxPunctuation::from_dir(dir.path()).err().unwrap().to_string();
    assert!(err.contains("model.onnx"), "{err}");
}

#[test]
fn a_given_model_replaces_the_captions_own_punctuation() {
    let m = model();
    let chunks =
        vec![CaptionChunk { text: "hello, how are you. fine thanks!".into(), start: 0.0, end: 6.0, words: None }];
    let (s, src) = sentences_with_model(&chunks, &all_marks(), Some(&m));
    assert_eq!(src, BoundarySource::Model);
    let texts: Vec<&str> = s.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(texts, vec!["hello.", "how are you?", "fine, thanks."]);
}
