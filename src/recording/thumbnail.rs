//! A marker's thumbnail: its own frame, decoded from the retained segment that holds it,
//! scaled down and encoded as JPEG. Off the real-time path: the caller runs it on a blocking
//! thread and caches the bytes.
//!
//! ```text
//! segment (TS) --mpeg2ts--> access units --openh264, from the IDR before the frame--> the
//! picture whose PTS is the marker's --BT.601 limited range (openh264's own conversion)-->
//! RGB --box filter, by hand--> width x even height --jpeg-encoder--> JPEG
//! ```

use openh264::decoder::{DecodedYUV, Decoder};
use openh264::formats::YUVSource;

use crate::recording::clip::{read_access_units, ClipError, Unwrap, PTS_MODULUS};

/// `--thumbnail-width` unless given.
pub const DEFAULT_WIDTH: u32 = 320;
/// JPEG quality (of 100): small files, no visible blocks at thumbnail size.
pub const QUALITY: u8 = 80;
/// Narrowest and widest thumbnail accepted.
pub const MIN_WIDTH: u32 = 16;
pub const MAX_WIDTH: u32 = 1920;

/// Why no thumbnail could be made. Never a wrong picture: a frame that is not there is an
/// error, not the nearest one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ThumbnailError {
    #[error(transparent)]
    Demux(#[from] ClipError),
    #[error("no frame with PTS {pts} in the segment")]
    NoSuchFrame { pts: u64 },
    #[error("no IDR before the frame with PTS {pts} in the segment")]
    NoKeyframe { pts: u64 },
    #[error("decoding: {0}")]
    Decode(String),
    #[error("thumbnail width {width} is outside {MIN_WIDTH}..={MAX_WIDTH}")]
    Width { width: u32 },
    #[error("encoding the JPEG: {0}")]
    Jpeg(String),
}

/// The JPEG of the frame with 33-bit PTS `pts` in the TS segment `ts`, `width` pixels wide
/// (the height keeps the aspect ratio, rounded to an even number).
pub fn thumbnail(ts: &[u8], pts: u64, width: u32) -> Result<Vec<u8>, ThumbnailError> {
    if !(MIN_WIDTH..=MAX_WIDTH).contains(&width) {
        return Err(ThumbnailError::Width { width });
    }
    let (rgb, w, h) = frame_rgb(ts, pts)?;
    let out_h = scaled_height(w, h, width as usize);
    let small = box_scale(&rgb, w, h, width as usize, out_h);
    let mut jpeg = Vec::with_capacity(small.len() / 8);
    jpeg_encoder::Encoder::new(&mut jpeg, QUALITY)
        .encode(
            &small,
            width as u16,
            out_h as u16,
            jpeg_encoder::ColorType::Rgb,
        )
        .map_err(|e| ThumbnailError::Jpeg(e.to_string()))?;
    Ok(jpeg)
}

/// Height for `out_w` keeping the aspect of `w` x `h`: rounded to nearest, then to an even
/// number (4:2:0 JPEGs and most players want even sizes), at least 2.
pub fn scaled_height(w: usize, h: usize, out_w: usize) -> usize {
    let exact = (h * out_w + w / 2) / w.max(1);
    (exact.div_ceil(2) * 2).max(2)
}

/// The picture with 33-bit PTS `pts` as packed RGB24, with its width and height.
pub fn frame_rgb(ts: &[u8], pts: u64) -> Result<(Vec<u8>, usize, usize), ThumbnailError> {
    let pts = pts % PTS_MODULUS;
    let aus = read_access_units(ts, 0, &mut Unwrap::default())?;
    let raw = |p: i64| (p as u64) % PTS_MODULUS;
    let target = aus
        .iter()
        .position(|a| raw(a.pts) == pts)
        .ok_or(ThumbnailError::NoSuchFrame { pts })?;
    // Decoding starts at the last IDR at or before the frame in decode order.
    let start = aus[..=target]
        .iter()
        .rposition(|a| a.keyframe)
        .ok_or(ThumbnailError::NoKeyframe { pts })?;
    let target_pts = aus[target].pts;
    let mut decoder = Decoder::new().map_err(|e| ThumbnailError::Decode(e.to_string()))?;
    // Pictures leave the decoder in presentation order: each takes the earliest PTS fed.
    let mut pending: Vec<i64> = Vec::new();
    let take = |pending: &mut Vec<i64>| {
        let i = (0..pending.len()).min_by_key(|&i| pending[i])?;
        Some(pending.swap_remove(i))
    };
    let to_rgb = |pic: &DecodedYUV<'_>| {
        let (w, h) = pic.dimensions();
        let mut rgb = vec![0; w * h * 3];
        pic.write_rgb8(&mut rgb);
        (rgb, w, h)
    };
    for au in &aus[start..] {
        pending.push(au.pts);
        let pic = decoder
            .decode(&au.data)
            .map_err(|e| ThumbnailError::Decode(format!("PTS {}: {e}", raw(au.pts))))?;
        if let Some(pic) = pic {
            if take(&mut pending) == Some(target_pts) {
                return Ok(to_rgb(&pic));
            }
        }
    }
    for pic in decoder
        .flush_remaining()
        .map_err(|e| ThumbnailError::Decode(e.to_string()))?
    {
        if take(&mut pending) == Some(target_pts) {
            return Ok(to_rgb(&pic));
        }
    }
    Err(ThumbnailError::Decode(format!(
        "the frame with PTS {pts} was fed but never came out"
    )))
}

/// Scales packed RGB24 `w` x `h` to `ow` x `oh` with a box filter: each output pixel is the
/// area-weighted mean of the source pixels under it (exact for downscaling; upscaling
/// degenerates to nearest-pixel, which a thumbnail never needs). Fixed point: weights in
/// 1/256 of a source pixel along each axis.
pub fn box_scale(rgb: &[u8], w: usize, h: usize, ow: usize, oh: usize) -> Vec<u8> {
    assert_eq!(rgb.len(), w * h * 3, "RGB24 of {w}x{h}");
    assert!(ow > 0 && oh > 0 && w > 0 && h > 0);
    // For each output column: the source columns it covers, with weights summing to 256*w/ow.
    let spans = |src: usize, dst: usize| -> Vec<Vec<(usize, u32)>> {
        (0..dst)
            .map(|o| {
                // [a, b) in source pixels, times dst to stay in integers.
                let (a, b) = (o * src, (o + 1) * src);
                let mut taps = Vec::new();
                let mut s = a / dst;
                while s * dst < b && s < src {
                    let lo = (s * dst).max(a);
                    let hi = ((s + 1) * dst).min(b);
                    let wgt = ((hi - lo) * 256 / dst) as u32;
                    if wgt > 0 {
                        taps.push((s, wgt));
                    }
                    s += 1;
                }
                if taps.is_empty() {
                    taps.push(((a / dst).min(src - 1), 256));
                }
                taps
            })
            .collect()
    };
    let xs = spans(w, ow);
    let ys = spans(h, oh);
    let mut out = vec![0u8; ow * oh * 3];
    let mut row = vec![0u32; w * 3];
    for (oy, ytaps) in ys.iter().enumerate() {
        row.fill(0);
        let mut ysum = 0u32;
        for &(sy, wy) in ytaps {
            ysum += wy;
            let src = &rgb[sy * w * 3..(sy + 1) * w * 3];
            for (acc, &v) in row.iter_mut().zip(src) {
                *acc += u32::from(v) * wy;
            }
        }
        for (ox, xtaps) in xs.iter().enumerate() {
            let xsum: u32 = xtaps.iter().map(|t| t.1).sum();
            let total = u64::from(xsum) * u64::from(ysum);
            for c in 0..3 {
                let acc: u64 = xtaps
                    .iter()
                    .map(|&(sx, wx)| u64::from(row[sx * 3 + c]) * u64::from(wx))
                    .sum();
                out[(oy * ow + ox) * 3 + c] = ((acc + total / 2) / total) as u8;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::testutil::make;
    use crate::time::FrameRate;

    /// Mean RGB of the thumbnail's `[x0, x1) x [y0, y1)`, decoded by an independent decoder.
    fn mean(jpeg: &[u8], (x0, x1): (usize, usize), (y0, y1): (usize, usize)) -> [f64; 3] {
        let mut d = jpeg_decoder::Decoder::new(jpeg);
        let px = d.decode().unwrap();
        let info = d.info().unwrap();
        assert_eq!(info.pixel_format, jpeg_decoder::PixelFormat::RGB24);
        let w = info.width as usize;
        let mut sum = [0f64; 3];
        for y in y0..y1 {
            for x in x0..x1 {
                for c in 0..3 {
                    sum[c] += f64::from(px[(y * w + x) * 3 + c]);
                }
            }
        }
        let n = ((x1 - x0) * (y1 - y0)) as f64;
        sum.map(|s| s / n)
    }

    fn is_mint([r, g, b]: [f64; 3]) -> bool {
        r < 80.0 && g > 180.0 && b > 180.0
    }

    /// The marker's frame shows the mint block, the frame before does not: at 30 and 29.97
    /// fps, at the source's width and at half of it, on frames in the middle of a GOP (decoded
    /// from the segment's IDR).
    #[test]
    fn the_event_frame_is_mint_and_the_one_before_is_not() {
        for rate in [
            FrameRate::new(30, 1).unwrap(),
            FrameRate::new(30_000, 1001).unwrap(),
        ] {
            let made = make(320, 180, rate, 90, 30);
            // First frames of events that are not the first frame of a segment.
            let starts: Vec<usize> = (1..made.frames.len())
                .filter(|&n| made.frames[n].1 && !made.frames[n - 1].1 && n % 30 != 0)
                .collect();
            assert!(starts.len() >= 2, "{rate:?}: events at {starts:?}");
            for &n in &starts {
                let seg = &made.segments[n / 30];
                for (width, block) in [(320u32, 20usize), (160, 10)] {
                    let inner = (block / 4, block * 3 / 4);
                    let jpeg = thumbnail(seg, made.frames[n].0, width).unwrap();
                    let m = mean(&jpeg, inner, inner);
                    assert!(is_mint(m), "{rate:?} frame {n} at {width}: {m:?}");
                    let before = thumbnail(seg, made.frames[n - 1].0, width).unwrap();
                    let m = mean(&before, inner, inner);
                    assert!(!is_mint(m), "{rate:?} frame {} at {width}: {m:?}", n - 1);
                    // The rest of the picture is grey levels (the board), mint only there.
                    let far = mean(&jpeg, (width as usize / 2, width as usize / 2 + 8), (0, 8));
                    assert!(!is_mint(far), "{far:?}");
                }
            }
        }
    }

    #[test]
    fn size_and_errors() {
        let made = make(320, 180, FrameRate::new(30, 1).unwrap(), 30, 30);
        let jpeg = thumbnail(&made.segments[0], made.frames[5].0, 100).unwrap();
        let mut d = jpeg_decoder::Decoder::new(&jpeg[..]);
        d.decode().unwrap();
        let info = d.info().unwrap();
        assert_eq!((info.width, info.height), (100, 56), "56.25 rounds to 56");
        assert!(matches!(
            thumbnail(&made.segments[0], 12_345, 320),
            Err(ThumbnailError::NoSuchFrame { pts: 12_345 })
        ));
        assert!(matches!(
            thumbnail(&made.segments[0], made.frames[0].0, 8),
            Err(ThumbnailError::Width { width: 8 })
        ));
        assert_eq!(scaled_height(1920, 1080, 320), 180);
        assert_eq!(
            scaled_height(1280, 720, 250),
            142,
            "140.6 rounds to 141, then up to even"
        );
        assert_eq!(scaled_height(100, 1, 16), 2);
    }

    /// The box filter averages exactly: a 4x2 picture to 2x1 is the mean of each 2x2 block,
    /// and a 3-to-2 scale weighs the shared middle pixel half to each side.
    #[test]
    fn box_filter_weights() {
        let px = |v: u8| [v, v, v];
        // Rows 0 100 200 40 / 20 60 0 0.
        let rgb: Vec<u8> = [0u8, 100, 200, 40, 20, 60, 0, 0]
            .iter()
            .flat_map(|&v| px(v))
            .collect();
        let out = box_scale(&rgb, 4, 2, 2, 1);
        assert_eq!(out, [45, 45, 45, 60, 60, 60]); // (0+100+20+60)/4, (200+40+0+0)/4
        let rgb: Vec<u8> = [0u8, 90, 180].iter().flat_map(|&v| px(v)).collect();
        // Output 0 covers source [0, 1.5): (0 * 1 + 90 * 0.5) / 1.5 = 30.
        assert_eq!(box_scale(&rgb, 3, 1, 2, 1), [30, 30, 30, 150, 150, 150]);
        assert_eq!(box_scale(&rgb, 3, 1, 3, 1), rgb, "same size: identity");
    }
}
