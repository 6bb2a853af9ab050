//! The process run from a configuration file (`--config streams.toml`): one HTTP origin and one
//! media directory, and one supervised pipeline per `[[stream]]` table
//! ([`crate::pipeline::supervisor`]), so that a camera that is down, an input that ended or a
//! pipeline that panicked touches only its own stream.
//!
//! Signals are handled on a control thread: the first SIGINT or SIGTERM stops every stream
//! (each ends its segment and writes `EXT-X-ENDLIST`), then the server (after `linger`); a second
//! one exits at once. SIGHUP re-reads the file: streams added start, streams removed end cleanly
//! and leave the server once ended, streams whose table changed restart, untouched streams go on
//! without noticing. A file that no longer reads is refused, the error logged, the running set
//! kept. A `[server]` table that changed is logged and ignored: the address and the directory
//! are the process's own until it restarts.
//!
//! Nothing waits on a stream's end on the control thread: a stream told to stop is served until
//! its supervisor says it has ended, and a changed stream starts again only then (never two runs
//! writing the same files). A stop waits at most [`STOP_GRACE`] for the streams to end: one
//! still opening its input (a FIFO without a writer) cannot hear it, has written nothing, and
//! is left behind.
//!
//! The process ends when every stream has ended (their inputs ended, or a signal) or failed.

use std::collections::HashSet;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use tracing::{error, info, warn};

use crate::config::{FileConfig, ServerSettings, StreamEntry};
use crate::error::{Error, Result};
use crate::pipeline::supervisor::{Backoff, Supervisor};
use crate::server::{Metrics, StreamConfig, Streams};
use crate::state::{LiveStream, RunState, Shared};

/// What the control thread waits for.
enum Event {
    Signal(i32),
    /// The supervisor of this id has ended.
    Ended(u64),
}

/// A stream while it runs.
struct Running {
    entry: StreamEntry,
    id: u64,
    live: Arc<LiveStream>,
    server_cfg: StreamConfig,
    supervisor: Supervisor,
}

/// The streams of one process and what starts and stops them.
struct Origin {
    file: PathBuf,
    server: ServerSettings,
    streams: Arc<Streams>,
    /// The streams of the file, in its order.
    running: Vec<Running>,
    /// Told to stop (removed, or about to restart changed): served until they have ended.
    stopping: Vec<Running>,
    /// Changed streams to start once their previous run (in `stopping`) has ended.
    pending: Vec<StreamEntry>,
    /// The file's stream names, in its order.
    order: Vec<String>,
    recordings: crate::recording::Recordings,
    /// Supervisors not yet ended.
    alive: HashSet<u64>,
    next_id: u64,
    events: Sender<Event>,
}

/// The flag the first SIGINT or SIGTERM sets; a second one exits at once (status 130). For the
/// one-stream process (`main`) and [`run`] alike.
pub fn stop_on_signals() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let register = |r: std::io::Result<_>| {
            r.map(drop)
                .map_err(|e| Error::io("installing the signal handlers", e))
        };
        register(signal_hook::flag::register_conditional_shutdown(
            sig,
            130,
            stop.clone(),
        ))?;
        register(signal_hook::flag::register(sig, stop.clone()))?;
    }
    Ok(stop)
}

/// Runs the streams of `config`, read from `file`, until they have all ended; serves them on
/// `listener` if given.
pub fn run(
    file: PathBuf,
    config: FileConfig,
    listener: Option<TcpListener>,
    metrics: Metrics,
) -> Result<()> {
    // A second signal exits at once; the first reaches the control thread below.
    let _stop = stop_on_signals()?;
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ])
    .map_err(|e| Error::io("installing the signal handlers", e))?;
    let (tx, rx) = crossbeam_channel::unbounded();
    let signal_handle = signals.handle();
    let forward = tx.clone();
    let signal_thread = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if forward.send(Event::Signal(sig)).is_err() {
                    break;
                }
            }
        })
        .map_err(|e| Error::io("starting the signal thread", e))?;

    let server = config.server.clone();
    // The output directory's recording index, opened once for every stream (a damaged or
    // unwritable one is an error now), after the port: a taken port still changes no file.
    let (recordings, _db_thread) =
        crate::pipeline::spawn_store(&server.out_dir, server.storage_max)?;
    let mut origin = Origin {
        recordings: recordings.clone(),
        file,
        streams: Streams::new(server.out_dir.clone(), server.marker_token.clone(), true),
        server,
        running: Vec::new(),
        stopping: Vec::new(),
        pending: Vec::new(),
        order: Vec::new(),
        alive: HashSet::new(),
        next_id: 0,
        events: tx,
    };
    origin.apply(config.streams, true);

    let result = match listener {
        None => {
            origin.control(&rx);
            Ok(())
        }
        Some(listener) => {
            let done = Arc::new(tokio::sync::Notify::new());
            let cors = origin.server.cors_origins.clone();
            let linger = origin.server.linger;
            let streams = origin.streams.clone();
            let recordings = Some(recordings.clone());
            let control = {
                let done = done.clone();
                std::thread::Builder::new()
                    .name("control".into())
                    .spawn(move || {
                        origin.control(&rx);
                        if !linger.is_zero() {
                            info!(
                                seconds = linger.as_secs_f64(),
                                "every stream ended; still serving (Ctrl-C to quit)"
                            );
                            // A second signal during the linger exits at once.
                            std::thread::sleep(linger);
                        }
                        done.notify_one();
                    })
                    .map_err(|e| Error::io("starting the control thread", e))?
            };
            let served = actix_web::rt::System::new().block_on(async move {
                crate::server::serve_streams(
                    &cors,
                    streams,
                    recordings,
                    listener,
                    metrics,
                    async move {
                        done.notified().await;
                    },
                )
                .await
            });
            if served.is_err() {
                // Could not serve: the streams stop too.
                let _ = signal_hook::low_level::raise(signal_hook::consts::SIGTERM);
            }
            let _ = control.join();
            served
        }
    };
    signal_handle.close();
    let _ = signal_thread.join();
    // The index finishes what the streams queued (their last rows, releases and sweeps).
    let _ = recordings.db().call_blocking(|_| Ok(()));
    result
}

/// How long a stop waits for the streams that have not ended: one still opening its input (a
/// FIFO without a writer) cannot be told to stop, and has written nothing; it is left behind.
const STOP_GRACE: Duration = Duration::from_secs(10);

impl Origin {
    /// Waits for signals and for streams to end, until every stream has ended; then returns
    /// with each one joined (or, past [`STOP_GRACE`] after a stop, left behind).
    fn control(&mut self, events: &Receiver<Event>) {
        let mut stop_at: Option<Instant> = None;
        while !self.alive.is_empty() {
            let event = match stop_at {
                None => events.recv().ok(),
                Some(at) => match events.recv_deadline(at + STOP_GRACE) {
                    Ok(e) => Some(e),
                    Err(RecvTimeoutError::Timeout) => {
                        let stuck: Vec<_> = self
                            .all()
                            .filter(|r| self.alive.contains(&r.id))
                            .map(|r| r.entry.settings.name().to_string())
                            .collect();
                        warn!(
                            streams = ?stuck,
                            "not ended {} s after the stop (still opening their input); left behind",
                            STOP_GRACE.as_secs()
                        );
                        break;
                    }
                    Err(RecvTimeoutError::Disconnected) => None,
                },
            };
            let Some(event) = event else { break };
            match event {
                Event::Ended(id) => self.ended(id),
                Event::Signal(signal_hook::consts::SIGHUP) if stop_at.is_none() => self.reload(),
                Event::Signal(signal_hook::consts::SIGHUP) => {}
                Event::Signal(_) => {
                    if stop_at.is_none() {
                        info!("stopping every stream (a second signal exits at once)");
                        stop_at = Some(Instant::now());
                        self.pending.clear();
                        for r in self.all() {
                            r.supervisor.stop();
                        }
                    }
                }
            }
        }
        for r in self.running.drain(..).chain(self.stopping.drain(..)) {
            if self.alive.contains(&r.id) {
                r.supervisor.abandon();
            } else {
                r.supervisor.join();
            }
        }
        info!("every stream has ended");
    }

    /// Every stream this process still holds: running, and told to stop but not yet ended.
    fn all(&self) -> impl Iterator<Item = &Running> {
        self.running.iter().chain(self.stopping.iter())
    }

    /// The supervisor `id` has ended: a stream told to stop leaves the server, and the stream
    /// that replaces it (a changed table) starts now that its files are free.
    fn ended(&mut self, id: u64) {
        self.alive.remove(&id);
        let Some(at) = self.stopping.iter().position(|r| r.id == id) else {
            // A running stream that ended by itself stays listed, ended.
            self.publish();
            return;
        };
        let done = self.stopping.remove(at);
        let name = done.entry.settings.name().clone();
        done.supervisor.join();
        if let Some(p) = self.pending.iter().position(|e| e.settings.name() == &name) {
            let entry = self.pending.remove(p);
            match self.start(entry, false) {
                Ok(r) => self.running.push(r),
                Err(e) => error!(stream = %name, "cannot start: {e}"),
            }
        }
        self.publish();
    }

    /// SIGHUP: reads the file again and applies it, or keeps everything if it does not read.
    fn reload(&mut self) {
        info!(file = %self.file.display(), "SIGHUP: reading the configuration again");
        let config = match FileConfig::read(&self.file) {
            Ok(c) => c,
            Err(e) => {
                error!("configuration refused, the running streams kept: {e}");
                return;
            }
        };
        if !same_server(&config.server, &self.server) {
            warn!(
                "the [server] table changed: its settings take effect at the next start \
                 (the streams are reloaded with the running server's)"
            );
        }
        self.apply(config.streams, false);
    }

    /// Makes the streams those of `wanted`, in its order: a stream whose table is the same goes
    /// on untouched (a new marker token only is taken at once); one whose table changed, or
    /// that failed, is stopped and started again once it has ended; one that is gone is stopped
    /// (served until it has ended); a new one starts. `initial`: the process's first start,
    /// the only one at which `fresh` is honoured.
    fn apply(&mut self, wanted: Vec<StreamEntry>, initial: bool) {
        self.order = wanted
            .iter()
            .map(|e| e.settings.name().to_string())
            .collect();
        let mut old = std::mem::take(&mut self.running);
        for entry in wanted {
            let name = entry.settings.name().clone();
            match old.iter().position(|r| r.entry.settings.name() == &name) {
                Some(at) => {
                    let mut r = old.remove(at);
                    let failed = matches!(r.live.run_state(), RunState::Failed { .. });
                    if !failed && r.entry.pipeline_argv() == entry.pipeline_argv() {
                        r.server_cfg.marker_token = entry.marker_token.clone();
                        r.entry = entry;
                        self.running.push(r);
                    } else {
                        info!(stream = %name, "restarting (its table changed, or it had failed)");
                        r.supervisor.stop();
                        self.stopping.push(r);
                        self.pending.retain(|e| e.settings.name() != &name);
                        self.pending.push(entry);
                    }
                }
                None if self
                    .stopping
                    .iter()
                    .any(|r| r.entry.settings.name() == &name) =>
                {
                    // Still ending from an earlier reload: starts once it has.
                    self.pending.retain(|e| e.settings.name() != &name);
                    self.pending.push(entry);
                }
                None => match self.start(entry, initial) {
                    Ok(r) => self.running.push(r),
                    Err(e) => error!(stream = %name, "cannot start: {e}"),
                },
            }
        }
        for r in old {
            info!(stream = %r.entry.settings.name(), "stopping (removed from the file)");
            r.supervisor.stop();
            self.stopping.push(r);
        }
        // A pending stream whose table is gone again is not started.
        let order = &self.order;
        self.pending
            .retain(|e| order.iter().any(|n| n == e.settings.name().as_str()));
        self.publish();
    }

    /// The server's table: the running streams in the file's order, then those still ending.
    fn publish(&mut self) {
        let rank = |r: &Running| {
            self.order
                .iter()
                .position(|n| n == r.entry.settings.name().as_str())
                .unwrap_or(usize::MAX)
        };
        self.running.sort_by_key(|r| rank(r));
        let table: Vec<_> = self
            .all()
            .map(|r| (r.server_cfg.clone(), r.live.clone()))
            .collect();
        if let Err(e) = self.streams.set(&table) {
            error!("the server's stream table: {e}");
        }
    }

    fn start(&mut self, mut entry: StreamEntry, initial: bool) -> Result<Running> {
        if !initial {
            // `fresh` wipes a stream's files at the process's start, not at every reload.
            entry.settings.fresh = false;
        }
        let cfg = entry.config(&self.server);
        let plan = cfg.flags_plan();
        // A passthrough camera's target duration (its GOP's) and parts are known only once it
        // plays: no latency figure from the flags.
        let passthrough = matches!(plan.input(), crate::input::Input::Rtsp(_)) && !plan.transcode();
        let server_cfg = StreamConfig {
            name: plan.name().clone(),
            target_duration_secs: plan.target_duration_secs(),
            segment_lifetime_secs: plan.segment_lifetime().as_secs_ceil(),
            frame_rate: plan.rate(),
            marker_token: entry.marker_token.clone(),
            hold_back_secs: (!passthrough).then(|| plan.hold_back_secs()),
        };
        let live = Arc::new(LiveStream::new(Arc::new(Shared::default())));
        let id = self.next_id;
        self.next_id += 1;
        let events = self.events.clone();
        info!(stream = %plan.name(), input = %plan.input(), "starting");
        let supervisor = Supervisor::start(
            cfg,
            live.clone(),
            Backoff::default(),
            Some(self.recordings.clone()),
            move || {
                let _ = events.send(Event::Ended(id));
            },
        )?;
        self.alive.insert(id);
        Ok(Running {
            entry,
            id,
            live,
            server_cfg,
            supervisor,
        })
    }
}

/// Whether two `[server]` tables say the same.
fn same_server(a: &ServerSettings, b: &ServerSettings) -> bool {
    a.bind == b.bind
        && a.out_dir == b.out_dir
        && a.cors_origins == b.cors_origins
        && a.marker_token == b.marker_token
        && a.linger == b.linger
        && a.serve == b.serve
}
