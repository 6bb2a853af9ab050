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

/// Checks a `--cors-origin` value and returns it in the form browsers send in `Origin`
/// (RFC 6454 §6.1): lowercase scheme and host, no default port, no path.
///
/// Accepts `http://host[:port]` and `https://host[:port]` with an optional trailing `/`.
/// Refuses `*`, `null`, paths, queries, fragments, user info and anything with whitespace.
pub(crate) fn parse_origin(s: &str) -> Result<String, String> {
    let err = |why: &str| Err(format!("--cors-origin {s:?}: {why}"));
    if s == "*" {
        return err("a wildcard is never allowed; name each origin, e.g. https://example.com");
    }
    let (scheme, rest) = match s.split_once("://") {
        Some((sc, rest)) if sc.eq_ignore_ascii_case("http") => ("http", rest),
        Some((sc, rest)) if sc.eq_ignore_ascii_case("https") => ("https", rest),
        _ => return err("must start with http:// or https://"),
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() {
        return err("has no host");
    }
    if authority.contains(['/', '?', '#', '@', '\\']) {
        return err("must be an origin only: no path, query, fragment or user info");
    }
    if !authority.bytes().all(|b| b.is_ascii_graphic()) {
        return err("must be printable ASCII (write an internationalised host in punycode)");
    }
    let authority = authority.to_ascii_lowercase();
    // Split a port off the end; an IPv6 literal keeps its brackets.
    let (host, port) = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => (&authority[..i], Some(&authority[i + 1..])),
        _ => (authority.as_str(), None),
    };
    if host.is_empty() || (host.starts_with('[') != host.ends_with(']')) {
        return err("has no valid host");
    }
    let default_port = if scheme == "http" { 80 } else { 443 };
    match port {
        None => Ok(format!("{scheme}://{host}")),
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n == default_port => Ok(format!("{scheme}://{host}")),
            Ok(n) if n > 0 && !p.starts_with('0') => Ok(format!("{scheme}://{host}:{n}")),
            _ => err("has an invalid port"),
        },
    }
}

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
