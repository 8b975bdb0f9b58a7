//! MELD in its official release layout for the linear probe; mirrors the official EmotionCLIP src/datasets/meld.py and `linear_eval.py --dataset meld`.
//!
//! # Layout read (under the dataset root)
//!
//! - Labels: `MELD.Raw/{train,dev,test}_sent_emo.csv` (or the same files directly under the root), the
//!   official columns `Sr No., Utterance, Speaker, Emotion, Sentiment, Dialogue_ID, Utterance_ID, Season,
//!   Episode, StartTime, EndTime`; quoted fields with commas and newlines are read by the `csv` crate. Only
//!   `Emotion`, `Dialogue_ID` and `Utterance_ID` are used. `Emotion` must be one of the 7 official classes,
//!   in the official index order [`CLASSES`] (`neutral, surprise, fear, sadness, joy, disgust, anger`).
//! - Media, first match wins: the official code's frame directories
//!   `frames/{train,dev,test}_splits/dia{D}_utt{U}/frame_{i}.jpg` (8 frames sampled uniformly over the
//!   directory), else the release's videos `train_splits/`, `dev_splits_complete/`,
//!   `output_repeated_splits_test/` holding `dia{D}_utt{U}.mp4` (looked for under `MELD.Raw/`, the root, and
//!   `MELD.Raw/{split}/`). A row with neither is reported in [`Manifest::skipped`].
//! - Person boxes (optional): `{split}_human_boxes.json`, `{"dia{D}_utt{U}": {"frame_{i}.jpg": [[x1, y1, x2,
//!   y2, conf], ...]}}` in YOLO 640-letterbox coordinates (official YOLOv7 step); frame `i` is the frame number
//!   of a frame directory, or the decoding index of a video. Converted with [`super::letterbox_boxes`]. A clip
//!   or frame missing from the file has no boxes (the official loader would raise `KeyError`).
//!
//! # Protocol
//!
//! train → dev (reported as `val`) and test; multinomial `LogisticRegression(C=8)` ([`OFFICIAL_C`], or a
//! random search on dev when [`super::AdapterOptions::official_c`] is off); accuracy and weighted F1.
//!
//! The official code drops one sample per split by hand (train `dia125_utt3`, dev `dia110_utt7`: the frame
//! directory is missing in its copy). Here they are kept when their media exist and reported as skipped
//! otherwise; [`super::MeldOptions::drop_official_corrupt`] drops them unconditionally, as the official code.
use super::{letterbox_boxes, read_json, AdapterOptions, DatasetTask};
use crate::media::{BoxFile, FrameDir, MediaOptions, PersonBox};
use crate::probe::manifest::{BoxesSpec, Item, Label, Manifest, Skipped, Split, Task};
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The 7 emotion classes in the official index order (`EMOTION_CLASS_NAMES` of meld.py).
pub const CLASSES: [&str; 7] = ["neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"];
/// `linear_eval.py`: `LogisticRegression(C=8, solver='sag', max_iter=2000)`.
pub const OFFICIAL_C: f64 = 8.0;
/// Samples the official code removes by hand: (split, dialogue, utterance).
pub const OFFICIAL_CORRUPT: [(&str, u64, u64); 2] = [("train", 125, 3), ("dev", 110, 7)];

/// One labelled utterance of a `*_sent_emo.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct Utterance {
    /// Line of the record in the CSV (the header is line 1).
    pub line: usize,
    pub dialogue: u64,
    pub utterance: u64,
    /// Index into [`CLASSES`].
    pub emotion: usize,
}

/// Parses a `*_sent_emo.csv` (official columns; only Emotion / Dialogue_ID / Utterance_ID are needed).
pub fn parse_csv(bytes: &[u8], source: &Path) -> Result<Vec<Utterance>> {
    let err = |m: String| Error::Msg(format!("{}: {m}", source.display()));
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(bytes);
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| err(format!("unreadable CSV header ({e})")))?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_string())
        .collect();
    let col = |name: &str| {
        headers.iter().position(|h| h.eq_ignore_ascii_case(name)).ok_or_else(|| {
            err(format!("no `{name}` column (found: {}); is this an official MELD *_sent_emo.csv?", headers.join(", ")))
        })
    };
    let (ce, cd, cu) = (col("Emotion")?, col("Dialogue_ID")?, col("Utterance_ID")?);
    let mut out = Vec::new();
    let mut lines = super::LineCounter::new(bytes);
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, |p| lines.line_at(p.byte()));
            err(format!("broken CSV at line {line} ({e}); check the quoting of the Utterance field"))
        })?;
        let line = rec.position().map_or(0, |p| lines.line_at(p.byte()));
        let field = |c: usize| rec.get(c).unwrap_or("").trim();
        let emo = field(ce).to_ascii_lowercase();
        let emotion = CLASSES.iter().position(|c| *c == emo).ok_or_else(|| {
            err(format!("line {line}: unknown emotion {:?} (MELD classes: {})", field(ce), CLASSES.join(", ")))
        })?;
        let num = |c: usize, what: &str| {
            field(c).parse::<u64>().map_err(|_| err(format!("line {line}: {what} {:?} is not a number", field(c))))
        };
        out.push(Utterance { line, dialogue: num(cd, "Dialogue_ID")?, utterance: num(cu, "Utterance_ID")?, emotion });
    }
    Ok(out)
}

/// Official split name, manifest split, and the release's video directory names.
const SPLITS: [(&str, Split, &[&str]); 3] = [
    ("train", Split::Train, &["train_splits"]),
    ("dev", Split::Val, &["dev_splits_complete", "dev_splits"]),
    ("test", Split::Test, &["output_repeated_splits_test", "test_splits"]),
];

/// The directory holding the `*_sent_emo.csv` files.
fn csv_dir(root: &Path) -> PathBuf {
    let raw = root.join("MELD.Raw");
    if raw.join("train_sent_emo.csv").is_file() {
        raw
    } else {
        root.to_path_buf()
    }
}

/// Media of a clip: the official frame directory, else the release's mp4.
fn find_media(root: &Path, split: &str, video_dirs: &[&str], clip: &str) -> Option<PathBuf> {
    let frames = root.join("frames").join(format!("{split}_splits")).join(clip);
    if frames.is_dir() {
        return Some(frames);
    }
    for base in [root.join("MELD.Raw"), root.to_path_buf(), root.join("MELD.Raw").join(split)] {
        for d in video_dirs {
            let p = base.join(d).join(format!("{clip}.mp4"));
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Width and height of a clip's frames (first frame of a frame directory, or the video stream).
pub(crate) fn media_size(path: &Path) -> Result<(u32, u32)> {
    if path.is_dir() {
        let fd = FrameDir::open(path)?;
        let first = fd.frames.first().ok_or_else(|| Error::media(path, "no frames in the directory"))?;
        return image::image_dimensions(&first.1)
            .map_err(|e| Error::media(&first.1, format!("unreadable frame ({e})")));
    }
    let clip = crate::media::decode_frames(path, &[0])?;
    Ok((clip.width, clip.height))
}

/// `{"frame_{i}.jpg": boxes}` (letterbox coordinates) → per-frame boxes in original pixels.
pub(crate) fn frame_boxes(entry: &serde_json::Value, w: u32, h: u32, what: &str) -> Result<BoxFile> {
    let obj = entry.as_object().ok_or_else(|| Error::Msg(format!("{what}: expected {{\"frame_i.jpg\": [boxes]}}")))?;
    let mut frames: BTreeMap<usize, Vec<PersonBox>> = BTreeMap::new();
    for (name, boxes) in obj {
        let stem = Path::new(name).file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        let n = crate::media::frame_dir::frame_number(&stem)
            .ok_or_else(|| Error::Msg(format!("{what}: frame key {name:?} has no frame number")))?;
        frames.insert(n as usize, letterbox_boxes(boxes, w, h, &format!("{what} {name}"))?);
    }
    Ok(BoxFile::per_frame(frames))
}

/// Reads MELD under `root` (layout in the module documentation): one task, `meld/emotion`.
pub fn load(root: &Path, opts: &AdapterOptions) -> Result<Vec<DatasetTask>> {
    let dir = csv_dir(root);
    let mut items = Vec::new();
    let mut skipped = Vec::new();
    for (split_name, split, video_dirs) in SPLITS {
        let csv_path = dir.join(format!("{split_name}_sent_emo.csv"));
        if !csv_path.is_file() {
            if split == Split::Train {
                return Err(Error::Msg(format!(
                    "{}: MELD train annotations not found; the root must hold MELD.Raw/train_sent_emo.csv (official release)",
                    csv_path.display()
                )));
            }
            tracing::warn!("{}: not found, the MELD {split_name} split is empty", csv_path.display());
            continue;
        }
        let bytes = std::fs::read(&csv_path).map_err(|e| Error::io(&csv_path, e))?;
        let rows = parse_csv(&bytes, &csv_path)?;
        let boxes_path = root.join(format!("{split_name}_human_boxes.json"));
        let boxes_json = if boxes_path.is_file() { Some(read_json(&boxes_path)?) } else { None };
        let mut no_boxes = 0usize;
        for u in rows {
            let clip = format!("dia{}_utt{}", u.dialogue, u.utterance);
            if opts.meld.drop_official_corrupt && OFFICIAL_CORRUPT.contains(&(split_name, u.dialogue, u.utterance)) {
                skipped.push(Skipped {
                    row: u.line,
                    path: csv_path.clone(),
                    reason: format!("{split_name} {clip}: dropped as in the official code (corrupted sample)"),
                });
                continue;
            }
            let Some(media) = find_media(root, split_name, video_dirs, &clip) else {
                skipped.push(Skipped {
                    row: u.line,
                    path: root.join("frames").join(format!("{split_name}_splits")).join(&clip),
                    reason: format!(
                        "{split_name} {clip}: media not found (neither the frame directory nor {}/{clip}.mp4)",
                        video_dirs[0]
                    ),
                });
                continue;
            };
            let boxes = match boxes_json.as_ref().and_then(|j| j.get(&clip)) {
                Some(entry) => match media_size(&media) {
                    Ok((w, h)) => {
                        Some(BoxesSpec::Built(frame_boxes(entry, w, h, &format!("{} {clip}", boxes_path.display()))?))
                    }
                    Err(e) => {
                        skipped.push(Skipped {
                            row: u.line,
                            path: media.clone(),
                            reason: format!("unreadable media: {e}"),
                        });
                        continue;
                    }
                },
                None => {
                    no_boxes += usize::from(boxes_json.is_some());
                    None
                }
            };
            items.push(Item {
                row: u.line,
                path: media,
                split,
                boxes,
                label: Label::Class(u.emotion),
                media: MediaOptions::default(),
            });
        }
        if no_boxes > 0 {
            tracing::warn!(
                "{}: {no_boxes} {split_name} clip(s) have no entry (encoded without subject mask)",
                boxes_path.display()
            );
        }
    }
    let manifest = Manifest {
        source: dir,
        task: Task::Single,
        classes: CLASSES.iter().map(|s| s.to_string()).collect(),
        targets: vec![],
        items,
        skipped,
    };
    manifest.check_splits()?;
    Ok(vec![DatasetTask { name: "meld/emotion".into(), manifest, options: opts.eval_with_c(OFFICIAL_C) }])
}
