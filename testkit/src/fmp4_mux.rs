//! `fmp4_mux`: the fragmented-MP4 writer driven by fuzz input, every init segment and fragment
//! read back by an independent reader (`mp4-atom`, strict) and held against what was pushed.

use hls::fmp4::avc::{nal_type, nal_units, parse_sps, NAL_AUD, NAL_PPS, NAL_SPS};
use hls::fmp4::{Fmp4Error, Fmp4Muxer, MAX_DTS_STEP};
use hls::time::Pts;
use hls::ts::AccessUnit;
use mp4_atom::{Any, Codec, Decode};

use super::Input;

/// Operations decoded from one input at most.
const FMP4_MAX_OPS: usize = 256;
/// Bytes of access units one input may push before its operation list ends.
const FMP4_MAX_BYTES: usize = 96 * 1024;

/// Setup byte, bits 0-1: where the decode clock starts: 0, just below 2^32 (tfdt must not be a
/// 32-bit field), just below 2^33 (the TS wrap, which fMP4 must not have), or a varint.
pub const FMP4_START_ZERO: u8 = 0;
pub const FMP4_START_NEAR_2_32: u8 = 1;
pub const FMP4_START_NEAR_2_33: u8 = 2;
pub const FMP4_START_VARINT: u8 = 3;

/// Operation byte, bits 0-1: the DTS step: one frame (3000), a u8, a u16 times 64, a varint.
pub const FMP4_STEP_FRAME: u8 = 0;
pub const FMP4_STEP_U8: u8 = 1;
pub const FMP4_STEP_U16X64: u8 = 2;
pub const FMP4_STEP_VARINT: u8 = 3;
/// Operation bit: a keyframe with SPS and PPS (parameter set choice in the next byte's low two
/// bits: one of four valid SPS; the third bit changes the PPS).
pub const FMP4_KEYFRAME: u8 = 0x04;
/// Operation bit: write the pending samples as a fragment before this access unit; a zigzag
/// varint follows: the fragment's end relative to the next DTS (0: exactly it).
pub const FMP4_FLUSH: u8 = 0x08;
/// Operation bit: a DTS different from the PTS: a zigzag varint PTS - DTS follows.
pub const FMP4_DTS: u8 = 0x10;
/// Operation bit: an access unit delimiter first, and 3-byte start codes.
pub const FMP4_AUD: u8 = 0x20;
/// Operation bit: the body is raw bytes (no start code added: may be refused).
pub const FMP4_RAW: u8 = 0x40;
/// Operation bit: a second slice NAL unit in the access unit.
pub const FMP4_TWO_SLICES: u8 = 0x80;

/// The SPS the inputs choose from (baseline 1280x720, main 1920x1080 cropped, high 640x360,
/// baseline 176x144), each with a PPS.
const SPS: [&[u8]; 4] = [
    // profile 66, level 31, 1280x720
    &[0x67, 0x42, 0xc0, 0x1f, 0xed, 0x00, 0xa0, 0x0b, 0x72],
    // profile 77, level 40, 1920x1080 (1088 cropped by 8)
    &[
        0x67, 0x4d, 0x40, 0x28, 0xed, 0x00, 0xf0, 0x04, 0x4f, 0xca, 0x80,
    ],
    // profile 100, level 30, 640x360 (368 cropped by 8)
    &[
        0x67, 0x64, 0x00, 0x1e, 0xac, 0xda, 0x02, 0x80, 0xbf, 0xe5, 0x40,
    ],
    // profile 66, level 10, 176x144
    &[0x67, 0x42, 0xc0, 0x0a, 0xed, 0x05, 0x89, 0xc8],
];
const PPS: [&[u8]; 2] = [&[0x68, 0xce, 0x3c, 0x80], &[0x68, 0xee, 0x3c, 0x80]];

/// A sample the writer accepted, as it must read back.
struct Sent {
    dts: u64,
    cts: i64,
    sync: bool,
    /// AVCC bytes: the slices (no AUD, SPS, PPS), each with a 4-byte length.
    avcc: Vec<u8>,
}

/// Runs one `fmp4_mux` input. Panics (the fuzz crash) when a property breaks.
pub fn fmp4_mux_property(data: &[u8]) {
    let mut input = Input::new(data);
    let setup = input.u8().unwrap_or(0);
    let mut dts = match setup & 3 {
        FMP4_START_ZERO => 0,
        FMP4_START_NEAR_2_32 => (1 << 32) - 30_000,
        FMP4_START_NEAR_2_33 => (1 << 33) - 30_000,
        _ => input.varint().unwrap_or(0) % (u64::MAX / 2),
    };
    let mut mux = Fmp4Muxer::new();
    let mut pending: Vec<Sent> = Vec::new();
    let mut last_dts: Option<u64> = None;
    let mut params: Option<(usize, usize)> = None;
    let mut fragments = 0u32;
    let mut bytes_pushed = 0usize;
    let mut au = Vec::new();
    let mut out = Vec::new();
    for op_index in 0..FMP4_MAX_OPS {
        let Some(op) = input.u8() else { break };
        if bytes_pushed > FMP4_MAX_BYTES {
            break;
        }
        let step = match op & 3 {
            FMP4_STEP_FRAME => 3000,
            FMP4_STEP_U8 => u64::from(input.u8().unwrap_or(0)),
            FMP4_STEP_U16X64 => u64::from(input.u16().unwrap_or(0)) * 64,
            _ => input.varint().unwrap_or(0) % (MAX_DTS_STEP.as_u64() * 2),
        };
        if op_index > 0 {
            dts = dts.saturating_add(step);
        }
        let keyframe = op & FMP4_KEYFRAME != 0;
        let choice = if keyframe { input.u8().unwrap_or(0) } else { 0 };
        let flush_end = (op & FMP4_FLUSH != 0).then(|| input.zigzag().unwrap_or(0));
        let cts = if op & FMP4_DTS != 0 {
            input.zigzag().unwrap_or(0).clamp(-(1 << 40), 1 << 40)
        } else {
            0
        };
        let len = usize::from(input.u8().unwrap_or(0));
        let body = input.bytes(len);

        // The fragment before this access unit.
        if let Some(rel) = flush_end {
            let end = (i128::from(dts) + i128::from(rel)).clamp(0, i128::from(u64::MAX));
            let end = Pts(end as u64);
            out.clear();
            let before = mux.fragments();
            let valid = match pending.last() {
                None => true,
                Some(l) => end.0 > l.dts && end.0 - l.dts <= MAX_DTS_STEP.as_u64(),
            };
            match mux.flush_fragment(end, &mut out) {
                Ok(written) => {
                    assert!(valid, "flush at {end:?} accepted after {:?}", last_dts);
                    assert_eq!(written, !pending.is_empty());
                    if written {
                        fragments += 1;
                        check_fragment(&out, fragments, &pending, end.0);
                        pending.clear();
                    } else {
                        assert!(out.is_empty(), "an empty flush writes nothing");
                    }
                }
                Err(e) => {
                    assert!(!valid, "flush at {end:?} refused: {e}");
                    assert!(matches!(e, Fmp4Error::BadFragmentEnd { .. }));
                    assert!(out.is_empty() && mux.fragments() == before);
                }
            }
            mux.check_invariants().unwrap();
        }

        // Build the access unit.
        au.clear();
        let start: &[u8] = if op & FMP4_AUD != 0 {
            &[0, 0, 1]
        } else {
            &[0, 0, 0, 1]
        };
        let (sps_i, pps_i) = (usize::from(choice & 3), usize::from((choice >> 2) & 1));
        if op & FMP4_RAW != 0 {
            au.extend_from_slice(body);
        } else {
            if op & FMP4_AUD != 0 {
                au.extend_from_slice(start);
                au.extend_from_slice(&[0x09, 0xf0]);
            }
            if keyframe {
                for ps in [SPS[sps_i], PPS[pps_i]] {
                    au.extend_from_slice(start);
                    au.extend_from_slice(ps);
                }
            }
            au.extend_from_slice(start);
            au.push(if keyframe { 0x65 } else { 0x41 });
            // Slice bytes never 0 (no start code or trailing zeros inside the NAL unit).
            au.extend(body.iter().map(|b| b | 1));
            if op & FMP4_TWO_SLICES != 0 {
                au.extend_from_slice(start);
                au.push(if keyframe { 0x65 } else { 0x41 });
                au.extend(body.iter().rev().map(|b| b | 0x80));
            }
        }
        bytes_pushed += au.len();
        let pts = if cts >= 0 {
            dts.checked_add(cts as u64)
        } else {
            dts.checked_sub(cts.unsigned_abs())
        };
        let Some(pts) = pts else { continue };
        let unit = AccessUnit {
            data: &au,
            pts: Pts(pts),
            dts: (cts != 0).then_some(Pts(dts)),
            keyframe,
        };
        // The model's verdict on timing and parameter sets (the raw bytes are judged by what
        // the NAL scan finds, like the writer).
        let timing_ok = cts >= 0
            && (cts as u64) <= MAX_DTS_STEP.as_u64()
            && last_dts.is_none_or(|l| dts > l && dts - l <= MAX_DTS_STEP.as_u64());
        let generation = mux.init_generation();
        let (pending_before, fragments_before) = (mux.pending_samples(), mux.fragments());
        match mux.push(&unit) {
            Ok(pushed) => {
                assert!(
                    timing_ok,
                    "AU at DTS {dts} (cts {cts}) accepted after {last_dts:?}"
                );
                let nals: Vec<&[u8]> = nal_units(&au).collect();
                let sps = nals.iter().find(|n| nal_type(n) == NAL_SPS);
                if op & FMP4_RAW == 0 {
                    let new = keyframe && params != Some((sps_i, pps_i));
                    // After raw parameter sets the model does not know the writer's: a keyframe
                    // may then bring the same ones (no new init) or others.
                    if params.is_some() || !keyframe {
                        assert_eq!(pushed.new_init, new, "new init iff new parameter sets");
                    }
                    if pushed.new_init {
                        check_init(&mux, SPS[sps_i], PPS[pps_i]);
                    }
                    if keyframe {
                        params = Some((sps_i, pps_i));
                    }
                } else if pushed.new_init {
                    // New parameter sets come in this access unit: an SPS, or a PPS alone (the
                    // SPS of an earlier raw unit, which the model does not track, is kept).
                    let pps = nals.iter().any(|n| nal_type(n) == NAL_PPS);
                    assert!(sps.is_some() || pps || params.is_some());
                    params = None; // raw parameter sets: the model no longer knows them
                }
                assert_eq!(
                    mux.init_generation(),
                    generation + u32::from(pushed.new_init)
                );
                let mut avcc = Vec::new();
                for n in nals {
                    if !matches!(nal_type(n), NAL_AUD | NAL_SPS | NAL_PPS) {
                        avcc.extend_from_slice(&(n.len() as u32).to_be_bytes());
                        avcc.extend_from_slice(n);
                    }
                }
                assert!(!avcc.is_empty(), "a sample has picture data");
                pending.push(Sent {
                    dts,
                    cts,
                    sync: keyframe,
                    avcc,
                });
                last_dts = Some(dts);
            }
            Err(e) => {
                if op & FMP4_RAW == 0 && timing_ok && (keyframe || params.is_some()) {
                    let param_change = keyframe && params != Some((sps_i, pps_i));
                    assert!(
                        param_change && pending_before > 0,
                        "a well-formed AU refused: {e}"
                    );
                    assert!(matches!(
                        e,
                        Fmp4Error::ParametersChangeOutsideKeyframe { .. }
                    ));
                }
                assert!(e.to_string().contains("PTS"), "{e}");
                // A refusal leaves no trace.
                assert_eq!(mux.pending_samples(), pending_before);
                assert_eq!(mux.fragments(), fragments_before);
                assert_eq!(mux.init_generation(), generation);
            }
        }
        mux.check_invariants().unwrap();
    }
    // The rest, as the last fragment.
    if let Some(l) = pending.last() {
        let end = l.dts + 1;
        out.clear();
        assert!(mux.flush_fragment(Pts(end), &mut out).unwrap());
        fragments += 1;
        check_fragment(&out, fragments, &pending, end);
    }
}

/// The init segment reads back with the parameter sets pushed and the size their SPS gives.
fn check_init(mux: &Fmp4Muxer, sps: &[u8], pps: &[u8]) {
    let mut init = Vec::new();
    assert!(mux.write_init(&mut init));
    let mut rest = init.as_slice();
    let ftyp = Any::decode(&mut rest).expect("mp4-atom reads the ftyp");
    let moov = Any::decode(&mut rest).expect("mp4-atom reads the moov");
    assert!(rest.is_empty(), "init is ftyp + moov");
    let (Any::Ftyp(_), Any::Moov(moov)) = (ftyp, moov) else {
        panic!("init is ftyp + moov")
    };
    let Codec::Avc1(avc1) = &moov.trak[0].mdia.minf.stbl.stsd.codecs[0] else {
        panic!("avc1 sample entry")
    };
    assert_eq!(avc1.avcc.sequence_parameter_sets, vec![sps.to_vec()]);
    assert_eq!(avc1.avcc.picture_parameter_sets, vec![pps.to_vec()]);
    let info = parse_sps(sps).unwrap();
    assert_eq!(
        (u32::from(avc1.visual.width), u32::from(avc1.visual.height)),
        (info.width, info.height)
    );
}

/// One fragment reads back as moof + mdat holding exactly the samples sent.
fn check_fragment(bytes: &[u8], sequence: u32, sent: &[Sent], end: u64) {
    let mut rest = bytes;
    let moof = Any::decode(&mut rest).expect("mp4-atom reads the moof");
    let mdat = Any::decode(&mut rest).expect("mp4-atom reads the mdat");
    assert!(rest.is_empty(), "a fragment is moof + mdat");
    let (Any::Moof(moof), Any::Mdat(mdat)) = (moof, mdat) else {
        panic!("a fragment is moof + mdat")
    };
    assert_eq!(moof.mfhd.sequence_number, sequence, "mfhd counts fragments");
    let traf = &moof.traf[0];
    assert!(traf.tfhd.default_base_is_moof);
    assert_eq!(
        traf.tfdt.as_ref().expect("tfdt").base_media_decode_time,
        sent[0].dts,
        "tfdt is the first DTS, 64-bit"
    );
    let trun = &traf.trun[0];
    let offset = trun.data_offset.expect("data offset") as usize;
    assert_eq!(&bytes[offset..], mdat.data.as_slice(), "data offset");
    assert_eq!(trun.samples.len(), sent.len());
    let mut data = mdat.data.as_slice();
    for (i, (e, s)) in trun.samples.iter().zip(sent).enumerate() {
        let next = sent.get(i + 1).map_or(end, |n| n.dts);
        assert_eq!(u64::from(e.duration.unwrap()), next - s.dts, "duration {i}");
        assert_eq!(e.cts, Some(s.cts), "composition offset {i}");
        let flags = e.flags.unwrap();
        assert_eq!(flags & 0x1_0000 == 0, s.sync, "sync flag {i}");
        assert_eq!(
            (flags >> 24) & 3,
            if s.sync { 2 } else { 1 },
            "depends_on {i}"
        );
        let size = e.size.unwrap() as usize;
        assert_eq!(&data[..size], s.avcc.as_slice(), "sample {i} bytes");
        data = &data[size..];
    }
    assert!(data.is_empty());
}

/// One input per scenario, for the committed corpus.
pub fn fmp4_mux_seeds() -> Vec<super::Seed> {
    use super::InputWriter;
    let gop = |w: &mut InputWriter, frames: usize, flush_every: usize| {
        for i in 0..frames {
            let key = i == 0;
            let mut op = FMP4_STEP_FRAME;
            if key {
                op |= FMP4_KEYFRAME;
            }
            if i > 0 && i % flush_every == 0 {
                op |= FMP4_FLUSH;
            }
            w.u8(op);
            if key {
                w.u8(0);
            }
            if op & FMP4_FLUSH != 0 {
                w.zigzag(0);
            }
            w.u8(40).bytes(&[0x5a; 40]);
        }
    };
    let mut steady = InputWriter::new();
    steady.u8(FMP4_START_ZERO);
    gop(&mut steady, 30, 10);
    let mut wrap = InputWriter::new();
    wrap.u8(FMP4_START_NEAR_2_33);
    gop(&mut wrap, 30, 5);
    let mut b_frames = InputWriter::new();
    b_frames.u8(FMP4_START_NEAR_2_32);
    for i in 0..8u8 {
        let op = FMP4_STEP_FRAME
            | FMP4_DTS
            | if i == 0 { FMP4_KEYFRAME } else { 0 }
            | if i == 4 { FMP4_FLUSH } else { 0 };
        b_frames.u8(op);
        if i == 0 {
            b_frames.u8(2);
        }
        if i == 4 {
            b_frames.zigzag(0);
        }
        b_frames.zigzag(if i % 2 == 0 { 6000 } else { 0 });
        b_frames.u8(9).bytes(&[i; 9]);
    }
    let mut new_params = InputWriter::new();
    new_params.u8(FMP4_START_ZERO);
    for i in 0..12u8 {
        let key = i % 4 == 0;
        let mut op = FMP4_STEP_FRAME | FMP4_AUD | FMP4_TWO_SLICES;
        if key {
            op |= FMP4_KEYFRAME | if i > 0 { FMP4_FLUSH } else { 0 };
        }
        new_params.u8(op);
        if key {
            new_params.u8(i / 4 + 4 * (i / 8));
            if i > 0 {
                new_params.zigzag(0);
            }
        }
        new_params.u8(20).bytes(&[i + 1; 20]);
    }
    let mut refused = InputWriter::new();
    refused.u8(FMP4_START_VARINT).varint(123_456);
    // No parameter sets yet; then a keyframe; then a DTS going back; a raw AU; a late flush.
    refused.u8(FMP4_STEP_FRAME).u8(3).bytes(&[1, 2, 3]);
    refused
        .u8(FMP4_STEP_FRAME | FMP4_KEYFRAME)
        .u8(1)
        .u8(3)
        .bytes(&[1, 2, 3]);
    refused
        .u8(FMP4_STEP_U8 | FMP4_DTS)
        .u8(0)
        .zigzag(-5)
        .u8(3)
        .bytes(&[4, 5, 6]);
    refused
        .u8(FMP4_STEP_FRAME | FMP4_RAW)
        .u8(6)
        .bytes(&[0, 0, 1, 0x41, 7, 7]);
    refused
        .u8(FMP4_STEP_VARINT | FMP4_FLUSH)
        .varint(61 * 90_000)
        .zigzag(-1)
        .u8(2)
        .bytes(&[8, 9]);
    vec![
        ("steady_gop", steady.finish()),
        ("tfdt_past_2_33", wrap.finish()),
        ("composition_offsets", b_frames.finish()),
        ("new_parameter_sets", new_params.finish()),
        ("refusals", refused.finish()),
    ]
}
