//! The one source-thread loop, over any [`FrameSource`] (the paced checkerboard here, a Y4M
//! input in [`super::y4m_source`], a transcoded camera in [`crate::rtsp::transcode`]): until
//! `stop`, the frame limit, the input's end or the pipeline's, it takes each frame from the
//! source, counts and logs the dropped ones, burns in the timecode and hands the frame on. The
//! policy (buffers, the must-deliver rule, gaps) is [`crate::slots`]'.
//!
//! Dropped frames are counted (`hls_frames_total{outcome="dropped"}`, `/healthz`) one by one,
//! and logged a burst at a time: a run of consecutive drops is one warning once a frame gets
//! through again, at most one per [`DROP_LOG_INTERVAL`] (the rest at debug, counted in the next).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use tracing::debug;

use crate::clock::Clock;
use crate::frame::{FrameInfo, YuvFrame};
use crate::overlay::{Timecode, TimecodeOverlay};
use crate::slots::{EncoderGone, Feed, FrameSource, Item, Next, RawFrame, SourceEnd};
use crate::source::Source;
use crate::state::Shared;
use crate::telemetry::{warn_limited, LogLimit};
use crate::time::{FrameRate, SegmentClock, StreamTime};

/// At most one warning of dropped-frame bursts per this interval.
pub(crate) const DROP_LOG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// What the loop needs besides its source.
pub(crate) struct SourceLoop {
    /// The burnt-in timecode; `None` leaves the picture as it came.
    pub(crate) overlay: Option<TimecodeOverlay>,
    pub(crate) rate: FrameRate,
    /// The slot of this run's first frame: stream time goes on across restarts.
    pub(crate) first_slot: u64,
    /// Decides which slots open a segment (never dropped).
    pub(crate) segments: SegmentClock,
    pub(crate) frame_limit: Option<u64>,
    pub(crate) pacing: bool,
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) shared: Arc<Shared>,
}

impl SourceLoop {
    /// Runs `source` until `stop`, the frame limit, the input's end or failure, or the
    /// encoder is gone.
    pub(crate) fn run<S: FrameSource>(
        self,
        mut source: S,
        free: Receiver<YuvFrame>,
        out: Sender<Item<RawFrame>>,
    ) -> SourceEnd {
        let shared = &self.shared;
        let metrics = shared.metrics().clone();
        let bursts = LogLimit::new(DROP_LOG_INTERVAL);
        // The burst of drops under way: its first slot and its length.
        let mut burst: Option<(u64, u64)> = None;
        let log_burst = |burst: Option<(u64, u64)>, total: u64| {
            if let Some((first_slot, dropped)) = burst {
                warn_limited!(
                    bursts,
                    dropped,
                    first_slot,
                    total,
                    "encoder is behind real time: dropped {dropped} {}",
                    S::DROPPED
                );
            }
        };
        let on_drop = |dropped: u64| shared.update_status(|s| s.frames_dropped = dropped);
        let mut feed = Feed::new(
            &free,
            &out,
            self.segments,
            self.rate,
            self.pacing,
            &self.stop,
            &on_drop,
        );
        let mut sent = 0u64;
        let mut input_error = None;
        let within_limit = |source: &S, sent: u64| match (self.frame_limit, source.next_slot()) {
            (None, _) => true,
            (Some(limit), Some(n)) => n - self.first_slot < limit,
            (Some(limit), None) => sent < limit,
        };
        while within_limit(&source, sent) && !self.stop.load(Ordering::Relaxed) {
            match source.next(&mut feed) {
                Next::Idle => {}
                Next::End(e) => {
                    input_error = e;
                    break;
                }
                Next::Closed => break,
                Next::Frame {
                    slot, yuv: None, ..
                } => {
                    feed.count_drop();
                    metrics.frames_dropped.increment(1);
                    match &mut burst {
                        Some((_, n)) => *n += 1,
                        None => burst = Some((slot, 1)),
                    }
                }
                Next::Frame {
                    slot,
                    yuv: Some(mut yuv),
                    info,
                } => {
                    log_burst(burst.take(), feed.dropped());
                    if let Some(overlay) = &self.overlay {
                        overlay.draw_i420(&mut yuv, Timecode::from_frame(slot, self.rate));
                    }
                    if !feed.send(slot, yuv, info) {
                        break;
                    }
                    sent += 1;
                }
            }
        }
        source.finish();
        let dropped = feed.dropped();
        log_burst(burst.take(), dropped);
        debug!(sent, dropped, what = S::DROPPED, "source stopped");
        SourceEnd {
            sent,
            dropped,
            input_error,
        }
    }
}

/// A painted source (the checkerboard) paced in real time: slot `n` is due at
/// `t0 + (n - first)/fps` from the run's start, and the loop sleeps until then (never spins).
/// With `--no-pacing` frames come as fast as the encoder takes them.
pub(crate) struct Paced<P> {
    painter: P,
    clock: Box<dyn Clock>,
    rate: FrameRate,
    /// Stream time of the run's first slot.
    start: StreamTime,
    /// When the run's first slot was due (its start).
    t0: Option<Instant>,
    n: u64,
}

impl<P: Source> Paced<P> {
    pub(crate) fn new(painter: P, clock: Box<dyn Clock>, rate: FrameRate, first_slot: u64) -> Self {
        Paced {
            painter,
            clock,
            rate,
            start: rate.time_of(first_slot),
            t0: None,
            n: first_slot,
        }
    }
}

impl<P: Source> FrameSource for Paced<P> {
    const DROPPED: &'static str = "frames";

    fn next_slot(&self) -> Option<u64> {
        Some(self.n)
    }

    fn next(&mut self, feed: &mut Feed<'_>) -> Next {
        let t0 = *self.t0.get_or_insert_with(|| self.clock.now());
        let slot = self.n;
        if feed.pacing() {
            self.clock
                .sleep_until(t0 + (self.rate.time_of(slot) - self.start).as_std());
        }
        self.n += 1;
        match feed.take_buffer(slot, false) {
            // Painted straight into I420: the product's sources paint no RGB.
            Ok(Some(mut yuv)) => {
                let info = self
                    .painter
                    .render_i420(slot, &mut yuv)
                    .expect("the pipeline's painted sources paint I420");
                Next::Frame {
                    slot,
                    yuv: Some(yuv),
                    info,
                }
            }
            Ok(None) => Next::Frame {
                slot,
                yuv: None,
                info: FrameInfo::default(),
            },
            Err(EncoderGone) => Next::Closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::RealClock;
    use crate::frame::RgbFrame;
    use crate::time::Duration90k;
    use crate::yuv::{bt601_limited_reference, rgb_to_i420};
    use crossbeam_channel::bounded;
    use std::thread;

    /// The paced board loop on `clock` over [`Numbered`]: (frames sent, frames dropped).
    fn job(
        clock: Box<dyn Clock>,
        pacing: bool,
        shared: Arc<Shared>,
    ) -> impl FnOnce(Receiver<YuvFrame>, Sender<Item<RawFrame>>) -> (u64, u64) {
        let rate = FrameRate::new(30, 1).unwrap();
        let lp = SourceLoop {
            overlay: None,
            rate,
            first_slot: 0,
            segments: SegmentClock::new(Duration90k::from_secs(1)),
            frame_limit: Some(if pacing { 300 } else { 50 }),
            pacing,
            stop: Arc::new(AtomicBool::new(false)),
            shared,
        };
        let source = Paced::new(Numbered, clock, rate, 0);
        move |free, out| {
            let end = lp.run(source, free, out);
            (end.sent, end.dropped)
        }
    }

    /// The luma our converter gives the grey level that [`Numbered`] paints for slot `n`.
    fn luma_of_slot(n: u64) -> u8 {
        let v = n as u8;
        bt601_limited_reference(v, v, v).0.round() as u8
    }

    /// A clock whose deadlines have always passed: the source runs flat out, as when the
    /// machine is overloaded.
    struct AlwaysLate(Instant);

    impl Clock for AlwaysLate {
        fn now(&self) -> Instant {
            self.0
        }
        fn sleep_until(&self, _deadline: Instant) {}
    }

    /// Paints the whole frame grey at level `slot mod 256`, so each picture tells its slot.
    struct Numbered;

    impl Source for Numbered {
        fn render(&mut self, n: u64, frame: &mut RgbFrame) -> FrameInfo {
            frame.data.fill(n as u8);
            FrameInfo::default()
        }

        fn render_i420(&mut self, n: u64, frame: &mut YuvFrame) -> Option<FrameInfo> {
            let mut rgb = RgbFrame::new(frame.width, frame.height);
            let info = self.render(n, &mut rgb);
            rgb_to_i420(&rgb, frame);
            Some(info)
        }
    }

    /// A slow consumer makes the paced source drop frames; every frame keeps its own slot,
    /// boundary slots are never dropped, and the counts add up.
    #[test]
    fn source_drops_when_behind_but_keeps_slots_and_boundaries() {
        let shared = Arc::new(Shared::default());
        let clock = Box::new(AlwaysLate(Instant::now()));
        let job = job(clock, true, shared.clone());
        let (free_tx, free_rx) = bounded(2);
        let (tx, rx) = bounded(2);
        for _ in 0..2 {
            free_tx.send(YuvFrame::new(16, 16)).unwrap();
        }
        let source = thread::spawn(move || job(free_rx, tx));
        let mut slots = Vec::new();
        for f in rx.iter() {
            let Item::Frame(f) = f else {
                panic!("the board never stalls")
            };
            assert_eq!(
                f.yuv.y[0],
                luma_of_slot(f.slot),
                "the frame painted for slot {}",
                f.slot
            );
            slots.push(f.slot);
            std::thread::sleep(std::time::Duration::from_millis(2));
            let _ = free_tx.send(f.yuv);
        }
        let (sent, dropped) = source.join().unwrap();
        assert_eq!(sent as usize, slots.len());
        assert_eq!(sent + dropped, 300);
        assert!(
            dropped > 0,
            "a consumer slower than the source must cause drops"
        );
        assert_eq!(shared.status().frames_dropped, dropped);
        assert!(slots.windows(2).all(|w| w[0] < w[1]), "slots increase");
        for k in 0..10 {
            assert!(
                slots.contains(&(k * 30)),
                "boundary slot {} dropped",
                k * 30
            );
        }
    }

    /// Without pacing nothing is ever dropped: the source waits for the encoder.
    #[test]
    fn unpaced_source_never_drops() {
        let job = job(Box::new(RealClock), false, Arc::default());
        let (free_tx, free_rx) = bounded(1);
        let (tx, rx) = bounded(1);
        free_tx.send(YuvFrame::new(16, 16)).unwrap();
        let source = thread::spawn(move || job(free_rx, tx));
        let mut slots = Vec::new();
        for f in rx.iter() {
            let Item::Frame(f) = f else {
                panic!("the board never stalls")
            };
            assert_eq!(f.yuv.y[0], luma_of_slot(f.slot));
            slots.push(f.slot);
            std::thread::sleep(std::time::Duration::from_millis(1));
            let _ = free_tx.send(f.yuv);
        }
        assert_eq!(source.join().unwrap(), (50, 0));
        assert_eq!(slots, (0..50).collect::<Vec<u64>>());
    }
}
