//! Per-item feature cache for the linear probe (the official `linear_eval.py` re-extracts features every run; here they are stored as `<dir>/<fnv1a64(key)>.safetensors` with the key in the metadata).
use crate::hash::fnv1a64;
use crate::output::write_atomic;
use crate::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

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
}
