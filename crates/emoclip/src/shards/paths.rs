//! Which files are the shards of a run: a directory's `*.tar` files or a `dir/prefix-*.tar` pattern.
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// Shard files from a directory (every `*.tar`) or a glob-like path (`dir/prefix-*.tar`: `*` matches any run).
pub fn shard_paths(spec: &Path) -> Result<Vec<PathBuf>> {
    let (dir, pat) = if spec.is_dir() {
        (spec.to_path_buf(), "*.tar".to_string())
    } else {
        let dir = spec.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
        let pat = spec.file_name().and_then(|s| s.to_str()).unwrap_or("").to_string();
        (dir, pat)
    };
    let rd = std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.file_name().and_then(|s| s.to_str()).is_some_and(|n| glob_match(&pat, n)))
        .collect();
    out.sort();
    if out.is_empty() {
        return Err(Error::config(spec, "no shard (*.tar) matches; run `emoclip prepare` first or fix data.shards"));
    }
    Ok(out)
}

fn glob_match(pat: &str, s: &str) -> bool {
    let parts: Vec<&str> = pat.split('*').collect();
    if parts.len() == 1 {
        return pat == s;
    }
    let mut rest = s;
    for (i, p) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(p) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(p);
        } else {
            match rest.find(p) {
                Some(k) => rest = &rest[k + p.len()..],
                None => return false,
            }
        }
    }
    true
}
