//! The live HLS media playlist: a pure sliding-window state machine and our own m3u8 writer.
//!
//! Implements the Media Playlist syntax of RFC 8216 §4 (tags of §4.3.1-§4.3.3, §4.3.2.6 and
//! §4.3.2.7) and the server rules for live playlists of RFC 8216 §6.2.1 and §6.2.2, with the
//! additions of its revision draft (rfc8216bis §4.4.5.1, §6.2.1, §6.2.2) where they are
//! stricter. The numbers `Rn` refer to the rules in `docs/spec.md`; every rule below is proven by a
//! test named after it in `tests.rs` beside this file.
//!
//! No I/O happens here: [`Playlist::push`] takes a finished segment (its bytes are already
//! complete on disk, R5) and returns which segments left the playlist and which files may be
//! deleted now; [`Playlist::render`] returns the whole playlist text, which the caller writes
//! atomically (R20).
//!
//! # What is rendered
//! ```text
//! #EXTM3U                               R10: first line
//! #EXT-X-VERSION:3                      R11: decimal EXTINF needs 3, nothing needs more
//! #EXT-X-TARGETDURATION:2               R13/R14: from the config, constant for life
//! #EXT-X-MEDIA-SEQUENCE:0               R15/R22: always written
//! #EXT-X-DISCONTINUITY-SEQUENCE:0       R16/R26: see below when
//! #EXT-X-INDEPENDENT-SEGMENTS           R18: every segment starts with SPS/PPS/IDR
//! #EXT-X-DATERANGE:ID="marker-1",START-DATE="2026-11-25T12:00:03.400Z",DURATION=2.000,
//!   X-COM-HLSSTREAMER-LABEL="Marker 1"  R34-R37 (one line in the playlist)
//! #EXT-X-DISCONTINUITY                  R6: only before a segment pushed with discontinuity
//! #EXT-X-PROGRAM-DATE-TIME:2026-11-25T12:00:00.000Z   R32/R33: on every segment
//! #EXTINF:2.000,                        R12: exact from 90 kHz ticks, rounded to the ms
//! chessboard0.ts
//! #EXT-X-ENDLIST                        R29: after Playlist::end
//! ```
//! Lines end in LF, there is no BOM and no whitespace except inside quoted strings (R9); there is
//! no `EXT-X-PLAYLIST-TYPE` (R17: a sliding playlist must not have one).
//!
//! # Decisions
//! - **`EXT-X-DISCONTINUITY-SEQUENCE`** is written from the moment it could matter and then for
//!   the rest of the playlist's life: when `start_discontinuity_sequence > 0` (a restarted stream
//!   continues its numbering), or once any segment was pushed with `discontinuity = true`. That
//!   covers R16 (it precedes the first segment and every `EXT-X-DISCONTINUITY`) and R26 (it is
//!   present before a discontinuity tag can leave), and a playlist without discontinuities stays
//!   as short as RFC 8216's live example (§8.2). It increments by one for every segment carrying
//!   `EXT-X-DISCONTINUITY` that leaves the window, never decreases.
//! - **`EXT-X-DATERANGE` placement**: all tags the window shows go after the header tags, before
//!   the first segment, in the order they were added. A DATERANGE is not a media segment tag, so
//!   its position carries no meaning (RFC 8216 §4.3.2.7); hls.js anchors each range to a
//!   PDT-tagged fragment by date and video.js maps it through the first segment's PDT.
//! - **Which ranges are shown (R36)**: a range `[start, start + duration]` is shown while some
//!   instant of it falls in the window's date span `[PDT of the first segment, PDT + EXTINF of
//!   the last)`. A range whose start lies beyond the window waits (it appears together with the
//!   segment it starts in); a range whose end is before the window's start is dropped for good,
//!   which is the earliest moment bis §6.2.1 allows. At most [`MAX_DATE_RANGES`] are held: past
//!   that, the one that starts first is dropped early (the only exception to R36, so that a
//!   flood of markers cannot make every reload of the playlist hundreds of kilobytes; the
//!   markers API still lists every marker).
//! - **R13 rule**: a segment is accepted when its written EXTINF rounded to the nearest second
//!   (half up) is `<=` the target duration, the MUST of RFC 8216 §4.3.3.1. For version <= 5
//!   bis §8 reads the target as the unrounded maximum, so the config should be
//!   [`target_duration_secs`] of the longest segment the frame grid allows (e.g. 3 at 29.97 fps
//!   for 2 s segments, which last up to 2.033 s); then
//!   every nominal segment meets the strict reading, and a segment stretched by a frame dropped at
//!   a boundary still meets the MUST instead of stopping a live stream.
//! - **PDT (R33)**: `EXT-X-PROGRAM-DATE-TIME` of a segment must be its stream's anchor plus the
//!   exact sum of the durations pushed since, within one millisecond (the caller computes
//!   `anchor + stream time`, rounded down to the ms); it is never re-sampled from a wall clock. A
//!   segment pushed with `discontinuity = true` starts a new anchor: its date must be after the
//!   previous segment's and may overlap the previous segment's span by less than one second.
//! - **Window (R22-R24)**: after each push the oldest segments are removed, in order, until at
//!   most `list_size` remain, except that a segment is never removed if the rest would last less
//!   than three target durations (R24). With full-length segments and `list_size >= 3` that never
//!   happens; with shorter segments the window briefly holds more than `list_size`.
//! - **Deletion (R25)**: a removed segment's file may be deleted once the stream time pushed
//!   since its removal reaches [`r25_grace`]: its own duration plus the duration of the longest
//!   playlist that contained it (RFC 8216 §6.2.2; stronger than the revision draft's rule). With `list_size`
//!   N and equal segments that is N+1 segments after removal. Stream time only advances on push,
//!   so files still in their grace period when the stream ends are never returned and stay on
//!   disk.

use std::collections::VecDeque;
use std::fmt::{self, Write as _};

use crate::clock::WallClock;
use crate::name::{push_decimal, MediaFile, StreamName};
use crate::time::{Duration90k, FrameRate, TICKS_PER_MS, TICKS_PER_SEC};

pub mod attributes;
pub mod low_latency;
pub mod multivariant;
pub(crate) mod resume;

pub(crate) use low_latency::{LiveEdge, LowLatency, Part, Render};

/// The `EXT-X-VERSION` we write: decimal-floating-point EXTINF needs 3 (RFC 8216 §7); PDT,
/// DATERANGE and INDEPENDENT-SEGMENTS add no requirement (R11).
pub const PROTOCOL_VERSION: u32 = 3;

/// The `EXT-X-VERSION` of a playlist with `EXT-X-MAP` (fMP4 segments): a Media Playlist without
/// `EXT-X-I-FRAMES-ONLY` that uses it needs 6 (RFC 8216 §4.3.2.5 and §7, rfc8216bis §4.4.4.5
/// and §8; R11, R49).
pub const MAP_PROTOCOL_VERSION: u32 = 6;

/// The smallest window: a client should not start within three target durations of the end
/// (RFC 8216 §6.3.3, R38) and the server must keep three of them (§6.2.2, R24).
pub const MIN_LIST_SIZE: usize = 3;

/// The client attribute that carries a marker's label in `EXT-X-DATERANGE` (reverse DNS, R35).
pub const DATERANGE_LABEL_ATTRIBUTE: &str = "X-COM-HLSSTREAMER-LABEL";

/// Most `EXT-X-DATERANGE` tags a playlist holds: the newest by start date. A tag with a label of
/// the longest marker text is under 1 KB, so this bounds the tags to about 100 KB in the worst
/// case and a few kilobytes usually (issue 18: 1,174 markers made a 680 KB playlist).
pub const MAX_DATE_RANGES: usize = 100;

/// Everything fixed for the life of one playlist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlaylistConfig {
    /// The stream: segment `n` is [`StreamName::segment_file`] of `n`, a URI that needs no
    /// escaping.
    pub name: StreamName,
    /// `EXT-X-TARGETDURATION`, whole seconds, >= 1; use [`target_duration_secs`].
    pub target_duration_secs: u64,
    /// Segments in the window (>= [`MIN_LIST_SIZE`]).
    pub list_size: usize,
    /// Media sequence number of the first segment (R22: persist it across restarts).
    pub start_sequence: u64,
    /// `EXT-X-DISCONTINUITY-SEQUENCE` to start from (R26: persist it across restarts).
    pub start_discontinuity_sequence: u64,
}

/// How segments are cut, for [`segment_bound`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cuts {
    /// At the first frame at or after each `segment` boundary, on the frame grid of this rate
    /// (the encoder's forced IDRs).
    FrameGrid(FrameRate),
    /// At the first IDR at or after each boundary, of a camera whose GOP lasts this long
    /// (passthrough).
    CameraGop(Duration90k),
}

/// Slack for a camera's timestamp jitter when rounding its longest segment up to whole seconds:
/// under a millisecond, what an EXTINF (written to the ms) does not show.
const CAMERA_JITTER: Duration90k = Duration90k(crate::time::TICKS_PER_MS - 1);

/// The longest segment cutting every `segment` as `cuts` says can produce, and its
/// `EXT-X-TARGETDURATION`: the ceiling in whole seconds, at least 1. The one rule for it: the
/// plan, the playlist and the server take it from here.
///
/// - **Frame grid.** Boundaries sit at `k * segment`; a segment runs from the first frame at or
///   after one boundary to the first frame at or after the next, so it is at most the whole
///   number of frames that covers `segment` ([`FrameRate::longest_span`]). With version 3 the
///   target bounds the unrounded EXTINF (R13), so 2 s segments at 29.97 fps (up to 2.033 s)
///   need 3.
/// - **Camera GOP.** `segment` rounded up to whole GOPs (`ceil(T / g) * g`); its seconds are
///   rounded up with under a millisecond of slack for cameras whose timestamps jitter by a
///   tick. A camera whose GOP later grows can still make a longer segment (the caller warns).
pub(crate) fn segment_bound(segment: Duration90k, cuts: Cuts) -> (Duration90k, u64) {
    let (longest, slack) = match cuts {
        Cuts::FrameGrid(rate) => (
            rate.longest_span(rate.frames_covering(segment)),
            Duration90k::ZERO,
        ),
        Cuts::CameraGop(gop) if gop == Duration90k::ZERO => (segment, CAMERA_JITTER),
        Cuts::CameraGop(gop) => (gop * segment.as_u64().div_ceil(gop.as_u64()), CAMERA_JITTER),
    };
    let secs = Duration90k(longest.as_u64().saturating_sub(slack.as_u64()))
        .as_secs_ceil()
        .max(1);
    (longest, secs)
}

/// The R25 grace (RFC 8216 §6.2.2): after a segment leaves the playlist, its file stays
/// available for its own duration plus the duration of the longest playlist that contained it.
/// The one rule for it: the playlist's deletions, the restart's leftover files and the segments'
/// `Expires` header all come from here.
pub(crate) fn r25_grace(own: Duration90k, longest_playlist: Duration90k) -> Duration90k {
    own + longest_playlist
}

/// How long a segment of (at most) `longest` stays on the server from its publication in a
/// window of `list_size` segments: listed while `list_size` segments are published, then the
/// [`r25_grace`] of that window. The planned time-to-live behind a segment's `Expires` (R27).
pub(crate) fn planned_segment_lifetime(longest: Duration90k, list_size: usize) -> Duration90k {
    let window = longest * list_size as u64;
    window + r25_grace(longest, window)
}

/// One media segment in the window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Media sequence number; the file is [`Playlist::segment_uri`] of it.
    pub sequence: u64,
    /// Exact duration; `EXTINF` is this rounded to the millisecond.
    pub duration: Duration90k,
    /// UTC instant of the segment's first sample (`EXT-X-PROGRAM-DATE-TIME`).
    pub program_date_time: WallClock,
    /// Preceded by `EXT-X-DISCONTINUITY` (R6).
    pub discontinuity: bool,
}

/// A timed range (a marker) published as `EXT-X-DATERANGE` while it overlaps the window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DateRange {
    /// `ID`, e.g. `marker-3`: must be unique for the life of the playlist (R36); it may not
    /// contain `"`, CR, LF or other control characters (R37), which is an error, not rewritten.
    pub id: String,
    /// `START-DATE`.
    pub start: WallClock,
    /// `DURATION` (0 for an instant event, R35).
    pub duration: Duration90k,
    /// Human text, e.g. `Marker 3`, written as `X-COM-HLSSTREAMER-LABEL`; sanitised (R37): `"`
    /// becomes `'`, control characters become spaces.
    pub label: String,
}

/// What a [`Playlist::push`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushOutcome {
    /// Media sequence number the pushed segment got.
    pub sequence: u64,
    /// Segments that left the playlist with this push, oldest first (their files must stay
    /// downloadable for a grace period, R25).
    pub removed: Vec<Segment>,
    /// File names (segment URIs) whose grace period ended with this push: delete them after the
    /// new playlist is in place.
    pub delete_now: Vec<String>,
}

/// A segment that left the playlist and whose file must still be kept (R25).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingDelete {
    /// Media sequence number of the segment.
    pub sequence: u64,
    /// The file may be deleted once [`Playlist::stream_time`] reaches this.
    pub(crate) delete_at: Duration90k,
}

/// Why a configuration, segment or range was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlaylistError {
    /// `target_duration_secs` is 0 (RFC 8216 §4.3.3.1 wants a decimal-integer >= 1).
    #[error("target duration must be at least 1 s")]
    TargetDurationZero,
    /// `target_duration_secs` is so large that durations overflow.
    #[error("target duration {secs} s is too large")]
    TargetDurationTooLarge { secs: u64 },
    /// `list_size` is below [`MIN_LIST_SIZE`] (R24, R38).
    #[error("list size {list_size} is too short: a live window must hold at least {MIN_LIST_SIZE} target durations (RFC 8216 §6.2.2, §6.3.3)")]
    ListTooShort { list_size: usize },
    /// A segment was pushed or a range added after [`Playlist::end`] (R29).
    #[error("playlist already ended with EXT-X-ENDLIST (next sequence would be {sequence})")]
    Ended { sequence: u64 },
    /// The segment's EXTINF would be `0.000`.
    #[error("segment {sequence}: duration {} rounds to EXTINF 0.000", Secs(*.duration))]
    ZeroDuration {
        sequence: u64,
        duration: Duration90k,
    },
    /// The segment's EXTINF rounded to whole seconds exceeds the target duration (R4, R13).
    #[error("segment {sequence}: duration {} rounds above EXT-X-TARGETDURATION {target_duration_secs} s (RFC 8216 §4.3.3.1)", Secs(*.duration))]
    SegmentTooLong {
        sequence: u64,
        duration: Duration90k,
        target_duration_secs: u64,
    },
    /// The segment's PDT is not after the previous segment's.
    #[error("segment {sequence}: EXT-X-PROGRAM-DATE-TIME {} is not after segment {}'s {}", .program_date_time.to_rfc3339(), .sequence.wrapping_sub(1), .previous_program_date_time.to_rfc3339())]
    ProgramDateTimeNotAfter {
        sequence: u64,
        program_date_time: WallClock,
        previous_program_date_time: WallClock,
    },
    /// A continuous segment's PDT is not its stream's anchor plus the durations since (R33).
    #[error("segment {sequence}: EXT-X-PROGRAM-DATE-TIME {} is {} ms off the stream's anchor plus the durations since, {}; push with discontinuity to re-anchor", .program_date_time.to_rfc3339(), drift_ms(*.program_date_time, *.expected_ticks), EpochTicks(*.expected_ticks))]
    ProgramDateTimeDrift {
        sequence: u64,
        program_date_time: WallClock,
        /// The exact expected instant in 90 kHz ticks since the Unix epoch.
        expected_ticks: i64,
    },
    /// A discontinuity's PDT overlaps the previous segment by a second or more (R33).
    #[error("segment {sequence}: discontinuity EXT-X-PROGRAM-DATE-TIME {} overlaps the previous segment (ending {}) by a second or more", .program_date_time.to_rfc3339(), EpochTicks(*.previous_end_ticks))]
    ProgramDateTimeOverlap {
        sequence: u64,
        program_date_time: WallClock,
        /// End of the previous segment in 90 kHz ticks since the Unix epoch.
        previous_end_ticks: i64,
    },
    /// A part target of zero or longer than the target duration (rfc8216bis §4.4.3.7).
    #[error("part target {} must be positive and at most the target duration {target_duration_secs} s", Secs(*.part_target))]
    BadPartTarget {
        part_target: Duration90k,
        target_duration_secs: u64,
    },
    /// A part was pushed to a playlist without low latency.
    #[error("low latency is off: no parts")]
    NotLowLatency,
    /// A part is empty or longer than `PART-TARGET` (R41).
    #[error("segment {sequence} part {index}: duration {} outside (0, PART-TARGET {}]", Secs(*.duration), Secs(*.part_target))]
    PartTooLong {
        sequence: u64,
        index: usize,
        duration: Duration90k,
        part_target: Duration90k,
    },
    /// The media sequence number space is exhausted (R22 forbids wrapping).
    #[error("media sequence number space exhausted")]
    SequenceExhausted,
    /// A DATERANGE ID is empty or holds `"`, CR, LF or another control character (R37).
    #[error("EXT-X-DATERANGE ID {id:?} must be non-empty without quotes or control characters")]
    InvalidDateRangeId { id: String },
    /// A DATERANGE ID is already in the playlist (R36).
    #[error("EXT-X-DATERANGE ID {id:?} is already in the playlist")]
    DuplicateDateRangeId { id: String },
    /// The range ended before the window's first date, so it would never be shown (R36).
    #[error("EXT-X-DATERANGE {id:?} ended at {}, before the window's first segment at {}", .end.to_rfc3339(), .window_start.to_rfc3339())]
    DateRangeExpired {
        id: String,
        end: WallClock,
        window_start: WallClock,
    },
}

impl From<PlaylistError> for crate::error::Error {
    fn from(e: PlaylistError) -> Self {
        use crate::error::{Error, ErrorKind};
        let kind = match e {
            PlaylistError::TargetDurationZero
            | PlaylistError::TargetDurationTooLarge { .. }
            | PlaylistError::ListTooShort { .. } => ErrorKind::InvalidArgument,
            _ => ErrorKind::Internal,
        };
        Error::new(kind, "playlist").with_source(e)
    }
}

/// How far `pdt` is from `expected_ticks` (epoch ticks), in milliseconds.
fn drift_ms(pdt: WallClock, expected_ticks: i64) -> f64 {
    (epoch_ticks(pdt) - expected_ticks) as f64 / TICKS_PER_MS as f64
}

/// Formats a duration as `2.002 s (180180 ticks)`.
struct Secs(Duration90k);

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = ticks_to_millis(self.0);
        write!(
            f,
            "{}.{:03} s ({} ticks)",
            ms / 1000,
            ms % 1000,
            self.0.as_u64()
        )
    }
}

/// Formats an instant given in 90 kHz ticks since the Unix epoch as RFC 3339.
struct EpochTicks(i64);

impl fmt::Display for EpochTicks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = WallClock::from_unix_millis(self.0.div_euclid(TICKS_PER_MS as i64));
        write!(
            f,
            "{} (+{} ticks)",
            w.to_rfc3339(),
            self.0.rem_euclid(TICKS_PER_MS as i64)
        )
    }
}

/// A segment in the window, with its PDT text formatted once.
#[derive(Clone, Debug)]
struct Entry {
    segment: Segment,
    pdt_text: String,
    /// The instant `pdt_text` was formatted from.
    pdt_text_of: WallClock,
    /// [`Playlist::check_invariants`] has compared `pdt_text` with `pdt_text_of` formatted
    /// (once per entry: both are set together and never change; every later check compares
    /// the instants, numerically).
    pdt_text_checked: std::cell::Cell<bool>,
    /// Duration of the longest published playlist that contained this segment (R25).
    longest_playlist: u64,
    /// Its parts while it is among the newest segments (low latency only).
    parts: Vec<Part>,
}

/// A date range waiting for or inside the window.
#[derive(Clone, Debug)]
struct HeldRange {
    range: DateRange,
    start_text: String,
    /// 90 kHz ticks since the Unix epoch.
    start: i64,
    end: i64,
}

/// The live playlist: window, counters, date ranges and files awaiting deletion.
#[derive(Clone, Debug)]
pub struct Playlist {
    cfg: PlaylistConfig,
    target_ticks: u64,
    window: VecDeque<Entry>,
    /// Sum of the window's durations.
    window_ticks: u64,
    media_sequence: u64,
    discontinuity_sequence: u64,
    next_sequence: u64,
    /// Write `EXT-X-DISCONTINUITY-SEQUENCE` (sticky, see the module docs).
    signal_discontinuity_sequence: bool,
    ended: bool,
    /// Sum of every duration ever pushed.
    stream_ticks: u64,
    /// PDT (epoch ticks) of the segment that started the current stream timeline.
    pdt_anchor: i64,
    /// Durations pushed since that segment started.
    since_anchor: u64,
    pending: VecDeque<PendingDelete>,
    ranges: Vec<HeldRange>,
    /// Low-latency state ([`Playlist::enable_low_latency`]).
    ll: Option<low_latency::LlState>,
    /// fMP4 init segments still needed, oldest first: (media sequence number of the first
    /// segment it initialises, the number in its name `NAME<n>.init.mp4`). Each applies to the
    /// segments from its first up to the next one's first (R49, R50).
    maps: VecDeque<(u64, u64)>,
}

/// `WallClock` as 90 kHz ticks since the Unix epoch (exact: 90 ticks per ms).
fn epoch_ticks(w: WallClock) -> i64 {
    w.unix_millis() * TICKS_PER_MS as i64
}

/// Ticks to milliseconds, rounded to nearest (half up): 180180 -> 2002.
fn ticks_to_millis(t: Duration90k) -> u64 {
    t.as_millis_rounded()
}

/// Writes `ms` as decimal seconds with three decimals: 2002 -> `2.002` (what
/// `format!("{}.{:03}", ms / 1000, ms % 1000)` gives, without the formatting machinery: it runs
/// for every segment of every render).
fn write_millis(out: &mut String, ms: u64) {
    push_decimal(out, ms / 1000);
    out.push('.');
    let frac = ms % 1000;
    for d in [frac / 100, frac / 10 % 10, frac % 10] {
        out.push(char::from(b'0' + d as u8));
    }
}

/// A quoted-string for an attribute list (R37): `"` becomes `'`; control characters (CR, LF and
/// the rest, R9) and the other characters a client may read as a line break
/// ([`attributes::unsafe_in_quoted`]) become spaces.
pub(crate) fn sanitise_quoted(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' => '\'',
            c if attributes::unsafe_in_quoted(c) => ' ',
            c => c,
        })
        .collect()
}

impl Playlist {
    /// A new, empty playlist; validates the configuration.
    pub fn new(cfg: PlaylistConfig) -> Result<Self, PlaylistError> {
        if cfg.target_duration_secs == 0 {
            return Err(PlaylistError::TargetDurationZero);
        }
        // Durations are summed in u64 ticks; the R24 bound needs 3 x target.
        let target_ticks = cfg
            .target_duration_secs
            .checked_mul(TICKS_PER_SEC * 3)
            .map(|t| t / 3)
            .ok_or(PlaylistError::TargetDurationTooLarge {
                secs: cfg.target_duration_secs,
            })?;
        if cfg.list_size < MIN_LIST_SIZE {
            return Err(PlaylistError::ListTooShort {
                list_size: cfg.list_size,
            });
        }
        Ok(Playlist {
            target_ticks,
            // One extra slot for the push that precedes a removal; bounded so a huge list_size
            // does not allocate up front.
            window: VecDeque::with_capacity(cfg.list_size.min(1024) + 1),
            window_ticks: 0,
            media_sequence: cfg.start_sequence,
            discontinuity_sequence: cfg.start_discontinuity_sequence,
            next_sequence: cfg.start_sequence,
            signal_discontinuity_sequence: cfg.start_discontinuity_sequence > 0,
            ended: false,
            stream_ticks: 0,
            pdt_anchor: 0,
            since_anchor: 0,
            pending: VecDeque::new(),
            ranges: Vec::new(),
            ll: None,
            maps: VecDeque::new(),
            cfg,
        })
    }

    pub fn config(&self) -> &PlaylistConfig {
        &self.cfg
    }

    /// fMP4: the next segment and those after it are initialised by `NAME<init>.init.mp4`
    /// (`EXT-X-MAP`, R49); its bytes must be downloadable before the playlist lists a segment or
    /// part that needs it (R5). The file is returned for deletion (in [`PushOutcome::delete_now`])
    /// once no segment listed or in its R25 grace needs it any more (R50).
    pub fn start_map(&mut self, init: u64) {
        let first = self.next_sequence;
        if let Some(last) = self.maps.back_mut() {
            if last.0 == first {
                // Replaced before any segment used it (new parameter sets on the same frame).
                *last = (first, init);
                return;
            }
        }
        self.maps.push_back((first, init));
    }

    /// The init segment (number in its name) of segment `sequence`, if the stream has one.
    pub fn map_of(&self, sequence: u64) -> Option<u64> {
        self.maps
            .iter()
            .rev()
            .find(|(first, _)| *first <= sequence)
            .map(|(_, init)| *init)
    }

    /// Every init segment still held (numbers in their names), oldest first.
    pub fn maps(&self) -> impl Iterator<Item = u64> + '_ {
        self.maps.iter().map(|(_, init)| *init)
    }

    /// The media sequence number the next push gets (name the file after it before writing).
    pub fn next_sequence(&self) -> u64 {
        self.next_sequence
    }

    /// The segment's URI and file name ([`StreamName::segment_file`]).
    pub fn segment_uri(&self, sequence: u64) -> String {
        self.cfg.name.segment_file(sequence)
    }

    /// `EXT-X-MEDIA-SEQUENCE`: the sequence number of the window's first segment (R22).
    pub fn media_sequence(&self) -> u64 {
        self.media_sequence
    }

    /// `EXT-X-DISCONTINUITY-SEQUENCE` (R26).
    pub fn discontinuity_sequence(&self) -> u64 {
        self.discontinuity_sequence
    }

    /// The segments in the window, oldest first.
    pub fn segments(&self) -> impl Iterator<Item = &Segment> + '_ {
        self.window.iter().map(|e| &e.segment)
    }

    /// Sum of the window's durations.
    pub fn window_duration(&self) -> Duration90k {
        Duration90k(self.window_ticks)
    }

    /// Sum of every duration ever pushed: the clock that grace periods (R25) run on.
    pub fn stream_time(&self) -> Duration90k {
        Duration90k(self.stream_ticks)
    }

    /// Removed segments whose files must still be kept, oldest first.
    pub fn pending_deletes(&self) -> impl Iterator<Item = &PendingDelete> + '_ {
        self.pending.iter()
    }

    /// The date ranges the next render shows, in the order they were added.
    pub fn date_ranges(&self) -> impl Iterator<Item = &DateRange> + '_ {
        let span = self.date_span();
        self.ranges
            .iter()
            .filter(move |r| span.is_some_and(|(start, end)| r.start < end && r.end >= start))
            .map(|r| &r.range)
    }

    /// Whether [`Playlist::end`] was called.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Window date span `[first PDT, last PDT + last duration)` in epoch ticks.
    fn date_span(&self) -> Option<(i64, i64)> {
        let first = self.window.front()?;
        let last = self.window.back()?;
        Some((
            epoch_ticks(first.segment.program_date_time),
            epoch_ticks(last.segment.program_date_time) + last.segment.duration.as_u64() as i64,
        ))
    }

    /// Appends a finished segment (its bytes are complete on disk, R5), slides the window and
    /// returns what left it and which files may be deleted now. Nothing changes on error.
    pub fn push(
        &mut self,
        duration: Duration90k,
        program_date_time: WallClock,
        discontinuity: bool,
    ) -> Result<PushOutcome, PlaylistError> {
        self.push_inner(duration, program_date_time, discontinuity, false)
    }

    /// Appends a segment read back from a previous run's playlist (restart, R22). Its PDT and
    /// EXTINF are taken as written, so the drift check against this playlist's anchor is
    /// skipped: text-rounded EXTINFs cannot add up to the old PDTs exactly. Every other rule of
    /// [`Playlist::push`] holds, and the next segment is anchored on this one.
    pub fn push_resumed(
        &mut self,
        duration: Duration90k,
        program_date_time: WallClock,
        discontinuity: bool,
    ) -> Result<PushOutcome, PlaylistError> {
        self.push_inner(duration, program_date_time, discontinuity, true)
    }

    fn push_inner(
        &mut self,
        duration: Duration90k,
        program_date_time: WallClock,
        discontinuity: bool,
        reanchor: bool,
    ) -> Result<PushOutcome, PlaylistError> {
        let sequence = self.next_sequence;
        if self.ended {
            return Err(PlaylistError::Ended { sequence });
        }
        let ms = ticks_to_millis(duration);
        if ms == 0 {
            return Err(PlaylistError::ZeroDuration { sequence, duration });
        }
        if (ms + 500) / 1000 > self.cfg.target_duration_secs {
            return Err(PlaylistError::SegmentTooLong {
                sequence,
                duration,
                target_duration_secs: self.cfg.target_duration_secs,
            });
        }
        let pdt = epoch_ticks(program_date_time);
        if let Some(last) = self.window.back() {
            let last_pdt = epoch_ticks(last.segment.program_date_time);
            if pdt <= last_pdt {
                return Err(PlaylistError::ProgramDateTimeNotAfter {
                    sequence,
                    program_date_time,
                    previous_program_date_time: last.segment.program_date_time,
                });
            }
            if discontinuity {
                let previous_end_ticks = last_pdt + last.segment.duration.as_u64() as i64;
                if previous_end_ticks - pdt >= TICKS_PER_SEC as i64 {
                    return Err(PlaylistError::ProgramDateTimeOverlap {
                        sequence,
                        program_date_time,
                        previous_end_ticks,
                    });
                }
            } else if reanchor {
                // A segment read back: its own date, but it must still follow its predecessor
                // within the 2 ms that millisecond rounding of PDT and EXTINF allows (R33).
                let follows = last_pdt + last.segment.duration.as_u64() as i64;
                if (pdt - follows).abs() >= 2 * TICKS_PER_MS as i64 {
                    return Err(PlaylistError::ProgramDateTimeDrift {
                        sequence,
                        program_date_time,
                        expected_ticks: follows,
                    });
                }
            } else {
                let expected_ticks = self.pdt_anchor + self.since_anchor as i64;
                if (pdt - expected_ticks).abs() >= TICKS_PER_MS as i64 {
                    return Err(PlaylistError::ProgramDateTimeDrift {
                        sequence,
                        program_date_time,
                        expected_ticks,
                    });
                }
            }
        }
        self.next_sequence = sequence
            .checked_add(1)
            .ok_or(PlaylistError::SequenceExhausted)?;

        // Accepted: commit.
        if discontinuity || reanchor || self.window.is_empty() {
            self.pdt_anchor = pdt;
            self.since_anchor = 0;
        }
        self.since_anchor += duration.as_u64();
        self.stream_ticks += duration.as_u64();
        self.signal_discontinuity_sequence |= discontinuity;
        self.window.push_back(Entry {
            segment: Segment {
                sequence,
                duration,
                program_date_time,
                discontinuity,
            },
            pdt_text: program_date_time.to_rfc3339(),
            pdt_text_of: program_date_time,
            pdt_text_checked: std::cell::Cell::new(false),
            longest_playlist: 0,
            parts: Vec::new(),
        });
        let parts = self.settle_parts();
        if let Some(e) = self.window.back_mut() {
            e.parts = parts;
        }
        self.window_ticks += duration.as_u64();

        // R22/R23: remove oldest first; R24: never below three target durations.
        let mut removed = Vec::new();
        while self.window.len() > self.cfg.list_size {
            let front = self
                .window
                .front()
                .expect("window longer than list_size is not empty");
            let front_ticks = front.segment.duration.as_u64();
            if self.window_ticks - front_ticks < 3 * self.target_ticks {
                break;
            }
            let entry = self.window.pop_front().expect("checked non-empty above");
            self.window_ticks -= front_ticks;
            self.media_sequence += 1;
            if entry.segment.discontinuity {
                self.discontinuity_sequence += 1;
            }
            // R25: its duration plus the longest playlist that contained it, counted from now.
            let grace = r25_grace(entry.segment.duration, Duration90k(entry.longest_playlist));
            self.pending.push_back(PendingDelete {
                sequence: entry.segment.sequence,
                delete_at: Duration90k(self.stream_ticks) + grace,
            });
            removed.push(entry.segment);
        }
        // The playlist about to be published contains every segment left in the window.
        for e in &mut self.window {
            e.longest_playlist = e.longest_playlist.max(self.window_ticks);
        }

        let mut delete_now = Vec::new();
        let now = self.stream_ticks;
        let name = &self.cfg.name;
        self.pending.retain(|p| {
            let due = p.delete_at.as_u64() <= now;
            if due {
                delete_now.push(name.segment_file(p.sequence));
            }
            !due
        });
        // R50: an init segment goes with the last segment that needs it.
        let oldest_kept = self
            .pending
            .front()
            .map(|p| p.sequence)
            .or(self.window.front().map(|e| e.segment.sequence));
        while let (Some(oldest), Some(&(next_first, _))) = (oldest_kept, self.maps.get(1)) {
            if next_first > oldest {
                break;
            }
            let (_, init) = self.maps.pop_front().expect("two maps are held");
            delete_now.push(name.file(MediaFile::Init(init)));
        }

        self.trim_parts();

        // R36: a range is dropped once it ended before the window's first date.
        if let Some((start, _)) = self.date_span() {
            self.ranges.retain(|r| r.end >= start);
        }

        Ok(PushOutcome {
            sequence,
            removed,
            delete_now,
        })
    }

    /// Publishes `range` as `EXT-X-DATERANGE` while it overlaps the window (see the module docs).
    /// Errors if its ID is malformed or already held (R36, R37), if it ended before the window's
    /// first date, or after [`Playlist::end`].
    pub fn add_date_range(&mut self, range: DateRange) -> Result<(), PlaylistError> {
        if self.ended {
            return Err(PlaylistError::Ended {
                sequence: self.next_sequence,
            });
        }
        if range.id.is_empty() || range.id.chars().any(attributes::unsafe_in_quoted) {
            return Err(PlaylistError::InvalidDateRangeId { id: range.id });
        }
        if self.ranges.iter().any(|r| r.range.id == range.id) {
            return Err(PlaylistError::DuplicateDateRangeId { id: range.id });
        }
        let start = epoch_ticks(range.start);
        let end = start.saturating_add(i64::try_from(range.duration.as_u64()).unwrap_or(i64::MAX));
        if let Some(first) = self.window.front() {
            if end < epoch_ticks(first.segment.program_date_time) {
                return Err(PlaylistError::DateRangeExpired {
                    end: (range.start + range.duration),
                    window_start: first.segment.program_date_time,
                    id: range.id,
                });
            }
        }
        let start_text = range.start.to_rfc3339();
        let label = sanitise_quoted(&range.label);
        self.ranges.push(HeldRange {
            range: DateRange { label, ..range },
            start_text,
            start,
            end,
        });
        if self.ranges.len() > MAX_DATE_RANGES {
            // Ranges arrive in the order markers were posted, not by date: drop the earliest.
            if let Some(first) = (0..self.ranges.len()).min_by_key(|&i| self.ranges[i].start) {
                self.ranges.remove(first);
            }
        }
        Ok(())
    }

    /// Marks the presentation as finished: `EXT-X-ENDLIST` from now on (R29); later pushes fail.
    pub fn end(&mut self) {
        self.abandon_parts();
        self.ended = true;
    }

    /// The whole playlist text.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(256 + 96 * self.window.len());
        self.render_into(&mut out);
        out
    }

    /// Renders into `out`, replacing its content (reuses its allocation): [`Render::Full`].
    pub fn render_into(&self, out: &mut String) {
        self.render_with(out, Render::Full);
    }

    /// Renders one form of the playlist into `out`, replacing its content. Without low latency
    /// every form is the classic playlist; a delta update with nothing to skip is the full one.
    pub(crate) fn render_with(&self, out: &mut String, form: Render) {
        out.clear();
        let w = "writing to a String cannot fail";
        let ll = self.ll.is_some() && form != Render::Classic;
        let skipped = if form == Render::Delta {
            self.skipped_segments()
        } else {
            0
        };
        out.push_str("#EXTM3U\n");
        let version = if skipped > 0 {
            low_latency::DELTA_PROTOCOL_VERSION
        } else if !self.maps.is_empty() {
            MAP_PROTOCOL_VERSION
        } else {
            PROTOCOL_VERSION
        };
        writeln!(out, "#EXT-X-VERSION:{version}").expect(w);
        writeln!(
            out,
            "#EXT-X-TARGETDURATION:{}",
            self.cfg.target_duration_secs
        )
        .expect(w);
        if ll {
            self.render_ll_header(out);
        }
        writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{}", self.media_sequence).expect(w);
        if self.signal_discontinuity_sequence {
            writeln!(
                out,
                "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
                self.discontinuity_sequence
            )
            .expect(w);
        }
        out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
        if let Some((span_start, span_end)) = self.date_span() {
            for r in self
                .ranges
                .iter()
                .filter(|r| r.start < span_end && r.end >= span_start)
            {
                write!(
                    out,
                    "#EXT-X-DATERANGE:ID=\"{}\",START-DATE=\"{}\",DURATION=",
                    r.range.id, r.start_text
                )
                .expect(w);
                write_millis(out, ticks_to_millis(r.range.duration));
                writeln!(out, ",{DATERANGE_LABEL_ATTRIBUTE}=\"{}\"", r.range.label).expect(w);
            }
        }
        if skipped > 0 {
            writeln!(out, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}").expect(w);
        }
        let mut map_shown = None;
        for e in self.window.iter().skip(skipped) {
            if e.segment.discontinuity {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            self.render_map(out, e.segment.sequence, &mut map_shown);
            out.push_str("#EXT-X-PROGRAM-DATE-TIME:");
            out.push_str(&e.pdt_text);
            out.push('\n');
            if ll {
                self.render_parts(out, e.segment.sequence, &e.parts);
            }
            out.push_str("#EXTINF:");
            write_millis(out, ticks_to_millis(e.segment.duration));
            out.push_str(",\n");
            self.cfg
                .name
                .write_file(out, MediaFile::Segment(e.segment.sequence));
            out.push('\n');
        }
        if ll {
            self.render_open(out, &mut map_shown);
        }
        if self.ended {
            out.push_str("#EXT-X-ENDLIST\n");
        }
    }

    /// Writes `EXT-X-MAP` before segment `sequence` when its init segment is not the one
    /// `shown` last (always before the first segment written, R49); RFC 8216 §4.3.2.5: it
    /// applies to every segment after it until the next one.
    fn render_map(&self, out: &mut String, sequence: u64, shown: &mut Option<u64>) {
        let Some(init) = self.map_of(sequence) else {
            return;
        };
        if *shown != Some(init) {
            out.push_str("#EXT-X-MAP:URI=\"");
            self.cfg.name.write_file(out, MediaFile::Init(init));
            out.push_str("\"\n");
            *shown = Some(init);
        }
    }

    /// Checks every rule the state must keep; `Err` describes the first one broken.
    pub fn check_invariants(&self) -> Result<(), String> {
        if self
            .maps
            .iter()
            .zip(self.maps.iter().skip(1))
            .any(|(a, b)| a.0 >= b.0)
        {
            return Err(format!("init segments out of order: {:?}", self.maps));
        }
        self.check_low_latency()?;
        let td = self.cfg.target_duration_secs;
        let len = self.window.len();
        // R22-R24: window bound, with the R24 exception.
        if len > self.cfg.list_size {
            let front = self
                .window
                .front()
                .expect("len > list_size >= 3")
                .segment
                .duration;
            if self.window_ticks - front.as_u64() >= 3 * self.target_ticks {
                return Err(format!(
                    "window holds {len} > list_size {} segments although removing the oldest \
                     would leave {} >= 3 x {td} s",
                    self.cfg.list_size,
                    Secs(Duration90k(self.window_ticks - front.as_u64()))
                ));
            }
        }
        if self.next_sequence != self.media_sequence + len as u64 {
            return Err(format!(
                "next sequence {} != media sequence {} + {len} segments",
                self.next_sequence, self.media_sequence
            ));
        }
        if self.media_sequence < self.cfg.start_sequence {
            return Err(format!(
                "media sequence {} below start {}",
                self.media_sequence, self.cfg.start_sequence
            ));
        }
        if self.discontinuity_sequence < self.cfg.start_discontinuity_sequence {
            return Err(format!(
                "discontinuity sequence {} below start {}",
                self.discontinuity_sequence, self.cfg.start_discontinuity_sequence
            ));
        }
        let any_discontinuity =
            self.window.iter().any(|e| e.segment.discontinuity) || self.discontinuity_sequence > 0;
        if any_discontinuity && !self.signal_discontinuity_sequence {
            return Err("discontinuities exist but EXT-X-DISCONTINUITY-SEQUENCE is off".into());
        }
        let removed_any = self.media_sequence > self.cfg.start_sequence;
        if removed_any && self.window_ticks < 3 * self.target_ticks {
            return Err(format!(
                "segments were removed but the window lasts only {} < 3 x {td} s (R24)",
                Secs(Duration90k(self.window_ticks))
            ));
        }
        let mut sum = 0u64;
        // The previous segment and its PDT in ticks (each PDT is converted once).
        let mut previous: Option<(&Segment, i64)> = None;
        for (i, e) in self.window.iter().enumerate() {
            let s = &e.segment;
            let want = self.media_sequence + i as u64;
            if s.sequence != want {
                return Err(format!(
                    "window slot {i} holds segment {} not {want}",
                    s.sequence
                ));
            }
            let ms = ticks_to_millis(s.duration);
            if ms == 0 || (ms + 500) / 1000 > td {
                return Err(format!(
                    "segment {}: EXTINF of {} outside (0, {td} s] after rounding (R13)",
                    s.sequence,
                    Secs(s.duration)
                ));
            }
            if e.longest_playlist < self.window_ticks {
                return Err(format!(
                    "segment {}: longest playlist {} shorter than the current one",
                    s.sequence,
                    Secs(Duration90k(e.longest_playlist))
                ));
            }
            if e.pdt_text_of != s.program_date_time
                || (!e.pdt_text_checked.replace(true)
                    && e.pdt_text != s.program_date_time.to_rfc3339())
            {
                return Err(format!(
                    "segment {}: stale PDT text {}",
                    s.sequence, e.pdt_text
                ));
            }
            let pdt_ticks = epoch_ticks(s.program_date_time);
            if let Some((p, p_ticks)) = previous {
                let gap = pdt_ticks - (p_ticks + p.duration.as_u64() as i64);
                if s.program_date_time <= p.program_date_time {
                    return Err(format!(
                        "segment {}: PDT not after the previous",
                        s.sequence
                    ));
                }
                // Each PDT is within 1 ms of its anchor + durations, so neighbours within 2 ms.
                if !s.discontinuity && gap.abs() >= 2 * TICKS_PER_MS as i64 {
                    return Err(format!(
                        "segment {}: PDT {} ticks away from the previous PDT + EXTINF (R33)",
                        s.sequence, gap
                    ));
                }
            }
            previous = Some((s, pdt_ticks));
            sum += s.duration.as_u64();
        }
        if sum != self.window_ticks {
            return Err(format!(
                "window duration {sum} != cached {}",
                self.window_ticks
            ));
        }
        let mut last_pending: Option<u64> = None;
        for p in &self.pending {
            if p.sequence >= self.media_sequence {
                return Err(format!(
                    "segment {} pending delete but still listed",
                    p.sequence
                ));
            }
            if p.delete_at.as_u64() <= self.stream_ticks {
                return Err(format!("segment {} overdue for deletion", p.sequence));
            }
            if last_pending.is_some_and(|l| l >= p.sequence) {
                return Err(format!("pending deletes out of order at {}", p.sequence));
            }
            last_pending = Some(p.sequence);
        }
        if self.ranges.len() > MAX_DATE_RANGES {
            return Err(format!("{} DATERANGEs held", self.ranges.len()));
        }
        let span = self.date_span();
        for (i, r) in self.ranges.iter().enumerate() {
            if self.ranges[..i].iter().any(|o| o.range.id == r.range.id) {
                return Err(format!("DATERANGE ID {:?} held twice (R36)", r.range.id));
            }
            let bad = |s: &str| s.chars().any(attributes::unsafe_in_quoted);
            if r.range.id.is_empty() || bad(&r.range.id) || bad(&r.range.label) {
                return Err(format!(
                    "DATERANGE {:?} has an unsafe quoted string (R37)",
                    r.range.id
                ));
            }
            if span.is_some_and(|(start, _)| r.end < start) {
                return Err(format!(
                    "DATERANGE {:?} left the window but is held",
                    r.range.id
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
