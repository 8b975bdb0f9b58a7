//! Greedy non-maximum suppression (torchvision `nms`: highest score first, drop boxes with IoU > threshold).
use super::yolo::Detection;

/// Intersection over union of `[x1, y1, x2, y2]` boxes (0 for empty boxes); also the tracker's association score.
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area = |r: &[f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

/// Suppresses per class (boxes of different classes never suppress each other); sorted by score.
pub fn nms(mut dets: Vec<Detection>, iou_threshold: f32) -> Vec<Detection> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut keep: Vec<Detection> = Vec::new();
    for d in dets {
        if keep.iter().all(|k| k.class != d.class || iou(&k.bbox, &d.bbox) <= iou_threshold) {
            keep.push(d);
        }
    }
    keep
}
