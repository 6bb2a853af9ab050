//! An RTSP camera as a source: retina's client (RFC 2326) on a small current-thread tokio
//! runtime of its own, handing the camera's H.264 access units to the segmenter through a
//! bounded channel; [`passthrough`] places them in time and cuts segments.
//!
//! ```text
//!  rtsp thread (tokio current_thread)                         segmenter thread
//!  DESCRIBE, SETUP (H.264, TCP interleaved or UDP), PLAY  ->  Passthrough -> TS mux, cut, publish
//!  retina FrameFormat::SIMPLE: Annex B, SPS/PPS on IDRs       (Event channel, bounded)
//!  RTCP sender reports -> the camera's wall clock per frame
//!  dropped / refused / stalled: Event::Down, back off, reconnect
//! ```
//!
//! The HTTP server's runtime is never touched: this thread owns its runtime and blocks only
//! itself. Faults: the camera unreachable, dropping the session or going quiet for
//! [`STALL`] (a TCP stall) end the connection; the client reconnects with capped exponential
//! back-off ([`BACKOFF_START`] doubling to [`BACKOFF_MAX`]) and logs once per change of state,
//! never per retry. What cannot get better by retrying ends the stream with an error that says
//! what to change: a codec other than H.264, no video stream, wrong credentials before the first
//! frame ever arrived.
//!
//! Credentials come from the URL (`rtsp://user:pass@host/path`) or, when it has none, from
//! `HLS_RTSP_USER` / `HLS_RTSP_PASSWORD`. They are split off the URL at once ([`Camera::new`]),
//! so neither retina's messages nor ours can contain them: [`Camera`]'s `Display` is the URL
//! without them (`rtsp://***@host/path` when there are some).

pub(crate) mod passthrough;
pub(crate) mod transcode;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use futures_util::StreamExt;
use retina::client::{PlayOptions, SessionOptions, SetupOptions, TeardownPolicy};
use retina::codec::{CodecItem, FrameFormat};
use tracing::{debug, info, warn};

use crate::clock::WallClock;
use crate::error::{Error, ErrorKind, Result};

/// The environment variables for credentials when the URL has none.
pub const USER_ENV: &str = "HLS_RTSP_USER";
pub const PASSWORD_ENV: &str = "HLS_RTSP_PASSWORD";

/// No video for this long on an open session: the connection is stalled, reconnect.
pub const STALL: Duration = Duration::from_secs(5);
/// First wait before a reconnection attempt; doubles per failed attempt up to [`BACKOFF_MAX`].
pub const BACKOFF_START: Duration = Duration::from_millis(250);
pub const BACKOFF_MAX: Duration = Duration::from_secs(8);
/// Longest wait for DESCRIBE, SETUP and PLAY together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a blocked wait looks at the stop flag.
const POLL: Duration = Duration::from_millis(100);
/// A TCP session's pause once it has taken every frame that had arrived (see [`session`]):
/// fewer wake-ups of this thread and of the segmenter, for at most this much more latency.
const BATCH: Duration = Duration::from_millis(100);

/// How RTP reaches us.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum RtspTransport {
    /// Interleaved on the RTSP TCP connection (works through NAT and firewalls).
    #[default]
    Tcp,
    /// RTP and RTCP on UDP ports of their own (LAN only: no reordering buffer).
    Udp,
}

impl fmt::Display for RtspTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RtspTransport::Tcp => "tcp",
            RtspTransport::Udp => "udp",
        })
    }
}

/// A camera to connect to: the URL without credentials, the credentials apart.
#[derive(Clone)]
pub struct Camera {
    url: url::Url,
    creds: Option<(String, String)>,
    transport: RtspTransport,
    /// Over TCP, sleep [`BATCH`] once every arrived frame is taken (see [`session`]).
    batch: bool,
}

impl Camera {
    /// Parses `rtsp://[user[:pass]@]host[:port]/path`. `env_user` / `env_password` (the values
    /// of [`USER_ENV`] / [`PASSWORD_ENV`]) are used when the URL carries no user. Errors never
    /// repeat the URL's credentials.
    pub fn new(
        url: &str,
        env_user: Option<String>,
        env_password: Option<String>,
        transport: RtspTransport,
    ) -> std::result::Result<Camera, String> {
        let mut parsed = url::Url::parse(url).map_err(|e| {
            format!("not a valid rtsp:// URL ({e}): expected rtsp://[user:pass@]host[:port]/path")
        })?;
        if parsed.scheme() != "rtsp" {
            return Err(format!(
                "{}:// is not supported: the camera's URL starts with rtsp://",
                parsed.scheme()
            ));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err("the rtsp:// URL needs a host".into());
        }
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| "the URL's user name or password is not UTF-8".to_string())
        };
        let from_url = if parsed.username().is_empty() {
            None
        } else {
            Some((
                decode(parsed.username())?,
                decode(parsed.password().unwrap_or(""))?,
            ))
        };
        // Nothing of them stays in the URL anyone sees.
        let _ = parsed.set_username("");
        let _ = parsed.set_password(None);
        let creds = match (from_url, env_user) {
            (Some(c), _) => Some(c),
            (None, Some(user)) if !user.is_empty() => {
                Some((user, env_password.unwrap_or_default()))
            }
            (None, _) if env_password.is_some() => {
                return Err(format!(
                    "{PASSWORD_ENV} is set but {USER_ENV} is not: give both, or neither"
                ))
            }
            (None, _) => None,
        };
        Ok(Camera {
            url: parsed,
            creds,
            transport,
            batch: true,
        })
    }

    /// [`Camera::new`] with the credentials' environment variables.
    pub fn from_env(url: &str, transport: RtspTransport) -> std::result::Result<Camera, String> {
        Camera::new(
            url,
            std::env::var(USER_ENV).ok(),
            std::env::var(PASSWORD_ENV).ok(),
            transport,
        )
    }

    pub fn transport(&self) -> RtspTransport {
        self.transport
    }

    /// Whether frames are taken in batches over TCP (the default; see [`BATCH`]). `--transcode`
    /// turns it off: its decoder and encoder take each frame as it comes, and bursts would
    /// overrun their small buffer pool.
    pub fn set_batching(&mut self, batch: bool) {
        self.batch = batch;
    }

    fn retina_creds(&self) -> Option<retina::client::Credentials> {
        self.creds
            .as_ref()
            .map(|(username, password)| retina::client::Credentials {
                username: username.clone(),
                password: password.clone(),
            })
    }
}

impl fmt::Display for Camera {
    /// The URL without credentials; `***@` where they were.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = self.url.as_str();
        match (&self.creds, url.strip_prefix("rtsp://")) {
            (Some(_), Some(rest)) => write!(f, "rtsp://***@{rest}"),
            _ => f.write_str(url),
        }
    }
}

impl fmt::Debug for Camera {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Camera({self}, {})", self.transport)
    }
}

/// One access unit from the camera.
#[derive(Clone, Debug)]
pub(crate) struct CameraFrame {
    /// Annex B, SPS and PPS in front of every IDR (retina's `FrameFormat::SIMPLE`).
    pub(crate) data: Vec<u8>,
    /// RTP timestamp in 90 kHz ticks since the session's start, unwrapped.
    pub(crate) rtp: i64,
    /// An IDR (random access point).
    pub(crate) keyframe: bool,
    /// The camera's wall clock for the frame (Unix ms): from its RTCP sender reports, else the
    /// frame's arrival.
    pub(crate) wall_unix_ms: i64,
    /// The camera's wall clock for the frame by its newest RTCP sender report, in 90 kHz ticks
    /// since the Unix epoch (unrounded); `None` before the session's first report.
    pub(crate) sender_wall: Option<i64>,
}

/// What the RTSP thread tells the segmenter.
#[derive(Debug)]
pub(crate) enum Event {
    /// A session is playing.
    Connected {
        width: u32,
        height: u32,
        /// Frame rate from the SPS, if it says.
        fps: Option<f64>,
    },
    Frame(CameraFrame),
    /// The session ended (the reason says how); the client is reconnecting.
    Down {
        reason: String,
    },
}

/// How a session ended.
enum Ended {
    /// `stop` was set or the segmenter is gone.
    Stopped,
    /// Retrying cannot help.
    Fatal(Error),
    /// Reconnect; `played` says whether the session got as far as a frame.
    Failed { reason: String, played: bool },
}

/// The first line of a retina error (the rest is connection context for debugging).
fn first_line(e: &retina::Error) -> String {
    let s = e.to_string();
    s.lines().next().unwrap_or("").trim().to_owned()
}

/// Runs the camera client on the calling thread until `stop` is set, the receiver of `out` is
/// dropped, or an error retrying cannot fix (returned). Blocks; the pipeline gives it a thread.
pub(crate) fn run_client(camera: Camera, out: Sender<Event>, stop: Arc<AtomicBool>) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the RTSP client's runtime", e))?;
    rt.block_on(client_loop(camera, out, stop))
}

async fn client_loop(camera: Camera, out: Sender<Event>, stop: Arc<AtomicBool>) -> Result<()> {
    let mut backoff = BACKOFF_START;
    let mut ever_played = false;
    // The reason logged last while down: a retry failing the same way is not logged again.
    let mut logged: Option<String> = None;
    let mut down_since: Option<Instant> = None;
    let mut attempts = 0u64;
    info!(camera = %camera, transport = %camera.transport, "connecting to the camera");
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        attempts += 1;
        match session(&camera, &out, &stop, ever_played, down_since.is_some()).await {
            Ended::Stopped => return Ok(()),
            Ended::Fatal(e) => return Err(e),
            Ended::Failed { reason, played } => {
                if played {
                    ever_played = true;
                    backoff = BACKOFF_START;
                    down_since = None;
                    logged = None;
                }
                if down_since.is_none() {
                    down_since = Some(Instant::now());
                    attempts = 0;
                    if out
                        .send(Event::Down {
                            reason: reason.clone(),
                        })
                        .is_err()
                    {
                        return Ok(());
                    }
                }
                if logged.as_deref() != Some(reason.as_str()) {
                    warn!(
                        camera = %camera,
                        "camera {}: {reason}; reconnecting (back-off {} ms doubling to {} s)",
                        if ever_played { "down" } else { "unreachable" },
                        BACKOFF_START.as_millis(),
                        BACKOFF_MAX.as_secs()
                    );
                    logged = Some(reason);
                } else {
                    debug!(camera = %camera, attempts, "still down");
                }
            }
        }
        // Back off, looking at the stop flag.
        let until = Instant::now() + backoff;
        while Instant::now() < until {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            tokio::time::sleep(POLL.min(until - Instant::now())).await;
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// One connection: DESCRIBE, SETUP, PLAY, then frames until it ends.
async fn session(
    camera: &Camera,
    out: &Sender<Event>,
    stop: &AtomicBool,
    ever_played: bool,
    was_down: bool,
) -> Ended {
    let started = Instant::now();
    let playing = match tokio::time::timeout(CONNECT_TIMEOUT, connect(camera, ever_played)).await {
        Err(_) => {
            return Ended::Failed {
                reason: format!(
                    "no answer to DESCRIBE/SETUP/PLAY within {} s",
                    CONNECT_TIMEOUT.as_secs()
                ),
                played: false,
            }
        }
        Ok(Err(ended)) => return ended,
        Ok(Ok(p)) => p,
    };
    let (mut session, connected) = playing;
    if was_down {
        info!(camera = %camera, "camera back: playing again");
    } else {
        info!(
            camera = %camera,
            size = format!("{}x{}", connected.0, connected.1),
            fps = connected.2,
            setup_ms = started.elapsed().as_millis() as u64,
            "camera playing"
        );
    }
    if out
        .send(Event::Connected {
            width: connected.0,
            height: connected.1,
            fps: connected.2,
        })
        .is_err()
    {
        return Ended::Stopped;
    }
    let mut played = false;
    let mut last_frame = Instant::now();
    // The newest sender report: (its NTP time in 90 kHz ticks since the Unix epoch, its RTP
    // time in ticks since start). Each report replaces the last: a camera whose RTP clock runs
    // off its wall clock is followed (passthrough steers its stream time to it).
    let mut sender_report: Option<(i64, i64)> = None;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ended::Stopped;
        }
        // What has arrived is taken at once; once drained, a TCP session sleeps a little before
        // it looks again, so one wake-up takes several frames instead of one per frame
        // (interleaved RTP waits in the kernel's TCP buffer meanwhile; UDP's could overflow).
        // The sleep blocks the thread, not just this task: the runtime is this thread's alone
        // and has nothing else to do, and a task-level sleep would still wake the thread for
        // every packet the reactor sees arrive.
        let ready = futures_util::FutureExt::now_or_never(session.next());
        if ready.is_none() && camera.batch && camera.transport == RtspTransport::Tcp {
            std::thread::sleep(BATCH);
        }
        let next = async {
            match ready {
                Some(item) => item,
                None => session.next().await,
            }
        };
        let item = match tokio::time::timeout(POLL, next).await {
            Err(_) => {
                if last_frame.elapsed() >= STALL {
                    return Ended::Failed {
                        reason: format!("no video for {} s (stalled)", STALL.as_secs()),
                        played,
                    };
                }
                continue;
            }
            Ok(None) => {
                return Ended::Failed {
                    reason: "the camera ended the session".into(),
                    played,
                }
            }
            Ok(Some(Err(e))) => {
                debug!(error = %e, "RTSP session error");
                return Ended::Failed {
                    reason: first_line(&e),
                    played,
                };
            }
            Ok(Some(Ok(item))) => item,
        };
        match item {
            CodecItem::VideoFrame(f) => {
                last_frame = Instant::now();
                played = true;
                let rtp = f.timestamp().elapsed();
                let sender_wall = sender_report.map(|(ntp, sr_rtp)| ntp + (rtp - sr_rtp));
                let wall_unix_ms = match sender_wall {
                    Some(ticks) => ticks.div_euclid(90),
                    None => WallClock::now().unix_millis(),
                };
                let frame = CameraFrame {
                    keyframe: f.is_random_access_point(),
                    data: f.into_data(),
                    rtp,
                    wall_unix_ms,
                    sender_wall,
                };
                if out.send(Event::Frame(frame)).is_err() {
                    return Ended::Stopped;
                }
            }
            CodecItem::Rtcp(rtcp) => {
                let (Some(ts), Some(Ok(Some(sr)))) = (
                    rtcp.rtp_timestamp(),
                    rtcp.pkts().next().map(|p| p.as_sender_report()),
                ) else {
                    continue;
                };
                let ntp = sr.ntp_timestamp().0.wrapping_sub(retina::UNIX_EPOCH.0);
                let ticks = ((ntp >> 32) * crate::time::TICKS_PER_SEC
                    + (((ntp & 0xFFFF_FFFF) * crate::time::TICKS_PER_SEC) >> 32))
                    as i64;
                if sender_report.is_none() {
                    let offset = ticks / 90 - WallClock::now().unix_millis();
                    debug!(
                        camera_clock_offset_ms = offset,
                        "first RTCP sender report: frame times from the camera's clock"
                    );
                }
                sender_report = Some((ticks, ts.elapsed()));
            }
            _ => {}
        }
    }
}

/// DESCRIBE, pick the video stream (H.264 only), SETUP, PLAY. Returns the playing session and
/// (width, height, fps) from the stream's parameters.
async fn connect(
    camera: &Camera,
    ever_played: bool,
) -> std::result::Result<(retina::client::Demuxed, (u32, u32, Option<f64>)), Ended> {
    let failed = |e: retina::Error| {
        let reason = first_line(&e);
        if e.status_code() == Some(401) && !ever_played {
            Ended::Fatal(Error::new(
                ErrorKind::Unauthenticated,
                format!(
                    "camera {camera}: the camera refused the credentials ({reason}); give them in \
                     the URL (rtsp://user:pass@host/path) or in {USER_ENV} / {PASSWORD_ENV}"
                ),
            ))
        } else {
            Ended::Failed {
                reason,
                played: false,
            }
        }
    };
    let opts = SessionOptions::default()
        .creds(camera.retina_creds())
        .user_agent(format!("hls-streamer/{}", env!("CARGO_PKG_VERSION")))
        .teardown(TeardownPolicy::Auto);
    let mut described = retina::client::Session::describe(camera.url.clone(), opts)
        .await
        .map_err(failed)?;
    let streams = described.streams();
    let Some(i) = streams.iter().position(|s| s.media() == "video") else {
        let found: Vec<String> = streams
            .iter()
            .map(|s| format!("{}/{}", s.media(), s.encoding_name()))
            .collect();
        return Err(Ended::Fatal(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "camera {camera}: no video stream in its description (found: {})",
                if found.is_empty() {
                    "nothing".into()
                } else {
                    found.join(", ")
                }
            ),
        )));
    };
    let codec = streams[i].encoding_name().to_ascii_lowercase();
    if codec != "h264" {
        let name = match codec.as_str() {
            "h265" => "H.265 (HEVC)".to_string(),
            "jpeg" => "Motion JPEG".to_string(),
            other => other.to_uppercase(),
        };
        return Err(Ended::Fatal(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "camera {camera}: its video is {name}; only H.264 is supported. Set the camera's \
                 video codec (encoding) to H.264"
            ),
        )));
    }
    if u64::from(streams[i].clock_rate_hz()) != crate::time::TICKS_PER_SEC {
        return Err(Ended::Fatal(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "camera {camera}: H.264 with an RTP clock of {} Hz (RFC 6184 says 90 kHz)",
                streams[i].clock_rate_hz()
            ),
        )));
    }
    let transport = match camera.transport {
        RtspTransport::Tcp => retina::client::Transport::Tcp(Default::default()),
        RtspTransport::Udp => retina::client::Transport::Udp(Default::default()),
    };
    described
        .setup(
            i,
            SetupOptions::default()
                .transport(transport)
                .frame_format(FrameFormat::SIMPLE),
        )
        .await
        .map_err(failed)?;
    let playing = described
        .play(PlayOptions::default())
        .await
        .map_err(failed)?;
    let params = playing.streams()[i].parameters();
    let (w, h, fps) = match params {
        Some(retina::codec::ParametersRef::Video(v)) => {
            let (w, h) = v.pixel_dimensions();
            (
                w,
                h,
                v.frame_rate()
                    .map(|(num, den)| f64::from(den) / f64::from(num)),
            )
        }
        _ => (0, 0, None),
    };
    let demuxed = playing.demuxed().map_err(failed)?;
    Ok((demuxed, (w, h, fps)))
}

/// The transcode path's per-frame stages, for the allocation test (`tests/alloc.rs`).
#[doc(hidden)]
pub mod testutil {
    /// A decoded picture copied over its strides into `dst`, as `--transcode` does per frame.
    pub fn copy_picture(pic: &impl openh264::formats::YUVSource, dst: &mut crate::frame::YuvFrame) {
        super::transcode::copy_picture(pic, dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_leave_the_url_and_never_show() {
        let c = Camera::new(
            "rtsp://admin:s3cr%40t@cam.local:8554/live?x=1",
            None,
            None,
            RtspTransport::Tcp,
        )
        .unwrap();
        assert_eq!(c.to_string(), "rtsp://***@cam.local:8554/live?x=1");
        let debug = format!("{c:?}");
        for shown in [c.to_string(), debug, c.url.to_string()] {
            assert!(
                !shown.contains("admin") && !shown.contains("s3cr"),
                "{shown}"
            );
        }
        assert_eq!(
            c.creds,
            Some(("admin".to_string(), "s3cr@t".to_string())),
            "percent escapes are decoded"
        );
        // No credentials: the URL as given.
        let c = Camera::new("rtsp://10.0.0.2/h264", None, None, RtspTransport::Udp).unwrap();
        assert_eq!(c.to_string(), "rtsp://10.0.0.2/h264");
        assert!(c.creds.is_none());
    }

    #[test]
    fn credentials_from_the_environment_when_the_url_has_none() {
        let c = Camera::new(
            "rtsp://cam/live",
            Some("viewer".into()),
            Some("pw-from-env".into()),
            RtspTransport::Tcp,
        )
        .unwrap();
        assert_eq!(c.creds, Some(("viewer".into(), "pw-from-env".into())));
        assert_eq!(c.to_string(), "rtsp://***@cam/live");
        // The URL's own win.
        let c = Camera::new(
            "rtsp://u:p@cam/live",
            Some("viewer".into()),
            Some("x".into()),
            RtspTransport::Tcp,
        )
        .unwrap();
        assert_eq!(c.creds, Some(("u".into(), "p".into())));
        let e = Camera::new(
            "rtsp://cam/live",
            None,
            Some("x".into()),
            RtspTransport::Tcp,
        )
        .unwrap_err();
        assert!(e.contains(USER_ENV), "{e}");
    }

    #[test]
    fn bad_urls_are_refused_without_echoing_credentials() {
        for bad in [
            "http://admin:s3cret@cam/live",
            "rtsp://admin:s3cret@:554/live",
            "rtsp://admin:s3cret@cam:99999/live",
            "not a url",
        ] {
            let e = Camera::new(bad, None, None, RtspTransport::Tcp).unwrap_err();
            assert!(!e.contains("s3cret") && !e.is_empty(), "{bad}: {e}");
        }
    }
}
