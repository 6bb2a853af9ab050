//! Timeline markers: one per source event, on the stream clock, shared between the encoder thread
//! (which appends, on the first frame of each event that reaches the encoder; see `pipeline.rs`)
//! and the HTTP server and playlist writer (which read).

use std::collections::VecDeque;
use std::sync::RwLock;

use serde::Serialize;

use crate::clock::WallClock;
use crate::time::{Duration90k, StreamTime};

/// How many markers the store keeps by default; the oldest go first. At one event every 20 s
/// this is over two days of markers, far beyond any DVR window.
pub(crate) const DEFAULT_MARKER_CAPACITY: usize = 10_000;

/// One marker as the API returns it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Marker {
    /// 1-based, unique for the life of the process.
    pub id: u64,
    /// Stream seconds of the first frame that shows the event.
    pub time: f64,
    /// "Marker N".
    pub(crate) text: String,
    /// UTC instant of that frame: stream anchor + `time` (RFC 3339, milliseconds).
    pub program_date_time: String,
    /// Exact stream time (not serialised; the playlist writer uses it).
    #[serde(skip)]
    pub(crate) at: StreamTime,
    /// The event's length, for DATERANGE's DURATION.
    #[serde(skip)]
    pub(crate) duration: Duration90k,
}

/// Append-only, bounded marker list behind a lock.
#[derive(Debug)]
pub struct MarkerStore {
    inner: RwLock<Inner>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Inner {
    markers: VecDeque<Marker>,
    next_id: u64,
}

impl Default for MarkerStore {
    fn default() -> Self {
        MarkerStore::new(DEFAULT_MARKER_CAPACITY)
    }
}

impl MarkerStore {
    pub(crate) fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "marker store capacity must be positive");
        MarkerStore {
            inner: RwLock::new(Inner {
                markers: VecDeque::new(),
                next_id: 1,
            }),
            capacity,
        }
    }

    /// Records an event that starts at stream time `at` and lasts `duration`.
    pub(crate) fn push(&self, at: StreamTime, duration: Duration90k, anchor: WallClock) -> Marker {
        let mut inner = self.inner.write().expect("marker store lock poisoned");
        let id = inner.next_id;
        inner.next_id += 1;
        let marker = Marker {
            id,
            time: at.as_secs_f64(),
            text: format!("Marker {id}"),
            program_date_time: anchor.at(at).to_rfc3339(),
            at,
            duration,
        };
        if inner.markers.len() == self.capacity {
            inner.markers.pop_front();
        }
        inner.markers.push_back(marker.clone());
        marker
    }

    /// Markers with `time > ts_start` (all when `None`), oldest first.
    pub fn since(&self, ts_start: Option<f64>) -> Vec<Marker> {
        let inner = self.inner.read().expect("marker store lock poisoned");
        match ts_start {
            None => inner.markers.iter().cloned().collect(),
            Some(s) => inner
                .markers
                .iter()
                .filter(|m| m.time > s)
                .cloned()
                .collect(),
        }
    }

    /// Markers with an id above `id`, oldest first (ids increase with time).
    pub(crate) fn after_id(&self, id: u64) -> Vec<Marker> {
        let inner = self.inner.read().expect("marker store lock poisoned");
        let newer = inner.markers.iter().rev().take_while(|m| m.id > id).count();
        inner
            .markers
            .iter()
            .skip(inner.markers.len() - newer)
            .cloned()
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.inner
            .read()
            .expect("marker store lock poisoned")
            .markers
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_numbers_and_bounds() {
        let s = MarkerStore::new(2);
        let a = WallClock::from_unix_millis(0);
        let two = Duration90k::from_secs(2);
        s.push(StreamTime::ZERO + Duration90k::from_secs(1), two, a);
        s.push(StreamTime::ZERO + two, two, a);
        let m = s.push(StreamTime::ZERO + Duration90k::from_secs(3), two, a);
        assert_eq!(m.text, "Marker 3");
        assert_eq!(m.program_date_time, "1970-01-01T00:00:03.000Z");
        let all = s.since(None);
        assert_eq!(all.iter().map(|m| m.id).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(s.since(Some(2.0)).len(), 1);
        assert_eq!(
            s.after_id(2).iter().map(|m| m.id).collect::<Vec<_>>(),
            vec![3]
        );
        assert_eq!(s.after_id(0).len(), 2);
        assert!(s.after_id(3).is_empty());
        let json = serde_json::to_value(&all[0]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"id": 2, "time": 2.0, "text": "Marker 2", "program_date_time": "1970-01-01T00:00:02.000Z"})
        );
    }
}
