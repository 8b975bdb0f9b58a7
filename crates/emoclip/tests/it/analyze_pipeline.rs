//! The analysis pipeline end to end in the library (tiny random-weight EmotionCLIP, real sample video): a
//! window's scene and person embeddings equal the plain embedding path (`Embedder::prepare` + `encode`, what
//! `emoclip embed` runs) on the same 8 frames extracted by the ffmpeg CLI to a frame directory; frames are
//! converted only where used; a stop from the event callback is a clean `Interrupted`.
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::Command;

use candle_core::{DType, Device};
use emoclip::analyze::timeline::Subject;
use emoclip::analyze::window::WindowSource;
use emoclip::analyze::{AnalyzeEvent, AnalyzeSettings, Analyzer, PeopleSource};
use emoclip::encoder::{load_encoder, preprocessor_for, Embedder, MediaInput, ModelKind};
use emoclip::media::Normalization;

use crate::common;

fn embedder() -> Embedder {
    let cfg = emoclip::weights::load::read_config(&common::fixture("analyze/tiny_config.json")).unwrap();
    let enc = load_encoder("random@3", Some(&cfg), ModelKind::EmotionClip, DType::F32, &Device::Cpu).unwrap();
    let pre = preprocessor_for(enc.image_size(), Normalization::IMAGENET);
    Embedder::new(enc, pre, Device::Cpu, DType::F32, 8).unwrap()
}

fn analyzer(people: PeopleSource, batch: usize) -> Analyzer {
    let cfg = emoclip::weights::load::read_config(&common::fixture("analyze/tiny_config.json")).unwrap();
    let id = emoclip::encoder::encoder_id("random@3", Some(&cfg), ModelKind::EmotionClip, Normalization::IMAGENET, 8)
        .unwrap();
    let settings = AnalyzeSettings {
        windows: WindowSource::Fixed { window: 4.0, stride: 2.0 },
        people,
        batch,
        ..AnalyzeSettings::default()
    };
    Analyzer::new(embedder(), id, settings).unwrap()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let n = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (n(a) * n(b))
}

/// Frames `numbers` of `video` as the ffmpeg CLI writes them (`-fps_mode passthrough`), copied into a frame
/// directory as `f_<number>.png` (frame number = the analysis frame number).
fn frame_dir(video: &Path, numbers: &[usize], dir: &Path) -> PathBuf {
    let all = dir.join("all");
    std::fs::create_dir_all(&all).unwrap();
    let last = numbers.iter().max().unwrap() + 1;
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-i"])
        .arg(video)
        .args(["-fps_mode", "passthrough", "-frames:v", &last.to_string()])
        .arg(all.join("%05d.png"))
        .status()
        .unwrap();
    assert!(st.success());
    let clip = dir.join("clip");
    std::fs::create_dir_all(&clip).unwrap();
    for &n in numbers {
        std::fs::copy(all.join(format!("{:05}.png", n + 1)), clip.join(format!("f_{n:04}.png"))).unwrap();
    }
    clip
}

#[test]
fn window_embeddings_equal_the_embed_path_on_the_same_frames() {
    let Some(video) = common::sample_media("vtest.avi") else { return };
    if !common::have_ffmpeg_cli() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // two standing persons, the same boxes in every frame
    let boxes = tmp.path().join("b.json");
    std::fs::write(&boxes, r#"{"boxes": [[100, 150, 260, 500], [420, 120, 600, 560]]}"#).unwrap();
    let an = analyzer(PeopleSource::Boxes(boxes), 5);
    let mut events = vec![];
    let res = an
        .analyze_video(&video, &mut |e| {
            events.push(e);
            ControlFlow::Continue(())
        })
        .unwrap();
    assert!(matches!(events[0], AnalyzeEvent::Started { windows: 39, .. }), "{:?}", events[0]);
    assert_eq!(res.windows.len(), 39);
    // converted = used, and only a fifth of the frames (10 fps, 8 frames per 4 s window, half shared)
    let s = &res.stats;
    assert_eq!(s.frames_converted, s.frames_used, "{s:?}");
    assert!(s.frames_used < s.frames_decoded / 4, "{s:?}");
    assert!(s.max_frames_held <= 16, "frames held: {}", s.max_frames_held);
    // scene + 2 persons in every window (persons confirmed on the 2nd frame, earlier frames backfilled)
    assert_eq!(res.timeline.subjects(), vec![Subject::Scene, Subject::Person(1), Subject::Person(2)]);
    assert_eq!(res.timeline.rows.len(), 39 * 3);
    assert_eq!(res.embeddings.len(), res.timeline.rows.len());

    let w = 7;
    let frames = &res.window_frames[w];
    assert_eq!(frames.len(), 8);
    let clip = frame_dir(&video, frames, tmp.path());
    let emb = embedder();
    let row_of = |subject| res.index.iter().position(|i| i.window == w && i.subject == subject).unwrap();
    let person_box = |id| {
        let r = &res.timeline.rows[row_of(Subject::Person(id))];
        r.mean_box.unwrap()
    };
    for (subject, boxes) in [
        (Subject::Scene, r#"{"boxes": [[100, 150, 260, 500], [420, 120, 600, 560]]}"#.to_string()),
        (Subject::Person(1), format!(r#"{{"boxes": [{:?}]}}"#, person_box(1))),
        (Subject::Person(2), format!(r#"{{"boxes": [{:?}]}}"#, person_box(2))),
    ] {
        let b = emoclip::media::parse_boxes(&boxes, Path::new("b.json")).unwrap();
        let p = emb.prepare(&MediaInput::new(&clip, Some(b))).unwrap();
        let want = &emb.encode(&[p]).unwrap()[0];
        let got = &res.embeddings[row_of(subject)];
        let c = cosine(got, want);
        let max_diff = got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(c >= 0.99999, "{subject}: cosine {c}, max |diff| {max_diff}");
        eprintln!("{subject}: cosine {c:.9}, max |diff| {max_diff:e}");
    }
    // the persons differ from the scene: the masks matter
    assert!(cosine(&res.embeddings[row_of(Subject::Scene)], &res.embeddings[row_of(Subject::Person(1))]) < 0.9999);
}

#[test]
fn a_stop_from_the_callback_is_a_clean_interrupt() {
    let Some(video) = common::sample_media("vtest.avi") else { return };
    let an = analyzer(PeopleSource::None, 4);
    let mut windows = 0;
    let e = an
        .analyze_video(&video, &mut |e| {
            if let AnalyzeEvent::Window { .. } = e {
                windows += 1;
                if windows == 3 {
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        })
        .unwrap_err();
    assert!(matches!(e, emoclip::Error::Interrupted { .. }), "{e}");
    assert!(e.to_string().contains("after 3 of 39 windows"), "{e}");
}

#[test]
fn nobody_gives_scene_rows_with_an_empty_mask_flag() {
    let Some(video) = common::sample_media("vtest.avi") else { return };
    let mut an = analyzer(PeopleSource::None, 8);
    an.settings.windows = WindowSource::Spans(vec![emoclip::analyze::Span::new(10.0, 14.0, Some("one".into()))]);
    let res = an.analyze_video(&video, &mut |_| ControlFlow::Continue(())).unwrap();
    assert_eq!(res.timeline.rows.len(), 1);
    let r = &res.timeline.rows[0];
    assert_eq!((r.subject, r.t_start, r.t_end), (Subject::Scene, 10.0, 14.0));
    assert_eq!(r.flags, vec!["no-person".to_string()]);
    assert_eq!(res.stats.frames_used, 8);
    // decoding stopped after the window's last frame (14 s at 10 fps), not at the end of the 79.5 s video
    assert!(res.stats.frames_decoded < 150, "{:?}", res.stats);
}
