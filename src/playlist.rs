//! The live HLS media playlist: a pure sliding-window state machine and our own m3u8 writer.
//!
//! Implements the Media Playlist syntax of RFC 8216 §4 (tags of §4.3.1-§4.3.3, §4.3.2.6 and
//! §4.3.2.7) and the server rules for live playlists of RFC 8216 §6.2.1 and §6.2.2, with the
//! additions of its revision draft (rfc8216bis §4.4.5.1, §6.2.1, §6.2.2) where they are
//! stricter. The numbers `Rn` refer to the checklist in `docs/spec.md`; every rule below is proven
//! by a test named after it at the bottom of this file.
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
//!   which is the earliest moment bis §6.2.1 allows.
//! - **R13 rule**: a segment is accepted when its written EXTINF rounded to the nearest second
//!   (half up) is `<=` the target duration, the MUST of RFC 8216 §4.3.3.1. For version <= 5
//!   bis §8 reads the target as the unrounded maximum, so the config should be
//!   [`PlaylistConfig::target_duration_for`] the nominal segment (ceil, e.g. 2.002 s -> 3); then
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
//!   since its removal reaches its own duration plus the duration of the longest playlist that
//!   contained it (RFC 8216 §6.2.2; stronger than the revision draft's rule). With `list_size`
//!   N and equal segments that is N+1 segments after removal. Stream time only advances on push,
//!   so files still in their grace period when the stream ends are never returned and stay on
//!   disk.

use std::collections::VecDeque;
use std::fmt::{self, Write as _};

use crate::clock::WallClock;
use crate::time::{Ticks90k, TICKS_PER_SEC};

/// The `EXT-X-VERSION` we write: decimal-floating-point EXTINF needs 3 (RFC 8216 §7); PDT,
/// DATERANGE and INDEPENDENT-SEGMENTS add no requirement (R11).
pub const PROTOCOL_VERSION: u32 = 3;

/// The smallest window: a client should not start within three target durations of the end
/// (RFC 8216 §6.3.3, R38) and the server must keep three of them (§6.2.2, R24).
pub const MIN_LIST_SIZE: usize = 3;

/// The client attribute that carries a marker's label in `EXT-X-DATERANGE` (reverse DNS, R35).
pub const DATERANGE_LABEL_ATTRIBUTE: &str = "X-COM-HLSSTREAMER-LABEL";

/// 90 kHz ticks per millisecond (exact).
const TICKS_PER_MS: u64 = TICKS_PER_SEC / 1000;

/// Everything fixed for the life of one playlist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlaylistConfig {
    /// Segment URI prefix: segment `n` is `format!("{name}{n}.ts")`. RFC 3986 unreserved
    /// characters only (`A-Z a-z 0-9 - . _ ~`), so the URI line needs no escaping.
    pub name: String,
    /// `EXT-X-TARGETDURATION`, whole seconds, >= 1; use [`PlaylistConfig::target_duration_for`].
    pub target_duration_secs: u64,
    /// Segments in the window (>= [`MIN_LIST_SIZE`]).
    pub list_size: usize,
    /// Media sequence number of the first segment (R22: persist it across restarts).
    pub start_sequence: u64,
    /// `EXT-X-DISCONTINUITY-SEQUENCE` to start from (R26: persist it across restarts).
    pub start_discontinuity_sequence: u64,
}

impl PlaylistConfig {
    /// The target duration for segments of nominal length `segment`: its ceiling in whole
    /// seconds, at least 1 (R13: for version 3 the target bounds the unrounded EXTINF, so 2.002 s
    /// at 29.97 fps needs 3).
    pub fn target_duration_for(segment: Ticks90k) -> u64 {
        segment.as_u64().div_ceil(TICKS_PER_SEC).max(1)
    }
}

/// One media segment in the window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Media sequence number; the file is [`Playlist::segment_uri`] of it.
    pub sequence: u64,
    /// Exact duration; `EXTINF` is this rounded to the millisecond.
    pub duration: Ticks90k,
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
    pub duration: Ticks90k,
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
    pub delete_at: Ticks90k,
}

/// Why a configuration, segment or range was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlaylistError {
    /// `target_duration_secs` is 0 (RFC 8216 §4.3.3.1 wants a decimal-integer >= 1).
    TargetDurationZero,
    /// `target_duration_secs` is so large that durations overflow.
    TargetDurationTooLarge { secs: u64 },
    /// `list_size` is below [`MIN_LIST_SIZE`] (R24, R38).
    ListTooShort { list_size: usize },
    /// The segment name is empty or holds a character outside RFC 3986's unreserved set.
    InvalidName { name: String },
    /// A segment was pushed or a range added after [`Playlist::end`] (R29).
    Ended { sequence: u64 },
    /// The segment's EXTINF would be `0.000`.
    ZeroDuration { sequence: u64, duration: Ticks90k },
    /// The segment's EXTINF rounded to whole seconds exceeds the target duration (R4, R13).
    SegmentTooLong {
        sequence: u64,
        duration: Ticks90k,
        target_duration_secs: u64,
    },
    /// The segment's PDT is not after the previous segment's.
    ProgramDateTimeNotAfter {
        sequence: u64,
        program_date_time: WallClock,
        previous_program_date_time: WallClock,
    },
    /// A continuous segment's PDT is not its stream's anchor plus the durations since (R33).
    ProgramDateTimeDrift {
        sequence: u64,
        program_date_time: WallClock,
        /// The exact expected instant in 90 kHz ticks since the Unix epoch.
        expected_ticks: i64,
    },
    /// A discontinuity's PDT overlaps the previous segment by a second or more (R33).
    ProgramDateTimeOverlap {
        sequence: u64,
        program_date_time: WallClock,
        /// End of the previous segment in 90 kHz ticks since the Unix epoch.
        previous_end_ticks: i64,
    },
    /// The media sequence number space is exhausted (R22 forbids wrapping).
    SequenceExhausted,
    /// A DATERANGE ID is empty or holds `"`, CR, LF or another control character (R37).
    InvalidDateRangeId { id: String },
    /// A DATERANGE ID is already in the playlist (R36).
    DuplicateDateRangeId { id: String },
    /// The range ended before the window's first date, so it would never be shown (R36).
    DateRangeExpired {
        id: String,
        end: WallClock,
        window_start: WallClock,
    },
}

/// Formats a duration as `2.002 s (180180 ticks)`.
struct Secs(Ticks90k);

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

impl fmt::Display for PlaylistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use PlaylistError::*;
        match self {
            TargetDurationZero => f.write_str("target duration must be at least 1 s"),
            TargetDurationTooLarge { secs } => write!(f, "target duration {secs} s is too large"),
            ListTooShort { list_size } => write!(
                f,
                "list size {list_size} is too short: a live window must hold at least \
                 {MIN_LIST_SIZE} target durations (RFC 8216 §6.2.2, §6.3.3)"
            ),
            InvalidName { name } => write!(
                f,
                "segment name {name:?} must be non-empty and use only A-Z a-z 0-9 - . _ ~"
            ),
            Ended { sequence } => write!(
                f,
                "playlist already ended with EXT-X-ENDLIST (next sequence would be {sequence})"
            ),
            ZeroDuration { sequence, duration } => {
                write!(
                    f,
                    "segment {sequence}: duration {} rounds to EXTINF 0.000",
                    Secs(*duration)
                )
            }
            SegmentTooLong {
                sequence,
                duration,
                target_duration_secs,
            } => write!(
                f,
                "segment {sequence}: duration {} rounds above EXT-X-TARGETDURATION \
                 {target_duration_secs} s (RFC 8216 §4.3.3.1)",
                Secs(*duration)
            ),
            ProgramDateTimeNotAfter {
                sequence,
                program_date_time,
                previous_program_date_time,
            } => {
                write!(
                    f,
                    "segment {sequence}: EXT-X-PROGRAM-DATE-TIME {} is not after segment {}'s {}",
                    program_date_time.to_rfc3339(),
                    sequence.wrapping_sub(1),
                    previous_program_date_time.to_rfc3339()
                )
            }
            ProgramDateTimeDrift {
                sequence,
                program_date_time,
                expected_ticks,
            } => write!(
                f,
                "segment {sequence}: EXT-X-PROGRAM-DATE-TIME {} is {} ms off the stream's anchor \
                 plus the durations since, {}; push with discontinuity to re-anchor",
                program_date_time.to_rfc3339(),
                (epoch_ticks(*program_date_time) - expected_ticks) as f64 / TICKS_PER_MS as f64,
                EpochTicks(*expected_ticks)
            ),
            ProgramDateTimeOverlap {
                sequence,
                program_date_time,
                previous_end_ticks,
            } => write!(
                f,
                "segment {sequence}: discontinuity EXT-X-PROGRAM-DATE-TIME {} overlaps the \
                 previous segment (ending {}) by a second or more",
                program_date_time.to_rfc3339(),
                EpochTicks(*previous_end_ticks)
            ),
            SequenceExhausted => f.write_str("media sequence number space exhausted"),
            InvalidDateRangeId { id } => write!(
                f,
                "EXT-X-DATERANGE ID {id:?} must be non-empty without quotes or control characters"
            ),
            DuplicateDateRangeId { id } => {
                write!(f, "EXT-X-DATERANGE ID {id:?} is already in the playlist")
            }
            DateRangeExpired {
                id,
                end,
                window_start,
            } => write!(
                f,
                "EXT-X-DATERANGE {id:?} ended at {}, before the window's first segment at {}",
                end.to_rfc3339(),
                window_start.to_rfc3339()
            ),
        }
    }
}

impl std::error::Error for PlaylistError {}

/// A segment in the window, with its PDT text formatted once.
#[derive(Clone, Debug)]
struct Entry {
    segment: Segment,
    pdt_text: String,
    /// Duration of the longest published playlist that contained this segment (R25).
    longest_playlist: u64,
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
}

/// `WallClock` as 90 kHz ticks since the Unix epoch (exact: 90 ticks per ms).
fn epoch_ticks(w: WallClock) -> i64 {
    w.unix_millis() * TICKS_PER_MS as i64
}

/// Ticks to milliseconds, rounded to nearest (half up): 180180 -> 2002.
fn ticks_to_millis(t: Ticks90k) -> u64 {
    t.as_u64().saturating_add(TICKS_PER_MS / 2) / TICKS_PER_MS
}

/// Writes `ms` as decimal seconds with three decimals: 2002 -> `2.002`.
fn write_millis(out: &mut String, ms: u64) {
    write!(out, "{}.{:03}", ms / 1000, ms % 1000).expect("writing to a String cannot fail");
}

/// A quoted-string for an attribute list (R37): `"` becomes `'`, control characters (CR, LF and
/// the rest, R9) become spaces.
fn sanitise_quoted(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' => '\'',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect()
}

fn is_unreserved(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')
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
        if cfg.name.is_empty() || !cfg.name.chars().all(is_unreserved) {
            return Err(PlaylistError::InvalidName { name: cfg.name });
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
            cfg,
        })
    }

    pub fn config(&self) -> &PlaylistConfig {
        &self.cfg
    }

    /// The media sequence number the next push gets (name the file after it before writing).
    pub fn next_sequence(&self) -> u64 {
        self.next_sequence
    }

    /// The segment's URI and file name, `{name}{sequence}.ts`.
    pub fn segment_uri(&self, sequence: u64) -> String {
        format!("{}{}.ts", self.cfg.name, sequence)
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
    pub fn window_duration(&self) -> Ticks90k {
        Ticks90k(self.window_ticks)
    }

    /// Sum of every duration ever pushed: the clock that grace periods (R25) run on.
    pub fn stream_time(&self) -> Ticks90k {
        Ticks90k(self.stream_ticks)
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
        duration: Ticks90k,
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
        duration: Ticks90k,
        program_date_time: WallClock,
        discontinuity: bool,
    ) -> Result<PushOutcome, PlaylistError> {
        self.push_inner(duration, program_date_time, discontinuity, true)
    }

    fn push_inner(
        &mut self,
        duration: Ticks90k,
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
            longest_playlist: 0,
        });
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
            self.pending.push_back(PendingDelete {
                sequence: entry.segment.sequence,
                delete_at: Ticks90k(self.stream_ticks + front_ticks + entry.longest_playlist),
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
                delete_now.push(format!("{name}{}.ts", p.sequence));
            }
            !due
        });

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
        if range.id.is_empty() || range.id.chars().any(|c| c == '"' || c.is_control()) {
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
                    end: range.start.add_ticks(range.duration),
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
        Ok(())
    }

    /// Marks the presentation as finished: `EXT-X-ENDLIST` from now on (R29); later pushes fail.
    pub fn end(&mut self) {
        self.ended = true;
    }

    /// The whole playlist text.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(256 + 96 * self.window.len());
        self.render_into(&mut out);
        out
    }

    /// Renders into `out`, replacing its content (reuses its allocation).
    pub fn render_into(&self, out: &mut String) {
        out.clear();
        let w = "writing to a String cannot fail";
        out.push_str("#EXTM3U\n");
        writeln!(out, "#EXT-X-VERSION:{PROTOCOL_VERSION}").expect(w);
        writeln!(
            out,
            "#EXT-X-TARGETDURATION:{}",
            self.cfg.target_duration_secs
        )
        .expect(w);
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
        for e in &self.window {
            if e.segment.discontinuity {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{}", e.pdt_text).expect(w);
            out.push_str("#EXTINF:");
            write_millis(out, ticks_to_millis(e.segment.duration));
            writeln!(out, ",\n{}{}.ts", self.cfg.name, e.segment.sequence).expect(w);
        }
        if self.ended {
            out.push_str("#EXT-X-ENDLIST\n");
        }
    }

    /// Checks every rule the state must keep; `Err` describes the first one broken.
    pub fn check_invariants(&self) -> Result<(), String> {
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
                    Secs(Ticks90k(self.window_ticks - front.as_u64()))
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
                Secs(Ticks90k(self.window_ticks))
            ));
        }
        let mut sum = 0u64;
        let mut previous: Option<&Segment> = None;
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
                    Secs(Ticks90k(e.longest_playlist))
                ));
            }
            if e.pdt_text != s.program_date_time.to_rfc3339() {
                return Err(format!(
                    "segment {}: stale PDT text {}",
                    s.sequence, e.pdt_text
                ));
            }
            if let Some(p) = previous {
                let gap = epoch_ticks(s.program_date_time)
                    - (epoch_ticks(p.program_date_time) + p.duration.as_u64() as i64);
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
            previous = Some(s);
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
        let span = self.date_span();
        for (i, r) in self.ranges.iter().enumerate() {
            if self.ranges[..i].iter().any(|o| o.range.id == r.range.id) {
                return Err(format!("DATERANGE ID {:?} held twice (R36)", r.range.id));
            }
            let bad = |s: &str| s.chars().any(|c| c == '"' || c.is_control());
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
mod tests {
    use super::*;
    use crate::time::FrameRate;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::collections::{BTreeMap, HashMap};

    /// 2026-11-25T12:00:00.000Z.
    const T0_MS: i64 = 1_795_608_000_000;
    const TWO_S: Ticks90k = Ticks90k(180_000);
    const GOLDEN_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/");

    fn t0() -> WallClock {
        WallClock::from_unix_millis(T0_MS)
    }

    fn config(list_size: usize, target_duration_secs: u64) -> PlaylistConfig {
        PlaylistConfig {
            name: "chessboard".into(),
            target_duration_secs,
            list_size,
            start_sequence: 0,
            start_discontinuity_sequence: 0,
        }
    }

    /// A playlist fed the way the segmenter does: PDT = anchor + stream time, rounded down.
    struct Feed {
        pl: Playlist,
        anchor: WallClock,
        /// Stream ticks since `anchor` at the next segment's start.
        at: Ticks90k,
    }

    impl Feed {
        fn new(cfg: PlaylistConfig) -> Self {
            Feed {
                pl: Playlist::new(cfg).expect("valid test config"),
                anchor: t0(),
                at: Ticks90k(0),
            }
        }

        fn pdt(&self) -> WallClock {
            self.anchor.add_ticks(self.at)
        }

        fn push(&mut self, d: Ticks90k) -> PushOutcome {
            let out = self
                .pl
                .push(d, self.pdt(), false)
                .expect("valid continuous segment");
            self.at = self.at + d;
            self.pl.check_invariants().expect("invariants after push");
            out
        }

        /// A restart: new anchor `gap_ms` after the previous segment's end.
        fn push_discontinuity(&mut self, d: Ticks90k, gap_ms: i64) -> PushOutcome {
            self.anchor = WallClock::from_unix_millis(self.pdt().unix_millis() + gap_ms);
            self.at = Ticks90k(0);
            let out = self
                .pl
                .push(d, self.pdt(), true)
                .expect("valid discontinuity");
            self.at = d;
            self.pl
                .check_invariants()
                .expect("invariants after discontinuity");
            out
        }

        fn range(&mut self, id: &str, at_ms: i64, duration: Ticks90k, label: &str) {
            self.pl
                .add_date_range(DateRange {
                    id: id.into(),
                    start: WallClock::from_unix_millis(T0_MS + at_ms),
                    duration,
                    label: label.into(),
                })
                .expect("valid date range");
            self.pl
                .check_invariants()
                .expect("invariants after add_date_range");
        }
    }

    /// Compares `actual` with a golden file byte for byte, printing both sides on mismatch
    /// (ripgrep's `eqnice!`); `UPDATE_GOLDEN=1` rewrites the file instead.
    fn golden(name: &str, actual: &str) {
        let path = format!("{GOLDEN_DIR}{name}");
        if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
            std::fs::create_dir_all(GOLDEN_DIR).expect("create golden dir");
            std::fs::write(&path, actual).expect("write golden file");
            return;
        }
        let expected = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{path}: {e}; run with UPDATE_GOLDEN=1 to create it"));
        if expected != actual {
            let line = expected
                .lines()
                .zip(actual.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
            panic!(
                "\n\ngolden file {path} differs from the output (first at line {}); \
                 rerun with UPDATE_GOLDEN=1 to accept the change\n\
                 expected:\n```\n{expected}```\n\ngot:\n```\n{actual}```\n",
                line + 1
            );
        }
    }

    /// The DATERANGE attribute lists of `text`, parsed by hand (m3u8-rs keeps only one per
    /// segment). Quoted values keep no quotes.
    fn dateranges(text: &str) -> Vec<Vec<(String, String)>> {
        text.lines()
            .filter_map(|l| l.strip_prefix("#EXT-X-DATERANGE:"))
            .map(|attrs| {
                let mut out = Vec::new();
                let mut rest = attrs;
                while !rest.is_empty() {
                    let (name, after) = rest.split_once('=').expect("attribute has '='");
                    let (value, after) = if let Some(q) = after.strip_prefix('"') {
                        let end = q.find('"').expect("closing quote");
                        (q[..end].to_string(), &q[end + 1..])
                    } else {
                        let end = after.find(',').unwrap_or(after.len());
                        (after[..end].to_string(), &after[end..])
                    };
                    out.push((name.to_string(), value));
                    rest = after.strip_prefix(',').unwrap_or(after);
                    assert!(
                        after.is_empty() || after.starts_with(','),
                        "junk after value: {attrs:?}"
                    );
                }
                out
            })
            .collect()
    }

    fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> &'a str {
        &attrs
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no {name}"))
            .1
    }

    /// A strict reading of RFC 8216 §4 syntax that m3u8-rs is too lenient to give: R9 (UTF-8,
    /// LF, no whitespace outside quoted strings, no control characters), R10, R11, R15-R18,
    /// R35/R37 attribute lists.
    fn assert_syntax(text: &str) {
        assert!(!text.starts_with('\u{feff}'), "R9: BOM");
        assert!(text.starts_with("#EXTM3U\n"), "R10: #EXTM3U first:\n{text}");
        assert!(text.ends_with('\n'), "last line ends in LF");
        let mut seen_segment = false;
        let mut seen_dseq = false;
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for line in text.split_terminator('\n') {
            assert!(!line.is_empty(), "empty line in\n{text}");
            let mut quoted = false;
            for c in line.chars() {
                if c == '"' {
                    quoted = !quoted;
                }
                assert!(!c.is_control(), "R9: control character in {line:?}");
                assert!(quoted || !c.is_whitespace(), "R9: whitespace in {line:?}");
            }
            assert!(!quoted, "unterminated quoted string in {line:?}");
            let Some(tag) = line.strip_prefix('#') else {
                assert!(
                    line.starts_with("chessboard") && line.ends_with(".ts"),
                    "unexpected URI line {line:?}"
                );
                seen_segment = true;
                continue;
            };
            let name = tag.split(':').next().expect("split yields one item");
            *counts.entry(name).or_default() += 1;
            match name {
                "EXTM3U" | "EXT-X-INDEPENDENT-SEGMENTS" | "EXT-X-ENDLIST" => {}
                "EXT-X-VERSION" | "EXT-X-TARGETDURATION" | "EXT-X-MEDIA-SEQUENCE" => {
                    assert!(!seen_segment, "R15: {name} after a segment");
                    let v = &tag[name.len() + 1..];
                    assert!(
                        v.bytes().all(|b| b.is_ascii_digit()),
                        "decimal-integer: {line}"
                    );
                }
                "EXT-X-DISCONTINUITY-SEQUENCE" => {
                    assert!(!seen_segment, "R16: {name} after a segment");
                    seen_dseq = true;
                }
                "EXT-X-DISCONTINUITY" => assert!(seen_dseq, "R16: no DISCONTINUITY-SEQUENCE"),
                "EXT-X-PROGRAM-DATE-TIME" => {
                    let v = &tag[name.len() + 1..];
                    assert_eq!(v.len(), 24, "R32: ms and Z in {v}");
                    assert!(v.ends_with('Z') && v.as_bytes()[19] == b'.', "R32: {v}");
                }
                "EXTINF" => {
                    let v = tag["EXTINF:".len()..]
                        .strip_suffix(',')
                        .expect("EXTINF ends in ','");
                    let (s, ms) = v.split_once('.').expect("R12: decimal EXTINF");
                    assert_eq!(ms.len(), 3, "R12: three decimals in {v}");
                    assert!(
                        s.bytes().chain(ms.bytes()).all(|b| b.is_ascii_digit()),
                        "{v}"
                    );
                }
                "EXT-X-DATERANGE" => {
                    for (n, v) in &dateranges(line)[0] {
                        assert!(
                            n.bytes()
                                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-'),
                            "R37: attribute name {n}"
                        );
                        assert!(!v.contains(['"', '\r', '\n']), "R37: {v:?}");
                    }
                }
                other => panic!("unexpected tag {other} in\n{text}"),
            }
        }
        for once in [
            "EXTM3U",
            "EXT-X-VERSION",
            "EXT-X-TARGETDURATION",
            "EXT-X-MEDIA-SEQUENCE",
        ] {
            assert_eq!(
                counts.get(once),
                Some(&1),
                "R11/R13/R15: exactly one {once}"
            );
        }
        assert_eq!(
            counts.get("EXT-X-INDEPENDENT-SEGMENTS"),
            Some(&1),
            "R18: once"
        );
        assert!(counts
            .get("EXT-X-DISCONTINUITY-SEQUENCE")
            .is_none_or(|&n| n == 1));
        assert!(counts.get("EXT-X-ENDLIST").is_none_or(|&n| n == 1));
        assert!(
            !text.contains("PLAYLIST-TYPE"),
            "R17: live playlist with a type"
        );
    }

    /// Parses `text` with m3u8-rs (the independent parser) and holds it against the state.
    fn assert_parses_as(pl: &Playlist, text: &str) -> m3u8_rs::MediaPlaylist {
        assert_syntax(text);
        let parsed = m3u8_rs::parse_media_playlist_res(text.as_bytes())
            .unwrap_or_else(|e| panic!("m3u8-rs rejects our playlist: {e:?}\n{text}"));
        assert_eq!(parsed.version, Some(PROTOCOL_VERSION as usize));
        assert_eq!(parsed.target_duration, pl.config().target_duration_secs);
        assert_eq!(parsed.media_sequence, pl.media_sequence());
        assert_eq!(parsed.discontinuity_sequence, pl.discontinuity_sequence());
        assert_eq!(parsed.end_list, pl.is_ended());
        assert!(parsed.playlist_type.is_none(), "R17");
        assert!(parsed.independent_segments);
        assert!(parsed.unknown_tags.is_empty(), "{:?}", parsed.unknown_tags);
        let ours: Vec<&Segment> = pl.segments().collect();
        assert_eq!(
            parsed.segments.len(),
            ours.len(),
            "segment count in\n{text}"
        );
        for (p, s) in parsed.segments.iter().zip(&ours) {
            assert_eq!(p.uri, pl.segment_uri(s.sequence));
            assert_eq!(
                (f64::from(p.duration) * 1000.0).round() as u64,
                ticks_to_millis(s.duration)
            );
            assert!(
                (f64::from(p.duration).round() as u64) <= parsed.target_duration,
                "R13: EXTINF {} above target {}",
                p.duration,
                parsed.target_duration
            );
            assert_eq!(p.discontinuity, s.discontinuity);
            let pdt = p.program_date_time.expect("R32/R33: PDT on every segment");
            assert_eq!(pdt.timestamp_millis(), s.program_date_time.unix_millis());
            assert!(p.unknown_tags.is_empty(), "{:?}", p.unknown_tags);
        }
        // DATERANGEs: m3u8-rs attaches (only) the last one before the first segment.
        let ranges: Vec<&DateRange> = pl.date_ranges().collect();
        let ours_text = dateranges(text);
        assert_eq!(ours_text.len(), ranges.len());
        if let Some(last) = ranges.last() {
            let d = parsed.segments[0]
                .daterange
                .as_ref()
                .expect("m3u8-rs parsed the DATERANGE");
            assert_eq!(d.id, last.id);
            assert_eq!(d.start_date.timestamp_millis(), last.start.unix_millis());
            let dur = d.duration.expect("DURATION present");
            assert_eq!(
                (dur * 1000.0).round() as u64,
                ticks_to_millis(last.duration)
            );
            let x = d.x_prefixed.as_ref().expect("X- attributes present");
            assert_eq!(
                x[DATERANGE_LABEL_ATTRIBUTE].as_quoted(),
                Some(last.label.as_str())
            );
        }
        for (attrs, r) in ours_text.iter().zip(&ranges) {
            assert_eq!(attr(attrs, "ID"), r.id);
            assert_eq!(attr(attrs, "START-DATE"), r.start.to_rfc3339());
            assert_eq!(attr(attrs, DATERANGE_LABEL_ATTRIBUTE), r.label);
        }
        parsed
    }

    fn render_checked(pl: &Playlist) -> String {
        let text = pl.render();
        assert_parses_as(pl, &text);
        text
    }

    // ---- golden files ----

    #[test]
    fn golden_first_segment() {
        let mut f = Feed::new(config(5, 2));
        let out = f.push(TWO_S);
        assert_eq!(
            out,
            PushOutcome {
                sequence: 0,
                removed: vec![],
                delete_now: vec![]
            }
        );
        golden("first_segment.m3u8", &render_checked(&f.pl));
    }

    #[test]
    fn golden_window_full() {
        let mut f = Feed::new(config(5, 2));
        for _ in 0..5 {
            assert!(f.push(TWO_S).removed.is_empty());
        }
        golden("window_full.m3u8", &render_checked(&f.pl));
    }

    #[test]
    fn golden_window_sliding() {
        let mut f = Feed::new(config(5, 2));
        for _ in 0..7 {
            f.push(TWO_S);
        }
        let parsed = assert_parses_as(&f.pl, &f.pl.render());
        assert_eq!(parsed.media_sequence, 2);
        assert_eq!(parsed.segments[0].uri, "chessboard2.ts");
        golden("window_sliding.m3u8", &render_checked(&f.pl));
    }

    /// The marker starts at 3.4 s: it appears with the segment [2 s, 4 s) that holds it.
    #[test]
    fn golden_daterange_entering() {
        let mut f = Feed::new(config(5, 2));
        f.push(TWO_S);
        f.range("marker-1", 3_400, TWO_S, "Marker 1");
        assert!(
            !render_checked(&f.pl).contains("DATERANGE"),
            "not yet in the window"
        );
        f.push(TWO_S);
        let text = render_checked(&f.pl);
        assert_eq!(dateranges(&text).len(), 1);
        golden("daterange_entering.m3u8", &text);
    }

    /// The marker [3.4 s, 5.4 s] is shown while [4 s, 6 s) is the first segment and dropped
    /// when that segment leaves.
    #[test]
    fn golden_daterange_leaving() {
        let mut f = Feed::new(config(3, 2));
        f.push(TWO_S);
        f.range("marker-1", 3_400, TWO_S, "Marker 1");
        for _ in 0..4 {
            f.push(TWO_S);
        }
        assert_eq!(f.pl.media_sequence(), 2, "first segment is [4 s, 6 s)");
        let text = render_checked(&f.pl);
        assert_eq!(
            dateranges(&text).len(),
            1,
            "end 5.4 s is inside the first segment"
        );
        golden("daterange_leaving.m3u8", &text);
        f.push(TWO_S);
        let text = render_checked(&f.pl);
        assert_eq!(dateranges(&text).len(), 0, "window starts at 6 s now");
        golden("daterange_left.m3u8", &text);
    }

    #[test]
    fn golden_endlist() {
        let mut f = Feed::new(config(5, 2));
        for _ in 0..3 {
            f.push(TWO_S);
        }
        f.pl.end();
        let parsed = assert_parses_as(&f.pl, &f.pl.render());
        assert!(parsed.end_list);
        golden("endlist.m3u8", &render_checked(&f.pl));
    }

    /// Three segments, a restart 10 s later (new PTS timeline), two more.
    #[test]
    fn golden_discontinuity() {
        let mut f = Feed::new(config(5, 2));
        for _ in 0..3 {
            f.push(TWO_S);
        }
        f.push_discontinuity(TWO_S, 10_000);
        f.push(TWO_S);
        let parsed = assert_parses_as(&f.pl, &f.pl.render());
        let flags: Vec<bool> = parsed.segments.iter().map(|s| s.discontinuity).collect();
        assert_eq!(flags, [false, false, false, true, false]);
        golden("discontinuity.m3u8", &render_checked(&f.pl));
        // Slide until the discontinuity leaves: the sequence counts it (R26).
        for _ in 0..4 {
            f.push(TWO_S);
        }
        assert_eq!(f.pl.discontinuity_sequence(), 1);
        golden("discontinuity_left.m3u8", &render_checked(&f.pl));
    }

    /// 29.97 fps, 60 frames per segment: EXTINF 2.002 exactly, TARGETDURATION 3 (R12, R13).
    #[test]
    fn golden_ntsc_29_97() {
        let rate = FrameRate::new(30_000, 1001).expect("valid rate");
        let seg = rate.pts_of(60);
        assert_eq!(seg, Ticks90k(180_180));
        let target = PlaylistConfig::target_duration_for(seg);
        assert_eq!(target, 3);
        let mut f = Feed::new(config(5, target));
        for k in 0..7u64 {
            // Boundaries from frame indices, as the segmenter cuts them.
            f.push(rate.pts_of(60 * (k + 1)) - rate.pts_of(60 * k));
        }
        let text = render_checked(&f.pl);
        assert!(text.contains("#EXTINF:2.002,\n"));
        assert!(text.contains("#EXT-X-TARGETDURATION:3\n"));
        golden("ntsc_29_97.m3u8", &text);
    }

    // ---- rules ----

    #[test]
    fn r9_no_bom_cr_or_stray_whitespace() {
        let mut f = Feed::new(config(3, 2));
        f.range("a b", 100, TWO_S, "tab\there, line\r\nbreak and \"quotes\"");
        for _ in 0..4 {
            f.push(TWO_S);
        }
        let text = render_checked(&f.pl);
        assert!(!text.contains('\r') && !text.contains('\t'));
        assert!(text.lines().all(|l| l == l.trim()));
    }

    #[test]
    fn r11_version_3_exactly_once() {
        let mut f = Feed::new(config(3, 2));
        f.push(TWO_S);
        let text = render_checked(&f.pl);
        assert_eq!(text.matches("#EXT-X-VERSION").count(), 1);
        assert_eq!(text.lines().nth(1), Some("#EXT-X-VERSION:3"));
    }

    #[test]
    fn r12_extinf_exact_from_ticks() {
        let cases = [
            (180_000, "2.000"),
            (180_180, "2.002"),
            (3003, "0.033"),
            (45, "0.001"), // half a millisecond rounds up
            (89, "0.001"),
            (135, "0.002"), // 1.5 ms
            (134, "0.001"),
            (269_999, "3.000"),
        ];
        for (ticks, want) in cases {
            let mut s = String::new();
            write_millis(&mut s, ticks_to_millis(Ticks90k(ticks)));
            assert_eq!(s, want, "{ticks} ticks");
        }
        // 30000 segments of 60 frames at 29.97 fps: the EXTINF sum is the exact stream time.
        let rate = FrameRate::new(30_000, 1001).expect("valid rate");
        let total_ms: u64 = (0..30_000u64)
            .map(|k| ticks_to_millis(rate.pts_of(60 * (k + 1)) - rate.pts_of(60 * k)))
            .sum();
        assert_eq!(total_ms * TICKS_PER_MS, rate.pts_of(60 * 30_000).as_u64());
    }

    #[test]
    fn r12_zero_extinf_rejected() {
        let mut pl = Playlist::new(config(3, 2)).expect("valid");
        let err = pl.push(Ticks90k(44), t0(), false).expect_err("0.000 s");
        assert_eq!(
            err,
            PlaylistError::ZeroDuration {
                sequence: 0,
                duration: Ticks90k(44)
            }
        );
        assert_eq!(pl.next_sequence(), 0, "nothing changed");
    }

    #[test]
    fn r13_target_duration_covers_every_extinf() {
        let mut f = Feed::new(config(3, 2));
        // 2.499 s rounds to 2: accepted; 2.500 s rounds to 3: refused with context.
        f.push(Ticks90k(2_499 * 90));
        let pdt = f.pdt();
        let err =
            f.pl.push(Ticks90k(2_500 * 90), pdt, false)
                .expect_err("rounds to 3 > 2");
        assert_eq!(
            err,
            PlaylistError::SegmentTooLong {
                sequence: 1,
                duration: Ticks90k(225_000),
                target_duration_secs: 2
            }
        );
        let msg = err.to_string();
        assert!(
            msg.contains("segment 1") && msg.contains("2.500 s"),
            "{msg}"
        );
        f.pl.check_invariants()
            .expect("a refused push changes nothing");
        assert_eq!(f.pl.next_sequence(), 1);
        let parsed = assert_parses_as(&f.pl, &f.pl.render());
        assert!(parsed
            .segments
            .iter()
            .all(|s| s.duration.round() as u64 <= parsed.target_duration));
        assert_eq!(PlaylistConfig::target_duration_for(TWO_S), 2);
        assert_eq!(PlaylistConfig::target_duration_for(Ticks90k(180_001)), 3);
        assert_eq!(PlaylistConfig::target_duration_for(Ticks90k(1)), 1);
    }

    #[test]
    fn r14_target_duration_constant_for_life() {
        let mut f = Feed::new(config(4, 3));
        let mut rng = StdRng::seed_from_u64(14);
        for _ in 0..200 {
            f.push(Ticks90k(rng.random_range(90..=3_499 * 90)));
            let text = render_checked(&f.pl);
            assert_eq!(text.lines().nth(2), Some("#EXT-X-TARGETDURATION:3"));
        }
    }

    #[test]
    fn r16_discontinuity_sequence_written_from_first_discontinuity_on() {
        let mut f = Feed::new(config(3, 2));
        f.push(TWO_S);
        assert!(
            !render_checked(&f.pl).contains("DISCONTINUITY"),
            "none yet: omitted"
        );
        f.push_discontinuity(TWO_S, 500);
        let text = render_checked(&f.pl);
        let dseq = text
            .find("#EXT-X-DISCONTINUITY-SEQUENCE:0\n")
            .expect("present");
        let first_uri = text.find("chessboard0.ts").expect("segment 0");
        let disc = text.find("#EXT-X-DISCONTINUITY\n").expect("tag");
        assert!(dseq < first_uri && dseq < disc);
        // Sticky: stays after the discontinuity left.
        for _ in 0..5 {
            f.push(TWO_S);
        }
        let text = render_checked(&f.pl);
        assert!(text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"));
        assert!(!text.contains("#EXT-X-DISCONTINUITY\n"));
        // A restarted stream carries its persisted number from the start.
        let mut cfg = config(3, 2);
        cfg.start_discontinuity_sequence = 7;
        let mut f = Feed::new(cfg);
        f.push(TWO_S);
        assert!(render_checked(&f.pl).contains("#EXT-X-DISCONTINUITY-SEQUENCE:7\n"));
    }

    #[test]
    fn r17_no_playlist_type_even_after_end() {
        let mut f = Feed::new(config(3, 2));
        f.push(TWO_S);
        f.pl.end();
        assert!(!render_checked(&f.pl).contains("PLAYLIST-TYPE"));
    }

    #[test]
    fn r22_media_sequence_increases_by_removed_count() {
        let mut cfg = config(3, 2);
        cfg.start_sequence = 1_000;
        let mut f = Feed::new(cfg);
        let mut last = f.pl.media_sequence();
        assert_eq!(last, 1_000);
        for i in 0..20u64 {
            assert_eq!(f.pl.next_sequence(), 1_000 + i);
            let out = f.push(TWO_S);
            assert_eq!(out.sequence, 1_000 + i);
            let msn = f.pl.media_sequence();
            assert_eq!(
                msn - last,
                out.removed.len() as u64,
                "R22: +1 per removed segment"
            );
            last = msn;
            let parsed = assert_parses_as(&f.pl, &f.pl.render());
            assert_eq!(parsed.media_sequence, msn);
            assert_eq!(parsed.segments[0].uri, format!("chessboard{msn}.ts"));
        }
        assert_eq!(f.pl.media_sequence(), 1_017);
    }

    #[test]
    fn r23_removed_in_playlist_order() {
        let mut f = Feed::new(config(3, 2));
        let mut removed = Vec::new();
        for _ in 0..10 {
            removed.extend(f.push(TWO_S).removed.into_iter().map(|s| s.sequence));
        }
        assert_eq!(removed, (0..7).collect::<Vec<_>>());
        let listed: Vec<u64> = f.pl.segments().map(|s| s.sequence).collect();
        assert_eq!(listed, [7, 8, 9]);
    }

    #[test]
    fn r24_never_remove_below_three_target_durations() {
        let mut f = Feed::new(config(3, 2));
        // 0.5 s segments: the window must keep >= 6 s, so 12 of them, not 3.
        for _ in 0..30 {
            f.push(Ticks90k(45_000));
        }
        assert_eq!(f.pl.segments().count(), 12);
        assert_eq!(f.pl.window_duration(), Ticks90k::from_secs(6));
        render_checked(&f.pl);
        // Back to full-length segments: the window shrinks back to list_size.
        for _ in 0..4 {
            f.push(TWO_S);
        }
        assert_eq!(f.pl.segments().count(), 3);
    }

    #[test]
    fn r25_removed_segment_kept_for_grace() {
        let mut f = Feed::new(config(5, 2));
        let mut deleted_at = BTreeMap::new();
        for i in 0..30u64 {
            let out = f.push(TWO_S);
            for name in out.delete_now {
                assert!(!f
                    .pl
                    .segments()
                    .any(|s| f.pl.segment_uri(s.sequence) == name));
                deleted_at.insert(name, i);
            }
        }
        // Segment 0 leaves at push 5; grace = 2 s + 10 s (five segments) = six more pushes.
        assert_eq!(deleted_at["chessboard0.ts"], 11);
        for s in 0..19u64 {
            assert_eq!(
                deleted_at[&format!("chessboard{s}.ts")],
                s + 11,
                "segment {s}"
            );
        }
        // Window + 1 segments' worth of files is still on disk: 19..=24 pending.
        let pending: Vec<u64> = f.pl.pending_deletes().map(|p| p.sequence).collect();
        assert_eq!(pending, (19..25).collect::<Vec<_>>());
    }

    /// The grace counts the *longest* playlist that contained the segment, not the last.
    #[test]
    fn r25_grace_uses_longest_playlist() {
        let mut f = Feed::new(config(3, 2));
        // 0.5 s segments make a 6 s window of 12 segments.
        for _ in 0..12 {
            f.push(Ticks90k(45_000));
        }
        // Long segments now push the short ones out; segment 0 was in playlists up to 6.5 s.
        let out = f.push(TWO_S);
        assert_eq!(out.removed.first().map(|s| s.sequence), Some(0));
        let p0 = *f.pl.pending_deletes().next().expect("segment 0 pending");
        // Removed at stream time 8 s, when the window dropped to 6 s again; the longest
        // published playlist holding segment 0 was the 12 short ones, 6 s: grace 0.5 + 6 s.
        assert_eq!(
            p0.delete_at,
            Ticks90k::from_secs(8) + Ticks90k(45_000) + Ticks90k::from_secs(6)
        );
        let mut t = f.pl.stream_time();
        while t < p0.delete_at {
            let out = f.push(TWO_S);
            t = f.pl.stream_time();
            assert_eq!(
                out.delete_now.contains(&"chessboard0.ts".to_string()),
                t >= p0.delete_at
            );
        }
    }

    #[test]
    fn r25_pending_files_stay_after_end() {
        let mut f = Feed::new(config(3, 2));
        for _ in 0..6 {
            f.push(TWO_S);
        }
        f.pl.end();
        let pending: Vec<u64> = f.pl.pending_deletes().map(|p| p.sequence).collect();
        assert_eq!(pending, [0, 1, 2]);
        let pdt = f.pdt();
        assert_eq!(
            f.pl.push(TWO_S, pdt, false),
            Err(PlaylistError::Ended { sequence: 6 })
        );
    }

    #[test]
    fn r26_discontinuity_sequence_increments_when_tag_leaves() {
        let mut f = Feed::new(config(3, 2));
        f.push(TWO_S);
        f.push_discontinuity(TWO_S, 0);
        f.push_discontinuity(TWO_S, 3_000);
        f.push(TWO_S);
        assert_eq!(f.pl.discontinuity_sequence(), 0);
        let seen: Vec<u64> = (0..4)
            .map(|_| {
                f.push(TWO_S);
                render_checked(&f.pl);
                f.pl.discontinuity_sequence()
            })
            .collect();
        // Pushes 5..8 remove segments 1 (disc), 2 (disc), 3, 4.
        assert_eq!(seen, [1, 2, 2, 2]);
    }

    #[test]
    fn r29_endlist_after_end() {
        let mut f = Feed::new(config(3, 2));
        f.push(TWO_S);
        assert!(!render_checked(&f.pl).contains("ENDLIST"));
        f.pl.end();
        let text = render_checked(&f.pl);
        assert!(text.ends_with("chessboard0.ts\n#EXT-X-ENDLIST\n"));
        let err =
            f.pl.add_date_range(DateRange {
                id: "late".into(),
                start: t0(),
                duration: TWO_S,
                label: String::new(),
            })
            .expect_err("ended");
        assert!(err.to_string().contains("ENDLIST"));
    }

    #[test]
    fn r32_pdt_on_every_segment() {
        let mut f = Feed::new(config(5, 2));
        for _ in 0..9 {
            f.push(Ticks90k(1_999 * 90 + 17));
        }
        let text = render_checked(&f.pl);
        assert_eq!(text.matches("#EXT-X-PROGRAM-DATE-TIME:").count(), 5);
        assert_eq!(text.matches("#EXTINF:").count(), 5);
    }

    /// Segments read back from a previous run keep their written PDT and EXTINF although
    /// text-rounded EXTINFs (1.969 for 177177 ticks) do not add up to the PDTs exactly.
    #[test]
    fn push_resumed_takes_old_segments_as_written() {
        let mut pl = Playlist::new(PlaylistConfig {
            name: "cam".into(),
            target_duration_secs: 3,
            list_size: 10,
            start_sequence: 40,
            start_discontinuity_sequence: 2,
        })
        .unwrap();
        let mut pdt = T0_MS;
        for _ in 0..8 {
            // 59 frames at 29.97 is 1968.633 ms: PDTs advance 1968 or 1969 ms, EXTINF says 1.969.
            pl.push_resumed(Ticks90k(1969 * 90), WallClock::from_unix_millis(pdt), false)
                .expect("a resumed segment is taken as written");
            pdt += 1968;
            pl.check_invariants().unwrap();
        }
        // The next continuous segment is held to the last resumed one; the restart's own
        // segment comes with a discontinuity and a new anchor.
        let next = WallClock::from_unix_millis(pdt + 6);
        assert!(pl.push(Ticks90k::from_secs(2), next, false).is_err());
        let o = pl.push(Ticks90k::from_secs(2), next, true).unwrap();
        assert_eq!(o.sequence, 48);
        pl.check_invariants().unwrap();
    }

    #[test]
    fn r33_pdt_must_follow_anchor_plus_durations() {
        let mut f = Feed::new(config(3, 2));
        f.push(TWO_S);
        // 1 ms late: refused (re-sampled wall clock), with the expected instant in the message.
        let late = WallClock::from_unix_millis(T0_MS + 2_001);
        let err = f.pl.push(TWO_S, late, false).expect_err("drift");
        assert!(matches!(
            err,
            PlaylistError::ProgramDateTimeDrift { sequence: 1, .. }
        ));
        let msg = err.to_string();
        assert!(
            msg.contains("2026-11-25T12:00:02.000Z") && msg.contains("1 ms"),
            "{msg}"
        );
        // Not after the previous: refused even as a discontinuity.
        let err = f.pl.push(TWO_S, t0(), true).expect_err("same date");
        assert!(matches!(
            err,
            PlaylistError::ProgramDateTimeNotAfter { sequence: 1, .. }
        ));
        // A discontinuity may overlap less than a second, not more.
        let err =
            f.pl.push(TWO_S, WallClock::from_unix_millis(T0_MS + 1_000), true);
        assert!(matches!(
            err,
            Err(PlaylistError::ProgramDateTimeOverlap { .. })
        ));
        f.pl.push(TWO_S, WallClock::from_unix_millis(T0_MS + 1_001), true)
            .expect("overlap < 1 s");
        f.pl.check_invariants().expect("invariants");
        // The new anchor rules from here: 1.001 + 2 s.
        f.pl.push(TWO_S, WallClock::from_unix_millis(T0_MS + 3_001), false)
            .expect("on anchor");
        f.pl.check_invariants().expect("invariants");
    }

    /// PDTs rounded down from a fractional-ms stream time never drift past the 1 ms tolerance.
    #[test]
    fn r33_rounded_down_pdt_is_accepted_for_hours() {
        let rate = FrameRate::new(30_000, 1001).expect("valid rate");
        let mut pl = Playlist::new(config(5, 3)).expect("valid");
        let anchor = WallClock::from_unix_millis(T0_MS + 7);
        for k in 0..10_000u64 {
            let start = rate.pts_of(45 * k);
            let d = rate.pts_of(45 * (k + 1)) - start; // 1.5015 s: never a whole ms
            pl.push(d, anchor.add_ticks(start), false)
                .expect("anchor + stream time");
        }
        pl.check_invariants().expect("invariants");
    }

    #[test]
    fn r35_daterange_attributes() {
        let mut f = Feed::new(config(5, 2));
        f.push(TWO_S);
        f.range("marker-1", 500, Ticks90k(0), "Marker 1");
        f.range("marker-2", 1_000, Ticks90k(180_180), "Marker 2");
        let text = render_checked(&f.pl);
        let ranges = dateranges(&text);
        assert_eq!(ranges.len(), 2);
        let names: Vec<&str> = ranges[1].iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["ID", "START-DATE", "DURATION", DATERANGE_LABEL_ATTRIBUTE]
        );
        assert_eq!(attr(&ranges[0], "DURATION"), "0.000", "instant event");
        assert_eq!(attr(&ranges[1], "DURATION"), "2.002");
        assert_eq!(attr(&ranges[1], "START-DATE"), "2026-11-25T12:00:01.000Z");
        assert!(text.contains("START-DATE=\"2026-11-25T12:00:00.500Z\""));
        // R34: a playlist with DATERANGE has PDT.
        assert!(text.contains("#EXT-X-PROGRAM-DATE-TIME:"));
    }

    #[test]
    fn r36_daterange_kept_while_in_window() {
        let mut f = Feed::new(config(3, 2));
        f.push(TWO_S);
        // Instant event exactly at the first segment's start; a range spanning 1.5 s .. 9.5 s.
        f.range("instant", 0, Ticks90k(0), "at zero");
        f.range("long", 1_500, Ticks90k::from_secs(8), "long");
        // A future range waits: start 20 s.
        f.range("future", 20_000, Ticks90k(0), "later");
        let ids = |pl: &Playlist| pl.date_ranges().map(|r| r.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&f.pl), ["instant", "long"]);
        // Independent model: visible iff [start, end] meets [window start, window end).
        for _ in 0..13 {
            f.push(TWO_S);
            let text = render_checked(&f.pl);
            let first =
                f.pl.segments()
                    .next()
                    .expect("non-empty")
                    .program_date_time
                    .unix_millis();
            let last = f.pl.segments().last().expect("non-empty");
            let end = last.program_date_time.unix_millis() + 2_000;
            let want: Vec<&str> = [
                ("instant", 0, 0),
                ("long", 1_500, 9_500),
                ("future", 20_000, 20_000),
            ]
            .into_iter()
            .filter(|&(_, s, e)| T0_MS + s < end && T0_MS + e >= first)
            .map(|(id, _, _)| id)
            .collect();
            let got: Vec<String> = dateranges(&text)
                .iter()
                .map(|a| attr(a, "ID").to_string())
                .collect();
            assert_eq!(got, want, "window [{first}, {end})");
        }
        // All three left; the IDs are not accepted again (dropped for good).
        assert_eq!(ids(&f.pl), Vec::<String>::new());
        let again = f.pl.add_date_range(DateRange {
            id: "long".into(),
            start: WallClock::from_unix_millis(T0_MS + 1_500),
            duration: Ticks90k::from_secs(8),
            label: "long".into(),
        });
        assert!(
            matches!(again, Err(PlaylistError::DateRangeExpired { .. })),
            "{again:?}"
        );
    }

    #[test]
    fn r36_duplicate_id_refused() {
        let mut f = Feed::new(config(3, 2));
        f.push(TWO_S);
        f.range("m", 100, TWO_S, "one");
        let dup = DateRange {
            id: "m".into(),
            start: t0(),
            duration: TWO_S,
            label: "two".into(),
        };
        assert_eq!(
            f.pl.add_date_range(dup),
            Err(PlaylistError::DuplicateDateRangeId { id: "m".into() })
        );
        assert_eq!(f.pl.date_ranges().count(), 1);
    }

    #[test]
    fn r37_quoted_strings_sanitised() {
        let mut f = Feed::new(config(3, 2));
        f.push(TWO_S);
        f.range("m-1", 100, TWO_S, "say \"hi\"\r\nnext\u{7}line ünïcode");
        let text = render_checked(&f.pl);
        assert!(
            text.contains(",X-COM-HLSSTREAMER-LABEL=\"say 'hi'  next line ünïcode\"\n"),
            "{text}"
        );
        for bad in ["", "a\"b", "a\nb", "a\rb", "a\u{0}b"] {
            let r = DateRange {
                id: bad.into(),
                start: t0(),
                duration: TWO_S,
                label: "x".into(),
            };
            assert_eq!(
                f.pl.add_date_range(r),
                Err(PlaylistError::InvalidDateRangeId { id: bad.into() }),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn new_validates_config() {
        let ok = config(3, 1);
        assert!(Playlist::new(ok.clone()).is_ok());
        let e = |cfg| Playlist::new(cfg).expect_err("invalid");
        assert_eq!(
            e(PlaylistConfig {
                target_duration_secs: 0,
                ..ok.clone()
            }),
            PlaylistError::TargetDurationZero
        );
        assert_eq!(
            e(PlaylistConfig {
                list_size: 2,
                ..ok.clone()
            }),
            PlaylistError::ListTooShort { list_size: 2 }
        );
        assert!(matches!(
            e(PlaylistConfig {
                target_duration_secs: u64::MAX / 1000,
                ..ok.clone()
            }),
            PlaylistError::TargetDurationTooLarge { .. }
        ));
        for name in ["", "a b", "x/y", "#c", "a\n", "é"] {
            assert!(matches!(
                e(PlaylistConfig {
                    name: name.into(),
                    ..ok.clone()
                }),
                PlaylistError::InvalidName { .. }
            ));
        }
        assert!(e(PlaylistConfig { list_size: 1, ..ok })
            .to_string()
            .contains("list size 1"));
    }

    #[test]
    fn render_into_reuses_the_buffer() {
        let mut f = Feed::new(config(5, 2));
        f.range("m", 100, TWO_S, "m");
        for _ in 0..5 {
            f.push(TWO_S);
        }
        let mut buf = String::from("stale content");
        f.pl.render_into(&mut buf);
        assert_eq!(buf, f.pl.render());
        let cap = buf.capacity();
        let ptr = buf.as_ptr();
        f.pl.render_into(&mut buf);
        assert_eq!(
            (buf.capacity(), buf.as_ptr()),
            (cap, ptr),
            "no reallocation"
        );
    }

    #[test]
    fn empty_playlist_renders_header_only() {
        let pl = Playlist::new(config(3, 2)).expect("valid");
        let text = render_checked(&pl);
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
             #EXT-X-INDEPENDENT-SEGMENTS\n"
        );
    }

    /// Random pushes, restarts, ranges and renders, checked against the invariants and against an
    /// independent model of the window, the counters and the R25 deletion schedule. Replay a
    /// failure with `PLAYLIST_SEED=<seed>`.
    #[test]
    fn random_operations_keep_invariants() {
        let seed = std::env::var("PLAYLIST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0x5eed_8216_u64);
        let mut rng = StdRng::seed_from_u64(seed);
        // How often each interesting case came up: the generator must reach all of them.
        let (mut restarts, mut deletions, mut shown_ranges, mut over_list_size) = (0, 0, 0, 0);
        for round in 0..6 {
            let list_size = rng.random_range(3..=8);
            let target = rng.random_range(1..=4u64);
            let mut cfg = config(list_size, target);
            cfg.start_sequence = rng.random_range(0..1_000_000);
            cfg.start_discontinuity_sequence = rng.random_range(0..3);
            let ctx = format!("seed {seed} round {round} {cfg:?}");
            let mut pl = Playlist::new(cfg.clone()).expect("valid");
            let mut wall = WallClock::from_unix_millis(T0_MS);
            let mut at = Ticks90k(0);
            let mut stream = 0u64;
            let mut durations: HashMap<u64, u64> = HashMap::new();
            let mut longest: HashMap<u64, u64> = HashMap::new();
            let mut removed_at: HashMap<u64, u64> = HashMap::new();
            let mut deleted: HashMap<u64, u64> = HashMap::new();
            let (mut msn, mut dseq) = (pl.media_sequence(), pl.discontinuity_sequence());
            let mut next_marker = 0u64;
            let mut buf = String::new();
            for op in 0..700 {
                let ctx = format!("{ctx} op {op}");
                match rng.random_range(0..10) {
                    0..=6 => {
                        let max_ms = target * 1000 + 499;
                        let d = Ticks90k(rng.random_range(90..=max_ms * 90));
                        let restart = rng.random_ratio(1, 15);
                        let (new_wall, new_at) = if restart {
                            // A restart up to 5 s later, or overlapping by under a second.
                            let gap = rng.random_range(-999..5_000i64);
                            let end = wall.add_ticks(at).unix_millis();
                            (WallClock::from_unix_millis(end + gap), Ticks90k(0))
                        } else {
                            (wall, at)
                        };
                        let before_seq = pl.next_sequence();
                        let out = match pl.push(d, new_wall.add_ticks(new_at), restart) {
                            Ok(out) => out,
                            // Overlapped the previous segment's start: refused, state unchanged.
                            Err(PlaylistError::ProgramDateTimeNotAfter { .. }) if restart => {
                                continue
                            }
                            Err(e) => panic!("{ctx}: {e}"),
                        };
                        assert_eq!(out.sequence, before_seq, "{ctx}");
                        restarts += usize::from(restart);
                        deletions += out.delete_now.len();
                        (wall, at) = (new_wall, new_at + d);
                        stream += d.as_u64();
                        durations.insert(out.sequence, d.as_u64());
                        for s in &out.removed {
                            removed_at.insert(s.sequence, stream);
                        }
                        for name in &out.delete_now {
                            let seq: u64 = name
                                .strip_prefix("chessboard")
                                .and_then(|n| n.strip_suffix(".ts"))
                                .and_then(|n| n.parse().ok())
                                .unwrap_or_else(|| panic!("{ctx}: odd name {name}"));
                            assert!(deleted.insert(seq, stream).is_none(), "{ctx}: {seq} twice");
                            let since = stream - removed_at[&seq];
                            let grace = durations[&seq] + longest[&seq];
                            assert!(since >= grace, "{ctx}: {seq} deleted {since} < {grace}");
                            assert!(since - d.as_u64() < grace, "{ctx}: {seq} deleted late");
                        }
                        // Published window: update each member's longest playlist.
                        let window: u64 = pl.segments().map(|s| durations[&s.sequence]).sum();
                        for s in pl.segments() {
                            let l = longest.entry(s.sequence).or_default();
                            *l = (*l).max(window);
                        }
                    }
                    7 | 8 => {
                        next_marker += 1;
                        let base = wall.add_ticks(at).unix_millis();
                        let start = base + rng.random_range(-30_000..5_000i64);
                        let r = DateRange {
                            id: format!("marker-{next_marker}"),
                            start: WallClock::from_unix_millis(start),
                            duration: Ticks90k(rng.random_range(0..10 * TICKS_PER_SEC)),
                            label: format!("Marker {next_marker}"),
                        };
                        match pl.add_date_range(r) {
                            Ok(()) | Err(PlaylistError::DateRangeExpired { .. }) => {}
                            Err(e) => panic!("{ctx}: {e}"),
                        }
                    }
                    _ => {
                        pl.render_into(&mut buf);
                        assert_parses_as(&pl, &buf);
                        shown_ranges += dateranges(&buf).len();
                    }
                }
                pl.check_invariants()
                    .unwrap_or_else(|e| panic!("{ctx}: {e}"));
                over_list_size += usize::from(pl.segments().count() > list_size);
                assert!(
                    pl.media_sequence() >= msn && pl.discontinuity_sequence() >= dseq,
                    "{ctx}"
                );
                (msn, dseq) = (pl.media_sequence(), pl.discontinuity_sequence());
                for s in pl.segments() {
                    assert!(
                        !deleted.contains_key(&s.sequence),
                        "{ctx}: listed but deleted"
                    );
                }
            }
            // Every removed segment was deleted or is still pending, never both.
            let pending: Vec<u64> = pl.pending_deletes().map(|p| p.sequence).collect();
            for seq in removed_at.keys() {
                assert!(
                    deleted.contains_key(seq) != pending.contains(seq),
                    "{ctx}: {seq}"
                );
            }
            assert_eq!(
                removed_at.len() as u64,
                pl.media_sequence() - cfg.start_sequence
            );
            pl.end();
            render_checked(&pl);
        }
        let reached = [restarts, deletions, shown_ranges, over_list_size];
        assert!(
            reached.iter().all(|&n| n > 10),
            "seed {seed}: coverage {reached:?}"
        );
    }

    #[test]
    fn errors_carry_context() {
        let e = PlaylistError::ProgramDateTimeOverlap {
            sequence: 42,
            program_date_time: t0(),
            previous_end_ticks: epoch_ticks(t0()) + 90_045,
        };
        let msg = e.to_string();
        assert!(msg.contains("segment 42"), "{msg}");
        assert!(
            msg.contains("2026-11-25T12:00:01.000Z (+45 ticks)"),
            "{msg}"
        );
        let e = PlaylistError::DateRangeExpired {
            id: "marker-9".into(),
            end: t0(),
            window_start: WallClock::from_unix_millis(T0_MS + 1),
        };
        assert!(e.to_string().contains("\"marker-9\""));
    }
}
