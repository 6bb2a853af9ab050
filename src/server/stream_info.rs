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
//! The body is built once from the [`ServerConfig`] for the inputs whose parameters are known
//! before the server starts (the checkerboard, a Y4M header). A camera's are known only once it
//! plays, and may change when it reconnects: then the body is built per request from what the
//! pipeline publishes ([`crate::state::InputParams`]): the camera's frame rate, the target
//! duration its GOP gave. Before the camera has played the route answers `503` (`Retry-After`).

use actix_web::web;
use serde::Serialize;

use crate::name::StreamName;
use crate::state::StreamParams;
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
    /// The body for stream `name` with parameters `p`.
    pub(crate) fn of(name: &StreamName, p: &StreamParams) -> StreamInfo {
        let FrameRate { num, den } = p.frame_rate;
        StreamInfo {
            name: name.to_string(),
            playlist: format!("/video/{}", name.playlist_file()),
            frame_rate: Rate { num, den },
            fps: p.frame_rate.as_f64(),
            target_duration: p.target_duration_secs,
        }
    }
}

/// Refuses a rate with a zero term ([`FrameRate`]'s fields are public, so one can be built).
pub(crate) fn check_rate(rate: FrameRate) -> Result<(), crate::error::Error> {
    FrameRate::new(rate.num, rate.den).map(drop)
}

/// The serialised [`StreamInfo`]: the route's app data.
#[derive(Clone, Debug)]
pub(crate) struct Body(pub(crate) web::Bytes);

/// The JSON body for stream `name` with the configuration's parameters `p`, serialised once.
pub(crate) fn body(name: &StreamName, p: &StreamParams) -> web::Data<Body> {
    let json = serde_json::to_vec(&StreamInfo::of(name, p)).expect("plain fields serialise");
    web::Data::new(Body(web::Bytes::from(json)))
}
