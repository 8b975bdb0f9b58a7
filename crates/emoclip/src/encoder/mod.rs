//! Shared inference layer (official `EmotionCLIP.encode_video` / `encode_image` / `encode_text`,
//! `src/models/base.py`, with the preprocessing of `src/datasets/`): load an encoder, turn media → 8 uniformly
//! sampled frames (videos) → resize/crop/normalise + subject masks from person boxes → L2-normalised vectors,
//! and text → vectors. Plain CLIP (the paper's baseline) mean-pools its per-frame image features.
//! Used by the features `embed`, `probe` (through the CLI), `analyze` and the Python package.
pub mod fingerprint;
pub mod load;

pub use fingerprint::{encoder_fingerprint, encoder_id, EncoderId, Preprocess};
pub use load::{load_encoder, ModelKind, RandomSpec};

use crate::clip::Clip;
use crate::emotionclip::EmotionClip;
use crate::media::{self, BoxFile, FrameSelection, MediaKind, MediaOptions, PersonBox, Preprocessor};
use crate::nn::l2_normalize;
use crate::tokenizer::{ClipTokenizer, Truncation};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use std::path::PathBuf;

/// Which network turns pixels into vectors.
// One encoder per process: the size difference between the variants (the bf16 weight caches) costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Encoder {
    /// EmotionCLIP: videos through the temporal head, images through the frame encoder alone.
    Emotion(EmotionClip),
    /// Plain CLIP image tower; a video's frame features are averaged.
    Clip(Clip),
}

impl Encoder {
    fn clip(&self) -> &Clip {
        match self {
            Encoder::Emotion(m) => &m.backbone,
            Encoder::Clip(c) => c,
        }
    }

    pub fn image_size(&self) -> usize {
        self.clip().visual.image_size
    }

    /// Drops the text tower ([`Clip::release_text`]): `encode_text` fails afterwards.
    pub fn release_text(&mut self) {
        match self {
            Encoder::Emotion(m) => m.backbone.release_text(),
            Encoder::Clip(c) => c.release_text(),
        }
    }

    /// Bf16 CPU inference only: the matrix weights are packed for the bf16 kernel now and their f32 copies
    /// dropped (about a third less memory for ViT-B/32); f32 use fails clearly afterwards.
    pub fn keep_only_bf16(&mut self) -> Result<()> {
        match self {
            Encoder::Emotion(m) => m.keep_only_bf16()?,
            Encoder::Clip(c) => c.keep_only_bf16()?,
        }
        Ok(())
    }

    /// Readies the encoder for inference in `dtype` on `device`: in bf16 on a CPU with the bf16 kernel it keeps
    /// only the packed bf16 weights ([`Self::keep_only_bf16`]). Returns whether that kernel runs the products.
    pub fn for_inference(&mut self, dtype: DType, device: &Device) -> Result<bool> {
        let kernel =
            crate::nn::autocast::split(dtype, device).1 == Some(DType::BF16) && crate::nn::cpu::gemm_bf16::available();
        if kernel {
            self.keep_only_bf16()?;
        }
        Ok(kernel)
    }

    pub fn context_length(&self) -> usize {
        self.clip().config.text_cfg.context_length
    }

    /// Frames per video clip the model requires: the temporal transformer's learned frame positions
    /// (`video_len`); `None` when any count works (mean fusion, plain CLIP's frame average).
    pub fn frames_per_clip(&self) -> Option<usize> {
        match self {
            Encoder::Emotion(m) => match m.visual_head {
                crate::emotionclip::temporal::VisualHead::Transformer { .. } => Some(m.config.video_len),
                crate::emotionclip::temporal::VisualHead::Mean => None,
            },
            Encoder::Clip(_) => None,
        }
    }

    /// `exp(logit_scale)`, the similarity scale.
    pub fn logit_scale(&self) -> Result<f32> {
        Ok(self.clip().logit_scale.to_dtype(DType::F32)?.exp()?.to_scalar::<f32>()?)
    }
}

/// One item to embed: an image, a video, or a directory of frames (see [`media::frame_dir`]), with
/// optional person boxes (keyed by frame number for a frame directory) and dataset-specific options.
#[derive(Debug, Clone, Default)]
pub struct MediaInput {
    pub path: PathBuf,
    pub boxes: Option<BoxFile>,
    pub options: MediaOptions,
}

impl MediaInput {
    /// Default options: uniform frames, YOLO-box masks, the preprocessor's resize.
    pub fn new(path: impl Into<PathBuf>, boxes: Option<BoxFile>) -> Self {
        Self { path: path.into(), boxes, options: MediaOptions::default() }
    }

    /// The same item with `options`.
    pub fn with_options(mut self, options: MediaOptions) -> Self {
        self.options = options;
        self
    }
}

/// A decoded, preprocessed item, ready for the encoder.
pub struct Prepared {
    pub path: PathBuf,
    pub kind: MediaKind,
    /// `[T, 3, S, S]` (T = 1 for images).
    pub frames: Tensor,
    /// `[T, S, S]`, 1 inside a subject box.
    pub masks: Tensor,
    /// Whether any frame has a non-empty subject mask.
    pub has_subject: bool,
    /// Boxes of the box file that lie entirely outside the frame (ignored; see [`BoxFile::boxes_outside`]).
    pub boxes_outside: Vec<PersonBox>,
    /// Width and height of the original frames.
    pub frame_size: (u32, u32),
}

pub struct Embedder {
    pub encoder: Encoder,
    pub pre: Preprocessor,
    pub device: Device,
    pub dtype: DType,
    pub num_frames: usize,
}

impl Embedder {
    /// Errors when `num_frames` (frames sampled per video) is 0 or not the count the model's temporal head takes.
    /// In bf16 on a CPU with the bf16 kernel the encoder keeps only its packed bf16 weights
    /// ([`Encoder::keep_only_bf16`]): an embedder only infers.
    pub fn new(
        mut encoder: Encoder,
        pre: Preprocessor,
        device: Device,
        dtype: DType,
        num_frames: usize,
    ) -> Result<Self> {
        if num_frames == 0 {
            return Err(Error::Msg("--frames 0: a clip needs at least one frame; use --frames 8 (the default)".into()));
        }
        if let Some(k) = encoder.frames_per_clip() {
            if num_frames != k {
                return Err(Error::Msg(format!(
                    "--frames {num_frames}: this model's temporal head takes exactly {k} frames per clip (its learned \
                     frame positions); use --frames {k}"
                )));
            }
        }
        if pre.crop as usize != encoder.image_size() {
            return Err(Error::Shape(format!(
                "preprocessing crops to {} px but the model takes {} px images; use --crop {}",
                pre.crop,
                encoder.image_size(),
                encoder.image_size()
            )));
        }
        encoder.for_inference(dtype, &device)?;
        Ok(Self { encoder, pre, device, dtype, num_frames })
    }

    /// Decodes and preprocesses one file (CPU work, safe to run in parallel).
    /// A directory is a frame directory (a clip); `input.options` choose the frames (uniform or explicit),
    /// the box → mask rule and the resize.
    pub fn prepare(&self, input: &MediaInput) -> Result<Prepared> {
        let path = &input.path;
        let opts = &input.options;
        let selection = |n: usize| -> Result<Option<Vec<usize>>> {
            let v: Vec<usize> = match &opts.frames {
                FrameSelection::Uniform => return Ok(None),
                FrameSelection::Positions(v) => v.clone(),
                FrameSelection::Numbers(v) => v.iter().map(|&x| x as usize).collect(),
            };
            if v.len() != n {
                return Err(Error::media(
                    path,
                    format!("{} frame(s) selected but the model takes {n} per clip; select exactly {n}", v.len()),
                ));
            }
            Ok(Some(v))
        };
        let (kind, clip) = if path.is_dir() {
            let dir = media::FrameDir::open(path)?;
            let clip = match &opts.frames {
                FrameSelection::Uniform => dir.load_uniform(self.num_frames)?,
                FrameSelection::Positions(v) => {
                    selection(self.num_frames)?;
                    dir.load_positions(v)?
                }
                FrameSelection::Numbers(v) => {
                    selection(self.num_frames)?;
                    dir.load_numbers(v)?
                }
            };
            (MediaKind::Video, clip)
        } else {
            let kind = media::media_kind(path)?;
            let clip = match kind {
                MediaKind::Image => {
                    if opts.frames != FrameSelection::Uniform {
                        return Err(Error::media(path, "a frame selection was given for a still image; it applies to videos and frame directories only"));
                    }
                    let img = media::load_image(path)?;
                    let (w, h) = (img.width(), img.height());
                    media::DecodedClip {
                        frames: vec![img],
                        indices: vec![0],
                        total_frames: 1,
                        width: w,
                        height: h,
                        fps: 0.0,
                    }
                }
                MediaKind::Video => match selection(self.num_frames)? {
                    None => media::decode_uniform(path, self.num_frames)?,
                    Some(idx) => media::decode_frames(path, &idx)?,
                },
            };
            (kind, clip)
        };
        self.prepare_decoded(path, kind, clip, input.boxes.as_ref(), opts)
    }

    /// The preprocessing half of [`Self::prepare`] for frames decoded elsewhere (the Python package's NumPy
    /// frames): resize/crop/normalise `clip.frames`, and masks from `box_file` looked up by `clip.indices`.
    /// `path` only names the item in errors and [`Prepared::path`].
    pub fn prepare_decoded(
        &self,
        path: &std::path::Path,
        kind: MediaKind,
        clip: media::DecodedClip,
        box_file: Option<&BoxFile>,
        opts: &MediaOptions,
    ) -> Result<Prepared> {
        let (frames, indices, w, h) = (clip.frames, clip.indices, clip.width, clip.height);
        let mut pre = self.pre;
        if opts.resize_to_crop {
            pre.resize_short = pre.crop;
        }
        let empty: Vec<PersonBox> = Vec::new();
        let boxes: Vec<&[PersonBox]> = match box_file {
            Some(b) => {
                b.check_frame_size(w, h)?;
                indices.iter().map(|&i| b.boxes_for_frame(i)).collect()
            }
            None => indices.iter().map(|_| empty.as_slice()).collect(),
        };
        let has_subject = boxes.iter().any(|b| b.iter().any(|x| x.counts()));
        let boxes_outside = box_file.map_or_else(Vec::new, |b| b.boxes_outside(w, h));
        let frames_t = pre.frames_tensor(&frames, &Device::Cpu)?;
        let masks_t = pre.masks_tensor_with(opts.mask, w, h, &boxes, &Device::Cpu)?;
        Ok(Prepared {
            path: path.to_path_buf(),
            kind,
            frames: frames_t,
            masks: masks_t,
            has_subject,
            boxes_outside,
            frame_size: (w, h),
        })
    }

    /// Encodes prepared items (all videos or all images, any mix is split internally). Returns one
    /// L2-normalised vector per item, in order.
    pub fn encode(&self, items: &[Prepared]) -> Result<Vec<Vec<f32>>> {
        let mut out: Vec<Option<Vec<f32>>> = vec![None; items.len()];
        for kind in [MediaKind::Video, MediaKind::Image] {
            let idx: Vec<usize> = (0..items.len()).filter(|&i| items[i].kind == kind).collect();
            if idx.is_empty() {
                continue;
            }
            let frames: Vec<&Tensor> = idx.iter().map(|&i| &items[i].frames).collect();
            let masks: Vec<&Tensor> = idx.iter().map(|&i| &items[i].masks).collect();
            let store = crate::nn::autocast::split(self.dtype, &self.device).0;
            let frames = Tensor::stack(&frames, 0)?.to_device(&self.device)?.to_dtype(store)?; // [B,T,3,S,S]
            let masks = Tensor::stack(&masks, 0)?.to_device(&self.device)?.to_dtype(store)?; // [B,T,S,S]
            let feats = self.encode_tensors(kind, &frames, &masks)?;
            let rows: Vec<Vec<f32>> = feats.to_dtype(DType::F32)?.to_vec2()?;
            for (&i, r) in idx.iter().zip(rows) {
                if r.iter().any(|x| !x.is_finite()) {
                    return Err(Error::NonFinite(format!(
                        "{}: the embedding has NaN/inf values; check the weights",
                        items[i].path.display()
                    )));
                }
                out[i] = Some(r);
            }
        }
        Ok(out.into_iter().map(|r| r.unwrap_or_default()).collect())
    }

    /// `frames: [B, T, 3, S, S]`, `masks: [B, T, S, S]` → normalised `[B, E]`.
    pub fn encode_tensors(&self, kind: MediaKind, frames: &Tensor, masks: &Tensor) -> Result<Tensor> {
        let (b, t, c, s, _) = frames.dims5()?;
        let _bf16 = crate::nn::autocast::autocast(crate::nn::autocast::split(self.dtype, &self.device).1);
        let feats = match (&self.encoder, kind) {
            (Encoder::Emotion(m), MediaKind::Video) => m.encode_video(frames, Some(masks))?,
            (Encoder::Emotion(m), MediaKind::Image) => {
                m.encode_image(&frames.reshape((b * t, c, s, s))?, Some(&masks.reshape((b * t, s, s))?))?
            }
            (Encoder::Clip(clip), _) => {
                clip.encode_image(&frames.reshape((b * t, c, s, s))?)?.reshape((b, t, ()))?.mean(1)?
            }
        };
        Ok(l2_normalize(&feats)?)
    }

    /// Normalised text features `[N, E]`.
    pub fn embed_texts(&self, tok: &ClipTokenizer, texts: &[&str], truncation: Truncation) -> Result<Tensor> {
        let ids = tok.tokenize_tensor(texts, self.encoder.context_length(), truncation, &self.device)?;
        let _bf16 = crate::nn::autocast::autocast(crate::nn::autocast::split(self.dtype, &self.device).1);
        let feats = self.encoder.clip().encode_text(&ids)?;
        Ok(l2_normalize(&feats)?)
    }
}

/// The official preprocessing for a model input size: resize the short side to `size·256/224` (256 for
/// 224-px models), centre-crop `size`.
pub fn preprocessor_for(image_size: usize, norm: media::Normalization) -> Preprocessor {
    let crop = image_size as u32;
    Preprocessor { resize_short: ((crop as f64) * 256.0 / 224.0).round() as u32, crop, norm }
}
