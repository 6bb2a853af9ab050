//! Proves the per-frame hot path allocates nothing in steady state: frame generation, the
//! timecode overlay, RGB to I420 (or generation and overlay straight into I420, the pipeline's
//! path) and the TS muxer. A counting global allocator (counting only
//! on the thread that opts in) wraps `System`. Its own test binary, because of the allocator.
//! (openh264 allocates in C++, outside Rust's allocator; its buffers are set up once.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use hls::frame::{RgbFrame, YuvFrame};
use hls::overlay::{Timecode, TimecodeOverlay, DEFAULT_FONT};
use hls::source::{Checkerboard, CheckerboardConfig, Source};
use hls::time::{Duration90k, FrameRate, Pts};
use hls::ts::{AccessUnit, TsMuxer};
use hls::yuv::rgb_to_i420;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn note() {
    if COUNTING.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: forwards every call unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn steady_state_mux_does_not_allocate() {
    // One GOP: a 150 kB IDR then 29 P-frames of 20 kB; 5 fps for part of it so PCR-only packets
    // are written too.
    let aus: Vec<Vec<u8>> = (0..30)
        .map(|i| {
            let mut v = vec![0, 0, 0, 1, if i == 0 { 0x65 } else { 0x41 }];
            v.resize(
                if i == 0 { 150_000 } else { 20_000 + i * 37 },
                (i % 251) as u8,
            );
            v
        })
        .collect();
    let mut mux = TsMuxer::new();
    let mut out = Vec::new();
    let mut pts = 900_000u64;
    let mut run = |mux: &mut TsMuxer, out: &mut Vec<u8>| {
        out.clear();
        mux.start_segment(out);
        for (i, data) in aus.iter().enumerate() {
            let au = AccessUnit {
                data,
                pts: Pts(pts),
                dts: None,
                keyframe: i == 0,
            };
            mux.push(&au, out).expect("valid AU");
            pts += if i < 20 { 3_000 } else { 18_000 };
        }
    };
    run(&mut mux, &mut out); // warm-up: `out` grows to a segment's size once
    COUNTING.with(|c| c.set(true));
    for _ in 0..5 {
        run(&mut mux, &mut out);
    }
    COUNTING.with(|c| c.set(false));
    assert_eq!(
        ALLOCATIONS.load(Ordering::Relaxed),
        0,
        "allocations in steady state"
    );
    mux.check_invariants().expect("invariants");
}

fn board(w: usize, h: usize, noise_sigma: f32) -> Checkerboard {
    Checkerboard::new(CheckerboardConfig {
        width: w,
        height: h,
        rate: FrameRate::new(30, 1).unwrap(),
        block_size: 20,
        roll: Duration90k::from_secs(10),
        noise_sigma,
        event_mean: Duration90k::from_secs(1),
        event_duration: Duration90k::from_secs(1),
        seed: Some(9),
    })
    .unwrap()
}

/// Counts the allocations of `frame(n)` for n in 1..600 after a first call; returns them and
/// how many frames showed an event.
fn count_allocations(mut frame: impl FnMut(u64) -> bool) -> (usize, usize) {
    frame(0);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let mut events = 0;
    COUNTING.with(|c| c.set(true));
    for n in 1..600 {
        events += usize::from(frame(n));
    }
    COUNTING.with(|c| c.set(false));
    (ALLOCATIONS.load(Ordering::Relaxed) - before, events)
}

#[test]
fn i420_frame_stages_do_not_allocate() {
    let rate = FrameRate::new(30, 1).unwrap();
    let (w, h) = (641, 361);
    let overlay = TimecodeOverlay::new(DEFAULT_FONT, w, h).unwrap();
    for sigma in [0.0, 4.0] {
        let mut board = board(w, h, sigma);
        let mut yuv = YuvFrame::new(w, h);
        let (allocations, events) = count_allocations(|n| {
            let info = board
                .render_i420(n, &mut yuv)
                .expect("the board paints I420");
            overlay.draw_i420(&mut yuv, Timecode::from_frame(n, rate));
            info.event.is_some()
        });
        assert!(events > 0, "noise {sigma}: the run covers events");
        assert_eq!(allocations, 0, "noise {sigma}: allocations per frame");
    }
}

#[test]
fn frame_stages_do_not_allocate() {
    let rate = FrameRate::new(30, 1).unwrap();
    let (w, h) = (640, 360);
    let mut board = board(w, h, 4.0);
    let overlay = TimecodeOverlay::new(DEFAULT_FONT, w, h).unwrap();
    let mut rgb = RgbFrame::new(w, h);
    let mut yuv = YuvFrame::new(w, h);
    let (allocations, events) = count_allocations(|n| {
        let info = board.render(n, &mut rgb);
        overlay.draw(&mut rgb, Timecode::from_frame(n, rate));
        rgb_to_i420(&rgb, &mut yuv);
        info.event.is_some()
    });
    assert!(
        events > 0,
        "the run covers events (new event draws included)"
    );
    assert_eq!(allocations, 0, "allocations per frame");
}
