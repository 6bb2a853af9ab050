//! Markers on a camera stream, through the binary's HTTP API: a detector posts the
//! `program_date_time` of what it saw (a segment's `EXT-X-PROGRAM-DATE-TIME` plus an offset into
//! it, as `hls-detect` does), and the marker must land on the frame at that offset into that
//! segment, early in the stream and late in it, and be listed with that date, so that the page
//! (which places a marker by its date against the segments' dates) seeks to that frame. This
//! holds only if the API's date-to-stream-time mapping and the playlist's dates are one mapping.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hls::clock::WallClock;

use super::{gstreamer_available, listed_segments, playlist_text, read_segments, start_server};
use crate::util::http;

/// 33-bit PTS difference `b - a`.
fn pts_diff(a: u64, b: u64) -> u64 {
    b.wrapping_sub(a) & ((1 << 33) - 1)
}

const TOKEN: &str = "camera-test-token-5d1e";

/// The streamer, killed if the test fails before it is stopped.
struct Streamer(std::process::Child);

impl Drop for Streamer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Posts a marker at `date` (Unix ms); returns its JSON.
fn post_at(addr: SocketAddr, date_ms: i64, text: &str) -> serde_json::Value {
    let body = format!(
        r#"{{"text":"{text}","program_date_time":"{}","source":"camera-test"}}"#,
        WallClock::from_unix_millis(date_ms).to_rfc3339()
    );
    let (status, answer) = http(
        addr,
        "POST",
        "/markers",
        &format!("Content-Type: application/json\r\nAuthorization: Bearer {TOKEN}\r\n"),
        &body,
    );
    assert_eq!(status, 201, "{answer}");
    serde_json::from_str(&answer).unwrap()
}

#[test]
fn a_marker_posted_by_date_lands_on_the_cameras_frame_at_that_date() {
    if !gstreamer_available() {
        return;
    }
    // 320x240 at 30 fps, an IDR every 2 s.
    let server = start_server(&[]);
    let dir = tempfile::tempdir().unwrap();
    let mut child = Streamer(
        std::process::Command::new(env!("CARGO_BIN_EXE_hls-streamer"))
            .args([
                "--input",
                &server.url(),
                "--bind",
                "127.0.0.1:0",
                "--out-dir",
            ])
            .arg(dir.path())
            .env("HLS_MARKER_TOKEN", TOKEN)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let addr = crate::util::listen_address(&rx, Duration::from_secs(30));
    // Ten segments (20 s): late enough for a drift between the camera's clock and the wall
    // clock to show.
    let deadline = Instant::now() + Duration::from_secs(60);
    while listed_segments(&playlist_text(dir.path())).len() < 10 {
        assert!(Instant::now() < deadline, "ten segments within 60 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    let listed = listed_segments(&playlist_text(dir.path()));
    let (_, segs) = read_segments(dir.path());
    let first_pts = |uri: &str| {
        segs.iter()
            .find(|s| s.uri == uri)
            .map(|s| s.aus[0].0)
            .unwrap_or_else(|| panic!("{uri} was read"))
    };
    // Half a frame past the 15th frame (0.5 s): a consistent mapping lands on frame 16
    // (0.5333 s), whatever the date's millisecond rounding.
    const OFFSET_MS: i64 = 517;
    const FRAME_16: f64 = 16.0 / 30.0;
    let (early, late) = (&listed[1], &listed[listed.len() - 1]);
    let a = post_at(addr, early.1 + OFFSET_MS, "early");
    let b = post_at(addr, late.1 + OFFSET_MS, "late");

    // Listed with the date of that frame: its segment's date plus 0.5333 s.
    for (m, seg) in [(&a, early), (&b, late)] {
        let date = WallClock::parse_rfc3339(m["program_date_time"].as_str().unwrap())
            .unwrap()
            .unix_millis();
        let into = (date - seg.1) as f64 / 1000.0;
        assert!(
            (into - FRAME_16).abs() <= 0.0015,
            "marker {m} is {into:.4} s into {} (date {}), not on its 16th frame ({FRAME_16:.4} s)",
            seg.0,
            seg.1
        );
    }
    // And at the stream times of those frames: the stream time between the two markers is the
    // PTS between the two segments' first frames, to the tick (times are printed to the µs).
    let between_pts = pts_diff(first_pts(&early.0), first_pts(&late.0)) as f64 / 90_000.0;
    let between_markers = b["time"].as_f64().unwrap() - a["time"].as_f64().unwrap();
    assert!(
        (between_markers - between_pts).abs() < 0.0005,
        "markers {between_markers:.6} s apart, the frames they were posted for {between_pts:.6} \
         s apart: the API maps dates to stream time differently from the playlist\n{a}\n{b}"
    );

    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status();
    assert!(child.0.wait().unwrap().success());
    let text = playlist_text(dir.path());
    assert_eq!(text.matches("#EXT-X-DATERANGE:").count(), 2, "{text}");
    drop(server);
}
