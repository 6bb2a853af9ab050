//! The metrics the origin exports at `GET /metrics` (Prometheus text format), through the
//! `metrics` facade and its Prometheus exporter. Their names are an interface: dashboards are
//! built on them, so they are spelled once, here, and the README lists them.
//!
//! The hot paths never look a series up: each stream builds its [`StreamMetrics`] once (the
//! handles carry the `stream` label) and counting is an atomic add. Requests are counted by
//! [`HttpMetrics::request`], whose labels are from fixed sets ([`Route`], the status code),
//! never the raw path, so a client cannot create series. Marker sources are the one label a
//! client chooses: a stream counts at most [`MAX_MARKER_SOURCES`] distinct ones, the rest as
//! `other`.
//!
//! Process figures (CPU, memory, open files) and the playlists' ages are gauges set when the
//! metrics are rendered ([`Exporter::render`], [`StreamMetrics::refresh_playlist_age`]), from
//! `/proc` and from what the caller reads.
//!
//! The logs of a bad day go through [`LogLimit`] (`warn_limited!`): one warning per interval
//! and kind, the rest at debug and counted in the next warning, so a full disk or an encoder
//! that cannot keep up writes a line every few seconds, not one per frame.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use metrics::{Counter, Gauge, Histogram, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

use crate::error::{Error, ErrorKind};

/// Frames per stream and outcome (`encoded` or `dropped`).
pub const FRAMES_TOTAL: &str = "hls_frames_total";
/// Seconds the encoder spent on each frame.
pub const ENCODE_SECONDS: &str = "hls_encode_seconds";
pub const SEGMENTS_WRITTEN_TOTAL: &str = "hls_segments_written_total";
pub const SEGMENTS_DELETED_TOTAL: &str = "hls_segments_deleted_total";
pub const PARTS_WRITTEN_TOTAL: &str = "hls_parts_written_total";
/// From the capture of a segment's (part's) last frame to the playlist that lists it.
pub const SEGMENT_PUBLISH_SECONDS: &str = "hls_segment_publish_seconds";
pub const PART_PUBLISH_SECONDS: &str = "hls_part_publish_seconds";
/// Since the live playlist last changed.
pub const PLAYLIST_AGE_SECONDS: &str = "hls_playlist_age_seconds";
pub const WRITE_ERRORS_TOTAL: &str = "hls_write_errors_total";
/// 1 while the input delivers frames, 0 while it is down or stalled.
pub const INPUT_UP: &str = "hls_input_up";
pub const INPUT_RECONNECTS_TOTAL: &str = "hls_input_reconnects_total";
pub const MARKERS_TOTAL: &str = "hls_markers_total";
pub const HTTP_REQUESTS_TOTAL: &str = "hls_http_requests_total";
pub const HTTP_REQUEST_SECONDS: &str = "hls_http_request_seconds";
pub const HTTP_CONNECTIONS: &str = "hls_http_connections";
pub const BLOCKING_WAITS: &str = "hls_blocking_waits";
/// The Prometheus client libraries' standard process series.
pub const PROCESS_CPU_SECONDS_TOTAL: &str = "process_cpu_seconds_total";
pub const PROCESS_RESIDENT_MEMORY_BYTES: &str = "process_resident_memory_bytes";
pub const PROCESS_OPEN_FDS: &str = "process_open_fds";
pub const PROCESS_MAX_FDS: &str = "process_max_fds";

/// Distinct marker sources counted per stream; later ones count as `other`.
pub const MAX_MARKER_SOURCES: usize = 32;

/// Buckets of the per-frame encode time: 1 ms to 1 s.
const ENCODE_BUCKETS: &[f64] = &[
    0.001, 0.002, 0.005, 0.010, 0.015, 0.020, 0.033, 0.050, 0.100, 0.250, 1.0,
];
/// Buckets of publication lags: 10 ms to 10 s (a part is due within its duration).
const PUBLISH_BUCKETS: &[f64] = &[
    0.010, 0.025, 0.050, 0.100, 0.200, 0.350, 0.500, 1.0, 2.0, 5.0, 10.0,
];
/// Buckets of request times: 0.1 ms to 10 s (a blocking reload waits up to 3 target durations).
const REQUEST_BUCKETS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.005, 0.010, 0.050, 0.100, 0.500, 1.0, 2.0, 5.0, 10.0,
];

/// What a request asked for: the `route` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    Playlist,
    BlockingPlaylist,
    Segment,
    Part,
    Markers,
    Events,
    Page,
    Metrics,
    Other,
}

impl Route {
    pub const ALL: [Route; 9] = [
        Route::Playlist,
        Route::BlockingPlaylist,
        Route::Segment,
        Route::Part,
        Route::Markers,
        Route::Events,
        Route::Page,
        Route::Metrics,
        Route::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Route::Playlist => "playlist",
            Route::BlockingPlaylist => "blocking_playlist",
            Route::Segment => "segment",
            Route::Part => "part",
            Route::Markers => "markers",
            Route::Events => "events",
            Route::Page => "page",
            Route::Metrics => "metrics",
            Route::Other => "other",
        }
    }
}

/// The recorder, installed once per process, and what renders it.
#[derive(Clone)]
pub struct Exporter {
    handle: PrometheusHandle,
}

impl Exporter {
    /// A recorder with this module's histogram buckets (not installed).
    fn recorder() -> Result<PrometheusRecorder, Error> {
        let buckets = |e: metrics_exporter_prometheus::BuildError| {
            Error::new(ErrorKind::Internal, format!("metric buckets: {e}"))
        };
        Ok(PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(ENCODE_SECONDS.into()), ENCODE_BUCKETS)
            .map_err(buckets)?
            .set_buckets_for_metric(Matcher::Suffix("_publish_seconds".into()), PUBLISH_BUCKETS)
            .map_err(buckets)?
            .set_buckets_for_metric(Matcher::Full(HTTP_REQUEST_SECONDS.into()), REQUEST_BUCKETS)
            .map_err(buckets)?
            .build_recorder())
    }

    /// Installs the process's recorder. Call once, before any stream starts; a second call is
    /// an error.
    pub fn install() -> Result<Exporter, Error> {
        let recorder = Self::recorder()?;
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("installing the metrics recorder: {e}"),
            )
        })?;
        describe();
        Ok(Exporter { handle })
    }

    /// A recorder of its own, not installed, and its exporter: renders only what is recorded
    /// into it (`metrics::set_default_local_recorder`), for the server's unit tests.
    #[cfg(test)]
    pub(crate) fn detached() -> (PrometheusRecorder, Exporter) {
        let recorder = Self::recorder().expect("valid buckets");
        let handle = recorder.handle();
        (recorder, Exporter { handle })
    }

    /// The text of `GET /metrics`, with the process gauges read now (from `/proc`: call it off
    /// the async workers).
    pub fn render(&self) -> String {
        update_process_gauges();
        self.handle.render()
    }

    /// Drops histogram samples already rendered and old buckets (the exporter's upkeep); call
    /// every few seconds.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }
}

/// `# HELP` lines and units.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        FRAMES_TOTAL,
        "Frames by outcome: encoded, or dropped because the encoder was behind"
    );
    describe_histogram!(ENCODE_SECONDS, Unit::Seconds, "Encoder time per frame");
    describe_counter!(SEGMENTS_WRITTEN_TOTAL, "Segments written whole and listed");
    describe_counter!(
        SEGMENTS_DELETED_TOTAL,
        "Segment files deleted after their grace period"
    );
    describe_counter!(PARTS_WRITTEN_TOTAL, "Low-latency parts published");
    describe_histogram!(
        SEGMENT_PUBLISH_SECONDS,
        Unit::Seconds,
        "From a segment's last frame captured to the playlist that lists it"
    );
    describe_histogram!(
        PART_PUBLISH_SECONDS,
        Unit::Seconds,
        "From a part's last frame captured to the playlist that lists it"
    );
    describe_gauge!(
        PLAYLIST_AGE_SECONDS,
        Unit::Seconds,
        "Since the live playlist last changed"
    );
    describe_counter!(
        WRITE_ERRORS_TOTAL,
        "Failed writes of segments, parts, playlists and markers"
    );
    describe_gauge!(INPUT_UP, "1 while the input delivers frames, else 0");
    describe_counter!(INPUT_RECONNECTS_TOTAL, "Reconnections to the input (RTSP)");
    describe_counter!(MARKERS_TOTAL, "Markers stored, by source");
    describe_counter!(
        HTTP_REQUESTS_TOTAL,
        "Requests answered, by route and status"
    );
    describe_histogram!(
        HTTP_REQUEST_SECONDS,
        Unit::Seconds,
        "From a request's head read to its answer's head written"
    );
    describe_gauge!(HTTP_CONNECTIONS, "Open client connections");
    describe_gauge!(BLOCKING_WAITS, "Blocking playlist reloads waiting");
    describe_counter!(
        PROCESS_CPU_SECONDS_TOTAL,
        Unit::Seconds,
        "User and system CPU time"
    );
    describe_gauge!(
        PROCESS_RESIDENT_MEMORY_BYTES,
        Unit::Bytes,
        "Resident memory"
    );
    describe_gauge!(PROCESS_OPEN_FDS, "Open file descriptors");
    describe_gauge!(PROCESS_MAX_FDS, "The limit on open file descriptors");
}

fn update_process_gauges() {
    if let Some(cpu) = crate::procstat::cpu_time() {
        metrics::counter!(PROCESS_CPU_SECONDS_TOTAL).absolute(cpu.as_secs());
    }
    if let Some(rss) = crate::procstat::rss_bytes() {
        metrics::gauge!(PROCESS_RESIDENT_MEMORY_BYTES).set(rss as f64);
    }
    if let Some(fds) = crate::procstat::open_fds() {
        metrics::gauge!(PROCESS_OPEN_FDS).set(fds as f64);
    }
    if let Some(max) = crate::procstat::max_fds() {
        metrics::gauge!(PROCESS_MAX_FDS).set(max as f64);
    }
}

/// One stream's series, built once when the stream starts.
pub struct StreamMetrics {
    stream: String,
    pub frames_encoded: Counter,
    pub frames_dropped: Counter,
    pub encode_seconds: Histogram,
    pub segments_written: Counter,
    pub segments_deleted: Counter,
    pub parts_written: Counter,
    pub segment_publish_seconds: Histogram,
    pub part_publish_seconds: Histogram,
    pub playlist_age_seconds: Gauge,
    pub write_errors: Counter,
    pub input_up: Gauge,
    pub input_reconnects: Counter,
    markers: Mutex<HashMap<String, Counter>>,
    /// Counts nothing: markers make no series either ([`StreamMetrics::detached`]).
    detached: bool,
    /// When these series were made: the origin of `playlist_changed_ns`.
    created: Instant,
    /// Nanoseconds after `created` at which the live playlist last changed; `u64::MAX`: not
    /// yet.
    playlist_changed_ns: AtomicU64,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Exporter")
    }
}

impl std::fmt::Debug for StreamMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamMetrics")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl StreamMetrics {
    /// The series of stream `stream`, registered with the current recorder (none installed:
    /// they count nothing).
    pub fn new(stream: &str) -> Self {
        let s = stream.to_owned();
        StreamMetrics {
            frames_encoded: metrics::counter!(FRAMES_TOTAL, "stream" => s.clone(), "outcome" => "encoded"),
            frames_dropped: metrics::counter!(FRAMES_TOTAL, "stream" => s.clone(), "outcome" => "dropped"),
            encode_seconds: metrics::histogram!(ENCODE_SECONDS, "stream" => s.clone()),
            segments_written: metrics::counter!(SEGMENTS_WRITTEN_TOTAL, "stream" => s.clone()),
            segments_deleted: metrics::counter!(SEGMENTS_DELETED_TOTAL, "stream" => s.clone()),
            parts_written: metrics::counter!(PARTS_WRITTEN_TOTAL, "stream" => s.clone()),
            segment_publish_seconds: metrics::histogram!(SEGMENT_PUBLISH_SECONDS, "stream" => s.clone()),
            part_publish_seconds: metrics::histogram!(PART_PUBLISH_SECONDS, "stream" => s.clone()),
            playlist_age_seconds: metrics::gauge!(PLAYLIST_AGE_SECONDS, "stream" => s.clone()),
            write_errors: metrics::counter!(WRITE_ERRORS_TOTAL, "stream" => s.clone()),
            input_up: metrics::gauge!(INPUT_UP, "stream" => s.clone()),
            input_reconnects: metrics::counter!(INPUT_RECONNECTS_TOTAL, "stream" => s.clone()),
            markers: Mutex::new(HashMap::new()),
            stream: s,
            detached: false,
            created: Instant::now(),
            playlist_changed_ns: AtomicU64::new(u64::MAX),
        }
    }

    /// Series that count nothing, for state no stream has claimed (a `Shared` built by a test
    /// without a pipeline).
    pub fn detached() -> &'static Arc<StreamMetrics> {
        static DETACHED: LazyLock<Arc<StreamMetrics>> = LazyLock::new(|| {
            Arc::new(StreamMetrics {
                stream: String::new(),
                frames_encoded: Counter::noop(),
                frames_dropped: Counter::noop(),
                encode_seconds: Histogram::noop(),
                segments_written: Counter::noop(),
                segments_deleted: Counter::noop(),
                parts_written: Counter::noop(),
                segment_publish_seconds: Histogram::noop(),
                part_publish_seconds: Histogram::noop(),
                playlist_age_seconds: Gauge::noop(),
                write_errors: Counter::noop(),
                input_up: Gauge::noop(),
                input_reconnects: Counter::noop(),
                markers: Mutex::new(HashMap::new()),
                detached: true,
                created: Instant::now(),
                playlist_changed_ns: AtomicU64::new(u64::MAX),
            })
        });
        &DETACHED
    }

    /// The stream's name (the `stream` label).
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The live playlist changed now (a segment or a part was listed, or it ended): one atomic
    /// store.
    pub fn playlist_changed(&self) {
        let ns = u64::try_from(self.created.elapsed().as_nanos()).unwrap_or(u64::MAX - 1);
        self.playlist_changed_ns.store(ns, Ordering::Relaxed);
    }

    /// Sets `hls_playlist_age_seconds` to the time since the live playlist last changed (before
    /// its first version: since the stream started); call before rendering.
    pub fn refresh_playlist_age(&self) {
        let now = self.created.elapsed();
        let age = match self.playlist_changed_ns.load(Ordering::Relaxed) {
            u64::MAX => now,
            ns => now.saturating_sub(Duration::from_nanos(ns)),
        };
        self.playlist_age_seconds.set(age.as_secs_f64());
    }

    /// Counts a marker stored from `source` (`generator`, a detector's name, ...).
    pub fn marker(&self, source: &str) {
        if self.detached {
            return;
        }
        let mut markers = self.markers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = markers.get(source) {
            c.increment(1);
            return;
        }
        let label = if markers.len() < MAX_MARKER_SOURCES {
            source.to_owned()
        } else {
            "other".to_owned()
        };
        let c = metrics::counter!(MARKERS_TOTAL, "stream" => self.stream.clone(), "source" => label.clone());
        c.increment(1);
        markers.insert(label, c);
    }
}

/// The server's series.
#[derive(Debug, Clone)]
pub struct HttpMetrics {
    pub connections: Gauge,
    pub blocking_waits: Gauge,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        HttpMetrics {
            connections: metrics::gauge!(HTTP_CONNECTIONS),
            blocking_waits: metrics::gauge!(BLOCKING_WAITS),
        }
    }
}

impl HttpMetrics {
    /// Counts one answer to a request for `route` with `status`, `elapsed` after its head was
    /// read.
    pub fn request(&self, route: Route, status: u16, elapsed: Duration) {
        metrics::counter!(HTTP_REQUESTS_TOTAL, "route" => route.as_str(), "status" => status_label(status))
            .increment(1);
        metrics::histogram!(HTTP_REQUEST_SECONDS, "route" => route.as_str())
            .record(elapsed.as_secs_f64());
    }
}

/// What the HTTP server holds of the metrics: the exporter that renders `GET /metrics` and the
/// server's own series.
#[derive(Clone, Debug, Default)]
pub struct ServerMetrics {
    /// `None`: no recorder is installed (`--no-server`, the server's unit tests); `/metrics`
    /// answers 404.
    pub exporter: Option<Exporter>,
    /// `/metrics` is served on its own address (`--metrics-bind`), not on the HTTP one.
    pub elsewhere: bool,
    pub http: HttpMetrics,
}

/// Lets one warning through per interval and counts the ones it held back, so a flood of the
/// same trouble (client errors, failed writes, dropped frames) writes a summary line per
/// interval instead of a line per event. Used through `warn_limited!`.
#[derive(Debug)]
pub struct LogLimit {
    interval: Duration,
    state: Mutex<LogState>,
}

#[derive(Debug)]
struct LogState {
    /// When the next warning may be written; `None` before the first.
    next: Option<Instant>,
    /// Warnings held back since the last one written.
    held: u64,
}

impl LogLimit {
    pub const fn new(interval: Duration) -> Self {
        LogLimit {
            interval,
            state: Mutex::new(LogState {
                next: None,
                held: 0,
            }),
        }
    }

    /// `Some(n)` when a warning may be written now, `n` the ones held back since the last
    /// (say so in it); `None` when this one is held back (log it at debug instead).
    pub fn admit(&self, now: Instant) -> Option<u64> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.next.is_some_and(|next| now < next) {
            s.held += 1;
            return None;
        }
        s.next = Some(now + self.interval);
        Some(std::mem::take(&mut s.held))
    }
}

/// `warn!` through a [`LogLimit`]: the warning, with `not_logged_since_last = n`, when the limit
/// admits it, else the same line at debug:
/// `warn_limited!(limit, sequence = 4, error = %e, "segment not written")`.
macro_rules! warn_limited {
    ($limit:expr, $($arg:tt)+) => {
        match $limit.admit(::std::time::Instant::now()) {
            Some(held) => ::tracing::warn!(not_logged_since_last = held, $($arg)+),
            None => ::tracing::debug!($($arg)+),
        }
    };
}
pub(crate) use warn_limited;

/// A status code as a label without an allocation for the common ones.
fn status_label(status: u16) -> metrics::SharedString {
    match status {
        200 => "200".into(),
        201 => "201".into(),
        204 => "204".into(),
        206 => "206".into(),
        304 => "304".into(),
        400 => "400".into(),
        401 => "401".into(),
        403 => "403".into(),
        404 => "404".into(),
        405 => "405".into(),
        408 => "408".into(),
        429 => "429".into(),
        500 => "500".into(),
        503 => "503".into(),
        other => other.to_string().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renders what `f` records into a recorder of its own (the global one is the process's).
    fn rendered(f: impl FnOnce()) -> String {
        let recorder = Exporter::recorder().unwrap();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            describe();
            f();
            update_process_gauges();
        });
        handle.render()
    }

    /// The value of the series `name{labels}` in `text`.
    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    }

    #[test]
    fn stream_series_carry_the_names_and_labels_of_the_interface() {
        let text = rendered(|| {
            let m = StreamMetrics::new("yard");
            m.frames_encoded.increment(30);
            m.frames_dropped.increment(2);
            m.encode_seconds.record(0.004);
            m.segments_written.increment(1);
            m.segments_deleted.increment(1);
            m.parts_written.increment(6);
            m.segment_publish_seconds.record(0.03);
            m.part_publish_seconds.record(0.02);
            m.playlist_age_seconds.set(0.5);
            m.write_errors.increment(1);
            m.input_up.set(1.0);
            m.input_reconnects.increment(3);
            m.marker("generator");
            m.marker("generator");
            m.marker("mint-detector");
        });
        for (series, want) in [
            (r#"hls_frames_total{stream="yard",outcome="encoded"}"#, 30.0),
            (r#"hls_frames_total{stream="yard",outcome="dropped"}"#, 2.0),
            (r#"hls_encode_seconds_count{stream="yard"}"#, 1.0),
            (r#"hls_segments_written_total{stream="yard"}"#, 1.0),
            (r#"hls_segments_deleted_total{stream="yard"}"#, 1.0),
            (r#"hls_parts_written_total{stream="yard"}"#, 6.0),
            (r#"hls_segment_publish_seconds_count{stream="yard"}"#, 1.0),
            (
                r#"hls_part_publish_seconds_bucket{stream="yard",le="0.025"}"#,
                1.0,
            ),
            (r#"hls_playlist_age_seconds{stream="yard"}"#, 0.5),
            (r#"hls_write_errors_total{stream="yard"}"#, 1.0),
            (r#"hls_input_up{stream="yard"}"#, 1.0),
            (r#"hls_input_reconnects_total{stream="yard"}"#, 3.0),
            (
                r#"hls_markers_total{stream="yard",source="generator"}"#,
                2.0,
            ),
            (
                r#"hls_markers_total{stream="yard",source="mint-detector"}"#,
                1.0,
            ),
        ] {
            assert_eq!(value(&text, series), Some(want), "{series} in\n{text}");
        }
        // Histograms, not summaries: the buckets of this module.
        assert!(
            text.contains(r#"hls_encode_seconds_bucket{stream="yard",le="0.033"} 1"#),
            "{text}"
        );
        assert!(text.contains("# TYPE hls_frames_total counter"), "{text}");
        assert!(
            text.contains("# TYPE hls_encode_seconds histogram"),
            "{text}"
        );
    }

    #[test]
    fn requests_are_counted_by_route_and_status_and_process_figures_are_there() {
        let text = rendered(|| {
            let http = HttpMetrics::default();
            http.request(Route::BlockingPlaylist, 200, Duration::from_millis(300));
            http.request(Route::Segment, 200, Duration::from_micros(80));
            http.request(Route::Segment, 404, Duration::from_micros(80));
            http.request(Route::Other, 418, Duration::from_micros(80));
            http.connections.set(7.0);
            http.blocking_waits.set(2.0);
        });
        for (series, want) in [
            (
                r#"hls_http_requests_total{route="blocking_playlist",status="200"}"#,
                1.0,
            ),
            (
                r#"hls_http_requests_total{route="segment",status="200"}"#,
                1.0,
            ),
            (
                r#"hls_http_requests_total{route="segment",status="404"}"#,
                1.0,
            ),
            (
                r#"hls_http_requests_total{route="other",status="418"}"#,
                1.0,
            ),
            (r#"hls_http_request_seconds_count{route="segment"}"#, 2.0),
            (
                r#"hls_http_request_seconds_bucket{route="blocking_playlist",le="0.5"}"#,
                1.0,
            ),
            ("hls_http_connections", 7.0),
            ("hls_blocking_waits", 2.0),
        ] {
            assert_eq!(value(&text, series), Some(want), "{series} in\n{text}");
        }
        if cfg!(target_os = "linux") {
            assert!(
                value(&text, PROCESS_RESIDENT_MEMORY_BYTES).unwrap() > 1e6,
                "{text}"
            );
            assert!(value(&text, PROCESS_OPEN_FDS).unwrap() >= 3.0, "{text}");
            assert!(value(&text, PROCESS_MAX_FDS).is_some(), "{text}");
            assert!(value(&text, PROCESS_CPU_SECONDS_TOTAL).is_some(), "{text}");
        }
    }

    #[test]
    fn a_flood_of_marker_sources_makes_a_bounded_number_of_series() {
        let text = rendered(|| {
            let m = StreamMetrics::new("cam");
            for i in 0..1000 {
                m.marker(&format!("source-{i}"));
            }
        });
        let series = text
            .lines()
            .filter(|l| l.starts_with("hls_markers_total{"))
            .count();
        assert_eq!(series, MAX_MARKER_SOURCES + 1, "{text}");
        assert_eq!(
            value(&text, r#"hls_markers_total{stream="cam",source="other"}"#),
            Some((1000 - MAX_MARKER_SOURCES) as f64)
        );
    }

    #[test]
    fn log_limit_admits_one_per_interval_and_counts_the_rest() {
        let limit = LogLimit::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(limit.admit(t0), Some(0));
        for i in 1..=999 {
            assert_eq!(limit.admit(t0 + Duration::from_millis(i)), None);
        }
        assert_eq!(limit.admit(t0 + Duration::from_secs(10)), Some(999));
        assert_eq!(limit.admit(t0 + Duration::from_secs(11)), None);
    }

    #[test]
    fn the_playlist_age_counts_from_its_last_change_and_detached_series_count_nothing() {
        let text = rendered(|| {
            let m = StreamMetrics::new("yard");
            m.playlist_changed();
            std::thread::sleep(Duration::from_millis(30));
            m.refresh_playlist_age();
            let d = StreamMetrics::detached();
            d.frames_encoded.increment(5);
            d.marker("generator");
            d.refresh_playlist_age();
        });
        let age = value(&text, r#"hls_playlist_age_seconds{stream="yard"}"#).unwrap();
        assert!((0.03..5.0).contains(&age), "{age} in\n{text}");
        assert!(!text.contains("stream=\"\""), "{text}");
    }

    #[test]
    fn every_route_has_its_label() {
        let labels: Vec<_> = Route::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            labels,
            [
                "playlist",
                "blocking_playlist",
                "segment",
                "part",
                "markers",
                "events",
                "page",
                "metrics",
                "other"
            ]
        );
    }
}
