//! BoLD subject masks: boxes filled at the original frame resolution, resized bilinearly to the resized frame and thresholded `> 0.5`; mirrors src/datasets/bold.py `bbox_to_mask` + `_preprocess_frames` (`F.resize(mask, 256)` = torch `F.interpolate(mode="bilinear", align_corners=False)`, no antialias).
//!
//! The resize is a port of PyTorch's CPU `upsample_bilinear2d` for float32 (aten/src/ATen/native/cpu/
//! UpSampleKernel.cpp): per output coordinate `src = max(scale·(dst + 0.5) − 0.5, 0)` with `scale = in/out`,
//! `i0 = min(floor(src), in−1)`, `i1 = i0 + (i0 < in−1)`, `λ1 = clamp(src − i0, 0, 1)`, `λ0 = 1 − λ1` (an
//! unchanged size copies), and `out = (v00·wx0 + v01·wx1)·wy0 + (v10·wx0 + v11·wx1)·wy1`, all in f32 and in
//! that order, so that values landing exactly on 0.5 threshold the same way. This is the behaviour of the
//! torchvision of the official code (≤ 0.16: tensors resized without antialiasing); torchvision ≥ 0.17
//! antialiases tensors by default, which moves the mask edge by up to a pixel when downscaling.
//!
//! Box fill (bold.py `bbox_to_mask`): rows `floor(y1)..ceil(y2)`, columns `floor(x1)..ceil(x2)`, clipped to
//! the frame (Python slicing; a negative start, which Python would wrap, is clamped to 0 here — joint
//! coordinates are never negative), every box with `conf > 0.5` or no confidence (union).
use super::boxes::PersonBox;

/// The `w×h` (row-major) 0/1 mask of `boxes` at the original resolution.
pub fn fill_boxes(w: u32, h: u32, boxes: &[PersonBox]) -> Vec<f32> {
    let (w, h) = (w as usize, h as usize);
    let mut m = vec![0f32; w * h];
    for b in boxes.iter().filter(|b| b.counts()) {
        let clampi = |v: f32, hi: usize| (v.max(0.0) as usize).min(hi);
        let (x1, x2) = (clampi(b.x1.floor(), w), clampi(b.x2.ceil(), w));
        let (y1, y2) = (clampi(b.y1.floor(), h), clampi(b.y2.ceil(), h));
        if x2 <= x1 || y2 <= y1 {
            continue;
        }
        for row in m.chunks_exact_mut(w).take(y2).skip(y1) {
            row[x1..x2].fill(1.0);
        }
    }
    m
}

/// Source indices and weights along one axis: `(i0, i1, λ0, λ1)` per output position.
fn axis(input: usize, output: usize) -> Vec<(usize, usize, f32, f32)> {
    if input == output {
        return (0..output).map(|i| (i, i, 1.0, 0.0)).collect();
    }
    let scale = input as f32 / output as f32;
    (0..output)
        .map(|o| {
            let src = scale * (o as f32 + 0.5) - 0.5;
            let src = if src < 0.0 { 0.0 } else { src };
            let i0 = (src.floor() as usize).min(input - 1);
            let l1 = (src - i0 as f32).clamp(0.0, 1.0);
            let i1 = i0 + usize::from(i0 < input - 1);
            (i0, i1, 1.0 - l1, l1)
        })
        .collect()
}

/// torch `F.interpolate(x[None, None], size=(oh, ow), mode="bilinear", align_corners=False)` of a
/// row-major `w×h` f32 plane (see the module documentation).
pub fn resize_bilinear(src: &[f32], w: u32, h: u32, ow: u32, oh: u32) -> Vec<f32> {
    let (w, h, ow, oh) = (w as usize, h as usize, ow as usize, oh as usize);
    let mut out = vec![0f32; ow * oh];
    if w == 0 || h == 0 || ow == 0 || oh == 0 || src.len() != w * h {
        return out;
    }
    let xs = axis(w, ow);
    let ys = axis(h, oh);
    for (oy, &(y0, y1, wy0, wy1)) in ys.iter().enumerate() {
        let (r0, r1) = (&src[y0 * w..(y0 + 1) * w], &src[y1 * w..(y1 + 1) * w]);
        for (ox, &(x0, x1, wx0, wx1)) in xs.iter().enumerate() {
            let t0 = r0[x0] * wx0 + r0[x1] * wx1;
            let t1 = r1[x0] * wx0 + r1[x1] * wx1;
            out[oy * ow + ox] = t0 * wy0 + t1 * wy1;
        }
    }
    out
}

/// The BoLD mask at the resized resolution `rw×rh` (row-major, 0/1) for boxes in pixels of the `ow×oh`
/// original frame: filled at `ow×oh`, resized bilinearly, thresholded `> 0.5`. (The official code crops
/// before thresholding; per pixel the order does not matter.)
pub fn bilinear_mask(ow: u32, oh: u32, rw: u32, rh: u32, boxes: &[PersonBox]) -> Vec<u8> {
    if !boxes.iter().any(|b| b.counts()) {
        return vec![0u8; rw as usize * rh as usize];
    }
    let full = fill_boxes(ow, oh, boxes);
    resize_bilinear(&full, ow, oh, rw, rh).into_iter().map(|v| u8::from(v > 0.5)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_and_halfway() {
        let src: Vec<f32> = (0..12).map(|v| v as f32).collect();
        assert_eq!(resize_bilinear(&src, 4, 3, 4, 3), src);
        // 2 → 4 upscale of [0, 1]: src positions 0(clamped), 0.25, 0.75, 1.25 → 0, .25, .75, 1
        assert_eq!(resize_bilinear(&[0.0, 1.0], 2, 1, 4, 1), vec![0.0, 0.25, 0.75, 1.0]);
        let m = bilinear_mask(4, 4, 4, 4, &[PersonBox::new(1.2, 0.0, 2.5, 1.0, None)]);
        assert_eq!(&m[..4], &[0, 1, 1, 0]);
        assert!(m[4..].iter().all(|v| *v == 0));
        assert!(bilinear_mask(4, 4, 8, 8, &[PersonBox::new(0.0, 0.0, 4.0, 4.0, Some(0.5))]).iter().all(|v| *v == 0));
    }
}
