//! `hls-detect`: reads a live HLS stream like any client and posts a marker for every onset of
//! the mint top-left block. Glue only: flags, logging, signals and the reload loop; the logic
//! is the `hls_detect` library.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use hls::name::StreamName;
use hls_detect::http::{HttpOrigin, Routes};
use hls_detect::{Detector, Settings};
use tracing::{error, info};

/// Watches a live HLS stream of hls-streamer's checkerboard and posts a timeline marker to the
/// origin for the first frame of every mint event (the top-left block turning mint).
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// The origin, e.g. http://127.0.0.1:5000: the playlist is BASE/video/NAME.m3u8, markers
    /// go to BASE/streams/NAME/markers with --name, to BASE/markers without.
    #[arg(long)]
    base: String,

    /// Bearer token for posting markers (the streamer's --marker-token, or the stream's own
    /// `marker_token` in a --config file).
    #[arg(long, env = "HLS_MARKER_TOKEN", hide_env_values = true)]
    token: String,

    /// Stream name (the streamer's --name, or a `[[stream]]`'s `name`): its playlist is read and
    /// its markers are posted to its own route, /streams/NAME/markers. Without it: the stream
    /// "chessboard", markers posted to /markers (the server's first stream).
    #[arg(long)]
    name: Option<String>,

    /// Checkerboard block edge at 320 px width (the streamer's --block-size).
    #[arg(long, default_value_t = 20)]
    block_size: u32,

    /// Seconds one HTTP request may take, body included.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
}

/// clap keeps no token in a `Debug` of ours: `Args` derives none.
fn setup(args: Args) -> Result<(HttpOrigin, Detector), String> {
    let (name, routes) = match &args.name {
        Some(name) => (
            StreamName::new(name).map_err(|e| format!("--name: {e}"))?,
            Routes::Named,
        ),
        None => (
            StreamName::new("chessboard").expect("a valid name"),
            Routes::First,
        ),
    };
    if args.block_size == 0 {
        return Err("--block-size must be positive".into());
    }
    if !(args.timeout.is_finite() && (0.1..=600.0).contains(&args.timeout)) {
        return Err("--timeout must be between 0.1 and 600 seconds".into());
    }
    let origin = HttpOrigin::new(
        &args.base,
        &name,
        routes,
        &args.token,
        Duration::from_secs_f64(args.timeout),
    )?;
    let mut settings = Settings::new(name);
    settings.block_size = args.block_size;
    Ok((origin, Detector::new(settings)))
}

fn main() -> ExitCode {
    // clap's own exit: --help on stdout with 0, a malformed command line on stderr with 2.
    let args = Args::try_parse().unwrap_or_else(|e| e.exit());
    let (mut origin, mut detector) = match setup(args) {
        Ok(s) => s,
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
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal exits at once.
        let installed = signal_hook::flag::register_conditional_shutdown(sig, 130, stop.clone())
            .and_then(|_| signal_hook::flag::register(sig, stop.clone()));
        if let Err(e) = installed {
            error!("installing the signal handlers: {e}");
            return ExitCode::from(1);
        }
    }
    info!(
        playlist = origin.playlist_url(),
        markers = origin.markers_url(),
        "watching"
    );
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let report = detector.step(&mut origin, started);
        let until = started + report.wait;
        // Sleep in short slices so a signal is seen promptly.
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if now >= until {
                break;
            }
            std::thread::sleep((until - now).min(Duration::from_millis(100)));
        }
    }
    info!(
        pending = detector.pending_posts(),
        "stopped (markers still pending are not posted)"
    );
    ExitCode::SUCCESS
}
