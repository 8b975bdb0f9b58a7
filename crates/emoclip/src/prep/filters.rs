//! Sample filters of the pre-training data (appendix A; official `youtube_v3.py` defaults): neutral
//! probability ≤ 0.05, 2 s < duration < 10 s, text ≥ 3 characters, ≥ 8 frames in the caption span.
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FilterConfig {
    pub neutral_max: f32,
    pub min_duration: f64,
    pub max_duration: f64,
    pub min_chars: usize,
    pub min_frames: usize,
}

impl Default for FilterConfig {
    fn default() -> Self {
        Self { neutral_max: 0.05, min_duration: 2.0, max_duration: 10.0, min_chars: 3, min_frames: 8 }
    }
}

/// Which filters a candidate passed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterResult {
    pub neutral: bool,
    pub duration: bool,
    pub text: bool,
    pub frames: bool,
}

impl FilterResult {
    pub fn kept(&self) -> bool {
        self.neutral && self.duration && self.text && self.frames
    }
}

/// Frame span of a caption at `fps` (official: first frame `ceil(start·fps)`, last `floor(end·fps)`;
/// frames are numbered from 0 here, frame k shows time k/fps).
pub fn frame_span(start: f64, end: f64, fps: f64) -> (usize, usize) {
    let a = (start * fps).ceil().max(0.0) as usize;
    let b = (end * fps).floor().max(0.0) as usize;
    (a, b)
}

impl FilterConfig {
    pub fn check(&self, text: &str, start: f64, end: f64, neutral: f32, n_frames: usize) -> FilterResult {
        let d = end - start;
        FilterResult {
            neutral: neutral <= self.neutral_max,
            duration: d > self.min_duration && d < self.max_duration,
            text: text.trim().chars().count() >= self.min_chars,
            frames: n_frames >= self.min_frames,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_defaults() {
        let f = FilterConfig::default();
        assert!(f.check("You did WHAT?", 1.0, 4.0, 0.01, 24).kept());
        let r = f.check("ok", 1.0, 2.5, 0.2, 12);
        assert_eq!(r, FilterResult { neutral: false, duration: false, text: false, frames: true });
        assert!(!f.check("long enough", 0.0, 10.0, 0.0, 80).duration, "10 s is excluded (strict <)");
        assert_eq!(frame_span(1.01, 2.0, 8.0), (9, 16));
    }
}
