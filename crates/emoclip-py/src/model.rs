//! `emoclip.Model`: a loaded encoder with its preprocessing (the CLI's `--weights/--config/--model/--norm/
//! --frames/--dtype/--device` in one object), turning media and text into L2-normalised float32 vectors through
//! the same [`emoclip::encoder`] calls as `emoclip embed`, `embed-text` and `similarity`.
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use candle_core::{DType, Device};
use emoclip::encoder::{load_encoder, Embedder, Encoder, ModelKind};
use emoclip::media::{self, BoxFile, Normalization};
use emoclip::tokenizer::{ClipTokenizer, Truncation};
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::items::{encode_items, BoxSource, Item, Run};
use crate::job::{self, Stop};

/// Everything a call needs, shared with the worker threads.
pub struct Inner {
    pub emb: Embedder,
    pub pool: Option<Arc<rayon::ThreadPool>>,
    tok: OnceLock<ClipTokenizer>,
    pub scale: f32,
    pub embed_dim: usize,
    desc: String,
    pub threads: Option<usize>,
    /// What built the encoder, for [`emoclip::encoder::encoder_id`] (heads check it).
    spec: String,
    config: Option<emoclip::emotionclip::EmotionClipConfig>,
    kind: ModelKind,
    norm: Normalization,
    id: OnceLock<emoclip::encoder::EncoderId>,
}

impl Inner {
    /// The encoder's identity (weights fingerprint, preprocessing), computed on first use.
    pub fn encoder_id(&self) -> emoclip::Result<emoclip::encoder::EncoderId> {
        if let Some(id) = self.id.get() {
            return Ok(id.clone());
        }
        let id =
            emoclip::encoder::encoder_id(&self.spec, self.config.as_ref(), self.kind, self.norm, self.emb.num_frames)?;
        Ok(self.id.get_or_init(|| id).clone())
    }

    /// Another embedder over the same weights (tensors are shared, not copied).
    pub fn clone_embedder(&self) -> emoclip::Result<Embedder> {
        let enc = match &self.emb.encoder {
            Encoder::Emotion(m) => Encoder::Emotion(m.clone()),
            Encoder::Clip(c) => Encoder::Clip(c.clone()),
        };
        Embedder::new(enc, self.emb.pre, self.emb.device.clone(), self.emb.dtype, self.emb.num_frames)
    }

    pub fn tokenizer(&self) -> emoclip::Result<&ClipTokenizer> {
        if let Some(t) = self.tok.get() {
            return Ok(t);
        }
        let t = ClipTokenizer::new()?;
        Ok(self.tok.get_or_init(|| t))
    }

    /// Text embeddings `[N, D]` (rows), `chunk` texts per forward pass.
    pub fn embed_texts(&self, texts: &[String], trunc: Truncation, chunk: usize) -> emoclip::Result<Vec<Vec<f32>>> {
        let tok = self.tokenizer()?;
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let mut rows = Vec::with_capacity(texts.len());
        for c in refs.chunks(chunk.max(1)) {
            let t = self.emb.embed_texts(tok, c, trunc)?;
            rows.extend(t.to_dtype(DType::F32)?.to_vec2::<f32>()?);
        }
        Ok(rows)
    }
}

/// A loaded EmotionCLIP (or plain CLIP) encoder. Create it with `Model.load(...)`.
#[pyclass(frozen, module = "emoclip._emoclip", name = "Model")]
pub struct Model {
    pub inner: Arc<Inner>,
}

fn parse_dtype(s: &str) -> PyResult<DType> {
    match s.to_ascii_lowercase().as_str() {
        "f32" | "float32" => Ok(DType::F32),
        "f16" | "float16" => Ok(DType::F16),
        "bf16" | "bfloat16" => Ok(DType::BF16),
        _ => Err(PyValueError::new_err(format!("dtype={s:?}: use \"f32\", \"f16\" or \"bf16\""))),
    }
}

fn parse_kind(s: &str) -> PyResult<ModelKind> {
    match s.to_ascii_lowercase().as_str() {
        "emotionclip" => Ok(ModelKind::EmotionClip),
        "clip" => Ok(ModelKind::Clip),
        _ => Err(PyValueError::new_err(format!(
            "model={s:?}: use \"emotionclip\" (subject-aware frame encoder + temporal head) or \"clip\" (plain CLIP, \
             frame features averaged)"
        ))),
    }
}

fn parse_norm(s: &str) -> PyResult<Normalization> {
    match s.to_ascii_lowercase().as_str() {
        "imagenet" => Ok(Normalization::IMAGENET),
        "clip" => Ok(Normalization::CLIP),
        _ => Err(PyValueError::new_err(format!(
            "norm={s:?}: use \"imagenet\" (the official EmotionCLIP default) or \"clip\""
        ))),
    }
}

/// `cpu`, `cuda` or `cuda:N` (the CLI's `--device`).
fn parse_device(s: &str) -> PyResult<Device> {
    if s == "cpu" {
        return Ok(Device::Cpu);
    }
    let ordinal = match s.strip_prefix("cuda") {
        Some("") => 0,
        Some(r) => r
            .strip_prefix(':')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| PyValueError::new_err(format!("device={s:?}: use \"cpu\", \"cuda\" or \"cuda:N\"")))?,
        None => return Err(PyValueError::new_err(format!("device={s:?}: use \"cpu\", \"cuda\" or \"cuda:N\""))),
    };
    if !candle_core::utils::cuda_is_available() {
        return Err(PyValueError::new_err(format!(
            "device={s:?}: this emoclip package was built without CUDA; build it with \
             `maturin build --release --features cuda` on a machine with the CUDA toolkit, or use device=\"cpu\""
        )));
    }
    Device::new_cuda(ordinal).map_err(|e| PyValueError::new_err(format!("device={s:?}: {e}")))
}

fn encoder_dim(enc: &Encoder) -> usize {
    match enc {
        Encoder::Emotion(m) => m.config.backbone.embed_dim,
        Encoder::Clip(c) => c.config.embed_dim,
    }
}

/// `[rows, dim]` float32, C-contiguous.
pub fn rows_to_array<'py>(py: Python<'py>, rows: Vec<f32>, n: usize, dim: usize) -> PyResult<Bound<'py, PyAny>> {
    Ok(PyArray1::from_vec(py, rows).reshape([n, dim])?.into_any())
}

/// A 2-D float32 array as rows (any strides).
pub fn array_rows(a: &PyReadonlyArray2<'_, f32>) -> Vec<Vec<f32>> {
    a.as_array().outer_iter().map(|r| r.to_vec()).collect()
}

fn truncation(s: &str) -> PyResult<Truncation> {
    match s {
        "eot" => Ok(Truncation::ForceEot),
        "plain" => Ok(Truncation::Plain),
        _ => Err(PyValueError::new_err(format!(
            "truncation={s:?}: use \"eot\" (open_clip ≥ 2: over-long texts end with EOT, the CLI default) or \"plain\" \
             (the official EmotionCLIP tokenizer, `embed-text --plain-truncation`)"
        ))),
    }
}

#[pymethods]
impl Model {
    /// Low-level loader; see `emoclip.Model.load`.
    #[staticmethod]
    #[pyo3(signature = (weights, config=None, model="emotionclip", device="cpu", dtype="f32", threads=None, norm="imagenet", frames=8))]
    #[allow(clippy::too_many_arguments)]
    fn load(
        py: Python<'_>,
        weights: String,
        config: Option<PathBuf>,
        model: &str,
        device: &str,
        dtype: &str,
        threads: Option<usize>,
        norm: &str,
        frames: usize,
    ) -> PyResult<Self> {
        crate::warnings::install();
        let dtype_v = parse_dtype(dtype)?;
        let kind = parse_kind(model)?;
        let norm_v = parse_norm(norm)?;
        let device_v = parse_device(device)?;
        let pool = match threads {
            None => None,
            Some(0) => return Err(PyValueError::new_err("threads=0: give 1 or more, or None for all cores")),
            Some(n) => Some(Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .thread_name(|i| format!("emoclip-{i}"))
                    .build()
                    .map_err(|e| PyValueError::new_err(format!("threads={n}: cannot start the thread pool: {e}")))?,
            )),
        };
        let desc = format!(
            "Model(weights={weights:?}, model={:?}, device={device:?}, dtype={:?}, frames={frames}, threads={})",
            model.to_ascii_lowercase(),
            dtype.to_ascii_lowercase(),
            threads.map_or("None".to_string(), |t| t.to_string())
        );
        let inner = job::run(py, pool.clone(), 1, None, move |_ctx| {
            let cfg = match &config {
                Some(p) => Some(emoclip::weights::load::read_config(p)?),
                None => None,
            };
            let enc = load_encoder(&weights, cfg.as_ref(), kind, dtype_v, &device_v)?;
            let spec = weights.clone();
            let scale = enc.logit_scale()?;
            let embed_dim = encoder_dim(&enc);
            let pre = emoclip::encoder::preprocessor_for(enc.image_size(), norm_v);
            let emb = Embedder::new(enc, pre, device_v, dtype_v, frames)?;
            Ok(Inner {
                emb,
                pool,
                tok: OnceLock::new(),
                scale,
                embed_dim,
                desc,
                threads,
                spec,
                config: cfg,
                kind,
                norm: norm_v,
                id: OnceLock::new(),
            })
        })?;
        Ok(Model { inner: Arc::new(inner) })
    }

    /// Embedding dimension D.
    #[getter]
    fn embed_dim(&self) -> usize {
        self.inner.embed_dim
    }

    /// `exp(logit_scale)`: the factor that turns cosine similarities into zero-shot logits.
    #[getter]
    fn logit_scale(&self) -> f32 {
        self.inner.scale
    }

    /// Model input size in pixels (frames are resized and centre-cropped to it).
    #[getter]
    fn image_size(&self) -> usize {
        self.inner.emb.encoder.image_size()
    }

    /// Frames sampled per video clip.
    #[getter]
    fn frames(&self) -> usize {
        self.inner.emb.num_frames
    }

    /// Text context length in tokens.
    #[getter]
    fn context_length(&self) -> usize {
        self.inner.emb.encoder.context_length()
    }

    /// Threads of this model's own pool (None: the process-wide pool, all cores).
    #[getter]
    fn threads(&self) -> Option<usize> {
        self.inner.threads
    }

    fn __repr__(&self) -> String {
        self.inner.desc.clone()
    }

    /// Low-level media encoder: `items` are paths (str / os.PathLike) or uint8 arrays (`[H, W, 3]` images,
    /// `[T, H, W, 3]` clips); `kinds` says what each must be ("video", "image", "any"); `boxes` per item
    /// `None`, `("file", path)` or `("json", text)`; `masks` per item `None` or a float32 `[T', S, S]` array.
    #[pyo3(signature = (items, kind, boxes=None, boxes_dir=None, masks=None, batch_size=4, errors="raise", progress=None))]
    #[allow(clippy::too_many_arguments)]
    fn _encode<'py>(
        &self,
        py: Python<'py>,
        items: Vec<Bound<'py, PyAny>>,
        kind: &str,
        boxes: Option<Vec<Option<(String, String)>>>,
        boxes_dir: Option<PathBuf>,
        masks: Option<Vec<Option<Bound<'py, PyAny>>>>,
        batch_size: usize,
        errors: &str,
        progress: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if batch_size == 0 {
            return Err(PyValueError::new_err("batch_size=0: give 1 or more (clips per forward pass)"));
        }
        let skip = match errors {
            "raise" => false,
            "skip" => true,
            _ => {
                return Err(PyValueError::new_err(format!(
                    "errors={errors:?}: use \"raise\" (stop at the first bad input) or \"skip\" (NaN rows for bad \
                     inputs, a warning naming each)"
                )))
            }
        };
        let n = items.len();
        let box_src = box_sources(n, boxes, boxes_dir.as_deref(), &items)?;
        let masks = masks.unwrap_or_default();
        if !masks.is_empty() && masks.len() != n {
            return Err(PyValueError::new_err(format!("masks: {} entries for {n} inputs", masks.len())));
        }
        let mut built = Vec::with_capacity(n);
        for (i, (item, b)) in items.iter().zip(box_src).enumerate() {
            let m = masks.get(i).and_then(|m| m.as_ref());
            built.push(Item::from_py(item, i, kind, b, m, &self.inner)?);
        }
        let inner = self.inner.clone();
        let dim = inner.embed_dim;
        let run = Run { batch: batch_size, skip_errors: skip };
        let rows =
            job::run(py, inner.pool.clone(), n, progress.as_ref(), move |ctx| encode_items(&inner, built, run, ctx))?;
        rows_to_array(py, rows, n, dim)
    }

    /// Low-level text encoder; see `emoclip.Model.encode_text`.
    #[pyo3(signature = (texts, truncation="eot"))]
    fn _encode_text<'py>(&self, py: Python<'py>, texts: Vec<String>, truncation: &str) -> PyResult<Bound<'py, PyAny>> {
        let trunc = self::truncation(truncation)?;
        let inner = self.inner.clone();
        let n = texts.len();
        let dim = inner.embed_dim;
        // `emoclip embed-text` encodes 256 texts per forward pass.
        let rows = job::run(py, inner.pool.clone(), n, None, move |ctx| {
            ctx.check()?;
            Ok(inner.embed_texts(&texts, trunc, 256)?.concat())
        })?;
        rows_to_array(py, rows, n, dim)
    }

    /// `exp(logit_scale) · cos` of every media row with every text row (f32, as `emoclip similarity`).
    fn _similarity<'py>(
        &self,
        py: Python<'py>,
        media: PyReadonlyArray2<'py, f32>,
        text: PyReadonlyArray2<'py, f32>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (m, t) = (array_rows(&media), array_rows(&text));
        check_dims(&m, &t, self.inner.embed_dim)?;
        let scale = self.inner.scale;
        let (n, p) = (m.len(), t.len());
        let out: Vec<f32> =
            py.detach(|| m.iter().flat_map(|r| emoclip::embed::zero_shot::zero_shot(r, &t, scale).logits).collect());
        rows_to_array(py, out, n, p)
    }

    /// Zero-shot scores of media embeddings `[N, D]` against prompts: without templates, each prompt is
    /// embedded as it is and scored as `emoclip similarity` does (f32); with templates, or a built-in prompt set
    /// (`basic`, `emotic`, `sentiment`) or a prompts file, each class is written into every template and the
    /// template embeddings ensembled (`emoclip analyze`'s scoring). Returns `(labels, scores, probs)`.
    #[pyo3(signature = (media, prompts, templates=None, prompt_set=None))]
    fn _zero_shot<'py>(
        &self,
        py: Python<'py>,
        media: PyReadonlyArray2<'py, f32>,
        prompts: Option<Vec<String>>,
        templates: Option<Vec<String>>,
        prompt_set: Option<String>,
    ) -> PyResult<(Vec<String>, Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let m = array_rows(&media);
        if m.iter().any(|r| r.len() != self.inner.embed_dim) {
            return Err(PyValueError::new_err(format!(
                "media embeddings have dimension {} but this model's are {}",
                media.shape()[1],
                self.inner.embed_dim
            )));
        }
        let inner = self.inner.clone();
        let n = m.len();
        let (labels, scores, probs) = job::run(py, inner.pool.clone(), 1, None, move |ctx| {
            ctx.check()?;
            zero_shot(&inner, &m, prompts, templates, prompt_set)
        })?;
        let p = labels.len();
        Ok((labels, rows_to_array(py, scores, n, p)?, rows_to_array(py, probs, n, p)?))
    }
}

type ZeroShotOut = (Vec<String>, Vec<f32>, Vec<f32>);

fn zero_shot(
    inner: &Inner,
    media: &[Vec<f32>],
    prompts: Option<Vec<String>>,
    templates: Option<Vec<String>>,
    prompt_set: Option<String>,
) -> job::JobResult<ZeroShotOut> {
    use emoclip::analyze::{PromptSet, Prompts, ZeroShot};
    let bad = |m: String| Stop::Err(PyValueError::new_err(m));
    let mut set: Prompts = match (prompt_set, prompts, templates) {
        (Some(s), None, None) => PromptSet::parse(&s).load()?,
        (Some(s), None, Some(t)) => Prompts { templates: check_templates(t)?, ..PromptSet::parse(&s).load()? },
        // `emoclip similarity`: the prompts embedded in one forward pass, f32 scores.
        (None, Some(p), None) => {
            let text = inner.embed_texts(&p, Truncation::ForceEot, usize::MAX)?;
            let (mut s, mut pr) = (Vec::new(), Vec::new());
            for r in media {
                let z = emoclip::embed::zero_shot::zero_shot(r, &text, inner.scale);
                s.extend(z.logits);
                pr.extend(z.probs);
            }
            return Ok((p, s, pr));
        }
        (None, Some(p), Some(t)) => Prompts {
            name: "prompts".into(),
            labels: p.clone(),
            phrases: p,
            templates: check_templates(t)?,
            warnings: vec![],
        },
        _ => return Err(bad("give prompts (a list of texts) or a prompt set name/file, not both".into())),
    };
    for w in std::mem::take(&mut set.warnings) {
        tracing::warn!("{w}");
    }
    // 256 texts per forward pass, as `emoclip analyze` builds its prompt sets.
    let zs = ZeroShot::build(&set, inner.scale, |texts| inner.embed_texts(texts, Truncation::ForceEot, 256))?;
    let (mut s, mut pr) = (Vec::new(), Vec::new());
    for r in media {
        s.extend(zs.logits(r)?.into_iter().map(|x| x as f32));
        pr.extend(zs.probs(r)?.into_iter().map(|x| x as f32));
    }
    Ok((set.labels, s, pr))
}

fn check_templates(t: Vec<String>) -> job::JobResult<Vec<String>> {
    let bad = |m: String| Stop::Err(PyValueError::new_err(m));
    if t.is_empty() {
        return Err(bad("templates: empty list; give None or templates that contain {} once".into()));
    }
    if let Some(x) = t.iter().find(|t| t.matches("{}").count() != 1) {
        return Err(bad(format!("template {x:?} must contain {{}} exactly once (where the class goes)")));
    }
    Ok(t)
}

fn check_dims(m: &[Vec<f32>], t: &[Vec<f32>], dim: usize) -> PyResult<()> {
    for (what, rows) in [("media", m), ("text", t)] {
        if let Some(r) = rows.first() {
            if r.len() != dim {
                return Err(PyValueError::new_err(format!(
                    "{what} embeddings have dimension {} but this model's are {dim}",
                    r.len()
                )));
            }
        }
    }
    Ok(())
}

/// Per item, where its person boxes come from: the explicit list, or `<stem>.boxes.json` in `boxes_dir`
/// (the CLI's `--boxes-dir`: the directory must exist; inputs without a file are counted in one warning).
fn box_sources(
    n: usize,
    boxes: Option<Vec<Option<(String, String)>>>,
    boxes_dir: Option<&Path>,
    items: &[Bound<'_, PyAny>],
) -> PyResult<Vec<BoxSource>> {
    if let Some(b) = boxes {
        if b.len() != n {
            return Err(PyValueError::new_err(format!(
                "boxes: {} entries for {n} inputs; give one per input (None for no boxes)",
                b.len()
            )));
        }
        return b
            .into_iter()
            .enumerate()
            .map(|(i, s)| match s {
                None => Ok(BoxSource::None),
                Some((k, v)) if k == "file" => Ok(BoxSource::File(PathBuf::from(v))),
                Some((k, v)) if k == "json" => Ok(BoxSource::Json(v, crate::errors::label("boxes", i))),
                Some((k, _)) => Err(PyValueError::new_err(format!("boxes[{i}]: unknown source kind {k:?}"))),
            })
            .collect();
    }
    let Some(dir) = boxes_dir else { return Ok(vec![BoxSource::None; n]) };
    if !dir.is_dir() {
        return Err(PyValueError::new_err(format!(
            "boxes {}: {}; give the directory that holds <stem>.boxes.json per input, or leave boxes out (subject \
             masks are then empty)",
            dir.display(),
            if dir.exists() { "not a directory" } else { "no such directory" }
        )));
    }
    let mut out = Vec::with_capacity(n);
    let mut missing = Vec::new();
    for item in items {
        let found = item.extract::<PathBuf>().ok().and_then(|p| emoclip::embed::boxes_beside(dir, &p).map(|b| (p, b)));
        match found {
            Some((_, b)) => out.push(BoxSource::File(b)),
            None => {
                missing.push(item.str().map(|s| s.to_string()).unwrap_or_default());
                out.push(BoxSource::None);
            }
        }
    }
    if !missing.is_empty() {
        tracing::warn!(
            "{} of {} input(s) have no <stem>.boxes.json in {} (e.g. {}): their subject masks are empty",
            missing.len(),
            n,
            dir.display(),
            missing[0]
        );
    }
    Ok(out)
}

/// A box file from a Python-side source (read in the worker).
pub fn load_box_source(src: &BoxSource) -> emoclip::Result<Option<BoxFile>> {
    Ok(match src {
        BoxSource::None => None,
        BoxSource::File(p) => Some(media::load_boxes(p)?),
        BoxSource::Json(text, label) => Some(media::parse_boxes(text, label)?),
    })
}
