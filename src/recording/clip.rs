//! A marker's clip as one file, remuxed from its retained TS segments without re-encoding:
//! a progressive MP4 with its index first, or one continuous transport stream.
//!
//! Both are *virtual files*: a small head held in memory and the segments' media read again,
//! one segment at a time, when the bytes are asked for. So a clip streams as it is read, and
//! any byte range `[a, b)` is served by reading only the segments it touches (HTTP ranges: a
//! player seeking in a download, a browser's `Range: bytes=…` probes).
//!
//! ```text
//! clip.mp4 = ftyp | moov (the whole index, built first from the access units' sizes) | mdat
//!            header | segment 0's samples | segment 1's samples | ...   (one chunk per segment)
//!   moov     mvhd, trak(tkhd, [edts(elst)], mdia(mdhd, hdlr, minf(vmhd, dinf, stbl(stsd(avc1
//!            (avcC)), stts, [ctts], [stss], stsc, stsz, stco | co64)))))
//!   sample   [u32 length][NAL unit] ...  (ISO/IEC 14496-15 §5.3.2; as in our fMP4 segments:
//!            no AUD, SPS and PPS only in the avcC)
//! clip.ts  = segment 0 | segment 1 | ...   (our segments continue each other's continuity
//!            counters and timestamps, R1; each opens with PAT and PMT, R3)
//! ```
//! Box writers: [`crate::fmp4::boxes`] (ISO/IEC 14496-12) for what a fragmented and a
//! progressive movie share (`hdlr`, `vmhd`, `dinf`, `stsd` with `avcC`); the headers that carry
//! a duration and the sample tables (§8.6, §8.7) are written here.
//!
//! A clip is one continuous run: a decode time that goes back or jumps more than
//! [`crate::ts::MAX_DTS_STEP`] (a restart, a gap) is refused, and so is a change of SPS or PPS
//! (a new picture size): the caller cuts clips at discontinuities.

use std::io;
use std::ops::Range;

use bytes::Bytes;
use mpeg2ts::pes::{PesPacketReader, ReadPesPacket};
use mpeg2ts::ts::TsPacketReader;

use crate::fmp4::avc::{nal_type, nal_units, parse_sps, NAL_AUD, NAL_IDR, NAL_PPS, NAL_SPS};
use crate::fmp4::boxes;
use crate::ts::MAX_DTS_STEP;

/// PTS, DTS and PCR are 33-bit counters (ISO/IEC 13818-1 §2.4.3.7).
pub const PTS_MODULUS: u64 = crate::ts::TIMESTAMP_MODULUS;

/// Unwraps 33-bit timestamps onto one line: each value lands within 2^32 ticks (13 hours) of
/// the one before, so the 26.5-hour wrap is a step, not a jump back. (The detector keeps its
/// own; it is a separate crate on main.)
#[derive(Clone, Copy, Debug, Default)]
pub struct Unwrap {
    last: Option<(u64, i64)>,
}

impl Unwrap {
    pub fn unwrap(&mut self, ts: u64) -> i64 {
        let ts = ts % PTS_MODULUS;
        let v = match self.last {
            None => ts as i64,
            Some((raw, line)) => {
                let step = (ts + PTS_MODULUS - raw) % PTS_MODULUS;
                if step >= PTS_MODULUS / 2 {
                    line + step as i64 - PTS_MODULUS as i64
                } else {
                    line + step as i64
                }
            }
        };
        self.last = Some((ts, v));
        v
    }
}

/// Why a clip could not be made or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClipError {
    #[error("reading segment {segment} of the clip: {source}")]
    Io { segment: usize, source: io::Error },
    #[error("segment {segment} of the clip: {detail}")]
    Demux { segment: usize, detail: String },
    #[error("the clip has no video access unit")]
    Empty,
    #[error("segment {segment}: the first access unit carries no SPS and PPS")]
    NoParameterSets { segment: usize },
    #[error("segment {segment}: SPS: {detail}")]
    BadSps { segment: usize, detail: String },
    #[error("segment {segment}: the SPS or PPS changes inside the clip (cut the clip there)")]
    ParametersChange { segment: usize },
    #[error(
        "segment {segment}: decode time steps {step} ticks (a discontinuity: cut the clip there)"
    )]
    Discontinuity { segment: usize, step: i64 },
    #[error("the clip lasts {ticks} ticks, more than an MP4 version 0 header holds")]
    TooLong { ticks: u64 },
    #[error(
        "segment {segment} changed since the clip was planned ({planned} bytes planned, {now} now)"
    )]
    Changed {
        segment: usize,
        planned: u64,
        now: u64,
    },
}

/// One access unit read back from a TS segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsAccessUnit {
    /// Decode and presentation times, 90 kHz, unwrapped past 2^33 across the whole clip.
    pub dts: i64,
    pub pts: i64,
    /// Holds an IDR slice.
    pub keyframe: bool,
    /// The PES payload: Annex B, our AUD first.
    pub data: Vec<u8>,
}

/// Every video access unit of one TS segment, in decode order. `unwrap` carries the timeline
/// from segment to segment.
pub fn read_access_units(
    ts: &[u8],
    segment: usize,
    unwrap: &mut Unwrap,
) -> Result<Vec<TsAccessUnit>, ClipError> {
    let mut reader = PesPacketReader::new(TsPacketReader::new(ts));
    let mut out = Vec::new();
    loop {
        let pes = match reader.read_pes_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(e) => {
                return Err(ClipError::Demux {
                    segment,
                    detail: format!("PES packet {}: {e}", out.len() + 1),
                })
            }
        };
        if !pes.header.stream_id.is_video() {
            continue;
        }
        let Some(pts) = pes.header.pts.map(|t| t.as_u64()) else {
            return Err(ClipError::Demux {
                segment,
                detail: format!("video PES packet {} has no PTS", out.len() + 1),
            });
        };
        let raw_dts = pes.header.dts.map_or(pts, |t| t.as_u64());
        let dts = unwrap.unwrap(raw_dts);
        let pts = dts + ((pts + PTS_MODULUS - raw_dts) % PTS_MODULUS) as i64;
        let keyframe = nal_units(&pes.data).any(|n| nal_type(n) == NAL_IDR);
        out.push(TsAccessUnit {
            dts,
            pts,
            keyframe,
            data: pes.data,
        });
    }
    Ok(out)
}

/// The bytes of `au` as an MP4 sample: each NAL unit but AUD, SPS and PPS, after its 32-bit
/// length.
fn append_sample(au: &[u8], out: &mut Vec<u8>) {
    for nal in nal_units(au) {
        if matches!(nal_type(nal), NAL_AUD | NAL_SPS | NAL_PPS) {
            continue;
        }
        out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        out.extend_from_slice(nal);
    }
}

fn sample_len(au: &[u8]) -> u64 {
    nal_units(au)
        .filter(|n| !matches!(nal_type(n), NAL_AUD | NAL_SPS | NAL_PPS))
        .map(|n| 4 + n.len() as u64)
        .sum()
}

/// A segment's part of the mdat: its access units as samples, end to end.
pub fn segment_samples(ts: &[u8], segment: usize) -> Result<Vec<u8>, ClipError> {
    let mut out = Vec::with_capacity(ts.len());
    for au in read_access_units(ts, segment, &mut Unwrap::default())? {
        append_sample(&au.data, &mut out);
    }
    Ok(out)
}

/// What the clip file is made of, in order.
#[derive(Clone, Debug)]
enum Part {
    /// Bytes held in memory (the MP4's head).
    Bytes(Bytes),
    /// Segment `index` as it is on disk (TS) or its samples (MP4), `len` bytes.
    Segment { index: usize, len: u64 },
}

/// How a segment's bytes become the file's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Mp4,
    Ts,
}

/// A clip file that is never built whole: see the module docs.
#[derive(Clone, Debug)]
pub struct ClipFile {
    kind: Kind,
    /// (offset in the file, part).
    parts: Vec<(u64, Part)>,
    len: u64,
}

/// Per-sample facts the MP4 index needs.
#[derive(Clone, Copy, Debug)]
struct SampleInfo {
    dts: i64,
    /// PTS - DTS.
    cts: u32,
    size: u32,
    sync: bool,
}

impl ClipFile {
    /// One continuous TS: the segments' files end to end. `lens` are the files' sizes.
    pub fn ts(lens: &[u64]) -> ClipFile {
        let mut parts = Vec::with_capacity(lens.len());
        let mut len = 0;
        for (index, &l) in lens.iter().enumerate() {
            parts.push((len, Part::Segment { index, len: l }));
            len += l;
        }
        ClipFile {
            kind: Kind::Ts,
            parts,
            len,
        }
    }

    /// Plans the MP4 of `count` consecutive segments: reads each once through `load` (one at a
    /// time; nothing is kept but the sizes and times of the access units) and builds the
    /// whole head (`ftyp`, `moov`, the `mdat` header).
    pub fn mp4(
        count: usize,
        mut load: impl FnMut(usize) -> io::Result<Vec<u8>>,
    ) -> Result<ClipFile, ClipError> {
        let mut unwrap = Unwrap::default();
        let mut samples: Vec<SampleInfo> = Vec::new();
        let mut chunk_samples: Vec<(usize, u32, u64)> = Vec::with_capacity(count);
        let mut params: Option<(Vec<u8>, Vec<u8>)> = None;
        for segment in 0..count {
            let ts = load(segment).map_err(|source| ClipError::Io { segment, source })?;
            let aus = read_access_units(&ts, segment, &mut unwrap)?;
            let mut bytes = 0u64;
            for au in &aus {
                let sps = nal_units(&au.data).find(|n| nal_type(n) == NAL_SPS);
                let pps = nal_units(&au.data).find(|n| nal_type(n) == NAL_PPS);
                match (&params, sps, pps) {
                    (None, Some(s), Some(p)) => params = Some((s.to_vec(), p.to_vec())),
                    (None, _, _) => return Err(ClipError::NoParameterSets { segment }),
                    (Some((s0, p0)), s, p) => {
                        if s.is_some_and(|s| s != s0.as_slice())
                            || p.is_some_and(|p| p != p0.as_slice())
                        {
                            return Err(ClipError::ParametersChange { segment });
                        }
                    }
                }
                if let Some(prev) = samples.last() {
                    let step = au.dts - prev.dts;
                    if step <= 0 || step > MAX_DTS_STEP.as_u64() as i64 {
                        return Err(ClipError::Discontinuity { segment, step });
                    }
                }
                let size = sample_len(&au.data);
                samples.push(SampleInfo {
                    dts: au.dts,
                    cts: (au.pts - au.dts) as u32,
                    size: size as u32,
                    sync: au.keyframe,
                });
                bytes += size;
            }
            chunk_samples.push((segment, aus.len() as u32, bytes));
        }
        let Some((sps, pps)) = params else {
            return Err(ClipError::Empty);
        };
        let info = parse_sps(&sps).map_err(|e| ClipError::BadSps {
            segment: 0,
            detail: e.to_string(),
        })?;
        let payload: u64 = chunk_samples.iter().map(|c| c.2).sum();

        let mut head = Vec::new();
        write_ftyp(&mut head);
        let ftyp_len = head.len() as u64;
        let mdat_header_len = if payload + 8 > u64::from(u32::MAX) {
            16
        } else {
            8
        };
        // The moov's length does not depend on the offsets it holds, only on their width.
        let moov_len = |wide: bool| {
            let mut m = Vec::new();
            write_moov(&mut m, &info, &sps, &pps, &samples, &chunk_samples, 0, wide)
                .map(|()| m.len() as u64)
        };
        let mut wide = false;
        let mut first = ftyp_len + moov_len(false)? + mdat_header_len;
        if first + payload > u64::from(u32::MAX) {
            wide = true;
            first = ftyp_len + moov_len(true)? + mdat_header_len;
        }
        write_moov(
            &mut head,
            &info,
            &sps,
            &pps,
            &samples,
            &chunk_samples,
            first,
            wide,
        )?;
        write_mdat_header(&mut head, payload);
        debug_assert_eq!(head.len() as u64, first);

        let mut parts = vec![(0, Part::Bytes(Bytes::from(head)))];
        let mut at = first;
        for &(index, _, len) in &chunk_samples {
            parts.push((at, Part::Segment { index, len }));
            at += len;
        }
        Ok(ClipFile {
            kind: Kind::Mp4,
            parts,
            len: at,
        })
    }

    /// Length of the whole file.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes before the first segment's media: the MP4's `ftyp`, `moov` and `mdat` header (what
    /// a client needs to start playing); empty for TS.
    pub fn head(&self) -> Bytes {
        match self.parts.first() {
            Some((_, Part::Bytes(b))) => b.clone(),
            _ => Bytes::new(),
        }
    }

    /// The bytes `range` of the file (clamped to its length), in chunks of at most one
    /// segment, read through `load` (the segment's file) only when the iterator gets there.
    pub fn chunks<L>(&self, range: Range<u64>, load: L) -> Chunks<'_, L>
    where
        L: FnMut(usize) -> io::Result<Vec<u8>>,
    {
        let end = range.end.min(self.len);
        Chunks {
            file: self,
            at: range.start.min(end),
            end,
            load,
        }
    }

    /// [`ClipFile::chunks`] gathered into one buffer (tests; small ranges).
    pub fn read_range<L>(&self, range: Range<u64>, load: L) -> Result<Vec<u8>, ClipError>
    where
        L: FnMut(usize) -> io::Result<Vec<u8>>,
    {
        let mut out = Vec::new();
        for c in self.chunks(range, load) {
            out.extend_from_slice(&c?);
        }
        Ok(out)
    }
}

/// The chunks of a range of a [`ClipFile`]; see [`ClipFile::chunks`]. An error ends it.
pub struct Chunks<'a, L> {
    file: &'a ClipFile,
    at: u64,
    end: u64,
    load: L,
}

impl<L> Iterator for Chunks<'_, L>
where
    L: FnMut(usize) -> io::Result<Vec<u8>>,
{
    type Item = Result<Bytes, ClipError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.end {
            return None;
        }
        let i = self.file.parts.partition_point(|(o, _)| *o <= self.at) - 1;
        let (offset, part) = &self.file.parts[i];
        let (from, to) = (self.at - offset, (self.end - offset));
        let result = match part {
            Part::Bytes(b) => {
                let to = to.min(b.len() as u64);
                Ok(b.slice(from as usize..to as usize))
            }
            Part::Segment { index, len } => {
                let to = to.min(*len);
                self.segment(*index, *len)
                    .map(|b| Bytes::from(b).slice(from as usize..to as usize))
            }
        };
        match &result {
            Ok(b) => self.at += b.len() as u64,
            Err(_) => self.at = self.end,
        }
        Some(result)
    }
}

impl<L> Chunks<'_, L>
where
    L: FnMut(usize) -> io::Result<Vec<u8>>,
{
    /// Segment `index` as the file holds it, checked against the plan.
    fn segment(&mut self, index: usize, planned: u64) -> Result<Vec<u8>, ClipError> {
        let raw = (self.load)(index).map_err(|source| ClipError::Io {
            segment: index,
            source,
        })?;
        let bytes = match self.file.kind {
            Kind::Ts => raw,
            Kind::Mp4 => segment_samples(&raw, index)?,
        };
        if bytes.len() as u64 != planned {
            return Err(ClipError::Changed {
                segment: index,
                planned,
                now: bytes.len() as u64,
            });
        }
        Ok(bytes)
    }
}

// The private helpers of `fmp4::boxes` again, and below mvhd/tkhd/mdhd with a duration (theirs
// write 0, as a fragmented movie must): when this is wired in, give those writers a duration
// parameter and drop these.
fn u16be(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}
fn u32be(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// The unity matrix of mvhd and tkhd (ISO/IEC 14496-12 §8.2.2.3).
fn unity_matrix(out: &mut Vec<u8>) {
    for v in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        u32be(out, v);
    }
}

/// `ftyp` (§4.3) of a plain progressive MP4: `isom` with `iso2`, `avc1`, `mp41`, what QuickTime
/// and browsers expect of a non-fragmented file.
fn write_ftyp(out: &mut Vec<u8>) {
    let b = boxes::open(out, b"ftyp");
    out.extend_from_slice(b"isom"); // major_brand
    u32be(out, 0x200); // minor_version
    for brand in [b"isom", b"iso2", b"avc1", b"mp41"] {
        out.extend_from_slice(brand); // compatible_brands
    }
    boxes::close(out, b);
}

/// `mdat` header (§8.1.1): 32-bit size, or `size = 1` and a 64-bit largesize past 4 GiB.
fn write_mdat_header(out: &mut Vec<u8>, payload: u64) {
    if payload + 8 <= u64::from(u32::MAX) {
        u32be(out, (payload + 8) as u32); // size
        out.extend_from_slice(b"mdat"); // type
    } else {
        u32be(out, 1); // size: see largesize
        out.extend_from_slice(b"mdat"); // type
        out.extend_from_slice(&(payload + 16).to_be_bytes()); // largesize
    }
}

/// Run-length pairs of consecutive equal values.
fn runs<T: PartialEq + Copy>(values: impl Iterator<Item = T>) -> Vec<(u32, T)> {
    let mut out: Vec<(u32, T)> = Vec::new();
    for v in values {
        match out.last_mut() {
            Some((n, last)) if *last == v => *n += 1,
            _ => out.push((1, v)),
        }
    }
    out
}

/// `moov` (§8.2.1) of the one video track; chunk `i` (segment `i`'s samples) starts at
/// `first_chunk` plus the lengths of the chunks before it.
#[allow(clippy::too_many_arguments)]
fn write_moov(
    out: &mut Vec<u8>,
    info: &crate::fmp4::avc::SpsInfo,
    sps: &[u8],
    pps: &[u8],
    samples: &[SampleInfo],
    chunks: &[(usize, u32, u64)],
    first_chunk: u64,
    wide: bool,
) -> Result<(), ClipError> {
    // Sample durations: to the next sample's decode time; the last lasts as long as the one
    // before it (a frame at a steady rate).
    let mut durations: Vec<u32> = samples
        .windows(2)
        .map(|w| (w[1].dts - w[0].dts) as u32)
        .collect();
    durations.push(durations.last().copied().unwrap_or(3000));
    let total: u64 = durations.iter().map(|&d| u64::from(d)).sum();
    let duration = u32::try_from(total).map_err(|_| ClipError::TooLong { ticks: total })?;
    let first_cts = samples.first().map_or(0, |s| s.cts);

    let moov = boxes::open(out, b"moov");
    // mvhd, §8.2.2, version 0.
    let b = boxes::open_full(out, b"mvhd", 0, 0);
    u32be(out, 0); // creation_time
    u32be(out, 0); // modification_time
    u32be(out, boxes::TIMESCALE); // timescale
    u32be(out, duration); // duration
    u32be(out, 0x0001_0000); // rate 1.0
    u16be(out, 0x0100); // volume 1.0
    out.extend_from_slice(&[0; 10]); // reserved (16 + 2 x 32 bits)
    unity_matrix(out); // matrix
    out.extend_from_slice(&[0; 24]); // pre_defined[6]
    u32be(out, boxes::TRACK_ID + 1); // next_track_ID
    boxes::close(out, b);

    let trak = boxes::open(out, b"trak");
    // tkhd, §8.3.2, version 0, track_enabled | track_in_movie.
    let b = boxes::open_full(out, b"tkhd", 0, 0x00_0003);
    u32be(out, 0); // creation_time
    u32be(out, 0); // modification_time
    u32be(out, boxes::TRACK_ID); // track_ID
    u32be(out, 0); // reserved
    u32be(out, duration); // duration (movie timescale = media timescale)
    out.extend_from_slice(&[0; 8]); // reserved[2]
    u16be(out, 0); // layer
    u16be(out, 0); // alternate_group
    u16be(out, 0); // volume: 0 for video
    u16be(out, 0); // reserved
    unity_matrix(out); // matrix
    u32be(out, info.width << 16); // width, 16.16
    u32be(out, info.height << 16); // height, 16.16
    boxes::close(out, b);
    if first_cts != 0 {
        // edts/elst, §8.6.5-6: the presentation starts at the first sample's composition time,
        // not at its decode time (B-frames from a camera).
        let e = boxes::open(out, b"edts");
        let b = boxes::open_full(out, b"elst", 0, 0);
        u32be(out, 1); // entry_count
        u32be(out, duration); // segment_duration
        u32be(out, first_cts); // media_time
        u16be(out, 1); // media_rate_integer
        u16be(out, 0); // media_rate_fraction
        boxes::close(out, b);
        boxes::close(out, e);
    }
    let mdia = boxes::open(out, b"mdia");
    // mdhd, §8.4.2, version 0, language `und`.
    let b = boxes::open_full(out, b"mdhd", 0, 0);
    u32be(out, 0); // creation_time
    u32be(out, 0); // modification_time
    u32be(out, boxes::TIMESCALE); // timescale
    u32be(out, duration); // duration
    let lang = |c: u8| u16::from(c - 0x60);
    u16be(out, (lang(b'u') << 10) | (lang(b'n') << 5) | lang(b'd')); // pad, language
    u16be(out, 0); // pre_defined
    boxes::close(out, b);
    boxes::hdlr(out);
    let minf = boxes::open(out, b"minf");
    boxes::vmhd(out);
    boxes::dinf(out);
    let stbl = boxes::open(out, b"stbl");
    boxes::stsd(out, info, sps, pps);

    // stts, §8.6.1.2: decode time deltas, run-length.
    let b = boxes::open_full(out, b"stts", 0, 0);
    let r = runs(durations.iter().copied());
    u32be(out, r.len() as u32); // entry_count
    for (count, delta) in r {
        u32be(out, count); // sample_count
        u32be(out, delta); // sample_delta
    }
    boxes::close(out, b);
    // ctts, §8.6.1.3, version 0: only when some picture is shown after it is decoded.
    if samples.iter().any(|s| s.cts != 0) {
        let b = boxes::open_full(out, b"ctts", 0, 0);
        let r = runs(samples.iter().map(|s| s.cts));
        u32be(out, r.len() as u32); // entry_count
        for (count, offset) in r {
            u32be(out, count); // sample_count
            u32be(out, offset); // sample_offset
        }
        boxes::close(out, b);
    }
    // stss, §8.6.2: the IDRs (1-based); absent means every sample is one.
    if !samples.iter().all(|s| s.sync) {
        let b = boxes::open_full(out, b"stss", 0, 0);
        let n = samples.iter().filter(|s| s.sync).count();
        u32be(out, n as u32); // entry_count
        for (i, _) in samples.iter().enumerate().filter(|(_, s)| s.sync) {
            u32be(out, i as u32 + 1); // sample_number
        }
        boxes::close(out, b);
    }
    // stsc, §8.7.4: samples per chunk (one chunk per segment), run-length by first chunk.
    let b = boxes::open_full(out, b"stsc", 0, 0);
    let mut entries: Vec<(u32, u32)> = Vec::new();
    for (i, &(_, n, _)) in chunks.iter().filter(|c| c.1 > 0).enumerate() {
        if entries.last().is_none_or(|&(_, last)| last != n) {
            entries.push((i as u32 + 1, n));
        }
    }
    u32be(out, entries.len() as u32); // entry_count
    for (first, n) in entries {
        u32be(out, first); // first_chunk
        u32be(out, n); // samples_per_chunk
        u32be(out, 1); // sample_description_index
    }
    boxes::close(out, b);
    // stsz, §8.7.3.2: every sample's size.
    let b = boxes::open_full(out, b"stsz", 0, 0);
    u32be(out, 0); // sample_size: see the table
    u32be(out, samples.len() as u32); // sample_count
    for s in samples {
        u32be(out, s.size); // entry_size
    }
    boxes::close(out, b);
    // stco or co64, §8.7.5: where each chunk starts in the file. A segment without an access
    // unit (0 bytes) is no chunk, here as in stsc.
    let b = boxes::open_full(out, if wide { b"co64" } else { b"stco" }, 0, 0);
    let non_empty = chunks.iter().filter(|c| c.1 > 0).count();
    u32be(out, non_empty as u32); // entry_count
    let mut at = first_chunk;
    for &(_, n, len) in chunks {
        if n > 0 {
            if wide {
                out.extend_from_slice(&at.to_be_bytes()); // chunk_offset (64)
            } else {
                u32be(out, at as u32); // chunk_offset
            }
        }
        at += len;
    }
    boxes::close(out, b);
    boxes::close(out, stbl);
    boxes::close(out, minf);
    boxes::close(out, mdia);
    boxes::close(out, trak);
    boxes::close(out, moov);
    Ok(())
}

#[cfg(test)]
#[path = "clip_tests.rs"]
mod tests;
