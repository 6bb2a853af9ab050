//! Speed of every stage and of the whole pipeline, at 1280x720 and 1920x1080.
//!
//! `cargo bench` runs the criterion stage benchmarks (frame generation, timecode overlay,
//! RGB to I420, the same two straight into I420 as the pipeline does, TS mux, H.264 encode),
//! then runs the release binary with `--no-pacing` and prints whole-pipeline frames per second,
//! CPU use and peak memory, each run next to an encode-only run timed just before it in the
//! same process, and their ratio (the machine may be busy: compare ratios, not raw fps).
//! `cargo bench -- --quick` for a shorter run; `HLS_BENCH_SIZES=1280x720` to pick sizes;
//! `HLS_BENCH_REPEAT=5` for more pipeline runs per size (default 3); `HLS_BENCH_EXE=a,b` runs
//! other builds of the binary (say, a baseline) in turn with this one, each against its own
//! encode-only run.

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

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
        // The pipeline's path: the board and the timecode straight into I420.
        g.bench_function("generate_i420", |b| {
            b.iter(|| {
                n += 1;
                black_box(src.render_i420(n, &mut yuv))
            })
        });
        g.bench_function("overlay_i420", |b| {
            b.iter(|| {
                n += 1;
                overlay.draw_i420(&mut yuv, Timecode::from_frame(n, rate))
            })
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

/// Encode-only frames per second of the frames the binary's run encodes: the same settings
/// (from the same command line), the same 300 pictures painted in advance, `warm` times
/// through a fresh encoder and timed on the last pass. `warm` 0 is the run as the binary does
/// it (a fresh encoder, rate control settling); more passes approach the criterion figure.
/// Returns frames per second and CPU milliseconds per frame (this thread's, from
/// `/proc/thread-self/stat`; NaN elsewhere).
fn encode_only_fps(cfg: &hls::plan::Plan, frames: &[YuvFrame], warm: usize) -> (f64, f64) {
    let mut enc = H264Encoder::new(EncoderSettings {
        width: cfg.width(),
        height: cfg.height(),
        rate: cfg.rate(),
        bitrate_bps: cfg.bitrate_bps(),
        gop_frames: cfg.gop_frames(),
    })
    .unwrap();
    let mut au = Vec::with_capacity(1 << 20);
    let mut clock = hls::time::SegmentClock::new(cfg.segment());
    let mut k = 0u64;
    let mut pass = |enc: &mut H264Encoder| {
        for f in frames {
            let at = cfg.rate().time_of(k);
            au.clear();
            enc.encode(f, at, clock.opens_segment(at), &mut au).unwrap();
            k += 1;
        }
    };
    for _ in 0..warm {
        pass(&mut enc);
    }
    let (start, cpu0) = (Instant::now(), thread_cpu_ms());
    pass(&mut enc);
    let n = frames.len() as f64;
    (
        n / start.elapsed().as_secs_f64(),
        (thread_cpu_ms() - cpu0) / n,
    )
}

/// CPU time of the calling thread in milliseconds (10 ms resolution), NaN if unknown.
fn thread_cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    // utime and stime, fields 14 and 15 of stat(5), in USER_HZ (100 per second).
    match (fields.get(11), fields.get(12)) {
        (Some(u), Some(s)) => match (u.parse::<f64>(), s.parse::<f64>()) {
            (Ok(u), Ok(s)) => (u + s) * 10.0,
            _ => f64::NAN,
        },
        _ => f64::NAN,
    }
}

/// The pictures of the binary's run: board and timecode of slots `0..n` as the source thread
/// paints them.
fn run_frames(cfg: &hls::plan::Plan, n: u64) -> Vec<YuvFrame> {
    let mut board = Checkerboard::new(cfg.checkerboard()).unwrap();
    let overlay = TimecodeOverlay::new(DEFAULT_FONT, cfg.width(), cfg.height()).unwrap();
    (0..n)
        .map(|i| {
            let mut f = YuvFrame::new(cfg.width(), cfg.height());
            board.render_i420(i, &mut f).unwrap();
            overlay.draw_i420(&mut f, Timecode::from_frame(i, cfg.rate()));
            f
        })
        .collect()
}

/// The release binary, as a user runs it, without pacing: frames/s, CPU and peak memory; each
/// run next to encode-only runs of its frames timed just before it.
fn whole_pipeline() {
    // 30 s of video: a live stream runs for hours, so the ~0.1 s of start-up (font, first
    // openh264 frame) must not dominate what is a throughput figure; 300 frames made it 5-20 %.
    const FRAMES: u64 = 900;
    let exes: Vec<String> = std::env::var("HLS_BENCH_EXE")
        .map(|v| v.split(',').map(str::to_string).collect())
        .unwrap_or_else(|_| vec![env!("CARGO_BIN_EXE_hls-streamer").to_string()]);
    let repeat: usize = std::env::var("HLS_BENCH_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    println!(
        "\nwhole pipeline (release binary, --no-pacing, {FRAMES} frames, stream written to a temp dir)"
    );
    println!(
        "against encode-only of the same {FRAMES} frames just before, fresh encoder (as the binary) \
         and warmed by two passes (as criterion); CPU ms per frame of the whole process and of \
         encode-only:"
    );
    println!(
        "{:>10} {:>6} {:>7} {:>6} {:>7} {:>9} {:>6} {:>9} {:>6} {:>8} {:>8} {:>8}",
        "size",
        "binary",
        "fps",
        "cpu %",
        "RSS MB",
        "enc fresh",
        "ratio",
        "enc warm",
        "ratio",
        "cpu ms",
        "fresh ms",
        "warm ms"
    );
    for (w, h) in sizes() {
        let size = format!("{w}x{h}");
        let args = ["x", "--size", &size, "--seed", "1"];
        let cfg = hls::config::Config::from_args(args)
            .expect("bench configuration")
            .flags_plan();
        let frames = run_frames(&cfg, FRAMES);
        // Ratios to the warm encode-only run, per binary.
        let mut ratios = vec![Vec::new(); exes.len()];
        // Binaries in turn, `repeat` rounds: a change in load hits all of them alike.
        for (which, exe) in (0..repeat).flat_map(|_| exes.iter().enumerate()) {
            let (fresh, fresh_ms) = encode_only_fps(&cfg, &frames, 0);
            let (warm, warm_ms) = encode_only_fps(&cfg, &frames, 2);
            let dir = std::env::temp_dir().join(format!("hls-bench-{size}-{}", std::process::id()));
            let out = Command::new(exe)
                .args(["--no-pacing", "--no-server", "--fresh"])
                .args(["--frames", &FRAMES.to_string(), "--seed", "1"])
                .args(["--size", &size, "--out-dir", dir.to_str().unwrap()])
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
            let fps: f64 = field("fps").parse().unwrap_or(0.0);
            let cpu: f64 = field("cpu_percent").parse().unwrap_or(f64::NAN);
            ratios[which].push(fps / warm);
            println!(
                "{:>10} {:>6} {:>7.1} {:>6.1} {:>7} {:>9.1} {:>6.2} {:>9.1} {:>6.2} {:>8.2} {:>8.2} {:>8.2}",
                size,
                which,
                fps,
                cpu,
                field("peak_rss_mb"),
                fresh,
                fps / fresh,
                warm,
                fps / warm,
                cpu * 10.0 / fps,
                fresh_ms,
                warm_ms
            );
        }
        for (which, r) in ratios.iter_mut().enumerate() {
            r.sort_by(f64::total_cmp);
            println!(
                "{size:>10} {which:>6} median ratio to warm encode-only {:.2} (min {:.2}, max {:.2}, {} runs)",
                r[r.len() / 2],
                r[0],
                r[r.len() - 1],
                r.len()
            );
        }
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    stages(&mut c);
    c.final_summary();
    whole_pipeline();
}
