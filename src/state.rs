//! State shared between the media threads (writers) and the HTTP server (reader).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};
use tokio::sync::broadcast;

use crate::clock::StreamClock;
use crate::markers::writer::Request;
use crate::markers::{Marker, MarkerStore};
use crate::telemetry::StreamMetrics;
use crate::time::{FrameRate, StreamTime};

/// Frame gaps remembered for snapping markers to frames that exist; the oldest go first.
const FRAME_GAPS_CAPACITY: usize = 4096;

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
    /// Capture to publication of each recent part's last frame, in ms (low latency).
    part_lags: Mutex<std::collections::VecDeque<i64>>,
    /// Generator markers that could not be written.
    generator_markers_lost: AtomicU64,
    /// Frame slots known not to exist: `[first, next)` ranges, oldest first, bounded (the gap
    /// before this run's first frame and the slots the source dropped).
    frame_gaps: Mutex<std::collections::VecDeque<(u64, u64)>>,
    /// Open `GET /markers/events` responses (their bodies not yet dropped by the server).
    event_clients: std::sync::Arc<AtomicU64>,
    /// The stream's series (`/metrics`), set once when its pipeline starts.
    metrics: std::sync::OnceLock<std::sync::Arc<StreamMetrics>>,
}

/// Parts whose publication lag `/healthz` summarises.
pub(crate) const PART_LAGS_KEPT: usize = 256;

/// Median and 90th percentile of the recent parts' publication lag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub(crate) struct PartLag {
    pub(crate) parts: usize,
    pub(crate) median_ms: i64,
    pub(crate) p90_ms: i64,
    pub(crate) max_ms: i64,
}

/// Counts one open event-stream response while it lives.
pub(crate) struct EventClient(std::sync::Arc<AtomicU64>);

impl Drop for EventClient {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
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
            part_lags: Mutex::new(std::collections::VecDeque::with_capacity(PART_LAGS_KEPT)),
            generator_markers_lost: AtomicU64::new(0),
            event_clients: Default::default(),
            frame_gaps: Mutex::default(),
            metrics: std::sync::OnceLock::new(),
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
    /// The stream's parameters when the input decides them after the server started (a
    /// camera's): `GET /stream`, the playlist's `max-age`, the segments' `Expires` and the
    /// health deadline follow them, not the server's own figures.
    pub(crate) params: InputParams,
    /// What the multivariant playlist says of the stream (codec, picture size, measured bit
    /// rates), once a keyframe gave the codec: `GET /streams`.
    pub(crate) variant: Option<crate::playlist::multivariant::Variant>,
}

/// What the page and caches are told about the stream as it is published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StreamParams {
    /// The frame rate of the frames published now (`GET /stream`).
    pub(crate) frame_rate: FrameRate,
    /// `EXT-X-TARGETDURATION` (fixed for the playlist's life, R14): the playlist's `max-age`,
    /// a blocking request's hold, the health deadline.
    pub(crate) target_duration_secs: u64,
    /// How long a segment stays on the server from its publication: its `Expires` (R27).
    pub(crate) segment_lifetime_secs: u64,
}

/// Where the stream's parameters come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum InputParams {
    /// The server's configuration (the command line's, or a Y4M header's read before it
    /// started).
    #[default]
    Configured,
    /// The input decides them once it plays (a camera not connected yet): `GET /stream` has
    /// nothing to say yet.
    Pending,
    /// The input's, as published now.
    Known(StreamParams),
}

impl Shared {
    /// Hands a posted marker request to the writer without waiting; `Busy` once
    /// [`INBOX_CAPACITY`](crate::markers::writer::INBOX_CAPACITY) requests wait (the rest of
    /// the inbox is the generator's).
    pub(crate) fn submit_marker(&self, req: Request) -> Result<(), SubmitError> {
        self.submit(req, crate::markers::writer::INBOX_CAPACITY)
    }

    /// Hands a generator marker to the writer without waiting, into the whole inbox (its
    /// reserve included); a failure is counted as a lost built-in marker.
    pub(crate) fn submit_generator_marker(&self, req: Request) -> Result<(), SubmitError> {
        let r = self.submit(req, usize::MAX);
        match r {
            Ok(()) => self.generator_marker_submitted(),
            Err(_) => self.generator_markers_lost(1),
        }
        r
    }

    fn submit(&self, req: Request, room: usize) -> Result<(), SubmitError> {
        let inbox = self.marker_inbox.read().expect("inbox lock poisoned");
        if inbox.as_ref().is_some_and(|tx| tx.len() >= room) {
            return Err(SubmitError::Busy);
        }
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

    /// `n` built-in markers could not be written (the inbox was full, the disk refused them
    /// for too long, the log broke); each is also logged where it is lost.
    pub(crate) fn generator_markers_lost(&self, n: u64) {
        self.generator_markers_lost.fetch_add(n, Ordering::Relaxed);
    }

    /// Slots `first..next` have no frame (never encoded: a restart's gap, a dropped slot).
    pub(crate) fn add_frame_gap(&self, first: u64, next: u64) {
        if first >= next {
            return;
        }
        let mut gaps = self.frame_gaps.lock().expect("lock poisoned");
        if gaps.len() == FRAME_GAPS_CAPACITY {
            gaps.pop_front();
        }
        gaps.push_back((first, next));
    }

    /// `slot` if a frame exists there (as far as the recorded gaps tell), else the first slot
    /// after its gap: the next frame that exists.
    pub(crate) fn existing_slot(&self, slot: u64) -> u64 {
        let gaps = self.frame_gaps.lock().expect("lock poisoned");
        gaps.iter()
            .find(|&&(first, next)| (first..next).contains(&slot))
            .map_or(slot, |&(_, next)| next)
    }

    /// A new event-stream response; dropping the guard ends it.
    pub(crate) fn event_client(&self) -> EventClient {
        self.event_clients.fetch_add(1, Ordering::Relaxed);
        EventClient(self.event_clients.clone())
    }

    /// Event-stream responses the server still holds.
    #[cfg(test)]
    pub(crate) fn event_clients(&self) -> u64 {
        self.event_clients.load(Ordering::Relaxed)
    }

    /// Built-in markers lost so far.
    pub(crate) fn generator_markers_lost_count(&self) -> u64 {
        self.generator_markers_lost.load(Ordering::Relaxed)
    }

    /// The encoder handed a generator marker to the writer.
    fn generator_marker_submitted(&self) {
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

    /// The stream's parameters ([`Status::params`]), read without cloning the status.
    pub(crate) fn input_params(&self) -> InputParams {
        self.status.read().expect("status lock poisoned").params
    }

    pub(crate) fn status(&self) -> Status {
        self.status.read().expect("status lock poisoned").clone()
    }

    /// Records one part's capture-to-publication lag (no allocation: a ring).
    pub(crate) fn record_part_lag(&self, ms: i64) {
        let mut lags = self.part_lags.lock().expect("part lag lock poisoned");
        if lags.len() == PART_LAGS_KEPT {
            lags.pop_front();
        }
        lags.push_back(ms);
    }

    /// The recent parts' publication lag, if any part was published.
    pub(crate) fn part_lag(&self) -> Option<PartLag> {
        let mut v: Vec<i64> = self
            .part_lags
            .lock()
            .expect("part lag lock poisoned")
            .iter()
            .copied()
            .collect();
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        let at = |q: usize| v[((v.len() - 1) * q).div_ceil(100)];
        Some(PartLag {
            parts: v.len(),
            median_ms: at(50),
            p90_ms: at(90),
            max_ms: *v.last().expect("not empty"),
        })
    }

    /// Changes the status. The input's series follow it here, wherever it changes:
    /// `hls_input_up` is 1 unless the input is stalled or down, not yet playing (a camera) or
    /// ended; `hls_input_reconnects_total` counts each time a camera goes down (its client
    /// then reconnects).
    pub(crate) fn update_status(&self, f: impl FnOnce(&mut Status)) {
        let mut s = self.status.write().expect("status lock poisoned");
        let was_down = s.input_down.is_some();
        f(&mut s);
        let m = self.metrics();
        if !was_down && s.input_down.is_some() {
            m.input_reconnects.increment(1);
        }
        let up = !(s.input_stalled || s.ended || s.params == InputParams::Pending);
        m.input_up.set(if up { 1.0 } else { 0.0 });
    }

    /// Gives the stream its series (once: a later call keeps the first) and sets
    /// `hls_input_up` from the status.
    pub(crate) fn set_metrics(&self, metrics: std::sync::Arc<StreamMetrics>) {
        let _ = self.metrics.set(metrics);
        self.update_status(|_| {});
    }

    /// The stream's series; series that count nothing before its pipeline starts.
    pub(crate) fn metrics(&self) -> &std::sync::Arc<StreamMetrics> {
        self.metrics.get().unwrap_or(StreamMetrics::detached())
    }
}

/// The marker writer's view of the shared state.
impl crate::markers::writer::Board for Shared {
    fn markers(&self) -> &MarkerStore {
        &self.markers
    }

    fn announce(&self, m: &Marker) {
        // No subscriber is fine.
        let _ = self.marker_events.send(m.clone());
    }

    fn generator_markers_lost(&self, n: u64) {
        Shared::generator_markers_lost(self, n);
    }

    fn generator_markers_finished(&self, n: u64) {
        Shared::generator_markers_finished(self, n);
    }

    fn existing_slot(&self, slot: u64) -> u64 {
        Shared::existing_slot(self, slot)
    }

    fn metrics(&self) -> &StreamMetrics {
        Shared::metrics(self)
    }
}

/// One configured stream across the runs of its pipeline: the [`Shared`] of the run serving it
/// now (a restart brings a new one) and how its supervision stands. The server holds this, not
/// a run's `Shared`, so that a restarted stream is served from its new run at once.
#[derive(Debug)]
pub struct LiveStream {
    shared: RwLock<std::sync::Arc<Shared>>,
    run: RwLock<RunState>,
}

/// How a stream's supervision stands, besides what its health says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum RunState {
    /// Its pipeline runs (or is opening its input).
    #[default]
    Running,
    /// Its pipeline failed (an error or a panic); it starts again after a back-off.
    Restarting {
        error: String,
        /// Failures in a row.
        attempt: u32,
        /// When the next run starts.
        at: Instant,
    },
    /// Its pipeline failed in a way a restart does not mend (its input cannot be opened); a
    /// reload (SIGHUP) tries again.
    Failed { error: String },
    /// It ended (its input ended, or it was stopped): `EXT-X-ENDLIST` is written.
    Ended,
}

impl LiveStream {
    /// A stream whose first run shares `shared`.
    pub fn new(shared: std::sync::Arc<Shared>) -> Self {
        LiveStream {
            shared: RwLock::new(shared),
            run: RwLock::default(),
        }
    }

    /// The run serving the stream now.
    pub fn shared(&self) -> std::sync::Arc<Shared> {
        self.shared.read().expect("stream lock poisoned").clone()
    }

    /// A new run serves the stream from now on.
    pub fn replace_shared(&self, shared: std::sync::Arc<Shared>) {
        *self.shared.write().expect("stream lock poisoned") = shared;
    }

    pub fn run_state(&self) -> RunState {
        self.run.read().expect("stream lock poisoned").clone()
    }

    pub fn set_run_state(&self, state: RunState) {
        *self.run.write().expect("stream lock poisoned") = state;
    }
}
