//! CMU-MOSI / CMU-MOSEI features in the MMSA pickle layout (MMSA `data/load_data.py`, `MMDataset`), read
//! with the code-free reader of [`super::pickle`], validated, and served as seeded shuffled batches.
//!
//! # Expected file
//! `aligned_50.pkl` or `unaligned_50.pkl` as distributed by MMSA (thuiar/MMSA): a dict with the splits
//! `train`, `valid` and `test`, each a dict of numpy arrays with the same first dimension N:
//!
//! | key | shape | use |
//! |---|---|---|
//! | `text` | [N, L, Dt] float (GloVe, Dt = 300) | language features (required unless BERT text) |
//! | `text_bert` | [N, 3, L] (token ids / mask / segment ids, right-padded) | BERT text ([`MmsaData::read_bert`], `--text bert`): encoded by a frozen BERT into [N, L, 768] features, `text_len` = mask sum; else validated and kept in [`Split::text_bert`] |
//! | `vision` | [N, Lv, Dv] float (Facet: MOSI 20, MOSEI 35) | required |
//! | `audio` | [N, La, Da] float (COVAREP: MOSI 5, MOSEI 74) | required |
//! | `vision_lengths`, `audio_lengths` | [N] ints (unaligned files) | optional valid lengths (else all L) |
//! | `regression_labels` | [N] float in [-3, 3] | sentiment (required) |
//! | `emotion_labels` | [N, 6] float intensities, order **happiness, sadness, anger, fear, disgust, surprise** | optional; present in every split = emotion task available |
//! | `id`, `raw_text` | [N] strings | optional; ids name predictions |
//!
//! MMSA's files carry no emotion intensities: add them under `emotion_labels` (CMU-MultimodalSDK's "All
//! Labels" order is sentiment, happy, sad, anger, surprise, disgust, fear — reorder to the one above).
//! Other keys (`classification_labels`, `annotations`, ...) are ignored.
//!
//! # Checks and conventions
//! Every split must be present; every key's N must agree within a split; each modality's feature width must
//! agree across splits; errors name the file, split and key and say how to fix them. MMSA's COVAREP audio
//! holds `-inf` values (a known quirk): every ±inf feature is replaced by 0 and counted in one warning
//! ([`MmsaData::replaced_inf`]); NaN features or any non-finite label are errors. Zero valid lengths are
//! raised to 1 (attention needs one key) and counted too. Language: GloVe `text` by default ([`MmsaData::read`]);
//! [`MmsaData::read_bert`] instead runs `text_bert` through a frozen HF BERT once per split (see
//! [`super::bert_text`]: batches, in-memory features, optional disk cache), so the text width is the BERT
//! hidden size and padded tokens are masked through the text lengths. A file with only `text_bert` needs BERT.
//!
//! Targets: emotion = multi-hot `intensity > 0`; sentiment = 2 classes, negative / positive, positive when
//! `label >= 0` (MMSA's "has0" convention, used for training); evaluation also reports "non0" (zero labels
//! dropped), see [`super::metrics`].
//!
//! # Memory and load time
//! [`super::pickle::read`] maps the file, walks its opcodes without touching the array payloads, then decodes
//! each float32 payload straight into a `Vec<f32>` ([`super::pickle::ArrayData`]) and drops the decoded file
//! pages; the vectors are then moved (not copied) into [`Seq`] and ±inf cleaned in place. The peak is about
//! one f32 copy of the features. Measured (`examples/mmsa_load.rs` under `/usr/bin/time -v`, release build)
//! on a MOSEI-sized aligned file of random float32 features from `bench/mmsa_big.py` (16,326 / 1,871 / 4,659
//! utterances × 50 × (300 + 35 + 74); 1.75 GiB file, 1.74 GiB of features, protocol 4): peak RSS 1.78 GiB,
//! load 2.5–3.7 s on this 2-core VM. Before (file read into memory, byte strings copied, every array as f64,
//! then an f32 copy): 7.30 GiB, 12.6–22.4 s. Quarter-size file (0.44 GiB): 0.45 GiB, was 1.84 GiB;
//! protocols 4 and 5 alike.
use super::bert_text::BertIds;
use super::pickle::{self, ArrayData, NdArray, Value};
use crate::rng::{epoch_order, mix_seed};
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};

/// The six MOSEI emotions in the order of the `emotion_labels` columns.
pub const EMOTIONS: [&str; 6] = ["happiness", "sadness", "anger", "fear", "disgust", "surprise"];
/// The sentiment classes: index 0 negative, 1 positive.
pub const SENTIMENTS: [&str; 2] = ["negative", "positive"];
pub const SPLITS: [&str; 3] = ["train", "valid", "test"];

/// One modality of one split: `[n, len, dim]` row-major features and optional valid lengths.
#[derive(Clone, Debug, PartialEq)]
pub struct Seq {
    pub n: usize,
    pub len: usize,
    pub dim: usize,
    pub data: Vec<f32>,
    pub lengths: Option<Vec<usize>>,
}

impl Seq {
    /// Stacks utterances `idx` into a `[B, len, dim]` tensor.
    pub fn gather(&self, idx: &[usize], dev: &Device) -> Result<Tensor> {
        let row = self.len * self.dim;
        let mut out = Vec::with_capacity(idx.len() * row);
        for &i in idx {
            let s = self
                .data
                .get(i * row..(i + 1) * row)
                .ok_or_else(|| Error::Shape(format!("utterance {i} out of range ({} in split)", self.n)))?;
            out.extend_from_slice(s);
        }
        Ok(Tensor::from_vec(out, (idx.len(), self.len, self.dim), dev)?)
    }
    /// Valid lengths of utterances `idx`, if the file gives them.
    pub fn lengths_of(&self, idx: &[usize]) -> Option<Vec<usize>> {
        self.lengths.as_ref().map(|l| idx.iter().map(|&i| l[i]).collect())
    }
}

/// One split (`train`, `valid` or `test`).
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    pub name: String,
    pub ids: Vec<String>,
    pub text: Seq,
    /// MMSA's BERT token ids (`text_bert`), when the file has them.
    pub text_bert: Option<BertIds>,
    pub vision: Seq,
    pub audio: Seq,
    /// Sentiment in [-3, 3].
    pub regression: Vec<f32>,
    /// `[n][6]` intensities in [`EMOTIONS`] order.
    pub emotion: Option<Vec<[f32; 6]>>,
}

impl Split {
    pub fn len(&self) -> usize {
        self.regression.len()
    }
    pub fn is_empty(&self) -> bool {
        self.regression.is_empty()
    }
    /// Multi-hot emotion targets (`intensity > 0`), if the file has emotion labels.
    pub fn emotion_targets(&self) -> Option<Vec<Vec<bool>>> {
        self.emotion.as_ref().map(|e| e.iter().map(|r| r.iter().map(|&x| x > 0.0).collect()).collect())
    }
    /// Sentiment class per utterance under the "has0" convention (`label >= 0` is positive).
    pub fn sentiment_positive(&self) -> Vec<bool> {
        self.regression.iter().map(|&y| y >= 0.0).collect()
    }
}

/// A whole MMSA feature file.
#[derive(Clone, Debug, PartialEq)]
pub struct MmsaData {
    pub path: PathBuf,
    pub train: Split,
    pub valid: Split,
    pub test: Split,
    /// ±inf features replaced by 0 (COVAREP quirk).
    pub replaced_inf: usize,
    /// Zero valid lengths raised to 1.
    pub raised_lengths: usize,
}

struct Ctx<'a> {
    path: &'a Path,
    split: &'a str,
}

impl Ctx<'_> {
    fn err(&self, key: &str, msg: impl std::fmt::Display) -> Error {
        Error::Data { path: self.path.to_path_buf(), msg: format!("split '{}', key '{key}': {msg}", self.split) }
    }
    fn array<'v>(&self, s: &'v Value, key: &str) -> Result<Option<&'v NdArray>> {
        match s.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(other) => Err(self.err(key, format!("expected a numpy array, found {}", kind(other)))),
        }
    }
    fn required<'v>(&self, s: &'v Value, key: &str, fix: &str) -> Result<&'v NdArray> {
        self.array(s, key)?
            .ok_or_else(|| self.err(key, format!("missing (keys present: {}); {fix}", s.keys().join(", "))))
    }
    fn array_mut<'v>(&self, s: &'v mut Value, key: &str) -> Result<Option<&'v mut NdArray>> {
        match s.get_mut(key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(other) => Err(self.err(key, format!("expected a numpy array, found {}", kind(other)))),
        }
    }
    fn required_mut<'v>(&self, s: &'v mut Value, key: &str, fix: &str) -> Result<&'v mut NdArray> {
        let keys = s.keys();
        self.array_mut(s, key)?
            .ok_or_else(|| self.err(key, format!("missing (keys present: {}); {fix}", keys.join(", "))))
    }
    fn check_n(&self, key: &str, got: usize, n: usize) -> Result<()> {
        if got != n {
            return Err(self.err(key, format!("has {got} utterances but regression_labels has {n}; every key of a split needs the same first dimension (re-export the file)")));
        }
        Ok(())
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::None => "None",
        Value::Bool(_) => "a bool",
        Value::Int(_) => "an int",
        Value::Float(_) => "a float",
        Value::Str(_) => "a string",
        Value::Bytes(_) => "bytes",
        Value::List(_) => "a list",
        Value::Tuple(_) => "a tuple",
        Value::Dict(_) => "a dict",
        Value::Array(_) => "a numpy array",
    }
}

/// Reads `[N, L, D]` features, replacing ±inf by 0 (counted) and refusing NaN. Float32 data is moved out of
/// the array (it is left empty) and cleaned in place: no second copy of the features.
fn features(c: &Ctx, a: &mut NdArray, key: &str, n: usize, inf: &mut usize) -> Result<Seq> {
    if a.shape.len() != 3 {
        return Err(c.err(key, format!("expected a [N, L, D] array, got shape {:?}", a.shape)));
    }
    c.check_n(key, a.shape[0], n)?;
    let nan = |i: usize| {
        c.err(
            key,
            format!(
                "NaN at utterance {}; clean the features (e.g. numpy.nan_to_num) and re-save",
                i / (a.shape[1] * a.shape[2]).max(1)
            ),
        )
    };
    let data = match std::mem::take(&mut a.data) {
        ArrayData::F32(mut data) => {
            for (i, x) in data.iter_mut().enumerate() {
                if x.is_nan() {
                    return Err(nan(i));
                }
                if x.is_infinite() {
                    *inf += 1;
                    *x = 0.0;
                }
            }
            data
        }
        // Other dtypes: checked in f64 before rounding to f32, as numpy's astype(float32) would.
        other => {
            let mut data = Vec::with_capacity(other.len());
            for (i, x) in other.iter_f64().enumerate() {
                if x.is_nan() {
                    return Err(nan(i));
                }
                if x.is_infinite() {
                    *inf += 1;
                    data.push(0.0);
                } else {
                    data.push(x as f32);
                }
            }
            data
        }
    };
    Ok(Seq { n, len: a.shape[1], dim: a.shape[2], data, lengths: None })
}

fn lengths(c: &Ctx, s: &Value, key: &str, n: usize, max: usize, raised: &mut usize) -> Result<Option<Vec<usize>>> {
    let raw: Vec<f64> = match s.get(key) {
        None => return Ok(None),
        Some(Value::Array(a)) if a.shape.len() == 1 => a.to_f64_vec(),
        Some(Value::List(v)) | Some(Value::Tuple(v)) => v
            .iter()
            .map(|x| match x {
                Value::Int(i) => Ok(*i as f64),
                Value::Float(f) => Ok(*f),
                other => Err(c.err(key, format!("expected integers, found {}", kind(other)))),
            })
            .collect::<Result<_>>()?,
        Some(other) => {
            return Err(c.err(key, format!("expected a list or 1-d array of lengths, found {}", kind(other))))
        }
    };
    c.check_n(key, raw.len(), n)?;
    raw.iter()
        .enumerate()
        .map(|(i, &x)| {
            if !(x.is_finite() && x >= 0.0 && x.fract() == 0.0 && x as usize <= max) {
                return Err(c.err(
                    key,
                    format!("utterance {i}: length {x} is not an integer in 0..={max} (the sequence length)"),
                ));
            }
            if x == 0.0 {
                *raised += 1;
            }
            Ok((x as usize).max(1))
        })
        .collect::<Result<_>>()
        .map(Some)
}

fn strings(c: &Ctx, s: &Value, key: &str, n: usize) -> Result<Option<Vec<String>>> {
    let items = match s.get(key) {
        None => return Ok(None),
        Some(Value::List(v)) | Some(Value::Tuple(v)) => v,
        Some(other) => return Err(c.err(key, format!("expected an array of strings, found {}", kind(other)))),
    };
    c.check_n(key, items.len(), n)?;
    Ok(Some(
        items
            .iter()
            .map(|v| match v {
                Value::Str(s) => s.clone(),
                Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
                Value::Int(i) => i.to_string(),
                other => format!("<{}>", kind(other)),
            })
            .collect(),
    ))
}

fn read_split(
    path: &Path,
    root: &mut Value,
    name: &str,
    bert: bool,
    inf: &mut usize,
    raised: &mut usize,
) -> Result<Split> {
    let c = Ctx { path, split: name };
    let top_keys = root.keys();
    let s = match root.get_mut(name) {
        Some(s @ Value::Dict(_)) => s,
        Some(other) => return Err(c.err("-", format!("the split is {}, expected a dict of arrays", kind(other)))),
        None => {
            return Err(Error::Data {
                path: path.to_path_buf(),
                msg: format!(
                    "split '{name}' is missing (top-level keys: {}); MMSA files hold 'train', 'valid' and 'test'",
                    top_keys.join(", ")
                ),
            })
        }
    };
    let reg = c.required(s, "regression_labels", "MMSA files store the sentiment score in [-3, 3] there")?;
    let n = reg.shape.first().copied().unwrap_or(0);
    if reg.len() != n {
        return Err(c.err("regression_labels", format!("expected shape [N] (or [N, 1]), got {:?}", reg.shape)));
    }
    if let Some(i) = reg.data.iter_f64().position(|x| !x.is_finite()) {
        return Err(c.err("regression_labels", format!("non-finite label at utterance {i}; fix the file")));
    }
    let regression = reg.to_f32_vec();
    let text_bert = match c.array(s, "text_bert")? {
        Some(b) => Some(BertIds::from_array(b, n).map_err(|m| c.err("text_bert", m))?),
        None => None,
    };
    let text = match (bert, &text_bert) {
        // BERT text: the features are filled in by `bert_text` (dim 0 until then); lengths = mask sums.
        (true, Some(b)) => Seq { n, len: b.len, dim: 0, data: Vec::new(), lengths: Some(b.lengths(raised)) },
        (true, None) => {
            return Err(c.err("text_bert", format!("missing (keys present: {}); BERT text needs MMSA's token ids [N, 3, L] there; use GloVe 'text' features instead (no --text bert)", s.keys().join(", "))))
        }
        (false, _) => match c.array_mut(s, "text")? {
            Some(a) => features(&c, a, "text", n, inf)?,
            None if text_bert.is_some() => {
                return Err(c.err(
                    "text",
                    "missing: this file only has BERT token ids ('text_bert'); encode them with a BERT model \
                     (`emoclip mer train --text bert --bert <HF BERT dir or hf:google-bert/bert-base-uncased>`, or `MmsaData::read_bert`)",
                ))
            }
            None => return Err(c.err("text", format!("missing (keys present: {}); MMSA stores GloVe features [N, L, 300] there", s.keys().join(", ")))),
        },
    };
    let mut vision =
        features(&c, c.required_mut(s, "vision", "MMSA stores Facet features [N, L, D] there")?, "vision", n, inf)?;
    let mut audio =
        features(&c, c.required_mut(s, "audio", "MMSA stores COVAREP features [N, L, D] there")?, "audio", n, inf)?;
    vision.lengths = lengths(&c, s, "vision_lengths", n, vision.len, raised)?;
    audio.lengths = lengths(&c, s, "audio_lengths", n, audio.len, raised)?;
    let emotion = match c.array(s, "emotion_labels")? {
        None => None,
        Some(e) => {
            if e.shape.len() != 2 || e.shape[1] != 6 {
                return Err(c.err(
                    "emotion_labels",
                    format!("expected [N, 6] intensities ({}), got shape {:?}", EMOTIONS.join(", "), e.shape),
                ));
            }
            c.check_n("emotion_labels", e.shape[0], n)?;
            let e = e.to_f64_vec();
            if let Some(i) = e.iter().position(|x| !x.is_finite()) {
                return Err(
                    c.err("emotion_labels", format!("non-finite intensity at utterance {}; fix the file", i / 6))
                );
            }
            Some(e.chunks(6).map(|r| std::array::from_fn(|k| r[k] as f32)).collect())
        }
    };
    let ids = strings(&c, s, "id", n)?.unwrap_or_else(|| (0..n).map(|i| format!("{name}-{i}")).collect());
    strings(&c, s, "raw_text", n)?;
    Ok(Split { name: name.to_string(), ids, text, text_bert, vision, audio, regression, emotion })
}

impl MmsaData {
    /// Reads and validates an MMSA feature pickle (no code in it is run).
    pub fn read(path: &Path) -> Result<Self> {
        let v = pickle::read(path)?;
        Self::from_value(v, path)
    }

    /// Validates a decoded pickle (`path` names it in errors); the feature arrays are moved, not copied.
    pub fn from_value(root: Value, path: &Path) -> Result<Self> {
        Self::from_value_with(root, path, false)
    }

    /// [`Self::from_value`]; with `bert`, the language comes from `text_bert` (required; `text` is ignored)
    /// and the text features stay empty (width 0) for [`super::bert_text`] to fill.
    pub fn from_value_with(mut root: Value, path: &Path, bert: bool) -> Result<Self> {
        if !matches!(root, Value::Dict(_)) {
            return Err(Error::Data {
                path: path.to_path_buf(),
                msg: format!(
                    "the pickle holds {}, expected a dict with 'train', 'valid', 'test' (an MMSA feature file)",
                    kind(&root)
                ),
            });
        }
        let (mut inf, mut raised) = (0, 0);
        let train = read_split(path, &mut root, "train", bert, &mut inf, &mut raised)?;
        let valid = read_split(path, &mut root, "valid", bert, &mut inf, &mut raised)?;
        let test = read_split(path, &mut root, "test", bert, &mut inf, &mut raised)?;
        let data = Self { path: path.to_path_buf(), train, valid, test, replaced_inf: inf, raised_lengths: raised };
        data.check_consistent()?;
        if inf > 0 {
            tracing::warn!(
                "{}: replaced {inf} ±inf feature value(s) by 0 (MMSA's COVAREP audio holds -inf)",
                path.display()
            );
        }
        if raised > 0 {
            tracing::warn!("{}: {raised} zero-length sequence(s) treated as length 1", path.display());
        }
        Ok(data)
    }

    fn check_consistent(&self) -> Result<()> {
        for s in [&self.valid, &self.test] {
            for (key, a, b) in [
                ("text", &self.train.text, &s.text),
                ("vision", &self.train.vision, &s.vision),
                ("audio", &self.train.audio, &s.audio),
            ] {
                if a.dim != b.dim {
                    return Err(Error::Data {
                        path: self.path.clone(),
                        msg: format!("split '{}', key '{key}': feature width {} differs from train's {}; all splits must come from the same feature extractor", s.name, b.dim, a.dim),
                    });
                }
            }
            if self.train.emotion.is_some() != s.emotion.is_some() {
                return Err(Error::Data {
                    path: self.path.clone(),
                    msg: format!(
                        "key 'emotion_labels' is in {} but not in {}; give it in every split or in none",
                        if s.emotion.is_some() { &s.name } else { "train" },
                        if s.emotion.is_some() { "train" } else { &s.name }
                    ),
                });
            }
        }
        Ok(())
    }

    pub fn split(&self, name: &str) -> Result<&Split> {
        match name {
            "train" => Ok(&self.train),
            "valid" => Ok(&self.valid),
            "test" => Ok(&self.test),
            other => Err(Error::Msg(format!("unknown split {other:?}: use train, valid or test"))),
        }
    }

    /// Feature widths (text, vision, audio).
    pub fn dims(&self) -> [usize; 3] {
        [self.train.text.dim, self.train.vision.dim, self.train.audio.dim]
    }

    /// Whether the emotion task is available (`emotion_labels` in every split).
    pub fn has_emotion(&self) -> bool {
        self.train.emotion.is_some()
    }

    /// A synthetic dataset with MMSA shapes whose labels depend on the features (the same construction as
    /// `scripts/fixtures/gen_mmsa.py`): each modality carries `label/3 · u_m` plus `Σ_k [emotion k] · w_mk`
    /// plus N(0, noise²); emotions are present with probability 0.35. For tests and `emoclip mer bench`.
    pub fn synthetic(spec: &SyntheticSpec) -> Result<Self> {
        if spec.len == 0 || spec.dims.contains(&0) || spec.sizes.contains(&0) {
            return Err(Error::Msg(format!("synthetic MMSA data: sizes, len and dims must be >= 1, got {spec:?}")));
        }
        let mut rng = StdRng::seed_from_u64(mix_seed(&[spec.seed, 0x3E6]));
        let normal = rand_distr::Normal::new(0f32, 1.0).map_err(|e| Error::Msg(e.to_string()))?;
        let dirs: Vec<(Vec<f32>, Vec<f32>)> = spec
            .dims
            .iter()
            .map(|&d| {
                ((0..d).map(|_| 1.5 * rng.sample(normal)).collect(), (0..6 * d).map(|_| rng.sample(normal)).collect())
            })
            .collect();
        let mut make = |name: &str, n: usize| {
            let regression: Vec<f32> =
                (0..n)
                    .map(|_| {
                        if rng.random::<f32>() < 0.1 {
                            0.0
                        } else {
                            (rng.random_range(-3.0f32..3.0) * 3.0).round() / 3.0
                        }
                    })
                    .collect();
            let emotion: Option<Vec<[f32; 6]>> = spec.emotion.then(|| {
                (0..n)
                    .map(|_| {
                        std::array::from_fn(|_| {
                            if rng.random::<f32>() < 0.35 {
                                rng.random_range(0.33f32..3.0)
                            } else {
                                0.0
                            }
                        })
                    })
                    .collect()
            });
            let mut seqs = Vec::new();
            for (m, &dim) in spec.dims.iter().enumerate() {
                let mut data = Vec::with_capacity(n * spec.len * dim);
                for i in 0..n {
                    let mut mean: Vec<f32> = dirs[m].0.iter().map(|u| regression[i] / 3.0 * u).collect();
                    if let Some(e) = &emotion {
                        for (k, &x) in e[i].iter().enumerate() {
                            if x > 0.0 {
                                mean.iter_mut().zip(&dirs[m].1[k * dim..(k + 1) * dim]).for_each(|(a, w)| *a += w);
                            }
                        }
                    }
                    for _ in 0..spec.len {
                        data.extend(mean.iter().map(|&mu| mu + spec.noise * rng.sample(normal)));
                    }
                }
                seqs.push(Seq { n, len: spec.len, dim, data, lengths: None });
            }
            let audio = seqs.pop().unwrap_or_else(|| unreachable!());
            let vision = seqs.pop().unwrap_or_else(|| unreachable!());
            let text = seqs.pop().unwrap_or_else(|| unreachable!());
            Split {
                name: name.into(),
                ids: (0..n).map(|i| format!("{name}-{i}")).collect(),
                text,
                text_bert: None,
                vision,
                audio,
                regression,
                emotion,
            }
        };
        let train = make("train", spec.sizes[0]);
        let valid = make("valid", spec.sizes[1]);
        let test = make("test", spec.sizes[2]);
        Ok(Self { path: PathBuf::from("<synthetic>"), train, valid, test, replaced_inf: 0, raised_lengths: 0 })
    }
}

/// Shape of a synthetic dataset ([`MmsaData::synthetic`]).
#[derive(Clone, Debug, PartialEq)]
pub struct SyntheticSpec {
    /// Utterances in train / valid / test.
    pub sizes: [usize; 3],
    /// Sequence length of every modality.
    pub len: usize,
    /// Feature widths (text, vision, audio).
    pub dims: [usize; 3],
    /// Add `emotion_labels`.
    pub emotion: bool,
    pub noise: f32,
    pub seed: u64,
}

impl SyntheticSpec {
    /// CMU-MOSI as in MMSA's `aligned_50.pkl`: 1,284 / 229 / 686 utterances (2,199), L = 50, GloVe 300,
    /// Facet 20, COVAREP 5.
    pub fn mosi() -> Self {
        Self { sizes: [1284, 229, 686], len: 50, dims: [300, 20, 5], emotion: false, noise: 1.0, seed: 0 }
    }
}

/// Batches of utterance indices for one epoch: `0..n` in a seeded random order (`shuffle`) or in order, cut
/// into `batch_size` pieces (the last one may be smaller).
pub fn batches(n: usize, batch_size: usize, seed: u64, epoch: usize, shuffle: bool) -> Vec<Vec<usize>> {
    let order = if shuffle { epoch_order(n, mix_seed(&[seed, 0x3E7]), epoch) } else { (0..n).collect() };
    order.chunks(batch_size.max(1)).map(|c| c.to_vec()).collect()
}
