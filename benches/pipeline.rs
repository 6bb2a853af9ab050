//! Speed of every stage and of the whole pipeline, at 1280x720 and 1920x1080.
//!
//! `cargo bench` runs the criterion stage benchmarks (frame generation, timecode overlay,
//! RGB to I420, TS mux, H.264 encode), then runs the release binary with `--no-pacing` and
//! prints whole-pipeline frames per second, CPU use and peak memory.
//! `cargo bench -- --quick` for a shorter run; `HLS_BENCH_SIZES=1280x720` to pick sizes.

use std::hint::black_box;
use std::process::Command;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use hls::encode::{EncoderSettings, H264Encoder};
use hls::frame::{RgbFrame, YuvFrame};
use hls::overlay::{Timecode, TimecodeOverlay, DEFAULT_FONT};
use hls::source::{Checkerboard, CheckerboardConfig, Source};
use hls::time::{Duration90k, FrameRate, Pts};
use hls::ts::{AccessUnit, TsMuxer};
use hls::yuv::rgb_to_i420;

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

fn stages(c: &mut Criterion) {
    let rate = FrameRate::new(30, 1).unwrap();
    for (w, h) in sizes() {
        let mut g = c.benchmark_group(format!("{w}x{h}"));
        g.throughput(Throughput::Elements(1));
        let mut src = board(w, h);
        let mut rgb = RgbFrame::new(w, h);
        let mut n = 0u64;
        g.bench_function("generate", |b| {
            b.iter(|| {
                n += 1;
                black_box(src.render(n, &mut rgb))
            })
        });
        let overlay = TimecodeOverlay::new(DEFAULT_FONT, w, h).unwrap();
        g.bench_function("overlay", |b| {
            b.iter(|| {
                n += 1;
                overlay.draw(&mut rgb, Timecode::from_frame(n, rate))
            })
        });
        let mut yuv = YuvFrame::new(w, h);
        g.bench_function("rgb_to_i420", |b| {
            b.iter(|| rgb_to_i420(black_box(&rgb), &mut yuv))
        });

        // Mux: one 2 s GOP of real encoded frames, pushed again and again.
        let mut enc = H264Encoder::new(EncoderSettings {
            width: w,
            height: h,
            rate,
            bitrate_bps: (w * h * 30) as u32 / 11,
            gop_frames: 60,
        })
        .unwrap();
        let mut gop: Vec<(Vec<u8>, bool)> = Vec::new();
        for i in 0..60u64 {
            src.render(i, &mut rgb);
            overlay.draw(&mut rgb, Timecode::from_frame(i, rate));
            rgb_to_i420(&rgb, &mut yuv);
            let mut au = Vec::new();
            let e = enc.encode(&yuv, rate.time_of(i), i == 0, &mut au).unwrap();
            gop.push((au, e.keyframe));
        }
        let mut mux = TsMuxer::new();
        let mut out = Vec::with_capacity(4 << 20);
        let mut k = 0u64;
        g.bench_function("mux", |b| {
            b.iter(|| {
                let (data, keyframe) = &gop[(k % 60) as usize];
                if k % 60 == 0 {
                    out.clear();
                    mux.start_segment(&mut out);
                }
                let pts = Pts(126_000 + rate.time_of(k).as_u64());
                mux.push(
                    &AccessUnit {
                        data,
                        pts,
                        dts: None,
                        keyframe: *keyframe,
                    },
                    &mut out,
                )
                .unwrap();
                k += 1;
            })
        });
        // Encode only: a ring of 60 distinct pre-converted frames (two seconds of motion).
        let ring: Vec<YuvFrame> = (0..60u64)
            .map(|i| {
                src.render(1000 + i, &mut rgb);
                overlay.draw(&mut rgb, Timecode::from_frame(1000 + i, rate));
                let mut f = YuvFrame::new(w, h);
                rgb_to_i420(&rgb, &mut f);
                f
            })
            .collect();
        g.sample_size(10).measurement_time(Duration::from_secs(8));
        let mut i = 60u64;
        let mut au = Vec::with_capacity(1 << 20);
        g.bench_function("encode", |b| {
            b.iter(|| {
                au.clear();
                enc.encode(
                    &ring[(i % 60) as usize],
                    rate.time_of(i),
                    i % 60 == 0,
                    &mut au,
                )
                .unwrap();
                i += 1;
            })
        });
        g.finish();
    }
}

/// The release binary, as a user runs it, without pacing: frames/s, CPU and peak memory.
fn whole_pipeline() {
    let exe = env!("CARGO_BIN_EXE_hls-streamer");
    println!(
        "\nwhole pipeline (release binary, --no-pacing, 300 frames, stream written to a temp dir):"
    );
    println!(
        "{:>10} {:>10} {:>12} {:>14}",
        "size", "fps", "cpu %", "peak RSS MB"
    );
    for (w, h) in sizes() {
        let dir = std::env::temp_dir().join(format!("hls-bench-{w}x{h}-{}", std::process::id()));
        let out = Command::new(exe)
            .args([
                "--no-pacing",
                "--no-server",
                "--fresh",
                "--frames",
                "300",
                "--seed",
                "1",
            ])
            .args([
                "--size",
                &format!("{w}x{h}"),
                "--out-dir",
                dir.to_str().unwrap(),
            ])
            .env("RUST_LOG", "info")
            .output()
            .expect("run the release binary");
        let _ = std::fs::remove_dir_all(&dir);
        let log = String::from_utf8_lossy(&out.stderr);
        let done = log
            .lines()
            .find(|l| l.contains(" done"))
            .unwrap_or_else(|| panic!("no summary in:\n{log}"));
        let field = |k: &str| {
            done.split_whitespace()
                .find_map(|f| f.strip_prefix(&format!("{k}=")))
                .map(|v| v.trim_matches('"').to_string())
                .unwrap_or_default()
        };
        println!(
            "{:>10} {:>10} {:>12} {:>14}",
            format!("{w}x{h}"),
            field("fps"),
            field("cpu_percent"),
            field("peak_rss_mb")
        );
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    stages(&mut c);
    c.final_summary();
    whole_pipeline();
}
