//! MER-CLIP (MER-CLIP paper, Alg. 1): per-modality projections `Linear(d_m → width)`, emotion query Z^E
//! ([`EmotionQuery`]), label embeddings Z^L ([`LabelEncoder`]), cross-modal decoder in the order L, V, A
//! ([`Decoder`]), Z^[3] at the query's EOT (last) position → `Linear(width → embed, no bias)` →
//! L2-normalise → cosine similarity with Z^L → task head ([`super::heads`]).
//!
//! Parameter keys (the Rust key map; `scripts/fixtures/gen_mer_model.py` builds the same in PyTorch):
//! `text.*` (open_clip text tower: `token_embedding.weight`, `positional_embedding`,
//! `transformer.resblocks.{i}.*`, `ln_final.*`, `text_projection`), `prompt.ctx [n_prompt, width]`,
//! `proj.{text,vision,audio}.{weight,bias}`, `cmd.{text,vision,audio}.layers.{i}.*` (PyTorch
//! `nn.TransformerDecoderLayer` keys), `out_proj.weight [embed, width]`, and `logit_scale []` (sentiment only).
//! With `freeze_text` the `text.*` tensors are detached: no gradient reaches them, yet the prompt vectors
//! get theirs through the frozen transformer. Z^E and Z^L are recomputed on every forward (a few short
//! sequences), so weights loaded into the `VarMap` later are always used.
use super::config::{MerConfig, MerTask};
use super::decoder::{key_padding_mask, Decoder};
use super::heads;
use super::label_encoder::LabelEncoder;
use super::prompt::EmotionQuery;
use crate::clip::{OpenClipConfig, ResidualAttentionBlock, TextTransformer, Transformer};
use crate::nn::l2_normalize;
use crate::nn::{LayerNorm, Linear, MultiheadAttention};
use crate::tokenizer::ClipTokenizer;
use crate::weights::{hub, CheckedTensors, Checkpoint, LoadReport, Missing};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{VarBuilder, VarMap};
use std::collections::HashMap;
use std::path::Path;

/// Modality names in the decoding order L, V, A (also the key segments `proj.<m>` / `cmd.<m>`).
pub const MODALITIES: [&str; 3] = ["text", "vision", "audio"];

/// One batch of utterance features, each `[B, T_m, D_m]` (float), with optional valid lengths per sample
/// (positions `>= len` are padding and masked out of the cross-attention).
#[derive(Clone, Debug)]
pub struct MerInputs {
    pub text: Tensor,
    pub vision: Tensor,
    pub audio: Tensor,
    pub text_len: Option<Vec<usize>>,
    pub vision_len: Option<Vec<usize>>,
    pub audio_len: Option<Vec<usize>>,
}

impl MerInputs {
    /// Features without padding information.
    pub fn new(text: Tensor, vision: Tensor, audio: Tensor) -> Self {
        Self { text, vision, audio, text_len: None, vision_len: None, audio_len: None }
    }

    fn modality(&self, i: usize) -> (&Tensor, Option<&Vec<usize>>) {
        match i {
            0 => (&self.text, self.text_len.as_ref()),
            1 => (&self.vision, self.vision_len.as_ref()),
            _ => (&self.audio, self.audio_len.as_ref()),
        }
    }
}

/// Every intermediate of one forward pass.
#[derive(Clone, Debug)]
pub struct MerOutputs {
    /// Z^E `[1, Lq, width]`.
    pub query: Tensor,
    /// Z^L `[n_labels, embed]`, unit rows.
    pub labels: Tensor,
    /// Z^[1], Z^[2], Z^[3], each `[B, Lq, width]`.
    pub stages: Vec<Tensor>,
    /// Projected, L2-normalised Z^[3] at the EOT position `[B, embed]`.
    pub features: Tensor,
    /// Cosine similarities `[B, n_labels]`.
    pub sims: Tensor,
    /// Pre-loss logits `[B, n_labels]` (standardised sims, or scaled sims for sentiment).
    pub logits: Tensor,
}

#[derive(Clone, Debug)]
pub struct MerClip {
    pub cfg: MerConfig,
    pub text: TextTransformer,
    pub query: EmotionQuery,
    pub labels: LabelEncoder,
    /// L, V, A projections to the text width.
    pub proj: Vec<Linear>,
    /// L, V, A decoder stacks.
    pub cmd: Vec<Decoder>,
    pub out_proj: Linear,
    /// Sentiment only: learnable log scale.
    pub logit_scale: Option<Tensor>,
}

fn detach_ln(l: &LayerNorm) -> LayerNorm {
    LayerNorm { weight: l.weight.detach(), bias: l.bias.detach(), eps: l.eps }
}

fn detach_lin(l: &Linear) -> Linear {
    Linear::from_parts(l.weight.detach(), l.bias.as_ref().map(|b| b.detach()))
}

/// The same tower with every tensor detached (shares storage, so later `VarMap` loads still show).
fn detach_text(t: &TextTransformer) -> candle_core::Result<TextTransformer> {
    let resblocks = t
        .transformer
        .resblocks
        .iter()
        .map(|b| {
            Ok(ResidualAttentionBlock {
                ln_1: detach_ln(&b.ln_1),
                attn: MultiheadAttention::from_parts(
                    detach_lin(&b.attn.in_proj),
                    detach_lin(&b.attn.out_proj),
                    b.attn.num_heads,
                    b.attn.dropout,
                )?,
                ln_2: detach_ln(&b.ln_2),
                c_fc: detach_lin(&b.c_fc),
                c_proj: detach_lin(&b.c_proj),
                act: b.act,
            })
        })
        .collect::<candle_core::Result<Vec<_>>>()?;
    Ok(TextTransformer {
        token_embedding: t.token_embedding.detach(),
        positional_embedding: t.positional_embedding.detach(),
        transformer: Transformer { resblocks },
        ln_final: detach_ln(&t.ln_final),
        text_projection: t.text_projection.detach(),
        vocab_size: t.vocab_size,
        context_length: t.context_length,
        eos_token_id: t.eos_token_id,
    })
}

impl MerClip {
    /// Builds the model from `vb` (a `VarMap` builder for random initialisation, or checked tensors).
    pub fn new(cfg: &MerConfig, vb: VarBuilder, device: &Device) -> Result<Self> {
        cfg.validate(None)?;
        let tokenizer = ClipTokenizer::new()?;
        let w = cfg.width();
        let text = TextTransformer::load(vb.pp("text"), &cfg.clip)?;
        let text = if cfg.freeze_text { detach_text(&text)? } else { text };
        let query = EmotionQuery::new(vb.clone(), cfg, &tokenizer, device)?;
        let labels = LabelEncoder::new(cfg, &tokenizer, device)?;
        let dims = [cfg.dims.text, cfg.dims.vision, cfg.dims.audio];
        let proj = MODALITIES
            .iter()
            .zip(dims)
            .map(|(m, d)| Linear::load(vb.pp("proj").pp(m), d, w, true))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let cmd = MODALITIES
            .iter()
            .map(|m| Decoder::load(vb.pp("cmd").pp(m), w, &cfg.cmd))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let ow = vb.get_with_hints(
            (cfg.clip.embed_dim, w),
            "out_proj.weight",
            candle_nn::Init::Randn { mean: 0.0, stdev: (w as f64).powf(-0.5) },
        )?;
        let out_proj = Linear::from_parts(ow, None);
        let logit_scale = match cfg.task {
            MerTask::Sentiment => {
                Some(vb.get_with_hints((), "logit_scale", candle_nn::Init::Const(cfg.logit_scale_init))?)
            }
            MerTask::Emotion => None,
        };
        Ok(Self { cfg: cfg.clone(), text, query, labels, proj, cmd, out_proj, logit_scale })
    }

    /// A randomly initialised model whose parameters are registered in `varmap` (f32).
    pub fn random(cfg: &MerConfig, varmap: &VarMap, device: &Device) -> Result<Self> {
        Self::new(cfg, VarBuilder::from_varmap(varmap, DType::F32, device), device)
    }

    /// Builds the model with the CLIP text tower (and `out_proj`, from `text_projection`ᵀ) taken from an
    /// open_clip / OpenAI / Hugging Face CLIP or EmotionCLIP checkpoint (a file, a directory, or
    /// `hf:<org>/<name>` from the local Hugging Face cache); everything else is initialised as `missing`
    /// says ([`Missing::Init`], or seeded). All parameters are registered in `varmap`. The checkpoint's text tower must match `cfg.clip`
    /// (see [`read_clip_config`] to adopt it).
    pub fn from_clip_checkpoint(
        cfg: &MerConfig,
        path: &Path,
        varmap: &VarMap,
        missing: Missing,
        device: &Device,
    ) -> Result<(Self, LoadReport)> {
        let ckpt = Checkpoint::open(&hub::resolve_path(path)?)?;
        let ck = ckpt.resolve_config(None)?.backbone;
        let diff = text_tower_differences(&cfg.clip, &ck);
        if !diff.is_empty() {
            return Err(Error::checkpoint(
                &ckpt.path,
                format!(
                    "the checkpoint's CLIP text tower differs from the MER-CLIP config ({}); fix: set the config's `clip` to the checkpoint's (emoclip::mer::read_clip_config)",
                    diff.join(", ")
                ),
            ));
        }
        let mut tensors = HashMap::new();
        for (k, v) in &ckpt.tensors {
            if let Some(rest) = k.strip_prefix("backbone.") {
                if is_text_key(rest) {
                    tensors.insert(format!("text.{rest}"), v.clone());
                }
            }
        }
        if let Some(tp) = tensors.get("text.text_projection") {
            tensors.insert("out_proj.weight".into(), tp.t()?.contiguous()?);
        }
        let checked = CheckedTensors::new(tensors, missing, Some(varmap.clone()));
        let model = Self::new(cfg, checked.var_builder(DType::F32, device), device)?;
        let report = checked.report(&[]);
        let text_init: Vec<&String> = report.initialised.iter().filter(|k| k.starts_with("text.")).collect();
        if !report.misshaped.is_empty() || !report.unexpected.is_empty() || !text_init.is_empty() {
            return Err(Error::checkpoint(
                &ckpt.path,
                format!(
                    "{} checkpoint does not hold a matching CLIP text tower:{}{}\n  fix: pass an open_clip / CLIP / EmotionCLIP checkpoint whose text tower matches the config",
                    ckpt.layout,
                    report.describe(),
                    if text_init.is_empty() { String::new() } else { format!("\n  missing text-tower keys: {text_init:?}") }
                ),
            ));
        }
        Ok((model, report))
    }

    /// True when the optimiser should update the parameter `name` (everything except a frozen `text.*`).
    pub fn is_trainable(&self, name: &str) -> bool {
        !(self.cfg.freeze_text && name.starts_with("text."))
    }

    /// The trainable variables of `varmap` (the one the model was built from), sorted by name.
    pub fn trainable_vars(&self, varmap: &VarMap) -> Vec<(String, Var)> {
        let data = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<(String, Var)> =
            data.iter().filter(|(k, _)| self.is_trainable(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Names of the frozen variables of `varmap`, sorted.
    pub fn frozen_names(&self, varmap: &VarMap) -> Vec<String> {
        let data = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<String> = data.keys().filter(|k| !self.is_trainable(k)).cloned().collect();
        v.sort();
        v
    }

    pub fn task(&self) -> MerTask {
        self.cfg.task
    }

    /// Checks shapes and lengths; returns the batch size.
    fn check_inputs(&self, batch: &MerInputs) -> Result<usize> {
        let dims = [self.cfg.dims.text, self.cfg.dims.vision, self.cfg.dims.audio];
        let mut b0 = None;
        for (i, m) in MODALITIES.iter().enumerate() {
            let (x, lens) = batch.modality(i);
            let (b, t, d) = x.dims3().map_err(|_| {
                Error::Shape(format!("{m} features have shape {:?}; expected [batch, steps, {}]", x.dims(), dims[i]))
            })?;
            if d != dims[i] {
                return Err(Error::Shape(format!(
                    "{m} features have {d} dims per step, the model expects {} (MerConfig.dims.{m}); use features of the size the model was built for, or set dims.{m} = {d}",
                    dims[i]
                )));
            }
            if t == 0 {
                return Err(Error::Shape(format!("{m} features have no time steps")));
            }
            if !x.dtype().is_float() {
                return Err(Error::Shape(format!("{m} features are {:?}; expected floating point", x.dtype())));
            }
            match b0 {
                None => b0 = Some(b),
                Some(b0) if b0 != b => {
                    return Err(Error::Shape(format!("{m} features hold {b} samples but text features hold {b0}; all modalities must have the same batch")));
                }
                _ => {}
            }
            if let Some(l) = lens {
                if l.len() != b {
                    return Err(Error::Shape(format!("{m}_len has {} entries for a batch of {b}", l.len())));
                }
                if let Some(bad) = l.iter().find(|&&n| n == 0 || n > t) {
                    return Err(Error::Shape(format!(
                        "{m}_len holds {bad}; each length must be in 1..={t} (the padded sequence length)"
                    )));
                }
            }
        }
        Ok(b0.unwrap_or(0))
    }

    /// Z^E `[1, Lq, width]`.
    pub fn emotion_query(&self) -> Result<Tensor> {
        self.query.forward(&self.text)
    }

    /// Z^L `[n_labels, embed]`.
    pub fn label_embeddings(&self) -> Result<Tensor> {
        self.labels.forward(&self.text)
    }

    /// The full forward pass with every intermediate. `train` switches dropout on.
    pub fn forward_detailed(&self, batch: &MerInputs, train: bool) -> Result<MerOutputs> {
        let b = self.check_inputs(batch)?;
        let query = self.emotion_query()?;
        let labels = self.label_embeddings()?;
        let (_, lq, w) = query.dims3()?;
        let dtype = query.dtype();
        let mut z = query.broadcast_as((b, lq, w))?.contiguous()?;
        let mut stages = Vec::with_capacity(3);
        for i in 0..3 {
            let (x, lens) = batch.modality(i);
            let mem = self.proj[i].forward(&x.to_dtype(dtype)?)?;
            let mask = match lens {
                Some(l) => Some(key_padding_mask(l, x.dim(1)?, x.device())?.to_dtype(dtype)?),
                None => None,
            };
            z = self.cmd[i].forward(&z, &mem, mask.as_ref(), train)?;
            stages.push(z.clone());
        }
        let pooled = z.narrow(1, lq - 1, 1)?.squeeze(1)?;
        let features = l2_normalize(&self.out_proj.forward(&pooled)?)?;
        let sims = features.matmul(&labels.t()?)?;
        let logits = match (self.cfg.task, &self.logit_scale) {
            (MerTask::Sentiment, Some(s)) => sims.broadcast_mul(&s.exp()?)?,
            _ => heads::standardize(&sims, self.cfg.std_unbiased, self.cfg.std_eps)?,
        };
        Ok(MerOutputs { query, labels, stages, features, sims, logits })
    }

    /// Pre-loss logits `[B, n_labels]`.
    pub fn forward(&self, batch: &MerInputs, train: bool) -> Result<Tensor> {
        Ok(self.forward_detailed(batch, train)?.logits)
    }

    /// Emotion: BCE-with-logits vs multi-hot `[B, n]` targets. Sentiment: cross-entropy vs class indices
    /// `[B]` (0 = negative, 1 = positive) or one-hot `[B, 2]`.
    pub fn loss(&self, logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
        match self.cfg.task {
            MerTask::Emotion => heads::bce_with_logits(logits, targets),
            MerTask::Sentiment => heads::softmax_cross_entropy(logits, targets),
        }
    }

    /// Emotion: sigmoid per label. Sentiment: softmax over the two classes.
    pub fn probabilities(&self, logits: &Tensor) -> Result<Tensor> {
        Ok(match self.cfg.task {
            MerTask::Emotion => candle_nn::ops::sigmoid(logits)?,
            MerTask::Sentiment => heads::log_softmax(logits)?.exp()?,
        })
    }

    /// 0/1 predictions `[B, n]` (f32). Emotion: probability > threshold. Sentiment: one-hot argmax (first
    /// maximum on ties, as `torch.argmax`).
    pub fn predict(&self, logits: &Tensor) -> Result<Tensor> {
        match self.cfg.task {
            MerTask::Emotion => {
                let p = self.probabilities(logits)?;
                Ok(p.gt(self.cfg.threshold as f64)?.to_dtype(DType::F32)?)
            }
            MerTask::Sentiment => {
                let rows: Vec<Vec<f32>> = logits.to_dtype(DType::F32)?.to_vec2()?;
                let (b, c) = logits.dims2()?;
                let mut out = vec![0f32; b * c];
                for (r, row) in rows.iter().enumerate() {
                    let mut best = 0;
                    for (j, &v) in row.iter().enumerate() {
                        if v > row[best] {
                            best = j;
                        }
                    }
                    out[r * c + best] = 1.0;
                }
                Ok(Tensor::from_vec(out, (b, c), logits.device())?)
            }
        }
    }

    /// Index of each sample's most similar label (`argmax` over the last axis) — the sentiment class.
    pub fn argmax(logits: &Tensor) -> Result<Vec<u32>> {
        Ok(logits.argmax(D::Minus1)?.to_vec1()?)
    }
}

/// Keys (after the `backbone.` prefix of the canonical layout) that belong to the text tower.
fn is_text_key(k: &str) -> bool {
    k == "token_embedding.weight"
        || k == "positional_embedding"
        || k == "text_projection"
        || k.starts_with("transformer.")
        || k.starts_with("ln_final.")
}

fn text_tower_differences(a: &OpenClipConfig, b: &OpenClipConfig) -> Vec<String> {
    let (x, y) = (&a.text_cfg, &b.text_cfg);
    let mut d = Vec::new();
    let mut cmp = |name: &str, u: String, v: String| {
        if u != v {
            d.push(format!("{name}: config {u}, checkpoint {v}"));
        }
    };
    cmp("embed_dim", a.embed_dim.to_string(), b.embed_dim.to_string());
    cmp("text width", x.width.to_string(), y.width.to_string());
    cmp("text layers", x.layers.to_string(), y.layers.to_string());
    cmp("text heads", x.heads.to_string(), y.heads.to_string());
    cmp("context_length", x.context_length.to_string(), y.context_length.to_string());
    cmp("vocab_size", x.vocab_size.to_string(), y.vocab_size.to_string());
    cmp("mlp_ratio", x.mlp_ratio.to_string(), y.mlp_ratio.to_string());
    cmp("quick_gelu", a.quick_gelu.to_string(), b.quick_gelu.to_string());
    d
}

/// The CLIP config of a checkpoint (sidecar JSON, else inferred from shapes), to put in `MerConfig.clip`.
pub fn read_clip_config(path: &Path) -> Result<OpenClipConfig> {
    Checkpoint::open(&hub::resolve_path(path)?)?.resolve_config(None).map(|c| c.backbone)
}
