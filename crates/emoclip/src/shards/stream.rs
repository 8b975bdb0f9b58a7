//! Streaming WebDataset shards, as Python `webdataset`'s `shardshuffle=True` + `.shuffle(bufsize)`: shards are
//! read sequentially in a per-epoch seeded order, samples pass through a seeded shuffle buffer, and a prefetch
//! thread keeps at most `buffer + prefetch` samples' bytes in memory.
//!
//! The emitted order depends only on `(seed, epoch, samples per shard, buffer size)`, never on the bytes, so it
//! can be computed without I/O ([`stream_order`]) and a stream restarted at position `p` (resume) passes the
//! first `p` samples through the buffer as placeholders without reading them, giving the same remaining order.
use super::index::{bases, Members, ShardIndex};
use crate::rng::mix_seed;
use crate::{Error, Result};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
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

/// Options of the streaming shard reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamOptions {
    /// Shuffle-buffer slots (samples); 0 = shard order only.
    pub buffer: usize,
    /// Samples read ahead by the prefetch thread.
    pub prefetch: usize,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self { buffer: DEFAULT_SHUFFLE_BUFFER, prefetch: 32 }
    }
}

/// Default shuffle-buffer size (samples).
pub const DEFAULT_SHUFFLE_BUFFER: usize = 512;
