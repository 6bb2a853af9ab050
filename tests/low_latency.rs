//! Low-latency HLS from the real binary over HTTP on 127.0.0.1: the parts a client fetches make
//! up the segments byte for byte and each demultiplexes alone, `INDEPENDENT=YES` is exactly on
//! the parts that open with an IDR, a blocking reload and the hinted part are answered once
//! they exist, and two independent parsers (the test kit's strict reader and Python's `m3u8`)
//! read every form of the playlist.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hls_testkit::check::read_segment;
use hls_testkit::{check_low_latency_text, LowLatencyRead};

use crate::util::Serving;

/// The live playlist with `query`, read by the test kit's strict reader.
fn playlist(s: &Serving, query: &str) -> (String, LowLatencyRead) {
    let (status, body) = s.get(&format!("/video/chessboard.m3u8{query}"));
    assert_eq!(status, 200, "{query}");
    let text = String::from_utf8(body).unwrap();
    let read = check_low_latency_text(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    (text, read)
}

/// Python's `m3u8` (Debian's python3-m3u8, for /usr/bin/python3) reads `text`: segment URIs, and
/// for each segment its part URIs and independence, the open segment's parts, the hint, the skip.
fn python_m3u8(text: &str) -> Option<serde_json::Value> {
    const SCRIPT: &str = r#"
import json, sys, m3u8
p = m3u8.loads(sys.stdin.read())
out = {
  "segments": [s.uri for s in p.segments if s.uri],
  "parts": [[(q.uri, bool(q.independent)) for q in s.parts] for s in p.segments],
  "hint": p.preload_hint.uri if p.preload_hint else None,
  "part_target": p.part_inf.part_target if p.part_inf else None,
  "can_block_reload": (p.server_control.can_block_reload == "YES") if p.server_control else None,
  "part_hold_back": p.server_control.part_hold_back if p.server_control else None,
  "can_skip_until": p.server_control.can_skip_until if p.server_control else None,
  "skipped": p.skip.skipped_segments if p.skip else None,
}
print(json.dumps(out))
"#;
    let probe = Command::new("/usr/bin/python3")
        .args(["-c", "import m3u8"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs python3-m3u8 (apt-get install python3-m3u8)"
        );
        eprintln!("skipping the Python m3u8 check: apt-get install python3-m3u8");
        return None;
    }
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python m3u8 failed on\n{text}");
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

/// Holds Python's reading against the test kit's.
fn agree_with_python(text: &str, r: &LowLatencyRead) {
    let Some(py) = python_m3u8(text) else { return };
    let ours: Vec<&str> = r.classic.segments.iter().map(|s| s.uri.as_str()).collect();
    let theirs: Vec<&str> = py["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(theirs, ours, "segments\n{text}");
    let parts = py["parts"].as_array().unwrap();
    for (i, listed) in &r.segment_parts {
        let theirs: Vec<(String, bool)> = parts[*i]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_str().unwrap().to_owned(), p[1].as_bool().unwrap()))
            .collect();
        let ours: Vec<(String, bool)> = listed
            .iter()
            .map(|p| (p.uri.clone(), p.independent))
            .collect();
        assert_eq!(theirs, ours, "parts of segment {i}");
    }
    assert_eq!(py["hint"].as_str(), r.preload_hint.as_deref());
    assert_eq!(py["skipped"].as_u64(), r.skipped);
    assert_eq!(py["can_block_reload"].as_bool(), Some(r.can_block_reload));
    let ms = |k: &str| py[k].as_f64().map(|v| (v * 1000.0).round() as u64);
    assert_eq!(ms("part_target"), Some(r.part_target_ms));
    assert_eq!(ms("part_hold_back"), Some(r.part_hold_back_ms));
    assert_eq!(ms("can_skip_until"), r.can_skip_until_ms);
}

#[test]
fn ll_parts_make_up_the_segments_and_decode_alone() {
    let s = Serving::start(&[
        "--size",
        "320x180",
        "--hls-time",
        "1",
        "--duration",
        "10",
        "--linger",
        "30",
    ]);
    let deadline = Instant::now() + Duration::from_secs(30);
    // Live: a blocking request for the hinted part, then the part itself, both held until out.
    let (text, r) = loop {
        let (status, _) = s.get("/healthz");
        if status == 200 {
            break playlist(&s, "");
        }
        assert!(Instant::now() < deadline, "no segment within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    };
    agree_with_python(&text, &r);
    let hint = r
        .preload_hint
        .clone()
        .expect("a live LL playlist hints the next part");
    let (seq, index) = parse_part(&hint);
    let (_, held) = playlist(&s, &format!("?_HLS_msn={seq}&_HLS_part={index}"));
    let listed = held
        .segment_parts
        .iter()
        .flat_map(|(_, p)| p)
        .chain(&held.open_parts)
        .any(|p| p.uri == hint);
    assert!(
        listed,
        "the answer lists the part it was asked for ({hint})"
    );
    let (status, part) = s.get(&format!("/video/{hint}"));
    assert_eq!(status, 200);
    assert_eq!(
        read_segment(&part, None).unwrap().first_pids[..2],
        [0, 0x1000]
    );
    // A bad directive is a 400.
    let (status, _) = s.get(&format!("/video/chessboard.m3u8?_HLS_msn={}", seq + 5));
    assert_eq!(status, 400);

    // Wait for the window to pass six target durations: the delta update skips.
    let (text, delta) = loop {
        let (text, r) = playlist(&s, "?_HLS_skip=YES");
        if r.skipped.is_some() {
            break (text, r);
        }
        assert!(Instant::now() < deadline, "no delta update within 30 s");
        std::thread::sleep(Duration::from_millis(200));
    };
    agree_with_python(&text, &delta);

    // At the end: every segment that lists parts is its parts end to end.
    let (text, r) = loop {
        let (text, r) = playlist(&s, "");
        if r.classic.endlist {
            break (text, r);
        }
        assert!(Instant::now() < deadline, "the stream did not end");
        std::thread::sleep(Duration::from_millis(200));
    };
    agree_with_python(&text, &r);
    assert!(r.preload_hint.is_none() && r.open_parts.is_empty());
    assert!(r.segment_parts.len() >= 2, "{text}");
    for (i, parts) in &r.segment_parts {
        let uri = &r.classic.segments[*i].uri;
        let (status, segment) = s.get(&format!("/video/{uri}"));
        assert_eq!(status, 200);
        let mut joined = Vec::new();
        for (k, p) in parts.iter().enumerate() {
            let (status, bytes) = s.get(&format!("/video/{}", p.uri));
            assert_eq!(status, 200, "{}", p.uri);
            // R45: alone, a part demultiplexes from its own PAT and PMT ...
            let report = read_segment(&bytes, None).unwrap_or_else(|e| panic!("{}: {e}", p.uri));
            assert_eq!(report.first_pids[..2], [0, 0x1000], "{}", p.uri);
            assert!(!report.aus.is_empty());
            // ... and is flagged independent exactly when it opens with an IDR.
            assert_eq!(p.independent, report.aus[0].keyframe, "{}", p.uri);
            assert_eq!(
                p.independent,
                k == 0,
                "{}: only the first part has the IDR",
                p.uri
            );
            // P7: every part opens with the parameter sets (a player can transmux it alone):
            // AUD, SPS, PPS, then the IDR or the P-frame's slice; its other AUs have none.
            let nals = crate::util::nal_types(&report.aus[0].payload);
            assert_eq!(
                nals[..4],
                [9, 7, 8, if p.independent { 5 } else { 1 }],
                "{}",
                p.uri
            );
            for au in &report.aus[1..] {
                let nals = crate::util::nal_types(&au.payload);
                assert!(!nals.contains(&7) && !nals.contains(&8), "{}", p.uri);
            }
            joined.extend_from_slice(&bytes);
        }
        assert_eq!(joined, segment, "{uri} is its parts end to end");
    }
}

fn parse_part(uri: &str) -> (u64, u32) {
    let rest = uri
        .strip_prefix("chessboard")
        .and_then(|r| r.strip_suffix(".ts"))
        .unwrap();
    let (seq, index) = rest.split_once('.').unwrap();
    (seq.parse().unwrap(), index.parse().unwrap())
}

#[test]
fn no_low_latency_is_a_classic_stream() {
    let s = Serving::start(&[
        "--size",
        "320x180",
        "--no-low-latency",
        "--duration",
        "3",
        "--linger",
        "20",
    ]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.get("/healthz").0 != 200 {
        assert!(Instant::now() < deadline, "no segment within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, body) = s.get("/video/chessboard.m3u8?_HLS_msn=99&_HLS_part=x");
    assert_eq!(status, 200, "the directives are ignored");
    let text = String::from_utf8(body).unwrap();
    for tag in ["PART", "SERVER-CONTROL", "PRELOAD-HINT", "SKIP"] {
        assert!(!text.contains(tag), "{tag} in\n{text}");
    }
    hls_testkit::check_playlist_text(&text).unwrap();
    assert_eq!(s.get("/video/chessboard0.0.ts").0, 404);
}
