//! `hf:<org>/<name>` weights: looked up in the local Hugging Face hub cache (`$HF_HUB_CACHE`,
//! `$HF_HOME/hub` or `~/.cache/huggingface/hub`, layout `models--org--name/snapshots/<rev>/`), the same
//! cache `huggingface-cli download` and the Python libraries fill.
use crate::{Error, Result};
use std::path::PathBuf;

pub fn cache_dir() -> PathBuf {
    if let Ok(p) = std::env::var("HF_HUB_CACHE") {
        return PathBuf::from(p);
    }
    if let Ok(p) = std::env::var("HF_HOME") {
        return PathBuf::from(p).join("hub");
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| ".".into());
    PathBuf::from(home).join(".cache/huggingface/hub")
}

/// The snapshot directory of `repo` (the revision `refs/main` points to, else the newest snapshot).
pub fn resolve(repo: &str) -> Result<PathBuf> {
    if repo.split('/').count() != 2 || repo.contains("..") {
        return Err(Error::Msg(format!("hf:{repo}: expected hf:<org>/<name>, e.g. hf:openai/clip-vit-base-patch32")));
    }
    let base = cache_dir().join(format!("models--{}", repo.replace('/', "--")));
    let snaps = base.join("snapshots");
    let by_ref = std::fs::read_to_string(base.join("refs/main")).ok().map(|r| snaps.join(r.trim())).filter(|p| p.is_dir());
    let newest = || {
        std::fs::read_dir(&snaps)
            .ok()?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
            .map(|e| e.path())
    };
    by_ref.or_else(newest).ok_or_else(|| {
        Error::Msg(format!(
            "hf:{repo} is not in the local Hugging Face cache ({}). This build does not download: on a \
             connected machine run `huggingface-cli download {repo}` (or `hf download {repo}`) and copy the cache \
             here (or set HF_HUB_CACHE), or pass --weights with the path of a local .safetensors/.pt file or directory",
            snaps.display()
        ))
    })
}
