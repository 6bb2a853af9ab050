//! Review routes over the recording index (issue 21):
//!
//! | route | answer |
//! | --- | --- |
//! | `GET /recordings/NAME` | `{"name", "spans": [{"start", "end", "bytes", "segments"}]}`: what is recorded, contiguous runs oldest first (the timeline) |
//! | `GET /recordings/NAME.m3u8?start=RFC3339&end=RFC3339` | a VOD playlist of the segments overlapping the range (at most 24 h, else `400`): `EXT-X-PLAYLIST-TYPE:VOD`, `EXT-X-ENDLIST`, PDT on every segment, `EXT-X-DISCONTINUITY` at gaps, the markers in range as `EXT-X-DATERANGE`; gzip when accepted |
//! | `GET /markers/{id}/thumbnail.jpg` | the marker's frame as a JPEG `--thumbnail-width` wide, decoded from its retained segment on the blocking pool, cached on disk |
//! | `GET /markers/{id}/clip.m3u8?before=S&after=S` | a VOD playlist of the marker's clip (defaults 5 and 10 s, at most 300) |
//! | `GET /markers/{id}/clip.mp4`, `clip.ts` | the clip's segments remuxed without re-encoding (MP4 with its index first) or end to end (TS); streamed, byte ranges, `Content-Disposition: attachment` |
//!
//! A marker route answers `404` for an unknown id, `202` with a JSON body while the clip's
//! end is not recorded yet, `410` once the clip's retention has passed or its segments are
//! gone. Segment URIs in the playlists point at `/video/` (relative), where retained segments
//! are served from disk like live ones.
//!
//! Nothing here blocks a worker: the index is asked through its own thread
//! ([`crate::recording::db::DbHandle::call`]); files are read and thumbnails decoded on the
//! blocking pool (`web::block`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use actix_web::body::SizedStream;
use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use serde::Serialize;

use super::answers::accepts_gzip;
use super::error::{blocking_error, json_error, not_found_error};
use super::state::{AppState, StreamView};
use crate::clock::WallClock;
use crate::error::{Error, ErrorKind};
use crate::markers::Marker;
use crate::recording::clip::{self, ClipFile};
use crate::recording::db::SegmentRow;
use crate::recording::recorder::{CLIP_AFTER, CLIP_BEFORE};
use crate::recording::{thumbnail, vod, Recordings};
use crate::time::Duration90k;

/// Longest range of one VOD playlist.
pub(crate) const MAX_RANGE_MS: i64 = 24 * 3600 * 1000;
/// Longest `before` or `after` of a clip, seconds.
pub(crate) const MAX_CLIP_SIDE_SECS: f64 = 300.0;

/// A review route's view: the server's recording index and the stream asked about.
struct RecState {
    recordings: Option<Recordings>,
    view: StreamView,
}

impl std::ops::Deref for RecState {
    type Target = StreamView;
    fn deref(&self) -> &StreamView {
        &self.view
    }
}

impl RecState {
    fn of(app: &AppState, view: StreamView) -> RecState {
        RecState {
            recordings: app.recordings.clone(),
            view,
        }
    }
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidArgument, msg)
}

/// The recording of stream `name` when it is this server's stream and it records.
fn recording<'a>(state: &'a RecState, name: &str) -> Result<&'a Recordings, Error> {
    let r = state.recordings.as_ref().ok_or_else(not_found_error)?;
    if name != state.name.as_str() || r.settings_of(name).is_none() {
        return Err(not_found_error());
    }
    Ok(r)
}

fn query(req: &HttpRequest) -> HashMap<String, String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect()
}

fn date_param(q: &HashMap<String, String>, key: &str) -> Result<WallClock, Error> {
    let v = q
        .get(key)
        .ok_or_else(|| invalid(format!("{key} is required (RFC 3339)")))?;
    WallClock::parse_rfc3339(v)
        .ok_or_else(|| invalid(format!("{key} must be an RFC 3339 date, got {v:?}")))
}

#[derive(Serialize)]
struct SpanJson {
    start: String,
    end: String,
    bytes: u64,
    segments: u64,
}

#[derive(Serialize)]
struct SpansJson<'a> {
    name: &'a str,
    spans: Vec<SpanJson>,
}

/// `GET /recordings/{name}`: the JSON spans, or with a `.m3u8` suffix the VOD playlist.
pub(crate) async fn recordings(
    req: HttpRequest,
    path: web::Path<String>,
    app: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let name = path.strip_suffix(".m3u8").unwrap_or(&path);
    let view = app.streams.by_name(name).ok_or_else(not_found_error)?;
    let state = RecState::of(&app, view);
    if let Some(name) = path.strip_suffix(".m3u8") {
        return range_playlist(&req, name, &state).await;
    }
    let r = recording(&state, &path)?;
    let stream = path.into_inner();
    let spans = r
        .db()
        .call({
            let stream = stream.clone();
            move |db| db.spans(&stream)
        })
        .await?;
    let body = SpansJson {
        name: &stream,
        spans: spans
            .into_iter()
            .map(|s| SpanJson {
                start: s.start.to_rfc3339(),
                end: s.end.to_rfc3339(),
                bytes: s.bytes,
                segments: s.segments,
            })
            .collect(),
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .json(body))
}

/// The markers of this stream whose frame is in `[start, end)`, as DATERANGEs.
fn ranges_in(
    state: &RecState,
    start: WallClock,
    end: WallClock,
) -> Vec<crate::playlist::DateRange> {
    let Some(clock) = state.shared.clock() else {
        return Vec::new();
    };
    state
        .shared
        .markers
        .after_id(0)
        .iter()
        .filter(|m| (start..end).contains(&clock.epoch.at(m.at)))
        .map(|m| vod::marker_range(clock.epoch, m))
        .collect()
}

/// A VOD playlist of `rows` (URIs relative to a playlist `depth` directories below the root),
/// gzipped when the client takes it.
fn vod_answer(
    req: &HttpRequest,
    rows: &[SegmentRow],
    ranges: &[crate::playlist::DateRange],
    depth: usize,
) -> Result<HttpResponse, Error> {
    let up = "../".repeat(depth);
    let segments = vod::segments_from_rows(rows, |r| format!("{up}video/{}", r.file), |_| None);
    let text = vod::render(&segments, ranges).map_err(|e| match e {
        vod::VodError::Empty => Error::new(ErrorKind::NotFound, "nothing recorded in the range"),
        e => Error::new(ErrorKind::Internal, e.to_string()),
    })?;
    let mut res = HttpResponse::Ok();
    res.content_type("application/vnd.apple.mpegurl")
        // A VOD playlist never changes, but what is recorded in a range may still grow.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::VARY, "Accept-Encoding"));
    Ok(if accepts_gzip(req.headers()) {
        res.insert_header((header::CONTENT_ENCODING, "gzip"))
            .body(crate::media_cache::gzip(text.as_bytes()))
    } else {
        res.body(text)
    })
}

/// `GET /recordings/{name}.m3u8?start=&end=`.
async fn range_playlist(
    req: &HttpRequest,
    name: &str,
    state: &RecState,
) -> Result<HttpResponse, Error> {
    let r = recording(state, name)?;
    let q = query(req);
    let (start, end) = (date_param(&q, "start")?, date_param(&q, "end")?);
    if end <= start {
        return Err(invalid("end must be after start"));
    }
    if end.unix_millis() - start.unix_millis() > MAX_RANGE_MS {
        return Err(invalid(
            "a playlist covers at most 24 hours: ask for several",
        ));
    }
    let stream = name.to_owned();
    let rows = r
        .db()
        .call(move |db| db.segments_in(&stream, start, end))
        .await?;
    vod_answer(req, &rows, &ranges_in(state, start, end), 1)
}

// ---- markers ----

/// A marker of this stream, its frame's date, and the stream's recording.
struct Found<'a> {
    marker: Marker,
    at: WallClock,
    stream: String,
    recordings: &'a Recordings,
    settings: crate::recording::RecordingSettings,
    /// The stream has ended: what is recorded is all there will be.
    ended: bool,
}

fn find_marker<'a>(state: &'a RecState, id: &str) -> Result<Found<'a>, Error> {
    let r = recording(state, state.name.as_str())?;
    let settings = r
        .settings_of(state.name.as_str())
        .ok_or_else(not_found_error)?;
    let id: u64 = id.parse().map_err(|_| not_found_error())?;
    let marker = id
        .checked_sub(1)
        .and_then(|prev| {
            state
                .shared
                .markers
                .after_id_at_most(prev, 1)
                .into_iter()
                .next()
        })
        .filter(|m| m.id == id)
        .ok_or_else(|| Error::new(ErrorKind::NotFound, format!("no marker {id}")))?;
    let clock = state.shared.clock().ok_or_else(not_found_error)?;
    Ok(Found {
        at: clock.epoch.at(marker.at),
        marker,
        stream: state.name.as_str().to_owned(),
        recordings: r,
        settings,
        ended: state.shared.status().ended,
    })
}

#[derive(Serialize)]
struct Pending<'a> {
    status: &'a str,
    /// When the clip is recorded (its end), RFC 3339.
    ready_at: String,
}

/// `202`: the clip's end is not recorded yet.
fn pending(ready_at: WallClock) -> HttpResponse {
    HttpResponse::Accepted()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::RETRY_AFTER, "2"))
        .json(Pending {
            status: "recording",
            ready_at: ready_at.to_rfc3339(),
        })
}

fn gone() -> HttpResponse {
    json_error(
        StatusCode::GONE,
        "this marker's recording has expired (--clip-retention, --storage-max)",
    )
}

/// Seconds from the query (`before`, `after`), within 0..=300.
fn side(
    q: &HashMap<String, String>,
    key: &str,
    default: Duration90k,
) -> Result<Duration90k, Error> {
    let Some(v) = q.get(key) else {
        return Ok(default);
    };
    let secs: f64 = v
        .parse()
        .ok()
        .filter(|s: &f64| s.is_finite() && (0.0..=MAX_CLIP_SIDE_SECS).contains(s))
        .ok_or_else(|| invalid(format!("{key} must be seconds from 0 to 300, got {v:?}")))?;
    Ok(Duration90k::from_secs_f64(secs).unwrap_or(Duration90k::ZERO))
}

/// What a marker's clip is made of, or the answer that says why not.
enum Clip {
    Rows(Vec<SegmentRow>),
    Answer(HttpResponse),
}

/// The segments of the clip `[at - before, at + after)`: `202` while its end is not
/// recorded, `410` once the clip's retention passed or nothing of it is left. A clip is one
/// continuous run: it stops at the first gap or restart after the marker's segment.
async fn clip_rows(f: &Found<'_>, before: Duration90k, after: Duration90k) -> Result<Clip, Error> {
    let now = WallClock::now();
    let clip_ms = i64::try_from(f.settings.clip_retention.as_millis()).unwrap_or(i64::MAX);
    if now.unix_millis() > f.at.unix_millis().saturating_add(clip_ms) {
        return Ok(Clip::Answer(gone()));
    }
    let start = WallClock::from_unix_millis(f.at.unix_millis() - before.as_millis() as i64);
    let end = f.at + after;
    let stream = f.stream.clone();
    let (rows, end_recorded) = f
        .recordings
        .db()
        .call(move |db| {
            let rows = db.segments_in(&stream, start, end)?;
            // Is the clip's end recorded: does a segment reach it?
            let reached = rows.last().is_some_and(|r| r.end() >= end)
                || !db
                    .segments_in(&stream, end, end + Duration90k::from_secs(3600))?
                    .is_empty();
            Ok((rows, reached))
        })
        .await?;
    if !end_recorded && !f.ended {
        return Ok(Clip::Answer(pending(end)));
    }
    // The run around the marker's own segment, up to the first gap or restart either side.
    let Some(i) = rows.iter().position(|r| r.start <= f.at && f.at < r.end()) else {
        return Ok(Clip::Answer(gone()));
    };
    let mut first = i;
    while first > 0
        && !rows[first].discontinuity
        && rows[first - 1].end().unix_millis() + crate::recording::db::SPAN_TOLERANCE_MS
            >= rows[first].start.unix_millis()
    {
        first -= 1;
    }
    let mut last = i;
    while last + 1 < rows.len()
        && !rows[last + 1].discontinuity
        && rows[last].end().unix_millis() + crate::recording::db::SPAN_TOLERANCE_MS
            >= rows[last + 1].start.unix_millis()
    {
        last += 1;
    }
    Ok(Clip::Rows(rows[first..=last].to_vec()))
}

/// `GET /markers/{id}/{file}`: `thumbnail.jpg`, `clip.m3u8`, `clip.mp4`, `clip.ts`.
pub(crate) async fn marker_file(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    app: web::Data<AppState>,
    view: StreamView,
) -> Result<HttpResponse, Error> {
    let state = RecState::of(&app, view);
    let (id, file) = path.into_inner();
    match file.as_str() {
        "thumbnail.jpg" | "clip.m3u8" | "clip.mp4" | "clip.ts" => {}
        _ => return Err(not_found_error()),
    }
    let f = find_marker(&state, &id)?;
    let q = query(&req);
    match file.as_str() {
        "thumbnail.jpg" => thumbnail_answer(&f, &state).await,
        "clip.m3u8" => {
            let (before, after) = (
                side(&q, "before", CLIP_BEFORE)?,
                side(&q, "after", CLIP_AFTER)?,
            );
            match clip_rows(&f, before, after).await? {
                Clip::Answer(res) => Ok(res),
                Clip::Rows(rows) => {
                    let start = rows[0].start;
                    let end = rows.last().map_or(start, SegmentRow::end);
                    vod_answer(&req, &rows, &ranges_in(&state, start, end), 2)
                }
            }
        }
        kind => {
            let mp4 = kind == "clip.mp4";
            match clip_rows(&f, CLIP_BEFORE, CLIP_AFTER).await? {
                Clip::Answer(res) => Ok(res),
                Clip::Rows(rows) => clip_answer(&req, &state, &f, rows, mp4).await,
            }
        }
    }
}

/// The segment files of `rows`, read whole on demand (on the blocking pool).
fn loader(
    dir: PathBuf,
    files: Arc<Vec<String>>,
) -> impl FnMut(usize) -> std::io::Result<Vec<u8>> + Clone {
    move |i| {
        let opened = super::media::open_inside(&dir, &files[i])
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::NotFound, e.to_string()))?;
        let mut buf = Vec::with_capacity(opened.metadata.len() as usize);
        std::io::Read::read_to_end(&mut &opened.file, &mut buf)?;
        Ok(buf)
    }
}

/// `clip.mp4` / `clip.ts`: planned on the blocking pool (the MP4's index needs every access
/// unit's size), then streamed a segment at a time, with one byte range if asked.
async fn clip_answer(
    req: &HttpRequest,
    state: &RecState,
    f: &Found<'_>,
    rows: Vec<SegmentRow>,
    mp4: bool,
) -> Result<HttpResponse, Error> {
    let dir = state.media_dir.clone();
    let files: Arc<Vec<String>> = Arc::new(rows.iter().map(|r| r.file.clone()).collect());
    let lens: Vec<u64> = rows.iter().map(|r| r.bytes).collect();
    let load = loader(dir, files);
    let plan_load = load.clone();
    let planned = web::block(move || {
        if mp4 {
            ClipFile::mp4(lens.len(), plan_load)
        } else {
            Ok(ClipFile::ts(&lens))
        }
    })
    .await
    .map_err(blocking_error)?;
    let clip = match planned {
        Ok(c) => Arc::new(c),
        Err(clip::ClipError::Io { .. }) => return Ok(gone()),
        Err(e) => return Err(Error::new(ErrorKind::Internal, e.to_string())),
    };
    let total = clip.len();
    let range = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<header::Range>().ok());
    let (status, first, len) = match range {
        Some(header::Range::Bytes(specs)) if specs.len() == 1 => {
            match specs[0].to_satisfiable_range(total) {
                Some((a, b)) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
                None => {
                    return Ok(HttpResponse::RangeNotSatisfiable()
                        .insert_header((header::CONTENT_RANGE, format!("bytes */{total}")))
                        .finish())
                }
            }
        }
        _ => (StatusCode::OK, 0, total),
    };
    let stamp = time_stamp(f.at);
    let ext = if mp4 { "mp4" } else { "ts" };
    let filename = format!("{}-{stamp}-{}.{ext}", state.name, f.marker.id);
    let mut res = HttpResponse::build(status);
    res.content_type(if mp4 { "video/mp4" } else { "video/mp2t" })
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((header::CACHE_CONTROL, "private, max-age=60"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ));
    if status == StatusCode::PARTIAL_CONTENT {
        res.insert_header((
            header::CONTENT_RANGE,
            format!("bytes {first}-{}/{total}", first + len - 1),
        ));
    }
    let end = first + len;
    let body = futures_util::stream::unfold(first, move |at| {
        let clip = clip.clone();
        let load = load.clone();
        async move {
            if at >= end {
                return None;
            }
            let chunk = web::block(move || clip.chunks(at..end, load).next())
                .await
                .map_err(blocking_error)
                .and_then(|c| {
                    c.unwrap_or(Ok(Bytes::new()))
                        .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))
                });
            match chunk {
                Ok(b) if b.is_empty() => None,
                Ok(b) => {
                    let next = at + b.len() as u64;
                    Some((Ok::<_, Error>(b), next))
                }
                Err(e) => Some((Err(e), end)),
            }
        }
    });
    Ok(res.body(SizedStream::new(len, body)))
}

/// `YYYYMMDD-HHMMSS` of `t` (UTC).
fn time_stamp(t: WallClock) -> String {
    let s = t.to_rfc3339(); // 2026-11-25T12:00:00.000Z
    format!(
        "{}{}{}-{}{}{}",
        &s[0..4],
        &s[5..7],
        &s[8..10],
        &s[11..13],
        &s[14..16],
        &s[17..19]
    )
}

/// `thumbnail.jpg`: from the disk cache, else decoded from the marker's segment on the
/// blocking pool and cached (written whole, by rename).
async fn thumbnail_answer(f: &Found<'_>, state: &RecState) -> Result<HttpResponse, Error> {
    let rows = match clip_rows(f, Duration90k::ZERO, Duration90k::from_millis(1)).await? {
        Clip::Rows(rows) => rows,
        // The frame's segment is not recorded yet (202) or gone (410).
        Clip::Answer(res) => return Ok(res),
    };
    let row = rows
        .into_iter()
        .find(|r| r.start <= f.at && f.at < r.end())
        .ok_or_else(not_found_error)?;
    let width = f.settings.thumbnail_width;
    let dir = state.media_dir.clone();
    let cache_dir = dir.join(format!(".{}.thumbnails", state.name));
    // Named by the stream's epoch too: `--fresh` starts ids over under a new epoch, and an
    // old picture must never answer for a new marker.
    let epoch = f.at.unix_millis() - f.marker.at.since_start().as_millis() as i64;
    let cache = cache_dir.join(format!("{epoch}-{}-{width}.jpg", f.marker.id));
    let at = f.marker.at;
    let jpeg = web::block(move || -> Result<Option<Vec<u8>>, Error> {
        if let Ok(b) = std::fs::read(&cache) {
            return Ok(Some(b));
        }
        let opened = match super::media::open_inside(&dir, &row.file) {
            Ok(o) => o,
            Err(_) => return Ok(None),
        };
        let mut ts = Vec::with_capacity(opened.metadata.len() as usize);
        std::io::Read::read_to_end(&mut &opened.file, &mut ts)
            .map_err(|e| Error::io("reading a recorded segment", e))?;
        // The frame's PTS: the segment's first (its IDR: no B-frames) plus the marker's
        // offset into the segment, on the 33-bit clock.
        let aus = clip::read_access_units(&ts, 0, &mut clip::Unwrap::default())
            .map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))?;
        let first = aus
            .iter()
            .map(|a| a.pts)
            .min()
            .ok_or_else(|| Error::new(ErrorKind::Internal, "an empty recorded segment"))?;
        let offset = at.as_u64().saturating_sub(row.start_90k.as_u64()) as i64;
        let pts = (first + offset).rem_euclid(clip::PTS_MODULUS as i64) as u64;
        let jpeg = thumbnail::thumbnail(&ts, pts, width)
            .map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))?;
        let written = std::fs::create_dir_all(&cache_dir).and_then(|()| {
            let tmp = cache.with_extension("jpg.tmp");
            std::fs::write(&tmp, &jpeg).and_then(|()| std::fs::rename(&tmp, &cache))
        });
        if let Err(e) = written {
            tracing::warn!(error = %e, "thumbnail not cached");
        }
        Ok(Some(jpeg))
    })
    .await
    .map_err(blocking_error)??;
    let Some(jpeg) = jpeg else {
        return Ok(gone());
    };
    Ok(HttpResponse::Ok()
        .content_type("image/jpeg")
        .insert_header((header::CACHE_CONTROL, "private, max-age=3600"))
        .body(jpeg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_file_names_and_sides() {
        let t = WallClock::parse_rfc3339("2026-11-25T07:08:09.999Z").unwrap();
        assert_eq!(time_stamp(t), "20261125-070809");
        let q = |k: &str, v: &str| HashMap::from([(k.to_owned(), v.to_owned())]);
        assert_eq!(
            side(&HashMap::new(), "before", CLIP_BEFORE).unwrap(),
            CLIP_BEFORE
        );
        assert_eq!(
            side(&q("after", "2.5"), "after", CLIP_AFTER).unwrap(),
            Duration90k::from_millis(2500)
        );
        assert_eq!(
            side(&q("after", "300"), "after", CLIP_AFTER).unwrap(),
            Duration90k::from_secs(300)
        );
        for bad in ["300.5", "-1", "NaN", "inf", "ten"] {
            let e = side(&q("before", bad), "before", CLIP_BEFORE).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{bad}");
        }
    }
}
