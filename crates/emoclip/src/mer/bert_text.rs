//! BERT text features for MER-CLIP (MMSA `models/subNets/BertTextEncoder.py`, frozen): the `text_bert`
//! token ids `[N, 3, L]` (ids / attention mask / segment ids) of an MMSA file run once per split through a
//! frozen HF `BertModel` ([`crate::text_emotion::BertModel`]); the last hidden state `[N, L, hidden]` becomes
//! the language features and `text_len` = mask sum, so padded tokens are masked in the cross-modal decoder.
//!
//! Utterances are encoded in batches sorted by length, each batch cut to its longest mask (real positions are
//! unaffected: padded keys get `finfo.min` as in HF); positions past an utterance's mask are stored as 0 —
//! the decoder never reads them. Features are kept in memory (f32: CMU-MOSI with bert-base ≈ 340 MB,
//! CMU-MOSEI ≈ 3.5 GB) and, with a cache directory, stored per split as
//! `<dir>/<fnv1a64(key)>.safetensors` keyed by the MMSA file's and the BERT weights' fingerprints
//! (path, size, mtime) and the split, so later runs skip the encoder.
use super::data::{MmsaData, Seq, Split, SPLITS};
use super::pickle::NdArray;
use crate::hash::{file_fingerprint, fnv1a64};
use crate::text_emotion::{BertModel, EncoderInput};
use crate::{Error, Result};
use candle_core::Device;
use std::path::{Path, PathBuf};

/// `text_bert` of one split: `[n][len]` token ids, attention mask (1 = token) and segment ids, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct BertIds {
    pub n: usize,
    pub len: usize,
    pub ids: Vec<u32>,
    pub mask: Vec<u32>,
    pub segments: Vec<u32>,
}

impl BertIds {
    /// Reads and checks an `[N, 3, L]` array (integers ≥ 0, mask 0/1 with the tokens first, as MMSA's
    /// right-padded ids). Errors are messages for the caller to name the file, split and key.
    pub fn from_array(a: &NdArray, n: usize) -> std::result::Result<Self, String> {
        if a.shape.len() != 3 || a.shape[1] != 3 {
            return Err(format!("expected [N, 3, L] (ids / mask / segments), got {:?}", a.shape));
        }
        if a.shape[0] != n {
            return Err(format!("has {} utterances but regression_labels has {n}; every key of a split needs the same first dimension (re-export the file)", a.shape[0]));
        }
        let len = a.shape[2];
        if len == 0 {
            return Err("has 0 tokens per utterance (shape [N, 3, 0]); re-export the file with the BERT ids".into());
        }
        let (mut ids, mut mask, mut segments) =
            (Vec::with_capacity(n * len), Vec::with_capacity(n * len), Vec::with_capacity(n * len));
        for (i, x) in a.data.iter_f64().enumerate() {
            if !(x.is_finite() && x >= 0.0 && x.fract() == 0.0 && x < u32::MAX as f64) {
                return Err(format!("value {x} at flat index {i} is not a token id / mask / segment integer"));
            }
            match (i / len) % 3 {
                0 => ids.push(x as u32),
                1 => mask.push(x as u32),
                _ => segments.push(x as u32),
            }
        }
        for (u, row) in mask.chunks(len.max(1)).enumerate() {
            let k = row.iter().take_while(|&&m| m == 1).count();
            if row[k..].iter().any(|&m| m != 0) {
                return Err(format!("utterance {u}: the attention mask {row:?} is not 1s followed by 0s (right padding, as MMSA writes it)"));
            }
        }
        Ok(Self { n, len, ids, mask, segments })
    }

    /// Tokens per utterance (the mask sums; 0 is raised to 1 and counted in `raised`: attention needs a key).
    pub fn lengths(&self, raised: &mut usize) -> Vec<usize> {
        self.mask
            .chunks(self.len.max(1))
            .map(|r| {
                let k = r.iter().filter(|&&m| m == 1).count();
                *raised += usize::from(k == 0);
                k.max(1)
            })
            .take(self.n)
            .collect()
    }
}

/// How to turn `text_bert` into features.
pub struct BertText<'a> {
    pub model: &'a BertModel,
    /// Utterances per encoder batch.
    pub batch_size: usize,
    /// Where split features are cached on disk (`None`: memory only).
    pub cache_dir: Option<PathBuf>,
    pub device: Device,
}

/// Last hidden states `[n * len * hidden]` of every utterance (zeros past each mask); `progress(done)`
/// after each batch.
pub fn encode(
    model: &BertModel,
    ids: &BertIds,
    batch_size: usize,
    device: &Device,
    mut progress: impl FnMut(usize),
) -> Result<Vec<f32>> {
    let (len, h) = (ids.len, model.encoder.hidden_size);
    let mut raised = 0;
    let lens = ids.lengths(&mut raised);
    let mut order: Vec<usize> = (0..ids.n).collect();
    order.sort_by_key(|&i| lens[i]);
    let mut out = vec![0f32; ids.n * len * h];
    let mut done = 0;
    for chunk in order.chunks(batch_size.max(1)) {
        let l = chunk.iter().map(|&i| lens[i]).max().unwrap_or(1).min(len);
        let rows = |v: &Vec<u32>| chunk.iter().map(|&i| v[i * len..i * len + l].to_vec()).collect::<Vec<_>>();
        let x = EncoderInput { ids: rows(&ids.ids), mask: rows(&ids.mask), segments: rows(&ids.segments) };
        let hs = model.encoder.forward(&x, device)?.to_device(&Device::Cpu)?.to_vec3::<f32>()?;
        for (&i, rows) in chunk.iter().zip(hs) {
            for (j, r) in rows.into_iter().enumerate().take(lens[i]) {
                out[(i * len + j) * h..(i * len + j + 1) * h].copy_from_slice(&r);
            }
        }
        done += chunk.len();
        progress(done);
    }
    Ok(out)
}

/// Refuses ids the model cannot embed, naming the data file, split and the fix.
fn check_ids(path: &Path, split: &str, ids: &BertIds, model: &BertModel) -> Result<()> {
    let c = &model.config;
    let err =
        |msg: String| Error::Data { path: path.to_path_buf(), msg: format!("split '{split}', key 'text_bert': {msg}") };
    if let Some(&m) = ids.ids.iter().max().filter(|&&m| m as usize >= c.vocab_size) {
        return Err(err(format!(
            "token id {m} is outside the vocabulary of {} ({} ids); the ids come from another tokenizer — pass the BERT the file was tokenised with (MMSA: bert-base-uncased, vocab 30522) via --bert",
            model.weights.display(),
            c.vocab_size
        )));
    }
    if let Some(&s) = ids.segments.iter().max().filter(|&&s| s as usize >= c.type_vocab_size) {
        return Err(err(format!(
            "segment id {s} is outside the {} token types of {}",
            c.type_vocab_size,
            model.weights.display()
        )));
    }
    if ids.len > c.max_position_embeddings {
        return Err(err(format!(
            "{} tokens per utterance exceed the {} positions of {}",
            ids.len,
            c.max_position_embeddings,
            model.weights.display()
        )));
    }
    Ok(())
}

/// The cache key of one split's features.
pub fn cache_key(data: &Path, split: &str, model: &BertModel) -> String {
    format!("mer-bert-v1|{}|{split}|{}", file_fingerprint(data), model.fingerprint)
}

fn cache_get(file: &Path, key: &str, shape: [usize; 3]) -> Option<Vec<f32>> {
    let bytes = std::fs::read(file).ok()?;
    let parsed = (|| -> std::result::Result<Option<Vec<f32>>, String> {
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| e.to_string())?;
        if meta.metadata().as_ref().and_then(|m| m.get("key")).map(String::as_str) != Some(key) {
            return Ok(None);
        }
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| e.to_string())?;
        let t = st.tensor("features").map_err(|e| e.to_string())?;
        if t.dtype() != safetensors::Dtype::F32 || t.shape() != shape {
            return Err(format!("dtype {:?} shape {:?}, expected F32 {shape:?}", t.dtype(), t.shape()));
        }
        Ok(Some(t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()))
    })();
    parsed.unwrap_or_else(|e| {
        tracing::warn!("{}: unreadable BERT feature cache ({e}); re-encoding", file.display());
        None
    })
}

fn cache_put(file: &Path, key: &str, shape: [usize; 3], data: &[f32]) -> Result<()> {
    let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    let err =
        |e: &dyn std::fmt::Display| Error::Msg(format!("{}: cannot write the BERT feature cache: {e}", file.display()));
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.to_vec(), &bytes).map_err(|e| err(&e))?;
    let meta = std::collections::HashMap::from([("key".to_string(), key.to_string())]);
    let out = safetensors::serialize([("features", view)], Some(meta)).map_err(|e| err(&e))?;
    drop(bytes);
    crate::output::write_atomic(file, |f| std::io::Write::write_all(f, &out))
}

impl MmsaData {
    /// Reads an MMSA file with BERT language features: `text_bert` is required in every split (the GloVe
    /// `text` key is ignored), encoded by `bert` (or read from its cache); `progress(split, done, total)`
    /// reports the encoding.
    pub fn read_bert(path: &Path, bert: &BertText, mut progress: impl FnMut(&str, usize, usize)) -> Result<Self> {
        let mut data = Self::from_value_with(super::pickle::read(path)?, path, true)?;
        for name in SPLITS {
            let split = match name {
                "train" => &mut data.train,
                "valid" => &mut data.valid,
                _ => &mut data.test,
            };
            encode_split(path, split, bert, |d, t| progress(name, d, t))?;
        }
        Ok(data)
    }
}

/// Fills `split.text` from `split.text_bert` (cache first).
fn encode_split(path: &Path, split: &mut Split, bert: &BertText, mut progress: impl FnMut(usize, usize)) -> Result<()> {
    let ids = split.text_bert.as_ref().ok_or_else(|| Error::Data {
        path: path.to_path_buf(),
        msg: format!("split '{}': no 'text_bert' token ids; BERT text needs an MMSA file with text_bert (or drop --text bert to use GloVe 'text')", split.name),
    })?;
    check_ids(path, &split.name, ids, bert.model)?;
    let h = bert.model.encoder.hidden_size;
    let shape = [ids.n, ids.len, h];
    let key = cache_key(path, &split.name, bert.model);
    let file = bert.cache_dir.as_ref().map(|d| d.join(format!("{:016x}.safetensors", fnv1a64(key.as_bytes()))));
    let cached = file.as_ref().and_then(|f| cache_get(f, &key, shape));
    let data = match cached {
        Some(d) => {
            progress(ids.n, ids.n);
            d
        }
        None => {
            let d = encode(bert.model, ids, bert.batch_size, &bert.device, |done| progress(done, ids.n))?;
            if let Some(f) = &file {
                cache_put(f, &key, shape, &d)?;
            }
            d
        }
    };
    let lengths = split.text.lengths.take();
    split.text = Seq { n: ids.n, len: ids.len, dim: h, data, lengths };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mer::pickle::ArrayData;

    fn arr(rows: &[[[f32; 4]; 3]]) -> NdArray {
        NdArray {
            shape: vec![rows.len(), 3, 4],
            dtype: "<f4".into(),
            data: ArrayData::F32(rows.iter().flatten().flatten().copied().collect()),
        }
    }

    #[test]
    fn ids_mask_segments_and_lengths() {
        let a = arr(&[[[1., 7., 2., 0.], [1., 1., 1., 0.], [0., 0., 1., 0.]], [[0.; 4], [0.; 4], [0.; 4]]]);
        let b = BertIds::from_array(&a, 2).unwrap();
        assert_eq!((b.ids[..4].to_vec(), b.segments[..4].to_vec()), (vec![1, 7, 2, 0], vec![0, 0, 1, 0]));
        let mut raised = 0;
        assert_eq!(b.lengths(&mut raised), vec![3, 1]);
        assert_eq!(raised, 1, "the all-padding row is raised to 1 and counted");
        assert!(BertIds::from_array(&a, 3).unwrap_err().contains("has 2 utterances"));
    }

    #[test]
    fn malformed_ids_are_refused() {
        let left_padded = arr(&[[[0., 1., 7., 2.], [0., 1., 1., 1.], [0.; 4]]]);
        assert!(BertIds::from_array(&left_padded, 1).unwrap_err().contains("not 1s followed by 0s"));
        let fractional = arr(&[[[1., 7.5, 2., 0.], [1., 1., 1., 0.], [0.; 4]]]);
        assert!(BertIds::from_array(&fractional, 1).unwrap_err().contains("7.5"));
        let wrong = NdArray { shape: vec![1, 2, 4], dtype: "<f4".into(), data: ArrayData::F32(vec![0.; 8]) };
        assert!(BertIds::from_array(&wrong, 1).unwrap_err().contains("[N, 3, L]"));
    }
}
