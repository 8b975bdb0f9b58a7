//! The query-word ablation of the MER-CLIP paper (appendix §1, Tables 1–3): the same training run once per emotion-query
//! word (Emotion, Sentiment, Feeling, Impression, Mood, Sensation, no word), test scores of the best-on-valid
//! weights, printed as the seed's Markdown tables.
use super::config::{MerConfig, MerTask, QUERY_WORDS};
use super::data::MmsaData;
use super::train::{read_test, MerTrainConfig, MerTrainer, MetricLine, Scores};
use crate::Result;
use candle_core::Device;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

/// One row: the query word (`None` = "(no word)") and its test scores.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AblationRow {
    pub word: Option<String>,
    pub scores: Scores,
}

/// Run directory name of a word under the sweep's output directory.
pub fn run_name(word: Option<&str>) -> String {
    word.map_or_else(|| "no-word".to_string(), |w| w.to_lowercase())
}

/// Trains one model per word of [`QUERY_WORDS`] into `train.out_dir/<word>/` (`model` gives every other
/// setting) and collects the test scores. A word whose run already has `test.json` is not retrained; a
/// partial run continues from its last checkpoint. `on_line(word, line)` sees every metrics line.
pub fn sweep(
    model: &MerConfig,
    train: &MerTrainConfig,
    data: &Arc<MmsaData>,
    clip: Option<&Path>,
    device: &Device,
    mut on_line: impl FnMut(Option<&str>, &MetricLine),
) -> Result<Vec<AblationRow>> {
    let mut rows = Vec::new();
    for &word in QUERY_WORDS {
        let out = train.out_dir.join(run_name(word));
        let test = match read_test(&out) {
            Ok(t) => t,
            Err(_) => {
                let mut cfg = model.clone();
                cfg.query_word = word.map(str::to_string);
                let tc = MerTrainConfig { out_dir: out.clone(), ..train.clone() };
                let mut tr = MerTrainer::new(tc, cfg, data.clone(), clip, device.clone(), true)?;
                tr.run(None, |l| on_line(word, l))?;
                read_test(&out)?
            }
        };
        rows.push(AblationRow { word: word.map(str::to_string), scores: test.scores });
    }
    Ok(rows)
}

fn pct(x: f64) -> String {
    format!("{:.1}", 100.0 * x)
}

/// Bolds the cells of column values `v` equal (at one decimal in percent) to the column's maximum.
fn bold_max(v: &[Option<f64>]) -> Vec<String> {
    let best = v
        .iter()
        .flatten()
        .map(|&x| pct(x))
        .max_by(|a, b| a.parse::<f64>().unwrap_or(0.0).total_cmp(&b.parse::<f64>().unwrap_or(0.0)));
    v.iter()
        .map(|x| match x {
            None => "–".to_string(),
            Some(x) if Some(pct(*x)) == best => format!("<b>{}</b>", pct(*x)),
            Some(x) => pct(*x),
        })
        .collect()
}

/// The Markdown table of the MER-CLIP paper's layout: Table 1 (emotion: Accuracy, Precision, Recall, Micro-F1) or
/// Tables 2–3 (sentiment: ACC2, F1, each cell `has0 / non0`), column maxima in bold. `dataset` names the data
/// in the caption (e.g. "CMU-MOSEI").
pub fn markdown(task: MerTask, dataset: &str, rows: &[AblationRow]) -> String {
    let words: Vec<String> = rows.iter().map(|r| r.word.clone().unwrap_or_else(|| "(no word)".into())).collect();
    let mut s = String::new();
    match task {
        MerTask::Emotion => {
            s += &format!("Performance comparison of words for emotion query on multimodal emotion recognition on {dataset} dataset.\n\n");
            s += "| Words | Accuracy(%) | Precision(%) | Recall(%) | Micro-F1(%) |\n|---|---|---|---|---|\n";
            let col = |f: fn(&super::metrics::EmotionMetrics) -> f64| -> Vec<String> {
                bold_max(
                    &rows
                        .iter()
                        .map(|r| if let Scores::Emotion(m) = &r.scores { Some(f(m)) } else { None })
                        .collect::<Vec<_>>(),
                )
            };
            let cols = [col(|m| m.accuracy), col(|m| m.precision), col(|m| m.recall), col(|m| m.micro_f1)];
            for (i, w) in words.iter().enumerate() {
                s += &format!("| {w} | {} | {} | {} | {} |\n", cols[0][i], cols[1][i], cols[2][i], cols[3][i]);
            }
            s +=
                "\nAccuracy: example-based (Jaccard); precision / recall / F1: micro-averaged over the six emotions.\n";
        }
        MerTask::Sentiment => {
            s += &format!("Performance comparison of words for emotion query on multimodal sentiment analysis on {dataset} dataset.\n\n");
            s += "| Words | ACC<sub>2</sub> (%) | F1(%) |\n|---|---|---|\n";
            let col = |f: fn(&super::metrics::SentimentMetrics) -> Option<f64>| -> Vec<String> {
                bold_max(
                    &rows
                        .iter()
                        .map(|r| if let Scores::Sentiment(m) = &r.scores { f(m) } else { None })
                        .collect::<Vec<_>>(),
                )
            };
            let (a0, a1, f0, f1) =
                (col(|m| Some(m.acc2_has0)), col(|m| m.acc2_non0), col(|m| Some(m.f1_has0)), col(|m| m.f1_non0));
            for (i, w) in words.iter().enumerate() {
                s += &format!("| {w} | {} / {} | {} / {} |\n", a0[i], a1[i], f0[i], f1[i]);
            }
            s += "\nEach cell: has0 / non0 (MMSA: has0 counts label >= 0 as positive; non0 drops zero labels). F1 weighted.\n";
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mer::metrics::{EmotionMetrics, SentimentMetrics};

    #[test]
    fn tables_bold_the_column_maxima() {
        let e = |a, f| AblationRow {
            word: Some("Mood".into()),
            scores: Scores::Emotion(EmotionMetrics { accuracy: a, precision: 0.5, recall: 0.5, micro_f1: f }),
        };
        let mut rows = vec![e(0.4931, 0.5), e(0.2, 0.578)];
        rows[1].word = None;
        let t = markdown(MerTask::Emotion, "CMU-MOSEI", &rows);
        assert!(t.contains("| Mood | <b>49.3</b> | <b>50.0</b> | <b>50.0</b> | 50.0 |"), "{t}");
        assert!(t.contains("| (no word) | 20.0 | <b>50.0</b> | <b>50.0</b> | <b>57.8</b> |"), "{t}");
        let s = AblationRow {
            word: Some("Sensation".into()),
            scores: Scores::Sentiment(SentimentMetrics {
                acc2_has0: 0.857,
                f1_has0: 0.855,
                acc2_non0: None,
                f1_non0: None,
                n_non0: 0,
            }),
        };
        let t = markdown(MerTask::Sentiment, "CMU-MOSI", &[s]);
        assert!(t.contains("| Sensation | <b>85.7</b> / – | <b>85.5</b> / – |"), "{t}");
        assert_eq!(run_name(None), "no-word");
        assert_eq!(run_name(Some("Feeling")), "feeling");
    }
}
