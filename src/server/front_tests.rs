//! The front door over real sockets: it answers exactly what actix-web answers (status, headers,
//! body) for every media request it takes, keeps connections alive and pipelined, hands a
//! connection over mid-way without losing a byte, sends segments from their files, and closes
//! what it should when it should.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use actix_web::test as actest;

use std::time::SystemTime;

use super::super::socket_tests::Live;
use super::super::tests::{call, config, fixture, segment_bytes, Fixture, PLAYLIST};
use super::super::*;
use super::{write_response, Answered};
use crate::playlist::LiveEdge;

const ORIGIN: &str = "https://viewer.example";
const FRONT: &str = "x-answered-by";

/// An answer as read off the socket.
#[derive(Debug)]
struct Answer {
    status: u16,
    /// Lower-case names, in order.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Answered by the front door's own media code (from memory, or a segment's file).
    fn by_front(&self) -> bool {
        self.header(FRONT) == Some("front-media")
    }

    /// Answered by the routes, called by the front door (the connection stayed with it).
    fn by_routes(&self) -> bool {
        self.header(FRONT) == Some("front-routes")
    }

    /// Answered by actix-web's dispatcher (the connection was handed over).
    fn handed_over(&self) -> bool {
        self.header(FRONT).is_none()
    }
}

/// A client connection that reads one answer at a time (keep-alive, pipelining).
struct Client {
    s: TcpStream,
    pending: Vec<u8>,
}

impl Client {
    fn connect(live: &Live) -> Client {
        let s = TcpStream::connect(live.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        Client {
            s,
            pending: Vec::new(),
        }
    }

    fn send(&mut self, raw: &str) {
        self.s.write_all(raw.as_bytes()).expect("send");
    }

    fn more(&mut self) -> usize {
        let mut chunk = [0u8; 64 * 1024];
        let n = self.s.read(&mut chunk).expect("read");
        self.pending.extend_from_slice(&chunk[..n]);
        n
    }

    /// Reads one answer; `head_only` for the answer to a `HEAD`.
    fn answer(&mut self, head_only: bool) -> Answer {
        let end = loop {
            if let Some(i) = self.pending.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            assert!(self.more() > 0, "closed before a whole head");
        };
        let head = String::from_utf8(self.pending[..end].to_vec()).expect("ASCII head");
        self.pending.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .expect("status line");
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(':').expect("header line");
                (n.to_ascii_lowercase(), v.trim().to_owned())
            })
            .collect();
        let mut a = Answer {
            status,
            headers,
            body: Vec::new(),
        };
        let len: usize = match a.header("content-length") {
            Some(v) if !head_only => v.parse().expect("length"),
            _ => 0,
        };
        while self.pending.len() < len {
            assert!(self.more() > 0, "closed inside a body");
        }
        a.body = self.pending.drain(..len).collect();
        a
    }

    /// True when the server has closed the connection (and sent nothing more).
    fn closed(&mut self) -> bool {
        self.pending.is_empty() && self.more() == 0
    }
}

fn get(path: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n{extra}\r\n")
}

/// The fixture with this run's media in memory, as the publisher leaves it: the playlist (and
/// a delta), segments 0-2 with their files, part 0 of segment 3, the live edge there.
fn live_media(cors: bool) -> (Fixture, ServerConfig) {
    let f = fixture();
    let media = &f.shared.media;
    media.set_low_latency(true);
    media.put_playlists(PLAYLIST, Some("#EXTM3U\n#EXT-X-VERSION:9\n"));
    let published = SystemTime::now() - Duration::from_secs(3);
    for seq in 0..3u8 {
        let path = f.media.join(format!("chessboard{seq}.ts"));
        let file = std::fs::File::open(&path).expect("segment file");
        let bytes = std::fs::read(&path).expect("segment");
        media.put_segment(
            u64::from(seq),
            web::Bytes::from(bytes),
            published,
            Some(file),
        );
    }
    media.put_part(3, 0, web::Bytes::from(segment_bytes(30, 7)), published);
    media.set_edge(LiveEdge {
        open_sequence: 3,
        open_parts: 1,
        ended: false,
        segments: 3,
        list_size: 0,
    });
    let mut cfg = config(&f.media);
    if cors {
        cfg.cors_origins = vec![ORIGIN.to_owned()];
    }
    (f, cfg)
}

/// The same request through actix-web's test service (no socket, no dispatcher).
fn through_actix(
    cfg: &ServerConfig,
    f: &Fixture,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
) -> Answer {
    actix_web::rt::System::new().block_on(async {
        let mut req = actest::TestRequest::default()
            .method(method.parse().expect("method"))
            .uri(path);
        for (n, v) in extra {
            req = req.insert_header((*n, *v));
        }
        let res = call(cfg, &f.shared, req).await;
        let status = res.status().as_u16();
        let headers = res
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().expect("ASCII").to_owned()))
            .collect();
        let body = actest::read_body(res).await.to_vec();
        Answer {
            status,
            headers,
            body,
        }
    })
}

/// The headers both write: all but what only a connection's writer adds.
fn comparable(a: &Answer) -> Vec<(String, String)> {
    let mut h: Vec<_> = a
        .headers
        .iter()
        .filter(|(n, _)| !matches!(n.as_str(), "date" | "content-length" | "connection" | FRONT))
        // max-age counts down by the second, and the two answers may straddle one.
        .map(|(n, v)| match n.as_str() {
            "cache-control" if v.contains("immutable") => (n.clone(), "<remaining>".to_owned()),
            _ => (n.clone(), v.clone()),
        })
        .collect();
    h.sort();
    h
}

/// A request: method, path and query, extra headers.
type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>);

/// Sends `case` on `c` and checks the answer against actix-web's for the same request: status,
/// headers, body (a `HEAD`: the length a `GET` would have).
fn same_as_actix(
    c: &mut Client,
    cfg: &ServerConfig,
    f: &Fixture,
    case: &Case,
    note: &str,
) -> Answer {
    let (method, path, extra) = case;
    let lines: String = extra.iter().map(|(n, v)| format!("{n}: {v}\r\n")).collect();
    c.send(&format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\n{lines}\r\n"
    ));
    let ours = c.answer(*method == "HEAD");
    let theirs = through_actix(cfg, f, method, path, extra);
    let what = format!("{method} {path} {extra:?} {note}");
    assert_eq!(ours.status, theirs.status, "{what}");
    assert_eq!(comparable(&ours), comparable(&theirs), "{what}");
    if *method == "HEAD" {
        assert!(ours.body.is_empty(), "{what}");
        if let Some(len) = ours.header("content-length") {
            assert_eq!(len, theirs.body.len().to_string(), "{what}");
        }
    } else {
        assert_eq!(ours.body, theirs.body, "{what}");
    }
    assert!(ours.header("date").is_some(), "{what}");
    ours
}

#[test]
fn the_front_answers_media_exactly_as_actix_does() {
    for cors in [false, true] {
        let (f, cfg) = live_media(cors);
        let etag = {
            let a = through_actix(&cfg, &f, "GET", "/video/chessboard2.ts", &[]);
            a.header("etag").expect("etag").to_owned()
        };
        let cases: Vec<Case> = vec![
            ("GET", "/video/chessboard.m3u8", vec![]),
            (
                "GET",
                "/video/chessboard.m3u8",
                vec![("accept-encoding", "gzip")],
            ),
            ("GET", "/video/chessboard.m3u8?_HLS_msn=2", vec![]),
            (
                "GET",
                "/video/chessboard.m3u8?_HLS_msn=3&_HLS_part=0&_HLS_skip=YES",
                vec![],
            ),
            ("GET", "/video/chessboard.m3u8?_HLS_msn=x", vec![]),
            ("GET", "/video/chessboard.m3u8?_HLS_msn=9", vec![]),
            ("HEAD", "/video/chessboard.m3u8", vec![]),
            ("GET", "/video/chessboard2.ts", vec![]),
            ("GET", "/video/chessboard2.ts?cache-buster=1", vec![]),
            ("HEAD", "/video/chessboard1.ts", vec![]),
            (
                "GET",
                "/video/chessboard0.ts",
                vec![("range", "bytes=188-375")],
            ),
            (
                "GET",
                "/video/chessboard0.ts",
                vec![("range", "bytes=-100")],
            ),
            (
                "GET",
                "/video/chessboard0.ts",
                vec![("range", "bytes=99999-")],
            ),
            (
                "GET",
                "/video/chessboard2.ts",
                vec![("if-none-match", etag.as_str())],
            ),
            (
                "GET",
                "/video/chessboard2.ts",
                vec![("if-range", "\"other\""), ("range", "bytes=0-9")],
            ),
            ("GET", "/video/chessboard3.0.ts", vec![]),
            ("GET", "/video/chessboard2.0.ts", vec![]),
            ("GET", "/video/chessboard2.ts", vec![("origin", ORIGIN)]),
            (
                "GET",
                "/video/chessboard.m3u8",
                vec![("origin", "https://other.example")],
            ),
        ];
        let live = Live::start(cfg.clone(), f.shared.clone());
        let mut c = Client::connect(&live);
        for case in &cases {
            let ours = same_as_actix(&mut c, &cfg, &f, case, &format!("cors {cors}"));
            assert!(ours.by_front(), "{case:?}: not answered from memory");
        }
        live.stop();
    }
}

#[test]
fn pipelined_requests_then_a_hand_over_on_one_connection() {
    let (f, cfg) = live_media(false);
    let seg = std::fs::read(f.media.join("chessboard1.ts")).expect("segment");
    let live = Live::start(cfg, f.shared.clone());
    let mut c = Client::connect(&live);
    // Three requests in one write: answered in order.
    c.send(&format!(
        "{}{}{}",
        get("/video/chessboard1.ts", ""),
        get("/video/chessboard.m3u8", ""),
        get("/video/chessboard3.0.ts", "")
    ));
    let a = c.answer(false);
    assert_eq!((a.status, a.by_front()), (200, true));
    assert_eq!(a.body, seg);
    let a = c.answer(false);
    assert_eq!((a.status, a.by_front()), (200, true));
    assert_eq!(a.body, PLAYLIST.as_bytes());
    let a = c.answer(false);
    assert_eq!((a.status, a.by_front()), (200, true));
    assert_eq!(a.body, segment_bytes(30, 7));
    // Not media: the routes answer it, and the connection stays with the door.
    c.send(&format!(
        "{}{}{}",
        get("/markers", ""),
        get("/video/chessboard%31.ts", ""),
        get("/video/chessboard1.ts", "")
    ));
    let a = c.answer(false);
    assert_eq!((a.status, a.by_routes()), (200, true));
    assert!(String::from_utf8_lossy(&a.body).contains("\"markers\""));
    // An escaped spelling is the same file: decoded once, as the router would, and answered
    // like the plain one (issue 18: every spelling of a route gets the same treatment).
    let a = c.answer(false);
    assert_eq!(
        (a.status, a.by_front()),
        (200, true),
        "escaped: decoded as the router decodes it"
    );
    assert_eq!(a.body, seg);
    let a = c.answer(false);
    assert_eq!((a.status, a.by_front()), (200, true));
    assert_eq!(a.body, seg);
    // A segment only on disk is the door's too (its file, by sendfile), GET and HEAD.
    f.shared.media.remove_segment(0);
    c.send(&format!(
        "{}HEAD /video/chessboard0.ts HTTP/1.1\r\nHost: t\r\n\r\n",
        get("/video/chessboard0.ts", "")
    ));
    let a = c.answer(false);
    assert_eq!((a.status, a.by_front()), (200, true));
    assert_eq!(a.body, segment_bytes(0, 100));
    let a = c.answer(true);
    assert_eq!((a.status, a.by_front()), (200, true));
    assert_eq!(a.header("content-length"), Some("18800"));
    // A request with a body, another method or the event stream hands the connection, with
    // what was read after it, to actix-web's dispatcher, which answers everything from then on.
    for (raw, status) in [
        (
            "POST /markers HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
                .to_owned(),
            403,
        ),
        (
            "GET /video/chessboard1.ts HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nxx".to_owned(),
            200,
        ),
        ("DELETE /video/chessboard1.ts HTTP/1.1\r\nHost: t\r\n\r\n".to_owned(), 405),
    ] {
        let mut c = Client::connect(&live);
        c.send(&format!("{raw}{}", get("/video/chessboard1.ts", "")));
        let a = c.answer(false);
        assert_eq!((a.status, a.handed_over()), (status, true), "{raw:?}");
        let a = c.answer(false);
        assert_eq!((a.status, a.handed_over()), (200, true), "{raw:?}: the next one");
        assert_eq!(a.body, seg);
    }
    live.stop();
}

#[test]
fn http10_and_connection_close_end_the_connection() {
    let (f, cfg) = live_media(false);
    let live = Live::start(cfg, f.shared.clone());
    for (raw, stays) in [
        ("GET /video/chessboard1.ts HTTP/1.0\r\n\r\n", false),
        (
            "GET /video/chessboard1.ts HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            true,
        ),
        (
            "GET /video/chessboard1.ts HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            false,
        ),
        (
            "GET /video/chessboard1.ts HTTP/1.1\r\nHost: t\r\n\r\n",
            true,
        ),
    ] {
        let mut c = Client::connect(&live);
        c.send(raw);
        let a = c.answer(false);
        assert_eq!((a.status, a.by_front()), (200, true), "{raw:?}");
        if stays {
            if raw.contains("HTTP/1.0") {
                assert_eq!(a.header("connection"), Some("keep-alive"), "{raw:?}");
            }
            c.send(raw);
            assert_eq!(c.answer(false).status, 200, "{raw:?}: kept alive");
        } else {
            assert_eq!(a.header("connection"), Some("close"), "{raw:?}");
            assert!(c.closed(), "{raw:?}: left open");
        }
    }
    live.stop();
}

#[test]
fn a_segment_goes_out_from_its_file() {
    let (f, cfg) = live_media(false);
    // White-box: the file handed over holds other bytes than the memory copy, so the answer
    // shows which one was sent. (The publisher writes the file from the same bytes.)
    let other = segment_bytes(99, 100);
    let path = f.media.join("other-bytes");
    std::fs::write(&path, &other).expect("write");
    let file = std::fs::File::open(&path).expect("open");
    f.shared.media.put_segment(
        2,
        web::Bytes::from(segment_bytes(2, 100)),
        SystemTime::now(),
        Some(file),
    );
    let live = Live::start(cfg, f.shared.clone());
    let mut c = Client::connect(&live);
    c.send(&get("/video/chessboard2.ts", ""));
    assert_eq!(c.answer(false).body, other, "sent from the file");
    c.send(&get("/video/chessboard2.ts", "Range: bytes=1000-2999\r\n"));
    let a = c.answer(false);
    assert_eq!(a.status, 206);
    assert_eq!(a.body, &other[1000..3000], "the range, from the file");
    // A part has no file: from memory, with one vectored write.
    c.send(&get("/video/chessboard3.0.ts", ""));
    assert_eq!(c.answer(false).body, segment_bytes(30, 7));
    live.stop();
}

#[test]
fn a_client_gone_during_a_blocking_reload_leaves_no_waiter() {
    let (f, cfg) = live_media(false);
    let live = Live::start(cfg, f.shared.clone());
    let mut c = Client::connect(&live);
    c.send(&get("/video/chessboard.m3u8?_HLS_msn=4", ""));
    let until = Instant::now() + Duration::from_secs(5);
    while f.shared.media.edge_watchers() == 0 {
        assert!(Instant::now() < until, "the request never waited");
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(c);
    while f.shared.media.edge_watchers() > 0 {
        assert!(Instant::now() < until, "the waiter outlived its client");
        std::thread::sleep(Duration::from_millis(10));
    }
    // And one that stays is answered when the edge moves.
    let mut c = Client::connect(&live);
    c.send(&get("/video/chessboard.m3u8?_HLS_msn=3&_HLS_part=1", ""));
    std::thread::sleep(Duration::from_millis(200));
    f.shared.media.set_edge(LiveEdge {
        open_sequence: 3,
        open_parts: 2,
        ended: false,
        segments: 3,
        list_size: 0,
    });
    let a = c.answer(false);
    assert_eq!((a.status, a.by_front()), (200, true));
    live.stop();
}

#[test]
fn a_slow_head_is_408_and_an_idle_connection_closes() {
    let (f, cfg) = live_media(false);
    let live = Live::start(cfg, f.shared.clone());
    let t = Instant::now();
    let mut slow = Client::connect(&live);
    slow.send("GET /video/chessboard1.ts HTTP/1.1\r\nHost: t\r\n");
    let mut idle = Client::connect(&live);
    idle.send(&get("/video/chessboard1.ts", ""));
    assert_eq!(idle.answer(false).status, 200);
    let a = slow.answer(false);
    assert_eq!(a.status, 408);
    assert!(a.header("content-type").is_some_and(|t| t.contains("json")));
    assert!(slow.closed());
    assert!(idle.closed(), "idle keep-alive closed");
    let waited = t.elapsed();
    assert!(
        waited >= front::REQUEST_HEAD_TIMEOUT && waited < front::REQUEST_HEAD_TIMEOUT * 3,
        "{waited:?}"
    );
    // Stopping closes an idle kept-alive connection at once instead of waiting it out.
    let mut c = Client::connect(&live);
    c.send(&get("/video/chessboard1.ts", ""));
    assert_eq!(c.answer(false).status, 200);
    let took = live.stop();
    assert!(
        took < Duration::from_secs(SHUTDOWN_TIMEOUT_SECS),
        "stop took {took:?}"
    );
    assert!(c.closed());
}

#[test]
fn segments_from_disk_and_other_routes_are_answered_as_actix_does() {
    let (f, cfg) = live_media(true);
    f.shared.media.remove_segment(0);
    let live = Live::start(cfg.clone(), f.shared.clone());
    let mut c = Client::connect(&live);
    let cases: Vec<Case> = vec![
        ("GET", "/", vec![]),
        ("GET", "/static/player.css", vec![("origin", ORIGIN)]),
        ("HEAD", "/static/player.css", vec![]),
        ("GET", "/stream", vec![]),
        ("GET", "/markers?limit=1", vec![]),
        ("GET", "/markers?limit=x", vec![]),
        ("GET", "/nope", vec![]),
        ("GET", "/video/chessboard0.ts", vec![]),
        (
            "GET",
            "/video/chessboard0.ts",
            vec![("range", "bytes=10-20")],
        ),
        ("GET", "/video/chessboard9.ts", vec![]),
        ("GET", "/video/..%2fsecret.txt", vec![]),
    ];
    for case in &cases {
        let ours = same_as_actix(&mut c, &cfg, &f, case, "");
        // A segment on disk (or a name that is not one) is the door's own; the rest the routes'.
        let own = case.1.starts_with("/video/chessboard");
        assert_eq!(
            (ours.by_front(), ours.by_routes()),
            (own, !own),
            "{case:?}: {:?}",
            ours.headers
        );
    }
    live.stop();
}

/// Writes `res` with the door's writer on one end of a loopback connection and returns all the
/// other end reads until the writer closes.
fn written(res: HttpResponse, head_only: bool, http10: bool) -> Vec<u8> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let reader = tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let mut all = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut s, &mut all)
                .await
                .expect("read");
            all
        });
        let (mut io, _) = listener.accept().await.expect("accept");
        let mut out = Vec::new();
        write_response(
            &mut io,
            &mut out,
            res,
            Answered::Routes,
            head_only,
            true,
            http10,
        )
        .await
        .expect("written");
        drop(io);
        reader.await.expect("reader")
    })
}

fn chunks() -> impl futures_util::Stream<Item = Result<web::Bytes, std::io::Error>> {
    futures_util::stream::iter(["abc", "", "defgh"].map(|c| Ok(web::Bytes::from(c))))
}

#[test]
fn streamed_bodies_are_framed_or_sized() {
    let text = |b: Vec<u8>| String::from_utf8(b).expect("ASCII");
    // Unknown length, HTTP/1.1: chunked, the empty chunk skipped, then the last chunk.
    let t = text(written(
        HttpResponse::Ok().streaming(chunks()),
        false,
        false,
    ));
    assert!(t.contains("transfer-encoding: chunked\r\n"), "{t}");
    assert!(!t.contains("content-length"), "{t}");
    assert!(
        t.ends_with("\r\n\r\n3\r\nabc\r\n5\r\ndefgh\r\n0\r\n\r\n"),
        "{t}"
    );
    // Unknown length, HTTP/1.0: no framing, the end of the body is the end of the connection.
    let t = text(written(HttpResponse::Ok().streaming(chunks()), false, true));
    assert!(t.contains("connection: close\r\n"), "{t}");
    assert!(t.ends_with("\r\n\r\nabcdefgh"), "{t}");
    // Known length: sized, unframed; HEAD sends the head only.
    let sized =
        || HttpResponse::Ok().body(actix_web::body::SizedStream::new(8, Box::pin(chunks())));
    let t = text(written(sized(), false, false));
    assert!(
        t.contains("content-length: 8\r\n") && t.ends_with("\r\n\r\nabcdefgh"),
        "{t}"
    );
    let t = text(written(sized(), true, false));
    assert!(
        t.contains("content-length: 8\r\n") && t.ends_with("\r\n\r\n"),
        "{t}"
    );
    // A stream shorter than it said is an error (the connection closes on a short body).
    let short = HttpResponse::Ok().body(actix_web::body::SizedStream::new(9, Box::pin(chunks())));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let err = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let _client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (mut io, _) = listener.accept().await.expect("accept");
        write_response(
            &mut io,
            &mut Vec::new(),
            short,
            Answered::Routes,
            false,
            true,
            false,
        )
        .await
        .expect_err("short body")
    });
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{err}");
}
