//! Zero-shot scores (CLIP's zero-shot classification, open_clip `zero_shot_classifier` + `logit_scale`):
//! media vector · prompt vectors scaled by `exp(logit_scale)`, and their softmax over the prompts.
use crate::output::encode_name;
use std::path::PathBuf;

/// The scores of one media item against every prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct ZeroShot {
    /// `exp(logit_scale) · cos(media, prompt)` per prompt.
    pub logits: Vec<f32>,
    /// Softmax of `logits` over the prompts.
    pub probs: Vec<f32>,
}

/// Scores the L2-normalised `media` vector against L2-normalised `prompts` with the similarity scale
/// `scale = exp(logit_scale)`.
pub fn zero_shot(media: &[f32], prompts: &[Vec<f32>], scale: f32) -> ZeroShot {
    let logits: Vec<f32> =
        prompts.iter().map(|t| scale * t.iter().zip(media).map(|(a, b)| a * b).sum::<f32>()).collect();
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let z: f32 = logits.iter().map(|l| (l - max).exp()).sum();
    let probs = logits.iter().map(|l| (l - max).exp() / z).collect();
    ZeroShot { logits, probs }
}

/// The JSON of a similarity run: `{"prompts", "logit_scale", "results": [{"file", "scores", "probs"}]}`, file
/// names as in the embedding outputs (JSON strings, undecodable bytes as `\udcXX` escapes).
pub fn to_json(prompts: &[String], scale: f32, names: &[PathBuf], table: &[ZeroShot]) -> String {
    let floats = |v: &[f32]| serde_json::Value::from(v.iter().map(|&x| serde_json::Value::from(x)).collect::<Vec<_>>());
    let results: Vec<String> = names
        .iter()
        .zip(table)
        .map(|(n, z)| {
            format!(
                "{{\"file\":{},\"scores\":{},\"probs\":{}}}",
                encode_name(n.as_os_str()),
                floats(&z.logits),
                floats(&z.probs)
            )
        })
        .collect();
    format!(
        "{{\"prompts\":{},\"logit_scale\":{},\"results\":[{}]}}",
        serde_json::Value::from(prompts.to_vec()),
        serde_json::Value::from(scale),
        results.join(",")
    )
}
