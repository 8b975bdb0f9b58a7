//! `prepare` on the committed clip: captions → emotion scores → filters → one WebDataset shard + index.
use crate::common;
use candle_core::Device;
use emoclip::prep::claim::{claim, ClaimOutcome};
use emoclip::prep::filters::FilterConfig;
use emoclip::prep::pipeline::{Boxes, PrepareConfig, Preparer};
use emoclip::prep::settings::{BoxSource, ModelIdentity, PrepareSettings};
use emoclip::prep::videos::check_unique_ids;
use emoclip::shards::read_shard;
use emoclip::shards::SampleMeta;
use emoclip::text_emotion::EmotionClassifier;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

const SRT: &str = "1\n00:00:00,100 --> 00:00:01,000\nHi.\n\n2\n00:00:01,000 --> 00:00:03,600\nI can't believe you came all this way!\n\n3\n00:00:03,600 --> 00:00:03,900\n[Music]\n";

fn setup() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("clip.mp4");
    std::fs::copy(common::fixture("media/clip_vtest40.mp4"), &video).unwrap();
    let caps = dir.path().join("clip.srt");
    std::fs::write(&caps, SRT).unwrap();
    (dir, video, caps)
}

#[test]
fn prepare_writes_a_shard_and_an_index_and_resumes() {
    let (dir, video, caps) = setup();
    let clf = EmotionClassifier::from_dir(&common::fixture("text_emotion"), &Device::Cpu).unwrap();
    // The tiny random classifier is never confident: accept any neutral score here.
    let cfg = PrepareConfig {
        filters: FilterConfig { neutral_max: 1.0, ..FilterConfig::default() },
        ..PrepareConfig::default()
    };
    let out = dir.path().join("out");
    let p = Preparer { cfg, classifier: &clf, boxes: Boxes::None, punctuation: None, out: out.clone() };
    assert_eq!(emoclip::prep::videos::find_captions(&video, None).as_deref(), Some(caps.as_path()));
    let r = p.process(&video, &caps).unwrap();
    // "Hi." is too short (< 2 s, < 3 chars is fine but duration fails), the long line is kept.
    assert_eq!((r.candidates, r.kept), (2, 1), "{r:?}");
    assert!(p.is_done(&video));
    let samples = read_shard(&p.shard_path("clip")).unwrap();
    assert_eq!(samples.len(), 1);
    let s = &samples[0];
    assert_eq!(s.key, "clip_00001");
    let meta: SampleMeta = serde_json::from_slice(&s.files.iter().find(|f| f.0 == "json").unwrap().1).unwrap();
    // Span 1.0–3.6 s at 8 fps: frames ceil(8.0)=8 … floor(28.8)=28 → 21 frames, each a 256-short-side JPEG.
    assert_eq!(meta.frame_times.len(), 21);
    assert_eq!(s.files.len(), 22);
    let jpg = &s.files[0];
    assert_eq!(jpg.0, "frame000.jpg");
    let img = image::load_from_memory(&jpg.1).unwrap();
    assert_eq!((img.width(), img.height()), (341, 256));
    assert_eq!(meta.emotion_logits.len(), 7);
    assert_eq!(meta.frame_size, [384, 288]);
    let index = std::fs::read_to_string(p.index_path("clip")).unwrap();
    assert_eq!(index.lines().count(), 2);
    // The exploration report renders every figure and counts what the index holds.
    let cands = emoclip::prep::report::load_index(&out).unwrap();
    let labels: Vec<String> = serde_json::from_str(&std::fs::read_to_string(out.join("labels.json")).unwrap()).unwrap();
    assert_eq!(labels.len(), 7);
    let videos = emoclip::prep::report::index_video_ids(&out).unwrap();
    let input = emoclip::prep::report::ReportInput {
        candidates: &cands,
        labels: &labels,
        videos: &videos,
        filters: Some(&FilterConfig { neutral_max: 1.0, ..FilterConfig::default() }),
        mark: None,
    };
    let page = emoclip::prep::report::write_report(&input, &out.join("report")).unwrap();
    let md = std::fs::read_to_string(page).unwrap();
    assert!(md.contains("1 videos, 2 caption spans, **1 kept**"), "{md}");
    for f in ["neutral_histogram.svg", "kept_vs_threshold.svg", "emotion_distribution.svg", "top_words.svg"] {
        let svg = std::fs::read_to_string(out.join("report").join(f)).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("<rect"), "{f}");
    }
    // No temporary files left behind.
    for d in ["shards", "index"] {
        for e in std::fs::read_dir(out.join(d)).unwrap() {
            let n = e.unwrap().file_name().to_string_lossy().to_string();
            assert!(!n.starts_with('.'), "leftover {n}");
        }
    }
}

#[test]
fn a_bad_video_leaves_nothing_behind() {
    let (dir, video, caps) = setup();
    let bytes = std::fs::read(&video).unwrap();
    std::fs::write(&video, &bytes[..bytes.len() / 4]).unwrap();
    let clf = EmotionClassifier::from_dir(&common::fixture("text_emotion"), &Device::Cpu).unwrap();
    let cfg = PrepareConfig {
        filters: FilterConfig { neutral_max: 1.0, ..FilterConfig::default() },
        ..PrepareConfig::default()
    };
    let out = dir.path().join("out");
    let p = Preparer { cfg, classifier: &clf, boxes: Boxes::None, punctuation: None, out: out.clone() };
    let err = p.process(&video, &caps).unwrap_err().to_string();
    assert!(err.contains("clip.mp4"), "{err}");
    assert!(!p.is_done(&video));
    assert!(!p.shard_path("clip").exists());
}

fn classifier() -> EmotionClassifier {
    EmotionClassifier::from_dir(&common::fixture("text_emotion"), &Device::Cpu).unwrap()
}

/// The tiny random classifier is never confident: accept any neutral score.
fn any_neutral() -> PrepareConfig {
    PrepareConfig { filters: FilterConfig { neutral_max: 1.0, ..FilterConfig::default() }, ..PrepareConfig::default() }
}

fn settings(cfg: &PrepareConfig) -> PrepareSettings {
    PrepareSettings {
        fps: cfg.fps,
        short_side: cfg.short_side,
        jpeg_quality: cfg.jpeg_quality,
        min_video_seconds: cfg.min_video_seconds,
        filters: cfg.filters.clone(),
        sentences: cfg.sentences.clone(),
        emotion_model: ModelIdentity::of(&common::fixture("text_emotion")).unwrap(),
        punctuation_model: None,
        boxes: BoxSource::None,
    }
}

/// Issue 11.2.1: same stem in two folders, or stems differing only by '.' vs '_', gave one id: one shard,
/// wrong counts, and a rerun took the lost video as done. Such inputs are refused up front, naming both.
#[test]
fn colliding_video_ids_are_refused_naming_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let touch = |rel: &str| -> PathBuf {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, b"x").unwrap();
        p
    };
    let (a, b) = (touch("one/clip.mp4"), touch("two/clip.mp4"));
    let err = check_unique_ids(vec![a.clone(), b.clone()]).unwrap_err().to_string();
    assert!(err.contains(&*a.display().to_string()) && err.contains(&*b.display().to_string()), "{err}");
    assert!(err.contains("\"clip\"") && err.contains("rename"), "{err}");
    let (dot, underscore) = (touch("a.b.avi"), touch("a_b.avi"));
    let err = check_unique_ids(vec![dot.clone(), underscore.clone()]).unwrap_err().to_string();
    assert!(err.contains("a.b.avi") && err.contains("a_b.avi") && err.contains("\"a_b\""), "{err}");
    let mkv = touch("one/clip.mkv");
    assert!(check_unique_ids(vec![a.clone(), mkv]).is_err(), "clip.mp4 and clip.mkv share captions and id");
    // Distinct ids pass in order; the same file given twice (directly and via another path) counts once.
    let again = dir.path().join("one/../one/clip.mp4");
    let ok = check_unique_ids(vec![a.clone(), dot.clone(), again]).unwrap();
    assert_eq!(ok, vec![a, dot]);
}

/// Issue 11.2.2 (prepare): a --boxes-dir that does not exist is an error before any work; videos without a
/// box file are counted; boxes entirely outside the frame are counted and named.
#[test]
fn a_missing_boxes_dir_is_an_error_and_outside_boxes_are_counted() {
    use emoclip::prep::box_files::{check_boxes_dir, outside_frame, videos_without_boxes};
    let (dir, video, caps) = setup();
    let missing = dir.path().join("no-such-boxes");
    let err = check_boxes_dir(&missing, "--boxes-dir").unwrap_err().to_string();
    assert!(err.contains("no-such-boxes") && err.contains("--boxes-dir does not exist"), "{err}");
    let err = check_boxes_dir(&video, "--boxes-dir").unwrap_err().to_string();
    assert!(err.contains("must be a directory"), "{err}");
    let boxes = dir.path().join("boxes");
    std::fs::create_dir_all(&boxes).unwrap();
    check_boxes_dir(&boxes, "--boxes-dir").unwrap();
    let other = dir.path().join("other.mp4");
    let vids = vec![video.clone(), other.clone()];
    assert_eq!(videos_without_boxes(&vids, &boxes), vec![&video, &other]);
    // One box inside the 384×288 frame, one entirely right of it.
    std::fs::write(boxes.join("clip.boxes.json"), r#"{"boxes": [[10, 10, 100, 200, 0.9], [400, 10, 500, 200, 0.9]]}"#)
        .unwrap();
    assert_eq!(videos_without_boxes(&vids, &boxes), vec![&other]);
    let b = emoclip::media::PersonBox::new(400.0, 10.0, 500.0, 200.0, None);
    assert!(
        outside_frame(&b, 384, 288)
            && !outside_frame(&emoclip::media::PersonBox::new(-5.0, 0.0, 1.0, 1.0, None), 384, 288)
    );
    let clf = classifier();
    let p = Preparer {
        cfg: any_neutral(),
        classifier: &clf,
        boxes: Boxes::Dir(&boxes),
        punctuation: None,
        out: dir.path().join("out"),
    };
    let r = p.process(&video, &caps).unwrap();
    assert_eq!(r.kept, 1);
    assert_eq!(r.boxes_outside, 21, "one outside box on each of the 21 stored frames");
    let e = r.first_box_outside.unwrap();
    assert!(e.contains("clip.boxes.json") && e.contains("384×288"), "{e}");
}

/// Issue 11.2.9: the settings are recorded; a rerun with other filters (or another model) is refused,
/// naming what differs; an output of a run that recorded nothing is refused too.
#[test]
fn a_rerun_with_other_settings_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let first = settings(&any_neutral());
    first.record_or_check(&out).unwrap();
    assert_eq!(PrepareSettings::read(&out).unwrap().as_ref(), Some(&first));
    first.record_or_check(&out).unwrap(); // same settings: fine (a rerun, another job-array task)
    let mut other = first.clone();
    other.filters.neutral_max = 0.05;
    other.sentences.regroup = emoclip::prep::Regroup::AllMarks;
    other.sentences.max_pause = 0.7;
    let err = other.record_or_check(&out).unwrap_err().to_string();
    assert!(err.contains("prepare.json") && err.contains("filters.neutral_max: 1.0 → 0.05"), "{err}");
    assert!(err.contains("sentences.max_pause: 1.5 → 0.7") && err.contains("--out"), "{err}");
    assert!(err.contains(r#"sentences.regroup: "official" → "all-marks""#), "{err}");
    let mut model = first.clone();
    model.emotion_model.fingerprint.push('x');
    let err = model.record_or_check(&out).unwrap_err().to_string();
    assert!(err.contains("emotion_model.fingerprint"), "{err}");
    // The same model at another path is the same model.
    let mut moved = first.clone();
    moved.emotion_model.path = "/elsewhere".into();
    moved.record_or_check(&out).unwrap();
    // Results without a record (an older emoclip): refused.
    let old = dir.path().join("old");
    std::fs::create_dir_all(old.join("index")).unwrap();
    std::fs::write(old.join("index/v.jsonl"), "").unwrap();
    let err = first.record_or_check(&old).unwrap_err().to_string();
    assert!(err.contains("did not record its settings"), "{err}");
}

/// Issue 11.2.9: `report` labels its counts with the filters `prepare` used (read back from prepare.json),
/// not with its own default, and lists each example text once.
#[test]
fn report_uses_the_recorded_filters_and_lists_each_example_once() {
    let (dir, video, caps) = setup();
    let out = dir.path().join("out");
    let cfg = any_neutral();
    settings(&cfg).record_or_check(&out).unwrap();
    let clf = classifier();
    let p = Preparer { cfg, classifier: &clf, boxes: Boxes::None, punctuation: None, out: out.clone() };
    p.process(&video, &caps).unwrap();
    let page = emoclip::prep::report::report_from_dir(&out, &out.join("report"), None).unwrap();
    let md = std::fs::read_to_string(page).unwrap();
    assert!(md.contains("neutral > 1: 0,"), "{md}");
    assert!(!md.contains("0.05"), "{md}");
    assert!(md.contains("duration outside 2 s < d < 10 s: 1"), "{md}");
    for text in ["| Hi. |", "| I can't believe you came all this way! |"] {
        assert_eq!(md.lines().filter(|l| l.starts_with(text)).count(), 1, "{text} once:\n{md}");
    }
    // A threshold asked for is marked on the plot and said apart from the one used.
    let page = emoclip::prep::report::report_from_dir(&out, &out.join("report2"), Some(0.2)).unwrap();
    let md = std::fs::read_to_string(page).unwrap();
    assert!(md.contains("marks neutral ≤ 0.2") && md.contains("neutral > 1: 0,"), "{md}");
}

/// Issue 11.2.13: a caption track that gives no span inside the duration/text filters is said so by
/// `prepare` (the video report) and by `report`.
#[test]
fn a_caption_track_with_no_span_inside_the_filters_is_reported() {
    let (dir, video, _) = setup();
    let caps = dir.path().join("short.srt");
    std::fs::write(&caps, "1\n00:00:00,100 --> 00:00:01,000\nHi there.\n\n2\n00:00:01,500 --> 00:00:02,000\nBye.\n")
        .unwrap();
    let out = dir.path().join("out");
    let clf = classifier();
    let cfg = any_neutral();
    let p = Preparer { cfg: cfg.clone(), classifier: &clf, boxes: Boxes::None, punctuation: None, out: out.clone() };
    let r = p.process(&video, &caps).unwrap();
    assert_eq!((r.candidates, r.kept, r.in_span_filters), (2, 0, 0));
    let note = r.no_span_note(&cfg.filters).expect("a note");
    assert!(note.contains("no span inside the filters") && note.contains("2 caption span(s) of 0.5–0.9 s"), "{note}");
    let page = emoclip::prep::report::report_from_dir(&out, &out.join("report"), None).unwrap();
    let md = std::fs::read_to_string(page).unwrap();
    assert!(md.contains("1 video(s) whose captions produced no span inside the duration and text filters"), "{md}");
    assert!(md.contains("scores): clip."), "{md}");
}

/// Issue 11.2.12: two runs on one output share the work (a live claim makes the other skip the video) and a
/// dead run's claim is taken over; claiming also clears the dead run's temporary shard files.
#[test]
fn claims_share_the_work_and_dead_claims_are_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let ClaimOutcome::Claimed(c) = claim(out, "clip").unwrap() else { panic!("first claim") };
    match claim(out, "clip").unwrap() {
        ClaimOutcome::HeldBy(h) => assert!(h.contains(&format!("pid {}", std::process::id())), "{h}"),
        other => panic!("a held claim was claimed again: {other:?}"),
    }
    drop(c);
    assert!(!out.join("claims/clip.claim").exists(), "released claims are removed");
    // A claim file whose holder died (no lock on it): taken over.
    std::fs::write(out.join("claims/clip.claim"), "pid 4194303 on elsewhere\n").unwrap();
    let ClaimOutcome::Claimed(c) = claim(out, "clip").unwrap() else { panic!("stale claim not taken over") };
    drop(c);
    // Another live process holds it (flock(1) in its own process group), then dies.
    let path = out.join("claims/clip.claim");
    let mut child = std::process::Command::new("flock")
        .args(["-o", &path.display().to_string(), "-c", "echo locked; exec sleep 600"])
        .stdout(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("flock(1) (util-linux)");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    assert_eq!(line.trim(), "locked");
    let held = matches!(claim(out, "clip").unwrap(), ClaimOutcome::HeldBy(_));
    let pgid = child.id().to_string();
    let _ = std::process::Command::new("kill").args(["-KILL", "--", &format!("-{pgid}")]).status();
    let _ = child.wait();
    assert!(held, "a claim held by a live process must not be taken");
    assert!(matches!(claim(out, "clip").unwrap(), ClaimOutcome::Claimed(_)), "a dead process's claim is taken over");
    // Preparer::claim removes what a killed run left for this video.
    let clf = classifier();
    let p =
        Preparer { cfg: any_neutral(), classifier: &clf, boxes: Boxes::None, punctuation: None, out: out.join("o") };
    std::fs::create_dir_all(out.join("o/shards")).unwrap();
    for f in [".clip-000000.tar.tmp", "clip-000000.tar", ".other-000000.tar.tmp"] {
        std::fs::write(out.join("o/shards").join(f), b"partial").unwrap();
    }
    let got = p.claim(Path::new("v/clip.mp4")).unwrap();
    assert!(matches!(got, ClaimOutcome::Claimed(_)));
    let left: Vec<String> = std::fs::read_dir(out.join("o/shards"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(left, [".other-000000.tar.tmp"], "another video's temporary file belongs to another run");
}

/// Issue 11.2.12: `configs/train_vitb32.toml`'s shard glob matches what `prepare --out data/` writes
/// (the README's command), read with the trainer's own config parser and glob.
#[test]
fn train_config_shard_glob_matches_what_prepare_writes() {
    let cfg = emoclip::train::TrainConfig::from_file(&common::repo_root().join("configs/train_vitb32.toml")).unwrap();
    let pattern = cfg.data.shards.clone().expect("data.shards");
    assert!(pattern.is_relative(), "{}", pattern.display());
    let (dir, video, caps) = setup();
    let clf = classifier();
    let out = dir.path().join("data");
    let p = Preparer { cfg: any_neutral(), classifier: &clf, boxes: Boxes::None, punctuation: None, out };
    p.process(&video, &caps).unwrap();
    let found = emoclip::shards::shard_paths(&dir.path().join(&pattern)).unwrap();
    assert_eq!(found, vec![p.shard_path("clip")], "{} must match prepare's shards", pattern.display());
}
