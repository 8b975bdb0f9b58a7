//! Frame preprocessing; mirrors torchvision `Resize(256, BICUBIC)` (PIL antialiased bicubic), `CenterCrop(224)`, `ToTensor()`, `Normalize(mean, std)` of the official src/datasets/meld.py.
//!
//! The resize is a port of Pillow's `ImagingResample` for 8-bit RGB (libImaging/Resample.c:
//! separable convolution with the a = -0.5 bicubic kernel stretched by the downscale factor,
//! coefficients normalised to 22-bit fixed point, horizontal pass first, each pass rounded to
//! u8). It is written out here instead of using `fast_image_resize` because that crate does not
//! reproduce Pillow: its `CatmullRom` convolution (vertical pass first for u8, different edge
//! handling) was measured at up to 4 levels off on downscaled fixture frames and up to 11 on
//! upscaled ones, versus 0 for this port (bit-exact on every fixture in fixtures/media/).
use candle_core::{Device, Tensor};
use image::RgbImage;
use rayon::prelude::*;

use super::boxes::{resized_mask, scaled_mask, PersonBox};
use super::mask_bilinear::bilinear_mask;
use super::options::MaskMode;
use crate::Result;

/// Per-channel mean / std applied after scaling pixels to `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalization {
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Normalization {
    /// ImageNet statistics, the official EmotionCLIP default.
    pub const IMAGENET: Normalization = Normalization { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
    /// OpenAI CLIP statistics (the published decimals; they round to the same f32 as Python's).
    #[allow(clippy::excessive_precision)]
    pub const CLIP: Normalization = Normalization {
        mean: [0.481_454_66, 0.457_827_5, 0.408_210_73],
        std: [0.268_629_54, 0.261_302_58, 0.275_777_11],
    };

    /// `(v / 255 - mean[c]) / std[c]` in f32, the same operations as torchvision's
    /// `ToTensor()` + `Normalize()`.
    #[inline]
    pub fn apply(&self, c: usize, v: u8) -> f32 {
        (v as f32 / 255.0 - self.mean[c]) / self.std[c]
    }
}

/// ImageNet statistics (official EmotionCLIP default).
pub const IMAGENET: Normalization = Normalization::IMAGENET;
/// OpenAI CLIP statistics.
pub const CLIP: Normalization = Normalization::CLIP;

/// Resize (short side → `resize_short`, PIL bicubic), centre crop `crop×crop`, normalise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preprocessor {
    pub resize_short: u32,
    pub crop: u32,
    pub norm: Normalization,
}

impl Default for Preprocessor {
    fn default() -> Self {
        Self { resize_short: 256, crop: 224, norm: Normalization::IMAGENET }
    }
}

impl Preprocessor {
    /// Size after the resize: torchvision's rule for an int size, short side → `resize_short`,
    /// long side → `int(resize_short * long / short)` (truncated).
    pub fn resized_size(&self, w: u32, h: u32) -> (u32, u32) {
        if w == 0 || h == 0 {
            return (0, 0);
        }
        let (short, long) = if w <= h { (w, h) } else { (h, w) };
        let new_long = ((self.resize_short as u64 * long as u64) as f64 / short as f64) as u32;
        if w <= h {
            (self.resize_short, new_long)
        } else {
            (new_long, self.resize_short)
        }
    }

    /// The resized frame (u8, like PIL); a copy when no resize is needed.
    pub fn resize(&self, img: &RgbImage) -> RgbImage {
        let (w, h) = self.resized_size(img.width(), img.height());
        resize_bicubic_pil(img, w, h)
    }

    /// The `crop×crop` u8 image after resize and centre crop (what PIL would hand `ToTensor`). Only the
    /// cropped part of the resized frame is computed.
    pub fn resize_crop(&self, img: &RgbImage) -> RgbImage {
        let (w, h) = self.resized_size(img.width(), img.height());
        let (ox, oy) = (crop_offset(w, self.crop), crop_offset(h, self.crop));
        // The part of the resized frame inside the crop; torchvision pads the rest with 0.
        let span = |o: i64, size: u32| {
            let start = o.max(0) as u32;
            (start, (o + self.crop as i64).clamp(start as i64, size as i64) as u32)
        };
        let ((x0, x1), (y0, y1)) = (span(ox, w), span(oy, h));
        let inner = resize_bicubic_pil_window(img, (w, h), (x0, x1), (y0, y1));
        if (x1 - x0, y1 - y0) == (self.crop, self.crop) {
            return inner;
        }
        let mut out = RgbImage::new(self.crop, self.crop);
        let (px, py) = ((x0 as i64 - ox) as u32, (y0 as i64 - oy) as u32);
        image::imageops::replace(&mut out, &inner, px.into(), py.into());
        out
    }

    /// Model input for one frame: CHW, `3*crop*crop` values, normalised.
    pub fn pixels(&self, img: &RgbImage) -> Vec<f32> {
        let cropped = self.resize_crop(img);
        let plane = (self.crop * self.crop) as usize;
        // Every u8 value's normalised f32, computed once (the same operations as `Normalization::apply`).
        let lut: [[f32; 256]; 3] = std::array::from_fn(|c| std::array::from_fn(|v| self.norm.apply(c, v as u8)));
        let mut out = vec![0f32; 3 * plane];
        let (r, rest) = out.split_at_mut(plane);
        let (g, b) = rest.split_at_mut(plane);
        for (i, px) in cropped.as_raw().chunks_exact(3).enumerate() {
            r[i] = lut[0][px[0] as usize];
            g[i] = lut[1][px[1] as usize];
            b[i] = lut[2][px[2] as usize];
        }
        out
    }

    /// Subject mask for a frame of `orig_w×orig_h` pixels: `crop*crop` values, 0 or 1,
    /// built at the resized resolution and centre-cropped like the frame (official rounding,
    /// see [`super::boxes`]).
    pub fn mask(&self, orig_w: u32, orig_h: u32, boxes: &[PersonBox]) -> Vec<f32> {
        self.mask_with(MaskMode::Letterbox, orig_w, orig_h, boxes)
    }

    /// [`Self::mask`] with a dataset-specific box → mask rule ([`MaskMode`]: YOLO boxes, BoLD bilinear,
    /// Emotic scaled); the mask is made at the resized resolution and centre-cropped like the frame.
    pub fn mask_with(&self, mode: MaskMode, orig_w: u32, orig_h: u32, boxes: &[PersonBox]) -> Vec<f32> {
        let (rw, rh) = self.resized_size(orig_w, orig_h);
        let full = match mode {
            MaskMode::Letterbox => resized_mask(orig_w, orig_h, rw, rh, boxes),
            MaskMode::Bilinear => bilinear_mask(orig_w, orig_h, rw, rh, boxes),
            MaskMode::Scaled => scaled_mask(orig_w, orig_h, rw, rh, boxes),
        };
        let (ox, oy) = (crop_offset(rw, self.crop), crop_offset(rh, self.crop));
        let c = self.crop as i64;
        let mut out = vec![0f32; (c * c) as usize];
        for y in 0..c {
            let sy = y + oy;
            if sy < 0 || sy >= rh as i64 {
                continue;
            }
            for x in 0..c {
                let sx = x + ox;
                if sx >= 0 && sx < rw as i64 {
                    out[(y * c + x) as usize] = full[(sy * rw as i64 + sx) as usize] as f32;
                }
            }
        }
        out
    }

    /// Frames → `[T, 3, crop, crop]` f32 tensor (frames processed in parallel).
    pub fn frames_tensor(&self, frames: &[RgbImage], device: &Device) -> Result<Tensor> {
        let c = self.crop as usize;
        let data: Vec<f32> = frames.par_iter().flat_map_iter(|f| self.pixels(f)).collect();
        Ok(Tensor::from_vec(data, (frames.len(), 3, c, c), device)?)
    }

    /// Masks for frames of `orig_w×orig_h` → `[T, crop, crop]` f32 tensor (0/1).
    pub fn masks_tensor(
        &self,
        orig_w: u32,
        orig_h: u32,
        boxes_per_frame: &[&[PersonBox]],
        device: &Device,
    ) -> Result<Tensor> {
        self.masks_tensor_with(MaskMode::Letterbox, orig_w, orig_h, boxes_per_frame, device)
    }

    /// [`Self::masks_tensor`] with a [`MaskMode`].
    pub fn masks_tensor_with(
        &self,
        mode: MaskMode,
        orig_w: u32,
        orig_h: u32,
        boxes_per_frame: &[&[PersonBox]],
        device: &Device,
    ) -> Result<Tensor> {
        let c = self.crop as usize;
        let data: Vec<f32> = boxes_per_frame.iter().flat_map(|b| self.mask_with(mode, orig_w, orig_h, b)).collect();
        Ok(Tensor::from_vec(data, (boxes_per_frame.len(), c, c), device)?)
    }
}

/// torchvision `center_crop` offset along one axis: `int(round((size - crop) / 2.0))` (Python
/// rounds halves to even: 341 → 224 gives 58, not 59); negative means zero padding of
/// `(crop - size) // 2` before the image.
pub fn crop_offset(size: u32, crop: u32) -> i64 {
    if crop > size {
        -(((crop - size) / 2) as i64)
    } else {
        ((size - crop) as f64 / 2.0).round_ties_even() as i64
    }
}

/// Pillow's bicubic kernel (a = -0.5).
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Per output position: first input index and 22-bit fixed-point weights (Pillow's
/// `precompute_coeffs` + `normalize_coeffs_8bpc`, same f64 operation order).
fn coefficients(in_size: u32, out_size: u32) -> Vec<(usize, Vec<i32>)> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = 2.0 * filterscale;
    let ss = 1.0 / filterscale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            // C casts truncate toward zero, as `as i64` does.
            let xmin = ((center - support + 0.5) as i64).max(0);
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64);
            let w: Vec<f64> = (xmin..xmax).map(|x| bicubic((x as f64 - center + 0.5) * ss)).collect();
            let ww: f64 = w.iter().sum();
            let fixed = w
                .iter()
                .map(|&k| {
                    let k = if ww != 0.0 { k / ww } else { k };
                    let s = k * (1u32 << PRECISION_BITS) as f64;
                    (if k < 0.0 { -0.5 + s } else { 0.5 + s }) as i32
                })
                .collect();
            (xmin as usize, fixed)
        })
        .collect()
}

#[inline]
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Pillow-exact antialiased bicubic resize of an RGB image (`Image.resize(size, BICUBIC)`).
pub fn resize_bicubic_pil(src: &RgbImage, out_w: u32, out_h: u32) -> RgbImage {
    resize_bicubic_pil_window(src, (out_w, out_h), (0, out_w), (0, out_h))
}

/// The columns `x0..x1` and rows `y0..y1` of [`resize_bicubic_pil`]`(src, out_w, out_h)`, computing only
/// those pixels (each is independent of the others, so the result is the same as resizing and then cropping).
/// Hand-written because no crate reproduces Pillow's bicubic (see the module doc). Sums are 32-bit as in
/// Pillow's `ImagingResampleHorizontal_8bpc` (|sum| ≤ 255 · Σ|k| < 2^31 for these kernels).
pub fn resize_bicubic_pil_window(
    src: &RgbImage,
    (out_w, out_h): (u32, u32),
    (x0, x1): (u32, u32),
    (y0, y1): (u32, u32),
) -> RgbImage {
    let (in_w, in_h) = src.dimensions();
    let (x1, y1) = (x1.min(out_w), y1.min(out_h));
    let (x0, y0) = (x0.min(x1), y0.min(y1));
    let (ww, wh) = (x1 - x0, y1 - y0);
    if (in_w, in_h) == (out_w, out_h) {
        return image::imageops::crop_imm(src, x0, y0, ww, wh).to_image();
    }
    if in_w == 0 || in_h == 0 || ww == 0 || wh == 0 {
        return RgbImage::new(ww, wh);
    }
    let half = 1i32 << (PRECISION_BITS - 1);
    let raw = src.as_raw();
    let in_stride = in_w as usize * 3;
    let stride = ww as usize * 3;
    // Source rows the window's output rows read (the first and last coefficient windows bound them).
    let vert = if in_h != out_h { coefficients(in_h, out_h) } else { Vec::new() };
    let (row0, row1) = match (vert.get(y0 as usize), vert.get(y1 as usize - 1)) {
        (Some(a), Some(b)) => (a.0, b.0 + b.1.len()),
        _ => (y0 as usize, y1 as usize),
    };

    // Horizontal pass over the needed rows and the window's columns (a copy when the width is unchanged).
    let mut tmp = vec![0u8; (row1 - row0) * stride];
    if in_w != out_w {
        let horiz = &coefficients(in_w, out_w)[x0 as usize..x1 as usize];
        tmp.par_chunks_mut(stride).enumerate().for_each(|(r, out_row)| {
            let row = &raw[(row0 + r) * in_stride..(row0 + r + 1) * in_stride];
            for ((xmin, k), out_px) in horiz.iter().zip(out_row.chunks_exact_mut(3)) {
                let taps = &row[xmin * 3..(xmin + k.len()) * 3];
                let mut acc = [half; 3];
                for (&kj, p) in k.iter().zip(taps.chunks_exact(3)) {
                    acc[0] += p[0] as i32 * kj;
                    acc[1] += p[1] as i32 * kj;
                    acc[2] += p[2] as i32 * kj;
                }
                out_px[0] = clip8(acc[0]);
                out_px[1] = clip8(acc[1]);
                out_px[2] = clip8(acc[2]);
            }
        });
    } else {
        for (r, out_row) in tmp.chunks_exact_mut(stride).enumerate() {
            let start = (row0 + r) * in_stride + x0 as usize * 3;
            out_row.copy_from_slice(&raw[start..start + stride]);
        }
    }
    if in_h == out_h {
        return RgbImage::from_raw(ww, wh, tmp).unwrap_or_else(|| RgbImage::new(ww, wh));
    }

    // Vertical pass: each output row accumulates whole source rows (the inner loop runs along the row, which
    // the compiler vectorises).
    let mut out = vec![0u8; wh as usize * stride];
    out.par_chunks_mut(stride).enumerate().for_each_init(
        || vec![0i32; stride],
        |acc, (yy, out_row)| {
            let (ymin, k) = &vert[y0 as usize + yy];
            acc.fill(half);
            for (j, &kj) in k.iter().enumerate() {
                let row = &tmp[(ymin + j - row0) * stride..(ymin + j - row0 + 1) * stride];
                for (a, &p) in acc.iter_mut().zip(row) {
                    *a += p as i32 * kj;
                }
            }
            for (o, &a) in out_row.iter_mut().zip(acc.iter()) {
                *o = clip8(a);
            }
        },
    );
    RgbImage::from_raw(ww, wh, out).unwrap_or_else(|| RgbImage::new(ww, wh))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resized_size_follows_torchvision() {
        let p = Preprocessor::default();
        assert_eq!(p.resized_size(768, 576), (341, 256));
        assert_eq!(p.resized_size(720, 528), (349, 256));
        assert_eq!(p.resized_size(271, 403), (256, 380));
        assert_eq!(p.resized_size(256, 256), (256, 256));
        assert_eq!(p.resized_size(0, 5), (0, 0));
    }

    #[test]
    fn crop_offset_rounds_half_to_even() {
        assert_eq!(crop_offset(341, 224), 58); // 58.5 → 58
        assert_eq!(crop_offset(349, 224), 62); // 62.5 → 62
        assert_eq!(crop_offset(343, 224), 60); // 59.5 → 60
        assert_eq!(crop_offset(256, 224), 16);
        assert_eq!(crop_offset(200, 224), -12);
        assert_eq!(crop_offset(201, 224), -11);
    }

    #[test]
    fn constant_image_stays_constant() {
        let img = RgbImage::from_pixel(97, 61, image::Rgb([10, 128, 250]));
        let p = Preprocessor::default();
        let r = p.resize(&img);
        assert_eq!(r.dimensions(), (407, 256));
        assert!(r.pixels().all(|px| px.0 == [10, 128, 250]));
        let v = p.pixels(&img);
        assert_eq!(v.len(), 3 * 224 * 224);
        assert_eq!(v[0], p.norm.apply(0, 10));
        assert_eq!(v[2 * 224 * 224 + 5], p.norm.apply(2, 250));
    }

    #[test]
    fn a_window_of_the_resize_equals_the_resize_cropped() {
        let mut seed = 7u64;
        let mut next = move |m: u32| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 33) % m as u64) as u32
        };
        // downscale, upscale, one axis unchanged, both unchanged
        for (iw, ih, ow, oh) in
            [(97, 61, 40, 25), (13, 9, 50, 31), (64, 48, 64, 20), (30, 41, 75, 41), (20, 20, 20, 20)]
        {
            let img = RgbImage::from_fn(iw, ih, |_, _| image::Rgb([next(256) as u8, next(256) as u8, next(256) as u8]));
            let full = resize_bicubic_pil(&img, ow, oh);
            assert_eq!(full.dimensions(), (ow, oh));
            for _ in 0..20 {
                let (x0, y0) = (next(ow), next(oh));
                let (x1, y1) = (x0 + 1 + next(ow - x0), y0 + 1 + next(oh - y0));
                let win = resize_bicubic_pil_window(&img, (ow, oh), (x0, x1), (y0, y1));
                let want = image::imageops::crop_imm(&full, x0, y0, x1 - x0, y1 - y0).to_image();
                assert_eq!(win, want, "{iw}x{ih} -> {ow}x{oh}, window x {x0}..{x1}, y {y0}..{y1}");
            }
        }
    }

    #[test]
    fn small_crop_is_zero_padded() {
        let p = Preprocessor { resize_short: 100, crop: 224, norm: Normalization::CLIP };
        let img = RgbImage::from_pixel(100, 100, image::Rgb([255, 255, 255]));
        let c = p.resize_crop(&img);
        assert_eq!(c.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(c.get_pixel(62, 62).0, [255, 255, 255]);
        assert_eq!(c.get_pixel(61, 62).0, [0, 0, 0]);
        let m = p.mask(100, 100, &[PersonBox::new(0.0, 0.0, 100.0, 100.0, None)]);
        assert_eq!(m.iter().filter(|v| **v == 1.0).count(), 100 * 100);
    }
}
