//! `ts_mux`: the TS muxer driven by fuzz input, its output read back independently.

use std::sync::atomic::{AtomicU8, Ordering};

use super::*;

// ---------------------------------------------------------------------------------------------
// ts_mux
// ---------------------------------------------------------------------------------------------

/// Operations decoded from one `ts_mux` input at most (bounds the run time of one input).
const MUX_MAX_OPS: usize = 512;
/// Largest access unit one operation builds (an IDR at a high bit rate is ~150 kB).
const MUX_MAX_AU_LEN: usize = 256 * 1024;
/// TS bytes (PCR-only packets included) one input may have written before its operation list
/// ends. Every byte is read back (the raw scan, then `read_segment` with mpeg2ts's packet
/// reader, whose packets mpeg2ts's PES reader reassembles), so this bounds the run time of one
/// input: a DTS step of up to 60 s adds up to 600 PCR-only packets, so 512 steps without this
/// budget could write 57 MB from 3 kB of input. 192 KiB leaves room for the 150 kB IDR seed;
/// the hand-written seeds stay under it (`tests::seeds_fit_the_budgets`).
const MUX_MAX_OUTPUT: usize = 192 * 1024;
/// One frame at 30 fps.
pub(crate) const FRAME_TICKS: u64 = 3_000;
/// Where the pipeline starts its stream clock (above `PCR_LEAD`, so the first PCR is positive).
pub(crate) const STREAM_START: u64 = 10 * TICKS_PER_SEC;
pub(crate) const MASK_33: u64 = TIMESTAMP_MODULUS - 1;
/// The PCR counts 27 MHz ticks modulo 2^33 * 300.
pub(crate) const PCR_MODULUS: u64 = TIMESTAMP_MODULUS * 300;
pub(crate) const OUR_PIDS: [u16; 3] = [PAT_PID, PMT_PID, VIDEO_PID];

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
pub(crate) struct SentAu {
    /// Our AUD and the access unit as pushed; the PES payload is `bytes[payload_start..]`.
    bytes: Vec<u8>,
    payload_start: usize,
    pts: u64,
    dts: u64,
    keyframe: bool,
}

/// One segment file as written, and the access units it must contain.
#[derive(Clone, Debug, Default)]
pub(crate) struct SentSegment {
    pub(crate) bytes: Vec<u8>,
    pub(crate) aus: Vec<SentAu>,
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

    /// Whether this is the first refusal of its kind in this process. The message's "PID 0x0100"
    /// and "PTS" are literals of each variant's format string, and formatting cannot fail for
    /// any value (`head_shown` clamps), so what the text check proves is proved by the first
    /// error of each kind; formatting every refusal took 11 % of the fuzz target's time.
    fn first_in_process(self) -> bool {
        static SEEN: AtomicU8 = AtomicU8::new(0);
        let bit = 1u8 << (self as u8);
        SEEN.fetch_or(bit, Ordering::Relaxed) & bit == 0
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

impl SentAu {
    /// The PES payload the muxer must write: an AUD in front of the access unit unless its
    /// first NAL unit already is one (nal_unit_type 9).
    fn payload(&self) -> &[u8] {
        &self.bytes[self.payload_start..]
    }
}

/// Where the PES payload starts in our AUD followed by access unit `data` (see
/// [`SentAu::payload`]).
fn payload_start(data: &[u8]) -> usize {
    if annex_b_nal_header(data).is_some_and(|h| h & 0x1F == 9) {
        AUD.len()
    } else {
        0
    }
}

/// Appends `len` bytes of `pattern` repeated (the bytes of `pattern.iter().cycle().take(len)`),
/// by doubling copies: a loop per byte costs a traced comparison per byte in the fuzz build.
pub(crate) fn push_repeated(out: &mut Vec<u8>, pattern: &[u8], len: usize) {
    let start = out.len();
    out.reserve(len);
    out.extend_from_slice(&pattern[..pattern.len().min(len)]);
    while out.len() - start < len {
        let have = out.len() - start;
        out.extend_from_within(start..start + have.min(len - have));
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
pub(crate) fn ts_mux_run(data: &[u8]) -> bool {
    let (run, resume) = ts_mux_output(data);
    if let Err(e) = verify_ts_output(&run.segments, resume.as_ref(), &run.mux) {
        panic!("ts_mux: {e}");
    }
    run.budget_hit
}

/// Runs the operations of a `ts_mux` input; the segments are checked by [`verify_ts_output`].
pub(crate) fn ts_mux_output(data: &[u8]) -> (MuxRun, Option<BTreeMap<u16, u8>>) {
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

pub(crate) struct MuxRun {
    pub(crate) mux: TsMuxer,
    pub(crate) segments: Vec<SentSegment>,
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
        // Our AUD, the framing and the body in one buffer: the access unit is `bytes[AUD.len()..]`,
        // the PES payload it must read back as is a suffix too (SentAu::payload).
        let framing: &[u8] = match op & 0x60 {
            MUX_FRAMING_START4 => &[0, 0, 0, 1],
            MUX_FRAMING_START3 => &[0, 0, 1],
            MUX_FRAMING_AUD => &AUD,
            _ => &[],
        };
        let mut bytes = AUD.to_vec();
        bytes.extend_from_slice(framing);
        if op & MUX_BIG != 0 {
            let len = usize::try_from(input.varint()?)
                .unwrap_or(usize::MAX)
                .min(MUX_MAX_AU_LEN);
            let pattern_len = usize::from(input.u8()? % 32) + 1;
            let pattern = input.bytes(pattern_len);
            if pattern.is_empty() {
                return None;
            }
            push_repeated(&mut bytes, pattern, len);
        } else {
            let len = usize::from(input.u8()?);
            bytes.extend_from_slice(input.bytes(len));
        }
        let data = &bytes[AUD.len()..];
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
            data,
            pts: Pts(pts),
            dts: (op & MUX_DTS != 0).then_some(Pts(dts)),
            keyframe,
        };
        let expected = expected_refusals(data, pts, dts, self.last_dts);
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
                let payload_start = payload_start(data);
                seg.aus.push(SentAu {
                    bytes,
                    payload_start,
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
                if refusal.first_in_process() {
                    let text = e.to_string();
                    assert!(
                        text.contains("PID 0x0100") && text.contains("PTS"),
                        "ts_mux: the error does not say where: {text}"
                    );
                }
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
pub(crate) fn verify_ts_output(
    segments: &[SentSegment],
    resume: Option<&BTreeMap<u16, u8>>,
    mux: &TsMuxer,
) -> Result<(), String> {
    // Raw scan: packets, sync bytes, R3 order, continuity counters across files (R1). The
    // counters per PID of OUR_PIDS (in that order; a map per file for read_segment).
    let mut cc: [Option<u8>; 3] =
        OUR_PIDS.map(|pid| resume.and_then(|r| r.get(&pid)).map(|&c| c & 0x0F));
    let cc_map = |cc: &[Option<u8>; 3]| -> BTreeMap<u16, u8> {
        OUR_PIDS
            .iter()
            .zip(cc)
            .filter_map(|(&pid, c)| Some((pid, (*c)?)))
            .collect()
    };
    let mut starts = Vec::with_capacity(segments.len());
    for (s, seg) in segments.iter().enumerate() {
        if seg.bytes.len() % PACKET_SIZE != 0 || seg.bytes.len() < 2 * PACKET_SIZE {
            return Err(format!(
                "segment {s}: {} bytes is not PAT + PMT + whole {PACKET_SIZE}-byte packets",
                seg.bytes.len()
            ));
        }
        starts.push(cc_map(&cc));
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
            let Some(k) = OUR_PIDS.iter().position(|&p| p == pid) else {
                return Err(format!("{}: not one of our PIDs", at()));
            };
            let got = p[3] & 0x0F;
            let has_payload = p[3] & 0x10 != 0;
            let want = match cc[k] {
                Some(prev) if has_payload => (prev + 1) & 0x0F,
                Some(prev) => prev,
                None => 0,
            };
            if got != want {
                return Err(format!(
                    "{}: R1: continuity counter {got}, expected {want} (payload: {has_payload})",
                    at()
                ));
            }
            cc[k] = Some(got);
        }
    }
    let last_cc = cc_map(&cc);
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
    // counters. A segment without access units (PAT and PMT only), which `read_segment`
    // refuses, is checked on the packets mpeg2ts parsed. The PCRs of all files are chained
    // below. `packets` keeps every packet mpeg2ts parsed, for its PES reader after the loop: a
    // fresh TsPacketReader per file parses the same packets as one over the whole stream, as
    // every file starts with PAT and PMT.
    let mut last_pcr: Option<(usize, u64)> = None;
    let mut packets: Vec<TsPacket> =
        Vec::with_capacity(segments.iter().map(|s| s.bytes.len() / PACKET_SIZE).sum());
    for (s, seg) in segments.iter().enumerate() {
        let end_cc = starts.get(s + 1).unwrap_or(&last_cc);
        let first = packets.len();
        let pcrs = match read_segment_keeping(&seg.bytes, Some(&starts[s]), Some(&mut packets)) {
            Err(e) if seg.aus.is_empty() => {
                if !e.starts_with("no access units") {
                    return Err(format!(
                        "segment {s} (no AUs sent): read_segment refuses it for another reason: {e}"
                    ));
                }
                psi_only_segment(s, &packets[first..])?
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
    // It reads the packets mpeg2ts's packet reader parsed above, each byte once.
    let mut reader = ParsedPesReader::new(packets);
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
        if pes.data != au.payload() {
            return Err(format!(
                "PES {k}: payload of {} bytes differs from the {} bytes sent (AUD included)",
                pes.data.len(),
                au.payload().len()
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

/// A segment the muxer wrote without access units, as mpeg2ts's packet reader parsed it (all
/// of it: `read_segment` refuses it only at the end): PAT and PMT describing our program,
/// nothing else but PCR-only packets. Returns its PCRs.
fn psi_only_segment(s: usize, packets: &[TsPacket]) -> Result<Vec<u64>, String> {
    let mut pcrs = Vec::new();
    for (i, packet) in packets.iter().enumerate() {
        let at = || format!("segment {s} packet {i}");
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
        if got.payload != sent.payload()
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
                sent.payload().len()
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
