//! The analysis outputs of `emoclip::analyze` from synthetic rows: the self-contained `report.html` (every subject
//! present, nothing loaded from outside, text escaped), and the per-video output directory (timeline, embeddings,
//! boxes reusable as `--boxes`, tracks, `.done` written last).
//!
//! Set `EMOCLIP_REPORT_OUT=/path/report.html` to also write the rendered report there (to look at it in a browser).
use std::collections::BTreeMap;
use std::io::Cursor;

use emoclip::analyze::outputs::{self, EmbeddingIndex};
use emoclip::analyze::report::{render, ReportInput, Thumbnail};
use emoclip::analyze::timeline::{mean_box, ScoreKind, ScoreSource, Subject, Timeline, TimelineRow};
use emoclip::analyze::track::{TrackLog, TrackedBox};
use emoclip::media::{parse_boxes, PersonBox};
use image::{Rgb, RgbImage};

const LABELS: [&str; 7] = ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"];

fn softmax(v: &[f64]) -> Vec<f64> {
    let m = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = v.iter().map(|x| (x - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|x| x / s).collect()
}

/// A person's box at time t (walking across a 768x576 frame).
fn person_box(id: u32, t: f64) -> [f32; 4] {
    let x = match id {
        1 => 60.0 + 9.0 * t,
        2 => 640.0 - 7.0 * t,
        _ => 300.0 + 40.0 * (t / 9.0).sin(),
    } as f32;
    let y = 150.0 + 30.0 * id as f32;
    [x, y, x + 70.0, y + 190.0]
}

/// Scene + 3 persons over 60 s of 4 s / 2 s windows; person 3 appears only from 20 s to 44 s, person 2 leaves at 50 s.
fn synthetic_timeline() -> (Timeline, f64) {
    let duration = 60.0;
    let mut tl = Timeline::new(
        "street <cam 1> & co",
        vec![
            ScoreSource {
                name: "basic".into(),
                labels: LABELS.iter().map(|s| s.to_string()).collect(),
                kind: ScoreKind::Exclusive,
            },
            ScoreSource {
                name: "bold/vad".into(),
                labels: vec!["valence".into(), "arousal".into()],
                kind: ScoreKind::Values,
            },
        ],
    );
    for w in 0..29 {
        let (t0, t1) = (w as f64 * 2.0, w as f64 * 2.0 + 4.0);
        let c = (t0 + t1) / 2.0;
        let mut subjects = vec![Subject::Scene, Subject::Person(1)];
        if c < 50.0 {
            subjects.push(Subject::Person(2));
        }
        if (20.0..44.0).contains(&c) {
            subjects.push(Subject::Person(3));
        }
        for s in subjects {
            let k = match s {
                Subject::Scene => 0.0,
                Subject::Person(i) => i as f64,
            };
            // smooth, subject-specific emotion curves
            let logits: Vec<f64> = (0..7)
                .map(|j| {
                    let phase = j as f64 * 0.9 + k * 1.7;
                    1.2 * (c / 9.0 + phase).sin()
                        + if j == 4 { 0.8 } else { 0.0 }
                        + if j == (k as usize + 2) % 7 { 0.9 } else { 0.0 }
                })
                .collect();
            let boxes: Vec<[f32; 4]> = match s {
                Subject::Scene => vec![],
                Subject::Person(i) => (0..8).map(|f| person_box(i, t0 + f as f64 * 0.5 + 0.25)).collect(),
            };
            tl.push(TimelineRow {
                window: w,
                t_start: t0,
                t_end: t1,
                label: None,
                subject: s,
                mean_box: mean_box(&boxes),
                frames_with_box: boxes.len(),
                flags: vec![],
                scores: vec![softmax(&logits), vec![0.3 * (c / 7.0).sin(), 0.5 + 0.2 * (c / 5.0).cos()]],
            })
            .unwrap();
        }
    }
    (tl, duration)
}

/// A small synthetic "frame" as JPEG: sky/ground gradient with a figure per box.
fn thumb(t: f64, boxes: &[(Option<u32>, [f32; 4])]) -> Vec<u8> {
    let (w, h) = (192u32, 144u32);
    let s = w as f32 / 768.0;
    let mut img = RgbImage::from_fn(w, h, |_, y| {
        if y < h * 3 / 5 {
            Rgb([150 + (y / 3) as u8, 170 + (y / 4) as u8, 200])
        } else {
            Rgb([110, 105 + ((t as u32 * 3) % 20) as u8, 95])
        }
    });
    for (_, b) in boxes {
        let (x1, y1, x2, y2) = ((b[0] * s) as u32, (b[1] * s) as u32, (b[2] * s) as u32, (b[3] * s) as u32);
        for y in y1..y2.min(h) {
            for x in x1..x2.min(w) {
                img.put_pixel(x, y, Rgb([60, 60, 75]));
            }
        }
    }
    let mut out = Cursor::new(vec![]);
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

fn report_input(tl: &Timeline, duration: f64) -> ReportInput<'_> {
    let thumbnails = (0..6)
        .map(|k| {
            let t = 3.0 + k as f64 * 10.0;
            let mut boxes: Vec<(Option<u32>, [f32; 4])> = vec![(Some(1), person_box(1, t))];
            if t < 50.0 {
                boxes.push((Some(2), person_box(2, t)));
            }
            if (20.0..44.0).contains(&t) {
                boxes.push((Some(3), person_box(3, t)));
            }
            if k == 2 {
                boxes.push((None, [700.0, 40.0, 740.0, 120.0])); // an untracked detection
            }
            Thumbnail {
                time: t,
                window: (t / 2.0) as usize,
                jpeg: thumb(t, &boxes),
                frame_width: 768,
                frame_height: 576,
                boxes,
            }
        })
        .collect();
    ReportInput {
        timeline: tl,
        duration,
        settings: vec![
            ("windows".into(), "4 s, stride 2 s, 8 frames (centres)".into()),
            ("prompts".into(), "basic (4 templates)".into()),
            ("heads".into(), "bold/vad".into()),
            ("detector".into(), "yolov8n.onnx (conf 0.25, IoU 0.45)".into()),
        ],
        notes: vec!["frames 812–840 (27.1–28.0 s) could not be decoded and were skipped".into()],
        thumbnails,
        lines_per_chart: 4,
    }
}

#[test]
fn report_holds_every_subject_and_is_self_contained() {
    let (tl, duration) = synthetic_timeline();
    let input = report_input(&tl, duration);
    let html = render(&input);
    if let Ok(p) = std::env::var("EMOCLIP_REPORT_OUT") {
        std::fs::write(&p, &html).unwrap();
    }
    for s in ["scene", "person-1", "person-2", "person-3"] {
        assert!(html.contains(&format!(r#"<section class="card subject" id="{s}">"#)), "no timeline for {s}");
        assert!(html.contains(&format!(r#"<tr id="sum-{s}">"#)), "no summary row for {s}");
    }
    assert_eq!(tl.subjects().len(), 4);
    // one chart per subject, one thumbnail per frame given, each with its image inline
    assert_eq!(html.matches(r#"<svg class="chart""#).count(), 4);
    assert_eq!(html.matches(r#"<figure class="thumb">"#).count(), 6);
    assert_eq!(html.matches("data:image/jpeg;base64,").count(), 6);
    assert_eq!(html.matches("<svg").count(), html.matches("</svg>").count());
    // nothing fetched from outside
    for bad in ["http://", "https://", "<script", "<link", "src=\""] {
        assert!(!html.contains(bad), "report contains {bad}");
    }
    // text is escaped; settings and notes shown
    assert!(html.contains("street &lt;cam 1&gt; &amp; co") && !html.contains("<cam 1>"));
    assert!(html.contains("yolov8n.onnx") && html.contains("could not be decoded"));
    // person 3 appears in the windows centred at 20 s … 42 s: its chart starts and ends there
    let sec = &html[html.find(r#"id="person-3""#).unwrap()..];
    let sec = &sec[..sec.find("</section>").unwrap()];
    assert!(sec.contains("0:18–0:22") && sec.contains("0:40–0:44"), "person-3's first and last windows");
    assert!(!sec.contains("0:16–0:20") && !sec.contains("0:42–0:46"));
}

#[test]
fn output_directory_is_complete_and_reusable() {
    let (tl, duration) = synthetic_timeline();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("street");
    outputs::begin(&out).unwrap();
    assert!(!outputs::is_done(&out));

    // detections of two analysed frames, one degenerate box (clipped to nothing), one empty frame
    let mut dets: BTreeMap<usize, Vec<PersonBox>> = BTreeMap::new();
    dets.insert(
        6,
        vec![PersonBox::new(10.0, 20.0, 80.0, 210.0, Some(0.91)), PersonBox::new(767.0, 0.0, 767.0, 50.0, Some(0.4))],
    );
    dets.insert(18, vec![]);
    let mut log = TrackLog::default();
    log.frames
        .insert(6, vec![TrackedBox { id: 1, bbox: [10.0, 20.0, 80.0, 210.0], conf: Some(0.91), detection: Some(0) }]);
    log.frames.insert(18, vec![TrackedBox { id: 1, bbox: [30.0, 20.0, 100.0, 210.0], conf: None, detection: None }]);
    log.times.insert(6, 0.25);
    log.times.insert(18, 0.75);
    outputs::write_boxes(&out, (768, 576), &dets, &log).unwrap();
    let boxes =
        parse_boxes(&std::fs::read_to_string(out.join("boxes.json")).unwrap(), &out.join("boxes.json")).unwrap();
    assert_eq!(boxes.frame_size(), Some((768, 576)));
    assert_eq!(boxes.boxes_for_frame(6).len(), 1, "the zero-width box is left out");
    assert!(boxes.boxes_for_frame(18).is_empty());
    let tracks: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("tracks.json")).unwrap()).unwrap();
    assert_eq!(tracks["tracks"][0]["id"], 1);
    assert_eq!(tracks["tracks"][0]["boxes"][1]["conf"], serde_json::Value::Null);
    assert_eq!(tracks["frames"]["18"], 0.75);

    outputs::write_timeline(&out, &tl).unwrap();
    let index: Vec<EmbeddingIndex> = tl
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| EmbeddingIndex {
            row: i,
            window: r.window,
            subject: r.subject,
            t_start: r.t_start,
            t_end: r.t_end,
            frames: vec![],
        })
        .collect();
    let rows: Vec<Vec<f32>> = (0..index.len()).map(|i| vec![i as f32, 0.5, -1.0]).collect();
    outputs::write_embeddings(&out, &index, &rows).unwrap();
    assert!(outputs::write_embeddings(&out, &index[1..], &rows).is_err());
    outputs::write_report(&out, &render(&report_input(&tl, duration))).unwrap();
    outputs::finish(&out, &serde_json::json!({"video": "street", "rows": tl.rows.len()})).unwrap();
    assert!(outputs::is_done(&out));

    let jsonl = std::fs::read_to_string(out.join("timeline.jsonl")).unwrap();
    assert_eq!(jsonl.lines().count(), tl.rows.len());
    let csv = std::fs::read_to_string(out.join("timeline.csv")).unwrap();
    assert_eq!(csv.lines().count(), tl.rows.len() + 1);
    assert!(csv.lines().next().unwrap().ends_with("basic:surprise,bold/vad:valence,bold/vad:arousal"));
    let npy = std::fs::read(out.join("embeddings.npy")).unwrap();
    assert!(npy.starts_with(b"\x93NUMPY"));
    let header = String::from_utf8_lossy(&npy[10..128]);
    assert!(header.contains(&format!("'shape': ({}, 3)", tl.rows.len())), "{header}");
    let idx = std::fs::read_to_string(out.join("embeddings.jsonl")).unwrap();
    let second: serde_json::Value = serde_json::from_str(idx.lines().nth(1).unwrap()).unwrap();
    assert_eq!(second["subject"], "person-1");
    // nothing but the outputs (no temporary files left)
    let mut names: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            ".done",
            "boxes.json",
            "embeddings.jsonl",
            "embeddings.npy",
            "report.html",
            "timeline.csv",
            "timeline.jsonl",
            "tracks.json"
        ]
    );
    // rewriting starts by removing the marker
    outputs::begin(&out).unwrap();
    assert!(!outputs::is_done(&out));
}
