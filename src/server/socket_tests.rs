//! Server tests over a real TCP socket: HEAD on the wire, raw hostile request lines, graceful
//! stop, a taken port, stalled clients. The route tests without a socket are in `tests.rs`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use super::tests::{
    assert_no_leak, config, fixture, push_marker, segment_bytes, HOSTILE_URIS, PLAYLIST,
};
use super::*;
use crate::clock::WallClock;
use crate::time::{Duration90k, StreamTime};

/// A server on 127.0.0.1:<free port> under a plain multi-threaded tokio runtime (what
/// `#[tokio::main]` builds), stopped when dropped.
pub(super) struct Live {
    pub(super) addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: std::sync::mpsc::Receiver<Result<(), crate::error::Error>>,
    _rt: std::thread::JoinHandle<()>,
}

impl Live {
    pub(super) fn start(cfg: ServerConfig, shared: Arc<Shared>) -> Live {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (tx, done) = std::sync::mpsc::channel();
        let rt = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime");
            let r = rt.block_on(serve_listener(cfg, shared, listener, async move {
                let _ = stopped.await;
            }));
            let _ = tx.send(r);
        });
        Live {
            addr,
            stop: Some(stop),
            done,
            _rt: rt,
        }
    }

    /// Sends `request` verbatim, reads until the server closes: (status, head, body).
    fn raw(&self, request: &str) -> (u16, String, Vec<u8>) {
        let mut s = TcpStream::connect(self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s.write_all(request.as_bytes()).expect("send");
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).expect("read");
        let split = buf
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("end of head");
        let head = String::from_utf8_lossy(&buf[..split]).into_owned();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        (status, head, buf[split + 4..].to_vec())
    }

    pub(super) fn get(&self, method: &str, path: &str) -> (u16, String, Vec<u8>) {
        self.raw(&format!(
            "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
        ))
    }

    pub(super) fn stop(mut self) -> Duration {
        let t = Instant::now();
        self.stop
            .take()
            .expect("running")
            .send(())
            .expect("server listening for stop");
        self.done
            .recv_timeout(Duration::from_secs(10))
            .expect("stopped")
            .expect("clean stop");
        t.elapsed()
    }
}

fn content_length(head: &str) -> Option<usize> {
    head.lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_owned)
        })
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn over_tcp_head_has_no_body_and_the_get_length() {
    let f = fixture();
    let live = Live::start(config(&f.media), f.shared.clone());
    for path in [
        "/",
        "/video/chessboard.m3u8",
        "/video/chessboard0.ts",
        "/static/player.css",
    ] {
        let (gs, ghead, gbody) = live.get("GET", path);
        let (hs, hhead, hbody) = live.get("HEAD", path);
        assert_eq!((gs, hs), (200, 200), "{path}");
        assert_eq!(content_length(&ghead), Some(gbody.len()), "{path}: {ghead}");
        assert_eq!(content_length(&hhead), Some(gbody.len()), "{path}: {hhead}");
        assert!(hbody.is_empty(), "{path}: HEAD sent a body");
    }
    assert!(live.stop() < Duration::from_secs(SHUTDOWN_TIMEOUT_SECS + 2));
}

#[test]
fn over_tcp_hostile_request_lines_never_leak() {
    let f = fixture();
    let live = Live::start(config(&f.media), f.shared.clone());
    let raw_only = [
        "/video/..\\secret.txt",
        "/video/chessboard1.ts\\..\\..\\secret.txt",
        "/static/..\\..\\secret.txt",
        "http://test/video/../secret.txt",
        "http://test/../secret.txt",
        "//video/../secret.txt",
        "/video/chessboard.m3u8/../../secret.txt",
        "/video/%2e%2e/%2e%2e/secret.txt",
    ];
    for uri in HOSTILE_URIS.iter().chain(&raw_only) {
        let (status, _, body) = live.get("GET", uri);
        assert_no_leak(uri, status, &body);
    }
    live.stop();
}

#[test]
fn serve_reports_a_taken_port_clearly() {
    let f = fixture();
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let cfg = ServerConfig {
        bind: taken.local_addr().expect("addr"),
        ..config(&f.media)
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let err = rt
        .block_on(serve(cfg.clone(), f.shared.clone(), std::future::pending()))
        .expect_err("port is taken");
    assert_eq!(err.kind(), crate::error::ErrorKind::Unavailable);
    assert!(err.to_string().contains(&cfg.bind.to_string()), "{err}");
    let bad = ServerConfig {
        cors_origins: vec!["*".into()],
        ..cfg
    };
    let err = rt
        .block_on(serve(bad, f.shared.clone(), std::future::pending()))
        .expect_err("*");
    assert_eq!(err.kind(), crate::error::ErrorKind::InvalidArgument);
}

#[test]
fn stalled_clients_block_neither_other_clients_nor_the_writers() {
    let f = fixture();
    // A 4 MiB segment: far more than the socket buffers of a client that never reads.
    std::fs::write(
        f.media.join("chessboard7.ts"),
        segment_bytes(7, 4 * 1024 * 1024 / 188),
    )
    .expect("big segment");
    let live = Live::start(config(&f.media), f.shared.clone());
    let stalled: Vec<TcpStream> = (0..64)
        .map(|_| {
            let mut s = TcpStream::connect(live.addr).expect("connect");
            s.write_all(b"GET /video/chessboard7.ts HTTP/1.1\r\nHost: t\r\n\r\n")
                .expect("send");
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));

    // The media threads' side: state updates never wait on the server.
    let anchor = WallClock::from_unix_millis(0);
    let t = Instant::now();
    for i in 0..1000 {
        push_marker(
            &f.shared,
            StreamTime::ZERO + Duration90k::from_secs(i),
            Duration90k::ZERO,
            anchor,
        );
        f.shared.update_status(|s| s.segments_written += 1);
    }
    assert!(
        t.elapsed() < Duration::from_millis(200),
        "writers waited {:?}",
        t.elapsed()
    );
    // A playlist rewrite by rename while segments are being sent.
    let tmp = f.media.join(".chessboard.m3u8.tmp");
    std::fs::write(&tmp, PLAYLIST.replace("chessboard2.ts", "chessboard7.ts")).expect("write");
    std::fs::rename(&tmp, f.media.join("chessboard.m3u8")).expect("rename");

    let t = Instant::now();
    let (status, _, body) = live.get("GET", "/video/chessboard.m3u8");
    assert_eq!(status, 200);
    assert!(
        String::from_utf8_lossy(&body).contains("chessboard7.ts"),
        "sees the new playlist"
    );
    let (status, _, body) = live.get("GET", "/markers?ts_start=998");
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("\"id\":1000"));
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "other clients waited {:?}",
        t.elapsed()
    );
    drop(stalled);
    live.stop();
}
