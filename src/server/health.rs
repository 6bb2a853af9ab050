//! `GET /healthz`: how the stream is doing, from the shared status the pipeline keeps.

use std::time::Duration;

use actix_web::http::StatusCode;
use serde::Serialize;

use super::state::health_deadline;
use crate::state::{InputParams, Shared};

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
