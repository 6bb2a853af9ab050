//! Time on one 90 kHz base (ISO/IEC 13818-1 §2.4.2.2: PTS/DTS tick at 90 kHz, PCR at 27 MHz), in
//! three types that say what they are:
//!
//! - [`StreamTime`]: an instant on the *stream clock*, ticks since the stream's first frame. Frame
//!   slot `n` is at `n / fps` ([`FrameRate::time_of`]); markers, segments and the timecode live
//!   here. It never wraps (a `u64` of 90 kHz ticks lasts 6.5 million years).
//! - [`Duration90k`]: a length of stream time (a segment's EXTINF, an event's length).
//! - [`Pts`]: a presentation timestamp as the TS carries it, stream time plus the configured
//!   offset, still unwrapped; only the muxer's edge reduces it modulo 2^33.
//!
//! Only `StreamTime - StreamTime`, `StreamTime ± Duration90k`, `Duration90k ± Duration90k`,
//! `Duration90k * n` and the same for `Pts` are defined, so an instant can never be added to an
//! instant. This module is the only place that knows how many ticks a second has.

use std::fmt;
use std::ops::{Add, Mul, Sub};

/// Ticks of the MPEG system clock's 90 kHz base per second.
pub const TICKS_PER_SEC: u64 = 90_000;

/// Ticks per millisecond (exact: 90).
pub(crate) const TICKS_PER_MS: u64 = TICKS_PER_SEC / 1000;

/// An instant on the stream clock: 90 kHz ticks since the stream's first frame.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamTime(pub u64);

/// A length of stream time in 90 kHz ticks.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration90k(pub u64);

/// A presentation (or decoding) timestamp in 90 kHz ticks, unwrapped: stream time plus the
/// stream's PTS offset. Reduced modulo 2^33 only when written into the bitstream.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pts(pub u64);

impl StreamTime {
    pub(crate) const ZERO: StreamTime = StreamTime(0);

    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// The time since the stream's first frame.
    pub(crate) fn since_start(self) -> Duration90k {
        Duration90k(self.0)
    }

    /// Seconds as a float, for display and JSON only (never for arithmetic that accumulates).
    pub(crate) fn as_secs_f64(self) -> f64 {
        self.0 as f64 / TICKS_PER_SEC as f64
    }

    /// Stream seconds given as a float (a JSON number), rounded *down* to the tick, so that a
    /// time printed from a tick reads back as that tick; `None` unless finite and not negative.
    /// Beyond `u64` ticks saturates.
    pub(crate) fn from_secs_f64_floor(secs: f64) -> Option<Self> {
        (secs.is_finite() && secs >= 0.0)
            .then(|| StreamTime((secs * TICKS_PER_SEC as f64).floor().min(u64::MAX as f64) as u64))
    }

    /// Whole seconds since the stream's start, rounded down (the timecode's seconds).
    pub(crate) fn whole_secs(self) -> u64 {
        self.0 / TICKS_PER_SEC
    }

    /// The presentation timestamp of this instant for a stream whose first frame has PTS
    /// `offset`.
    pub(crate) fn to_pts(self, offset: Pts) -> Pts {
        Pts(offset.0 + self.0)
    }
}

impl Duration90k {
    pub(crate) const ZERO: Duration90k = Duration90k(0);

    pub const fn from_secs(secs: u64) -> Self {
        Duration90k(secs * TICKS_PER_SEC)
    }

    pub const fn from_millis(ms: u64) -> Self {
        Duration90k(ms * TICKS_PER_MS)
    }

    /// Seconds given as a float (a flag, a JSON number), rounded to the nearest tick; `None`
    /// unless finite, not negative and below a billion seconds.
    pub(crate) fn from_secs_f64(secs: f64) -> Option<Self> {
        (secs.is_finite() && (0.0..1e9).contains(&secs))
            .then(|| Duration90k((secs * TICKS_PER_SEC as f64).round() as u64))
    }

    /// Seconds written with millisecond precision (an EXTINF or a DATERANGE DURATION read back),
    /// rounded to the millisecond; `None` unless finite and within `0..=max_secs`.
    pub(crate) fn from_millis_f64(secs: f64, max_secs: f64) -> Option<Self> {
        (secs.is_finite() && (0.0..=max_secs).contains(&secs))
            .then(|| Duration90k::from_millis((secs * 1000.0).round() as u64))
    }

    pub const fn as_u64(self) -> u64 {
        self.0
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / TICKS_PER_SEC as f64
    }

    /// Whole milliseconds, rounded down.
    pub(crate) fn as_millis(self) -> u64 {
        self.0 / TICKS_PER_MS
    }

    /// Whole milliseconds, rounded to the nearest (half up): what an EXTINF shows.
    pub(crate) fn as_millis_rounded(self) -> u64 {
        self.0.saturating_add(TICKS_PER_MS / 2) / TICKS_PER_MS
    }

    /// Whole seconds, rounded up.
    pub fn as_secs_ceil(self) -> u64 {
        self.0.div_ceil(TICKS_PER_SEC)
    }

    /// A monotonic-clock interval on the 90 kHz base, rounded down to the tick.
    pub(crate) fn from_std(d: std::time::Duration) -> Self {
        Duration90k((d.as_nanos() * u128::from(TICKS_PER_SEC) / 1_000_000_000) as u64)
    }

    pub(crate) fn as_std(self) -> std::time::Duration {
        std::time::Duration::from_nanos(
            (u128::from(self.0) * 1_000_000_000 / u128::from(TICKS_PER_SEC)) as u64,
        )
    }
}

impl Pts {
    pub fn as_u64(self) -> u64 {
        self.0
    }

    pub(crate) fn as_secs_f64(self) -> f64 {
        self.0 as f64 / TICKS_PER_SEC as f64
    }
}

impl Sub for StreamTime {
    type Output = Duration90k;
    fn sub(self, rhs: StreamTime) -> Duration90k {
        Duration90k(
            self.0
                .checked_sub(rhs.0)
                .expect("StreamTime - StreamTime: the left instant is not earlier than the right"),
        )
    }
}

impl Add<Duration90k> for StreamTime {
    type Output = StreamTime;
    fn add(self, rhs: Duration90k) -> StreamTime {
        StreamTime(self.0 + rhs.0)
    }
}

impl Sub<Duration90k> for StreamTime {
    type Output = StreamTime;
    fn sub(self, rhs: Duration90k) -> StreamTime {
        StreamTime(
            self.0
                .checked_sub(rhs.0)
                .expect("StreamTime - Duration90k: the instant is not before the stream's start"),
        )
    }
}

impl Sub for Pts {
    type Output = Duration90k;
    fn sub(self, rhs: Pts) -> Duration90k {
        Duration90k(
            self.0
                .checked_sub(rhs.0)
                .expect("Pts - Pts: the left instant is not earlier than the right"),
        )
    }
}

impl Add<Duration90k> for Pts {
    type Output = Pts;
    fn add(self, rhs: Duration90k) -> Pts {
        Pts(self.0 + rhs.0)
    }
}

impl Sub<Duration90k> for Pts {
    type Output = Pts;
    fn sub(self, rhs: Duration90k) -> Pts {
        Pts(self
            .0
            .checked_sub(rhs.0)
            .expect("Pts - Duration90k: the instant is not before the stream's start"))
    }
}

impl Add for Duration90k {
    type Output = Duration90k;
    fn add(self, rhs: Duration90k) -> Duration90k {
        Duration90k(self.0 + rhs.0)
    }
}

impl Sub for Duration90k {
    type Output = Duration90k;
    fn sub(self, rhs: Duration90k) -> Duration90k {
        Duration90k(
            self.0.checked_sub(rhs.0).expect(
                "Duration90k - Duration90k: the left duration is not shorter than the right",
            ),
        )
    }
}

impl Mul<u64> for Duration90k {
    type Output = Duration90k;
    fn mul(self, rhs: u64) -> Duration90k {
        Duration90k(self.0 * rhs)
    }
}

impl std::iter::Sum for Duration90k {
    fn sum<I: Iterator<Item = Duration90k>>(iter: I) -> Duration90k {
        iter.fold(Duration90k::ZERO, |a, b| a + b)
    }
}

impl fmt::Debug for StreamTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "StreamTime({} /* {:.6} s */)",
            self.0,
            self.as_secs_f64()
        )
    }
}

impl fmt::Debug for Duration90k {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Duration90k({} /* {:.6} s */)",
            self.0,
            self.as_secs_f64()
        )
    }
}

impl fmt::Debug for Pts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pts({} /* {:.6} s */)", self.0, self.as_secs_f64())
    }
}

/// A frame rate as an exact fraction, e.g. 30/1 or 30000/1001.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameRate {
    pub(crate) num: u32,
    pub(crate) den: u32,
}

impl FrameRate {
    pub fn new(num: u32, den: u32) -> Result<Self, crate::error::Error> {
        if num == 0 || den == 0 {
            crate::bail!(InvalidArgument, "frame rate {num}/{den} must be positive");
        }
        Ok(FrameRate { num, den })
    }

    /// Parses `30`, `29.97`, `30000/1001`. `29.97` and `59.94` are taken as the NTSC fractions.
    pub(crate) fn parse(s: &str) -> Result<Self, crate::error::Error> {
        let s = s.trim();
        if let Some((n, d)) = s.split_once('/') {
            let num = n
                .parse()
                .map_err(|_| crate::err!(InvalidArgument, "bad frame rate numerator in {s:?}"))?;
            let den = d
                .parse()
                .map_err(|_| crate::err!(InvalidArgument, "bad frame rate denominator in {s:?}"))?;
            return FrameRate::new(num, den);
        }
        match s {
            "23.976" => return FrameRate::new(24_000, 1001),
            "29.97" => return FrameRate::new(30_000, 1001),
            "59.94" => return FrameRate::new(60_000, 1001),
            _ => {}
        }
        if let Ok(n) = s.parse::<u32>() {
            return FrameRate::new(n, 1);
        }
        let f: f64 = s
            .parse()
            .map_err(|_| crate::err!(InvalidArgument, "bad frame rate {s:?}"))?;
        if !(f.is_finite() && f > 0.0 && f <= 1000.0) {
            crate::bail!(InvalidArgument, "frame rate {s:?} out of range");
        }
        FrameRate::new((f * 1000.0).round() as u32, 1000)
    }

    pub fn as_f64(self) -> f64 {
        f64::from(self.num) / f64::from(self.den)
    }

    /// Stream time of frame slot `n`, computed from `n` (never by summing steps, so 29.97 fps does
    /// not drift). Rounded down to the tick.
    pub fn time_of(self, n: u64) -> StreamTime {
        StreamTime(
            (u128::from(n) * u128::from(TICKS_PER_SEC) * u128::from(self.den)
                / u128::from(self.num)) as u64,
        )
    }

    /// The length of one frame (of the first one; at 29.97 fps every frame is 3003 ticks).
    pub(crate) fn frame_duration(self) -> Duration90k {
        self.time_of(1).since_start()
    }

    /// True when `time_of(n)` is exact, not rounded down to the tick.
    pub(crate) fn is_exact(self, n: u64) -> bool {
        (u128::from(n) * u128::from(TICKS_PER_SEC) * u128::from(self.den)) % u128::from(self.num)
            == 0
    }

    /// The longest that `n` consecutive frames can span on this frame grid: `time_of(n)`, one
    /// tick more when that is not a whole number of ticks (a span between two rounded frame
    /// times may be that long), so the bound is never short. A segment's and a part's bound.
    pub(crate) fn longest_span(self, n: u64) -> Duration90k {
        self.time_of(n).since_start() + Duration90k(u64::from(!self.is_exact(n)))
    }

    /// The first frame slot whose time is at or after `t`.
    pub fn first_frame_at_or_after(self, t: StreamTime) -> u64 {
        let num = u128::from(t.0) * u128::from(self.num);
        let den = u128::from(TICKS_PER_SEC) * u128::from(self.den);
        let mut n = num.div_ceil(den) as u64;
        // time_of rounds down, so step back while an earlier slot still reaches t.
        while n > 0 && self.time_of(n - 1) >= t {
            n -= 1;
        }
        while self.time_of(n) < t {
            n += 1;
        }
        n
    }

    /// How many frames cover `d`: the first slot at or after it (the GOP of a segment).
    pub(crate) fn frames_covering(self, d: Duration90k) -> u64 {
        self.first_frame_at_or_after(StreamTime(d.0))
    }
}

/// Decides which frames open a segment: boundary `k` sits at stream time `k * segment`, and the
/// first frame at or after a boundary opens a new segment (the very first frame too). The one
/// rule for it: the source thread asks this for every slot (it never drops a frame that opens a
/// segment) and the decision travels with the frame to the encoder (which forces an IDR) and the
/// segmenter (which cuts there).
#[derive(Clone, Debug)]
pub struct SegmentClock {
    segment: Duration90k,
    /// Boundaries are `origin + k * segment`: the run's first frame, so a restarted run (whose
    /// stream time goes on from earlier runs) cuts whole segments from its start.
    origin: StreamTime,
    /// Stream time of the next boundary; `None` before the first frame.
    next_boundary: Option<StreamTime>,
}

impl SegmentClock {
    /// Boundaries every `segment` from stream time zero.
    pub fn new(segment: Duration90k) -> Self {
        Self::starting_at(segment, StreamTime::ZERO)
    }

    /// Boundaries every `segment` from `origin` (a run's first frame).
    pub(crate) fn starting_at(segment: Duration90k, origin: StreamTime) -> Self {
        assert!(
            segment > Duration90k::ZERO,
            "segment duration must be positive"
        );
        SegmentClock {
            segment,
            origin,
            next_boundary: None,
        }
    }

    /// True when the frame at stream time `at` opens a segment. Frames must come in increasing
    /// time order, at or after the origin; frames may be skipped (dropped), the first one at or
    /// after a boundary opens.
    pub fn opens_segment(&mut self, at: StreamTime) -> bool {
        let opens = self.would_open(at);
        if opens {
            let since = at.0.saturating_sub(self.origin.0);
            let k = since / self.segment.0 + 1;
            self.next_boundary = Some(StreamTime(self.origin.0 + k * self.segment.0));
        }
        opens
    }

    /// What [`SegmentClock::opens_segment`] would say for `at`, without deciding anything.
    pub(crate) fn would_open(&self, at: StreamTime) -> bool {
        self.next_boundary.is_none_or(|b| at >= b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_of_does_not_drift_at_29_97() {
        let r = FrameRate::parse("29.97").unwrap();
        assert_eq!(
            r,
            FrameRate {
                num: 30_000,
                den: 1001
            }
        );
        // 30000 frames at 30000/1001 fps are exactly 1001 s.
        assert_eq!(
            r.time_of(30_000).since_start(),
            Duration90k::from_secs(1001)
        );
        assert_eq!(r.time_of(1), StreamTime(3003));
        assert_eq!(r.frame_duration(), Duration90k(3003));
    }

    #[test]
    fn first_frame_at_or_after_inverts_time_of() {
        for r in [
            FrameRate::new(30, 1).unwrap(),
            FrameRate::new(30_000, 1001).unwrap(),
            FrameRate::new(25, 1).unwrap(),
        ] {
            for n in 0..5000u64 {
                let t = r.time_of(n);
                assert_eq!(r.first_frame_at_or_after(t), n, "{r:?} n={n}");
                assert_eq!(
                    r.first_frame_at_or_after(t + Duration90k(1)),
                    n + 1,
                    "{r:?} n={n}"
                );
            }
        }
    }

    #[test]
    fn parse_rejects_nonsense() {
        assert!(FrameRate::parse("0").is_err());
        assert!(FrameRate::parse("abc").is_err());
        assert!(FrameRate::parse("30/0").is_err());
        assert!(FrameRate::parse("-5").is_err());
        assert_eq!(
            FrameRate::parse("25").unwrap(),
            FrameRate { num: 25, den: 1 }
        );
    }

    #[test]
    fn debug_shows_ticks_and_seconds() {
        assert_eq!(
            format!("{:?}", Pts(135_000)),
            "Pts(135000 /* 1.500000 s */)"
        );
        assert_eq!(
            format!("{:?}", StreamTime(45_000)),
            "StreamTime(45000 /* 0.500000 s */)"
        );
    }

    #[test]
    fn conversions_round_as_documented() {
        assert_eq!(Duration90k::from_secs_f64(2.0), Some(Duration90k(180_000)));
        assert_eq!(Duration90k::from_secs_f64(-1.0), None);
        assert_eq!(Duration90k::from_secs_f64(f64::NAN), None);
        assert_eq!(
            Duration90k::from_millis_f64(2.002, 10.0),
            Some(Duration90k(180_180))
        );
        assert_eq!(Duration90k::from_millis_f64(11.0, 10.0), None);
        assert_eq!(Duration90k(180_180).as_millis(), 2002);
        assert_eq!(Duration90k(44).as_millis_rounded(), 0);
        assert_eq!(Duration90k(45).as_millis_rounded(), 1);
        assert_eq!(Duration90k(180_001).as_secs_ceil(), 3);
        assert_eq!(StreamTime(10).to_pts(Pts(126_000)), Pts(126_010));
    }

    /// The clock opens exactly the first slot at or after each boundary, at integer and NTSC
    /// rates, and still opens one when the boundary slot itself was skipped.
    #[test]
    fn segment_clock_opens_the_first_frame_at_or_after_each_boundary() {
        for rate in [
            FrameRate::new(30, 1).unwrap(),
            FrameRate::new(30_000, 1001).unwrap(),
            FrameRate::new(24, 1).unwrap(),
        ] {
            let seg = Duration90k::from_secs(2);
            let mut clock = SegmentClock::new(seg);
            for n in 0..10_000 {
                let expected = n == 0 || rate.time_of(n).0 / seg.0 != rate.time_of(n - 1).0 / seg.0;
                assert_eq!(
                    clock.opens_segment(rate.time_of(n)),
                    expected,
                    "{rate:?} slot {n}"
                );
            }
        }
        let mut c = SegmentClock::new(Duration90k::from_secs(1));
        assert!(c.opens_segment(StreamTime(0)));
        assert!(!c.opens_segment(StreamTime(89_999)));
        // The boundary frame at 90000 was skipped: the next one opens.
        assert!(c.opens_segment(StreamTime(93_000)));
        // A restarted run at 10.5 s cuts every second from there.
        let mut c = SegmentClock::starting_at(Duration90k::from_secs(1), StreamTime(945_000));
        assert!(c.opens_segment(StreamTime(945_000)));
        assert!(!c.opens_segment(StreamTime(1_000_000)));
        assert!(c.opens_segment(StreamTime(1_035_000)));
    }
}
