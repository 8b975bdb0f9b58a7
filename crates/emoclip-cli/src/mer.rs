//! `emoclip mer train|eval|ablation|bench`: MER-CLIP (Song & Cho, WACV 2025) on CMU-MOSI / CMU-MOSEI MMSA feature files
//! (`emoclip::mer::{data, train, ablation}`).
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use emoclip::mer::ablation;
use emoclip::mer::bert_text::BertText;
use emoclip::mer::data::{MmsaData, SyntheticSpec};
use emoclip::mer::train::{evaluate, load_model, model_config, MerTrainConfig, MerTrainer, MetricLine};
use emoclip::mer::{read_clip_config, FeatureDims, MerConfig, MerTask};
use emoclip::output::{check_output_dir, check_output_file};
use emoclip::run::{self, Start};
use emoclip::text_emotion::BertModel;
use std::path::{Path, PathBuf};

use crate::progress::Progress;

use std::time::Instant;

#[derive(Subcommand)]
pub enum MerCommand {
    /// Train MER-CLIP (best-on-valid weights in OUT/best, test scores in OUT/test.json).
    Train(TrainArgs),
    /// Score a trained model (a run's best/ or ckpt-<step>/ directory) on one split.
    Eval(EvalArgs),
    /// Query-word ablation (MER-CLIP paper Tables 1–3): one run per word, Markdown table + JSON.
    Ablation(TrainArgs),
    /// Time one training epoch on MOSI-sized synthetic data (2,199 utterances, MOSI widths) on CPU.
    Bench(BenchArgs),
}

#[derive(Args)]
pub struct MerArgs {
    #[command(subcommand)]
    pub command: MerCommand,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Task {
    Emotion,
    Sentiment,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Dataset {
    Mosi,
    Mosei,
}

impl Dataset {
    fn name(self) -> &'static str {
        match self {
            Dataset::Mosi => "CMU-MOSI",
            Dataset::Mosei => "CMU-MOSEI",
        }
    }
    fn dims(self) -> FeatureDims {
        match self {
            Dataset::Mosi => FeatureDims::MOSI,
            Dataset::Mosei => FeatureDims::MOSEI,
        }
    }
}

/// Where the language features come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TextSource {
    /// MMSA's GloVe vectors (`text` [N, L, 300]).
    Glove,
    /// MMSA's BERT token ids (`text_bert` [N, 3, L]) through a frozen BERT (`--bert`): last hidden states.
    Bert,
}

/// Language-feature options shared by train / ablation / eval.
#[derive(Args, Clone)]
pub struct TextArgs {
    /// Language features: GloVe `text` or BERT `text_bert` ids encoded by `--bert` (eval: the model's own).
    #[arg(long, value_enum)]
    pub text: Option<TextSource>,
    /// HF BERT model for `--text bert`: a directory (config.json + model.safetensors / pytorch_model.bin),
    /// its weights file, or hf:<org>/<name> (e.g. hf:google-bert/bert-base-uncased, from the local HF cache).
    #[arg(long)]
    pub bert: Option<String>,
    /// Cache the BERT features per split here (keyed by the data file and the BERT weights).
    #[arg(long)]
    pub bert_cache: Option<PathBuf>,
    /// Utterances per BERT batch.
    #[arg(long, default_value_t = 64)]
    pub bert_batch_size: usize,
}

#[derive(Args)]
pub struct TrainArgs {
    #[arg(long, value_enum)]
    pub task: Task,
    #[arg(long, value_enum)]
    pub dataset: Dataset,
    /// MMSA feature file (aligned_50.pkl / unaligned_50.pkl; MOSEI emotion needs `emotion_labels`).
    #[arg(long)]
    pub data: PathBuf,
    #[command(flatten)]
    pub text: TextArgs,
    /// Word after the learnable prompts ("none": prompts only); default Emotion / Sentiment by task.
    /// Ignored by `ablation`, which sweeps all of them.
    #[arg(long)]
    pub query_word: Option<String>,
    /// CLIP checkpoint for the text tower (open_clip / OpenAI / HF CLIP or EmotionCLIP); default: random.
    #[arg(long)]
    pub clip: Option<PathBuf>,
    /// A MER-CLIP config JSON (emoclip::mer::MerConfig) replacing the built-in defaults.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Tiny model (text width 32, 2 layers; CMD 1 layer) for smoke tests.
    #[arg(long)]
    pub tiny: bool,
    #[arg(long)]
    pub out: PathBuf,
    /// Continue from the newest checkpoint in --out.
    #[arg(long)]
    pub resume: bool,
    /// Start a new run in an --out that holds one, deleting that run's checkpoints, LATEST, best/, test.json,
    /// metrics.jsonl and training.svg first (other files stay). Without it (or --resume) such a directory is
    /// refused. Not for `ablation`, which always continues its runs.
    #[arg(long, conflicts_with = "resume")]
    pub overwrite: bool,
    #[arg(long, default_value_t = 20)]
    pub epochs: usize,
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 1e-4)]
    pub lr: f64,
    #[arg(long, default_value_t = 0.01)]
    pub weight_decay: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Extra checkpoints every N steps (0: after each epoch only).
    #[arg(long, default_value_t = 0)]
    pub checkpoint_every: usize,
    /// Newest ckpt-<step>/ directories kept (best/ is kept apart).
    #[arg(long, default_value_t = 2)]
    pub keep_checkpoints: usize,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

#[derive(Args)]
pub struct EvalArgs {
    /// A run's best/ or ckpt-<step>/ directory (model.safetensors + config.json).
    #[arg(long)]
    pub model: PathBuf,
    #[arg(long)]
    pub data: PathBuf,
    #[command(flatten)]
    pub text: TextArgs,
    /// Checked against the model's task when given.
    #[arg(long, value_enum)]
    pub task: Option<Task>,
    #[arg(long, value_enum)]
    pub dataset: Option<Dataset>,
    #[arg(long, default_value = "test")]
    pub split: String,
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Write scores and per-utterance predictions as JSON.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

#[derive(Args)]
pub struct BenchArgs {
    /// Utterances in the timed epoch (CMU-MOSI: 2,199).
    #[arg(long, default_value_t = 2199)]
    pub utterances: usize,
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    #[arg(long, value_enum, default_value = "sentiment")]
    pub task: Task,
    /// Tiny model instead of the ViT-B/32-text default.
    #[arg(long)]
    pub tiny: bool,
}

impl From<Task> for MerTask {
    fn from(t: Task) -> Self {
        match t {
            Task::Emotion => MerTask::Emotion,
            Task::Sentiment => MerTask::Sentiment,
        }
    }
}

pub fn run(a: MerArgs, threads: Option<usize>) -> Result<i32> {
    match a.command {
        MerCommand::Train(t) => train(t),
        MerCommand::Eval(e) => eval(e),
        MerCommand::Ablation(t) => run_ablation(t),
        MerCommand::Bench(b) => bench(b, threads),
    }
}

/// The BERT model `--text bert` asks for (`model_bert`: the one a trained model was made with), or `None`
/// for GloVe; clear errors for inconsistent options.
fn bert_spec(t: &TextArgs, model_bert: Option<&str>) -> Result<Option<String>> {
    match (t.text, &t.bert) {
        (Some(TextSource::Bert), Some(b)) => Ok(Some(b.clone())),
        (Some(TextSource::Bert), None) => match model_bert {
            Some(b) => Ok(Some(b.to_string())),
            None => bail!("--text bert needs the BERT weights: add --bert <HF BERT directory, weights file or hf:google-bert/bert-base-uncased> (MMSA tokenised text_bert with bert-base-uncased)"),
        },
        (Some(TextSource::Glove), Some(_)) => bail!("--bert is only used with --text bert"),
        (Some(TextSource::Glove), None) => Ok(None),
        (None, Some(b)) if model_bert.is_some() => Ok(Some(b.clone())),
        (None, Some(_)) => bail!("--bert given without --text bert: add --text bert to use BERT text features"),
        (None, None) => Ok(model_bert.map(String::from)),
    }
}

/// Reads the MMSA file, with BERT text features when `bert` names a model (progress bar while encoding).
fn read_data(path: &Path, bert: Option<&str>, t: &TextArgs, device: &candle_core::Device) -> Result<MmsaData> {
    let Some(spec) = bert else { return Ok(MmsaData::read(path)?) };
    let model =
        BertModel::load(spec, device).with_context(|| format!("loading the BERT model {spec} for --text bert"))?;
    let opts = BertText {
        model: &model,
        batch_size: t.bert_batch_size.max(1),
        cache_dir: t.bert_cache.clone(),
        device: device.clone(),
    };
    let pb = Progress::new(0, "BERT text features");
    let t0 = Instant::now();
    let data = MmsaData::read_bert(path, &opts, |split, done, total| {
        pb.set_length(total as u64);
        pb.set_position(done as u64);
        pb.set_message(format!("BERT {split}"));
    });
    pb.finish();
    let data = data?;
    eprintln!(
        "BERT text features ({} dims) for {} utterances in {:.1}s{}",
        data.dims()[0],
        data.train.len() + data.valid.len() + data.test.len(),
        t0.elapsed().as_secs_f64(),
        t.bert_cache.as_ref().map_or(String::new(), |d| format!(" (cache: {})", d.display()))
    );
    Ok(data)
}

/// Reads the data and builds the model + training configs shared by `train` and `ablation`.
fn setup(a: &TrainArgs) -> Result<(MmsaData, MerConfig, MerTrainConfig)> {
    let task = MerTask::from(a.task);
    if a.dataset == Dataset::Mosi && task == MerTask::Emotion {
        bail!("CMU-MOSI has sentiment labels only: use --task sentiment, or --dataset mosei for emotions");
    }
    let bert = bert_spec(&a.text, None)?;
    let device = crate::commands::parse_device(&a.device)?;
    let data = read_data(&a.data, bert.as_deref(), &a.text, &device)?;
    let d = data.dims();
    let mut std = a.dataset.dims();
    if bert.is_some() {
        std.text = d[0];
    }
    if d != [std.text, std.vision, std.audio] {
        tracing::warn!(
            "{}: feature widths (text, vision, audio) {d:?} are not {}'s usual {:?}; the model takes the file's widths",
            a.data.display(),
            a.dataset.name(),
            [std.text, std.vision, std.audio]
        );
    }
    let word = match a.query_word.as_deref() {
        None => Some(task.default_query_word()),
        Some(w) if w.eq_ignore_ascii_case("none") => None,
        Some(w) => Some(w.to_string()),
    };
    let mut cfg = match &a.config {
        Some(p) => {
            let mut c = MerConfig::from_file(p)?;
            c.dims = FeatureDims { text: d[0], vision: d[1], audio: d[2] };
            c.task = task;
            c.label_words = task.default_label_words();
            c.query_word = word;
            c
        }
        None => model_config(task, &data, word, a.tiny),
    };
    cfg.bert = bert;
    match &a.clip {
        Some(p) => cfg.clip = read_clip_config(p).with_context(|| format!("reading the CLIP config of {}", p.display()))?,
        None if !a.resume => tracing::warn!(
            "no --clip checkpoint: the CLIP text tower (label encoder and emotion query) is RANDOM, so label embeddings carry no meaning; pass --clip open_clip_pytorch_model.bin for real runs"
        ),
        None => {}
    }
    // The config file when one was given, else built from the flags.
    cfg.validate(a.config.as_deref())?;
    let tc = MerTrainConfig {
        lr: a.lr,
        weight_decay: a.weight_decay,
        epochs: a.epochs,
        batch_size: a.batch_size,
        seed: a.seed,
        checkpoint_every: a.checkpoint_every,
        keep_checkpoints: a.keep_checkpoints,
        out_dir: a.out.clone(),
    };
    Ok((data, cfg, tc))
}

fn describe(l: &MetricLine) -> Option<String> {
    match l {
        MetricLine::Step { epoch, loss, utterances_per_s, .. } => {
            Some(format!("epoch {epoch} loss {loss:.4} {utterances_per_s:.0} utt/s"))
        }
        MetricLine::Epoch { epoch, train_loss, valid, best, .. } => Some(format!(
            "epoch {epoch}: train loss {train_loss:.4}, valid {}{}",
            valid.summary(),
            if *best { " (best)" } else { "" }
        )),
        MetricLine::Test { .. } => None,
    }
}

/// Checks the outputs of `train` / `ablation` before any work.
fn check_train_outputs(a: &TrainArgs) -> Result<()> {
    check_output_dir(&a.out, "--out")?;
    if let Some(c) = &a.text.bert_cache {
        check_output_dir(c, "--bert-cache")?;
    }
    Ok(())
}

fn train(a: TrainArgs) -> Result<i32> {
    check_train_outputs(&a)?;
    let start = Start::from_flags(a.resume, a.overwrite);
    // Before reading (or BERT-encoding) the data.
    if start == Start::Fresh {
        run::ensure_no_run(&a.out, emoclip::mer::train::RUN_FILES)?;
    }
    let (data, cfg, tc) = setup(&a)?;
    let device = crate::commands::parse_device(&a.device)?;
    let mut tr = MerTrainer::new(tc, cfg, data, a.clip.as_deref(), device, start)
        .with_context(|| format!("setting up MER-CLIP training in {}", a.out.display()))?;
    if a.resume {
        match tr.last_checkpoint() {
            Some(p) => eprintln!("resuming from {} (step {}, epoch {})", p.display(), tr.step(), tr.epoch()),
            None => eprintln!("--resume: no checkpoint in {}, starting from scratch", a.out.display()),
        }
    }
    let pb = Progress::new(tr.total_steps() as u64, "training steps");
    pb.set_position(tr.step() as u64);
    let test = tr.run(None, |l| {
        if let MetricLine::Step { step, .. } = l {
            pb.set_position(*step as u64);
        }
        match (l, describe(l)) {
            (MetricLine::Epoch { .. }, Some(s)) => pb.println(s),
            (_, Some(s)) => pb.set_message(s),
            _ => {}
        }
    });
    pb.finish();
    let test = test?.context("training stopped before the end")?;
    println!(
        "{} {:?} test ({} utterances, best-on-valid weights): {}",
        a.dataset.name(),
        a.task,
        test.predictions.len(),
        test.scores.summary()
    );
    eprintln!("outputs in {} (best/, test.json, metrics.jsonl, training.svg)", a.out.display());
    Ok(0)
}

fn eval(a: EvalArgs) -> Result<i32> {
    if let Some(out) = &a.out {
        check_output_file(out, &["json"], "--out")?;
    }
    if let Some(c) = &a.text.bert_cache {
        check_output_dir(c, "--bert-cache")?;
    }
    let device = crate::commands::parse_device(&a.device)?;
    let (model, _) = load_model(&a.model, &device)?;
    if let Some(t) = a.task {
        if MerTask::from(t) != model.task() {
            bail!("{}: the model was trained for {:?}, not {t:?}", a.model.display(), model.task());
        }
    }
    let mc = MerConfig::from_file(&a.model.join("config.json"))?;
    let bert = bert_spec(&a.text, mc.bert.as_deref())?;
    let data = read_data(&a.data, bert.as_deref(), &a.text, &device)?;
    let want = [mc.dims.text, mc.dims.vision, mc.dims.audio];
    if data.dims() != want {
        bail!(
            "{}: feature widths (text, vision, audio) {:?} differ from the model's {want:?}; {}",
            a.data.display(),
            data.dims(),
            match &mc.bert {
                Some(b) => format!("the model was trained on BERT text ({b}): drop --text glove"),
                None => "the model was trained on GloVe text: drop --text bert".into(),
            }
        );
    }
    let split = data.split(&a.split)?;
    let ev = evaluate(&model, split, a.batch_size.max(1), &device)
        .with_context(|| format!("evaluating {} on {}", a.model.display(), a.data.display()))?;
    let name = a.dataset.map_or("", |d| d.name());
    println!("{name} {} ({} utterances): loss {:.4}, {}", a.split, ev.predictions.len(), ev.loss, ev.scores.summary());
    if let Some(out) = &a.out {
        let s = serde_json::to_string_pretty(&ev)?;
        emoclip::output::write_atomic(out, |f| std::io::Write::write_all(f, s.as_bytes()))?;
        eprintln!("wrote {}", out.display());
    }
    Ok(0)
}

fn run_ablation(a: TrainArgs) -> Result<i32> {
    check_train_outputs(&a)?;
    if a.overwrite {
        bail!("ablation always continues the runs in --out (a finished word is not retrained); to start over, use a fresh --out directory");
    }
    let (data, cfg, tc) = setup(&a)?;
    let device = crate::commands::parse_device(&a.device)?;
    let words = emoclip::mer::QUERY_WORDS.len();
    let spe = data.train.len().div_ceil(tc.batch_size);
    let pb = Progress::new((words * spe * tc.epochs) as u64, "ablation steps");
    let mut done = 0u64;
    let data = std::sync::Arc::new(data);
    let rows = ablation::sweep(&cfg, &tc, &data, a.clip.as_deref(), &device, |w, l| {
        if matches!(l, MetricLine::Step { .. }) {
            done += 1;
            pb.set_position(done);
        }
        if let Some(s) = describe(l) {
            pb.set_message(format!("{}: {s}", w.unwrap_or("(no word)")));
        }
    });
    pb.finish();
    let rows = rows?;
    let table = ablation::markdown(MerTask::from(a.task), a.dataset.name(), &rows);
    print!("{table}");
    let json = serde_json::json!({"task": MerTask::from(a.task), "dataset": a.dataset.name(), "rows": rows});
    let jp = a.out.join("ablation.json");
    emoclip::output::write_atomic(&jp, |f| {
        std::io::Write::write_all(f, serde_json::to_string_pretty(&json).unwrap_or_default().as_bytes())
    })?;
    let mp = a.out.join("ablation.md");
    emoclip::output::write_atomic(&mp, |f| std::io::Write::write_all(f, table.as_bytes()))?;
    eprintln!("wrote {} and {}", mp.display(), jp.display());
    Ok(0)
}

fn bench(a: BenchArgs, threads: Option<usize>) -> Result<i32> {
    if a.utterances == 0 || a.batch_size == 0 {
        bail!("--utterances and --batch-size must be >= 1");
    }
    let task = MerTask::from(a.task);
    let spec =
        SyntheticSpec { sizes: [a.utterances, 1, 1], emotion: task == MerTask::Emotion, ..SyntheticSpec::mosi() };
    let data = MmsaData::synthetic(&spec)?;
    let cfg = model_config(task, &data, Some(task.default_query_word()), a.tiny);
    // Only train steps run (no validation, no checkpoint), so nothing is written to out_dir.
    let tc = MerTrainConfig {
        epochs: 1,
        batch_size: a.batch_size,
        out_dir: std::env::temp_dir().join("emoclip-mer-bench"),
        ..Default::default()
    };
    let mut tr = MerTrainer::new(tc, cfg, data, None, candle_core::Device::Cpu, false)?;
    let steps = tr.steps_per_epoch();
    let pb = Progress::new(steps as u64, "bench steps");
    let t0 = Instant::now();
    for n in 0..steps {
        tr.train_step()?;
        pb.set_position(n as u64 + 1);
    }
    pb.finish();
    let per_epoch = t0.elapsed().as_secs_f64();
    let threads = threads.map_or_else(|| rayon::current_num_threads().to_string(), |t| t.to_string());
    println!("| model | task | utterances | batch | threads | s / epoch | utterances / s |");
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| MER-CLIP {} (L=50, 300/20/5) | {:?} | {} | {} | {threads} | {per_epoch:.1} | {:.1} |",
        if a.tiny { "tiny" } else { "ViT-B/32 text" },
        a.task,
        a.utterances,
        a.batch_size,
        a.utterances as f64 / per_epoch
    );
    Ok(0)
}
