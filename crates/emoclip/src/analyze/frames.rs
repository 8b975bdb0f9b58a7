//! Which frames a window uses, chosen by presentation time (variable frame rate and non-zero start times handled); the official sampler is `np.linspace(0, n-1, 8, dtype=int)` over a clip's frame indices (src/datasets/meld.py).
//!
//! # Definitions
//!
//! A stream's frames, in presentation order, have presentation times `pts[0] ≤ pts[1] ≤ …` in seconds of
//! media time (the decoder subtracts the container's start time; the first frame may well start after 0).
//! Frame `i` is *presented* during `[pts[i], pts[i+1])`; the frame presented at time `t` is therefore the
//! **last frame with `pts ≤ t`**, and the first frame for a `t` before it ([`frame_at`]).
//!
//! [`FrameTiming::Centers`] (default): a window `[t0, t1)` with `k` frames uses the target times
//! `t_i = t0 + (i + ½)·(t1 − t0)/k`, `i = 0…k−1` — the centres of `k` equal slices of the window — and the
//! frame presented at each. This is uniform in *time* whatever the frame rate, never touches the excluded end
//! `t1`, and windows whose starts differ by a multiple of `(t1 − t0)/k` share target times exactly (the default
//! 4 s / 2 s windows with 8 frames share 4 frames with each neighbour), so shared frames are decoded,
//! converted, detected and tracked once. With `k` larger than the number of frames in the window, frames
//! repeat, as in the official sampler.
//!
//! [`FrameTiming::Linspace`]: the official rule on the window's own frames — those with `t0 ≤ pts < t1`,
//! indices `a..=b` — picks `a + uniform_indices(b − a + 1, k)` (`np.linspace(0, n−1, k, dtype=int)`), so for a
//! constant-rate clip cut at the window it is exactly what the official loader would take. It needs the
//! frame times of the whole window before choosing, so it is not available to [`StreamSelector`]. A window
//! holding no frame start (shorter than a frame's duration) uses the frame presented at `t0`.
use std::collections::BTreeSet;

use super::window::Window;
use crate::media::uniform_indices;
use crate::{Error, Result};

/// How a window's frames are placed in time (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FrameTiming {
    /// Centres of `k` equal slices of the window, by presentation time.
    #[default]
    Centers,
    /// The official `np.linspace(0, n−1, k, dtype=int)` over the frames inside the window.
    Linspace,
}

/// Target times of a window `[t0, t1)` with `k` frames under [`FrameTiming::Centers`].
pub fn target_times(t0: f64, t1: f64, k: usize) -> Vec<f64> {
    let step = (t1 - t0) / k as f64;
    (0..k).map(|i| t0 + (i as f64 + 0.5) * step).collect()
}

/// Index of the frame presented at `t`: the last one with `pts ≤ t`, or 0 when `t` precedes every frame.
/// `pts` must be non-decreasing and non-empty (see [`check_pts`]).
pub fn frame_at(pts: &[f64], t: f64) -> usize {
    pts.partition_point(|&p| p <= t).saturating_sub(1)
}

/// Errors unless `pts` is non-empty, finite and non-decreasing (presentation order).
pub fn check_pts(pts: &[f64]) -> Result<()> {
    if pts.is_empty() {
        return Err(Error::Msg("the video has no decodable frames".into()));
    }
    if let Some(i) = pts.iter().position(|p| !p.is_finite()) {
        return Err(Error::NonFinite(format!("frame {i} has presentation time {}", pts[i])));
    }
    if let Some(i) = pts.windows(2).position(|w| w[1] < w[0]) {
        return Err(Error::Msg(format!(
            "frame times go backwards at frame {} ({} s after {} s): frames must be given in presentation order",
            i + 1,
            pts[i + 1],
            pts[i]
        )));
    }
    Ok(())
}

/// The `k` frame indices a window uses (module documentation), given every frame's presentation time.
pub fn window_frames(pts: &[f64], t0: f64, t1: f64, k: usize, timing: FrameTiming) -> Vec<usize> {
    if pts.is_empty() || k == 0 {
        return Vec::new();
    }
    match timing {
        FrameTiming::Centers => target_times(t0, t1, k).into_iter().map(|t| frame_at(pts, t)).collect(),
        FrameTiming::Linspace => {
            let a = pts.partition_point(|&p| p < t0);
            let b = pts.partition_point(|&p| p < t1); // one past the last frame starting before t1
            if b <= a {
                return vec![frame_at(pts, t0); k];
            }
            uniform_indices(b - a, k).into_iter().map(|i| a + i).collect()
        }
    }
}

/// Frames of every window, and their union: the only frames the decoder needs to convert.
#[derive(Debug, Clone, PartialEq)]
pub struct FramePlan {
    /// `per_window[w]`: the `k` frame indices of window `w`, in time order (indices may repeat).
    pub per_window: Vec<Vec<usize>>,
    /// Sorted, without duplicates.
    pub needed: Vec<usize>,
}

/// [`window_frames`] for every window, with the union of the frames they use.
pub fn plan_frames(pts: &[f64], windows: &[Window], k: usize, timing: FrameTiming) -> Result<FramePlan> {
    check_pts(pts)?;
    let per_window: Vec<Vec<usize>> = windows.iter().map(|w| window_frames(pts, w.start, w.end, k, timing)).collect();
    let needed: BTreeSet<usize> = per_window.iter().flatten().copied().collect();
    Ok(FramePlan { per_window, needed: needed.into_iter().collect() })
}

/// One frame's role: the (window, slot) pairs it fills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameUse {
    /// Index of the frame in presentation order (as counted by the caller).
    pub frame: usize,
    /// `(window index, slot 0…k−1)` pairs this frame fills.
    pub slots: Vec<(usize, usize)>,
}

/// Frame choice while decoding, when the frame times are not known in advance ([`FrameTiming::Centers`]).
///
/// Feed every decoded frame's presentation time in order with [`push`](Self::push); a frame's use is
/// known once the *next* frame's time is (frame `i` is presented until `pts[i+1]`), so `push` reports on the
/// previous frame and [`finish`](Self::finish) on the last one. The decoder keeps only the previous
/// unconverted frame and converts it when it is reported as used. Memory is one entry per target time
/// (`k` per window), independent of the video's length in frames. Gives exactly the frames
/// [`plan_frames`] gives over the complete list of times.
#[derive(Debug, Clone)]
pub struct StreamSelector {
    /// (target time, window, slot), sorted by time.
    targets: Vec<(f64, usize, usize)>,
    next: usize,
    prev: Option<(usize, f64)>,
    count: usize,
    /// Frames ignored because their time went backwards (a damaged stream).
    pub out_of_order: usize,
}

impl StreamSelector {
    pub fn new(windows: &[Window], k: usize) -> Self {
        let mut targets: Vec<(f64, usize, usize)> = windows
            .iter()
            .enumerate()
            .flat_map(|(w, win)| {
                target_times(win.start, win.end, k).into_iter().enumerate().map(move |(s, t)| (t, w, s))
            })
            .collect();
        targets.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        Self { targets, next: 0, prev: None, count: 0, out_of_order: 0 }
    }

    /// Whether every target has been given a frame (the decoder may stop).
    pub fn done(&self) -> bool {
        self.next >= self.targets.len()
    }

    /// The next frame decoded has time `pts`; returns the use of the previous frame, if it is used.
    /// The new frame gets index `count` (the number of frames pushed before it, out-of-order ones excluded).
    pub fn push(&mut self, pts: f64) -> Option<FrameUse> {
        if !pts.is_finite() || self.prev.is_some_and(|(_, p)| pts < p) {
            self.out_of_order += 1;
            return None;
        }
        let index = self.count;
        self.count += 1;
        let out = match self.prev {
            // targets before `pts` are presented by the previous frame (or, before the first frame, by frame 0,
            // which is reported when the second frame arrives)
            Some((i, _)) => self.take_before(pts, i),
            None => None,
        };
        self.prev = Some((index, pts));
        out
    }

    /// End of stream: the remaining targets fall on the last frame.
    pub fn finish(&mut self) -> Option<FrameUse> {
        let (i, _) = self.prev?;
        self.take_before(f64::INFINITY, i)
    }

    /// The index the next pushed frame will get.
    pub fn frames_seen(&self) -> usize {
        self.count
    }

    fn take_before(&mut self, limit: f64, frame: usize) -> Option<FrameUse> {
        let start = self.next;
        while self.next < self.targets.len() && self.targets[self.next].0 < limit {
            self.next += 1;
        }
        (self.next > start).then(|| FrameUse {
            frame,
            slots: self.targets[start..self.next].iter().map(|&(_, w, s)| (w, s)).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::window::fixed_windows;

    fn cfr(n: usize, fps: f64, start: f64) -> Vec<f64> {
        (0..n).map(|i| start + i as f64 / fps).collect()
    }

    #[test]
    fn frame_presented_at_time() {
        let pts = [1.0, 1.5, 1.5, 3.0];
        assert_eq!(frame_at(&pts, 0.0), 0); // before the first frame
        assert_eq!(frame_at(&pts, 1.0), 0);
        assert_eq!(frame_at(&pts, 1.49), 0);
        assert_eq!(frame_at(&pts, 1.5), 2); // duplicate times: the later frame is shown
        assert_eq!(frame_at(&pts, 2.99), 2);
        assert_eq!(frame_at(&pts, 100.0), 3);
    }

    #[test]
    fn centers_on_constant_rate() {
        // 25 fps, window [0, 4): targets 0.25, 0.75, ..., 3.75 -> frames 6, 18, 31, 43, 56, 68, 81, 93
        let pts = cfr(250, 25.0, 0.0);
        assert_eq!(window_frames(&pts, 0.0, 4.0, 8, FrameTiming::Centers), vec![6, 18, 31, 43, 56, 68, 81, 93]);
    }

    #[test]
    fn variable_frame_rate_follows_time_not_index() {
        // 30 fps for 2 s, then 5 fps for 2 s: uniform in time, so half the targets fall in each part
        let mut pts = cfr(60, 30.0, 0.0);
        pts.extend(cfr(10, 5.0, 2.0));
        let f = window_frames(&pts, 0.0, 4.0, 8, FrameTiming::Centers);
        let times: Vec<f64> = f.iter().map(|&i| pts[i]).collect();
        assert_eq!(f, vec![7, 22, 37, 52, 61, 63, 66, 68]);
        for (t, target) in times.iter().zip(target_times(0.0, 4.0, 8)) {
            assert!(*t <= target && target - t < 0.2 + 1e-9, "{t} vs {target}");
        }
        // the official index linspace over the same window is not uniform in time: 7 of 8 in the first half
        let l = window_frames(&pts, 0.0, 4.0, 8, FrameTiming::Linspace);
        assert_eq!(l, vec![0, 9, 19, 29, 39, 49, 59, 69]);
        assert_eq!(l.iter().filter(|&&i| pts[i] < 2.0).count(), 7);
    }

    #[test]
    fn non_zero_start_time() {
        // the stream starts 1.4 s into the file (e.g. an MPEG-TS); media time 0 has no frame yet
        let pts = cfr(100, 10.0, 1.4);
        // window [0, 2): targets 0.125..1.875; those before 1.4 fall on the first frame
        assert_eq!(window_frames(&pts, 0.0, 2.0, 8, FrameTiming::Centers), vec![0, 0, 0, 0, 0, 0, 2, 4]);
        assert_eq!(window_frames(&pts, 0.0, 2.0, 4, FrameTiming::Linspace), vec![0, 1, 3, 5]);
        // a window after the last frame uses the last frame
        assert_eq!(window_frames(&pts, 20.0, 22.0, 2, FrameTiming::Centers), vec![99, 99]);
    }

    #[test]
    fn short_video_repeats_frames() {
        // 1 s at 5 fps, one window over what exists
        let pts = cfr(5, 5.0, 0.0);
        let plan = fixed_windows(1.0, 4.0, 2.0).unwrap();
        let fp = plan_frames(&pts, &plan.windows, 8, FrameTiming::Centers).unwrap();
        assert_eq!(fp.per_window, vec![vec![0, 0, 1, 2, 2, 3, 4, 4]]);
        assert_eq!(fp.needed, vec![0, 1, 2, 3, 4]);
        let fp = plan_frames(&pts, &plan.windows, 8, FrameTiming::Linspace).unwrap();
        assert_eq!(fp.per_window, vec![vec![0, 0, 1, 1, 2, 2, 3, 4]]); // np.linspace(0, 4, 8, dtype=int)
                                                                       // a window shorter than one frame interval
        assert_eq!(window_frames(&pts, 0.05, 0.1, 3, FrameTiming::Linspace), vec![0, 0, 0]);
    }

    #[test]
    fn overlapping_windows_share_frames() {
        let pts = cfr(25 * 10, 25.0, 0.0);
        let plan = fixed_windows(10.0, 4.0, 2.0).unwrap();
        let fp = plan_frames(&pts, &plan.windows, 8, FrameTiming::Centers).unwrap();
        assert_eq!(fp.per_window.len(), 4);
        for w in fp.per_window.windows(2) {
            assert_eq!(w[0][4..], w[1][..4], "second half of a window = first half of the next");
        }
        // 4 windows x 8 frames, 3 overlaps of 4: 20 distinct frames converted instead of 32
        assert_eq!(fp.needed.len(), 20);
        assert!(fp.needed.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn bad_times_are_rejected() {
        assert!(plan_frames(&[], &[], 8, FrameTiming::Centers).is_err());
        let e = plan_frames(&[0.0, 0.2, 0.1], &[], 8, FrameTiming::Centers).unwrap_err().to_string();
        assert!(e.contains("backwards at frame 2"), "{e}");
        assert!(plan_frames(&[0.0, f64::NAN], &[], 8, FrameTiming::Centers).is_err());
    }

    #[test]
    fn streaming_equals_planning() {
        // irregular times (VFR with a jump), non-zero start, overlapping + tail windows
        let mut pts: Vec<f64> = (0..40).map(|i| 0.7 + i as f64 * 0.04).collect();
        pts.extend((0..30).map(|i| 2.3 + i as f64 * 0.13));
        pts.extend((0..50).map(|i| 6.2 + i as f64 * 0.0333));
        let duration = 8.0;
        let plan = fixed_windows(duration, 3.0, 1.0).unwrap();
        let fp = plan_frames(&pts, &plan.windows, 8, FrameTiming::Centers).unwrap();
        let mut sel = StreamSelector::new(&plan.windows, 8);
        let mut got = vec![vec![usize::MAX; 8]; plan.windows.len()];
        let mut used = vec![];
        for &p in &pts {
            if let Some(u) = sel.push(p) {
                used.push(u.frame);
                for (w, s) in u.slots {
                    got[w][s] = u.frame;
                }
            }
        }
        if let Some(u) = sel.finish() {
            used.push(u.frame);
            for (w, s) in u.slots {
                got[w][s] = u.frame;
            }
        }
        assert!(sel.done());
        assert_eq!(got, fp.per_window);
        assert_eq!(used, fp.needed, "each needed frame reported once, in order");
    }

    #[test]
    fn streaming_skips_frames_going_backwards() {
        let plan = fixed_windows(2.0, 2.0, 2.0).unwrap();
        let mut sel = StreamSelector::new(&plan.windows, 2); // targets 0.5, 1.5
        assert_eq!(sel.push(0.0), None);
        assert_eq!(sel.push(1.0), Some(FrameUse { frame: 0, slots: vec![(0, 0)] }));
        assert_eq!(sel.push(0.5), None); // damaged: ignored, does not get an index
        assert_eq!(sel.out_of_order, 1);
        assert_eq!(sel.push(1.6), Some(FrameUse { frame: 1, slots: vec![(0, 1)] }));
        assert_eq!(sel.finish(), None);
        assert_eq!(sel.frames_seen(), 3);
    }
}
