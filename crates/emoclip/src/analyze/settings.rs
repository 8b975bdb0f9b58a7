//! The settings of one `analyze` run ([`AnalyzeSettings`]), with the defaults `emoclip analyze` uses and why.
use std::path::{Path, PathBuf};

use super::prompts::PromptSet;
use super::subjects::SubjectOptions;
use super::track::TrackerConfig;
use super::window::WindowSource;
use crate::detect::YoloParams;

/// Where the persons of a video come from.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum PeopleSource {
    /// Nobody: every window is encoded as the scene with an empty subject mask (flag `no-person`).
    #[default]
    None,
    /// A YOLO ONNX model run on every used frame (loaded once, on first need: a rerun that finds every frame in
    /// the cached `boxes.json` never loads it).
    Detector { model: PathBuf, params: YoloParams },
    /// One box file for the (single) video, in the documented box format (`media::boxes`).
    Boxes(PathBuf),
    /// A directory holding `<video stem>.boxes.json` per video; a video without one has nobody.
    BoxesDir(PathBuf),
}

impl PeopleSource {
    /// What the report and the `.done` summary say about the source.
    pub fn describe(&self) -> String {
        match self {
            PeopleSource::None => "none (scene only, empty subject masks)".into(),
            PeopleSource::Detector { model, params } => format!(
                "YOLO {} (conf {}, IoU {}, class {}, {:?})",
                model.file_name().map_or_else(|| model.display().to_string(), |n| n.to_string_lossy().into_owned()),
                params.conf,
                params.iou,
                params.class,
                params.labels
            ),
            PeopleSource::Boxes(p) => format!("box file {}", p.display()),
            PeopleSource::BoxesDir(d) => format!("box files <stem>.boxes.json in {}", d.display()),
        }
    }

    /// The identity of a detector's output: boxes cached by an earlier run are reused only when it is equal
    /// (model file name and post-processing; the file itself need not exist any more).
    pub fn detector_key(&self) -> Option<String> {
        match self {
            PeopleSource::Detector { model, params } => Some(format!(
                "{}|conf={}|iou={}|class={}|labels={:?}|max_det={}|max_nms={}",
                model.file_name().map_or_else(|| model.display().to_string(), |n| n.to_string_lossy().into_owned()),
                params.conf,
                params.iou,
                params.class,
                params.labels,
                params.max_det,
                params.max_nms
            )),
            _ => None,
        }
    }
}

/// Settings of an [`Analyzer`](super::Analyzer).
#[derive(Debug, Clone, PartialEq)]
pub struct AnalyzeSettings {
    /// Windows of every video (per-video caption spans go in [`super::VideoInput::windows`]). Default
    /// `--window 4 --stride 2` ([`super::window::DEFAULT_WINDOW`]).
    pub windows: WindowSource,
    /// Frames per clip: 8, what the temporal head was trained with (its learned frame positions).
    pub frames_per_clip: usize,
    pub people: PeopleSource,
    /// Reuse `boxes.json` of an earlier run in the output directory for the frames it covers (detector
    /// source only, same [`PeopleSource::detector_key`]).
    pub reuse_cached_boxes: bool,
    /// Zero-shot prompt sets (default `basic`); the first probabilistic source drives the report's charts.
    pub prompts: Vec<PromptSet>,
    /// Templates replacing every prompt set's own (`--templates`); `None`: each set's defaults.
    pub templates: Option<Vec<String>>,
    /// Trained heads (`probe --save-head` files), checked against the encoder's fingerprint.
    pub heads: Vec<PathBuf>,
    /// Clips per forward pass, across windows and persons (default 8).
    pub batch: usize,
    pub tracker: TrackerConfig,
    pub subjects: SubjectOptions,
    /// Encode every tracked person as well as the scene (default true).
    pub persons: bool,
    /// Decoded frames allowed to wait between decoding and detection, and encode jobs between detection and
    /// encoding (bounded queues: memory does not grow with the video's length). Default 16.
    pub queue: usize,
    /// Thumbnails in the report (default 8, spread over the video).
    pub thumbnails: usize,
    /// Labels in `top` (default 3).
    pub top_k: usize,
}

impl Default for AnalyzeSettings {
    fn default() -> Self {
        Self {
            windows: WindowSource::default(),
            frames_per_clip: 8,
            people: PeopleSource::None,
            reuse_cached_boxes: true,
            prompts: vec![PromptSet::Basic],
            templates: None,
            heads: vec![],
            batch: 8,
            tracker: TrackerConfig::default(),
            subjects: SubjectOptions::default(),
            persons: true,
            queue: 16,
            thumbnails: 8,
            top_k: 3,
        }
    }
}

impl AnalyzeSettings {
    /// The (name, value) table of the report and the `.done` summary.
    pub fn table(&self) -> Vec<(String, String)> {
        let windows = match &self.windows {
            WindowSource::Fixed { window, stride } => format!("{window} s windows every {stride} s"),
            WindowSource::Spans(s) => format!("{} given spans", s.len()),
        };
        let prompts: Vec<String> = self
            .prompts
            .iter()
            .map(|p| match p {
                PromptSet::Basic => "basic".to_string(),
                PromptSet::Emotic => "emotic".to_string(),
                PromptSet::Sentiment => "sentiment".to_string(),
                PromptSet::File(f) => f.display().to_string(),
            })
            .collect();
        let mut t = vec![
            ("windows".to_string(), windows),
            (
                "frames per clip".to_string(),
                format!("{} (by presentation time, centres of equal slices)", self.frames_per_clip),
            ),
            ("people".to_string(), self.people.describe()),
            ("prompt sets".to_string(), if prompts.is_empty() { "none".into() } else { prompts.join(", ") }),
        ];
        if let Some(tp) = &self.templates {
            t.push(("templates".into(), tp.join(" | ")));
        }
        if !self.heads.is_empty() {
            t.push(("heads".into(), self.heads.iter().map(|h| h.display().to_string()).collect::<Vec<_>>().join(", ")));
        }
        t.push((
            "persons encoded".into(),
            if self.persons { "each tracked person + scene".into() } else { "scene only".into() },
        ));
        t.push(("batch".into(), self.batch.to_string()));
        t
    }

    /// What decides whether a finished output directory is still valid: everything that changes the outputs.
    pub fn outputs_key(&self, encoder: &str, video: &Path) -> String {
        format!("{encoder}|{video:?}|{:?}", self.clone().without_batch())
    }

    fn without_batch(mut self) -> Self {
        // batch and queue sizes change speed, not results
        self.batch = 0;
        self.queue = 0;
        self
    }
}
