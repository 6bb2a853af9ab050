//! The Y4M source loop on a simulated pipe and a simulated clock: pacing, stalls, gaps, drops,
//! the end and errors, without waiting in real time.

use std::collections::VecDeque;
use std::io;
use std::sync::Mutex;
use std::time::Duration;

use crossbeam_channel::bounded;

use super::*;
use crate::input::source_loop::SourceLoop;
use crate::input::y4m::{Forever, WAIT_SLICE};
use crate::overlay::TimecodeOverlay;
use crate::slots::{Item, SourceEnd};
use crate::time::SegmentClock;
use crossbeam_channel::{Receiver, Sender};

/// Everything a Y4M source thread runs with: the source and its loop.
struct Y4mJob<R> {
    input: Y4mInput,
    reader: Y4mReader<R>,
    first: Option<YuvFrame>,
    overlay: Option<TimecodeOverlay>,
    clock: Box<dyn Clock>,
    rate: FrameRate,
    first_slot: u64,
    segments: SegmentClock,
    stall_after: Duration90k,
    frame_limit: Option<u64>,
    pacing: bool,
    stop: Arc<AtomicBool>,
    shared: Arc<Shared>,
}

impl<R: Read + Send> Y4mJob<R> {
    fn run(self, free: Receiver<YuvFrame>, out: Sender<Item<crate::slots::RawFrame>>) -> SourceEnd {
        let source = Y4mSource::new(
            self.input,
            self.reader,
            self.first,
            self.clock,
            self.rate,
            self.first_slot,
            self.stall_after,
            self.shared.clone(),
        );
        let lp = SourceLoop {
            overlay: self.overlay,
            rate: self.rate,
            first_slot: self.first_slot,
            segments: self.segments,
            frame_limit: self.frame_limit,
            pacing: self.pacing,
            stop: self.stop,
            shared: self.shared,
        };
        lp.run(source, free, out)
    }
}

const W: usize = 16;
const H: usize = 16;
/// Buffers in the tests' pool: more than any test sends, so that a consumer thread slowed down
/// by a loaded machine never makes the source (on the simulated clock, flat out) drop a frame.
/// Dropping has its own test.
const POOL: usize = 256;

/// The simulated monotonic clock, shared by the clock and the pipe.
#[derive(Clone)]
struct Time(Arc<Mutex<Instant>>);

impl Time {
    fn now(&self) -> Instant {
        *self.0.lock().unwrap()
    }
    fn advance(&self, d: Duration) {
        *self.0.lock().unwrap() += d;
    }
}

impl Clock for Time {
    fn now(&self) -> Instant {
        Time::now(self)
    }
    fn sleep_until(&self, deadline: Instant) {
        let mut t = self.0.lock().unwrap();
        *t = (*t).max(deadline);
    }
}

enum Event {
    Bytes(Vec<u8>),
    /// Nothing to read for this long: one `WouldBlock` per wait slice, as [`Polled`] gives.
    Pause(Duration),
}

/// A pipe on the simulated clock. At the end of each pause it notes whether the source had
/// declared the stall by then (`/healthz`'s flag).
struct Pipe {
    events: VecDeque<Event>,
    time: Time,
    shared: Arc<Shared>,
    stalled_at_pause_end: Arc<Mutex<Vec<bool>>>,
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.events.front_mut() {
                None => return Ok(0),
                Some(Event::Pause(left)) => {
                    if left.is_zero() {
                        self.events.pop_front();
                        self.stalled_at_pause_end
                            .lock()
                            .unwrap()
                            .push(self.shared.status().input_stalled);
                        continue;
                    }
                    let step = (*left).min(WAIT_SLICE);
                    *left -= step;
                    self.time.advance(step);
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Some(Event::Bytes(b)) => {
                    let n = b.len().min(buf.len());
                    buf[..n].copy_from_slice(&b[..n]);
                    b.drain(..n);
                    if b.is_empty() {
                        self.events.pop_front();
                    }
                    return Ok(n);
                }
            }
        }
    }
}

fn header() -> Event {
    Event::Bytes(format!("YUV4MPEG2 W{W} H{H} F30:1 C420jpeg\n").into_bytes())
}

/// Input frame `k`: every sample of its luma is `k mod 256`, so a picture tells which input
/// frame it was.
fn frame(k: u64) -> Event {
    let mut b = b"FRAME\n".to_vec();
    b.extend(std::iter::repeat_n(k as u8, W * H));
    b.extend(std::iter::repeat_n(128, W * H / 2));
    Event::Bytes(b)
}

fn frames(range: std::ops::Range<u64>) -> impl Iterator<Item = Event> {
    range.map(frame)
}

struct Setup {
    job: Y4mJob<Pipe>,
    shared: Arc<Shared>,
    stalled_at_pause_end: Arc<Mutex<Vec<bool>>>,
}

/// A job on `events` (after the header and frame 0, which `open` reads), one-second segments.
fn setup(events: impl IntoIterator<Item = Event>, pacing: bool) -> Setup {
    let time = Time(Arc::new(Mutex::new(Instant::now())));
    let shared = Arc::new(Shared::default());
    let stalled_at_pause_end = Arc::default();
    let pipe = Pipe {
        events: std::iter::once(header())
            .chain(std::iter::once(frame(0)))
            .chain(events)
            .collect(),
        time: time.clone(),
        shared: shared.clone(),
        stalled_at_pause_end: Arc::clone(&stalled_at_pause_end),
    };
    let mut reader = Y4mReader::new(pipe, &mut Forever).unwrap();
    let mut first = YuvFrame::new(W, H);
    assert_eq!(
        reader.read_frame(&mut first, &mut Forever).unwrap(),
        Frame::Read
    );
    let job = Y4mJob {
        input: Y4mInput::Stdin,
        reader,
        first: Some(first),
        overlay: None,
        clock: Box::new(time),
        rate: FrameRate::new(30, 1).unwrap(),
        first_slot: 0,
        segments: SegmentClock::new(Duration90k::from_secs(1)),
        stall_after: Duration90k::from_secs(1),
        frame_limit: None,
        pacing,
        stop: Arc::new(AtomicBool::new(false)),
        shared: shared.clone(),
    };
    Setup {
        job,
        shared,
        stalled_at_pause_end,
    }
}

/// What the source sent, in order.
#[derive(Debug, PartialEq, Eq)]
enum Got {
    /// (slot, input frame number read from the picture, opens a segment)
    Frame(u64, u8, bool),
    Gap(StreamTime),
}

/// Runs the job to its end with a consumer that returns each buffer; returns what came and
/// how the source ended.
fn run(setup: Setup, pool: usize) -> (Vec<Got>, SourceEnd) {
    let (free_tx, free_rx) = bounded(pool);
    let (tx, rx) = bounded(pool);
    for _ in 0..pool {
        free_tx.send(YuvFrame::new(W, H)).unwrap();
    }
    let job = setup.job;
    let source = std::thread::spawn(move || job.run(free_rx, tx));
    let mut got = Vec::new();
    for item in rx.iter() {
        match item {
            Item::Frame(f) => {
                got.push(Got::Frame(f.slot, f.yuv.y[0], f.opens_segment));
                let _ = free_tx.try_send(f.yuv);
            }
            Item::Gap { end } => got.push(Got::Gap(end)),
        }
    }
    (got, source.join().unwrap())
}

fn slots(got: &[Got]) -> Vec<u64> {
    got.iter()
        .filter_map(|g| match g {
            Got::Frame(s, _, _) => Some(*s),
            Got::Gap(_) => None,
        })
        .collect()
}

#[test]
fn a_steady_input_gets_consecutive_slots_and_ends_at_its_end() {
    let s = setup(frames(1..90), true);
    let (got, end) = run(s, POOL);
    assert_eq!((end.sent, end.dropped), (90, 0));
    assert!(end.input_error.is_none());
    assert_eq!(slots(&got), (0..90).collect::<Vec<_>>());
    for g in &got {
        let Got::Frame(slot, picture, opens) = *g else {
            panic!("no gap in a steady input: {g:?}")
        };
        assert_eq!(
            picture, slot as u8,
            "slot {slot} shows input frame {picture}"
        );
        assert_eq!(opens, slot % 30 == 0, "slot {slot}");
    }
}

/// A producer that stops for 3 s: the gap goes down at once (closing the segment after the
/// last frame), the status says stalled during the pause, and the next frame takes the slot of
/// the time it came, opening a segment.
#[test]
fn a_stall_closes_the_segment_and_the_stream_resumes_at_the_current_slot() {
    let events = frames(1..10)
        .chain([Event::Pause(Duration::from_secs(3))])
        .chain(frames(10..40));
    let s = setup(events, true);
    let shared = s.shared.clone();
    let (got, end) = run(s, POOL);
    assert!(end.input_error.is_none());
    assert_eq!(end.sent, 40, "every frame in is a frame out");
    let gap = got
        .iter()
        .position(|g| matches!(g, Got::Gap(_)))
        .expect("a gap");
    assert_eq!(
        got[gap],
        Got::Gap(FrameRate::new(30, 1).unwrap().time_of(10))
    );
    assert_eq!(slots(&got[..gap]), (0..10).collect::<Vec<_>>());
    assert_eq!(
        got.iter().filter(|g| matches!(g, Got::Gap(_))).count(),
        1,
        "one gap per stall"
    );
    // Frame 10 was due at 0.333 s and came at 3.333 s: slot 100.
    let Got::Frame(resumed, picture, opens) = got[gap + 1] else {
        panic!("a frame after the gap")
    };
    assert_eq!((resumed, picture, opens), (100, 10, true));
    let after = slots(&got[gap + 1..]);
    assert_eq!(after, (100..130).collect::<Vec<_>>(), "consecutive again");
    // Boundaries of the one-second grid still open segments after the jump.
    assert!(got.contains(&Got::Frame(120, 30, true)));
    assert!(!shared.status().input_stalled, "recovered");
}

/// A restarted stream's run starts at a later slot (stream time goes on across restarts): the
/// pacing, the boundaries and the jump after a stall count from there.
#[test]
fn a_run_that_continues_the_stream_clock_counts_from_its_first_slot() {
    let events = frames(1..10)
        .chain([Event::Pause(Duration::from_secs(3))])
        .chain(frames(10..20));
    let mut s = setup(events, true);
    let rate = FrameRate::new(30, 1).unwrap();
    // Slot 1015 is 33.833 s into the stream; boundaries every second from the run's start.
    s.job.first_slot = 1015;
    s.job.segments = SegmentClock::starting_at(Duration90k::from_secs(1), rate.time_of(1015));
    let (got, end) = run(s, POOL);
    assert_eq!(end.sent, 20);
    assert_eq!(got[0], Got::Frame(1015, 0, true));
    assert_eq!(slots(&got[..10]), (1015..1025).collect::<Vec<_>>());
    assert_eq!(got[10], Got::Gap(rate.time_of(1025)));
    // Frame 10 was due 0.333 s into the run and came at 3.333 s: slot 1015 + 100.
    assert_eq!(got[11], Got::Frame(1115, 10, true));
    assert_eq!(slots(&got[11..]), (1115..1125).collect::<Vec<_>>());
}

#[test]
fn the_stall_is_visible_while_it_lasts_and_a_short_pause_is_none() {
    let events = frames(1..5)
        .chain([Event::Pause(Duration::from_secs(4))])
        .chain(frames(5..8))
        // Shorter than a segment: no stall.
        .chain([Event::Pause(Duration::from_millis(600))])
        .chain(frames(8..12));
    let s = setup(events, true);
    let record = s.stalled_at_pause_end.clone();
    let shared = s.shared.clone();
    let (got, end) = run(s, POOL);
    assert_eq!(end.sent, 12);
    assert_eq!(got.iter().filter(|g| matches!(g, Got::Gap(_))).count(), 1);
    assert_eq!(
        *record.lock().unwrap(),
        vec![true, false],
        "stalled at the end of the 4 s pause, not of the 0.6 s one"
    );
    assert!(!shared.status().input_stalled, "recovered");
}

#[test]
fn a_producer_slower_than_real_time_is_re_anchored_once_a_segment_behind() {
    // 20 frames a second into a 30 fps stream: 16.7 ms later every frame; after about 60
    // frames the lag passes the one-second segment.
    let events = (1..150).flat_map(|k| [Event::Pause(Duration::from_millis(50)), frame(k)]);
    let (got, end) = run(setup(events, true), POOL);
    assert_eq!(end.sent, 150);
    let gaps: Vec<usize> = got
        .iter()
        .enumerate()
        .filter(|(_, g)| matches!(g, Got::Gap(_)))
        .map(|(i, _)| i)
        .collect();
    assert!(
        (1..=3).contains(&gaps.len()),
        "a stall about every 2 s of input (7.5 s here): {gaps:?}"
    );
    let first_gap = gaps[0];
    // Frames before the first gap: slots 0.. consecutive, about 60 of them.
    let before = slots(&got[..first_gap]);
    assert_eq!(before, (0..before.len() as u64).collect::<Vec<_>>());
    assert!((55..=65).contains(&before.len()), "{} frames", before.len());
    // After it the slot jumps to real time: the input frame k came at 50 ms * k.
    let Got::Frame(slot, picture, true) = got[first_gap + 1] else {
        panic!(
            "the frame after the gap opens a segment: {:?}",
            got[first_gap + 1]
        )
    };
    let real = u64::from(picture) * 50 * 30 / 1000;
    assert!(
        slot.abs_diff(real) <= 2,
        "slot {slot} for input frame {picture}"
    );
    assert!(
        slots(&got).windows(2).all(|w| w[0] < w[1]),
        "slots increase"
    );
}

#[test]
fn without_pacing_a_pause_is_just_a_wait() {
    let events = frames(1..10)
        .chain([Event::Pause(Duration::from_secs(5))])
        .chain(frames(10..20));
    let (got, end) = run(setup(events, false), POOL);
    assert_eq!(end.sent, 20);
    assert_eq!(slots(&got), (0..20).collect::<Vec<_>>());
    assert!(got.iter().all(|g| matches!(g, Got::Frame(..))));
}

#[test]
fn a_bad_frame_ends_the_source_with_its_error_after_the_good_ones() {
    let events = frames(1..5).chain([Event::Bytes(b"FRAME\nshort".to_vec())]);
    let (got, end) = run(setup(events, false), POOL);
    assert_eq!(slots(&got), vec![0, 1, 2, 3, 4]);
    let e = end.input_error.expect("the short frame");
    assert_eq!(e.kind(), crate::error::ErrorKind::InvalidArgument);
    assert_eq!(
        e.to_string(),
        "--input -: frame 5 (counting from 0) is short: the input ended after 5 of the 384 bytes the header promises"
    );
}

/// With the encoder behind, frames that find no buffer are read and dropped (the input stays
/// in step: each delivered picture is the input frame of its slot), boundary frames never.
#[test]
fn frames_without_a_buffer_are_dropped_but_boundaries_are_kept() {
    let s = setup(frames(1..120), true);
    let job = s.job;
    let (free_tx, free_rx) = bounded(1);
    let (tx, rx) = bounded(1);
    free_tx.send(YuvFrame::new(W, H)).unwrap();
    // The source runs on the simulated clock, flat out; the consumer takes real time.
    let source = std::thread::spawn(move || job.run(free_rx, tx));
    let mut got = Vec::new();
    for item in rx.iter() {
        let Item::Frame(f) = item else {
            panic!("no stall")
        };
        got.push((f.slot, f.yuv.y[0]));
        std::thread::sleep(Duration::from_millis(2));
        let _ = free_tx.try_send(f.yuv);
    }
    let end = source.join().unwrap();
    assert_eq!(end.sent + end.dropped, 120);
    assert!(end.dropped > 0, "a slow consumer makes the source drop");
    assert_eq!(end.sent as usize, got.len());
    for (slot, picture) in &got {
        assert_eq!(
            *picture, *slot as u8,
            "slot {slot} shows its own input frame"
        );
    }
    for k in 0..4 {
        assert!(
            got.iter().any(|(s, _)| *s == k * 30),
            "boundary {} kept",
            k * 30
        );
    }
}
