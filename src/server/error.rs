//! The one mapping from the crate's [`Error`] to an HTTP answer: a status chosen by the error's
//! kind and a JSON body `{"error": "..."}` that says what is wrong (moonfire-nvr's
//! `from_base_error`). Handlers return `Result<HttpResponse, Error>` and never match errors
//! themselves. Errors that are ours (I/O, internal) are logged in full and answered with a bare
//! "internal error": their causes may name paths on the server.

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::error::{Error, ErrorKind};

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

/// The status an error of `kind` is answered with.
pub(crate) fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::ResourceExhausted => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::FailedPrecondition => StatusCode::FORBIDDEN,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Io | ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A JSON error answer that is never cached.
pub(crate) fn json_error(status: StatusCode, error: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(ErrorBody { error })
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        status_of(self.kind())
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        // Only our own failures hide their message; a 503 says why and when to retry.
        if matches!(self.kind(), ErrorKind::Io | ErrorKind::Internal) {
            tracing::warn!(error = %self, "answering 500");
            return json_error(status, "internal error");
        }
        json_error(status, self.message())
    }
}

/// The answer to a path or file that is not there.
pub(crate) fn not_found_error() -> Error {
    Error::new(ErrorKind::NotFound, "not found")
}

/// A failure of the blocking pool itself (it is shutting down).
pub(crate) fn blocking_error(e: actix_web::error::BlockingError) -> Error {
    Error::new(ErrorKind::Unavailable, "server is shutting down").with_source(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_statuses_and_server_errors_hide_their_cause() {
        for (kind, status) in [
            (ErrorKind::InvalidArgument, 400),
            (ErrorKind::NotFound, 404),
            (ErrorKind::ResourceExhausted, 413),
            (ErrorKind::FailedPrecondition, 403),
            (ErrorKind::Unauthenticated, 401),
            (ErrorKind::Unavailable, 503),
            (ErrorKind::Io, 500),
            (ErrorKind::Internal, 500),
        ] {
            assert_eq!(status_of(kind).as_u16(), status, "{kind:?}");
        }
        let io = std::io::Error::other("/secret/path is broken");
        let e = Error::io("reading /secret/path", io);
        let res = e.error_response();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            res.headers().get(header::CACHE_CONTROL).unwrap(),
            "no-store"
        );
        let bad = crate::err!(InvalidArgument, "ts_start must be a number");
        assert_eq!(bad.error_response().status(), StatusCode::BAD_REQUEST);
        // A 503 is ours to explain: the client is told why and that it may retry.
        let busy = crate::err!(
            Unavailable,
            "too many markers are waiting; retry in a moment"
        );
        let res = busy.error_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = actix_web::body::to_bytes(res.into_body());
        let body = futures_util::FutureExt::now_or_never(body)
            .unwrap()
            .unwrap();
        assert!(std::str::from_utf8(&body)
            .unwrap()
            .contains("retry in a moment"));
    }
}
