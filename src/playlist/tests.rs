//! Tests of the playlist writer, one per rule (R-numbers: docs/spec.md).
use super::*;
use crate::time::FrameRate;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashMap};

/// 2026-11-25T12:00:00.000Z.
const T0_MS: i64 = 1_795_608_000_000;
const TWO_S: Duration90k = Duration90k(180_000);
const GOLDEN_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/");

fn t0() -> WallClock {
    WallClock::from_unix_millis(T0_MS)
}

fn config(list_size: usize, target_duration_secs: u64) -> PlaylistConfig {
    PlaylistConfig {
        name: "chessboard".parse().expect("valid name"),
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
    at: Duration90k,
}

impl Feed {
    fn new(cfg: PlaylistConfig) -> Self {
        Feed {
            pl: Playlist::new(cfg).expect("valid test config"),
            anchor: t0(),
            at: Duration90k(0),
        }
    }

    fn pdt(&self) -> WallClock {
        self.anchor + self.at
    }

    fn push(&mut self, d: Duration90k) -> PushOutcome {
        let out = self
            .pl
            .push(d, self.pdt(), false)
            .expect("valid continuous segment");
        self.at = self.at + d;
        self.pl.check_invariants().expect("invariants after push");
        out
    }

    /// A restart: new anchor `gap_ms` after the previous segment's end.
    fn push_discontinuity(&mut self, d: Duration90k, gap_ms: i64) -> PushOutcome {
        self.anchor = WallClock::from_unix_millis(self.pdt().unix_millis() + gap_ms);
        self.at = Duration90k(0);
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

    fn range(&mut self, id: &str, at_ms: i64, duration: Duration90k, label: &str) {
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

/// The DATERANGE attribute lists of `text` (m3u8-rs keeps only one per segment), read with the
/// one strict attribute-list parser. Quoted values keep no quotes.
fn dateranges(text: &str) -> Vec<Vec<(String, String)>> {
    text.lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-DATERANGE:"))
        .map(|list| {
            attributes::parse(list)
                .unwrap_or_else(|e| panic!("{e}: {list:?}"))
                .into_iter()
                .map(|(n, v)| {
                    let v = match v {
                        attributes::AttrValue::Quoted(v) | attributes::AttrValue::Plain(v) => v,
                    };
                    (n.to_owned(), v.to_owned())
                })
                .collect()
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

/// A strict reading of RFC 8216 §4 syntax that m3u8-rs is too lenient to give (R9, R10, R11,
/// R13, R15-R18, R32, R34-R37): the test kit's playlist checker, the one syntax checker.
fn assert_syntax(text: &str) {
    if let Err(e) = hls_testkit::check_playlist_text(text) {
        panic!("{e} in\n{text}");
    }
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
    let seg = rate.time_of(60).since_start();
    assert_eq!(seg, Duration90k(180_180));
    let target = segment_bound(Duration90k::from_secs(2), Cuts::FrameGrid(rate)).1;
    assert_eq!(target, 3);
    let mut f = Feed::new(config(5, target));
    for k in 0..7u64 {
        // Boundaries from frame indices, as the segmenter cuts them.
        f.push(rate.time_of(60 * (k + 1)) - rate.time_of(60 * k));
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
        write_millis(&mut s, ticks_to_millis(Duration90k(ticks)));
        assert_eq!(s, want, "{ticks} ticks");
    }
    // 30000 segments of 60 frames at 29.97 fps: the EXTINF sum is the exact stream time.
    let rate = FrameRate::new(30_000, 1001).expect("valid rate");
    let total_ms: u64 = (0..30_000u64)
        .map(|k| ticks_to_millis(rate.time_of(60 * (k + 1)) - rate.time_of(60 * k)))
        .sum();
    assert_eq!(total_ms * TICKS_PER_MS, rate.time_of(60 * 30_000).as_u64());
}

/// `write_millis` writes what `format!("{}.{:03}")` of the seconds and milliseconds gives, and
/// appends to what is there.
#[test]
fn write_millis_is_the_formatted_seconds() {
    let edges = [
        0,
        1,
        9,
        10,
        99,
        100,
        999,
        1000,
        1001,
        2002,
        9999,
        10_000,
        123_456_789,
    ];
    let all = edges.into_iter().chain((0..5000).map(|k| k * 37)).chain([
        u64::MAX / 1000,
        u64::MAX - 1,
        u64::MAX,
    ]);
    for ms in all {
        let mut s = String::from("x");
        write_millis(&mut s, ms);
        assert_eq!(s, format!("x{}.{:03}", ms / 1000, ms % 1000), "{ms}");
    }
}

#[test]
fn r12_zero_extinf_rejected() {
    let mut pl = Playlist::new(config(3, 2)).expect("valid");
    let err = pl.push(Duration90k(44), t0(), false).expect_err("0.000 s");
    assert_eq!(
        err,
        PlaylistError::ZeroDuration {
            sequence: 0,
            duration: Duration90k(44)
        }
    );
    assert_eq!(pl.next_sequence(), 0, "nothing changed");
}

#[test]
fn r13_target_duration_covers_every_extinf() {
    let mut f = Feed::new(config(3, 2));
    // 2.499 s rounds to 2: accepted; 2.500 s rounds to 3: refused with context.
    f.push(Duration90k(2_499 * 90));
    let pdt = f.pdt();
    let err =
        f.pl.push(Duration90k(2_500 * 90), pdt, false)
            .expect_err("rounds to 3 > 2");
    assert_eq!(
        err,
        PlaylistError::SegmentTooLong {
            sequence: 1,
            duration: Duration90k(225_000),
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
    let thirty = FrameRate::new(30, 1).expect("valid rate");
    assert_eq!(segment_bound(TWO_S, Cuts::FrameGrid(thirty)).1, 2);
    assert_eq!(
        segment_bound(Duration90k(180_001), Cuts::FrameGrid(thirty)).1,
        3
    );
    assert_eq!(segment_bound(Duration90k(1), Cuts::FrameGrid(thirty)).1, 1);
}

#[test]
fn r14_target_duration_constant_for_life() {
    let mut f = Feed::new(config(4, 3));
    let mut rng = StdRng::seed_from_u64(14);
    for _ in 0..200 {
        f.push(Duration90k(rng.random_range(90..=3_499 * 90)));
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
        f.push(Duration90k(45_000));
    }
    assert_eq!(f.pl.segments().count(), 12);
    assert_eq!(f.pl.window_duration(), Duration90k::from_secs(6));
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
        f.push(Duration90k(45_000));
    }
    // Long segments now push the short ones out; segment 0 was in playlists up to 6.5 s.
    let out = f.push(TWO_S);
    assert_eq!(out.removed.first().map(|s| s.sequence), Some(0));
    let p0 = *f.pl.pending_deletes().next().expect("segment 0 pending");
    // Removed at stream time 8 s, when the window dropped to 6 s again; the longest
    // published playlist holding segment 0 was the 12 short ones, 6 s: grace 0.5 + 6 s.
    assert_eq!(
        p0.delete_at,
        Duration90k::from_secs(8) + Duration90k(45_000) + Duration90k::from_secs(6)
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
        f.push(Duration90k(1_999 * 90 + 17));
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
        name: "cam".parse().expect("valid name"),
        target_duration_secs: 3,
        list_size: 10,
        start_sequence: 40,
        start_discontinuity_sequence: 2,
    })
    .unwrap();
    let mut pdt = T0_MS;
    for _ in 0..8 {
        // 59 frames at 29.97 is 1968.633 ms: PDTs advance 1968 or 1969 ms, EXTINF says 1.969.
        pl.push_resumed(
            Duration90k(1969 * 90),
            WallClock::from_unix_millis(pdt),
            false,
        )
        .expect("a resumed segment is taken as written");
        pdt += 1968;
        pl.check_invariants().unwrap();
    }
    // The next continuous segment is held to the last resumed one; the restart's own
    // segment comes with a discontinuity and a new anchor.
    let next = WallClock::from_unix_millis(pdt + 6);
    assert!(pl.push(Duration90k::from_secs(2), next, false).is_err());
    let o = pl.push(Duration90k::from_secs(2), next, true).unwrap();
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
        let start = rate.time_of(45 * k);
        let d = rate.time_of(45 * (k + 1)) - start; // 1.5015 s: never a whole ms
        pl.push(d, anchor.at(start), false)
            .expect("anchor + stream time");
    }
    pl.check_invariants().expect("invariants");
}

#[test]
fn r35_daterange_attributes() {
    let mut f = Feed::new(config(5, 2));
    f.push(TWO_S);
    f.range("marker-1", 500, Duration90k(0), "Marker 1");
    f.range("marker-2", 1_000, Duration90k(180_180), "Marker 2");
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
    f.range("instant", 0, Duration90k(0), "at zero");
    f.range("long", 1_500, Duration90k::from_secs(8), "long");
    // A future range waits: start 20 s.
    f.range("future", 20_000, Duration90k(0), "later");
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
        duration: Duration90k::from_secs(8),
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

/// Issue 18: hls.js reads U+2028 and U+2029 as line breaks (and some readers U+0085), so a
/// label holding them could add a line such as `#EXT-X-ENDLIST` to the playlist as it parses it.
#[test]
fn r37_line_separators_never_reach_a_quoted_string() {
    let mut f = Feed::new(config(3, 2));
    f.push(TWO_S);
    f.range("m-1", 100, TWO_S, "x\u{2028}#EXT-X-ENDLIST\u{2029}y\u{85}z");
    let text = render_checked(&f.pl);
    assert!(
        text.contains(",X-COM-HLSSTREAMER-LABEL=\"x #EXT-X-ENDLIST y z\"\n"),
        "{text}"
    );
    assert!(!text.contains(['\u{2028}', '\u{2029}', '\u{85}']));
}

/// Issue 18: at most [`MAX_DATE_RANGES`] ranges are held and shown, the latest by start date,
/// whatever order they were added in.
#[test]
fn date_ranges_are_capped_keeping_the_latest() {
    let mut f = Feed::new(config(3, 2));
    f.push(TWO_S);
    let n = MAX_DATE_RANGES + 50;
    // Added in an order unrelated to their dates: even ids late, odd ids early.
    let at = |i: usize| {
        if i % 2 == 0 {
            1000 + i as i64
        } else {
            i as i64
        }
    };
    for i in 0..n {
        f.range(&format!("m-{i}"), at(i), TWO_S, "x");
    }
    let text = render_checked(&f.pl);
    assert_eq!(text.matches("#EXT-X-DATERANGE:").count(), MAX_DATE_RANGES);
    let mut starts: Vec<i64> = (0..n).map(at).collect();
    starts.sort_unstable();
    let kept_from = starts[n - MAX_DATE_RANGES];
    for i in 0..n {
        let ms = at(i);
        let shown = text.contains(&format!("ID=\"m-{i}\""));
        assert_eq!(shown, ms >= kept_from, "m-{i} at {ms} ms");
    }
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
    for bad in [
        "",
        "a\"b",
        "a\nb",
        "a\rb",
        "a\u{0}b",
        "a\u{2028}b",
        "a\u{2029}b",
        "a\u{85}b",
    ] {
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
    // A name outside the URI-safe alphabet cannot even be given (R9: the URI line needs no
    // escaping).
    for name in ["", "a b", "x/y", "#c", "a\n", "é"] {
        assert!(name.parse::<StreamName>().is_err(), "{name:?}");
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
        let mut at = Duration90k(0);
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
                    let d = Duration90k(rng.random_range(90..=max_ms * 90));
                    let restart = rng.random_ratio(1, 15);
                    let (new_wall, new_at) = if restart {
                        // A restart up to 5 s later, or overlapping by under a second.
                        let gap = rng.random_range(-999..5_000i64);
                        let end = (wall + at).unix_millis();
                        (WallClock::from_unix_millis(end + gap), Duration90k(0))
                    } else {
                        (wall, at)
                    };
                    let before_seq = pl.next_sequence();
                    let out = match pl.push(d, new_wall + new_at, restart) {
                        Ok(out) => out,
                        // Overlapped the previous segment's start: refused, state unchanged.
                        Err(PlaylistError::ProgramDateTimeNotAfter { .. }) if restart => continue,
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
                    let base = (wall + at).unix_millis();
                    let start = base + rng.random_range(-30_000..5_000i64);
                    let r = DateRange {
                        id: format!("marker-{next_marker}"),
                        start: WallClock::from_unix_millis(start),
                        duration: Duration90k(rng.random_range(0..10 * TICKS_PER_SEC)),
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

/// `check_invariants` still catches a cached PDT text that does not show the segment's PDT,
/// whether the text or the instant is what went wrong, with the text compared only once.
#[test]
fn check_invariants_catches_a_stale_pdt_text_or_instant() {
    let fresh = || {
        let mut pl = Playlist::new(config(3, 2)).expect("valid");
        pl.push(Duration90k(180_000), t0(), false).unwrap();
        pl
    };
    let mut pl = fresh();
    pl.window[0].pdt_text = "2001-01-01T00:00:00.000Z".into();
    assert!(pl.check_invariants().unwrap_err().contains("stale PDT"));
    let mut pl = fresh();
    pl.check_invariants().unwrap();
    pl.window[0].segment.program_date_time = t0() + Duration90k(90);
    assert!(pl.check_invariants().unwrap_err().contains("stale PDT"));
}

fn fmp4_config(list_size: usize) -> PlaylistConfig {
    PlaylistConfig {
        name: "chessboard"
            .parse::<StreamName>()
            .expect("valid name")
            .with_segment_type(crate::name::SegmentType::Fmp4),
        ..config(list_size, 2)
    }
}

#[test]
fn r49_map_before_the_first_segment_and_where_it_changes() {
    let mut f = Feed::new(fmp4_config(3));
    f.pl.start_map(0);
    f.push(TWO_S);
    f.push(TWO_S);
    // New parameter sets: a new init from segment 2 on.
    f.pl.start_map(2);
    f.push_discontinuity(TWO_S, 0);
    f.push(TWO_S);
    let text = f.pl.render();
    assert_syntax(&text);
    assert!(text.contains("#EXT-X-VERSION:6\n"), "{text}");
    let maps: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("#EXT-X-MAP"))
        .collect();
    assert_eq!(
        maps,
        vec![
            "#EXT-X-MAP:URI=\"chessboard0.init.mp4\"",
            "#EXT-X-MAP:URI=\"chessboard2.init.mp4\""
        ],
        "{text}"
    );
    // The first listed segment (1) is preceded by its map, the second map by its segment (2).
    let lines: Vec<&str> = text.lines().collect();
    let at = |needle: &str| lines.iter().position(|l| *l == needle).unwrap();
    assert!(at("#EXT-X-MAP:URI=\"chessboard0.init.mp4\"") < at("chessboard1.m4s"));
    assert!(at("chessboard1.m4s") < at("#EXT-X-MAP:URI=\"chessboard2.init.mp4\""));
    assert!(at("#EXT-X-MAP:URI=\"chessboard2.init.mp4\"") < at("chessboard2.m4s"));
    assert_eq!(f.pl.map_of(1), Some(0));
    assert_eq!(f.pl.map_of(3), Some(2));
    // m3u8-rs reads the same maps.
    let parsed = m3u8_rs::parse_media_playlist_res(text.as_bytes()).unwrap();
    assert_eq!(parsed.version, Some(6));
    let uris: Vec<Option<String>> = parsed
        .segments
        .iter()
        .map(|s| s.map.as_ref().map(|m| m.uri.clone()))
        .collect();
    assert_eq!(
        uris,
        vec![
            Some("chessboard0.init.mp4".to_string()),
            Some("chessboard2.init.mp4".to_string()),
            None
        ]
    );
    // A TS playlist stays at version 3 without maps.
    let mut ts = Feed::new(config(3, 2));
    ts.push(TWO_S);
    assert!(ts.pl.render().contains("#EXT-X-VERSION:3\n"));
    assert!(!ts.pl.render().contains("EXT-X-MAP"));
}

#[test]
fn r49_map_precedes_the_open_segments_first_part() {
    let mut f = Feed::new(fmp4_config(3));
    f.pl.enable_low_latency(LowLatency {
        part_target: Duration90k(30_000),
    })
    .unwrap();
    f.pl.start_map(0);
    f.pl.push_part(
        Part {
            duration: Duration90k(30_000),
            independent: true,
        },
        f.pdt(),
        false,
        false,
    )
    .unwrap();
    let mut text = String::new();
    f.pl.render_with(&mut text, Render::Full);
    let lines: Vec<&str> = text.lines().collect();
    let map = lines
        .iter()
        .position(|l| *l == "#EXT-X-MAP:URI=\"chessboard0.init.mp4\"")
        .unwrap_or_else(|| panic!("{text}"));
    let part = lines
        .iter()
        .position(|l| l.starts_with("#EXT-X-PART:"))
        .unwrap();
    assert!(map < part, "{text}");
    assert!(text.contains("URI=\"chessboard0.0.m4s\""), "{text}");
}

#[test]
fn r50_init_deleted_with_the_last_segment_that_needs_it() {
    let mut f = Feed::new(fmp4_config(3));
    f.pl.start_map(0);
    let mut deleted: Vec<String> = Vec::new();
    for _ in 0..3 {
        deleted.extend(f.push(TWO_S).delete_now);
    }
    f.pl.start_map(3);
    deleted.extend(f.push_discontinuity(TWO_S, 0).delete_now);
    for _ in 0..20 {
        let out = f.push(TWO_S);
        for file in &out.delete_now {
            if file == "chessboard0.init.mp4" {
                // Deleted only with (or after) the last segment it initialised.
                assert!(
                    out.delete_now.contains(&"chessboard2.m4s".to_string())
                        || deleted.contains(&"chessboard2.m4s".to_string()),
                    "{out:?}"
                );
            }
        }
        deleted.extend(out.delete_now);
        // While any of segments 0-2 is listed or pending, its init is kept.
        let needed = f.pl.segments().any(|s| s.sequence < 3)
            || f.pl.pending_deletes().any(|p| p.sequence < 3);
        assert_eq!(
            needed,
            !deleted.contains(&"chessboard0.init.mp4".to_string()),
            "{deleted:?}"
        );
    }
    assert!(deleted.contains(&"chessboard0.init.mp4".to_string()));
    assert!(
        !deleted.contains(&"chessboard3.init.mp4".to_string()),
        "the current init is never deleted"
    );
    assert_eq!(f.pl.maps().collect::<Vec<_>>(), vec![3]);
}
