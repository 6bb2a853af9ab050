//! A Y4M input as a [`FrameSource`] for the one source loop ([`super::source_loop`]): read each
//! frame straight into a pooled I420 buffer and stamp it with its slot; the loop burns in the
//! timecode and hands it to the encoder.
//!
//! Timing. With pacing (the default) the input is a live source: frame slot `n` is due at
//! `t0 + (n - first)/fps`, `t0` being the instant the run's first frame (slot `first`, which
//! continues the stream's clock across restarts) arrived; the loop sleeps until a frame's
//! slot is due if the input is early (a file, or a pipe from a producer that runs ahead), so the
//! stream never runs ahead of real time, and a producer that is slower sets the pace. A frame
//! that arrives more than a segment after its slot was due, or a wait for one that lasts that
//! long (the producer stopped), is a stall:
//!
//! 1. at once, a [`crate::slots::Item::Gap`] goes down the pipeline: the segmenter closes the segment in
//!    progress after its last frame and publishes it, and marks the next one
//!    `EXT-X-DISCONTINUITY`; `/healthz` says stalled (503);
//! 2. when a frame comes again it takes the slot of the current time (the slot counter jumps to
//!    `first + (now - t0) * fps`), so stream time stays "time since the stream's first frame" and every
//!    program date time stays true without re-anchoring the playlist; that frame opens a segment
//!    (an IDR) and `/healthz` recovers with the next published segment. Players keep playing
//!    across the discontinuity without a reload.
//!
//! If the encoder is behind, a frame that finds no free buffer is read and dropped (counted),
//! unless it opens a segment, as with the checkerboard (the rule is [`crate::slots`]'). Without pacing (`--no-pacing`) frames are
//! read as fast as the encoder takes them, none is dropped, and no stall is ever declared.
//!
//! The end of the input ends the stream. An error in the input ends it too; the pipeline decides
//! whether that is an exit-2 error (no segment published yet) or a clean end.

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tracing::{info, warn};

use super::y4m::{Forever, Frame, Polled, Waiting, Y4mError, Y4mReader};
use super::Y4mInput;
use crate::clock::Clock;
use crate::error::Error;
use crate::frame::{FrameInfo, YuvFrame};
use crate::slots::{EncoderGone, Feed, FrameSource, Next};
use crate::state::Shared;
use crate::time::{Duration90k, FrameRate, StreamTime};

/// A Y4M input after [`super::open`]: its header is read.
pub(crate) struct Y4mOpened {
    pub(crate) input: Y4mInput,
    pub(crate) reader: Y4mReader<Polled>,
}

impl Y4mOpened {
    /// The frame size and, if its header gives one, the frame rate.
    pub(crate) fn format(&self) -> (usize, usize, Option<FrameRate>) {
        let f = self.reader.format();
        (f.width, f.height, f.rate)
    }

    /// Reads the first frame (a stream without one is an error) for a stream at `rate`.
    pub(crate) fn read_first(&mut self, rate: FrameRate) -> Result<YuvFrame, Error> {
        let (input, format) = (&self.input, self.reader.format().clone());
        let mut first = YuvFrame::new(format.width, format.height);
        match self.reader.read_frame(&mut first, &mut Forever) {
            Ok(Frame::Read) => {}
            Ok(Frame::End | Frame::Stopped) => return Err(input.error(Y4mError::NoFrames)),
            Err(e) => return Err(input.error(e)),
        }
        info!(
            input = %input,
            size = format!("{}x{}", format.width, format.height),
            fps = format!("{}/{}", rate.num, rate.den),
            colour_space = %format.colour_space,
            "YUV4MPEG2 input"
        );
        if let Some(i @ ('t' | 'b' | 'm')) = format.interlace {
            warn!(
                interlace = %i,
                "the Y4M input is interlaced; its frames are encoded as progressive pictures"
            );
        }
        Ok(first)
    }
}

/// A Y4M input as the source thread's [`FrameSource`].
pub(crate) struct Y4mSource<R> {
    input: Y4mInput,
    reader: Y4mReader<R>,
    /// The frame read before the stream started (frame 0).
    first: Option<YuvFrame>,
    clock: Box<dyn Clock>,
    rate: FrameRate,
    /// Stream time of the run's first slot (stream time goes on across restarts).
    start: StreamTime,
    /// The instant the run's first slot was due: when its frame came.
    t0: Option<Instant>,
    /// The next frame's slot.
    n: u64,
    /// A frame this late, or a wait this long, is a stall (one segment).
    stall_after: std::time::Duration,
    /// A stall was declared and no frame has come since.
    stalled: bool,
    shared: Arc<Shared>,
}

impl<R> Y4mSource<R> {
    /// The input's frames from slot `first_slot` on, `first` (already read) first.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        input: Y4mInput,
        reader: Y4mReader<R>,
        first: Option<YuvFrame>,
        clock: Box<dyn Clock>,
        rate: FrameRate,
        first_slot: u64,
        stall_after: Duration90k,
        shared: Arc<Shared>,
    ) -> Self {
        Y4mSource {
            input,
            reader,
            first,
            clock,
            rate,
            start: rate.time_of(first_slot),
            t0: None,
            n: first_slot,
            stall_after: stall_after.as_std(),
            stalled: false,
            shared,
        }
    }
}

/// Declares a stall, once per stall: a gap down the pipeline and the status flag.
fn declare(stalled: &mut bool, shared: &Shared, feed: &mut Feed<'_>, why: &str) {
    if *stalled {
        return;
    }
    *stalled = true;
    warn!(
        "the input {why}: the segment in progress is published now, and the stream \
         continues after a discontinuity when frames come again"
    );
    shared.update_status(|s| s.input_stalled = true);
    feed.gap();
}

/// The loop's view while a read waits for the input (see [`Waiting`]).
struct Watch<'w, 'f> {
    clock: &'w dyn Clock,
    stop: &'w AtomicBool,
    /// When reached with the frame still not there, the input has stalled.
    stall_at: Option<Instant>,
    stalled: &'w mut bool,
    shared: &'w Shared,
    feed: &'w mut Feed<'f>,
}

impl Waiting for Watch<'_, '_> {
    fn still_waiting(&mut self) -> bool {
        if self.stop.load(Ordering::Relaxed) || self.feed.closed() {
            return false;
        }
        if self.stall_at.is_some_and(|at| self.clock.now() >= at) {
            declare(
                self.stalled,
                self.shared,
                self.feed,
                "stalled: no frame for more than a segment",
            );
        }
        !self.feed.closed()
    }
}

impl<R: Read + Send> FrameSource for Y4mSource<R> {
    const DROPPED: &'static str = "input frames";

    fn next_slot(&self) -> Option<u64> {
        Some(self.n)
    }

    /// Reads and paces the next frame; the end of the input or an error in it ends the loop.
    fn next(&mut self, feed: &mut Feed<'_>) -> Next {
        let pacing = feed.pacing();
        let (rate, start) = (self.rate, self.start);
        // Time from the run's first slot to slot `n`.
        let offset = |n: u64| (rate.time_of(n) - start).as_std();
        let due = self.t0.map(|t0| t0 + offset(self.n));
        if let (true, Some(due)) = (pacing, due) {
            self.clock.sleep_until(due);
        }
        let buf = match self.first.take() {
            Some(f) => Some((f, true)),
            None => match feed.take_buffer(self.n, self.stalled) {
                Ok(b) => b.map(|b| (b, false)),
                Err(EncoderGone) => return Next::Closed,
            },
        };
        // Stalls are declared only while paced, once per stall.
        let stall_at = due
            .filter(|_| pacing && !self.stalled)
            .map(|due| due + self.stall_after);
        let (read, buf) = {
            // The watch borrows the stall state for this one read.
            let mut watch = Watch {
                clock: &*self.clock,
                stop: feed.stop(),
                stall_at,
                stalled: &mut self.stalled,
                shared: &self.shared,
                feed: &mut *feed,
            };
            match buf {
                Some((b, true)) => (Ok(Frame::Read), Some(b)),
                Some((mut b, false)) => (self.reader.read_frame(&mut b, &mut watch), Some(b)),
                None => (self.reader.skip_frame(&mut watch), None),
            }
        };
        match read {
            Ok(Frame::Read) => {}
            Ok(Frame::End) => {
                info!(frames = self.reader.next_frame(), "the input ended");
                return Next::End(None);
            }
            Ok(Frame::Stopped) => return Next::Closed,
            Err(e) => return Next::End(Some(self.input.error(e))),
        }
        let now = self.clock.now();
        let n = self.n;
        let t0 = *self
            .t0
            .get_or_insert_with(|| now.checked_sub(offset(n)).unwrap_or(now));
        let due = t0 + offset(n);
        if pacing && (self.stalled || now > due + self.stall_after) {
            declare(
                &mut self.stalled,
                &self.shared,
                feed,
                "fell more than a segment behind real time",
            );
            if feed.closed() {
                return Next::Closed;
            }
            // The frame takes the slot of the current time, and opens a segment (the gap said
            // so).
            let now_on_stream = start + Duration90k::from_std(now - t0);
            let slot = rate.first_frame_at_or_after(now_on_stream).max(n);
            info!(
                skipped_slots = slot - n,
                gap_secs = format!("{:.3}", (now - due).as_secs_f64()),
                "the input is back: the stream continues after a discontinuity"
            );
            self.n = slot;
            self.stalled = false;
            self.shared.update_status(|s| s.input_stalled = false);
        }
        let slot = self.n;
        self.n += 1;
        Next::Frame {
            slot,
            yuv: buf,
            info: FrameInfo::default(),
        }
    }
}

#[cfg(test)]
mod tests;
