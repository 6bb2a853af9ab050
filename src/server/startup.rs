//! Startup and shutdown: binding the address, building each worker's front door with
//! actix-web's dispatcher and the routes behind it, serving until told to stop. And the
//! metrics: the recorder installed once per process and `--metrics-bind`'s address bound before
//! any stream starts ([`Metrics::install`]), then `/metrics` served and the exporter's upkeep
//! run for as long as the server runs.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::App;

use super::cors::CorsPolicy;
use super::routes::routes;
use super::state::{app_state_of, single_stream, ServerConfig, Streams};
use super::{front, marker_api, metrics_api};
use crate::config::ServerSettings;
use crate::error::{Error, ErrorKind};
use crate::state::Shared;
use crate::telemetry::{Exporter, HttpMetrics, ServerMetrics};

/// How often the exporter's upkeep runs (it drains the histograms' samples, which otherwise
/// pile up between scrapes).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The process's metrics as the server serves them: the installed recorder and, with
/// `--metrics-bind`, that address bound. See [`Metrics::install`].
pub struct Metrics {
    exporter: Option<Exporter>,
    listener: Option<TcpListener>,
}

impl Metrics {
    /// Installs the process's metrics recorder and binds `--metrics-bind`'s address (a taken port
    /// fails here, before any file changes). Call once, before any stream starts: a stream's
    /// series are made with the recorder installed then. With `--no-server` nothing is
    /// installed (nobody would read the series, and their histograms would only grow).
    pub fn install(settings: &ServerSettings) -> Result<Metrics, Error> {
        if !settings.serve {
            return Ok(Metrics::off());
        }
        let listener = settings.metrics_bind.map(bind).transpose()?;
        Ok(Metrics {
            exporter: Some(Exporter::install()?),
            listener,
        })
    }

    /// No metrics: `/metrics` answers 404.
    pub fn off() -> Metrics {
        Metrics {
            exporter: None,
            listener: None,
        }
    }
}

/// How long a graceful stop waits for in-flight responses.
pub(crate) const SHUTDOWN_TIMEOUT_SECS: u64 = 3;

/// Binds `cfg.bind` (a clear `io::Error` if the port is taken), logs the URL, serves until
/// `shutdown` resolves, then stops gracefully (in-flight responses get
/// [`SHUTDOWN_TIMEOUT_SECS`]) and returns. Runs under any tokio runtime (`#[tokio::main]` or
/// `#[actix_web::main]`).
pub async fn serve(
    cfg: ServerConfig,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    cfg.validate()?;
    let listener = bind(cfg.bind)?;
    serve_listener(cfg, shared, listener, shutdown).await
}

/// Binds the HTTP address: the binary does this before the stream starts, so a taken port is
/// an error before anything is written.
pub fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr).map_err(|e| {
        let kind = if e.kind() == std::io::ErrorKind::AddrInUse {
            ErrorKind::Unavailable
        } else {
            ErrorKind::Io
        };
        Error::new(kind, format!("cannot listen on http://{addr}/")).with_source(e)
    })
}

/// [`serve`] on a listener the caller bound (tests bind port 0). `cfg.bind` is not used.
/// Without metrics (`/metrics` is 404): see [`serve_with_metrics`].
pub async fn serve_listener(
    cfg: ServerConfig,
    shared: Arc<Shared>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    serve_with_metrics(cfg, shared, listener, Metrics::off(), shutdown).await
}

/// [`serve_listener`] with the process's [`Metrics`]: `GET /metrics` on the HTTP address, or on
/// its own when `--metrics-bind` gave one.
pub async fn serve_with_metrics(
    cfg: ServerConfig,
    shared: Arc<Shared>,
    listener: TcpListener,
    metrics: Metrics,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    cfg.validate()?;
    let streams = single_stream(&cfg, shared);
    let recordings = cfg.recordings.clone();
    serve_streams(
        &cfg.cors_origins,
        streams,
        recordings,
        listener,
        metrics,
        shutdown,
    )
    .await
}

/// Serves the streams of `streams` (which a reload may change while it serves) on a listener
/// the caller bound, with the CORS origins `cors_origins` and the process's [`Metrics`], until
/// `shutdown` resolves.
pub async fn serve_streams(
    cors_origins: &[String],
    streams: Arc<Streams>,
    recordings: Option<crate::recording::Recordings>,
    listener: TcpListener,
    metrics: Metrics,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    use actix_service::{
        fn_factory, fn_service, map_config, IntoServiceFactory as _, ServiceFactory as _,
        ServiceFactoryExt as _,
    };
    CorsPolicy::new(cors_origins)?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("reading the listening address", e))?;
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4));
    let Metrics {
        exporter,
        listener: metrics_listener,
    } = metrics;
    let telemetry = ServerMetrics {
        exporter: exporter.clone(),
        elsewhere: metrics_listener.is_some(),
        http: HttpMetrics::default(),
    };
    let state = app_state_of(cors_origins, streams, telemetry, recordings);
    let (first, count) = {
        let list = state.streams.list();
        (list.first().map(|s| s.name.clone()), list.len())
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // `--metrics-bind`'s listener: `/metrics` only, through actix-web's own HTTP/1 server.
    let metrics_worker = {
        let state = state.clone();
        move || {
            let state = state.clone();
            let app = App::new()
                .configure(move |sc| metrics_api::metrics_only(state.clone(), sc))
                .into_factory()
                .map_err(|e: actix_web::Error| e.error_response());
            actix_http::HttpService::build()
                .keep_alive(actix_http::KeepAlive::Timeout(front::KEEP_ALIVE))
                .client_request_timeout(front::REQUEST_HEAD_TIMEOUT)
                .client_disconnect_timeout(Duration::from_secs(1))
                .h1(map_config(app, |_| actix_web::dev::AppConfig::default()))
                .tcp()
        }
    };
    // Each worker thread: the front door, and behind it actix-web's dispatcher with every route
    // (what `HttpServer` would build, with the same timeouts).
    let worker = move || {
        // actix-web's own dispatcher for the connections the door hands over, built as
        // `HttpServer` builds it, with the same timeouts; one with a small write buffer for the
        // event stream.
        let h1_with = |write_buffer: usize| {
            let stop_h1 = stop_rx.clone();
            let routes_state = state.clone();
            let app = App::new()
                .configure(move |sc| routes(routes_state.clone(), sc))
                .into_factory()
                .map_err(|e: actix_web::Error| e.error_response());
            actix_http::HttpService::build()
                .keep_alive(actix_http::KeepAlive::Timeout(front::KEEP_ALIVE))
                .client_request_timeout(front::REQUEST_HEAD_TIMEOUT)
                .client_disconnect_timeout(Duration::from_secs(1))
                .h1_write_buffer_size(write_buffer)
                .local_addr(addr)
                .graceful_shutdown_signal(move || {
                    let mut stop = stop_h1.clone();
                    async move {
                        let _ = stop.wait_for(|s| *s).await;
                    }
                })
                .on_connect_ext(|io: &front::Prefixed, ext: &mut actix_http::Extensions| {
                    marker_api::remember_socket(io.tcp(), ext)
                })
                // The host and address are only for URL generation, which no route uses.
                .h1(map_config(app, |_| actix_web::dev::AppConfig::default()))
        };
        // actix copies a body into the connection's write buffer and frees a buffer above
        // this size after each answer; a 720p segment read from disk fits, so it is not
        // reallocated per request (at most this much kept per connection).
        let h1 = h1_with(512 * 1024);
        let h1_events = h1_with(marker_api::EVENT_WRITE_BUFFER);
        // The same routes again, for the requests the front door passes on one by one.
        let routes_state = state.clone();
        let direct = App::new()
            .configure(move |sc| routes(routes_state.clone(), sc))
            .into_factory();
        let state = state.clone();
        let stop = stop_rx.clone();
        fn_factory(move || {
            let h1 = h1.new_service(());
            let h1_events = h1_events.new_service(());
            let direct = direct.new_service(actix_web::dev::AppConfig::default());
            let state = state.clone();
            let stop = stop.clone();
            async move {
                let h1 = std::rc::Rc::new(h1.await?);
                let h1_events = std::rc::Rc::new(h1_events.await?);
                let direct = std::rc::Rc::new(direct.await.map_err(drop)?);
                Ok::<_, ()>(fn_service(move |io| {
                    front::serve(
                        state.clone(),
                        io,
                        direct.clone(),
                        h1.clone(),
                        h1_events.clone(),
                        stop.clone(),
                    )
                }))
            }
        })
    };
    let mut builder = actix_server::Server::build()
        .workers(workers)
        .disable_signals()
        .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
        .listen("hls-http", listener, worker)
        .map_err(|e| Error::io(format!("serving on http://{addr}/"), e))?;
    let metrics_addr = match metrics_listener {
        Some(l) => {
            let at = l
                .local_addr()
                .map_err(|e| Error::io("reading the metrics address", e))?;
            builder = builder
                .listen("hls-metrics", l, metrics_worker)
                .map_err(|e| Error::io(format!("serving on http://{at}/"), e))?;
            Some(at)
        }
        None => None,
    };
    let server = builder.run();
    match first {
        Some(name) if count == 1 => tracing::info!(
            "player at http://{addr}/ (playlist http://{addr}/video/{name}.m3u8, {workers} HTTP workers)"
        ),
        _ => tracing::info!(
            streams = count,
            "streams at http://{addr}/ (list: http://{addr}/streams, {workers} HTTP workers)"
        ),
    }
    match (&exporter, metrics_addr) {
        (Some(_), Some(at)) => tracing::info!("metrics at http://{at}{}", metrics_api::PATH),
        (Some(_), None) => tracing::info!("metrics at http://{addr}{}", metrics_api::PATH),
        (None, _) => {}
    }
    // The exporter's upkeep, on this runtime: a few microseconds every few seconds.
    let upkeep = exporter.map(|exporter| {
        tokio::spawn(async move {
            let mut every = tokio::time::interval(UPKEEP_EVERY);
            loop {
                every.tick().await;
                exporter.upkeep();
            }
        })
    });
    let handle = server.handle();
    let stopper = tokio::spawn(async move {
        shutdown.await;
        tracing::info!("HTTP server stopping");
        // Idle kept-alive connections close now; answers under way get the shutdown timeout.
        let _ = stop_tx.send(true);
        handle.stop(true).await;
    });
    let result = server.await;
    stopper.abort();
    if let Some(upkeep) = upkeep {
        upkeep.abort();
    }
    tracing::info!("HTTP server stopped");
    result.map_err(|e| Error::io(format!("serving on http://{addr}/"), e))
}
