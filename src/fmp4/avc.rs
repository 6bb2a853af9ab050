//! What the fMP4 writer needs to know of H.264 itself (Rec. ITU-T H.264 | ISO/IEC 14496-10):
//! NAL units in an Annex B byte stream (Annex B.1), the few sequence parameter set fields the
//! sample entry and the `CODECS` attribute carry (§7.3.2.1.1), and the RFC 6381 §3.3 codec
//! string `avc1.PPCCLL`.
//!
//! Pure and allocation-free: the SPS is read bit by bit through its emulation prevention bytes
//! (§7.4.1) without copying it into an RBSP buffer.

use std::fmt::Write as _;

/// NAL unit types this module names (H.264 Table 7-1).
pub const NAL_IDR: u8 = 5;
pub const NAL_SPS: u8 = 7;
pub const NAL_PPS: u8 = 8;
pub const NAL_AUD: u8 = 9;

/// The NAL units of an Annex B byte stream (H.264 Annex B.1): each item is one NAL unit
/// without its start code and without the trailing zero bytes before the next start code.
/// Bytes before the first start code are not a NAL unit and are skipped.
pub fn nal_units(data: &[u8]) -> NalUnits<'_> {
    NalUnits {
        rest: skip_to_start(data),
    }
}

/// Iterator of [`nal_units`].
#[derive(Clone, Debug)]
pub struct NalUnits<'a> {
    /// Starts just after a start code (or is empty).
    rest: &'a [u8],
}

/// The bytes after the first `00 00 01`, or nothing if there is none.
fn skip_to_start(data: &[u8]) -> &[u8] {
    match find_start_code(data) {
        Some(i) => &data[i + 3..],
        None => &[],
    }
}

/// Index of the first `00 00 01` in `data`.
fn find_start_code(data: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i + 2 < data.len() {
        // A start code's third byte is 01; step by what the bytes seen allow.
        match data[i + 2] {
            1 if data[i] == 0 && data[i + 1] == 0 => return Some(i),
            0 => i += 1,
            1 => i += 3,
            _ => i += 3,
        }
    }
    None
}

impl<'a> Iterator for NalUnits<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let (nal, rest) = match find_start_code(self.rest) {
                Some(i) => (&self.rest[..i], &self.rest[i + 3..]),
                None => (self.rest, &[][..]),
            };
            self.rest = rest;
            // trailing_zero_8bits and the leading zero of a 4-byte start code (B.1.1).
            let end = nal.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            if end > 0 {
                return Some(&nal[..end]);
            }
        }
    }
}

/// nal_unit_type of a NAL unit (its header's low five bits).
pub fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |h| h & 0x1f)
}

/// The fields of a sequence parameter set the container needs (H.264 §7.3.2.1.1, §7.4.2.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpsInfo {
    pub profile_idc: u8,
    /// constraint_set0_flag..constraint_set5_flag and reserved_zero_2bits: the byte after
    /// profile_idc (RFC 6381's "profile-compat" byte).
    pub constraint_flags: u8,
    pub level_idc: u8,
    /// 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4 (1 when the profile has no such field).
    pub chroma_format_idc: u8,
    pub bit_depth_luma: u8,
    pub bit_depth_chroma: u8,
    /// The picture size after cropping, in pixels.
    pub width: u32,
    pub height: u32,
}

/// Why an SPS could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpsError {
    #[error("SPS: {len}-byte NAL unit is not a sequence parameter set (nal_unit_type {nal_type})")]
    NotSps { len: usize, nal_type: u8 },
    #[error("SPS: ends inside {field} ({len} bytes)")]
    Truncated { field: &'static str, len: usize },
    #[error("SPS: {field} = {value} is out of range")]
    OutOfRange { field: &'static str, value: u64 },
}

/// Bit reader over an RBSP held in a NAL unit, skipping emulation_prevention_three_byte
/// (H.264 §7.3.1, §7.4.1).
struct Bits<'a> {
    data: &'a [u8],
    /// Next byte to load.
    pos: usize,
    /// Zero bytes just before `pos` (for emulation prevention).
    zeros: u8,
    current: u8,
    /// Bits of `current` not read yet.
    left: u8,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
        Bits {
            data,
            pos: 0,
            zeros: 0,
            current: 0,
            left: 0,
        }
    }

    fn bit(&mut self, field: &'static str) -> Result<u32, SpsError> {
        if self.left == 0 {
            let mut b = *self.data.get(self.pos).ok_or(SpsError::Truncated {
                field,
                len: self.data.len(),
            })?;
            self.pos += 1;
            if self.zeros >= 2 && b == 3 {
                // emulation_prevention_three_byte: not part of the RBSP.
                self.zeros = 0;
                b = *self.data.get(self.pos).ok_or(SpsError::Truncated {
                    field,
                    len: self.data.len(),
                })?;
                self.pos += 1;
            }
            self.zeros = if b == 0 { self.zeros + 1 } else { 0 };
            self.current = b;
            self.left = 8;
        }
        self.left -= 1;
        Ok(u32::from((self.current >> self.left) & 1))
    }

    fn bits(&mut self, n: u8, field: &'static str) -> Result<u32, SpsError> {
        let mut v = 0;
        for _ in 0..n {
            v = (v << 1) | self.bit(field)?;
        }
        Ok(v)
    }

    /// ue(v), §9.1: at most 31 leading zeros (a value that fits in u32 - 1).
    fn ue(&mut self, field: &'static str) -> Result<u32, SpsError> {
        let mut zeros = 0u8;
        while self.bit(field)? == 0 {
            zeros += 1;
            if zeros > 31 {
                return Err(SpsError::OutOfRange {
                    field,
                    value: u64::from(u32::MAX),
                });
            }
        }
        let rest = self.bits(zeros, field)?;
        Ok(((1u64 << zeros) - 1 + u64::from(rest)) as u32)
    }

    /// se(v), §9.1.1.
    fn se(&mut self, field: &'static str) -> Result<i64, SpsError> {
        let k = i64::from(self.ue(field)?);
        Ok(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

/// Caps a ue(v) field at `max` (the range §7.4.2.1.1 allows).
fn capped(value: u32, max: u32, field: &'static str) -> Result<u32, SpsError> {
    if value > max {
        Err(SpsError::OutOfRange {
            field,
            value: u64::from(value),
        })
    } else {
        Ok(value)
    }
}

/// Reads the fields of [`SpsInfo`] from an SPS NAL unit (header byte included), H.264
/// §7.3.2.1.1, up to frame_cropping (the VUI is not needed).
pub fn parse_sps(nal: &[u8]) -> Result<SpsInfo, SpsError> {
    if nal_type(nal) != NAL_SPS || nal.len() < 4 {
        return Err(SpsError::NotSps {
            len: nal.len(),
            nal_type: nal_type(nal),
        });
    }
    // Read through the emulation prevention from the first byte after the header, the three
    // fixed bytes included (§7.3.1).
    let mut r = Bits::new(&nal[1..]);
    let profile_idc = r.bits(8, "profile_idc")? as u8;
    let constraint_flags = r.bits(8, "constraint_set_flags")? as u8;
    let level_idc = r.bits(8, "level_idc")? as u8;
    capped(r.ue("seq_parameter_set_id")?, 31, "seq_parameter_set_id")?;
    let (mut chroma_format_idc, mut bit_depth_luma, mut bit_depth_chroma) = (1u32, 8u32, 8u32);
    let mut separate_colour_plane = false;
    if matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format_idc = capped(r.ue("chroma_format_idc")?, 3, "chroma_format_idc")?;
        if chroma_format_idc == 3 {
            separate_colour_plane = r.bit("separate_colour_plane_flag")? == 1;
        }
        bit_depth_luma = capped(r.ue("bit_depth_luma_minus8")?, 6, "bit_depth_luma_minus8")? + 8;
        bit_depth_chroma = capped(
            r.ue("bit_depth_chroma_minus8")?,
            6,
            "bit_depth_chroma_minus8",
        )? + 8;
        r.bit("qpprime_y_zero_transform_bypass_flag")?;
        if r.bit("seq_scaling_matrix_present_flag")? == 1 {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit("seq_scaling_list_present_flag")? == 1 {
                    // scaling_list(), §7.3.2.1.1.1: read only to skip it.
                    let size = if i < 6 { 16 } else { 64 };
                    let (mut last, mut next) = (8i64, 8i64);
                    for _ in 0..size {
                        if next != 0 {
                            let delta = r.se("delta_scale")?;
                            if !(-128..=127).contains(&delta) {
                                return Err(SpsError::OutOfRange {
                                    field: "delta_scale",
                                    value: delta.unsigned_abs(),
                                });
                            }
                            next = (last + delta + 256) % 256;
                        }
                        if next != 0 {
                            last = next;
                        }
                    }
                }
            }
        }
    }
    capped(
        r.ue("log2_max_frame_num_minus4")?,
        12,
        "log2_max_frame_num_minus4",
    )?;
    let poc_type = capped(r.ue("pic_order_cnt_type")?, 2, "pic_order_cnt_type")?;
    if poc_type == 0 {
        capped(
            r.ue("log2_max_pic_order_cnt_lsb_minus4")?,
            12,
            "log2_max_pic_order_cnt_lsb_minus4",
        )?;
    } else if poc_type == 1 {
        r.bit("delta_pic_order_always_zero_flag")?;
        r.se("offset_for_non_ref_pic")?;
        r.se("offset_for_top_to_bottom_field")?;
        let n = capped(
            r.ue("num_ref_frames_in_pic_order_cnt_cycle")?,
            255,
            "num_ref_frames_in_pic_order_cnt_cycle",
        )?;
        for _ in 0..n {
            r.se("offset_for_ref_frame")?;
        }
    }
    r.ue("max_num_ref_frames")?;
    r.bit("gaps_in_frame_num_value_allowed_flag")?;
    let width_mbs = u64::from(r.ue("pic_width_in_mbs_minus1")?) + 1;
    let height_units = u64::from(r.ue("pic_height_in_map_units_minus1")?) + 1;
    let frame_mbs_only = u64::from(r.bit("frame_mbs_only_flag")?);
    if frame_mbs_only == 0 {
        r.bit("mb_adaptive_frame_field_flag")?;
    }
    r.bit("direct_8x8_inference_flag")?;
    let (mut left, mut right, mut top, mut bottom) = (0u64, 0u64, 0u64, 0u64);
    if r.bit("frame_cropping_flag")? == 1 {
        left = r.ue("frame_crop_left_offset")?.into();
        right = r.ue("frame_crop_right_offset")?.into();
        top = r.ue("frame_crop_top_offset")?.into();
        bottom = r.ue("frame_crop_bottom_offset")?.into();
    }
    r.bit("vui_parameters_present_flag")?;
    // CropUnitX/Y, §7.4.2.1.1 (equations 7-19 to 7-22), Table 6-1 for SubWidthC/SubHeightC.
    let chroma_array_type = if separate_colour_plane {
        0
    } else {
        chroma_format_idc
    };
    let (sub_w, sub_h) = match chroma_array_type {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    let crop_x = sub_w;
    let crop_y = sub_h * (2 - frame_mbs_only);
    let full_w = width_mbs * 16;
    let full_h = (2 - frame_mbs_only) * height_units * 16;
    let crop_w = crop_x * (left + right);
    let crop_h = crop_y * (top + bottom);
    if crop_w >= full_w || crop_h >= full_h || full_w > 65_535 * 16 || full_h > 65_535 * 16 {
        return Err(SpsError::OutOfRange {
            field: "frame cropping",
            value: crop_w.max(crop_h),
        });
    }
    Ok(SpsInfo {
        profile_idc,
        constraint_flags,
        level_idc,
        chroma_format_idc: chroma_format_idc as u8,
        bit_depth_luma: bit_depth_luma as u8,
        bit_depth_chroma: bit_depth_chroma as u8,
        width: (full_w - crop_w) as u32,
        height: (full_h - crop_h) as u32,
    })
}

impl SpsInfo {
    /// The RFC 6381 §3.3 codec string of the stream, `avc1.PPCCLL`: profile_idc, the constraint
    /// byte and level_idc in hexadecimal (as ffmpeg writes it, lower case). The multivariant
    /// playlist's `CODECS` attribute (RFC 8216 §4.3.4.2) must say this for both segment types.
    pub fn codec_string(&self) -> String {
        let mut s = String::with_capacity(11);
        let _ = write!(
            s,
            "avc1.{:02x}{:02x}{:02x}",
            self.profile_idc, self.constraint_flags, self.level_idc
        );
        s
    }

    /// The profiles whose AVCDecoderConfigurationRecord carries chroma_format and bit depths
    /// (ISO/IEC 14496-15 §5.3.3.1.2).
    pub fn has_avcc_extension(&self) -> bool {
        !matches!(self.profile_idc, 66 | 77 | 88)
    }
}

/// The codec string (see [`SpsInfo::codec_string`]) of the first SPS in an Annex B access unit.
pub fn codec_string_of_access_unit(annex_b: &[u8]) -> Option<String> {
    nal_units(annex_b)
        .find(|n| nal_type(n) == NAL_SPS)
        .and_then(|n| parse_sps(n).ok())
        .map(|s| s.codec_string())
}
