//! Several streams in one process (`--config`): two RTSP cameras (GStreamer's RTSP server) and a
//! checkerboard. Each playlist is conformant and decodes; `/streams` describes each; a marker
//! posted to one stream appears only there, with that stream's own token; one camera stopped and
//! started again leaves the other streams untouched (no discontinuity, no dropped frame, PTS
//! continuous) while `/healthz` names it; SIGHUP removes a stream (which ends with
//! `EXT-X-ENDLIST`) and adds one without touching the others; a file that no longer parses is
//! refused on SIGHUP with the running set kept; SIGTERM ends every stream cleanly.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;

use super::*;

/// The binary running a configuration file; killed when dropped.
struct Origin {
    child: Child,
    addr: SocketAddr,
    /// Its log lines, as they come.
    lines: Receiver<String>,
}

impl Drop for Origin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Origin {
    fn start(file: &Path) -> Origin {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hls-streamer"))
            .arg("--config")
            .arg(file)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("the server says where it listens");
            if let Some(rest) = line.split("streams at http://").nth(1) {
                break rest.split('/').next().unwrap().parse().unwrap();
            }
        };
        Origin {
            child,
            addr,
            lines: rx,
        }
    }

    fn json(&self, path: &str) -> (u16, serde_json::Value) {
        let (status, body) = util::http(self.addr, "GET", path, "", "");
        let v = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
        (status, v)
    }

    /// `GET /streams`: each stream's entry by name, in order.
    fn streams(&self) -> Vec<serde_json::Value> {
        let (status, v) = self.json("/streams");
        assert_eq!(status, 200);
        v["streams"].as_array().unwrap().clone()
    }

    fn state_of(&self, name: &str) -> Option<String> {
        self.streams()
            .into_iter()
            .find(|s| s["name"] == name)
            .map(|s| s["state"].as_str().unwrap().to_owned())
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig}");
    }

    /// Waits (at most `within`) for a log line containing `text`.
    fn logged(&self, text: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            if line.contains(text) {
                return true;
            }
        }
        false
    }
}

fn write_config(file: &Path, out: &Path, streams: &str) {
    let mut f = std::fs::File::create(file).unwrap();
    write!(
        f,
        "[server]\nbind = \"127.0.0.1:0\"\nout_dir = {:?}\n\n{streams}",
        out.display().to_string()
    )
    .unwrap();
}

fn board(name: &str) -> String {
    format!("[[stream]]\nname = \"{name}\"\nsize = \"320x180\"\nhls_time = 1\nlist_size = 60\n\n")
}

fn camera(name: &str, url: &str, extra: &str) -> String {
    format!(
        "[[stream]]\nname = \"{name}\"\ninput = \"{url}\"\nhls_time = 1\nlist_size = 60\n{extra}\n"
    )
}

fn playlist(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{name}.m3u8"))).unwrap_or_default()
}

#[test]
fn cameras_and_a_checkerboard_in_one_process_stay_isolated() {
    if !gstreamer_available() {
        return;
    }
    let cam_a = start_server(&["--key-int", "30"]);
    let cam_b = start_server(&["--key-int", "30"]);
    let port_a = cam_a.port.to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("video");
    let file: PathBuf = dir.path().join("streams.toml");
    let first = format!(
        "{}{}{}",
        board("board"),
        camera("cam-a", &cam_a.url(), ""),
        camera("cam-b", &cam_b.url(), "marker_token = \"cam-b-token-42\"\n"),
    );
    write_config(&file, &out, &first);
    let origin = Origin::start(&file);

    // Every stream live, each described.
    let all_live = |o: &Origin, names: &[&str]| {
        let s = o.streams();
        s.len() == names.len()
            && s.iter()
                .zip(names)
                .all(|(e, n)| e["name"] == *n && e["state"] == "live")
    };
    assert!(
        wait_for(Duration::from_secs(30), || all_live(
            &origin,
            &["board", "cam-a", "cam-b"]
        )),
        "three streams live within 30 s: {:?}",
        origin.streams()
    );
    assert!(
        wait_for(Duration::from_secs(10), || origin
            .streams()
            .iter()
            .all(|e| e["codecs"].is_string())),
        "the picture's figures once a segment is out"
    );
    for e in origin.streams() {
        let name = e["name"].as_str().unwrap();
        let size = if name == "board" {
            "320x180"
        } else {
            "320x240"
        };
        assert_eq!(e["resolution"], size, "{e}");
        assert_eq!(
            e["frame_rate"],
            serde_json::json!({"num": 30, "den": 1}),
            "{e}"
        );
        assert!(e["codecs"].as_str().unwrap().starts_with("avc1."), "{e}");
        assert!(e["bitrate_bps"].as_u64().unwrap() > 10_000, "{e}");
        if name == "board" {
            assert!(e["latency_secs"].as_f64().unwrap() > 0.0, "{e}");
        } else {
            // A passthrough camera's hold-back follows its GOP: not claimed from the flags.
            assert!(e["latency_secs"].is_null(), "{e}");
        }
        assert_eq!(e["playlist"], format!("/video/{name}.m3u8"));
        // The playlist over HTTP parses.
        let (status, text) = util::http(origin.addr, "GET", &format!("/video/{name}.m3u8"), "", "");
        assert_eq!(status, 200);
        match m3u8_rs::parse_playlist_res(text.as_bytes()) {
            Ok(m3u8_rs::Playlist::MediaPlaylist(pl)) => assert!(!pl.segments.is_empty()),
            other => panic!("{name}: {other:?}"),
        }
        let (status, info) = origin.json(&format!("/streams/{name}"));
        assert_eq!((status, &info["name"]), (200, &serde_json::json!(name)));
    }
    assert_eq!(origin.json("/healthz").0, 200);

    // A marker posted to cam-b, with cam-b's token, is cam-b's only.
    let post = |name: &str, token: &str| {
        let at = chrono::DateTime::<chrono::Utc>::from(
            std::time::SystemTime::now() - Duration::from_secs(1),
        )
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        util::http(
            origin.addr,
            "POST",
            &format!("/streams/{name}/markers"),
            &format!("Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"),
            &format!(r#"{{"text": "gate opened", "source": "test", "program_date_time": "{at}"}}"#),
        )
    };
    let (status, body) = post("cam-b", "cam-b-token-42");
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        post("cam-a", "cam-b-token-42").0,
        403,
        "cam-a has no token (the server has none): posting is off there"
    );
    let has_it = |name: &str| {
        let (status, v) = origin.json(&format!("/streams/{name}/markers"));
        assert_eq!(status, 200);
        v["markers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["text"] == "gate opened")
    };
    assert!(has_it("cam-b"));
    assert!(!has_it("cam-a") && !has_it("board"));
    assert_eq!(origin.json("/streams/nope/markers").0, 404);

    // Camera A goes away: only cam-a is unwell; it comes back after a discontinuity.
    drop(cam_a);
    assert!(
        wait_for(Duration::from_secs(15), || {
            let (status, v) = origin.json("/healthz");
            status == 503 && v["unwell"] == serde_json::json!(["cam-a"])
        }),
        "/healthz names cam-a: {}",
        origin.json("/healthz").1
    );
    assert_eq!(origin.state_of("board").as_deref(), Some("live"));
    assert_eq!(origin.state_of("cam-b").as_deref(), Some("live"));
    let _cam_a = start_server(&["--key-int", "30", "--port", &port_a]);
    assert!(
        wait_for(Duration::from_secs(20), || {
            playlist(&out, "cam-a").contains("#EXT-X-DISCONTINUITY")
                && origin.state_of("cam-a").as_deref() == Some("live")
        }),
        "cam-a back after a discontinuity"
    );

    // SIGHUP: cam-b removed, board-b added, the rest untouched.
    let second = format!(
        "{}{}{}",
        board("board"),
        camera("cam-a", &_cam_a.url(), ""),
        board("board-b"),
    );
    // The camera's URL changed with its restart only if its port did; it did not.
    assert!(second.contains(&format!(":{port_a}/")));
    let second = second.replace(&_cam_a.url(), &format!("rtsp://127.0.0.1:{port_a}/test"));
    write_config(&file, &out, &second);
    origin.signal("HUP");
    assert!(
        wait_for(Duration::from_secs(15), || playlist(&out, "cam-b")
            .contains("#EXT-X-ENDLIST")),
        "the removed stream ends cleanly: {}",
        origin.lines.try_iter().collect::<Vec<_>>().join("\n")
    );
    assert!(
        wait_for(Duration::from_secs(20), || all_live(
            &origin,
            &["board", "cam-a", "board-b"]
        )),
        "board-b added: {:?}",
        origin.streams()
    );
    assert_eq!(origin.json("/streams/cam-b").0, 404, "cam-b is gone");

    // A file that no longer parses: refused, the running set kept.
    std::fs::write(&file, "[[stream]]\nname = \"x\"\nfps = \"fast\"\n").unwrap();
    origin.signal("HUP");
    assert!(
        origin.logged("configuration refused", Duration::from_secs(10)),
        "the refusal is logged"
    );
    assert_eq!(origin.streams().len(), 3);

    // The untouched checkerboard kept every frame through all of it.
    let (_, health) = origin.json("/healthz");
    assert_eq!(health["streams"]["board"]["frames_dropped"], 0, "{health}");

    // SIGTERM: every stream ends cleanly, the process exits 0.
    origin.signal("TERM");
    let mut origin = origin;
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = origin.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "exits within 15 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    for name in ["board", "cam-a", "cam-b", "board-b"] {
        assert!(
            playlist(&out, name).contains("#EXT-X-ENDLIST"),
            "{name} ended cleanly"
        );
    }
    // The checkerboard and cam-b: one run each, no discontinuity, PTS continuous, decodable.
    for (name, w, h) in [("board", 320, 180), ("cam-b", 320, 240)] {
        let (pl, segs) = read_segments_of(&out, name);
        assert!(
            pl.segments.iter().all(|s| !s.discontinuity),
            "{name} was never interrupted"
        );
        check_timing(&segs);
        decode_all(&segs, w, h);
    }
    // cam-a: two runs around its camera's restart, each decodable.
    let (_, segs) = read_segments_of(&out, "cam-a");
    assert_eq!(segs.iter().filter(|s| s.discontinuity).count(), 1);
    decode_all(&segs, 320, 240);
}
