//! The front door: every connection is accepted here, and the requests a player makes at the
//! live edge (the playlist, the segments and parts held in memory) are answered on the socket
//! itself. The answer comes from the same handler code as through actix-web
//! ([`super::answers::playlist_from_memory`], [`super::segments::segment_in_memory`],
//! [`super::answers::part`]) with the same headers ([`super::answers::finish_headers`]); only the writing differs: the head and the shared bytes
//! go out in one vectored write, or a segment straight from its file with `sendfile(2)`, the
//! head sent with `MSG_MORE` so that both leave in the same packets, where actix-web copies
//! every body into its write buffer and sends the head in a packet of its own. Those two were
//! half the cost of a segment request (`benches/serve_vs_nginx.sh`).
//!
//! Any other `GET` or `HEAD` (the page, `/markers`, `/stream`, a segment only on disk, an
//! escaped path) is passed to the routes, actix-web's `App` with every middleware, as actix-web's
//! dispatcher would pass it, and its answer written here, so the connection stays with the door
//! and a browser or a proxy that mixes page, API and media requests on one kept-alive connection
//! still gets its media from memory. What needs a full HTTP/1 server (a request body, another
//! method, `Expect`, an upgrade, the event stream, a malformed head) hands the connection, with
//! the bytes already read, to actix-web's own dispatcher for the rest of its life. The decision
//! never needs more than the request head, so nothing is lost or reordered by the hand-over.
//!
//! Timeouts are actix-web's: a request head within [`REQUEST_HEAD_TIMEOUT`] (else `408` and the
//! connection closes), an idle kept-alive connection closes after [`KEEP_ALIVE`], and once the
//! server is stopping an idle connection closes at once. One is the door's own: a client that
//! takes no byte of an answer for [`SEND_TIMEOUT`] is closed, on the door's writes and on those
//! of actix-web's dispatcher after a hand-over alike.
//!
//! Routing is decided once, on the path as the routes' router decodes it ([`Request::path`]),
//! so that no spelling of a route (`/markers/%65vents`) is treated differently from another. A blocking playlist request or a held
//! part whose client goes away is dropped with the connection, leaving no waiter behind.

use std::cell::RefCell;
use std::future::Future;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use actix_web::body::MessageBody as _;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::rt::net::TcpStream;
use actix_web::{web, HttpResponse, ResponseError as _};
use bytes::{Buf as _, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::sync::watch;
use tokio::time::Instant;

use super::answers::{finish_headers, multivariant_from_memory, part, playlist_from_memory};
use super::metrics_api::{count, route_of};
use super::segments::{init_in_memory, segment_from_disk, segment_in_memory, FileBody};
use super::state::AppState;
use crate::name::MediaFile;
use crate::telemetry::Route;

/// Longest wait for a request head on a new connection (actix-web's client request timeout).
pub(crate) const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest idle time between two requests on a kept-alive connection (actix-web's default).
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// Longest time a client may take no byte of an answer before its connection is closed (and
/// the segment file it was being sent released): every write of the door, and every write of
/// actix-web's dispatcher on a handed-over connection ([`Prefixed`]), must make progress within
/// it. A player reads a 2 s segment in well under a second; one that accepts nothing for this
/// long has stopped reading (issue 18: 10 clients pipelining 60 segments each and never reading
/// held their sockets, file descriptors and ~2 MB of kernel buffer each, forever).
pub(crate) const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// `op`, a single write that may wait for the client, failed with `TimedOut` if it waits longer
/// than [`SEND_TIMEOUT`].
async fn progress<T>(op: impl Future<Output = io::Result<T>>) -> io::Result<T> {
    match tokio::time::timeout(SEND_TIMEOUT, op).await {
        Ok(done) => done,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client accepted no byte within the send timeout",
        )),
    }
}

/// `write_all` with the send timeout on each write: the whole of `buf`, as long as the client
/// keeps taking bytes.
async fn write_all(io: &mut TcpStream, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        let n = progress(io.write(buf)).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        buf = &buf[n..];
    }
    Ok(())
}

/// A request head longer than this, or with more headers than [`MAX_HEADERS`], is left to
/// actix-web, which has its own limits and answers them.
const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 48;

/// A body up to this size is copied behind the head and sent in one plain write (a playlist,
/// an error); a larger one is written from where it is.
const COPY_BELOW: usize = 16 * 1024;

/// A connection handed to actix-web: the bytes read so far, then the socket. Its writes carry
/// the door's send timeout: a write that cannot progress for [`SEND_TIMEOUT`] fails, and
/// actix-web's dispatcher closes the connection on a failed write.
pub(crate) struct Prefixed {
    read: BytesMut,
    io: TcpStream,
    /// Running while a write waits for the client.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Prefixed {
    fn new(read: BytesMut, io: TcpStream) -> Self {
        Prefixed {
            read,
            io,
            stalled: None,
        }
    }

    /// The socket (for the event stream's stall detection, [`super::marker_api::remember_socket`]).
    pub(crate) fn tcp(&self) -> &TcpStream {
        &self.io
    }

    /// `poll` is a write's outcome: a ready one ends a stall, a pending one starts or goes on
    /// with it, and a stall that lasted [`SEND_TIMEOUT`] fails.
    fn deadline<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(SEND_TIMEOUT)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client accepted no byte within the send timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.read.is_empty() {
            return Pin::new(&mut self.io).poll_read(cx, buf);
        }
        let n = self.read.len().min(buf.remaining());
        buf.put_slice(&self.read[..n]);
        self.read.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write(cx, buf);
        self.deadline(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.deadline(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.io).poll_flush(cx);
        self.deadline(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A request the door keeps: a `GET` or `HEAD` without a body.
#[derive(Debug)]
struct Request {
    /// Bytes of the head in the read buffer.
    len: usize,
    /// `HEAD`: the answer's head only.
    head_only: bool,
    /// HTTP/1.0 (keep-alive only when asked for, and said so in the answer).
    http10: bool,
    /// The connection stays open after the answer.
    keep_alive: bool,
    /// The request target as sent (origin form).
    uri: actix_web::http::Uri,
    /// Its path as the routes match it: percent-decoded by actix-web's own [`Url`], which
    /// leaves only `%2F`, `%25` and `%2B` encoded. Every decision of the door is taken on this
    /// one spelling, so `/markers/%65vents` is the event stream and `/video/a%31.ts` segment 1,
    /// exactly as the routes would take them (issue 18).
    ///
    /// [`Url`]: actix_web::dev::Url
    path: String,
    headers: HeaderMap,
}

impl Request {
    fn query(&self) -> &str {
        self.uri.query().unwrap_or("")
    }

    /// The file name of a `/video/` request (one whose name still holds an escape the routes do
    /// not decode, or a `/`, is left to them).
    fn media_file(&self) -> Option<&str> {
        self.path
            .strip_prefix("/video/")
            .filter(|f| !f.contains(['/', '%']))
    }
}

#[derive(Debug)]
enum Parsed {
    Request(Request),
    /// For actix-web's dispatcher, with the connection: a body, an upgrade, the event stream,
    /// another method, or anything malformed (it answers the error).
    HandOver,
    /// The event stream (in any spelling): for the dispatcher with a small write buffer
    /// ([`super::marker_api::EVENT_WRITE_BUFFER`]), so that a subscriber that stops reading
    /// costs a bounded amount.
    Events,
    /// The head is not complete yet.
    Partial,
}

/// The event stream's route: it needs the connection's socket (stall detection) and streams
/// without end, so its connection goes to actix-web.
const EVENTS_PATH: &str = "/markers/events";

/// An event stream's path: the first stream's (`/markers/events`) or a named one's
/// (`/streams/NAME/markers/events`, as the routes' `{stream}` segment matches it).
fn is_events_path(path: &str) -> bool {
    path == EVENTS_PATH
        || path
            .strip_prefix("/streams/")
            .and_then(|rest| rest.strip_suffix(EVENTS_PATH))
            .is_some_and(|name| !name.is_empty() && !name.contains('/'))
}

/// Reads the request head at the start of `buf`.
fn parse(buf: &[u8]) -> Parsed {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD => return Parsed::Partial,
        _ => return Parsed::HandOver,
    };
    let head_only = match req.method {
        Some("GET") => false,
        Some("HEAD") => true,
        _ => return Parsed::HandOver,
    };
    let Some(target) = req.path.filter(|p| p.starts_with('/') && !p.contains('#')) else {
        return Parsed::HandOver;
    };
    let Ok(uri) = target.parse::<actix_web::http::Uri>() else {
        return Parsed::HandOver;
    };
    let path = actix_web::dev::Url::new(uri.clone()).path().to_owned();
    if is_events_path(&path) {
        return Parsed::Events;
    }
    let http10 = req.version == Some(0);
    let mut keep_alive = !http10;
    let mut headers = HeaderMap::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_bytes(h.value),
        ) else {
            return Parsed::HandOver;
        };
        if name == header::CONTENT_LENGTH && value.as_bytes() != b"0"
            || name == header::TRANSFER_ENCODING
            || name == header::EXPECT
            || name == header::UPGRADE
        {
            return Parsed::HandOver;
        }
        if name == header::CONNECTION {
            for token in value.to_str().unwrap_or("").split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    keep_alive = true;
                } else if token.eq_ignore_ascii_case("upgrade") {
                    return Parsed::HandOver;
                }
            }
        }
        headers.append(name, value);
    }
    Parsed::Request(Request {
        len,
        head_only,
        http10,
        keep_alive,
        uri,
        path,
        headers,
    })
}

/// The answer from memory, or `None` when the routes must answer (the media is only on disk,
/// the name is not this stream's, or it is not media).
async fn from_memory(app: &AppState, req: &Request) -> Option<HttpResponse> {
    let (stream, file) = app.streams.by_file(req.media_file()?)?;
    let state = &stream;
    let mut res = match file {
        MediaFile::Multivariant => multivariant_from_memory(&req.headers, state)?,
        MediaFile::Playlist => {
            state.shared.media.playlists()?;
            match playlist_from_memory(state, &req.headers, req.query()).await {
                Ok(res) => res?,
                Err(e) => e.error_response(),
            }
        }
        MediaFile::Segment(seq) => match segment_in_memory(state, &req.headers, seq) {
            Some(res) => res,
            None => segment_from_disk(state, &req.headers, req.media_file()?.to_owned())
                .await
                .unwrap_or_else(|e| e.error_response()),
        },
        MediaFile::Part { sequence, index } => part(&req.headers, state, sequence, index)
            .await
            .unwrap_or_else(|e| e.error_response()),
        MediaFile::Init(init) => match init_in_memory(state, &req.headers, init) {
            Some(res) => res,
            None => segment_from_disk(state, &req.headers, req.media_file()?.to_owned())
                .await
                .unwrap_or_else(|e| e.error_response()),
        },
    };
    finish_headers(
        &app.cors,
        req.headers.get(header::ORIGIN),
        res.headers_mut(),
    );
    Some(res)
}

/// The answer of the routes (actix-web's `App`, every middleware included) to `req`, called
/// as actix-web's dispatcher calls it.
async fn from_routes<A, B>(app: &A, req: &Request, peer: Option<SocketAddr>) -> HttpResponse
where
    A: actix_service::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody + 'static,
{
    let mut r = actix_http::Request::new();
    let head = r.head_mut();
    head.method = if req.head_only {
        actix_web::http::Method::HEAD
    } else {
        actix_web::http::Method::GET
    };
    head.uri = req.uri.clone();
    head.version = if req.http10 {
        actix_web::http::Version::HTTP_10
    } else {
        actix_web::http::Version::HTTP_11
    };
    head.headers = req.headers.clone();
    head.peer_addr = peer;
    match app.call(r).await {
        Ok(res) => res.into_parts().1.map_into_boxed_body(),
        Err(e) => e.error_response(),
    }
}

/// Warnings about connections that ended in a client's protocol error.
static CLIENT_ERRORS: super::limits::LogLimit =
    super::limits::LogLimit::new(Duration::from_secs(60));

/// Hands the connection to actix-web's dispatcher for the rest of its life, and logs how it
/// ended. A malformed request, a slow head or a client gone mid-answer is the client's doing:
/// logged at debug, with one warning a minute that counts them (1,000 malformed requests used to
/// write 1,000 `ERROR` lines; actix-http's own line for them is off in the binary's default log
/// filter). Anything else (a failing body or service) is ours and warned of each time.
async fn hand_over<S>(
    h1: &S,
    conn: Prefixed,
    peer: Option<SocketAddr>,
) -> Result<(), actix_http::error::DispatchError>
where
    S: actix_service::Service<
        (Prefixed, Option<SocketAddr>),
        Response = (),
        Error = actix_http::error::DispatchError,
    >,
{
    use actix_http::error::DispatchError as E;
    let Err(e) = h1.call((conn, peer)).await else {
        return Ok(());
    };
    let client = match peer {
        Some(p) => p.ip().to_string(),
        None => "unknown".to_owned(),
    };
    match e {
        E::Parse(_)
        | E::Io(_)
        | E::SlowRequestTimeout
        | E::DisconnectTimeout
        | E::HandlerDroppedPayload => match CLIENT_ERRORS.admit(std::time::Instant::now()) {
            Some(held) => tracing::warn!(
                %client,
                not_logged_since_last = held,
                "client connection ended with an error: {e}"
            ),
            None => tracing::debug!(%client, "client connection ended with an error: {e}"),
        },
        _ => tracing::warn!(%client, "connection failed: {e}"),
    }
    Ok(())
}

/// Serves one accepted connection until it closes, or until it is handed to `h1` (or, for the
/// event stream, `h1_events`).
pub(crate) async fn serve<S, A, B>(
    state: web::Data<AppState>,
    mut io: TcpStream,
    app: std::rc::Rc<A>,
    h1: std::rc::Rc<S>,
    h1_events: std::rc::Rc<S>,
    mut stopping: watch::Receiver<bool>,
) -> Result<(), actix_http::error::DispatchError>
where
    S: actix_service::Service<
        (Prefixed, Option<SocketAddr>),
        Response = (),
        Error = actix_http::error::DispatchError,
    >,
    A: actix_service::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody + 'static,
{
    // Every connection is counted while it is open (handed over to actix-web or not).
    struct Open<'a>(&'a metrics::Gauge);
    impl Drop for Open<'_> {
        fn drop(&mut self) {
            self.0.decrement(1.0);
        }
    }
    let connections = &state.telemetry.http.connections;
    connections.increment(1.0);
    let _open = Open(connections);
    // A head then a large body: without TCP_NODELAY the body's last packet waits for the
    // client's delayed ACK (40 ms).
    let _ = io.set_nodelay(true);
    let peer = io.peer_addr().ok();
    let mut read = BytesMut::with_capacity(4096);
    let mut out = Vec::with_capacity(1024);
    let mut wait = REQUEST_HEAD_TIMEOUT;
    loop {
        let deadline = Instant::now() + wait;
        let req = loop {
            match parse(&read) {
                Parsed::Request(req) => break req,
                Parsed::HandOver => return hand_over(&*h1, Prefixed::new(read, io), peer).await,
                Parsed::Events => {
                    return hand_over(&*h1_events, Prefixed::new(read, io), peer).await
                }
                Parsed::Partial => {}
            }
            let idle = read.is_empty();
            let got = tokio::select! {
                got = tokio::time::timeout_at(deadline, io.read_buf(&mut read)) => got,
                _ = stopping.wait_for(|s| *s), if idle => return Ok(()),
            };
            match got {
                Ok(Ok(0)) | Ok(Err(_)) => return Ok(()),
                Ok(Ok(_)) => {}
                Err(_) if idle => return Ok(()),
                Err(_) => {
                    let res = super::error::json_error(
                        StatusCode::REQUEST_TIMEOUT,
                        "the request head did not arrive in time",
                    );
                    count(&state, Route::Other, 408, deadline.into_std() - wait);
                    let _ = write_response(
                        &mut io,
                        &mut out,
                        res,
                        Answered::Routes,
                        false,
                        false,
                        false,
                    )
                    .await;
                    return Ok(());
                }
            }
        };
        let started = std::time::Instant::now();
        let answered = tokio::select! {
            biased;
            res = async {
                match from_memory(&state, &req).await {
                    Some(res) => (res, Answered::Media),
                    None => (from_routes(&*app, &req, peer).await, Answered::Routes),
                }
            } => res,
            () = closed(&io) => return Ok(()),
        };
        let (res, by) = answered;
        // The routes' answers are counted by the routes ([`super::metrics_api::Counted`]).
        if let Answered::Media = by {
            count(
                &state,
                route_of(|f| state.streams.file_kind(f), &req.path, req.query()),
                res.status().as_u16(),
                started,
            );
        }
        read.advance(req.len);
        let keep_alive = req.keep_alive && !*stopping.borrow();
        let written = write_response(
            &mut io,
            &mut out,
            res,
            by,
            req.head_only,
            keep_alive,
            req.http10,
        )
        .await;
        if written.is_err() || !keep_alive {
            return Ok(());
        }
        wait = KEEP_ALIVE;
    }
}

/// Resolves when the client closes its side; never when it sends more (a pipelined request,
/// read once this answer is out).
async fn closed(io: &TcpStream) {
    let mut probe = [0u8; 1];
    match io.peek(&mut probe).await {
        Ok(0) | Err(_) => {}
        Ok(_) => std::future::pending().await,
    }
}

/// Where an answer came from (the tests see it in a test build).
#[derive(Clone, Copy, Debug)]
enum Answered {
    Media,
    Routes,
}

/// Writes `res`: status line, its headers, `Content-Length` (or chunked framing for a body of
/// unknown length), `Date` and `Connection` as needed, and its body unless `head_only` (or the
/// status has none).
async fn write_response(
    io: &mut TcpStream,
    out: &mut Vec<u8>,
    res: HttpResponse,
    by: Answered,
    head_only: bool,
    mut keep_alive: bool,
    http10: bool,
) -> io::Result<()> {
    use actix_web::body::BodySize;
    let status = res.status();
    let file = res.extensions().get::<FileBody>().cloned();
    let (res, body) = res.into_parts();
    let has_body = !(status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED);
    // A segment's file is sent instead of its body (the same bytes, [`FileBody`]).
    let size = match &file {
        Some(f) => BodySize::Sized(f.len),
        None => body.size(),
    };
    // A body of unknown length: chunked for HTTP/1.1, to the close for HTTP/1.0.
    let chunked = has_body && size == BodySize::Stream && !http10;
    if has_body && size == BodySize::Stream && http10 {
        keep_alive = false;
    }
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in res.headers() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if let (true, BodySize::Sized(n)) = (has_body, size) {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(n.to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    if !keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    } else if http10 {
        out.extend_from_slice(b"connection: keep-alive\r\n");
    }
    // Lets the tests tell where an answer came from.
    #[cfg(test)]
    out.extend_from_slice(match by {
        Answered::Media => b"x-answered-by: front-media\r\n".as_slice(),
        Answered::Routes => b"x-answered-by: front-routes\r\n".as_slice(),
    });
    #[cfg(not(test))]
    let _ = by;
    out.extend_from_slice(b"date: ");
    http_date(out);
    out.extend_from_slice(b"\r\n\r\n");
    if head_only || !has_body || size.is_eof() {
        return write_all(io, out).await;
    }
    if let Some(f) = file {
        send_more(io, out).await?;
        return send_file(io, &f).await;
    }
    let body = match body.try_into_bytes() {
        Ok(bytes) => bytes,
        Err(body) => {
            write_all(io, out).await?;
            return write_stream(io, body, size, chunked).await;
        }
    };
    if body.len() < COPY_BELOW {
        out.extend_from_slice(&body);
        write_all(io, out).await
    } else {
        write_both(io, out, &body).await
    }
}

/// Writes a body that comes in chunks (a route's stream; a segment goes by sendfile): each as it
/// comes, framed when `chunked`; a body that ends short of its announced size is an error
/// (the connection closes, so the client sees a truncated answer, not a wrong one).
async fn write_stream(
    io: &mut TcpStream,
    mut body: actix_web::body::BoxBody,
    size: actix_web::body::BodySize,
    chunked: bool,
) -> io::Result<()> {
    use actix_web::body::{BodySize, MessageBody as _};
    let mut sent = 0u64;
    while let Some(chunk) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_next(cx)).await {
        let chunk = chunk.map_err(|e| io::Error::other(e.to_string()))?;
        if chunk.is_empty() {
            continue;
        }
        sent += chunk.len() as u64;
        if chunked {
            let frame = format!("{:x}\r\n", chunk.len());
            write_both(io, frame.as_bytes(), &chunk).await?;
            write_all(io, b"\r\n").await?;
        } else {
            write_all(io, &chunk).await?;
        }
    }
    if chunked {
        write_all(io, b"0\r\n\r\n").await?;
    }
    match size {
        BodySize::Sized(n) if n != sent => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("body ended after {sent} of {n} bytes"),
        )),
        _ => Ok(()),
    }
}

/// Writes `a` then `b` with as few system calls as the socket allows (`writev(2)`).
async fn write_both(io: &mut TcpStream, mut a: &[u8], mut b: &[u8]) -> io::Result<()> {
    while !a.is_empty() || !b.is_empty() {
        let n = if a.is_empty() {
            progress(io.write(b)).await?
        } else {
            progress(io.write_vectored(&[IoSlice::new(a), IoSlice::new(b)])).await?
        };
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let from_a = n.min(a.len());
        a = &a[from_a..];
        b = &b[n - from_a..];
    }
    Ok(())
}

/// Writes `head` with `MSG_MORE`: the kernel holds it for the body that follows, so head and
/// body leave in the same packets (as nginx's `tcp_nopush`), not a small packet of their own.
async fn send_more(io: &TcpStream, mut head: &[u8]) -> io::Result<()> {
    while !head.is_empty() {
        let n = socket_io(io, || {
            rustix::net::send(io.as_fd(), head, rustix::net::SendFlags::MORE)
                .map_err(io::Error::from)
        })
        .await?;
        head = &head[n..];
    }
    Ok(())
}

/// Runs the non-blocking socket call `op` once the socket is writable, again after each
/// `EAGAIN`.
async fn socket_io(io: &TcpStream, mut op: impl FnMut() -> io::Result<usize>) -> io::Result<usize> {
    loop {
        progress(io.writable()).await?;
        match io.try_io(tokio::io::Interest::WRITABLE, &mut op) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            other => return other,
        }
    }
}

/// Sends `f` with `sendfile(2)`: the kernel moves the file's pages to the socket, no copy
/// through this process. Waits for the socket to take more as any write does.
async fn send_file(io: &TcpStream, f: &FileBody) -> io::Result<()> {
    let mut offset = f.offset;
    let end = f.offset + f.len;
    while offset < end {
        let want = usize::try_from(end - offset).unwrap_or(usize::MAX);
        let sent = socket_io(io, || {
            rustix::fs::sendfile(io.as_fd(), f.file.as_fd(), Some(&mut offset), want)
                .map_err(io::Error::from)
        })
        .await?;
        if sent == 0 {
            // The file is shorter than the answer said: never send a short body silently.
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "segment file shorter than its length",
            ));
        }
    }
    Ok(())
}

thread_local! {
    /// The `Date` value of the current second (each worker formats it once a second).
    static DATE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// Appends the current time as an HTTP date (RFC 9110 §5.6.7).
fn http_date(out: &mut Vec<u8>) {
    let now = SystemTime::now();
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with_borrow_mut(|(at, text)| {
        if *at != secs {
            *at = secs;
            *text = header::HttpDate::from(now).to_string();
        }
        out.extend_from_slice(text.as_bytes());
    });
}

#[cfg(test)]
#[path = "front_tests.rs"]
mod tests;
