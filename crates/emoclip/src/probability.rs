//! Probabilities from scores in `f64`: the max-subtracted softmax, the overflow-free logistic sigmoid (scipy's `expit`) and numpy's `argmax`, shared by zero-shot scoring, saved linear heads and the probe's classifiers.

/// Softmax (max-subtracted, as scikit-learn's `softmax` and `torch.softmax`).
pub fn softmax(logits: &[f64]) -> Vec<f64> {
    let m = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = logits.iter().map(|l| (l - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|x| x / s).collect()
}

/// `1 / (1 + e^-z)` without overflow for large |z|.
#[inline]
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Index of the first maximum (numpy `argmax`); 0 for an empty slice.
pub fn argmax(r: &[f64]) -> usize {
    let mut best = 0;
    for (j, &v) in r.iter().enumerate() {
        if v > r[best] {
            best = j;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_and_sigmoid_agree_on_two_classes_and_do_not_overflow() {
        let p = softmax(&[0.0, 1.5]);
        assert!((p[1] - sigmoid(1.5)).abs() < 1e-15 && (p[0] + p[1] - 1.0).abs() < 1e-15);
        assert_eq!(softmax(&[1000.0, 0.0])[0], 1.0);
        assert_eq!(sigmoid(-800.0), 0.0);
        assert_eq!(sigmoid(800.0), 1.0);
        assert!((sigmoid(-2.0) - 1.0 / (1.0 + 2f64.exp())).abs() < 1e-16);
    }

    #[test]
    fn argmax_takes_the_first_maximum() {
        assert_eq!(argmax(&[0.1, 0.7, 0.7, -1.0]), 1);
        assert_eq!(argmax(&[2.0]), 0);
    }
}
