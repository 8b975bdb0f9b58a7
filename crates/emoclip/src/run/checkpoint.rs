//! Training checkpoints (official `src/engine/trainer.py` `save_checkpoint` / `resume`): `ckpt-<step>/` with
//! `model.safetensors`, `config.json`, `optimizer.safetensors`, `state.json` and a trainer's own extra
//! files, written whole ([`super::write_dir`]), then `LATEST` pointed at it.
use super::dir::{write_dir, LATEST};
use super::safetensors::{save_safetensors, save_varmap};
use crate::output::write_atomic;
use crate::{Error, Result};
use candle_core::Tensor;
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Where the loop stands, saved as `state.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TrainState {
    /// Optimiser steps done.
    pub step: usize,
    /// Current epoch (0-based).
    pub epoch: usize,
    /// Micro-batches (or batches) of this epoch already consumed.
    pub pos: usize,
    pub seed: u64,
    /// The training config, as JSON.
    pub config: serde_json::Value,
}

/// What one checkpoint holds.
pub struct CheckpointFiles<'a> {
    /// Every parameter, as `model.safetensors`.
    pub model: &'a VarMap,
    /// The model config, as `config.json`.
    pub config_json: String,
    /// The optimiser state, as `optimizer.safetensors`.
    pub optimizer: HashMap<String, Tensor>,
    /// As `state.json`.
    pub state: &'a TrainState,
    /// The trainer's own files (name, contents), e.g. `mer_state.json`.
    pub extra: Vec<(&'static str, String)>,
}

/// Writes `model.safetensors` (every variable of `model`) and `config.json` into `dir` (a checkpoint or `best/`).
pub fn write_model(dir: &Path, model: &VarMap, config_json: &str) -> Result<()> {
    save_varmap(model, &dir.join("model.safetensors"))?;
    let cj = dir.join("config.json");
    std::fs::write(&cj, config_json).map_err(|e| Error::io(&cj, e))
}

/// Writes `out/ckpt-<step>/` (through a temporary directory renamed into place) and points `out/LATEST` at it.
pub fn save_checkpoint(out: &Path, files: &CheckpointFiles) -> Result<PathBuf> {
    let name = format!("ckpt-{}", files.state.step);
    let dir = write_dir(out, &name, |tmp| {
        write_model(tmp, files.model, &files.config_json)?;
        save_safetensors(files.optimizer.iter().map(|(k, v)| (k.as_str(), v)), &tmp.join("optimizer.safetensors"))?;
        let state = serde_json::to_string_pretty(files.state)?;
        for (file, text) in std::iter::once(("state.json", &state)).chain(files.extra.iter().map(|(f, t)| (*f, t))) {
            let p = tmp.join(file);
            std::fs::write(&p, text).map_err(|e| Error::io(&p, e))?;
        }
        Ok(())
    })?;
    write_atomic(&out.join(LATEST), |f| std::io::Write::write_all(f, name.as_bytes()))?;
    Ok(dir)
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
