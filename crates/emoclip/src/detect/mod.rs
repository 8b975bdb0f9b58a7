//! Person detection for subject masks (the official pipeline runs YOLOv7, img 640, conf 0.25, IoU 0.45,
//! class 0): letterboxing, decoding of YOLOv5/v7 and YOLOv8 ONNX exports, NMS, and the inverse letterbox
//! to original-frame pixels (the official code ignores the letterbox offset; this undoes it).
pub mod letterbox;
pub mod nms;
#[cfg(feature = "onnx")]
pub mod onnx;
pub mod yolo;

pub use letterbox::{Letterbox, LetterboxInfo};
pub use nms::nms;
pub use yolo::{decode, Detection, YoloLayout};
