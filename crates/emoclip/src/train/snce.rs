//! Sentiment-guided contrastive loss (SNCE, paper eq. 5–7; official `loss_v2.ReweightedClipLoss`) and the plain CLIP loss.
//!
//! With video features `V` [N,D], text features `T` [N,D] (already L2-normalised), `s = exp(logit_scale)`
//! and emotion logits `E` [N,C]:
//!
//! * `p_i = softmax(E_i)`, `KL[i,j] = Σ_k p_j,k (log p_j,k − log p_i,k)` (= KL(p_j ‖ p_i), the official
//!   `pairwise_kl_div(log_softmax(E), softmax(E))`);
//! * `w_ij = 1/|KL[i,j]|` off the diagonal, `0` on it; the weights are constants (no gradient reaches `E`);
//! * `logits_v2t = s·V Tᵀ − β·w`, `logits_t2v = s·T Vᵀ − β·w` (official default: the same `w`, not transposed;
//!   [`SnceConfig::transpose_w_for_t2v`] selects `wᵀ`, the other reading of the paper);
//! * `loss = (CE(logits_v2t, arange) + CE(logits_t2v, arange)) / 2`.
//!
//! **Identical emotion distributions (KL = 0).** The official code computes `1/|KL|` and divides by zero
//! (an `inf` weight, `−inf` logit, and NaN gradients through `inf − inf` in its log-softmax when the whole
//! row is affected). The paper says such pairs are not real negatives and are removed. Here a negative whose
//! weight is not finite in f32 (`KL == 0`, or so small that `1/|KL|` overflows) is *excluded* from the
//! softmax: the cross entropy of row `i` is `log Σ_{j kept} exp(x_ij) − x_ii`. That is exactly the value of a
//! `−inf` logit, but it is computed without any infinity in the graph (the row maximum is taken over kept
//! entries, and masked entries are multiplied by 0 after the exponential), so neither the value nor any
//! gradient can be NaN. The positive pair (the diagonal) always stays.
//!
//! `β = 0` is the plain InfoNCE/CLIP loss exactly: [`snce_loss`] then calls [`clip_loss`] (no masking).
use crate::{Error, Result};
use candle_core::{DType, Tensor, D};

/// Paper eq. 7 / official `loss_reweight_scale` default: β = 10.
pub const DEFAULT_BETA: f64 = 10.0;

/// Options of the SNCE loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SnceConfig {
    /// β, the strength of the sentiment re-weighting (official `loss_reweight_scale`, default 10).
    pub beta: f64,
    /// Use `wᵀ` for the text→video logits instead of the official `w` (off by default).
    pub transpose_w_for_t2v: bool,
}

impl Default for SnceConfig {
    fn default() -> Self {
        Self { beta: DEFAULT_BETA, transpose_w_for_t2v: false }
    }
}

/// Host-side emotion weights for a batch: `w` (0 on the diagonal and on masked pairs) and the keep mask
/// (1 = the pair takes part in the softmax, 0 = removed because the two emotion distributions are identical).
#[derive(Debug, Clone, PartialEq)]
pub struct EmotionWeights {
    pub n: usize,
    /// Row-major [n, n].
    pub w: Vec<f64>,
    /// Row-major [n, n]; `true` on the diagonal.
    pub keep: Vec<bool>,
}

impl EmotionWeights {
    /// Number of removed (masked) negative pairs.
    pub fn masked(&self) -> usize {
        self.keep.iter().filter(|k| !**k).count()
    }
}

/// Pairwise emotion weights `w_ij = 1/|KL(p_j ‖ p_i)|` from emotion logits [N, C], computed in f64 on the host.
pub fn emotion_weights(emotion_logits: &Tensor) -> Result<EmotionWeights> {
    let (n, c) = emotion_logits
        .dims2()
        .map_err(|_| Error::Shape(format!("emotion logits must be [N, C], got {:?}", emotion_logits.dims())))?;
    if c == 0 {
        return Err(Error::Shape("emotion logits have 0 classes".into()));
    }
    let e: Vec<Vec<f64>> = emotion_logits.detach().to_dtype(DType::F64)?.to_vec2()?;
    if e.iter().flatten().any(|x| !x.is_finite()) {
        return Err(Error::NonFinite("emotion logits contain NaN or infinite values".into()));
    }
    // log-softmax per row (shifted by the row max), and the probabilities.
    let logp: Vec<Vec<f64>> = e
        .iter()
        .map(|row| {
            let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = row.iter().map(|x| (x - m).exp()).sum::<f64>().ln() + m;
            row.iter().map(|x| x - lse).collect()
        })
        .collect();
    let p: Vec<Vec<f64>> = logp.iter().map(|r| r.iter().map(|x| x.exp()).collect()).collect();
    let mut w = vec![0f64; n * n];
    let mut keep = vec![true; n * n];
    for i in 0..n {
        for j in 0..n {
            if i == j {
                continue;
            }
            let kl: f64 = (0..c).map(|k| p[j][k] * (logp[j][k] - logp[i][k])).sum();
            let wij = 1.0 / kl.abs();
            if (wij as f32).is_finite() {
                w[i * n + j] = wij;
            } else {
                keep[i * n + j] = false;
            }
        }
    }
    Ok(EmotionWeights { n, w, keep })
}

fn check_features(v: &Tensor, t: &Tensor) -> Result<usize> {
    let (n, d) = v.dims2().map_err(|_| Error::Shape(format!("video features must be [N, D], got {:?}", v.dims())))?;
    let (n2, d2) = t.dims2().map_err(|_| Error::Shape(format!("text features must be [N, D], got {:?}", t.dims())))?;
    if (n, d) != (n2, d2) {
        return Err(Error::Shape(format!("video features {:?} and text features {:?} differ", v.dims(), t.dims())));
    }
    if n == 0 {
        return Err(Error::Shape("empty batch".into()));
    }
    Ok(n)
}

/// `exp(logit_scale)` as a 0-d tensor (accepts a scalar or a 1-element tensor).
fn scale(logit_scale: &Tensor) -> Result<Tensor> {
    if logit_scale.elem_count() != 1 {
        return Err(Error::Shape(format!("logit_scale must have one element, got {:?}", logit_scale.dims())));
    }
    Ok(logit_scale.reshape(())?.exp()?)
}

/// Mean over rows of `log Σ_{j kept} exp(x_ij) − x_ii`; `keep` is a constant 0/1 [N,N] tensor or `None` (all kept).
fn masked_ce(logits: &Tensor, keep: Option<&Tensor>) -> Result<Tensor> {
    let n = logits.dim(0)?;
    // Shift by the row maximum over kept entries; the shift is detached (the value is shift-invariant).
    let det = logits.detach();
    let max = match keep {
        None => det.max_keepdim(D::Minus1)?,
        Some(k) => {
            let floor = Tensor::full(f32::MIN, det.shape(), det.device())?.to_dtype(det.dtype())?;
            k.ne(0.0)?.where_cond(&det, &floor)?.max_keepdim(D::Minus1)?
        }
    };
    let mut e = logits.broadcast_sub(&max)?.exp()?;
    if let Some(k) = keep {
        e = (e * k)?;
    }
    let lse = (e.sum_keepdim(D::Minus1)?.log()? + max)?.squeeze(1)?;
    let idx = Tensor::arange(0u32, n as u32, logits.device())?.unsqueeze(1)?;
    let diag = logits.gather(&idx, 1)?.squeeze(1)?;
    Ok((lse - diag)?.mean_all()?)
}

fn finite_loss(loss: Tensor, what: &str) -> Result<Tensor> {
    let value = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    if !value.is_finite() {
        return Err(Error::NonFinite(format!(
            "{what} is {value}: check the features and logit_scale for NaN/inf (e.g. a diverged model or a too large learning rate)"
        )));
    }
    Ok(loss)
}

/// Plain symmetric CLIP/InfoNCE loss: `(CE(s·V Tᵀ, arange) + CE(s·T Vᵀ, arange)) / 2`, `s = exp(logit_scale)`.
pub fn clip_loss(v: &Tensor, t: &Tensor, logit_scale: &Tensor) -> Result<Tensor> {
    check_features(v, t)?;
    let s = scale(logit_scale)?;
    let v2t = v.matmul(&t.t()?)?.broadcast_mul(&s)?;
    let t2v = t.matmul(&v.t()?)?.broadcast_mul(&s)?;
    let loss = ((masked_ce(&v2t, None)? + masked_ce(&t2v, None)?)? / 2.0)?;
    finite_loss(loss, "CLIP loss")
}

/// SNCE loss (paper eq. 5–7, official `ReweightedClipLoss`); see the module documentation for the KL = 0 mask.
pub fn snce_loss(
    v: &Tensor,
    t: &Tensor,
    logit_scale: &Tensor,
    emotion_logits: &Tensor,
    cfg: &SnceConfig,
) -> Result<Tensor> {
    let n = check_features(v, t)?;
    if !cfg.beta.is_finite() {
        return Err(Error::Msg(format!("SNCE beta must be finite, got {}", cfg.beta)));
    }
    let en = emotion_logits.dims().first().copied().unwrap_or(0);
    if en != n {
        return Err(Error::Shape(format!("emotion logits {:?} do not match a batch of {n}", emotion_logits.dims())));
    }
    if cfg.beta == 0.0 {
        // Exactly InfoNCE: the re-weighting and the KL = 0 mask are both part of the sentiment term.
        emotion_weights(emotion_logits)?; // still validate the input
        return clip_loss(v, t, logit_scale);
    }
    let ew = emotion_weights(emotion_logits)?;
    let (dev, dt) = (v.device(), v.dtype());
    let bw: Vec<f64> = ew.w.iter().map(|w| cfg.beta * w).collect();
    let bw = Tensor::from_vec(bw, (n, n), dev)?.to_dtype(dt)?;
    let keep = if ew.masked() > 0 {
        let k: Vec<f64> = ew.keep.iter().map(|&k| if k { 1.0 } else { 0.0 }).collect();
        Some(Tensor::from_vec(k, (n, n), dev)?.to_dtype(dt)?)
    } else {
        None
    };
    let s = scale(logit_scale)?;
    let v2t = (v.matmul(&t.t()?)?.broadcast_mul(&s)? - &bw)?;
    let (bw_t, keep_t) = if cfg.transpose_w_for_t2v {
        (bw.t()?.contiguous()?, keep.as_ref().map(|k| k.t().and_then(|k| k.contiguous())).transpose()?)
    } else {
        (bw.clone(), keep.clone())
    };
    let t2v = (t.matmul(&v.t()?)?.broadcast_mul(&s)? - &bw_t)?;
    let loss = ((masked_ce(&v2t, keep.as_ref())? + masked_ce(&t2v, keep_t.as_ref())?)? / 2.0)?;
    finite_loss(loss, "SNCE loss")
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn feats(n: usize, d: usize, seed: u64) -> Tensor {
        // Deterministic pseudo-random features, L2-normalised.
        let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let vals: Vec<f32> = (0..n * d)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((x >> 33) as f32 / (1u64 << 31) as f32) - 0.5
            })
            .collect();
        let t = Tensor::from_vec(vals, (n, d), &Device::Cpu).unwrap();
        let norm = t.sqr().unwrap().sum_keepdim(1).unwrap().sqrt().unwrap();
        t.broadcast_div(&norm).unwrap()
    }

    #[test]
    fn clip_loss_matches_candle_cross_entropy() {
        let (v, t) = (feats(6, 8, 1), feats(6, 8, 2));
        let ls = Tensor::new(2.0f32, &Device::Cpu).unwrap();
        let ours = clip_loss(&v, &t, &ls).unwrap().to_scalar::<f32>().unwrap();
        let logits = (v.matmul(&t.t().unwrap()).unwrap() * 2f64.exp()).unwrap();
        let labels = Tensor::arange(0u32, 6, &Device::Cpu).unwrap();
        let a = candle_nn::loss::cross_entropy(&logits, &labels).unwrap().to_scalar::<f32>().unwrap();
        let b = candle_nn::loss::cross_entropy(&logits.t().unwrap(), &labels).unwrap().to_scalar::<f32>().unwrap();
        assert!((ours - (a + b) / 2.0).abs() < 1e-5, "{ours} vs {}", (a + b) / 2.0);
    }

    #[test]
    fn beta_zero_is_clip_loss_exactly() {
        let (v, t) = (feats(5, 4, 3), feats(5, 4, 4));
        let ls = Tensor::new(1.5f32, &Device::Cpu).unwrap();
        let e = feats(5, 7, 9);
        let a = snce_loss(&v, &t, &ls, &e, &SnceConfig { beta: 0.0, ..Default::default() }).unwrap();
        let b = clip_loss(&v, &t, &ls).unwrap();
        assert_eq!(a.to_scalar::<f32>().unwrap(), b.to_scalar::<f32>().unwrap());
    }

    #[test]
    fn all_identical_emotions_give_finite_loss_and_gradients() {
        let dev = Device::Cpu;
        let v = Var::from_tensor(&feats(4, 6, 5)).unwrap();
        let t = Var::from_tensor(&feats(4, 6, 6)).unwrap();
        let ls = Var::from_tensor(&Tensor::new(2.5f32, &dev).unwrap()).unwrap();
        let e = Tensor::ones((4, 7), DType::F32, &dev).unwrap();
        let ew = emotion_weights(&e).unwrap();
        assert_eq!(ew.masked(), 12);
        let loss = snce_loss(v.as_tensor(), t.as_tensor(), ls.as_tensor(), &e, &SnceConfig::default()).unwrap();
        // Every negative removed: each row keeps only its positive, so the loss is exactly 0.
        assert!(loss.to_scalar::<f32>().unwrap().abs() < 1e-6);
        let g = loss.backward().unwrap();
        for x in [&v, &t, &ls] {
            let gx = g.get(x.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert!(gx.iter().all(|x| x.is_finite()));
        }
    }

    #[test]
    fn shape_errors() {
        let dev = Device::Cpu;
        let ls = Tensor::new(1f32, &dev).unwrap();
        let r = clip_loss(&feats(3, 4, 1), &feats(2, 4, 1), &ls);
        assert!(matches!(r, Err(Error::Shape(_))));
        let r = snce_loss(&feats(3, 4, 1), &feats(3, 4, 1), &ls, &feats(2, 7, 1), &SnceConfig::default());
        assert!(matches!(r, Err(Error::Shape(_))));
        let nan = Tensor::new(&[[f32::NAN; 7]; 3], &dev).unwrap();
        let r = snce_loss(&feats(3, 4, 1), &feats(3, 4, 1), &ls, &nan, &SnceConfig::default());
        assert!(matches!(r, Err(Error::NonFinite(_))));
    }
}
