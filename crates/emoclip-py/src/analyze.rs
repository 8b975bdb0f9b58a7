//! `emoclip.analyze`: one video through the library's [`emoclip::analyze::Analyzer`] (what `emoclip analyze`
//! does per video, without writing files), returned as NumPy arrays; GIL released, Ctrl-C and progress as the
//! encoders ([`crate::job`]).
use std::ops::ControlFlow;
use std::path::PathBuf;

use emoclip::analyze::{
    AnalyzeEvent, AnalyzeSettings, Analyzer, PeopleSource, PromptSet, Subject, VideoAnalysis, VideoInput, WindowSource,
};
use numpy::{PyArray1, PyArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::job::{self, Stop};
use crate::model::{rows_to_array, Model};

fn subject_id(s: Subject) -> i64 {
    match s {
        Subject::Scene => -1,
        Subject::Person(id) => id as i64,
    }
}

/// Low-level analysis of one video; see `emoclip.analyze`. Returns a dict of arrays and lists.
#[pyfunction]
#[pyo3(signature = (model, path, window=4.0, stride=2.0, segments=None, detector=None, boxes=None, boxes_dir=None,
                    prompts=vec!["basic".to_string()], templates=None, heads=vec![], persons=true, batch_size=8,
                    progress=None))]
#[allow(clippy::too_many_arguments)]
pub fn _analyze<'py>(
    py: Python<'py>,
    model: &Model,
    path: PathBuf,
    window: f64,
    stride: f64,
    segments: Option<PathBuf>,
    detector: Option<PathBuf>,
    boxes: Option<PathBuf>,
    boxes_dir: Option<PathBuf>,
    prompts: Vec<String>,
    templates: Option<Vec<String>>,
    heads: Vec<PathBuf>,
    persons: bool,
    batch_size: usize,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let people = match (detector, boxes, boxes_dir) {
        (None, None, None) => PeopleSource::None,
        (Some(m), None, None) => PeopleSource::Detector { model: m, params: Default::default() },
        (None, Some(b), None) => PeopleSource::Boxes(b),
        (None, None, Some(d)) => PeopleSource::BoxesDir(d),
        _ => return Err(PyValueError::new_err("give one of detector=, boxes= (a file or a directory), not several")),
    };
    let inner = model.inner.clone();
    let a = job::run(py, inner.pool.clone(), 0, progress.as_ref(), move |ctx| {
        let windows = match &segments {
            Some(s) => WindowSource::Spans(emoclip::analyze::load_segments(s)?),
            None => WindowSource::Fixed { window, stride },
        };
        let settings = AnalyzeSettings {
            windows,
            people,
            prompts: prompts.iter().map(|p| PromptSet::parse(p)).collect(),
            templates,
            heads,
            batch: batch_size,
            persons,
            frames_per_clip: inner.emb.num_frames,
            ..AnalyzeSettings::default()
        };
        let analyzer = Analyzer::new(inner.clone_embedder()?, inner.encoder_id()?, settings)?;
        for w in &analyzer.warnings {
            tracing::warn!("{w}");
        }
        let input = VideoInput { path, windows: None, cached: None };
        let mut on = |ev: AnalyzeEvent| {
            match ev {
                AnalyzeEvent::Started { windows, .. } => ctx.progress_of(0, windows),
                AnalyzeEvent::Window { done, total, .. } => ctx.progress_of(done, total),
                AnalyzeEvent::Warning(w) => tracing::warn!("{w}"),
            }
            if ctx.cancelled() {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        };
        match analyzer.analyze(&input, &mut on) {
            Ok(a) => Ok((a, analyzer.sources().to_vec())),
            Err(emoclip::Error::Interrupted { .. }) if ctx.cancelled() => Err(Stop::Cancelled),
            Err(e) => Err(e.into()),
        }
    })?;
    to_dict(py, a.0, &a.1)
}

fn to_dict<'py>(
    py: Python<'py>,
    a: VideoAnalysis,
    sources: &[emoclip::analyze::timeline::ScoreSource],
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let rows = &a.timeline.rows;
    let r = rows.len();
    d.set_item("path", a.path.clone())?;
    d.set_item("video_id", a.video_id.clone())?;
    d.set_item("duration", a.duration)?;
    d.set_item("frame_size", a.frame_size)?;
    d.set_item("warnings", a.warnings.clone())?;
    let src: Vec<(String, Vec<String>, String)> = sources
        .iter()
        .map(|s| {
            let kind = serde_json::to_value(s.kind).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
            (s.name.clone(), s.labels.clone(), kind)
        })
        .collect();
    d.set_item("sources", src)?;
    d.set_item("window", PyArray1::from_vec(py, rows.iter().map(|x| x.window as i64).collect()))?;
    d.set_item("t_start", PyArray1::from_vec(py, rows.iter().map(|x| x.t_start).collect()))?;
    d.set_item("t_end", PyArray1::from_vec(py, rows.iter().map(|x| x.t_end).collect()))?;
    d.set_item("subject", PyArray1::from_vec(py, rows.iter().map(|x| subject_id(x.subject)).collect()))?;
    let boxes: Vec<f32> = rows.iter().flat_map(|x| x.mean_box.unwrap_or([f32::NAN; 4])).collect();
    d.set_item("mean_box", PyArray1::from_vec(py, boxes).reshape([r, 4])?)?;
    d.set_item("frames_with_box", PyArray1::from_vec(py, rows.iter().map(|x| x.frames_with_box as i64).collect()))?;
    d.set_item("flags", rows.iter().map(|x| x.flags.clone()).collect::<Vec<_>>())?;
    d.set_item("label", rows.iter().map(|x| x.label.clone()).collect::<Vec<_>>())?;
    let mut scores = Vec::new();
    for (k, s) in sources.iter().enumerate() {
        let c = s.labels.len();
        let v: Vec<f32> =
            rows.iter().flat_map(|x| x.scores.get(k).cloned().unwrap_or_default()).map(|v| v as f32).collect();
        if v.len() != r * c {
            return Err(PyValueError::new_err(format!("source {}: {} scores for {r} rows × {c}", s.name, v.len())));
        }
        scores.push(rows_to_array(py, v, r, c)?);
    }
    d.set_item("scores", scores)?;
    let dim = a.embeddings.first().map_or(0, Vec::len);
    let n = a.embeddings.len();
    d.set_item("embeddings", rows_to_array(py, a.embeddings.concat(), n, dim)?)?;
    d.set_item("embedding_window", PyArray1::from_vec(py, a.index.iter().map(|e| e.window as i64).collect()))?;
    d.set_item("embedding_subject", PyArray1::from_vec(py, a.index.iter().map(|e| subject_id(e.subject)).collect()))?;
    d.set_item("stats", serde_json::to_string(&a.stats).unwrap_or_default())?;
    Ok(d)
}
