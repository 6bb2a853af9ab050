//! Low-latency HLS in the playlist (rfc8216bis §4.4.3.7, §4.4.3.8, §4.4.4.9, §4.4.5.2, §6.2.5):
//! partial segments, the preload hint, server control and delta updates. The rules `R40`-`R47`
//! are in `docs/spec.md`.
//!
//! With low latency on, the playlist also knows the parts of the segment being built (the *open*
//! segment, whose media sequence number is [`Playlist::next_sequence`]) and of the newest
//! segments, and renders in one of three forms ([`Render`]):
//!
//! ```text
//! #EXTM3U
//! #EXT-X-VERSION:3                       9 in a delta update (EXT-X-SKIP)
//! #EXT-X-TARGETDURATION:2
//! #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.000,PART-HOLD-BACK=0.600   R40
//! #EXT-X-PART-INF:PART-TARGET=0.200      R41
//! #EXT-X-MEDIA-SEQUENCE:40
//! #EXT-X-INDEPENDENT-SEGMENTS
//! #EXT-X-DATERANGE:...
//! #EXT-X-SKIP:SKIPPED-SEGMENTS=54        delta update only, instead of the oldest segments R47
//! #EXT-X-PROGRAM-DATE-TIME:...           (older segments as in a classic playlist)
//! #EXTINF:2.000,
//! chessboard94.ts
//! #EXT-X-PROGRAM-DATE-TIME:...           a segment less than 3 target durations from the end:
//! #EXT-X-PART:DURATION=0.200,URI="chessboard98.0.ts",INDEPENDENT=YES   its parts first (R42)
//! #EXT-X-PART:DURATION=0.200,URI="chessboard98.1.ts"
//! ...
//! #EXTINF:2.000,
//! chessboard98.ts
//! #EXT-X-PROGRAM-DATE-TIME:...           the open segment: its finished parts
//! #EXT-X-PART:DURATION=0.200,URI="chessboard99.0.ts",INDEPENDENT=YES
//! #EXT-X-PRELOAD-HINT:TYPE=PART,URI="chessboard99.1.ts"                 the next part (R44)
//! ```
//!
//! # Decisions
//! - **Version**: nothing in the full playlist needs more than 3 (parts carry no BYTERANGE), so
//!   a client of RFC 8216 reads it as before and ignores the tags it does not know; only the
//!   delta update, which holds `EXT-X-SKIP`, says 9 (rfc8216bis §8).
//! - **Which segments list their parts**: those that start less than three target durations
//!   before the end of the playlist (rfc8216bis §4.4.4.9 lets older parts go); the parts of older
//!   segments are forgotten, so memory stays bounded. The media cache keeps their bytes longer
//!   (R42: three target durations after they leave the playlist).
//! - **PART-HOLD-BACK** is three part targets (the SHOULD of §4.4.3.8), **CAN-SKIP-UNTIL** six
//!   target durations (its minimum). `HOLD-BACK` is left at its default, three target durations.
//! - **A delta update** skips every segment that starts more than CAN-SKIP-UNTIL before the end
//!   of the playlist; nothing else changes: the DATERANGE tags stay (a client asked for `YES`,
//!   not `v2`), and the media and discontinuity sequence numbers still describe the first
//!   segment, skipped or not. With nothing to skip the full playlist is the answer.

use std::fmt::Write as _;

use super::{ticks_to_millis, write_millis, Playlist, PlaylistError};
use crate::clock::WallClock;
use crate::name::MediaFile;
use crate::time::{Duration90k, TICKS_PER_MS};

/// The `EXT-X-VERSION` of a delta update: `EXT-X-SKIP` needs 9 (rfc8216bis §8).
pub(crate) const DELTA_PROTOCOL_VERSION: u32 = 9;

/// Low-latency settings, fixed for the life of a playlist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LowLatency {
    /// The longest part (`PART-TARGET`, written rounded up to the millisecond).
    pub part_target: Duration90k,
}

/// One partial segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Part {
    /// Exact duration; `DURATION` is this rounded to the millisecond.
    pub duration: Duration90k,
    /// Starts with an IDR: `INDEPENDENT=YES`.
    pub independent: bool,
}

/// Which form of the playlist to render.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Render {
    /// RFC 8216 only: no low-latency tags (the durable copy on disk).
    Classic,
    /// Everything: with low latency on, server control, parts and the preload hint.
    Full,
    /// A delta update (`_HLS_skip=YES`): the oldest segments replaced by `EXT-X-SKIP`.
    Delta,
}

/// Where the live edge is: what a blocking playlist request waits for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct LiveEdge {
    /// Media sequence number of the open segment (the next one to complete).
    pub open_sequence: u64,
    /// Finished parts of the open segment.
    pub open_parts: u32,
    /// The playlist has `EXT-X-ENDLIST`.
    pub ended: bool,
    /// Complete segments the playlist lists: the server holds playlist requests until there are
    /// [`crate::server`]'s minimum (R52).
    pub segments: usize,
    /// Segments the window keeps (`--list-size`): the server never waits for more; 0 if unknown.
    pub list_size: usize,
}

impl LiveEdge {
    /// True when a playlist at this edge satisfies `_HLS_msn=msn` (and `_HLS_part=part`): it
    /// contains segment `msn` whole, or its part `part` (rfc8216bis §6.2.5.2). An ended playlist
    /// satisfies everything: the directives are ignored then.
    pub(crate) fn satisfies(&self, msn: u64, part: Option<u32>) -> bool {
        if self.ended || msn < self.open_sequence {
            return true;
        }
        msn == self.open_sequence && part.is_some_and(|p| p < self.open_parts)
    }
}

/// The playlist's low-latency state.
#[derive(Clone, Debug)]
pub(super) struct LlState {
    pub(super) cfg: LowLatency,
    /// Finished parts of the open segment.
    pub(super) open: Vec<Part>,
    /// PDT text and discontinuity of the open segment (known with its first part).
    pub(super) open_pdt: Option<(WallClock, String)>,
    pub(super) open_discontinuity: bool,
    /// The open segment's last part is done: the next part is part 0 of the next segment.
    pub(super) next_is_new_segment: bool,
}

impl LlState {
    fn open_ticks(&self) -> u64 {
        self.open.iter().map(|p| p.duration.as_u64()).sum()
    }
}

/// Milliseconds, rounded up.
fn ceil_millis(d: Duration90k) -> u64 {
    d.as_u64().div_ceil(TICKS_PER_MS)
}

impl Playlist {
    /// Turns low latency on (before the first segment). Errors if the part target is zero or
    /// longer than the target duration.
    pub(crate) fn enable_low_latency(&mut self, ll: LowLatency) -> Result<(), PlaylistError> {
        if ll.part_target == Duration90k::ZERO || ll.part_target.as_u64() > self.target_ticks {
            return Err(PlaylistError::BadPartTarget {
                part_target: ll.part_target,
                target_duration_secs: self.cfg.target_duration_secs,
            });
        }
        self.ll = Some(LlState {
            cfg: ll,
            open: Vec::new(),
            open_pdt: None,
            open_discontinuity: false,
            next_is_new_segment: false,
        });
        Ok(())
    }

    /// The low-latency settings, if on.
    pub fn low_latency(&self) -> Option<LowLatency> {
        self.ll.as_ref().map(|l| l.cfg)
    }

    /// Adds a finished part to the open segment. `segment_pdt` and `discontinuity` are the
    /// open segment's (taken from its first part: its PDT and `EXT-X-DISCONTINUITY` go before
    /// its first `EXT-X-PART`, R41). `last_in_segment`: the next part opens the next segment
    /// (the preload hint names it).
    pub(crate) fn push_part(
        &mut self,
        part: Part,
        segment_pdt: WallClock,
        discontinuity: bool,
        last_in_segment: bool,
    ) -> Result<(), PlaylistError> {
        if self.ended {
            return Err(PlaylistError::Ended {
                sequence: self.next_sequence,
            });
        }
        let Some(ll) = self.ll.as_mut() else {
            return Err(PlaylistError::NotLowLatency);
        };
        if part.duration == Duration90k::ZERO || part.duration > ll.cfg.part_target {
            return Err(PlaylistError::PartTooLong {
                sequence: self.next_sequence,
                index: ll.open.len(),
                duration: part.duration,
                part_target: ll.cfg.part_target,
            });
        }
        if ll.open.is_empty() {
            ll.open_pdt = Some((segment_pdt, segment_pdt.to_rfc3339()));
            ll.open_discontinuity = discontinuity;
        }
        ll.open.push(part);
        ll.next_is_new_segment = last_in_segment;
        self.trim_parts();
        Ok(())
    }

    /// Forgets the open segment's parts (its segment was lost: it will not be listed).
    pub(crate) fn abandon_parts(&mut self) {
        if let Some(ll) = self.ll.as_mut() {
            ll.open.clear();
            ll.open_pdt = None;
            ll.next_is_new_segment = false;
        }
    }

    /// Where the live edge is (see [`LiveEdge`]).
    pub(crate) fn live_edge(&self) -> LiveEdge {
        LiveEdge {
            open_sequence: self.next_sequence,
            open_parts: self.ll.as_ref().map_or(0, |l| l.open.len() as u32),
            ended: self.ended,
            segments: self.window.len(),
            list_size: self.cfg.list_size,
        }
    }

    /// The parts of the newest segments (oldest first, with their media sequence numbers) and
    /// of the open segment, as listed in the full playlist.
    #[cfg(test)]
    pub(crate) fn listed_parts(&self) -> Vec<(u64, Vec<Part>)> {
        let Some(ll) = &self.ll else {
            return Vec::new();
        };
        let mut out: Vec<(u64, Vec<Part>)> = self
            .window
            .iter()
            .filter(|e| !e.parts.is_empty())
            .map(|e| (e.segment.sequence, e.parts.clone()))
            .collect();
        if !ll.open.is_empty() {
            out.push((self.next_sequence, ll.open.clone()));
        }
        out
    }

    /// Duration of the playlist in ticks: the window plus the open segment's parts.
    fn end_ticks(&self) -> u64 {
        self.window_ticks + self.ll.as_ref().map_or(0, LlState::open_ticks)
    }

    /// Called by `push` once the new entry is in the window: the open parts become the entry's,
    /// and entries now three target durations or more from the end forget theirs.
    pub(super) fn settle_parts(&mut self) -> Vec<Part> {
        let Some(ll) = self.ll.as_mut() else {
            return Vec::new();
        };
        ll.open_pdt = None;
        ll.open_discontinuity = false;
        ll.next_is_new_segment = false;
        std::mem::take(&mut ll.open)
    }

    /// Drops the parts of entries that start three target durations or more before the end.
    pub(super) fn trim_parts(&mut self) {
        if self.ll.is_none() {
            return;
        }
        let end = self.end_ticks();
        let limit = 3 * self.target_ticks;
        let mut start = 0u64;
        for e in &mut self.window {
            if end - start >= limit {
                e.parts = Vec::new();
            }
            start += e.segment.duration.as_u64();
        }
    }

    /// How many of the oldest segments a delta update skips (0: none, answer in full).
    pub fn skipped_segments(&self) -> usize {
        if self.ll.is_none() {
            return 0;
        }
        let end = self.end_ticks();
        let skip_until = self.skip_until_ticks();
        let mut start = 0u64;
        let mut n = 0;
        for e in &self.window {
            if end - start <= skip_until {
                break;
            }
            n += 1;
            start += e.segment.duration.as_u64();
        }
        n
    }

    fn skip_until_ticks(&self) -> u64 {
        6 * self.target_ticks
    }

    /// Writes `EXT-X-SERVER-CONTROL` and `EXT-X-PART-INF` (R40, R41).
    pub(super) fn render_ll_header(&self, out: &mut String) {
        let Some(ll) = &self.ll else { return };
        let part_target_ms = ceil_millis(ll.cfg.part_target);
        out.push_str("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=");
        write_millis(out, self.skip_until_ticks() / TICKS_PER_MS);
        out.push_str(",PART-HOLD-BACK=");
        write_millis(out, 3 * part_target_ms);
        out.push('\n');
        out.push_str("#EXT-X-PART-INF:PART-TARGET=");
        write_millis(out, part_target_ms);
        out.push('\n');
    }

    /// Writes the `EXT-X-PART` lines of segment `sequence`.
    ///
    /// A part's `DURATION` is the millisecond its end rounds to minus the one its start rounds to
    /// (both from the segment's start), not its own duration rounded: so the parts of a segment
    /// add up to exactly its `EXTINF` (the segment's duration rounded), and a player that places
    /// the next segment's first part at the sum of the parts before it puts it where the
    /// segment's `EXTINF` does. With each duration rounded alone, six 10-frame parts at 30 fps
    /// say 1.998 s against `EXTINF:2.000`; Shaka then holds two references 2 ms apart for the
    /// next segment's first part, fetches and appends it twice, and loses the parts after it
    /// (P9). Each `DURATION` stays within a millisecond of the part's own, so never above
    /// `PART-TARGET` (rounded up, R41).
    pub(super) fn render_parts(&self, out: &mut String, sequence: u64, parts: &[Part]) {
        let mut start = Duration90k::ZERO;
        for (i, p) in parts.iter().enumerate() {
            let end = start + p.duration;
            out.push_str("#EXT-X-PART:DURATION=");
            write_millis(out, ticks_to_millis(end) - ticks_to_millis(start));
            start = end;
            out.push_str(",URI=\"");
            self.cfg.name.write_file(
                out,
                MediaFile::Part {
                    sequence,
                    index: i as u32,
                },
            );
            out.push('"');
            if p.independent {
                out.push_str(",INDEPENDENT=YES");
            }
            out.push('\n');
        }
    }

    /// Writes the open segment's parts and the preload hint of the next part (R44).
    pub(super) fn render_open(&self, out: &mut String, map_shown: &mut Option<u64>) {
        let Some(ll) = &self.ll else { return };
        if self.ended {
            return;
        }
        if let Some((_, pdt_text)) = &ll.open_pdt {
            if ll.open_discontinuity {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            // R41: EXT-X-MAP before the first EXT-X-PART of its parent segment.
            self.render_map(out, self.next_sequence, map_shown);
            writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{pdt_text}")
                .expect("writing to a String cannot fail");
            self.render_parts(out, self.next_sequence, &ll.open);
        }
        let next = if ll.next_is_new_segment {
            MediaFile::Part {
                sequence: self.next_sequence.saturating_add(1),
                index: 0,
            }
        } else {
            MediaFile::Part {
                sequence: self.next_sequence,
                index: ll.open.len() as u32,
            }
        };
        out.push_str("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"");
        self.cfg.name.write_file(out, next);
        out.push_str("\"\n");
    }

    /// The rules of the low-latency state; `Err` describes the first one broken.
    pub(super) fn check_low_latency(&self) -> Result<(), String> {
        let Some(ll) = &self.ll else {
            return self
                .window
                .iter()
                .all(|e| e.parts.is_empty())
                .then_some(())
                .ok_or_else(|| "parts held without low latency".to_owned());
        };
        let end = self.end_ticks();
        let mut start = 0u64;
        for e in &self.window {
            let sum: u64 = e.parts.iter().map(|p| p.duration.as_u64()).sum();
            if sum > e.segment.duration.as_u64() {
                return Err(format!(
                    "segment {}: parts last {sum} ticks, longer than the segment",
                    e.segment.sequence
                ));
            }
            if !e.parts.is_empty() && end - start >= 3 * self.target_ticks {
                return Err(format!(
                    "segment {}: parts held three target durations from the end",
                    e.segment.sequence
                ));
            }
            start += e.segment.duration.as_u64();
        }
        for p in self.window.iter().flat_map(|e| &e.parts).chain(&ll.open) {
            if p.duration == Duration90k::ZERO || p.duration > ll.cfg.part_target {
                return Err(format!(
                    "a part of {} ticks is outside (0, PART-TARGET {}]",
                    p.duration.as_u64(),
                    ll.cfg.part_target.as_u64()
                ));
            }
        }
        if ll.open.is_empty() != ll.open_pdt.is_none() {
            return Err("the open segment's PDT is known exactly when it has parts".into());
        }
        if self.ended && !ll.open.is_empty() {
            return Err("parts of an open segment after EXT-X-ENDLIST".into());
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "low_latency_tests.rs"]
mod tests;
