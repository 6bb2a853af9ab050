//! The server's state: its configuration ([`ServerConfig`]) and what every handler reads
//! ([`AppState`]), built once per server and shared by its workers and the front door
//! ([`super::front`]); and the figures derived from the stream's parameters that more than one
//! answer gives (the playlist's `Cache-Control`, the health deadline).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix_web::web;

use super::cors::CorsPolicy;
use super::{assets, limits, stream_info};
use crate::error::Error;
use crate::name::{MediaFile, StreamName};
use crate::state::{InputParams, LiveStream, Shared, StreamParams};

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
    /// The media directory's recording index (`/recordings`, the marker clips); `None`: the
    /// routes answer 404.
    pub recordings: Option<crate::recording::Recordings>,
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

/// What the server knows of one stream: its name, its configured figures, its page, and its
/// live state across its pipeline's restarts. Built when the stream is added to the table
/// ([`Streams`]), shared by every worker.
pub(crate) struct StreamState {
    pub(crate) name: StreamName,
    pub(crate) media_dir: PathBuf,
    /// The configuration's frame rate, target duration and segment lifetime: what the headers
    /// and `GET /stream` say until the input gives its own ([`StreamView::params`]).
    pub(crate) configured: StreamParams,
    /// The bearer token `POST` of this stream's markers requires (its own, else the server's).
    pub(crate) marker_token: Option<crate::config::MarkerToken>,
    /// The player page with the stream's name and routes filled in, and its entity tag.
    pub(crate) index_html: web::Bytes,
    pub(crate) index_etag: String,
    /// The configuration's `GET /stream` body.
    pub(crate) stream_body: web::Data<stream_info::Body>,
    pub(crate) hold_back_secs: Option<f64>,
    pub(crate) live: Arc<LiveStream>,
    /// The server's series (`hls_blocking_waits` is counted where a request waits).
    pub(crate) http: crate::telemetry::HttpMetrics,
}

/// A request's view of one stream: its state, and the run that serves it now (taken once per
/// request, so that one answer never mixes two runs).
#[derive(Clone)]
pub(crate) struct StreamView {
    stream: Arc<StreamState>,
    pub(crate) shared: Arc<Shared>,
}

impl std::ops::Deref for StreamView {
    type Target = StreamState;
    fn deref(&self) -> &StreamState {
        &self.stream
    }
}

impl StreamView {
    pub(crate) fn of(stream: Arc<StreamState>) -> StreamView {
        let shared = stream.live.shared();
        StreamView { stream, shared }
    }

    /// The stream's parameters as published now: the input's once it has given them (a
    /// camera's frame rate and GOP-derived target, changed by a reconnect), else the
    /// configuration's. Every header and body that depends on them reads them here, per request.
    pub(crate) fn params(&self) -> StreamParams {
        match self.shared.input_params() {
            InputParams::Known(p) => p,
            InputParams::Configured | InputParams::Pending => self.configured,
        }
    }
}

/// A handler's stream: the one its route names (`/streams/{stream}/...`), else the first one
/// (`/stream`, `/markers`); `404` with a JSON message when there is none.
impl actix_web::FromRequest for StreamView {
    type Error = Error;
    type Future = std::future::Ready<Result<StreamView, Error>>;

    fn from_request(req: &actix_web::HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let app = req
            .app_data::<web::Data<AppState>>()
            .expect("the routes carry the app state");
        let found = match req.match_info().get("stream") {
            Some(name) => app.streams.by_name(name).ok_or_else(|| {
                let shown: String = name.chars().take(StreamName::MAX_LEN + 8).collect();
                crate::err!(NotFound, "no stream named {shown:?}")
            }),
            None => app
                .streams
                .first()
                .ok_or_else(|| crate::err!(NotFound, "no stream is configured")),
        };
        std::future::ready(found)
    }
}

/// One stream's part of the server's configuration (see [`ServerConfig`] for the fields).
#[derive(Clone, Debug)]
pub struct StreamConfig {
    pub name: StreamName,
    pub target_duration_secs: u64,
    pub segment_lifetime_secs: u64,
    pub frame_rate: crate::time::FrameRate,
    /// This stream's own marker token; `None`: the server's.
    pub marker_token: Option<crate::config::MarkerToken>,
    /// How far behind the live edge a conforming player plays (`PART-HOLD-BACK` with low
    /// latency, three target durations without), if known: `GET /streams`' latency figure.
    pub hold_back_secs: Option<f64>,
}

impl StreamConfig {
    fn validate(&self) -> Result<(), Error> {
        if self.target_duration_secs == 0 {
            crate::bail!(
                InvalidArgument,
                "target duration must be at least 1 s (RFC 8216 §4.3.3.1)"
            );
        }
        stream_info::check_rate(self.frame_rate)
    }

    fn params(&self) -> StreamParams {
        StreamParams {
            frame_rate: self.frame_rate,
            target_duration_secs: self.target_duration_secs,
            segment_lifetime_secs: self.segment_lifetime_secs,
        }
    }
}

/// The streams the server serves, in the configuration's order (the first is the one `/stream`
/// and `/markers` answer for). A reload replaces the whole list at once; a request takes it once.
pub struct Streams {
    media_dir: PathBuf,
    /// Each stream's page reads the routes under its name (`/streams/NAME/...`), not `/stream`.
    named_routes: bool,
    /// The server's marker token, for streams without their own.
    marker_token: Option<crate::config::MarkerToken>,
    list: RwLock<Arc<[Arc<StreamState>]>>,
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.list().iter().map(|s| s.name.clone()).collect();
        f.debug_struct("Streams").field("names", &names).finish()
    }
}

impl Streams {
    /// No stream yet, for a server whose media directory is `media_dir` and whose marker token
    /// (for streams without their own) is `marker_token`. With `named_routes`, each stream's
    /// page reads `/streams/NAME`, `/streams/NAME/markers`, ... (a server of several streams);
    /// without, `/stream`, `/markers`, ... (the one stream of the command line's flags).
    pub fn new(
        media_dir: PathBuf,
        marker_token: Option<crate::config::MarkerToken>,
        named_routes: bool,
    ) -> Arc<Streams> {
        Arc::new(Streams {
            media_dir,
            named_routes,
            marker_token,
            list: RwLock::new(Arc::from(Vec::new())),
        })
    }

    /// Serves exactly `streams` from now on, in this order. A stream whose name was served
    /// before keeps its entry (and page) when its configuration is the same.
    pub fn set(&self, streams: &[(StreamConfig, Arc<LiveStream>)]) -> Result<(), Error> {
        for (cfg, _) in streams {
            cfg.validate()?;
        }
        let old = self.list();
        let list: Vec<Arc<StreamState>> = streams
            .iter()
            .map(|(cfg, live)| {
                let token = cfg.marker_token.as_ref().or(self.marker_token.as_ref());
                let kept = old.iter().find(|s| {
                    s.name == cfg.name
                        && Arc::ptr_eq(&s.live, live)
                        && s.configured == cfg.params()
                        && s.marker_token.as_ref() == token
                });
                match kept {
                    Some(s) => s.clone(),
                    None => Arc::new(self.stream_state(cfg, live.clone())),
                }
            })
            .collect();
        *self.list.write().expect("streams lock poisoned") = Arc::from(list);
        Ok(())
    }

    fn stream_state(&self, cfg: &StreamConfig, live: Arc<LiveStream>) -> StreamState {
        let routes = if self.named_routes {
            assets::PageRoutes::of(cfg.name.as_str())
        } else {
            assets::PageRoutes::single()
        };
        let (index_html, index_etag) = assets::render_index(cfg.name.as_str(), &routes);
        StreamState {
            name: cfg.name.clone(),
            media_dir: self.media_dir.clone(),
            configured: cfg.params(),
            marker_token: cfg
                .marker_token
                .clone()
                .or_else(|| self.marker_token.clone()),
            index_html: web::Bytes::from(index_html),
            index_etag,
            stream_body: stream_info::body(&cfg.name, &cfg.params()),
            hold_back_secs: cfg.hold_back_secs,
            live,
            http: crate::telemetry::HttpMetrics::default(),
        }
    }

    /// Each stream's page reads its own routes, and `/healthz` answers per stream: a server of
    /// a configuration file (whatever the number of its streams).
    pub(crate) fn named(&self) -> bool {
        self.named_routes
    }

    /// Every stream, in order.
    pub(crate) fn list(&self) -> Arc<[Arc<StreamState>]> {
        self.list.read().expect("streams lock poisoned").clone()
    }

    /// The first stream (`/stream`, `/markers`).
    pub(crate) fn first(&self) -> Option<StreamView> {
        self.list().first().cloned().map(StreamView::of)
    }

    /// The stream named `name` (exactly).
    pub(crate) fn by_name(&self, name: &str) -> Option<StreamView> {
        self.list()
            .iter()
            .find(|s| s.name.as_str() == name)
            .cloned()
            .map(StreamView::of)
    }

    /// Which file of which stream `file` is, if any (without taking the stream).
    pub(crate) fn file_kind(&self, file: &str) -> Option<MediaFile> {
        self.list().iter().find_map(|s| s.name.parse_file(file))
    }

    /// The stream whose file `file` is, and which of its files. Names cannot end in a digit, so
    /// at most one stream's files match.
    pub(crate) fn by_file(&self, file: &str) -> Option<(StreamView, MediaFile)> {
        self.list().iter().find_map(|s| {
            s.name
                .parse_file(file)
                .map(|f| (StreamView::of(s.clone()), f))
        })
    }
}

/// What every handler reads: the server-wide settings and the stream table, built once per
/// server and shared by its workers and the front door ([`super::front`]).
pub(crate) struct AppState {
    pub(crate) cors: CorsPolicy,
    /// Failed marker-token checks per client address (`429` past a limit).
    pub(crate) auth_failures: limits::AuthFailures,
    pub(crate) streams: Arc<Streams>,
    /// `GET /metrics`'s exporter and the server's series.
    pub(crate) telemetry: crate::telemetry::ServerMetrics,
    /// The media directory's recording index, server-wide; `None`: nothing is recorded.
    pub(crate) recordings: Option<crate::recording::Recordings>,
}

impl ServerConfig {
    /// The one stream this configuration describes.
    pub fn stream_config(&self) -> StreamConfig {
        StreamConfig {
            name: self.name.clone(),
            target_duration_secs: self.target_duration_secs,
            segment_lifetime_secs: self.segment_lifetime_secs,
            frame_rate: self.frame_rate,
            marker_token: None,
            hold_back_secs: None,
        }
    }
}

/// The state every handler reads, for a server of the streams in `streams`.
pub(crate) fn app_state_of(
    cors_origins: &[String],
    streams: Arc<Streams>,
    telemetry: crate::telemetry::ServerMetrics,
    recordings: Option<crate::recording::Recordings>,
) -> web::Data<AppState> {
    let cors = CorsPolicy::new(cors_origins).expect("origins were validated");
    web::Data::new(AppState {
        cors,
        auth_failures: limits::AuthFailures::default(),
        streams,
        telemetry,
        recordings,
    })
}

/// The state every handler reads, for the one stream of `cfg` whose run shares `shared`.
#[cfg(test)]
pub(crate) fn app_state(
    cfg: &ServerConfig,
    shared: Arc<Shared>,
    telemetry: crate::telemetry::ServerMetrics,
) -> web::Data<AppState> {
    app_state_of(
        &cfg.cors_origins,
        single_stream(cfg, shared),
        telemetry,
        cfg.recordings.clone(),
    )
}

/// The stream table of a one-stream server.
pub(crate) fn single_stream(cfg: &ServerConfig, shared: Arc<Shared>) -> Arc<Streams> {
    let streams = Streams::new(cfg.media_dir.clone(), cfg.marker_token.clone(), false);
    streams
        .set(&[(cfg.stream_config(), Arc::new(LiveStream::new(shared)))])
        .expect("the configuration was validated");
    streams
}
