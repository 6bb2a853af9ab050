//! Is the top-left block of a decoded picture mint? The checkerboard ([`hls::source`]) paints
//! its event block as RGB(0,255,255) over the block at (0,0), whose edge is `block_size * width /
//! 320` pixels (at least 1). Everything else it ever shows there is a grey: black, white, a mix
//! of both where a block edge rolls through, with Gaussian noise on top.
//!
//! In BT.601 limited range (the converter's, [`hls::yuv`]) mint is Y 170, Cb 166, Cr 16, and
//! every grey has Cb = Cr = 128 whatever its luma. So the decision uses chroma only: the mean Cb
//! and mean Cr over the block's *interior* (the middle half of it in each direction, so H.264's
//! chroma bleeding across the block edge and the 2x2 chroma subsampling never reach the samples)
//! must both lie on mint's side of the midpoint between mint and grey:
//!
//! ```text
//!   Cr: mint 16 ........ 72 (threshold) ........ 128 grey     margin 56 levels either side
//!   Cb: grey 128 ....... 147 (threshold) ....... 166 mint     margin 19 levels either side
//! ```
//!
//! Means over the interior (16 chroma samples at 320x180, 400 at 720p) shrink noise: with
//! `--noise 8` one chroma sample moves by about 2 levels, the mean by well under one; clamping
//! at 0 and 255 moves mint's means towards grey by about 0.4 sigma per RGB channel, a few levels
//! at any sensible noise. An encoder that smears the block over a frame or two has to move Cr
//! more than half the way before the frame counts as mint, so one borderline frame cannot flip
//! the decision both ways.

/// Block edge at the reference width of 320 px, as the checkerboard scales it.
const REFERENCE_WIDTH: usize = 320;

/// Mean Cr at or below this is mint's side (mint 16, grey 128).
pub(crate) const CR_THRESHOLD: u32 = 72;
/// Mean Cb at or above this is mint's side (grey 128, mint 166).
pub(crate) const CB_THRESHOLD: u32 = 147;

/// One decoded I420 picture, borrowed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Planes<'a> {
    pub width: usize,
    pub height: usize,
    pub y: &'a [u8],
    pub u: &'a [u8],
    pub v: &'a [u8],
    pub y_stride: usize,
    pub uv_stride: usize,
}

/// What the probe measured on one picture.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reading {
    pub mean_y: f32,
    pub mean_cb: f32,
    pub mean_cr: f32,
    pub mint: bool,
}

/// Edge of the checkerboard's block for a picture `width` pixels wide.
pub(crate) fn block_edge(block_size: u32, width: usize) -> usize {
    ((block_size as usize * width) / REFERENCE_WIDTH).max(1)
}

/// The interior of `0..edge` clipped to `0..limit`: its middle half when that is at least two
/// samples wide, else all of it.
fn interior(edge: usize, limit: usize) -> (usize, usize) {
    let edge = edge.min(limit);
    let (a, b) = (edge / 4, edge - edge / 4);
    if b >= a + 2 {
        (a, b)
    } else {
        (0, edge)
    }
}

/// Reads the top-left block of `p` (see the module docs for the rule).
pub(crate) fn read_top_left(p: &Planes<'_>, block_size: u32) -> Reading {
    let edge = block_edge(block_size, p.width);
    let (x0, x1) = interior(edge, p.width);
    let (y0, y1) = interior(edge, p.height);
    // Chroma samples whose whole 2x2 luma footprint lies inside the luma interior (or the one
    // sample covering a tiny block).
    let (cw, ch) = (p.width.div_ceil(2), p.height.div_ceil(2));
    let c_range = |a: usize, b: usize, limit: usize| {
        let (ca, cb) = (a.div_ceil(2), b / 2);
        if cb > ca {
            (ca, cb.min(limit))
        } else {
            (a / 2, (a / 2 + 1).min(limit))
        }
    };
    let (cx0, cx1) = c_range(x0, x1, cw);
    let (cy0, cy1) = c_range(y0, y1, ch);
    let sum = |plane: &[u8], stride: usize, (xa, xb): (usize, usize), (ya, yb): (usize, usize)| {
        let mut s = 0u64;
        for row in ya..yb {
            s += plane[row * stride + xa..row * stride + xb]
                .iter()
                .map(|&v| u64::from(v))
                .sum::<u64>();
        }
        (s, ((xb - xa) * (yb - ya)) as u64)
    };
    let (sy, ny) = sum(p.y, p.y_stride, (x0, x1), (y0, y1));
    let (su, nu) = sum(p.u, p.uv_stride, (cx0, cx1), (cy0, cy1));
    let (sv, nv) = sum(p.v, p.uv_stride, (cx0, cx1), (cy0, cy1));
    // Integer comparisons for the decision (no float rounding at the threshold).
    let mint = sv <= u64::from(CR_THRESHOLD) * nv && su >= u64::from(CB_THRESHOLD) * nu;
    Reading {
        mean_y: sy as f32 / ny as f32,
        mean_cb: su as f32 / nu as f32,
        mean_cr: sv as f32 / nv as f32,
        mint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hls::frame::YuvFrame;
    use hls::source::{Checkerboard, CheckerboardConfig, Source, DEFAULT_BLOCK_SIZE};
    use hls::time::{Duration90k, FrameRate};

    fn planes(f: &YuvFrame) -> Planes<'_> {
        let (u, v) = f.chroma();
        Planes {
            width: f.width(),
            height: f.height(),
            y: f.luma(),
            u,
            v,
            y_stride: f.y_stride(),
            uv_stride: f.uv_stride(),
        }
    }

    /// On the source's own pictures (before any codec) the probe agrees with the source on
    /// every frame: sizes whose block edge is odd or tiny, the board rolling through the block,
    /// and noise up to sigma 32.
    #[test]
    fn agrees_with_the_checkerboard_on_every_frame() {
        for (w, h, sigma) in [
            (320, 180, 0.0),
            (320, 240, 8.0),
            (1280, 720, 4.0),
            (330, 186, 32.0),
            (48, 32, 0.0),
            (64, 48, 8.0),
        ] {
            let mut board = Checkerboard::new(CheckerboardConfig {
                width: w,
                height: h,
                rate: FrameRate::new(30, 1).unwrap(),
                block_size: DEFAULT_BLOCK_SIZE,
                roll: Duration90k::from_secs(3),
                noise_sigma: sigma,
                event_mean: Duration90k::from_secs(1),
                event_duration: Duration90k::from_millis(500),
                seed: Some(9),
            })
            .unwrap();
            let mut f = YuvFrame::new(w, h);
            let (mut mint, mut grey) = (0, 0);
            for n in 0..240 {
                let info = board.render_i420(n, &mut f).unwrap();
                let r = read_top_left(&planes(&f), DEFAULT_BLOCK_SIZE);
                assert_eq!(
                    r.mint,
                    info.event.is_some(),
                    "{w}x{h} noise {sigma} slot {n}: {r:?}"
                );
                if r.mint {
                    mint += 1;
                    assert!(r.mean_cr < 40.0 && r.mean_cb > 150.0, "{w}x{h}: {r:?}");
                } else {
                    grey += 1;
                    assert!((r.mean_cr - 128.0).abs() < 12.0, "{w}x{h}: {r:?}");
                }
            }
            assert!(mint > 10 && grey > 10, "{w}x{h}: {mint} mint, {grey} grey");
        }
    }

    #[test]
    fn block_edge_scales_like_the_source() {
        assert_eq!(block_edge(20, 320), 20);
        assert_eq!(block_edge(20, 1280), 80);
        assert_eq!(block_edge(20, 1920), 120);
        assert_eq!(block_edge(20, 330), 20);
        assert_eq!(block_edge(1, 16), 1);
        assert_eq!(interior(20, 180), (5, 15));
        assert_eq!(interior(3, 180), (0, 3));
        assert_eq!(interior(80, 40), (10, 30));
    }

    /// Halfway colours decide by the thresholds, exactly at them included.
    #[test]
    fn thresholds_are_inclusive_on_mints_side() {
        let (w, h) = (320, 180);
        let mut f = YuvFrame::new(w, h);
        let mut check = |cb: u8, cr: u8, want: bool| {
            let (u, v) = f.chroma_mut();
            u.fill(cb);
            v.fill(cr);
            assert_eq!(read_top_left(&planes(&f), 20).mint, want, "Cb {cb} Cr {cr}");
        };
        check(166, 16, true);
        check(147, 72, true);
        check(146, 72, false);
        check(147, 73, false);
        check(128, 128, false);
        check(128, 16, false);
        check(166, 128, false);
    }
}
