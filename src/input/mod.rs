//! Where the pictures come from: `--input`.
//!
//! | `--input` | [`Input`] | source |
//! | --- | --- | --- |
//! | `checkerboard` (default) | [`Input::Checkerboard`] | the synthetic board ([`crate::source`]) |
//! | `-` | [`Input::Y4m`] with [`Y4mInput::Stdin`] | YUV4MPEG2 on standard input ([`y4m`]) |
//! | a path | [`Input::Y4m`] with [`Y4mInput::Path`] | YUV4MPEG2 from a file or a FIFO |
//! | `rtsp://[user:pass@]host[:port]/path` | [`Input::Rtsp`] | an RTSP camera ([`crate::rtsp`]): passthrough, or `--transcode` |
//!
//! Parsing checks the syntax only; nothing is opened. [`crate::pipeline::prepare`] opens the input
//! and reads a Y4M stream's header and first frame before anything else is touched (a bad input
//! is an [`crate::error::ErrorKind::InvalidArgument`] error, exit code 2). For an RTSP URL,
//! `prepare` splits the credentials off (the URL's, else `HLS_RTSP_USER`/`HLS_RTSP_PASSWORD`);
//! the connection is made on the pipeline's threads, so the HTTP server (and `/healthz`) is up
//! while a camera that cannot be reached is retried.
//!
//! Credentials never appear in a message: [`RtspUrl`]'s `Display` and `Debug` hide them, and
//! [`InputParser`] gives clap an error that shows the value with its credentials replaced by
//! `***` (clap's own would echo the whole value).

pub(crate) mod source_loop;
pub(crate) mod y4m;
pub(crate) mod y4m_source;

use std::fmt;
use std::path::PathBuf;

use crate::error::{Error, ErrorKind, Result};
use crate::rtsp::{Camera, RtspTransport};
use y4m::{Forever, Polled, Y4mError, Y4mReader};

/// The `--input` flag, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// The synthetic checkerboard with its events and markers.
    Checkerboard,
    /// A YUV4MPEG2 stream.
    Y4m(Y4mInput),
    /// An RTSP camera (`rtsp://`).
    Rtsp(RtspUrl),
}

/// Where a YUV4MPEG2 stream is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Y4mInput {
    /// `-`: standard input.
    Stdin,
    /// A regular file (paced at its frame rate unless `--no-pacing`) or a FIFO.
    Path(PathBuf),
}

impl Y4mInput {
    /// An error about this input: `--input clip.y4m: frame 3 ...`.
    pub(crate) fn error(&self, e: Y4mError) -> Error {
        let e = Error::from(e);
        Error::new(e.kind(), format!("--input {self}: {}", e.message()))
    }
}

impl fmt::Display for Y4mInput {
    /// As given on the command line: `-` or the path.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Y4mInput::Stdin => f.write_str("-"),
            Y4mInput::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

/// An input opened by [`crate::pipeline::prepare`], for the source thread.
pub(crate) enum Opened {
    Checkerboard,
    /// A Y4M stream whose header has been read ([`y4m_source::Y4mOpened::read_first`] reads
    /// its first frame once the stream's plan is made).
    Y4m(Box<y4m_source::Y4mOpened>),
    /// An RTSP camera, not connected yet (the pipeline connects, on its own thread).
    Rtsp(Camera),
}

/// Opens `input` and reads what must be known before anything else is touched: for a Y4M
/// stream its header (a FIFO waits here for its writer), which gives the frame size and perhaps
/// the rate. Errors are
/// [`ErrorKind::InvalidArgument`] (exit code 2) for anything wrong with the input itself.
pub(crate) fn open(input: &Input, transport: RtspTransport) -> Result<Opened> {
    match input {
        Input::Checkerboard => Ok(Opened::Checkerboard),
        Input::Rtsp(url) => {
            let camera = Camera::from_env(url.expose(), transport).map_err(|e| {
                // `e` never repeats the credentials (Camera::new's contract).
                Error::new(ErrorKind::InvalidArgument, format!("--input {url}: {e}"))
            })?;
            Ok(Opened::Rtsp(camera))
        }
        Input::Y4m(input) => {
            let file = Polled::open(input).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidArgument,
                    format!("--input {input}: cannot open it"),
                )
                .with_source(e)
            })?;
            let reader = Y4mReader::new(file, &mut Forever).map_err(|e| input.error(e))?;
            Ok(Opened::Y4m(Box::new(y4m_source::Y4mOpened {
                input: input.clone(),
                reader,
            })))
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct RtspUrl {
    url: String,
    /// Byte range of `user:pass` in `url`, if any.
    credentials: Option<(usize, usize)>,
}

impl RtspUrl {
    /// Checks `rtsp://[user[:pass]@]host[:port][/path]`: a host, a numeric port if any, no
    /// whitespace or control characters.
    pub fn parse(s: &str) -> Result<RtspUrl, String> {
        const SCHEME: &str = "rtsp://";
        if !s
            .get(..SCHEME.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(SCHEME))
        {
            return Err("an RTSP input starts with rtsp://".into());
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("an RTSP URL has no spaces or control characters".into());
        }
        let rest = &s[SCHEME.len()..];
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        let (credentials, host_port) = match authority.rfind('@') {
            Some(at) => (
                Some((SCHEME.len(), SCHEME.len() + at)),
                &authority[at + 1..],
            ),
            None => (None, authority),
        };
        let (host, port) = match host_port.strip_prefix('[') {
            // An IPv6 literal: [::1]:554
            Some(v6) => {
                let close = v6
                    .find(']')
                    .ok_or("an IPv6 host needs its closing bracket")?;
                (&v6[..close], v6[close + 1..].strip_prefix(':'))
            }
            None => match host_port.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (host_port, None),
            },
        };
        if host.is_empty() {
            return Err("an RTSP URL needs a host: rtsp://[user:pass@]host[:port]/path".into());
        }
        if let Some(p) = port {
            if p.parse::<u16>().map_or(true, |p| p == 0) {
                return Err(format!("bad port {p:?} (1 to 65535)"));
            }
        }
        Ok(RtspUrl {
            url: s.to_owned(),
            credentials,
        })
    }

    /// The URL as given, credentials included: for the RTSP client only, never for a message.
    pub(crate) fn expose(&self) -> &str {
        &self.url
    }
}

impl fmt::Display for RtspUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.credentials {
            Some((from, to)) => write!(f, "{}***{}", &self.url[..from], &self.url[to..]),
            None => f.write_str(&self.url),
        }
    }
}

impl fmt::Debug for RtspUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RtspUrl({self})")
    }
}

/// `s` with the user info of an `rtsp://user:pass@host/...` URL replaced by `***`; anything
/// else unchanged. For messages about a value that did not parse (so cannot be an [`RtspUrl`]).
pub(crate) fn redact_credentials(s: &str) -> String {
    let Some(scheme_end) = s.find("://") else {
        return s.to_owned();
    };
    let rest = &s[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &s[..scheme_end + 3], &rest[at..]),
        None => s.to_owned(),
    }
}

/// clap's parser for `--input`: [`Input::from_str`], with an error that shows the value with
/// its credentials hidden ([`redact_credentials`]); clap's default error repeats the raw value.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct InputParser;

impl clap::builder::TypedValueParser for InputParser {
    type Value = Input;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> std::result::Result<Input, clap::Error> {
        let fail = |shown: String, why: String| {
            let name = arg.map_or_else(|| "--input".to_owned(), |a| a.to_string());
            let mut cmd = cmd.clone();
            cmd.error(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid value '{shown}' for '{name}': {why}"),
            )
        };
        let Some(s) = value.to_str() else {
            let lossy = value.to_string_lossy();
            return Err(fail(
                redact_credentials(&lossy),
                "not valid UTF-8".to_owned(),
            ));
        };
        s.parse::<Input>()
            .map_err(|why| fail(redact_credentials(s), why))
    }
}

impl std::str::FromStr for Input {
    type Err = String;

    /// `checkerboard`, `-`, `rtsp://...`, or a path. Any other `scheme://` is refused, so a
    /// URL is never taken for a file name.
    fn from_str(s: &str) -> Result<Input, String> {
        match s {
            "" => Err("empty --input (checkerboard, -, a Y4M file or FIFO, or rtsp://...)".into()),
            "checkerboard" => Ok(Input::Checkerboard),
            "-" => Ok(Input::Y4m(Y4mInput::Stdin)),
            _ if s.len() >= 7 && s[..7].eq_ignore_ascii_case("rtsp://") => {
                RtspUrl::parse(s).map(Input::Rtsp)
            }
            _ => match s.split_once("://") {
                Some((scheme, _))
                    if !scheme.is_empty()
                        && scheme
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
                {
                    Err(format!(
                        "unsupported input URL scheme {scheme}:// (inputs: checkerboard, -, a Y4M \
                         file or FIFO, rtsp://)"
                    ))
                }
                _ => Ok(Input::Y4m(Y4mInput::Path(PathBuf::from(s)))),
            },
        }
    }
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Checkerboard => f.write_str("checkerboard"),
            Input::Y4m(Y4mInput::Stdin) => f.write_str("the Y4M input on standard input"),
            Input::Y4m(Y4mInput::Path(p)) => write!(f, "the Y4M input {}", p.display()),
            Input::Rtsp(url) => write!(f, "the RTSP input {url}"),
        }
    }
}

/// Exposed for `tests/alloc.rs` (a test binary of its own, with a counting allocator): the Y4M
/// reader the source thread uses, over any [`std::io::Read`].
#[doc(hidden)]
pub mod testutil {
    use super::y4m::{Forever, Frame, Y4mReader};
    use crate::frame::YuvFrame;

    pub struct Y4mFrames<R>(Y4mReader<R>);

    impl<R: std::io::Read> Y4mFrames<R> {
        /// Reads and checks the stream header.
        pub fn new(input: R) -> Result<Self, String> {
            Y4mReader::new(input, &mut Forever)
                .map(Y4mFrames)
                .map_err(|e| e.to_string())
        }

        /// The header's frame size.
        pub fn size(&self) -> (usize, usize) {
            (self.0.format().width, self.0.format().height)
        }

        /// The next frame into `dst`, chroma converted to 4:2:0; `false` at the end.
        pub fn read(&mut self, dst: &mut YuvFrame) -> Result<bool, String> {
            match self.0.read_frame(dst, &mut Forever) {
                Ok(f) => Ok(f == Frame::Read),
                Err(e) => Err(e.to_string()),
            }
        }

        /// The next frame read and thrown away (the source's dropped frame); `false` at the end.
        pub fn skip(&mut self) -> Result<bool, String> {
            match self.0.skip_frame(&mut Forever) {
                Ok(f) => Ok(f == Frame::Read),
                Err(e) => Err(e.to_string()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Input, String> {
        s.parse()
    }

    #[test]
    fn each_form_parses() {
        assert_eq!(parse("checkerboard"), Ok(Input::Checkerboard));
        assert_eq!(parse("-"), Ok(Input::Y4m(Y4mInput::Stdin)));
        assert_eq!(
            parse("clip.y4m"),
            Ok(Input::Y4m(Y4mInput::Path("clip.y4m".into())))
        );
        assert_eq!(
            parse("/tmp/a fifo"),
            Ok(Input::Y4m(Y4mInput::Path("/tmp/a fifo".into())))
        );
        // A file called like a word is a file; only the exact keyword is the board.
        assert_eq!(
            parse("Checkerboard"),
            Ok(Input::Y4m(Y4mInput::Path("Checkerboard".into())))
        );
        for url in [
            "rtsp://cam/stream",
            "rtsp://cam",
            "RTSP://cam.local:8554/live?x=1",
            "rtsp://user:pa:ss@10.0.0.2:554/h264",
            "rtsp://[::1]:8554/test",
        ] {
            assert!(
                matches!(parse(url), Ok(Input::Rtsp(_))),
                "{url}: {:?}",
                parse(url)
            );
        }
    }

    #[test]
    fn bad_forms_are_refused_with_a_reason() {
        for bad in [
            "",
            "rtsp://",
            "rtsp:///path",
            "rtsp://user@/path",
            "rtsp://cam:0/x",
            "rtsp://cam:99999/x",
            "rtsp://cam:port/x",
            "rtsp://cam/a b",
            "rtsp://[::1/x",
            "http://cam/stream.y4m",
            "file:///tmp/x.y4m",
        ] {
            let e = parse(bad).expect_err(bad);
            assert!(!e.is_empty(), "{bad}");
        }
    }

    #[test]
    fn redaction_hides_user_info_only() {
        assert_eq!(
            redact_credentials("rtsp://admin:s3cret@cam:99999/x@y"),
            "rtsp://***@cam:99999/x@y"
        );
        assert_eq!(redact_credentials("rtsp://cam/a@b"), "rtsp://cam/a@b");
        assert_eq!(redact_credentials("rtsp://u:p@"), "rtsp://***@");
        assert_eq!(redact_credentials("clip.y4m"), "clip.y4m");
        assert_eq!(
            redact_credentials("http://u:pw@host/x"),
            "http://***@host/x"
        );
    }

    #[test]
    fn clap_errors_never_echo_a_password() {
        // The flag as the command line declares it (config.rs), without importing config.
        let cmd = clap::Command::new("hls-streamer").arg(
            clap::Arg::new("input")
                .long("input")
                .value_parser(InputParser),
        );
        for bad in [
            "rtsp://admin:s3cret@cam:99999/live",
            "rtsp://admin:s3cret@/live",
            "rtsp://admin:s3cret@cam/a b",
            "http://admin:s3cret@cam/live",
        ] {
            let e = cmd
                .clone()
                .try_get_matches_from(["hls-streamer", "--input", bad])
                .expect_err(bad)
                .to_string();
            assert!(!e.contains("s3cret") && !e.contains("admin"), "{bad}: {e}");
            assert!(
                e.contains("***@"),
                "{bad}: the value is shown redacted: {e}"
            );
            assert!(e.contains("--input"), "{bad}: {e}");
        }
    }

    #[test]
    fn credentials_never_show() {
        let Ok(Input::Rtsp(url)) = parse("rtsp://admin:s3cret@cam:554/live") else {
            panic!("parses")
        };
        assert_eq!(url.to_string(), "rtsp://***@cam:554/live");
        assert_eq!(format!("{url:?}"), "RtspUrl(rtsp://***@cam:554/live)");
        assert_eq!(
            Input::Rtsp(url.clone()).to_string(),
            "the RTSP input rtsp://***@cam:554/live"
        );
        assert_eq!(url.expose(), "rtsp://admin:s3cret@cam:554/live");
        // An @ in the path is not a credential.
        let Ok(Input::Rtsp(url)) = parse("rtsp://cam/a@b") else {
            panic!("parses")
        };
        assert_eq!(url.to_string(), "rtsp://cam/a@b");
    }
}
