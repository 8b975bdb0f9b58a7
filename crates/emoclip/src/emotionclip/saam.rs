//! Subject-aware attention masking (paper eq. 2–4 with the appendix B.1 choices). Tokens are
//! [CLS, patches…, HMN]; the HMN token is learned (`visual.hmn_embedding`); every block uses the additive
//! mask M: non-subject patches may not attend to HMN, HMN attends only subject patches and itself (never
//! CLS). A — each token's attention to the current layer's HMN token — then moves attention from the
//! context to the subject stream inside a standard multi-head attention layer.
use crate::clip::VisionTransformer;
use candle_core::{Result, Tensor};

/// The additive mask M `[B, 1, L, L]` (L = grid² + 2) from per-patch coverage `[B, grid²]`; a patch is a
/// subject patch when its coverage is > 0 (appendix B.1: any overlap with the boxes).
pub fn attention_mask(cover: &Tensor) -> Result<Tensor> {
    let (b, m) = cover.dims2()?;
    let l = m + 2;
    let hmn = m + 1;
    let cover: Vec<Vec<f32>> = cover.to_dtype(candle_core::DType::F32)?.to_vec2()?;
    let mut v = vec![0f32; b * l * l];
    for (bi, c) in cover.iter().enumerate() {
        let base = bi * l * l;
        for (p, &o) in c.iter().enumerate() {
            if o <= 0.0 {
                let tok = 1 + p;
                v[base + tok * l + hmn] = f32::NEG_INFINITY; // patch ∉ P ↛ HMN (M⁽²⁾)
                v[base + hmn * l + tok] = f32::NEG_INFINITY; // HMN ↛ patch ∉ P (M⁽³⁾)
            }
        }
        v[base + hmn * l] = f32::NEG_INFINITY; // HMN ↛ CLS (M⁽³⁾ at m+1)
    }
    Tensor::from_vec(v, (b, 1, l, l), &candle_core::Device::Cpu)
}

/// Frame features `[B, embed]` with SAAM for images `[B, 3, H, W]`, masks `[B, H, W]`.
pub fn forward(visual: &VisionTransformer, hmn_embedding: &Tensor, images: &Tensor, masks: &Tensor) -> Result<Tensor> {
    let b = images.dim(0)?;
    let cover = super::sap::patch_cover(visual, &masks.to_dtype(images.dtype())?)?;
    let mask = attention_mask(&cover)?.to_device(images.device())?;
    let hmn = hmn_embedding.reshape((1, 1, visual.width))?.broadcast_as((b, 1, visual.width))?;
    visual.forward_with(images, Some(&hmn), Some(&mask))
}
