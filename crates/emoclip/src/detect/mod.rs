//! Person detection for subject masks (the official pipeline runs YOLOv7, img 640, conf 0.25, IoU 0.45,
//! multi-label NMS, class 0): letterboxing, decoding of YOLOv5/v7, YOLOv8 and end-to-end ONNX exports, NMS,
//! and the inverse letterbox to original-frame pixels (the official code ignores the letterbox offset; this
//! undoes it).
pub mod letterbox;
pub mod nms;
#[cfg(feature = "onnx")]
pub mod onnx;
pub mod resize;
pub mod yolo;

pub use letterbox::{Letterbox, LetterboxInfo};
pub use nms::nms;
pub use yolo::{decode, detections, Detection, Labels, YoloLayout, YoloParams};
