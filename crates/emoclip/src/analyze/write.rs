//! Writing one video's analysis under `OUT/<video-id>/` ([`write_video`]) and the skip-or-analyse-then-write step of a batch run ([`analyze_to_dir`]); the files and their formats are those of [`super::outputs`].
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::outputs;
use super::report::{render, ReportInput};
use super::run::{AnalyzeEvent, Analyzer, VideoAnalysis, VideoInput};
use crate::Result;

/// Lines per chart in the report: a subject's best labels by mean score.
const LINES_PER_CHART: usize = 4;

/// Writes `analysis` into `out/<video-id>/` (every file under a temporary name, then renamed; the `.done`
/// marker last, holding the settings key, the detector and the statistics) and returns that directory. The
/// marker of an earlier run is removed first, so an interrupted write is redone on the next run.
pub fn write_video(out: &Path, analysis: &mut VideoAnalysis) -> Result<PathBuf> {
    let t = Instant::now();
    let dir = out.join(&analysis.video_id);
    outputs::begin(&dir)?;
    outputs::write_timeline(&dir, &analysis.timeline)?;
    outputs::write_embeddings(&dir, &analysis.index, &analysis.embeddings)?;
    outputs::write_boxes(&dir, analysis.frame_size, &analysis.detections, &analysis.tracks)?;
    let html = render(&ReportInput {
        timeline: &analysis.timeline,
        duration: analysis.duration,
        settings: analysis.settings.clone(),
        notes: analysis.warnings.clone(),
        thumbnails: analysis.thumbnails.clone(),
        lines_per_chart: LINES_PER_CHART,
    });
    outputs::write_report(&dir, &html)?;
    analysis.stats.write_s = t.elapsed().as_secs_f64();
    let summary = serde_json::json!({
        "video": analysis.path.display().to_string(),
        "outputs_key": analysis.outputs_key,
        "detector": analysis.detector,
        "encoder": analysis.encoder,
        "duration": analysis.duration,
        "frame_size": [analysis.frame_size.0, analysis.frame_size.1],
        "windows": analysis.windows.len(),
        "rows": analysis.timeline.rows.len(),
        "subjects": analysis.timeline.subjects().iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        "stats": analysis.stats,
        "warnings": analysis.warnings,
    });
    outputs::finish(&dir, &summary)?;
    Ok(dir)
}

/// What [`analyze_to_dir`] did with a video.
#[derive(Debug)]
pub enum Outcome {
    /// `out/<video-id>/` already held a finished analysis with the same settings.
    Skipped(PathBuf),
    /// Analysed and written to the directory.
    Done(Box<VideoAnalysis>, PathBuf),
}

/// Skips a video whose output directory is finished with the same settings (unless `overwrite`); otherwise
/// analyses it (reusing the boxes an earlier run detected there) and writes it. Nothing is written when the
/// analysis fails.
pub fn analyze_to_dir(
    analyzer: &Analyzer,
    input: &VideoInput,
    out: &Path,
    overwrite: bool,
    on_event: &mut dyn FnMut(AnalyzeEvent) -> ControlFlow<()>,
) -> Result<Outcome> {
    let dir = Analyzer::video_dir(out, &input.path);
    if !overwrite && analyzer.is_finished(&dir, input) {
        return Ok(Outcome::Skipped(dir));
    }
    let mut input = input.clone();
    if input.cached.is_none() {
        input.cached = analyzer.cached_boxes(&dir);
    }
    let mut analysis = analyzer.analyze(&input, on_event)?;
    let dir = write_video(out, &mut analysis)?;
    Ok(Outcome::Done(Box::new(analysis), dir))
}
