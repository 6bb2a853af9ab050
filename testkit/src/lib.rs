//! Property checks shared by the fuzz targets in `fuzz/` and by `cargo test`.
//!
//! Each `*_property` function takes the raw bytes of one fuzz input, decodes them into operations
//! with [`Input`] (a small hand-written byte reader), runs the operations against one pure core
//! of the crate and panics when a property breaks. A panic is the crash libFuzzer reports; its
//! message names the property and, where one applies, the rule of `docs/spec.md` (`R1`...).
//! `tests/corpus_replay.rs` runs the same functions over the committed corpus
//! (`fuzz/corpus/<target>/`), so CI on the stable toolchain checks every property on every run,
//! and the crate needs no `arbitrary` dependency.
//!
//! Decoding never rejects an input. Running out of bytes ends the operation list, numbers are
//! reduced into range, and the structure a core demands (a keyframe first, a segment started
//! before the first access unit) is produced by construction. Input a core must refuse (a zero
//! PTS step, bytes without a start code, a segment longer than the target duration, a duplicate
//! DATERANGE ID) is generated on purpose. The property is then that exactly the refusals the
//! rules call for happen, and that a refusal leaves no trace.
//!
//! The targets, the core each drives and the properties it asserts:
//! - `ts_mux`, [`TsMuxer`] (ISO/IEC 13818-1): no panic; whole 188-byte packets with sync byte;
//!   each segment opens with PAT, PMT (R3) and reads alone with `mpeg2ts`; the PES payloads that
//!   `mpeg2ts`'s `PesPacketReader` reassembles equal the input plus our AUD; PTS and DTS modulo
//!   2^33; continuity counters per PID mod 16, across files (R1) and after `resume`; PCR = DTS -
//!   0.7 s, never more than 100 ms apart; random_access_indicator exactly on keyframes;
//!   `check::read_segment` accepts every segment; `check_invariants` after every step; an access
//!   unit is refused exactly when it breaks a rule, and a refusal writes nothing.
//! - `playlist_window`, [`Playlist`] (RFC 8216 §4, §6.2): media sequence never decreases and rises
//!   by exactly the removed count (R22); removal in order (R23), never below three target
//!   durations (R24), files kept for the grace period (R25); discontinuity sequence (R16, R26);
//!   target duration constant (R14) and >= every rounded EXTINF (R13); a DATERANGE is shown
//!   exactly while its dates overlap the window (R36); the text obeys R9-R11, R15-R18, R32,
//!   R34, R35 and R37; consecutive versions differ only as R21 allows ([`check_update`]);
//!   `m3u8-rs` parses every render and agrees; a refused operation changes nothing; the same
//!   holds for segments read back after a restart (`push_resumed`).
//! - `ts_demux_robust`, [`read_segment`]: no panic on any bytes (raw, sync-stamped, mutated or
//!   spliced segments, tables mutated with their CRC recomputed); an accepted segment is sane
//!   (R3 layout, counters, AUDs, PCR spacing)
//!   and `mpeg2ts`'s own PES reader reassembles the same payloads; errors name the packet; the
//!   same bytes give the same answer.
//!
//! The `*_seeds` functions build one hand-written input per scenario; they are committed as
//! `fuzz/corpus/<target>/seed-<name>` (`tests/corpus_replay.rs` keeps the files in step).
//! [`InputWriter`] is the encoder matching [`Input`].
//!
//! This crate is the test oracle of `hls-streamer`: a workspace member that the product library
//! does not depend on, used by the root crate's `tests/` and `benches/` and by `fuzz/`.
//! [`check`] reads segment files back.

pub mod check;

use std::collections::{BTreeMap, HashMap, HashSet};

use mpeg2ts::pes::{PesPacketReader, ReadPesPacket};
use mpeg2ts::ts::{ReadTsPacket, TsPacketReader, TsPayload};

use crate::check::{read_segment, SegmentReport, FIRST_PIDS_LEN};
use hls::clock::WallClock;
use hls::name::StreamName;
use hls::playlist::{
    DateRange, Playlist, PlaylistConfig, PlaylistError, PushOutcome, Segment,
    DATERANGE_LABEL_ATTRIBUTE, MIN_LIST_SIZE, PROTOCOL_VERSION,
};
use hls::time::{Duration90k, Pts, TICKS_PER_SEC};
use hls::ts::{
    AccessUnit, MuxError, TsMuxer, AUD, MAX_DTS_STEP, MAX_PCR_INTERVAL, PACKET_SIZE, PAT_PID,
    PCR_LEAD, PMT_PID, PROGRAM_NUMBER, STREAM_TYPE_H264, TIMESTAMP_MODULUS, VIDEO_PID,
};

// ---------------------------------------------------------------------------------------------
// The byte reader and its encoder
// ---------------------------------------------------------------------------------------------

/// Reads fuzz bytes as a sequence of small values. Every read returns `None` once the bytes run
/// out, which ends the caller's operation list.
#[derive(Clone, Debug)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }

    /// Big-endian.
    pub fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes([self.u8()?, self.u8()?]))
    }

    /// Big-endian.
    pub fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes([
            self.u8()?,
            self.u8()?,
            self.u8()?,
            self.u8()?,
        ]))
    }

    /// LEB128: seven bits per byte, least significant group first, high bit set on all bytes but
    /// the last. At most ten bytes are read; bits beyond 64 are dropped.
    pub fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for group in 0..10 {
            let b = self.u8()?;
            value |= u64::from(b & 0x7F) << (7 * group);
            if b & 0x80 == 0 {
                break;
            }
        }
        Some(value)
    }

    /// A zigzag-coded varint: 0, -1, 1, -2, 2... so small magnitudes of either sign are short.
    pub fn zigzag(&mut self) -> Option<i64> {
        let v = self.varint()?;
        Some((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    /// Up to `n` bytes (fewer when the input ends first).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

/// Writes values the way [`Input`] reads them; builds the seed inputs.
#[derive(Clone, Debug, Default)]
pub struct InputWriter {
    bytes: Vec<u8>,
}

impl InputWriter {
    pub fn new() -> Self {
        InputWriter::default()
    }

    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.bytes.push(v);
        self
    }

    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn varint(&mut self, mut v: u64) -> &mut Self {
        loop {
            let group = (v & 0x7F) as u8;
            v >>= 7;
            if v == 0 {
                self.bytes.push(group);
                return self;
            }
            self.bytes.push(group | 0x80);
        }
    }

    pub fn zigzag(&mut self, v: i64) -> &mut Self {
        self.varint(((v << 1) ^ (v >> 63)) as u64)
    }

    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(b);
        self
    }

    /// The bytes written so far.
    pub fn finish(&self) -> Vec<u8> {
        self.bytes.clone()
    }
}

/// A named seed input.
pub type Seed = (&'static str, Vec<u8>);

// ---------------------------------------------------------------------------------------------
// ts_mux
// ---------------------------------------------------------------------------------------------

/// Operations decoded from one `ts_mux` input at most (bounds the run time of one input).
const MUX_MAX_OPS: usize = 512;
/// Largest access unit one operation builds (an IDR at a high bit rate is ~150 kB).
const MUX_MAX_AU_LEN: usize = 256 * 1024;
/// TS bytes (PCR-only packets included) one input may have written before its operation list
/// ends. Every byte is read back three times, so this bounds the run time of one input: a DTS
/// step of up to 60 s adds up to 600 PCR-only packets, so 512 steps without this budget could
/// write 57 MB from 3 kB of input. The hand-written seeds stay under it
/// (`tests::seeds_fit_the_budgets`).
const MUX_MAX_OUTPUT: usize = 512 * 1024;
/// One frame at 30 fps.
const FRAME_TICKS: u64 = 3_000;
/// Where the pipeline starts its stream clock (above `PCR_LEAD`, so the first PCR is positive).
const STREAM_START: u64 = 10 * TICKS_PER_SEC;
const MASK_33: u64 = TIMESTAMP_MODULUS - 1;
/// The PCR counts 27 MHz ticks modulo 2^33 * 300.
const PCR_MODULUS: u64 = TIMESTAMP_MODULUS * 300;
const OUR_PIDS: [u16; 3] = [PAT_PID, PMT_PID, VIDEO_PID];

/// Setup byte of a `ts_mux` input, bits 0-1: where the stream clock starts.
pub const MUX_START_PIPELINE: u8 = 0;
/// Two seconds before the 33-bit wrap.
pub const MUX_START_NEAR_WRAP: u8 = 1;
/// At 0: the first PCR (0.7 s earlier) wraps to just below 2^33.
pub const MUX_START_ZERO: u8 = 2;
/// A varint follows with the start (any `u64`).
pub const MUX_START_VARINT: u8 = 3;
/// Setup bit: continue counters with [`TsMuxer::resume`]; a presence mask byte follows (bit 0
/// PAT, 1 PMT, 2 video, 3 a foreign PID as u16), then one counter byte per present PID.
pub const MUX_RESUME: u8 = 0x04;
/// Setup bit: push once before the first `start_segment` (must be refused).
pub const MUX_PROBE_NO_SEGMENT: u8 = 0x08;

/// Operation byte, bits 0-1: the DTS step: 0 one frame at 30 fps, 1 a u8, 2 a u16 times 16,
/// 3 a varint (0 and steps over 60 s are refused by the muxer).
pub const MUX_STEP_FRAME: u8 = 0;
pub const MUX_STEP_U8: u8 = 1;
pub const MUX_STEP_U16X16: u8 = 2;
pub const MUX_STEP_VARINT: u8 = 3;
/// Operation bit: a keyframe (always set for the first access unit).
pub const MUX_KEYFRAME: u8 = 0x04;
/// Operation bit: start a new segment before this keyframe (the segmenter's cut).
pub const MUX_CUT: u8 = 0x08;
/// Operation bit: pass a DTS; a zigzag varint follows: PTS - DTS (negative must be refused).
pub const MUX_DTS: u8 = 0x10;
/// Operation bits 5-6: framing of the access unit: 4-byte start code, 3-byte start code, an AUD
/// of our own (not doubled), or the bytes as they are (may be refused).
pub const MUX_FRAMING_START4: u8 = 0x00;
pub const MUX_FRAMING_START3: u8 = 0x20;
pub const MUX_FRAMING_AUD: u8 = 0x40;
pub const MUX_FRAMING_RAW: u8 = 0x60;
/// Operation bit: a long access unit: varint length, then a u8 pattern length and the pattern,
/// repeated. Without it: a u8 length and the bytes.
pub const MUX_BIG: u8 = 0x80;

/// An access unit the muxer accepted, as it must read back.
#[derive(Clone, Debug)]
struct SentAu {
    /// The PES payload: our AUD (unless the AU starts with one) and the AU.
    payload: Vec<u8>,
    pts: u64,
    dts: u64,
    keyframe: bool,
}

/// One segment file as written, and the access units it must contain.
#[derive(Clone, Debug, Default)]
struct SentSegment {
    bytes: Vec<u8>,
    aus: Vec<SentAu>,
}

/// Why an access unit must be refused (one per [`MuxError`] variant the input can cause).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    NoSegment,
    Empty,
    MissingStartCode,
    DtsAfterPts,
    PtsTooFarAfterDts,
    DtsNotIncreasing,
    DtsJump,
}

impl Refusal {
    fn of(e: &MuxError) -> Option<Refusal> {
        Some(match e {
            MuxError::NoSegment { .. } => Refusal::NoSegment,
            MuxError::EmptyAccessUnit { .. } => Refusal::Empty,
            MuxError::MissingStartCode { .. } => Refusal::MissingStartCode,
            MuxError::DtsAfterPts { .. } => Refusal::DtsAfterPts,
            MuxError::PtsTooFarAfterDts { .. } => Refusal::PtsTooFarAfterDts,
            MuxError::DtsNotIncreasing { .. } => Refusal::DtsNotIncreasing,
            MuxError::DtsJump { .. } => Refusal::DtsJump,
            MuxError::Packetize { .. } => return None,
        })
    }
}

/// The NAL header byte after a leading Annex B start code (00 00 01 or 00 00 00 01).
fn annex_b_nal_header(data: &[u8]) -> Option<u8> {
    match data {
        [0, 0, 1, h, ..] => Some(*h),
        [0, 0, 0, 1, h, ..] => Some(*h),
        _ => None,
    }
}

/// Every refusal the rules call for, given the previous accepted DTS (empty: must be accepted).
fn expected_refusals(data: &[u8], pts: u64, dts: u64, last_dts: Option<u64>) -> Vec<Refusal> {
    let mut out = Vec::new();
    if data.is_empty() {
        out.push(Refusal::Empty);
    }
    if annex_b_nal_header(data).is_none() {
        out.push(Refusal::MissingStartCode);
    }
    if dts > pts {
        out.push(Refusal::DtsAfterPts);
    } else if pts - dts > MAX_DTS_STEP.as_u64() {
        out.push(Refusal::PtsTooFarAfterDts);
    }
    if let Some(last) = last_dts {
        if dts <= last {
            out.push(Refusal::DtsNotIncreasing);
        } else if dts - last > MAX_DTS_STEP.as_u64() {
            out.push(Refusal::DtsJump);
        }
    }
    out
}

/// The PES payload the muxer must write for `data`: an AUD in front unless the first NAL unit
/// already is one (nal_unit_type 9).
fn pes_payload(data: &[u8]) -> Vec<u8> {
    if annex_b_nal_header(data).is_some_and(|h| h & 0x1F == 9) {
        data.to_vec()
    } else {
        [&AUD[..], data].concat()
    }
}

fn counters(mux: &TsMuxer) -> [Option<u8>; 3] {
    OUR_PIDS.map(|pid| mux.continuity_counter(pid))
}

fn assert_invariants(mux: &TsMuxer, when: &str) {
    if let Err(e) = mux.check_invariants() {
        panic!("ts_mux: check_invariants fails {when}: {e}");
    }
}

/// Fuzz property of the TS muxer; see the module docs for the input layout and the properties.
pub fn ts_mux_property(data: &[u8]) {
    ts_mux_run(data);
}

/// Runs the `ts_mux` property; true if the input ran out of output budget before its operations
/// did.
fn ts_mux_run(data: &[u8]) -> bool {
    let (run, resume) = ts_mux_output(data);
    if let Err(e) = verify_ts_output(&run.segments, resume.as_ref(), &run.mux) {
        panic!("ts_mux: {e}");
    }
    run.budget_hit
}

/// Runs the operations of a `ts_mux` input; the segments are checked by [`verify_ts_output`].
fn ts_mux_output(data: &[u8]) -> (MuxRun, Option<BTreeMap<u16, u8>>) {
    let mut input = Input::new(data);
    let setup = input.u8().unwrap_or(0);
    let start = match setup & 0b11 {
        MUX_START_PIPELINE => STREAM_START,
        MUX_START_NEAR_WRAP => TIMESTAMP_MODULUS - 2 * TICKS_PER_SEC,
        MUX_START_ZERO => 0,
        _ => input.varint().unwrap_or(0),
    };
    let resume = (setup & MUX_RESUME != 0).then(|| resume_counters(&mut input));
    let mux = match &resume {
        Some(last_cc) => TsMuxer::resume(last_cc),
        None => TsMuxer::new(),
    };
    let mut run = MuxRun {
        mux,
        segments: Vec::new(),
        last_dts: None,
        written: 0,
        budget_hit: false,
    };
    assert_invariants(&run.mux, "after new/resume");
    if setup & MUX_PROBE_NO_SEGMENT != 0 {
        run.probe_no_segment(start);
    }
    for _ in 0..MUX_MAX_OPS {
        if run.step(&mut input, start).is_none() {
            break;
        }
    }
    (run, resume)
}

fn resume_counters(input: &mut Input<'_>) -> BTreeMap<u16, u8> {
    let present = input.u8().unwrap_or(0b111);
    let mut last_cc = BTreeMap::new();
    for (bit, pid) in OUR_PIDS.into_iter().enumerate() {
        if present & (1 << bit) != 0 {
            last_cc.insert(pid, input.u8().unwrap_or(15));
        }
    }
    if present & 0b1000 != 0 {
        let pid = input.u16().unwrap_or(0x1FFF) & 0x1FFF;
        let cc = input.u8().unwrap_or(0);
        if !OUR_PIDS.contains(&pid) {
            last_cc.insert(pid, cc); // not ours: resume must ignore it
        }
    }
    last_cc
}

struct MuxRun {
    mux: TsMuxer,
    segments: Vec<SentSegment>,
    /// DTS of the last accepted access unit (unwrapped).
    last_dts: Option<u64>,
    /// TS bytes written so far, over all segments.
    written: usize,
    /// The operation list ended on [`MUX_MAX_OUTPUT`].
    budget_hit: bool,
}

impl MuxRun {
    fn probe_no_segment(&mut self, start: u64) {
        let mut out = Vec::new();
        let au = AccessUnit {
            data: &[0, 0, 0, 1, 0x65, 0x88],
            pts: Pts(start),
            dts: None,
            keyframe: true,
        };
        let result = self.mux.push(&au, &mut out);
        assert!(
            matches!(result, Err(MuxError::NoSegment { .. })),
            "ts_mux: push before start_segment gave {result:?}, not NoSegment (R3: PAT and PMT first)"
        );
        assert!(out.is_empty(), "ts_mux: a refused push wrote bytes");
        assert_invariants(&self.mux, "after a refused push");
    }

    /// Decodes and runs one operation; `None` when the input (or the byte budget) ran out.
    fn step(&mut self, input: &mut Input<'_>, start: u64) -> Option<()> {
        if self.written >= MUX_MAX_OUTPUT {
            self.budget_hit = !input.is_empty();
            return None;
        }
        let op = input.u8()?;
        let step = match op & 0b11 {
            MUX_STEP_FRAME => FRAME_TICKS,
            MUX_STEP_U8 => u64::from(input.u8()?),
            MUX_STEP_U16X16 => u64::from(input.u16()?) * 16,
            _ => input.varint()?,
        };
        let reorder = if op & MUX_DTS != 0 {
            input.zigzag()?
        } else {
            0
        };
        let body: Vec<u8> = if op & MUX_BIG != 0 {
            let len = usize::try_from(input.varint()?)
                .unwrap_or(usize::MAX)
                .min(MUX_MAX_AU_LEN);
            let pattern_len = usize::from(input.u8()? % 32) + 1;
            let pattern = input.bytes(pattern_len);
            if pattern.is_empty() {
                return None;
            }
            // The same bytes as pattern.iter().cycle().take(len), by doubling copies: a loop
            // per byte costs a traced comparison per byte in the fuzz build.
            let mut body = pattern.repeat(len.div_ceil(pattern.len()));
            body.truncate(len);
            body
        } else {
            let len = usize::from(input.u8()?);
            input.bytes(len).to_vec()
        };
        let data: Vec<u8> = match op & 0x60 {
            MUX_FRAMING_START4 => [&[0, 0, 0, 1][..], &body].concat(),
            MUX_FRAMING_START3 => [&[0, 0, 1][..], &body].concat(),
            MUX_FRAMING_AUD => [&AUD[..], &body].concat(),
            _ => body,
        };
        let dts = match self.last_dts {
            None => start,
            Some(last) => last.checked_add(step)?,
        };
        let pts = dts.checked_add_signed(reorder)?;
        let no_au_yet = self.segments.iter().all(|s| s.aus.is_empty());
        let keyframe = no_au_yet || op & MUX_KEYFRAME != 0;
        if self.segments.is_empty() || (keyframe && op & MUX_CUT != 0) {
            let mut seg = SentSegment::default();
            self.mux.start_segment(&mut seg.bytes);
            self.written += seg.bytes.len();
            self.segments.push(seg);
            assert_invariants(&self.mux, "after start_segment");
        }

        let au = AccessUnit {
            data: &data,
            pts: Pts(pts),
            dts: (op & MUX_DTS != 0).then_some(Pts(dts)),
            keyframe,
        };
        let expected = expected_refusals(&data, pts, dts, self.last_dts);
        let before = counters(&self.mux);
        let seg = self
            .segments
            .last_mut()
            .expect("a segment was started above");
        let len_before = seg.bytes.len();
        let result = self.mux.push(&au, &mut seg.bytes);
        self.written += seg.bytes.len() - len_before;
        match result {
            Ok(()) => {
                assert!(
                    expected.is_empty(),
                    "ts_mux: accepted an access unit the rules refuse ({expected:?}): PTS {pts}, \
                     DTS {dts}, previous DTS {:?}, {} bytes",
                    self.last_dts,
                    data.len()
                );
                seg.aus.push(SentAu {
                    payload: pes_payload(&data),
                    pts,
                    dts,
                    keyframe,
                });
                self.last_dts = Some(dts);
            }
            Err(e) => {
                let refusal = Refusal::of(&e)
                    .unwrap_or_else(|| panic!("ts_mux: the muxer failed on its own: {e}"));
                assert!(
                    expected.contains(&refusal),
                    "ts_mux: refused with {e} but the rules call for {expected:?}"
                );
                assert_eq!(e.pts(), Pts(pts), "ts_mux: the error names another AU");
                let text = e.to_string();
                assert!(
                    text.contains("PID 0x0100") && text.contains("PTS"),
                    "ts_mux: the error does not say where: {text}"
                );
                assert_eq!(
                    seg.bytes.len(),
                    len_before,
                    "ts_mux: a refused push wrote bytes ({e})"
                );
                assert_eq!(
                    counters(&self.mux),
                    before,
                    "ts_mux: a refused push moved a continuity counter"
                );
            }
        }
        assert_invariants(&self.mux, "after push");
        assert_eq!(self.mux.segments(), self.segments.len() as u64);
        let open = self.segments.last().expect("a segment is open");
        assert_eq!(self.mux.aus_in_segment(), open.aus.len() as u64);
        Some(())
    }
}

/// Checks the muxer's segments against what was sent: framing, PAT/PMT, continuity, PCR,
/// random access, the PES payloads through `mpeg2ts`, and `check::read_segment`.
fn verify_ts_output(
    segments: &[SentSegment],
    resume: Option<&BTreeMap<u16, u8>>,
    mux: &TsMuxer,
) -> Result<(), String> {
    // Raw scan: packets, sync bytes, R3 order, continuity counters across files (R1).
    let mut last_cc: BTreeMap<u16, u8> = resume
        .into_iter()
        .flatten()
        .filter(|(pid, _)| OUR_PIDS.contains(pid))
        .map(|(&pid, &cc)| (pid, cc & 0x0F))
        .collect();
    let mut starts = Vec::with_capacity(segments.len());
    for (s, seg) in segments.iter().enumerate() {
        if seg.bytes.len() % PACKET_SIZE != 0 || seg.bytes.len() < 2 * PACKET_SIZE {
            return Err(format!(
                "segment {s}: {} bytes is not PAT + PMT + whole {PACKET_SIZE}-byte packets",
                seg.bytes.len()
            ));
        }
        starts.push(last_cc.clone());
        for (i, p) in seg.bytes.chunks_exact(PACKET_SIZE).enumerate() {
            let pid = u16::from_be_bytes([p[1] & 0x1F, p[2]]);
            // Formatted only on failure: this runs for every packet.
            let at = || format!("segment {s} packet {i} PID {pid:#06x}");
            if p[0] != 0x47 {
                return Err(format!("{}: sync byte {:#04x}", at(), p[0]));
            }
            if (i == 0 && pid != PAT_PID) || (i == 1 && pid != PMT_PID) {
                return Err(format!(
                    "{}: R3: the first two packets must be PAT, PMT",
                    at()
                ));
            }
            if !OUR_PIDS.contains(&pid) {
                return Err(format!("{}: not one of our PIDs", at()));
            }
            let cc = p[3] & 0x0F;
            let has_payload = p[3] & 0x10 != 0;
            let want = match last_cc.get(&pid) {
                Some(&prev) if has_payload => (prev + 1) & 0x0F,
                Some(&prev) => prev,
                None => 0,
            };
            if cc != want {
                return Err(format!(
                    "{}: R1: continuity counter {cc}, expected {want} (payload: {has_payload})",
                    at()
                ));
            }
            last_cc.insert(pid, cc);
        }
    }
    for pid in OUR_PIDS {
        let reported = mux.continuity_counter(pid);
        if reported != last_cc.get(&pid).copied() {
            return Err(format!(
                "continuity_counter({pid:#06x}) = {reported:?}, last written {:?}",
                last_cc.get(&pid)
            ));
        }
    }

    // Each segment alone (a player may join at any file), read back by `read_segment` (which
    // reads every packet with mpeg2ts's packet reader, checks PAT, PMT, stream_id, AUDs, DTS
    // order and PCR spacing within the file) and compared with what was sent: payloads,
    // PTS/DTS, random_access_indicator = keyframe, PCR = (DTS - PCR_LEAD) x 300 on every AU,
    // counters. A segment without access units (PAT and PMT only) goes through mpeg2ts's packet
    // reader directly, as `read_segment` refuses it. The PCRs of all files are chained below.
    let mut last_pcr: Option<(usize, u64)> = None;
    for (s, seg) in segments.iter().enumerate() {
        let end_cc = starts.get(s + 1).unwrap_or(&last_cc);
        let pcrs = match read_segment(&seg.bytes, Some(&starts[s])) {
            Err(e) if seg.aus.is_empty() => {
                if !e.starts_with("no access units") {
                    return Err(format!(
                        "segment {s} (no AUs sent): read_segment refuses it for another reason: {e}"
                    ));
                }
                psi_only_segment(s, &seg.bytes)?
            }
            Ok(_) if seg.aus.is_empty() => {
                return Err(format!(
                    "segment {s}: read_segment accepts a segment without AUs"
                ))
            }
            Err(e) => {
                return Err(format!(
                    "segment {s}: read_segment refuses the muxer's output: {e}"
                ))
            }
            Ok(report) => {
                compare_report(s, &report, seg, end_cc)?;
                report.pcrs
            }
        };
        for pcr in pcrs {
            if let Some((p, prev)) = last_pcr {
                let gap = (pcr + PCR_MODULUS - prev) % PCR_MODULUS;
                if gap == 0 || gap > MAX_PCR_INTERVAL.as_u64() * 300 {
                    return Err(format!(
                        "segment {s}: PCR {pcr} after {prev} (segment {p}): a gap of {gap} \
                         (27 MHz) is not in (0, 100 ms]"
                    ));
                }
            }
            last_pcr = Some((s, pcr));
        }
    }

    let sent: Vec<&SentAu> = segments.iter().flat_map(|s| &s.aus).collect();
    // The whole stream through mpeg2ts's PES reassembly: payloads equal the input plus AUD.
    let mut all: Vec<u8> = Vec::with_capacity(segments.iter().map(|s| s.bytes.len()).sum());
    for seg in segments {
        all.extend_from_slice(&seg.bytes);
    }
    let mut reader = PesPacketReader::new(TsPacketReader::new(&all[..]));
    let mut k = 0;
    loop {
        let pes = match reader.read_pes_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(e) => return Err(format!("mpeg2ts's PES reader fails after {k} PES: {e}")),
        };
        let au = sent
            .get(k)
            .ok_or_else(|| format!("PES {k}: more PES packets than access units"))?;
        if pes.data != au.payload {
            return Err(format!(
                "PES {k}: payload of {} bytes differs from the {} bytes sent (AUD included)",
                pes.data.len(),
                au.payload.len()
            ));
        }
        let pts = pes.header.pts.map(|t| t.as_u64());
        let dts = pes.header.dts.map(|t| t.as_u64());
        let want_dts = (au.dts != au.pts).then_some(au.dts & MASK_33);
        if pts != Some(au.pts & MASK_33) || dts != want_dts {
            return Err(format!(
                "PES {k}: PTS {pts:?} DTS {dts:?}, sent PTS {} DTS {} (mod 2^33, DTS only when it differs)",
                au.pts, au.dts
            ));
        }
        if !pes.header.data_alignment_indicator {
            return Err(format!("PES {k}: data_alignment_indicator not set"));
        }
        k += 1;
    }
    if k != sent.len() {
        return Err(format!("{k} PES packets for {} access units", sent.len()));
    }

    Ok(())
}

/// A segment the muxer wrote without access units, through mpeg2ts's packet reader: PAT and
/// PMT describing our program, nothing else but PCR-only packets. Returns its PCRs.
fn psi_only_segment(s: usize, bytes: &[u8]) -> Result<Vec<u64>, String> {
    let mut reader = TsPacketReader::new(bytes);
    let mut pcrs = Vec::new();
    for i in 0.. {
        let at = || format!("segment {s} packet {i}");
        let packet = match reader.read_ts_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(e) => return Err(format!("{}: mpeg2ts refuses it: {e}", at())),
        };
        match (&packet.payload, i) {
            (Some(TsPayload::Pat(pat)), 0) => {
                let ok = matches!(&pat.table[..], [p] if p.program_num == PROGRAM_NUMBER
                    && p.program_map_pid.as_u16() == PMT_PID);
                if !ok {
                    return Err(format!("{}: R3: PAT must list one program: {pat:?}", at()));
                }
            }
            (Some(TsPayload::Pmt(pmt)), 1) => {
                let ok = pmt.pcr_pid.map(|p| p.as_u16()) == Some(VIDEO_PID)
                    && matches!(&pmt.es_info[..], [es] if es.stream_type as u8 == STREAM_TYPE_H264
                        && es.elementary_pid.as_u16() == VIDEO_PID);
                if !ok {
                    return Err(format!("{}: PMT must list one H.264 stream: {pmt:?}", at()));
                }
            }
            (_, 0 | 1) => return Err(format!("{}: R3: PAT, PMT expected", at())),
            (Some(TsPayload::PesStart(_)), _) => {
                return Err(format!(
                    "{}: a PES start, but no access unit was sent",
                    at()
                ))
            }
            _ => {}
        }
        if let Some(pcr) = packet.adaptation_field.as_ref().and_then(|a| a.pcr) {
            pcrs.push(pcr.as_u64());
        }
    }
    Ok(pcrs)
}

fn compare_report(
    s: usize,
    report: &SegmentReport,
    seg: &SentSegment,
    end_cc: &BTreeMap<u16, u8>,
) -> Result<(), String> {
    if report.packets * PACKET_SIZE != seg.bytes.len() || report.aus.len() != seg.aus.len() {
        return Err(format!(
            "segment {s}: read_segment found {} packets and {} AUs, wrote {} bytes and {} AUs",
            report.packets,
            report.aus.len(),
            seg.bytes.len(),
            seg.aus.len()
        ));
    }
    for (j, (got, sent)) in report.aus.iter().zip(&seg.aus).enumerate() {
        let want_dts = (sent.dts != sent.pts).then_some(sent.dts & MASK_33);
        let want_pcr = (sent.dts.wrapping_sub(PCR_LEAD.as_u64()) & MASK_33) * 300;
        if got.pcr != Some(want_pcr) {
            return Err(format!(
                "segment {s} AU {j}: PCR {:?}, expected (DTS - PCR_LEAD) x 300 = {want_pcr}",
                got.pcr
            ));
        }
        if got.payload != sent.payload
            || got.pts != sent.pts & MASK_33
            || got.dts != want_dts
            || got.keyframe != sent.keyframe
        {
            return Err(format!(
                "segment {s} AU {j}: read_segment reads PTS {} DTS {:?} keyframe {} ({} bytes), \
                 sent PTS {} DTS {} keyframe {} ({} bytes)",
                got.pts,
                got.dts,
                got.keyframe,
                got.payload.len(),
                sent.pts,
                sent.dts,
                sent.keyframe,
                sent.payload.len()
            ));
        }
    }
    for (pid, cc) in &report.last_cc {
        if end_cc.get(pid) != Some(cc) {
            return Err(format!(
                "segment {s}: read_segment's last counter {cc} for PID {pid:#06x}, raw scan {:?}",
                end_cc.get(pid)
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// ts_demux_robust
// ---------------------------------------------------------------------------------------------

/// Setup byte of a `ts_demux_robust` input, bits 0-1: how the bytes are made.
/// The rest of the input, as it is.
pub const DEMUX_RAW: u8 = 0;
/// The rest cut in 187-byte chunks, each behind a sync byte; the top two bits of each chunk's
/// first byte pick its PID (PAT, PMT, video, or as written).
pub const DEMUX_STAMPED: u8 = 1;
/// A valid segment (see [`sample_segment`]), then (varint position, xor byte) mutations.
pub const DEMUX_MUTATED: u8 = 2;
/// A valid segment cut at a varint position, then the rest of the input appended.
pub const DEMUX_SPLICED: u8 = 3;
/// Setup bit: pass previous counters (three bytes: PAT, PMT, video) to `read_segment`.
pub const DEMUX_PREV_CC: u8 = 0x04;
/// Setup bit: after building the bytes, recompute the CRC_32 of every PAT and PMT section, so
/// mutated tables reach the semantic checks instead of failing the CRC.
pub const DEMUX_FIX_CRC: u8 = 0x08;

/// Mutations applied in [`DEMUX_MUTATED`] mode at most.
const DEMUX_MAX_MUTATIONS: usize = 64;

/// Fuzz property of the segment reader: any bytes, never a panic, and a sane report when it
/// accepts them.
pub fn ts_demux_property(data: &[u8]) {
    let (bytes, prev_cc) = demux_input(data);
    if let Err(e) = check_read_segment(&bytes, prev_cc.as_ref()) {
        panic!("ts_demux_robust: {e}");
    }
}

/// The segment bytes and previous counters a `ts_demux_robust` input stands for.
fn demux_input(data: &[u8]) -> (Vec<u8>, Option<BTreeMap<u16, u8>>) {
    let mut input = Input::new(data);
    let setup = input.u8().unwrap_or(0);
    let prev_cc: Option<BTreeMap<u16, u8>> = if setup & DEMUX_PREV_CC != 0 {
        let mut m = BTreeMap::new();
        for pid in OUR_PIDS {
            m.insert(pid, input.u8().unwrap_or(0));
        }
        Some(m)
    } else {
        None
    };
    let bytes = match setup & 0b11 {
        DEMUX_RAW => input.rest().to_vec(),
        DEMUX_STAMPED => stamped_packets(input.rest()),
        DEMUX_MUTATED => {
            let mut seg = sample_segment(&mut input);
            for _ in 0..DEMUX_MAX_MUTATIONS {
                let (Some(at), Some(x)) = (input.varint(), input.u8()) else {
                    break;
                };
                let at = (at % seg.len() as u64) as usize;
                seg[at] ^= x;
            }
            seg
        }
        _ => {
            let mut seg = sample_segment(&mut input);
            let cut = input.varint().unwrap_or(0) % (seg.len() as u64 + 1);
            seg.truncate(cut as usize);
            seg.extend_from_slice(input.rest());
            seg
        }
    };
    let mut bytes = bytes;
    if setup & DEMUX_FIX_CRC != 0 {
        fix_psi_crcs(&mut bytes);
    }
    (bytes, prev_cc)
}

/// Rewrites the CRC_32 of each PAT or PMT section that starts in a packet and fits in it.
fn fix_psi_crcs(bytes: &mut [u8]) {
    for p in bytes.chunks_exact_mut(PACKET_SIZE) {
        let pid = u16::from_be_bytes([p[1] & 0x1F, p[2]]);
        let pusi = p[1] & 0x40 != 0;
        let afc = (p[3] >> 4) & 0b11;
        if !(pid == PAT_PID || pid == PMT_PID) || !pusi || afc & 0b01 == 0 {
            continue;
        }
        let mut at = 4;
        if afc & 0b10 != 0 {
            at += 1 + usize::from(p[4]);
        }
        // pointer_field, then the section: table_id, 12 bits of section_length, ..., CRC_32.
        let Some(&pointer) = p.get(at) else { continue };
        let start = at + 1 + usize::from(pointer);
        let Some(head) = p.get(start..start + 3) else {
            continue;
        };
        let len = usize::from(u16::from_be_bytes([head[1], head[2]]) & 0x0FFF);
        let end = start + 3 + len;
        if len < 4 || end > PACKET_SIZE {
            continue;
        }
        let crc = crc32_mpeg2(&p[start..end - 4]).to_be_bytes();
        p[end - 4..end].copy_from_slice(&crc);
    }
}

/// Packets built from `rest`: sync byte, then 187 bytes (0xFF padding on the last), the PID
/// steered to one of ours by the top two bits of the chunk's first byte.
fn stamped_packets(rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rest.len().div_ceil(PACKET_SIZE - 1) * PACKET_SIZE);
    for chunk in rest.chunks(PACKET_SIZE - 1) {
        let start = out.len();
        out.push(0x47);
        out.extend_from_slice(chunk);
        out.resize(start + PACKET_SIZE, 0xFF);
        let pid = match chunk[0] >> 6 {
            0 => Some(PAT_PID),
            1 => Some(PMT_PID),
            2 => Some(VIDEO_PID),
            _ => None,
        };
        if let Some(pid) = pid {
            let [hi, lo] = pid.to_be_bytes();
            out[start + 1] = (out[start + 1] & 0xE0) | hi;
            out[start + 2] = lo;
        }
    }
    out
}

/// A valid segment from the muxer: a u8 picks 1-8 access units; per AU a u16 (bits 0-14: size
/// minus one, mod 3000; bit 15: a B-frame, PTS two frames after DTS) and a u8 DTS step (0: one
/// frame, else that many milliseconds, so gaps need PCR-only packets).
pub fn sample_segment(input: &mut Input<'_>) -> Vec<u8> {
    let count = 1 + usize::from(input.u8().unwrap_or(0) % 8);
    let mut mux = TsMuxer::new();
    let mut out = Vec::new();
    mux.start_segment(&mut out);
    let mut dts = STREAM_START;
    for i in 0..count {
        let size_field = input.u16().unwrap_or(100);
        let size = 1 + usize::from(size_field & 0x7FFF) % 3_000;
        let reorder = if size_field & 0x8000 != 0 {
            2 * FRAME_TICKS
        } else {
            0
        };
        let step = match input.u8().unwrap_or(0) {
            0 => FRAME_TICKS,
            ms => u64::from(ms) * 90,
        };
        let mut data = vec![0, 0, 0, 1, if i == 0 { 0x65 } else { 0x41 }];
        data.extend((0..size).map(|k| (k * 7 + i) as u8));
        let au = AccessUnit {
            data: &data,
            pts: Pts(dts + reorder),
            dts: Some(Pts(dts)),
            keyframe: i == 0,
        };
        mux.push(&au, &mut out)
            .expect("sample access units are valid by construction");
        dts += step;
    }
    out
}

/// Runs [`read_segment`] on `bytes` and checks its answer for sanity.
pub fn check_read_segment(bytes: &[u8], prev_cc: Option<&BTreeMap<u16, u8>>) -> Result<(), String> {
    let result = read_segment(bytes, prev_cc);
    if read_segment(bytes, prev_cc) != result {
        return Err("read_segment gives two answers for the same bytes".into());
    }
    let report = match result {
        Ok(r) => r,
        Err(e) => return check_error_context(bytes, &e),
    };
    let packets: Vec<&[u8]> = bytes.chunks(PACKET_SIZE).collect();
    let n = packets.len();
    if report.packets != n || bytes.len() % PACKET_SIZE != 0 {
        return Err(format!(
            "accepted {} bytes as {} packets",
            bytes.len(),
            report.packets
        ));
    }
    let pid = |p: &[u8]| u16::from_be_bytes([p[1] & 0x1F, p[2]]);
    let raw_pids: Vec<u16> = packets.iter().map(|p| pid(p)).collect();
    if n < 3 || raw_pids[0] != PAT_PID || raw_pids[1] != PMT_PID {
        return Err(format!("R3: accepted a segment starting {raw_pids:?}"));
    }
    if report.first_pids != raw_pids[..n.min(FIRST_PIDS_LEN)] {
        return Err(format!(
            "first_pids {:?} != {raw_pids:?}",
            report.first_pids
        ));
    }
    if packets.iter().any(|p| p[0] != 0x47) {
        return Err("accepted a packet without sync byte".into());
    }
    if let Some(p) = raw_pids.iter().find(|p| !OUR_PIDS.contains(p)) {
        return Err(format!("accepted foreign PID {p:#06x}"));
    }
    let count = |want: u16| raw_pids.iter().filter(|&&p| p == want).count();
    if report.pat_count != count(PAT_PID) || report.pmt_count != count(PMT_PID) {
        return Err(format!(
            "pat_count {} / pmt_count {} but {} / {} PSI packets",
            report.pat_count,
            report.pmt_count,
            count(PAT_PID),
            count(PMT_PID)
        ));
    }
    // The last counter of each PID as written.
    let mut raw_cc = BTreeMap::new();
    for (p, &pid) in packets.iter().zip(&raw_pids) {
        raw_cc.insert(pid, p[3] & 0x0F);
    }
    if report.last_cc != raw_cc {
        return Err(format!("last_cc {:?}, written {raw_cc:?}", report.last_cc));
    }
    let pcr_only = packets
        .iter()
        .zip(&raw_pids)
        .filter(|(p, &pid)| pid == VIDEO_PID && (p[3] >> 4) & 0b11 == 0b10)
        .count();
    if report.pcr_only_packets != pcr_only {
        return Err(format!(
            "pcr_only_packets {}, {pcr_only} adaptation-only video packets",
            report.pcr_only_packets
        ));
    }
    if report.aus.is_empty() {
        return Err("accepted a segment without access units".into());
    }
    let mut previous: Option<(usize, u64)> = None;
    for (j, au) in report.aus.iter().enumerate() {
        let first = packets
            .get(au.first_packet)
            .ok_or_else(|| format!("AU {j}: first_packet {} out of range", au.first_packet))?;
        if raw_pids[au.first_packet] != VIDEO_PID || first[1] & 0x40 == 0 {
            return Err(format!(
                "AU {j}: packet {} is not a video PES start",
                au.first_packet
            ));
        }
        let aud = matches!(au.payload[..], [0, 0, 0, 1, b, ..] | [0, 0, 1, b, ..] if b & 0x1F == 9);
        if !aud || (au.keyframe && au.pcr.is_none()) || au.pts > MASK_33 {
            return Err(format!(
                "AU {j}: AUD {aud}, keyframe {} with PCR {:?}, PTS {}",
                au.keyframe, au.pcr, au.pts
            ));
        }
        let decode = au.dts.unwrap_or(au.pts);
        if let Some((k, prev)) = previous {
            let step = (decode + TIMESTAMP_MODULUS - prev) % TIMESTAMP_MODULUS;
            if k >= au.first_packet || step == 0 || step >= TIMESTAMP_MODULUS / 2 {
                return Err(format!(
                    "AU {j}: packet {} DTS {decode} after packet {k} DTS {prev}",
                    au.first_packet
                ));
            }
        }
        previous = Some((au.first_packet, decode));
    }
    for w in report.pcrs.windows(2) {
        let gap = (w[1] + PCR_MODULUS - w[0]) % PCR_MODULUS;
        if gap == 0 || gap > MAX_PCR_INTERVAL.as_u64() * 300 {
            return Err(format!("accepted PCR {} after {}", w[1], w[0]));
        }
    }
    // mpeg2ts's own PES reassembly agrees with the report.
    let mut reader = PesPacketReader::new(TsPacketReader::new(bytes));
    for (j, au) in report.aus.iter().enumerate() {
        match reader.read_pes_packet() {
            Ok(Some(pes)) if pes.data == au.payload => {}
            other => {
                return Err(format!(
                    "AU {j}: mpeg2ts's PES reader gives {:?}, read_segment {} bytes",
                    other.map(|p| p.map(|p| p.data.len())),
                    au.payload.len()
                ))
            }
        }
    }
    match reader.read_pes_packet() {
        Ok(None) => Ok(()),
        other => Err(format!(
            "mpeg2ts's PES reader finds more than the {} AUs: {other:?}",
            report.aus.len()
        )),
    }
}

/// A refusal must say where: per-packet errors start `packet <i> (byte <i * 188>), PID`.
fn check_error_context(bytes: &[u8], e: &str) -> Result<(), String> {
    let Some(rest) = e.strip_prefix("packet ") else {
        return Ok(()); // a whole-file error: empty, not whole packets, no AUs, last AU
    };
    let index: usize = rest
        .split(' ')
        .next()
        .and_then(|i| i.parse().ok())
        .ok_or_else(|| format!("error without a packet number: {e}"))?;
    let byte = format!("packet {index} (byte {}), PID ", index * PACKET_SIZE);
    if index * PACKET_SIZE >= bytes.len() || !e.starts_with(&byte) {
        return Err(format!("error names no packet of the input: {e}"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// playlist_window
// ---------------------------------------------------------------------------------------------

/// Operations decoded from one `playlist_window` input at most.
const PL_MAX_OPS: usize = 256;
/// Playlist text (bytes over all renders) one input may have checked before its operation list
/// ends. Every render goes through two parsers and is compared with the previous one, and the
/// window holds three target durations (R24): with 1 ms segments that is thousands of lines, so
/// without this budget the work per input grew with the square of the operation count. The
/// hand-written seeds stay under it (`tests::seeds_fit_the_budgets`).
const PL_MAX_RENDERED: usize = 256 * 1024;
/// m3u8-rs (the independent parser) reads at least every this many renders; see
/// [`PlaylistRun::m3u8_due`] for the others it reads.
const PL_M3U8_EVERY: u64 = 8;
/// 2026-11-25T12:00:00.000Z (the golden files' anchor).
const PL_T0_MS: i64 = 1_795_608_000_000;
const TICKS_PER_MS: u64 = TICKS_PER_SEC / 1000;
const SEGMENT_NAME: &str = "chessboard";
/// Names `Playlist::new` must refuse (not RFC 3986 unreserved, or empty).
const BAD_NAMES: [&str; 6] = ["", "seg ment", "seg/ment", "seg\"", "s\u{e9}ance", "seg%20"];

/// Config byte of a `playlist_window` input: bits 0-3 list size (below 3 must be refused),
/// bits 4-6 target duration in seconds (0 must be refused), bit 7 a bad segment name (a u8
/// picks it). Then a varint start sequence, a u8 start discontinuity sequence, a u32 anchor in
/// milliseconds after 2026-11-25T12:00:00Z.
pub const PL_BAD_NAME: u8 = 0x80;

/// Operation byte, bits 0-2: 0-1 continuous push, 2 `push_resumed` (a segment read back after a
/// restart; bit 6 makes it a discontinuity), 3 push after a discontinuity, 4-5 add a DATERANGE,
/// 6 end, 7 render into a dirty buffer.
pub const PL_PUSH: u8 = 0;
pub const PL_PUSH_RESUMED: u8 = 2;
pub const PL_PUSH_DISCONTINUITY: u8 = 3;
pub const PL_RANGE: u8 = 4;
pub const PL_END: u8 = 6;
pub const PL_RENDER_INTO: u8 = 7;
/// Push bits 3-4: the duration: the target, a u16 of ms plus a u8 of ticks (mod 90), a varint
/// of ticks, or 1.001 x the target (29.97 fps).
pub const PL_DUR_TARGET: u8 = 0x00;
pub const PL_DUR_MS: u8 = 0x08;
pub const PL_DUR_VARINT: u8 = 0x10;
pub const PL_DUR_NTSC: u8 = 0x18;
/// Continuous push bit: an i8 of milliseconds added to the correct PDT (R33 drift; for
/// `push_resumed` the u8 mod 3 gives -1, 0 or +1 ms, text rounding). A discontinuity push
/// instead reads an i16 of milliseconds: the gap after the previous end.
pub const PL_JITTER: u8 = 0x20;
/// `push_resumed` bit: the segment follows a discontinuity.
pub const PL_RESUMED_DISCONTINUITY: u8 = 0x40;
/// Range bits 3-4: the ID: 0-1 a fresh `ev-<n>`, 2 an earlier one (a u8 picks it), 3 raw bytes
/// (a u8 length mod 12). Then an i16 start offset in 10 ms from the end of the stream, the
/// duration (a u16 of ms, or a varint of ticks with [`PL_RANGE_LONG`]), a u8 label length mod 32
/// and the label bytes (lossy UTF-8).
pub const PL_ID_FRESH: u8 = 0x00;
pub const PL_ID_REUSE: u8 = 0x10;
pub const PL_ID_RAW: u8 = 0x18;
pub const PL_RANGE_LONG: u8 = 0x20;

/// Why a push must be refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PushRefusal {
    Ended,
    ZeroDuration,
    TooLong,
    NotAfter,
    Drift,
    Overlap,
    Exhausted,
}

/// Why a DATERANGE must be refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RangeRefusal {
    Ended,
    InvalidId,
    DuplicateId,
    Expired,
}

/// A range the playlist holds, as the model sees it.
#[derive(Clone, Debug)]
struct ModelRange {
    id: String,
    /// Epoch ticks.
    start: i64,
    end: i128,
    start_text: String,
    duration_ms: u64,
    label: String,
}

/// EXTINF milliseconds of a duration, rounded to nearest (what the playlist writes).
fn ticks_to_ms(t: u64) -> u64 {
    t.saturating_add(TICKS_PER_MS / 2) / TICKS_PER_MS
}

fn epoch_ticks(w: WallClock) -> i64 {
    w.unix_millis() * TICKS_PER_MS as i64
}

/// The documented sanitising of quoted strings (R37): `"` becomes `'`, control characters
/// become spaces.
fn sanitised(label: &str) -> String {
    label
        .chars()
        .map(|c| match c {
            '"' => '\'',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect()
}

/// Fuzz property of the live playlist; see the module docs.
pub fn playlist_window_property(data: &[u8]) {
    playlist_window_run(data);
}

/// Runs the `playlist_window` property; true if the input ran out of render budget before its
/// operations did.
fn playlist_window_run(data: &[u8]) -> bool {
    let mut input = Input::new(data);
    let Some(mut run) = PlaylistRun::new(&mut input) else {
        return false;
    };
    let mut rendered = run.check_render();
    let mut budget_hit = false;
    for _ in 0..PL_MAX_OPS {
        if rendered >= PL_MAX_RENDERED {
            budget_hit = !input.is_empty();
            break;
        }
        if run.step(&mut input).is_none() {
            break;
        }
        rendered += run.check_render();
    }
    run.finish();
    budget_hit
}

/// One accepted push, as the model saw it.
struct Pushed {
    duration: u64,
    /// Epoch ticks.
    pdt: i64,
    discontinuity: bool,
    resumed: bool,
}

struct PlaylistRun {
    pl: Playlist,
    cfg: PlaylistConfig,
    target_ticks: u64,
    /// PDT (epoch ticks) of the first segment of the current timeline.
    anchor: i64,
    /// Durations pushed since the anchor.
    since_anchor: u64,
    /// PDT (epoch ticks) and duration of the last accepted segment.
    last: Option<(i64, u64)>,
    next_sequence: u64,
    ended: bool,
    ranges: Vec<ModelRange>,
    ids: Vec<String>,
    next_id: u64,
    /// Sum of every accepted duration: the R25 clock.
    stream: u64,
    durations: HashMap<u64, u64>,
    longest: HashMap<u64, u64>,
    removed_at: HashMap<u64, u64>,
    deleted: HashSet<u64>,
    /// Media and discontinuity sequence of the previous render.
    rendered: Option<(u64, u64)>,
    /// The previous render, read back (R21 compares consecutive versions).
    previous: Option<RenderedPlaylist>,
    buf: String,
    /// Renders checked so far.
    renders: u64,
    /// The last render, if m3u8-rs has not read it (see [`PlaylistRun::m3u8_due`]).
    m3u8_pending: Option<M3u8Check>,
    /// Sequence number of the last segment listed by a render m3u8-rs has read.
    m3u8_through: Option<u64>,
}

/// What [`check_with_m3u8_rs`] needs of one render.
struct M3u8Check {
    text: String,
    parsed: RenderedPlaylist,
    pdt_ms: Vec<i64>,
    last_range_ms: Option<i64>,
}

/// What the renders listed (`.0`) and what m3u8-rs read of them (`.1`): segment URIs and
/// DATERANGE lists, for the test that m3u8-rs's sample misses none.
#[cfg(test)]
type Seen = (HashSet<String>, HashSet<String>);
#[cfg(test)]
thread_local! {
    static M3U8_SEEN: std::cell::RefCell<Seen> = std::cell::RefCell::default();
    /// A segment URI m3u8-rs is made to "disagree" about (a seeded checker failure).
    static M3U8_POISON: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}
#[cfg(test)]
fn note_seen(p: &RenderedPlaylist, by_m3u8: bool) {
    M3U8_SEEN.with_borrow_mut(|seen| {
        let set = if by_m3u8 { &mut seen.1 } else { &mut seen.0 };
        set.extend(p.segments.iter().map(|s| s.uri.clone()));
        set.insert(format!("{:?}", p.date_ranges));
    });
}

impl M3u8Check {
    /// Sequence number of the last listed segment.
    fn last_sequence(&self) -> Option<u64> {
        let n = self.parsed.segments.len() as u64;
        (n > 0).then(|| self.parsed.media_sequence + n - 1)
    }

    fn run(&self, through: &mut Option<u64>) {
        #[cfg(test)]
        {
            note_seen(&self.parsed, true);
            let poisoned = M3U8_POISON.with_borrow(|p| {
                p.as_ref()
                    .is_some_and(|uri| self.parsed.segments.iter().any(|s| &s.uri == uri))
            });
            assert!(!poisoned, "playlist_window: m3u8-rs (poisoned) disagrees");
        }
        if let Err(e) =
            check_with_m3u8_rs(&self.text, &self.parsed, &self.pdt_ms, self.last_range_ms)
        {
            panic!("playlist_window: {e}\nin:\n{}", self.text);
        }
        if let Some(last) = self.last_sequence() {
            *through = Some(through.map_or(last, |t| t.max(last)));
        }
    }
}

impl PlaylistRun {
    fn new(input: &mut Input<'_>) -> Option<Self> {
        let b = input.u8().unwrap_or(0x25);
        let list_size = usize::from(b & 0x0F);
        let target = u64::from((b >> 4) & 0x07);
        let name = if b & PL_BAD_NAME == 0 {
            SEGMENT_NAME
        } else {
            BAD_NAMES[usize::from(input.u8().unwrap_or(0)) % BAD_NAMES.len()]
        };
        // A bad name never reaches the playlist: the stream-name type refuses it.
        let name = match StreamName::new(name) {
            Ok(n) => n,
            Err(e) => {
                assert!(
                    b & PL_BAD_NAME != 0 && !e.to_string().is_empty(),
                    "playlist_window: StreamName refuses {name:?}"
                );
                return None;
            }
        };
        assert!(
            b & PL_BAD_NAME == 0,
            "playlist_window: StreamName accepts the bad name {name:?}"
        );
        let cfg = PlaylistConfig {
            name,
            target_duration_secs: target,
            list_size,
            start_sequence: input.varint().unwrap_or(0),
            start_discontinuity_sequence: u64::from(input.u8().unwrap_or(0)),
        };
        let anchor_ms = PL_T0_MS + i64::from(input.u32().unwrap_or(0));
        let valid = target >= 1 && list_size >= MIN_LIST_SIZE;
        let pl = match Playlist::new(cfg.clone()) {
            Ok(pl) => {
                assert!(valid, "playlist_window: Playlist::new accepts {cfg:?}");
                pl
            }
            Err(e) => {
                let fits = match e {
                    PlaylistError::TargetDurationZero => target == 0,
                    PlaylistError::ListTooShort { .. } => list_size < MIN_LIST_SIZE,
                    _ => false,
                };
                assert!(
                    !valid && fits && !e.to_string().is_empty(),
                    "playlist_window: Playlist::new refuses {cfg:?} with {e}"
                );
                return None;
            }
        };
        if let Err(e) = pl.check_invariants() {
            panic!("playlist_window: check_invariants fails on a new playlist: {e}");
        }
        assert_eq!(
            pl.config(),
            &cfg,
            "playlist_window: config() is not the config given"
        );
        Some(PlaylistRun {
            pl,
            target_ticks: target * TICKS_PER_SEC,
            anchor: anchor_ms * TICKS_PER_MS as i64,
            since_anchor: 0,
            last: None,
            next_sequence: cfg.start_sequence,
            ended: false,
            ranges: Vec::new(),
            ids: Vec::new(),
            next_id: 0,
            stream: 0,
            durations: HashMap::new(),
            longest: HashMap::new(),
            removed_at: HashMap::new(),
            deleted: HashSet::new(),
            rendered: None,
            previous: None,
            buf: String::new(),
            renders: 0,
            m3u8_pending: None,
            m3u8_through: None,
            cfg,
        })
    }

    fn step(&mut self, input: &mut Input<'_>) -> Option<()> {
        let op = input.u8()?;
        match op & 0x07 {
            0 | 1 => self.push(input, op, false, false)?,
            PL_PUSH_RESUMED => {
                self.push(input, op, op & PL_RESUMED_DISCONTINUITY != 0, true)?;
            }
            PL_PUSH_DISCONTINUITY => self.push(input, op, true, false)?,
            4 | 5 => self.add_range(input, op)?,
            PL_END => {
                self.pl.end();
                self.ended = true;
                assert!(self.pl.is_ended());
            }
            _ => {
                self.buf.clear();
                self.buf
                    .push_str("#EXTM3U\nstale text that render_into must replace\n");
                self.pl.render_into(&mut self.buf);
                assert_eq!(
                    self.buf,
                    self.pl.render(),
                    "playlist_window: render_into differs from render"
                );
            }
        }
        if let Err(e) = self.pl.check_invariants() {
            panic!("playlist_window: check_invariants fails: {e}");
        }
        Some(())
    }

    /// A push (`resumed`: through `push_resumed`, which takes the PDT as written).
    fn push(
        &mut self,
        input: &mut Input<'_>,
        op: u8,
        discontinuity: bool,
        resumed: bool,
    ) -> Option<()> {
        let td = self.cfg.target_duration_secs;
        let duration = match op & 0x18 {
            PL_DUR_TARGET => self.target_ticks,
            PL_DUR_MS => {
                u64::from(input.u16()?) * TICKS_PER_MS + u64::from(input.u8()?) % TICKS_PER_MS
            }
            PL_DUR_VARINT => input.varint()?,
            _ => td * (TICKS_PER_SEC + TICKS_PER_SEC / 1000),
        };
        let pdt_ms = if discontinuity {
            let gap = i64::from(input.u16()? as i16);
            let end = match self.last {
                Some((pdt, d)) => pdt + d as i64,
                None => self.anchor,
            };
            end.div_euclid(TICKS_PER_MS as i64) + gap
        } else {
            let jitter = match (op & PL_JITTER != 0, resumed) {
                (false, _) => 0,
                (true, false) => i64::from(input.u8()? as i8),
                // A segment read back from an earlier playlist: usually off by the text's
                // millisecond rounding, sometimes by more (a corrupt file), which is refused.
                (true, true) => i64::from(input.u8()? as i8 / 16),
            };
            (self.anchor + self.since_anchor as i64).div_euclid(TICKS_PER_MS as i64) + jitter
        };
        let pdt = pdt_ms * TICKS_PER_MS as i64;

        let mut expected = Vec::new();
        if self.ended {
            expected.push(PushRefusal::Ended);
        }
        let ms = ticks_to_ms(duration);
        if ms == 0 {
            expected.push(PushRefusal::ZeroDuration);
        }
        if (ms + 500) / 1000 > td {
            expected.push(PushRefusal::TooLong); // R13: rounded EXTINF <= target
        }
        if let Some((last_pdt, last_duration)) = self.last {
            if pdt <= last_pdt {
                expected.push(PushRefusal::NotAfter);
            }
            if discontinuity {
                if last_pdt + last_duration as i64 - pdt >= TICKS_PER_SEC as i64 {
                    expected.push(PushRefusal::Overlap); // R33: only sub-second overlap
                }
            } else if resumed {
                // R33: a read-back segment follows its predecessor within rounding (2 ms).
                if (pdt - (last_pdt + last_duration as i64)).abs() >= 2 * TICKS_PER_MS as i64 {
                    expected.push(PushRefusal::Drift);
                }
            } else if (pdt - (self.anchor + self.since_anchor as i64)).abs() >= TICKS_PER_MS as i64
            {
                expected.push(PushRefusal::Drift); // R33: anchor + sum(EXTINF)
            }
        }
        if self.next_sequence == u64::MAX {
            expected.push(PushRefusal::Exhausted); // R22: never wraps
        }

        let before = self.pl.render();
        let window_before: Vec<Segment> = self.pl.segments().cloned().collect();
        let (msn, dseq) = (self.pl.media_sequence(), self.pl.discontinuity_sequence());
        let pdt_clock = WallClock::from_unix_millis(pdt_ms);
        let result = if resumed {
            self.pl
                .push_resumed(Duration90k(duration), pdt_clock, discontinuity)
        } else {
            self.pl
                .push(Duration90k(duration), pdt_clock, discontinuity)
        };
        match result {
            Ok(out) => {
                assert!(
                    expected.is_empty(),
                    "playlist_window: accepted a segment of {duration} ticks at {} \
                     (discontinuity {discontinuity}) that the rules refuse: {expected:?}",
                    pdt_clock.to_rfc3339()
                );
                let pushed = Pushed {
                    duration,
                    pdt,
                    discontinuity,
                    resumed,
                };
                self.accepted(&out, &window_before, msn, dseq, &pushed);
            }
            Err(e) => {
                use PlaylistError as E;
                let refusal = match e {
                    E::Ended { .. } => PushRefusal::Ended,
                    E::ZeroDuration { .. } => PushRefusal::ZeroDuration,
                    E::SegmentTooLong { .. } => PushRefusal::TooLong,
                    E::ProgramDateTimeNotAfter { .. } => PushRefusal::NotAfter,
                    E::ProgramDateTimeDrift { .. } => PushRefusal::Drift,
                    E::ProgramDateTimeOverlap { .. } => PushRefusal::Overlap,
                    E::SequenceExhausted => PushRefusal::Exhausted,
                    ref other => panic!("playlist_window: push fails with {other}"),
                };
                assert!(
                    expected.contains(&refusal),
                    "playlist_window: push of {duration} ticks at {} (discontinuity \
                     {discontinuity}) refused with {e}, but the rules call for {expected:?}",
                    pdt_clock.to_rfc3339()
                );
                assert!(!e.to_string().is_empty());
                assert_eq!(
                    self.pl.render(),
                    before,
                    "playlist_window: a refused push changed the playlist ({e})"
                );
                assert_eq!(self.pl.next_sequence(), self.next_sequence);
            }
        }
        Some(())
    }

    /// Checks an accepted push against the rules and moves the model along.
    fn accepted(
        &mut self,
        out: &PushOutcome,
        window_before: &[Segment],
        msn: u64,
        dseq: u64,
        pushed: &Pushed,
    ) {
        let &Pushed {
            duration,
            pdt,
            discontinuity,
            resumed,
        } = pushed;
        let ctx = format!("push of segment {} ({duration} ticks)", out.sequence);
        assert_eq!(out.sequence, self.next_sequence, "{ctx}: sequence number");
        self.next_sequence += 1;
        assert_eq!(self.pl.next_sequence(), self.next_sequence, "{ctx}");
        let removed = out.removed.len();
        assert_eq!(
            self.pl.media_sequence(),
            msn + removed as u64,
            "{ctx}: R22: media sequence must rise by exactly the {removed} removed segments"
        );
        assert!(
            removed <= window_before.len(),
            "{ctx}: removed the segment just pushed"
        );
        for (i, s) in out.removed.iter().enumerate() {
            assert_eq!(
                s, &window_before[i],
                "{ctx}: R23: segments leave in playlist order"
            );
        }
        let removed_discontinuities = out.removed.iter().filter(|s| s.discontinuity).count();
        assert_eq!(
            self.pl.discontinuity_sequence(),
            dseq + removed_discontinuities as u64,
            "{ctx}: R26: discontinuity sequence rises by the removed EXT-X-DISCONTINUITY tags"
        );

        let window: Vec<Segment> = self.pl.segments().cloned().collect();
        let new_msn = self.pl.media_sequence();
        for (i, s) in window.iter().enumerate() {
            assert_eq!(
                s.sequence,
                new_msn + i as u64,
                "{ctx}: window not consecutive"
            );
        }
        let newest = window.last().expect("the pushed segment is in the window");
        assert_eq!(
            (
                newest.sequence,
                newest.duration,
                epoch_ticks(newest.program_date_time)
            ),
            (out.sequence, Duration90k(duration), pdt),
            "{ctx}: the window's last segment"
        );
        assert_eq!(newest.discontinuity, discontinuity);
        let window_ticks: u64 = window.iter().map(|s| s.duration.as_u64()).sum();
        assert_eq!(self.pl.window_duration().as_u64(), window_ticks, "{ctx}");
        if new_msn > self.cfg.start_sequence {
            assert!(
                window_ticks >= 3 * self.target_ticks,
                "{ctx}: R24: segments were removed but the window lasts {window_ticks} ticks, \
                 under 3 target durations"
            );
        }
        if window.len() > self.cfg.list_size {
            assert!(
                window_ticks - window[0].duration.as_u64() < 3 * self.target_ticks,
                "{ctx}: {} segments in a window of {} although removing the oldest keeps 3 \
                 target durations",
                window.len(),
                self.cfg.list_size
            );
        }

        // R25: a removed file lives its own duration plus the longest playlist that held it.
        self.stream += duration;
        assert_eq!(
            self.pl.stream_time().as_u64(),
            self.stream,
            "{ctx}: stream time"
        );
        self.durations.insert(out.sequence, duration);
        for s in &out.removed {
            self.removed_at.insert(s.sequence, self.stream);
        }
        for name in &out.delete_now {
            let seq: u64 = name
                .strip_prefix(SEGMENT_NAME)
                .and_then(|n| n.strip_suffix(".ts"))
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{ctx}: deletes a file named {name:?}"));
            let removed_at = *self
                .removed_at
                .get(&seq)
                .unwrap_or_else(|| panic!("{ctx}: deletes {name}, which never left the playlist"));
            assert!(self.deleted.insert(seq), "{ctx}: deletes {name} twice");
            let since = self.stream - removed_at;
            let grace = self.durations[&seq] + self.longest.get(&seq).copied().unwrap_or(0);
            assert!(
                since >= grace,
                "{ctx}: R25: deletes {name} {since} ticks after its removal, before its grace of {grace}"
            );
            assert!(
                since - duration < grace,
                "{ctx}: {name} was due on an earlier push"
            );
        }
        for s in &window {
            let l = self.longest.entry(s.sequence).or_default();
            *l = (*l).max(window_ticks);
        }
        let mut pending: Vec<u64> = self
            .removed_at
            .keys()
            .filter(|s| !self.deleted.contains(s))
            .copied()
            .collect();
        pending.sort_unstable();
        let reported: Vec<u64> = self.pl.pending_deletes().map(|p| p.sequence).collect();
        assert_eq!(reported, pending, "{ctx}: files awaiting deletion");

        if discontinuity || resumed || self.last.is_none() {
            self.anchor = pdt;
            self.since_anchor = 0;
        }
        self.since_anchor += duration;
        self.last = Some((pdt, duration));
        // R36: a range leaves only once it ended before the window's first date.
        let first = epoch_ticks(window[0].program_date_time);
        self.ranges.retain(|r| r.end >= i128::from(first));
    }

    fn add_range(&mut self, input: &mut Input<'_>, op: u8) -> Option<()> {
        let id = match op & 0x18 {
            PL_ID_REUSE if !self.ids.is_empty() => {
                self.ids[usize::from(input.u8()?) % self.ids.len()].clone()
            }
            PL_ID_RAW => {
                let n = usize::from(input.u8()? % 12);
                String::from_utf8_lossy(input.bytes(n)).into_owned()
            }
            _ => {
                self.next_id += 1;
                format!("ev-{}", self.next_id)
            }
        };
        let offset_ms = i64::from(input.u16()? as i16) * 10;
        let duration = if op & PL_RANGE_LONG != 0 {
            input.varint()?
        } else {
            u64::from(input.u16()?) * TICKS_PER_MS
        };
        let label_len = usize::from(input.u8()? % 32);
        let label = String::from_utf8_lossy(input.bytes(label_len)).into_owned();
        let end_of_stream = match self.last {
            Some((pdt, d)) => pdt + d as i64,
            None => self.anchor,
        };
        let start_ms = end_of_stream.div_euclid(TICKS_PER_MS as i64) + offset_ms;
        let start = start_ms * TICKS_PER_MS as i64;
        let end = i128::from(start) + i128::from(duration);

        let mut expected = Vec::new();
        if self.ended {
            expected.push(RangeRefusal::Ended);
        }
        if id.is_empty() || id.chars().any(|c| c == '"' || c.is_control()) {
            expected.push(RangeRefusal::InvalidId); // R37
        }
        if self.ranges.iter().any(|r| r.id == id) {
            expected.push(RangeRefusal::DuplicateId); // R36
        }
        if let Some(first) = self.pl.segments().next() {
            if end < i128::from(epoch_ticks(first.program_date_time)) {
                expected.push(RangeRefusal::Expired);
            }
        }
        let before = self.pl.render();
        let start_clock = WallClock::from_unix_millis(start_ms);
        let range = DateRange {
            id: id.clone(),
            start: start_clock,
            duration: Duration90k(duration),
            label: label.clone(),
        };
        match self.pl.add_date_range(range) {
            Ok(()) => {
                assert!(
                    expected.is_empty(),
                    "playlist_window: accepted DATERANGE {id:?} at {} for {duration} ticks that \
                     the rules refuse: {expected:?}",
                    start_clock.to_rfc3339()
                );
                self.ranges.push(ModelRange {
                    id: id.clone(),
                    start,
                    end,
                    start_text: start_clock.to_rfc3339(),
                    duration_ms: ticks_to_ms(duration),
                    label: sanitised(&label),
                });
                self.ids.push(id);
            }
            Err(e) => {
                let refusal = match e {
                    PlaylistError::Ended { .. } => RangeRefusal::Ended,
                    PlaylistError::InvalidDateRangeId { .. } => RangeRefusal::InvalidId,
                    PlaylistError::DuplicateDateRangeId { .. } => RangeRefusal::DuplicateId,
                    PlaylistError::DateRangeExpired { .. } => RangeRefusal::Expired,
                    ref other => panic!("playlist_window: add_date_range fails with {other}"),
                };
                assert!(
                    expected.contains(&refusal),
                    "playlist_window: DATERANGE {id:?} refused with {e}, but the rules call for \
                     {expected:?}"
                );
                assert!(
                    refusal == RangeRefusal::Ended || e.to_string().contains(&format!("{id:?}")),
                    "playlist_window: the error does not name the DATERANGE: {e}"
                );
                assert_eq!(
                    self.pl.render(),
                    before,
                    "playlist_window: a refused DATERANGE changed the playlist"
                );
            }
        }
        Some(())
    }

    /// Renders, reads the text strictly and with m3u8-rs, and holds both against the state.
    /// Checks the current render; returns its length.
    fn check_render(&mut self) -> usize {
        let text = self.pl.render();
        let parsed = check_playlist_text(&text)
            .unwrap_or_else(|e| panic!("playlist_window: {e}\nin:\n{text}"));
        let fail = |what: String| -> ! { panic!("playlist_window: {what}\nin:\n{text}") };
        if parsed.target_duration != self.cfg.target_duration_secs {
            fail(format!(
                "R14: target duration {} but configured {}",
                parsed.target_duration, self.cfg.target_duration_secs
            ));
        }
        let msn = self.pl.media_sequence();
        let dseq = self.pl.discontinuity_sequence();
        if parsed.media_sequence != msn {
            fail(format!(
                "EXT-X-MEDIA-SEQUENCE {}, state {msn}",
                parsed.media_sequence
            ));
        }
        let written_dseq = parsed.discontinuity_sequence.unwrap_or(0);
        if written_dseq != dseq {
            fail(format!(
                "R26: discontinuity sequence {dseq} but a client reads {written_dseq}"
            ));
        }
        if let Some((prev_msn, prev_dseq)) = self.rendered {
            if msn < prev_msn || dseq < prev_dseq {
                fail(format!(
                    "R22/R26: sequences went back from {prev_msn}/{prev_dseq} to {msn}/{dseq}"
                ));
            }
        }
        self.rendered = Some((msn, dseq));
        if parsed.endlist != self.ended {
            fail(format!(
                "R29: EXT-X-ENDLIST {} after end {}",
                parsed.endlist, self.ended
            ));
        }
        let window: Vec<&Segment> = self.pl.segments().collect();
        if parsed.segments.len() != window.len() {
            fail(format!(
                "{} segments written, {} in the window",
                parsed.segments.len(),
                window.len()
            ));
        }
        for (i, (p, s)) in parsed.segments.iter().zip(&window).enumerate() {
            let ok = s.sequence == msn + i as u64
                && p.uri == self.pl.segment_uri(s.sequence)
                && p.extinf_ms == ticks_to_ms(s.duration.as_u64())
                && p.discontinuity == s.discontinuity
                && p.program_date_time == s.program_date_time.to_rfc3339();
            if !ok {
                fail(format!("segment line {i} {p:?} does not show {s:?}"));
            }
        }

        // R36: exactly the held ranges whose dates overlap the window's, in the order added.
        let span = window.first().zip(window.last()).map(|(f, l)| {
            (
                i128::from(epoch_ticks(f.program_date_time)),
                i128::from(epoch_ticks(l.program_date_time)) + i128::from(l.duration.as_u64()),
            )
        });
        let visible: Vec<&ModelRange> = self
            .ranges
            .iter()
            .filter(|r| span.is_some_and(|(s, e)| i128::from(r.start) < e && r.end >= s))
            .collect();
        let shown: Vec<&str> = parsed.date_ranges.iter().map(|r| r.id.as_str()).collect();
        let want: Vec<&str> = visible.iter().map(|r| r.id.as_str()).collect();
        if shown != want {
            fail(format!(
                "R36: DATERANGEs {shown:?} shown, {want:?} overlap the window"
            ));
        }
        for (r, m) in parsed.date_ranges.iter().zip(&visible) {
            if r.start_date != m.start_text
                || r.duration_ms != m.duration_ms
                || r.label.as_deref() != Some(m.label.as_str())
            {
                fail(format!("DATERANGE {r:?} does not show {m:?}"));
            }
        }
        let held: Vec<&str> = self.pl.date_ranges().map(|r| r.id.as_str()).collect();
        if held != want {
            fail(format!("date_ranges() {held:?}, render {want:?}"));
        }

        let pdt_ms: Vec<i64> = window
            .iter()
            .map(|s| s.program_date_time.unix_millis())
            .collect();
        let last_range_ms = visible.last().map(|r| r.start / TICKS_PER_MS as i64);
        if let Some(previous) = &self.previous {
            if let Err(e) = check_update(previous, &parsed) {
                fail(e);
            }
        }
        let len = text.len();
        #[cfg(test)]
        note_seen(&parsed, false);
        let this = M3u8Check {
            text,
            parsed,
            pdt_ms,
            last_range_ms,
        };
        // The independent parse, on a sample of the renders (every render went through
        // check_playlist_text, the model and check_update above).
        if let Some(pending) = self.m3u8_pending.take() {
            // The first segment of the previous render that m3u8-rs has not seen listed.
            let first_unread = self
                .m3u8_through
                .map_or(pending.parsed.media_sequence, |t| {
                    (t + 1).max(pending.parsed.media_sequence)
                });
            let drops_unread = pending
                .last_sequence()
                .is_some_and(|last| first_unread <= last)
                && this.parsed.media_sequence > first_unread;
            if drops_unread {
                pending.run(&mut self.m3u8_through);
            }
        }
        if self.m3u8_due(&this.parsed) {
            this.run(&mut self.m3u8_through);
        } else {
            self.m3u8_pending = Some(M3u8Check {
                text: this.text,
                parsed: this.parsed.clone(),
                pdt_ms: this.pdt_ms,
                last_range_ms: this.last_range_ms,
            });
        }
        self.previous = Some(this.parsed);
        self.renders += 1;
        len
    }

    /// Whether m3u8-rs reads this render now: the first render, every [`PL_M3U8_EVERY`]th,
    /// and every render whose structure differs from the previous one (EXT-X-ENDLIST, the
    /// discontinuity sequence, the DATERANGEs shown, whether the first segment exists and
    /// carries EXT-X-DISCONTINUITY). Besides, [`Self::check_render`] has m3u8-rs read the
    /// previous render when this one drops a segment that no render read so far listed, and
    /// [`Self::finish`] the last render. So m3u8-rs reads every segment's lines (which
    /// `check_update` proves unchanged while listed) and every DATERANGE state at least once.
    fn m3u8_due(&self, now: &RenderedPlaylist) -> bool {
        let Some(prev) = &self.previous else {
            return true;
        };
        let first = |p: &RenderedPlaylist| p.segments.first().map(|s| s.discontinuity);
        self.renders % PL_M3U8_EVERY == 0
            || prev.endlist != now.endlist
            || prev.discontinuity_sequence != now.discontinuity_sequence
            || prev.date_ranges != now.date_ranges
            || first(prev) != first(now)
    }

    fn finish(mut self) {
        if !self.ended {
            self.pl.end();
            self.ended = true;
            self.check_render();
        }
        if let Some(last) = self.m3u8_pending.take() {
            last.run(&mut self.m3u8_through);
        }
        let removed = self.pl.media_sequence() - self.cfg.start_sequence;
        assert_eq!(
            self.removed_at.len() as u64,
            removed,
            "playlist_window: removed count"
        );
        for s in self.pl.segments() {
            assert!(
                !self.deleted.contains(&s.sequence),
                "playlist_window: segment {} deleted while listed",
                s.sequence
            );
        }
    }
}

/// A media playlist as [`check_playlist_text`] read it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RenderedPlaylist {
    pub version: u64,
    pub target_duration: u64,
    pub media_sequence: u64,
    /// `None` when the tag is absent (clients then assume 0).
    pub discontinuity_sequence: Option<u64>,
    pub independent_segments: bool,
    pub date_ranges: Vec<RenderedRange>,
    pub segments: Vec<RenderedSegment>,
    pub endlist: bool,
}

/// One media segment's lines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RenderedSegment {
    pub uri: String,
    /// EXTINF in milliseconds (we write exactly three decimals).
    pub extinf_ms: u64,
    pub program_date_time: String,
    pub discontinuity: bool,
}

/// One `EXT-X-DATERANGE` line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RenderedRange {
    pub id: String,
    pub start_date: String,
    pub duration_ms: u64,
    pub label: Option<String>,
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`: RFC 3339 in UTC with milliseconds (R32).
fn is_date_with_ms(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 24
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'.',
            23 => c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

fn decimal_integer(v: &str) -> Option<u64> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// `<digits>.<three digits>` as milliseconds.
fn millis_decimal(v: &str) -> Option<u64> {
    let (s, ms) = v.split_once('.')?;
    if ms.len() != 3 || !ms.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    decimal_integer(s)?
        .checked_mul(1000)?
        .checked_add(ms.parse().ok()?)
}

/// Attribute lists are read with the product's one strict parser (RFC 8216 §4.2, R37): the
/// checks below are on what the attributes say.
use hls::playlist::attributes::{parse as attribute_list, AttrValue};

fn date_range(list: &str) -> Result<RenderedRange, String> {
    let mut r = RenderedRange::default();
    let (mut id, mut start, mut duration) = (false, false, false);
    for (name, value) in attribute_list(list)? {
        match (name, value) {
            ("ID", AttrValue::Quoted(v)) if !v.is_empty() => {
                r.id = v.to_owned();
                id = true;
            }
            ("START-DATE", AttrValue::Quoted(v)) if is_date_with_ms(v) => {
                r.start_date = v.to_owned();
                start = true;
            }
            ("DURATION", AttrValue::Plain(v)) => {
                r.duration_ms = millis_decimal(v)
                    .ok_or_else(|| format!("R35: DURATION {v:?} is not a non-negative decimal"))?;
                duration = true;
            }
            (DATERANGE_LABEL_ATTRIBUTE, AttrValue::Quoted(v)) => r.label = Some(v.to_owned()),
            (n, AttrValue::Quoted(_)) if n.starts_with("X-") => {}
            (n, v) => return Err(format!("R35: unexpected DATERANGE attribute {n}={v:?}")),
        }
    }
    if !(id && start && duration) {
        return Err(format!(
            "R35: DATERANGE needs ID, START-DATE and DURATION: {list:?}"
        ));
    }
    Ok(r)
}

/// A strict reading of a live media playlist as we write it: RFC 8216 §4 syntax (R9 no BOM, LF
/// line ends, no control characters, no whitespace outside quoted strings; R10 `#EXTM3U` first;
/// R37 attribute lists) and the rules R11, R13, R15-R18, R32, R34-R36 on its tags. m3u8-rs is
/// too lenient to check these.
pub fn check_playlist_text(text: &str) -> Result<RenderedPlaylist, String> {
    if text.starts_with('\u{feff}') {
        return Err("R9: byte order mark".into());
    }
    if !text.starts_with("#EXTM3U\n") {
        return Err("R10: the first line must be #EXTM3U".into());
    }
    if !text.ends_with('\n') {
        return Err("R9: the last line does not end in LF".into());
    }
    let mut pl = RenderedPlaylist::default();
    let (mut version, mut target, mut msn) = (None, None, None);
    let mut segment = RenderedSegment::default();
    let (mut extinf_seen, mut pdt_seen, mut in_segment) = (false, false, false);
    for (n, line) in text.split_terminator('\n').enumerate() {
        let at = |what: &str| format!("line {}: {what}: {line:?}", n + 1);
        if line.is_empty() {
            return Err(at("empty line"));
        }
        if pl.endlist {
            return Err(at("a line after EXT-X-ENDLIST"));
        }
        // Printable ASCII without spaces has no control character and no whitespace; this
        // test is one traced comparison per byte in the fuzz build, the loop below five.
        let plain = line.bytes().all(|b| (0x21..=0x7E).contains(&b));
        let scan = if plain { "" } else { line };
        let mut quoted = false;
        for c in scan.chars() {
            if c == '"' {
                quoted = !quoted;
            } else if c.is_control() {
                return Err(at("R9: control character (or CR)"));
            } else if c.is_whitespace() && !quoted {
                return Err(at("R9: whitespace outside a quoted string"));
            }
        }
        if n == 0 {
            continue; // #EXTM3U, checked above
        }
        let Some(tag) = line.strip_prefix('#') else {
            // A URI line closes the segment.
            if !extinf_seen || line.contains('"') {
                return Err(at("URI without EXTINF, or with a quote"));
            }
            if !pdt_seen {
                return Err(at("R32/R33: segment without EXT-X-PROGRAM-DATE-TIME"));
            }
            segment.uri = line.to_owned();
            pl.segments.push(std::mem::take(&mut segment));
            (extinf_seen, pdt_seen) = (false, false);
            continue;
        };
        let (name, value) = match tag.split_once(':') {
            Some((name, value)) => (name, Some(value)),
            None => (tag, None),
        };
        let integer = || {
            value
                .and_then(decimal_integer)
                .ok_or_else(|| at("decimal-integer"))
        };
        let header = |seen: bool| {
            if in_segment {
                Err(at("R15/R16: playlist tag after the first media segment"))
            } else if seen {
                Err(at("R11/R18: tag repeated"))
            } else {
                Ok(())
            }
        };
        match (name, value) {
            ("EXT-X-VERSION", Some(_)) => {
                header(version.is_some())?;
                version = Some(integer()?);
            }
            ("EXT-X-TARGETDURATION", Some(_)) => {
                header(target.is_some())?;
                target = Some(integer()?);
            }
            ("EXT-X-MEDIA-SEQUENCE", Some(_)) => {
                header(msn.is_some())?;
                msn = Some(integer()?);
            }
            ("EXT-X-DISCONTINUITY-SEQUENCE", Some(_)) => {
                header(pl.discontinuity_sequence.is_some())?;
                pl.discontinuity_sequence = Some(integer()?);
            }
            ("EXT-X-INDEPENDENT-SEGMENTS", None) => {
                header(pl.independent_segments)?;
                pl.independent_segments = true;
            }
            ("EXT-X-DATERANGE", Some(list)) => {
                let r = date_range(list).map_err(|e| at(&e))?;
                if pl.date_ranges.iter().any(|o| o.id == r.id) {
                    return Err(at("R35/R36: DATERANGE ID twice"));
                }
                pl.date_ranges.push(r);
            }
            ("EXT-X-DISCONTINUITY", None) => {
                if pl.discontinuity_sequence.is_none() {
                    return Err(at(
                        "R16: EXT-X-DISCONTINUITY before EXT-X-DISCONTINUITY-SEQUENCE",
                    ));
                }
                in_segment = true;
                segment.discontinuity = true;
            }
            ("EXT-X-PROGRAM-DATE-TIME", Some(v)) => {
                if !is_date_with_ms(v) || pdt_seen {
                    return Err(at(
                        "R32: PDT must be UTC with milliseconds, once per segment",
                    ));
                }
                in_segment = true;
                pdt_seen = true;
                segment.program_date_time = v.to_owned();
            }
            ("EXTINF", Some(v)) => {
                let ms = v
                    .strip_suffix(',')
                    .and_then(millis_decimal)
                    .ok_or_else(|| at("R12: EXTINF must be <seconds>.<3 decimals>,"))?;
                if extinf_seen {
                    return Err(at("two EXTINF for one segment"));
                }
                in_segment = true;
                extinf_seen = true;
                segment.extinf_ms = ms;
            }
            ("EXT-X-ENDLIST", None) => pl.endlist = true,
            _ => {
                return Err(at(
                    "unexpected tag (R17: no EXT-X-PLAYLIST-TYPE in a live playlist)",
                ))
            }
        }
    }
    if extinf_seen || pdt_seen || segment.discontinuity {
        return Err("segment tags without a URI at the end".into());
    }
    pl.version = version.ok_or("R11: no EXT-X-VERSION")?;
    pl.target_duration = target.ok_or("R13: no EXT-X-TARGETDURATION")?;
    pl.media_sequence = msn.ok_or("R15/R22: no EXT-X-MEDIA-SEQUENCE")?;
    if pl.version != u64::from(PROTOCOL_VERSION) {
        return Err(format!(
            "R11: EXT-X-VERSION {} (decimal EXTINF needs 3, nothing needs more)",
            pl.version
        ));
    }
    if pl.target_duration == 0 {
        return Err("R13: EXT-X-TARGETDURATION 0".into());
    }
    for s in &pl.segments {
        if (s.extinf_ms + 500) / 1000 > pl.target_duration {
            return Err(format!(
                "R13: EXTINF {}.{:03} rounds above EXT-X-TARGETDURATION {}",
                s.extinf_ms / 1000,
                s.extinf_ms % 1000,
                pl.target_duration
            ));
        }
    }
    if !pl.date_ranges.is_empty() && pl.segments.is_empty() {
        return Err("R34: DATERANGE without EXT-X-PROGRAM-DATE-TIME".into());
    }
    Ok(pl)
}

/// R21: between two versions of a live playlist the server may only append lines, remove
/// segments from the front (with their tags), raise the media and discontinuity sequences,
/// add EXT-X-ENDLIST and drop DATERANGEs that no longer apply; nothing changes after ENDLIST,
/// and a DATERANGE keeps its attribute values (R35).
pub fn check_update(before: &RenderedPlaylist, after: &RenderedPlaylist) -> Result<(), String> {
    if before.endlist {
        return if after == before {
            Ok(())
        } else {
            Err("R21: the playlist changed after EXT-X-ENDLIST".into())
        };
    }
    if (
        after.version,
        after.target_duration,
        after.independent_segments,
    ) != (
        before.version,
        before.target_duration,
        before.independent_segments,
    ) {
        return Err("R14/R21: a header tag changed".into());
    }
    let removed = after
        .media_sequence
        .checked_sub(before.media_sequence)
        .ok_or("R22: EXT-X-MEDIA-SEQUENCE went down")?;
    let removed = usize::try_from(removed)
        .ok()
        .filter(|&k| k <= before.segments.len())
        .ok_or_else(|| {
            format!(
                "R22: {removed} segments removed, {} listed",
                before.segments.len()
            )
        })?;
    let kept = &before.segments[removed..];
    if after.segments.get(..kept.len()) != Some(kept) {
        return Err("R20/R21: a segment that stays in the playlist changed or moved".into());
    }
    let left = before.segments[..removed]
        .iter()
        .filter(|s| s.discontinuity)
        .count() as u64;
    let (b, a) = (
        before.discontinuity_sequence.unwrap_or(0),
        after.discontinuity_sequence.unwrap_or(0),
    );
    if a != b + left
        || (before.discontinuity_sequence.is_some() && after.discontinuity_sequence.is_none())
    {
        return Err(format!(
            "R26: discontinuity sequence {b} -> {a} although {left} EXT-X-DISCONTINUITY left"
        ));
    }
    for r in &after.date_ranges {
        if let Some(old) = before.date_ranges.iter().find(|o| o.id == r.id) {
            if old != r {
                return Err(format!("R35: DATERANGE {:?} changed its attributes", r.id));
            }
        }
    }
    Ok(())
}

/// Parses `text` with m3u8-rs (an independent parser) and compares it with the strict reading,
/// the segments' PDTs and the last shown DATERANGE's START-DATE (Unix milliseconds).
fn check_with_m3u8_rs(
    text: &str,
    ours: &RenderedPlaylist,
    pdt_ms: &[i64],
    last_range_ms: Option<i64>,
) -> Result<(), String> {
    let m = m3u8_rs::parse_media_playlist_res(text.as_bytes())
        .map_err(|e| format!("m3u8-rs refuses the playlist: {e:?}"))?;
    let header_ok = m.version == Some(PROTOCOL_VERSION as usize)
        && m.target_duration == ours.target_duration
        && m.media_sequence == ours.media_sequence
        && m.discontinuity_sequence == ours.discontinuity_sequence.unwrap_or(0)
        && m.end_list == ours.endlist
        && m.playlist_type.is_none()
        && m.independent_segments == ours.independent_segments
        && m.unknown_tags.is_empty()
        && m.segments.len() == ours.segments.len();
    if !header_ok {
        return Err(format!(
            "m3u8-rs reads the header or segment count differently: {m:?}"
        ));
    }
    for (i, (p, s)) in m.segments.iter().zip(&ours.segments).enumerate() {
        let ok = p.uri == s.uri
            && (f64::from(p.duration) * 1000.0).round() as u64 == s.extinf_ms
            && p.discontinuity == s.discontinuity
            && p.program_date_time.map(|d| d.timestamp_millis()) == pdt_ms.get(i).copied()
            && p.unknown_tags.is_empty();
        if !ok {
            return Err(format!(
                "m3u8-rs reads segment {i} as {p:?}, we wrote {s:?}"
            ));
        }
    }
    // m3u8-rs keeps one DATERANGE per segment: the last one before the first segment.
    if let Some(last) = ours.date_ranges.last() {
        let d = m.segments[0]
            .daterange
            .as_ref()
            .ok_or("m3u8-rs lost the DATERANGE")?;
        // m3u8-rs 6.0.1 reads an empty quoted-string as the unquoted text `""` (its `quoted`
        // parser wants at least one character); RFC 8216 §4.2 allows the empty string.
        let label = match d
            .x_prefixed
            .as_ref()
            .and_then(|x| x.get(DATERANGE_LABEL_ATTRIBUTE))
        {
            Some(m3u8_rs::QuotedOrUnquoted::Unquoted(v)) if v == "\"\"" => Some(""),
            Some(v) => v.as_quoted(),
            None => None,
        };
        // DURATION is compared in f64 seconds: huge durations exceed f64's exact integers.
        let want_secs = last.duration_ms as f64 / 1000.0;
        let ok = d.id == last.id
            && Some(d.start_date.timestamp_millis()) == last_range_ms
            && d.duration
                .is_some_and(|s| (s - want_secs).abs() <= 1e-9 * want_secs.max(1.0))
            && label == last.label.as_deref();
        if !ok {
            return Err(format!("m3u8-rs reads DATERANGE {d:?}, we wrote {last:?}"));
        }
    }
    Ok(())
}

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
fn pl_header(w: &mut InputWriter, list_size: u8, target: u8, start_sequence: u64, dseq: u8) {
    w.u8((target << 4) | list_size)
        .varint(start_sequence)
        .u8(dseq)
        .u32(0);
}

fn pl_push_ms(w: &mut InputWriter, ms: u16, ticks: u8) {
    w.u8(PL_PUSH | PL_DUR_MS).u16(ms).u8(ticks);
}

fn pl_push_target(w: &mut InputWriter, count: usize) {
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
fn sample_params(w: &mut InputWriter, sizes: &[(u16, u8)]) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_fit_the_budgets() {
        // The work budgets end long fuzz inputs early; no hand-written scenario may be cut.
        for (name, seed) in ts_mux_seeds() {
            assert!(
                !ts_mux_run(&seed),
                "ts_mux seed {name} exceeds MUX_MAX_OUTPUT"
            );
        }
        for (name, seed) in playlist_window_seeds() {
            assert!(
                !playlist_window_run(&seed),
                "playlist_window seed {name} exceeds PL_MAX_RENDERED"
            );
        }
    }

    #[test]
    fn budgets_end_long_inputs() {
        // 600 steps of 59 s: ~600 PCR-only packets each, far past MUX_MAX_OUTPUT.
        let mut w = InputWriter::new();
        w.u8(MUX_START_PIPELINE);
        for _ in 0..600 {
            w.u8(MUX_STEP_VARINT | MUX_KEYFRAME)
                .varint(59 * TICKS_PER_SEC);
            w.u8(1).u8(0x65);
        }
        assert!(ts_mux_run(&w.finish()));
        // 1 ms segments at a 7 s target: the window grows to thousands of lines.
        let mut w = InputWriter::new();
        w.u8(0x70 | 5).varint(0).u8(0).u32(0);
        for _ in 0..PL_MAX_OPS {
            w.u8(PL_PUSH | PL_DUR_MS).u16(1).u8(0);
        }
        assert!(playlist_window_run(&w.finish()));
    }

    #[test]
    fn ts_mux_checks_catch_a_wrong_pcr_and_a_wrong_random_access_flag() {
        // The PCR and random_access_indicator of each AU are checked on read_segment's report
        // (no separate mpeg2ts pass per file): a seeded error in either is still caught.
        let seeds: HashMap<&str, Vec<u8>> = ts_mux_seeds().into_iter().collect();
        let (run, resume) = ts_mux_output(&seeds["steady_gop30"]);
        verify_ts_output(&run.segments, resume.as_ref(), &run.mux).expect("the muxer's output");
        // The second AU of the first segment (not a keyframe) starts a video packet with an
        // adaptation field carrying a PCR: flags at byte 5, PCR extension ends at byte 11.
        let seg = &run.segments[0];
        let au_packets: Vec<usize> = seg
            .bytes
            .chunks_exact(PACKET_SIZE)
            .enumerate()
            .filter(|(_, p)| {
                p[1] & 0x40 != 0 && u16::from_be_bytes([p[1] & 0x1F, p[2]]) == VIDEO_PID
            })
            .map(|(i, _)| i * PACKET_SIZE)
            .collect();
        let at = au_packets[1];
        assert_eq!(seg.bytes[at + 5] & 0x50, 0x10, "PCR, no random access");
        let broken = |edit: &dyn Fn(&mut Vec<u8>)| {
            let mut segments = run.segments.clone();
            edit(&mut segments[0].bytes);
            verify_ts_output(&segments, resume.as_ref(), &run.mux).expect_err("a seeded error")
        };
        let e = broken(&|b| b[at + 11] ^= 0x01); // PCR one 27 MHz tick off
        assert!(e.contains("PCR"), "{e}");
        let e = broken(&|b| b[at + 5] ^= 0x40); // random_access_indicator on a P-frame
        assert!(e.contains("keyframe"), "{e}");
    }

    /// 1 ms segments at a 7 s target: thousands of renders, each dropping one segment.
    fn one_ms_segments() -> Vec<u8> {
        let mut w = InputWriter::new();
        w.u8(0x70 | 5).varint(0).u8(0).u32(0);
        for _ in 0..PL_MAX_OPS {
            w.u8(PL_PUSH | PL_DUR_MS).u16(1).u8(0);
        }
        w.finish()
    }

    /// 1 s segments at a 1 s target, three listed: every push drops a segment, so most
    /// segments are listed only by renders m3u8-rs does not read on the PL_M3U8_EVERY clock.
    fn short_window() -> Vec<u8> {
        let mut w = InputWriter::new();
        pl_header(&mut w, 3, 1, 0, 0);
        pl_push_target(&mut w, 60);
        w.finish()
    }

    #[test]
    fn m3u8_rs_reads_every_segment_and_daterange_state() {
        // m3u8-rs reads a sample of the renders (PlaylistRun::m3u8_due); every segment URI and
        // every DATERANGE list some render showed must be in a render it read.
        let mut inputs: Vec<(&str, Vec<u8>)> = playlist_window_seeds();
        inputs.push(("one_ms_segments", one_ms_segments()));
        inputs.push(("short_window", short_window()));
        for (name, input) in inputs {
            M3U8_SEEN.with_borrow_mut(|s| *s = Seen::default());
            playlist_window_run(&input);
            let (listed, read) = M3U8_SEEN.take();
            let missed: Vec<&String> = listed.difference(&read).collect();
            assert!(missed.is_empty(), "{name}: m3u8-rs never read {missed:?}");
            assert!(
                listed.len() > 1 || name.starts_with("config"),
                "{name}: {listed:?}"
            );
        }
        // A disagreement about any one segment, even one listed only between samples, fails.
        M3U8_SEEN.with_borrow_mut(|s| *s = Seen::default());
        playlist_window_run(&short_window());
        let (listed, _) = M3U8_SEEN.take();
        let uris: Vec<&String> = listed.iter().filter(|u| u.ends_with(".ts")).collect();
        assert!(uris.len() >= 60, "{uris:?}");
        for uri in uris {
            M3U8_POISON.with_borrow_mut(|p| *p = Some(uri.clone()));
            let caught = std::panic::catch_unwind(|| playlist_window_run(&short_window()));
            M3U8_POISON.with_borrow_mut(|p| *p = None);
            assert!(caught.is_err(), "a poisoned {uri} passed");
        }
    }

    #[test]
    fn input_reads_what_input_writer_writes() {
        let values = [0, 1, 127, 128, 300, 1 << 35, u64::MAX];
        let mut w = InputWriter::new();
        w.u8(7).u16(0xBEEF).u32(0xDEAD_BEEF);
        for v in values {
            w.varint(v);
        }
        for v in [0, -1, 1, i64::MIN, i64::MAX] {
            w.zigzag(v);
        }
        w.bytes(b"abc");
        let bytes = w.finish();
        let mut r = Input::new(&bytes);
        assert_eq!(
            (r.u8(), r.u16(), r.u32()),
            (Some(7), Some(0xBEEF), Some(0xDEAD_BEEF))
        );
        for v in values {
            assert_eq!(r.varint(), Some(v));
        }
        for v in [0, -1, 1, i64::MIN, i64::MAX] {
            assert_eq!(r.zigzag(), Some(v));
        }
        assert_eq!(r.bytes(10), b"abc");
        assert!(r.is_empty());
        assert_eq!((r.u8(), r.varint()), (None, None));
    }

    #[test]
    fn varint_tolerates_overlong_and_truncated_input() {
        // Eleven continuation bytes: ten are read, the value keeps 64 bits.
        let mut r = Input::new(&[0xFF; 11]);
        assert_eq!(r.varint(), Some(u64::MAX));
        assert_eq!(r.u8(), Some(0xFF));
        let mut r = Input::new(&[0x80, 0x80]);
        assert_eq!(r.varint(), None);
    }

    #[test]
    fn demux_seeds_reach_what_they_are_named_after() {
        let seeds: HashMap<&str, Vec<u8>> = ts_demux_seeds().into_iter().collect();
        let read = |name: &str| {
            let (bytes, prev) = demux_input(&seeds[name]);
            read_segment(&bytes, prev.as_ref())
        };
        let report = read("valid_segment").expect("valid");
        assert_eq!(report.aus.len(), 5);
        assert!(
            report.pcr_only_packets > 0,
            "the 250 ms step needs PCR-only packets"
        );
        let report = read("b_frames").expect("valid");
        assert!(report.aus[..2]
            .iter()
            .all(|a| a.dts == Some(a.pts - 2 * FRAME_TICKS)));
        let err = |name: &str| read(name).expect_err(name);
        assert!(err("pat_other_program_crc_fixed").contains("PAT must list one program"));
        assert!(err("pmt_hevc_stream_crc_fixed").contains("PMT must describe"));
        assert!(err("pmt_overlong_program_info").contains("program_info_length"));
        assert!(err("valid_segment_with_prev_cc").contains("previous segment"));
    }

    #[test]
    fn crc32_mpeg2_matches_the_standard_check_value() {
        // The CRC-32/MPEG-2 catalogue check value of "123456789".
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_E6E7);
    }

    #[test]
    fn strict_playlist_reader_catches_each_violation() {
        let good = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
                    #EXT-X-INDEPENDENT-SEGMENTS\n\
                    #EXT-X-DATERANGE:ID=\"a\",START-DATE=\"2026-11-25T12:00:00.000Z\",DURATION=0.000,X-COM-HLSSTREAMER-LABEL=\"a b\"\n\
                    #EXT-X-PROGRAM-DATE-TIME:2026-11-25T12:00:00.000Z\n#EXTINF:2.000,\nchessboard0.ts\n";
        let parsed = check_playlist_text(good).expect("a valid playlist");
        assert_eq!(parsed.segments.len(), 1);
        assert_eq!(parsed.date_ranges[0].label.as_deref(), Some("a b"));
        let cases = [
            ("\u{feff}", "R9"),                                         // BOM
            ("#EXT-X-VERSION:3 \n", "R9"),                              // stray whitespace
            ("#EXTINF:2.000,\r\n", "R9"),                               // CR
            ("#EXTINF:2.500,\n", "R13"),                                // above the target
            ("#EXT-X-VERSION:3\n", "R11"),                              // repeated
            ("#EXT-X-PLAYLIST-TYPE:EVENT\n", "R17"),                    // live with a type
            ("#EXT-X-DISCONTINUITY\n", "R16"),                          // without the sequence
            ("#EXT-X-DATERANGE:ID=\"a\"b\"\n", "R37"),                  // quote inside quotes
            ("#EXT-X-DATERANGE:id=\"a\"\n", "R37"),                     // lower-case name
            ("#EXT-X-DATERANGE:ID=\"b\",ID=\"c\"\n", "R37"),            // duplicate attribute
            ("#EXT-X-DATERANGE:ID=\"b\",DURATION=-1.000\n", "R35"),     // negative
            ("#EXT-X-PROGRAM-DATE-TIME:2026-11-25T12:00:00Z\n", "R32"), // no ms
        ];
        let insert_at = good.find("#EXT-X-PROGRAM-DATE-TIME").expect("a PDT line");
        for (bad, rule) in cases {
            let text = if bad == "\u{feff}" {
                format!("{bad}{good}")
            } else if bad.starts_with("#EXTINF") {
                good.replacen("#EXTINF:2.000,\n", bad, 1)
            } else {
                format!("{}{bad}{}", &good[..insert_at], &good[insert_at..])
            };
            let err = check_playlist_text(&text).expect_err(bad);
            assert!(err.contains(rule), "{bad:?}: {err}");
        }
    }

    #[test]
    fn ts_checks_catch_a_skipped_counter_and_a_foreign_reader_result() {
        let mut params = InputWriter::new();
        sample_params(&mut params, &[(500, 0), (500, 0)]);
        let seg = sample_segment(&mut Input::new(&params.finish()));
        check_read_segment(&seg, None).expect("a valid segment passes");
        // A segment the reader accepts but whose last_cc is then checked against the bytes:
        // flipping a counter must make read_segment refuse (and the check stays quiet).
        let mut bad = seg.clone();
        bad[3 * PACKET_SIZE + 3] ^= 0x01;
        assert!(read_segment(&bad, None).is_err());
        check_read_segment(&bad, None).expect("a refusal that names its packet is fine");
        // The error-context check itself fails on a made-up message.
        assert!(check_error_context(&seg, "packet 99999 (byte 0), PID 0x0100: x").is_err());
    }
}
