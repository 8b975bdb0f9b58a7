//! MER-CLIP metrics (`mer::metrics`) against scikit-learn on `fixtures/mmsa/metrics.json`
//! (`scripts/fixtures/gen_mmsa.py`): emotion Jaccard accuracy and micro P/R/F1, sentiment Acc-2 and weighted F1
//! under MMSA's has0 / non0 conventions, degenerate cases included.
use crate::common;
use emoclip::mer::metrics::{emotion_metrics, sentiment_metrics};

fn cases() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(common::fixture("mmsa/metrics.json")).unwrap()).unwrap()
}

fn close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() <= 1e-12, "{what}: ours {a}, sklearn {b}");
}

fn bools(v: &serde_json::Value) -> Vec<Vec<bool>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_array().unwrap().iter().map(|x| x.as_i64().unwrap() == 1).collect())
        .collect()
}

#[test]
fn emotion_metrics_match_sklearn() {
    let c = cases();
    let all = c["emotion"].as_array().unwrap();
    assert!(all.len() >= 8);
    for (i, case) in all.iter().enumerate() {
        let m = emotion_metrics(&bools(&case["truth"]), &bools(&case["pred"]));
        close(m.accuracy, case["accuracy"].as_f64().unwrap(), &format!("case {i} jaccard accuracy"));
        close(m.precision, case["precision"].as_f64().unwrap(), &format!("case {i} precision"));
        close(m.recall, case["recall"].as_f64().unwrap(), &format!("case {i} recall"));
        close(m.micro_f1, case["f1"].as_f64().unwrap(), &format!("case {i} micro-F1"));
    }
}

#[test]
fn sentiment_metrics_match_mmsa_conventions() {
    let c = cases();
    for (i, case) in c["sentiment"].as_array().unwrap().iter().enumerate() {
        let y: Vec<f32> = case["truth"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
        let p: Vec<bool> = case["pred"].as_array().unwrap().iter().map(|x| x.as_i64().unwrap() == 1).collect();
        let m = sentiment_metrics(&y, &p);
        close(m.acc2_has0, case["acc2_has0"].as_f64().unwrap(), &format!("case {i} acc2 has0"));
        close(m.f1_has0, case["f1_has0"].as_f64().unwrap(), &format!("case {i} f1 has0"));
        close(m.acc2_non0.unwrap(), case["acc2_non0"].as_f64().unwrap(), &format!("case {i} acc2 non0"));
        close(m.f1_non0.unwrap(), case["f1_non0"].as_f64().unwrap(), &format!("case {i} f1 non0"));
        assert_eq!(m.n_non0, y.iter().filter(|&&v| v != 0.0).count());
    }
    // Every label zero: non0 has nothing to score.
    let m = sentiment_metrics(&[0.0, 0.0], &[true, false]);
    assert_eq!((m.acc2_has0, m.acc2_non0, m.n_non0), (0.5, None, 0));
}
