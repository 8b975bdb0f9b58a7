//! Library errors → Python exceptions, with the CLI's messages (the `Display` of [`emoclip::Error`]).
//!
//! A missing file (any variant naming a path that does not exist) → `FileNotFoundError`; other I/O →
//! `PermissionError` / `OSError`; bad input (media, boxes, config, checkpoint, shapes, options) → `ValueError`;
//! compute failures (candle, non-finite results) → `RuntimeError`.
use emoclip::Error;
use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyPermissionError, PyRuntimeError, PyValueError};
use pyo3::PyErr;
use std::path::Path;

/// The path an error names, when it names one.
fn error_path(e: &Error) -> Option<&Path> {
    match e {
        Error::Config { path, .. } => path.as_deref(),
        Error::Io { path, .. }
        | Error::JsonFile { path, .. }
        | Error::Checkpoint { path, .. }
        | Error::Media { path, .. }
        | Error::TooFewFrames { path, .. }
        | Error::Boxes { path, .. }
        | Error::Data { path, .. }
        | Error::Captions { path, .. } => Some(path.as_path()),
        _ => None,
    }
}

/// Names of inputs that are not files (`<frames[2]>`, `<boxes[0]>`: NumPy frames, box dicts).
pub fn label(what: &str, i: usize) -> std::path::PathBuf {
    format!("<{what}[{i}]>").into()
}

fn is_label(p: &Path) -> bool {
    let s = p.as_os_str().as_encoded_bytes();
    s.is_empty() || (s.starts_with(b"<") && s.ends_with(b"]>"))
}

pub fn to_py(e: Error) -> PyErr {
    let msg = e.to_string();
    with_message(e, msg)
}

/// The exception type of `e` with the text `msg`.
pub fn with_message(e: Error, msg: String) -> PyErr {
    // `path.exists()` is false for a path whose parent is unreadable too; only NotFound-like cases get here
    // because the variant already failed on that path.
    if let Some(p) = error_path(&e) {
        if !is_label(p) && !p.exists() && std::fs::symlink_metadata(p).is_err() {
            return PyFileNotFoundError::new_err(msg);
        }
    }
    match &e {
        Error::Io { source, .. } => match source.kind() {
            std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(msg),
            std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(msg),
            _ => PyOSError::new_err(msg),
        },
        Error::Interrupted { .. } => pyo3::exceptions::PyKeyboardInterrupt::new_err(msg),
        Error::Config { .. }
        | Error::JsonFile { .. }
        | Error::Checkpoint { .. }
        | Error::Media { .. }
        | Error::TooFewFrames { .. }
        | Error::Boxes { .. }
        | Error::Tokenizer(_)
        | Error::Shape(_)
        | Error::Msg(_)
        | Error::Data { .. }
        | Error::Captions { .. } => PyValueError::new_err(msg),
        // Candle (compute) and NonFinite errors, and any variant added later.
        _ => PyRuntimeError::new_err(msg),
    }
}

/// `candle_core::Error` → `RuntimeError` (through [`Error::Candle`]).
pub fn candle(e: candle_core::Error) -> PyErr {
    to_py(Error::Candle(e))
}
