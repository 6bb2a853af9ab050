//! `hls-detect`'s core: an HLS client (RFC 8216 §6.3) that reads the live playlist, fetches
//! each new segment, decodes it and posts a marker for every onset of the mint top-left block.
//! The origin is behind the [`Origin`] trait (HTTP in the binary, [`http::HttpOrigin`]; files and
//! a fake marker store in the tests), so everything here runs without a network.
//! MPEG-TS segments are demuxed in [`media`]; fMP4 segments (an `EXT-X-MAP` in the playlist) are
//! read with their init segment (fetched once per URI) by `fmp4.rs`, then decoded the same way.
//!
//! ```text
//!  step(): flush due posts -> load playlist -> for each new segment:
//!          fetch -> demux + decode (media) -> top-left block mint? (mint) -> onsets -> POST
//!          -> wait: the target duration after a changed playlist, half of it otherwise
//!             (§6.3.4), a capped exponential back-off after a failure
//! ```
//!
//! **Onset rule.** An onset is a picture whose top-left block is mint when the picture before it
//! (in presentation order, across segment boundaries) was not. The picture before is *unknown*
//! at the start, after a gap (a segment that left the playlist before it was fetched, one that
//! answered 404, one that did not decode), after a media sequence that went down and after a PTS
//! jump between segments without a discontinuity; a mint first picture after an unknown state
//! is not an onset. Its event may have begun where we could not see it, so we do not know its
//! first frame: posting this picture could put a marker on the wrong frame and, since the key
//! names the frame, would not be deduplicated against the marker another run of the detector
//! (one that saw the missing segment) posted for the real onset. A missed marker (logged) is
//! better than a wrong or a duplicate one.
//!
//! An `EXT-X-DISCONTINUITY` alone (an origin restarted on the same stream) is *not* a gap when
//! the segment before it was read whole: the playlist still holds every picture of the video,
//! the last one before the restart and the first one after it, so the first picture after it is
//! judged against the last one before it, exactly as the video shows them (a restarted generator
//! may come back with its block already mint: that is the first mint frame of that event in the
//! video). Every detector that judges that picture judges it the same way and posts the same key;
//! one that did not see the picture before posts nothing; so no duplicate can arise. The PTS
//! and the date map start again there.
//!
//! **Dates.** A picture's `program_date_time` is its segment's `EXT-X-PROGRAM-DATE-TIME` plus its
//! PTS distance from the segment's first picture (PTS unwrapped past 2^33), refined across
//! segments by [`media::WallMap`] and rounded *down* to the millisecond: the server snaps a date
//! to the first frame at or after it, so a date never later than the frame lands on it.
//!
//! **No duplicates.** The key is `hls-detect:NAME:SEGMENT_DATE_MS:PTS_TICKS_INTO_SEGMENT`: it names
//! the picture through values read from the playlist and the segment, the same whichever run of
//! the detector computes it, so a retried POST or a detector restarted over the same window gets
//! the first marker back (200) instead of a second. Within a run the detector remembers the
//! date of the last segment it processed and never processes a segment dated at or before it
//! again, whatever the origin's media sequence numbers do across its restarts.
//!
//! **Posting.** Every onset is queued and posted in order; connection errors, 5xx, 408 and 429
//! are retried with a capped exponential back-off for [`Settings::post_give_up`], without
//! holding up detection; any other 4xx is logged and dropped (retrying cannot fix it).
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod fmp4;
pub mod http;
pub mod media;
pub mod mint;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::Serialize;
use tracing::{debug, error, info, warn};

use hls::clock::WallClock;
use hls::name::StreamName;
use hls::time::Duration90k;
use media::{Picture, SegmentReader, Unwrap, WallMap};

/// The `source` of every marker this detector posts.
pub const SOURCE: &str = "hls-detect";
/// The `text` of every marker this detector posts.
pub(crate) const MARKER_TEXT: &str = "Mint event";

/// Why a request to the origin failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchError {
    /// 404 or 410: not (or no longer) there.
    NotFound,
    /// Another non-success status, with the start of the answer's body.
    Status { code: u16, body: String },
    /// No answer: connection refused or reset, a timeout, an unreadable response.
    Unreachable(String),
}

impl FetchError {
    /// Worth trying again later: the origin is down, overloaded or briefly failing.
    pub(crate) fn retryable(&self) -> bool {
        match self {
            FetchError::NotFound => false,
            FetchError::Status { code, .. } => *code >= 500 || *code == 408 || *code == 429,
            FetchError::Unreachable(_) => true,
        }
    }
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::NotFound => write!(f, "not found"),
            FetchError::Status { code, body } => write!(f, "HTTP {code}: {body}"),
            FetchError::Unreachable(e) => write!(f, "unreachable: {e}"),
        }
    }
}

/// What the detector reads and where it posts. Implementations decide what a URI means.
pub trait Origin {
    /// The media playlist's bytes.
    fn playlist(&mut self) -> Result<Vec<u8>, FetchError>;
    /// A segment's bytes, by its URI as the playlist writes it.
    fn segment(&mut self, uri: &str) -> Result<Vec<u8>, FetchError>;
    /// Creates a marker (or finds the one with the same key).
    fn post_marker(&mut self, post: &MarkerPost) -> Result<PostReply, FetchError>;
}

/// The body of `POST /markers`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MarkerPost {
    pub text: String,
    pub program_date_time: String,
    pub source: String,
    pub key: String,
}

/// The server's answer to a successful POST.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PostReply {
    /// 201 (a new marker) rather than 200 (the marker that already had this key).
    pub created: bool,
    pub id: Option<u64>,
}

/// One detected onset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Onset {
    /// RFC 3339, rounded down to the millisecond.
    pub program_date_time: String,
    pub date_ms: i64,
    /// The picture's PTS as the TS carries it (33 bits).
    pub pts: u64,
    pub key: String,
    /// Media sequence number and URI of its segment.
    pub sequence: u64,
    pub uri: String,
}

/// Tunables; [`Settings::new`] gives the defaults.
#[derive(Clone, Debug)]
pub struct Settings {
    pub name: StreamName,
    /// The checkerboard's block edge at 320 px width (the streamer's `--block-size`). default: 20
    pub block_size: u32,
    /// First back-off after a failure; doubles per failure. default: 250 ms
    pub backoff_min: Duration,
    /// Longest back-off. default: 8 s
    pub backoff_max: Duration,
    /// How long a marker that cannot be posted is retried before it is dropped. default: 10 min
    pub post_give_up: Duration,
}

impl Settings {
    pub fn new(name: StreamName) -> Self {
        Settings {
            name,
            block_size: hls::source::DEFAULT_BLOCK_SIZE,
            backoff_min: Duration::from_millis(250),
            backoff_max: Duration::from_secs(8),
            post_give_up: Duration::from_secs(600),
        }
    }

    /// The back-off after `failures` consecutive failures (1 or more).
    pub(crate) fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(20);
        (self.backoff_min * (1u32 << doublings)).min(self.backoff_max)
    }
}

/// What happened to one segment.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentReport {
    pub sequence: u64,
    pub uri: String,
    /// Pictures decoded (0 when the segment was gone or unreadable).
    pub pictures: usize,
    /// EXTINF.
    pub duration: Duration,
    /// Demux, decode and detection time.
    pub work: Duration,
    /// Not contiguous with the last picture seen: the state before it was unknown.
    pub after_gap: bool,
    /// Why it was skipped, if it was (404, did not decode).
    pub skipped: Option<String>,
}

/// What one [`Detector::step`] did.
#[derive(Clone, Debug, Default)]
pub struct StepReport {
    /// When to call `step` again, counted from the `now` it was given.
    pub wait: Duration,
    pub segments: Vec<SegmentReport>,
    pub onsets: Vec<Onset>,
    /// The playlist or a segment could not be loaded (the wait is a back-off).
    pub failure: Option<String>,
    /// The playlist has `EXT-X-ENDLIST` and every segment in it was processed.
    pub ended: bool,
}

/// The last segment processed.
#[derive(Clone, Copy, Debug)]
struct Last {
    /// `None` once the origin's media sequence went down (a new stream): contiguity by number is
    /// then impossible, only the date still orders segments.
    sequence: Option<u64>,
    date_ms: i64,
    /// Unwrapped PTS of its last picture, when it had any.
    last_pts: Option<i64>,
}

#[derive(Clone, Debug)]
struct Pending {
    post: MarkerPost,
    first_try: Instant,
    next_try: Instant,
    attempts: u32,
}

/// Keeps the onset state across segments and steps; see the module docs.
#[derive(Debug)]
pub struct Detector {
    settings: Settings,
    reader: SegmentReader,
    unwrap: Unwrap,
    wall: WallMap,
    /// Was the last picture mint? `None`: unknown.
    prev_mint: Option<bool>,
    last: Option<Last>,
    last_playlist: Option<Vec<u8>>,
    last_media_sequence: Option<u64>,
    ended_logged: bool,
    /// Consecutive failed loads (playlist or segment).
    failures: u32,
    pending: VecDeque<Pending>,
    load: LoadMeter,
    /// fMP4 streams: the init segment (`EXT-X-MAP`) read last, by URI.
    init: Option<(String, fmp4::Init)>,
}

/// Queued posts beyond this drop the oldest (an origin that never takes them).
const MAX_PENDING: usize = 10_000;
/// A step's own longest PTS step between segments that still counts as contiguous.
const MAX_CONTIGUOUS_PTS_STEP: i64 = Duration90k::from_secs(1).as_u64() as i64;

impl Detector {
    pub fn new(settings: Settings) -> Self {
        Detector {
            reader: SegmentReader::new(settings.block_size),
            init: None,
            settings,
            unwrap: Unwrap::default(),
            wall: WallMap::default(),
            prev_mint: None,
            last: None,
            last_playlist: None,
            last_media_sequence: None,
            ended_logged: false,
            failures: 0,
            pending: VecDeque::new(),
            load: LoadMeter::default(),
        }
    }

    /// Markers waiting to be posted (retries).
    pub fn pending_posts(&self) -> usize {
        self.pending.len()
    }

    /// One reload: posts what is due, loads the playlist, processes every new segment, and says
    /// when to come back.
    pub fn step(&mut self, origin: &mut dyn Origin, now: Instant) -> StepReport {
        let mut report = StepReport::default();
        self.flush_posts(origin, now);
        let bytes = match origin.playlist() {
            Ok(b) => b,
            Err(e) => return self.failed(report, format!("playlist: {e}")),
        };
        let playlist = match m3u8_rs::parse_media_playlist_res(&bytes) {
            Ok(p) => p,
            Err(e) => {
                let e = format!("playlist does not parse: {e:?}");
                return self.failed(report, e.chars().take(200).collect());
            }
        };
        let target = Duration::from_secs(playlist.target_duration.max(1));
        let changed = self.last_playlist.as_deref() != Some(&bytes[..]);
        self.last_playlist = Some(bytes);
        if let Some(before) = self.last_media_sequence {
            if playlist.media_sequence < before {
                warn!(
                    before,
                    now = playlist.media_sequence,
                    "the media sequence went down: the origin started a new stream"
                );
                if let Some(last) = &mut self.last {
                    last.sequence = None;
                }
            }
        }
        self.last_media_sequence = Some(playlist.media_sequence);

        let mut derived_date: Option<i64> = None;
        // RFC 8216 §4.3.2.5: an EXT-X-MAP applies to every segment after it.
        let mut map_uri: Option<&str> = None;
        for (i, seg) in playlist.segments.iter().enumerate() {
            if let Some(m) = &seg.map {
                map_uri = Some(m.uri.as_str());
            }
            let sequence = playlist.media_sequence + i as u64;
            let duration = Duration::from_secs_f64(f64::from(seg.duration).max(0.0));
            // §4.3.2.6: a date applies to its segment; later ones follow by their durations.
            let date_ms = seg
                .program_date_time
                .map(|d| d.timestamp_millis())
                .or(derived_date);
            derived_date = date_ms.map(|d| d + (f64::from(seg.duration) * 1000.0).round() as i64);
            let Some(date_ms) = date_ms else {
                warn!(sequence, uri = %seg.uri, "segment without EXT-X-PROGRAM-DATE-TIME: skipped");
                continue;
            };
            if self.last.is_some_and(|l| date_ms <= l.date_ms) {
                continue; // processed already (or older than what was)
            }
            let started = Instant::now();
            let bytes = match origin.segment(&seg.uri) {
                Ok(b) => b,
                Err(e) if e.retryable() => {
                    return self.failed(report, format!("segment {}: {e}", seg.uri));
                }
                Err(e) => {
                    warn!(sequence, uri = %seg.uri, error = %e, "segment gone before it was read: a gap");
                    self.gap(sequence, date_ms);
                    report.segments.push(SegmentReport {
                        sequence,
                        uri: seg.uri.clone(),
                        pictures: 0,
                        duration,
                        work: started.elapsed(),
                        after_gap: true,
                        skipped: Some(e.to_string()),
                    });
                    continue;
                }
            };
            let read = match map_uri {
                None => self.reader.read(&bytes),
                Some(uri) => match self.init_for(origin, uri) {
                    Ok(init) => self.reader.read_fmp4(&init, &bytes),
                    Err((e, true)) => {
                        return self.failed(report, format!("init segment {uri}: {e}"));
                    }
                    Err((e, false)) => Err(format!("init segment {uri}: {e}")),
                },
            };
            let pictures = match read {
                Ok(p) => p,
                Err(e) => {
                    warn!(sequence, uri = %seg.uri, error = %e, "segment does not decode: a gap");
                    self.gap(sequence, date_ms);
                    report.segments.push(SegmentReport {
                        sequence,
                        uri: seg.uri.clone(),
                        pictures: 0,
                        duration,
                        work: started.elapsed(),
                        after_gap: true,
                        skipped: Some(e),
                    });
                    continue;
                }
            };
            let (onsets, after_gap) =
                self.detect(sequence, &seg.uri, date_ms, seg.discontinuity, &pictures);
            let work = started.elapsed();
            self.load.add(sequence, work, duration);
            debug!(
                sequence,
                uri = %seg.uri,
                pictures = pictures.len(),
                onsets = onsets.len(),
                work_ms = format!("{:.1}", work.as_secs_f64() * 1e3),
                duration_ms = format!("{:.1}", duration.as_secs_f64() * 1e3),
                load_percent = format!("{:.1}", 100.0 * work.as_secs_f64() / duration.as_secs_f64().max(1e-9)),
                "segment"
            );
            report.segments.push(SegmentReport {
                sequence,
                uri: seg.uri.clone(),
                pictures: pictures.len(),
                duration,
                work,
                after_gap,
                skipped: None,
            });
            for o in &onsets {
                info!(date = %o.program_date_time, sequence, key = %o.key, "mint onset");
                self.queue(o, now);
            }
            report.onsets.extend(onsets);
            self.flush_posts(origin, now);
        }
        self.failures = 0;
        report.ended = playlist.end_list;
        if playlist.end_list && !self.ended_logged {
            info!("the playlist has EXT-X-ENDLIST; watching for the origin to start again");
        }
        self.ended_logged = playlist.end_list;
        // §6.3.4: after a changed playlist wait at least the target duration, after an
        // unchanged one half of it.
        report.wait = if changed { target } else { target / 2 };
        report
    }

    /// The init segment `uri` names, fetched once per URI (ours are immutable). An error says
    /// whether it is worth retrying (the origin is down) or not (gone, or not an init segment).
    fn init_for(
        &mut self,
        origin: &mut dyn Origin,
        uri: &str,
    ) -> Result<fmp4::Init, (String, bool)> {
        if let Some((u, init)) = &self.init {
            if u == uri {
                return Ok(init.clone());
            }
        }
        let bytes = origin
            .segment(uri)
            .map_err(|e| (e.to_string(), e.retryable()))?;
        let init = fmp4::read_init(&bytes).map_err(|e| (e, false))?;
        self.init = Some((uri.to_owned(), init.clone()));
        Ok(init)
    }

    fn failed(&mut self, mut report: StepReport, why: String) -> StepReport {
        self.failures = self.failures.saturating_add(1);
        let wait = self.settings.backoff(self.failures);
        if self.failures == 1 || self.failures.is_power_of_two() {
            warn!(
                failures = self.failures,
                retry_in_ms = wait.as_millis() as u64,
                "{why}"
            );
        } else {
            debug!(
                failures = self.failures,
                retry_in_ms = wait.as_millis() as u64,
                "{why}"
            );
        }
        report.wait = wait;
        report.failure = Some(why);
        report
    }

    /// A segment that will never be read: what came before the next one is unknown.
    fn gap(&mut self, sequence: u64, date_ms: i64) {
        self.prev_mint = None;
        self.last = Some(Last {
            sequence: Some(sequence),
            date_ms,
            last_pts: None,
        });
    }

    /// Runs the onset rule over one segment's pictures; returns its onsets and whether the
    /// state before it was unknown.
    fn detect(
        &mut self,
        sequence: u64,
        uri: &str,
        date_ms: i64,
        discontinuity: bool,
        pictures: &[Picture],
    ) -> (Vec<Onset>, bool) {
        if discontinuity {
            self.unwrap.reset();
            self.wall.reset();
        }
        let Some(first) = pictures.first() else {
            self.gap(sequence, date_ms);
            return (Vec::new(), true);
        };
        let q0 = self.unwrap.unwrap(first.pts);
        // The picture before is known when the segment before was read whole. Across a
        // discontinuity that is enough (its timestamps start a new line; nothing of the video
        // is missing); otherwise the PTS must go on, too.
        let contiguous = self.last.is_some_and(|l| {
            l.sequence.is_some_and(|s| s + 1 == sequence)
                && l.last_pts
                    .is_some_and(|p| discontinuity || (q0 > p && q0 - p <= MAX_CONTIGUOUS_PTS_STEP))
        });
        if !contiguous {
            self.prev_mint = None;
        }
        if !self.wall.observe(date_ms, q0) {
            debug!(
                sequence,
                "segment date does not fit the PTS: date map restarted"
            );
        }
        let mut onsets = Vec::new();
        let mut last_q = q0;
        for (i, pic) in pictures.iter().enumerate() {
            let q = if i == 0 {
                q0
            } else {
                self.unwrap.unwrap(pic.pts)
            };
            let mint = pic.reading.mint;
            if mint && self.prev_mint == Some(false) {
                let date = self
                    .wall
                    .date_ms(q)
                    .expect("the date map holds this segment's observation");
                onsets.push(Onset {
                    program_date_time: rfc3339(date),
                    date_ms: date,
                    pts: pic.pts,
                    key: format!(
                        "hls-detect:{}:{date_ms}:{}",
                        self.settings.name.as_str(),
                        q - q0
                    ),
                    sequence,
                    uri: uri.to_string(),
                });
            } else if mint && self.prev_mint.is_none() {
                info!(
                    sequence,
                    uri, "an event is in progress where the picture before is unknown (start, gap or discontinuity): its onset is not posted"
                );
            }
            self.prev_mint = Some(mint);
            last_q = q;
        }
        self.last = Some(Last {
            sequence: Some(sequence),
            date_ms,
            last_pts: Some(last_q),
        });
        (onsets, !contiguous)
    }

    fn queue(&mut self, onset: &Onset, now: Instant) {
        if self.pending.len() >= MAX_PENDING {
            if let Some(p) = self.pending.pop_front() {
                error!(key = %p.post.key, date = %p.post.program_date_time, "too many markers waiting: dropped the oldest");
            }
        }
        self.pending.push_back(Pending {
            post: MarkerPost {
                text: MARKER_TEXT.to_string(),
                program_date_time: onset.program_date_time.clone(),
                source: SOURCE.to_string(),
                key: onset.key.clone(),
            },
            first_try: now,
            next_try: now,
            attempts: 0,
        });
    }

    /// Posts the queued markers that are due, in order; stops at the first one that must wait
    /// (the origin is down: no point hammering it with the rest).
    fn flush_posts(&mut self, origin: &mut dyn Origin, now: Instant) {
        while let Some(p) = self.pending.front_mut() {
            if p.next_try > now {
                break;
            }
            match origin.post_marker(&p.post) {
                Ok(reply) => {
                    info!(
                        id = reply.id,
                        created = reply.created,
                        date = %p.post.program_date_time,
                        key = %p.post.key,
                        attempts = p.attempts + 1,
                        "marker posted"
                    );
                    self.pending.pop_front();
                }
                Err(e)
                    if e.retryable()
                        && now.duration_since(p.first_try) < self.settings.post_give_up =>
                {
                    p.attempts += 1;
                    let wait = self.settings.backoff(p.attempts);
                    p.next_try = now + wait;
                    warn!(key = %p.post.key, attempts = p.attempts, retry_in_ms = wait.as_millis() as u64, error = %e, "marker not posted yet");
                    break;
                }
                Err(e) => {
                    error!(key = %p.post.key, date = %p.post.program_date_time, error = %e, "marker rejected: dropped");
                    self.pending.pop_front();
                }
            }
        }
    }
}

fn rfc3339(ms: i64) -> String {
    WallClock::try_from_unix_millis(ms)
        .map(WallClock::to_rfc3339)
        .unwrap_or_else(|| format!("{ms} ms since 1970"))
}

/// Decode-and-detect time against media time, summarised at info every [`LOAD_EVERY`] segments.
#[derive(Debug, Default)]
struct LoadMeter {
    work: Duration,
    media: Duration,
    segments: u32,
}

const LOAD_EVERY: u32 = 15;

impl LoadMeter {
    fn add(&mut self, sequence: u64, work: Duration, media: Duration) {
        self.work += work;
        self.media += media;
        self.segments += 1;
        if self.segments == LOAD_EVERY {
            info!(
                segments = self.segments,
                last_sequence = sequence,
                media_secs = format!("{:.1}", self.media.as_secs_f64()),
                work_secs = format!("{:.2}", self.work.as_secs_f64()),
                realtime_percent = format!(
                    "{:.1}",
                    100.0 * self.work.as_secs_f64() / self.media.as_secs_f64().max(1e-9)
                ),
                "decode + detect load (100% = one core just keeps up)"
            );
            *self = LoadMeter::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let s = Settings::new(StreamName::new("chessboard").unwrap());
        let waits: Vec<u64> = (1..=8).map(|n| s.backoff(n).as_millis() as u64).collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 4000, 8000, 8000, 8000]);
        assert_eq!(s.backoff(u32::MAX), Duration::from_secs(8));
    }

    #[test]
    fn what_is_retried() {
        let status = |code| FetchError::Status {
            code,
            body: String::new(),
        };
        assert!(FetchError::Unreachable("refused".into()).retryable());
        for code in [500, 502, 503, 408, 429] {
            assert!(status(code).retryable(), "{code}");
        }
        for code in [400, 401, 403, 413, 415] {
            assert!(!status(code).retryable(), "{code}");
        }
        assert!(!FetchError::NotFound.retryable());
    }

    /// The body is exactly the API's: text, date, source, key.
    #[test]
    fn marker_post_json() {
        let p = MarkerPost {
            text: MARKER_TEXT.into(),
            program_date_time: rfc3339(1_764_072_000_123),
            source: SOURCE.into(),
            key: "hls-detect:chessboard:1764072000000:3003".into(),
        };
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            serde_json::json!({
                "text": "Mint event",
                "program_date_time": "2025-11-25T12:00:00.123Z",
                "source": "hls-detect",
                "key": "hls-detect:chessboard:1764072000000:3003"
            })
        );
    }
}
