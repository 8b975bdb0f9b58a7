//! Parity of `emoclip::probe` with scikit-learn 1.9.1 / scipy 1.17.1 (fixtures from `scripts/fixtures/gen_probe.py`).
//!
//! Tolerances (absolute, elementwise, about 3× the measured error; see the constants): logistic fits against the
//! exact (`lbfgs`, tol 1e-12) optimum, and 1e-3 against the official `sag` run; ridge and savgol in f64; metrics
//! computed from the same inputs agree to rounding, and so do the rank metrics of fitted models.
use std::path::PathBuf;

use crate::common;

use emoclip::probe::ovr::BinaryEstimator;
use emoclip::probe::*;
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/probe").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN) // null = NaN
}
fn vecf(v: &Value) -> Vec<f64> {
    v.as_array().expect("array").iter().map(f).collect()
}
fn veci(v: &Value) -> Vec<i64> {
    v.as_array().expect("array").iter().map(|x| x.as_i64().expect("int")).collect()
}
fn mat(v: &Value) -> Mat {
    let rows: Vec<Vec<f64>> = v.as_array().expect("rows").iter().map(vecf).collect();
    Mat::from_rows(&rows).expect("rectangular")
}

/// Coefficients and intercepts vs the exact optimum: measured max 1.32e-6 (multinomial coef).
const COEF: f64 = 4e-6;
/// Probabilities vs the exact optimum: measured max 1.93e-7.
const PROBA: f64 = 6e-7;
/// Decision values vs the exact optimum: measured max 1.54e-6.
const DECISION: f64 = 5e-6;
/// Probabilities vs the official `sag` run (its own convergence error): measured max 3.63e-4.
const SAG: f64 = 1e-3;
/// Ridge (closed form, f64): measured max 2.2e-15.
const RIDGE: f64 = 1e-14;
/// Savitzky-Golay filter (f64): measured max 7.2e-14.
const SAVGOL: f64 = 2.2e-13;
/// Metrics from the same inputs as scikit-learn: measured max 3.3e-16 (rounding).
const METRIC: f64 = 1e-15;
/// Rank metrics (AP, AUC) of the fitted models: measured max 2.2e-16 (no rank differs).
const FITTED_METRIC: f64 = 1e-15;

/// Elementwise `|a - b| <= tol` (absolute), with the measured error printed (common::assert_close_slice).
#[track_caller]
fn close(a: &[f64], b: &[f64], tol: f64, what: &str) {
    common::assert_close_slice(&format!("probe {what}"), a, b, &[a.len()], common::Tol::abs(tol));
}

#[test]
fn binary_logistic_matches_sklearn() {
    let d = fixture("binary.json");
    let x = mat(&d["x_train"]);
    let y = veci(&d["y_train"]);
    let m = LogisticRegression::new(f(&d["c"])).fit(&x, &y).unwrap();
    assert!(m.converged, "did not converge in {} iterations", m.n_iter);
    close(&m.coef.data, &vecf(&d["coef"]), COEF, "binary coef");
    close(&m.intercept, &[f(&d["intercept"])], COEF, "binary intercept");
    let xt = mat(&d["x_test"]);
    close(&m.predict_proba(&xt).unwrap().col(1), &vecf(&d["proba"]), PROBA, "binary proba");
    close(&m.decision_function(&xt).unwrap().data, &vecf(&d["decision"]), DECISION, "binary decision");
    assert_eq!(m.predict(&xt).unwrap(), veci(&d["predict"]));
}

#[test]
fn multinomial_logistic_matches_sklearn() {
    let d = fixture("multinomial.json");
    let x = mat(&d["x_train"]);
    let y = veci(&d["y_train"]);
    let m = LogisticRegression::new(f(&d["c"])).fit(&x, &y).unwrap();
    assert!(m.converged);
    assert_eq!(m.classes, veci(&d["classes"]));
    close(&m.coef.data, &mat(&d["coef"]).data, COEF, "multinomial coef");
    close(&m.intercept, &vecf(&d["intercept"]), COEF, "multinomial intercept");
    let xt = mat(&d["x_test"]);
    let p = m.predict_proba(&xt).unwrap();
    close(&p.data, &mat(&d["proba"]).data, PROBA, "multinomial proba");
    close(&p.data, &mat(&d["proba_sag"]).data, SAG, "multinomial proba vs official sag");
    close(&m.decision_function(&xt).unwrap().data, &mat(&d["decision"]).data, DECISION, "multinomial decision");
    let pred = m.predict(&xt).unwrap();
    assert_eq!(pred, veci(&d["predict"]));
    let yt = veci(&d["y_test"]);
    close(&[accuracy_score(&yt, &pred).unwrap()], &[f(&d["accuracy"])], METRIC, "MELD accuracy");
    close(&[f1_weighted(&yt, &pred).unwrap()], &[f(&d["f1_weighted"])], METRIC, "MELD weighted F1");
}

#[test]
fn one_vs_rest_matches_sklearn_including_constant_class() {
    let d = fixture("ovr.json");
    let x = mat(&d["x_train"]);
    let y = mat(&d["y_train"]);
    let m = OneVsRest::new(LogisticRegression::new(f(&d["c"]))).fit(&x, &y).unwrap();
    // label 4 never positive in training: sklearn warns "Label not 4 is present in all training examples"
    assert!(d["warnings"][0].as_str().unwrap().contains("Label not 4"));
    assert_eq!(m.constant_classes, vec![4]);
    assert!(matches!(m.estimators[4], BinaryEstimator::Constant(c) if c == 0.0));
    for (k, e) in m.estimators.iter().enumerate().take(4) {
        let BinaryEstimator::Fitted(e) = e else { panic!("class {k} not fitted") };
        close(&e.coef.data, &vecf(&d["coef"][k]), COEF, &format!("ovr coef {k}"));
        close(&e.intercept, &[f(&d["intercept"][k])], COEF, &format!("ovr intercept {k}"));
    }
    let xt = mat(&d["x_test"]);
    let p = m.predict_proba(&xt).unwrap();
    close(&p.data, &mat(&d["proba"]).data, PROBA, "ovr proba");
    close(&p.data, &mat(&d["proba_sag"]).data, SAG, "ovr proba vs official sag");
    close(&m.decision_function(&xt).unwrap().data, &mat(&d["decision"]).data, DECISION, "ovr decision");
    assert_eq!(m.predict(&xt).unwrap().data, mat(&d["predict"]).data);

    let yt = mat(&d["y_test"]);
    let ap = average_precision_macro(&yt, &p).unwrap();
    close(&[ap.sklearn], &[f(&d["ap_macro"])], FITTED_METRIC, "ovr macro AP");
    let ap_cls: Vec<f64> = ap.per_class.iter().map(|v| v.unwrap()).collect();
    close(&ap_cls, &vecf(&d["ap_per_class"]), FITTED_METRIC, "ovr AP per class");
    let auc = roc_auc_macro(&yt, &p).unwrap();
    assert!(auc.undefined.is_empty());
    close(
        &auc.per_class.iter().map(|v| v.unwrap()).collect::<Vec<_>>(),
        &vecf(&d["auc_per_class"]),
        FITTED_METRIC,
        "ovr AUC",
    );
    let first4 = Mat::from_rows(&(0..yt.rows).map(|i| yt.row(i)[..4].to_vec()).collect::<Vec<_>>()).unwrap();
    let p4 = Mat::from_rows(&(0..p.rows).map(|i| p.row(i)[..4].to_vec()).collect::<Vec<_>>()).unwrap();
    close(
        &[roc_auc_macro(&first4, &p4).unwrap().sklearn],
        &[f(&d["auc_macro_first4"])],
        FITTED_METRIC,
        "ovr macro AUC",
    );
    close(&[top1_in_labels(&yt, &p).unwrap()], &[f(&d["top1_in_labels"])], METRIC, "MovieGraphs top-1");
}

#[test]
fn ridge_matches_sklearn() {
    let d = fixture("ridge.json");
    let x = mat(&d["x_train"]);
    let y = mat(&d["y_train"]);
    let m = Ridge::new(f(&d["alpha"])).fit(&x, &y).unwrap();
    close(&m.coef.data, &mat(&d["coef"]).data, RIDGE, "ridge coef");
    close(&m.intercept, &vecf(&d["intercept"]), RIDGE, "ridge intercept");
    let p = m.predict(&mat(&d["x_test"])).unwrap();
    close(&p.data, &mat(&d["predict"]).data, RIDGE, "ridge predict");
    let yt = mat(&d["y_test"]);
    close(&[r2_score(&yt, &p).unwrap()], &[f(&d["r2"])], RIDGE, "ridge R2");
    close(&[mean_squared_error(&yt.data, &p.data).unwrap()], &[f(&d["mse"])], RIDGE, "ridge MSE");
}

#[test]
fn savgol_matches_scipy() {
    let d = fixture("savgol.json");
    let x = vecf(&d["x"]);
    let cases = d["cases"].as_object().unwrap();
    assert!(cases.contains_key("100_3"), "the LIRIS-ACCEDE setting must be covered");
    for (key, want) in cases {
        let (w, p) = key.split_once('_').unwrap();
        let got = savgol_filter(&x, w.parse().unwrap(), p.parse().unwrap()).unwrap();
        close(&got, &vecf(want), SAVGOL, &format!("savgol {key}"));
    }
    assert!(savgol_filter(&x[..50], 100, 3).is_err(), "window longer than signal");
    assert!(savgol_filter(&x, 5, 5).is_err(), "polyorder >= window");
}

#[test]
fn metrics_match_sklearn_with_ties_and_edge_cases() {
    let d = fixture("metrics.json");
    let y = mat(&d["y"]);
    let s = mat(&d["s"]);
    // per-class AP with ties; class 3 has no positive: sklearn returns 0.0 (with a warning)
    let ap_want = vecf(&d["ap"]);
    for (k, &want) in ap_want[..4].iter().enumerate() {
        let v = average_precision_score(&y.col(k), &s.col(k)).unwrap();
        close(&[v], &[want], METRIC, &format!("AP class {k}"));
    }
    let ap = average_precision_macro(&y, &s).unwrap();
    close(&[ap.sklearn], &[f(&d["ap_macro"])], METRIC, "AP macro (sklearn, no-positive class = 0)");
    assert_eq!(ap.undefined, vec![3]);
    close(&[ap.defined_mean], &[ap_want[..3].iter().sum::<f64>() / 3.0], METRIC, "AP macro over defined");

    // ROC AUC: class 3 undefined -> error for the binary call, NaN in the sklearn macro, skipped in defined_mean
    let auc_want = vecf(&d["auc"]);
    for (k, &want) in auc_want[..3].iter().enumerate() {
        close(&[roc_auc_score(&y.col(k), &s.col(k)).unwrap()], &[want], METRIC, &format!("AUC class {k}"));
    }
    assert!(auc_want[3].is_nan());
    let err = roc_auc_score(&y.col(3), &s.col(3)).unwrap_err().to_string();
    assert!(err.contains("only one class"), "{err}");
    let auc = roc_auc_macro(&y, &s).unwrap();
    assert!(auc.sklearn.is_nan() && f(&d["auc_macro"]).is_nan());
    assert_eq!(auc.undefined, vec![3]);
    close(&[auc.defined_mean], &[f(&d["auc_macro_defined"])], METRIC, "AUC macro over defined");

    let (a, b) = (vecf(&d["a"]), vecf(&d["b"]));
    close(&[pearsonr(&a, &b).unwrap()], &[f(&d["pearson"])], METRIC, "pearsonr");
    assert!(f(&d["pearson_const"]).is_nan());
    assert!(pearsonr(&[1.0; 10], &(0..10).map(|v| v as f64).collect::<Vec<_>>()).is_err());
    close(&[mean_squared_error(&a, &b).unwrap()], &[f(&d["mse"])], METRIC, "mse");
    let col = |v: &[f64]| Mat::new(v.len(), 1, v.to_vec()).unwrap();
    close(&[r2_score(&col(&a), &col(&b)).unwrap()], &[f(&d["r2"])], METRIC, "r2");
    let five: Vec<f64> = (0..5).map(|v| v as f64).collect();
    close(&[r2_score(&col(&[1.0; 5]), &col(&five)).unwrap()], &[f(&d["r2_const_true"])], 0.0, "r2 constant y_true");
    close(&[r2_score(&col(&[1.0; 5]), &col(&[1.0; 5])).unwrap()], &[f(&d["r2_const_exact"])], 0.0, "r2 exact const");

    let (yt, yp) = (veci(&d["y_true_cls"]), veci(&d["y_pred_cls"]));
    close(&[accuracy_score(&yt, &yp).unwrap()], &[f(&d["accuracy"])], METRIC, "accuracy");
    close(&[f1_weighted(&yt, &yp).unwrap()], &[f(&d["f1_weighted"])], METRIC, "weighted F1 (extra predicted label)");
    close(&[top1_in_labels(&y, &mat(&d["top1_scores"])).unwrap()], &[f(&d["top1"])], METRIC, "top-1 (argmax tie)");
}

#[test]
fn shape_and_label_errors_are_reported() {
    let x = Mat::new(4, 2, vec![0.0, 1.0, 1.0, 0.0, 0.5, 0.5, 1.0, 1.0]).unwrap();
    assert!(Mat::new(3, 2, vec![0.0; 5]).is_err());
    assert!(LogisticRegression::new(1.0).fit(&x, &[1, 1, 1, 1]).is_err(), "single class");
    assert!(LogisticRegression::new(1.0).fit(&x, &[0, 1, 1]).is_err(), "label count");
    assert!(LogisticRegression::new(-1.0).fit(&x, &[0, 1, 1, 0]).is_err(), "negative C");
    let bad = Mat::new(4, 1, vec![0.0, 2.0, 1.0, 0.0]).unwrap();
    assert!(OneVsRest::default().fit(&x, &bad).is_err(), "non 0/1 labels");
    let nan = Mat::new(4, 2, vec![f64::NAN; 8]).unwrap();
    assert!(LogisticRegression::new(1.0).fit(&nan, &[0, 1, 1, 0]).is_err());
    assert!(average_precision_score(&[0.0, 1.0], &[0.5]).is_err());
    assert!(accuracy_score(&[], &[]).is_err());
}

#[test]
fn c_search_is_seeded_and_picks_the_best() {
    let s = CSearch { n_trials: 16, seed: 7, ..Default::default() };
    let c = s.candidates();
    assert_eq!(c, s.candidates(), "deterministic");
    assert!(c.iter().all(|&v| (1e-3..=1e3).contains(&v)));
    assert_ne!(c, CSearch { seed: 8, ..s.clone() }.candidates());
    // score peaks at C = 1 in log space
    let r = s.run(|c| Ok(-(c.ln()).powi(2))).unwrap();
    let best = c.iter().cloned().min_by(|a, b| a.ln().abs().total_cmp(&b.ln().abs())).unwrap();
    assert_eq!(r.best_c, best);
    assert_eq!(r.trials.len(), 16);
    assert!(s.run(|_| Ok(f64::NAN)).is_err());

    // real use: validation mAP of an OvR probe on a held-out part of the fixture's train set
    let d = fixture("ovr.json");
    let (x, y) = (mat(&d["x_train"]), mat(&d["y_train"]));
    let (tr, va) = holdout_split(x.rows, 0.2, 3).unwrap();
    assert_eq!((tr.len(), va.len()), (240, 60));
    assert_eq!(holdout_split(x.rows, 0.2, 3).unwrap().1, va);
    let mut all: Vec<usize> = tr.iter().chain(&va).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..x.rows).collect::<Vec<_>>());
    let (xtr, ytr, xva, yva) = (
        x.select_rows(&tr).unwrap(),
        y.select_rows(&tr).unwrap(),
        x.select_rows(&va).unwrap(),
        y.select_rows(&va).unwrap(),
    );
    let r = CSearch { n_trials: 4, seed: 1, ..Default::default() }
        .run(|c| {
            let m = OneVsRest::new(LogisticRegression::new(c)).fit(&xtr, &ytr)?;
            Ok(average_precision_macro(&yva, &m.predict_proba(&xva)?)?.sklearn)
        })
        .unwrap();
    assert!(r.best_score > 0.5 && r.best_score <= 1.0, "{r:?}");
}

#[test]
fn unreachable_tolerance_stops_on_rounding_instead_of_looping() {
    // tol = 0 can never be met; the scipy-style ftol test (64 eps relative decrease) must end the run
    let d = fixture("binary.json");
    let (x, y) = (mat(&d["x_train"]), veci(&d["y_train"]));
    let lr = LogisticRegression { c: f(&d["c"]), tol: 0.0, max_iter: 100_000, fit_intercept: true };
    let m = lr.fit(&x, &y).unwrap();
    assert!(m.converged && m.n_iter < 1000, "n_iter {}", m.n_iter);
    close(&m.coef.data, &vecf(&d["coef"]), COEF, "binary coef (tol 0)");
}
