//! Loads a frozen BERT encoder (HF `BertModel.from_pretrained`, as MMSA's `BertTextEncoder` does) from a
//! model directory (`config.json` + `model.safetensors` or `pytorch_model.bin`), a weights file with
//! `config.json` beside it, or `hf:<org>/<name>` (local hub cache). Keys may be bare (`embeddings.*`, a saved
//! `BertModel`) or under `bert.` (`BertForPreTraining` / `BertForMaskedLM`, e.g. `bert-base-uncased`);
//! legacy `LayerNorm.gamma/beta` names are read as `weight/bias` as transformers does. Strict: every missing,
//! mis-shaped or unexpected key is listed (pooler, `cls.*` heads and position/token-type id buffers are skipped).
use super::bert::BertEncoder;
use super::config::{EncoderConfig, Family};
use crate::weights::{hub, reader, CheckedTensors, Missing};
use crate::{Error, Result};
use candle_core::{DType, Device};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A loaded encoder and where it came from.
pub struct BertModel {
    pub encoder: BertEncoder,
    pub config: EncoderConfig,
    /// The weights file read.
    pub weights: PathBuf,
    /// `path|size|mtime` of the weights and the config (cache keys).
    pub fingerprint: String,
}

/// The weights file and config of `spec` (a directory, a weights file, or `hf:<org>/<name>`).
pub fn resolve(spec: &str) -> Result<(PathBuf, PathBuf)> {
    let path = hub::resolve_spec(spec)?;
    if path.is_dir() {
        let w = ["model.safetensors", "pytorch_model.bin"].iter().map(|f| path.join(f)).find(|p| p.is_file()).ok_or_else(|| {
            Error::checkpoint(&path, "no model.safetensors or pytorch_model.bin in this directory; pass an HF BERT model directory (e.g. a bert-base-uncased snapshot)")
        })?;
        Ok((w, path.join("config.json")))
    } else if path.is_file() {
        let cfg = path.parent().unwrap_or(Path::new(".")).join("config.json");
        Ok((path, cfg))
    } else {
        Err(Error::checkpoint(
            &path,
            "no such file or directory; pass an HF BERT model directory, its weights file, or hf:<org>/<name>",
        ))
    }
}

impl BertModel {
    /// Loads `spec` (see the module documentation) onto `device`.
    pub fn load(spec: &str, device: &Device) -> Result<Self> {
        let (weights, cfg_path) = resolve(spec)?;
        if !cfg_path.is_file() {
            return Err(Error::config(
                &cfg_path,
                "missing: the BERT config.json must sit beside the weights (copy it from the model's HF snapshot)",
            ));
        }
        let raw = reader::read_tensors(&weights, &Device::Cpu)?;
        let mut tensors = HashMap::with_capacity(raw.len());
        for (k, v) in raw {
            let k = match (k.strip_suffix(".gamma"), k.strip_suffix(".beta")) {
                (Some(s), _) if s.ends_with("LayerNorm") => format!("{s}.weight"),
                (_, Some(s)) if s.ends_with("LayerNorm") => format!("{s}.bias"),
                _ => k,
            };
            tensors.insert(k, v);
        }
        let prefix = ["bert.", "roberta.", ""]
            .into_iter()
            .find(|p| tensors.contains_key(&format!("{p}embeddings.word_embeddings.weight")))
            .ok_or_else(|| {
                let mut keys: Vec<&String> = tensors.keys().collect();
                keys.sort();
                keys.truncate(5);
                Error::checkpoint(&weights, format!("no embeddings.word_embeddings.weight (bare, or under bert. / roberta.): not a BERT checkpoint (first keys: {keys:?})"))
            })?;
        let family = if prefix == "roberta." { Family::Roberta } else { Family::Bert };
        let config = EncoderConfig::from_file_as(&cfg_path, family)?;
        let checked = CheckedTensors::new(tensors, Missing::Error, None);
        let vb = checked.var_builder(DType::F32, device);
        let vb = if prefix.is_empty() { vb } else { vb.pp(prefix.trim_end_matches('.')) };
        let encoder = BertEncoder::load(vb, &config)
            .map_err(|e| Error::checkpoint(&weights, format!("cannot build the BERT encoder: {e}")))?;
        let report = checked.report(&[]);
        let skip = |k: &str| {
            let r = k.strip_prefix(prefix).unwrap_or(k);
            r.starts_with("pooler.")
                || k.starts_with("cls.")
                || k.starts_with("lm_head.")
                || r == "embeddings.position_ids"
                || r == "embeddings.token_type_ids"
        };
        let unexpected: Vec<String> = report.unexpected.iter().filter(|k| !skip(k)).cloned().collect();
        if !report.missing.is_empty() || !report.misshaped.is_empty() || !unexpected.is_empty() {
            let r = crate::weights::LoadReport { unexpected, ..report };
            return Err(Error::checkpoint(
                &weights,
                format!("checkpoint does not match {}:{}", cfg_path.display(), r.describe()),
            ));
        }
        let fp = crate::hash::file_fingerprint;
        let fingerprint = format!("{}+{}", fp(&weights), fp(&cfg_path));
        Ok(Self { encoder, config, weights, fingerprint })
    }
}
