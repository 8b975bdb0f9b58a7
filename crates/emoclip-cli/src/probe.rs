//! `emoclip probe`: linear-probe evaluation on a generic manifest or an official dataset release (`--dataset`), embedding with a feature cache, then the official `linear_eval.py` protocol via `emoclip::probe::eval`; `emoclip probe-report`: the paper's Table 4 / Table 5 across datasets and models.
use crate::commands::{Model, ModelArgs, Norm};
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use emoclip::embed::cache::{item_key, model_key, FeatureCache};
use emoclip::embed::EmbedEvent;
use emoclip::encoder::{Embedder, EncoderId, MediaInput};
use emoclip::head::Head;
use emoclip::output::check_output_dir;
use emoclip::probe::datasets::{self, AdapterOptions, DatasetKind};
use emoclip::probe::eval::{evaluate, EvalOptions};
use emoclip::probe::manifest::{BoxesSpec, Manifest, ManifestOptions, Task};
use emoclip::probe::report::{write_report, ReportInfo};
use emoclip::probe::{CSearch, Mat};
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, ValueEnum)]
pub enum TaskArg {
    Single,
    Multi,
    Regression,
}

impl From<TaskArg> for Task {
    fn from(t: TaskArg) -> Self {
        match t {
            TaskArg::Single => Task::Single,
            TaskArg::Multi => Task::Multi,
            TaskArg::Regression => Task::Regression,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum DatasetArg {
    /// BoLD (train → val): 26 categories (OvR, C=3.16) and VAD regression.
    Bold,
    /// Emotic (train → val, test): 26 categories from images (OvR, C=2.5).
    Emotic,
    /// MELD (train → dev, test): 7 emotions (multinomial, C=8).
    Meld,
    /// LIRIS-ACCEDE / MediaEval 2018 (train → test): per-second valence and arousal (Ridge + Savitzky–Golay).
    Liris,
    /// MovieGraphs (train → val, test): 26 categories via the official keyword map (OvR, C=10), top-1 accuracy.
    Moviegraphs,
}

impl From<DatasetArg> for DatasetKind {
    fn from(d: DatasetArg) -> Self {
        match d {
            DatasetArg::Bold => DatasetKind::Bold,
            DatasetArg::Emotic => DatasetKind::Emotic,
            DatasetArg::Meld => DatasetKind::Meld,
            DatasetArg::Liris => DatasetKind::Liris,
            DatasetArg::Moviegraphs => DatasetKind::MovieGraphs,
        }
    }
}

#[derive(Args)]
pub struct ProbeArgs {
    /// Dataset manifest (CSV with a header, or JSONL): path, split (train/val/test), optional boxes, and
    /// `label` (single-label), `labels` (multi-label, `a;b` in CSV or a list in JSONL) or numeric targets.
    /// Omit it with --dataset.
    #[arg(required_unless_present = "dataset")]
    pub manifest: Option<PathBuf>,
    /// Evaluate on an official dataset release (its own layout under --root) instead of a manifest; one
    /// report per task under <out>/<dataset>/<task>/.
    #[arg(long, value_enum, conflicts_with = "manifest", requires = "root")]
    pub dataset: Option<DatasetArg>,
    /// Root directory of the --dataset release.
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// --dataset: choose C by random search (on val, or a hold-out of train) instead of the official C.
    #[arg(long)]
    pub search: bool,
    /// --dataset meld: drop the two samples the official code removes by hand even when readable.
    #[arg(long)]
    pub meld_drop_corrupt: bool,
    /// --dataset liris: frame rate of the frames/<movie>.mp4/ directories (official: 1).
    #[arg(long, default_value_t = 1.0)]
    pub liris_fps: f64,
    /// --dataset liris: encode the 8-frame window around each second instead of repeating its frame 8 times.
    #[arg(long)]
    pub liris_window: bool,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Feature cache directory (default: <out>/cache).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Output directory for probe.md, probe.json and per_class.svg.
    #[arg(long, short, default_value = "probe_out")]
    pub out: PathBuf,
    /// Fixed inverse regularisation C (skips the search).
    #[arg(long)]
    pub c: Option<f64>,
    /// Random-search trials for C (log-uniform in [1e-3, 1e3]).
    #[arg(long, default_value_t = 20)]
    pub trials: usize,
    /// Seed of the C search and of the hold-out split.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Regression target columns, comma-separated (e.g. valence,arousal).
    #[arg(long, value_delimiter = ',')]
    pub targets: Vec<String>,
    /// Task (default: inferred from the manifest columns).
    #[arg(long, value_enum)]
    pub task: Option<TaskArg>,
    /// Class list file (one name a line, in index order); default `<manifest stem>.classes.txt` if present.
    #[arg(long)]
    pub classes: Option<PathBuf>,
    /// Smooth regression predictions with a Savitzky–Golay filter of this window (LIRIS-ACCEDE protocol: 100,
    /// the default with --dataset liris; 0 turns it off there).
    #[arg(long)]
    pub savgol: Option<usize>,
    /// Polynomial order of the --savgol filter.
    #[arg(long, default_value_t = 3)]
    pub savgol_order: usize,
    #[arg(long, value_enum, default_value = "imagenet")]
    pub norm: Norm,
    /// Frames sampled uniformly per video (the temporal head takes exactly 8).
    #[arg(long, default_value_t = 8, value_parser = crate::commands::at_least_one)]
    pub frames: usize,
    /// Items per forward pass.
    #[arg(long, default_value_t = 8, value_parser = crate::commands::at_least_one)]
    pub batch: usize,
    /// Save the fitted classifier / regressor (coefficients, labels, the encoder's fingerprint) for
    /// `emoclip analyze --head` and Python's `emoclip.load_head`: a path ending in `.json` is the file (one
    /// task), any other a directory of `<dataset>_<task>.head.json` (`<manifest stem>.head.json`). An
    /// existing head file is never overwritten.
    #[arg(long, value_name = "PATH")]
    pub save_head: Option<PathBuf>,
}

/// Where `--save-head` puts the heads of `tasks` (names such as `bold/vad`, or the manifest's stem): the file
/// itself for a `.json` path, else a directory; checked before any work: an existing file is refused, as is a
/// `.json` file name for several tasks.
fn head_paths(save: &Path, tasks: &[String]) -> Result<Vec<PathBuf>> {
    let json_name = !save.is_dir() && save.extension().is_some_and(|e| e == "json");
    let as_file = tasks.len() == 1 && json_name;
    if tasks.len() > 1 && json_name {
        anyhow::bail!(
            "--save-head {}: this run fits {} heads ({}); give a directory to write them into",
            save.display(),
            tasks.len(),
            tasks.join(", ")
        );
    }
    let paths: Vec<PathBuf> =
        tasks.iter().map(|t| if as_file { save.to_path_buf() } else { Head::default_path(save, t) }).collect();
    for p in &paths {
        if p.exists() {
            anyhow::bail!("--save-head: {} already exists; remove it or choose another path", p.display());
        }
        let dir = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        check_output_dir(dir, "--save-head")?;
    }
    Ok(paths)
}

/// Where one task's report (and head) go.
struct TaskOutput<'a> {
    dir: PathBuf,
    head: Option<SaveHead<'a>>,
}

/// Where to save a task's head, and the identity of the encoder its features come from.
struct SaveHead<'a> {
    path: PathBuf,
    name: String,
    encoder: &'a EncoderId,
}

fn model_name(m: Model) -> &'static str {
    match m {
        Model::Emotionclip => "emotionclip",
        Model::Clip => "clip",
    }
}

fn load_embedder(a: &ProbeArgs) -> Result<Embedder> {
    let (enc, device, dtype) = a.model.load()?;
    let pre = emoclip::encoder::preprocessor_for(enc.image_size(), a.norm.into());
    Ok(Embedder::new(enc, pre, device, dtype, a.frames)?)
}

/// One feature vector per item (None where embedding failed) and the failure messages.
type Embedded = (Vec<Option<Vec<f32>>>, Vec<String>);

/// The features of the items of `manifest`: from the cache, the others embedded (the embedder is loaded on
/// first need and kept for the next task). Returns one feature vector per item (None where it failed) and
/// the failures.
fn embed_items(
    a: &ProbeArgs,
    manifest: &Manifest,
    cache: &FeatureCache,
    emb: &mut Option<Embedder>,
) -> Result<Embedded> {
    let t0 = std::time::Instant::now();
    let mkey = model_key(
        &a.model.weights,
        a.model.config.as_deref(),
        a.model.model.into(),
        a.model.dtype.into(),
        a.norm.into(),
        a.frames,
    );
    let items = &manifest.items;
    let keys: Vec<String> = items
        .iter()
        .map(|it| {
            let boxes = it.boxes.as_ref().map_or_else(|| "none".to_string(), BoxesSpec::fingerprint);
            item_key(&mkey, &it.path, &boxes, &it.media)
        })
        .collect();
    let input = |i: usize| -> emoclip::Result<MediaInput> {
        let it = &items[i];
        let boxes = it.boxes.as_ref().map(BoxesSpec::load).transpose()?;
        Ok(MediaInput::new(it.path.clone(), boxes).with_options(it.media.clone()))
    };
    let mut pb: Option<crate::progress::Progress> = None;
    let run = cache.embed(&keys, emb, || load_embedder(a), a.batch, input, &mut |ev| {
        match ev {
            EmbedEvent::Plan { cached, todo } => {
                eprintln!("features: {cached} from cache, {todo} to embed ({})", cache.dir.display());
                if todo == 0 {
                    eprintln!("all features reused from the cache: no embedding needed");
                } else {
                    pb = Some(crate::progress::Progress::new(todo as u64, "embedding"));
                }
            }
            EmbedEvent::Skipped(f) => {
                let e = format!("row {}: {}", items[f.index].row, f.message);
                with_bar(&pb, || tracing::error!("skipped {e}"));
            }
            EmbedEvent::CacheWrite(e) => with_bar(&pb, || tracing::warn!("cache write failed: {e}")),
            EmbedEvent::Batch { items } => {
                if let Some(pb) = &pb {
                    pb.inc(items as u64)
                }
            }
            EmbedEvent::Embedded(_) => {}
        }
        std::ops::ControlFlow::Continue(())
    })?;
    let failed: Vec<String> =
        run.failures.iter().map(|f| format!("row {}: {}", items[f.index].row, f.message)).collect();
    if let Some(pb) = pb {
        pb.finish();
        if let Some(w) = run.outside.warning() {
            tracing::warn!("{w}");
        }
        eprintln!("embedded {} item(s) in {:.1}s", run.embedded, t0.elapsed().as_secs_f64());
    }
    Ok((run.rows, failed))
}

/// Runs `f` with the progress bar (if any) cleared, so a log line does not tear it.
fn with_bar(pb: &Option<crate::progress::Progress>, f: impl FnOnce()) {
    match pb {
        Some(pb) => pb.suspend(f),
        None => f(),
    }
}

fn report_skipped(skipped: &[String]) {
    if !skipped.is_empty() {
        eprintln!("\n{} item(s) skipped:", skipped.len());
        for s in skipped {
            eprintln!("  {s}");
        }
    }
}

/// Embeds, evaluates and writes the report of one manifest / dataset task into `out`. Exit code: 0, 1 when
/// items were skipped, 2 when nothing could be evaluated.
fn probe_one(
    a: &ProbeArgs,
    mut manifest: Manifest,
    opts: &EvalOptions,
    info: ReportInfo,
    out: TaskOutput,
    cache: &FeatureCache,
    emb: &mut Option<Embedder>,
) -> Result<i32> {
    let t0 = std::time::Instant::now();
    let mut skipped: Vec<String> =
        manifest.skipped.iter().map(|s| format!("row {}: {}: {}", s.row, s.path.display(), s.reason)).collect();
    for s in &skipped {
        tracing::warn!("skipped {s}");
    }
    let no_boxes = manifest.items.iter().filter(|it| it.boxes.is_none()).count();
    if no_boxes > 0 && matches!(a.model.model, Model::Emotionclip) {
        tracing::warn!(
            "{no_boxes} of {} item(s) have no person boxes: they are encoded with empty subject masks{}",
            manifest.items.len(),
            if info.dataset.is_empty() { " (add a `boxes` column to the manifest)" } else { "" }
        );
    }
    eprintln!(
        "{}: {} item(s), task {}, {} class(es)/target(s)",
        if info.dataset.is_empty() { "manifest" } else { info.dataset.as_str() },
        manifest.items.len(),
        manifest.task.name(),
        manifest.classes.len().max(manifest.targets.len())
    );
    let (feats, failed) = embed_items(a, &manifest, cache, emb)?;
    skipped.extend(failed);
    let keep: Vec<bool> = feats.iter().map(Option::is_some).collect();
    let rows: Vec<Vec<f64>> = feats.into_iter().flatten().map(|v| v.into_iter().map(f64::from).collect()).collect();
    if rows.is_empty() {
        report_skipped(&skipped);
        eprintln!("error: no usable item: nothing to evaluate");
        return Ok(2);
    }
    if let Err(e) = manifest.retain_items(&keep) {
        report_skipped(&skipped);
        eprintln!("error: {e}");
        return Ok(2);
    }
    let x = Mat::from_rows(&rows)?;
    let result = match evaluate(&manifest, &x, opts) {
        Ok(r) => r,
        Err(e) => {
            report_skipped(&skipped);
            eprintln!("error: evaluation failed: {e}");
            return Ok(2);
        }
    };
    let info = ReportInfo { skipped: skipped.clone(), ..info };
    let mut files = write_report(&result, &info, &out.dir)?;
    if let Some(s) = out.head {
        let head = result.head(&s.name, s.encoder.clone())?;
        head.save(&s.path)?;
        eprintln!("head `{}`: {:?}, {} label(s), {}-d features", s.name, head.task, head.labels.len(), head.dim());
        files.push(s.path);
    }
    println!(
        "{}",
        emoclip::probe::report::markdown(&result, &info)
            .lines()
            .skip_while(|l| !l.starts_with("| metric"))
            .take_while(|l| l.starts_with('|'))
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!(
        "wrote {} in {:.1}s",
        files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", "),
        t0.elapsed().as_secs_f64()
    );
    if !skipped.is_empty() {
        report_skipped(&skipped);
        return Ok(1);
    }
    Ok(0)
}

fn eval_options(a: &ProbeArgs) -> EvalOptions {
    EvalOptions {
        c: a.c,
        search: CSearch { n_trials: a.trials, seed: a.seed, ..CSearch::default() },
        savgol: a.savgol.filter(|&w| w > 0).map(|w| (w, a.savgol_order)),
        ..EvalOptions::default()
    }
}

pub fn run(a: ProbeArgs) -> Result<i32> {
    check_output_dir(&a.out, "--out")?;
    if let Some(c) = &a.cache {
        check_output_dir(c, "--cache")?;
    }
    let cache_dir = a.cache.clone().unwrap_or_else(|| a.out.join("cache"));
    let mut emb: Option<Embedder> = None;
    let model = model_name(a.model.model).to_string();
    if let Some(d) = a.dataset {
        let Some(root) = a.root.clone() else {
            eprintln!("error: --dataset needs --root DIR (the dataset's release directory)");
            return Ok(2);
        };
        let mut eval = eval_options(&a);
        eval.savgol = None;
        let mut opts = AdapterOptions { official_c: !a.search && a.c.is_none(), eval, ..AdapterOptions::default() };
        opts.meld.drop_official_corrupt = a.meld_drop_corrupt;
        opts.liris.fps = a.liris_fps;
        opts.liris.repeat_label_frame = !a.liris_window;
        if let Some(w) = a.savgol {
            opts.liris.savgol = (w > 0).then_some((w, a.savgol_order));
        }
        let tasks = match datasets::load(d.into(), &root, &opts) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(2);
            }
        };
        let names: Vec<String> = tasks.iter().map(|t| t.name.clone()).collect();
        let heads = plan_heads(&a, &names)?;
        let cache = FeatureCache::new(&cache_dir)?;
        let mut code = 0;
        for (i, t) in tasks.into_iter().enumerate() {
            let info = ReportInfo {
                manifest: t.manifest.source.display().to_string(),
                dataset: t.name.clone(),
                model: model.clone(),
                weights: a.model.weights.clone(),
                skipped: vec![],
            };
            let out = TaskOutput { dir: a.out.join(&t.name), head: heads.as_ref().map(|h| h.task(i)) };
            code = code.max(probe_one(&a, t.manifest, &t.options, info, out, &cache, &mut emb)?);
        }
        return Ok(code);
    }
    let Some(manifest_path) = a.manifest.clone() else {
        eprintln!("error: give a manifest file or --dataset NAME --root DIR");
        return Ok(2);
    };
    let mut mopts = ManifestOptions {
        task: a.task.map(Task::from),
        targets: a.targets.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
        ..Default::default()
    };
    if let Some(p) = &a.classes {
        let t = std::fs::read_to_string(p).with_context(|| format!("{}: cannot read the class list", p.display()))?;
        mopts.classes = Some(t.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect());
    }
    let manifest = match Manifest::load(&manifest_path, &mopts) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(2);
        }
    };
    let info = ReportInfo {
        manifest: manifest_path.display().to_string(),
        dataset: String::new(),
        model,
        weights: a.model.weights.clone(),
        skipped: vec![],
    };
    let opts = eval_options(&a);
    let stem = manifest_path.file_stem().map_or_else(|| "probe".into(), |s| s.to_string_lossy().into_owned());
    let heads = plan_heads(&a, std::slice::from_ref(&stem))?;
    let cache = FeatureCache::new(&cache_dir)?;
    let out = TaskOutput { dir: a.out.clone(), head: heads.as_ref().map(|h| h.task(0)) };
    probe_one(&a, manifest, &opts, info, out, &cache, &mut emb)
}

/// `--save-head`: each task's head path and name, and the encoder's identity.
struct HeadPlan {
    paths: Vec<PathBuf>,
    names: Vec<String>,
    encoder: EncoderId,
}

impl HeadPlan {
    fn task(&self, i: usize) -> SaveHead<'_> {
        SaveHead { path: self.paths[i].clone(), name: self.names[i].clone(), encoder: &self.encoder }
    }
}

/// With `--save-head`: the checked head paths of the tasks `names` and the encoder's identity, computed before
/// any embedding so that a failure costs nothing.
fn plan_heads(a: &ProbeArgs, names: &[String]) -> Result<Option<HeadPlan>> {
    let Some(save) = &a.save_head else { return Ok(None) };
    let paths = head_paths(save, names)?;
    let encoder = a.model.encoder_id(a.norm.into(), a.frames)?;
    Ok(Some(HeadPlan { paths, names: names.to_vec(), encoder }))
}

#[derive(Args)]
pub struct ProbeReportArgs {
    /// probe.json files of dataset runs (`emoclip probe --dataset ...`), or directories searched for them:
    /// e.g. one output directory per model.
    #[arg(required = true)]
    pub results: Vec<PathBuf>,
    /// Output directory for suite.md and suite.json.
    #[arg(long, short, default_value = "probe_suite")]
    pub out: PathBuf,
}

/// `emoclip probe-report`: paper Table 4 (one row per model) and Table 5 (BoLD / Emotic per category).
pub fn report(a: ProbeReportArgs) -> Result<i32> {
    check_output_dir(&a.out, "--out")?;
    let suite = match emoclip::probe::suite_report::load_suite(&a.results) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(2);
        }
    };
    let files = suite.write(&a.out)?;
    let md = suite.markdown();
    println!(
        "{}",
        md.lines()
            .skip_while(|l| !l.starts_with("| model"))
            .take_while(|l| l.starts_with('|'))
            .collect::<Vec<_>>()
            .join("\n")
    );
    for n in &suite.notes {
        eprintln!("note: {n}");
    }
    eprintln!("wrote {}", files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", "));
    Ok(0)
}
