//! Passthrough timing and cutting for a camera's H.264 (pure: no I/O, no clock reads).
//!
//! The camera's access units go into the TS muxer unchanged; this decides, per frame, its
//! stream time and whether it opens a segment.
//!
//! - **Runs.** A run is one RTSP session's frames. Frames before a run's first IDR are skipped
//!   (a decoder cannot start there). The first IDR's stream time is the camera's wall clock for
//!   it (from an RTCP sender report, else its arrival), taken onto the stream clock, and never
//!   earlier than the end of the previous run; every later frame of the run is the previous
//!   frame plus its RTP timestamp's distance from it (90 kHz, unwrapped by retina). So PTS is
//!   continuous within a run and DTS = PTS. A new run follows an `EXT-X-DISCONTINUITY`.
//! - **Following the camera's wall clock.** A camera's RTP clock is its own oscillator; its RTCP
//!   sender reports say what its wall clock reads at an RTP time. The first frame of a run that
//!   a report dates fixes the run's offset from the reports (zero when the run's first IDR was
//!   dated by one; the arrival's error otherwise, kept, not slewed away); from then on, when a
//!   frame's time by the newest report ([`CameraFrame::sender_wall`]) less that offset is off
//!   the time the RTP steps give, the frame's step is lengthened or shortened by at most
//!   1 / [`SLEW`] of it (0.33 %, 10 ticks at 30 fps) towards it. So `EXT-X-PROGRAM-DATE-TIME`,
//!   which is the stream's anchor plus the exact sum of the EXTINFs (R33), follows the latest
//!   sender report's rate without a re-anchor: a re-anchor would need an
//!   `EXT-X-DISCONTINUITY` (R33 allows new dates only there); PTS stays monotonic and
//!   continuous. A report more than [`STEER_LIMIT`] off is not followed (the camera's clock is
//!   not set right; its RTP steps are). Without reports, the arrival of the run's first IDR
//!   anchors it and RTP steps alone place the rest.
//! - **Reordering.** An RTP timestamp that goes back means the camera sends frames out of
//!   presentation order (B-frames): refused ([`PassError::Reordered`]) with the camera setting
//!   to change, since DTS = PTS cannot carry them. One that repeats the previous frame's is not
//!   a new picture (one access unit per timestamp, RFC 6184 §5.1) but the rest of one the
//!   depacketizer split (retina logs "bad access unit"; GStreamer's server does it when a
//!   second client joins a media that is still starting): skipped.
//! - **Cuts.** A segment opens at the first IDR at or after each `--hls-time` boundary
//!   ([`SegmentClock`], from the run's first IDR), or earlier at an IDR when waiting one more
//!   GOP (the longest seen) would take the segment past TARGETDURATION.
//! - **TARGETDURATION** ([`crate::playlist::segment_bound`] with [`Cuts::CameraGop`]): fixed
//!   for the playlist's life (R14), so it is chosen once, from the first GOP measured at
//!   connection: `--hls-time` rounded up to whole GOPs (`ceil(T / g) * g`), in whole seconds
//!   rounded up (with under a millisecond of slack for cameras whose timestamps jitter by a
//!   tick). A camera whose GOP later grows can still make a longer segment; the
//!   caller warns (with the camera setting to change) and the playlist, which may not list it
//!   (R13), leaves it out behind a discontinuity.

#[cfg(doc)]
use crate::playlist::Cuts;
use crate::rtsp::CameraFrame;
use crate::time::{Duration90k, SegmentClock, StreamTime, TICKS_PER_MS};

/// The frame duration assumed before two frames of a run have been seen (30 fps).
const DEFAULT_FRAME: Duration90k = Duration90k(3000);

/// Most a frame's step is changed to follow the camera's sender reports: 1 / SLEW of it (a
/// camera clock up to 3300 ppm off is followed; real ones are within 100).
pub(crate) const SLEW: u64 = 300;

/// A sender report further than this off the RTP steps' time is not followed.
pub(crate) const STEER_LIMIT: Duration90k = Duration90k::from_secs(1);

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
    /// The run's offset from its camera's sender reports (see the module docs), once a report
    /// has dated one of its frames.
    sr_offset: Option<i64>,
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
            let epoch_ticks = self.epoch_unix_ms * TICKS_PER_MS as i64;
            let wall = match f.sender_wall {
                // To the tick, as the reports date the frames after it.
                Some(w) => StreamTime(w.saturating_sub(epoch_ticks).max(0) as u64),
                None => {
                    let since_epoch_ms = f.wall_unix_ms.saturating_sub(self.epoch_unix_ms).max(0);
                    StreamTime(since_epoch_ms as u64 * TICKS_PER_MS)
                }
            };
            let anchor = wall.max(self.not_before);
            let mut clock = SegmentClock::starting_at(self.segment, anchor);
            clock.opens_segment(anchor);
            let sr_offset = f
                .sender_wall
                .map(|w| anchor.as_u64() as i64 - (w - epoch_ticks))
                .filter(|o| o.unsigned_abs() <= STEER_LIMIT.as_u64());
            self.run = Some(Run {
                sr_offset,
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
        let step = (f.rtp - run.last_rtp) as u64;
        let nominal = run.last_at + Duration90k(step);
        let at = match f.sender_wall {
            Some(wall) => {
                let target = wall - self.epoch_unix_ms * TICKS_PER_MS as i64;
                let off = target - nominal.as_u64() as i64;
                if off.unsigned_abs() > STEER_LIMIT.as_u64() {
                    nominal
                } else {
                    let kept = *run.sr_offset.get_or_insert(-off);
                    let most = (step / SLEW) as i64;
                    let steer = (off + kept).clamp(-most, most);
                    StreamTime((nominal.as_u64() as i64 + steer) as u64)
                }
            }
            None => nominal,
        };
        run.frame = at - run.last_at;
        run.last_rtp = f.rtp;
        run.last_at = at;
        let mut opens_segment = false;
        if f.keyframe {
            let gop = at - run.last_idr;
            run.last_idr = at;
            self.longest_gop = self.longest_gop.max(gop);
            let at_boundary = run.clock.opens_segment(at);
            // Cut early when one more GOP would take the segment past the target (give or take
            // what following the sender reports may lengthen it by).
            let slack = Duration90k(self.target.as_u64() / SLEW);
            let early = at - run.segment_start + self.longest_gop > self.target + slack;
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
            sender_wall: None,
        }
    }

    /// 2 s segments of a camera with a 2 s GOP (TARGETDURATION 2), its epoch at `epoch` ms.
    fn two_second_gops(epoch: i64) -> Passthrough {
        Passthrough::new(
            Duration90k::from_secs(2),
            2,
            Duration90k::from_secs(2),
            epoch,
            StreamTime::ZERO,
        )
    }

    /// The longest segment and TARGETDURATION for a camera of GOP `gop`.
    fn gop_bound(segment: Duration90k, gop: Duration90k) -> (Duration90k, u64) {
        crate::playlist::segment_bound(segment, crate::playlist::Cuts::CameraGop(gop))
    }

    #[test]
    fn target_is_hls_time_rounded_up_to_whole_gops() {
        let s = Duration90k::from_secs;
        let ms = Duration90k::from_millis;
        assert_eq!(gop_bound(s(2), s(2)), (s(2), 2));
        assert_eq!(gop_bound(s(2), s(1)), (s(2), 2));
        // 1.5 s GOP: the first IDR at or after 2 s comes at 3 s.
        assert_eq!(gop_bound(s(2), ms(1500)), (s(3), 3));
        // GOP longer than --hls-time: one GOP per segment.
        assert_eq!(gop_bound(s(2), s(4)), (s(4), 4));
        // 29.97 fps, 60 frames: 2.002 s needs 3; a tick of jitter on 2 s does not.
        assert_eq!(gop_bound(s(2), Duration90k(180_180)).1, 3);
        assert_eq!(gop_bound(s(2), Duration90k(180_001)).1, 2);
        assert_eq!(gop_bound(s(6), ms(800)).1, 7);
    }

    /// 30 fps, IDR every 60 frames, 2 s segments: a cut on every IDR, times from the RTP clock
    /// anchored at the first IDR's wall clock; frames before the first IDR are skipped.
    #[test]
    fn cuts_on_the_first_idr_at_or_after_each_boundary() {
        let epoch = 1_000_000;
        let mut p = two_second_gops(epoch);
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
        let (_, target) = gop_bound(Duration90k::from_secs(2), Duration90k::from_millis(1500));
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

    /// A camera whose RTP clock runs 0.27 % fast against its sender reports' wall clock, its first
    /// IDR anchored 60 ms late (at its arrival, before any report): that offset is kept, and every
    /// later frame follows the reports' time plus it, to the tick, with steps changed by at most
    /// 10 ticks, where the RTP steps alone would be 160 ms off after 20 s.
    #[test]
    fn frame_times_follow_the_sender_reports() {
        let epoch = 1_000_000;
        let mut p = two_second_gops(epoch);
        // The truth: frame n is at n / 30 s of the camera's wall clock, but its RTP time says
        // n * 3008 ticks.
        let wall = |n: i64| (epoch + 5_000) * 90 + n * 3000;
        let first = frame(0, true, epoch + 5_060);
        let mut last = p.push(&first).unwrap().unwrap().at;
        assert_eq!(last, StreamTime(5_060 * 90), "no report yet: the arrival");
        // Frame 1's RTP step puts it 5408 ticks after the reports' time: that stays.
        let late = 5_060 * 90 - 5_000 * 90 + 8;
        for n in 1..600 {
            let mut f = frame(n * 3008, n % 60 == 0, 0);
            f.sender_wall = Some(wall(n));
            let at = p.push(&f).unwrap().unwrap().at;
            let step = (at - last).as_u64();
            assert!((2998..=3008).contains(&step), "frame {n}: step {step}");
            last = at;
            let truth = (wall(n) - epoch * 90 + late) as u64;
            assert!(
                at.as_u64().abs_diff(truth) <= 1,
                "frame {n}: {at:?} vs {truth}"
            );
        }
        // A run whose first IDR a report dates starts on the reports' time.
        p.end_run();
        let mut f = frame(10_000_000, true, 0);
        f.sender_wall = Some(wall(2000));
        f.wall_unix_ms = wall(2000) / 90;
        let start = p.push(&f).unwrap().unwrap();
        assert!(start.starts_run);
        assert_eq!(start.at.as_u64() as i64, wall(2000) - epoch * 90);
        last = start.at;
        for n in 2001..2100 {
            let mut f = frame(10_000_000 + (n - 2000) * 3008, false, 0);
            f.sender_wall = Some(wall(n));
            last = p.push(&f).unwrap().unwrap().at;
            assert_eq!(last.as_u64() as i64, wall(n) - epoch * 90, "frame {n}");
        }
        // A report a minute off (a camera clock set wrong): the RTP steps are kept.
        let mut f = frame(10_000_000 + 100 * 3008, false, 0);
        f.sender_wall = Some(wall(2100) + 60 * 90_000);
        let at = p.push(&f).unwrap().unwrap().at;
        assert_eq!(at - last, Duration90k(3008));
    }
}
