//! The markers API: `GET /markers`, `POST /markers` and `GET /markers/events`.
//!
//! `POST /markers` takes `{"text", "time" | "program_date_time", "duration"?, "source"?,
//! "key"?}` from a client holding the marker token, checks every field, snaps the instant to the
//! first frame at or after it and hands the marker to the writer thread
//! ([`crate::markers::writer`]), which answers once the marker is on disk: `201` with the marker,
//! or `200` with the first one when `key` repeats an earlier request. The checks run in the order
//! a client can act on them: token (`403` when the route is off, `401`), content type (`415`),
//! size (`413`), JSON (`400`), fields (`400`).
//!
//! `GET /markers/events` is a Server-Sent Events stream: one `data:` event per new marker, its
//! `id:` the marker id, so a reconnecting `EventSource` sends `Last-Event-ID` and is first given
//! what it missed (also `?last_event_id=N`, for a first connection that already holds markers up
//! to N). A comment line every [`HEARTBEAT`] keeps proxies from closing an idle stream. Each
//! subscriber reads from one shared ring of [`crate::state::MARKER_EVENTS_CAPACITY`] markers:
//! one that falls that far behind (it stopped reading) is disconnected, so a stalled client
//! costs a bounded amount of memory and never slows the writer.

use std::convert::Infallible;
use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_lab::sse;
use futures_util::StreamExt as _;
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tokio::sync::{broadcast, oneshot};

use super::error::json_error;
use super::AppState;
use crate::error::{Error, ErrorKind};
use crate::markers::writer::{Accepted, NewMarker, Request};
use crate::markers::{Marker, MAX_KEY_CHARS, MAX_SOURCE_CHARS, MAX_TEXT_CHARS};
use crate::state::SubmitError;
use crate::time::{Duration90k, StreamTime};

/// Largest accepted `POST /markers` body.
pub(crate) const MAX_BODY_BYTES: usize = 16 * 1024;
/// Longest accepted `duration`, in seconds.
const MAX_DURATION_SECS: f64 = 86_400.0;
/// `source` when the poster names none.
const DEFAULT_SOURCE: &str = "api";
/// Comment line interval of the event stream.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(15);

/// A `POST /markers` body as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PostBody {
    text: String,
    time: Option<f64>,
    program_date_time: Option<String>,
    duration: Option<f64>,
    source: Option<String>,
    key: Option<String>,
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidArgument, msg)
}

/// Checks a short text field: not empty, at most `max` characters, no control characters.
fn check_text(field: &str, value: &str, max: usize) -> Result<(), Error> {
    if value.trim().is_empty() {
        return Err(invalid(format!("{field} is empty")));
    }
    let chars = value.chars().count();
    if chars > max {
        return Err(invalid(format!(
            "{field} is {chars} characters long; at most {max} are allowed"
        )));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(invalid(format!(
            "{field} holds the control character U+{:04X}",
            u32::from(c)
        )));
    }
    Ok(())
}

/// `Authorization: Bearer TOKEN`, compared in constant time. The token is never logged or
/// echoed.
fn authorize(req: &HttpRequest, state: &AppState) -> Result<(), Error> {
    let Some(token) = &state.marker_token else {
        return Err(Error::new(
            ErrorKind::FailedPrecondition,
            "posting markers is off: start the streamer with --marker-token TOKEN (or set \
             HLS_MARKER_TOKEN) and send Authorization: Bearer TOKEN",
        ));
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| bearer_credentials(v.as_bytes()));
    match given {
        None => Err(Error::new(
            ErrorKind::Unauthenticated,
            "missing Authorization: Bearer TOKEN header",
        )),
        Some(g) if bool::from(g.ct_eq(token.as_bytes())) => Ok(()),
        Some(_) => Err(Error::new(ErrorKind::Unauthenticated, "wrong marker token")),
    }
}

/// The credentials of an `Authorization: Bearer TOKEN` value. The auth-scheme is matched
/// case-insensitively (RFC 7235 §2.1: `bearer`, `BEARER` are the same scheme), followed by one
/// or more spaces; `None` for any other scheme or no credentials.
fn bearer_credentials(value: &[u8]) -> Option<&[u8]> {
    let value = value.trim_ascii_start();
    let (scheme, rest) = value.split_at(value.iter().position(|&b| b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    Some(rest.trim_ascii()).filter(|t| !t.is_empty())
}

/// `application/json`, with or without parameters such as `charset=utf-8`.
fn is_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

fn too_large() -> Error {
    Error::new(
        ErrorKind::ResourceExhausted,
        format!("the body is over {MAX_BODY_BYTES} bytes"),
    )
}

/// Reads the body, refusing it as soon as it passes [`MAX_BODY_BYTES`].
async fn read_body(req: &HttpRequest, mut payload: web::Payload) -> Result<web::BytesMut, Error> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| invalid(format!("reading the body: {e}")))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Turns a parsed body into a marker request: every field checked, the instant on the stream
/// clock. `now`/`newest_frame` bound the future.
fn to_new_marker(body: PostBody, state: &AppState) -> Result<NewMarker, Error> {
    check_text("text", &body.text, MAX_TEXT_CHARS)?;
    let source = body.source.unwrap_or_else(|| DEFAULT_SOURCE.to_owned());
    check_text("source", &source, MAX_SOURCE_CHARS)?;
    if let Some(key) = &body.key {
        check_text("key", key, MAX_KEY_CHARS)?;
    }
    let length = match body.duration {
        None => Duration90k::ZERO,
        Some(d) if d.is_finite() && (0.0..=MAX_DURATION_SECS).contains(&d) => {
            Duration90k((d * 90_000.0).round() as u64)
        }
        Some(d) => {
            return Err(invalid(format!(
                "duration must be between 0 and {MAX_DURATION_SECS} seconds, got {d}"
            )))
        }
    };
    let clock = state.shared.clock().ok_or_else(|| {
        Error::new(
            ErrorKind::Unavailable,
            "the stream has not started yet; retry in a moment",
        )
    })?;
    let at = match (body.time, body.program_date_time) {
        (Some(_), Some(_)) => {
            return Err(invalid("give either time or program_date_time, not both"))
        }
        (None, None) => {
            return Err(invalid(
                "give the marker's instant: time (stream seconds) or program_date_time (RFC 3339)",
            ))
        }
        (Some(t), None) => {
            if !t.is_finite() || t < 0.0 {
                return Err(invalid(format!(
                    "time {t} is before the stream's start (stream time 0 is {})",
                    clock.epoch.to_rfc3339()
                )));
            }
            // Rounded down to the tick, then up to the frame: a time copied from a marker
            // (printed as a decimal) comes back to the same frame.
            StreamTime((t * 90_000.0).floor().min(u64::MAX as f64) as u64)
        }
        (None, Some(pdt)) => {
            let parsed =
                time::OffsetDateTime::parse(&pdt, &time::format_description::well_known::Rfc3339)
                    .map_err(|e| {
                    let shown: String = pdt.chars().take(40).collect();
                    invalid(format!(
                        "program_date_time {shown:?} is not an RFC 3339 date ({e}); example: \
                     2026-12-02T15:04:05.123Z"
                    ))
                })?;
            clock
                .time_of_unix_nanos(parsed.unix_timestamp_nanos())
                .ok_or_else(|| {
                    invalid(format!(
                        "program_date_time {pdt} is before the stream's start ({})",
                        clock.epoch.to_rfc3339()
                    ))
                })?
        }
    };
    // Up to one frame ahead of the newest frame (or of the wall clock, when the stream runs
    // faster than real time, unpaced).
    let newest = state.shared.newest_frame().unwrap_or(StreamTime::ZERO);
    let limit = clock.now().max(newest) + clock.rate.frame_duration();
    if at > limit {
        return Err(invalid(format!(
            "the marker's instant is {:.3} s ahead of the stream's newest frame; at most one \
             frame ahead is accepted",
            (at - newest).as_secs_f64()
        )));
    }
    Ok(NewMarker {
        at,
        length,
        text: Some(body.text),
        source,
        key: body.key,
    })
}

/// Hands a request to the writer and waits for its answer.
async fn submit(state: &AppState, new: NewMarker) -> Result<Accepted, Error> {
    let (tx, rx) = oneshot::channel();
    let req = Request {
        new,
        reply: Some(tx),
    };
    match state.shared.submit_marker(req) {
        Ok(()) => {}
        Err(SubmitError::Busy) => {
            return Err(Error::new(
                ErrorKind::Unavailable,
                "too many markers are waiting to be saved; retry in a moment",
            ))
        }
        Err(SubmitError::Closed) => {
            return Err(Error::new(
                ErrorKind::Unavailable,
                "the stream is not running yet; retry in a moment",
            ))
        }
        Err(SubmitError::Ended) => {
            return Err(Error::new(
                ErrorKind::Unavailable,
                "the stream has ended; markers are no longer accepted",
            ))
        }
    }
    rx.await.map_err(|_| {
        Error::new(
            ErrorKind::Unavailable,
            "the stream stopped before the marker was saved",
        )
    })?
}

pub(crate) async fn post(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    authorize(&req, &state)?;
    if !is_json(&req) {
        // The one status the error kinds do not cover.
        return Ok(json_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the marker as Content-Type: application/json",
        ));
    }
    let bytes = read_body(&req, payload).await?;
    let body: PostBody =
        serde_json::from_slice(&bytes).map_err(|e| invalid(format!("invalid marker JSON: {e}")))?;
    let new = to_new_marker(body, &state)?;
    let (status, marker) = match submit(&state, new).await? {
        Accepted::Created(m) => (StatusCode::CREATED, m),
        Accepted::Existing(m) => (StatusCode::OK, m),
    };
    Ok(HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(marker))
}

/// Reads a non-negative integer query parameter given at most once.
pub(crate) fn parse_id_param(query: &str, name: &str) -> Result<Option<u64>, Error> {
    let pairs = web::Query::<Vec<(String, String)>>::from_query(query)
        .map_err(|e| invalid(format!("malformed query string: {e}")))?;
    let mut values = pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
    let Some(raw) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(invalid(format!("{name} given more than once")));
    }
    raw.parse().map(Some).map_err(|_| {
        let shown: String = raw.chars().take(40).collect();
        invalid(format!(
            "{name} must be a marker id (0 or more), got {shown:?}"
        ))
    })
}

fn event(m: &Marker) -> sse::Event {
    let json = serde_json::to_string(m).expect("a marker serialises");
    sse::Data::new(json).id(m.id.to_string()).into()
}

/// The live part of an event stream: markers above id `sent`, as they are accepted. Ends when
/// the subscriber has fallen a whole ring behind (it stopped reading): dropped, so it costs at
/// most the shared ring; its `EventSource` reconnects with `Last-Event-ID` if it is still there.
pub(crate) fn live_events(
    rx: broadcast::Receiver<Marker>,
    sent: u64,
) -> impl futures_util::Stream<Item = Result<sse::Event, Infallible>> {
    futures_util::stream::unfold((rx, sent), |(mut rx, mut sent)| async move {
        loop {
            match rx.recv().await {
                Ok(m) if m.id <= sent => continue,
                Ok(m) => {
                    sent = m.id;
                    return Some((Ok(event(&m)), (rx, sent)));
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!(missed = n, "marker event subscriber too slow; dropped");
                    return None;
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

pub(crate) async fn events(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let header_id = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.trim()
                .parse::<u64>()
                .map_err(|_| invalid("Last-Event-ID must be a marker id"))
        })
        .transpose()?;
    let last = header_id.or(parse_id_param(req.query_string(), "last_event_id")?);
    // Subscribe before reading the store: nothing falls between the replay and the live events.
    let rx = state.shared.marker_events.subscribe();
    let replay = match last {
        Some(id) => state.shared.markers.after_id(id),
        None => Vec::new(),
    };
    // Without a last id: everything accepted from the moment of subscribing.
    let sent = replay.last().map(|m| m.id).or(last).unwrap_or(0);
    let replay = futures_util::stream::iter(
        replay
            .iter()
            .map(|m| Ok::<_, Infallible>(event(m)))
            .collect::<Vec<_>>(),
    );
    let live = live_events(rx, sent);
    let sse = sse::Sse::from_stream(replay.chain(live)).with_keep_alive(HEARTBEAT);
    let mut res = actix_web::Responder::respond_to(sse, &req).map_into_boxed_body();
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // nginx: pass events through at once.
    h.insert(
        header::HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    Ok(res)
}
