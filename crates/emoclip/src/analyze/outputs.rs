//! The per-video output directory `OUT/<video-id>/`: timeline, embeddings with their index, boxes and tracks, report, and the `.done` marker written last (issue 13 §5–6).
//!
//! Every file is written under a temporary name and renamed ([`crate::output::write_atomic`]). [`begin`]
//! removes an old marker before anything is rewritten and [`finish`] writes it after everything else, so a
//! directory with `.done` is complete and one without it is redone on the next run.
//!
//! | file | content |
//! |---|---|
//! | `timeline.jsonl`, `timeline.csv` | [`super::timeline`] |
//! | `embeddings.npy` | `float32 [rows, dim]`, row `i` ↔ line `i` of `embeddings.jsonl` |
//! | `embeddings.jsonl` | `{"row", "window", "subject", "t_start", "t_end", "frames"}` per row |
//! | `boxes.json` | the person detections of every analysed frame in the documented box format (`media::boxes`: `{"size": [w, h], "frames": {"<frame>": [[x1, y1, x2, y2, conf], …]}}`), reusable as `--boxes` so a rerun does not detect again |
//! | `tracks.json` | `{"frames": {"<frame>": t}, "tracks": [{"id", "boxes": [{"frame", "box", "conf"}]}]}`: track ids; `conf` null for a predicted (missed) box |
//! | `report.html` | [`super::report`] |
//! | `.done` | JSON summary, written last |
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::timeline::{Subject, Timeline};
use super::track::TrackLog;
use crate::media::PersonBox;
use crate::output::{npy_bytes, write_atomic};
use crate::{Error, Result};

/// Name of the completion marker.
pub const DONE_MARKER: &str = ".done";

/// Whether `dir` holds a finished analysis.
pub fn is_done(dir: &Path) -> bool {
    dir.join(DONE_MARKER).is_file()
}

/// Prepares `dir` for (re)writing: creates it and removes a stale marker.
pub fn begin(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    match std::fs::remove_file(dir.join(DONE_MARKER)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(dir.join(DONE_MARKER), e)),
        _ => Ok(()),
    }
}

/// Writes the marker (call after every other file).
pub fn finish(dir: &Path, summary: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(summary).map_err(|e| Error::Msg(e.to_string()))?;
    write_atomic(&dir.join(DONE_MARKER), |f| f.write_all(text.as_bytes()))
}

fn write_text(path: PathBuf, text: &str) -> Result<()> {
    write_atomic(&path, |f| f.write_all(text.as_bytes()))
}

/// `timeline.jsonl` and `timeline.csv`.
pub fn write_timeline(dir: &Path, timeline: &Timeline) -> Result<()> {
    write_text(dir.join("timeline.jsonl"), &timeline.to_jsonl()?)?;
    let csv = timeline.to_csv()?;
    write_atomic(&dir.join("timeline.csv"), |f| f.write_all(&csv))
}

/// Which window/subject an embedding row belongs to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmbeddingIndex {
    pub row: usize,
    pub window: usize,
    pub subject: Subject,
    pub t_start: f64,
    pub t_end: f64,
    /// The window's frames (decoded-frame numbers, 0-based, in time order; repeats possible): extract them with
    /// `ffmpeg -i VIDEO -fps_mode passthrough frames/%05d.png` (file number = frame + 1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frames: Vec<usize>,
}

/// `embeddings.npy` (rows × dim, f32) and `embeddings.jsonl` (one index line per row).
pub fn write_embeddings(dir: &Path, index: &[EmbeddingIndex], rows: &[Vec<f32>]) -> Result<()> {
    let dim = rows.first().map_or(0, Vec::len);
    if index.len() != rows.len() || rows.iter().any(|r| r.len() != dim) {
        return Err(Error::Shape(format!(
            "{} index entries for {} embedding rows (all rows must have {dim} values)",
            index.len(),
            rows.len()
        )));
    }
    let bytes = npy_bytes(rows, dim);
    write_atomic(&dir.join("embeddings.npy"), |f| f.write_all(&bytes))?;
    let mut text = String::new();
    for e in index {
        text.push_str(&serde_json::to_string(e).map_err(|e| Error::Msg(e.to_string()))?);
        text.push('\n');
    }
    write_text(dir.join("embeddings.jsonl"), &text)
}

/// `boxes.json` text (the documented box format) for the detections of every analysed frame. Boxes with
/// no area (possible after clipping to the frame) are left out, as the box format requires `x2 > x1`,
/// `y2 > y1`; a frame with no person gets an explicit empty list.
pub fn boxes_json(size: (u32, u32), detections: &BTreeMap<usize, Vec<PersonBox>>) -> String {
    let frames: serde_json::Map<String, serde_json::Value> = detections
        .iter()
        .map(|(f, boxes)| {
            let list: Vec<serde_json::Value> = boxes
                .iter()
                .filter(|b| b.x2 > b.x1 && b.y2 > b.y1)
                .map(|b| {
                    let mut v = vec![b.x1, b.y1, b.x2, b.y2];
                    if let Some(c) = b.conf {
                        v.push(c.clamp(0.0, 1.0));
                    }
                    serde_json::json!(v)
                })
                .collect();
            (f.to_string(), serde_json::Value::Array(list))
        })
        .collect();
    serde_json::json!({"size": [size.0, size.1], "frames": frames}).to_string()
}

/// `tracks.json` text: frame times and, per track id, its boxes.
pub fn tracks_json(log: &TrackLog) -> String {
    let mut per_id: BTreeMap<u32, Vec<serde_json::Value>> = BTreeMap::new();
    for (f, boxes) in &log.frames {
        for b in boxes {
            per_id.entry(b.id).or_default().push(serde_json::json!({"frame": f, "box": b.bbox, "conf": b.conf}));
        }
    }
    let frames: serde_json::Map<String, serde_json::Value> =
        log.times.iter().map(|(f, t)| (f.to_string(), serde_json::json!(t))).collect();
    let tracks: Vec<serde_json::Value> =
        per_id.into_iter().map(|(id, boxes)| serde_json::json!({"id": id, "boxes": boxes})).collect();
    serde_json::json!({"frames": frames, "tracks": tracks}).to_string()
}

/// `boxes.json` and `tracks.json`.
pub fn write_boxes(
    dir: &Path,
    size: (u32, u32),
    detections: &BTreeMap<usize, Vec<PersonBox>>,
    log: &TrackLog,
) -> Result<()> {
    write_text(dir.join("boxes.json"), &boxes_json(size, detections))?;
    write_text(dir.join("tracks.json"), &tracks_json(log))
}

/// `report.html`.
pub fn write_report(dir: &Path, html: &str) -> Result<()> {
    write_text(dir.join("report.html"), html)
}
