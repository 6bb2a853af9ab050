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
//! The process ends when every stream has ended (their inputs ended, or a signal) or failed.

use std::collections::HashSet;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use tracing::{error, info, warn};

use crate::config::{FileConfig, ServerSettings, StreamEntry};
use crate::error::{Error, Result};
use crate::pipeline::supervisor::{Backoff, Supervisor};
use crate::server::{Metrics, StreamConfig, Streams};
use crate::state::{LiveStream, Shared};

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
    running: Vec<Running>,
    /// Supervisors not yet ended.
    alive: HashSet<u64>,
    next_id: u64,
    events: Sender<Event>,
}

/// Runs the streams of `config`, read from `file`, until they have all ended; serves them on
/// `listener` if given.
pub fn run(
    file: PathBuf,
    config: FileConfig,
    listener: Option<TcpListener>,
    metrics: Metrics,
) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let register = |r: std::io::Result<_>| {
            r.map(drop)
                .map_err(|e| Error::io("installing the signal handlers", e))
        };
        // A second signal exits at once.
        register(signal_hook::flag::register_conditional_shutdown(
            sig,
            130,
            stop.clone(),
        ))?;
        register(signal_hook::flag::register(sig, stop.clone()))?;
    }
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
    let mut origin = Origin {
        file,
        streams: Streams::new(server.out_dir.clone(), server.marker_token.clone(), true),
        server,
        running: Vec::new(),
        alive: HashSet::new(),
        next_id: 0,
        events: tx,
    };
    origin.apply(config.streams)?;

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
                            // A signal during the linger exits at once (the flag is set).
                            std::thread::sleep(linger);
                        }
                        done.notify_one();
                    })
                    .map_err(|e| Error::io("starting the control thread", e))?
            };
            let served = actix_web::rt::System::new().block_on(async move {
                crate::server::serve_streams(&cors, streams, listener, metrics, async move {
                    done.notified().await;
                })
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
    result
}

impl Origin {
    /// Waits for signals and for streams to end, until every stream has ended; then returns
    /// with each one joined.
    fn control(&mut self, events: &Receiver<Event>) {
        let mut stopping = false;
        while !self.alive.is_empty() {
            let Ok(event) = events.recv() else { break };
            match event {
                Event::Ended(id) => {
                    self.alive.remove(&id);
                }
                Event::Signal(signal_hook::consts::SIGHUP) if !stopping => self.reload(),
                Event::Signal(signal_hook::consts::SIGHUP) => {}
                Event::Signal(_) => {
                    if !stopping {
                        info!("stopping every stream (a second signal exits at once)");
                        stopping = true;
                        for r in &self.running {
                            r.supervisor.stop();
                        }
                    }
                }
            }
        }
        for r in self.running.drain(..) {
            r.supervisor.join();
        }
        info!("every stream has ended");
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
        if let Err(e) = self.apply(config.streams) {
            error!("reload: {e}");
        }
    }

    /// Makes the running streams those of `wanted`, in its order: stops and joins what is gone
    /// or changed, starts what is new or changed, leaves the rest alone.
    fn apply(&mut self, wanted: Vec<StreamEntry>) -> Result<()> {
        // A stream that failed (its input could not be opened) is tried again.
        let (keep, go): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.running)
                .into_iter()
                .partition(|r| {
                    wanted.iter().any(|w| w.argv == r.entry.argv)
                        && !matches!(r.live.run_state(), crate::state::RunState::Failed { .. })
                });
        for r in &go {
            info!(stream = %r.entry.settings.name(), "stopping (removed or changed)");
            r.supervisor.stop();
        }
        // Still served until they have ended, so players fetch their final playlist.
        for r in go {
            r.supervisor.join();
            self.alive.remove(&r.id);
        }
        let mut keep: Vec<Option<Running>> = keep.into_iter().map(Some).collect();
        let mut running = Vec::with_capacity(wanted.len());
        let mut result = Ok(());
        for entry in wanted {
            let kept = keep
                .iter_mut()
                .find(|r| r.as_ref().is_some_and(|r| r.entry.argv == entry.argv))
                .and_then(Option::take);
            match kept {
                Some(r) => running.push(r),
                None => match self.start(entry) {
                    Ok(r) => running.push(r),
                    Err(e) => result = Err(e),
                },
            }
        }
        self.running = running;
        let table: Vec<_> = self
            .running
            .iter()
            .map(|r| (r.server_cfg.clone(), r.live.clone()))
            .collect();
        self.streams.set(&table)?;
        result
    }

    fn start(&mut self, entry: StreamEntry) -> Result<Running> {
        let cfg = entry.config(&self.server);
        let plan = cfg.flags_plan();
        let server_cfg = StreamConfig {
            name: plan.name().clone(),
            target_duration_secs: plan.target_duration_secs(),
            segment_lifetime_secs: plan.segment_lifetime().as_secs_ceil(),
            frame_rate: plan.rate(),
            marker_token: entry.marker_token.clone(),
            hold_back_secs: Some(plan.hold_back_secs()),
        };
        let live = Arc::new(LiveStream::new(Arc::new(Shared::default())));
        let id = self.next_id;
        self.next_id += 1;
        let events = self.events.clone();
        info!(
            stream = %plan.name(),
            input = %plan.input(),
            "starting"
        );
        let supervisor = Supervisor::start(cfg, live.clone(), Backoff::default(), move || {
            let _ = events.send(Event::Ended(id));
        })?;
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
