//! Frame index sampling; mirrors the official `np.linspace(0, n-1, k, dtype=int)` (src/datasets/meld.py, uniform strategy).

/// `k` frame indices spread uniformly over `0..n`, first and last frame included.
///
/// Exactly `np.linspace(0, n - 1, k, dtype=int)` (NumPy ≥ 2 floors, which equals truncation here
/// because all values are ≥ 0): index `i` is `floor(i * ((n - 1) / (k - 1)))` computed in `f64`,
/// the last one is `n - 1`. With `n < k` indices repeat, as in the official loader.
/// Returns an empty vector when `k == 0` or `n == 0` (there is nothing to sample).
pub fn uniform_indices(n: usize, k: usize) -> Vec<usize> {
    if n == 0 || k == 0 {
        return Vec::new();
    }
    if k == 1 {
        return vec![0];
    }
    let step = (n - 1) as f64 / (k - 1) as f64;
    let mut out: Vec<usize> = (0..k).map(|i| (i as f64 * step).floor() as usize).collect();
    out[k - 1] = n - 1;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_numpy_examples() {
        // np.linspace(0, 39, 8, dtype=int)
        assert_eq!(uniform_indices(40, 8), vec![0, 5, 11, 16, 22, 27, 33, 39]);
        assert_eq!(uniform_indices(1, 8), vec![0; 8]);
        assert_eq!(uniform_indices(5, 8), vec![0, 0, 1, 1, 2, 2, 3, 4]);
        assert_eq!(uniform_indices(10, 1), vec![0]);
        assert!(uniform_indices(0, 8).is_empty());
        assert!(uniform_indices(8, 0).is_empty());
    }

    #[test]
    fn sorted_and_in_range() {
        for n in 1..200 {
            for k in 1..20 {
                let v = uniform_indices(n, k);
                assert_eq!(v.len(), k);
                assert!(v.windows(2).all(|w| w[0] <= w[1]));
                assert_eq!(v[0], 0);
                assert_eq!(*v.last().unwrap(), if k == 1 { 0 } else { n - 1 });
            }
        }
    }
}
