//! Subject-aware prompting (paper §3.3, appendix B.1; official `VisualTransformer.forward`): the HMN token
//! z_hmn = Σ_p o_p · e_p, with o_p the fraction of patch p covered by the subject mask and e_p the patch's
//! positional embedding. Not normalised, no positional embedding of its own; appended after the patches.
use crate::clip::VisionTransformer;
use candle_core::{Result, Tensor};

/// Per-patch coverage `[B, grid²]` of a mask `[B, H, W]` (AvgPool2d with kernel = stride = patch size).
pub fn patch_cover(visual: &VisionTransformer, masks: &Tensor) -> Result<Tensor> {
    let (b, h, w) = masks.dims3()?;
    if h != visual.image_size || w != visual.image_size {
        candle_core::bail!(
            "subject masks must be [B, {s}, {s}] like the frames, got {:?}",
            masks.dims(),
            s = visual.image_size
        );
    }
    let p = visual.patch_size;
    masks.unsqueeze(1)?.avg_pool2d(p)?.reshape((b, visual.num_patches()))
}

/// The HMN token `[B, 1, width]` for masks `[B, H, W]` (values in [0, 1]).
pub fn hmn_token(visual: &VisionTransformer, masks: &Tensor) -> Result<Tensor> {
    let pos = visual.patch_positional_embedding()?;
    let cover = patch_cover(visual, &masks.to_dtype(pos.dtype())?)?;
    cover.matmul(&pos)?.unsqueeze(1)
}
