//! CLIP = image tower + text tower + `logit_scale` (open_clip `CLIP`, state-dict keys as in open_clip).
use super::config::OpenClipConfig;
use super::text::TextTransformer;
use super::vision::VisionTransformer;
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

#[derive(Clone, Debug)]
pub struct Clip {
    pub visual: VisionTransformer,
    /// `None` after [`Clip::release_text`] (video analysis needs text only for its prompts, once).
    pub text: Option<TextTransformer>,
    /// Scalar (shape `[]`), `ln(1/0.07)` at init; similarity scale is `exp(logit_scale)`.
    pub logit_scale: Tensor,
    pub config: OpenClipConfig,
}

impl Clip {
    /// Keys: `visual.*`, text-tower keys at the root, and `logit_scale` (looked up in `scale_vb`, which is
    /// the same builder for plain CLIP and the EmotionCLIP root for the tied EmotionCLIP scale).
    pub fn load(vb: VarBuilder, scale_vb: VarBuilder, cfg: &OpenClipConfig) -> Result<Self> {
        let visual = VisionTransformer::load(vb.pp("visual"), cfg)?;
        let text = TextTransformer::load(vb.clone(), cfg)?;
        let init = candle_nn::Init::Const((1.0f64 / 0.07).ln());
        let logit_scale = scale_vb.get_with_hints((), "logit_scale", init)?;
        Ok(Self { visual, text: Some(text), logit_scale, config: cfg.clone() })
    }

    pub fn encode_image(&self, images: &Tensor) -> Result<Tensor> {
        self.visual.forward(images)
    }

    pub fn encode_text(&self, ids: &Tensor) -> Result<Tensor> {
        self.text()?.forward(ids)
    }

    /// The text tower, unless it was released.
    pub fn text(&self) -> Result<&TextTransformer> {
        self.text.as_ref().ok_or_else(|| {
            candle_core::Error::Msg(
                "the text tower was released to save memory (Clip::release_text); load the model again to encode text"
                    .into(),
            )
        })
    }

    /// Bf16 CPU inference only: both towers keep just their packed bf16 matrix weights (half the memory of
    /// the f32 weights they replace); f32, autograd or another device fail clearly afterwards.
    pub fn keep_only_bf16(&mut self) -> Result<()> {
        self.visual.keep_only_bf16()?;
        match &mut self.text {
            Some(t) => t.keep_only_bf16(),
            None => Ok(()),
        }
    }

    /// Drops the text tower's weights (and their bf16 copies) when no more text will be encoded.
    pub fn release_text(&mut self) {
        self.text = None;
    }
}
