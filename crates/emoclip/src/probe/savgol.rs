//! Savitzky–Golay smoothing as scipy `signal.savgol_filter(x, window_length, polyorder)` with the defaults `deriv=0`, `mode='interp'`.
use super::linalg::{cholesky, cholesky_solve};
use crate::{Error, Result};

/// Least-squares polynomial weights: `w[j]` such that `Σ_j w[j] x[j]` is the degree-`p` fit through
/// `(j, x[j])`, `j = 0..window`, evaluated at each position in `at`.
fn fit_weights(window: usize, p: usize, at: &[f64]) -> Result<Vec<Vec<f64>>> {
    let q = p + 1;
    let c = (window as f64 - 1.0) / 2.0;
    let s = c.max(1.0); // scale positions to [-1, 1] for conditioning
    let u: Vec<f64> = (0..window).map(|j| (j as f64 - c) / s).collect();
    let pow = |v: f64| -> Vec<f64> { (0..q).map(|e| v.powi(e as i32)).collect() };
    let rows: Vec<Vec<f64>> = u.iter().map(|&v| pow(v)).collect();
    let mut g = vec![0.0; q * q];
    for r in &rows {
        for a in 0..q {
            for b in 0..q {
                g[a * q + b] += r[a] * r[b];
            }
        }
    }
    cholesky(&mut g, q)?;
    at.iter()
        .map(|&t| {
            let mut e = pow((t - c) / s);
            cholesky_solve(&g, q, &mut e, 1); // (AᵀA)⁻¹ φ(t)
            Ok(rows.iter().map(|r| r.iter().zip(&e).map(|(a, b)| a * b).sum()).collect())
        })
        .collect()
}

/// `scipy.signal.savgol_filter(x, window, polyorder)` (mode `'interp'`, `deriv=0`).
///
/// Interior samples are the window's least-squares polynomial evaluated at its centre `(window-1)/2` (for
/// even windows scipy's half-sample centre, aligned as scipy aligns it: the window of output `i` starts at
/// `i - (window-1)/2`, integer division). The first and last `window/2` samples are replaced by a degree
/// `polyorder` fit to the first / last `window` samples, as scipy's `_fit_edges_polyfit`.
/// Errors, as scipy: `polyorder >= window`, or `window > x.len()`.
pub fn savgol_filter(x: &[f64], window: usize, polyorder: usize) -> Result<Vec<f64>> {
    let n = x.len();
    if window == 0 || polyorder >= window {
        return Err(Error::Msg(format!(
            "savgol_filter: polyorder ({polyorder}) must be less than window_length ({window})"
        )));
    }
    if window > n {
        return Err(Error::Shape(format!(
            "savgol_filter: mode 'interp' needs window_length ({window}) <= signal length ({n})"
        )));
    }
    super::check_finite(x, "savgol_filter input")?;
    let centre = (window as f64 - 1.0) / 2.0;
    let h = fit_weights(window, polyorder, &[centre])?.remove(0);
    let shift = (window - 1) / 2;
    let half = window / 2;
    let mut y = vec![0.0; n];
    for (i, yi) in y.iter_mut().enumerate().take(n - half).skip(half) {
        let s = i - shift;
        *yi = h.iter().zip(&x[s..s + window]).map(|(a, b)| a * b).sum();
    }
    let left: Vec<f64> = (0..half).map(|t| t as f64).collect();
    let right: Vec<f64> = (window - half..window).map(|t| t as f64).collect();
    let wl = fit_weights(window, polyorder, &left)?;
    let wr = fit_weights(window, polyorder, &right)?;
    for (i, w) in wl.iter().enumerate() {
        y[i] = w.iter().zip(&x[..window]).map(|(a, b)| a * b).sum();
    }
    for (i, w) in wr.iter().enumerate() {
        y[n - half + i] = w.iter().zip(&x[n - window..]).map(|(a, b)| a * b).sum();
    }
    Ok(y)
}
