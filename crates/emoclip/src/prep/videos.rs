//! Which videos `emoclip prepare` works on: the inputs (files, or directories of videos), less the excluded
//! ids, checked for colliding ids, then this job's share of a job array; and where each video's captions are.
//!
//! A video's id is its file stem with `.` replaced by `_` (WebDataset splits sample keys at the first `.`);
//! it names its shard `shards/<id>.tar`, its index `index/<id>.jsonl` and its samples `<id>_<n>`, and is
//! what `--exclude` lists. Ids depend on the file name only, not on which other videos are in the run, so
//! every task of a job array and every rerun agree. Two inputs with the same id (the same stem in two
//! folders, `clip.mp4` beside `clip.mkv`, or stems differing only by `.` vs `_` such as `a.b.avi` and
//! `a_b.avi`) would write one shard and mark each other done: [`check_unique_ids`] refuses them before any
//! work, naming both files (rename one, or prepare them into different `--out` directories). The same file
//! given twice (directly and through its folder) counts once.
use crate::media::{media_kind, MediaKind};
use crate::{Error, Result};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

/// The videos of `inputs`: files as given, and the videos (by extension) directly inside directories.
pub fn discover(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut videos = Vec::new();
    for p in inputs {
        if p.is_dir() {
            for e in std::fs::read_dir(p).map_err(|e| Error::io(p, e))? {
                let f = e.map_err(|e| Error::io(p, e))?.path();
                if matches!(media_kind(&f), Ok(MediaKind::Video)) {
                    videos.push(f);
                }
            }
        } else {
            videos.push(p.clone());
        }
    }
    Ok(videos)
}

/// The video ids listed in an `--exclude` file, one per line.
pub fn read_exclude(path: &Path) -> Result<HashSet<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    Ok(text.lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect())
}

/// The videos job `shard_index` of `num_shards` prepares: [`discover`]ed inputs less the `excluded` ids,
/// checked for id collisions on the whole list (so every task of a job array refuses the same ones), then
/// [`partition`]ed. Errors when the share is empty.
pub fn select(
    inputs: &[PathBuf],
    excluded: &HashSet<String>,
    shard_index: usize,
    num_shards: usize,
) -> Result<Vec<PathBuf>> {
    let mut videos = discover(inputs)?;
    videos.retain(|v| !excluded.contains(&video_id(v)));
    let videos = partition(check_unique_ids(videos)?, shard_index, num_shards)?;
    if videos.is_empty() {
        return Err(Error::Msg("no videos to process in this partition".into()));
    }
    Ok(videos)
}

/// The id of a video (see the module doc).
pub fn video_id(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().replace(['.', '/'], "_")).unwrap_or_else(|| "video".into())
}

/// Refuses two different inputs with one video id (see the module doc), naming both; the same file listed
/// twice is kept once. Run on the whole input list, before partitioning, so every job-array task agrees.
pub fn check_unique_ids(videos: Vec<PathBuf>) -> Result<Vec<PathBuf>> {
    let mut seen: BTreeMap<String, (PathBuf, PathBuf)> = BTreeMap::new();
    let mut out = Vec::with_capacity(videos.len());
    for v in videos {
        let canon = std::fs::canonicalize(&v).unwrap_or_else(|_| v.clone());
        let id = video_id(&v);
        match seen.get(&id) {
            Some((_, c)) if *c == canon => continue,
            Some((first, _)) => {
                return Err(Error::Msg(format!(
                    "{} and {} have the same video id {id:?} (ids are file stems with '.' as '_'), so their \
                     shards and index files would collide; rename one, or prepare them into different --out directories",
                    first.display(),
                    v.display()
                )))
            }
            None => {
                seen.insert(id, (v.clone(), canon));
                out.push(v);
            }
        }
    }
    Ok(out)
}

/// Caption file for a video: `<stem>.srt`, `.vtt`, `.en.vtt`, `.json` in `dir` (or beside the video).
pub fn find_captions(video: &Path, dir: Option<&Path>) -> Option<PathBuf> {
    let stem = video.file_stem()?.to_string_lossy().to_string();
    let d = dir.map(Path::to_path_buf).or_else(|| video.parent().map(Path::to_path_buf))?;
    ["srt", "vtt", "en.vtt", "json"].iter().map(|e| d.join(format!("{stem}.{e}"))).find(|p| p.is_file())
}

/// The videos job `shard_index` of `num_shards` handles: every `num_shards`-th of the sorted list, so job
/// arrays (Slurm, Kubernetes) split the work deterministically.
pub fn partition(mut videos: Vec<PathBuf>, shard_index: usize, num_shards: usize) -> Result<Vec<PathBuf>> {
    if num_shards == 0 || shard_index >= num_shards {
        return Err(Error::Msg(format!("--shard-index {shard_index} must be < --num-shards {num_shards}")));
    }
    videos.sort();
    Ok(videos.into_iter().enumerate().filter(|(i, _)| i % num_shards == shard_index).map(|(_, v)| v).collect())
}
