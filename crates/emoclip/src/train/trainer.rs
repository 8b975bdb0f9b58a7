//! The pre-training loop (official `src/engine/trainer.py`, paper §3.4 / appendix B.2): SNCE, gradient accumulation, grouped AdamW with schedule, `logit_scale` clamp, metrics, checkpoints and exact resume.
use super::config::TrainConfig;
use super::data::{load_batch, Dataset, ShardDataset, SyntheticDataset};
use super::distributed::{self, Collective, Single};
use super::{param_groups, snce_loss, SnceConfig};
use crate::emotionclip::{EmotionClip, EmotionClipConfig};
use crate::hash::Fnv1a64;
use crate::optim::{AdamW, LrSchedule};
use crate::rng::mix_seed;
use crate::run::{self, CheckpointFiles, MetricsLog, Start, TrainState};
use crate::weights::{CheckedTensors, Checkpoint, Missing};
use crate::{Error, Result};
use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Official `logit_scale` clamp: `[0, ln 100]`.
pub const LOGIT_SCALE_MAX: f64 = 4.605_170_185_988_092;

/// What `emoclip train` writes in its output directory besides `ckpt-<step>/` (see [`run::run_entries`]);
/// `LATEST.tmp` is what older versions left while writing `LATEST`.
pub const RUN_FILES: &[&str] = &[run::LATEST, "LATEST.tmp", "metrics.jsonl", "loss.svg"];
/// [`EmotionClipConfig::tiny`], under the name `emoclip-cli/src/bench.rs` uses.
pub fn tiny_config() -> EmotionClipConfig {
    EmotionClipConfig::tiny()
}

/// Builds a trainable model: tensors from `tensors`, the others drawn from a seeded RNG in build order
/// ([`Missing::Seeded`]), every parameter a `Var` in the returned `VarMap`; errors on mis-shaped or unused keys.
pub fn build_trainable(
    cfg: &EmotionClipConfig,
    tensors: HashMap<String, Tensor>,
    seed: u64,
    dev: &Device,
    origin: &Path,
) -> Result<(EmotionClip, VarMap)> {
    let varmap = VarMap::new();
    let checked = CheckedTensors::new(tensors, Missing::Seeded(mix_seed(&[seed, 0x1417])), Some(varmap.clone()));
    let model = EmotionClip::load(checked.var_builder(DType::F32, dev), cfg)
        .map_err(|e| Error::checkpoint(origin, format!("cannot build the model: {e}")))?;
    let report = checked.report(&["backbone.logit_scale", "visual_head.position_ids"]);
    let mut problems = report.misshaped;
    problems.extend(report.unexpected.iter().map(|k| format!("{k}: unexpected")));
    if !problems.is_empty() {
        problems.sort();
        return Err(Error::checkpoint(
            origin,
            format!("checkpoint does not match the model:\n  {}", problems.join("\n  ")),
        ));
    }
    Ok((model, varmap))
}

/// Metrics of one optimiser step (one line of `metrics.jsonl`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepMetrics {
    pub step: usize,
    pub epoch: usize,
    pub loss: f64,
    /// Learning rate of the frame-encoder rest group (the largest weights group).
    pub lr: f64,
    pub logit_scale: f64,
    pub clips_per_s: f64,
}

/// The training loop; see the module documentation.
pub struct Trainer {
    pub cfg: TrainConfig,
    pub model_cfg: EmotionClipConfig,
    model: EmotionClip,
    varmap: VarMap,
    opt: AdamW,
    base_lrs: Vec<f64>,
    schedule: LrSchedule,
    data: Box<dyn Dataset>,
    device: Device,
    step: usize,
    epoch: usize,
    pos: usize,
    steps_per_epoch: usize,
    total_steps: usize,
    last_checkpoint: Option<PathBuf>,
    /// Process group (data parallel); [`Single`] for one process: the same code path either way.
    dist: Box<dyn Collective>,
}

impl Trainer {
    /// Builds the trainer and its dataset from the config. `start`: `false` / [`Start::Fresh`] refuses an
    /// `out_dir` that already holds a run, `true` / [`Start::Resume`] continues from its newest checkpoint,
    /// [`Start::Overwrite`] deletes that run's files (once everything else is set up).
    pub fn new(cfg: TrainConfig, device: Device, start: impl Into<Start>) -> Result<Self> {
        Self::new_distributed(cfg, device, start, Box::new(Single))
    }

    /// [`Trainer::new`] as one rank of a data-parallel group (see [`super::distributed`]): each rank draws
    /// `batch_size` clips (rank-strided from the epoch order), the loss runs over the features of all ranks,
    /// gradients are averaged, and only rank 0 writes checkpoints, metrics and the plot.
    pub fn new_distributed(
        cfg: TrainConfig,
        device: Device,
        start: impl Into<Start>,
        dist: Box<dyn Collective>,
    ) -> Result<Self> {
        let start = start.into();
        check_out_dir(&cfg, start, dist.as_ref())?;
        let model_cfg = cfg.model_config()?;
        let (frames, size, ctx) =
            (model_cfg.video_len, model_cfg.backbone.vision_cfg.image_size, model_cfg.backbone.text_cfg.context_length);
        let data: Box<dyn Dataset> = match (&cfg.data.shards, &cfg.data.synthetic) {
            (Some(p), _) => {
                let vocab = model_cfg.backbone.text_cfg.vocab_size;
                if vocab <= crate::tokenizer::EOT as usize {
                    return Err(Error::config(
                        p,
                        format!(
                            "the model's vocab_size {vocab} cannot hold CLIP BPE ids (49408 needed) for shard captions"
                        ),
                    ));
                }
                let opts = crate::shards::StreamOptions { buffer: cfg.shuffle_buffer, ..Default::default() };
                Box::new(ShardDataset::open_with(p, frames, size, ctx, opts)?)
            }
            (None, Some(s)) => Box::new(SyntheticDataset::new(
                s.n,
                s.classes,
                s.seed,
                frames,
                size,
                model_cfg.backbone.text_cfg.vocab_size,
                ctx,
                s.noise,
            )?),
            (None, None) => return Err(Error::config_at(cfg.source.as_deref(), "data: set `shards` or `synthetic`")),
        };
        Self::with_dataset_distributed(cfg, data, device, start, dist)
    }

    /// Same as [`Trainer::new`] with a caller-supplied dataset.
    pub fn with_dataset(
        cfg: TrainConfig,
        data: Box<dyn Dataset>,
        device: Device,
        start: impl Into<Start>,
    ) -> Result<Self> {
        Self::with_dataset_distributed(cfg, data, device, start, Box::new(Single))
    }

    /// [`Trainer::with_dataset`] as one rank of a data-parallel group (see [`Trainer::new_distributed`]).
    pub fn with_dataset_distributed(
        cfg: TrainConfig,
        data: Box<dyn Dataset>,
        device: Device,
        start: impl Into<Start>,
        mut dist: Box<dyn Collective>,
    ) -> Result<Self> {
        let start = start.into();
        cfg.validate(cfg.source.as_deref())?;
        check_out_dir(&cfg, start, dist.as_ref())?;
        let resume_dir = if start == Start::Resume { run::latest(&cfg.out_dir)? } else { None };
        let (model_cfg, tensors, origin) = match &resume_dir {
            Some(dir) => {
                let ck = Checkpoint::open(dir)?;
                let mc = ck.resolve_config(None)?;
                (mc, ck.tensors, ck.path)
            }
            None => {
                let mc = cfg.model_config()?;
                match &cfg.init {
                    Some(p) => {
                        let ck = Checkpoint::open(p)?;
                        (mc, ck.tensors, ck.path)
                    }
                    None => (mc, HashMap::new(), PathBuf::from("<random init>")),
                }
            }
        };
        let (model, varmap) = build_trainable(&model_cfg, tensors, cfg.seed, &device, &origin)?;
        let mut groups = param_groups(&varmap, cfg.optimizer.groups())?;
        for g in &mut groups {
            g.params.retain(|n| !cfg.frozen(n));
            g.lr = cfg.lr.unwrap_or(g.lr) * cfg.lr_scale;
        }
        if groups.iter().all(|g| g.params.is_empty()) {
            return Err(Error::config_at(
                cfg.source.as_deref(),
                format!("freeze = {} leaves no parameter to train; unfreeze at least one part", cfg.freeze_list()),
            ));
        }
        let base_lrs: Vec<f64> = groups.iter().map(|g| g.lr).collect();
        let mut opt = AdamW::new(&varmap, groups)?;
        let micro = cfg.batch_size * cfg.grad_accum;
        // DistributedSampler with drop_last: every rank sees len / world clips per epoch.
        let world = dist.world_size();
        let steps_per_epoch = data.len() / (micro * world);
        if steps_per_epoch == 0 {
            return Err(Error::config_at(
                cfg.source.as_deref(),
                format!("the dataset has {} clips, fewer than one step (batch_size × grad_accum × world size = {micro} × {world})", data.len()),
            ));
        }
        let total_steps = cfg.max_steps.unwrap_or(cfg.epochs * steps_per_epoch);
        if cfg.warmup_steps > total_steps && dist.rank() == 0 {
            tracing::warn!(
                "{}warmup_steps = {} is more than the run's {total_steps} steps (max_steps, or epochs × {steps_per_epoch} steps per epoch): the learning rate stays in warm-up and never reaches its peak; lower warmup_steps for a real run",
                cfg.source.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default(),
                cfg.warmup_steps
            );
        }
        let schedule = cfg.optimizer.schedule(cfg.warmup_steps, steps_per_epoch, total_steps);
        schedule.validate()?;
        let (mut step, mut epoch, mut pos) = (0, 0, 0);
        if let Some(dir) = &resume_dir {
            let (state, opt_state) = run::load_state(dir)?;
            opt.load_state_tensors(&opt_state)?;
            // Data order, crops and dropout are functions of these: changing them breaks exact continuation.
            for key in [
                "seed",
                "batch_size",
                "grad_accum",
                "data",
                "optimizer",
                "lr",
                "lr_scale",
                "beta",
                "warmup_steps",
                "freeze",
                "shuffle_buffer",
            ] {
                let now = serde_json::to_value(&cfg).ok().and_then(|v| v.get(key).cloned());
                if state.config.get(key) != now.as_ref() {
                    tracing::warn!("resuming {} with a different `{key}` than it was trained with; the run will not continue exactly", dir.display());
                }
            }
            (step, epoch, pos) = (state.step, state.epoch, state.pos);
        }
        // DDP starts every rank from rank 0's weights; here every rank builds them itself (seeded init or the
        // same checkpoint), so check that they agree instead of silently training diverging replicas.
        let fingerprint = if world > 1 {
            start_fingerprint(&cfg, &varmap, &opt, step, epoch, pos, data.len())?
        } else {
            String::new()
        };
        distributed::check_same(dist.as_mut(), &fingerprint, "weights, optimiser state or config")?;
        if start == Start::Overwrite && dist.rank() == 0 {
            run::overwrite(&cfg.out_dir, RUN_FILES)?;
        }
        Ok(Self {
            cfg,
            model_cfg,
            model,
            varmap,
            opt,
            base_lrs,
            schedule,
            data,
            device,
            step,
            epoch,
            pos,
            steps_per_epoch,
            total_steps,
            last_checkpoint: resume_dir,
            dist,
        })
    }

    pub fn model(&self) -> &EmotionClip {
        &self.model
    }
    pub fn varmap(&self) -> &VarMap {
        &self.varmap
    }
    pub fn step(&self) -> usize {
        self.step
    }
    pub fn total_steps(&self) -> usize {
        self.total_steps
    }
    pub fn steps_per_epoch(&self) -> usize {
        self.steps_per_epoch
    }
    pub fn last_checkpoint(&self) -> Option<&Path> {
        self.last_checkpoint.as_deref()
    }
    /// This process's rank (0 without data parallelism); only rank 0 writes files.
    pub fn rank(&self) -> usize {
        self.dist.rank()
    }
    pub fn world_size(&self) -> usize {
        self.dist.world_size()
    }

    fn frames_size(&self) -> (usize, usize) {
        (self.model_cfg.video_len, self.model_cfg.backbone.vision_cfg.image_size)
    }

    /// One optimiser step over `grad_accum` micro-batches: [`Trainer::compute_gradients`] then [`Trainer::apply_gradients`].
    pub fn train_step(&mut self) -> Result<StepMetrics> {
        let t0 = Instant::now();
        let (grads, loss) = self.compute_gradients()?;
        self.apply_gradients(&grads)?;
        let logit_scale = self
            .model
            .logit_scale()
            .to_dtype(DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?
            .first()
            .copied()
            .unwrap_or(f64::NAN);
        let lr = self.opt.groups().get(1).map(|g| g.lr).unwrap_or(0.0);
        let dt = t0.elapsed().as_secs_f64().max(1e-9);
        Ok(StepMetrics {
            step: self.step,
            epoch: self.epoch,
            loss,
            lr,
            logit_scale,
            clips_per_s: (self.cfg.batch_size * self.cfg.grad_accum * self.dist.world_size()) as f64 / dt,
        })
    }

    /// The dataset indices of this rank's micro-batch at `pos`: DistributedSampler's rank-strided split of the
    /// epoch order (`order[(pos·b + i)·W + rank]`); with one process, `order[pos·b .. (pos+1)·b]`.
    fn local_indices(&self, order: &[usize]) -> Result<Vec<usize>> {
        let (b, w, r) = (self.cfg.batch_size, self.dist.world_size(), self.dist.rank());
        (0..b)
            .map(|i| {
                order.get((self.pos * b + i) * w + r).copied().ok_or_else(|| {
                    Error::Msg(format!(
                        "epoch {} order has {} clips, fewer than step position {} needs",
                        self.epoch,
                        order.len(),
                        self.pos
                    ))
                })
            })
            .collect()
    }

    /// Forward and backward over `grad_accum` micro-batches (advancing the data position), with the features of
    /// every rank gathered into one contrastive matrix (official `gather_features`), and the gradients averaged
    /// over ranks (DDP). Returns the gradients and the mean loss (the same value on every rank).
    pub fn compute_gradients(&mut self) -> Result<(GradStore, f64)> {
        let (frames, size) = self.frames_size();
        let mut acc: Option<GradStore> = None;
        let mut loss_sum = 0.0;
        let vars: Vec<Var> = self.varmap.all_vars();
        let snce = SnceConfig { beta: self.cfg.beta, ..Default::default() };
        let _autocast = crate::nn::autocast::autocast(self.cfg.precision.autocast_dtype());
        for micro in 0..self.cfg.grad_accum {
            if self.pos >= self.steps_per_epoch * self.cfg.grad_accum {
                self.epoch += 1;
                self.pos = 0;
            }
            let order = self.data.epoch_order(self.cfg.seed, self.epoch);
            let idx = self.local_indices(&order)?;
            let batch = load_batch(self.data.as_ref(), &idx, self.cfg.seed, self.epoch, frames, size, &self.device)?;
            // Dropout differs per rank (as DDP's per-process RNG would); rank 0 of one process keeps the old stream.
            let mut dseed = vec![self.cfg.seed, 0xD0, self.step as u64, micro as u64];
            if self.dist.rank() > 0 {
                dseed.push(self.dist.rank() as u64);
            }
            crate::nn::seed_dropout(mix_seed(&dseed));
            let v = self.model.encode_video_t(&batch.video, Some(&batch.masks), true)?;
            let t = self.model.encode_text(&batch.ids)?;
            let v = crate::nn::l2_normalize(&v)?;
            let t = crate::nn::l2_normalize(&t)?;
            let v = distributed::gather_features(self.dist.as_mut(), &v)?;
            let t = distributed::gather_features(self.dist.as_mut(), &t)?;
            let emotion = self.dist.all_gather(&batch.emotion)?;
            let loss = snce_loss(&v, &t, self.model.logit_scale(), &emotion, &snce).map_err(|e| match e {
                Error::NonFinite(m) => Error::NonFinite(format!(
                    "step {} (epoch {}): {m}; training stopped, the last good checkpoint is {}",
                    self.step + 1,
                    self.epoch,
                    self.last_checkpoint.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "none".into())
                )),
                other => other,
            })?;
            loss_sum += loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            let scaled = (loss / self.cfg.grad_accum as f64)?;
            let grads = scaled.backward()?;
            acc = Some(match acc {
                None => grads,
                Some(mut a) => {
                    for var in &vars {
                        if let Some(g) = grads.get(var.as_tensor()) {
                            let sum = match a.get(var.as_tensor()) {
                                Some(prev) => (prev + g)?,
                                None => g.clone(),
                            };
                            a.insert(var.as_tensor(), sum);
                        }
                    }
                    a
                }
            });
            self.pos += 1;
        }
        let mut grads = acc.ok_or_else(|| Error::Msg("grad_accum must be >= 1".into()))?;
        // DDP (no_sync during accumulation): one average over ranks per optimiser step, trainable parameters only.
        let trainable = self.trainable_vars()?;
        distributed::all_reduce_grads(self.dist.as_mut(), &mut grads, &trainable)?;
        Ok((grads, loss_sum / self.cfg.grad_accum as f64))
    }

    /// The parameters the optimiser updates, in name order (the same order on every rank).
    fn trainable_vars(&self) -> Result<Vec<(String, Var)>> {
        let names: HashSet<&String> = self.opt.groups().into_iter().flat_map(|g| g.params.iter()).collect();
        let data = self.varmap.data().lock().map_err(|_| Error::Msg("VarMap lock poisoned".into()))?;
        let mut out: Vec<(String, Var)> =
            data.iter().filter(|(k, _)| names.contains(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// One optimiser step with `grads` at the current schedule position, then the official `logit_scale` clamp.
    pub fn apply_gradients(&mut self, grads: &GradStore) -> Result<()> {
        for (i, base) in self.base_lrs.iter().enumerate() {
            self.opt.set_lr(i, self.schedule.lr(*base, self.step))?;
        }
        self.opt.step(grads)?;
        // Official: clamp logit_scale to [0, ln 100] after each step.
        let ls = self.model.logit_scale();
        let clamped = ls.clamp(0.0, LOGIT_SCALE_MAX)?;
        if let Some(var) =
            self.varmap.data().lock().map_err(|_| Error::Msg("VarMap lock poisoned".into()))?.get("logit_scale")
        {
            var.set(&clamped)?;
        }
        self.step += 1;
        Ok(())
    }

    /// Errors when any parameter holds NaN/inf (checked before writing a checkpoint).
    fn check_finite(&self) -> Result<()> {
        let data = self.varmap.data().lock().map_err(|_| Error::Msg("VarMap lock poisoned".into()))?;
        for (name, v) in data.iter() {
            let s = v.as_tensor().sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            if !s.is_finite() {
                return Err(Error::NonFinite(format!(
                    "step {}: parameter {name} holds NaN/inf; not checkpointed",
                    self.step
                )));
            }
        }
        Ok(())
    }

    /// Writes `out_dir/ckpt-<step>/` atomically.
    pub fn save_checkpoint(&mut self) -> Result<PathBuf> {
        if self.dist.rank() != 0 {
            // Data parallel: the replicas are identical and only rank 0 writes; the others note where it goes.
            let dir = self.cfg.out_dir.join(format!("ckpt-{}", self.step));
            self.last_checkpoint = Some(dir.clone());
            return Ok(dir);
        }
        self.check_finite()?;
        let state = TrainState {
            step: self.step,
            epoch: self.epoch,
            pos: self.pos,
            seed: self.cfg.seed,
            config: serde_json::to_value(&self.cfg)?,
        };
        let files = CheckpointFiles {
            model: &self.varmap,
            config_json: self.model_cfg.to_json(),
            optimizer: self.opt.state_tensors()?,
            state: &state,
            extra: Vec::new(),
        };
        let dir = run::save_checkpoint(&self.cfg.out_dir, &files)?;
        self.last_checkpoint = Some(dir.clone());
        Ok(dir)
    }

    /// Trains until `total_steps` (or `until`, if smaller), appending to `metrics.jsonl`, checkpointing every
    /// `checkpoint_every` steps and at the end, and plotting `loss.svg`; `on_step` sees each step's metrics.
    pub fn run(&mut self, until: Option<usize>, mut on_step: impl FnMut(&StepMetrics)) -> Result<()> {
        let end = until.map_or(self.total_steps, |u| u.min(self.total_steps));
        let mp = self.cfg.out_dir.join("metrics.jsonl");
        // Only rank 0 writes metrics, checkpoints and the plot (data parallel: every rank has the same loss and weights).
        let writer = self.dist.rank() == 0;
        let mut mf = if writer {
            // After a resume, the lines of steps past the checkpoint are logged again: drop the old ones.
            let step = self.step as u64;
            Some(MetricsLog::open(&mp, |v| v.get("step").and_then(|s| s.as_u64()).is_some_and(|s| s <= step))?)
        } else {
            None
        };
        while self.step < end {
            let m = self.train_step()?;
            if let Some(mf) = mf.as_mut() {
                mf.append(&m)?;
            }
            on_step(&m);
            if self.cfg.checkpoint_every > 0 && self.step.is_multiple_of(self.cfg.checkpoint_every) {
                self.save_checkpoint()?;
            }
        }
        if self.last_checkpoint.as_ref().is_none_or(|p| !p.ends_with(format!("ckpt-{}", self.step))) {
            self.save_checkpoint()?;
        }
        if mf.take().is_some() {
            plot_loss(&mp, &self.cfg.out_dir.join("loss.svg"))?;
        }
        Ok(())
    }

    /// Video→text R@1 (eval mode) over dataset items `indices`: a hit when the best caption equals the clip's own.
    pub fn retrieval_r1(&self, indices: &[usize]) -> Result<f64> {
        let (frames, size) = self.frames_size();
        let batch =
            load_batch(self.data.as_ref(), indices, mix_seed(&[self.cfg.seed, 0xE7A1]), 0, frames, size, &self.device)?;
        let v = crate::nn::l2_normalize(&self.model.encode_video_t(&batch.video, Some(&batch.masks), false)?.detach())?;
        let t = crate::nn::l2_normalize(&self.model.encode_text(&batch.ids)?.detach())?;
        let best = v.matmul(&t.t()?)?.argmax(1)?.to_vec1::<u32>()?;
        let ids = batch.ids.to_vec2::<u32>()?;
        let hits = best.iter().enumerate().filter(|(i, &j)| ids[*i] == ids[j as usize]).count();
        Ok(hits as f64 / indices.len() as f64)
    }
}

/// Refuses to start a fresh run in an output directory that holds one (rank 0 only: it alone writes there).
fn check_out_dir(cfg: &TrainConfig, start: Start, dist: &dyn Collective) -> Result<()> {
    if start == Start::Fresh && dist.rank() == 0 {
        run::ensure_no_run(&cfg.out_dir, RUN_FILES)?;
    }
    Ok(())
}

/// What every data-parallel rank must agree on before training: config (less paths), data size, position,
/// and a hash of every parameter and optimiser-state value. Empty for one process (nothing to compare).
#[allow(clippy::too_many_arguments)]
fn start_fingerprint(
    cfg: &TrainConfig,
    varmap: &VarMap,
    opt: &AdamW,
    step: usize,
    epoch: usize,
    pos: usize,
    n: usize,
) -> Result<String> {
    let mut config = serde_json::to_value(cfg)?;
    // Paths may differ between nodes (mount points); what they hold is covered by the weight hash and `n`.
    if let Some(o) = config.as_object_mut() {
        o.remove("out_dir");
        o.remove("init");
        if let Some(d) = o.get_mut("data").and_then(|d| d.as_object_mut()) {
            d.remove("shards");
        }
    }
    let mut h = Fnv1a64::new();
    let mut feed = |name: &str, t: &Tensor| -> Result<()> {
        h.bytes(name.as_bytes());
        for x in t.detach().to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()? {
            h.word(u64::from(x.to_bits()));
        }
        Ok(())
    };
    {
        let data = varmap.data().lock().map_err(|_| Error::Msg("VarMap lock poisoned".into()))?;
        let mut names: Vec<&String> = data.keys().collect();
        names.sort();
        for k in names {
            feed(k, data[k].as_tensor())?;
        }
    }
    let state = opt.state_tensors()?;
    let mut names: Vec<&String> = state.keys().collect();
    names.sort();
    for k in names {
        feed(k, &state[k])?;
    }
    Ok(format!("{config}|n={n}|step={step}|epoch={epoch}|pos={pos}|hash={:016x}", h.finish()))
}

/// Plots the loss of `metrics.jsonl` (the last value logged for each step, so resumed runs read right) to an SVG.
pub fn plot_loss(metrics: &Path, svg: &Path) -> Result<()> {
    use crate::plot::{line_charts, Line};
    use plotters::style::BLUE;
    let text = std::fs::read_to_string(metrics).map_err(|e| Error::io(metrics, e))?;
    let mut by_step = BTreeMap::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let m: StepMetrics =
            serde_json::from_str(line).map_err(|e| Error::config(metrics, format!("line {}: {e}", i + 1)))?;
        if m.loss.is_finite() {
            by_step.insert(m.step, m.loss);
        }
    }
    if by_step.is_empty() {
        return Err(Error::config(metrics, "no finite loss to plot"));
    }
    let x_max = by_step.keys().last().copied().unwrap_or(1).max(1) as f64;
    let y_max = by_step.values().cloned().fold(0.0f64, f64::max).max(1e-6) * 1.05;
    let points = by_step.iter().map(|(&k, &v)| (k as f64, v)).collect();
    let line = Line {
        title: "Training loss".into(),
        x_label: "step",
        y_label: "loss",
        points,
        x_max,
        y_max,
        color: BLUE,
        markers: false,
        mark: None,
    };
    line_charts(svg, &[line])
}
