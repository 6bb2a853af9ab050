//! The detector's fragmented-MP4 reader: just enough of ISO/IEC 14496-12 to turn an init
//! segment (`moov`: the track's timescale in `mdhd` §8.4.2, its `avcC` parameter sets,
//! ISO/IEC 14496-15 §5.3.3.1) and a media segment (`moof` §8.8.4 with `tfhd` §8.8.7, `tfdt`
//! §8.8.12 and `trun` §8.8.8, then `mdat`) into Annex B access units with presentation times,
//! which [`super::media::SegmentReader`] decodes like demuxed TS.
//!
//! Hand-written like the writer it reads (`hls::fmp4`), but independent of it: any fMP4 H.264
//! stream with one video track reads (other timescales, 64- or 32-bit `tfdt`, defaults in
//! `tfhd`/`trex`, signed or unsigned composition offsets, data offsets from the moof or from
//! an explicit base). Everything is bounds-checked: hostile bytes give an error, never a panic.

/// What the init segment says about the video track.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Init {
    pub(crate) track_id: u32,
    pub(crate) timescale: u32,
    /// SPS and PPS NAL units from the `avcC`, in order.
    pub(crate) parameter_sets: Vec<Vec<u8>>,
    /// NAL unit length field size (1, 2 or 4).
    pub(crate) length_size: usize,
    /// `trex` defaults: duration, size, flags.
    defaults: (u32, u32, u32),
}

/// One access unit of a segment: Annex B bytes and its presentation time in 90 kHz ticks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Sample {
    pub(crate) pts_90k: u64,
    pub(crate) sync: bool,
    pub(crate) annex_b: Vec<u8>,
}

/// The boxes directly inside `data`: (type, body).
fn boxes(mut data: &[u8]) -> impl Iterator<Item = Result<([u8; 4], &[u8]), String>> {
    std::iter::from_fn(move || {
        if data.is_empty() {
            return None;
        }
        let r = (|| {
            let size =
                u32::from_be_bytes(data.get(..4).ok_or("box header cut")?.try_into().unwrap());
            let kind: [u8; 4] = data.get(4..8).ok_or("box header cut")?.try_into().unwrap();
            let (header, size) = match size {
                0 => (8, data.len()),
                1 => {
                    let large = u64::from_be_bytes(
                        data.get(8..16).ok_or("largesize cut")?.try_into().unwrap(),
                    );
                    (16, usize::try_from(large).map_err(|_| "box too large")?)
                }
                n => (8, n as usize),
            };
            if size < header || size > data.len() {
                return Err(format!(
                    "box {:?} of {size} bytes in {} bytes",
                    String::from_utf8_lossy(&kind),
                    data.len()
                ));
            }
            let body = &data[header..size];
            data = &data[size..];
            Ok((kind, body))
        })();
        if r.is_err() {
            data = &[];
        }
        Some(r)
    })
}

/// The first box of type `kind` inside `data`.
fn child<'a>(data: &'a [u8], kind: &[u8; 4]) -> Result<Option<&'a [u8]>, String> {
    for b in boxes(data) {
        let (k, body) = b?;
        if &k == kind {
            return Ok(Some(body));
        }
    }
    Ok(None)
}

fn need<'a>(data: &'a [u8], kind: &[u8; 4]) -> Result<&'a [u8], String> {
    child(data, kind)?.ok_or_else(|| format!("no {:?} box", String::from_utf8_lossy(kind)))
}

fn be32(d: &[u8], at: usize) -> Result<u32, String> {
    d.get(at..at + 4)
        .map(|b| u32::from_be_bytes(b.try_into().unwrap()))
        .ok_or_else(|| format!("field at {at} past a {}-byte box", d.len()))
}

fn be64(d: &[u8], at: usize) -> Result<u64, String> {
    d.get(at..at + 8)
        .map(|b| u64::from_be_bytes(b.try_into().unwrap()))
        .ok_or_else(|| format!("field at {at} past a {}-byte box", d.len()))
}

/// Reads an init segment: the first video track (`hdlr` `vide`) with an `avc1`/`avc3` entry.
pub(crate) fn read_init(data: &[u8]) -> Result<Init, String> {
    let moov = need(data, b"moov")?;
    let mut found = None;
    for b in boxes(moov) {
        let (kind, trak) = b?;
        if &kind != b"trak" {
            continue;
        }
        let tkhd = need(trak, b"tkhd")?;
        let track_id = be32(tkhd, if tkhd.first() == Some(&1) { 20 } else { 12 })?;
        let mdia = need(trak, b"mdia")?;
        let hdlr = need(mdia, b"hdlr")?;
        if hdlr.get(8..12) != Some(b"vide") {
            continue;
        }
        let mdhd = need(mdia, b"mdhd")?;
        let timescale = be32(mdhd, if mdhd.first() == Some(&1) { 20 } else { 12 })?;
        if timescale == 0 {
            return Err("mdhd timescale 0".into());
        }
        let stsd = need(need(need(mdia, b"minf")?, b"stbl")?, b"stsd")?;
        // stsd: version/flags, entry_count, then sample entries.
        let entries = stsd.get(8..).ok_or("stsd cut")?;
        let (kind, entry) = boxes(entries).next().ok_or("stsd has no entry")??;
        if &kind != b"avc1" && &kind != b"avc3" {
            return Err(format!(
                "sample entry {:?} is not H.264",
                String::from_utf8_lossy(&kind)
            ));
        }
        // VisualSampleEntry: 78 bytes of fields before its child boxes (§12.1.3).
        let avcc = need(entry.get(78..).ok_or("avc1 entry cut")?, b"avcC")?;
        let length_size = usize::from(avcc.get(4).ok_or("avcC cut")? & 3) + 1;
        if length_size == 3 {
            return Err("avcC lengthSizeMinusOne 2".into());
        }
        let mut parameter_sets = Vec::new();
        let mut at = 5;
        for mask in [0x1f, 0xff] {
            let n = usize::from(avcc.get(at).ok_or("avcC cut")? & mask);
            at += 1;
            for _ in 0..n {
                let len = usize::from(u16::from_be_bytes(
                    avcc.get(at..at + 2).ok_or("avcC cut")?.try_into().unwrap(),
                ));
                parameter_sets.push(avcc.get(at + 2..at + 2 + len).ok_or("avcC cut")?.to_vec());
                at += 2 + len;
            }
        }
        found = Some(Init {
            track_id,
            timescale,
            parameter_sets,
            length_size,
            defaults: (0, 0, 0),
        });
        break;
    }
    let mut init = found.ok_or("no H.264 video track in the init segment")?;
    if let Some(mvex) = child(moov, b"mvex")? {
        for b in boxes(mvex) {
            let (kind, trex) = b?;
            if &kind == b"trex" && be32(trex, 4)? == init.track_id {
                init.defaults = (be32(trex, 12)?, be32(trex, 16)?, be32(trex, 20)?);
            }
        }
    }
    Ok(init)
}

/// Reads a media segment (one or more `moof` + `mdat`) of the track `init` describes.
pub(crate) fn read_segment(init: &Init, data: &[u8]) -> Result<Vec<Sample>, String> {
    let mut samples = Vec::new();
    let mut offset = 0usize;
    for b in boxes(data) {
        let (kind, body) = b?;
        let header = if u32::from_be_bytes(data[offset..offset + 4].try_into().unwrap()) == 1 {
            16
        } else {
            8
        };
        let start = offset;
        offset += header + body.len();
        if &kind != b"moof" {
            continue;
        }
        for t in boxes(body) {
            let (kind, traf) = t?;
            if &kind != b"traf" {
                continue;
            }
            read_traf(init, data, start, traf, &mut samples)?;
        }
    }
    if samples.is_empty() {
        return Err("no video sample in the segment".into());
    }
    Ok(samples)
}

/// One track fragment's samples, appended to `out`.
fn read_traf(
    init: &Init,
    data: &[u8],
    moof_start: usize,
    traf: &[u8],
    out: &mut Vec<Sample>,
) -> Result<(), String> {
    let tfhd = need(traf, b"tfhd")?;
    let flags = be32(tfhd, 0)? & 0x00ff_ffff;
    if be32(tfhd, 4)? != init.track_id {
        return Ok(());
    }
    let mut at = 8;
    let mut base = moof_start as u64;
    if flags & 0x1 != 0 {
        base = be64(tfhd, at)?;
        at += 8;
    }
    if flags & 0x2 != 0 {
        at += 4;
    }
    let (mut d_dur, mut d_size, mut d_flags) = init.defaults;
    if flags & 0x8 != 0 {
        d_dur = be32(tfhd, at)?;
        at += 4;
    }
    if flags & 0x10 != 0 {
        d_size = be32(tfhd, at)?;
        at += 4;
    }
    if flags & 0x20 != 0 {
        d_flags = be32(tfhd, at)?;
    }
    let tfdt = need(traf, b"tfdt")?;
    let mut decode_time = if tfdt.first() == Some(&1) {
        be64(tfdt, 4)?
    } else {
        u64::from(be32(tfdt, 4)?)
    };
    let mut next_data = base;
    for b in boxes(traf) {
        let (kind, trun) = b?;
        if &kind != b"trun" {
            continue;
        }
        let version = trun[0];
        let tflags = be32(trun, 0)? & 0x00ff_ffff;
        let count = be32(trun, 4)? as usize;
        let mut at = 8;
        let mut pos = next_data;
        if tflags & 0x1 != 0 {
            pos = base.wrapping_add(i64::from(be32(trun, at)? as i32) as u64);
            at += 4;
        }
        let mut first_flags = None;
        if tflags & 0x4 != 0 {
            first_flags = Some(be32(trun, at)?);
            at += 4;
        }
        let per = [0x100, 0x200, 0x400, 0x800]
            .iter()
            .filter(|f| tflags & **f != 0)
            .count();
        if count > (trun.len().saturating_sub(at)) / (4 * per).max(1) && per > 0 {
            return Err(format!("trun of {count} samples in {} bytes", trun.len()));
        }
        for i in 0..count {
            let mut field = |bit: u32, default: u32| -> Result<u32, String> {
                if tflags & bit != 0 {
                    let v = be32(trun, at)?;
                    at += 4;
                    Ok(v)
                } else {
                    Ok(default)
                }
            };
            let duration = field(0x100, d_dur)?;
            let size = field(0x200, d_size)? as usize;
            let sflags = field(
                0x400,
                if i == 0 {
                    first_flags.unwrap_or(d_flags)
                } else {
                    d_flags
                },
            )?;
            let cts_raw = field(0x800, 0)?;
            let cts = if version == 1 {
                i64::from(cts_raw as i32)
            } else {
                i64::from(cts_raw)
            };
            let start = usize::try_from(pos).map_err(|_| "data offset out of range")?;
            let sample = data
                .get(start..start.checked_add(size).ok_or("sample size overflows")?)
                .ok_or_else(|| format!("sample {i} at {start}+{size} past the segment"))?;
            pos += size as u64;
            let pts = decode_time as i128 + i128::from(cts);
            let pts_90k = (pts.max(0) * i128::from(hls::time::TICKS_PER_SEC)
                / i128::from(init.timescale)) as u64;
            let sync = sflags & 0x0001_0000 == 0;
            let mut annex_b = Vec::with_capacity(size + 64);
            if sync {
                for ps in &init.parameter_sets {
                    annex_b.extend_from_slice(&[0, 0, 0, 1]);
                    annex_b.extend_from_slice(ps);
                }
            }
            let mut rest = sample;
            while !rest.is_empty() {
                let n = init.length_size;
                let len = rest
                    .get(..n)
                    .ok_or("NAL length cut")?
                    .iter()
                    .fold(0usize, |a, b| (a << 8) | usize::from(*b));
                let nal = rest.get(n..n + len).ok_or("NAL unit past its sample")?;
                annex_b.extend_from_slice(&[0, 0, 0, 1]);
                annex_b.extend_from_slice(nal);
                rest = &rest[n + len..];
            }
            out.push(Sample {
                pts_90k,
                sync,
                annex_b,
            });
            decode_time = decode_time.wrapping_add(u64::from(duration));
        }
        next_data = pos;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hls::fmp4::Fmp4Muxer;
    use hls::time::Pts;
    use hls::ts::AccessUnit;

    /// A High profile (100) level 4.0 SPS for 1920x1080, cropped from 1088 lines: the writer's
    /// tests build it as `make_sps(100, 40, 1920, 1080, false)` (src/fmp4/tests.rs).
    const SPS_1080P: [u8; 11] = [
        0x67, 0x64, 0xc0, 0x28, 0xac, 0xda, 0x01, 0xe0, 0x08, 0x9f, 0x95,
    ];

    /// A PPS (the writer's tests' own).
    const PPS: [u8; 4] = [0x68, 0xce, 0x3c, 0x80];

    /// NAL units behind start codes.
    fn annex_b(nals: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for n in nals {
            v.extend_from_slice(&[0, 0, 0, 1]);
            v.extend_from_slice(n);
        }
        v
    }

    #[test]
    fn reads_what_our_writer_wrote_and_refuses_cut_bytes() {
        let sps = SPS_1080P.to_vec();
        let mut mux = Fmp4Muxer::new();
        let aus: Vec<Vec<u8>> = (0..6u8)
            .map(|i| {
                if i == 0 {
                    annex_b(&[&sps, &PPS, &[0x65, 1, 2, 3]])
                } else {
                    annex_b(&[&[0x41, i, i], &[0x41, 9]])
                }
            })
            .collect();
        let mut seg = Vec::new();
        let base = (1u64 << 33) + 100;
        for (i, au) in aus.iter().enumerate() {
            mux.push(&AccessUnit {
                data: au,
                pts: Pts(base + i as u64 * 3000 + 3000),
                dts: Some(Pts(base + i as u64 * 3000)),
                keyframe: i == 0,
            })
            .unwrap();
            if i == 2 {
                mux.flush_fragment(Pts(base + 9000), &mut seg).unwrap();
            }
        }
        mux.flush_fragment(Pts(base + 18_000), &mut seg).unwrap();
        let mut init_bytes = Vec::new();
        mux.write_init(&mut init_bytes);
        let init = read_init(&init_bytes).unwrap();
        assert_eq!(init.timescale, 90_000);
        assert_eq!(init.parameter_sets, vec![sps.clone(), PPS.to_vec()]);
        let samples = read_segment(&init, &seg).unwrap();
        assert_eq!(samples.len(), 6);
        for (i, s) in samples.iter().enumerate() {
            assert_eq!(s.pts_90k, base + i as u64 * 3000 + 3000);
            assert_eq!(s.sync, i == 0);
            let want = if i == 0 {
                annex_b(&[&sps, &PPS, &[0x65, 1, 2, 3]])
            } else {
                aus[i].clone()
            };
            assert_eq!(s.annex_b, want, "sample {i}");
        }
        for len in 0..seg.len() {
            let _ = read_segment(&init, &seg[..len]);
        }
        for len in 0..init_bytes.len() {
            assert!(read_init(&init_bytes[..len]).is_err(), "{len}");
        }
    }
}
