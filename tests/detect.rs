//! `hls-detect`'s core over files: the streamer's own pipeline writes a run, the detector reads
//! its playlist and segments through a file-backed [`Origin`] with a fake marker store, and its
//! onsets must equal the generator's own markers, date and frame, with 0 frames error; across
//! origin restarts, gaps, failed loads and lost replies, without a duplicate. Then the binaries:
//! the real streamer (generator markers off) with the real detector on 127.0.0.1, the origin
//! restarted midway, against the video decoded here; and `--name` on a server with two streams,
//! whose markers land in the named one only. The detector's flags and its keeping the
//! token out of logs are tested beside it, in detect/tests/cli.rs.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hls::markers::Marker;
use hls::name::StreamName;
use hls_detect::{
    media::PTS_MODULUS, Detector, FetchError, MarkerPost, Onset, Origin, PostReply, Settings,
    StepReport, SOURCE,
};

use crate::util;

/// The origin as files in a directory, and a marker store that deduplicates by key the way the
/// server does (201 new, 200 repeated).
struct FileOrigin {
    dir: PathBuf,
    name: String,
    /// Created markers, in order, with their key.
    markers: Vec<MarkerPost>,
    by_key: BTreeMap<String, usize>,
    /// Segment URIs that answer 404.
    missing: HashSet<String>,
    /// The whole origin refuses connections.
    down: bool,
    /// The playlist answers 404 (the origin is up but has no stream yet).
    no_playlist: bool,
    /// The next N posts answer 503.
    fail_posts: u32,
    /// The next N posts are stored but their reply is lost (a timeout after the commit).
    lose_replies: u32,
    /// POSTs that reached the store.
    post_calls: usize,
    /// Replies 200 (a repeated key).
    repeats: usize,
}

impl FileOrigin {
    fn new(dir: PathBuf, name: &str) -> Self {
        FileOrigin {
            dir,
            name: name.into(),
            markers: Vec::new(),
            by_key: BTreeMap::new(),
            missing: HashSet::new(),
            down: false,
            no_playlist: false,
            fail_posts: 0,
            lose_replies: 0,
            post_calls: 0,
            repeats: 0,
        }
    }

    fn read(&self, file: &str) -> Result<Vec<u8>, FetchError> {
        if self.down {
            return Err(FetchError::Unreachable("connection refused".into()));
        }
        std::fs::read(self.dir.join(file)).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => FetchError::NotFound,
            _ => FetchError::Unreachable(e.to_string()),
        })
    }
}

impl Origin for FileOrigin {
    fn playlist(&mut self) -> Result<Vec<u8>, FetchError> {
        if self.no_playlist && !self.down {
            return Err(FetchError::NotFound);
        }
        self.read(&format!("{}.m3u8", self.name))
    }

    fn segment(&mut self, uri: &str) -> Result<Vec<u8>, FetchError> {
        assert!(
            !uri.contains('/')
                && (uri.ends_with(".ts") || uri.ends_with(".m4s") || uri.ends_with(".init.mp4")),
            "a plain segment URI: {uri}"
        );
        if self.missing.contains(uri) && !self.down {
            return Err(FetchError::NotFound);
        }
        self.read(uri)
    }

    fn post_marker(&mut self, post: &MarkerPost) -> Result<PostReply, FetchError> {
        if self.down {
            return Err(FetchError::Unreachable("connection refused".into()));
        }
        if self.fail_posts > 0 {
            self.fail_posts -= 1;
            return Err(FetchError::Status {
                code: 503,
                body: "busy".into(),
            });
        }
        self.post_calls += 1;
        assert_eq!(post.source, SOURCE);
        let (created, id) = match self.by_key.get(&post.key) {
            Some(&i) => {
                self.repeats += 1;
                assert_eq!(
                    self.markers[i], *post,
                    "a repeated key carries the same marker"
                );
                (false, i)
            }
            None => {
                self.markers.push(post.clone());
                self.by_key.insert(post.key.clone(), self.markers.len() - 1);
                (true, self.markers.len() - 1)
            }
        };
        if self.lose_replies > 0 {
            self.lose_replies -= 1;
            return Err(FetchError::Unreachable(
                "timed out reading the reply".into(),
            ));
        }
        Ok(PostReply {
            created,
            id: Some(id as u64 + 1),
        })
    }
}

fn detector() -> Detector {
    Detector::new(Settings::new(StreamName::new("chessboard").unwrap()))
}

/// Steps until the playlist is processed and every post went through; fake time runs ahead so
/// retries come due. Returns all onsets found.
fn drain(det: &mut Detector, origin: &mut FileOrigin) -> Vec<Onset> {
    let mut now = Instant::now();
    let mut onsets = Vec::new();
    for _ in 0..50 {
        let r = det.step(origin, now);
        assert!(r.failure.is_none(), "{:?}", r.failure);
        onsets.extend(r.onsets);
        if det.pending_posts() == 0 {
            return onsets;
        }
        now += Duration::from_secs(10);
    }
    panic!("posts still pending after 50 steps");
}

/// A generator marker as (date, stream ticks).
fn expected(markers: &[Marker]) -> Vec<(String, u64)> {
    markers
        .iter()
        .map(|m| {
            (
                m.program_date_time.clone(),
                (m.time * 90_000.0).round() as u64,
            )
        })
        .collect()
}

/// A detected onset as (date, stream ticks from its PTS).
fn detected(onsets: &[Onset], pts_offset: u64) -> Vec<(String, u64)> {
    onsets
        .iter()
        .map(|o| {
            (
                o.program_date_time.clone(),
                (o.pts + PTS_MODULUS - pts_offset % PTS_MODULUS) % PTS_MODULUS,
            )
        })
        .collect()
}

fn run_args<'a>(fps: &'a str, noise: &'a str, hls_time: &'a str) -> Vec<&'a str> {
    vec![
        "--size",
        "320x240",
        "--duration",
        "20",
        "--seed",
        "11",
        "--event-mean",
        "1.5",
        "--event-duration",
        "0.5",
        "--list-size",
        "20",
        "--fps",
        fps,
        "--noise",
        noise,
        "--hls-time",
        hls_time,
    ]
}

/// The detector finds exactly the generator's markers: same dates, same frames.
fn check_exact(fps: &str, noise: &str, hls_time: &str) {
    check_exact_with(
        fps,
        noise,
        hls_time,
        &[],
        hls::config::DEFAULT_PTS_OFFSET.as_u64(),
    );
}

/// [`check_exact`] with more flags; `pts_offset`: the PTS of stream time 0 in the segments.
fn check_exact_with(fps: &str, noise: &str, hls_time: &str, extra: &[&str], pts_offset: u64) {
    let mut args = run_args(fps, noise, hls_time);
    args.extend_from_slice(extra);
    let run = util::run(&args);
    let markers = run.shared.markers.since(None);
    assert!(
        markers.len() >= 5,
        "20 s at a 2 s period gives several events: {}",
        markers.len()
    );
    let mut origin = FileOrigin::new(run.path(), "chessboard");
    let mut det = detector();
    let onsets = drain(&mut det, &mut origin);
    let case = format!("--fps {fps} --noise {noise} --hls-time {hls_time}");
    let want = expected(&markers)
        .into_iter()
        .map(|w| format!("{w:?}"))
        .collect::<Vec<_>>()
        .join("\n");
    let got = detected(&onsets, pts_offset)
        .into_iter()
        .map(|w| format!("{w:?}"))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        want, got,
        "{case}\n--- generator ---\n{want}\n--- detector ---\n{got}"
    );
    // What was posted is what was found, once each.
    let posted: Vec<&str> = origin
        .markers
        .iter()
        .map(|m| m.program_date_time.as_str())
        .collect();
    let found: Vec<&str> = onsets
        .iter()
        .map(|o| o.program_date_time.as_str())
        .collect();
    assert_eq!(posted, found, "{case}");
    assert_eq!(origin.repeats, 0, "{case}");

    // A detector restarted over the same window posts the same keys: nothing new is created.
    let mut again = detector();
    let onsets2 = drain(&mut again, &mut origin);
    assert_eq!(onsets, onsets2, "{case}: the same onsets, keys included");
    assert_eq!(origin.markers.len(), markers.len(), "{case}: no duplicate");
    assert_eq!(origin.repeats, markers.len(), "{case}: each answered 200");
}

/// fMP4 segments (`--segment-type fmp4`): the detector reads the init segment and the fragments
/// (times from `tfdt` and the sample durations: stream time itself, no PTS offset) and finds
/// the same markers as in TS, at 30 and 29.97 fps.
#[test]
fn detect_matches_generator_markers_in_fmp4() {
    check_exact_with("30", "0", "2", &["--segment-type", "fmp4"], 0);
    check_exact_with("29.97", "8", "1.1", &["--segment-type", "fmp4"], 0);
}

/// 30 fps, clean and noisy; 1.5 s segments too.
#[test]
fn detect_matches_generator_markers_at_30() {
    check_exact("30", "0", "2");
    check_exact("30", "8", "1.5");
}

/// 29.97 fps: dates are not whole milliseconds; 1.1 s segments start between milliseconds, so
/// only a date map refined across segments gives the generator's exact dates.
#[test]
fn detect_matches_generator_markers_at_29_97() {
    check_exact("29.97", "0", "2");
    check_exact("29.97", "8", "1.1");
}

/// The origin restarts on the same directory (the new segments follow a DISCONTINUITY, the
/// old ones stay listed): the detector posts the new run's onsets and none of the old ones
/// again. Then a restart with `--fresh`, whose media sequence goes down.
#[test]
fn detect_resumes_across_origin_restarts_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let run_once = |extra: &[&str]| {
        let mut args = vec![
            "--size",
            "320x240",
            "--duration",
            "8",
            "--event-mean",
            "1",
            "--event-duration",
            "0.5",
            "--list-size",
            "30",
            "--fps",
            "29.97",
        ];
        args.extend_from_slice(extra);
        let cfg = util::config(dir.path(), &args);
        let shared = std::sync::Arc::new(hls::state::Shared::default());
        util::pipeline(&cfg, shared.clone(), Default::default()).unwrap();
        shared.markers.since(None)
    };
    let offset = hls::config::DEFAULT_PTS_OFFSET.as_u64();
    let mut origin = FileOrigin::new(dir.path().to_path_buf(), "chessboard");
    let mut det = detector();

    let a = run_once(&["--seed", "1", "--start-number", "100"]);
    let first = drain(&mut det, &mut origin);
    assert_eq!(detected(&first, offset), expected(&a), "first run");

    // The restarted origin reloads the first run's markers (its JSON Lines log); the new ones
    // are those with higher ids.
    let b: Vec<Marker> = run_once(&["--seed", "2"])
        .into_iter()
        .filter(|m| a.iter().all(|old| m.id > old.id))
        .collect();
    let text = std::fs::read_to_string(dir.path().join("chessboard.m3u8")).unwrap();
    assert!(text.contains("#EXT-X-DISCONTINUITY"), "{text}");
    let second = drain(&mut det, &mut origin);
    assert_eq!(detected(&second, offset), expected(&b), "after the restart");

    // --fresh: numbering starts again at 0, below what the detector saw. Its dates must lie
    // after the old stream's (in real time they do; this run is faster than real time).
    let last = util::read_playlist(dir.path(), "chessboard");
    let last_date = last.segments.last().unwrap().program_date_time.unwrap();
    let wait = last_date.timestamp_millis() + 100
        - std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
    if wait > 0 {
        std::thread::sleep(Duration::from_millis(wait as u64));
    }
    let c = run_once(&["--seed", "3", "--fresh"]);
    assert_eq!(
        util::read_playlist(dir.path(), "chessboard").media_sequence,
        0
    );
    let third = drain(&mut det, &mut origin);
    assert_eq!(detected(&third, offset), expected(&c), "after --fresh");

    let all: Vec<_> = [&a, &b, &c].iter().flat_map(|m| expected(m)).collect();
    assert!(all.len() >= 6, "several events per run: {}", all.len());
    let posted: Vec<String> = origin
        .markers
        .iter()
        .map(|m| m.program_date_time.clone())
        .collect();
    assert_eq!(
        posted,
        all.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>(),
        "every onset once, in order"
    );
    assert_eq!(origin.repeats, 0);
}

/// A segment that is gone (404) is a gap: its onsets are lost, and a mint first frame after it
/// is not an onset; everything else is found. Posts that fail with 503 or lose their reply are
/// retried and still give exactly one marker each.
#[test]
fn detect_survives_gaps_failed_posts_and_an_origin_that_is_down() {
    let run = util::run(&run_args("30", "0", "2"));
    let markers = run.shared.markers.since(None);
    let pl = run.playlist();
    let dates: Vec<i64> = pl
        .segments
        .iter()
        .map(|s| s.program_date_time.unwrap().timestamp_millis())
        .collect();
    let ms = |m: &Marker| {
        chrono::DateTime::parse_from_rfc3339(&m.program_date_time)
            .unwrap()
            .timestamp_millis()
    };
    let segment_of = |m: &Marker| dates.iter().rposition(|&d| d <= ms(m)).unwrap();
    // The first segment after the first one that holds an onset goes missing.
    let k = (1..dates.len() - 1)
        .find(|&k| markers.iter().any(|m| segment_of(m) == k))
        .expect("some segment past the first holds an onset");
    let want: Vec<_> = markers
        .iter()
        .filter(|m| segment_of(m) != k && ms(m) != dates[k + 1])
        .cloned()
        .collect();
    assert!(want.len() < markers.len());

    let mut origin = FileOrigin::new(run.path(), "chessboard");
    origin.missing.insert(pl.segments[k].uri.clone());

    // Down: capped exponential back-off, then a 404 playlist counts as a failure too.
    let mut det = detector();
    let now = Instant::now();
    origin.down = true;
    let waits: Vec<u64> = (0..7)
        .map(|_| {
            let r: StepReport = det.step(&mut origin, now);
            assert!(r.failure.is_some() && r.onsets.is_empty());
            r.wait.as_millis() as u64
        })
        .collect();
    assert_eq!(waits, [250, 500, 1000, 2000, 4000, 8000, 8000]);
    origin.down = false;
    origin.no_playlist = true;
    assert_eq!(det.step(&mut origin, now).wait, Duration::from_secs(8));
    origin.no_playlist = false;

    origin.fail_posts = 3;
    origin.lose_replies = 2;
    let onsets = drain(&mut det, &mut origin);
    let offset = hls::config::DEFAULT_PTS_OFFSET.as_u64();
    assert_eq!(detected(&onsets, offset), expected(&want));
    let posted: Vec<String> = origin
        .markers
        .iter()
        .map(|m| m.program_date_time.clone())
        .collect();
    assert_eq!(
        posted,
        want.iter()
            .map(|m| m.program_date_time.clone())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        origin.repeats, 2,
        "the two lost replies were retried and answered 200"
    );

    // Reloads follow RFC 8216 §6.3.4: unchanged playlist, half the target duration.
    let r = det.step(&mut origin, Instant::now());
    assert!(r.onsets.is_empty() && r.segments.is_empty() && r.ended);
    assert_eq!(r.wait, Duration::from_secs(1));
}

/// The `hls-detect` binary of the detector's own crate (detect/), beside the streamer's in the
/// same target directory: plain `cargo test` builds it (for detect/tests/cli.rs); alone, this
/// test needs `cargo build -p hls-detect` first.
fn hls_detect() -> std::process::Command {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_hls-streamer"))
        .with_file_name(format!("hls-detect{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} is not built: run plain `cargo test`, or `cargo build -p hls-detect` first",
        bin.display()
    );
    let mut c = std::process::Command::new(bin);
    c.env_remove("HLS_MARKER_TOKEN").env_remove("RUST_LOG");
    c
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The mint test of the independent oracle: the middle of the block, BT.601 limited mint
/// (Y 170, Cb 166, Cr 16) against the board's greys (Cb = Cr = 128).
fn oracle_is_mint((_, u, v): (u8, u8, u8)) -> bool {
    (i32::from(u) - 166).abs() < 25 && (i32::from(v) - 16).abs() < 25
}

/// The mint onsets of the whole video in the playlist, decoded here independently of the
/// detector: (date of the frame, RFC 3339 rounded down to the ms). Per run of segments between
/// discontinuities, wall ticks = PTS + C; each segment's date (rounded down) bounds C from
/// below, and the segments that start on a whole millisecond (at 30 fps with 1 s segments, all
/// those cut on a second boundary) give it exactly: C is the largest bound.
fn oracle_onsets(dir: &std::path::Path, playlist: &str) -> Vec<i64> {
    let pl = m3u8_rs::parse_media_playlist_res(playlist.as_bytes()).unwrap();
    // (segment date ms, pts of its pictures in order, mint of each)
    let mut segs = Vec::new();
    for s in &pl.segments {
        let bytes = std::fs::read(dir.join(&s.uri)).unwrap();
        let r = hls_testkit::check::read_segment(&bytes, None).unwrap();
        let aus: Vec<_> = r
            .aus
            .iter()
            .map(|a| (a.pts, a.keyframe, a.payload.clone()))
            .collect();
        let pixels = crate::decode_back::decode_top_left(&aus, 10, 10);
        let mut pts: Vec<u64> = r.aus.iter().map(|a| a.pts).collect();
        pts.sort_unstable();
        assert_eq!(pixels.len(), pts.len(), "{}", s.uri);
        let mint: Vec<bool> = pixels.into_iter().map(oracle_is_mint).collect();
        segs.push((
            s.discontinuity,
            s.program_date_time.unwrap().timestamp_millis(),
            pts,
            mint,
        ));
    }
    let mut run_c = vec![0i64; segs.len()];
    let mut start = 0;
    for i in 0..=segs.len() {
        if i == segs.len() || (i > start && segs[i].0) {
            let c = segs[start..i]
                .iter()
                .map(|(_, date, pts, _)| date * 90 - pts[0] as i64)
                .max()
                .unwrap();
            run_c[start..i].fill(c);
            start = i;
        }
    }
    let mut prev = None;
    let mut out = Vec::new();
    for (k, (_, _, pts, mint)) in segs.iter().enumerate() {
        for (p, &m) in pts.iter().zip(mint) {
            if m && prev == Some(false) {
                out.push((*p as i64 + run_c[k]).div_euclid(90));
            }
            prev = Some(m);
        }
    }
    out
}

fn get_markers(base: &str) -> Vec<serde_json::Value> {
    let text = ureq::get(&format!("{base}/markers"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["markers"].as_array().unwrap().clone()
}

fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {secs} s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn sigterm(child: &std::process::Child) {
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// End to end on 127.0.0.1: the real streamer (generator markers off) and the real detector;
/// the origin is stopped midway and restarted on the same directory. The markers the server
/// holds are exactly the mint onsets of the video, decoded here independently, frame for frame,
/// each once.
#[test]
fn hls_detect_live_markers_equal_the_onsets_across_an_origin_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port();
    let base = format!("http://127.0.0.1:{port}");
    let token = "live-test-token-0123";
    let playlist = dir.path().join("chessboard.m3u8");
    let start = |seed: &str, linger: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_hls-streamer"))
            .args(["--size", "320x240", "--hls-time", "1", "--list-size", "60"])
            .args([
                "--event-mean",
                "1.2",
                "--event-duration",
                "0.4",
                "--seed",
                seed,
            ])
            .args([
                "--no-builtin-markers",
                "--marker-token",
                token,
                "--linger",
                linger,
            ])
            .args(["--bind", &format!("127.0.0.1:{port}"), "--out-dir"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut origin = start("1", "0");
    wait_for("first playlist", 30, || playlist.exists());
    let log_path = dir.path().join("detect.log");
    let mut detector = hls_detect()
        .args(["--base", &base])
        .env("HLS_MARKER_TOKEN", token)
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(10));
    sigterm(&origin);
    assert!(origin.wait().unwrap().success());
    std::thread::sleep(Duration::from_millis(1500)); // the origin is down
    let mut origin = start("2", "0");
    std::thread::sleep(Duration::from_secs(10));
    // What the origin has published by now; the detector reloads within a target duration
    // (1 s) and posts at once. Markers are compared up to the end of this playlist.
    let snapshot = std::fs::read_to_string(&playlist).unwrap();
    std::thread::sleep(Duration::from_millis(3000));
    let markers = get_markers(&base);
    sigterm(&origin);
    assert!(origin.wait().unwrap().success());
    sigterm(&detector);
    assert!(detector.wait().unwrap().success());

    let pl = m3u8_rs::parse_media_playlist_res(snapshot.as_bytes()).unwrap();
    assert!(
        pl.segments.iter().any(|s| s.discontinuity),
        "the restart is in the playlist"
    );
    let last = pl.segments.last().unwrap();
    let end_ms = last.program_date_time.unwrap().timestamp_millis()
        + (f64::from(last.duration) * 1000.0) as i64;
    let want = oracle_onsets(dir.path(), &snapshot);
    assert!(want.len() >= 6, "several onsets in 20 s: {want:?}");
    let ms = |m: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(m["program_date_time"].as_str().unwrap())
            .unwrap()
            .timestamp_millis()
    };
    let got: Vec<i64> = markers.iter().map(ms).filter(|&d| d < end_ms).collect();
    assert!(markers.iter().all(|m| m["source"] == "hls-detect"));
    let log = std::fs::read_to_string(&log_path).unwrap();
    // Frame for frame: frames are 33 ms apart, and a date derived from a restarted run's
    // playlist may lie up to 1 ms before the server's own date of the same frame (the first
    // segment after a restart has its date rounded down, the ones after it add exact
    // durations to it), so within 1 ms is the same frame.
    let same = want.len() == got.len()
        && want
            .iter()
            .zip(&got)
            .all(|(w, g)| (0..=1).contains(&(g - w)));
    assert!(
        same,
        "the server's markers are the video's onsets\nwant {want:?}\ngot  {got:?}\n{log}\n{snapshot}"
    );
    let ids: HashSet<u64> = markers.iter().map(|m| m["id"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), markers.len(), "no duplicate");
    let keys: HashSet<i64> = markers.iter().map(ms).collect();
    assert_eq!(keys.len(), markers.len(), "one marker per frame");
    assert!(!log.contains(token), "the token is not logged");
}

/// `hls-detect --name` on a server with two streams (`--config`, generator markers off): it
/// reads the named stream and posts to that stream's own route, `/streams/NAME/markers`. Its
/// markers are exactly that stream's mint onsets (decoded here), and none lands in the other
/// stream, which is the server's first (`/markers`).
#[test]
fn hls_detect_name_posts_to_that_stream_only() {
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port();
    let base = format!("http://127.0.0.1:{port}");
    let token = "named-test-token-0123";
    let media = dir.path().join("media");
    let stream = |name: &str, seed: u32| {
        format!(
            "[[stream]]\nname = \"{name}\"\nsize = \"320x240\"\nhls_time = 1\nlist_size = 60\n\
             event_mean = 1.2\nevent_duration = 0.4\nseed = {seed}\nbuiltin_markers = false\n"
        )
    };
    let config = dir.path().join("streams.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nbind = \"127.0.0.1:{port}\"\nout_dir = {:?}\nmarker_token = \"{token}\"\n\
             linger = 0\n{}{}",
            media.display().to_string(),
            stream("north", 3),
            stream("south", 4),
        ),
    )
    .unwrap();
    let mut origin = std::process::Command::new(env!("CARGO_BIN_EXE_hls-streamer"))
        .arg("--config")
        .arg(&config)
        .env_remove("HLS_MARKER_TOKEN")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let playlist = media.join("south.m3u8");
    wait_for("south's first playlist", 30, || playlist.exists());
    let log_path = dir.path().join("detect.log");
    let mut detector = hls_detect()
        .args(["--base", &base, "--name", "south"])
        .env("HLS_MARKER_TOKEN", token)
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(9));
    let snapshot = std::fs::read_to_string(&playlist).unwrap();
    // The detector reloads within a target duration (1 s) and posts at once.
    std::thread::sleep(Duration::from_millis(3000));
    let south = get_markers(&format!("{base}/streams/south"));
    let north = get_markers(&format!("{base}/streams/north"));
    let first = get_markers(&base);
    sigterm(&detector);
    assert!(detector.wait().unwrap().success());
    sigterm(&origin);
    assert!(origin.wait().unwrap().success());

    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains(&format!("{base}/streams/south/markers")),
        "it says where it posts: {log}"
    );
    assert!(north.is_empty() && first.is_empty(), "north: {north:?}");
    let pl = m3u8_rs::parse_media_playlist_res(snapshot.as_bytes()).unwrap();
    let last = pl.segments.last().unwrap();
    let end_ms = last.program_date_time.unwrap().timestamp_millis()
        + (f64::from(last.duration) * 1000.0) as i64;
    let want = oracle_onsets(&media, &snapshot);
    assert!(want.len() >= 4, "several onsets in 9 s: {want:?}");
    let ms = |m: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(m["program_date_time"].as_str().unwrap())
            .unwrap()
            .timestamp_millis()
    };
    assert!(south.iter().all(|m| m["source"] == "hls-detect"));
    let got: Vec<i64> = south.iter().map(ms).filter(|&d| d < end_ms).collect();
    assert_eq!(got, want, "south's markers are its video's onsets\n{log}");
    assert!(!log.contains(token), "the token is not logged");
}
