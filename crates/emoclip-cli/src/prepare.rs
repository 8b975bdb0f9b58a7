//! `emoclip prepare`: videos + captions → filtered, emotion-scored WebDataset shards (one per video) and an
//! index of every candidate; partitioned for job arrays, resumable, bad videos reported and skipped.
use anyhow::{bail, Result};
use candle_core::Device;
use clap::{Args, ValueEnum};
use emoclip::prep::claim::ClaimOutcome;
use emoclip::prep::filters::FilterConfig;
use emoclip::prep::pipeline::{Boxes, PrepareConfig, Preparer};
use emoclip::prep::settings::{BoxSource, ModelIdentity, PrepareSettings};
use emoclip::prep::videos::{self, find_captions};
use emoclip::prep::{Regroup, SentenceConfig};
use emoclip::text_emotion::EmotionClassifier;
use rayon::prelude::*;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Args)]
pub struct PrepareArgs {
    /// Video files or directories of videos (mp4, webm, mkv, avi, mov).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Directory of caption files `<stem>.srt|.vtt|.json` (default: beside each video).
    #[arg(long)]
    pub captions_dir: Option<PathBuf>,
    /// Text-emotion model directory (an HF snapshot of j-hartmann/emotion-english-distilroberta-base:
    /// config.json, model.safetensors or pytorch_model.bin, tokenizer.json), or hf:<org>/<name>.
    #[arg(long)]
    pub emotion_model: String,
    /// Output directory: shards/<video>.tar and index/<video>.jsonl.
    #[arg(long, short)]
    pub out: PathBuf,
    /// YOLOv5/v7/v8 ONNX person detector (needs libonnxruntime, see scripts/install_deps.sh).
    #[arg(long, conflicts_with = "boxes_dir")]
    pub yolo: Option<PathBuf>,
    /// Keep only each anchor's best class in --yolo's output (YOLO's default `multi_label=False`) instead
    /// of the official multi-label rule, which keeps a person whose score passes even when another class
    /// scores higher.
    #[arg(long, requires = "yolo")]
    pub yolo_best_class: bool,
    /// Punctuation-restoration model directory (ONNX token classification, FullStop-style: model.onnx,
    /// tokenizer.json, config.json), used for captions without punctuation.
    #[arg(long)]
    pub punctuation: Option<PathBuf>,
    /// With --punctuation, how its marks become sentences. `official` (default): the official
    /// `regroup_by_punc`: split only at predicted `.`, drop the words before the first and after the last
    /// `.`, drop sentences with `[`, text without the predicted marks. `all-marks`: also split at `?`,
    /// keep head and tail, keep the marks in the text, remove sound tags first.
    #[arg(long, value_enum, requires = "punctuation")]
    pub regroup: Option<RegroupArg>,
    /// Directory of `<stem>.boxes.json` person boxes instead of a detector.
    #[arg(long)]
    pub boxes_dir: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    pub shard_index: usize,
    #[arg(long, default_value_t = 1)]
    pub num_shards: usize,
    /// Keep captions whose neutral probability is at most this (paper: 0.05).
    #[arg(long, default_value_t = 0.05)]
    pub neutral_max: f32,
    #[arg(long, default_value_t = 2.0)]
    pub min_duration: f64,
    #[arg(long, default_value_t = 10.0)]
    pub max_duration: f64,
    #[arg(long, default_value_t = 3)]
    pub min_chars: usize,
    #[arg(long, default_value_t = 8)]
    pub min_frames: usize,
    /// Skip videos shorter than this many seconds (the paper keeps ≥ 2400).
    #[arg(long, default_value_t = 0.0)]
    pub min_video_seconds: f64,
    /// Video ids (file stems) to exclude, one per line (e.g. overlaps with evaluation sets).
    #[arg(long)]
    pub exclude: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RegroupArg {
    Official,
    AllMarks,
}

impl From<RegroupArg> for Regroup {
    fn from(r: RegroupArg) -> Self {
        match r {
            RegroupArg::Official => Regroup::Official,
            RegroupArg::AllMarks => Regroup::AllMarks,
        }
    }
}

pub fn run(a: PrepareArgs) -> Result<i32> {
    emoclip::output::check_output_dir(&a.out, "--out")?;
    if let Some(d) = a.boxes_dir.as_ref().filter(|d| !d.is_dir()) {
        bail!(
            "--boxes-dir {}: no such directory; give the directory of <stem>.boxes.json files, or use --yolo",
            d.display()
        );
    }
    let excluded = match &a.exclude {
        Some(f) => videos::read_exclude(f)?,
        None => Default::default(),
    };
    let videos = videos::select(&a.inputs, &excluded, a.shard_index, a.num_shards)?;
    if let Some(d) = &a.boxes_dir {
        emoclip::prep::box_files::check_boxes_dir(d, "--boxes-dir")?;
        let missing = emoclip::prep::box_files::videos_without_boxes(&videos, d);
        if !missing.is_empty() {
            tracing::warn!(
                "{} of {} video(s) have no <stem>.boxes.json in {} (e.g. {}): they are prepared without person boxes",
                missing.len(),
                videos.len(),
                d.display(),
                emoclip::prep::box_files::box_file_for(missing[0], d).display()
            );
        }
    }
    let model_dir = emoclip::weights::hub::resolve_spec(&a.emotion_model)?;
    let filters = FilterConfig {
        neutral_max: a.neutral_max,
        min_duration: a.min_duration,
        max_duration: a.max_duration,
        min_chars: a.min_chars,
        min_frames: a.min_frames,
    };
    let sentences = SentenceConfig {
        regroup: a.regroup.map_or(Regroup::Official, Regroup::from),
        // `process` cuts unpunctuated spans to the duration filter; record what it uses.
        max_seconds: Some(filters.max_duration),
        min_seconds: filters.min_duration,
        ..SentenceConfig::default()
    };
    let cfg = PrepareConfig { filters, sentences, min_video_seconds: a.min_video_seconds, ..PrepareConfig::default() };
    // Record the settings (first run) or refuse a rerun with other ones, before any work.
    let settings = PrepareSettings {
        fps: cfg.fps,
        short_side: cfg.short_side,
        jpeg_quality: cfg.jpeg_quality,
        min_video_seconds: cfg.min_video_seconds,
        filters: cfg.filters.clone(),
        sentences: cfg.sentences.clone(),
        emotion_model: ModelIdentity::of(&model_dir)?,
        punctuation_model: a.punctuation.as_deref().map(ModelIdentity::of).transpose()?,
        boxes: match (&a.boxes_dir, &a.yolo) {
            (Some(d), _) => {
                BoxSource::Dir(std::fs::canonicalize(d).unwrap_or_else(|_| d.clone()).display().to_string())
            }
            (None, Some(y)) => BoxSource::Detector(ModelIdentity::of(y)?),
            (None, None) => BoxSource::None,
        },
    };
    settings.record_or_check(&a.out)?;
    let clf = EmotionClassifier::from_dir(&model_dir, &Device::Cpu)?;
    #[cfg(feature = "onnx")]
    let detector = match &a.yolo {
        Some(p) => {
            let mut det = emoclip::detect::onnx::PersonDetector::new(p)?;
            if a.yolo_best_class {
                det.params.labels = emoclip::detect::Labels::BestClass;
            }
            Some(det)
        }
        None => None,
    };
    #[cfg(not(feature = "onnx"))]
    if a.yolo.is_some() {
        bail!("--yolo needs a build with the `onnx` feature");
    }
    // --yolo and --boxes-dir exclude each other (clap).
    let mut boxes = Boxes::None;
    if let Some(d) = &a.boxes_dir {
        boxes = Boxes::Dir(d);
    }
    #[cfg(feature = "onnx")]
    if let Some(det) = &detector {
        boxes = Boxes::Detector(det);
    }
    #[cfg(feature = "onnx")]
    let punct = match &a.punctuation {
        Some(d) => Some(emoclip::prep::punctuation::OnnxPunctuation::from_dir(d)?),
        None => None,
    };
    #[cfg(feature = "onnx")]
    let punctuation = punct.as_ref().map(|p| p as &(dyn emoclip::prep::PunctuationModel + Sync));
    #[cfg(not(feature = "onnx"))]
    let punctuation = match &a.punctuation {
        Some(_) => bail!("--punctuation needs a build with the `onnx` feature"),
        None => None,
    };
    let prep = Preparer { cfg, classifier: &clf, boxes, punctuation, out: a.out.clone() };
    let pb = crate::progress::Progress::new(videos.len() as u64, "prepare (videos)");
    let (mut done, mut kept, mut cands) = (0usize, 0usize, 0usize);
    let mut timings = emoclip::prep::pipeline::StageTimings::default();
    let mut video_seconds = 0.0f64;
    let mut failed: Vec<String> = Vec::new();
    // Held shared for the whole run; temporary files no claim accounts for are removed only when no other
    // run is active (job-array tasks may share `--out`).
    let mut run_lock = emoclip::prep::claim::run_lock(&a.out)?;
    if run_lock.alone {
        let stale = prep.clean_stale()?;
        if stale > 0 {
            tracing::info!("removed {stale} temporary file(s) left by an interrupted run");
        }
    }
    run_lock.share()?;
    // Videos in parallel (rayon; `--threads` caps it), each video's stages in order.
    let todo: Vec<&PathBuf> = videos.iter().filter(|v| !prep.is_done(v)).collect();
    let mut skipped = videos.len() - todo.len();
    pb.inc(skipped as u64);
    let (claimed_elsewhere, done_meanwhile) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let results: Vec<(PathBuf, Option<Result<emoclip::prep::pipeline::VideoReport>>)> = todo
        .par_iter()
        .map(|v| {
            // Claim first, so a second run on this output skips what this one does (and vice versa).
            let res = match prep.claim(v) {
                Err(e) => Some(Err(anyhow::Error::from(e))),
                Ok(ClaimOutcome::HeldBy(holder)) => {
                    pb.suspend(|| tracing::info!("{}: being prepared by {holder}; skipped", v.display()));
                    claimed_elsewhere.fetch_add(1, Ordering::Relaxed);
                    None
                }
                Ok(ClaimOutcome::Claimed(_claim)) if prep.is_done(v) => {
                    done_meanwhile.fetch_add(1, Ordering::Relaxed); // another run finished it meanwhile
                    None
                }
                Ok(ClaimOutcome::Claimed(_claim)) => Some(match find_captions(v, a.captions_dir.as_deref()) {
                    None => Err(anyhow::anyhow!("{}: no caption file (<stem>.srt, .vtt or .json) found", v.display())),
                    Some(c) => prep.process(v, &c).map_err(anyhow::Error::from),
                }),
            };
            if let Some(Err(e)) = &res {
                pb.suspend(|| tracing::error!("{}", crate::errors::describe(e)));
            }
            pb.inc(1);
            ((*v).clone(), res)
        })
        .collect();
    let claimed_elsewhere = claimed_elsewhere.into_inner();
    skipped += done_meanwhile.into_inner();
    let (mut boxes_outside, mut first_box_outside) = (0usize, None);
    for (v, res) in results {
        let Some(res) = res else { continue };
        match res {
            Ok(r) => {
                done += 1;
                kept += r.kept;
                cands += r.candidates;
                timings += r.timings;
                video_seconds += r.video_seconds;
                if r.skipped_cues > 0 || r.overlapping_cues > 0 {
                    tracing::warn!(
                        "{}: captions: {} cue(s) skipped (malformed timestamps or empty cues), {} overlapping the previous cue (kept)",
                        v.display(),
                        r.skipped_cues,
                        r.overlapping_cues
                    );
                }
                if let Some(w) = &r.first_caption_warning {
                    tracing::warn!(
                        "{}: captions: {} malformed line(s) recovered, none used as caption text; first: {w}",
                        v.display(),
                        r.caption_warnings
                    );
                }
                if let Some(note) = r.no_span_note(&prep.cfg.filters) {
                    let hint = if a.punctuation.is_none() { "" } else { " (check --regroup)" };
                    tracing::warn!("{}: {note}{hint}", v.display());
                }
                boxes_outside += r.boxes_outside;
                if first_box_outside.is_none() {
                    first_box_outside = r.first_box_outside;
                }
            }
            Err(e) => failed.push(crate::errors::describe(&e)),
        }
    }
    pb.finish();
    if let Some(e) = first_box_outside {
        tracing::warn!(
            "{boxes_outside} person box(es) lie entirely outside their frame (kept; they mark no pixel), e.g. {e}"
        );
    }
    let elsewhere = if claimed_elsewhere > 0 {
        format!(", {claimed_elsewhere} being prepared by another run")
    } else {
        String::new()
    };
    eprintln!(
        "processed {done} video(s) ({skipped} already done{elsewhere}): {kept} of {cands} caption spans kept; shards in {}",
        a.out.join("shards").display()
    );
    if done > 0 {
        let t = timings;
        let total = t.captions + t.emotion + t.decode + t.frames + t.detect + t.write;
        eprintln!(
            "\nthroughput ({video_seconds:.1} s of video):\n| stage | wall s | video s per wall s |\n|---|---|---|"
        );
        for (name, s) in [
            ("captions → sentences", t.captions),
            ("emotion scores", t.emotion),
            ("decode (8 fps)", t.decode),
            ("resize + JPEG", t.frames),
            ("person detection", t.detect),
            ("write shard + index", t.write),
            ("total", total),
        ] {
            let rate = if s > 0.0 { format!("{:.1}", video_seconds / s) } else { "-".into() };
            eprintln!("| {name} | {s:.3} | {rate} |");
        }
    }
    if failed.is_empty() {
        return Ok(0);
    }
    eprintln!("\n{} video(s) failed:", failed.len());
    for f in &failed {
        eprintln!("  {f}");
    }
    Ok(1)
}

#[derive(Args)]
pub struct ReportArgs {
    /// The output directory of `emoclip prepare`.
    pub prepared: PathBuf,
    /// Where to write report.md and the SVG figures (default: <prepared>/report).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// A neutral threshold to mark on the kept-vs-threshold plot (default: the one `prepare` used, read
    /// from <prepared>/prepare.json; the counts always use that one).
    #[arg(long)]
    pub neutral_max: Option<f32>,
}

pub fn report(a: ReportArgs) -> Result<i32> {
    let dest = a.out.clone().unwrap_or_else(|| a.prepared.join("report"));
    emoclip::output::check_output_dir(&dest, "--out")?;
    let page = emoclip::prep::report::report_from_dir(&a.prepared, &dest, a.neutral_max)?;
    eprintln!("wrote {}", page.display());
    Ok(0)
}
