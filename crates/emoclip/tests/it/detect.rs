//! YOLO decoding, NMS and the inverse letterbox against a numpy + torchvision reference, and the ONNX
//! Runtime path on constructed models whose outputs are known (`scripts/fixtures/gen_yolo.py`).
use crate::common;
use emoclip::detect::{decode, nms, Letterbox, YoloLayout};

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

fn assert_same(got: &[([f32; 4], f32)], want: &[([f32; 4], f32)]) {
    assert_eq!(got.len(), want.len(), "got {got:?}\nwant {want:?}");
    for ((gb, gs), (wb, ws)) in got.iter().zip(want) {
        assert!((gs - ws).abs() < 1e-6, "score {gs} vs {ws}");
        for (a, b) in gb.iter().zip(wb) {
            assert!((a - b).abs() < 1e-3, "box {gb:?} vs {wb:?}");
        }
    }
}

fn decode_raw(exp: &serde_json::Value, key: &str, layout: YoloLayout) -> Vec<([f32; 4], f32)> {
    let raw: Vec<Vec<f32>> = serde_json::from_value(exp[key].clone()).unwrap();
    let shape = [1, raw.len(), raw[0].len()];
    let flat: Vec<f32> = raw.into_iter().flatten().collect();
    assert_eq!(YoloLayout::detect(&shape), Some(layout));
    let lb = Letterbox::default().info(320, 212);
    let dets = nms(decode(&flat, &shape, layout, 0.25, Some(0)).unwrap(), 0.45);
    dets.iter().map(|d| (lb.unletterbox(d.bbox), d.score)).collect()
}

#[test]
fn letterbox_geometry_matches_yolo() {
    let exp = expected();
    let lb = Letterbox::default().info(320, 212);
    let g = &exp["letterbox"];
    assert!((lb.ratio - g["ratio"].as_f64().unwrap() as f32).abs() < 1e-6);
    assert_eq!(lb.pad_x, g["pad_x"].as_f64().unwrap() as f32);
    assert_eq!(lb.pad_y, g["pad_y"].as_f64().unwrap() as f32);
}

#[test]
fn yolov7_and_yolov8_decoding_with_nms_match_reference() {
    let exp = expected();
    assert_same(&decode_raw(&exp, "v7_raw", YoloLayout::V5V7), &want(&exp, "v7"));
    assert_same(&decode_raw(&exp, "v8_raw", YoloLayout::V8), &want(&exp, "v8"));
}

#[test]
fn onnx_runtime_detector_on_constructed_models() {
    common::ort_runtime();
    let exp = expected();
    let img = emoclip::media::load_image(&common::fixture("media/person_small.jpg")).unwrap();
    assert_eq!((img.width(), img.height()), (320, 212));
    for (model, key) in [("yolo/yolo_v7_const.onnx", "v7"), ("yolo/yolo_v8_const.onnx", "v8")] {
        let det = emoclip::detect::onnx::PersonDetector::new(&common::fixture(model)).unwrap();
        let got: Vec<([f32; 4], f32)> =
            det.detect(&img).unwrap().iter().map(|b| ([b.x1, b.y1, b.x2, b.y2], b.conf.unwrap())).collect();
        assert_same(&got, &want(&exp, key));
    }
    let err =
        emoclip::detect::onnx::PersonDetector::new(&common::fixture("yolo/expected.json")).err().unwrap().to_string();
    assert!(err.contains("expected.json") && err.contains("cannot load the ONNX model"), "{err}");
}
