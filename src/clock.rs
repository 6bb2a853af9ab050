//! Clocks: the monotonic capture clock behind a trait (so tests can run without waiting), and
//! the wall-clock anchor formatting used by `EXT-X-PROGRAM-DATE-TIME`, DATERANGE and the API.

use std::time::Instant;

use time::OffsetDateTime;

use crate::time::{Duration90k, FrameRate, StreamTime};

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
/// Held as milliseconds since the Unix epoch, within the years -9999 to 9999 (what `time` can
/// format), so comparing, adding and reading the milliseconds are integer operations; only
/// formatting and parsing go through `time`'s calendar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct WallClock {
    unix_millis: i64,
}

impl WallClock {
    /// 9999-12-31T23:59:59.999Z, the last instant held.
    pub const MAX: WallClock = WallClock {
        unix_millis: 253_402_300_799_999,
    };

    pub(crate) fn now() -> Self {
        WallClock::from_unix_millis(
            (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64,
        )
    }

    pub fn from_unix_millis(ms: i64) -> Self {
        Self::try_from_unix_millis(ms).expect("unix milliseconds within time's supported range")
    }

    /// `None` outside the years -9999 to 9999.
    pub fn try_from_unix_millis(ms: i64) -> Option<Self> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .ok()
            .map(|_| WallClock { unix_millis: ms })
    }

    pub fn unix_millis(self) -> i64 {
        self.unix_millis
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
        let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.unix_millis) * 1_000_000)
            .expect("a WallClock is within time's range");
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

/// The stream's clock: the wall-clock instant of stream time zero (the stream's first frame
/// ever, its *epoch*, kept with the stream across restarts) and the frame rate. Stream time,
/// frame slots, timecodes and program date times all follow from these two.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StreamClock {
    pub epoch: WallClock,
    pub rate: FrameRate,
}

impl StreamClock {
    /// The frame slot that shows stream time `t`: the first frame at or after it.
    pub(crate) fn slot_at_or_after(&self, t: StreamTime) -> u64 {
        self.rate.first_frame_at_or_after(t)
    }

    /// Stream time of a wall-clock instant given in Unix nanoseconds, rounded down to the 90 kHz
    /// tick; `None` before the epoch.
    pub(crate) fn time_of_unix_nanos(&self, nanos: i128) -> Option<StreamTime> {
        let since = nanos - i128::from(self.epoch.unix_millis()) * 1_000_000;
        if since < 0 {
            return None;
        }
        // ticks = ns * 90_000 / 1e9 = ns * 9 / 100_000
        u64::try_from(since * 9 / 100_000).ok().map(StreamTime)
    }

    /// Stream time now by the wall clock (zero before the epoch).
    pub(crate) fn now(&self) -> StreamTime {
        let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
        self.time_of_unix_nanos(nanos).unwrap_or(StreamTime::ZERO)
    }

    /// The UTC instant of stream time `t`, as the playlist and the API write it.
    pub(crate) fn program_date_time(&self, t: StreamTime) -> String {
        self.epoch.at(t).to_rfc3339()
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

    #[test]
    fn stream_clock_maps_instants_to_ticks_and_frames() {
        let c = StreamClock {
            epoch: WallClock::from_unix_millis(1_764_072_000_000),
            rate: FrameRate::new(30_000, 1001).unwrap(),
        };
        let ns = |ms: i64| i128::from(ms) * 1_000_000;
        assert_eq!(c.time_of_unix_nanos(ns(1_764_071_999_999)), None);
        assert_eq!(
            c.time_of_unix_nanos(ns(1_764_072_000_000)),
            Some(StreamTime::ZERO)
        );
        // Frame 1 at 29.97 is 3003 ticks = 33.366... ms: the truncated millisecond 33 lands on
        // 2970 ticks, and the first frame at or after that is frame 1 again.
        let t = c.time_of_unix_nanos(ns(1_764_072_000_033)).unwrap();
        assert_eq!(t, StreamTime(2970));
        assert_eq!(c.slot_at_or_after(t), 1);
        assert_eq!(
            c.program_date_time(c.rate.time_of(1)),
            "2025-11-25T12:00:00.033Z"
        );
    }
}
