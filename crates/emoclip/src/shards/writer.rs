//! Writes samples into numbered WebDataset shards (`<prefix>-000000.tar`, …). A shard is written under a
//! temporary name and renamed when complete, so readers never see a half-written shard and an interrupted
//! run leaves only `.tmp` files, which a rerun removes.
use crate::{Error, Result};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// One sample: a key (no dots: WebDataset splits the key at the first dot) and its files by extension,
/// e.g. `("frame000.jpg", jpeg bytes)`, `("json", metadata)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub key: String,
    pub files: Vec<(String, Vec<u8>)>,
}

pub struct ShardWriter {
    dir: PathBuf,
    prefix: String,
    max_samples: usize,
    max_bytes: u64,
    index: usize,
    current: Option<(tar::Builder<BufWriter<File>>, PathBuf, PathBuf)>,
    samples_in_shard: usize,
    bytes_in_shard: u64,
    written: Vec<PathBuf>,
}

impl ShardWriter {
    /// Shards roll over after `max_samples` samples or `max_bytes` bytes, whichever comes first.
    pub fn new(dir: &Path, prefix: &str, max_samples: usize, max_bytes: u64) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        if prefix.is_empty() || prefix.contains('/') {
            return Err(Error::Msg(format!("shard prefix {prefix:?} must be a plain file-name prefix")));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            prefix: prefix.to_string(),
            max_samples: max_samples.max(1),
            max_bytes: max_bytes.max(1),
            index: 0,
            current: None,
            samples_in_shard: 0,
            bytes_in_shard: 0,
            written: Vec::new(),
        })
    }

    pub fn shard_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("{}-{i:06}.tar", self.prefix))
    }

    fn open_next(&mut self) -> Result<()> {
        let final_path = self.shard_path(self.index);
        let tmp = self.dir.join(format!(".{}-{:06}.tar.tmp", self.prefix, self.index));
        let f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        self.current = Some((tar::Builder::new(BufWriter::new(f)), tmp, final_path));
        self.index += 1;
        self.samples_in_shard = 0;
        self.bytes_in_shard = 0;
        Ok(())
    }

    pub fn write(&mut self, s: &Sample) -> Result<()> {
        if s.key.is_empty() || s.key.contains('.') || s.key.contains('/') {
            return Err(Error::Msg(format!("sample key {:?} must be non-empty without '.' or '/'", s.key)));
        }
        if self.current.is_none() {
            self.open_next()?;
        }
        let Some((builder, tmp, _)) = self.current.as_mut() else {
            return Err(Error::Msg("internal: no open shard".into()));
        };
        for (ext, data) in &s.files {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(0); // deterministic shards
            h.set_entry_type(tar::EntryType::Regular);
            builder
                .append_data(&mut h, format!("{}.{ext}", s.key), data.as_slice())
                .map_err(|e| Error::io(&*tmp, e))?;
            self.bytes_in_shard += data.len() as u64 + 512;
        }
        self.samples_in_shard += 1;
        if self.samples_in_shard >= self.max_samples || self.bytes_in_shard >= self.max_bytes {
            self.close_current()?;
        }
        Ok(())
    }

    fn close_current(&mut self) -> Result<()> {
        if let Some((builder, tmp, final_path)) = self.current.take() {
            let w = builder.into_inner().map_err(|e| Error::io(&tmp, e))?;
            let f = w.into_inner().map_err(|e| Error::io(&tmp, e.into_error()))?;
            f.sync_all().map_err(|e| Error::io(&tmp, e))?;
            std::fs::rename(&tmp, &final_path).map_err(|e| Error::io(&final_path, e))?;
            self.written.push(final_path);
        }
        Ok(())
    }

    /// Completes the last shard; returns every shard written.
    pub fn finish(mut self) -> Result<Vec<PathBuf>> {
        self.close_current()?;
        Ok(std::mem::take(&mut self.written))
    }
}

impl Drop for ShardWriter {
    /// An unfinished shard (error or panic) is removed, never renamed into place.
    fn drop(&mut self) {
        if let Some((_, tmp, _)) = self.current.take() {
            let _ = std::fs::remove_file(tmp);
        }
    }
}
