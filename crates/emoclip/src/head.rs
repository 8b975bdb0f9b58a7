//! Saved linear-probe heads (`emoclip probe … --save-head head.json`, applied by `analyze --head`): the fitted classifier or regressor of the official `linear_eval.py` protocol with its labels, the feature normalisation, and the fingerprint of the encoder whose features it was fitted on.
//!
//! # File format (JSON, `"format": "emoclip-linear-head"`, version 1)
//!
//! ```json
//! {
//!   "format": "emoclip-linear-head", "version": 1,
//!   "name": "meld/emotion",
//!   "task": "logistic",
//!   "labels": ["neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"],
//!   "coef": [[0.12, -0.4, ...], ...],
//!   "intercept": [0.3, ...],
//!   "features": {"normalize": "l2", "dim": 512},
//!   "encoder": {"fingerprint": "sha256:9f2c…", "name": "EmotionCLIP ViT-B/32",
//!               "preprocess": {"normalization": "imagenet", "frames": 8}},
//!   "fit": {"dataset": "meld", "C": 8.0, "n_train": 9989}
//! }
//! ```
//!
//! - `task`: `logistic` — scikit-learn `LogisticRegression` (multinomial): `K` rows of `coef`, probabilities
//!   `softmax(x Wᵀ + b)`; with 2 labels and 1 row, the binary model `[1 − σ(z), σ(z)]`.
//!   `one_vs_rest` — `OneVsRestClassifier(LogisticRegression)`: one row per label, independent
//!   probabilities `σ(w_k·x + b_k)`; `constant[k]` (0 or 1) replaces a label that had a single value in
//!   training (scikit-learn's `_ConstantPredictor`). `ridge` — `Ridge`: one row per target, values
//!   `x Wᵀ + b` (e.g. valence, arousal, dominance).
//! - `features.normalize`: what is applied to an embedding before the head. `l2` (default) is the official
//!   `linear_eval.py` feature extraction (`F.normalize(features, dim=-1)`), and what `emoclip embed` / the
//!   probe's feature cache store; `none` applies the head to the embedding as given.
//! - `encoder.fingerprint`: [`crate::encoder::encoder_fingerprint`] of the weights and config the features came from;
//!   [`Head::check_encoder`] refuses a head fitted on another encoder, or with other preprocessing.
//! - `fit`: free-form provenance (not interpreted).
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::encoder::EncoderId;
use crate::output::write_atomic;
use crate::probability::{argmax, sigmoid, softmax};
use crate::{Error, Result};

/// The `format` field of a head file.
pub const HEAD_FORMAT: &str = "emoclip-linear-head";
/// The current `version`.
pub const HEAD_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadTask {
    /// Multinomial (or binary) logistic regression: one label per input, probabilities summing to 1.
    Logistic,
    /// One-vs-rest logistic regression: independent per-label probabilities (multi-label).
    OneVsRest,
    /// Multi-output ridge regression: one value per target.
    Ridge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureNorm {
    /// `x / ‖x‖₂` (official `linear_eval.py`).
    #[default]
    L2,
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSpec {
    #[serde(default)]
    pub normalize: FeatureNorm,
    pub dim: usize,
}

/// A saved linear head (format in the module documentation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    pub format: String,
    pub version: u32,
    /// e.g. `meld/emotion`, `bold/vad`: prefixes the score columns.
    pub name: String,
    pub task: HeadTask,
    /// Class names (classification) or target names (regression).
    pub labels: Vec<String>,
    pub coef: Vec<Vec<f64>>,
    pub intercept: Vec<f64>,
    /// `one_vs_rest` only: per label, `null` or the constant probability (0 or 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constant: Option<Vec<Option<f64>>>,
    pub features: FeatureSpec,
    pub encoder: EncoderId,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fit: BTreeMap<String, serde_json::Value>,
}

/// What a head predicts for one input.
#[derive(Debug, Clone, PartialEq)]
pub enum Prediction {
    /// Index of the most probable label (`logistic`).
    Class(usize),
    /// Per label, whether it is predicted present (`one_vs_rest`: probability > 0.5, scikit-learn's
    /// decision > 0).
    Labels(Vec<bool>),
    /// Regression values (`ridge`).
    Values(Vec<f64>),
}

impl Head {
    /// Reads and validates a head file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::Data {
                path: path.to_path_buf(),
                msg: "head file not found; write one with `emoclip probe … --save-head FILE`".into(),
            },
            _ => Error::io(path, e),
        })?;
        Self::parse(&text, path)
    }

    /// Parses head JSON; `path` names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let head: Head = serde_json::from_str(text).map_err(|e| Error::Data {
            path: path.to_path_buf(),
            msg: format!("not a head file ({e}); expected the JSON `emoclip probe --save-head` writes"),
        })?;
        head.validate().map_err(|msg| Error::Data { path: path.to_path_buf(), msg })?;
        Ok(head)
    }

    /// Writes the head (atomically).
    pub fn save(&self, path: &Path) -> Result<()> {
        self.validate().map_err(|msg| Error::Data { path: path.to_path_buf(), msg })?;
        let text = serde_json::to_string_pretty(self).map_err(|e| Error::Msg(e.to_string()))?;
        write_atomic(path, |f| f.write_all(text.as_bytes()))
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.format != HEAD_FORMAT {
            return Err(format!("`format` is `{}`, expected `{HEAD_FORMAT}`", self.format));
        }
        if self.version != HEAD_VERSION {
            return Err(format!(
                "head format version {} is not supported (this emoclip reads version {HEAD_VERSION}); refit with this emoclip",
                self.version
            ));
        }
        let (k, rows, d) = (self.labels.len(), self.coef.len(), self.features.dim);
        let rows_ok = match self.task {
            HeadTask::Logistic => (k >= 3 && rows == k) || (k == 2 && rows == 1),
            HeadTask::OneVsRest | HeadTask::Ridge => k >= 1 && rows == k,
        };
        if !rows_ok {
            return Err(format!("{:?} head with {k} label(s) cannot have {rows} coefficient row(s)", self.task));
        }
        if self.intercept.len() != rows {
            return Err(format!("{} intercept(s) for {rows} coefficient row(s)", self.intercept.len()));
        }
        if let Some((i, r)) = self.coef.iter().enumerate().find(|(_, r)| r.len() != d) {
            return Err(format!("coefficient row {i} has {} values, `features.dim` is {d}", r.len()));
        }
        if self.coef.iter().flatten().chain(&self.intercept).any(|v| !v.is_finite()) {
            return Err("coefficients or intercepts are not all finite".into());
        }
        if let Some(c) = &self.constant {
            if self.task != HeadTask::OneVsRest || c.len() != k {
                return Err("`constant` needs task one_vs_rest and one entry per label".into());
            }
            if c.iter().flatten().any(|v| *v != 0.0 && *v != 1.0) {
                return Err("`constant` entries must be null, 0 or 1".into());
            }
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(l) = self.labels.iter().find(|l| !seen.insert(l.as_str())) {
            return Err(format!("label `{l}` appears twice"));
        }
        Ok(())
    }

    /// Refuses to run when the features come from another encoder (or other preprocessing) than the one the
    /// head was fitted on. `path` names the head file in the message.
    pub fn check_encoder(&self, ours: &EncoderId, path: &Path) -> Result<()> {
        let bad = |msg: String| Error::Data { path: path.to_path_buf(), msg };
        let theirs = &self.encoder;
        if theirs.fingerprint != ours.fingerprint {
            let name = |e: &EncoderId| if e.name.is_empty() { String::new() } else { format!(" ({})", e.name) };
            return Err(bad(format!(
                "head `{}` was fitted on features of encoder {}{}, but this run uses {}{}; a linear head only \
                 applies to the encoder it was fitted on: run with the same --weights, or fit a head on these weights \
                 with `emoclip probe … --save-head`",
                self.name,
                theirs.fingerprint,
                name(theirs),
                ours.fingerprint,
                name(ours)
            )));
        }
        if let (Some(a), Some(b)) = (&theirs.preprocess, &ours.preprocess) {
            if a != b {
                return Err(bad(format!(
                    "head `{}` was fitted on features with --norm {} and {} frames, this run uses --norm {} and {} frames; \
                     run with --norm {} --frames {}",
                    self.name, a.normalization, a.frames, b.normalization, b.frames, a.normalization, a.frames
                )));
            }
        }
        Ok(())
    }

    /// Embedding dimension expected.
    pub fn dim(&self) -> usize {
        self.features.dim
    }

    fn decision(&self, x: &[f32]) -> Result<Vec<f64>> {
        if x.len() != self.features.dim {
            return Err(Error::Shape(format!(
                "head `{}` expects {}-dimensional features, got {}",
                self.name,
                self.features.dim,
                x.len()
            )));
        }
        let mut v: Vec<f64> = x.iter().map(|&a| a as f64).collect();
        if self.features.normalize == FeatureNorm::L2 {
            let n = v.iter().map(|a| a * a).sum::<f64>().sqrt();
            if n > 0.0 {
                v.iter_mut().for_each(|a| *a /= n);
            }
        }
        Ok(self
            .coef
            .iter()
            .zip(&self.intercept)
            .map(|(w, b)| w.iter().zip(&v).map(|(a, c)| a * c).sum::<f64>() + b)
            .collect())
    }

    /// Per label: class probabilities (`logistic`, summing to 1), independent probabilities (`one_vs_rest`),
    /// or regression values (`ridge`) — scikit-learn's `predict_proba` / `predict` on the normalised features.
    pub fn predict_proba(&self, x: &[f32]) -> Result<Vec<f64>> {
        let z = self.decision(x)?;
        Ok(match self.task {
            HeadTask::Logistic if z.len() == 1 => {
                let p = sigmoid(z[0]);
                vec![1.0 - p, p]
            }
            HeadTask::Logistic => softmax(&z),
            HeadTask::OneVsRest => z
                .iter()
                .enumerate()
                .map(|(k, &zk)| self.constant.as_ref().and_then(|c| c[k]).unwrap_or_else(|| sigmoid(zk)))
                .collect(),
            HeadTask::Ridge => z,
        })
    }

    /// scikit-learn's `predict`.
    pub fn predict(&self, x: &[f32]) -> Result<Prediction> {
        let z = self.decision(x)?;
        Ok(match self.task {
            HeadTask::Logistic if z.len() == 1 => Prediction::Class(usize::from(z[0] > 0.0)),
            HeadTask::Logistic => Prediction::Class(argmax(&z)),
            HeadTask::OneVsRest => Prediction::Labels(
                z.iter()
                    .enumerate()
                    .map(|(k, &zk)| match self.constant.as_ref().and_then(|c| c[k]) {
                        Some(c) => c > 0.5,
                        None => zk > 0.0,
                    })
                    .collect(),
            ),
            HeadTask::Ridge => Prediction::Values(z),
        })
    }

    /// Whether the outputs are probabilities (`logistic`, `one_vs_rest`) rather than regression values.
    pub fn is_probabilistic(&self) -> bool {
        self.task != HeadTask::Ridge
    }

    /// The head file's default path for a name (`<dir>/<name with / as _>.head.json`).
    pub fn default_path(dir: &Path, name: &str) -> PathBuf {
        dir.join(format!("{}.head.json", name.replace('/', "_")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoder::Preprocess;

    fn head(task: HeadTask, labels: &[&str], coef: Vec<Vec<f64>>, intercept: Vec<f64>) -> Head {
        Head {
            format: HEAD_FORMAT.into(),
            version: HEAD_VERSION,
            name: "t".into(),
            task,
            labels: labels.iter().map(|s| s.to_string()).collect(),
            features: FeatureSpec { normalize: FeatureNorm::L2, dim: coef[0].len() },
            coef,
            intercept,
            constant: None,
            encoder: EncoderId { fingerprint: "sha256:aa".into(), name: String::new(), preprocess: None },
            fit: BTreeMap::new(),
        }
    }

    #[test]
    fn refuses_another_encoder_or_preprocessing() {
        let mut h = head(HeadTask::Ridge, &["valence"], vec![vec![1.0, 0.0]], vec![0.0]);
        h.encoder.preprocess = Some(Preprocess { normalization: "imagenet".into(), frames: 8 });
        let p = Path::new("vad.head.json");
        let other = EncoderId { fingerprint: "sha256:bb".into(), name: "other".into(), preprocess: None };
        let e = h.check_encoder(&other, p).unwrap_err().to_string();
        assert!(
            e.contains("vad.head.json")
                && e.contains("sha256:aa")
                && e.contains("sha256:bb")
                && e.contains("--save-head"),
            "{e}"
        );
        let same_w = EncoderId {
            fingerprint: "sha256:aa".into(),
            name: String::new(),
            preprocess: Some(Preprocess { normalization: "clip".into(), frames: 8 }),
        };
        let e = h.check_encoder(&same_w, p).unwrap_err().to_string();
        assert!(e.contains("--norm imagenet"), "{e}");
        let ok = EncoderId { preprocess: h.encoder.preprocess.clone(), ..same_w };
        h.check_encoder(&ok, p).unwrap();
    }

    #[test]
    fn validation_errors() {
        let p = Path::new("h.json");
        let good = head(HeadTask::Logistic, &["a", "b", "c"], vec![vec![0.0; 2]; 3], vec![0.0; 3]);
        let text = serde_json::to_string(&good).unwrap();
        assert_eq!(Head::parse(&text, p).unwrap(), good);
        let cases = [
            (text.replace("\"version\":1", "\"version\":2"), "version 2"),
            (text.replace("\"intercept\":[0.0,0.0,0.0]", "\"intercept\":[0.0]"), "1 intercept(s)"),
            (text.replace("\"labels\":[\"a\",\"b\",\"c\"]", "\"labels\":[\"a\",\"b\",\"a\"]"), "appears twice"),
            (text.replace("\"task\":\"logistic\"", "\"task\":\"svm\""), "not a head file"),
            (text.replace("\"dim\":2", "\"dim\":3"), "row 0 has 2 values"),
            (text.replace("{\"format\"", "{\"extra\":1,\"format\""), "unknown field"),
        ];
        for (t, needle) in cases {
            let e = Head::parse(&t, p).unwrap_err().to_string();
            assert!(e.contains("h.json") && e.contains(needle), "{needle}: {e}");
        }
        let x = good.predict_proba(&[1.0]).unwrap_err().to_string();
        assert!(x.contains("expects 2-dimensional"), "{x}");
    }

    #[test]
    fn binary_logistic_and_save_roundtrip() {
        let h = head(HeadTask::Logistic, &["no", "yes"], vec![vec![2.0, 0.0]], vec![0.0]);
        let p = h.predict_proba(&[3.0, 0.0]).unwrap(); // normalised to (1, 0): z = 2
        assert!((p[1] - sigmoid(2.0)).abs() < 1e-12 && (p[0] + p[1] - 1.0).abs() < 1e-12);
        assert_eq!(h.predict(&[3.0, 0.0]).unwrap(), Prediction::Class(1));
        let dir = tempfile::tempdir().unwrap();
        let path = Head::default_path(dir.path(), "a/b");
        assert!(path.ends_with("a_b.head.json"));
        h.save(&path).unwrap();
        assert_eq!(Head::load(&path).unwrap(), h);
    }
}
