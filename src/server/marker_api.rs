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
//! to N; the replay is read from the store [`REPLAY_PAGE`] markers at a time, as the client
//! takes them). A comment line every [`HEARTBEAT`] keeps proxies from closing an idle stream.
//!
//! Each client is bounded: its events wait in a queue of [`CONNECTION_QUEUE`], the dispatcher's
//! write buffer is [`EVENT_WRITE_BUFFER`], its socket's send buffer is small, and an event that cannot be queued within [`WRITE_DEADLINE`] (the
//! client stopped reading and everything between is full) or a client that falls a whole ring
//! of [`crate::state::MARKER_EVENTS_CAPACITY`] behind gets its connection closed by the server
//! (the socket is shut down under actix, which stops polling a body whose socket is full). A
//! stalled client so costs a bounded amount of memory for a bounded time and never slows the
//! writer, the segments or another client.
//!
//! `GET /markers` answers pages of at most `limit` markers ([`DEFAULT_LIST_LIMIT`], at most
//! [`MAX_LIST_LIMIT`]): the newest without `after_id`, forward from `after_id` with
//! `next_after_id` while more follow.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_lab::sse;
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tokio::sync::{broadcast, oneshot};

use super::error::json_error;
use super::state::{AppState, StreamView};
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

/// Checks a short text field: not empty, at most `max` characters, no control character and no
/// other character a playlist reader may take for a line break (U+2028, U+2029: issue 18), so
/// nothing a poster writes can add a line to the playlist its marker is published in.
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
    if let Some(c) = value
        .chars()
        .find(|&c| c != '"' && crate::playlist::attributes::unsafe_in_quoted(c))
    {
        return Err(invalid(format!(
            "{field} holds U+{:04X}, a line separator that playlist readers take for a line \
             break",
            u32::from(c)
        )));
    }
    Ok(())
}

/// `Authorization: Bearer TOKEN`, compared in constant time. The token is never logged or
/// echoed.
fn authorize(req: &HttpRequest, state: &StreamView) -> Result<(), Error> {
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
fn to_new_marker(body: PostBody, state: &StreamView) -> Result<NewMarker, Error> {
    check_text("text", &body.text, MAX_TEXT_CHARS)?;
    let source = body.source.unwrap_or_else(|| DEFAULT_SOURCE.to_owned());
    check_text("source", &source, MAX_SOURCE_CHARS)?;
    if let Some(key) = &body.key {
        check_text("key", key, MAX_KEY_CHARS)?;
    }
    let length = match body.duration {
        None => Duration90k::ZERO,
        Some(d) => match Duration90k::from_secs_f64(d).filter(|_| d <= MAX_DURATION_SECS) {
            Some(length) => length,
            None => {
                return Err(invalid(format!(
                    "duration must be between 0 and {MAX_DURATION_SECS} seconds, got {d}"
                )))
            }
        },
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
        // Rounded down to the tick, then up to the frame: a time copied from a marker (printed
        // as a decimal) comes back to the same frame.
        (Some(t), None) => StreamTime::from_secs_f64_floor(t).ok_or_else(|| {
            invalid(format!(
                "time {t} is before the stream's start (stream time 0 is {})",
                clock.epoch.to_rfc3339()
            ))
        })?,
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
async fn submit(state: &StreamView, new: NewMarker) -> Result<Accepted, Error> {
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

/// Warnings about refused marker tokens: one per interval, the rest counted in it.
static AUTH_LOG: super::limits::LogLimit = super::limits::LogLimit::new(Duration::from_secs(10));

/// [`authorize`], limited per client address ([`super::limits::AuthFailures`]): the answer that
/// refuses the request, or `None` when it may go on. An address with too many recent failures
/// is answered `429` with `Retry-After` without its token being looked at, and every failure is
/// logged (rate-limited, [`AUTH_LOG`]) with the address, never the token.
fn auth_refusal(req: &HttpRequest, app: &AppState, state: &StreamView) -> Option<HttpResponse> {
    let peer = req.peer_addr().map(|a| a.ip());
    let now = std::time::Instant::now();
    if let Some(ip) = peer {
        if let Err(wait) = app.auth_failures.check(ip, now) {
            let secs = wait.as_secs().max(1);
            let mut res = json_error(
                StatusCode::TOO_MANY_REQUESTS,
                &format!("too many wrong marker tokens from this address; retry in {secs} s"),
            );
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            return Some(res);
        }
    }
    let Err(e) = authorize(req, state) else {
        return None;
    };
    if e.kind() == ErrorKind::Unauthenticated {
        let failures = peer.map(|ip| app.auth_failures.record(ip, now));
        let client = peer.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
        match AUTH_LOG.admit(now) {
            Some(held) => tracing::warn!(
                %client,
                failures_in_window = failures,
                not_logged_since_last = held,
                "marker token refused: {}",
                e.message()
            ),
            None => tracing::debug!(%client, "marker token refused: {}", e.message()),
        }
    }
    Some(actix_web::ResponseError::error_response(&e))
}

pub(crate) async fn post(
    req: HttpRequest,
    payload: web::Payload,
    app: web::Data<AppState>,
    state: StreamView,
) -> Result<HttpResponse, Error> {
    if let Some(res) = auth_refusal(&req, &app, &state) {
        return Ok(res);
    }
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

/// Markers one `GET /markers` answers when the query names no `limit`.
pub(crate) const DEFAULT_LIST_LIMIT: usize = 1000;
/// Largest `limit` of `GET /markers`.
pub(crate) const MAX_LIST_LIMIT: usize = 5000;
/// Markers replayed per step of an event stream (read from the store as the client takes them).
const REPLAY_PAGE: usize = 64;

/// `GET /markers` body.
#[derive(Serialize)]
struct ListBody {
    markers: Vec<Marker>,
    /// Set when more markers match beyond this page: the `after_id` of the next one.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_after_id: Option<u64>,
}

/// `GET /markers?ts_start=S&after_id=N&limit=L`: at most `limit` markers (default
/// [`DEFAULT_LIST_LIMIT`], at most [`MAX_LIST_LIMIT`]) in time order. Without `after_id`, the
/// newest; with it, the lowest ids above it and `next_after_id` while more follow.
pub(crate) fn list(req: &HttpRequest, state: &StreamView) -> Result<HttpResponse, Error> {
    let query = req.query_string();
    let ts_start = parse_ts_start(query)?;
    let after_id = parse_id_param(query, "after_id")?;
    let limit = match parse_id_param(query, "limit")? {
        None => DEFAULT_LIST_LIMIT,
        Some(l) if (1..=MAX_LIST_LIMIT as u64).contains(&l) => l as usize,
        Some(l) => {
            return Err(invalid(format!(
                "limit must be between 1 and {MAX_LIST_LIMIT}, got {l}"
            )))
        }
    };
    let (markers, next_after_id) = state.shared.markers.page(ts_start, after_id, limit);
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .json(ListBody {
            markers,
            next_after_id,
        }))
}

/// Reads `ts_start` from a query string: absent is `None`; present it must be a finite number,
/// given once.
pub(crate) fn parse_ts_start(query: &str) -> Result<Option<f64>, Error> {
    let pairs = web::Query::<Vec<(String, String)>>::from_query(query)
        .map_err(|e| crate::err!(InvalidArgument, "malformed query string: {e}"))?;
    let mut values = pairs
        .iter()
        .filter(|(k, _)| k == "ts_start")
        .map(|(_, v)| v);
    let Some(raw) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        crate::bail!(InvalidArgument, "ts_start given more than once");
    }
    match raw.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Some(v)),
        _ => {
            let shown: String = raw.chars().take(40).collect();
            crate::bail!(
                InvalidArgument,
                "ts_start must be a finite number of stream seconds, got {shown:?}"
            )
        }
    }
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
        let what = if name == "limit" {
            "a whole number"
        } else {
            "a marker id (0 or more)"
        };
        invalid(format!("{name} must be {what}, got {shown:?}"))
    })
}

fn event(m: &Marker) -> sse::Event {
    let json = serde_json::to_string(m).expect("a marker serialises");
    sse::Data::new(json).id(m.id.to_string()).into()
}

/// Events that may wait for one event-stream client (beyond what its socket buffers hold).
pub(crate) const CONNECTION_QUEUE: usize = 32;
/// How long an event may wait for a client that does not read before the connection is closed.
pub(crate) const WRITE_DEADLINE: Duration = Duration::from_secs(5);
/// Kernel send buffer of an event-stream connection: the socket's share of the bound.
const EVENT_SOCKET_SNDBUF: usize = 32 * 1024;
/// Write buffer of actix-web's dispatcher on an event-stream connection
/// ([`super::front`] hands these to a dispatcher of their own): it polls the body for more
/// while its buffer holds less than this, so with the 512 KiB of the other connections a
/// stalled subscriber held about 0.6 MB (issue 18). With this, a stalled subscriber holds at
/// most [`CONNECTION_QUEUE`] events, this buffer plus one event, and its socket's send buffer
/// (the kernel doubles [`EVENT_SOCKET_SNDBUF`] for its bookkeeping): under 200 KB with the
/// longest markers, for at most [`WRITE_DEADLINE`] after its queue filled.
pub(crate) const EVENT_WRITE_BUFFER: usize = 16 * 1024;

/// A second handle on a connection's socket (taken when it is accepted), so that a stalled
/// event stream can be closed even though actix no longer polls its body.
#[derive(Clone, Debug)]
pub(crate) struct ConnSocket(Arc<std::net::TcpStream>);

/// `HttpServer::on_connect`: keeps a [`ConnSocket`] with every connection (a duplicated
/// descriptor, closed with the connection).
pub(crate) fn remember_socket(
    tcp: &actix_web::rt::net::TcpStream,
    ext: &mut actix_web::dev::Extensions,
) {
    use std::os::fd::AsFd as _;
    if let Ok(fd) = tcp.as_fd().try_clone_to_owned() {
        ext.insert(ConnSocket(Arc::new(std::net::TcpStream::from(fd))));
    }
}

/// Why an event stream's feeder stops.
enum Stop {
    /// The client is gone (the body was dropped).
    Gone,
    /// The client stopped reading: the connection is closed.
    Stalled(&'static str),
}

/// One event-stream client: the events it is sent wait in a queue of [`CONNECTION_QUEUE`]; one
/// that cannot be queued within [`WRITE_DEADLINE`] (the client stopped reading and its
/// socket's buffers are full) ends the connection, as does falling a whole broadcast ring
/// behind. A stalled client so costs at most its queue, its socket's buffers and a ring
/// position, for at most the deadline, and never slows the writer or another client.
struct Feeder {
    tx: tokio::sync::mpsc::Sender<sse::Event>,
    deadline: Duration,
    /// Whether the run whose markers this stream follows still serves the stream (a restart
    /// replaces it): checked at each heartbeat; once not, the stream ends and the client's
    /// `EventSource` reconnects, with `Last-Event-ID`, to the new run.
    current: Box<dyn Fn() -> bool + Send>,
}

impl Feeder {
    async fn send(&self, ev: sse::Event) -> Result<(), Stop> {
        match tokio::time::timeout(self.deadline, self.tx.send(ev)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Stop::Gone),
            Err(_) => Err(Stop::Stalled("write deadline passed")),
        }
    }

    /// Replays the markers above `sent` (a page at a time, from the store), then forwards live
    /// ones, with a heartbeat comment whenever nothing was sent for `heartbeat`.
    async fn run(
        &self,
        store: &crate::state::Shared,
        mut rx: broadcast::Receiver<Marker>,
        replay_from: Option<u64>,
        heartbeat: Duration,
    ) -> Stop {
        let mut sent = 0;
        if let Some(from) = replay_from {
            sent = from;
            loop {
                let page = store.markers.after_id_at_most(sent, REPLAY_PAGE);
                let Some(last) = page.last().map(|m| m.id) else {
                    break;
                };
                for m in &page {
                    if let Err(stop) = self.send(event(m)).await {
                        return stop;
                    }
                }
                sent = last;
            }
        }
        loop {
            match tokio::time::timeout(heartbeat, rx.recv()).await {
                Err(_) if !(self.current)() => return Stop::Gone,
                Err(_) => {
                    if let Err(stop) = self.send(sse::Event::Comment("keep-alive".into())).await {
                        return stop;
                    }
                }
                Ok(Ok(m)) if m.id <= sent => {}
                Ok(Ok(m)) => {
                    sent = sent.max(m.id);
                    if let Err(stop) = self.send(event(&m)).await {
                        return stop;
                    }
                }
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => {
                    return Stop::Stalled("fell a whole event ring behind")
                }
                Ok(Err(broadcast::error::RecvError::Closed)) => return Stop::Gone,
            }
        }
    }
}

/// The live part of an event stream: markers above id `sent`, as they are accepted. Ends when
/// the subscriber has fallen a whole ring behind (it stopped reading): dropped, so it costs at
/// most the shared ring; its `EventSource` reconnects with `Last-Event-ID` if it is still there.
#[cfg(test)]
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

pub(crate) async fn events(req: HttpRequest, state: StreamView) -> Result<HttpResponse, Error> {
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
    // Without a last id: everything accepted from the moment of subscribing.
    let rx = state.shared.marker_events.subscribe();
    let socket = req.conn_data::<ConnSocket>().cloned();
    if let Some(s) = &socket {
        // The kernel's buffer for this client is part of its bound.
        let _ = rustix::net::sockopt::set_socket_send_buffer_size(&*s.0, EVENT_SOCKET_SNDBUF);
    }
    let (tx, body) = tokio::sync::mpsc::channel(CONNECTION_QUEUE);
    let shared = state.shared.clone();
    let (live, served) = (state.live.clone(), state.shared.clone());
    actix_web::rt::spawn(async move {
        let feeder = Feeder {
            tx,
            deadline: WRITE_DEADLINE,
            current: Box::new(move || Arc::ptr_eq(&live.shared(), &served)),
        };
        if let Stop::Stalled(why) = feeder.run(&shared, rx, last, HEARTBEAT).await {
            tracing::debug!(reason = why, "marker event client stopped reading; closed");
            // actix no longer polls a body whose socket is full: close the socket under it.
            if let Some(s) = socket {
                let _ = s.0.shutdown(std::net::Shutdown::Both);
            }
        }
    });
    // The body holds the count of open event responses until the server drops it.
    let client = state.shared.event_client();
    let body = futures_util::stream::unfold((body, client), |(mut rx, client)| async move {
        let ev = rx.recv().await?;
        Some((Ok::<_, Infallible>(ev), (rx, client)))
    });
    let sse = sse::Sse::from_stream(body);
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
