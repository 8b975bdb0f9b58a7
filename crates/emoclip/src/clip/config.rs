//! open_clip model-config JSON (`model_configs/*.json`: `embed_dim`, `quick_gelu`, `vision_cfg`, `text_cfg`).
use crate::nn::Activation;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VisionConfig {
    #[serde(default = "d_image_size")]
    pub image_size: usize,
    #[serde(default = "d_vision_layers")]
    pub layers: usize,
    #[serde(default = "d_vision_width")]
    pub width: usize,
    #[serde(default = "d_head_width")]
    pub head_width: usize,
    #[serde(default = "d_mlp_ratio")]
    pub mlp_ratio: f64,
    #[serde(default = "d_patch_size")]
    pub patch_size: usize,
    /// Keys we do not model; architecture-changing ones are rejected in [`OpenClipConfig::validate`].
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TextConfig {
    #[serde(default = "d_context_length")]
    pub context_length: usize,
    #[serde(default = "d_vocab_size")]
    pub vocab_size: usize,
    #[serde(default = "d_text_width")]
    pub width: usize,
    #[serde(default = "d_text_heads")]
    pub heads: usize,
    #[serde(default = "d_text_layers")]
    pub layers: usize,
    #[serde(default = "d_mlp_ratio")]
    pub mlp_ratio: f64,
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenClipConfig {
    pub embed_dim: usize,
    #[serde(default)]
    pub quick_gelu: bool,
    pub vision_cfg: VisionConfig,
    pub text_cfg: TextConfig,
    /// LayerNorm epsilon (open_clip and HF CLIP both use 1e-5).
    #[serde(default = "d_eps")]
    pub layer_norm_eps: f64,
    /// Text pooling: `argmax` of the token ids (open_clip / legacy HF) or the first `eos` id (newer HF).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eos_token_id: Option<u32>,
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, serde_json::Value>,
}

fn d_image_size() -> usize {
    224
}
fn d_vision_layers() -> usize {
    12
}
fn d_vision_width() -> usize {
    768
}
fn d_head_width() -> usize {
    64
}
fn d_mlp_ratio() -> f64 {
    4.0
}
fn d_patch_size() -> usize {
    16
}
fn d_context_length() -> usize {
    77
}
fn d_vocab_size() -> usize {
    49408
}
fn d_text_width() -> usize {
    512
}
fn d_text_heads() -> usize {
    8
}
fn d_text_layers() -> usize {
    12
}
fn d_eps() -> f64 {
    1e-5
}

/// Keys that would change the architecture in ways this implementation does not support, with the
/// value that means "feature off".
const UNSUPPORTED: &[(&str, &str)] = &[
    ("timm_model_name", "null"),
    ("hf_model_name", "null"),
    ("ls_init_value", "null"),
    ("attentional_pool", "false"),
    ("no_ln_pre", "false"),
    ("final_ln_after_pool", "false"),
    ("patch_dropout", "0"),
    ("proj_bias", "false"),
    ("embed_cls", "false"),
    ("output_tokens", "false"),
    ("act_kwargs", "null"),
    ("norm_kwargs", "null"),
];

impl OpenClipConfig {
    /// OpenCLIP `ViT-B-32.json`, the EmotionCLIP backbone (GELU, as the LAION-2B e16 weights).
    pub fn vit_b_32() -> Self {
        Self::shipped("ViT-B-32", include_str!("configs/ViT-B-32.json"))
    }
    /// OpenCLIP `ViT-B-16.json`.
    pub fn vit_b_16() -> Self {
        Self::shipped("ViT-B-16", include_str!("configs/ViT-B-16.json"))
    }
    /// OpenCLIP `ViT-L-14.json`.
    pub fn vit_l_14() -> Self {
        Self::shipped("ViT-L-14", include_str!("configs/ViT-L-14.json"))
    }

    /// A config shipped in `clip/configs/` (open_clip's `model_configs/<name>.json`, copied unchanged); the
    /// `builtin_configs_parse` test proves each one parses.
    fn shipped(name: &str, json: &str) -> Self {
        Self::from_json_str(json, Path::new(name)).unwrap_or_else(|e| panic!("built-in config {name}: {e}"))
    }

    /// A named built-in config (`ViT-B-32`, `ViT-B-32-quickgelu`, `ViT-B-16`, `ViT-L-14`, ...).
    pub fn builtin(name: &str) -> Option<Self> {
        let (base, quick) = match name.strip_suffix("-quickgelu") {
            Some(b) => (b, true),
            None => (name, false),
        };
        let mut c = match base {
            "ViT-B-32" => Self::vit_b_32(),
            "ViT-B-16" => Self::vit_b_16(),
            "ViT-L-14" => Self::vit_l_14(),
            _ => return None,
        };
        c.quick_gelu = quick;
        Some(c)
    }

    pub fn from_json_str(s: &str, path: &Path) -> Result<Self> {
        let c: Self = serde_json::from_str(s).map_err(|e| {
            Error::config(
                path,
                format!("{e}; expected an open_clip model config with embed_dim, vision_cfg and text_cfg"),
            )
        })?;
        c.validate(Some(path))?;
        Ok(c)
    }

    pub fn from_file(path: &Path) -> Result<Self> {
        let s = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_json_str(&s, path)
    }

    pub fn activation(&self) -> Activation {
        if self.quick_gelu {
            Activation::QuickGelu
        } else {
            Activation::Gelu
        }
    }

    pub fn vision_heads(&self) -> usize {
        self.vision_cfg.width / self.vision_cfg.head_width.max(1)
    }

    pub fn grid_size(&self) -> usize {
        self.vision_cfg.image_size / self.vision_cfg.patch_size.max(1)
    }

    /// Checks sizes are consistent and that no unsupported architecture option is switched on.
    pub fn validate(&self, path: Option<&Path>) -> Result<()> {
        let v = &self.vision_cfg;
        let t = &self.text_cfg;
        let mut problems = Vec::new();
        if self.embed_dim == 0 {
            problems.push("embed_dim must be > 0".to_string());
        }
        if v.patch_size == 0 || !v.image_size.is_multiple_of(v.patch_size) {
            problems.push(format!(
                "vision_cfg.image_size {} is not a multiple of patch_size {}",
                v.image_size, v.patch_size
            ));
        }
        if v.head_width == 0 || !v.width.is_multiple_of(v.head_width) {
            problems.push(format!("vision_cfg.width {} is not a multiple of head_width {}", v.width, v.head_width));
        }
        if t.heads == 0 || !t.width.is_multiple_of(t.heads) {
            problems.push(format!("text_cfg.width {} is not divisible by heads {}", t.width, t.heads));
        }
        if v.layers == 0 || t.layers == 0 {
            problems.push("layers must be > 0 (a ResNet `layers` list is not supported: ViT only)".into());
        }
        if t.context_length == 0 || t.vocab_size == 0 {
            problems.push("text_cfg.context_length and vocab_size must be > 0".into());
        }
        for (section, extra) in [("", &self.extra), ("vision_cfg.", &v.extra), ("text_cfg.", &t.extra)] {
            for (k, off) in UNSUPPORTED {
                if let Some(val) = extra.get(*k) {
                    let is_off = match *off {
                        "null" => val.is_null(),
                        "false" => val.is_null() || val == &serde_json::Value::Bool(false),
                        "0" => val.is_null() || val.as_f64() == Some(0.0),
                        _ => false,
                    };
                    if !is_off {
                        problems.push(format!("{section}{k} = {val} is not supported (only plain ViT CLIP towers)"));
                    }
                }
            }
            for k in ["pool_type", "text_pool_type"] {
                if let Some(val) = extra.get(k) {
                    if !matches!(val.as_str(), Some("tok") | Some("argmax") | None) {
                        problems.push(format!("{section}{k} = {val} is not supported (CLS/argmax pooling only)"));
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::config_at(path, problems.join("; ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped JSON files give the architectures open_clip defines (the values the positional
    /// constructor used to spell out: embed, image, patch, vision width/layers, text width/heads/layers).
    #[test]
    fn builtin_configs_parse() {
        for (name, want) in [
            ("ViT-B-32", (512, 224, 32, 768, 12, 512, 8, 12)),
            ("ViT-B-16", (512, 224, 16, 768, 12, 512, 8, 12)),
            ("ViT-L-14", (768, 224, 14, 1024, 24, 768, 12, 12)),
        ] {
            let c = OpenClipConfig::builtin(name).unwrap();
            let (v, t) = (&c.vision_cfg, &c.text_cfg);
            assert_eq!(
                (c.embed_dim, v.image_size, v.patch_size, v.width, v.layers, t.width, t.heads, t.layers),
                want,
                "{name}"
            );
            assert_eq!(
                (v.head_width, v.mlp_ratio, t.mlp_ratio, t.context_length, t.vocab_size),
                (64, 4.0, 4.0, 77, 49408)
            );
            assert!(!c.quick_gelu && c.layer_norm_eps == 1e-5 && c.eos_token_id.is_none(), "{name}");
            assert!(c.extra.is_empty() && v.extra.is_empty() && t.extra.is_empty(), "{name}");
        }
        assert!(OpenClipConfig::builtin("ViT-B-32-quickgelu").unwrap().quick_gelu);
        assert!(OpenClipConfig::builtin("RN50").is_none());
    }
}
