//! A run's output directory: which entries belong to the run, refusing or clearing an existing run, the
//! newest checkpoint (`LATEST`), pruning, and directories written through a temporary name.
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// File in the output directory naming the newest complete checkpoint directory.
pub const LATEST: &str = "LATEST";

/// How a run starts in its output directory. `false` / `true` convert to `Fresh` / `Resume`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// A new run; refused when the directory already holds one (see [`ensure_no_run`]).
    Fresh,
    /// Continue from the newest checkpoint (a new run when there is none).
    Resume,
    /// A new run that first deletes the previous run's files (see [`clear_run`]).
    Overwrite,
}

impl Start {
    /// The start `--resume` / `--overwrite` ask for (`--resume` wins; neither: a fresh run).
    pub fn from_flags(resume: bool, overwrite: bool) -> Self {
        match (resume, overwrite) {
            (true, _) => Start::Resume,
            (false, true) => Start::Overwrite,
            (false, false) => Start::Fresh,
        }
    }
}

impl From<bool> for Start {
    fn from(resume: bool) -> Self {
        if resume {
            Start::Resume
        } else {
            Start::Fresh
        }
    }
}

/// `ckpt-<step>` or its temporary `.tmp-ckpt-<step>`.
fn is_checkpoint_dir(name: &str) -> bool {
    let n = name.strip_prefix(".tmp-").unwrap_or(name);
    n.strip_prefix("ckpt-").is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

/// The entries of a run in `out`, sorted: `ckpt-<step>/` (and `.tmp-ckpt-<step>/`) directories and the
/// entries named in `files` (the trainer's own outputs). Nothing else counts: other files are the user's.
pub fn run_entries(out: &Path, files: &[&str]) -> Result<Vec<PathBuf>> {
    let rd = match std::fs::read_dir(out) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(out, e)),
    };
    let mut found = Vec::new();
    for e in rd {
        let e = e.map_err(|e| Error::io(out, e))?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if (is_dir && is_checkpoint_dir(name)) || files.contains(&name) {
            found.push(e.path());
        }
    }
    found.sort();
    Ok(found)
}

/// Errors when `out` already holds a run (see [`run_entries`]): starting another there would mix the two
/// (old checkpoints beside new ones, `LATEST` going backwards, metrics appended). An empty or missing
/// directory, or one holding only other files, is fine.
pub fn ensure_no_run(out: &Path, files: &[&str]) -> Result<()> {
    let found = run_entries(out, files)?;
    if found.is_empty() {
        return Ok(());
    }
    let mut names: Vec<String> =
        found.iter().take(4).map(|p| p.file_name().unwrap_or_default().to_string_lossy().into_owned()).collect();
    if found.len() > 4 {
        names.push(format!("and {} more", found.len() - 4));
    }
    Err(Error::Msg(format!(
        "{}: already holds a training run ({}); continue it with --resume, write the new run to a fresh --out \
         directory, or pass --overwrite to delete that run's files first",
        out.display(),
        names.join(", ")
    )))
}

/// Deletes the run in `out` (exactly the entries [`run_entries`] lists; other files stay). Returns how many.
pub fn clear_run(out: &Path, files: &[&str]) -> Result<usize> {
    let found = run_entries(out, files)?;
    for p in &found {
        let r = if p.is_dir() && !p.is_symlink() { std::fs::remove_dir_all(p) } else { std::fs::remove_file(p) };
        r.map_err(|e| Error::io(p, e))?;
    }
    Ok(found.len())
}

/// [`clear_run`] for `--overwrite`, saying in the log how much of the previous run went.
pub fn overwrite(out: &Path, files: &[&str]) -> Result<()> {
    let n = clear_run(out, files)?;
    if n > 0 {
        tracing::info!("--overwrite: deleted {n} entries of the previous run in {}", out.display());
    }
    Ok(())
}

/// The newest complete checkpoint directory in `out` (from `LATEST`, else the highest `ckpt-<step>`), if any.
pub fn latest(out: &Path) -> Result<Option<PathBuf>> {
    let l = out.join(LATEST);
    if l.is_file() {
        let name = std::fs::read_to_string(&l).map_err(|e| Error::io(&l, e))?;
        let dir = out.join(name.trim());
        if dir.join("state.json").is_file() {
            return Ok(Some(dir));
        }
    }
    if !out.is_dir() {
        return Ok(None);
    }
    let best = checkpoints(out)?.into_iter().filter(|(_, p)| p.join("state.json").is_file()).max_by_key(|(n, _)| *n);
    Ok(best.map(|(_, p)| p))
}

/// The `ckpt-<step>` entries of `out` with their steps, unsorted.
fn checkpoints(out: &Path) -> Result<Vec<(usize, PathBuf)>> {
    let rd = std::fs::read_dir(out).map_err(|e| Error::io(out, e))?;
    Ok(rd
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.strip_prefix("ckpt-")?.parse::<usize>().ok()?, e.path())))
        .collect())
}

/// Deletes all but the newest `keep` `ckpt-<step>/` directories of `out`.
pub fn prune_checkpoints(out: &Path, keep: usize) -> Result<()> {
    let mut steps = checkpoints(out)?;
    steps.sort();
    let n = steps.len().saturating_sub(keep);
    for (_, p) in steps.into_iter().take(n) {
        std::fs::remove_dir_all(&p).map_err(|e| Error::io(&p, e))?;
    }
    Ok(())
}

/// Writes the directory `out/<name>/` whole: `fill` writes its files into the temporary `out/.tmp-<name>/`,
/// which then replaces any older `out/<name>/`, so a kill never leaves a half-written one. Returns the path.
pub fn write_dir(out: &Path, name: &str, fill: impl FnOnce(&Path) -> Result<()>) -> Result<PathBuf> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let dir = out.join(name);
    let tmp = out.join(format!(".tmp-{name}"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    fill(&tmp)?;
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    }
    std::fs::rename(&tmp, &dir).map_err(|e| Error::io(&dir, e))?;
    Ok(dir)
}
