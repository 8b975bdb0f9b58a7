//! Media input: video decoding (ffmpeg-next), frame sampling, image preprocessing, person boxes → subject masks; mirrors the official EmotionCLIP data pipeline (src/datasets/meld.py, src/datasets/utils.py).
//!
//! Typical use:
//! ```no_run
//! # fn main() -> emoclip::Result<()> {
//! use emoclip::media::{decode_uniform, load_boxes, Preprocessor};
//! let clip = decode_uniform("clip.mp4".as_ref(), 8)?;
//! let pre = Preprocessor::default();
//! let boxes = load_boxes("clip.boxes.json".as_ref())?;
//! for (frame, &i) in clip.frames.iter().zip(&clip.indices) {
//!     let pixels = pre.pixels(frame);                                          // 3*224*224
//!     let mask = pre.mask(clip.width, clip.height, boxes.boxes_for_frame(i)); // 224*224
//! #   let _ = (pixels, mask);
//! }
//! # Ok(()) }
//! ```
use std::path::Path;

pub mod boxes;
#[cfg(feature = "video")]
mod cli_graph;
#[cfg(feature = "video")]
mod cli_vsync;
pub mod decode;
pub mod frame_dir;
pub mod image;
pub mod joints;
pub mod mask_bilinear;
pub mod options;
pub mod preprocess;
pub mod sample;
pub mod stream;
#[cfg(feature = "video")]
mod video;

pub use self::image::load_image;
pub use boxes::{load_boxes, parse_boxes, BoxFile, PersonBox, BOX_CONF_THRESHOLD};
pub use decode::{decode_frames, decode_uniform, decode_uniform_min, stream_at_fps, DecodedClip};
pub use frame_dir::{load_frame_dir_uniform, FrameDir};
pub use options::{FrameSelection, MaskMode, MediaOptions};
pub use preprocess::{Normalization, Preprocessor, CLIP, IMAGENET};
pub use sample::uniform_indices;
pub use stream::{stream_frames, video_meta, PendingFrame, StreamStats, VideoMeta};

use crate::{Error, Result};

/// Image file extensions accepted by [`media_kind`] (lower case).
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "bmp", "webp"];
/// Video file extensions accepted by [`media_kind`] (lower case).
pub const VIDEO_EXTENSIONS: &[&str] = &["mp4", "avi", "mkv", "webm", "mov", "m4v"];

/// Whether a path is a still image or a video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Image,
    Video,
}

/// Classify a path by its extension (case-insensitive); anything else is an error naming the
/// path and the supported extensions.
pub fn media_kind(path: &Path) -> Result<MediaKind> {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some(e) if IMAGE_EXTENSIONS.contains(&e) => Ok(MediaKind::Image),
        Some(e) if VIDEO_EXTENSIONS.contains(&e) => Ok(MediaKind::Video),
        other => Err(Error::media(
            path,
            format!(
                "unsupported file {}; supported images: {}; videos: {} (convert it, e.g. `ffmpeg -i FILE out.mp4`)",
                other.map_or("(no extension)".to_string(), |e| format!("type `.{e}`")),
                IMAGE_EXTENSIONS.join(", "),
                VIDEO_EXTENSIONS.join(", ")
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(media_kind(Path::new("a/b.JPG")).unwrap(), MediaKind::Image);
        assert_eq!(media_kind(Path::new("x.webp")).unwrap(), MediaKind::Image);
        assert_eq!(media_kind(Path::new("x.MKV")).unwrap(), MediaKind::Video);
        assert_eq!(media_kind(Path::new("x.m4v")).unwrap(), MediaKind::Video);
        let e = media_kind(Path::new("notes.txt")).unwrap_err().to_string();
        assert!(e.contains("notes.txt") && e.contains(".txt") && e.contains("mp4"), "{e}");
        let e = media_kind(Path::new("README")).unwrap_err().to_string();
        assert!(e.contains("README") && e.contains("no extension"), "{e}");
    }
}
