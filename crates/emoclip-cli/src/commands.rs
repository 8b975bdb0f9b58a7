//! The embedding, similarity and conversion subcommands.
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device};
use clap::{Args, ValueEnum};
use emoclip::embed::zero_shot::{zero_shot, ZeroShot};
use emoclip::embed::{boxes_beside, expand_inputs, EmbedEvent};
use emoclip::emotionclip::EmotionClipConfig;
use emoclip::encoder::{load_encoder, Embedder, MediaInput, ModelKind};
use emoclip::media::{self, Normalization};
use emoclip::output::{check_embeddings_output, check_output_dir, check_output_file};
use emoclip::tokenizer::{ClipTokenizer, Truncation};
use std::path::{Path, PathBuf};

use crate::progress::Progress;

/// Parses a count that must be 1 or more (`--batch`, `--frames`, ...).
pub fn at_least_one(s: &str) -> std::result::Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be 1 or more".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{e}; give a whole number, 1 or more")),
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Model {
    /// EmotionCLIP: subject-aware frame encoder + temporal head.
    Emotionclip,
    /// Plain CLIP image tower, frame features averaged (the paper's baseline).
    Clip,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Norm {
    /// ImageNet mean/std (the official EmotionCLIP default).
    Imagenet,
    /// OpenAI CLIP mean/std.
    Clip,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Precision {
    F32,
    F16,
    Bf16,
}

impl From<Model> for ModelKind {
    fn from(m: Model) -> Self {
        match m {
            Model::Emotionclip => ModelKind::EmotionClip,
            Model::Clip => ModelKind::Clip,
        }
    }
}

impl From<Norm> for Normalization {
    fn from(n: Norm) -> Self {
        match n {
            Norm::Imagenet => Normalization::IMAGENET,
            Norm::Clip => Normalization::CLIP,
        }
    }
}

impl From<Precision> for DType {
    fn from(p: Precision) -> Self {
        match p {
            Precision::F32 => DType::F32,
            Precision::F16 => DType::F16,
            Precision::Bf16 => DType::BF16,
        }
    }
}

#[derive(Args, Clone)]
pub struct ModelArgs {
    /// Weights: a .pt/.pth/.bin/.safetensors file or a directory (EmotionCLIP, open_clip or Hugging Face
    /// CLIP), `hf:<org>/<name>` from the local Hugging Face cache, or `random[:CONFIG][@SEED]` for a smoke
    /// test (CONFIG ViT-B-32, ViT-B-16 or ViT-L-14, default ViT-B-32; SEED default 0: the same spec always
    /// gives the same weights).
    #[arg(long, env = "EMOCLIP_WEIGHTS")]
    pub weights: String,
    /// Model config JSON (emoclip config, open_clip model config or HF config.json). Default: the one
    /// beside the weights, else inferred from tensor shapes.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "emotionclip")]
    pub model: Model,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    #[arg(long, value_enum, default_value = "f32")]
    pub dtype: Precision,
}

impl ModelArgs {
    pub(crate) fn load(&self) -> Result<(emoclip::encoder::Encoder, Device, DType)> {
        let device = parse_device(&self.device)?;
        let dtype = self.dtype.into();
        let enc = load_encoder(&self.weights, self.config()?.as_ref(), self.model.into(), dtype, &device)?;
        Ok((enc, device, dtype))
    }

    /// The `--config` file, read and validated (None without the option).
    fn config(&self) -> Result<Option<EmotionClipConfig>> {
        Ok(match &self.config {
            Some(p) => Some(emoclip::weights::load::read_config(p)?),
            None => None,
        })
    }

    /// The identity of these weights' features with `norm` and `frames` per clip (what a saved head records
    /// and `analyze --head` checks). Reads the checkpoint's tensors once.
    pub(crate) fn encoder_id(
        &self,
        norm: emoclip::media::Normalization,
        frames: usize,
    ) -> Result<emoclip::encoder::EncoderId> {
        emoclip::encoder::encoder_id(&self.weights, self.config()?.as_ref(), self.model.into(), norm, frames)
            .context("fingerprinting the encoder")
    }
}

pub fn parse_device(s: &str) -> Result<Device> {
    if s == "cpu" {
        return Ok(Device::Cpu);
    }
    let ordinal = match s.strip_prefix("cuda") {
        Some("") => 0,
        Some(r) => r
            .strip_prefix(':')
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("bad device {s:?}: use cpu, cuda or cuda:N"))?,
        None => bail!("bad device {s:?}: use cpu, cuda or cuda:N"),
    };
    if !candle_core::utils::cuda_is_available() {
        bail!("--device {s}: this binary was built without CUDA; build the CUDA one with `bash scripts/build_cuda.sh` (target/cuda/release/emoclip)");
    }
    // cudarc panics (instead of returning an error) when the driver library or a GPU is missing: silence the
    // panic report and turn it into one error carrying cudarc's message.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let created = std::panic::catch_unwind(|| Device::new_cuda(ordinal));
    std::panic::set_hook(hook);
    match created {
        Ok(Ok(d)) => Ok(d),
        Ok(Err(e)) => bail!("--device {s}: {e}"),
        Err(payload) => {
            let why = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("unknown CUDA failure");
            let why: String = why.chars().take(200).collect();
            bail!(
                "--device {s}: no usable CUDA GPU/driver on this machine ({why}…); install the NVIDIA driver \
                 (libcuda.so.1) and put the CUDA libraries on LD_LIBRARY_PATH, or use --device cpu"
            )
        }
    }
}

#[derive(Args)]
pub struct MediaArgs {
    /// Video and image files, or directories (searched for media files, not recursively).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Person boxes JSON for a single input (see the README for the format).
    #[arg(long, conflicts_with = "boxes_dir")]
    pub boxes: Option<PathBuf>,
    /// Directory with `<stem>.boxes.json` per input (it must exist); inputs without one get an empty subject
    /// mask, and one warning counts them.
    #[arg(long)]
    pub boxes_dir: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "imagenet")]
    pub norm: Norm,
    /// Frames sampled uniformly per video (the temporal head takes exactly 8).
    #[arg(long, default_value_t = 8, value_parser = at_least_one)]
    pub frames: usize,
    /// Clips per forward pass.
    #[arg(long, default_value_t = 4, value_parser = at_least_one)]
    pub batch: usize,
    /// Treat each input directory as one clip of pre-extracted frames (sorted by the number in the file
    /// name, sampled like a video) instead of a folder of separate media files.
    #[arg(long)]
    pub frame_dirs: bool,
}

#[derive(Args)]
pub struct EmbedArgs {
    #[command(flatten)]
    pub media: MediaArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Output file: .npy (+ .files.txt), .safetensors or .jsonl.
    #[arg(long, short, default_value = "embeddings.npy")]
    pub out: PathBuf,
}

#[derive(Args)]
pub struct EmbedTextArgs {
    /// Texts to embed.
    pub texts: Vec<String>,
    /// A file with one text per line (added after the positional texts).
    #[arg(long)]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Truncate over-long texts as the official EmotionCLIP tokenizer does (no forced EOT).
    #[arg(long)]
    pub plain_truncation: bool,
    #[arg(long, short, default_value = "text_embeddings.npy")]
    pub out: PathBuf,
}

#[derive(Args)]
pub struct SimilarityArgs {
    #[command(flatten)]
    pub media: MediaArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    /// A text prompt (repeat for several), e.g. --prompt "a person who is happy".
    #[arg(long = "prompt", required_unless_present = "prompts_file")]
    pub prompts: Vec<String>,
    /// A file with one prompt per line.
    #[arg(long)]
    pub prompts_file: Option<PathBuf>,
    /// Also write the scores as JSON here (a .json file).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args)]
pub struct ConvertArgs {
    /// The checkpoint to convert (.pt/.pth/.bin/.safetensors file or directory).
    pub input: PathBuf,
    /// Output directory: model.safetensors + config.json.
    #[arg(long, short)]
    pub out: PathBuf,
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Where each input's person boxes come from, checked before any work: `--boxes` must be a readable box file,
/// `--boxes-dir` an existing directory; inputs without a box file there are counted in one warning.
fn box_sources(m: &MediaArgs, files: &[PathBuf]) -> Result<Vec<Option<PathBuf>>> {
    if let Some(b) = &m.boxes {
        if files.len() != 1 {
            bail!("--boxes applies to a single input; use --boxes-dir with <stem>.boxes.json files for several");
        }
        if !b.is_file() {
            bail!(
                "--boxes {}: {}; give the person-box JSON of this input (format in the README), or leave --boxes out",
                b.display(),
                if b.exists() { "not a file" } else { "no such file" }
            );
        }
        return Ok(vec![Some(b.clone())]);
    }
    let Some(dir) = &m.boxes_dir else { return Ok(vec![None; files.len()]) };
    if !dir.is_dir() {
        bail!(
            "--boxes-dir {}: {}; give the directory that holds <stem>.boxes.json per input, or leave --boxes-dir out \
             (subject masks are then empty)",
            dir.display(),
            if dir.exists() { "not a directory" } else { "no such directory" }
        );
    }
    let found: Vec<Option<PathBuf>> = files.iter().map(|f| boxes_beside(dir, f)).collect();
    let missing: Vec<&PathBuf> = files.iter().zip(&found).filter(|(_, b)| b.is_none()).map(|(f, _)| f).collect();
    if !missing.is_empty() {
        tracing::warn!(
            "{} of {} input(s) have no <stem>.boxes.json in {} (e.g. {}): their subject masks are empty",
            missing.len(),
            files.len(),
            dir.display(),
            missing[0].display()
        );
    }
    Ok(found)
}

/// The names and vectors of the media embedded, the failures `(file, message)`, and the embedder.
type EmbeddedMedia = (Vec<PathBuf>, Vec<Vec<f32>>, Vec<(PathBuf, String)>, Embedder);

/// Embeds all media; bad files are skipped and reported.
fn embed_all(m: &MediaArgs, model: &ModelArgs) -> Result<EmbeddedMedia> {
    let files = expand_inputs(&m.inputs, m.frame_dirs)?;
    if files.is_empty() {
        bail!("no input files");
    }
    let box_files = box_sources(m, &files)?;
    let boxes_one = match &m.boxes {
        Some(p) => Some(media::load_boxes(p)?),
        None => None,
    };
    let (encoder, device, dtype) = model.load()?;
    let pre = emoclip::encoder::preprocessor_for(encoder.image_size(), m.norm.into());
    let emb = Embedder::new(encoder, pre, device, dtype, m.frames)?;
    let pb = Progress::new(files.len() as u64, "embedding");
    let input = |i: usize| -> emoclip::Result<MediaInput> {
        let boxes = match (&boxes_one, &box_files[i]) {
            (Some(b), _) => Some(b.clone()),
            (None, Some(p)) => Some(media::load_boxes(p)?),
            (None, None) => None,
        };
        Ok(MediaInput::new(files[i].clone(), boxes))
    };
    let indices: Vec<usize> = (0..files.len()).collect();
    let run = emb.embed_each(&indices, m.batch, input, &mut |ev| {
        match ev {
            EmbedEvent::Skipped(f) => pb.suspend(|| tracing::error!("skipped: {}", f.message)),
            EmbedEvent::Batch { items } => pb.inc(items as u64),
            _ => {}
        }
        std::ops::ControlFlow::Continue(())
    })?;
    pb.finish();
    if let Some(w) = run.outside.warning() {
        tracing::warn!("{w}");
    }
    if run.no_subject > 0 && matches!(model.model, Model::Emotionclip) {
        tracing::info!(
            "{} input(s) had no person boxes: their subject masks are empty (pass --boxes/--boxes-dir)",
            run.no_subject
        );
    }
    let names = run.rows.iter().map(|(i, _)| files[*i].clone()).collect();
    let rows = run.rows.into_iter().map(|(_, v)| v).collect();
    let failed = run.failures.into_iter().map(|f| (files[f.index].clone(), f.message)).collect();
    Ok((names, rows, failed, emb))
}

fn report_failures(failed: &[(PathBuf, String)]) -> i32 {
    if failed.is_empty() {
        return 0;
    }
    eprintln!("\n{} input(s) failed:", failed.len());
    // Every message already names its file.
    for (_, e) in failed {
        eprintln!("  {e}");
    }
    1
}

pub fn embed(a: EmbedArgs) -> Result<i32> {
    check_embeddings_output(&a.out, "--out")?;
    let t0 = std::time::Instant::now();
    let (names, rows, failed, _) = embed_all(&a.media, &a.model)?;
    if !rows.is_empty() {
        emoclip::output::write_embeddings(&a.out, &names, &rows)?;
        eprintln!(
            "wrote {} embedding(s) of dimension {} to {} in {:.1}s",
            rows.len(),
            rows[0].len(),
            a.out.display(),
            t0.elapsed().as_secs_f64()
        );
    } else {
        eprintln!("no embeddings written");
    }
    Ok(report_failures(&failed))
}

fn read_lines(p: &Path) -> Result<Vec<String>> {
    let s = std::fs::read_to_string(p).with_context(|| format!("{}: cannot read", p.display()))?;
    Ok(s.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect())
}

pub fn embed_text(a: EmbedTextArgs) -> Result<i32> {
    check_embeddings_output(&a.out, "--out")?;
    let mut texts = a.texts.clone();
    if let Some(f) = &a.file {
        texts.extend(read_lines(f)?);
    }
    if texts.is_empty() {
        bail!("no texts given: pass them as arguments or with --file");
    }
    let (encoder, device, dtype) = a.model.load()?;
    let pre = emoclip::encoder::preprocessor_for(encoder.image_size(), Normalization::IMAGENET);
    let frames = encoder.frames_per_clip().unwrap_or(8);
    let emb = Embedder::new(encoder, pre, device, dtype, frames)?;
    let tok = ClipTokenizer::new()?;
    let trunc = if a.plain_truncation { Truncation::Plain } else { Truncation::ForceEot };
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let mut rows = Vec::new();
    for chunk in refs.chunks(256) {
        let t = emb.embed_texts(&tok, chunk, trunc)?;
        rows.extend(t.to_dtype(DType::F32)?.to_vec2::<f32>()?);
    }
    emoclip::output::write_embeddings(&a.out, &texts, &rows)?;
    eprintln!("wrote {} text embedding(s) to {}", rows.len(), a.out.display());
    Ok(0)
}

pub fn similarity(a: SimilarityArgs) -> Result<i32> {
    if let Some(out) = &a.out {
        check_output_file(out, &["json"], "--out")?;
    }
    let mut prompts = a.prompts.clone();
    if let Some(f) = &a.prompts_file {
        prompts.extend(read_lines(f)?);
    }
    let (names, rows, failed, emb) = embed_all(&a.media, &a.model)?;
    let tok = ClipTokenizer::new()?;
    let refs: Vec<&str> = prompts.iter().map(String::as_str).collect();
    let text = emb.embed_texts(&tok, &refs, Truncation::ForceEot)?.to_dtype(DType::F32)?.to_vec2::<f32>()?;
    let scale = emb.encoder.logit_scale()?;
    let table: Vec<ZeroShot> = rows.iter().map(|r| zero_shot(r, &text, scale)).collect();
    // Markdown table: one row per media file, one column per prompt: "scaled cosine (softmax %)".
    println!("| file | {} |", prompts.join(" | "));
    println!("|---|{}", "---|".repeat(prompts.len()));
    for (n, z) in names.iter().zip(&table) {
        let cells: Vec<String> =
            z.logits.iter().zip(&z.probs).map(|(l, p)| format!("{l:.2} ({:.1}%)", p * 100.0)).collect();
        let short = n.file_name().unwrap_or(n.as_os_str()).to_string_lossy();
        println!("| {short} | {} |", cells.join(" | "));
    }
    println!("\nscores are exp(logit_scale) · cos(media, prompt) with exp(logit_scale) = {scale:.2}; % = softmax over the prompts");
    if let Some(out) = &a.out {
        let json = emoclip::embed::zero_shot::to_json(&prompts, scale, &names, &table);
        emoclip::output::write_atomic(out, |f| std::io::Write::write_all(f, json.as_bytes()))?;
    }
    Ok(report_failures(&failed))
}

pub fn convert(a: ConvertArgs) -> Result<i32> {
    use emoclip::weights::{Checkpoint, Layout, LoadOptions};
    check_output_dir(&a.out, "--out")?;
    let ck = Checkpoint::open(&a.input)?;
    let config = match &a.config {
        Some(p) => Some(emoclip::weights::load::read_config(p)?),
        None => None,
    };
    let cfg = ck.resolve_config(config.as_ref())?;
    let opts = LoadOptions { config: Some(cfg.clone()), ..LoadOptions::default() };
    // Build strictly first so a partial or mismatched checkpoint is never converted.
    if ck.layout == Layout::EmotionClip {
        ck.load_emotionclip(&opts)?;
    } else {
        ck.load_clip(&opts)?;
    }
    std::fs::create_dir_all(&a.out).with_context(|| format!("{}: cannot create directory", a.out.display()))?;
    let weights = a.out.join("model.safetensors");
    let tensors: std::collections::HashMap<String, candle_core::Tensor> =
        ck.tensors.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    // Atomic, with ordinary file permissions (candle's writer leaves 0600).
    emoclip::run::save_safetensors(tensors.iter().map(|(k, v)| (k.as_str(), v)), &weights)?;
    let cfg_path = a.out.join("config.json");
    emoclip::output::write_atomic(&cfg_path, |f| std::io::Write::write_all(f, cfg.to_json().as_bytes()))?;
    eprintln!(
        "converted {} ({} layout, {} tensors) to {} and {}",
        ck.path.display(),
        ck.layout,
        tensors.len(),
        weights.display(),
        cfg_path.display()
    );
    Ok(0)
}
