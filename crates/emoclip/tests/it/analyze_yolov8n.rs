//! The YOLOv8n of the real architecture (random weights, `scripts/fixtures/gen_yolov8n.py`, ~12 MB, never
//! committed) loads in the project's ONNX Runtime, is read as the YOLOv8 layout and feeds the tracker.
//!
//! Looks for `$EMOCLIP_YOLOV8N` or `target/fixtures/yolov8n.onnx`; when neither exists the test says how to
//! make the file and passes without running (the fixture venv is never needed to run the tests).
use emoclip::analyze::track::{Tracker, TrackerConfig};
use emoclip::detect::onnx::PersonDetector;

use crate::common;

#[test]
fn real_architecture_yolov8n_runs_and_feeds_the_tracker() {
    let model = std::env::var("EMOCLIP_YOLOV8N")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| common::repo_root().join("target/fixtures/yolov8n.onnx"));
    if !model.is_file() {
        eprintln!(
            "skipped: {} not found; make it with `.venv-fixtures/bin/python scripts/fixtures/gen_yolov8n.py {}`",
            model.display(),
            model.display()
        );
        return;
    }
    common::ort_runtime();
    let mut det = PersonDetector::new(&model).unwrap();
    // random weights score every anchor low: lower the threshold so decoding, NMS and unletterboxing run
    det.params.conf = 0.0;
    let img = emoclip::media::load_image(&common::fixture("media/person_small.jpg")).unwrap();
    let (w, h) = (img.width() as f32, img.height() as f32);
    let mut tracker = Tracker::new(TrackerConfig::default());
    for frame in 0..3 {
        let boxes = det.detect(&img).unwrap();
        assert!(!boxes.is_empty(), "conf 0 keeps at least the best anchor");
        for b in &boxes {
            assert!(
                b.x1.is_finite() && b.y2.is_finite() && b.x1 >= 0.0 && b.y1 >= 0.0 && b.x2 <= w && b.y2 <= h,
                "{b:?}"
            );
            assert!(b.conf.is_some_and(|c| (0.0..=1.0).contains(&c)));
        }
        tracker.update(frame, frame as f64 * 0.5, &boxes);
    }
}
