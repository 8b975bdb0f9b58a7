//! The `emoclip train` config (TOML, e.g. `configs/train_tiny.toml`): model, data, optimiser preset, schedule,
//! precision, frozen parts, output. Enumerated settings are serde enums, so an unknown value is refused when
//! the file is read, naming the file, the line and the values allowed.
use super::param_groups::{part_of, GroupPreset, Part, OFFICIAL, PAPER};
use crate::emotionclip::{EmotionClipConfig, SubjectMode, TemporalFusion};
use crate::optim::LrSchedule;
use crate::{Error, Result};
use candle_core::DType;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The optimiser preset (`optimizer = "official" | "paper"`): parameter groups, betas, eps, weight decays
/// ([`super::param_groups`]) and the schedule shape ([`LrSchedule`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    /// The official code's groups and per-epoch cosine (`main.py`, `options.py`).
    #[default]
    Official,
    /// Paper appendix B.2: its groups and a per-step cosine.
    Paper,
}

impl Optimizer {
    pub fn groups(self) -> &'static GroupPreset {
        match self {
            Optimizer::Official => &OFFICIAL,
            Optimizer::Paper => &PAPER,
        }
    }

    /// The schedule of a run of `total_steps` optimiser steps, `steps_per_epoch` a epoch, warming up over
    /// `warmup_steps` ([`LrSchedule::official`] or [`LrSchedule::paper`]).
    pub fn schedule(self, warmup_steps: usize, steps_per_epoch: usize, total_steps: usize) -> LrSchedule {
        match self {
            Optimizer::Paper => LrSchedule::paper(warmup_steps, total_steps.max(warmup_steps + 1)),
            Optimizer::Official => {
                LrSchedule::official(warmup_steps, steps_per_epoch, total_steps.div_ceil(steps_per_epoch).max(1))
            }
        }
    }
}

/// `precision = "fp32" | "bf16" | "fp16"`: the dtype of the matrix products under `nn::autocast` (the
/// counterpart of the official trainer's AMP); weights, LayerNorm, softmax and loss stay f32.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    #[serde(alias = "f32")]
    Fp32,
    Bf16,
    #[serde(alias = "f16")]
    Fp16,
}

impl Precision {
    /// The low-precision dtype (None for fp32).
    pub fn autocast_dtype(self) -> Option<DType> {
        match self {
            Precision::Fp32 => None,
            Precision::Bf16 => Some(DType::BF16),
            Precision::Fp16 => Some(DType::F16),
        }
    }
}

/// Model section: a built-in name (`ViT-B-32`, `tiny`) or a config JSON path (emoclip or open_clip).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    #[serde(default = "d_model_name")]
    pub name: String,
    /// emoclip / open_clip config JSON; overrides `name`.
    #[serde(default)]
    pub config: Option<PathBuf>,
    #[serde(default = "d_subject")]
    pub subject: SubjectMode,
    #[serde(default = "d_temporal")]
    pub temporal: TemporalFusion,
}
fn d_model_name() -> String {
    "ViT-B-32".into()
}
fn d_subject() -> SubjectMode {
    SubjectMode::Sap
}
fn d_temporal() -> TemporalFusion {
    TemporalFusion::Transformer
}

/// Synthetic data parameters.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SyntheticSection {
    #[serde(default = "d_n")]
    pub n: usize,
    #[serde(default = "d_classes")]
    pub classes: usize,
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "d_noise")]
    pub noise: f32,
}
fn d_n() -> usize {
    64
}
fn d_classes() -> usize {
    8
}
fn d_noise() -> f32 {
    0.5
}

/// Data section: `shards` (directory or `dir/prefix-*.tar`) or `synthetic`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    #[serde(default)]
    pub shards: Option<PathBuf>,
    #[serde(default)]
    pub synthetic: Option<SyntheticSection>,
}

/// The whole training config (TOML).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub model: ModelSection,
    /// Checkpoint to start from (open_clip or EmotionCLIP, any layout `Checkpoint::open` reads); parameters it
    /// lacks (temporal head, subject token) are initialised from the seed. Absent: everything random (seeded).
    #[serde(default)]
    pub init: Option<PathBuf>,
    pub data: DataSection,
    #[serde(default = "d_batch")]
    pub batch_size: usize,
    #[serde(default = "d_one")]
    pub grad_accum: usize,
    #[serde(default = "d_one")]
    pub epochs: usize,
    /// Stop after this many optimiser steps (default: `epochs` full epochs).
    #[serde(default)]
    pub max_steps: Option<usize>,
    /// Parameter groups, betas, eps, weight decays and schedule shape.
    #[serde(default)]
    pub optimizer: Optimizer,
    /// Multiplies every group's base learning rate (1 = the preset's).
    #[serde(default = "d_lr_scale")]
    pub lr_scale: f64,
    /// One base learning rate for every group (training from scratch), replacing the preset's per-group rates
    /// (betas, eps and weight decays stay the preset's); `lr_scale` still applies.
    #[serde(default)]
    pub lr: Option<f64>,
    /// SNCE β; 0 = plain CLIP loss.
    #[serde(default = "d_beta")]
    pub beta: f64,
    #[serde(default)]
    pub warmup_steps: usize,
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "d_out")]
    pub out_dir: PathBuf,
    /// Checkpoint every N optimiser steps (0: only at the end).
    #[serde(default)]
    pub checkpoint_every: usize,
    /// Parts left untouched: any of `text`, `visual` (frame encoder), `temporal`, `logit_scale`.
    #[serde(default)]
    pub freeze: Vec<Part>,
    /// Shard streaming: shuffle-buffer size in samples (0 = shuffled shard order only).
    #[serde(default = "d_shuffle_buffer")]
    pub shuffle_buffer: usize,
    /// Matrix products in low precision with f32 master weights, LayerNorm, softmax and loss.
    #[serde(default)]
    pub precision: Precision,
    /// The file this config was read from (named in messages); not part of the TOML.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

fn d_shuffle_buffer() -> usize {
    crate::shards::DEFAULT_SHUFFLE_BUFFER
}
fn d_batch() -> usize {
    32
}
fn d_one() -> usize {
    1
}
fn d_lr_scale() -> f64 {
    1.0
}
fn d_beta() -> f64 {
    super::snce::DEFAULT_BETA
}
fn d_out() -> PathBuf {
    PathBuf::from("runs/train")
}

impl TrainConfig {
    pub fn from_toml_str(s: &str, path: &Path) -> Result<Self> {
        let mut cfg: Self = toml::from_str(s).map_err(|e| Error::config(path, e.to_string()))?;
        cfg.validate(Some(path))?;
        cfg.source = Some(path.to_path_buf());
        Ok(cfg)
    }

    /// Reads a TOML file; relative paths inside are taken relative to the file's directory.
    pub fn from_file(path: &Path) -> Result<Self> {
        let s = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut cfg = Self::from_toml_str(&s, path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let fix = |p: &mut PathBuf| {
            if p.is_relative() && !p.exists() && base.join(&*p).exists() {
                *p = base.join(&*p);
            }
        };
        if let Some(p) = cfg.model.config.as_mut() {
            fix(p)
        }
        if let Some(p) = cfg.init.as_mut() {
            fix(p)
        }
        if let Some(p) = cfg.data.shards.as_mut() {
            fix(p)
        }
        Ok(cfg)
    }

    /// Checks the values; `path` names the file in messages (`None` for a config built in code).
    pub fn validate(&self, path: Option<&Path>) -> Result<()> {
        let bad = |m: String| Err(Error::config_at(path, m));
        if self.batch_size == 0 || self.grad_accum == 0 {
            return bad("batch_size and grad_accum must be >= 1".into());
        }
        if self.epochs == 0 && self.max_steps.is_none() {
            return bad("set epochs >= 1 or max_steps".into());
        }
        if self.max_steps == Some(0) {
            return bad(
                "max_steps = 0 trains nothing; set max_steps >= 1, or remove it to train `epochs` epochs".into()
            );
        }
        if self.lr.is_some_and(|l| !(l.is_finite() && l >= 0.0)) {
            return bad("lr must be finite and >= 0".into());
        }
        if !(self.lr_scale.is_finite() && self.lr_scale >= 0.0 && self.beta.is_finite() && self.beta >= 0.0) {
            return bad("lr_scale and beta must be finite and >= 0".into());
        }
        if self.data.shards.is_some() == self.data.synthetic.is_some() {
            return bad("data: set exactly one of `shards` and `synthetic`".into());
        }
        if Part::ALL.iter().all(|p| self.freeze.contains(p)) {
            return bad(format!("freeze = {} freezes every part, so nothing would be trained; leave at least one of text, visual, temporal, logit_scale out", self.freeze_list()));
        }
        Ok(())
    }

    /// `freeze` as written in the TOML, e.g. `["text", "logit_scale"]`.
    pub fn freeze_list(&self) -> String {
        serde_json::to_string(&self.freeze).unwrap_or_default()
    }

    /// The EmotionCLIP config this training config describes.
    pub fn model_config(&self) -> Result<EmotionClipConfig> {
        let mut cfg = match &self.model.config {
            Some(p) => crate::weights::load::read_config(p)?,
            None => match self.model.name.as_str() {
                "ViT-B-32" | "vit-b-32" | "ViT-B/32" => EmotionClipConfig::default(),
                "tiny" => EmotionClipConfig::tiny(),
                other => {
                    return Err(Error::config_at(
                        self.source.as_deref(),
                        format!("unknown model.name {other:?}: use \"ViT-B-32\", \"tiny\" or model.config = <json>"),
                    ))
                }
            },
        };
        cfg.subject = self.model.subject;
        cfg.temporal.fusion = self.model.temporal;
        Ok(cfg)
    }

    /// Whether the parameter `name` is in a frozen part.
    pub fn frozen(&self, name: &str) -> bool {
        part_of(name).is_some_and(|p| self.freeze.contains(&p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &str = include_str!("../../../../configs/train_tiny.toml");

    #[test]
    fn enumerated_settings_read_their_toml_spelling() {
        let cfg = TrainConfig::from_toml_str(TINY, Path::new("t.toml")).unwrap();
        assert_eq!((cfg.optimizer, cfg.precision), (Optimizer::Official, Precision::Fp32));
        let text = format!("optimizer = \"paper\"\nprecision = \"f16\"\n{}", TINY.replace("optimizer = ", "# "));
        let text = text.replace("freeze = []", r#"freeze = ["visual", "logit_scale"]"#);
        let cfg = TrainConfig::from_toml_str(&text, Path::new("t.toml")).unwrap();
        assert_eq!((cfg.optimizer, cfg.precision), (Optimizer::Paper, Precision::Fp16));
        assert_eq!(cfg.freeze, vec![Part::Frame, Part::LogitScale]);
        assert_eq!(cfg.freeze_list(), r#"["visual","logit_scale"]"#);
        assert!(
            cfg.frozen("backbone.visual.proj") && cfg.frozen("logit_scale") && !cfg.frozen("backbone.ln_final.bias")
        );
        // The config a checkpoint records spells them as the TOML does.
        let json = serde_json::to_value(&cfg).unwrap();
        assert_eq!((json["optimizer"].as_str(), json["precision"].as_str()), (Some("paper"), Some("fp16")));
    }

    #[test]
    fn unknown_values_name_the_file_and_the_allowed_ones() {
        for (edit, allowed) in [
            (("optimizer = \"official\"", "optimizer = \"adam\""), "expected `official` or `paper`"),
            (("freeze = []", "freeze = [\"head\"]"), "`visual`, `text`, `temporal`, `logit_scale`"),
            (("batch_size = 16", "precision = \"fp8\"\nbatch_size = 16"), "`fp32`"),
        ] {
            let text = TINY.replace(edit.0, edit.1);
            assert_ne!(text, TINY);
            let err = TrainConfig::from_toml_str(&text, Path::new("my.toml")).unwrap_err().to_string();
            assert!(err.contains("my.toml") && err.contains("unknown variant") && err.contains(allowed), "{err}");
        }
    }
}
