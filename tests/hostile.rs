//! The hostile-client probes of issue 18, kept as a suite: raw sockets against the real binary on
//! 127.0.0.1, each probe bounded in time and count. Every test here failed before the fix it
//! names, or pins down a behaviour the probe found sound (framing, head limits, path spellings,
//! slow heads, SIGTERM under held connections) so that it stays so.

use std::io::{BufRead as _, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN: &str = "hostile-suite-token-0123456789";

/// The binary on 127.0.0.1 with its log lines collected; killed when dropped.
struct Origin {
    child: std::process::Child,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    dir: tempfile::TempDir,
}

impl Drop for Origin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Origin {
    /// Starts the binary with `args` (and the marker token) writing into `DIR/video`, and waits
    /// until its first segment is out.
    fn start(args: &[&str]) -> Origin {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hls-streamer"))
            .args(["--bind", "127.0.0.1:0", "--seed", "3", "--out-dir"])
            .arg(dir.path().join("video"))
            .args(args)
            .env("HLS_MARKER_TOKEN", TOKEN)
            .env_remove("RUST_LOG")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let log = Arc::new(Mutex::new(Vec::new()));
        let keep = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                keep.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let addr = crate::util::listen_address(&rx, Duration::from_secs(30));
        let origin = Origin {
            child,
            addr,
            log,
            dir,
        };
        origin.wait_for_segments(1);
        origin
    }

    fn media_dir(&self) -> PathBuf {
        self.dir.path().join("video")
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (at most 60 s) until the playlist lists `n` segments.
    fn wait_for_segments(&self, n: usize) -> m3u8_rs::MediaPlaylist {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, body) = get(self.addr, "/video/chessboard.m3u8");
            if status == 200 {
                if let Ok((_, pl)) = m3u8_rs::parse_media_playlist(&body) {
                    if pl.segments.len() >= n {
                        return pl;
                    }
                }
            }
            assert!(Instant::now() < deadline, "no {n} segments within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_lines(&self, what: &str) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(what))
            .cloned()
            .collect()
    }

    /// Open sockets of the process (the segment files an answer holds are shared with the
    /// media cache's, so sockets are what a stalled client adds).
    fn open_sockets(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter_map(|e| std::fs::read_link(e.path()).ok())
                    .filter(|l| l.to_string_lossy().starts_with("socket:"))
                    .count()
            })
            .unwrap_or(0)
    }
}

/// Sends `raw` on a new connection and reads until the server closes it (or `within` passes):
/// everything the server sent.
fn exchange(addr: SocketAddr, raw: &[u8], within: Duration) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let _ = s.write_all(raw);
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    out
}

/// The status codes of every answer in `bytes` (status lines at the start of an answer).
fn statuses(bytes: &[u8]) -> Vec<u16> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = Vec::new();
    let mut rest: &str = &text;
    while let Some(at) = rest.find("HTTP/1.1 ") {
        let code = &rest[at + 9..];
        if let Some(c) = code.get(..3).and_then(|c| c.parse().ok()) {
            out.push(c);
        }
        rest = &rest[at + 9..];
    }
    out
}

/// One `GET` with `Connection: close`: status and body.
fn get(addr: SocketAddr, path: &str) -> (u16, Vec<u8>) {
    let raw = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let out = exchange(addr, raw.as_bytes(), Duration::from_secs(10));
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(out.len(), |p| p + 4);
    let status = statuses(&out[..split]).first().copied().unwrap_or(0);
    (status, out[split..].to_vec())
}

/// `POST /markers` with `auth` as the bearer token: the status and the answer's text.
fn post_marker(addr: SocketAddr, auth: &str, body: &str) -> (u16, String) {
    let raw = format!(
        "POST /markers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {auth}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let out = exchange(addr, raw.as_bytes(), Duration::from_secs(10));
    let text = String::from_utf8_lossy(&out).into_owned();
    (statuses(&out).first().copied().unwrap_or(0), text)
}

/// The vendored hls.js's own playlist parser, run in Node on `playlist`
/// (`tests/js/hlsjs_parse.cjs`): what hls.js makes of it, as JSON.
fn parse_with_hls_js(playlist: &[u8]) -> serde_json::Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut child = match std::process::Command::new("node")
        .arg(root.join("tests/js/hlsjs_parse.cjs"))
        .arg(root.join("static/vendor/hls.min.js"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!("node is needed for this test: {e}"),
    };
    child.stdin.take().unwrap().write_all(playlist).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "hls.js parser failed: {out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Defect 1: no marker field may hold a character a playlist reader takes for a line break,
/// and every text that is accepted reaches hls.js's parser as one attribute, the playlist still
/// live and its segments unchanged.
#[test]
fn marker_text_never_adds_a_line_to_the_playlist_as_hls_js_reads_it() {
    let o = Origin::start(&[
        "--size",
        "160x96",
        "--hls-time",
        "1",
        "--event-mean",
        "100000",
    ]);
    for (field, bad) in [
        ("text", "x\\u2028#EXT-X-ENDLIST"),
        (
            "text",
            "x\\u2029#EXTINF:2.000,\\nhttps://elsewhere.example/x.ts",
        ),
        ("text", "x\\u0085y"),
        ("text", "x\\ny"),
        ("text", "x\\ry"),
        ("text", "x\\u000by"),
        ("text", "x\\u000cy"),
        ("text", "x\\u001by"),
        ("text", "x\\u009by"),
        ("source", "s\\u2028#EXT-X-ENDLIST"),
        ("key", "k\\u2029k"),
    ] {
        let body = match field {
            "text" => format!(r#"{{"text":"{bad}","time":0.1}}"#),
            f => format!(r#"{{"text":"ok","time":0.1,"{f}":"{bad}"}}"#),
        };
        let (status, answer) = post_marker(o.addr, TOKEN, &body);
        assert_eq!(status, 400, "{field} {bad:?}: {answer}");
        assert!(
            answer.contains(field),
            "the answer names the field: {answer}"
        );
    }
    // Texts that are accepted, and what the label must read as in hls.js.
    let accepted = [
        (
            r#"say \"hi\", then #EXT-X-ENDLIST"#,
            "say 'hi', then #EXT-X-ENDLIST",
        ),
        ("URI=\\\"x.ts\\\",ID=\\\"m\\\"", "URI='x.ts',ID='m'"),
        (
            "zero\\u200bwidth \\ufeff bom \\u202e rtl",
            "zero\u{200b}width \u{feff} bom \u{202e} rtl",
        ),
        ("emoji 🎥 ünïcode", "emoji 🎥 ünïcode"),
        ("back\\\\slash", "back\\slash"),
    ];
    let mut ids = Vec::new();
    for (i, (text, _)) in accepted.iter().enumerate() {
        let body = format!(r#"{{"text":"{text}","time":0.{}}}"#, i + 1);
        let (status, answer) = post_marker(o.addr, TOKEN, &body);
        assert_eq!(status, 201, "{text}: {answer}");
        let json = answer.split("\r\n\r\n").nth(1).unwrap();
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        ids.push(v["id"].as_u64().unwrap());
    }
    // Wait until every accepted marker is in the playlist, then read it with both parsers.
    let deadline = Instant::now() + Duration::from_secs(30);
    let playlist = loop {
        let (status, body) = get(o.addr, "/video/chessboard.m3u8");
        assert_eq!(status, 200);
        let text = String::from_utf8(body.clone()).expect("UTF-8 playlist");
        if text.matches("#EXT-X-DATERANGE:").count() >= accepted.len() {
            break body;
        }
        assert!(Instant::now() < deadline, "markers not published: {text}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let text = String::from_utf8(playlist.clone()).unwrap();
    assert!(!text.contains(['\u{2028}', '\u{2029}', '\u{85}']), "{text}");
    let ours = m3u8_rs::parse_media_playlist(&playlist).unwrap().1;
    let hls = parse_with_hls_js(&playlist);
    assert_eq!(
        hls["live"], true,
        "hls.js reads the playlist as ended: {hls}"
    );
    let frags = hls["fragments"].as_array().unwrap();
    assert_eq!(frags.len(), ours.segments.len(), "{hls}");
    for (f, s) in frags.iter().zip(&ours.segments) {
        assert_eq!(f["url"], s.uri.as_str());
    }
    assert_eq!(hls["startSN"], ours.media_sequence);
    let ranges = hls["dateRanges"].as_object().unwrap();
    assert_eq!(ranges.len(), accepted.len(), "{hls}");
    for (id, (_, label)) in ids.iter().zip(accepted) {
        let (_, attrs) = ranges
            .iter()
            .find(|(k, _)| k.ends_with(&format!("-{id}")))
            .unwrap_or_else(|| panic!("marker {id} not in {hls}"));
        assert_eq!(attrs["X-COM-HLSSTREAMER-LABEL"], label, "marker {id}");
    }
}

/// Defects 2 and 5 over HTTP: a FIFO under a segment's name is refused at once without
/// holding a worker, and a symlink out of the media directory swapped in and out under a
/// segment's name is never followed.
#[test]
fn fifos_and_swapped_symlinks_under_served_names_are_refused() {
    let o = Origin::start(&["--size", "160x96", "--hls-time", "1"]);
    let media = o.media_dir();
    let fifo = media.join("chessboard999999.ts");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    // More than the server's workers and blocking threads could absorb if each blocked.
    let askers: Vec<_> = (0..24)
        .map(|_| {
            let addr = o.addr;
            std::thread::spawn(move || {
                let t0 = Instant::now();
                let (status, _) = get(addr, "/video/chessboard999999.ts");
                (status, t0.elapsed())
            })
        })
        .collect();
    for a in askers {
        let (status, took) = a.join().unwrap();
        assert_eq!(status, 404);
        assert!(
            took < Duration::from_secs(8),
            "a FIFO held a request {took:?}"
        );
    }
    assert_eq!(get(o.addr, "/healthz").0, 200, "the workers are free");

    let secret = o.dir.path().join("secret.ts");
    std::fs::write(&secret, b"SECRET-OUTSIDE-THE-MEDIA-DIR").unwrap();
    let real = media.join("real-copy");
    std::fs::write(&real, b"a segment inside").unwrap();
    let name = media.join("chessboard999998.ts");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (stop, name) = (stop.clone(), name.clone());
        std::thread::spawn(move || {
            let tmp = name.with_extension("swap");
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 10_000_000 {
                let _ = std::fs::remove_file(&tmp);
                let made = if i % 2 == 0 {
                    std::os::unix::fs::symlink(&secret, &tmp)
                } else {
                    std::fs::hard_link(&real, &tmp)
                };
                if made.is_ok() {
                    let _ = std::fs::rename(&tmp, &name);
                }
                i += 1;
            }
        })
    };
    let mut seen = [0usize; 2];
    for _ in 0..1500 {
        let (status, body) = get(o.addr, "/video/chessboard999998.ts");
        assert!(
            !body.windows(6).any(|w| w == b"SECRET"),
            "a file outside the media directory was served"
        );
        match status {
            200 => seen[0] += 1,
            404 => seen[1] += 1,
            s => panic!("status {s}"),
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    swapper.join().unwrap();
    assert!(seen[0] > 0 && seen[1] > 0, "both states seen: {seen:?}");
}

/// Defect 3: clients that pipeline the window's segments and never read are closed within the
/// send timeout, and their sockets and files released.
#[test]
fn clients_that_stop_reading_media_are_closed_and_release_their_files() {
    let o = Origin::start(&["--size", "640x360", "--bitrate", "4M", "--hls-time", "1"]);
    let pl = o.wait_for_segments(5);
    std::thread::sleep(Duration::from_millis(500));
    let baseline = o.open_sockets();
    let mut batch = String::new();
    for i in 0..60 {
        let seg = &pl.segments[i % pl.segments.len()];
        batch.push_str(&format!(
            "GET /video/{} HTTP/1.1\r\nHost: x\r\n\r\n",
            seg.uri
        ));
    }
    let stalled: Vec<TcpStream> = (0..10)
        .map(|_| {
            let s = TcpStream::connect(o.addr).unwrap();
            // As little buffering on our side as the kernel allows.
            let _ = s.set_nonblocking(true);
            let mut w = &s;
            let _ = w.write_all(batch.as_bytes());
            s
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let held = o.open_sockets();
    assert!(
        held >= baseline + 10,
        "the stalled clients are connected: {held} sockets, {baseline} before"
    );
    let stalled_at = Instant::now();
    let limit = stalled_at + Duration::from_secs(10) + Duration::from_secs(10);
    let mut now_open = held;
    while Instant::now() < limit {
        now_open = o.open_sockets();
        if now_open <= baseline {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        now_open <= baseline,
        "stalled clients still held after the send timeout: {now_open} sockets, {baseline} before"
    );
    eprintln!(
        "stalled readers: {} sockets held, all closed {:?} after (send timeout 10 s)",
        held - baseline,
        stalled_at.elapsed() + Duration::from_secs(2)
    );
    drop(stalled);
    assert_eq!(get(o.addr, "/healthz").0, 200);
}

/// Defect 4 end to end: every spelling of the event stream is the event stream (answered by the
/// dispatcher that bounds it), so its answer is the stream's, not a route's copy of it.
#[test]
fn every_spelling_of_the_event_stream_is_the_event_stream() {
    let o = Origin::start(&["--size", "160x96", "--hls-time", "1"]);
    for path in [
        "/markers/events",
        "/markers/%65vents",
        "/%6Darkers/%65%76%65%6E%74%73",
        "/markers/events?last_event_id=0",
    ] {
        let raw = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        let out = exchange(o.addr, raw.as_bytes(), Duration::from_millis(800));
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 200"), "{path}: {text}");
        assert!(
            text.contains("content-type: text/event-stream"),
            "{path}: {text}"
        );
    }
    // A spelling the routes do not decode into the route is not it.
    let (status, _) = get(o.addr, "/markers%2Fevents");
    assert_eq!(status, 404);
}

/// The rest of the probe: 100 wrong tokens are slowed (429 after ten) and logged without the
/// token; 1,000 malformed requests write a handful of lines, not 1,000 `ERROR`s.
#[test]
fn wrong_tokens_are_limited_and_client_errors_do_not_flood_the_log() {
    let o = Origin::start(&["--size", "160x96", "--hls-time", "1"]);
    let wrong = "not-the-token-but-a-guess-42";
    let mut codes = Vec::new();
    for i in 0..100 {
        let (status, answer) = post_marker(
            o.addr,
            wrong,
            &format!(r#"{{"text":"guess {i}","time":0.1}}"#),
        );
        assert!(!answer.contains(TOKEN));
        codes.push(status);
    }
    assert!(codes[..10].iter().all(|&c| c == 401), "{codes:?}");
    assert!(codes[10..].iter().all(|&c| c == 429), "{codes:?}");
    // Locked out: even the right token waits (so guessing cannot go on at speed).
    let (status, answer) = post_marker(o.addr, TOKEN, r#"{"text":"late","time":0.1}"#);
    assert_eq!(status, 429, "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: "),
        "{answer}"
    );

    for i in 0..1000 {
        let junk: &[u8] = match i % 4 {
            0 => b"GARBAGE\r\n\r\n",
            1 => b"GET / HTTP/9.9\r\n\r\n",
            2 => b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
            _ => b"POST /markers HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        };
        let mut s = TcpStream::connect(o.addr).unwrap();
        let _ = s.write_all(junk);
    }
    // Let the server read them all.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(get(o.addr, "/healthz").0, 200);
    let log = o.log.lock().unwrap().clone();
    let refused = o.log_lines("marker token refused");
    assert!(
        (1..=3).contains(&refused.len()),
        "refused tokens: {refused:#?}"
    );
    assert!(refused[0].contains("127.0.0.1"), "{refused:?}");
    assert!(log.iter().all(|l| !l.contains(wrong) && !l.contains(TOKEN)));
    let errors: Vec<_> = log.iter().filter(|l| l.contains("ERROR")).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let client_errors = o.log_lines("client connection ended");
    assert!(client_errors.len() <= 2, "{client_errors:#?}");
}

/// Framing tricks get one answer (or a 400 and a close), never two, and never a hang; heads
/// over the limits are refused; a slow head gets a 408; no spelling of a path reads a file
/// outside the media directory.
#[test]
fn framing_limits_spellings_and_slow_heads() {
    let o = Origin::start(&["--size", "160x96", "--hls-time", "1"]);
    std::fs::write(o.dir.path().join("secret.ts"), b"SECRET-OUTSIDE").unwrap();
    std::fs::write(o.dir.path().join("chessboard.m3u8"), b"SECRET-OUTSIDE").unwrap();
    let within = Duration::from_secs(7);
    // (request, most answers allowed): a smuggled second request must never be answered.
    let tricks: [(&[u8], usize); 9] = [
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 28\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n", 1),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 30\r\nConnection: close\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n", 1),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\nConnection: close\r\n\r\n0\r\n\r\n", 1),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\nConnection: close\r\n\r\n0\r\n\r\n", 1),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\n Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n", 1),
        (b"GET /healthz HTTP/1.1\nHost: x\nConnection: close\n\n", 1),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\nConnection: close\r\n\r\n", 1),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1e3\r\nConnection: close\r\n\r\n", 1),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 2),
    ];
    for (raw, most) in tricks {
        let t0 = Instant::now();
        let out = exchange(o.addr, raw, within);
        let got = statuses(&out);
        let shown = String::from_utf8_lossy(raw);
        assert!(!got.is_empty() && got.len() <= most, "{shown:?}: {got:?}");
        assert!(t0.elapsed() < within, "{shown:?} hung");
        assert!(
            !String::from_utf8_lossy(&out).contains("smuggled"),
            "{shown:?}"
        );
    }
    // Head limits: a huge header line and too many headers.
    let huge = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(256 * 1024)
    );
    let got = statuses(&exchange(o.addr, huge.as_bytes(), within));
    assert!(matches!(got.as_slice(), [400] | [431]), "{got:?}");
    let many: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let raw = format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    let got = statuses(&exchange(o.addr, raw.as_bytes(), within));
    assert!(matches!(got.as_slice(), [400] | [431]), "{got:?}");
    // A head that never ends: 408 within the head timeout (5 s), then closed.
    let t0 = Instant::now();
    let got = statuses(&exchange(
        o.addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n",
        Duration::from_secs(9),
    ));
    assert_eq!(got, [408]);
    assert!(t0.elapsed() < Duration::from_secs(9));
    // Path spellings: nothing outside the media directory, whatever the spelling.
    for path in [
        "/video/../secret.ts",
        "/video/%2e%2e/secret.ts",
        "/video/%2E%2E%2Fsecret.ts",
        "/video/..%2fsecret.ts",
        "/video/..%5csecret.ts",
        "/video/%252e%252e%252fsecret.ts",
        "/video/....//secret.ts",
        "/video//secret.ts",
        "/video/./../secret.ts",
        "/static/../secret.ts",
        "/static/%2e%2e/%2e%2e/secret.ts",
        "/video/chessboard0.ts%00.m3u8",
        "/video/%00",
        "/%2e%2e/secret.ts",
        "//secret.ts",
        "/video/chessboard.m3u8/../../chessboard.m3u8",
        "http://x/../secret.ts",
    ] {
        let raw = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let out = exchange(o.addr, raw.as_bytes(), within);
        assert!(
            !out.windows(6).any(|w| w == b"SECRET"),
            "{path} read a file outside the media directory"
        );
        let got = statuses(&out);
        assert!(
            got.len() == 1 && matches!(got[0], 400 | 404),
            "{path}: {got:?}"
        );
    }
}

/// SIGTERM with 100 connections held (idle kept-alive ones and blocking playlist reloads):
/// the process ends cleanly within the shutdown timeout, with `EXT-X-ENDLIST` written.
#[test]
fn sigterm_with_a_hundred_held_connections_ends_cleanly() {
    let mut o = Origin::start(&["--size", "160x96", "--hls-time", "1"]);
    let pl = o.wait_for_segments(2);
    let next = pl.media_sequence + pl.segments.len() as u64 + 1;
    let held: Vec<TcpStream> = (0..100)
        .map(|i| {
            let mut s = TcpStream::connect(o.addr).unwrap();
            let raw = if i % 2 == 0 {
                "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".to_owned()
            } else {
                format!("GET /video/chessboard.m3u8?_HLS_msn={next} HTTP/1.1\r\nHost: x\r\n\r\n")
            };
            s.write_all(raw.as_bytes()).unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &o.pid().to_string()])
        .status()
        .unwrap()
        .success());
    let deadline = t0 + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = o.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "not ended 15 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    drop(held);
    let text = std::fs::read_to_string(o.media_dir().join("chessboard.m3u8")).unwrap();
    assert!(text.contains("#EXT-X-ENDLIST"), "{text}");
}
