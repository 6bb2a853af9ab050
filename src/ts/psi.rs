//! Program-specific information for our one-program stream: the PAT and the PMT packets
//! (ISO/IEC 13818-1 §2.4.4: `program_association_section` §2.4.4.3, `TS_program_map_section`
//! §2.4.4.8, CRC_32 Annex A).
//!
//! Both tables never change for the life of a stream (version_number 0), so each packet is
//! built once, at compile time, and [`super::TsMuxer::start_segment`] only copies it and patches
//! the continuity counter (the 4 low bits of byte 3, outside the CRC-protected section).
//!
//! Why not `mpeg2ts`'s writer here: `TsPacket::write_to` fills the unused part of a packet with an
//! adaptation field placed *before* the payload, so a 17-byte PAT section would follow 167 bytes
//! of adaptation-field stuffing. That is legal, but every segmenter we know of (ffmpeg, Apple's
//! mediastreamsegmenter, GStreamer) writes the section right after the pointer_field and pads
//! with 0xFF `stuffing_byte`s after it (§2.4.4.1), which is what strict or minimal demuxers
//! expect.
//! Its writer also allocates two `Vec`s per table and keeps its CRC routine private. The tests
//! below hold these bytes against `mpeg2ts`: its reader parses them and checks the CRC, and its
//! writer produces byte-identical sections from the same field values.

use super::{PACKET_SIZE, PMT_PID, PROGRAM_NUMBER, STREAM_TYPE_H264, VIDEO_PID};

/// `transport_stream_id` in the PAT (a user-defined label of the multiplex; 1 as ffmpeg uses).
pub(crate) const TRANSPORT_STREAM_ID: u16 = 1;

/// CRC-32/MPEG-2 (ISO/IEC 13818-1 Annex A): polynomial 0x04C11DB7, initial value 0xFFFFFFFF,
/// no reflection, no final XOR. Running it over a whole section including its CRC_32 gives 0.
pub(crate) const fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFF_u32;
    let mut i = 0;
    while i < data.len() {
        crc ^= (data[i] as u32) << 24;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
            bit += 1;
        }
        i += 1;
    }
    crc
}

/// The PAT section up to (not including) its CRC_32.
#[rustfmt::skip]
const PAT_SECTION: [u8; 12] = [
    0x00,                             // table_id: program_association_section
    0xB0,                             // section_syntax_indicator 1, '0', reserved '11',
                                      //   section_length bits 11..8 = 0
    0x0D,                             // section_length = 13: 5 syntax bytes, one 4-byte program
                                      //   entry, CRC_32 (4)
    (TRANSPORT_STREAM_ID >> 8) as u8, // transport_stream_id, high byte
    TRANSPORT_STREAM_ID as u8,        // transport_stream_id, low byte
    0xC1,                             // reserved '11', version_number 0, current_next_indicator 1
    0x00,                             // section_number
    0x00,                             // last_section_number
    (PROGRAM_NUMBER >> 8) as u8,      // program_number, high byte
    PROGRAM_NUMBER as u8,             // program_number, low byte
    0xE0 | (PMT_PID >> 8) as u8,      // reserved '111', program_map_PID bits 12..8
    PMT_PID as u8,                    // program_map_PID bits 7..0
];

/// The PMT section up to (not including) its CRC_32.
#[rustfmt::skip]
const PMT_SECTION: [u8; 17] = [
    0x02,                             // table_id: TS_program_map_section
    0xB0,                             // section_syntax_indicator 1, '0', reserved '11',
                                      //   section_length bits 11..8 = 0
    0x12,                             // section_length = 18: 5 syntax bytes, 4 (PCR_PID,
                                      //   program_info_length), 5 (one ES entry), CRC_32 (4)
    (PROGRAM_NUMBER >> 8) as u8,      // program_number, high byte
    PROGRAM_NUMBER as u8,             // program_number, low byte
    0xC1,                             // reserved '11', version_number 0, current_next_indicator 1
    0x00,                             // section_number
    0x00,                             // last_section_number
    0xE0 | (VIDEO_PID >> 8) as u8,    // reserved '111', PCR_PID bits 12..8 (video carries PCR)
    VIDEO_PID as u8,                  // PCR_PID bits 7..0
    0xF0,                             // reserved '1111', unused '00', program_info_length 9..8
    0x00,                             // program_info_length = 0: no program descriptors
    STREAM_TYPE_H264,                 // stream_type 0x1B: AVC video (Rec. ITU-T H.264)
    0xE0 | (VIDEO_PID >> 8) as u8,    // reserved '111', elementary_PID bits 12..8
    VIDEO_PID as u8,                  // elementary_PID bits 7..0
    0xF0,                             // reserved '1111', unused '00', ES_info_length bits 9..8
    0x00,                             // ES_info_length = 0: no ES descriptors
];

// section_length counts every byte after itself, CRC_32 included.
const _: () = assert!(PAT_SECTION[2] as usize == PAT_SECTION.len() - 3 + 4);
const _: () = assert!(PMT_SECTION[2] as usize == PMT_SECTION.len() - 3 + 4);

/// Builds a one-section PSI packet with continuity_counter 0:
///
/// ```text
/// 47 | PUSI+PID | AFC=01,CC | pointer_field 00 | section | CRC_32 | FF FF ... (to 188 bytes)
/// ```
const fn psi_packet(pid: u16, section: &[u8]) -> [u8; PACKET_SIZE] {
    // Everything after the section stays stuffing_byte 0xFF (§2.4.4.1).
    let mut p = [0xFF_u8; PACKET_SIZE];
    // sync_byte
    p[0] = 0x47;
    // transport_error_indicator 0, payload_unit_start_indicator 1, transport_priority 0,
    // PID bits 12..8
    p[1] = 0x40 | (pid >> 8) as u8;
    // PID bits 7..0
    p[2] = pid as u8;
    // transport_scrambling_control 00, adaptation_field_control 01 (payload only),
    // continuity_counter 0 (patched per use)
    p[3] = 0x10;
    // pointer_field: the section starts right after it
    p[4] = 0x00;
    let mut i = 0;
    while i < section.len() {
        p[5 + i] = section[i];
        i += 1;
    }
    let crc = crc32_mpeg2(section).to_be_bytes(); // CRC_32 over table_id..last byte before it
    let mut j = 0;
    while j < 4 {
        p[5 + section.len() + j] = crc[j];
        j += 1;
    }
    p
}

/// The PAT packet with continuity_counter 0.
pub(super) const PAT_PACKET: [u8; PACKET_SIZE] = psi_packet(super::PAT_PID, &PAT_SECTION);
/// The PMT packet with continuity_counter 0.
pub(super) const PMT_PACKET: [u8; PACKET_SIZE] = psi_packet(PMT_PID, &PMT_SECTION);

/// Appends `template` with its continuity_counter set to `cc` (0..16).
pub(super) fn write_psi(template: &[u8; PACKET_SIZE], cc: u8, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(template);
    out[start + 3] = (template[3] & 0xF0) | (cc & 0x0F);
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpeg2ts::es::StreamType;
    use mpeg2ts::ts::payload::{Pat, Pmt};
    use mpeg2ts::ts::{
        ContinuityCounter, EsInfo, Pid, ProgramAssociation, ReadTsPacket,
        TransportScramblingControl, TsHeader, TsPacket, TsPacketReader, TsPacketWriter, TsPayload,
        VersionNumber, WriteTsPacket,
    };

    fn pid(n: u16) -> Pid {
        Pid::new(n).expect("test PIDs are below 0x1FFF")
    }

    fn expected_pat() -> Pat {
        Pat {
            transport_stream_id: TRANSPORT_STREAM_ID,
            version_number: VersionNumber::new(),
            table: vec![ProgramAssociation {
                program_num: PROGRAM_NUMBER,
                program_map_pid: pid(PMT_PID),
            }],
        }
    }

    fn expected_pmt() -> Pmt {
        Pmt {
            program_num: PROGRAM_NUMBER,
            pcr_pid: Some(pid(VIDEO_PID)),
            version_number: VersionNumber::new(),
            program_info: vec![],
            es_info: vec![EsInfo {
                stream_type: StreamType::H264,
                elementary_pid: pid(VIDEO_PID),
                descriptors: vec![],
            }],
        }
    }

    /// The section (table_id .. CRC_32) inside a PSI packet, wherever its writer put it.
    fn section_of(packet: &[u8]) -> &[u8] {
        let afc = (packet[3] >> 4) & 0b11;
        let mut at = 4;
        if afc & 0b10 != 0 {
            at += 1 + usize::from(packet[4]);
        }
        let pointer = usize::from(packet[at]);
        let s = at + 1 + pointer;
        let len = usize::from(u16::from_be_bytes([packet[s + 1], packet[s + 2]]) & 0x0FFF);
        &packet[s..s + 3 + len]
    }

    #[test]
    fn crc32_mpeg2_matches_catalogue_check_value() {
        // CRC-32/MPEG-2 check value from the CRC catalogue (reveng), input "123456789".
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_E6E7);
        assert_eq!(crc32_mpeg2(&[]), 0xFFFF_FFFF);
        // A section with its own CRC appended checks to zero (how demuxers verify it).
        for packet in [&PAT_PACKET, &PMT_PACKET] {
            assert_eq!(crc32_mpeg2(section_of(packet)), 0);
        }
    }

    #[test]
    fn mpeg2ts_reader_parses_pat_and_pmt_and_accepts_their_crc() {
        let mut bytes = Vec::new();
        write_psi(&PAT_PACKET, 7, &mut bytes);
        write_psi(&PMT_PACKET, 15, &mut bytes);
        assert_eq!(bytes.len(), 2 * PACKET_SIZE);
        let mut reader = TsPacketReader::new(&bytes[..]);

        let pat = reader
            .read_ts_packet()
            .expect("PAT parses")
            .expect("PAT present");
        assert_eq!(pat.header.pid.as_u16(), 0);
        assert_eq!(pat.header.continuity_counter.as_u8(), 7);
        assert_eq!(pat.adaptation_field, None);
        assert_eq!(pat.payload, Some(TsPayload::Pat(expected_pat())));

        let pmt = reader
            .read_ts_packet()
            .expect("PMT parses")
            .expect("PMT present");
        assert_eq!(pmt.header.pid.as_u16(), PMT_PID);
        assert_eq!(pmt.header.continuity_counter.as_u8(), 15);
        assert_eq!(pmt.payload, Some(TsPayload::Pmt(expected_pmt())));
        assert!(reader.read_ts_packet().expect("clean end").is_none());
    }

    #[test]
    fn sections_are_byte_identical_to_mpeg2ts_writer_output() {
        let header = |p: u16| TsHeader {
            transport_error_indicator: false,
            transport_priority: false,
            pid: pid(p),
            transport_scrambling_control: TransportScramblingControl::NotScrambled,
            continuity_counter: ContinuityCounter::new(),
        };
        let mut writer = TsPacketWriter::new(Vec::new());
        for (p, payload) in [
            (0, TsPayload::Pat(expected_pat())),
            (PMT_PID, TsPayload::Pmt(expected_pmt())),
        ] {
            let packet = TsPacket {
                header: header(p),
                adaptation_field: None,
                payload: Some(payload),
            };
            writer.write_ts_packet(&packet).expect("mpeg2ts writes PSI");
        }
        let theirs = writer.into_stream();
        let (their_pat, their_pmt) = theirs.split_at(PACKET_SIZE);
        // The reason we write these packets ourselves: mpeg2ts pads with an adaptation field
        // ahead of the section (adaptation_field_control 11), not 0xFF after it.
        assert_eq!((their_pat[3] >> 4) & 0b11, 0b11);
        assert_eq!((PAT_PACKET[3] >> 4) & 0b11, 0b01);
        // Same section bytes, CRC_32 included: an independent implementation agrees.
        assert_eq!(section_of(their_pat), section_of(&PAT_PACKET));
        assert_eq!(section_of(their_pmt), section_of(&PMT_PACKET));
        assert_eq!(section_of(&PAT_PACKET).len(), 16);
        assert_eq!(section_of(&PMT_PACKET).len(), 21);
        // Everything after the section is stuffing.
        assert!(PAT_PACKET[5 + 16..].iter().all(|&b| b == 0xFF));
        assert!(PMT_PACKET[5 + 21..].iter().all(|&b| b == 0xFF));
    }

    #[test]
    fn a_flipped_bit_fails_the_crc_in_mpeg2ts() {
        // Proves the reader really checks what we computed: change program_number.
        let mut bad = PAT_PACKET;
        bad[5 + 9] ^= 0x01;
        let err = TsPacketReader::new(&bad[..])
            .read_ts_packet()
            .expect_err("a corrupted PAT must not parse");
        assert!(err.reason.contains("CRC32"), "{err}");
    }

    #[test]
    fn write_psi_patches_only_the_continuity_counter() {
        let mut out = vec![1, 2, 3];
        write_psi(&PMT_PACKET, 0x1F, &mut out);
        assert_eq!(&out[..3], &[1, 2, 3]);
        let written = &out[3..];
        assert_eq!(written[3], 0x10 | 0x0F); // AFC 01, CC 0x1F masked to 15
        assert_eq!(&written[..3], &PMT_PACKET[..3]);
        assert_eq!(&written[4..], &PMT_PACKET[4..]);
    }
}
