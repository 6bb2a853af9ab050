//! A camera as the input (`--input rtsp://...`): the RTSP client on its own thread, the wait for
//! the camera's first GOP (it decides TARGETDURATION, or with `--transcode` the picture size and
//! rate), then the camera's frames into segments on the calling thread (passthrough), or decoded
//! on a thread of their own into the encoder and segmenter threads of [`super`] (`--transcode`).
//! The camera's own code (the client, placing its access units in time, the decoder) is
//! [`crate::rtsp`]'s; this file is its threads and channels.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError};
use tracing::{info, warn};

use super::{encode_and_segment, join, open_output_at, source_loop, spawn, FramePool, Summary};
use crate::config::{InputFormat, Plan, StreamSettings};
use crate::error::{Error, ErrorKind, Result};
use crate::overlay::{TimecodeOverlay, DEFAULT_FONT};
use crate::publish::{PlaylistHook, Publisher};
use crate::recording::Recordings;
use crate::rtsp::passthrough::Passthrough;
use crate::rtsp::transcode::TranscodeSource;
use crate::rtsp::{self, Camera, CameraFrame, Event};
use crate::segmenter::{FrameAu, Segmenter};
use crate::slots::SourceEnd;
use crate::state::{InputParams, Shared, StreamParams};
use crate::store::MediaDir;
use crate::time::{Duration90k, FrameRate, StreamTime, TICKS_PER_MS, TICKS_PER_SEC};

/// Camera events in flight from the RTSP thread to the segmenter (about 8 s at 30 fps).
const EVENT_QUEUE: usize = 256;

/// Longest wait, in camera time, for the first GOP (two IDRs) after a session starts playing.
const GOP_PROBE_LIMIT: Duration90k = Duration90k::from_secs(30);

/// A camera whose first GOP has been measured ([`prepare_rtsp`]), for [`run_rtsp_prepared`].
pub(super) struct RtspOpened {
    camera: String,
    events: Receiver<Event>,
    client: thread::JoinHandle<Result<()>>,
    client_stop: Arc<AtomicBool>,
    /// From the first IDR to the second, both included: replayed into the first segment.
    first_gop: Vec<CameraFrame>,
    gop: Duration90k,
    frames_received: u64,
    /// The picture size and frame rate the camera's SPS gives (0x0 when it gave none).
    width: u32,
    height: u32,
    fps: Option<f64>,
}

impl RtspOpened {
    /// The wall clock of the first frame placed (the first IDR: its arrival, or the camera's
    /// sender report time): captured before the stream starts, it sets where the stream's
    /// clock starts (a new stream's epoch), so its program date time is when it was captured.
    fn first_frame_wall(&self) -> Option<crate::clock::WallClock> {
        self.first_gop
            .first()
            .and_then(|f| crate::clock::WallClock::try_from_unix_millis(f.wall_unix_ms))
    }

    /// Stops the client thread and returns how it ended.
    fn close(self) -> Result<()> {
        self.client_stop.store(true, Ordering::SeqCst);
        drop(self.events);
        join(self.client, "rtsp")
    }
}

/// Connects to the camera on its own thread and waits for its first GOP (two IDRs): the GOP
/// decides TARGETDURATION, fixed for the playlist's life (R14), so nothing is published before
/// it is known. Returns the configuration with that target. While the camera cannot be reached
/// the client keeps retrying (with back-off) and `shared` says why it is down; `stop` gives up.
/// Errors that retrying cannot fix (wrong credentials, a codec other than H.264, no IDR) end it.
fn prepare_rtsp(
    cfg: &StreamSettings,
    out_dir: &Path,
    camera: Camera,
    shared: &Shared,
    stop: &AtomicBool,
) -> Result<(Plan, RtspOpened)> {
    let label = camera.to_string();
    let (tx, events) = bounded::<Event>(EVENT_QUEUE);
    let client_stop = Arc::new(AtomicBool::new(false));
    let client = {
        let stop = client_stop.clone();
        spawn("rtsp", move || rtsp::run_client(camera, tx, stop))?
    };
    let mut opened = RtspOpened {
        camera: label,
        events,
        client,
        client_stop,
        first_gop: Vec::new(),
        gop: Duration90k::ZERO,
        frames_received: 0,
        width: 0,
        height: 0,
        fps: None,
    };
    // RTP time of the first frame of the session, and of its first IDR.
    let mut session_start: Option<i64> = None;
    let mut first_idr: Option<i64> = None;
    let mut format = String::new();
    loop {
        if stop.load(Ordering::Relaxed) {
            opened.close()?;
            return Err(Error::new(
                ErrorKind::Unavailable,
                "stopped before the camera sent its first GOP",
            ));
        }
        match opened.events.recv_timeout(rtsp_poll()) {
            Ok(Event::Frame(f)) => {
                opened.frames_received += 1;
                let start = *session_start.get_or_insert(f.rtp);
                match first_idr {
                    None if !f.keyframe => {
                        if Duration90k((f.rtp - start).max(0) as u64) > GOP_PROBE_LIMIT {
                            let camera = opened.camera.clone();
                            opened.close()?;
                            return Err(no_idr_error(&camera));
                        }
                    }
                    None => {
                        first_idr = Some(f.rtp);
                        opened.first_gop.push(f);
                    }
                    Some(first) => {
                        let since = Duration90k((f.rtp - first).max(0) as u64);
                        // An IDR at the first one's timestamp is the rest of it (a split
                        // access unit, see passthrough), not the next GOP.
                        let keyframe = f.keyframe && since > Duration90k::ZERO;
                        opened.first_gop.push(f);
                        if keyframe {
                            opened.gop = since;
                            break;
                        }
                        if since > GOP_PROBE_LIMIT {
                            let camera = opened.camera.clone();
                            opened.close()?;
                            return Err(no_idr_error(&camera));
                        }
                    }
                }
            }
            Ok(Event::Down { reason }) => {
                // A new session starts from scratch.
                opened.first_gop.clear();
                session_start = None;
                first_idr = None;
                shared.update_status(|s| {
                    s.input_stalled = true;
                    s.input_down = Some(reason);
                });
            }
            Ok(Event::Connected { width, height, fps }) => {
                (opened.width, opened.height, opened.fps) = (width, height, fps);
                format = match fps {
                    Some(fps) => format!("{width}x{height} at {fps:.3} fps"),
                    None => format!("{width}x{height}"),
                };
                shared.update_status(|s| {
                    s.input_stalled = false;
                    s.input_down = None;
                });
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                let camera = opened.camera.clone();
                opened.close()?;
                return Err(Error::new(
                    ErrorKind::Internal,
                    format!("camera {camera}: the RTSP client ended before the first GOP"),
                ));
            }
        }
    }
    // A sender report that came during the first GOP dates the frames before it too (the
    // first IDR usually comes before the camera's first report): they are placed by it.
    let newest = opened
        .first_gop
        .iter()
        .rev()
        .find_map(|f| f.sender_wall.map(|w| (w, f.rtp)));
    if let Some((wall, rtp)) = newest {
        for f in &mut opened.first_gop {
            let w = wall - (rtp - f.rtp);
            f.sender_wall = Some(w);
            f.wall_unix_ms = w.div_euclid(TICKS_PER_MS as i64);
        }
    }
    // The first step of the camera's clock (a split access unit repeats a timestamp).
    let frame = opened
        .first_gop
        .windows(2)
        .find(|w| w[1].rtp > w[0].rtp)
        .map(|w| Duration90k((w[1].rtp - w[0].rtp) as u64));
    let camera = &opened.camera;
    let in_camera = |e: Error| Error::new(e.kind(), format!("camera {camera}: {}", e.message()));
    let plan = if cfg.transcode() {
        transcode_plan(cfg, out_dir, &opened, frame)?
    } else {
        // The stream's clock runs at the camera's rate (the SPS's, else measured over the first
        // GOP) unless --fps says otherwise: markers' frames and timecodes, `GET /stream` and
        // `--duration` count the camera's frames.
        let frame = frame.unwrap_or_else(|| cfg.flags_rate().frame_duration());
        let rate = camera_rate(
            opened
                .fps
                .unwrap_or(TICKS_PER_SEC as f64 / frame.as_u64().max(1) as f64),
        );
        let gop = opened.gop;
        let plan = cfg
            .plan(out_dir, InputFormat::CameraGop { rate, gop })
            .map_err(in_camera)?;
        if plan.longest_segment() > plan.segment() {
            let fit = (plan.segment().as_u64() / frame.as_u64().max(1)).max(1);
            warn!(
                camera = %opened.camera,
                "the camera's GOP ({:.3} s) does not fit --hls-time {:.3} s: segments will last up to \
                 {:.3} s (TARGETDURATION {}). Set the camera's I-frame interval (GOP length) to \
                 {fit} frames or a divisor of it, or use --transcode",
                opened.gop.as_secs_f64(),
                plan.segment().as_secs_f64(),
                plan.longest_segment().as_secs_f64(),
                plan.target_duration_secs(),
            );
        }
        plan
    };
    info!(
        camera = %opened.camera,
        format,
        gop_secs = opened.gop.as_secs_f64(),
        gop_frames = opened.first_gop.len() - 1,
        target_duration = plan.target_duration_secs(),
        "{}",
        if cfg.transcode() {
            "first GOP measured: the camera's pictures are decoded and re-encoded (--transcode)"
        } else {
            "first GOP measured: segments cut at the camera's IDRs"
        }
    );
    Ok((plan, opened))
}

/// The plan for `--transcode`: the camera's picture size, its frame rate (the SPS's, else
/// measured over the first GOP) unless `--fps` says otherwise; TARGETDURATION stays ours.
fn transcode_plan(
    cfg: &StreamSettings,
    out_dir: &Path,
    opened: &RtspOpened,
    frame: Option<Duration90k>,
) -> Result<Plan> {
    let camera = &opened.camera;
    let (w, h) = (opened.width as usize, opened.height as usize);
    if w == 0 || h == 0 {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("camera {camera}: its H.264 parameters give no picture size"),
        ));
    }
    if w % 2 != 0 || h % 2 != 0 || w < 16 || h < 16 || w.max(h) > 3840 || w.min(h) > 2160 {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "camera {camera}: --transcode needs an even picture size from 16x16 up to \
                 3840x2160; the camera's is {w}x{h}"
            ),
        ));
    }
    // Without two frames to measure, the rate --fps (or its default) gives.
    let frame = frame.unwrap_or_else(|| cfg.flags_rate().frame_duration());
    let measured = 1.0 / Duration90k(frame.as_u64().max(1)).as_secs_f64();
    let rate = camera_rate(opened.fps.unwrap_or(measured));
    cfg.plan(
        out_dir,
        InputFormat::Picture {
            width: w,
            height: h,
            rate,
        },
    )
    .map_err(|e| Error::new(e.kind(), format!("camera {camera}: {}", e.message())))
}

/// A camera's frame rate as an exact fraction: an integer rate or an NTSC one (`n*1000/1001`)
/// when within 0.1 % of it, else to the millihertz; `None` when out of any sensible range.
fn camera_rate(fps: f64) -> Option<FrameRate> {
    if !(1.0..=240.0).contains(&fps) {
        return None;
    }
    let n = fps.round();
    if (fps - n).abs() <= n * 0.001 {
        return FrameRate::new(n as u32, 1).ok();
    }
    let ntsc = (fps * 1.001).round();
    if (fps - ntsc * 1000.0 / 1001.0).abs() <= fps * 0.001 {
        return FrameRate::new(ntsc as u32 * 1000, 1001).ok();
    }
    FrameRate::new((fps * 1000.0).round() as u32, 1000).ok()
}

fn no_idr_error(camera: &str) -> Error {
    Error::new(
        ErrorKind::InvalidArgument,
        format!(
            "camera {camera}: no IDR within {} s; set the camera's I-frame interval (GOP \
             length) to a few seconds",
            GOP_PROBE_LIMIT.as_secs_ceil()
        ),
    )
}

fn rtsp_poll() -> std::time::Duration {
    std::time::Duration::from_millis(100)
}

/// [`prepare_rtsp`] then [`run_rtsp_prepared`] with the plan the camera settled.
pub(super) fn run_camera(
    cfg: &StreamSettings,
    out_dir: &Path,
    camera: Camera,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    observer: Option<PlaylistHook>,
    recording: Option<Recordings>,
) -> Result<Summary> {
    let mut camera = camera;
    camera.set_batching(!cfg.transcode());
    let (plan, opened) = prepare_rtsp(cfg, out_dir, camera, &shared, &stop)?;
    // The server was started before the camera was known: `GET /stream`, the cache headers
    // and the health deadline follow the rate and the target chosen now.
    shared.update_status(|s| s.params = InputParams::Known(stream_params(&plan, plan.rate())));
    run_rtsp_prepared(&plan, opened, shared, stop, observer, recording)
}

/// What the server tells about a stream of configuration `cfg` whose frames come at `rate`.
fn stream_params(cfg: &Plan, rate: FrameRate) -> StreamParams {
    StreamParams {
        frame_rate: rate,
        target_duration_secs: cfg.target_duration_secs(),
        segment_lifetime_secs: cfg.segment_lifetime().as_secs_ceil(),
    }
}

/// Runs a camera that [`prepare_rtsp`] opened, with the configuration it gave, until `stop`,
/// the frame limit, or an error the stream cannot go on from: its H.264 passed through
/// ([`CameraRun::passthrough`]), or with `--transcode` decoded and encoded again
/// ([`CameraRun::transcode`]). Both open the output the same way, dated from the camera's
/// first frame, and place the camera's frames in stream time with the same [`Passthrough`].
fn run_rtsp_prepared(
    cfg: &Plan,
    opened: RtspOpened,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    observer: Option<PlaylistHook>,
    recording: Option<Recordings>,
) -> Result<Summary> {
    // The timecode's font is loaded before anything in the output is touched.
    let overlay = if cfg.transcode() {
        Some(
            TimecodeOverlay::new(DEFAULT_FONT, cfg.width(), cfg.height())
                .map_err(|e| Error::new(ErrorKind::Internal, format!("timecode font: {e}")))?,
        )
    } else {
        None
    };
    let (publisher, marker_thread) =
        open_output_at(cfg, &shared, observer, opened.first_frame_wall(), recording)?;
    let pass = Passthrough::new(
        cfg.segment(),
        cfg.target_duration_secs(),
        opened.gop,
        publisher.clock().epoch.unix_millis(),
        cfg.rate().time_of(publisher.first_slot()),
    );
    let run = CameraRun {
        cfg,
        opened,
        publisher,
        marker_thread,
        pass,
        shared: &shared,
        stop: &stop,
    };
    match overlay {
        Some(overlay) => run.transcode(overlay),
        None => run.passthrough(),
    }
}

/// A camera's run once its output is open ([`run_rtsp_prepared`]): what passthrough and
/// `--transcode` both start from.
struct CameraRun<'c> {
    cfg: &'c Plan,
    opened: RtspOpened,
    publisher: Publisher<MediaDir>,
    marker_thread: thread::JoinHandle<Result<()>>,
    /// Places the camera's frames in stream time, from the run's first slot on.
    pass: Passthrough,
    shared: &'c Arc<Shared>,
    stop: &'c Arc<AtomicBool>,
}

impl CameraRun<'_> {
    /// `--transcode`: the camera's pictures decoded on their own thread ([`TranscodeSource`]),
    /// stamped with our slots and timecode, and encoded and cut by the same threads as the
    /// other inputs: fixed GOP, segments of exactly `--hls-time`.
    fn transcode(mut self, overlay: TimecodeOverlay) -> Result<Summary> {
        let (cfg, shared, stop) = (self.cfg, self.shared, self.stop);
        let first_slot = self.publisher.first_slot();
        let RtspOpened {
            camera,
            events,
            client,
            client_stop,
            first_gop,
            ..
        } = self.opened;
        let pool = FramePool::new(cfg);
        let source_loop = source_loop(cfg, overlay, first_slot, stop, shared);
        let pass = self.pass;
        let (rate, width, height) = (cfg.rate(), cfg.width(), cfg.height());
        shared.update_status(|s| {
            s.input_stalled = false;
            s.input_down = None;
        });
        let decoder_thread = {
            let (free_rx, frame_tx) = (pool.free_rx.clone(), pool.frame_tx.clone());
            let shared = shared.clone();
            spawn("decoder", move || {
                let source = TranscodeSource::new(
                    camera, events, first_gop, pass, rate, width, height, shared,
                );
                Ok(match source {
                    Ok(source) => source_loop.run(source, free_rx, frame_tx),
                    Err(e) => SourceEnd {
                        sent: 0,
                        dropped: 0,
                        input_error: Some(e),
                    },
                })
            })?
        };
        let summary = encode_and_segment(
            cfg,
            &mut self.publisher,
            shared,
            stop,
            self.marker_thread,
            decoder_thread,
            pool,
        );
        // The decoder has stopped (and dropped the events): stop the client; its own error (if
        // it ended first) is the stream's.
        client_stop.store(true, Ordering::SeqCst);
        let client_result = join(client, "rtsp");
        let summary = summary?;
        client_result?;
        Ok(summary)
    }

    /// Passes the camera's H.264 through to segments until `stop`, the frame limit, or an
    /// error the stream cannot go on from (B-frames). A camera that drops or stalls ends the
    /// segment in progress; its next session continues after `EXT-X-DISCONTINUITY`.
    fn passthrough(mut self) -> Result<Summary> {
        let (cfg, shared, stop) = (self.cfg, self.shared, self.stop);
        let mut sink = RtspSink {
            pass: self.pass,
            segmenter: Segmenter::new(cfg.pts_offset()),
            pts_offset: cfg.pts_offset(),
            target_secs: cfg.target_duration_secs(),
            segment: cfg.segment(),
            camera: self.opened.camera.clone(),
            publisher: &mut self.publisher,
            shared,
            frames: 0,
            limit: cfg.frame_limit(),
            params: stream_params(cfg, cfg.rate()),
            rate_fixed: cfg.fps_given(),
            rate_probe: None,
        };
        let RtspOpened {
            events,
            client,
            client_stop,
            first_gop,
            mut frames_received,
            ..
        } = self.opened;
        let mut result = Ok(());
        for f in first_gop {
            if let Err(e) = sink.frame(f) {
                result = Err(e);
                break;
            }
        }
        shared.update_status(|s| {
            s.input_stalled = false;
            s.input_down = None;
        });
        while result.is_ok()
            && !stop.load(Ordering::Relaxed)
            && sink.limit.is_none_or(|l| sink.frames < l)
        {
            match events.recv_timeout(rtsp_poll()) {
                Ok(Event::Frame(f)) => {
                    frames_received += 1;
                    result = sink.frame(f);
                }
                Ok(Event::Down { reason }) => sink.down(reason),
                Ok(Event::Connected { fps, .. }) => sink.connected(fps),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        // Stop the client; its own error (if it ended first) is the stream's.
        client_stop.store(true, Ordering::SeqCst);
        drop(events);
        let client_result = join(client, "rtsp");
        shared.set_marker_inbox(None);
        let markers_done = join(self.marker_thread, "markers");
        let frames = sink.frames;
        sink.finish();
        self.publisher.end(frames);
        markers_done?;
        result?;
        client_result?;
        let summary = Summary {
            frames_generated: frames_received,
            frames_dropped: 0,
            frames_encoded: frames,
            segments: self.publisher.segments(),
            markers: shared.markers.len() as u64,
            last_sequence: self.publisher.last_sequence(),
            input_error: None,
        };
        info!(?summary, "camera stream finished");
        Ok(summary)
    }
}

/// The camera's frames into segments (runs on the segmenter thread).
struct RtspSink<'p> {
    pass: Passthrough,
    segmenter: Segmenter,
    pts_offset: crate::time::Pts,
    target_secs: u64,
    segment: Duration90k,
    camera: String,
    publisher: &'p mut Publisher<MediaDir>,
    shared: &'p Shared,
    /// Frames placed in segments.
    frames: u64,
    /// `--frames`: the stream ends after this many.
    limit: Option<u64>,
    /// What the server says about the stream (its frame rate follows the camera's sessions).
    params: StreamParams,
    /// `--fps` was given: the stream's rate is that, whatever the camera sends.
    rate_fixed: bool,
    /// A new session's rate is being found: the SPS's (if it gives one) and the stream time of
    /// the run's first frame, once placed.
    rate_probe: Option<(Option<FrameRate>, Option<StreamTime>)>,
}

impl RtspSink<'_> {
    fn frame(&mut self, f: CameraFrame) -> Result<()> {
        if self.limit.is_some_and(|l| self.frames >= l) {
            return Ok(());
        }
        let placed = self.pass.push(&f).map_err(|e| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!("camera {}: {e}", self.camera),
            )
        })?;
        let Some(p) = placed else { return Ok(()) };
        self.probe_rate(&p);
        if p.starts_run {
            // A new session: a new muxer after the discontinuity (counters start again).
            self.segmenter = Segmenter::new(self.pts_offset);
            self.shared.update_status(|s| {
                s.input_stalled = false;
                s.input_down = None;
            });
        }
        let au = FrameAu {
            data: &f.data,
            at: p.at,
            keyframe: p.keyframe,
            opens_segment: p.opens_segment,
        };
        if au.keyframe {
            self.publisher.note_keyframe(au.data);
        }
        if let Some(closed) = self.segmenter.push(&au).map_err(Error::from)? {
            self.publish(closed);
        }
        self.shared.set_newest_frame(p.at);
        // Passed through, not encoded: counted as the frames the stream publishes, as
        // `/healthz` counts them.
        self.shared.metrics().frames_encoded.increment(1);
        self.frames += 1;
        Ok(())
    }

    fn publish(&mut self, closed: crate::segmenter::ClosedSegment) {
        // R13: the playlist cannot list a segment whose EXTINF rounds above the target.
        if closed.duration.as_millis_rounded() >= self.target_secs * 1000 + 500 {
            warn!(
                camera = %self.camera,
                "a {:.3} s segment is longer than TARGETDURATION {} s: the camera's GOP grew to \
                 {:.3} s. It is left out (the stream goes on after a discontinuity); set the \
                 camera's I-frame interval (GOP length) to at most {:.3} s, or use --transcode",
                closed.duration.as_secs_f64(),
                self.target_secs,
                self.pass.longest_gop().as_secs_f64(),
                self.segment.as_secs_f64(),
            );
        }
        let bytes = self.publisher.publish(closed, self.frames);
        self.segmenter.recycle(bytes);
    }

    /// A new session plays (a reconnection): its frame rate is found from its first frames.
    fn connected(&mut self, fps: Option<f64>) {
        if !self.rate_fixed {
            self.rate_probe = Some((fps.and_then(camera_rate), None));
        }
    }

    /// The frame rate of a new session: the SPS's, else its first two frames' distance. When it
    /// is not the one published, `GET /stream` says the new one from now on. The stream's clock
    /// keeps its rate (markers' frames and timecodes count from it: they are told apart in
    /// the log).
    fn probe_rate(&mut self, p: &crate::rtsp::passthrough::Placed) {
        let Some((sps, first)) = &mut self.rate_probe else {
            return;
        };
        let rate = match (*sps, *first) {
            (Some(r), _) => Some(r),
            (None, Some(first)) if !p.starts_run => {
                camera_rate(TICKS_PER_SEC as f64 / (p.at - first).as_u64().max(1) as f64)
            }
            // The run's first frame (or a run that ended before its second): measure from it.
            (None, _) => {
                *first = Some(p.at);
                return;
            }
        };
        self.rate_probe = None;
        let Some(rate) = rate else { return };
        if rate != self.params.frame_rate {
            info!(
                camera = %self.camera,
                fps = rate.as_f64(),
                was = self.params.frame_rate.as_f64(),
                "the camera came back at another frame rate: GET /stream says it from now on \
                 (markers keep the stream clock's frames; restart with --fresh to count the new)"
            );
            self.params.frame_rate = rate;
            let params = self.params;
            self.shared
                .update_status(|s| s.params = InputParams::Known(params));
        }
    }

    /// The camera dropped: what it sent is published now; the next session follows a
    /// discontinuity.
    fn down(&mut self, reason: String) {
        if let Some(end) = self.pass.end_run() {
            if let Some(closed) = self.segmenter.finish(end) {
                self.publish(closed);
            }
            self.publisher.discontinue();
        }
        self.shared.update_status(|s| {
            s.input_stalled = true;
            s.input_down = Some(reason);
        });
    }

    fn finish(mut self) {
        if let Some(end) = self.pass.end() {
            if let Some(closed) = self.segmenter.finish(end) {
                self.publish(closed);
            }
        }
    }
}
