//! Recording (issue 21): segments that outlive the live window under retention rules, the
//! index beside them, and the review routes over them.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use hls::recording::db::{Db, SegmentRow, DB_FILE};
use hls::recording::Recordings;

use crate::util;

/// Segment files of stream `chessboard` in `dir`, by sequence number.
fn segment_files(dir: &Path) -> BTreeSet<u64> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_prefix("chessboard")?
                .strip_suffix(".ts")?
                .parse()
                .ok()
        })
        .collect()
}

/// The index's rows of `chessboard`, read after the run (its database thread has stopped).
fn rows(dir: &Path) -> Vec<SegmentRow> {
    Db::open(&dir.join(DB_FILE))
        .unwrap()
        .segments_of("chessboard")
        .unwrap()
}

/// Runs the pipeline in-process with recording on (the output directory's index opened once,
/// as the binary does), until its frame limit; waits until the index has done every call.
fn record(dir: &Path, args: &[&str]) -> hls::pipeline::Summary {
    let cfg = util::config(dir, args);
    let (recordings, db_thread) =
        hls::pipeline::spawn_store(&cfg.server.out_dir, cfg.server.storage_max).unwrap();
    let summary = hls::pipeline::prepare(&cfg)
        .unwrap()
        .with_recording(recordings.clone())
        .start(Arc::default(), Arc::default(), || {})
        .unwrap()
        .join()
        .unwrap();
    settle(recordings);
    db_thread.join().unwrap();
    summary
}

/// Waits for the database thread to finish what is queued, then lets it end.
fn settle(r: Recordings) {
    r.db().call_blocking(|_| Ok(())).unwrap();
}

const SMALL: [&str; 6] = ["--size", "64x64", "--hls-time", "1", "--list-size", "3"];

/// Segments leave the live playlist but stay on disk under the default retention (1 h), one
/// row each; the playlist never lists them again; a restart keeps them (they are not the
/// previous run's leftovers to delete) and its playlist does not list them either.
#[test]
fn segments_outlive_the_window_and_a_restart_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<&str> = SMALL.iter().copied().chain(["--frames", "600"]).collect();
    let s = record(dir.path(), &args);
    assert_eq!(s.segments, 20);
    assert_eq!(segment_files(dir.path()), (0..20).collect());
    let pl = util::read_playlist(dir.path(), "chessboard");
    assert_eq!(pl.media_sequence, 17);
    assert_eq!(pl.segments.len(), 3);
    let r = rows(dir.path());
    assert_eq!(
        r.iter().map(|r| r.sequence).collect::<Vec<_>>(),
        (0..20).collect::<Vec<_>>()
    );
    for w in r.windows(2) {
        assert_eq!(
            w[1].start.unix_millis() - w[0].start.unix_millis(),
            1000,
            "one-second segments back to back: {w:?}"
        );
        assert_eq!(
            w[0].bytes,
            std::fs::metadata(dir.path().join(&w[0].file))
                .unwrap()
                .len()
        );
    }

    // The restart: 20 more segments. Nothing of the first run is deleted, and the new
    // playlist lists its own window only.
    let s = record(dir.path(), &args);
    assert_eq!(s.segments, 20);
    assert_eq!(segment_files(dir.path()), (0..40).collect());
    let pl = util::read_playlist(dir.path(), "chessboard");
    let listed: Vec<&str> = pl.segments.iter().map(|s| s.uri.as_str()).collect();
    assert_eq!(
        listed,
        ["chessboard37.ts", "chessboard38.ts", "chessboard39.ts"]
    );
    let r = rows(dir.path());
    assert_eq!(r.len(), 40);
    assert!(
        r[20].discontinuity,
        "the restart's first segment follows a gap"
    );
}

/// Expiry by bytes (`--storage-max` far below one segment): once a segment's R25 grace ends
/// it goes at once; what is left is exactly what the live path alone keeps (the window and
/// the grace), and each file left has its row. A restart with room again keeps what is left.
#[test]
fn a_tiny_storage_budget_keeps_exactly_the_live_window_and_its_grace() {
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<&str> = SMALL
        .iter()
        .copied()
        .chain(["--frames", "600", "--storage-max", "1"])
        .collect();
    record(dir.path(), &args);
    // As `lifecycle::r25_expiry_keeps_exactly_the_grace_window`: 13..=16 in their grace,
    // 17..=19 listed.
    assert_eq!(segment_files(dir.path()), (13..20).collect());
    let seqs: BTreeSet<u64> = rows(dir.path()).iter().map(|r| r.sequence).collect();
    assert_eq!(seqs, (13..20).collect());

    let args: Vec<&str> = SMALL.iter().copied().chain(["--frames", "60"]).collect();
    record(dir.path(), &args);
    assert_eq!(segment_files(dir.path()), (13..22).collect());
}

/// Expiry by time on the wall clock (a paced run): with `--record-retention 0` and no
/// markers, a segment goes when its R25 grace ends, as without recording.
#[test]
fn record_retention_zero_deletes_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let cfg = hls::config::Config::from_args([
        "hls-streamer",
        "--no-server",
        "--out-dir",
        out,
        "--size",
        "64x64",
        "--hls-time",
        "0.5",
        "--list-size",
        "3",
        "--frames",
        "240",
        "--record-retention",
        "0",
        "--no-builtin-markers",
    ])
    .unwrap();
    let (recordings, db_thread) =
        hls::pipeline::spawn_store(&cfg.server.out_dir, cfg.server.storage_max).unwrap();
    hls::pipeline::prepare(&cfg)
        .unwrap()
        .with_recording(recordings.clone())
        .start(Arc::default(), Arc::default(), || {})
        .unwrap()
        .join()
        .unwrap();
    settle(recordings);
    db_thread.join().unwrap();
    // Sixteen half-second segments: the first few passed their grace (their own duration
    // plus the longest playlist, at least 3 target durations of 1 s) by the end, 8 s; where
    // exactly depends on the paced run's segment lengths (the budget test above pins it).
    let files = segment_files(dir.path());
    let first = *files.first().unwrap();
    assert!((2..=4).contains(&first), "{files:?}");
    assert_eq!(files, (first..16).collect(), "a contiguous tail is left");
    let seqs: BTreeSet<u64> = rows(dir.path()).iter().map(|r| r.sequence).collect();
    assert_eq!(seqs, files, "a row per file, none for the deleted ones");
}

/// The binary refuses a bad retention flag before touching anything (exit 2), and a
/// database it cannot use at start (exit 1, naming the file), never starting with an empty
/// index.
#[test]
fn bad_flags_and_bad_databases_are_errors_at_start() {
    let bin = env!("CARGO_BIN_EXE_hls-streamer");
    for bad in [
        ["--record-retention", "soon"],
        ["--clip-retention", "-1h"],
        ["--storage-max", "2 parsecs"],
        ["--thumbnail-width", "8"],
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(bin)
            .args(["--no-server", "--frames", "10", "--out-dir"])
            .arg(dir.path().join("out"))
            .args(bad)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(!dir.path().join("out").exists(), "{bad:?}: nothing created");
    }

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(DB_FILE), vec![0x5a; 4096]).unwrap();
    let out = std::process::Command::new(bin)
        .args([
            "--no-server",
            "--size",
            "64x64",
            "--frames",
            "10",
            "--out-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("hls.db") && stderr.contains("not a usable SQLite database"),
        "{stderr}"
    );
    assert!(segment_files(dir.path()).is_empty(), "no stream ran");

    // Read-only: the file write-protected (root ignores modes: then the check is moot).
    let dir = tempfile::tempdir().unwrap();
    Db::open(&dir.path().join(DB_FILE)).unwrap();
    let db = dir.path().join(DB_FILE);
    let mut perms = std::fs::metadata(&db).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o444);
    std::fs::set_permissions(&db, perms).unwrap();
    if std::fs::OpenOptions::new().write(true).open(&db).is_err() {
        let out = std::process::Command::new(bin)
            .args([
                "--no-server",
                "--size",
                "64x64",
                "--frames",
                "10",
                "--out-dir",
            ])
            .arg(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("cannot be written"), "{stderr}");
    }
}

// ---- review routes, through the binary ----

/// The binary serving on 127.0.0.1 from `dir` until killed (dropped).
struct Server {
    child: std::process::Child,
    addr: std::net::SocketAddr,
    agent: ureq::Agent,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Runs `args` into `dir` unpaced and serves on; returns once the stream has ended.
    fn run_to_end(dir: &Path, args: &[&str]) -> Server {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hls-streamer"))
            .args(["--bind", "127.0.0.1:0", "--no-pacing", "--linger", "120"])
            .arg("--out-dir")
            .arg(dir)
            .args(args)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        let addr = util::listen_address(&rx, std::time::Duration::from_secs(30));
        // The stream has ended once the server says it lingers.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
                .expect("the stream ends");
            if line.contains("stream ended; still serving") {
                break;
            }
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Server { child, addr, agent }
    }

    /// `GET path` with `headers`: status, response headers asked for, body.
    fn get(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        want: &[&str],
    ) -> (u16, Vec<Option<String>>, Vec<u8>) {
        let mut req = self.agent.get(&format!("http://{}{path}", self.addr));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut resp = req.call().unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let got = want
            .iter()
            .map(|h| {
                resp.headers()
                    .get(*h)
                    .map(|v| v.to_str().unwrap().to_owned())
            })
            .collect();
        let body = resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()
            .unwrap();
        (resp.status().as_u16(), got, body)
    }

    fn json(&self, path: &str) -> (u16, serde_json::Value) {
        let (s, _, b) = self.get(path, &[], &[]);
        (
            s,
            serde_json::from_slice(&b).unwrap_or(serde_json::Value::Null),
        )
    }
}

fn have(tool: &str) -> bool {
    let ok = std::process::Command::new(tool)
        .arg("-version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok || std::env::var_os("CI").is_none(), "CI needs {tool}");
    ok
}

fn ffmpeg_decodes(bytes: &[u8], ext: &str) -> bool {
    let f = tempfile::Builder::new().suffix(ext).tempfile().unwrap();
    std::fs::write(f.path(), bytes).unwrap();
    std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-xerror", "-i"])
        .arg(f.path())
        .args(["-f", "null", "-"])
        .output()
        .unwrap()
        .status
        .success()
}

/// Top-level MP4 box types in order.
fn top_boxes(mp4: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= mp4.len() {
        let len = u32::from_be_bytes(mp4[at..at + 4].try_into().unwrap()) as usize;
        out.push(String::from_utf8_lossy(&mp4[at + 4..at + 8]).into_owned());
        if len < 8 {
            break;
        }
        at += len;
    }
    out
}

const SERVED: [&str; 12] = [
    "--size",
    "128x72",
    "--hls-time",
    "1",
    "--list-size",
    "3",
    "--frames",
    "600",
    "--event-mean",
    "4",
    "--seed",
    "3",
];

/// Two runs into one directory (a gap between them), served: the spans, the VOD playlist of
/// a range (m3u8-rs, PDT on every segment, DISCONTINUITY at the gap, DATERANGEs, gzip, the
/// 24 h limit), retained segments from `/video/`, and a marker's clips (MP4 with its index
/// first and TS, decoded by ffmpeg without error, byte ranges, the file name) and thumbnail.
#[test]
fn review_routes_serve_what_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<&str> = SMALL
        .iter()
        .copied()
        .chain(["--frames", "30", "--no-builtin-markers"])
        .collect();
    record(dir.path(), &args);
    // A gap in the recording: one second recorded, the next run starts on its own start
    // time, two seconds later.
    std::thread::sleep(std::time::Duration::from_millis(2000));
    let s = Server::run_to_end(dir.path(), &SERVED);

    let (status, spans) = s.json("/recordings/chessboard");
    assert_eq!(status, 200);
    let spans = spans["spans"].as_array().unwrap().clone();
    assert_eq!(spans.len(), 2, "{spans:?}");
    assert_eq!(spans[0]["segments"], 1);
    assert_eq!(spans[1]["segments"], 20);
    let on_disk: u64 = (0..21)
        .map(|k| {
            std::fs::metadata(dir.path().join(format!("chessboard{k}.ts")))
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(
        spans
            .iter()
            .map(|s| s["bytes"].as_u64().unwrap())
            .sum::<u64>(),
        on_disk
    );
    assert_eq!(s.json("/recordings/other").0, 404);

    // Everything recorded, as one VOD playlist.
    let (start, end) = (
        spans[0]["start"].as_str().unwrap(),
        spans[1]["end"].as_str().unwrap(),
    );
    let path = format!("/recordings/chessboard.m3u8?start={start}&end={end}");
    let (status, got, body) = s.get(&path, &[], &["content-type"]);
    assert_eq!(status, 200);
    assert_eq!(got[0].as_deref(), Some("application/vnd.apple.mpegurl"));
    let text = String::from_utf8(body).unwrap();
    let pl = m3u8_rs::parse_media_playlist_res(text.as_bytes())
        .unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    assert_eq!(pl.playlist_type, Some(m3u8_rs::MediaPlaylistType::Vod));
    assert!(pl.end_list);
    assert_eq!(pl.segments.len(), 21);
    assert!(pl.segments.iter().all(|s| s.program_date_time.is_some()));
    let disc: Vec<usize> = (0..21).filter(|&i| pl.segments[i].discontinuity).collect();
    assert_eq!(disc, [1], "one DISCONTINUITY, at the gap");
    let markers = s.json("/markers").1["markers"].as_array().unwrap().len();
    assert!(markers >= 2, "the seed gives several markers");
    assert_eq!(text.matches("#EXT-X-DATERANGE:").count(), markers);
    // Retained segments (long out of the live window) are served from disk.
    for seg in [&pl.segments[0], &pl.segments[7]] {
        let uri = seg.uri.strip_prefix("../").unwrap();
        let (status, _, body) = s.get(&format!("/{uri}"), &[], &[]);
        assert_eq!(status, 200, "{uri}");
        assert_eq!(
            body,
            std::fs::read(dir.path().join(&uri["video/".len()..])).unwrap()
        );
    }
    // gzip when asked (read raw: the client would decode it silently).
    {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(s.addr).unwrap();
        write!(
            c,
            "GET {path} HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut raw = Vec::new();
        c.read_to_end(&mut raw).unwrap();
        let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
        assert!(head.contains("content-encoding: gzip"), "{head}");
        let mut text_back = String::new();
        flate2::read::GzDecoder::new(&raw[head_end + 4..])
            .read_to_string(&mut text_back)
            .unwrap();
        assert_eq!(text_back, text);
    }
    // Bad ranges.
    let t0 = "2026-01-01T00:00:00Z";
    for (q, want) in [
        (format!("start={t0}&end=2026-01-02T00:00:01Z"), 400),
        (format!("start={t0}"), 400),
        (format!("start=yesterday&end={t0}"), 400),
        (format!("start={t0}&end={t0}"), 400),
        (format!("start={t0}&end=2026-01-01T01:00:00Z"), 404),
    ] {
        let (status, body) = s.json(&format!("/recordings/chessboard.m3u8?{q}"));
        assert_eq!(status, want, "{q}: {body}");
        assert!(body["error"].is_string(), "{q}: {body}");
    }

    // A marker of the second run whose clip lies inside it: clip.m3u8, clip.mp4, clip.ts.
    let all = s.json("/markers").1["markers"].as_array().unwrap().clone();
    let ms = |v: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
            .unwrap()
            .timestamp_millis()
    };
    let (run_start, run_end) = (ms(&spans[1]["start"]), ms(&spans[1]["end"]));
    let inside = |m: &&serde_json::Value| {
        let at = ms(&m["program_date_time"]);
        at - 5000 >= run_start && at + 10_000 <= run_end
    };
    let m = all
        .iter()
        .find(inside)
        .expect("a marker with its whole clip in the run");
    let id = m["id"].as_u64().unwrap();
    let (status, _, body) = s.get(&format!("/markers/{id}/clip.m3u8"), &[], &[]);
    assert_eq!(status, 200);
    let clip = m3u8_rs::parse_media_playlist_res(&body).unwrap();
    assert!(
        clip.end_list && (15..=16).contains(&clip.segments.len()),
        "{}",
        clip.segments.len()
    );
    let (status, _, body) = s.get(
        &format!("/markers/{id}/clip.m3u8?before=1&after=1"),
        &[],
        &[],
    );
    assert_eq!(status, 200);
    assert!(
        m3u8_rs::parse_media_playlist_res(&body)
            .unwrap()
            .segments
            .len()
            <= 3
    );
    assert_eq!(
        s.get(&format!("/markers/{id}/clip.m3u8?after=301"), &[], &[])
            .0,
        400
    );

    let (status, got, mp4) = s.get(
        &format!("/markers/{id}/clip.mp4"),
        &[],
        &["content-type", "content-disposition"],
    );
    assert_eq!(status, 200);
    assert_eq!(got[0].as_deref(), Some("video/mp4"));
    let disposition = got[1].clone().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"chessboard-")
            && disposition.ends_with(&format!("-{id}.mp4\"")),
        "{disposition}"
    );
    assert_eq!(top_boxes(&mp4), ["ftyp", "moov", "mdat"], "the index first");
    let (status, got, part) = s.get(
        &format!("/markers/{id}/clip.mp4"),
        &[("range", "bytes=1000-4999")],
        &["content-range"],
    );
    assert_eq!(status, 206);
    assert_eq!(got[0], Some(format!("bytes 1000-4999/{}", mp4.len())));
    assert_eq!(part, &mp4[1000..5000]);
    let (status, _, ts) = s.get(&format!("/markers/{id}/clip.ts"), &[], &[]);
    assert_eq!(status, 200);
    assert_eq!(ts.len() % 188, 0);
    // The TS clip is the clip's segments end to end, byte for byte (no re-encoding).
    let joined: Vec<u8> = clip
        .segments
        .iter()
        .flat_map(|seg| {
            std::fs::read(dir.path().join(seg.uri.rsplit('/').next().unwrap())).unwrap()
        })
        .collect();
    assert!(ts == joined, "clip.ts is its segments' bytes");
    if have("ffmpeg") && have("ffprobe") {
        assert!(ffmpeg_decodes(&mp4, ".mp4"), "clip.mp4 decodes cleanly");
        assert!(ffmpeg_decodes(&ts, ".ts"), "clip.ts decodes cleanly");
        // The same access units: as many frames in the MP4 as in the segments.
        let count = |bytes: &[u8], ext: &str| {
            let f = tempfile::Builder::new().suffix(ext).tempfile().unwrap();
            std::fs::write(f.path(), bytes).unwrap();
            let out = std::process::Command::new("ffprobe")
                .args(["-v", "error", "-count_packets", "-select_streams", "v:0"])
                .args(["-show_entries", "stream=nb_read_packets", "-of", "csv=p=0"])
                .arg(f.path())
                .output()
                .unwrap();
            // A TS lists its program's stream too: the first figure is the stream's.
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.lines().next().unwrap_or("").trim().to_owned()
        };
        assert_eq!(count(&mp4, ".mp4"), count(&ts, ".ts"));
    }

    // The thumbnail: the marker's own frame, with the event's mint block top left.
    let (status, got, jpeg) = s.get(
        &format!("/markers/{id}/thumbnail.jpg"),
        &[],
        &["content-type"],
    );
    assert_eq!(status, 200);
    assert_eq!(got[0].as_deref(), Some("image/jpeg"));
    let mut d = jpeg_decoder::Decoder::new(&jpeg[..]);
    let px = d.decode().unwrap();
    let info = d.info().unwrap();
    assert_eq!((info.width, info.height), (320, 180));
    let (r, g, b) = (
        px[3 * (5 * 320 + 5)],
        px[3 * (5 * 320 + 5) + 1],
        px[3 * (5 * 320 + 5) + 2],
    );
    assert!(
        r < 80 && g > 170 && b > 170,
        "mint at the top left: {r},{g},{b}"
    );
    // Unknown markers.
    for p in [
        "/markers/999/clip.mp4",
        "/markers/0/thumbnail.jpg",
        "/markers/x/clip.ts",
        "/markers/1/other",
    ] {
        assert_eq!(s.get(p, &[], &[]).0, 404, "{p}");
    }
}

/// A marker's routes say `202` while its clip is still being recorded, and `410` once its
/// clip retention has passed (the thumbnail too): never a wrong picture.
#[test]
fn marker_routes_answer_202_while_recording_and_410_once_expired() {
    // Live and paced: the first marker's clip ends 10 s after it.
    let live = util::Serving::start(&[
        "--size",
        "64x64",
        "--hls-time",
        "1",
        "--list-size",
        "3",
        "--event-mean",
        "0.5",
        "--seed",
        "1",
    ]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let id = loop {
        let (_, body) = live.get("/markers");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        if let Some(id) = v["markers"]
            .as_array()
            .and_then(|a| a.iter().filter_map(|m| m["id"].as_u64()).min())
        {
            break id;
        }
        assert!(std::time::Instant::now() < deadline, "no marker");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    for file in ["clip.mp4", "clip.ts", "clip.m3u8"] {
        let (status, body) = live.get(&format!("/markers/{id}/{file}"));
        assert_eq!(status, 202, "{file}");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["status"], "recording", "{file}: {v}");
    }
    drop(live);

    // Ended, with a one-second clip retention: every route of its markers is gone.
    let dir = tempfile::tempdir().unwrap();
    let s = Server::run_to_end(
        dir.path(),
        &[
            "--size",
            "64x64",
            "--hls-time",
            "1",
            "--list-size",
            "3",
            "--frames",
            "90",
            "--event-mean",
            "0.5",
            "--seed",
            "1",
            "--clip-retention",
            "1s",
        ],
    );
    let v = s.json("/markers").1;
    let first = v["markers"]
        .as_array()
        .unwrap()
        .iter()
        .min_by_key(|m| m["id"].as_u64())
        .expect("a marker")
        .clone();
    let id = first["id"].as_u64().unwrap();
    // Unpaced, the marker's date may be ahead of the clock: wait until a second after it.
    let at = chrono::DateTime::parse_from_rfc3339(first["program_date_time"].as_str().unwrap())
        .unwrap()
        .timestamp_millis();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    std::thread::sleep(std::time::Duration::from_millis(
        (at + 1200 - now).max(0) as u64
    ));
    for file in ["clip.mp4", "clip.ts", "clip.m3u8", "thumbnail.jpg"] {
        let (status, body) = s.json(&format!("/markers/{id}/{file}"));
        assert_eq!(status, 410, "{file}: {body}");
        assert!(body["error"].is_string());
    }
}
