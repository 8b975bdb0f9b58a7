//! Maps the three checkpoint layouts onto one key space, the official EmotionCLIP state dict
//! (`backbone.<open_clip keys>`, `visual_head.*`, `logit_scale`):
//! - EmotionCLIP trainer checkpoints: already in that space;
//! - open_clip / OpenAI state dicts (`visual.*`, `transformer.*`, …): prefixed with `backbone.`;
//! - Hugging Face `CLIPModel` (`vision_model.*`, `text_model.*`, …): renamed, q/k/v fused into
//!   `in_proj_*`, projections transposed (HF `modeling_clip.py` ↔ open_clip `model.py`).
use crate::{Error, Result};
use candle_core::Tensor;
use std::collections::HashMap;
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    EmotionClip,
    OpenClip,
    HfClip,
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Layout::EmotionClip => "EmotionCLIP",
            Layout::OpenClip => "open_clip/OpenAI CLIP",
            Layout::HfClip => "Hugging Face CLIPModel",
        })
    }
}

/// Strips DistributedDataParallel's `module.` prefix when every key has it.
fn strip_ddp(raw: HashMap<String, Tensor>) -> HashMap<String, Tensor> {
    if !raw.is_empty() && raw.keys().all(|k| k.starts_with("module.")) {
        raw.into_iter().map(|(k, v)| (k["module.".len()..].to_string(), v)).collect()
    } else {
        raw
    }
}

pub fn detect(keys: &[&String]) -> Option<Layout> {
    let has = |p: &str| keys.iter().any(|k| k.starts_with(p));
    if has("backbone.") || has("visual_head.") {
        Some(Layout::EmotionClip)
    } else if has("vision_model.") || has("text_model.") {
        Some(Layout::HfClip)
    } else if has("visual.") || has("token_embedding.") || has("transformer.resblocks.") {
        Some(Layout::OpenClip)
    } else {
        None
    }
}

/// Converts raw checkpoint tensors to EmotionCLIP key space. Returns the layout found.
pub fn canonicalize(raw: HashMap<String, Tensor>, path: &Path) -> Result<(Layout, HashMap<String, Tensor>)> {
    let raw = strip_ddp(raw);
    let keys: Vec<&String> = raw.keys().collect();
    let layout = detect(&keys).ok_or_else(|| {
        let mut sample: Vec<&str> = raw.keys().map(|s| s.as_str()).collect();
        sample.sort();
        sample.truncate(8);
        Error::checkpoint(
            path,
            format!("unrecognised checkpoint layout (keys such as {sample:?}); expected EmotionCLIP (`backbone.*`), open_clip (`visual.*`) or Hugging Face CLIP (`vision_model.*`) weights"),
        )
    })?;
    let out = match layout {
        Layout::EmotionClip => raw,
        Layout::OpenClip => raw.into_iter().map(|(k, v)| (format!("backbone.{k}"), v)).collect(),
        Layout::HfClip => hf_to_canonical(raw, path)?,
    };
    Ok((layout, out))
}

/// Renames one HF encoder-layer key suffix to open_clip's block naming.
fn hf_block_suffix(rest: &str) -> Option<String> {
    let map = [
        ("layer_norm1.", "ln_1."),
        ("layer_norm2.", "ln_2."),
        ("mlp.fc1.", "mlp.c_fc."),
        ("mlp.fc2.", "mlp.c_proj."),
        ("self_attn.out_proj.", "attn.out_proj."),
    ];
    map.iter().find_map(|(a, b)| rest.strip_prefix(a).map(|r| format!("{b}{r}")))
}

fn hf_to_canonical(raw: HashMap<String, Tensor>, path: &Path) -> Result<HashMap<String, Tensor>> {
    let mut out = HashMap::new();
    // (canonical block prefix, "weight" | "bias") -> [q, k, v]
    let mut qkv: HashMap<(String, String), [Option<Tensor>; 3]> = HashMap::new();
    for (k, v) in raw {
        let (hf_tower, canon_tower) = if let Some(r) = k.strip_prefix("vision_model.") {
            (r, "backbone.visual.")
        } else if let Some(r) = k.strip_prefix("text_model.") {
            (r, "backbone.")
        } else {
            match k.as_str() {
                "visual_projection.weight" => {
                    out.insert("backbone.visual.proj".into(), v.t()?.contiguous()?);
                }
                "text_projection.weight" => {
                    out.insert("backbone.text_projection".into(), v.t()?.contiguous()?);
                }
                "logit_scale" => {
                    out.insert("logit_scale".into(), v);
                }
                _ => {
                    out.insert(format!("hf.{k}"), v); // reported as unexpected by the strict loader
                }
            }
            continue;
        };
        let vision = canon_tower == "backbone.visual.";
        if let Some(rest) = hf_tower.strip_prefix("encoder.layers.") {
            let (idx, rest) = rest.split_once('.').unwrap_or((rest, ""));
            let block = format!("{canon_tower}transformer.resblocks.{idx}.");
            if let Some(r) = rest.strip_prefix("self_attn.") {
                let slot = match r.split_once('.') {
                    Some(("q_proj", p)) => Some((0, p)),
                    Some(("k_proj", p)) => Some((1, p)),
                    Some(("v_proj", p)) => Some((2, p)),
                    _ => None,
                };
                if let Some((i, param)) = slot {
                    qkv.entry((block, param.to_string())).or_default()[i] = Some(v);
                    continue;
                }
            }
            match hf_block_suffix(rest) {
                Some(s) => out.insert(format!("{block}{s}"), v),
                None => out.insert(format!("hf.{k}"), v),
            };
            continue;
        }
        let name = match (vision, hf_tower) {
            (true, "embeddings.class_embedding") => "class_embedding".to_string(),
            (true, "embeddings.patch_embedding.weight") => "conv1.weight".into(),
            (true, "embeddings.position_embedding.weight") => "positional_embedding".into(),
            (false, "embeddings.token_embedding.weight") => "token_embedding.weight".into(),
            (false, "embeddings.position_embedding.weight") => "positional_embedding".into(),
            (_, "embeddings.position_ids") => continue, // a buffer, not a parameter
            (true, r) if r.starts_with("pre_layrnorm.") => format!("ln_pre.{}", &r["pre_layrnorm.".len()..]),
            (true, r) if r.starts_with("post_layernorm.") => format!("ln_post.{}", &r["post_layernorm.".len()..]),
            (false, r) if r.starts_with("final_layer_norm.") => format!("ln_final.{}", &r["final_layer_norm.".len()..]),
            _ => {
                out.insert(format!("hf.{k}"), v);
                continue;
            }
        };
        out.insert(format!("{canon_tower}{name}"), v);
    }
    // One in_proj per (block, weight|bias): concat q, k, v along dim 0 (PyTorch MultiheadAttention layout).
    for ((block, param), parts) in qkv {
        let name = format!("{block}attn.in_proj_{param}");
        match parts {
            [Some(q), Some(k), Some(v)] => {
                out.insert(name, Tensor::cat(&[&q, &k, &v], 0)?);
            }
            _ => {
                return Err(Error::checkpoint(
                    path,
                    format!(
                        "{block}: q_proj/k_proj/v_proj {param} incomplete; the checkpoint is partial, re-download it"
                    ),
                ))
            }
        }
    }
    Ok(out)
}
