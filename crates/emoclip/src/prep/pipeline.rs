//! `emoclip prepare`: videos + captions → emotion-scored, filtered WebDataset shards and an index of every
//! candidate (appendix A; official `preprocessing/` scripts). One shard and one index file per video,
//! each written to a temporary name and renamed; the index is written last and marks the video done, so a
//! rerun after a kill skips finished videos and redoes the rest, with no duplicate or lost sample.
use super::filters::{frame_span, FilterConfig, FilterResult};
use super::{read_captions, sentences, SentenceConfig};
use crate::media::{self, BoxFile, PersonBox, Preprocessor};
use crate::shards::{Sample, ShardWriter};
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

/// Metadata stored as the `json` member of each sample.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SampleMeta {
    pub video_id: String,
    pub start: f64,
    pub end: f64,
    pub text: String,
    pub emotion_labels: Vec<String>,
    pub emotion_logits: Vec<f32>,
    pub neutral: f32,
    pub fps: f64,
    /// Time (s) of each stored frame.
    pub frame_times: Vec<f64>,
    /// Person boxes per stored frame, `[x1, y1, x2, y2, conf]` in original-frame pixels.
    pub boxes: Vec<Vec<[f32; 5]>>,
    pub frame_size: [u32; 2],
}

#[derive(Debug)]
pub struct VideoReport {
    pub video_id: String,
    pub candidates: usize,
    pub kept: usize,
    pub skipped_cues: usize,
    /// Caption cues overlapping the previous one (kept, reported).
    pub overlapping_cues: usize,
    /// Length of the video in seconds.
    pub video_seconds: f64,
    pub timings: StageTimings,
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

pub fn video_id(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().replace(['.', '/'], "_")).unwrap_or_else(|| "video".into())
}

/// Caption file for a video: `<stem>.srt`, `.vtt`, `.en.vtt`, `.json` in `dir` (or beside the video).
pub fn find_captions(video: &Path, dir: Option<&Path>) -> Option<PathBuf> {
    let stem = video.file_stem()?.to_string_lossy().to_string();
    let d = dir.map(Path::to_path_buf).or_else(|| video.parent().map(Path::to_path_buf))?;
    ["srt", "vtt", "en.vtt", "json"].iter().map(|e| d.join(format!("{stem}.{e}"))).find(|p| p.is_file())
}

/// The videos job `shard_index` of `num_shards` handles: every `num_shards`-th of the sorted list, so job
/// arrays (Slurm, Kubernetes) split the work deterministically.
pub fn partition(mut videos: Vec<PathBuf>, shard_index: usize, num_shards: usize) -> Result<Vec<PathBuf>> {
    if num_shards == 0 || shard_index >= num_shards {
        return Err(Error::Msg(format!("--shard-index {shard_index} must be < --num-shards {num_shards}")));
    }
    videos.sort();
    Ok(videos.into_iter().enumerate().filter(|(i, _)| i % num_shards == shard_index).map(|(_, v)| v).collect())
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
    /// yet renamed). Call before processing, while no other job writes into `out`.
    pub fn clean_stale(&self) -> Result<usize> {
        let mut n = 0;
        for sub in ["shards", "index"] {
            let d = self.out.join(sub);
            let Ok(entries) = std::fs::read_dir(&d) else { continue };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                let stale = name.starts_with('.') || (sub == "shards" && name.ends_with("-000000.tar"));
                if stale {
                    std::fs::remove_file(e.path()).map_err(|err| Error::io(e.path(), err))?;
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// True when a previous run finished this video.
    pub fn is_done(&self, video: &Path) -> bool {
        self.index_path(&video_id(video)).is_file()
    }

    pub fn process(&self, video: &Path, captions: &Path) -> Result<VideoReport> {
        let id = video_id(video);
        let mut tm = StageTimings::default();
        let clock = std::time::Instant::now();
        let caps = read_captions(captions)?;
        let sents = match self.punctuation {
            Some(m) => {
                super::sentences_with_model(&caps.chunks, &self.cfg.sentences, Some(m as &dyn super::PunctuationModel))
                    .0
            }
            None => sentences(&caps.chunks, &self.cfg.sentences),
        };
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
                video_id: id.clone(),
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
        // Frames needed by kept candidates only; stream the video once at `fps`.
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
        let box_file: Option<BoxFile> = match &self.boxes {
            Boxes::Dir(d) => {
                let p = d
                    .join(format!("{}.boxes.json", video.file_stem().map(|s| s.to_string_lossy()).unwrap_or_default()));
                if p.is_file() {
                    Some(media::load_boxes(&p)?)
                } else {
                    None
                }
            }
            _ => None,
        };
        let mut duration = 0.0f64;
        let quality = self.cfg.jpeg_quality;
        let (mut t_frames, mut t_detect) = (0.0f64, 0.0f64);
        let clock = std::time::Instant::now();
        let (_, src_fps, decoded) = media::stream_at_fps(video, fps, &mut |k, t, img: RgbImage| {
            duration = duration.max(t);
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
        let clock = std::time::Instant::now();
        if decoded > 0 && src_fps > 0.0 && (decoded as f64 / src_fps) < self.cfg.min_video_seconds {
            return Err(Error::media(
                video,
                format!(
                    "{:.0} s long, shorter than --min-video-seconds {}; skipped",
                    decoded as f64 / src_fps,
                    self.cfg.min_video_seconds
                ),
            ));
        }
        if let Some(bf) = &box_file {
            for (k, (_, b)) in frames.iter_mut() {
                let src = ((*k as f64 / fps) * src_fps).round() as usize;
                *b = bf.boxes_for_frame(src).to_vec();
            }
        }
        // Spans reaching past the decoded end lose their frames: re-check the frame filter.
        for c in cands.iter_mut().filter(|c| c.kept) {
            let (a, b) = frame_span(c.start, c.end, fps);
            let present = (a..=b).filter(|k| frames.contains_key(k)).count();
            c.n_frames = present;
            c.filters.frames = present >= self.cfg.filters.min_frames;
            c.kept = c.filters.kept();
        }
        let labels = self.classifier.labels().to_vec();
        let shard_dir = self.out.join("shards");
        let mut writer = ShardWriter::new(&shard_dir, &id, usize::MAX, u64::MAX)?;
        let mut kept = 0usize;
        for c in cands.iter().filter(|c| c.kept) {
            let (a, b) = frame_span(c.start, c.end, fps);
            let mut files = Vec::new();
            let mut times = Vec::new();
            let mut boxes = Vec::new();
            for (j, k) in (a..=b).enumerate() {
                let (jpeg, bx) = &frames[&k];
                files.push((format!("frame{j:03}.jpg"), jpeg.clone()));
                times.push(k as f64 / fps);
                boxes.push(bx.iter().map(|p| [p.x1, p.y1, p.x2, p.y2, p.conf.unwrap_or(1.0)]).collect());
            }
            let meta = SampleMeta {
                video_id: id.clone(),
                start: c.start,
                end: c.end,
                text: c.text.clone(),
                emotion_labels: labels.clone(),
                emotion_logits: c.emotion_logits.clone(),
                neutral: c.neutral,
                fps,
                frame_times: times,
                boxes,
                frame_size: size,
            };
            files.push(("json".into(), serde_json::to_vec(&meta).map_err(|e| Error::Msg(e.to_string()))?));
            writer.write(&Sample { key: format!("{id}_{:05}", c.index), files })?;
            kept += 1;
        }
        let written = writer.finish()?;
        // One shard per video, named after it.
        if let Some(first) = written.first() {
            let final_path = self.shard_path(&id);
            std::fs::rename(first, &final_path).map_err(|e| Error::io(&final_path, e))?;
        }
        let mut index = String::new();
        for c in &cands {
            index.push_str(&serde_json::to_string(c).map_err(|e| Error::Msg(e.to_string()))?);
            index.push('\n');
        }
        let lp = self.out.join("labels.json");
        if !lp.is_file() {
            let labels = serde_json::to_vec(self.classifier.labels()).map_err(|e| Error::Msg(e.to_string()))?;
            crate::output::write_atomic(&lp, |f| std::io::Write::write_all(f, &labels))?;
        }
        let ip = self.index_path(&id);
        crate::output::write_atomic(&ip, |f| std::io::Write::write_all(f, index.as_bytes()))?;
        tm.write = clock.elapsed().as_secs_f64();
        let video_seconds = if src_fps > 0.0 { decoded as f64 / src_fps } else { 0.0 };
        Ok(VideoReport {
            video_id: id,
            candidates: cands.len(),
            kept,
            skipped_cues: caps.report.skipped.len(),
            overlapping_cues: caps.report.overlaps.len(),
            video_seconds,
            timings: tm,
        })
    }
}
