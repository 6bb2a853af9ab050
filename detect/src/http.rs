//! The detector's [`Origin`] over HTTP, with `ureq` (blocking; one connection kept alive).
//!
//! URLs: the playlist is `BASE/video/NAME.m3u8`; a segment URI is resolved against the
//! playlist's URL (RFC 8216 §4.1, RFC 3986 §5): relative to `BASE/video/`, from the host's root
//! when it starts with `/`, as it is when absolute. Markers go to the stream's own route,
//! `BASE/streams/NAME/markers` ([`Routes::Named`]: `hls-detect --name`, right on a server with one
//! stream or several), or to `BASE/markers`, the server's first stream ([`Routes::First`]: without
//! `--name`, as before). Only `http://` is built in (the origin serves plain HTTP); the bearer
//! token goes to the markers URL only, never to a segment's host, and never into a log line or a
//! `Debug` output.

use std::time::Duration;

use super::{FetchError, MarkerPost, Origin, PostReply};
use hls::name::StreamName;

/// The largest segment or playlist read (a 4K segment at 50 Mbit/s for 6 s is under 40 MB).
const MAX_BODY: u64 = 64 << 20;
/// How much of an error answer's body is kept for the log.
const ERROR_BODY_CHARS: usize = 200;

/// Which markers route the detector posts to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Routes {
    /// `BASE/markers`: the server's first stream (a one-stream server's only one).
    First,
    /// `BASE/streams/NAME/markers`: the named stream's own.
    Named,
}

/// `hls-detect`'s view of one stream on one origin.
pub struct HttpOrigin {
    agent: ureq::Agent,
    playlist_url: String,
    /// `BASE/video/`: relative segment URIs resolve here.
    media_url: String,
    /// `http://host:port`: URIs starting with `/` resolve here.
    root_url: String,
    markers_url: String,
    /// `Bearer TOKEN`.
    authorization: String,
}

impl std::fmt::Debug for HttpOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpOrigin")
            .field("playlist_url", &self.playlist_url)
            .field("markers_url", &self.markers_url)
            .field("authorization", &"Bearer <redacted>")
            .finish_non_exhaustive()
    }
}

/// Checks `--base`: `http://host[:port][/path]`, no query or fragment. Returns it without a
/// trailing `/`, and its `http://host[:port]` part.
pub(crate) fn parse_base(base: &str) -> Result<(String, String), String> {
    let rest = match base.get(..7) {
        Some(s) if s.eq_ignore_ascii_case("http://") => &base[7..],
        _ if base
            .get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("https://")) =>
        {
            return Err(format!(
                "--base {base:?}: https is not built in (the origin serves plain HTTP; put a \
                 local proxy in front for TLS)"
            ))
        }
        _ => {
            return Err(format!(
                "--base {base:?}: expected http://HOST[:PORT][/PATH]"
            ))
        }
    };
    if base.contains(['?', '#']) || base.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "--base {base:?}: no query, fragment or white space"
        ));
    }
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("--base {base:?}: needs a host (and no user info)"));
    }
    let root = format!("http://{authority}");
    let trimmed = format!("http://{}", rest.trim_end_matches('/'));
    Ok((trimmed, root))
}

/// A token must fit an HTTP header: visible ASCII, no spaces, not empty.
pub(crate) fn check_token(token: &str) -> Result<(), String> {
    if token.is_empty() {
        return Err("the marker token is empty".into());
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the marker token must be visible ASCII without spaces".into());
    }
    Ok(())
}

impl HttpOrigin {
    pub fn new(
        base: &str,
        name: &StreamName,
        routes: Routes,
        token: &str,
        timeout: Duration,
    ) -> Result<Self, String> {
        let (base, root_url) = parse_base(base)?;
        check_token(token)?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            // Statuses are answers here, not errors: 404 and 5xx mean different things.
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .user_agent(concat!("hls-detect/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(HttpOrigin {
            agent,
            playlist_url: format!("{base}/video/{}.m3u8", name.as_str()),
            media_url: format!("{base}/video/"),
            root_url,
            markers_url: match routes {
                Routes::First => format!("{base}/markers"),
                Routes::Named => format!("{base}/streams/{}/markers", name.as_str()),
            },
            authorization: format!("Bearer {token}"),
        })
    }

    pub fn playlist_url(&self) -> &str {
        &self.playlist_url
    }

    pub fn markers_url(&self) -> &str {
        &self.markers_url
    }

    /// A segment URI as the playlist writes it, made absolute.
    pub(crate) fn resolve(&self, uri: &str) -> Result<String, FetchError> {
        let lower = uri.get(..8).unwrap_or(uri).to_ascii_lowercase();
        if lower.starts_with("https://") {
            return Err(FetchError::Status {
                code: 0,
                body: format!("{uri}: https is not built in"),
            });
        }
        if lower.starts_with("http://") {
            Ok(uri.to_string())
        } else if let Some(path) = uri.strip_prefix('/') {
            Ok(format!("{}/{path}", self.root_url))
        } else {
            Ok(format!("{}{uri}", self.media_url))
        }
    }

    fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let mut resp = self
            .agent
            .get(url)
            .call()
            .map_err(|e| FetchError::Unreachable(e.to_string()))?;
        let code = resp.status().as_u16();
        match code {
            200 => resp
                .body_mut()
                .with_config()
                .limit(MAX_BODY)
                .read_to_vec()
                .map_err(|e| FetchError::Unreachable(format!("reading {url}: {e}"))),
            404 | 410 => Err(FetchError::NotFound),
            _ => Err(FetchError::Status {
                code,
                body: error_body(&mut resp),
            }),
        }
    }
}

fn error_body(resp: &mut ureq::http::Response<ureq::Body>) -> String {
    let text = resp
        .body_mut()
        .with_config()
        .limit(16 << 10)
        .lossy_utf8(true)
        .read_to_string()
        .unwrap_or_default();
    text.chars().take(ERROR_BODY_CHARS).collect()
}

impl Origin for HttpOrigin {
    fn playlist(&mut self) -> Result<Vec<u8>, FetchError> {
        self.get(&self.playlist_url)
    }

    fn segment(&mut self, uri: &str) -> Result<Vec<u8>, FetchError> {
        let url = self.resolve(uri)?;
        self.get(&url)
    }

    fn post_marker(&mut self, post: &MarkerPost) -> Result<PostReply, FetchError> {
        let body = serde_json::to_string(post).expect("a marker post serialises");
        let mut resp = self
            .agent
            .post(&self.markers_url)
            .header("Authorization", &self.authorization)
            .header("Content-Type", "application/json")
            .send(body.as_bytes())
            .map_err(|e| FetchError::Unreachable(e.to_string()))?;
        let code = resp.status().as_u16();
        match code {
            200 | 201 => {
                let text = resp
                    .body_mut()
                    .with_config()
                    .limit(1 << 20)
                    .read_to_string()
                    .unwrap_or_default();
                let id = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| v.get("id").and_then(serde_json::Value::as_u64));
                Ok(PostReply {
                    created: code == 201,
                    id,
                })
            }
            404 | 410 => Err(FetchError::NotFound),
            _ => Err(FetchError::Status {
                code,
                body: error_body(&mut resp),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert_eq!(
            parse_base("http://127.0.0.1:5000/").unwrap(),
            (
                "http://127.0.0.1:5000".into(),
                "http://127.0.0.1:5000".into()
            )
        );
        assert_eq!(
            parse_base("HTTP://cache.local/live").unwrap(),
            (
                "http://cache.local/live".into(),
                "http://cache.local".into()
            )
        );
        for bad in [
            "https://x",
            "ftp://x",
            "127.0.0.1:5000",
            "http://",
            "http:///x",
            "http://a/?q=1",
            "http://u:p@host",
            "http://a b",
        ] {
            assert!(parse_base(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn segment_uris_resolve_against_the_playlist() {
        let o = HttpOrigin::new(
            "http://127.0.0.1:5000/live/",
            &StreamName::new("chessboard").unwrap(),
            Routes::First,
            "secret-token",
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(
            o.playlist_url(),
            "http://127.0.0.1:5000/live/video/chessboard.m3u8"
        );
        assert_eq!(
            o.resolve("chessboard7.ts").unwrap(),
            "http://127.0.0.1:5000/live/video/chessboard7.ts"
        );
        assert_eq!(
            o.resolve("/other/x.ts").unwrap(),
            "http://127.0.0.1:5000/other/x.ts"
        );
        assert_eq!(o.resolve("http://cdn/x.ts").unwrap(), "http://cdn/x.ts");
        assert!(o.resolve("https://cdn/x.ts").is_err());
        assert_eq!(o.markers_url(), "http://127.0.0.1:5000/live/markers");
        // The token never shows in Debug.
        assert!(!format!("{o:?}").contains("secret-token"));
    }

    #[test]
    fn a_named_stream_uses_its_own_routes() {
        let o = HttpOrigin::new(
            "http://127.0.0.1:5000",
            &StreamName::new("yard").unwrap(),
            Routes::Named,
            "secret-token",
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(o.playlist_url(), "http://127.0.0.1:5000/video/yard.m3u8");
        assert_eq!(
            o.markers_url(),
            "http://127.0.0.1:5000/streams/yard/markers"
        );
        assert_eq!(
            o.resolve("yard7.ts").unwrap(),
            "http://127.0.0.1:5000/video/yard7.ts"
        );
    }

    #[test]
    fn tokens() {
        assert!(check_token("abc-123_XYZ").is_ok());
        for bad in ["", "a b", "a\nb", "é"] {
            assert!(check_token(bad).is_err(), "{bad:?}");
        }
    }
}
