//! OpenCV `cv2.resize(..., interpolation=INTER_LINEAR)` on 8-bit RGB images, bit for bit (the resize of
//! YOLO's `letterbox` / ultralytics `LetterBox`, OpenCV modules/imgproc/src/resize.cpp).
//!
//! Written by hand because no crate reproduces OpenCV's arithmetic: `image` and `fast_image_resize` filter
//! with a kernel widened on downscaling (antialiasing) and round in floating point, while OpenCV samples two
//! taps at half-pixel centres with 11-bit fixed-point weights. Checked equal to OpenCV 5.0 by
//! `tests/it/detect.rs` (fixtures from ultralytics' `LetterBox`, `scripts/fixtures/gen_yolo.py`).
use image::RgbImage;

/// Fixed-point weight scale of OpenCV's linear resize (`INTER_RESIZE_COEF_BITS` = 11).
const COEF_SCALE: f32 = 2048.0;

/// Source taps and fixed-point weights of one axis. `clamp` is OpenCV's x-axis rule: a tap left of the
/// first or right of the last source pixel takes that pixel with full weight; on the y axis the fraction
/// is kept and only the row indices are clipped.
fn taps(src: u32, dst: u32, clamp: bool) -> Vec<(usize, usize, i32, i32)> {
    let scale = 1.0 / (dst as f64 / src as f64);
    let last = src as i64 - 1;
    (0..dst)
        .map(|d| {
            let mut f = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let mut s = f.floor() as i64;
            f -= s as f32;
            if clamp {
                if s < 0 {
                    f = 0.0;
                    s = 0;
                }
                if s + 1 > last {
                    f = 0.0;
                    s = last;
                }
            }
            let w0 = ((1.0 - f) * COEF_SCALE).round_ties_even() as i32;
            let w1 = (f * COEF_SCALE).round_ties_even() as i32;
            (s.clamp(0, last) as usize, (s + 1).clamp(0, last) as usize, w0, w1)
        })
        .collect()
}

/// `img` resized to `w×h` as OpenCV's `INTER_LINEAR` does it for `CV_8UC3` (horizontal pass into 32-bit
/// sums of weight 2048, vertical pass with OpenCV's rounding `((b0·(s0>>4))>>16 + (b1·(s1>>4))>>16 + 2)>>2`).
pub fn resize_linear(img: &RgbImage, w: u32, h: u32) -> RgbImage {
    let (sw, sh) = img.dimensions();
    let (xs, ys) = (taps(sw, w, true), taps(sh, h, false));
    let src = img.as_raw();
    let row = |y: usize| -> Vec<i32> {
        let line = &src[y * sw as usize * 3..(y + 1) * sw as usize * 3];
        xs.iter()
            .flat_map(|&(x0, x1, a0, a1)| {
                (0..3).map(move |c| line[x0 * 3 + c] as i32 * a0 + line[x1 * 3 + c] as i32 * a1)
            })
            .collect()
    };
    let mut out = Vec::with_capacity(w as usize * h as usize * 3);
    let mut cache: Option<(usize, Vec<i32>)> = None;
    for &(y0, y1, b0, b1) in &ys {
        let r0 = match cache.take() {
            Some((y, r)) if y == y0 => r,
            _ => row(y0),
        };
        let r1 = if y1 == y0 { r0.clone() } else { row(y1) };
        out.extend(
            r0.iter()
                .zip(&r1)
                .map(|(&s0, &s1)| (((b0 * (s0 >> 4)) >> 16) + ((b1 * (s1 >> 4)) >> 16) + 2) >> 2)
                .map(|v| v.clamp(0, 255) as u8),
        );
        cache = Some((y1, r1));
    }
    RgbImage::from_raw(w, h, out).expect("w·h·3 bytes")
}
