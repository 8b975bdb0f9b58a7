//! HF `RobertaConfig` (`config.json`) fields the encoder needs, with `id2label` giving the label order.
use crate::{Error, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Clone, Debug, Deserialize)]
pub struct RobertaConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "d_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "d_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "d_pad")]
    pub pad_token_id: u32,
    #[serde(default = "d_act")]
    pub hidden_act: String,
    #[serde(default)]
    pub id2label: BTreeMap<String, String>,
}

fn d_type_vocab() -> usize { 1 }
fn d_eps() -> f64 { 1e-5 }
fn d_pad() -> u32 { 1 }
fn d_act() -> String { "gelu".into() }

impl RobertaConfig {
    pub fn from_file(path: &Path) -> Result<Self> {
        let s = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let c: Self = serde_json::from_str(&s).map_err(|e| Error::config(path, format!("not a RobertaConfig: {e}")))?;
        if c.hidden_act != "gelu" {
            return Err(Error::config(path, format!("hidden_act {:?} is not supported (gelu)", c.hidden_act)));
        }
        if c.num_attention_heads == 0 || !c.hidden_size.is_multiple_of(c.num_attention_heads) {
            return Err(Error::config(path, "hidden_size must be divisible by num_attention_heads"));
        }
        Ok(c)
    }

    /// Labels in logit order (`id2label` sorted by id); `LABEL_i` when the config has none.
    pub fn labels(&self, num_labels: usize) -> Vec<String> {
        (0..num_labels).map(|i| self.id2label.get(&i.to_string()).cloned().unwrap_or_else(|| format!("LABEL_{i}"))).collect()
    }
}
