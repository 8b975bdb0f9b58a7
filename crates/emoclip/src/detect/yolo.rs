//! Decoding raw YOLO ONNX outputs: YOLOv5/v7 `[1, N, 5 + C]` (cx, cy, w, h, objectness, class scores;
//! score = obj · cls), YOLOv8 `[1, 4 + C, N]` (cx, cy, w, h, class scores), and end-to-end exports with NMS
//! inside `[M, 7]` (batch, x1, y1, x2, y2, class, score).
use crate::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum YoloLayout {
    V5V7,
    V8,
    EndToEnd,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    /// `[x1, y1, x2, y2]` in network-input pixels.
    pub bbox: [f32; 4],
    pub score: f32,
    pub class: usize,
}

impl YoloLayout {
    /// Guesses the layout from the output shape (anchors outnumber channels in raw exports).
    pub fn detect(shape: &[usize]) -> Option<Self> {
        match shape {
            [_, n, 7] | [n, 7] if *n < 1000 && shape.len() == 2 => Some(YoloLayout::EndToEnd),
            [1, a, b] if a > b && *b >= 6 => Some(YoloLayout::V5V7),
            [1, a, b] if b > a && *a >= 5 => Some(YoloLayout::V8),
            [n, 7] if *n < 1000 => Some(YoloLayout::EndToEnd),
            _ => None,
        }
    }
}

/// Candidates with score ≥ `conf` (and of `class`, when given), before NMS. For YOLOv5/v7 the best
/// class is taken per anchor (YOLOv7 `detect.py` default, not multi-label).
pub fn decode(
    out: &[f32],
    shape: &[usize],
    layout: YoloLayout,
    conf: f32,
    class: Option<usize>,
) -> Result<Vec<Detection>> {
    let bad = |m: &str| Error::Shape(format!("YOLO output {shape:?}: {m}"));
    if out.len() != shape.iter().product::<usize>() {
        return Err(bad("data length does not match the shape"));
    }
    let mut dets = Vec::new();
    let xyxy = |cx: f32, cy: f32, w: f32, h: f32| [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0];
    match layout {
        YoloLayout::V5V7 => {
            let (n, k) = (shape[1], shape[2]);
            if k < 6 {
                return Err(bad("expected 5 + classes values per anchor"));
            }
            for r in out.chunks(k).take(n) {
                let obj = r[4];
                let (ci, cs) = r[5..]
                    .iter()
                    .enumerate()
                    .fold((0, f32::NEG_INFINITY), |b, (i, &s)| if s > b.1 { (i, s) } else { b });
                let score = obj * cs;
                if score >= conf && class.is_none_or(|c| c == ci) {
                    dets.push(Detection { bbox: xyxy(r[0], r[1], r[2], r[3]), score, class: ci });
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
                let (ci, cs) =
                    (4..k)
                        .map(|c| (c - 4, at(c, i)))
                        .fold((0, f32::NEG_INFINITY), |b, x| if x.1 > b.1 { x } else { b });
                if cs >= conf && class.is_none_or(|c| c == ci) {
                    dets.push(Detection { bbox: xyxy(at(0, i), at(1, i), at(2, i), at(3, i)), score: cs, class: ci });
                }
            }
        }
        YoloLayout::EndToEnd => {
            for r in out.chunks(7) {
                let (ci, score) = (r[5].max(0.0) as usize, r[6]);
                if score >= conf && class.is_none_or(|c| c == ci) {
                    dets.push(Detection { bbox: [r[1], r[2], r[3], r[4]], score, class: ci });
                }
            }
        }
    }
    Ok(dets)
}
