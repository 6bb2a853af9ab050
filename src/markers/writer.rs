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
use tracing::info;

use super::log::{self, AppendError, MarkerLog};
use super::{Marker, MarkerStore};
use crate::clock::StreamClock;
use crate::error::{Error, ErrorKind};
use crate::overlay::Timecode;
use crate::telemetry::{warn_limited, LogLimit, StreamMetrics};
use crate::time::{Duration90k, StreamTime};

/// Posted requests that may wait in the inbox; a full inbox answers `503` (posters retry).
pub(crate) const INBOX_CAPACITY: usize = 1024;
/// Room in the inbox beyond [`INBOX_CAPACITY`] that only the generator may use, so posters
/// that fill the inbox never crowd out a built-in event.
pub(crate) const GENERATOR_RESERVE: usize = 256;
/// Most requests committed with one sync.
const MAX_BATCH: usize = 256;

/// What the writer needs of the state it shares with the rest of the process: implemented by
/// `state::Shared`, which stands above the markers (docs/architecture.md), so the writer names
/// only this.
pub(crate) trait Board: Send + Sync {
    /// The markers the server lists.
    fn markers(&self) -> &MarkerStore;
    /// Tells the event-stream subscribers (`GET /markers/events`) of a new marker; having none
    /// is fine.
    fn announce(&self, m: &Marker);
    /// `n` built-in markers could not be written.
    fn generator_markers_lost(&self, n: u64);
    /// The writer finished `n` generator markers (saved, or refused by the disk).
    fn generator_markers_finished(&self, n: u64);
    /// `slot` if a frame exists there, else the first slot after its gap.
    fn existing_slot(&self, slot: u64) -> u64;
    /// The stream's series: markers by source, failed writes of the log.
    fn metrics(&self) -> &StreamMetrics {
        StreamMetrics::detached()
    }
}
/// Generator markers kept for another try after the disk refused them; beyond, they are lost
/// (counted and logged).
const RETRY_CAPACITY: usize = 1024;
/// How long the writer waits before trying refused generator markers again.
const RETRY_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

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
    shared: Arc<dyn Board>,
    clock: StreamClock,
    next_id: u64,
    /// Generator markers the disk refused, for another try.
    retry: std::collections::VecDeque<NewMarker>,
    /// The log could not be repaired after a failed write: nothing more is accepted.
    broken: bool,
    /// Warnings of failed writes (a full disk refuses every batch).
    write_errors_log: LogLimit,
}

impl<L: MarkerLog> MarkerWriter<L> {
    /// `next_id`: above every id the log ever held.
    pub(crate) fn new(log: L, shared: Arc<dyn Board>, clock: StreamClock, next_id: u64) -> Self {
        MarkerWriter {
            log,
            shared,
            clock,
            next_id: next_id.max(1),
            retry: std::collections::VecDeque::new(),
            broken: false,
            write_errors_log: LogLimit::new(std::time::Duration::from_secs(10)),
        }
    }

    /// Reads the store back (compacting it when long), puts its markers in
    /// [`Board::markers`] and numbers new markers after every id it ever held.
    pub(crate) fn open(
        mut log: L,
        shared: Arc<dyn Board>,
        clock: StreamClock,
    ) -> std::io::Result<Self> {
        let loaded = log::load_and_compact(&mut log)?;
        let next_id = loaded.next_id();
        if !loaded.markers.is_empty() {
            info!(
                markers = loaded.markers.len(),
                next_id, "markers of earlier runs read back"
            );
        }
        shared.markers().replace(loaded.markers);
        Ok(MarkerWriter::new(log, shared, clock, next_id))
    }

    /// Serves the inbox until every sender is gone (the pipeline closes it when the stream
    /// ends), then returns; every request taken from it has been answered. Generator markers
    /// the disk refused are tried again every [`RETRY_EVERY`] and with every later batch.
    pub(crate) fn run(mut self, inbox: Receiver<Request>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        loop {
            let first = if self.retry.is_empty() {
                inbox.recv().ok()
            } else {
                match inbox.recv_timeout(RETRY_EVERY) {
                    Ok(r) => Some(r),
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                        // One last try at the end of the stream.
                        self.commit(&mut batch);
                        self.give_up_retries("the stream ended");
                        return;
                    }
                }
            };
            match first {
                Some(r) => batch.push(r),
                None if self.retry.is_empty() => return,
                None => {}
            }
            while batch.len() < MAX_BATCH {
                match inbox.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            self.commit(&mut batch);
        }
    }

    /// Counts and logs the generator markers still waiting for the disk as lost.
    fn give_up_retries(&mut self, why: &str) {
        if !self.retry.is_empty() {
            let n = self.retry.len() as u64;
            self.shared.generator_markers_lost(n);
            tracing::error!(
                markers = n,
                reason = why,
                "built-in markers lost: the disk refused them"
            );
            self.retry.clear();
        }
    }

    fn make(&self, id: u64, new: NewMarker) -> Marker {
        // The first frame at or after the instant that exists: an instant in the gap between
        // two runs or on a dropped slot goes to the frame after the gap.
        let slot = self
            .shared
            .existing_slot(self.clock.slot_at_or_after(new.at));
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

    /// Decides, writes, syncs, then publishes and answers one batch (after the generator
    /// markers waiting for another try).
    fn commit(&mut self, batch: &mut Vec<Request>) {
        // Nobody waits for the generator's markers but the segmenter, through this count (a
        // marker that has to be tried again is finished for it: it joins the playlist later,
        // as a posted marker for an older frame does).
        let generated = batch.iter().filter(|r| r.reply.is_none()).count() as u64;
        let retried = self.retry.drain(..).map(|new| Request { new, reply: None });
        let mut all: Vec<Request> = retried.collect();
        all.append(batch);
        self.commit_batch(&mut all);
        self.shared.generator_markers_finished(generated);
    }

    fn commit_batch(&mut self, batch: &mut Vec<Request>) {
        if self.broken {
            let mut lost = 0;
            for req in batch.drain(..) {
                match req.reply {
                    Some(reply) => {
                        let _ = reply.send(Err(broken_error()));
                    }
                    None => lost += 1,
                }
            }
            if lost > 0 {
                self.shared.generator_markers_lost(lost);
                tracing::error!(
                    markers = lost,
                    "built-in markers lost: the marker log is broken"
                );
            }
            return;
        }
        let mut made: Vec<(Marker, Option<Reply>)> = Vec::new();
        // The generator's requests as they came, for another try if the disk refuses them.
        let mut generated: Vec<NewMarker> = Vec::new();
        // Repeats of a key made earlier in this batch: (index into `made`, reply).
        let mut repeats: Vec<(usize, Reply)> = Vec::new();
        for req in batch.drain(..) {
            if let Some(key) = &req.new.key {
                if let Some(m) = self.shared.markers().by_key(key) {
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
            if req.reply.is_none() {
                generated.push(req.new.clone());
            }
            let m = self.make(id, req.new);
            made.push((m, req.reply));
        }
        if made.is_empty() {
            return;
        }
        let markers: Vec<Marker> = made.iter().map(|(m, _)| m.clone()).collect();
        if let Err(e) = self.log.append(&markers) {
            // Not on disk: not acknowledged, not shown. The ids are simply skipped.
            self.shared.metrics().write_errors.increment(1);
            warn_limited!(self.write_errors_log, error = %e, markers = made.len(), "markers not saved");
            let broken = matches!(e, AppendError::Broken(_));
            if broken {
                tracing::error!(error = %e, "the marker log is broken: no more markers are accepted");
                self.broken = true;
                self.shared.generator_markers_lost(generated.len() as u64);
            } else {
                let room = RETRY_CAPACITY.saturating_sub(self.retry.len());
                if generated.len() > room {
                    let lost = (generated.len() - room) as u64;
                    self.shared.generator_markers_lost(lost);
                    tracing::error!(
                        markers = lost,
                        "built-in markers lost: too many wait for the disk"
                    );
                }
                self.retry.extend(generated.into_iter().take(room));
            }
            let refuse = || {
                Err(if broken {
                    broken_error()
                } else {
                    Error::new(
                        ErrorKind::Unavailable,
                        "the marker could not be saved (the server's disk refused the write); retry later",
                    )
                })
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
        let metrics = self.shared.metrics();
        for (m, _) in &made {
            metrics.marker(&m.source);
            self.shared.markers().insert(m.clone());
            self.shared.announce(m);
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

fn broken_error() -> Error {
    Error::new(
        ErrorKind::Unavailable,
        "the marker log is damaged (a failed write could not be taken back); markers are no \
         longer accepted until the streamer is restarted",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::WallClock;
    use crate::state::Shared;
    use crate::time::FrameRate;
    use std::io;
    use std::sync::Mutex;

    /// How the in-memory store answers an append.
    #[derive(Clone, Copy, Debug, Default, PartialEq)]
    enum Fail {
        #[default]
        No,
        Refuse,
        Break,
    }

    /// The marker store in memory (the [`MarkerLog`] trait's second implementation): markers
    /// and a high-water mark, and appends that can be told to fail.
    #[derive(Clone, Default)]
    struct MemLog {
        markers: Arc<Mutex<Vec<Marker>>>,
        next_id: Arc<Mutex<u64>>,
        fail: Arc<Mutex<Fail>>,
    }

    impl MarkerLog for MemLog {
        fn load(&mut self) -> io::Result<log::Loaded> {
            let markers = self.markers.lock().unwrap().clone();
            let lines = markers.len();
            let max_id = markers
                .iter()
                .map(|m| m.id)
                .max()
                .unwrap_or(0)
                .max(self.next_id.lock().unwrap().saturating_sub(1));
            Ok(log::Loaded {
                markers,
                lines,
                max_id,
                ..log::Loaded::default()
            })
        }

        fn append(&mut self, markers: &[Marker]) -> Result<(), AppendError> {
            match *self.fail.lock().unwrap() {
                Fail::No => {}
                Fail::Refuse => return Err(AppendError::Refused(io::Error::other("disk full"))),
                Fail::Break => return Err(AppendError::Broken(io::Error::other("EIO"))),
            }
            self.markers.lock().unwrap().extend_from_slice(markers);
            Ok(())
        }

        fn compact(&mut self, keep: &[Marker], next_id: u64) -> io::Result<()> {
            *self.markers.lock().unwrap() = keep.to_vec();
            *self.next_id.lock().unwrap() = next_id;
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
        assert_eq!(*log.markers.lock().unwrap(), vec![m.clone(), m3.clone()]);
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
        *log.fail.lock().unwrap() = Fail::Refuse;
        let (a, mut ra) = request(new(0, Some("k")));
        w.commit(&mut vec![a]);
        let e = ra.try_recv().unwrap().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert_eq!(shared.markers.len(), 0);
        *log.fail.lock().unwrap() = Fail::No;
        let (b, mut rb) = request(new(0, Some("k")));
        w.commit(&mut vec![b]);
        assert!(matches!(rb.try_recv().unwrap(), Ok(Accepted::Created(m)) if m.id == 2));
    }

    fn generator(at: u64) -> Request {
        Request {
            new: NewMarker {
                at: StreamTime(at),
                length: Duration90k::from_secs(2),
                text: None,
                source: crate::markers::GENERATOR_SOURCE.into(),
                key: None,
            },
            reply: None,
        }
    }

    /// The writer over the in-memory store: it reads back what the store holds and numbers
    /// after the store's high-water mark (ids of compacted-away markers are not reused).
    #[test]
    fn open_reads_the_store_back_and_numbers_after_its_high_water_mark() {
        let shared = Arc::new(Shared::default());
        let mut log = MemLog::default();
        log.compact(&[crate::markers::tests::marker(4, 30, None)], 9)
            .unwrap();
        let mut w = MarkerWriter::open(log.clone(), shared.clone(), clock()).unwrap();
        assert_eq!(shared.markers.len(), 1);
        let (a, mut ra) = request(new(0, None));
        w.commit(&mut vec![a]);
        assert!(matches!(ra.try_recv().unwrap(), Ok(Accepted::Created(m)) if m.id == 9));
        assert_eq!(log.markers.lock().unwrap().len(), 2);
    }

    /// A built-in marker the disk refuses is not lost: it is tried again and saved once the
    /// disk takes it; nobody waits for it meanwhile.
    #[test]
    fn a_refused_generator_marker_is_retried_until_saved() {
        let shared = Arc::new(Shared::default());
        let log = MemLog::default();
        let mut w = MarkerWriter::new(log.clone(), shared.clone(), clock(), 1);
        *log.fail.lock().unwrap() = Fail::Refuse;
        w.commit(&mut vec![generator(3003)]);
        assert_eq!(shared.markers.len(), 0);
        assert_eq!(w.retry.len(), 1);
        // Still failing: kept.
        w.commit(&mut Vec::new());
        assert_eq!(w.retry.len(), 1);
        *log.fail.lock().unwrap() = Fail::No;
        let (a, mut ra) = request(new(6006, None));
        w.commit(&mut vec![a]);
        assert!(matches!(ra.try_recv().unwrap(), Ok(Accepted::Created(_))));
        let saved = log.markers.lock().unwrap().clone();
        assert_eq!(saved.len(), 2);
        assert_eq!(saved[0].source, "generator");
        assert_eq!(saved[0].at, StreamTime(3003));
        assert!(w.retry.is_empty());
        assert_eq!(shared.generator_markers_lost_count(), 0);
    }

    /// The retry also runs on its own, with no new request to carry it.
    #[test]
    fn the_writer_thread_retries_on_a_timer() {
        let shared = Arc::new(Shared::default());
        let log = MemLog::default();
        *log.fail.lock().unwrap() = Fail::Refuse;
        let w = MarkerWriter::new(log.clone(), shared.clone(), clock(), 1);
        let (tx, rx) = crossbeam_channel::bounded(8);
        let t = std::thread::spawn(move || w.run(rx));
        tx.send(generator(3003)).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert_eq!(shared.markers.len(), 0);
        *log.fail.lock().unwrap() = Fail::No;
        let deadline = std::time::Instant::now() + RETRY_EVERY * 3;
        while shared.markers.len() == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(shared.markers.len(), 1, "saved by the timed retry");
        drop(tx);
        t.join().unwrap();
    }

    /// A broken log: posters are told markers are no longer accepted, built-in markers are
    /// counted as lost, nothing more is appended.
    #[test]
    fn a_broken_log_stops_the_writer_with_a_clear_error() {
        let shared = Arc::new(Shared::default());
        let log = MemLog::default();
        let mut w = MarkerWriter::new(log.clone(), shared.clone(), clock(), 1);
        *log.fail.lock().unwrap() = Fail::Break;
        let (a, mut ra) = request(new(0, None));
        w.commit(&mut vec![a, generator(3003)]);
        let e = ra.try_recv().unwrap().unwrap_err();
        assert!(e.message().contains("no longer accepted"), "{e}");
        assert_eq!(shared.generator_markers_lost_count(), 1);
        *log.fail.lock().unwrap() = Fail::No;
        let (b, mut rb) = request(new(0, None));
        w.commit(&mut vec![b, generator(6006)]);
        assert!(rb.try_recv().unwrap().is_err(), "still refused");
        assert!(log.markers.lock().unwrap().is_empty());
        assert_eq!(shared.generator_markers_lost_count(), 2);
    }

    /// Posters that fill the inbox get 503 (Busy); the generator still has its reserve.
    #[test]
    fn posters_cannot_take_the_generators_reserve() {
        let shared = Shared::default();
        let (tx, _rx) = crossbeam_channel::bounded(INBOX_CAPACITY + GENERATOR_RESERVE);
        shared.set_marker_inbox(Some(tx));
        for _ in 0..INBOX_CAPACITY {
            shared.submit_marker(request(new(0, None)).0).unwrap();
        }
        assert_eq!(
            shared.submit_marker(request(new(0, None)).0),
            Err(crate::state::SubmitError::Busy)
        );
        for _ in 0..GENERATOR_RESERVE {
            shared.submit_generator_marker(generator(0)).unwrap();
        }
        // The reserve is spent: that one is lost, and counted.
        assert!(shared.submit_generator_marker(generator(0)).is_err());
        assert_eq!(shared.generator_markers_lost_count(), 1);
    }

    /// A marker in the gap between two runs, or on a slot the source dropped, goes to the next
    /// frame that exists, not to a frame slot that was never encoded.
    #[test]
    fn a_marker_in_a_gap_snaps_to_the_next_frame_that_exists() {
        let shared = Arc::new(Shared::default());
        let c = clock();
        // The previous run ended before slot 300, this one starts at slot 330; slot 400 was
        // dropped, and 402-404.
        shared.add_frame_gap(300, 330);
        shared.add_frame_gap(400, 401);
        shared.add_frame_gap(402, 405);
        let mut w = MarkerWriter::new(MemLog::default(), shared.clone(), c, 1);
        let slot_of = |w: &mut MarkerWriter<MemLog>, at: StreamTime| {
            let (r, mut rx) = request(NewMarker { at, ..new(0, None) });
            w.commit(&mut vec![r]);
            let Ok(Accepted::Created(m)) = rx.try_recv().unwrap() else {
                panic!("created")
            };
            (m.at, m.timecode)
        };
        let at = |slot| c.rate.time_of(slot);
        assert_eq!(
            slot_of(&mut w, at(299)).0,
            at(299),
            "before the gap: its own frame"
        );
        assert_eq!(
            slot_of(&mut w, at(300)).0,
            at(330),
            "in the gap between runs"
        );
        assert_eq!(
            slot_of(&mut w, at(315) + Duration90k(1)).0,
            at(330),
            "between two slots of the gap"
        );
        assert_eq!(slot_of(&mut w, at(400)).0, at(401), "a dropped slot");
        let (t, tc) = slot_of(&mut w, at(403));
        assert_eq!(t, at(405));
        assert_eq!(tc, Timecode::from_frame(405, c.rate).to_string());
    }
}
