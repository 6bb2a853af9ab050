//! `GET /streams`: every stream the server serves, in the configuration's order, with what a
//! dashboard or a tile page shows of each: where to play it, how it stands, what it carries.
//!
//! ```json
//! {"streams": [{"name": "yard", "playlist": "/video/yard.m3u8",
//!   "multivariant": "/video/yard.index.m3u8", "player": "/watch/yard", "api": "/streams/yard",
//!   "state": "live", "resolution": "1280x720", "width": 1280, "height": 720,
//!   "frame_rate": {"num": 30, "den": 1}, "fps": 30.0, "codecs": "avc1.64001f",
//!   "bitrate_bps": 2391000, "peak_bitrate_bps": 2650000, "target_duration": 2,
//!   "latency_secs": 1.07, "publish_lag_ms": 68,
//!   "newest_marker": {"id": 7, "time": 61.2, "text": "motion", ...}}]}
//! ```
//!
//! `state` is `/healthz`'s status for the stream (`starting`, `live`, `stalled`, `ended`,
//! `restarting`, `failed`), and `error` says why when it is not well. The picture's figures
//! (`resolution`, `codecs`, the bit rates) are the multivariant playlist's, known once the
//! first segment is out; `latency_secs` is the hold-back a conforming player keeps behind the
//! live edge plus the origin's own delay (the capture of a part's last frame to its
//! publication, `publish_lag_ms`): what a viewer at the live edge sees; given while the stream
//! plays, and not for a passthrough camera (its hold-back follows its GOP).

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Serialize;

use super::health::{self, HealthStatus};
use super::state::{AppState, StreamView};
use super::stream_info::Rate;
use crate::markers::Marker;
use crate::state::InputParams;

/// One stream of `GET /streams`.
#[derive(Debug, Serialize)]
pub(crate) struct Entry {
    pub(crate) name: String,
    pub(crate) playlist: String,
    pub(crate) multivariant: String,
    /// The stream's player page.
    pub(crate) player: String,
    /// The stream's API: `GET` it for `/stream`'s body, `/markers` and `/markers/events` under it.
    pub(crate) api: String,
    pub(crate) state: HealthStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) resolution: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) height: Option<u32>,
    /// The exact frame rate; absent while a camera has not played.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) frame_rate: Option<Rate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) fps: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) codecs: Option<String>,
    /// Average bit rate over the measured window (`AVERAGE-BANDWIDTH`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) bitrate_bps: Option<u64>,
    /// Peak segment bit rate (`BANDWIDTH`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) peak_bitrate_bps: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) target_duration: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) latency_secs: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) publish_lag_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) newest_marker: Option<Marker>,
}

#[derive(Serialize)]
struct Body {
    streams: Vec<Entry>,
}

impl Entry {
    pub(crate) fn of(stream: &StreamView) -> Entry {
        let name = stream.name.as_str();
        let health = health::of_stream(stream);
        let status = stream.shared.status();
        let params = match status.params {
            InputParams::Pending => None,
            InputParams::Configured | InputParams::Known(_) => Some(stream.params()),
        };
        let variant = status.variant.as_ref();
        let lag = stream.shared.part_lag();
        let playing = matches!(health.status, HealthStatus::Live | HealthStatus::Stalled);
        let latency_secs = stream.hold_back_secs.filter(|_| playing).map(|hold_back| {
            let lag = lag.map_or(0.0, |l| l.median_ms as f64 / 1000.0);
            ((hold_back + lag) * 1000.0).round() / 1000.0
        });
        Entry {
            name: name.to_owned(),
            playlist: format!("/video/{}", stream.name.playlist_file()),
            multivariant: format!("/video/{}", stream.name.multivariant_file()),
            player: format!("/watch/{name}"),
            api: format!("/streams/{name}"),
            state: health.status,
            error: health.error.or(health.input_down),
            resolution: variant.map(|v| format!("{}x{}", v.width, v.height)),
            width: variant.map(|v| v.width),
            height: variant.map(|v| v.height),
            frame_rate: params.map(|p| Rate {
                num: p.frame_rate.num,
                den: p.frame_rate.den,
            }),
            fps: params.map(|p| p.frame_rate.as_f64()),
            codecs: variant.map(|v| v.codecs.clone()),
            bitrate_bps: variant.map(|v| v.average_bps),
            peak_bitrate_bps: variant.map(|v| v.peak_bps),
            target_duration: params.map(|p| p.target_duration_secs),
            latency_secs,
            publish_lag_ms: lag.map(|l| l.median_ms),
            newest_marker: stream
                .shared
                .markers
                .page(None, None, 1)
                .0
                .into_iter()
                .next(),
        }
    }
}

/// `GET /streams`.
pub(crate) async fn list(state: web::Data<AppState>) -> HttpResponse {
    let streams = state
        .streams
        .list()
        .iter()
        .map(|s| Entry::of(&StreamView::of(s.clone())))
        .collect();
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .json(Body { streams })
}
