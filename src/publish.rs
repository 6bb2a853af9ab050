//! Publishing: a closed segment becomes part of the live stream in one fixed order, over any
//! [`Storage`] (the media directory in the product, an in-memory store in tests):
//!
//! 1. the segment's bytes are written whole (R5: a segment is complete before it is listed);
//! 2. the playlist is rendered with it (and with the markers that start inside it, as
//!    `EXT-X-DATERANGE`, R34-R36) and written;
//! 3. only then are the files whose R25 grace ended deleted.
//!
//! A failed segment write leaves the segment out and marks the next one with
//! `EXT-X-DISCONTINUITY` (R6/R7); nothing here ever stops the encoder. A restart continues the
//! previous run's playlist ([`crate::playlist::resume`]) and the stream's clock: the epoch (the
//! wall-clock instant of the stream's first frame ever) is kept in `NAME.clock.json`, and a new
//! run starts on the frame slot of its own start time ([`resume::first_slot`]).
//!
//! It counts what it does in the stream's series (segments and parts listed, files deleted,
//! failed writes, the lag from a segment's or part's last frame to the playlist that lists it,
//! the playlist's last change) and logs one debug line per segment; failed writes and slow
//! segments are warned of at most once per [`TROUBLE_LOG_INTERVAL`] each.

use std::sync::Arc;
use std::time::Instant;

use tracing::{debug, info, warn};

use serde::{Deserialize, Serialize};

use crate::clock::{StreamClock, WallClock};
use crate::error::{Error, ErrorKind, Result};
use crate::markers::Marker;
use crate::plan::Plan;
use crate::playlist::multivariant::{BitrateWindow, Variant};
use crate::playlist::resume::{self, Previous};
use crate::playlist::{
    DateRange, LowLatency, Part, Playlist, PlaylistConfig, PlaylistError, Render,
};
use crate::segmenter::{ClosedPart, ClosedSegment};
use crate::state::Shared;
use crate::store::Storage;
use crate::telemetry::{warn_limited, LogLimit, StreamMetrics};
use crate::time::{Duration90k, StreamTime};

/// At most one warning per this interval for failed writes, and one for slow segments.
pub(crate) const TROUBLE_LOG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// The playlist configuration a run's settings give.
pub(crate) fn playlist_config(cfg: &Plan) -> PlaylistConfig {
    PlaylistConfig {
        name: cfg.name().clone(),
        target_duration_secs: cfg.target_duration_secs(),
        list_size: cfg.list_size(),
        start_sequence: cfg.start_number(),
        start_discontinuity_sequence: 0,
    }
}

/// Longest wait for the marker writer before a segment is published.
const GENERATOR_MARKER_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// `NAME.clock.json`: the stream's epoch and frame rate. `epoch` is for people reading the
/// file; the program reads `epoch_unix_ms`. A file from before `frame_rate` was kept has none.
#[derive(Debug, Serialize, Deserialize)]
struct ClockFile {
    epoch: String,
    epoch_unix_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    frame_rate: Option<ClockRate>,
}

/// The stream's exact frame rate, `num/den` frames per second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct ClockRate {
    num: u32,
    den: u32,
}

impl ClockFile {
    fn new(epoch: WallClock, rate: crate::time::FrameRate) -> Self {
        ClockFile {
            epoch: epoch.to_rfc3339(),
            epoch_unix_ms: epoch.unix_millis(),
            frame_rate: Some(ClockRate {
                num: rate.num,
                den: rate.den,
            }),
        }
    }

    fn to_text(&self) -> String {
        serde_json::to_string(self).expect("the clock file serialises")
    }
}

/// The epoch and (if the file has one) the frame rate of a clock file.
fn read_clock_file(bytes: &[u8]) -> Option<(WallClock, Option<ClockRate>)> {
    let f: ClockFile = serde_json::from_slice(bytes).ok()?;
    Some((
        WallClock::try_from_unix_millis(f.epoch_unix_ms)?,
        f.frame_rate,
    ))
}

#[cfg(test)]
fn read_epoch(bytes: &[u8]) -> Option<WallClock> {
    read_clock_file(bytes).map(|(e, _)| e)
}

/// Called with the text of every playlist version once it is in place (tests that check every
/// intermediate playlist against the files on disk).
pub type PlaylistHook = Box<dyn FnMut(&str) + Send>;

/// The multivariant playlist's inputs: the segments' bit rates, and the codec and picture size
/// of the newest SPS.
struct VariantState {
    bitrates: BitrateWindow,
    /// The SPS NAL unit `picture` was read from.
    sps: Vec<u8>,
    /// `CODECS` and `RESOLUTION`.
    picture: Option<(String, u32, u32)>,
}

/// Publishes closed segments: segment file, then playlist, then deletions (R5, R20, R25).
pub(crate) struct Publisher<S: Storage> {
    store: S,
    name: crate::name::StreamName,
    playlist: Playlist,
    shared: Arc<Shared>,
    clock: StreamClock,
    /// The slot of this run's first frame.
    first_slot: u64,
    /// The next segment follows a gap (restart or lost write): EXT-X-DISCONTINUITY (R6).
    discontinuity: bool,
    /// Markers taken from the store so far (by id).
    markers_seen: u64,
    /// Markers taken but not yet in the playlist: their frame is in a segment not yet published.
    markers_pending: Vec<Marker>,
    /// Files whose grace ended (R25), waiting for the stored playlist to be one without them:
    /// while the playlist cannot be written (a full disk), the copy on disk still lists them.
    expired: Vec<String>,
    /// Files from a previous run, deleted once this much stream time has passed (R25).
    leftovers: Vec<String>,
    leftovers_due: Duration90k,
    published: Duration90k,
    segments: u64,
    last_sequence: Option<u64>,
    text: String,
    /// The delta update's text (low latency).
    delta: String,
    /// The open segment's parts were refused (a part too long, a lost segment): the rest of
    /// its parts are left out too, and the segment is listed whole.
    parts_broken: bool,
    /// fMP4 init segments this run published.
    inits: u64,
    /// What `NAME.index.m3u8` says.
    variant: VariantState,
    observer: Option<PlaylistHook>,
    metrics: Arc<StreamMetrics>,
    /// Warnings of failed writes (segments, init segments, playlists).
    write_errors_log: LogLimit,
    /// Warnings of segments listed late ([`Publisher::publish`]).
    slow_log: LogLimit,
    /// Recording (MPEG-TS streams with a recording index): segments leaving the window are
    /// released to retention instead of deleted; `None`: deleted after their R25 grace.
    recorder: Option<crate::recording::Recorder>,
}

impl<S: Storage> Publisher<S> {
    /// Starts publishing into `store`, continuing the playlist a previous run left there.
    /// `observer`, if any, sees the text of every playlist version once it is in place.
    #[cfg(test)]
    pub(crate) fn new(
        cfg: &Plan,
        store: S,
        shared: Arc<Shared>,
        observer: Option<PlaylistHook>,
    ) -> Result<Self> {
        Self::starting_at(cfg, store, shared, observer, None)
    }

    /// [`Publisher::new`] for a run whose first frame was captured at `first_frame` (wall
    /// clock), before now (a camera's first GOP, held to measure it): a new stream's epoch, and
    /// the earliest instant this run starts at, are that instant instead of now, so the first
    /// frame's program date time is when it was captured. An instant after now (a camera clock
    /// ahead of ours) counts as now.
    pub(crate) fn starting_at(
        cfg: &Plan,
        mut store: S,
        shared: Arc<Shared>,
        observer: Option<PlaylistHook>,
        first_frame: Option<WallClock>,
    ) -> Result<Self> {
        let previous = match store
            .read_playlist()
            .map_err(|e| Error::io("reading the previous playlist", e))?
        {
            None => None,
            Some(text) => match resume::read_previous(&text, cfg.name()) {
                Previous::Run(run) => Some(run),
                Previous::Exhausted => {
                    warn!("previous media sequence number is exhausted; not continuing it");
                    None
                }
                Previous::Unreadable(why) => {
                    warn!(error = %why, "previous playlist unreadable; numbering continues from the segment files");
                    let newest = store
                        .list_segments()
                        .map_err(|e| Error::io("listing old segments", e))?
                        .last()
                        .map(|(s, _)| *s);
                    resume::after_segment_files(newest)
                }
            },
        };
        let files = if previous.is_some() {
            store
                .list_segments()
                .map_err(|e| Error::io("listing old segments", e))?
        } else {
            Vec::new()
        };
        let now = WallClock::now();
        let now = first_frame.map_or(now, |f| f.min(now));
        let stored_epoch = match store
            .read_clock()
            .map_err(|e| Error::io("reading the stream clock", e))?
        {
            None => None,
            Some(bytes) => Some(read_clock_file(&bytes).ok_or_else(|| {
                Error::new(
                    ErrorKind::FailedPrecondition,
                    format!(
                        "{} is not a stream clock file (expected {{\"epoch_unix_ms\": ...}}); \
                         restore it, or start a new stream with --fresh",
                        cfg.name().clock_file()
                    ),
                )
            })?),
        };
        let rate_now = ClockRate {
            num: cfg.rate().num,
            den: cfg.rate().den,
        };
        match stored_epoch {
            Some((_, Some(rate))) if rate != rate_now => {
                // Stream time is kept in ticks, but frame slots, timecodes and every stored
                // marker's frame follow from the rate: a new rate would put them on frames that
                // do not exist. Refused rather than silently re-slotted.
                return Err(Error::new(
                    ErrorKind::InvalidArgument,
                    format!(
                        "{} says this stream runs at {}/{} frames per second, this run at {}/{}:                          its timecodes and markers would not match their frames; start it with                          the stream's --fps, or start a new stream with --fresh",
                        cfg.name().clock_file(),
                        rate.num,
                        rate.den,
                        rate_now.num,
                        rate_now.den
                    ),
                ));
            }
            None if store
                .has_marker_log()
                .map_err(|e| Error::io("looking for the marker log", e))? =>
            {
                // The markers' times count from an epoch that is gone: a new one would move
                // every one of them to another instant.
                return Err(Error::new(
                    ErrorKind::InvalidArgument,
                    format!(
                        "{} is missing but {} exists: its markers count from the stream's                          first frame, which that file kept; restore {}, or start a new stream                          (deleting both) with --fresh",
                        cfg.name().clock_file(),
                        cfg.name().markers_file(),
                        cfg.name().clock_file()
                    ),
                ));
            }
            _ => {}
        }
        let r = resume::resume(playlist_config(cfg), previous, &files, now, cfg.segment())?;
        let epoch = match stored_epoch {
            Some((e, Some(_))) => e,
            Some((e, None)) => {
                // A clock file from before the rate was kept: it gets this run's.
                store
                    .write_clock(&ClockFile::new(e, cfg.rate()).to_text())
                    .map_err(|e| Error::io("writing the stream clock", e))?;
                e
            }
            None => {
                store
                    .write_clock(&ClockFile::new(now, cfg.rate()).to_text())
                    .map_err(|e| Error::io("writing the stream clock", e))?;
                now
            }
        };
        let first_slot = resume::first_slot(epoch, r.start, cfg.rate());
        if stored_epoch.is_some() {
            info!(
                epoch = %epoch.to_rfc3339(),
                first_slot,
                stream_secs = cfg.rate().time_of(first_slot).as_secs_f64(),
                "the stream clock goes on from the stream's first run"
            );
        }
        Ok(Publisher {
            store,
            name: cfg.name().clone(),
            playlist: r.playlist,
            clock: StreamClock {
                epoch,
                rate: cfg.rate(),
            },
            first_slot,
            discontinuity: r.discontinuity,
            markers_seen: 0,
            markers_pending: Vec::new(),
            expired: Vec::new(),
            leftovers: r.leftovers,
            leftovers_due: r.leftovers_due,
            published: Duration90k::ZERO,
            segments: 0,
            last_sequence: None,
            text: String::new(),
            delta: String::new(),
            parts_broken: false,
            inits: 0,
            variant: VariantState {
                bitrates: BitrateWindow::new(cfg.list_size()),
                sps: Vec::new(),
                picture: None,
            },
            observer,
            metrics: shared.metrics().clone(),
            write_errors_log: LogLimit::new(TROUBLE_LOG_INTERVAL),
            slow_log: LogLimit::new(TROUBLE_LOG_INTERVAL),
            shared,
            recorder: None,
        })
    }

    /// Records every segment from now on (before the first): the index gets a row per
    /// segment, and a segment whose R25 grace ends is handed to retention instead of deleted.
    pub(crate) fn set_recorder(&mut self, recorder: crate::recording::Recorder) {
        self.recorder = Some(recorder);
    }

    /// Reads the codec string and picture size of the multivariant playlist from a keyframe's
    /// SPS (Annex B `au`): parsed only when the SPS differs from the last one, so a steady
    /// stream costs a comparison of a few bytes per keyframe and no allocation.
    pub(crate) fn note_keyframe(&mut self, au: &[u8]) {
        use crate::fmp4::avc::{nal_type, nal_units, parse_sps};
        let Some(sps) = nal_units(au).find(|n| nal_type(n) == 7) else {
            return;
        };
        if sps == self.variant.sps.as_slice() {
            return;
        }
        self.variant.sps.clear();
        self.variant.sps.extend_from_slice(sps);
        self.variant.picture = match parse_sps(sps) {
            Ok(info) => Some((info.codec_string(), info.width, info.height)),
            Err(e) => {
                warn!(error = %e, "the stream's SPS does not parse: no multivariant playlist");
                None
            }
        };
    }

    /// Writes `NAME.index.m3u8` with the bit rates measured so far, once a keyframe gave the
    /// codec and the picture size. A failed write is logged; the copy in memory is served.
    fn write_multivariant(&mut self) {
        let Some((codecs, width, height)) = &self.variant.picture else {
            return;
        };
        let cfg = self.playlist.config();
        let variant = Variant {
            uri: self.name.playlist_file(),
            peak_bps: self.variant.bitrates.peak_bps(cfg.target_duration_secs),
            average_bps: self.variant.bitrates.average_bps(),
            codecs: codecs.clone(),
            width: *width,
            height: *height,
            frame_rate: self.clock.rate,
        };
        let text = variant.render(crate::playlist::PROTOCOL_VERSION);
        self.shared.update_status(|s| s.variant = Some(variant));
        if let Err(e) = self.store.write_multivariant(&text) {
            self.metrics.write_errors.increment(1);
            warn_limited!(self.write_errors_log, error = %e, "multivariant playlist not written");
        }
        self.shared.media.put_multivariant(&text);
    }

    /// The stream's clock: its epoch (stream time zero, the first frame ever) and frame rate.
    pub(crate) fn clock(&self) -> StreamClock {
        self.clock
    }

    /// The frame slot this run starts on.
    pub(crate) fn first_slot(&self) -> u64 {
        self.first_slot
    }

    /// The slot after the previous run's last frame, as far as the continued playlist tells
    /// (its last segment's end); `None` when no old segment is listed.
    pub(crate) fn previous_end_slot(&self) -> Option<u64> {
        let last = self.playlist.segments().last()?;
        let end = last.program_date_time + last.duration;
        let at = self
            .clock
            .time_of_unix_nanos(i128::from(end.unix_millis()) * 1_000_000)?;
        Some(self.clock.slot_at_or_after(at))
    }

    /// Segments published so far.
    pub(crate) fn segments(&self) -> u64 {
        self.segments
    }

    /// Media sequence number of the newest published segment.
    pub(crate) fn last_sequence(&self) -> Option<u64> {
        self.last_sequence
    }

    /// Turns low-latency HLS on (before the first segment): every segment is also published
    /// part by part ([`Publisher::publish_part`]). `keep_segments`: how many segments (and their
    /// parts) the server holds in memory.
    pub(crate) fn enable_low_latency(
        &mut self,
        ll: LowLatency,
        keep_segments: usize,
    ) -> Result<()> {
        self.playlist
            .enable_low_latency(ll)
            .map_err(|e| Error::new(ErrorKind::InvalidArgument, e.to_string()))?;
        self.shared.media.keep_segments(keep_segments);
        self.shared.media.set_low_latency(true);
        Ok(())
    }

    /// fMP4: publishes a new init segment (the run's first, or new parameter sets): its file,
    /// then the server's copy; the segments from the next one on name it with `EXT-X-MAP`
    /// (R49). It is named after the next segment's media sequence number, so every run and
    /// every change of parameters has its own file, deleted with the last segment that needs
    /// it (R50). New parameters within a run also start a discontinuity (R6).
    pub(crate) fn publish_init(&mut self, bytes: bytes::Bytes) {
        let init = self.playlist.next_sequence();
        let file = match self.store.write_init(init, &bytes) {
            Ok(file) => file,
            Err(e) => {
                // Served from memory still; a restart would not find it (its segments then
                // follow a discontinuity anyway).
                self.metrics.write_errors.increment(1);
                warn_limited!(self.write_errors_log, init, error = %e, "init segment not written to disk");
                None
            }
        };
        let published = file
            .as_ref()
            .and_then(|f| f.metadata().ok()?.modified().ok())
            .unwrap_or_else(std::time::SystemTime::now);
        self.shared.media.put_init(init, bytes, published, file);
        if self.inits > 0 {
            self.discontinuity = true;
        }
        self.inits += 1;
        self.playlist.start_map(init);
        info!(
            file = %self.name.file(crate::name::MediaFile::Init(init)),
            "init segment"
        );
    }

    /// Publishes one finished part of the open segment: its bytes to the server, then the
    /// playlist that lists it, then the news to blocked requests. Parts live in memory only; the
    /// segment they make up is written whole when it closes.
    pub(crate) fn publish_part(&mut self, part: ClosedPart) {
        let seq = self.playlist.next_sequence();
        if part.index == 0 {
            self.parts_broken = false;
        }
        if self.parts_broken {
            return;
        }
        let published = std::time::SystemTime::now();
        self.shared
            .media
            .put_part(seq, part.index, part.bytes, published);
        self.metrics.parts_written.increment(1);
        let pdt = self.clock.epoch.at(part.segment_start);
        let entry = Part {
            duration: part.duration,
            independent: part.independent,
        };
        if let Err(e) =
            self.playlist
                .push_part(entry, pdt, self.discontinuity, part.last_in_segment)
        {
            warn!(sequence = seq, part = part.index, error = %e, "part refused; the segment will be listed whole");
            self.playlist.abandon_parts();
            self.parts_broken = true;
        }
        self.publish_in_memory();
        // Capture to publication of the part's last frame.
        let lag_ms = self.lag_ms(part.start + part.duration);
        self.shared.record_part_lag(lag_ms);
        self.metrics
            .part_publish_seconds
            .record(lag_ms.max(0) as f64 / 1000.0);
    }

    /// Milliseconds from the capture of the last frame before `end` (stream time) to now:
    /// negative when the stream runs ahead of real time (`--no-pacing`).
    fn lag_ms(&self, end: StreamTime) -> i64 {
        let last_frame = end - self.clock.rate.frame_duration();
        WallClock::now().unix_millis() - self.clock.epoch.at(last_frame).unix_millis()
    }

    /// Renders the full playlist and the delta update for the server, then moves the live edge.
    fn publish_in_memory(&mut self) {
        self.playlist.render_with(&mut self.text, Render::Full);
        let skipped = self.playlist.skipped_segments();
        if skipped > 0 {
            self.playlist.render_with(&mut self.delta, Render::Delta);
        }
        self.shared
            .media
            .put_playlists(&self.text, (skipped > 0).then_some(self.delta.as_str()));
        self.shared.media.set_edge(self.playlist.live_edge());
        self.metrics.playlist_changed();
    }

    /// Publishes one segment; returns its buffer for reuse. Write errors are logged and never
    /// stop the encoder: the lost segment is left out and the next one carries a discontinuity.
    pub(crate) fn publish(&mut self, seg: ClosedSegment, frames_encoded: u64) -> Vec<u8> {
        let seq = self.playlist.next_sequence();
        let file = match self.store.write_segment(seq, &seg.bytes) {
            Ok(file) => file,
            Err(e) => {
                self.metrics.write_errors.increment(1);
                warn_limited!(
                    self.write_errors_log,
                    sequence = seq,
                    error = %e,
                    "segment not written; it is left out of the playlist"
                );
                self.discontinuity = true;
                self.playlist.abandon_parts();
                return seg.bytes;
            }
        };
        let pdt = self.clock.epoch.at(seg.start);
        let outcome = match self.playlist.push(seg.duration, pdt, self.discontinuity) {
            Ok(o) => o,
            Err(e) => {
                warn!(sequence = seq, error = %e, "segment refused by the playlist");
                self.discontinuity = true;
                self.playlist.abandon_parts();
                return seg.bytes;
            }
        };
        let discontinuity = std::mem::take(&mut self.discontinuity);
        if !self
            .shared
            .wait_for_generator_markers(GENERATOR_MARKER_WAIT)
        {
            warn!(
                sequence = seq,
                "the marker log is slow: a marker may join the playlist a segment late"
            );
        }
        self.add_markers(seg.start + seg.duration);
        let len = seg.bytes.len();
        // The server answers from memory from now on (the bytes move; no copy), with the file's
        // modification time as the publication time, so that the answer's validators stay the
        // same once it comes from the file.
        let published = file
            .as_ref()
            .and_then(|f| f.metadata().ok()?.modified().ok())
            .unwrap_or_else(std::time::SystemTime::now);
        let bytes = bytes::Bytes::from(seg.bytes);
        self.shared.media.put_segment(seq, bytes, published, file);
        let stored = self.write_playlist();
        let lag_ms = self.lag_ms(seg.start + seg.duration);
        self.metrics.segments_written.increment(1);
        self.metrics
            .segment_publish_seconds
            .record(lag_ms.max(0) as f64 / 1000.0);
        if lag_ms as f64 > seg.duration.as_secs_f64() * 500.0 {
            // Players hold back three segments (or parts): this one came half its length late.
            warn_limited!(
                self.slow_log,
                sequence = seq,
                lag_ms,
                duration = seg.duration.as_secs_f64(),
                "slow segment: listed {lag_ms} ms after its last frame"
            );
        }
        if let Some(r) = &mut self.recorder {
            r.segment_published(seq, pdt, seg.start, seg.duration, len as u64, discontinuity);
        }
        self.variant.bitrates.push(len as u64, seg.duration);
        self.write_multivariant();
        // Deletions only behind a stored playlist that no longer lists them (R25): when it
        // could not be written, the one on disk is older and may still list them; they wait.
        self.expired.extend(outcome.delete_now.iter().cloned());
        let expired = if stored {
            std::mem::take(&mut self.expired)
        } else {
            Vec::new()
        };
        let mut released = Vec::new();
        for f in &expired {
            let segment = match self.name.parse_file(f) {
                Some(crate::name::MediaFile::Segment(s)) => {
                    self.shared.media.remove_segment(s);
                    if self.recorder.is_some() {
                        // Retention decides from now on; the file stays on disk.
                        released.push(s);
                        continue;
                    }
                    true
                }
                Some(crate::name::MediaFile::Init(i)) => {
                    self.shared.media.remove_init(i);
                    false
                }
                _ => false,
            };
            match self.store.delete_segment(f) {
                Ok(()) if segment => self.metrics.segments_deleted.increment(1),
                Ok(()) => {}
                Err(e) => warn!(file = %f, error = %e, "could not delete an expired segment"),
            }
        }
        if let Some(r) = &mut self.recorder {
            r.release(released);
        }
        self.published = self.published + seg.duration;
        if self.published >= self.leftovers_due && !self.leftovers.is_empty() {
            let n = self.leftovers.len();
            let mut released = Vec::new();
            for f in std::mem::take(&mut self.leftovers) {
                if let (Some(_), Some(crate::name::MediaFile::Segment(s))) =
                    (&self.recorder, self.name.parse_file(&f))
                {
                    released.push(s);
                    continue;
                }
                match self.store.delete_segment(&f) {
                    Ok(()) => {
                        if let Some(crate::name::MediaFile::Segment(_)) = self.name.parse_file(&f) {
                            self.metrics.segments_deleted.increment(1);
                        }
                    }
                    Err(e) => {
                        warn!(file = %f, error = %e, "could not delete a previous run's segment")
                    }
                }
            }
            if let Some(r) = &mut self.recorder {
                r.release(released);
            }
            info!(
                files = n,
                "the previous run's unlisted segments passed their grace period"
            );
        }
        self.segments += 1;
        self.last_sequence = Some(outcome.sequence);
        debug!(
            sequence = outcome.sequence,
            duration = seg.duration.as_secs_f64(),
            frames = seg.frames,
            bytes = len,
            deleted = expired.len(),
            lag_ms,
            "segment"
        );
        self.shared.update_status(|s| {
            s.newest_segment_at = Some(Instant::now());
            s.newest_sequence = Some(outcome.sequence);
            s.segments_written += 1;
            s.frames_encoded = frames_encoded;
        });
        // The segment's bytes now belong to the server: the next one gets a new buffer of about
        // the same size (one allocation per segment, none per frame).
        Vec::with_capacity(len + len / 4)
    }

    /// Puts every marker whose frame is now published (before `end`) into the playlist as an
    /// `EXT-X-DATERANGE` (R34-R36). Markers arrive in id order, not time order (a detector
    /// posts a frame it saw a while ago), so later ones wait in `markers_pending`.
    fn add_markers(&mut self, end: crate::time::StreamTime) {
        let new = self.shared.markers.after_id(self.markers_seen);
        if let Some(last) = new.last() {
            self.markers_seen = last.id;
        }
        self.markers_pending.extend(new);
        let epoch = self.clock.epoch;
        let playlist = &mut self.playlist;
        let recorder = &mut self.recorder;
        self.markers_pending.retain(|m| {
            if m.at >= end {
                return true;
            }
            if let Some(r) = recorder.as_mut() {
                r.marker(epoch.at(m.at));
            }
            let range = DateRange {
                // Unique for the life of the stream (R36): ids are never reused, the epoch
                // changes only with --fresh.
                id: format!("marker-{}-{}", epoch.unix_millis(), m.id),
                start: epoch.at(m.at),
                duration: m.length,
                label: m.text.clone(),
            };
            match playlist.add_date_range(range) {
                Ok(()) => {}
                // Read back from the previous run's playlist already.
                Err(PlaylistError::DuplicateDateRangeId { .. }) => {}
                // Older than the window (a marker of an earlier run, or posted late).
                Err(PlaylistError::DateRangeExpired { .. }) => {
                    debug!(
                        marker = m.id,
                        "marker older than the window: not in the playlist"
                    )
                }
                Err(e) => warn!(marker = m.id, error = %e, "marker not added to the playlist"),
            }
            false
        });
    }

    /// Writes the durable copy (the classic form: what a restart reads back), then serves the
    /// new version from memory. False when the copy on disk could not be replaced.
    fn write_playlist(&mut self) -> bool {
        self.playlist.render_with(&mut self.text, Render::Classic);
        match self.store.write_playlist(&self.text) {
            Ok(()) => {
                if let Some(observer) = &mut self.observer {
                    observer(&self.text);
                }
                if self.playlist.low_latency().is_some() {
                    self.publish_in_memory();
                } else {
                    self.shared.media.put_playlist(&self.text);
                    self.shared.media.set_edge(self.playlist.live_edge());
                    self.metrics.playlist_changed();
                }
                true
            }
            Err(e) => {
                self.metrics.write_errors.increment(1);
                warn_limited!(self.write_errors_log, error = %e, "playlist not updated");
                false
            }
        }
    }

    /// The input stalled: the next segment follows a gap in stream time and carries
    /// `EXT-X-DISCONTINUITY` (R6), with its own program date time.
    pub(crate) fn discontinue(&mut self) {
        self.discontinuity = true;
        self.playlist.abandon_parts();
    }

    /// Writes the playlist with `EXT-X-ENDLIST` (R29): the stream is over.
    pub(crate) fn end(&mut self, frames_encoded: u64) {
        self.playlist.end();
        self.write_playlist();
        self.shared.update_status(|s| {
            s.ended = true;
            s.frames_encoded = frames_encoded;
        });
    }
}

#[cfg(test)]
mod tests;
