//! HF `BertConfig` / `RobertaConfig` (`config.json`) fields the encoder needs, with each family's defaults
//! for absent fields, and `id2label` giving the label order of a classifier.
use crate::{Error, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// The checkpoint family: decides the position ids and the defaults of absent config fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// HF `BertModel`: positions 0..L, segment ids as token types; defaults eps 1e-12, pad 0, 2 types.
    Bert,
    /// HF `RobertaModel`: positions from `padding_idx + 1`, one token type; defaults eps 1e-5, pad 1.
    Roberta,
}

#[derive(Clone, Debug)]
pub struct EncoderConfig {
    pub family: Family,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    pub pad_token_id: u32,
    pub hidden_act: String,
    pub id2label: BTreeMap<String, String>,
}

/// The text-emotion classifier's config (RoBERTa family).
pub type RobertaConfig = EncoderConfig;

#[derive(Deserialize)]
struct Raw {
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    max_position_embeddings: usize,
    type_vocab_size: Option<usize>,
    layer_norm_eps: Option<f64>,
    pad_token_id: Option<u32>,
    hidden_act: Option<String>,
    position_embedding_type: Option<String>,
    #[serde(default)]
    id2label: BTreeMap<String, String>,
}

impl EncoderConfig {
    /// A RoBERTa `config.json` (the text-emotion classifier).
    pub fn from_file(path: &Path) -> Result<Self> {
        Self::from_file_as(path, Family::Roberta)
    }

    /// A `config.json` read as `family` (absent fields take that family's HF defaults).
    pub fn from_file_as(path: &Path, family: Family) -> Result<Self> {
        let s = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let name = match family {
            Family::Bert => "BertConfig",
            Family::Roberta => "RobertaConfig",
        };
        let r: Raw = serde_json::from_str(&s).map_err(|e| Error::config(path, format!("not a {name}: {e}")))?;
        let (eps, pad, types) = match family {
            Family::Bert => (1e-12, 0, 2),
            Family::Roberta => (1e-5, 1, 1),
        };
        let c = Self {
            family,
            vocab_size: r.vocab_size,
            hidden_size: r.hidden_size,
            num_hidden_layers: r.num_hidden_layers,
            num_attention_heads: r.num_attention_heads,
            intermediate_size: r.intermediate_size,
            max_position_embeddings: r.max_position_embeddings,
            type_vocab_size: r.type_vocab_size.unwrap_or(types),
            layer_norm_eps: r.layer_norm_eps.unwrap_or(eps),
            pad_token_id: r.pad_token_id.unwrap_or(pad),
            hidden_act: r.hidden_act.unwrap_or_else(|| "gelu".into()),
            id2label: r.id2label,
        };
        if c.hidden_act != "gelu" {
            return Err(Error::config(path, format!("hidden_act {:?} is not supported (gelu)", c.hidden_act)));
        }
        if let Some(p) = r.position_embedding_type.filter(|p| p != "absolute") {
            return Err(Error::config(path, format!("position_embedding_type {p:?} is not supported (absolute)")));
        }
        if c.num_attention_heads == 0 || !c.hidden_size.is_multiple_of(c.num_attention_heads) {
            return Err(Error::config(path, "hidden_size must be divisible by num_attention_heads"));
        }
        Ok(c)
    }

    /// Labels in logit order (`id2label` sorted by id); `LABEL_i` when the config has none.
    pub fn labels(&self, num_labels: usize) -> Vec<String> {
        (0..num_labels)
            .map(|i| self.id2label.get(&i.to_string()).cloned().unwrap_or_else(|| format!("LABEL_{i}")))
            .collect()
    }
}
