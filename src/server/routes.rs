//! The routes: every path, method and handler registered on actix-web's `App`, and the handlers
//! that are not media answers (the page, its assets, `/markers`, `/stream`, `/healthz`, the CORS
//! preflight). The media answers are [`super::answers`] and [`super::segments`].

use actix_web::dev::Service;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{guard, web, HttpRequest, HttpResponse, Resource, ResponseError};

use super::answers::{self, finish_headers};
use super::error::{json_error, not_found_error};
use super::health;
use super::state::{AppState, StreamView};
use super::{assets, cors, marker_api, metrics_api, recordings, stream_info, streams};
use crate::error::{Error, ErrorKind};
use crate::state::InputParams;
#[cfg(test)]
use {
    super::state::{app_state, ServerConfig},
    crate::state::Shared,
    std::sync::Arc,
};

/// The page's Content-Security-Policy: everything from this origin only; hls.js runs its
/// transmuxer in a worker made from a `blob:` URL and feeds the video element through a
/// MediaSource `blob:` URL.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     worker-src 'self' blob:; media-src 'self' blob:; img-src 'self' data:; \
     style-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     frame-ancestors 'none'";

/// Registers every route on an actix `App` (so `actix_web::test` can call it without a socket):
/// `test::init_service(App::new().configure(server::configure(&cfg, shared)))`.
///
/// # Panics
/// If `cfg` does not pass [`ServerConfig::validate`]; [`super::serve`] validates first and returns an
/// error instead.
#[cfg(test)]
pub(crate) fn configure(
    cfg: &ServerConfig,
    shared: Arc<Shared>,
) -> impl FnOnce(&mut web::ServiceConfig) + Clone {
    if let Err(e) = cfg.validate() {
        panic!("invalid server configuration: {e}");
    }
    let state = app_state(cfg, shared, Default::default());
    move |sc: &mut web::ServiceConfig| routes(state, sc)
}

/// Registers every route, and [`finish_headers`] around them.
pub(crate) fn routes(state: web::Data<AppState>, sc: &mut web::ServiceConfig) {
    let preflight = state.cors.is_enabled();
    let policy = state.cors.clone();
    let counted = metrics_api::Counted::new(state.clone());
    let scope = web::scope("")
        .app_data(state)
        .wrap_fn(move |req, srv| {
            let origin = req.headers().get(header::ORIGIN).cloned();
            let fut = srv.call(req);
            let policy = policy.clone();
            async move {
                let mut res = fut.await?;
                finish_headers(&policy, origin.as_ref(), res.headers_mut());
                Ok(res)
            }
        })
        .service(read_only("/", preflight).to(index))
        .service(read_only("/watch/{stream}", preflight).to(watch))
        .service(read_only("/static/{path:.*}", preflight).to(static_asset))
        .service(read_only("/video/{file:[^/]+\\.m3u8}", preflight).to(answers::playlist))
        .service(read_only("/video/{file}", preflight).to(answers::segment))
        .service(markers_resource("/markers", preflight))
        .service(read_only("/markers/events", preflight).to(marker_api::events))
        .service(read_only("/recordings/{name}", preflight).to(recordings::recordings))
        .service(read_only("/markers/{id}/{file}", preflight).to(recordings::marker_file))
        .service(
            read_only("/streams/{stream}/markers/{id}/{file}", preflight)
                .to(recordings::marker_file),
        )
        .service(read_only("/healthz", preflight).to(healthz))
        .service(read_only("/stream", preflight).to(stream))
        .service(read_only("/streams", preflight).to(streams::list))
        .service(read_only("/streams/{stream}", preflight).to(stream))
        .service(markers_resource("/streams/{stream}/markers", preflight))
        .service(read_only("/streams/{stream}/markers/events", preflight).to(marker_api::events))
        .service(read_only("/streams/{stream}/healthz", preflight).to(stream_healthz))
        .service(read_only(metrics_api::PATH, preflight).to(metrics_api::metrics))
        .default_service(web::to(not_found))
        .wrap(counted);
    sc.service(scope);
}

/// A resource whose handler (added with `.to`) answers `GET` and `HEAD`; `OPTIONS` is a CORS
/// preflight when `preflight` is on; any other method is `405` with `Allow`.
fn read_only(path: &str, preflight: bool) -> ReadOnly {
    ReadOnly {
        path: path.to_owned(),
        preflight,
    }
}

struct ReadOnly {
    path: String,
    preflight: bool,
}

impl ReadOnly {
    fn to<F, Args>(self, handler: F) -> Resource
    where
        F: actix_web::Handler<Args>,
        Args: actix_web::FromRequest + 'static,
        F::Output: actix_web::Responder + 'static,
    {
        let allow = if self.preflight {
            "GET, HEAD, OPTIONS"
        } else {
            "GET, HEAD"
        };
        let mut r = web::resource(self.path).route(
            web::route()
                .guard(guard::Any(guard::Get()).or(guard::Head()))
                .to(handler),
        );
        if self.preflight {
            r = r.route(web::route().method(Method::OPTIONS).to(preflight));
        }
        r.default_service(web::to(move || async move {
            let mut res = json_error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
            res.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
            res
        }))
    }
}

/// `/markers` (or a named stream's): `GET`/`HEAD` read, `POST` adds (see [`marker_api`]);
/// anything else is `405`.
fn markers_resource(path: &str, preflight: bool) -> Resource {
    let allow = if preflight {
        "GET, HEAD, POST, OPTIONS"
    } else {
        "GET, HEAD, POST"
    };
    let mut r = web::resource(path)
        .route(
            web::route()
                .guard(guard::Any(guard::Get()).or(guard::Head()))
                .to(markers),
        )
        .route(web::post().to(marker_api::post));
    if preflight {
        r = r.route(web::route().method(Method::OPTIONS).to(self::preflight));
    }
    r.default_service(web::to(move || async move {
        let mut res = json_error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        res.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
        res
    }))
}

/// `GET /stream` (the first stream) and `GET /streams/NAME` ([`stream_info`]).
async fn stream(state: StreamView) -> HttpResponse {
    let body = match state.shared.input_params() {
        InputParams::Configured => state.stream_body.0.clone(),
        InputParams::Pending => {
            let mut res = json_error(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                "the camera has not played yet: its frame rate and target duration are not known",
            );
            res.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            return res;
        }
        InputParams::Known(p) => web::Bytes::from(
            serde_json::to_vec(&stream_info::StreamInfo::of(&state.name, &p))
                .expect("plain fields serialise"),
        ),
    };
    HttpResponse::Ok()
        // A restart, or a camera's reconnection, may change it: revalidate each time.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .content_type("application/json")
        .body(body)
}

async fn not_found() -> Result<HttpResponse, Error> {
    Err(not_found_error())
}

/// `/`: the stream's player when there is one stream, the tiles of every stream otherwise.
async fn index(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let list = state.streams.list();
    let (body, etag) = match &list[..] {
        [one] => (one.index_html.clone(), one.index_etag.as_str()),
        _ => {
            let (tiles, etag) = assets::find(assets::TILES).expect("the tile page is embedded");
            (web::Bytes::from_static(tiles.body), etag)
        }
    };
    page(&req, body, etag)
}

/// `/watch/NAME`: stream `NAME`'s player.
async fn watch(req: HttpRequest, stream: StreamView) -> HttpResponse {
    page(&req, stream.index_html.clone(), &stream.index_etag)
}

/// An HTML page of ours, with the page's security policy.
fn page(req: &HttpRequest, body: web::Bytes, etag: &str) -> HttpResponse {
    let (page, _) = assets::find(assets::INDEX).expect("the page is embedded");
    let mut res = serve_bytes(req, page.content_type, body, etag);
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    res
}

async fn static_asset(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    if path.as_str() == assets::INDEX {
        return Ok(index(req, state).await);
    }
    if path.as_str() == assets::TILES {
        // An HTML page: with the page's security policy, like `/`.
        let (tiles, etag) = assets::find(assets::TILES).expect("the tile page is embedded");
        return Ok(page(&req, web::Bytes::from_static(tiles.body), etag));
    }
    let (asset, etag) = assets::find(&path).ok_or_else(not_found_error)?;
    Ok(serve_bytes(
        &req,
        asset.content_type,
        web::Bytes::from_static(asset.body),
        etag,
    ))
}

/// An embedded file with its validator: `304` when `If-None-Match` names it. Browsers keep it
/// and revalidate on each use (`no-cache`), so an upgraded binary is picked up at once.
fn serve_bytes(
    req: &HttpRequest,
    content_type: &'static str,
    body: web::Bytes,
    etag: &str,
) -> HttpResponse {
    let hit = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| assets::if_none_match_hits(v, etag));
    let mut res = if hit {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    res.insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"));
    if hit {
        return res.finish();
    }
    res.content_type(content_type).body(body)
}

async fn markers(req: HttpRequest, state: StreamView) -> Result<HttpResponse, Error> {
    marker_api::list(&req, &state)
}

/// `GET /healthz`: with one stream, its health; with several, each one's under its name, and
/// `200` only when every one is well.
async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let list = state.streams.list();
    if let ([one], false) = (&list[..], state.streams.named()) {
        let h = health::of_stream(&StreamView::of(one.clone()));
        return HttpResponse::build(h.http_status())
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(h);
    }
    let all = health::Overall::of(list.iter().map(|s| {
        (
            s.name.to_string(),
            health::of_stream(&StreamView::of(s.clone())),
        )
    }));
    HttpResponse::build(all.http_status())
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(all)
}

/// `GET /streams/NAME/healthz`: that stream's health.
async fn stream_healthz(stream: StreamView) -> HttpResponse {
    let h = health::of_stream(&stream);
    HttpResponse::build(h.http_status())
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(h)
}

/// A CORS preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`): `204` for an
/// allowed origin asking for `GET` or `HEAD`, `403` otherwise. The allowed origin itself is
/// added by the scope's CORS wrapper like on every other response.
async fn preflight(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let h = req.headers();
    let origin_ok = h
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .is_some_and(|o| state.cors.allows(o));
    let method_ok = h
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .is_some_and(|m| m.as_bytes() == b"GET" || m.as_bytes() == b"HEAD");
    if !(origin_ok && method_ok) {
        return Error::new(
            ErrorKind::FailedPrecondition,
            "cross-origin request not allowed",
        )
        .error_response();
    }
    HttpResponse::NoContent()
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, HEAD"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, cors::ALLOW_HEADERS))
        .insert_header((
            header::ACCESS_CONTROL_MAX_AGE,
            cors::PREFLIGHT_MAX_AGE_SECS.to_string(),
        ))
        .finish()
}
