//! Dense symmetric positive-definite solves (Cholesky), as LAPACK `potrf`/`potrs` used by scikit-learn `Ridge(solver='cholesky')`.
use crate::{Error, Result};

/// In-place lower Cholesky factor of the `n × n` row-major SPD matrix `a` (upper triangle left untouched).
pub fn cholesky(a: &mut [f64], n: usize) -> Result<()> {
    if a.len() != n * n {
        return Err(Error::Shape(format!("cholesky: {} values for a {n}x{n} matrix", a.len())));
    }
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k];
        }
        if d.is_nan() || d <= 0.0 || !d.is_finite() {
            return Err(Error::Msg(format!("cholesky: matrix not positive definite (pivot {j} = {d})")));
        }
        let d = d.sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / d;
        }
    }
    Ok(())
}

/// Solves `L Lᵀ X = B` in place for `B` of shape `n × m` (row-major), with `l` from [`cholesky`].
pub fn cholesky_solve(l: &[f64], n: usize, b: &mut [f64], m: usize) {
    for c in 0..m {
        for i in 0..n {
            let mut s = b[i * m + c];
            for k in 0..i {
                s -= l[i * n + k] * b[k * m + c];
            }
            b[i * m + c] = s / l[i * n + i];
        }
        for i in (0..n).rev() {
            let mut s = b[i * m + c];
            for k in i + 1..n {
                s -= l[k * n + i] * b[k * m + c];
            }
            b[i * m + c] = s / l[i * n + i];
        }
    }
}
