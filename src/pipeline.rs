//! The media path as threads joined by bounded channels; the only module that spawns threads.
//!
//! ```text
//!  source thread                          encoder thread      segmenter thread (caller)
//!  Pacer -> Checkerboard, overlay, RGB->I420 -> markers, H.264 -> TS mux, cut, write, playlist
//!     ^        | I420 frames (bounded)        | access units (bounded)     |
//!     +--------+ free I420 buffers <----------+    free AU buffers <-------+
//! ```
//! The encoder thread only encodes: everything else about a picture is done on the source
//! thread, so on two cores the two run side by side. Buffers travel in a loop (a pool): nothing
//! is allocated per frame once the pools are full.
//! When the encoder falls behind, the source finds no free buffer and drops the frame slot
//! (counted) instead of queueing latency; a dropped slot leaves a gap in time, never a wrong
//! timestamp. Frames that open a segment are never dropped (the source waits for a buffer),
//! so every segment starts on its boundary and spans the frames up to the next one (exactly the
//! segment duration at an integer frame rate, within one frame of it otherwise).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use crossbeam_channel::{bounded, Receiver, Sender, TryRecvError};
use tracing::{debug, info, warn};

use crate::clock::{Clock, RealClock, WallClock};
use crate::config::Config;
use crate::encode::{EncoderSettings, H264Encoder};
use crate::error::{Error, Result};
use crate::frame::{RgbFrame, YuvFrame};
use crate::overlay::{Timecode, TimecodeOverlay, DEFAULT_FONT};
use crate::playlist::{DateRange, Playlist, PlaylistConfig};
use crate::segmenter::{ClosedSegment, FrameAu, SegmentClock, Segmenter};
use crate::source::{Checkerboard, CheckerboardConfig, FrameInfo, Source};
use crate::state::Shared;
use crate::store::MediaDir;
use crate::time::{FrameRate, Ticks90k};
use crate::yuv::rgb_to_i420;

/// I420 frames in flight between source and encoder.
const FRAME_POOL: usize = 3;
/// Encoded access units in flight between encoder and segmenter.
const AU_POOL: usize = 16;

/// What a finished run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub frames_generated: u64,
    pub frames_dropped: u64,
    pub frames_encoded: u64,
    pub segments: u64,
    pub markers: u64,
    /// Media sequence number of the last segment written.
    pub last_sequence: Option<u64>,
}

/// A painted frame on its way to the encoder.
struct RawFrame {
    slot: u64,
    yuv: YuvFrame,
    info: FrameInfo,
}

/// An encoded frame on its way to the segmenter.
struct EncodedFrame {
    slot: u64,
    data: Vec<u8>,
    keyframe: bool,
    opens_segment: bool,
}

/// Runs the whole media path until the frame limit is reached or `stop` is set, then writes
/// the final segment and `EXT-X-ENDLIST`. Blocks; the segmenter runs on the calling thread.
pub fn run(cfg: &Config, shared: Arc<Shared>, stop: Arc<AtomicBool>) -> Result<Summary> {
    run_observed(cfg, shared, stop, &mut |_| {})
}

/// [`run`], calling `observer` with the playlist text each time a new version has been renamed
/// into place (for long-run tests that check every intermediate playlist and the files on disk).
pub fn run_observed(
    cfg: &Config,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    observer: &mut dyn FnMut(&str),
) -> Result<Summary> {
    let dir =
        MediaDir::open(&cfg.out_dir, &cfg.name).map_err(|e| Error::io("media directory", e))?;
    if cfg.fresh {
        let n = dir
            .clean()
            .map_err(|e| Error::io(format!("cleaning {}", dir.path().display()), e))?;
        info!(files = n, dir = %dir.path().display(), "--fresh: removed the previous stream");
    }
    let overlay = TimecodeOverlay::new(DEFAULT_FONT, cfg.width, cfg.height)
        .map_err(|e| Error::Config(format!("timecode font: {e}")))?;
    let source = Checkerboard::new(CheckerboardConfig {
        width: cfg.width,
        height: cfg.height,
        rate: cfg.rate,
        block_size: cfg.block_size,
        roll: cfg.roll,
        noise_sigma: cfg.noise_sigma,
        event_mean: cfg.event_mean,
        event_duration: cfg.event_duration,
        seed: cfg.seed,
    })
    .map_err(Error::Config)?;
    let mut publisher = Publisher::new(cfg, dir, shared.clone(), observer)?;

    let (free_tx, free_rx) = bounded::<YuvFrame>(FRAME_POOL);
    let (frame_tx, frame_rx) = bounded::<RawFrame>(FRAME_POOL);
    let (free_au_tx, free_au_rx) = bounded::<Vec<u8>>(AU_POOL);
    let (au_tx, au_rx) = bounded::<EncodedFrame>(AU_POOL);
    for _ in 0..FRAME_POOL {
        free_tx
            .send(YuvFrame::new(cfg.width, cfg.height))
            .expect("pool channel has room");
    }
    for _ in 0..AU_POOL {
        free_au_tx
            .send(Vec::with_capacity(64 * 1024))
            .expect("pool channel has room");
    }

    let anchor = publisher.anchor;
    let source_thread = {
        let job = SourceJob {
            source: Box::new(source),
            overlay: Some(overlay),
            rgb: RgbFrame::new(cfg.width, cfg.height),
            clock: Box::new(RealClock),
            rate: cfg.rate,
            segment: cfg.segment,
            frame_limit: cfg.frame_limit,
            pacing: cfg.pacing,
            stop: stop.clone(),
            shared: shared.clone(),
        };
        spawn("source", move || Ok(job.run(free_rx, frame_tx)))?
    };
    let encoder_thread = {
        let job = EncoderJob {
            settings: EncoderSettings {
                width: cfg.width,
                height: cfg.height,
                rate: cfg.rate,
                bitrate_bps: cfg.bitrate_bps,
                gop_frames: cfg.gop_frames(),
            },
            segment: cfg.segment,
            event_duration: cfg.event_duration,
            anchor,
            shared: shared.clone(),
        };
        spawn("encoder", move || {
            job.run(frame_rx, free_tx, au_tx, free_au_rx)
        })?
    };

    // The segmenter runs here.
    let mut segmenter = Segmenter::new(cfg.pts_offset);
    let mut last_slot = None;
    let mut seg_result = Ok(());
    for ef in au_rx.iter() {
        let au = FrameAu {
            data: &ef.data,
            at: cfg.rate.pts_of(ef.slot),
            keyframe: ef.keyframe,
            opens_segment: ef.opens_segment,
        };
        match segmenter.push(&au) {
            Ok(Some(closed)) => {
                let bytes = publisher.publish(closed);
                segmenter.recycle(bytes);
            }
            Ok(None) => {}
            Err(e) => {
                seg_result = Err(Error::from(e));
                break;
            }
        }
        last_slot = Some(ef.slot);
        publisher.frames_encoded += 1;
        // The encoder may be gone already (end of stream): a full or closed pool is fine.
        let _ = free_au_tx.try_send(ef.data);
    }
    // Unblock the encoder if we stopped early, then collect both threads.
    drop(au_rx);
    drop(free_au_tx);
    if seg_result.is_err() {
        stop.store(true, Ordering::SeqCst);
    }
    let encoded = join(encoder_thread, "encoder");
    let generated = join(source_thread, "source");

    if let Some(slot) = last_slot {
        if let Some(closed) = segmenter.finish(cfg.rate.pts_of(slot + 1)) {
            publisher.publish(closed);
        }
    }
    publisher.end();
    seg_result?;
    encoded?;
    let (frames_generated, frames_dropped) = generated?;
    let summary = Summary {
        frames_generated,
        frames_dropped,
        frames_encoded: publisher.frames_encoded,
        segments: publisher.segments,
        markers: shared.markers.len() as u64,
        last_sequence: publisher.last_sequence,
    };
    info!(?summary, "stream finished");
    Ok(summary)
}

fn spawn<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<thread::JoinHandle<Result<T>>> {
    thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .map_err(|e| Error::io(format!("spawning the {name} thread"), e))
}

fn join<T>(h: thread::JoinHandle<Result<T>>, name: &str) -> Result<T> {
    h.join()
        .map_err(|_| Error::Internal(format!("the {name} thread panicked")))?
}

/// True when frame slot `n` is the first slot at or after a segment boundary.
pub fn opens_segment_slot(rate: FrameRate, segment: Ticks90k, n: u64) -> bool {
    n == 0
        || rate.pts_of(n).as_u64() / segment.as_u64()
            != rate.pts_of(n - 1).as_u64() / segment.as_u64()
}

struct SourceJob {
    source: Box<dyn Source>,
    /// The burnt-in timecode; `None` leaves the picture as the source painted it.
    overlay: Option<TimecodeOverlay>,
    /// Scratch RGB picture, converted into a pooled I420 buffer, for sources that paint RGB
    /// only (untouched, so never paged in, otherwise).
    rgb: RgbFrame,
    clock: Box<dyn Clock>,
    rate: FrameRate,
    segment: Ticks90k,
    frame_limit: Option<u64>,
    pacing: bool,
    stop: Arc<AtomicBool>,
    shared: Arc<Shared>,
}

impl SourceJob {
    /// The pacer loop: sleeps to each slot's deadline `t0 + n/fps` (never spins), paints the
    /// frame and burns in the timecode (straight into a pooled I420 buffer when the source can,
    /// else in RGB, then converted), hands it on.
    /// Returns (frames sent, frames dropped).
    fn run(mut self, free: Receiver<YuvFrame>, out: Sender<RawFrame>) -> (u64, u64) {
        let t0 = self.clock.now();
        let (mut sent, mut dropped) = (0u64, 0u64);
        let mut n = 0u64;
        while self.frame_limit.is_none_or(|limit| n < limit) && !self.stop.load(Ordering::Relaxed) {
            if self.pacing {
                self.clock.sleep_until(t0 + self.rate.pts_of(n).as_std());
            }
            let must_deliver = !self.pacing || opens_segment_slot(self.rate, self.segment, n);
            let buf = match free.try_recv() {
                Ok(b) => b,
                Err(TryRecvError::Empty) if must_deliver => match free.recv() {
                    Ok(b) => b,
                    Err(_) => break,
                },
                Err(TryRecvError::Empty) => {
                    dropped += 1;
                    self.shared.update_status(|s| s.frames_dropped = dropped);
                    if dropped.is_power_of_two() {
                        warn!(
                            dropped,
                            slot = n,
                            "encoder is behind real time: dropping frames"
                        );
                    }
                    n += 1;
                    continue;
                }
                Err(TryRecvError::Disconnected) => break,
            };
            let mut yuv = buf;
            let tc = Timecode::from_frame(n, self.rate);
            // Straight into I420 when the source can (no RGB frame to write and read back).
            let info = match self.source.render_i420(n, &mut yuv) {
                Some(info) => {
                    if let Some(overlay) = &self.overlay {
                        overlay.draw_i420(&mut yuv, tc);
                    }
                    info
                }
                None => {
                    let info = self.source.render(n, &mut self.rgb);
                    if let Some(overlay) = &self.overlay {
                        overlay.draw(&mut self.rgb, tc);
                    }
                    rgb_to_i420(&self.rgb, &mut yuv);
                    info
                }
            };
            if out.send(RawFrame { slot: n, yuv, info }).is_err() {
                break;
            }
            sent += 1;
            n += 1;
        }
        debug!(sent, dropped, "source stopped");
        (sent, dropped)
    }
}

struct EncoderJob {
    settings: EncoderSettings,
    segment: Ticks90k,
    event_duration: Ticks90k,
    anchor: WallClock,
    shared: Arc<Shared>,
}

impl EncoderJob {
    fn run(
        self,
        frames: Receiver<RawFrame>,
        free: Sender<YuvFrame>,
        out: Sender<EncodedFrame>,
        free_au: Receiver<Vec<u8>>,
    ) -> Result<u64> {
        let rate = self.settings.rate;
        let mut encoder = H264Encoder::new(self.settings.clone())?;
        let mut clock = SegmentClock::new(self.segment);
        let mut last_event = None;
        let mut encoded = 0u64;
        for RawFrame { slot, yuv, info } in frames.iter() {
            let at = rate.pts_of(slot);
            // The marker goes on the first frame of the event that actually reaches the
            // encoder, so it always points at a frame that exists in the stream.
            if info.event.is_some() && info.event != last_event {
                let m = self
                    .shared
                    .markers
                    .push(at, self.event_duration, self.anchor);
                info!(id = m.id, time = m.time, "marker");
            }
            last_event = info.event;
            let opens_segment = clock.opens_segment(at);
            let Ok(mut data) = free_au.recv() else { break };
            data.clear();
            let e = encoder.encode(&yuv, at, opens_segment, &mut data)?;
            // The source may have stopped; then the buffer is simply freed.
            let _ = free.try_send(yuv);
            if out
                .send(EncodedFrame {
                    slot,
                    data,
                    keyframe: e.keyframe,
                    opens_segment,
                })
                .is_err()
            {
                break;
            }
            encoded += 1;
        }
        Ok(encoded)
    }
}

/// Publishes closed segments: segment file, then playlist, then deletions (HLS R5, R20, R25).
struct Publisher<'o> {
    dir: MediaDir,
    playlist: Playlist,
    shared: Arc<Shared>,
    anchor: WallClock,
    /// The next segment follows a gap (restart or lost write): EXT-X-DISCONTINUITY (R6).
    discontinuity: bool,
    /// Markers already given to the playlist (by id).
    markers_added: u64,
    /// Files from a previous run, deleted once this much stream time has passed (R25).
    legacy: Vec<String>,
    legacy_due: Ticks90k,
    published: Ticks90k,
    frames_encoded: u64,
    segments: u64,
    last_sequence: Option<u64>,
    text: String,
    observer: &'o mut dyn FnMut(&str),
}

impl<'o> Publisher<'o> {
    fn new(
        cfg: &Config,
        dir: MediaDir,
        shared: Arc<Shared>,
        observer: &'o mut dyn FnMut(&str),
    ) -> Result<Self> {
        let mut pl_cfg = playlist_config(cfg);
        let mut anchor = WallClock::now();
        let mut discontinuity = false;
        let mut legacy = Vec::new();
        let mut legacy_due = Ticks90k(cfg.segment.as_u64() * (cfg.list_size as u64 + 1));
        let mut playlist;
        if let Some(prev) = previous_run(&dir)? {
            info!(
                media_sequence = prev.media_sequence,
                segments = prev.segments.len(),
                "continuing the previous playlist after a discontinuity (use --fresh to start over)"
            );
            if cfg.start_number != 0 {
                warn!("--start-number is ignored when continuing a previous playlist");
            }
            pl_cfg.start_sequence = prev.media_sequence;
            pl_cfg.start_discontinuity_sequence = prev.discontinuity_sequence;
            if let Some(end) = prev.end {
                // PDTs must not overlap the previous run's (R33).
                anchor = anchor.max(end);
            }
            discontinuity = true;
            // Segments on disk that the old playlist no longer lists were in their grace
            // period: they go once the old window plus the new one has passed (R25).
            legacy = dir
                .list_segments()
                .map_err(|e| Error::io("listing old segments", e))?
                .into_iter()
                .filter(|(seq, _)| *seq < prev.media_sequence)
                .map(|(_, f)| f)
                .collect();
            let old_window: u64 = prev.segments.iter().map(|s| s.duration.as_u64()).sum();
            legacy_due = legacy_due + Ticks90k(old_window);
            playlist = Playlist::new(pl_cfg.clone())?;
            // TARGETDURATION must not change within a playlist (R14): other settings, other
            // window.
            let mut fits = prev.target_duration == cfg.target_duration_secs;
            for s in prev.segments.iter().take_while(|_| fits) {
                match playlist.push_resumed(s.duration, s.program_date_time, s.discontinuity) {
                    // A smaller --list-size slides old segments out at once: their files wait
                    // with the other leftovers.
                    Ok(outcome) => legacy.extend(
                        outcome
                            .removed
                            .iter()
                            .map(|r| playlist.segment_uri(r.sequence)),
                    ),
                    Err(e) => {
                        warn!(error = %e, "the previous playlist does not fit the new settings (e.g. another --hls-time); starting a new window after it");
                        fits = false;
                        break;
                    }
                }
            }
            if fits {
                for r in prev.date_ranges {
                    // Ranges that ended before the window are refused: nothing to keep.
                    let _ = playlist.add_date_range(r);
                }
            } else {
                // Drop the old window as a whole. Numbers go on after its last segment (never
                // reused: segments are cached as immutable) and every DISCONTINUITY tag that
                // leaves with it counts (R22, R26).
                let removed_discontinuities =
                    prev.segments.iter().filter(|s| s.discontinuity).count() as u64;
                playlist = Playlist::new(PlaylistConfig {
                    start_sequence: prev.media_sequence + prev.segments.len() as u64,
                    start_discontinuity_sequence: prev.discontinuity_sequence
                        + removed_discontinuities,
                    ..pl_cfg
                })?;
                legacy.extend(prev.segments.iter().filter_map(|s| s.file.clone()));
            }
        } else {
            playlist = Playlist::new(pl_cfg)?;
        }
        Ok(Publisher {
            dir,
            playlist,
            shared,
            anchor,
            discontinuity,
            markers_added: 0,
            legacy,
            legacy_due,
            published: Ticks90k::ZERO,
            frames_encoded: 0,
            segments: 0,
            last_sequence: None,
            text: String::new(),
            observer,
        })
    }

    /// Publishes one segment; returns its buffer for reuse. Write errors are logged and never
    /// stop the encoder: the lost segment is left out and the next one carries a discontinuity.
    fn publish(&mut self, seg: ClosedSegment) -> Vec<u8> {
        let seq = self.playlist.next_sequence();
        if let Err(e) = self.dir.write_segment(seq, &seg.bytes) {
            warn!(sequence = seq, error = %e, "segment not written; it is left out of the playlist");
            self.discontinuity = true;
            return seg.bytes;
        }
        let pdt = self.anchor.add_ticks(seg.start);
        let outcome = match self.playlist.push(seg.duration, pdt, self.discontinuity) {
            Ok(o) => o,
            Err(e) => {
                warn!(sequence = seq, error = %e, "segment refused by the playlist");
                self.discontinuity = true;
                return seg.bytes;
            }
        };
        self.discontinuity = false;
        let end = seg.start + seg.duration;
        for m in self.shared.markers.after_id(self.markers_added) {
            if m.stream_ticks < end {
                let range = DateRange {
                    // Unique across restarts too (R36): a resumed playlist's player may still
                    // hold the previous run's "Marker 1".
                    id: format!("marker-{}-{}", self.anchor.unix_millis(), m.id),
                    start: self.anchor.add_ticks(m.stream_ticks),
                    duration: m.duration,
                    label: m.text.clone(),
                };
                if let Err(e) = self.playlist.add_date_range(range) {
                    warn!(marker = m.id, error = %e, "marker not added to the playlist");
                }
                self.markers_added = m.id;
            } else {
                // Later markers start later still: they wait for their segment.
                break;
            }
        }
        self.write_playlist();
        for f in &outcome.delete_now {
            if let Err(e) = self.dir.delete_segment(f) {
                warn!(file = %f, error = %e, "could not delete an expired segment");
            }
        }
        self.published = self.published + seg.duration;
        if self.published >= self.legacy_due && !self.legacy.is_empty() {
            for f in std::mem::take(&mut self.legacy) {
                let _ = self.dir.delete_segment(&f);
            }
        }
        self.segments += 1;
        self.last_sequence = Some(outcome.sequence);
        debug!(
            sequence = outcome.sequence,
            duration = seg.duration.as_secs_f64(),
            frames = seg.frames,
            bytes = seg.bytes.len(),
            deleted = outcome.delete_now.len(),
            "segment"
        );
        let frames = self.frames_encoded;
        self.shared.update_status(|s| {
            s.newest_segment_at = Some(Instant::now());
            s.newest_sequence = Some(outcome.sequence);
            s.segments_written += 1;
            s.frames_encoded = frames;
        });
        seg.bytes
    }

    fn write_playlist(&mut self) {
        self.text.clear();
        self.playlist.render_into(&mut self.text);
        match self.dir.write_playlist(&self.text) {
            Ok(()) => (self.observer)(&self.text),
            Err(e) => warn!(error = %e, "playlist not updated"),
        }
    }

    /// EXT-X-ENDLIST (R29).
    fn end(&mut self) {
        self.playlist.end();
        self.write_playlist();
        let frames = self.frames_encoded;
        self.shared.update_status(|s| {
            s.ended = true;
            s.frames_encoded = frames;
        });
    }
}

fn playlist_config(cfg: &Config) -> PlaylistConfig {
    PlaylistConfig {
        name: cfg.name.clone(),
        target_duration_secs: cfg.target_duration_secs,
        list_size: cfg.list_size,
        start_sequence: cfg.start_number,
        start_discontinuity_sequence: 0,
    }
}

/// What a previous run left in the media directory.
struct PreviousRun {
    media_sequence: u64,
    target_duration: u64,
    discontinuity_sequence: u64,
    segments: Vec<OldSegment>,
    /// Its markers, so they stay on the timeline while their segments are listed (R36).
    date_ranges: Vec<DateRange>,
    /// Program date time just after its last segment.
    end: Option<WallClock>,
}

struct OldSegment {
    duration: Ticks90k,
    program_date_time: WallClock,
    discontinuity: bool,
    file: Option<String>,
}

/// Reads the previous run's playlist (with m3u8-rs) so media sequence numbers continue instead
/// of restarting at 0 (HLS R22: players stall when MSN goes back).
fn previous_run(dir: &MediaDir) -> Result<Option<PreviousRun>> {
    let Some(bytes) = dir
        .read_playlist()
        .map_err(|e| Error::io("reading the previous playlist", e))?
    else {
        return Ok(None);
    };
    let pl = match m3u8_rs::parse_media_playlist_res(&bytes) {
        Ok(pl) => pl,
        Err(e) => {
            warn!(error = %e, "previous playlist unreadable; numbering continues from the segment files");
            let last = dir
                .list_segments()
                .map_err(|e| Error::io("listing old segments", e))?
                .last()
                .map(|(s, _)| *s);
            return Ok(last.and_then(|l| l.checked_add(1)).map(|next| PreviousRun {
                media_sequence: next,
                target_duration: 0,
                discontinuity_sequence: 0,
                segments: Vec::new(),
                date_ranges: Vec::new(),
                end: None,
            }));
        }
    };
    let mut segments = Vec::new();
    let mut end = None;
    for s in &pl.segments {
        let Some(pdt) = s.program_date_time else {
            segments.clear();
            break;
        };
        // A hostile or corrupt file (dates past 9999, absurd EXTINFs) is not ours: no window.
        let secs = f64::from(s.duration);
        let Some(start) = WallClock::try_from_unix_millis(pdt.timestamp_millis())
            .filter(|_| secs.is_finite() && (0.0..=86_400.0).contains(&secs))
            .filter(|w| WallClock::try_from_unix_millis(w.unix_millis() + 86_400_000).is_some())
        else {
            segments.clear();
            break;
        };
        // EXTINF is written with millisecond precision; m3u8-rs hands it over as an f32.
        let duration = Ticks90k((secs * 1000.0).round() as u64 * 90);
        end = Some(start.add_ticks(duration));
        let file = dir.parse_segment_name(&s.uri).map(|_| s.uri.clone());
        segments.push(OldSegment {
            duration,
            program_date_time: start,
            discontinuity: s.discontinuity,
            file,
        });
    }
    let media_sequence = if segments.is_empty() {
        pl.media_sequence.saturating_add(pl.segments.len() as u64)
    } else {
        pl.media_sequence
    };
    // Numbers must still fit after the new window (else start over, as with --fresh).
    if media_sequence.checked_add(1 << 32).is_none() {
        warn!("previous media sequence number is exhausted; not continuing it");
        return Ok(None);
    }
    let date_ranges = String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-DATERANGE:"))
        .filter_map(parse_date_range)
        .collect();
    Ok(Some(PreviousRun {
        media_sequence,
        target_duration: pl.target_duration,
        discontinuity_sequence: pl.discontinuity_sequence,
        segments,
        date_ranges,
        end,
    }))
}

/// Reads back one of our own DATERANGE tags (`ID`, `START-DATE`, `DURATION`, label); `None`
/// for anything else.
fn parse_date_range(attrs: &str) -> Option<DateRange> {
    let (mut id, mut start, mut duration, mut label) = (None, None, None, String::new());
    let mut rest = attrs;
    while !rest.is_empty() {
        let (name, after) = rest.split_once('=')?;
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            let (v, t) = quoted.split_once('"')?;
            (v, t)
        } else {
            after.split_once(',').map_or((after, ""), |(v, t)| (v, t))
        };
        rest = tail.strip_prefix(',').unwrap_or(tail);
        match name {
            "ID" => id = Some(value.to_string()),
            "START-DATE" => start = WallClock::parse_rfc3339(value),
            "DURATION" => {
                let secs: f64 = value.parse().ok()?;
                if !(secs.is_finite() && (0.0..=86_400.0).contains(&secs)) {
                    return None;
                }
                duration = Some(Ticks90k((secs * 1000.0).round() as u64 * 90));
            }
            crate::playlist::DATERANGE_LABEL_ATTRIBUTE => label = value.to_string(),
            _ => {}
        }
    }
    Some(DateRange {
        id: id?,
        start: start?,
        duration: duration?,
        label,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::RgbFrame;
    use crate::yuv::bt601_limited_reference;

    fn job(
        source: Box<dyn Source>,
        clock: Box<dyn Clock>,
        pacing: bool,
        shared: Arc<Shared>,
    ) -> SourceJob {
        SourceJob {
            source,
            overlay: None,
            rgb: RgbFrame::new(16, 16),
            clock,
            rate: FrameRate::new(30, 1).unwrap(),
            segment: Ticks90k::from_secs(1),
            frame_limit: Some(if pacing { 300 } else { 50 }),
            pacing,
            stop: Arc::new(AtomicBool::new(false)),
            shared,
        }
    }

    /// The luma our converter gives the grey level that [`Numbered`] paints for slot `n`.
    fn luma_of_slot(n: u64) -> u8 {
        let v = n as u8;
        bt601_limited_reference(v, v, v).0.round() as u8
    }

    /// A clock whose deadlines have always passed: the source runs flat out, as when the
    /// machine is overloaded.
    struct AlwaysLate(Instant);

    impl Clock for AlwaysLate {
        fn now(&self) -> Instant {
            self.0
        }
        fn sleep_until(&self, _deadline: Instant) {}
    }

    /// Paints the whole frame grey at level `slot mod 256`, so each picture tells its slot.
    struct Numbered;

    impl Source for Numbered {
        fn render(&mut self, n: u64, frame: &mut RgbFrame) -> FrameInfo {
            frame.data.fill(n as u8);
            FrameInfo::default()
        }
    }

    /// A slow consumer makes the paced source drop frames; every frame keeps its own slot,
    /// boundary slots are never dropped, and the counts add up.
    #[test]
    fn source_drops_when_behind_but_keeps_slots_and_boundaries() {
        let shared = Arc::new(Shared::default());
        let clock = Box::new(AlwaysLate(Instant::now()));
        let job = job(Box::new(Numbered), clock, true, shared.clone());
        let (free_tx, free_rx) = bounded(2);
        let (tx, rx) = bounded(2);
        for _ in 0..2 {
            free_tx.send(YuvFrame::new(16, 16)).unwrap();
        }
        let source = thread::spawn(move || job.run(free_rx, tx));
        let mut slots = Vec::new();
        for f in rx.iter() {
            assert_eq!(
                f.yuv.y[0],
                luma_of_slot(f.slot),
                "the frame painted for slot {}",
                f.slot
            );
            slots.push(f.slot);
            std::thread::sleep(std::time::Duration::from_millis(2));
            let _ = free_tx.send(f.yuv);
        }
        let (sent, dropped) = source.join().unwrap();
        assert_eq!(sent as usize, slots.len());
        assert_eq!(sent + dropped, 300);
        assert!(
            dropped > 0,
            "a consumer slower than the source must cause drops"
        );
        assert_eq!(shared.status().frames_dropped, dropped);
        assert!(slots.windows(2).all(|w| w[0] < w[1]), "slots increase");
        for k in 0..10 {
            assert!(
                slots.contains(&(k * 30)),
                "boundary slot {} dropped",
                k * 30
            );
        }
    }

    /// Without pacing nothing is ever dropped: the source waits for the encoder.
    #[test]
    fn unpaced_source_never_drops() {
        let job = job(
            Box::new(Numbered),
            Box::new(RealClock),
            false,
            Arc::default(),
        );
        let (free_tx, free_rx) = bounded(1);
        let (tx, rx) = bounded(1);
        free_tx.send(YuvFrame::new(16, 16)).unwrap();
        let source = thread::spawn(move || job.run(free_rx, tx));
        let mut slots = Vec::new();
        for f in rx.iter() {
            assert_eq!(f.yuv.y[0], luma_of_slot(f.slot));
            slots.push(f.slot);
            std::thread::sleep(std::time::Duration::from_millis(1));
            let _ = free_tx.send(f.yuv);
        }
        assert_eq!(source.join().unwrap(), (50, 0));
        assert_eq!(slots, (0..50).collect::<Vec<u64>>());
    }

    /// R7/R6: a segment that cannot be written is left out, nothing stops, and the next one
    /// carries EXT-X-DISCONTINUITY under the same sequence number (no hole, no bad entry).
    #[test]
    fn r7_lost_segment_write_becomes_a_discontinuity() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().to_str().unwrap();
        let cfg =
            Config::from_args(["x", "--out-dir", out, "--name", "cam", "--hls-time", "1"]).unwrap();
        let dir = MediaDir::open(tmp.path(), "cam").unwrap();
        let mut versions = Vec::new();
        let mut observer = |t: &str| versions.push(t.to_string());
        let mut p = Publisher::new(&cfg, dir, Arc::default(), &mut observer).unwrap();
        let seg = |k: u64| ClosedSegment {
            start: Ticks90k::from_secs(k),
            duration: Ticks90k::from_secs(1),
            frames: 30,
            bytes: vec![0x47; 188],
        };
        p.publish(seg(0));
        // A directory where segment 1 must go makes its rename fail.
        std::fs::create_dir_all(tmp.path().join("cam1.ts/blocker")).unwrap();
        p.publish(seg(1));
        std::fs::remove_dir_all(tmp.path().join("cam1.ts")).unwrap();
        p.publish(seg(2));
        p.publish(seg(3));
        drop(p);
        assert_eq!(
            versions.len(),
            3,
            "no playlist version for the lost segment"
        );
        let last = &versions[2];
        let body: Vec<&str> = last
            .lines()
            .skip_while(|l| !l.starts_with("#EXT-X-PROGRAM-DATE-TIME"))
            .collect();
        assert_eq!(
            body.iter()
                .filter(|l| !l.starts_with("#EXT-X-PROGRAM-DATE-TIME"))
                .copied()
                .collect::<Vec<_>>(),
            [
                "#EXTINF:1.000,",
                "cam0.ts",
                "#EXT-X-DISCONTINUITY",
                "#EXTINF:1.000,",
                "cam1.ts",
                "#EXTINF:1.000,",
                "cam2.ts"
            ],
            "{last}"
        );
        assert!(
            last.contains("#EXT-X-DISCONTINUITY-SEQUENCE:0"),
            "R16: {last}"
        );
        assert!(
            !tmp.path().join(".cam1.ts.tmp").exists(),
            "no temporary file left behind"
        );
    }

    /// A restart reads our own DATERANGE tags back exactly (R36 across restarts).
    #[test]
    fn date_ranges_round_trip_through_the_playlist_text() {
        let mut pl = Playlist::new(PlaylistConfig {
            name: "cam".into(),
            target_duration_secs: 2,
            list_size: 5,
            start_sequence: 0,
            start_discontinuity_sequence: 0,
        })
        .unwrap();
        let t0 = WallClock::from_unix_millis(1_764_072_000_000);
        pl.push(Ticks90k::from_secs(2), t0, false).unwrap();
        let range = DateRange {
            id: "marker-1764072000000-1".into(),
            start: t0.add_ticks(Ticks90k(45_090)),
            duration: Ticks90k::from_secs(2),
            label: "Marker 1".into(),
        };
        pl.add_date_range(range.clone()).unwrap();
        let text = pl.render();
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("#EXT-X-DATERANGE:"))
            .unwrap();
        assert_eq!(parse_date_range(line), Some(range));
        assert_eq!(
            parse_date_range("ID=\"x\",DURATION=2.000"),
            None,
            "no START-DATE"
        );
        assert_eq!(parse_date_range("garbage"), None);
    }

    #[test]
    fn boundary_slots_match_the_segment_clock() {
        for rate in [
            FrameRate::new(30, 1).unwrap(),
            FrameRate::new(30_000, 1001).unwrap(),
            FrameRate::new(24, 1).unwrap(),
        ] {
            let seg = Ticks90k::from_secs(2);
            let mut clock = SegmentClock::new(seg);
            for n in 0..10_000 {
                assert_eq!(
                    opens_segment_slot(rate, seg, n),
                    clock.opens_segment(rate.pts_of(n)),
                    "{rate:?} slot {n}"
                );
            }
        }
    }
}
