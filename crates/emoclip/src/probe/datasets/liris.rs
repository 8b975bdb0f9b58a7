//! LIRIS-ACCEDE (MediaEval 2018 "Emotional Impact of Movies") in its release layout for the linear probe; mirrors the official EmotionCLIP src/datasets/liris_accede.py and `eval_liris_accede` of `linear_eval.py`.
//!
//! # Layout read (under the dataset root)
//!
//! - Labels: `annotations/<set>/annotations/<movie>_*.txt`, tab-separated with a header: `Time` (seconds)
//!   followed by the valence and arousal columns (named `Valence` / `Arousal` in the release; otherwise the
//!   two columns after `Time` are taken, as the official `values[:, 1:]`). The movie id is the first two
//!   `_`-separated parts of the file name (`MEDIAEVAL18_00_Valence-Arousal.txt` → `MEDIAEVAL18_00`). `<set>`
//!   directories whose name contains `test` (any case) form the test split, all others train — the official
//!   rule. Files and directories are read in sorted order (the official `os.listdir` order is unspecified);
//!   `.DS_Store` is ignored.
//! - Frames: `frames/<movie>.mp4/%08d.jpg`, one frame per second in the official setup: the label at `Time = t`
//!   uses frame number `round(t·fps) + 1` (files are numbered from 1, as ffmpeg writes them), `fps` =
//!   [`super::LirisOptions::fps`], default 1 as the official code (which matches `Time == i` to frame `i`).
//! - Person boxes (optional): `bboxes/<movie>.mp4/human_boxes.json`, a list of `{"%08d.jpg": [[x1, y1, x2, y2,
//!   conf], ...]}` in YOLO 640-letterbox coordinates of the original frame; the mask is filled at the original
//!   resolution, resized bilinearly and thresholded (`MaskMode::Bilinear`, the official `_preprocess_frames`).
//!   Without the file the movie is encoded without subject masks (the official loader requires it).
//!
//! # Items and protocol
//!
//! One item per annotated second whose frame exists (`min(#frames, #rows)` seconds, as officially). The
//! official loader **repeats the label frame 8 times** and encodes that with `encode_video`; that is the
//! default here ([`super::LirisOptions::repeat_label_frame`]); the alternative uses the official 8-frame window
//! around the label second (`[t-4, t+4)`, clamped to the movie). In train, the first 4 and last 3 seconds of
//! each movie are dropped (the official edge filter, [`super::LirisOptions::trim_train_edges`]); test keeps
//! every second. The official loader also requires every frame of the 8-frame window to exist; here only
//! the frames actually encoded must exist (missing ones are reported as skipped).
//!
//! `Ridge(alpha=1)` per dimension (one multi-output Ridge is identical: the targets are independent), then
//! `savgol_filter(window_length=100, polyorder=3)` over the **concatenated** test predictions in movie/time
//! order (across movie boundaries, as officially); MSE and Pearson r per dimension and their means.
use super::{letterbox_boxes, read_json, AdapterOptions, DatasetTask, LirisOptions};
use crate::media::{BoxFile, FrameDir, FrameSelection, MaskMode, MediaOptions, PersonBox};
use crate::probe::manifest::{BoxesSpec, Item, Label, Manifest, Skipped, Split, Task};
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Regression targets, in the official column order.
pub const TARGETS: [&str; 2] = ["valence", "arousal"];
/// Frames per item (the official `video_len`).
const VIDEO_LEN: usize = 8;

/// One annotated second.
#[derive(Debug, Clone, PartialEq)]
pub struct Second {
    /// Line in the annotation file (header = 1).
    pub line: usize,
    pub time: f64,
    pub valence: f64,
    pub arousal: f64,
}

/// Parses one tab-separated annotation file (`Time`, then valence and arousal).
pub fn parse_annotations(text: &str, source: &Path) -> Result<Vec<Second>> {
    let err = |m: String| Error::Msg(format!("{}: {m}", source.display()));
    let mut rdr =
        csv::ReaderBuilder::new().delimiter(b'\t').has_headers(true).flexible(true).from_reader(text.as_bytes());
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| err(format!("unreadable header ({e})")))?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    let ct = headers.iter().position(|h| h == "time").ok_or_else(|| {
        err(format!("no `Time` column (found: {}); expected a MediaEval 2018 annotation file", headers.join(", ")))
    })?;
    let named = |n: &str| headers.iter().position(|h| h == n);
    let (cv, ca) = match (named("valence"), named("arousal")) {
        (Some(v), Some(a)) => (v, a),
        _ if headers.len() >= ct + 3 => (ct + 1, ct + 2),
        _ => return Err(err("needs valence and arousal columns after `Time`".into())),
    };
    let mut out = Vec::new();
    let mut lines = super::LineCounter::new(text.as_bytes());
    for rec in rdr.records() {
        let rec = rec.map_err(|e| err(format!("broken line ({e})")))?;
        let line = rec.position().map_or(0, |p| lines.line_at(p.byte()));
        if rec.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        let num = |c: usize, what: &str| -> Result<f64> {
            let f = rec.get(c).unwrap_or("").trim();
            match f.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(v),
                _ => Err(err(format!("line {line}: {what} {f:?} is not a finite number"))),
            }
        };
        out.push(Second { line, time: num(ct, "Time")?, valence: num(cv, "valence")?, arousal: num(ca, "arousal")? });
    }
    Ok(out)
}

/// `list of {"%08d.jpg": boxes}` (letterbox coordinates) → per-frame boxes in original pixels.
fn movie_boxes(path: &Path, w: u32, h: u32) -> Result<BTreeMap<usize, Vec<PersonBox>>> {
    let v = read_json(path)?;
    let list = v
        .as_array()
        .ok_or_else(|| Error::Msg(format!("{}: expected a list of {{\"%08d.jpg\": boxes}}", path.display())))?;
    let mut frames: BTreeMap<usize, Vec<PersonBox>> = BTreeMap::new();
    for d in list {
        let o = d.as_object().ok_or_else(|| Error::Msg(format!("{}: list entries must be objects", path.display())))?;
        for (name, boxes) in o {
            let stem = Path::new(name).file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
            let n = crate::media::frame_dir::frame_number(&stem)
                .ok_or_else(|| Error::Msg(format!("{}: frame key {name:?} has no frame number", path.display())))?;
            frames.insert(n as usize, letterbox_boxes(boxes, w, h, &format!("{} {name}", path.display()))?);
        }
    }
    Ok(frames)
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n != ".DS_Store" && !n.to_string_lossy().starts_with('.')))
        .collect();
    v.sort();
    Ok(v)
}

/// Reads LIRIS-ACCEDE (MediaEval 2018) under `root`: one task, `liris/valence-arousal`.
pub fn load(root: &Path, opts: &AdapterOptions) -> Result<Vec<DatasetTask>> {
    let lo = &opts.liris;
    if !(lo.fps.is_finite() && lo.fps > 0.0) {
        return Err(Error::Msg(format!("LIRIS-ACCEDE frame rate must be positive, got {}", lo.fps)));
    }
    let ann = root.join("annotations");
    if !ann.is_dir() {
        return Err(Error::Msg(format!(
            "{}: not found; the LIRIS-ACCEDE root must hold annotations/<set>/annotations/*.txt (MediaEval 2018 layout)",
            ann.display()
        )));
    }
    let (mut items, mut skipped) = (Vec::new(), Vec::new());
    for (split, file) in annotation_files(&ann)? {
        let (i, s) = movie_items(root, &file, split, lo)?;
        items.extend(i);
        skipped.extend(s);
    }
    let manifest = Manifest {
        source: ann,
        task: Task::Regression,
        classes: vec![],
        targets: TARGETS.iter().map(|s| s.to_string()).collect(),
        items,
        skipped,
    };
    manifest.check_splits()?;
    let mut options = opts.eval.clone();
    options.savgol = lo.savgol;
    Ok(vec![DatasetTask { name: "liris/valence-arousal".into(), manifest, options }])
}

/// The annotation files with their split: the train sets first, then the test sets (a set is a test set when
/// its directory name contains "test"), each in sorted order (the concatenated test vector is smoothed in
/// this order).
fn annotation_files(ann: &Path) -> Result<Vec<(Split, PathBuf)>> {
    let sets = sorted_entries(ann)?;
    let is_test = |p: &PathBuf| p.file_name().is_some_and(|n| n.to_string_lossy().to_lowercase().contains("test"));
    let mut files = Vec::new();
    for (split, want_test) in [(Split::Train, false), (Split::Test, true)] {
        for set in sets.iter().filter(|p| p.is_dir() && is_test(p) == want_test) {
            let files_dir = set.join("annotations");
            if !files_dir.is_dir() {
                tracing::warn!("{}: no annotations/ inside, ignored", set.display());
                continue;
            }
            files.extend(sorted_entries(&files_dir)?.into_iter().filter(|p| p.is_file()).map(|f| (split, f)));
        }
    }
    Ok(files)
}

/// The movie an annotation file belongs to: the first two `_`-separated parts of its name.
fn movie_of(file: &Path) -> String {
    let name = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let movie = name.split('_').take(2).collect::<Vec<_>>().join("_");
    movie.trim_end_matches(".txt").to_string()
}

/// One annotation file's items (one per annotated second) and skipped rows.
fn movie_items(root: &Path, file: &Path, split: Split, lo: &LirisOptions) -> Result<(Vec<Item>, Vec<Skipped>)> {
    let movie = movie_of(file);
    let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
    let seconds = parse_annotations(&text, file)?;
    let (mut items, mut skipped) = (Vec::new(), Vec::new());
    let frames_dir = root.join("frames").join(format!("{movie}.mp4"));
    let fd = match FrameDir::open(&frames_dir) {
        Ok(fd) if !fd.is_empty() => fd,
        Ok(_) | Err(_) => {
            for s in &seconds {
                skipped.push(Skipped {
                    row: s.line,
                    path: frames_dir.clone(),
                    reason: format!("{movie} t={}: frame directory missing or empty", s.time),
                });
            }
            return Ok((items, skipped));
        }
    };
    // Official: min(#frames, #rows) seconds.
    let total = fd.len().min(seconds.len());
    let boxes_path = root.join("bboxes").join(format!("{movie}.mp4")).join("human_boxes.json");
    let boxes = if boxes_path.is_file() {
        let (w, h) = super::meld::media_size(&frames_dir)?;
        Some(movie_boxes(&boxes_path, w, h)?)
    } else {
        tracing::warn!("{}: not found, {movie} is encoded without subject masks", boxes_path.display());
        None
    };
    for (r, s) in seconds.iter().enumerate() {
        let k = (s.time * lo.fps).round();
        if r >= total || k < 0.0 {
            skipped.push(Skipped {
                row: s.line,
                path: file.to_path_buf(),
                reason: format!("{movie} t={}: beyond the movie's {} frame(s)", s.time, fd.len()),
            });
            continue;
        }
        if split == Split::Train && lo.trim_train_edges && (r < VIDEO_LEN / 2 || total - r < VIDEO_LEN / 2) {
            continue; // the official edge filter: not an error, not reported
        }
        let numbers = second_frames(k, total, lo.repeat_label_frame);
        if let Some(missing) = numbers.iter().find(|&&n| fd.position_of(n).is_none()) {
            skipped.push(Skipped {
                row: s.line,
                path: frames_dir.join(format!("{missing:08}.jpg")),
                reason: format!("{movie} t={}: frame {missing:08}.jpg not found", s.time),
            });
            continue;
        }
        items.push(Item {
            row: s.line,
            path: frames_dir.clone(),
            split,
            boxes: boxes.as_ref().map(|b| frames_boxes(b, &numbers)),
            label: Label::Targets(vec![s.valence, s.arousal]),
            media: MediaOptions {
                frames: FrameSelection::Numbers(numbers),
                mask: MaskMode::Bilinear,
                ..Default::default()
            },
        });
    }
    Ok((items, skipped))
}

/// The 1-based frame numbers encoded for the second at 0-based frame `k` of a movie with `total` usable
/// seconds: frame `k` repeated [`VIDEO_LEN`] times, or the official window `[start, start + VIDEO_LEN)`
/// around it, clamped at the movie ends.
fn second_frames(k: f64, total: usize, repeat_label_frame: bool) -> Vec<u64> {
    if repeat_label_frame {
        return vec![k as u64 + 1; VIDEO_LEN];
    }
    let i = k as i64;
    let half = (VIDEO_LEN / 2) as i64;
    let start = (i - half).clamp(0, (total as i64 - VIDEO_LEN as i64).max(0));
    (start..start + VIDEO_LEN as i64).map(|f| f as u64 + 1).collect()
}

/// Only the encoded frames' boxes (a whole movie's per item would not fit in memory).
fn frames_boxes(movie: &BTreeMap<usize, Vec<PersonBox>>, numbers: &[u64]) -> BoxesSpec {
    let sel = numbers.iter().map(|&n| (n as usize, movie.get(&(n as usize)).cloned().unwrap_or_default()));
    BoxesSpec::Built(BoxFile::per_frame(sel.collect()))
}
