//! Seeded random search of the inverse regularisation C (log-uniform), as the paper's hyper-parameter tuning on a validation split (EmotionCLIP appendix B.3).
use rayon::prelude::*;

use crate::{Error, Result};

/// SplitMix64: small, seeded, reproducible across platforms.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_f64() * n as f64) as usize % n.max(1)
    }
}

/// Random search over `C ~ logUniform[c_min, c_max]`.
#[derive(Debug, Clone)]
pub struct CSearch {
    pub n_trials: usize,
    pub seed: u64,
    pub c_min: f64,
    pub c_max: f64,
}

impl Default for CSearch {
    fn default() -> Self {
        Self { n_trials: 20, seed: 0, c_min: 1e-3, c_max: 1e3 }
    }
}

/// Outcome of a [`CSearch`]: the best C, its validation score, and every (C, score) trial in draw order.
#[derive(Debug, Clone)]
pub struct SearchResult {
    pub best_c: f64,
    pub best_score: f64,
    pub trials: Vec<(f64, f64)>,
}

impl CSearch {
    /// The candidate Cs, in draw order (deterministic for a seed).
    pub fn candidates(&self) -> Vec<f64> {
        let mut rng = SplitMix64::new(self.seed);
        let (lo, hi) = (self.c_min.ln(), self.c_max.ln());
        (0..self.n_trials).map(|_| (lo + rng.next_f64() * (hi - lo)).exp()).collect()
    }

    /// Evaluates `score(C)` (higher is better, e.g. validation mAP; negate losses) for each candidate, trials in
    /// parallel. Non-finite scores are recorded but never chosen; ties keep the earliest trial. Errors when the
    /// range is invalid, `n_trials` is 0, a trial errors, or no trial gives a finite score.
    pub fn run<F>(&self, score: F) -> Result<SearchResult>
    where
        F: Fn(f64) -> Result<f64> + Sync,
    {
        if !(self.c_min > 0.0 && self.c_max >= self.c_min && self.c_max.is_finite()) || self.n_trials == 0 {
            return Err(Error::Msg(format!(
                "C search: need 0 < c_min <= c_max < inf and n_trials > 0 (got [{}, {}], {} trials)",
                self.c_min, self.c_max, self.n_trials
            )));
        }
        let trials: Vec<(f64, f64)> =
            self.candidates().into_par_iter().map(|c| score(c).map(|s| (c, s))).collect::<Result<_>>()?;
        let mut best: Option<(f64, f64)> = None;
        for &(c, s) in &trials {
            if s.is_finite() && best.is_none_or(|(_, bs)| s > bs) {
                best = Some((c, s));
            }
        }
        let (best_c, best_score) =
            best.ok_or_else(|| Error::NonFinite("C search: no trial produced a finite validation score".into()))?;
        Ok(SearchResult { best_c, best_score, trials })
    }
}

/// Seeded hold-out split of `0..n` for datasets without a validation split: returns (train, validation)
/// indices, each sorted, with `round(n * val_fraction)` (at least 1) validation samples.
pub fn holdout_split(n: usize, val_fraction: f64, seed: u64) -> Result<(Vec<usize>, Vec<usize>)> {
    if !(val_fraction > 0.0 && val_fraction < 1.0) {
        return Err(Error::Msg(format!("holdout_split: val_fraction must be in (0, 1), got {val_fraction}")));
    }
    let n_val = ((n as f64 * val_fraction).round() as usize).max(1);
    if n < 2 || n_val >= n {
        return Err(Error::Shape(format!("holdout_split: cannot hold out {n_val} of {n} samples")));
    }
    let mut idx: Vec<usize> = (0..n).collect();
    let mut rng = SplitMix64::new(seed);
    for i in (1..n).rev() {
        let j = rng.below(i + 1);
        idx.swap(i, j);
    }
    let mut val = idx[..n_val].to_vec();
    let mut train = idx[n_val..].to_vec();
    val.sort_unstable();
    train.sort_unstable();
    Ok((train, val))
}
