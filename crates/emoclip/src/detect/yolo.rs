//! Decoding raw YOLO ONNX outputs as YOLOv7 / ultralytics `non_max_suppression`: YOLOv5/v7 `[1, N, 5 + C]`
//! (cx, cy, w, h, objectness, class scores; score = obj · cls), YOLOv8 `[1, 4 + C, N]` (cx, cy, w, h, class
//! scores), and end-to-end exports with NMS inside, `[M, 7]` or `[1, M, 7]` (batch, x1, y1, x2, y2, class,
//! score). The official preprocessing (`preprocessing/yolo_additions/detect_human.py`) calls it with
//! `multi_label=True`, every class, and keeps the class-0 rows of the result.
use super::nms::nms;
use crate::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum YoloLayout {
    V5V7,
    V8,
    EndToEnd,
}

/// Which classes an anchor of a raw output contributes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Labels {
    /// Every class whose score is above `conf` (`multi_label=True`, the official `detect_human.py`): a person
    /// whose obj · cls_person passes is kept even when another class scores higher on the same anchor.
    #[default]
    MultiLabel,
    /// Only each anchor's best class (`multi_label=False`, the default of YOLO's own `detect.py`).
    BestClass,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    /// `[x1, y1, x2, y2]` in network-input pixels.
    pub bbox: [f32; 4],
    pub score: f32,
    pub class: usize,
}

/// Post-processing settings; the defaults are the official pipeline's (`detect_human.py` with YOLOv7's
/// `non_max_suppression`: conf 0.25, IoU 0.45, multi-label, at most 300 detections of any class, person = 0).
#[derive(Clone, Debug, PartialEq)]
pub struct YoloParams {
    pub conf: f32,
    pub iou: f32,
    /// Class id of "person" (0 in COCO).
    pub class: usize,
    pub labels: Labels,
    /// Detections kept after NMS, counted over every class before the person rows are taken (`max_det`).
    pub max_det: usize,
    /// Candidates passed to NMS at most, the best-scoring ones (`max_nms`).
    pub max_nms: usize,
}

impl Default for YoloParams {
    fn default() -> Self {
        Self { conf: 0.25, iou: 0.45, class: 0, labels: Labels::MultiLabel, max_det: 300, max_nms: 30000 }
    }
}

impl YoloLayout {
    /// Guesses the layout from the output shape (anchors outnumber channels in raw exports; end-to-end
    /// exports have 7 values per detection and at most a few hundred detections).
    pub fn detect(shape: &[usize]) -> Option<Self> {
        match *shape {
            [n, 7] | [1, n, 7] if n < 1000 => Some(YoloLayout::EndToEnd),
            [1, a, b] if a > b && b >= 6 => Some(YoloLayout::V5V7),
            [1, a, b] if b > a && a >= 5 => Some(YoloLayout::V8),
            _ => None,
        }
    }
}

/// Candidates with score > `conf` (of `class`, when given), before NMS, as `non_max_suppression` forms them:
/// YOLOv5/v7 anchors need objectness > `conf` first, then score = obj · cls; `labels` picks every passing class
/// or the best one. End-to-end rows are filtered by score and class only.
pub fn decode(
    out: &[f32],
    shape: &[usize],
    layout: YoloLayout,
    conf: f32,
    class: Option<usize>,
    labels: Labels,
) -> Result<Vec<Detection>> {
    let bad = |m: &str| Error::Shape(format!("YOLO output {shape:?}: {m}"));
    if out.len() != shape.iter().product::<usize>() {
        return Err(bad("data length does not match the shape"));
    }
    let mut dets = Vec::new();
    let xyxy = |cx: f32, cy: f32, w: f32, h: f32| [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0];
    // Class scores of one anchor -> (class, score) pairs above conf.
    let mut push = |bbox: [f32; 4], scores: &mut dyn Iterator<Item = f32>| match labels {
        Labels::MultiLabel => {
            for (ci, s) in scores.enumerate() {
                if s > conf && class.is_none_or(|c| c == ci) {
                    dets.push(Detection { bbox, score: s, class: ci });
                }
            }
        }
        Labels::BestClass => {
            let (ci, s) = scores.enumerate().fold((0, f32::NEG_INFINITY), |b, x| if x.1 > b.1 { x } else { b });
            if s > conf && class.is_none_or(|c| c == ci) {
                dets.push(Detection { bbox, score: s, class: ci });
            }
        }
    };
    match layout {
        YoloLayout::V5V7 => {
            let (n, k) = (shape[1], shape[2]);
            if k < 6 {
                return Err(bad("expected 5 + classes values per anchor"));
            }
            for r in out.chunks(k).take(n) {
                let obj = r[4];
                if obj > conf {
                    push(xyxy(r[0], r[1], r[2], r[3]), &mut r[5..].iter().map(|&c| c * obj));
                }
            }
        }
        YoloLayout::V8 => {
            let (k, n) = (shape[1], shape[2]);
            if k < 5 {
                return Err(bad("expected 4 + classes channels"));
            }
            let at = |c: usize, i: usize| out[c * n + i];
            for i in 0..n {
                push(xyxy(at(0, i), at(1, i), at(2, i), at(3, i)), &mut (4..k).map(|c| at(c, i)));
            }
        }
        YoloLayout::EndToEnd => {
            for r in out.chunks(7) {
                let (ci, score) = (r[5].max(0.0) as usize, r[6]);
                if score > conf && class.is_none_or(|c| c == ci) {
                    dets.push(Detection { bbox: [r[1], r[2], r[3], r[4]], score, class: ci });
                }
            }
        }
    }
    Ok(dets)
}

/// Person detections (class `p.class`) in network-input pixels, as the official pipeline gets them:
/// `non_max_suppression` over every class (at most `max_nms` candidates, class-aware NMS, at most `max_det`
/// results, best first), then the person rows. End-to-end outputs are already suppressed: only the score
/// filter and `max_det` apply, in the export's order.
pub fn detections(out: &[f32], shape: &[usize], layout: YoloLayout, p: &YoloParams) -> Result<Vec<Detection>> {
    let mut dets = decode(out, shape, layout, p.conf, None, p.labels)?;
    if layout != YoloLayout::EndToEnd {
        if dets.len() > p.max_nms {
            dets.sort_by(|a, b| b.score.total_cmp(&a.score));
            dets.truncate(p.max_nms);
        }
        dets = nms(dets, p.iou);
    }
    dets.truncate(p.max_det);
    dets.retain(|d| d.class == p.class);
    Ok(dets)
}
