//! YUV4MPEG2 input end to end: streams made by ffmpeg and GStreamer (test-only tools, installed
//! by `.ci/run`) go through the real pipeline or the binary; the segments are read back and
//! decoded, and compared frame by frame with the input. Bad inputs, a stalling FIFO.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openh264::decoder::Decoder;
use openh264::formats::YUVSource;

use crate::util;

/// One picture's planes, tightly packed.
#[derive(Clone, Debug)]
struct Picture {
    width: usize,
    height: usize,
    y: Vec<u8>,
    u: Vec<u8>,
    v: Vec<u8>,
}

/// Runs a test tool, failing with the install hint if it is missing.
fn tool(name: &str) -> Command {
    let found = Command::new(name)
        .arg(if name == "ffmpeg" {
            "-version"
        } else {
            "--version"
        })
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{name} is needed by the Y4M tests: apt-get install ffmpeg gstreamer1.0-tools gstreamer1.0-plugins-good (bash .ci/run does)"
    );
    Command::new(name)
}

/// `frames` frames of ffmpeg's `testsrc2` at `size` and `rate` in `pix_fmt`, as YUV4MPEG2.
fn ffmpeg_y4m(path: &Path, size: &str, rate: &str, frames: u32, pix_fmt: &str) {
    let out = tool("ffmpeg")
        .args(["-loglevel", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={size}:rate={rate}"))
        .args(["-frames:v", &frames.to_string(), "-pix_fmt", pix_fmt])
        .args(["-strict", "-1", "-f", "yuv4mpegpipe"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// ffmpeg's own 4:2:0 version of a Y4M file (its scaler, not our code): the reference for our
/// 4:2:2 and 4:4:4 conversion.
fn ffmpeg_to_420(from: &Path, to: &Path) {
    let out = tool("ffmpeg")
        .args(["-loglevel", "error", "-y", "-i"])
        .arg(from)
        .args(["-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe"])
        .arg(to)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every frame of a 4:2:0 Y4M file, read with the `y4m` crate.
fn read_y4m(path: &Path) -> Vec<Picture> {
    let file = std::fs::File::open(path).unwrap();
    let mut dec = y4m::Decoder::new(std::io::BufReader::new(file)).unwrap();
    let (width, height) = (dec.get_width(), dec.get_height());
    let mut out = Vec::new();
    loop {
        match dec.read_frame() {
            Ok(f) => {
                assert_eq!(
                    f.get_u_plane().len(),
                    width * height / 4,
                    "a 4:2:0 reference"
                );
                out.push(Picture {
                    width,
                    height,
                    y: f.get_y_plane().to_vec(),
                    u: f.get_u_plane().to_vec(),
                    v: f.get_v_plane().to_vec(),
                })
            }
            Err(y4m::Error::EOF) => break,
            Err(e) => panic!("{}: {e}", path.display()),
        }
    }
    out
}

/// Reads every segment of the playlist in `dir` (checking each with the test kit) and decodes
/// them in order with openh264's decoder.
fn decode_stream(dir: &Path, name: &str) -> (Vec<Picture>, Vec<usize>) {
    let pl = util::read_playlist(dir, name);
    let mut dec = Decoder::new().unwrap();
    let mut pictures = Vec::new();
    let mut per_segment = Vec::new();
    let mut keep = |pic: &openh264::decoder::DecodedYUV<'_>| {
        let (w, h) = pic.dimensions();
        let (ys, us, vs) = pic.strides();
        let plane = |data: &[u8], stride: usize, w: usize, h: usize| {
            (0..h)
                .flat_map(|r| data[r * stride..r * stride + w].iter().copied())
                .collect::<Vec<u8>>()
        };
        pictures.push(Picture {
            width: w,
            height: h,
            y: plane(pic.y(), ys, w, h),
            u: plane(pic.u(), us, w / 2, h / 2),
            v: plane(pic.v(), vs, w / 2, h / 2),
        });
    };
    for seg in &pl.segments {
        let bytes = std::fs::read(dir.join(&seg.uri)).unwrap();
        let report = hls_testkit::check::read_segment(&bytes, None)
            .unwrap_or_else(|e| panic!("{}: {e}", seg.uri));
        assert!(report.aus[0].keyframe, "{}: opens with an IDR", seg.uri);
        per_segment.push(report.aus.len());
        for au in &report.aus {
            if let Some(pic) = dec.decode(&au.payload).unwrap() {
                keep(&pic);
            }
        }
    }
    for pic in dec.flush_remaining().unwrap() {
        keep(&pic);
    }
    (pictures, per_segment)
}

/// PSNR in dB of one plane against its reference, over the rows outside `skip` (the timecode
/// box: text h/10 high on a baseline at 80 % of the height).
fn psnr(got: &[u8], want: &[u8], width: usize, skip: std::ops::Range<usize>) -> f64 {
    assert_eq!(got.len(), want.len());
    let (mut sum, mut n) = (0f64, 0f64);
    for (r, (g, w)) in got.chunks(width).zip(want.chunks(width)).enumerate() {
        if skip.contains(&r) {
            continue;
        }
        for (a, b) in g.iter().zip(w) {
            let d = f64::from(*a) - f64::from(*b);
            sum += d * d;
            n += 1.0;
        }
    }
    let mse = sum / n;
    if mse == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (255.0f64 * 255.0 / mse).log10()
}

/// Rows of the picture the timecode box may cover (generously).
fn timecode_rows(height: usize) -> std::ops::Range<usize> {
    height * 6 / 10..height * 19 / 20
}

/// The lowest PSNR of (Y, U, V) over all frames, outside the timecode rows.
fn worst_psnr(got: &[Picture], want: &[Picture]) -> [f64; 3] {
    assert_eq!(got.len(), want.len(), "every frame in is a frame out");
    let mut worst = [f64::INFINITY; 3];
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!((g.width, g.height), (w.width, w.height), "frame {k}");
        let (wd, h) = (g.width, g.height);
        let rows = timecode_rows(h);
        let crows = rows.start / 2..rows.end.div_ceil(2);
        let p = [
            psnr(&g.y, &w.y, wd, rows),
            psnr(&g.u, &w.u, wd / 2, crows.clone()),
            psnr(&g.v, &w.v, wd / 2, crows),
        ];
        for (w, p) in worst.iter_mut().zip(p) {
            *w = w.min(p);
        }
    }
    worst
}

fn run_file(dir: &Path, input: &Path, extra: &[&str]) -> hls::pipeline::Summary {
    let mut args = vec!["--input", input.to_str().unwrap()];
    args.extend_from_slice(extra);
    let cfg = util::config(dir, &args);
    util::pipeline(&cfg, Arc::default(), Arc::default())
        .unwrap_or_else(|e| panic!("pipeline failed: {e}"))
}

/// 90 frames of 320x240 at 30 fps: 90 frames out, EOF ends the stream with ENDLIST, and the
/// pictures are the input's (PSNR of every plane of every frame at least 30 dB).
#[test]
fn y4m_file_every_frame_in_is_a_frame_out_and_the_picture_matches() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.y4m");
    ffmpeg_y4m(&input, "320x240", "30", 90, "yuv420p");
    let out = tmp.path().join("out");
    let summary = run_file(&out, &input, &["--bitrate", "2M"]);
    assert_eq!(summary.frames_generated, 90);
    assert_eq!(summary.frames_encoded, 90);
    assert_eq!(summary.frames_dropped, 0);
    assert_eq!(summary.markers, 0, "a Y4M input has no events");
    assert!(summary.input_error.is_none());
    let pl = util::read_playlist(&out, "chessboard");
    assert!(pl.end_list, "the end of the input ends the stream");
    let durations: Vec<f32> = pl.segments.iter().map(|s| s.duration).collect();
    assert_eq!(durations, vec![2.0, 1.0]);
    let (pictures, per_segment) = decode_stream(&out, "chessboard");
    assert_eq!(per_segment, vec![60, 30]);
    let worst = worst_psnr(&pictures, &read_y4m(&input));
    assert!(worst.iter().all(|&p| p >= 30.0), "PSNR Y, U, V: {worst:?}");
}

/// `F30000:1001` is 29.97 exactly: segments open on the first frame at or after each 2 s
/// boundary of the 1001/30000 s frame grid, and EXTINF is their exact length.
#[test]
fn y4m_at_29_97_gives_exact_extinf_on_the_frame_grid() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("ntsc.y4m");
    ffmpeg_y4m(&input, "160x120", "30000/1001", 150, "yuv420p");
    let header = std::fs::read(&input).unwrap();
    assert!(header.starts_with(b"YUV4MPEG2 W160 H120 F30000:1001"));
    let out = tmp.path().join("out");
    let summary = run_file(&out, &input, &[]);
    assert_eq!(summary.frames_encoded, 150);
    // Boundary k: the first frame n with n * 1001 / 30000 >= 2k, i.e. n >= 60000k / 1001.
    let opens: Vec<u64> = (0..3).map(|k: u64| (60_000 * k).div_ceil(1001)).collect();
    assert_eq!(opens, vec![0, 60, 120]);
    let ends = [60u64, 120, 150];
    let want: Vec<String> = opens
        .iter()
        .zip(ends)
        .map(|(a, b)| format!("#EXTINF:{:.3},", (b - a) as f64 * 1001.0 / 30_000.0))
        .collect();
    assert_eq!(want, ["#EXTINF:2.002,", "#EXTINF:2.002,", "#EXTINF:1.001,"]);
    let text = std::fs::read_to_string(out.join("chessboard.m3u8")).unwrap();
    let got: Vec<&str> = text.lines().filter(|l| l.starts_with("#EXTINF")).collect();
    assert_eq!(got, want, "{text}");
    assert!(text.contains("#EXT-X-TARGETDURATION:3"), "{text}");
    let (_, per_segment) = decode_stream(&out, "chessboard");
    assert_eq!(per_segment, vec![60, 60, 30]);
}

/// 4:2:2 and 4:4:4 inputs are brought to 4:2:0 by us; the decoded pictures match ffmpeg's own
/// 4:2:0 conversion of the same frames.
#[test]
fn y4m_422_and_444_convert_to_420() {
    for pix_fmt in ["yuv422p", "yuv444p"] {
        let tmp = tempfile::tempdir().unwrap();
        let input = tmp.path().join(format!("{pix_fmt}.y4m"));
        ffmpeg_y4m(&input, "320x240", "30", 30, pix_fmt);
        let c = if pix_fmt == "yuv422p" { "C422" } else { "C444" };
        let head = String::from_utf8_lossy(&std::fs::read(&input).unwrap()[..60]).into_owned();
        assert!(head.contains(c), "{head}");
        let reference = tmp.path().join("ref420.y4m");
        ffmpeg_to_420(&input, &reference);
        let out = tmp.path().join("out");
        let summary = run_file(&out, &input, &["--bitrate", "2M"]);
        assert_eq!(summary.frames_encoded, 30, "{pix_fmt}");
        let (pictures, _) = decode_stream(&out, "chessboard");
        let worst = worst_psnr(&pictures, &read_y4m(&reference));
        assert!(
            worst.iter().all(|&p| p >= 30.0),
            "{pix_fmt}: PSNR Y, U, V {worst:?}"
        );
    }
}

/// The binary reads `--input -`: ffmpeg and GStreamer's `y4menc` piped in, each frame out.
#[test]
fn y4m_on_stdin_from_ffmpeg_and_gstreamer() {
    let ffmpeg = tool("ffmpeg")
        .args(["-loglevel", "error", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=320x240:rate=30")
        .args([
            "-frames:v",
            "90",
            "-pix_fmt",
            "yuv420p",
            "-f",
            "yuv4mpegpipe",
            "-",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let gst = tool("gst-launch-1.0")
        .args(["-q", "videotestsrc", "num-buffers=60", "!"])
        .args([
            "video/x-raw,format=I420,width=320,height=240,framerate=30/1",
            "!",
        ])
        .args(["y4menc", "!", "fdsink", "fd=1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    for (mut producer, frames, segments) in [(ffmpeg, 90, 2), (gst, 60, 1)] {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_hls-streamer"))
            .args(["--input", "-", "--no-server", "--out-dir"])
            .arg(dir.path())
            .stdin(producer.stdout.take().unwrap())
            .output()
            .unwrap();
        assert!(producer.wait().unwrap().success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(stderr.contains("YUV4MPEG2 input"), "{stderr}");
        let pl = util::read_playlist(dir.path(), "chessboard");
        assert!(pl.end_list);
        assert_eq!(pl.segments.len(), segments, "{stderr}");
        let (pictures, _) = decode_stream(dir.path(), "chessboard");
        assert_eq!(pictures.len(), frames);
        assert!(pictures.iter().all(|p| (p.width, p.height) == (320, 240)));
    }
}

/// Each bad input is named in the error, exits 2, and touches nothing: `--fresh` has not
/// removed the previous stream, a new `--out-dir` is not created.
#[test]
fn bad_y4m_inputs_exit_2_with_their_error_and_touch_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good.y4m");
    ffmpeg_y4m(&good, "64x48", "30", 3, "yuv420p");
    let bytes = std::fs::read(&good).unwrap();
    let header_len = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    let frame_len = 6 + 64 * 48 * 3 / 2;
    let write = |name: &str, data: &[u8]| {
        let p = tmp.path().join(name);
        std::fs::write(&p, data).unwrap();
        p
    };
    let cases: Vec<(PathBuf, &str)> = vec![
        (write("empty.y4m", b""), "empty input: no YUV4MPEG2 header"),
        (
            write("png.y4m", b"\x89PNG\r\n\x1a\n...."),
            "not a YUV4MPEG2 stream: it starts with \"\\x89PNG\\r\"",
        ),
        (
            write("truncated.y4m", b"YUV4MPEG2 W320 H24"),
            "truncated YUV4MPEG2 header: the input ended after 18 bytes",
        ),
        (
            write("p10.y4m", b"YUV4MPEG2 W64 H48 F30:1 C420p10\nFRAME\n"),
            "unsupported colour space C420p10",
        ),
        (
            write("odd.y4m", b"YUV4MPEG2 W65 H48 F30:1\nFRAME\n"),
            "odd frame size 65x48",
        ),
        (
            write(
                "norate.y4m",
                &[b"YUV4MPEG2 W64 H48 C420\n".as_slice(), &bytes[header_len..]].concat(),
            ),
            "gives no frame rate (no F in its header): give one with --fps",
        ),
        (
            write("noframe.y4m", &bytes[..header_len]),
            "the YUV4MPEG2 stream has a header but no frame",
        ),
        (
            write("short0.y4m", &bytes[..header_len + 1000]),
            "frame 0 (counting from 0) is short: the input ended after 994 of the 4608 bytes",
        ),
        (
            // The planes of frame 0 without their FRAME line.
            write(
                "nomarker.y4m",
                &[&bytes[..header_len], &bytes[header_len + 6..]].concat(),
            ),
            "frame 0 (counting from 0): missing FRAME marker",
        ),
        (
            tmp.path().join("missing.y4m"),
            "missing.y4m: cannot open it",
        ),
    ];
    assert_eq!(bytes.len(), header_len + 3 * frame_len);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("chessboard.m3u8"), b"#EXTM3U\n").unwrap();
    std::fs::write(dir.path().join("chessboard0.ts"), b"old").unwrap();
    let new_dir = dir.path().join("new");
    let mut all: Vec<(Vec<String>, String)> = cases
        .iter()
        .map(|(p, says)| {
            (
                vec!["--input".into(), p.display().to_string()],
                says.to_string(),
            )
        })
        .collect();
    // A camera is connected to on the pipeline's thread (tests/rtsp.rs); a flag it cannot take
    // is refused before that, its credentials unshown.
    all.push((
        vec![
            "--input".into(),
            "rtsp://admin:secret@cam.local/live".into(),
            "--size".into(),
            "64x48".into(),
        ],
        "--size cannot be used with an RTSP --input".into(),
    ));
    all.push((
        vec![
            "--input".into(),
            "rtsp://admin:secret@cam.local:99999/live".into(),
        ],
        "invalid value 'rtsp://***@cam.local:99999/live' for '--input <INPUT>': bad port".into(),
    ));
    all.push((
        vec![
            "--input".into(),
            good.display().to_string(),
            "--size".into(),
            "64x48".into(),
        ],
        "--size cannot be used with a Y4M --input".into(),
    ));
    for (args, says) in &all {
        for target in [dir.path(), new_dir.as_path()] {
            let out = Command::new(env!("CARGO_BIN_EXE_hls-streamer"))
                .args(args)
                .args(["--fresh", "--no-server", "--out-dir"])
                .arg(target)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
            assert!(
                stderr.contains(says.as_str()),
                "{args:?}: want {says:?}, got {stderr}"
            );
            assert!(
                !stderr.contains("secret"),
                "credentials never shown: {stderr}"
            );
            assert!(!stderr.contains("panicked"), "{stderr}");
        }
        assert_eq!(
            std::fs::read(dir.path().join("chessboard0.ts")).unwrap(),
            b"old",
            "{args:?} deleted the previous stream"
        );
        assert!(dir.path().join("chessboard.m3u8").exists(), "{args:?}");
        assert!(!new_dir.exists(), "{args:?} created --out-dir");
    }
}

/// A bad frame after the first segment ends the stream cleanly: the frames before it are
/// published, then EXT-X-ENDLIST, exit 0 with the error logged. Before the first segment it is
/// exit 2, and no playlist is written.
#[test]
fn a_bad_frame_mid_stream_ends_cleanly_after_the_first_segment_and_fails_before_it() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good.y4m");
    ffmpeg_y4m(&good, "64x48", "30", 100, "yuv420p");
    let bytes = std::fs::read(&good).unwrap();
    let header_len = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    let frame_len = 6 + 64 * 48 * 3 / 2;
    let frame_at = |k: usize| header_len + k * frame_len;
    // Frame 75 cut short; frame 70 without its FRAME marker (after the first segment); and a
    // short frame 20 (before it).
    let short75 = tmp.path().join("short75.y4m");
    std::fs::write(&short75, &bytes[..frame_at(75) + 100]).unwrap();
    let nomarker70 = tmp.path().join("nomarker70.y4m");
    std::fs::write(
        &nomarker70,
        [&bytes[..frame_at(70)], &bytes[frame_at(70) + 6..]].concat(),
    )
    .unwrap();
    for (input, frames, says) in [
        (&short75, 75, "frame 75 (counting from 0) is short"),
        (
            &nomarker70,
            70,
            "frame 70 (counting from 0): missing FRAME marker",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_hls-streamer"))
            .args(["--no-pacing", "--no-server", "--input"])
            .arg(input)
            .arg("--out-dir")
            .arg(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
        assert!(stderr.contains("ERROR"), "logged as an error: {stderr}");
        let pl = util::read_playlist(dir.path(), "chessboard");
        assert!(pl.end_list);
        let (pictures, per_segment) = decode_stream(dir.path(), "chessboard");
        assert_eq!(pictures.len(), frames, "the frames before the bad one");
        assert_eq!(per_segment, vec![60, frames - 60]);
    }
    let short20 = tmp.path().join("short20.y4m");
    std::fs::write(&short20, &bytes[..frame_at(20) + 100]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hls-streamer"))
        .args(["--no-pacing", "--no-server", "--input"])
        .arg(&short20)
        .arg("--out-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("frame 20 (counting from 0) is short")
            && stderr.contains("before the first segment"),
        "{stderr}"
    );
    // No playlist and no segment (the marker log, opened at the start, may be there).
    let media: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".m3u8") || n.ends_with(".ts"))
        .collect();
    assert!(media.is_empty(), "nothing published: {media:?}");
}

/// `GET path` on 127.0.0.1:`port`; the status code, or `None` if nothing answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// A FIFO whose producer pauses for 5 s: `/healthz` is 503 during the stall, the playlist
/// continues after one EXT-X-DISCONTINUITY whose program date time is the real time of the
/// frames after the pause, segments keep coming, and every frame in is a frame out.
#[test]
fn a_stalling_fifo_turns_healthz_503_and_resumes_after_a_discontinuity() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("src.y4m");
    ffmpeg_y4m(&source, "160x120", "30", 180, "yuv420p");
    let bytes = std::fs::read(&source).unwrap();
    let header_len = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    let frame_len = 6 + 160 * 120 * 3 / 2;
    let fifo = tmp.path().join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out_dir = tmp.path().join("out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hls-streamer"))
        .args(["--hls-time", "1", "--list-size", "30", "--bind"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--input")
        .arg(&fifo)
        .arg("--out-dir")
        .arg(&out_dir)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The producer: 90 frames in real time, a 5 s pause, 90 more, then it closes the FIFO.
    let pause = Duration::from_secs(5);
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
            w.write_all(&bytes[..header_len]).unwrap();
            let t0 = Instant::now();
            let mut pause_started = None;
            for k in 0..180 {
                let mut due = t0 + Duration::from_secs_f64(k as f64 / 30.0);
                if k >= 90 {
                    due += pause;
                }
                if k == 90 {
                    pause_started = Some(Instant::now());
                }
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let at = header_len + k * frame_len;
                w.write_all(&bytes[at..at + frame_len]).unwrap();
            }
            (t0, pause_started.unwrap())
        })
    };
    // /healthz every 100 ms until the binary exits: (time, status).
    let started = Instant::now();
    let mut health = Vec::new();
    while child.try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the stream did not end"
        );
        if let Some(code) = http_status(port, "/healthz") {
            health.push((Instant::now(), code));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, pause_started) = writer.join().unwrap();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("the input stalled"), "{stderr}");
    assert!(stderr.contains("the input is back"), "{stderr}");

    let pause_ended = pause_started + pause;
    let at = |from: Instant, to: Instant| -> Vec<u16> {
        health
            .iter()
            .filter(|(t, _)| *t >= from && *t <= to)
            .map(|(_, c)| *c)
            .collect()
    };
    // Live before the pause (the first 1 s segment is out after about 1 s).
    let before = at(pause_started - Duration::from_millis(800), pause_started);
    assert!(before.contains(&200), "live before the pause: {health:?}");
    // The stall is declared one segment (1 s) after the missing frame was due.
    let during = at(
        pause_started + Duration::from_millis(1800),
        pause_ended - Duration::from_millis(200),
    );
    assert!(during.len() >= 10, "{health:?}");
    assert!(
        during.iter().all(|&c| c == 503),
        "503 while stalled: {during:?}"
    );
    let after = at(
        pause_ended + Duration::from_millis(2500),
        pause_ended + Duration::from_secs(3),
    );
    assert!(
        after.contains(&200),
        "live again after the pause: {health:?}"
    );

    let text = std::fs::read_to_string(out_dir.join("chessboard.m3u8")).unwrap();
    assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{text}");
    assert!(text.ends_with("#EXT-X-ENDLIST\n"), "{text}");
    let pl = util::read_playlist(&out_dir, "chessboard");
    let disc = pl
        .segments
        .iter()
        .position(|s| s.discontinuity)
        .expect("a discontinuity");
    assert!(disc >= 3 && pl.segments.len() - disc >= 2, "{text}");
    // Before it: 90 frames in 1 s segments, the last one closed after the last frame.
    let before: f32 = pl.segments[..disc].iter().map(|s| s.duration).sum();
    assert!((before - 3.0).abs() < 1e-3, "{text}");
    // The PDT after the gap is the real time of the frames after the pause: about 5 s after the
    // end of the last segment before it.
    let pdt = |i: usize| pl.segments[i].program_date_time.unwrap();
    let end_before = pdt(disc - 1)
        + chrono::Duration::milliseconds((pl.segments[disc - 1].duration * 1000.0).round() as i64);
    let gap = (pdt(disc) - end_before).num_milliseconds();
    assert!((4_000..=6_500).contains(&gap), "PDT gap {gap} ms\n{text}");
    let (pictures, _) = decode_stream(&out_dir, "chessboard");
    assert_eq!(pictures.len(), 180, "every frame in is a frame out");
}
