//! The marker writer: the one thread that accepts markers. It takes requests from a bounded
//! inbox (the encoder thread and `POST /markers` put them there without blocking), gives each
//! new marker the next id, appends the whole batch to the log and syncs it (one `fdatasync` per
//! batch, however many requests queued up meanwhile), and only then stores the markers, tells
//! the subscribers (`GET /markers/events`) and answers the posters.
//!
//! Being one thread, it is also where idempotency keys are decided: a request whose key is
//! already known, or that repeats a key earlier in the same batch, gets the first marker back.

use std::sync::Arc;

use crossbeam_channel::Receiver;
use tokio::sync::oneshot;
use tracing::{info, warn};

use super::log::{self, MarkerLog};
use super::Marker;
use crate::clock::StreamClock;
use crate::error::{Error, ErrorKind};
use crate::overlay::Timecode;
use crate::state::Shared;
use crate::time::{Duration90k, StreamTime};

/// Requests that may wait in the inbox; a full inbox answers `503` (posters retry).
pub(crate) const INBOX_CAPACITY: usize = 1024;
/// Most requests committed with one sync.
const MAX_BATCH: usize = 256;

/// A marker to be made: where, how long, what it says, who sent it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct NewMarker {
    /// Any stream time: the marker snaps to the first frame at or after it.
    pub(crate) at: StreamTime,
    pub(crate) length: Duration90k,
    /// `None`: "Marker N", N its id (the generator's markers).
    pub(crate) text: Option<String>,
    pub(crate) source: String,
    pub(crate) key: Option<String>,
}

/// How a request ended.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Accepted {
    /// A new marker, on disk.
    Created(Marker),
    /// The key was known: the marker it made then.
    Existing(Marker),
}

pub(crate) type Reply = oneshot::Sender<Result<Accepted, Error>>;

/// One request in the inbox; `reply` is `None` when nobody waits (the generator).
pub(crate) struct Request {
    pub(crate) new: NewMarker,
    pub(crate) reply: Option<Reply>,
}

/// The writer's state; [`MarkerWriter::run`] is its thread's body.
pub(crate) struct MarkerWriter<L: MarkerLog> {
    log: L,
    shared: Arc<Shared>,
    clock: StreamClock,
    next_id: u64,
    lines: Vec<u8>,
}

impl<L: MarkerLog> MarkerWriter<L> {
    /// `next_id`: above every id the log ever held.
    pub(crate) fn new(log: L, shared: Arc<Shared>, clock: StreamClock, next_id: u64) -> Self {
        MarkerWriter {
            log,
            shared,
            clock,
            next_id: next_id.max(1),
            lines: Vec::with_capacity(64 * 1024),
        }
    }

    /// Serves the inbox until every sender is gone (the pipeline closes it when the stream
    /// ends), then returns; every request taken from it has been answered.
    pub(crate) fn run(mut self, inbox: Receiver<Request>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while let Ok(first) = inbox.recv() {
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match inbox.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            self.commit(&mut batch);
        }
    }

    fn make(&self, id: u64, new: NewMarker) -> Marker {
        let slot = self.clock.slot_at_or_after(new.at);
        let at = self.clock.rate.time_of(slot);
        Marker {
            id,
            time: at.as_secs_f64(),
            text: new.text.unwrap_or_else(|| format!("Marker {id}")),
            program_date_time: self.clock.program_date_time(at),
            timecode: Timecode::from_frame(slot, self.clock.rate).to_string(),
            source: new.source,
            duration: new.length.as_secs_f64(),
            at,
            length: new.length,
            key: new.key,
        }
    }

    /// Decides, writes, syncs, then publishes and answers one batch.
    fn commit(&mut self, batch: &mut Vec<Request>) {
        // Nobody waits for the generator's markers but the segmenter, through this count.
        let generated = batch.iter().filter(|r| r.reply.is_none()).count() as u64;
        self.commit_batch(batch);
        self.shared.generator_markers_finished(generated);
    }

    fn commit_batch(&mut self, batch: &mut Vec<Request>) {
        let mut made: Vec<(Marker, Option<Reply>)> = Vec::new();
        // Repeats of a key made earlier in this batch: (index into `made`, reply).
        let mut repeats: Vec<(usize, Reply)> = Vec::new();
        self.lines.clear();
        for req in batch.drain(..) {
            if let Some(key) = &req.new.key {
                if let Some(m) = self.shared.markers.by_key(key) {
                    if let Some(reply) = req.reply {
                        let _ = reply.send(Ok(Accepted::Existing(m)));
                    }
                    continue;
                }
                if let Some(i) = made.iter().position(|(m, _)| m.key.as_deref() == Some(key)) {
                    if let Some(reply) = req.reply {
                        repeats.push((i, reply));
                    }
                    continue;
                }
            }
            let id = self.next_id;
            self.next_id += 1;
            let m = self.make(id, req.new);
            log::write_line(&m, &mut self.lines);
            made.push((m, req.reply));
        }
        if made.is_empty() {
            return;
        }
        if let Err(e) = self.log.append(&self.lines) {
            // Not on disk: not acknowledged, not shown. The ids are simply skipped.
            warn!(error = %e, markers = made.len(), "markers not saved");
            let refuse = || {
                Err(Error::new(
                    ErrorKind::Unavailable,
                    "the marker could not be saved (the server's disk refused the write); retry later",
                ))
            };
            for (_, reply) in made {
                if let Some(reply) = reply {
                    let _ = reply.send(refuse());
                }
            }
            for (_, reply) in repeats {
                let _ = reply.send(refuse());
            }
            return;
        }
        for (m, _) in &made {
            self.shared.markers.insert(m.clone());
            // No subscriber is fine.
            let _ = self.shared.marker_events.send(m.clone());
            info!(id = m.id, time = m.time, source = %m.source, timecode = %m.timecode, "marker");
        }
        for (i, reply) in repeats {
            let _ = reply.send(Ok(Accepted::Existing(made[i].0.clone())));
        }
        for (m, reply) in made {
            if let Some(reply) = reply {
                let _ = reply.send(Ok(Accepted::Created(m)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::WallClock;
    use crate::time::FrameRate;
    use std::io;
    use std::sync::Mutex;

    /// A log in memory that can be told to fail.
    #[derive(Clone, Default)]
    struct MemLog {
        bytes: Arc<Mutex<Vec<u8>>>,
        fail: Arc<Mutex<bool>>,
    }

    impl MarkerLog for MemLog {
        fn append(&mut self, lines: &[u8]) -> io::Result<()> {
            if *self.fail.lock().unwrap() {
                return Err(io::Error::other("disk full"));
            }
            self.bytes.lock().unwrap().extend_from_slice(lines);
            Ok(())
        }
    }

    fn clock() -> StreamClock {
        StreamClock {
            epoch: WallClock::from_unix_millis(1_000_000),
            rate: FrameRate::new(30_000, 1001).unwrap(),
        }
    }

    fn new(at: u64, key: Option<&str>) -> NewMarker {
        NewMarker {
            at: StreamTime(at),
            length: Duration90k::ZERO,
            text: Some("door".into()),
            source: "test".into(),
            key: key.map(str::to_owned),
        }
    }

    fn request(n: NewMarker) -> (Request, oneshot::Receiver<Result<Accepted, Error>>) {
        let (tx, rx) = oneshot::channel();
        (
            Request {
                new: n,
                reply: Some(tx),
            },
            rx,
        )
    }

    #[test]
    fn snaps_numbers_logs_and_dedups_keys_within_and_across_batches() {
        let shared = Arc::new(Shared::default());
        let mut events = shared.marker_events.subscribe();
        let log = MemLog::default();
        let mut w = MarkerWriter::new(log.clone(), shared.clone(), clock(), 7);
        let (a, mut ra) = request(new(1, Some("k")));
        let (b, mut rb) = request(new(6006, Some("k")));
        let (c, mut rc) = request(new(6006, None));
        w.commit(&mut vec![a, b, c]);
        let Ok(Accepted::Created(m)) = ra.try_recv().unwrap() else {
            panic!("first is created")
        };
        // Tick 1 snaps to frame 1 (3003 ticks); 29.97 timecode of frame 1.
        assert_eq!(
            (m.id, m.at, m.timecode.as_str()),
            (7, StreamTime(3003), "00:00:00:01")
        );
        assert_eq!(
            rb.try_recv().unwrap().unwrap(),
            Accepted::Existing(m.clone())
        );
        let Ok(Accepted::Created(m3)) = rc.try_recv().unwrap() else {
            panic!("no key, new marker")
        };
        assert_eq!(m3.id, 8);
        let (d, mut rd) = request(new(9000, Some("k")));
        w.commit(&mut vec![d]);
        assert_eq!(
            rd.try_recv().unwrap().unwrap(),
            Accepted::Existing(m.clone())
        );
        let text = String::from_utf8(log.bytes.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert_eq!(
            log::load(text.as_bytes()).markers,
            vec![m.clone(), m3.clone()]
        );
        assert_eq!(shared.markers.len(), 2);
        assert_eq!(events.try_recv().unwrap(), m);
        assert_eq!(events.try_recv().unwrap(), m3);
        assert!(events.try_recv().is_err());
    }

    /// A failed write acknowledges nothing and shows nothing; the next write works.
    #[test]
    fn a_failed_sync_is_refused_and_nothing_is_shown() {
        let shared = Arc::new(Shared::default());
        let log = MemLog::default();
        let mut w = MarkerWriter::new(log.clone(), shared.clone(), clock(), 1);
        *log.fail.lock().unwrap() = true;
        let (a, mut ra) = request(new(0, Some("k")));
        w.commit(&mut vec![a]);
        let e = ra.try_recv().unwrap().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert_eq!(shared.markers.len(), 0);
        *log.fail.lock().unwrap() = false;
        let (b, mut rb) = request(new(0, Some("k")));
        w.commit(&mut vec![b]);
        assert!(matches!(rb.try_recv().unwrap(), Ok(Accepted::Created(m)) if m.id == 2));
    }
}
