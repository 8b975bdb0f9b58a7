//! Streaming shard dataset (webdataset `shardshuffle` + `shuffle(bufsize)`): every sample once per epoch, a
//! seeded order that changes across epochs, bytes in memory bounded by buffer + prefetch, exact mid-epoch
//! restart, corrupt samples skipped and reported, and bit-identical `--resume` of a run on shards.
use candle_core::Device;
use emoclip::emotionclip::EmotionClipConfig;
use emoclip::shards::stream::{stream_order, ShuffleBuffer};
use emoclip::shards::{Sample, SampleMeta, ShardWriter, StreamOptions};
use emoclip::train::config::DataSection;
use emoclip::train::data::{item_rng, Dataset, Item, ShardDataset};
use emoclip::train::{TrainConfig, Trainer};
use rand::SeedableRng;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A JPEG frame: a white subject box on a background whose red level encodes (sample, frame).
fn frame(i: usize, f: usize) -> Vec<u8> {
    let img = image::RgbImage::from_fn(40, 36, |x, y| {
        if (8..30).contains(&x) && (6..26).contains(&y) {
            image::Rgb([255, 255, 255])
        } else {
            image::Rgb([((i * 7 + f * 3) % 200) as u8, 0, 0])
        }
    });
    let mut buf = std::io::Cursor::new(Vec::new());
    img.write_to(&mut buf, image::ImageFormat::Jpeg).unwrap();
    buf.into_inner()
}

/// Sample `i`: 9 frames, emotion logits `[i, 0, ...]` (its identity in the tests), caption naming it.
fn sample(i: usize) -> Sample {
    let mut files: Vec<(String, Vec<u8>)> = (0..9).map(|f| (format!("frame{f:03}.jpg"), frame(i, f))).collect();
    let meta = SampleMeta {
        video_id: format!("v{i}"),
        start: 0.0,
        end: 1.0,
        text: format!("clip {i} makes me happy"),
        emotion_labels: (0..7).map(|k| format!("e{k}")).collect(),
        emotion_logits: (0..7).map(|k| if k == 0 { i as f32 } else { 0.0 }).collect(),
        neutral: 0.0,
        fps: 8.0,
        frame_times: (0..9).map(|f| f as f64 / 8.0).collect(),
        boxes: vec![vec![[8.0, 6.0, 30.0, 26.0, 0.9]]; 9],
        frame_size: [40, 36],
    };
    files.push(("json".into(), serde_json::to_vec(&meta).unwrap()));
    Sample { key: format!("s{i:04}"), files }
}

/// `n` samples in shards of `per_shard` (the last one shorter).
fn write(dir: &Path, n: usize, per_shard: usize) {
    let mut w = ShardWriter::new(dir, "emo", per_shard, u64::MAX).unwrap();
    for i in 0..n {
        w.write(&sample(i)).unwrap();
    }
    w.finish().unwrap();
}

fn id(it: &Item) -> usize {
    it.emotion[0] as usize
}

fn open(dir: &Path, buffer: usize, prefetch: usize) -> ShardDataset {
    ShardDataset::open_with(dir, 8, 32, 77, StreamOptions { buffer, prefetch }).unwrap()
}

/// Reads an epoch batch by batch as the trainer does; returns the items in order.
fn epoch(ds: &ShardDataset, seed: u64, e: usize, b: usize, from_batch: usize) -> Vec<Item> {
    let order = ds.epoch_order(seed, e);
    let mut out = Vec::new();
    for p in from_batch..order.len() / b {
        let items = ds.get_many(&order[p * b..(p + 1) * b], seed, e).unwrap();
        assert_eq!(items.len(), b);
        out.extend(items);
    }
    out
}

#[test]
fn order_is_a_seeded_permutation_that_changes_across_epochs() {
    let counts = [5, 0, 7, 3, 9, 1];
    let n: usize = counts.iter().sum();
    let a = stream_order(&counts, 4, 11, 0);
    let mut sorted = a.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..n).collect::<Vec<_>>(), "not a permutation");
    assert_eq!(a, stream_order(&counts, 4, 11, 0), "not deterministic");
    assert_ne!(a, stream_order(&counts, 4, 11, 1), "same order in the next epoch");
    assert_ne!(a, stream_order(&counts, 4, 12, 0), "seed ignored");
    // Buffer 0: whole shards in a shuffled shard order, samples of a shard in file order.
    let plain = stream_order(&counts, 0, 11, 0);
    let base = [0, 5, 5, 12, 15, 24];
    let shard_of = |g: usize| (0..counts.len()).rev().find(|&s| counts[s] > 0 && base[s] <= g).unwrap();
    let mut k = 0;
    while k < n {
        let s = shard_of(plain[k]);
        assert_eq!(
            plain[k..k + counts[s]],
            (base[s]..base[s] + counts[s]).collect::<Vec<_>>()[..],
            "shard {s} not contiguous"
        );
        k += counts[s];
    }
    assert_ne!(plain, (0..n).collect::<Vec<_>>(), "shard order not shuffled");
    // With a buffer, samples of different shards mix.
    assert_ne!(a, plain);
    // The shuffle buffer never holds more than its capacity.
    let mut buf = ShuffleBuffer::new(3, rand::rngs::StdRng::seed_from_u64(0));
    let out: Vec<usize> = (0..10).filter_map(|i| buf.push(i)).collect();
    assert_eq!(out.len(), 7);
    assert_eq!(buf.drain().len(), 3);
}

#[test]
fn every_sample_once_per_epoch_bounded_memory_same_as_random_access() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 60, 7); // 9 shards: 8 × 7 + 4
    let ds = open(dir.path(), 5, 3);
    assert_eq!(ds.len(), 60);
    assert_eq!(ds.counts(), vec![7, 7, 7, 7, 7, 7, 7, 7, 4]);
    let b = 4;
    let e0 = epoch(&ds, 3, 0, b, 0);
    let ids0: Vec<usize> = e0.iter().map(id).collect();
    let mut sorted = ids0.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..60).collect::<Vec<_>>(), "epoch 0 does not serve every sample exactly once");
    // Residency: at most buffer (5) + channel (3) + one being read + one blocked in send + the batch (4).
    let peak = ds.residency().peak();
    assert!(peak > 0 && peak <= 5 + 3 + 2 + b, "{peak} samples were in memory at once");
    assert_eq!(ds.residency().now(), 0, "bytes of consumed samples were kept");
    // Streamed items equal random access with the same per-item seed (same sample, frames, crop).
    for (k, it) in e0.iter().enumerate().step_by(7) {
        let g = ds.epoch_order(3, 0)[k];
        let r = ds.get(g, &mut item_rng(3, 0, g)).unwrap();
        assert_eq!((id(it), &it.frames, &it.mask, &it.ids), (g, &r.frames, &r.mask, &r.ids));
    }
    // Same seed → same order and content (a fresh dataset); next epoch → another order.
    let again: Vec<usize> = epoch(&open(dir.path(), 5, 3), 3, 0, b, 0).iter().map(id).collect();
    assert_eq!(ids0, again);
    let ids1: Vec<usize> = epoch(&ds, 3, 1, b, 0).iter().map(id).collect();
    let mut s1 = ids1.clone();
    s1.sort_unstable();
    assert_eq!(s1, sorted);
    assert_ne!(ids0, ids1, "epochs 0 and 1 have the same order");
    assert!(ds.skipped().is_empty());
}

#[test]
fn restart_mid_epoch_gives_the_same_remaining_order() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 30, 4);
    let full = epoch(&open(dir.path(), 6, 2), 9, 2, 3, 0);
    // A fresh reader asked for batch 4 onwards (a resumed run) continues exactly.
    let ds = open(dir.path(), 6, 2);
    let rest = epoch(&ds, 9, 2, 3, 4);
    assert_eq!(rest.len(), full.len() - 12);
    for (a, b) in full[12..].iter().zip(&rest) {
        assert_eq!((id(a), &a.frames, &a.mask), (id(b), &b.frames, &b.mask));
    }
    // Going back in the same reader restarts the stream; a rank-strided subset streams too.
    let order = ds.epoch_order(9, 2);
    let again = ds.get_many(&order[0..3], 9, 2).unwrap();
    assert_eq!(again.iter().map(id).collect::<Vec<_>>(), full[..3].iter().map(id).collect::<Vec<_>>());
    let strided: Vec<usize> = order[6..18].iter().step_by(2).copied().collect();
    let got: Vec<usize> = ds.get_many(&strided, 9, 2).unwrap().iter().map(id).collect();
    assert_eq!(got, strided);
    // Indices out of epoch order (evaluation) are read by random access.
    let got: Vec<usize> = ds.get_many(&[5, 1, 20], 9, 2).unwrap().iter().map(id).collect();
    assert_eq!(got, vec![5, 1, 20]);
}

#[test]
fn corrupt_samples_are_reported_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = ShardWriter::new(dir.path(), "emo", 5, u64::MAX).unwrap();
    for i in 0..10 {
        let mut s = sample(i);
        if i == 3 {
            for f in s.files.iter_mut().filter(|(n, _)| n.ends_with(".jpg")) {
                f.1 = b"not a jpeg".to_vec();
            }
        }
        if i == 7 {
            s.files.last_mut().unwrap().1 = b"{broken json".to_vec();
        }
        w.write(&s).unwrap();
    }
    w.finish().unwrap();
    // A third shard whose tar stream breaks inside its second sample.
    let mut w = ShardWriter::new(dir.path(), "emz", 5, u64::MAX).unwrap();
    for i in 10..13 {
        w.write(&sample(i)).unwrap();
    }
    let tail = w.finish().unwrap().pop().unwrap();
    // Overwrite the header of the third member of the second sample with garbage (checksum mismatch).
    let at = {
        let mut ar = tar::Archive::new(std::fs::File::open(&tail).unwrap());
        let e = ar.entries().unwrap().nth(10 + 2).unwrap().unwrap();
        assert!(e.path().unwrap().to_string_lossy().starts_with("s0011."));
        e.raw_header_position() as usize
    };
    let mut bytes = std::fs::read(&tail).unwrap();
    bytes[at..at + 512].fill(0x41);
    std::fs::write(&tail, bytes).unwrap();

    let ds = open(dir.path(), 4, 2);
    let problems = ds.skipped();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("emz-000000.tar") && problems[0].contains("corrupt tar"), "{problems:?}");
    assert_eq!(ds.len(), 11, "10 good-tar samples + the first sample of the broken shard");
    let order = ds.epoch_order(0, 0);
    let items = ds.get_many(&order[..], 0, 0).unwrap();
    let mut ids: Vec<usize> = items.iter().map(id).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![0, 1, 2, 4, 5, 6, 8, 9, 10]);
    let skipped = ds.skipped();
    assert_eq!(skipped.len(), 3, "{skipped:?}");
    assert!(skipped.iter().any(|m| m.contains("emo-000000.tar") && m.contains(".jpg")), "{skipped:?}");
    assert!(skipped.iter().any(|m| m.contains("emo-000001.tar") && m.contains("json")), "{skipped:?}");
    // Random access reports the error instead of panicking.
    assert!(ds.get(3, &mut item_rng(0, 0, 3)).is_err());
}

#[test]
fn long_sample_keys_use_gnu_long_names_and_still_stream() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = ShardWriter::new(dir.path(), "emo", 10, u64::MAX).unwrap();
    for i in 0..4 {
        let mut s = sample(i);
        if i % 2 == 1 {
            s.key = format!("{}_{i}", "k".repeat(120)); // member names > 100 bytes: GNU long-name entries
        }
        w.write(&s).unwrap();
    }
    w.finish().unwrap();
    let ds = open(dir.path(), 2, 1);
    assert_eq!(ds.len(), 4);
    let order = ds.epoch_order(5, 0);
    let mut ids: Vec<usize> = ds.get_many(&order[..], 5, 0).unwrap().iter().map(id).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![0, 1, 2, 3]);
    assert_eq!(id(&ds.get(3, &mut item_rng(5, 0, 3)).unwrap()), 3);
    assert!(ds.skipped().is_empty(), "{:?}", ds.skipped());
    // Every member is read, the first one (whose long name precedes its header) included.
    let index = emoclip::shards::ShardIndex::scan(&emoclip::shards::shard_paths(dir.path()).unwrap()).unwrap();
    let (_, files) = index.read_index(1).unwrap();
    assert_eq!(files.len(), 10);
    assert_eq!(files[0].0, "frame000.jpg");
}

fn weights(t: &Trainer) -> HashMap<String, Vec<f32>> {
    let data = t.varmap().data().lock().unwrap();
    data.iter().map(|(k, v)| (k.clone(), v.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap())).collect()
}

#[test]
fn resume_on_streamed_shards_is_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("shards"), 12, 5);
    let mut mc = EmotionClipConfig::tiny();
    mc.backbone.text_cfg.vocab_size = 49408;
    mc.backbone.text_cfg.context_length = 77;
    let cj = dir.path().join("model.json");
    std::fs::write(&cj, mc.to_json()).unwrap();
    let cfg = |out: PathBuf| {
        let toml =
            std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs/train_tiny.toml"))
                .unwrap();
        let mut c = TrainConfig::from_toml_str(&toml, Path::new("configs/train_tiny.toml")).unwrap();
        c.data = DataSection { shards: Some(dir.path().join("shards")), synthetic: None };
        c.model.config = Some(cj.clone());
        c.batch_size = 3;
        c.max_steps = Some(6); // 4 steps per epoch: the interruption at step 2 is mid-epoch, the run crosses into epoch 1
        c.warmup_steps = 1;
        c.checkpoint_every = 0;
        c.out_dir = out;
        c
    };
    let mut a = Trainer::new(cfg(dir.path().join("a")), Device::Cpu, false).unwrap();
    let mut la = Vec::new();
    a.run(None, |m| la.push(m.loss)).unwrap();
    let wa = weights(&a);
    drop(a);
    let mut b = Trainer::new(cfg(dir.path().join("b")), Device::Cpu, false).unwrap();
    let mut lb = Vec::new();
    b.run(Some(2), |m| lb.push(m.loss)).unwrap();
    drop(b);
    let mut b = Trainer::new(cfg(dir.path().join("b")), Device::Cpu, true).unwrap();
    assert_eq!(b.step(), 2);
    b.run(None, |m| lb.push(m.loss)).unwrap();
    assert_eq!(la, lb, "per-step losses differ after resume");
    assert!(la.iter().all(|l| l.is_finite()));
    let wb = weights(&b);
    assert_eq!(wa.len(), wb.len());
    for (k, v) in &wa {
        assert_eq!(v, &wb[k], "{k} differs after resume");
    }
}
