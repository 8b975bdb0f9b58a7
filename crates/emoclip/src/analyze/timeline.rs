//! The analysis timeline: one row per window × subject (`scene` or `person-<id>`) with its mean box, top labels and every score column, written as `timeline.jsonl` and `timeline.csv` (issue 13 §5).
//!
//! Score columns are `<source>:<label>`, the source being a prompt set (`basic`, `emotic`, a prompts-file
//! stem) or a head name (`meld/emotion`). `top` lists the `top_k` best labels of the first probabilistic
//! source (zero-shot softmax, or a logistic head).
use std::fmt;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use crate::{Error, Result};

/// Whose embedding a row holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    /// All persons together (the official mask), or the whole frame when nobody was found.
    Scene,
    /// One tracked person.
    Person(u32),
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Scene => write!(f, "scene"),
            Subject::Person(id) => write!(f, "person-{id}"),
        }
    }
}

impl Serialize for Subject {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl std::str::FromStr for Subject {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "scene" => Ok(Subject::Scene),
            _ => s
                .strip_prefix("person-")
                .and_then(|n| n.parse().ok())
                .map(Subject::Person)
                .ok_or_else(|| Error::Msg(format!("`{s}` is not a subject (scene or person-<id>)"))),
        }
    }
}

/// What a score source's numbers are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoreKind {
    /// Probabilities over mutually exclusive labels (zero-shot softmax, logistic head).
    Exclusive,
    /// Independent per-label probabilities (one-vs-rest head).
    MultiLabel,
    /// Regression values (ridge head).
    Values,
}

/// A named group of score columns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreSource {
    pub name: String,
    pub labels: Vec<String>,
    pub kind: ScoreKind,
}

/// One window × subject.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineRow {
    pub window: usize,
    pub t_start: f64,
    pub t_end: f64,
    /// The caption sentence or segment label the window came from (`--captions`, `--segments`).
    pub label: Option<String>,
    pub subject: Subject,
    /// Mean `[x1, y1, x2, y2]` of the subject's boxes over the window's frames (original pixels); for the scene,
    /// of the union box of all persons; `None` when there was no box.
    pub mean_box: Option<[f32; 4]>,
    /// Frames of the window in which the subject had a box (detected or predicted).
    pub frames_with_box: usize,
    /// Remarks: `short-video`, `tail`, `clipped`, `no-person`, `predicted-boxes`, …
    pub flags: Vec<String>,
    /// `scores[s]`: one value per label of source `s`.
    pub scores: Vec<Vec<f64>>,
}

/// Mean of boxes (`None` for none).
pub fn mean_box(boxes: &[[f32; 4]]) -> Option<[f32; 4]> {
    if boxes.is_empty() {
        return None;
    }
    let mut m = [0f64; 4];
    for b in boxes {
        for i in 0..4 {
            m[i] += b[i] as f64;
        }
    }
    let n = boxes.len() as f64;
    Some([(m[0] / n) as f32, (m[1] / n) as f32, (m[2] / n) as f32, (m[3] / n) as f32])
}

/// The rows of one video.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    pub video: String,
    pub sources: Vec<ScoreSource>,
    pub rows: Vec<TimelineRow>,
    /// Labels listed in `top` (default 3).
    pub top_k: usize,
}

struct Ordered<'a>(&'a [String], Vec<f64>);

impl Serialize for Ordered<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0.iter().zip(&self.1) {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

#[derive(Serialize)]
struct TopEntry<'a> {
    label: &'a str,
    score: f64,
}

#[derive(Serialize)]
struct JsonRow<'a> {
    video: &'a str,
    window: usize,
    t_start: f64,
    t_end: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<&'a str>,
    subject: Subject,
    mean_box: Option<[f32; 4]>,
    frames_with_box: usize,
    flags: &'a [String],
    top: Vec<TopEntry<'a>>,
    scores: Ordered<'a>,
}

impl Timeline {
    pub fn new(video: &str, sources: Vec<ScoreSource>) -> Self {
        Self { video: video.to_string(), sources, rows: vec![], top_k: 3 }
    }

    /// All score columns, `<source>:<label>`, in row order.
    pub fn columns(&self) -> Vec<String> {
        self.sources.iter().flat_map(|s| s.labels.iter().map(move |l| format!("{}:{l}", s.name))).collect()
    }

    /// The source `top` is taken from: the first probabilistic one.
    pub fn primary(&self) -> Option<usize> {
        self.sources.iter().position(|s| s.kind != ScoreKind::Values)
    }

    /// Adds a row after checking its scores fit the sources.
    pub fn push(&mut self, row: TimelineRow) -> Result<()> {
        let ok = row.scores.len() == self.sources.len()
            && row.scores.iter().zip(&self.sources).all(|(v, s)| v.len() == s.labels.len());
        if !ok {
            return Err(Error::Shape(format!(
                "timeline row (window {}, {}) has scores {:?} for sources of sizes {:?}",
                row.window,
                row.subject,
                row.scores.iter().map(Vec::len).collect::<Vec<_>>(),
                self.sources.iter().map(|s| s.labels.len()).collect::<Vec<_>>()
            )));
        }
        self.rows.push(row);
        Ok(())
    }

    /// The `top_k` labels of the primary source, best first (ties: first label first).
    pub fn top(&self, row: &TimelineRow) -> Vec<(&str, f64)> {
        let Some(p) = self.primary() else { return vec![] };
        let mut idx: Vec<usize> = (0..row.scores[p].len()).collect();
        idx.sort_by(|&a, &b| row.scores[p][b].total_cmp(&row.scores[p][a]).then(a.cmp(&b)));
        idx.into_iter().take(self.top_k).map(|i| (self.sources[p].labels[i].as_str(), row.scores[p][i])).collect()
    }

    /// Subjects present, scene first then persons by id.
    pub fn subjects(&self) -> Vec<Subject> {
        let mut s: Vec<Subject> = self.rows.iter().map(|r| r.subject).collect();
        s.sort();
        s.dedup();
        s
    }

    /// `timeline.jsonl`: one JSON object per row.
    pub fn to_jsonl(&self) -> Result<String> {
        let cols = self.columns();
        let mut out = String::new();
        for r in &self.rows {
            let row = JsonRow {
                video: &self.video,
                window: r.window,
                t_start: r.t_start,
                t_end: r.t_end,
                label: r.label.as_deref(),
                subject: r.subject,
                mean_box: r.mean_box,
                frames_with_box: r.frames_with_box,
                flags: &r.flags,
                top: self.top(r).into_iter().map(|(label, score)| TopEntry { label, score }).collect(),
                scores: Ordered(&cols, r.scores.iter().flatten().copied().collect()),
            };
            out.push_str(&serde_json::to_string(&row).map_err(|e| Error::Msg(e.to_string()))?);
            out.push('\n');
        }
        Ok(out)
    }

    /// `timeline.csv`: `video, window, t_start, t_end, subject, box_x1…box_y2, frames_with_box, flags`
    /// (`;`-separated), `label` (caption sentence / segment label, empty for fixed windows),
    /// `top1, top1_score, …`, then every score column.
    pub fn to_csv(&self) -> Result<Vec<u8>> {
        let mut w = csv::Writer::from_writer(vec![]);
        let csv_err = |e: csv::Error| Error::Msg(format!("timeline.csv: {e}"));
        let mut header: Vec<String> =
            ["video", "window", "t_start", "t_end", "subject", "box_x1", "box_y1", "box_x2", "box_y2"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        header.push("frames_with_box".into());
        header.push("flags".into());
        header.push("label".into());
        for k in 1..=self.top_k {
            header.push(format!("top{k}"));
            header.push(format!("top{k}_score"));
        }
        header.extend(self.columns());
        w.write_record(&header).map_err(csv_err)?;
        for r in &self.rows {
            let mut rec: Vec<String> = vec![
                self.video.clone(),
                r.window.to_string(),
                format!("{:.3}", r.t_start),
                format!("{:.3}", r.t_end),
                r.subject.to_string(),
            ];
            match r.mean_box {
                Some(b) => rec.extend(b.iter().map(|v| format!("{v:.1}"))),
                None => rec.extend(std::iter::repeat_n(String::new(), 4)),
            }
            rec.push(r.frames_with_box.to_string());
            rec.push(r.flags.join(";"));
            rec.push(r.label.clone().unwrap_or_default());
            let top = self.top(r);
            for k in 0..self.top_k {
                match top.get(k) {
                    Some((l, s)) => {
                        rec.push(l.to_string());
                        rec.push(format!("{s}"));
                    }
                    None => rec.extend([String::new(), String::new()]),
                }
            }
            rec.extend(r.scores.iter().flatten().map(|v| format!("{v}")));
            w.write_record(&rec).map_err(csv_err)?;
        }
        w.into_inner().map_err(|e| Error::Msg(format!("timeline.csv: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Timeline {
        let mut t = Timeline::new(
            "clip",
            vec![
                ScoreSource {
                    name: "basic".into(),
                    labels: vec!["joy".into(), "anger".into()],
                    kind: ScoreKind::Exclusive,
                },
                ScoreSource { name: "bold/vad".into(), labels: vec!["valence".into()], kind: ScoreKind::Values },
            ],
        );
        t.top_k = 2;
        for (w, subject, s) in [(0, Subject::Scene, 0.7), (0, Subject::Person(2), 0.2), (1, Subject::Person(1), 0.5)] {
            t.push(TimelineRow {
                window: w,
                t_start: w as f64 * 2.0,
                t_end: w as f64 * 2.0 + 4.0,
                label: (w == 1).then(|| "She said, \"fine\".".to_string()),
                subject,
                mean_box: (subject != Subject::Scene).then_some([1.0, 2.0, 3.0, 4.0]),
                frames_with_box: 8,
                flags: if subject == Subject::Scene { vec!["no-person".into()] } else { vec![] },
                scores: vec![vec![s, 1.0 - s], vec![-0.25]],
            })
            .unwrap();
        }
        t
    }

    #[test]
    fn subjects_and_top() {
        let t = sample();
        assert_eq!(t.subjects(), vec![Subject::Scene, Subject::Person(1), Subject::Person(2)]);
        assert_eq!(t.top(&t.rows[1]), vec![("anger", 0.8), ("joy", 0.2)]);
        // ties keep label order
        assert_eq!(t.top(&t.rows[2]), vec![("joy", 0.5), ("anger", 0.5)]);
        assert_eq!("person-12".parse::<Subject>().unwrap(), Subject::Person(12));
        assert!("person-x".parse::<Subject>().is_err());
        let mut bad = t.rows[0].clone();
        bad.scores[1].push(1.0);
        let mut t2 = t.clone();
        assert!(t2.push(bad).is_err());
    }

    #[test]
    fn jsonl_keeps_column_order() {
        let t = sample();
        let text = t.to_jsonl().unwrap();
        let first = text.lines().next().unwrap();
        assert!(
            first.contains(r#""scores":{"basic:joy":0.7,"basic:anger":0.30000000000000004,"bold/vad:valence":-0.25}"#),
            "{first}"
        );
        let v: serde_json::Value = serde_json::from_str(first).unwrap();
        assert_eq!(v["subject"], "scene");
        assert_eq!(v["mean_box"], serde_json::Value::Null);
        assert_eq!(v["top"][0]["label"], "joy");
        assert_eq!(text.lines().count(), 3);
        assert!(v.get("label").is_none(), "no label on a fixed window");
        let last: serde_json::Value = serde_json::from_str(text.lines().nth(2).unwrap()).unwrap();
        assert_eq!(last["label"], "She said, \"fine\".");
    }

    #[test]
    fn csv_has_every_column() {
        let t = sample();
        let csv = String::from_utf8(t.to_csv().unwrap()).unwrap();
        let mut lines = csv.lines();
        assert_eq!(
            lines.next().unwrap(),
            "video,window,t_start,t_end,subject,box_x1,box_y1,box_x2,box_y2,frames_with_box,flags,label,top1,top1_score,top2,top2_score,basic:joy,basic:anger,bold/vad:valence"
        );
        assert_eq!(
            lines.next().unwrap(),
            "clip,0,0.000,4.000,scene,,,,,8,no-person,,joy,0.7,anger,0.30000000000000004,0.7,0.30000000000000004,-0.25"
        );
        let rest: Vec<&str> = lines.collect();
        assert_eq!(rest.len(), 2);
        assert!(rest[1].contains(r#",,"She said, ""fine"".",joy,0.5,"#), "{}", rest[1]);
    }
}
