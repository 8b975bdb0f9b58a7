//! OpenPose joints of a BoLD clip (`joints/<clip>.npy`, rows `[frame, person, 18 × (x, y, confidence)]`) → one person box per frame; mirrors src/datasets/bold.py `_load_all_joints` + `joints_to_bbox`.
//!
//! Official semantics, reproduced exactly:
//! - the frame column is renumbered over the whole file, `frame − min(frame) + 1`, so that the first frame
//!   with joints is frame 1, the number of `mmextract/<clip>/img_00001.jpg`;
//! - the rows of the annotated person (`person == person_id`) each give one box: the joints that are not all
//!   zero, `[floor(x_min), floor(y_min), ceil(x_max), ceil(y_max)]` in pixels of the original frame (no
//!   padding); if a frame has several rows for the person the last one wins (Python `dict`);
//! - a frame without a row for the person has no box (`dict.get(frame, [])`), which is written as an explicit
//!   empty entry so that [`BoxFile`] does not carry the previous frame's box forward.
//!
//! A row whose joints are all zero would make the official `min()` fail; here that frame simply has no box.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::boxes::{BoxFile, PersonBox};
use crate::{Error, Result};

/// Number of OpenPose (COCO-18) joints per row.
pub const NUM_JOINTS: usize = 18;
/// Columns per row: frame, person, then `(x, y, confidence)` per joint.
pub const JOINT_COLUMNS: usize = 2 + 3 * NUM_JOINTS;

/// The joints of one clip, frames renumbered from 1.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipJoints {
    pub path: PathBuf,
    /// Rows of [`JOINT_COLUMNS`] values; column 0 renumbered.
    pub rows: Vec<[f64; JOINT_COLUMNS]>,
}

impl ClipJoints {
    /// Reads `path` (`.npy`, float or integer, shape `[N, 56]`) with candle's npy parser and renumbers frames.
    pub fn load(path: &Path) -> Result<Self> {
        let bad = |msg: String| Error::Data { path: path.to_path_buf(), msg };
        if !path.is_file() {
            return Err(bad("joints file not found; BoLD keeps OpenPose joints in joints/<clip>.npy".into()));
        }
        let t = candle_core::Tensor::read_npy(path)
            .map_err(|e| bad(format!("not a readable .npy array ({e}); re-download the BoLD joints")))?;
        let dims = t.dims().to_vec();
        if dims.len() != 2 || dims[1] != JOINT_COLUMNS {
            return Err(bad(format!(
                "joints array has shape {dims:?}, expected [frames, {JOINT_COLUMNS}] (frame, person, {NUM_JOINTS} joints × (x, y, confidence)); is this the BoLD joints file?"
            )));
        }
        let v: Vec<Vec<f64>> = t
            .to_dtype(candle_core::DType::F64)
            .and_then(|t| t.to_vec2())
            .map_err(|e| bad(format!("cannot convert the joints to numbers ({e})")))?;
        Self::from_rows(path, v)
    }

    /// Builds from raw rows (frame column not yet renumbered).
    pub fn from_rows(path: &Path, raw: Vec<Vec<f64>>) -> Result<Self> {
        let bad = |msg: String| Error::Data { path: path.to_path_buf(), msg };
        let mut rows = Vec::with_capacity(raw.len());
        for (i, r) in raw.into_iter().enumerate() {
            let r: [f64; JOINT_COLUMNS] = r
                .try_into()
                .map_err(|r: Vec<f64>| bad(format!("row {i} has {} values, expected {JOINT_COLUMNS}", r.len())))?;
            if let Some(j) = r.iter().position(|v| !v.is_finite()) {
                return Err(bad(format!("row {i}, column {j} is not a finite number")));
            }
            if r[0] < 0.0 || r[0].fract() != 0.0 {
                return Err(bad(format!("row {i}: frame {} is not a non-negative integer", r[0])));
            }
            rows.push(r);
        }
        let min = rows.iter().map(|r| r[0]).fold(f64::INFINITY, f64::min);
        for r in &mut rows {
            r[0] = r[0] - min + 1.0;
        }
        Ok(Self { path: path.to_path_buf(), rows })
    }

    /// Per-frame boxes of `person_id` (see the module documentation), keyed by renumbered frame.
    pub fn person_boxes(&self, person_id: i64) -> BoxFile {
        let mut map: BTreeMap<usize, Vec<PersonBox>> = BTreeMap::new();
        for r in self.rows.iter().filter(|r| r[1] == person_id as f64) {
            map.insert(r[0] as usize, joints_box(&r[2..]).into_iter().collect());
        }
        // explicit "no box" for every frame without a row, up to one past the last
        let last = map.keys().next_back().copied().unwrap_or(0);
        for f in 0..=last + 1 {
            map.entry(f).or_default();
        }
        BoxFile::per_frame(map)
    }
}

/// Box of one row's joints (`[x, y, c] × 18`): min/max over the joints that are not all zero, floored /
/// ceiled; `None` when every joint is zero.
pub fn joints_box(joints: &[f64]) -> Option<PersonBox> {
    let (mut x0, mut y0, mut x1, mut y1) = (f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY);
    for j in joints.chunks_exact(3).filter(|j| j.iter().any(|v| *v != 0.0)) {
        x0 = x0.min(j[0]);
        y0 = y0.min(j[1]);
        x1 = x1.max(j[0]);
        y1 = y1.max(j[1]);
    }
    (x0.is_finite())
        .then(|| PersonBox::new(x0.floor() as f32, y0.floor() as f32, x1.ceil() as f32, y1.ceil() as f32, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(frame: f64, person: f64, pts: &[(f64, f64, f64)]) -> Vec<f64> {
        let mut r = vec![frame, person];
        for k in 0..NUM_JOINTS {
            let p = pts.get(k).copied().unwrap_or((0.0, 0.0, 0.0));
            r.extend([p.0, p.1, p.2]);
        }
        r
    }

    #[test]
    fn boxes_per_person_and_frame() {
        let rows = vec![
            row(10.0, 0.0, &[(5.5, 6.2, 0.9), (20.1, 3.0, 0.1)]),
            row(10.0, 1.0, &[(50.0, 50.0, 0.9)]),
            row(12.0, 0.0, &[(1.0, 2.0, 0.3), (0.0, 0.0, 0.0), (4.0, 9.5, 0.2)]),
            row(13.0, 0.0, &[]),
        ];
        let j = ClipJoints::from_rows(Path::new("j.npy"), rows).unwrap();
        let b = j.person_boxes(0);
        assert_eq!(b.boxes_for_frame(1), &[PersonBox::new(5.0, 3.0, 21.0, 7.0, None)]);
        assert!(b.boxes_for_frame(2).is_empty()); // frame 11 → 2: no row, no carry-over
        assert_eq!(b.boxes_for_frame(3), &[PersonBox::new(1.0, 2.0, 4.0, 10.0, None)]);
        assert!(b.boxes_for_frame(4).is_empty()); // all joints zero
        assert!(b.boxes_for_frame(99).is_empty());
        assert_eq!(j.person_boxes(1).boxes_for_frame(1), &[PersonBox::new(50.0, 50.0, 50.0, 50.0, None)]);
        let e = ClipJoints::from_rows(Path::new("j.npy"), vec![vec![1.0; 5]]).unwrap_err().to_string();
        assert!(e.contains("j.npy") && e.contains("expected 56"), "{e}");
    }
}
