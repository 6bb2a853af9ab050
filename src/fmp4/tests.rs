//! The fMP4 writer box by box, then whole init segments and fragments read back by an
//! independent reader, `mp4-atom` (its `strict` feature: a box with bytes left over or one it
//! does not know is an error), and by openh264's own SPS.

use mp4_atom::{Any, Codec, Decode, Mdat, Moof, Moov};

use super::avc::*;
use super::boxes::{self, Sample};
use super::*;
use crate::encode::{EncoderSettings, H264Encoder};
use crate::frame::YuvFrame;
use crate::time::{FrameRate, StreamTime};

/// Writes RBSP bits, then the NAL unit with emulation prevention bytes (H.264 §7.4.1).
struct BitWriter {
    bytes: Vec<u8>,
    bits: u8,
}

impl BitWriter {
    fn new() -> Self {
        BitWriter {
            bytes: Vec::new(),
            bits: 0,
        }
    }
    fn bit(&mut self, b: u32) {
        if self.bits == 0 {
            self.bytes.push(0);
        }
        if b != 0 {
            *self.bytes.last_mut().unwrap() |= 0x80 >> self.bits;
        }
        self.bits = (self.bits + 1) % 8;
    }
    fn bits(&mut self, v: u32, n: u8) {
        for i in (0..n).rev() {
            self.bit((v >> i) & 1);
        }
    }
    fn ue(&mut self, v: u32) {
        let x = u64::from(v) + 1;
        let len = 64 - x.leading_zeros() as u8;
        for _ in 0..len - 1 {
            self.bit(0);
        }
        for i in (0..len).rev() {
            self.bit(((x >> i) & 1) as u32);
        }
    }
    fn se(&mut self, v: i32) {
        self.ue(if v > 0 {
            2 * v as u32 - 1
        } else {
            (-2 * v) as u32
        });
    }
    /// rbsp_trailing_bits, then the NAL unit with emulation prevention.
    fn nal(mut self, header: u8) -> Vec<u8> {
        self.bit(1);
        while self.bits != 0 {
            self.bit(0);
        }
        let mut out = vec![header];
        let mut zeros = 0;
        for b in self.bytes {
            if zeros >= 2 && b <= 3 {
                out.push(3);
                zeros = 0;
            }
            zeros = if b == 0 { zeros + 1 } else { 0 };
            out.push(b);
        }
        out
    }
}

/// An SPS for a `width` x `height` frame (multiples of 2), cropped from whole macroblocks as
/// encoders do; High profile with scaling lists when `high`.
pub(crate) fn make_sps(
    profile: u8,
    level: u8,
    width: u32,
    height: u32,
    high_extras: bool,
) -> Vec<u8> {
    make_sps_with(profile, level, width, height, high_extras, -3)
}

/// [`make_sps`] with offset_for_non_ref_pic (written with `high_extras` only).
fn make_sps_with(
    profile: u8,
    level: u8,
    width: u32,
    height: u32,
    high_extras: bool,
    non_ref_offset: i32,
) -> Vec<u8> {
    let mut w = BitWriter::new();
    w.bits(u32::from(profile), 8);
    w.bits(0xc0, 8); // constraint_set0/1
    w.bits(u32::from(level), 8);
    w.ue(0); // seq_parameter_set_id
    if profile == 100 {
        w.ue(1); // chroma_format_idc 4:2:0
        w.ue(0); // bit_depth_luma_minus8
        w.ue(0); // bit_depth_chroma_minus8
        w.bit(0); // qpprime
        w.bit(u32::from(high_extras)); // seq_scaling_matrix_present_flag
        if high_extras {
            for i in 0..8 {
                w.bit(u32::from(i % 3 == 0)); // seq_scaling_list_present_flag
                if i % 3 == 0 {
                    let size = if i < 6 { 16 } else { 64 };
                    for j in 0..size {
                        // delta_scale: 16, then 17, 16, 17... (never 0: that ends the list)
                        w.se(if j == 0 {
                            8
                        } else if j % 2 == 1 {
                            1
                        } else {
                            -1
                        });
                    }
                }
            }
        }
    }
    w.ue(0); // log2_max_frame_num_minus4
    w.ue(if high_extras { 1 } else { 0 }); // pic_order_cnt_type
    if high_extras {
        w.bit(0); // delta_pic_order_always_zero_flag
        w.se(non_ref_offset); // offset_for_non_ref_pic
        w.se(2); // offset_for_top_to_bottom_field
        w.ue(2); // num_ref_frames_in_pic_order_cnt_cycle
        w.se(1);
        w.se(-1);
    } else {
        w.ue(2); // log2_max_pic_order_cnt_lsb_minus4
    }
    w.ue(1); // max_num_ref_frames
    w.bit(0); // gaps
    let mbs_w = width.div_ceil(16);
    let mbs_h = height.div_ceil(16);
    w.ue(mbs_w - 1);
    w.ue(mbs_h - 1);
    w.bit(1); // frame_mbs_only_flag
    w.bit(1); // direct_8x8_inference_flag
    let (crop_r, crop_b) = ((mbs_w * 16 - width) / 2, (mbs_h * 16 - height) / 2);
    w.bit(u32::from(crop_r + crop_b > 0)); // frame_cropping_flag
    if crop_r + crop_b > 0 {
        w.ue(0);
        w.ue(crop_r);
        w.ue(0);
        w.ue(crop_b);
    }
    w.bit(0); // vui_parameters_present_flag
    w.nal(0x67)
}

pub(crate) const PPS: [u8; 4] = [0x68, 0xce, 0x3c, 0x80];

pub(crate) fn annex_b(nals: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    for n in nals {
        v.extend_from_slice(&[0, 0, 0, 1]);
        v.extend_from_slice(n);
    }
    v
}

fn avcc_of(nals: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    for n in nals {
        v.extend_from_slice(&(n.len() as u32).to_be_bytes());
        v.extend_from_slice(n);
    }
    v
}

pub(crate) fn decode_all(mut bytes: &[u8]) -> Vec<Any> {
    let mut atoms = Vec::new();
    while !bytes.is_empty() {
        atoms.push(Any::decode(&mut bytes).expect("mp4-atom reads every box we write"));
    }
    atoms
}

#[test]
fn nal_units_split_like_annex_b() {
    let data = [
        9, 9, // not a NAL unit: before the first start code
        0, 0, 0, 1, 0x67, 1, 2, // 4-byte start code
        0, 0, 1, 0x68, 3, 0, 0, // 3-byte start code, trailing_zero_8bits
        0, 0, 0, 1, 0x65, 0, 0, 3, 0, 9, // emulation prevention is inside the NAL unit
    ];
    let nals: Vec<&[u8]> = nal_units(&data).collect();
    assert_eq!(
        nals,
        vec![
            &[0x67, 1, 2][..],
            &[0x68, 3][..],
            &[0x65, 0, 0, 3, 0, 9][..]
        ]
    );
    assert_eq!(nal_units(&[0, 0, 1]).count(), 0);
    assert_eq!(nal_units(&[1, 2, 3, 0, 0]).count(), 0);
    // Agrees with the encoder module's splitter on the bytes both accept.
    let theirs: Vec<&[u8]> = crate::encode::annexb_nals(&data[2..]).collect();
    assert_eq!(nals, theirs);
}

#[test]
fn sps_fields_and_codec_string_of_synthetic_streams() {
    for (profile, level, w, h, extras) in [
        (66u8, 31u8, 1280u32, 720u32, false),
        (77, 40, 1920, 1080, false),
        (100, 42, 1920, 1080, true),
        (100, 51, 3840, 2160, false),
        (66, 10, 176, 144, false),
        (100, 30, 322, 242, true),
    ] {
        let sps = make_sps(profile, level, w, h, extras);
        let info = parse_sps(&sps).unwrap_or_else(|e| panic!("{w}x{h}: {e}"));
        assert_eq!((info.width, info.height), (w, h), "profile {profile}");
        assert_eq!(info.profile_idc, profile);
        assert_eq!(info.level_idc, level);
        assert_eq!(info.chroma_format_idc, 1);
        assert_eq!(
            info.codec_string(),
            format!("avc1.{profile:02x}c0{level:02x}")
        );
        assert_eq!(
            codec_string_of_access_unit(&annex_b(&[&sps, &PPS, &[0x65, 0x88]])),
            Some(info.codec_string())
        );
    }
    assert_eq!(
        parse_sps(&make_sps(100, 40, 1920, 1080, false))
            .unwrap()
            .codec_string(),
        "avc1.64c028"
    );
}

#[test]
fn sps_with_emulation_prevention_bytes_reads_through_them() {
    // A large offset_for_non_ref_pic is a ue(v) with a long run of zero bits: look for values
    // whose NAL unit needs emulation prevention bytes.
    let mut found = 0;
    for k in 14..30 {
        for j in 0..16 {
            let off = (1i32 << k) + j;
            let sps = make_sps_with(100, 40, 1280, 720, true, off);
            if !sps.windows(3).any(|w| w == [0, 0, 3]) {
                continue;
            }
            found += 1;
            let info = parse_sps(&sps).unwrap_or_else(|e| panic!("{off}: {e}: {sps:02x?}"));
            assert_eq!((info.width, info.height), (1280, 720), "{off}");
        }
    }
    assert!(found >= 5, "only {found} SPS with emulation prevention");
}

#[test]
fn sps_of_openh264_gives_the_encoded_size() {
    for (w, h) in [(1280usize, 720usize), (1920, 1080), (160, 96), (322, 182)] {
        let mut enc = H264Encoder::new(EncoderSettings {
            width: w,
            height: h,
            rate: FrameRate::new(30, 1).unwrap(),
            bitrate_bps: 500_000,
            gop_frames: 30,
        })
        .unwrap();
        let mut out = Vec::new();
        enc.encode(&YuvFrame::new(w, h), StreamTime(0), true, &mut out)
            .unwrap();
        let sps = nal_units(&out).find(|n| nal_type(n) == NAL_SPS).unwrap();
        let info = parse_sps(sps).unwrap();
        assert_eq!((info.width as usize, info.height as usize), (w, h));
        assert_eq!(
            info.codec_string(),
            format!("avc1.{:02x}{:02x}{:02x}", sps[1], sps[2], sps[3])
        );
    }
}

#[test]
fn truncated_or_hostile_sps_is_an_error_never_a_panic() {
    let sps = make_sps(100, 42, 1920, 1080, true);
    let whole = parse_sps(&sps).unwrap();
    for len in 0..sps.len() {
        // A cut SPS is refused, or (cut only in its trailing bits) reads the same.
        if let Ok(info) = parse_sps(&sps[..len]) {
            assert!(len >= sps.len() - 2 && info == whole, "{len} bytes");
        }
    }
    assert!(parse_sps(&sps[..sps.len() - 3]).is_err());
    // 40 zero bits: a ue(v) longer than 32 bits.
    assert!(matches!(
        parse_sps(&[0x67, 66, 0, 10, 0, 0, 0, 0, 0, 1]),
        Err(SpsError::OutOfRange { .. })
    ));
    assert!(matches!(
        parse_sps(&[0x68, 1, 2, 3, 4]),
        Err(SpsError::NotSps { nal_type: 8, .. })
    ));
}

#[test]
fn ftyp_is_the_documented_bytes() {
    let mut out = Vec::new();
    boxes::ftyp(&mut out);
    assert_eq!(out, b"\0\0\0\x18ftypiso6\0\0\0\0iso6mp41");
}

#[test]
fn each_moov_box_reads_back_with_its_fields() {
    let sps = make_sps(100, 40, 1920, 1080, false);
    let info = parse_sps(&sps).unwrap();
    let mut out = Vec::new();
    boxes::mvhd(&mut out);
    assert_eq!(out.len(), 108, "mvhd v0 is 108 bytes");
    let mvhd = mp4_atom::Mvhd::decode(&mut out.as_slice()).unwrap();
    assert_eq!((mvhd.timescale, mvhd.duration), (90_000, 0));
    assert_eq!(mvhd.next_track_id, 2);

    out.clear();
    boxes::tkhd(&mut out, 1920, 1080);
    assert_eq!(out.len(), 92, "tkhd v0 is 92 bytes");
    let tkhd = mp4_atom::Tkhd::decode(&mut out.as_slice()).unwrap();
    assert_eq!(tkhd.track_id, 1);
    assert!(tkhd.enabled && tkhd.in_movie);
    assert_eq!((tkhd.width.integer(), tkhd.height.integer()), (1920, 1080));

    out.clear();
    boxes::mdhd(&mut out);
    let mdhd = mp4_atom::Mdhd::decode(&mut out.as_slice()).unwrap();
    assert_eq!((mdhd.timescale, mdhd.language.as_str()), (90_000, "und"));

    out.clear();
    boxes::hdlr(&mut out);
    let hdlr = mp4_atom::Hdlr::decode(&mut out.as_slice()).unwrap();
    assert_eq!(hdlr.handler, b"vide".into());
    assert_eq!(hdlr.name, "VideoHandler");

    out.clear();
    boxes::vmhd(&mut out);
    assert_eq!(out, b"\0\0\0\x14vmhd\0\0\0\x01\0\0\0\0\0\0\0\0");
    mp4_atom::Vmhd::decode(&mut out.as_slice()).unwrap();

    out.clear();
    boxes::dinf(&mut out);
    let dinf = mp4_atom::Dinf::decode(&mut out.as_slice()).unwrap();
    assert_eq!(dinf.dref.entries.len(), 1);

    out.clear();
    boxes::stsd(&mut out, &info, &sps, &PPS);
    let stsd = mp4_atom::Stsd::decode(&mut out.as_slice()).unwrap();
    let [Codec::Avc1(avc1)] = stsd.codecs.as_slice() else {
        panic!("one avc1 entry: {stsd:?}")
    };
    assert_eq!((avc1.visual.width, avc1.visual.height), (1920, 1080));
    assert_eq!(avc1.visual.data_reference_index, 1);
    assert_eq!(avc1.visual.depth, 0x18);
    let avcc = &avc1.avcc;
    assert_eq!(avcc.configuration_version, 1);
    assert_eq!(
        (
            avcc.avc_profile_indication,
            avcc.profile_compatibility,
            avcc.avc_level_indication
        ),
        (100, 0xc0, 40)
    );
    assert_eq!(avcc.length_size, 4);
    assert_eq!(avcc.sequence_parameter_sets, vec![sps.clone()]);
    assert_eq!(avcc.picture_parameter_sets, vec![PPS.to_vec()]);
    let ext = avcc
        .ext
        .as_ref()
        .expect("High profile carries the extension");
    assert_eq!(
        (ext.chroma_format, ext.bit_depth_luma, ext.bit_depth_chroma),
        (1, 8, 8)
    );

    out.clear();
    boxes::empty_sample_tables(&mut out);
    let mut rest = out.as_slice();
    let stts = mp4_atom::Stts::decode(&mut rest).unwrap();
    let stsc = mp4_atom::Stsc::decode(&mut rest).unwrap();
    let stsz = mp4_atom::Stsz::decode(&mut rest).unwrap();
    let stco = mp4_atom::Stco::decode(&mut rest).unwrap();
    assert!(rest.is_empty());
    assert!(stts.entries.is_empty() && stsc.entries.is_empty() && stco.entries.is_empty());
    assert_eq!(stsz, mp4_atom::Stsz::default());

    out.clear();
    boxes::mvex(&mut out);
    let mvex = mp4_atom::Mvex::decode(&mut out.as_slice()).unwrap();
    assert_eq!(mvex.trex.len(), 1);
    assert_eq!(mvex.trex[0].track_id, 1);
    assert_eq!(mvex.trex[0].default_sample_description_index, 1);
}

#[test]
fn baseline_avcc_has_no_extension() {
    let sps = make_sps(66, 31, 1280, 720, false);
    let info = parse_sps(&sps).unwrap();
    let mut out = Vec::new();
    boxes::avcc(&mut out, &info, &sps, &PPS);
    // 8 header + 6 fixed + 2 + SPS + 1 + 2 + PPS, nothing after.
    assert_eq!(out.len(), 8 + 6 + 2 + sps.len() + 1 + 2 + PPS.len());
    let avcc = mp4_atom::Avcc::decode(&mut out.as_slice()).unwrap();
    assert!(avcc.ext.is_none());
    assert_eq!(avcc.sequence_parameter_sets[0], sps);
}

#[test]
fn moof_reads_back_with_every_sample_field() {
    let samples = [
        Sample {
            duration: 3000,
            size: 100,
            sync: true,
            composition_offset: 0,
        },
        Sample {
            duration: 3003,
            size: 7,
            sync: false,
            composition_offset: 6006,
        },
        Sample {
            duration: 1,
            size: 0xffff_fff0,
            sync: false,
            composition_offset: -3000,
        },
    ];
    let mut out = Vec::new();
    let tfdt = (1u64 << 40) + 12_345;
    boxes::moof(&mut out, 77, tfdt, &samples);
    assert_eq!(out.len(), boxes::moof_len(3));
    let moof = Moof::decode(&mut out.as_slice()).unwrap();
    assert_eq!(moof.mfhd.sequence_number, 77);
    let [traf] = moof.traf.as_slice() else {
        panic!("one traf")
    };
    assert_eq!(traf.tfhd.track_id, 1);
    assert!(traf.tfhd.default_base_is_moof);
    assert_eq!(traf.tfdt.as_ref().unwrap().base_media_decode_time, tfdt);
    let [trun] = traf.trun.as_slice() else {
        panic!("one trun")
    };
    assert_eq!(trun.data_offset, Some(boxes::moof_len(3) as i32 + 8));
    let got: Vec<(u32, u32, u32, i64)> = trun
        .samples
        .iter()
        .map(|e| {
            (
                e.duration.unwrap(),
                e.size.unwrap(),
                e.flags.unwrap(),
                e.cts.unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (3000, 100, 0x0200_0000, 0),
            (3003, 7, 0x0101_0000, 6006),
            (1, 0xffff_fff0, 0x0101_0000, -3000),
        ]
    );
    // The flags: sample_depends_on in bits 24-25, sample_is_non_sync_sample in bit 16.
    assert_eq!((got[0].2 >> 24) & 3, 2);
    assert_eq!((got[0].2 >> 16) & 1, 0);
    assert_eq!((got[1].2 >> 24) & 3, 1);
    assert_eq!((got[1].2 >> 16) & 1, 1);
}

/// A GOP of synthetic access units: IDR with SPS, PPS (and an AUD) first, P-frames after.
fn gop(sps: &[u8], frames: usize) -> Vec<Vec<u8>> {
    (0..frames)
        .map(|i| {
            let body: Vec<u8> = std::iter::once(if i == 0 { 0x65 } else { 0x41 })
                .chain((0..(40 + i * 13)).map(|k| (k * 7 + i) as u8 | 1))
                .collect();
            if i == 0 {
                annex_b(&[&[0x09, 0xf0], sps, &PPS, &[0x06, 5, 1, 0x80], &body])
            } else {
                annex_b(&[&body])
            }
        })
        .collect()
}

/// Reads one fragment: (moof, mdat payload), and checks the trun's data_offset lands on it.
fn read_fragment(bytes: &[u8]) -> (Moof, Vec<u8>) {
    let atoms = decode_all(bytes);
    let [Any::Moof(moof), Any::Mdat(Mdat { data })] = atoms.as_slice() else {
        panic!("a fragment is moof + mdat: {atoms:?}")
    };
    let offset = moof.traf[0].trun[0].data_offset.unwrap() as usize;
    assert_eq!(
        &bytes[offset..],
        data.as_slice(),
        "data_offset points at the samples"
    );
    (moof.clone(), data.clone())
}

#[test]
fn a_gop_becomes_an_init_segment_and_fragments_that_read_back() {
    let sps = make_sps(66, 31, 1280, 720, false);
    let aus = gop(&sps, 30);
    let mut mux = Fmp4Muxer::new();
    let mut init = Vec::new();
    assert!(
        !mux.write_init(&mut init),
        "no init before the first keyframe"
    );
    let base = (1u64 << 33) + 10; // past the TS's 33-bit wrap: tfdt does not wrap
    let mut fragments = Vec::new();
    for (i, au) in aus.iter().enumerate() {
        let pushed = mux
            .push(&AccessUnit {
                data: au,
                pts: Pts(base + i as u64 * 3000),
                dts: None,
                keyframe: i == 0,
            })
            .unwrap();
        assert_eq!(pushed.new_init, i == 0);
        mux.check_invariants().unwrap();
        if i % 10 == 9 {
            let mut out = Vec::new();
            assert!(mux
                .flush_fragment(Pts(base + (i as u64 + 1) * 3000), &mut out)
                .unwrap());
            fragments.push(out);
        }
    }
    assert!(!mux.flush_fragment(Pts(u64::MAX), &mut Vec::new()).unwrap());
    assert_eq!(mux.fragments(), 3);
    assert!(mux.write_init(&mut init));

    let atoms = decode_all(&init);
    let [Any::Ftyp(ftyp), Any::Moov(moov)] = atoms.as_slice() else {
        panic!("init is ftyp + moov: {atoms:?}")
    };
    assert_eq!(ftyp.major_brand, b"iso6".into());
    check_moov(moov, &sps, 1280, 720);

    for (k, f) in fragments.iter().enumerate() {
        let (moof, data) = read_fragment(f);
        assert_eq!(moof.mfhd.sequence_number, k as u32 + 1);
        let traf = &moof.traf[0];
        assert_eq!(
            traf.tfdt.as_ref().unwrap().base_media_decode_time,
            base + k as u64 * 30_000
        );
        let entries: Vec<_> = traf.trun[0].samples.iter().collect();
        assert_eq!(entries.len(), 10);
        let mut expected = Vec::new();
        for (j, e) in entries.iter().enumerate() {
            let i = k * 10 + j;
            let nals: Vec<&[u8]> = nal_units(&aus[i])
                .filter(|n| !matches!(nal_type(n), NAL_AUD | NAL_SPS | NAL_PPS))
                .collect();
            let sample = avcc_of(&nals);
            assert_eq!(e.size, Some(sample.len() as u32));
            assert_eq!(e.duration, Some(3000));
            assert_eq!(e.cts, Some(0));
            let sync = e.flags.unwrap() & 0x0001_0000 == 0;
            assert_eq!(sync, i == 0, "sample {i}");
            expected.extend_from_slice(&sample);
        }
        assert_eq!(data, expected, "mdat = the samples in AVCC framing");
    }
}

fn check_moov(moov: &Moov, sps: &[u8], width: u16, height: u16) {
    assert_eq!(moov.mvhd.timescale, 90_000);
    let [trak] = moov.trak.as_slice() else {
        panic!("one track")
    };
    assert_eq!(trak.tkhd.track_id, 1);
    assert_eq!(trak.mdia.hdlr.handler, b"vide".into());
    assert_eq!(trak.mdia.mdhd.timescale, 90_000);
    let stbl = &trak.mdia.minf.stbl;
    assert!(stbl.stts.entries.is_empty(), "samples are in the fragments");
    let [Codec::Avc1(avc1)] = stbl.stsd.codecs.as_slice() else {
        panic!("avc1")
    };
    assert_eq!((avc1.visual.width, avc1.visual.height), (width, height));
    assert_eq!(avc1.avcc.sequence_parameter_sets, vec![sps.to_vec()]);
    assert_eq!(avc1.avcc.picture_parameter_sets, vec![PPS.to_vec()]);
    assert_eq!(moov.mvex.as_ref().unwrap().trex[0].track_id, 1);
}

#[test]
fn composition_offsets_come_from_pts_minus_dts() {
    let sps = make_sps(77, 31, 640, 360, false);
    let aus = gop(&sps, 4);
    let mut mux = Fmp4Muxer::new();
    // Decode order I P B B: PTS 0, 9000, 3000, 6000; DTS 0, 3000, 6000, 9000 minus 3000.
    let times = [(3000, 0), (12_000, 3000), (6000, 6000), (9000, 9000)];
    for (i, (pts, dts)) in times.into_iter().enumerate() {
        mux.push(&AccessUnit {
            data: &aus[i],
            pts: Pts(pts),
            dts: Some(Pts(dts)),
            keyframe: i == 0,
        })
        .unwrap();
    }
    let mut out = Vec::new();
    mux.flush_fragment(Pts(12_000), &mut out).unwrap();
    let (moof, _) = read_fragment(&out);
    let cts: Vec<i64> = moof.traf[0].trun[0]
        .samples
        .iter()
        .map(|e| e.cts.unwrap())
        .collect();
    assert_eq!(cts, vec![3000, 9000, 0, 0]);
    assert_eq!(
        moof.traf[0].tfdt.as_ref().unwrap().base_media_decode_time,
        0
    );
}

#[test]
fn refused_access_units_change_nothing() {
    let sps = make_sps(66, 31, 1280, 720, false);
    let aus = gop(&sps, 3);
    let mut mux = Fmp4Muxer::new();
    let push = |mux: &mut Fmp4Muxer, data: &[u8], pts: u64, dts: Option<u64>, keyframe: bool| {
        mux.push(&AccessUnit {
            data,
            pts: Pts(pts),
            dts: dts.map(Pts),
            keyframe,
        })
    };
    // Before any parameter sets.
    assert!(matches!(
        push(&mut mux, &aus[1], 0, None, false),
        Err(Fmp4Error::NoParameterSets { .. })
    ));
    assert!(matches!(
        push(&mut mux, &[], 0, None, true),
        Err(Fmp4Error::EmptyAccessUnit { .. })
    ));
    assert!(matches!(
        push(&mut mux, &[1, 2, 3, 0x65], 0, None, true),
        Err(Fmp4Error::MissingStartCode { .. })
    ));
    assert!(matches!(
        push(&mut mux, &annex_b(&[&sps, &PPS]), 0, None, true),
        Err(Fmp4Error::NoPictureData { .. })
    ));
    let other_sps = make_sps(66, 31, 640, 360, false);
    assert!(matches!(
        push(
            &mut mux,
            &annex_b(&[&sps, &other_sps, &PPS, &[0x65, 1]]),
            0,
            None,
            true
        ),
        Err(Fmp4Error::SeveralParameterSets { what: "SPS", .. })
    ));
    assert!(matches!(
        push(
            &mut mux,
            &annex_b(&[&[0x67, 66, 0], &PPS, &[0x65, 1]]),
            0,
            None,
            true
        ),
        Err(Fmp4Error::BadSps { .. })
    ));
    assert_eq!(mux.init_generation(), 0);
    push(&mut mux, &aus[0], 9000, None, true).unwrap();
    let state = format!("{mux:?}");
    for (data, pts, dts, key) in [
        (&aus[1][..], 9000, None, false),               // DTS not increasing
        (&aus[1][..], 6000, Some(9001), false),         // DTS after PTS
        (&aus[1][..], 9000 + 61 * 90_000, None, false), // jump
        (&aus[1][..], 9000 + 70 * 90_000, Some(9100), false), // PTS far after DTS
        (&annex_b(&[&other_sps, &[0x41, 1]])[..], 12_000, None, false), // new SPS off a keyframe
        (
            &annex_b(&[&other_sps, &PPS, &[0x65, 1]])[..],
            12_000,
            None,
            true,
        ), // mid-fragment
    ] {
        let r = push(&mut mux, data, pts, dts, key);
        assert!(r.is_err(), "{pts} {dts:?}: {r:?}");
        let msg = r.unwrap_err().to_string();
        assert!(msg.contains("PTS"), "{msg}");
        assert_eq!(
            format!("{mux:?}"),
            state,
            "a refusal leaves the muxer as it was"
        );
    }
    assert!(matches!(
        mux.flush_fragment(Pts(9000), &mut Vec::new()),
        Err(Fmp4Error::BadFragmentEnd { .. })
    ));
    assert_eq!(format!("{mux:?}"), state);
    mux.check_invariants().unwrap();
}

#[test]
fn new_parameter_sets_on_a_fragment_opening_keyframe_make_a_new_init() {
    let sps = make_sps(66, 31, 1280, 720, false);
    let other = make_sps(100, 40, 1920, 1080, true);
    let mut mux = Fmp4Muxer::new();
    let mut t = 0u64;
    let mut push = |mux: &mut Fmp4Muxer, data: &[u8], keyframe: bool| {
        t += 3000;
        mux.push(&AccessUnit {
            data,
            pts: Pts(t),
            dts: None,
            keyframe,
        })
        .unwrap()
    };
    assert!(push(&mut mux, &gop(&sps, 1)[0], true).new_init);
    // The same parameter sets again: no new init, and they are not kept in band.
    assert!(!push(&mut mux, &gop(&sps, 1)[0], true).new_init);
    let mut out = Vec::new();
    mux.flush_fragment(Pts(9000), &mut out).unwrap();
    let (_, data) = read_fragment(&out);
    assert!(!nal_in_avcc(&data, NAL_SPS) && !nal_in_avcc(&data, NAL_PPS));
    assert!(push(&mut mux, &gop(&other, 1)[0], true).new_init);
    assert_eq!(mux.init_generation(), 2);
    let mut init = Vec::new();
    mux.write_init(&mut init);
    let atoms = decode_all(&init);
    let Any::Moov(moov) = &atoms[1] else { panic!() };
    check_moov(moov, &other, 1920, 1080);
    // A new PPS alone pairs with the current SPS.
    mux.flush_fragment(Pts(12_000), &mut Vec::new()).unwrap();
    let pps2 = [0x68, 0xee, 0x3c, 0x80];
    assert!(push(&mut mux, &annex_b(&[&pps2, &[0x65, 7]]), true).new_init);
    init.clear();
    mux.write_init(&mut init);
    let avcc = mp4_atom::Avcc::decode(
        &mut &init[init.windows(4).position(|w| w == b"avcC").unwrap() - 4..],
    )
    .unwrap();
    assert_eq!(avcc.sequence_parameter_sets, vec![other.clone()]);
    assert_eq!(avcc.picture_parameter_sets, vec![pps2.to_vec()]);
}

fn nal_in_avcc(mut data: &[u8], kind: u8) -> bool {
    while data.len() >= 4 {
        let len = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize;
        if nal_type(&data[4..]) == kind {
            return true;
        }
        data = &data[4 + len..];
    }
    false
}

#[test]
fn openh264_gop_through_the_muxer_reads_back_and_decodes() {
    let (w, h) = (320usize, 180usize);
    let mut enc = H264Encoder::new(EncoderSettings {
        width: w,
        height: h,
        rate: FrameRate::new(30, 1).unwrap(),
        bitrate_bps: 300_000,
        gop_frames: 30,
    })
    .unwrap();
    let mut mux = Fmp4Muxer::new();
    let mut frame = YuvFrame::new(w, h);
    let mut au = Vec::new();
    let mut fragment = Vec::new();
    for n in 0..15u64 {
        frame.y.fill((n * 9) as u8);
        au.clear();
        let e = enc
            .encode(&frame, StreamTime(n * 3000), n == 0, &mut au)
            .unwrap();
        mux.push(&AccessUnit {
            data: &au,
            pts: Pts(n * 3000),
            dts: None,
            keyframe: e.keyframe,
        })
        .unwrap();
    }
    mux.flush_fragment(Pts(45_000), &mut fragment).unwrap();
    let mut init = Vec::new();
    mux.write_init(&mut init);
    let atoms = decode_all(&init);
    let Any::Moov(moov) = &atoms[1] else { panic!() };
    let Codec::Avc1(avc1) = &moov.trak[0].mdia.minf.stbl.stsd.codecs[0] else {
        panic!()
    };
    assert_eq!((avc1.visual.width, avc1.visual.height), (320, 180));
    // Back to Annex B with the avcC's parameter sets, and through openh264's decoder.
    let (moof, data) = read_fragment(&fragment);
    let mut dec = openh264::decoder::Decoder::new().unwrap();
    let mut rest = data.as_slice();
    let mut decoded = 0;
    for (i, e) in moof.traf[0].trun[0].samples.iter().enumerate() {
        let (sample, tail) = rest.split_at(e.size.unwrap() as usize);
        rest = tail;
        let mut annexb = Vec::new();
        if i == 0 {
            for ps in avc1
                .avcc
                .sequence_parameter_sets
                .iter()
                .chain(&avc1.avcc.picture_parameter_sets)
            {
                annexb.extend_from_slice(&[0, 0, 0, 1]);
                annexb.extend_from_slice(ps);
            }
        }
        let mut s = sample;
        while !s.is_empty() {
            let len = u32::from_be_bytes(s[..4].try_into().unwrap()) as usize;
            annexb.extend_from_slice(&[0, 0, 0, 1]);
            annexb.extend_from_slice(&s[4..4 + len]);
            s = &s[4 + len..];
        }
        if let Some(yuv) = dec.decode(&annexb).unwrap() {
            use openh264::formats::YUVSource;
            assert_eq!(yuv.dimensions(), (320, 180));
            decoded += 1;
        }
    }
    assert!(rest.is_empty());
    assert_eq!(decoded, 15, "every sample decodes on its own");
}
