//! The analysis tracker (`emoclip::analyze::track`) on synthetic scenes with seeded jitter: crossing people, occlusion gaps, a person leaving and another entering, parallel walkers, jittery and irregularly timed detections, false positives, weak detections.
//!
//! Frames come every ~0.5 s, as the frames of 8-frame windows over 4 s do; persons are ~50×120 px boxes
//! walking ~80 px/s (the scale of the people in `media/vtest.avi`), so consecutive boxes of a walker
//! overlap little or not at all.
use std::collections::{BTreeMap, BTreeSet};

use emoclip::analyze::track::{TrackLog, Tracker, TrackerConfig};
use emoclip::media::PersonBox;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

/// A ground-truth walker: box of size `w×h` with top-left `(x0, y0) + v·t`, visible while `visible(t)`.
struct Walker {
    x0: f32,
    y0: f32,
    vx: f32,
    vy: f32,
    w: f32,
    h: f32,
    visible: Box<dyn Fn(f64) -> bool>,
    /// Detection confidence at time t.
    conf: Box<dyn Fn(f64) -> f32>,
}

impl Walker {
    fn new(x0: f32, y0: f32, vx: f32, vy: f32) -> Self {
        Self { x0, y0, vx, vy, w: 50.0, h: 120.0, visible: Box::new(|_| true), conf: Box::new(|_| 0.9) }
    }
    fn visible(mut self, f: impl Fn(f64) -> bool + 'static) -> Self {
        self.visible = Box::new(f);
        self
    }
    fn conf(mut self, f: impl Fn(f64) -> f32 + 'static) -> Self {
        self.conf = Box::new(f);
        self
    }
}

/// One frame: time, detections (shuffled), and the true walker of each detection (`None`: false positive).
struct Frame {
    time: f64,
    dets: Vec<PersonBox>,
    truth: Vec<Option<usize>>,
}

fn simulate(walkers: &[Walker], times: &[f64], jitter: f32, seed: u64) -> Vec<Frame> {
    let mut rng = StdRng::seed_from_u64(seed);
    let noise = Normal::new(0.0f32, jitter.max(1e-6)).unwrap();
    times
        .iter()
        .map(|&t| {
            let mut items: Vec<(PersonBox, Option<usize>)> = vec![];
            for (k, w) in walkers.iter().enumerate() {
                if !(w.visible)(t) {
                    continue;
                }
                let (x, y) = (w.x0 + w.vx * t as f32, w.y0 + w.vy * t as f32);
                let mut n = || if jitter > 0.0 { noise.sample(&mut rng) } else { 0.0 };
                let (x1, y1) = (x + n(), y + n());
                let (x2, y2) = (x + w.w + n(), y + w.h + n());
                items.push((PersonBox::new(x1, y1, x2, y2, Some((w.conf)(t))), Some(k)));
            }
            // detector output order carries no identity
            for i in (1..items.len()).rev() {
                items.swap(i, rng.random_range(0..=i));
            }
            Frame { time: t, dets: items.iter().map(|x| x.0).collect(), truth: items.iter().map(|x| x.1).collect() }
        })
        .collect()
}

fn run(frames: &[Frame], config: TrackerConfig) -> (TrackLog, Tracker) {
    let mut tracker = Tracker::new(config);
    let log = TrackLog::run(&mut tracker, frames.iter().enumerate().map(|(i, f)| (i, f.time, f.dets.as_slice())));
    (log, tracker)
}

/// (true walker, id) of every detection given an id.
type Labelled = Vec<(usize, u32)>;
/// (frame, true walker) of every detection left without an id.
type Unlabelled = Vec<(usize, usize)>;

/// For every detection assigned an id: (true walker, id) pairs, and (frame, walker) pairs without an id.
fn assignments(frames: &[Frame], log: &TrackLog) -> (Labelled, Unlabelled) {
    let mut pairs = vec![];
    let mut missing = vec![];
    for (i, f) in frames.iter().enumerate() {
        let boxes = log.frames.get(&i).cloned().unwrap_or_default();
        for (d, truth) in f.truth.iter().enumerate() {
            let id = boxes.iter().find(|b| b.detection == Some(d)).map(|b| b.id);
            match (truth, id) {
                (Some(w), Some(id)) => pairs.push((*w, id)),
                (Some(w), None) => missing.push((i, *w)),
                (None, _) => {}
            }
        }
    }
    (pairs, missing)
}

/// Ids per true walker.
fn ids_of(pairs: &[(usize, u32)]) -> BTreeMap<usize, BTreeSet<u32>> {
    let mut m: BTreeMap<usize, BTreeSet<u32>> = BTreeMap::new();
    for &(w, id) in pairs {
        m.entry(w).or_default().insert(id);
    }
    m
}

fn every(step: f64, n: usize) -> Vec<f64> {
    (0..n).map(|i| i as f64 * step).collect()
}

#[test]
fn two_people_crossing_keep_their_ids() {
    // A walks right, B walks left nearer the camera (lower in the frame, larger); their boxes overlap most
    // around t = 2.5 s, where A, behind B, is detected only weakly (partly occluded)
    let mut b = Walker::new(500.0, 235.0, -80.0, 0.0);
    (b.w, b.h) = (58.0, 140.0);
    let walkers =
        vec![Walker::new(100.0, 200.0, 80.0, 0.0).conf(|t| if (2.0..=3.0).contains(&t) { 0.35 } else { 0.9 }), b];
    for seed in 0..30 {
        let frames = simulate(&walkers, &every(0.5, 12), 3.0, seed);
        let (log, tracker) = run(&frames, TrackerConfig::default());
        let (pairs, missing) = assignments(&frames, &log);
        let ids = ids_of(&pairs);
        assert_eq!(ids[&0].len(), 1, "seed {seed}: walker A got ids {:?}", ids[&0]);
        assert_eq!(ids[&1].len(), 1, "seed {seed}: walker B got ids {:?}", ids[&1]);
        assert_ne!(ids[&0], ids[&1], "seed {seed}");
        assert_eq!(tracker.ids_given(), 2, "seed {seed}");
        assert!(missing.is_empty(), "seed {seed}: detections without an id: {missing:?}");
    }
}

#[test]
fn occlusion_shorter_than_max_age_keeps_the_id() {
    // invisible for 1.5 s (three frames), max_age 2 s
    let w = vec![Walker::new(50.0, 100.0, 60.0, 10.0).visible(|t| !(2.2..3.8).contains(&t))];
    let frames = simulate(&w, &every(0.5, 14), 2.0, 7);
    let (log, tracker) = run(&frames, TrackerConfig::default());
    let (pairs, missing) = assignments(&frames, &log);
    assert_eq!(ids_of(&pairs)[&0].len(), 1);
    assert_eq!(tracker.ids_given(), 1);
    assert!(missing.is_empty(), "{missing:?}");
    // during the gap the person is reported at the predicted box, moving on
    let gap: Vec<_> = (5..=7).map(|f| log.frames[&f].clone()).collect();
    for (k, boxes) in gap.iter().enumerate() {
        assert_eq!(boxes.len(), 1);
        assert_eq!(boxes[0].detection, None);
        let truth_x = 50.0 + 60.0 * frames[5 + k].time as f32;
        assert!((boxes[0].bbox[0] - truth_x).abs() < 15.0, "predicted {:?} vs x {truth_x}", boxes[0].bbox);
    }
}

#[test]
fn occlusion_longer_than_max_age_gives_a_new_id() {
    let w = vec![Walker::new(50.0, 100.0, 60.0, 0.0).visible(|t| !(2.2..5.3).contains(&t))];
    let frames = simulate(&w, &every(0.5, 16), 2.0, 8);
    let (log, tracker) = run(&frames, TrackerConfig::default());
    let (pairs, _) = assignments(&frames, &log);
    assert_eq!(ids_of(&pairs)[&0], BTreeSet::from([1, 2]));
    assert_eq!(tracker.ids_given(), 2);
}

#[test]
fn a_person_leaving_and_another_entering_get_different_ids() {
    // A leaves the frame at t = 4 s; B enters at the same place where A was last seen at t = 7 s
    let walkers = vec![
        Walker::new(300.0, 150.0, 70.0, 0.0).visible(|t| t < 4.0),
        Walker::new(580.0 - 70.0 * 7.0, 150.0, -70.0, 0.0).visible(|t| t >= 7.0),
    ];
    let frames = simulate(&walkers, &every(0.5, 24), 2.0, 3);
    let (log, tracker) = run(&frames, TrackerConfig::default());
    let (pairs, missing) = assignments(&frames, &log);
    let ids = ids_of(&pairs);
    assert_eq!(ids[&0], BTreeSet::from([1]));
    assert_eq!(ids[&1], BTreeSet::from([2]));
    assert_eq!(tracker.ids_given(), 2);
    assert!(missing.is_empty(), "{missing:?}");
    // A is gone from the log once max_age has passed
    let last_a = log.frames.iter().filter(|(_, b)| b.iter().any(|x| x.id == 1)).map(|(f, _)| *f).max().unwrap();
    assert!(frames[last_a].time <= 3.5 + 2.0 + 1e-9, "A reported until t = {}", frames[last_a].time);
}

#[test]
fn parallel_walkers_never_switch() {
    // three people walking side by side, boxes 50 px wide with centres 48 px apart (they touch and overlap)
    let walkers: Vec<Walker> =
        (0..3).map(|k| Walker::new(100.0 + 48.0 * k as f32, 200.0 + 6.0 * k as f32, 70.0, 8.0)).collect();
    for seed in 0..30 {
        let frames = simulate(&walkers, &every(0.5, 30), 3.0, 100 + seed);
        let (log, tracker) = run(&frames, TrackerConfig::default());
        let (pairs, missing) = assignments(&frames, &log);
        let ids = ids_of(&pairs);
        for k in 0..3 {
            assert_eq!(ids[&k].len(), 1, "seed {seed}: walker {k} got ids {:?}", ids[&k]);
        }
        assert_eq!(tracker.ids_given(), 3, "seed {seed}");
        assert!(missing.is_empty(), "seed {seed}: {missing:?}");
    }
}

#[test]
fn jittery_irregular_detections_keep_one_id() {
    // irregular frame times (0.2–0.9 s apart, plus a 1.5 s gap between two caption windows), box noise
    // of 6 px, confidence varying between 0.55 and 0.95
    let mut rng = StdRng::seed_from_u64(42);
    let mut times = vec![0.0];
    while times.len() < 40 {
        let dt = if times.len() == 20 { 1.5 } else { rng.random_range(0.2..0.9) };
        times.push(times.last().unwrap() + dt);
    }
    let conf: Vec<f32> = (0..200).map(|_| rng.random_range(0.55..0.95)).collect();
    let w = vec![Walker::new(20.0, 300.0, 45.0, -4.0).conf(move |t| conf[(t * 7.0) as usize % 200])];
    let frames = simulate(&w, &times, 6.0, 5);
    let (log, tracker) = run(&frames, TrackerConfig::default());
    let (pairs, missing) = assignments(&frames, &log);
    assert_eq!(ids_of(&pairs)[&0].len(), 1);
    assert_eq!(tracker.ids_given(), 1);
    assert!(missing.is_empty(), "{missing:?}");
}

#[test]
fn a_single_false_detection_gets_no_id() {
    let w = vec![Walker::new(100.0, 100.0, 60.0, 0.0)];
    let mut frames = simulate(&w, &every(0.5, 10), 2.0, 1);
    frames[4].dets.push(PersonBox::new(600.0, 400.0, 640.0, 480.0, Some(0.9)));
    frames[4].truth.push(None);
    let (log, tracker) = run(&frames, TrackerConfig::default());
    assert_eq!(tracker.ids_given(), 1);
    assert_eq!(log.ids(), vec![1]);
    assert!(log.frames[&4].iter().all(|b| b.detection != Some(frames[4].dets.len() - 1)));
}

#[test]
fn weak_detections_continue_a_track_but_do_not_start_one() {
    // confidence 0.3 (below high_conf 0.5) for four frames: ByteTrack's second stage keeps matching them
    let w = vec![Walker::new(100.0, 100.0, 30.0, 0.0).conf(|t| if (2.0..4.0).contains(&t) { 0.3 } else { 0.9 })];
    let frames = simulate(&w, &every(0.5, 12), 2.0, 2);
    let (log, _) = run(&frames, TrackerConfig::default());
    for f in 4..8 {
        assert_eq!(log.frames[&f].len(), 1);
        assert_eq!(log.frames[&f][0].detection, Some(0), "frame {f} should be a matched weak detection");
        assert_eq!(log.frames[&f][0].conf, Some(0.3));
    }
    // a person seen only weakly never gets an id
    let weak = vec![Walker::new(100.0, 100.0, 30.0, 0.0).conf(|_| 0.3)];
    let frames = simulate(&weak, &every(0.5, 12), 2.0, 2);
    let (log, tracker) = run(&frames, TrackerConfig::default());
    assert_eq!(tracker.ids_given(), 0);
    assert!(log.ids().is_empty());
}

#[test]
fn confirmation_backfills_the_first_frame() {
    let w = vec![Walker::new(100.0, 100.0, 60.0, 0.0)];
    let frames = simulate(&w, &every(0.5, 3), 0.0, 0);
    let mut tracker = Tracker::new(TrackerConfig::default());
    let first = tracker.update(0, 0.0, &frames[0].dets);
    assert!(first.matched.is_empty() && first.backfill.is_empty(), "tentative after one hit");
    let second = tracker.update(1, 0.5, &frames[1].dets);
    assert_eq!(second.matched.len(), 1);
    assert_eq!(second.backfill.len(), 1);
    assert_eq!(second.backfill[0].0, 0);
    assert_eq!(second.backfill[0].1.id, 1);
    let log = TrackLog::run(
        &mut Tracker::new(TrackerConfig::default()),
        frames.iter().enumerate().map(|(i, f)| (i, f.time, f.dets.as_slice())),
    );
    assert_eq!(log.detected_frames()[&1], vec![0, 1, 2]);
}
