//! Reads a whole WebDataset tar shard back into samples (files grouped by the key before the first dot), in
//! order: for tests and inspection. Training reads through [`super::ShardIndex`] and [`super::stream`].
use super::writer::Sample;
use crate::{Error, Result};
use std::io::Read;
use std::path::Path;

pub fn read_shard(path: &Path) -> Result<Vec<Sample>> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut ar = tar::Archive::new(std::io::BufReader::new(f));
    let mut out: Vec<Sample> = Vec::new();
    let bad = |e: std::io::Error| {
        Error::media(path, format!("corrupt shard ({e}); delete it and rerun the job that wrote it"))
    };
    for entry in ar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let name = entry.path().map_err(bad)?.to_string_lossy().to_string();
        let base = name.rsplit('/').next().unwrap_or(&name).to_string();
        let Some((key, ext)) = base.split_once('.') else { continue };
        let mut data = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut data).map_err(bad)?;
        match out.last_mut() {
            Some(s) if s.key == key => s.files.push((ext.to_string(), data)),
            _ => out.push(Sample { key: key.to_string(), files: vec![(ext.to_string(), data)] }),
        }
    }
    Ok(out)
}
