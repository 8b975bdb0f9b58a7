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
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
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
    varmap.save(&model).map_err(|e| Error::checkpoint(&model, e.to_string()))?;
    let cj = tmp.join("config.json");
    std::fs::write(&cj, cfg.to_json()).map_err(|e| Error::io(&cj, e))?;
    let op = tmp.join("optimizer.safetensors");
    candle_core::safetensors::save(opt_state, &op).map_err(|e| Error::checkpoint(&op, e.to_string()))?;
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
