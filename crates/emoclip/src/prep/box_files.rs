//! Person-box files for `prepare --boxes-dir` (`<stem>.boxes.json`, format in [`crate::media::boxes`]; the
//! official pipeline reads YOLO boxes per video, `preprocessing/yolo_additions/detect_human.py`): where a
//! video's file is, and the checks that make a wrong directory loud instead of silently preparing without
//! boxes. Small and free of CLI types so other commands can use the same checks.
use crate::media::PersonBox;
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// `<dir>/<video stem>.boxes.json`.
pub fn box_file_for(video: &Path, dir: &Path) -> PathBuf {
    let stem = video.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
    dir.join(format!("{stem}.boxes.json"))
}

/// A boxes directory that does not exist (or is not a directory) is an error, before any work.
pub fn check_boxes_dir(dir: &Path, option: &str) -> Result<()> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::Boxes {
            path: dir.to_path_buf(),
            msg: format!("{option} must be a directory of <video stem>.boxes.json files, this is a file"),
        }),
        Err(e) => {
            let why = if e.kind() == std::io::ErrorKind::NotFound {
                "does not exist".into()
            } else {
                format!("cannot be read ({e})")
            };
            Err(Error::Boxes {
                path: dir.to_path_buf(),
                msg: format!(
                    "{option} {why}; give the directory of <video stem>.boxes.json files, \
                     or leave {option} out to prepare without person boxes"
                ),
            })
        }
    }
}

/// The videos that have no box file in `dir` (they get no boxes: subject-aware encoding is off for them).
pub fn videos_without_boxes<'a>(videos: &'a [PathBuf], dir: &Path) -> Vec<&'a PathBuf> {
    videos.iter().filter(|v| !box_file_for(v, dir).is_file()).collect()
}

/// True when a box lies entirely outside a `width × height` frame (it can mark no pixel of the subject mask).
pub fn outside_frame(b: &PersonBox, width: u32, height: u32) -> bool {
    b.x2 <= 0.0 || b.y2 <= 0.0 || b.x1 >= width as f32 || b.y1 >= height as f32
}
