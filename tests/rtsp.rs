//! RTSP camera input against a real RTSP server: GStreamer's (`tests/rtsp/server.py`, started by
//! each test on 127.0.0.1). Passthrough decodes back and cuts at the camera's IDRs; a camera
//! restart gives a discontinuity and new segments within seconds; bad credentials and an
//! unreachable camera get clear errors that never show a password; a connection that goes
//! silent (`stall.rs`) is dropped and the stream reconnects.
//!
//! Without GStreamer's RTSP server these tests skip with a loud message, except under CI (`CI`
//! set), where they fail: `.ci/run` installs it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hls::state::Shared;
use openh264::decoder::Decoder;

use crate::util::{self, nal_types};

// A TCP stall: a silent connection is dropped, the stream reconnects.
mod stall;
// Two cameras and a checkerboard from one configuration file, isolated from each other.
mod multi;
// Markers posted by date land on the camera frame of that date.
mod markers;

const PYTHON: &str = "/usr/bin/python3";

/// A running GStreamer RTSP server; killed when dropped.
struct GstServer {
    child: Child,
    port: u16,
    /// What it printed on stdout after its port.
    lines: std::sync::mpsc::Receiver<String>,
}

impl Drop for GstServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl GstServer {
    fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/test", self.port)
    }
}

/// True when GStreamer's RTSP server can be used; otherwise skips loudly, or fails under CI.
fn gstreamer_available() -> bool {
    let ok = Command::new(PYTHON)
        .args([
            "-c",
            "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); \
             from gi.repository import GstRtspServer",
        ])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI: GStreamer's RTSP server is missing (apt-get install python3-gi \
             gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
             gstreamer1.0-plugins-ugly); .ci/run installs it"
        );
        eprintln!(
            "\n\n*** SKIPPED: RTSP tests need GStreamer's RTSP server for {PYTHON} (apt-get install \
             python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base \
             gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly) ***\n"
        );
    }
    ok
}

/// Starts `tests/rtsp/server.py` with `args`; waits (at most 15 s) for it to print its port.
fn start_server(args: &[&str]) -> GstServer {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rtsp/server.py");
    let mut child = Command::new(PYTHON)
        .arg(script)
        .args(["--lifetime", "120"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the GStreamer RTSP server");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Read to the end, so that the server never writes into a closed pipe.
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(15))
        .expect("the RTSP server prints its port within 15 s");
    let port = line
        .trim()
        .strip_prefix("PORT ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line from server.py: {line:?}"));
    GstServer {
        child,
        port,
        lines: rx,
    }
}

/// A port nothing listens on (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One segment read back.
struct ReadSegment {
    uri: String,
    extinf: f32,
    discontinuity: bool,
    /// (33-bit PTS, keyframe, payload) per access unit.
    aus: Vec<(u64, bool, Vec<u8>)>,
}

/// Reads every segment of the playlist with the test kit's TS reader (continuity counters
/// checked across files, except after a discontinuity), checking each opens with an IDR.
fn read_segments(dir: &Path) -> (m3u8_rs::MediaPlaylist, Vec<ReadSegment>) {
    read_segments_of(dir, "chessboard")
}

/// [`read_segments`] of stream `name`.
fn read_segments_of(dir: &Path, name: &str) -> (m3u8_rs::MediaPlaylist, Vec<ReadSegment>) {
    let pl = util::read_playlist(dir, name);
    let mut prev_cc: Option<BTreeMap<u16, u8>> = None;
    let mut out = Vec::new();
    for seg in &pl.segments {
        let bytes = std::fs::read(dir.join(&seg.uri)).unwrap();
        if seg.discontinuity {
            prev_cc = None;
        }
        let report = hls_testkit::check::read_segment(&bytes, prev_cc.as_ref())
            .unwrap_or_else(|e| panic!("{}: {e}", seg.uri));
        let first = &report.aus[0];
        assert!(first.keyframe, "{}: opens with a random access AU", seg.uri);
        let nals = nal_types(&first.payload);
        let idr = nals.iter().position(|&t| t == 5);
        assert!(
            nals[0] == 9 && nals.contains(&7) && nals.contains(&8) && idr.is_some(),
            "{}: AUD, SPS, PPS and an IDR in the first AU, got NAL types {nals:?}",
            seg.uri
        );
        for au in &report.aus[1..] {
            assert!(
                !nal_types(&au.payload).contains(&5),
                "{}: one IDR per segment, at its start",
                seg.uri
            );
        }
        prev_cc = Some(report.last_cc.clone());
        out.push(ReadSegment {
            uri: seg.uri.clone(),
            extinf: seg.duration,
            discontinuity: seg.discontinuity,
            aus: report
                .aus
                .iter()
                .map(|a| (a.pts, a.keyframe, a.payload.clone()))
                .collect(),
        });
    }
    (pl, out)
}

/// Decodes every access unit of `segs` in order with openh264: each decodes without error and
/// gives one picture of `w`x`h`.
fn decode_all(segs: &[ReadSegment], w: usize, h: usize) {
    let mut dec = Decoder::new().unwrap();
    let mut pictures = 0usize;
    let total: usize = segs.iter().map(|s| s.aus.len()).sum();
    for s in segs {
        if s.discontinuity {
            // A new session: decoding restarts at its IDR.
            dec = Decoder::new().unwrap();
        }
        for (i, (_, _, payload)) in s.aus.iter().enumerate() {
            let pic = dec
                .decode(payload)
                .unwrap_or_else(|e| panic!("{} AU {i} does not decode: {e}", s.uri));
            if let Some(pic) = pic {
                use openh264::formats::YUVSource;
                assert_eq!(pic.dimensions(), (w, h));
                pictures += 1;
            }
        }
    }
    pictures += dec.flush_remaining().unwrap().len();
    assert!(
        pictures + 1 >= total,
        "{pictures} pictures from {total} access units"
    );
}

/// Within each run (between discontinuities) PTS advances by one frame (30 fps: 3000 ticks,
/// give or take GStreamer's rounding to the tick), and every EXTINF is its segment's length to
/// the frame: the next segment's first PTS minus its own.
fn check_timing(segs: &[ReadSegment]) {
    for (i, s) in segs.iter().enumerate() {
        let pts: Vec<u64> = s.aus.iter().map(|a| a.0).collect();
        for w in pts.windows(2) {
            let d = w[1].wrapping_sub(w[0]) & ((1 << 33) - 1);
            assert!((2990..=3010).contains(&d), "{}: PTS step {d}", s.uri);
        }
        let end = match segs.get(i + 1) {
            Some(next) if !next.discontinuity => {
                let gap = next.aus[0].0.wrapping_sub(*pts.last().unwrap()) & ((1 << 33) - 1);
                assert!(
                    (2990..=3010).contains(&gap),
                    "{}: PTS into the next segment",
                    s.uri
                );
                next.aus[0].0
            }
            _ => pts.last().unwrap() + 3000,
        };
        let length = (end.wrapping_sub(pts[0]) & ((1 << 33) - 1)) as f64 / 90_000.0;
        assert!(
            (f64::from(s.extinf) - length).abs() < 0.002,
            "{}: EXTINF {} but its frames last {length:.4} s",
            s.uri,
            s.extinf
        );
        let frames_time = s.aus.len() as f64 / 30.0;
        assert!(
            (length - frames_time).abs() < 1.0 / 30.0,
            "{}: {} frames in {length} s",
            s.uri,
            s.aus.len()
        );
    }
}

/// Passthrough: 10 s of a 30 fps camera with an IDR every 60 frames into 2 s segments, over
/// `transport`. Every segment opens with the camera's IDR, lasts 2 s (60 frames), decodes, and
/// TARGETDURATION is the GOP-derived 2; no discontinuity (nothing lost).
fn passthrough_cuts_and_decodes_over(transport: &str) {
    let server = start_server(&[]);
    let dir = tempfile::tempdir().unwrap();
    let url = server.url();
    let cfg = util::config(
        dir.path(),
        &[
            "--frames",
            "300",
            "--rtsp-transport",
            transport,
            "--input",
            &url,
        ],
    );
    assert_eq!(cfg.stream.rtsp_transport().to_string(), transport);
    let shared = Arc::new(Shared::default());
    let summary = util::pipeline(&cfg, shared.clone(), Arc::new(AtomicBool::new(false)))
        .unwrap_or_else(|e| panic!("camera stream over {transport} failed: {e}"));
    assert_eq!(summary.frames_encoded, 300);
    let (pl, segs) = read_segments(dir.path());
    assert!(pl.end_list);
    assert_eq!(pl.target_duration, 2, "ceil(2 s / 2 s GOP) GOPs");
    assert_eq!(segs.len(), 5, "300 frames in 60-frame GOPs");
    assert!(segs.iter().all(|s| !s.discontinuity));
    for s in &segs {
        assert_eq!(s.aus.len(), 60, "{}: one GOP", s.uri);
    }
    check_timing(&segs);
    decode_all(&segs, 320, 240);
}

/// Passthrough over TCP (interleaved, the default).
#[test]
fn passthrough_cuts_at_the_cameras_idrs_and_decodes() {
    if !gstreamer_available() {
        return;
    }
    passthrough_cuts_and_decodes_over("tcp");
}

/// Passthrough over UDP (`--rtsp-transport udp`: RTP and RTCP on ports of their own, on
/// 127.0.0.1; GStreamer's server offers it): the same checks as over TCP.
#[test]
fn passthrough_over_udp_cuts_at_the_cameras_idrs_and_decodes() {
    if !gstreamer_available() {
        return;
    }
    passthrough_cuts_and_decodes_over("udp");
}

/// A GOP longer than --hls-time: one GOP per segment, TARGETDURATION from the GOP.
#[test]
fn a_gop_longer_than_hls_time_sets_the_target() {
    if !gstreamer_available() {
        return;
    }
    let server = start_server(&["--key-int", "90"]);
    let dir = tempfile::tempdir().unwrap();
    let url = server.url();
    let cfg = util::config(dir.path(), &["--frames", "270", "--input", &url]);
    util::pipeline(
        &cfg,
        Arc::new(Shared::default()),
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap();
    let (pl, segs) = read_segments(dir.path());
    assert_eq!(pl.target_duration, 3);
    assert_eq!(
        segs.iter().map(|s| s.aus.len()).collect::<Vec<_>>(),
        [90, 90, 90]
    );
    check_timing(&segs);
}

/// Waits (at most `limit`) until `f` holds, polling every 100 ms.
fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

fn playlist_text(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("chessboard.m3u8")).unwrap_or_default()
}

/// A camera stopped midway and started again on its port, while a stream runs into `dir`:
/// waits for two segments, stops `server`, waits for the input to be reported down, starts the
/// camera again, and waits (at most 15 s) for two new segments after a discontinuity. Returns
/// the new server, whether they came, and how long after the camera's return.
fn restart_camera_midway(
    server: GstServer,
    dir: &Path,
    shared: &Shared,
) -> (GstServer, bool, Duration) {
    let port = server.port.to_string();
    let segments = |d: &Path| playlist_text(d).matches("#EXTINF").count();
    assert!(
        wait_for(Duration::from_secs(20), || segments(dir) >= 2),
        "two segments within 20 s"
    );
    drop(server);
    assert!(
        wait_for(Duration::from_secs(8), || shared.input_down().is_some()),
        "the camera is reported down"
    );
    let before = segments(dir);
    std::thread::sleep(Duration::from_millis(500));
    let back = Instant::now();
    let server = start_server(&["--port", &port]);
    let resumed = wait_for(Duration::from_secs(15), || {
        let t = playlist_text(dir);
        t.contains("#EXT-X-DISCONTINUITY\n") && t.matches("#EXTINF").count() >= before + 2
    });
    (server, resumed, back.elapsed())
}

/// After [`restart_camera_midway`] and the stream's end: the camera came back within 10 s and
/// is up, the playlist ended, and it holds one discontinuity after at least two old segments.
/// Returns the playlist, its segments and the discontinuity's index.
fn check_restarted(
    dir: &Path,
    shared: &Shared,
    resumed: bool,
    took: Duration,
) -> (m3u8_rs::MediaPlaylist, Vec<ReadSegment>, usize) {
    assert!(
        resumed,
        "new segments after a discontinuity within 15 s:\n{}",
        playlist_text(dir)
    );
    assert!(took < Duration::from_secs(10), "back after {took:?}");
    assert!(shared.input_down().is_none(), "up again");
    let (pl, segs) = read_segments(dir);
    assert!(pl.end_list);
    let disc: Vec<usize> = (0..segs.len()).filter(|&i| segs[i].discontinuity).collect();
    assert_eq!(disc.len(), 1, "one discontinuity: {:?}", pl.segments);
    assert!(disc[0] >= 2, "the old segments stay in the window");
    (pl, segs, disc[0])
}

/// Program date times go forward across the gap: one on every segment, each later than the last.
fn check_pdt_goes_forward(pl: &m3u8_rs::MediaPlaylist) {
    let pdts: Vec<_> = pl
        .segments
        .iter()
        .map(|s| s.program_date_time.expect("PDT on every segment"))
        .collect();
    assert!(pdts.windows(2).all(|w| w[0] < w[1]), "{pdts:?}");
}

/// The camera stops midway and comes back on the same port: the segment in progress is
/// published, the input reports down, and within a few seconds of the camera's return new
/// segments follow an EXT-X-DISCONTINUITY; the window keeps the old segments; both runs decode.
#[test]
fn camera_restart_continues_after_a_discontinuity() {
    if !gstreamer_available() {
        return;
    }
    let server = start_server(&[]);
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let cfg = util::config(dir.path(), &["--input", &url]);
    let shared = Arc::new(Shared::default());
    let stop = Arc::new(AtomicBool::new(false));
    let pipeline = {
        let (shared, stop) = (shared.clone(), stop.clone());
        std::thread::spawn(move || util::pipeline(&cfg, shared, stop))
    };
    let (_server, resumed, took) = restart_camera_midway(server, dir.path(), &shared);
    stop.store(true, Ordering::SeqCst);
    let summary = pipeline.join().unwrap().unwrap();
    let (pl, segs, _) = check_restarted(dir.path(), &shared, resumed, took);
    check_timing(&segs);
    decode_all(&segs, 320, 240);
    check_pdt_goes_forward(&pl);
    assert!(summary.segments as usize >= segs.len());
}

/// Wrong credentials: a clear error about them, without the password; right ones (in the URL,
/// split off it at once) work.
#[test]
fn credentials_wrong_and_right() {
    if !gstreamer_available() {
        return;
    }
    let server = start_server(&["--user", "viewer", "--password", "right-pw"]);
    let dir = tempfile::tempdir().unwrap();
    let bad = format!("rtsp://viewer:wrong-pw@127.0.0.1:{}/test", server.port);
    let cfg = util::config(dir.path(), &["--frames", "30", "--input", &bad]);
    let e = util::pipeline(
        &cfg,
        Arc::new(Shared::default()),
        Arc::new(AtomicBool::new(false)),
    )
    .expect_err("wrong credentials fail");
    let msg = format!("{e:#}");
    assert!(msg.contains("credentials"), "{msg}");
    assert!(msg.contains("rtsp://***@127.0.0.1"), "{msg}");
    assert!(
        !msg.contains("wrong-pw") && !msg.contains("viewer"),
        "{msg}"
    );
    let good = format!("rtsp://viewer:right-pw@127.0.0.1:{}/test", server.port);
    let cfg = util::config(dir.path(), &["--frames", "30", "--input", &good]);
    let s = util::pipeline(
        &cfg,
        Arc::new(Shared::default()),
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap();
    assert_eq!(s.frames_encoded, 30);
}

/// Unreachable at start: the reason is reported (never the password) while the client backs
/// off, and the stream starts once the camera comes up.
#[test]
fn unreachable_camera_is_retried_until_it_answers() {
    if !gstreamer_available() {
        return;
    }
    let port = free_port();
    let url = format!("rtsp://viewer:secret-pw@127.0.0.1:{port}/test");
    let dir = tempfile::tempdir().unwrap();
    let cfg = util::config(dir.path(), &["--frames", "60", "--input", &url]);
    let shared = Arc::new(Shared::default());
    let stop = Arc::new(AtomicBool::new(false));
    let pipeline = {
        let (shared, stop) = (shared.clone(), stop.clone());
        std::thread::spawn(move || util::pipeline(&cfg, shared, stop))
    };
    assert!(wait_for(Duration::from_secs(5), || shared
        .input_down()
        .is_some()));
    let why = shared.input_down().unwrap();
    assert!(!why.contains("secret-pw"), "{why}");
    assert!(
        why.to_lowercase().contains("refused") || why.to_lowercase().contains("connect"),
        "a reason a person can act on: {why}"
    );
    let _server = start_server(&[
        "--port",
        &port.to_string(),
        "--user",
        "viewer",
        "--password",
        "secret-pw",
    ]);
    let finished = wait_for(Duration::from_secs(30), || pipeline.is_finished());
    stop.store(true, Ordering::SeqCst);
    assert!(finished, "60 frames within 30 s of the camera coming up");
    let summary = pipeline.join().unwrap().unwrap();
    assert_eq!(summary.frames_encoded, 60);
}

/// Mean absolute luma difference of `a` and `b` over the pixels where `x` and `y` differ, and
/// how many those are.
fn diff_where_different(a: &[u8], b: &[u8], x: &[u8], y: &[u8]) -> (f64, usize) {
    let (mut sum, mut n) = (0u64, 0usize);
    for i in 0..a.len() {
        if x[i] != y[i] {
            sum += u64::from(a[i].abs_diff(b[i]));
            n += 1;
        }
    }
    (sum as f64 / n.max(1) as f64, n)
}

/// `--transcode` through `--input` (the path the binary takes): a camera with a 1.5 s GOP into
/// 1 s segments. Our fixed GOP decides: every segment is exactly 30 frames and EXTINF 1.000,
/// opens with an IDR (with SPS and PPS) and holds no other; TARGETDURATION 1. Every decoded
/// picture carries the timecode of its own frame: drawing that timecode on the decoded picture
/// changes it by coding noise only, drawing the next frame's changes the differing glyph pixels
/// by far more.
#[test]
fn transcode_gives_fixed_gop_segments_with_the_timecode() {
    use hls::overlay::{Timecode, TimecodeOverlay, DEFAULT_FONT};
    use hls::time::FrameRate;
    use openh264::formats::YUVSource;

    if !gstreamer_available() {
        return;
    }
    let server = start_server(&["--key-int", "45"]);
    let dir = tempfile::tempdir().unwrap();
    let url = server.url();
    let cfg = util::config(
        dir.path(),
        &[
            "--input",
            &url,
            "--transcode",
            "--hls-time",
            "1",
            "--frames",
            "150",
        ],
    );
    let summary = util::pipeline(
        &cfg,
        Arc::new(Shared::default()),
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap_or_else(|e| panic!("transcoded camera stream failed: {e}"));
    assert_eq!(summary.frames_encoded, 150);
    assert_eq!(summary.frames_dropped, 0, "--no-pacing drops nothing");
    let (pl, segs) = read_segments(dir.path());
    assert!(pl.end_list);
    assert_eq!(pl.target_duration, 1, "our GOP, not the camera's 1.5 s");
    assert_eq!(segs.len(), 5);
    for s in &segs {
        assert_eq!(s.aus.len(), 30, "{}: one 1 s GOP of ours", s.uri);
        assert!(
            (s.extinf - 1.0).abs() < 0.0005,
            "{}: EXTINF {}",
            s.uri,
            s.extinf
        );
        assert!(!s.discontinuity);
    }
    check_timing(&segs);

    let rate = FrameRate::new(30, 1).unwrap();
    let overlay = TimecodeOverlay::new(DEFAULT_FONT, 320, 240).unwrap();
    let mut dec = Decoder::new().unwrap();
    let (mut checked, mut worst_right, mut best_wrong) = (0usize, 0f64, f64::MAX);
    for s in &segs {
        for (pts, _, payload) in &s.aus {
            let pic = dec
                .decode(payload)
                .unwrap_or_else(|e| panic!("{}: does not decode: {e}", s.uri))
                .expect("no B-frames: one picture per access unit");
            assert_eq!(pic.dimensions(), (320, 240), "the camera's size");
            let mut got = hls::frame::YuvFrame::new(320, 240);
            let stride = pic.strides().0;
            for (row, out) in got.luma_mut().chunks_exact_mut(320).enumerate() {
                out.copy_from_slice(&pic.y()[row * stride..][..320]);
            }
            let slot = (pts - hls::config::DEFAULT_PTS_OFFSET.as_u64()) / 3000;
            let (mut right, mut wrong) = (got.clone(), got.clone());
            overlay.draw_i420(&mut right, Timecode::from_frame(slot, rate));
            overlay.draw_i420(&mut wrong, Timecode::from_frame(slot + 1, rate));
            let (err_right, n) =
                diff_where_different(got.luma(), right.luma(), right.luma(), wrong.luma());
            let (err_wrong, _) =
                diff_where_different(got.luma(), wrong.luma(), right.luma(), wrong.luma());
            assert!(
                n > 20,
                "slot {slot}: the two timecodes differ in {n} pixels"
            );
            assert!(
                err_right < 24.0 && err_wrong > 3.0 * err_right.max(8.0),
                "{} slot {slot}: the picture's timecode is not {}: {err_right:.1} levels off \
                 it, {err_wrong:.1} off the next frame's",
                s.uri,
                Timecode::from_frame(slot, rate)
            );
            worst_right = worst_right.max(err_right);
            best_wrong = best_wrong.min(err_wrong);
            checked += 1;
        }
    }
    assert_eq!(checked, 150);
    eprintln!(
        "timecode check: worst {worst_right:.1} levels off the right timecode, at least \
         {best_wrong:.1} off the wrong one"
    );
}

/// The binary with `--input rtsp://...` and a password: clap's error for a bad URL, the log of
/// a camera that cannot be reached and its exit never show the password.
#[test]
fn the_binary_never_shows_a_password() {
    let bin = env!("CARGO_BIN_EXE_hls-streamer");
    for bad in [
        "rtsp://admin:s3cret-pw@cam:99999/live",
        "rtsp://admin:s3cret-pw@/live",
    ] {
        let out = Command::new(bin).args(["--input", bad]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("--input"), "{stderr}");
        assert!(
            !stderr.contains("s3cret-pw") && !stderr.contains("admin"),
            "{stderr}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let url = format!("rtsp://admin:s3cret-pw@127.0.0.1:{}/live", free_port());
    let mut child = Command::new(bin)
        .args(["--input", &url, "--no-server", "--out-dir"])
        .arg(dir.path())
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    // SIGINT: it gives up waiting for the camera and exits.
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let until = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("rtsp://***@127.0.0.1"), "{stderr}");
    assert!(stderr.contains("unreachable"), "{stderr}");
    assert!(
        !stderr.contains("s3cret-pw") && !stderr.contains("admin"),
        "{stderr}"
    );
}

/// `--transcode` with the camera stopped midway and started again: the segment in progress is
/// published, and after the camera's return our encoder's segments follow one
/// EXT-X-DISCONTINUITY; every segment opens with our IDR, keeps its timing, and decodes.
#[test]
fn transcode_camera_restart_continues_after_a_discontinuity() {
    if !gstreamer_available() {
        return;
    }
    let server = start_server(&[]);
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let cfg = util::config(dir.path(), &["--input", &url, "--transcode"]);
    let shared = Arc::new(Shared::default());
    let stop = Arc::new(AtomicBool::new(false));
    let pipeline = {
        let (shared, stop) = (shared.clone(), stop.clone());
        std::thread::spawn(move || util::pipeline(&cfg, shared, stop))
    };
    let (_server, resumed, took) = restart_camera_midway(server, dir.path(), &shared);
    stop.store(true, Ordering::SeqCst);
    pipeline.join().unwrap().unwrap();
    let (pl, segs, disc) = check_restarted(dir.path(), &shared, resumed, took);
    assert_eq!(pl.target_duration, 2);
    // Whole segments of ours are exactly --hls-time: all but the one cut by the camera's drop,
    // the one after it (it runs to the next boundary of the stream's 2 s grid) and the last.
    for (i, s) in segs.iter().enumerate() {
        if i + 1 != disc && i != disc && i + 1 != segs.len() {
            assert_eq!(s.aus.len(), 60, "{}: one 2 s GOP of ours", s.uri);
        }
    }
    check_timing(&segs);
    decode_all(&segs, 320, 240);
}

/// `(uri, program date time in Unix ms, EXTINF in ms)` of every full segment listed in a
/// playlist's text.
fn listed_segments(text: &str) -> Vec<(String, i64, i64)> {
    let (mut pdt, mut extinf) = (None, None);
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(t) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            pdt = hls::clock::WallClock::parse_rfc3339(t).map(|w| w.unix_millis());
        } else if let Some(d) = line.strip_prefix("#EXTINF:") {
            let d: f64 = d
                .trim_end_matches(',')
                .split(',')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            extinf = Some((d * 1000.0).round() as i64);
        } else if !line.is_empty() && !line.starts_with('#') {
            out.push((line.to_owned(), pdt.take().unwrap(), extinf.take().unwrap()));
        }
    }
    out
}

/// Passthrough: each segment's EXT-X-PROGRAM-DATE-TIME is the wall-clock instant its first
/// frame arrived (within 100 ms), not the instant the stream clock started (after the first GOP
/// was captured to measure it, one GOP later). A segment closes when the next one's IDR arrives,
/// so it appears in the playlist just after PDT + EXTINF by the wall clock: that instant, taken
/// by the observer, is the truth (a live 30 fps camera on 127.0.0.1).
#[test]
fn passthrough_program_date_time_is_each_segments_arrival() {
    if !gstreamer_available() {
        return;
    }
    let server = start_server(&[]);
    let dir = tempfile::tempdir().unwrap();
    let url = server.url();
    let cfg = util::config(dir.path(), &["--frames", "360", "--input", &url]);
    // (uri, PDT + EXTINF, wall clock when it was first listed), Unix ms.
    let seen: Arc<Mutex<Vec<(String, i64, i64)>>> = Arc::default();
    let record = seen.clone();
    let observer = move |text: &str| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let mut seen = record.lock().unwrap();
        for (uri, pdt, extinf) in listed_segments(text) {
            if !seen.iter().any(|s| s.0 == uri) {
                seen.push((uri, pdt + extinf, now));
            }
        }
    };
    util::run_observed(&cfg, Arc::new(Shared::default()), observer)
        .unwrap_or_else(|e| panic!("camera stream failed: {e}"));
    let mut seen = std::mem::take(&mut *seen.lock().unwrap());
    // The last segment is closed by the frame limit, not by the next IDR's arrival.
    seen.pop();
    assert!(seen.len() >= 4, "segments listed: {seen:?}");
    for (uri, end, listed) in &seen {
        let lag = listed - end;
        eprintln!("{uri}: listed {lag} ms after PDT + EXTINF");
        assert!(
            (-100..=250).contains(&lag),
            "{uri}: listed {lag} ms after its PDT + EXTINF: its program date time is off the \
             wall clock of its frames' arrival by about that much"
        );
    }
}

/// `GET /stream`: its status and its JSON (null when it is not JSON).
fn stream_info(s: &util::Serving) -> (u16, serde_json::Value) {
    let (status, body) = s.get("/stream");
    (status, serde_json::from_slice(&body).unwrap_or_default())
}

/// Seconds since the Unix epoch of an HTTP date (`Wed, 02 Dec 2026 21:39:02 GMT`).
fn http_date_secs(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc2822(text)
        .unwrap_or_else(|e| panic!("{text:?} is not an HTTP date: {e}"))
        .timestamp()
}

/// The binary with a 25 fps camera whose GOP is 4 s, started with the default flags (30 fps,
/// 2 s segments, which would give TARGETDURATION 2). Until the camera plays `/stream` says it
/// does not know (503); then it gives the camera's 25/1 and TARGETDURATION 4, the playlist
/// may be cached half of 4 s, and a segment expires when its planned life at 4 s segments ends
/// (window of 3 and the R25 grace: 7 x 4 s), not at 7 x 2 s. The camera restarted at 15 fps:
/// `/stream` says 15/1.
#[test]
fn stream_info_and_cache_headers_follow_the_camera() {
    if !gstreamer_available() {
        return;
    }
    let server = start_server(&["--fps", "25", "--key-int", "100"]);
    let port = server.port.to_string();
    let streamer = util::Serving::start(&["--input", &server.url(), "--list-size", "3"]);
    let (status, _) = stream_info(&streamer);
    assert_eq!(status, 503, "the camera's GOP takes 4 s to measure");
    let mut info = serde_json::Value::Null;
    assert!(
        wait_for(Duration::from_secs(30), || {
            let (status, json) = stream_info(&streamer);
            info = json;
            status == 200
        }),
        "/stream answers once the camera plays"
    );
    assert_eq!(info["frame_rate"], serde_json::json!({"num": 25, "den": 1}));
    assert_eq!(info["fps"], 25.0);
    assert_eq!(info["target_duration"], 4);

    // The first segment (one 4 s GOP) is listed once the second GOP's IDR arrives.
    let mut playlist = String::new();
    assert!(
        wait_for(Duration::from_secs(20), || {
            let (status, cc, body) = streamer.get_header("/video/chessboard.m3u8", "cache-control");
            let body = String::from_utf8(body).unwrap();
            if status == 200 && body.contains("#EXTINF") {
                assert_eq!(cc.as_deref(), Some("public, max-age=2"), "half of TD 4");
                playlist = body;
                true
            } else {
                false
            }
        }),
        "a segment within 20 s"
    );
    assert!(playlist.contains("#EXT-X-TARGETDURATION:4\n"), "{playlist}");
    let uri = playlist
        .lines()
        .find(|l| l.ends_with(".ts"))
        .unwrap()
        .to_owned();
    let (status, expires, _) = streamer.get_header(&format!("/video/{uri}"), "expires");
    let (_, modified, _) = streamer.get_header(&format!("/video/{uri}"), "last-modified");
    assert_eq!(status, 200);
    let life = http_date_secs(&expires.unwrap()) - http_date_secs(&modified.unwrap());
    assert!(
        (28..=29).contains(&life),
        "{uri} expires {life} s after its publication, not 7 x 4 s"
    );
    let (_, cc, _) = streamer.get_header(&format!("/video/{uri}"), "cache-control");
    let cc = cc.unwrap();
    let age: i64 = cc
        .split(',')
        .find_map(|d| d.trim().strip_prefix("max-age="))
        .unwrap()
        .parse()
        .unwrap();
    // The classic playlist is first served once its window (--list-size 3) is full (R52):
    // segment 0 is then two GOPs (8 s) old.
    assert!((16..=28).contains(&age), "{uri}: {cc}");

    // The camera comes back at 15 fps (a 4 s GOP still).
    drop(server);
    std::thread::sleep(Duration::from_millis(500));
    let _server = start_server(&["--port", &port, "--fps", "15", "--key-int", "60"]);
    assert!(
        wait_for(Duration::from_secs(30), || {
            let (_, json) = stream_info(&streamer);
            info = json;
            info["fps"] == 15.0
        }),
        "/stream gives the new rate after the reconnection: {info}"
    );
    assert_eq!(info["frame_rate"], serde_json::json!({"num": 15, "den": 1}));
    assert_eq!(
        info["target_duration"], 4,
        "TARGETDURATION never changes (R14)"
    );
}

/// Passthrough of a camera whose RTP clock runs 0.25 % fast against its wall clock (its RTCP
/// sender reports tell the real time), for 30 s: each segment's EXT-X-PROGRAM-DATE-TIME is held
/// against the wall-clock instant the camera made the segment's first frame (printed by the
/// server at capture, so delivery jitter does not count). Following RTP steps alone, PDT runs
/// 5 ms ahead every 2 s segment (about 70 ms by the end); following the sender reports, from
/// the first report on (segment 2 at the latest) it drifts less than 1.5 ms a segment and
/// stays within 30 ms. PDTs go forward by exactly each EXTINF, with no discontinuity, and PTS
/// steps stay within 10 ticks of a frame.
#[test]
fn passthrough_program_date_time_follows_the_sender_reports() {
    if !gstreamer_available() {
        return;
    }
    let server = start_server(&["--clock-rate", "1.0025", "--print-keyframes"]);
    let dir = tempfile::tempdir().unwrap();
    let url = server.url();
    let cfg = util::config(dir.path(), &["--frames", "900", "--input", &url]);
    let last: Arc<Mutex<String>> = Arc::default();
    let record = last.clone();
    util::run_observed(&cfg, Arc::new(Shared::default()), move |text| {
        *record.lock().unwrap() = text.to_owned()
    })
    .unwrap_or_else(|e| panic!("camera stream failed: {e}"));
    let playlist = last.lock().unwrap().clone();
    let listed = listed_segments(&playlist);
    assert!(!playlist.contains("#EXT-X-DISCONTINUITY"), "{playlist}");
    assert_eq!(listed.len(), 15, "{playlist}");
    for w in listed.windows(2) {
        assert!(
            (w[1].1 - (w[0].1 + w[0].2)).abs() <= 1,
            "{}: PDT {} is not the previous PDT + EXTINF",
            w[1].0,
            w[1].1
        );
    }
    // Frame n of the camera (n a multiple of 60: its IDRs) was made at captured[n / 60].
    let captured: Vec<i64> = server
        .lines
        .try_iter()
        .filter_map(|l| {
            let mut it = l.strip_prefix("FRAME ")?.split(' ');
            let n: u64 = it.next()?.parse().ok()?;
            let ms: i64 = it.next()?.parse().ok()?;
            (n % 60 == 0).then_some(ms)
        })
        .collect();
    // The stream's first IDR is the source's first frame, or a later IDR of it: the one that
    // gives the first segment the smallest error.
    let skip = (0..captured.len().saturating_sub(listed.len()))
        .min_by_key(|&j| (listed[0].1 - captured[j]).abs())
        .expect("the server printed its keyframes");
    let errors: Vec<i64> = listed
        .iter()
        .zip(&captured[skip..])
        .map(|((_, pdt, _), made)| pdt - made)
        .collect();
    assert_eq!(errors.len(), listed.len());
    eprintln!("PDT minus capture, ms, per 2 s segment: {errors:?}");
    // From segment 2 on (after the camera's first report): the least-squares slope of the error, per segment, and its
    // spread. The error's level is the camera's own (GStreamer's reports date a frame about
    // 80 ms after its capture: its pipeline's latency); what must not grow is the error.
    let settled = &errors[2..];
    let n = settled.len() as f64;
    let mean_k = (n - 1.0) / 2.0;
    let mean_e = settled.iter().sum::<i64>() as f64 / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (k, e) in settled.iter().enumerate() {
        sxy += (k as f64 - mean_k) * (*e as f64 - mean_e);
        sxx += (k as f64 - mean_k).powi(2);
    }
    let slope = sxy / sxx;
    let spread = settled.iter().max().unwrap() - settled.iter().min().unwrap();
    eprintln!(
        "settled: drift {slope:.2} ms per segment ({:.1} ms over {} s), spread {spread} ms, \
         level {mean_e:.0} ms",
        slope * (n - 1.0),
        2.0 * (n - 1.0)
    );
    assert!(
        slope.abs() < 1.5 && spread <= 30 && mean_e.abs() < 200.0,
        "PDT against the camera's capture instants drifts {slope:.2} ms per 2 s segment \
         (spread {spread} ms, level {mean_e:.0} ms): {errors:?}"
    );
    let (_, segs) = read_segments(dir.path());
    check_timing(&segs);
    decode_all(&segs, 320, 240);
}
