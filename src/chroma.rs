//! Chroma subsampling to 4:2:0: the planes of a 4:2:2 or 4:4:4 picture (a Y4M input's `C422`,
//! `C444`) brought down to I420's half-width, half-height chroma. Pure, allocation-free.
//!
//! Each 4:2:0 sample is the rounded mean (half up) of the source samples it covers: two vertical
//! neighbours from 4:2:2 (whose chroma already has half the width), a 2x2 block from 4:4:4. That
//! is the same box filter as our RGB conversion's chroma ([`crate::yuv`]), so a 4:4:4 picture and
//! the same picture given as RGB end up with the same chroma. Siting: a 4:2:2 plane keeps its
//! horizontal siting (co-sited with the left luma sample, as in MPEG-2) and becomes vertically
//! centred between the two rows, which is where 4:2:0 puts it; from 4:4:4 the sample sits at the
//! centre of its 2x2 block. Odd sizes keep their last row and column (the mean of the samples
//! that exist), like [`crate::frame::YuvFrame`]'s rounded-up chroma size.
//!
//! ```text
//! 4:2:2 (cw x h)        4:2:0 (cw x ceil(h/2))     4:4:4 (w x h)        4:2:0 (ceil(w/2) x ceil(h/2))
//!  a  .                  (a+b+1)>>1                 a b                  (a+b+c+d+2)>>2
//!  b  .                                             c d
//! ```

/// The 4:2:0 plane of a 4:2:2 chroma plane: `src` is `width x height` samples (`width` is the
/// chroma width, half the luma width rounded up), `dst` is `width x ceil(height / 2)`; each
/// output sample is the rounded mean of the two samples above each other (one on an odd last row).
///
/// # Panics
/// When a plane's length does not match the sizes.
pub(crate) fn chroma_422_to_420(src: &[u8], width: usize, height: usize, dst: &mut [u8]) {
    assert_eq!(
        src.len(),
        width * height,
        "4:2:2 chroma plane of {width}x{height}"
    );
    assert_eq!(
        dst.len(),
        width * height.div_ceil(2),
        "4:2:0 plane for a 4:2:2 chroma plane of {width}x{height}"
    );
    if width == 0 {
        return;
    }
    let mut rows = src.chunks_exact(width);
    for out in dst.chunks_exact_mut(width) {
        let top = rows.next().expect("a source row per output row");
        match rows.next() {
            Some(bottom) => {
                for ((o, &a), &b) in out.iter_mut().zip(top).zip(bottom) {
                    *o = ((u16::from(a) + u16::from(b) + 1) >> 1) as u8;
                }
            }
            None => out.copy_from_slice(top),
        }
    }
}

/// The 4:2:0 plane of a 4:4:4 chroma plane: `src` is `width x height` samples, `dst` is
/// `ceil(width / 2) x ceil(height / 2)`; each output sample is the rounded mean of its 2x2 block
/// (of the samples that exist on an odd last row or column).
///
/// # Panics
/// When a plane's length does not match the sizes.
pub(crate) fn chroma_444_to_420(src: &[u8], width: usize, height: usize, dst: &mut [u8]) {
    assert_eq!(
        src.len(),
        width * height,
        "4:4:4 chroma plane of {width}x{height}"
    );
    let cw = width.div_ceil(2);
    assert_eq!(
        dst.len(),
        cw * height.div_ceil(2),
        "4:2:0 plane for a 4:4:4 chroma plane of {width}x{height}"
    );
    if width == 0 {
        return;
    }
    let mut rows = src.chunks_exact(width);
    for out in dst.chunks_exact_mut(cw) {
        let top = rows.next().expect("a source row per output row");
        let bottom = rows.next();
        // Whole 2x2 blocks first (the loop the compiler vectorises), then an odd last column.
        let pairs = width / 2;
        match bottom {
            Some(bottom) => {
                for ((o, t), b) in out[..pairs]
                    .iter_mut()
                    .zip(top.chunks_exact(2))
                    .zip(bottom.chunks_exact(2))
                {
                    let sum = u16::from(t[0]) + u16::from(t[1]) + u16::from(b[0]) + u16::from(b[1]);
                    *o = ((sum + 2) >> 2) as u8;
                }
                if width % 2 == 1 {
                    let (a, b) = (top[width - 1], bottom[width - 1]);
                    out[pairs] = ((u16::from(a) + u16::from(b) + 1) >> 1) as u8;
                }
            }
            None => {
                for (o, t) in out[..pairs].iter_mut().zip(top.chunks_exact(2)) {
                    *o = ((u16::from(t[0]) + u16::from(t[1]) + 1) >> 1) as u8;
                }
                if width % 2 == 1 {
                    out[pairs] = top[width - 1];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// The definition, written the slow way: the rounded-half-up mean of the samples of the
    /// `bw x bh` block at output position (x, y) that lie inside the plane.
    fn reference(src: &[u8], width: usize, height: usize, bw: usize, bh: usize) -> Vec<u8> {
        let (ow, oh) = (width.div_ceil(bw), height.div_ceil(bh));
        let mut out = Vec::with_capacity(ow * oh);
        for y in 0..oh {
            for x in 0..ow {
                let mut sum = 0u32;
                let mut count = 0u32;
                for sy in y * bh..((y + 1) * bh).min(height) {
                    for sx in x * bw..((x + 1) * bw).min(width) {
                        sum += u32::from(src[sy * width + sx]);
                        count += 1;
                    }
                }
                // Half up: floor(sum / count + 1/2).
                out.push(((2 * sum + count) / (2 * count)) as u8);
            }
        }
        out
    }

    fn from_422(src: &[u8], width: usize, height: usize) -> Vec<u8> {
        let mut dst = vec![0; width * height.div_ceil(2)];
        chroma_422_to_420(src, width, height, &mut dst);
        dst
    }

    fn from_444(src: &[u8], width: usize, height: usize) -> Vec<u8> {
        let mut dst = vec![0; width.div_ceil(2) * height.div_ceil(2)];
        chroma_444_to_420(src, width, height, &mut dst);
        dst
    }

    #[test]
    fn from_422_averages_vertical_pairs_exactly() {
        // 3 x 4 plane: rows (10, 20, 255), (11, 21, 254), (0, 1, 100), (0, 2, 101).
        let src = [10, 20, 255, 11, 21, 254, 0, 1, 100, 0, 2, 101];
        // (10+11+1)>>1 = 11, (20+21+1)>>1 = 21, (255+254+1)>>1 = 255, (0+0+1)>>1 = 0,
        // (1+2+1)>>1 = 2 (half up), (100+101+1)>>1 = 101.
        assert_eq!(from_422(&src, 3, 4), vec![11, 21, 255, 0, 2, 101]);
    }

    #[test]
    fn from_422_keeps_an_odd_last_row() {
        let src = [1, 2, 3, 4, 200, 100];
        assert_eq!(from_422(&src, 2, 3), vec![2, 3, 200, 100]);
    }

    #[test]
    fn from_444_averages_blocks_exactly() {
        // 4 x 2: blocks (0, 1, 2, 3) -> (6+2)>>2 = 2; (255, 255, 255, 254) -> (1019+2)>>2 = 255.
        let src = [0, 1, 255, 255, 2, 3, 255, 254];
        assert_eq!(from_444(&src, 4, 2), vec![2, 255]);
        // Half up on a block mean of x.5: (1+2+1+2+2)>>2 = 2.
        assert_eq!(from_444(&[1, 2, 1, 2], 2, 2), vec![2]);
        // Just below: (1+1+1+2+2)>>2 = 1 (mean 1.25).
        assert_eq!(from_444(&[1, 1, 1, 2], 2, 2), vec![1]);
    }

    #[test]
    fn from_444_averages_the_samples_that_exist_on_odd_edges() {
        // 3 x 3: the last column pairs vertically, the last row pairs horizontally, the corner
        // is itself.
        let src = [0, 4, 9, 8, 12, 10, 50, 60, 77];
        // Block (0, 4, 8, 12) -> 6; column (9, 10) -> 10 (9.5 half up); row (50, 60) -> 55;
        // corner 77.
        assert_eq!(from_444(&src, 3, 3), vec![6, 10, 55, 77]);
    }

    #[test]
    fn flat_planes_stay_flat() {
        for v in [0u8, 16, 128, 240, 255] {
            assert!(from_422(&[v; 6 * 4], 6, 4).iter().all(|&s| s == v));
            assert!(from_444(&[v; 6 * 4], 6, 4).iter().all(|&s| s == v));
        }
    }

    #[test]
    fn empty_planes_are_a_no_op() {
        chroma_422_to_420(&[], 0, 5, &mut []);
        chroma_444_to_420(&[], 0, 5, &mut []);
        chroma_444_to_420(&[], 4, 0, &mut []);
    }

    /// Random planes of every size parity against the definition, and the mean's bounds: an
    /// output sample lies between the smallest and the largest sample of its block.
    #[test]
    fn random_planes_match_the_definition() {
        let mut rng = StdRng::seed_from_u64(0x4_2_0);
        for case in 0..400 {
            let width = rng.random_range(1..=70);
            let height = rng.random_range(1..=40);
            // Some planes of extremes only, to stress the rounding and the sums.
            let src: Vec<u8> = (0..width * height)
                .map(|_| {
                    if case % 4 == 0 {
                        [0, 255][rng.random_range(0..2)]
                    } else {
                        rng.random()
                    }
                })
                .collect();
            assert_eq!(
                from_422(&src, width, height),
                reference(&src, width, height, 1, 2),
                "4:2:2 {width}x{height}"
            );
            let got = from_444(&src, width, height);
            assert_eq!(
                got,
                reference(&src, width, height, 2, 2),
                "4:4:4 {width}x{height}"
            );
            let ow = width.div_ceil(2);
            for (i, &g) in got.iter().enumerate() {
                let (x, y) = (i % ow, i / ow);
                let block: Vec<u8> = (2 * y..(2 * y + 2).min(height))
                    .flat_map(|sy| (2 * x..(2 * x + 2).min(width)).map(move |sx| (sx, sy)))
                    .map(|(sx, sy)| src[sy * width + sx])
                    .collect();
                let (lo, hi) = (block.iter().min().unwrap(), block.iter().max().unwrap());
                assert!((*lo..=*hi).contains(&g), "{width}x{height} at ({x}, {y})");
            }
        }
    }

    /// 4:2:2 made from a 4:4:4 plane by averaging horizontal pairs, then brought to 4:2:0, is
    /// within one level of the 4:4:4 plane brought to 4:2:0 directly (two roundings against one).
    #[test]
    fn the_two_paths_agree_within_rounding() {
        let mut rng = StdRng::seed_from_u64(2);
        let (w, h) = (64, 36);
        let src: Vec<u8> = (0..w * h).map(|_| rng.random()).collect();
        let half: Vec<u8> = src
            .chunks_exact(2)
            .map(|p| ((u16::from(p[0]) + u16::from(p[1]) + 1) >> 1) as u8)
            .collect();
        let direct = from_444(&src, w, h);
        let via_422 = from_422(&half, w / 2, h);
        for (a, b) in direct.iter().zip(&via_422) {
            assert!(a.abs_diff(*b) <= 1, "{a} vs {b}");
        }
    }

    #[test]
    #[should_panic(expected = "4:2:2 chroma plane of 4x4")]
    fn wrong_plane_sizes_panic() {
        chroma_422_to_420(&[0; 15], 4, 4, &mut [0; 8]);
    }
}
