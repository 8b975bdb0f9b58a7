//! The pipelined embedding loop (embed/batch.rs `pipelined`, `Embedder::embed_each`): preparing the next batch
//! overlaps encoding the current one, the queue is bounded, outputs and events keep item order, and a progress
//! callback returning `Break` stops the run with `Error::Interrupted`. No wall-clock asserts: the overlap is
//! shown by event order, with a blocking wait whose time-out only turns a missing overlap into a failure.
use crate::common;

use emoclip::embed::batch::{pipelined, AHEAD};
use emoclip::embed::{EmbedEvent, FeatureCache};
use emoclip::emotionclip::SubjectMode;
use emoclip::encoder::{load_encoder, preprocessor_for, Embedder, MediaInput, ModelKind};
use emoclip::{media, Error};

use candle_core::{DType, Device};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, RecvTimeoutError};
use std::sync::Mutex;
use std::time::Duration;

/// How long a consumer waits for the producer to start the next batch before the test fails (generous: a
/// loaded CI machine; a correct pipeline signals at once, a sequential loop never does).
const PATIENCE: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Ev {
    PrepStart(usize),
    EncodeStart(usize),
    EncodeEnd(usize),
}

#[test]
fn preparing_the_next_batch_overlaps_encoding_the_current_one() {
    let (batch, n) = (3, 12);
    let indices: Vec<usize> = (0..n).collect();
    let log = Mutex::new(Vec::new());
    let prepared = AtomicUsize::new(0);
    // The first item of batch 1 signals when its preparation starts.
    let (tx, rx) = sync_channel::<()>(1);
    let mut batches = Vec::new();
    let r = pipelined(
        &indices,
        batch,
        |i| {
            log.lock().unwrap().push(Ev::PrepStart(i));
            prepared.fetch_add(1, Ordering::SeqCst);
            if i == batch {
                tx.send(()).unwrap();
            }
            if i == 4 {
                return Err(Error::Msg(format!("item {i} is unreadable")));
            }
            Ok(i * 10)
        },
        |items: Vec<(usize, emoclip::Result<usize>)>| {
            let k = batches.len();
            // The producer never runs more than AHEAD + 1 batches ahead of the one handed over (bounded memory).
            let started = prepared.load(Ordering::SeqCst);
            assert!(started <= (k + AHEAD + 2) * batch, "batch {k}: {started} items prepared (queue not bounded)");
            log.lock().unwrap().push(Ev::EncodeStart(k));
            if k == 0 {
                // "Encoding" batch 0 lasts until batch 1's preparation has started.
                match rx.recv_timeout(PATIENCE) {
                    Ok(()) => {}
                    Err(RecvTimeoutError::Timeout) => panic!("batch 1 was not prepared while batch 0 was encoded"),
                    Err(e) => panic!("producer gone: {e}"),
                }
            }
            log.lock().unwrap().push(Ev::EncodeEnd(k));
            batches.push(items.into_iter().map(|(i, r)| (i, r.map_err(|e| e.to_string()))).collect::<Vec<_>>());
            ControlFlow::Continue(())
        },
    );
    r.unwrap();
    let log = log.into_inner().unwrap();
    let pos = |e: Ev| log.iter().position(|x| *x == e).unwrap_or_else(|| panic!("{e:?} missing from {log:?}"));
    assert!(pos(Ev::PrepStart(batch)) < pos(Ev::EncodeEnd(0)), "no overlap: {log:?}");
    // Batches arrive in order, items in index order, failures in place, nothing lost or repeated.
    assert_eq!(batches.len(), n / batch);
    for (k, b) in batches.iter().enumerate() {
        let want: Vec<(usize, Result<usize, String>)> = (k * batch..(k + 1) * batch)
            .map(|i| (i, if i == 4 { Err(format!("item {i} is unreadable")) } else { Ok(i * 10) }))
            .collect();
        assert_eq!(b, &want, "batch {k}");
    }
    for k in 1..batches.len() {
        assert!(pos(Ev::EncodeEnd(k - 1)) < pos(Ev::EncodeStart(k)), "batches consumed out of order: {log:?}");
    }
}

#[test]
fn break_from_the_consumer_stops_the_producer_with_interrupted() {
    let (batch, n) = (2, 400);
    let indices: Vec<usize> = (0..n).collect();
    let prepared = AtomicUsize::new(0);
    let mut seen = 0;
    let r = pipelined(
        &indices,
        batch,
        |i| {
            prepared.fetch_add(1, Ordering::SeqCst);
            Ok(i)
        },
        |_items: Vec<(usize, emoclip::Result<usize>)>| {
            seen += 1;
            if seen == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
    );
    match r {
        Err(Error::Interrupted { done, total, .. }) => assert_eq!((done, total), (batch, n)),
        other => panic!("expected Interrupted, got {other:?}"),
    }
    assert_eq!(seen, 2, "no batch is consumed after Break");
    // The producer stopped: at most the batches the bounded queue allows past the one that broke.
    let p = prepared.load(Ordering::SeqCst);
    assert!(p <= (2 + AHEAD + 2) * batch, "{p} of {n} items prepared after Break");
}

fn micro_embedder() -> Embedder {
    let cfg = common::micro_config(SubjectMode::Sap);
    let enc = load_encoder("random", Some(&cfg), ModelKind::EmotionClip, DType::F32, &Device::Cpu).unwrap();
    let pre = preprocessor_for(enc.image_size(), media::IMAGENET);
    Embedder::new(enc, pre, Device::Cpu, DType::F32, 8).unwrap()
}

#[test]
fn embed_each_prepares_ahead_keeps_order_and_stops_on_break() {
    let Some(image) = common::sample_media("person.jpg") else {
        eprintln!("media/person.jpg missing; skipped");
        return;
    };
    let emb = micro_embedder();
    let n = 7;
    let indices: Vec<usize> = (0..n).collect();
    let missing = std::env::temp_dir().join("emoclip-no-such-file-for-pipeline-test.jpg");
    // Item 1 fails; item 3 (batch 1) signals when its preparation starts.
    let (tx, rx) = sync_channel::<()>(1);
    let input = |i: usize| -> emoclip::Result<MediaInput> {
        if i == 3 {
            tx.send(()).unwrap();
        }
        Ok(MediaInput::new(if i == 1 { missing.clone() } else { image.clone() }, None))
    };
    let mut events = Vec::new();
    let out = emb
        .embed_each(&indices, 2, input, &mut |ev| {
            match &ev {
                EmbedEvent::Skipped(f) => {
                    // While batch 0 is being handled, batch 1 is prepared already.
                    rx.recv_timeout(PATIENCE).expect("batch 1 was not prepared while batch 0 was handled");
                    events.push(format!("skipped {}", f.index));
                }
                EmbedEvent::Embedded(rows) => {
                    events.push(format!("embedded {:?}", rows.iter().map(|r| r.0).collect::<Vec<_>>()))
                }
                EmbedEvent::Batch { items } => events.push(format!("batch {items}")),
                other => events.push(format!("{other:?}")),
            }
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(
        events,
        [
            "skipped 1",
            "embedded [0]",
            "batch 2",
            "embedded [2, 3]",
            "batch 2",
            "embedded [4, 5]",
            "batch 2",
            "embedded [6]",
            "batch 1"
        ]
    );
    assert_eq!(out.rows.iter().map(|r| r.0).collect::<Vec<_>>(), [0, 2, 3, 4, 5, 6]);
    assert_eq!(out.failures.iter().map(|f| f.index).collect::<Vec<_>>(), [1]);
    assert!(
        out.failures[0].message.contains("emoclip-no-such-file-for-pipeline-test.jpg"),
        "{}",
        out.failures[0].message
    );
    // Same input, same vector (up to the batch size's summation order), whichever batch it was in.
    for r in &out.rows {
        let d = r.1.iter().zip(&out.rows[0].1).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(d < 1e-5, "item {}: differs from item 0 by {d}", r.0);
    }

    // Break on the second batch's progress event: Interrupted, and a cache keeps what was embedded before.
    let dir = tempfile::tempdir().unwrap();
    let cache = FeatureCache::new(dir.path()).unwrap();
    let keys: Vec<String> = (0..n).map(|i| format!("item {i}")).collect();
    let mut slot = Some(emb);
    let mut batches = 0;
    let r = cache.embed::<Error>(
        &keys,
        &mut slot,
        || unreachable!("embedder given"),
        2,
        |_| Ok(MediaInput::new(image.clone(), None)),
        &mut |ev| {
            if let EmbedEvent::Batch { .. } = ev {
                batches += 1;
                if batches == 2 {
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        },
    );
    match r {
        Err(Error::Interrupted { done, total, .. }) => assert_eq!((done, total), (2, n)),
        other => panic!("expected Interrupted, got {:?}", other.map(|c| c.embedded)),
    }
    let stored: Vec<bool> = keys.iter().map(|k| cache.get(k).is_some()).collect();
    assert_eq!(stored, [true, true, true, true, false, false, false], "the two batches done are cached");
    // A second run embeds only the rest.
    let mut plan = None;
    let c = cache
        .embed::<Error>(
            &keys,
            &mut slot,
            || unreachable!(),
            2,
            |_| Ok(MediaInput::new(image.clone(), None)),
            &mut |ev| {
                if let EmbedEvent::Plan { cached, todo } = ev {
                    plan = Some((cached, todo));
                }
                ControlFlow::Continue(())
            },
        )
        .unwrap();
    assert_eq!(plan, Some((4, 3)));
    assert_eq!((c.hits, c.embedded), (4, 3));
}

/// A caller inside its own one-thread pool (the Python package runs each call so): the consumer is the pool's
/// only worker, and the producer's parallel preparation runs in that pool. It must finish, not deadlock.
#[test]
fn pipelined_in_a_one_thread_pool_runs_to_the_end() {
    let pool = std::sync::Arc::new(rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    let p = pool.clone();
    std::thread::spawn(move || {
        let r = p.install(|| {
            let mut seen = vec![];
            emoclip::embed::batch::pipelined_in(
                Some(&p),
                &(0..9).collect::<Vec<_>>(),
                2,
                |i| Ok(i * 10),
                |batch| {
                    seen.extend(batch.into_iter().map(|(i, r)| (i, r.unwrap())));
                    std::ops::ControlFlow::Continue(())
                },
            )
            .map(|()| seen)
        });
        let _ = tx.send(r);
    });
    let seen = rx.recv_timeout(std::time::Duration::from_secs(30)).expect("deadlock: no result in 30 s").unwrap();
    assert_eq!(seen, (0..9).map(|i| (i, i * 10)).collect::<Vec<_>>());
}

/// `embed_each_in`: the model in one pool, decoding and preprocessing in another (the model-bound set-up of
/// `bench --embed`). Every item is prepared on the preparation pool's thread, and the vectors equal
/// `embed_each`'s bit for bit.
#[test]
fn embed_each_in_prepares_in_the_given_pool_with_the_same_vectors() {
    let Some(image) = common::sample_media("person.jpg") else {
        eprintln!("media/person.jpg missing; skipped");
        return;
    };
    let emb = micro_embedder();
    let indices: Vec<usize> = (0..5).collect();
    let model_pool = rayon::ThreadPoolBuilder::new().num_threads(1).thread_name(|_| "model".into()).build().unwrap();
    let prep_pool = rayon::ThreadPoolBuilder::new().num_threads(1).thread_name(|_| "prep".into()).build().unwrap();
    let threads = std::sync::Mutex::new(Vec::new());
    let input = |_: usize| -> emoclip::Result<MediaInput> {
        threads.lock().unwrap().push(std::thread::current().name().unwrap_or("").to_string());
        Ok(MediaInput::new(image.clone(), None))
    };
    let split = model_pool
        .install(|| emb.embed_each_in(Some(&prep_pool), &indices, 2, input, &mut |_| ControlFlow::Continue(())))
        .unwrap();
    assert_eq!(threads.into_inner().unwrap(), ["prep"; 5]);
    let plain = emb
        .embed_each(&indices, 2, |_| Ok(MediaInput::new(image.clone(), None)), &mut |_| ControlFlow::Continue(()))
        .unwrap();
    assert_eq!(split.rows, plain.rows);
    assert!(split.failures.is_empty());
}

/// `pipelined` prepares on threads of its own, never in rayon's global pool, where the consumer's parallel
/// work (the model's products) runs: while every item of the next batch holds its preparation thread, the
/// consumer's parallel job still runs. Preparing in the global pool (as before) starved it: the job waited for
/// workers held by preparations that waited for the job, until their time-out failed the items.
#[test]
fn preparation_never_holds_the_workers_the_consumer_needs() {
    let batch = rayon::current_num_threads().max(2);
    let indices: Vec<usize> = (0..2 * batch).collect();
    let held = AtomicUsize::new(0);
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let rx = Mutex::new(rx);
    let threads = Mutex::new(Vec::new());
    let mut seen = Vec::new();
    pipelined(
        &indices,
        batch,
        |i| {
            threads.lock().unwrap().push(std::thread::current().name().unwrap_or("").to_string());
            if i >= batch {
                // The second batch's items hold their threads until the consumer's parallel job has run.
                held.fetch_add(1, Ordering::SeqCst);
                rx.lock().unwrap().recv_timeout(PATIENCE).map_err(|_| Error::Msg("starved".into()))?;
            }
            Ok(i)
        },
        |items: Vec<(usize, emoclip::Result<usize>)>| {
            if items[0].0 == 0 {
                let start = std::time::Instant::now();
                while held.load(Ordering::SeqCst) < batch && start.elapsed() < PATIENCE {
                    std::thread::sleep(Duration::from_millis(5));
                }
                // Work on the global pool, as the model's products, with more tasks than workers.
                let s: usize = {
                    use rayon::prelude::*;
                    (0..64usize).into_par_iter().map(|x| x * 2).sum()
                };
                assert_eq!(s, 63 * 64);
                for _ in 0..batch {
                    tx.send(()).unwrap();
                }
            }
            seen.extend(items.into_iter().map(|(i, r)| (i, r.map_err(|e| e.to_string()))));
            ControlFlow::Continue(())
        },
    )
    .unwrap();
    assert_eq!(seen, (0..2 * batch).map(|i| (i, Ok(i))).collect::<Vec<_>>());
    assert!(threads.into_inner().unwrap().iter().all(|t| t.starts_with("emoclip-prepare-")));
}
