//! MPEG-2 transport stream muxer for one H.264 video stream, cut into HLS segment files.
//!
//! Implements ISO/IEC 13818-1 (Rec. ITU-T H.222.0): TS packets §2.4.3.2, adaptation field and PCR
//! §2.4.3.4-5, PES packets §2.4.3.6-7, PAT/PMT §2.4.4 (in [`psi`]), AVC carriage §2.14; and the
//! HLS rules on segments (RFC 8216 §3 and §3.2; R1-R3 of `docs/spec.md`): every segment file
//! starts with PAT and PMT, carries a single program, and continues the previous file's
//! continuity counters and timestamps.
//!
//! The muxer is pure: it appends bytes to a caller-owned `Vec<u8>` and does no I/O. One
//! [`TsMuxer`] lives for the whole stream, so continuity counters run on across segment files.
//!
//! ```text
//! segment file = 188-byte packets, sync byte 0x47:
//!   PAT (PID 0x0000) | PMT (PID 0x1000) | AU | AU | ...          (start_segment, then push per AU)
//!
//! one access unit on PID 0x0100 (PES stream_id 0xE0, PES_packet_length 0):
//!   [PCR-only packets]   only if the previous PCR is more than 100 ms older than this AU's
//!                        adaptation_field_control 10, continuity_counter not incremented
//!   first packet         4  TS header, payload_unit_start_indicator 1
//!                        8  adaptation field: length, flags (random_access_indicator and
//!                           elementary_stream_priority_indicator on keyframes, PCR_flag),
//!                           PCR = DTS - PCR_LEAD (more stuffing here if the AU is tiny)
//!                       14  PES header: 00 00 01 E0, length 0, '10' flags with
//!                           data_alignment_indicator, PTS (19 bytes when a DTS follows)
//!                      162  PES payload: AUD 00 00 00 01 09 F0, then the AU's Annex B bytes
//!   middle packets       4  TS header + 184 bytes of PES payload
//!   last packet          4  TS header + adaptation-field stuffing + the remaining bytes
//! ```
//!
//! Timestamps come in as unwrapped [`Pts`] ticks; the bitstream carries them modulo 2^33 (PTS,
//! DTS and the PCR base alike), so the output survives the 26.5-hour wrap (R1).
//!
//! Packets go through `mpeg2ts`'s `TsPacketWriter` (its types are plain values: no allocation per
//! packet). PAT and PMT are the exception, built by hand in [`psi`] (see there for why).
//! The test crate `hls-testkit` (`testkit/`) reads segment files back with `mpeg2ts`'s reader.

mod psi;

#[cfg(feature = "test-support")]
use std::collections::BTreeMap;

use mpeg2ts::es::StreamId;
use mpeg2ts::pes::PesHeader;
use mpeg2ts::time::{ClockReference, Timestamp};
use mpeg2ts::ts::payload::{Bytes, Pes};
use mpeg2ts::ts::{
    AdaptationField, ContinuityCounter, Pid, TransportScramblingControl, TsHeader, TsPacket,
    TsPacketWriter, TsPayload, WriteTsPacket,
};

use crate::time::{Duration90k, Pts};

/// PID of the Program Association Table (fixed by ISO/IEC 13818-1 Table 2-3).
pub const PAT_PID: u16 = 0x0000;
/// PID of our Program Map Table (ffmpeg's default too).
pub const PMT_PID: u16 = 0x1000;
/// PID of the H.264 elementary stream; also the PCR_PID.
pub const VIDEO_PID: u16 = 0x0100;
/// program_number of the single program (R3: one program per segment).
pub const PROGRAM_NUMBER: u16 = 1;
/// PES stream_id of the video stream: the first of the "ITU-T H.26x video" range 0xE0-0xEF.
pub const VIDEO_STREAM_ID: u8 = 0xE0;
/// PMT stream_type for AVC video (Rec. ITU-T H.264 | ISO/IEC 14496-10).
pub const STREAM_TYPE_H264: u8 = 0x1B;
/// Size of every transport stream packet.
pub const PACKET_SIZE: usize = 188;
/// PTS, DTS and the PCR base are 33-bit counters; written values are taken modulo this.
pub const TIMESTAMP_MODULUS: u64 = 1 << 33;

/// How far the PCR runs behind the DTS: PCR = (DTS - PCR_LEAD) in 27 MHz units.
///
/// The PCR tells a decoder what time it is when a packet arrives (§2.4.2.2); the DTS tells it
/// when to decode the access unit. If PCR equalled DTS, every AU would arrive exactly when it
/// must be decoded, with no time to transfer it, and the T-STD buffer model would underflow on
/// the first large IDR. Running the PCR 0.7 s early gives each AU that much buffering slack,
/// like a real multiplexer's delay. 0.7 s is ffmpeg's default `-muxdelay`, so players have long
/// been fed streams with this offset. Callers should start the stream clock at least this far
/// above zero so the first PCR is not "negative" (it would wrap to just below 2^33: legal, as
/// everything is modulo 2^33, but confusing to tools that do not unwrap).
pub const PCR_LEAD: Duration90k = Duration90k::from_millis(700);

/// Longest gap between consecutive PCRs: 100 ms (ISO/IEC 13818-1 §2.7.2).
pub const MAX_PCR_INTERVAL: Duration90k = Duration90k::from_millis(100);

/// Largest accepted DTS step between consecutive AUs, and largest PTS - DTS distance: 60 s.
/// A longer gap is a broken timeline (restart it with EXT-X-DISCONTINUITY, R6); refusing it
/// also bounds the PCR-only packets one push may write (600).
pub const MAX_DTS_STEP: Duration90k = Duration90k::from_secs(60);

/// Access unit delimiter NAL unit (H.264 §7.3.2.4) put in front of every AU.
pub const AUD: [u8; 6] = [
    0x00, 0x00, 0x00, 0x01, // start code
    0x09, // forbidden_zero_bit 0, nal_ref_idc 0, nal_unit_type 9 (access unit delimiter)
    0xF0, // primary_pic_type 7 (any slice type), rbsp_stop_one_bit 1, alignment zeros
];

const NAL_TYPE_AUD: u8 = 9;
const TS_HEADER_LEN: usize = 4;
/// Payload bytes in a packet without adaptation field.
const TS_PAYLOAD_LEN: usize = PACKET_SIZE - TS_HEADER_LEN;
/// adaptation_field_length (1) + flags (1) + PCR (6).
const PCR_FIELD_LEN: usize = 8;
/// packet_start_code_prefix (3) + stream_id (1) + PES_packet_length (2) + flags (2) +
/// PES_header_data_length (1) + PTS (5).
const PES_HEADER_LEN_PTS: usize = 14;
/// The same with a DTS (5 more).
const PES_HEADER_LEN_PTS_DTS: usize = 19;
const MASK_33: u64 = TIMESTAMP_MODULUS - 1;

/// One H.264 access unit in Annex B (start codes), as openh264 emits it: SPS/PPS/IDR for
/// keyframes, no AUD.
#[derive(Clone, Copy, Debug)]
pub struct AccessUnit<'a> {
    /// Annex B bytes; must begin with a 3- or 4-byte start code. If the first NAL unit already is
    /// an access unit delimiter, the muxer does not add another.
    pub data: &'a [u8],
    /// Presentation time on the stream clock (unwrapped).
    pub pts: Pts,
    /// Decode time when it differs from `pts` (reordered B-frames); `None` means equal.
    pub dts: Option<Pts>,
    /// An IDR access unit: a decoder can start here (sets random_access_indicator).
    pub keyframe: bool,
}

/// Why [`TsMuxer::push`] refused an access unit. Nothing was written and the muxer's state is
/// unchanged when it returns one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MuxError {
    /// `push` before the first `start_segment`: a segment must begin with PAT and PMT.
    #[error("TS mux, PID {VIDEO_PID:#06x}, access unit PTS {pts:?}: no segment started (call start_segment first)")]
    NoSegment { pts: Pts },
    /// The access unit has no bytes.
    #[error("TS mux, PID {VIDEO_PID:#06x}, access unit PTS {pts:?}: empty access unit")]
    EmptyAccessUnit { pts: Pts },
    /// The bytes do not begin with a 3- or 4-byte Annex B start code and a NAL header.
    #[error("TS mux, PID {VIDEO_PID:#06x}, access unit PTS {pts:?}: {len}-byte access unit does not start with an Annex B start code and a NAL header (starts {:02x?})", head_shown(.head, .len))]
    MissingStartCode { pts: Pts, len: usize, head: [u8; 4] },
    /// DTS later than PTS: a frame cannot be shown before it is decoded.
    #[error(
        "TS mux, PID {VIDEO_PID:#06x}, access unit PTS {pts:?}: DTS {dts:?} is later than the PTS"
    )]
    DtsAfterPts { pts: Pts, dts: Pts },
    /// PTS more than [`MAX_DTS_STEP`] after DTS.
    #[error("TS mux, PID {VIDEO_PID:#06x}, access unit PTS {pts:?}: PTS is more than {MAX_DTS_STEP:?} after DTS {dts:?}")]
    PtsTooFarAfterDts { pts: Pts, dts: Pts },
    /// DTS not later than the previous access unit's (decode order must advance).
    #[error("TS mux, PID {VIDEO_PID:#06x}, access unit PTS {pts:?}: DTS {dts:?} does not advance past the previous access unit's DTS {previous_dts:?}")]
    DtsNotIncreasing {
        pts: Pts,
        dts: Pts,
        previous_dts: Pts,
    },
    /// DTS more than [`MAX_DTS_STEP`] after the previous access unit's.
    #[error("TS mux, PID {VIDEO_PID:#06x}, access unit PTS {pts:?}: DTS {dts:?} jumps more than {MAX_DTS_STEP:?} past the previous DTS {previous_dts:?}")]
    DtsJump {
        pts: Pts,
        dts: Pts,
        previous_dts: Pts,
    },
    /// `mpeg2ts` refused a packet we built (a bug in this module, never bad input).
    #[error("TS mux, PID {VIDEO_PID:#06x}, access unit PTS {pts:?}: packetizing failed: {reason}")]
    Packetize { pts: Pts, reason: String },
}

/// The bytes of `head` that the access unit had (it may be shorter than 4).
fn head_shown<'a>(head: &'a [u8; 4], len: &usize) -> &'a [u8] {
    &head[..(*len).min(head.len())]
}

impl MuxError {
    /// The PTS of the access unit that was refused.
    pub fn pts(&self) -> Pts {
        match *self {
            MuxError::NoSegment { pts }
            | MuxError::EmptyAccessUnit { pts }
            | MuxError::MissingStartCode { pts, .. }
            | MuxError::DtsAfterPts { pts, .. }
            | MuxError::PtsTooFarAfterDts { pts, .. }
            | MuxError::DtsNotIncreasing { pts, .. }
            | MuxError::DtsJump { pts, .. }
            | MuxError::Packetize { pts, .. } => pts,
        }
    }
}

/// Continuity state of one PID.
#[derive(Clone, Copy, Debug)]
struct PidState {
    pid: u16,
    /// continuity_counter of the next packet that carries payload.
    next_cc: ContinuityCounter,
    /// continuity_counter of the first packet this muxer wrote (or will write) on the PID.
    first_cc: u8,
    /// Packets with payload written on the PID (the ones that advance the counter).
    payload_packets: u64,
    /// The counter continues one written by an earlier process (`TsMuxer::resume`).
    resumed: bool,
}

impl PidState {
    fn new(pid: u16) -> Self {
        PidState {
            pid,
            next_cc: ContinuityCounter::new(),
            first_cc: 0,
            payload_packets: 0,
            resumed: false,
        }
    }

    /// Takes the counter for a packet with payload and advances it (§2.4.3.3: modulo 16).
    fn take(&mut self) -> ContinuityCounter {
        let cc = self.next_cc;
        self.next_cc.increment();
        self.payload_packets += 1;
        cc
    }

    /// continuity_counter of the last packet written on the PID, if any.
    fn last_cc(&self) -> Option<u8> {
        (self.payload_packets > 0 || self.resumed)
            .then(|| self.next_cc.as_u8().wrapping_sub(1) & ContinuityCounter::MAX)
    }
}

/// The transport stream multiplexer. Create one per stream (not per segment).
///
/// PCR policy: a PCR in the first packet of *every* access unit (so every keyframe has one, as
/// random access needs), plus PCR-only packets whenever access units are more than 100 ms apart
/// (frame rates under 10 fps, dropped frames), so consecutive PCRs are never more than
/// [`MAX_PCR_INTERVAL`] apart in stream time. It costs 8 bytes per access unit.
#[derive(Debug)]
pub struct TsMuxer {
    pat: PidState,
    pmt: PidState,
    video: PidState,
    video_pid: Pid,
    /// `start_segment` has been called at least once.
    in_segment: bool,
    segments: u64,
    /// PAT/PMT pairs written inside segments ([`TsMuxer::repeat_psi`]).
    psi_repeats: u64,
    aus: u64,
    aus_in_segment: u64,
    pcr_only_packets: u64,
    packets: u64,
    last_pts: Option<u64>,
    last_dts: Option<u64>,
    /// Instant (in DTS terms, unwrapped) of the last PCR: that PCR is `last_pcr_at - PCR_LEAD`.
    last_pcr_at: Option<u64>,
}

impl Default for TsMuxer {
    fn default() -> Self {
        TsMuxer::new()
    }
}

impl TsMuxer {
    pub fn new() -> Self {
        TsMuxer {
            pat: PidState::new(PAT_PID),
            pmt: PidState::new(PMT_PID),
            video: PidState::new(VIDEO_PID),
            video_pid: Pid::new(VIDEO_PID).expect("VIDEO_PID is a 13-bit PID"),
            in_segment: false,
            segments: 0,
            psi_repeats: 0,
            aus: 0,
            aus_in_segment: 0,
            pcr_only_packets: 0,
            packets: 0,
            last_pts: None,
            last_dts: None,
            last_pcr_at: None,
        }
    }

    /// A muxer whose continuity counters continue after `last_cc` (per PID, the counter of the
    /// last packet written, as `hls_testkit::check::SegmentReport::last_cc` reports it). PIDs that
    /// are not ours are ignored; timestamps start afresh (a restart is a discontinuity anyway, R6).
    ///
    /// Test support only (the `test-support` feature, which `hls-testkit` enables).
    #[cfg(feature = "test-support")]
    pub fn resume(last_cc: &BTreeMap<u16, u8>) -> Self {
        let mut mux = TsMuxer::new();
        for state in [&mut mux.pat, &mut mux.pmt, &mut mux.video] {
            if let Some(&cc) = last_cc.get(&state.pid) {
                let mut next = ContinuityCounter::from_u8(cc & ContinuityCounter::MAX)
                    .expect("masked to 4 bits");
                next.increment();
                state.next_cc = next;
                state.first_cc = next.as_u8();
                state.resumed = true;
            }
        }
        mux
    }

    /// Starts a new segment file: writes PAT then PMT (the first two packets of every segment,
    /// R3). Continuity counters are *not* reset (R1); PAT and PMT counters advance with each
    /// repetition.
    pub fn start_segment(&mut self, out: &mut Vec<u8>) {
        out.reserve(2 * PACKET_SIZE);
        psi::write_psi(&psi::PAT_PACKET, self.pat.take().as_u8(), out);
        psi::write_psi(&psi::PMT_PACKET, self.pmt.take().as_u8(), out);
        self.packets += 2;
        self.segments += 1;
        self.in_segment = true;
        self.aus_in_segment = 0;
    }

    /// Repeats PAT and PMT inside a segment, so what follows (a low-latency part) can be
    /// demultiplexed on its own; continuity counters go on as in any other packet.
    pub(crate) fn repeat_psi(&mut self, out: &mut Vec<u8>) {
        out.reserve(2 * PACKET_SIZE);
        psi::write_psi(&psi::PAT_PACKET, self.pat.take().as_u8(), out);
        psi::write_psi(&psi::PMT_PACKET, self.pmt.take().as_u8(), out);
        self.packets += 2;
        self.psi_repeats += 1;
    }

    /// Appends one access unit: AUD NAL (00 00 00 01 09 F0) + the AU bytes in one PES (stream_id
    /// 0xE0, PES_packet_length 0 for video, data_alignment_indicator, PTS, and DTS only when it
    /// differs from PTS), split into 188-byte packets with adaptation-field stuffing on the last
    /// one. The first packet carries payload_unit_start_indicator and the PCR, and on keyframes
    /// random_access_indicator and elementary_stream_priority_indicator.
    ///
    /// On error nothing is appended and the muxer is unchanged.
    pub fn push(&mut self, au: &AccessUnit<'_>, out: &mut Vec<u8>) -> Result<(), MuxError> {
        self.push_with_parameter_sets(au, &[], out)
    }

    /// [`TsMuxer::push`], with `parameter_sets` (Annex B SPS and PPS NAL units, start codes
    /// included) written right after the access unit delimiter and before the access unit's own
    /// NAL units, as H.264 §7.4.1.2.3 orders them inside an access unit. A low-latency part that
    /// does not open with an IDR carries them so a player can start on it or transmux it alone
    /// (P7). Empty `parameter_sets`: exactly `push`.
    pub fn push_with_parameter_sets(
        &mut self,
        au: &AccessUnit<'_>,
        parameter_sets: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), MuxError> {
        let pts = au.pts.as_u64();
        let dts = au.dts.map_or(pts, Pts::as_u64);
        self.validate(au, dts)?;

        // [delimiter, parameter sets, the rest of the access unit]: the access unit's own
        // delimiter stays first when it has one.
        let (delimiter, body): (&[u8], &[u8]) = if first_nal_type(au.data) == Some(NAL_TYPE_AUD) {
            if parameter_sets.is_empty() {
                (&[], au.data)
            } else {
                au.data.split_at(next_start_code(au.data))
            }
        } else {
            (&AUD, au.data)
        };
        let pieces = [delimiter, parameter_sets, body];
        let pes_payload_len = delimiter.len() + parameter_sets.len() + body.len();
        let pcr_only = match self.last_pcr_at {
            // PCRs at last + k * 100 ms for every k that lands before this AU's PCR.
            Some(last) => (dts - last - 1) / MAX_PCR_INTERVAL.0,
            None => 0,
        };
        let packets = pcr_only as usize + packet_count(pes_payload_len, dts != pts);

        let start_len = out.len();
        let saved_video = self.video;
        out.reserve(packets * PACKET_SIZE);
        let written = self
            .write_access_unit(au, pieces, dts, pcr_only, out)
            .and_then(|()| {
                // Every packet mpeg2ts wrote is 188 bytes; the count must match our plan.
                let len = out.len() - start_len;
                if len == packets * PACKET_SIZE {
                    Ok(())
                } else {
                    Err(MuxError::Packetize {
                        pts: au.pts,
                        reason: format!("wrote {len} bytes, planned {packets} packets"),
                    })
                }
            });
        if let Err(e) = written {
            out.truncate(start_len);
            self.video = saved_video;
            return Err(e);
        }

        self.packets += packets as u64;
        self.pcr_only_packets += pcr_only;
        self.aus += 1;
        self.aus_in_segment += 1;
        self.last_pts = Some(pts);
        self.last_dts = Some(dts);
        self.last_pcr_at = Some(dts);
        Ok(())
    }

    /// Internal consistency, for tests and fuzzers: continuity counters in 0..16 and equal to
    /// the number of packets written on each PID modulo 16, PTS >= DTS, the last PCR exactly
    /// [`PCR_LEAD`] before the last DTS, and PAT/PMT repeated once per segment.
    pub fn check_invariants(&self) -> Result<(), String> {
        for s in [&self.pat, &self.pmt, &self.video] {
            let cc = s.next_cc.as_u8();
            if cc > ContinuityCounter::MAX || s.first_cc > ContinuityCounter::MAX {
                return Err(format!(
                    "PID {:#06x}: continuity counter {cc} out of 0..16",
                    s.pid
                ));
            }
            let expected = (u64::from(s.first_cc) + s.payload_packets) % 16;
            if u64::from(cc) != expected {
                return Err(format!(
                    "PID {:#06x}: next continuity counter {cc}, but {} packets after a first \
                     counter of {} give {expected}",
                    s.pid, s.payload_packets, s.first_cc
                ));
            }
        }
        let psi = self.segments + self.psi_repeats;
        if self.pat.payload_packets != psi || self.pmt.payload_packets != psi {
            return Err(format!(
                "{} segments and {} repeats but {} PAT and {} PMT packets",
                self.segments, self.psi_repeats, self.pat.payload_packets, self.pmt.payload_packets
            ));
        }
        let psi = self.pat.payload_packets + self.pmt.payload_packets;
        if self.packets != psi + self.video.payload_packets + self.pcr_only_packets {
            return Err(format!(
                "{} packets written, but {psi} PSI + {} video + {} PCR-only",
                self.packets, self.video.payload_packets, self.pcr_only_packets
            ));
        }
        if self.aus_in_segment > self.aus || (self.aus > 0 && !self.in_segment) {
            return Err(format!(
                "{} access units in the segment, {} in all, segment started: {}",
                self.aus_in_segment, self.aus, self.in_segment
            ));
        }
        if self.video.payload_packets < self.aus {
            return Err(format!(
                "{} access units in only {} video packets",
                self.aus, self.video.payload_packets
            ));
        }
        match (self.last_pts, self.last_dts, self.last_pcr_at) {
            (None, None, None) => Ok(()),
            (Some(pts), Some(dts), Some(pcr_at)) => {
                if pts < dts {
                    Err(format!("last PTS {pts} before last DTS {dts}"))
                } else if pcr_at != dts {
                    Err(format!("last PCR at {pcr_at} (+PCR_LEAD), last DTS {dts}"))
                } else {
                    Ok(())
                }
            }
            other => Err(format!("timestamps half set (pts, dts, pcr): {other:?}")),
        }
    }

    /// continuity_counter of the last packet written on `pid` (None before the first one, or
    /// for a PID that is not ours). Equals `hls_testkit::check::SegmentReport::last_cc` after a segment.
    pub fn continuity_counter(&self, pid: u16) -> Option<u8> {
        [&self.pat, &self.pmt, &self.video]
            .into_iter()
            .find(|s| s.pid == pid)?
            .last_cc()
    }

    /// Segments started so far.
    pub fn segments(&self) -> u64 {
        self.segments
    }

    /// Access units written into the current segment.
    pub fn aus_in_segment(&self) -> u64 {
        self.aus_in_segment
    }

    fn validate(&self, au: &AccessUnit<'_>, dts: u64) -> Result<(), MuxError> {
        let pts = au.pts.as_u64();
        if !self.in_segment {
            return Err(MuxError::NoSegment { pts: au.pts });
        }
        if au.data.is_empty() {
            return Err(MuxError::EmptyAccessUnit { pts: au.pts });
        }
        if start_code_len(au.data).is_none() {
            let mut head = [0; 4];
            let n = au.data.len().min(4);
            head[..n].copy_from_slice(&au.data[..n]);
            return Err(MuxError::MissingStartCode {
                pts: au.pts,
                len: au.data.len(),
                head,
            });
        }
        if dts > pts {
            return Err(MuxError::DtsAfterPts {
                pts: au.pts,
                dts: Pts(dts),
            });
        }
        if pts - dts > MAX_DTS_STEP.0 {
            return Err(MuxError::PtsTooFarAfterDts {
                pts: au.pts,
                dts: Pts(dts),
            });
        }
        if let Some(previous) = self.last_dts {
            let (dts, previous_dts) = (Pts(dts), Pts(previous));
            if dts <= previous_dts {
                return Err(MuxError::DtsNotIncreasing {
                    pts: au.pts,
                    dts,
                    previous_dts,
                });
            }
            if dts - previous_dts > MAX_DTS_STEP {
                return Err(MuxError::DtsJump {
                    pts: au.pts,
                    dts,
                    previous_dts,
                });
            }
        }
        Ok(())
    }

    /// Writes the packets of one validated access unit. Touches only `self.video` and `out`.
    fn write_access_unit(
        &mut self,
        au: &AccessUnit<'_>,
        pieces: [&[u8]; 3],
        dts: u64,
        pcr_only: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), MuxError> {
        let pts = au.pts.as_u64();
        let fail = |e: mpeg2ts::Error| MuxError::Packetize {
            pts: au.pts,
            reason: format!("{:?}: {}", e.kind, e.reason),
        };
        let mut writer = TsPacketWriter::new(&mut *out);

        if pcr_only > 0 {
            let last = self
                .last_pcr_at
                .expect("PCR-only packets follow an earlier PCR");
            // Adaptation-field-only packets do not advance the counter (§2.4.3.3): they repeat
            // the counter of the previous packet on the PID.
            let cc = self
                .video
                .last_cc()
                .expect("an earlier access unit wrote video packets");
            let cc = ContinuityCounter::from_u8(cc).expect("a 4-bit counter");
            for k in 1..=pcr_only {
                let packet = TsPacket {
                    header: ts_header(self.video_pid, cc),
                    adaptation_field: Some(pcr_field(last + k * MAX_PCR_INTERVAL.0, false)),
                    payload: None,
                };
                writer.write_ts_packet(&packet).map_err(fail)?;
            }
        }

        let header = PesHeader {
            stream_id: StreamId::new(VIDEO_STREAM_ID),
            priority: false,
            data_alignment_indicator: true, // the PES payload starts with the AUD
            copyright: false,
            original_or_copy: false,
            pts: Some(timestamp(pts)),
            dts: (dts != pts).then(|| timestamp(dts)),
            escr: None,
        };
        let total: usize = pieces.iter().map(|p| p.len()).sum();
        let mut chunk = [0_u8; TS_PAYLOAD_LEN];
        let n = total.min(first_packet_capacity(dts != pts));
        gather(pieces, 0, &mut chunk[..n]);
        let first = TsPacket {
            header: ts_header(self.video_pid, self.video.take()),
            adaptation_field: Some(pcr_field(dts, au.keyframe)),
            payload: Some(TsPayload::PesStart(Pes {
                header,
                pes_packet_len: 0, // unbounded: allowed for video elementary streams only
                data: Bytes::new(&chunk[..n]).map_err(fail)?,
            })),
        };
        writer.write_ts_packet(&first).map_err(fail)?;

        let mut offset = n;
        while offset < total {
            let n = (total - offset).min(TS_PAYLOAD_LEN);
            gather(pieces, offset, &mut chunk[..n]);
            // mpeg2ts stuffs the adaptation field so a short last chunk still fills 188 bytes.
            let packet = TsPacket {
                header: ts_header(self.video_pid, self.video.take()),
                adaptation_field: None,
                payload: Some(TsPayload::PesContinuation(
                    Bytes::new(&chunk[..n]).map_err(fail)?,
                )),
            };
            writer.write_ts_packet(&packet).map_err(fail)?;
            offset += n;
        }
        Ok(())
    }
}

/// PES payload bytes that fit in an access unit's first packet (after the PCR field and the PES
/// header): 162, or 157 with a DTS.
fn first_packet_capacity(with_dts: bool) -> usize {
    let pes_header = if with_dts {
        PES_HEADER_LEN_PTS_DTS
    } else {
        PES_HEADER_LEN_PTS
    };
    TS_PAYLOAD_LEN - PCR_FIELD_LEN - pes_header
}

/// Packets needed for a PES payload of `len` bytes (PCR-only packets not counted).
fn packet_count(len: usize, with_dts: bool) -> usize {
    1 + len
        .saturating_sub(first_packet_capacity(with_dts))
        .div_ceil(TS_PAYLOAD_LEN)
}

fn ts_header(pid: Pid, cc: ContinuityCounter) -> TsHeader {
    TsHeader {
        transport_error_indicator: false,
        transport_priority: false,
        pid,
        transport_scrambling_control: TransportScramblingControl::NotScrambled,
        continuity_counter: cc,
    }
}

/// An adaptation field carrying PCR = `at - PCR_LEAD` (mod 2^33, extension 0).
fn pcr_field(at: u64, keyframe: bool) -> AdaptationField {
    let base = at.wrapping_sub(PCR_LEAD.0) & MASK_33;
    AdaptationField {
        discontinuity_indicator: false,
        random_access_indicator: keyframe,
        es_priority_indicator: keyframe,
        pcr: Some(ClockReference::new(base * 300).expect("a 33-bit base times 300 is a valid PCR")),
        opcr: None,
        splice_countdown: None,
        transport_private_data: Vec::new(), // empty: no allocation
        extension: None,
    }
}

/// A PTS/DTS field value: the unwrapped tick count modulo 2^33.
fn timestamp(ticks: u64) -> Timestamp {
    Timestamp::new(ticks & MASK_33).expect("masked to 33 bits")
}

/// Copies `dst.len()` bytes of the concatenation of `pieces`, starting at `offset`, to `dst`.
fn gather(pieces: [&[u8]; 3], mut offset: usize, dst: &mut [u8]) {
    let mut filled = 0;
    for piece in pieces {
        if filled == dst.len() {
            break;
        }
        if offset >= piece.len() {
            offset -= piece.len();
            continue;
        }
        let n = (piece.len() - offset).min(dst.len() - filled);
        dst[filled..filled + n].copy_from_slice(&piece[offset..offset + n]);
        filled += n;
        offset = 0;
    }
    debug_assert_eq!(filled, dst.len(), "gather past the end of its pieces");
}

/// Where the second NAL unit of `data` begins (its start code, 3 or 4 bytes), or `data.len()`
/// when there is only one.
fn next_start_code(data: &[u8]) -> usize {
    let from = start_code_len(data).map_or(0, |n| n + 1);
    match data[from.min(data.len())..]
        .windows(3)
        .position(|w| w == [0, 0, 1])
    {
        Some(i) => {
            let at = from + i;
            // A 4-byte start code: its leading zero belongs to it.
            if at > from && data[at - 1] == 0 {
                at - 1
            } else {
                at
            }
        }
        None => data.len(),
    }
}

/// Length of the Annex B start code (00 00 01 or 00 00 00 01) at the start of `data`, if one is
/// there and a NAL header byte follows it.
fn start_code_len(data: &[u8]) -> Option<usize> {
    let n = match data {
        [0, 0, 1, ..] => 3,
        [0, 0, 0, 1, ..] => 4,
        _ => return None,
    };
    (data.len() > n).then_some(n)
}

/// nal_unit_type of the first NAL unit.
fn first_nal_type(data: &[u8]) -> Option<u8> {
    start_code_len(data).map(|n| data[n] & 0x1F)
}

#[cfg(test)]
mod tests;
