//! The media answers: the live playlist (this run's from memory, after the holds of R43 and R52,
//! or a previous run's file), parts, the dispatch of `/video/{file}` between playlist, segment,
//! part and init segment, and the headers every answer carries ([`finish_headers`]). The same
//! functions answer through actix-web's routes ([`super::routes`]) and on the socket itself
//! ([`super::front`]); segments and init segments are answered by [`super::segments`].

use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::cors::{self, CorsPolicy};
use super::error::{blocking_error, json_error, not_found_error};
use super::media;
use super::segments::{
    self, init_in_memory, segment_from_disk, segment_from_memory, segment_in_memory,
};
use super::state::{playlist_cache_control, AppState, StreamView};
use crate::error::{Error, ErrorKind};
use crate::name::MediaFile;
use crate::state::StreamParams;

/// `Content-Type` of a playlist (RFC 8216 §4, R8).
pub(crate) const PLAYLIST_CONTENT_TYPE: &str = "application/vnd.apple.mpegurl";

// Segments and parts: `SegmentType::content_type` (`video/mp2t`, RFC 3555 §4.2.9; or
// `video/mp4` for fMP4, RFC 4337).

/// `Cache-Control` from text built of ASCII.
pub(crate) fn cache_control(text: String) -> HeaderValue {
    HeaderValue::try_from(text).expect("cache-control built from ASCII")
}

/// Longest hold of a blocking request or a request for a part not yet out (3 TD, R43).
pub(crate) fn hold_cap(p: &StreamParams) -> Duration {
    Duration::from_secs(3 * p.target_duration_secs)
}

/// The headers every answer carries, whichever front end writes it: `nosniff` and
/// `no-referrer` unless the handler set them, and while CORS is on `Vary: Origin` and, for an
/// allowed `origin`, `Access-Control-Allow-Origin` with the headers a script may read ([`cors`]).
pub(crate) fn finish_headers(
    cors: &CorsPolicy,
    origin: Option<&HeaderValue>,
    h: &mut header::HeaderMap,
) {
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    }
    if !cors.is_enabled() {
        return;
    }
    // One Vary header, so a cache reading only the first sees both.
    let vary = match h.get(header::VARY).and_then(|v| v.to_str().ok()) {
        Some(v) => HeaderValue::try_from(format!("{v}, Origin"))
            .unwrap_or(HeaderValue::from_static("Origin")),
        None => HeaderValue::from_static("Origin"),
    };
    h.insert(header::VARY, vary);
    if let Some(origin) = origin.filter(|o| o.to_str().is_ok_and(|o| cors.allows(o))) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(cors::EXPOSE_HEADERS),
        );
    }
}

/// `GET /video/{file}` for anything but the playlist: a segment from memory, else from its
/// file; a part (see [`part`]).
pub(crate) async fn segment(
    req: HttpRequest,
    file: web::Path<String>,
    app: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let (state, file_kind) = app.streams.by_file(&file).ok_or_else(not_found_error)?;
    let state = &state;
    let seq = match Some(file_kind) {
        Some(MediaFile::Segment(seq)) => seq,
        Some(MediaFile::Part { sequence, index }) => {
            return part(req.headers(), state, sequence, index).await
        }
        Some(MediaFile::Init(init)) => {
            if let Some(res) = init_in_memory(state, req.headers(), init) {
                return Ok(res);
            }
            return segment_from_disk(state, req.headers(), file.into_inner()).await;
        }
        _ => return Err(not_found_error()),
    };
    if let Some(res) = segment_in_memory(state, req.headers(), seq) {
        return Ok(res);
    }
    segment_from_disk(state, req.headers(), file.into_inner()).await
}

/// True when `Accept-Encoding` takes gzip (RFC 9110 §12.5.3): `gzip` with a non-zero quality,
/// or, when gzip is not named, `*` with a non-zero quality. `gzip;q=0, *` refuses gzip.
pub(crate) fn accepts_gzip(headers: &header::HeaderMap) -> bool {
    let mut gzip = None;
    let mut any = None;
    for item in headers
        .get_all(header::ACCEPT_ENCODING)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let q = parts
            .find_map(|p| {
                let p = p.trim();
                p.strip_prefix("q=")
                    .or_else(|| p.strip_prefix("Q="))
                    .map(|q| q.trim().parse::<f32>().unwrap_or(0.0))
            })
            .unwrap_or(1.0);
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(q > 0.0);
        } else if coding == "*" {
            any = Some(q > 0.0);
        }
    }
    gzip.or(any).unwrap_or(false)
}

/// The low-latency directives of a playlist request (rfc8216bis §6.2.5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct HlsQuery {
    pub(crate) msn: Option<u64>,
    pub(crate) part: Option<u32>,
    pub(crate) skip: bool,
}

/// Reads `_HLS_msn`, `_HLS_part` and `_HLS_skip` (other parameters are left alone, as a cache
/// busting parameter may be there): each at most once, numbers in decimal, `_HLS_part` only with
/// `_HLS_msn` (R43), `_HLS_skip` `YES` or `v2`.
pub(crate) fn parse_hls_query(query: &str) -> Result<HlsQuery, Error> {
    let mut q = HlsQuery::default();
    let mut seen = [false; 3];
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match name {
            "_HLS_msn" => 0,
            "_HLS_part" => 1,
            "_HLS_skip" => 2,
            _ => continue,
        };
        if std::mem::replace(&mut seen[slot], true) {
            crate::bail!(InvalidArgument, "{name} given twice");
        }
        let number = || {
            (!value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()))
                .then(|| value.parse::<u64>().ok())
                .flatten()
                .ok_or_else(|| {
                    crate::err!(
                        InvalidArgument,
                        "{name} must be a decimal integer, got {value:?}"
                    )
                })
        };
        match slot {
            0 => q.msn = Some(number()?),
            1 => {
                q.part =
                    Some(u32::try_from(number()?).map_err(|_| {
                        crate::err!(InvalidArgument, "_HLS_part {value} is too large")
                    })?)
            }
            _ => {
                if value != "YES" && value != "v2" {
                    crate::bail!(
                        InvalidArgument,
                        "_HLS_skip must be YES or v2, got {value:?}"
                    );
                }
                q.skip = true;
            }
        }
    }
    if q.part.is_some() && q.msn.is_none() {
        crate::bail!(
            InvalidArgument,
            "_HLS_part needs _HLS_msn (rfc8216bis §6.2.5.2)"
        );
    }
    Ok(q)
}

/// Waits until the live edge satisfies `ready`, at most `cap`; `false` on timeout. An async
/// wait on the publisher's notification: no polling, and a request whose client went away is
/// dropped with its future. Counted in `hls_blocking_waits` while it waits.
pub(crate) async fn wait_for_edge(
    state: &StreamView,
    cap: Duration,
    mut ready: impl FnMut(&crate::playlist::LiveEdge) -> bool,
) -> bool {
    /// One waiting request in the gauge, for as long as it lives (a dropped request too).
    struct Waiting<'a>(&'a metrics::Gauge);
    impl Drop for Waiting<'_> {
        fn drop(&mut self) {
            self.0.decrement(1.0);
        }
    }
    let gauge = &state.http.blocking_waits;
    gauge.increment(1.0);
    let _waiting = Waiting(gauge);
    let mut rx = state.shared.media.watch_edge();
    let satisfied = tokio::time::timeout(cap, rx.wait_for(|e| ready(e)))
        .await
        .is_ok_and(|r| r.is_ok());
    satisfied
}

pub(crate) async fn playlist(
    req: HttpRequest,
    file: web::Path<String>,
    app: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let (state, file_kind) = app.streams.by_file(&file).ok_or_else(not_found_error)?;
    let state = &state;
    match Some(file_kind) {
        Some(MediaFile::Playlist) => {}
        Some(MediaFile::Multivariant) => return multivariant(req.headers(), state).await,
        _ => return Err(not_found_error()),
    }
    let params = state.params();
    if let Some(res) = playlist_from_memory(state, req.headers(), req.query_string()).await? {
        return Ok(res);
    }
    // A previous run's playlist, before this run published one.
    let dir = state.media_dir.clone();
    let gzip = accepts_gzip(req.headers());
    let read = web::block(move || {
        media::read_playlist(&dir, &file).map(|b| {
            if gzip {
                crate::media_cache::gzip(&b)
            } else {
                web::Bytes::from(b)
            }
        })
    })
    .await
    .map_err(blocking_error)?;
    let body = match read {
        Ok(body) => body,
        // None on disk either: the stream is starting. Held until this run's playlist lists
        // enough segments (R52), then that one.
        Err(e) if e.kind() == ErrorKind::NotFound => {
            if let Some(unavailable) = hold_until_first_segment(state, &params).await {
                return Ok(unavailable);
            }
            return match playlist_from_memory(state, req.headers(), req.query_string()).await? {
                Some(res) => Ok(res),
                None => Err(Error::new(ErrorKind::NotFound, "no playlist yet")),
            };
        }
        Err(e) => return Err(e),
    };
    let mut res = HttpResponse::Ok();
    res.content_type(PLAYLIST_CONTENT_TYPE)
        .insert_header((
            header::CACHE_CONTROL,
            cache_control(playlist_cache_control(params.target_duration_secs)),
        ))
        .insert_header((header::VARY, "Accept-Encoding"));
    if gzip {
        res.insert_header((header::CONTENT_ENCODING, "gzip"));
    }
    Ok(res.body(body))
}

/// Complete segments a low-latency playlist lists before it is served (R52). One is what RFC
/// 8216 needs; GStreamer 1.22's `hlsdemux2` (what `urisourcebin` picks) cannot match a first
/// playlist of one segment against the next one (its `gst_hls_media_playlist_sync_to_playlist`
/// never looks at index 0), loses sync and never advances, so two.
pub(crate) const SEGMENTS_BEFORE_SERVING: usize = 2;

/// Complete segments a playlist lists before it is served (R52): [`SEGMENTS_BEFORE_SERVING`]
/// with low latency (players start PART-HOLD-BACK from the end); without, enough that a player
/// holding back three segments (R38) still has more than a second to seek in: more than
/// `3 × TD + 1 s`, four segments of two seconds. Shaka 5 (`hls_parser.js`
/// `changePresentationTimelineToLive_`) holds back the whole playlist when it loads one of three
/// segments or fewer; its seek range is then under a second, it sets no live seekable range
/// (`streaming_engine.js`, only when longer than 1 s), Chrome drops its start seek without a
/// `seeking` event while nothing is buffered, and its playhead keeps the start time for good: it
/// buffers ten seconds past it and stops (`video_wrapper.js` `getTime`).
pub(crate) fn segments_before_serving(low_latency: bool, target_duration_secs: u64) -> usize {
    if low_latency {
        return SEGMENTS_BEFORE_SERVING;
    }
    // The smallest n with (n - 3) × TD > 1 s: a segment lasts more than TD - 1 s (R13), so this
    // holds for the segments' own durations too (except segments of half a second or less).
    let td = target_duration_secs.max(1);
    let n = 3 + (1 / td) + 1;
    (n as usize).max(SEGMENTS_BEFORE_SERVING)
}

/// How long a playlist request waits for [`segments_before_serving`]: [`hold_cap`], or the time
/// those segments take and one more, if longer (a client that asks the instant the origin starts
/// is answered, not sent away).
fn first_playlist_cap(params: &StreamParams, segments: usize) -> Duration {
    hold_cap(params).max(Duration::from_secs(
        (segments as u64 + 1) * params.target_duration_secs,
    ))
}

/// Holds a playlist request until this run's playlist lists [`segments_before_serving`]
/// complete segments (R52): a playlist of parts alone, or none at all, makes ffmpeg and
/// GStreamer give up for good, a classic one too short to seek in stops Shaka. At most
/// [`first_playlist_cap`]; then `503` with `Retry-After`. Immediate once the stream has them (a
/// restarted stream's first part already shows the previous run's segments) or has ended.
pub(crate) async fn hold_until_first_segment(
    state: &StreamView,
    params: &StreamParams,
) -> Option<HttpResponse> {
    // Asked each time: the pipeline turns low latency on as it starts, maybe after the request.
    let media = &state.shared.media;
    let td = params.target_duration_secs;
    let needed = || segments_before_serving(media.is_low_latency(), td);
    // Never more than the window keeps (a --list-size of 3).
    let ready = |e: &crate::playlist::LiveEdge| {
        let needed = match e.list_size {
            0 => needed(),
            window => needed().min(window),
        };
        e.segments >= needed || e.ended
    };
    if ready(&media.watch_edge().borrow()) {
        return None;
    }
    let cap = first_playlist_cap(params, needed());
    if wait_for_edge(state, cap, ready).await {
        return None;
    }
    let message = format!(
        "the stream has fewer than {} complete segments yet (waited {} s); retry in a moment",
        needed(),
        cap.as_secs()
    );
    let mut res = json_error(StatusCode::SERVICE_UNAVAILABLE, &message);
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    Some(res)
}

/// The playlist from memory: this run's newest version, after the hold a blocking request asks
/// for (R43); `None` before this run has published one (the file on disk is then the answer).
pub(crate) async fn playlist_from_memory(
    state: &StreamView,
    headers: &header::HeaderMap,
    query: &str,
) -> Result<Option<HttpResponse>, Error> {
    let media = &state.shared.media;
    let params = state.params();
    let low_latency = media.is_low_latency();
    // Without low latency the directives are ignored: a classic server.
    let q = if low_latency {
        parse_hls_query(query)?
    } else {
        HlsQuery::default()
    };
    // This run has published: its playlist is served once it lists enough segments (R52).
    if media.playlists().is_some() {
        if let Some(unavailable) = hold_until_first_segment(state, &params).await {
            return Ok(Some(unavailable));
        }
    }
    if let Some(msn) = q.msn {
        // R43: block until the playlist holds segment `msn` (or its part), at most 3 TD.
        let edge = *media.watch_edge().borrow();
        if !edge.ended && msn > edge.open_sequence.saturating_add(1) {
            return Err(crate::err!(
                InvalidArgument,
                "_HLS_msn {msn} is beyond the next segment ({}) plus one",
                edge.open_sequence
            ));
        }
        let cap = hold_cap(&params);
        if !edge.satisfies(msn, q.part)
            && !wait_for_edge(state, cap, |e| e.satisfies(msn, q.part)).await
        {
            return Err(crate::err!(
                Unavailable,
                "segment {msn}{} did not come within {} s",
                q.part.map(|p| format!(" part {p}")).unwrap_or_default(),
                cap.as_secs()
            ));
        }
    }
    // This run's newest version, rendered and compressed once by the publisher.
    if let Some(bodies) = media.playlists() {
        let body = match (q.skip, bodies.delta) {
            (true, Some(delta)) => delta,
            _ => bodies.full,
        };
        let cache_control = match (low_latency, q.msn.is_some()) {
            // Any answer to the same blocking request holds what it asked for: a shared cache
            // may give it to every client asking the same (R48).
            (true, true) => {
                cache_control(format!("public, max-age={}", params.target_duration_secs))
            }
            // Without directives, with or without parts: at most half a target duration (R39),
            // so a cache in front answers most reloads itself (R48). A low-latency player
            // follows the edge with blocking reloads, and tells a cached copy's age by `Age`.
            _ => cache_control(playlist_cache_control(params.target_duration_secs)),
        };
        let mut res = HttpResponse::Ok();
        res.content_type(PLAYLIST_CONTENT_TYPE)
            .insert_header((header::CACHE_CONTROL, cache_control))
            .insert_header((header::VARY, "Accept-Encoding"));
        return Ok(Some(if accepts_gzip(headers) {
            res.insert_header((header::CONTENT_ENCODING, "gzip"))
                .body(body.gzip)
        } else {
            res.body(body.plain)
        }));
    }
    Ok(None)
}

/// `NAME.index.m3u8` from memory: the publisher's newest version (its bit rates change with
/// every segment; players read it once). `None` before the first segment.
pub(crate) fn multivariant_from_memory(
    headers: &header::HeaderMap,
    state: &StreamView,
) -> Option<HttpResponse> {
    let body = state.shared.media.multivariant()?;
    let td = state.params().target_duration_secs;
    let mut res = HttpResponse::Ok();
    res.content_type(PLAYLIST_CONTENT_TYPE)
        .insert_header((
            header::CACHE_CONTROL,
            cache_control(playlist_cache_control(td)),
        ))
        .insert_header((header::VARY, "Accept-Encoding"));
    Some(if accepts_gzip(headers) {
        res.insert_header((header::CONTENT_ENCODING, "gzip"))
            .body(body.gzip)
    } else {
        res.body(body.plain)
    })
}

/// `GET /video/NAME.index.m3u8`: from memory; before the first segment, held as the media
/// playlist is (R52), then `503` with `Retry-After` if there is still none.
pub(crate) async fn multivariant(
    headers: &header::HeaderMap,
    state: &StreamView,
) -> Result<HttpResponse, Error> {
    if let Some(res) = multivariant_from_memory(headers, state) {
        return Ok(res);
    }
    if let Some(unavailable) = hold_until_first_segment(state, &state.params()).await {
        return Ok(unavailable);
    }
    Ok(multivariant_from_memory(headers, state).unwrap_or_else(|| {
        let mut res = json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the stream has no segment yet; retry in a moment",
        );
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        res
    }))
}

/// A part: from memory only (parts are never written to disk). The hinted part, or any part of
/// the open segment or the next one, may be asked for before it is complete (R44): the request
/// is held until it is published (at most 3 TD), then answered whole.
pub(crate) async fn part(
    headers: &header::HeaderMap,
    state: &StreamView,
    sequence: u64,
    index: u32,
) -> Result<HttpResponse, Error> {
    let media = &state.shared.media;
    let params = state.params();
    let lifetime = Duration::from_secs(params.segment_lifetime_secs);
    if let Some(cached) = media.part(sequence, index) {
        return Ok(segment_from_memory(
            headers,
            cached,
            lifetime,
            state.name.segment_type().content_type(),
        ));
    }
    // No longer held, but its segment is: the same bytes, from the segment in memory or on disk.
    if let Some((offset, len)) = media.part_range(sequence, index) {
        return segments::part_of_segment(state, headers, sequence, offset, len).await;
    }
    let edge = *media.watch_edge().borrow();
    let may_come = media.is_low_latency()
        && !edge.ended
        && (sequence == edge.open_sequence
            || (sequence == edge.open_sequence.saturating_add(1) && index == 0));
    if may_come {
        // Published (the part is put in memory before the edge moves), or its segment is
        // complete without it: stop waiting.
        wait_for_edge(state, hold_cap(&params), |e| {
            e.ended
                || e.open_sequence > sequence
                || (e.open_sequence == sequence && e.open_parts > index)
        })
        .await;
        if let Some(cached) = media.part(sequence, index) {
            return Ok(segment_from_memory(
                headers,
                cached,
                lifetime,
                state.name.segment_type().content_type(),
            ));
        }
    }
    Err(not_found_error())
}
