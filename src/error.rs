//! The crate's one error type: a kind that says what the caller can do about it, a message that
//! says what went wrong in words a person can act on, and the underlying cause.
//!
//! The kinds follow the gRPC status codes (as moonfire-nvr's `base::Error` does), so every edge
//! maps them once: the command line to an exit code ([`ErrorKind::exit_code`]), the HTTP server
//! to a status and a JSON body (`server::error`). Pure modules keep their own detail enums
//! (`playlist::PlaylistError`, `segmenter::SegmentError`, ...), which tests match on; each
//! converts into this type with the kind that fits it, in a `From` written beside the enum, so
//! this module imports nothing of the crate's (the bottom floor, docs/architecture.md).
//!
//! ```
//! use hls::error::{Error, ErrorKind};
//! let e = hls::err!(InvalidArgument, "--list-size {} is too small", 2);
//! assert_eq!(e.kind(), ErrorKind::InvalidArgument);
//! assert_eq!(e.to_string(), "--list-size 2 is too small");
//! ```

use std::fmt;

/// What kind of failure an [`Error`] is, and so who has to act on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The caller asked for something malformed or out of range: a bad flag, a bad query, a
    /// request body that does not parse. Exit code 2; HTTP 400.
    InvalidArgument,
    /// The thing asked for does not exist (or is not ours to show). HTTP 404.
    NotFound,
    /// A request or input exceeds a limit (a playlist over its size bound, a body too large).
    /// HTTP 413.
    ResourceExhausted,
    /// The operation is refused in the current state of the system (a feature that is off, a
    /// route that needs configuration). HTTP 403.
    FailedPrecondition,
    /// The request did not prove who sent it (a missing or wrong bearer token). HTTP 401.
    Unauthenticated,
    /// Not possible right now, may be possible later (no segment yet, the stream stalled).
    /// HTTP 503.
    Unavailable,
    /// The operating system refused or failed a read or write. HTTP 500.
    Io,
    /// A bug: an invariant of ours does not hold, a thread died. HTTP 500.
    Internal,
}

impl ErrorKind {
    /// The process exit code for an error of this kind that ends the program: 2 for anything
    /// the user can fix by changing the command line (nothing was touched), 1 otherwise.
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::InvalidArgument => 2,
            _ => 1,
        }
    }
}

/// An error of the crate: see the module documentation.
pub struct Error {
    kind: ErrorKind,
    msg: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    pub fn new(kind: ErrorKind, msg: impl Into<String>) -> Self {
        Error {
            kind,
            msg: msg.into(),
            source: None,
        }
    }

    /// Attaches the underlying cause; it is printed after the message.
    pub(crate) fn with_source(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// An I/O failure while doing `context` (e.g. "writing video/cam3.ts").
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::new(ErrorKind::Io, context).with_source(source)
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message without the cause, safe to show to an HTTP client (causes may name paths).
    pub(crate) fn message(&self) -> &str {
        &self.msg
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)?;
        if let Some(s) = &self.source {
            write!(f, ": {s}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {self}", self.kind)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

/// Builds an [`Error`]: `err!(Kind, "format {}", args)`.
#[macro_export]
macro_rules! err {
    ($kind:ident, $($fmt:tt)+) => {
        $crate::error::Error::new($crate::error::ErrorKind::$kind, format!($($fmt)+))
    };
}

/// Returns early with an [`Error`]: `bail!(Kind, "format {}", args)`.
#[macro_export]
macro_rules! bail {
    ($kind:ident, $($fmt:tt)+) => {
        return Err($crate::err!($kind, $($fmt)+))
    };
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_kind_and_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied");
        let e = Error::io("writing video/cam3.ts", io);
        assert_eq!(e.kind(), ErrorKind::Io);
        assert_eq!(e.to_string(), "writing video/cam3.ts: denied");
        assert_eq!(e.message(), "writing video/cam3.ts");
        assert!(std::error::Error::source(&e).is_some());
        assert_eq!(format!("{e:?}"), "Io: writing video/cam3.ts: denied");
        let e = crate::err!(InvalidArgument, "--fps {} is above {}", 500, 240);
        assert_eq!(e.to_string(), "--fps 500 is above 240");
        assert_eq!(e.kind().exit_code(), 2);
        assert_eq!(ErrorKind::Internal.exit_code(), 1);
    }
}
