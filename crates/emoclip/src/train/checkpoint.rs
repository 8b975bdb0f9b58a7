//! Training checkpoints (official `src/engine/trainer.py` `save_checkpoint`/`resume`): `ckpt-<step>/` with `model.safetensors`, `config.json`, `optimizer.safetensors`, `state.json`, written atomically.
use crate::emotionclip::EmotionClipConfig;
use crate::{Error, Result};
use candle_core::Tensor;
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// File in the output directory naming the newest complete checkpoint directory.
pub const LATEST: &str = "LATEST";

/// Where the loop stands, saved as `state.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TrainState {
    /// Optimiser steps done.
    pub step: usize,
    /// Current epoch (0-based).
    pub epoch: usize,
    /// Micro-batches of this epoch already consumed.
    pub pos: usize,
    pub seed: u64,
    /// The training config, as JSON.
    pub config: serde_json::Value,
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::output::write_atomic(path, |f| std::io::Write::write_all(f, bytes))
}

/// How a run starts in its output directory. `false` / `true` convert to `Fresh` / `Resume`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// A new run; refused when the directory already holds one (see [`ensure_no_run`]).
    Fresh,
    /// Continue from the newest checkpoint (a new run when there is none).
    Resume,
    /// A new run that first deletes the previous run's files (see [`clear_run`]).
    Overwrite,
}

impl From<bool> for Start {
    fn from(resume: bool) -> Self {
        if resume {
            Start::Resume
        } else {
            Start::Fresh
        }
    }
}

/// `ckpt-<step>` or its temporary `.tmp-ckpt-<step>`.
fn is_checkpoint_dir(name: &str) -> bool {
    let n = name.strip_prefix(".tmp-").unwrap_or(name);
    n.strip_prefix("ckpt-").is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

/// The entries of a run in `out`, sorted: `ckpt-<step>/` (and `.tmp-ckpt-<step>/`) directories and the
/// entries named in `files` (the trainer's own outputs). Nothing else counts: other files are the user's.
pub fn run_entries(out: &Path, files: &[&str]) -> Result<Vec<PathBuf>> {
    let rd = match std::fs::read_dir(out) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(out, e)),
    };
    let mut found = Vec::new();
    for e in rd {
        let e = e.map_err(|e| Error::io(out, e))?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if (is_dir && is_checkpoint_dir(name)) || files.contains(&name) {
            found.push(e.path());
        }
    }
    found.sort();
    Ok(found)
}

/// Errors when `out` already holds a run (see [`run_entries`]): starting another there would mix the two
/// (old checkpoints beside new ones, `LATEST` going backwards, metrics appended). An empty or missing
/// directory, or one holding only other files, is fine.
pub fn ensure_no_run(out: &Path, files: &[&str]) -> Result<()> {
    let found = run_entries(out, files)?;
    if found.is_empty() {
        return Ok(());
    }
    let mut names: Vec<String> =
        found.iter().take(4).map(|p| p.file_name().unwrap_or_default().to_string_lossy().into_owned()).collect();
    if found.len() > 4 {
        names.push(format!("and {} more", found.len() - 4));
    }
    Err(Error::Msg(format!(
        "{}: already holds a training run ({}); continue it with --resume, write the new run to a fresh --out \
         directory, or pass --overwrite to delete that run's files first",
        out.display(),
        names.join(", ")
    )))
}

/// Deletes the run in `out` (exactly the entries [`run_entries`] lists; other files stay). Returns how many.
pub fn clear_run(out: &Path, files: &[&str]) -> Result<usize> {
    let found = run_entries(out, files)?;
    for p in &found {
        let r = if p.is_dir() && !p.is_symlink() { std::fs::remove_dir_all(p) } else { std::fs::remove_file(p) };
        r.map_err(|e| Error::io(p, e))?;
    }
    Ok(found.len())
}

/// Rewrites the JSON-lines metrics file `path` (temporary file + rename) keeping the lines `keep` accepts:
/// on resume, the lines logged after the checkpoint are dropped, since training logs them again. Lines that
/// are not JSON (a write cut off by a kill) are dropped too. Returns how many lines were dropped.
pub fn truncate_metrics(path: &Path, keep: impl Fn(&serde_json::Value) -> bool) -> Result<usize> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io(path, e)),
    };
    let (mut kept, mut dropped) = (String::with_capacity(text.len()), 0);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| keep(&v)) {
            kept.push_str(line);
            kept.push('\n');
        } else {
            dropped += 1;
        }
    }
    // Untouched when nothing goes (also keeps a file that lacks its last newline as it is).
    if dropped > 0 {
        write_atomic(path, kept.as_bytes())?;
    }
    Ok(dropped)
}

/// Writes `tensors` to the safetensors file `path` (through a temporary file renamed into place) with the
/// permissions every other output gets (0666 less the umask, as [`crate::output::write_atomic`]): the
/// safetensors writer renames a 0600 temporary file, which other users and containers could not read.
pub fn save_safetensors<'a>(tensors: impl IntoIterator<Item = (&'a str, &'a Tensor)>, path: &Path) -> Result<()> {
    safetensors::tensor::serialize_to_file(tensors, None, path).map_err(|e| Error::checkpoint(path, e.to_string()))?;
    set_new_file_mode(path)
}

/// Gives `path` the mode a newly created file gets here (0666 less the umask), read off a probe file in the
/// same directory: the umask can only be read by changing it, which would race with other threads.
fn set_new_file_mode(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let probe = tempfile::Builder::new()
            .prefix(".emoclip-mode-")
            .permissions(std::fs::Permissions::from_mode(0o666))
            .tempfile_in(dir)
            .map_err(|e| Error::io(dir, e))?;
        let mode = probe.as_file().metadata().map_err(|e| Error::io(probe.path(), e))?.permissions().mode() & 0o777;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| Error::io(path, e))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// [`save_safetensors`] of every variable in `varmap`.
pub fn save_varmap(varmap: &VarMap, path: &Path) -> Result<()> {
    let data = varmap.data().lock().map_err(|_| Error::Msg("VarMap lock poisoned".into()))?;
    save_safetensors(data.iter().map(|(k, v)| (k.as_str(), v.as_tensor())), path)
}

/// Writes `out/ckpt-<step>/` (through a temporary directory renamed into place) and points `out/LATEST` at it.
pub fn save(
    out: &Path,
    varmap: &VarMap,
    cfg: &EmotionClipConfig,
    opt_state: &HashMap<String, Tensor>,
    state: &TrainState,
) -> Result<PathBuf> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let name = format!("ckpt-{}", state.step);
    let dir = out.join(&name);
    let tmp = out.join(format!(".tmp-{name}"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let model = tmp.join("model.safetensors");
    save_varmap(varmap, &model)?;
    let cj = tmp.join("config.json");
    std::fs::write(&cj, cfg.to_json()).map_err(|e| Error::io(&cj, e))?;
    let op = tmp.join("optimizer.safetensors");
    save_safetensors(opt_state.iter().map(|(k, v)| (k.as_str(), v)), &op)?;
    let sj = tmp.join("state.json");
    let s = serde_json::to_string_pretty(state).map_err(|e| Error::Msg(e.to_string()))?;
    std::fs::write(&sj, s).map_err(|e| Error::io(&sj, e))?;
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    }
    std::fs::rename(&tmp, &dir).map_err(|e| Error::io(&dir, e))?;
    write_atomic(&out.join(LATEST), name.as_bytes())?;
    Ok(dir)
}

/// The newest complete checkpoint directory in `out` (from `LATEST`, else the highest `ckpt-<step>`), if any.
pub fn latest(out: &Path) -> Result<Option<PathBuf>> {
    let l = out.join(LATEST);
    if l.is_file() {
        let name = std::fs::read_to_string(&l).map_err(|e| Error::io(&l, e))?;
        let dir = out.join(name.trim());
        if dir.join("state.json").is_file() {
            return Ok(Some(dir));
        }
    }
    if !out.is_dir() {
        return Ok(None);
    }
    let rd = std::fs::read_dir(out).map_err(|e| Error::io(out, e))?;
    let best = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().to_str()?.strip_prefix("ckpt-")?.parse::<usize>().ok()?;
            e.path().join("state.json").is_file().then_some((n, e.path()))
        })
        .max_by_key(|(n, _)| *n);
    Ok(best.map(|(_, p)| p))
}

/// Reads `state.json` and `optimizer.safetensors` of a checkpoint directory.
pub fn load_state(dir: &Path) -> Result<(TrainState, HashMap<String, Tensor>)> {
    let sj = dir.join("state.json");
    let s = std::fs::read_to_string(&sj).map_err(|e| Error::io(&sj, e))?;
    let state: TrainState =
        serde_json::from_str(&s).map_err(|e| Error::checkpoint(&sj, format!("bad state.json: {e}")))?;
    let op = dir.join("optimizer.safetensors");
    let opt = candle_core::safetensors::load(&op, &candle_core::Device::Cpu)
        .map_err(|e| Error::checkpoint(&op, e.to_string()))?;
    Ok((state, opt))
}
