//! AdamW parameter groups for EmotionCLIP pre-training: the paper's (appendix B.2) and the official code's (`main.py`, `options.py`).
//!
//! Every number lives in [`PAPER`] / [`OFFICIAL`] below, with its source.
//!
//! Paper, appendix B.2: "AdamW … β1 = 0.98, β2 = 0.9, ε = 1e-10, λ = 0.1. The base learning rate of the parameters
//! in the frame encoder and text encoder is set to 5e-5 for gains and biases, and 1e-8 for the remaining
//! parameters. The learning rate of the parameters in the temporal encoder is set to 1e-6. The decoupled weight
//! decay regularization is applied to all weights that are not gains or biases."
//!
//! Official code (`main.py` + `DefaultArgs`): frame = names containing `backbone.visual`; text = names containing
//! `backbone` but not `visual` nor `logit_scale`; temporal = names containing `visual_head`; gain/bias = `ndim < 2`
//! or the name contains `bn`, `ln`, `bias` or `logit_scale`. Groups: frame g/b lr 5e-5 wd 0, frame rest 1e-8 wd 0.1,
//! text g/b 5e-5/0, text rest 1e-8/0.1, temporal g/b 5e-5/0, temporal rest 1e-8/0.1, `logit_scale` 1e-8/0;
//! betas (0.98, 0.9), eps 1e-6.
//!
//! The paper does not say where `logit_scale` goes; the paper preset gives it the official group (lr 1e-8, wd 0).
//! A parameter in none of the four parts is an error here (the official code would silently not train it).
use crate::optim::{is_gain_or_bias, ParamGroup};
use crate::{Error, Result};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

/// Which part of EmotionCLIP a parameter belongs to; in configs (`freeze`) `visual`, `text`, `temporal`,
/// `logit_scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// The frame encoder (`backbone.visual.*`).
    #[serde(rename = "visual")]
    Frame,
    Text,
    Temporal,
    LogitScale,
}

impl Part {
    pub const ALL: [Part; 4] = [Part::Frame, Part::Text, Part::Temporal, Part::LogitScale];
}

/// Learning rate and weight decay of one group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LrWd {
    pub lr: f64,
    pub weight_decay: f64,
}

/// All hyper-parameters of a preset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroupPreset {
    pub frame_gain_bias: LrWd,
    pub frame_rest: LrWd,
    pub text_gain_bias: LrWd,
    pub text_rest: LrWd,
    pub temporal_gain_bias: LrWd,
    pub temporal_rest: LrWd,
    pub logit_scale: LrWd,
    pub betas: (f64, f64),
    pub eps: f64,
}

/// Paper, appendix B.2 (see the module documentation for the quotation).
pub const PAPER: GroupPreset = GroupPreset {
    frame_gain_bias: LrWd { lr: 5e-5, weight_decay: 0.0 },
    frame_rest: LrWd { lr: 1e-8, weight_decay: 0.1 },
    text_gain_bias: LrWd { lr: 5e-5, weight_decay: 0.0 },
    text_rest: LrWd { lr: 1e-8, weight_decay: 0.1 },
    temporal_gain_bias: LrWd { lr: 1e-6, weight_decay: 0.0 },
    temporal_rest: LrWd { lr: 1e-6, weight_decay: 0.1 },
    // Not stated in the paper: the official value.
    logit_scale: LrWd { lr: 1e-8, weight_decay: 0.0 },
    betas: (0.98, 0.9),
    eps: 1e-10,
};

/// Official code: `lr_backbone_gb` 5e-5, `lr_backbone_rest` 1e-8, `lr_head_gb` 5e-5, `lr_head_rest` 1e-8,
/// `weight_decay_backbone` 0.1, `weight_decay_head` 0.1, `adamw_beta1` 0.98, `adamw_beta2` 0.9, `adamw_eps` 1e-6;
/// `logit_scale` uses `lr_backbone_rest` and weight decay 0.
pub const OFFICIAL: GroupPreset = GroupPreset {
    frame_gain_bias: LrWd { lr: 5e-5, weight_decay: 0.0 },
    frame_rest: LrWd { lr: 1e-8, weight_decay: 0.1 },
    text_gain_bias: LrWd { lr: 5e-5, weight_decay: 0.0 },
    text_rest: LrWd { lr: 1e-8, weight_decay: 0.1 },
    temporal_gain_bias: LrWd { lr: 5e-5, weight_decay: 0.0 },
    temporal_rest: LrWd { lr: 1e-8, weight_decay: 0.1 },
    logit_scale: LrWd { lr: 1e-8, weight_decay: 0.0 },
    betas: (0.98, 0.9),
    eps: 1e-6,
};

/// The part of a parameter from its checkpoint name (official rules), or `None` when it is in none.
pub fn part_of(name: &str) -> Option<Part> {
    if name.contains("logit_scale") {
        Some(Part::LogitScale)
    } else if name.contains("backbone.visual") {
        Some(Part::Frame)
    } else if name.contains("visual_head") {
        Some(Part::Temporal)
    } else if name.contains("backbone") && !name.contains("visual") {
        Some(Part::Text)
    } else {
        None
    }
}

/// Builds the seven groups (frame g/b, frame rest, text g/b, text rest, temporal g/b, temporal rest, logit_scale)
/// from `(name, ndim)` pairs. Empty groups are kept (so group indices are stable); names are sorted.
pub fn build_groups<'a>(
    params: impl IntoIterator<Item = (&'a str, usize)>,
    preset: &GroupPreset,
) -> Result<Vec<ParamGroup>> {
    let labels = [
        "frame_gain_bias",
        "frame_rest",
        "text_gain_bias",
        "text_rest",
        "temporal_gain_bias",
        "temporal_rest",
        "logit_scale",
    ];
    let hps = [
        preset.frame_gain_bias,
        preset.frame_rest,
        preset.text_gain_bias,
        preset.text_rest,
        preset.temporal_gain_bias,
        preset.temporal_rest,
        preset.logit_scale,
    ];
    let mut names: Vec<Vec<String>> = vec![Vec::new(); labels.len()];
    let mut unknown = Vec::new();
    for (name, ndim) in params {
        let gb = is_gain_or_bias(name, ndim);
        let idx = match part_of(name) {
            Some(Part::Frame) => usize::from(!gb),
            Some(Part::Text) => 2 + usize::from(!gb),
            Some(Part::Temporal) => 4 + usize::from(!gb),
            Some(Part::LogitScale) => 6,
            None => {
                unknown.push(name.to_string());
                continue;
            }
        };
        names[idx].push(name.to_string());
    }
    if !unknown.is_empty() {
        unknown.sort();
        return Err(Error::Msg(format!(
            "parameters outside the frame encoder (backbone.visual.*), text encoder (backbone.*), temporal encoder \
             (visual_head.*) and logit_scale would not be trained: {}",
            unknown.join(", ")
        )));
    }
    Ok(labels
        .iter()
        .zip(hps)
        .zip(names)
        .map(|((label, hp), mut params)| {
            params.sort();
            ParamGroup {
                name: label.to_string(),
                lr: hp.lr,
                betas: preset.betas,
                eps: preset.eps,
                weight_decay: hp.weight_decay,
                params,
            }
        })
        .collect())
}

/// [`build_groups`] over every variable of a VarMap.
pub fn param_groups(varmap: &VarMap, preset: &GroupPreset) -> Result<Vec<ParamGroup>> {
    let data = varmap.data().lock().map_err(|_| Error::Msg("VarMap lock poisoned".into()))?;
    let params: Vec<(String, usize)> = data.iter().map(|(k, v)| (k.clone(), v.rank())).collect();
    drop(data);
    build_groups(params.iter().map(|(k, r)| (k.as_str(), *r)), preset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_rules() {
        let g = build_groups(
            [
                ("backbone.visual.conv1.weight", 4),
                ("backbone.visual.ln_pre.weight", 1),
                ("backbone.visual.proj", 2),
                ("backbone.token_embedding.weight", 2),
                ("backbone.ln_final.bias", 1),
                ("backbone.text_projection", 2),
                ("visual_head.transformer.layers.0.linear1.weight", 2),
                ("visual_head.transformer.layers.0.linear1.bias", 1),
                ("logit_scale", 0),
            ],
            &OFFICIAL,
        )
        .unwrap();
        let find = |n: &str| g.iter().find(|g| g.params.iter().any(|p| p == n)).unwrap().name.clone();
        assert_eq!(find("backbone.visual.conv1.weight"), "frame_rest");
        assert_eq!(find("backbone.visual.ln_pre.weight"), "frame_gain_bias");
        assert_eq!(find("backbone.visual.proj"), "frame_rest");
        assert_eq!(find("backbone.token_embedding.weight"), "text_rest");
        assert_eq!(find("backbone.ln_final.bias"), "text_gain_bias");
        assert_eq!(find("visual_head.transformer.layers.0.linear1.bias"), "temporal_gain_bias");
        assert_eq!(find("visual_head.transformer.layers.0.linear1.weight"), "temporal_rest");
        assert_eq!(find("logit_scale"), "logit_scale");
        assert!(build_groups([("other.weight", 2)], &OFFICIAL).is_err());
    }
}
