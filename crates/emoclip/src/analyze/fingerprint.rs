//! The identity of an encoder's features ([`head::EncoderId`](super::head::EncoderId)): the fingerprint of its weights and config, its name and its preprocessing, as written into a head by `emoclip probe --save-head` and checked by `analyze --head`.
//!
//! A checkpoint is fingerprinted over its tensors ([`super::head::encoder_fingerprint`]: names, dtypes,
//! shapes, bytes, sorted by name) and its resolved config, so the same weights converted to another file
//! format give the same fingerprint. A `random[:CONFIG][@SEED]` spec is fingerprinted over the spec and the
//! config (its weights are a pure function of both, see [`crate::encoder::RandomSpec`]).
use candle_core::{DType, Tensor};

use super::head::{encoder_fingerprint, EncoderId, Preprocess};
use crate::emotionclip::EmotionClipConfig;
use crate::encoder::{ModelKind, RandomSpec};
use crate::media::Normalization;
use crate::{Error, Result};

/// `imagenet`, `clip` or `custom` for a normalisation.
pub fn normalization_name(n: Normalization) -> &'static str {
    if n == Normalization::IMAGENET {
        "imagenet"
    } else if n == Normalization::CLIP {
        "clip"
    } else {
        "custom"
    }
}

fn kind_name(kind: ModelKind) -> &'static str {
    match kind {
        ModelKind::EmotionClip => "emotionclip",
        ModelKind::Clip => "clip",
    }
}

/// A tensor's raw little-endian bytes.
fn tensor_bytes(t: &Tensor) -> Result<Vec<u8>> {
    let t = t.flatten_all()?;
    Ok(match t.dtype() {
        DType::F32 => t.to_vec1::<f32>()?.iter().flat_map(|v| v.to_le_bytes()).collect(),
        DType::F16 => t.to_vec1::<half::f16>()?.iter().flat_map(|v| v.to_le_bytes()).collect(),
        DType::BF16 => t.to_vec1::<half::bf16>()?.iter().flat_map(|v| v.to_le_bytes()).collect(),
        DType::F64 => t.to_vec1::<f64>()?.iter().flat_map(|v| v.to_le_bytes()).collect(),
        DType::I64 => t.to_vec1::<i64>()?.iter().flat_map(|v| v.to_le_bytes()).collect(),
        DType::U32 => t.to_vec1::<u32>()?.iter().flat_map(|v| v.to_le_bytes()).collect(),
        DType::U8 => t.to_vec1::<u8>()?,
        other => t
            .to_dtype(DType::F32)
            .map_err(|e| Error::Msg(format!("tensor of dtype {other:?}: {e}")))?
            .to_vec1::<f32>()?
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
    })
}

/// The identity of the features of `spec` (weights path, `hf:` spec or `random…`) with `config` (an explicit
/// config, else the checkpoint's own or the inferred one), model `kind`, normalisation and frames per clip.
/// Reads the checkpoint's tensors once (CPU).
pub fn encoder_id(
    spec: &str,
    config: Option<&EmotionClipConfig>,
    kind: ModelKind,
    norm: Normalization,
    frames: usize,
) -> Result<EncoderId> {
    let preprocess = Some(Preprocess { normalization: normalization_name(norm).to_string(), frames });
    if let Some(r) = RandomSpec::parse(spec)? {
        let cfg = match config {
            Some(c) => serde_json::to_string(c).map_err(|e| Error::Msg(e.to_string()))?,
            None => format!("builtin:{}", r.config),
        };
        let text = format!("random;config={cfg};seed={};model={}", r.seed, kind_name(kind));
        return Ok(EncoderId {
            fingerprint: encoder_fingerprint(&text, std::iter::empty()),
            name: match config {
                Some(_) => format!("random@{} with the given config ({})", r.seed, kind_name(kind)),
                None => format!("random:{}@{} ({})", r.config, r.seed, kind_name(kind)),
            },
            preprocess,
        });
    }
    let path = crate::weights::hub::resolve_spec(spec)?;
    let ck = crate::weights::Checkpoint::open(&path)?;
    let cfg = ck.resolve_config(config)?;
    let cfg_text =
        format!("{};model={}", serde_json::to_string(&cfg).map_err(|e| Error::Msg(e.to_string()))?, kind_name(kind));
    let mut parts: Vec<(String, String, Vec<usize>, Vec<u8>)> = Vec::with_capacity(ck.tensors.len());
    for (name, t) in &ck.tensors {
        parts.push((name.clone(), format!("{:?}", t.dtype()), t.dims().to_vec(), tensor_bytes(t)?));
    }
    let fingerprint = encoder_fingerprint(
        &cfg_text,
        parts.iter().map(|(n, d, s, b)| (n.as_str(), d.as_str(), s.as_slice(), b.as_slice())),
    );
    let name = path.file_name().map_or_else(|| spec.to_string(), |n| n.to_string_lossy().into_owned());
    Ok(EncoderId { fingerprint, name: format!("{name} ({})", kind_name(kind)), preprocess })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_specs_differ_by_seed_config_and_preprocessing() {
        let id = |spec: &str, norm, frames| encoder_id(spec, None, ModelKind::EmotionClip, norm, frames).unwrap();
        let a = id("random:ViT-B-16@1", Normalization::IMAGENET, 8);
        assert_eq!(a, id("random:ViT-B-16@1", Normalization::IMAGENET, 8));
        assert_ne!(a.fingerprint, id("random:ViT-B-16@2", Normalization::IMAGENET, 8).fingerprint);
        assert_ne!(a.fingerprint, id("random@1", Normalization::IMAGENET, 8).fingerprint);
        let c = id("random:ViT-B-16@1", Normalization::CLIP, 8);
        assert_eq!(a.fingerprint, c.fingerprint);
        assert_ne!(a.preprocess, c.preprocess);
    }
}
