//! The server's state: its configuration ([`ServerConfig`]) and what every handler reads
//! ([`AppState`]), built once per server and shared by its workers and the front door
//! ([`super::front`]); and the figures derived from the stream's parameters that more than one
//! answer gives (the playlist's `Cache-Control`, the health deadline).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix_web::web;

use super::cors::CorsPolicy;
use super::{assets, limits, stream_info};
use crate::error::Error;
use crate::name::StreamName;
use crate::state::{InputParams, Shared, StreamParams};

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

    /// The stream's parameters as this configuration gives them (before an input that decides
    /// its own, a camera, has given them).
    pub(crate) fn stream_params(&self) -> StreamParams {
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
    pub(crate) media_dir: PathBuf,
    pub(crate) name: StreamName,
    /// The configuration's frame rate, target duration and segment lifetime: what the headers
    /// and `GET /stream` say until the input gives its own ([`AppState::params`]).
    pub(crate) configured: StreamParams,
    pub(crate) cors: CorsPolicy,
    pub(crate) shared: Arc<Shared>,
    pub(crate) marker_token: Option<crate::config::MarkerToken>,
    /// Failed marker-token checks per client address (`429` past a limit).
    pub(crate) auth_failures: limits::AuthFailures,
    /// The player page with the stream name filled in, and its entity tag.
    pub(crate) index_html: web::Bytes,
    pub(crate) index_etag: String,
    /// The configuration's `GET /stream` body.
    pub(crate) stream_body: web::Data<stream_info::Body>,
    /// The media directory's recording index, server-wide (see [`ServerConfig::recordings`]).
    pub(crate) recordings: Option<crate::recording::Recordings>,
}

impl AppState {
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

/// The state every handler reads: built once per server, shared by its workers and the front
/// door ([`front`]).
pub(crate) fn app_state(cfg: &ServerConfig, shared: Arc<Shared>) -> web::Data<AppState> {
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
        stream_body: stream_info::body(&cfg.name, &cfg.stream_params()),
        recordings: cfg.recordings.clone(),
    })
}
