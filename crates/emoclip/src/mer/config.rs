//! MER-CLIP model config (MER-CLIP paper appendix; what a checkpoint's `config.json` holds). The paper fixes only
//! the LVA order, the label-embedding similarity, "standard normalisation + sigmoid, threshold 0.6" for
//! emotions and a learnable logit scale initialised to ln(1/0.07) for sentiment; every other number here
//! is a project default, each one a field:
//!
//! | field | default | note |
//! |---|---|---|
//! | `clip` | open_clip `ViT-B-32` (text: width 512, 12 layers, 8 heads, ctx 77, embed 512) | the label encoder / query encoder |
//! | `dims` | MOSI 300 / 20 / 5 ([`MerConfig::mosi`]), MOSEI 300 / 35 / 74 ([`MerConfig::mosei`]) | GloVe text, Facet vision, COVAREP audio |
//! | `bert` | `null` (GloVe `text`) | BERT text: the model (HF dir or `hf:` name) that encoded `text_bert`; `dims.text` = its hidden size |
//! | `n_prompt` | 8, init N(0, 0.02) | CoOp-style learnable context vectors |
//! | `query_word` | "Emotion" (emotion task), "Sentiment" (sentiment task), `null` = prompts only | paper Tables 1–3 |
//! | `label_words` | happy, sad, angry, fear, disgust, surprise / negative, positive | MMSA order happiness, sadness, anger, fear, disgust, surprise |
//! | `cmd` | 1 layer per modality, 8 heads, ff 2048, dropout 0.1, GELU, post-norm | `nn.TransformerDecoderLayer` |
//! | `freeze_text` | true | the CLIP text tower is not trained (prompts, CMD, projections are) |
//! | `threshold` | 0.6 | emotion decision on the sigmoid probability |
//! | `std_unbiased` / `std_eps` | true / 1e-6 | emotion standardisation `(s − mean) / (std + eps)` over the labels |
//! | `logit_scale_init` | ln(1/0.07) | sentiment: logits = exp(logit_scale)·cos, no clamp in the model |
use crate::clip::OpenClipConfig;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Which head the model has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MerTask {
    /// Multi-label emotion recognition (CMU-MOSEI's six emotions): standardise, sigmoid, threshold.
    #[default]
    Emotion,
    /// Binary sentiment (negative, positive): scaled cosine, softmax / argmax.
    Sentiment,
}

impl MerTask {
    /// The label words of the task, in the order of the MMSA targets.
    pub fn default_label_words(self) -> Vec<String> {
        let w: &[&str] = match self {
            MerTask::Emotion => &["happy", "sad", "angry", "fear", "disgust", "surprise"],
            MerTask::Sentiment => &["negative", "positive"],
        };
        w.iter().map(|s| s.to_string()).collect()
    }

    /// The MER-CLIP paper's query word for the task ("Emotion" / "Sentiment").
    pub fn default_query_word(self) -> String {
        match self {
            MerTask::Emotion => "Emotion".into(),
            MerTask::Sentiment => "Sentiment".into(),
        }
    }
}

/// The query words of the MER-CLIP paper's ablation (Tables 1–3); `None` is "(no word)".
pub const QUERY_WORDS: &[Option<&str>] =
    &[Some("Emotion"), Some("Sentiment"), Some("Feeling"), Some("Impression"), Some("Mood"), Some("Sensation"), None];

/// Per-step feature sizes of the three modalities.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureDims {
    /// Language (GloVe 300 in MMSA).
    pub text: usize,
    /// Vision (Facet: 20 in MOSI, 35 in MOSEI).
    pub vision: usize,
    /// Audio (COVAREP: 5 in MOSI, 74 in MOSEI).
    pub audio: usize,
}

impl FeatureDims {
    pub const MOSI: FeatureDims = FeatureDims { text: 300, vision: 20, audio: 5 };
    pub const MOSEI: FeatureDims = FeatureDims { text: 300, vision: 35, audio: 74 };
}

/// Feed-forward activation of the decoder layers (`activation=` of `nn.TransformerDecoderLayer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CmdActivation {
    /// Exact (erf) GELU, as the CLIP towers (default).
    #[default]
    Gelu,
    /// ReLU, PyTorch's default for `nn.TransformerDecoderLayer`.
    Relu,
}

/// The cross-modal decoder: one `nn.TransformerDecoder` (post-norm layers, no final norm) per modality.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CmdConfig {
    /// Decoder layers per modality.
    #[serde(default = "d_cmd_layers")]
    pub layers: usize,
    #[serde(default = "d_cmd_heads")]
    pub heads: usize,
    /// `dim_feedforward`.
    #[serde(default = "d_cmd_ff")]
    pub ff: usize,
    /// Dropout of the attention weights, the three residual branches and the FFN (training only).
    #[serde(default = "d_cmd_dropout")]
    pub dropout: f32,
    #[serde(default)]
    pub activation: CmdActivation,
    #[serde(default = "d_eps")]
    pub layer_norm_eps: f64,
}

impl Default for CmdConfig {
    fn default() -> Self {
        Self { layers: 1, heads: 8, ff: 2048, dropout: 0.1, activation: CmdActivation::Gelu, layer_norm_eps: 1e-5 }
    }
}

fn d_cmd_layers() -> usize {
    1
}
fn d_cmd_heads() -> usize {
    8
}
fn d_cmd_ff() -> usize {
    2048
}
fn d_cmd_dropout() -> f32 {
    0.1
}
fn d_eps() -> f64 {
    1e-5
}
fn d_n_prompt() -> usize {
    8
}
fn d_prompt_std() -> f64 {
    0.02
}
fn d_true() -> bool {
    true
}
fn d_threshold() -> f32 {
    0.6
}
fn d_std_eps() -> f64 {
    1e-6
}
fn d_logit_scale_init() -> f64 {
    (1.0f64 / 0.07).ln()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MerConfig {
    #[serde(default)]
    pub task: MerTask,
    pub dims: FeatureDims,
    /// The CLIP model whose text tower encodes the query and the labels (the vision part is unused).
    pub clip: OpenClipConfig,
    /// Learnable prompt vectors in the emotion query.
    #[serde(default = "d_n_prompt")]
    pub n_prompt: usize,
    /// Standard deviation of the prompt vectors' normal initialisation.
    #[serde(default = "d_prompt_std")]
    pub prompt_init_std: f64,
    /// Word after the prompt vectors (`[SOT] p_1..p_n <word> . [EOT]`); `None`: `[SOT] p_1..p_n . [EOT]`.
    pub query_word: Option<String>,
    /// Label texts, one per output column, each encoded alone (`[SOT] word [EOT]`, no template).
    pub label_words: Vec<String>,
    #[serde(default)]
    pub cmd: CmdConfig,
    /// Keep the CLIP text tower fixed (its tensors are detached; label embeddings carry no gradient).
    #[serde(default = "d_true")]
    pub freeze_text: bool,
    /// Emotion decision threshold on the sigmoid of the standardised similarity.
    #[serde(default = "d_threshold")]
    pub threshold: f32,
    /// Standardisation uses the unbiased (n − 1) standard deviation (`torch.std` default).
    #[serde(default = "d_true")]
    pub std_unbiased: bool,
    /// Added to the standard deviation before dividing.
    #[serde(default = "d_std_eps")]
    pub std_eps: f64,
    /// Sentiment: initial value of the learnable log scale.
    #[serde(default = "d_logit_scale_init")]
    pub logit_scale_init: f64,
    /// Language features from BERT (`text_bert` ids through this HF BERT directory / `hf:` name, see
    /// `mer::bert_text`) instead of GloVe `text`; evaluation re-encodes with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bert: Option<String>,
}

impl MerConfig {
    /// The documented defaults for `task` on features of size `dims`, with a ViT-B/32 text tower.
    pub fn new(task: MerTask, dims: FeatureDims) -> Self {
        Self {
            task,
            dims,
            clip: OpenClipConfig::vit_b_32(),
            n_prompt: 8,
            prompt_init_std: 0.02,
            query_word: Some(task.default_query_word()),
            label_words: task.default_label_words(),
            cmd: CmdConfig::default(),
            freeze_text: true,
            threshold: 0.6,
            std_unbiased: true,
            std_eps: 1e-6,
            logit_scale_init: d_logit_scale_init(),
            bert: None,
        }
    }

    /// Defaults for MMSA CMU-MOSI features (300 / 20 / 5).
    pub fn mosi(task: MerTask) -> Self {
        Self::new(task, FeatureDims::MOSI)
    }

    /// Defaults for MMSA CMU-MOSEI features (300 / 35 / 74).
    pub fn mosei(task: MerTask) -> Self {
        Self::new(task, FeatureDims::MOSEI)
    }

    /// A tiny model for tests and smoke runs: text tower width 32, 2 layers, 4 heads, ctx 77, full BPE
    /// vocabulary, embed 16; CMD 1 layer, 4 heads, ff 64; 4 prompt vectors.
    pub fn tiny(task: MerTask, dims: FeatureDims) -> Self {
        let mut c = Self::new(task, dims);
        c.clip.embed_dim = 16;
        c.clip.text_cfg.width = 32;
        c.clip.text_cfg.layers = 2;
        c.clip.text_cfg.heads = 4;
        c.n_prompt = 4;
        c.cmd = CmdConfig { layers: 1, heads: 4, ff: 64, ..CmdConfig::default() };
        c
    }

    pub fn n_labels(&self) -> usize {
        self.label_words.len()
    }

    /// Width of the text tower, the common width of the projected modalities and the decoder.
    pub fn width(&self) -> usize {
        self.clip.text_cfg.width
    }

    pub fn from_json_str(s: &str, path: &Path) -> Result<Self> {
        let c: Self = serde_json::from_str(s).map_err(|e| {
            Error::config(
                path,
                format!("{e}; expected a MER-CLIP config (task, dims, clip, query_word, label_words, ...)"),
            )
        })?;
        c.validate(Some(path))?;
        Ok(c)
    }

    pub fn from_file(path: &Path) -> Result<Self> {
        let s = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_json_str(&s, path)
    }

    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Checks sizes and options; `path` names the config file in the error (`None` for one built in code).
    pub fn validate(&self, path: Option<&Path>) -> Result<()> {
        self.clip.validate(path)?;
        let mut p = Vec::new();
        let d = self.dims;
        if d.text == 0 || d.vision == 0 || d.audio == 0 {
            p.push(format!("dims must be > 0 (got text {}, vision {}, audio {})", d.text, d.vision, d.audio));
        }
        let n = self.n_labels();
        match self.task {
            MerTask::Emotion if n < 2 => {
                p.push(format!("the emotion task needs at least 2 label words to standardise over, got {n}"))
            }
            MerTask::Sentiment if n != 2 => {
                p.push(format!("the sentiment task needs exactly 2 label words (negative, positive), got {n}"))
            }
            _ => {}
        }
        if self.label_words.iter().any(|w| w.trim().is_empty()) {
            p.push("label_words must not be empty strings".into());
        }
        if matches!(&self.query_word, Some(w) if w.trim().is_empty()) {
            p.push("query_word must be a word or null, not an empty string".into());
        }
        let w = self.width();
        if self.cmd.layers == 0 {
            p.push("cmd.layers must be >= 1".into());
        }
        if self.cmd.heads == 0 || !w.is_multiple_of(self.cmd.heads) {
            p.push(format!("cmd.heads {} does not divide the text width {w}", self.cmd.heads));
        }
        if self.cmd.ff == 0 {
            p.push("cmd.ff must be > 0".into());
        }
        if !(0.0..1.0).contains(&self.cmd.dropout) {
            p.push(format!("cmd.dropout {} must be in [0, 1)", self.cmd.dropout));
        }
        if !(0.0..=1.0).contains(&self.threshold) {
            p.push(format!("threshold {} must be a probability in [0, 1]", self.threshold));
        }
        if self.std_eps < 0.0 || !self.std_eps.is_finite() {
            p.push(format!("std_eps {} must be finite and >= 0", self.std_eps));
        }
        if !self.logit_scale_init.is_finite() {
            p.push("logit_scale_init must be finite".into());
        }
        if self.clip.text_cfg.vocab_size < crate::tokenizer::EOT as usize + 1 {
            p.push(format!(
                "clip.text_cfg.vocab_size {} is smaller than the CLIP BPE vocabulary ({}); MER-CLIP tokenises words with it",
                self.clip.text_cfg.vocab_size,
                crate::tokenizer::EOT + 1
            ));
        }
        if p.is_empty() {
            Ok(())
        } else {
            Err(Error::config_at(path, format!("{}; fix the MER-CLIP config", p.join("; "))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_and_defaults() {
        let c = MerConfig::mosei(MerTask::Emotion);
        let s = c.to_json().unwrap();
        let back = MerConfig::from_json_str(&s, Path::new("<test>")).unwrap();
        assert_eq!(c, back);
        assert_eq!(c.n_labels(), 6);
        assert_eq!(c.cmd.ff, 2048);
        assert!((c.logit_scale_init - (1.0f64 / 0.07).ln()).abs() < 1e-12);
        let minimal = r#"{"dims": {"text": 300, "vision": 20, "audio": 5}, "clip": {"embed_dim": 512, "vision_cfg": {}, "text_cfg": {}},
                          "query_word": null, "label_words": ["negative", "positive"], "task": "sentiment"}"#;
        let m = MerConfig::from_json_str(minimal, Path::new("<test>")).unwrap();
        assert_eq!(m.n_prompt, 8);
        assert_eq!(m.threshold, 0.6);
        assert!(m.freeze_text);
    }

    #[test]
    fn validation_names_the_problem() {
        let mut c = MerConfig::tiny(MerTask::Sentiment, FeatureDims::MOSI);
        c.label_words.push("neutral".into());
        c.cmd.heads = 5;
        let e = c.validate(Some(Path::new("cfg.json"))).unwrap_err().to_string();
        assert!(e.contains("exactly 2 label words") && e.contains("cmd.heads 5"), "{e}");
    }
}
