//! `emoclip analyze`: what each person in a video feels, and when. Parses flags, checks the outputs before any work, shows progress and a summary; `emoclip::analyze` does the work (docs/analyze.md).
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::Args;
use emoclip::analyze::window::{Span, WindowSource, DEFAULT_STRIDE, DEFAULT_WINDOW};
use emoclip::analyze::{
    analyze_to_dir, AnalyzeEvent, AnalyzeSettings, Analyzer, Outcome, PeopleSource, PromptSet, VideoInput,
};
use emoclip::detect::{Labels, YoloParams};
use emoclip::encoder::Embedder;
use emoclip::output::check_output_dir;

use crate::commands::{at_least_one, ModelArgs, Norm};
use crate::progress::Progress;

#[derive(Args)]
pub struct AnalyzeArgs {
    /// Video files, or directories (their video files, not recursively).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output directory: one folder per video (timeline.jsonl/.csv, embeddings.npy/.jsonl, boxes.json,
    /// tracks.json, report.html, .done).
    #[arg(long, short)]
    pub out: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    #[arg(long, value_enum, default_value = "imagenet")]
    pub norm: Norm,
    /// Window length in seconds (one 8-frame clip per window).
    #[arg(long, default_value_t = DEFAULT_WINDOW, conflicts_with_all = ["captions", "segments"])]
    pub window: f64,
    /// Seconds between window starts (default: half a window of overlap).
    #[arg(long, default_value_t = DEFAULT_STRIDE, conflicts_with_all = ["captions", "segments"])]
    pub stride: f64,
    /// One window per caption sentence: a caption file (.vtt, .srt, YouTube .json) for a single video, or a
    /// directory with `<stem>.<ext>` per video.
    #[arg(long, conflicts_with = "segments")]
    pub captions: Option<PathBuf>,
    /// Explicit windows: a CSV (`start,end[,label]`), JSON or JSONL file (times in seconds or HH:MM:SS.fff).
    #[arg(long)]
    pub segments: Option<PathBuf>,
    /// YOLOv5/v7/v8 ONNX person detector run on the frames used (needs libonnxruntime).
    #[arg(long, conflicts_with_all = ["boxes", "boxes_dir"])]
    pub detector: Option<PathBuf>,
    /// Detector confidence threshold.
    #[arg(long, default_value_t = 0.25, requires = "detector")]
    pub yolo_conf: f32,
    /// Detector NMS IoU threshold.
    #[arg(long, default_value_t = 0.45, requires = "detector")]
    pub yolo_iou: f32,
    /// Keep only each anchor's best class (YOLO's `multi_label=False`) instead of the official multi-label rule.
    #[arg(long, requires = "detector")]
    pub yolo_best_class: bool,
    /// Person boxes JSON for a single video (frame keys = decoded frame numbers, 0-based).
    #[arg(long, conflicts_with = "boxes_dir")]
    pub boxes: Option<PathBuf>,
    /// Directory with `<stem>.boxes.json` per video.
    #[arg(long)]
    pub boxes_dir: Option<PathBuf>,
    /// Zero-shot prompt set: basic, emotic, sentiment, or a prompts file (repeatable).
    #[arg(long = "prompts", default_values_t = vec!["basic".to_string()])]
    pub prompts: Vec<String>,
    /// Templates replacing the prompt sets' own (repeatable), each with `{}` where the class goes.
    #[arg(long = "templates")]
    pub templates: Vec<String>,
    /// A trained head from `emoclip probe … --save-head FILE` (repeatable).
    #[arg(long = "head")]
    pub heads: Vec<PathBuf>,
    /// Only the scene per window, not each tracked person.
    #[arg(long)]
    pub no_persons: bool,
    /// Clips per forward pass, across windows and persons.
    #[arg(long, default_value_t = 8, value_parser = at_least_one)]
    pub batch: usize,
    /// This job's shard (0-based) of the sorted input list (Slurm/Kubernetes job arrays).
    #[arg(long, default_value_t = 0, requires = "num_shards")]
    pub shard_index: usize,
    /// Number of shards; video i of the sorted list goes to shard i mod N.
    #[arg(long, default_value_t = 1, value_parser = at_least_one)]
    pub num_shards: usize,
    /// Redo videos whose output folder is already finished.
    #[arg(long)]
    pub overwrite: bool,
    /// Thumbnails in each report.
    #[arg(long, default_value_t = 8)]
    pub thumbnails: usize,
}

/// Video files of the inputs (directories expanded, sorted), without images.
fn videos(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let files = emoclip::embed::expand_inputs(inputs, false)?;
    let mut out = vec![];
    for f in files {
        match emoclip::media::media_kind(&f) {
            Ok(emoclip::media::MediaKind::Video) => out.push(f),
            Ok(emoclip::media::MediaKind::Image) => {
                tracing::warn!("{}: a still image; analyze takes videos (use `emoclip embed` for images)", f.display())
            }
            // an explicit file of another type: analysed anyway, the decoder says what it is
            Err(_) if inputs.contains(&f) => out.push(f),
            Err(_) => {}
        }
    }
    Ok(out)
}

/// Caption sentences of a caption file as windows.
fn caption_spans(path: &Path) -> Result<Vec<Span>> {
    let caps = emoclip::prep::captions::read_captions(path)?;
    let cfg = emoclip::prep::sentences::SentenceConfig::default();
    let sentences = emoclip::prep::sentences::sentences(&caps.chunks, &cfg);
    if sentences.is_empty() {
        bail!("{}: no caption sentence found; check the file is a caption file of this video", path.display());
    }
    Ok(sentences.into_iter().map(|s| Span::new(s.start, s.end, Some(s.text))).collect())
}

/// The caption file of `video` in a directory: `<stem>.vtt`, `.srt`, `.json` (first found).
fn caption_beside(dir: &Path, video: &Path) -> Option<PathBuf> {
    let stem = video.file_stem()?.to_string_lossy().into_owned();
    ["vtt", "srt", "json"].iter().map(|e| dir.join(format!("{stem}.{e}"))).find(|p| p.is_file())
}

fn people(a: &AnalyzeArgs) -> Result<PeopleSource> {
    if let Some(d) = &a.detector {
        let params = YoloParams {
            conf: a.yolo_conf,
            iou: a.yolo_iou,
            labels: if a.yolo_best_class { Labels::BestClass } else { Labels::MultiLabel },
            ..YoloParams::default()
        };
        return Ok(PeopleSource::Detector { model: d.clone(), params });
    }
    if let Some(b) = &a.boxes {
        if !b.is_file() {
            bail!("--boxes {}: no such file; give the person-box JSON of the video, or leave --boxes out", b.display());
        }
        return Ok(PeopleSource::Boxes(b.clone()));
    }
    if let Some(d) = &a.boxes_dir {
        if !d.is_dir() {
            bail!("--boxes-dir {}: no such directory; give the directory holding <stem>.boxes.json", d.display());
        }
        return Ok(PeopleSource::BoxesDir(d.clone()));
    }
    Ok(PeopleSource::None)
}

pub fn run(a: AnalyzeArgs) -> Result<i32> {
    // Everything that can be checked before loading a model or decoding a frame.
    check_output_dir(&a.out, "--out")?;
    if a.shard_index >= a.num_shards {
        bail!(
            "--shard-index {} must be below --num-shards {} (shards are numbered from 0)",
            a.shard_index,
            a.num_shards
        );
    }
    let all = videos(&a.inputs)?;
    if all.is_empty() {
        bail!("no video among the inputs; pass video files (mp4, avi, mkv, webm, mov, m4v) or directories of them");
    }
    let mut ids = std::collections::HashMap::new();
    for v in &all {
        if let Some(prev) = ids.insert(emoclip::analyze::run::video_id(v), v.clone()) {
            bail!(
                "{} and {} have the same file name, so they would share an output folder; analyse them into different --out directories",
                prev.display(),
                v.display()
            );
        }
    }
    let mine: Vec<PathBuf> =
        all.iter().enumerate().filter(|(i, _)| i % a.num_shards == a.shard_index).map(|(_, v)| v.clone()).collect();
    if a.boxes.is_some() && all.len() != 1 {
        bail!("--boxes applies to a single video; use --boxes-dir with <stem>.boxes.json files for several");
    }
    let mut windows = WindowSource::Fixed { window: a.window, stride: a.stride };
    if let Some(s) = &a.segments {
        windows = WindowSource::Spans(emoclip::analyze::load_segments(s)?);
    }
    // per-video caption windows, parsed now so a bad caption file fails before any work
    let mut per_video: Vec<Option<WindowSource>> = vec![None; mine.len()];
    if let Some(c) = &a.captions {
        if c.is_dir() {
            for (i, v) in mine.iter().enumerate() {
                match caption_beside(c, v) {
                    Some(p) => per_video[i] = Some(WindowSource::Spans(caption_spans(&p)?)),
                    None => bail!(
                        "--captions {}: no caption file for {} (looked for <stem>.vtt, .srt, .json)",
                        c.display(),
                        v.display()
                    ),
                }
            }
        } else if c.is_file() {
            if all.len() != 1 {
                bail!("--captions FILE applies to a single video; give a directory with <stem>.vtt per video");
            }
            let spans = caption_spans(c)?;
            per_video.iter_mut().for_each(|w| *w = Some(WindowSource::Spans(spans.clone())));
        } else {
            bail!("--captions {}: no such file or directory", c.display());
        }
    }
    for h in &a.heads {
        if !h.is_file() {
            bail!("--head {}: no such file; write one with `emoclip probe … --save-head FILE`", h.display());
        }
    }
    let settings = AnalyzeSettings {
        windows,
        people: people(&a)?,
        prompts: a.prompts.iter().map(|p| PromptSet::parse(p)).collect(),
        templates: (!a.templates.is_empty()).then(|| a.templates.clone()),
        heads: a.heads.clone(),
        batch: a.batch,
        persons: !a.no_persons,
        thumbnails: a.thumbnails,
        ..AnalyzeSettings::default()
    };
    if mine.is_empty() {
        eprintln!("shard {}/{}: no video in this shard ({} in all)", a.shard_index, a.num_shards, all.len());
        return Ok(0);
    }

    let t0 = std::time::Instant::now();
    let norm: emoclip::media::Normalization = a.norm.into();
    // Fingerprint first: it reads the checkpoint once more, and its buffers are reused by the model load.
    let id = a.model.encoder_id(norm, settings.frames_per_clip)?;
    let (encoder, device, dtype) = a.model.load()?;
    let pre = emoclip::encoder::preprocessor_for(encoder.image_size(), norm);
    let embedder = Embedder::new(encoder, pre, device, dtype, settings.frames_per_clip)?;
    let analyzer = Analyzer::new(embedder, id, settings)?;
    for w in &analyzer.warnings {
        tracing::warn!("{w}");
    }
    if a.num_shards > 1 {
        eprintln!("shard {}/{}: {} of {} video(s)", a.shard_index, a.num_shards, mine.len(), all.len());
    }

    let (mut done, mut skipped, mut failed) = (vec![], vec![], vec![]);
    for (i, v) in mine.iter().enumerate() {
        let input = VideoInput { path: v.clone(), windows: per_video[i].clone(), cached: None };
        let pb = std::cell::RefCell::new(None::<Progress>);
        let mut on_event = |ev: AnalyzeEvent| {
            match ev {
                AnalyzeEvent::Started { windows, duration, .. } => {
                    let p = Progress::new(windows as u64, &format!("[{}/{}] {}", i + 1, mine.len(), short(v)));
                    p.set_message(format!("{:.0} s of video", duration));
                    *pb.borrow_mut() = Some(p);
                }
                AnalyzeEvent::Window { done, .. } => {
                    if let Some(p) = pb.borrow().as_ref() {
                        p.set_position(done as u64);
                    }
                }
                AnalyzeEvent::Warning(w) => match pb.borrow().as_ref() {
                    Some(p) => p.suspend(|| tracing::warn!("{w}")),
                    None => tracing::warn!("{w}"),
                },
            }
            // Ctrl-C ends the process: outputs are renamed into place and the marker comes last, so nothing is
            // half-written and the video is redone next time.
            ControlFlow::Continue(())
        };
        let r = analyze_to_dir(&analyzer, &input, &a.out, a.overwrite, &mut on_event);
        if let Some(p) = pb.borrow().as_ref() {
            p.finish();
        }
        match r {
            Ok(Outcome::Skipped(dir)) => {
                eprintln!(
                    "{}: already analysed with these settings ({}); skipped (--overwrite redoes it)",
                    v.display(),
                    dir.display()
                );
                skipped.push(v.clone());
            }
            Ok(Outcome::Done(an, dir)) => {
                let s = &an.stats;
                let persons = an.timeline.subjects().len().saturating_sub(1);
                if an.stats.frames_from_cache > 0 {
                    eprintln!(
                        "  person boxes of {} frame(s) reused from the earlier run's boxes.json",
                        an.stats.frames_from_cache
                    );
                }
                eprintln!(
                    "{}: {} window(s), {} person(s) tracked, {:.1} s of video in {:.1} s ({:.2}× real time) → {}",
                    v.display(),
                    s.windows,
                    persons,
                    an.duration,
                    s.wall_s + s.write_s,
                    an.duration / (s.wall_s + s.write_s).max(1e-9),
                    dir.join("report.html").display()
                );
                eprintln!(
                    "  frames decoded {} / converted {} / used {} (detected {}, cached {}); seconds: decode {:.1}, detect {:.1}, track {:.2}, preprocess {:.1}, encode {:.1}, score {:.2}, write {:.2}",
                    s.frames_decoded,
                    s.frames_converted,
                    s.frames_used,
                    s.frames_detected,
                    s.frames_from_cache,
                    s.decode_s,
                    s.detect_s,
                    s.track_s,
                    s.preprocess_s,
                    s.encode_s,
                    s.score_s,
                    s.write_s
                );
                done.push(v.clone());
            }
            Err(e @ emoclip::Error::Interrupted { .. }) => {
                eprintln!("{e}");
                summary(&done, &skipped, &failed, t0);
                return Ok(130);
            }
            Err(e) => {
                eprintln!("error: {e}");
                failed.push((v.clone(), e.to_string()));
            }
        }
    }
    summary(&done, &skipped, &failed, t0);
    Ok(if failed.is_empty() {
        0
    } else if done.is_empty() && skipped.is_empty() {
        2
    } else {
        1
    })
}

fn short(p: &Path) -> String {
    p.file_name().map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into_owned())
}

fn summary(done: &[PathBuf], skipped: &[PathBuf], failed: &[(PathBuf, String)], t0: std::time::Instant) {
    eprintln!(
        "analyzed {} video(s), skipped {} already done, {} failed, in {:.1} s",
        done.len(),
        skipped.len(),
        failed.len(),
        t0.elapsed().as_secs_f64()
    );
    if !failed.is_empty() {
        eprintln!("failed:");
        for (_, e) in failed {
            eprintln!("  {e}");
        }
    }
}
