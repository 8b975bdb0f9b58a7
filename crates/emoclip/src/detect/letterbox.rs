//! YOLO letterbox (ultralytics `LetterBox(new_shape=(S, S))`, YOLOv7 `letterbox(..., auto=False)`): scale by
//! r = min(S/h, S/w), resize with OpenCV's bilinear filter, pad to S×S with grey 114, centred; and its inverse
//! for boxes (ultralytics `ops.scale_boxes`).
use super::resize::resize_linear;
use image::RgbImage;

/// Where the resized image sits in the S×S canvas.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LetterboxInfo {
    /// r = min(S/h, S/w).
    pub ratio: f64,
    /// Size of the resized image, `max(round(w·r), 1)` × `max(round(h·r), 1)` (Python rounding).
    pub new_w: u32,
    pub new_h: u32,
    /// Padding left of and above the resized image: `round(d/2 - 0.1)` of the total padding d.
    pub left: u32,
    pub top: u32,
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

/// Python's `round` (halves to even), which YOLO's letterbox arithmetic uses.
fn py_round(x: f64) -> i64 {
    x.round_ties_even() as i64
}

impl Letterbox {
    /// Geometry for an image of `w×h`, as ultralytics `LetterBox.get_params` (float64 arithmetic).
    pub fn info(&self, w: u32, h: u32) -> LetterboxInfo {
        let s = self.size as f64;
        let r = (s / h as f64).min(s / w as f64);
        let new_w = py_round(w as f64 * r).max(1) as u32;
        let new_h = py_round(h as f64 * r).max(1) as u32;
        let pad = |d: u32| py_round((self.size as f64 - d as f64) / 2.0 - 0.1).max(0) as u32;
        LetterboxInfo { ratio: r, new_w, new_h, left: pad(new_w), top: pad(new_h), orig_w: w, orig_h: h }
    }

    /// The `1×3×S×S` network input in [0, 1], RGB, CHW: OpenCV `INTER_LINEAR` resize (skipped when the size
    /// is unchanged), grey 114 padding, / 255.
    pub fn apply(&self, img: &RgbImage) -> (Vec<f32>, LetterboxInfo) {
        let info = self.info(img.width(), img.height());
        let resized;
        let src = if (info.new_w, info.new_h) == img.dimensions() {
            img
        } else {
            resized = resize_linear(img, info.new_w, info.new_h);
            &resized
        };
        let s = self.size as usize;
        let mut out = vec![114.0 / 255.0; 3 * s * s];
        for (x, y, p) in src.enumerate_pixels() {
            let (xx, yy) = (x as usize + info.left as usize, y as usize + info.top as usize);
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
    /// Box `[x1, y1, x2, y2]` in letterbox pixels → original-frame pixels, clipped to the frame (ultralytics
    /// `scale_boxes`: subtract the integer padding, divide by the per-axis gain new_w/w, new_h/h).
    pub fn unletterbox(&self, b: [f32; 4]) -> [f32; 4] {
        let gx = (self.new_w as f64 / self.orig_w as f64) as f32;
        let gy = (self.new_h as f64 / self.orig_h as f64) as f32;
        let fx = |x: f32| ((x - self.left as f32) / gx).clamp(0.0, self.orig_w as f32);
        let fy = |y: f32| ((y - self.top as f32) / gy).clamp(0.0, self.orig_h as f32);
        [fx(b[0]), fy(b[1]), fx(b[2]), fy(b[3])]
    }
}
