//! Zero-shot scores with prompt ensembling: each class's template embeddings L2-normalised, averaged and re-normalised, then `scale · cos` and a softmax over classes (official src/engine/evaluation.py `ZeroShotClassifier`; CLIP's prompt ensembling).
//!
//! The official evaluator scales by a fixed 100; `emoclip similarity` and `analyze` use the model's own
//! `exp(logit_scale)` (the caller passes it), which is what the model was trained with.
use super::prompts::Prompts;
use crate::probability::softmax;
use crate::{Error, Result};

/// Class embeddings of one prompt set, ready to score visual embeddings.
#[derive(Debug, Clone, PartialEq)]
pub struct ZeroShot {
    /// Prompt-set name (column prefix).
    pub name: String,
    pub labels: Vec<String>,
    /// One unit-norm embedding per class.
    pub classes: Vec<Vec<f32>>,
    /// Multiplies the cosine (`exp(logit_scale)`).
    pub scale: f32,
}

/// `v / ‖v‖` in f64 (the zero vector stays zero).
fn normalized(v: &[f64]) -> Vec<f64> {
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if n > 0.0 {
        v.iter().map(|x| x / n).collect()
    } else {
        v.to_vec()
    }
}

/// Ensembles `per_class[c][t]` (class `c`, template `t`) into one unit vector per class: normalise each
/// template embedding, average over templates, normalise again.
pub fn ensemble(per_class: &[Vec<Vec<f32>>]) -> Result<Vec<Vec<f32>>> {
    let dim = per_class.first().and_then(|c| c.first()).map_or(0, Vec::len);
    per_class
        .iter()
        .enumerate()
        .map(|(c, temps)| {
            if temps.is_empty() {
                return Err(Error::Shape(format!("class {c} has no template embeddings")));
            }
            let mut mean = vec![0.0f64; dim];
            for (t, e) in temps.iter().enumerate() {
                if e.len() != dim {
                    return Err(Error::Shape(format!(
                        "class {c} template {t}: dimension {} instead of {dim}",
                        e.len()
                    )));
                }
                let e64: Vec<f64> = e.iter().map(|&x| x as f64).collect();
                for (m, x) in mean.iter_mut().zip(normalized(&e64)) {
                    *m += x;
                }
            }
            mean.iter_mut().for_each(|m| *m /= temps.len() as f64);
            Ok(normalized(&mean).into_iter().map(|x| x as f32).collect())
        })
        .collect()
}

impl ZeroShot {
    /// Encodes every class × template text with `encode_texts` (one call, all texts: text embeddings are
    /// computed once per run) and ensembles them.
    pub fn build(
        prompts: &Prompts,
        scale: f32,
        encode_texts: impl FnOnce(&[String]) -> Result<Vec<Vec<f32>>>,
    ) -> Result<Self> {
        let texts = prompts.texts();
        let flat: Vec<String> = texts.iter().flatten().cloned().collect();
        let emb = encode_texts(&flat)?;
        if emb.len() != flat.len() {
            return Err(Error::Shape(format!("{} text embeddings for {} prompts", emb.len(), flat.len())));
        }
        let t = prompts.templates.len();
        let per_class: Vec<Vec<Vec<f32>>> = emb.chunks(t).map(|c| c.to_vec()).collect();
        Self::from_template_embeddings(&prompts.name, &prompts.labels, &per_class, scale)
    }

    /// From already computed embeddings `per_class[c][t]`.
    pub fn from_template_embeddings(
        name: &str,
        labels: &[String],
        per_class: &[Vec<Vec<f32>>],
        scale: f32,
    ) -> Result<Self> {
        if labels.len() != per_class.len() {
            return Err(Error::Shape(format!("{} labels for {} classes", labels.len(), per_class.len())));
        }
        if !scale.is_finite() || scale <= 0.0 {
            return Err(Error::Msg(format!("zero-shot scale must be positive and finite, got {scale}")));
        }
        Ok(Self { name: name.to_string(), labels: labels.to_vec(), classes: ensemble(per_class)?, scale })
    }

    pub fn dim(&self) -> usize {
        self.classes.first().map_or(0, Vec::len)
    }

    /// `scale · cos(embedding, class)` for every class (the embedding is normalised here).
    pub fn logits(&self, embedding: &[f32]) -> Result<Vec<f64>> {
        if embedding.len() != self.dim() {
            return Err(Error::Shape(format!(
                "embedding of dimension {} scored against {}-dimensional text embeddings of `{}`",
                embedding.len(),
                self.dim(),
                self.name
            )));
        }
        let v = normalized(&embedding.iter().map(|&x| x as f64).collect::<Vec<_>>());
        Ok(self
            .classes
            .iter()
            .map(|c| self.scale as f64 * c.iter().zip(&v).map(|(&a, b)| a as f64 * b).sum::<f64>())
            .collect())
    }

    /// Softmax of [`Self::logits`] over the classes.
    pub fn probs(&self, embedding: &[f32]) -> Result<Vec<f64>> {
        Ok(softmax(&self.logits(embedding)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensemble_normalises_before_and_after_averaging() {
        // a long and a short template vector: normalising first gives them equal weight
        let e = ensemble(&[vec![vec![10.0, 0.0], vec![0.0, 1.0]]]).unwrap();
        let s = std::f32::consts::FRAC_1_SQRT_2;
        assert!((e[0][0] - s).abs() < 1e-6 && (e[0][1] - s).abs() < 1e-6, "{e:?}");
        assert!(ensemble(&[vec![]]).is_err());
        assert!(ensemble(&[vec![vec![1.0, 0.0], vec![1.0]]]).is_err());
    }

    #[test]
    fn scores_are_scaled_cosines_and_softmax() {
        let z = ZeroShot::from_template_embeddings(
            "t",
            &["a".into(), "b".into()],
            &[vec![vec![1.0, 0.0]], vec![vec![0.0, 2.0]]],
            100.0,
        )
        .unwrap();
        let l = z.logits(&[3.0, 3.0]).unwrap();
        assert!((l[0] - 100.0 * std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-4 && (l[0] - l[1]).abs() < 1e-9);
        assert_eq!(z.probs(&[3.0, 3.0]).unwrap(), vec![0.5, 0.5]);
        assert!(z.logits(&[1.0]).unwrap_err().to_string().contains("dimension 1"));
        assert!(ZeroShot::from_template_embeddings("t", &["a".into()], &[vec![vec![1.0]]], 0.0).is_err());
    }
}
