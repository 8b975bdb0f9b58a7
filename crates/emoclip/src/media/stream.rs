//! One streaming decode pass over a video for analysis: every decoded frame in presentation order with its presentation time, converted to RGB (the ffmpeg CLI's own filter graph, rotation applied as the CLI and players do, see [`super::cli_graph`]) only when the caller asks for it.
//!
//! Frames are the decoder's frames in presentation order (the frames of
//! `ffmpeg -i VIDEO -fps_mode passthrough frames/%05d.png`, file number `index + 1`; for a constant-rate video
//! these are exactly the frames of the plain `ffmpeg -i VIDEO frames/%05d.png` and the numbering of
//! [`super::decode_frames`] and the box files). Times are seconds of media time: the container's start time is
//! subtracted as the CLI does, so 0 is the start of the file as a player shows it, and a stream that starts
//! later starts later.
//!
//! The caller sees frame `i` once frame `i + 1`'s time is known ([`PendingFrame::next_time`]: frame `i` is
//! presented until then), so it can decide from times alone whether the frame is used; one undecoded-to-RGB
//! frame is held at a time and memory does not depend on the video's length. Packets that fail to decode are
//! skipped (as the CLI does) and the rest is streamed; [`StreamStats`] reports them with the time ranges
//! left without frames. Frames whose time goes backwards (a damaged stream) are dropped and counted.
use std::ops::ControlFlow;
use std::path::Path;

use image::RgbImage;

use crate::{Error, Result};

/// Facts about a video known before decoding (container and stream headers; a demux-only packet scan when the
/// headers have no duration).
#[derive(Debug, Clone, PartialEq)]
pub struct VideoMeta {
    /// Media time at which the video ends (seconds from the container's start): the span windows are planned over.
    pub duration: f64,
    /// Average frame rate (0 when unknown).
    pub fps: f64,
    /// Frames the container promises (0 when unknown).
    pub header_frames: u64,
    /// Whether `duration` came from a packet scan rather than the headers.
    pub scanned: bool,
}

/// A decoded frame offered to the caller.
pub struct PendingFrame<'a> {
    /// Position in presentation order (0-based, frames dropped for going backwards excluded).
    pub index: usize,
    /// Presentation time (media seconds).
    pub time: f64,
    /// The next frame's presentation time; `None` for the last frame.
    pub next_time: Option<f64>,
    convert: &'a mut dyn FnMut() -> Result<RgbImage>,
}

impl PendingFrame<'_> {
    /// The frame as RGB in display orientation (rotation metadata applied), exactly as the ffmpeg CLI writes it.
    pub fn rgb(&mut self) -> Result<RgbImage> {
        (self.convert)()
    }
}

/// What one pass saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamStats {
    /// Frames the decoder produced.
    pub decoded: usize,
    /// Frames converted to RGB (calls of [`PendingFrame::rgb`]).
    pub converted: usize,
    /// Frames dropped because their time went backwards.
    pub out_of_order: usize,
    /// Packets that failed to decode (skipped).
    pub decode_errors: usize,
    /// Frames the decoder flagged as damaged (`decode_error_flags` or `AV_FRAME_FLAG_CORRUPT`: error
    /// concealment over missing or corrupt data), skipped like undecodable packets.
    pub damaged: usize,
    /// Time ranges `(first, last)` of consecutive damaged frames.
    pub damaged_ranges: Vec<(f64, f64)>,
    pub first_error: Option<String>,
    /// Time ranges `(last good frame, next good frame)` without any decoded frame: in a constant-rate stream
    /// (average rate = nominal rate) any jump longer than 1.5 frame intervals (frames missing); otherwise, when
    /// packets failed to decode, jumps longer than [`GAP_SECONDS`] and [`GAP_FRAMES`] frame intervals.
    pub gaps: Vec<(f64, f64)>,
    /// Time of the first and last frame.
    pub first_time: Option<f64>,
    pub last_time: Option<f64>,
    /// Whether the caller stopped the pass early.
    pub stopped: bool,
}

/// A jump between consecutive frames counts as a gap when longer than this many seconds …
pub const GAP_SECONDS: f64 = 0.5;
/// … and this many nominal frame intervals.
pub const GAP_FRAMES: f64 = 3.0;

/// Reads the duration and frame rate from the headers (a packet scan when the headers have no duration).
pub fn video_meta(path: &Path) -> Result<VideoMeta> {
    super::decode::check_file(path)?;
    #[cfg(feature = "video")]
    {
        imp::video_meta(path)
    }
    #[cfg(not(feature = "video"))]
    {
        Err(super::decode::no_video(path))
    }
}

/// Streams every frame of `path` to `on_frame` (see the module documentation); `ControlFlow::Break` stops
/// the pass (reported in [`StreamStats::stopped`]). Fails when the file cannot be opened, has no video stream,
/// or yields no frame at all; an error of `on_frame` ends the pass with that error.
pub fn stream_frames(
    path: &Path,
    on_frame: &mut dyn FnMut(&mut PendingFrame<'_>) -> Result<ControlFlow<()>>,
) -> Result<StreamStats> {
    super::decode::check_file(path)?;
    #[cfg(feature = "video")]
    {
        imp::stream_frames(path, on_frame)
    }
    #[cfg(not(feature = "video"))]
    {
        let _ = on_frame;
        Err(super::decode::no_video(path))
    }
}

/// Whether the jump from `a` to `b` is a gap for a stream of `fps` frames per second.
pub fn is_gap(a: f64, b: f64, fps: f64) -> bool {
    let nominal = if fps > 0.0 { GAP_FRAMES / fps } else { 0.0 };
    b - a > GAP_SECONDS.max(nominal)
}

#[cfg(feature = "video")]
mod imp {
    use super::*;
    use crate::media::cli_graph::{to_image, CliGraph};
    use crate::media::video::{decode_pass, init, open, pick_stream, read_packet, DecoderThreads};
    use ffmpeg_next as ff;

    pub fn video_meta(path: &Path) -> Result<VideoMeta> {
        init();
        let mut ictx = open(path)?;
        let info = pick_stream(path, &ictx)?;
        let header_frames = u64::try_from(info.header_frames).unwrap_or(0);
        // The container's duration spans every stream from the container's start (media time 0); a stream's
        // own duration starts at its first timestamp.
        let container = (ictx.duration() > 0).then(|| ictx.duration() as f64 / f64::from(ff::ffi::AV_TIME_BASE));
        // SAFETY: a plain field of the open format context.
        let start_us = unsafe { (*ictx.as_ptr()).start_time };
        let container_start =
            if start_us != ff::ffi::AV_NOPTS_VALUE { start_us as f64 / f64::from(ff::ffi::AV_TIME_BASE) } else { 0.0 };
        let stream_end = info.duration.map(|d| info.start - container_start + d);
        let duration = match (container, stream_end) {
            (Some(c), Some(s)) => Some(c.max(s)),
            (c, s) => c.or(s),
        };
        if let Some(d) = duration.filter(|d| d.is_finite() && *d > 0.0) {
            return Ok(VideoMeta { duration: d, fps: info.fps, header_frames, scanned: false });
        }
        // No duration in the headers: the end of the last video packet.
        let tb = info.time_base.0 as f64 / info.time_base.1 as f64;
        let mut end: Option<f64> = None;
        let mut packet = ff::Packet::empty();
        while read_packet(&mut packet, &mut ictx) {
            if packet.stream() != info.index {
                continue;
            }
            if let Some(p) = packet.pts().or(packet.dts()) {
                let t = (p + packet.duration().max(0)) as f64 * tb - container_start;
                end = Some(end.map_or(t, |e: f64| e.max(t)));
            }
        }
        match end.filter(|e| e.is_finite() && *e > 0.0) {
            Some(d) => Ok(VideoMeta { duration: d, fps: info.fps, header_frames, scanned: true }),
            None => Err(Error::media(
                path,
                "the video stream has no timestamps and no duration; re-encode it with `ffmpeg -i FILE -c:v libx264 out.mp4`",
            )),
        }
    }

    struct Held {
        frame: ff::frame::Video,
        time: f64,
    }

    /// Marks the end of a pass stopped by the caller (never shown to users).
    const STOP: &str = "\u{0}emoclip-stream-stop";

    pub fn stream_frames(
        path: &Path,
        on_frame: &mut dyn FnMut(&mut PendingFrame<'_>) -> Result<ControlFlow<()>>,
    ) -> Result<StreamStats> {
        init();
        let mut stats = StreamStats::default();
        let mut graph: Option<CliGraph> = None;
        let mut held: Option<Held> = None;
        let mut index = 0usize;
        let mut raw_gaps: Vec<(f64, f64)> = vec![];

        // Offers the held frame (presented until `next`) to the caller.
        let mut offer = |held: &Held,
                         next: Option<f64>,
                         index: usize,
                         graph: &mut Option<CliGraph>,
                         stats: &mut StreamStats,
                         info: &crate::media::video::StreamInfo|
         -> Result<ControlFlow<()>> {
            let mut converted = 0usize;
            let mut convert = || -> Result<RgbImage> {
                if !graph.as_ref().is_some_and(|g| g.fits(&held.frame)) {
                    *graph = Some(CliGraph::new(path, &held.frame, &info.graph_input(None))?);
                }
                let g = graph.as_mut().ok_or_else(|| Error::media(path, "internal error: no filter graph"))?;
                g.push(path, &held.frame)?;
                let rgb = g
                    .pull()
                    .ok_or_else(|| Error::media(path, "RGB conversion produced no frame; re-encode the video"))?;
                converted += 1;
                to_image(path, &rgb)
            };
            let mut p = PendingFrame { index, time: held.time, next_time: next, convert: &mut convert };
            let flow = on_frame(&mut p);
            stats.converted += converted;
            flow
        };

        let mut decoded = 0usize;
        let mut last_damaged = false;
        let mut cfr_gaps: Vec<(f64, f64)> = vec![];
        let result = decode_pass(path, DecoderThreads::Auto, &mut |info, d| {
            decoded += 1;
            let tb = info.time_base.0 as f64 / info.time_base.1 as f64;
            let time = match d.pts {
                Some(p) => p as f64 * tb,
                // no timestamp: one nominal frame after the previous one
                None => held.as_ref().map_or(0.0, |h| h.time + if info.fps > 0.0 { 1.0 / info.fps } else { 0.04 }),
            };
            if !time.is_finite() || held.as_ref().is_some_and(|h| time < h.time) {
                stats.out_of_order += 1;
                return Ok(());
            }
            // SAFETY: plain fields of a valid decoded frame.
            let (err_flags, flags) = unsafe { ((*d.frame.as_ptr()).decode_error_flags, (*d.frame.as_ptr()).flags) };
            if err_flags != 0 || flags & ff::ffi::AV_FRAME_FLAG_CORRUPT != 0 {
                stats.damaged += 1;
                match stats.damaged_ranges.last_mut() {
                    Some(r) if last_damaged => r.1 = time,
                    _ => stats.damaged_ranges.push((time, time)),
                }
                last_damaged = true;
                return Ok(());
            }
            last_damaged = false;
            stats.first_time.get_or_insert(time);
            if let Some(h) = held.take() {
                let cfr = match (info.avg_frame_rate, info.guessed_rate) {
                    (Some(a), Some(g)) => {
                        let (a, g) = (a.0 as f64 / a.1 as f64, g.0 as f64 / g.1 as f64);
                        (a - g).abs() <= 0.01 * g
                    }
                    _ => false,
                };
                if cfr && info.fps > 0.0 && time - h.time > 1.5 / info.fps {
                    cfr_gaps.push((h.time, time));
                } else if super::is_gap(h.time, time, info.fps) {
                    raw_gaps.push((h.time, time));
                }
                let flow = offer(&h, Some(time), index, &mut graph, &mut stats, info)?;
                index += 1;
                if flow.is_break() {
                    stats.stopped = true;
                    return Err(Error::Msg(STOP.into()));
                }
            }
            held = Some(Held { frame: d.frame, time });
            Ok(())
        });
        let pass = match result {
            Ok((info, pass)) => Some((info, pass)),
            Err(Error::Msg(m)) if m == STOP => None,
            Err(e) => return Err(e),
        };
        stats.decoded = decoded;
        stats.gaps = std::mem::take(&mut cfr_gaps);
        let Some((info, pass)) = pass else {
            // stopped by the caller: packet errors are not known (the decoder's counters went with the pass)
            if stats.damaged > 0 {
                stats.gaps.extend(raw_gaps);
                stats.gaps.sort_by(|a, b| a.0.total_cmp(&b.0));
            }
            return Ok(stats);
        };
        stats.decode_errors = pass.errors;
        stats.first_error = pass.first_error.clone();
        if let Some(h) = held.take() {
            stats.last_time = Some(h.time);
            if offer(&h, None, index, &mut graph, &mut stats, &info)?.is_break() {
                stats.stopped = true;
            }
        }
        if stats.decoded == 0 {
            let why = pass.first_error.map(|e| format!(" (decoder: {e})")).unwrap_or_default();
            return Err(Error::media(
                path,
                format!("no video frame could be decoded{why}; the file is corrupt or truncated — re-download it or re-encode it with `ffmpeg -i FILE -c:v libx264 out.mp4`"),
            ));
        }
        // Jumps in time are corruption only when packets failed; otherwise they are the stream's own timing (VFR).
        if stats.decode_errors > 0 || stats.damaged > 0 {
            stats.gaps.extend(raw_gaps);
            stats.gaps.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        Ok(stats)
    }
}
