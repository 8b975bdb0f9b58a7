//! BoLD (Body Language Dataset) adapter: the official `BOLD_public` release layout as read by EmotionCLIP src/datasets/bold.py and `linear_eval.py --dataset bold`.
//!
//! # Layout (under `root`, the `BOLD_public` directory)
//!
//! ```text
//! annotations/train.csv, annotations/val.csv   no header, one row per annotated person-clip
//! mmextract/<video_id>/img_00001.jpg ...        the clip's extracted frames (a directory per clip)
//! joints/<video_id minus ".mp4">.npy            OpenPose joints, rows [frame, person, 18 × (x, y, conf)]
//! ```
//!
//! CSV columns (the BoLD release README, and the `names=` of the official `pd.read_csv(header=None)`):
//! `video_id, person_id, start_frame, end_frame`, the 26 categories in the order of [`CLASSES`] (the fraction of
//! annotators who chose each), `valence, arousal, dominance, gender, age, ethnicity, confidence_score`. The
//! `video_id` is a relative path such as `003/IzvOYVMltkI.mp4/0114.mp4` naming the frame directory (and, without
//! `.mp4`, the joints file). Only the first 33 columns are used; `start_frame`/`end_frame` are read but unused,
//! as officially (the frame directory already is the clip). The official release has no labelled test split.
//!
//! # Items and tasks
//!
//! Every row is one item: the frame directory `mmextract/<video_id>` sampled uniformly at 8 frames
//! ([`crate::media::frame_dir`]; the official `sorted(os.listdir())` order equals the frame-number order for
//! BoLD's zero-padded names), with the annotated person's box per frame from the joints
//! ([`crate::media::joints`]) and the BoLD mask rule ([`MaskMode::Bilinear`]: mask at the original resolution,
//! bilinear resize, `> 0.5`). Two tasks share the items (and so the feature cache):
//! - `bold/categories`: the 26 categories binarised at `>= 0.5`, one-vs-rest logistic regression with the
//!   official `C = 3.16`; macro mAP and ROC-AUC on val;
//! - `bold/vad`: valence, arousal, dominance, `Ridge(alpha=1)`; R² (uniform average) on val.
//!
//! With [`AdapterOptions::official_c`] false, C is chosen by random search on val — the split that is also
//! reported (BoLD has no test), so such numbers are optimistic; the official fixed C is the default.
//!
//! Rows whose frame directory or joints file is missing are listed in [`Manifest::skipped`]; a malformed CSV
//! row, a category score outside `[0, 1]`, a non-finite VAD value or a joints array of the wrong shape is an
//! error naming the file and line.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{AdapterOptions, DatasetTask};
use crate::media::joints::ClipJoints;
use crate::media::{MaskMode, MediaOptions};
use crate::probe::manifest::{BoxesSpec, Item, Label, Manifest, Skipped, Split, Task};
use crate::{Error, Result};

/// The 26 BoLD categories, in CSV column order (src/datasets/bold.py `CLASS_NAMES`).
pub const CLASSES: [&str; 26] = [
    "peace",
    "affection",
    "esteem",
    "anticipation",
    "engagement",
    "confidence",
    "happiness",
    "pleasure",
    "excitement",
    "surprise",
    "sympathy",
    "doubt confusion",
    "disconnection",
    "fatigue",
    "embarrassment",
    "yearning",
    "disapproval",
    "aversion",
    "annoyance",
    "anger",
    "sensitivity",
    "sadness",
    "disquietment",
    "fear",
    "pain",
    "suffering",
];
/// The regression targets (CSV columns 31–33).
pub const VAD: [&str; 3] = ["valence", "arousal", "dominance"];
/// Official one-vs-rest C (`linear_eval.py`).
pub const OFFICIAL_C: f64 = 3.16;
/// A category counts as present when at least this fraction of annotators chose it (official `>= 0.5`).
pub const CATEGORY_THRESHOLD: f64 = 0.5;
/// Columns used: `video_id, person_id, start_frame, end_frame`, 26 categories, VAD.
const MIN_COLUMNS: usize = 4 + 26 + 3;

/// One parsed annotation row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// 1-based line in the CSV.
    pub line: usize,
    pub video_id: String,
    pub person_id: i64,
    pub start_frame: i64,
    pub end_frame: i64,
    /// Annotator fractions of the 26 categories.
    pub categories: [f64; 26],
    pub vad: [f64; 3],
}

/// Parses one official annotation CSV (`annotations/{train,val}.csv`, no header).
pub fn read_annotations(path: &Path) -> Result<Vec<Row>> {
    let bad = |line: usize, msg: String| Error::Data { path: path.to_path_buf(), msg: format!("line {line}: {msg}") };
    if !path.is_file() {
        return Err(Error::Data {
            path: path.to_path_buf(),
            msg: "annotation file not found; pass the BOLD_public directory as the root (it holds annotations/train.csv and annotations/val.csv)".into(),
        });
    }
    let text = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let mut rdr = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_slice());
    let mut rows = Vec::new();
    let mut lines = super::LineCounter::new(&text);
    for rec in rdr.records() {
        let rec = rec.map_err(|e| Error::Data { path: path.to_path_buf(), msg: format!("malformed CSV ({e})") })?;
        let line = rec.position().map_or(0, |p| lines.line_at(p.byte()));
        if rec.len() == 1 && rec[0].trim().is_empty() {
            continue;
        }
        if rec.len() < MIN_COLUMNS {
            return Err(bad(
                line,
                format!(
                    "{} column(s), expected at least {MIN_COLUMNS} (video_id, person_id, start_frame, end_frame, 26 categories, valence, arousal, dominance, ...): is this the official BoLD annotation file?",
                    rec.len()
                ),
            ));
        }
        let num =
            |j: usize, what: &str| -> Result<f64> {
                rec[j].trim().parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| {
                    bad(line, format!("column {} ({what}) is `{}`, not a finite number", j + 1, &rec[j]))
                })
            };
        let int = |j: usize, what: &str| -> Result<i64> {
            let v = num(j, what)?;
            if v.fract() != 0.0 {
                return Err(bad(line, format!("column {} ({what}) is `{}`, not an integer", j + 1, &rec[j])));
            }
            Ok(v as i64)
        };
        let video_id = rec[0].trim().to_string();
        if video_id.is_empty() {
            return Err(bad(line, "empty video_id".into()));
        }
        let mut categories = [0f64; 26];
        for (k, c) in categories.iter_mut().enumerate() {
            *c = num(4 + k, CLASSES[k])?;
            if !(0.0..=1.0).contains(c) {
                return Err(bad(
                    line,
                    format!(
                        "category `{}` = {c} is out of range: BoLD category scores are annotator fractions in [0, 1]",
                        CLASSES[k]
                    ),
                ));
            }
        }
        let mut vad = [0f64; 3];
        for (k, v) in vad.iter_mut().enumerate() {
            *v = num(30 + k, VAD[k])?;
        }
        rows.push(Row {
            line,
            video_id,
            person_id: int(1, "person_id")?,
            start_frame: int(2, "start_frame")?,
            end_frame: int(3, "end_frame")?,
            categories,
            vad,
        });
    }
    Ok(rows)
}

/// The joints file of a clip: `joints/<video_id without its .mp4 extension>.npy`.
pub fn joints_path(root: &Path, video_id: &str) -> PathBuf {
    let stem = video_id.strip_suffix(".mp4").unwrap_or(video_id);
    root.join("joints").join(format!("{stem}.npy"))
}

/// Reads BoLD laid out as the official release under `root` (see the module documentation).
pub fn load(root: &Path, opts: &AdapterOptions) -> Result<Vec<DatasetTask>> {
    let media = MediaOptions { mask: MaskMode::Bilinear, ..MediaOptions::default() };
    let mut cat_items = Vec::new();
    let mut vad_items = Vec::new();
    let mut skipped = Vec::new();
    let mut joints: HashMap<PathBuf, ClipJoints> = HashMap::new();
    for (split, file) in [(Split::Train, "train.csv"), (Split::Val, "val.csv")] {
        let csv = root.join("annotations").join(file);
        for r in read_annotations(&csv)? {
            let dir = root.join("mmextract").join(&r.video_id);
            if !dir.is_dir() {
                skipped.push(Skipped {
                    row: r.line,
                    path: dir,
                    reason: format!("{}: frame directory not found", csv.display()),
                });
                continue;
            }
            let jp = joints_path(root, &r.video_id);
            if !jp.is_file() {
                skipped.push(Skipped {
                    row: r.line,
                    path: jp,
                    reason: format!("{}: joints file not found", csv.display()),
                });
                continue;
            }
            if !joints.contains_key(&jp) {
                let j = ClipJoints::load(&jp)?;
                joints.insert(jp.clone(), j);
            }
            let boxes = joints[&jp].person_boxes(r.person_id).with_origin(&jp);
            let classes: Vec<usize> = (0..26).filter(|&k| r.categories[k] >= CATEGORY_THRESHOLD).collect();
            let item = |label| Item {
                row: r.line,
                path: dir.clone(),
                split,
                boxes: Some(BoxesSpec::Built(boxes.clone())),
                label,
                media: media.clone(),
            };
            cat_items.push(item(Label::Classes(classes)));
            vad_items.push(item(Label::Targets(r.vad.to_vec())));
        }
    }
    let source = root.join("annotations");
    let categories = Manifest {
        source: source.clone(),
        task: Task::Multi,
        classes: CLASSES.iter().map(|s| s.to_string()).collect(),
        targets: vec![],
        items: cat_items,
        skipped: skipped.clone(),
    };
    let vad = Manifest {
        source,
        task: Task::Regression,
        classes: vec![],
        targets: VAD.iter().map(|s| s.to_string()).collect(),
        items: vad_items,
        skipped,
    };
    for m in [&categories, &vad] {
        m.check_splits().map_err(|e| Error::Data { path: root.to_path_buf(), msg: format!("BoLD: {e}") })?;
    }
    Ok(vec![
        DatasetTask { name: "bold/categories".into(), manifest: categories, options: opts.eval_with_c(OFFICIAL_C) },
        DatasetTask { name: "bold/vad".into(), manifest: vad, options: opts.eval.clone() },
    ])
}
