//! The EmotionCLIP model (official `EmotionCLIP` in `src/models/base.py`): `encode_video`, `encode_image`,
//! `encode_text`, and the tied `logit_scale`. State-dict keys: `backbone.*`, `visual_head.*`, `logit_scale`.
use super::config::{EmotionClipConfig, SubjectMode};
use super::temporal::VisualHead;
use super::{saam, sap};
use crate::clip::Clip;
use crate::nn::l2_normalize;
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

#[derive(Clone, Debug)]
pub struct EmotionClip {
    pub backbone: Clip,
    pub visual_head: VisualHead,
    /// SAAM's learned subject token `backbone.visual.hmn_embedding [width]`.
    pub hmn_embedding: Option<Tensor>,
    pub config: EmotionClipConfig,
}

impl EmotionClip {
    pub fn load(vb: VarBuilder, cfg: &EmotionClipConfig) -> Result<Self> {
        let backbone = Clip::load(vb.pp("backbone"), vb.clone(), &cfg.backbone)?;
        let visual_head = VisualHead::load(vb.pp("visual_head"), &cfg.temporal, cfg.backbone.embed_dim, cfg.video_len)?;
        let hmn_embedding = match cfg.subject {
            SubjectMode::Saam => {
                let w = cfg.backbone.vision_cfg.width;
                let init = candle_nn::Init::Randn { mean: 0.0, stdev: (w as f64).powf(-0.5) };
                Some(vb.pp("backbone").pp("visual").get_with_hints(w, "hmn_embedding", init)?)
            }
            _ => None,
        };
        Ok(Self { backbone, visual_head, hmn_embedding, config: cfg.clone() })
    }

    /// Bf16 CPU inference only: the towers and the temporal head keep just their packed bf16 matrix weights
    /// ([`crate::nn::Linear::keep_only_bf16`]); f32, autograd or another device fail clearly afterwards.
    pub fn keep_only_bf16(&mut self) -> Result<()> {
        self.backbone.keep_only_bf16()?;
        self.visual_head.keep_only_bf16()
    }

    /// Frame features `[N, embed]` (unnormalised) for frames `[N, 3, H, W]` and subject masks `[N, H, W]`
    /// (1 inside a person box). Masks are ignored by the vanilla encoder; `None` means "no subject"
    /// (an all-zero mask, as the official code does for frames without a detected person).
    pub fn encode_image(&self, images: &Tensor, masks: Option<&Tensor>) -> Result<Tensor> {
        let visual = &self.backbone.visual;
        let zeros;
        let masks = match masks {
            Some(m) => m,
            None => {
                let n = images.dim(0)?;
                zeros = Tensor::zeros((n, visual.image_size, visual.image_size), images.dtype(), images.device())?;
                &zeros
            }
        };
        if masks.dim(0)? != images.dim(0)? {
            candle_core::bail!("{} masks for {} frames", masks.dim(0)?, images.dim(0)?);
        }
        match (self.config.subject, &self.hmn_embedding) {
            (SubjectMode::None, _) => visual.forward(images),
            (SubjectMode::Sap, _) => {
                let hmn = sap::hmn_token(visual, masks)?.to_dtype(images.dtype())?;
                visual.forward_with(images, Some(&hmn), None)
            }
            (SubjectMode::Saam, Some(h)) => saam::forward(visual, h, images, masks),
            (SubjectMode::Saam, None) => candle_core::bail!("SAAM model without an hmn_embedding"),
        }
    }

    /// Per-frame features `[B, T, embed]` for `video: [B, T, 3, H, W]`, `masks: [B, T, H, W]`.
    pub fn encode_frames(&self, video: &Tensor, masks: Option<&Tensor>) -> Result<Tensor> {
        let (b, t, c, h, w) = video.dims5()?;
        let frames = video.reshape((b * t, c, h, w))?;
        let masks = match masks {
            Some(m) => {
                let (mb, mt, mh, mw) = m.dims4()?;
                if (mb, mt) != (b, t) {
                    candle_core::bail!("video is [{b}, {t}, ..] but masks are [{mb}, {mt}, ..]");
                }
                Some(m.reshape((b * t, mh, mw))?)
            }
            None => None,
        };
        self.encode_image(&frames, masks.as_ref())?.reshape((b, t, ()))
    }

    /// Video features `[B, embed]` (unnormalised), official `encode_video`, in inference (`train = false`).
    pub fn encode_video(&self, video: &Tensor, masks: Option<&Tensor>) -> Result<Tensor> {
        self.encode_video_t(video, masks, false)
    }

    /// [`Self::encode_video`] with the training flag (`train` switches the temporal head's dropout on).
    pub fn encode_video_t(&self, video: &Tensor, masks: Option<&Tensor>, train: bool) -> Result<Tensor> {
        self.visual_head.forward(&self.encode_frames(video, masks)?, train)
    }

    /// Text features `[B, embed]` (unnormalised) for token ids `[B, L]`.
    pub fn encode_text(&self, ids: &Tensor) -> Result<Tensor> {
        self.backbone.encode_text(ids)
    }

    /// The raw `logit_scale` parameter (similarities are scaled by its exponential).
    pub fn logit_scale(&self) -> &Tensor {
        &self.backbone.logit_scale
    }

    /// Official `forward`: (normalize(video), normalize(text), exp(logit_scale)).
    pub fn forward(&self, video: &Tensor, masks: Option<&Tensor>, ids: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        let v = l2_normalize(&self.encode_video(video, masks)?)?;
        let t = l2_normalize(&self.encode_text(ids)?)?;
        Ok((v, t, self.logit_scale().exp()?))
    }
}
