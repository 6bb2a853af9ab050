//! `ts_demux_robust`: the segment reader fed arbitrary, stamped, mutated and spliced bytes.

use super::*;

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
pub(crate) fn demux_input(data: &[u8]) -> (Vec<u8>, Option<BTreeMap<u16, u8>>) {
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
pub(crate) fn check_error_context(bytes: &[u8], e: &str) -> Result<(), String> {
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
