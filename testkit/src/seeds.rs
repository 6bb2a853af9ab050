//! One hand-written input per scenario for each target, committed as `fuzz/corpus/<target>/seed-<name>`.

use super::*;

// ---------------------------------------------------------------------------------------------
// Seeds
// ---------------------------------------------------------------------------------------------

/// The DTS step of one `ts_mux` seed operation.
#[derive(Clone, Copy, Debug)]
enum Step {
    Frame,
    U8(u8),
    U16x16(u16),
    Varint(u64),
}

/// The bytes of one `ts_mux` seed access unit (after the framing).
#[derive(Clone, Copy, Debug)]
enum Body<'a> {
    Literal(&'a [u8]),
    /// `len` bytes of the repeated pattern (1-32 bytes).
    Pattern(u64, &'a [u8]),
}

fn lit(bytes: &[u8]) -> Body<'_> {
    Body::Literal(bytes)
}

fn pat(len: u64, pattern: &[u8]) -> Body<'_> {
    Body::Pattern(len, pattern)
}

/// Writes one `ts_mux` operation; `flags` holds keyframe, cut and framing bits.
fn mux_op(w: &mut InputWriter, step: Step, flags: u8, reorder: Option<i64>, body: Body<'_>) {
    let step_bits = match step {
        Step::Frame => MUX_STEP_FRAME,
        Step::U8(_) => MUX_STEP_U8,
        Step::U16x16(_) => MUX_STEP_U16X16,
        Step::Varint(_) => MUX_STEP_VARINT,
    };
    let dts_bit = if reorder.is_some() { MUX_DTS } else { 0 };
    let big_bit = if matches!(body, Body::Pattern(..)) {
        MUX_BIG
    } else {
        0
    };
    w.u8(step_bits | flags | dts_bit | big_bit);
    match step {
        Step::Frame => {}
        Step::U8(v) => {
            w.u8(v);
        }
        Step::U16x16(v) => {
            w.u16(v);
        }
        Step::Varint(v) => {
            w.varint(v);
        }
    }
    if let Some(r) = reorder {
        w.zigzag(r);
    }
    match body {
        Body::Literal(b) => {
            let len = u8::try_from(b.len()).expect("seed bodies are under 256 bytes");
            w.u8(len).bytes(b);
        }
        Body::Pattern(len, pattern) => {
            assert!((1..=32).contains(&pattern.len()), "a 1-32 byte pattern");
            w.varint(len).u8(pattern.len() as u8 - 1).bytes(pattern);
        }
    }
}

/// A P-slice body of `len` bytes (NAL header 0x41, then filler).
fn p_slice(len: usize, salt: usize) -> Vec<u8> {
    let mut v = vec![0x41];
    v.extend((1..len).map(|k| (k * 31 + salt * 7) as u8 | 0x80));
    v
}

const IDR_PATTERN: &[u8] = &[0x65, 0x88, 0x84, 0x21, 0xA0, 0x00, 0x00, 0x01, 0x7F];

/// `count` frames at 30 fps, a cut keyframe every `gop`.
fn mux_gop_frames(w: &mut InputWriter, count: usize, gop: usize) {
    for i in 0..count {
        if i % gop == 0 {
            let len = 4_000 + 97 * i as u64;
            mux_op(
                w,
                Step::Frame,
                MUX_KEYFRAME | MUX_CUT,
                None,
                Body::Pattern(len, IDR_PATTERN),
            );
        } else {
            let body = p_slice(1 + (i * 37) % 250, i);
            mux_op(w, Step::Frame, 0, None, Body::Literal(&body));
        }
    }
}

/// The hand-written `ts_mux` seeds, one per scenario.
pub fn ts_mux_seeds() -> Vec<Seed> {
    // Short names: these seeds are long lists of operations.
    const F: Step = Step::Frame;
    const KEY_CUT: u8 = MUX_KEYFRAME | MUX_CUT;
    let mut seeds = Vec::new();
    let mut seed = |name: &'static str, build: &dyn Fn(&mut InputWriter)| {
        let mut w = InputWriter::new();
        build(&mut w);
        seeds.push((name, w.finish()));
    };
    seed("steady_gop30", &|w| {
        w.u8(MUX_START_PIPELINE);
        mux_gop_frames(w, 90, 30);
    });
    seed("pts_wrap_2pow33", &|w| {
        w.u8(MUX_START_NEAR_WRAP);
        mux_gop_frames(w, 120, 30);
    });
    seed("start_zero_pcr_wraps", &|w| {
        w.u8(MUX_START_ZERO);
        mux_gop_frames(w, 25, 10);
    });
    seed("near_u64_max", &|w| {
        w.u8(MUX_START_VARINT).varint(u64::MAX - 20 * TICKS_PER_SEC);
        mux_gop_frames(w, 30, 15);
        // 20 s of steps overflow u64: the input ends there.
        for _ in 0..5 {
            mux_op(w, Step::Varint(5_400_000), 0, None, lit(&[0x41, 1]));
        }
    });
    seed("b_frames_reorder", &|w| {
        w.u8(MUX_START_PIPELINE);
        mux_op(w, F, KEY_CUT, Some(0), pat(3_000, IDR_PATTERN));
        for (i, r) in [9_000, 3_000, 3_000, 9_000, 3_000, 3_000, 0, 6_000]
            .iter()
            .enumerate()
        {
            mux_op(w, F, 0, Some(*r), lit(&p_slice(40 + i * 30, i)));
        }
        // DTS after PTS, and PTS more than 60 s after DTS: refused.
        mux_op(w, F, 0, Some(-3_000), lit(&[0x41, 2]));
        mux_op(w, F, 0, Some(5_400_001), lit(&[0x41, 3]));
        mux_op(w, F, KEY_CUT, Some(5_400_000), lit(&[0x65, 4]));
        mux_op(w, F, 0, None, lit(&[0x41, 5]));
    });
    seed("zero_steps_and_jumps", &|w| {
        w.u8(MUX_START_PIPELINE);
        mux_op(w, F, MUX_KEYFRAME, None, lit(&[0x65, 1, 2, 3]));
        mux_op(w, Step::U8(0), 0, None, lit(&[0x41, 1])); // refused: DTS repeats
        mux_op(w, Step::U8(1), 0, None, lit(&[0x41, 2]));
        mux_op(w, Step::Varint(5_400_000), 0, None, lit(&[0x41, 3])); // exactly 60 s
        mux_op(w, Step::Varint(5_400_001), 0, None, lit(&[0x41, 4])); // refused
        mux_op(w, Step::U16x16(u16::MAX), KEY_CUT, None, lit(&[0x65]));
        mux_op(w, Step::U8(255), 0, None, lit(&[0x41, 5]));
        mux_op(w, Step::Varint(9_001), 0, None, lit(&[0x41, 6]));
        mux_op(w, Step::Varint(u64::MAX), 0, None, lit(&[0x41, 7])); // overflow: end
    });
    seed("idr_150k", &|w| {
        w.u8(MUX_START_PIPELINE);
        mux_op(w, F, MUX_KEYFRAME, None, pat(150_000, IDR_PATTERN));
        for i in 0..10 {
            mux_op(w, F, 0, None, lit(&p_slice(200 + i, i)));
        }
        mux_op(w, F, KEY_CUT, None, pat(120_000, &[0x65]));
    });
    seed("resume_counters", &|w| {
        w.u8(MUX_START_PIPELINE | MUX_RESUME)
            .u8(0b1111)
            .u8(15) // PAT: wraps to 0
            .u8(7) // PMT
            .u8(0xF3) // video: only the low 4 bits count
            .u16(0x0200) // a foreign PID: ignored
            .u8(9);
        mux_gop_frames(w, 30, 10);
    });
    seed("refused_access_units", &|w| {
        w.u8(MUX_START_PIPELINE | MUX_PROBE_NO_SEGMENT);
        mux_op(w, F, MUX_KEYFRAME, None, lit(&[0x65, 0x88]));
        mux_op(w, F, MUX_FRAMING_RAW, None, lit(&[])); // empty
        mux_op(w, F, MUX_FRAMING_RAW, None, lit(&[0x65, 1, 2]));
        mux_op(w, F, MUX_FRAMING_START4, None, lit(&[])); // 00 00 00 01 only
        mux_op(w, F, MUX_FRAMING_START3, None, lit(&[])); // 00 00 01 only
        mux_op(w, F, MUX_FRAMING_RAW, None, lit(&[0, 0, 2, 0x41]));
        mux_op(w, F, MUX_FRAMING_RAW, None, lit(&[0, 0, 1, 0x41, 9]));
        mux_op(w, F, 0, None, lit(&[0x41, 7]));
    });
    seed("low_fps_pcr_only_packets", &|w| {
        w.u8(MUX_START_PIPELINE);
        mux_op(w, F, MUX_KEYFRAME, None, lit(&[0x65, 1]));
        for i in 0..10 {
            // 18 000 ticks: 5 fps, one PCR-only packet between access units.
            mux_op(w, Step::U16x16(1_125), 0, None, lit(&p_slice(30 + i, i)));
        }
        // A 1.5 s hole, then a segment cut after another.
        mux_op(w, Step::U16x16(8_438), KEY_CUT, None, lit(&[0x65, 2]));
        mux_op(w, Step::Varint(5_400_000), KEY_CUT, None, lit(&[0x65]));
    });
    seed("aud_and_3_byte_start_codes", &|w| {
        w.u8(MUX_START_PIPELINE);
        mux_op(
            w,
            F,
            MUX_KEYFRAME | MUX_FRAMING_AUD,
            None,
            lit(&[0, 0, 0, 1, 0x65, 7]),
        );
        mux_op(w, F, MUX_FRAMING_START3, None, lit(&[0x41, 8]));
        mux_op(
            w,
            F,
            MUX_FRAMING_RAW,
            None,
            lit(&[0, 0, 1, 0x09, 0xF0, 0, 0, 1, 0x41]),
        );
        mux_op(w, F, MUX_FRAMING_START3, None, lit(&[0x09, 0x10]));
        mux_op(w, F, MUX_FRAMING_AUD, None, lit(&[]));
    });
    seed("packet_size_edges", &|w| {
        w.u8(MUX_START_PIPELINE);
        mux_op(w, F, MUX_KEYFRAME, None, lit(&[0x65]));
        // PES payload = AUD (6) + start code (4) + body: crosses 162 (157 with a DTS) and 346.
        for len in 140..=200 {
            let reorder = (len % 2 == 0).then_some(3_000);
            mux_op(w, F, 0, reorder, lit(&p_slice(len, len)));
        }
        for len in 325..=345 {
            mux_op(w, F, 0, None, pat(len, &[0x41, 0xEE]));
        }
    });
    seeds
}

/// Writes the header of a `playlist_window` seed.
pub(crate) fn pl_header(
    w: &mut InputWriter,
    list_size: u8,
    target: u8,
    start_sequence: u64,
    dseq: u8,
) {
    w.u8((target << 4) | list_size)
        .varint(start_sequence)
        .u8(dseq)
        .u32(0);
}

fn pl_push_ms(w: &mut InputWriter, ms: u16, ticks: u8) {
    w.u8(PL_PUSH | PL_DUR_MS).u16(ms).u8(ticks);
}

pub(crate) fn pl_push_target(w: &mut InputWriter, count: usize) {
    for _ in 0..count {
        w.u8(PL_PUSH | PL_DUR_TARGET);
    }
}

/// A `playlist_window` DATERANGE operation with a fresh ID.
fn pl_range(w: &mut InputWriter, offset_10ms: i16, duration_ms: u16, label: &[u8]) {
    w.u8(PL_RANGE | PL_ID_FRESH)
        .u16(offset_10ms as u16)
        .u16(duration_ms)
        .u8(label.len() as u8)
        .bytes(label);
}

/// The hand-written `playlist_window` seeds, one per scenario.
pub fn playlist_window_seeds() -> Vec<Seed> {
    let mut seeds = Vec::new();
    let mut seed = |name: &'static str, build: &dyn Fn(&mut InputWriter)| {
        let mut w = InputWriter::new();
        build(&mut w);
        seeds.push((name, w.finish()));
    };
    seed("steady_window", &|w| {
        pl_header(w, 5, 2, 0, 0);
        pl_push_target(w, 3);
        pl_range(w, -100, 2_000, b"Marker 1");
        pl_push_target(w, 9);
        w.u8(PL_RENDER_INTO);
    });
    seed("ntsc_29_97", &|w| {
        pl_header(w, 6, 3, 0, 0);
        for _ in 0..20 {
            w.u8(PL_PUSH | PL_DUR_NTSC);
        }
    });
    seed("short_segments_r24", &|w| {
        pl_header(w, 3, 4, 7, 0);
        for _ in 0..40 {
            pl_push_ms(w, 500, 0);
        }
        pl_push_ms(w, 4_499, 44); // rounds to 4.499 s: fits the target
        pl_push_ms(w, 4_500, 0); // rounds to 5 s: refused (R13)
        pl_push_target(w, 4);
    });
    seed("extinf_rounding_edges", &|w| {
        pl_header(w, 4, 2, 0, 0);
        pl_push_ms(w, 2_499, 44); // 2.499 s
        pl_push_ms(w, 2_499, 45); // 2.500 s: refused
        pl_push_ms(w, 0, 44); // 0.000: refused
        pl_push_ms(w, 0, 45); // 0.001
        w.u8(PL_PUSH | PL_DUR_VARINT).varint(1); // refused: zero
        w.u8(PL_PUSH | PL_DUR_VARINT).varint(u64::MAX); // refused: too long
        pl_push_target(w, 6);
    });
    seed("discontinuities", &|w| {
        pl_header(w, 4, 2, 1_000, 2);
        pl_push_target(w, 6);
        w.u8(PL_PUSH_DISCONTINUITY | PL_DUR_TARGET).u16(5_000); // restart 5 s later
        pl_push_target(w, 3);
        w.u8(PL_PUSH_DISCONTINUITY | PL_DUR_TARGET)
            .u16((-500i16) as u16); // 0.5 s overlap
        w.u8(PL_PUSH_DISCONTINUITY | PL_DUR_TARGET)
            .u16((-1_500i16) as u16); // refused
        w.u8(PL_PUSH_DISCONTINUITY | PL_DUR_MS)
            .u16(1_234)
            .u8(5)
            .u16(0);
        pl_push_target(w, 8);
    });
    seed("pdt_drift", &|w| {
        pl_header(w, 5, 2, 0, 0);
        pl_push_target(w, 2);
        for jitter in [0i8, -1, 1, 5, -100, 0] {
            w.u8(PL_PUSH | PL_DUR_NTSC | PL_JITTER).u8(jitter as u8);
        }
        pl_push_target(w, 3);
    });
    seed("dateranges", &|w| {
        pl_header(w, 5, 2, 0, 0);
        pl_push_target(w, 3);
        pl_range(w, -100, 2_000, b"Goal \"A\"\r\nsecond line\t\x07");
        pl_range(w, 1_000, 0, "caf\u{e9} \u{2028} \u{1F600}".as_bytes()); // starts in 10 s
        w.u8(PL_RANGE | PL_ID_REUSE).u8(0).u16(0).u16(0).u8(0); // duplicate ID: refused
        w.u8(PL_RANGE | PL_ID_RAW)
            .u8(3)
            .bytes(b"a\"b")
            .u16(0)
            .u16(0)
            .u8(0); // refused
        w.u8(PL_RANGE | PL_ID_RAW).u8(0).u16(0).u16(0).u8(0); // empty ID: refused
        w.u8(PL_RANGE | PL_ID_RAW)
            .u8(4)
            .bytes(b"x\ny\r")
            .u16(0)
            .u16(0)
            .u8(0); // refused
        pl_range(w, -30_000, 1_000, b"long gone"); // ended 5 min ago: refused
        w.u8(PL_RANGE | PL_ID_FRESH | PL_RANGE_LONG)
            .u16(0)
            .varint(u64::MAX)
            .u8(4)
            .bytes(b"\x00\x1f\x7f\"");
        pl_push_target(w, 12);
        w.u8(PL_RANGE | PL_ID_REUSE)
            .u8(0)
            .u16(0)
            .u16(500)
            .u8(1)
            .bytes(b"x"); // ID left: reused
        pl_push_target(w, 2);
    });
    seed("resumed_after_restart", &|w| {
        pl_header(w, 4, 3, 40, 1);
        // The previous run's segments as read back: PDTs and EXTINFs as written (rounded).
        w.u8(PL_PUSH_RESUMED | PL_DUR_MS).u16(2_002).u8(0);
        w.u8(PL_PUSH_RESUMED | PL_DUR_MS | PL_JITTER)
            .u16(2_002)
            .u8(0)
            .u8(1);
        w.u8(PL_PUSH_RESUMED | PL_DUR_MS | PL_JITTER)
            .u16(2_002)
            .u8(0)
            .u8(-1i8 as u8);
        w.u8(PL_PUSH_RESUMED | PL_RESUMED_DISCONTINUITY | PL_DUR_NTSC)
            .u16(3_000);
        // This run: a discontinuity, then continuous segments until the old ones leave.
        w.u8(PL_PUSH_DISCONTINUITY | PL_DUR_NTSC).u16(700);
        for _ in 0..8 {
            w.u8(PL_PUSH | PL_DUR_NTSC);
        }
    });
    seed("end_then_push", &|w| {
        pl_header(w, 3, 1, 0, 0);
        pl_push_target(w, 4);
        w.u8(PL_END);
        pl_push_target(w, 1);
        pl_range(w, 0, 0, b"late");
        w.u8(PL_RENDER_INTO);
    });
    seed("range_before_first_segment", &|w| {
        pl_header(w, 3, 2, 0, 0);
        pl_range(w, 50, 100, b"early");
        pl_range(w, -1_000, 100, b"before the stream");
        pl_push_target(w, 6);
    });
    seed("sequence_exhausted", &|w| {
        pl_header(w, 3, 1, u64::MAX - 3, 0);
        pl_push_target(w, 6);
    });
    seed("config_list_too_short", &|w| pl_header(w, 2, 2, 0, 0));
    seed("config_zero_target", &|w| pl_header(w, 5, 0, 0, 0));
    seed("config_bad_name", &|w| {
        w.u8(PL_BAD_NAME | 0x25).u8(2);
    });
    seeds
}

/// CRC_32 of MPEG-2 sections (ISO/IEC 13818-1 Annex A: polynomial 0x04C11DB7, initial value
/// all ones, no reflection, no final xor).
pub(crate) fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc = u32::MAX;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Parameters of a [`sample_segment`]: AU count - 1, then per AU a u16 size and a u8 step.
pub(crate) fn sample_params(w: &mut InputWriter, sizes: &[(u16, u8)]) {
    w.u8(sizes.len() as u8 - 1);
    for &(size, step) in sizes {
        w.u16(size).u8(step);
    }
}

/// The hand-written `ts_demux_robust` seeds, one per scenario.
pub fn ts_demux_seeds() -> Vec<Seed> {
    let sizes = [(900, 0), (150, 0), (161, 250), (400, 0), (2_000, 0)];
    let mut seeds = Vec::new();
    let mut seed = |name: &'static str, build: &dyn Fn(&mut InputWriter)| {
        let mut w = InputWriter::new();
        build(&mut w);
        seeds.push((name, w.finish()));
    };
    seed("valid_segment", &|w| {
        w.u8(DEMUX_MUTATED);
        sample_params(w, &sizes);
    });
    // Table edits with CRCs recomputed, so read_segment judges the tables themselves.
    seed("pat_other_program_crc_fixed", &|w| {
        w.u8(DEMUX_MUTATED | DEMUX_FIX_CRC);
        sample_params(w, &sizes);
        w.varint(4 + 1 + 8).u8(0x02); // program_number 0x0201
    });
    seed("pmt_hevc_stream_crc_fixed", &|w| {
        w.u8(DEMUX_MUTATED | DEMUX_FIX_CRC);
        sample_params(w, &sizes);
        w.varint(188 + 4 + 1 + 12).u8(0x1B ^ 0x24); // stream_type 0x24 (HEVC)
    });
    seed("b_frames", &|w| {
        w.u8(DEMUX_MUTATED);
        sample_params(w, &[(0x8000 | 700, 0), (0x8000 | 40, 0), (300, 0)]);
    });
    seed("valid_segment_with_prev_cc", &|w| {
        w.u8(DEMUX_MUTATED | DEMUX_PREV_CC).u8(15).u8(15).u8(3);
        sample_params(w, &sizes);
    });
    seed("mutated_headers", &|w| {
        w.u8(DEMUX_MUTATED);
        sample_params(w, &sizes);
        // Continuity counter, PMT section, PUSI, adaptation_field_control, PCR, PES header.
        for (at, x) in [
            (3, 1),
            (188 + 7, 0x10),
            (376 + 1, 0x40),
            (564 + 3, 0x30),
            (380, 0x80),
        ] {
            w.varint(at).u8(x);
        }
    });
    seed("spliced", &|w| {
        w.u8(DEMUX_SPLICED);
        sample_params(w, &sizes);
        w.varint(3 * 188 + 17)
            .bytes(&[0x47, 0x41, 0x00, 0x17, 0, 0, 1, 0xE0, 0, 0]);
    });
    seed("stamped_chunks", &|w| {
        w.u8(DEMUX_STAMPED);
        for (k, sel) in [0x00u8, 0x40, 0x80, 0x80, 0xC0].iter().enumerate() {
            let mut chunk = vec![sel | 0x10 | k as u8; 187];
            chunk[1] = 0x10 + k as u8; // adaptation_field_control 01, counter k
            w.bytes(&chunk);
        }
    });
    seed("raw_garbage", &|w| {
        w.u8(DEMUX_RAW)
            .bytes(&[0x47; 200])
            .bytes(&[0x00, 0x47, 0xFF]);
    });
    seed("pmt_overlong_program_info", &|w| {
        // mpeg2ts 0.6.1's PMT parser panics on a CRC-valid section whose program_info_length
        // exceeds it; read_segment must refuse it instead.
        let mut params = InputWriter::new();
        sample_params(&mut params, &sizes[..1]);
        let mut seg = sample_segment(&mut Input::new(&params.finish()));
        let pmt = &mut seg[PACKET_SIZE..2 * PACKET_SIZE];
        pmt[5 + 10] = 0xF3; // reserved bits, program_info_length bits 9-8
        pmt[5 + 11] = 0xFF; // program_info_length bits 7-0
        let crc = crc32_mpeg2(&pmt[5..5 + 17]).to_be_bytes();
        pmt[5 + 17..5 + 21].copy_from_slice(&crc);
        w.u8(DEMUX_RAW).bytes(&seg);
    });
    seeds
}
