//! Training data (official `src/data/*` with `sampling_strategy='random'`, paper §3.4): a seeded synthetic paired set and WebDataset shards.
//!
//! Every random choice (epoch shuffle, frame sampling, crop, synthetic noise) comes from a `StdRng` seeded from
//! `(seed, epoch, index)`, so a batch is a pure function of its position: resuming mid-epoch is exact.
use crate::media::boxes::{resized_mask, PersonBox};
use crate::media::Normalization;
use crate::rng::{epoch_order, mix_seed};
use crate::shards::stream::{self, StreamOptions};
use crate::shards::ShardIndex;
use crate::shards::{shard_paths, SampleMeta};
use crate::tokenizer::{ClipTokenizer, Truncation};
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// One training example, already preprocessed.
#[derive(Clone, Debug)]
pub struct Item {
    /// `[T, 3, S, S]`, normalised.
    pub frames: Vec<f32>,
    /// `[T, S, S]`, 0/1.
    pub mask: Vec<f32>,
    /// `[L]` token ids.
    pub ids: Vec<u32>,
    /// Emotion logits of the caption (teacher).
    pub emotion: Vec<f32>,
}

/// A dataset of clips; `get` must be a pure function of `(index, rng)`.
pub trait Dataset: Send + Sync {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn get(&self, index: usize, rng: &mut StdRng) -> Result<Item>;

    /// The sample order of epoch `epoch` (default: a seeded uniform shuffle, [`epoch_order`]); a streaming
    /// dataset returns the order its shard stream and shuffle buffer produce.
    fn epoch_order(&self, seed: u64, epoch: usize) -> Arc<Vec<usize>> {
        Arc::new(epoch_order(self.len(), seed, epoch))
    }

    /// Loads the items `indices` of epoch `epoch`, each with randomness seeded from `(seed, epoch, index)`
    /// (default: `get` in parallel). A dataset may drop samples it reports as corrupt.
    fn get_many(&self, indices: &[usize], seed: u64, epoch: usize) -> Result<Vec<Item>> {
        indices.par_iter().map(|&i| self.get(i, &mut item_rng(seed, epoch, i))).collect()
    }
}

/// The RNG of item `index` in epoch `epoch` (frame choice, crop, noise).
pub fn item_rng(seed: u64, epoch: usize, index: usize) -> StdRng {
    StdRng::seed_from_u64(mix_seed(&[seed, epoch as u64, index as u64]))
}

/// A batch as tensors: video `[B,T,3,S,S]`, masks `[B,T,S,S]`, ids `[B,L]` u32, emotion `[B,E]`.
pub struct Batch {
    pub video: Tensor,
    pub masks: Tensor,
    pub ids: Tensor,
    pub emotion: Tensor,
}

/// Loads and stacks the items `indices` (in parallel); per-item randomness seeded from `(seed, epoch, index)`.
pub fn load_batch(
    data: &dyn Dataset,
    indices: &[usize],
    seed: u64,
    epoch: usize,
    frames: usize,
    size: usize,
    dev: &Device,
) -> Result<Batch> {
    let items = data.get_many(indices, seed, epoch)?;
    let b = items.len();
    if b == 0 {
        return Err(Error::Shape("empty batch".into()));
    }
    let (l, e) = (items[0].ids.len(), items[0].emotion.len());
    for it in &items {
        if it.frames.len() != frames * 3 * size * size
            || it.mask.len() != frames * size * size
            || it.ids.len() != l
            || it.emotion.len() != e
        {
            return Err(Error::Shape(format!(
                "dataset item does not fit the model ({frames} frames of {size}px, {l} ids, {e} emotion logits)"
            )));
        }
    }
    let cat = |f: &dyn Fn(&Item) -> &[f32]| items.iter().flat_map(|it| f(it).iter().copied()).collect::<Vec<f32>>();
    Ok(Batch {
        video: Tensor::from_vec(cat(&|it| &it.frames), (b, frames, 3, size, size), dev)?,
        masks: Tensor::from_vec(cat(&|it| &it.mask), (b, frames, size, size), dev)?,
        ids: Tensor::from_vec(items.iter().flat_map(|it| it.ids.iter().copied()).collect::<Vec<u32>>(), (b, l), dev)?,
        emotion: Tensor::from_vec(cat(&|it| &it.emotion), (b, e), dev)?,
    })
}

/// Synthetic paired data: `classes` classes, each with a fixed random video pattern, subject box, caption and
/// emotion logits; item `i` is class `i % classes` plus fresh Gaussian noise, so retrieval above chance is learnable.
pub struct SyntheticDataset {
    n: usize,
    frames: usize,
    size: usize,
    noise: f32,
    patterns: Vec<Vec<f32>>,
    boxes: Vec<(usize, usize, usize, usize)>,
    captions: Vec<Vec<u32>>,
    emotions: Vec<Vec<f32>>,
}

impl SyntheticDataset {
    /// `vocab`/`context` of the text tower: captions are `[vocab-2, w.., vocab-1, 0..]` (SOT, words, EOT, padding).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        n: usize,
        classes: usize,
        seed: u64,
        frames: usize,
        size: usize,
        vocab: usize,
        context: usize,
        noise: f32,
    ) -> Result<Self> {
        if n == 0 || classes == 0 || vocab < 4 || context < 3 || size < 2 {
            return Err(Error::Msg(format!(
                "synthetic data: need n, classes > 0, vocab >= 4, context >= 3 (got n {n}, classes {classes}, vocab {vocab}, context {context})"
            )));
        }
        let mut rng = StdRng::seed_from_u64(mix_seed(&[seed, 0x5E]));
        let normal = rand_distr::Normal::new(0f32, 1.0).map_err(|e| Error::Msg(e.to_string()))?;
        let mut patterns = Vec::new();
        let mut boxes = Vec::new();
        let mut captions = Vec::new();
        let mut emotions = Vec::new();
        for _ in 0..classes {
            patterns.push((0..frames * 3 * size * size).map(|_| rng.sample(normal)).collect());
            let (x0, y0) = (rng.random_range(0..size / 2), rng.random_range(0..size / 2));
            boxes.push((x0, y0, x0 + size / 2, y0 + size / 2));
            let words = rng.random_range(1..=(context - 2).min(6));
            let mut ids = vec![0u32; context];
            ids[0] = (vocab - 2) as u32;
            for w in ids.iter_mut().skip(1).take(words) {
                *w = rng.random_range(1..vocab - 2) as u32;
            }
            ids[words + 1] = (vocab - 1) as u32;
            captions.push(ids);
            emotions.push((0..7).map(|_| rng.sample(normal) * 2.0).collect());
        }
        Ok(Self { n, frames, size, noise, patterns, boxes, captions, emotions })
    }

    pub fn classes(&self) -> usize {
        self.patterns.len()
    }
}

impl Dataset for SyntheticDataset {
    fn len(&self) -> usize {
        self.n
    }

    fn get(&self, index: usize, rng: &mut StdRng) -> Result<Item> {
        let c = index % self.patterns.len();
        let normal = rand_distr::Normal::new(0f32, self.noise.max(1e-12)).map_err(|e| Error::Msg(e.to_string()))?;
        let frames =
            self.patterns[c].iter().map(|&p| p + if self.noise > 0.0 { rng.sample(normal) } else { 0.0 }).collect();
        let s = self.size;
        let (x0, y0, x1, y1) = self.boxes[c];
        let mut m = vec![0f32; s * s];
        for y in y0..y1 {
            for x in x0..x1 {
                m[y * s + x] = 1.0;
            }
        }
        let mask = m.repeat(self.frames);
        Ok(Item { frames, mask, ids: self.captions[c].clone(), emotion: self.emotions[c].clone() })
    }
}

/// Official `sampling_strategy='random'`: `k` distinct frame indices of `0..n`, sorted; a clip with fewer than
/// `k` frames repeats some (sorted draws with replacement).
pub fn random_frame_indices(n: usize, k: usize, rng: &mut StdRng) -> Vec<usize> {
    let mut pick: Vec<usize> = if n >= k {
        rand::seq::index::sample(rng, n, k).into_vec()
    } else {
        (0..k).map(|_| rng.random_range(0..n.max(1))).collect()
    };
    pick.sort_unstable();
    pick
}

/// `(seed, epoch, order, position of each sample)`.
type OrderCache = (u64, usize, Arc<Vec<usize>>, Arc<Vec<usize>>);

/// The open stream and the cached order of the last epoch asked for.
#[derive(Default)]
struct StreamState {
    order: Option<OrderCache>,
    stream: Option<stream::ShardStream>,
}

/// Prepared WebDataset shards (`emoclip prepare`), streamed: shards read sequentially in a per-epoch seeded
/// order through a seeded shuffle buffer ([`stream`]), bytes bounded by buffer + prefetch; per sample, random
/// frames without replacement (sorted), a random `size`-px crop per frame with the same crop on its subject
/// mask, ImageNet normalisation, ForceEot tokens. JPEGs are decoded in the rayon pool. A corrupt sample (bad
/// tar member, JSON or JPEG) is reported ([`ShardDataset::skipped`], a warning) and left out of its batch.
pub struct ShardDataset {
    index: Arc<ShardIndex>,
    tok: ClipTokenizer,
    frames: usize,
    size: usize,
    context: usize,
    opts: StreamOptions,
    state: Mutex<StreamState>,
    residency: Arc<stream::Residency>,
    skipped: Mutex<Vec<String>>,
}

impl ShardDataset {
    /// Indexes the shards of `spec` (tar headers only) with the default [`StreamOptions`].
    pub fn open(spec: &Path, frames: usize, size: usize, context: usize) -> Result<Self> {
        Self::open_with(spec, frames, size, context, StreamOptions::default())
    }

    pub fn open_with(spec: &Path, frames: usize, size: usize, context: usize, opts: StreamOptions) -> Result<Self> {
        let index = ShardIndex::scan(&shard_paths(spec)?)?;
        for p in &index.problems {
            tracing::warn!("{p}");
        }
        if index.is_empty() {
            return Err(Error::config(spec, "the shards hold no sample"));
        }
        Ok(Self {
            skipped: Mutex::new(index.problems.clone()),
            index: Arc::new(index),
            tok: ClipTokenizer::new()?,
            frames,
            size,
            context,
            opts,
            state: Mutex::new(StreamState::default()),
            residency: Arc::new(stream::Residency::default()),
        })
    }

    /// Samples left out so far (corrupt shard tails found while indexing, corrupt samples met while reading).
    pub fn skipped(&self) -> Vec<String> {
        self.skipped.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Sample bytes in memory now and at most so far (bounded by buffer + prefetch + the batch being decoded).
    pub fn residency(&self) -> &stream::Residency {
        &self.residency
    }

    pub fn options(&self) -> StreamOptions {
        self.opts
    }

    /// Samples per shard, in sorted shard order.
    pub fn counts(&self) -> Vec<usize> {
        self.index.counts()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StreamState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The epoch order and its inverse (position of each sample), cached for the last (seed, epoch).
    fn orders(&self, st: &mut StreamState, seed: u64, epoch: usize) -> (Arc<Vec<usize>>, Arc<Vec<usize>>) {
        if let Some((s, e, o, p)) = &st.order {
            if *s == seed && *e == epoch {
                return (o.clone(), p.clone());
            }
        }
        let order = stream::stream_order(&self.index.counts(), self.opts.buffer, seed, epoch);
        let mut pos = vec![0usize; order.len()];
        for (p, &g) in order.iter().enumerate() {
            pos[g] = p;
        }
        let (o, p) = (Arc::new(order), Arc::new(pos));
        st.order = Some((seed, epoch, o.clone(), p.clone()));
        (o, p)
    }

    fn skip(&self, msg: String) {
        tracing::warn!("skipping a corrupt training sample: {msg}");
        if let Ok(mut s) = self.skipped.lock() {
            s.push(msg);
        }
    }

    /// Decodes one sample's members into an item (randomness from `rng`).
    fn decode(&self, path: &Path, files: &[(String, Vec<u8>)], rng: &mut StdRng) -> Result<Item> {
        let json =
            files.iter().find(|(n, _)| n == "json").ok_or_else(|| Error::media(path, "sample has no json member"))?;
        let meta: SampleMeta =
            serde_json::from_slice(&json.1).map_err(|e| Error::media(path, format!("bad sample json: {e}")))?;
        let mut fr: Vec<&(String, Vec<u8>)> =
            files.iter().filter(|(n, _)| n.starts_with("frame") && n.ends_with(".jpg")).collect();
        fr.sort_by(|a, b| a.0.cmp(&b.0));
        if fr.is_empty() {
            return Err(Error::media(path, "sample has no frameNNN.jpg member"));
        }
        let ids = self
            .tok
            .tokenize(&[meta.text.as_str()], self.context, Truncation::ForceEot)?
            .into_iter()
            .next()
            .unwrap_or_default();
        let n = fr.len();
        let pick = random_frame_indices(n, self.frames, rng);
        let s = self.size;
        let norm = Normalization::IMAGENET;
        let mut frames = Vec::with_capacity(self.frames * 3 * s * s);
        let mut mask = Vec::with_capacity(self.frames * s * s);
        for &fi in &pick {
            let img = image::load_from_memory(&fr[fi].1)
                .map_err(|e| Error::media(path, format!("{}: {e}", fr[fi].0)))?
                .to_rgb8();
            let (w, h) = img.dimensions();
            if (w as usize) < s || (h as usize) < s {
                return Err(Error::media(path, format!("{} is {w}x{h}, smaller than the {s}px crop", fr[fi].0)));
            }
            let boxes: Vec<PersonBox> = meta
                .boxes
                .get(fi)
                .map(|v| v.iter().map(|b| PersonBox::new(b[0], b[1], b[2], b[3], Some(b[4]))).collect())
                .unwrap_or_default();
            let full = resized_mask(meta.frame_size[0], meta.frame_size[1], w, h, &boxes);
            let ox = rng.random_range(0..=(w as usize - s));
            let oy = rng.random_range(0..=(h as usize - s));
            for c in 0..3 {
                for y in 0..s {
                    for x in 0..s {
                        frames.push(norm.apply(c, img.get_pixel((ox + x) as u32, (oy + y) as u32)[c]));
                    }
                }
            }
            for y in 0..s {
                for x in 0..s {
                    mask.push(full[(oy + y) * w as usize + ox + x] as f32);
                }
            }
        }
        Ok(Item { frames, mask, ids, emotion: meta.emotion_logits.clone() })
    }

    /// Decodes `(index, bytes)` in parallel; corrupt samples are reported and left out.
    fn decode_all(&self, raws: Vec<(usize, Result<stream::RawSample>)>, seed: u64, epoch: usize) -> Result<Vec<Item>> {
        let n = raws.len();
        let items: Vec<std::result::Result<Item, String>> = raws
            .into_par_iter()
            .map(|(g, raw)| {
                let r = raw.and_then(|r| self.decode(&r.path, &r.files, &mut item_rng(seed, epoch, g)));
                r.map_err(|e| format!("sample {g}: {e}"))
            })
            .collect();
        let mut out = Vec::with_capacity(n);
        for it in items {
            match it {
                Ok(i) => out.push(i),
                Err(m) => self.skip(m),
            }
        }
        if out.is_empty() && n > 0 {
            return Err(Error::Msg(format!("all {n} samples of the batch are corrupt; see the warnings above")));
        }
        Ok(out)
    }
}

impl Dataset for ShardDataset {
    fn len(&self) -> usize {
        self.index.len()
    }

    /// Random access (evaluation, tests): opens the sample's shard and seeks to it.
    fn get(&self, index: usize, rng: &mut StdRng) -> Result<Item> {
        let (path, files) = self.index.read_index(index)?;
        self.decode(&path, &files, rng)
    }

    fn epoch_order(&self, seed: u64, epoch: usize) -> Arc<Vec<usize>> {
        let mut st = self.lock();
        self.orders(&mut st, seed, epoch).0
    }

    /// Indices that follow the epoch order (e.g. the next batch, or a rank's strided share of it) come from the
    /// running stream, restarted at the first one if needed (resume); any other set is read by random access.
    fn get_many(&self, indices: &[usize], seed: u64, epoch: usize) -> Result<Vec<Item>> {
        let mut st = self.lock();
        let (order, pos_of) = self.orders(&mut st, seed, epoch);
        let pos: Option<Vec<usize>> = indices.iter().map(|&g| pos_of.get(g).copied()).collect();
        let streamable = pos.as_ref().is_some_and(|p| p.windows(2).all(|w| w[0] < w[1]));
        let Some(pos) = pos.filter(|_| streamable && !indices.is_empty()) else {
            drop(st);
            let raws = indices
                .iter()
                .map(|&g| {
                    let raw = self
                        .index
                        .read_index(g)
                        .map(|(path, files)| stream::RawSample::new(path, files, &self.residency));
                    (g, raw)
                })
                .collect();
            return self.decode_all(raws, seed, epoch);
        };
        let restart = match &st.stream {
            Some(s) => s.seed != seed || s.epoch != epoch || s.next_pos > pos[0],
            None => true,
        };
        if restart {
            st.stream = None; // stops the old producer first
            st.stream = Some(stream::ShardStream::start(
                self.index.clone(),
                order,
                self.opts.buffer,
                self.opts.prefetch,
                seed,
                epoch,
                pos[0],
                self.residency.clone(),
            )?);
        }
        let Some(stream) = st.stream.as_mut() else {
            return Err(Error::Msg("internal: no shard stream".into()));
        };
        let mut raws = Vec::with_capacity(pos.len());
        for (&want, &g) in pos.iter().zip(indices) {
            loop {
                let Some((p, got, raw)) = stream.next_sample() else {
                    return Err(Error::Msg(format!(
                        "internal: the shard stream ended before position {want} (sample {g})"
                    )));
                };
                if p == want {
                    if got != g {
                        return Err(Error::Msg(format!(
                            "internal: stream position {p} holds sample {got}, expected {g}"
                        )));
                    }
                    raws.push((g, raw));
                    break;
                }
                if p > want {
                    return Err(Error::Msg(format!("internal: the shard stream skipped position {want}")));
                }
            }
        }
        drop(st);
        self.decode_all(raws, seed, epoch)
    }
}
