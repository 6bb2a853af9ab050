//! `GET /healthz`: how the stream is doing, from the shared status the pipeline keeps.

use std::time::Duration;

use actix_web::http::StatusCode;
use serde::Serialize;

use super::state::{health_deadline, StreamView};
use crate::state::{InputParams, RunState, Shared};

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
    /// The stream's pipeline failed and starts again after a back-off.
    Restarting,
    /// The stream's pipeline failed and is not restarted (until a reload).
    Failed,
}

impl HealthStatus {
    /// `200` for `live` and `ended`, `503` for `starting` and `stalled`.
    pub(crate) fn http_status(self) -> StatusCode {
        match self {
            HealthStatus::Live | HealthStatus::Ended => StatusCode::OK,
            HealthStatus::Starting
            | HealthStatus::Stalled
            | HealthStatus::Restarting
            | HealthStatus::Failed => StatusCode::SERVICE_UNAVAILABLE,
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
    /// Why the stream's pipeline failed (restarting or failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    /// Seconds until the next start while restarting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) restart_in_secs: Option<f64>,
}

impl Health {
    pub(crate) fn http_status(&self) -> StatusCode {
        self.status.http_status()
    }

    /// What the stream's supervision adds: a failed pipeline overrides what its last run said.
    pub(crate) fn supervise(&mut self, run: RunState) {
        match run {
            RunState::Running => {}
            RunState::Ended => self.status = HealthStatus::Ended,
            RunState::Restarting { error, at, .. } => {
                self.status = HealthStatus::Restarting;
                self.error = Some(error);
                let left = at.saturating_duration_since(std::time::Instant::now());
                self.restart_in_secs = Some((left.as_secs_f64() * 10.0).round() / 10.0);
            }
            RunState::Failed { error } => {
                self.status = HealthStatus::Failed;
                self.error = Some(error);
            }
        }
    }
}

/// `GET /healthz` of a server with several streams: the worst status, and each stream's health
/// under its name.
#[derive(Debug, Serialize)]
pub(crate) struct Overall {
    /// `live` when every stream is live or ended; otherwise the first stream's that is not.
    pub(crate) status: HealthStatus,
    /// Names of the streams that are not well.
    pub(crate) unwell: Vec<String>,
    pub(crate) streams: std::collections::BTreeMap<String, Health>,
}

impl Overall {
    /// `streams` in the configuration's order (which `unwell` keeps).
    pub(crate) fn of(streams: impl IntoIterator<Item = (String, Health)>) -> Overall {
        let streams: Vec<_> = streams.into_iter().collect();
        let unwell: Vec<String> = streams
            .iter()
            .filter(|(_, h)| !h.http_status().is_success())
            .map(|(n, _)| n.clone())
            .collect();
        let streams: std::collections::BTreeMap<_, _> = streams.into_iter().collect();
        let status = unwell
            .first()
            .map_or(HealthStatus::Live, |n| streams[n].status);
        Overall {
            status,
            unwell,
            streams,
        }
    }

    pub(crate) fn http_status(&self) -> StatusCode {
        if self.unwell.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        }
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
        error: None,
        restart_in_secs: None,
    }
}

/// A stream's health: its run's, and its supervision's when that is restarting or failed.
pub(crate) fn of_stream(stream: &StreamView) -> Health {
    let mut h = health(
        &stream.shared,
        health_deadline(stream.configured.target_duration_secs),
    );
    h.supervise(stream.live.run_state());
    h
}
