//! The HTTP origin: player page, live playlist and segments, markers API and health check.
//!
//! | route | answer |
//! | --- | --- |
//! | `GET /` | the player page (embedded, see [`assets`]); with several streams, a tile per stream |
//! | `GET /static/{path}` | the page's scripts, styles and the vendored hls.js |
//! | `GET /video/{name}.m3u8` | the live playlist: `application/vnd.apple.mpegurl`, `Cache-Control: public, max-age=⌊TD/2⌋` (RFC 8216 §6.3.4: a client reloads no sooner than half a target duration, so a shared cache may hold it that long, R39), gzip when accepted (§6.2.1, R31) |
//! | `GET /video/{name}{seq}.ts` | a segment: `video/mp2t`, never compressed, byte ranges, `Cache-Control: public, max-age=<remaining>, immutable` and `Expires` = publication + planned lifetime (RFC 8216 §6.2.2, R27) |
//! | `GET /markers?ts_start=S&after_id=N&limit=L` | `{"markers": [...], "next_after_id"?}`, `time > S`, at most `limit` (default 1000, max 5000): the newest, or forward from `after_id`; bad parameters are `400 {"error": ...}` |
//! | `GET /stream` | `{"name", "playlist", "frame_rate": {"num", "den"}, "fps", "target_duration"}`: the exact frame rate for the page's timecodes ([`stream_info`]); a camera's own once it plays (`503` before) |
//! | `GET /streams` | every stream: name, playlist, player page, state, resolution, exact frame rate, codecs, measured bit rate, latency ([`streams`]) |
//! | `GET /streams/{name}` | that stream's `/stream`; `/streams/{name}/markers` (`GET`, `POST`), `/streams/{name}/markers/events` and `/streams/{name}/healthz` are its markers API and health |
//! | `GET /watch/{name}` | that stream's player page (`/` is the tile page of every stream when there are several) |
//! | `GET /metrics` | the Prometheus text of every series (`text/plain; version=0.0.4`, [`metrics_api`]); on `--metrics-bind`'s address instead when given |
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
//!
//! The parts, each using only the ones on the lines before it (docs/architecture.md):
//! - [`error`], [`cors`], [`limits`], [`assets`], [`media`], [`stream_info`]: the leaves;
//! - [`state`]: the configuration, the stream table ([`state::Streams`]) and what every handler
//!   reads ([`state::AppState`], [`state::StreamView`]);
//! - [`segments`], [`marker_api`], [`health`], [`metrics_api`]: segment answers, the markers API,
//!   the health body, `/metrics` and the counting of requests;
//! - [`streams`]: `GET /streams`, every stream's figures;
//! - [`answers`]: the playlist and part answers, and the headers every answer carries;
//! - [`front`]: the front door, answering media from memory with [`answers`] and [`segments`];
//!   [`recordings`]: the review routes over the recording index (issue 21);
//! - [`routes`]: actix-web's routes and the remaining handlers;
//! - [`startup`]: binding, the workers, serving until stopped.
//!
//! This file only declares them and re-exports what the binary uses.

pub(crate) mod answers;
pub(crate) mod assets;
pub(crate) mod cors;
pub(crate) mod error;
pub(crate) mod front;
pub(crate) mod health;
pub(crate) mod limits;
pub(crate) mod marker_api;
pub(crate) mod media;
pub(crate) mod metrics_api;
pub(crate) mod recordings;
pub(crate) mod routes;
pub(crate) mod segments;
pub(crate) mod startup;
pub(crate) mod state;
pub(crate) mod stream_info;
pub(crate) mod streams;

pub use startup::{bind, serve, serve_listener, serve_streams, serve_with_metrics, Metrics};
pub use state::{ServerConfig, StreamConfig, Streams};

// The tests below see the whole server through `use super::*`.
#[cfg(test)]
#[allow(unused_imports)]
use {
    crate::error::{Error, ErrorKind},
    crate::name::{MediaFile, StreamName},
    crate::state::{InputParams, Shared, StreamParams},
    actix_web::http::header::{self, HeaderValue},
    actix_web::http::{Method, StatusCode},
    actix_web::{web, App, HttpRequest, HttpResponse},
    answers::*,
    cors::CorsPolicy,
    error::*,
    health::*,
    marker_api::parse_ts_start,
    routes::*,
    segments::*,
    startup::*,
    state::*,
    std::net::{SocketAddr, TcpListener},
    std::sync::Arc,
    std::time::Duration,
};

#[cfg(test)]
mod ll_tests;
#[cfg(test)]
mod marker_tests;
#[cfg(test)]
mod socket_tests;
#[cfg(test)]
mod tests;
