//! Read-back and validation of one segment file, for tests and fuzzers.
//!
//! [`read_segment`] parses the bytes with `mpeg2ts`'s `TsPacketReader` (an implementation
//! independent of our writer) and checks them against ISO/IEC 13818-1 and against the layout
//! [`hls::ts::TsMuxer`] promises: 188-byte packets with sync byte 0x47 (§2.4.3.2), continuity
//! counters per PID (§2.4.3.3) continuing from the previous file (HLS R1), PAT and PMT as the
//! first two packets (R3) describing our single program, one video PES per access unit starting
//! with an AUD, PTS on every PES, DTS only when it differs, DTS advancing modulo 2^33, a PCR on
//! every keyframe and never more than 100 ms after the previous one (§2.7.2).
//!
//! It never panics, whatever the input: `mpeg2ts` 0.6.1's PMT parser panics (`split_at` out of
//! range) on a CRC-valid section whose program_info_length exceeds the section, so PMT packets
//! are bounds-checked here before `mpeg2ts` sees them.

use std::collections::BTreeMap;

use mpeg2ts::ts::payload::{Pat, Pes, Pmt};
use mpeg2ts::ts::{AdaptationField, TransportScramblingControl, TsPacket, TsPayload};

use hls_testkit_readers::SliceTsReader;
/// Packets kept by [`read_segment_keeping`], replayed to `mpeg2ts`'s PES reader.
pub use hls_testkit_readers::{ParsedPackets, ParsedPesReader};

use hls::ts::{
    MAX_PCR_INTERVAL, PACKET_SIZE, PAT_PID, PMT_PID, PROGRAM_NUMBER, STREAM_TYPE_H264,
    TIMESTAMP_MODULUS, VIDEO_PID, VIDEO_STREAM_ID,
};

/// How many leading packet PIDs [`SegmentReport::first_pids`] keeps.
pub const FIRST_PIDS_LEN: usize = 3;

/// The PCR counts 27 MHz ticks modulo 2^33 * 300.
pub(crate) const PCR_MODULUS: u64 = TIMESTAMP_MODULUS * 300;
const MAX_PCR_GAP: u64 = MAX_PCR_INTERVAL.0 * 300;

/// One access unit as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedAu {
    /// PTS as written (33 bits).
    pub pts: u64,
    /// DTS as written, when present.
    pub dts: Option<u64>,
    /// random_access_indicator of the AU's first packet.
    pub keyframe: bool,
    /// The PES payload: AUD included.
    pub payload: Vec<u8>,
    /// PCR (27 MHz, as written) in the AU's first packet.
    pub pcr: Option<u64>,
    /// Index of the AU's first packet in the segment.
    pub first_packet: usize,
}

/// What [`read_segment`] found in one segment file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SegmentReport {
    pub aus: Vec<ParsedAu>,
    /// Number of 188-byte packets.
    pub packets: usize,
    /// PIDs of the first [`FIRST_PIDS_LEN`] packets (R3: PAT, PMT, then video).
    pub first_pids: Vec<u16>,
    /// continuity_counter of the last packet of each PID: pass it as `prev_cc` for the next file.
    pub last_cc: BTreeMap<u16, u8>,
    pub pat_count: usize,
    pub pmt_count: usize,
    /// Every PCR in packet order (27 MHz, as written), PCR-only packets included.
    pub pcrs: Vec<u64>,
    /// Adaptation-field-only packets carrying a PCR between access units.
    pub pcr_only_packets: usize,
}

/// Parses one segment file's bytes with `mpeg2ts`'s reader; errors on any 188/sync/CC violation
/// and on anything [`hls::ts::TsMuxer`] would not have written. `prev_cc` carries the counters of
/// the previous segment ([`SegmentReport::last_cc`]) to check continuity across files (`None`
/// for the first file, or after a discontinuity). Errors name the packet, its byte offset and PID.
pub fn read_segment(
    bytes: &[u8],
    prev_cc: Option<&BTreeMap<u16, u8>>,
) -> Result<SegmentReport, String> {
    read_segment_keeping(bytes, prev_cc, None)
}

/// [`read_segment`], which also appends every packet `mpeg2ts` parsed, in order, to `keep`
/// (when given): a caller that feeds them to `mpeg2ts`'s `PesPacketReader` (through
/// [`ParsedPesReader`]) gets the same PES packets as from the bytes, without parsing each byte a
/// second time ([`ParsedPesReader`]). On `Err`, `keep` holds the packets read before the error.
pub fn read_segment_keeping(
    bytes: &[u8],
    prev_cc: Option<&BTreeMap<u16, u8>>,
    mut keep: Option<&mut Vec<TsPacket>>,
) -> Result<SegmentReport, String> {
    if bytes.is_empty() {
        return Err("empty segment: expected PAT, PMT and access units".to_owned());
    }
    if bytes.len() % PACKET_SIZE != 0 {
        return Err(format!(
            "{} bytes is not a whole number of {PACKET_SIZE}-byte packets",
            bytes.len()
        ));
    }
    let mut reader = SegmentReader {
        prev_cc,
        ..SegmentReader::default()
    };
    let mut ts = SliceTsReader::new(bytes);
    for (index, raw) in bytes.chunks_exact(PACKET_SIZE).enumerate() {
        let pid = u16::from_be_bytes([raw[1] & 0x1F, raw[2]]);
        let packet = reader.packet(index, pid, raw, &mut ts).map_err(|e| {
            format!(
                "packet {index} (byte {}), PID {pid:#06x}: {e}",
                index * PACKET_SIZE
            )
        })?;
        if let Some(keep) = keep.as_deref_mut() {
            keep.push(packet);
        }
    }
    reader
        .finish_au()
        .map_err(|e| format!("last access unit: {e}"))?;
    let report = reader.report;
    if report.aus.is_empty() {
        return Err(format!("no access units in {} packets", report.packets));
    }
    Ok(report)
}

#[derive(Default)]
struct SegmentReader<'a> {
    prev_cc: Option<&'a BTreeMap<u16, u8>>,
    report: SegmentReport,
    current: Option<ParsedAu>,
    /// DTS (or PTS) of the previous access unit, 33 bits.
    last_decode: Option<u64>,
    last_pcr: Option<u64>,
}

impl SegmentReader<'_> {
    fn packet(
        &mut self,
        index: usize,
        pid: u16,
        raw: &[u8],
        ts: &mut SliceTsReader<'_>,
    ) -> Result<TsPacket, String> {
        self.report.packets += 1;
        if raw[0] != 0x47 {
            return Err(format!("sync byte {:#04x}, expected 0x47", raw[0]));
        }
        if index < FIRST_PIDS_LEN {
            self.report.first_pids.push(pid);
        }
        match (index, pid) {
            (0, PAT_PID) | (1, PMT_PID) => {}
            (0, _) => return Err("R3: the first packet must be the PAT".to_owned()),
            (1, _) => return Err("R3: the second packet must be the PMT".to_owned()),
            (_, PAT_PID | PMT_PID | VIDEO_PID) => {}
            _ => return Err("unexpected PID (this stream has PAT, PMT and video only)".to_owned()),
        }
        if pid == PMT_PID {
            precheck_pmt(raw)?;
        }
        let packet = ts
            .read_ts_packet()
            .map_err(|e| format!("mpeg2ts: {:?}: {}", e.kind, e.reason))?
            .ok_or("mpeg2ts: unexpected end of stream")?;
        let header = &packet.header;
        if header.transport_error_indicator {
            return Err("transport_error_indicator set".to_owned());
        }
        if header.transport_scrambling_control != TransportScramblingControl::NotScrambled {
            return Err("scrambled packet".to_owned());
        }
        let has_payload = raw[3] & 0x10 != 0; // adaptation_field_control 01 or 11
        let pusi = raw[1] & 0x40 != 0;
        self.check_cc(pid, header.continuity_counter.as_u8(), has_payload)?;

        let af = packet.adaptation_field.as_ref();
        if let Some(af) = af {
            if af.discontinuity_indicator {
                return Err("discontinuity_indicator set".to_owned());
            }
            if pid != VIDEO_PID && (af.pcr.is_some() || af.random_access_indicator) {
                return Err("PCR or random_access_indicator off the video PID".to_owned());
            }
        }
        match packet.payload {
            Some(TsPayload::Pat(ref pat)) if pusi => {
                check_pat(pat)?;
                self.report.pat_count += 1;
            }
            Some(TsPayload::Pmt(ref pmt)) if pusi => {
                check_pmt(pmt)?;
                self.report.pmt_count += 1;
            }
            Some(TsPayload::Pat(_) | TsPayload::Pmt(_)) => {
                return Err("PSI packet without payload_unit_start_indicator".to_owned());
            }
            Some(TsPayload::PesStart(ref pes)) => {
                self.finish_au()?;
                self.start_au(index, pid, pes, af)?;
            }
            Some(TsPayload::PesContinuation(ref data)) => {
                if af.is_some_and(|a| a.random_access_indicator) {
                    return Err("random_access_indicator past an AU's first packet".to_owned());
                }
                let au = self
                    .current
                    .as_mut()
                    .ok_or("PES continuation without a PES start")?;
                au.payload.extend_from_slice(data);
            }
            None => {
                if pusi {
                    return Err(
                        "payload_unit_start_indicator on a packet without payload".to_owned()
                    );
                }
                if af.and_then(|a| a.pcr).is_none() {
                    return Err("adaptation-field-only packet without PCR".to_owned());
                }
                self.report.pcr_only_packets += 1;
            }
            Some(_) => return Err("unexpected payload type".to_owned()),
        }
        if let Some(pcr) = af.and_then(|a| a.pcr) {
            self.note_pcr(pcr.as_u64())?;
        }
        Ok(packet)
    }

    fn check_cc(&mut self, pid: u16, cc: u8, has_payload: bool) -> Result<(), String> {
        let in_file = self.report.last_cc.get(&pid).map(|&c| (c, ""));
        let previous = in_file.or_else(|| {
            self.prev_cc?
                .get(&pid)
                .map(|&c| (c, " in the previous segment"))
        });
        if let Some((prev, whence)) = previous {
            // Only packets with payload advance the counter (§2.4.3.3). We never write the one
            // duplicate packet the standard allows, so a repeat is an error here.
            let expected = if has_payload {
                prev.wrapping_add(1) & 0x0F
            } else {
                prev & 0x0F
            };
            if cc != expected {
                return Err(format!(
                    "continuity counter {cc}, expected {expected} (previous {prev}{whence})"
                ));
            }
        }
        self.report.last_cc.insert(pid, cc);
        Ok(())
    }

    fn start_au(
        &mut self,
        index: usize,
        pid: u16,
        pes: &Pes,
        af: Option<&AdaptationField>,
    ) -> Result<(), String> {
        if pid != VIDEO_PID {
            return Err("PES off the video PID".to_owned());
        }
        let h = &pes.header;
        if h.stream_id.as_u8() != VIDEO_STREAM_ID {
            return Err(format!(
                "stream_id {:#04x}, expected {VIDEO_STREAM_ID:#04x}",
                h.stream_id.as_u8()
            ));
        }
        if pes.pes_packet_len != 0 {
            return Err(format!(
                "PES_packet_length {}, expected 0",
                pes.pes_packet_len
            ));
        }
        if !h.data_alignment_indicator {
            return Err("data_alignment_indicator not set".to_owned());
        }
        let pts = h.pts.ok_or("PES without PTS")?.as_u64();
        let dts = h.dts.map(|t| t.as_u64());
        let decode = dts.unwrap_or(pts);
        if dts == Some(pts) {
            return Err(format!("DTS {pts} written although equal to the PTS"));
        }
        if forward(decode, pts, TIMESTAMP_MODULUS).is_none() {
            return Err(format!("PTS {pts} before DTS {decode} (mod 2^33)"));
        }
        if let Some(prev) = self.last_decode {
            if forward(prev, decode, TIMESTAMP_MODULUS).is_none_or(|step| step == 0) {
                return Err(format!(
                    "DTS {decode} does not advance past {prev} (mod 2^33)"
                ));
            }
        }
        self.last_decode = Some(decode);

        let keyframe = af.is_some_and(|a| a.random_access_indicator);
        let pcr = af.and_then(|a| a.pcr).map(|p| p.as_u64());
        if keyframe && pcr.is_none() {
            return Err("keyframe without PCR".to_owned());
        }
        if let Some(pcr) = pcr {
            if forward(pcr, decode * 300, PCR_MODULUS).is_none() {
                return Err(format!("PCR {pcr} (27 MHz) is later than DTS {decode}"));
            }
        }
        self.current = Some(ParsedAu {
            pts,
            dts,
            keyframe,
            payload: pes.data.to_vec(),
            pcr,
            first_packet: index,
        });
        Ok(())
    }

    fn finish_au(&mut self) -> Result<(), String> {
        let Some(au) = self.current.take() else {
            return Ok(());
        };
        let starts_with_aud =
            matches!(au.payload[..], [0, 0, 0, 1, b, ..] | [0, 0, 1, b, ..] if b & 0x1F == 9);
        if !starts_with_aud {
            return Err(format!(
                "access unit from packet {} (PTS {}) does not start with an AUD",
                au.first_packet, au.pts
            ));
        }
        self.report.aus.push(au);
        Ok(())
    }

    fn note_pcr(&mut self, pcr: u64) -> Result<(), String> {
        if let Some(prev) = self.last_pcr {
            match forward(prev, pcr, PCR_MODULUS) {
                Some(gap) if gap > 0 && gap <= MAX_PCR_GAP => {}
                _ => {
                    return Err(format!(
                        "PCR {pcr} after {prev} (27 MHz): must advance by at most 100 ms"
                    ))
                }
            }
        }
        self.last_pcr = Some(pcr);
        self.report.pcrs.push(pcr);
        Ok(())
    }
}

/// `to - from` modulo `modulus`, if that is less than half the modulus (i.e. `to` is not before
/// `from` on the wrapping clock).
fn forward(from: u64, to: u64, modulus: u64) -> Option<u64> {
    let d = (to % modulus + modulus - from % modulus) % modulus;
    (d < modulus / 2).then_some(d)
}

fn check_pat(pat: &Pat) -> Result<(), String> {
    match pat.table[..] {
        [ref p] if p.program_num == PROGRAM_NUMBER && p.program_map_pid.as_u16() == PMT_PID => {
            Ok(())
        }
        _ => Err(format!(
            "PAT must list one program ({PROGRAM_NUMBER} on PID {PMT_PID:#06x}), found {:?}",
            pat.table
        )),
    }
}

fn check_pmt(pmt: &Pmt) -> Result<(), String> {
    let ours = pmt.program_num == PROGRAM_NUMBER
        && pmt.pcr_pid.map(|p| p.as_u16()) == Some(VIDEO_PID)
        && matches!(pmt.es_info[..], [ref es] if es.stream_type as u8 == STREAM_TYPE_H264
            && es.elementary_pid.as_u16() == VIDEO_PID);
    if ours {
        Ok(())
    } else {
        Err(format!(
            "PMT must describe program {PROGRAM_NUMBER} with one H.264 stream on PID \
             {VIDEO_PID:#06x} carrying PCR, found {pmt:?}"
        ))
    }
}

/// Bounds-checks a PMT packet's program_info_length before `mpeg2ts` parses it (its parser
/// panics when that length exceeds the section).
fn precheck_pmt(raw: &[u8]) -> Result<(), String> {
    let afc = (raw[3] >> 4) & 0b11;
    if afc & 0b01 == 0 {
        return Ok(()); // no payload, nothing for mpeg2ts to parse as a section
    }
    let mut at = 4;
    if afc & 0b10 != 0 {
        at += 1 + usize::from(raw[4]);
    }
    // pointer_field, table_id, then 12 bits of section_length.
    let head = raw
        .get(at..at + 4)
        .ok_or("PMT section header beyond the packet")?;
    if head[0] != 0 {
        return Err(format!("PMT pointer_field {}, expected 0", head[0]));
    }
    let section_len = usize::from(u16::from_be_bytes([head[2], head[3]]) & 0x03FF);
    // 5 syntax bytes, then PCR_PID (2) and program_info_length (2), ..., CRC_32 (4).
    if section_len < 5 + 4 + 4 {
        return Err(format!("PMT section_length {section_len} too short"));
    }
    let section = at + 1 + 3; // first byte after section_length
    let table = raw
        .get(section + 5..section + section_len - 4)
        .ok_or("PMT section runs past the packet")?;
    let program_info_len = usize::from(u16::from_be_bytes([table[2], table[3]]) & 0x03FF);
    if program_info_len > table.len() - 4 {
        return Err(format!(
            "PMT program_info_length {program_info_len} exceeds the section"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crc32_mpeg2;
    use hls::time::Pts;
    use hls::ts::{AccessUnit, TsMuxer};
    use mpeg2ts::ts::{ReadTsPacket, TsPacketReader};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    // Helpers as in `hls::ts`'s unit tests (private there).

    /// Frame duration at 30 fps in 90 kHz ticks.
    const FRAME: u64 = 3_000;
    /// Stream clock offset: above PCR_LEAD, like the real pipeline's.
    const T0: u64 = 10 * 90_000;

    /// The PAT and PMT packets a fresh muxer writes (continuity counter 0).
    fn psi_packets() -> ([u8; PACKET_SIZE], [u8; PACKET_SIZE]) {
        let mut out = Vec::new();
        TsMuxer::new().start_segment(&mut out);
        assert_eq!(out.len(), 2 * PACKET_SIZE);
        let pat = out[..PACKET_SIZE].try_into().expect("one packet");
        let pmt = out[PACKET_SIZE..].try_into().expect("one packet");
        (pat, pmt)
    }

    use crate::fake_au;

    struct Frame {
        data: Vec<u8>,
        pts: u64,
        keyframe: bool,
    }

    /// `count` frames at 30 fps from `start`, a keyframe every `gop`, sizes from `size`.
    fn frames(
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
                    keyframe,
                }
            })
            .collect()
    }

    /// Muxes `frames` into segments, starting a new one at every keyframe; checks invariants
    /// after every call. Returns each segment's bytes.
    fn mux_segments(mux: &mut TsMuxer, frames: &[Frame]) -> Vec<Vec<u8>> {
        let mut segments: Vec<Vec<u8>> = Vec::new();
        for f in frames {
            if f.keyframe || segments.is_empty() {
                segments.push(Vec::new());
                mux.start_segment(segments.last_mut().expect("just pushed"));
                mux.check_invariants()
                    .expect("invariants after start_segment");
            }
            let out = segments.last_mut().expect("a segment is open");
            let au = AccessUnit {
                data: &f.data,
                pts: Pts(f.pts),
                dts: None,
                keyframe: f.keyframe,
            };
            mux.push(&au, out).expect("valid access unit");
            mux.check_invariants().expect("invariants after push");
        }
        segments
    }

    /// Reads all segments in order, each checked against the previous one's counters.
    fn read_all(segments: &[Vec<u8>]) -> Vec<SegmentReport> {
        let mut reports: Vec<SegmentReport> = Vec::new();
        for (i, seg) in segments.iter().enumerate() {
            let prev = reports.last().map(|r| &r.last_cc);
            let report = read_segment(seg, prev)
                .unwrap_or_else(|e| panic!("segment {i} does not read back: {e}"));
            reports.push(report);
        }
        reports
    }

    fn sample(seed: u64, count: usize, gop: usize) -> Vec<Vec<u8>> {
        let mut rng = StdRng::seed_from_u64(seed);
        let frames = frames(&mut rng, T0, count, gop, |rng, _| {
            rng.random_range(5..1_500)
        });
        mux_segments(&mut TsMuxer::new(), &frames)
    }

    #[test]
    fn reports_what_the_muxer_wrote() {
        let segments = sample(20, 20, 10);
        let reports = read_all(&segments);
        for (seg, r) in segments.iter().zip(&reports) {
            assert_eq!(r.packets * PACKET_SIZE, seg.len());
            assert_eq!(r.aus.len(), 10);
            assert_eq!(
                r.pcrs.len(),
                10,
                "one PCR per AU at 30 fps, no PCR-only packets"
            );
            assert_eq!(r.pcr_only_packets, 0);
            assert_eq!(r.first_pids, vec![PAT_PID, PMT_PID, VIDEO_PID]);
            assert_eq!(r.aus[0].first_packet, 2);
            assert!(r.aus[0].keyframe && r.aus[1..].iter().all(|a| !a.keyframe));
            let last_video_cc = seg[seg.len() - PACKET_SIZE + 3] & 0x0F;
            assert_eq!(r.last_cc.get(&VIDEO_PID), Some(&last_video_cc));
        }
    }

    fn packets(bytes: &[u8]) -> Vec<&[u8]> {
        bytes.chunks(PACKET_SIZE).collect()
    }

    fn expect_error(bytes: &[u8], prev: Option<&BTreeMap<u16, u8>>, needle: &str) {
        let err = read_segment(bytes, prev).expect_err("a broken segment must be refused");
        assert!(err.contains(needle), "expected {needle:?} in: {err}");
    }

    #[test]
    fn refuses_broken_segments_and_names_the_packet() {
        let segments = sample(21, 20, 10);
        let seg = &segments[0];
        let n = seg.len() / PACKET_SIZE;
        assert!(n > 6);

        expect_error(&[], None, "empty");
        expect_error(&seg[..seg.len() - 1], None, "whole number");
        let mut bad = seg.clone();
        bad[4 * PACKET_SIZE] = 0x46;
        expect_error(&bad, None, "packet 4 (byte 752), PID");
        // A lost packet breaks the video continuity counter.
        let lost: Vec<u8> = packets(seg)
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 4)
            .flat_map(|(_, p)| p.to_vec())
            .collect();
        expect_error(&lost, None, "continuity counter");
        // A duplicated packet too.
        let dup: Vec<u8> = [&seg[..5 * PACKET_SIZE], &seg[4 * PACKET_SIZE..]].concat();
        expect_error(&dup, None, "continuity counter");
        // R3: without PAT first.
        expect_error(&seg[PACKET_SIZE..], None, "R3");
        // PAT, PAT, ...: the PMT is not second.
        let two_pats: Vec<u8> = [&seg[..PACKET_SIZE], seg].concat();
        expect_error(&two_pats, None, "R3");
        // A packet on a foreign PID.
        let mut bad = seg.clone();
        bad[5 * PACKET_SIZE + 1] = 0x1F; // PID 0x1Fxx
        expect_error(&bad, None, "unexpected PID");
        // transport_error_indicator.
        let mut bad = seg.clone();
        bad[3 * PACKET_SIZE + 1] |= 0x80;
        expect_error(&bad, None, "transport_error_indicator");
        // Counters from a wrong previous file.
        let wrong: BTreeMap<u16, u8> = [(PAT_PID, 3), (PMT_PID, 3), (VIDEO_PID, 3)].into();
        expect_error(&segments[1], Some(&wrong), "previous segment");
        // Only PAT and PMT: no access units.
        expect_error(&seg[..2 * PACKET_SIZE], None, "no access units");
    }

    #[test]
    fn checks_pcr_only_packets_and_detects_a_pcr_gap_over_100_ms() {
        // 2 fps: the muxer adds PCR-only packets; removing them leaves 500 ms gaps. They do not
        // advance the counter, so the continuity check alone would not notice.
        let mut rng = StdRng::seed_from_u64(22);
        let mut frames = frames(&mut rng, T0, 4, 4, |rng, _| rng.random_range(5..500));
        for (i, f) in frames.iter_mut().enumerate() {
            f.pts = T0 + i as u64 * 45_000;
        }
        let seg = mux_segments(&mut TsMuxer::new(), &frames).concat();
        let report = read_segment(&seg, None).expect("valid with PCR-only packets");
        assert_eq!(report.pcr_only_packets, 3 * 4);
        let stripped: Vec<u8> = packets(&seg)
            .into_iter()
            .filter(|p| (p[3] >> 4) & 0b11 != 0b10)
            .flatten()
            .copied()
            .collect();
        expect_error(&stripped, None, "at most 100 ms");
        // An adaptation-field-only packet must not claim to start a payload unit.
        let af_only = packets(&seg)
            .iter()
            .position(|p| (p[3] >> 4) & 0b11 == 0b10)
            .expect("a PCR-only packet");
        let mut bad = seg.clone();
        bad[af_only * PACKET_SIZE + 1] |= 0x40;
        expect_error(
            &bad,
            None,
            "payload_unit_start_indicator on a packet without payload",
        );
    }

    #[test]
    fn overlong_program_info_in_a_crc_valid_pmt_is_an_error_not_a_panic() {
        // PMT with program_info_length 0x3FF and a correct CRC_32.
        let (pat_packet, mut pmt) = psi_packets();
        pmt[5 + 10] = 0xF3; // reserved '1111', unused '00', program_info_length bits 9..8 = 11
        pmt[5 + 11] = 0xFF; // program_info_length bits 7..0
        let crc = crc32_mpeg2(&pmt[5..5 + 17]).to_be_bytes();
        pmt[5 + 17..5 + 21].copy_from_slice(&crc);
        let bytes = [&pat_packet[..], &pmt[..]].concat();

        // Why the precheck exists: mpeg2ts 0.6.1 alone panics on these bytes.
        let panicked = std::panic::catch_unwind(|| {
            let mut reader = TsPacketReader::new(&bytes[..]);
            while let Ok(Some(_)) = reader.read_ts_packet() {}
        })
        .is_err();
        assert!(
            panicked,
            "mpeg2ts no longer panics here; the precheck may be dropped"
        );

        expect_error(&bytes, None, "program_info_length 1023 exceeds the section");
    }

    #[test]
    fn never_panics_on_garbage_or_mutated_segments() {
        let mut rng = StdRng::seed_from_u64(23);
        for _ in 0..3_000 {
            let packets = rng.random_range(0..6);
            let mut bytes: Vec<u8> = (0..packets * PACKET_SIZE + rng.random_range(0..2))
                .map(|_| rng.random())
                .collect();
            for p in bytes.chunks_exact_mut(PACKET_SIZE) {
                p[0] = 0x47;
                if rng.random_bool(0.5) {
                    p[1] &= 0xE0; // PID 0 or PMT_PID, so the parsers get to run
                    p[2] = 0;
                    if rng.random_bool(0.5) {
                        p[1] |= 0x10;
                    }
                }
            }
            let _ = read_segment(&bytes, None);
        }
        // Mutations of a valid stream reach deeper: flip bits, splice, truncate.
        let valid = sample(24, 30, 15).concat();
        let mut accepted = 0;
        for i in 0..4_000 {
            let mut bytes = valid.clone();
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..bytes.len());
                bytes[at] ^= 1 << rng.random_range(0..8);
            }
            if i % 10 == 0 {
                let cut = rng.random_range(0..bytes.len() / PACKET_SIZE) * PACKET_SIZE;
                bytes.truncate(cut);
            }
            if read_segment(&bytes, None).is_ok() {
                accepted += 1;
            }
        }
        // Payload bit flips survive (no checksum on PES data); header flips must not.
        assert!(accepted < 4_000, "the validator accepted every mutation");
    }
}
