//! `GET /metrics`: the Prometheus text of every series ([`crate::telemetry`]), and how the
//! server counts its requests: every answer once, under the route label of what was asked
//! ([`route_of`], never the raw path) and its status. The routes count through [`Counted`], a
//! middleware around them; the front door counts the answers it gives itself
//! ([`super::front`]). With `--metrics-bind` the route moves to its own listener
//! ([`metrics_only`]) and the HTTP address answers it `404`.

use std::future::{ready, Ready};
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header;
use actix_web::{web, HttpResponse};
use futures_util::future::LocalBoxFuture;

use super::error::{blocking_error, not_found_error};
use super::limits::LogLimit;
use super::state::AppState;
use crate::error::Error;
use crate::name::MediaFile;
use crate::telemetry::{warn_limited, Route};

/// `Content-Type` of the Prometheus text exposition format.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The path of the route.
pub(crate) const PATH: &str = "/metrics";

/// The route label of a request for `path` (as the routes decode it) with `query`: the stream's
/// files by kind (a playlist with `_HLS_msn` is a blocking reload), the markers API, its event
/// stream, the page and its assets, this route; anything else (`/healthz`, `/stream`, a name that
/// is none of the stream's) is `other`.
/// `file_kind` says which of a stream's files a `/video/` name is, if any.
pub(crate) fn route_of(
    file_kind: impl FnOnce(&str) -> Option<MediaFile>,
    path: &str,
    query: &str,
) -> Route {
    match path {
        "/" => return Route::Page,
        "/markers" => return Route::Markers,
        "/markers/events" => return Route::Events,
        PATH => return Route::Metrics,
        _ => {}
    }
    if path.starts_with("/static/") || path.starts_with("/watch/") {
        return Route::Page;
    }
    // A named stream's markers API: `/streams/NAME/markers[/events]`.
    if let Some(rest) = path.strip_prefix("/streams/") {
        return match rest.split_once('/') {
            Some((name, "markers")) if !name.is_empty() => Route::Markers,
            Some((name, "markers/events")) if !name.is_empty() => Route::Events,
            _ => Route::Other,
        };
    }
    let Some(file) = path.strip_prefix("/video/") else {
        return Route::Other;
    };
    match file_kind(file) {
        Some(MediaFile::Playlist | MediaFile::Multivariant) => {
            let blocking = query
                .split('&')
                .any(|p| p.split('=').next() == Some("_HLS_msn"));
            if blocking {
                Route::BlockingPlaylist
            } else {
                Route::Playlist
            }
        }
        Some(MediaFile::Segment(_) | MediaFile::Init(_)) => Route::Segment,
        Some(MediaFile::Part { .. }) => Route::Part,
        None => Route::Other,
    }
}

/// Warnings of failures a client saw (a `5xx` on a media route or the markers API).
static CLIENT_VISIBLE: LogLimit = LogLimit::new(Duration::from_secs(10));

/// Counts one answer: `hls_http_requests_total` and `hls_http_request_seconds`, from the request
/// head read (`started`) to the answer ready to send (a held request's wait included). A server
/// error a client sees on a media route or the markers API is warned of, at most one line per
/// 10 s (`/healthz` and `/stream` say 503 by design).
pub(crate) fn count(state: &AppState, route: Route, status: u16, started: Instant) {
    state
        .telemetry
        .http
        .request(route, status, started.elapsed());
    if status >= 500 && route != Route::Other && route != Route::Metrics {
        warn_limited!(
            CLIENT_VISIBLE,
            route = route.as_str(),
            status,
            "a client was answered with a server error"
        );
    }
}

/// `GET /metrics` on the HTTP address: the text, unless `--metrics-bind` moved it (`404`) or
/// no recorder is installed (`404`).
pub(crate) async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, Error> {
    if state.telemetry.elsewhere {
        return Err(not_found_error());
    }
    render(&state).await
}

/// `GET /metrics` on `--metrics-bind`'s address.
async fn metrics_here(state: web::Data<AppState>) -> Result<HttpResponse, Error> {
    render(&state).await
}

/// The exposition: the stream's playlist age set now, the rest read on the blocking pool
/// (the process figures come from `/proc`).
async fn render(state: &AppState) -> Result<HttpResponse, Error> {
    let Some(exporter) = state.telemetry.exporter.clone() else {
        return Err(not_found_error());
    };
    for stream in state.streams.list().iter() {
        stream.live.shared().metrics().refresh_playlist_age();
    }
    let text = web::block(move || exporter.render())
        .await
        .map_err(blocking_error)?;
    Ok(HttpResponse::Ok()
        .content_type(CONTENT_TYPE)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(text))
}

/// The whole of `--metrics-bind`'s listener: `GET` and `HEAD /metrics`, counted; anything else
/// `404`.
pub(crate) fn metrics_only(state: web::Data<AppState>, sc: &mut web::ServiceConfig) {
    sc.service(
        web::scope("")
            .app_data(state.clone())
            .wrap(Counted::new(state))
            .route(PATH, web::get().to(metrics_here))
            .route(PATH, web::head().to(metrics_here))
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(not_found_error())
            })),
    );
}

/// The middleware that counts every answer of the routes it wraps ([`count`]).
pub(crate) struct Counted(web::Data<AppState>);

impl Counted {
    pub(crate) fn new(state: web::Data<AppState>) -> Self {
        Counted(state)
    }
}

impl<S, B> Transform<S, ServiceRequest> for Counted
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = CountedService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(CountedService {
            service: Rc::new(service),
            state: self.0.clone(),
        }))
    }
}

/// [`Counted`] around one service.
pub(crate) struct CountedService<S> {
    service: Rc<S>,
    state: web::Data<AppState>,
}

impl<S, B> Service<ServiceRequest> for CountedService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let started = Instant::now();
        let route = route_of(
            |f| self.state.streams.file_kind(f),
            req.match_info().as_str(),
            req.query_string(),
        );
        let state = self.state.clone();
        let answer = self.service.call(req);
        Box::pin(async move {
            let res = answer.await;
            let status = match &res {
                Ok(res) => res.status(),
                Err(e) => e.as_response_error().status_code(),
            };
            count(&state, route, status.as_u16(), started);
            res
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::{SegmentType, StreamName};
    use crate::server::routes::routes;
    use crate::server::state::app_state;
    use crate::state::Shared;
    use crate::telemetry::{Exporter, HttpMetrics, ServerMetrics};
    use actix_web::body::MessageBody;
    use actix_web::test as actest;
    use actix_web::App;
    use std::sync::Arc;

    async fn get<S, B>(app: &S, uri: &str) -> (u16, Option<String>, String)
    where
        S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
        B: MessageBody,
    {
        let res = actest::call_service(app, actest::TestRequest::get().uri(uri).to_request()).await;
        let status = res.status().as_u16();
        let ct = res
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = actest::read_body(res).await;
        (status, ct, String::from_utf8_lossy(&body).into_owned())
    }

    /// `/metrics` is Prometheus text; every answer of the routes is counted once under its
    /// route and status, never its path; with `--metrics-bind` the HTTP address answers 404 and
    /// the metrics listener serves it alone.
    #[actix_web::test]
    async fn the_routes_count_every_answer_and_serve_the_text() {
        let (recorder, exporter) = Exporter::detached();
        let _local = metrics::set_default_local_recorder(&recorder);
        let dir = tempfile::tempdir().unwrap();
        let cfg = crate::server::tests::config(dir.path());
        let telemetry = |elsewhere| ServerMetrics {
            exporter: Some(exporter.clone()),
            elsewhere,
            http: HttpMetrics::default(),
        };
        let state = app_state(&cfg, Arc::new(Shared::default()), telemetry(false));
        let app =
            actest::init_service(App::new().configure(move |sc| routes(state.clone(), sc))).await;
        for uri in [
            "/video/chessboard7.ts",
            "/video/chessboard7.ts",
            "/video/secret-name-3.ts",
            "/healthz",
            "/",
        ] {
            get(&app, uri).await;
        }
        let (status, ct, text) = get(&app, "/metrics").await;
        assert_eq!(status, 200);
        assert!(
            ct.as_deref()
                .is_some_and(|c| c.starts_with("text/plain; version=0.0.4")),
            "{ct:?}"
        );
        for line in [
            r#"hls_http_requests_total{route="segment",status="404"} 2"#,
            r#"hls_http_requests_total{route="other",status="404"} 1"#,
            r#"hls_http_requests_total{route="other",status="503"} 1"#,
            r#"hls_http_requests_total{route="page",status="200"} 1"#,
            r#"hls_http_request_seconds_count{route="segment"} 2"#,
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        assert!(!text.contains("secret-name"), "{text}");
        // This scrape is counted once it is answered: the next one shows it.
        let (_, _, text) = get(&app, "/metrics").await;
        assert!(
            text.contains(r#"hls_http_requests_total{route="metrics",status="200"} 1"#),
            "{text}"
        );

        let state = app_state(&cfg, Arc::new(Shared::default()), telemetry(true));
        let moved = state.clone();
        let app =
            actest::init_service(App::new().configure(move |sc| routes(moved.clone(), sc))).await;
        assert_eq!(get(&app, "/metrics").await.0, 404);
        let only =
            actest::init_service(App::new().configure(move |sc| metrics_only(state.clone(), sc)))
                .await;
        assert_eq!(get(&only, "/healthz").await.0, 404);
        let (status, _, text) = get(&only, "/metrics").await;
        assert_eq!(status, 200);
        assert!(
            text.contains(r#"hls_http_requests_total{route="metrics",status="404"} 1"#),
            "{text}"
        );
    }

    #[test]
    fn routes_are_labelled_by_kind_never_by_path() {
        let name = StreamName::new("cam").unwrap();
        let fmp4 = StreamName::new("cam")
            .unwrap()
            .with_segment_type(SegmentType::Fmp4);
        for (name, path, query, want) in [
            (&name, "/", "", Route::Page),
            (&name, "/static/js/player.js", "", Route::Page),
            (&name, "/video/cam.m3u8", "", Route::Playlist),
            (&name, "/video/cam.index.m3u8", "", Route::Playlist),
            (&name, "/video/cam.m3u8", "_HLS_skip=YES", Route::Playlist),
            (
                &name,
                "/video/cam.m3u8",
                "_HLS_msn=4&_HLS_part=1",
                Route::BlockingPlaylist,
            ),
            (&name, "/video/cam.m3u8", "x=_HLS_msn", Route::Playlist),
            (&name, "/video/cam12.ts", "", Route::Segment),
            (&name, "/video/cam12.3.ts", "", Route::Part),
            (&fmp4, "/video/cam12.init.mp4", "", Route::Segment),
            (&fmp4, "/video/cam12.m4s", "", Route::Segment),
            (&name, "/video/other12.ts", "", Route::Other),
            (&name, "/video/cam012.ts", "", Route::Other),
            (&name, "/markers", "after_id=3", Route::Markers),
            (&name, "/markers/events", "", Route::Events),
            (&name, "/streams/cam/markers", "", Route::Markers),
            (&name, "/streams/cam/markers/events", "", Route::Events),
            (&name, "/streams//markers", "", Route::Other),
            (&name, "/streams/cam", "", Route::Other),
            (&name, "/streams", "", Route::Other),
            (&name, "/watch/cam", "", Route::Page),
            (&name, "/metrics", "", Route::Metrics),
            (&name, "/healthz", "", Route::Other),
            (&name, "/stream", "", Route::Other),
            (&name, "/../../etc/passwd", "", Route::Other),
        ] {
            assert_eq!(
                route_of(|f| name.parse_file(f), path, query),
                want,
                "{path}?{query}"
            );
        }
    }
}
