//! Still-image loading; mirrors the official `Image.open(..).convert('RGB')` (src/datasets/emotic.py, meld.py frames).
//!
//! EXIF orientation is not applied (PIL's `Image.open` does not apply it either).
use std::path::Path;

use image::{ImageDecoder, ImageError, RgbImage};

use super::decode::check_file;
use crate::{Error, Result};

/// Load an image as 8-bit RGB (alpha dropped and grey expanded, like PIL `.convert('RGB')`).
/// The format is detected from the content, not the extension. Images whose decoded pixels would need more
/// memory than the image crate's default limit (512 MiB) are refused as too large, naming the size.
pub fn load_image(path: &Path) -> Result<RgbImage> {
    check_file(path)?;
    let reader = open(path)?;
    let img = reader.decode().map_err(|e| match e {
        ImageError::Limits(_) => too_large(path),
        e => Error::media(
            path,
            format!("cannot decode image ({e}); the file is corrupt or truncated, re-export or re-download it"),
        ),
    })?;
    Ok(img.to_rgb8())
}

fn open(path: &Path) -> Result<image::ImageReader<std::io::BufReader<std::fs::File>>> {
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
    Ok(reader)
}

/// The "too large" error, with the image's size when its header can be read again.
fn too_large(path: &Path) -> Error {
    let limit = image::Limits::default().max_alloc.unwrap_or(0);
    let size = open(path).ok().and_then(|r| r.into_decoder().ok()).map(|d| {
        let (w, h) = d.dimensions();
        format!("{w}x{h} pixels need {} MiB decoded, ", d.total_bytes().div_ceil(1 << 20))
    });
    Error::media(
        path,
        format!(
            "image too large to decode: {}above the limit of {} MiB per image; downscale it, e.g. \
             `ffmpeg -i FILE -vf scale=1920:-1 out.png`",
            size.unwrap_or_default(),
            limit >> 20
        ),
    )
}
