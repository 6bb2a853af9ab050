//! Cross-origin access (the Fetch standard's CORS protocol), off unless origins are named.
//!
//! With no `--cors-origin`, no CORS header is ever sent and `OPTIONS` is not a route (so it is a
//! `405`): browsers then allow only same-origin pages to read the stream. Each `--cors-origin`
//! adds one exact origin; a request whose `Origin` equals one of them gets
//! `Access-Control-Allow-Origin: <that origin>`. The wildcard `*` and credentials are never sent,
//! so cookies or HTTP auth of a viewer can never be used by another site.
//! `Vary: Origin` is sent on every response while CORS is on, so a shared cache never hands one
//! origin's answer to another.

use crate::error::{Error, ErrorKind};

/// Headers a cross-origin script may read besides the CORS-safelisted ones (hls.js reads the
/// length and range of what it loads).
pub(crate) const EXPOSE_HEADERS: &str = "Content-Length, Content-Range, Accept-Ranges";

/// Request headers a cross-origin script may send.
pub(crate) const ALLOW_HEADERS: &str = "Range";

/// How long a browser may cache a preflight answer, in seconds.
pub(crate) const PREFLIGHT_MAX_AGE_SECS: u32 = 600;

/// The origins allowed to read this server's responses from a script.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct CorsPolicy {
    origins: Vec<String>,
}

impl CorsPolicy {
    /// Builds a policy from `--cors-origin` values, each checked by [`parse_origin`].
    pub(crate) fn new<S: AsRef<str>>(origins: &[S]) -> Result<Self, Error> {
        let mut out: Vec<String> = Vec::with_capacity(origins.len());
        for o in origins {
            let o =
                parse_origin(o.as_ref()).map_err(|e| Error::new(ErrorKind::InvalidArgument, e))?;
            if !out.contains(&o) {
                out.push(o);
            }
        }
        Ok(CorsPolicy { origins: out })
    }

    pub(crate) fn is_enabled(&self) -> bool {
        !self.origins.is_empty()
    }

    /// Whether a request's `Origin` header value is one of the allowed origins.
    pub(crate) fn allows(&self, origin: &str) -> bool {
        self.origins.iter().any(|o| o == origin)
    }

    #[cfg(test)]
    fn origins(&self) -> &[String] {
        &self.origins
    }
}

/// The origin rule is the command line's: [`crate::config::parse_origin`].
pub(crate) use crate::config::parse_origin;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised_like_browsers_send_them() {
        for (given, want) in [
            ("https://example.com", "https://example.com"),
            ("https://Example.COM/", "https://example.com"),
            ("HTTP://localhost:8080", "http://localhost:8080"),
            ("https://example.com:443", "https://example.com"),
            ("http://example.com:80", "http://example.com"),
            ("http://[::1]:3000", "http://[::1]:3000"),
            ("http://[::1]", "http://[::1]"),
        ] {
            assert_eq!(parse_origin(given).as_deref(), Ok(want), "{given}");
        }
    }

    #[test]
    fn wildcards_paths_and_junk_are_refused() {
        for bad in [
            "*",
            "null",
            "example.com",
            "ftp://example.com",
            "https://",
            "https://example.com/path",
            "https://example.com?q",
            "https://example.com#f",
            "https://user@example.com",
            "https://exa mple.com",
            "https://example.com:0",
            "https://example.com:65536",
            "https://example.com:08080",
            "https://example.com:",
            "https://[::1",
            "https://a\\b",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_origin("*")
            .expect_err("wildcard")
            .contains("wildcard"));
    }

    #[test]
    fn policy_matches_exact_origins_only() {
        let p = CorsPolicy::new(&[
            "https://a.example",
            "https://a.example/",
            "http://b.example:81",
        ])
        .expect("valid");
        assert_eq!(p.origins().len(), 2, "duplicates are merged");
        assert!(p.is_enabled());
        assert!(p.allows("https://a.example"));
        assert!(p.allows("http://b.example:81"));
        assert!(!p.allows("http://a.example"));
        assert!(!p.allows("https://a.example.evil.com"));
        assert!(!p.allows("null"));
        assert!(!CorsPolicy::new::<&str>(&[]).expect("empty").is_enabled());
        assert!(CorsPolicy::new(&["*"]).is_err());
    }
}
