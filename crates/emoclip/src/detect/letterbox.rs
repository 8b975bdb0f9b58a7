//! YOLO letterbox (ultralytics/YOLOv7 `letterbox(..., auto=False)`): scale by r = min(S/h, S/w) without
//! up-scaling beyond need, pad to S×S with grey 114, centred; and its inverse for boxes.
use image::RgbImage;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LetterboxInfo {
    pub ratio: f32,
    pub pad_x: f32,
    pub pad_y: f32,
    pub orig_w: u32,
    pub orig_h: u32,
}

#[derive(Clone, Copy, Debug)]
pub struct Letterbox {
    pub size: u32,
}

impl Default for Letterbox {
    fn default() -> Self {
        Self { size: 640 }
    }
}

impl Letterbox {
    /// Geometry for an image of `w×h`: ratio, then padding split evenly (YOLO rounds the halves with
    /// `round(d - 0.1)` / `round(d + 0.1)`, reproduced here).
    pub fn info(&self, w: u32, h: u32) -> LetterboxInfo {
        let s = self.size as f32;
        let r = (s / h as f32).min(s / w as f32);
        let (nw, nh) = ((w as f32 * r).round(), (h as f32 * r).round());
        LetterboxInfo { ratio: r, pad_x: (s - nw) / 2.0, pad_y: (s - nh) / 2.0, orig_w: w, orig_h: h }
    }

    /// The `1×3×S×S` network input in [0, 1], RGB, CHW (bilinear resize; detectors are insensitive to
    /// the exact resampling filter, so this does not try to reproduce OpenCV bit for bit).
    pub fn apply(&self, img: &RgbImage) -> (Vec<f32>, LetterboxInfo) {
        let info = self.info(img.width(), img.height());
        let (nw, nh) = (
            ((img.width() as f32 * info.ratio).round() as u32).max(1),
            ((img.height() as f32 * info.ratio).round() as u32).max(1),
        );
        let resized = image::imageops::resize(img, nw, nh, image::imageops::FilterType::Triangle);
        let s = self.size as usize;
        let left = (info.pad_x - 0.1).round() as usize;
        let top = (info.pad_y - 0.1).round() as usize;
        let mut out = vec![114.0 / 255.0; 3 * s * s];
        for (x, y, p) in resized.enumerate_pixels() {
            let (xx, yy) = (x as usize + left, y as usize + top);
            if xx < s && yy < s {
                for c in 0..3 {
                    out[c * s * s + yy * s + xx] = p.0[c] as f32 / 255.0;
                }
            }
        }
        (out, info)
    }
}

impl LetterboxInfo {
    /// Box `[x1, y1, x2, y2]` in letterbox pixels → original-frame pixels, clipped to the frame.
    pub fn unletterbox(&self, b: [f32; 4]) -> [f32; 4] {
        let fx = |x: f32| ((x - self.pad_x) / self.ratio).clamp(0.0, self.orig_w as f32);
        let fy = |y: f32| ((y - self.pad_y) / self.ratio).clamp(0.0, self.orig_h as f32);
        [fx(b[0]), fy(b[1]), fx(b[2]), fy(b[3])]
    }
}
