//! Tests of the low-latency playlist (R40-R47: docs/spec.md).
use super::*;
use crate::playlist::{DateRange, Playlist, PlaylistConfig};
use crate::time::Duration90k;

/// 2026-11-25T12:00:00.000Z.
const T0_MS: i64 = 1_795_608_000_000;
const GOLDEN_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/");
const PART: Duration90k = Duration90k(18_000);
const TWO_S: Duration90k = Duration90k(180_000);

fn golden(name: &str, actual: &str) {
    let path = format!("{GOLDEN_DIR}{name}");
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&path, actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}; run with UPDATE_GOLDEN=1 to create it"));
    assert!(
        expected == actual,
        "golden file {path} differs (UPDATE_GOLDEN=1 accepts)\nexpected:\n{expected}\ngot:\n{actual}"
    );
}

/// A low-latency playlist fed as the publisher does: parts of the open segment, then the
/// segment, PDT = anchor + stream time.
struct Feed {
    pl: Playlist,
    /// Stream time (ms since T0) of the open segment's start.
    at: Duration90k,
    anchor_ms: i64,
    parts_in_open: u32,
}

impl Feed {
    fn new(list_size: usize) -> Self {
        let mut pl = Playlist::new(PlaylistConfig {
            name: "chessboard".parse().unwrap(),
            target_duration_secs: 2,
            list_size,
            start_sequence: 0,
            start_discontinuity_sequence: 0,
        })
        .unwrap();
        pl.enable_low_latency(LowLatency { part_target: PART })
            .unwrap();
        Feed {
            pl,
            at: Duration90k::ZERO,
            anchor_ms: T0_MS,
            parts_in_open: 0,
        }
    }

    fn pdt(&self) -> WallClock {
        WallClock::from_unix_millis(self.anchor_ms) + self.at
    }

    fn part(&mut self, independent: bool, last: bool) {
        self.pl
            .push_part(
                Part {
                    duration: PART,
                    independent,
                },
                self.pdt(),
                false,
                last,
            )
            .unwrap();
        self.parts_in_open += 1;
        self.check();
    }

    /// A whole segment of ten 0.2 s parts, published part by part, then as a segment.
    fn segment(&mut self) {
        for k in 0..10 {
            self.part(k == 0, k == 9);
        }
        self.pl.push(TWO_S, self.pdt(), false).unwrap();
        self.at = self.at + TWO_S;
        self.parts_in_open = 0;
        self.check();
    }

    fn check(&self) {
        self.pl.check_invariants().unwrap();
        for form in [Render::Full, Render::Delta] {
            let mut text = String::new();
            self.pl.render_with(&mut text, form);
            if let Err(e) = hls_testkit::check_low_latency_text(&text) {
                panic!("{e} in {form:?}:\n{text}");
            }
        }
    }

    fn render(&self, form: Render) -> String {
        let mut text = String::new();
        self.pl.render_with(&mut text, form);
        text
    }
}

#[test]
fn golden_low_latency_live_and_delta() {
    let mut f = Feed::new(10);
    for _ in 0..12 {
        f.segment();
    }
    f.pl.add_date_range(DateRange {
        id: "marker-1".into(),
        start: WallClock::from_unix_millis(T0_MS + 22_500),
        duration: Duration90k::ZERO,
        label: "Marker 1".into(),
    })
    .unwrap();
    f.part(true, false);
    f.part(false, false);
    f.part(false, false);
    golden("low_latency_live.m3u8", &f.render(Render::Full));
    golden("low_latency_delta.m3u8", &f.render(Render::Delta));
    golden("low_latency_classic.m3u8", &f.render(Render::Classic));
}

#[test]
fn golden_low_latency_ended() {
    let mut f = Feed::new(10);
    for _ in 0..4 {
        f.segment();
    }
    f.pl.end();
    f.check();
    let text = f.render(Render::Full);
    assert!(!text.contains("PRELOAD-HINT"), "R44: no hint after the end");
    golden("low_latency_ended.m3u8", &text);
}

#[test]
fn r47_delta_is_the_full_playlist_minus_the_skipped_segments() {
    let mut f = Feed::new(60);
    let mut compared = 0;
    for s in 0..70 {
        for k in 0..10 {
            f.part(k == 0, k == 9);
            let full = f.render(Render::Full);
            let delta = f.render(Render::Delta);
            let skipped = f.pl.skipped_segments();
            if skipped == 0 {
                assert_eq!(delta, full, "nothing to skip: the full playlist");
                continue;
            }
            // Each skipped segment is three lines (PDT, EXTINF, URI) and has no parts.
            let lines: Vec<&str> = full.lines().collect();
            let first = lines
                .iter()
                .position(|l| l.starts_with("#EXT-X-PROGRAM-DATE-TIME:"))
                .unwrap();
            let mut expected: Vec<String> = lines[..first]
                .iter()
                .map(|l| {
                    if l.starts_with("#EXT-X-VERSION:") {
                        "#EXT-X-VERSION:9".to_owned()
                    } else {
                        (*l).to_owned()
                    }
                })
                .collect();
            expected.push(format!("#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}"));
            expected.extend(lines[first + 3 * skipped..].iter().map(|l| (*l).to_owned()));
            assert_eq!(delta, expected.join("\n") + "\n", "segment {s} part {k}");
            // R47: what is left starts less than CAN-SKIP-UNTIL (12 s) before the end, and
            // one more segment would not.
            let r = hls_testkit::check_low_latency_text(&delta).unwrap();
            let kept: u64 = r.classic.segments.iter().map(|s| s.extinf_ms).sum::<u64>()
                + r.open_parts.iter().map(|p| p.duration_ms).sum::<u64>();
            assert!(kept <= 12_000, "{kept} ms kept");
            assert!(kept + 2000 > 12_000, "{kept} ms kept: skipped one too many");
            compared += 1;
        }
        f.pl.push(TWO_S, f.pdt(), false).unwrap();
        f.at = f.at + TWO_S;
        f.check();
    }
    assert!(compared > 600, "{compared}");
}

#[test]
fn r42_parts_are_listed_for_the_last_three_target_durations_only() {
    let mut f = Feed::new(10);
    for _ in 0..8 {
        f.segment();
    }
    f.part(true, false);
    let r = hls_testkit::check_low_latency_text(&f.render(Render::Full)).unwrap();
    // The end is at 16.2 s: segments 6 (12 s) and 7 start less than 6 s before it, 5 (10 s)
    // does not.
    let listed: Vec<u64> = f.pl.listed_parts().iter().map(|(s, _)| *s).collect();
    assert_eq!(listed, vec![6, 7, 8]);
    let indices: Vec<usize> = r.segment_parts.iter().map(|(i, _)| *i).collect();
    assert_eq!(indices, vec![6, 7]);
    for (_, parts) in &r.segment_parts {
        assert_eq!(parts.len(), 10);
        let independent: Vec<bool> = parts.iter().map(|p| p.independent).collect();
        assert!(independent[0]);
        assert!(
            independent[1..].iter().all(|i| !i),
            "R45: only the IDR part"
        );
    }
    assert_eq!(r.open_parts.len(), 1);
    assert_eq!(r.open_parts[0].uri, "chessboard8.0.ts");
    assert_eq!(r.preload_hint.as_deref(), Some("chessboard8.1.ts"));
    assert_eq!(r.part_target_ms, 200);
    assert_eq!(r.part_hold_back_ms, 600);
    assert_eq!(r.can_skip_until_ms, Some(12_000));
}

#[test]
fn r44_the_hint_names_the_next_part_and_crosses_into_the_next_segment() {
    let mut f = Feed::new(10);
    let hint = |f: &Feed| {
        hls_testkit::check_low_latency_text(&f.render(Render::Full))
            .unwrap()
            .preload_hint
    };
    assert_eq!(hint(&f).as_deref(), Some("chessboard0.0.ts"));
    for k in 0..9 {
        f.part(k == 0, false);
    }
    assert_eq!(hint(&f).as_deref(), Some("chessboard0.9.ts"));
    f.part(false, true);
    assert_eq!(
        hint(&f).as_deref(),
        Some("chessboard1.0.ts"),
        "the segment's last part is out: part 0 of the next one is next"
    );
    f.pl.push(TWO_S, f.pdt(), false).unwrap();
    assert_eq!(hint(&f).as_deref(), Some("chessboard1.0.ts"));
}

#[test]
fn r43_live_edge_says_when_a_blocking_request_is_satisfied() {
    let mut f = Feed::new(10);
    f.segment();
    f.part(true, false);
    f.part(false, false);
    let edge = f.pl.live_edge();
    assert_eq!(
        edge,
        LiveEdge {
            open_sequence: 1,
            open_parts: 2,
            ended: false,
            segments: 1,
            list_size: 10,
        }
    );
    assert!(edge.satisfies(0, None));
    assert!(
        edge.satisfies(0, Some(50)),
        "a whole segment holds any part"
    );
    assert!(edge.satisfies(1, Some(0)));
    assert!(edge.satisfies(1, Some(1)));
    assert!(!edge.satisfies(1, Some(2)), "part 2 is not out yet");
    assert!(!edge.satisfies(1, None), "segment 1 is not complete");
    assert!(!edge.satisfies(2, Some(0)));
    f.pl.end();
    assert!(
        f.pl.live_edge().satisfies(9, Some(9)),
        "ended: nothing blocks"
    );
}

#[test]
fn r41_parts_longer_than_the_target_or_without_low_latency_are_refused() {
    let mut f = Feed::new(10);
    let long = Part {
        duration: Duration90k(PART.as_u64() + 1),
        independent: true,
    };
    assert!(matches!(
        f.pl.push_part(long, f.pdt(), false, false),
        Err(PlaylistError::PartTooLong { .. })
    ));
    let zero = Part {
        duration: Duration90k::ZERO,
        independent: true,
    };
    assert!(f.pl.push_part(zero, f.pdt(), false, false).is_err());
    f.check();
    let mut classic = Playlist::new(f.pl.config().clone()).unwrap();
    assert_eq!(
        classic.push_part(
            Part {
                duration: PART,
                independent: true
            },
            f.pdt(),
            false,
            false
        ),
        Err(PlaylistError::NotLowLatency)
    );
    for bad in [Duration90k::ZERO, Duration90k(2 * 90_000 + 1)] {
        assert!(matches!(
            classic.enable_low_latency(LowLatency { part_target: bad }),
            Err(PlaylistError::BadPartTarget { .. })
        ));
    }
}

#[test]
fn a_lost_segment_takes_its_parts_with_it() {
    let mut f = Feed::new(10);
    f.segment();
    f.part(true, false);
    f.part(false, false);
    f.pl.abandon_parts();
    f.check();
    let r = hls_testkit::check_low_latency_text(&f.render(Render::Full)).unwrap();
    assert!(r.open_parts.is_empty());
    assert_eq!(r.preload_hint.as_deref(), Some("chessboard1.0.ts"));
}

#[test]
fn a_discontinuity_goes_before_the_first_part_of_its_segment() {
    let mut f = Feed::new(10);
    f.segment();
    f.anchor_ms += 5_000;
    f.pl.push_part(
        Part {
            duration: PART,
            independent: true,
        },
        f.pdt(),
        true,
        false,
    )
    .unwrap();
    f.check();
    let text = f.render(Render::Full);
    let tail: Vec<&str> = text.lines().rev().take(4).collect();
    assert!(tail[3] == "#EXT-X-DISCONTINUITY", "{text}");
    assert!(tail[2].starts_with("#EXT-X-PROGRAM-DATE-TIME:"), "{text}");
    assert!(tail[1].starts_with("#EXT-X-PART:"), "{text}");
}

#[test]
fn classic_render_has_no_low_latency_tag_and_m3u8_rs_reads_every_form() {
    let mut f = Feed::new(60);
    for _ in 0..40 {
        f.segment();
    }
    f.part(true, false);
    let classic = f.render(Render::Classic);
    for tag in ["PART", "SERVER-CONTROL", "PRELOAD-HINT", "SKIP"] {
        assert!(!classic.contains(tag), "{tag} in\n{classic}");
    }
    hls_testkit::check_playlist_text(&classic).unwrap();
    for form in [Render::Full, Render::Delta] {
        let text = f.render(form);
        let parsed = m3u8_rs::parse_media_playlist_res(text.as_bytes())
            .unwrap_or_else(|e| panic!("m3u8-rs: {e:?}\n{text}"));
        let skipped = if form == Render::Delta {
            f.pl.skipped_segments()
        } else {
            0
        };
        let uris: Vec<&str> = parsed
            .segments
            .iter()
            .map(|s| s.uri.as_str())
            .filter(|u| !u.is_empty())
            .collect();
        let ours: Vec<String> =
            f.pl.segments()
                .skip(skipped)
                .map(|s| f.pl.segment_uri(s.sequence))
                .collect();
        assert_eq!(uris, ours, "{form:?}");
    }
}

#[test]
fn p9_part_durations_add_up_to_the_extinf() {
    // 30 fps, 10-frame parts (333.33 ms), six per 2 s segment; and 29.97 fps, 10-frame parts
    // (333.67 ms), six per 60-frame segment (2.002 s).
    for (part, parts) in [(Duration90k(30_000), 6u64), (Duration90k(30_030), 6)] {
        let mut pl = Playlist::new(PlaylistConfig {
            name: "chessboard".parse().unwrap(),
            target_duration_secs: 3,
            list_size: 5,
            start_sequence: 0,
            start_discontinuity_sequence: 0,
        })
        .unwrap();
        pl.enable_low_latency(LowLatency { part_target: part })
            .unwrap();
        let pdt = WallClock::from_unix_millis(T0_MS);
        let segment = Duration90k(part.as_u64() * parts);
        let mut at = Duration90k::ZERO;
        for _ in 0..2 {
            for k in 0..parts {
                pl.push_part(
                    Part {
                        duration: part,
                        independent: k == 0,
                    },
                    pdt + at,
                    false,
                    k == parts - 1,
                )
                .unwrap();
            }
            pl.push(segment, pdt + at, false).unwrap();
            at = at + segment;
        }
        // Half of the open segment too.
        for k in 0..parts / 2 {
            pl.push_part(
                Part {
                    duration: part,
                    independent: k == 0,
                },
                pdt + at,
                false,
                false,
            )
            .unwrap();
        }
        let mut text = String::new();
        pl.render_with(&mut text, Render::Full);
        let r =
            hls_testkit::check_low_latency_text(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let extinf_ms = segment.as_millis_rounded();
        assert_eq!(r.segment_parts.len(), 2, "{text}");
        for (_, rendered) in &r.segment_parts {
            let sum: u64 = rendered.iter().map(|p| p.duration_ms).sum();
            assert_eq!(
                sum, extinf_ms,
                "the parts say {sum} ms, EXTINF {extinf_ms}\n{text}"
            );
            for p in rendered {
                assert!(p.duration_ms <= r.part_target_ms, "R41\n{text}");
                let exact = part.as_u64() as f64 / 90.0;
                assert!((p.duration_ms as f64 - exact).abs() < 1.0, "{text}");
            }
        }
        // The open segment's parts are rendered the same way: their ends as the segment's.
        let open: Vec<u64> = r.open_parts.iter().map(|p| p.duration_ms).collect();
        let first: Vec<u64> = r.segment_parts[0].1.iter().map(|p| p.duration_ms).collect();
        assert_eq!(open[..], first[..open.len()]);
    }
}
