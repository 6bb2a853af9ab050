//! Clips of segments made by the product's own encoder and muxer, read back by independent
//! readers: `mpeg2ts` for the input, `mp4-atom` (strict) for the MP4, ffmpeg when installed.

use std::process::Command;

use mp4_atom::{Any, Codec, Decode};
use mpeg2ts::pes::{PesPacketReader, ReadPesPacket};
use mpeg2ts::ts::TsPacketReader;

use super::*;
use crate::recording::testutil::{make, make_from, Made};
use crate::time::FrameRate;

#[test]
fn unwrap_crosses_2_pow_33() {
    let mut u = Unwrap::default();
    let start = PTS_MODULUS - 3003;
    assert_eq!(u.unwrap(start), start as i64);
    assert_eq!(u.unwrap(0), PTS_MODULUS as i64);
    assert_eq!(u.unwrap(3003), PTS_MODULUS as i64 + 3003);
    assert_eq!(
        u.unwrap(0),
        PTS_MODULUS as i64,
        "a small step back stays small"
    );
}

fn fps30() -> FrameRate {
    FrameRate::new(30, 1).unwrap()
}

/// The access units of the segments as mpeg2ts reads them: (PES payload) each.
fn input_aus(segments: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for s in segments {
        let mut r = PesPacketReader::new(TsPacketReader::new(&s[..]));
        while let Some(p) = r.read_pes_packet().unwrap() {
            if p.header.stream_id.is_video() {
                out.push(p.data);
            }
        }
    }
    out
}

/// The NAL units of an Annex B access unit a sample must carry: all but AUD, SPS, PPS.
fn picture_nals(au: &[u8]) -> Vec<Vec<u8>> {
    nal_units(au)
        .filter(|n| !matches!(nal_type(n), NAL_AUD | NAL_SPS | NAL_PPS))
        .map(<[u8]>::to_vec)
        .collect()
}

/// The NAL units of a length-prefixed sample.
fn sample_nals(mut s: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !s.is_empty() {
        let n = u32::from_be_bytes(s[..4].try_into().unwrap()) as usize;
        out.push(s[4..4 + n].to_vec());
        s = &s[4 + n..];
    }
    out
}

fn loader(segments: &[Vec<u8>]) -> impl FnMut(usize) -> io::Result<Vec<u8>> + '_ {
    |i| Ok(segments[i].clone())
}

fn whole(file: &ClipFile, segments: &[Vec<u8>]) -> Vec<u8> {
    file.read_range(0..file.len(), loader(segments)).unwrap()
}

fn top_level(bytes: &[u8]) -> Vec<Any> {
    let mut rest = bytes;
    let mut atoms = Vec::new();
    while !rest.is_empty() {
        atoms.push(Any::decode(&mut rest).expect("mp4-atom reads every box"));
    }
    atoms
}

/// The MP4 holds the input's access units unchanged, one sample each, its index first.
#[test]
fn mp4_has_its_index_first_and_the_same_access_units() {
    let made = make(320, 180, fps30(), 90, 30);
    assert_eq!(made.segments.len(), 3);
    let file = ClipFile::mp4(made.segments.len(), loader(&made.segments)).unwrap();
    let bytes = whole(&file, &made.segments);
    assert_eq!(bytes.len() as u64, file.len());
    assert!(bytes.starts_with(&file.head()));

    let atoms = top_level(&bytes);
    let [Any::Ftyp(ftyp), Any::Moov(moov), Any::Mdat(_)] = atoms.as_slice() else {
        panic!(
            "want ftyp, moov, mdat: {:?}",
            atoms.iter().map(|a| a.kind()).collect::<Vec<_>>()
        );
    };
    assert_eq!(ftyp.major_brand, b"isom".into());
    assert_eq!(moov.mvhd.timescale, 90_000);
    assert_eq!(moov.mvhd.duration, 90 * 3000);
    let trak = &moov.trak[0];
    assert_eq!(trak.mdia.mdhd.duration, 90 * 3000);
    assert_eq!(
        (trak.tkhd.width.integer(), trak.tkhd.height.integer()),
        (320, 180)
    );
    let stbl = &trak.mdia.minf.stbl;
    let Codec::Avc1(avc1) = &stbl.stsd.codecs[0] else {
        panic!("{:?}", stbl.stsd.codecs)
    };
    let first = &input_aus(&made.segments[..1])[0];
    let sps = nal_units(first).find(|n| nal_type(n) == NAL_SPS).unwrap();
    assert_eq!(avc1.avcc.sequence_parameter_sets[0], sps);

    let mp4_atom::StszSamples::Different { sizes } = &stbl.stsz.samples else {
        panic!("{:?}", stbl.stsz)
    };
    let aus = input_aus(&made.segments);
    assert_eq!(sizes.len(), aus.len(), "one sample per access unit");
    assert_eq!(stbl.stts.entries.len(), 1);
    assert_eq!(
        (
            stbl.stts.entries[0].sample_count,
            stbl.stts.entries[0].sample_delta
        ),
        (90, 3000)
    );
    assert!(stbl.ctts.is_none(), "no B-frames, no composition offsets");
    assert_eq!(stbl.stss.as_ref().unwrap().entries, [1, 31, 61]);
    assert_eq!(stbl.stsc.entries.len(), 1);
    assert_eq!(stbl.stsc.entries[0].samples_per_chunk, 30);
    let offsets = &stbl.stco.as_ref().unwrap().entries;
    assert_eq!(offsets.len(), 3);
    assert_eq!(u64::from(offsets[0]), file.head().len() as u64);

    // Every sample, found through the index, is its access unit's NAL units, byte for byte.
    let mut k = 0;
    for (c, &off) in offsets.iter().enumerate() {
        let mut at = off as usize;
        for _ in 0..30 {
            let size = sizes[k] as usize;
            assert_eq!(
                sample_nals(&bytes[at..at + size]),
                picture_nals(&aus[k]),
                "chunk {c} sample {k}"
            );
            at += size;
            k += 1;
        }
    }
    assert_eq!(k, aus.len());
    let last: usize = sizes[60..].iter().map(|&s| s as usize).sum();
    assert_eq!(
        bytes.len(),
        offsets[2] as usize + last,
        "the mdat ends the file"
    );
}

#[test]
fn a_range_is_the_same_slice_of_the_whole_file() {
    let made = make(320, 180, fps30(), 90, 30);
    let mp4 = ClipFile::mp4(made.segments.len(), loader(&made.segments)).unwrap();
    let lens: Vec<u64> = made.segments.iter().map(|s| s.len() as u64).collect();
    let ts = ClipFile::ts(&lens);
    let concat = made.segments.concat();
    assert_eq!(whole(&ts, &made.segments), concat);
    assert!(ts.head().is_empty());
    for file in [&mp4, &ts] {
        let full = whole(file, &made.segments);
        let n = file.len();
        let head = file.head().len() as u64;
        let cuts = [
            (0, 1),
            (0, head + 1),
            (head - head.min(3), head + 5),
            (head, head + 100),
            (n / 3, 2 * n / 3),
            (n / 2, n / 2),
            (n - 10, n),
            (n - 10, n + 1000),
            (n + 5, n + 10),
        ];
        for (a, b) in cuts {
            let mut loads = 0;
            let got = file
                .read_range(a..b, |i| {
                    loads += 1;
                    Ok(made.segments[i].clone())
                })
                .unwrap();
            let (a2, b2) = (a.min(n) as usize, b.min(n) as usize);
            assert_eq!(got, full[a2.min(b2)..b2], "range {a}..{b} of {n}");
            assert!(loads <= 3);
        }
        // Chunks come one segment at a time (the head alone first for the MP4).
        let sizes: Vec<usize> = file
            .chunks(0..n, loader(&made.segments))
            .map(|c| c.unwrap().len())
            .collect();
        assert_eq!(sizes.len(), if head > 0 { 4 } else { 3 });
        assert_eq!(sizes[0] as u64, if head > 0 { head } else { lens[0] });
    }
}

#[test]
fn a_segment_that_changed_since_the_plan_is_an_error() {
    let made = make(160, 96, fps30(), 60, 30);
    let file = ClipFile::mp4(2, loader(&made.segments)).unwrap();
    let r = file.read_range(0..file.len(), |i| {
        let mut s = made.segments[i].clone();
        if i == 1 {
            s.truncate(s.len() - 188 * 3);
        }
        Ok(s)
    });
    assert!(
        matches!(r, Err(ClipError::Changed { segment: 1, .. })),
        "{r:?}"
    );
    let r = ClipFile::mp4(2, |_| Err(io::Error::other("gone")));
    assert!(matches!(r, Err(ClipError::Io { segment: 0, .. })), "{r:?}");
}

/// A clip crossing the 33-bit PTS wrap has steady sample durations.
#[test]
fn a_clip_across_the_pts_wrap() {
    let made = make_from(160, 96, fps30(), 60, 30, (1 << 33) - 3000 * 20);
    assert!(made.frames[59].0 < made.frames[0].0, "wrapped");
    let file = ClipFile::mp4(2, loader(&made.segments)).unwrap();
    let atoms = top_level(&whole(&file, &made.segments));
    let Any::Moov(moov) = &atoms[1] else { panic!() };
    let stts = &moov.trak[0].mdia.minf.stbl.stts;
    assert_eq!(stts.entries.len(), 1, "{stts:?}");
    assert_eq!(stts.entries[0].sample_delta, 3000);
}

#[test]
fn discontinuities_and_new_parameter_sets_are_refused() {
    let a = make(160, 96, fps30(), 30, 30);
    let later = make_from(160, 96, fps30(), 30, 30, 90_000 * 3600);
    let jump = [a.segments[0].clone(), later.segments[0].clone()];
    let r = ClipFile::mp4(2, loader(&jump));
    assert!(
        matches!(r, Err(ClipError::Discontinuity { segment: 1, .. })),
        "{r:?}"
    );
    let other = make_from(192, 108, fps30(), 30, 30, 90_000 + 90_000);
    let resized = [a.segments[0].clone(), other.segments[0].clone()];
    let r = ClipFile::mp4(2, loader(&resized));
    assert!(
        matches!(r, Err(ClipError::ParametersChange { segment: 1 })),
        "{r:?}"
    );
    let r = ClipFile::mp4(0, loader(&resized));
    assert!(matches!(r, Err(ClipError::Empty)), "{r:?}");
}

fn ffmpeg_available() -> bool {
    Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// ffmpeg decodes both clips without a word and counts every frame (29.97 fps, 2 s segments).
#[test]
#[allow(clippy::print_stderr)] // the one way a test can say it skipped
fn ffmpeg_decodes_both_clips_cleanly() {
    if !ffmpeg_available() {
        // Not a failure: the structure is checked above with mp4-atom and mpeg2ts.
        eprintln!("skipped: ffmpeg is not on PATH");
        return;
    }
    let rate = FrameRate::new(30_000, 1001).unwrap();
    let Made { segments, .. } = make(320, 180, rate, 180, 60);
    let dir = tempfile::tempdir().unwrap();
    let mp4 = ClipFile::mp4(segments.len(), loader(&segments)).unwrap();
    let lens: Vec<u64> = segments.iter().map(|s| s.len() as u64).collect();
    let ts = ClipFile::ts(&lens);
    for (name, file) in [("clip.mp4", &mp4), ("clip.ts", &ts)] {
        let path = dir.path().join(name);
        std::fs::write(&path, whole(file, &segments)).unwrap();
        let out = Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(&path)
            .args(["-f", "null", "-"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {out:?}");
        assert!(
            out.stderr.is_empty() && out.stdout.is_empty(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let probe = Command::new("ffprobe")
            .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
            .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
            .arg(&path)
            .output()
            .unwrap();
        // A TS lists the stream once more under its program.
        let counts = String::from_utf8_lossy(&probe.stdout).into_owned();
        let counts: Vec<&str> = counts.lines().filter(|l| !l.is_empty()).collect();
        assert!(
            !counts.is_empty() && counts.iter().all(|&c| c == "180"),
            "{name}: {counts:?} {}",
            String::from_utf8_lossy(&probe.stderr)
        );
    }
}
