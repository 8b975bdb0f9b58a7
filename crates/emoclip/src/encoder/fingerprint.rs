//! The identity of an encoder's features ([`EncoderId`]): the fingerprint of its weights and config, its name and its preprocessing, as written into a head by `emoclip probe --save-head` and checked by `analyze --head`.
//!
//! A checkpoint is fingerprinted over its tensors ([`encoder_fingerprint`]: names, dtypes,
//! shapes, bytes, sorted by name) and its resolved config, so the same weights converted to another file
//! format give the same fingerprint. A `random[:CONFIG][@SEED]` spec is fingerprinted over the spec and the
//! config (its weights are a pure function of both, see [`crate::encoder::RandomSpec`]).
use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::emotionclip::EmotionClipConfig;
use crate::encoder::{ModelKind, RandomSpec};
use crate::media::Normalization;
use crate::{Error, Result};

/// Preprocessing that changes the features as much as the weights do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocess {
    /// `imagenet` (the official EmotionCLIP pipeline) or `clip`.
    pub normalization: String,
    /// Frames per clip.
    pub frames: usize,
}

/// Which encoder produced the features.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderId {
    /// [`encoder_fingerprint`] of the encoder's weights and config.
    pub fingerprint: String,
    /// Human-readable description (not compared).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preprocess: Option<Preprocess>,
}

/// SHA-256 over the encoder's config text and every tensor (sorted by name: name, dtype, shape, raw
/// little-endian bytes), as `sha256:<hex>`. The same weights in another file format or order give the same
/// fingerprint; any changed value, shape or config field gives another.
pub fn encoder_fingerprint<'a>(
    config: &str,
    tensors: impl IntoIterator<Item = (&'a str, &'a str, &'a [usize], &'a [u8])>,
) -> String {
    let mut list: Vec<(&str, &str, &[usize], &[u8])> = tensors.into_iter().collect();
    list.sort_by(|a, b| a.0.cmp(b.0));
    let mut h = FingerprintHasher::new(config);
    for (name, dtype, shape, bytes) in list {
        h.tensor(name, dtype, shape, bytes);
    }
    h.finish()
}

/// [`encoder_fingerprint`] one tensor at a time (the caller feeds them sorted by name), so a checkpoint is
/// hashed without a second copy of all its bytes.
struct FingerprintHasher(Sha256);

impl FingerprintHasher {
    fn new(config: &str) -> Self {
        let mut h = Sha256::new();
        h.update(b"emoclip-encoder-fingerprint-v1\0");
        h.update((config.len() as u64).to_le_bytes());
        h.update(config.as_bytes());
        Self(h)
    }

    fn tensor(&mut self, name: &str, dtype: &str, shape: &[usize], bytes: &[u8]) {
        let h = &mut self.0;
        for part in [name.as_bytes(), dtype.as_bytes()] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        h.update((shape.len() as u64).to_le_bytes());
        for d in shape {
            h.update((*d as u64).to_le_bytes());
        }
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }

    fn finish(self) -> String {
        let digest = self.0.finalize();
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }
}

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
    let mut names: Vec<&String> = ck.tensors.keys().collect();
    names.sort();
    let mut h = FingerprintHasher::new(&cfg_text);
    for name in names {
        let t = &ck.tensors[name];
        h.tensor(name, &format!("{:?}", t.dtype()), t.dims(), &tensor_bytes(t)?);
    }
    let fingerprint = h.finish();
    let name = path.file_name().map_or_else(|| spec.to_string(), |n| n.to_string_lossy().into_owned());
    Ok(EncoderId { fingerprint, name: format!("{name} ({})", kind_name(kind)), preprocess })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_depends_on_values_not_order() {
        let a = [1u8, 2, 3, 4];
        let b = [9u8, 9, 9, 9];
        let f1 = encoder_fingerprint("{}", [("x", "F32", &[1usize][..], &a[..]), ("y", "F32", &[1][..], &b[..])]);
        let f2 = encoder_fingerprint("{}", [("y", "F32", &[1usize][..], &b[..]), ("x", "F32", &[1][..], &a[..])]);
        assert_eq!(f1, f2);
        assert!(f1.starts_with("sha256:") && f1.len() == 7 + 64);
        let c = [1u8, 2, 3, 5];
        assert_ne!(
            f1,
            encoder_fingerprint("{}", [("x", "F32", &[1usize][..], &c[..]), ("y", "F32", &[1][..], &b[..])])
        );
        assert_ne!(
            f1,
            encoder_fingerprint("{ }", [("x", "F32", &[1usize][..], &a[..]), ("y", "F32", &[1][..], &b[..])])
        );
        assert_ne!(
            f1,
            encoder_fingerprint("{}", [("x", "F32", &[2usize][..], &a[..]), ("y", "F32", &[1][..], &b[..])])
        );
    }

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
