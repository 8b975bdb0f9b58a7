//! Opening a checkpoint (file or directory) and building EmotionCLIP or plain CLIP from it, strictly.
use super::keymap::{canonicalize, Layout};
use super::strict::{CheckedTensors, LoadReport, Missing};
use super::{hf_config, infer, reader};
use crate::clip::{Clip, OpenClipConfig};
use crate::emotionclip::{EmotionClip, EmotionClipConfig};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Tensors of a checkpoint in EmotionCLIP key space, plus the config found beside them (if any).
pub struct Checkpoint {
    pub path: PathBuf,
    pub layout: Layout,
    pub tensors: HashMap<String, Tensor>,
    pub config: Option<EmotionClipConfig>,
}

pub struct LoadOptions {
    /// Overrides the sidecar / inferred config.
    pub config: Option<EmotionClipConfig>,
    pub missing: Missing,
    pub dtype: DType,
    pub device: Device,
    /// Register every parameter as a trainable `Var` here (training); `None` for inference.
    pub varmap: Option<VarMap>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self { config: None, missing: Missing::Error, dtype: DType::F32, device: Device::Cpu, varmap: None }
    }
}

/// Weight files looked for inside a directory, in order.
const DIR_WEIGHTS: &[&str] =
    &["model.safetensors", "open_clip_model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"];

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let s = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&s).map_err(|e| Error::config(path, format!("not valid JSON: {e}")))
}

/// Reads a config JSON of any supported kind: emoclip (`backbone`), open_clip (`vision_cfg`), open_clip hub
/// (`model_cfg`), or Hugging Face `CLIPConfig` (`vision_config`).
pub fn read_config(path: &Path) -> Result<EmotionClipConfig> {
    let v = read_json(path)?;
    if hf_config::is_hf_clip_config(&v) {
        return Ok(EmotionClipConfig::with_backbone(hf_config::parse(v, path)?));
    }
    if let Some(m) = v.get("model_cfg") {
        return Ok(EmotionClipConfig::with_backbone(OpenClipConfig::from_json_str(&m.to_string(), path)?));
    }
    EmotionClipConfig::from_json_str(&v.to_string(), path)
}

impl Checkpoint {
    /// Opens a weights file (`.safetensors`, `.pt`, `.pth`, `.bin`) or a directory holding one of
    /// `model.safetensors`, `pytorch_model.bin`, `open_clip_*` next to `config.json` / `open_clip_config.json`.
    /// A file may have a sidecar `<stem>.json` or `config.json` beside it.
    pub fn open(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Err(Error::checkpoint(path, "no such file or directory; check the --weights path"));
        }
        let (file, config_path) = if path.is_dir() {
            let file = DIR_WEIGHTS.iter().map(|n| path.join(n)).find(|p| p.is_file()).ok_or_else(|| {
                Error::checkpoint(
                    path,
                    format!("directory holds none of {DIR_WEIGHTS:?}; point --weights at the weights file"),
                )
            })?;
            let cfg = ["config.json", "open_clip_config.json"].iter().map(|n| path.join(n)).find(|p| p.is_file());
            (file, cfg)
        } else {
            let sidecar = path.with_extension("json");
            let cfg = if sidecar.is_file() {
                Some(sidecar)
            } else {
                path.parent().map(|d| d.join("config.json")).filter(|p| p.is_file())
            };
            (path.to_path_buf(), cfg)
        };
        let raw = reader::read_tensors(&file, &Device::Cpu)?;
        let (layout, mut tensors) = canonicalize(raw, &file)?;
        tie_logit_scale(&mut tensors, &file)?;
        check_position_ids(&mut tensors, &file)?;
        let config = match config_path {
            Some(p) => Some(read_config(&p)?),
            None => None,
        };
        Ok(Self { path: file, layout, tensors, config })
    }

    /// The config to build with: explicit > sidecar > inferred from shapes.
    pub fn resolve_config(&self, explicit: Option<&EmotionClipConfig>) -> Result<EmotionClipConfig> {
        if let Some(c) = explicit {
            return Ok(c.clone());
        }
        if let Some(c) = &self.config {
            return Ok(c.clone());
        }
        infer::infer_emotionclip(&self.tensors, &self.path)
    }

    fn checked(&self, keep: impl Fn(&str) -> bool, opts: &LoadOptions) -> CheckedTensors {
        let tensors = self.tensors.iter().filter(|(k, _)| keep(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
        CheckedTensors::new(tensors, opts.missing, opts.varmap.clone())
    }

    fn finish(&self, report: LoadReport, cfg_note: &str) -> Result<LoadReport> {
        let bad = !report.misshaped.is_empty() || !report.unexpected.is_empty() || !report.missing.is_empty();
        if bad {
            return Err(Error::checkpoint(
                &self.path,
                format!(
                    "{} checkpoint does not match the model ({cfg_note}):{}\n  fix: pass the right --config (model size, \
                     subject mode, temporal head), or re-download the checkpoint if it is partial",
                    self.layout,
                    report.describe()
                ),
            ));
        }
        Ok(report)
    }

    /// Builds EmotionCLIP. Strict unless `opts.missing == Missing::Init`.
    pub fn load_emotionclip(&self, opts: &LoadOptions) -> Result<(EmotionClip, LoadReport)> {
        let cfg = self.resolve_config(opts.config.as_ref())?;
        let checked = self.checked(|_| true, opts);
        let vb = checked.var_builder(opts.dtype, &opts.device);
        let model = EmotionClip::load(vb, &cfg)
            .map_err(|e| Error::checkpoint(&self.path, format!("cannot build the model: {e}")))?;
        let note = format!("subject {:?}, temporal {:?}", cfg.subject, cfg.temporal.fusion);
        let report = self.finish(checked.report(&[]), &note)?;
        Ok((model, report))
    }

    /// Builds plain CLIP (image + text towers) from any layout; an EmotionCLIP checkpoint's temporal head
    /// and subject token are left out.
    pub fn load_clip(&self, opts: &LoadOptions) -> Result<(Clip, LoadReport)> {
        let cfg = self.resolve_config(opts.config.as_ref())?.backbone;
        let checked = self.checked(|k| !k.starts_with("visual_head.") && k != "backbone.visual.hmn_embedding", opts);
        let vb = checked.var_builder(opts.dtype, &opts.device);
        let model = Clip::load(vb.pp("backbone"), vb.clone(), &cfg)
            .map_err(|e| Error::checkpoint(&self.path, format!("cannot build the model: {e}")))?;
        let report = self.finish(checked.report(&[]), "CLIP towers")?;
        Ok((model, report))
    }
}

/// EmotionCLIP registers the backbone's `logit_scale` twice (tied). Keep one `logit_scale`.
fn tie_logit_scale(t: &mut HashMap<String, Tensor>, path: &Path) -> Result<()> {
    match (t.remove("backbone.logit_scale"), t.contains_key("logit_scale")) {
        (Some(b), false) => {
            t.insert("logit_scale".into(), b);
        }
        (Some(b), true) => {
            let a = &t["logit_scale"];
            let diff = (a.to_dtype(DType::F32)?.flatten_all()? - b.to_dtype(DType::F32)?.flatten_all()?)?
                .abs()?
                .max(0)?
                .to_scalar::<f32>()?;
            if diff != 0.0 {
                return Err(Error::checkpoint(
                    path,
                    "logit_scale and backbone.logit_scale differ; they must be the same tied parameter",
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

/// The official `visual_head.position_ids` buffer is `arange(video_len)`; verify and drop it.
fn check_position_ids(t: &mut HashMap<String, Tensor>, path: &Path) -> Result<()> {
    if let Some(p) = t.remove("visual_head.position_ids") {
        let v: Vec<i64> = p.to_dtype(DType::I64)?.flatten_all()?.to_vec1()?;
        if v.iter().enumerate().any(|(i, &x)| x != i as i64) {
            return Err(Error::checkpoint(path, format!("visual_head.position_ids is {v:?}, expected 0..{}", v.len())));
        }
    }
    Ok(())
}
