//! The media path as threads joined by bounded channels; the only module that spawns threads.
//!
//! ```text
//!  source thread              encoder thread                       segmenter thread (caller)
//!  Pacer -> Checkerboard  ->  markers, overlay, RGB->I420, H.264 -> TS mux, cut, write, playlist
//!     ^        | frames (bounded)      | access units (bounded)           |
//!     +--------+ free RGB buffers <----+      free AU buffers <-----------+
//! ```
//! Buffers travel in a loop (a pool): nothing is allocated per frame once the pools are full.
//! When the encoder falls behind, the source finds no free buffer and drops the frame slot
//! (counted) instead of queueing latency; a dropped slot leaves a gap in time, never a wrong
//! timestamp. Frames that open a segment are never dropped (the source waits for a buffer),
//! so every segment starts on its boundary and lasts exactly the segment duration.

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

/// RGB frames in flight between source and encoder.
const RGB_POOL: usize = 3;
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
    rgb: RgbFrame,
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

    let (free_tx, free_rx) = bounded::<RgbFrame>(RGB_POOL);
    let (frame_tx, frame_rx) = bounded::<RawFrame>(RGB_POOL);
    let (free_au_tx, free_au_rx) = bounded::<Vec<u8>>(AU_POOL);
    let (au_tx, au_rx) = bounded::<EncodedFrame>(AU_POOL);
    for _ in 0..RGB_POOL {
        free_tx
            .send(RgbFrame::new(cfg.width, cfg.height))
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
            overlay,
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
    /// frame into a pooled buffer, hands it on. Returns (frames sent, frames dropped).
    fn run(mut self, free: Receiver<RgbFrame>, out: Sender<RawFrame>) -> (u64, u64) {
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
            let mut rgb = buf;
            let info = self.source.render(n, &mut rgb);
            if out.send(RawFrame { slot: n, rgb, info }).is_err() {
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
    overlay: TimecodeOverlay,
    segment: Ticks90k,
    event_duration: Ticks90k,
    anchor: WallClock,
    shared: Arc<Shared>,
}

impl EncoderJob {
    fn run(
        self,
        frames: Receiver<RawFrame>,
        free: Sender<RgbFrame>,
        out: Sender<EncodedFrame>,
        free_au: Receiver<Vec<u8>>,
    ) -> Result<u64> {
        let rate = self.settings.rate;
        let mut encoder = H264Encoder::new(self.settings.clone())?;
        let mut yuv = YuvFrame::new(self.settings.width, self.settings.height);
        let mut clock = SegmentClock::new(self.segment);
        let mut last_event = None;
        let mut encoded = 0u64;
        for RawFrame {
            slot,
            mut rgb,
            info,
        } in frames.iter()
        {
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
            self.overlay
                .draw(&mut rgb, Timecode::from_frame(slot, rate));
            rgb_to_i420(&rgb, &mut yuv);
            // The source may have stopped; then the buffer is simply freed.
            let _ = free.try_send(rgb);
            let opens_segment = clock.opens_segment(at);
            let Ok(mut data) = free_au.recv() else { break };
            data.clear();
            let e = encoder.encode(&yuv, at, opens_segment, &mut data)?;
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
        let mut pl_cfg = PlaylistConfig {
            name: cfg.name.clone(),
            target_duration_secs: cfg.target_duration_secs,
            list_size: cfg.list_size,
            start_sequence: cfg.start_number,
            start_discontinuity_sequence: 0,
        };
        let mut anchor = WallClock::now();
        let mut discontinuity = false;
        let mut old_segments = Vec::new();
        let mut legacy = Vec::new();
        if let Some(prev) = previous_run(&dir)? {
            info!(
                media_sequence = prev.media_sequence,
                segments = prev.segments.len(),
                "continuing the previous playlist after a discontinuity (use --fresh to start over)"
            );
            pl_cfg.start_sequence = prev.media_sequence;
            pl_cfg.start_discontinuity_sequence = prev.discontinuity_sequence;
            if let Some(end) = prev.end {
                // PDTs must not overlap the previous run's (R33).
                anchor = anchor.max(end);
            }
            discontinuity = true;
            old_segments = prev.segments;
            // Segments on disk that the old playlist no longer lists were in their grace period.
            legacy = dir
                .list_segments()
                .map_err(|e| Error::io("listing old segments", e))?
                .into_iter()
                .filter(|(seq, _)| *seq < prev.media_sequence)
                .map(|(_, f)| f)
                .collect();
        }
        let mut playlist = Playlist::new(pl_cfg)?;
        for s in &old_segments {
            if playlist
                .push(s.duration, s.program_date_time, s.discontinuity)
                .is_err()
            {
                // The old run used other settings (e.g. a longer segment): drop its window.
                warn!("the previous playlist does not fit the new settings; starting a new window");
                let next = playlist.next_sequence();
                playlist = Playlist::new(PlaylistConfig {
                    start_sequence: next,
                    ..playlist_config(cfg)
                })?;
                legacy.extend(old_segments.iter().filter_map(|s| s.file.clone()));
                break;
            }
        }
        let legacy_due = Ticks90k(cfg.segment.as_u64() * (cfg.list_size as u64 + 1));
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
    discontinuity_sequence: u64,
    segments: Vec<OldSegment>,
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
            return Ok(last.map(|l| PreviousRun {
                media_sequence: l + 1,
                discontinuity_sequence: 0,
                segments: Vec::new(),
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
        let start = WallClock::from_unix_millis(pdt.timestamp_millis());
        let duration = Ticks90k((f64::from(s.duration) * 90_000.0).round() as u64);
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
        pl.media_sequence + pl.segments.len() as u64
    } else {
        pl.media_sequence
    };
    Ok(Some(PreviousRun {
        media_sequence,
        discontinuity_sequence: pl.discontinuity_sequence,
        segments,
        end,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::RgbFrame;

    /// A clock whose deadlines have always passed: the source runs flat out, as when the
    /// machine is overloaded.
    struct AlwaysLate(Instant);

    impl Clock for AlwaysLate {
        fn now(&self) -> Instant {
            self.0
        }
        fn sleep_until(&self, _deadline: Instant) {}
    }

    /// Paints nothing; tells the slot through the first byte.
    struct Numbered;

    impl Source for Numbered {
        fn render(&mut self, n: u64, frame: &mut RgbFrame) -> FrameInfo {
            frame.data[0] = n as u8;
            FrameInfo::default()
        }
    }

    /// A slow consumer makes the paced source drop frames; every frame keeps its own slot,
    /// boundary slots are never dropped, and the counts add up.
    #[test]
    fn source_drops_when_behind_but_keeps_slots_and_boundaries() {
        let rate = FrameRate::new(30, 1).unwrap();
        let segment = Ticks90k::from_secs(1);
        let shared = Arc::new(Shared::default());
        let job = SourceJob {
            source: Box::new(Numbered),
            clock: Box::new(AlwaysLate(Instant::now())),
            rate,
            segment,
            frame_limit: Some(300),
            pacing: true,
            stop: Arc::new(AtomicBool::new(false)),
            shared: shared.clone(),
        };
        let (free_tx, free_rx) = bounded(2);
        let (tx, rx) = bounded(2);
        for _ in 0..2 {
            free_tx.send(RgbFrame::new(16, 16)).unwrap();
        }
        let source = thread::spawn(move || job.run(free_rx, tx));
        let mut slots = Vec::new();
        for f in rx.iter() {
            assert_eq!(
                f.rgb.data[0], f.slot as u8,
                "the frame painted for its slot"
            );
            slots.push(f.slot);
            std::thread::sleep(std::time::Duration::from_millis(2));
            let _ = free_tx.send(f.rgb);
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
        let shared = Arc::new(Shared::default());
        let job = SourceJob {
            source: Box::new(Numbered),
            clock: Box::new(RealClock),
            rate: FrameRate::new(30, 1).unwrap(),
            segment: Ticks90k::from_secs(1),
            frame_limit: Some(50),
            pacing: false,
            stop: Arc::new(AtomicBool::new(false)),
            shared,
        };
        let (free_tx, free_rx) = bounded(1);
        let (tx, rx) = bounded(1);
        free_tx.send(RgbFrame::new(16, 16)).unwrap();
        let source = thread::spawn(move || job.run(free_rx, tx));
        let mut slots = Vec::new();
        for f in rx.iter() {
            slots.push(f.slot);
            std::thread::sleep(std::time::Duration::from_millis(1));
            let _ = free_tx.send(f.rgb);
        }
        assert_eq!(source.join().unwrap(), (50, 0));
        assert_eq!(slots, (0..50).collect::<Vec<u64>>());
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
