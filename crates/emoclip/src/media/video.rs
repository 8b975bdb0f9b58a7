//! Video frames exactly as the ffmpeg command line writes them (FFmpeg 5.1 `fftools/ffmpeg.c`): packet
//! timestamps handled as `process_input`/`process_input_packet`/`decode_video` do, RGB from the CLI's own
//! filter graph ([`super::cli_graph`]), and the frame written at each output position chosen by its
//! constant-frame-rate sync ([`super::cli_vsync`]). Output frame `k` is the `k`-th frame of
//! `ffmpeg -i VIDEO -f rawvideo -pix_fmt rgb24 -` (or `frames/%05d.png` number `k + 1`).
//!
//! Not mirrored (the CLI's handling of broken timestamps): 33-bit wrap-around correction and the
//! discontinuity offsets of MPEG-TS-like inputs (jumps of more than 10 s).
//!
//! Uniform sampling: pass 1 demuxes without decoding and predicts the output frame count from the packet
//! timestamps; pass 2 decodes and converts the frames at the sampled output positions while computing the
//! real schedule; if the real count differs from the prediction, a third pass extracts the right ones.
use std::collections::VecDeque;
use std::path::Path;
use std::sync::Once;

use ff::format::stream::Disposition;
use ff::media::Type;
use ffmpeg_next as ff;
use image::RgbImage;

use super::cli_graph::{to_image, CliGraph, GraphInput};
use super::cli_vsync::{rescale_q, CfrSync, Emit, Schedule, Q};
use super::decode::DecodedClip;
use super::sample::uniform_indices;
use crate::{Error, Result};

/// `AV_TIME_BASE_Q`: the CLI keeps its running timestamps in microseconds.
const US: Q = (1, 1_000_000);

/// A decoded count below this fraction of the header's promise, together with a time coverage below it, is
/// treated as truncation.
const TRUNCATION_RATIO: f64 = 0.9;

pub(super) fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // Errors are reported through our own messages; keep libav quiet on stderr.
        let _ = ff::init();
        ff::util::log::set_level(ff::util::log::Level::Fatal);
    });
}

pub(super) fn open(path: &Path) -> Result<ff::format::context::Input> {
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

fn q(r: ff::Rational) -> Option<Q> {
    (r.numerator() > 0 && r.denominator() > 0).then(|| (i64::from(r.numerator()), i64::from(r.denominator())))
}

pub(super) struct StreamInfo {
    pub(super) index: usize,
    pub(super) header_frames: i64,
    /// Declared duration in seconds (stream, else container), if known.
    pub(super) duration: Option<f64>,
    pub(super) start: f64,
    pub(super) time_base: Q,
    /// Average frame rate (0 when unknown), reported in [`DecodedClip::fps`].
    pub(super) fps: f64,
    pub(super) avg_frame_rate: Option<Q>,
    /// `av_guess_frame_rate`, the rate the CLI gives its filter graph.
    pub(super) guessed_rate: Option<Q>,
    /// The input file has one stream (`-vsync vscfr`).
    one_stream: bool,
    start_time_known: bool,
    /// The CLI's input timestamp offset (`InputFile.ts_offset`), microseconds.
    ts_offset: i64,
    stream_matrix: Option<[i32; 9]>,
    parameters: ff::codec::Parameters,
}

pub(super) fn pick_stream(path: &Path, ictx: &ff::format::context::Input) -> Result<StreamInfo> {
    let usable = |s: &ff::format::stream::Stream| {
        s.parameters().medium() == Type::Video && !s.disposition().contains(Disposition::ATTACHED_PIC)
    };
    let stream = ictx
        .streams()
        .best(Type::Video)
        .filter(|s| usable(s))
        .or_else(|| ictx.streams().find(|s| usable(s)))
        .ok_or_else(|| Error::media(path, "no video stream found: the file is audio-only, or its header is truncated or damaged; check it with `ffprobe FILE`, re-download it, or pass a video file (images go through load_image)"))?;
    let tbr = stream.time_base();
    let time_base = (i64::from(tbr.numerator()), i64::from(tbr.denominator().max(1)));
    let tb = f64::from(tbr);
    let duration = if stream.duration() > 0 && tb > 0.0 {
        Some(stream.duration() as f64 * tb)
    } else if ictx.duration() > 0 {
        Some(ictx.duration() as f64 / f64::from(ff::ffi::AV_TIME_BASE))
    } else {
        None
    };
    let avg_frame_rate = q(stream.avg_frame_rate());
    let fps = avg_frame_rate.or(q(stream.rate())).map_or(0.0, |(n, d)| n as f64 / d as f64);
    let start_time_known = stream.start_time() != ff::ffi::AV_NOPTS_VALUE;
    let start = if start_time_known { stream.start_time() as f64 * tb } else { 0.0 };
    // SAFETY: the format and stream pointers are valid for the lifetime of `ictx`; the functions only read.
    let (guessed_rate, ts_offset, stream_matrix) = unsafe {
        let fmt = ictx.as_ptr();
        let st = stream.as_ptr();
        let guessed = ff::ffi::av_guess_frame_rate(fmt as *mut _, st as *mut _, std::ptr::null_mut());
        let guessed = (guessed.num > 0 && guessed.den > 0).then(|| (i64::from(guessed.num), i64::from(guessed.den)));
        // open_input_file: ts_offset = -start_time; process_input: for formats with timestamp
        // discontinuities the start is corrected to the used (video) stream's start.
        let mut offset = if (*fmt).start_time != ff::ffi::AV_NOPTS_VALUE { -(*fmt).start_time } else { 0 };
        let discont = !(*fmt).iformat.is_null() && ((*(*fmt).iformat).flags & ff::ffi::AVFMT_TS_DISCONT) != 0;
        if discont && (*fmt).start_time != ff::ffi::AV_NOPTS_VALUE && start_time_known {
            let video_start = rescale_q(stream.start_time(), time_base, US);
            if video_start > (*fmt).start_time {
                offset = -video_start;
            }
        }
        let mut size = 0usize;
        let sd = ff::ffi::av_stream_get_side_data(
            st,
            ff::ffi::AVPacketSideDataType::AV_PKT_DATA_DISPLAYMATRIX,
            &mut size as *mut usize as *mut _,
        );
        let matrix = (!sd.is_null() && size >= 36).then(|| {
            let p = sd as *const i32;
            std::array::from_fn(|i| std::ptr::read_unaligned(p.add(i)))
        });
        (guessed, offset, matrix)
    };
    Ok(StreamInfo {
        index: stream.index(),
        header_frames: stream.frames(),
        duration,
        start,
        time_base,
        fps,
        avg_frame_rate,
        guessed_rate,
        one_stream: ictx.nb_streams() == 1,
        start_time_known,
        ts_offset,
        stream_matrix,
        parameters: stream.parameters(),
    })
}

impl StreamInfo {
    pub(super) fn graph_input<'a>(&self, user_filter: Option<&'a str>) -> GraphInput<'a> {
        GraphInput {
            time_base: self.time_base,
            frame_rate: self.guessed_rate,
            stream_matrix: self.stream_matrix,
            user_filter,
        }
    }

    /// The CLI's output sync for frames straight from the decoder (no `-vf`).
    fn plain_sync(&self) -> CfrSync {
        CfrSync::new(self.guessed_rate, self.time_base, self.one_stream, self.start_time_known, Some(self.time_base))
    }

    /// `process_input`: the input offset, applied to a packet's timestamps (stream time base).
    fn offset_packet(&self, packet: &mut ff::Packet) {
        let off = rescale_q(self.ts_offset, US, self.time_base);
        if off != 0 {
            if let Some(d) = packet.dts() {
                packet.set_dts(Some(d + off));
            }
            if let Some(p) = packet.pts() {
                packet.set_pts(Some(p + off));
            }
        }
    }
}

/// Reads the next packet of `ictx` into `packet`; false at the end or on a read error. Hand-written because
/// ffmpeg-next's `Packet::read` passes a packet that still holds the previous one to `av_read_frame`, which
/// overwrites it without releasing it: every packet of the file leaked (about 70 KiB per second of 720p video).
pub(super) fn read_packet(packet: &mut ff::Packet, ictx: &mut ff::format::context::Input) -> bool {
    // SAFETY: `packet` is a valid AVPacket; unref on an empty packet is a no-op.
    unsafe { ff::ffi::av_packet_unref(ff::packet::Mut::as_mut_ptr(packet)) };
    packet.read(ictx).is_ok()
}

/// Pass 1: the number of video packets and a prediction of the CLI's output frames, without decoding.
fn predict(path: &Path) -> Result<(StreamInfo, usize, usize)> {
    let mut ictx = open(path)?;
    let info = pick_stream(path, &ictx)?;
    let mut stamps: Vec<(Option<i64>, Option<i64>, i64)> = Vec::new();
    let mut packet = ff::Packet::empty();
    // Any read error ends the stream, as in the ffmpeg CLI.
    while read_packet(&mut packet, &mut ictx) {
        if packet.stream() == info.index {
            info.offset_packet(&mut packet);
            stamps.push((packet.pts(), packet.dts(), packet.duration()));
        }
    }
    let n = stamps.len();
    // Frames leave the decoder in presentation order: sorted pts, or (no pts) the dts of the packet
    // `video_delay` later, which is what libavcodec's best-effort timestamp takes.
    let frames: Vec<(Option<i64>, i64)> = if stamps.iter().all(|s| s.0.is_some()) {
        let mut v: Vec<(Option<i64>, i64)> = stamps.iter().map(|s| (s.0, s.2)).collect();
        v.sort_by_key(|s| s.0);
        v
    } else {
        let delay = usize::try_from(unsafe { (*info.parameters.as_ptr()).video_delay }).unwrap_or(0);
        (0..n)
            .map(|k| match stamps.get(k + delay) {
                Some(s) => (s.1, s.2),
                None => {
                    let last = stamps[n - 1];
                    (last.1.map(|d| d + (k + delay + 1 - n) as i64 * last.2.max(1)), last.2)
                }
            })
            .collect()
    };
    let mut sync = info.plain_sync();
    let mut out = 0usize;
    for (i, (pts, dur)) in frames.iter().enumerate() {
        let e = sync.push(*pts, *dur, i > 0);
        out += e.previous + e.current;
    }
    out += sync.flush(n > 0);
    Ok((info, n, out))
}

/// One decoded frame with the timestamp the CLI gives it.
pub(super) struct Decoded {
    pub(super) frame: ff::frame::Video,
    /// Best-effort timestamp (stream time base) as `decode_video` sets `frame->pts`.
    pub(super) pts: Option<i64>,
    /// The frame's packet duration (stream time base).
    pkt_duration: i64,
}

#[derive(Default)]
pub(super) struct PassStats {
    pub(super) decoded: usize,
    /// end time (seconds) of the last decoded frame, if timestamps were present
    covered_until: Option<f64>,
    first_size: Option<(u32, u32)>,
    pub(super) errors: usize,
    pub(super) first_error: Option<String>,
    /// `send_filter_eof`'s timestamp (stream time base).
    eof_pts: Option<i64>,
}

/// `InputStream`'s timestamp bookkeeping (microseconds), as `process_input_packet` keeps it.
struct CliInput {
    tb: Q,
    saw_first: bool,
    dts: Option<i64>,
    next_dts: Option<i64>,
    pts: Option<i64>,
    next_pts: Option<i64>,
    dts_buffer: VecDeque<Option<i64>>,
}

/// How many threads one decoder uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DecoderThreads {
    /// FFmpeg's choice (frame threads, one more than the cores): for one stream decoded at a time.
    Auto,
    /// No decoder threads: for clips decoded side by side (a batch's items in parallel), where frame threads only
    /// add CPU (mpeg4 720p on 2 cores: twice the CPU time, and slower).
    One,
}

/// Decode every frame of the stream in the CLI's order and with its timestamps; `on_frame` sees each.
pub(super) fn decode_pass(
    path: &Path,
    threads: DecoderThreads,
    on_frame: &mut dyn FnMut(&StreamInfo, Decoded) -> Result<()>,
) -> Result<(StreamInfo, PassStats)> {
    let mut ictx = open(path)?;
    let info = pick_stream(path, &ictx)?;
    let mut cctx = ff::codec::context::Context::from_parameters(info.parameters.clone()).map_err(|e| {
        Error::media(
            path,
            format!("unsupported video codec parameters ({e}); re-encode with `ffmpeg -i FILE -c:v libx264 out.mp4`"),
        )
    })?;
    let count = match threads {
        DecoderThreads::Auto => 0,
        DecoderThreads::One => 1,
    };
    cctx.set_threading(ff::threading::Config { kind: ff::threading::Type::Frame, count, ..Default::default() });
    // SAFETY: plain field of a valid, not yet opened codec context (the CLI sets it the same way).
    unsafe {
        (*cctx.as_mut_ptr()).pkt_timebase =
            ff::ffi::AVRational { num: info.time_base.0 as i32, den: info.time_base.1 as i32 };
    }
    let mut decoder = cctx.decoder().video().map_err(|e| {
        Error::media(path, format!("no decoder for this video codec in the linked FFmpeg ({e}); re-encode with `ffmpeg -i FILE -c:v libx264 out.mp4`"))
    })?;
    // SAFETY: reading the stream's parser (owned by `ictx`, alive while it is).
    let parser =
        unsafe { ictx.stream(info.index).map_or(std::ptr::null_mut(), |s| ff::ffi::av_stream_get_parser(s.as_ptr())) };
    let mut st = CliInput {
        tb: info.time_base,
        saw_first: false,
        dts: None,
        next_dts: None,
        pts: None,
        next_pts: None,
        dts_buffer: VecDeque::new(),
    };
    let mut stats = PassStats::default();
    let frame_dur = if info.fps > 0.0 { 1.0 / info.fps } else { 0.0 };
    let tb_f = info.time_base.0 as f64 / info.time_base.1 as f64;

    // process_input_packet(ist, pkt) for one packet, or for the end of the stream (None).
    let mut process = |decoder: &mut ff::decoder::Video,
                       st: &mut CliInput,
                       stats: &mut PassStats,
                       mut pkt: Option<&mut ff::Packet>|
     -> Result<bool> {
        let eof = pkt.is_none();
        // SAFETY: plain fields of the opened decoder context.
        let (has_b_frames, dec_rate, ticks_per_frame) = unsafe {
            let c = decoder.as_ptr();
            ((*c).has_b_frames, (*c).framerate, (*c).ticks_per_frame)
        };
        if !st.saw_first {
            st.dts = Some(match info.avg_frame_rate {
                Some((n, d)) => (f64::from(-has_b_frames * 1_000_000) / (n as f64 / d as f64)) as i64,
                None => 0,
            });
            st.pts = Some(0);
            st.saw_first = true;
        }
        if st.next_dts.is_none() {
            st.next_dts = st.dts;
        }
        if st.next_pts.is_none() {
            st.next_pts = st.pts;
        }
        let (pkt_duration, pkt_size) = pkt.as_ref().map_or((0, 0), |p| (p.duration(), p.size()));
        if let Some(d) = pkt.as_ref().and_then(|p| p.dts()) {
            st.dts = Some(rescale_q(d, st.tb, US));
            st.next_dts = st.dts;
        }
        let mut repeating = false;
        loop {
            st.pts = st.next_pts;
            st.dts = st.next_dts;
            // decode_video(ist, repeating ? NULL : pkt, eof)
            let mut got = false;
            let mut ret_eof = false;
            let mut failed = false;
            let mut duration_pts = 0i64;
            let skip = !eof && !repeating && pkt_size == 0;
            if !skip {
                let dts_tb = st.dts.map(|d| rescale_q(d, US, st.tb));
                if !repeating {
                    if let Some(p) = pkt.as_deref_mut() {
                        p.set_dts(dts_tb);
                    }
                }
                if eof {
                    st.dts_buffer.push_back(dts_tb);
                }
                let sent = if repeating {
                    Ok(())
                } else {
                    match pkt.as_deref() {
                        Some(p) => decoder.send_packet(p),
                        None => decoder.send_eof(),
                    }
                };
                match sent {
                    Err(e) if e != ff::Error::Eof => {
                        failed = true;
                        stats.errors += 1;
                        stats.first_error.get_or_insert_with(|| e.to_string());
                    }
                    _ => {
                        let mut frame = ff::frame::Video::empty();
                        match decoder.receive_frame(&mut frame) {
                            Ok(()) => {
                                got = true;
                                let mut best = frame.timestamp();
                                duration_pts = frame.packet().duration;
                                if eof && best.is_none() && !st.dts_buffer.is_empty() {
                                    best = st.dts_buffer.pop_front().flatten();
                                }
                                if let Some(b) = best {
                                    frame.set_pts(Some(b));
                                    let ts = rescale_q(b, st.tb, US);
                                    st.pts = Some(ts);
                                    st.next_pts = Some(ts);
                                }
                                stats.decoded += 1;
                                stats.first_size.get_or_insert((frame.width(), frame.height()));
                                if let Some(b) = best {
                                    let t = b as f64 * tb_f + frame_dur;
                                    stats.covered_until = Some(stats.covered_until.map_or(t, |c| c.max(t)));
                                }
                                on_frame(&info, Decoded { frame, pts: best, pkt_duration: duration_pts })?;
                            }
                            Err(ff::Error::Eof) => ret_eof = true,
                            Err(ff::Error::Other { errno }) if errno == ff::util::error::EAGAIN => {}
                            Err(e) => {
                                failed = true;
                                stats.errors += 1;
                                stats.first_error.get_or_insert_with(|| e.to_string());
                            }
                        }
                    }
                }
            }
            if !repeating || eof || got {
                let duration_dts = if !eof && pkt_duration != 0 {
                    rescale_q(pkt_duration, st.tb, US)
                } else if dec_rate.num != 0 && dec_rate.den != 0 && ticks_per_frame > 0 {
                    // SAFETY: the parser (if any) belongs to the open input.
                    let ticks = if parser.is_null() { ticks_per_frame } else { (unsafe { (*parser).repeat_pict }) + 1 };
                    1_000_000 * i64::from(dec_rate.den) * i64::from(ticks)
                        / i64::from(dec_rate.num)
                        / i64::from(ticks_per_frame)
                } else {
                    0
                };
                st.next_dts = match st.dts {
                    Some(_) if duration_dts != 0 => st.next_dts.map(|d| d + duration_dts),
                    _ => None,
                };
                if got {
                    let add = if duration_pts > 0 { rescale_q(duration_pts, st.tb, US) } else { duration_dts };
                    st.next_pts = st.next_pts.map(|p| p + add);
                }
            }
            if ret_eof {
                return Ok(true);
            }
            if failed || !got {
                return Ok(false);
            }
            repeating = true;
        }
    };

    let mut packet = ff::Packet::empty();
    while read_packet(&mut packet, &mut ictx) {
        if packet.stream() != info.index {
            continue;
        }
        info.offset_packet(&mut packet);
        process(&mut decoder, &mut st, &mut stats, Some(&mut packet))?;
    }
    if process(&mut decoder, &mut st, &mut stats, None)? {
        stats.eof_pts = st.pts.map(|p| rescale_q(p, US, st.tb));
    }
    Ok((info, stats))
}

/// Fail on a video that decoded nothing or far less than its header promises.
fn check_decoded(path: &Path, info: &StreamInfo, stats: &PassStats, packets: Option<usize>) -> Result<()> {
    let n = stats.decoded;
    if n == 0 {
        let why = stats.first_error.as_deref().map(|e| format!(" (decoder: {e})")).unwrap_or_default();
        let promised = if info.header_frames > 0 {
            format!(" although the container promises {} frames", info.header_frames)
        } else {
            String::new()
        };
        let from = packets.map(|p| format!(" from {p} packet(s)")).unwrap_or_default();
        return Err(Error::media(
            path,
            format!("no video frame could be decoded{from}{promised}{why}; the file is corrupt or truncated — re-download it or re-encode it with `ffmpeg -i FILE -c:v libx264 out.mp4`"),
        ));
    }
    // Truncation: far fewer frames than the header promises AND the decoded frames stop well before the
    // declared duration (containers with dropped-frame placeholders, e.g. some AVIs, promise more frames
    // than they hold but still cover their duration).
    if info.header_frames > 0 && (n as f64) < TRUNCATION_RATIO * info.header_frames as f64 {
        let covered = stats.covered_until.map(|t| t - info.start);
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
    if stats.errors > 0 {
        tracing::warn!(
            path = %path.display(),
            failed_packets = stats.errors,
            first_error = stats.first_error.as_deref().unwrap_or(""),
            "some packets failed to decode and were skipped"
        );
    }
    Ok(())
}

/// One pass that keeps the RGB of the output frames at `wanted` (sorted output positions, repeats allowed).
/// Returns the frames (one per entry of `wanted`, `None` where the video has no such output frame), the
/// number of output frames, and the pass statistics.
fn extract(path: &Path, wanted: &[usize]) -> Result<(Vec<Option<RgbImage>>, usize, StreamInfo, PassStats)> {
    let mut ex = Extractor { path, wanted, out: vec![None; wanted.len()], cursor: 0, graph: None };
    let mut sched = Schedule::default();
    let mut sync: Option<CfrSync> = None;
    let mut prev: Option<ff::frame::Video> = None;
    let mut index = 0usize;
    let (info, stats) = decode_pass(path, DecoderThreads::One, &mut |info, d| {
        let s = sync.get_or_insert_with(|| info.plain_sync());
        let e: Emit = s.push(d.pts, d.pkt_duration, prev.is_some());
        let start = sched.source.len();
        if let Some(p) = prev.as_ref() {
            ex.fill(start, e.previous, p, info)?;
        }
        ex.fill(start + e.previous, e.current, &d.frame, info)?;
        sched.record(e, index.checked_sub(1), index);
        index += 1;
        prev = Some(d.frame);
        Ok(())
    })?;
    if let (Some(s), Some(p)) = (sync.as_mut(), prev.as_ref()) {
        let n = s.flush(true);
        ex.fill(sched.source.len(), n, p, &info)?;
        sched.source.extend(std::iter::repeat_n(index - 1, n));
    }
    Ok((ex.out, sched.source.len(), info, stats))
}

/// Converts the frames at the wanted output positions.
struct Extractor<'a> {
    path: &'a Path,
    wanted: &'a [usize],
    out: Vec<Option<RgbImage>>,
    /// Positions in `wanted` before this one are filled (`wanted` is sorted).
    cursor: usize,
    graph: Option<CliGraph>,
}

impl Extractor<'_> {
    /// Output positions `start .. start + count` show `frame`: keep its RGB where wanted.
    fn fill(&mut self, start: usize, count: usize, frame: &ff::frame::Video, info: &StreamInfo) -> Result<()> {
        let end = start + count;
        if count == 0 || self.cursor >= self.wanted.len() || self.wanted[self.cursor] >= end {
            return Ok(());
        }
        if !self.graph.as_ref().is_some_and(|g| g.fits(frame)) {
            self.graph = Some(CliGraph::new(self.path, frame, &info.graph_input(None))?);
        }
        let g = self.graph.as_mut().ok_or_else(|| Error::media(self.path, "internal error: no filter graph"))?;
        g.push(self.path, frame)?;
        let rgb =
            g.pull().ok_or_else(|| Error::media(self.path, "RGB conversion produced no frame; re-encode the video"))?;
        let img = to_image(self.path, &rgb)?;
        while self.cursor < self.wanted.len() && self.wanted[self.cursor] < end {
            self.out[self.cursor] = Some(img.clone());
            self.cursor += 1;
        }
        Ok(())
    }
}

/// Frames leaving the `fps` graph → the CLI's output sync → the caller's sink.
struct FpsOutput<'a> {
    path: &'a Path,
    fps: f64,
    sink: &'a mut dyn FnMut(usize, f64, RgbImage) -> Result<()>,
    sync: Option<CfrSync>,
    last: Option<RgbImage>,
    emitted: usize,
}

impl FpsOutput<'_> {
    fn emit(&mut self, img: &RgbImage, copies: usize) -> Result<()> {
        for _ in 0..copies {
            (self.sink)(self.emitted, self.emitted as f64 / self.fps, img.clone())?;
            self.emitted += 1;
        }
        Ok(())
    }

    fn drain(&mut self, graph: &mut CliGraph, info: &StreamInfo) -> Result<()> {
        while let Some(rgb) = graph.pull() {
            if self.sync.is_none() {
                let tb = graph.out_time_base().unwrap_or((1, 1));
                self.sync =
                    Some(CfrSync::new(graph.out_frame_rate(), tb, info.one_stream, info.start_time_known, None));
            }
            let Some(s) = self.sync.as_mut() else { continue };
            let e = s.push(rgb.pts(), 0, self.last.is_some());
            let img = to_image(self.path, &rgb)?;
            if let Some(prev) = self.last.take() {
                self.emit(&prev, e.previous)?;
            }
            self.emit(&img, e.current)?;
            self.last = Some(img);
        }
        Ok(())
    }
}

/// The output frames `pick(n)` chooses (sorted, repeats allowed) for a video of `n` output frames;
/// at least `min_frames` output frames are required.
pub(super) fn decode_with(path: &Path, min_frames: usize, pick: &dyn Fn(usize) -> Vec<usize>) -> Result<DecodedClip> {
    init();
    let (_, packets, predicted) = predict(path)?;
    let mut wanted = pick(predicted);
    let (mut frames, mut n, mut info, mut stats) = extract(path, &wanted)?;
    check_decoded(path, &info, &stats, Some(packets))?;
    if n < min_frames {
        return Err(Error::TooFewFrames { path: path.to_path_buf(), got: n, need: min_frames });
    }
    let again = pick(n);
    if again != wanted {
        tracing::debug!(path = %path.display(), predicted, frames = n, "output frame count differs from the prediction; extracting again");
        wanted = again;
        let first = n;
        (frames, n, info, stats) = extract(path, &wanted)?;
        if n != first {
            return Err(Error::media(
                path,
                format!("decoding is not reproducible ({first} then {n} frames); re-encode the video with `ffmpeg -i FILE -c:v libx264 out.mp4`"),
            ));
        }
    }
    let missing = frames.iter().filter(|f| f.is_none()).count();
    if missing > 0 {
        return Err(Error::media(
            path,
            format!("could not extract {missing} of the sampled frames; re-encode the video"),
        ));
    }
    let (width, height) = stats.first_size.unwrap_or((0, 0));
    Ok(DecodedClip {
        frames: frames.into_iter().flatten().collect(),
        indices: wanted,
        total_frames: n,
        width,
        height,
        fps: info.fps,
    })
}

pub(super) fn decode_uniform(path: &Path, k: usize, min_frames: usize) -> Result<DecodedClip> {
    decode_with(path, min_frames, &|n| uniform_indices(n, k))
}

/// Stream the frames `ffmpeg -i VIDEO -vf fps=FPS frames/%08d.png` writes to `sink(k, k / fps, frame)`,
/// one frame in memory at a time. Returns (frames emitted, source fps, decoded source frames).
pub(super) fn stream_at_fps(
    path: &Path,
    fps: f64,
    sink: &mut dyn FnMut(usize, f64, RgbImage) -> Result<()>,
) -> Result<(usize, f64, usize)> {
    init();
    if !(fps.is_finite() && fps > 0.0) {
        return Err(Error::media(path, format!("frame rate {fps} is not a positive number; pass e.g. 8")));
    }
    let filter = format!("fps={fps}");
    let mut out = FpsOutput { path, fps, sink, sync: None, last: None, emitted: 0 };
    let mut graph: Option<CliGraph> = None;
    let (info, stats) = decode_pass(path, DecoderThreads::Auto, &mut |info, d| {
        if !graph.as_ref().is_some_and(|g| g.fits(&d.frame)) {
            if let Some(g) = graph.as_mut() {
                out.drain(g, info)?;
            }
            graph = Some(CliGraph::new(path, &d.frame, &info.graph_input(Some(&filter)))?);
        }
        let g = graph.as_mut().ok_or_else(|| Error::media(path, "internal error: no filter graph"))?;
        g.push(path, &d.frame)?;
        out.drain(g, info)
    })?;
    check_decoded(path, &info, &stats, None)?;
    if let Some(g) = graph.as_mut() {
        g.close(path, stats.eof_pts.unwrap_or(i64::MAX))?;
        out.drain(g, &info)?;
    }
    if let Some(img) = out.last.take() {
        let n = out.sync.as_mut().map_or(0, |s| s.flush(true));
        out.emit(&img, n)?;
    }
    let emitted = out.emitted;
    if info.fps <= 0.0 && emitted == 0 {
        return Err(Error::media(
            path,
            "the video stream has no frame rate; re-encode it with `ffmpeg -i FILE -r 25 out.mp4`",
        ));
    }
    Ok((emitted, info.fps, stats.decoded))
}
