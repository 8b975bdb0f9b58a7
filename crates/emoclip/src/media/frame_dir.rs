//! A directory of pre-extracted frames as a clip (BoLD `mmextract/<clip>/img_%05d.jpg`, MELD `dia{d}_utt{u}/frame_{i}.jpg`, LIRIS-ACCEDE `<movie>.mp4/%08d.jpg`); mirrors the official loaders' `sorted(os.listdir(..))` + `np.linspace(0, n-1, 8, dtype=int)` (src/datasets/bold.py, meld.py).
//!
//! Every image file of the directory (extensions of [`IMAGE_EXTENSIONS`], any case; hidden files and
//! other files are ignored) is a frame. Its **frame number** is the last run of digits in the file stem
//! (`img_00012.jpg` → 12, `frame_7.jpg` → 7, `00000031.jpg` → 31; the official BoLD `_fname_to_id` reads the
//! same number). Frames are ordered by that number (natural order: `frame_10` after `frame_9`, which plain
//! `sorted()` would get wrong for unpadded names; for zero-padded names both orders agree). Uniform sampling
//! picks positions `np.linspace(0, n-1, k, dtype=int)` in that order; repeats are allowed when `n < k`, as in
//! the official frame-directory loaders. Person boxes are looked up by frame number
//! ([`DecodedClip::indices`] holds the numbers), so a box file for a frame directory is keyed by the numbers
//! in the file names.
//!
//! Errors name the directory or file: missing / not a directory, no frames, a frame file without a number,
//! two files with the same number, an unreadable frame, and sampled frames of different sizes.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use image::RgbImage;
use rayon::prelude::*;

use super::decode::DecodedClip;
use super::image::load_image;
use super::sample::uniform_indices;
use super::IMAGE_EXTENSIONS;
use crate::{Error, Result};

/// The frames of a directory, sorted by frame number.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameDir {
    pub dir: PathBuf,
    /// (frame number, file), ascending by number.
    pub frames: Vec<(u64, PathBuf)>,
}

/// The last run of ASCII digits in `stem`, as a number.
pub fn frame_number(stem: &str) -> Option<u64> {
    let end = stem.rfind(|c: char| c.is_ascii_digit())? + 1;
    let start = stem[..end].rfind(|c: char| !c.is_ascii_digit()).map_or(0, |i| i + 1);
    stem[start..end].parse().ok()
}

impl FrameDir {
    /// Lists the frames of `dir` (see the module documentation).
    pub fn open(dir: &Path) -> Result<Self> {
        let meta = std::fs::metadata(dir).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::media(
                dir,
                "frame directory not found; check the dataset root and that the frames were extracted",
            ),
            _ => Error::io(dir, e),
        })?;
        if !meta.is_dir() {
            return Err(Error::media(dir, "not a directory of frames"));
        }
        let mut by_number: BTreeMap<u64, PathBuf> = BTreeMap::new();
        for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
            if name.starts_with('.') || !ext.is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str())) || path.is_dir() {
                continue;
            }
            let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
            let n = frame_number(&stem).ok_or_else(|| {
                Error::media(&path, "frame file name has no frame number (expected e.g. img_00001.jpg, frame_1.jpg, 00000001.jpg); rename it or move it out of the frame directory")
            })?;
            if let Some(prev) = by_number.insert(n, path.clone()) {
                return Err(Error::media(
                    dir,
                    format!(
                        "two frames are numbered {n}: {} and {}; keep one kind of frame per directory (e.g. move optical-flow images elsewhere)",
                        prev.display(),
                        path.display()
                    ),
                ));
            }
        }
        if by_number.is_empty() {
            return Err(Error::media(
                dir,
                format!(
                    "the frame directory holds no frames (image files: {}); extract the frames again",
                    IMAGE_EXTENSIONS.join(", ")
                ),
            ));
        }
        Ok(Self { dir: dir.to_path_buf(), frames: by_number.into_iter().collect() })
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Position (in number order) of the frame numbered `number`.
    pub fn position_of(&self, number: u64) -> Option<usize> {
        self.frames.binary_search_by_key(&number, |(n, _)| *n).ok()
    }

    /// Loads the frames at `positions` (0-based, number order; any order, repeats allowed; each file is
    /// decoded once). `indices` of the result are the frame numbers. All loaded frames must have one size.
    pub fn load_positions(&self, positions: &[usize]) -> Result<DecodedClip> {
        if let Some(&p) = positions.iter().find(|&&p| p >= self.frames.len()) {
            return Err(Error::media(
                &self.dir,
                format!("frame position {p} requested but the directory has {} frame(s)", self.frames.len()),
            ));
        }
        let mut unique: Vec<usize> = positions.to_vec();
        unique.sort_unstable();
        unique.dedup();
        let images: Vec<RgbImage> = unique.par_iter().map(|&p| load_image(&self.frames[p].1)).collect::<Result<_>>()?;
        let (w, h) = match images.first() {
            Some(i) => (i.width(), i.height()),
            None => (0, 0),
        };
        for (img, &p) in images.iter().zip(&unique) {
            if (img.width(), img.height()) != (w, h) {
                return Err(Error::media(
                    &self.frames[p].1,
                    format!(
                        "frame is {}x{} but {} is {w}x{h}; all frames of a clip must have one size, re-extract the frames",
                        img.width(),
                        img.height(),
                        self.frames[unique[0]].1.display()
                    ),
                ));
            }
        }
        let frames = positions.iter().map(|p| images[unique.binary_search(p).unwrap_or(0)].clone()).collect();
        Ok(DecodedClip {
            frames,
            indices: positions.iter().map(|&p| self.frames[p].0 as usize).collect(),
            total_frames: self.frames.len(),
            width: w,
            height: h,
            fps: 0.0,
        })
    }

    /// Loads the frames numbered `numbers` (the numbers in the file names; any order, repeats allowed).
    pub fn load_numbers(&self, numbers: &[u64]) -> Result<DecodedClip> {
        let positions = numbers
            .iter()
            .map(|&n| {
                self.position_of(n).ok_or_else(|| {
                    let (lo, hi) = (self.frames[0].0, self.frames[self.frames.len() - 1].0);
                    Error::media(
                        &self.dir,
                        format!("no frame numbered {n} (the directory has frames {lo}..={hi}); check the frame index"),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        self.load_positions(&positions)
    }

    /// `k` frames sampled uniformly (`np.linspace(0, n-1, k, dtype=int)` over the number order).
    pub fn load_uniform(&self, k: usize) -> Result<DecodedClip> {
        self.load_positions(&uniform_indices(self.frames.len(), k))
    }
}

/// Opens `dir` as a frame directory and samples `k` frames uniformly.
pub fn load_frame_dir_uniform(dir: &Path, k: usize) -> Result<DecodedClip> {
    FrameDir::open(dir)?.load_uniform(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_from_names() {
        assert_eq!(frame_number("img_00012"), Some(12));
        assert_eq!(frame_number("frame_7"), Some(7));
        assert_eq!(frame_number("00000031"), Some(31));
        assert_eq!(frame_number("dia3_utt4_frame12"), Some(12));
        assert_eq!(frame_number("cover"), None);
    }
}
