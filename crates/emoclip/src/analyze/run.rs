//! The analysis pipeline of one video (the steps of the [module documentation](super)): [`Analyzer`] is built once per run (text embeddings of the prompt sets, heads checked against the encoder, detector on first need) and analyses videos with one streaming decode pass, decode ∥ detect + track ∥ encode + score on three threads joined by bounded channels.
//!
//! ```text
//!  decode thread                detect thread                                  calling thread
//!  stream_frames ─ frames used ═► detect · track · preprocess · windows done ═► batch · encode · score
//!  (RGB only for used frames)   (frames dropped once no open window needs them) (events to the caller)
//! ```
//!
//! A window is complete when its last frame is decoded; it is encoded once the tracker has seen enough later
//! frames to confirm the tracks it holds ([`TrackerConfig::min_hits`](super::TrackerConfig)), so its person
//! ids are final. Memory holds the frames of open windows (preprocessed, `3×S×S` floats each) and the
//! queues, whatever the video's length.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use image::RgbImage;
use serde::Serialize;

use super::frames::StreamSelector;
use super::outputs::EmbeddingIndex;
use super::prompts::Prompts;
use super::report::Thumbnail;
use super::settings::{AnalyzeSettings, PeopleSource};
use super::subjects::window_subjects;
use super::timeline::{ScoreKind, ScoreSource, Subject, Timeline, TimelineRow};
use super::track::{TrackLog, Tracker};
use super::window::{self, Window, WindowSource};
use super::zeroshot::ZeroShot;
use crate::encoder::{Embedder, EncoderId, Prepared};
use crate::head::{Head, HeadTask};
use crate::media::{self, BoxFile, MaskMode, MediaKind, PersonBox};
use crate::tokenizer::{ClipTokenizer, Truncation};
use crate::{Error, Result};

/// Width of the report's thumbnails (pixels).
const THUMB_WIDTH: u32 = 320;

/// One video to analyse, with what may differ per video.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VideoInput {
    pub path: PathBuf,
    /// Windows of this video (e.g. its caption sentences); `None`: the settings' windows.
    pub windows: Option<WindowSource>,
    /// Boxes cached by an earlier run ([`Analyzer::cached_boxes`]), used for the frames they cover.
    pub cached: Option<CachedBoxes>,
}

impl VideoInput {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), ..Self::default() }
    }
}

/// Detections of an earlier run (`boxes.json`) and the detector that made them.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedBoxes {
    /// [`PeopleSource::detector_key`] of the run that wrote them.
    pub detector: String,
    /// frame → detections.
    pub frames: BTreeMap<usize, Vec<PersonBox>>,
    pub size: Option<(u32, u32)>,
}

/// Progress reported while a video is analysed. Returning `ControlFlow::Break` from the callback stops the
/// analysis with [`Error::Interrupted`].
#[derive(Debug, Clone, PartialEq)]
pub enum AnalyzeEvent {
    /// Windows planned (before decoding).
    Started { path: PathBuf, duration: f64, windows: usize },
    /// A window's subjects are encoded and scored (`done` of `total`; `time`: the window's end, seconds).
    Window { done: usize, total: usize, time: f64 },
    /// A non-fatal remark (also kept in [`VideoAnalysis::warnings`]).
    Warning(String),
}

/// Counts and per-stage seconds of one video. Stage times exclude waiting on the queues, so the slowest stage
/// is the one whose time is close to the wall time.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AnalyzeStats {
    pub windows: usize,
    /// Frames the decoder produced (a pass stops after the last frame needed).
    pub frames_decoded: usize,
    /// Frames converted to RGB: only the used ones.
    pub frames_converted: usize,
    /// Distinct frames the windows use.
    pub frames_used: usize,
    /// Frames the detector ran on.
    pub frames_detected: usize,
    /// Frames whose boxes came from the cached `boxes.json` of an earlier run.
    pub frames_from_cache: usize,
    /// Clips encoded (windows × subjects) and forward passes.
    pub clips: usize,
    pub batches: usize,
    /// Packets that failed to decode (skipped), frames the decoder flagged as damaged (skipped), frames dropped
    /// for going backwards.
    pub decode_errors: usize,
    pub damaged_frames: usize,
    /// Time ranges without frames in the stream (missing or undecodable data).
    pub gaps: Vec<(f64, f64)>,
    pub out_of_order: usize,
    pub decode_s: f64,
    pub detect_s: f64,
    pub track_s: f64,
    /// RGB frames → model inputs (resize, crop, normalise) and subject masks.
    pub preprocess_s: f64,
    pub encode_s: f64,
    pub score_s: f64,
    /// Set by [`write_video`](super::write_video).
    pub write_s: f64,
    pub wall_s: f64,
    /// Most frames held at once by the detect stage (open windows' frames).
    pub max_frames_held: usize,
}

/// Everything one video's analysis produced (in memory; [`super::write_video`] writes it).
#[derive(Debug, Clone)]
pub struct VideoAnalysis {
    pub path: PathBuf,
    /// Output directory name under `--out` (the file name).
    pub video_id: String,
    /// Media time of the video's end (s).
    pub duration: f64,
    /// Width and height of the frames (display orientation).
    pub frame_size: (u32, u32),
    pub windows: Vec<Window>,
    /// One row per window × subject, sorted by window then subject.
    pub timeline: Timeline,
    /// One L2-normalised embedding per timeline row, same order.
    pub embeddings: Vec<Vec<f32>>,
    pub index: Vec<EmbeddingIndex>,
    /// Person detections of every used frame (the `boxes.json` content).
    pub detections: BTreeMap<usize, Vec<PersonBox>>,
    pub tracks: TrackLog,
    pub thumbnails: Vec<Thumbnail>,
    /// Per window, its frames (decoded-frame numbers, in time order).
    pub window_frames: Vec<Vec<usize>>,
    pub stats: AnalyzeStats,
    /// Non-fatal remarks: skipped spans, corrupt stretches, missing box files, …
    pub warnings: Vec<String>,
    /// Run settings as (name, value), for the report.
    pub settings: Vec<(String, String)>,
    /// [`PeopleSource::detector_key`] of the boxes (for reuse by a later run).
    pub detector: Option<String>,
    /// [`AnalyzeSettings::outputs_key`] digest: a finished directory with another key is redone.
    pub outputs_key: String,
    pub encoder: EncoderId,
}

/// A loaded trained head and where it came from.
struct LoadedHead {
    head: Head,
}

/// Runs the analysis (see the module documentation). Build once per run, then call
/// [`analyze_video`](Self::analyze_video) per video.
pub struct Analyzer {
    pub settings: AnalyzeSettings,
    pub embedder: Embedder,
    pub encoder: EncoderId,
    zeroshot: Vec<ZeroShot>,
    heads: Vec<LoadedHead>,
    sources: Vec<ScoreSource>,
    /// Remarks about the settings (e.g. blank lines in a prompts file), reported once per run.
    pub warnings: Vec<String>,
    #[cfg(feature = "onnx")]
    detector: std::sync::OnceLock<std::result::Result<crate::detect::onnx::PersonDetector, String>>,
}

/// The digest of a string (hex).
fn digest(s: &str) -> String {
    format!("{:016x}", crate::hash::fnv1a64(s.as_bytes()))
}

impl Analyzer {
    /// Loads the prompt sets (text embeddings computed once, ensembled over templates) and the heads
    /// (refused when fitted on another encoder than `encoder`). `embedder.num_frames` must equal
    /// `settings.frames_per_clip`.
    pub fn new(mut embedder: Embedder, encoder: EncoderId, settings: AnalyzeSettings) -> Result<Self> {
        if settings.batch == 0 {
            return Err(Error::Msg("--batch 0: use 1 or more clips per forward pass".into()));
        }
        if settings.frames_per_clip != embedder.num_frames {
            return Err(Error::Msg(format!(
                "{} frames per clip but the embedder samples {}; build the embedder with the same count",
                settings.frames_per_clip, embedder.num_frames
            )));
        }
        if settings.prompts.is_empty() && settings.heads.is_empty() {
            return Err(Error::Msg(
                "nothing to score: give at least one prompt set (--prompts basic) or a head (--head FILE)".into(),
            ));
        }
        let mut warnings = vec![];
        // Prompt sets: names must be unique (they prefix the score columns).
        let mut sets: Vec<Prompts> = vec![];
        for p in &settings.prompts {
            let mut s = p.load()?;
            if let Some(t) = &settings.templates {
                if let Some(bad) = t.iter().find(|t| t.matches("{}").count() != 1) {
                    return Err(Error::Msg(format!(
                        "--templates: `{bad}` must contain `{{}}` exactly once (where the class goes)"
                    )));
                }
                if t.is_empty() {
                    return Err(Error::Msg("--templates: give at least one template".into()));
                }
                s.templates = t.clone();
            }
            warnings.append(&mut s.warnings);
            if sets.iter().any(|o| o.name == s.name) {
                let base = s.name.clone();
                s.name =
                    (2..).map(|i| format!("{base}{i}")).find(|n| sets.iter().all(|o| &o.name != n)).unwrap_or(base);
            }
            sets.push(s);
        }
        let scale = embedder.encoder.logit_scale()?;
        let tok = ClipTokenizer::new()?;
        let mut zeroshot = vec![];
        for s in &sets {
            let z = ZeroShot::build(s, scale, |texts| {
                let mut out = Vec::with_capacity(texts.len());
                for chunk in texts.chunks(256) {
                    let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
                    let t = embedder.embed_texts(&tok, &refs, Truncation::ForceEot)?;
                    out.extend(t.to_dtype(candle_core::DType::F32)?.to_vec2::<f32>()?);
                }
                Ok(out)
            })?;
            zeroshot.push(z);
        }
        // Text is encoded once per run, above: the text tower's weights (a third of ViT-B/32 EmotionCLIP's) are
        // not needed for the rest of it.
        embedder.encoder.release_text();
        let mut heads = vec![];
        for p in &settings.heads {
            let head = Head::load(p)?;
            head.check_encoder(&encoder, p)?;
            if let Some(z) = zeroshot.first() {
                if z.dim() != head.dim() {
                    return Err(Error::Data {
                        path: p.clone(),
                        msg: format!(
                            "head `{}` takes {}-dimensional features but this encoder gives {}; use the head's encoder",
                            head.name,
                            head.dim(),
                            z.dim()
                        ),
                    });
                }
            }
            heads.push(LoadedHead { head });
        }
        let mut sources: Vec<ScoreSource> = zeroshot
            .iter()
            .map(|z| ScoreSource { name: z.name.clone(), labels: z.labels.clone(), kind: ScoreKind::Exclusive })
            .collect();
        for h in &heads {
            let mut name = h.head.name.clone();
            if name.is_empty() || sources.iter().any(|s| s.name == name) {
                let base = if name.is_empty() { "head".to_string() } else { name };
                name =
                    (2..).map(|i| format!("{base}{i}")).find(|n| sources.iter().all(|s| &s.name != n)).unwrap_or(base);
            }
            let kind = match h.head.task {
                HeadTask::Logistic => ScoreKind::Exclusive,
                HeadTask::OneVsRest => ScoreKind::MultiLabel,
                HeadTask::Ridge => ScoreKind::Values,
            };
            sources.push(ScoreSource { name, labels: h.head.labels.clone(), kind });
        }
        Ok(Self {
            settings,
            embedder,
            encoder,
            zeroshot,
            heads,
            sources,
            warnings,
            #[cfg(feature = "onnx")]
            detector: std::sync::OnceLock::new(),
        })
    }

    /// The score sources, in column order (prompt sets, then heads).
    pub fn sources(&self) -> &[ScoreSource] {
        &self.sources
    }

    /// The output directory of `video` under `out`: `out/<file name>`.
    pub fn video_dir(out: &Path, video: &Path) -> PathBuf {
        out.join(video_id(video))
    }

    /// The digest of everything that changes `video`'s outputs (settings, encoder, windows of `input`).
    pub fn outputs_key(&self, input: &VideoInput) -> String {
        let windows = format!("{:?}", input.windows);
        digest(&format!("{}|{windows}", self.settings.outputs_key(&self.encoder.fingerprint, &input.path)))
    }

    /// Whether `dir` holds a finished analysis made with the same settings as `input` would get now.
    pub fn is_finished(&self, dir: &Path, input: &VideoInput) -> bool {
        read_done(dir).is_some_and(|v| v["outputs_key"].as_str() == Some(self.outputs_key(input).as_str()))
    }

    /// The boxes an earlier run left in `dir` (`boxes.json` + the detector recorded in `.done`), when the
    /// people source is a detector and reuse is on.
    pub fn cached_boxes(&self, dir: &Path) -> Option<CachedBoxes> {
        if !self.settings.reuse_cached_boxes || self.settings.people.detector_key().is_none() {
            return None;
        }
        let done = read_done(dir)?;
        let detector = done["detector"].as_str()?.to_string();
        let text = std::fs::read_to_string(dir.join("boxes.json")).ok()?;
        let file = media::parse_boxes(&text, &dir.join("boxes.json")).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        let frames: BTreeMap<usize, Vec<PersonBox>> = v["frames"]
            .as_object()?
            .keys()
            .filter_map(|k| k.parse::<usize>().ok())
            .map(|f| (f, file.boxes_for_frame(f).to_vec()))
            .collect();
        Some(CachedBoxes { detector, frames, size: file.frame_size() })
    }

    #[cfg(feature = "onnx")]
    fn detector(
        &self,
        model: &Path,
        params: &crate::detect::YoloParams,
    ) -> Result<&crate::detect::onnx::PersonDetector> {
        let d = self.detector.get_or_init(|| {
            if !model.is_file() {
                return Err(format!(
                    "{}: detector model not found; give a YOLO ONNX export with --detector (e.g. yolov8n.onnx)",
                    model.display()
                ));
            }
            crate::detect::onnx::PersonDetector::new(model)
                .map(|mut d| {
                    d.params = params.clone();
                    d
                })
                .map_err(|e| e.to_string())
        });
        d.as_ref().map_err(|e| Error::Msg(e.clone()))
    }

    /// Analyses one video with the settings' windows and people source.
    pub fn analyze_video(
        &self,
        path: &Path,
        on_event: &mut dyn FnMut(AnalyzeEvent) -> ControlFlow<()>,
    ) -> Result<VideoAnalysis> {
        self.analyze(&VideoInput::new(path), on_event)
    }

    /// Analyses one video (see the module documentation).
    pub fn analyze(
        &self,
        input: &VideoInput,
        on_event: &mut dyn FnMut(AnalyzeEvent) -> ControlFlow<()>,
    ) -> Result<VideoAnalysis> {
        let t0 = Instant::now();
        let path = input.path.as_path();
        let mut warnings: Vec<String> = vec![];
        let meta = media::video_meta(path)?;
        let source = input.windows.as_ref().unwrap_or(&self.settings.windows);
        let plan = window::plan(source, meta.duration).map_err(|e| Error::media(path, e.to_string()))?;
        for s in &plan.skipped {
            emit_warning(&mut warnings, on_event, path, format!("{}: span {s}: no window", path.display()))?;
        }
        if plan.windows.is_empty() {
            return Err(Error::media(
                path,
                format!(
                    "no analysis window: all {} span(s) lie outside the video's {:.2} s; check the captions/segments belong to this video",
                    plan.skipped.len(),
                    meta.duration
                ),
            ));
        }
        if plan.windows.iter().any(|w| w.flags.contains(&window::WindowFlag::ShortVideo)) {
            let w = format!(
                "{}: the video ({:.2} s) is shorter than one window: one window over what exists (flag short-video)",
                path.display(),
                meta.duration
            );
            emit_warning(&mut warnings, on_event, path, w)?;
        }
        if on_event(AnalyzeEvent::Started {
            path: path.to_path_buf(),
            duration: meta.duration,
            windows: plan.windows.len(),
        })
        .is_break()
        {
            return Err(Error::Interrupted {
                unit: format!("windows of {} (stopped while planning)", path.display()),
                done: 0,
                total: 0,
            });
        }

        // People.
        let (people, people_warnings) = self.people_for(input)?;
        for w in people_warnings {
            emit_warning(&mut warnings, on_event, path, w)?;
        }
        let k = self.settings.frames_per_clip;
        let windows = plan.windows.clone();
        let thumb_windows: BTreeSet<usize> = if self.settings.thumbnails == 0 {
            BTreeSet::new()
        } else {
            media::uniform_indices(windows.len(), self.settings.thumbnails.min(windows.len())).into_iter().collect()
        };

        let queue = self.settings.queue.max(2);
        let (ftx, frx) = sync_channel::<UsedFrame>(queue);
        let (jtx, jrx) = sync_channel::<Job>(queue.max(self.settings.batch * 2));
        let detect_state = Mutex::new(None::<DetectOutput>);
        let mut collector = Collector::new(windows.len(), &self.sources);
        let (decode_res, detect_res, main_res) = std::thread::scope(|s| {
            let windows_ref = &windows;
            let decode = s.spawn(move || decode_stage(path, windows_ref, k, ftx));
            let detect_state = &detect_state;
            let people = &people;
            let thumbs = &thumb_windows;
            let detect = s.spawn(move || {
                let r = self.detect_stage(path, windows_ref, thumbs, people, frx, jtx);
                match r {
                    Ok(out) => {
                        *detect_state.lock().unwrap_or_else(|e| e.into_inner()) = Some(out);
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            });
            let main = self.encode_stage(path, &windows, jrx, &mut collector, on_event);
            let decode = decode.join().unwrap_or_else(|_| Err(Error::Msg("the decode thread panicked".into())));
            let detect = detect.join().unwrap_or_else(|_| Err(Error::Msg("the detect thread panicked".into())));
            (decode, detect, main)
        });
        // The first real error: the encode stage's (or the caller's stop), then decode's (a detect stage starved by a
        // failed decode only reports missing frames), then detect's; a stage that stopped because the next one went
        // away reports `closed` and is passed over.
        main_res?;
        let stream = match (decode_res, detect_res) {
            (Err(e), _) if !is_closed(&e) => return Err(e),
            (_, Err(e)) if !is_closed(&e) => return Err(e),
            (Ok(s), Ok(())) => s,
            _ => return Err(Error::Msg("internal error: a stage stopped without a reason".into())),
        };
        let det = detect_state
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .ok_or_else(|| Error::Msg("internal error: the detect stage left no result".into()))?;

        let mut stats = collector.stats.clone();
        stats.windows = windows.len();
        stats.frames_decoded = stream.stats.decoded;
        stats.frames_converted = stream.stats.converted;
        stats.frames_used = det.frames_used;
        stats.frames_detected = det.frames_detected;
        stats.frames_from_cache = det.frames_from_cache;
        stats.decode_errors = stream.stats.decode_errors;
        stats.damaged_frames = stream.stats.damaged;
        stats.gaps = stream.stats.gaps.clone();
        stats.out_of_order = stream.stats.out_of_order;
        stats.decode_s = stream.busy_s;
        stats.detect_s = det.detect_s;
        stats.track_s = det.track_s;
        stats.preprocess_s = det.preprocess_s;
        stats.max_frames_held = det.max_frames_held;
        stats.wall_s = t0.elapsed().as_secs_f64();

        if stream.stats.decode_errors > 0 {
            warnings.push(format!(
                "{}: {} packet(s) failed to decode and were skipped ({}); the rest was analysed",
                path.display(),
                stream.stats.decode_errors,
                stream.stats.first_error.as_deref().unwrap_or("decoder error"),
            ));
        }
        if !stream.stats.gaps.is_empty() {
            let ranges: Vec<String> = stream.stats.gaps.iter().map(|(a, b)| format!("{a:.2}–{b:.2} s")).collect();
            warnings.push(format!(
                "{}: corrupt stretch: no frame could be decoded in {} (missing or undecodable data, skipped); windows \
                 there use the nearest earlier frame, the rest was analysed",
                path.display(),
                ranges.join(", ")
            ));
        }
        if stream.stats.damaged > 0 {
            let ranges: Vec<String> =
                stream.stats.damaged_ranges.iter().map(|(a, b)| format!("{a:.2}–{b:.2} s")).collect();
            warnings.push(format!(
                "{}: corrupt stretch: {} damaged frame(s) skipped ({}); windows there use the nearest earlier intact frame, the rest was analysed",
                path.display(),
                stream.stats.damaged,
                ranges.join(", ")
            ));
        }
        if stream.stats.out_of_order > 0 {
            warnings.push(format!(
                "{}: {} frame(s) with timestamps going backwards were dropped",
                path.display(),
                stream.stats.out_of_order
            ));
        }
        warnings.extend(det.warnings);
        if det.frames_from_cache > 0 {
            warnings.push(format!(
                "{}: person boxes of {} frame(s) reused from the earlier run's boxes.json ({} detected now)",
                path.display(),
                det.frames_from_cache,
                det.frames_detected
            ));
        }
        let no_person = collector
            .rows
            .iter()
            .filter(|(r, _)| r.subject == Subject::Scene && r.flags.iter().any(|f| f == "no-person"))
            .count();
        if no_person == windows.len() && !matches!(self.settings.people, PeopleSource::None) {
            warnings.push(format!(
                "{}: no person found in any window: scene only, with an empty subject mask (flag no-person)",
                path.display()
            ));
        }

        // Rows in window, subject order.
        let mut rows = std::mem::take(&mut collector.rows);
        rows.sort_by(|a, b| a.0.window.cmp(&b.0.window).then(a.0.subject.cmp(&b.0.subject)));
        let mut timeline = Timeline::new(&video_id(path), self.sources.clone());
        timeline.top_k = self.settings.top_k;
        let mut embeddings = Vec::with_capacity(rows.len());
        let mut index = Vec::with_capacity(rows.len());
        for (i, (row, emb)) in rows.into_iter().enumerate() {
            index.push(EmbeddingIndex {
                row: i,
                window: row.window,
                subject: row.subject,
                t_start: row.t_start,
                t_end: row.t_end,
                frames: det.window_frames.get(row.window).cloned().unwrap_or_default(),
            });
            embeddings.push(emb);
            timeline.push(row)?;
        }
        let mut settings = self.settings.table();
        settings.push(("encoder".into(), format!("{} {}", self.encoder.name, self.encoder.fingerprint)));
        settings.push((
            "video".into(),
            format!("{} · {:.2} s · {}×{}", path.display(), meta.duration, det.size.0, det.size.1),
        ));
        Ok(VideoAnalysis {
            path: path.to_path_buf(),
            video_id: video_id(path),
            duration: meta.duration,
            frame_size: det.size,
            windows,
            timeline,
            embeddings,
            index,
            detections: det.detections,
            tracks: det.log,
            thumbnails: det.thumbnails,
            window_frames: det.window_frames,
            stats,
            warnings,
            settings,
            detector: self.settings.people.detector_key(),
            outputs_key: self.outputs_key(input),
            encoder: self.encoder.clone(),
        })
    }

    /// The people of one video: a box file, a detector (with boxes cached by an earlier run), or nobody.
    fn people_for(&self, input: &VideoInput) -> Result<(People, Vec<String>)> {
        let mut warnings = vec![];
        let people = match &self.settings.people {
            PeopleSource::None => People::None,
            PeopleSource::Boxes(p) => People::File(media::load_boxes(p)?),
            PeopleSource::BoxesDir(d) => {
                let mut name = input.path.file_stem().unwrap_or_default().to_os_string();
                name.push(".boxes.json");
                let p = d.join(name);
                if p.is_file() {
                    People::File(media::load_boxes(&p)?)
                } else {
                    warnings.push(format!(
                        "{}: no {} in --boxes-dir: scene only, with an empty subject mask",
                        input.path.display(),
                        p.file_name().unwrap_or_default().to_string_lossy()
                    ));
                    People::None
                }
            }
            PeopleSource::Detector { model, params } => {
                let key = self.settings.people.detector_key().unwrap_or_default();
                let cached = input.cached.as_ref().filter(|c| c.detector == key).map(|c| c.frames.clone());
                if input.cached.as_ref().is_some_and(|c| c.detector != key) {
                    warnings.push(format!(
                        "{}: the earlier run's boxes.json came from another detector or other settings: detecting again",
                        input.path.display()
                    ));
                }
                People::Detector { model: model.clone(), params: params.clone(), cached: cached.unwrap_or_default() }
            }
        };
        Ok((people, warnings))
    }

    /// The detect stage (its own thread): detection, tracking, preprocessing, window assembly.
    fn detect_stage(
        &self,
        path: &Path,
        windows: &[Window],
        thumbs: &BTreeSet<usize>,
        people: &People,
        frx: Receiver<UsedFrame>,
        jtx: SyncSender<Job>,
    ) -> Result<DetectOutput> {
        let k = self.settings.frames_per_clip;
        let pre = self.embedder.pre;
        let mut st = DetectOutput::default();
        let mut tracker = Tracker::new(self.settings.tracker);
        let mut frames: HashMap<usize, HeldFrame> = HashMap::new();
        let mut win_frames: Vec<Vec<usize>> = vec![vec![usize::MAX; k]; windows.len()];
        let mut filled = vec![0usize; windows.len()];
        let mut ready: Vec<(usize, usize)> = vec![]; // (window, frames seen when complete)
        let mut thumb_images: HashMap<usize, ThumbSource> = HashMap::new(); // window → frame
        let mut seen = 0usize;
        let delay = self.settings.tracker.min_hits.saturating_sub(1);
        let mut size_checked = false;
        let mut send = |job: Job| jtx.send(job).map_err(|_| closed());
        while let Ok(f) = frx.recv() {
            let (w, h) = f.image.dimensions();
            if st.size == (0, 0) {
                st.size = (w, h);
            }
            // detections
            let t = Instant::now();
            let dets: Vec<PersonBox> = match people {
                People::None => vec![],
                People::File(b) => {
                    if !size_checked {
                        b.check_frame_size(w, h)?;
                        size_checked = true;
                    }
                    b.boxes_for_frame(f.index).to_vec()
                }
                People::Detector { model, params, cached } => match cached.get(&f.index) {
                    Some(d) => {
                        st.frames_from_cache += 1;
                        d.clone()
                    }
                    None => {
                        #[cfg(feature = "onnx")]
                        {
                            st.frames_detected += 1;
                            self.detector(model, params)?.detect(&f.image)?
                        }
                        #[cfg(not(feature = "onnx"))]
                        {
                            let _ = (model, params);
                            return Err(Error::Msg(
                                "--detector: emoclip was built without its `onnx` feature; rebuild with default features or pass --boxes".into(),
                            ));
                        }
                    }
                },
            };
            st.detect_s += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let r = tracker.update(f.index, f.time, &dets);
            st.log.record(f.index, f.time, r);
            st.detections.insert(f.index, dets);
            st.track_s += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let c = pre.crop as usize;
            let pixels = Tensor::from_vec(pre.pixels(&f.image), (3, c, c), &Device::Cpu)?;
            st.preprocess_s += t.elapsed().as_secs_f64();
            for &(wi, slot) in &f.slots {
                if thumbs.contains(&wi) && slot == k / 2 {
                    thumb_images.insert(wi, (f.index, f.time, small(&f.image), (w, h)));
                }
            }
            frames.insert(f.index, HeldFrame { pixels, size: (w, h), refs: f.slots.len() });
            st.frames_used += 1;
            st.max_frames_held = st.max_frames_held.max(frames.len());
            seen += 1;
            for &(wi, slot) in &f.slots {
                win_frames[wi][slot] = f.index;
                filled[wi] += 1;
                if filled[wi] == k {
                    ready.push((wi, seen));
                }
            }
            drop(f);
            // windows whose tracks are settled
            let mut i = 0;
            while i < ready.len() {
                if seen >= ready[i].1 + delay {
                    let (wi, _) = ready.remove(i);
                    self.finish_window(
                        wi,
                        windows,
                        &win_frames[wi],
                        &mut frames,
                        &mut st,
                        &mut thumb_images,
                        &mut send,
                    )?;
                } else {
                    i += 1;
                }
            }
        }
        // end of stream: everything left
        ready.sort_unstable();
        for (wi, _) in std::mem::take(&mut ready) {
            self.finish_window(wi, windows, &win_frames[wi], &mut frames, &mut st, &mut thumb_images, &mut send)?;
        }
        if let Some(w) = filled.iter().position(|&n| n < k) {
            return Err(Error::media(
                path,
                format!("window {w} got {} of its {k} frames: the video ended early; re-encode it", filled[w]),
            ));
        }
        st.thumbnails.sort_by(|a, b| a.time.total_cmp(&b.time));
        st.window_frames = win_frames;
        if let People::File(b) = people {
            let out = b.boxes_outside(st.size.0, st.size.1);
            if !out.is_empty() {
                st.warnings.push(format!(
                    "{}: {} box(es) lie entirely outside the {}×{} frame and were ignored",
                    b.path().display(),
                    out.len(),
                    st.size.0,
                    st.size.1
                ));
            }
        }
        Ok(st)
    }

    /// Builds the encode jobs of a complete window and releases the frames no other window needs.
    #[allow(clippy::too_many_arguments)]
    fn finish_window(
        &self,
        wi: usize,
        windows: &[Window],
        slots: &[usize],
        frames: &mut HashMap<usize, HeldFrame>,
        st: &mut DetectOutput,
        thumb_images: &mut HashMap<usize, ThumbSource>,
        send: &mut dyn FnMut(Job) -> Result<()>,
    ) -> Result<()> {
        let t = Instant::now();
        let pre = self.embedder.pre;
        let win = &windows[wi];
        let mut subjects = window_subjects(slots, &st.detections, &st.log, self.settings.subjects);
        if !self.settings.persons {
            subjects.truncate(1);
        }
        let pix: Vec<&Tensor> = slots
            .iter()
            .map(|f| frames.get(f).map(|h| &h.pixels))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| Error::Msg(format!("internal error: a frame of window {wi} was released early")))?;
        let clip = Tensor::stack(&pix, 0)?;
        let c = pre.crop as usize;
        let n = subjects.len();
        let mut jobs = Vec::with_capacity(n);
        for s in subjects {
            let mut data = Vec::with_capacity(slots.len() * c * c);
            let mut has_subject = false;
            for &f in slots {
                let (w, h) = frames[&f].size;
                let b = s.boxes.boxes_for_frame(f);
                has_subject |= b.iter().any(|x| x.counts());
                data.extend(pre.mask_with(MaskMode::Letterbox, w, h, b));
            }
            let masks = Tensor::from_vec(data, (slots.len(), c, c), &Device::Cpu)?;
            let mut flags: Vec<String> = win
                .flags
                .iter()
                .filter_map(|f| serde_json::to_value(f).ok().and_then(|v| v.as_str().map(str::to_string)))
                .collect();
            flags.extend(s.flags);
            jobs.push(Job {
                window: wi,
                subjects_in_window: n,
                subject: s.subject,
                frames: clip.clone(),
                masks,
                has_subject,
                mean_box: s.mean_box,
                frames_with_box: s.frames_with_box,
                flags,
                size: st.size,
            });
        }
        if let Some((frame, time, jpeg_src, (w, h))) = thumb_images.remove(&wi) {
            let mut boxes: Vec<(Option<u32>, [f32; 4])> = vec![];
            let tracked = st.log.frames.get(&frame).cloned().unwrap_or_default();
            for b in &tracked {
                boxes.push((Some(b.id), b.bbox));
            }
            if let Some(d) = st.detections.get(&frame) {
                for (i, b) in d.iter().enumerate() {
                    if b.counts() && !tracked.iter().any(|t| t.detection == Some(i)) {
                        boxes.push((None, [b.x1, b.y1, b.x2, b.y2]));
                    }
                }
            }
            st.thumbnails.push(Thumbnail {
                time,
                window: win.index,
                jpeg: jpeg(&jpeg_src)?,
                frame_width: w,
                frame_height: h,
                boxes,
            });
        }
        for &f in slots {
            if let Some(h) = frames.get_mut(&f) {
                h.refs -= 1;
                if h.refs == 0 {
                    frames.remove(&f);
                }
            }
        }
        st.preprocess_s += t.elapsed().as_secs_f64();
        for j in jobs {
            send(j)?;
        }
        Ok(())
    }

    /// The encode stage (the calling thread): batches jobs across windows and persons, encodes, scores.
    fn encode_stage(
        &self,
        path: &Path,
        windows: &[Window],
        jrx: Receiver<Job>,
        col: &mut Collector,
        on_event: &mut dyn FnMut(AnalyzeEvent) -> ControlFlow<()>,
    ) -> Result<()> {
        let batch = self.settings.batch;
        let mut pending: Vec<Job> = Vec::with_capacity(batch);
        let mut open = true;
        while open || !pending.is_empty() {
            while open && pending.len() < batch {
                match jrx.recv() {
                    Ok(j) => pending.push(j),
                    Err(_) => open = false,
                }
            }
            if pending.is_empty() {
                break;
            }
            let jobs: Vec<Job> = std::mem::take(&mut pending);
            let t = Instant::now();
            let items: Vec<Prepared> = jobs
                .iter()
                .map(|j| Prepared {
                    path: path.to_path_buf(),
                    kind: MediaKind::Video,
                    frames: j.frames.clone(),
                    masks: j.masks.clone(),
                    has_subject: j.has_subject,
                    boxes_outside: vec![],
                    frame_size: j.size,
                })
                .collect();
            let embs = self.embedder.encode(&items)?;
            col.stats.encode_s += t.elapsed().as_secs_f64();
            col.stats.batches += 1;
            col.stats.clips += jobs.len();
            let t = Instant::now();
            for (j, e) in jobs.into_iter().zip(embs) {
                let mut scores = Vec::with_capacity(self.sources.len());
                for z in &self.zeroshot {
                    scores.push(z.probs(&e)?);
                }
                for h in &self.heads {
                    scores.push(h.head.predict_proba(&e)?);
                }
                let win = &windows[j.window];
                col.rows.push((
                    TimelineRow {
                        window: win.index,
                        t_start: win.start,
                        t_end: win.end,
                        label: win.label.clone(),
                        subject: j.subject,
                        mean_box: j.mean_box,
                        frames_with_box: j.frames_with_box,
                        flags: j.flags,
                        scores,
                    },
                    e,
                ));
                col.done_subjects[j.window] += 1;
                if col.done_subjects[j.window] == j.subjects_in_window {
                    col.windows_done += 1;
                    let ev = AnalyzeEvent::Window { done: col.windows_done, total: windows.len(), time: win.end };
                    if on_event(ev).is_break() {
                        return Err(Error::Interrupted {
                            unit: format!("windows of {} (nothing written)", path.display()),
                            done: col.windows_done,
                            total: windows.len(),
                        });
                    }
                }
            }
            col.stats.score_s += t.elapsed().as_secs_f64();
        }
        Ok(())
    }
}

/// Keeps a warning and tells the caller.
fn emit_warning(
    warnings: &mut Vec<String>,
    on_event: &mut dyn FnMut(AnalyzeEvent) -> ControlFlow<()>,
    path: &Path,
    w: String,
) -> Result<()> {
    warnings.push(w.clone());
    if on_event(AnalyzeEvent::Warning(w)).is_break() {
        return Err(Error::Interrupted {
            unit: format!("windows of {} (stopped while planning)", path.display()),
            done: 0,
            total: 0,
        });
    }
    Ok(())
}

/// `<file name>` of a video: its output directory name.
pub fn video_id(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// The `.done` summary of `dir`, if any.
pub fn read_done(dir: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join(super::outputs::DONE_MARKER)).ok()?;
    serde_json::from_str(&text).ok()
}

enum People {
    None,
    File(BoxFile),
    Detector { model: PathBuf, params: crate::detect::YoloParams, cached: BTreeMap<usize, Vec<PersonBox>> },
}

/// A used frame on its way from the decoder to the detect stage.
struct UsedFrame {
    index: usize,
    time: f64,
    slots: Vec<(usize, usize)>,
    image: RgbImage,
}

/// A thumbnail's frame: (frame, time, small RGB copy, original size).
type ThumbSource = (usize, f64, RgbImage, (u32, u32));

struct HeldFrame {
    pixels: Tensor,
    size: (u32, u32),
    /// Window slots not yet encoded that show this frame.
    refs: usize,
}

/// One clip to encode: a window's frames with one subject's masks.
struct Job {
    window: usize,
    subjects_in_window: usize,
    subject: Subject,
    frames: Tensor,
    masks: Tensor,
    has_subject: bool,
    mean_box: Option<[f32; 4]>,
    frames_with_box: usize,
    flags: Vec<String>,
    size: (u32, u32),
}

#[derive(Default)]
struct DetectOutput {
    size: (u32, u32),
    detections: BTreeMap<usize, Vec<PersonBox>>,
    log: TrackLog,
    thumbnails: Vec<Thumbnail>,
    frames_used: usize,
    frames_detected: usize,
    frames_from_cache: usize,
    detect_s: f64,
    track_s: f64,
    preprocess_s: f64,
    max_frames_held: usize,
    warnings: Vec<String>,
    window_frames: Vec<Vec<usize>>,
}

struct Collector {
    rows: Vec<(TimelineRow, Vec<f32>)>,
    done_subjects: Vec<usize>,
    windows_done: usize,
    stats: AnalyzeStats,
}

impl Collector {
    fn new(windows: usize, _sources: &[ScoreSource]) -> Self {
        Self { rows: vec![], done_subjects: vec![0; windows], windows_done: 0, stats: AnalyzeStats::default() }
    }
}

struct DecodeOutput {
    stats: media::StreamStats,
    /// Seconds spent decoding and converting (not waiting on the queue).
    busy_s: f64,
}

/// Marks a stage stopped because the next one went away (its own error is the one to report; never shown).
const CLOSED: &str = "\u{0}emoclip-analyze-closed";

fn closed() -> Error {
    Error::Msg(CLOSED.into())
}

fn is_closed(e: &Error) -> bool {
    matches!(e, Error::Msg(m) if m == CLOSED)
}

/// The decode stage (its own thread): one pass, RGB only for the used frames, stopped after the last one.
fn decode_stage(path: &Path, windows: &[Window], k: usize, ftx: SyncSender<UsedFrame>) -> Result<DecodeOutput> {
    let mut sel = StreamSelector::new(windows, k);
    let start = Instant::now();
    let mut waiting = Duration::ZERO;
    let stats = media::stream_frames(path, &mut |pf| {
        if pf.index == 0 {
            sel.push(pf.time);
        }
        let used = match pf.next_time {
            Some(t) => sel.push(t),
            None => sel.finish(),
        };
        if let Some(u) = used {
            debug_assert_eq!(u.frame, pf.index);
            let image = pf.rgb()?;
            let t = Instant::now();
            ftx.send(UsedFrame { index: pf.index, time: pf.time, slots: u.slots, image }).map_err(|_| closed())?;
            waiting += t.elapsed();
        }
        Ok(if sel.done() { ControlFlow::Break(()) } else { ControlFlow::Continue(()) })
    })?;
    Ok(DecodeOutput { stats, busy_s: (start.elapsed() - waiting).as_secs_f64() })
}

/// A thumbnail-sized copy (width [`THUMB_WIDTH`], aspect kept).
fn small(img: &RgbImage) -> RgbImage {
    let (w, h) = img.dimensions();
    if w <= THUMB_WIDTH {
        return img.clone();
    }
    let nh = ((h as f64) * THUMB_WIDTH as f64 / w as f64).round().max(1.0) as u32;
    image::imageops::resize(img, THUMB_WIDTH, nh, image::imageops::FilterType::Triangle)
}

fn jpeg(img: &RgbImage) -> Result<Vec<u8>> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
        .encode_image(img)
        .map_err(|e| Error::Msg(format!("thumbnail JPEG: {e}")))?;
    Ok(out.into_inner())
}
