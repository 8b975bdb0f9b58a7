//! Batched caption scoring with the text-emotion model: loads an HF model directory (`config.json`,
//! `model.safetensors` or `pytorch_model.bin`, `tokenizer.json` or `vocab.json` + `merges.txt`), tokenises
//! as `RobertaTokenizerFast` (`<s> … </s>`, truncation keeps the closing `</s>`), returns raw logits.
use super::config::RobertaConfig;
use super::roberta::RobertaForSequenceClassification;
use crate::weights::{reader, CheckedTensors, Missing};
use crate::{Error, Result};
use candle_core::{DType, Device};
use std::path::Path;
use tokenizers::Tokenizer;

pub struct EmotionClassifier {
    model: RobertaForSequenceClassification,
    tokenizer: Tokenizer,
    labels: Vec<String>,
    bos: u32,
    eos: u32,
    /// Tokens per text including `<s>`/`</s>` (the official logits script uses 77).
    pub max_tokens: usize,
    pub batch_size: usize,
    device: Device,
}

fn load_tokenizer(dir: &Path) -> Result<Tokenizer> {
    let tj = dir.join("tokenizer.json");
    if tj.is_file() {
        return Tokenizer::from_file(&tj).map_err(|e| Error::config(&tj, format!("cannot load tokenizer: {e}")));
    }
    let (v, m) = (dir.join("vocab.json"), dir.join("merges.txt"));
    if !(v.is_file() && m.is_file()) {
        return Err(Error::config(
            dir,
            "no tokenizer.json, nor vocab.json + merges.txt; copy the model's tokenizer files here",
        ));
    }
    let bpe = tokenizers::models::bpe::BPE::from_file(&v.to_string_lossy(), &m.to_string_lossy())
        .build()
        .map_err(|e| Error::config(&v, format!("cannot load BPE vocab/merges: {e}")))?;
    let mut t = Tokenizer::new(bpe);
    t.with_pre_tokenizer(Some(tokenizers::pre_tokenizers::byte_level::ByteLevel::new(false, true, true)));
    t.with_decoder(Some(tokenizers::decoders::byte_level::ByteLevel::default()));
    Ok(t)
}

impl EmotionClassifier {
    /// Opens a model directory (an HF snapshot of `j-hartmann/emotion-english-distilroberta-base` or any
    /// `RobertaForSequenceClassification`). Strict: every missing, unexpected or mis-shaped key is listed.
    pub fn from_dir(dir: &Path, device: &Device) -> Result<Self> {
        let cfg = RobertaConfig::from_file(&dir.join("config.json"))?;
        let weights = ["model.safetensors", "pytorch_model.bin"]
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.is_file())
            .ok_or_else(|| Error::checkpoint(dir, "no model.safetensors or pytorch_model.bin in this directory"))?;
        let tensors = reader::read_tensors(&weights, &Device::Cpu)?;
        let num_labels = tensors.get("classifier.out_proj.weight").map(|t| t.dims()[0]).ok_or_else(|| {
            Error::checkpoint(&weights, "no classifier.out_proj.weight: not a sequence-classification checkpoint")
        })?;
        let checked = CheckedTensors::new(tensors, Missing::Error, None);
        let model = RobertaForSequenceClassification::load(checked.var_builder(DType::F32, device), &cfg, num_labels)
            .map_err(|e| Error::checkpoint(&weights, format!("cannot build the model: {e}")))?;
        let report = checked.report(&["roberta.embeddings.position_ids", "roberta.embeddings.token_type_ids"]);
        let unexpected: Vec<&String> = report.unexpected.iter().filter(|k| !k.starts_with("roberta.pooler.")).collect();
        if !report.missing.is_empty() || !report.misshaped.is_empty() || !unexpected.is_empty() {
            return Err(Error::checkpoint(
                &weights,
                format!("checkpoint does not match config.json:{}", report.describe()),
            ));
        }
        let tokenizer = load_tokenizer(dir)?;
        let id = |t: &str| {
            tokenizer.token_to_id(t).ok_or_else(|| Error::config(dir, format!("the tokenizer has no {t} token")))
        };
        let (bos, eos) = (id("<s>")?, id("</s>")?);
        Ok(Self {
            model,
            tokenizer,
            labels: cfg.labels(num_labels),
            bos,
            eos,
            max_tokens: 77,
            batch_size: 256,
            device: device.clone(),
        })
    }

    /// Labels in logit order (from `id2label`).
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    pub fn label_index(&self, name: &str) -> Option<usize> {
        self.labels.iter().position(|l| l == name)
    }

    /// Token ids with `<s>`/`</s>`, truncated to `max_tokens`.
    pub fn encode(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        let enc = self.tokenizer.encode_batch(texts.to_vec(), false).map_err(|e| Error::Tokenizer(e.to_string()))?;
        let keep = self.max_tokens.saturating_sub(2).max(1);
        Ok(enc
            .iter()
            .map(|e| {
                let ids = e.get_ids();
                let mut v = Vec::with_capacity(ids.len().min(keep) + 2);
                v.push(self.bos);
                v.extend_from_slice(&ids[..ids.len().min(keep)]);
                v.push(self.eos);
                v
            })
            .collect())
    }

    /// Raw logits `[texts][labels]`, in batches of `batch_size` (sorted by length to limit padding).
    pub fn logits(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let ids = self.encode(texts)?;
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| ids[i].len());
        let mut out = vec![Vec::new(); ids.len()];
        for chunk in order.chunks(self.batch_size.max(1)) {
            let batch: Vec<Vec<u32>> = chunk.iter().map(|&i| ids[i].clone()).collect();
            let l = self.model.forward(&batch, &self.device)?.to_vec2::<f32>()?;
            for (&i, row) in chunk.iter().zip(l) {
                out[i] = row;
            }
        }
        Ok(out)
    }
}

/// Softmax of one logit row.
pub fn softmax(row: &[f32]) -> Vec<f32> {
    let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = row.iter().map(|x| (x - m).exp()).collect();
    let s: f32 = e.iter().sum();
    e.into_iter().map(|x| x / s).collect()
}
