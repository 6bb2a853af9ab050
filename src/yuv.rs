//! RGB24 to I420 (YUV 4:2:0, 8 bit) with the ITU-R BT.601 matrix in limited ("studio", "TV")
//! range: Recommendation ITU-R BT.601-7 §2.5.1-§2.5.3 (E'Y = 0.299 E'R + 0.587 E'G + 0.114 E'B,
//! Y = 219 E'Y + 16, Cb/Cr = 224 E'Cb/Cr + 128 on 8 bits). A decoder only knows this if the
//! H.264 VUI says so (ITU-T H.264 Annex E: `matrix_coefficients` 6 in Table E-5,
//! `video_full_range_flag` 0); without a colour description players guess, often BT.709 for HD
//! sizes, and colours shift slightly. openh264's `VuiConfig::bt601()` writes exactly that.
//!
//! In 8-bit code values, for R, G, B in 0..=255:
//!
//! ```text
//! Y  =  16 + ( 65.481 R + 128.553 G +  24.966 B) / 255        16..=235
//! Cb = 128 + (-37.797 R -  74.203 G + 112.000 B) / 255        16..=240
//! Cr = 128 + (112.000 R -  93.786 G -  18.214 B) / 255        16..=240
//! ```
//!
//! [`bt601_limited_reference`] evaluates exactly that in `f64`. Each chroma sample is the formula
//! applied to the mean R, G, B of its 2x2 block (as the formula is linear, the mean of the four
//! pixels' Cb/Cr). A box average centres chroma in the block (H.264 `chroma_sample_loc_type` 1);
//! the default type 0 sits a quarter of a chroma sample further left, which is invisible here.
//! In a last column (odd width) or last row (odd height) the block has only the pixels that
//! exist, two or one, and their mean is used.
//!
//! # Arithmetic
//!
//! Both paths below compute the same integers, so their output is bit-identical (tested):
//!
//! * Y: each term is `(c * v) >> 8` with `c = coefficient / 255 * 2^16` rounded, i.e. the term
//!   with 8 fractional bits, floored. The three terms plus `16.5 * 2^8` (+1 to centre the floor
//!   bias) shifted right by 8 is the rounded result. The floors cost at most 3/256 of a code value.
//! * Cb, Cr: `S` is the sum of the four R (G, B) values of the block, 0..=1020 (a one- or two-pixel
//!   block is scaled up to four so the same constants apply). Each term is
//!   `((S << 5) * c) >> 16` with `c = coefficient / 1020 * 2^18` rounded, i.e. the term with 7
//!   fractional bits, floored; plus `128.5 * 2^7` (+1), shifted right by 7.
//!
//! Every intermediate fits in 16 bits (unsigned for Y, signed for chroma), which is what lets the
//! AVX2 path use `vpmulhuw`/`vpmulhw` on sixteen lanes at once. Every output is within ±1 of the
//! rounded reference: within 0.5 + 3/256 of the real value for Y (tested for all 2^24 colours)
//! and 0.5 + 3/128 for Cb and Cr (tested on random and extreme block sums).
//!
//! # Speed
//!
//! On x86_64 with AVX2 (detected at run time) 32 pixels of two rows are converted per step:
//! RGB24 is de-interleaved with two byte blends and one byte shuffle per channel, the 2x2 sums
//! come from `vpmaddubsw`. Elsewhere, and for the last < 32 columns, plain integer code does the
//! same arithmetic. Nothing allocates; the conversion is single-threaded.

use crate::frame::{RgbFrame, YuvFrame};

/// Y coefficients: `round(c / 255 * 2^16)` for c = 65.481, 128.553, 24.966.
const Y_R: u32 = 16_829;
const Y_G: u32 = 33_039;
const Y_B: u32 = 6_416;
/// 16 (black level) and 0.5 (rounding) with 8 fractional bits, + 1 to centre the bias of the
/// three floored terms.
const Y_OFFSET: u32 = (16 << 8) + 128 + 1;

/// Cb coefficients: `round(c / 1020 * 2^18)`; the G term is adjusted by its rounding error (under
/// 0.6 of a unit) so the three sum to 0 and greys give exactly 128.
const CB: [i32; 3] = [-9_714, -19_070, 28_784];
/// Cr coefficients, same scale; they sum to 0.
const CR: [i32; 3] = [28_784, -24_103, -4_681];
/// 128 (zero chroma) and 0.5 (rounding) with 7 fractional bits, + 1 to centre the floor bias.
const C_OFFSET: i32 = (128 << 7) + 64 + 1;

/// The exact BT.601 limited-range formula (see the module docs) for one pixel, unrounded:
/// returns `(Y, Cb, Cr)` in 8-bit code values. Used by the tests and as documentation; the
/// conversion itself uses integer arithmetic.
#[cfg(test)]
pub(crate) fn bt601_limited_reference(r: u8, g: u8, b: u8) -> (f64, f64, f64) {
    const KR: f64 = 0.299;
    const KB: f64 = 0.114;
    const KG: f64 = 1.0 - KR - KB;
    let (r, g, b) = (
        f64::from(r) / 255.0,
        f64::from(g) / 255.0,
        f64::from(b) / 255.0,
    );
    let ey = KR * r + KG * g + KB * b;
    let ecb = (b - ey) / (2.0 * (1.0 - KB));
    let ecr = (r - ey) / (2.0 * (1.0 - KR));
    (16.0 + 219.0 * ey, 128.0 + 224.0 * ecb, 128.0 + 224.0 * ecr)
}

/// Converts `src` into `dst` (same width/height; `dst`'s planes already allocated as
/// [`YuvFrame::new`] does, with the strides [`YuvFrame::y_stride`] and [`YuvFrame::uv_stride`]).
/// No allocation. Uses AVX2 when the CPU has it; the result is the same either way.
///
/// # Panics
/// If the sizes differ or a buffer is shorter than its width, height and stride say.
pub fn rgb_to_i420(src: &RgbFrame, dst: &mut YuvFrame) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            convert(src, dst, Path::Avx2);
            return;
        }
    }
    convert(src, dst, Path::Scalar);
}

/// Which kernel converts the bulk of each row pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

fn convert(src: &RgbFrame, dst: &mut YuvFrame, path: Path) {
    let (width, height) = (src.width, src.height);
    assert!(
        dst.width == width && dst.height == height,
        "rgb_to_i420: RGB frame is {width}x{height} but the I420 frame is {}x{}",
        dst.width,
        dst.height
    );
    if width == 0 || height == 0 {
        return;
    }
    let row_bytes = width * 3;
    assert!(
        src.stride >= row_bytes && src.data.len() >= src.stride * (height - 1) + row_bytes,
        "rgb_to_i420: RGB buffer of {} bytes with stride {} is too short for {width}x{height}",
        src.data.len(),
        src.stride
    );
    let (cw, ch) = YuvFrame::chroma_size(width, height);
    assert!(
        dst.y.len() >= width * height && dst.u.len() >= cw * ch && dst.v.len() >= cw * ch,
        "rgb_to_i420: I420 planes ({}, {}, {} bytes) are too short for {width}x{height}",
        dst.y.len(),
        dst.u.len(),
        dst.v.len()
    );

    let y_pairs = dst.y[..width * height].chunks_mut(2 * width);
    let u_rows = dst.u[..cw * ch].chunks_exact_mut(cw);
    let v_rows = dst.v[..cw * ch].chunks_exact_mut(cw);
    for (j, ((y_pair, u), v)) in y_pairs.zip(u_rows).zip(v_rows).enumerate() {
        let r0 = 2 * j;
        let s0 = &src.data[r0 * src.stride..][..row_bytes];
        let (y0, mut y1, s1) = if y_pair.len() == 2 * width {
            let (y0, y1) = y_pair.split_at_mut(width);
            (
                y0,
                Some(y1),
                &src.data[(r0 + 1) * src.stride..][..row_bytes],
            )
        } else {
            // Odd height: the last chroma row averages the one luma row that exists.
            (y_pair, None, s0)
        };
        let done = match path {
            Path::Scalar => 0,
            #[cfg(target_arch = "x86_64")]
            // SAFETY: this path is only chosen after `is_x86_feature_detected!("avx2")`.
            Path::Avx2 => unsafe { avx2::row_pair(s0, s1, y0, y1.as_deref_mut(), u, v) },
        };
        row_pair_scalar(s0, s1, y0, y1, u, v, done);
    }
}

/// Y of one pixel (see the module docs for the arithmetic).
#[inline(always)]
fn luma(r: u8, g: u8, b: u8) -> u8 {
    let t = ((u32::from(r) * Y_R) >> 8)
        + ((u32::from(g) * Y_G) >> 8)
        + ((u32::from(b) * Y_B) >> 8)
        + Y_OFFSET;
    // At most (219 << 8) + Y_OFFSET, so the result is at most 235.
    (t >> 8) as u8
}

/// Cb or Cr of one block from the sums of its four R, G and B values (each 0..=1020).
#[inline(always)]
fn chroma(sr: u16, sg: u16, sb: u16, c: [i32; 3]) -> u8 {
    let t = (((i32::from(sr) << 5) * c[0]) >> 16)
        + (((i32::from(sg) << 5) * c[1]) >> 16)
        + (((i32::from(sb) << 5) * c[2]) >> 16)
        + C_OFFSET;
    // Between 16 and 240 << 7 (see the module docs), so the result is 16..=240.
    (t >> 7) as u8
}

/// Converts columns `from..` of one row pair (`from` even). `y1` is `None` for the last row of
/// an odd-height frame, and then `s1` is `s0`.
fn row_pair_scalar(
    s0: &[u8],
    s1: &[u8],
    y0: &mut [u8],
    y1: Option<&mut [u8]>,
    u: &mut [u8],
    v: &mut [u8],
    from: usize,
) {
    debug_assert!(from % 2 == 0);
    let (s0, s1) = (&s0[from * 3..], &s1[from * 3..]);
    luma_row(s0, &mut y0[from..]);
    if let Some(y1) = y1 {
        luma_row(s1, &mut y1[from..]);
    }
    let (u, v) = (&mut u[from / 2..], &mut v[from / 2..]);
    let blocks0 = s0.chunks_exact(6);
    let blocks1 = s1.chunks_exact(6);
    let (tail0, tail1) = (blocks0.remainder(), blocks1.remainder());
    for ((a, b), (u, v)) in blocks0.zip(blocks1).zip(u.iter_mut().zip(v.iter_mut())) {
        let sum = |i: usize| {
            u16::from(a[i]) + u16::from(a[i + 3]) + u16::from(b[i]) + u16::from(b[i + 3])
        };
        let (sr, sg, sb) = (sum(0), sum(1), sum(2));
        *u = chroma(sr, sg, sb, CB);
        *v = chroma(sr, sg, sb, CR);
    }
    if let (&[r0, g0, b0], &[r1, g1, b1]) = (tail0, tail1) {
        // Odd width: the last column's block is two pixels high and one wide; doubling the
        // vertical pair keeps the four-pixel scale.
        let sum = |p: u8, q: u8| 2 * (u16::from(p) + u16::from(q));
        let (sr, sg, sb) = (sum(r0, r1), sum(g0, g1), sum(b0, b1));
        let last = u.len() - 1;
        u[last] = chroma(sr, sg, sb, CB);
        v[last] = chroma(sr, sg, sb, CR);
    }
}

fn luma_row(src: &[u8], y: &mut [u8]) {
    for (px, y) in src.chunks_exact(3).zip(y.iter_mut()) {
        *y = luma(px[0], px[1], px[2]);
    }
}

/// Converts one row pair: RGB24 rows `s0`, `s1` into luma rows `y0`, `y1` and the chroma rows
/// `u`, `v`, bit-identical to what [`rgb_to_i420`] writes for those rows of a frame. For sources
/// that paint a frame from a few distinct rows (the checkerboard) straight into I420 without a
/// whole RGB frame. The last row of an odd-height frame has no second row: `y1` is `None` and
/// `s1` is `s0`. Uses AVX2 when the CPU has it. No allocation.
///
/// # Panics
/// If `s0` or `s1` is not `3 * y0.len()` bytes, `y1` not `y0.len()` or `u`, `v` not
/// `y0.len().div_ceil(2)`.
pub(crate) fn rgb_row_pair_to_i420(
    s0: &[u8],
    s1: &[u8],
    y0: &mut [u8],
    mut y1: Option<&mut [u8]>,
    u: &mut [u8],
    v: &mut [u8],
) {
    let width = y0.len();
    let cw = width.div_ceil(2);
    assert!(
        s0.len() == 3 * width
            && s1.len() == 3 * width
            && y1.as_ref().is_none_or(|y1| y1.len() == width)
            && u.len() == cw
            && v.len() == cw,
        "rgb_row_pair_to_i420: rows of {}, {} RGB bytes, {width} luma and {}, {} chroma samples",
        s0.len(),
        s1.len(),
        u.len(),
        v.len()
    );
    #[allow(unused_mut)]
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 was detected just above.
        done = unsafe { avx2::row_pair(s0, s1, y0, y1.as_deref_mut(), u, v) };
    }
    row_pair_scalar(s0, s1, y0, y1, u, v, done);
}

/// Y of the grey `(v, v, v)` exactly as the converter computes it (Cb and Cr of a grey are
/// always 128), for drawing grey levels straight into a luma plane.
pub(crate) fn grey_luma(v: u8) -> u8 {
    luma(v, v, v)
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! The AVX2 kernel: 32 pixels of two rows per step. A 256-bit register holds pixels 0..16 of
    //! the step in its low 128-bit lane and pixels 16..32 in its high lane; every operation
    //! below except the final chroma permute works within lanes, and the in-lane unpack/pack
    //! pairs cancel, so results come out in pixel order.

    use super::{CB, CR, C_OFFSET, Y_B, Y_G, Y_OFFSET, Y_R};
    use std::arch::x86_64::*;

    /// Pixels per step.
    const STEP: usize = 32;

    /// Converts the leading multiple of 32 columns of one row pair and returns how many columns
    /// it converted (the caller finishes the rest). `y1` is `None` when the row pair has only
    /// one row (then `s1` is `s0`).
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn row_pair(
        s0: &[u8],
        s1: &[u8],
        y0: &mut [u8],
        y1: Option<&mut [u8]>,
        u: &mut [u8],
        v: &mut [u8],
    ) -> usize {
        let width = y0.len();
        let steps = width / STEP;
        let done = steps * STEP;
        // The pointer arithmetic below stays inside these bounds.
        assert!(s0.len() >= done * 3 && s1.len() >= done * 3);
        assert!(u.len() >= done / 2 && v.len() >= done / 2);
        // Without a second row the second row's luma goes to a scratch block that is
        // overwritten at every step (its pointer does not advance).
        let mut scratch = [0u8; STEP];
        let (y1_ptr, y1_advance) = match y1 {
            Some(y1) => {
                assert!(y1.len() >= done);
                (y1.as_mut_ptr(), STEP)
            }
            None => (scratch.as_mut_ptr(), 0),
        };
        for i in 0..steps {
            // SAFETY: i < steps, so bytes [96 i, 96 i + 96) of s0 and s1, [32 i, 32 i + 32) of y0
            // (and of y1 when it advances) and [16 i, 16 i + 16) of u and v are in bounds
            // (asserted above).
            unsafe {
                let (r0, g0, b0) = load_rgb(s0.as_ptr().add(i * STEP * 3));
                let (r1, g1, b1) = load_rgb(s1.as_ptr().add(i * STEP * 3));
                _mm256_storeu_si256(y0.as_mut_ptr().add(i * STEP).cast(), luma(r0, g0, b0));
                _mm256_storeu_si256(y1_ptr.add(i * y1_advance).cast(), luma(r1, g1, b1));
                let (sr, sg, sb) = (block_sums(r0, r1), block_sums(g0, g1), block_sums(b0, b1));
                let cb = chroma(sr, sg, sb, CB);
                let cr = chroma(sr, sg, sb, CR);
                // packus gives [cb 0..8, cr 0..8 | cb 8..16, cr 8..16]; reorder the 64-bit
                // quarters to [cb 0..16 | cr 0..16].
                let both = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packus_epi16(cb, cr));
                _mm_storeu_si128(
                    u.as_mut_ptr().add(i * STEP / 2).cast(),
                    _mm256_castsi256_si128(both),
                );
                _mm_storeu_si128(
                    v.as_mut_ptr().add(i * STEP / 2).cast(),
                    _mm256_extracti128_si256::<1>(both),
                );
            }
        }
        done
    }

    /// Loads 32 RGB24 pixels (96 bytes at `p`) as three registers of R, G and B bytes.
    ///
    /// Within each 16-pixel lane the 48 source bytes are three 16-byte chunks c0, c1, c2. The
    /// bytes of channel k (0 = R, 1 = G, 2 = B) sit at the positions p of c0 with p % 3 = k, of
    /// c1 with p % 3 = (k + 2) % 3 and of c2 with p % 3 = (k + 1) % 3: these sets are disjoint,
    /// so two blends gather a channel into one register and one shuffle puts it in pixel order.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn load_rgb(p: *const u8) -> (__m256i, __m256i, __m256i) {
        // SAFETY: the caller guarantees 96 readable bytes at p.
        let (c0, c1, c2) = unsafe {
            (
                _mm256_loadu2_m128i(p.add(48).cast(), p.cast()),
                _mm256_loadu2_m128i(p.add(64).cast(), p.add(16).cast()),
                _mm256_loadu2_m128i(p.add(80).cast(), p.add(32).cast()),
            )
        };
        // Byte masks of the positions p with p % 3 = 0, 1, 2 (repeated in both lanes).
        #[rustfmt::skip]
        let m0 = _mm256_setr_epi8(
            -1, 0, 0, -1, 0, 0, -1, 0, 0, -1, 0, 0, -1, 0, 0, -1,
            -1, 0, 0, -1, 0, 0, -1, 0, 0, -1, 0, 0, -1, 0, 0, -1,
        );
        #[rustfmt::skip]
        let m1 = _mm256_setr_epi8(
            0, -1, 0, 0, -1, 0, 0, -1, 0, 0, -1, 0, 0, -1, 0, 0,
            0, -1, 0, 0, -1, 0, 0, -1, 0, 0, -1, 0, 0, -1, 0, 0,
        );
        #[rustfmt::skip]
        let m2 = _mm256_setr_epi8(
            0, 0, -1, 0, 0, -1, 0, 0, -1, 0, 0, -1, 0, 0, -1, 0,
            0, 0, -1, 0, 0, -1, 0, 0, -1, 0, 0, -1, 0, 0, -1, 0,
        );
        let r = _mm256_blendv_epi8(_mm256_blendv_epi8(c0, c1, m2), c2, m1);
        let g = _mm256_blendv_epi8(_mm256_blendv_epi8(c0, c1, m0), c2, m2);
        let b = _mm256_blendv_epi8(_mm256_blendv_epi8(c0, c1, m1), c2, m0);
        // Channel k of pixel i is at (3 i + k) % 16 of the gathered register.
        #[rustfmt::skip]
        let order_r = _mm256_setr_epi8(
            0, 3, 6, 9, 12, 15, 2, 5, 8, 11, 14, 1, 4, 7, 10, 13,
            0, 3, 6, 9, 12, 15, 2, 5, 8, 11, 14, 1, 4, 7, 10, 13,
        );
        #[rustfmt::skip]
        let order_g = _mm256_setr_epi8(
            1, 4, 7, 10, 13, 0, 3, 6, 9, 12, 15, 2, 5, 8, 11, 14,
            1, 4, 7, 10, 13, 0, 3, 6, 9, 12, 15, 2, 5, 8, 11, 14,
        );
        #[rustfmt::skip]
        let order_b = _mm256_setr_epi8(
            2, 5, 8, 11, 14, 1, 4, 7, 10, 13, 0, 3, 6, 9, 12, 15,
            2, 5, 8, 11, 14, 1, 4, 7, 10, 13, 0, 3, 6, 9, 12, 15,
        );
        (
            _mm256_shuffle_epi8(r, order_r),
            _mm256_shuffle_epi8(g, order_g),
            _mm256_shuffle_epi8(b, order_b),
        )
    }

    /// Y of 32 pixels from their R, G, B bytes.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn luma(r: __m256i, g: __m256i, b: __m256i) -> __m256i {
        let zero = _mm256_setzero_si256();
        let (cr, cg, cb) = (
            _mm256_set1_epi16(Y_R as i16),
            _mm256_set1_epi16(Y_G as u16 as i16),
            _mm256_set1_epi16(Y_B as i16),
        );
        let offset = _mm256_set1_epi16(Y_OFFSET as i16);
        // Unpacking below a zero byte gives v << 8 per 16-bit lane; the high half of the
        // unsigned product with c is then (v * c) >> 8, the scalar term.
        let lo = weighted_sum(
            _mm256_unpacklo_epi8(zero, r),
            _mm256_unpacklo_epi8(zero, g),
            _mm256_unpacklo_epi8(zero, b),
            (cr, cg, cb),
            offset,
        );
        let hi = weighted_sum(
            _mm256_unpackhi_epi8(zero, r),
            _mm256_unpackhi_epi8(zero, g),
            _mm256_unpackhi_epi8(zero, b),
            (cr, cg, cb),
            offset,
        );
        let (lo, hi) = (_mm256_srli_epi16::<8>(lo), _mm256_srli_epi16::<8>(hi));
        _mm256_packus_epi16(lo, hi)
    }

    /// `(r*cr + g*cg + b*cb) >> 8 + offset` per 16-bit lane, for channel values held as v << 8.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn weighted_sum(
        r: __m256i,
        g: __m256i,
        b: __m256i,
        (cr, cg, cb): (__m256i, __m256i, __m256i),
        offset: __m256i,
    ) -> __m256i {
        _mm256_add_epi16(
            _mm256_add_epi16(_mm256_mulhi_epu16(r, cr), _mm256_mulhi_epu16(g, cg)),
            _mm256_add_epi16(_mm256_mulhi_epu16(b, cb), offset),
        )
    }

    /// The sums of the 16 2x2 blocks of one channel (0..=1020) of two rows, shifted left by 5,
    /// in 16-bit lanes: `vpmaddubsw` with ones adds horizontal pairs, then the rows are added.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn block_sums(row0: __m256i, row1: __m256i) -> __m256i {
        let ones = _mm256_set1_epi8(1);
        let sum = _mm256_add_epi16(
            _mm256_maddubs_epi16(row0, ones),
            _mm256_maddubs_epi16(row1, ones),
        );
        _mm256_slli_epi16::<5>(sum)
    }

    /// Cb or Cr of 16 blocks from their channel sums shifted left by 5 (16-bit lanes).
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn chroma(sr: __m256i, sg: __m256i, sb: __m256i, c: [i32; 3]) -> __m256i {
        let t = _mm256_add_epi16(
            _mm256_add_epi16(
                _mm256_mulhi_epi16(sr, _mm256_set1_epi16(c[0] as i16)),
                _mm256_mulhi_epi16(sg, _mm256_set1_epi16(c[1] as i16)),
            ),
            _mm256_add_epi16(
                _mm256_mulhi_epi16(sb, _mm256_set1_epi16(c[2] as i16)),
                _mm256_set1_epi16(C_OFFSET as i16),
            ),
        );
        _mm256_srai_epi16::<7>(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// Every kernel this machine can run; the scalar one always.
    fn paths() -> Vec<Path> {
        #[allow(unused_mut)]
        let mut paths = vec![Path::Scalar];
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            paths.push(Path::Avx2);
        }
        paths
    }

    fn frame_from(width: usize, height: usize, f: impl Fn(usize, usize) -> [u8; 3]) -> RgbFrame {
        let mut frame = RgbFrame::new(width, height);
        for y in 0..height {
            for x in 0..width {
                let i = y * frame.stride + x * 3;
                frame.data[i..i + 3].copy_from_slice(&f(x, y));
            }
        }
        frame
    }

    fn random_frame(width: usize, height: usize, rng: &mut StdRng) -> RgbFrame {
        let mut frame = RgbFrame::new(width, height);
        rng.fill(&mut frame.data[..]);
        frame
    }

    fn convert_with(src: &RgbFrame, path: Path) -> YuvFrame {
        let mut dst = YuvFrame::new(src.width, src.height);
        convert(src, &mut dst, path);
        dst
    }

    /// Worst allowed distance from the real value: rounding (0.5) plus the floors of the fixed
    /// point arithmetic (see the module docs).
    const Y_SLACK: f64 = 0.5 + 3.0 / 256.0;
    const C_SLACK: f64 = 0.5 + 3.0 / 128.0;

    /// Checks every sample of `dst` against the reference formula: within the arithmetic's
    /// bound of the real value, and so within ±1 of the rounded value.
    fn assert_matches_reference(src: &RgbFrame, dst: &YuvFrame, what: &str) {
        let (w, h) = (src.width, src.height);
        for y in 0..h {
            for x in 0..w {
                let [r, g, b] = src.pixel(x, y);
                let want = bt601_limited_reference(r, g, b).0;
                let got = f64::from(dst.y[y * dst.y_stride() + x]);
                assert!(
                    (got - want).abs() <= Y_SLACK && (got - want.round()).abs() <= 1.0,
                    "{what}: Y at ({x},{y}) of RGB {r},{g},{b} is {got}, reference {want:.4}"
                );
            }
        }
        let (cw, ch) = YuvFrame::chroma_size(w, h);
        for cy in 0..ch {
            for cx in 0..cw {
                // Mean of the block's Cb/Cr over the pixels that exist.
                let (mut cb, mut cr, mut n) = (0.0, 0.0, 0.0);
                for y in 2 * cy..(2 * cy + 2).min(h) {
                    for x in 2 * cx..(2 * cx + 2).min(w) {
                        let [r, g, b] = src.pixel(x, y);
                        let (_, pb, pr) = bt601_limited_reference(r, g, b);
                        cb += pb;
                        cr += pr;
                        n += 1.0;
                    }
                }
                let (cb, cr) = (cb / n, cr / n);
                let i = cy * dst.uv_stride() + cx;
                for (name, got, want) in [("Cb", dst.u[i], cb), ("Cr", dst.v[i], cr)] {
                    let got = f64::from(got);
                    assert!(
                        (got - want).abs() <= C_SLACK && (got - want.round()).abs() <= 1.0,
                        "{what}: {name} of block ({cx},{cy}) is {got}, reference {want:.4}"
                    );
                }
            }
        }
    }

    #[test]
    fn reference_formula_endpoints() {
        let close = |a: (f64, f64, f64), b: (f64, f64, f64)| {
            (a.0 - b.0).abs() < 1e-9 && (a.1 - b.1).abs() < 1e-9 && (a.2 - b.2).abs() < 1e-9
        };
        assert!(close(
            bt601_limited_reference(0, 0, 0),
            (16.0, 128.0, 128.0)
        ));
        assert!(close(
            bt601_limited_reference(255, 255, 255),
            (235.0, 128.0, 128.0)
        ));
        assert!(close(
            bt601_limited_reference(255, 0, 0),
            (81.481, 128.0 - 37.796_839_729_119_64, 240.0)
        ));
        assert!(close(
            bt601_limited_reference(0, 0, 255),
            (40.966, 240.0, 128.0 - 18.213_980_028_530_67)
        ));
        let (y, cb, cr) = bt601_limited_reference(0, 255, 0);
        assert!((y - 144.553).abs() < 1e-9 && cb < 128.0 && cr < 128.0);
    }

    #[test]
    fn constants_come_from_the_reference() {
        let coef = |rgb: [u8; 3], k: usize| {
            let (y, cb, cr) = bt601_limited_reference(rgb[0], rgb[1], rgb[2]);
            [y - 16.0, cb - 128.0, cr - 128.0][k]
        };
        let primaries = [[255, 0, 0], [0, 255, 0], [0, 0, 255]];
        for (i, p) in primaries.iter().enumerate() {
            let y = (coef(*p, 0) / 255.0 * 65536.0).round() as u32;
            assert_eq!(y, [Y_R, Y_G, Y_B][i], "Y coefficient {i}");
            // Chroma per unit of the four-pixel sum, 7 fractional bits, times 2^11 for the
            // (S << 5) * c >> 16 form: coefficient / 1020 * 2^18.
            for (k, table) in [(1, CB), (2, CR)] {
                let exact = coef(*p, k) * 262_144.0 / 1020.0;
                assert!(
                    (f64::from(table[i]) - exact).abs() < 0.6,
                    "chroma table {k} coefficient {i}: {} vs {exact}",
                    table[i]
                );
            }
        }
        assert_eq!(CB.iter().sum::<i32>(), 0, "greys must give Cb = 128");
        assert_eq!(CR.iter().sum::<i32>(), 0, "greys must give Cr = 128");
    }

    #[test]
    fn luma_of_every_colour_is_within_rounding_of_the_reference() {
        let mut worst = 0.0f64;
        for r in 0..=255u8 {
            for g in 0..=255u8 {
                for b in 0..=255u8 {
                    let want = bt601_limited_reference(r, g, b).0;
                    let got = f64::from(luma(r, g, b));
                    worst = worst.max((got - want).abs());
                }
            }
        }
        assert!(worst <= Y_SLACK, "worst luma error {worst}");
    }

    #[test]
    fn chroma_of_block_sums_is_within_rounding_of_the_reference() {
        let mut rng = StdRng::seed_from_u64(601);
        let check = |sr: u16, sg: u16, sb: u16| {
            // The reference is linear, so the block mean is the formula at the mean colour.
            let mean = |s: u16| f64::from(s) / 4.0;
            let (r, g, b) = (mean(sr), mean(sg), mean(sb));
            let (_, want_cb, want_cr) = {
                let (y0, cb0, cr0) = bt601_limited_reference(0, 0, 0);
                let d = |c: [u8; 3]| {
                    let (y, cb, cr) = bt601_limited_reference(c[0], c[1], c[2]);
                    (y - y0, cb - cb0, cr - cr0)
                };
                let (dr, dg, db) = (d([255, 0, 0]), d([0, 255, 0]), d([0, 0, 255]));
                let f = |x: f64| x / 255.0;
                (
                    y0 + f(r) * dr.0 + f(g) * dg.0 + f(b) * db.0,
                    cb0 + f(r) * dr.1 + f(g) * dg.1 + f(b) * db.1,
                    cr0 + f(r) * dr.2 + f(g) * dg.2 + f(b) * db.2,
                )
            };
            for (name, got, want) in [
                ("Cb", chroma(sr, sg, sb, CB), want_cb),
                ("Cr", chroma(sr, sg, sb, CR), want_cr),
            ] {
                let got = f64::from(got);
                assert!(
                    (got - want).abs() <= C_SLACK,
                    "{name} of sums {sr},{sg},{sb}: {got} vs {want:.4}"
                );
            }
        };
        let corners = [0u16, 1, 2, 3, 509, 510, 511, 1017, 1018, 1019, 1020];
        for &sr in &corners {
            for &sg in &corners {
                for &sb in &corners {
                    check(sr, sg, sb);
                }
            }
        }
        for _ in 0..2_000_000 {
            check(
                rng.random_range(0..=1020),
                rng.random_range(0..=1020),
                rng.random_range(0..=1020),
            );
        }
    }

    #[test]
    fn black_and_white_are_exact() {
        for path in paths() {
            for (w, h) in [(64, 36), (33, 17), (1, 1)] {
                let black = convert_with(&RgbFrame::new(w, h), path);
                assert!(black.y.iter().all(|&v| v == 16), "{path:?} {w}x{h} black Y");
                assert!(
                    black.u.iter().chain(&black.v).all(|&v| v == 128),
                    "{path:?} black UV"
                );
                let white = convert_with(&frame_from(w, h, |_, _| [255; 3]), path);
                assert!(
                    white.y.iter().all(|&v| v == 235),
                    "{path:?} {w}x{h} white Y"
                );
                assert!(
                    white.u.iter().chain(&white.v).all(|&v| v == 128),
                    "{path:?} white UV"
                );
            }
        }
    }

    #[test]
    fn solid_colours_match_the_reference() {
        let colours: [(&str, [u8; 3]); 12] = [
            ("mint", [0, 255, 255]),
            ("red", [255, 0, 0]),
            ("green", [0, 255, 0]),
            ("blue", [0, 0, 255]),
            ("yellow", [255, 255, 0]),
            ("magenta", [255, 0, 255]),
            ("grey 1", [1, 1, 1]),
            ("grey 64", [64, 64, 64]),
            ("grey 127", [127, 127, 127]),
            ("grey 128", [128, 128, 128]),
            ("grey 254", [254, 254, 254]),
            ("orange", [255, 128, 0]),
        ];
        for path in paths() {
            for (name, rgb) in colours {
                let src = frame_from(66, 10, |_, _| rgb);
                let dst = convert_with(&src, path);
                assert_matches_reference(&src, &dst, &format!("{path:?} {name}"));
                if name.starts_with("grey") {
                    assert!(dst.u.iter().chain(&dst.v).all(|&v| v == 128), "{name} UV");
                }
            }
            // Saturated primaries reach the ends of the chroma range exactly.
            let red = convert_with(&frame_from(32, 2, |_, _| [255, 0, 0]), path);
            assert!(red.v.iter().all(|&v| v == 240), "{path:?} red Cr");
            let blue = convert_with(&frame_from(32, 2, |_, _| [0, 0, 255]), path);
            assert!(blue.u.iter().all(|&v| v == 240), "{path:?} blue Cb");
        }
    }

    #[test]
    fn random_images_of_odd_and_even_sizes_match_the_reference() {
        let mut rng = StdRng::seed_from_u64(420);
        let sizes = [
            (1, 1),
            (3, 5),
            (321, 181),
            (64, 64),
            (31, 7),
            (33, 9),
            (65, 3),
            (96, 2),
            (2, 1),
        ];
        for (w, h) in sizes {
            let src = random_frame(w, h, &mut rng);
            for path in paths() {
                assert_matches_reference(
                    &src,
                    &convert_with(&src, path),
                    &format!("{path:?} {w}x{h}"),
                );
            }
        }
    }

    #[test]
    fn last_column_and_row_average_only_the_pixels_that_exist() {
        // 3x5: blocks (1, _) are one pixel wide, blocks (_, 2) one pixel high, (1, 2) is one pixel.
        let red = [255, 0, 0];
        let green = [0, 255, 0];
        let blue = [0, 0, 255];
        let mint = [0, 255, 255];
        let src = frame_from(3, 5, |x, y| match (x, y) {
            (2, 4) => mint,
            (2, _) => red,
            (_, 4) => green,
            _ => blue,
        });
        let round = |rgb: [u8; 3]| {
            let (_, cb, cr) = bt601_limited_reference(rgb[0], rgb[1], rgb[2]);
            (cb.round(), cr.round())
        };
        for path in paths() {
            let dst = convert_with(&src, path);
            assert_eq!((dst.width, dst.uv_stride()), (3, 2));
            let at = |cx: usize, cy: usize| {
                let i = cy * 2 + cx;
                (f64::from(dst.u[i]), f64::from(dst.v[i]))
            };
            let near = |got: (f64, f64), want: (f64, f64)| {
                (got.0 - want.0).abs() <= 1.0 && (got.1 - want.1).abs() <= 1.0
            };
            for cy in 0..2 {
                assert!(
                    near(at(0, cy), round(blue)),
                    "{path:?} block (0,{cy}) {:?}",
                    at(0, cy)
                );
                assert!(
                    near(at(1, cy), round(red)),
                    "{path:?} block (1,{cy}) {:?}",
                    at(1, cy)
                );
            }
            assert!(
                near(at(0, 2), round(green)),
                "{path:?} block (0,2) {:?}",
                at(0, 2)
            );
            assert!(
                near(at(1, 2), round(mint)),
                "{path:?} block (1,2) {:?}",
                at(1, 2)
            );
            assert_matches_reference(&src, &dst, &format!("{path:?} 3x5 edges"));
        }
    }

    #[test]
    fn all_kernels_agree_exactly() {
        let mut rng = StdRng::seed_from_u64(264);
        let mut frames = Vec::new();
        // Every width from 1 to 100 (all tails of the 32-pixel step), odd and even heights.
        for w in 1..=100 {
            frames.push(random_frame(w, 1 + w % 4, &mut rng));
        }
        frames.push(random_frame(1920, 9, &mut rng));
        // Every colour: frame r holds all (g, b), neighbours differing by one step.
        for r in 0..=255u8 {
            frames.push(frame_from(256, 256, |x, y| [r, x as u8, y as u8]));
        }
        for src in &frames {
            let scalar = convert_with(src, Path::Scalar);
            for path in paths() {
                assert_eq!(
                    convert_with(src, path),
                    scalar,
                    "{path:?} {}x{}",
                    src.width,
                    src.height
                );
            }
        }
    }

    #[test]
    fn padded_rows_are_read_through_the_stride() {
        let mut rng = StdRng::seed_from_u64(3);
        let packed = random_frame(70, 11, &mut rng);
        let stride = 70 * 3 + 13;
        let mut padded = RgbFrame {
            width: 70,
            height: 11,
            stride,
            data: vec![0xA5; stride * 11],
        };
        for y in 0..11 {
            padded.data[y * stride..y * stride + 210]
                .copy_from_slice(&packed.data[y * 210..(y + 1) * 210]);
        }
        for path in paths() {
            assert_eq!(
                convert_with(&padded, path),
                convert_with(&packed, path),
                "{path:?}"
            );
        }
        // The public entry point agrees with the kernels too.
        let mut dst = YuvFrame::new(70, 11);
        rgb_to_i420(&padded, &mut dst);
        assert_eq!(dst, convert_with(&packed, Path::Scalar));
    }

    /// The row-pair entry point gives what the frame conversion gives for those rows.
    #[test]
    fn row_pairs_convert_like_the_frame() {
        let mut rng = StdRng::seed_from_u64(5);
        for (w, h) in [(1, 1), (2, 3), (33, 5), (64, 2), (95, 7), (1920, 3)] {
            let src = random_frame(w, h, &mut rng);
            let want = convert_with(&src, Path::Scalar);
            let mut got = YuvFrame::new(w, h);
            let cw = got.uv_stride();
            for j in 0..h.div_ceil(2) {
                let r0 = 2 * j;
                let s0 = &src.data[r0 * src.stride..][..3 * w];
                let (y0, rest) = got.y[r0 * w..((r0 + 2).min(h)) * w].split_at_mut(w);
                let (s1, y1) = if r0 + 1 < h {
                    (&src.data[(r0 + 1) * src.stride..][..3 * w], Some(rest))
                } else {
                    (s0, None)
                };
                let (u, v) = (
                    &mut got.u[j * cw..(j + 1) * cw],
                    &mut got.v[j * cw..(j + 1) * cw],
                );
                rgb_row_pair_to_i420(s0, s1, y0, y1, u, v);
            }
            assert_eq!(got, want, "{w}x{h}");
        }
    }

    #[test]
    fn grey_luma_is_the_luma_of_grey() {
        for v in 0..=255u8 {
            let frame = frame_from(2, 2, |_, _| [v; 3]);
            let yuv = convert_with(&frame, Path::Scalar);
            assert_eq!(grey_luma(v), yuv.y[0], "grey {v}");
            assert_eq!((yuv.u[0], yuv.v[0]), (128, 128), "grey {v}");
        }
    }

    #[test]
    fn empty_frames_are_a_no_op() {
        for (w, h) in [(0, 0), (0, 4), (4, 0)] {
            let mut dst = YuvFrame::new(w, h);
            rgb_to_i420(&RgbFrame::new(w, h), &mut dst);
            assert_eq!(dst, YuvFrame::new(w, h));
        }
    }

    #[test]
    #[should_panic(expected = "is 4x4 but the I420 frame is 4x2")]
    fn size_mismatch_panics() {
        rgb_to_i420(&RgbFrame::new(4, 4), &mut YuvFrame::new(4, 2));
    }

    /// `cargo test --release --lib -- --ignored yuv::tests::timing` (results on stderr).
    #[test]
    #[ignore = "timing, run by hand with --release"]
    fn timing() {
        let mut rng = StdRng::seed_from_u64(1);
        for (w, h) in [(1280, 720), (1920, 1080)] {
            let src = random_frame(w, h, &mut rng);
            let mut dst = YuvFrame::new(w, h);
            for path in paths() {
                let runs = 300;
                convert(&src, &mut dst, path);
                let start = std::time::Instant::now();
                for _ in 0..runs {
                    convert(std::hint::black_box(&src), &mut dst, path);
                }
                let ms = start.elapsed().as_secs_f64() * 1e3 / f64::from(runs);
                // The crate forbids print macros; a by-hand timing test writes to stderr directly.
                let line = format!("rgb_to_i420 {w}x{h} {path:?}: {ms:.3} ms/frame\n");
                std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes())
                    .expect("stderr is writable");
            }
        }
    }
}
