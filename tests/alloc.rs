//! Proves the per-frame hot path allocates nothing in steady state: frame generation, the
//! timecode overlay, RGB to I420 (or generation and overlay straight into I420, the pipeline's
//! path), the TS muxer, the fMP4 writer, the Y4M reader and `--transcode`'s decode, copy, timecode and
//! re-encode. A counting global allocator (counting only
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

/// The fMP4 writer in steady state: one GOP as six fragments (the segmenter's parts), the
/// keyframe repeating the stream's SPS and PPS (no new init), `out` reused per segment.
#[test]
fn steady_state_fmp4_mux_does_not_allocate() {
    use hls::fmp4::Fmp4Muxer;
    const SPS: [u8; 9] = [0x67, 0x42, 0xc0, 0x1f, 0xed, 0x00, 0xa0, 0x0b, 0x72];
    let aus: Vec<Vec<u8>> = (0..30)
        .map(|i| {
            let mut v = Vec::new();
            if i == 0 {
                v.extend_from_slice(&[0, 0, 0, 1]);
                v.extend_from_slice(&SPS);
                v.extend_from_slice(&[0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80]);
            }
            v.extend_from_slice(&[0, 0, 0, 1, if i == 0 { 0x65 } else { 0x41 }]);
            v.resize(
                if i == 0 { 150_000 } else { 20_000 + i * 37 },
                (i % 251) as u8 | 1,
            );
            v
        })
        .collect();
    let mut mux = Fmp4Muxer::new();
    let mut out = Vec::new();
    let mut t = 0u64;
    let mut run = |mux: &mut Fmp4Muxer, out: &mut Vec<u8>| {
        out.clear();
        for (i, data) in aus.iter().enumerate() {
            let au = AccessUnit {
                data,
                pts: Pts(t),
                dts: None,
                keyframe: i == 0,
            };
            mux.push(&au).expect("valid AU");
            t += 3_000;
            if (i + 1) % 5 == 0 {
                mux.flush_fragment(Pts(t), out).expect("valid end");
            }
        }
    };
    run(&mut mux, &mut out); // warm-up: buffers grow once
    COUNTING.with(|c| c.set(true));
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..5 {
        run(&mut mux, &mut out);
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    COUNTING.with(|c| c.set(false));
    assert_eq!(allocations, 0, "allocations in steady state");
    assert_eq!(mux.fragments(), 36);
    assert_eq!(
        mux.init_generation(),
        1,
        "the same SPS/PPS make no new init"
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

/// A YUV4MPEG2 stream in memory: `frames` frames of `w`x`h` in colour space `colour` (C420jpeg,
/// C422 or C444), each plane a gradient that moves with the frame number.
fn y4m_stream(w: usize, h: usize, colour: &str, frames: usize) -> Vec<u8> {
    let (cw, ch) = match colour {
        "C422" => (w.div_ceil(2), h),
        "C444" => (w, h),
        _ => (w.div_ceil(2), h.div_ceil(2)),
    };
    let mut s = format!("YUV4MPEG2 W{w} H{h} F30:1 Ip A1:1 {colour}\n").into_bytes();
    for n in 0..frames {
        s.extend_from_slice(b"FRAME\n");
        s.extend((0..w * h).map(|i| (i + n) as u8));
        for plane in 0..2 {
            s.extend((0..cw * ch).map(|i| (i * 3 + n + plane * 64) as u8));
        }
    }
    s
}

/// The Y4M source's per-frame work in steady state: a frame read into a pooled I420 buffer
/// (4:2:2 and 4:4:4 converted to 4:2:0 on the way), every seventh one read and thrown away as
/// a dropped frame is, and the timecode burnt into the planes. Nothing allocates after the
/// first frame.
#[test]
fn y4m_frames_do_not_allocate() {
    use hls::input::testutil::Y4mFrames;

    let rate = FrameRate::new(30, 1).unwrap();
    let (w, h) = (130, 74);
    let overlay = TimecodeOverlay::new(DEFAULT_FONT, w, h).unwrap();
    for colour in ["C420jpeg", "C422", "C444"] {
        let bytes = y4m_stream(w, h, colour, 600);
        let mut frames = Y4mFrames::new(std::io::Cursor::new(&bytes[..])).unwrap();
        assert_eq!(frames.size(), (w, h));
        let mut yuv = YuvFrame::new(w, h);
        let (mut read, mut skipped) = (0u64, 0u64);
        let (allocations, _) = count_allocations(|n| {
            let more = if n % 7 == 6 {
                skipped += 1;
                frames.skip()
            } else {
                read += 1;
                frames.read(&mut yuv)
            };
            assert!(more.unwrap(), "{colour}: frame {n} is in the stream");
            overlay.draw_i420(&mut yuv, Timecode::from_frame(n, rate));
            false
        });
        assert_eq!(allocations, 0, "{colour}: allocations per frame");
        // Not a vacuous loop: all 600 frames were taken, both ways, and the last one is real.
        assert_eq!((read + skipped, skipped), (600, 85), "{colour}");
        assert!(!frames.read(&mut yuv).unwrap(), "{colour}: the stream ends");
        assert_eq!(
            yuv.luma()[1],
            (1 + 599) as u8,
            "{colour}: frame 599's picture"
        );
    }
}

/// `--transcode`'s per-frame work in steady state, driven without a camera from access units
/// recorded first (our encoder's, 2 s GOPs, IDRs with SPS and PPS as a camera sends them):
/// openh264's decoder through its Rust wrapper, the decoded picture copied into a pooled I420
/// frame, the timecode burnt in, and the re-encode into a reused buffer. Nothing on the Rust
/// side allocates after the first GOP (openh264's own buffers are C++'s, set up once).
#[test]
fn transcode_frame_stages_do_not_allocate() {
    use hls::encode::{EncoderSettings, H264Encoder};
    use openh264::formats::YUVSource;

    let rate = FrameRate::new(30, 1).unwrap();
    let (w, h) = (320, 180);
    let settings = EncoderSettings {
        width: w,
        height: h,
        rate,
        bitrate_bps: 800_000,
        gop_frames: 60,
    };
    // The camera: 240 frames of the board, encoded.
    let mut camera = H264Encoder::new(settings.clone()).unwrap();
    let mut board = board(w, h, 2.0);
    let mut yuv = YuvFrame::new(w, h);
    let aus: Vec<Vec<u8>> = (0..240u64)
        .map(|n| {
            board.render_i420(n, &mut yuv).unwrap();
            let mut au = Vec::new();
            camera
                .encode(&yuv, rate.time_of(n), n % 60 == 0, &mut au)
                .unwrap();
            au
        })
        .collect();

    let mut decoder = openh264::decoder::Decoder::new().unwrap();
    let overlay = TimecodeOverlay::new(DEFAULT_FONT, w, h).unwrap();
    let mut encoder = H264Encoder::new(settings).unwrap();
    let mut frame = YuvFrame::new(w, h);
    let mut out = Vec::with_capacity(256 * 1024);
    let mut keyframes = 0;
    let mut stage = |n: u64| {
        let pic = decoder
            .decode(&aus[n as usize])
            .expect("decodes")
            .expect("no B-frames: a picture per access unit");
        assert_eq!(pic.dimensions(), (w, h));
        hls::rtsp::testutil::copy_picture(&pic, &mut frame);
        overlay.draw_i420(&mut frame, Timecode::from_frame(n, rate));
        out.clear();
        let e = encoder
            .encode(&frame, rate.time_of(n), n % 60 == 0, &mut out)
            .expect("encodes");
        keyframes += usize::from(e.keyframe);
        assert!(!out.is_empty());
    };
    // The first GOP warms up (openh264 initialises on its first frame; `out` reaches its size).
    for n in 0..60 {
        stage(n);
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    for n in 60..240 {
        stage(n);
    }
    COUNTING.with(|c| c.set(false));
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(keyframes, 4, "an IDR every 60 frames, re-encoded");
    assert_eq!(allocations, 0, "allocations in 180 transcoded frames");
}
