//! Time on one 90 kHz base (ISO/IEC 13818-1 §2.4.2.2: PTS/DTS tick at 90 kHz, PCR at 27 MHz).
//!
//! [`Pts`] is a presentation instant on the *stream clock*: ticks since the stream's first frame
//! plus a fixed offset. It never wraps inside our code (a `u64` of 90 kHz ticks lasts 6.5 million
//! years); only the TS muxer reduces it modulo 2^33 when it writes the bitstream.
//! [`Ticks90k`] is a duration. Only `Pts - Pts`, `Pts + Ticks90k` and `Pts - Ticks90k` are defined.

use std::fmt;
use std::ops::{Add, Sub};

/// Ticks of the MPEG system clock's 90 kHz base per second.
pub const TICKS_PER_SEC: u64 = 90_000;

/// A presentation instant in 90 kHz ticks, unwrapped.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pts(pub u64);

/// A duration in 90 kHz ticks.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Ticks90k(pub u64);

impl Pts {
    pub const ZERO: Pts = Pts(0);

    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// Seconds as a float, for display and JSON only (never for arithmetic that accumulates).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / TICKS_PER_SEC as f64
    }
}

impl Ticks90k {
    pub const ZERO: Ticks90k = Ticks90k(0);

    pub fn from_secs(secs: u64) -> Self {
        Ticks90k(secs * TICKS_PER_SEC)
    }

    pub fn as_u64(self) -> u64 {
        self.0
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / TICKS_PER_SEC as f64
    }

    pub fn as_std(self) -> std::time::Duration {
        std::time::Duration::from_nanos(
            (u128::from(self.0) * 1_000_000_000 / u128::from(TICKS_PER_SEC)) as u64,
        )
    }
}

impl Sub for Pts {
    type Output = Ticks90k;
    fn sub(self, rhs: Pts) -> Ticks90k {
        Ticks90k(
            self.0
                .checked_sub(rhs.0)
                .expect("Pts - Pts: the left instant is not earlier than the right"),
        )
    }
}

impl Add<Ticks90k> for Pts {
    type Output = Pts;
    fn add(self, rhs: Ticks90k) -> Pts {
        Pts(self.0 + rhs.0)
    }
}

impl Sub<Ticks90k> for Pts {
    type Output = Pts;
    fn sub(self, rhs: Ticks90k) -> Pts {
        Pts(self
            .0
            .checked_sub(rhs.0)
            .expect("Pts - Ticks90k: the instant is not before the stream's start"))
    }
}

impl Add for Ticks90k {
    type Output = Ticks90k;
    fn add(self, rhs: Ticks90k) -> Ticks90k {
        Ticks90k(self.0 + rhs.0)
    }
}

impl Sub for Ticks90k {
    type Output = Ticks90k;
    fn sub(self, rhs: Ticks90k) -> Ticks90k {
        Ticks90k(
            self.0
                .checked_sub(rhs.0)
                .expect("Ticks90k - Ticks90k: the left duration is not shorter than the right"),
        )
    }
}

impl fmt::Debug for Pts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pts({} /* {:.6} s */)", self.0, self.as_secs_f64())
    }
}

impl fmt::Debug for Ticks90k {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ticks90k({} /* {:.6} s */)", self.0, self.as_secs_f64())
    }
}

/// A frame rate as an exact fraction, e.g. 30/1 or 30000/1001.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameRate {
    pub num: u32,
    pub den: u32,
}

impl FrameRate {
    pub fn new(num: u32, den: u32) -> Result<Self, String> {
        if num == 0 || den == 0 {
            return Err(format!("frame rate {num}/{den} must be positive"));
        }
        Ok(FrameRate { num, den })
    }

    /// Parses `30`, `29.97`, `30000/1001`. `29.97` and `59.94` are taken as the NTSC fractions.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some((n, d)) = s.split_once('/') {
            let num = n
                .parse()
                .map_err(|_| format!("bad frame rate numerator in {s:?}"))?;
            let den = d
                .parse()
                .map_err(|_| format!("bad frame rate denominator in {s:?}"))?;
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
        let f: f64 = s.parse().map_err(|_| format!("bad frame rate {s:?}"))?;
        if !(f.is_finite() && f > 0.0 && f <= 1000.0) {
            return Err(format!("frame rate {s:?} out of range"));
        }
        FrameRate::new((f * 1000.0).round() as u32, 1000)
    }

    pub fn as_f64(self) -> f64 {
        f64::from(self.num) / f64::from(self.den)
    }

    /// Stream time of frame slot `n`, computed from `n` (never by summing steps, so 29.97 fps does
    /// not drift). Rounded down to the tick.
    pub fn pts_of(self, n: u64) -> Ticks90k {
        Ticks90k(
            (u128::from(n) * u128::from(TICKS_PER_SEC) * u128::from(self.den)
                / u128::from(self.num)) as u64,
        )
    }

    /// The first frame slot whose time is at or after `t`.
    pub fn first_frame_at_or_after(self, t: Ticks90k) -> u64 {
        let num = u128::from(t.0) * u128::from(self.num);
        let den = u128::from(TICKS_PER_SEC) * u128::from(self.den);
        let mut n = num.div_ceil(den) as u64;
        // pts_of rounds down, so step back while an earlier slot still reaches t.
        while n > 0 && self.pts_of(n - 1) >= t {
            n -= 1;
        }
        while self.pts_of(n) < t {
            n += 1;
        }
        n
    }

    /// Frame index within its second for timecodes: `n mod round(fps)` style for integer rates,
    /// and the frame number inside the wall second for fractional ones.
    pub fn nominal(self) -> u32 {
        (f64::from(self.num) / f64::from(self.den)).round().max(1.0) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pts_of_does_not_drift_at_29_97() {
        let r = FrameRate::parse("29.97").unwrap();
        assert_eq!(
            r,
            FrameRate {
                num: 30_000,
                den: 1001
            }
        );
        // 30000 frames at 30000/1001 fps are exactly 1001 s.
        assert_eq!(r.pts_of(30_000), Ticks90k::from_secs(1001));
        assert_eq!(r.pts_of(1), Ticks90k(3003));
    }

    #[test]
    fn first_frame_at_or_after_inverts_pts_of() {
        for r in [
            FrameRate::new(30, 1).unwrap(),
            FrameRate::new(30_000, 1001).unwrap(),
            FrameRate::new(25, 1).unwrap(),
        ] {
            for n in 0..5000u64 {
                let t = r.pts_of(n);
                assert_eq!(r.first_frame_at_or_after(t), n, "{r:?} n={n}");
                assert_eq!(
                    r.first_frame_at_or_after(t + Ticks90k(1)),
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
    }
}
