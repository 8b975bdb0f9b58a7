//! MER-CLIP evaluation metrics (MER-CLIP paper Tables 1–3): multi-label emotion accuracy / micro P-R-F1 and binary
//! sentiment Acc-2 / weighted F1 with MMSA's two zero-label conventions (MMSA `metricsTop.py`,
//! `__eval_mosi_regression`), matching scikit-learn on `fixtures/mmsa/metrics.json`.
//!
//! - Emotion **accuracy** is the example-based (Jaccard) accuracy of the multi-label literature on CMU-MOSEI
//!   (TAILOR, CARAT): mean over utterances of |truth ∩ prediction| / |truth ∪ prediction|, with an utterance
//!   that has no true and no predicted emotion counted as 1 (`jaccard_score(average='samples', zero_division=1)`).
//! - Emotion **precision / recall / micro-F1**: counts pooled over all utterances and labels
//!   (`precision_recall_fscore_support(average='micro')`); a 0/0 ratio is 0, as scikit-learn's default.
//! - Sentiment **Acc-2 / F1** (F1 weighted by true-class support, over the classes present in truth or
//!   prediction, as `f1_score(average='weighted')`), reported twice as MMSA does: `has0` — every utterance,
//!   label >= 0 is positive; `non0` — utterances with label exactly 0 dropped, label > 0 is positive.
use serde::{Deserialize, Serialize};

/// Multi-label emotion scores, all in [0, 1].
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EmotionMetrics {
    /// Example-based (Jaccard) accuracy.
    pub accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub micro_f1: f64,
}

/// Binary sentiment scores, all in [0, 1]; `non0` ones are `None` when every label is 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SentimentMetrics {
    pub acc2_has0: f64,
    pub f1_has0: f64,
    pub acc2_non0: Option<f64>,
    pub f1_non0: Option<f64>,
    /// Utterances kept by the `non0` convention.
    pub n_non0: usize,
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Emotion metrics of multi-hot rows (`truth[i][k]`, `pred[i][k]`: utterance i has emotion k). Rows must have
/// equal lengths (checked by the caller building them); an empty set scores 0.
pub fn emotion_metrics(truth: &[Vec<bool>], pred: &[Vec<bool>]) -> EmotionMetrics {
    let (mut tp, mut fp, mut fneg, mut jac) = (0usize, 0usize, 0usize, 0.0f64);
    for (t, p) in truth.iter().zip(pred) {
        let (mut inter, mut union) = (0usize, 0usize);
        for (&a, &b) in t.iter().zip(p) {
            inter += (a && b) as usize;
            union += (a || b) as usize;
            tp += (a && b) as usize;
            fp += (!a && b) as usize;
            fneg += (a && !b) as usize;
        }
        jac += if union == 0 { 1.0 } else { inter as f64 / union as f64 };
    }
    let n = truth.len().min(pred.len());
    EmotionMetrics {
        accuracy: if n == 0 { 0.0 } else { jac / n as f64 },
        precision: ratio(tp, tp + fp),
        recall: ratio(tp, tp + fneg),
        micro_f1: ratio(2 * tp, 2 * tp + fp + fneg),
    }
}

/// Fraction of equal entries (`accuracy_score`); 0 for empty input.
pub fn accuracy(truth: &[bool], pred: &[bool]) -> f64 {
    ratio(truth.iter().zip(pred).filter(|(a, b)| a == b).count(), truth.len().min(pred.len()))
}

/// Binary F1 averaged over the classes present in `truth` or `pred`, weighted by true support
/// (`f1_score(average='weighted')`); 0 for empty input.
pub fn weighted_f1(truth: &[bool], pred: &[bool]) -> f64 {
    let n = truth.len().min(pred.len());
    let mut out = 0.0;
    for class in [false, true] {
        let (mut tp, mut fp, mut fneg) = (0usize, 0usize, 0usize);
        for (&t, &p) in truth.iter().zip(pred) {
            tp += (t == class && p == class) as usize;
            fp += (t != class && p == class) as usize;
            fneg += (t == class && p != class) as usize;
        }
        let support = tp + fneg;
        out += ratio(2 * tp, 2 * tp + fp + fneg) * ratio(support, n);
    }
    out
}

/// Sentiment metrics from regression labels (`regression_labels`, in [-3, 3]) and predicted classes
/// (`true` = positive), under both MMSA conventions (see the module documentation).
pub fn sentiment_metrics(labels: &[f32], pred_positive: &[bool]) -> SentimentMetrics {
    let has0: Vec<bool> = labels.iter().map(|&y| y >= 0.0).collect();
    let (t0, p0): (Vec<bool>, Vec<bool>) =
        labels.iter().zip(pred_positive).filter(|(y, _)| **y != 0.0).map(|(&y, &p)| (y > 0.0, p)).unzip();
    let any = !t0.is_empty();
    SentimentMetrics {
        acc2_has0: accuracy(&has0, pred_positive),
        f1_has0: weighted_f1(&has0, pred_positive),
        acc2_non0: any.then(|| accuracy(&t0, &p0)),
        f1_non0: any.then(|| weighted_f1(&t0, &p0)),
        n_non0: t0.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_worked_cases() {
        // Utterance 0: {a,b} vs {b,c} → 1/3; utterance 1: {} vs {} → 1; tp 1, fp 1, fn 1.
        let t = vec![vec![true, true, false], vec![false, false, false]];
        let p = vec![vec![false, true, true], vec![false, false, false]];
        let m = emotion_metrics(&t, &p);
        assert!((m.accuracy - (1.0 / 3.0 + 1.0) / 2.0).abs() < 1e-15);
        assert_eq!((m.precision, m.recall, m.micro_f1), (0.5, 0.5, 0.5));
        // Labels 0 count as positive under has0 and are dropped under non0.
        let s = sentiment_metrics(&[0.0, -1.0, 2.0], &[false, false, true]);
        assert!((s.acc2_has0 - 2.0 / 3.0).abs() < 1e-15);
        assert_eq!((s.acc2_non0, s.n_non0), (Some(1.0), 2));
    }
}
