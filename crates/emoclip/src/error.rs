//! Library error type: every variant that concerns a file names it, and says how to fix the problem.
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A configuration (model config JSON, training TOML; `path` is `None` for one built in code) is malformed
    /// or inconsistent.
    #[error("{}invalid config: {msg}", file_prefix(path.as_deref()))]
    Config { path: Option<PathBuf>, msg: String },

    /// A JSON file does not parse (the parser's message names the line and column).
    #[error("{path}: invalid JSON ({source})")]
    JsonFile {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    /// A value could not be written as JSON (e.g. a map whose keys are not strings).
    #[error("cannot write JSON: {0}")]
    Json(#[from] serde_json::Error),

    /// A checkpoint has missing, unexpected or mis-shaped keys, or cannot be parsed.
    #[error("{path}: {msg}")]
    Checkpoint { path: PathBuf, msg: String },

    /// A video or image cannot be opened or decoded.
    #[error("{path}: {msg}")]
    Media { path: PathBuf, msg: String },

    /// The clip has fewer frames than the model needs.
    #[error("{path}: only {got} decodable frame(s), at least {need} are needed; use a longer clip")]
    TooFewFrames { path: PathBuf, got: usize, need: usize },

    /// A person-box file is malformed or does not match the media.
    #[error("{path}: invalid boxes: {msg}")]
    Boxes { path: PathBuf, msg: String },

    #[error("tokenizer: {0}")]
    Tokenizer(String),

    /// Tensor shapes that do not fit the model (wrong input size, wrong number of frames...).
    #[error("shape mismatch: {0}")]
    Shape(String),

    /// NaN or infinite values where finite ones are required.
    #[error("non-finite values: {0}")]
    NonFinite(String),

    #[error("{0}")]
    Msg(String),

    /// A dataset / feature file (e.g. an MMSA pickle) is malformed or inconsistent.
    #[error("{path}: {msg}")]
    Data { path: PathBuf, msg: String },

    /// The caller asked a long operation to stop (e.g. Ctrl-C through a progress callback) before it finished;
    /// what was finished is kept, nothing is half-written. `unit` names what was counted (`item(s)`,
    /// `windows of VIDEO`).
    #[error("interrupted on request after {done} of {total} {unit}; run again to do the rest")]
    Interrupted { unit: String, done: usize, total: usize },

    /// A caption/transcript file is unreadable as captions (bad encoding, unknown format, no usable cue).
    #[error("{path}: {msg}")]
    Captions { path: PathBuf, msg: String },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
    pub fn media(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Media { path: path.into(), msg: msg.into() }
    }
    pub fn checkpoint(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Checkpoint { path: path.into(), msg: msg.into() }
    }
    /// An error in the config file `path`.
    pub fn config(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Config { path: Some(path.into()), msg: msg.into() }
    }
    /// An error in a config read from `path`, or built in code (`None`).
    pub fn config_at(path: Option<&Path>, msg: impl Into<String>) -> Self {
        Error::Config { path: path.map(Path::to_path_buf), msg: msg.into() }
    }
    /// `path` does not parse as JSON.
    pub fn json_file(path: impl Into<PathBuf>, source: serde_json::Error) -> Self {
        Error::JsonFile { path: path.into(), source }
    }
}

/// `"<path>: "` for a config read from a file, nothing for one built in code.
fn file_prefix(path: Option<&Path>) -> String {
    path.map(|p| format!("{}: ", p.display())).unwrap_or_default()
}
