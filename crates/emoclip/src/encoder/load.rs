//! Building an encoder from a weights spec: a checkpoint path, `hf:<org>/<name>`, or `random[:CONFIG][@SEED]`.
use super::Encoder;
use crate::clip::Clip;
use crate::emotionclip::EmotionClip;
use crate::{Error, Result};
use candle_core::{DType, Device};

/// Which model to build from the weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    EmotionClip,
    Clip,
}

/// A `random[:CONFIG][@SEED]` weights spec: random initialisation for smoke tests and benchmarks. CONFIG is a
/// built-in name (default `ViT-B-32`), SEED a whole number (default 0); one spec always gives the same weights.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RandomSpec {
    pub config: String,
    pub seed: u64,
}

impl RandomSpec {
    /// `Ok(None)` when `spec` is not a random spec (a file such as `random_init.pt` is not).
    pub fn parse(spec: &str) -> Result<Option<Self>> {
        let Some(rest) = spec.strip_prefix("random") else { return Ok(None) };
        if !(rest.is_empty() || rest.starts_with(':') || rest.starts_with('@')) {
            return Ok(None);
        }
        let bad = |what: String| {
            Error::Msg(format!(
                "--weights {spec}: {what}; use random[:CONFIG][@SEED], e.g. random, random@1 or random:ViT-B-16@1"
            ))
        };
        let (config, seed) = match rest.rsplit_once('@') {
            Some((c, s)) => (c, s.parse::<u64>().map_err(|_| bad(format!("seed {s:?} is not a whole number")))?),
            None => (rest, 0),
        };
        let config = match config.strip_prefix(':') {
            None => "ViT-B-32",
            Some("") => return Err(bad("no config name after ':'".into())),
            Some(c) => c,
        };
        Ok(Some(Self { config: config.to_string(), seed }))
    }
}

/// Builds an encoder from a weights spec: a file or directory path, `random[:CONFIG][@SEED]` (seeded random
/// initialisation, see [`RandomSpec`]), or `hf:<org>/<name>` (resolved through the local Hugging Face cache,
/// see [`crate::weights::hub`]).
pub fn load_encoder(
    spec: &str,
    config: Option<&crate::emotionclip::EmotionClipConfig>,
    kind: ModelKind,
    dtype: DType,
    device: &Device,
) -> Result<Encoder> {
    use crate::weights::{Checkpoint, LoadOptions};
    // bf16 on the CPU: f32 weights, bf16 matrix products (see `Embedder::encode_tensors`).
    let dtype = crate::nn::autocast::split(dtype, device).0;
    if let Some(RandomSpec { config: name, seed }) = RandomSpec::parse(spec)? {
        let name = name.as_str();
        let cfg = match config {
            Some(c) => c.clone(),
            None => crate::emotionclip::EmotionClipConfig::with_backbone(
                crate::clip::OpenClipConfig::builtin(name).ok_or_else(|| {
                    Error::Msg(format!("unknown built-in config {name:?}; use ViT-B-32, ViT-B-16 or ViT-L-14"))
                })?,
            ),
        };
        let what = if config.is_some() { "the given config".to_string() } else { name.to_string() };
        tracing::warn!(
            "using RANDOM weights ({what}, seed {seed}): the embeddings carry no meaning; pass --weights with a checkpoint"
        );
        // Each parameter drawn with the model's own initialiser from an RNG seeded by `(seed, name)` (as
        // MER-CLIP's training init), so values do not depend on build order or device.
        let vb =
            crate::weights::CheckedTensors::new(Default::default(), crate::weights::Missing::SeededByName(seed), None)
                .var_builder(dtype, device);
        return Ok(match kind {
            ModelKind::EmotionClip => Encoder::Emotion(EmotionClip::load(vb, &cfg)?),
            ModelKind::Clip => Encoder::Clip(Clip::load(vb.pp("backbone"), vb.clone(), &cfg.backbone)?),
        });
    }
    let path = crate::weights::hub::resolve_spec(spec)?;
    let ck = Checkpoint::open(&path)?;
    let opts = LoadOptions { config: config.cloned(), dtype, device: device.clone(), ..LoadOptions::default() };
    Ok(match kind {
        ModelKind::EmotionClip => {
            if ck.layout != crate::weights::Layout::EmotionClip {
                return Err(Error::checkpoint(
                    &ck.path,
                    format!("this is a {} checkpoint without EmotionCLIP's temporal head; use --model clip, or train/convert an EmotionCLIP checkpoint", ck.layout),
                ));
            }
            Encoder::Emotion(ck.load_emotionclip(&opts)?.0)
        }
        ModelKind::Clip => Encoder::Clip(ck.load_clip(&opts)?.0),
    })
}
