//! `emoclip prepare`: videos + captions → emotion-scored, filtered WebDataset shards and an index of every
//! candidate (appendix A; official `preprocessing/` scripts). One shard and one index file per video,
//! each written to a temporary name and renamed; the index is written last and marks the video done, so a
//! rerun after a kill skips finished videos and redoes the rest, with no duplicate or lost sample.
//!
//! Video ids, caption lookup and job-array partitions: [`super::videos`].
//!
//! # Several runs, one output
//! `prepare.json` records the settings ([`super::settings`]); a rerun with other settings is refused.
//! Videos are claimed one at a time ([`super::claim`]), so job-array tasks or a run started twice share the
//! work instead of both doing all of it, and a killed run's claims are taken over.
use super::claim::{claim, ClaimOutcome};
use super::filters::{frame_span, FilterConfig, FilterResult};
use super::videos::video_id;
use super::{read_captions, Captions, SentenceConfig};
use crate::media::{self, BoxFile, PersonBox, Preprocessor};
use crate::shards::{Sample, SampleMeta, ShardWriter};
use crate::text_emotion::EmotionClassifier;
use crate::{Error, Result};
use image::RgbImage;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct PrepareConfig {
    /// Frame rate of stored frames (official: 8).
    pub fps: f64,
    /// Short side of stored frames (official: 256, bicubic).
    pub short_side: u32,
    pub jpeg_quality: u8,
    pub filters: FilterConfig,
    pub sentences: SentenceConfig,
    /// Videos shorter than this are skipped (the paper keeps ≥ 40 min; 0 keeps all).
    pub min_video_seconds: f64,
}

impl Default for PrepareConfig {
    fn default() -> Self {
        Self {
            fps: 8.0,
            short_side: 256,
            jpeg_quality: 90,
            filters: FilterConfig::default(),
            sentences: SentenceConfig::default(),
            min_video_seconds: 0.0,
        }
    }
}

/// One caption span, kept or not, as recorded in the index.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Candidate {
    pub video_id: String,
    pub index: usize,
    pub text: String,
    pub start: f64,
    pub end: f64,
    pub emotion_logits: Vec<f32>,
    pub neutral: f32,
    pub n_frames: usize,
    pub filters: FilterResult,
    pub kept: bool,
}

#[derive(Debug)]
pub struct VideoReport {
    pub video_id: String,
    pub candidates: usize,
    pub kept: usize,
    /// Candidates inside the duration and text filters (whatever their emotion scores).
    pub in_span_filters: usize,
    /// Shortest and longest candidate span, seconds (0 when there is none).
    pub span_range: (f64, f64),
    pub skipped_cues: usize,
    /// Caption cues overlapping the previous one (kept, reported).
    pub overlapping_cues: usize,
    /// Recovered caption problems (missing blank lines, timestamp-like lines dropped): count and the first.
    pub caption_warnings: usize,
    pub first_caption_warning: Option<String>,
    /// Person boxes lying entirely outside the frame (kept as given; they mark no pixel), and one example.
    pub boxes_outside: usize,
    pub first_box_outside: Option<String>,
    /// Length of the video in seconds.
    pub video_seconds: f64,
    pub timings: StageTimings,
}

impl VideoReport {
    /// When the captions produced no span inside the duration and text filters, a sentence saying so.
    pub fn no_span_note(&self, f: &FilterConfig) -> Option<String> {
        if self.in_span_filters > 0 {
            return None;
        }
        let spans = if self.candidates == 0 {
            "no caption span at all".to_string()
        } else {
            format!("{} caption span(s) of {:.1}–{:.1} s", self.candidates, self.span_range.0, self.span_range.1)
        };
        Some(format!(
            "captions produced no span inside the filters ({} s < duration < {} s, ≥ {} characters): {spans}",
            f.min_duration, f.max_duration, f.min_chars
        ))
    }
}

/// Wall time per stage, seconds (for the throughput benchmark printed by `emoclip prepare`).
#[derive(Clone, Copy, Debug, Default)]
pub struct StageTimings {
    pub captions: f64,
    pub emotion: f64,
    pub decode: f64,
    pub frames: f64,
    pub detect: f64,
    pub write: f64,
}

impl std::ops::AddAssign for StageTimings {
    fn add_assign(&mut self, o: Self) {
        self.captions += o.captions;
        self.emotion += o.emotion;
        self.decode += o.decode;
        self.frames += o.frames;
        self.detect += o.detect;
        self.write += o.write;
    }
}

/// Where person boxes come from.
pub enum Boxes<'a> {
    None,
    /// Per-video JSON files `<stem>.boxes.json` in this directory (source-frame indices).
    Dir(&'a Path),
    #[cfg(feature = "onnx")]
    Detector(&'a crate::detect::onnx::PersonDetector),
}

pub struct Preparer<'a> {
    pub cfg: PrepareConfig,
    pub classifier: &'a EmotionClassifier,
    pub boxes: Boxes<'a>,
    /// Punctuation-restoration model for unpunctuated captions (else pauses decide boundaries).
    pub punctuation: Option<&'a (dyn super::PunctuationModel + Sync)>,
    pub out: PathBuf,
}

impl Preparer<'_> {
    pub fn shard_path(&self, id: &str) -> PathBuf {
        self.out.join("shards").join(format!("{id}.tar"))
    }

    pub fn index_path(&self, id: &str) -> PathBuf {
        self.out.join("index").join(format!("{id}.jsonl"))
    }

    /// Removes what a killed run can leave behind (temporary shard and index files, a finished shard not
    /// yet renamed). Call before processing, only while no other run writes into `out`
    /// ([`super::claim::RunLock::alone`]); with other runs active, [`Self::claim`] cleans per video.
    pub fn clean_stale(&self) -> Result<usize> {
        let mut n = 0;
        for sub in ["shards", "index", ""] {
            let d = self.out.join(sub);
            let Ok(entries) = std::fs::read_dir(&d) else { continue };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                let stale = if sub.is_empty() {
                    name.starts_with(".emoclip-tmp-")
                } else {
                    name.starts_with('.') || (sub == "shards" && name.ends_with("-000000.tar"))
                };
                if stale && e.path().is_file() {
                    std::fs::remove_file(e.path()).map_err(|err| Error::io(e.path(), err))?;
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Claims a video for this run ([`super::claim`]); when claimed, removes the temporary shard files a
    /// killed run left for it. `HeldBy`: another live run is processing it.
    pub fn claim(&self, video: &Path) -> Result<ClaimOutcome> {
        let id = video_id(video);
        let got = claim(&self.out, &id)?;
        if let ClaimOutcome::Claimed(_) = &got {
            let d = self.out.join("shards");
            for p in [d.join(format!(".{id}-000000.tar.tmp")), d.join(format!("{id}-000000.tar"))] {
                if p.is_file() {
                    std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
                }
            }
        }
        Ok(got)
    }

    /// True when a previous run finished this video.
    pub fn is_done(&self, video: &Path) -> bool {
        self.index_path(&video_id(video)).is_file()
    }

    /// Prepares one video: its captions become timed sentences ([`Self::candidates`]), scored and filtered;
    /// the frames the kept ones need are decoded once ([`Self::read_frames`]) with their person boxes
    /// ([`Self::boxes_from_file`]); the kept samples go into the video's shard ([`Self::write_shard`]) and
    /// every candidate into its index ([`Self::write_index`]), which marks the video done.
    pub fn process(&self, video: &Path, captions: &Path) -> Result<VideoReport> {
        let id = video_id(video);
        let mut tm = StageTimings::default();
        let (caps, mut cands) = self.candidates(&id, captions, &mut tm)?;
        let box_file = self.box_file(video)?;
        let mut fr = self.read_frames(video, &cands, &mut tm)?;
        let clock = std::time::Instant::now();
        let video_seconds = if fr.src_fps > 0.0 { fr.decoded as f64 / fr.src_fps } else { 0.0 };
        if fr.decoded > 0 && fr.src_fps > 0.0 && video_seconds < self.cfg.min_video_seconds {
            return Err(Error::media(
                video,
                format!(
                    "{:.0} s long, shorter than --min-video-seconds {}; skipped",
                    video_seconds, self.cfg.min_video_seconds
                ),
            ));
        }
        let (boxes_outside, first_box_outside) = match &box_file {
            Some(bf) => self.boxes_from_file(bf, &mut fr),
            None => (0, None),
        };
        // Spans reaching past the decoded end lose their frames: re-check the frame filter.
        let fps = self.cfg.fps;
        for c in cands.iter_mut().filter(|c| c.kept) {
            let (a, b) = frame_span(c.start, c.end, fps);
            let present = (a..=b).filter(|k| fr.frames.contains_key(k)).count();
            c.n_frames = present;
            c.filters.frames = present >= self.cfg.filters.min_frames;
            c.kept = c.filters.kept();
        }
        let kept = self.write_shard(&id, &cands, &fr)?;
        self.write_index(&id, &cands)?;
        tm.write = clock.elapsed().as_secs_f64();
        let spans: Vec<f64> = cands.iter().map(|c| c.end - c.start).collect();
        Ok(VideoReport {
            video_id: id,
            candidates: cands.len(),
            kept,
            in_span_filters: cands.iter().filter(|c| c.filters.duration && c.filters.text).count(),
            span_range: if spans.is_empty() {
                (0.0, 0.0)
            } else {
                (spans.iter().copied().fold(f64::INFINITY, f64::min), spans.iter().copied().fold(0.0, f64::max))
            },
            skipped_cues: caps.report.skipped.len(),
            overlapping_cues: caps.report.overlaps.len(),
            caption_warnings: caps.report.warnings.len(),
            first_caption_warning: caps
                .report
                .warnings
                .first()
                .map(|(l, w)| format!("{} line {l}: {w}", captions.display())),
            boxes_outside,
            first_box_outside,
            video_seconds,
            timings: tm,
        })
    }

    /// Caption file → timed sentences → emotion scores → every candidate span with its filter results.
    fn candidates(&self, id: &str, captions: &Path, tm: &mut StageTimings) -> Result<(Captions, Vec<Candidate>)> {
        let clock = std::time::Instant::now();
        let caps = read_captions(captions)?;
        // Unpunctuated captions without a model are cut to lengths the duration filter keeps.
        let scfg = SentenceConfig {
            max_seconds: Some(self.cfg.filters.max_duration),
            min_seconds: self.cfg.filters.min_duration,
            ..self.cfg.sentences.clone()
        };
        let model = self.punctuation.map(|m| m as &dyn super::PunctuationModel);
        let sents = super::sentences_with_model(&caps.chunks, &scfg, model).0;
        tm.captions = clock.elapsed().as_secs_f64();
        let clock = std::time::Instant::now();
        let texts: Vec<&str> = sents.iter().map(|s| s.text.as_str()).collect();
        let logits = if texts.is_empty() { Vec::new() } else { self.classifier.logits(&texts)? };
        tm.emotion = clock.elapsed().as_secs_f64();
        let ni = self
            .classifier
            .label_index("neutral")
            .ok_or_else(|| Error::Msg("the emotion model has no \"neutral\" label".into()))?;
        let fps = self.cfg.fps;
        let mut cands = Vec::with_capacity(sents.len());
        for (i, (s, l)) in sents.iter().zip(&logits).enumerate() {
            let neutral = crate::text_emotion::classifier::softmax(l)[ni];
            let (a, b) = frame_span(s.start, s.end, fps);
            let n = if b >= a { b - a + 1 } else { 0 };
            let filters = self.cfg.filters.check(&s.text, s.start, s.end, neutral, n);
            cands.push(Candidate {
                video_id: id.to_string(),
                index: i,
                text: s.text.clone(),
                start: s.start,
                end: s.end,
                emotion_logits: l.clone(),
                neutral,
                n_frames: n,
                filters,
                kept: filters.kept(),
            });
        }
        Ok((caps, cands))
    }

    /// Streams the video once at `fps`, keeping the frames the kept candidates need as JPEGs (resized to the
    /// short side), with the detector's person boxes when there is one.
    fn read_frames(&self, video: &Path, cands: &[Candidate], tm: &mut StageTimings) -> Result<Frames> {
        let fps = self.cfg.fps;
        let needed: BTreeSet<usize> = cands
            .iter()
            .filter(|c| c.kept)
            .flat_map(|c| {
                let (a, b) = frame_span(c.start, c.end, fps);
                a..=b
            })
            .collect();
        let pre = Preprocessor { resize_short: self.cfg.short_side, ..Preprocessor::default() };
        let mut frames: BTreeMap<usize, (Vec<u8>, Vec<PersonBox>)> = BTreeMap::new();
        let mut size = [0u32; 2];
        let quality = self.cfg.jpeg_quality;
        let (mut t_frames, mut t_detect) = (0.0f64, 0.0f64);
        let clock = std::time::Instant::now();
        let (_, src_fps, decoded) = media::stream_at_fps(video, fps, &mut |k, _t, img: RgbImage| {
            if !needed.contains(&k) {
                return Ok(());
            }
            size = [img.width(), img.height()];
            let c0 = std::time::Instant::now();
            let small = pre.resize(&img);
            let mut jpeg = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, quality)
                .encode_image(&small)
                .map_err(|e| Error::media(video, format!("JPEG encoding failed: {e}")))?;
            let c1 = std::time::Instant::now();
            let boxes = match &self.boxes {
                #[cfg(feature = "onnx")]
                Boxes::Detector(d) => d.detect(&img)?,
                _ => Vec::new(),
            };
            t_frames += (c1 - c0).as_secs_f64();
            t_detect += c1.elapsed().as_secs_f64();
            frames.insert(k, (jpeg, boxes));
            Ok(())
        })?;
        tm.frames = t_frames;
        tm.detect = t_detect;
        tm.decode = (clock.elapsed().as_secs_f64() - t_frames - t_detect).max(0.0);
        Ok(Frames { frames, size, src_fps, decoded })
    }

    /// The video's box file in `--boxes-dir`, if it has one.
    fn box_file(&self, video: &Path) -> Result<Option<BoxFile>> {
        let Boxes::Dir(d) = &self.boxes else { return Ok(None) };
        let p = super::box_files::box_file_for(video, d);
        if p.is_file() {
            Ok(Some(media::load_boxes(&p)?))
        } else {
            Ok(None)
        }
    }

    /// Gives each stored frame the boxes of its source frame in `bf` (`--boxes-dir`). Returns how many boxes
    /// lie entirely outside the frame (kept as given; they mark no pixel) and the first.
    fn boxes_from_file(&self, bf: &BoxFile, fr: &mut Frames) -> (usize, Option<String>) {
        let (mut boxes_outside, mut first_box_outside) = (0usize, None);
        let [w, h] = fr.size;
        for (k, (_, b)) in fr.frames.iter_mut() {
            let src = ((*k as f64 / self.cfg.fps) * fr.src_fps).round() as usize;
            *b = bf.boxes_for_frame(src).to_vec();
            for p in b.iter().filter(|p| super::box_files::outside_frame(p, w, h)) {
                boxes_outside += 1;
                first_box_outside.get_or_insert_with(|| {
                    format!(
                        "{}: frame {src}: box [{}, {}, {}, {}] lies outside the {w}×{h} frame",
                        bf.path().display(),
                        p.x1,
                        p.y1,
                        p.x2,
                        p.y2,
                    )
                });
            }
        }
        (boxes_outside, first_box_outside)
    }

    /// Writes the kept candidates as samples (`frameNNN.jpg` + [`SampleMeta`] JSON) into `shards/<id>.tar`.
    /// Returns how many.
    fn write_shard(&self, id: &str, cands: &[Candidate], fr: &Frames) -> Result<usize> {
        let fps = self.cfg.fps;
        let labels = self.classifier.labels().to_vec();
        let shard_dir = self.out.join("shards");
        let mut writer = ShardWriter::new(&shard_dir, id, usize::MAX, u64::MAX)?;
        let mut kept = 0usize;
        for c in cands.iter().filter(|c| c.kept) {
            let (a, b) = frame_span(c.start, c.end, fps);
            let mut files = Vec::new();
            let mut times = Vec::new();
            let mut boxes = Vec::new();
            for (j, k) in (a..=b).enumerate() {
                let (jpeg, bx) = &fr.frames[&k];
                files.push((format!("frame{j:03}.jpg"), jpeg.clone()));
                times.push(k as f64 / fps);
                boxes.push(bx.iter().map(|p| [p.x1, p.y1, p.x2, p.y2, p.conf.unwrap_or(1.0)]).collect());
            }
            let meta = SampleMeta {
                video_id: id.to_string(),
                start: c.start,
                end: c.end,
                text: c.text.clone(),
                emotion_labels: labels.clone(),
                emotion_logits: c.emotion_logits.clone(),
                neutral: c.neutral,
                fps,
                frame_times: times,
                boxes,
                frame_size: fr.size,
            };
            files.push(("json".into(), serde_json::to_vec(&meta)?));
            writer.write(&Sample { key: format!("{id}_{:05}", c.index), files })?;
            kept += 1;
        }
        let written = writer.finish()?;
        // One shard per video, named after it.
        if let Some(first) = written.first() {
            let final_path = self.shard_path(id);
            std::fs::rename(first, &final_path).map_err(|e| Error::io(&final_path, e))?;
        }
        Ok(kept)
    }

    /// Writes `index/<id>.jsonl` (every candidate, kept or not), which marks the video done, and
    /// `labels.json` (the emotion labels) when it is not there yet.
    fn write_index(&self, id: &str, cands: &[Candidate]) -> Result<()> {
        let mut index = String::new();
        for c in cands {
            index.push_str(&serde_json::to_string(c)?);
            index.push('\n');
        }
        let lp = self.out.join("labels.json");
        if !lp.is_file() {
            let labels = serde_json::to_vec(self.classifier.labels())?;
            crate::output::write_atomic(&lp, |f| std::io::Write::write_all(f, &labels))?;
        }
        let ip = self.index_path(id);
        crate::output::write_atomic(&ip, |f| std::io::Write::write_all(f, index.as_bytes()))
    }
}

/// The frames a video's kept candidates need: JPEG and person boxes by frame number (at `fps`), the original
/// frame size, the source frame rate and how many source frames were decoded.
struct Frames {
    frames: BTreeMap<usize, (Vec<u8>, Vec<PersonBox>)>,
    size: [u32; 2],
    src_fps: f64,
    decoded: usize,
}
