//! The binary: parse the command line, set up logging, run the media pipeline on its threads and
//! the HTTP server on the async runtime, and stop both in order.

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use hls::config::{Args, Config};
use hls::error::Error;
use hls::server::{self, ServerConfig};
use hls::state::Shared;
use tracing::{error, info, warn};

fn main() -> ExitCode {
    use clap::{CommandFactory, FromArgMatches};
    // clap's own exit: --help and --version on stdout with status 0, a malformed command line
    // on stderr with status 2.
    let matches = Args::command()
        .try_get_matches()
        .unwrap_or_else(|e| e.exit());
    let args = Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let refuse = |kind, e: &dyn std::fmt::Display| -> ! { Args::command().error(kind, e).exit() };
    // Every flag, or the whole configuration file, is checked before anything is touched: exit
    // 2, nothing created or deleted.
    let mode = match &args.config {
        Some(file) => {
            // The file says everything: a flag beside it would be silently ignored.
            let cmd = Args::command();
            let given: Vec<String> = cmd
                .get_arguments()
                .filter(|a| a.get_id() != "config")
                .filter(|a| {
                    matches.value_source(a.get_id().as_str())
                        == Some(clap::parser::ValueSource::CommandLine)
                })
                .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
                .collect();
            if !given.is_empty() {
                refuse(
                    clap::error::ErrorKind::ArgumentConflict,
                    &format!(
                        "--config cannot be combined with {}: put them in the file",
                        given.join(", ")
                    ),
                );
            }
            match hls::config::FileConfig::read(file) {
                Ok(c) => Mode::File(file.clone(), Box::new(c)),
                Err(e) => refuse(clap::error::ErrorKind::ValueValidation, &e),
            }
        }
        None => match args.validate() {
            Ok(c) => Mode::Flags(Box::new(c)),
            Err(e) => refuse(clap::error::ErrorKind::ValueValidation, &e),
        },
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // actix-http logs every malformed request at ERROR; the server logs them
                // itself, rate-limited (`server::front::hand_over`).
                .unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new("info,actix_http::h1::dispatcher=off")
                }),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match mode {
        Mode::Flags(cfg) => run(*cfg),
        Mode::File(file, cfg) => run_file(file, *cfg),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            ExitCode::from(e.kind().exit_code())
        }
    }
}

/// What the command line asks for.
enum Mode {
    /// One stream, from the flags.
    Flags(Box<Config>),
    /// The streams of a configuration file.
    File(std::path::PathBuf, Box<hls::config::FileConfig>),
}

fn warn_without_nasm() {
    if !*hls::encode::BUILT_WITH_NASM {
        warn!(
            "openh264 was built without nasm: encoding runs 2.5-3x slower. Fix: {}",
            hls::encode::NASM_HINT
        );
    }
}

/// `--config FILE`: every stream of the file, each under its own supervisor
/// ([`hls::origin`]).
fn run_file(file: std::path::PathBuf, cfg: hls::config::FileConfig) -> Result<(), Error> {
    let metrics = server::Metrics::install(&cfg.server)?;
    hls::procstat::raise_fd_limit();
    warn_without_nasm();
    info!(
        file = %file.display(),
        streams = cfg.streams.len(),
        out_dir = %cfg.server.out_dir.display(),
        "starting"
    );
    // The port is bound before any stream starts: a taken port fails before any file changes.
    let listener = if cfg.server.serve {
        Some(server::bind(cfg.server.bind)?)
    } else {
        None
    };
    hls::origin::run(file, cfg, listener, metrics)
}

fn run(cfg: Config) -> Result<(), Error> {
    // Before any stream makes its series: the metrics recorder, and --metrics-bind's address
    // bound (a taken port fails before any file changes).
    let metrics = server::Metrics::install(&cfg.server)?;
    // Room for many clients' sockets.
    hls::procstat::raise_fd_limit();
    warn_without_nasm();
    // The input is opened first: a Y4M stream's header and first frame are read (a FIFO waits
    // for its writer); a bad one exits 2 before anything is touched.
    let prepared = hls::pipeline::prepare(&cfg)?;
    let server_settings = &cfg.server;
    let stream = &cfg.stream;
    match prepared.plan() {
        // The camera's size, rate and GOP are logged once it plays.
        None => info!(
            input = %stream.input(),
            transcode = stream.transcode(),
            segment_secs = stream.segment().as_secs_f64(),
            list_size = stream.list_size(),
            out_dir = %server_settings.out_dir.display(),
            "starting"
        ),
        Some(plan) => info!(
            input = %plan.input(),
            size = format!("{}x{}", plan.width(), plan.height()),
            fps = plan.rate().as_f64(),
            segment_secs = plan.segment().as_secs_f64(),
            list_size = plan.list_size(),
            bitrate = plan.bitrate_bps(),
            out_dir = %plan.out_dir().display(),
            "starting"
        ),
    }
    let started = std::time::Instant::now();
    // The port is bound before the stream starts: a taken port fails before any file changes.
    let listener = if server_settings.serve {
        Some(server::bind(server_settings.bind)?)
    } else {
        None
    };
    // The output directory's recording index, opened once (a damaged or unwritable one is an
    // error now, exit 1), after the port: a taken port still changes no file.
    let (recordings, _db_thread) =
        hls::pipeline::spawn_store(&server_settings.out_dir, server_settings.storage_max)?;
    let prepared = prepared.with_recording(recordings.clone());
    let shared = Arc::new(Shared::default());
    // First Ctrl-C / SIGTERM: finish the current segment and write EXT-X-ENDLIST.
    // A second one exits at once.
    let stop = hls::origin::stop_on_signals()?;

    // The pipeline wakes the server when it ends (bounded run, signal, error or panic).
    let done = Arc::new(tokio::sync::Notify::new());
    let prepared_plan = prepared.plan().cloned();
    let pipeline = {
        let done = done.clone();
        prepared.start(shared.clone(), stop.clone(), move || done.notify_one())?
    };

    let served = match listener {
        Some(listener) => {
            // Until a camera plays, the server says its stream is pending (its plan is not
            // settled); these are the flags' own figures meanwhile.
            let flags_plan = cfg.flags_plan();
            let plan = prepared_plan.as_ref().unwrap_or(&flags_plan);
            let server_cfg = ServerConfig {
                bind: server_settings.bind,
                media_dir: server_settings.out_dir.clone(),
                name: stream.name().clone(),
                cors_origins: server_settings.cors_origins.clone(),
                target_duration_secs: plan.target_duration_secs(),
                frame_rate: plan.rate(),
                segment_lifetime_secs: plan.segment_lifetime().as_secs_ceil(),
                marker_token: server_settings.marker_token.clone(),
                recordings: Some(recordings.clone()),
            };
            let shared = shared.clone();
            let linger = server_settings.linger;
            actix_web::rt::System::new().block_on(async move {
                server::serve_with_metrics(server_cfg, shared, listener, metrics, async move {
                    done.notified().await;
                    if !linger.is_zero() {
                        info!(
                            seconds = linger.as_secs_f64(),
                            "stream ended; still serving (Ctrl-C to quit)"
                        );
                        tokio::time::sleep(linger).await;
                    }
                })
                .await
            })
        }
        None => Ok(()),
    };
    if served.is_err() {
        // Could not serve: stop the stream cleanly too.
        stop.store(true, Ordering::SeqCst);
    }
    let summary = pipeline.join();
    // The index finishes what the stream queued (its last rows, releases and sweeps).
    let _ = recordings.db().call_blocking(|_| Ok(()));
    served?;
    let summary = summary?;
    let wall = started.elapsed();
    let cpu = hls::procstat::cpu_time().unwrap_or_default();
    info!(
        frames = summary.frames_encoded,
        dropped = summary.frames_dropped,
        segments = summary.segments,
        markers = summary.markers,
        fps = format!("{:.1}", summary.frames_encoded as f64 / wall.as_secs_f64()),
        cpu_percent = format!("{:.1}", 100.0 * cpu.as_secs_f64() / wall.as_secs_f64()),
        peak_rss_mb = format!(
            "{:.1}",
            hls::procstat::peak_rss_bytes().unwrap_or(0) as f64 / 1048576.0
        ),
        "done"
    );
    Ok(())
}
