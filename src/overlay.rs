//! The burnt-in timecode: `HH:MM:SS:FF` in white on a black box, drawn into each RGB frame
//! before colour conversion.
//!
//! The timecode is stream time, not SMPTE ST 12-1 drop-frame timecode: `HH:MM:SS` is the whole
//! seconds of the frame's presentation time (its slot `n / fps` on the 90 kHz stream clock of
//! ISO/IEC 13818-1 §2.4.2.2, see [`crate::time`]) and `FF` is the index of the frame among the
//! frames whose time falls in that second. At 30000/1001 fps a second therefore holds 29 or 30
//! frames and `FF` restarts at every wall-clock second, so the overlay always agrees with the
//! PTS, the markers and `EXT-X-PROGRAM-DATE-TIME`. Hours do not wrap at 24.
//!
//! # Layout
//!
//! * Text height: the height above the baseline of the tallest digit outline (the figure
//!   height, overshoot included; in DejaVu Sans Mono it equals the cap height plus ~2 %) is
//!   `height / 10` pixels. The font size in pixels per em follows from that.
//! * Baseline: pixel row boundary `round(0.8 * height)`: glyphs stand on it, so a flat-bottomed
//!   digit's last row is `round(0.8 * height) - 1`.
//! * Every character occupies one cell of the same integer width (the widest advance of
//!   `0-9` and `:`, rounded up), so the box never changes size or position from frame to frame.
//! * The box is the union of every glyph's bitmap in every cell plus a padding of a fifth of the
//!   text height on each side, horizontally centred (left and right margins differ by at most
//!   one pixel). A timecode longer than `HH:MM:SS:FF` (100 hours or more, or 100 fps or more)
//!   widens the box symmetrically. Everything is clipped to the frame.
//!
//! The eleven glyphs are rasterised once by [`TimecodeOverlay::new`] (fontdue coverage bitmaps);
//! [`TimecodeOverlay::draw`] only fills the box and alpha-blends those bitmaps, white over the
//! black box, and allocates nothing. [`TimecodeOverlay::draw_i420`] draws the same picture
//! straight into an I420 frame (see there).
//!
//! The default font is DejaVu Sans Mono Bold (Bitstream Vera licence, see
//! `fonts/DejaVuSansMono-Bold.LICENSE`).

use crate::frame::{RgbFrame, YuvFrame};
use crate::time::{Duration90k, FrameRate, StreamTime};
use crate::yuv::grey_luma;
use std::fmt;

/// DejaVu Sans Mono Bold 2.37, from Debian's `fonts-dejavu-core`.
pub static DEFAULT_FONT: &[u8] = include_bytes!("../fonts/DejaVuSansMono-Bold.ttf");

/// The characters a timecode uses, in glyph-table order: `0`-`9` then `:`.
const CHARSET: [char; 11] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':'];
/// Characters of the usual `HH:MM:SS:FF`.
#[cfg(test)]
const STANDARD_LEN: usize = 11;

/// A stream timecode: hours (not wrapped at 24), minutes, seconds and the frame within the
/// second. See the module docs for how it relates to the stream clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timecode {
    pub(crate) hours: u32,
    pub(crate) minutes: u8,
    pub(crate) seconds: u8,
    pub(crate) frames: u32,
}

impl Timecode {
    /// The longest text [`Timecode::write_to`] can produce: 10 digits of hours, up to 3 of
    /// minutes and of seconds (a hand-built value may exceed 59), 10 of frames, 3 colons.
    pub(crate) const MAX_LEN: usize = 29;

    /// The timecode of frame slot `n` at `rate`: the seconds are
    /// the whole seconds of `rate.time_of(n)`, the frame is `n` minus the first slot of that second
    /// (`n % fps` for integer rates).
    pub fn from_frame(n: u64, rate: FrameRate) -> Timecode {
        let secs = rate.time_of(n).whole_secs();
        let first_of_second =
            rate.first_frame_at_or_after(StreamTime::ZERO + Duration90k::from_secs(secs));
        let frames = n - first_of_second;
        Timecode {
            hours: u32::try_from(secs / 3600).unwrap_or(u32::MAX),
            minutes: (secs / 60 % 60) as u8,
            seconds: (secs % 60) as u8,
            frames: u32::try_from(frames).unwrap_or(u32::MAX),
        }
    }

    /// Writes `HH:MM:SS:FF` (each field at least two digits, more when the value needs them)
    /// into `buf` and returns it as text. Allocation-free: the overlay uses it every frame.
    pub(crate) fn write_to<'a>(&self, buf: &'a mut [u8; Timecode::MAX_LEN]) -> &'a str {
        let mut len = 0;
        for (i, value) in [
            self.hours,
            u32::from(self.minutes),
            u32::from(self.seconds),
            self.frames,
        ]
        .into_iter()
        .enumerate()
        {
            if i > 0 {
                buf[len] = b':';
                len += 1;
            }
            let digits = decimal_digits(value).max(2);
            let mut v = value;
            for slot in buf[len..len + digits].iter_mut().rev() {
                *slot = b'0' + (v % 10) as u8;
                v /= 10;
            }
            len += digits;
        }
        std::str::from_utf8(&buf[..len]).expect("a timecode is ASCII digits and colons")
    }
}

/// Number of decimal digits of `v` (1 for 0).
fn decimal_digits(v: u32) -> usize {
    v.checked_ilog10().map_or(1, |d| d as usize + 1)
}

impl fmt::Display for Timecode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0; Timecode::MAX_LEN];
        f.write_str(self.write_to(&mut buf))
    }
}

/// Why a [`TimecodeOverlay`] could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OverlayError {
    /// fontdue could not parse the font file.
    #[error("timecode font: {0}")]
    Font(String),
    /// The font has no glyph for a character a timecode needs.
    #[error("timecode font has no glyph for {0:?}")]
    MissingGlyph(char),
    /// The font's digits have no height, so no size gives the requested text height.
    #[error("timecode font's digits have no outline")]
    NoDigitOutlines,
}

/// One rasterised character, positioned relative to its cell.
#[derive(Clone, Debug)]
struct Glyph {
    /// Left edge of the bitmap relative to the cell's left edge, in pixels.
    left: i64,
    /// Top row of the bitmap relative to the baseline (negative: above it).
    top: i64,
    width: usize,
    height: usize,
    /// Row-major coverage, 0 (none) to 255 (full), `width * height` bytes.
    coverage: Vec<u8>,
}

/// Draws timecodes into frames of one size. Build once per stream ([`TimecodeOverlay::new`]),
/// then [`TimecodeOverlay::draw`] per frame.
#[derive(Clone, Debug)]
pub struct TimecodeOverlay {
    width: usize,
    height: usize,
    /// Glyphs of [`CHARSET`], same order.
    glyphs: Vec<Glyph>,
    /// Width of every character cell.
    cell: i64,
    /// Union of all glyph bitmaps relative to one cell: columns `[ink_left, ink_right)` from the
    /// cell's left edge, rows `[ink_top, ink_bottom)` from the baseline.
    ink_left: i64,
    ink_right: i64,
    ink_top: i64,
    ink_bottom: i64,
    /// Padding of the box around the ink, every side.
    pad: i64,
    /// Row boundary the glyphs stand on.
    baseline: i64,
    /// Y of each grey level as the converter computes it, and back: the least grey level with
    /// that Y (exact for 16, black), for drawing into I420.
    luma_of_grey: [u8; 256],
    grey_of_luma: [u8; 256],
}

/// The box and the left edge of the first cell for a text of some length (signed, unclipped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Layout {
    x0: i64,
    y0: i64,
    x1: i64,
    y1: i64,
    /// Left edge of cell 0.
    text_x: i64,
}

impl TimecodeOverlay {
    /// Rasterises `0`-`9` and `:` from `font_bytes` (a TrueType/OpenType font) at the size that
    /// makes the digits `height / 10` pixels tall, for frames of `width` x `height`.
    pub fn new(font_bytes: &[u8], width: usize, height: usize) -> Result<Self, OverlayError> {
        let font = fontdue::Font::from_bytes(font_bytes, fontdue::FontSettings::default())
            .map_err(|e| OverlayError::Font(e.to_string()))?;
        if let Some(&c) = CHARSET.iter().find(|&&c| !font.has_glyph(c)) {
            return Err(OverlayError::MissingGlyph(c));
        }

        // Figure height per pixel of font size, measured at a large size for precision.
        const PROBE_PX: f32 = 1000.0;
        let figure_height = CHARSET[..10]
            .iter()
            .map(|&c| {
                let b = font.metrics(c, PROBE_PX).bounds;
                b.ymin + b.height
            })
            .fold(0.0f32, f32::max)
            / PROBE_PX;
        if !(figure_height.is_finite() && figure_height > 0.0) {
            return Err(OverlayError::NoDigitOutlines);
        }
        let text_height = height as f32 / 10.0;
        // At least one pixel per em, so tiny frames still get (tiny) glyphs.
        let px = (text_height / figure_height).max(1.0);

        let rasters: Vec<(fontdue::Metrics, Vec<u8>)> =
            CHARSET.iter().map(|&c| font.rasterize(c, px)).collect();
        let advance = rasters
            .iter()
            .map(|(m, _)| m.advance_width)
            .fold(0.0f32, f32::max);
        let cell = (advance.ceil() as i64).max(1);
        let glyphs: Vec<Glyph> = rasters
            .into_iter()
            .map(|(m, coverage)| Glyph {
                // Centre narrower glyphs (a proportional font's colon) in the cell.
                left: ((cell as f32 - m.advance_width) / 2.0).round() as i64 + i64::from(m.xmin),
                top: -(i64::from(m.ymin) + m.height as i64),
                width: m.width,
                height: m.height,
                coverage,
            })
            .collect();

        let ink_left = glyphs.iter().map(|g| g.left).fold(0, i64::min);
        let ink_right = glyphs
            .iter()
            .map(|g| g.left + g.width as i64)
            .fold(cell, i64::max);
        let ink_top = glyphs.iter().map(|g| g.top).min().unwrap_or(0);
        let ink_bottom = glyphs
            .iter()
            .map(|g| g.top + g.height as i64)
            .max()
            .unwrap_or(0);
        let luma_of_grey: [u8; 256] = std::array::from_fn(|v| grey_luma(v as u8));
        let mut grey_of_luma = [0u8; 256];
        for (y, g) in grey_of_luma.iter_mut().enumerate() {
            // Monotonic: the first grey reaching this Y (255 above white's Y).
            *g = luma_of_grey
                .iter()
                .position(|&l| usize::from(l) >= y)
                .unwrap_or(255) as u8;
        }
        Ok(TimecodeOverlay {
            width,
            height,
            glyphs,
            cell,
            ink_left,
            ink_right,
            ink_top,
            ink_bottom,
            pad: ((text_height / 5.0).round() as i64).max(1),
            baseline: (height as f64 * 0.8).round() as i64,
            luma_of_grey,
            grey_of_luma,
        })
    }

    /// The black box of a standard `HH:MM:SS:FF` timecode as `(x0, y0, x1, y1)`: columns
    /// `x0..x1` and rows `y0..y1`, clipped to the frame.
    #[cfg(test)]
    pub(crate) fn box_rect(&self) -> (usize, usize, usize, usize) {
        self.clip(self.layout(STANDARD_LEN))
    }

    /// Draws `tc` into `frame`: a black box, the glyphs blended white over it. Pixels outside
    /// the box are not touched. Allocates nothing.
    ///
    /// # Panics
    /// If `frame` is not the size this overlay was built for.
    pub fn draw(&self, frame: &mut RgbFrame, tc: Timecode) {
        assert!(
            frame.width == self.width && frame.height == self.height,
            "timecode overlay built for {}x{} drawn on a {}x{} frame",
            self.width,
            self.height,
            frame.width,
            frame.height
        );
        let mut buf = [0; Timecode::MAX_LEN];
        let text = tc.write_to(&mut buf).as_bytes();
        let layout = self.layout(text.len());
        let (x0, y0, x1, y1) = self.clip(layout);
        if x0 < x1 {
            for y in y0..y1 {
                frame.row_mut(y)[x0 * 3..x1 * 3].fill(0);
            }
        }
        for (i, &c) in text.iter().enumerate() {
            let index = if c == b':' { 10 } else { usize::from(c - b'0') };
            let cell_x = layout.text_x + i as i64 * self.cell;
            self.blend(frame, &self.glyphs[index], cell_x);
        }
    }

    /// Draws `tc` into an I420 `frame`: the picture [`TimecodeOverlay::draw`] followed by
    /// [`crate::yuv::rgb_to_i420`] gives. Luma inside the box is the converter's Y of the grey
    /// that `draw` paints (black, glyphs blended white over it); chroma blocks inside the box are
    /// 128 (grey), and a block the box edge cuts keeps the part of its old deviation from 128
    /// that its pixels outside the box hold. That is exact where glyph bitmaps do not overlap
    /// (the bundled font's never do) and the background at the box edge is grey, as the
    /// checkerboard's is; otherwise within a code value or two. Allocates nothing.
    ///
    /// # Panics
    /// If `frame` is not the size this overlay was built for.
    pub fn draw_i420(&self, frame: &mut YuvFrame, tc: Timecode) {
        assert!(
            frame.width == self.width && frame.height == self.height,
            "timecode overlay built for {}x{} drawn on a {}x{} frame",
            self.width,
            self.height,
            frame.width,
            frame.height
        );
        let mut buf = [0; Timecode::MAX_LEN];
        let text = tc.write_to(&mut buf).as_bytes();
        let layout = self.layout(text.len());
        let (x0, y0, x1, y1) = self.clip(layout);
        if x0 < x1 && y0 < y1 {
            let w = self.width;
            for y in y0..y1 {
                frame.y[y * w + x0..y * w + x1].fill(self.luma_of_grey[0]);
            }
            self.grey_chroma(frame, (x0, y0, x1, y1));
        }
        for (i, &c) in text.iter().enumerate() {
            let index = if c == b':' { 10 } else { usize::from(c - b'0') };
            let cell_x = layout.text_x + i as i64 * self.cell;
            self.blend_luma(frame, &self.glyphs[index], cell_x);
        }
    }

    /// Makes the chroma of the box grey (see [`TimecodeOverlay::draw_i420`]); the box is
    /// clipped and not empty.
    fn grey_chroma(&self, frame: &mut YuvFrame, (x0, y0, x1, y1): (usize, usize, usize, usize)) {
        let (w, h) = (self.width, self.height);
        let cw = frame.uv_stride();
        // Pixels of the block at chroma index c along an axis of `len` pixels, and how many of
        // them lie in [lo, hi).
        let span = |c: usize, len: usize, lo: usize, hi: usize| {
            let (a, b) = (2 * c, (2 * c + 2).min(len));
            (b - a, b.min(hi).saturating_sub(a.max(lo)))
        };
        let (cx0, cx1) = (x0 / 2, x1.div_ceil(2));
        for cy in y0 / 2..y1.div_ceil(2) {
            let (rows, rows_in) = span(cy, h, y0, y1);
            let line = cy * cw;
            for plane in [&mut frame.u, &mut frame.v] {
                let row = &mut plane[line + cx0..line + cx1];
                let last = row.len() - 1;
                // Only the first and the last column can be cut by the box's left and right
                // edges (or be the single column of an odd width).
                let edges: &[usize] = if last == 0 { &[0] } else { &[0, last] };
                for &i in edges {
                    let (cols, cols_in) = span(cx0 + i, w, x0, x1);
                    row[i] = grey_share(row[i], rows_in * cols_in, rows * cols);
                }
                if last > 1 {
                    let inner = &mut row[1..last];
                    if rows_in == rows {
                        inner.fill(128);
                    } else {
                        for c in inner {
                            *c = grey_share(*c, 2 * rows_in, 2 * rows);
                        }
                    }
                }
            }
        }
    }

    /// [`TimecodeOverlay::blend`] in the luma plane: each Y is taken back to its grey level,
    /// blended, and converted again.
    fn blend_luma(&self, frame: &mut YuvFrame, glyph: &Glyph, cell_x: i64) {
        let gx = cell_x + glyph.left;
        let gy = self.baseline + glyph.top;
        let col0 = (-gx).clamp(0, glyph.width as i64) as usize;
        let col1 = (self.width as i64 - gx).clamp(0, glyph.width as i64) as usize;
        let row0 = (-gy).clamp(0, glyph.height as i64) as usize;
        let row1 = (self.height as i64 - gy).clamp(0, glyph.height as i64) as usize;
        if col0 >= col1 {
            return;
        }
        let w = self.width;
        for row in row0..row1 {
            let coverage = &glyph.coverage[row * glyph.width..][col0..col1];
            // Non-negative: row >= row0 >= -gy, col0 >= -gx.
            let y = (gy + row as i64) as usize;
            let x = (gx + col0 as i64) as usize;
            let lumas = &mut frame.y[y * w + x..y * w + x + coverage.len()];
            for (l, &a) in lumas.iter_mut().zip(coverage) {
                let v = match a {
                    0 => continue,
                    255 => 255,
                    _ => {
                        let (v, a) = (u32::from(self.grey_of_luma[usize::from(*l)]), u32::from(a));
                        ((v * (255 - a) + 255 * a + 127) / 255) as u8
                    }
                };
                *l = self.luma_of_grey[usize::from(v)];
            }
        }
    }

    /// The box and text position for a text of `len` characters, unclipped.
    fn layout(&self, len: usize) -> Layout {
        let cells = len as i64;
        let ink_width = (cells - 1) * self.cell + self.ink_right - self.ink_left;
        let box_width = ink_width + 2 * self.pad;
        let x0 = (self.width as i64 - box_width).div_euclid(2);
        Layout {
            x0,
            y0: self.baseline + self.ink_top - self.pad,
            x1: x0 + box_width,
            y1: self.baseline + self.ink_bottom + self.pad,
            text_x: x0 + self.pad - self.ink_left,
        }
    }

    fn clip(&self, l: Layout) -> (usize, usize, usize, usize) {
        let cx = |v: i64| v.clamp(0, self.width as i64) as usize;
        let cy = |v: i64| v.clamp(0, self.height as i64) as usize;
        (cx(l.x0), cy(l.y0), cx(l.x1), cy(l.y1))
    }

    /// Blends white over `frame` with the glyph's coverage as alpha, its cell's left edge at
    /// column `cell_x`, clipped to the frame.
    fn blend(&self, frame: &mut RgbFrame, glyph: &Glyph, cell_x: i64) {
        let gx = cell_x + glyph.left;
        let gy = self.baseline + glyph.top;
        // Visible columns and rows of the bitmap.
        let col0 = (-gx).clamp(0, glyph.width as i64) as usize;
        let col1 = (self.width as i64 - gx).clamp(0, glyph.width as i64) as usize;
        let row0 = (-gy).clamp(0, glyph.height as i64) as usize;
        let row1 = (self.height as i64 - gy).clamp(0, glyph.height as i64) as usize;
        if col0 >= col1 {
            return;
        }
        for row in row0..row1 {
            let coverage = &glyph.coverage[row * glyph.width..][col0..col1];
            // Non-negative: row >= row0 >= -gy, col0 >= -gx.
            let y = (gy + row as i64) as usize;
            let x = (gx + col0 as i64) as usize;
            let pixels = &mut frame.row_mut(y)[x * 3..(x + coverage.len()) * 3];
            for (px, &a) in pixels.chunks_exact_mut(3).zip(coverage) {
                // Every pixel under a glyph is grey: the box was filled black above and glyphs
                // only add white. So one channel stands for all three.
                let v = match a {
                    0 => continue,
                    255 => 255,
                    // White over the pixel: v + (255 - v) * a / 255, rounded.
                    _ => {
                        let (v, a) = (u32::from(px[0]), u32::from(a));
                        ((v * (255 - a) + 255 * a + 127) / 255) as u8
                    }
                };
                px.copy_from_slice(&[v; 3]);
            }
        }
    }
}

/// Chroma sample `c` of a block of `total` pixels after `inside` of them turned grey: 128 plus
/// the outside pixels' share of its deviation from 128, rounded half away from zero.
fn grey_share(c: u8, inside: usize, total: usize) -> u8 {
    if inside == total {
        return 128;
    }
    let (outside, total) = ((total - inside) as i32, total as i32);
    let d = (i32::from(c) - 128) * outside;
    (128 + (d + d.signum() * (total / 2)) / total) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tc(hours: u32, minutes: u8, seconds: u8, frames: u32) -> Timecode {
        Timecode {
            hours,
            minutes,
            seconds,
            frames,
        }
    }

    fn overlay(width: usize, height: usize) -> TimecodeOverlay {
        TimecodeOverlay::new(DEFAULT_FONT, width, height).expect("the bundled font loads")
    }

    fn checkerboard(width: usize, height: usize, block: usize) -> RgbFrame {
        let mut frame = RgbFrame::new(width, height);
        for y in 0..height {
            for x in 0..width {
                if (x / block + y / block) % 2 == 0 {
                    frame.data[y * frame.stride + x * 3..][..3].copy_from_slice(&[255; 3]);
                }
            }
        }
        frame
    }

    /// Pixels of `a` and `b` that differ.
    fn diff(a: &RgbFrame, b: &RgbFrame) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for y in 0..a.height {
            for x in 0..a.width {
                if a.pixel(x, y) != b.pixel(x, y) {
                    out.push((x, y));
                }
            }
        }
        out
    }

    fn inside((x0, y0, x1, y1): (usize, usize, usize, usize), (x, y): (usize, usize)) -> bool {
        (x0..x1).contains(&x) && (y0..y1).contains(&y)
    }

    /// Rows and columns whose brightness is at least `min` inside `rect`: (top, bottom, left,
    /// right), inclusive.
    fn ink_extent(
        frame: &RgbFrame,
        rect: (usize, usize, usize, usize),
        min: u8,
    ) -> (usize, usize, usize, usize) {
        let (x0, y0, x1, y1) = rect;
        let mut e = (usize::MAX, 0, usize::MAX, 0);
        for y in y0..y1 {
            for x in x0..x1 {
                if frame.pixel(x, y)[0] >= min {
                    e = (e.0.min(y), e.1.max(y), e.2.min(x), e.3.max(x));
                }
            }
        }
        assert!(e.0 != usize::MAX, "no ink at all in {rect:?}");
        e
    }

    #[test]
    fn timecode_from_frame_at_30_fps() {
        let r = FrameRate::new(30, 1).expect("valid rate");
        assert_eq!(Timecode::from_frame(0, r), tc(0, 0, 0, 0));
        assert_eq!(Timecode::from_frame(29, r), tc(0, 0, 0, 29));
        assert_eq!(Timecode::from_frame(30, r), tc(0, 0, 1, 0));
        assert_eq!(Timecode::from_frame(1799, r), tc(0, 0, 59, 29));
        assert_eq!(Timecode::from_frame(1800, r), tc(0, 1, 0, 0));
        assert_eq!(Timecode::from_frame(108_000, r), tc(1, 0, 0, 0));
        // Not wrapped at 24 hours.
        assert_eq!(
            Timecode::from_frame(25 * 108_000, r).to_string(),
            "25:00:00:00"
        );
        assert_eq!(
            Timecode::from_frame(100 * 108_000 + 61, r).to_string(),
            "100:00:02:01"
        );
    }

    #[test]
    fn timecode_from_frame_at_29_97_follows_the_stream_clock() {
        let r = FrameRate::new(30_000, 1001).expect("valid rate");
        assert_eq!(Timecode::from_frame(0, r), tc(0, 0, 0, 0));
        assert_eq!(Timecode::from_frame(29, r), tc(0, 0, 0, 29)); // 0.967 s
        assert_eq!(Timecode::from_frame(30, r), tc(0, 0, 1, 0)); // 1.001 s
        assert_eq!(Timecode::from_frame(30_000, r), tc(0, 16, 41, 0)); // exactly 1001 s
        assert_eq!(Timecode::from_frame(107_892, r), tc(0, 59, 59, 29)); // 3599.996 s
        assert_eq!(Timecode::from_frame(107_893, r), tc(1, 0, 0, 0)); // 3600.030 s
                                                                      // Across a long run: the seconds agree with the PTS, FF counts up by one inside a second
                                                                      // and restarts at 0 with the next one, and never reaches 30.
        let mut prev = Timecode::from_frame(0, r);
        for n in 1..200_000u64 {
            let t = Timecode::from_frame(n, r);
            let secs = u64::from(t.hours) * 3600 + u64::from(t.minutes) * 60 + u64::from(t.seconds);
            assert_eq!(secs, r.time_of(n).whole_secs(), "n={n}");
            let prev_secs = u64::from(prev.hours) * 3600
                + u64::from(prev.minutes) * 60
                + u64::from(prev.seconds);
            if secs == prev_secs {
                assert_eq!(t.frames, prev.frames + 1, "n={n}");
            } else {
                assert_eq!((secs, t.frames), (prev_secs + 1, 0), "n={n}");
            }
            assert!(t.frames < 30, "n={n}");
            prev = t;
        }
    }

    #[test]
    fn timecode_text() {
        let mut buf = [0; Timecode::MAX_LEN];
        assert_eq!(tc(0, 0, 0, 0).write_to(&mut buf), "00:00:00:00");
        assert_eq!(tc(1, 2, 3, 4).write_to(&mut buf), "01:02:03:04");
        assert_eq!(tc(23, 59, 59, 29).to_string(), "23:59:59:29");
        assert_eq!(tc(0, 0, 1, 119).to_string(), "00:00:01:119");
        assert_eq!(tc(7, 0, 9, 10).to_string(), "07:00:09:10");
        let longest = tc(u32::MAX, 255, 255, u32::MAX);
        assert_eq!(longest.write_to(&mut buf), "4294967295:255:255:4294967295");
        assert_eq!(longest.to_string().len(), Timecode::MAX_LEN);
    }

    #[test]
    fn box_and_baseline_follow_the_spec() {
        for (w, h) in [(320, 180), (1280, 720)] {
            let o = overlay(w, h);
            let (x0, y0, x1, y1) = o.box_rect();
            let baseline = (h as f64 * 0.8).round() as usize;
            let text_h = h as f64 / 10.0;
            // Centred: equal margins within one pixel.
            assert!(
                (x0 as i64 - (w - x1) as i64).abs() <= 1,
                "{w}x{h}: box {x0}..{x1}"
            );
            // The box spans the text: from above the figure height to below the baseline.
            assert!(
                (y0 as f64) < baseline as f64 - text_h && y1 > baseline,
                "{w}x{h}: rows {y0}..{y1}"
            );

            // "11:11:11:11": flat-bottomed ones stand on the baseline.
            let mut frame = checkerboard(w, h, 8);
            o.draw(&mut frame, tc(11, 11, 11, 11));
            let (top, bottom, left, right) = ink_extent(&frame, (x0, y0, x1, y1), 128);
            assert_eq!(bottom, baseline - 1, "{w}x{h}: last ink row");
            // Digit height h/10 (rows with at least half coverage).
            let height = (bottom + 1 - top) as f64;
            assert!(
                (height - text_h).abs() <= 1.5,
                "{w}x{h}: ink height {height} vs {text_h}"
            );
            // Padded on every side, and the ink itself is centred too.
            assert!(
                top > y0 && bottom + 1 < y1 && left > x0 && right + 1 < x1,
                "{w}x{h}: no padding"
            );
            let (margin_l, margin_r) = (left as i64 - x0 as i64, x1 as i64 - 1 - right as i64);
            assert!(
                (margin_l - margin_r).abs() <= 2 + o.cell / 4,
                "{w}x{h}: ink {left}..={right} in {x0}..{x1}"
            );

            // The tallest digits reach h/10 above the baseline.
            let mut frame = checkerboard(w, h, 8);
            o.draw(&mut frame, tc(88, 88, 88, 88));
            let (top, ..) = ink_extent(&frame, (x0, y0, x1, y1), 128);
            let figure = (baseline - top) as f64;
            assert!(
                (figure - text_h).abs() <= 1.5,
                "{w}x{h}: figure height {figure} vs {text_h}"
            );
        }
    }

    #[test]
    fn box_is_black_where_there_is_no_glyph() {
        let o = overlay(320, 180);
        let mut frame = RgbFrame::new(320, 180);
        frame.fill_rect(0, 0, 320, 180, [200, 30, 90]);
        o.draw(&mut frame, tc(12, 34, 56, 7));
        let (x0, y0, x1, y1) = o.box_rect();
        let pad = o.pad as usize;
        let mut lit = 0;
        for y in y0..y1 {
            for x in x0..x1 {
                let [r, g, b] = frame.pixel(x, y);
                // Nothing of the background shows through: white over black is grey.
                assert!(r == g && g == b, "({x},{y}) is {r},{g},{b}");
                let in_padding = x < x0 + pad || x >= x1 - pad || y < y0 + pad || y >= y1 - pad;
                if in_padding {
                    assert_eq!(r, 0, "padding at ({x},{y}) is not black");
                }
                lit += usize::from(r > 0);
            }
        }
        let area = (x1 - x0) * (y1 - y0);
        // Glyph strokes cover a real but minor part of the box.
        assert!(
            lit > area / 20 && lit < area / 2,
            "{lit} lit pixels of {area}"
        );
        // Fully covered glyph pixels are pure white.
        assert!((y0..y1).any(|y| (x0..x1).any(|x| frame.pixel(x, y) == [255; 3])));
    }

    #[test]
    fn pixels_outside_the_box_are_untouched() {
        for (w, h) in [(160, 90), (320, 180), (1280, 720), (1920, 1080)] {
            let o = overlay(w, h);
            let before = checkerboard(w, h, w / 16);
            let mut after = before.clone();
            o.draw(&mut after, tc(23, 59, 59, 29));
            let changed = diff(&before, &after);
            assert!(!changed.is_empty(), "{w}x{h}: nothing drawn");
            let rect = o.box_rect();
            assert!(
                changed.iter().all(|&p| inside(rect, p)),
                "{w}x{h}: drew outside {rect:?}"
            );
        }
    }

    #[test]
    fn different_timecodes_differ_only_inside_the_box() {
        let o = overlay(320, 180);
        let render = |t: Timecode| {
            let mut frame = checkerboard(320, 180, 20);
            o.draw(&mut frame, t);
            frame
        };
        let a = render(tc(12, 34, 56, 7));
        let b = render(tc(0, 0, 0, 0));
        let changed = diff(&a, &b);
        assert!(changed.len() > 100, "only {} pixels differ", changed.len());
        assert!(changed.iter().all(|&p| inside(o.box_rect(), p)));

        // One frame later only the last character's cell changes.
        let layout = o.layout(STANDARD_LEN);
        let last = layout.text_x + 10 * o.cell;
        let cell = ((last + o.ink_left) as usize, (last + o.ink_right) as usize);
        let changed = diff(&render(tc(0, 0, 0, 0)), &render(tc(0, 0, 0, 1)));
        assert!(!changed.is_empty());
        for &(x, y) in &changed {
            assert!(
                x >= cell.0 && x < cell.1,
                "({x},{y}) changed outside the last cell {cell:?}"
            );
        }

        // All ten digits are told apart in that cell.
        let cells: Vec<Vec<[u8; 3]>> = (0..10)
            .map(|d| {
                let f = render(tc(0, 0, 0, d));
                let (_, y0, _, y1) = o.box_rect();
                (y0..y1)
                    .flat_map(|y| (cell.0..cell.1).map(move |x| (x, y)))
                    .map(|(x, y)| f.pixel(x, y))
                    .collect()
            })
            .collect();
        for i in 0..10 {
            for j in i + 1..10 {
                let differing = cells[i]
                    .iter()
                    .zip(&cells[j])
                    .filter(|(p, q)| p != q)
                    .count();
                assert!(
                    differing > 20,
                    "digits {i} and {j} differ in only {differing} pixels"
                );
            }
        }
    }

    #[test]
    fn every_size_draws_without_panicking_and_clips() {
        let sizes = [
            (0, 0),
            (7, 0),
            (0, 7),
            (1, 1),
            (2, 2),
            (16, 9),
            (10, 400),
            (160, 90),
            (161, 91),
            (640, 360),
            (1919, 1079),
            (3840, 2160),
        ];
        for (w, h) in sizes {
            let o = overlay(w, h);
            let (x0, y0, x1, y1) = o.box_rect();
            assert!(
                x0 <= x1 && x1 <= w && y0 <= y1 && y1 <= h,
                "{w}x{h}: {:?}",
                o.box_rect()
            );
            let before = checkerboard(w, h, 4);
            for t in [tc(0, 0, 0, 0), tc(99, 59, 59, 29), tc(1234, 5, 6, 119)] {
                let mut frame = before.clone();
                o.draw(&mut frame, t);
                if t.hours < 100 && t.frames < 100 {
                    assert!(
                        diff(&before, &frame)
                            .iter()
                            .all(|&p| inside(o.box_rect(), p)),
                        "{w}x{h} {t}"
                    );
                }
            }
        }
    }

    #[test]
    fn longer_timecodes_widen_the_box_symmetrically() {
        let o = overlay(1280, 720);
        let standard = o.layout(STANDARD_LEN);
        let long = o.layout("100:00:00:119".len());
        assert_eq!(long.x1 - long.x0, standard.x1 - standard.x0 + 2 * o.cell);
        assert!((long.x0 - (1280 - long.x1)).abs() <= 1);
        assert_eq!((long.y0, long.y1), (standard.y0, standard.y1));
        let mut frame = checkerboard(1280, 720, 40);
        o.draw(&mut frame, tc(100, 0, 0, 119));
        let (x0, y0, x1, y1) = o.clip(long);
        let (_, _, left, right) = ink_extent(&frame, (x0, y0, x1, y1), 128);
        assert!(left > x0 && right < x1);
    }

    #[test]
    fn the_cell_is_the_same_for_every_character() {
        let o = overlay(1280, 720);
        // DejaVu Sans Mono: every glyph fits its cell, so neighbours never overlap.
        for (c, g) in CHARSET.iter().zip(&o.glyphs) {
            assert!(
                g.left >= 0 && g.left + g.width as i64 <= o.cell,
                "{c:?} leaves its cell"
            );
            assert_eq!(g.coverage.len(), g.width * g.height);
        }
        assert!(o.cell > 40 && o.cell < 60, "cell {}", o.cell);
    }

    /// The largest difference per plane (Y, U, V) between two I420 frames.
    fn max_diff(a: &YuvFrame, b: &YuvFrame) -> [u8; 3] {
        let d = |p: &[u8], q: &[u8]| p.iter().zip(q).map(|(x, y)| x.abs_diff(*y)).max();
        [
            d(&a.y, &b.y).unwrap_or(0),
            d(&a.u, &b.u).unwrap_or(0),
            d(&a.v, &b.v).unwrap_or(0),
        ]
    }

    /// Draws `t` both ways on `background`: RGB then converted, and into the converted
    /// background directly.
    fn both_ways(o: &TimecodeOverlay, background: &RgbFrame, t: Timecode) -> (YuvFrame, YuvFrame) {
        let (w, h) = (background.width, background.height);
        let mut rgb = background.clone();
        o.draw(&mut rgb, t);
        let mut want = YuvFrame::new(w, h);
        crate::yuv::rgb_to_i420(&rgb, &mut want);
        let mut got = YuvFrame::new(w, h);
        crate::yuv::rgb_to_i420(background, &mut got);
        o.draw_i420(&mut got, t);
        (want, got)
    }

    /// On a grey background (the checkerboard) the I420 overlay is exactly the RGB overlay
    /// converted, at every size parity, box edges on odd columns and rows included, and with
    /// the wider text of long timecodes.
    #[test]
    fn i420_overlay_is_the_converted_rgb_overlay() {
        let sizes = [
            (320, 180),
            (1280, 720),
            (1920, 1080),
            (161, 91),
            (333, 187),
            (1, 1),
            (7, 0),
            (16, 9),
        ];
        for (w, h) in sizes {
            let o = overlay(w, h);
            let background = checkerboard(w, h, 5);
            for t in [tc(0, 0, 0, 0), tc(12, 34, 56, 7), tc(100, 0, 0, 119)] {
                let (want, got) = both_ways(&o, &background, t);
                assert_eq!(max_diff(&want, &got), [0; 3], "{w}x{h} {t}");
            }
        }
    }

    /// On a coloured background the luma is still exact; chroma blocks cut by the box edge are
    /// within one code value: both are within rounding (under 0.53, see `yuv`) of the real
    /// mean, and scaling the old deviation by the outside share adds at most 0.4 + 0.5.
    #[test]
    fn i420_overlay_on_colour_is_within_one_of_the_converted_rgb_overlay() {
        for (w, h) in [(320, 180), (161, 91), (333, 187)] {
            let o = overlay(w, h);
            for colour in [[200, 30, 90], [0, 255, 255], [10, 10, 240], [255, 255, 0]] {
                let mut background = RgbFrame::new(w, h);
                background.fill_rect(0, 0, w, h, colour);
                let (want, got) = both_ways(&o, &background, tc(1, 2, 3, 4));
                let [dy, du, dv] = max_diff(&want, &got);
                assert_eq!(dy, 0, "{w}x{h} {colour:?}: luma");
                assert!(du <= 1 && dv <= 1, "{w}x{h} {colour:?}: chroma {du} {dv}");
            }
        }
    }

    #[test]
    fn grey_levels_and_their_luma_round_trip() {
        let o = overlay(320, 180);
        assert_eq!((o.luma_of_grey[0], o.luma_of_grey[255]), (16, 235));
        for v in 0..=255u8 {
            let l = o.luma_of_grey[usize::from(v)];
            let back = o.grey_of_luma[usize::from(l)];
            assert!(
                back <= v && o.luma_of_grey[usize::from(back)] == l,
                "grey {v}"
            );
            // At most one grey level lost (220 luma values for 256 greys).
            assert!(v - back <= 1, "grey {v} comes back as {back}");
        }
    }

    #[test]
    #[should_panic(expected = "built for 320x180 drawn on a 322x180 frame")]
    fn drawing_i420_on_another_size_panics() {
        overlay(320, 180).draw_i420(&mut YuvFrame::new(322, 180), tc(0, 0, 0, 0));
    }

    #[test]
    fn bad_fonts_are_errors() {
        assert!(matches!(
            TimecodeOverlay::new(b"not a font", 320, 180),
            Err(OverlayError::Font(_))
        ));
        assert!(TimecodeOverlay::new(&[], 320, 180).is_err());
    }

    #[test]
    #[should_panic(expected = "built for 320x180 drawn on a 640x360 frame")]
    fn drawing_on_another_size_panics() {
        overlay(320, 180).draw(&mut RgbFrame::new(640, 360), tc(0, 0, 0, 0));
    }

    /// `cargo test --release --lib -- --ignored overlay::tests::timing` (results on stderr).
    #[test]
    #[ignore = "timing, run by hand with --release"]
    fn timing() {
        for (w, h) in [(1280, 720), (1920, 1080), (3840, 2160)] {
            let start = std::time::Instant::now();
            let o = overlay(w, h);
            let built = start.elapsed();
            let mut frame = checkerboard(w, h, 40);
            let runs = 1000u32;
            let start = std::time::Instant::now();
            for n in 0..runs {
                o.draw(
                    std::hint::black_box(&mut frame),
                    Timecode::from_frame(u64::from(n), FrameRate { num: 30, den: 1 }),
                );
            }
            let us = start.elapsed().as_secs_f64() * 1e6 / f64::from(runs);
            // The crate forbids print macros; a by-hand timing test writes to stderr directly.
            let line = format!(
                "overlay {w}x{h}: new {:.1} ms, draw {us:.1} us/frame\n",
                built.as_secs_f64() * 1e3
            );
            std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes())
                .expect("stderr is writable");
        }
    }
}
