//! Which decoded frame the ffmpeg command line writes into each output frame: the constant-frame-rate video
//! sync of FFmpeg 5.1 `fftools/ffmpeg.c` (`do_video_out`, `adjust_frame_pts_to_encoder_tb`), which is what
//! `ffmpeg -i VIDEO frames/%05d.jpg` and `ffmpeg -i VIDEO -f rawvideo -pix_fmt rgb24 -` use (their muxers
//! have no timestamps, so `-vsync auto` means `cfr`, or `vscfr` for a one-stream input).
//!
//! Hand-written because no crate exposes it: the CLI drops and repeats frames to keep a constant rate, e.g.
//! an AVI whose first frame is stamped 1 (packed B-frames) comes out with that frame twice.

/// A rational number `num/den` (a time base or a frame rate).
pub(crate) type Q = (i64, i64);

/// `av_rescale_q` (libavutil/mathematics.c): `a · bq / cq` rounded to the nearest, halves away from zero.
pub(crate) fn rescale_q(a: i64, bq: Q, cq: Q) -> i64 {
    let (b, c) = (i128::from(bq.0) * i128::from(cq.1), i128::from(cq.0) * i128::from(bq.1));
    let mag = (i128::from(a).abs() * b + c / 2) / c;
    (if a < 0 { -mag } else { mag }) as i64
}

fn q2d(q: Q) -> f64 {
    q.0 as f64 / q.1 as f64
}

/// C `lrintf`/`llrintf`: the argument is a `float`, rounded to nearest, ties to even.
fn lrintf(x: f64) -> i64 {
    (x as f32).round_ties_even() as i64
}

/// `AV_NOPTS_VALUE` as the CLI's `double` (a frame without timestamp lands far in the past: dropped).
const NOPTS_F64: f64 = i64::MIN as f64;

/// What one [`CfrSync::push`] writes: `previous` copies of the frame pushed before, then `current` copies
/// of this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Emit {
    pub previous: usize,
    pub current: usize,
}

/// The CLI's output-side state for one video stream (`OutputStream.sync_opts`, `last_nb0_frames`, ...).
#[derive(Debug, Clone)]
pub(crate) struct CfrSync {
    /// `-vsync vscfr`: the input file has one stream, so initial frames are not duplicated.
    vscfr: bool,
    /// Time base of the frames leaving the filter graph.
    filter_tb: Q,
    /// Encoder time base, `1 / frame rate`.
    enc_tb: Q,
    /// Frame duration in `enc_tb` before the per-frame override (0 when the graph has no frame rate).
    base_duration: f64,
    /// The input stream's time base when the CLI would take the duration from each frame's packet
    /// duration (no `-vf`); `None` with a user filter.
    pkt_duration_tb: Option<Q>,
    sync_opts: i64,
    frame_number: u64,
    last_nb0: [i64; 3],
}

impl CfrSync {
    /// `sink_rate`: the frame rate the filter graph reports (`av_buffersink_get_frame_rate`; the input's
    /// guessed rate, or the `fps` filter's); `None` when unknown (then 25 fps, as the CLI). `one_stream`:
    /// the input file has a single stream. `start_time_known`: the input stream has a start time.
    pub(crate) fn new(
        sink_rate: Option<Q>,
        filter_tb: Q,
        one_stream: bool,
        start_time_known: bool,
        pkt_duration_tb: Option<Q>,
    ) -> Self {
        let rate = sink_rate.unwrap_or((25, 1));
        let enc_tb = (rate.1, rate.0);
        let mut base_duration = 0.0;
        if let Some(r) = sink_rate {
            base_duration = 1.0 / (q2d(r) * q2d(enc_tb));
        }
        // `ist->first_dts` is always set once a packet was read.
        if start_time_known {
            base_duration = base_duration.min(1.0 / (q2d(rate) * q2d(enc_tb)));
        }
        CfrSync {
            vscfr: one_stream,
            filter_tb,
            enc_tb,
            base_duration,
            pkt_duration_tb,
            sync_opts: 0,
            frame_number: 0,
            last_nb0: [0; 3],
        }
    }

    /// `adjust_frame_pts_to_encoder_tb`: the frame's time in output frames, with extra precision.
    fn sync_ipts(&self, pts: Option<i64>) -> f64 {
        let Some(pts) = pts else { return NOPTS_F64 };
        let extra_bits = (29 - log2(self.enc_tb.1)).clamp(0, 16);
        let tb = (self.enc_tb.0, self.enc_tb.1 << extra_bits);
        let mut f = rescale_q(pts, self.filter_tb, tb) as f64;
        f /= f64::from(1u32 << extra_bits);
        // FFSIGN(0) is -1
        f + if f > 0.0 { 1.0 } else { -1.0 } / f64::from(1u32 << 17)
    }

    /// One frame out of the filter graph (`pts` in the filter time base, `pkt_duration` in the input
    /// stream's time base): how many copies of the previous and of this frame the CLI writes.
    pub(crate) fn push(&mut self, pts: Option<i64>, pkt_duration: i64, has_previous: bool) -> Emit {
        let mut sync_ipts = self.sync_ipts(pts);
        let mut duration = self.base_duration;
        if let Some(stb) = self.pkt_duration_tb {
            let d = lrintf(pkt_duration as f64 * q2d(stb) / q2d(self.enc_tb));
            if d > 0 {
                duration = d as f64;
            }
        }
        let mut delta0 = sync_ipts - self.sync_opts as f64;
        let mut delta = delta0 + duration;
        let mut nb0: i64 = 0;
        let mut nb: i64 = 1;
        if delta0 < 0.0 && delta > 0.0 {
            // "Clipping frame in rate conversion"
            sync_ipts = self.sync_opts as f64;
            duration += delta0;
            delta0 = 0.0;
        }
        if self.vscfr && self.frame_number == 0 && delta0 >= 0.5 {
            // "Not duplicating initial frames"
            delta = duration;
            delta0 = 0.0;
            self.sync_opts = sync_ipts.round_ties_even() as i64; // llrint
        }
        if delta < -1.1 {
            nb = 0;
        } else if delta > 1.1 {
            nb = lrintf(delta);
            if delta0 > 1.1 {
                nb0 = lrintf(delta0 - 0.6);
            }
        }
        nb0 = nb0.min(nb);
        self.last_nb0 = [nb0, self.last_nb0[0], self.last_nb0[1]];
        // "frame duplication too large, skipping" (dts_error_threshold * 30)
        if nb > 3600 * 30 * 30 {
            return Emit { previous: 0, current: 0 };
        }
        let previous = if has_previous { nb0 } else { 0 };
        self.sync_opts += nb;
        self.frame_number += nb as u64;
        Emit { previous: previous as usize, current: (nb - previous) as usize }
    }

    /// End of stream: how many more copies of the last frame the CLI writes (`mid_pred` of the last three
    /// duplication counts).
    pub(crate) fn flush(&mut self, has_previous: bool) -> usize {
        let [a, b, c] = self.last_nb0;
        let n = a.max(b).min(a.min(b).max(c));
        if has_previous {
            self.sync_opts += n;
            n as usize
        } else {
            0
        }
    }
}

/// `av_log2` for positive values.
fn log2(v: i64) -> i64 {
    63 - i64::from(v.max(1).leading_zeros())
}

/// Output frame → index of the source frame it shows, for frames pushed with [`CfrSync`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Schedule {
    pub(crate) source: Vec<usize>,
}

impl Schedule {
    /// Record the outcome of pushing source frame `index` (the previous push was `prev`).
    pub(crate) fn record(&mut self, emit: Emit, prev: Option<usize>, index: usize) {
        if let Some(p) = prev {
            self.source.extend(std::iter::repeat_n(p, emit.previous));
        }
        self.source.extend(std::iter::repeat_n(index, emit.current));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rescale_rounds_half_away_from_zero() {
        assert_eq!(rescale_q(1, (1, 2), (1, 1)), 1);
        assert_eq!(rescale_q(-1, (1, 2), (1, 1)), -1);
        assert_eq!(rescale_q(1001, (1, 30000), (1, 1_000_000)), 33367);
        assert_eq!(rescale_q(1, (125, 2997), (1, 1_000_000)), 41708);
    }

    fn run(tb: Q, rate: Q, one_stream: bool, stamps: &[i64], dur: i64) -> Vec<usize> {
        let mut s = CfrSync::new(Some(rate), tb, one_stream, true, Some(tb));
        let mut sched = Schedule::default();
        let mut prev = None;
        for (i, &pts) in stamps.iter().enumerate() {
            let e = s.push(Some(pts), dur, prev.is_some());
            sched.record(e, prev, i);
            prev = Some(i);
        }
        let n = s.flush(prev.is_some());
        sched.source.extend(std::iter::repeat_n(stamps.len() - 1, n));
        sched.source
    }

    /// An input stamped 1, 2, 3 at 1/fps (a packed-B-frame AVI): frame 0 is written twice with `cfr` (the
    /// file also has audio), once with `vscfr` (one stream).
    #[test]
    fn first_frame_repeated_unless_one_stream() {
        let tb = (125, 2997);
        assert_eq!(run(tb, (2997, 125), false, &[1, 2, 3], 1), vec![0, 0, 1, 2]);
        assert_eq!(run(tb, (2997, 125), true, &[1, 2, 3], 1), vec![0, 1, 2]);
    }

    /// 10 fps stamped 0, 0.1, 0.2, 0.5, 0.52, 0.6 s: the gap repeats frames 2 and 3, the late frames are
    /// clipped into the following slots (traced by hand through do_video_out; the integration tests
    /// check the same logic against the CLI on real files).
    #[test]
    fn gaps_repeat_frames() {
        assert_eq!(run((1, 100), (10, 1), true, &[0, 10, 20, 50, 52, 60], 10), vec![0, 1, 2, 2, 3, 3, 4, 5]);
    }
}
