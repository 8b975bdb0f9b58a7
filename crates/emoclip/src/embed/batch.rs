//! Embedding many items: a producer thread decodes and preprocesses the next batches (the items of a batch in
//! parallel, rayon) while the calling thread encodes the current one in one forward pass, with a bounded queue
//! between them ([`pipelined`]); an item that fails is reported and skipped, and the run goes on.
use crate::encoder::{Embedder, MediaInput, Prepared};
use crate::{Error, Result};
use rayon::prelude::*;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};

/// An item that could not be embedded; `message` names its file.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The item's index (as given to [`Embedder::embed_each`]).
    pub index: usize,
    pub message: String,
}

/// What happens while embedding, for progress displays.
#[derive(Debug)]
pub enum EmbedEvent<'a> {
    /// Before any work ([`super::cache::FeatureCache::embed`]): `cached` items come from the cache, `todo`
    /// are embedded.
    Plan { cached: usize, todo: usize },
    /// An item could not be read or preprocessed; it is skipped (embedding errors come only in the result).
    Skipped(&'a Failure),
    /// The items of a batch that were embedded, `(index, vector)`.
    Embedded(&'a [(usize, Vec<f32>)]),
    /// A batch of `items` items is done (embedded or failed).
    Batch { items: usize },
    /// A feature-cache entry could not be written (the vector is still used).
    CacheWrite(&'a crate::Error),
}

/// Person boxes found entirely outside their frames during a run (ignored), reported once at the end.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct OutsideBoxes {
    pub boxes: usize,
    pub inputs: usize,
    example: Option<String>,
}

impl OutsideBoxes {
    pub fn add(&mut self, p: &Prepared) {
        if let Some(b) = p.boxes_outside.first() {
            self.boxes += p.boxes_outside.len();
            self.inputs += 1;
            self.example.get_or_insert_with(|| {
                format!(
                    "{}: [{}, {}, {}, {}] on a {}x{} frame",
                    p.path.display(),
                    b.x1,
                    b.y1,
                    b.x2,
                    b.y2,
                    p.frame_size.0,
                    p.frame_size.1
                )
            });
        }
    }

    /// The warning to give when any box lay outside its frame.
    pub fn warning(&self) -> Option<String> {
        let ex = self.example.as_ref()?;
        Some(format!(
            "{} person box(es) in {} input(s) lie entirely outside the frame and were ignored (e.g. {ex}); \
             boxes are [x1, y1, x2, y2] in pixels of the original frame",
            self.boxes, self.inputs
        ))
    }
}

/// The outcome of [`Embedder::embed_each`].
#[derive(Debug, Default)]
pub struct Embedded {
    /// `(index, vector)` of every item embedded, in order.
    pub rows: Vec<(usize, Vec<f32>)>,
    /// The items that failed, in order.
    pub failures: Vec<Failure>,
    /// Embedded items whose subject masks are empty (no person box).
    pub no_subject: usize,
    pub outside: OutsideBoxes,
}

/// Prepared batches that may wait in the queue beside the one being consumed: with the batch the producer is
/// preparing, at most `AHEAD + 2` batches are in memory at once.
pub const AHEAD: usize = 1;

/// Runs `prepare` on `indices` in batches of `batch` on a producer thread (the items of a batch in parallel)
/// while `consume` takes the finished batches in order on the calling thread, so preparing batch n + 1 overlaps
/// consuming batch n. The producer runs at most [`AHEAD`] + 1 batches ahead of the one being consumed (a bounded
/// queue). `consume` gets each batch's `(index, prepare result)` in index order; when it returns
/// [`ControlFlow::Break`] the producer stops after the item(s) it is on and the call fails with
/// [`Error::Interrupted`].
pub fn pipelined<P: Send>(
    indices: &[usize],
    batch: usize,
    prepare: impl Fn(usize) -> Result<P> + Sync,
    consume: impl FnMut(Vec<(usize, Result<P>)>) -> ControlFlow<()>,
) -> Result<()> {
    pipelined_in(None, indices, batch, prepare, consume)
}

/// [`pipelined`] with the producer's parallel preparation in `pool`; `None`: in a pool of its own with as many
/// threads as the calling context's (rayon's global pool, or the pool the caller runs in), beside the model's.
pub fn pipelined_in<P: Send>(
    pool: Option<&rayon::ThreadPool>,
    indices: &[usize],
    batch: usize,
    prepare: impl Fn(usize) -> Result<P> + Sync,
    mut consume: impl FnMut(Vec<(usize, Result<P>)>) -> ControlFlow<()>,
) -> Result<()> {
    let chunks: Vec<&[usize]> = indices.chunks(batch.max(1)).collect();
    // Preparation never shares the model's pool: a decode there holds a worker for up to a few hundred
    // milliseconds, and a worker waiting in a product's join may take up a decode, so the product waits for
    // it. On threads of their own the OS shares the cores between the two.
    let own = if pool.is_none() && !chunks.is_empty() { preparation_pool(rayon::current_num_threads()) } else { None };
    let pool = pool.or(own.as_deref());
    let stop = AtomicBool::new(false);
    let mut done = 0;
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<(usize, Result<P>)>>(AHEAD);
        let (prepare, stop, chunks) = (&prepare, &stop, &chunks);
        s.spawn(move || {
            for chunk in chunks {
                let run = || -> Vec<(usize, Result<P>)> {
                    chunk
                        .par_iter()
                        .map(|&i| {
                            // A stopped run prepares nothing more; the batch is dropped below.
                            let r =
                                if stop.load(Ordering::Relaxed) { Err(Error::Msg(String::new())) } else { prepare(i) };
                            (i, r)
                        })
                        .collect()
                };
                let prepared = match pool {
                    Some(p) => p.install(run),
                    None => run(),
                };
                if stop.load(Ordering::Relaxed) || tx.send(prepared).is_err() {
                    return;
                }
            }
        });
        while let Some(prepared) = receive(&rx) {
            let items = prepared.len();
            if consume(prepared).is_break() {
                // Dropping the receiver (end of this scope's loop) also unblocks a producer waiting to send.
                stop.store(true, Ordering::Relaxed);
                return Err(Error::Interrupted { unit: "item(s)".into(), done, total: indices.len() });
            }
            done += items;
        }
        Ok(())
    })
}

/// The preparation pool of `threads` threads, started on first use and kept for later calls (a call per image
/// in a loop should not start threads each time); `None` if the threads cannot be started (then preparation
/// runs in rayon's global pool).
fn preparation_pool(threads: usize) -> Option<std::sync::Arc<rayon::ThreadPool>> {
    static POOLS: std::sync::Mutex<Vec<(usize, std::sync::Arc<rayon::ThreadPool>)>> = std::sync::Mutex::new(Vec::new());
    let mut pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, p)) = pools.iter().find(|(n, _)| *n == threads) {
        return Some(p.clone());
    }
    let p = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("emoclip-prepare-{i}"))
        .build()
        .ok()
        .map(std::sync::Arc::new)?;
    pools.push((threads, p.clone()));
    Some(p)
}

/// The next prepared batch, `None` when the producer is done. A rayon worker (a caller inside its own pool, as
/// the Python package's jobs are) must not block here: with a pool of one thread the producer's parallel
/// preparation waits for that very thread. It runs pending pool work while it waits instead.
fn receive<T>(rx: &std::sync::mpsc::Receiver<T>) -> Option<T> {
    if rayon::current_thread_index().is_none() {
        return rx.recv().ok();
    }
    loop {
        match rx.try_recv() {
            Ok(v) => return Some(v),
            Err(std::sync::mpsc::TryRecvError::Disconnected) => return None,
            Err(std::sync::mpsc::TryRecvError::Empty) => {
                if rayon::yield_now() != Some(rayon::Yield::Executed) {
                    match rx.recv_timeout(std::time::Duration::from_micros(200)) {
                        Ok(v) => return Some(v),
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return None,
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    }
                }
            }
        }
    }
}

impl Embedder {
    /// Embeds the items `indices` in batches of `batch`: `input(i)` describes item `i` (an error skips it),
    /// `on` sees the progress and may stop the run ([`ControlFlow::Break`] → [`Error::Interrupted`]; the events
    /// of the batches done so far have been seen). A batch whose forward pass fails fails all its items.
    /// Decoding and preprocessing of the next batches run on another thread while this one encodes
    /// ([`pipelined`]); the model runs on the calling thread, events come in item order, as without the overlap.
    pub fn embed_each(
        &self,
        indices: &[usize],
        batch: usize,
        input: impl Fn(usize) -> Result<MediaInput> + Sync,
        on: &mut dyn FnMut(EmbedEvent) -> ControlFlow<()>,
    ) -> Result<Embedded> {
        self.embed_each_in(None, indices, batch, input, on)
    }

    /// [`Self::embed_each`] with decoding and preprocessing in `pool` ([`pipelined_in`]); the model runs in the
    /// caller's pool.
    pub fn embed_each_in(
        &self,
        pool: Option<&rayon::ThreadPool>,
        indices: &[usize],
        batch: usize,
        input: impl Fn(usize) -> Result<MediaInput> + Sync,
        on: &mut dyn FnMut(EmbedEvent) -> ControlFlow<()>,
    ) -> Result<Embedded> {
        let mut out = Embedded::default();
        let prepare = |i: usize| input(i).and_then(|m| self.prepare(&m));
        pipelined_in(pool, indices, batch, prepare, |prepared| {
            let items = prepared.len();
            let (mut ok_idx, mut ok) = (Vec::new(), Vec::new());
            for (i, p) in prepared {
                match p {
                    Ok(p) => {
                        ok_idx.push(i);
                        ok.push(p);
                    }
                    Err(e) => {
                        let f = Failure { index: i, message: e.to_string() };
                        let flow = on(EmbedEvent::Skipped(&f));
                        out.failures.push(f);
                        flow?;
                    }
                }
            }
            if !ok.is_empty() {
                match self.encode(&ok) {
                    Ok(vs) => {
                        let start = out.rows.len();
                        for ((&i, p), v) in ok_idx.iter().zip(&ok).zip(vs) {
                            out.no_subject += usize::from(!p.has_subject);
                            out.outside.add(p);
                            out.rows.push((i, v));
                        }
                        on(EmbedEvent::Embedded(&out.rows[start..]))?;
                    }
                    Err(e) => {
                        for (&i, p) in ok_idx.iter().zip(&ok) {
                            out.failures.push(Failure { index: i, message: format!("{}: {e}", p.path.display()) });
                        }
                    }
                }
            }
            on(EmbedEvent::Batch { items })
        })?;
        Ok(out)
    }
}
