//! One-vs-rest multi-label wrapper as scikit-learn `multiclass.OneVsRestClassifier` over binary [`LogisticRegression`]s, classes fitted in parallel.
use rayon::prelude::*;

use super::logistic::{LogisticModel, LogisticRegression};
use super::Mat;
use crate::{Error, Result};

/// `OneVsRestClassifier(LogisticRegression(..))` for a 0/1 label matrix `Y` (`n × K`).
#[derive(Debug, Clone, Default)]
pub struct OneVsRest {
    pub estimator: LogisticRegression,
}

/// Per-class estimator of a fitted [`OneVsRest`].
#[derive(Debug, Clone)]
pub enum BinaryEstimator {
    Fitted(LogisticModel),
    /// The class had a single label value in training. scikit-learn warns ("Label not k is present in all
    /// training examples" / "Label k is present in all training examples") and uses `_ConstantPredictor`:
    /// probability and decision score are that constant (0 or 1) for every sample. Mirrored exactly.
    Constant(f64),
}

/// A fitted one-vs-rest model.
#[derive(Debug, Clone)]
pub struct OneVsRestModel {
    pub estimators: Vec<BinaryEstimator>,
    /// Indices of classes that got a constant predictor (scikit-learn's warnings).
    pub constant_classes: Vec<usize>,
    pub n_features: usize,
}

impl OneVsRest {
    pub fn new(estimator: LogisticRegression) -> Self {
        Self { estimator }
    }

    /// Fits one binary model per column of `y` (entries must be 0 or 1), in parallel over classes.
    pub fn fit(&self, x: &Mat, y: &Mat) -> Result<OneVsRestModel> {
        if y.rows != x.rows {
            return Err(Error::Shape(format!("one-vs-rest: {} feature rows but {} label rows", x.rows, y.rows)));
        }
        if let Some(v) = y.data.iter().find(|v| **v != 0.0 && **v != 1.0) {
            return Err(Error::Msg(format!("one-vs-rest: label matrix must be 0/1, found {v}")));
        }
        let estimators: Vec<BinaryEstimator> = (0..y.cols)
            .into_par_iter()
            .map(|k| {
                let col: Vec<bool> = (0..y.rows).map(|i| y.get(i, k) == 1.0).collect();
                let pos = col.iter().filter(|&&b| b).count();
                if pos == 0 || pos == col.len() {
                    return Ok(BinaryEstimator::Constant(if pos == 0 { 0.0 } else { 1.0 }));
                }
                self.estimator.fit_binary(x, &col).map(BinaryEstimator::Fitted)
            })
            .collect::<Result<_>>()?;
        let constant_classes = estimators
            .iter()
            .enumerate()
            .filter(|(_, e)| matches!(e, BinaryEstimator::Constant(_)))
            .map(|(k, _)| k)
            .collect::<Vec<_>>();
        for &k in &constant_classes {
            tracing::warn!("one-vs-rest: label {k} has a single value in training; constant predictor used");
        }
        Ok(OneVsRestModel { estimators, constant_classes, n_features: x.cols })
    }
}

impl OneVsRestModel {
    fn per_class(&self, x: &Mat, proba: bool) -> Result<Mat> {
        if x.cols != self.n_features {
            return Err(Error::Shape(format!("model has {} features, input has {}", self.n_features, x.cols)));
        }
        let k = self.estimators.len();
        let cols: Vec<Vec<f64>> = self
            .estimators
            .par_iter()
            .map(|e| match e {
                BinaryEstimator::Constant(c) => Ok(vec![*c; x.rows]),
                BinaryEstimator::Fitted(m) => {
                    if proba {
                        Ok(m.predict_proba(x)?.col(1))
                    } else {
                        Ok(m.decision_function(x)?.data)
                    }
                }
            })
            .collect::<Result<_>>()?;
        let mut out = Mat::zeros(x.rows, k);
        for (c, col) in cols.iter().enumerate() {
            for (row, &v) in out.data.chunks_mut(k).zip(col) {
                row[c] = v;
            }
        }
        Ok(out)
    }

    /// `n × K` positive-class probabilities (not normalised across classes, as scikit-learn multilabel).
    pub fn predict_proba(&self, x: &Mat) -> Result<Mat> {
        self.per_class(x, true)
    }

    /// `n × K` decision scores (the constant for constant classes).
    pub fn decision_function(&self, x: &Mat) -> Result<Mat> {
        self.per_class(x, false)
    }

    /// `n × K` 0/1 predictions: decision score `> 0` (scikit-learn's threshold for classifiers with `decision_function`).
    pub fn predict(&self, x: &Mat) -> Result<Mat> {
        let mut d = self.decision_function(x)?;
        d.data.iter_mut().for_each(|v| *v = if *v > 0.0 { 1.0 } else { 0.0 });
        Ok(d)
    }
}
