//! YOLO person detector on ONNX Runtime (`ort`, `load-dynamic`: `libonnxruntime.so` is opened at run
//! time — from `ORT_DYLIB_PATH`, or the copy `scripts/install_deps.sh` extracts from the PyPI wheel).
use super::letterbox::{Letterbox, LetterboxInfo};
use super::yolo::{detections, YoloLayout, YoloParams};
use crate::media::PersonBox;
use crate::{Error, Result};
use image::RgbImage;
use ort::session::Session;
use ort::value::Tensor;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

static ENV: OnceLock<std::result::Result<ort::environment::Environment, String>> = OnceLock::new();

/// Where `libonnxruntime.so` is looked for: `ORT_DYLIB_PATH`, then `third_party/onnxruntime/` below the
/// current directory and beside the executable.
pub fn find_runtime() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("ORT_DYLIB_PATH") {
        return Some(PathBuf::from(p));
    }
    let mut dirs = vec![PathBuf::from("third_party/onnxruntime")];
    if let Some(d) = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf)) {
        dirs.push(d.join("../../third_party/onnxruntime"));
        dirs.push(d.join("../../../third_party/onnxruntime"));
    }
    dirs.into_iter().map(|d| d.join("libonnxruntime.so")).find(|p| p.is_file())
}

/// Initialises ONNX Runtime once per process (shared by every ONNX model of the crate).
pub fn ensure_runtime() -> Result<()> {
    environment()
}

/// A session for `model`, with a clear error naming the file.
pub fn session(model: &Path) -> Result<Session> {
    environment()?;
    let env =
        ENV.get().and_then(|e| e.as_ref().ok()).ok_or_else(|| Error::Msg("ONNX Runtime not initialised".into()))?;
    let err = |e: &dyn std::fmt::Display| Error::checkpoint(model, format!("cannot load the ONNX model: {e}"));
    let builder = Session::builder(env).map_err(|e| err(&e))?;
    // Idle intra-op threads block instead of spinning: on a few cores a spinning thread takes the CPU from the
    // EmotionCLIP encoder that runs beside detection (`emoclip analyze`).
    let mut builder = builder.with_intra_op_spinning(false).map_err(|e| err(&e))?;
    builder.commit_from_file(model).map_err(|e| err(&e))
}

fn environment() -> Result<()> {
    let r = ENV.get_or_init(|| {
        let lib = find_runtime().ok_or_else(|| {
            "libonnxruntime.so not found: run scripts/install_deps.sh (it extracts it from the PyPI onnxruntime wheel) \
             or set ORT_DYLIB_PATH"
                .to_string()
        })?;
        ort::init_from(&lib).map_err(|e| format!("{}: {e}", lib.display()))?.build().map_err(|e| e.to_string())
    });
    r.as_ref().map(|_| ()).map_err(|e| Error::Msg(format!("ONNX Runtime: {e}")))
}

pub struct PersonDetector {
    session: Mutex<Session>,
    input: String,
    pub letterbox: Letterbox,
    /// Post-processing; the defaults are the official pipeline's (see [`YoloParams`]).
    pub params: YoloParams,
    path: PathBuf,
}

impl PersonDetector {
    /// Loads a YOLOv5/v7/v8 ONNX export with a fixed `1×3×640×640` input. Defaults as the official
    /// pipeline: conf 0.25, IoU 0.45, multi-label, class 0.
    pub fn new(model: &Path) -> Result<Self> {
        let session = session(model)?;
        let input = session
            .inputs()
            .first()
            .map(|i| i.name().to_string())
            .ok_or_else(|| Error::checkpoint(model, "the model has no input"))?;
        Ok(Self {
            session: Mutex::new(session),
            input,
            letterbox: Letterbox::default(),
            params: YoloParams::default(),
            path: model.to_path_buf(),
        })
    }

    /// The model's first output on the letterboxed image: (shape, values, letterbox geometry).
    pub fn raw_output(&self, img: &RgbImage) -> Result<(Vec<usize>, Vec<f32>, LetterboxInfo)> {
        let (data, info) = self.letterbox.apply(img);
        let s = self.letterbox.size as usize;
        let t = Tensor::from_array(([1usize, 3, s, s], data)).map_err(|e| Error::Msg(e.to_string()))?;
        let mut session = self.session.lock().map_err(|_| Error::Msg("detector poisoned".into()))?;
        let outputs = session
            .run(ort::inputs![self.input.as_str() => t])
            .map_err(|e| Error::checkpoint(&self.path, format!("inference failed: {e}")))?;
        let (shape, out) =
            outputs[0].try_extract_tensor::<f32>().map_err(|e| Error::checkpoint(&self.path, e.to_string()))?;
        Ok((shape.iter().map(|&d| d.max(0) as usize).collect(), out.to_vec(), info))
    }

    /// Person boxes in original-image pixels, highest score first (end-to-end exports: in their order).
    pub fn detect(&self, img: &RgbImage) -> Result<Vec<PersonBox>> {
        let (shape, out, info) = self.raw_output(img)?;
        let layout = YoloLayout::detect(&shape)
            .ok_or_else(|| Error::checkpoint(&self.path, format!("unrecognised YOLO output shape {shape:?}")))?;
        Ok(detections(&out, &shape, layout, &self.params)?
            .into_iter()
            .map(|d| {
                let b = info.unletterbox(d.bbox);
                PersonBox::new(b[0], b[1], b[2], b[3], Some(d.score))
            })
            .collect())
    }
}
