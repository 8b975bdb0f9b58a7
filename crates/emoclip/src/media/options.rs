//! Per-item media handling (which frames, how boxes become masks, which resize) for the official dataset loaders that differ from the default video path (src/datasets/bold.py, emotic.py, liris_accede.py).

/// Which frames of a video or frame directory are encoded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum FrameSelection {
    /// `k` frames sampled uniformly, `np.linspace(0, n-1, k, dtype=int)` (the official eval default).
    #[default]
    Uniform,
    /// 0-based positions: the ffmpeg CLI's output frames for a video, frame-number order for a frame directory. Any order,
    /// repeats allowed; the count must be the model's frame count.
    Positions(Vec<usize>),
    /// Frame numbers: the numbers in the file names of a frame directory (for a video, the CLI's output frame index).
    /// LIRIS-ACCEDE's official loader repeats one labelled frame 8 times: `Numbers(vec![n; 8])`.
    Numbers(Vec<u64>),
}

/// How person boxes become the subject mask of a frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum MaskMode {
    /// YOLO-box path (utils.py `get_correct_bbox` + `bbox_to_mask`, meld.py): boxes scaled to the resized
    /// frame, floor/ceil, filled, centre-cropped. See [`super::boxes`].
    #[default]
    Letterbox,
    /// BoLD (bold.py `_preprocess_frames`): boxes filled at the ORIGINAL resolution, the mask resized
    /// bilinearly (torch `F.interpolate`, no antialias) to the resized frame size, centre-cropped, `> 0.5`.
    /// See [`super::mask_bilinear`].
    Bilinear,
    /// Emotic (emotic.py `get_correct_bbox`): boxes divided by `r = min(W/w', H/h')`, floor/ceil, filled at
    /// the resized resolution, centre-cropped. See [`super::boxes::scaled_mask`].
    Scaled,
}

/// Media options of one item; the default is the plain embedding path (uniform frames, YOLO-box masks,
/// the preprocessor's own resize).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct MediaOptions {
    pub frames: FrameSelection,
    pub mask: MaskMode,
    /// Resize the short side to the crop size instead of `crop·256/224` (Emotic: `Resize(224)` +
    /// `CenterCrop(224)`).
    pub resize_to_crop: bool,
}

impl MediaOptions {
    /// Whether these are the defaults (nothing dataset-specific).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}
