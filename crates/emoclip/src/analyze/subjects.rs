//! Who is encoded in a window, with which boxes: the scene (every detected person, the official subject mask of src/datasets/meld.py + utils.py `bbox_to_mask`) and each tracked person alone (subject-aware prompting per person, issue 13 §3).
//!
//! For a window's frames (the `k` indices of [`super::frames`]) this gives one box set per frame and subject,
//! as a [`BoxFile`] keyed by frame index that the media layer turns into masks exactly as for `--boxes`:
//! - **scene**: all detections of the frame; the official confidence rule applies (a box counts when
//!   `conf > 0.5`, [`crate::media::BOX_CONF_THRESHOLD`]). No detection in any frame: an empty mask, flagged
//!   `no-person`.
//! - **person `id`**: that person's tracked box alone, without its confidence (a weak detection that the
//!   tracker assigned to the person is still the person); where the person was missed but its track is alive,
//!   the motion model's prediction when [`SubjectOptions::use_predicted`] (flag `predicted-boxes`), else an
//!   empty mask for that frame. A person enters a window when detected in at least
//!   [`SubjectOptions::min_detected`] of its frames.
use std::collections::BTreeMap;

use super::timeline::{mean_box, Subject};
use super::track::TrackLog;
use crate::media::{BoxFile, PersonBox};

/// How persons enter a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SubjectOptions {
    /// Use predicted boxes where a tracked person was not detected.
    pub use_predicted: bool,
    /// Frames of the window (of `k`) in which a person must be detected to be encoded (default 2 of 8).
    pub min_detected: usize,
}

impl Default for SubjectOptions {
    fn default() -> Self {
        Self { use_predicted: true, min_detected: 2 }
    }
}

/// One subject of one window.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowSubject {
    pub subject: Subject,
    /// Boxes per frame index of the window (every frame of the window has an entry, possibly empty).
    pub boxes: BoxFile,
    /// Mean box over the frames that have one (scene: of the union box of the persons counted).
    pub mean_box: Option<[f32; 4]>,
    /// Frames of the window (counting repeats) with at least one box.
    pub frames_with_box: usize,
    pub flags: Vec<String>,
}

fn union(boxes: &[PersonBox]) -> Option<[f32; 4]> {
    let mut it = boxes.iter().filter(|b| b.counts());
    let first = it.next()?;
    Some(it.fold([first.x1, first.y1, first.x2, first.y2], |u, b| {
        [u[0].min(b.x1), u[1].min(b.y1), u[2].max(b.x2), u[3].max(b.y2)]
    }))
}

/// The subjects of a window whose frames are `frames` (indices, possibly repeated), scene first, then persons
/// by id. `detections[f]`: every detection of frame `f`; `log`: the tracker's boxes.
pub fn window_subjects(
    frames: &[usize],
    detections: &BTreeMap<usize, Vec<PersonBox>>,
    log: &TrackLog,
    opts: SubjectOptions,
) -> Vec<WindowSubject> {
    let mut out = Vec::new();
    // scene
    let mut map = BTreeMap::new();
    let mut unions = vec![];
    let mut with_box = 0;
    for &f in frames {
        let d = detections.get(&f).cloned().unwrap_or_default();
        if let Some(u) = union(&d) {
            unions.push(u);
            with_box += 1;
        }
        map.insert(f, d);
    }
    out.push(WindowSubject {
        subject: Subject::Scene,
        boxes: BoxFile::per_frame(map),
        mean_box: mean_box(&unions),
        frames_with_box: with_box,
        flags: if unions.is_empty() { vec!["no-person".into()] } else { vec![] },
    });
    // persons
    let mut ids: Vec<u32> = frames.iter().filter_map(|f| log.frames.get(f)).flatten().map(|b| b.id).collect();
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        let detected = frames
            .iter()
            .filter(|f| log.frames.get(f).is_some_and(|b| b.iter().any(|b| b.id == id && b.detection.is_some())))
            .count();
        if detected < opts.min_detected.max(1) {
            continue;
        }
        let mut map = BTreeMap::new();
        let mut boxes = vec![];
        let mut predicted = false;
        for &f in frames {
            let tb = log.frames.get(&f).and_then(|v| v.iter().find(|b| b.id == id));
            let b = match tb {
                Some(b) if b.detection.is_some() => Some(b.bbox),
                Some(b) if opts.use_predicted => {
                    predicted = true;
                    Some(b.bbox)
                }
                _ => None,
            };
            if let Some(b) = b {
                boxes.push(b);
            }
            map.insert(f, b.map(|b| vec![PersonBox::new(b[0], b[1], b[2], b[3], None)]).unwrap_or_default());
        }
        out.push(WindowSubject {
            subject: Subject::Person(id),
            boxes: BoxFile::per_frame(map),
            mean_box: mean_box(&boxes),
            frames_with_box: boxes.len(),
            flags: if predicted { vec!["predicted-boxes".into()] } else { vec![] },
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::track::TrackedBox;

    fn tb(id: u32, x: f32, detection: Option<usize>) -> TrackedBox {
        TrackedBox { id, bbox: [x, 0.0, x + 10.0, 20.0], conf: detection.map(|_| 0.9), detection }
    }

    #[test]
    fn scene_and_persons_per_window() {
        let frames = [10, 11, 12, 12];
        let mut dets = BTreeMap::new();
        dets.insert(
            10,
            vec![PersonBox::new(0.0, 0.0, 10.0, 20.0, Some(0.9)), PersonBox::new(50.0, 0.0, 60.0, 20.0, Some(0.3))],
        );
        dets.insert(11, vec![PersonBox::new(2.0, 0.0, 12.0, 20.0, Some(0.9))]);
        dets.insert(12, vec![]);
        let mut log = TrackLog::default();
        log.frames.insert(10, vec![tb(1, 0.0, Some(0)), tb(2, 50.0, Some(1))]);
        log.frames.insert(11, vec![tb(1, 2.0, Some(0))]);
        log.frames.insert(12, vec![tb(1, 4.0, None)]);
        let s = window_subjects(&frames, &dets, &log, SubjectOptions::default());
        assert_eq!(s.iter().map(|w| w.subject).collect::<Vec<_>>(), vec![Subject::Scene, Subject::Person(1)]);
        // scene: all detections as given (the weak one does not count for the mask or the union)
        assert_eq!(s[0].boxes.boxes_for_frame(10).len(), 2);
        assert!(s[0].boxes.boxes_for_frame(12).is_empty());
        assert_eq!(s[0].frames_with_box, 2);
        assert_eq!(s[0].mean_box, Some([1.0, 0.0, 11.0, 20.0]));
        // person 1: detected twice, predicted in frame 12 (counted twice: it fills two slots)
        let p = &s[1];
        assert_eq!(p.frames_with_box, 4);
        assert_eq!(p.flags, vec!["predicted-boxes".to_string()]);
        assert_eq!(p.boxes.boxes_for_frame(12)[0].conf, None);
        assert_eq!(p.boxes.boxes_for_frame(12)[0].x1, 4.0);
        // person 2 is detected once: below min_detected 2; with 1 it enters, alone in its mask
        let s = window_subjects(&frames, &dets, &log, SubjectOptions { min_detected: 1, use_predicted: false });
        assert_eq!(s.len(), 3);
        assert_eq!(s[2].boxes.boxes_for_frame(10).len(), 1);
        assert!(s[2].boxes.boxes_for_frame(11).is_empty());
        assert!(s[1].boxes.boxes_for_frame(12).is_empty() && s[1].flags.is_empty());
    }

    #[test]
    fn nobody_gives_an_empty_flagged_scene() {
        let s = window_subjects(&[0, 1], &BTreeMap::new(), &TrackLog::default(), SubjectOptions::default());
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].flags, vec!["no-person".to_string()]);
        assert_eq!(s[0].mean_box, None);
        assert!(s[0].boxes.boxes_for_frame(0).is_empty() && s[0].boxes.boxes_for_frame(1).is_empty());
    }
}
