//! Official-release dataset adapters for the linear probe (EmotionCLIP `linear_eval.py`): each
//! reads one dataset's own layout and yields the [`Manifest`]s the generic probe ([`super::eval`]) evaluates.
//!
//! Every adapter has the shape `load(root, &AdapterOptions) -> Result<Vec<DatasetTask>>`; [`load`] dispatches on
//! [`DatasetKind`]. By default each task carries the official fixed C of `linear_eval.py` in
//! [`EvalOptions::c`]; with [`AdapterOptions::official_c`] false the C is chosen by the random search of
//! [`EvalOptions::search`] instead (on val, or a hold-out of train — paper appendix B.3). Rows whose media are
//! missing are listed in [`Manifest::skipped`], never dropped silently.
pub mod bold;
pub mod emotic;
pub mod liris;
pub mod meld;
pub mod moviegraphs;

use super::eval::EvalOptions;
use super::manifest::Manifest;
use crate::media::PersonBox;
use crate::{Error, Result};
use std::path::Path;

/// One probe the paper reports for a dataset (BoLD has two: 26 categories and VAD regression).
#[derive(Debug, Clone)]
pub struct DatasetTask {
    /// Dataset and task, e.g. `bold/categories`, `bold/vad`, `meld/emotion`.
    pub name: String,
    /// Items, labels and splits read from the official layout.
    pub manifest: Manifest,
    /// Dataset-specific evaluation settings (official C, Savitzky–Golay smoothing, ...).
    pub options: EvalOptions,
}

/// The five datasets of the paper's Table 4 (`linear_eval.py --dataset bold|mg|meld|emotic|la`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DatasetKind {
    Bold,
    Emotic,
    Meld,
    Liris,
    MovieGraphs,
}

impl DatasetKind {
    pub const ALL: [DatasetKind; 5] =
        [DatasetKind::Bold, DatasetKind::MovieGraphs, DatasetKind::Meld, DatasetKind::Liris, DatasetKind::Emotic];

    /// Short name used on the command line and in task names (`bold`, `emotic`, `meld`, `liris`, `moviegraphs`).
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Bold => "bold",
            DatasetKind::Emotic => "emotic",
            DatasetKind::Meld => "meld",
            DatasetKind::Liris => "liris",
            DatasetKind::MovieGraphs => "moviegraphs",
        }
    }

    /// Parses a name; the official `linear_eval.py` spellings `mg` and `la` are accepted too.
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "bold" => Ok(DatasetKind::Bold),
            "emotic" => Ok(DatasetKind::Emotic),
            "meld" => Ok(DatasetKind::Meld),
            "liris" | "la" | "liris-accede" | "liris_accede" => Ok(DatasetKind::Liris),
            "moviegraphs" | "mg" | "movie_graphs" => Ok(DatasetKind::MovieGraphs),
            o => Err(Error::Msg(format!("unknown dataset {o:?}: use bold, emotic, meld, liris or moviegraphs"))),
        }
    }
}

/// MELD-specific options (see [`meld`]).
#[derive(Debug, Clone, Default)]
pub struct MeldOptions {
    /// Drop the samples the official code removes by hand (train `dia125_utt3`, dev `dia110_utt7`) even when
    /// their media are readable. Default false: they are kept if present and reported as skipped otherwise.
    pub drop_official_corrupt: bool,
}

/// LIRIS-ACCEDE-specific options (see [`liris`]).
#[derive(Debug, Clone)]
pub struct LirisOptions {
    /// Frame rate of the `frames/<movie>.mp4/` directories: the label at `Time = t` s uses frame `round(t·fps)`
    /// (0-based; file `%08d.jpg` numbered from 1). The official code assumes 1 (one frame per second).
    pub fps: f64,
    /// Repeat the label frame 8 times (official, default). False: 8 frames from the official window around it.
    pub repeat_label_frame: bool,
    /// Drop train seconds closer than 4 frames to a movie's ends (official). Test keeps every second.
    pub trim_train_edges: bool,
    /// Savitzky–Golay (window, order) over the concatenated test predictions; official `(100, 3)`.
    pub savgol: Option<(usize, usize)>,
}

impl Default for LirisOptions {
    fn default() -> Self {
        Self { fps: 1.0, repeat_label_frame: true, trim_train_edges: true, savgol: Some((100, 3)) }
    }
}

/// Options shared by the adapters.
#[derive(Debug, Clone)]
pub struct AdapterOptions {
    /// Use each dataset's official C from `linear_eval.py` (default true); false: random search.
    pub official_c: bool,
    /// Base evaluation options (search trials and seed, hold-out fraction, Ridge alpha) copied into each task;
    /// the adapter sets `c` (official C) and dataset-specific fields on top.
    pub eval: EvalOptions,
    pub meld: MeldOptions,
    pub liris: LirisOptions,
}

impl Default for AdapterOptions {
    fn default() -> Self {
        Self {
            official_c: true,
            eval: EvalOptions::default(),
            meld: MeldOptions::default(),
            liris: LirisOptions::default(),
        }
    }
}

impl AdapterOptions {
    /// `self.eval` with the official C applied when [`AdapterOptions::official_c`] is set.
    pub fn eval_with_c(&self, official: f64) -> EvalOptions {
        let mut e = self.eval.clone();
        if self.official_c && e.c.is_none() {
            e.c = Some(official);
        }
        e
    }
}

/// Reads the dataset `kind` laid out as its official release under `root`.
pub fn load(kind: DatasetKind, root: &Path, opts: &AdapterOptions) -> Result<Vec<DatasetTask>> {
    if !root.is_dir() {
        return Err(Error::Msg(format!(
            "{}: dataset root not found (or not a directory); pass the directory that holds the official {} release",
            root.display(),
            kind.name()
        )));
    }
    match kind {
        DatasetKind::Meld => meld::load(root, opts),
        DatasetKind::Liris => liris::load(root, opts),
        DatasetKind::MovieGraphs => moviegraphs::load(root, opts),
        DatasetKind::Bold => bold::load(root, opts),
        DatasetKind::Emotic => emotic::load(root, opts),
    }
}

/// Official YOLO boxes (`[x1, y1, x2, y2, conf]` in the 640×640 letterbox of a `w×h` frame, official `preprocessing/yolo_additions/detect_human.py`)
/// → [`PersonBox`]es in original-frame pixels: divided by `r0 = min(640/w, 640/h)`. The mask code multiplies
/// by `r0 / r` again ([`crate::media::boxes`]), which reproduces the official `get_correct_bbox` on the
/// resized frame up to floating-point rounding of the division.
pub fn letterbox_boxes(raw: &serde_json::Value, w: u32, h: u32, what: &str) -> Result<Vec<PersonBox>> {
    let r0 = (640.0 / w as f64).min(640.0 / h as f64);
    let arr =
        raw.as_array().ok_or_else(|| Error::Msg(format!("{what}: boxes must be a list of [x1,y1,x2,y2,conf]")))?;
    arr.iter()
        .map(|b| {
            let v: Vec<f64> =
                b.as_array().map(|a| a.iter().filter_map(serde_json::Value::as_f64).collect()).unwrap_or_default();
            if v.len() != 5 && v.len() != 4 {
                return Err(Error::Msg(format!("{what}: box {b} is not [x1,y1,x2,y2,conf]")));
            }
            let conf = v.get(4).map(|&c| c as f32);
            Ok(PersonBox::new((v[0] / r0) as f32, (v[1] / r0) as f32, (v[2] / r0) as f32, (v[3] / r0) as f32, conf))
        })
        .collect()
}

/// Reads a JSON file, naming it in errors.
pub(crate) fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::json_file(path, e))
}

/// 1-based line numbers of byte offsets, queried in increasing order (the `csv` crate's own line count is off
/// by one after CRLF line ends).
pub(crate) struct LineCounter<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0, line: 1 }
    }

    /// The line holding byte `offset` (offsets must not decrease between calls).
    pub(crate) fn line_at(&mut self, offset: u64) -> usize {
        let mut end = (offset as usize).min(self.bytes.len());
        // after CRLF the reported record start can be the `\n` of the previous line end
        while end < self.bytes.len() && matches!(self.bytes[end], b'\r' | b'\n') {
            end += 1;
        }
        if end > self.pos {
            self.line += self.bytes[self.pos..end].iter().filter(|&&b| b == b'\n').count();
            self.pos = end;
        }
        self.line
    }
}
