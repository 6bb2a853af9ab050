//! The media path as threads joined by bounded channels; the only module that spawns threads.
//!
//! ```text
//!  source thread                          encoder thread      segmenter thread
//!  Pacer -> Checkerboard, overlay, RGB->I420 -> markers, H.264 -> TS mux, cut, publish
//!     ^        | I420 frames (bounded)        | access units (bounded)     |
//!     +--------+ free I420 buffers <----------+    free AU buffers <-------+
//! ```
//! The encoder thread only encodes: everything else about a picture is done on the source
//! thread, so on two cores the two run side by side. The source thread also decides, once per
//! slot, whether the frame opens a segment ([`SegmentClock`]); the decision travels with the
//! frame, and the encoder forces an IDR there and the segmenter cuts there. Publishing (files and
//! playlist, in order) is [`crate::publish`]'s; this module is threads and channels only, and
//! the only place that spawns threads. Buffers travel in a loop (a pool): nothing
//! is allocated per frame once the pools are full.
//! When the encoder falls behind, the source finds no free buffer and drops the frame slot
//! (counted) instead of queueing latency; a dropped slot leaves a gap in time, never a wrong
//! timestamp. Frames that open a segment are never dropped (the source waits for a buffer),
//! so every segment starts on its boundary and spans the frames up to the next one (exactly the
//! segment duration at an integer frame rate, within one frame of it otherwise).
//!
//! A camera (`--input rtsp://...`) runs its own way, in [`rtsp`]: its client thread, the wait for
//! its first GOP, then passthrough or (`--transcode`) a decoder thread in front of the encoder
//! and segmenter threads here. The two files are the one module that spawns threads.
//!
//! One way in, for every input: [`prepare`] opens the input and settles the plan,
//! [`Prepared::start`] runs the stream on its threads, [`Running::join`] waits for its end.

mod rtsp;
pub mod supervisor;

use rtsp::run_camera;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use crossbeam_channel::{bounded, Receiver, Sender};
use tracing::{error, info, warn};

use crate::clock::RealClock;
use crate::config::{Config, InputFormat, Plan, StreamSettings};
use crate::encode::{EncoderSettings, H264Encoder};
use crate::error::{Error, ErrorKind, Result};
use crate::frame::YuvFrame;
use crate::input::source_loop::{Paced, SourceLoop};
use crate::input::{self, Opened};
use crate::markers::log::JsonlFile;
use crate::markers::writer::{self, MarkerWriter, NewMarker, Request};
use crate::markers::GENERATOR_SOURCE;
use crate::overlay::{TimecodeOverlay, DEFAULT_FONT};
use crate::playlist::LowLatency;
use crate::publish::{PlaylistHook, Publisher};
use crate::recording::{Recorder, Recordings};
use crate::segmenter::{Cut, FrameAu, PartPlan, Segmenter};
use crate::slots::{Item, RawFrame, SourceEnd};
use crate::source::Checkerboard;
use crate::state::{InputParams, Shared};
use crate::store::MediaDir;
use crate::telemetry::StreamMetrics;
use crate::time::{Duration90k, SegmentClock};

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
    pub(crate) last_sequence: Option<u64>,
    /// The input failed after the first segment was published: the stream ended there, cleanly
    /// (last segment, `EXT-X-ENDLIST`), and this says why.
    pub input_error: Option<String>,
}

/// An encoded frame on its way to the segmenter.
struct EncodedFrame {
    slot: u64,
    data: Vec<u8>,
    keyframe: bool,
    opens_segment: bool,
}

/// The media path running on its threads (see [`Prepared::start`]).
pub struct Running {
    segmenter: thread::JoinHandle<Result<Summary>>,
}

impl Running {
    /// Waits for the stream to end (frame limit, `stop`, or an error) and returns what it did.
    pub fn join(self) -> Result<Summary> {
        join(self.segmenter, "segmenter")
    }
}

/// A stream whose input is open and whose plan is settled (a camera's, once it plays): see
/// [`prepare`].
pub struct Prepared {
    settings: StreamSettings,
    out_dir: PathBuf,
    input: Ready,
    observer: Option<PlaylistHook>,
    /// The output directory's recording, when it records.
    recording: Option<Recordings>,
}

/// An input ready to run.
enum Ready {
    Checkerboard(Plan),
    /// A Y4M stream whose first frame is read.
    Y4m(Plan, Box<input::y4m_source::Y4mOpened>, YuvFrame),
    /// A camera: its plan is settled once its first GOP is measured, on the pipeline's thread.
    Camera(crate::rtsp::Camera),
}

/// Opens the input before anything else is touched: a Y4M stream's header and first frame are
/// read here (a FIFO waits for its writer), and a bad one is an
/// [`ErrorKind::InvalidArgument`] error (exit code 2) with no file created or deleted. The
/// stream's plan ([`Prepared::plan`]) has the input's frame size and rate.
pub fn prepare(cfg: &Config) -> Result<Prepared> {
    let settings = &cfg.stream;
    let out_dir = &cfg.server.out_dir;
    let input = match input::open(settings.input(), settings.rtsp_transport())? {
        Opened::Checkerboard => Ready::Checkerboard(settings.plan(out_dir, InputFormat::Flags)?),
        Opened::Y4m(mut y) => {
            let (width, height, rate) = y.format();
            let plan = settings.plan(
                out_dir,
                InputFormat::Picture {
                    width,
                    height,
                    rate,
                },
            )?;
            let first = y.read_first(plan.rate())?;
            Ready::Y4m(plan, y, first)
        }
        Opened::Rtsp(camera) => Ready::Camera(camera),
    };
    Ok(Prepared {
        settings: settings.clone(),
        out_dir: out_dir.clone(),
        input,
        observer: None,
        recording: None,
    })
}

impl Prepared {
    /// The plan the stream runs with (a Y4M input's size and rate); `None` for a camera, whose
    /// plan is settled when it plays (`GET /stream` says it then).
    pub fn plan(&self) -> Option<&Plan> {
        match &self.input {
            Ready::Checkerboard(plan) | Ready::Y4m(plan, ..) => Some(plan),
            Ready::Camera(_) => None,
        }
    }

    /// Calls `observer` with the playlist text each time a new version has been renamed into
    /// place (for tests that check every intermediate playlist against the files on disk).
    #[doc(hidden)]
    pub fn observe_playlists(mut self, observer: impl FnMut(&str) + Send + 'static) -> Self {
        self.observer = Some(Box::new(observer));
        self
    }

    /// Records the stream into `recordings`, its output directory's index (opened once per
    /// directory, [`spawn_store`]), with the stream's own retention flags. MPEG-TS streams
    /// only: an fMP4 stream is not recorded (logged) and keeps the live path's deletion.
    pub fn with_recording(mut self, recordings: Recordings) -> Self {
        self.recording = Some(recordings);
        self
    }

    /// Starts the media path on its own threads; see `start_prepared`.
    pub fn start(
        self,
        shared: Arc<Shared>,
        stop: Arc<AtomicBool>,
        on_exit: impl FnOnce() + Send + 'static,
    ) -> Result<Running> {
        start_prepared(self, shared, stop, on_exit)
    }
}

/// Starts the media path on its own threads and returns at once ([`Prepared::start`]). When
/// the stream ends, however it ends (a panic included), `stop` is set and `on_exit` runs on the
/// segmenter thread, so a server waiting on it never waits forever.
fn start_prepared(
    prepared: Prepared,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    on_exit: impl FnOnce() + Send + 'static,
) -> Result<Running> {
    /// Runs its closure when dropped: on every exit of the thread, unwinding included. It also
    /// closes the marker inbox, so that after a panic the marker writer ends too (it would
    /// otherwise wait on the inbox forever, with its log open and this run's state held).
    struct OnExit<F: FnOnce()>(Option<F>, Arc<AtomicBool>, Arc<Shared>);
    impl<F: FnOnce()> Drop for OnExit<F> {
        fn drop(&mut self) {
            self.1.store(true, Ordering::SeqCst);
            self.2.set_marker_inbox(None);
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    let guard = OnExit(Some(on_exit), stop.clone(), shared.clone());
    if matches!(prepared.input, Ready::Camera(_)) {
        // Set before the server can answer: until the camera plays, `GET /stream` does not
        // give the command line's rate as the camera's.
        shared.update_status(|s| s.params = InputParams::Pending);
    }
    // The stream's series, made once (the hot paths only add to them): they travel with its
    // shared state, which every thread of the stream and the server already hold.
    shared.set_metrics(Arc::new(StreamMetrics::new(
        prepared.settings.name().as_str(),
    )));
    let segmenter = spawn("segmenter", move || {
        let _guard = guard;
        run_prepared(prepared, shared, stop)
    })?;
    Ok(Running { segmenter })
}

/// Runs the whole media path until the frame limit is reached or `stop` is set, then writes
/// the final segment and `EXT-X-ENDLIST`. Blocks; the segmenter runs on the calling thread.
fn run_prepared(prepared: Prepared, shared: Arc<Shared>, stop: Arc<AtomicBool>) -> Result<Summary> {
    let Prepared {
        settings,
        out_dir,
        input,
        observer,
        recording,
    } = prepared;
    let (plan, board, y4m) = match input {
        Ready::Checkerboard(plan) => {
            let board = Checkerboard::new(plan.checkerboard())
                .map_err(|e| Error::new(ErrorKind::InvalidArgument, e))?;
            (plan, Some(board), None)
        }
        Ready::Y4m(plan, y, first) => (plan, None, Some((y, first))),
        // A camera connects first (its GOP or its size settles the plan), then runs its own
        // way: passthrough, or decoded into the encoder below.
        Ready::Camera(camera) => {
            return run_camera(
                &settings, &out_dir, camera, shared, stop, observer, recording,
            )
        }
    };
    let cfg = &plan;
    let overlay = TimecodeOverlay::new(DEFAULT_FONT, cfg.width(), cfg.height())
        .map_err(|e| Error::new(ErrorKind::Internal, format!("timecode font: {e}")))?;
    let (mut publisher, marker_thread) = open_output(cfg, &shared, observer, recording)?;
    let first_slot = publisher.first_slot();
    let pool = FramePool::new(cfg);

    let source_loop = source_loop(cfg, overlay, first_slot, &stop, &shared);
    let (free_rx, frame_tx) = (pool.free_rx.clone(), pool.frame_tx.clone());
    let source_thread = match (board, y4m) {
        (Some(board), _) => {
            let source = Paced::new(board, Box::new(RealClock), cfg.rate(), first_slot);
            spawn("source", move || {
                Ok(source_loop.run(source, free_rx, frame_tx))
            })?
        }
        (None, Some((y, first))) => {
            let input::y4m_source::Y4mOpened { input, reader } = *y;
            let source = input::y4m_source::Y4mSource::new(
                input,
                reader,
                Some(first),
                Box::new(RealClock),
                cfg.rate(),
                first_slot,
                cfg.segment(),
                shared.clone(),
            );
            spawn("source", move || {
                Ok(source_loop.run(source, free_rx, frame_tx))
            })?
        }
        (None, None) => unreachable!("a checkerboard or a Y4M input: a camera returned above"),
    };
    encode_and_segment(
        cfg,
        &mut publisher,
        &shared,
        &stop,
        marker_thread,
        source_thread,
        pool,
    )
}

/// The source thread's loop for a run of `cfg` from `first_slot`, with the timecode burnt in.
fn source_loop(
    cfg: &Plan,
    overlay: TimecodeOverlay,
    first_slot: u64,
    stop: &Arc<AtomicBool>,
    shared: &Arc<Shared>,
) -> SourceLoop {
    SourceLoop {
        overlay: Some(overlay),
        rate: cfg.rate(),
        first_slot,
        segments: SegmentClock::starting_at(cfg.segment(), cfg.rate().time_of(first_slot)),
        frame_limit: cfg.frame_limit(),
        pacing: cfg.pacing(),
        stop: stop.clone(),
        shared: shared.clone(),
    }
}

/// The media directory (cleaned with `--fresh`), the publisher, the stream clock and the
/// marker writer: what every input's run opens first.
fn open_output(
    cfg: &Plan,
    shared: &Arc<Shared>,
    observer: Option<PlaylistHook>,
    recording: Option<Recordings>,
) -> Result<(Publisher<MediaDir>, thread::JoinHandle<Result<()>>)> {
    open_output_at(cfg, shared, observer, None, recording)
}

/// [`open_output`] for a run whose first frame was captured at `first_frame`, before now (see
/// [`Publisher::starting_at`]).
fn open_output_at(
    cfg: &Plan,
    shared: &Arc<Shared>,
    observer: Option<PlaylistHook>,
    first_frame: Option<crate::clock::WallClock>,
    recording: Option<Recordings>,
) -> Result<(Publisher<MediaDir>, thread::JoinHandle<Result<()>>)> {
    let dir =
        MediaDir::open(cfg.out_dir(), cfg.name()).map_err(|e| Error::io("media directory", e))?;
    if cfg.fresh() {
        let n = dir
            .clean()
            .map_err(|e| Error::io(format!("cleaning {}", dir.path().display()), e))?;
        info!(files = n, dir = %dir.path().display(), "--fresh: removed the previous stream");
    }
    let markers_path = dir.markers_path();
    let mut publisher = Publisher::starting_at(cfg, dir, shared.clone(), observer, first_frame)?;
    // The index once the publisher has accepted the directory (a refused restart touches
    // nothing): --fresh drops the stream's rows with its files; rows whose file is gone are
    // dropped; what expired while stopped goes.
    match recording {
        Some(_) if cfg.name().segment_type() != crate::name::SegmentType::Mpegts => {
            warn!("recording is for MPEG-TS segments: this fMP4 stream is not recorded");
        }
        Some(r) => publisher.set_recorder(Recorder::start(
            &r,
            cfg.name(),
            cfg.recording(),
            cfg.fresh(),
        )?),
        None => {}
    }
    let clock = publisher.clock();
    shared.set_clock(clock);
    if let Some(end) = publisher.previous_end_slot() {
        // No frame between the previous run's last and this run's first: markers posted for an
        // instant in between go to this run's first frame.
        shared.add_frame_gap(end, publisher.first_slot());
    }
    // Markers: the log read back first (earlier runs' markers in the API and the playlist),
    // then the writer thread, the only one that adds markers.
    let marker_thread = start_marker_writer(&markers_path, shared, clock)?;
    Ok((publisher, marker_thread))
}

/// Reads the marker log back and starts the one thread that adds markers.
fn start_marker_writer(
    path: &std::path::Path,
    shared: &Arc<Shared>,
    clock: crate::clock::StreamClock,
) -> Result<thread::JoinHandle<Result<()>>> {
    let log = JsonlFile::open(path).map_err(|e| Error::io("opening the marker log", e))?;
    let w = MarkerWriter::open(log, shared.clone(), clock)
        .map_err(|e| Error::io("reading the marker log", e))?;
    let (inbox_tx, inbox_rx) =
        bounded::<Request>(writer::INBOX_CAPACITY + writer::GENERATOR_RESERVE);
    let handle = spawn("markers", move || {
        w.run(inbox_rx);
        Ok(())
    })?;
    shared.set_marker_inbox(Some(inbox_tx));
    Ok(handle)
}

/// The I420 frames between a source and the encoder: a pool of free buffers and the queue of
/// painted ones, both bounded.
struct FramePool {
    free_tx: Sender<YuvFrame>,
    free_rx: Receiver<YuvFrame>,
    frame_tx: Sender<Item<RawFrame>>,
    frame_rx: Receiver<Item<RawFrame>>,
}

impl FramePool {
    fn new(cfg: &Plan) -> Self {
        let (free_tx, free_rx) = bounded::<YuvFrame>(FRAME_POOL);
        let (frame_tx, frame_rx) = bounded::<Item<RawFrame>>(FRAME_POOL);
        for _ in 0..FRAME_POOL {
            free_tx
                .send(YuvFrame::new(cfg.width(), cfg.height()))
                .expect("pool channel has room");
        }
        FramePool {
            free_tx,
            free_rx,
            frame_tx,
            frame_rx,
        }
    }
}

/// The encoder thread and, on the calling thread, the segmenter, fed by `source_thread`
/// through `pool`; then the end of the stream in order (threads joined, the marker writer
/// drained, the last segment and `EXT-X-ENDLIST`).
fn encode_and_segment(
    cfg: &Plan,
    publisher: &mut Publisher<MediaDir>,
    shared: &Arc<Shared>,
    stop: &Arc<AtomicBool>,
    marker_thread: thread::JoinHandle<Result<()>>,
    source_thread: thread::JoinHandle<Result<SourceEnd>>,
    pool: FramePool,
) -> Result<Summary> {
    let FramePool {
        free_tx,
        free_rx,
        frame_tx,
        frame_rx,
    } = pool;
    // The source thread holds its own ends: when it stops, the encoder sees the end.
    drop((free_rx, frame_tx));
    let (free_au_tx, free_au_rx) = bounded::<Vec<u8>>(AU_POOL);
    let (au_tx, au_rx) = bounded::<Item<EncodedFrame>>(AU_POOL);
    for _ in 0..AU_POOL {
        free_au_tx
            .send(Vec::with_capacity(64 * 1024))
            .expect("pool channel has room");
    }
    let encoder_thread = {
        let job = EncoderJob {
            settings: EncoderSettings {
                width: cfg.width(),
                height: cfg.height(),
                rate: cfg.rate(),
                bitrate_bps: cfg.bitrate_bps(),
                gop_frames: cfg.gop_frames(),
            },
            event_duration: cfg.event_duration(),
            builtin_markers: cfg.builtin_markers(),
            shared: shared.clone(),
        };
        spawn("encoder", move || {
            job.run(frame_rx, free_tx, au_tx, free_au_rx)
        })?
    };

    // The segmenter runs here, cutting parts too with low latency.
    let first_slot = publisher.first_slot();
    let segmenter = match (cfg.part_frames(), cfg.part_target()) {
        (Some(frames), Some(part_target)) => {
            // Parts stay downloadable three target durations after they leave the playlist,
            // which lists them for three target durations (R42): six behind the live edge.
            let td = Duration90k::from_secs(cfg.target_duration_secs());
            let keep = (td.as_u64() * 6).div_ceil(cfg.segment().as_u64()) as usize + 2;
            publisher.enable_low_latency(LowLatency { part_target }, keep)?;
            Segmenter::with_parts(
                cfg.pts_offset(),
                PartPlan {
                    frames,
                    rate: cfg.rate(),
                    segments: SegmentClock::starting_at(
                        cfg.segment(),
                        cfg.rate().time_of(first_slot),
                    ),
                },
            )
        }
        _ => Segmenter::new(cfg.pts_offset()),
    };
    let mut segmenter = match cfg.name().segment_type() {
        crate::name::SegmentType::Mpegts => segmenter,
        crate::name::SegmentType::Fmp4 => segmenter.into_fmp4(),
    };
    let mut last_slot = None;
    let mut frames_encoded = 0u64;
    let mut seg_result = Ok(());
    for item in au_rx.iter() {
        let ef = match item {
            Item::Frame(ef) => ef,
            Item::Gap { end } => {
                // The input stalled: what it gave so far is published now.
                let mut spare = None;
                segmenter.finish_cuts(end, &mut |cut| {
                    publish_cut(publisher, cut, frames_encoded, &mut spare)
                });
                if let Some(bytes) = spare {
                    segmenter.recycle(bytes);
                }
                publisher.discontinue();
                continue;
            }
        };
        let au = FrameAu {
            data: &ef.data,
            at: cfg.rate().time_of(ef.slot),
            keyframe: ef.keyframe,
            opens_segment: ef.opens_segment,
        };
        if au.keyframe {
            publisher.note_keyframe(au.data);
        }
        let mut spare = None;
        let pushed = segmenter.push_cuts(&au, &mut |cut| {
            publish_cut(publisher, cut, frames_encoded, &mut spare)
        });
        if let Some(bytes) = spare {
            segmenter.recycle(bytes);
        }
        if let Err(e) = pushed {
            seg_result = Err(Error::from(e));
            break;
        }
        last_slot = Some(ef.slot);
        frames_encoded += 1;
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
    // No more markers: the writer finishes what it holds (every one on disk and in the store)
    // before the last segment and its DATERANGEs are published.
    shared.set_marker_inbox(None);
    let markers_done = join(marker_thread, "markers");
    let lost = shared.generator_markers_lost_count();
    if lost > 0 {
        warn!(
            markers = lost,
            "built-in markers lost in this run (see the errors above)"
        );
    }

    let mut input_error = None;
    if let Ok(SourceEnd {
        input_error: Some(e),
        ..
    }) = &generated
    {
        if publisher.segments() == 0 {
            // Nothing was published: the run fails as a bad input does before it starts
            // (exit code 2), and the playlist is left as it was.
            return Err(Error::new(
                e.kind(),
                format!("{} (before the first segment)", e.message()),
            ));
        }
        error!("{e}; the stream ends after the frames before it (EXT-X-ENDLIST)");
        input_error = Some(e.to_string());
    }
    if let Some(slot) = last_slot {
        segmenter.finish_cuts(cfg.rate().time_of(slot + 1), &mut |cut| {
            publish_cut(publisher, cut, frames_encoded, &mut None)
        });
    }
    publisher.end(frames_encoded);
    markers_done?;
    seg_result?;
    encoded?;
    let SourceEnd {
        sent: frames_generated,
        dropped: frames_dropped,
        ..
    } = generated?;
    let summary = Summary {
        frames_generated,
        frames_dropped,
        frames_encoded,
        segments: publisher.segments(),
        markers: shared.markers.len() as u64,
        last_sequence: publisher.last_sequence(),
        input_error,
    };
    info!(?summary, "stream finished");
    Ok(summary)
}

/// Publishes what the segmenter finished; a segment's buffer comes back in `spare`.
fn publish_cut<S: crate::store::Storage>(
    publisher: &mut Publisher<S>,
    cut: Cut,
    frames_encoded: u64,
    spare: &mut Option<Vec<u8>>,
) {
    match cut {
        Cut::Init(bytes) => publisher.publish_init(bytes),
        Cut::Part(part) => publisher.publish_part(part),
        Cut::Segment(seg) => *spare = Some(publisher.publish(seg, frames_encoded)),
    }
}

fn spawn<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<thread::JoinHandle<Result<T>>> {
    // The spawner's span (a supervised stream's name) goes with the thread's log lines.
    let span = tracing::Span::current();
    thread::Builder::new()
        .name(name.to_string())
        .spawn(move || span.in_scope(f))
        .map_err(|e| Error::io(format!("spawning the {name} thread"), e))
}

fn join<T>(h: thread::JoinHandle<Result<T>>, name: &str) -> Result<T> {
    h.join()
        .map_err(|_| Error::new(ErrorKind::Internal, format!("the {name} thread panicked")))?
}

struct EncoderJob {
    settings: EncoderSettings,
    event_duration: Duration90k,
    /// Make a marker for each source event (`--no-builtin-markers` turns this off).
    builtin_markers: bool,
    shared: Arc<Shared>,
}

impl EncoderJob {
    fn run(
        self,
        frames: Receiver<Item<RawFrame>>,
        free: Sender<YuvFrame>,
        out: Sender<Item<EncodedFrame>>,
        free_au: Receiver<Vec<u8>>,
    ) -> Result<u64> {
        let rate = self.settings.rate;
        let metrics = self.shared.metrics().clone();
        let mut encoder = H264Encoder::new(self.settings.clone())?;
        let mut last_event = None;
        let mut encoded = 0u64;
        // The slot after the newest frame encoded: slots skipped from there have no frame.
        let mut expected_slot: Option<u64> = None;
        for item in frames.iter() {
            let RawFrame {
                slot,
                yuv,
                info,
                opens_segment,
            } = match item {
                Item::Frame(f) => f,
                Item::Gap { end } => {
                    if out.send(Item::Gap { end }).is_err() {
                        break;
                    }
                    continue;
                }
            };
            let at = rate.time_of(slot);
            if let Some(e) = expected_slot {
                // Dropped slots: a marker posted for one goes to this frame instead.
                self.shared.add_frame_gap(e, slot);
            }
            expected_slot = Some(slot + 1);
            // The marker goes on the first frame of the event that actually reaches the
            // encoder, so it always points at a frame that exists in the stream.
            if self.builtin_markers && info.event.is_some() && info.event != last_event {
                // Handed over without waiting: the writer makes it durable on its own thread.
                let req = Request {
                    new: NewMarker {
                        at,
                        length: self.event_duration,
                        text: None,
                        source: GENERATOR_SOURCE.to_owned(),
                        key: None,
                    },
                    reply: None,
                };
                if let Err(e) = self.shared.submit_generator_marker(req) {
                    tracing::error!(
                        ?e,
                        time = at.as_secs_f64(),
                        "built-in marker lost: the marker writer's inbox is full"
                    );
                }
            }
            last_event = info.event;
            let Ok(mut data) = free_au.recv() else { break };
            data.clear();
            let started = std::time::Instant::now();
            let e = encoder.encode(&yuv, at, opens_segment, &mut data)?;
            metrics
                .encode_seconds
                .record(started.elapsed().as_secs_f64());
            metrics.frames_encoded.increment(1);
            self.shared.set_newest_frame(at);
            // The source may have stopped; then the buffer is simply freed.
            let _ = free.try_send(yuv);
            if out
                .send(Item::Frame(EncodedFrame {
                    slot,
                    data,
                    keyframe: e.keyframe,
                    opens_segment,
                }))
                .is_err()
            {
                break;
            }
            encoded += 1;
        }
        Ok(encoded)
    }
}

/// Opens the recording index of output directory `out_dir` ([`crate::recording::open_store`]:
/// a damaged or unwritable database is an error here) and runs it on its own thread,
/// `hls-db`, which ends when the last handle is dropped. Once per output directory, before
/// its streams start ([`Prepared::with_recording`]).
pub fn spawn_store(
    out_dir: &std::path::Path,
    storage_max: u64,
) -> Result<(Recordings, std::thread::JoinHandle<()>)> {
    let (recordings, worker) = crate::recording::open_store(out_dir, storage_max)?;
    let thread = std::thread::Builder::new()
        .name("hls-db".into())
        .spawn(move || worker.run())
        .map_err(|e| Error::io("spawning the database thread", e))?;
    Ok((recordings, thread))
}

/// Moves the recording index to its own thread, `hls-db`, which runs the handle's calls in
/// order and ends when the last handle is dropped.
pub fn spawn_db(
    db: crate::recording::db::Db,
) -> std::io::Result<(crate::recording::db::DbHandle, std::thread::JoinHandle<()>)> {
    let (handle, worker) = crate::recording::db::DbHandle::new(db);
    let thread = std::thread::Builder::new()
        .name("hls-db".into())
        .spawn(move || worker.run())?;
    Ok((handle, thread))
}
