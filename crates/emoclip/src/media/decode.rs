//! Image loading and video decoding (ffmpeg-next); mirrors the official frame loading of src/datasets/meld.py (`Image.open(..).convert('RGB')` of frames extracted with ffmpeg, uniform sampling).
//!
//! Video: pass 1 demuxes the best video stream and counts its packets (no decoding); pass 2
//! decodes every frame in order and converts to RGB only the uniformly sampled ones, so memory
//! holds `k` frames whatever the length. If the decoded count differs from the packet count,
//! the indices are recomputed over the decoded count and a third pass extracts them, so the
//! sampling is always over the frames that actually decode. YUV → RGB uses swscale with
//! `SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT` and the frame's colour matrix/range,
//! like `ffmpeg -vf scale=flags=bicubic+accurate_rnd+full_chroma_int,format=rgb24`.
//! Rotation metadata is not applied (frames come out as stored), and neither is EXIF
//! orientation for images (PIL's `Image.open` does not apply it either).
use std::path::Path;

use image::RgbImage;

use crate::{Error, Result};

/// Frames sampled from a video.
#[derive(Debug, Clone)]
pub struct DecodedClip {
    /// The sampled frames, in the order of `indices`.
    pub frames: Vec<RgbImage>,
    /// Original frame index (0-based, decoding order) of each sampled frame.
    pub indices: Vec<usize>,
    /// Number of frames that decoded.
    pub total_frames: usize,
    pub width: u32,
    pub height: u32,
    /// Average frame rate of the stream (0 when unknown).
    pub fps: f64,
}

/// Check that `path` is an existing, non-empty regular file, with errors that say what to do.
pub(crate) fn check_file(path: &Path) -> Result<u64> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::media(
            path,
            "file not found; check the path (relative paths are resolved against the current directory)",
        ),
        std::io::ErrorKind::PermissionDenied => {
            Error::media(path, "permission denied; make the file readable (chmod +r)")
        }
        _ => Error::io(path, e),
    })?;
    if meta.is_dir() {
        return Err(Error::media(path, "is a directory; pass a media file inside it"));
    }
    if meta.len() == 0 {
        return Err(Error::media(
            path,
            "file is empty (0 bytes); the download or copy was probably interrupted, fetch it again",
        ));
    }
    Ok(meta.len())
}

/// Load an image as 8-bit RGB (alpha dropped and grey expanded, like PIL `.convert('RGB')`).
/// The format is detected from the content, not the extension.
pub fn load_image(path: &Path) -> Result<RgbImage> {
    check_file(path)?;
    let reader = image::ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?;
    if reader.format().is_none() {
        return Err(Error::media(
            path,
            "not a recognised image (supported: JPEG, PNG, BMP, WebP); convert it, e.g. `ffmpeg -i FILE out.png`",
        ));
    }
    let img = reader.decode().map_err(|e| {
        Error::media(
            path,
            format!("cannot decode image ({e}); the file is corrupt or truncated, re-export or re-download it"),
        )
    })?;
    Ok(img.to_rgb8())
}

/// Sample `k` frames uniformly (`np.linspace(0, n-1, k, dtype=int)`) over all `n` decodable
/// frames of the video. Fails with [`Error::TooFewFrames`] when `n < k`.
pub fn decode_uniform(path: &Path, k: usize) -> Result<DecodedClip> {
    decode_uniform_min(path, k, k)
}

/// Like [`decode_uniform`], but accepts clips with at least `min_frames` frames: with
/// `min_frames <= n < k` the indices repeat, as the official MELD loader does for short clips.
pub fn decode_uniform_min(path: &Path, k: usize, min_frames: usize) -> Result<DecodedClip> {
    check_file(path)?;
    #[cfg(feature = "video")]
    {
        video::decode_uniform(path, k, min_frames.max(1))
    }
    #[cfg(not(feature = "video"))]
    {
        let _ = (k, min_frames);
        Err(no_video(path))
    }
}

/// Streams the video's frames at `fps` frames per second (8 for EmotionCLIP pre-training data) to
/// `sink(k, time_s, frame)` in order, one frame in memory at a time. Returns (frames emitted, source fps,
/// decoded source frames). Frames already handed to `sink` stay handed over if decoding later fails.
pub fn stream_at_fps(
    path: &Path,
    fps: f64,
    sink: &mut dyn FnMut(usize, f64, RgbImage) -> Result<()>,
) -> Result<(usize, f64, usize)> {
    check_file(path)?;
    #[cfg(feature = "video")]
    {
        video::stream_at_fps(path, fps, sink)
    }
    #[cfg(not(feature = "video"))]
    {
        let _ = (fps, sink);
        Err(no_video(path))
    }
}

/// Decode the given original frame indices (0-based, decoding order; any order, repeats
/// allowed), e.g. for a sampling strategy other than uniform. Fails with
/// [`Error::TooFewFrames`] when the video has no frame at the largest index.
pub fn decode_frames(path: &Path, indices: &[usize]) -> Result<DecodedClip> {
    check_file(path)?;
    #[cfg(feature = "video")]
    {
        let mut sorted = indices.to_vec();
        sorted.sort_unstable();
        let need = sorted.last().map_or(1, |m| m + 1);
        let mut clip = video::decode_with(path, need, &|_| sorted.clone())?;
        // back to the caller's order: clip.frames follows `sorted`
        let frames = indices
            .iter()
            .map(|i| sorted.binary_search(i).map(|j| clip.frames[j].clone()))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| Error::media(path, "internal error: requested frame missing"))?;
        clip.frames = frames;
        clip.indices = indices.to_vec();
        Ok(clip)
    }
    #[cfg(not(feature = "video"))]
    {
        let _ = indices;
        Err(no_video(path))
    }
}

#[cfg(not(feature = "video"))]
fn no_video(path: &Path) -> Error {
    Error::media(
        path,
        "video decoding is not available: emoclip was built without its `video` feature; rebuild with default features (needs FFmpeg's libav* development files and clang), or pass extracted frames as images",
    )
}

#[cfg(feature = "video")]
mod video {
    use std::path::Path;
    use std::sync::Once;

    use ff::format::stream::Disposition;
    use ff::media::Type;
    use ff::software::scaling;
    use ffmpeg_next as ff;
    use image::RgbImage;

    use super::DecodedClip;
    use crate::media::sample::uniform_indices;
    use crate::{Error, Result};

    /// A decoded count below this fraction of the header's promise, together with a time
    /// coverage below it, is treated as truncation.
    const TRUNCATION_RATIO: f64 = 0.9;

    fn init() {
        static INIT: Once = Once::new();
        INIT.call_once(|| {
            // Errors are reported through our own messages; keep libav quiet on stderr.
            let _ = ff::init();
            ff::util::log::set_level(ff::util::log::Level::Fatal);
        });
    }

    fn open(path: &Path) -> Result<ff::format::context::Input> {
        ff::format::input(path).map_err(|e| {
            Error::media(
                path,
                format!(
                    "cannot open as a video ({e}); the file is not a supported video or is corrupt — \
                     check it with `ffprobe FILE`, re-download it, or re-encode it with `ffmpeg -i FILE -c:v libx264 out.mp4`"
                ),
            )
        })
    }

    struct StreamInfo {
        index: usize,
        header_frames: i64,
        /// Declared duration in seconds (stream, else container), if known.
        duration: Option<f64>,
        start: f64,
        time_base: f64,
        fps: f64,
        parameters: ff::codec::Parameters,
    }

    fn pick_stream(path: &Path, ictx: &ff::format::context::Input) -> Result<StreamInfo> {
        let usable = |s: &ff::format::stream::Stream| {
            s.parameters().medium() == Type::Video && !s.disposition().contains(Disposition::ATTACHED_PIC)
        };
        let stream = ictx
            .streams()
            .best(Type::Video)
            .filter(|s| usable(s))
            .or_else(|| ictx.streams().find(|s| usable(s)))
            .ok_or_else(|| Error::media(path, "no video stream found: the file is audio-only, or its header is truncated or damaged; check it with `ffprobe FILE`, re-download it, or pass a video file (images go through load_image)"))?;
        let tb = f64::from(stream.time_base());
        let duration = if stream.duration() > 0 && tb > 0.0 {
            Some(stream.duration() as f64 * tb)
        } else if ictx.duration() > 0 {
            Some(ictx.duration() as f64 / f64::from(ff::ffi::AV_TIME_BASE))
        } else {
            None
        };
        let rate = |r: ff::Rational| {
            if r.numerator() > 0 && r.denominator() > 0 {
                f64::from(r)
            } else {
                0.0
            }
        };
        let fps = match rate(stream.avg_frame_rate()) {
            f if f > 0.0 => f,
            _ => rate(stream.rate()),
        };
        let start = if stream.start_time() != ff::ffi::AV_NOPTS_VALUE { stream.start_time() as f64 * tb } else { 0.0 };
        Ok(StreamInfo {
            index: stream.index(),
            header_frames: stream.frames(),
            duration,
            start,
            time_base: tb,
            fps,
            parameters: stream.parameters(),
        })
    }

    /// Pass 1: stream information and the number of video packets, without decoding.
    fn count_packets(path: &Path) -> Result<(StreamInfo, usize)> {
        let mut ictx = open(path)?;
        let info = pick_stream(path, &ictx)?;
        let mut n = 0usize;
        let mut packet = ff::Packet::empty();
        // Any read error ends the stream, as in the ffmpeg CLI.
        while packet.read(&mut ictx).is_ok() {
            if packet.stream() == info.index {
                n += 1;
            }
        }
        Ok((info, n))
    }

    struct DecodePass {
        /// frames[j] = RGB of original frame indices[j]
        frames: Vec<Option<RgbImage>>,
        decoded: usize,
        /// end time (seconds) of the last decoded frame, if timestamps were present
        covered_until: Option<f64>,
        first_size: Option<(u32, u32)>,
        errors: usize,
        first_error: Option<String>,
    }

    /// Colour conversion to RGB24, mirroring ffmpeg's scale filter: the frame's own matrix
    /// (unknown → BT.601) and range.
    struct Converter {
        ctx: Option<(scaling::Context, ff::format::Pixel, u32, u32, i32, i32)>,
    }

    impl Converter {
        fn convert(&mut self, path: &Path, frame: &ff::frame::Video) -> Result<RgbImage> {
            let (fmt, w, h) = (frame.format(), frame.width(), frame.height());
            // SAFETY: reading plain enum fields of a valid AVFrame.
            let (space, range) = unsafe { ((*frame.as_ptr()).colorspace as i32, (*frame.as_ptr()).color_range as i32) };
            let fresh = !matches!(&self.ctx, Some((_, f, cw, ch, s, r)) if *f == fmt && *cw == w && *ch == h && *s == space && *r == range);
            if fresh {
                let flags = scaling::Flags::BICUBIC | scaling::Flags::ACCURATE_RND | scaling::Flags::FULL_CHR_H_INT;
                let mut ctx = scaling::Context::get(fmt, w, h, ff::format::Pixel::RGB24, w, h, flags).map_err(|e| {
                    Error::media(
                        path,
                        format!("cannot convert {fmt:?} {w}x{h} frames to RGB ({e}); re-encode the video to yuv420p"),
                    )
                })?;
                set_colorspace(&mut ctx, space, range);
                self.ctx = Some((ctx, fmt, w, h, space, range));
            }
            let Some((ctx, ..)) = self.ctx.as_mut() else {
                return Err(Error::media(path, "internal error: no colour converter"));
            };
            let mut rgb = ff::frame::Video::empty();
            ctx.run(frame, &mut rgb).map_err(|e| {
                Error::media(path, format!("colour conversion failed ({e}); re-encode the video to yuv420p"))
            })?;
            let stride = rgb.stride(0);
            let data = rgb.data(0);
            let row = w as usize * 3;
            let mut buf = Vec::with_capacity(row * h as usize);
            for y in 0..h as usize {
                buf.extend_from_slice(&data[y * stride..y * stride + row]);
            }
            RgbImage::from_raw(w, h, buf).ok_or_else(|| Error::media(path, "internal error: RGB buffer size"))
        }
    }

    /// Like vf_scale (FFmpeg 5.1, `in_color_matrix=auto`): input matrix from the frame's
    /// colour space (unknown or unsupported → BT.601), input range from the frame when stated.
    fn set_colorspace(ctx: &mut scaling::Context, space: i32, range: i32) {
        use ff::ffi;
        let space = if (1..=10).contains(&space) && space != 8 { space } else { ffi::SWS_CS_ITU601 };
        // SAFETY: ctx is a valid SwsContext; the out-pointers are valid locals; the coefficient
        // tables returned by swscale are static.
        unsafe {
            let (mut inv, mut tab) = (std::ptr::null_mut(), std::ptr::null_mut());
            let (mut src_full, mut dst_full, mut bri, mut con, mut sat) = (0, 0, 0, 0, 0);
            if ffi::sws_getColorspaceDetails(
                ctx.as_mut_ptr(),
                &mut inv,
                &mut src_full,
                &mut tab,
                &mut dst_full,
                &mut bri,
                &mut con,
                &mut sat,
            ) < 0
            {
                return; // not a YUV input: nothing to set
            }
            let coeffs = ffi::sws_getCoefficients(space);
            if range == ffi::AVColorRange::AVCOL_RANGE_JPEG as i32 {
                src_full = 1;
            } else if range == ffi::AVColorRange::AVCOL_RANGE_MPEG as i32 {
                src_full = 0;
            }
            ffi::sws_setColorspaceDetails(ctx.as_mut_ptr(), coeffs, src_full, coeffs, dst_full, bri, con, sat);
        }
    }

    /// Pass 2/3: decode everything, keep RGB copies of frames at `indices`.
    fn decode_pass(path: &Path, indices: &[usize]) -> Result<DecodePass> {
        decode_pass_with(path, indices, None)
    }

    /// One decoding pass; selected frames go to `sink` (index, RGB) when given, else into `frames`.
    fn decode_pass_with(
        path: &Path,
        indices: &[usize],
        mut sink: Option<&mut dyn FnMut(usize, RgbImage) -> Result<()>>,
    ) -> Result<DecodePass> {
        let mut ictx = open(path)?;
        let info = pick_stream(path, &ictx)?;
        let mut cctx = ff::codec::context::Context::from_parameters(info.parameters.clone()).map_err(|e| {
            Error::media(
                path,
                format!(
                    "unsupported video codec parameters ({e}); re-encode with `ffmpeg -i FILE -c:v libx264 out.mp4`"
                ),
            )
        })?;
        cctx.set_threading(ff::threading::Config { kind: ff::threading::Type::Frame, count: 0, ..Default::default() });
        let mut decoder = cctx.decoder().video().map_err(|e| {
            Error::media(path, format!("no decoder for this video codec in the linked FFmpeg ({e}); re-encode with `ffmpeg -i FILE -c:v libx264 out.mp4`"))
        })?;
        let mut pass = DecodePass {
            frames: if sink.is_some() { Vec::new() } else { vec![None; indices.len()] },
            decoded: 0,
            covered_until: None,
            first_size: None,
            errors: 0,
            first_error: None,
        };
        let mut conv = Converter { ctx: None };
        let frame_dur = if info.fps > 0.0 { 1.0 / info.fps } else { 0.0 };

        let mut receive = |decoder: &mut ff::decoder::Video, pass: &mut DecodePass| -> Result<()> {
            let mut frame = ff::frame::Video::empty();
            while decoder.receive_frame(&mut frame).is_ok() {
                let i = pass.decoded;
                pass.decoded += 1;
                pass.first_size.get_or_insert((frame.width(), frame.height()));
                if let Some(ts) = frame.timestamp() {
                    let t = ts as f64 * info.time_base + frame_dur;
                    pass.covered_until = Some(pass.covered_until.map_or(t, |c: f64| c.max(t)));
                }
                if indices.binary_search(&i).is_ok() {
                    let rgb = conv.convert(path, &frame)?;
                    if let Some(sink) = sink.as_mut() {
                        sink(i, rgb)?;
                        continue;
                    }
                    for (slot, _) in pass.frames.iter_mut().zip(indices).filter(|(_, &j)| j == i) {
                        *slot = Some(rgb.clone());
                    }
                }
            }
            Ok(())
        };

        let mut packet = ff::Packet::empty();
        while packet.read(&mut ictx).is_ok() {
            if packet.stream() != info.index {
                continue;
            }
            if let Err(e) = decoder.send_packet(&packet) {
                // Corrupt packet: skip it, like the ffmpeg CLI does.
                pass.errors += 1;
                pass.first_error.get_or_insert_with(|| e.to_string());
            }
            receive(&mut decoder, &mut pass)?;
        }
        let _ = decoder.send_eof();
        receive(&mut decoder, &mut pass)?;
        Ok(pass)
    }

    pub(super) fn decode_uniform(path: &Path, k: usize, min_frames: usize) -> Result<DecodedClip> {
        decode_with(path, min_frames, &|n| uniform_indices(n, k))
    }

    /// Decode the frames `pick(n)` chooses (sorted, repeats allowed) for a clip of `n` frames.
    /// Streams the frames at `fps` (the frame shown at each time k/fps, as ffmpeg's `fps` filter picks
    /// them) to `sink(k, t, frame)`, holding one frame at a time. Returns (frames emitted, source fps,
    /// decoded frame count).
    pub(super) fn stream_at_fps(
        path: &Path,
        fps: f64,
        sink: &mut dyn FnMut(usize, f64, RgbImage) -> Result<()>,
    ) -> Result<(usize, f64, usize)> {
        init();
        let (info, packets) = count_packets(path)?;
        if info.fps <= 0.0 {
            return Err(Error::media(
                path,
                "the video stream has no frame rate; re-encode it with `ffmpeg -i FILE -r 25 out.mp4`",
            ));
        }
        // Output frame k shows source frame round(k / fps * src_fps) (nearest in time).
        let mut map: Vec<(usize, usize)> = Vec::new();
        let mut k = 0usize;
        loop {
            let src = ((k as f64 / fps) * info.fps).round() as usize;
            if src >= packets {
                break;
            }
            map.push((src, k));
            k += 1;
        }
        let mut indices: Vec<usize> = map.iter().map(|m| m.0).collect();
        indices.dedup();
        let mut emitted = 0usize;
        let mut cursor = 0usize;
        let mut on_frame = |i: usize, rgb: RgbImage| -> Result<()> {
            while cursor < map.len() && map[cursor].0 < i {
                cursor += 1;
            }
            while cursor < map.len() && map[cursor].0 == i {
                let k = map[cursor].1;
                sink(k, k as f64 / fps, rgb.clone())?;
                emitted += 1;
                cursor += 1;
            }
            Ok(())
        };
        let pass = decode_pass_with(path, &indices, Some(&mut on_frame))?;
        if pass.decoded == 0 {
            return Err(Error::media(
                path,
                "no video frame could be decoded; the file is corrupt or truncated — re-download it",
            ));
        }
        if info.header_frames > 0 && (pass.decoded as f64) < TRUNCATION_RATIO * info.header_frames as f64 {
            let covered = pass.covered_until.map(|t| t - info.start);
            if matches!((info.duration, covered), (Some(d), Some(c)) if c < TRUNCATION_RATIO * d) {
                return Err(Error::media(
                    path,
                    format!(
                        "truncated or corrupt video: {} of {} promised frames decoded; re-download it",
                        pass.decoded, info.header_frames
                    ),
                ));
            }
        }
        Ok((emitted, info.fps, pass.decoded))
    }

    pub(super) fn decode_with(
        path: &Path,
        min_frames: usize,
        pick: &dyn Fn(usize) -> Vec<usize>,
    ) -> Result<DecodedClip> {
        init();
        let (info, packets) = count_packets(path)?;
        let mut indices = pick(packets);
        let mut pass = decode_pass(path, &indices)?;
        let n = pass.decoded;

        if n == 0 {
            let why = pass.first_error.as_deref().map(|e| format!(" (decoder: {e})")).unwrap_or_default();
            let promised = if info.header_frames > 0 {
                format!(" although the container promises {} frames", info.header_frames)
            } else {
                String::new()
            };
            return Err(Error::media(
                path,
                format!("no video frame could be decoded from {packets} packet(s){promised}{why}; the file is corrupt or truncated — re-download it or re-encode it with `ffmpeg -i FILE -c:v libx264 out.mp4`"),
            ));
        }
        // Truncation: far fewer frames than the header promises AND the decoded frames stop well
        // before the declared duration (containers with dropped-frame placeholders, e.g. some
        // AVIs, promise more frames than they hold but still cover their duration).
        if info.header_frames > 0 && (n as f64) < TRUNCATION_RATIO * info.header_frames as f64 {
            let covered = pass.covered_until.map(|t| t - info.start);
            let short_in_time = match (info.duration, covered) {
                (Some(d), Some(c)) => c < TRUNCATION_RATIO * d,
                _ => true,
            };
            if short_in_time {
                let dur = info.duration.map(|d| format!(" ({d:.2} s)")).unwrap_or_default();
                let cov = covered.map(|c| format!(", up to {c:.2} s")).unwrap_or_default();
                return Err(Error::media(
                    path,
                    format!(
                        "truncated or corrupt video: the container promises {} frames{dur} but only {n} decoded{cov}; \
                         the file is probably incomplete (interrupted download or copy) — re-download it, or keep the readable part with \
                         `ffmpeg -i FILE -c:v libx264 fixed.mp4`",
                        info.header_frames
                    ),
                ));
            }
        }
        if pass.errors > 0 {
            tracing::warn!(
                path = %path.display(),
                failed_packets = pass.errors,
                first_error = pass.first_error.as_deref().unwrap_or(""),
                "some packets failed to decode and were skipped"
            );
        }
        if n < min_frames {
            return Err(Error::TooFewFrames { path: path.to_path_buf(), got: n, need: min_frames });
        }
        if n != packets {
            tracing::warn!(path = %path.display(), packets, decoded = n, "decoded frame count differs from packet count; resampling over decoded frames");
            let again = pick(n);
            if again != indices {
                indices = again;
                pass = decode_pass(path, &indices)?;
                if pass.decoded != n {
                    return Err(Error::media(
                        path,
                        format!("decoding is not reproducible ({n} then {} frames); re-encode the video with `ffmpeg -i FILE -c:v libx264 out.mp4`", pass.decoded),
                    ));
                }
            }
        }
        let frames: Vec<RgbImage> = pass.frames.into_iter().flatten().collect();
        if frames.len() != indices.len() {
            return Err(Error::media(
                path,
                format!(
                    "could not extract {} of the sampled frames; re-encode the video",
                    indices.len() - frames.len()
                ),
            ));
        }
        let (width, height) = pass.first_size.unwrap_or((0, 0));
        Ok(DecodedClip { frames, indices, total_frames: n, width, height, fps: info.fps })
    }
}
