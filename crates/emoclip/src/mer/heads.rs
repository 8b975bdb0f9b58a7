//! Prediction heads and losses (MER-CLIP paper, Alg. 1 steps 3–9). Emotion: similarities standardised over the
//! labels per sample, `(s − mean) / (std + eps)` (unbiased std by default, as `torch.std`), sigmoid,
//! label on when the probability is > threshold (0.6); loss: BCE-with-logits on the standardised values vs
//! multi-hot targets (mean over all entries). Sentiment: logits = exp(logit_scale)·s, softmax, argmax;
//! loss: softmax cross-entropy (mean over the batch).
use crate::{Error, Result};
use candle_core::{DType, Tensor, D};

/// `(s − mean) / (std + eps)` over the last axis; `unbiased`: divide the squared deviations by n − 1.
pub fn standardize(sims: &Tensor, unbiased: bool, eps: f64) -> Result<Tensor> {
    let n = sims.dim(D::Minus1)?;
    if n < 2 {
        return Err(Error::Shape(format!("standardisation over {n} label(s); at least 2 are needed")));
    }
    let mean = sims.mean_keepdim(D::Minus1)?;
    let c = sims.broadcast_sub(&mean)?;
    let denom = if unbiased { (n - 1) as f64 } else { n as f64 };
    let std = (c.sqr()?.sum_keepdim(D::Minus1)? / denom)?.sqrt()?;
    Ok(c.broadcast_div(&(std + eps)?)?)
}

/// Numerically stable `log σ`-based BCE with logits, mean over all entries (`F.binary_cross_entropy_with_logits`).
pub fn bce_with_logits(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    if logits.dims() != targets.dims() {
        return Err(Error::Shape(format!(
            "emotion targets {:?} do not match the logits {:?}; expected multi-hot [batch, labels]",
            targets.dims(),
            logits.dims()
        )));
    }
    let t = targets.to_dtype(logits.dtype())?;
    // max(x, 0) − x·t + log(1 + exp(−|x|))
    let l = ((logits.relu()? - (logits * &t)?)? + (logits.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
    Ok(l.mean_all()?)
}

/// `log_softmax` over the last axis (the max is detached; the result is shift-invariant).
pub fn log_softmax(logits: &Tensor) -> Result<Tensor> {
    let max = logits.max_keepdim(D::Minus1)?.detach();
    let z = logits.broadcast_sub(&max)?;
    let lse = z.exp()?.sum_keepdim(D::Minus1)?.log()?;
    Ok(z.broadcast_sub(&lse)?)
}

/// Softmax cross-entropy, mean over the batch. `targets`: class indices `[B]` (integer dtype) or
/// per-class weights `[B, C]` (one-hot or soft, float).
pub fn softmax_cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let (b, c) = logits.dims2()?;
    let lsm = log_softmax(logits)?;
    let t = match targets.rank() {
        1 => {
            if targets.dim(0)? != b || targets.dtype().is_float() {
                return Err(Error::Shape(format!(
                    "sentiment targets {:?} ({:?}): expected integer class indices [{b}] or one-hot [{b}, {c}]",
                    targets.dims(),
                    targets.dtype()
                )));
            }
            let idx: Vec<i64> = targets.to_dtype(DType::I64)?.to_vec1()?;
            if let Some(bad) = idx.iter().find(|&&i| i < 0 || i as usize >= c) {
                return Err(Error::Shape(format!("sentiment target class {bad} is outside 0..{c}")));
            }
            let mut oh = vec![0f32; b * c];
            for (r, &i) in idx.iter().enumerate() {
                oh[r * c + i as usize] = 1.0;
            }
            Tensor::from_vec(oh, (b, c), logits.device())?.to_dtype(logits.dtype())?
        }
        2 if targets.dims() == [b, c] => targets.to_dtype(logits.dtype())?,
        _ => {
            return Err(Error::Shape(format!(
                "sentiment targets {:?}: expected class indices [{b}] or one-hot [{b}, {c}]",
                targets.dims()
            )))
        }
    };
    Ok(((lsm * t)?.sum(D::Minus1)?.neg()?.mean_all())?)
}
