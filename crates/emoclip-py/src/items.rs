//! Media items from Python (paths, or uint8 NumPy frames) and the batch loop that embeds them: the loop of
//! `emoclip embed` (`emoclip::embed::batch`, `Embedder::embed_each`): each batch of `batch` items is decoded
//! and preprocessed in parallel, ahead of the model, and encoded in one forward pass, so a batch holds the same
//! items as the CLI's with the same `--batch` (batched matrix products round differently for other batch
//! sizes). The cancel flag is checked before each batch and each item.
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Mutex;

use candle_core::{Device, Tensor};
use emoclip::embed::batch::pipelined;
use emoclip::embed::OutsideBoxes;
use emoclip::encoder::{MediaInput, Prepared};
use emoclip::media::{self, DecodedClip, MediaKind, MediaOptions};
use numpy::{PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::job::{Ctx, JobResult, Stop};
use crate::model::{load_box_source, Inner};

/// Where an item's person boxes come from.
#[derive(Clone, Debug)]
pub enum BoxSource {
    None,
    /// A box file (the CLI's `--boxes`).
    File(PathBuf),
    /// Box JSON from a Python dict, and the name errors give it.
    Json(String, PathBuf),
}

/// One input.
pub enum Item {
    /// A video, image or frame directory, decoded by the library.
    Path { path: PathBuf, boxes: BoxSource },
    /// Frames decoded by the caller: a clip (the frames sampled as from a frame directory) or one image.
    Frames { label: PathBuf, kind: MediaKind, clip: DecodedClip, boxes: BoxSource, masks: Option<Tensor> },
}

/// Batch size and what to do with a bad input.
#[derive(Clone, Copy)]
pub struct Run {
    pub batch: usize,
    /// Leave a NaN row and warn, instead of raising.
    pub skip_errors: bool,
}

fn value_err(i: usize, msg: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(format!("items[{i}]: {msg}"))
}

/// RGB frames `[T, H, W, 3]` (any strides) at `positions` as images; each position copied once.
fn frames_of(a: &numpy::ndarray::ArrayViewD<'_, u8>, positions: &[usize]) -> Vec<image::RgbImage> {
    let (h, w) = (a.shape()[1] as u32, a.shape()[2] as u32);
    let mut cache: std::collections::BTreeMap<usize, image::RgbImage> = Default::default();
    positions
        .iter()
        .map(|&t| {
            cache
                .entry(t)
                .or_insert_with(|| {
                    let f = a.index_axis(numpy::ndarray::Axis(0), t);
                    let raw: Vec<u8> = match f.as_slice() {
                        Some(s) => s.to_vec(),
                        None => f.iter().copied().collect(),
                    };
                    image::RgbImage::from_raw(w, h, raw).unwrap_or_default()
                })
                .clone()
        })
        .collect()
}

impl Item {
    /// `obj`: a path (str / os.PathLike) or a uint8 array `[H, W, 3]` (image) / `[T, H, W, 3]` (clip); `kind`
    /// is what the call accepts ("video": videos, frame directories and clips; "image": images; "any").
    pub fn from_py(
        obj: &Bound<'_, PyAny>,
        i: usize,
        kind: &str,
        boxes: BoxSource,
        masks: Option<&Bound<'_, PyAny>>,
        inner: &Inner,
    ) -> PyResult<Item> {
        if let Ok(arr) = obj.cast::<PyUntypedArray>() {
            let dtype = arr.dtype().to_string();
            let Ok(arr) = obj.cast::<PyArrayDyn<u8>>() else {
                return Err(value_err(
                    i,
                    format!(
                        "frames have dtype {dtype}; give uint8 RGB values 0..255 (for floats in [0, 1]: \
                         `np.clip(x * 255, 0, 255).round().astype(np.uint8)`)"
                    ),
                ));
            };
            let ro = arr.readonly();
            let a = ro.as_array();
            let shape = a.shape().to_vec();
            let (is_clip, dims) = match shape.len() {
                3 => (false, &shape[..]),
                4 => (true, &shape[1..]),
                _ => {
                    return Err(value_err(
                        i,
                        format!("frames of shape {shape:?}; give [H, W, 3] (an image) or [T, H, W, 3] (a clip)"),
                    ))
                }
            };
            if dims[2] != 3 || dims[0] == 0 || dims[1] == 0 || (is_clip && shape[0] == 0) {
                return Err(value_err(
                    i,
                    format!("frames of shape {shape:?}; give RGB frames, [H, W, 3] or [T, H, W, 3] with T, H, W ≥ 1"),
                ));
            }
            match (kind, is_clip) {
                ("image", true) => {
                    return Err(value_err(i, format!("a clip of shape {shape:?}; use encode_frames for clips")))
                }
                ("video", false) => {
                    return Err(value_err(
                        i,
                        format!("an image of shape {shape:?}; give clips [T, H, W, 3] (or use encode_images)"),
                    ))
                }
                _ => {}
            }
            let a4 = if is_clip { a.clone() } else { a.clone().insert_axis(numpy::ndarray::Axis(0)) };
            let t = a4.shape()[0];
            let positions = if is_clip { media::uniform_indices(t, inner.emb.num_frames) } else { vec![0] };
            let frames = frames_of(&a4, &positions);
            let (h, w) = (dims[0] as u32, dims[1] as u32);
            let masks = match masks {
                None => None,
                Some(m) => Some(mask_tensor(m, i, t, is_clip, &positions, inner.emb.encoder.image_size())?),
            };
            let label = crate::errors::label("frames", i);
            let clip = DecodedClip { frames, indices: positions, total_frames: t, width: w, height: h, fps: 0.0 };
            let kind = if is_clip { MediaKind::Video } else { MediaKind::Image };
            return Ok(Item::Frames { label, kind, clip, boxes, masks });
        }
        let path: PathBuf = obj.extract().map_err(|_| {
            let ty = obj.get_type().name().map(|n| n.to_string()).unwrap_or_default();
            PyTypeError::new_err(format!(
                "items[{i}]: expected a path (str or os.PathLike) or a uint8 NumPy array, got {ty}"
            ))
        })?;
        if masks.is_some() {
            return Err(value_err(i, "masks apply to NumPy frames; for files give person boxes (boxes=)"));
        }
        let is_dir = path.is_dir();
        let found = if is_dir { Some(MediaKind::Video) } else { media::media_kind(&path).ok() };
        match (kind, found) {
            ("video", Some(MediaKind::Image)) => Err(value_err(
                i,
                format!("{} is an image; use encode_images (or encode for a mix of media)", path.display()),
            )),
            ("image", Some(MediaKind::Video)) => Err(value_err(
                i,
                format!(
                    "{} is a {}; use encode_videos (or encode for a mix of media)",
                    path.display(),
                    if is_dir { "frame directory" } else { "video" }
                ),
            )),
            _ => Ok(Item::Path { path, boxes }),
        }
    }

    /// Decodes (paths) and preprocesses, in the worker.
    fn prepare(self, inner: &Inner) -> emoclip::Result<Prepared> {
        match self {
            Item::Path { path, boxes } => inner.emb.prepare(&MediaInput::new(path, load_box_source(&boxes)?)),
            Item::Frames { label, kind, clip, boxes, masks } => {
                let b = load_box_source(&boxes)?;
                let mut p = inner.emb.prepare_decoded(&label, kind, clip, b.as_ref(), &MediaOptions::default())?;
                if let Some(m) = masks {
                    p.has_subject = m.sum_all()?.to_scalar::<f32>()? > 0.0;
                    p.masks = m;
                }
                Ok(p)
            }
        }
    }
}

/// Subject masks given in model-input space: float32 `[T, S, S]` for a clip of T frames (the sampled frames'
/// masks are used) or `[S, S]` for an image; 1 inside the subject.
fn mask_tensor(
    m: &Bound<'_, PyAny>,
    i: usize,
    t: usize,
    is_clip: bool,
    positions: &[usize],
    size: usize,
) -> PyResult<Tensor> {
    let arr = m.cast::<PyArrayDyn<f32>>().map_err(|_| {
        value_err(i, format!("masks must be a float32 array of shape [T, {size}, {size}] (model input space)"))
    })?;
    let ro = arr.readonly();
    let a = ro.as_array();
    let want: Vec<usize> = if is_clip { vec![t, size, size] } else { vec![size, size] };
    if a.shape() != want.as_slice() {
        return Err(value_err(
            i,
            format!(
                "masks of shape {:?}; give {want:?}: one {size}×{size} mask per frame in model input space (after \
                 resize and centre crop), 1 = subject; for person boxes in frame pixels use boxes=",
                a.shape()
            ),
        ));
    }
    let a = if is_clip { a } else { a.insert_axis(numpy::ndarray::Axis(0)) };
    let mut data = Vec::with_capacity(positions.len() * size * size);
    for &p in positions {
        data.extend(a.index_axis(numpy::ndarray::Axis(0), p).iter().copied());
    }
    Tensor::from_vec(data, (positions.len(), size, size), &Device::Cpu).map_err(crate::errors::candle)
}

/// Embeds `items` in batches (see the module documentation); `[N * D]` row-major, NaN rows for skipped items.
/// Decoding of the next batch runs while the current one is encoded (`emoclip::embed::batch::pipelined`, on
/// as many threads of its own as the model's pool has), as in `emoclip embed`.
pub fn encode_items(inner: &Inner, items: Vec<Item>, run: Run, ctx: &Ctx<Vec<f32>>) -> JobResult<Vec<f32>> {
    let n = items.len();
    let dim = inner.embed_dim;
    let mut out = vec![f32::NAN; n * dim];
    let mut outside = OutsideBoxes::default();
    let mut done = 0;
    let mut stopped: Option<Stop> = None;
    // `prepare` consumes its item (a clip's frames move into the model input instead of being copied).
    let slots: Vec<Mutex<Option<Item>>> = items.into_iter().map(|it| Mutex::new(Some(it))).collect();
    let indices: Vec<usize> = (0..n).collect();
    let prepare = |i: usize| -> emoclip::Result<Prepared> {
        let item = slots[i].lock().ok().and_then(|mut s| s.take());
        match item {
            _ if ctx.cancelled() => Err(emoclip::Error::Msg("cancelled".into())),
            Some(item) => item.prepare(inner),
            None => Err(emoclip::Error::Msg(format!("input {i} was prepared twice (please report it)"))),
        }
    };
    let r = pipelined(&indices, run.batch, prepare, |batch| {
        if ctx.cancelled() {
            stopped = Some(Stop::Cancelled);
            return ControlFlow::Break(());
        }
        let len = batch.len();
        let (mut ok_idx, mut ok) = (Vec::new(), Vec::new());
        for (i, p) in batch {
            match p {
                Ok(p) => {
                    ok_idx.push(i);
                    ok.push(p);
                }
                Err(e) if run.skip_errors => tracing::warn!("skipped input {i}: {e}"),
                Err(e) => {
                    stopped = Some(e.into());
                    return ControlFlow::Break(());
                }
            }
        }
        if !ok.is_empty() {
            match inner.emb.encode(&ok) {
                Ok(vs) => {
                    for ((&i, p), v) in ok_idx.iter().zip(&ok).zip(vs) {
                        outside.add(p);
                        out[i * dim..(i + 1) * dim].copy_from_slice(&v);
                    }
                }
                Err(e) if run.skip_errors => {
                    for (&i, p) in ok_idx.iter().zip(&ok) {
                        tracing::warn!("skipped input {i}: {}: {e}", p.path.display());
                    }
                }
                // as the CLI reports a failed batch: each item's path, then the error
                Err(e) => {
                    let msg = format!("{}: {e}", ok[0].path.display());
                    stopped = Some(Stop::Err(crate::errors::with_message(e, msg)));
                    return ControlFlow::Break(());
                }
            }
        }
        done += len;
        ctx.progress(done);
        ControlFlow::Continue(())
    });
    if let Some(s) = stopped {
        return Err(s);
    }
    r?;
    if let Some(w) = outside.warning() {
        tracing::warn!("{w}");
    }
    Ok(out)
}
