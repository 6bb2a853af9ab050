//! Passthrough timing and cutting for a camera's H.264 (pure: no I/O, no clock reads).
//!
//! The camera's access units go into the TS muxer unchanged; this decides, per frame, its
//! stream time and whether it opens a segment.
//!
//! - **Runs.** A run is one RTSP session's frames. Frames before a run's first IDR are skipped
//!   (a decoder cannot start there). The first IDR's stream time is the camera's wall clock for
//!   it (from an RTCP sender report, else its arrival), taken onto the stream clock, and never
//!   earlier than the end of the previous run; every later frame of the run is that plus its RTP
//!   timestamp's distance from the first (90 kHz, unwrapped by retina). So PTS is continuous
//!   within a run and DTS = PTS. A new run follows an `EXT-X-DISCONTINUITY`.
//! - **Reordering.** An RTP timestamp that goes back means the camera sends frames out of
//!   presentation order (B-frames): refused ([`PassError::Reordered`]) with the camera setting
//!   to change, since DTS = PTS cannot carry them. One that repeats the previous frame's is not
//!   a new picture (one access unit per timestamp, RFC 6184 §5.1) but the rest of one the
//!   depacketizer split (retina logs "bad access unit"; GStreamer's server does it when a
//!   second client joins a media that is still starting): skipped.
//! - **Cuts.** A segment opens at the first IDR at or after each `--hls-time` boundary
//!   ([`SegmentClock`], from the run's first IDR), or earlier at an IDR when waiting one more
//!   GOP (the longest seen) would take the segment past TARGETDURATION.
//! - **TARGETDURATION** ([`target_for_gop`]): fixed for the playlist's life (R14), so it is
//!   chosen once, from the first GOP measured at connection: `--hls-time` rounded up to whole
//!   GOPs (`ceil(T / g) * g`), in whole seconds rounded up (with under a millisecond of slack for
//!   cameras whose timestamps jitter by a tick). A camera whose GOP later grows can still make a longer segment; the
//!   caller warns (with the camera setting to change) and the playlist, which may not list it
//!   (R13), leaves it out behind a discontinuity.

use crate::rtsp::CameraFrame;
use crate::time::{Duration90k, SegmentClock, StreamTime, TICKS_PER_MS};

/// Slack for timestamp jitter when rounding the longest segment up to whole seconds: under a
/// millisecond, what an EXTINF (written to the ms) does not show.
const JITTER: Duration90k = Duration90k(TICKS_PER_MS - 1);

/// The frame duration assumed before two frames of a run have been seen (30 fps).
const DEFAULT_FRAME: Duration90k = Duration90k(3000);

/// The longest segment cutting at the first IDR at or after each `segment` boundary gives with
/// a steady GOP `gop`, and its TARGETDURATION in whole seconds (see the module docs).
pub(crate) fn target_for_gop(segment: Duration90k, gop: Duration90k) -> (Duration90k, u64) {
    let longest = if gop == Duration90k::ZERO {
        segment
    } else {
        gop * segment.as_u64().div_ceil(gop.as_u64())
    };
    let secs = Duration90k(longest.as_u64().saturating_sub(JITTER.as_u64()))
        .as_secs_ceil()
        .max(1);
    (longest, secs)
}

/// Where a frame goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Placed {
    pub(crate) at: StreamTime,
    pub(crate) keyframe: bool,
    pub(crate) opens_segment: bool,
    /// The first frame of a run: a new muxer (continuity counters restart) after a discontinuity.
    pub(crate) starts_run: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PassError {
    #[error(
        "the camera's frames are not in presentation order (RTP timestamp {rtp} after {prev}, \
         90 kHz): it sends B-frames, which passthrough cannot carry (DTS = PTS). Turn B-frames \
         off in the camera (H.264 profile Baseline, or B-frames / \"reference frames\" 0), or \
         use --transcode"
    )]
    Reordered { rtp: i64, prev: i64 },
}

#[derive(Clone, Debug)]
struct Run {
    first_rtp: i64,
    anchor: StreamTime,
    last_rtp: i64,
    last_at: StreamTime,
    frame: Duration90k,
    last_idr: StreamTime,
    segment_start: StreamTime,
    clock: SegmentClock,
}

/// The passthrough state for the life of the stream (all runs).
#[derive(Clone, Debug)]
pub(crate) struct Passthrough {
    segment: Duration90k,
    target: Duration90k,
    /// Unix milliseconds of stream time zero (the stream clock's epoch).
    epoch_unix_ms: i64,
    longest_gop: Duration90k,
    /// No frame of a new run may be earlier than this (the previous run's end, or the slot the
    /// publisher starts this process on).
    not_before: StreamTime,
    run: Option<Run>,
}

impl Passthrough {
    /// `gop`: the GOP measured at connection; `target_secs`: the playlist's TARGETDURATION.
    pub(crate) fn new(
        segment: Duration90k,
        target_secs: u64,
        gop: Duration90k,
        epoch_unix_ms: i64,
        not_before: StreamTime,
    ) -> Self {
        Passthrough {
            segment,
            target: Duration90k::from_secs(target_secs),
            epoch_unix_ms,
            longest_gop: gop,
            not_before,
            run: None,
        }
    }

    /// The longest GOP seen so far.
    pub(crate) fn longest_gop(&self) -> Duration90k {
        self.longest_gop
    }

    /// Places one frame; `None` for frames before a run's first IDR and for a repeat of the
    /// previous frame's timestamp (skipped).
    pub(crate) fn push(&mut self, f: &CameraFrame) -> Result<Option<Placed>, PassError> {
        let Some(run) = &mut self.run else {
            if !f.keyframe {
                return Ok(None);
            }
            let since_epoch_ms = f.wall_unix_ms.saturating_sub(self.epoch_unix_ms).max(0);
            let wall = StreamTime(since_epoch_ms as u64 * TICKS_PER_MS);
            let anchor = wall.max(self.not_before);
            let mut clock = SegmentClock::starting_at(self.segment, anchor);
            clock.opens_segment(anchor);
            self.run = Some(Run {
                first_rtp: f.rtp,
                anchor,
                last_rtp: f.rtp,
                last_at: anchor,
                frame: DEFAULT_FRAME,
                last_idr: anchor,
                segment_start: anchor,
                clock,
            });
            return Ok(Some(Placed {
                at: anchor,
                keyframe: true,
                opens_segment: true,
                starts_run: true,
            }));
        };
        if f.rtp == run.last_rtp {
            return Ok(None);
        }
        if f.rtp < run.last_rtp {
            return Err(PassError::Reordered {
                rtp: f.rtp,
                prev: run.last_rtp,
            });
        }
        let at = run.anchor + Duration90k((f.rtp - run.first_rtp) as u64);
        run.frame = at - run.last_at;
        run.last_rtp = f.rtp;
        run.last_at = at;
        let mut opens_segment = false;
        if f.keyframe {
            let gop = at - run.last_idr;
            run.last_idr = at;
            self.longest_gop = self.longest_gop.max(gop);
            let at_boundary = run.clock.opens_segment(at);
            // Cut early when one more GOP would take the segment past the target.
            let early = at - run.segment_start + self.longest_gop > self.target;
            opens_segment = at_boundary || early;
            if opens_segment {
                run.segment_start = at;
            }
        }
        Ok(Some(Placed {
            at,
            keyframe: f.keyframe,
            opens_segment,
            starts_run: false,
        }))
    }

    /// The run ended (the camera dropped or stalled): returns the stream time just after its
    /// last frame (where its last segment ends), or `None` when it placed no frame.
    pub(crate) fn end_run(&mut self) -> Option<StreamTime> {
        let run = self.run.take()?;
        let end = run.last_at + run.frame;
        self.not_before = end;
        Some(end)
    }

    /// Stream time just after the newest frame (the stream's end), if a run is open.
    pub(crate) fn end(&self) -> Option<StreamTime> {
        self.run.as_ref().map(|r| r.last_at + r.frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(rtp: i64, keyframe: bool, wall_unix_ms: i64) -> CameraFrame {
        CameraFrame {
            data: vec![0, 0, 0, 1, if keyframe { 0x65 } else { 0x41 }, 0],
            rtp,
            keyframe,
            wall_unix_ms,
        }
    }

    #[test]
    fn target_is_hls_time_rounded_up_to_whole_gops() {
        let s = Duration90k::from_secs;
        let ms = Duration90k::from_millis;
        assert_eq!(target_for_gop(s(2), s(2)), (s(2), 2));
        assert_eq!(target_for_gop(s(2), s(1)), (s(2), 2));
        // 1.5 s GOP: the first IDR at or after 2 s comes at 3 s.
        assert_eq!(target_for_gop(s(2), ms(1500)), (s(3), 3));
        // GOP longer than --hls-time: one GOP per segment.
        assert_eq!(target_for_gop(s(2), s(4)), (s(4), 4));
        // 29.97 fps, 60 frames: 2.002 s needs 3; a tick of jitter on 2 s does not.
        assert_eq!(target_for_gop(s(2), Duration90k(180_180)).1, 3);
        assert_eq!(target_for_gop(s(2), Duration90k(180_001)).1, 2);
        assert_eq!(target_for_gop(s(6), ms(800)).1, 7);
    }

    /// 30 fps, IDR every 60 frames, 2 s segments: a cut on every IDR, times from the RTP clock
    /// anchored at the first IDR's wall clock; frames before the first IDR are skipped.
    #[test]
    fn cuts_on_the_first_idr_at_or_after_each_boundary() {
        let epoch = 1_000_000;
        let mut p = Passthrough::new(
            Duration90k::from_secs(2),
            2,
            Duration90k::from_secs(2),
            epoch,
            StreamTime::ZERO,
        );
        assert_eq!(p.push(&frame(0, false, epoch + 10_000)).unwrap(), None);
        let mut opens = Vec::new();
        for n in 1..=200i64 {
            let placed = p
                .push(&frame(n * 3000, n % 60 == 1, epoch + 10_000))
                .unwrap()
                .unwrap();
            assert_eq!(placed.at, StreamTime(900_000 + (n as u64 - 1) * 3000));
            assert_eq!(placed.starts_run, n == 1);
            if placed.opens_segment {
                opens.push(n);
            }
        }
        assert_eq!(opens, vec![1, 61, 121, 181]);
        assert_eq!(
            p.end_run(),
            Some(StreamTime(900_000 + 200 * 3000)),
            "the run ends one frame after its last"
        );
    }

    /// A GOP that does not divide --hls-time: cut at the first IDR past each boundary, and
    /// earlier when the next GOP would overrun the target.
    #[test]
    fn irregular_gops_never_overrun_the_target() {
        let (_, target) = target_for_gop(Duration90k::from_secs(2), Duration90k::from_millis(1500));
        assert_eq!(target, 3);
        let mut p = Passthrough::new(
            Duration90k::from_secs(2),
            target,
            Duration90k::from_millis(1500),
            0,
            StreamTime::ZERO,
        );
        // IDRs every 45 frames, plus a scene cut IDR at frame 100.
        let mut starts = Vec::new();
        for n in 0..400i64 {
            let key = n % 45 == 0 || n == 100;
            let placed = p.push(&frame(n * 3000, key, 0)).unwrap().unwrap();
            if placed.opens_segment {
                starts.push(placed.at.as_u64());
            }
        }
        starts.push(p.end().unwrap().as_u64());
        for w in starts.windows(2) {
            let d = Duration90k(w[1] - w[0]);
            assert!(
                d <= Duration90k::from_secs(target),
                "segment from {} lasts {d:?}",
                w[0]
            );
        }
    }

    #[test]
    fn b_frames_are_refused() {
        let mut p = Passthrough::new(
            Duration90k::from_secs(2),
            2,
            Duration90k::from_secs(2),
            0,
            StreamTime::ZERO,
        );
        p.push(&frame(0, true, 0)).unwrap();
        p.push(&frame(9000, false, 0)).unwrap();
        // The same timestamp again is the rest of a split access unit, not a B-frame.
        assert_eq!(p.push(&frame(9000, false, 0)).unwrap(), None);
        assert_eq!(p.push(&frame(9000, true, 0)).unwrap(), None);
        let e = p.push(&frame(3000, false, 0)).unwrap_err();
        assert_eq!(
            e,
            PassError::Reordered {
                rtp: 3000,
                prev: 9000
            }
        );
        assert!(e.to_string().contains("B-frames"), "{e}");
    }

    /// A new run starts at its own wall clock, never before the previous run ended, and waits
    /// for an IDR.
    #[test]
    fn a_new_run_starts_after_the_previous_one() {
        let mut p = Passthrough::new(
            Duration90k::from_secs(2),
            2,
            Duration90k::from_secs(2),
            0,
            StreamTime(90_000),
        );
        // The wall clock says 0.5 s, but this process starts at 1 s of stream time.
        let first = p.push(&frame(500, true, 500)).unwrap().unwrap();
        assert_eq!(first.at, StreamTime(90_000));
        p.push(&frame(3500, false, 500)).unwrap();
        let end = p.end_run().unwrap();
        assert_eq!(end, StreamTime(96_000));
        // Reconnected 10 s later: RTP starts anew, non-IDR frames first.
        assert_eq!(p.push(&frame(7, false, 10_000)).unwrap(), None);
        let again = p.push(&frame(3007, true, 10_000)).unwrap().unwrap();
        assert_eq!(again.at, StreamTime(900_000));
        assert!(again.opens_segment && again.starts_run);
        // A camera whose clock is behind ours still goes forward.
        p.end_run();
        let behind = p.push(&frame(0, true, 1_000)).unwrap().unwrap();
        assert_eq!(behind.at, StreamTime(903_000));
    }
}
