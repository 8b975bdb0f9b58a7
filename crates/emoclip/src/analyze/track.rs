//! Multi-person tracker giving each person one id across the analysed frames of a video: SORT's Kalman prediction and Hungarian assignment (Bewley et al. 2016), DeepSORT's Mahalanobis gate (Wojke et al. 2017) and ByteTrack's second stage for weak detections (Zhang et al. 2022, `byte_tracker.py`).
//!
//! Written here rather than taken from a crate: `similari` pulls in pyo3, geo and nalgebra (~100 crates), and
//! `trackforge`'s ByteTrack (nalgebra only, the lightest found) steps its Kalman filter once per frame with a
//! fixed frame interval, counts ages in frames and matches by IoU first, while analysis frames are sparse and
//! irregular (8 per window, gaps between caption windows): prediction here uses the real time step
//! ([`super::motion`]), ages are in seconds, and the first stage is motion-based. The assignment itself is
//! `pathfinding`'s Hungarian algorithm (Kuhn–Munkres).
//!
//! Per frame ([`Tracker::update`]):
//! 1. every live track predicts its box at the frame's time;
//! 2. detections with confidence ≥ `high_conf` are matched to all tracks by squared Mahalanobis distance
//!    under the prediction, gated at the χ² 95 % quantile (DeepSORT's gate), as one assignment minimising the
//!    total distance. At ~2 analysed frames per second a walker's boxes in consecutive frames overlap little:
//!    IoU-first matching (SORT, ByteTrack) then pairs a newborn track with the neighbour *behind* it in a
//!    group walking side by side, while the motion model's uncertainty, which grows with the time step,
//!    ranks the joint hypotheses correctly;
//! 3. detections with `low_conf ≤ confidence < high_conf` are matched to the remaining *confirmed* tracks
//!    (ByteTrack's second stage: occluded people give weak detections), by the same gated motion distance
//!    (ByteTrack uses IoU ≥ 0.5, which a weak, shifted box of a walker 0.5 s later often misses);
//! 4. the remaining high detections and tracks are matched by IoU ≥ `iou_min` (SORT's criterion), for boxes
//!    that still overlap when the motion model is off (a sudden stop or turn);
//! 5. an unmatched detection with confidence ≥ `new_track_conf` starts a tentative track; a track is
//!    confirmed, and only then given an id (1, 2, … in order of confirmation), after `min_hits` matches in
//!    consecutive analysed frames; a tentative track that misses a frame is dropped (SORT); a confirmed track
//!    that has not been matched for more than `max_age` seconds is deleted.
use std::collections::HashMap;

use pathfinding::prelude::{kuhn_munkres, Matrix};
use serde::Serialize;

use super::motion::{BoxFilter, MotionNoise, CHI2_95_4DOF};
use crate::media::PersonBox;

/// Tracker settings (defaults: ByteTrack's confidence thresholds, SORT's IoU threshold, DeepSORT's gate, ages for
/// ~2 analysed frames per second).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TrackerConfig {
    /// Detections at or above this confidence are "high" (ByteTrack `track_thresh` 0.5).
    pub high_conf: f32,
    /// Detections below this are ignored (ByteTrack keeps > 0.1 for its second stage).
    pub low_conf: f32,
    /// A new track needs a detection this confident (ByteTrack `det_thresh` = track_thresh + 0.1).
    pub new_track_conf: f32,
    /// Minimal IoU of a third-stage match (SORT `iou_threshold` 0.3).
    pub iou_min: f32,
    /// Gate of the motion stages: squared Mahalanobis distance (χ² 95 %, 4 dof); 0 turns them off.
    pub gate: f64,
    /// Matches in consecutive analysed frames before a track is confirmed and given an id.
    pub min_hits: usize,
    /// Seconds a confirmed track survives without a match.
    pub max_age: f64,
    pub noise: MotionNoise,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            high_conf: 0.5,
            low_conf: 0.1,
            new_track_conf: 0.6,
            iou_min: 0.3,
            gate: CHI2_95_4DOF,
            min_hits: 2,
            max_age: 2.0,
            noise: MotionNoise::default(),
        }
    }
}

/// A person box in one frame with its track id.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TrackedBox {
    /// Person id (1-based, stable across the video).
    pub id: u32,
    /// `[x1, y1, x2, y2]` in original-frame pixels: the detection's box, or the prediction when `detection`
    /// is `None`.
    pub bbox: [f32; 4],
    /// Detection confidence (`None` for a predicted box).
    pub conf: Option<f32>,
    /// Index of the matched detection in the frame's input list; `None`: the person was not detected in
    /// this frame (occluded or missed) and `bbox` is the motion model's prediction.
    pub detection: Option<usize>,
}

/// Result of one frame.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FrameTracks {
    /// Confirmed tracks matched in this frame (sorted by id).
    pub matched: Vec<TrackedBox>,
    /// Confirmed tracks alive but not matched in this frame, at their predicted box (sorted by id).
    pub predicted: Vec<TrackedBox>,
    /// Tracks confirmed in this frame: their earlier tentative matches, `(frame, box)` in frame order, so the
    /// caller can label those frames too.
    pub backfill: Vec<(usize, TrackedBox)>,
}

#[derive(Debug, Clone)]
struct Track {
    filter: BoxFilter,
    /// 0 while tentative.
    id: u32,
    hits: usize,
    /// Time of the last match.
    last_time: f64,
    /// Time the filter state refers to.
    state_time: f64,
    /// Tentative matches `(frame, box, conf, detection)` kept until confirmation.
    pending: Vec<(usize, [f32; 4], f32, usize)>,
}

/// The tracker state of one video.
#[derive(Debug, Clone)]
pub struct Tracker {
    pub config: TrackerConfig,
    tracks: Vec<Track>,
    next_id: u32,
    last_time: Option<f64>,
}

/// Intersection over union of `[x1, y1, x2, y2]` boxes (0 for empty boxes): the detector's, one copy.
pub use crate::detect::nms::iou;

/// Maximum-weight assignment of rows to columns; `weight(r, c)` is `None` for forbidden pairs. Returns
/// `(row, col)` pairs. Kuhn–Munkres on integer weights: feasible pairs get `BIG + w`, so the number of
/// feasible matches is maximised first and the total weight second; forbidden pairs get 0 and are dropped.
fn assign(rows: usize, cols: usize, weight: impl Fn(usize, usize) -> Option<f64>) -> Vec<(usize, usize)> {
    if rows == 0 || cols == 0 {
        return vec![];
    }
    const SCALE: f64 = 1e6;
    const BIG: i64 = 1 << 40;
    let transpose = rows > cols; // kuhn_munkres needs rows ≤ columns
    let (r, c) = if transpose { (cols, rows) } else { (rows, cols) };
    let mut m = Matrix::new(r, c, 0i64);
    let mut any = false;
    for i in 0..r {
        for j in 0..c {
            let (a, b) = if transpose { (j, i) } else { (i, j) };
            if let Some(w) = weight(a, b) {
                // weights are in [0, 1e4] here; clamp keeps BIG dominant
                m[(i, j)] = BIG + (w.clamp(0.0, 1e4) * SCALE).round() as i64;
                any = true;
            }
        }
    }
    if !any {
        return vec![];
    }
    let (_, cols_of) = kuhn_munkres(&m);
    cols_of
        .into_iter()
        .enumerate()
        .filter(|&(i, j)| m[(i, j)] > 0)
        .map(|(i, j)| if transpose { (j, i) } else { (i, j) })
        .collect()
}

impl Tracker {
    pub fn new(config: TrackerConfig) -> Self {
        Self { config, tracks: vec![], next_id: 1, last_time: None }
    }

    /// Number of ids given so far.
    pub fn ids_given(&self) -> u32 {
        self.next_id - 1
    }

    /// Processes the detections of frame `frame` presented at `time` seconds. Frames must come in time order;
    /// a frame whose time is not after the previous one's is treated as simultaneous (no motion).
    pub fn update(&mut self, frame: usize, time: f64, detections: &[PersonBox]) -> FrameTracks {
        let cfg = self.config;
        let time = self.last_time.map_or(time, |t| time.max(t));
        self.last_time = Some(time);
        for t in &mut self.tracks {
            t.filter.predict(time - t.state_time);
            t.state_time = time;
        }
        let conf = |d: &PersonBox| d.conf.unwrap_or(1.0);
        let bbox = |d: &PersonBox| [d.x1, d.y1, d.x2, d.y2];
        let high: Vec<usize> = (0..detections.len()).filter(|&i| conf(&detections[i]) >= cfg.high_conf).collect();
        let low: Vec<usize> =
            (0..detections.len()).filter(|&i| (cfg.low_conf..cfg.high_conf).contains(&conf(&detections[i]))).collect();
        let mut track_det: Vec<Option<usize>> = vec![None; self.tracks.len()];
        let predicted: Vec<[f32; 4]> = self.tracks.iter().map(|t| t.filter.bbox()).collect();

        let mut high_used = vec![false; high.len()];
        // Stage 1: high detections x all tracks, Mahalanobis-gated motion distance (minimal total).
        if cfg.gate > 0.0 {
            for (t, d) in assign(self.tracks.len(), high.len(), |t, d| {
                let d2 = self.tracks[t].filter.mahalanobis2(bbox(&detections[high[d]]));
                // weight decreasing in distance, positive inside the gate
                (d2 <= cfg.gate).then_some(cfg.gate - d2 + 1e-3)
            }) {
                track_det[t] = Some(high[d]);
                high_used[d] = true;
            }
        }
        // Stage 2: low detections x unmatched confirmed tracks, same motion distance.
        if cfg.gate > 0.0 {
            let rest: Vec<usize> =
                (0..self.tracks.len()).filter(|&t| track_det[t].is_none() && self.tracks[t].id > 0).collect();
            for (r, d) in assign(rest.len(), low.len(), |r, d| {
                let d2 = self.tracks[rest[r]].filter.mahalanobis2(bbox(&detections[low[d]]));
                (d2 <= cfg.gate).then_some(cfg.gate - d2 + 1e-3)
            }) {
                track_det[rest[r]] = Some(low[d]);
            }
        }
        // Stage 3: remaining high detections x remaining tracks, IoU.
        let rest: Vec<usize> = (0..self.tracks.len()).filter(|&t| track_det[t].is_none()).collect();
        let free: Vec<usize> = (0..high.len()).filter(|&d| !high_used[d]).collect();
        for (r, f) in assign(rest.len(), free.len(), |r, f| {
            let v = iou(&predicted[rest[r]], &bbox(&detections[high[free[f]]]));
            (v >= cfg.iou_min).then_some(v as f64)
        }) {
            track_det[rest[r]] = Some(high[free[f]]);
            high_used[free[f]] = true;
        }

        let mut out = FrameTracks::default();
        let mut keep = Vec::with_capacity(self.tracks.len());
        for (mut t, det) in std::mem::take(&mut self.tracks).into_iter().zip(track_det) {
            match det {
                Some(d) => {
                    let b = bbox(&detections[d]);
                    t.filter.update(b);
                    t.last_time = time;
                    t.hits += 1;
                    let c = conf(&detections[d]);
                    if t.id == 0 {
                        t.pending.push((frame, b, c, d));
                        if t.hits >= cfg.min_hits {
                            t.id = self.next_id;
                            self.next_id += 1;
                            let pending = std::mem::take(&mut t.pending);
                            let (last, earlier) = pending.split_last().expect("pending holds this frame's match");
                            for &(f, bb, cc, dd) in earlier {
                                out.backfill
                                    .push((f, TrackedBox { id: t.id, bbox: bb, conf: Some(cc), detection: Some(dd) }));
                            }
                            out.matched.push(TrackedBox {
                                id: t.id,
                                bbox: last.1,
                                conf: Some(last.2),
                                detection: Some(last.3),
                            });
                        }
                    } else {
                        out.matched.push(TrackedBox { id: t.id, bbox: b, conf: Some(c), detection: Some(d) });
                    }
                    keep.push(t);
                }
                None => {
                    // tentative: dropped on the first miss; confirmed: kept for max_age seconds
                    if t.id > 0 && time - t.last_time <= cfg.max_age {
                        out.predicted.push(TrackedBox { id: t.id, bbox: t.filter.bbox(), conf: None, detection: None });
                        keep.push(t);
                    }
                }
            }
        }
        // New tentative tracks (or confirmed at once when min_hits ≤ 1).
        for (k, &d) in high.iter().enumerate() {
            if high_used[k] || conf(&detections[d]) < cfg.new_track_conf {
                continue;
            }
            let b = bbox(&detections[d]);
            let mut t = Track {
                filter: BoxFilter::new(b, cfg.noise),
                id: 0,
                hits: 1,
                last_time: time,
                state_time: time,
                pending: vec![],
            };
            if cfg.min_hits <= 1 {
                t.id = self.next_id;
                self.next_id += 1;
                out.matched.push(TrackedBox {
                    id: t.id,
                    bbox: b,
                    conf: Some(conf(&detections[d])),
                    detection: Some(d),
                });
            } else {
                t.pending.push((frame, b, conf(&detections[d]), d));
            }
            keep.push(t);
        }
        self.tracks = keep;
        out.matched.sort_by_key(|b| b.id);
        out.predicted.sort_by_key(|b| b.id);
        out.backfill.sort_by_key(|(f, b)| (*f, b.id));
        out
    }
}

/// Every frame's tracked boxes of a whole video, with backfilled tentative matches: what `boxes.json` and the
/// per-person masks are made from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrackLog {
    /// frame → boxes (matched and predicted), sorted by id.
    pub frames: std::collections::BTreeMap<usize, Vec<TrackedBox>>,
    /// frame → presentation time (s).
    pub times: std::collections::BTreeMap<usize, f64>,
}

impl TrackLog {
    /// Runs `tracker` over `(frame, time, detections)` in time order and collects the results.
    pub fn run<'a>(tracker: &mut Tracker, frames: impl IntoIterator<Item = (usize, f64, &'a [PersonBox])>) -> Self {
        let mut log = TrackLog::default();
        for (f, t, dets) in frames {
            let r = tracker.update(f, t, dets);
            log.record(f, t, r);
        }
        log
    }

    /// Adds one frame's result (and its backfill to earlier frames).
    pub fn record(&mut self, frame: usize, time: f64, r: FrameTracks) {
        self.times.insert(frame, time);
        let e = self.frames.entry(frame).or_default();
        e.extend(r.matched);
        e.extend(r.predicted);
        e.sort_by_key(|b| b.id);
        for (f, b) in r.backfill {
            let e = self.frames.entry(f).or_default();
            e.push(b);
            e.sort_by_key(|b| b.id);
        }
    }

    /// Ids seen, ascending.
    pub fn ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self.frames.values().flatten().map(|b| b.id).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Per id, the frames where the person was detected (not predicted), in order.
    pub fn detected_frames(&self) -> HashMap<u32, Vec<usize>> {
        let mut m: HashMap<u32, Vec<usize>> = HashMap::new();
        for (&f, boxes) in &self.frames {
            for b in boxes.iter().filter(|b| b.detection.is_some()) {
                m.entry(b.id).or_default().push(f);
            }
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_basics() {
        assert_eq!(iou(&[0.0, 0.0, 10.0, 10.0], &[0.0, 0.0, 10.0, 10.0]), 1.0);
        assert_eq!(iou(&[0.0, 0.0, 10.0, 10.0], &[10.0, 0.0, 20.0, 10.0]), 0.0);
        assert!((iou(&[0.0, 0.0, 10.0, 10.0], &[5.0, 0.0, 15.0, 10.0]) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(iou(&[0.0, 0.0, 0.0, 0.0], &[0.0, 0.0, 0.0, 0.0]), 0.0);
    }

    #[test]
    fn assignment_maximises_matches_then_weight() {
        // greedy on the best pair (0,0)=0.9 would leave row 1 unmatched; Hungarian matches both
        let w = [[Some(0.9), Some(0.8)], [Some(0.85), None]];
        let mut m = assign(2, 2, |r, c| w[r][c]);
        m.sort();
        assert_eq!(m, vec![(0, 1), (1, 0)]);
        // more rows than columns (transposed internally)
        let m = assign(3, 1, |r, _| (r == 2).then_some(0.5));
        assert_eq!(m, vec![(2, 0)]);
        assert!(assign(2, 2, |_, _| None).is_empty());
        assert!(assign(0, 3, |_, _| Some(1.0)).is_empty());
    }
}
