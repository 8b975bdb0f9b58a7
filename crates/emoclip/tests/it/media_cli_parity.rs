//! Decoded frames equal the ffmpeg command line's, byte for byte: `ffmpeg -i VIDEO -f rawvideo -pix_fmt rgb24 -`
//! (the frames of `decode_uniform`/`decode_frames`, numbered as the CLI writes them) and the same with
//! `-vf fps=8` (`stream_at_fps`), on the sample videos in media/ and on videos this test makes with the CLI:
//! 10-bit, full range (JPEG and H.264 flagged), BT.709, 4:4:4, B-frames, rotation metadata, variable frame rate
//! with and without an audio stream (the CLI repeats and drops frames to keep a constant rate).
#![cfg(feature = "video")]
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

use emoclip::media::{decode_frames, decode_uniform, stream_at_fps, uniform_indices};
use image::RgbImage;

use crate::common;

/// The CLI's RGB frames of `video`, read one at a time from its stdout (stderr is drained by a thread).
struct CliFrames {
    child: Child,
    stdout: ChildStdout,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl CliFrames {
    fn spawn(video: &Path, vf: Option<&str>) -> Self {
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-v", "error", "-nostdin", "-i"]).arg(video);
        if let Some(vf) = vf {
            cmd.args(["-vf", vf]);
        }
        cmd.args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]);
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot run the ffmpeg CLI");
        let stdout = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        CliFrames { child, stdout, stderr: Some(stderr) }
    }

    /// The next frame of `bytes` bytes, or `None` at the end of the output.
    fn next(&mut self, bytes: usize) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; bytes];
        let mut got = 0;
        while got < bytes {
            match self.stdout.read(&mut buf[got..]).unwrap() {
                0 => {
                    assert_eq!(got, 0, "the CLI's output ends inside a frame (frame size differs?)");
                    return None;
                }
                n => got += n,
            }
        }
        Some(buf)
    }

    /// Read the rest, wait for the CLI, check it succeeded; returns the number of frames left.
    fn finish(mut self, bytes: usize) -> usize {
        let mut left = 0;
        while self.next(bytes).is_some() {
            left += 1;
        }
        let status = self.child.wait().unwrap();
        let err = self.stderr.take().unwrap().join().unwrap();
        assert!(status.success(), "ffmpeg failed: {err}");
        left
    }
}

/// (max |difference|, number of differing bytes) between our frame and the CLI's.
fn diff(ours: &RgbImage, cli: &[u8]) -> (u8, usize) {
    assert_eq!(ours.as_raw().len(), cli.len(), "frame size differs from the CLI's");
    ours.as_raw().iter().zip(cli).fold((0, 0), |(m, n), (a, b)| (m.max(a.abs_diff(*b)), n + usize::from(a != b)))
}

/// `decode_uniform(8)` (and every frame when `all`) against the CLI. Returns (our frame count, the CLI's, max |diff|).
fn check_plain(video: &Path, all: bool) -> (usize, usize, u8) {
    let clip = decode_uniform(video, 8).unwrap_or_else(|e| panic!("{e}"));
    let n = clip.total_frames;
    assert_eq!(clip.indices, uniform_indices(n, 8));
    let (w, h) = (clip.frames[0].width(), clip.frames[0].height());
    let bytes = (w * h * 3) as usize;
    let every = if all { Some(decode_frames(video, &(0..n).collect::<Vec<_>>()).unwrap()) } else { None };
    let mut cli = CliFrames::spawn(video, None);
    let (mut worst, mut differing, mut k) = (0u8, 0usize, 0usize);
    while let Some(frame) = cli.next(bytes) {
        for (j, _) in clip.indices.iter().enumerate().filter(|(_, &i)| i == k) {
            let (d, m) = diff(&clip.frames[j], &frame);
            worst = worst.max(d);
            differing += m;
        }
        if let Some(every) = every.as_ref().filter(|_| k < n) {
            let (d, m) = diff(&every.frames[k], &frame);
            worst = worst.max(d);
            differing += m;
        }
        k += 1;
    }
    k += cli.finish(bytes);
    let name = video.file_name().unwrap().to_string_lossy();
    eprintln!(
        "{name}: {n} frames (CLI {k}), {w}x{h}, {} compared: max |diff| {worst}, {differing} bytes differ",
        if all { "all".to_string() } else { format!("8 sampled {:?}", clip.indices) }
    );
    (n, k, worst)
}

/// `stream_at_fps(8)` against `ffmpeg -vf fps=8`, every frame. Returns (our frame count, the CLI's, max |diff|).
fn check_fps(video: &Path) -> (usize, usize, u8) {
    let mut cli: Option<CliFrames> = None;
    let mut bytes = 0;
    let (mut worst, mut cli_n) = (0u8, 0usize);
    let (n, _, _) = stream_at_fps(video, 8.0, &mut |k, t, img| {
        assert!((t - k as f64 / 8.0).abs() < 1e-12);
        bytes = img.as_raw().len();
        let c = cli.get_or_insert_with(|| CliFrames::spawn(video, Some("fps=8")));
        if let Some(frame) = c.next(bytes) {
            worst = worst.max(diff(&img, &frame).0);
            cli_n += 1;
        }
        Ok(())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    cli_n += cli.map_or(0, |c| c.finish(bytes.max(1)));
    eprintln!(
        "{} at 8 fps: {n} frames (CLI {cli_n}): max |diff| {worst}",
        video.file_name().unwrap().to_string_lossy()
    );
    (n, cli_n, worst)
}

fn make(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let o = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-y"])
        .args(args)
        .arg(&out)
        .stdin(Stdio::null())
        .output()
        .expect("cannot run the ffmpeg CLI");
    assert!(o.status.success(), "making {name}: {}", String::from_utf8_lossy(&o.stderr));
    out
}

/// Small videos the CLI makes: each exercises one conversion or timing path of the CLI.
fn generated(dir: &Path) -> Vec<PathBuf> {
    const SRC: &[&str] = &["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=1.6"];
    let x264 = |extra: &[&str]| -> Vec<String> {
        SRC.iter().chain(extra).chain(&["-c:v", "libx264", "-preset", "ultrafast"]).map(|s| s.to_string()).collect()
    };
    let cases: Vec<(&str, Vec<String>)> = vec![
        // 10-bit 4:2:0 (swscale's generic path, not the 8-bit fast path)
        ("ten_bit.mkv", x264(&["-pix_fmt", "yuv420p10le"])),
        // full range: JPEG (yuvj420p) and H.264 flagged full range
        (
            "full_range_mjpeg.avi",
            SRC.iter().chain(&["-pix_fmt", "yuvj420p", "-c:v", "mjpeg", "-q:v", "3"]).map(|s| s.to_string()).collect(),
        ),
        (
            "full_range_ffv1.mkv",
            SRC.iter()
                .chain(&["-pix_fmt", "yuv420p", "-color_range", "pc", "-c:v", "ffv1"])
                .map(|s| s.to_string())
                .collect(),
        ),
        // BT.709 matrix
        (
            "bt709.mp4",
            x264(&["-pix_fmt", "yuv420p", "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709"]),
        ),
        // 4:4:4
        ("yuv444.mkv", x264(&["-pix_fmt", "yuv444p"])),
        // B-frames (negative dts, edit list), encoded with a real preset
        (
            "bframes.mp4",
            SRC.iter().chain(&["-pix_fmt", "yuv420p", "-c:v", "libx264", "-bf", "3"]).map(|s| s.to_string()).collect(),
        ),
        // variable frame rate: a 0.2 s gap after frame 10, 50 fps from frame 25 on, jitter; one stream (-vsync
        // vscfr) ...
        (
            "vfr.mkv",
            x264(&[
                "-pix_fmt",
                "yuv420p",
                "-vf",
                "setpts='N/25/TB+if(gt(N,10),0.2/TB,0)-if(gt(N,24),(N-24)*0.02/TB,0)+if(eq(mod(N,7),3),0.017/TB,0)'",
                "-fps_mode",
                "passthrough",
            ]),
        ),
        // ... and with an audio stream (-vsync cfr: a late first frame is repeated), starting at 0.3 s
        (
            "vfr_audio.mkv",
            SRC.iter()
                .chain(&[
                    "-f",
                    "lavfi",
                    "-i",
                    "sine=duration=1.6",
                    "-pix_fmt",
                    "yuv420p",
                    "-vf",
                    "setpts='0.3/TB+N/25/TB+if(gt(N,20),0.13/TB,0)+if(eq(mod(N,5),2),-0.021/TB,0)'",
                    "-fps_mode",
                    "passthrough",
                    "-c:v",
                    "libx264",
                    "-preset",
                    "ultrafast",
                    "-c:a",
                    "pcm_s16le",
                ])
                .map(|s| s.to_string())
                .collect(),
        ),
    ];
    let mut videos: Vec<PathBuf> = cases
        .into_iter()
        .map(|(name, args)| make(dir, name, &args.iter().map(String::as_str).collect::<Vec<_>>()))
        .collect();
    // display-matrix rotation (the CLI inserts transpose, or hflip+vflip)
    let plain = make(dir, "plain.mp4", &x264(&["-pix_fmt", "yuv420p"]).iter().map(String::as_str).collect::<Vec<_>>());
    for deg in [90.0, 180.0] {
        let out = dir.join(format!("rotated{deg}.mp4"));
        remux_rotated(&plain, &out, deg);
        videos.push(out);
    }
    // the committed H.264 clip the other decode tests use
    videos.push(common::fixture("media/clip_vtest40.mp4"));
    videos
}

/// Stream-copy `src` into `dst` with a display matrix rotating by `degrees` (the CLI of FFmpeg 5.1 has no
/// option for it).
fn remux_rotated(src: &Path, dst: &Path, degrees: f64) {
    use ffmpeg_next as ff;
    ff::init().unwrap();
    let mut ictx = ff::format::input(src).unwrap();
    let ist = ictx.streams().best(ff::media::Type::Video).unwrap();
    let (ist_index, ist_tb, params) = (ist.index(), ist.time_base(), ist.parameters());
    let mut octx = ff::format::output(dst).unwrap();
    {
        let mut ost = octx.add_stream(ff::encoder::find(ff::codec::Id::None)).unwrap();
        ost.set_parameters(params);
        // SAFETY: valid output stream; the side data block is 9 int32 values, written by av_display_rotation_set.
        unsafe {
            (*ost.parameters().as_mut_ptr()).codec_tag = 0;
            let sd = ff::ffi::av_stream_new_side_data(
                ost.as_mut_ptr(),
                ff::ffi::AVPacketSideDataType::AV_PKT_DATA_DISPLAYMATRIX,
                36,
            );
            assert!(!sd.is_null());
            ff::ffi::av_display_rotation_set(sd as *mut i32, degrees);
        }
    }
    octx.write_header().unwrap();
    let ost_tb = octx.stream(0).unwrap().time_base();
    for (stream, mut packet) in ictx.packets() {
        if stream.index() != ist_index {
            continue;
        }
        packet.rescale_ts(ist_tb, ost_tb);
        packet.set_position(-1);
        packet.set_stream(0);
        packet.write_interleaved(&mut octx).unwrap();
    }
    octx.write_trailer().unwrap();
}

/// Every frame of each generated video (and of the committed clip) equals the CLI's (count and bytes), plain and
/// at 8 fps.
#[test]
fn generated_videos_decode_like_the_cli() {
    if !common::have_ffmpeg_cli() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for video in generated(dir.path()) {
        let name = video.file_name().unwrap().to_string_lossy().to_string();
        let (n, cli_n, d) = check_plain(&video, true);
        if (n, d) != (cli_n, 0) {
            failures.push(format!("{name}: {n} frames vs CLI {cli_n}, max |diff| {d}"));
        }
        let (n, cli_n, d) = check_fps(&video);
        if (n, d) != (cli_n, 0) {
            failures.push(format!("{name} at 8 fps: {n} frames vs CLI {cli_n}, max |diff| {d}"));
        }
    }
    assert!(failures.is_empty(), "differs from the ffmpeg CLI:\n{}", failures.join("\n"));
}

/// The sample videos (media/): frame count and the 8 uniformly sampled frames equal the CLI's (every frame of
/// the small carphone clip), and every frame at 8 fps.
#[test]
fn sample_videos_decode_like_the_cli() {
    if !common::have_ffmpeg_cli() {
        return;
    }
    let mut failures = Vec::new();
    for (name, all) in [("Megamind.avi", false), ("vtest.avi", false), ("carphone_pristine.mp4", true)] {
        let Some(video) = common::sample_media(name) else { continue };
        let (n, cli_n, d) = check_plain(&video, all);
        if (n, d) != (cli_n, 0) {
            failures.push(format!("{name}: {n} frames vs CLI {cli_n}, max |diff| {d}"));
        }
        let (n, cli_n, d) = check_fps(&video);
        if (n, d) != (cli_n, 0) {
            failures.push(format!("{name} at 8 fps: {n} frames vs CLI {cli_n}, max |diff| {d}"));
        }
    }
    assert!(failures.is_empty(), "differs from the ffmpeg CLI:\n{}", failures.join("\n"));
}
