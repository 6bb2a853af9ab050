//! `GET /stream`: what the player page needs to know about the stream and cannot read from the
//! playlist, above all the exact frame rate as a fraction. With it the page computes a marker's
//! frame slot and timecode exactly as the burnt-in overlay does ([`crate::overlay::Timecode`]),
//! and seeks half a frame into that frame.
//!
//! ```json
//! {"name": "chessboard", "playlist": "/video/chessboard.m3u8",
//!  "frame_rate": {"num": 30000, "den": 1001}, "fps": 29.97002997002997, "target_duration": 2}
//! ```
//!
//! The body is built once from the [`ServerConfig`]: it is fixed for the life of the process.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Serialize;

use super::ServerConfig;
use crate::time::FrameRate;

/// The body of `GET /stream`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct StreamInfo {
    /// The stream's base name.
    pub(crate) name: String,
    /// Path of the live playlist on this server.
    pub(crate) playlist: String,
    /// Frames per second as an exact fraction (30000/1001 for 29.97).
    pub(crate) frame_rate: Rate,
    /// `num / den`, for display only: compute frames from `frame_rate`.
    pub(crate) fps: f64,
    /// `EXT-X-TARGETDURATION` in seconds.
    pub(crate) target_duration: u64,
}

/// A frame rate as it is serialised: `{"num": 30000, "den": 1001}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Rate {
    pub(crate) num: u32,
    pub(crate) den: u32,
}

impl StreamInfo {
    pub(crate) fn new(cfg: &ServerConfig) -> StreamInfo {
        let FrameRate { num, den } = cfg.frame_rate;
        StreamInfo {
            name: cfg.name.to_string(),
            playlist: format!("/video/{}", cfg.name.playlist_file()),
            frame_rate: Rate { num, den },
            fps: cfg.frame_rate.as_f64(),
            target_duration: cfg.target_duration_secs,
        }
    }
}

/// Refuses a rate with a zero term ([`FrameRate`]'s fields are public, so one can be built).
pub(crate) fn check_rate(rate: FrameRate) -> Result<(), crate::error::Error> {
    FrameRate::new(rate.num, rate.den).map(drop)
}

/// The serialised [`StreamInfo`]: the route's app data.
#[derive(Clone, Debug)]
pub(crate) struct Body(web::Bytes);

/// The JSON body for `cfg`, serialised once.
pub(crate) fn body(cfg: &ServerConfig) -> web::Data<Body> {
    let json = serde_json::to_vec(&StreamInfo::new(cfg)).expect("plain fields serialise");
    web::Data::new(Body(web::Bytes::from(json)))
}

/// The `/stream` route (`GET` and `HEAD`, like every route), answering `body`.
pub(super) fn resource(preflight: bool, body: web::Data<Body>) -> actix_web::Resource {
    super::read_only("/stream", preflight)
        .to(stream)
        .app_data(body)
}

/// The route's handler.
async fn stream(body: web::Data<Body>) -> HttpResponse {
    HttpResponse::Ok()
        // Fixed while the process runs, but a restart may change it: revalidate each time.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .content_type("application/json")
        .body(body.0.clone())
}
