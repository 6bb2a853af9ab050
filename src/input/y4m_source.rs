//! The source thread's loop for a Y4M input: read each frame straight into a pooled I420
//! buffer, stamp it with its slot, burn in the timecode, hand it to the encoder.
//!
//! Timing. With pacing (the default) the input is a live source: frame slot `n` is due at
//! `t0 + (n - first)/fps`, `t0` being the instant the run's first frame (slot `first`, which
//! continues the stream's clock across restarts) arrived; the loop sleeps until a frame's
//! slot is due if the input is early (a file, or a pipe from a producer that runs ahead), so the
//! stream never runs ahead of real time, and a producer that is slower sets the pace. A frame
//! that arrives more than a segment after its slot was due, or a wait for one that lasts that
//! long (the producer stopped), is a stall:
//!
//! 1. at once, a [`Item::Gap`] goes down the pipeline: the segmenter closes the segment in
//!    progress after its last frame and publishes it, and marks the next one
//!    `EXT-X-DISCONTINUITY`; `/healthz` says stalled (503);
//! 2. when a frame comes again it takes the slot of the current time (the slot counter jumps to
//!    `first + (now - t0) * fps`), so stream time stays "time since the stream's first frame" and every
//!    program date time stays true without re-anchoring the playlist; that frame opens a segment
//!    (an IDR) and `/healthz` recovers with the next published segment. Players keep playing
//!    across the discontinuity without a reload.
//!
//! If the encoder is behind, a frame that finds no free buffer is read and dropped (counted),
//! unless it opens a segment, as with the checkerboard. Without pacing (`--no-pacing`) frames are
//! read as fast as the encoder takes them, none is dropped, and no stall is ever declared.
//!
//! The end of the input ends the stream. An error in the input ends it too; the pipeline decides
//! whether that is an exit-2 error (no segment published yet) or a clean end.

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use tracing::{debug, info, warn};

use super::y4m::{Frame, Polled, Waiting, Y4mError, Y4mReader};
use super::Y4mInput;
use crate::clock::Clock;
use crate::frame::YuvFrame;
use crate::overlay::{Timecode, TimecodeOverlay};
use crate::pipeline::{Item, RawFrame, SourceEnd};
use crate::source::FrameInfo;
use crate::state::Shared;
use crate::time::{Duration90k, FrameRate, SegmentClock, StreamTime};

/// A Y4M input after [`super::open`]: its header and first frame are read.
pub(crate) struct Y4mOpened {
    pub(crate) input: Y4mInput,
    pub(crate) reader: Y4mReader<Polled>,
    pub(crate) first: YuvFrame,
}

/// Everything the Y4M source thread needs.
pub(crate) struct Y4mJob<R> {
    pub(crate) input: Y4mInput,
    pub(crate) reader: Y4mReader<R>,
    /// The frame read before the stream started (frame 0).
    pub(crate) first: Option<YuvFrame>,
    /// The burnt-in timecode; `None` leaves the picture as it came.
    pub(crate) overlay: Option<TimecodeOverlay>,
    pub(crate) clock: Box<dyn Clock>,
    pub(crate) rate: FrameRate,
    /// The slot of this run's first frame (stream time goes on across restarts).
    pub(crate) first_slot: u64,
    pub(crate) segments: SegmentClock,
    /// A frame this late, or a wait this long, is a stall (one segment).
    pub(crate) stall_after: Duration90k,
    pub(crate) frame_limit: Option<u64>,
    pub(crate) pacing: bool,
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) shared: Arc<Shared>,
}

/// The loop's view while a read waits for the input (see [`Waiting`]).
struct Watch<'w, 's> {
    clock: &'w dyn Clock,
    stop: &'w AtomicBool,
    /// When reached with the frame still not there, the input has stalled.
    stall_at: Option<Instant>,
    stall: &'w mut Stall<'s>,
}

/// Declares stalls: once per stall, a gap down the pipeline and the status flag.
struct Stall<'a> {
    out: &'a Sender<Item<RawFrame>>,
    shared: &'a Shared,
    rate: FrameRate,
    /// The last slot sent, if any: the segment in progress ends one frame after it.
    last_sent: Option<u64>,
    /// A stall was declared and no frame has come since.
    stalled: bool,
    /// The pipeline is gone: stop reading.
    closed: bool,
}

impl Stall<'_> {
    fn declare(&mut self, why: &str) {
        if self.stalled {
            return;
        }
        self.stalled = true;
        warn!(
            "the input {why}: the segment in progress is published now, and the stream \
             continues after a discontinuity when frames come again"
        );
        self.shared.update_status(|s| s.input_stalled = true);
        let end = self
            .last_sent
            .map_or(StreamTime::ZERO, |n| self.rate.time_of(n + 1));
        if self.out.send(Item::Gap { end }).is_err() {
            self.closed = true;
        }
    }
}

impl Waiting for Watch<'_, '_> {
    fn still_waiting(&mut self) -> bool {
        if self.stop.load(Ordering::Relaxed) || self.stall.closed {
            return false;
        }
        if self.stall_at.is_some_and(|at| self.clock.now() >= at) {
            self.stall
                .declare("stalled: no frame for more than a segment");
        }
        !self.stall.closed
    }
}

impl<R: Read> Y4mJob<R> {
    /// Reads, paces and sends frames until the input ends, `stop` is set, the frame limit is
    /// reached, the input fails, or the encoder is gone.
    pub(crate) fn run(self, free: Receiver<YuvFrame>, out: Sender<Item<RawFrame>>) -> SourceEnd {
        let Y4mJob {
            input,
            mut reader,
            mut first,
            overlay,
            clock,
            rate,
            first_slot,
            mut segments,
            stall_after,
            frame_limit,
            pacing,
            stop,
            shared,
        } = self;
        let stall_after = stall_after.as_std();
        let mut stall = Stall {
            out: &out,
            shared: &shared,
            rate,
            last_sent: None,
            stalled: false,
            closed: false,
        };
        let (mut sent, mut dropped) = (0u64, 0u64);
        let mut error = None;
        // The instant the run's first slot was due: when its frame came.
        let mut t0: Option<Instant> = None;
        let start = rate.time_of(first_slot);
        // Time from the run's first slot to slot `n`.
        let offset = |n: u64| (rate.time_of(n) - start).as_std();
        // The next frame opens a segment whatever the clock says (the first after a stall).
        let mut force_open = false;
        let mut n = first_slot;
        while frame_limit.is_none_or(|limit| n - first_slot < limit)
            && !stop.load(Ordering::Relaxed)
        {
            let due = t0.map(|t0| t0 + offset(n));
            if let (true, Some(due)) = (pacing, due) {
                clock.sleep_until(due);
            }
            let buf = match first.take() {
                Some(f) => Some((f, true)),
                None => {
                    let must_deliver = !pacing
                        || force_open
                        || stall.stalled
                        || segments.would_open(rate.time_of(n));
                    match free.try_recv() {
                        Ok(b) => Some((b, false)),
                        Err(TryRecvError::Empty) if must_deliver => match free.recv() {
                            Ok(b) => Some((b, false)),
                            Err(_) => break,
                        },
                        Err(TryRecvError::Empty) => None,
                        Err(TryRecvError::Disconnected) => break,
                    }
                }
            };
            // Stalls are declared only while paced, once per stall.
            let stall_at = due
                .filter(|_| pacing && !stall.stalled)
                .map(|due| due + stall_after);
            let (read, buf) = {
                // The watch borrows the stall state for this one read.
                let mut watch = Watch {
                    clock: &*clock,
                    stop: &stop,
                    stall_at,
                    stall: &mut stall,
                };
                match buf {
                    Some((b, true)) => (Ok(Frame::Read), Some(b)),
                    Some((mut b, false)) => (reader.read_frame(&mut b, &mut watch), Some(b)),
                    None => (reader.skip_frame(&mut watch), None),
                }
            };
            match read {
                Ok(Frame::Read) => {}
                Ok(Frame::End) => {
                    info!(frames = reader.next_frame(), "the input ended");
                    break;
                }
                Ok(Frame::Stopped) => break,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
            let now = clock.now();
            let t0 = *t0.get_or_insert_with(|| now.checked_sub(offset(n)).unwrap_or(now));
            let due = t0 + offset(n);
            if pacing && (stall.stalled || now > due + stall_after) {
                stall.declare("fell more than a segment behind real time");
                if stall.closed {
                    break;
                }
                // The frame takes the slot of the current time.
                let now_on_stream = start + Duration90k::from_std(now - t0);
                let slot = rate.first_frame_at_or_after(now_on_stream).max(n);
                info!(
                    skipped_slots = slot - n,
                    gap_secs = format!("{:.3}", (now - due).as_secs_f64()),
                    "the input is back: the stream continues after a discontinuity"
                );
                n = slot;
                stall.stalled = false;
                force_open = true;
                shared.update_status(|s| s.input_stalled = false);
            }
            let Some(mut yuv) = buf else {
                dropped += 1;
                shared.update_status(|s| s.frames_dropped = dropped);
                if dropped.is_power_of_two() {
                    warn!(
                        dropped,
                        slot = n,
                        "encoder is behind real time: dropping input frames"
                    );
                }
                n += 1;
                continue;
            };
            let opens_segment = segments.opens_segment(rate.time_of(n)) || force_open;
            force_open = false;
            if let Some(overlay) = &overlay {
                overlay.draw_i420(&mut yuv, Timecode::from_frame(n, rate));
            }
            let frame = RawFrame {
                slot: n,
                yuv,
                info: FrameInfo::default(),
                opens_segment,
            };
            if out.send(Item::Frame(frame)).is_err() {
                break;
            }
            stall.last_sent = Some(n);
            sent += 1;
            n += 1;
        }
        debug!(sent, dropped, "Y4M source stopped");
        SourceEnd {
            sent,
            dropped,
            input_error: error.map(|e: Y4mError| input.error(e)),
        }
    }
}

#[cfg(test)]
mod tests;
