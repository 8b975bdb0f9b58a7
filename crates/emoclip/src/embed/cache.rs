//! Per-item feature cache (the official `linear_eval.py` re-extracts features every run; here they are stored
//! as `<dir>/<fnv1a64(key)>.safetensors` with the key in the metadata), its key rules, and embedding what it
//! lacks.
//!
//! A key is the model part ([`model_key`]: weights spec and fingerprint, config, model kind, dtype,
//! normalisation, frames) and the item part ([`item_key`]: the media file's and the box file's fingerprints
//! and any dataset-specific media options); a fingerprint is path, size and modification time
//! ([`file_fingerprint`]), so an edited file is embedded again.
use super::batch::{EmbedEvent, Failure, OutsideBoxes};
use crate::encoder::{Embedder, MediaInput, ModelKind};
use crate::hash::{file_fingerprint, fnv1a64};
use crate::media::{MediaOptions, Normalization};
use crate::output::write_atomic;
use crate::{Error, Result};
use candle_core::DType;
use rayon::prelude::*;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// The part of the cache key shared by every item: weights (spec, plus size/mtime for a file), config, model
/// kind, dtype, normalisation and frames per clip.
pub fn model_key(
    weights: &str,
    config: Option<&Path>,
    kind: ModelKind,
    dtype: DType,
    norm: Normalization,
    frames: usize,
) -> String {
    let weights = if weights.starts_with("random") || crate::weights::hub::repo_of(weights).is_some() {
        weights.to_string()
    } else {
        format!("{weights}@{}", file_fingerprint(Path::new(weights)))
    };
    let config = config.map_or("none".into(), file_fingerprint);
    let norm = match norm {
        Normalization::IMAGENET => "imagenet".to_string(),
        Normalization::CLIP => "clip".to_string(),
        other => format!("{other:?}"),
    };
    let model = match kind {
        ModelKind::EmotionClip => "emotionclip",
        ModelKind::Clip => "clip",
    };
    format!("v1|weights={weights}|config={config}|model={model}|dtype={}|norm={norm}|frames={frames}", dtype.as_str())
}

/// The key of one item: `model_key`, the media file's fingerprint, `boxes` (a box file's fingerprint or the
/// boxes themselves, "none" without) and the media options when they are not the defaults.
pub fn item_key(model_key: &str, media: &Path, boxes: &str, options: &MediaOptions) -> String {
    let opts = if options.is_default() { String::new() } else { format!("|media={options:?}") };
    format!("{model_key}|media={}|boxes={boxes}{opts}", file_fingerprint(media))
}

/// The outcome of [`FeatureCache::embed`].
#[derive(Debug, Default)]
pub struct Cached {
    /// One vector per key (None where embedding failed).
    pub rows: Vec<Option<Vec<f32>>>,
    /// Items taken from the cache.
    pub hits: usize,
    /// Items embedded now.
    pub embedded: usize,
    pub failures: Vec<Failure>,
    pub outside: OutsideBoxes,
}

/// A directory of cached feature vectors.
#[derive(Debug, Clone)]
pub struct FeatureCache {
    pub dir: PathBuf,
}

impl FeatureCache {
    /// Creates the directory if needed.
    pub fn new(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        Ok(Self { dir: dir.to_path_buf() })
    }

    /// The file a key is stored in.
    pub fn path_for(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{:016x}.safetensors", fnv1a64(key.as_bytes())))
    }

    /// The cached vector for `key`, if present and readable with the same key (a hash collision or a corrupt
    /// file counts as absent, with a warning for the latter).
    pub fn get(&self, key: &str) -> Option<Vec<f32>> {
        let p = self.path_for(key);
        let bytes = std::fs::read(&p).ok()?;
        let parsed = (|| -> std::result::Result<Option<Vec<f32>>, String> {
            let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| e.to_string())?;
            let stored = meta.metadata().as_ref().and_then(|m| m.get("key").cloned());
            if stored.as_deref() != Some(key) {
                return Ok(None);
            }
            let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| e.to_string())?;
            let t = st.tensor("features").map_err(|e| e.to_string())?;
            if t.dtype() != safetensors::Dtype::F32 {
                return Err(format!("dtype {:?}, expected F32", t.dtype()));
            }
            Ok(Some(t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()))
        })();
        match parsed {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!("{}: unreadable cache entry ({e}); recomputing", p.display());
                None
            }
        }
    }

    /// Stores `features` under `key` (atomically).
    pub fn put(&self, key: &str, features: &[f32]) -> Result<PathBuf> {
        let p = self.path_for(key);
        let data: Vec<u8> = features.iter().flat_map(|v| v.to_le_bytes()).collect();
        let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![features.len()], &data)
            .map_err(|e| Error::Msg(format!("{}: {e}", p.display())))?;
        let meta = std::collections::HashMap::from([("key".to_string(), key.to_string())]);
        let bytes = safetensors::serialize([("features", view)], Some(meta))
            .map_err(|e| Error::Msg(format!("{}: {e}", p.display())))?;
        write_atomic(&p, |f| f.write_all(&bytes))?;
        Ok(p)
    }

    /// The vectors of `keys`: from the cache where present, the others embedded in batches of `batch` (item
    /// `i` described by `input(i)`) and stored as each batch is done. The embedder is built by `load` on first
    /// need and kept in `embedder` for the next call; `on` sees the progress ([`EmbedEvent::Plan`] first) and
    /// may stop the run ([`std::ops::ControlFlow::Break`] → [`Error::Interrupted`]; the vectors of the batches
    /// done so far are stored). `load` may fail with the caller's own error type (e.g. `anyhow::Error`).
    pub fn embed<E: From<Error>>(
        &self,
        keys: &[String],
        embedder: &mut Option<Embedder>,
        load: impl FnOnce() -> std::result::Result<Embedder, E>,
        batch: usize,
        input: impl Fn(usize) -> Result<MediaInput> + Sync,
        on: &mut dyn FnMut(EmbedEvent) -> ControlFlow<()>,
    ) -> std::result::Result<Cached, E> {
        let rows: Vec<Option<Vec<f32>>> = keys.par_iter().map(|k| self.get(k)).collect();
        let todo: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].is_none()).collect();
        let mut out = Cached { hits: rows.len() - todo.len(), rows, ..Cached::default() };
        if on(EmbedEvent::Plan { cached: out.hits, todo: todo.len() }).is_break() {
            return Err(Error::Interrupted { unit: "item(s)".into(), done: 0, total: todo.len() }.into());
        }
        if todo.is_empty() {
            return Ok(out);
        }
        if embedder.is_none() {
            *embedder = Some(load()?);
        }
        let Some(emb) = embedder.as_ref() else { unreachable!("embedder loaded above") };
        let run = emb.embed_each(&todo, batch, input, &mut |ev| {
            if let EmbedEvent::Embedded(rows) = &ev {
                for (i, v) in rows.iter() {
                    if let Err(e) = self.put(&keys[*i], v) {
                        on(EmbedEvent::CacheWrite(&e))?;
                    }
                }
            }
            on(ev)
        })?;
        out.embedded = run.rows.len();
        for (i, v) in run.rows {
            out.rows[i] = Some(v);
        }
        (out.failures, out.outside) = (run.failures, run.outside);
        Ok(out)
    }
}
