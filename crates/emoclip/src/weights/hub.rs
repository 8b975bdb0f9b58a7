//! `hf:<org>/<name>` weights: looked up in the local Hugging Face hub cache (`$HF_HUB_CACHE`,
//! `$HF_HOME/hub` or `~/.cache/huggingface/hub`, layout `models--org--name/snapshots/<rev>/`), the same
//! cache `huggingface-cli download` and the Python libraries fill. Only when the repository is not there, and
//! the `hub` feature is on, it is downloaded into that cache with the hf-hub crate from `$HF_ENDPOINT`
//! (default `https://huggingface.co`); `HF_HUB_OFFLINE=1` (as in the Python libraries) never touches the network.
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

/// Files fetched for a repository: the first weights file that exists, plus its config.
const WEIGHT_FILES: &[&str] =
    &["model.safetensors", "open_clip_model.safetensors", "open_clip_pytorch_model.bin", "pytorch_model.bin"];
/// Side files fetched when present (configs and tokenizers; the emotion classifier needs the latter).
const CONFIG_FILES: &[&str] = &["config.json", "open_clip_config.json", "tokenizer.json", "vocab.json", "merges.txt"];

/// The repository of an `hf:<org>/<name>` spec (`None` for any other spec: a path, `random`).
pub fn repo_of(spec: &str) -> Option<&str> {
    spec.strip_prefix("hf:")
}

/// The local path of a weights or model spec: `hf:<org>/<name>` resolved through the Hugging Face cache
/// ([`resolve`]), anything else taken as a path.
pub fn resolve_spec(spec: &str) -> Result<PathBuf> {
    match repo_of(spec) {
        Some(repo) => resolve(repo),
        None => Ok(PathBuf::from(spec)),
    }
}

/// [`resolve_spec`] of a path argument (`hf:` specs arrive as paths where a flag takes a path).
pub fn resolve_path(path: &std::path::Path) -> Result<PathBuf> {
    match path.to_str() {
        Some(s) => resolve_spec(s),
        None => Ok(path.to_path_buf()),
    }
}

/// The snapshot directory of `repo`: from the cache, else downloaded (with the `hub` feature).
pub fn resolve(repo: &str) -> Result<PathBuf> {
    if repo.split('/').count() != 2 || repo.contains("..") || repo.starts_with('/') {
        return Err(Error::Msg(format!("hf:{repo}: expected hf:<org>/<name>, e.g. hf:openai/clip-vit-base-patch32")));
    }
    match cached(repo) {
        Ok(p) => Ok(p),
        Err(missing) if offline() => {
            Err(Error::Msg(format!("{missing}\n  no download attempted: HF_HUB_OFFLINE is set")))
        }
        Err(missing) => download(repo)
            .map_err(|net| Error::Msg(format!("{missing}\n  download attempt from {}: {net}", endpoint()))),
    }
}

/// Whether `HF_HUB_OFFLINE` asks for no network access (`1`, `true`, `yes` or `on`, as huggingface_hub reads it).
pub fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
}

/// The hub downloads come from: `$HF_ENDPOINT`, else `https://huggingface.co`.
pub fn endpoint() -> String {
    std::env::var("HF_ENDPOINT").ok().filter(|e| !e.is_empty()).unwrap_or_else(|| "https://huggingface.co".into())
}

#[cfg(feature = "hub")]
fn download(repo: &str) -> std::result::Result<PathBuf, String> {
    use std::io::IsTerminal;
    let api = hf_hub::api::sync::ApiBuilder::from_env()
        .with_endpoint(endpoint())
        .with_cache_dir(cache_dir())
        .with_progress(std::io::stderr().is_terminal())
        .build()
        .map_err(|e| e.to_string())?;
    let model = api.model(repo.to_string());
    let mut last = String::from("no weights file found in the repository");
    for f in WEIGHT_FILES {
        match model.get(f) {
            Ok(path) => {
                for c in CONFIG_FILES {
                    let _ = model.get(c);
                }
                return path.parent().map(|p| p.to_path_buf()).ok_or_else(|| "bad cache path".to_string());
            }
            Err(e) => last = format!("{f}: {e}"),
        }
    }
    Err(last)
}

#[cfg(not(feature = "hub"))]
fn download(_repo: &str) -> std::result::Result<PathBuf, String> {
    Err(format!("this build has no `hub` feature (tried {WEIGHT_FILES:?}, {CONFIG_FILES:?})"))
}

/// The cached snapshot directory (the revision `refs/main` points to, else the newest snapshot).
pub fn cached(repo: &str) -> Result<PathBuf> {
    let base = cache_dir().join(format!("models--{}", repo.replace('/', "--")));
    let snaps = base.join("snapshots");
    let by_ref =
        std::fs::read_to_string(base.join("refs/main")).ok().map(|r| snaps.join(r.trim())).filter(|p| p.is_dir());
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
            "hf:{repo} is not in the local Hugging Face cache ({}). On a connected machine run \
             `huggingface-cli download {repo}` (or `emoclip` with network access) and copy the cache here (or set \
             HF_HUB_CACHE), or pass the path of a local .safetensors/.pt file or directory instead",
            snaps.display()
        ))
    })
}
