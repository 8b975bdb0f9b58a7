//! CLIP ViT image tower (open_clip `VisionTransformer`; official EmotionCLIP `VisualTransformer`), with an
//! optional extra token appended after the patches and an optional attention mask (subject-aware encoding).
use super::config::OpenClipConfig;
use super::transformer::Transformer;
use crate::nn::LayerNorm;
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

#[derive(Clone, Debug)]
pub struct VisionTransformer {
    /// `conv1.weight [width, 3, patch, patch]` (no bias).
    pub conv1_weight: Tensor,
    pub class_embedding: Tensor,
    /// `[grid² + 1, width]`: row 0 for CLS, row 1 + p for patch p (row-major over the grid).
    pub positional_embedding: Tensor,
    pub ln_pre: LayerNorm,
    pub transformer: Transformer,
    pub ln_post: LayerNorm,
    /// `proj [width, embed_dim]`.
    pub proj: Tensor,
    pub image_size: usize,
    pub patch_size: usize,
    pub width: usize,
    /// The patch-embedding weight packed for the bf16 kernel, made on first use.
    pub conv1_bf16: crate::nn::matmul_bf16::WeightCache,
}

impl VisionTransformer {
    /// Keys under `visual.`: `conv1.weight`, `class_embedding`, `positional_embedding`, `ln_pre.*`,
    /// `transformer.resblocks.*`, `ln_post.*`, `proj`.
    pub fn load(vb: VarBuilder, cfg: &OpenClipConfig) -> Result<Self> {
        let v = &cfg.vision_cfg;
        let (w, p, g) = (v.width, v.patch_size, cfg.grid_size());
        let scale = (w as f64).powf(-0.5);
        let conv1_weight = vb.get_with_hints((w, 3, p, p), "conv1.weight", candle_nn::init::DEFAULT_KAIMING_NORMAL)?;
        let randn = candle_nn::Init::Randn { mean: 0.0, stdev: scale };
        let class_embedding = vb.get_with_hints(w, "class_embedding", randn)?;
        let positional_embedding = vb.get_with_hints((g * g + 1, w), "positional_embedding", randn)?;
        let eps = cfg.layer_norm_eps;
        Ok(Self {
            conv1_weight,
            class_embedding,
            positional_embedding,
            ln_pre: LayerNorm::load(vb.pp("ln_pre"), w, eps)?,
            transformer: Transformer::load(
                vb.pp("transformer"),
                w,
                v.layers,
                cfg.vision_heads(),
                v.mlp_ratio,
                cfg.activation(),
                eps,
            )?,
            ln_post: LayerNorm::load(vb.pp("ln_post"), w, eps)?,
            proj: vb.get_with_hints((w, cfg.embed_dim), "proj", randn)?,
            image_size: v.image_size,
            patch_size: p,
            width: w,
            conv1_bf16: Default::default(),
        })
    }

    /// Bf16 CPU inference only: the patch embedding and the transformer keep just their packed bf16 weights
    /// ([`crate::nn::Linear::keep_only_bf16`]).
    pub fn keep_only_bf16(&mut self) -> Result<()> {
        if !self.conv1_bf16.is_pack_only() {
            let w = &self.conv1_weight;
            self.conv1_bf16 = self.conv1_bf16.pack_only(&w.reshape((w.dim(0)?, ()))?, None)?;
            self.conv1_weight = Tensor::zeros(0, w.dtype(), w.device())?;
        }
        self.transformer.keep_only_bf16()
    }

    pub fn grid(&self) -> usize {
        self.image_size / self.patch_size
    }

    pub fn num_patches(&self) -> usize {
        self.grid() * self.grid()
    }

    /// Patchify as a single GEMM: the stride-`p`, kernel-`p` convolution without bias is exactly a matrix
    /// product over non-overlapping `3·p·p` patches. `[B, 3, H, W] → [B, grid², width]`.
    pub fn patch_embed(&self, images: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = images.dims4()?;
        if c != 3 || h != self.image_size || w != self.image_size {
            candle_core::bail!(
                "images must be [B, 3, {s}, {s}], got {:?}; preprocess to the model's image size",
                images.dims(),
                s = self.image_size
            );
        }
        let (p, g) = (self.patch_size, self.grid());
        let x = match patches_cpu(images, p)? {
            Some(x) => x,
            None => images
                .reshape((b, 3, g, p, g, p))?
                .permute((0, 2, 4, 1, 3, 5))?
                .contiguous()?
                .reshape((b * g * g, 3 * p * p))?,
        };
        if self.conv1_bf16.is_pack_only() {
            if !crate::nn::matmul_bf16::active(&[&x]) || crate::nn::tracked(&[&x]) {
                return Err(crate::nn::matmul_bf16::dropped_f32_error());
            }
            let y = crate::nn::matmul_bf16::linear(&x, &self.conv1_weight, None, None, &self.conv1_bf16)?;
            return y.reshape((b, g * g, self.width));
        }
        let w = self.conv1_weight.reshape((self.width, 3 * p * p))?;
        let y = if crate::nn::matmul_bf16::active(&[&x, &w]) {
            // bf16 mode: the same product on the bf16 kernel (weight packed once for inference).
            if crate::nn::tracked(&[&x, &w]) {
                crate::nn::matmul_bf16::matmul(&x, &w.t()?)?
            } else {
                crate::nn::matmul_bf16::linear(&x, &self.conv1_weight, None, None, &self.conv1_bf16)?
            }
        } else {
            x.matmul(&w.t()?)?
        };
        y.reshape((b, g * g, self.width))
    }

    /// `[CLS, patches] + positional_embedding`: `[B, 1 + grid², width]`.
    pub fn embed_tokens(&self, images: &Tensor) -> Result<Tensor> {
        let patches = self.patch_embed(images)?;
        let b = patches.dim(0)?;
        let cls = self.class_embedding.reshape((1, 1, self.width))?.broadcast_as((b, 1, self.width))?;
        Tensor::cat(&[&cls.to_dtype(patches.dtype())?, &patches], 1)?
            .broadcast_add(&self.positional_embedding.unsqueeze(0)?)
    }

    /// Full tower. `extra`: tokens `[B, k, width]` appended after the patches with no positional embedding
    /// (SAP's HMN token); `mask`: additive attention mask broadcastable to `[B, heads, L, L]`.
    /// Returns the projected CLS output `[B, embed_dim]`.
    pub fn forward_with(&self, images: &Tensor, extra: Option<&Tensor>, mask: Option<&Tensor>) -> Result<Tensor> {
        let mut x = self.embed_tokens(images)?;
        if let Some(e) = extra {
            x = Tensor::cat(&[&x, &e.to_dtype(x.dtype())?], 1)?;
        }
        let x = self.ln_pre.forward(&x)?;
        let cls = self.transformer.forward_cls(&x, mask)?;
        self.ln_post.forward(&cls)?.matmul(&self.proj)
    }

    /// Plain CLIP image features (unnormalised), `[B, embed_dim]`.
    pub fn forward(&self, images: &Tensor) -> Result<Tensor> {
        self.forward_with(images, None, None)
    }

    /// Patch positional embeddings `[grid², width]` (rows 1.. of the table).
    pub fn patch_positional_embedding(&self) -> Result<Tensor> {
        self.positional_embedding.narrow(0, 1, self.num_patches())
    }
}

/// The patches of contiguous f32 CPU `images [B, 3, H, W]` outside autograd as rows `[B·g², 3·p·p]` (row
/// `(b, gy, gx)`, column `(c, py, px)`), copied in parallel: the same values as the permuted view made
/// contiguous, which candle copies on one thread. `None` for other inputs (the caller takes the view).
fn patches_cpu(images: &Tensor, p: usize) -> Result<Option<Tensor>> {
    use rayon::prelude::*;
    if !images.device().is_cpu() || images.dtype() != candle_core::DType::F32 || crate::nn::tracked(&[images]) {
        return Ok(None);
    }
    let (b, c, h, w) = images.dims4()?;
    let (st, l) = images.storage_and_layout();
    let (candle_core::Storage::Cpu(candle_core::CpuStorage::F32(v)), Some((o0, o1))) = (&*st, l.contiguous_offsets())
    else {
        return Ok(None);
    };
    let src = &v[o0..o1];
    let (gh, gw) = (h / p, w / p);
    let row = c * p * p;
    let len = b * gh * gw * row;
    let mut out = Vec::with_capacity(len);
    out.spare_capacity_mut()[..len].par_chunks_mut(row).enumerate().for_each(|(r, dst)| {
        let (bi, gy, gx) = (r / (gh * gw), (r / gw) % gh, r % gw);
        for ch in 0..c {
            for py in 0..p {
                let s0 = ((bi * c + ch) * h + gy * p + py) * w + gx * p;
                let d0 = (ch * p + py) * p;
                for (d, &x) in dst[d0..d0 + p].iter_mut().zip(&src[s0..s0 + p]) {
                    d.write(x);
                }
            }
        }
    });
    // SAFETY: each row's c·p·p elements were all written above ((channel, patch row) × p columns).
    unsafe { out.set_len(len) };
    drop(st);
    Ok(Some(Tensor::from_vec(out, (b * gh * gw, row), images.device())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_patches_equal_the_permuted_view() {
        let (b, p, g) = (3, 4, 5);
        let images = Tensor::randn(0f32, 1.0, (b, 3, g * p, g * p), &candle_core::Device::Cpu).unwrap();
        let want = images
            .reshape((b, 3, g, p, g, p))
            .unwrap()
            .permute((0, 2, 4, 1, 3, 5))
            .unwrap()
            .contiguous()
            .unwrap()
            .reshape((b * g * g, 3 * p * p))
            .unwrap();
        let got = patches_cpu(&images, p).unwrap().expect("f32 CPU images take the parallel copy");
        assert_eq!(got.to_vec2::<f32>().unwrap(), want.to_vec2::<f32>().unwrap());
        // Tracked images (training) keep candle's differentiable view.
        let var = candle_core::Var::from_tensor(&images).unwrap();
        assert!(patches_cpu(var.as_tensor(), p).unwrap().is_none());
    }
}
