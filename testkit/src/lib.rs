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
//!   `m3u8-rs` parses a sample of the renders that lists every segment and every DATERANGE
//!   state, and agrees; a refused operation changes nothing; the same
//!   holds for segments read back after a restart (`push_resumed`).
//! - `ts_demux_robust`, [`read_segment`]: no panic on any bytes (raw, sync-stamped, mutated or
//!   spliced segments, tables mutated with their CRC recomputed); an accepted segment is sane
//!   (R3 layout, counters, AUDs, PCR spacing)
//!   and `mpeg2ts`'s own PES reader reassembles the same payloads; errors name the packet; the
//!   same bytes give the same answer.
//!
//! - `fmp4_mux`, [`hls::fmp4::Fmp4Muxer`] (ISO/IEC 14496-12/-15): no panic; every init segment
//!   and fragment read back by `mp4-atom` (strict): ftyp + moov with the pushed SPS and PPS in
//!   the avcC and the SPS's size; moof + mdat with mfhd counting fragments, tfdt the first DTS
//!   (64-bit: starts near 2^32, 2^33 and anywhere), data_offset on the mdat, per-sample
//!   duration, composition offset, sync flags and exactly the pushed slices in AVCC framing (no
//!   AUD, SPS or PPS); a new init exactly on new parameter sets; refusals exactly where timing
//!   or parameter-set rules are broken, and without a trace.
//!
//! The `*_seeds` functions build one hand-written input per scenario; they are committed as
//! `fuzz/corpus/<target>/seed-<name>` (`tests/corpus_replay.rs` keeps the files in step).
//! [`InputWriter`] is the encoder matching [`Input`].
//!
//! This crate is the test oracle of `hls-streamer`: a workspace member that the product library
//! does not depend on, used by the root crate's `tests/` and `benches/` and by `fuzz/`.
//! [`check`] reads segment files back.

pub mod check;
mod fmp4_mux;
mod input;
mod low_latency;
mod playlist_text;
mod playlist_window;
mod seeds;
mod ts_demux;
mod ts_mux;

pub use fmp4_mux::*;
pub use input::*;
pub use low_latency::*;
pub use playlist_text::*;
pub use playlist_window::*;
pub use seeds::*;
pub use ts_demux::*;
pub use ts_mux::*;

use std::collections::{BTreeMap, BTreeSet};
#[cfg(test)]
use std::collections::{HashMap, HashSet};

use mpeg2ts::pes::{PesPacketReader, ReadPesPacket};
use mpeg2ts::ts::{TsPacket, TsPacketReader, TsPayload};

use crate::check::{
    read_segment, read_segment_keeping, ParsedPesReader, SegmentReport, FIRST_PIDS_LEN,
};
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

#[cfg(test)]
mod tests;

/// A fake Annex B access unit of exactly `len` bytes (len >= 5): SPS, PPS, IDR for keyframes
/// (when long enough), one non-IDR slice otherwise; random filler. For the muxer's and the
/// reader's unit tests.
pub fn fake_au(rng: &mut rand::rngs::StdRng, len: usize, keyframe: bool) -> Vec<u8> {
    use rand::Rng;
    assert!(len >= 5, "an AU needs a start code and a NAL header");
    let mut v = Vec::with_capacity(len);
    if keyframe && len >= 30 {
        v.extend_from_slice(&[0, 0, 0, 1, 0x67, 0x42, 0xC0, 0x1F, 0xDA, 0x01]); // SPS
        v.extend_from_slice(&[0, 0, 0, 1, 0x68, 0xCE, 0x3C, 0x80]); // PPS
        v.extend_from_slice(&[0, 0, 0, 1, 0x65]); // IDR slice
    } else {
        v.extend_from_slice(&[0, 0, 0, 1, if keyframe { 0x65 } else { 0x41 }]);
    }
    while v.len() < len {
        v.push(rng.random());
    }
    v.truncate(len);
    v
}
