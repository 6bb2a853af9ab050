//! One segment's bytes to one reading per picture: MPEG-TS demuxed with `mpeg2ts`'s reader
//! (ISO/IEC 13818-1 §2.4.3.6, PES packets with their PTS), H.264 decoded with openh264, the
//! top-left block read by [`super::mint`]. And the two clocks a detector needs beside it: PTS
//! unwrapped past 2^33 ([`Unwrap`]) and PTS mapped to the wall clock of
//! `EXT-X-PROGRAM-DATE-TIME` ([`WallMap`]).

use mpeg2ts::pes::{PesPacketReader, ReadPesPacket};
use mpeg2ts::ts::TsPacketReader;
use openh264::decoder::Decoder;
use openh264::formats::YUVSource;

use super::mint::{read_top_left, Planes, Reading};
use hls::time::TICKS_PER_SEC;

/// PTS are 33-bit counters (ISO/IEC 13818-1 §2.4.3.7).
pub const PTS_MODULUS: u64 = 1 << 33;
const TICKS_PER_MS: i64 = (TICKS_PER_SEC / 1000) as i64;

/// One decoded picture: its PTS as the TS carries it (33 bits) and what the probe read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Picture {
    pub pts: u64,
    pub reading: Reading,
}

/// Demuxes and decodes segments; keeps one decoder across segments (each of ours opens with an
/// IDR and its SPS/PPS, so a new stream size after a restart is picked up there).
pub struct SegmentReader {
    decoder: Option<Decoder>,
    block_size: u32,
}

impl std::fmt::Debug for SegmentReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentReader")
            .field("block_size", &self.block_size)
            .finish_non_exhaustive()
    }
}

impl SegmentReader {
    pub fn new(block_size: u32) -> Self {
        SegmentReader {
            decoder: None,
            block_size,
        }
    }

    /// Every picture of the segment, in presentation order. An error (bytes that do not demux,
    /// a picture that does not decode) drops the decoder, so the next segment starts clean.
    pub fn read(&mut self, ts: &[u8]) -> Result<Vec<Picture>, String> {
        let result = self.read_inner(ts);
        if result.is_err() {
            self.decoder = None;
        }
        result
    }

    fn read_inner(&mut self, ts: &[u8]) -> Result<Vec<Picture>, String> {
        let decoder = match &mut self.decoder {
            Some(d) => d,
            None => self
                .decoder
                .insert(Decoder::new().map_err(|e| format!("starting the H.264 decoder: {e}"))?),
        };
        let block_size = self.block_size;
        let mut reader = PesPacketReader::new(TsPacketReader::new(ts));
        // PTS of access units fed but not yet seen as pictures; a decoder hands pictures out in
        // presentation order, so each picture takes the earliest one.
        let mut pending: Vec<u64> = Vec::new();
        let mut base = None;
        let mut pictures = Vec::new();
        let mut units = 0usize;
        let take = |pending: &mut Vec<u64>, base: u64| {
            let i = (0..pending.len())
                .min_by_key(|&i| (pending[i] + PTS_MODULUS - base) % PTS_MODULUS)
                .expect("a picture comes out only for an access unit fed in");
            pending.swap_remove(i)
        };
        loop {
            let pes = match reader.read_pes_packet() {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) => return Err(format!("demuxing PES packet {}: {e}", units + 1)),
            };
            if !pes.header.stream_id.is_video() {
                continue;
            }
            let Some(pts) = pes.header.pts.map(|t| t.as_u64()) else {
                return Err(format!("video PES packet {} has no PTS", units + 1));
            };
            units += 1;
            let base = *base.get_or_insert(pts);
            pending.push(pts);
            match decoder.decode(&pes.data) {
                Ok(Some(pic)) => {
                    let pts = take(&mut pending, base);
                    pictures.push(Picture {
                        pts,
                        reading: read_picture(&pic, block_size),
                    });
                }
                Ok(None) => {}
                Err(e) => return Err(format!("decoding access unit {units} (PTS {pts}): {e}")),
            }
        }
        let Some(base) = base else {
            return Err("no video access unit in the segment".into());
        };
        for pic in decoder
            .flush_remaining()
            .map_err(|e| format!("flushing the decoder: {e}"))?
        {
            if pending.is_empty() {
                break;
            }
            let pts = take(&mut pending, base);
            pictures.push(Picture {
                pts,
                reading: read_picture(&pic, block_size),
            });
        }
        if !pending.is_empty() {
            return Err(format!(
                "{} of {units} access units gave no picture",
                pending.len()
            ));
        }
        pictures.sort_by_key(|p| (p.pts + PTS_MODULUS - base) % PTS_MODULUS);
        Ok(pictures)
    }
}

impl SegmentReader {
    /// Every picture of an fMP4 segment (its init segment read by [`super::fmp4::read_init`]),
    /// in presentation order, with its presentation time in 90 kHz ticks modulo 2^33 like a TS
    /// PTS (so the same [`Unwrap`] and [`WallMap`] place it). Errors as [`SegmentReader::read`].
    pub(crate) fn read_fmp4(
        &mut self,
        init: &super::fmp4::Init,
        segment: &[u8],
    ) -> Result<Vec<Picture>, String> {
        let result = self.read_fmp4_inner(init, segment);
        if result.is_err() {
            self.decoder = None;
        }
        result
    }

    fn read_fmp4_inner(
        &mut self,
        init: &super::fmp4::Init,
        segment: &[u8],
    ) -> Result<Vec<Picture>, String> {
        let samples = super::fmp4::read_segment(init, segment)?;
        let decoder = match &mut self.decoder {
            Some(d) => d,
            None => self
                .decoder
                .insert(Decoder::new().map_err(|e| format!("starting the H.264 decoder: {e}"))?),
        };
        let block_size = self.block_size;
        // Decode order in, presentation order out: each picture takes the earliest time fed.
        let mut pending: Vec<u64> = Vec::new();
        let mut pictures = Vec::new();
        for (i, sample) in samples.iter().enumerate() {
            pending.push(sample.pts_90k);
            match decoder.decode(&sample.annex_b) {
                Ok(Some(pic)) => {
                    let k = (0..pending.len()).min_by_key(|&k| pending[k]).expect("fed");
                    pictures.push(Picture {
                        pts: pending.swap_remove(k) % PTS_MODULUS,
                        reading: read_picture(&pic, block_size),
                    });
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(format!(
                        "decoding sample {i} ({} ticks): {e}",
                        sample.pts_90k
                    ))
                }
            }
        }
        for pic in decoder
            .flush_remaining()
            .map_err(|e| format!("flushing the decoder: {e}"))?
        {
            let Some(k) = (0..pending.len()).min_by_key(|&k| pending[k]) else {
                break;
            };
            pictures.push(Picture {
                pts: pending.swap_remove(k) % PTS_MODULUS,
                reading: read_picture(&pic, block_size),
            });
        }
        if !pending.is_empty() {
            return Err(format!(
                "{} of {} samples gave no picture",
                pending.len(),
                samples.len()
            ));
        }
        let base = samples[0].pts_90k % PTS_MODULUS;
        pictures.sort_by_key(|p| (p.pts + PTS_MODULUS - base) % PTS_MODULUS);
        Ok(pictures)
    }
}

fn read_picture(pic: &impl YUVSource, block_size: u32) -> Reading {
    let (width, height) = pic.dimensions();
    let (y_stride, u_stride, _) = pic.strides();
    read_top_left(
        &Planes {
            width,
            height,
            y: pic.y(),
            u: pic.u(),
            v: pic.v(),
            y_stride,
            uv_stride: u_stride,
        },
        block_size,
    )
}

/// Unwraps 33-bit PTS into a signed line: each value is placed within 2^32 ticks (13 hours) of
/// the one before, so a wrap (or a small step back) is a step, not a jump of 2^33.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Unwrap {
    last: Option<(u64, i64)>,
}

impl Unwrap {
    /// Forgets the history: the next PTS starts a new line (after a discontinuity).
    pub(crate) fn reset(&mut self) {
        self.last = None;
    }

    pub fn unwrap(&mut self, pts: u64) -> i64 {
        let pts = pts % PTS_MODULUS;
        let v = match self.last {
            None => pts as i64,
            Some((raw, line)) => {
                let step = (pts + PTS_MODULUS - raw) % PTS_MODULUS;
                let step = if step >= PTS_MODULUS / 2 {
                    step as i64 - PTS_MODULUS as i64
                } else {
                    step as i64
                };
                line + step
            }
        };
        self.last = Some((pts, v));
        v
    }
}

/// Maps unwrapped PTS to the wall clock of the playlist's `EXT-X-PROGRAM-DATE-TIME`.
///
/// Within one run of an origin, wall time (in ticks) = PTS + C for one constant C. A segment's
/// date is written rounded down to the millisecond, so the segment whose first picture has PTS
/// `q` and date `P` ms says `90 P - q <= C <= 90 P - q + 89`. Each segment narrows the interval;
/// a picture's date is `lo + pts` rounded down to the millisecond, with `lo` the interval's low
/// end. That is never later than the picture's true instant (so a server that snaps a date to
/// the first frame at or after it lands on this picture), never earlier than the naive "segment
/// date + whole milliseconds since its first picture", and exact (what the origin itself writes
/// for that frame) once the interval is narrow: at once when the first segment of a run was
/// seen (its date is exact), otherwise after a few segments whose dates round differently (at
/// 29.97 fps, or segment lengths that are not whole milliseconds). An observation that does not
/// fit (a clock that jumped) restarts the interval from that segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct WallMap {
    /// `[lo, hi]` of C in ticks, when known.
    range: Option<(i128, i128)>,
}

impl WallMap {
    pub(crate) fn reset(&mut self) {
        self.range = None;
    }

    /// Takes a segment's date (ms since the epoch) and its first picture's unwrapped PTS.
    /// Returns false when the observation did not fit and restarted the interval.
    pub(crate) fn observe(&mut self, pdt_ms: i64, first_pts: i64) -> bool {
        let lo = i128::from(pdt_ms) * i128::from(TICKS_PER_MS) - i128::from(first_pts);
        let hi = lo + i128::from(TICKS_PER_MS) - 1;
        match self.range {
            Some((a, b)) if a.max(lo) <= b.min(hi) => {
                self.range = Some((a.max(lo), b.min(hi)));
                true
            }
            Some(_) => {
                self.range = Some((lo, hi));
                false
            }
            None => {
                self.range = Some((lo, hi));
                true
            }
        }
    }

    /// Width of the interval in ticks (0: exact).
    #[cfg(test)]
    pub(crate) fn uncertainty(&self) -> Option<i128> {
        self.range.map(|(a, b)| b - a)
    }

    /// The date (ms since the epoch, rounded down) of the picture with unwrapped PTS `pts`.
    pub(crate) fn date_ms(&self, pts: i64) -> Option<i64> {
        let (lo, _) = self.range?;
        Some((lo + i128::from(pts)).div_euclid(i128::from(TICKS_PER_MS)) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hls::time::FrameRate;

    #[test]
    fn unwrap_crosses_2_pow_33() {
        let mut u = Unwrap::default();
        let start = PTS_MODULUS - 3003;
        assert_eq!(u.unwrap(start), start as i64);
        assert_eq!(u.unwrap(0), PTS_MODULUS as i64);
        assert_eq!(u.unwrap(3003), PTS_MODULUS as i64 + 3003);
        // A small step back stays a small step back.
        assert_eq!(u.unwrap(0), PTS_MODULUS as i64);
        u.reset();
        assert_eq!(u.unwrap(5), 5);
    }

    /// Against the origin's own rule (date = anchor + stream time, rounded down to the ms):
    /// joining a 29.97 fps stream with 1.5 s segments in the middle, the dates are never late,
    /// never more than 1 ms early, and exact after a few segments; joining at the first segment,
    /// exact at once.
    #[test]
    fn wall_map_converges_on_the_origins_dates() {
        let rate = FrameRate::new(30_000, 1001).unwrap();
        let anchor_ms: i64 = 1_764_072_000_123;
        let offset: i64 = (PTS_MODULUS - 500_000) as i64; // wraps on the way
        let true_ms = |n: u64| anchor_ms + (rate.time_of(n).as_u64() / 90) as i64;
        // First frames of 1.5 s segments: the first slot at or after k * 1.5 s.
        let firsts: Vec<u64> = (0..40u64)
            .map(|k| {
                let t = hls::time::StreamTime(k * 135_000);
                rate.first_frame_at_or_after(t)
            })
            .collect();
        for join in [0usize, 7] {
            let mut map = WallMap::default();
            let mut unwrap = Unwrap::default();
            let mut exact_from = None;
            for (j, w) in firsts[join..].windows(2).enumerate() {
                let mut pts = |n: u64| unwrap_pts(&mut unwrap, offset, rate, n);
                assert!(map.observe(true_ms(w[0]), pts(w[0])));
                let mut all_exact = true;
                for n in w[0]..w[1] {
                    let got = map.date_ms(pts(n)).unwrap();
                    let want = true_ms(n);
                    assert!(
                        got <= want && got >= want - 1,
                        "join {join} frame {n}: {got} vs {want}"
                    );
                    all_exact &= got == want;
                }
                if all_exact && exact_from.is_none() {
                    exact_from = Some(j);
                }
            }
            if join == 0 {
                assert_eq!(exact_from, Some(0));
                assert!(map.uncertainty().is_some_and(|u| u < 89), "narrowed");
            } else {
                assert!(exact_from.is_some_and(|j| j < 10), "{exact_from:?}");
            }
        }
        // A date that does not fit restarts the interval.
        let mut map = WallMap::default();
        assert!(map.observe(1000, 0));
        assert!(!map.observe(5000, 90_000));
        assert_eq!(map.date_ms(90_000), Some(5000));
    }

    fn unwrap_pts(u: &mut Unwrap, offset: i64, rate: FrameRate, n: u64) -> i64 {
        let raw = (offset as u64 + rate.time_of(n).as_u64()) % PTS_MODULUS;
        u.unwrap(raw)
    }
}
