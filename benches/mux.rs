//! Muxing cost per frame and bytes per segment, MPEG-TS against fragmented MP4
//! (`--segment-type`), at 1280x720 and 1920x1080, then both side by side.
//!
//! One 2 s GOP of real encoded frames (the checkerboard with its timecode, openh264 at the
//! bench's usual rate `w*h*30/11` bit/s) is muxed again and again the way the segmenter does it:
//! TS with a PAT/PMT per segment and per 10-frame part; fMP4 with one fragment per 10-frame
//! part (`moof` + `mdat`). Per-frame cost is one iteration's time (a whole segment) / 60.
//!
//! `cargo bench --bench mux` (`-- --quick` for a short run); `HLS_BENCH_SIZES=1280x720` to pick
//! sizes.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use hls::encode::{EncoderSettings, H264Encoder};
use hls::fmp4::Fmp4Muxer;
use hls::frame::YuvFrame;
use hls::overlay::{Timecode, TimecodeOverlay, DEFAULT_FONT};
use hls::source::{Checkerboard, CheckerboardConfig, Source};
use hls::time::{Duration90k, FrameRate, Pts};
use hls::ts::{AccessUnit, TsMuxer};

const GOP: usize = 60;
const PART_FRAMES: usize = 10;

fn sizes() -> Vec<(usize, usize)> {
    std::env::var("HLS_BENCH_SIZES")
        .unwrap_or_else(|_| "1280x720,1920x1080".into())
        .split(',')
        .map(|s| hls::config::parse_size(s).expect("HLS_BENCH_SIZES: WIDTHxHEIGHT,..."))
        .collect()
}

fn board(w: usize, h: usize) -> Checkerboard {
    Checkerboard::new(CheckerboardConfig {
        width: w,
        height: h,
        rate: FrameRate::new(30, 1).unwrap(),
        block_size: 20,
        roll: Duration90k::from_secs(10),
        noise_sigma: 0.0,
        event_mean: Duration90k::from_secs(20),
        event_duration: Duration90k::from_secs(2),
        seed: Some(1),
    })
    .unwrap()
}

/// One GOP of encoded access units (Annex B) and their keyframe flags.
fn gop(w: usize, h: usize) -> Vec<(Vec<u8>, bool)> {
    let rate = FrameRate::new(30, 1).unwrap();
    let mut src = board(w, h);
    let overlay = TimecodeOverlay::new(DEFAULT_FONT, w, h).unwrap();
    let mut enc = H264Encoder::new(EncoderSettings {
        width: w,
        height: h,
        rate,
        bitrate_bps: (w * h * 30) as u32 / 11,
        gop_frames: GOP as u32,
    })
    .unwrap();
    let mut yuv = YuvFrame::new(w, h);
    (0..GOP as u64)
        .map(|i| {
            src.render_i420(i, &mut yuv);
            overlay.draw_i420(&mut yuv, Timecode::from_frame(i, rate));
            let mut au = Vec::new();
            let e = enc.encode(&yuv, rate.time_of(i), i == 0, &mut au).unwrap();
            (au, e.keyframe)
        })
        .collect()
}

/// One segment as TS: PAT/PMT, then per part PAT/PMT again, every AU. Returns the bytes.
fn ts_segment(mux: &mut TsMuxer, gop: &[(Vec<u8>, bool)], first: u64, out: &mut Vec<u8>) {
    out.clear();
    mux.start_segment(out);
    for (i, (data, keyframe)) in gop.iter().enumerate() {
        if i > 0 && i % PART_FRAMES == 0 {
            // A part's own PAT and PMT (the segmenter's `repeat_psi`: the same two packets).
            mux.start_segment(out);
        }
        let pts = Pts(126_000 + (first + i as u64) * 3000);
        mux.push(
            &AccessUnit {
                data,
                pts,
                dts: None,
                keyframe: *keyframe,
            },
            out,
        )
        .unwrap();
    }
}

/// One segment as fMP4: a fragment per part.
fn fmp4_segment(mux: &mut Fmp4Muxer, gop: &[(Vec<u8>, bool)], first: u64, out: &mut Vec<u8>) {
    out.clear();
    for (i, (data, keyframe)) in gop.iter().enumerate() {
        let t = (first + i as u64) * 3000;
        mux.push(&AccessUnit {
            data,
            pts: Pts(t),
            dts: None,
            keyframe: *keyframe,
        })
        .unwrap();
        if (i + 1) % PART_FRAMES == 0 || i + 1 == gop.len() {
            mux.flush_fragment(Pts(t + 3000), out).unwrap();
        }
    }
}

struct Row {
    size: String,
    ts_bytes: usize,
    fmp4_bytes: usize,
    init_bytes: usize,
    payload: usize,
}

fn main() {
    let mut c = Criterion::default()
        .configure_from_args()
        .measurement_time(Duration::from_secs(5));
    let mut rows = Vec::new();
    for (w, h) in sizes() {
        let gop = gop(w, h);
        let payload: usize = gop.iter().map(|(d, _)| d.len()).sum();
        let mut g = c.benchmark_group(format!("mux {w}x{h}"));
        g.throughput(Throughput::Elements(GOP as u64));
        let mut ts = TsMuxer::new();
        let mut out = Vec::with_capacity(8 << 20);
        let mut k = 0u64;
        g.bench_function("ts segment", |b| {
            b.iter(|| {
                ts_segment(&mut ts, &gop, k * GOP as u64, &mut out);
                k += 1;
                black_box(out.len())
            })
        });
        let ts_bytes = out.len();
        let mut mp4 = Fmp4Muxer::new();
        let mut k = 0u64;
        g.bench_function("fmp4 segment", |b| {
            b.iter(|| {
                fmp4_segment(&mut mp4, &gop, k * GOP as u64, &mut out);
                k += 1;
                black_box(out.len())
            })
        });
        let fmp4_bytes = out.len();
        let mut init = Vec::new();
        mp4.write_init(&mut init);
        g.finish();
        rows.push(Row {
            size: format!("{w}x{h}"),
            ts_bytes,
            fmp4_bytes,
            init_bytes: init.len(),
            payload,
        });
    }
    c.final_summary();
    // criterion prints times per iteration (one segment, 60 frames) and elements/s (frames/s);
    // the bytes are exact, the same on every run.
    println!();
    println!("bytes per 2 s segment (60 frames, 6 parts), H.264 payload as openh264 wrote it:");
    println!(
        "{:<10} {:>10} {:>12} {:>8} {:>12} {:>8} {:>10}",
        "size", "payload", "TS", "TS +%", "fMP4", "fMP4 +%", "init"
    );
    for r in &rows {
        let pct = |b: usize| 100.0 * (b as f64 - r.payload as f64) / r.payload as f64;
        println!(
            "{:<10} {:>10} {:>12} {:>7.2}% {:>12} {:>7.2}% {:>10}",
            r.size,
            r.payload,
            r.ts_bytes,
            pct(r.ts_bytes),
            r.fmp4_bytes,
            pct(r.fmp4_bytes),
            r.init_bytes
        );
    }
    println!("per-frame muxing cost: the `time` of each `ts segment` / `fmp4 segment` line / 60");
}
