//! The ffmpeg command line's filter graph for one video stream, built as FFmpeg 5.1 `fftools/ffmpeg_filter.c`
//! builds it (`configure_input_video_filter`, `configure_output_video_filter`): `buffer` → autorotate
//! (`transpose`/`hflip`/`vflip`/`rotate` from the display matrix) → the user filter (`-vf`, e.g. `fps=8`) →
//! `format=rgb24` (`-pix_fmt rgb24`) → `buffersink`. libavfilter inserts the scale filter that converts to
//! RGB with its defaults (bicubic, no accurate rounding, the frame's colour matrix and range), so the RGB is
//! the CLI's bit for bit, whatever swscale code path the linked FFmpeg takes.
use std::path::Path;

use ffmpeg_next as ff;
use image::RgbImage;

use super::cli_vsync::Q;
use crate::{Error, Result};

/// What the graph is built for; a frame that differs in any of these rebuilds it (`ifilter_send_frame`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    format: i32,
    width: u32,
    height: u32,
    display_matrix: Option<[i32; 9]>,
}

/// Stream-level facts the graph needs.
#[derive(Debug, Clone)]
pub(crate) struct GraphInput<'a> {
    /// The input stream's time base (the `buffer` source's).
    pub time_base: Q,
    /// `av_guess_frame_rate` of the stream; `None` when unknown.
    pub frame_rate: Option<Q>,
    /// The stream's display matrix side data (used when frames carry none).
    pub stream_matrix: Option<[i32; 9]>,
    /// A user filter chain between autorotation and the RGB conversion (`-vf`), e.g. `fps=8`.
    pub user_filter: Option<&'a str>,
}

/// A configured graph; push decoded frames, pull RGB frames.
pub(crate) struct CliGraph {
    graph: ff::filter::Graph,
    key: Key,
}

fn frame_matrix(frame: &ff::frame::Video) -> Option<[i32; 9]> {
    let sd = frame.side_data(ff::util::frame::side_data::Type::DisplayMatrix)?;
    let d = sd.data();
    (d.len() >= 36)
        .then(|| std::array::from_fn(|i| i32::from_ne_bytes([d[4 * i], d[4 * i + 1], d[4 * i + 2], d[4 * i + 3]])))
}

/// The autorotation filters of `configure_input_video_filter` (with `get_rotation` of fftools/cmdutils.c).
fn autorotate(m: Option<&[i32; 9]>) -> Vec<String> {
    let theta = match m {
        // SAFETY: av_display_rotation_get reads 9 int32 values from a valid array.
        Some(m) => -unsafe { ff::ffi::av_display_rotation_get(m.as_ptr()) }.round(),
        None => 0.0,
    };
    let theta = theta - 360.0 * (theta / 360.0 + 0.9 / 360.0).floor();
    let Some(m) = m else { return Vec::new() };
    if (theta - 90.0).abs() < 1.0 {
        vec![format!("transpose={}", if m[3] > 0 { "cclock_flip" } else { "clock" })]
    } else if (theta - 180.0).abs() < 1.0 {
        let mut v = Vec::new();
        if m[0] < 0 {
            v.push("hflip".to_string());
        }
        if m[4] < 0 {
            v.push("vflip".to_string());
        }
        v
    } else if (theta - 270.0).abs() < 1.0 {
        vec![format!("transpose={}", if m[3] < 0 { "clock_flip" } else { "cclock" })]
    } else if theta.abs() > 1.0 {
        vec![format!("rotate={theta:.6}*PI/180")]
    } else if theta.abs() < 1.0 && m[4] < 0 {
        vec!["vflip".to_string()]
    } else {
        Vec::new()
    }
}

impl CliGraph {
    /// Whether `frame` can go through this graph without rebuilding it.
    pub(crate) fn fits(&self, frame: &ff::frame::Video) -> bool {
        self.key == Self::key(frame)
    }

    fn key(frame: &ff::frame::Video) -> Key {
        // SAFETY: reading a plain field of a valid AVFrame.
        let format = unsafe { (*frame.as_ptr()).format };
        Key { format, width: frame.width(), height: frame.height(), display_matrix: frame_matrix(frame) }
    }

    /// Build the graph for frames like `frame`.
    pub(crate) fn new(path: &Path, frame: &ff::frame::Video, input: &GraphInput) -> Result<Self> {
        let fail = |what: &str, e: ff::Error| {
            Error::media(
                path,
                format!(
                    "cannot set up the RGB conversion ({what}: {e}); re-encode the video with `ffmpeg -i FILE -c:v libx264 -pix_fmt yuv420p out.mp4`"
                ),
            )
        };
        let key = Self::key(frame);
        let sar = frame.aspect_ratio();
        let (sn, sd) = if sar.denominator() == 0 { (0, 1) } else { (sar.numerator(), sar.denominator()) };
        let mut args = format!(
            "video_size={}x{}:pix_fmt={}:time_base={}/{}:pixel_aspect={sn}/{sd}",
            key.width, key.height, key.format, input.time_base.0, input.time_base.1
        );
        if let Some((n, d)) = input.frame_rate {
            args.push_str(&format!(":frame_rate={n}/{d}"));
        }
        let mut graph = ff::filter::Graph::new();
        let buffer = ff::filter::find("buffer").ok_or(ff::Error::FilterNotFound).map_err(|e| fail("buffer", e))?;
        let sink =
            ff::filter::find("buffersink").ok_or(ff::Error::FilterNotFound).map_err(|e| fail("buffersink", e))?;
        graph.add(&buffer, "in", &args).map_err(|e| fail("buffer", e))?;
        graph.add(&sink, "out", "").map_err(|e| fail("buffersink", e))?;
        let matrix = key.display_matrix.or(input.stream_matrix);
        let mut chain = autorotate(matrix.as_ref());
        chain.push(input.user_filter.unwrap_or("null").to_string());
        chain.push("format=rgb24".to_string());
        let spec = chain.join(",");
        graph
            .output("in", 0)
            .and_then(|p| p.input("out", 0))
            .and_then(|p| p.parse(&spec))
            .map_err(|e| fail(&spec, e))?;
        graph.validate().map_err(|e| fail(&spec, e))?;
        Ok(CliGraph { graph, key })
    }

    /// Push one decoded frame (`AV_BUFFERSRC_FLAG_PUSH | KEEP_REF`, as the CLI).
    pub(crate) fn push(&mut self, path: &Path, frame: &ff::frame::Video) -> Result<()> {
        let mut src = self.graph.get("in").ok_or_else(|| Error::media(path, "internal error: no buffer source"))?;
        let flags = ff::ffi::AV_BUFFERSRC_FLAG_PUSH as i32 | ff::ffi::AV_BUFFERSRC_FLAG_KEEP_REF as i32;
        // SAFETY: both pointers are valid; KEEP_REF leaves `frame` untouched.
        let r = unsafe { ff::ffi::av_buffersrc_add_frame_flags(src.as_mut_ptr(), frame.as_ptr() as *mut _, flags) };
        if r < 0 {
            return Err(Error::media(
                path,
                format!("RGB conversion failed ({}); re-encode the video", ff::Error::from(r)),
            ));
        }
        Ok(())
    }

    /// End of input at `pts` (the buffer source's time base), as `send_filter_eof`.
    pub(crate) fn close(&mut self, path: &Path, pts: i64) -> Result<()> {
        let mut src = self.graph.get("in").ok_or_else(|| Error::media(path, "internal error: no buffer source"))?;
        // SAFETY: valid buffer source context.
        let r = unsafe { ff::ffi::av_buffersrc_close(src.as_mut_ptr(), pts, ff::ffi::AV_BUFFERSRC_FLAG_PUSH as u32) };
        if r < 0 {
            return Err(Error::media(path, format!("RGB conversion failed at the end ({})", ff::Error::from(r))));
        }
        Ok(())
    }

    /// The next RGB frame, if the graph has one ready.
    pub(crate) fn pull(&mut self) -> Option<ff::frame::Video> {
        let mut sink = self.graph.get("out")?;
        let mut out = ff::frame::Video::empty();
        sink.sink().frame(&mut out).ok().map(|_| out)
    }

    /// Time base of the frames [`pull`](Self::pull) returns.
    pub(crate) fn out_time_base(&mut self) -> Option<Q> {
        let mut sink = self.graph.get("out")?;
        let tb = sink.sink().time_base();
        Some((i64::from(tb.numerator()), i64::from(tb.denominator())))
    }

    /// Frame rate the graph reports at its output (`av_buffersink_get_frame_rate`); `None` when unknown.
    pub(crate) fn out_frame_rate(&mut self) -> Option<Q> {
        let sink = self.graph.get("out")?;
        // SAFETY: valid buffersink context.
        let r = unsafe { ff::ffi::av_buffersink_get_frame_rate(sink.as_ptr()) };
        (r.num > 0 && r.den > 0).then_some((i64::from(r.num), i64::from(r.den)))
    }
}

/// Copy an RGB24 frame out of FFmpeg's (strided) buffer.
pub(crate) fn to_image(path: &Path, rgb: &ff::frame::Video) -> Result<RgbImage> {
    let (w, h) = (rgb.width(), rgb.height());
    let stride = rgb.stride(0);
    let data = rgb.data(0);
    let row = w as usize * 3;
    let mut buf = Vec::with_capacity(row * h as usize);
    for y in 0..h as usize {
        buf.extend_from_slice(&data[y * stride..y * stride + row]);
    }
    RgbImage::from_raw(w, h, buf).ok_or_else(|| Error::media(path, "internal error: RGB buffer size"))
}
