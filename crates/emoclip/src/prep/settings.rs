//! `<out>/prepare.json`: the settings a `prepare` output was made with (filters, sentence rules, frame
//! format, model identities), written by the first run and checked by every later one, so a rerun with
//! other settings is refused instead of silently mixing old and new results, and `report` labels its
//! counts with the filters actually used. (The official scripts keep these as constants in
//! `preprocessing/*.py`; nothing there records them.)
use super::filters::FilterConfig;
use super::sentences::SentenceConfig;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// File name of the settings record inside a `prepare` output directory.
pub const SETTINGS_FILE: &str = "prepare.json";

/// Which model (or file) produced part of the output. `path` is informational; `fingerprint` decides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelIdentity {
    pub path: String,
    /// Per file (sorted by name, a directory's regular files): name, size and FNV-1a 64 of the first and
    /// last MiB. Stable across copies and machines; changes with any retrained or replaced file.
    pub fingerprint: String,
}

impl ModelIdentity {
    /// Identity of a model file or directory (a directory: its regular files, not recursive; links followed).
    pub fn of(path: &Path) -> Result<Self> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        let mut files: Vec<PathBuf> = if meta.is_dir() {
            std::fs::read_dir(path)
                .map_err(|e| Error::io(path, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect()
        } else {
            vec![path.to_path_buf()]
        };
        files.sort();
        let mut parts = Vec::with_capacity(files.len());
        for f in &files {
            let name = f.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            let (size, hash) = head_tail_hash(f)?;
            parts.push(format!("{name}:{size}:{hash:016x}"));
        }
        let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        Ok(Self { path: abs.display().to_string(), fingerprint: parts.join(";") })
    }
}

/// Size and FNV-1a 64 of the first and last MiB of a file.
fn head_tail_hash(path: &Path) -> Result<(u64, u64)> {
    const MIB: u64 = 1 << 20;
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let size = f.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut buf = Vec::new();
    (&mut f).take(MIB).read_to_end(&mut buf).map_err(|e| Error::io(path, e))?;
    if size > 2 * MIB {
        f.seek(SeekFrom::Start(size - MIB)).map_err(|e| Error::io(path, e))?;
    }
    if size > MIB {
        f.take(MIB).read_to_end(&mut buf).map_err(|e| Error::io(path, e))?;
    }
    Ok((size, crate::hash::fnv1a64(&buf)))
}

/// Where person boxes came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BoxSource {
    None,
    /// `--boxes-dir` (canonical path).
    Dir(String),
    /// `--yolo` model.
    Detector(ModelIdentity),
}

/// Everything that decides what `prepare` writes for one video.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrepareSettings {
    pub fps: f64,
    pub short_side: u32,
    pub jpeg_quality: u8,
    pub min_video_seconds: f64,
    pub filters: FilterConfig,
    pub sentences: SentenceConfig,
    pub emotion_model: ModelIdentity,
    pub punctuation_model: Option<ModelIdentity>,
    pub boxes: BoxSource,
}

fn leaves(v: &serde_json::Value, prefix: &str, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                leaves(x, &p, out);
            }
        }
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

impl PrepareSettings {
    /// The settings that differ from `other`, as `key: mine → theirs` lines (model paths are ignored:
    /// a model is the same when its fingerprint is).
    pub fn differences(&self, recorded: &Self) -> Vec<String> {
        // Through the JSON text, so f32 fields read as written (0.05, not 0.05000000074505806).
        let value = |x: &Self| -> serde_json::Value {
            serde_json::to_string(x).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
        };
        let (mut a, mut b) = (Vec::new(), Vec::new());
        leaves(&value(recorded), "", &mut a);
        leaves(&value(self), "", &mut b);
        let get = |v: &[(String, String)], k: &str| v.iter().find(|(x, _)| x == k).map(|(_, y)| y.clone());
        let mut keys: Vec<String> = a.iter().chain(b.iter()).map(|(k, _)| k.clone()).collect();
        keys.sort();
        keys.dedup();
        keys.into_iter()
            .filter(|k| !(k.ends_with(".path") && (k.contains("model") || k.starts_with("boxes.detector"))))
            .filter_map(|k| {
                let (old, new) = (get(&a, &k), get(&b, &k));
                (old != new).then(|| {
                    let show = |x: Option<String>| x.unwrap_or_else(|| "(absent)".into());
                    format!("{k}: {} → {}", show(old), show(new))
                })
            })
            .collect()
    }

    /// Reads `<out>/prepare.json`; `Ok(None)` when there is none.
    pub fn read(out: &Path) -> Result<Option<Self>> {
        let p = out.join(SETTINGS_FILE);
        match std::fs::read_to_string(&p) {
            Ok(s) => serde_json::from_str(&s).map(Some).map_err(|e| Error::Data {
                path: p.clone(),
                msg: format!("not a prepare settings record ({e}); it is written by `emoclip prepare`"),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(p, e)),
        }
    }

    /// Records these settings in `out` (first run) or checks them against the record (later runs and the
    /// other tasks of a job array). Refuses when they differ, or when `out` holds results of a run that
    /// recorded no settings, naming the differences and the fix. Safe when several runs start at once:
    /// the record is created atomically and exactly once.
    pub fn record_or_check(&self, out: &Path) -> Result<()> {
        let p = out.join(SETTINGS_FILE);
        let refuse = |msg: String| Err(Error::Data { path: p.clone(), msg });
        if let Some(old) = Self::read(out)? {
            let diff = self.differences(&old);
            if diff.is_empty() {
                return Ok(());
            }
            return refuse(format!(
                "this output was prepared with other settings, and reusing its finished videos would mix the two:\n  {}\n\
                 rerun with the recorded settings, or use a fresh --out (or delete {} to start over)",
                diff.join("\n  "),
                out.display()
            ));
        }
        let index = out.join("index");
        let has_results = std::fs::read_dir(&index).is_ok_and(|mut d| d.any(|_| true));
        if has_results {
            return refuse(format!(
                "missing, but {} holds results: they were written by an emoclip that did not record its settings, \
                 so whether they match cannot be told; use a fresh --out (or delete {} to start over)",
                index.display(),
                out.display()
            ));
        }
        std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
        let json = serde_json::to_vec_pretty(self)?;
        let tmp = tempfile::Builder::new().prefix(".emoclip-tmp-").tempfile_in(out).map_err(|e| Error::io(out, e))?;
        std::fs::write(tmp.path(), &json).map_err(|e| Error::io(tmp.path(), e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644));
        }
        // Hard link: fails when another run created the record first; then compare with that one.
        match std::fs::hard_link(tmp.path(), &p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => self.record_or_check(out),
            Err(e) => Err(Error::io(&p, e)),
        }
    }
}
