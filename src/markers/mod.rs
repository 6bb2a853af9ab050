//! Timeline markers: events on the stream clock, from the generator (the encoder thread, on the
//! first frame of each event that reaches it) and from the outside world (`POST /markers`, a
//! detector such as `hls-detect`).
//!
//! ```text
//!  encoder thread --+                      +--> MarkerStore (memory: API, playlist, page)
//!                   +--> marker writer ---+--> NAME.markers.jsonl (append, fsync)
//!  POST /markers ---+    (one thread)      +--> SSE subscribers (broadcast)
//! ```
//! Every marker goes through one writer thread ([`writer`]): it gives the marker its id, appends
//! its line to the log and syncs it to disk, and only then puts it in the [`MarkerStore`] and
//! tells the subscribers. A `POST` is answered after that, so an acknowledged marker is on disk,
//! and the encoder never waits for a disk (it hands its markers over without blocking).
//! On start the log is read back ([`log::load`]): markers of earlier runs are back in the
//! API, the page and, while their time is inside the window, the playlist.

pub(crate) mod log;
pub(crate) mod writer;

use std::collections::{HashMap, VecDeque};
use std::sync::RwLock;

use serde::Serialize;

use crate::time::{Duration90k, StreamTime};

/// How many markers the store keeps in memory (and the API serves); the oldest go first. At one
/// event every 20 s this is over two days of markers, far beyond any DVR window. The log on disk
/// keeps every marker until it is compacted at start ([`log::COMPACT_ABOVE`]).
pub(crate) const DEFAULT_MARKER_CAPACITY: usize = 10_000;

/// Longest marker text, in characters.
pub(crate) const MAX_TEXT_CHARS: usize = 200;
/// Longest `source` name, in characters.
pub(crate) const MAX_SOURCE_CHARS: usize = 64;
/// Longest idempotency `key`, in characters.
pub(crate) const MAX_KEY_CHARS: usize = 128;

/// `source` of the generator's own markers.
pub(crate) const GENERATOR_SOURCE: &str = "generator";

/// One marker as the API returns it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Marker {
    /// 1-based, never reused for the life of the stream (across restarts, until `--fresh`).
    pub id: u64,
    /// Stream seconds of the marker's frame: seconds since the stream's first frame ever.
    pub time: f64,
    pub text: String,
    /// UTC instant of that frame: the stream's epoch + `time` (RFC 3339, milliseconds).
    pub program_date_time: String,
    /// `HH:MM:SS:FF`: exactly what is burnt into that frame.
    pub timecode: String,
    /// Who made it: `generator` for the built-in events, else the poster's `source`.
    pub source: String,
    /// Length of the event in seconds (DATERANGE `DURATION`).
    pub duration: f64,
    /// Exact stream time of the frame (the playlist writer uses it).
    #[serde(skip)]
    pub(crate) at: StreamTime,
    /// Exact length.
    #[serde(skip)]
    pub(crate) length: Duration90k,
    /// The poster's idempotency key, if it gave one.
    #[serde(skip)]
    pub(crate) key: Option<String>,
}

/// The markers in memory: bounded, in id order, with an index of idempotency keys. Only the
/// marker writer inserts; the server and the publisher read.
#[derive(Debug)]
pub struct MarkerStore {
    inner: RwLock<Inner>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Inner {
    /// Increasing ids.
    markers: VecDeque<Marker>,
    /// Key -> id, for the markers in `markers`.
    keys: HashMap<String, u64>,
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
            inner: RwLock::new(Inner::default()),
            capacity,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().expect("marker store lock poisoned")
    }

    /// Adds a marker whose id is above every id in the store; the oldest goes when full.
    pub(crate) fn insert(&self, marker: Marker) {
        let mut inner = self.inner.write().expect("marker store lock poisoned");
        debug_assert!(inner.markers.back().is_none_or(|m| m.id < marker.id));
        if inner.markers.len() == self.capacity {
            if let Some(old) = inner.markers.pop_front() {
                if let Some(k) = &old.key {
                    inner.keys.remove(k);
                }
            }
        }
        if let Some(k) = &marker.key {
            inner.keys.insert(k.clone(), marker.id);
        }
        inner.markers.push_back(marker);
    }

    /// Replaces the whole contents (the log read back at start).
    pub(crate) fn replace(&self, markers: impl IntoIterator<Item = Marker>) {
        let mut inner = self.inner.write().expect("marker store lock poisoned");
        inner.markers.clear();
        inner.keys.clear();
        drop(inner);
        for m in markers {
            self.insert(m);
        }
    }

    /// The marker created with idempotency key `key`.
    pub(crate) fn by_key(&self, key: &str) -> Option<Marker> {
        let inner = self.read();
        let id = *inner.keys.get(key)?;
        let i = inner.markers.binary_search_by_key(&id, |m| m.id).ok()?;
        Some(inner.markers[i].clone())
    }

    /// Markers with `time > ts_start` (all when `None`), in time order (ties by id). Markers
    /// may arrive out of time order: a detector posts a frame it saw seconds ago.
    pub fn since(&self, ts_start: Option<f64>) -> Vec<Marker> {
        let mut out: Vec<Marker> = {
            let inner = self.read();
            inner
                .markers
                .iter()
                .filter(|m| ts_start.is_none_or(|s| m.time > s))
                .cloned()
                .collect()
        };
        out.sort_by(|a, b| a.at.cmp(&b.at).then(a.id.cmp(&b.id)));
        out
    }

    /// One page of `GET /markers`: the markers with `time > ts_start` (all when `None`) and
    /// an id above `after_id`, at most `limit` of them, in time order (ties by id). With
    /// `after_id` the page holds the lowest such ids (paging forward); without, the newest.
    /// Also returns the `after_id` of the next page when more markers match beyond this one.
    pub(crate) fn page(
        &self,
        ts_start: Option<f64>,
        after_id: Option<u64>,
        limit: usize,
    ) -> (Vec<Marker>, Option<u64>) {
        let (mut out, next) = {
            let inner = self.read();
            let matching = |m: &&Marker| {
                ts_start.is_none_or(|s| m.time > s) && after_id.is_none_or(|a| m.id > a)
            };
            match after_id {
                Some(_) => {
                    let mut it = inner.markers.iter().filter(matching);
                    let page: Vec<Marker> = it.by_ref().take(limit).cloned().collect();
                    let more = it.next().is_some();
                    let next = page.last().map(|m| m.id).filter(|_| more);
                    (page, next)
                }
                None => {
                    let mut page: Vec<Marker> = inner
                        .markers
                        .iter()
                        .rev()
                        .filter(matching)
                        .take(limit)
                        .cloned()
                        .collect();
                    page.reverse();
                    (page, None)
                }
            }
        };
        out.sort_by(|a, b| a.at.cmp(&b.at).then(a.id.cmp(&b.id)));
        (out, next)
    }

    /// Markers with an id above `id`, in id order (the order they were accepted).
    pub(crate) fn after_id(&self, id: u64) -> Vec<Marker> {
        self.after_id_at_most(id, usize::MAX)
    }

    /// The first `limit` markers with an id above `id`, in id order.
    pub(crate) fn after_id_at_most(&self, id: u64, limit: usize) -> Vec<Marker> {
        let inner = self.read();
        let newer = inner.markers.iter().rev().take_while(|m| m.id > id).count();
        inner
            .markers
            .iter()
            .skip(inner.markers.len() - newer)
            .take(limit)
            .cloned()
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.read().markers.len()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A marker as the writer would make it, at 30 fps from epoch 0.
    pub(crate) fn marker(id: u64, slot: u64, key: Option<&str>) -> Marker {
        let rate = crate::time::FrameRate::new(30, 1).unwrap();
        let mut m = marker_at(
            id,
            rate.time_of(slot),
            Duration90k::from_secs(2),
            crate::clock::WallClock::from_unix_millis(0),
        );
        m.key = key.map(str::to_owned);
        m
    }

    /// A generator marker at `at` (on the 30 fps grid) of a stream whose epoch is `epoch`.
    pub(crate) fn marker_at(
        id: u64,
        at: StreamTime,
        length: Duration90k,
        epoch: crate::clock::WallClock,
    ) -> Marker {
        let rate = crate::time::FrameRate::new(30, 1).unwrap();
        let slot = rate.first_frame_at_or_after(at);
        Marker {
            id,
            time: at.as_secs_f64(),
            text: format!("Marker {id}"),
            program_date_time: epoch.at(at).to_rfc3339(),
            timecode: crate::overlay::Timecode::from_frame(slot, rate).to_string(),
            source: GENERATOR_SOURCE.into(),
            duration: length.as_secs_f64(),
            at,
            length,
            key: None,
        }
    }

    #[test]
    fn bounded_in_id_order_with_keys() {
        let s = MarkerStore::new(2);
        s.insert(marker(1, 30, Some("a")));
        s.insert(marker(2, 60, None));
        s.insert(marker(3, 90, Some("c")));
        assert_eq!(
            s.since(None).iter().map(|m| m.id).collect::<Vec<_>>(),
            vec![2, 3]
        );
        // The evicted marker's key is forgotten with it; the others resolve.
        assert!(s.by_key("a").is_none());
        assert_eq!(s.by_key("c").unwrap().id, 3);
        assert_eq!(s.since(Some(2.0)).len(), 1);
        assert_eq!(
            s.after_id(2).iter().map(|m| m.id).collect::<Vec<_>>(),
            vec![3]
        );
        assert_eq!(s.after_id(0).len(), 2);
        assert!(s.after_id(3).is_empty());
        let json = serde_json::to_value(s.since(None)[0].clone()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"id": 2, "time": 2.0, "text": "Marker 2",
                "program_date_time": "1970-01-01T00:00:02.000Z", "timecode": "00:00:02:00",
                "source": "generator", "duration": 2.0})
        );
    }

    /// A marker posted for an earlier frame comes after it in id order but before it in time.
    #[test]
    fn since_is_in_time_order() {
        let s = MarkerStore::new(10);
        s.insert(marker(1, 90, None));
        s.insert(marker(2, 30, None));
        s.insert(marker(3, 60, None));
        let ids: Vec<u64> = s.since(None).iter().map(|m| m.id).collect();
        assert_eq!(ids, vec![2, 3, 1]);
        let ids: Vec<u64> = s.after_id(1).iter().map(|m| m.id).collect();
        assert_eq!(ids, vec![2, 3]);
    }

    /// Paging: forward by `after_id` in id order, the newest without it; time order inside.
    #[test]
    fn pages_forward_by_id_or_the_newest() {
        let s = MarkerStore::new(10);
        for (id, slot) in [(1, 90), (2, 30), (3, 60), (4, 120), (5, 150)] {
            s.insert(marker(id, slot, None));
        }
        let ids = |v: Vec<Marker>| v.iter().map(|m| m.id).collect::<Vec<_>>();
        let (p, next) = s.page(None, Some(0), 2);
        assert_eq!((ids(p), next), (vec![2, 1], Some(2)));
        let (p, next) = s.page(None, Some(2), 2);
        assert_eq!((ids(p), next), (vec![3, 4], Some(4)));
        let (p, next) = s.page(None, Some(4), 2);
        assert_eq!((ids(p), next), (vec![5], None));
        let (p, next) = s.page(None, None, 2);
        assert_eq!((ids(p), next), (vec![4, 5], None));
        let (p, _) = s.page(Some(2.5), None, 10);
        assert_eq!(ids(p), vec![1, 4, 5]);
        assert_eq!(ids(s.after_id_at_most(1, 2)), vec![2, 3]);
    }
}
