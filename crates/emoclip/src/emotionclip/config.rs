//! EmotionCLIP model config: the open_clip backbone config plus the options of the official
//! `EmotionCLIP(backbone_config, temporal_fusion, video_len, head_nlayer)` and the paper's SAAM variant.
use crate::clip::OpenClipConfig;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// How the frame encoder is told where the subject is (paper §3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SubjectMode {
    /// Subject-aware prompting: an extra token Σ_p cover_p·pos_emb[1+p] (the official code; default).
    #[default]
    Sap,
    /// Subject-aware attention masking (paper eq. 2–4, appendix B.1): a learned subject token and mask M.
    Saam,
    /// Vanilla CLIP frame encoder, no subject token (paper Table 1 baseline).
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TemporalFusion {
    /// 6-layer post-norm transformer over the frames, residual, mean over time (official default).
    #[default]
    Transformer,
    /// Mean of the frame features (no parameters).
    Mean,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TemporalConfig {
    #[serde(default)]
    pub fusion: TemporalFusion,
    #[serde(default = "d_layers")]
    pub layers: usize,
    #[serde(default = "d_heads")]
    pub heads: usize,
    #[serde(default = "d_ff")]
    pub ff: usize,
    /// Dropout of `nn.TransformerEncoderLayer` (0.1 by default), used only in training.
    #[serde(default = "d_dropout")]
    pub dropout: f32,
}

fn d_layers() -> usize {
    6
}
fn d_heads() -> usize {
    8
}
fn d_ff() -> usize {
    2048
}
fn d_dropout() -> f32 {
    0.1
}
fn d_video_len() -> usize {
    8
}

impl Default for TemporalConfig {
    fn default() -> Self {
        Self { fusion: TemporalFusion::Transformer, layers: 6, heads: 8, ff: 2048, dropout: 0.1 }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EmotionClipConfig {
    pub backbone: OpenClipConfig,
    #[serde(default = "d_video_len")]
    pub video_len: usize,
    #[serde(default)]
    pub temporal: TemporalConfig,
    #[serde(default)]
    pub subject: SubjectMode,
}

impl Default for EmotionClipConfig {
    /// The released model: ViT-B/32 (GELU), SAP, 8 frames, 6-layer temporal transformer.
    fn default() -> Self {
        Self {
            backbone: OpenClipConfig::vit_b_32(),
            video_len: 8,
            temporal: TemporalConfig::default(),
            subject: SubjectMode::Sap,
        }
    }
}

impl EmotionClipConfig {
    pub fn with_backbone(backbone: OpenClipConfig) -> Self {
        Self { backbone, ..Self::default() }
    }

    /// A tiny EmotionCLIP (`configs/tiny.json`: 32-px frames, 16-px patches, 2 layers, vocab 64, context 12,
    /// a 2-layer temporal head) for tests and smoke runs; random weights only.
    pub fn tiny() -> Self {
        Self::from_json_str(include_str!("configs/tiny.json"), Path::new("emotionclip/configs/tiny.json"))
            .unwrap_or_else(|e| panic!("built-in config: {e}"))
    }

    pub fn from_file(path: &Path) -> Result<Self> {
        let s = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_json_str(&s, path)
    }

    /// Accepts this crate's config JSON (`{"backbone": {...}, ...}`) or a bare open_clip model config
    /// (then the official EmotionCLIP defaults are used for the rest).
    pub fn from_json_str(s: &str, path: &Path) -> Result<Self> {
        let v: serde_json::Value =
            serde_json::from_str(s).map_err(|e| Error::config(path, format!("not valid JSON: {e}")))?;
        let cfg = if v.get("backbone").is_some() {
            serde_json::from_value::<Self>(v).map_err(|e| Error::config(path, e.to_string()))?
        } else if v.get("vision_cfg").is_some() {
            Self::with_backbone(OpenClipConfig::from_json_str(s, path)?)
        } else {
            return Err(Error::config(
                path,
                "expected an emoclip config (with \"backbone\") or an open_clip model config (with \"vision_cfg\")",
            ));
        };
        cfg.validate(Some(path))?;
        Ok(cfg)
    }

    pub fn validate(&self, path: Option<&Path>) -> Result<()> {
        self.backbone.validate(path)?;
        let t = &self.temporal;
        if self.video_len == 0 {
            return Err(Error::config_at(path, "video_len must be > 0"));
        }
        if t.fusion == TemporalFusion::Transformer && (t.heads == 0 || !self.backbone.embed_dim.is_multiple_of(t.heads))
        {
            return Err(Error::config_at(
                path,
                format!("temporal.heads {} must divide embed_dim {}", t.heads, self.backbone.embed_dim),
            ));
        }
        if !(0.0..1.0).contains(&t.dropout) {
            return Err(Error::config_at(path, format!("temporal.dropout {} must be in [0, 1)", t.dropout)));
        }
        Ok(())
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_config_parses() {
        let c = EmotionClipConfig::tiny();
        let (b, v, t) = (&c.backbone, &c.backbone.vision_cfg, &c.backbone.text_cfg);
        assert_eq!((b.embed_dim, v.image_size, v.patch_size, v.width, v.layers, v.head_width), (16, 32, 16, 32, 2, 16));
        assert_eq!((t.context_length, t.vocab_size, t.width, t.heads, t.layers), (12, 64, 32, 2, 2));
        assert_eq!((v.mlp_ratio, t.mlp_ratio, b.quick_gelu), (2.0, 2.0, false));
        assert_eq!(c.temporal, TemporalConfig { layers: 2, heads: 2, ff: 32, ..TemporalConfig::default() });
        assert_eq!((c.video_len, c.subject), (8, SubjectMode::Sap));
    }
}
