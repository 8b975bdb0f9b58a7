//! `metrics.jsonl`: one JSON object a line, appended as training goes; on resume the lines logged after the
//! checkpoint are dropped first, since training logs them again.
use crate::output::write_atomic;
use crate::{Error, Result};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Rewrites the JSON-lines metrics file `path` (temporary file + rename) keeping the lines `keep` accepts:
/// on resume, the lines logged after the checkpoint are dropped, since training logs them again. Lines that
/// are not JSON (a write cut off by a kill) are dropped too. Returns how many lines were dropped.
pub fn truncate_metrics(path: &Path, keep: impl Fn(&serde_json::Value) -> bool) -> Result<usize> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io(path, e)),
    };
    let (mut kept, mut dropped) = (String::with_capacity(text.len()), 0);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| keep(&v)) {
            kept.push_str(line);
            kept.push('\n');
        } else {
            dropped += 1;
        }
    }
    // Untouched when nothing goes (also keeps a file that lacks its last newline as it is).
    if dropped > 0 {
        write_atomic(path, |f| f.write_all(kept.as_bytes()))?;
    }
    Ok(dropped)
}

/// An open `metrics.jsonl`.
pub struct MetricsLog {
    path: PathBuf,
    file: std::fs::File,
}

impl MetricsLog {
    /// Opens `path` for appending (creating it and its directory), after [`truncate_metrics`] with `keep`.
    pub fn open(path: &Path, keep: impl Fn(&serde_json::Value) -> bool) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        truncate_metrics(path, keep)?;
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(|e| Error::io(path, e))?;
        Ok(Self { path: path.to_path_buf(), file })
    }

    /// Appends `line` as one JSON line.
    pub fn append<T: Serialize>(&mut self, line: &T) -> Result<()> {
        let text = serde_json::to_string(line)?;
        writeln!(self.file, "{text}").map_err(|e| Error::io(&self.path, e))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}
