//! Route tests through `actix_web::test`, without a socket; those over a real TCP socket are in
//! `socket_tests.rs`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use actix_web::body::{to_bytes, BodyStream, MessageBody};
use actix_web::dev::{Decompress, Payload, ServiceResponse};
use actix_web::test as actest;

use std::time::SystemTime;

use super::*;
use crate::clock::WallClock;
use crate::time::{Duration90k, StreamTime};

/// Bytes of a file placed *outside* the media directory; no response may ever contain them.
pub(super) const SECRET: &str = "TOP-SECRET-OUTSIDE-MEDIA-DIR";
pub(super) const PLAYLIST: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n\
#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-INDEPENDENT-SEGMENTS\n\
#EXT-X-PROGRAM-DATE-TIME:2025-11-25T12:00:00.000Z\n#EXTINF:2.000,\nchessboard0.ts\n\
#EXT-X-PROGRAM-DATE-TIME:2025-11-25T12:00:02.000Z\n#EXTINF:2.000,\nchessboard1.ts\n\
#EXT-X-PROGRAM-DATE-TIME:2025-11-25T12:00:04.000Z\n#EXTINF:2.000,\nchessboard2.ts\n";
const LIFETIME_SECS: u64 = 242;

pub(super) struct Fixture {
    /// Holds `secret.txt` and `media/`.
    _root: tempfile::TempDir,
    pub(super) media: PathBuf,
    pub(super) shared: Arc<Shared>,
}

/// A segment's bytes: `packets` TS packets, each a sync byte then a counter pattern.
pub(super) fn segment_bytes(seq: u8, packets: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(packets * 188);
    for p in 0..packets {
        v.push(0x47);
        v.extend((1..188).map(|i| (i as u8) ^ (p as u8) ^ seq));
    }
    v
}

pub(super) fn fixture() -> Fixture {
    let root = tempfile::tempdir().expect("temp dir");
    let media = root.path().join("media");
    std::fs::create_dir(&media).expect("media dir");
    std::fs::write(root.path().join("secret.txt"), SECRET).expect("secret");
    std::fs::write(root.path().join("chessboard.m3u8"), SECRET).expect("decoy playlist");
    std::fs::write(media.join("chessboard.m3u8"), PLAYLIST).expect("playlist");
    for seq in 0..3u8 {
        std::fs::write(
            media.join(format!("chessboard{seq}.ts")),
            segment_bytes(seq, 100),
        )
        .expect("segment");
    }
    std::fs::write(media.join("notes.txt"), SECRET).expect("other file");
    std::os::unix::fs::symlink(root.path().join("secret.txt"), media.join("chessboard9.ts"))
        .expect("symlink out");
    std::os::unix::fs::symlink("/etc/passwd", media.join("chessboard8.ts")).expect("symlink out");
    std::os::unix::fs::symlink(root.path().join("secret.txt"), media.join("other.m3u8"))
        .expect("symlink out");
    Fixture {
        _root: root,
        media,
        shared: Arc::new(Shared::default()),
    }
}

pub(super) fn config(media: &Path) -> ServerConfig {
    ServerConfig {
        bind: "127.0.0.1:0".parse().expect("address"),
        media_dir: media.to_owned(),
        name: "chessboard".parse().expect("valid name"),
        cors_origins: Vec::new(),
        target_duration_secs: 2,
        segment_lifetime_secs: LIFETIME_SECS,
        frame_rate: crate::time::FrameRate::new(30, 1).expect("rate"),
        marker_token: None,
        recordings: None,
    }
}

pub(super) async fn call(
    cfg: &ServerConfig,
    shared: &Arc<Shared>,
    req: actest::TestRequest,
) -> ServiceResponse<impl MessageBody> {
    let app = actest::init_service(App::new().configure(configure(cfg, shared.clone()))).await;
    actest::call_service(&app, req.to_request()).await
}

async fn get(f: &Fixture, uri: &str) -> ServiceResponse<impl MessageBody> {
    call(
        &config(&f.media),
        &f.shared,
        actest::TestRequest::get().uri(uri),
    )
    .await
}

fn header_str<B>(res: &ServiceResponse<B>, name: header::HeaderName) -> Option<String> {
    res.headers()
        .get(name)
        .map(|v| v.to_str().expect("ASCII header").to_owned())
}

async fn body_of<B: MessageBody>(res: ServiceResponse<B>) -> Vec<u8> {
    actest::read_body(res).await.to_vec()
}

async fn json_of<B: MessageBody>(res: ServiceResponse<B>) -> serde_json::Value {
    serde_json::from_slice(&body_of(res).await).expect("JSON body")
}

fn max_age(cache_control: &str) -> u64 {
    cache_control
        .split(',')
        .find_map(|d| d.trim().strip_prefix("max-age="))
        .expect("max-age directive")
        .parse()
        .expect("max-age is a number")
}

#[actix_web::test]
async fn index_is_the_player_page_with_csp_and_validator() {
    let f = fixture();
    let res = get(&f, "/").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        header_str(&res, header::CONTENT_TYPE).as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(
        header_str(&res, header::CACHE_CONTROL).as_deref(),
        Some("no-cache")
    );
    assert_eq!(
        header_str(&res, header::X_CONTENT_TYPE_OPTIONS).as_deref(),
        Some("nosniff")
    );
    let csp = header_str(&res, header::CONTENT_SECURITY_POLICY).expect("CSP");
    assert!(csp.contains("default-src 'self'") && csp.contains("worker-src 'self' blob:"));
    let etag = header_str(&res, header::ETAG).expect("etag");
    let body = String::from_utf8(body_of(res).await).expect("utf-8 page");
    assert!(body.contains("<video"), "the page has a video element");
    assert!(
        body.contains("/static/vendor/hls.min.js"),
        "loads the vendored player"
    );
    assert!(
        body.contains(r#"content="/video/chessboard.m3u8""#),
        "names this stream's playlist"
    );

    let res = call(
        &config(&f.media),
        &f.shared,
        actest::TestRequest::get()
            .uri("/")
            .insert_header((header::IF_NONE_MATCH, etag.as_str())),
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header_str(&res, header::ETAG), Some(etag));
    assert!(body_of(res).await.is_empty());
}

#[actix_web::test]
async fn every_static_asset_is_served_with_its_content_type() {
    let f = fixture();
    for asset in assets::ASSETS {
        let res = get(&f, &format!("/static/{}", asset.path)).await;
        assert_eq!(res.status(), StatusCode::OK, "{}", asset.path);
        assert_eq!(
            header_str(&res, header::CONTENT_TYPE).as_deref(),
            Some(asset.content_type)
        );
        assert!(
            header_str(&res, header::ETAG).is_some(),
            "{} has an etag",
            asset.path
        );
        let body = body_of(res).await;
        let want = if asset.path == assets::INDEX {
            assets::render_index("chessboard", &assets::PageRoutes::single())
                .0
                .into_bytes()
        } else {
            asset.body.to_vec()
        };
        assert!(body == want, "{}: body differs", asset.path);
    }
    for missing in [
        "/static/",
        "/static/nope.js",
        "/static/vendor/",
        "/static/VENDOR/hls.min.js",
    ] {
        assert_eq!(
            get(&f, missing).await.status(),
            StatusCode::NOT_FOUND,
            "{missing}"
        );
    }
}

#[actix_web::test]
async fn r8_r39_playlist_type_and_short_shared_cache_lifetime() {
    let f = fixture();
    let res = get(&f, "/video/chessboard.m3u8").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        header_str(&res, header::CONTENT_TYPE).as_deref(),
        Some("application/vnd.apple.mpegurl")
    );
    // Half of a 2 s target duration: a cache never serves a playlist older than a client's
    // earliest reload (RFC 8216 §6.3.4).
    assert_eq!(
        header_str(&res, header::CACHE_CONTROL).as_deref(),
        Some("public, max-age=1")
    );
    assert!(
        header_str(&res, header::ETAG).is_none(),
        "no validator shared by gzip and identity"
    );
    assert!(
        header_str(&res, header::CONTENT_ENCODING).is_none(),
        "identity unless asked"
    );
    assert_eq!(body_of(res).await, PLAYLIST.as_bytes());
}

#[test]
fn r39_playlist_max_age_is_at_most_half_a_target_duration() {
    let mut cfg = config(Path::new("/nonexistent"));
    for (td, want) in [
        (1, "no-cache"),
        (2, "public, max-age=1"),
        (3, "public, max-age=1"),
    ] {
        cfg.target_duration_secs = td;
        assert_eq!(cfg.playlist_cache_control(), want, "TD {td}");
    }
    cfg.target_duration_secs = 6;
    assert_eq!(cfg.playlist_cache_control(), "public, max-age=3");
    assert_eq!(cfg.health_deadline(), Duration::from_secs(9));
}

#[actix_web::test]
async fn r31_playlist_is_gzipped_when_the_client_accepts_it() {
    let f = fixture();
    let req = actest::TestRequest::get()
        .uri("/video/chessboard.m3u8")
        .insert_header((header::ACCEPT_ENCODING, "gzip"));
    let res = call(&config(&f.media), &f.shared, req).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        header_str(&res, header::CONTENT_ENCODING).as_deref(),
        Some("gzip")
    );
    let vary = header_str(&res, header::VARY)
        .expect("vary")
        .to_ascii_lowercase();
    assert!(vary.contains("accept-encoding"), "{vary}");
    let headers = res.headers().clone();
    let gz = body_of(res).await;
    assert_eq!(&gz[..2], &[0x1f, 0x8b], "gzip magic");
    let payload: Payload = Payload::from(gz);
    let decoded = Decompress::from_headers(payload, &headers);
    let plain = to_bytes(BodyStream::new(decoded)).await.expect("gunzip");
    assert_eq!(plain, PLAYLIST.as_bytes());
}

#[actix_web::test]
async fn head_answers_like_get_without_changing_anything() {
    let f = fixture();
    for uri in [
        "/",
        "/video/chessboard.m3u8",
        "/video/chessboard1.ts",
        "/markers",
        "/healthz",
    ] {
        let got = get(&f, uri).await;
        let req = actest::TestRequest::default().method(Method::HEAD).uri(uri);
        let head = call(&config(&f.media), &f.shared, req).await;
        assert_eq!(head.status(), got.status(), "{uri}");
        for h in [
            header::CONTENT_TYPE,
            header::CACHE_CONTROL,
            header::ACCEPT_RANGES,
        ] {
            assert_eq!(header_str(&head, h.clone()), header_str(&got, h), "{uri}");
        }
    }
}

#[actix_web::test]
async fn missing_playlist_and_segments_are_404() {
    let f = fixture();
    std::fs::remove_file(f.media.join("chessboard.m3u8")).expect("remove");
    // A stream that ended without a playlist (while one is starting, a playlist request is held
    // and then answered 503: server::ll_tests::r52_no_playlist_is_served_before_a_complete_segment).
    f.shared.media.set_edge(crate::playlist::LiveEdge {
        ended: true,
        ..Default::default()
    });
    for uri in [
        "/video/chessboard.m3u8",
        "/video/chessboard3.ts",
        "/video/chessboard01.ts",
    ] {
        let res = get(&f, uri).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{uri}");
        assert!(json_of(res).await["error"].is_string());
    }
}

#[actix_web::test]
async fn r27_segment_is_mp2t_immutable_with_expires_at_its_planned_end() {
    let f = fixture();
    let path = f.media.join("chessboard1.ts");
    let mtime = std::fs::metadata(&path)
        .expect("meta")
        .modified()
        .expect("mtime");
    let req = actest::TestRequest::get()
        .uri("/video/chessboard1.ts")
        .insert_header((header::ACCEPT_ENCODING, "gzip, deflate"));
    let res = call(&config(&f.media), &f.shared, req).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        header_str(&res, header::CONTENT_TYPE).as_deref(),
        Some("video/mp2t")
    );
    assert_eq!(
        header_str(&res, header::ACCEPT_RANGES).as_deref(),
        Some("bytes")
    );
    assert!(header_str(&res, header::CONTENT_DISPOSITION).is_none());
    assert!(
        header_str(&res, header::CONTENT_ENCODING).is_none(),
        "a segment is never compressed"
    );
    let cc = header_str(&res, header::CACHE_CONTROL).expect("cache-control");
    assert!(
        cc.starts_with("public, ") && cc.ends_with(", immutable"),
        "{cc}"
    );
    let age = max_age(&cc);
    assert!((LIFETIME_SECS - 5..=LIFETIME_SECS).contains(&age), "{cc}");
    let expires = header::HttpDate::from_str(&header_str(&res, header::EXPIRES).expect("expires"))
        .expect("HTTP date");
    let want = header::HttpDate::from(mtime + Duration::from_secs(LIFETIME_SECS));
    assert_eq!(
        expires.to_string(),
        want.to_string(),
        "Expires = publication + planned lifetime"
    );
    assert!(header_str(&res, header::ETAG).is_some());
    assert_eq!(body_of(res).await, segment_bytes(1, 100));
}

#[actix_web::test]
async fn r27_segment_max_age_counts_down_to_its_removal() {
    let f = fixture();
    let set_age = |name: &str, secs: u64| {
        let file = std::fs::File::options()
            .write(true)
            .open(f.media.join(name))
            .expect("open");
        file.set_modified(SystemTime::now() - Duration::from_secs(secs))
            .expect("set mtime");
    };
    set_age("chessboard0.ts", 200);
    set_age("chessboard2.ts", LIFETIME_SECS + 60);
    let res = get(&f, "/video/chessboard0.ts").await;
    let age = max_age(&header_str(&res, header::CACHE_CONTROL).expect("cache-control"));
    assert!(
        (LIFETIME_SECS - 200 - 3..=LIFETIME_SECS - 200).contains(&age),
        "max-age {age}"
    );
    // Past its planned lifetime (about to be deleted) it is still served (R25), uncacheable.
    let res = get(&f, "/video/chessboard2.ts").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        max_age(&header_str(&res, header::CACHE_CONTROL).expect("cache-control")),
        0
    );
    let expires = header::HttpDate::from_str(&header_str(&res, header::EXPIRES).expect("expires"))
        .expect("HTTP date");
    assert!(SystemTime::from(expires) < SystemTime::now());
}

#[actix_web::test]
async fn segment_byte_ranges() {
    let f = fixture();
    let whole = segment_bytes(2, 100);
    let n = whole.len();
    let cfg = config(&f.media);
    let ranged = |r: &str, gzip: bool| {
        let mut req = actest::TestRequest::get()
            .uri("/video/chessboard2.ts")
            .insert_header((header::RANGE, r.to_owned()));
        if gzip {
            req = req.insert_header((header::ACCEPT_ENCODING, "gzip"));
        }
        req
    };

    let res = call(&cfg, &f.shared, ranged("bytes=0-187", false)).await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header_str(&res, header::CONTENT_RANGE),
        Some(format!("bytes 0-187/{n}"))
    );
    assert_eq!(
        header_str(&res, header::CONTENT_TYPE).as_deref(),
        Some("video/mp2t")
    );
    assert!(
        header_str(&res, header::EXPIRES).is_some(),
        "partial responses carry Expires too"
    );
    assert_eq!(body_of(res).await, &whole[..188]);

    let res = call(&cfg, &f.shared, ranged("bytes=-188", true)).await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    let enc = header_str(&res, header::CONTENT_ENCODING);
    assert!(
        enc.is_none() || enc.as_deref() == Some("identity"),
        "{enc:?}"
    );
    assert_eq!(body_of(res).await, &whole[n - 188..]);

    let res = call(&cfg, &f.shared, ranged("bytes=376-", false)).await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(body_of(res).await, &whole[376..]);

    let res = call(&cfg, &f.shared, ranged(&format!("bytes={n}-"), false)).await;
    assert_eq!(res.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        header_str(&res, header::CONTENT_RANGE),
        Some(format!("bytes */{n}"))
    );
}

#[actix_web::test]
async fn markers_are_a_json_object_filtered_by_ts_start() {
    let f = fixture();
    let anchor = WallClock::from_unix_millis(1_764_072_000_000);
    for secs in [1, 2, 5] {
        push_marker(
            &f.shared,
            StreamTime::ZERO + Duration90k::from_secs(secs),
            Duration90k::from_secs(2),
            anchor,
        );
    }
    let res = get(&f, "/markers").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        header_str(&res, header::CONTENT_TYPE).as_deref(),
        Some("application/json")
    );
    assert_eq!(
        header_str(&res, header::CACHE_CONTROL).as_deref(),
        Some("no-cache")
    );
    let body = json_of(res).await;
    let obj = body
        .as_object()
        .expect("an object, not a JSON string holding JSON");
    assert_eq!(obj.keys().collect::<Vec<_>>(), ["markers"]);
    let list = body["markers"].as_array().expect("markers array");
    assert_eq!(list.len(), 3);
    for (m, (id, secs)) in list.iter().zip([(1, 1), (2, 2), (3, 5)]) {
        let keys: BTreeSet<&str> = m
            .as_object()
            .expect("marker object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            BTreeSet::from([
                "id",
                "time",
                "text",
                "program_date_time",
                "timecode",
                "source",
                "duration"
            ])
        );
        assert_eq!(m["id"], id);
        assert_eq!(m["time"].as_f64(), Some(secs as f64));
        assert_eq!(m["text"], format!("Marker {id}"));
        assert_eq!(
            m["program_date_time"],
            format!("2025-11-25T12:00:0{secs}.000Z")
        );
    }

    let ids = |v: serde_json::Value| -> Vec<u64> {
        v["markers"]
            .as_array()
            .expect("array")
            .iter()
            .map(|m| m["id"].as_u64().expect("id"))
            .collect()
    };
    // Strictly later than ts_start: a client polling with its newest time gets no repeats.
    for (q, want) in [
        ("2", vec![3]),
        ("1.999", vec![2, 3]),
        ("-1", vec![1, 2, 3]),
        ("0", vec![1, 2, 3]),
        ("5", vec![]),
        ("1e9", vec![]),
        ("%2B1", vec![2, 3]),
        ("1&other=x", vec![2, 3]),
    ] {
        let res = get(&f, &format!("/markers?ts_start={q}")).await;
        assert_eq!(res.status(), StatusCode::OK, "{q}");
        assert_eq!(ids(json_of(res).await), want, "ts_start={q}");
    }
}

#[actix_web::test]
async fn markers_reject_every_non_finite_or_malformed_ts_start() {
    let f = fixture();
    for q in [
        "ts_start=abc",
        "ts_start=",
        "ts_start=NaN",
        "ts_start=nan",
        "ts_start=inf",
        "ts_start=-inf",
        "ts_start=%2Binf",
        "ts_start=infinity",
        "ts_start=1e999",
        "ts_start=-1e999",
        "ts_start=1,5",
        "ts_start=0x10",
        "ts_start=%201",
        "ts_start=1%20",
        "ts_start=1.2.3",
        "ts_start=--1",
        "ts_start=1&ts_start=2",
        "ts_start=1%00",
        "ts_start=%FF",
    ] {
        let res = get(&f, &format!("/markers?{q}")).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{q}");
        assert_eq!(
            header_str(&res, header::CONTENT_TYPE).as_deref(),
            Some("application/json")
        );
        let body = json_of(res).await;
        assert_eq!(body.as_object().map(|o| o.len()), Some(1), "{q}: {body}");
        assert!(
            !body["error"].as_str().expect("error string").is_empty(),
            "{q}"
        );
    }
    assert_eq!(parse_ts_start("ts_start=2.5").expect("a number"), Some(2.5));
    assert_eq!(parse_ts_start("").expect("absent"), None);
}

#[actix_web::test]
async fn r28_healthz_follows_the_publishing_deadline() {
    let f = fixture();
    let check = |want_status: u16, want: &'static str| {
        let f = &f;
        async move {
            let res = get(f, "/healthz").await;
            assert_eq!(res.status().as_u16(), want_status, "{want}");
            assert_eq!(
                header_str(&res, header::CACHE_CONTROL).as_deref(),
                Some("no-store")
            );
            let body = json_of(res).await;
            assert_eq!(body["status"], want);
            body
        }
    };
    let body = check(503, "starting").await;
    assert!(body["newest_segment_age_secs"].is_null());
    assert_eq!(body["deadline_secs"], 3.0);

    f.shared.update_status(|s| {
        s.newest_segment_at = Some(Instant::now());
        s.newest_sequence = Some(41);
        s.segments_written = 42;
        s.frames_encoded = 2520;
        s.frames_dropped = 3;
    });
    let body = check(200, "live").await;
    assert_eq!(body["newest_sequence"], 41);
    assert_eq!(body["segments_written"], 42);
    assert_eq!(body["frames_encoded"], 2520);
    assert_eq!(body["frames_dropped"], 3);
    assert_eq!(body["ended"], false);

    // 1.5 x TD = 3 s: a segment 2.9 s old is on time, 3.1 s old is late.
    let at = |ms| {
        Instant::now()
            .checked_sub(Duration::from_millis(ms))
            .expect("uptime")
    };
    f.shared
        .update_status(|s| s.newest_segment_at = Some(at(2_900)));
    check(200, "live").await;
    f.shared
        .update_status(|s| s.newest_segment_at = Some(at(3_100)));
    let body = check(503, "stalled").await;
    assert!(body["newest_segment_age_secs"].as_f64().expect("age") >= 3.1);

    f.shared.update_status(|s| s.ended = true);
    let body = check(200, "ended").await;
    assert_eq!(body["ended"], true);
}

/// The requests of the issue's traversal list and more. Each must be a 400 or 404 and never
/// carry a byte of a file outside the media directory.
pub(super) const HOSTILE_URIS: &[&str] = &[
    "/video/..%2fsecret.txt",
    "/video/..%2Fsecret.txt",
    "/video/%2e%2e%2fsecret.txt",
    "/video/%2E%2E/secret.txt",
    "/video/%2e%2e",
    "/video/..",
    "/video/../secret.txt",
    "/video/../chessboard.m3u8",
    "/video/%2e%2e%2fchessboard.m3u8",
    "/video/..%5csecret.txt",
    "/video/chessboard1.ts%5c..%5c..%5csecret.txt",
    "/video/%2fetc%2fpasswd",
    "/video//etc/passwd",
    "/video/%2Fetc%2Fpasswd",
    "/video/chessboard9.ts",
    "/video/chessboard8.ts",
    "/video/other.m3u8",
    "/video/notes.txt",
    "/video/chessboard.m3u8%00",
    "/video/chessboard.m3u8%00.ts",
    "/video/chessboard1.ts%2f..%2f..%2fsecret.txt",
    "/video/chessboard%2e%2e%2f..%2fsecret.txt",
    "/video/./chessboard.m3u8/..",
    "/video/chessboard-1.ts",
    "/video/chessboard1.ts.",
    "/video/%63hessboard1.ts%20",
    "/static/../secret.txt",
    "/static/..%2f..%2fsecret.txt",
    "/static/%2e%2e/%2e%2e/secret.txt",
    "/static//etc/passwd",
    "/static/%2fetc%2fpasswd",
    "/static/vendor/../../secret.txt",
    "/static/..%5c..%5csecret.txt",
    "/..%2fsecret.txt",
    "/%2e%2e/secret.txt",
    "/secret.txt",
    "/etc/passwd",
];

pub(super) fn assert_no_leak(uri: &str, status: u16, body: &[u8]) {
    assert!(status == 400 || status == 404, "{uri} answered {status}");
    let text = String::from_utf8_lossy(body);
    assert!(!text.contains(SECRET), "{uri} leaked the outside file");
    assert!(!text.contains("root:"), "{uri} leaked /etc/passwd");
}

#[actix_web::test]
async fn traversal_and_malformed_paths_never_serve_a_file_outside_the_media_dir() {
    let f = fixture();
    assert!(HOSTILE_URIS.len() >= 15);
    for uri in HOSTILE_URIS {
        let res = get(&f, uri).await;
        let status = res.status().as_u16();
        assert_no_leak(uri, status, &body_of(res).await);
    }
}

#[actix_web::test]
async fn other_methods_are_405_and_unknown_routes_404() {
    let f = fixture();
    let routes = [
        "/",
        "/static/js/main.js",
        "/stream",
        "/video/chessboard.m3u8",
        "/video/chessboard0.ts",
    ];
    for uri in routes
        .iter()
        .chain(&["/markers", "/markers/events", "/healthz"])
    {
        for m in [
            "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT",
        ] {
            // POST /markers is a route of its own (403 here: no token configured).
            let posting = *uri == "/markers" && m == "POST";
            let method = Method::from_bytes(m.as_bytes()).expect("method");
            let req = actest::TestRequest::default().method(method).uri(uri);
            let res = call(&config(&f.media), &f.shared, req).await;
            if posting {
                assert_eq!(res.status(), StatusCode::FORBIDDEN, "{m} {uri}");
                continue;
            }
            assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED, "{m} {uri}");
            let allow = if *uri == "/markers" {
                "GET, HEAD, POST"
            } else {
                "GET, HEAD"
            };
            assert_eq!(
                header_str(&res, header::ALLOW).as_deref(),
                Some(allow),
                "{m} {uri}"
            );
        }
    }
    // A file written by POST would be the worst outcome: check nothing appeared.
    assert!(!f.media.join("chessboard3.ts").exists());
    for uri in [
        "/nope",
        "/video",
        "/video/",
        "/video/a/b",
        "/markers/1",
        "/healthz/x",
        "/stream/x",
        "/index.html",
    ] {
        let res = get(&f, uri).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(json_of(res).await["error"], "not found");
    }
}

#[actix_web::test]
async fn stream_route_gives_the_exact_frame_rate() {
    let f = fixture();
    for (fps, num, den) in [
        ("29.97", 30_000, 1001),
        ("30", 30, 1),
        ("30000/1001", 30_000, 1001),
    ] {
        let cfg = ServerConfig {
            frame_rate: crate::time::FrameRate::parse(fps).expect("rate"),
            target_duration_secs: 3,
            ..config(&f.media)
        };
        let res = call(&cfg, &f.shared, actest::TestRequest::get().uri("/stream")).await;
        assert_eq!(res.status(), StatusCode::OK, "{fps}");
        assert_eq!(
            header_str(&res, header::CONTENT_TYPE).as_deref(),
            Some("application/json"),
            "{fps}"
        );
        assert_eq!(
            header_str(&res, header::CACHE_CONTROL).as_deref(),
            Some("no-cache")
        );
        let json = json_of(res).await;
        assert_eq!(
            json,
            serde_json::json!({
                "name": "chessboard",
                "playlist": "/video/chessboard.m3u8",
                "frame_rate": {"num": num, "den": den},
                "fps": f64::from(num) / f64::from(den),
                "target_duration": 3,
            }),
            "{fps}"
        );
    }
    // 29.97 is the NTSC fraction, not a rounded decimal.
    let res = call(
        &ServerConfig {
            frame_rate: crate::time::FrameRate::parse("29.97").expect("rate"),
            ..config(&f.media)
        },
        &f.shared,
        actest::TestRequest::get().uri("/stream"),
    )
    .await;
    let json = json_of(res).await;
    assert_eq!(json["frame_rate"]["num"], 30_000);
    assert_eq!(json["frame_rate"]["den"], 1001);
    assert_eq!(json["fps"], 29.970_029_970_029_97);

    let res = call(
        &config(&f.media),
        &f.shared,
        actest::TestRequest::default()
            .method(Method::HEAD)
            .uri("/stream"),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[test]
fn validate_refuses_a_frame_rate_with_a_zero_term() {
    for (num, den) in [(0, 1), (30, 0)] {
        let cfg = ServerConfig {
            frame_rate: crate::time::FrameRate { num, den },
            ..config(Path::new("/tmp"))
        };
        assert!(cfg.validate().is_err(), "{num}/{den}");
    }
}

#[actix_web::test]
async fn cors_is_off_by_default() {
    let f = fixture();
    let req = actest::TestRequest::get()
        .uri("/video/chessboard.m3u8")
        .insert_header((header::ORIGIN, "https://elsewhere.example"));
    let res = call(&config(&f.media), &f.shared, req).await;
    assert_eq!(res.status(), StatusCode::OK);
    for h in res.headers().keys() {
        assert!(!h.as_str().starts_with("access-control-"), "{h}");
    }
    assert!(!header_str(&res, header::VARY)
        .unwrap_or_default()
        .contains("Origin"));
}

#[actix_web::test]
async fn cors_allows_exactly_the_named_origins_without_credentials() {
    let f = fixture();
    let mut cfg = config(&f.media);
    cfg.cors_origins = vec![
        "https://player.example".into(),
        "http://localhost:8080/".into(),
    ];
    let with_origin = |uri: &str, origin: &str| {
        actest::TestRequest::get()
            .uri(uri)
            .insert_header((header::ORIGIN, origin.to_owned()))
    };
    for uri in [
        "/video/chessboard.m3u8",
        "/video/chessboard0.ts",
        "/markers",
        "/healthz",
    ] {
        for origin in ["https://player.example", "http://localhost:8080"] {
            let res = call(&cfg, &f.shared, with_origin(uri, origin)).await;
            assert_eq!(
                header_str(&res, header::ACCESS_CONTROL_ALLOW_ORIGIN).as_deref(),
                Some(origin)
            );
            assert!(header_str(&res, header::ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none());
            let expose = header_str(&res, header::ACCESS_CONTROL_EXPOSE_HEADERS).expect("expose");
            assert!(expose.contains("Content-Range"));
            let vary: Vec<String> = res
                .headers()
                .get_all(header::VARY)
                .map(|v| v.to_str().expect("ascii").to_owned())
                .collect();
            assert!(vary.iter().any(|v| v.contains("Origin")), "{uri}: {vary:?}");
        }
        for origin in ["https://evil.example", "http://player.example", "null", "*"] {
            let res = call(&cfg, &f.shared, with_origin(uri, origin)).await;
            assert!(
                header_str(&res, header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none(),
                "{origin}"
            );
            let vary = header_str(&res, header::VARY).unwrap_or_default();
            assert!(vary.contains("Origin"), "caches must key on Origin: {vary}");
        }
    }

    let preflight = |origin: &str, method: &str| {
        actest::TestRequest::default()
            .method(Method::OPTIONS)
            .uri("/video/chessboard0.ts")
            .insert_header((header::ORIGIN, origin.to_owned()))
            .insert_header((header::ACCESS_CONTROL_REQUEST_METHOD, method.to_owned()))
            .insert_header((header::ACCESS_CONTROL_REQUEST_HEADERS, "range"))
    };
    let res = call(&cfg, &f.shared, preflight("https://player.example", "GET")).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        header_str(&res, header::ACCESS_CONTROL_ALLOW_ORIGIN).as_deref(),
        Some("https://player.example")
    );
    assert_eq!(
        header_str(&res, header::ACCESS_CONTROL_ALLOW_METHODS).as_deref(),
        Some("GET, HEAD")
    );
    assert_eq!(
        header_str(&res, header::ACCESS_CONTROL_ALLOW_HEADERS).as_deref(),
        Some("Range")
    );
    assert!(header_str(&res, header::ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none());
    for (origin, method) in [
        ("https://evil.example", "GET"),
        ("https://player.example", "POST"),
    ] {
        let res = call(&cfg, &f.shared, preflight(origin, method)).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{origin} {method}");
    }
    // With CORS on, OPTIONS is a route; other methods are still 405 and say so.
    let req = actest::TestRequest::put().uri("/healthz");
    let res = call(&cfg, &f.shared, req).await;
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        header_str(&res, header::ALLOW).as_deref(),
        Some("GET, HEAD, OPTIONS")
    );
    let req = actest::TestRequest::put().uri("/markers");
    let res = call(&cfg, &f.shared, req).await;
    assert_eq!(
        header_str(&res, header::ALLOW).as_deref(),
        Some("GET, HEAD, POST, OPTIONS")
    );
}

#[test]
fn validate_refuses_unsafe_names_wildcards_and_zero_target_duration() {
    let good = config(Path::new("/tmp"));
    good.validate().expect("valid");
    // An unsafe name cannot even be given to the server: the stream-name type refuses it.
    for name in ["", "../x", "a/b", "a.b", "a\\b", "%2e"] {
        assert!(name.parse::<StreamName>().is_err(), "{name:?}");
    }
    let cfg = ServerConfig {
        cors_origins: vec!["*".into()],
        ..good.clone()
    };
    assert!(cfg
        .validate()
        .expect_err("wildcard")
        .to_string()
        .contains("wildcard"));
    let cfg = ServerConfig {
        target_duration_secs: 0,
        ..good
    };
    assert!(cfg.validate().is_err());
}

#[test]
#[should_panic(expected = "invalid server configuration")]
fn configure_refuses_an_unvalidated_config() {
    let cfg = ServerConfig {
        cors_origins: vec!["https://x.example/path".into()],
        ..config(Path::new("/tmp"))
    };
    let _ = configure(&cfg, Arc::new(Shared::default()));
}

/// Adds a generator marker to the store as the writer would (ids in order).
pub(super) fn push_marker(shared: &Shared, at: StreamTime, length: Duration90k, epoch: WallClock) {
    let id = shared.markers.len() as u64 + 1;
    shared
        .markers
        .insert(crate::markers::tests::marker_at(id, at, length, epoch));
}

/// The newest segments and the playlist come from memory (what the publisher handed over), with
/// the same headers as from disk, byte ranges, and the playlist gzipped once; a segment not in
/// memory still comes from its file.
#[actix_web::test]
async fn media_from_memory_with_ranges_and_gzip() {
    let f = fixture();
    let published = SystemTime::now();
    let seg = segment_bytes(40, 20);
    f.shared
        .media
        .put_segment(40, web::Bytes::from(seg.clone()), published, None);
    let text = format!("{PLAYLIST}#EXTINF:2.000,\nchessboard40.ts\n");
    f.shared.media.put_playlist(&text);
    // What the publisher announces with it: a classic playlist worth serving (R52).
    f.shared.media.set_edge(crate::playlist::LiveEdge {
        segments: 4,
        ..Default::default()
    });

    let res = get(&f, "/video/chessboard40.ts").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        header_str(&res, header::CONTENT_TYPE).as_deref(),
        Some("video/mp2t")
    );
    let cc = header_str(&res, header::CACHE_CONTROL).unwrap();
    assert!(cc.ends_with(", immutable"), "{cc}");
    assert!(max_age(&cc) <= LIFETIME_SECS && max_age(&cc) + 2 >= LIFETIME_SECS);
    assert!(header_str(&res, header::EXPIRES).is_some());
    assert_eq!(body_of(res).await, seg);

    let cfg = config(&f.media);
    let ranged = |range: &'static str| {
        call(
            &cfg,
            &f.shared,
            actest::TestRequest::get()
                .uri("/video/chessboard40.ts")
                .insert_header((header::RANGE, range)),
        )
    };
    let res = ranged("bytes=188-375").await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header_str(&res, header::CONTENT_RANGE).as_deref(),
        Some("bytes 188-375/3760")
    );
    assert_eq!(body_of(res).await, &seg[188..376]);
    let res = ranged("bytes=-188").await;
    assert_eq!(body_of(res).await, &seg[seg.len() - 188..]);
    let res = ranged("bytes=5000-").await;
    assert_eq!(res.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        header_str(&res, header::CONTENT_RANGE).as_deref(),
        Some("bytes */3760")
    );
    assert_eq!(
        header_str(&res, header::CACHE_CONTROL).as_deref(),
        Some("no-store"),
        "an error answer is not immutable"
    );

    // Validators and conditional requests (RFC 9110 §13).
    let res = get(&f, "/video/chessboard40.ts").await;
    let etag = header_str(&res, header::ETAG).expect("an ETag");
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong: {etag}"
    );
    let last_modified = header_str(&res, header::LAST_MODIFIED).expect("Last-Modified");
    let conditional = |name: header::HeaderName, value: String, range: Option<&'static str>| {
        let mut req = actest::TestRequest::get()
            .uri("/video/chessboard40.ts")
            .insert_header((name, value));
        if let Some(r) = range {
            req = req.insert_header((header::RANGE, r));
        }
        call(&cfg, &f.shared, req)
    };
    let res = conditional(header::IF_NONE_MATCH, etag.clone(), None).await;
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(
        header_str(&res, header::ETAG).as_deref(),
        Some(etag.as_str())
    );
    assert!(body_of(res).await.is_empty());
    let res = conditional(header::IF_NONE_MATCH, "\"other\"".into(), None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = conditional(header::IF_MODIFIED_SINCE, last_modified.clone(), None).await;
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    let res = conditional(
        header::IF_MODIFIED_SINCE,
        "Mon, 01 Jan 2024 00:00:00 GMT".into(),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = conditional(header::IF_RANGE, etag.clone(), Some("bytes=0-187")).await;
    assert_eq!(
        res.status(),
        StatusCode::PARTIAL_CONTENT,
        "If-Range matches"
    );
    let res = conditional(header::IF_RANGE, "\"stale\"".into(), Some("bytes=0-187")).await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "a stale If-Range gets the whole segment"
    );
    assert_eq!(body_of(res).await, seg);

    // Not in memory: the file (the fixture's segment 1).
    let res = get(&f, "/video/chessboard1.ts").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(body_of(res).await, segment_bytes(1, 100));

    let res = get(&f, "/video/chessboard.m3u8").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        header_str(&res, header::CONTENT_TYPE).as_deref(),
        Some(PLAYLIST_CONTENT_TYPE)
    );
    assert_eq!(
        header_str(&res, header::CACHE_CONTROL).as_deref(),
        Some("public, max-age=1")
    );
    assert_eq!(body_of(res).await, text.as_bytes());
    for (accept, gzip) in [
        ("gzip", true),
        ("br, gzip;q=0.5", true),
        ("gzip;q=0", false),
        ("*", true),
        ("br", false),
    ] {
        let res = call(
            &config(&f.media),
            &f.shared,
            actest::TestRequest::get()
                .uri("/video/chessboard.m3u8")
                .insert_header((header::ACCEPT_ENCODING, accept)),
        )
        .await;
        let enc = header_str(&res, header::CONTENT_ENCODING);
        let body = body_of(res).await;
        if gzip {
            assert_eq!(enc.as_deref(), Some("gzip"), "{accept}");
            let mut back = String::new();
            std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut back)
                .unwrap();
            assert_eq!(back, text, "{accept}");
        } else {
            assert_ne!(enc.as_deref(), Some("gzip"), "{accept}");
            assert_eq!(body, text.as_bytes(), "{accept}");
        }
    }
}

#[test]
fn r52_a_classic_playlist_waits_for_more_than_three_target_durations_and_a_second() {
    // Low latency: two segments (GStreamer's hlsdemux2), players start PART-HOLD-BACK back.
    assert_eq!(super::segments_before_serving(true, 1), 2);
    assert_eq!(super::segments_before_serving(true, 2), 2);
    // Classic: the fewest segments that leave a player holding back three of them more than a
    // second to seek in (Shaka 5 sets no live seekable range otherwise and can stop for good).
    assert_eq!(super::segments_before_serving(false, 2), 4);
    assert_eq!(super::segments_before_serving(false, 1), 5);
    for td in 1..=12u64 {
        let n = super::segments_before_serving(false, td) as u64;
        assert!((n - 3) * td > 1, "td {td}: {n} segments");
        assert!((n - 4) * td <= 1, "td {td}: {n} segments is not the fewest");
    }
}

#[actix_web::test]
async fn r52_a_classic_playlist_of_three_segments_is_held_until_the_fourth() {
    let f = fixture();
    f.shared.media.put_playlist(PLAYLIST);
    f.shared.media.set_edge(crate::playlist::LiveEdge {
        segments: 3,
        ..Default::default()
    });
    let shared = f.shared.clone();
    actix_web::rt::spawn(async move {
        actix_web::rt::time::sleep(Duration::from_millis(300)).await;
        shared.media.set_edge(crate::playlist::LiveEdge {
            segments: 4,
            ..Default::default()
        });
    });
    let started = Instant::now();
    let res = get(&f, "/video/chessboard.m3u8").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "served at three segments, after {:?}",
        started.elapsed()
    );
    assert_eq!(body_of(res).await, PLAYLIST.as_bytes());
}

#[actix_web::test]
async fn r52_a_classic_playlist_is_not_held_for_more_than_its_window() {
    // --list-size 3: the window never lists four segments; three full is enough.
    let f = fixture();
    f.shared.media.put_playlist(PLAYLIST);
    f.shared.media.set_edge(crate::playlist::LiveEdge {
        segments: 3,
        list_size: 3,
        ..Default::default()
    });
    let started = Instant::now();
    let res = get(&f, "/video/chessboard.m3u8").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[actix_web::test]
async fn r31_gzip_negotiation_honours_q_zero_and_the_wildcard() {
    let f = fixture();
    f.shared.media.put_playlist(PLAYLIST);
    // What the publisher announces with it: a classic playlist worth serving (R52).
    f.shared.media.set_edge(crate::playlist::LiveEdge {
        segments: 4,
        ..Default::default()
    });
    let cfg = config(&f.media);
    for (accept, gzip) in [
        ("gzip", true),
        ("GZIP", true),
        ("br, gzip;q=0.5", true),
        ("*", true),
        ("x-gzip", true),
        ("gzip;q=0, *", false),
        ("gzip; q=0", false),
        ("*;q=0", false),
        ("identity", false),
        ("br", false),
        ("", false),
    ] {
        let res = call(
            &cfg,
            &f.shared,
            actest::TestRequest::get()
                .uri("/video/chessboard.m3u8")
                .insert_header((header::ACCEPT_ENCODING, accept)),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK, "{accept:?}");
        let encoding = header_str(&res, header::CONTENT_ENCODING);
        assert_eq!(encoding.as_deref(), gzip.then_some("gzip"), "{accept:?}");
        let body = body_of(res).await;
        if !gzip {
            assert_eq!(body, PLAYLIST.as_bytes(), "{accept:?}: the plain text");
        } else {
            assert_eq!(&body[..2], &[0x1f, 0x8b], "{accept:?}");
        }
    }
}

/// A camera decides the stream's parameters after the server started: until it plays,
/// `GET /stream` is `503` (the command line's rate is not the camera's) and the headers keep the
/// configuration's figures; once it plays, `GET /stream`, the playlist's `max-age`, the segments'
/// `Expires` and the health deadline are the camera's, and follow a reconnection's new rate.
#[actix_web::test]
async fn a_cameras_parameters_replace_the_configured_ones() {
    use crate::state::{InputParams, StreamParams};
    /// The playlist's `Cache-Control`, a segment's `Expires` (publication + `lifetime`) and
    /// `max-age`, and the health deadline.
    async fn check_headers(f: &Fixture, playlist: &str, lifetime: u64, deadline: f64) {
        let res = get(f, "/video/chessboard.m3u8").await;
        assert_eq!(
            header_str(&res, header::CACHE_CONTROL).as_deref(),
            Some(playlist)
        );
        let mtime = std::fs::metadata(f.media.join("chessboard1.ts"))
            .and_then(|m| m.modified())
            .expect("mtime");
        let res = get(f, "/video/chessboard1.ts").await;
        let text = header_str(&res, header::EXPIRES).expect("expires");
        let expires = SystemTime::from(header::HttpDate::from_str(&text).expect("HTTP date"));
        let whole_secs = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .expect("after 1970")
                .as_secs()
        };
        assert_eq!(
            whole_secs(expires),
            whole_secs(mtime + Duration::from_secs(lifetime)),
            "Expires = publication + planned lifetime"
        );
        let age = max_age(&header_str(&res, header::CACHE_CONTROL).expect("cache-control"));
        assert!((lifetime - 5..=lifetime).contains(&age), "max-age {age}");
        let health = json_of(get(f, "/healthz").await).await;
        assert_eq!(health["deadline_secs"], deadline);
    }
    let f = fixture();

    f.shared.update_status(|s| s.params = InputParams::Pending);
    let res = get(&f, "/stream").await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(header_str(&res, header::RETRY_AFTER).as_deref(), Some("1"));
    assert_eq!(
        header_str(&res, header::CACHE_CONTROL).as_deref(),
        Some("no-store")
    );
    // The configuration's TD 2 until the camera plays.
    check_headers(&f, "public, max-age=1", LIFETIME_SECS, 3.0).await;

    // A 25 fps camera with a 4 s GOP: TARGETDURATION 4, segments kept 300 s.
    let camera = StreamParams {
        frame_rate: crate::time::FrameRate::new(25, 1).expect("rate"),
        target_duration_secs: 4,
        segment_lifetime_secs: 300,
    };
    f.shared
        .update_status(|s| s.params = InputParams::Known(camera));
    let res = get(&f, "/stream").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        json_of(res).await,
        serde_json::json!({
            "name": "chessboard",
            "playlist": "/video/chessboard.m3u8",
            "frame_rate": {"num": 25, "den": 1},
            "fps": 25.0,
            "target_duration": 4,
        })
    );
    // Half the camera's TD 4; its planned lifetime; 1.5 x 4 s.
    check_headers(&f, "public, max-age=2", 300, 6.0).await;

    // It comes back at 15 fps.
    f.shared.update_status(|s| {
        s.params = InputParams::Known(StreamParams {
            frame_rate: crate::time::FrameRate::new(15, 1).expect("rate"),
            ..camera
        })
    });
    let json = json_of(get(&f, "/stream").await).await;
    assert_eq!(json["frame_rate"], serde_json::json!({"num": 15, "den": 1}));
    assert_eq!(json["fps"], 15.0);
}
