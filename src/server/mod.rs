//! The HTTP origin: player page, live playlist and segments, markers API and health check.
//!
//! | route | answer |
//! | --- | --- |
//! | `GET /` | the player page (embedded, see [`assets`]) |
//! | `GET /static/{path}` | the page's scripts, styles and the vendored hls.js |
//! | `GET /video/{name}.m3u8` | the live playlist: `application/vnd.apple.mpegurl`, `Cache-Control: public, max-age=⌊TD/2⌋` (RFC 8216 §6.3.4: a client reloads no sooner than half a target duration, so a shared cache may hold it that long, R39), gzip when accepted (§6.2.1, R31) |
//! | `GET /video/{name}{seq}.ts` | a segment: `video/mp2t`, never compressed, byte ranges, `Cache-Control: public, max-age=<remaining>, immutable` and `Expires` = publication + planned lifetime (RFC 8216 §6.2.2, R27) |
//! | `GET /markers?ts_start=S&after_id=N&limit=L` | `{"markers": [...], "next_after_id"?}`, `time > S`, at most `limit` (default 1000, max 5000): the newest, or forward from `after_id`; bad parameters are `400 {"error": ...}` |
//! | `GET /stream` | `{"name", "playlist", "frame_rate": {"num", "den"}, "fps", "target_duration"}`: the exact frame rate for the page's timecodes ([`stream_info`]); a camera's own once it plays (`503` before) |
//! | `GET /healthz` | `200` while segments arrive within 1.5 × target duration (rfc8216bis §6.2.1, R28), `503` before the first segment or when they stop; `200` with `"status": "ended"` once the playlist has `EXT-X-ENDLIST` |
//!
//! Every route answers `GET` and `HEAD`; other methods are `405` with `Allow` (and `OPTIONS` is a
//! CORS preflight when `--cors-origin` is given, see [`cors`]). Unknown paths are `404`.
//!
//! Only files directly inside the media directory whose names are exactly the playlist's or a
//! segment's are ever read ([`media`]); the name is checked before anything is opened, and the
//! file is opened relative to the directory's handle without following a symlink or blocking,
//! then refused unless it is a regular file.
//!
//! Every connection comes in through the front door ([`front`]): the playlist, segments and parts
//! are answered there, on the socket (a segment with `sendfile(2)` from its file); every other
//! `GET` and `HEAD` is passed to the routes below and written by the door; a request with a body,
//! the event stream or anything unusual hands the connection to actix-web's own dispatcher.
//!
//! The server never encodes and never blocks an async worker on a file operation that can
//! wait: files are opened on the blocking pool (`web::block`), a segment body read from disk is
//! read there a chunk at a time, the shared state is read under short lock scopes that never
//! span an `.await`, and the media threads write the files without waiting on any HTTP client.
//! A stalled client only holds its own socket and file descriptor. The one exception is
//! `sendfile(2)` of a segment: its pages were written at most the playlist's window ago and are
//! read from the page cache; only if the kernel had evicted them would the send wait for the
//! disk (nginx's `sendfile on` makes the same trade).

pub(crate) mod assets;
pub(crate) mod cors;
pub(crate) mod error;
pub(crate) mod front;
pub(crate) mod limits;
pub(crate) mod marker_api;
pub(crate) mod media;
mod segments;
pub(crate) use segments::{segment_from_disk, segment_from_memory, segment_in_memory};
pub(crate) mod stream_info;

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Service;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{guard, web, App, HttpRequest, HttpResponse, Resource, ResponseError};
use serde::Serialize;

use crate::error::{Error, ErrorKind};
use crate::name::{MediaFile, StreamName};
use crate::state::{InputParams, Shared, StreamParams};
use cors::CorsPolicy;
use error::json_error;

/// `Content-Type` of a playlist (RFC 8216 §4, R8).
pub(crate) const PLAYLIST_CONTENT_TYPE: &str = "application/vnd.apple.mpegurl";

// Segments and parts: `SegmentType::content_type` (`video/mp2t`, RFC 3555 §4.2.9; or
// `video/mp4` for fMP4, RFC 4337).

/// How long a graceful stop waits for in-flight responses.
pub(crate) const SHUTDOWN_TIMEOUT_SECS: u64 = 3;

/// The page's Content-Security-Policy: everything from this origin only; hls.js runs its
/// transmuxer in a worker made from a `blob:` URL and feeds the video element through a
/// MediaSource `blob:` URL.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     worker-src 'self' blob:; media-src 'self' blob:; img-src 'self' data:; \
     style-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     frame-ancestors 'none'";

/// What the HTTP server needs to know about the stream.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub bind: SocketAddr,
    /// Where `NAME<seq>.ts` and `NAME.m3u8` are written (atomically, by rename).
    pub media_dir: PathBuf,
    /// Playlist/segment base name: `/video/NAME.m3u8`, `/video/NAME12.ts`.
    pub name: StreamName,
    /// Origins allowed to read responses cross-origin; empty: same-origin only.
    pub cors_origins: Vec<String>,
    /// `EXT-X-TARGETDURATION`: health deadline (1.5 × TD) and playlist `max-age` (TD / 2).
    pub target_duration_secs: u64,
    /// Planned lifetime of a segment from its publication (window + grace): its `Expires`.
    pub segment_lifetime_secs: u64,
    /// The exact frame rate, for `GET /stream` (the page's timecodes).
    pub frame_rate: crate::time::FrameRate,
    /// The bearer token `POST /markers` requires; `None` turns the route off (403).
    pub marker_token: Option<crate::config::MarkerToken>,
}

impl ServerConfig {
    /// Checks what the types cannot: a target duration of at least one second and well-formed
    /// CORS origins (the stream name is valid by construction).
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.target_duration_secs == 0 {
            crate::bail!(
                InvalidArgument,
                "target duration must be at least 1 s (RFC 8216 §4.3.3.1)"
            );
        }
        stream_info::check_rate(self.frame_rate)?;
        CorsPolicy::new(&self.cors_origins).map(drop)
    }

    /// `Cache-Control` of the playlist ([`playlist_cache_control`]).
    #[cfg(test)]
    pub(crate) fn playlist_cache_control(&self) -> String {
        playlist_cache_control(self.target_duration_secs)
    }

    /// The health deadline ([`health_deadline`]).
    #[cfg(test)]
    pub(crate) fn health_deadline(&self) -> Duration {
        health_deadline(self.target_duration_secs)
    }

    /// The stream's parameters as this configuration gives them (before an input that decides
    /// its own, a camera, has given them).
    fn stream_params(&self) -> StreamParams {
        StreamParams {
            frame_rate: self.frame_rate,
            target_duration_secs: self.target_duration_secs,
            segment_lifetime_secs: self.segment_lifetime_secs,
        }
    }
}

/// `Cache-Control` of the playlist for a target duration of `td` seconds: a shared cache may keep
/// it for at most half a target duration, rounded down (RFC 8216 §6.3.4); `no-cache` when that
/// is under a second.
pub(crate) fn playlist_cache_control(td: u64) -> String {
    match td / 2 {
        0 => "no-cache".to_owned(),
        s => format!("public, max-age={s}"),
    }
}

/// The health deadline for a target duration of `td` seconds: the newest segment may be this
/// old (rfc8216bis §6.2.1, R28).
pub(crate) fn health_deadline(td: u64) -> Duration {
    Duration::from_millis(td.saturating_mul(1500))
}

/// Per-worker view of the configuration plus the shared stream state.
pub(crate) struct AppState {
    media_dir: PathBuf,
    name: StreamName,
    /// The configuration's frame rate, target duration and segment lifetime: what the headers
    /// and `GET /stream` say until the input gives its own ([`AppState::params`]).
    configured: StreamParams,
    cors: CorsPolicy,
    shared: Arc<Shared>,
    marker_token: Option<crate::config::MarkerToken>,
    /// Failed marker-token checks per client address (`429` past a limit).
    auth_failures: limits::AuthFailures,
    /// The player page with the stream name filled in, and its entity tag.
    index_html: web::Bytes,
    index_etag: String,
    /// The configuration's `GET /stream` body.
    stream_body: web::Data<stream_info::Body>,
}

impl AppState {
    /// The stream's parameters as published now: the input's once it has given them (a
    /// camera's frame rate and GOP-derived target, changed by a reconnect), else the
    /// configuration's. Every header and body that depends on them reads them here, per request.
    fn params(&self) -> StreamParams {
        match self.shared.input_params() {
            InputParams::Known(p) => p,
            InputParams::Configured | InputParams::Pending => self.configured,
        }
    }
}

/// `Cache-Control` from text built of ASCII.
fn cache_control(text: String) -> HeaderValue {
    HeaderValue::try_from(text).expect("cache-control built from ASCII")
}

/// Longest hold of a blocking request or a request for a part not yet out (3 TD, R43).
fn hold_cap(p: &StreamParams) -> Duration {
    Duration::from_secs(3 * p.target_duration_secs)
}

/// Registers every route on an actix `App` (so `actix_web::test` can call it without a socket):
/// `test::init_service(App::new().configure(server::configure(&cfg, shared)))`.
///
/// # Panics
/// If `cfg` does not pass [`ServerConfig::validate`]; [`serve`] validates first and returns an
/// error instead.
#[cfg(test)]
pub(crate) fn configure(
    cfg: &ServerConfig,
    shared: Arc<Shared>,
) -> impl FnOnce(&mut web::ServiceConfig) + Clone {
    if let Err(e) = cfg.validate() {
        panic!("invalid server configuration: {e}");
    }
    let state = app_state(cfg, shared);
    move |sc: &mut web::ServiceConfig| routes(state, sc)
}

/// The state every handler reads: built once per server, shared by its workers and the front
/// door ([`front`]).
fn app_state(cfg: &ServerConfig, shared: Arc<Shared>) -> web::Data<AppState> {
    let cors = CorsPolicy::new(&cfg.cors_origins).expect("origins were validated");
    let (index_html, index_etag) = assets::render_index(cfg.name.as_str());
    web::Data::new(AppState {
        media_dir: cfg.media_dir.clone(),
        name: cfg.name.clone(),
        configured: cfg.stream_params(),
        cors,
        shared,
        marker_token: cfg.marker_token.clone(),
        auth_failures: limits::AuthFailures::default(),
        index_html: web::Bytes::from(index_html),
        index_etag,
        stream_body: stream_info::body(cfg),
    })
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

/// Registers every route, and [`finish_headers`] around them.
fn routes(state: web::Data<AppState>, sc: &mut web::ServiceConfig) {
    let preflight = state.cors.is_enabled();
    let stream_body = state.stream_body.clone();
    let policy = state.cors.clone();
    let scope = web::scope("")
        .app_data(state)
        .wrap_fn(move |req, srv| {
            let origin = req.headers().get(header::ORIGIN).cloned();
            let fut = srv.call(req);
            let policy = policy.clone();
            async move {
                let mut res = fut.await?;
                finish_headers(&policy, origin.as_ref(), res.headers_mut());
                Ok(res)
            }
        })
        .service(read_only("/", preflight).to(index))
        .service(read_only("/static/{path:.*}", preflight).to(static_asset))
        .service(read_only("/video/{file:[^/]+\\.m3u8}", preflight).to(playlist))
        .service(read_only("/video/{file}", preflight).to(segments::segment))
        .service(markers_resource(preflight))
        .service(read_only("/markers/events", preflight).to(marker_api::events))
        .service(read_only("/healthz", preflight).to(healthz))
        .service(stream_info::resource(preflight, stream_body))
        .default_service(web::to(not_found));
    sc.service(scope);
}

/// A resource whose handler (added with `.to`) answers `GET` and `HEAD`; `OPTIONS` is a CORS
/// preflight when `preflight` is on; any other method is `405` with `Allow`.
fn read_only(path: &str, preflight: bool) -> ReadOnly {
    ReadOnly {
        path: path.to_owned(),
        preflight,
    }
}

struct ReadOnly {
    path: String,
    preflight: bool,
}

impl ReadOnly {
    fn to<F, Args>(self, handler: F) -> Resource
    where
        F: actix_web::Handler<Args>,
        Args: actix_web::FromRequest + 'static,
        F::Output: actix_web::Responder + 'static,
    {
        let allow = if self.preflight {
            "GET, HEAD, OPTIONS"
        } else {
            "GET, HEAD"
        };
        let mut r = web::resource(self.path).route(
            web::route()
                .guard(guard::Any(guard::Get()).or(guard::Head()))
                .to(handler),
        );
        if self.preflight {
            r = r.route(web::route().method(Method::OPTIONS).to(preflight));
        }
        r.default_service(web::to(move || async move {
            let mut res = json_error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
            res.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
            res
        }))
    }
}

/// `/markers`: `GET`/`HEAD` read, `POST` adds (see [`marker_api`]); anything else is `405`.
fn markers_resource(preflight: bool) -> Resource {
    let allow = if preflight {
        "GET, HEAD, POST, OPTIONS"
    } else {
        "GET, HEAD, POST"
    };
    let mut r = web::resource("/markers")
        .route(
            web::route()
                .guard(guard::Any(guard::Get()).or(guard::Head()))
                .to(markers),
        )
        .route(web::post().to(marker_api::post));
    if preflight {
        r = r.route(web::route().method(Method::OPTIONS).to(self::preflight));
    }
    r.default_service(web::to(move || async move {
        let mut res = json_error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        res.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
        res
    }))
}

/// Binds `cfg.bind` (a clear `io::Error` if the port is taken), logs the URL, serves until
/// `shutdown` resolves, then stops gracefully (in-flight responses get
/// [`SHUTDOWN_TIMEOUT_SECS`]) and returns. Runs under any tokio runtime (`#[tokio::main]` or
/// `#[actix_web::main]`).
pub async fn serve(
    cfg: ServerConfig,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    cfg.validate()?;
    let listener = bind(cfg.bind)?;
    serve_listener(cfg, shared, listener, shutdown).await
}

/// Binds the HTTP address: the binary does this before the stream starts, so a taken port is
/// an error before anything is written.
pub fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr).map_err(|e| {
        let kind = if e.kind() == std::io::ErrorKind::AddrInUse {
            ErrorKind::Unavailable
        } else {
            ErrorKind::Io
        };
        Error::new(kind, format!("cannot listen on http://{addr}/")).with_source(e)
    })
}

/// [`serve`] on a listener the caller bound (tests bind port 0). `cfg.bind` is not used.
pub async fn serve_listener(
    cfg: ServerConfig,
    shared: Arc<Shared>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    use actix_service::{
        fn_factory, fn_service, map_config, IntoServiceFactory as _, ServiceFactory as _,
        ServiceFactoryExt as _,
    };
    cfg.validate()?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("reading the listening address", e))?;
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4));
    let name = cfg.name.clone();
    let state = app_state(&cfg, shared);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // Each worker thread: the front door, and behind it actix-web's dispatcher with every route
    // (what `HttpServer` would build, with the same timeouts).
    let worker = move || {
        // actix-web's own dispatcher for the connections the door hands over, built as
        // `HttpServer` builds it, with the same timeouts; one with a small write buffer for the
        // event stream.
        let h1_with = |write_buffer: usize| {
            let stop_h1 = stop_rx.clone();
            let routes_state = state.clone();
            let app = App::new()
                .configure(move |sc| routes(routes_state.clone(), sc))
                .into_factory()
                .map_err(|e: actix_web::Error| e.error_response());
            actix_http::HttpService::build()
                .keep_alive(actix_http::KeepAlive::Timeout(front::KEEP_ALIVE))
                .client_request_timeout(front::REQUEST_HEAD_TIMEOUT)
                .client_disconnect_timeout(Duration::from_secs(1))
                .h1_write_buffer_size(write_buffer)
                .local_addr(addr)
                .graceful_shutdown_signal(move || {
                    let mut stop = stop_h1.clone();
                    async move {
                        let _ = stop.wait_for(|s| *s).await;
                    }
                })
                .on_connect_ext(|io: &front::Prefixed, ext: &mut actix_http::Extensions| {
                    marker_api::remember_socket(io.tcp(), ext)
                })
                // The host and address are only for URL generation, which no route uses.
                .h1(map_config(app, |_| actix_web::dev::AppConfig::default()))
        };
        // actix copies a body into the connection's write buffer and frees a buffer above
        // this size after each answer; a 720p segment read from disk fits, so it is not
        // reallocated per request (at most this much kept per connection).
        let h1 = h1_with(512 * 1024);
        let h1_events = h1_with(marker_api::EVENT_WRITE_BUFFER);
        // The same routes again, for the requests the front door passes on one by one.
        let routes_state = state.clone();
        let direct = App::new()
            .configure(move |sc| routes(routes_state.clone(), sc))
            .into_factory();
        let state = state.clone();
        let stop = stop_rx.clone();
        fn_factory(move || {
            let h1 = h1.new_service(());
            let h1_events = h1_events.new_service(());
            let direct = direct.new_service(actix_web::dev::AppConfig::default());
            let state = state.clone();
            let stop = stop.clone();
            async move {
                let h1 = std::rc::Rc::new(h1.await?);
                let h1_events = std::rc::Rc::new(h1_events.await?);
                let direct = std::rc::Rc::new(direct.await.map_err(drop)?);
                Ok::<_, ()>(fn_service(move |io| {
                    front::serve(
                        state.clone(),
                        io,
                        direct.clone(),
                        h1.clone(),
                        h1_events.clone(),
                        stop.clone(),
                    )
                }))
            }
        })
    };
    let server = actix_server::Server::build()
        .workers(workers)
        .disable_signals()
        .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
        .listen("hls-http", listener, worker)
        .map_err(|e| Error::io(format!("serving on http://{addr}/"), e))?
        .run();
    tracing::info!(
        "player at http://{addr}/ (playlist http://{addr}/video/{name}.m3u8, {workers} HTTP workers)"
    );
    let handle = server.handle();
    let stopper = tokio::spawn(async move {
        shutdown.await;
        tracing::info!("HTTP server stopping");
        // Idle kept-alive connections close now; answers under way get the shutdown timeout.
        let _ = stop_tx.send(true);
        handle.stop(true).await;
    });
    let result = server.await;
    stopper.abort();
    tracing::info!("HTTP server stopped");
    result.map_err(|e| Error::io(format!("serving on http://{addr}/"), e))
}

fn not_found_error() -> Error {
    Error::new(ErrorKind::NotFound, "not found")
}

async fn not_found() -> Result<HttpResponse, Error> {
    Err(not_found_error())
}

/// A failure of the blocking pool itself (it is shutting down).
fn blocking_error(e: actix_web::error::BlockingError) -> Error {
    Error::new(ErrorKind::Unavailable, "server is shutting down").with_source(e)
}

async fn index(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let (page, _) = assets::find(assets::INDEX).expect("the page is embedded");
    let mut res = serve_bytes(
        &req,
        page.content_type,
        state.index_html.clone(),
        &state.index_etag,
    );
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    res
}

async fn static_asset(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    if path.as_str() == assets::INDEX {
        return Ok(index(req, state).await);
    }
    let (asset, etag) = assets::find(&path).ok_or_else(not_found_error)?;
    Ok(serve_bytes(
        &req,
        asset.content_type,
        web::Bytes::from_static(asset.body),
        etag,
    ))
}

/// An embedded file with its validator: `304` when `If-None-Match` names it. Browsers keep it
/// and revalidate on each use (`no-cache`), so an upgraded binary is picked up at once.
fn serve_bytes(
    req: &HttpRequest,
    content_type: &'static str,
    body: web::Bytes,
    etag: &str,
) -> HttpResponse {
    let hit = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| assets::if_none_match_hits(v, etag));
    let mut res = if hit {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    res.insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"));
    if hit {
        return res.finish();
    }
    res.content_type(content_type).body(body)
}

/// True when `Accept-Encoding` takes gzip (RFC 9110 §12.5.3): `gzip` with a non-zero quality,
/// or, when gzip is not named, `*` with a non-zero quality. `gzip;q=0, *` refuses gzip.
fn accepts_gzip(headers: &header::HeaderMap) -> bool {
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
/// dropped with its future.
async fn wait_for_edge(
    state: &AppState,
    cap: Duration,
    mut ready: impl FnMut(&crate::playlist::LiveEdge) -> bool,
) -> bool {
    let mut rx = state.shared.media.watch_edge();
    let satisfied = tokio::time::timeout(cap, rx.wait_for(|e| ready(e)))
        .await
        .is_ok_and(|r| r.is_ok());
    satisfied
}

async fn playlist(
    req: HttpRequest,
    file: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    if state.name.parse_file(&file) != Some(MediaFile::Playlist) {
        return Err(not_found_error());
    }
    let params = state.params();
    if let Some(res) = playlist_from_memory(&state, req.headers(), req.query_string()).await? {
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
            if let Some(unavailable) = hold_until_first_segment(&state, &params).await {
                return Ok(unavailable);
            }
            return match playlist_from_memory(&state, req.headers(), req.query_string()).await? {
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
async fn hold_until_first_segment(state: &AppState, params: &StreamParams) -> Option<HttpResponse> {
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
    state: &AppState,
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
            // The live edge moves every part: always revalidate.
            (true, false) => HeaderValue::from_static("no-cache"),
            (false, _) => cache_control(playlist_cache_control(params.target_duration_secs)),
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

/// A part: from memory only (parts are never written to disk). The hinted part, or any part of
/// the open segment or the next one, may be asked for before it is complete (R44): the request
/// is held until it is published (at most 3 TD), then answered whole.
pub(crate) async fn part(
    headers: &header::HeaderMap,
    state: &AppState,
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

async fn markers(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, Error> {
    marker_api::list(&req, &state)
}

/// How the stream is doing, as `/healthz` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum HealthStatus {
    /// No segment yet.
    Starting,
    /// Segments keep coming within the deadline.
    Live,
    /// The newest segment is older than the deadline, or the input stalled (a Y4M pipe).
    Stalled,
    /// `EXT-X-ENDLIST` written; the server still serves what remains.
    Ended,
}

impl HealthStatus {
    /// `200` for `live` and `ended`, `503` for `starting` and `stalled`.
    pub(crate) fn http_status(self) -> StatusCode {
        match self {
            HealthStatus::Live | HealthStatus::Ended => StatusCode::OK,
            HealthStatus::Starting | HealthStatus::Stalled => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// The health check's body.
#[derive(Debug, Serialize)]
pub(crate) struct Health {
    pub(crate) status: HealthStatus,
    pub(crate) newest_segment_age_secs: Option<f64>,
    pub(crate) deadline_secs: f64,
    pub(crate) newest_sequence: Option<u64>,
    pub(crate) ended: bool,
    pub(crate) segments_written: u64,
    pub(crate) frames_encoded: u64,
    pub(crate) frames_dropped: u64,
    pub(crate) markers: usize,
    /// Low latency: capture of a part's last frame to the part's publication, recent parts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) part_publish_lag: Option<crate::state::PartLag>,
    /// Why the camera is down (an RTSP input while it reconnects).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) input_down: Option<String>,
}

impl Health {
    pub(crate) fn http_status(&self) -> StatusCode {
        self.status.http_status()
    }
}

/// The stream's health from the shared status (see [`Health::status`]); `deadline` is the
/// configuration's, for inputs that do not set their own target duration.
pub(crate) fn health(shared: &Shared, deadline: Duration) -> Health {
    let s = shared.status();
    // A camera's GOP sets the target once it plays, longer or shorter than the server's.
    let deadline = match s.params {
        InputParams::Known(p) => health_deadline(p.target_duration_secs),
        InputParams::Configured | InputParams::Pending => deadline,
    };
    let age = s.newest_segment_at.map(|t| t.elapsed());
    let status = match age {
        _ if s.ended => HealthStatus::Ended,
        _ if s.input_stalled => HealthStatus::Stalled,
        None => HealthStatus::Starting,
        Some(a) if a <= deadline => HealthStatus::Live,
        Some(_) => HealthStatus::Stalled,
    };
    Health {
        status,
        newest_segment_age_secs: age.map(|a| (a.as_secs_f64() * 1000.0).round() / 1000.0),
        deadline_secs: deadline.as_secs_f64(),
        newest_sequence: s.newest_sequence,
        ended: s.ended,
        segments_written: s.segments_written,
        frames_encoded: s.frames_encoded,
        frames_dropped: s.frames_dropped,
        markers: shared.markers.len(),
        part_publish_lag: shared.part_lag(),
        input_down: s.input_down,
    }
}

async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let h = health(
        &state.shared,
        health_deadline(state.configured.target_duration_secs),
    );
    HttpResponse::build(h.http_status())
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(h)
}

/// A CORS preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`): `204` for an
/// allowed origin asking for `GET` or `HEAD`, `403` otherwise. The allowed origin itself is
/// added by the scope's CORS wrapper like on every other response.
async fn preflight(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let h = req.headers();
    let origin_ok = h
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .is_some_and(|o| state.cors.allows(o));
    let method_ok = h
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .is_some_and(|m| m.as_bytes() == b"GET" || m.as_bytes() == b"HEAD");
    if !(origin_ok && method_ok) {
        return Error::new(
            ErrorKind::FailedPrecondition,
            "cross-origin request not allowed",
        )
        .error_response();
    }
    HttpResponse::NoContent()
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, HEAD"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, cors::ALLOW_HEADERS))
        .insert_header((
            header::ACCESS_CONTROL_MAX_AGE,
            cors::PREFLIGHT_MAX_AGE_SECS.to_string(),
        ))
        .finish()
}

#[cfg(test)]
mod ll_tests;
#[cfg(test)]
mod marker_tests;
#[cfg(test)]
mod socket_tests;
#[cfg(test)]
mod tests;
