//! The sample layout of WebDataset shards from one pass over their tar headers, and random access to one
//! sample by seeking to its first header: what the streaming reader ([`super::stream`]) and random access
//! (evaluation) read through.
use crate::{Error, Result};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// First global sample index of every shard (prefix sums of `counts`).
pub(crate) fn bases(counts: &[usize]) -> Vec<usize> {
    counts
        .iter()
        .scan(0, |acc, &c| {
            let b = *acc;
            *acc += c;
            Some(b)
        })
        .collect()
}

/// A sample's members: `(extension, bytes)` in tar order.
pub type Members = Vec<(String, Vec<u8>)>;

/// Where each sample of a shard starts (byte offset of its first tar header) and its key.
#[derive(Clone, Debug)]
pub struct ShardEntry {
    pub path: PathBuf,
    pub offsets: Vec<u64>,
    pub keys: Vec<String>,
}

/// The sample layout of a set of shards, from one pass over their tar headers (member data is seeked over).
#[derive(Clone, Debug)]
pub struct ShardIndex {
    pub shards: Vec<ShardEntry>,
    pub(crate) base: Vec<usize>,
    /// Problems met while indexing (a corrupt shard tail): the samples after them are left out.
    pub problems: Vec<String>,
}

/// `name` → `(key, ext)` split at the first dot of the base name (WebDataset's rule).
fn split_member(name: &str) -> Option<(&str, &str)> {
    let base = name.rsplit('/').next().unwrap_or(name);
    base.split_once('.')
}

impl ShardIndex {
    /// Indexes `paths` (in this order). A shard that cannot be opened is an error; a shard whose tar stream
    /// breaks part-way keeps the complete samples before the break, and the rest is reported in `problems`.
    pub fn scan(paths: &[PathBuf]) -> Result<Self> {
        let mut shards = Vec::with_capacity(paths.len());
        let mut problems = Vec::new();
        for path in paths {
            let f = File::open(path).map_err(|e| Error::io(path, e))?;
            let mut ar = tar::Archive::new(BufReader::new(f));
            let (mut offsets, mut keys) = (Vec::new(), Vec::<String>::new());
            // A sample starts where the previous member's data ended: that is where a GNU long-name or PAX
            // pseudo-entry of its first member sits (`raw_header_position` points past them).
            let mut prev_end = 0u64;
            let entries = ar.entries_with_seek().map_err(|e| Error::media(path, format!("not a tar shard ({e})")))?;
            for entry in entries {
                let entry = match entry {
                    Ok(e) => e,
                    Err(e) => {
                        // The sample being read when the stream broke may be incomplete: drop it.
                        let lost = keys.pop();
                        offsets.pop();
                        problems.push(format!(
                            "{}: corrupt tar after {} sample(s) ({e}); {} and the rest of the shard skipped",
                            path.display(),
                            keys.len(),
                            lost.map(|k| format!("sample {k}")).unwrap_or_else(|| "everything".into())
                        ));
                        break;
                    }
                };
                let start = prev_end;
                prev_end = entry.raw_file_position() + entry.size().div_ceil(512) * 512;
                let name = match entry.path() {
                    Ok(p) => p.to_string_lossy().to_string(),
                    Err(_) => continue,
                };
                let Some((key, _)) = split_member(&name) else { continue };
                if keys.last().map(String::as_str) != Some(key) {
                    keys.push(key.to_string());
                    offsets.push(start);
                }
            }
            shards.push(ShardEntry { path: path.clone(), offsets, keys });
        }
        let base = bases(&shards.iter().map(|s| s.offsets.len()).collect::<Vec<_>>());
        Ok(Self { shards, base, problems })
    }

    pub fn counts(&self) -> Vec<usize> {
        self.shards.iter().map(|s| s.offsets.len()).collect()
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.offsets.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Global index → (shard, sample within shard).
    pub fn locate(&self, index: usize) -> Option<(usize, usize)> {
        // Empty shards share their base with the next shard; the last shard with base <= index holds it.
        let s = self.base.partition_point(|&b| b <= index).checked_sub(1)?;
        let j = index - self.base[s];
        (j < self.shards[s].offsets.len()).then_some((s, j))
    }

    /// Reads sample `j` of shard `s` with a reader of that shard.
    pub fn read<R: Read + Seek>(&self, s: usize, j: usize, reader: &mut R) -> Result<Members> {
        let sh = &self.shards[s];
        read_sample_at(reader, &sh.path, sh.offsets[j], &sh.keys[j])
    }

    /// Reads the sample with global index `index` (random access: opens its shard and seeks).
    pub fn read_index(&self, index: usize) -> Result<(PathBuf, Members)> {
        let (s, j) = self
            .locate(index)
            .ok_or_else(|| Error::Msg(format!("sample {index} is out of range ({} samples)", self.len())))?;
        let path = &self.shards[s].path;
        let mut r = BufReader::new(File::open(path).map_err(|e| Error::io(path, e))?);
        Ok((path.clone(), self.read(s, j, &mut r)?))
    }
}

/// Reads the members of sample `key` whose first header is at byte `off`: `(ext, bytes)` in tar order.
pub fn read_sample_at<R: Read + Seek>(reader: &mut R, path: &Path, off: u64, key: &str) -> Result<Members> {
    let bad = |e: std::io::Error| {
        Error::media(path, format!("sample {key}: corrupt shard ({e}); rerun `emoclip prepare` for this video"))
    };
    reader.seek(SeekFrom::Start(off)).map_err(bad)?;
    let mut ar = tar::Archive::new(reader);
    let mut files = Vec::new();
    for entry in ar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let name = entry.path().map_err(bad)?.to_string_lossy().to_string();
        let Some((k, ext)) = split_member(&name) else { continue };
        if k != key {
            break;
        }
        let mut data = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut data).map_err(bad)?;
        files.push((ext.to_string(), data));
    }
    if files.is_empty() {
        return Err(Error::media(
            path,
            format!("sample {key}: no member at byte {off}; the shard changed since it was indexed"),
        ));
    }
    Ok(files)
}
