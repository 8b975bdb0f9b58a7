//! Analysis windows over a video's timeline: fixed `--window W --stride S`, one per caption sentence, or one per explicit segment (issue 13 §1).
//!
//! All times are seconds of *media time*: 0 is the start of the file as a player shows it (the container's
//! start time), so caption and segment times apply unchanged. A window is the half-open interval
//! `[start, end)`. Which frames a window uses is decided by [`super::frames`].
use serde::Serialize;

use crate::{Error, Result};

/// Default window length in seconds: half the ~8 s upper bound of the pre-training clips (paper appendix A,
/// sentence spans of a few seconds), long enough for an expression to unfold, short enough to localise it.
pub const DEFAULT_WINDOW: f64 = 4.0;
/// Default stride in seconds: windows overlap by half, so every instant lies in two windows and, with 8
/// frames per window (see [`super::frames::FrameTiming::Centers`]), neighbours share 4 of their 8 frames.
pub const DEFAULT_STRIDE: f64 = 2.0;
/// Times closer than this (seconds) are treated as equal when fitting windows into a duration.
pub const TIME_EPS: f64 = 1e-6;

/// A time span with an optional label (a caption sentence, a segment label): what span-based windows are
/// made of. The caller converts prep's sentences (`text`, `start`, `end`) into these.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub start: f64,
    pub end: f64,
    pub label: Option<String>,
}

impl Span {
    pub fn new(start: f64, end: f64, label: Option<String>) -> Self {
        Self { start, end, label }
    }
}

/// One analysis window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Window {
    /// Position in the plan (0-based, in order of start time).
    pub index: usize,
    pub start: f64,
    pub end: f64,
    /// The caption sentence or segment label the window came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Why the window is not what was asked for (empty when it is).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<WindowFlag>,
}

impl Window {
    pub fn duration(&self) -> f64 {
        self.end - self.start
    }
}

/// Remarks carried by a window into the outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WindowFlag {
    /// The video is shorter than one window: the window covers what exists.
    ShortVideo,
    /// The last fixed window, placed to end at the video's end so the tail is covered; it overlaps its
    /// predecessor by more than the stride.
    Tail,
    /// A caption/segment that runs past the video's end, cut at the end.
    Clipped,
}

/// Where windows come from.
#[derive(Debug, Clone, PartialEq)]
pub enum WindowSource {
    /// `--window W --stride S` (seconds).
    Fixed { window: f64, stride: f64 },
    /// One window per span (caption sentences, `--segments`).
    Spans(Vec<Span>),
}

impl Default for WindowSource {
    fn default() -> Self {
        WindowSource::Fixed { window: DEFAULT_WINDOW, stride: DEFAULT_STRIDE }
    }
}

/// The windows of one video and what was left out.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct WindowPlan {
    pub windows: Vec<Window>,
    /// Spans that could not become windows (starting at or after the video's end, or empty), with the reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

/// Plans the windows of a video lasting `duration` seconds (media time `[0, duration)`).
pub fn plan(source: &WindowSource, duration: f64) -> Result<WindowPlan> {
    if !duration.is_finite() || duration <= 0.0 {
        return Err(Error::Msg(format!(
            "cannot plan windows over a video of duration {duration} s: it has no decodable video frames"
        )));
    }
    match source {
        WindowSource::Fixed { window, stride } => fixed_windows(duration, *window, *stride),
        WindowSource::Spans(spans) => Ok(span_windows(spans, duration)),
    }
}

/// Windows `[kS, kS + W)` for `k = 0, 1, …` while they fit in `[0, duration)`; when they leave a tail
/// uncovered, one more window `[duration − W, duration)` (flag [`WindowFlag::Tail`]), so every instant of the
/// video lies in at least one window. A video shorter than `W` gets the single window `[0, duration)`
/// (flag [`WindowFlag::ShortVideo`]).
pub fn fixed_windows(duration: f64, window: f64, stride: f64) -> Result<WindowPlan> {
    for (name, v) in [("--window", window), ("--stride", stride)] {
        if !v.is_finite() || v <= 0.0 {
            return Err(Error::Msg(format!("{name} must be a positive number of seconds, got {v}")));
        }
    }
    let mut windows = Vec::new();
    if duration + TIME_EPS < window {
        windows.push(Window { index: 0, start: 0.0, end: duration, label: None, flags: vec![WindowFlag::ShortVideo] });
        return Ok(WindowPlan { windows, skipped: vec![] });
    }
    let mut k = 0usize;
    loop {
        // k * stride, not repeated addition: no drift over thousands of windows.
        let start = k as f64 * stride;
        if start + window > duration + TIME_EPS {
            break;
        }
        windows.push(Window { index: k, start, end: start + window, label: None, flags: vec![] });
        k += 1;
    }
    let covered = windows.last().map_or(0.0, |w| w.end);
    if covered + TIME_EPS < duration {
        windows.push(Window {
            index: windows.len(),
            start: duration - window,
            end: duration,
            label: None,
            flags: vec![WindowFlag::Tail],
        });
    }
    Ok(WindowPlan { windows, skipped: vec![] })
}

/// One window per span, sorted by start (then end; stable). Spans starting at or after `duration`, and
/// empty spans, are skipped with a reason; spans running past the end are cut there ([`WindowFlag::Clipped`]).
pub fn span_windows(spans: &[Span], duration: f64) -> WindowPlan {
    let mut order: Vec<&Span> = spans.iter().collect();
    order.sort_by(|a, b| a.start.total_cmp(&b.start).then(a.end.total_cmp(&b.end)));
    let mut plan = WindowPlan::default();
    let describe = |s: &Span| match &s.label {
        Some(l) => format!("[{:.3}, {:.3}) \"{}\"", s.start, s.end, l),
        None => format!("[{:.3}, {:.3})", s.start, s.end),
    };
    for s in order {
        let start = s.start.max(0.0);
        if !(s.start.is_finite() && s.end.is_finite()) || s.end <= start + TIME_EPS {
            plan.skipped.push(format!("{}: empty span", describe(s)));
            continue;
        }
        if start + TIME_EPS >= duration {
            plan.skipped.push(format!("{}: starts at or after the video's end ({duration:.3} s)", describe(s)));
            continue;
        }
        let mut flags = vec![];
        let end = if s.end > duration + TIME_EPS {
            flags.push(WindowFlag::Clipped);
            duration
        } else {
            s.end.min(duration)
        };
        plan.windows.push(Window { index: plan.windows.len(), start, end, label: s.label.clone(), flags });
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(p: &WindowPlan) -> Vec<(f64, f64)> {
        p.windows.iter().map(|w| (w.start, w.end)).collect()
    }

    #[test]
    fn fixed_exact_fit_has_no_tail() {
        let p = fixed_windows(10.0, 4.0, 2.0).unwrap();
        assert_eq!(bounds(&p), vec![(0.0, 4.0), (2.0, 6.0), (4.0, 8.0), (6.0, 10.0)]);
        assert!(p.windows.iter().all(|w| w.flags.is_empty()));
        assert_eq!(p.windows.iter().map(|w| w.index).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    }

    #[test]
    fn fixed_tail_window_covers_the_end() {
        let p = fixed_windows(11.0, 4.0, 2.0).unwrap();
        assert_eq!(bounds(&p), vec![(0.0, 4.0), (2.0, 6.0), (4.0, 8.0), (6.0, 10.0), (7.0, 11.0)]);
        assert_eq!(p.windows[4].flags, vec![WindowFlag::Tail]);
        // stride larger than the window: gaps between windows are allowed, the tail is still covered
        let p = fixed_windows(10.0, 1.0, 3.0).unwrap();
        assert_eq!(bounds(&p), vec![(0.0, 1.0), (3.0, 4.0), (6.0, 7.0), (9.0, 10.0)]);
    }

    #[test]
    fn fixed_short_video_gives_one_flagged_window() {
        let p = fixed_windows(1.5, 4.0, 2.0).unwrap();
        assert_eq!(bounds(&p), vec![(0.0, 1.5)]);
        assert_eq!(p.windows[0].flags, vec![WindowFlag::ShortVideo]);
        // exactly one window long: a normal window
        let p = fixed_windows(4.0, 4.0, 2.0).unwrap();
        assert_eq!(bounds(&p), vec![(0.0, 4.0)]);
        assert!(p.windows[0].flags.is_empty());
    }

    #[test]
    fn fixed_no_drift_over_long_videos() {
        let p = fixed_windows(7200.0, 4.0, 0.1).unwrap();
        let last = p.windows.last().unwrap();
        assert_eq!(p.windows.len(), 71961);
        assert!((last.end - 7200.0).abs() < 1e-9 && last.flags.is_empty(), "{last:?}");
    }

    #[test]
    fn fixed_rejects_bad_settings() {
        for (w, s, needle) in [(0.0, 1.0, "--window"), (4.0, -1.0, "--stride"), (f64::NAN, 1.0, "--window")] {
            let e = fixed_windows(10.0, w, s).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
        assert!(plan(&WindowSource::default(), 0.0).unwrap_err().to_string().contains("no decodable"));
    }

    #[test]
    fn caption_windows_sorted_clipped_and_skipped() {
        let spans = vec![
            Span::new(5.0, 7.5, Some("Second sentence.".into())),
            Span::new(0.4, 2.0, Some("First.".into())),
            Span::new(9.0, 12.0, Some("Runs past the end.".into())),
            Span::new(10.0, 11.0, Some("After the end.".into())),
            Span::new(3.0, 3.0, None),
        ];
        let p = plan(&WindowSource::Spans(spans), 10.0).unwrap();
        assert_eq!(bounds(&p), vec![(0.4, 2.0), (5.0, 7.5), (9.0, 10.0)]);
        assert_eq!(p.windows[0].label.as_deref(), Some("First."));
        assert_eq!(p.windows[2].flags, vec![WindowFlag::Clipped]);
        assert_eq!(p.windows.iter().map(|w| w.index).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(p.skipped.len(), 2, "{:?}", p.skipped);
        assert!(p.skipped.iter().any(|s| s.contains("After the end.") && s.contains("after the video's end")));
        assert!(p.skipped.iter().any(|s| s.contains("empty span")));
    }
}
