//! State shared between the media threads (writers) and the HTTP server (reader).

use std::sync::RwLock;
use std::time::Instant;

use crate::markers::MarkerStore;

/// Everything the server may read about the running stream.
#[derive(Debug, Default)]
pub struct Shared {
    pub markers: MarkerStore,
    pub(crate) status: RwLock<Status>,
}

/// Counters and health of the stream, updated by the segmenter once per segment.
#[derive(Clone, Debug, Default)]
pub(crate) struct Status {
    /// Monotonic instant at which the newest segment was published (playlist renamed into place).
    pub(crate) newest_segment_at: Option<Instant>,
    /// Media sequence number of the newest published segment.
    pub(crate) newest_sequence: Option<u64>,
    /// The playlist carries `EXT-X-ENDLIST`: no more segments will come.
    pub(crate) ended: bool,
    pub(crate) segments_written: u64,
    pub(crate) frames_encoded: u64,
    /// Frames the source dropped because the encoder was behind.
    pub(crate) frames_dropped: u64,
    /// The input (a Y4M pipe) stopped or fell more than a segment behind real time, and has not
    /// delivered a frame since: `/healthz` says stalled whatever the newest segment's age.
    pub(crate) input_stalled: bool,
}

impl Shared {
    pub(crate) fn status(&self) -> Status {
        self.status.read().expect("status lock poisoned").clone()
    }

    pub(crate) fn update_status(&self, f: impl FnOnce(&mut Status)) {
        f(&mut self.status.write().expect("status lock poisoned"));
    }
}
