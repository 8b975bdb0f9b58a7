//! Sentence regrouping with a punctuation model against the official `regroup_by_punc` (issue 16.1): the
//! expected groupings were produced by the official `preprocessing/regroup_transcripts.py` itself
//! (`scripts/fixtures/gen_regroup.py` → `fixtures/captions/regroup_official.json`).
use crate::common;
use emoclip::prep::youtube_json::parse_youtube_json;
use emoclip::prep::{sentences_with_model, BoundarySource, PunctuationModel, Regroup, SentenceConfig};
use serde_json::Value;
use std::sync::Mutex;

/// Returns the fixture's marks and records the words it was asked about.
struct FixedMarks {
    marks: Vec<Option<char>>,
    seen: Mutex<Vec<String>>,
}

impl PunctuationModel for FixedMarks {
    fn predict(&self, words: &[&str]) -> Vec<Option<char>> {
        *self.seen.lock().unwrap() = words.iter().map(|w| w.to_string()).collect();
        self.marks.clone()
    }
}

fn cases() -> Vec<Value> {
    let p = common::fixture("captions/regroup_official.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    doc["cases"].as_array().unwrap().clone()
}

fn model_for(case: &Value) -> FixedMarks {
    let marks = case["marks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().chars().next().filter(|&c| c != '0'))
        .collect();
    FixedMarks { marks, seen: Mutex::new(Vec::new()) }
}

#[test]
fn official_regrouping_matches_the_official_script() {
    let all = cases();
    assert_eq!(all.len(), 5);
    let mut compared = 0;
    for case in &all {
        let name = case["name"].as_str().unwrap();
        let (chunks, report) = parse_youtube_json(&case["transcript"].to_string()).unwrap();
        assert!(report.skipped.is_empty(), "{name}: {report:?}");
        let m = model_for(case);
        let (got, src) = sentences_with_model(&chunks, &SentenceConfig::default(), Some(&m));
        assert_eq!(src, BoundarySource::Model);
        // The model saw exactly the official preprocessed words.
        let words: Vec<String> = case["words"].as_array().unwrap().iter().map(|w| w.as_str().unwrap().into()).collect();
        assert_eq!(*m.seen.lock().unwrap(), words, "{name}: words given to the model");
        let want = case["expected"].as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{name}: {got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.text, w["text"].as_str().unwrap(), "{name}");
            let (ws, we) = (w["start"].as_f64().unwrap(), w["end"].as_f64().unwrap());
            assert!((g.start - ws).abs() < 1e-9 && (g.end - we).abs() < 1e-9, "{name}: {g:?} vs {w}");
            compared += 1;
        }
    }
    assert_eq!(compared, 9, "sentences compared");
}

/// `Regroup::AllMarks` is the earlier rule, kept by name: it differs from the official one exactly where the
/// issue says (splits at `?`, keeps head and tail, keeps the marks). Only cases whose word list is the same
/// under both rules (no sound tags, marks only at word ends) are used, as the fixed marks go by position.
#[test]
fn all_marks_is_the_earlier_rule_by_name() {
    let all = cases();
    let cfg = SentenceConfig { regroup: Regroup::AllMarks, ..SentenceConfig::default() };
    let texts = |i: usize| -> Vec<String> {
        let (chunks, _) = parse_youtube_json(&all[i]["transcript"].to_string()).unwrap();
        sentences_with_model(&chunks, &cfg, Some(&model_for(&all[i]))).0.into_iter().map(|s| s.text).collect()
    };
    assert_eq!(
        texts(0),
        [
            "well hello there.",
            "how are you, doing today?",
            "i am fine thanks for asking.",
            "see you later.",
            "alligator"
        ]
    );
    assert_eq!(texts(1), ["What?", "No way.", "I can't believe it.", "Really.", "Are you sure?", "Yes."]);
    assert_eq!(texts(4), ["just one sentence here.", "and nothing else"]);
}
