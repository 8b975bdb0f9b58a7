//! Punctuation restoration with an ONNX token-classification model (the official pipeline's
//! deepmultilingualpunctuation / FullStop: labels `0 . , ? - :` per token; a word takes the label of its
//! last sub-token, as that package does). Directory: `model.onnx`, `tokenizer.json`, `config.json`
//! (`id2label`). Runs through ONNX Runtime (`ort`, load-dynamic).
use super::sentences::PunctuationModel;
use crate::{Error, Result};
use ort::session::Session;
use ort::value::Tensor;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tokenizers::Tokenizer;

pub struct OnnxPunctuation {
    session: Mutex<Session>,
    tokenizer: Tokenizer,
    /// Punctuation mark per label id (`None` for "0", no punctuation).
    marks: Vec<Option<char>>,
    /// Words per model call (long transcripts are processed in windows).
    pub window: usize,
    input_names: Vec<String>,
    path: PathBuf,
}

impl OnnxPunctuation {
    pub fn from_dir(dir: &Path) -> Result<Self> {
        crate::detect::onnx::ensure_runtime()?;
        let model = dir.join("model.onnx");
        let session = crate::detect::onnx::session(&model)?;
        let tj = dir.join("tokenizer.json");
        let tokenizer =
            Tokenizer::from_file(&tj).map_err(|e| Error::config(&tj, format!("cannot load tokenizer: {e}")))?;
        let cfg_path = dir.join("config.json");
        let cfg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&cfg_path).map_err(|e| Error::io(&cfg_path, e))?)
                .map_err(|e| Error::config(&cfg_path, e.to_string()))?;
        let id2label =
            cfg.get("id2label").and_then(|v| v.as_object()).ok_or_else(|| Error::config(&cfg_path, "no id2label"))?;
        let mut marks = vec![None; id2label.len()];
        for (k, v) in id2label {
            let i: usize = k.parse().map_err(|_| Error::config(&cfg_path, format!("bad label id {k:?}")))?;
            let l = v.as_str().unwrap_or("0");
            if i >= marks.len() {
                return Err(Error::config(&cfg_path, format!("label id {i} out of range")));
            }
            marks[i] = if l == "0" || l.is_empty() { None } else { l.chars().next() };
        }
        let input_names = session.inputs().iter().map(|i| i.name().to_string()).collect();
        Ok(Self { session: Mutex::new(session), tokenizer, marks, window: 200, input_names, path: model })
    }

    /// The mark after each word, or an error naming the model.
    pub fn try_predict(&self, words: &[&str]) -> Result<Vec<Option<char>>> {
        let mut out = Vec::with_capacity(words.len());
        for chunk in words.chunks(self.window.max(1)) {
            let owned: Vec<String> = chunk.iter().map(|w| w.to_string()).collect();
            let enc = self
                .tokenizer
                .encode(tokenizers::InputSequence::from(owned), true)
                .map_err(|e| Error::Tokenizer(e.to_string()))?;
            let ids: Vec<i64> = enc.get_ids().iter().map(|&i| i as i64).collect();
            let n = ids.len();
            let mask = vec![1i64; n];
            let mut session = self.session.lock().map_err(|_| Error::Msg("punctuation model poisoned".into()))?;
            let ti = Tensor::from_array(([1usize, n], ids)).map_err(|e| Error::Msg(e.to_string()))?;
            let tm = Tensor::from_array(([1usize, n], mask)).map_err(|e| Error::Msg(e.to_string()))?;
            let outputs = if self.input_names.iter().any(|n| n == "attention_mask") {
                session.run(ort::inputs!["input_ids" => ti, "attention_mask" => tm])
            } else {
                session.run(ort::inputs!["input_ids" => ti])
            }
            .map_err(|e| Error::checkpoint(&self.path, format!("inference failed: {e}")))?;
            let (shape, logits) =
                outputs[0].try_extract_tensor::<f32>().map_err(|e| Error::checkpoint(&self.path, e.to_string()))?;
            let k = *shape.last().unwrap_or(&0) as usize;
            if k != self.marks.len() || logits.len() != n * k {
                return Err(Error::checkpoint(
                    &self.path,
                    format!("output {shape:?} does not match {} labels and {n} tokens", self.marks.len()),
                ));
            }
            // Last sub-token of each word decides.
            let mut per_word = vec![None; chunk.len()];
            for (t, w) in enc.get_word_ids().iter().enumerate() {
                if let Some(w) = w {
                    let row = &logits[t * k..(t + 1) * k];
                    let best = row.iter().enumerate().fold(0, |b, (i, &v)| if v > row[b] { i } else { b });
                    if let Some(slot) = per_word.get_mut(*w as usize) {
                        *slot = Some(self.marks[best]);
                    }
                }
            }
            out.extend(per_word.into_iter().map(|p| p.flatten()));
        }
        Ok(out)
    }
}

impl PunctuationModel for OnnxPunctuation {
    /// Failures are logged (naming the model) and give no punctuation for that call.
    fn predict(&self, words: &[&str]) -> Vec<Option<char>> {
        self.try_predict(words).unwrap_or_else(|e| {
            tracing::error!("{e}");
            vec![None; words.len()]
        })
    }
}
