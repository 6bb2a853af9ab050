//! The bottom floor of every source thread: frame slots, the pool of I420 buffers, drop
//! counting, and the [`FrameSource`] seam the checkerboard, a Y4M input and a transcoded camera
//! implement. The one loop over a [`FrameSource`] is [`crate::input::source_loop`]'s.
//!
//! The policy, written once here:
//! - **Buffers.** A frame is painted or read straight into a free pooled I420 buffer. When the
//!   encoder is behind there is none: the frame is dropped (counted, logged at each power of
//!   two), its slot stays empty, no timestamp moves.
//! - **Must deliver.** A frame that opens a segment is never dropped: the source waits for a
//!   buffer ([`Feed::take_buffer`]), so every segment starts on its boundary. Without pacing
//!   (`--no-pacing`) nothing is ever dropped.
//! - **Gaps.** An input that stalls or drops sends an [`Item::Gap`] ([`Feed::gap`]): the segment
//!   in progress ends after its last frame, and the next frame delivered opens a segment.
//!
//! Imports nothing of ours above the bottom floor (time, frames, errors).

use std::sync::atomic::AtomicBool;

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use crate::error::Error;
use crate::frame::{FrameInfo, YuvFrame};
use crate::time::{FrameRate, SegmentClock, StreamTime};

/// What travels down the pipeline: frames, and the gaps of an input that stalled.
pub(crate) enum Item<F> {
    Frame(F),
    /// The input stalled: the segment in progress ends at `end` (just after its last frame) and
    /// is published at once; the next frame opens a segment after `EXT-X-DISCONTINUITY`.
    Gap {
        end: StreamTime,
    },
}

/// A painted frame on its way to the encoder.
pub(crate) struct RawFrame {
    pub(crate) slot: u64,
    pub(crate) yuv: YuvFrame,
    pub(crate) info: FrameInfo,
    /// The frame opens a segment: IDR, and the segmenter cuts here.
    pub(crate) opens_segment: bool,
}

/// How a source thread ended.
pub(crate) struct SourceEnd {
    pub(crate) sent: u64,
    pub(crate) dropped: u64,
    /// The input failed (a bad frame in a Y4M stream, a camera that changed its size).
    pub(crate) input_error: Option<Error>,
}

/// The encoder thread is gone: the source stops.
pub(crate) struct EncoderGone;

/// What a [`FrameSource`] gives the loop for one step.
pub(crate) enum Next {
    /// A frame for `slot`, in a pooled buffer; `yuv` is `None` when no buffer was free and the
    /// frame is dropped (it was still consumed from the input).
    Frame {
        slot: u64,
        yuv: Option<YuvFrame>,
        info: FrameInfo,
    },
    /// Nothing to send this time (a wait that timed out, an event that is not a picture): the
    /// loop looks at `stop` and the frame limit, then asks again.
    Idle,
    /// The input ended (`None`) or failed.
    End(Option<Error>),
    /// The pipeline is gone (the encoder, or the queue behind it): stop.
    Closed,
}

/// A source of frames for the source thread's loop: it decides when the next frame is due and
/// which slot it takes (pacing, a Y4M pipe's pace and stalls, a camera's timestamps), and what
/// is in it; the [`Feed`] decides whether it gets a buffer.
pub(crate) trait FrameSource: Send {
    /// What a dropped frame is called in the log: "frames", "input frames", "camera frames".
    const DROPPED: &'static str;

    /// The slot the next frame takes, when known before it comes (a paced source): then the
    /// frame limit counts slots from the run's first. `None`: it counts frames sent.
    fn next_slot(&self) -> Option<u64>;

    /// Waits for the next frame and fills it, taking its buffer from `feed`.
    fn next(&mut self, feed: &mut Feed<'_>) -> Next;

    /// The loop ended (for a last log line).
    fn finish(&mut self) {}
}

/// The source thread's side of the pipeline: free buffers, the queue to the encoder, which
/// slots open a segment, and the drop count. Made by the loop, lent to the source each step.
pub(crate) struct Feed<'a> {
    free: &'a Receiver<YuvFrame>,
    out: &'a Sender<Item<RawFrame>>,
    segments: SegmentClock,
    rate: FrameRate,
    pacing: bool,
    stop: &'a AtomicBool,
    /// Told the new drop count after each drop (the status `/healthz` shows).
    on_drop: &'a dyn Fn(u64),
    dropped: u64,
    last_sent: Option<u64>,
    /// The next frame delivered opens a segment whatever the clock says (after a gap).
    force_open: bool,
    closed: bool,
}

impl<'a> Feed<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        free: &'a Receiver<YuvFrame>,
        out: &'a Sender<Item<RawFrame>>,
        segments: SegmentClock,
        rate: FrameRate,
        pacing: bool,
        stop: &'a AtomicBool,
        on_drop: &'a dyn Fn(u64),
    ) -> Self {
        Feed {
            free,
            out,
            segments,
            rate,
            pacing,
            stop,
            on_drop,
            dropped: 0,
            last_sent: None,
            force_open: false,
            closed: false,
        }
    }

    /// A free I420 buffer for the frame of `slot`: at once if the pool has one; else, when the
    /// frame must be delivered (it opens a segment, it follows a gap, `must` says so, or
    /// nothing is ever dropped without pacing), waited for; else `None`, and the frame is
    /// dropped.
    pub(crate) fn take_buffer(
        &self,
        slot: u64,
        must: bool,
    ) -> Result<Option<YuvFrame>, EncoderGone> {
        let must_deliver = !self.pacing
            || must
            || self.force_open
            || self.segments.would_open(self.rate.time_of(slot));
        match self.free.try_recv() {
            Ok(b) => Ok(Some(b)),
            Err(TryRecvError::Empty) if must_deliver => {
                self.free.recv().map(Some).map_err(|_| EncoderGone)
            }
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => Err(EncoderGone),
        }
    }

    /// Counts a dropped frame; returns the count so far, this one included (the caller logs
    /// at each power of two, not per frame).
    pub(crate) fn count_drop(&mut self) -> u64 {
        self.dropped += 1;
        (self.on_drop)(self.dropped);
        self.dropped
    }

    /// The input stalled or dropped: the segment in progress ends after the last frame sent
    /// (if any), and the next frame delivered opens a segment. False when the pipeline is
    /// gone.
    pub(crate) fn gap(&mut self) -> bool {
        self.force_open = true;
        if let Some(last) = self.last_sent {
            let end = self.rate.time_of(last + 1);
            if self.out.send(Item::Gap { end }).is_err() {
                self.closed = true;
            }
        }
        !self.closed
    }

    /// Sends a frame; whether it opens a segment is decided here. False when the pipeline is
    /// gone.
    pub(crate) fn send(&mut self, slot: u64, yuv: YuvFrame, info: FrameInfo) -> bool {
        let opens_segment = self.opens_segment(slot);
        let frame = RawFrame {
            slot,
            yuv,
            info,
            opens_segment,
        };
        if self.out.send(Item::Frame(frame)).is_err() {
            self.closed = true;
            return false;
        }
        self.last_sent = Some(slot);
        true
    }

    /// Whether the frame about to be sent for `slot` opens a segment (decided once per slot).
    fn opens_segment(&mut self, slot: u64) -> bool {
        let opens = self.segments.opens_segment(self.rate.time_of(slot)) || self.force_open;
        self.force_open = false;
        opens
    }

    pub(crate) fn pacing(&self) -> bool {
        self.pacing
    }

    pub(crate) fn stop(&self) -> &'a AtomicBool {
        self.stop
    }

    pub(crate) fn closed(&self) -> bool {
        self.closed
    }

    pub(crate) fn last_sent(&self) -> Option<u64> {
        self.last_sent
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }
}
