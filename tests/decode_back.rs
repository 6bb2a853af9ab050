//! Every segment of a run, read back with mpeg2ts (through `hls_testkit::check`) and decoded with
//! openh264's decoder.

use std::collections::BTreeMap;

use openh264::decoder::Decoder;
use openh264::formats::YUVSource;

use crate::util::{self, nal_types, FRAME_30};

const WRAP: u64 = 1 << 33;

/// An access unit read back: (33-bit PTS, random access, PES payload).
pub type ReadAu = (u64, bool, Vec<u8>);

/// Reads every segment in playlist order; checks structure and continuity on the way.
/// Returns (per segment: number of AUs, all AUs in order as (pts, keyframe, payload)).
fn read_all(run: &util::Run) -> (Vec<usize>, Vec<ReadAu>) {
    let pl = run.playlist();
    let mut prev_cc: Option<BTreeMap<u16, u8>> = None;
    let mut per_segment = Vec::new();
    let mut aus = Vec::new();
    for seg in &pl.segments {
        let bytes = std::fs::read(run.path().join(&seg.uri)).unwrap();
        assert_eq!(bytes.len() % 188, 0, "{}: whole packets", seg.uri);
        assert!(
            bytes.chunks(188).all(|p| p[0] == 0x47),
            "{}: sync bytes",
            seg.uri
        );
        let report = hls_testkit::check::read_segment(&bytes, prev_cc.as_ref())
            .unwrap_or_else(|e| panic!("{}: {e}", seg.uri));
        // R3: PAT then PMT are the first two packets.
        assert_eq!(
            &report.first_pids[..2],
            &[hls::ts::PAT_PID, hls::ts::PMT_PID],
            "{}",
            seg.uri
        );
        // R2: the first access unit is an IDR with SPS and PPS in front (after our AUD).
        let first = &report.aus[0];
        assert!(
            first.keyframe,
            "{}: first AU flagged random access",
            seg.uri
        );
        assert_eq!(
            &nal_types(&first.payload)[..4],
            &[9, 7, 8, 5],
            "{}: AUD SPS PPS IDR",
            seg.uri
        );
        assert!(first.pcr.is_some(), "{}: PCR on the IDR", seg.uri);
        for au in &report.aus[1..] {
            assert!(!au.keyframe, "{}: a single IDR per segment", seg.uri);
            assert_eq!(nal_types(&au.payload)[0], 9, "every AU starts with an AUD");
        }
        per_segment.push(report.aus.len());
        aus.extend(
            report
                .aus
                .iter()
                .map(|a| (a.pts, a.keyframe, a.payload.clone())),
        );
        prev_cc = Some(report.last_cc.clone());
    }
    (per_segment, aus)
}

/// Decodes all access units in order; returns the top-left block's (Y, U, V) of each picture.
pub fn decode_top_left(aus: &[ReadAu], x: usize, y: usize) -> Vec<(u8, u8, u8)> {
    let mut dec = Decoder::new().unwrap();
    let mut out = Vec::new();
    for (_, _, payload) in aus {
        if let Some(pic) = dec.decode(payload).unwrap() {
            let (ys, us, vs) = pic.strides();
            out.push((
                pic.y()[y * ys + x],
                pic.u()[(y / 2) * us + x / 2],
                pic.v()[(y / 2) * vs + x / 2],
            ));
        }
    }
    for pic in dec.flush_remaining().unwrap() {
        let (ys, us, vs) = pic.strides();
        out.push((
            pic.y()[y * ys + x],
            pic.u()[(y / 2) * us + x / 2],
            pic.v()[(y / 2) * vs + x / 2],
        ));
    }
    out
}

/// R1, R2, R3, R4, R12: segments decode back, open on IDRs, count exactly hls_time x fps frames,
/// and continuity counters and PTS continue across files.
#[test]
fn r1_r2_r3_every_segment_decodes_back() {
    let run = util::run(&[
        "--size",
        "320x180",
        "--frames",
        "300",
        "--seed",
        "1",
        "--list-size",
        "10",
    ]);
    assert_eq!(run.summary.frames_generated, 300);
    assert_eq!(run.summary.frames_dropped, 0);
    let pl = run.playlist();
    assert_eq!(pl.segments.len(), 5);
    assert!(
        pl.segments.iter().all(|s| (s.duration - 2.0).abs() < 1e-6),
        "EXTINF 2.000 each"
    );
    let (per_segment, aus) = read_all(&run);
    assert_eq!(
        per_segment,
        vec![60; 5],
        "hls_time x fps frames per segment"
    );
    // R1: PTS continues across segment boundaries, one frame apart, from the offset.
    assert_eq!(aus[0].0, hls::config::DEFAULT_PTS_OFFSET.as_u64());
    for w in aus.windows(2) {
        assert_eq!((w[0].0 + FRAME_30) % WRAP, w[1].0);
    }
    let decoded = decode_top_left(&aus, 10, 10);
    assert_eq!(
        decoded.len() as u64,
        run.summary.frames_generated,
        "every frame decodes"
    );
}

/// PTS wraps at 2^33 inside the TS; the stream keeps decoding and timestamps stay continuous.
#[test]
fn pts_wrap_decodes_continuously() {
    let offset = (WRAP - 2 * 90_000).to_string();
    let run = util::run(&[
        "--size",
        "320x180",
        "--frames",
        "120",
        "--pts-offset",
        &offset,
        "--list-size",
        "5",
    ]);
    let (per_segment, aus) = read_all(&run);
    assert_eq!(per_segment, vec![60, 60]);
    let mut wrapped = false;
    for w in aus.windows(2) {
        assert_eq!((w[0].0 + FRAME_30) % WRAP, w[1].0);
        wrapped |= w[1].0 < w[0].0;
    }
    assert!(wrapped, "the run crosses 2^33");
    assert_eq!(decode_top_left(&aus, 10, 10).len(), 120);
}

/// R12, R13: at 29.97 fps EXTINF is exact to the frame (2.002 s) and TARGETDURATION covers it.
#[test]
fn r12_extinf_exact_at_29_97() {
    let run = util::run(&[
        "--size",
        "160x90",
        "--fps",
        "30000/1001",
        "--frames",
        "240",
        "--list-size",
        "10",
    ]);
    let pl = run.playlist();
    assert_eq!(pl.target_duration, 3);
    let text = std::fs::read_to_string(run.path().join("chessboard.m3u8")).unwrap();
    let extinf: Vec<&str> = text.lines().filter(|l| l.starts_with("#EXTINF:")).collect();
    assert_eq!(
        extinf,
        vec![
            "#EXTINF:2.002,",
            "#EXTINF:2.002,",
            "#EXTINF:2.002,",
            "#EXTINF:2.002,"
        ]
    );
    let (per_segment, _) = read_all(&run);
    assert_eq!(per_segment, vec![60; 4]);
}
