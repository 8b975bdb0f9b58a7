//! Streaming WebDataset shards, as Python `webdataset`'s `shardshuffle=True` + `.shuffle(bufsize)`: shards are
//! read sequentially in a per-epoch seeded order, samples pass through a seeded shuffle buffer, and a prefetch
//! thread keeps at most `buffer + prefetch` samples' bytes in memory.
//!
//! The emitted order depends only on `(seed, epoch, samples per shard, buffer size)`, never on the bytes, so it
//! can be computed without I/O ([`stream_order`]) and a stream restarted at position `p` (resume) passes the
//! first `p` samples through the buffer as placeholders without reading them, giving the same remaining order.
use crate::rng::mix_seed;
use crate::{Error, Result};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

/// A seeded shuffle buffer of `cap` slots: once full, each new item takes the slot of a uniformly drawn one,
/// which is emitted; [`ShuffleBuffer::drain`] empties the rest in random order. `cap == 0` passes items through.
pub struct ShuffleBuffer<T> {
    cap: usize,
    items: Vec<T>,
    rng: StdRng,
}

impl<T> ShuffleBuffer<T> {
    pub fn new(cap: usize, rng: StdRng) -> Self {
        Self { cap, items: Vec::with_capacity(cap), rng }
    }

    /// Adds `x`; returns the item it displaces once the buffer is full.
    pub fn push(&mut self, x: T) -> Option<T> {
        if self.cap == 0 {
            return Some(x);
        }
        if self.items.len() < self.cap {
            self.items.push(x);
            return None;
        }
        let k = self.rng.random_range(0..self.cap);
        Some(std::mem::replace(&mut self.items[k], x))
    }

    /// The remaining items, shuffled.
    pub fn drain(mut self) -> std::vec::IntoIter<T> {
        self.items.shuffle(&mut self.rng);
        self.items.into_iter()
    }
}

/// The shard visiting order of an epoch.
pub fn shard_order(shards: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut o: Vec<usize> = (0..shards).collect();
    o.shuffle(&mut StdRng::seed_from_u64(mix_seed(&[seed, 0x5A4D, epoch as u64])));
    o
}

fn buffer_rng(seed: u64, epoch: usize) -> StdRng {
    StdRng::seed_from_u64(mix_seed(&[seed, 0xB0FF, epoch as u64]))
}

/// First global sample index of every shard (prefix sums of `counts`).
fn bases(counts: &[usize]) -> Vec<usize> {
    counts
        .iter()
        .scan(0, |acc, &c| {
            let b = *acc;
            *acc += c;
            Some(b)
        })
        .collect()
}

/// The sample order (global indices: shard `s`, sample `j` is `Σ counts[..s] + j`) that a stream over shards
/// with `counts` samples produces in epoch `epoch`: no I/O, same code path as the real stream.
pub fn stream_order(counts: &[usize], buffer: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let base = bases(counts);
    let mut buf = ShuffleBuffer::new(buffer, buffer_rng(seed, epoch));
    let mut out = Vec::with_capacity(counts.iter().sum());
    for s in shard_order(counts.len(), seed, epoch) {
        for j in 0..counts[s] {
            out.extend(buf.push(base[s] + j));
        }
    }
    out.extend(buf.drain());
    out
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
    base: Vec<usize>,
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

/// Counts the samples whose bytes are in memory (read and not yet dropped) and the most seen at once.
#[derive(Debug, Default)]
pub struct Residency {
    now: AtomicUsize,
    peak: AtomicUsize,
}

impl Residency {
    fn acquire(self: &Arc<Self>) -> Resident {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(n, Ordering::SeqCst);
        Resident(self.clone())
    }
    /// The largest number of samples held in memory at once so far.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
    pub fn now(&self) -> usize {
        self.now.load(Ordering::SeqCst)
    }
    pub fn reset_peak(&self) {
        self.peak.store(self.now(), Ordering::SeqCst);
    }
}

/// Keeps one sample counted in a [`Residency`] while alive.
#[derive(Debug)]
pub struct Resident(Arc<Residency>);

impl Drop for Resident {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A sample's bytes as read from its shard.
#[derive(Debug)]
pub struct RawSample {
    pub path: PathBuf,
    pub files: Members,
    _resident: Resident,
}

impl RawSample {
    /// Wraps bytes read outside a stream, counted in `residency` while alive.
    pub fn new(path: PathBuf, files: Members, residency: &Arc<Residency>) -> Self {
        Self { path, files, _resident: residency.acquire() }
    }
}

/// One emitted sample: position in the epoch order, global index, bytes (or the read error).
pub type Emitted = (usize, usize, Result<RawSample>);

/// A running stream of one epoch from position `start` on, fed by a prefetch thread.
pub struct ShardStream {
    pub seed: u64,
    pub epoch: usize,
    /// Position of the next sample [`ShardStream::next_sample`] returns.
    pub next_pos: usize,
    rx: Option<Receiver<Emitted>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl ShardStream {
    /// Starts reading epoch `epoch` at position `start` of `order` (which must be this epoch's
    /// [`stream_order`]); at most `buffer` samples wait in the shuffle buffer and `prefetch` in the channel.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        index: Arc<ShardIndex>,
        order: Arc<Vec<usize>>,
        buffer: usize,
        prefetch: usize,
        seed: u64,
        epoch: usize,
        start: usize,
        residency: Arc<Residency>,
    ) -> Result<Self> {
        let (tx, rx) = sync_channel::<Emitted>(prefetch.max(1));
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handle = std::thread::Builder::new()
            .name("emoclip-shard-stream".into())
            .spawn(move || {
                let mut pos_of = vec![0usize; order.len()];
                for (p, &g) in order.iter().enumerate() {
                    pos_of[g] = p;
                }
                let mut buf: ShuffleBuffer<(usize, Option<Result<RawSample>>)> =
                    ShuffleBuffer::new(buffer, buffer_rng(seed, epoch));
                let mut t = 0usize;
                // Emits one sample; false when the consumer is gone.
                let mut emit = |(g, raw): (usize, Option<Result<RawSample>>)| -> bool {
                    let p = t;
                    t += 1;
                    if order.get(p) != Some(&g) {
                        let _ = tx.send((
                            p,
                            g,
                            Err(Error::Msg(format!(
                                "internal: stream position {p} holds sample {g}, the order says {:?}",
                                order.get(p)
                            ))),
                        ));
                        return false;
                    }
                    match raw {
                        None => true,
                        Some(r) => tx.send((p, g, r)).is_ok(),
                    }
                };
                for s in shard_order(index.shards.len(), seed, epoch) {
                    let sh = &index.shards[s];
                    let base = index.base[s];
                    let mut reader: Option<std::result::Result<BufReader<File>, String>> = None;
                    for j in 0..sh.offsets.len() {
                        if stop2.load(Ordering::Relaxed) {
                            return;
                        }
                        let g = base + j;
                        let raw = if pos_of[g] < start {
                            None
                        } else {
                            let r = reader.get_or_insert_with(|| {
                                File::open(&sh.path)
                                    .map(|f| BufReader::with_capacity(1 << 20, f))
                                    .map_err(|e| e.to_string())
                            });
                            Some(match r {
                                Ok(r) => {
                                    let files = index.read(s, j, r);
                                    files.map(|files| RawSample {
                                        path: sh.path.clone(),
                                        files,
                                        _resident: residency.acquire(),
                                    })
                                }
                                Err(e) => Err(Error::media(&sh.path, format!("cannot open the shard: {e}"))),
                            })
                        };
                        if let Some(out) = buf.push((g, raw)) {
                            if !emit(out) {
                                return;
                            }
                        }
                    }
                }
                for out in buf.drain() {
                    if !emit(out) {
                        return;
                    }
                }
            })
            .map_err(|e| Error::Msg(format!("cannot start the shard reading thread: {e}")))?;
        Ok(Self { seed, epoch, next_pos: start, rx: Some(rx), stop, handle: Some(handle) })
    }

    /// The next sample of the stream, `None` at the end of the epoch.
    pub fn next_sample(&mut self) -> Option<Emitted> {
        let item = self.rx.as_ref()?.recv().ok()?;
        self.next_pos = item.0 + 1;
        Some(item)
    }
}

impl Drop for ShardStream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        drop(self.rx.take()); // unblocks a producer waiting on a full channel
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
