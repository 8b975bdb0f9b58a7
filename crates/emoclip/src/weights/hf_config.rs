//! Hugging Face `CLIPConfig` (`config.json` of `CLIPModel` repos) → open_clip model config.
use crate::clip::{OpenClipConfig, TextConfig, VisionConfig};
use crate::{Error, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Deserialize)]
struct HfText {
    #[serde(default = "d_vocab")]
    vocab_size: usize,
    #[serde(default = "d_512")]
    hidden_size: usize,
    #[serde(default = "d_2048")]
    intermediate_size: usize,
    #[serde(default = "d_12")]
    num_hidden_layers: usize,
    #[serde(default = "d_8")]
    num_attention_heads: usize,
    #[serde(default = "d_77")]
    max_position_embeddings: usize,
    #[serde(default = "d_act")]
    hidden_act: String,
    #[serde(default = "d_eps")]
    layer_norm_eps: f64,
    #[serde(default = "d_eos")]
    eos_token_id: u32,
}

#[derive(Deserialize)]
struct HfVision {
    #[serde(default = "d_768")]
    hidden_size: usize,
    #[serde(default = "d_3072")]
    intermediate_size: usize,
    #[serde(default = "d_12")]
    num_hidden_layers: usize,
    #[serde(default = "d_12")]
    num_attention_heads: usize,
    #[serde(default = "d_224")]
    image_size: usize,
    #[serde(default = "d_32")]
    patch_size: usize,
    #[serde(default = "d_act")]
    hidden_act: String,
    #[serde(default = "d_eps")]
    layer_norm_eps: f64,
}

#[derive(Deserialize)]
struct HfClip {
    text_config: HfText,
    vision_config: HfVision,
    #[serde(default = "d_512")]
    projection_dim: usize,
}

fn d_vocab() -> usize {
    49408
}
fn d_512() -> usize {
    512
}
fn d_2048() -> usize {
    2048
}
fn d_3072() -> usize {
    3072
}
fn d_768() -> usize {
    768
}
fn d_12() -> usize {
    12
}
fn d_8() -> usize {
    8
}
fn d_77() -> usize {
    77
}
fn d_224() -> usize {
    224
}
fn d_32() -> usize {
    32
}
fn d_act() -> String {
    "quick_gelu".into()
}
fn d_eps() -> f64 {
    1e-5
}
fn d_eos() -> u32 {
    2
}

pub fn is_hf_clip_config(v: &serde_json::Value) -> bool {
    v.get("vision_config").is_some() && v.get("text_config").is_some()
}

fn act(s: &str, path: &Path) -> Result<bool> {
    match s {
        "quick_gelu" => Ok(true),
        "gelu" => Ok(false),
        other => Err(Error::config(path, format!("hidden_act {other:?} is not supported (gelu or quick_gelu)"))),
    }
}

pub fn parse(v: serde_json::Value, path: &Path) -> Result<OpenClipConfig> {
    let c: HfClip = serde_json::from_value(v).map_err(|e| Error::config(path, format!("not a CLIPConfig: {e}")))?;
    let (t, vi) = (&c.text_config, &c.vision_config);
    let quick = act(&t.hidden_act, path)?;
    if quick != act(&vi.hidden_act, path)? {
        return Err(Error::config(path, "text and vision towers use different activations; not supported"));
    }
    if (t.layer_norm_eps - vi.layer_norm_eps).abs() > 0.0 {
        return Err(Error::config(path, "text and vision towers use different layer_norm_eps; not supported"));
    }
    if vi.num_attention_heads == 0 || t.hidden_size == 0 || vi.hidden_size == 0 {
        return Err(Error::config(path, "sizes must be > 0"));
    }
    let cfg = OpenClipConfig {
        embed_dim: c.projection_dim,
        quick_gelu: quick,
        vision_cfg: VisionConfig {
            image_size: vi.image_size,
            layers: vi.num_hidden_layers,
            width: vi.hidden_size,
            head_width: vi.hidden_size / vi.num_attention_heads,
            mlp_ratio: vi.intermediate_size as f64 / vi.hidden_size as f64,
            patch_size: vi.patch_size,
            extra: BTreeMap::new(),
        },
        text_cfg: TextConfig {
            context_length: t.max_position_embeddings,
            vocab_size: t.vocab_size,
            width: t.hidden_size,
            heads: t.num_attention_heads,
            layers: t.num_hidden_layers,
            mlp_ratio: t.intermediate_size as f64 / t.hidden_size as f64,
            extra: BTreeMap::new(),
        },
        layer_norm_eps: t.layer_norm_eps,
        // transformers: eos_token_id == 2 is the legacy configuration, pooled with argmax of the ids.
        eos_token_id: if t.eos_token_id == 2 { None } else { Some(t.eos_token_id) },
        extra: BTreeMap::new(),
    };
    cfg.validate(Some(path))?;
    Ok(cfg)
}
