//! YOLO letterbox, decoding, NMS and the inverse letterbox against ultralytics (`LetterBox`,
//! `non_max_suppression`, `scale_boxes`), and the ONNX Runtime path on constructed models whose outputs are
//! known or expose the input tensor (`scripts/fixtures/gen_yolo.py`).
use crate::common;
use candle_core::Device;
use emoclip::detect::{decode, detections, Labels, Letterbox, YoloLayout, YoloParams};

fn expected() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(common::fixture("yolo/expected.json")).unwrap()).unwrap()
}

fn want(exp: &serde_json::Value, key: &str) -> Vec<([f32; 4], f32)> {
    exp[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let b: Vec<f32> = serde_json::from_value(d["box"].clone()).unwrap();
            ([b[0], b[1], b[2], b[3]], d["score"].as_f64().unwrap() as f32)
        })
        .collect()
}

/// Same detections in the same order: scores to 1e-6 (both are obj · cls in f32), boxes to 1e-3 px.
fn assert_same(got: &[([f32; 4], f32)], want: &[([f32; 4], f32)], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: got {got:?}\nwant {want:?}");
    for ((gb, gs), (wb, ws)) in got.iter().zip(want) {
        assert!((gs - ws).abs() < 1e-6, "{what}: score {gs} vs {ws}");
        for (a, b) in gb.iter().zip(wb) {
            assert!((a - b).abs() < 1e-3, "{what}: box {gb:?} vs {wb:?}");
        }
    }
}

/// A raw output from expected.json as (flat values, shape).
fn raw(exp: &serde_json::Value, key: &str, batch_dim: bool) -> (Vec<f32>, Vec<usize>) {
    let rows: Vec<Vec<f32>> = serde_json::from_value(exp[key].clone()).unwrap();
    let shape = if batch_dim { vec![1, rows.len(), rows[0].len()] } else { vec![rows.len(), rows[0].len()] };
    (rows.into_iter().flatten().collect(), shape)
}

/// The full post-processing (decode, NMS over all classes, max_det, person rows) and the inverse letterbox
/// for the 320×212 image of the fixtures.
fn run(
    exp: &serde_json::Value,
    key: &str,
    batch_dim: bool,
    layout: YoloLayout,
    labels: Labels,
) -> Vec<([f32; 4], f32)> {
    let (flat, shape) = raw(exp, key, batch_dim);
    assert_eq!(YoloLayout::detect(&shape), Some(layout), "{key} {shape:?}");
    let lb = Letterbox::default().info(320, 212);
    let p = YoloParams { labels, ..YoloParams::default() };
    let dets = detections(&flat, &shape, layout, &p).unwrap();
    dets.iter().map(|d| (lb.unletterbox(d.bbox), d.score)).collect()
}

#[test]
fn letterbox_geometry_and_inverse_match_ultralytics() {
    let exp = expected();
    for c in exp["letterbox"].as_array().unwrap() {
        let (w, h) = (c["size"][0].as_u64().unwrap() as u32, c["size"][1].as_u64().unwrap() as u32);
        let lb = Letterbox::default().info(w, h);
        let what = format!("{w}x{h}");
        // (serde_json's default float parser is not correctly rounded: compare to 1e-15, not bit for bit)
        let r = c["ratio"].as_f64().unwrap();
        assert!((lb.ratio - r).abs() <= 1e-15 * r, "{what}: ratio {} vs {r}", lb.ratio);
        assert_eq!(
            [lb.new_w, lb.new_h, lb.left, lb.top],
            [c["new_unpad"][0].as_u64(), c["new_unpad"][1].as_u64(), c["left"].as_u64(), c["top"].as_u64()]
                .map(|v| v.unwrap() as u32),
            "{what}"
        );
        let boxes: Vec<[f32; 4]> = serde_json::from_value(c["boxes"].clone()).unwrap();
        let scaled: Vec<[f32; 4]> = serde_json::from_value(c["scaled"].clone()).unwrap();
        for (b, s) in boxes.iter().zip(&scaled) {
            let got = lb.unletterbox(*b);
            for (g, e) in got.iter().zip(s) {
                assert!((g - e).abs() <= 1e-4 * e.abs().max(1.0), "{what}: {b:?} -> {got:?}, ultralytics {s:?}");
            }
        }
    }
}

#[test]
fn letterbox_pixels_match_ultralytics_exactly() {
    // ultralytics LetterBox: cv2.resize(INTER_LINEAR) then grey-114 borders; the tensor is that / 255, CHW.
    let exp = expected();
    for c in exp["pixels"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let img = image::open(common::fixture(&format!("yolo/{}", c["input"].as_str().unwrap()))).unwrap().to_rgb8();
        let want =
            image::open(common::fixture(&format!("yolo/{}", c["expected"].as_str().unwrap()))).unwrap().to_rgb8();
        let s = c["canvas"].as_u64().unwrap() as usize;
        let (got, _) = Letterbox { size: s as u32 }.apply(&img);
        assert_eq!(got.len(), 3 * s * s);
        let mut wrong = 0;
        for (x, y, p) in want.enumerate_pixels() {
            for ch in 0..3 {
                let g = got[ch * s * s + y as usize * s + x as usize];
                if g != p.0[ch] as f32 / 255.0 {
                    wrong += 1;
                }
            }
        }
        assert_eq!(wrong, 0, "{name}: {wrong} of {} values differ from ultralytics' LetterBox", 3 * s * s);
    }
}

#[test]
fn raw_outputs_decode_as_ultralytics_multi_label_nms() {
    // The official detect_human.py: non_max_suppression(multi_label=True) over every class, then class 0.
    // v7 holds a person behind a higher-scoring class (kept) and a score exactly at conf (dropped).
    let exp = expected();
    assert_same(&run(&exp, "v7_raw", true, YoloLayout::V5V7, Labels::MultiLabel), &want(&exp, "v7"), "v7");
    assert_same(&run(&exp, "v8_raw", true, YoloLayout::V8, Labels::MultiLabel), &want(&exp, "v8"), "v8");
    // max_det 300 counts every class before the person rows are taken: 2 of the 5 persons remain.
    assert_same(&run(&exp, "crowd_raw", true, YoloLayout::V5V7, Labels::MultiLabel), &want(&exp, "crowd"), "crowd");
    assert!(want(&exp, "v7").len() > want(&exp, "v7_best").len());
}

#[test]
fn best_class_option_matches_ultralytics_single_label_nms() {
    let exp = expected();
    assert_same(&run(&exp, "v7_raw", true, YoloLayout::V5V7, Labels::BestClass), &want(&exp, "v7_best"), "v7 best");
    assert_same(&run(&exp, "v8_raw", true, YoloLayout::V8, Labels::BestClass), &want(&exp, "v8_best"), "v8 best");
    // decode alone: the anchor whose person score passes behind class 1 is a candidate only multi-label.
    let (flat, shape) = raw(&exp, "v7_raw", true);
    let multi = decode(&flat, &shape, YoloLayout::V5V7, 0.25, Some(0), Labels::MultiLabel).unwrap();
    let best = decode(&flat, &shape, YoloLayout::V5V7, 0.25, Some(0), Labels::BestClass).unwrap();
    let crafted = [540.0, 140.0, 580.0, 200.0]; // anchor 4: cx 560, cy 170, w 40, h 60
    assert!(multi.iter().any(|d| d.bbox == crafted) && !best.iter().any(|d| d.bbox == crafted));
}

#[test]
fn end_to_end_layouts_with_and_without_batch_dim() {
    let exp = expected();
    for batch_dim in [true, false] {
        let got = run(&exp, "e2e_raw", batch_dim, YoloLayout::EndToEnd, Labels::MultiLabel);
        assert_same(&got, &want(&exp, "e2e"), &format!("e2e batch_dim={batch_dim}"));
    }
    // A raw YOLOv5/v7 output of a 2-class model also ends in 7, but has thousands of anchors.
    assert_eq!(YoloLayout::detect(&[1, 25200, 7]), Some(YoloLayout::V5V7));
    assert_eq!(YoloLayout::detect(&[1, 300, 7]), Some(YoloLayout::EndToEnd));
    assert_eq!(YoloLayout::detect(&[300, 7]), Some(YoloLayout::EndToEnd));
}

#[test]
fn onnx_runtime_detector_on_constructed_models() {
    common::ort_runtime();
    let exp = expected();
    let img = emoclip::media::load_image(&common::fixture("media/person_small.jpg")).unwrap();
    assert_eq!((img.width(), img.height()), (320, 212));
    for (model, key, labels) in [
        ("yolo/yolo_v7_const.onnx", "v7", Labels::MultiLabel),
        ("yolo/yolo_v8_const.onnx", "v8", Labels::MultiLabel),
        ("yolo/yolo_e2e_const.onnx", "e2e", Labels::MultiLabel),
        ("yolo/yolo_v7_const.onnx", "v7_best", Labels::BestClass),
    ] {
        let mut det = emoclip::detect::onnx::PersonDetector::new(&common::fixture(model)).unwrap();
        det.params.labels = labels;
        let got: Vec<([f32; 4], f32)> =
            det.detect(&img).unwrap().iter().map(|b| ([b.x1, b.y1, b.x2, b.y2], b.conf.unwrap())).collect();
        assert_same(&got, &want(&exp, key), model);
    }
    let err =
        emoclip::detect::onnx::PersonDetector::new(&common::fixture("yolo/expected.json")).err().unwrap().to_string();
    assert!(err.contains("expected.json") && err.contains("cannot load the ONNX model"), "{err}");
}

#[test]
fn onnx_runtime_sees_the_ultralytics_letterbox_tensor() {
    // The summary model outputs per-channel row and column sums of its input; the expected values are its
    // output on ultralytics' LetterBox(640) / 255. One grey level at one pixel moves a sum by 1/255 ≈ 3.9e-3,
    // far above the 1e-4 allowed for float summation order.
    common::ort_runtime();
    let want = candle_core::safetensors::load(common::fixture("yolo/summary.safetensors"), &Device::Cpu).unwrap();
    let det = emoclip::detect::onnx::PersonDetector::new(&common::fixture("yolo/yolo_input_summary.onnx")).unwrap();
    for (name, file) in [("person", "media/pre_person.png"), ("megamind", "media/pre_megamind.png")] {
        let img = emoclip::media::load_image(&common::fixture(file)).unwrap();
        let (shape, got, _) = det.raw_output(&img).unwrap();
        assert_eq!(shape, [1, 3, 1280], "{name}");
        let w: Vec<f32> = want[name].flatten_all().unwrap().to_vec1().unwrap();
        let err = got.iter().zip(&w).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        println!("{name}: letterbox tensor summary max |Δ| = {err:.2e}");
        assert!(err < 1e-4, "{name}: the letterbox tensor differs from ultralytics' (max |Δ| {err})");
    }
}
