//! The multivariant playlist of one stream (`/video/NAME.index.m3u8`): a single
//! `EXT-X-STREAM-INF` pointing at the live media playlist, with what a player needs to choose it
//! before it loads a segment (RFC 8216 §4.3.4.2, Apple's HLS authoring specification §1.16 and
//! §9.x: BANDWIDTH, AVERAGE-BANDWIDTH, CODECS, RESOLUTION and FRAME-RATE on every variant).
//!
//! ```text
//! #EXTM3U
//! #EXT-X-VERSION:3
//! #EXT-X-INDEPENDENT-SEGMENTS
//! #EXT-X-STREAM-INF:BANDWIDTH=2816000,AVERAGE-BANDWIDTH=2605112,CODECS="avc1.42c01f",RESOLUTION=1280x720,FRAME-RATE=29.970
//! chessboard.m3u8
//! ```
//!
//! The bit rates are measured, not configured: [`BitrateWindow`] holds the bytes and durations
//! of the segments in the live window. `BANDWIDTH` is the peak segment bit rate as the revision
//! draft defines it (rfc8216bis §4.4.6.2): the largest bit rate of any run of consecutive
//! segments lasting between 0.5 and 1.5 target durations. `AVERAGE-BANDWIDTH` is the total over
//! the window. Both are in bits per second of whole segment files (container overhead included:
//! that is what a player downloads), rounded up.
//!
//! Pure: no I/O, no clock.

use std::collections::VecDeque;
use std::fmt::Write as _;

use crate::time::{Duration90k, FrameRate, TICKS_PER_SEC};

/// The bytes and durations of the newest segments.
#[derive(Clone, Debug)]
pub struct BitrateWindow {
    segments: VecDeque<(u64, Duration90k)>,
    capacity: usize,
}

impl BitrateWindow {
    /// A window of the newest `capacity` segments (the live playlist's `list_size`), at least 1.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        BitrateWindow {
            segments: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    /// Counts a segment of `bytes` lasting `duration`; the oldest leaves when the window is full.
    /// A segment of zero duration carries no rate and is ignored.
    pub fn push(&mut self, bytes: u64, duration: Duration90k) {
        if duration.as_u64() == 0 {
            return;
        }
        if self.segments.len() == self.capacity {
            self.segments.pop_front();
        }
        self.segments.push_back((bytes, duration));
    }

    /// No segment yet.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Bits per second of `bytes` over `ticks`, rounded up; 0 for an empty span.
    fn rate(bytes: u64, ticks: u64) -> u64 {
        if ticks == 0 {
            return 0;
        }
        let bits = u128::from(bytes) * 8 * u128::from(TICKS_PER_SEC);
        u64::try_from(bits.div_ceil(u128::from(ticks))).unwrap_or(u64::MAX)
    }

    /// The average segment bit rate over the window.
    pub fn average_bps(&self) -> u64 {
        let (bytes, ticks) = self
            .segments
            .iter()
            .fold((0u64, 0u64), |(b, t), (bytes, d)| {
                (b.saturating_add(*bytes), t.saturating_add(d.as_u64()))
            });
        Self::rate(bytes, ticks)
    }

    /// The peak segment bit rate: the largest rate of any run of consecutive segments whose
    /// total duration lies in `[0.5, 1.5]` target durations. When no run qualifies (segments
    /// far from the target, which our segmenter does not cut), the largest single segment's.
    pub fn peak_bps(&self, target_duration_secs: u64) -> u64 {
        let target = target_duration_secs.max(1) * TICKS_PER_SEC;
        let (low, high) = (target / 2, target + target / 2);
        let mut peak = None::<u64>;
        for start in 0..self.segments.len() {
            let (mut bytes, mut ticks) = (0u64, 0u64);
            for (b, d) in self.segments.iter().skip(start) {
                bytes = bytes.saturating_add(*b);
                ticks = ticks.saturating_add(d.as_u64());
                if ticks > high {
                    break;
                }
                if ticks >= low {
                    peak = peak.max(Some(Self::rate(bytes, ticks)));
                }
            }
        }
        peak.unwrap_or_else(|| {
            self.segments
                .iter()
                .map(|(b, d)| Self::rate(*b, d.as_u64()))
                .max()
                .unwrap_or(0)
        })
    }
}

/// What the one `EXT-X-STREAM-INF` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variant {
    /// The media playlist's URI, relative to the multivariant playlist (`chessboard.m3u8`).
    pub uri: String,
    /// `BANDWIDTH`: peak segment bit rate, bit/s.
    pub peak_bps: u64,
    /// `AVERAGE-BANDWIDTH`: average segment bit rate, bit/s.
    pub average_bps: u64,
    /// `CODECS`: `avc1.PPCCLL` from the stream's own SPS.
    pub codecs: String,
    /// `RESOLUTION`: the coded picture's display size.
    pub width: u32,
    pub height: u32,
    /// `FRAME-RATE`, written with three decimals.
    pub frame_rate: FrameRate,
}

impl Variant {
    /// The multivariant playlist text. `version` is the media playlist's
    /// `EXT-X-VERSION` (both say the same, RFC 8216 §4.3.1.2 allows one per playlist; players
    /// compare neither).
    pub fn render(&self, version: u32) -> String {
        let mut out = String::with_capacity(256);
        out.push_str("#EXTM3U\n");
        let _ = writeln!(out, "#EXT-X-VERSION:{version}");
        out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
        let _ = write!(
            out,
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"{}\",RESOLUTION={}x{},FRAME-RATE=",
            self.peak_bps.max(1),
            self.average_bps.max(1),
            self.codecs,
            self.width,
            self.height,
        );
        push_three_decimals(&mut out, self.frame_rate);
        out.push('\n');
        out.push_str(&self.uri);
        out.push('\n');
        out
    }
}

/// `num / den` rounded half up to three decimals, exactly (29.970 for 30000/1001).
fn push_three_decimals(out: &mut String, rate: FrameRate) {
    let (num, den) = (u64::from(rate.num), u64::from(rate.den.max(1)));
    let millis = (num * 1000 * 2 + den) / (2 * den);
    let _ = write!(out, "{}.{:03}", millis / 1000, millis % 1000);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration90k {
        Duration90k::from_secs_f64(s).unwrap()
    }

    #[test]
    fn average_is_total_bits_over_total_time() {
        let mut w = BitrateWindow::new(3);
        w.push(250_000, secs(2.0)); // 1 Mbit/s
        w.push(750_000, secs(2.0)); // 3 Mbit/s
        assert_eq!(w.average_bps(), 2_000_000);
        // The window keeps three: a fourth pushes the first out.
        w.push(500_000, secs(2.0));
        w.push(500_000, secs(2.0));
        assert_eq!(
            w.average_bps(),
            ((750_000 + 500_000 + 500_000) * 8u64).div_ceil(6)
        );
    }

    #[test]
    fn peak_is_the_densest_run_near_the_target_duration() {
        let mut w = BitrateWindow::new(10);
        w.push(250_000, secs(2.0));
        w.push(750_000, secs(2.0));
        w.push(250_000, secs(2.0));
        assert_eq!(w.peak_bps(2), 3_000_000);
        // A short segment (a discontinuity) is not a run by itself: at 0.2 s it lasts less than
        // half the target, so its burst counts only together with a neighbour.
        let mut w = BitrateWindow::new(10);
        w.push(100_000, secs(2.0)); // 0.4 Mbit/s
        w.push(100_000, secs(0.2)); // 4 Mbit/s alone
        w.push(100_000, secs(2.0));
        let with_neighbour = BitrateWindow::rate(200_000, secs(2.2).as_u64());
        assert_eq!(w.peak_bps(2), with_neighbour);
        assert!(w.peak_bps(2) < 4_000_000);
    }

    #[test]
    fn peak_falls_back_to_the_largest_segment_when_no_run_fits() {
        let mut w = BitrateWindow::new(4);
        w.push(1_000_000, secs(6.0));
        w.push(2_000_000, secs(6.0));
        assert_eq!(
            w.peak_bps(2),
            BitrateWindow::rate(2_000_000, secs(6.0).as_u64())
        );
        assert_eq!(BitrateWindow::new(4).peak_bps(2), 0);
    }

    #[test]
    fn rates_round_up_and_zero_durations_are_ignored() {
        let mut w = BitrateWindow::new(2);
        w.push(1, Duration90k::ZERO);
        assert!(w.is_empty());
        w.push(1, secs(3.0)); // 8 bits in 3 s: 2.67 bit/s, written 3
        assert_eq!(w.average_bps(), 3);
    }

    #[test]
    fn renders_the_attributes_apple_requires_and_m3u8_rs_reads_them() {
        let v = Variant {
            uri: "chessboard.m3u8".into(),
            peak_bps: 2_816_000,
            average_bps: 2_605_112,
            codecs: "avc1.42c01f".into(),
            width: 1280,
            height: 720,
            frame_rate: FrameRate::new(30_000, 1001).unwrap(),
        };
        let text = v.render(3);
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-STREAM-INF:BANDWIDTH=2816000,AVERAGE-BANDWIDTH=2605112,\
             CODECS=\"avc1.42c01f\",RESOLUTION=1280x720,FRAME-RATE=29.970\nchessboard.m3u8\n"
        );
        let m3u8_rs::Playlist::MasterPlaylist(p) =
            m3u8_rs::parse_playlist_res(text.as_bytes()).expect("m3u8-rs parses it")
        else {
            panic!("m3u8-rs read a media playlist");
        };
        assert!(p.independent_segments);
        let [variant] = &p.variants[..] else {
            panic!("one variant: {:?}", p.variants)
        };
        assert_eq!(variant.uri, "chessboard.m3u8");
        assert_eq!(variant.bandwidth, 2_816_000);
        assert_eq!(variant.average_bandwidth, Some(2_605_112));
        assert_eq!(variant.codecs.as_deref(), Some("avc1.42c01f"));
        let r = variant.resolution.expect("RESOLUTION");
        assert_eq!((r.width, r.height), (1280, 720));
        assert_eq!(variant.frame_rate, Some(29.97));
    }

    #[test]
    fn frame_rates_have_three_exact_decimals() {
        let cases = [
            ((30, 1), "30.000"),
            ((30_000, 1001), "29.970"),
            ((60_000, 1001), "59.940"),
            ((24_000, 1001), "23.976"),
            ((25, 2), "12.500"),
            ((1, 3), "0.333"),
        ];
        for ((num, den), want) in cases {
            let mut s = String::new();
            push_three_decimals(&mut s, FrameRate::new(num, den).unwrap());
            assert_eq!(s, want, "{num}/{den}");
        }
    }
}
