//! Evaluation metrics equal to scikit-learn `metrics` (`average_precision_score`, `roc_auc_score`, `r2_score`, `accuracy_score`, `f1_score(average='weighted')`, `mean_squared_error`) and scipy `stats.pearsonr`.
use super::{check_finite, Mat};
use crate::probability::argmax;
use crate::{Error, Result};

fn same_len(a: usize, b: usize, what: &str) -> Result<()> {
    if a != b {
        return Err(Error::Shape(format!("{what}: {a} true values but {b} predictions")));
    }
    if a == 0 {
        return Err(Error::Shape(format!("{what}: empty input")));
    }
    Ok(())
}

/// Cumulative (false positives, true positives) at each distinct score threshold, scores descending
/// (scikit-learn `_binary_clf_curve`: tied scores form one threshold).
fn clf_curve(y: &[bool], s: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let mut idx: Vec<usize> = (0..s.len()).collect();
    idx.sort_by(|&a, &b| s[b].total_cmp(&s[a]));
    let (mut fps, mut tps) = (Vec::new(), Vec::new());
    let (mut fp, mut tp) = (0.0, 0.0);
    for (r, &i) in idx.iter().enumerate() {
        if y[i] {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        if r + 1 == idx.len() || s[idx[r + 1]] != s[i] {
            fps.push(fp);
            tps.push(tp);
        }
    }
    (fps, tps)
}

fn check_binary(y: &[f64], s: &[f64], what: &str) -> Result<Vec<bool>> {
    same_len(y.len(), s.len(), what)?;
    check_finite(s, what)?;
    y.iter()
        .map(|&v| match v {
            1.0 => Ok(true),
            0.0 => Ok(false),
            v => Err(Error::Msg(format!("{what}: y_true must be 0/1, found {v}"))),
        })
        .collect()
}

/// `average_precision_score(y_true, y_score)` for one binary label: `Σ_n (R_n − R_{n−1}) P_n` over distinct
/// thresholds (no interpolation). No positive in `y_true`: scikit-learn 1.9 warns ("No positive class found in
/// y_true, recall is set to one for all thresholds") and returns 0.0 — so does this function.
pub fn average_precision_score(y_true: &[f64], y_score: &[f64]) -> Result<f64> {
    let y = check_binary(y_true, y_score, "average_precision_score")?;
    let (fps, tps) = clf_curve(&y, y_score);
    let total = *tps.last().unwrap_or(&0.0);
    if total == 0.0 {
        return Ok(0.0);
    }
    let (mut ap, mut prev_r) = (0.0, 0.0);
    for (fp, tp) in fps.iter().zip(&tps) {
        let r = tp / total;
        ap += (r - prev_r) * (tp / (tp + fp));
        prev_r = r;
    }
    Ok(ap)
}

/// `roc_auc_score(y_true, y_score)` for one binary label: trapezoidal area under the ROC curve with tied
/// scores as one threshold. Only one class in `y_true`: scikit-learn 1.9 warns (UndefinedMetricWarning) and
/// returns NaN; here that is an error ([`Error::Msg`]) so that NaN cannot leak silently. Use
/// [`roc_auc_macro`] for the scikit-learn-equal macro value together with the undefined classes.
pub fn roc_auc_score(y_true: &[f64], y_score: &[f64]) -> Result<f64> {
    let y = check_binary(y_true, y_score, "roc_auc_score")?;
    let (fps, tps) = clf_curve(&y, y_score);
    let (fn_, tn) = (*tps.last().unwrap_or(&0.0), *fps.last().unwrap_or(&0.0));
    if fn_ == 0.0 || tn == 0.0 {
        return Err(Error::Msg(
            "roc_auc_score: only one class present in y_true; ROC AUC is not defined (scikit-learn returns NaN)".into(),
        ));
    }
    let (mut area, mut px, mut py) = (0.0, 0.0, 0.0);
    for (fp, tp) in fps.iter().zip(&tps) {
        let (x, y) = (fp / tn, tp / fn_);
        area += (x - px) * (y + py) / 2.0;
        px = x;
        py = y;
    }
    Ok(area)
}

/// A macro-averaged score over the columns of a label matrix, with the classes where it is undefined.
#[derive(Debug, Clone, PartialEq)]
pub struct MacroScore {
    /// The scikit-learn value (`average='macro'`): for AP, classes without positives count as 0.0; for ROC AUC,
    /// NaN as soon as one class is undefined (scikit-learn 1.9 behaviour).
    pub sklearn: f64,
    /// Mean over the defined classes only (NaN when none is defined).
    pub defined_mean: f64,
    /// Per-class values; `None` where undefined (AP: no positive; AUC: a single class in y_true).
    pub per_class: Vec<Option<f64>>,
    /// Indices of the undefined classes (report their count next to `defined_mean`).
    pub undefined: Vec<usize>,
}

fn macro_over(y_true: &Mat, y_score: &Mat, what: &str, ap: bool) -> Result<MacroScore> {
    if y_true.rows != y_score.rows || y_true.cols != y_score.cols {
        return Err(Error::Shape(format!(
            "{what}: y_true {}x{} vs y_score {}x{}",
            y_true.rows, y_true.cols, y_score.rows, y_score.cols
        )));
    }
    let mut per_class = Vec::with_capacity(y_true.cols);
    let mut vals = Vec::new();
    let mut undefined = Vec::new();
    for k in 0..y_true.cols {
        let (yt, ys) = (y_true.col(k), y_score.col(k));
        let pos = yt.iter().filter(|&&v| v == 1.0).count();
        let defined = if ap { pos > 0 } else { pos > 0 && pos < yt.len() };
        let v = if ap {
            average_precision_score(&yt, &ys)?
        } else if defined {
            roc_auc_score(&yt, &ys)?
        } else {
            // validates the inputs, then yields the scikit-learn NaN
            check_binary(&yt, &ys, what)?;
            f64::NAN
        };
        vals.push(v);
        if defined {
            per_class.push(Some(v));
        } else {
            per_class.push(None);
            undefined.push(k);
        }
    }
    let mean = |v: &[f64]| if v.is_empty() { f64::NAN } else { v.iter().sum::<f64>() / v.len() as f64 };
    let defined_vals: Vec<f64> = per_class.iter().flatten().copied().collect();
    Ok(MacroScore { sklearn: mean(&vals), defined_mean: mean(&defined_vals), per_class, undefined })
}

/// `average_precision_score(Y, S, average='macro')` over the columns of `y_true` (0/1) and `y_score`.
pub fn average_precision_macro(y_true: &Mat, y_score: &Mat) -> Result<MacroScore> {
    macro_over(y_true, y_score, "average_precision_macro", true)
}

/// `roc_auc_score(Y, S, average='macro')` over the columns of `y_true` (0/1) and `y_score`.
pub fn roc_auc_macro(y_true: &Mat, y_score: &Mat) -> Result<MacroScore> {
    macro_over(y_true, y_score, "roc_auc_macro", false)
}

/// `r2_score(y_true, y_pred, multioutput='uniform_average')` over the columns; constant `y_true` column gives
/// 1.0 if predicted exactly, else 0.0 (scikit-learn `force_finite=True`).
pub fn r2_score(y_true: &Mat, y_pred: &Mat) -> Result<f64> {
    if y_true.rows != y_pred.rows || y_true.cols != y_pred.cols || y_true.rows == 0 {
        return Err(Error::Shape(format!(
            "r2_score: y_true {}x{} vs y_pred {}x{}",
            y_true.rows, y_true.cols, y_pred.rows, y_pred.cols
        )));
    }
    let mut total = 0.0;
    for k in 0..y_true.cols {
        let (t, p) = (y_true.col(k), y_pred.col(k));
        let m = t.iter().sum::<f64>() / t.len() as f64;
        let num: f64 = t.iter().zip(&p).map(|(a, b)| (a - b) * (a - b)).sum();
        let den: f64 = t.iter().map(|a| (a - m) * (a - m)).sum();
        total += if den != 0.0 {
            1.0 - num / den
        } else if num == 0.0 {
            1.0
        } else {
            0.0
        };
    }
    Ok(total / y_true.cols as f64)
}

/// `mean_squared_error(y_true, y_pred)`.
pub fn mean_squared_error(y_true: &[f64], y_pred: &[f64]) -> Result<f64> {
    same_len(y_true.len(), y_pred.len(), "mean_squared_error")?;
    Ok(y_true.iter().zip(y_pred).map(|(a, b)| (a - b) * (a - b)).sum::<f64>() / y_true.len() as f64)
}

/// `scipy.stats.pearsonr(x, y).statistic`. A constant input (scipy: ConstantInputWarning and NaN) or fewer than
/// two samples is an error here ([`Error::NonFinite`] / [`Error::Shape`]).
pub fn pearsonr(x: &[f64], y: &[f64]) -> Result<f64> {
    same_len(x.len(), y.len(), "pearsonr")?;
    if x.len() < 2 {
        return Err(Error::Shape("pearsonr: needs at least 2 samples".into()));
    }
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (u, v) = (a - mx, b - my);
        sxy += u * v;
        sxx += u * u;
        syy += v * v;
    }
    if sxx == 0.0 || syy == 0.0 || x.iter().all(|v| *v == x[0]) || y.iter().all(|v| *v == y[0]) {
        return Err(Error::NonFinite(
            "pearsonr: an input is constant, the correlation is not defined (scipy returns NaN)".into(),
        ));
    }
    Ok((sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0))
}

/// `accuracy_score(y_true, y_pred)`.
pub fn accuracy_score(y_true: &[i64], y_pred: &[i64]) -> Result<f64> {
    same_len(y_true.len(), y_pred.len(), "accuracy_score")?;
    Ok(y_true.iter().zip(y_pred).filter(|(a, b)| a == b).count() as f64 / y_true.len() as f64)
}

/// `f1_score(y_true, y_pred, average='weighted')`: per-label F1 over the labels of `y_true ∪ y_pred`, weighted by
/// true support; a label with no true and predicted sample has F1 = 0 (scikit-learn's `zero_division` default).
pub fn f1_weighted(y_true: &[i64], y_pred: &[i64]) -> Result<f64> {
    same_len(y_true.len(), y_pred.len(), "f1_weighted")?;
    let mut labels: Vec<i64> = y_true.iter().chain(y_pred).copied().collect();
    labels.sort_unstable();
    labels.dedup();
    let (mut num, mut den) = (0.0, 0.0);
    for &l in &labels {
        let tp = y_true.iter().zip(y_pred).filter(|(a, b)| **a == l && **b == l).count() as f64;
        let support = y_true.iter().filter(|a| **a == l).count() as f64;
        let predicted = y_pred.iter().filter(|a| **a == l).count() as f64;
        let f1 = if support + predicted > 0.0 { 2.0 * tp / (support + predicted) } else { 0.0 };
        num += f1 * support;
        den += support;
    }
    Ok(if den > 0.0 { num / den } else { 0.0 })
}

/// MovieGraphs accuracy: fraction of samples whose top-scoring class (first on ties, as numpy `argmax`) is one
/// of its true labels (`y_true` 0/1, `n × K`).
pub fn top1_in_labels(y_true: &Mat, scores: &Mat) -> Result<f64> {
    if y_true.rows != scores.rows || y_true.cols != scores.cols || y_true.rows == 0 {
        return Err(Error::Shape(format!(
            "top1_in_labels: y_true {}x{} vs scores {}x{}",
            y_true.rows, y_true.cols, scores.rows, scores.cols
        )));
    }
    let hits = (0..y_true.rows).filter(|&i| y_true.get(i, argmax(scores.row(i))) == 1.0).count();
    Ok(hits as f64 / y_true.rows as f64)
}
