//! Tests of the TS muxer: packet structure, timestamps, continuity, transactional push.
use super::*;
use hls_testkit::check::{read_segment, SegmentReport};
use mpeg2ts::pes::{PesPacketReader, ReadPesPacket};
use mpeg2ts::ts::{ReadTsPacket, TsPacketReader};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Frame duration at 30 fps in 90 kHz ticks.
pub(super) const FRAME: u64 = 3_000;
/// Stream clock offset used by the tests: above PCR_LEAD, like the real pipeline's.
pub(super) const T0: u64 = Duration90k::from_secs(10).0;

pub(super) use hls_testkit::fake_au;

/// The PES payload the muxer must produce for `data`.
pub(super) fn with_aud(data: &[u8]) -> Vec<u8> {
    [&AUD[..], data].concat()
}

pub(super) struct Frame {
    pub data: Vec<u8>,
    pub pts: u64,
    pub dts: Option<u64>,
    pub keyframe: bool,
}

impl Frame {
    pub fn au(&self) -> AccessUnit<'_> {
        AccessUnit {
            data: &self.data,
            pts: Pts(self.pts),
            dts: self.dts.map(Pts),
            keyframe: self.keyframe,
        }
    }
}

/// Muxes `frames` into segments, starting a new one at every keyframe; checks invariants
/// after every call. Returns each segment's bytes.
pub(super) fn mux_segments(mux: &mut TsMuxer, frames: &[Frame]) -> Vec<Vec<u8>> {
    let mut segments: Vec<Vec<u8>> = Vec::new();
    for f in frames {
        if f.keyframe || segments.is_empty() {
            segments.push(Vec::new());
            mux.start_segment(segments.last_mut().expect("just pushed"));
            mux.check_invariants()
                .expect("invariants after start_segment");
        }
        let out = segments.last_mut().expect("a segment is open");
        mux.push(&f.au(), out).expect("valid access unit");
        mux.check_invariants().expect("invariants after push");
    }
    segments
}

/// `count` frames at 30 fps from `start`, a keyframe every `gop`, sizes from `size`.
pub(super) fn frames(
    rng: &mut StdRng,
    start: u64,
    count: usize,
    gop: usize,
    mut size: impl FnMut(&mut StdRng, usize) -> usize,
) -> Vec<Frame> {
    (0..count)
        .map(|i| {
            let keyframe = i % gop == 0;
            let len = size(rng, i);
            Frame {
                data: fake_au(rng, len, keyframe),
                pts: start + i as u64 * FRAME,
                dts: None,
                keyframe,
            }
        })
        .collect()
}

/// Reads all segments in order, each checked against the previous one's counters.
pub(super) fn read_all(segments: &[Vec<u8>]) -> Vec<SegmentReport> {
    let mut reports: Vec<SegmentReport> = Vec::new();
    for (i, seg) in segments.iter().enumerate() {
        let prev = reports.last().map(|r| &r.last_cc);
        let report = read_segment(seg, prev)
            .unwrap_or_else(|e| panic!("segment {i} does not read back: {e}"));
        reports.push(report);
    }
    reports
}

/// PES packets as mpeg2ts's own PesPacketReader reassembles them from `bytes`.
fn mpeg2ts_pes(bytes: &[u8]) -> Vec<mpeg2ts::pes::PesPacket<Vec<u8>>> {
    let mut reader = PesPacketReader::new(TsPacketReader::new(bytes));
    let mut out = Vec::new();
    while let Some(p) = reader.read_pes_packet().expect("mpeg2ts reads our PES") {
        out.push(p);
    }
    out
}

/// Every TS packet, parsed by mpeg2ts.
fn mpeg2ts_packets(bytes: &[u8]) -> Vec<TsPacket> {
    let mut reader = TsPacketReader::new(bytes);
    let mut out = Vec::new();
    while let Some(p) = reader.read_ts_packet().expect("mpeg2ts reads our packets") {
        out.push(p);
    }
    out
}

#[test]
fn round_trip_payloads_and_timestamps_through_mpeg2ts_pes_reader() {
    let mut rng = StdRng::seed_from_u64(1);
    // The sizes the brief names, a few around the first-packet capacity (162), then
    // multi-packet AUs up to a 150 kB IDR.
    let named = [184, 183, 182, 170, 161, 162, 163, 346, 347, 5, 6];
    let mut frames = frames(&mut rng, T0, 60, 30, |rng, i| match named.get(i) {
        Some(&n) => n,
        None if i == 30 => 150_000,
        None => rng.random_range(5..25_000),
    });
    // Some AUs with a DTS before the PTS (B-frame style), still increasing in decode order.
    for (i, f) in frames.iter_mut().enumerate() {
        if i % 7 == 3 {
            f.dts = Some(f.pts);
            f.pts += 2 * FRAME;
        } else if i % 7 == 4 {
            f.dts = Some(f.pts); // equal DTS: must be written as PTS only
        }
    }
    let mut mux = TsMuxer::new();
    let segments = mux_segments(&mut mux, &frames);
    assert_eq!(segments.len(), 2);

    let all: Vec<u8> = segments.concat();
    assert_eq!(all.len() % PACKET_SIZE, 0);
    assert!(all.chunks(PACKET_SIZE).all(|p| p[0] == 0x47));
    let pes = mpeg2ts_pes(&all);
    assert_eq!(pes.len(), frames.len());
    for (i, (p, f)) in pes.iter().zip(&frames).enumerate() {
        assert_eq!(
            p.data,
            with_aud(&f.data),
            "AU {i} payload ({} bytes)",
            f.data.len()
        );
        assert_eq!(p.header.stream_id.as_u8(), VIDEO_STREAM_ID);
        assert!(p.header.data_alignment_indicator, "AU {i}");
        let pts = p.header.pts.expect("PTS on every PES").as_u64();
        assert_eq!(pts, f.pts % TIMESTAMP_MODULUS, "AU {i}");
        let dts = p.header.dts.map(|t| t.as_u64());
        let want = f.dts.filter(|&d| d != f.pts).map(|d| d % TIMESTAMP_MODULUS);
        assert_eq!(dts, want, "AU {i}: DTS only when it differs from PTS");
    }
    // Our own reader agrees with mpeg2ts's PES reassembly.
    let reports = read_all(&segments);
    let ours: Vec<_> = reports.iter().flat_map(|r| &r.aus).collect();
    assert_eq!(ours.len(), pes.len());
    for (a, p) in ours.iter().zip(&pes) {
        assert_eq!(a.payload, p.data);
        assert_eq!(Some(a.pts), p.header.pts.map(|t| t.as_u64()));
    }
}

#[test]
fn every_size_from_5_to_600_bytes_packetizes_exactly() {
    // Covers each boundary: first-packet capacity 162 (157 with DTS), then +184 per packet,
    // including the 183-byte remainder that needs a 1-byte adaptation field.
    let mut rng = StdRng::seed_from_u64(2);
    for with_dts in [false, true] {
        let mut mux = TsMuxer::new();
        let mut seg = Vec::new();
        mux.start_segment(&mut seg);
        let mut expected_packets = 2;
        let mut frames = Vec::new();
        for (i, len) in (5..=600).enumerate() {
            let dts = T0 + i as u64 * FRAME;
            let f = Frame {
                data: fake_au(&mut rng, len, i == 0),
                pts: if with_dts { dts + FRAME } else { dts },
                dts: with_dts.then_some(dts),
                keyframe: i == 0,
            };
            mux.push(&f.au(), &mut seg).expect("valid AU");
            expected_packets += packet_count(len + AUD.len(), with_dts);
            frames.push(f);
        }
        mux.check_invariants().expect("invariants");
        assert_eq!(seg.len(), expected_packets * PACKET_SIZE);
        let pes = mpeg2ts_pes(&seg);
        assert_eq!(pes.len(), frames.len());
        for (p, f) in pes.iter().zip(&frames) {
            assert_eq!(
                p.data,
                with_aud(&f.data),
                "{} bytes, DTS {with_dts}",
                f.data.len()
            );
        }
        let report = read_segment(&seg, None).expect("reads back");
        assert_eq!(report.packets, expected_packets);
    }
    // The formula at its edges (lengths are whole PES payloads, AUD included).
    assert_eq!(packet_count(162, false), 1);
    assert_eq!(packet_count(163, false), 2);
    assert_eq!(packet_count(162 + 184, false), 2);
    assert_eq!(packet_count(162 + 185, false), 3);
    assert_eq!(packet_count(157, true), 1);
    assert_eq!(packet_count(158, true), 2);
}

#[test]
fn r3_pat_pmt_first_two_packets() {
    let mut rng = StdRng::seed_from_u64(3);
    let frames = frames(&mut rng, T0, 90, 30, |rng, _| rng.random_range(5..3_000));
    let mut mux = TsMuxer::new();
    let segments = mux_segments(&mut mux, &frames);
    assert_eq!(segments.len(), 3);
    for (i, seg) in segments.iter().enumerate() {
        let packets = mpeg2ts_packets(seg);
        match &packets[0].payload {
            Some(TsPayload::Pat(pat)) => {
                assert_eq!(pat.table.len(), 1, "R3: a single program");
                assert_eq!(pat.table[0].program_num, PROGRAM_NUMBER);
                assert_eq!(pat.table[0].program_map_pid.as_u16(), PMT_PID);
            }
            other => panic!("segment {i}: packet 0 is {other:?}, not a PAT"),
        }
        match &packets[1].payload {
            Some(TsPayload::Pmt(pmt)) => {
                assert_eq!(pmt.pcr_pid.map(|p| p.as_u16()), Some(VIDEO_PID));
                assert_eq!(pmt.es_info.len(), 1);
                assert_eq!(pmt.es_info[0].stream_type as u8, STREAM_TYPE_H264);
                assert_eq!(pmt.es_info[0].elementary_pid.as_u16(), VIDEO_PID);
            }
            other => panic!("segment {i}: packet 1 is {other:?}, not a PMT"),
        }
        // The third packet opens the segment's first access unit, a keyframe with PCR.
        let third = &packets[2];
        assert!(matches!(third.payload, Some(TsPayload::PesStart(_))));
        let af = third
            .adaptation_field
            .as_ref()
            .expect("first AU packet has a PCR field");
        assert!(af.random_access_indicator && af.pcr.is_some());
        let report = read_segment(seg, None).expect("reads back");
        assert_eq!(report.first_pids, vec![PAT_PID, PMT_PID, VIDEO_PID]);
        assert_eq!((report.pat_count, report.pmt_count), (1, 1));
    }
}

#[test]
fn r1_continuity_counters_continue_across_segments() {
    let mut rng = StdRng::seed_from_u64(4);
    // 20 segments, so PAT/PMT counters wrap past 15; video sizes vary so video CC does too.
    let frames = frames(&mut rng, T0, 200, 10, |rng, _| rng.random_range(5..4_000));
    let mut mux = TsMuxer::new();
    let segments = mux_segments(&mut mux, &frames);
    assert_eq!(segments.len(), 20);
    let reports = read_all(&segments); // fails on any CC break, file boundaries included
    for (k, (seg, report)) in segments.iter().zip(&reports).enumerate() {
        // PAT and PMT counters advance once per repetition, never reset.
        assert_eq!(usize::from(seg[3] & 0x0F), k % 16, "PAT CC in segment {k}");
        assert_eq!(
            usize::from(seg[PACKET_SIZE + 3] & 0x0F),
            k % 16,
            "PMT CC in segment {k}"
        );
        assert_eq!(report.last_cc.len(), 3);
    }
    let last = reports.last().expect("20 reports");
    for pid in [PAT_PID, PMT_PID, VIDEO_PID] {
        assert_eq!(mux.continuity_counter(pid), last.last_cc.get(&pid).copied());
    }
    // The check can fail: skipping a file breaks the chain.
    let err = read_segment(&segments[2], Some(&reports[0].last_cc))
        .expect_err("segment 2 does not continue segment 0");
    assert!(err.contains("continuity"), "{err}");
}

#[test]
fn r1_timestamps_continue_across_segments() {
    let mut rng = StdRng::seed_from_u64(5);
    let frames = frames(&mut rng, T0, 120, 30, |rng, _| rng.random_range(5..2_000));
    let mut mux = TsMuxer::new();
    let reports = read_all(&mux_segments(&mut mux, &frames));
    let pts: Vec<u64> = reports
        .iter()
        .flat_map(|r| r.aus.iter().map(|a| a.pts))
        .collect();
    assert_eq!(pts.len(), 120);
    assert!(
        pts.windows(2).all(|w| w[1] - w[0] == FRAME),
        "PTS steps exactly one frame"
    );
    assert_eq!(pts[0], T0);
}

#[test]
fn r2_keyframes_open_segments_with_random_access_indicator_and_pcr() {
    let mut rng = StdRng::seed_from_u64(6);
    let frames = frames(&mut rng, T0, 90, 30, |rng, i| {
        if i % 30 == 0 {
            60_000
        } else {
            rng.random_range(5..3_000)
        }
    });
    let mut mux = TsMuxer::new();
    for report in read_all(&mux_segments(&mut mux, &frames)) {
        let first = &report.aus[0];
        assert!(first.keyframe && first.pcr.is_some());
        // AUD, then SPS (7), PPS (8), IDR (5), as the segment's first NAL units.
        let types: Vec<u8> = nal_types(&first.payload).into_iter().take(4).collect();
        assert_eq!(types, vec![9, 7, 8, 5]);
    }
}

fn nal_types(data: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    let mut i = 0;
    while i + 3 < data.len() {
        if data[i..i + 3] == [0, 0, 1] {
            types.push(data[i + 3] & 0x1F);
            i += 3;
        } else {
            i += 1;
        }
    }
    types
}

#[test]
fn random_access_indicator_on_keyframes_only() {
    let mut rng = StdRng::seed_from_u64(7);
    let frames = frames(&mut rng, T0, 95, 30, |rng, _| rng.random_range(5..6_000));
    let mut mux = TsMuxer::new();
    let all = mux_segments(&mut mux, &frames).concat();
    let mut au_index = 0;
    let mut flagged = Vec::new();
    for p in mpeg2ts_packets(&all) {
        let starts_au = matches!(p.payload, Some(TsPayload::PesStart(_)));
        let rai = p
            .adaptation_field
            .as_ref()
            .is_some_and(|af| af.random_access_indicator);
        let espi = p
            .adaptation_field
            .as_ref()
            .is_some_and(|af| af.es_priority_indicator);
        assert_eq!(rai, espi, "priority is set together with random access");
        if starts_au {
            assert_eq!(rai, frames[au_index].keyframe, "AU {au_index}");
            au_index += 1;
        } else {
            assert!(!rai, "random_access_indicator only on an AU's first packet");
        }
        if rai {
            flagged.push(au_index - 1);
        }
    }
    assert_eq!(au_index, frames.len());
    assert_eq!(flagged, vec![0, 30, 60, 90]);
}

/// PCR values (27 MHz, as written) and whether each packet had payload.
fn pcrs(bytes: &[u8]) -> Vec<(u64, bool)> {
    mpeg2ts_packets(bytes)
        .iter()
        .filter_map(|p| {
            let pcr = p.adaptation_field.as_ref()?.pcr?;
            Some((pcr.as_u64(), p.payload.is_some()))
        })
        .collect()
}

#[test]
fn pcr_on_every_access_unit_and_never_more_than_100_ms_apart() {
    let mut rng = StdRng::seed_from_u64(8);
    // 5 fps (200 ms between AUs), then a 1.5 s hole from dropped frames, across 2 segments.
    let mut frames = frames(&mut rng, T0, 20, 10, |rng, _| rng.random_range(5..1_000));
    for (i, f) in frames.iter_mut().enumerate() {
        f.pts = T0 + i as u64 * 18_000 + if i >= 15 { 135_000 } else { 0 };
    }
    let mut mux = TsMuxer::new();
    let segments = mux_segments(&mut mux, &frames);
    let all = segments.concat();
    let pcrs = pcrs(&all);
    // PCR of each AU's first packet is exactly (DTS - PCR_LEAD) * 300.
    let au_pcrs: Vec<u64> = pcrs.iter().filter(|p| p.1).map(|p| p.0).collect();
    let want: Vec<u64> = frames.iter().map(|f| (f.pts - PCR_LEAD.0) * 300).collect();
    assert_eq!(au_pcrs, want);
    for w in pcrs.windows(2) {
        let gap = w[1].0 - w[0].0;
        assert!(
            gap > 0 && gap <= MAX_PCR_INTERVAL.0 * 300,
            "PCR gap {gap} (27 MHz)"
        );
    }
    // 19 gaps of 200 ms need one PCR-only packet each; the 1.7 s one needs 16 more.
    let pcr_only = pcrs.iter().filter(|p| !p.1).count();
    assert_eq!(pcr_only, 18 + 16);
    let reports = read_all(&segments); // includes: AF-only packets keep the CC
    assert_eq!(
        reports.iter().map(|r| r.pcr_only_packets).sum::<usize>(),
        pcr_only
    );
}

#[test]
fn timestamps_and_pcr_wrap_at_2_pow_33() {
    let mut rng = StdRng::seed_from_u64(9);
    let start = TIMESTAMP_MODULUS - Duration90k::from_secs(2).0; // 2 s before the wrap, run 4 s
    let frames = frames(&mut rng, start, 120, 30, |rng, _| {
        rng.random_range(5..3_000)
    });
    let mut mux = TsMuxer::new();
    let segments = mux_segments(&mut mux, &frames);
    let reports = read_all(&segments); // CCs continuous across all four files
    let aus: Vec<_> = reports.iter().flat_map(|r| &r.aus).collect();
    assert_eq!(aus.len(), 120);
    for (a, f) in aus.iter().zip(&frames) {
        assert_eq!(a.pts, f.pts % TIMESTAMP_MODULUS);
        assert_eq!(
            a.pcr.map(|p| p / 300),
            Some((f.pts - PCR_LEAD.0) % TIMESTAMP_MODULUS)
        );
    }
    assert!(
        aus[59].pts > aus[60].pts,
        "the written PTS wraps between AU 59 and 60"
    );
    for w in aus.windows(2) {
        let step = (w[1].pts + TIMESTAMP_MODULUS - w[0].pts) % TIMESTAMP_MODULUS;
        assert_eq!(step, FRAME, "PTS continues modulo 2^33");
    }
    // The payloads still match through mpeg2ts's PES reader.
    let pes = mpeg2ts_pes(&segments.concat());
    assert!(pes
        .iter()
        .zip(&frames)
        .all(|(p, f)| p.data == with_aud(&f.data)));
}

#[test]
fn existing_aud_is_not_doubled() {
    let mut rng = StdRng::seed_from_u64(10);
    let mut data = AUD.to_vec();
    data.extend(fake_au(&mut rng, 400, true));
    let mut mux = TsMuxer::new();
    let mut seg = Vec::new();
    mux.start_segment(&mut seg);
    let au = AccessUnit {
        data: &data,
        pts: Pts(T0),
        dts: None,
        keyframe: true,
    };
    mux.push(&au, &mut seg).expect("valid AU");
    // A 3-byte start code works as well.
    let short = [0, 0, 1, 0x41, 0xAA, 0xBB];
    let au = AccessUnit {
        data: &short,
        pts: Pts(T0 + FRAME),
        dts: None,
        keyframe: false,
    };
    mux.push(&au, &mut seg).expect("3-byte start code");
    let pes = mpeg2ts_pes(&seg);
    assert_eq!(pes[0].data, data);
    assert_eq!(pes[1].data, with_aud(&short));
}

/// An access unit and a test of the error it must cause.
type Case<'a> = (AccessUnit<'a>, fn(&MuxError) -> bool);

#[test]
fn bad_input_is_refused_with_context_and_leaves_no_trace() {
    let mut rng = StdRng::seed_from_u64(11);
    let good = fake_au(&mut rng, 500, true);
    let au = |data: &'static [u8], pts: u64, dts: Option<u64>| AccessUnit {
        data,
        pts: Pts(pts),
        dts: dts.map(Pts),
        keyframe: false,
    };
    let mut mux = TsMuxer::new();
    let mut out = Vec::new();
    let ok = AccessUnit {
        data: &good,
        pts: Pts(T0),
        dts: None,
        keyframe: true,
    };
    assert!(matches!(
        mux.push(&ok, &mut out),
        Err(MuxError::NoSegment { .. })
    ));
    mux.start_segment(&mut out);
    mux.push(&ok, &mut out).expect("valid AU");
    let before = out.clone();
    let video_cc = mux.continuity_counter(VIDEO_PID);

    let next = T0 + FRAME;
    let cases: Vec<Case<'_>> = vec![
        (au(&[], next, None), |e| {
            matches!(e, MuxError::EmptyAccessUnit { .. })
        }),
        (au(&[0x65, 1, 2, 3], next, None), |e| {
            matches!(e, MuxError::MissingStartCode { .. })
        }),
        (au(&[0, 0, 0, 1], next, None), |e| {
            matches!(e, MuxError::MissingStartCode { .. })
        }),
        (au(&[0, 0, 2, 0x41], next, None), |e| {
            matches!(e, MuxError::MissingStartCode { .. })
        }),
        (au(&[0, 0, 1, 0x41], next, Some(next + 1)), |e| {
            matches!(e, MuxError::DtsAfterPts { .. })
        }),
        (
            au(&[0, 0, 1, 0x41], next + MAX_DTS_STEP.0 + 1, Some(next)),
            |e| matches!(e, MuxError::PtsTooFarAfterDts { .. }),
        ),
        (au(&[0, 0, 1, 0x41], T0, None), |e| {
            matches!(e, MuxError::DtsNotIncreasing { .. })
        }),
        (au(&[0, 0, 1, 0x41], T0 - 1, None), |e| {
            matches!(e, MuxError::DtsNotIncreasing { .. })
        }),
        (au(&[0, 0, 1, 0x41], T0 + MAX_DTS_STEP.0 + 1, None), |e| {
            matches!(e, MuxError::DtsJump { .. })
        }),
    ];
    for (i, (bad, is_expected)) in cases.iter().enumerate() {
        let err = mux
            .push(bad, &mut out)
            .expect_err("bad input must be refused");
        assert!(is_expected(&err), "case {i}: {err:?}");
        let text = err.to_string();
        assert!(
            text.contains("PID 0x0100") && text.contains("PTS"),
            "case {i}: {text}"
        );
        assert_eq!(err.pts(), bad.pts);
        assert_eq!(out, before, "case {i}: nothing written");
        assert_eq!(mux.continuity_counter(VIDEO_PID), video_cc, "case {i}");
        mux.check_invariants().expect("state unchanged");
    }
    // The muxer carries on after refusals.
    mux.push(&au(&[0, 0, 1, 0x41, 7], next, None), &mut out)
        .expect("valid AU");
    read_segment(&out, None).expect("stream intact");
    // Exactly MAX_DTS_STEP is accepted.
    let far = next + MAX_DTS_STEP.0;
    mux.push(&au(&[0, 0, 1, 0x41, 7], far, None), &mut out)
        .expect("60 s step");
    read_segment(&out, None).expect("stream intact after the longest gap");
}

#[test]
fn resume_continues_counters_from_a_read_back_segment() {
    let mut rng = StdRng::seed_from_u64(12);
    let frames = frames(&mut rng, T0, 45, 15, |rng, _| rng.random_range(5..3_000));
    let mut first = TsMuxer::new();
    let segments = mux_segments(&mut first, &frames[..30]);
    let reports = read_all(&segments);
    let last_cc = &reports.last().expect("two segments").last_cc;
    let mut resumed = TsMuxer::resume(last_cc);
    resumed
        .check_invariants()
        .expect("invariants of a resumed muxer");
    for pid in [PAT_PID, PMT_PID, VIDEO_PID] {
        assert_eq!(resumed.continuity_counter(pid), last_cc.get(&pid).copied());
    }
    let more = mux_segments(&mut resumed, &frames[30..]);
    read_segment(&more[0], Some(last_cc)).expect("counters continue across the restart");
}

#[test]
fn check_invariants_detects_corrupted_state() {
    let mut mux = TsMuxer::new();
    let mut out = Vec::new();
    mux.start_segment(&mut out);
    mux.check_invariants().expect("fresh");
    mux.video.next_cc.increment(); // a counter that skipped a packet
    assert!(mux.check_invariants().is_err());
    let mut mux = TsMuxer::new();
    mux.start_segment(&mut out);
    mux.segments += 1; // a segment without PAT/PMT
    assert!(mux.check_invariants().is_err());
    let mut mux = TsMuxer::new();
    mux.start_segment(&mut out);
    mux.push(
        &AccessUnit {
            data: &[0, 0, 1, 0x65, 1],
            pts: Pts(T0),
            dts: None,
            keyframe: true,
        },
        &mut out,
    )
    .expect("valid AU");
    mux.last_pcr_at = Some(T0 + 1);
    assert!(mux.check_invariants().is_err());
}

/// `cargo test --release --lib -- --ignored ts::tests::timing` (results on stderr).
#[test]
#[ignore = "timing, run by hand with --release"]
fn timing() {
    let mut rng = StdRng::seed_from_u64(13);
    // 1080p-like GOPs: one 150 kB IDR then 59 P-frames of 15-25 kB, 10 GOPs.
    let frames = frames(&mut rng, T0, 600, 60, |rng, i| {
        if i % 60 == 0 {
            150_000
        } else {
            rng.random_range(15_000..25_000)
        }
    });
    let input: usize = frames.iter().map(|f| f.data.len()).sum();
    let mut mux = TsMuxer::new();
    let mut out = Vec::with_capacity(input * 11 / 10);
    let runs = 20;
    let mut pts = T0;
    let start = std::time::Instant::now();
    for _ in 0..runs {
        out.clear();
        for f in &frames {
            if f.keyframe {
                mux.start_segment(&mut out);
            }
            let au = AccessUnit {
                data: &f.data,
                pts: Pts(pts),
                dts: None,
                keyframe: f.keyframe,
            };
            mux.push(std::hint::black_box(&au), &mut out)
                .expect("valid AU");
            pts += FRAME;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let mb = (input * runs) as f64 / 1e6;
    // The crate forbids print macros; a by-hand timing test writes to stderr directly.
    let line = format!(
        "ts mux: {:.0} MB/s of AU input, {:.0} AUs/s ({} AUs, {mb:.1} MB); \
         TS overhead {:.2} %\n",
        mb / secs,
        (frames.len() * runs) as f64 / secs,
        frames.len() * runs,
        100.0 * (out.len() as f64 / input as f64 - 1.0)
    );
    std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes()).expect("stderr is writable");
}
