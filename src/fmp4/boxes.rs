//! The box writers: one function per box of ISO/IEC 14496-12 (ISO base media file format,
//! fifth edition, 2015) and the AVC sample entry of ISO/IEC 14496-15 (carriage of NAL unit
//! structured video, 2017). Each appends to a caller-owned `Vec<u8>`; sizes are patched in
//! after the body is written ([`open`], [`close`]), so no box is built in a temporary buffer.
//!
//! Every box is a 32-bit size and a four-character type (§4.2, `Box`); a "full box" adds an
//! 8-bit version and 24-bit flags (§4.2, `FullBox`). All fields are big-endian.

use super::avc::SpsInfo;

/// Timescale of the movie and of the track: the stream clock's 90 kHz ticks, so `tfdt` and the
/// sample durations are the stream's own times with no conversion.
pub const TIMESCALE: u32 = crate::time::TICKS_PER_SEC as u32;
/// The one track's track_ID (§8.3.2: not 0).
pub const TRACK_ID: u32 = 1;

/// sample_flags (§8.8.3.1) of a sync sample: sample_depends_on = 2 (does not depend on
/// others, an I picture), sample_is_non_sync_sample = 0.
pub const SYNC_SAMPLE_FLAGS: u32 = 2 << 24;
/// sample_flags of any other sample: sample_depends_on = 1 (depends on others),
/// sample_is_non_sync_sample = 1.
pub const NON_SYNC_SAMPLE_FLAGS: u32 = (1 << 24) | (1 << 16);

/// trun flags (§8.8.8.1): data-offset-present, sample-duration-present, sample-size-present,
/// sample-flags-present, sample-composition-time-offsets-present.
pub const TRUN_FLAGS: u32 = 0x00_0001 | 0x00_0100 | 0x00_0200 | 0x00_0400 | 0x00_0800;
/// tfhd flags (§8.8.7.1): default-base-is-moof (data offsets count from the moof's first byte).
pub const TFHD_DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;

/// Bytes of a moof for `samples` samples: moof 8 + mfhd 16 + traf 8 + tfhd 16 + tfdt 20 +
/// trun 20 + 16 per sample.
pub const fn moof_len(samples: usize) -> usize {
    8 + 16 + 8 + 16 + 20 + 20 + 16 * samples
}

/// Starts a box (§4.2): a size placeholder and the type. Returns where it starts, for [`close`].
pub fn open(out: &mut Vec<u8>, fourcc: &[u8; 4]) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; 4]); // size, patched by close
    out.extend_from_slice(fourcc); // type
    start
}

/// Starts a full box (§4.2, `FullBox`): [`open`], then version and flags.
pub fn open_full(out: &mut Vec<u8>, fourcc: &[u8; 4], version: u8, flags: u32) -> usize {
    let start = open(out, fourcc);
    out.extend_from_slice(&((u32::from(version) << 24) | (flags & 0x00ff_ffff)).to_be_bytes());
    start
}

/// Ends the box opened at `start`: writes its 32-bit size (§4.2). Our boxes are far below
/// 4 GiB (a part's mdat is bounded by the caller); a larger one is a bug.
pub fn close(out: &mut [u8], start: usize) {
    let size = u32::try_from(out.len() - start).expect("a box under 4 GiB");
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

fn u16be(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}
fn u32be(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}
fn u64be(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// The unity transformation matrix of mvhd and tkhd (§8.2.2.3): {0x00010000,0,0, 0,0x00010000,0,
/// 0,0,0x40000000}.
fn unity_matrix(out: &mut Vec<u8>) {
    for v in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        u32be(out, v);
    }
}

/// `ftyp`, File Type Box, §4.3. Major brand `iso6` (the edition with `tfdt` and default-base-is-
/// moof, §E.7); compatible with `iso6`, `mp41`.
pub fn ftyp(out: &mut Vec<u8>) {
    let b = open(out, b"ftyp");
    out.extend_from_slice(b"iso6"); // major_brand
    u32be(out, 0); // minor_version
    out.extend_from_slice(b"iso6"); // compatible_brands
    out.extend_from_slice(b"mp41");
    close(out, b);
}

/// `mvhd`, Movie Header Box, §8.2.2, version 0. Duration 0: a live fragmented movie's length is
/// unknown (§8.8.1: the fragments extend it).
pub fn mvhd(out: &mut Vec<u8>) {
    let b = open_full(out, b"mvhd", 0, 0);
    u32be(out, 0); // creation_time
    u32be(out, 0); // modification_time
    u32be(out, TIMESCALE); // timescale
    u32be(out, 0); // duration
    u32be(out, 0x0001_0000); // rate 1.0
    u16be(out, 0x0100); // volume 1.0
    u16be(out, 0); // reserved
    u64be(out, 0); // reserved[2]
    unity_matrix(out); // matrix
    out.extend_from_slice(&[0; 24]); // pre_defined[6]
    u32be(out, TRACK_ID + 1); // next_track_ID
    close(out, b);
}

/// `tkhd`, Track Header Box, §8.3.2, version 0; flags track_enabled | track_in_movie.
pub fn tkhd(out: &mut Vec<u8>, width: u32, height: u32) {
    let b = open_full(out, b"tkhd", 0, 0x00_0003);
    u32be(out, 0); // creation_time
    u32be(out, 0); // modification_time
    u32be(out, TRACK_ID); // track_ID
    u32be(out, 0); // reserved
    u32be(out, 0); // duration
    u64be(out, 0); // reserved[2]
    u16be(out, 0); // layer
    u16be(out, 0); // alternate_group
    u16be(out, 0); // volume: 0 for a visual track
    u16be(out, 0); // reserved
    unity_matrix(out); // matrix
    u32be(out, width << 16); // width, 16.16 fixed point
    u32be(out, height << 16); // height, 16.16 fixed point
    close(out, b);
}

/// `mdhd`, Media Header Box, §8.4.2, version 0; language `und` (ISO 639-2/T, packed 5-bit
/// letters).
pub fn mdhd(out: &mut Vec<u8>) {
    let b = open_full(out, b"mdhd", 0, 0);
    u32be(out, 0); // creation_time
    u32be(out, 0); // modification_time
    u32be(out, TIMESCALE); // timescale
    u32be(out, 0); // duration
    let lang = |c: u8| u16::from(c - 0x60);
    u16be(out, (lang(b'u') << 10) | (lang(b'n') << 5) | lang(b'd')); // pad 0, language
    u16be(out, 0); // pre_defined
    close(out, b);
}

/// `hdlr`, Handler Reference Box, §8.4.3: handler_type `vide`.
pub fn hdlr(out: &mut Vec<u8>) {
    let b = open_full(out, b"hdlr", 0, 0);
    u32be(out, 0); // pre_defined
    out.extend_from_slice(b"vide"); // handler_type
    out.extend_from_slice(&[0; 12]); // reserved[3]
    out.extend_from_slice(b"VideoHandler\0"); // name, null-terminated UTF-8
    close(out, b);
}

/// `vmhd`, Video Media Header Box, §12.1.2; flags 1 (required by the definition).
pub fn vmhd(out: &mut Vec<u8>) {
    let b = open_full(out, b"vmhd", 0, 1);
    u16be(out, 0); // graphicsmode: copy
    out.extend_from_slice(&[0; 6]); // opcolor[3]
    close(out, b);
}

/// `dinf`, Data Information Box, §8.7.1, with `dref` (§8.7.2) holding one `url ` entry whose
/// flag 1 says the media is in this file.
pub fn dinf(out: &mut Vec<u8>) {
    let d = open(out, b"dinf");
    let r = open_full(out, b"dref", 0, 0);
    u32be(out, 1); // entry_count
    let u = open_full(out, b"url ", 0, 1); // self-contained: no location string
    close(out, u);
    close(out, r);
    close(out, d);
}

/// `avcC`, AVCConfigurationBox holding the AVCDecoderConfigurationRecord, ISO/IEC 14496-15
/// §5.3.3.1 (the record) and §5.4.2.1 (the box): the stream's own SPS and PPS, NAL unit
/// lengths of 4 bytes.
pub fn avcc(out: &mut Vec<u8>, info: &SpsInfo, sps: &[u8], pps: &[u8]) {
    let b = open(out, b"avcC");
    out.push(1); // configurationVersion
    out.push(info.profile_idc); // AVCProfileIndication
    out.push(info.constraint_flags); // profile_compatibility
    out.push(info.level_idc); // AVCLevelIndication
    out.push(0xfc | 3); // reserved '111111', lengthSizeMinusOne = 3
    out.push(0xe0 | 1); // reserved '111', numOfSequenceParameterSets = 1
    u16be(out, sps.len() as u16); // sequenceParameterSetLength
    out.extend_from_slice(sps);
    out.push(1); // numOfPictureParameterSets
    u16be(out, pps.len() as u16); // pictureParameterSetLength
    out.extend_from_slice(pps);
    if info.has_avcc_extension() {
        out.push(0xfc | info.chroma_format_idc); // reserved '111111', chroma_format
        out.push(0xf8 | (info.bit_depth_luma - 8)); // reserved '11111', bit_depth_luma_minus8
        out.push(0xf8 | (info.bit_depth_chroma - 8)); // reserved, bit_depth_chroma_minus8
        out.push(0); // numOfSequenceParameterSetExt
    }
    close(out, b);
}

/// `stsd`, Sample Description Box, §8.5.2, with one `avc1` AVCSampleEntry (ISO/IEC 14496-15
/// §5.4.2.1), a VisualSampleEntry (§12.1.3) whose parameter sets are all in its `avcC`.
pub fn stsd(out: &mut Vec<u8>, info: &SpsInfo, sps: &[u8], pps: &[u8]) {
    let s = open_full(out, b"stsd", 0, 0);
    u32be(out, 1); // entry_count
    let e = open(out, b"avc1");
    out.extend_from_slice(&[0; 6]); // SampleEntry reserved[6] (§8.5.2.2)
    u16be(out, 1); // data_reference_index: the dref's url entry
    u16be(out, 0); // pre_defined
    u16be(out, 0); // reserved
    out.extend_from_slice(&[0; 12]); // pre_defined[3]
    u16be(out, info.width as u16); // width
    u16be(out, info.height as u16); // height
    u32be(out, 0x0048_0000); // horizresolution 72 dpi
    u32be(out, 0x0048_0000); // vertresolution 72 dpi
    u32be(out, 0); // reserved
    u16be(out, 1); // frame_count
    out.extend_from_slice(&[0; 32]); // compressorname: empty Pascal string
    u16be(out, 0x0018); // depth: colour, no alpha
    u16be(out, 0xffff); // pre_defined = -1
    avcc(out, info, sps, pps);
    close(out, e);
    close(out, s);
}

/// The empty sample tables of a fragmented track (§8.8.1: the samples are in the fragments):
/// `stts` §8.6.1.2, `stsc` §8.7.4, `stsz` §8.7.3.2, `stco` §8.7.5, each with no entries.
pub fn empty_sample_tables(out: &mut Vec<u8>) {
    for fourcc in [b"stts", b"stsc"] {
        let b = open_full(out, fourcc, 0, 0);
        u32be(out, 0); // entry_count
        close(out, b);
    }
    let b = open_full(out, b"stsz", 0, 0);
    u32be(out, 0); // sample_size: sizes are in the table (here: none)
    u32be(out, 0); // sample_count
    close(out, b);
    let b = open_full(out, b"stco", 0, 0);
    u32be(out, 0); // entry_count
    close(out, b);
}

/// `mvex`, Movie Extends Box, §8.8.1, with `trex`, Track Extends Box, §8.8.3: the movie is
/// fragmented; every fragment's trun gives each sample's own duration, size and flags, so the
/// defaults are 0.
pub fn mvex(out: &mut Vec<u8>) {
    let m = open(out, b"mvex");
    let t = open_full(out, b"trex", 0, 0);
    u32be(out, TRACK_ID); // track_ID
    u32be(out, 1); // default_sample_description_index
    u32be(out, 0); // default_sample_duration
    u32be(out, 0); // default_sample_size
    u32be(out, 0); // default_sample_flags
    close(out, t);
    close(out, m);
}

/// The init segment (RFC 8216 §3.3, "Media Initialization Section"; ISO/IEC 14496-12 §8.8:
/// a movie with no samples and `mvex`): `ftyp`, then `moov` (§8.2.1) with `mvhd`, one `trak`
/// (§8.3.1: `tkhd`, `mdia` §8.4.1: `mdhd`, `hdlr`, `minf` §8.4.4: `vmhd`, `dinf`, `stbl`
/// §8.5.1: `stsd`, empty tables) and `mvex`.
pub fn init_segment(out: &mut Vec<u8>, info: &SpsInfo, sps: &[u8], pps: &[u8]) {
    ftyp(out);
    let moov = open(out, b"moov");
    mvhd(out);
    let trak = open(out, b"trak");
    tkhd(out, info.width, info.height);
    let mdia = open(out, b"mdia");
    mdhd(out);
    hdlr(out);
    let minf = open(out, b"minf");
    vmhd(out);
    dinf(out);
    let stbl = open(out, b"stbl");
    stsd(out, info, sps, pps);
    empty_sample_tables(out);
    close(out, stbl);
    close(out, minf);
    close(out, mdia);
    close(out, trak);
    mvex(out);
    close(out, moov);
}

/// One sample of a fragment, as the trun describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Until the next sample's decode time, in [`TIMESCALE`] ticks.
    pub duration: u32,
    /// Bytes in the mdat.
    pub size: u32,
    /// A sync sample (an IDR): [`SYNC_SAMPLE_FLAGS`], otherwise [`NON_SYNC_SAMPLE_FLAGS`].
    pub sync: bool,
    /// Composition time minus decode time (PTS - DTS), ticks; signed (trun version 1).
    pub composition_offset: i32,
}

/// `moof`, Movie Fragment Box, §8.8.4: `mfhd` (§8.8.5, the fragment's sequence_number), one
/// `traf` (§8.8.6) with `tfhd` (§8.8.7, default-base-is-moof), `tfdt` (§8.8.12, version 1:
/// a 64-bit baseMediaDecodeTime, never wrapped) and `trun` (§8.8.8, version 1: per-sample
/// duration, size, flags and signed composition offset; data_offset from the moof's start to
/// the first sample, which is just after the mdat header that follows).
pub fn moof(out: &mut Vec<u8>, sequence_number: u32, base_decode_time: u64, samples: &[Sample]) {
    let start = out.len();
    let moof = open(out, b"moof");
    let mfhd = open_full(out, b"mfhd", 0, 0);
    u32be(out, sequence_number); // sequence_number
    close(out, mfhd);
    let traf = open(out, b"traf");
    let tfhd = open_full(out, b"tfhd", 0, TFHD_DEFAULT_BASE_IS_MOOF);
    u32be(out, TRACK_ID); // track_ID
    close(out, tfhd);
    let tfdt = open_full(out, b"tfdt", 1, 0);
    u64be(out, base_decode_time); // baseMediaDecodeTime
    close(out, tfdt);
    let trun = open_full(out, b"trun", 1, TRUN_FLAGS);
    u32be(out, samples.len() as u32); // sample_count
    let data_offset = (moof_len(samples.len()) + 8) as i32;
    out.extend_from_slice(&data_offset.to_be_bytes()); // data_offset
    for s in samples {
        u32be(out, s.duration); // sample_duration
        u32be(out, s.size); // sample_size
        u32be(
            out,
            if s.sync {
                SYNC_SAMPLE_FLAGS
            } else {
                NON_SYNC_SAMPLE_FLAGS
            },
        ); // sample_flags
        out.extend_from_slice(&s.composition_offset.to_be_bytes()); // sample_composition_time_offset
    }
    close(out, trun);
    close(out, traf);
    close(out, moof);
    debug_assert_eq!(out.len() - start, moof_len(samples.len()));
}

/// `mdat`, Media Data Box, §8.1.1: the header only; the caller appends `payload_len` bytes.
pub fn mdat_header(out: &mut Vec<u8>, payload_len: usize) {
    let size = u32::try_from(payload_len + 8).expect("an mdat under 4 GiB");
    u32be(out, size);
    out.extend_from_slice(b"mdat");
}
