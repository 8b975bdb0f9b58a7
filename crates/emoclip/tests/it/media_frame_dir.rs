//! Frame-directory media (media/frame_dir.rs) through `Embedder::prepare`: a directory of the frames of a video gives the same tensors and masks as the video itself (uniform sampling, explicit positions, frame numbers), and bad directories fail with clear errors.
use crate::common;

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use emoclip::emotionclip::SubjectMode;
use emoclip::encoder::{load_encoder, preprocessor_for, Embedder, MediaInput, ModelKind};
use emoclip::media::{self, BoxFile, FrameDir, FrameSelection, MediaOptions, PersonBox};

fn embedder() -> Embedder {
    let cfg = common::micro_config(SubjectMode::Sap);
    let enc = load_encoder("random", Some(&cfg), ModelKind::EmotionClip, DType::F32, &Device::Cpu).unwrap();
    let pre = preprocessor_for(enc.image_size(), media::IMAGENET);
    Embedder::new(enc, pre, Device::Cpu, DType::F32, 8).unwrap()
}

fn vec_of(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

/// Writes every frame of `video` into `dir` as `img_%05d.png` numbered from `first`; returns the frame count.
fn explode(video: &Path, dir: &Path, first: usize) -> usize {
    let n = media::decode_uniform_min(video, 2, 1).unwrap().total_frames;
    let all = media::decode_frames(video, &(0..n).collect::<Vec<_>>()).unwrap();
    for (i, f) in all.frames.iter().enumerate() {
        f.save(dir.join(format!("img_{:05}.png", i + first))).unwrap();
    }
    n
}

/// Per-frame boxes that move with the frame index (offset `shift` in the keys).
fn moving_boxes(n: usize, shift: usize) -> BoxFile {
    let mut m = BTreeMap::new();
    for i in 0..n {
        let x = (i * 7 % 200) as f32;
        m.insert(i + shift, vec![PersonBox::new(x, 10.0 + i as f32, x + 150.0, 200.0, Some(0.9))]);
    }
    BoxFile::per_frame(m)
}

#[test]
fn frame_dir_matches_the_video() {
    let video = common::fixture("media/clip_vtest40.mp4");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("clip.mp4"); // official layouts name the directory after the video
    std::fs::create_dir(&dir).unwrap();
    let n = explode(&video, &dir, 1);
    assert!(n >= 8, "fixture video has {n} frames");
    std::fs::write(dir.join("notes.txt"), "not a frame").unwrap(); // ignored
    let emb = embedder();

    let from_video = emb.prepare(&MediaInput::new(&video, Some(moving_boxes(n, 0)))).unwrap();
    let from_dir = emb.prepare(&MediaInput::new(&dir, Some(moving_boxes(n, 1)))).unwrap();
    assert_eq!(from_dir.kind, media::MediaKind::Video);
    assert_eq!(from_dir.frames.dims(), &[8, 3, 32, 32]);
    assert_eq!(vec_of(&from_dir.frames), vec_of(&from_video.frames));
    assert_eq!(vec_of(&from_dir.masks), vec_of(&from_video.masks));
    assert!(from_dir.has_subject);
    // the masks differ between frames (the boxes move), so the frame ↔ box pairing is really checked
    let m = vec_of(&from_dir.masks);
    let plane = 32 * 32;
    assert!((1..8).any(|t| m[t * plane..(t + 1) * plane] != m[..plane]));

    // explicit positions (video: decode order; directory: number order) and frame numbers
    let pos = vec![3usize, 3, 0, 9, 9, 9, n - 1, 1];
    let opts = MediaOptions { frames: FrameSelection::Positions(pos.clone()), ..Default::default() };
    let v = emb.prepare(&MediaInput::new(&video, Some(moving_boxes(n, 0))).with_options(opts.clone())).unwrap();
    let d = emb.prepare(&MediaInput::new(&dir, Some(moving_boxes(n, 1))).with_options(opts)).unwrap();
    assert_eq!(vec_of(&d.frames), vec_of(&v.frames));
    assert_eq!(vec_of(&d.masks), vec_of(&v.masks));
    let nums: Vec<u64> = pos.iter().map(|&p| p as u64 + 1).collect();
    let opts = MediaOptions { frames: FrameSelection::Numbers(nums), ..Default::default() };
    let d2 = emb.prepare(&MediaInput::new(&dir, Some(moving_boxes(n, 1))).with_options(opts)).unwrap();
    assert_eq!(vec_of(&d2.frames), vec_of(&v.frames));
    assert_eq!(vec_of(&d2.masks), vec_of(&v.masks));

    // one frame repeated 8 times (the LIRIS-ACCEDE official loader)
    let opts = MediaOptions { frames: FrameSelection::Numbers(vec![5; 8]), ..Default::default() };
    let r = emb.prepare(&MediaInput::new(&dir, None).with_options(opts)).unwrap();
    let f = vec_of(&r.frames);
    let per = 3 * plane;
    assert!((1..8).all(|t| f[t * per..(t + 1) * per] == f[..per]));
    assert!(!r.has_subject);
}

#[test]
fn natural_order_and_uniform_positions() {
    let tmp = tempfile::tempdir().unwrap();
    // unpadded names: plain sorting would put frame_10 before frame_2
    for i in [1u32, 2, 3, 10, 11, 20] {
        image::RgbImage::from_pixel(6, 4, image::Rgb([i as u8 * 10, 0, 0]))
            .save(tmp.path().join(format!("frame_{i}.jpg")))
            .unwrap();
    }
    let d = FrameDir::open(tmp.path()).unwrap();
    let nums: Vec<u64> = d.frames.iter().map(|(n, _)| *n).collect();
    assert_eq!(nums, vec![1, 2, 3, 10, 11, 20]);
    // np.linspace(0, 5, 8, dtype=int) = [0 0 1 2 2 3 4 5]
    let c = d.load_uniform(8).unwrap();
    assert_eq!(c.indices, vec![1, 1, 2, 3, 3, 10, 11, 20]);
    assert_eq!((c.width, c.height, c.total_frames), (6, 4, 6));
}

fn err_of(emb: &Embedder, input: MediaInput) -> String {
    match emb.prepare(&input) {
        Ok(_) => panic!("{} should fail", input.path.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_frame_directories() {
    let emb = embedder();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let px = |v: u8| image::RgbImage::from_pixel(8, 8, image::Rgb([v, v, v]));

    let e = err_of(&emb, MediaInput::new(root.join("missing.mp4"), None));
    assert!(e.contains("missing.mp4") && e.contains("not found"), "{e}");

    let empty = root.join("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(empty.join("readme.txt"), "x").unwrap();
    let e = err_of(&emb, MediaInput::new(&empty, None));
    assert!(e.contains("empty") && e.contains("no frames"), "{e}");

    let corrupt = root.join("corrupt");
    std::fs::create_dir(&corrupt).unwrap();
    px(1).save(corrupt.join("img_00001.png")).unwrap();
    std::fs::write(corrupt.join("img_00002.jpg"), b"\xff\xd8\xff\xe0 truncated").unwrap();
    let e = err_of(&emb, MediaInput::new(&corrupt, None));
    assert!(e.contains("img_00002.jpg") && e.contains("cannot decode"), "{e}");

    let sizes = root.join("sizes");
    std::fs::create_dir(&sizes).unwrap();
    px(1).save(sizes.join("img_00001.png")).unwrap();
    image::RgbImage::new(9, 8).save(sizes.join("img_00002.png")).unwrap();
    let e = err_of(&emb, MediaInput::new(&sizes, None));
    assert!(e.contains("img_00002.png") && e.contains("9x8") && e.contains("8x8"), "{e}");

    let dup = root.join("dup");
    std::fs::create_dir(&dup).unwrap();
    px(1).save(dup.join("img_00001.png")).unwrap();
    px(2).save(dup.join("flow_x_00001.png")).unwrap();
    let e = err_of(&emb, MediaInput::new(&dup, None));
    assert!(e.contains("two frames are numbered 1"), "{e}");

    let nonum = root.join("nonum");
    std::fs::create_dir(&nonum).unwrap();
    px(1).save(nonum.join("cover.png")).unwrap();
    let e = err_of(&emb, MediaInput::new(&nonum, None));
    assert!(e.contains("cover.png") && e.contains("no frame number"), "{e}");

    // selections: unknown number, wrong count, a selection on a still image
    let ok = root.join("ok");
    std::fs::create_dir(&ok).unwrap();
    px(1).save(ok.join("00000001.png")).unwrap();
    px(2).save(ok.join("00000002.png")).unwrap();
    assert_eq!(emb.prepare(&MediaInput::new(&ok, None)).unwrap().frames.dims()[0], 8);
    let sel = |f: FrameSelection| MediaOptions { frames: f, ..Default::default() };
    let e = err_of(&emb, MediaInput::new(&ok, None).with_options(sel(FrameSelection::Numbers(vec![7; 8]))));
    assert!(e.contains("no frame numbered 7") && e.contains("1..=2"), "{e}");
    let e = err_of(&emb, MediaInput::new(&ok, None).with_options(sel(FrameSelection::Positions(vec![0; 3]))));
    assert!(e.contains("3 frame(s) selected") && e.contains("8"), "{e}");
    let e = err_of(
        &emb,
        MediaInput::new(ok.join("00000001.png"), None).with_options(sel(FrameSelection::Positions(vec![0; 8]))),
    );
    assert!(e.contains("still image"), "{e}");
}
