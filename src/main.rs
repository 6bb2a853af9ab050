//! The binary: parse the command line, set up logging, run the media pipeline on its threads and
//! the HTTP server on the async runtime, and stop both in order.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use hls::config::Config;
use hls::server::{self, ServerConfig};
use hls::state::Shared;
use tracing::{error, info, warn};

fn main() -> ExitCode {
    let cfg = match Config::from_args(std::env::args_os()) {
        Ok(c) => c,
        Err(msg) => {
            // clap's own --help/--version output also arrives here.
            let help = msg.starts_with("Usage")
                || msg.contains("\nUsage:")
                || msg.starts_with("hls-streamer")
                || msg.contains("Print help");
            eprint!("{msg}");
            if !msg.ends_with('\n') {
                eprintln!();
            }
            return if help && !msg.starts_with("error") {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cfg: Config) -> Result<(), Box<dyn std::error::Error>> {
    if !hls::encode::BUILT_WITH_NASM {
        warn!(
            "openh264 was built without nasm: encoding runs 2.5-3x slower. Fix: {}",
            hls::encode::NASM_HINT
        );
    }
    info!(
        size = format!("{}x{}", cfg.width, cfg.height),
        fps = cfg.rate.as_f64(),
        segment_secs = cfg.segment.as_secs_f64(),
        list_size = cfg.list_size,
        bitrate = cfg.bitrate_bps,
        out_dir = %cfg.out_dir.display(),
        "starting"
    );
    let started = std::time::Instant::now();
    let shared = Arc::new(Shared::default());
    let stop = Arc::new(AtomicBool::new(false));
    // First Ctrl-C / SIGTERM: finish the current segment and write EXT-X-ENDLIST.
    // A second one exits at once.
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, stop.clone())?;
        signal_hook::flag::register(sig, stop.clone())?;
    }

    // The pipeline thread wakes the server when it ends (bounded run, signal or error).
    let done = Arc::new(tokio::sync::Notify::new());
    let pipeline = {
        let (cfg, shared, stop, done) = (cfg.clone(), shared.clone(), stop.clone(), done.clone());
        std::thread::Builder::new()
            .name("segmenter".into())
            .spawn(move || {
                // Runs on every exit, a panic included, so the server never waits forever.
                let _wake = Wake(stop.clone(), done);
                hls::pipeline::run(&cfg, shared, stop)
            })?
    };

    let served = if cfg.serve {
        let server_cfg = ServerConfig {
            bind: cfg.bind,
            media_dir: cfg.out_dir.clone(),
            name: cfg.name.clone(),
            cors_origins: cfg.cors_origins.clone(),
            target_duration_secs: cfg.target_duration_secs,
            frame_rate: cfg.rate,
            // In the playlist for list_size segments, then the R25 grace of as long again.
            segment_lifetime_secs: cfg.segment.as_u64().div_ceil(90_000)
                * (2 * cfg.list_size as u64 + 1),
        };
        let shared = shared.clone();
        actix_web::rt::System::new().block_on(async move {
            let linger = cfg.linger;
            server::serve(server_cfg, shared, async move {
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
    } else {
        Ok(())
    };
    if served.is_err() {
        // Could not serve (port taken, ...): stop the stream cleanly too.
        stop.store(true, Ordering::SeqCst);
    }
    let summary = pipeline.join().map_err(|_| "pipeline thread panicked")?;
    served.map_err(|e| format!("HTTP server on {}: {e}", cfg.bind))?;
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

/// Marks the stream stopped and wakes the server when dropped.
struct Wake(Arc<AtomicBool>, Arc<tokio::sync::Notify>);

impl Drop for Wake {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
        self.1.notify_one();
    }
}
