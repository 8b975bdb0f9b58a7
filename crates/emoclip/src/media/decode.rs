//! Image loading and video decoding (ffmpeg-next); mirrors the official frame loading of src/datasets/meld.py (`Image.open(..).convert('RGB')` of frames extracted with ffmpeg, uniform sampling).
//!
//! Video frames are exactly those the ffmpeg command line (FFmpeg 5.1, the version linked) writes for
//! `ffmpeg -i VIDEO frames/%05d.png` or `-f rawvideo -pix_fmt rgb24 -`: the same frames (its constant-rate
//! output repeats or drops frames where timestamps have gaps or bunch up), numbered as it numbers them, the
//! same RGB bytes (its filter graph does the conversion, including rotation metadata), see [`super::video`].
//! Memory holds only the sampled frames whatever the length. EXIF orientation of images is not applied (PIL's
//! `Image.open` does not apply it either).
use std::path::Path;

use image::RgbImage;

use crate::{Error, Result};

/// Frames sampled from a video.
#[derive(Debug, Clone)]
pub struct DecodedClip {
    /// The sampled frames, in the order of `indices`.
    pub frames: Vec<RgbImage>,
    /// Index of each sampled frame, 0-based: for a video, the number of the ffmpeg CLI's output frame (file
    /// `%05d.png` number `index + 1`); for a frame directory, see [`super::frame_dir`].
    pub indices: Vec<usize>,
    /// Number of frames: for a video, the number the ffmpeg CLI writes.
    pub total_frames: usize,
    pub width: u32,
    pub height: u32,
    /// Average frame rate of the stream (0 when unknown).
    pub fps: f64,
}

/// Check that `path` is an existing, non-empty regular file, with errors that say what to do.
pub(crate) fn check_file(path: &Path) -> Result<u64> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::media(
            path,
            "file not found; check the path (relative paths are resolved against the current directory)",
        ),
        std::io::ErrorKind::PermissionDenied => {
            Error::media(path, "permission denied; make the file readable (chmod +r)")
        }
        _ => Error::io(path, e),
    })?;
    if meta.is_dir() {
        return Err(Error::media(path, "is a directory; pass a media file inside it"));
    }
    if meta.len() == 0 {
        return Err(Error::media(
            path,
            "file is empty (0 bytes); the download or copy was probably interrupted, fetch it again",
        ));
    }
    Ok(meta.len())
}

/// Load an image as 8-bit RGB (alpha dropped and grey expanded, like PIL `.convert('RGB')`).
/// The format is detected from the content, not the extension.
pub fn load_image(path: &Path) -> Result<RgbImage> {
    check_file(path)?;
    let reader = image::ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?;
    if reader.format().is_none() {
        return Err(Error::media(
            path,
            "not a recognised image (supported: JPEG, PNG, BMP, WebP); convert it, e.g. `ffmpeg -i FILE out.png`",
        ));
    }
    let img = reader.decode().map_err(|e| {
        Error::media(
            path,
            format!("cannot decode image ({e}); the file is corrupt or truncated, re-export or re-download it"),
        )
    })?;
    Ok(img.to_rgb8())
}

/// Sample `k` frames uniformly (`np.linspace(0, n-1, k, dtype=int)`) over the `n` frames the ffmpeg CLI
/// writes for the video. Fails with [`Error::TooFewFrames`] when `n < k`.
pub fn decode_uniform(path: &Path, k: usize) -> Result<DecodedClip> {
    decode_uniform_min(path, k, k)
}

/// Like [`decode_uniform`], but accepts clips with at least `min_frames` frames: with
/// `min_frames <= n < k` the indices repeat, as the official MELD loader does for short clips.
pub fn decode_uniform_min(path: &Path, k: usize, min_frames: usize) -> Result<DecodedClip> {
    check_file(path)?;
    #[cfg(feature = "video")]
    {
        super::video::decode_uniform(path, k, min_frames.max(1))
    }
    #[cfg(not(feature = "video"))]
    {
        let _ = (k, min_frames);
        Err(no_video(path))
    }
}

/// Streams the video's frames at `fps` frames per second (8 for EmotionCLIP pre-training data) to
/// `sink(k, time_s, frame)` in order, one frame in memory at a time: the frames of
/// `ffmpeg -i VIDEO -vf fps=FPS frames/%08d.jpg` (the official extraction), `time_s = k / fps`. Returns
/// (frames emitted, source fps, decoded source frames). Frames already handed to `sink` stay handed over if decoding later fails.
pub fn stream_at_fps(
    path: &Path,
    fps: f64,
    sink: &mut dyn FnMut(usize, f64, RgbImage) -> Result<()>,
) -> Result<(usize, f64, usize)> {
    check_file(path)?;
    #[cfg(feature = "video")]
    {
        super::video::stream_at_fps(path, fps, sink)
    }
    #[cfg(not(feature = "video"))]
    {
        let _ = (fps, sink);
        Err(no_video(path))
    }
}

/// Decode the given frame indices (0-based numbers of the ffmpeg CLI's output frames, see
/// [`DecodedClip::indices`]; any order, repeats allowed), e.g. for a sampling strategy other than uniform. Fails with
/// [`Error::TooFewFrames`] when the video has no frame at the largest index.
pub fn decode_frames(path: &Path, indices: &[usize]) -> Result<DecodedClip> {
    check_file(path)?;
    #[cfg(feature = "video")]
    {
        let mut sorted = indices.to_vec();
        sorted.sort_unstable();
        let need = sorted.last().map_or(1, |m| m + 1);
        let mut clip = super::video::decode_with(path, need, &|_| sorted.clone())?;
        // back to the caller's order: clip.frames follows `sorted`
        let frames = indices
            .iter()
            .map(|i| sorted.binary_search(i).map(|j| clip.frames[j].clone()))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| Error::media(path, "internal error: requested frame missing"))?;
        clip.frames = frames;
        clip.indices = indices.to_vec();
        Ok(clip)
    }
    #[cfg(not(feature = "video"))]
    {
        let _ = indices;
        Err(no_video(path))
    }
}

#[cfg(not(feature = "video"))]
pub(super) fn no_video(path: &Path) -> Error {
    Error::media(
        path,
        "video decoding is not available: emoclip was built without its `video` feature; rebuild with default features (needs FFmpeg's libav* development files and clang), or pass extracted frames as images",
    )
}
