//! `prepare` on the committed clip: captions → emotion scores → filters → one WebDataset shard + index.
use crate::common;
use candle_core::Device;
use emoclip::prep::filters::FilterConfig;
use emoclip::prep::pipeline::{Boxes, PrepareConfig, Preparer, SampleMeta};
use emoclip::shards::read_shard;
use emoclip::text_emotion::EmotionClassifier;

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
    assert_eq!(emoclip::prep::pipeline::find_captions(&video, None).as_deref(), Some(caps.as_path()));
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
    let page = emoclip::prep::report::write_report(&cands, &labels, 0.05, &out.join("report")).unwrap();
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
