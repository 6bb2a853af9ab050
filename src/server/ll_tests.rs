//! The low-latency routes: blocking playlist reload, the held preload hint, delta updates and
//! their cache headers (R43, R44, R47, R48), against a media cache fed the way the publisher
//! feeds it: part bytes, then the playlist that lists them, then the live edge.
use std::sync::Mutex;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::ServiceResponse;
use actix_web::test as actest;

use std::time::SystemTime;

use super::*;
use crate::clock::WallClock;
use crate::playlist::{LowLatency, Part, Playlist, PlaylistConfig, Render};
use crate::time::Duration90k;

const PART: Duration90k = Duration90k(18_000);
const SEGMENT: Duration90k = Duration90k(90_000);
const T0_MS: i64 = 1_795_608_000_000;

/// A 1 s target duration (holds are capped at 3 s), 1 s segments of five 0.2 s parts.
fn config() -> ServerConfig {
    ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        media_dir: "/nonexistent".into(),
        name: "chessboard".parse().unwrap(),
        cors_origins: Vec::new(),
        target_duration_secs: 1,
        segment_lifetime_secs: 60,
        frame_rate: crate::time::FrameRate::new(30, 1).unwrap(),
        marker_token: None,
        recordings: None,
    }
}

/// Publishes into a [`Shared`] as the publisher does.
struct Feed {
    shared: Arc<Shared>,
    pl: Mutex<(Playlist, Duration90k)>,
}

impl Feed {
    fn new() -> Arc<Self> {
        let mut pl = Playlist::new(PlaylistConfig {
            name: "chessboard".parse().unwrap(),
            target_duration_secs: 1,
            list_size: 30,
            start_sequence: 0,
            start_discontinuity_sequence: 0,
        })
        .unwrap();
        pl.enable_low_latency(LowLatency { part_target: PART })
            .unwrap();
        let shared = Arc::new(Shared::default());
        shared.media.set_low_latency(true);
        Arc::new(Feed {
            shared,
            pl: Mutex::new((pl, Duration90k::ZERO)),
        })
    }

    fn part_bytes(seq: u64, index: u32) -> Vec<u8> {
        vec![(seq as u8) ^ (index as u8); 188 * 3]
    }

    fn publish(&self, pl: &Playlist) {
        let mut full = String::new();
        let mut delta = String::new();
        pl.render_with(&mut full, Render::Full);
        let skip = pl.skipped_segments() > 0;
        pl.render_with(&mut delta, Render::Delta);
        self.shared
            .media
            .put_playlists(&full, skip.then_some(delta.as_str()));
        self.shared.media.set_edge(pl.live_edge());
    }

    /// One more part of the open segment (the fifth closes it).
    fn part(&self) {
        let mut g = self.pl.lock().unwrap();
        let (pl, at) = &mut *g;
        let seq = pl.next_sequence();
        let index = pl.live_edge().open_parts;
        let pdt = WallClock::from_unix_millis(T0_MS) + *at;
        self.shared.media.put_part(
            seq,
            index,
            Bytes::from(Self::part_bytes(seq, index)),
            SystemTime::now(),
        );
        pl.push_part(
            Part {
                duration: PART,
                independent: index == 0,
            },
            pdt,
            false,
            index == 4,
        )
        .unwrap();
        if index == 4 {
            pl.push(SEGMENT, pdt, false).unwrap();
            *at = *at + SEGMENT;
        }
        let pl = pl.clone();
        drop(g);
        self.publish(&pl);
    }

    fn parts(&self, n: usize) {
        for _ in 0..n {
            self.part();
        }
    }

    fn end(&self) {
        let mut g = self.pl.lock().unwrap();
        g.0.end();
        let pl = g.0.clone();
        drop(g);
        self.publish(&pl);
    }
}

use bytes::Bytes;

async fn get(feed: &Feed, uri: &str) -> ServiceResponse<impl MessageBody> {
    let app =
        actest::init_service(App::new().configure(configure(&config(), feed.shared.clone()))).await;
    actest::call_service(&app, actest::TestRequest::get().uri(uri).to_request()).await
}

async fn text(res: ServiceResponse<impl MessageBody>) -> String {
    String::from_utf8(actest::read_body(res).await.to_vec()).unwrap()
}

/// Adds a part after `ms`, on the test's runtime.
fn part_later(feed: &Arc<Feed>, ms: u64) {
    let f = feed.clone();
    actix_web::rt::spawn(async move {
        actix_web::rt::time::sleep(Duration::from_millis(ms)).await;
        f.part();
    });
}

#[actix_web::test]
async fn r43_a_blocking_reload_is_held_until_the_part_is_out() {
    let feed = Feed::new();
    feed.parts(3 * 5 + 1); // segments 0-2 and part 3.0
    let now = text(get(&feed, "/video/chessboard.m3u8").await).await;
    assert!(now.contains("chessboard3.0.ts"));
    assert!(!now.contains("#EXT-X-PART:DURATION=0.200,URI=\"chessboard3.1.ts\""));
    // Part 3.1 does not exist when the request is made: the answer must wait for it.
    part_later(&feed, 300);
    let res = get(&feed, "/video/chessboard.m3u8?_HLS_msn=3&_HLS_part=1").await;
    assert_eq!(res.status(), StatusCode::OK);
    let held = text(res).await;
    assert!(
        held.contains("#EXT-X-PART:DURATION=0.200,URI=\"chessboard3.1.ts\""),
        "{held}"
    );
    hls_testkit::check_low_latency_text(&held).unwrap();
    // Already there: answered with the newest playlist, whatever else it holds.
    let res = get(&feed, "/video/chessboard.m3u8?_HLS_msn=2").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(text(res).await, held);
    // A whole segment asked for: held until its last part closes it.
    for _ in 0..3 {
        part_later(&feed, 100);
    }
    let res = get(&feed, "/video/chessboard.m3u8?_HLS_msn=3").await;
    let whole = text(res).await;
    assert!(whole.contains("\nchessboard3.ts\n"), "{whole}");
}

#[actix_web::test]
async fn r43_bad_directives_are_400() {
    let feed = Feed::new();
    feed.parts(11); // open segment 2
    for query in [
        "_HLS_msn=4",
        "_HLS_msn=4&_HLS_part=0",
        "_HLS_msn=abc",
        "_HLS_msn=-1",
        "_HLS_msn=",
        "_HLS_part=1",
        "_HLS_msn=2&_HLS_msn=3",
        "_HLS_msn=2&_HLS_part=x",
        "_HLS_msn=2&_HLS_part=99999999999",
        "_HLS_skip=NO",
    ] {
        let res = get(&feed, &format!("/video/chessboard.m3u8?{query}")).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{query}");
        let body: serde_json::Value =
            serde_json::from_slice(&actest::read_body(res).await).unwrap();
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{query}: {body}"
        );
    }
    // The next segment plus one is allowed (it blocks); others pass through untouched.
    let res = get(&feed, "/video/chessboard.m3u8?_HLS_msn=1&cache=7").await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[actix_web::test]
async fn r43_a_hold_ends_in_503_after_three_target_durations() {
    let feed = Feed::new();
    feed.parts(11);
    let res = get(&feed, "/video/chessboard.m3u8?_HLS_msn=3&_HLS_part=0").await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = serde_json::from_slice(&actest::read_body(res).await).unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("within 3 s"),
        "{body}"
    );
    // Once the stream ended, nothing blocks (the directives are ignored).
    feed.end();
    let res = get(&feed, "/video/chessboard.m3u8?_HLS_msn=9&_HLS_part=9").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(text(res).await.ends_with("#EXT-X-ENDLIST\n"));
}

#[actix_web::test]
async fn r43_a_client_that_goes_away_costs_nothing() {
    let feed = Feed::new();
    feed.parts(6);
    let app =
        actest::init_service(App::new().configure(configure(&config(), feed.shared.clone()))).await;
    let req = actest::TestRequest::get()
        .uri("/video/chessboard.m3u8?_HLS_msn=2&_HLS_part=0")
        .to_request();
    let held = actest::call_service(&app, req);
    // The request is waiting on the live edge ...
    let gone = tokio::time::timeout(Duration::from_millis(200), held).await;
    assert!(gone.is_err(), "the request should still be held");
    // ... and dropping it (the connection closed) leaves nothing behind.
    assert_eq!(feed.shared.media.edge_watchers(), 0);
}

#[actix_web::test]
async fn r44_the_hinted_part_is_held_then_sent_whole() {
    let feed = Feed::new();
    feed.parts(12); // segments 0 and 1, parts 2.0 and 2.1
    let pl = text(get(&feed, "/video/chessboard.m3u8").await).await;
    assert!(
        pl.contains("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"chessboard2.2.ts\""),
        "{pl}"
    );
    part_later(&feed, 300);
    let res = get(&feed, "/video/chessboard2.2.ts").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers().get(header::CONTENT_TYPE).unwrap(),
        crate::name::SegmentType::Mpegts.content_type()
    );
    let cc = res
        .headers()
        .get(header::CACHE_CONTROL)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cc.contains("immutable"), "{cc}");
    assert_eq!(
        actest::read_body(res).await.to_vec(),
        Feed::part_bytes(2, 2)
    );
    // Parts out already are answered from memory, ranges too.
    let res = get(&feed, "/video/chessboard2.0.ts").await;
    assert_eq!(
        actest::read_body(res).await.to_vec(),
        Feed::part_bytes(2, 0)
    );
    // Far ahead, or of a segment that closed without it: 404 at once.
    for uri in [
        "/video/chessboard6.0.ts",
        "/video/chessboard0.7.ts",
        "/video/chessboard2.01.ts",
    ] {
        let res = get(&feed, uri).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{uri}");
    }
}

#[actix_web::test]
async fn r47_skip_serves_the_delta_update() {
    let feed = Feed::new();
    feed.parts(12 * 5 + 2);
    let full = text(get(&feed, "/video/chessboard.m3u8").await).await;
    let delta = text(get(&feed, "/video/chessboard.m3u8?_HLS_skip=YES").await).await;
    let v2 = text(
        get(
            &feed,
            "/video/chessboard.m3u8?_HLS_msn=12&_HLS_part=1&_HLS_skip=v2",
        )
        .await,
    )
    .await;
    assert!(!full.contains("EXT-X-SKIP"));
    let r = hls_testkit::check_low_latency_text(&delta).unwrap();
    assert_eq!(
        r.skipped,
        Some(7),
        "segments 0-6 start more than 6 s before the end (12.4 s)\n{delta}"
    );
    assert_eq!(r.version, 9);
    assert_eq!(v2, delta);
    assert!(delta.len() < full.len());
}

/// R48: an answer to a blocking request is cacheable for a target duration; the playlist
/// without directives for half of one, rounded down (R39): not at all at a 1 s target duration,
/// a second at 2 s, so a cache in front answers most plain reloads itself (`tests/fanout.rs`).
#[actix_web::test]
async fn r48_blocking_answers_are_cacheable_the_live_playlist_briefly() {
    let feed = Feed::new();
    feed.parts(13);
    let cc = |headers: &header::HeaderMap| {
        headers
            .get(header::CACHE_CONTROL)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    };
    let live = get(&feed, "/video/chessboard.m3u8").await;
    assert_eq!(cc(live.headers()), "no-cache");
    let blocking = get(&feed, "/video/chessboard.m3u8?_HLS_msn=2&_HLS_part=0").await;
    assert_eq!(cc(blocking.headers()), "public, max-age=1");
    let two_seconds = ServerConfig {
        target_duration_secs: 2,
        ..config()
    };
    let app =
        actest::init_service(App::new().configure(configure(&two_seconds, feed.shared.clone())))
            .await;
    let call = |uri: &str| actest::TestRequest::get().uri(uri).to_request();
    let live = actest::call_service(&app, call("/video/chessboard.m3u8")).await;
    assert_eq!(cc(live.headers()), "public, max-age=1");
    let blocking =
        actest::call_service(&app, call("/video/chessboard.m3u8?_HLS_msn=2&_HLS_part=0")).await;
    assert_eq!(cc(blocking.headers()), "public, max-age=2");
}

#[actix_web::test]
async fn r52_no_playlist_is_served_before_a_complete_segment() {
    let feed = Feed::new();
    // Nothing published yet: held, then 503 with Retry-After after 3 target durations.
    let res = get(&feed, "/video/chessboard.m3u8").await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers().get(header::RETRY_AFTER).unwrap(), "1");
    let body: serde_json::Value = serde_json::from_slice(&actest::read_body(res).await).unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("complete segments yet"),
        "{body}"
    );
    // Segment 0 and parts of segment 1 are out: the playlist (plain or blocking) waits for
    // segment 1 and then lists both whole.
    feed.parts(7);
    for _ in 0..3 {
        part_later(&feed, 100);
    }
    let started = std::time::Instant::now();
    let held = text(get(&feed, "/video/chessboard.m3u8").await).await;
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert!(held.contains("#EXTINF:1.000,\nchessboard0.ts\n"), "{held}");
    assert!(held.contains("#EXTINF:1.000,\nchessboard1.ts\n"), "{held}");
    hls_testkit::check_low_latency_text(&held).unwrap();
    for uri in [
        "/video/chessboard.m3u8?_HLS_msn=1&_HLS_part=0",
        "/video/chessboard.m3u8?_HLS_skip=YES",
    ] {
        part_later(&feed, 50);
        let res = get(&feed, uri).await;
        assert_eq!(res.status(), StatusCode::OK, "{uri}");
        assert!(text(res).await.contains("\nchessboard0.ts\n"), "{uri}");
    }
}

#[actix_web::test]
async fn r42_a_part_no_longer_held_is_answered_from_its_segment() {
    let feed = Feed::new();
    feed.parts(7); // segment 0 whole, parts 1.0 and 1.1
    let media = &feed.shared.media;
    let whole: Vec<u8> = (0..5).flat_map(|i| Feed::part_bytes(0, i)).collect();
    media.put_segment(0, Bytes::from(whole), SystemTime::now(), None);
    // Segment 10 pushes the parts of segments before 1 out of memory; segment 0 stays.
    media.put_segment(10, Bytes::from(vec![0u8; 188]), SystemTime::now(), None);
    assert!(media.part(0, 3).is_none());
    let res = get(&feed, "/video/chessboard0.3.ts").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        actest::read_body(res).await.to_vec(),
        Feed::part_bytes(0, 3)
    );
    // Once the segment is gone (its file deleted), so are its parts.
    media.remove_segment(0);
    let res = get(&feed, "/video/chessboard0.3.ts").await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}
