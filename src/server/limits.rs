//! What a misbehaving client may cost the log and the token check: rate-limited warnings
//! ([`LogLimit`]) and a per-address limit on failed marker-token checks ([`AuthFailures`]).
//!
//! Both are small and bounded: a `LogLimit` is a timestamp and a counter; `AuthFailures` keeps at
//! most [`AuthFailures::MAX_ADDRESSES`] addresses, dropping the expired ones (then the oldest)
//! when full, so a client that cycles through addresses costs a bounded table, not memory.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The rate-limited warnings, shared with the media threads (the crate's one [`LogLimit`]).
pub(crate) use crate::telemetry::LogLimit;

/// Failed marker-token checks per client address. An address that failed
/// [`AuthFailures::ALLOWED`] times within [`AuthFailures::WINDOW`] is refused (429, without
/// looking at its token) until that window has passed, so guessing a token runs at a few tries
/// a minute, not thousands a second.
#[derive(Debug, Default)]
pub(crate) struct AuthFailures {
    by_address: Mutex<HashMap<IpAddr, Failures>>,
}

#[derive(Clone, Copy, Debug)]
struct Failures {
    /// The first failure of the current window.
    since: Instant,
    count: u32,
}

impl AuthFailures {
    /// Failures an address may have within [`AuthFailures::WINDOW`] before it is refused.
    pub(crate) const ALLOWED: u32 = 10;
    /// How long failures are remembered, counted from an address's first in a window.
    pub(crate) const WINDOW: Duration = Duration::from_secs(60);
    /// Addresses remembered at once.
    pub(crate) const MAX_ADDRESSES: usize = 4096;

    /// `Err(wait)` when `addr` is refused for now: retry after `wait`.
    pub(crate) fn check(&self, addr: IpAddr, now: Instant) -> Result<(), Duration> {
        let map = self.by_address.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(&addr) {
            Some(f) if f.count >= Self::ALLOWED && now < f.since + Self::WINDOW => {
                Err(f.since + Self::WINDOW - now)
            }
            _ => Ok(()),
        }
    }

    /// Records a failure of `addr`; returns its count in the current window.
    pub(crate) fn record(&self, addr: IpAddr, now: Instant) -> u32 {
        let mut map = self.by_address.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= Self::MAX_ADDRESSES && !map.contains_key(&addr) {
            map.retain(|_, f| now < f.since + Self::WINDOW);
            if map.len() >= Self::MAX_ADDRESSES {
                if let Some(oldest) = map.iter().min_by_key(|(_, f)| f.since).map(|(a, _)| *a) {
                    map.remove(&oldest);
                }
            }
        }
        let f = map.entry(addr).or_insert(Failures {
            since: now,
            count: 0,
        });
        if now >= f.since + Self::WINDOW {
            *f = Failures {
                since: now,
                count: 0,
            };
        }
        f.count += 1;
        f.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_refused_after_its_allowed_failures_until_the_window_ends() {
        let auth = AuthFailures::default();
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.2".parse().unwrap(), "::1".parse().unwrap());
        let t0 = Instant::now();
        for n in 1..=AuthFailures::ALLOWED {
            assert_eq!(auth.check(a, t0), Ok(()));
            assert_eq!(auth.record(a, t0 + Duration::from_secs(1)), n);
        }
        let wait = auth.check(a, t0 + Duration::from_secs(30)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(31));
        // Another address is not affected.
        assert_eq!(auth.check(b, t0), Ok(()));
        // Once the window has passed, the address starts afresh.
        let later = t0 + Duration::from_secs(61);
        assert_eq!(auth.check(a, later), Ok(()));
        assert_eq!(auth.record(a, later), 1);
    }

    #[test]
    fn the_table_stays_bounded() {
        let auth = AuthFailures::default();
        let t0 = Instant::now();
        for i in 0..(AuthFailures::MAX_ADDRESSES as u32 + 100) {
            let addr = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            auth.record(addr, t0 + Duration::from_millis(u64::from(i)));
        }
        let len = auth.by_address.lock().unwrap().len();
        assert_eq!(len, AuthFailures::MAX_ADDRESSES);
    }
}
