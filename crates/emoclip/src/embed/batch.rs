//! Embedding many items: each batch is decoded and preprocessed in parallel (rayon) and encoded in one
//! forward pass; an item that fails is reported and skipped, and the run goes on.
use crate::encoder::{Embedder, MediaInput, Prepared};
use crate::Result;
use rayon::prelude::*;

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

impl Embedder {
    /// Embeds the items `indices` in batches of `batch`: `input(i)` describes item `i` (an error skips it),
    /// `on` sees the progress. A batch whose forward pass fails fails all its items.
    pub fn embed_each(
        &self,
        indices: &[usize],
        batch: usize,
        input: impl Fn(usize) -> Result<MediaInput> + Sync,
        on: &mut dyn FnMut(EmbedEvent),
    ) -> Embedded {
        let mut out = Embedded::default();
        for chunk in indices.chunks(batch.max(1)) {
            let prepared: Vec<(usize, Result<Prepared>)> =
                chunk.par_iter().map(|&i| (i, input(i).and_then(|m| self.prepare(&m)))).collect();
            let (mut ok_idx, mut ok) = (Vec::new(), Vec::new());
            for (i, p) in prepared {
                match p {
                    Ok(p) => {
                        ok_idx.push(i);
                        ok.push(p);
                    }
                    Err(e) => {
                        let f = Failure { index: i, message: e.to_string() };
                        on(EmbedEvent::Skipped(&f));
                        out.failures.push(f);
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
                        on(EmbedEvent::Embedded(&out.rows[start..]));
                    }
                    Err(e) => {
                        for (&i, p) in ok_idx.iter().zip(&ok) {
                            out.failures.push(Failure { index: i, message: format!("{}: {e}", p.path.display()) });
                        }
                    }
                }
            }
            on(EmbedEvent::Batch { items: chunk.len() });
        }
        out
    }
}
