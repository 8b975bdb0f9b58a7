//! The media files of `embed` / `similarity` inputs: files as given, directories expanded to the media files
//! directly inside them (or, with frame directories, kept as one clip each), and the person-box file of an
//! input in a boxes directory.
use crate::media;
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// Why a media-named directory entry is not embedded (not a regular file), e.g. "dangling symbolic link".
fn not_a_media_file(p: &Path) -> Option<String> {
    match std::fs::metadata(p) {
        Ok(m) if m.is_file() => None,
        Ok(m) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::FileTypeExt;
                let t = m.file_type();
                if t.is_fifo() {
                    return Some("a FIFO".into());
                }
                if t.is_socket() {
                    return Some("a socket".into());
                }
                if t.is_block_device() || t.is_char_device() {
                    return Some("a device".into());
                }
            }
            Some(
                if m.is_dir() { "a directory (use --frame-dirs for frame directories)" } else { "not a regular file" }
                    .into(),
            )
        }
        Err(_) if std::fs::symlink_metadata(p).is_ok_and(|m| m.is_symlink()) => Some("a dangling symbolic link".into()),
        Err(e) => Some(format!("unreadable ({e})")),
    }
}

/// Expands directories into their media files (sorted); keeps files as given. With `frame_dirs`, a directory
/// is kept as one clip (a frame directory). Entries named like media that are not regular files (dangling
/// links, FIFOs, sockets, directories) are left out with one warning per directory naming them.
pub fn expand_inputs(inputs: &[PathBuf], frame_dirs: bool) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in inputs {
        if p.is_dir() && !frame_dirs {
            let mut v = Vec::new();
            let mut skipped = Vec::new();
            for e in std::fs::read_dir(p).map_err(|e| Error::io(p, e))? {
                let f = e.map_err(|e| Error::io(p, e))?.path();
                if media::media_kind(&f).is_err() {
                    continue;
                }
                match not_a_media_file(&f) {
                    None => v.push(f),
                    Some(why) => skipped.push(format!("{} ({why})", f.display())),
                }
            }
            v.sort();
            skipped.sort();
            if !skipped.is_empty() {
                tracing::warn!(
                    "{}: skipped {} media-named entr{} that are not regular files: {}",
                    p.display(),
                    skipped.len(),
                    if skipped.len() == 1 { "y" } else { "ies" },
                    skipped.join(", ")
                );
            }
            if v.is_empty() {
                tracing::warn!("{}: no media files in this directory", p.display());
            }
            out.extend(v);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Looks for `<stem>.boxes.json` for `media` in `dir` (the stem's bytes as they are, also when not UTF-8).
pub fn boxes_beside(dir: &Path, media: &Path) -> Option<PathBuf> {
    let mut name = media.file_stem()?.to_os_string();
    name.push(".boxes.json");
    let p = dir.join(name);
    p.is_file().then_some(p)
}
