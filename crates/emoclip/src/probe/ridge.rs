//! Multi-output ridge regression with intercept as scikit-learn `linear_model.Ridge(alpha, solver='cholesky')`: centre, then solve `(XᵀX + αI) W = XᵀY`.
use super::linalg::{cholesky, cholesky_solve};
use super::{dot, Mat};
use crate::{Error, Result};

/// `Ridge(alpha)` with `fit_intercept=True`.
#[derive(Debug, Clone)]
pub struct Ridge {
    pub alpha: f64,
}

impl Default for Ridge {
    fn default() -> Self {
        Self { alpha: 1.0 }
    }
}

/// Fitted ridge: `coef` is `m × d` (one row per output, like scikit-learn's `coef_`), `intercept` has `m` values.
#[derive(Debug, Clone)]
pub struct RidgeModel {
    pub coef: Mat,
    pub intercept: Vec<f64>,
}

impl Ridge {
    pub fn new(alpha: f64) -> Self {
        Self { alpha }
    }

    /// Fits `y` (`n × m`) on `x` (`n × d`).
    pub fn fit(&self, x: &Mat, y: &Mat) -> Result<RidgeModel> {
        if self.alpha.is_nan() || self.alpha <= 0.0 || !self.alpha.is_finite() {
            return Err(Error::Msg(format!("ridge: alpha must be positive and finite, got {}", self.alpha)));
        }
        if x.rows != y.rows || x.rows == 0 {
            return Err(Error::Shape(format!("ridge: {} feature rows, {} target rows", x.rows, y.rows)));
        }
        x.check_finite("ridge features")?;
        y.check_finite("ridge targets")?;
        let (n, d, m) = (x.rows, x.cols, y.cols);
        let mean = |a: &Mat| -> Vec<f64> {
            let mut s = vec![0.0; a.cols];
            for i in 0..a.rows {
                for (sj, v) in s.iter_mut().zip(a.row(i)) {
                    *sj += v;
                }
            }
            s.iter_mut().for_each(|v| *v /= a.rows as f64);
            s
        };
        let (xm, ym) = (mean(x), mean(y));
        let mut g = vec![0.0; d * d];
        let mut r = vec![0.0; d * m];
        let mut xc = vec![0.0; d];
        for i in 0..n {
            for j in 0..d {
                xc[j] = x.get(i, j) - xm[j];
            }
            for a in 0..d {
                for b in 0..=a {
                    g[a * d + b] += xc[a] * xc[b];
                }
                for o in 0..m {
                    r[a * m + o] += xc[a] * (y.get(i, o) - ym[o]);
                }
            }
        }
        for a in 0..d {
            g[a * d + a] += self.alpha;
        }
        cholesky(&mut g, d)?;
        cholesky_solve(&g, d, &mut r, m);
        let mut coef = Mat::zeros(m, d);
        for a in 0..d {
            for o in 0..m {
                coef.data[o * d + a] = r[a * m + o];
            }
        }
        let intercept = (0..m).map(|o| ym[o] - dot(&xm, coef.row(o))).collect();
        Ok(RidgeModel { coef, intercept })
    }
}

impl RidgeModel {
    /// Predictions `n × m`.
    pub fn predict(&self, x: &Mat) -> Result<Mat> {
        if x.cols != self.coef.cols {
            return Err(Error::Shape(format!("ridge model has {} features, input has {}", self.coef.cols, x.cols)));
        }
        let m = self.coef.rows;
        let mut out = Mat::zeros(x.rows, m);
        for i in 0..x.rows {
            for o in 0..m {
                out.data[i * m + o] = dot(x.row(i), self.coef.row(o)) + self.intercept[o];
            }
        }
        Ok(out)
    }
}
