//! Command-line configuration: clap parses raw flags ([`Args`]: the server-wide [`ServerArgs`]
//! and one stream's [`StreamArgs`], flattened into one command line), [`Args::validate`] checks
//! every one of them, whatever else is set, and produces a [`Config`] every other part of the
//! program can trust. Nothing is touched (no directory created, no file deleted, no port bound)
//! before the whole command line has passed: a bad flag is an [`ErrorKind::InvalidArgument`]
//! error, exit code 2.
//!
//! A stream's flags are checked by [`StreamArgs::validate`], which does not depend on clap (a
//! configuration file's `[[stream]]` table, deserialized into [`StreamArgs`], goes through the
//! same checks); its [`StreamSettings`] and what the input reports ([`InputFormat`]) then make
//! the stream's one immutable [`Plan`] ([`StreamSettings::plan`]).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

use crate::error::{Error, ErrorKind};
use crate::input::Input;
use crate::name::{SegmentType, StreamName};
pub use crate::plan::{InputFormat, Plan, StreamSettings};
use crate::rtsp::RtspTransport;
use crate::time::{Duration90k, FrameRate, Pts};

pub(crate) const DEFAULT_BIND: &str = "127.0.0.1:5000";
pub(crate) const DEFAULT_SIZE: &str = "1280x720";
pub(crate) const DEFAULT_FPS: &str = "30";
pub(crate) const DEFAULT_HLS_TIME: f64 = 2.0;
pub(crate) const DEFAULT_LIST_SIZE: usize = 60;
pub(crate) const DEFAULT_OUT_DIR: &str = "video";
pub(crate) const DEFAULT_NAME: &str = "chessboard";
pub(crate) const DEFAULT_EVENT_MEAN: f64 = 20.0;
pub(crate) const DEFAULT_EVENT_DURATION: f64 = 2.0;
pub(crate) const DEFAULT_ROLL_SECONDS: f64 = 10.0;
/// The stream clock's PTS starts here: 1.4 s leaves room for the PCR to run ahead of the first
/// DTS (the muxer's PCR lead) without going negative.
pub const DEFAULT_PTS_OFFSET: Pts = Pts(126_000);

/// A live HLS streamer: synthetic video with a burnt-in timecode and timeline markers, encoded
/// to H.264, cut into MPEG-TS segments with a sliding-window playlist, and served over HTTP
/// with a player page.
#[derive(Debug, Clone, Parser)]
#[command(version, about, long_about = None)]
pub struct Args {
    /// Run the streams a TOML file describes (a `[server]` table with the server flags, one
    /// `[[stream]]` table per stream with the stream flags; see examples/streams.toml) instead
    /// of the one stream the flags describe. No other flag may be given with it. SIGHUP re-reads
    /// the file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub stream: StreamArgs,
}

/// The server-wide flags: one HTTP origin and one media directory for every stream (a
/// configuration file's `[server]` table).
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Address the HTTP server listens on.
    #[arg(long, default_value = DEFAULT_BIND)]
    pub bind: SocketAddr,

    /// Directory for segments and the playlist (created if missing).
    #[arg(long, default_value = DEFAULT_OUT_DIR)]
    pub out_dir: PathBuf,

    /// Allow cross-origin requests from this origin (repeatable). Off by default.
    #[arg(long = "cors-origin")]
    pub cors_origins: Vec<String>,

    /// Keep serving this many seconds after the stream ended (bounded run or first Ctrl-C),
    /// so players can fetch the final playlist with EXT-X-ENDLIST and the last segments.
    /// A signal during this time exits at once.
    #[arg(long, default_value_t = 0.0)]
    pub linger: f64,

    /// Do not start the HTTP server (write files only).
    #[arg(long)]
    pub no_server: bool,

    /// Serve `GET /metrics` (Prometheus text) on this address instead of --bind's, e.g. a
    /// private interface for the scraper (the HTTP address then answers it 404).
    #[arg(long, value_name = "ADDR")]
    pub metrics_bind: Option<SocketAddr>,

    /// Accept markers from outside (`POST /markers`) from clients that send
    /// `Authorization: Bearer TOKEN`. Off unless given; prefer the environment variable, which
    /// other users cannot read from the process list.
    #[arg(
        long,
        env = "HLS_MARKER_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub marker_token: Option<MarkerToken>,

    /// Most bytes of recorded segments kept in the output directory (500MB, 2GiB), all its
    /// streams together: continuous recording is deleted first, then the oldest clips.
    #[arg(long, default_value = "2GiB", value_parser = crate::recording::units::parse_size)]
    pub storage_max: u64,
}

/// The per-stream flags (a configuration file's `[[stream]]` table has the same keys):
/// [`StreamArgs::validate`] checks them without clap.
#[derive(Debug, Clone, clap::Args)]
pub struct StreamArgs {
    /// Where the pictures come from: `checkerboard` (the synthetic board with events and
    /// markers), `-` (YUV4MPEG2 on standard input, e.g. `ffmpeg ... -f yuv4mpegpipe - |
    /// hls-streamer --input -`), or the path of a YUV4MPEG2 file or FIFO. A Y4M input brings its
    /// own frame size and rate (its header's; `--fps` overrides the rate), is paced at its frame
    /// rate (`--no-pacing`: as fast as it can be read) and ends the stream at its end.
    /// `rtsp://[user:pass@]host[:port]/path`: an IP camera's H.264, passed through without
    /// re-encoding (segments cut at the camera's IDRs), or re-encoded with `--transcode`;
    /// credentials in the URL or in HLS_RTSP_USER / HLS_RTSP_PASSWORD, never logged.
    #[arg(long, default_value = "checkerboard", value_parser = crate::input::InputParser)]
    pub input: Input,

    /// Frame size WIDTHxHEIGHT of the checkerboard (even numbers, at most 3840x2160) [default:
    /// 1280x720]. Not with a Y4M input, whose header gives the size (nothing is scaled).
    #[arg(long)]
    pub size: Option<String>,

    /// Frame rate: an integer, a decimal, or a fraction such as 30000/1001 (29.97 means that)
    /// [default: 30, or a Y4M input's header rate, which this overrides].
    #[arg(long)]
    pub fps: Option<String>,

    /// Target segment duration in seconds; every segment opens with an IDR.
    #[arg(long, default_value_t = DEFAULT_HLS_TIME)]
    pub hls_time: f64,

    /// Segments in the live playlist (the DVR window is list-size x hls-time), at least 3.
    #[arg(long, default_value_t = DEFAULT_LIST_SIZE)]
    pub list_size: usize,

    /// Video bitrate in bit/s; accepts k and M suffixes (2500k, 2.5M). Default: scales with the
    /// frame size (about 2.5M at 1280x720x30).
    #[arg(long, value_parser = parse_bitrate)]
    pub bitrate: Option<u32>,

    /// Base name: playlist NAME.m3u8, segments NAME<seq>.ts.
    #[arg(long, default_value = DEFAULT_NAME)]
    pub name: String,

    /// Mean quiet time between events in seconds (exponentially distributed).
    #[arg(long, default_value_t = DEFAULT_EVENT_MEAN)]
    pub event_mean: f64,

    /// How long an event (mint top-left block) stays visible, in seconds.
    #[arg(long, default_value_t = DEFAULT_EVENT_DURATION)]
    pub event_duration: f64,

    /// Seed for the random events and noise; the same seed gives the same stream.
    #[arg(long)]
    pub seed: Option<u64>,

    /// Checkerboard block edge in pixels at 320 px width (scaled with the frame width).
    #[arg(long, default_value_t = crate::source::DEFAULT_BLOCK_SIZE)]
    pub block_size: u32,

    /// Seconds for the board to roll once across the frame.
    #[arg(long, default_value_t = DEFAULT_ROLL_SECONDS)]
    pub roll_seconds: f64,

    /// Standard deviation of Gaussian noise added to the board, in 8-bit levels (0 = off).
    #[arg(long, default_value_t = 0.0)]
    pub noise: f32,

    /// Media sequence number of the first segment (EXT-X-MEDIA-SEQUENCE).
    #[arg(long, default_value_t = 0)]
    pub start_number: u64,

    /// Remove this stream's old segments and playlist from --out-dir before starting, instead
    /// of continuing the old playlist after an EXT-X-DISCONTINUITY.
    #[arg(long)]
    pub fresh: bool,

    /// Stop after this many frames (then EXT-X-ENDLIST, and exit).
    #[arg(long, conflicts_with = "duration")]
    pub frames: Option<u64>,

    /// Stop after this many seconds of stream time (then EXT-X-ENDLIST, and exit).
    #[arg(long)]
    pub duration: Option<f64>,

    /// Produce frames as fast as the encoder takes them instead of in real time (for tests and
    /// benchmarks; frames keep their stream timestamps).
    #[arg(long)]
    pub no_pacing: bool,

    /// Low-latency HLS: length of a part in seconds, rounded to the nearest whole number of
    /// frames (at least one; 10 at 30 fps); shorter than --hls-time. Players hold back three
    /// parts: 1 s by default (0.2 s parts stall hls.js at 720p on two cores, see the README).
    #[arg(long, default_value_t = 0.333)]
    pub part_duration: f64,

    /// Classic HLS only: no parts, no blocking playlist reload, no delta updates (players then
    /// hold back three segments).
    #[arg(long)]
    pub no_low_latency: bool,

    /// The generator still paints its events but makes no markers for them: markers then come
    /// only from outside (a detector posting to /markers).
    #[arg(long)]
    pub no_builtin_markers: bool,

    /// How an RTSP camera's video travels: `tcp` (interleaved on the RTSP connection; works
    /// through NAT and firewalls) or `udp` (RTP and RTCP on ports of their own; LAN only).
    #[arg(long, value_enum, default_value_t = RtspTransport::Tcp)]
    pub rtsp_transport: RtspTransport,

    /// With an RTSP input: decode the camera's H.264, burn in the timecode and re-encode it with
    /// our fixed GOP (an IDR every --hls-time), so segments last exactly --hls-time whatever the
    /// camera's GOP. Costs a decode and an encode per frame; without it the camera's H.264 is
    /// passed through untouched.
    #[arg(long)]
    pub transcode: bool,

    /// Segment container, ffmpeg's names: `mpegts` (NAME<seq>.ts) or `fmp4` (fragmented MP4,
    /// CMAF-style: NAME<seq>.m4s after an init segment NAME<seq>.init.mp4 named by EXT-X-MAP;
    /// playlist EXT-X-VERSION 6). Not with an RTSP passthrough input yet (use --transcode).
    #[arg(long, value_enum, default_value_t = SegmentType::Mpegts)]
    pub segment_type: SegmentType,

    /// PTS of the first frame in 90 kHz ticks (e.g. 8589754592 to test the 33-bit wrap).
    #[arg(long, default_value_t = DEFAULT_PTS_OFFSET.as_u64(), hide_short_help = true)]
    pub pts_offset: u64,

    /// Keep continuous recording this long after segments leave the live playlist (45s, 30m,
    /// 1h, 7d; 0 keeps only what marker clips need). MPEG-TS streams only.
    #[arg(long, default_value = "1h", value_parser = crate::recording::units::parse_duration)]
    pub record_retention: std::time::Duration,

    /// Keep the segments of each marker's clip (5 s before to 10 s after it) this long after
    /// the marker.
    #[arg(long, default_value = "7d", value_parser = crate::recording::units::parse_duration)]
    pub clip_retention: std::time::Duration,

    /// Width in pixels of marker thumbnails (`/markers/{id}/thumbnail.jpg`), 16 to 1920.
    #[arg(long, default_value_t = crate::recording::thumbnail::DEFAULT_WIDTH)]
    pub thumbnail_width: u32,
}

/// The bearer token that `POST /markers` requires. Its `Debug` never shows it, so neither a
/// logged configuration nor a panic message can leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct MarkerToken(String);

impl MarkerToken {
    /// Shortest accepted token.
    pub(crate) const MIN_LEN: usize = 8;

    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for MarkerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MarkerToken(<redacted>)")
    }
}

impl std::str::FromStr for MarkerToken {
    type Err = String;
    /// A token is what a client puts after `Bearer `: 8 to 256 visible ASCII characters.
    fn from_str(s: &str) -> Result<Self, String> {
        if !(Self::MIN_LEN..=256).contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "a marker token must be {} to 256 visible ASCII characters, no spaces (for \
                 example: openssl rand -hex 16)",
                Self::MIN_LEN
            ));
        }
        Ok(MarkerToken(s.to_owned()))
    }
}

/// The validated command line: the server's settings and one stream's.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerSettings,
    pub stream: StreamSettings,
}

/// The validated server-wide flags.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub bind: SocketAddr,
    /// The media directory every stream writes into (file names carry the stream's name).
    pub out_dir: PathBuf,
    /// Normalised origins (`scheme://host[:port]`), see [`parse_origin`].
    pub cors_origins: Vec<String>,
    /// `POST /markers` needs this bearer token; `None`: the route is off (403).
    pub marker_token: Option<MarkerToken>,
    /// Seconds the HTTP server keeps serving after the stream ended.
    pub linger: std::time::Duration,
    pub serve: bool,
    /// `GET /metrics` on this address instead of `bind`'s.
    pub metrics_bind: Option<SocketAddr>,
    /// `--storage-max`: bytes of recorded segments in the output directory.
    pub storage_max: u64,
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidArgument, msg)
}

fn parse_bitrate(s: &str) -> Result<u32, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 1e3),
        Some((i, 'm' | 'M')) => (&s[..i], 1e6),
        _ => (s, 1.0),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("bad bitrate {s:?} (examples: 800000, 800k, 2.5M)"))?;
    let bps = v * mult;
    if !(10_000.0..=100_000_000.0).contains(&bps) {
        return Err(format!("bitrate {s:?} out of range (10k to 100M)"));
    }
    Ok(bps as u32)
}

fn secs_to_ticks(name: &str, secs: f64) -> Result<Duration90k, Error> {
    Duration90k::from_secs_f64(secs)
        .filter(|d| *d > Duration90k::ZERO)
        .ok_or_else(|| {
            invalid(format!(
                "--{name} must be a positive number of seconds, got {secs}"
            ))
        })
}

/// Parses `1280x720`.
pub fn parse_size(s: &str) -> Result<(usize, usize), Error> {
    parse_size_str(s).map_err(invalid)
}

fn parse_size_str(s: &str) -> Result<(usize, usize), String> {
    if s.trim().is_empty() {
        return Err("--size: expected WIDTHxHEIGHT, e.g. 1280x720".into());
    }
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("--size {s:?}: expected WIDTHxHEIGHT, e.g. 1280x720"))?;
    let w: usize = w
        .trim()
        .parse()
        .map_err(|_| format!("--size {s:?}: bad width"))?;
    let h: usize = h
        .trim()
        .parse()
        .map_err(|_| format!("--size {s:?}: bad height"))?;
    if w % 2 != 0 || h % 2 != 0 || w < 16 || h < 16 || w.max(h) > 3840 || w.min(h) > 2160 {
        return Err(format!(
            "--size {s:?}: H.264 4:2:0 needs even sizes from 16x16 up to 3840x2160"
        ));
    }
    Ok((w, h))
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

/// One `[[stream]]` table of a configuration file: the stream flags, and the stream's own marker
/// token (the server's when absent).
#[derive(Debug, Clone, clap::Args)]
struct StreamTable {
    #[command(flatten)]
    stream: StreamArgs,
    /// `POST` of this stream's markers requires this bearer token instead of the server's.
    #[arg(long, value_name = "TOKEN")]
    marker_token: Option<MarkerToken>,
}

/// A configuration file, checked: the server's settings and each stream's, in the file's order.
#[derive(Debug, Clone)]
pub struct FileConfig {
    pub server: ServerSettings,
    pub streams: Vec<StreamEntry>,
}

/// One stream of a configuration file.
#[derive(Debug, Clone)]
pub struct StreamEntry {
    pub settings: StreamSettings,
    /// Its own marker token, if its table has one.
    pub marker_token: Option<MarkerToken>,
    /// The table as a command line: a reload restarts a stream whose table changed.
    pub argv: Vec<String>,
}

impl StreamEntry {
    /// The table as the pipeline sees it: its command line without the marker token (a new
    /// token is taken without restarting the stream).
    pub fn pipeline_argv(&self) -> Vec<&str> {
        let mut out = Vec::with_capacity(self.argv.len());
        let mut args = self.argv.iter();
        while let Some(a) = args.next() {
            if a == "--marker-token" {
                args.next();
            } else if !a.starts_with("--marker-token=") {
                out.push(a.as_str());
            }
        }
        out
    }

    /// The stream's configuration as the pipeline takes it.
    pub fn config(&self, server: &ServerSettings) -> Config {
        Config {
            server: server.clone(),
            stream: self.settings.clone(),
        }
    }
}

impl FileConfig {
    /// Reads and checks the configuration file at `path`: every table, every key and every
    /// value, as the flags they stand for are checked, and the plan the flags alone give of each
    /// stream. Touches nothing. Every error names the file and the line (exit code 2).
    pub fn read(path: &std::path::Path) -> Result<FileConfig, Error> {
        use clap::{Args as _, Command, FromArgMatches as _};
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid(format!("--config {}: {e}", path.display())))?;
        let server_cmd = ServerArgs::augment_args(Command::new("[server]"));
        let stream_cmd = StreamTable::augment_args(Command::new("[[stream]]"));
        let file = crate::config_file::read(path, &text, &server_cmd, &stream_cmd, DEFAULT_NAME)?;
        // A value refused by the checks after clap names its flag (`--fps: ...`): the error
        // names that key's line, else the table's.
        let at = |table: &crate::config_file::TableArgs, what: &str, e: Error| {
            let msg = e.message();
            let flag = msg
                .split_whitespace()
                .find_map(|w| w.strip_prefix("--"))
                .map(|f| f.trim_end_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-'));
            let (line, key) = match flag.and_then(|f| table.line_of_flag(f)) {
                Some((key, line)) => (line, format!("key `{key}`: ")),
                None => (table.line, String::new()),
            };
            let place = match line {
                0 => path.display().to_string(),
                n => format!("{}:{n}", path.display()),
            };
            invalid(format!("{place}: {what}: {key}{msg}"))
        };
        let server = server_cmd
            .clone()
            .try_get_matches_from(&file.server.argv)
            .and_then(|m| ServerArgs::from_arg_matches(&m))
            .map_err(|e| file.server.locate(path, &e))?
            .validate()
            .map_err(|e| at(&file.server, "[server]", e))?;
        let mut streams = Vec::with_capacity(file.streams.len());
        for table in &file.streams {
            let args = stream_cmd
                .clone()
                .try_get_matches_from(&table.argv)
                .and_then(|m| StreamTable::from_arg_matches(&m))
                .map_err(|e| table.locate(path, &e))?;
            let what = format!("[[stream]] {:?}", args.stream.name);
            let settings = args.stream.validate().map_err(|e| at(table, &what, e))?;
            settings
                .plan(&server.out_dir, InputFormat::Flags)
                .map_err(|e| at(table, &what, e))?;
            streams.push((
                table.line,
                what,
                StreamEntry {
                    settings,
                    marker_token: args.marker_token,
                    argv: table.argv[1..].to_vec(),
                },
            ));
        }
        if streams.is_empty() {
            return Err(invalid(format!(
                "{}: no [[stream]] table: the file describes no stream",
                path.display()
            )));
        }
        // Standard input can feed one stream only.
        let stdin: Vec<_> = streams
            .iter()
            .filter(|(_, _, s)| {
                matches!(
                    s.settings.input(),
                    Input::Y4m(crate::input::Y4mInput::Stdin)
                )
            })
            .collect();
        if let [_, (line, what, _), ..] = &stdin[..] {
            return Err(invalid(format!(
                "{}:{line}: {what}: key `input`: standard input (\"-\") can feed one stream only",
                path.display()
            )));
        }
        Ok(FileConfig {
            server,
            streams: streams.into_iter().map(|(_, _, s)| s).collect(),
        })
    }
}

impl Args {
    /// Checks every flag (all of them, whatever `--no-server` or `--fresh` say) and builds the
    /// configuration. Touches nothing.
    pub fn validate(self) -> Result<Config, Error> {
        let stream = self.stream.validate()?;
        let server = self.server.validate()?;
        // What the flags alone settle (the checkerboard's plan) is checked now too: a
        // --part-duration or --hls-time that does not fit the frame rate is refused here.
        stream.plan(&server.out_dir, InputFormat::Flags)?;
        Ok(Config { server, stream })
    }
}

impl ServerArgs {
    /// Checks the server-wide flags. Touches nothing.
    pub fn validate(self) -> Result<ServerSettings, Error> {
        let cors_origins = self
            .cors_origins
            .iter()
            .map(|o| parse_origin(o).map_err(invalid))
            .collect::<Result<Vec<_>, _>>()?;
        if !(self.linger.is_finite() && (0.0..=86_400.0).contains(&self.linger)) {
            return Err(invalid("--linger must be between 0 and 86400 seconds"));
        }
        if let Some(m) = self.metrics_bind {
            if self.no_server {
                return Err(invalid(
                    "--metrics-bind needs the HTTP server: not with --no-server",
                ));
            }
            let same_port = m.port() != 0 && m.port() == self.bind.port();
            let overlap = m.ip() == self.bind.ip()
                || m.ip().is_unspecified()
                || self.bind.ip().is_unspecified();
            if same_port && overlap {
                return Err(invalid(format!(
                    "--metrics-bind {m} is --bind's address ({}): give it another port",
                    self.bind
                )));
            }
        }
        Ok(ServerSettings {
            bind: self.bind,
            out_dir: self.out_dir,
            cors_origins,
            marker_token: self.marker_token,
            linger: std::time::Duration::from_secs_f64(self.linger),
            serve: !self.no_server,
            metrics_bind: self.metrics_bind,
            storage_max: self.storage_max,
        })
    }
}

impl StreamArgs {
    /// Checks one stream's flags (clap's, or a configuration file's `[[stream]]` table) and
    /// gives its settings; what depends on the input's size and rate is checked again when the
    /// plan is made. Touches nothing; an error is [`ErrorKind::InvalidArgument`] (exit 2).
    pub fn validate(self) -> Result<StreamSettings, Error> {
        let y4m = matches!(self.input, Input::Y4m(_));
        if y4m && self.size.is_some() {
            return Err(invalid(
                "--size cannot be used with a Y4M --input: the frame size is the stream header's \
                 (nothing is scaled); drop --size",
            ));
        }
        let rtsp = matches!(self.input, Input::Rtsp(_));
        if rtsp && self.size.is_some() {
            return Err(invalid(
                "--size cannot be used with an RTSP --input: the frame size is the camera's \
                 (nothing is scaled); drop --size",
            ));
        }
        if self.transcode && !rtsp {
            return Err(invalid(
                "--transcode is for an RTSP --input (rtsp://...): the other inputs are always \
                 encoded by us",
            ));
        }
        let (width, height) = parse_size(self.size.as_deref().unwrap_or(DEFAULT_SIZE))?;
        let rate = self
            .fps
            .as_deref()
            .map(|fps| {
                let rate = FrameRate::parse(fps).map_err(|e| invalid(format!("--fps: {e}")))?;
                crate::plan::check_rate(rate)
                    .map_err(|e| invalid(format!("--fps: {}", e.message())))?;
                Ok::<_, Error>(rate)
            })
            .transpose()?;
        let segment = secs_to_ticks("hls-time", self.hls_time)?;
        if self.list_size < crate::playlist::MIN_LIST_SIZE {
            return Err(invalid(format!(
                "--list-size {} is too small: a live playlist must hold at least {} segments (RFC 8216 §6.3.3)",
                self.list_size,
                crate::playlist::MIN_LIST_SIZE
            )));
        }
        if self.segment_type == SegmentType::Fmp4 && rtsp && !self.transcode {
            return Err(invalid(
                "--segment-type fmp4 is not supported with an RTSP passthrough input yet: add \
                 --transcode, or use --segment-type mpegts",
            ));
        }
        let name = StreamName::new(&self.name)
            .map_err(|e| invalid(format!("--name: {e}")))?
            .with_segment_type(self.segment_type);
        if self.frames == Some(0) {
            return Err(invalid("--frames must be at least 1"));
        }
        let duration = self
            .duration
            .map(|d| secs_to_ticks("duration", d))
            .transpose()?;
        if !(self.noise.is_finite() && (0.0..=128.0).contains(&self.noise)) {
            return Err(invalid("--noise must be between 0 and 128"));
        }
        if self.block_size == 0 {
            return Err(invalid("--block-size must be positive"));
        }
        let thumbs =
            crate::recording::thumbnail::MIN_WIDTH..=crate::recording::thumbnail::MAX_WIDTH;
        if !thumbs.contains(&self.thumbnail_width) {
            return Err(invalid(format!(
                "--thumbnail-width {} must be from {} to {} pixels",
                self.thumbnail_width,
                thumbs.start(),
                thumbs.end()
            )));
        }
        let default_rate = FrameRate::parse(DEFAULT_FPS)?;
        Ok(StreamSettings {
            input: self.input,
            width,
            height,
            size_given: self.size.is_some(),
            rate,
            flags_rate: rate.unwrap_or(default_rate),
            segment,
            list_size: self.list_size,
            bitrate_bps: self.bitrate,
            name,
            event_mean: secs_to_ticks("event-mean", self.event_mean)?,
            event_duration: secs_to_ticks("event-duration", self.event_duration)?,
            seed: self.seed,
            block_size: self.block_size,
            roll: secs_to_ticks("roll-seconds", self.roll_seconds)?,
            noise_sigma: self.noise,
            start_number: self.start_number,
            fresh: self.fresh,
            frames: self.frames,
            duration,
            pacing: !self.no_pacing,
            pts_offset: Pts(self.pts_offset),
            builtin_markers: !self.no_builtin_markers,
            part_duration: {
                let d = secs_to_ticks("part-duration", self.part_duration)?;
                (!self.no_low_latency).then_some(d)
            },
            rtsp_transport: self.rtsp_transport,
            transcode: self.transcode,
            recording: crate::recording::RecordingSettings {
                record_retention: self.record_retention,
                clip_retention: self.clip_retention,
                thumbnail_width: self.thumbnail_width,
            },
        })
    }
}

impl Config {
    /// Parses and validates a command line (first element: the program name). clap's own
    /// errors (an unknown flag, `--help`) come back as [`ErrorKind::InvalidArgument`] with its
    /// text; the binary uses [`Args`] directly so that `--help` goes to stdout.
    pub fn from_args<I, T>(args: I) -> Result<Config, Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Args::try_parse_from(args)
            .map_err(|e| invalid(e.to_string()))?
            .validate()
    }

    /// The plan the flags alone give (the checkerboard's: the flags' size and rate).
    pub fn flags_plan(&self) -> Plan {
        self.stream
            .plan(&self.server.out_dir, InputFormat::Flags)
            .expect("checked by Args::validate")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(extra: &[&str]) -> Result<Config, Error> {
        Config::from_args(std::iter::once("hls-streamer").chain(extra.iter().copied()))
    }

    #[test]
    fn defaults_match_the_design() {
        let config = cfg(&[]).unwrap();
        let serve = config.server.serve;
        assert_eq!(config.server.bind.to_string(), "127.0.0.1:5000");
        let c = config.flags_plan();
        assert_eq!((c.width(), c.height()), (1280, 720));
        assert_eq!(c.rate(), FrameRate::new(30, 1).unwrap());
        assert_eq!(c.segment(), Duration90k::from_secs(2));
        assert_eq!(c.target_duration_secs(), 2);
        assert_eq!(c.gop_frames(), 60);
        assert_eq!(c.list_size(), 60);
        assert_eq!(c.name().as_str(), "chessboard");
        assert_eq!(c.out_dir(), PathBuf::from("video"));
        assert!(c.pacing() && serve && c.frame_limit().is_none());
        assert_eq!(c.name().segment_type(), SegmentType::Mpegts);
    }

    #[test]
    fn metrics_bind_is_checked_against_the_http_address() {
        assert_eq!(cfg(&[]).unwrap().server.metrics_bind, None);
        let ok = cfg(&["--metrics-bind", "127.0.0.1:9100"]).unwrap();
        assert_eq!(
            ok.server.metrics_bind,
            Some("127.0.0.1:9100".parse().unwrap())
        );
        // Port 0 twice: two ports the system picks.
        cfg(&["--bind", "127.0.0.1:0", "--metrics-bind", "127.0.0.1:0"]).unwrap();
        cfg(&[
            "--bind",
            "127.0.0.1:5000",
            "--metrics-bind",
            "127.0.0.2:5000",
        ])
        .unwrap();
        for (args, says) in [
            (
                &["--metrics-bind", "127.0.0.1:5000"][..],
                "--bind's address",
            ),
            (
                &["--bind", "0.0.0.0:8080", "--metrics-bind", "127.0.0.1:8080"][..],
                "--bind's address",
            ),
            (
                &["--metrics-bind", "127.0.0.1:9100", "--no-server"][..],
                "--no-server",
            ),
        ] {
            let e = cfg(args).expect_err(&format!("{args:?}"));
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{args:?}");
            assert!(e.to_string().contains(says), "{args:?}: {e}");
        }
        // Not an address: clap's own refusal (exit 2 from the binary).
        assert!(cfg(&["--metrics-bind", "localhost"]).is_err());
    }

    #[test]
    fn segment_type_takes_ffmpegs_names_only() {
        assert_eq!(
            cfg(&["--segment-type", "fmp4"])
                .unwrap()
                .stream
                .name()
                .segment_type(),
            SegmentType::Fmp4
        );
        assert_eq!(
            cfg(&["--segment-type", "mpegts"])
                .unwrap()
                .stream
                .name()
                .segment_type(),
            SegmentType::Mpegts
        );
        for bad in ["mp4", "cmaf", "FMP4", "ts", ""] {
            let e = cfg(&["--segment-type", bad]).expect_err(bad);
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{bad}");
            assert!(e.to_string().contains("fmp4"), "{bad}: {e}");
        }
        let e = cfg(&["--input", "rtsp://cam/x", "--segment-type", "fmp4"]).unwrap_err();
        assert!(e.to_string().contains("--transcode"), "{e}");
        cfg(&[
            "--input",
            "rtsp://cam/x",
            "--segment-type",
            "fmp4",
            "--transcode",
        ])
        .unwrap();
    }

    /// R13: at 29.97 fps a 2 s segment can last 2.033 s, so TARGETDURATION is 3.
    #[test]
    fn r13_target_duration_covers_non_aligned_frame_rates() {
        assert_eq!(
            cfg(&["--fps", "29.97"])
                .unwrap()
                .flags_plan()
                .target_duration_secs(),
            3
        );
        assert_eq!(
            cfg(&["--fps", "25", "--hls-time", "6"])
                .unwrap()
                .flags_plan()
                .target_duration_secs(),
            6
        );
        assert_eq!(
            cfg(&["--hls-time", "1.5"])
                .unwrap()
                .flags_plan()
                .target_duration_secs(),
            2
        );
        // 2.98 s at 30 fps: segments of 89 or 90 frames, never over 3 s.
        assert_eq!(
            cfg(&["--hls-time", "2.98"])
                .unwrap()
                .flags_plan()
                .target_duration_secs(),
            3
        );
        assert_eq!(
            cfg(&["--hls-time", "3.01"])
                .unwrap()
                .flags_plan()
                .target_duration_secs(),
            4
        );
    }

    #[test]
    fn bounded_runs() {
        assert_eq!(
            cfg(&["--duration", "4"])
                .unwrap()
                .flags_plan()
                .frame_limit(),
            Some(120)
        );
        assert_eq!(
            cfg(&["--frames", "7"]).unwrap().flags_plan().frame_limit(),
            Some(7)
        );
        assert!(cfg(&["--frames", "7", "--duration", "3"]).is_err());
    }

    #[test]
    fn rejects_bad_input_with_clear_messages() {
        let long_name = "a".repeat(100);
        for bad in [
            &["--size", "1281x720"][..],
            &["--size", "big"],
            &["--fps", "0"],
            &["--hls-time", "-1"],
            &["--hls-time", "NaN"],
            &["--list-size", "2"],
            &["--bitrate", "lots"],
            &["--name", "../x"],
            &["--name", "cam1"],
            &["--cors-origin", "*"],
            &["--cors-origin", "https://x.example/path"],
            &["--cors-origin", "x.example"],
            &["--name", &long_name],
            &["--name", "cam.1"],
            &["--no-server", "--name", &long_name],
            &["--no-server", "--cors-origin", "https://x.example/path"],
            &["--frames", "0"],
            &["--event-mean", "0"],
        ] {
            let e = cfg(bad).expect_err(&format!("{bad:?} must be rejected"));
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{bad:?}");
            assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn bitrate_suffixes() {
        assert_eq!(parse_bitrate("2500k"), Ok(2_500_000));
        assert_eq!(parse_bitrate("2.5M"), Ok(2_500_000));
        assert_eq!(parse_bitrate("800000"), Ok(800_000));
        assert!(parse_bitrate("5").is_err());
    }
}
