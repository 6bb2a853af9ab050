//! Thirty minutes of stream in a few seconds (small frames, no pacing), in three runs of ten
//! minutes over the same directory (two restarts), checking every playlist version as it is
//! published: the window's size, media and discontinuity sequence rules (R22, R23, R26), files
//! on disk bounded, and each marker's DATERANGE present exactly while its range is in the window
//! (R36).

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use hls::state::Shared;

use crate::util;

const LIST: usize = 15;

/// One playlist version: (media sequence, discontinuity sequence, (uri, discontinuity) each).
type Version = (u64, u64, Vec<(String, bool)>);

#[derive(Default)]
struct Seen {
    /// (media sequence, discontinuity sequence, uri -> discontinuity flag) of the last version.
    prev: Option<Version>,
    versions: u64,
    discontinuities_left: u64,
    markers_checked: u64,
    max_files: usize,
}

fn check_version(text: &str, dir: &std::path::Path, shared: &Shared, seen: &mut Seen) {
    let pl =
        m3u8_rs::parse_media_playlist_res(text.as_bytes()).expect("m3u8-rs parses every version");
    seen.versions += 1;
    assert!(
        pl.segments.len() <= LIST,
        "window holds at most {LIST}: {}",
        pl.segments.len()
    );
    assert_eq!(pl.target_duration, 2, "R14: target duration never changes");
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
    if let Some((msn, dseq, prev)) = &seen.prev {
        // R22/R23: the removed segments are exactly the front of the previous version, and the
        // media sequence rose by their number.
        assert!(pl.media_sequence >= *msn, "R22: MSN never decreases");
        let removed = (pl.media_sequence - msn) as usize;
        assert!(removed <= prev.len());
        assert_eq!(
            &prev[removed..],
            &segs[..prev.len() - removed],
            "R23: removed in order, rest kept"
        );
        // R26: the discontinuity sequence rose by the number of removed DISCONTINUITY tags.
        let left = prev[..removed].iter().filter(|s| s.1).count() as u64;
        assert_eq!(pl.discontinuity_sequence, dseq + left, "R26");
        seen.discontinuities_left += left;
    }
    // Files on disk stay bounded: the window, segments in their grace period (R25), and at
    // most one window's worth from the previous run.
    let files = std::fs::read_dir(dir).unwrap().count();
    seen.max_files = seen.max_files.max(files);
    assert!(files <= 3 * (LIST + 1) + 1, "{files} files on disk");

    // R36: a marker's DATERANGE is listed while any of its range is inside the window, and is
    // gone once the range has left.
    if let (Some(first), Some(last)) = (pl.segments.first(), pl.segments.last()) {
        let start = first.program_date_time.expect("PDT").timestamp_millis();
        let end = last.program_date_time.expect("PDT").timestamp_millis()
            + (f64::from(last.duration) * 1000.0).round() as i64;
        for m in shared.markers.since(None) {
            let from = chrono::DateTime::parse_from_rfc3339(&m.program_date_time)
                .unwrap()
                .timestamp_millis();
            let to = from + 2000;
            let listed = text.contains(&format!("\"Marker {}\"", m.id));
            if to < start {
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
    seen.prev = Some((pl.media_sequence, pl.discontinuity_sequence, segs));
}

#[test]
fn r22_r26_thirty_minutes_with_two_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut seen = Seen::default();
    let mut ids = BTreeMap::new();
    for run in 0..3u64 {
        let seed = (run + 1).to_string();
        let list = LIST.to_string();
        let cfg = util::config(
            dir.path(),
            &[
                "--size",
                "64x64",
                "--fps",
                "10",
                "--duration",
                "600",
                "--list-size",
                &list,
                "--seed",
                &seed,
            ],
        );
        let shared = Arc::new(Shared::default());
        let observed = shared.clone();
        let path = dir.path().to_path_buf();
        let summary = hls::pipeline::run_observed(
            &cfg,
            shared,
            Arc::new(AtomicBool::new(false)),
            &mut |text| check_version(text, &path, &observed, &mut seen),
        )
        .unwrap();
        assert_eq!(summary.frames_encoded, 6000);
        assert_eq!(summary.frames_dropped, 0);
        ids.insert(run, summary.markers);
        let pl = util::read_playlist(dir.path(), "chessboard");
        assert!(pl.end_list);
    }
    // Each ten-minute run at a 20 s mean has many events; both restarts left the window.
    assert!(ids.values().all(|&n| n > 10), "markers per run: {ids:?}");
    assert_eq!(
        seen.discontinuities_left, 2,
        "both restart discontinuities slid out"
    );
    assert_eq!(
        seen.versions,
        3 * 300 + 3,
        "one version per segment plus ENDLIST per run"
    );
    assert!(seen.markers_checked > 100);
    assert!(
        seen.max_files > LIST,
        "segments outlive their playlist entries (R25)"
    );
}
