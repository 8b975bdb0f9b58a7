//! MER-CLIP training and evaluation (MER-CLIP paper §4 setting; the trainer conventions of `train::trainer`):
//! AdamW over the trainable parameters, seeded shuffled batches, validation after every epoch, the best-on-valid
//! weights kept, test at the end, atomic checkpoints with exact resume, `metrics.jsonl` and an SVG plot.
//!
//! Defaults (MER-CLIP paper gives no optimiser settings; these are project choices, every one a
//! [`MerTrainConfig`] field): AdamW lr 1e-4 constant, betas (0.9, 0.999), eps 1e-8, weight decay 0.01 on
//! weight matrices (none on biases, LayerNorm gains, prompt vectors, `logit_scale`), batch 32, 20 epochs,
//! seed 0. Sentiment `logit_scale` is clamped to [0, ln 100] after each step as CLIP does. Model selection:
//! valid micro-F1 (emotion) or valid Acc-2 has0 (sentiment); the first epoch wins ties.
//!
//! Output directory: `ckpt-<step>/` (`model.safetensors`, `config.json` = [`MerConfig`],
//! `optimizer.safetensors`, `state.json` = [`TrainState`], `mer_state.json` = [`MerState`]) after every epoch
//! and every `checkpoint_every` steps (the newest `keep_checkpoints`, default 2, are kept), `LATEST`, `best/`
//! (`model.safetensors`, `config.json`, `valid.json`), `metrics.jsonl` (one `step` line per optimiser step, one
//! `epoch` line per validation, one `test` line),
//! `test.json`, `training.svg`. Everything is written under a temporary name and renamed.
//!
//! Exact resume: initial weights are drawn from per-parameter RNGs seeded by `(seed, name)`, batch order by
//! `(seed, epoch)`, dropout masks by `(seed, step)`; a checkpoint holds weights, AdamW moments and the position
//! `(step, epoch, batch)`, so an interrupted run continued with `resume` ends bit-identical to an uninterrupted one.
use super::config::{MerConfig, MerTask};
use super::data::{batches, MmsaData, Split};
use super::metrics::{emotion_metrics, sentiment_metrics, EmotionMetrics, SentimentMetrics};
use super::model::{MerClip, MerInputs};
use crate::optim::{is_gain_or_bias, AdamW, ParamGroup};
use crate::rng::mix_seed;
use crate::run::{self, CheckpointFiles, MetricsLog, Start, TrainState, LATEST};
use crate::weights::{CheckedTensors, Missing};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// `ln 100`, CLIP's `logit_scale` ceiling.
const LOGIT_SCALE_MAX: f64 = 4.605_170_185_988_092;

/// Optimisation settings (see the module documentation for the defaults).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MerTrainConfig {
    #[serde(default = "d_lr")]
    pub lr: f64,
    #[serde(default = "d_wd")]
    pub weight_decay: f64,
    #[serde(default = "d_epochs")]
    pub epochs: usize,
    #[serde(default = "d_batch")]
    pub batch_size: usize,
    #[serde(default)]
    pub seed: u64,
    /// Extra checkpoints every N optimiser steps (0: only after each epoch).
    #[serde(default)]
    pub checkpoint_every: usize,
    /// Newest `ckpt-<step>/` directories kept (older ones are deleted; `best/` is separate). At least 1.
    #[serde(default = "d_keep")]
    pub keep_checkpoints: usize,
    #[serde(default = "d_out")]
    pub out_dir: PathBuf,
}
fn d_lr() -> f64 {
    1e-4
}
fn d_wd() -> f64 {
    0.01
}
fn d_epochs() -> usize {
    20
}
fn d_batch() -> usize {
    32
}
fn d_keep() -> usize {
    2
}
fn d_out() -> PathBuf {
    PathBuf::from("runs/mer")
}

impl Default for MerTrainConfig {
    fn default() -> Self {
        Self {
            lr: d_lr(),
            weight_decay: d_wd(),
            epochs: d_epochs(),
            batch_size: d_batch(),
            seed: 0,
            checkpoint_every: 0,
            keep_checkpoints: d_keep(),
            out_dir: d_out(),
        }
    }
}

impl MerTrainConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::config_at(None, format!("MER-CLIP training options: {m}")));
        if self.batch_size == 0 || self.epochs == 0 || self.keep_checkpoints == 0 {
            return bad("batch_size, epochs and keep_checkpoints must be >= 1");
        }
        if !(self.lr.is_finite() && self.lr >= 0.0 && self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad("lr and weight_decay must be finite and >= 0");
        }
        Ok(())
    }
}

/// Scores of one split.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scores {
    Emotion(EmotionMetrics),
    Sentiment(SentimentMetrics),
}

impl Scores {
    /// The model-selection value: micro-F1 (emotion) or Acc-2 has0 (sentiment).
    pub fn key(&self) -> f64 {
        match self {
            Scores::Emotion(m) => m.micro_f1,
            Scores::Sentiment(m) => m.acc2_has0,
        }
    }
    pub fn key_name(&self) -> &'static str {
        match self {
            Scores::Emotion(_) => "micro_f1",
            Scores::Sentiment(_) => "acc2_has0",
        }
    }
    /// One-line summary in percent.
    pub fn summary(&self) -> String {
        match self {
            Scores::Emotion(m) => format!(
                "acc {:.1} P {:.1} R {:.1} micro-F1 {:.1}",
                100.0 * m.accuracy,
                100.0 * m.precision,
                100.0 * m.recall,
                100.0 * m.micro_f1
            ),
            Scores::Sentiment(m) => format!(
                "Acc-2 {:.1}/{} F1 {:.1}/{} (has0/non0)",
                100.0 * m.acc2_has0,
                m.acc2_non0.map_or("-".into(), |x| format!("{:.1}", 100.0 * x)),
                100.0 * m.f1_has0,
                m.f1_non0.map_or("-".into(), |x| format!("{:.1}", 100.0 * x))
            ),
        }
    }
}

/// Loss and scores of one split, with per-utterance predictions.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Evaluation {
    pub split: String,
    pub loss: f64,
    pub scores: Scores,
    /// 0/1 per utterance and label (emotion: 6 columns; sentiment: negative, positive).
    pub predictions: Vec<Vec<u8>>,
    pub ids: Vec<String>,
}

/// Model inputs for utterances `idx` of a split.
pub fn inputs(split: &Split, idx: &[usize], dev: &Device) -> Result<MerInputs> {
    Ok(MerInputs {
        text: split.text.gather(idx, dev)?,
        vision: split.vision.gather(idx, dev)?,
        audio: split.audio.gather(idx, dev)?,
        text_len: split.text.lengths_of(idx),
        vision_len: split.vision.lengths_of(idx),
        audio_len: split.audio.lengths_of(idx),
    })
}

/// Targets for utterances `idx`: emotion multi-hot `[B, 6]` f32, sentiment class indices `[B]` u32 (has0).
pub fn targets(split: &Split, task: MerTask, idx: &[usize], dev: &Device) -> Result<Tensor> {
    match task {
        MerTask::Emotion => {
            let e = split.emotion.as_ref().ok_or_else(|| no_emotion(split))?;
            let v: Vec<f32> = idx.iter().flat_map(|&i| e[i].iter().map(|&x| (x > 0.0) as u8 as f32)).collect();
            Ok(Tensor::from_vec(v, (idx.len(), 6), dev)?)
        }
        MerTask::Sentiment => {
            let v: Vec<u32> = idx.iter().map(|&i| (split.regression[i] >= 0.0) as u32).collect();
            Ok(Tensor::from_vec(v, idx.len(), dev)?)
        }
    }
}

fn no_emotion(split: &Split) -> Error {
    Error::Msg(format!(
        "split '{}' has no emotion labels: the emotion task needs `emotion_labels` [N, 6] in the feature file (CMU-MOSEI); use --task sentiment for CMU-MOSI",
        split.name
    ))
}

/// Evaluates `model` on a split (eval mode, batches in order).
pub fn evaluate(model: &MerClip, split: &Split, batch_size: usize, dev: &Device) -> Result<Evaluation> {
    let task = model.task();
    if task == MerTask::Emotion && split.emotion.is_none() {
        return Err(no_emotion(split));
    }
    let (mut loss_sum, mut preds) = (0.0, Vec::with_capacity(split.len()));
    for idx in batches(split.len(), batch_size, 0, 0, false) {
        let logits = model.forward(&inputs(split, &idx, dev)?, false)?;
        let loss = model.loss(&logits, &targets(split, task, &idx, dev)?)?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        loss_sum += loss * idx.len() as f64;
        let p: Vec<Vec<f32>> = model.predict(&logits)?.to_vec2()?;
        preds.extend(p.into_iter().map(|r| r.into_iter().map(|x| (x > 0.5) as u8).collect::<Vec<u8>>()));
    }
    let scores = match task {
        MerTask::Emotion => {
            let t = split.emotion_targets().ok_or_else(|| no_emotion(split))?;
            let p: Vec<Vec<bool>> = preds.iter().map(|r| r.iter().map(|&x| x == 1).collect()).collect();
            Scores::Emotion(emotion_metrics(&t, &p))
        }
        MerTask::Sentiment => {
            let p: Vec<bool> = preds.iter().map(|r| r.get(1) == Some(&1)).collect();
            Scores::Sentiment(sentiment_metrics(&split.regression, &p))
        }
    };
    Ok(Evaluation {
        split: split.name.clone(),
        loss: loss_sum / split.len().max(1) as f64,
        scores,
        predictions: preds,
        ids: split.ids.clone(),
    })
}

/// Builds a trainable model registered in a fresh `VarMap`: every parameter seeded from `(seed, name)`
/// ([`Missing::SeededByName`], so initialisation does not depend on build order); with `clip`, the CLIP text
/// tower (and `out_proj` from its `text_projection`) is taken from that open_clip / CLIP / EmotionCLIP
/// checkpoint instead (see [`MerClip::from_clip_checkpoint`]).
pub fn build_model(cfg: &MerConfig, clip: Option<&Path>, seed: u64, dev: &Device) -> Result<(MerClip, VarMap)> {
    let varmap = VarMap::new();
    let missing = Missing::SeededByName(mix_seed(&[seed, 0x3E1]));
    let model = match clip {
        Some(path) => MerClip::from_clip_checkpoint(cfg, path, &varmap, missing, dev)?.0,
        None => {
            let vb = CheckedTensors::new(HashMap::new(), missing, Some(varmap.clone())).var_builder(DType::F32, dev);
            MerClip::new(cfg, vb, dev)?
        }
    };
    Ok((model, varmap))
}

/// Where the best-on-valid model stands, saved as `mer_state.json` in each checkpoint.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct MerState {
    pub best_epoch: Option<usize>,
    pub best_value: Option<f64>,
    /// Mean training loss of the epoch in progress so far (sum, count), so resumed epochs report the same mean.
    pub epoch_loss: (f64, usize),
}

/// One line of `metrics.jsonl`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum MetricLine {
    Step { step: usize, epoch: usize, loss: f64, lr: f64, utterances_per_s: f64 },
    Epoch { epoch: usize, step: usize, train_loss: f64, valid_loss: f64, valid: Scores, best: bool },
    Test { epoch: usize, loss: f64, test: Scores },
}

/// The MER-CLIP training loop; see the module documentation.
pub struct MerTrainer {
    pub cfg: MerTrainConfig,
    pub model_cfg: MerConfig,
    model: MerClip,
    varmap: VarMap,
    opt: AdamW,
    data: Arc<MmsaData>,
    device: Device,
    step: usize,
    epoch: usize,
    pos: usize,
    state: MerState,
    last_checkpoint: Option<PathBuf>,
}

/// What a MER-CLIP run writes in its output directory besides `ckpt-<step>/` (see [`run::run_entries`]).
pub const RUN_FILES: &[&str] = &[LATEST, "metrics.jsonl", "best", ".tmp-best", "test.json", "training.svg"];

impl MerTrainer {
    /// Sets up training of `model_cfg` on `data`; `clip` initialises the text tower from a CLIP checkpoint.
    /// `start`: `false` / [`Start::Fresh`] refuses a `cfg.out_dir` that already holds a run, `true` /
    /// [`Start::Resume`] continues from its newest checkpoint (whose `config.json` then defines the model),
    /// [`Start::Overwrite`] deletes that run's files once everything else is set up.
    pub fn new(
        cfg: MerTrainConfig,
        model_cfg: MerConfig,
        data: impl Into<Arc<MmsaData>>,
        clip: Option<&Path>,
        device: Device,
        start: impl Into<Start>,
    ) -> Result<Self> {
        let start = start.into();
        cfg.validate()?;
        if start == Start::Fresh {
            run::ensure_no_run(&cfg.out_dir, RUN_FILES)?;
        }
        let data: Arc<MmsaData> = data.into();
        let resume_dir = if start == Start::Resume { run::latest(&cfg.out_dir)? } else { None };
        let model_cfg = match &resume_dir {
            Some(dir) => MerConfig::from_file(&dir.join("config.json"))?,
            None => model_cfg,
        };
        let dims = data.dims();
        let want = [model_cfg.dims.text, model_cfg.dims.vision, model_cfg.dims.audio];
        if dims != want {
            return Err(Error::Data {
                path: data.path.clone(),
                msg: format!("feature widths (text, vision, audio) {dims:?} differ from the model's {want:?}; use the model's dataset (or --dataset / a config with these dims)"),
            });
        }
        if model_cfg.task == MerTask::Emotion && !data.has_emotion() {
            return Err(Error::Data { path: data.path.clone(), msg: "no `emotion_labels` in this file: the emotion task needs CMU-MOSEI-style emotion intensities; use --task sentiment".into() });
        }
        if data.train.is_empty() || data.valid.is_empty() || data.test.is_empty() {
            return Err(Error::Data {
                path: data.path.clone(),
                msg: "every split needs at least one utterance".into(),
            });
        }
        let (model, varmap) =
            build_model(&model_cfg, if resume_dir.is_some() { None } else { clip }, cfg.seed, &device)?;
        let (mut decay, mut no_decay) = (Vec::new(), Vec::new());
        for (name, var) in model.trainable_vars(&varmap) {
            if is_gain_or_bias(&name, var.rank()) || name == "prompt.ctx" || name == "logit_scale" {
                no_decay.push(name)
            } else {
                decay.push(name)
            }
        }
        let mut g_decay = ParamGroup::new("decay", cfg.lr, decay);
        g_decay.weight_decay = cfg.weight_decay;
        let mut g_plain = ParamGroup::new("no_decay", cfg.lr, no_decay);
        g_plain.weight_decay = 0.0;
        let mut opt = AdamW::new(&varmap, vec![g_decay, g_plain])?;
        let (mut step, mut epoch, mut pos, mut state) = (0, 0, 0, MerState::default());
        if let Some(dir) = &resume_dir {
            let mp = dir.join("model.safetensors");
            let mut vm = varmap.clone();
            vm.load(&mp)
                .map_err(|e| Error::checkpoint(&mp, format!("{e}; the checkpoint does not match its config.json")))?;
            let (ts, opt_state) = run::load_state(dir)?;
            opt.load_state_tensors(&opt_state)?;
            let sp = dir.join("mer_state.json");
            let s = std::fs::read_to_string(&sp).map_err(|e| Error::io(&sp, e))?;
            state = serde_json::from_str(&s).map_err(|e| Error::checkpoint(&sp, format!("bad mer_state.json: {e}")))?;
            if ts.config != serde_json::to_value(&cfg).unwrap_or_default() {
                tracing::warn!("resuming {} with different training options than it was started with; the run will not continue exactly", dir.display());
            }
            (step, epoch, pos) = (ts.step, ts.epoch, ts.pos);
        }
        if start == Start::Overwrite {
            run::overwrite(&cfg.out_dir, RUN_FILES)?;
        }
        Ok(Self {
            cfg,
            model_cfg,
            model,
            varmap,
            opt,
            data,
            device,
            step,
            epoch,
            pos,
            state,
            last_checkpoint: resume_dir,
        })
    }

    pub fn model(&self) -> &MerClip {
        &self.model
    }
    pub fn varmap(&self) -> &VarMap {
        &self.varmap
    }
    pub fn step(&self) -> usize {
        self.step
    }
    pub fn epoch(&self) -> usize {
        self.epoch
    }
    pub fn data(&self) -> &MmsaData {
        &self.data
    }
    pub fn last_checkpoint(&self) -> Option<&Path> {
        self.last_checkpoint.as_deref()
    }
    pub fn steps_per_epoch(&self) -> usize {
        self.data.train.len().div_ceil(self.cfg.batch_size)
    }
    pub fn total_steps(&self) -> usize {
        self.steps_per_epoch() * self.cfg.epochs
    }

    /// One optimiser step on the next training batch; returns the metrics line.
    pub fn train_step(&mut self) -> Result<MetricLine> {
        let t0 = Instant::now();
        let order = batches(self.data.train.len(), self.cfg.batch_size, self.cfg.seed, self.epoch, true);
        let idx = order
            .get(self.pos)
            .ok_or_else(|| Error::Msg(format!("batch {} of epoch {} does not exist", self.pos, self.epoch)))?;
        let task = self.model.task();
        let x = inputs(&self.data.train, idx, &self.device)?;
        let y = targets(&self.data.train, task, idx, &self.device)?;
        crate::nn::seed_dropout(mix_seed(&[self.cfg.seed, 0xD0, self.step as u64]));
        let logits = self.model.forward(&x, true)?;
        let loss = self.model.loss(&logits, &y)?;
        let l = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        if !l.is_finite() {
            return Err(Error::NonFinite(format!(
                "training loss is {l} at step {} (epoch {}); training stopped (lower --lr?); the last good checkpoint is {}",
                self.step + 1,
                self.epoch,
                self.last_checkpoint.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "none".into())
            )));
        }
        let grads = loss.backward()?;
        self.opt.step(&grads)?;
        if let Some(v) =
            self.varmap.data().lock().map_err(|_| Error::Msg("VarMap lock poisoned".into()))?.get("logit_scale")
        {
            v.set(&v.as_tensor().clamp(0.0, LOGIT_SCALE_MAX)?)?;
        }
        self.step += 1;
        self.pos += 1;
        self.state.epoch_loss.0 += l;
        self.state.epoch_loss.1 += 1;
        Ok(MetricLine::Step {
            step: self.step,
            epoch: self.epoch,
            loss: l,
            lr: self.cfg.lr,
            utterances_per_s: idx.len() as f64 / t0.elapsed().as_secs_f64().max(1e-9),
        })
    }

    /// Writes `out_dir/ckpt-<step>/` (through a temporary directory), points `LATEST` at it and deletes all
    /// but the newest `keep_checkpoints` checkpoints.
    pub fn save_checkpoint(&mut self) -> Result<PathBuf> {
        let state = TrainState {
            step: self.step,
            epoch: self.epoch,
            pos: self.pos,
            seed: self.cfg.seed,
            config: serde_json::to_value(&self.cfg)?,
        };
        let files = CheckpointFiles {
            model: &self.varmap,
            config_json: self.model_cfg.to_json()?,
            optimizer: self.opt.state_tensors()?,
            state: &state,
            extra: vec![("mer_state.json", to_json(&self.state)?)],
        };
        let dir = run::save_checkpoint(&self.cfg.out_dir, &files)?;
        self.last_checkpoint = Some(dir.clone());
        run::prune_checkpoints(&self.cfg.out_dir, self.cfg.keep_checkpoints)?;
        Ok(dir)
    }

    /// Writes `out_dir/best/` (weights, config, `valid.json`) whole.
    fn save_best(&self, valid: &Evaluation) -> Result<()> {
        let config_json = self.model_cfg.to_json()?;
        run::write_dir(&self.cfg.out_dir, "best", |tmp| {
            run::write_model(tmp, &self.varmap, &config_json)?;
            let v = serde_json::json!({"epoch": self.epoch, "loss": valid.loss, "scores": valid.scores});
            let p = tmp.join("valid.json");
            std::fs::write(&p, serde_json::to_string_pretty(&v).unwrap_or_default()).map_err(|e| Error::io(&p, e))
        })?;
        Ok(())
    }

    /// Trains to the end (or until `until` optimiser steps, leaving a checkpoint there), validating after each
    /// epoch; at the end evaluates the best-on-valid weights on test. `on_line` sees every metrics line.
    /// Returns the test evaluation when the run finished.
    pub fn run(&mut self, until: Option<usize>, mut on_line: impl FnMut(&MetricLine)) -> Result<Option<Evaluation>> {
        let out = self.cfg.out_dir.clone();
        let mp = out.join("metrics.jsonl");
        // After a resume, what was logged past the checkpoint is logged again: keep the step lines up to its
        // step and the epoch lines of the epochs it completed; a test line comes again at the end.
        let (step, epoch) = (self.step as u64, self.epoch as u64);
        let mut mf = MetricsLog::open(&mp, |v| {
            let num = |k: &str| v.get(k).and_then(|x| x.as_u64());
            match v.get("kind").and_then(|k| k.as_str()) {
                Some("step") => num("step").is_some_and(|s| s <= step),
                Some("epoch") => num("epoch").is_some_and(|e| e < epoch),
                _ => false,
            }
        })?;
        let mut log = |line: &MetricLine| -> Result<()> {
            mf.append(line)?;
            on_line(line);
            Ok(())
        };
        let spe = self.steps_per_epoch();
        while self.epoch < self.cfg.epochs {
            if until.is_some_and(|u| self.step >= u) {
                if self.last_checkpoint.as_ref().is_none_or(|p| !p.ends_with(format!("ckpt-{}", self.step))) {
                    self.save_checkpoint()?;
                }
                return Ok(None);
            }
            if self.pos < spe {
                let line = self.train_step()?;
                log(&line)?;
                if self.cfg.checkpoint_every > 0
                    && self.step.is_multiple_of(self.cfg.checkpoint_every)
                    && self.pos < spe
                {
                    self.save_checkpoint()?;
                }
                continue;
            }
            // End of epoch: validate, keep the best, checkpoint.
            let valid = evaluate(&self.model, &self.data.valid, self.cfg.batch_size, &self.device)?;
            let value = valid.scores.key();
            let best = self.state.best_value.is_none_or(|b| value > b);
            if best {
                self.save_best(&valid)?;
                self.state.best_value = Some(value);
                self.state.best_epoch = Some(self.epoch);
            }
            let (s, n) = self.state.epoch_loss;
            log(&MetricLine::Epoch {
                epoch: self.epoch,
                step: self.step,
                train_loss: s / n.max(1) as f64,
                valid_loss: valid.loss,
                valid: valid.scores,
                best,
            })?;
            self.epoch += 1;
            self.pos = 0;
            self.state.epoch_loss = (0.0, 0);
            self.save_checkpoint()?;
        }
        let best_dir = out.join("best");
        let (best_model, _) = load_model(&best_dir, &self.device)?;
        let test = evaluate(&best_model, &self.data.test, self.cfg.batch_size, &self.device)?;
        log(&MetricLine::Test { epoch: self.state.best_epoch.unwrap_or(0), loss: test.loss, test: test.scores })?;
        drop(mf);
        let json = serde_json::to_string_pretty(&test)?;
        crate::output::write_atomic(&out.join("test.json"), |f| f.write_all(json.as_bytes()))?;
        plot_training(&mp, &out.join("training.svg"))?;
        Ok(Some(test))
    }
}

fn to_json<T: Serialize>(v: &T) -> Result<String> {
    Ok(serde_json::to_string_pretty(v)?)
}

/// Loads a trained model from a directory holding `model.safetensors` + `config.json` (`best/`, `ckpt-<step>/`).
pub fn load_model(dir: &Path, dev: &Device) -> Result<(MerClip, VarMap)> {
    let cj = dir.join("config.json");
    if !cj.is_file() {
        return Err(Error::checkpoint(
            dir,
            "no config.json here; pass a MER-CLIP run's best/ or ckpt-<step>/ directory",
        ));
    }
    let cfg = MerConfig::from_file(&cj)?;
    let (model, mut varmap) = build_model(&cfg, None, 0, dev)?;
    let mp = dir.join("model.safetensors");
    varmap.load(&mp).map_err(|e| Error::checkpoint(&mp, format!("{e}; the weights do not match config.json")))?;
    Ok((model, varmap))
}

/// Plots the training loss per step and the validation selection metric per epoch from `metrics.jsonl`.
pub fn plot_training(metrics: &Path, svg: &Path) -> Result<()> {
    use crate::plot::{line_charts, Line};
    use plotters::style::{BLUE, RED};
    let text = std::fs::read_to_string(metrics).map_err(|e| Error::io(metrics, e))?;
    let (mut loss, mut valid) = (std::collections::BTreeMap::new(), std::collections::BTreeMap::new());
    let mut key = "valid";
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        match serde_json::from_str::<MetricLine>(line)
            .map_err(|e| Error::config(metrics, format!("line {}: {e}", i + 1)))?
        {
            MetricLine::Step { step, loss: l, .. } if l.is_finite() => {
                loss.insert(step, l);
            }
            MetricLine::Epoch { epoch, valid: v, .. } => {
                key = v.key_name();
                valid.insert(epoch, v.key());
            }
            _ => {}
        }
    }
    if loss.is_empty() {
        return Err(Error::config(metrics, "no finite loss to plot"));
    }
    let loss_line = Line {
        title: "Training loss".into(),
        x_label: "step",
        y_label: "loss",
        x_max: loss.keys().last().copied().unwrap_or(1).max(1) as f64,
        y_max: loss.values().cloned().fold(0.0f64, f64::max).max(1e-6) * 1.05,
        points: loss.iter().map(|(&k, &v)| (k as f64, v)).collect(),
        color: BLUE,
        markers: false,
        mark: None,
    };
    let valid_line = Line {
        title: format!("Validation {key}"),
        x_label: "epoch",
        y_label: key,
        x_max: valid.keys().last().copied().unwrap_or(0).max(1) as f64,
        y_max: 1.0,
        points: valid.iter().map(|(&k, &v)| (k as f64, v)).collect(),
        color: RED,
        markers: true,
        mark: None,
    };
    line_charts(svg, &[loss_line, valid_line])
}

/// Builds the model config for a task and dataset: MOSI / MOSEI feature widths from the data, the given query
/// word (`None`: prompts only), `tiny` for tests and smoke runs.
pub fn model_config(task: MerTask, data: &MmsaData, query_word: Option<String>, tiny: bool) -> MerConfig {
    let d = data.dims();
    let dims = super::config::FeatureDims { text: d[0], vision: d[1], audio: d[2] };
    let mut c = if tiny { MerConfig::tiny(task, dims) } else { MerConfig::new(task, dims) };
    c.query_word = query_word;
    c
}

/// Summary numbers of a finished run (for tables).
pub fn read_test(out: &Path) -> Result<Evaluation> {
    let p = out.join("test.json");
    let s = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
    serde_json::from_str(&s).map_err(|e| Error::checkpoint(&p, format!("bad test.json: {e}")))
}
