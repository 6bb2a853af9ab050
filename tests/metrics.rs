//! `GET /metrics` from the binary (issue 22): a short live stream served with `--metrics-bind`,
//! scraped while it runs and after it ended, the text parsed line by line. Every series the
//! issue names is there with its labels, and the counters agree with what the stream did: the
//! segments written are the playlist's, the frames encoded are `/healthz`'s, a posted marker is
//! counted under its source, each request under its route (never its path).

use std::collections::BTreeMap;
use std::io::{BufRead as _, Read as _, Write as _};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::util;

/// One sample of the exposition: the series' name and its labels, in the order written.
#[derive(Clone, Debug, PartialEq, PartialOrd, Eq, Ord)]
pub(crate) struct Series {
    pub(crate) name: String,
    pub(crate) labels: Vec<(String, String)>,
}

/// The exposition parsed: every sample's value, and every `# TYPE`.
#[derive(Debug, Default)]
pub(crate) struct Scrape {
    pub(crate) samples: BTreeMap<Series, f64>,
    types: BTreeMap<String, String>,
}

/// Parses the Prometheus text format (0.0.4) strictly: a line is a comment (`# HELP`,
/// `# TYPE`), empty, or `name{label="value",...} value`; anything else fails the test.
pub(crate) fn parse(text: &str) -> Scrape {
    let mut out = Scrape::default();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            out.types.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(!line.starts_with('#'), "unknown comment: {line}");
        let (series, value) = line.rsplit_once(' ').expect("series and value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, Vec::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("labels end with }");
                let mut labels = Vec::new();
                let mut rest = body;
                while !rest.is_empty() {
                    let (key, after) = rest.split_once("=\"").expect("label=\"value\"");
                    let end = after.find('"').expect("closing quote");
                    labels.push((key.to_owned(), after[..end].to_owned()));
                    rest = after[end + 1..]
                        .strip_prefix(',')
                        .unwrap_or(&after[end + 1..]);
                }
                (name, labels)
            }
        };
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad name in {line}"
        );
        let key = Series {
            name: name.to_owned(),
            labels,
        };
        assert!(out.samples.insert(key, value).is_none(), "twice: {line}");
    }
    out
}

impl Scrape {
    /// The value of `name` with exactly `labels`.
    pub(crate) fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let key = Series {
            name: name.to_owned(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        self.samples.get(&key).copied()
    }

    pub(crate) fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels)
            .unwrap_or_else(|| panic!("{name}{labels:?} missing from\n{self:#?}"))
    }

    /// `hls_http_requests_total` of `route`, every status summed.
    pub(crate) fn requests(&self, route: &str) -> f64 {
        self.samples
            .iter()
            .filter(|(k, _)| {
                k.name == "hls_http_requests_total"
                    && k.labels.iter().any(|(l, v)| l == "route" && v == route)
            })
            .map(|(_, v)| v)
            .sum()
    }

    /// The label names of every sample of `name`.
    fn label_sets(&self, name: &str) -> Vec<Vec<String>> {
        self.samples
            .keys()
            .filter(|s| s.name == name)
            .map(|s| s.labels.iter().map(|(k, _)| k.clone()).collect())
            .collect()
    }

    fn kind(&self, name: &str) -> &str {
        self.types
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no # TYPE for {name}"))
    }
}

/// Reads an answer's head (up to its empty line) from `s`.
fn read_head(s: &mut std::net::TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            s.read(&mut byte).unwrap(),
            1,
            "the answer's head ended early"
        );
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// `GET path` on `addr`: status, `Content-Type`, body.
fn get_with_type(addr: SocketAddr, path: &str) -> (u16, Option<String>, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let head = read_head(&mut s);
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let ct = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-type")
            .then(|| v.trim().to_owned())
    });
    (status, ct, body)
}

pub(crate) const TOKEN: &str = "metrics-test-token";
const STREAM: &str = "chessboard";

/// The binary with `--metrics-bind 127.0.0.1:0`: its HTTP address and its metrics address, and
/// its log lines from there on.
pub(crate) struct Binary {
    pub(crate) serving: util::Serving,
    pub(crate) metrics: SocketAddr,
    pub(crate) log: std::sync::mpsc::Receiver<String>,
}

/// Starts the binary with `args`, writing into a temporary directory, and the marker token
/// [`TOKEN`].
pub(crate) fn start(args: &[&str]) -> Binary {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_path_buf();
    start_in(dir, &out, args)
}

/// [`start`] with `--out-dir out` (inside `dir`, or a file system mounted there), `dir` removed
/// when the binary is dropped.
pub(crate) fn start_in(dir: tempfile::TempDir, out: &std::path::Path, args: &[&str]) -> Binary {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hls-streamer"))
        .args(["--bind", "127.0.0.1:0", "--metrics-bind", "127.0.0.1:0"])
        .arg("--out-dir")
        .arg(out)
        .args(args)
        .env("HLS_MARKER_TOKEN", TOKEN)
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
    let addr = util::listen_address(&rx, Duration::from_secs(30));
    let metrics = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the server says where the metrics are");
        if let Some(rest) = line.split("metrics at http://").nth(1) {
            break rest.split('/').next().unwrap().parse().unwrap();
        }
    };
    Binary {
        serving: util::Serving::adopt(child, addr, dir),
        metrics,
        log: rx,
    }
}

impl Binary {
    pub(crate) fn scrape(&self) -> (Scrape, String) {
        let (status, text) = util::http(self.metrics, "GET", "/metrics", "", "");
        assert_eq!(status, 200, "{text}");
        (parse(&text), text)
    }

    pub(crate) fn health(&self) -> serde_json::Value {
        let (_, body) = self.serving.get("/healthz");
        serde_json::from_slice(&body).unwrap()
    }
}

/// Every series of issue 22, scraped from a live stream and after its end, with the labels the
/// dashboards use, and counters that match the stream.
#[test]
fn every_series_is_exported_with_its_labels_and_counts_what_happened() {
    let started = Instant::now();
    let bin = start(&[
        "--size",
        "320x180",
        "--hls-time",
        "1",
        "--duration",
        "5",
        "--list-size",
        "20",
        "--linger",
        "60",
    ]);
    let http = bin.serving.addr;
    // The HTTP address no longer answers it; the metrics address answers nothing else, with the
    // Prometheus content type.
    assert_eq!(bin.serving.get("/metrics").0, 404);
    assert_eq!(util::http(bin.metrics, "GET", "/healthz", "", "").0, 404);
    let (_, ct, _) = get_with_type(bin.metrics, "/metrics");
    assert!(
        ct.as_deref()
            .is_some_and(|c| c.starts_with("text/plain; version=0.0.4")),
        "{ct:?}"
    );

    // While it runs: a playlist (held until two segments are out), a segment, a part, a
    // blocking reload, a posted marker, and a request for a name that is not the stream's.
    let (status, playlist) = bin.serving.get(&format!("/video/{STREAM}.m3u8"));
    assert_eq!(status, 200);
    let playlist = String::from_utf8(playlist).unwrap();
    let segment = playlist
        .lines()
        .find(|l| l.ends_with(".ts") && !l.starts_with('#'))
        .expect("a segment listed");
    assert_eq!(bin.serving.get(&format!("/video/{segment}")).0, 200);
    let part = playlist
        .lines()
        .find_map(|l| {
            let uri = l.split("URI=\"").nth(1)?.split('"').next()?;
            (uri.matches('.').count() == 2).then_some(uri)
        })
        .expect("a part listed");
    assert_eq!(bin.serving.get(&format!("/video/{part}")).0, 200);
    let msn: u64 = playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .unwrap()
        .parse()
        .unwrap();
    let listed = playlist
        .lines()
        .filter(|l| l.starts_with("#EXTINF"))
        .count() as u64;
    let (status, _) = bin.serving.get(&format!(
        "/video/{STREAM}.m3u8?_HLS_msn={}&_HLS_part=0",
        msn + listed
    ));
    assert_eq!(status, 200);
    let (status, body) = util::http(
        http,
        "POST",
        "/markers",
        &format!("Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"),
        r#"{"text": "scraped", "time": 0.5, "source": "metrics-test"}"#,
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        bin.serving.get("/video/raw-path-never-a-label-123.ts").0,
        404
    );

    // A kept-alive client of the HTTP address, between two requests.
    let mut idle = std::net::TcpStream::connect(http).unwrap();
    idle.write_all(b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    read_head(&mut idle);
    let (live, _) = bin.scrape();
    drop(idle);
    let s = [("stream", STREAM)];
    assert_eq!(live.value("hls_input_up", &s), 1.0);
    assert!(live.value("hls_playlist_age_seconds", &s) < 2.0);
    assert!(live.value("hls_http_connections", &[]) >= 1.0);
    assert!(
        live.value(
            "hls_frames_total",
            &[("stream", STREAM), ("outcome", "encoded")]
        ) > 0.0
    );

    // The end: ENDLIST written, the counters final.
    let deadline = Instant::now() + Duration::from_secs(15);
    let health = loop {
        let h = bin.health();
        if h["status"] == "ended" {
            break h;
        }
        assert!(Instant::now() < deadline, "the stream did not end: {h}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let (m, text) = bin.scrape();

    // Every series of the issue, with its labels.
    for (name, kind, labels) in [
        ("hls_frames_total", "counter", &["stream", "outcome"][..]),
        ("hls_encode_seconds_count", "histogram", &["stream"][..]),
        ("hls_segments_written_total", "counter", &["stream"][..]),
        ("hls_segments_deleted_total", "counter", &["stream"][..]),
        ("hls_parts_written_total", "counter", &["stream"][..]),
        (
            "hls_segment_publish_seconds_count",
            "histogram",
            &["stream"][..],
        ),
        (
            "hls_part_publish_seconds_count",
            "histogram",
            &["stream"][..],
        ),
        ("hls_playlist_age_seconds", "gauge", &["stream"][..]),
        ("hls_write_errors_total", "counter", &["stream"][..]),
        ("hls_input_up", "gauge", &["stream"][..]),
        ("hls_input_reconnects_total", "counter", &["stream"][..]),
        ("hls_markers_total", "counter", &["stream", "source"][..]),
        (
            "hls_http_requests_total",
            "counter",
            &["route", "status"][..],
        ),
        (
            "hls_http_request_seconds_count",
            "histogram",
            &["route"][..],
        ),
        ("hls_http_connections", "gauge", &[][..]),
        ("hls_blocking_waits", "gauge", &[][..]),
        ("process_cpu_seconds_total", "counter", &[][..]),
        ("process_resident_memory_bytes", "gauge", &[][..]),
        ("process_open_fds", "gauge", &[][..]),
        ("process_max_fds", "gauge", &[][..]),
    ] {
        let family = name.strip_suffix("_count").unwrap_or(name);
        assert_eq!(m.kind(family), kind, "{name}");
        let sets = m.label_sets(name);
        assert!(!sets.is_empty(), "{name} missing from\n{text}");
        for set in sets {
            assert_eq!(set, labels, "{name}'s labels");
        }
    }
    for (bucketed, labels) in [
        ("hls_encode_seconds_bucket", &["stream", "le"][..]),
        ("hls_segment_publish_seconds_bucket", &["stream", "le"][..]),
        ("hls_part_publish_seconds_bucket", &["stream", "le"][..]),
        ("hls_http_request_seconds_bucket", &["route", "le"][..]),
    ] {
        let sets = m.label_sets(bucketed);
        assert!(sets.len() > 5, "{bucketed}: histogram buckets");
        assert!(sets.iter().all(|s| s == labels), "{bucketed}: {sets:?}");
    }

    // The counters agree with the stream: the playlist's segments, `/healthz`'s frames.
    let final_playlist = util::read_playlist(bin.serving.dir(), STREAM);
    let segments = final_playlist.segments.len() as f64;
    assert!(final_playlist.end_list);
    assert_eq!(segments, 5.0, "5 s of 1 s segments");
    assert_eq!(m.value("hls_segments_written_total", &s), segments);
    assert_eq!(
        health["segments_written"].as_f64().unwrap(),
        segments,
        "{health}"
    );
    assert_eq!(m.value("hls_segments_deleted_total", &s), 0.0);
    assert_eq!(m.value("hls_segment_publish_seconds_count", &s), segments);
    // 30 frames a segment, parts of 10 frames.
    assert_eq!(m.value("hls_parts_written_total", &s), 3.0 * segments);
    assert_eq!(
        m.value("hls_part_publish_seconds_count", &s),
        3.0 * segments
    );
    let encoded = m.value(
        "hls_frames_total",
        &[("stream", STREAM), ("outcome", "encoded")],
    );
    assert_eq!(
        encoded,
        health["frames_encoded"].as_f64().unwrap(),
        "{health}"
    );
    assert_eq!(encoded, 150.0);
    assert_eq!(
        m.value(
            "hls_frames_total",
            &[("stream", STREAM), ("outcome", "dropped")]
        ),
        health["frames_dropped"].as_f64().unwrap()
    );
    assert_eq!(m.value("hls_encode_seconds_count", &s), encoded);
    assert_eq!(m.value("hls_write_errors_total", &s), 0.0);
    assert_eq!(m.value("hls_input_reconnects_total", &s), 0.0);
    // Ended: the input is gone.
    assert_eq!(m.value("hls_input_up", &s), 0.0);
    assert!(m.value("hls_playlist_age_seconds", &s) >= 0.0);
    assert_eq!(m.value("hls_blocking_waits", &[]), 0.0);

    // The posted marker under its source; every marker counted once.
    assert_eq!(
        m.value(
            "hls_markers_total",
            &[("stream", STREAM), ("source", "metrics-test")]
        ),
        1.0
    );
    let markers: f64 = m
        .samples
        .iter()
        .filter(|(k, _)| k.name == "hls_markers_total")
        .map(|(_, v)| v)
        .sum();
    assert_eq!(markers, health["markers"].as_f64().unwrap(), "{health}");

    // Requests under their routes, never their paths.
    let requests = |route: &str, status: &str| {
        m.get(
            "hls_http_requests_total",
            &[("route", route), ("status", status)],
        )
        .unwrap_or(0.0)
    };
    assert!(requests("playlist", "200") >= 1.0, "{text}");
    assert_eq!(requests("blocking_playlist", "200"), 1.0, "{text}");
    assert!(requests("segment", "200") >= 1.0, "{text}");
    assert!(requests("part", "200") >= 1.0, "{text}");
    assert_eq!(requests("markers", "201"), 1.0, "{text}");
    assert!(requests("other", "404") >= 2.0, "{text}");
    assert!(requests("metrics", "200") >= 2.0, "{text}");
    assert!(requests("other", "200") >= 1.0, "/healthz: {text}");
    assert!(!text.contains("raw-path-never"), "{text}");
    let routes: std::collections::BTreeSet<&str> = m
        .samples
        .keys()
        .filter(|k| k.name == "hls_http_requests_total")
        .map(|k| k.labels[0].1.as_str())
        .collect();
    for r in &routes {
        assert!(
            [
                "playlist",
                "blocking_playlist",
                "segment",
                "part",
                "markers",
                "events",
                "page",
                "metrics",
                "other"
            ]
            .contains(r),
            "route {r}"
        );
    }
    assert!(m.value("process_resident_memory_bytes", &[]) > 1e6);
    assert!(m.value("process_open_fds", &[]) >= 3.0);
    assert!(m.value("process_max_fds", &[]) >= m.value("process_open_fds", &[]));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

/// `docs/grafana-dashboard.json` is a dashboard whose every query names series that exist (a
/// histogram's by `_bucket`, `_sum` or `_count`) and whose queries together use every series.
#[test]
fn the_grafana_dashboard_uses_every_series_and_only_those() {
    use hls::telemetry as t;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/grafana-dashboard.json");
    let dash: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap())
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    let counters_and_gauges = [
        t::FRAMES_TOTAL,
        t::SEGMENTS_WRITTEN_TOTAL,
        t::SEGMENTS_DELETED_TOTAL,
        t::PARTS_WRITTEN_TOTAL,
        t::PLAYLIST_AGE_SECONDS,
        t::WRITE_ERRORS_TOTAL,
        t::INPUT_UP,
        t::INPUT_RECONNECTS_TOTAL,
        t::MARKERS_TOTAL,
        t::HTTP_REQUESTS_TOTAL,
        t::HTTP_CONNECTIONS,
        t::BLOCKING_WAITS,
        t::PROCESS_CPU_SECONDS_TOTAL,
        t::PROCESS_RESIDENT_MEMORY_BYTES,
        t::PROCESS_OPEN_FDS,
        t::PROCESS_MAX_FDS,
    ];
    let histograms = [
        t::ENCODE_SECONDS,
        t::SEGMENT_PUBLISH_SECONDS,
        t::PART_PUBLISH_SECONDS,
        t::HTTP_REQUEST_SECONDS,
    ];
    let labels = ["stream", "outcome", "source", "route", "status", "le"];
    // Every query: the panels' `expr` and the variables' `definition`.
    fn queries<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("expr" | "definition", serde_json::Value::String(s)) => out.push(s),
                        _ => queries(v, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| queries(v, out)),
            _ => {}
        }
    }
    let mut exprs = Vec::new();
    queries(&dash, &mut exprs);
    assert!(exprs.len() > 20, "{exprs:?}");
    let panels = dash["panels"].as_array().expect("panels");
    assert!(panels.iter().all(|p| p["gridPos"]["w"].as_u64().is_some()));
    let mut used = std::collections::BTreeSet::new();
    for expr in &exprs {
        // Identifiers outside quotes, and the label names in `by (...)` and `{...}`.
        let mut words = Vec::new();
        let mut in_quotes = false;
        let mut word = String::new();
        for c in expr.chars().chain([' ']) {
            if c == '"' {
                in_quotes = !in_quotes;
            }
            if !in_quotes && (c.is_ascii_alphanumeric() || c == '_') {
                word.push(c);
            } else if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
        }
        let mut named = false;
        for w in &words {
            if !(w.starts_with("hls_") || w.starts_with("process_")) {
                continue;
            }
            named = true;
            let series = histograms
                .iter()
                .find(|h| {
                    ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|s| *w == format!("{h}{s}"))
                })
                .copied()
                .or_else(|| counters_and_gauges.iter().find(|c| *c == w).copied())
                .unwrap_or_else(|| panic!("{expr}: {w} is no series of ours"));
            used.insert(series);
        }
        assert!(named, "{expr} names no series");
        let after_by = expr
            .split("by (")
            .skip(1)
            .map(|s| s.split(')').next().unwrap());
        for list in after_by {
            for l in list.split(',').map(str::trim) {
                assert!(labels.contains(&l), "{expr}: no label {l}");
            }
        }
    }
    for s in counters_and_gauges.iter().chain(&histograms) {
        assert!(used.contains(s), "the dashboard does not use {s}");
    }
}
