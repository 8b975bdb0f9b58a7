//! Media input against the PIL / torchvision / ffmpeg-CLI reference fixtures written by scripts/fixtures/gen_preprocess.py (fixtures/media/).
use std::path::{Path, PathBuf};

use candle_core::Tensor;
use emoclip::media::{load_boxes, load_image, media_kind, uniform_indices, Normalization, PersonBox, Preprocessor};
use emoclip::Error;
use image::RgbImage;
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/media")
}

fn manifest() -> Value {
    let p = fixtures().join("manifest.json");
    let text = std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/fixtures/gen_preprocess.py", p.display()));
    serde_json::from_str(&text).unwrap()
}

fn png_rgb(name: &str) -> RgbImage {
    image::open(fixtures().join(name)).unwrap().to_rgb8()
}

fn max_u8_diff(a: &RgbImage, b: &RgbImage) -> (u8, usize) {
    assert_eq!(a.dimensions(), b.dimensions());
    let mut max = 0u8;
    let mut n = 0;
    for (x, y) in a.as_raw().iter().zip(b.as_raw()) {
        let d = x.abs_diff(*y);
        max = max.max(d);
        n += (d > 0) as usize;
    }
    (max, n)
}

/// norm_lut.npy: [2, 3, 256] = torchvision ToTensor+Normalize of every u8, [ImageNet, CLIP].
fn lut() -> Vec<Vec<Vec<f32>>> {
    Tensor::read_npy(fixtures().join("norm_lut.npy")).unwrap().to_vec3::<f32>().unwrap()
}

#[test]
fn uniform_indices_match_numpy() {
    let m = manifest();
    for case in m["uniform"].as_array().unwrap() {
        let (n, k) = (case["n"].as_u64().unwrap() as usize, case["k"].as_u64().unwrap() as usize);
        let want: Vec<usize> =
            case["indices"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        assert_eq!(uniform_indices(n, k), want, "n={n} k={k}");
    }
}

#[test]
fn preprocessing_matches_pil_torchvision() {
    let m = manifest();
    let lut = lut();
    let mut worst_u8 = 0u8;
    let mut worst_norm = 0f32;
    for case in m["preprocess"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let img = load_image(&fixtures().join(case["input"].as_str().unwrap())).unwrap();
        let expected = png_rgb(case["expected_crop"].as_str().unwrap());
        for (k, norm) in [Normalization::IMAGENET, Normalization::CLIP].into_iter().enumerate() {
            let pre = Preprocessor { norm, ..Preprocessor::default() };
            let (rw, rh) = pre.resized_size(img.width(), img.height());
            let want = case["resized"].as_array().unwrap();
            assert_eq!((rw as u64, rh as u64), (want[0].as_u64().unwrap(), want[1].as_u64().unwrap()), "{name}");
            let crop = pre.resize_crop(&img);
            let (d, n) = max_u8_diff(&crop, &expected);
            worst_u8 = worst_u8.max(d);
            if k == 0 {
                eprintln!(
                    "{name}: {}x{} -> {rw}x{rh}: max |u8 diff| {d} ({n} values differ)",
                    img.width(),
                    img.height()
                );
            }
            let px = pre.pixels(&img);
            assert_eq!(px.len(), 3 * 224 * 224);
            let mut max = 0f32;
            for c in 0..3 {
                for (i, e) in expected.pixels().enumerate() {
                    max = max.max((px[c * 224 * 224 + i] - lut[k][c][e.0[c] as usize]).abs());
                }
            }
            worst_norm = worst_norm.max(max);
        }
    }
    eprintln!("preprocess parity: max |u8 diff| {worst_u8}, max |normalised diff| {worst_norm:e}");
    // Measured: bit-exact (0 and 0.0) on every fixture.
    assert_eq!(worst_u8, 0, "resize/crop differs from PIL");
    assert_eq!(worst_norm, 0.0, "normalisation differs from torchvision");
}

#[test]
fn jpeg_decoding_close_to_pil() {
    let m = manifest();
    let ours = load_image(&fixtures().join(m["jpeg"]["file"].as_str().unwrap())).unwrap();
    let pil = png_rgb(m["jpeg"]["pil_decoded"].as_str().unwrap());
    let (d, n) = max_u8_diff(&ours, &pil);
    eprintln!(
        "JPEG decode (image crate vs PIL/libjpeg-turbo): max |diff| {d}, {n} of {} values differ",
        pil.as_raw().len()
    );
    // Different IDCT / chroma upsampling; measured 4 levels at most on this file.
    assert!(d <= 6, "JPEG decode differs from PIL by {d} levels");
}

#[test]
fn masks_match_official() {
    let m = manifest();
    let pre = Preprocessor::default();
    for case in m["masks"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let size = case["size"].as_array().unwrap();
        let (w, h) = (size[0].as_u64().unwrap() as u32, size[1].as_u64().unwrap() as u32);
        let boxes: Vec<PersonBox> = case["boxes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                let v: Vec<f32> = b.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
                PersonBox::new(v[0], v[1], v[2], v[3], Some(v[4]))
            })
            .collect();
        let want = image::open(fixtures().join(case["file"].as_str().unwrap())).unwrap().to_luma8();
        let got = pre.mask(w, h, &boxes);
        assert_eq!(got.len(), 224 * 224);
        let wrong = got.iter().zip(want.as_raw()).filter(|(g, w)| **g != if **w > 127 { 1.0 } else { 0.0 }).count();
        let ones = got.iter().filter(|v| **v == 1.0).count();
        assert_eq!(ones as u64, case["ones"].as_u64().unwrap(), "{name}");
        assert_eq!(wrong, 0, "{name}: {wrong} mask pixels differ from the official bbox_to_mask");
    }
}

#[test]
fn box_files_load_and_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    std::fs::write(&good, r#"{"frames": {"0": [[10, 20, 200, 400, 0.8]], "24": []}, "size": [384, 288]}"#).unwrap();
    let f = load_boxes(&good).unwrap();
    assert_eq!(f.boxes_for_frame(5), &[PersonBox::new(10.0, 20.0, 200.0, 400.0, Some(0.8))]);
    assert!(f.boxes_for_frame(30).is_empty());
    assert!(f.check_frame_size(384, 288).is_ok());
    let e = f.check_frame_size(768, 576).unwrap_err().to_string();
    assert!(e.contains("good.json") && e.contains("384x288"), "{e}");

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"boxes": [[10, 20, 5, 400]]}"#).unwrap();
    let e = load_boxes(&bad).unwrap_err();
    assert!(matches!(e, Error::Boxes { .. }), "{e:?}");
    let e = e.to_string();
    assert!(e.contains("bad.json") && e.contains("x2 (5) must be greater than x1 (10)"), "{e}");
    let e = load_boxes(&dir.path().join("missing.json")).unwrap_err().to_string();
    assert!(e.contains("missing.json") && e.contains("not found"), "{e}");
}

#[test]
fn unsupported_extension_is_named() {
    let e = media_kind(Path::new("some/dir/notes.txt")).unwrap_err().to_string();
    assert!(e.contains("notes.txt") && e.contains("unsupported") && e.contains("mp4") && e.contains("jpg"), "{e}");
}

#[cfg(not(feature = "video"))]
#[test]
fn video_feature_off_is_explained() {
    let p = fixtures().join("clip_vtest40.mp4");
    let e = emoclip::media::decode_uniform(&p, 8).unwrap_err().to_string();
    assert!(e.contains("clip_vtest40.mp4") && e.contains("`video` feature"), "{e}");
}

#[cfg(feature = "video")]
mod video {
    use super::*;
    use emoclip::media::{decode_frames, decode_uniform, decode_uniform_min, MediaKind};

    fn clip_path() -> PathBuf {
        fixtures().join(manifest()["clip"]["file"].as_str().unwrap())
    }

    /// Frame count, sampling, size and rate of the committed clip (its pixels are compared with the live ffmpeg
    /// CLI in media_cli_parity: the committed clip_frame_*.png were made with non-default swscale flags).
    #[test]
    fn decodes_committed_clip() {
        let m = manifest();
        let c = &m["clip"];
        let clip = decode_uniform(&clip_path(), 8).unwrap();
        assert_eq!(
            clip.total_frames as u64,
            c["ffprobe_nb_read_frames"].as_u64().unwrap(),
            "frame count vs ffprobe -count_frames (a constant-rate clip: the CLI writes every frame once)"
        );
        let want: Vec<usize> = c["uniform8"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        assert_eq!(clip.indices, want);
        assert_eq!(
            (clip.width as u64, clip.height as u64),
            (c["width"].as_u64().unwrap(), c["height"].as_u64().unwrap())
        );
        assert!((clip.fps - 10.0).abs() < 1e-9, "fps {}", clip.fps);
        assert_eq!(clip.frames.len(), 8);
    }

    fn expect_media_err(path: &Path, needles: &[&str]) -> String {
        let e = decode_uniform(path, 8).expect_err("should fail");
        let s = e.to_string();
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(s.contains(name), "error does not name the file: {s}");
        assert!(needles.iter().any(|n| s.contains(n)), "{s}");
        eprintln!("{s}");
        s
    }

    #[test]
    fn bad_videos_fail_with_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = std::fs::read(clip_path()).unwrap();

        // cut at 30%: inside the first (key) frame, the header still promises 40 frames
        let cut = dir.path().join("cut30.mp4");
        std::fs::write(&cut, &bytes[..bytes.len() * 3 / 10]).unwrap();
        let s = expect_media_err(&cut, &["no video frame could be decoded"]);
        assert!(s.contains("promises 40 frames") && s.contains("re-download"), "{s}");

        // cut at 65%: some frames decode, far fewer than promised
        let cut = dir.path().join("cut65.mp4");
        std::fs::write(&cut, &bytes[..bytes.len() * 65 / 100]).unwrap();
        let s = expect_media_err(&cut, &["truncated or corrupt video"]);
        assert!(s.contains("promises 40 frames") && s.contains("re-download"), "{s}");

        // cut inside the header
        let cut = dir.path().join("cut_header.mp4");
        std::fs::write(&cut, &bytes[..200]).unwrap();
        expect_media_err(&cut, &["cannot open", "truncated", "no video"]);

        // random bytes with a video extension
        let junk = dir.path().join("junk.mp4");
        let mut x = 0x1234_5678u32;
        let noise: Vec<u8> = (0..50_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        std::fs::write(&junk, noise).unwrap();
        expect_media_err(&junk, &["cannot open", "no video"]);

        // text file, unsupported extension
        let txt = dir.path().join("notes.txt");
        std::fs::write(&txt, "not a video\n").unwrap();
        let e = media_kind(&txt).unwrap_err().to_string();
        assert!(e.contains("notes.txt") && e.contains("unsupported") && e.contains("mp4"), "{e}");
        expect_media_err(&txt, &["cannot open"]);

        // empty and missing files
        let empty = dir.path().join("empty.mp4");
        std::fs::write(&empty, b"").unwrap();
        expect_media_err(&empty, &["empty"]);
        expect_media_err(&dir.path().join("missing.mp4"), &["not found"]);
        let e = load_image(&dir.path().join("missing.png")).unwrap_err().to_string();
        assert!(e.contains("missing.png") && e.contains("not found"), "{e}");
        let e = load_image(&junk.with_extension("png")).unwrap_err().to_string();
        assert!(e.contains("junk.png") && e.contains("not found"), "{e}");
        std::fs::copy(&junk, dir.path().join("junk.png")).unwrap();
        let e = load_image(&dir.path().join("junk.png")).unwrap_err().to_string();
        assert!(e.contains("junk.png") && e.contains("cannot decode image"), "{e}");
        let txt_img = dir.path().join("notes.jpg");
        std::fs::write(&txt_img, "not an image\n").unwrap();
        let e = load_image(&txt_img).unwrap_err().to_string();
        assert!(e.contains("notes.jpg") && e.contains("corrupt"), "{e}");
    }

    /// Copy the first `n` video packets of `src` into a Matroska file (stream copy).
    fn remux_head(src: &Path, dst: &Path, n: usize) {
        use ffmpeg_next as ff;
        ff::init().unwrap();
        let mut ictx = ff::format::input(src).unwrap();
        let ist = ictx.streams().best(ff::media::Type::Video).unwrap();
        let (ist_index, ist_tb, params) = (ist.index(), ist.time_base(), ist.parameters());
        let mut octx = ff::format::output(dst).unwrap();
        {
            let mut ost = octx.add_stream(ff::encoder::find(ff::codec::Id::None)).unwrap();
            ost.set_parameters(params);
            unsafe { (*ost.parameters().as_mut_ptr()).codec_tag = 0 };
        }
        octx.write_header().unwrap();
        let ost_tb = octx.stream(0).unwrap().time_base();
        let mut copied = 0;
        for (stream, mut packet) in ictx.packets() {
            if stream.index() != ist_index || copied == n {
                continue;
            }
            packet.rescale_ts(ist_tb, ost_tb);
            packet.set_position(-1);
            packet.set_stream(0);
            packet.write_interleaved(&mut octx).unwrap();
            copied += 1;
        }
        octx.write_trailer().unwrap();
    }

    #[test]
    fn short_clip_is_too_few_frames() {
        let dir = tempfile::tempdir().unwrap();
        // the first 4 packets (pts 0, 3, 1, 2 frames): 4 frames, no gap for the CLI to fill
        let short = dir.path().join("short4.mkv");
        remux_head(&clip_path(), &short, 4);
        match decode_uniform(&short, 8) {
            Err(e @ Error::TooFewFrames { got: 4, need: 8, .. }) => {
                let s = e.to_string();
                assert!(s.contains("short4.mkv") && s.contains("longer clip"), "{s}");
            }
            Err(e) => panic!("expected TooFewFrames {{ got: 4, need: 8 }}, got {e}"),
            Ok(c) => panic!("expected TooFewFrames, got {} frames", c.total_frames),
        }
        // The official loader repeats frames of short clips; available on request.
        let clip = decode_uniform_min(&short, 8, 2).unwrap();
        assert_eq!(clip.total_frames, 4);
        assert_eq!(clip.indices, vec![0, 0, 0, 1, 1, 2, 2, 3]);
        assert_eq!(clip.frames[0], clip.frames[1]);
    }

    /// Frame counts of real videos (media/ from scripts/fetch_media.sh, and tree.avi of the Debian package
    /// opencv-doc it installs) are the ffmpeg CLI's (`ffmpeg -i V -f rawvideo -pix_fmt rgb24 - | wc -c` / frame
    /// size). Missing files skip the test, or fail it in CI.
    #[test]
    fn sample_media_frame_counts() {
        let tree = Path::new("/usr/share/doc/opencv-doc/examples/data/tree.avi");
        // tree.avi's header promises 444 frames (dropped-frame placeholders) and 68 decode, spanning the whole
        // duration: not a truncated file; the CLI fills the gaps and writes 449. Megamind.avi's first frame is
        // stamped 1/23.976 s (packed B-frames) and the file has audio: the CLI writes frame 0 twice (271).
        for (name, frames) in [
            ("Megamind.avi", 271),
            ("Megamind_bugy.avi", 270),
            ("tree.avi", 449),
            ("carphone_pristine.mp4", 120),
            ("vtest.avi", 795),
        ] {
            let p = if name == "tree.avi" {
                if !tree.exists() {
                    let msg = format!(
                        "{} is missing: run `bash scripts/fetch_media.sh` (installs opencv-doc)",
                        tree.display()
                    );
                    assert!(!crate::common::in_ci(), "{msg}");
                    eprintln!("skip: {msg}");
                    continue;
                }
                tree.to_path_buf()
            } else {
                match crate::common::sample_media(name) {
                    Some(p) => p,
                    None => continue,
                }
            };
            let clip = decode_uniform(&p, 8).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(clip.total_frames, frames, "{name}");
            assert_eq!(clip.indices, uniform_indices(frames, 8));
            eprintln!("{name}: {} frames, {}x{} @ {:.3} fps", clip.total_frames, clip.width, clip.height, clip.fps);
            if name == "Megamind.avi" {
                let clip = decode_frames(&p, &[1, 0]).unwrap();
                assert_eq!(clip.indices, vec![1, 0]);
                assert!(clip.frames[0] == clip.frames[1], "the CLI writes Megamind.avi's first frame twice");
                assert!(matches!(decode_frames(&p, &[271]), Err(Error::TooFewFrames { got: 271, need: 272, .. })));
            }
        }
    }

    #[test]
    fn image_kind_and_load() {
        assert_eq!(media_kind(&clip_path()).unwrap(), MediaKind::Video);
        let p = fixtures().join("pre_tiny.png");
        assert_eq!(media_kind(&p).unwrap(), MediaKind::Image);
        assert_eq!(load_image(&p).unwrap().dimensions(), (97, 73));
    }
}

/// A BMP header declaring `w`×`h` 24-bit pixels, with no pixel data.
fn bmp_header(w: i32, h: i32) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"BM");
    b.extend_from_slice(&54u32.to_le_bytes()); // file size (the pixels are missing)
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&54u32.to_le_bytes()); // pixel data offset
    b.extend_from_slice(&40u32.to_le_bytes()); // BITMAPINFOHEADER
    b.extend_from_slice(&w.to_le_bytes());
    b.extend_from_slice(&h.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&24u16.to_le_bytes());
    b.extend_from_slice(&[0u8; 24]); // no compression, sizes and palette counts 0
    b
}

#[test]
fn image_too_large_to_decode_says_so_with_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("huge.bmp");
    std::fs::write(&big, bmp_header(30000, 30000)).unwrap();
    let e = load_image(&big).unwrap_err().to_string();
    assert!(
        e.contains("huge.bmp") && e.contains("too large") && e.contains("30000x30000") && e.contains("512 MiB"),
        "{e}"
    );
    assert!(!e.contains("corrupt"), "{e}");
    // A small image with its pixels missing is still reported as corrupt or truncated.
    let cut = dir.path().join("cut.bmp");
    std::fs::write(&cut, bmp_header(4, 4)).unwrap();
    let e = load_image(&cut).unwrap_err().to_string();
    assert!(e.contains("cut.bmp") && e.contains("corrupt or truncated"), "{e}");
}
