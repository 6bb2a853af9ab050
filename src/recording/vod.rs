//! The VOD playlist of a stretch of recording (`GET /recordings/NAME.m3u8?start=&end=`, a
//! marker's `clip.m3u8`): pure, from the segments and markers the index returns to m3u8 text.
//!
//! ```text
//! #EXTM3U
//! #EXT-X-VERSION:3                      R11: 6 when a segment has EXT-X-MAP (fMP4)
//! #EXT-X-TARGETDURATION:3               R13: ceiling of the longest segment, unrounded (as live)
//! #EXT-X-PLAYLIST-TYPE:VOD              R17: the playlist never changes
//! #EXT-X-MEDIA-SEQUENCE:0
//! #EXT-X-DISCONTINUITY-SEQUENCE:0       R16: only when a discontinuity follows
//! #EXT-X-INDEPENDENT-SEGMENTS           R18: each segment opens with SPS/PPS/IDR
//! #EXT-X-DATERANGE:ID="marker-…",START-DATE="…",DURATION=2.000,X-COM-HLSSTREAMER-LABEL="…"
//! #EXT-X-MAP:URI="cam3.init.mp4"        fMP4 only: before the first segment and on each change
//! #EXT-X-PROGRAM-DATE-TIME:…            R32/R33: on every segment
//! #EXTINF:2.002,
//! cam17.ts
//! #EXT-X-DISCONTINUITY                  R6: a restart, and every gap in the recording
//! #EXT-X-PROGRAM-DATE-TIME:…
//! ...
//! #EXT-X-ENDLIST                        R29
//! ```
//! Markers are written as the live playlist writes them ([`crate::playlist::DateRange`], the
//! same `ID`, so a player that saw the live tag merges the two); quoted strings are sanitised
//! with [`attributes::unsafe_in_quoted`] (R37). A DATERANGE is written when some instant of it
//! falls inside the playlist's dates (R34: the playlist has PDT on every segment).

use std::fmt::Write as _;

use crate::clock::WallClock;
use crate::markers::Marker;
use crate::playlist::{
    attributes, DateRange, DATERANGE_LABEL_ATTRIBUTE, MAP_PROTOCOL_VERSION, PROTOCOL_VERSION,
};
use crate::recording::db::{SegmentRow, SPAN_TOLERANCE_MS};
use crate::time::Duration90k;

/// One segment of a VOD playlist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VodSegment {
    /// Relative URI (our segment file names need no escaping).
    pub uri: String,
    pub duration: Duration90k,
    /// UTC of its first frame.
    pub program_date_time: WallClock,
    /// Preceded by `EXT-X-DISCONTINUITY`: a restart or a gap before it.
    pub discontinuity: bool,
    /// Its init segment's URI (fMP4), `None` for TS.
    pub map: Option<String>,
}

/// Why a playlist could not be written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VodError {
    #[error("no segment in the range")]
    Empty,
    #[error(
        "segment URI {uri:?} would break the playlist (line break, quote or control character)"
    )]
    BadUri { uri: String },
    #[error("EXT-X-DATERANGE ID {id:?} must be non-empty without quotes or control characters")]
    BadDateRangeId { id: String },
}

/// The playlist's segments from index rows in time order: `EXT-X-DISCONTINUITY` where the
/// stream restarted and wherever the recording has a gap (rows that do not follow on within
/// [`SPAN_TOLERANCE_MS`]: deleted segments, a stopped stream). `uri` names each row's file
/// as the client will ask for it; `map` its init segment (fMP4).
pub fn segments_from_rows(
    rows: &[SegmentRow],
    mut uri: impl FnMut(&SegmentRow) -> String,
    mut map: impl FnMut(&SegmentRow) -> Option<String>,
) -> Vec<VodSegment> {
    let mut out = Vec::with_capacity(rows.len());
    let mut prev_end: Option<i64> = None;
    for r in rows {
        let gap = prev_end.is_some_and(|e| r.start.unix_millis() > e + SPAN_TOLERANCE_MS);
        out.push(VodSegment {
            uri: uri(r),
            duration: r.duration,
            program_date_time: r.start,
            // Never before the first segment: there is nothing to be discontinuous with.
            discontinuity: prev_end.is_some() && (r.discontinuity || gap),
            map: map(r),
        });
        prev_end = Some(r.end().unix_millis());
    }
    out
}

/// A marker as the live playlist publishes it: the same `ID` (`marker-EPOCHMS-ID`, unique for
/// the life of the stream), its frame's date, its length and its text.
pub fn marker_range(epoch: WallClock, m: &Marker) -> DateRange {
    DateRange {
        id: format!("marker-{}-{}", epoch.unix_millis(), m.id),
        start: epoch.at(m.at),
        duration: m.length,
        label: m.text.clone(),
    }
}

/// `EXT-X-TARGETDURATION` of these segments: the ceiling of the longest, in whole seconds, at
/// least 1 (with version 3 it bounds the unrounded EXTINF, R13; the live writer's rule).
pub fn target_duration_secs(segments: &[VodSegment]) -> u64 {
    segments
        .iter()
        .map(|s| s.duration.as_secs_ceil())
        .max()
        .unwrap_or(1)
        .max(1)
}

/// Milliseconds as `S.mmm`.
fn write_secs(out: &mut String, ms: u64) {
    write!(out, "{}.{:03}", ms / 1000, ms % 1000).expect("writing to a String");
}

fn quoted_safe(s: &str) -> bool {
    !s.chars().any(attributes::unsafe_in_quoted)
}

/// The whole VOD playlist of `segments` (in play order) with the `ranges` that overlap its
/// dates.
pub fn render(segments: &[VodSegment], ranges: &[DateRange]) -> Result<String, VodError> {
    let first = segments.first().ok_or(VodError::Empty)?;
    for s in segments {
        let unsafe_uri = |u: &str| u.is_empty() || !quoted_safe(u) || u.starts_with('#');
        if unsafe_uri(&s.uri) || s.map.as_deref().is_some_and(unsafe_uri) {
            return Err(VodError::BadUri { uri: s.uri.clone() });
        }
    }
    for r in ranges {
        if r.id.is_empty() || !quoted_safe(&r.id) {
            return Err(VodError::BadDateRangeId { id: r.id.clone() });
        }
    }
    let w = "writing to a String cannot fail";
    let mut out = String::with_capacity(256 + 96 * segments.len() + 160 * ranges.len());
    out.push_str("#EXTM3U\n");
    let version = if segments.iter().any(|s| s.map.is_some()) {
        MAP_PROTOCOL_VERSION
    } else {
        PROTOCOL_VERSION
    };
    writeln!(out, "#EXT-X-VERSION:{version}").expect(w);
    writeln!(
        out,
        "#EXT-X-TARGETDURATION:{}",
        target_duration_secs(segments)
    )
    .expect(w);
    out.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MEDIA-SEQUENCE:0\n");
    if segments.iter().any(|s| s.discontinuity) {
        // R16: before the first segment and any EXT-X-DISCONTINUITY, as the live writer does.
        out.push_str("#EXT-X-DISCONTINUITY-SEQUENCE:0\n");
    }
    out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");

    // The playlist's dates: from the first segment's start to the latest end.
    let span_start = first.program_date_time.unix_millis();
    let span_end = segments
        .iter()
        .map(|s| s.program_date_time.unix_millis() + s.duration.as_millis_rounded() as i64)
        .max()
        .unwrap_or(span_start);
    let mut seen_ids = std::collections::HashSet::new();
    for r in ranges {
        let start = r.start.unix_millis();
        let end = start + r.duration.as_millis_rounded() as i64;
        if start >= span_end || end < span_start || !seen_ids.insert(r.id.as_str()) {
            continue;
        }
        write!(
            out,
            "#EXT-X-DATERANGE:ID=\"{}\",START-DATE=\"{}\",DURATION=",
            r.id,
            r.start.to_rfc3339()
        )
        .expect(w);
        write_secs(&mut out, r.duration.as_millis_rounded());
        writeln!(
            out,
            ",{DATERANGE_LABEL_ATTRIBUTE}=\"{}\"",
            crate::playlist::sanitise_quoted(&r.label)
        )
        .expect(w);
    }

    let mut map_shown: Option<&str> = None;
    for s in segments {
        if s.discontinuity {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        if let Some(m) = s.map.as_deref() {
            if map_shown != Some(m) {
                writeln!(out, "#EXT-X-MAP:URI=\"{m}\"").expect(w);
                map_shown = Some(m);
            }
        }
        writeln!(
            out,
            "#EXT-X-PROGRAM-DATE-TIME:{}",
            s.program_date_time.to_rfc3339()
        )
        .expect(w);
        out.push_str("#EXTINF:");
        write_secs(&mut out, s.duration.as_millis_rounded());
        out.push_str(",\n");
        out.push_str(&s.uri);
        out.push('\n');
    }
    out.push_str("#EXT-X-ENDLIST\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::markers::tests::marker_at;
    use crate::time::StreamTime;

    fn wc(ms: i64) -> WallClock {
        WallClock::from_unix_millis(ms)
    }

    const EPOCH_MS: i64 = 1_764_072_000_000;

    /// Rows of `cam`: 2.002 s segments from `first`, `n` of them, starting at stream time
    /// `first * 2.002 s`.
    fn rows(first: u64, n: u64) -> Vec<SegmentRow> {
        (first..first + n)
            .map(|seq| {
                let t = seq * 180_180;
                SegmentRow {
                    stream: "cam".into(),
                    sequence: seq,
                    start: wc(EPOCH_MS).at(StreamTime(t)),
                    start_90k: StreamTime(t),
                    duration: Duration90k(180_180),
                    bytes: 1000,
                    discontinuity: false,
                    file: format!("cam{seq}.ts"),
                    retained_until: None,
                }
            })
            .collect()
    }

    fn parse(text: &str) -> m3u8_rs::MediaPlaylist {
        // The test kit's strict reader knows live playlists, which must not have a type (R17):
        // every other rule it checks (R9-R16, R18, R32, R34-R37) holds with the type left out.
        let untyped = text.replace("#EXT-X-PLAYLIST-TYPE:VOD\n", "");
        assert_eq!(
            untyped.len() + 25,
            text.len(),
            "exactly one EXT-X-PLAYLIST-TYPE"
        );
        if let Err(e) = hls_testkit::check_playlist_text(&untyped) {
            panic!("{e}\n{text}");
        }
        m3u8_rs::parse_media_playlist_res(text.as_bytes())
            .unwrap_or_else(|e| panic!("m3u8-rs refuses it: {e:?}\n{text}"))
    }

    /// Every `#EXT-X-DATERANGE` line's attributes, read strictly (R37).
    fn dateranges(text: &str) -> Vec<Vec<(String, String)>> {
        text.lines()
            .filter_map(|l| l.strip_prefix("#EXT-X-DATERANGE:"))
            .map(|a| {
                attributes::parse(a)
                    .unwrap()
                    .into_iter()
                    .map(|(k, v)| {
                        let v = match v {
                            attributes::AttrValue::Quoted(q) => q,
                            attributes::AttrValue::Plain(p) => p,
                        };
                        (k.to_owned(), v.to_owned())
                    })
                    .collect()
            })
            .collect()
    }

    /// R6, R13, R17, R29, R32-R35: a recording with a gap; markers inside and outside.
    #[test]
    fn a_vod_playlist_with_a_gap_and_markers() {
        // Segments 10..15, then 18..20 (16 and 17 were deleted), then 20 after a restart.
        let mut r = rows(10, 5);
        r.extend(rows(18, 2));
        let mut restarted = rows(20, 1);
        restarted[0].discontinuity = true;
        r.extend(restarted);
        let segs = segments_from_rows(&r, |r| r.file.clone(), |_| None);
        let flags: Vec<bool> = segs.iter().map(|s| s.discontinuity).collect();
        assert_eq!(
            flags,
            [false, false, false, false, false, true, false, true]
        );

        let epoch = wc(EPOCH_MS);
        let at = |secs: u64| StreamTime(secs * 90_000);
        let mut m_in = marker_at(3, at(25), Duration90k::from_secs(2), epoch);
        m_in.text = "Door \"open\"\u{2028}#EXT-X-ENDLIST".into();
        let m_edge = marker_at(4, at(19), Duration90k::from_secs(2), epoch); // ends inside
        let m_before = marker_at(1, at(5), Duration90k::from_secs(2), epoch);
        let m_after = marker_at(9, at(100), Duration90k::from_secs(2), epoch);
        let ranges: Vec<DateRange> = [&m_in, &m_edge, &m_before, &m_after]
            .into_iter()
            .map(|m| marker_range(epoch, m))
            .collect();
        let text = render(&segs, &ranges).unwrap();

        let pl = parse(&text);
        assert_eq!(pl.playlist_type, Some(m3u8_rs::MediaPlaylistType::Vod));
        assert!(pl.end_list);
        assert_eq!(pl.version, Some(3));
        assert_eq!(pl.target_duration, 3, "ceil(2.002)");
        assert_eq!(pl.segments.len(), 8);
        for (s, row) in pl.segments.iter().zip(&r) {
            assert_eq!(s.uri, row.file);
            assert!((s.duration - 2.002).abs() < 1e-6);
            // R13: rounded EXTINF <= target.
            assert!(s.duration.round() as u64 <= pl.target_duration);
            let pdt = s.program_date_time.expect("PDT on every segment (R33)");
            assert_eq!(pdt.timestamp_millis(), row.start.unix_millis());
        }
        let disc: Vec<bool> = pl.segments.iter().map(|s| s.discontinuity).collect();
        assert_eq!(disc, flags);

        let drs = dateranges(&text);
        let ids: Vec<&str> = drs.iter().map(|d| d[0].1.as_str()).collect();
        assert_eq!(
            ids,
            [
                format!("marker-{EPOCH_MS}-3"),
                format!("marker-{EPOCH_MS}-4")
            ]
        );
        assert_eq!(drs[0][1].1, epoch.at(at(25)).to_rfc3339());
        assert_eq!(drs[0][2], ("DURATION".into(), "2.000".into()));
        assert_eq!(
            drs[0][3],
            (
                DATERANGE_LABEL_ATTRIBUTE.into(),
                "Door 'open' #EXT-X-ENDLIST".into()
            )
        );
        // The hostile label did not end the playlist early.
        assert_eq!(text.matches("#EXT-X-ENDLIST").count(), 2);
        assert!(text.ends_with("cam20.ts\n#EXT-X-ENDLIST\n"));
        assert!(!text.contains("PLAYLIST-TYPE: "), "no whitespace (R9)");
        assert!(
            text.lines()
                .all(|l| !l.starts_with(' ') && !l.ends_with(' ')),
            "R9"
        );
    }

    #[test]
    fn fmp4_segments_get_their_map_and_version_6() {
        let r = rows(0, 4);
        let segs = segments_from_rows(
            &r,
            |r| format!("cam{}.m4s", r.sequence),
            |r| Some(format!("cam{}.init.mp4", r.sequence / 2)),
        );
        let text = render(&segs, &[]).unwrap();
        let pl = parse(&text);
        assert_eq!(pl.version, Some(6));
        let maps: Vec<Option<String>> = pl
            .segments
            .iter()
            .map(|s| s.map.as_ref().map(|m| m.uri.clone()))
            .collect();
        assert_eq!(
            maps,
            [
                Some("cam0.init.mp4".to_owned()),
                None,
                Some("cam1.init.mp4".to_owned()),
                None
            ]
        );
    }

    #[test]
    fn bad_input_is_refused() {
        assert_eq!(render(&[], &[]), Err(VodError::Empty));
        let mut segs = segments_from_rows(&rows(0, 1), |_| "a\nb.ts".into(), |_| None);
        assert!(matches!(render(&segs, &[]), Err(VodError::BadUri { .. })));
        segs[0].uri = "cam0.ts".into();
        let bad = DateRange {
            id: "x\"y".into(),
            start: wc(EPOCH_MS),
            duration: Duration90k::ZERO,
            label: String::new(),
        };
        assert!(matches!(
            render(&segs, &[bad]),
            Err(VodError::BadDateRangeId { .. })
        ));
        // Target duration: exactly 2 s segments give 2; one longer segment raises it.
        let mut r = rows(0, 3);
        for row in &mut r {
            row.duration = Duration90k::from_secs(2);
        }
        let segs = segments_from_rows(&r, |r| r.file.clone(), |_| None);
        assert_eq!(target_duration_secs(&segs), 2);
        r[1].duration = Duration90k(2 * 90_000 + 1);
        let segs = segments_from_rows(&r, |r| r.file.clone(), |_| None);
        assert_eq!(target_duration_secs(&segs), 3);
    }
}
