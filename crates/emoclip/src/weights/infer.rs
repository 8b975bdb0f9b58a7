//! Recovers the model config from tensor shapes (as open_clip's `build_model_from_openai_state_dict`),
//! for checkpoints saved without one. Head counts cannot be read off shapes: 64-wide heads are assumed for
//! the CLIP towers and the official 8 heads for the temporal head; pass a config file when they differ.
use crate::clip::{OpenClipConfig, TextConfig, VisionConfig};
use crate::emotionclip::{EmotionClipConfig, SubjectMode, TemporalConfig, TemporalFusion};
use crate::{Error, Result};
use candle_core::Tensor;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

fn dims<'a>(t: &'a HashMap<String, Tensor>, k: &str, path: &Path) -> Result<&'a [usize]> {
    t.get(k).map(|t| t.dims()).ok_or_else(|| {
        Error::checkpoint(path, format!("cannot infer the model config: key {k} is missing; pass --config"))
    })
}

fn count_layers(t: &HashMap<String, Tensor>, prefix: &str, suffix: &str) -> usize {
    t.keys()
        .filter_map(|k| {
            k.strip_prefix(prefix)?.split_once('.').filter(|(_, r)| *r == suffix).map(|(i, _)| i.to_string())
        })
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

/// Backbone config from canonical (`backbone.`-prefixed) tensors.
pub fn infer_backbone(t: &HashMap<String, Tensor>, path: &Path) -> Result<OpenClipConfig> {
    let conv = dims(t, "backbone.visual.conv1.weight", path)?;
    let (vwidth, patch) = (conv[0], conv[3]);
    let npos = dims(t, "backbone.visual.positional_embedding", path)?[0];
    let grid = (((npos.saturating_sub(1)) as f64).sqrt().round()) as usize;
    if grid * grid + 1 != npos {
        return Err(Error::checkpoint(
            path,
            format!("visual.positional_embedding has {npos} rows: not 1 + a square grid"),
        ));
    }
    let embed_dim = dims(t, "backbone.visual.proj", path)?[1];
    let vlayers = count_layers(t, "backbone.visual.transformer.resblocks.", "attn.in_proj_weight");
    let vmlp = dims(t, "backbone.visual.transformer.resblocks.0.mlp.c_fc.weight", path)?[0];
    let tok = dims(t, "backbone.token_embedding.weight", path)?;
    let (vocab, twidth) = (tok[0], tok[1]);
    let ctx = dims(t, "backbone.positional_embedding", path)?[0];
    let tlayers = count_layers(t, "backbone.transformer.resblocks.", "attn.in_proj_weight");
    let tmlp = dims(t, "backbone.transformer.resblocks.0.mlp.c_fc.weight", path)?[0];
    Ok(OpenClipConfig {
        embed_dim,
        quick_gelu: false,
        vision_cfg: VisionConfig {
            image_size: grid * patch,
            layers: vlayers,
            width: vwidth,
            head_width: 64.min(vwidth),
            mlp_ratio: vmlp as f64 / vwidth as f64,
            patch_size: patch,
            extra: BTreeMap::new(),
        },
        text_cfg: TextConfig {
            context_length: ctx,
            vocab_size: vocab,
            width: twidth,
            heads: (twidth / 64).max(1),
            layers: tlayers,
            mlp_ratio: tmlp as f64 / twidth as f64,
            extra: BTreeMap::new(),
        },
        layer_norm_eps: 1e-5,
        eos_token_id: None,
        extra: BTreeMap::new(),
    })
}

/// Full EmotionCLIP config from canonical tensors; the temporal head and subject mode are read off the
/// keys that are present (no `visual_head.*`: the official transformer head is assumed, to be initialised).
pub fn infer_emotionclip(t: &HashMap<String, Tensor>, path: &Path) -> Result<EmotionClipConfig> {
    let backbone = infer_backbone(t, path)?;
    let mut cfg = EmotionClipConfig::with_backbone(backbone);
    if let Some(pos) = t.get("visual_head.frame_position_embedding.weight") {
        cfg.video_len = pos.dims()[0];
        let layers = count_layers(t, "visual_head.fusion_layer.layers.", "self_attn.in_proj_weight");
        let ff = dims(t, "visual_head.fusion_layer.layers.0.linear1.weight", path)?[0];
        cfg.temporal = TemporalConfig { fusion: TemporalFusion::Transformer, layers, ff, ..TemporalConfig::default() };
    }
    if t.contains_key("backbone.visual.hmn_embedding") {
        cfg.subject = SubjectMode::Saam;
    }
    Ok(cfg)
}
