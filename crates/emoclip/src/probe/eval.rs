//! Linear-probe evaluation of a feature matrix over a [`Manifest`], as EmotionCLIP `linear_eval.py` with scikit-learn: fit on train, pick C on val, refit, score val and test.
use super::manifest::{Label, Manifest, Split, Task};
use super::ovr::BinaryEstimator;
use super::{
    accuracy_score, average_precision_macro, f1_weighted, holdout_split, mean_squared_error, pearsonr, r2_score,
    roc_auc_macro, savgol_filter, top1_in_labels, CSearch, LogisticRegression, Mat, OneVsRest, Ridge,
};
use super::{LogisticModel, OneVsRestModel, RidgeModel};
use crate::encoder::EncoderId;
use crate::head::{FeatureNorm, FeatureSpec, Head, HeadTask, HEAD_FORMAT, HEAD_VERSION};
use crate::{Error, Result};

/// Validation score of a C (higher is better).
type ScoreFn<'a> = dyn Fn(f64) -> Result<f64> + Sync + 'a;
/// (C, how it was chosen, search trials).
type Chosen = (f64, String, Vec<(f64, f64)>);

/// Evaluation options.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Fixed C (skips the search).
    pub c: Option<f64>,
    pub search: CSearch,
    /// Hold-out fraction of train used for the search when there is no val split.
    pub val_fraction: f64,
    /// Savitzky–Golay smoothing of regression predictions over the concatenated test vector: (window, polyorder).
    pub savgol: Option<(usize, usize)>,
    /// Ridge alpha (regression).
    pub alpha: f64,
    /// Multi-label: also report the MovieGraphs "Affect2MM accuracy" (top-1 class among the true labels,
    /// `accuracy_from_affect2mm` of `linear_eval.py`) and tune C on it instead of mAP.
    pub top1_in_labels: bool,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self { c: None, search: CSearch::default(), val_fraction: 0.2, savgol: None, alpha: 1.0, top1_in_labels: false }
    }
}

/// Per-class values of one split (None where undefined).
#[derive(Debug, Clone, PartialEq)]
pub struct PerClass {
    pub metric: String,
    pub split: String,
    pub values: Vec<Option<f64>>,
}

/// Outcome of [`evaluate`].
#[derive(Debug, Clone)]
pub struct ProbeResult {
    pub task: Task,
    /// Class names (classification) or target names (regression): the labels of [`PerClass::values`].
    pub names: Vec<String>,
    /// The C used for the final fit (None for regression).
    pub c: Option<f64>,
    /// How C was chosen.
    pub c_source: String,
    /// (C, validation score) of every search trial.
    pub trials: Vec<(f64, f64)>,
    /// Items per split (train, val, test).
    pub counts: [usize; 3],
    /// Reported splits, in column order.
    pub splits: Vec<String>,
    /// Rows: (metric, one value per reported split).
    pub metrics: Vec<(String, Vec<f64>)>,
    pub per_class: Vec<PerClass>,
    pub notes: Vec<String>,
    /// The classifier / regressor of the final fit (on train, with the chosen C): what `--save-head` writes.
    pub fitted: Option<FittedLinear>,
}

/// The parameters of a fitted linear model, in scikit-learn's layout (`coef_`, `intercept_`).
#[derive(Debug, Clone, PartialEq)]
pub struct FittedLinear {
    pub task: HeadTask,
    /// Names of the rows' outputs: the classes seen in training (logistic), every class (one-vs-rest) or
    /// every target (ridge).
    pub labels: Vec<String>,
    pub coef: Vec<Vec<f64>>,
    pub intercept: Vec<f64>,
    /// One-vs-rest: per class, the constant probability of a class with one label value in train.
    pub constant: Option<Vec<Option<f64>>>,
    /// Feature dimension.
    pub dim: usize,
}

impl FittedLinear {
    /// A multinomial / binary logistic model: its rows are the classes present in train (`names[class]`).
    pub fn logistic(m: &LogisticModel, names: &[String]) -> Result<Self> {
        let labels = m
            .classes
            .iter()
            .map(|&c| names.get(c as usize).cloned().ok_or_else(|| Error::Msg(format!("class index {c} has no name"))))
            .collect::<Result<_>>()?;
        Ok(Self {
            task: HeadTask::Logistic,
            labels,
            coef: (0..m.coef.rows).map(|i| m.coef.row(i).to_vec()).collect(),
            intercept: m.intercept.clone(),
            constant: None,
            dim: m.coef.cols,
        })
    }

    /// A one-vs-rest model: one row per class; a constant predictor gets a zero row and its constant.
    pub fn one_vs_rest(m: &OneVsRestModel, names: &[String]) -> Self {
        let d = m.n_features;
        let (mut coef, mut intercept, mut constant) = (vec![], vec![], vec![]);
        for e in &m.estimators {
            match e {
                BinaryEstimator::Fitted(b) => {
                    coef.push(b.coef.row(0).to_vec());
                    intercept.push(b.intercept[0]);
                    constant.push(None);
                }
                BinaryEstimator::Constant(c) => {
                    coef.push(vec![0.0; d]);
                    intercept.push(0.0);
                    constant.push(Some(*c));
                }
            }
        }
        let constant = constant.iter().any(Option::is_some).then_some(constant);
        Self { task: HeadTask::OneVsRest, labels: names.to_vec(), coef, intercept, constant, dim: d }
    }

    /// A multi-output ridge regression: one row per target.
    pub fn ridge(m: &RidgeModel, names: &[String]) -> Self {
        Self {
            task: HeadTask::Ridge,
            labels: names.to_vec(),
            coef: (0..m.coef.rows).map(|i| m.coef.row(i).to_vec()).collect(),
            intercept: m.intercept.clone(),
            constant: None,
            dim: m.coef.cols,
        }
    }
}

impl ProbeResult {
    /// The saved-head form of the final fit, for features of `encoder` (L2-normalised, as the probe's).
    /// `name` prefixes the score columns in `analyze` (e.g. `meld/emotion`).
    pub fn head(&self, name: &str, encoder: EncoderId) -> Result<Head> {
        let f = self.fitted.as_ref().ok_or_else(|| Error::Msg(format!("{name}: no fitted model to save")))?;
        let mut fit = std::collections::BTreeMap::new();
        if let Some(c) = self.c {
            fit.insert("C".to_string(), serde_json::json!(c));
        }
        fit.insert("C_source".to_string(), serde_json::json!(self.c_source));
        fit.insert("n_train".to_string(), serde_json::json!(self.counts[0]));
        for (split, v) in self.splits.iter().zip(0..) {
            let metrics: serde_json::Map<String, serde_json::Value> =
                self.metrics.iter().map(|(m, vals)| (m.clone(), serde_json::json!(vals[v]))).collect();
            fit.insert(format!("metrics_{split}"), serde_json::Value::Object(metrics));
        }
        if !self.notes.is_empty() {
            fit.insert("notes".to_string(), serde_json::json!(self.notes));
        }
        Ok(Head {
            format: HEAD_FORMAT.into(),
            version: HEAD_VERSION,
            name: name.to_string(),
            task: f.task,
            labels: f.labels.clone(),
            coef: f.coef.clone(),
            intercept: f.intercept.clone(),
            constant: f.constant.clone(),
            features: FeatureSpec { normalize: FeatureNorm::L2, dim: f.dim },
            encoder,
            fit,
        })
    }
}

impl ProbeResult {
    /// The value of `metric` on `split`.
    pub fn get(&self, metric: &str, split: &str) -> Option<f64> {
        let j = self.splits.iter().position(|s| s == split)?;
        self.metrics.iter().find(|(m, _)| m == metric).map(|(_, v)| v[j])
    }
}

fn indices(m: &Manifest, s: Split) -> Vec<usize> {
    m.items.iter().enumerate().filter(|(_, it)| it.split == s).map(|(i, _)| i).collect()
}

fn class_labels(m: &Manifest, idx: &[usize]) -> Result<Vec<i64>> {
    idx.iter()
        .map(|&i| match &m.items[i].label {
            Label::Class(c) => Ok(*c as i64),
            _ => Err(Error::Msg(format!("manifest row {}: not a single-label item", m.items[i].row))),
        })
        .collect()
}

fn multi_labels(m: &Manifest, idx: &[usize]) -> Result<Mat> {
    let k = m.classes.len();
    let mut y = Mat::zeros(idx.len(), k);
    for (r, &i) in idx.iter().enumerate() {
        match &m.items[i].label {
            Label::Classes(v) => v.iter().for_each(|&c| y.data[r * k + c] = 1.0),
            _ => return Err(Error::Msg(format!("manifest row {}: not a multi-label item", m.items[i].row))),
        }
    }
    Ok(y)
}

fn targets(m: &Manifest, idx: &[usize]) -> Result<Mat> {
    let rows: Vec<Vec<f64>> = idx
        .iter()
        .map(|&i| match &m.items[i].label {
            Label::Targets(v) => Ok(v.clone()),
            _ => Err(Error::Msg(format!("manifest row {}: not a regression item", m.items[i].row))),
        })
        .collect::<Result<_>>()?;
    let mut y = Mat::from_rows(&rows)?;
    y.cols = m.targets.len();
    Ok(y)
}

/// Per-class F1 (`f1_score(average=None, labels=0..k)`, zero_division 0).
pub fn f1_per_class(y_true: &[i64], y_pred: &[i64], k: usize) -> Vec<Option<f64>> {
    (0..k as i64)
        .map(|c| {
            let tp = y_true.iter().zip(y_pred).filter(|(t, p)| **t == c && **p == c).count() as f64;
            let t = y_true.iter().filter(|t| **t == c).count() as f64;
            let p = y_pred.iter().filter(|p| **p == c).count() as f64;
            if t == 0.0 {
                None
            } else if t + p == 0.0 {
                Some(0.0)
            } else {
                Some(2.0 * tp / (t + p))
            }
        })
        .collect()
}

/// The rows of each split and where C is tuned.
struct Splits {
    train: Vec<usize>,
    /// Reported splits: (name, rows), val then test, those present.
    report: Vec<(String, Vec<usize>)>,
    /// Rows fitted and scored while searching C, and how that split was made.
    search_fit: Vec<usize>,
    search_val: Vec<usize>,
    search_src: String,
}

impl Splits {
    /// Val (when present) scores the C search; without it, a seeded hold-out of train does.
    fn new(m: &Manifest, opts: &EvalOptions) -> Result<Self> {
        let tr = indices(m, Split::Train);
        let va = indices(m, Split::Val);
        let te = indices(m, Split::Test);
        let mut report: Vec<(String, Vec<usize>)> = Vec::new();
        if !va.is_empty() {
            report.push(("val".into(), va.clone()));
        }
        if !te.is_empty() {
            report.push(("test".into(), te.clone()));
        }
        let (search_fit, search_val, search_src) = if !va.is_empty() {
            (tr.clone(), va, "random search on val".to_string())
        } else {
            let (a, b) = holdout_split(tr.len(), opts.val_fraction, opts.search.seed)?;
            (
                a.iter().map(|&i| tr[i]).collect::<Vec<_>>(),
                b.iter().map(|&i| tr[i]).collect::<Vec<_>>(),
                format!("random search on a {:.0}% hold-out of train (no val split)", opts.val_fraction * 100.0),
            )
        };
        Ok(Self { train: tr, report, search_fit, search_val, search_src })
    }

    /// `opts.c`, or the best C of a random search scored by `score`: (C, how it was chosen, trials).
    fn choose_c(&self, opts: &EvalOptions, score: &ScoreFn) -> Result<Chosen> {
        match opts.c {
            Some(c) => Ok((c, "fixed (--c)".into(), vec![])),
            None => {
                let r = opts.search.run(score)?;
                Ok((r.best_c, format!("{}, {} trials", self.search_src, opts.search.n_trials), r.trials))
            }
        }
    }
}

fn push(out: &mut ProbeResult, name: &str, vals: Vec<f64>) {
    out.metrics.push((name.to_string(), vals));
}

/// Fits on train, chooses C (search on val, or on a hold-out of train without val, or `opts.c`), refits on
/// train, and reports on val and test. `x` has one row per `m.items` entry.
pub fn evaluate(m: &Manifest, x: &Mat, opts: &EvalOptions) -> Result<ProbeResult> {
    if x.rows != m.items.len() {
        return Err(Error::Shape(format!("{} feature rows for {} manifest items", x.rows, m.items.len())));
    }
    x.check_finite("probe features")?;
    m.check_splits()?;
    let sp = Splits::new(m, opts)?;
    let mut out = ProbeResult {
        task: m.task,
        names: if m.task == Task::Regression { m.targets.clone() } else { m.classes.clone() },
        c: None,
        c_source: String::new(),
        trials: vec![],
        counts: [sp.train.len(), m.count(Split::Val), m.count(Split::Test)],
        splits: sp.report.iter().map(|r| r.0.clone()).collect(),
        metrics: vec![],
        per_class: vec![],
        notes: vec![],
        fitted: None,
    };
    match m.task {
        Task::Single => single_label(m, x, opts, &sp, &mut out)?,
        Task::Multi => multi_label(m, x, opts, &sp, &mut out)?,
        Task::Regression => regression(m, x, opts, &sp, &mut out)?,
    }
    Ok(out)
}

/// Multinomial logistic regression: accuracy and weighted F1, per-class F1.
fn single_label(m: &Manifest, x: &Mat, opts: &EvalOptions, sp: &Splits, out: &mut ProbeResult) -> Result<()> {
    let (xf, xv) = (x.select_rows(&sp.search_fit)?, x.select_rows(&sp.search_val)?);
    let (yf, yv) = (class_labels(m, &sp.search_fit)?, class_labels(m, &sp.search_val)?);
    let (c, src, trials) = sp.choose_c(opts, &|c| {
        let model = LogisticRegression::new(c).fit(&xf, &yf)?;
        accuracy_score(&yv, &model.predict(&xv)?)
    })?;
    let model = LogisticRegression::new(c).fit(&x.select_rows(&sp.train)?, &class_labels(m, &sp.train)?)?;
    if !model.converged {
        out.notes.push(format!("logistic regression did not converge in {} iterations", model.n_iter));
    }
    let (mut acc, mut f1) = (vec![], vec![]);
    for (name, idx) in &sp.report {
        let yt = class_labels(m, idx)?;
        let yp = model.predict(&x.select_rows(idx)?)?;
        acc.push(accuracy_score(&yt, &yp)? * 100.0);
        f1.push(f1_weighted(&yt, &yp)? * 100.0);
        out.per_class.push(PerClass {
            metric: "F1".into(),
            split: name.clone(),
            values: f1_per_class(&yt, &yp, m.classes.len()).into_iter().map(|v| v.map(|f| f * 100.0)).collect(),
        });
    }
    push(out, "Accuracy", acc);
    push(out, "F1 (weighted)", f1);
    (out.c, out.c_source, out.trials) = (Some(c), src, trials);
    out.fitted = Some(FittedLinear::logistic(&model, &m.classes)?);
    Ok(())
}

/// One-vs-rest logistic regression: mAP and ROC-AUC (macro and over the classes where they are defined),
/// per-class AP and ROC-AUC, and with `top1_in_labels` the MovieGraphs accuracy (also what C is tuned on).
fn multi_label(m: &Manifest, x: &Mat, opts: &EvalOptions, sp: &Splits, out: &mut ProbeResult) -> Result<()> {
    let (xf, xv) = (x.select_rows(&sp.search_fit)?, x.select_rows(&sp.search_val)?);
    let (yf, yv) = (multi_labels(m, &sp.search_fit)?, multi_labels(m, &sp.search_val)?);
    let (c, src, trials) = sp.choose_c(opts, &|c| {
        let model = OneVsRest::new(LogisticRegression::new(c)).fit(&xf, &yf)?;
        let p = model.predict_proba(&xv)?;
        if opts.top1_in_labels {
            top1_in_labels(&yv, &p)
        } else {
            Ok(average_precision_macro(&yv, &p)?.sklearn)
        }
    })?;
    let model =
        OneVsRest::new(LogisticRegression::new(c)).fit(&x.select_rows(&sp.train)?, &multi_labels(m, &sp.train)?)?;
    if !model.constant_classes.is_empty() {
        let names: Vec<&str> = model.constant_classes.iter().map(|&k| m.classes[k].as_str()).collect();
        out.notes.push(format!(
            "class(es) with a single label value in train (constant predictor, as scikit-learn): {}",
            names.join(", ")
        ));
    }
    let (mut map, mut map_def, mut auc, mut und_ap, mut und_auc) = (vec![], vec![], vec![], vec![], vec![]);
    let mut top1 = vec![];
    for (name, idx) in &sp.report {
        let yt = multi_labels(m, idx)?;
        let p = model.predict_proba(&x.select_rows(idx)?)?;
        let ap = average_precision_macro(&yt, &p)?;
        let au = roc_auc_macro(&yt, &p)?;
        if opts.top1_in_labels {
            top1.push(top1_in_labels(&yt, &p)? * 100.0);
        }
        map.push(ap.sklearn * 100.0);
        map_def.push(ap.defined_mean * 100.0);
        auc.push(au.defined_mean * 100.0);
        und_ap.push(ap.undefined.len() as f64);
        und_auc.push(au.undefined.len() as f64);
        for (metric, s) in [("AP", &ap), ("ROC-AUC", &au)] {
            out.per_class.push(PerClass {
                metric: metric.into(),
                split: name.clone(),
                values: s.per_class.iter().map(|v| v.map(|f| f * 100.0)).collect(),
            });
            if !s.undefined.is_empty() {
                let names: Vec<&str> = s.undefined.iter().map(|&k| m.classes[k].as_str()).collect();
                out.notes.push(format!("{name}: {metric} undefined for {}", names.join(", ")));
            }
        }
    }
    if opts.top1_in_labels {
        push(out, "Accuracy (top-1 in labels)", top1);
    }
    push(out, "mAP (macro)", map);
    push(out, "mAP (defined classes)", map_def);
    push(out, "ROC-AUC (defined classes)", auc);
    push(out, "classes without AP", und_ap);
    push(out, "classes without ROC-AUC", und_auc);
    (out.c, out.c_source, out.trials) = (Some(c), src, trials);
    out.fitted = Some(FittedLinear::one_vs_rest(&model, &m.classes));
    Ok(())
}

/// Ridge regression with a fixed alpha (optionally Savitzky–Golay-smoothed predictions): R², and per target
/// MSE and Pearson r (with their means over targets, as `linear_eval.py` prints for LIRIS-ACCEDE).
fn regression(m: &Manifest, x: &Mat, opts: &EvalOptions, sp: &Splits, out: &mut ProbeResult) -> Result<()> {
    if opts.c.is_some() {
        out.notes.push("--c is ignored for regression (Ridge with a fixed alpha)".into());
    }
    let model = Ridge::new(opts.alpha).fit(&x.select_rows(&sp.train)?, &targets(m, &sp.train)?)?;
    out.c_source = format!("Ridge(alpha={}), no search", opts.alpha);
    out.fitted = Some(FittedLinear::ridge(&model, &m.targets));
    let t = m.targets.len();
    let mut r2 = vec![];
    let mut mse = vec![vec![]; t];
    let mut pr = vec![vec![]; t];
    for (name, idx) in &sp.report {
        let yt = targets(m, idx)?;
        let mut yp = model.predict(&x.select_rows(idx)?)?;
        if let Some((w, p)) = opts.savgol {
            smooth(&mut yp, w, p, name, idx.len())?;
        }
        r2.push(r2_score(&yt, &yp)?);
        let mut rs = vec![];
        for j in 0..t {
            mse[j].push(mean_squared_error(&yt.col(j), &yp.col(j))?);
            let r = pearsonr(&yt.col(j), &yp.col(j)).unwrap_or(f64::NAN);
            pr[j].push(r);
            rs.push(r.is_finite().then_some(r));
        }
        out.per_class.push(PerClass { metric: "Pearson r".into(), split: name.clone(), values: rs });
    }
    if let Some((w, p)) = opts.savgol {
        out.notes.push(format!("predictions smoothed with savgol_filter(window={w}, polyorder={p}) per split"));
    }
    push(out, "R2 (uniform average)", r2);
    let mean_over = |v: &[Vec<f64>]| -> Vec<f64> {
        (0..sp.report.len()).map(|s| v.iter().map(|x| x[s]).sum::<f64>() / v.len() as f64).collect()
    };
    let (mse_mean, pr_mean) = (mean_over(&mse), mean_over(&pr));
    for (j, n) in m.targets.iter().enumerate() {
        push(out, &format!("MSE {n}"), std::mem::take(&mut mse[j]));
    }
    for (j, n) in m.targets.iter().enumerate() {
        push(out, &format!("Pearson r {n}"), std::mem::take(&mut pr[j]));
    }
    if t > 1 {
        // The averages `linear_eval.py` prints for LIRIS-ACCEDE.
        push(out, "MSE (mean)", mse_mean);
        push(out, "Pearson r (mean)", pr_mean);
    }
    Ok(())
}

/// Smooths every target column of the predictions `yp` of one split with `savgol_filter(window, polyorder)`.
fn smooth(yp: &mut Mat, window: usize, polyorder: usize, split: &str, n: usize) -> Result<()> {
    let t = yp.cols;
    for j in 0..t {
        let s = savgol_filter(&yp.col(j), window, polyorder).map_err(|e| {
            Error::Msg(format!("{split} split ({n} item(s)): {e}; use a smaller Savitzky–Golay window (--savgol)"))
        })?;
        for (i, v) in s.into_iter().enumerate() {
            yp.data[i * t + j] = v;
        }
    }
    Ok(())
}
