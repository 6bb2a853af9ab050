//! Markers from outside and across restarts: the log is read back (API, playlist), the stream
//! clock, the timecodes and the ids go on, a torn or corrupt log loses nothing else, `--fresh`
//! starts over; the binary with `--marker-token` and `--no-builtin-markers`, and its logs never
//! show the token.

use std::io::{BufRead, BufReader};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hls::state::Shared;

use crate::util::{self, http};

const ARGS: [&str; 10] = [
    "--size",
    "64x64",
    "--hls-time",
    "1",
    "--list-size",
    "20",
    "--event-mean",
    "1",
    "--event-duration",
    "0.3",
];

fn run_in(dir: &std::path::Path, extra: &[&str]) -> Arc<Shared> {
    let mut a: Vec<&str> = ARGS.to_vec();
    a.extend_from_slice(extra);
    let cfg = util::config(dir, &a);
    let shared = Arc::new(Shared::default());
    util::pipeline(&cfg, shared.clone(), Arc::new(AtomicBool::new(false)))
        .unwrap_or_else(|e| panic!("pipeline: {e}"));
    shared
}

fn date_range_ids(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("chessboard.m3u8"))
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-DATERANGE:ID=\""))
        .map(|l| l.split('"').next().unwrap().to_owned())
        .collect()
}

#[test]
fn a_restart_keeps_every_marker_and_the_clock_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let first = run_in(dir.path(), &["--frames", "240", "--seed", "3"]);
    let m1 = first.markers.since(None);
    assert!(m1.len() >= 3, "8 s at a 1 s mean: {}", m1.len());
    let log = dir.path().join("chessboard.markers.jsonl");
    assert_eq!(
        std::fs::read_to_string(&log).unwrap().lines().count(),
        m1.len()
    );
    let ids1 = date_range_ids(dir.path());
    assert_eq!(ids1.len(), m1.len(), "every marker in the playlist");

    // A crash in the middle of a write, and a line damaged by hand.
    let mut text = std::fs::read_to_string(&log).unwrap();
    let first_newline = text.find('\n').unwrap() + 1;
    text.insert_str(first_newline, "{\"id\": 99, garbage\n");
    text.push_str("{\"id\":1000,\"at_90k\":12");
    std::fs::write(&log, text).unwrap();

    let second = run_in(dir.path(), &["--frames", "240", "--seed", "4"]);
    let all = second.markers.since(None);
    let (old, new): (Vec<_>, Vec<_>) = all.iter().partition(|m| m.id <= m1.last().unwrap().id);
    assert_eq!(old.len(), m1.len(), "every earlier marker is back");
    for (a, b) in old.iter().zip(&m1) {
        assert_eq!(
            (a.id, a.time, &a.timecode, &a.program_date_time),
            (b.id, b.time, &b.timecode, &b.program_date_time)
        );
    }
    assert!(!new.is_empty(), "the second run makes markers too");
    let end1 = m1.iter().map(|m| m.time).fold(0.0, f64::max);
    for m in &new {
        assert!(m.id > m1.last().unwrap().id, "ids are never reused");
        assert!(
            m.time > end1,
            "stream time goes on: {} after {end1}",
            m.time
        );
        // The timecode is the stream clock's: seconds since the stream's first frame ever.
        let secs = m.time as u64;
        let tc = format!("{:02}:{:02}:{:02}:", secs / 3600, secs / 60 % 60, secs % 60);
        assert!(m.timecode.starts_with(&tc), "{} vs {tc}", m.timecode);
    }
    // DATERANGE IDs stay unique, and the old ones are still listed (their window is 20 s).
    let ids2 = date_range_ids(dir.path());
    let mut unique = ids2.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids2.len(), "{ids2:?}");
    for id in &ids1 {
        assert!(ids2.contains(id), "{id} still in the playlist");
    }
    assert_eq!(ids2.len(), all.len());
    // The log was repaired: the torn tail cut off, the corrupt line left where it was.
    let back = std::fs::read_to_string(&log).unwrap();
    assert!(back.ends_with('\n'));
    assert_eq!(back.lines().count(), all.len() + 1);

    // --fresh: a new clock and no markers.
    let third = run_in(dir.path(), &["--frames", "60", "--seed", "3", "--fresh"]);
    let m3 = third.markers.since(None);
    assert!(m3.iter().all(|m| m.time < 2.1), "{m3:?}");
    assert!(m3.first().is_none_or(|m| m.id == 1));
}

/// The binary: generator markers off, posting with the token, and the token never in the logs
/// (at debug level, wrong tokens tried too).
#[test]
fn the_binary_takes_markers_from_outside_only_and_never_logs_the_token() {
    const TOKEN: &str = "tok-7f3a9c1e5b2d4f60";
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hls-streamer"))
        .args(ARGS)
        .args(["--no-builtin-markers", "--bind", "127.0.0.1:0", "--out-dir"])
        .arg(dir.path())
        .env("HLS_MARKER_TOKEN", TOKEN)
        .env("RUST_LOG", "debug")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = crate::util::listen_address(&rx, Duration::from_secs(30));
    // Wait for the first segment: then the stream clock is set.
    while http(addr, "GET", "/healthz", "", "").0 != 200 {
        assert!(Instant::now() < deadline, "no segment within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    let json = "Content-Type: application/json\r\n";
    let body = r#"{"text":"person at the door","time":0.5,"source":"test-detector","key":"k1"}"#;
    let (s, _) = http(addr, "POST", "/markers", json, body);
    assert_eq!(s, 401, "no token");
    let wrong = format!(
        "{json}Authorization: Bearer {}x\r\n",
        &TOKEN[..TOKEN.len() - 1]
    );
    assert_eq!(http(addr, "POST", "/markers", &wrong, body).0, 401);
    let right = format!("{json}Authorization: Bearer {TOKEN}\r\n");
    let (s, created) = http(addr, "POST", "/markers", &right, body);
    assert_eq!(s, 201, "{created}");
    assert_eq!(
        http(addr, "POST", "/markers", &right, body).0,
        200,
        "same key"
    );
    // Events keep happening (mean 1 s), but without built-in markers only ours is listed.
    std::thread::sleep(Duration::from_secs(3));
    let (s, list) = http(addr, "GET", "/markers", "", "");
    assert_eq!(s, 200);
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    let markers = list["markers"].as_array().unwrap();
    assert_eq!(markers.len(), 1, "{list}");
    assert_eq!(markers[0]["source"], "test-detector");
    assert_eq!(markers[0]["time"].as_f64(), Some(0.5));
    assert_eq!(markers[0]["timecode"], "00:00:00:15");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
    let logs = reader.join().unwrap();
    assert!(logs.contains("marker"), "the marker was logged");
    assert!(
        !logs.contains(TOKEN),
        "the token leaked into the logs:\n{logs}"
    );
    assert!(!logs.contains(&TOKEN[..12]), "part of the token leaked");
    let text = std::fs::read_to_string(dir.path().join("chessboard.m3u8")).unwrap();
    assert_eq!(text.matches("#EXT-X-DATERANGE:").count(), 1, "{text}");
    assert!(text.contains("person at the door"), "{text}");
}

/// The binary on a stream directory whose clock does not fit: exit 2, a message naming the
/// files and the way out, and nothing touched.
fn refused(dir: &std::path::Path, extra: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hls-streamer"))
        .args(["--out-dir", dir.to_str().unwrap(), "--no-server"])
        .args(ARGS)
        .args(["--frames", "30", "--no-pacing"])
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    stderr
}

/// The clock file keeps the frame rate; a restart at another rate is refused, and so is a
/// restart whose clock file is gone while its markers are still there (they would silently
/// move to another instant). `--fresh` starts over in both cases.
#[test]
fn a_restart_without_its_clock_or_at_another_rate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    run_in(dir.path(), &["--frames", "60", "--seed", "3"]);
    let clock_path = dir.path().join("chessboard.clock.json");
    let log_path = dir.path().join("chessboard.markers.jsonl");
    let clock: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&clock_path).unwrap()).unwrap();
    assert_eq!(
        clock["frame_rate"],
        serde_json::json!({"num": 30, "den": 1}),
        "{clock}"
    );
    // The stream's files (the output directory's recording index, `hls.db*`, is opened by
    // the binary for every stream of the directory before a stream's clock is read).
    let stream_files = |d: &std::path::Path| {
        std::fs::read_dir(d)
            .unwrap()
            .filter(|e| {
                !e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("hls.db")
            })
            .count()
    };
    let before = stream_files(dir.path());

    let e = refused(dir.path(), &["--fps", "25"]);
    assert!(e.contains("chessboard.clock.json"), "{e}");
    assert!(e.contains("30/1") && e.contains("25/1"), "{e}");
    assert!(e.contains("--fresh") && e.contains("--fps"), "{e}");

    let clock_text = std::fs::read(&clock_path).unwrap();
    std::fs::remove_file(&clock_path).unwrap();
    let log_before = std::fs::read(&log_path).unwrap();
    let e = refused(dir.path(), &[]);
    assert!(
        e.contains("chessboard.clock.json is missing")
            && e.contains("chessboard.markers.jsonl")
            && e.contains("--fresh"),
        "{e}"
    );
    assert!(!clock_path.exists(), "no new clock was made");
    assert_eq!(
        std::fs::read(&log_path).unwrap(),
        log_before,
        "markers untouched"
    );
    assert_eq!(stream_files(dir.path()), before - 1);

    // The file restored, the stream goes on; --fresh at another rate starts a new one.
    std::fs::write(&clock_path, &clock_text).unwrap();
    run_in(dir.path(), &["--frames", "30", "--seed", "3"]);
    let fresh = run_in(dir.path(), &["--frames", "30", "--fps", "25", "--fresh"]);
    assert!(fresh.markers.since(None).iter().all(|m| m.id < 10));
}
