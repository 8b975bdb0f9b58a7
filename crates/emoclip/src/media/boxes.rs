//! Person boxes → binary subject masks; mirrors the official `get_correct_bbox` + `bbox_to_mask` (src/datasets/utils.py) as used in src/datasets/meld.py.
//!
//! # Box file format (JSON)
//!
//! Boxes are `[x1, y1, x2, y2]` or `[x1, y1, x2, y2, conf]` in pixels of the ORIGINAL frame
//! (the decoded video frame or the image as stored), `x2 > x1`, `y2 > y1`, all finite;
//! coordinates may lie partly outside the frame (they are clipped). `conf`, when present,
//! must be in `[0, 1]`; a box without `conf` always counts (as if `conf = 1`). Either one set
//! of boxes for the whole clip:
//!
//! ```json
//! {"boxes": [[103.7, 50.2, 300.1, 500.9, 0.9], [400, 10, 700, 300]]}
//! ```
//!
//! or boxes per ORIGINAL frame index (0-based, numbered as the ffmpeg CLI writes the frames, the same numbering as
//! [`DecodedClip::indices`](super::DecodedClip)):
//!
//! ```json
//! {"frames": {"0": [[10, 20, 200, 400, 0.8]], "12": [], "24": [[15, 22, 210, 405]]}}
//! ```
//!
//! For a per-frame file, a frame without an entry uses the nearest EARLIER annotated frame
//! (detections run every few frames carry forward); a frame before the first entry has no
//! boxes (empty mask). An explicit empty list means "no person in this frame".
//! An optional `"size": [width, height]` states the frame size the boxes were made for; see
//! [`BoxFile::check_frame_size`]. Unknown keys are rejected, to catch typos.
//!
//! # Mask semantics (official)
//!
//! The official box files hold YOLOv5 coordinates of the frame letterboxed into 640×640,
//! i.e. original pixels times `r0 = min(640/W, 640/H)`; `get_correct_bbox` divides them by
//! `r = min(640/w', 640/h')` of the RESIZED frame (`w'×h'`, short side 256). For boxes in
//! original pixels this is the single factor `r0 / r` (= long side resized / long side original)
//! for both axes, which is what [`resized_mask`] applies, with the same f64 operations
//! (`x * r0 / r`) so results are bit-identical to the official code. Then, as officially:
//! `x1 = max(floor(x1'), 0)`, `y1 = max(floor(y1'), 0)`, `x2 = min(ceil(x2'), w')`,
//! `y2 = min(ceil(y2'), h')`, and every box with `conf > 0.5` sets `mask[y1..y2, x1..x2] = 1`
//! on a zero `h'×w'` mask, which is then centre-cropped exactly like the frame.
//! One deliberate difference: a box lying entirely left of / above the frame would give
//! negative Python slice ends (which wrap around) officially; here it is simply empty.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{Error, Result};

/// Boxes with a confidence at or below this are ignored (official `BBOX_TO_MASK_THRESHOLD`).
pub const BOX_CONF_THRESHOLD: f32 = 0.5;

/// A person box in original-frame pixels; `conf: None` means "always use this box".
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PersonBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
    pub conf: Option<f32>,
}

impl PersonBox {
    pub fn new(x1: f32, y1: f32, x2: f32, y2: f32, conf: Option<f32>) -> Self {
        Self { x1, y1, x2, y2, conf }
    }

    /// Whether the box takes part in the mask (`conf > 0.5`, or no confidence given).
    pub fn counts(&self) -> bool {
        self.conf.is_none_or(|c| c > BOX_CONF_THRESHOLD)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum BoxSet {
    Clip(Vec<PersonBox>),
    Frames(BTreeMap<usize, Vec<PersonBox>>),
}

/// A parsed box file (see the module documentation for the format).
#[derive(Debug, Clone, PartialEq)]
pub struct BoxFile {
    path: PathBuf,
    set: BoxSet,
    size: Option<(u32, u32)>,
}

impl BoxFile {
    /// One set of boxes for every frame.
    pub fn clip(boxes: Vec<PersonBox>) -> Self {
        Self { path: PathBuf::new(), set: BoxSet::Clip(boxes), size: None }
    }

    /// Boxes per original frame index.
    pub fn per_frame(frames: BTreeMap<usize, Vec<PersonBox>>) -> Self {
        Self { path: PathBuf::new(), set: BoxSet::Frames(frames), size: None }
    }

    /// The same boxes, declared for `width×height` frames (see [`Self::check_frame_size`]).
    pub fn with_size(mut self, width: u32, height: u32) -> Self {
        self.size = Some((width, height));
        self
    }

    /// The same boxes, naming `path` in errors (e.g. the annotation file they were read from).
    pub fn with_origin(mut self, path: &Path) -> Self {
        self.path = path.to_path_buf();
        self
    }

    /// The file this was loaded from (empty when built in code).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The frame size declared in the file (`"size": [w, h]`), if any.
    pub fn frame_size(&self) -> Option<(u32, u32)> {
        self.size
    }

    /// Boxes for original frame `frame_index`: the clip-wide set, the frame's own entry, or
    /// the nearest earlier annotated frame's; empty before the first annotated frame.
    pub fn boxes_for_frame(&self, frame_index: usize) -> &[PersonBox] {
        match &self.set {
            BoxSet::Clip(b) => b,
            BoxSet::Frames(m) => m.range(..=frame_index).next_back().map_or(&[], |(_, b)| b.as_slice()),
        }
    }

    /// The boxes that count (`conf > 0.5`, or no confidence) but lie entirely outside a `width×height` frame,
    /// so they add nothing to any mask (typically coordinates made for another frame size, or a column mix-up).
    pub fn boxes_outside(&self, width: u32, height: u32) -> Vec<PersonBox> {
        let (w, h) = (width as f32, height as f32);
        let all: Vec<&PersonBox> = match &self.set {
            BoxSet::Clip(b) => b.iter().collect(),
            BoxSet::Frames(m) => m.values().flatten().collect(),
        };
        all.into_iter()
            .filter(|b| b.counts() && (b.x2 <= 0.0 || b.y2 <= 0.0 || b.x1 >= w || b.y1 >= h))
            .copied()
            .collect()
    }

    /// Error if the file declares a frame size different from the media's.
    pub fn check_frame_size(&self, width: u32, height: u32) -> Result<()> {
        match self.size {
            Some((w, h)) if (w, h) != (width, height) => Err(Error::Boxes {
                path: self.path.clone(),
                msg: format!(
                    "the boxes were made for {w}x{h} frames but the media is {width}x{height}; \
                     use the box file that belongs to this media, or rescale its boxes to {width}x{height}"
                ),
            }),
            _ => Ok(()),
        }
    }
}

/// Read and validate a box file (format in the module documentation).
pub fn load_boxes(path: &Path) -> Result<BoxFile> {
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            Error::Boxes { path: path.to_path_buf(), msg: "file not found; check the path".into() }
        }
        _ => Error::io(path, e),
    })?;
    parse_boxes(&text, path)
}

/// Parse box JSON; `origin` is only used in error messages.
pub fn parse_boxes(json: &str, origin: &Path) -> Result<BoxFile> {
    let bad = |msg: String| {
        Error::Boxes {
        path: origin.to_path_buf(),
        msg: format!("{msg}; expected {{\"boxes\": [[x1,y1,x2,y2,conf?],...]}} or {{\"frames\": {{\"<frame index>\": [[x1,y1,x2,y2,conf?],...]}}}}"),
    }
    };
    let root: Value = serde_json::from_str(json).map_err(|e| bad(format!("not valid JSON ({e})")))?;
    let obj = root.as_object().ok_or_else(|| bad("the top level must be a JSON object".into()))?;
    for key in obj.keys() {
        if !matches!(key.as_str(), "boxes" | "frames" | "size") {
            return Err(bad(format!("unknown key `{key}` (allowed: boxes, frames, size)")));
        }
    }
    let size = match obj.get("size") {
        None => None,
        Some(v) => {
            let dims: Option<Vec<u32>> = v
                .as_array()
                .filter(|a| a.len() == 2)
                .map(|a| a.iter().filter_map(|d| d.as_u64().and_then(|d| u32::try_from(d).ok())).collect());
            match dims.as_deref() {
                Some([w, h]) if *w > 0 && *h > 0 => Some((*w, *h)),
                _ => return Err(bad(format!("`size` must be [width, height] with positive integers, got {v}"))),
            }
        }
    };
    let set = match (obj.get("boxes"), obj.get("frames")) {
        (Some(_), Some(_)) => return Err(bad("give either `boxes` or `frames`, not both".into())),
        (None, None) => return Err(bad("no `boxes` or `frames` key".into())),
        (Some(b), None) => BoxSet::Clip(parse_list(b, "boxes").map_err(bad)?),
        (None, Some(f)) => {
            let frames = f.as_object().ok_or_else(|| bad("`frames` must be an object keyed by frame index".into()))?;
            let mut map = BTreeMap::new();
            for (k, v) in frames {
                let idx: usize = k
                    .trim()
                    .parse()
                    .map_err(|_| bad(format!("frame key `{k}` is not a non-negative integer frame index")))?;
                if map.insert(idx, parse_list(v, &format!("frames.{k}")).map_err(bad)?).is_some() {
                    return Err(bad(format!("frame {idx} is given twice")));
                }
            }
            BoxSet::Frames(map)
        }
    };
    Ok(BoxFile { path: origin.to_path_buf(), set, size })
}

fn parse_list(v: &Value, what: &str) -> std::result::Result<Vec<PersonBox>, String> {
    let arr = v.as_array().ok_or_else(|| format!("`{what}` must be a list of boxes"))?;
    arr.iter().enumerate().map(|(i, b)| parse_box(b, &format!("{what}[{i}]"))).collect()
}

fn parse_box(v: &Value, what: &str) -> std::result::Result<PersonBox, String> {
    let arr = v
        .as_array()
        .filter(|a| a.len() == 4 || a.len() == 5)
        .ok_or_else(|| format!("{what} must be [x1, y1, x2, y2] or [x1, y1, x2, y2, conf], got {v}"))?;
    let mut n = [0f32; 5];
    for (j, x) in arr.iter().enumerate() {
        let f = x.as_f64().ok_or_else(|| format!("{what}[{j}] is not a number: {x}"))? as f32;
        if !f.is_finite() {
            return Err(format!("{what}[{j}] is not a finite number: {x}"));
        }
        n[j] = f;
    }
    let conf = (arr.len() == 5).then_some(n[4]);
    if let Some(c) = conf {
        if !(0.0..=1.0).contains(&c) {
            return Err(format!(
                "{what}: confidence {c} is outside [0, 1] (is the column order x1, y1, x2, y2, conf?)"
            ));
        }
    }
    if n[2] <= n[0] {
        return Err(format!("{what}: x2 ({}) must be greater than x1 ({}) (corners, not width/height)", n[2], n[0]));
    }
    if n[3] <= n[1] {
        return Err(format!("{what}: y2 ({}) must be greater than y1 ({}) (corners, not width/height)", n[3], n[1]));
    }
    Ok(PersonBox { x1: n[0], y1: n[1], x2: n[2], y2: n[3], conf })
}

/// The binary subject mask (row-major, `rh*rw`, values 0/1) at the resized resolution
/// `rw×rh` for boxes given in pixels of the `ow×oh` original frame (official rounding, see the
/// module documentation).
pub fn resized_mask(ow: u32, oh: u32, rw: u32, rh: u32, boxes: &[PersonBox]) -> Vec<u8> {
    let mut mask = vec![0u8; rw as usize * rh as usize];
    if ow == 0 || oh == 0 || rw == 0 || rh == 0 {
        return mask;
    }
    // YOLO letterbox ratio of the original frame, and the official one of the resized frame.
    let r0 = (640.0 / ow as f64).min(640.0 / oh as f64);
    let r = (640.0 / rw as f64).min(640.0 / rh as f64);
    let map = |v: f32| v as f64 * r0 / r;
    for b in boxes.iter().filter(|b| b.counts()) {
        let x1 = map(b.x1).floor().max(0.0);
        let y1 = map(b.y1).floor().max(0.0);
        let x2 = map(b.x2).ceil().min(rw as f64);
        let y2 = map(b.y2).ceil().min(rh as f64);
        if !(x2 > x1 && y2 > y1) {
            continue; // entirely outside (or degenerate after rounding)
        }
        let (x1, y1, x2, y2) = (x1 as usize, y1 as usize, x2 as usize, y2 as usize);
        for row in mask.chunks_exact_mut(rw as usize).take(y2).skip(y1) {
            row[x1..x2].fill(1);
        }
    }
    mask
}

/// The Emotic subject mask (row-major, `rh*rw`, 0/1) at the resized resolution `rw×rh` for boxes in pixels
/// of the `ow×oh` original image; mirrors src/datasets/emotic.py `get_correct_bbox`: `r = min(ow/rw, oh/rh)`
/// (f64), `x1 = max(floor(x1/r), 0)`, `y1 = max(floor(y1/r), 0)`, `x2 = min(ceil(x2/r), rw)`,
/// `y2 = min(ceil(y2/r), rh)`, filled for every box with `conf > 0.5` (or none).
pub fn scaled_mask(ow: u32, oh: u32, rw: u32, rh: u32, boxes: &[PersonBox]) -> Vec<u8> {
    let mut mask = vec![0u8; rw as usize * rh as usize];
    if ow == 0 || oh == 0 || rw == 0 || rh == 0 {
        return mask;
    }
    let r = (ow as f64 / rw as f64).min(oh as f64 / rh as f64);
    for b in boxes.iter().filter(|b| b.counts()) {
        let x1 = (b.x1 as f64 / r).floor().max(0.0);
        let y1 = (b.y1 as f64 / r).floor().max(0.0);
        let x2 = (b.x2 as f64 / r).ceil().min(rw as f64);
        let y2 = (b.y2 as f64 / r).ceil().min(rh as f64);
        if !(x2 > x1 && y2 > y1) {
            continue;
        }
        let (x1, y1, x2, y2) = (x1 as usize, y1 as usize, x2 as usize, y2 as usize);
        for row in mask.chunks_exact_mut(rw as usize).take(y2).skip(y1) {
            row[x1..x2].fill(1);
        }
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("t.json")
    }

    #[test]
    fn parses_both_forms() {
        let f = parse_boxes(r#"{"boxes": [[1, 2, 3, 4], [5, 6, 7.5, 8, 0.9]]}"#, p()).unwrap();
        assert_eq!(f.boxes_for_frame(123).len(), 2);
        assert_eq!(f.boxes_for_frame(0)[0].conf, None);
        let f = parse_boxes(r#"{"frames": {"2": [[1,2,3,4]], "10": []}, "size": [640, 480]}"#, p()).unwrap();
        assert!(f.boxes_for_frame(0).is_empty());
        assert_eq!(f.boxes_for_frame(2).len(), 1);
        assert_eq!(f.boxes_for_frame(9).len(), 1);
        assert!(f.boxes_for_frame(10).is_empty());
        assert!(f.check_frame_size(640, 480).is_ok());
        assert!(f.check_frame_size(480, 640).is_err());
    }

    #[test]
    fn rejects_bad_files() {
        for (json, needle) in [
            ("[1,2]", "top level"),
            ("{", "not valid JSON"),
            (r#"{"boxes": [[3, 2, 1, 4]]}"#, "x2 (1) must be greater than x1 (3)"),
            (r#"{"boxes": [[1, 4, 3, 4]]}"#, "y2"),
            (r#"{"boxes": [[1, 2, 3]]}"#, "boxes[0] must be"),
            (r#"{"boxes": [[1, 2, 3, "x"]]}"#, "not a number"),
            (r#"{"boxes": [[1, 2, 3, 4, 7]]}"#, "outside [0, 1]"),
            (r#"{"boxes": [[1, 2, 3, 1e999]]}"#, "not valid JSON"),
            (r#"{"boxes": [], "frames": {}}"#, "not both"),
            (r#"{"frames": {"a": []}}"#, "frame key `a`"),
            (r#"{"box": []}"#, "unknown key `box`"),
            (r#"{"boxes": [], "size": [0, 3]}"#, "size"),
        ] {
            let e = parse_boxes(json, p()).unwrap_err().to_string();
            assert!(e.contains("t.json") && e.contains(needle), "{json}: {e}");
        }
    }

    #[test]
    fn boxes_outside_the_frame() {
        let f = parse_boxes(
            r#"{"frames": {"0": [[1, 2, 3, 4], [700, 10, 800, 50]], "5": [[-50, -50, -1, 20], [10, 10, 20, 20, 0.2]]}}"#,
            p(),
        )
        .unwrap();
        let out = f.boxes_outside(640, 480);
        assert_eq!(
            out,
            vec![PersonBox::new(700.0, 10.0, 800.0, 50.0, None), PersonBox::new(-50.0, -50.0, -1.0, 20.0, None)]
        );
        // A box overlapping the frame by one pixel is inside; low-confidence boxes never count.
        let f =
            parse_boxes(r#"{"boxes": [[639, 479, 900, 900], [-9, -9, 1, 1], [1000, 0, 1001, 1, 0.4]]}"#, p()).unwrap();
        assert!(f.boxes_outside(640, 480).is_empty());
    }

    #[test]
    fn mask_rounding_and_threshold() {
        // same size: factor 1; floor/ceil outward
        let m = resized_mask(10, 10, 10, 10, &[PersonBox::new(1.5, 2.0, 3.2, 4.0, None)]);
        let ones: Vec<(usize, usize)> = (0..100).filter(|i| m[*i] == 1).map(|i| (i / 10, i % 10)).collect();
        assert_eq!(ones, vec![(2, 1), (2, 2), (2, 3), (3, 1), (3, 2), (3, 3)]);
        let m = resized_mask(10, 10, 10, 10, &[PersonBox::new(1.0, 1.0, 5.0, 5.0, Some(0.5))]);
        assert!(m.iter().all(|v| *v == 0));
        // entirely outside: empty (the official code would wrap negative slice indices)
        let m = resized_mask(10, 10, 10, 10, &[PersonBox::new(-9.0, -9.0, -2.0, -2.0, None)]);
        assert!(m.iter().all(|v| *v == 0));
        let m = resized_mask(10, 10, 10, 10, &[PersonBox::new(12.0, 0.0, 20.0, 5.0, None)]);
        assert!(m.iter().all(|v| *v == 0));
    }
}
