//! Thirty minutes of stream in a few seconds (small frames, no pacing), in three runs of ten
//! minutes over the same directory at 29.97 fps: a plain restart, then a restart with another
//! --hls-time (a new window after the old one). Every playlist version is checked as it is
//! published: window size, media and discontinuity sequences (R22, R23, R26), names never
//! reused, files on disk bounded, and DATERANGEs kept while in the window (R36), across restarts.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use hls::clock::WallClock;
use hls::state::Shared;

use crate::util;

const LIST: usize = 15;

/// One playlist version: (media sequence, discontinuity sequence, (uri, discontinuity) each).
type Version = (u64, u64, Vec<(String, bool)>);

#[derive(Default)]
struct Seen {
    prev: Option<Version>,
    /// DATERANGEs of the previous version: id -> (start ms, end ms).
    prev_ranges: BTreeMap<String, (i64, i64)>,
    target_duration: Option<u64>,
    max_sequence: Option<u64>,
    versions: u64,
    discontinuities_left: u64,
    markers_checked: u64,
    ranges_carried: u64,
    max_files: usize,
}

fn attr<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line.find(&format!("{name}="))? + name.len() + 1;
    let rest = &line[start..];
    Some(match rest.strip_prefix('"') {
        Some(q) => &q[..q.find('"')?],
        None => rest.split(',').next()?,
    })
}

fn ranges(text: &str) -> BTreeMap<String, (i64, i64)> {
    text.lines()
        .filter(|l| l.starts_with("#EXT-X-DATERANGE:"))
        .map(|l| {
            let start = WallClock::parse_rfc3339(attr(l, "START-DATE").unwrap())
                .unwrap()
                .unix_millis();
            let dur: f64 = attr(l, "DURATION").unwrap().parse().unwrap();
            (
                attr(l, "ID").unwrap().to_string(),
                (start, start + (dur * 1000.0).round() as i64),
            )
        })
        .collect()
}

fn check_version(
    text: &str,
    dir: &std::path::Path,
    shared: &Shared,
    first_of_run: bool,
    seen: &mut Seen,
) {
    let pl =
        m3u8_rs::parse_media_playlist_res(text.as_bytes()).expect("m3u8-rs parses every version");
    seen.versions += 1;
    assert!(
        pl.segments.len() <= LIST,
        "window holds at most {LIST}: {}",
        pl.segments.len()
    );
    // R14: the target duration changes only where a restart changed the settings.
    if !first_of_run {
        assert_eq!(Some(pl.target_duration), seen.target_duration, "R14");
    }
    seen.target_duration = Some(pl.target_duration);
    let segs: Vec<(String, bool)> = pl
        .segments
        .iter()
        .map(|s| (s.uri.clone(), s.discontinuity))
        .collect();
    for (i, (uri, _)) in segs.iter().enumerate() {
        assert_eq!(
            uri,
            &format!("chessboard{}.ts", pl.media_sequence + i as u64),
            "URI i has sequence MSN + i"
        );
        assert!(dir.join(uri).is_file(), "listed segment {uri} is on disk");
    }
    if pl.discontinuity_sequence > 0 || segs.iter().any(|s| s.1) {
        assert!(
            text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:"),
            "R16/R26: tag present"
        );
    }
    let mut new_from = 0;
    if let Some((msn, dseq, prev)) = &seen.prev {
        // R22/R23: the removed segments are exactly the front of the previous version, and the
        // media sequence rose by their number.
        assert!(pl.media_sequence >= *msn, "R22: MSN never decreases");
        let removed = ((pl.media_sequence - msn) as usize).min(prev.len());
        let kept = prev.len() - removed;
        assert_eq!(
            &prev[removed..],
            &segs[..kept],
            "R23: removed in order, rest kept"
        );
        new_from = kept;
        // R26: the discontinuity sequence rose by the number of removed DISCONTINUITY tags.
        let left = prev[..removed].iter().filter(|s| s.1).count() as u64;
        assert_eq!(pl.discontinuity_sequence, dseq + left, "R26");
        seen.discontinuities_left += left;
    }
    // A name is never reused: every new segment's number is above every number seen before
    // (segments are served as immutable).
    for i in new_from..segs.len() {
        let seq = pl.media_sequence + i as u64;
        assert!(
            seen.max_sequence.is_none_or(|m| seq > m),
            "sequence {seq} reused"
        );
        seen.max_sequence = Some(seq);
    }
    // Files on disk stay bounded: the window, segments in their grace period (R25), and the
    // previous run's leftovers until their own grace ends; plus the playlist, the multivariant
    // playlist, the stream clock and the marker log.
    let files = std::fs::read_dir(dir).unwrap().count();
    seen.max_files = seen.max_files.max(files);
    assert!(files <= 4 * (LIST + 1) + 4, "{files} files on disk");

    // R36: a DATERANGE stays while any of its range is inside the window; the markers of this
    // run are listed while in the window and gone once they have left it.
    let now = ranges(text);
    if let (Some(first), Some(last)) = (pl.segments.first(), pl.segments.last()) {
        let start = first.program_date_time.expect("PDT").timestamp_millis();
        let end = last.program_date_time.expect("PDT").timestamp_millis()
            + (f64::from(last.duration) * 1000.0).round() as i64;
        for (id, &(from, to)) in &seen.prev_ranges {
            if to >= start && from < end {
                assert!(
                    now.contains_key(id),
                    "{id} removed while in the window:\n{text}"
                );
                seen.ranges_carried += u64::from(first_of_run);
            }
        }
        for m in shared.markers.since(None) {
            let from = WallClock::parse_rfc3339(&m.program_date_time)
                .unwrap()
                .unix_millis();
            let listed = now.values().any(|&(s, _)| s == from);
            if from + 2000 < start {
                assert!(
                    !listed,
                    "marker {} left the window but is still listed",
                    m.id
                );
            } else if from < end {
                assert!(
                    listed,
                    "marker {} is inside the window but not listed:\n{text}",
                    m.id
                );
                seen.markers_checked += 1;
            }
        }
    }
    seen.prev_ranges = now;
    seen.prev = Some((pl.media_sequence, pl.discontinuity_sequence, segs));
}

#[test]
fn r22_r26_thirty_minutes_with_two_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut markers = BTreeMap::new();
    let list = LIST.to_string();
    for (run, hls_time) in [(0u64, "2"), (1, "2"), (2, "1")] {
        let seed = (run + 1).to_string();
        let args = [
            "--size",
            "64x64",
            "--fps",
            "29.97",
            "--hls-time",
            hls_time,
            "--duration",
            "600",
            "--list-size",
            &list,
            "--seed",
            &seed,
        ];
        let cfg = util::config(dir.path(), &args);
        let shared = Arc::new(Shared::default());
        let observed = shared.clone();
        let path = dir.path().to_path_buf();
        let checked = seen.clone();
        let mut first = true;
        let summary = util::run_observed(&cfg, shared, move |text| {
            check_version(text, &path, &observed, first, &mut checked.lock().unwrap());
            first = false;
        })
        .unwrap();
        assert_eq!(summary.frames_encoded, 17_983);
        assert_eq!(summary.frames_dropped, 0);
        markers.insert(run, summary.markers);
        assert!(util::read_playlist(dir.path(), "chessboard").end_list);
    }
    assert!(
        markers.values().all(|&n| n > 10),
        "markers per run: {markers:?}"
    );
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.discontinuities_left, 2,
        "both restart discontinuities slid out"
    );
    assert_eq!(
        seen.versions,
        300 + 1 + 300 + 1 + 600 + 1,
        "one version per segment plus ENDLIST per run"
    );
    assert!(seen.markers_checked > 100);
    assert!(
        seen.ranges_carried > 0,
        "the plain restart kept the old run's DATERANGEs"
    );
    assert!(
        seen.max_files > LIST,
        "segments outlive their playlist entries (R25)"
    );
}
