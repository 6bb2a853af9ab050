//! Markers are frame-exact: the decoded frame at a marker's time shows the mint block, the frame
//! before it does not; and each marker is in the playlist as an EXT-X-DATERANGE.

use hls_testkit::check::read_segment;

use crate::decode_back::decode_top_left;
use crate::util;

/// BT.601 limited range of mint RGB(0,255,255) is about Y 170, Cb 166, Cr 16; black and white
/// blocks have Cb = Cr = 128. Cr alone separates them by over 100 levels.
fn is_mint((y, u, v): (u8, u8, u8)) -> bool {
    (i32::from(y) - 170).abs() < 25
        && (i32::from(u) - 166).abs() < 25
        && (i32::from(v) - 16).abs() < 25
}

#[test]
fn markers_are_frame_exact_and_in_the_playlist() {
    let run = util::run(&[
        "--size",
        "320x180",
        "--frames",
        "900",
        "--seed",
        "7",
        "--event-mean",
        "3",
        "--list-size",
        "20",
    ]);
    let markers = run.shared.markers.since(None);
    assert!(
        markers.len() >= 3,
        "30 s at a 3 s mean gives several events, got {}",
        markers.len()
    );

    let pl = run.playlist();
    let mut aus = Vec::new();
    let mut prev = None;
    for seg in &pl.segments {
        let r = read_segment(
            &std::fs::read(run.path().join(&seg.uri)).unwrap(),
            prev.as_ref(),
        )
        .unwrap();
        prev = Some(r.last_cc.clone());
        aus.extend(r.aus.into_iter().map(|a| (a.pts, a.keyframe, a.payload)));
    }
    // Sample the middle of the top-left 20x20 block.
    let pixels = decode_top_left(&aus, 10, 10);
    assert_eq!(pixels.len(), 900);
    for m in &markers {
        let slot = (m.time * 30.0).round() as usize;
        assert!(
            (m.time * 30.0 - slot as f64).abs() < 1e-9,
            "marker {} on a frame slot",
            m.id
        );
        assert!(
            is_mint(pixels[slot]),
            "marker {} at frame {slot}: {:?} is not mint",
            m.id,
            pixels[slot]
        );
        assert!(
            !is_mint(pixels[slot - 1]),
            "marker {}: the frame before ({:?}) is already mint",
            m.id,
            pixels[slot - 1]
        );
        // Events last 2 s: still mint one frame before the end, not after (when the run got
        // that far).
        assert!(
            slot + 60 >= pixels.len() || is_mint(pixels[slot + 59]) && !is_mint(pixels[slot + 60]),
            "marker {} lasts 60 frames",
            m.id
        );
    }
    // Every frame that is mint belongs to one of the markers' events.
    let covered = |i: usize| {
        markers.iter().any(|m| {
            let s = (m.time * 30.0).round() as usize;
            (s..s + 60).contains(&i)
        })
    };
    for (i, p) in pixels.iter().enumerate() {
        assert_eq!(is_mint(*p), covered(i), "frame {i}");
    }

    // R34/R35: each marker is a DATERANGE whose START-DATE is its program date time, and that
    // date maps back to the marker's stream time through the first segment's PDT.
    let text = std::fs::read_to_string(run.path().join("chessboard.m3u8")).unwrap();
    let first_pdt = pl.segments[0]
        .program_date_time
        .expect("PDT on every segment");
    for m in &markers {
        let line = text
            .lines()
            .find(|l| {
                l.starts_with("#EXT-X-DATERANGE:")
                    && l.contains(&format!("-{}\",", m.id))
                    && l.contains("ID=\"marker-")
            })
            .unwrap_or_else(|| panic!("no DATERANGE for marker {}\n{text}", m.id));
        assert!(
            line.contains(&format!("START-DATE=\"{}\"", m.program_date_time)),
            "{line}"
        );
        let start = chrono::DateTime::parse_from_rfc3339(&m.program_date_time).unwrap();
        let offset_ms = (start - first_pdt).num_milliseconds();
        assert_eq!(
            offset_ms,
            (m.time * 1000.0).floor() as i64,
            "marker {}",
            m.id
        );
    }
}
