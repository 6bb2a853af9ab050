//! Restart: from the previous run's playlist text to the state a new run continues from. Pure:
//! the caller reads the files ([`crate::publish`]) and hands over their contents.
//!
//! A restarted stream must not send players back (R22: the media sequence number never goes
//! down, R26: nor does the discontinuity sequence), must mark the break (R6: the first new
//! segment carries `EXT-X-DISCONTINUITY`), must not overlap the old program date times (R33),
//! and keeps the old segments listed as long as they would have been, with their markers (R36).
//! Segment files the old playlist no longer lists were in their R25 grace period: they are
//! deleted once that has passed.

use tracing::{info, warn};

use super::attributes::{self, AttrValue};
use super::DATERANGE_LABEL_ATTRIBUTE;
use super::{r25_grace, DateRange, Playlist, PlaylistConfig, PlaylistError};
use crate::clock::WallClock;
use crate::name::StreamName;
use crate::time::{Duration90k, FrameRate, StreamTime};

/// Longest EXTINF or DATERANGE DURATION taken from a previous playlist; anything longer is not
/// ours.
const MAX_READ_BACK_SECS: f64 = 86_400.0;

/// What a previous run left in its playlist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PreviousRun {
    pub(crate) media_sequence: u64,
    /// Its `EXT-X-TARGETDURATION`; 0 when unknown.
    pub(crate) target_duration: u64,
    pub(crate) discontinuity_sequence: u64,
    /// Its window, oldest first; empty when the window could not be trusted.
    pub(crate) segments: Vec<OldSegment>,
    /// Its markers, so they stay on the timeline while their segments are listed (R36).
    pub(crate) date_ranges: Vec<DateRange>,
    /// Program date time just after its last segment.
    pub(crate) end: Option<WallClock>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OldSegment {
    pub(crate) duration: Duration90k,
    pub(crate) program_date_time: WallClock,
    pub(crate) discontinuity: bool,
    /// The file name when the URI is one of this stream's segments.
    pub(crate) file: Option<String>,
    /// fMP4: the init segment (number in its name) the `EXT-X-MAP` before it names (R49).
    pub(crate) map: Option<u64>,
}

/// How a previous playlist reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Previous {
    /// A playlist to continue.
    Run(PreviousRun),
    /// Not a playlist (the reason): numbering continues after the newest segment file instead.
    Unreadable(String),
    /// Its media sequence number cannot go on for another window: start over, as `--fresh`.
    Exhausted,
}

/// Reads the previous run's playlist `text` (with m3u8-rs, and our own DATERANGE tags with the
/// strict attribute parser). A hostile or corrupt file never panics and never yields a window
/// that the new playlist would refuse: dates past 9999 or EXTINFs over a day drop the window.
pub(crate) fn read_previous(text: &[u8], name: &StreamName) -> Previous {
    let pl = match m3u8_rs::parse_media_playlist_res(text) {
        Ok(pl) => pl,
        Err(e) => return Previous::Unreadable(e.to_string()),
    };
    let mut segments = Vec::new();
    let mut end = None;
    let mut map = None;
    for s in &pl.segments {
        if let Some(m) = &s.map {
            map = match name.parse_file(&m.uri) {
                Some(crate::name::MediaFile::Init(init)) => Some(init),
                _ => None,
            };
        }
        // Segments of the other --segment-type (or an fMP4 one whose init is not ours) cannot
        // be listed under this run's names: the window starts over after them.
        let ours = name.parse_segment_file(&s.uri).is_some();
        let fmp4 = name.segment_type() == crate::name::SegmentType::Fmp4;
        if (!ours && looks_like_other_type(name, &s.uri)) || (fmp4 && ours && map.is_none()) {
            segments.clear();
            break;
        }
        let Some(pdt) = s.program_date_time else {
            segments.clear();
            break;
        };
        let start = WallClock::try_from_unix_millis(pdt.timestamp_millis())
            .filter(|w| WallClock::try_from_unix_millis(w.unix_millis() + 86_400_000).is_some());
        // EXTINF is written with millisecond precision; m3u8-rs hands it over as an f32.
        let duration = Duration90k::from_millis_f64(f64::from(s.duration), MAX_READ_BACK_SECS);
        let (Some(start), Some(duration)) = (start, duration) else {
            segments.clear();
            break;
        };
        end = Some(start + duration);
        segments.push(OldSegment {
            duration,
            program_date_time: start,
            discontinuity: s.discontinuity,
            file: name.parse_segment_file(&s.uri).map(|_| s.uri.clone()),
            map,
        });
    }
    let media_sequence = if segments.is_empty() {
        pl.media_sequence.saturating_add(pl.segments.len() as u64)
    } else {
        pl.media_sequence
    };
    // Numbers must still fit after the new window (else start over, as with --fresh).
    if media_sequence.checked_add(1 << 32).is_none() {
        return Previous::Exhausted;
    }
    let date_ranges = String::from_utf8_lossy(text)
        .lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-DATERANGE:"))
        .filter_map(parse_date_range)
        .collect();
    Previous::Run(PreviousRun {
        media_sequence,
        target_duration: pl.target_duration,
        discontinuity_sequence: pl.discontinuity_sequence,
        segments,
        date_ranges,
        end,
    })
}

/// `uri` is a segment of this stream under the other `--segment-type`.
fn looks_like_other_type(name: &StreamName, uri: &str) -> bool {
    use crate::name::SegmentType;
    let other = match name.segment_type() {
        SegmentType::Mpegts => SegmentType::Fmp4,
        SegmentType::Fmp4 => SegmentType::Mpegts,
    };
    name.clone()
        .with_segment_type(other)
        .parse_segment_file(uri)
        .is_some()
}

/// A previous run known only by its newest segment file (its playlist was unreadable):
/// numbering continues after it.
pub(crate) fn after_segment_files(newest_sequence: Option<u64>) -> Option<PreviousRun> {
    let next = newest_sequence?.checked_add(1)?;
    Some(PreviousRun {
        media_sequence: next,
        target_duration: 0,
        discontinuity_sequence: 0,
        segments: Vec::new(),
        date_ranges: Vec::new(),
        end: None,
    })
}

/// Reads back one of our own DATERANGE attribute lists (`ID`, `START-DATE`, `DURATION`, label);
/// `None` for anything else.
pub(crate) fn parse_date_range(list: &str) -> Option<DateRange> {
    let attrs = attributes::parse(list).ok()?;
    let id = attributes::get(&attrs, "ID")?.quoted()?;
    let start = WallClock::parse_rfc3339(attributes::get(&attrs, "START-DATE")?.quoted()?)?;
    let secs: f64 = attributes::get(&attrs, "DURATION")?.plain()?.parse().ok()?;
    let duration = Duration90k::from_millis_f64(secs, MAX_READ_BACK_SECS)?;
    let label = attributes::get(&attrs, DATERANGE_LABEL_ATTRIBUTE)
        .and_then(AttrValue::quoted)
        .unwrap_or_default();
    Some(DateRange {
        id: id.to_owned(),
        start,
        duration,
        label: label.to_owned(),
    })
}

/// Where a new run starts.
/// The first frame slot of a run that starts at wall-clock `start` on a stream whose clock
/// began at `epoch` (its first frame ever): stream time goes on by the wall-clock gap, snapped up
/// to the frame grid, so the first new frame is not before `start` (R33) and every frame of
/// every run has its own slot, timecode and marker time.
pub(crate) fn first_slot(epoch: WallClock, start: WallClock, rate: FrameRate) -> u64 {
    let since_ms = u64::try_from(start.unix_millis() - epoch.unix_millis()).unwrap_or(0);
    rate.first_frame_at_or_after(StreamTime::ZERO + Duration90k::from_millis(since_ms))
}

#[derive(Debug)]
pub(crate) struct Resumed {
    /// The playlist to push new segments to (the old window already in it, if it fits).
    pub(crate) playlist: Playlist,
    /// The earliest wall-clock instant of the new run's first frame: `now`, or the end of the
    /// previous run if that is later (R33). See [`first_slot`].
    pub(crate) start: WallClock,
    /// The first new segment follows a restart: `EXT-X-DISCONTINUITY` (R6).
    pub(crate) discontinuity: bool,
    /// Files of the previous run that are no longer listed, deleted once `leftovers_due` of new
    /// stream time has been published (R25).
    pub(crate) leftovers: Vec<String>,
    pub(crate) leftovers_due: Duration90k,
}

/// The state a new run starts from, given the previous run (if any), this stream's segment files
/// on disk (by sequence number), the wall clock now and the nominal segment duration.
///
/// If the old window fits the new settings it is continued; otherwise (another
/// `--hls-time`, so another TARGETDURATION, R14) a new window starts after it: numbers go on
/// after its last segment (never reused: segments are cached as immutable), and every
/// DISCONTINUITY tag that leaves with it counts (R22, R26).
pub(crate) fn resume(
    mut cfg: PlaylistConfig,
    previous: Option<PreviousRun>,
    files_on_disk: &[(u64, String)],
    now: WallClock,
    segment: Duration90k,
) -> Result<Resumed, PlaylistError> {
    // Counted once this run's window is full: the leftovers' own R25 grace comes on top.
    let new_window = segment * cfg.list_size as u64;
    let Some(prev) = previous else {
        return Ok(Resumed {
            playlist: Playlist::new(cfg)?,
            start: now,
            discontinuity: false,
            leftovers: Vec::new(),
            leftovers_due: r25_grace(segment, Duration90k::ZERO) + new_window,
        });
    };
    info!(
        media_sequence = prev.media_sequence,
        segments = prev.segments.len(),
        "continuing the previous playlist after a discontinuity (use --fresh to start over)"
    );
    if cfg.start_sequence != 0 {
        warn!("--start-number is ignored when continuing a previous playlist");
    }
    cfg.start_sequence = prev.media_sequence;
    cfg.start_discontinuity_sequence = prev.discontinuity_sequence;
    let start = prev.end.map_or(now, |end| now.max(end));
    let mut leftovers: Vec<String> = files_on_disk
        .iter()
        .filter(|(seq, _)| *seq < prev.media_sequence)
        .map(|(_, f)| f.clone())
        .collect();
    let old_window: Duration90k = prev.segments.iter().map(|s| s.duration).sum();
    let leftovers_due = r25_grace(segment, old_window) + new_window;

    let mut playlist = Playlist::new(cfg.clone())?;
    // TARGETDURATION must not change within a playlist (R14): other settings, other window.
    let mut fits = prev.target_duration == cfg.target_duration_secs;
    for s in &prev.segments {
        if !fits {
            break;
        }
        if let Some(init) = s.map {
            if playlist.maps().last() != Some(init) {
                playlist.start_map(init);
            }
        }
        match playlist.push_resumed(s.duration, s.program_date_time, s.discontinuity) {
            // A smaller --list-size slides old segments out at once: their files wait with the
            // other leftovers.
            Ok(outcome) => leftovers.extend(
                outcome
                    .removed
                    .iter()
                    .map(|r| playlist.segment_uri(r.sequence)),
            ),
            Err(e) => {
                warn!(error = %e, "the previous playlist does not fit the new settings (e.g. another --hls-time); starting a new window after it");
                fits = false;
            }
        }
    }
    if fits {
        for r in prev.date_ranges {
            // Ranges that ended before the window are refused: nothing to keep.
            let _ = playlist.add_date_range(r);
        }
    } else {
        let removed_discontinuities =
            prev.segments.iter().filter(|s| s.discontinuity).count() as u64;
        playlist = Playlist::new(PlaylistConfig {
            start_sequence: prev.media_sequence + prev.segments.len() as u64,
            start_discontinuity_sequence: prev.discontinuity_sequence + removed_discontinuities,
            ..cfg
        })?;
        leftovers.extend(prev.segments.iter().filter_map(|s| s.file.clone()));
        let mut inits: Vec<u64> = prev.segments.iter().filter_map(|s| s.map).collect();
        inits.dedup();
        leftovers.extend(
            inits
                .into_iter()
                .map(|i| playlist.config().name.file(crate::name::MediaFile::Init(i))),
        );
    }
    Ok(Resumed {
        playlist,
        start,
        discontinuity: true,
        leftovers,
        leftovers_due,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name() -> StreamName {
        StreamName::new("cam").unwrap()
    }

    fn config() -> PlaylistConfig {
        PlaylistConfig {
            name: name(),
            target_duration_secs: 2,
            list_size: 5,
            start_sequence: 0,
            start_discontinuity_sequence: 0,
        }
    }

    /// A restart reads our own DATERANGE tags back exactly (R36 across restarts).
    #[test]
    fn date_ranges_round_trip_through_the_playlist_text() {
        let mut pl = Playlist::new(config()).unwrap();
        let t0 = WallClock::from_unix_millis(1_764_072_000_000);
        pl.push(Duration90k::from_secs(2), t0, false).unwrap();
        let range = DateRange {
            id: "marker-1764072000000-1".into(),
            start: (t0 + Duration90k(45_090)),
            duration: Duration90k::from_secs(2),
            label: "Marker 1".into(),
        };
        pl.add_date_range(range.clone()).unwrap();
        let text = pl.render();
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("#EXT-X-DATERANGE:"))
            .unwrap();
        assert_eq!(parse_date_range(line), Some(range));
        assert_eq!(
            parse_date_range("ID=\"x\",DURATION=2.000"),
            None,
            "no START-DATE"
        );
        assert_eq!(parse_date_range("garbage"), None);
        assert_eq!(
            parse_date_range("ID=\"x\",START-DATE=\"2026-01-01T00:00:00.000Z\",DURATION=1e300"),
            None,
            "absurd DURATION"
        );
    }

    /// R22/R26/R33/R6: a readable previous playlist is continued: numbers go on, the first new
    /// segment is a discontinuity, the anchor is not before the old end, and files the old
    /// playlist no longer listed become leftovers.
    #[test]
    fn r22_resume_continues_numbers_and_marks_the_break() {
        let mut old = Playlist::new(PlaylistConfig {
            start_sequence: 7,
            ..config()
        })
        .unwrap();
        let t0 = WallClock::from_unix_millis(1_764_072_000_000);
        for k in 0..3 {
            old.push(
                Duration90k::from_secs(2),
                t0 + Duration90k::from_secs(2 * k),
                false,
            )
            .unwrap();
        }
        let text = old.render();
        let Previous::Run(prev) = read_previous(text.as_bytes(), &name()) else {
            panic!("our own playlist must read back");
        };
        assert_eq!(prev.media_sequence, 7);
        assert_eq!(prev.segments.len(), 3);
        assert_eq!(prev.segments[0].file.as_deref(), Some("cam7.ts"));
        assert_eq!(prev.end, Some(t0 + Duration90k::from_secs(6)));
        let disk = [(3, "cam3.ts".to_string()), (7, "cam7.ts".to_string())];
        let r = resume(config(), Some(prev), &disk, t0, Duration90k::from_secs(2)).unwrap();
        assert!(r.discontinuity);
        assert_eq!(
            r.start,
            (t0 + Duration90k::from_secs(6)),
            "never before the old end"
        );
        assert_eq!(r.playlist.next_sequence(), 10);
        assert_eq!(r.leftovers, vec!["cam3.ts".to_string()]);
        // Own grace, then the old window, then a full new window.
        assert_eq!(r.leftovers_due, Duration90k::from_secs(2 + 6 + 10));
    }

    /// R14: another target duration starts a new window after the old one; its files become
    /// leftovers and its discontinuities are counted.
    #[test]
    fn r14_other_target_duration_starts_a_new_window_after_the_old() {
        let text = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:4\n\
                    #EXT-X-DISCONTINUITY-SEQUENCE:1\n\
                    #EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T12:00:00.000Z\n\
                    #EXTINF:6.000,\ncam4.ts\n\
                    #EXT-X-PROGRAM-DATE-TIME:2026-11-25T12:00:06.000Z\n#EXTINF:6.000,\ncam5.ts\n";
        let Previous::Run(prev) = read_previous(text.as_bytes(), &name()) else {
            panic!("readable");
        };
        let now = WallClock::from_unix_millis(0);
        let r = resume(config(), Some(prev), &[], now, Duration90k::from_secs(2)).unwrap();
        assert_eq!(r.playlist.next_sequence(), 6, "numbers are never reused");
        assert_eq!(r.playlist.discontinuity_sequence(), 2);
        assert_eq!(r.playlist.segments().count(), 0);
        assert_eq!(
            r.leftovers,
            vec!["cam4.ts".to_string(), "cam5.ts".to_string()]
        );
    }

    /// One clock across restarts: a run that starts 10.011 s after the epoch at 29.97 begins on
    /// the first frame at or after that, and its program date time is not before the start.
    #[test]
    fn first_slot_continues_the_stream_clock_by_the_wall_clock_gap() {
        let epoch = WallClock::from_unix_millis(1_764_072_000_000);
        let ntsc = FrameRate::new(30_000, 1001).unwrap();
        let start = epoch + Duration90k::from_millis(10_011);
        let n = first_slot(epoch, start, ntsc);
        assert_eq!(
            n, 301,
            "frame 300 is at 10.010 s exactly, frame 301 at 10.0434 s"
        );
        assert_eq!(
            first_slot(epoch, epoch + Duration90k::from_millis(10_010), ntsc),
            300
        );
        assert!(epoch.at(ntsc.time_of(n)) >= start);
        assert!(epoch.at(ntsc.time_of(n - 1)) < start);
        assert_eq!(first_slot(epoch, epoch, ntsc), 0);
        // A wall clock that went back before the epoch starts at slot 0, never below.
        assert_eq!(first_slot(epoch, WallClock::from_unix_millis(0), ntsc), 0);
    }

    #[test]
    fn hostile_previous_playlists_never_yield_a_window() {
        assert!(matches!(
            read_previous(b"not a playlist", &name()),
            Previous::Unreadable(_)
        ));
        let huge = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:18446744073709551000\n";
        assert_eq!(read_previous(huge.as_bytes(), &name()), Previous::Exhausted);
        let far = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:3\n\
                   #EXT-X-PROGRAM-DATE-TIME:9999-12-31T23:59:59.000Z\n#EXTINF:2.000,\ncam3.ts\n";
        let Previous::Run(prev) = read_previous(far.as_bytes(), &name()) else {
            panic!("readable");
        };
        assert!(prev.segments.is_empty());
        assert_eq!(prev.media_sequence, 4, "numbering still goes on after it");
        assert_eq!(after_segment_files(Some(41)).unwrap().media_sequence, 42);
        assert_eq!(after_segment_files(Some(u64::MAX)), None);
        assert_eq!(after_segment_files(None), None);
    }
}
