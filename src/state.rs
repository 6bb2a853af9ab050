//! State shared between the media threads (writers) and the HTTP server (reader).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};
use tokio::sync::broadcast;

use crate::clock::StreamClock;
use crate::markers::writer::Request;
use crate::markers::{Marker, MarkerStore};
use crate::time::StreamTime;

/// New markers kept for slow subscribers; one that falls further behind is dropped.
pub(crate) const MARKER_EVENTS_CAPACITY: usize = 256;

/// Everything the server may read about the running stream.
#[derive(Debug)]
pub struct Shared {
    pub markers: MarkerStore,
    /// The newest segments and the playlist, as the server sends them.
    pub(crate) media: crate::media_cache::MediaCache,
    pub(crate) status: RwLock<Status>,
    /// Every marker once it is on disk (`GET /markers/events`).
    pub(crate) marker_events: broadcast::Sender<Marker>,
    /// The marker writer's inbox while the stream runs.
    marker_inbox: RwLock<Option<Sender<Request>>>,
    /// The inbox was open and has been closed: the stream ended.
    markers_ended: std::sync::atomic::AtomicBool,
    /// The stream's clock, once the pipeline has read it (epoch kept across restarts).
    clock: RwLock<Option<StreamClock>>,
    /// Stream time of the newest frame encoded, plus one tick (0: none yet).
    newest_frame: AtomicU64,
    /// Generator markers handed to the writer, and those it has finished (saved or not).
    generator_markers: Mutex<(u64, u64)>,
    generator_markers_done: Condvar,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            markers: MarkerStore::default(),
            media: Default::default(),
            status: RwLock::default(),
            marker_events: broadcast::channel(MARKER_EVENTS_CAPACITY).0,
            marker_inbox: RwLock::new(None),
            markers_ended: std::sync::atomic::AtomicBool::new(false),
            clock: RwLock::new(None),
            newest_frame: AtomicU64::new(0),
            generator_markers: Mutex::new((0, 0)),
            generator_markers_done: Condvar::new(),
        }
    }
}

/// Why a marker could not be handed to the writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SubmitError {
    /// No writer yet: the stream has not started.
    Closed,
    /// The stream has ended: no writer will come back in this process.
    Ended,
    /// The inbox is full.
    Busy,
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
    /// Why the camera is down (an RTSP input reconnecting), credentials never included.
    pub(crate) input_down: Option<String>,
    /// TARGETDURATION when the input chose it after the server started (a passthrough camera's
    /// GOP decides it): `/healthz` allows 1.5 times it, not the server's own figure.
    pub(crate) target_duration_secs: Option<u64>,
}

impl Shared {
    /// Hands a marker request to the writer without waiting.
    pub(crate) fn submit_marker(&self, req: Request) -> Result<(), SubmitError> {
        let inbox = self.marker_inbox.read().expect("inbox lock poisoned");
        match inbox.as_ref().map(|tx| tx.try_send(req)) {
            None | Some(Err(TrySendError::Disconnected(_)))
                if self.markers_ended.load(Ordering::Acquire) =>
            {
                Err(SubmitError::Ended)
            }
            None | Some(Err(TrySendError::Disconnected(_))) => Err(SubmitError::Closed),
            Some(Err(TrySendError::Full(_))) => Err(SubmitError::Busy),
            Some(Ok(())) => Ok(()),
        }
    }

    /// Opens (`Some`) or closes (`None`) the marker inbox; closing lets the writer finish.
    pub(crate) fn set_marker_inbox(&self, inbox: Option<Sender<Request>>) {
        let mut slot = self.marker_inbox.write().expect("inbox lock poisoned");
        if inbox.is_some() || slot.is_some() {
            self.markers_ended.store(inbox.is_none(), Ordering::Release);
        }
        *slot = inbox;
    }

    /// The encoder handed a generator marker to the writer.
    pub(crate) fn generator_marker_submitted(&self) {
        self.generator_markers.lock().expect("lock poisoned").0 += 1;
    }

    /// The writer finished `n` generator markers (saved, or refused by the disk).
    pub(crate) fn generator_markers_finished(&self, n: u64) {
        if n > 0 {
            self.generator_markers.lock().expect("lock poisoned").1 += n;
            self.generator_markers_done.notify_all();
        }
    }

    /// Waits, at most `timeout`, until the writer has finished every generator marker handed
    /// to it so far; false on timeout. The segmenter calls it before it publishes a segment, so
    /// the playlist lists the markers of the frames in it (a disk that hangs costs at most
    /// `timeout` per segment, far less than the frames buffered before the encoder).
    pub(crate) fn wait_for_generator_markers(&self, timeout: Duration) -> bool {
        let guard = self.generator_markers.lock().expect("lock poisoned");
        let target = guard.0;
        let (_guard, result) = self
            .generator_markers_done
            .wait_timeout_while(guard, timeout, |(_, done)| *done < target)
            .expect("lock poisoned");
        !result.timed_out()
    }

    pub(crate) fn clock(&self) -> Option<StreamClock> {
        *self.clock.read().expect("clock lock poisoned")
    }

    pub(crate) fn set_clock(&self, clock: StreamClock) {
        *self.clock.write().expect("clock lock poisoned") = Some(clock);
    }

    /// Records the newest encoded frame (once per frame; one atomic store).
    pub(crate) fn set_newest_frame(&self, at: StreamTime) {
        self.newest_frame.store(at.as_u64() + 1, Ordering::Relaxed);
    }

    pub(crate) fn newest_frame(&self) -> Option<StreamTime> {
        match self.newest_frame.load(Ordering::Relaxed) {
            0 => None,
            t => Some(StreamTime(t - 1)),
        }
    }

    /// Why the input (an RTSP camera) is down right now, if it is.
    pub fn input_down(&self) -> Option<String> {
        self.status().input_down
    }

    pub(crate) fn status(&self) -> Status {
        self.status.read().expect("status lock poisoned").clone()
    }

    pub(crate) fn update_status(&self, f: impl FnOnce(&mut Status)) {
        f(&mut self.status.write().expect("status lock poisoned"));
    }
}
