//! The binary: parse the command line, set up logging, run the media pipeline on its threads and
//! the HTTP server on the async runtime, and stop both in order.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::Parser;
use hls::config::{Args, Config};
use hls::error::Error;
use hls::server::{self, ServerConfig};
use hls::state::Shared;
use tracing::{error, info, warn};

fn main() -> ExitCode {
    // clap's own exit: --help and --version on stdout with status 0, a malformed command line
    // on stderr with status 2.
    let args = Args::try_parse().unwrap_or_else(|e| e.exit());
    // Every flag is checked before anything is touched: exit 2, nothing created or deleted.
    let cfg = match args.validate() {
        Ok(c) => c,
        Err(e) => {
            use clap::CommandFactory;
            Args::command()
                .error(clap::error::ErrorKind::ValueValidation, e)
                .exit();
        }
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
    match run(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            ExitCode::from(e.kind().exit_code())
        }
    }
}

fn run(cfg: Config) -> Result<(), Error> {
    if !*hls::encode::BUILT_WITH_NASM {
        warn!(
            "openh264 was built without nasm: encoding runs 2.5-3x slower. Fix: {}",
            hls::encode::NASM_HINT
        );
    }
    // The input is opened first: a Y4M stream's header and first frame are read (a FIFO waits
    // for its writer); a bad one exits 2 before anything is touched.
    let prepared = hls::pipeline::prepare(&cfg)?;
    let cfg = prepared.config().clone();
    if let hls::input::Input::Rtsp(_) = cfg.input {
        // The camera's size, rate and GOP are logged once it plays.
        info!(
            input = %cfg.input,
            transcode = cfg.transcode,
            segment_secs = cfg.segment.as_secs_f64(),
            list_size = cfg.list_size,
            out_dir = %cfg.out_dir.display(),
            "starting"
        );
    } else {
        info!(
            input = %cfg.input,
            size = format!("{}x{}", cfg.width, cfg.height),
            fps = cfg.rate.as_f64(),
            segment_secs = cfg.segment.as_secs_f64(),
            list_size = cfg.list_size,
            bitrate = cfg.bitrate_bps,
            out_dir = %cfg.out_dir.display(),
            "starting"
        );
    }
    let started = std::time::Instant::now();
    // The port is bound before the stream starts: a taken port fails before any file changes.
    let listener = if cfg.serve {
        Some(server::bind(cfg.bind)?)
    } else {
        None
    };
    let shared = Arc::new(Shared::default());
    let stop = Arc::new(AtomicBool::new(false));
    // First Ctrl-C / SIGTERM: finish the current segment and write EXT-X-ENDLIST.
    // A second one exits at once.
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

    // The pipeline wakes the server when it ends (bounded run, signal, error or panic).
    let done = Arc::new(tokio::sync::Notify::new());
    let pipeline = {
        let done = done.clone();
        prepared.start(shared.clone(), stop.clone(), move || done.notify_one())?
    };

    let served = match listener {
        Some(listener) => {
            let server_cfg = ServerConfig {
                bind: cfg.bind,
                media_dir: cfg.out_dir.clone(),
                name: cfg.name.clone(),
                cors_origins: cfg.cors_origins.clone(),
                target_duration_secs: cfg.target_duration_secs,
                frame_rate: cfg.rate,
                segment_lifetime_secs: cfg.segment_lifetime.as_secs_ceil(),
                marker_token: cfg.marker_token.clone(),
            };
            let shared = shared.clone();
            let linger = cfg.linger;
            actix_web::rt::System::new().block_on(async move {
                server::serve_listener(server_cfg, shared, listener, async move {
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
