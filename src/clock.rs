//! Clocks: the monotonic capture clock behind a trait (so tests can run without waiting), and
//! the wall-clock anchor formatting used by `EXT-X-PROGRAM-DATE-TIME`, DATERANGE and the API.

use std::time::Instant;

use time::OffsetDateTime;

use crate::time::{Duration90k, StreamTime};

/// The monotonic clock the pacer sleeps on.
pub(crate) trait Clock: Send {
    fn now(&self) -> Instant;
    /// Blocks the calling thread until `deadline` (returns at once if it has passed).
    fn sleep_until(&self, deadline: Instant);
}

/// The real monotonic clock: `Instant::now` and `thread::sleep`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RealClock;

impl Clock for RealClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep_until(&self, deadline: Instant) {
        let now = Instant::now();
        if deadline > now {
            std::thread::sleep(deadline - now);
        }
    }
}

/// A UTC instant with millisecond precision: the stream's wall-clock anchor plus stream time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct WallClock(OffsetDateTime);

impl WallClock {
    pub(crate) fn now() -> Self {
        WallClock::from_unix_millis(
            (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64,
        )
    }

    pub fn from_unix_millis(ms: i64) -> Self {
        Self::try_from_unix_millis(ms).expect("unix milliseconds within time's supported range")
    }

    /// `None` outside the years -9999 to 9999.
    pub(crate) fn try_from_unix_millis(ms: i64) -> Option<Self> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .ok()
            .map(WallClock)
    }

    pub fn unix_millis(self) -> i64 {
        (self.0.unix_timestamp_nanos() / 1_000_000) as i64
    }

    /// The wall-clock instant of stream time `t` when `self` is the instant of the stream's first
    /// frame (its anchor), rounded down to the millisecond.
    pub(crate) fn at(self, t: StreamTime) -> Self {
        self + t.since_start()
    }

    /// Parses an RFC 3339 date such as `2026-11-25T12:00:00.123Z` (rounded down to the ms).
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        let t = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
        Some(WallClock::from_unix_millis(
            (t.unix_timestamp_nanos() / 1_000_000) as i64,
        ))
    }

    /// ISO 8601 / RFC 3339 in UTC with milliseconds, e.g. `2026-11-25T12:00:00.000Z` (R32).
    pub fn to_rfc3339(self) -> String {
        let t = self.0;
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond()
        )
    }
}

/// The instant `d` later, rounded down to the millisecond.
impl std::ops::Add<Duration90k> for WallClock {
    type Output = WallClock;
    fn add(self, d: Duration90k) -> WallClock {
        WallClock::from_unix_millis(self.unix_millis() + d.as_millis() as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_has_millis_and_z() {
        let w = WallClock::from_unix_millis(1_764_072_000_123);
        assert_eq!(w.to_rfc3339(), "2025-11-25T12:00:00.123Z");
        assert_eq!(
            (w + Duration90k(180_000)).to_rfc3339(),
            "2025-11-25T12:00:02.123Z"
        );
    }
}
