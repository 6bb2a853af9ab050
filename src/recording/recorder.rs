//! Recording wired to the live path: the one database of an output directory
//! ([`Recordings`], opened once by [`open_store`]) and, per stream, the [`Recorder`] the
//! publisher drives.
//!
//! ```text
//! publisher (segmenter thread)            database thread (hls-db)
//! segment published  --try_call-->        insert (live), then sweep
//! R25 grace ended    --try_call-->        release (not live), delete row-less files, sweep
//! marker published   --try_call-->        retain the clip's segments until + clip retention
//!                                         sweep: continuous retention of this stream, then
//!                                         the directory's --storage-max (oldest first:
//!                                         continuous recording, then clips)
//! ```
//! The publisher never waits for the database: every call is queued without blocking
//! ([`DbHandle::try_call`]); a full queue loses the call (counted in [`Recorder::lost`] and
//! logged). A lost insert leaves a file without a row: it is deleted when its R25 grace ends,
//! as before recording existed. A lost release leaves a row live until the next start, whose
//! publisher releases every file the previous run no longer lists.
//!
//! Only files this program wrote are deleted: a row's file name must be exactly the segment
//! file of its stream and sequence, inside the output directory.
//!
//! # Reconciliation at start
//! [`Recorder::start`] (once the stream's publisher has accepted the directory, so a refused
//! restart touches nothing, and before the first segment): a row
//! whose file is gone is dropped (logged with a count); a segment file of ours with no row is
//! left to the live path's rules, that is deleted once its R25 grace ends (it is either listed
//! by the playlist the run continues, or one of that playlist's leftovers). Then one sweep, so
//! what expired while the program was stopped goes at once.

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tracing::{debug, info, warn};

use crate::clock::WallClock;
use crate::error::Error;
use crate::name::{MediaFile, StreamName};
use crate::recording::db::{Db, DbError, DbHandle, DbWorker, SegmentRow, DB_FILE};
use crate::time::{Duration90k, StreamTime};

/// `--record-retention` default: an hour of continuous recording.
pub const DEFAULT_RECORD_RETENTION: Duration = Duration::from_secs(3600);
/// `--clip-retention` default: a week.
pub const DEFAULT_CLIP_RETENTION: Duration = Duration::from_secs(7 * 86_400);
/// `--storage-max` default: 2 GiB per output directory.
pub const DEFAULT_STORAGE_MAX: u64 = 2 << 30;
/// What a marker's clip keeps: this much before the marker's frame...
pub const CLIP_BEFORE: Duration90k = Duration90k::from_secs(5);
/// ... and this much after it (the defaults of `clip.m3u8?before=&after=`).
pub const CLIP_AFTER: Duration90k = Duration90k::from_secs(10);
/// Rows one sweep deletes at most per rule (the next segment's sweep goes on).
const SWEEP_BATCH: usize = 256;
/// 9999-12-31T23:59:59.999Z, the last instant a [`WallClock`] holds.
const LAST_INSTANT: WallClock = WallClock::MAX;
/// Every this many sweeps the directory's byte count is read again from the database.
const RESYNC_SWEEPS: u64 = 64;

/// One stream's recording settings (its flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordingSettings {
    /// `--record-retention`: continuous recording kept this long after it ends (0: only what
    /// clips need).
    pub record_retention: Duration,
    /// `--clip-retention`: a marker's clip kept this long after the marker.
    pub clip_retention: Duration,
    /// `--thumbnail-width`: marker thumbnails are this wide.
    pub thumbnail_width: u32,
}

impl Default for RecordingSettings {
    fn default() -> Self {
        RecordingSettings {
            record_retention: DEFAULT_RECORD_RETENTION,
            clip_retention: DEFAULT_CLIP_RETENTION,
            thumbnail_width: crate::recording::thumbnail::DEFAULT_WIDTH,
        }
    }
}

/// The recording of one output directory: its database (the handle to the thread that holds
/// it), its byte budget, and the settings of each stream recording there. Cheap to clone;
/// shared by the streams' publishers and the server.
#[derive(Clone, Debug)]
pub struct Recordings {
    db: DbHandle,
    dir: PathBuf,
    storage_max: u64,
    /// Bytes of every recorded segment, kept by the database thread.
    bytes: Arc<AtomicU64>,
    streams: Arc<RwLock<HashMap<String, RecordingSettings>>>,
}

/// Opens (creating it) the database of output directory `dir` and checks it: the one place
/// it is opened, once per directory, before any stream starts. A damaged, newer or unwritable
/// database is an error here (never an empty store); the directory is created if missing.
/// The [`DbWorker`] must run on its own thread (`crate::pipeline::spawn_store`).
pub fn open_store(dir: &Path, storage_max: u64) -> Result<(Recordings, DbWorker), Error> {
    fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    let db = Db::open(&dir.join(DB_FILE))?;
    let bytes = db.total_bytes()?;
    let (handle, worker) = DbHandle::new(db);
    info!(
        db = %dir.join(DB_FILE).display(),
        recorded_mb = bytes / 1_000_000,
        storage_max_mb = storage_max / 1_000_000,
        "recording index open"
    );
    Ok((
        Recordings {
            db: handle,
            dir: dir.to_owned(),
            storage_max,
            bytes: Arc::new(AtomicU64::new(bytes)),
            streams: Arc::default(),
        },
        worker,
    ))
}

impl Recordings {
    /// The database's handle (reads for the server).
    pub fn db(&self) -> &DbHandle {
        &self.db
    }

    /// The output directory the segment files are in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn storage_max(&self) -> u64 {
        self.storage_max
    }

    /// The settings stream `name` records with; `None` for a stream that does not record.
    pub fn settings_of(&self, name: &str) -> Option<RecordingSettings> {
        self.streams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .copied()
    }

    fn register(&self, name: &str, settings: RecordingSettings) {
        self.streams
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_owned(), settings);
    }
}

/// What one sweep deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Segments past continuous retention.
    pub expired: usize,
    /// Segments deleted to stay within the storage budget.
    pub evicted: usize,
    pub bytes: u64,
}

/// The state a sweep needs, moved into the database thread's jobs.
#[derive(Clone, Debug)]
struct SweepCtx {
    dir: PathBuf,
    stream: String,
    record_retention: Duration,
    storage_max: u64,
    bytes: Arc<AtomicU64>,
    sweeps: Arc<AtomicU64>,
}

/// Deletes the files of `rows` (ours only; a file already gone is fine), then their rows.
/// Returns how many rows went and their bytes. A file that cannot be deleted keeps its row.
fn delete_rows(db: &mut Db, dir: &Path, rows: &[SegmentRow]) -> Result<(usize, u64), DbError> {
    let mut gone: Vec<(&str, u64)> = Vec::with_capacity(rows.len());
    let mut bytes = 0;
    for r in rows {
        let ours = StreamName::new(&r.stream)
            .ok()
            .and_then(|n| n.parse_file(&r.file))
            == Some(MediaFile::Segment(r.sequence));
        if !ours {
            warn!(stream = %r.stream, file = %r.file, "a recording row names a file that is not ours: row dropped, file left alone");
        } else {
            match fs::remove_file(dir.join(&r.file)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    warn!(file = %r.file, error = %e, "could not delete a recorded segment");
                    continue;
                }
            }
        }
        gone.push((&r.stream, r.sequence));
        bytes += r.bytes;
    }
    let n = db.delete_segments(&gone)?;
    Ok((n, bytes))
}

impl SweepCtx {
    /// Continuous retention of this stream, then the directory's budget.
    fn sweep(&self, db: &mut Db, now: WallClock) -> Result<Swept, DbError> {
        let mut out = Swept::default();
        if self.sweeps.fetch_add(1, Ordering::Relaxed) % RESYNC_SWEEPS == 0 {
            self.bytes.store(db.total_bytes()?, Ordering::Relaxed);
        }
        let keep_ms = i64::try_from(self.record_retention.as_millis()).unwrap_or(i64::MAX);
        let before = WallClock::try_from_unix_millis(now.unix_millis().saturating_sub(keep_ms));
        if let Some(before) = before {
            let rows = db.expired_segments_of(&self.stream, before, now, SWEEP_BATCH)?;
            if !rows.is_empty() {
                let (n, b) = delete_rows(db, &self.dir, &rows)?;
                out.expired = n;
                out.bytes += b;
                self.sub_bytes(b);
            }
        }
        if self.bytes.load(Ordering::Relaxed) > self.storage_max {
            let total = db.total_bytes()?;
            self.bytes.store(total, Ordering::Relaxed);
            let mut over = total.saturating_sub(self.storage_max);
            if over > 0 {
                // Live segments are never candidates: `keep_from` need not hold anything back
                // (and a stream's dates may run ahead of the wall clock: an unpaced input).
                let rows = db.eviction_candidates(now, LAST_INSTANT, SWEEP_BATCH)?;
                let mut take = Vec::new();
                for r in rows {
                    if over == 0 {
                        break;
                    }
                    over = over.saturating_sub(r.bytes);
                    take.push(r);
                }
                if take.is_empty() {
                    debug!(
                        over_bytes = over,
                        "over --storage-max, but only live segments are left"
                    );
                } else {
                    let (n, b) = delete_rows(db, &self.dir, &take)?;
                    out.evicted = n;
                    out.bytes += b;
                    self.sub_bytes(b);
                }
            }
        }
        if out.expired + out.evicted > 0 {
            debug!(stream = %self.stream, expired = out.expired, evicted = out.evicted, bytes = out.bytes, "recording swept");
        }
        Ok(out)
    }

    fn sub_bytes(&self, b: u64) {
        let _ = self
            .bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(b))
            });
    }
}

/// The window of one marker's clip: `[start, end)` kept until `until` (UTC ms).
#[derive(Clone, Copy, Debug)]
struct ClipWindow {
    start_ms: i64,
    end_ms: i64,
    until_ms: i64,
}

/// One stream's side of the recording, driven by its publisher: see the module docs.
#[derive(Debug)]
pub struct Recorder {
    name: StreamName,
    settings: RecordingSettings,
    db: DbHandle,
    ctx: SweepCtx,
    /// Clips whose end is not recorded yet: a segment published inside one is kept for it.
    clips: VecDeque<ClipWindow>,
    lost: Arc<AtomicU64>,
}

impl Recorder {
    /// Starts recording stream `name` into `recordings` (on the stream's own thread, once its
    /// publisher accepted the directory and before the first segment; it waits for the
    /// database). `fresh`: the stream's rows
    /// are deleted first (`--fresh` deletes its files). Then reconciles the rows with the
    /// files and sweeps once (see the module docs).
    pub fn start(
        recordings: &Recordings,
        name: &StreamName,
        settings: RecordingSettings,
        fresh: bool,
    ) -> Result<Recorder, Error> {
        recordings.register(name.as_str(), settings);
        let ctx = SweepCtx {
            dir: recordings.dir.clone(),
            stream: name.as_str().to_owned(),
            record_retention: settings.record_retention,
            storage_max: recordings.storage_max,
            bytes: recordings.bytes.clone(),
            sweeps: Arc::default(),
        };
        let job_ctx = ctx.clone();
        let (dropped, swept) = recordings.db.call_blocking(move |db| {
            let ctx = job_ctx;
            if fresh {
                db.delete_stream(&ctx.stream)?;
            }
            let mut missing = Vec::new();
            for r in db.segments_of(&ctx.stream)? {
                match ctx.dir.join(&r.file).try_exists() {
                    Ok(false) => missing.push((ctx.stream.clone(), r.sequence)),
                    Ok(true) => {}
                    Err(e) => warn!(file = %r.file, error = %e, "cannot tell whether a recorded segment exists"),
                }
            }
            let pairs: Vec<(&str, u64)> = missing.iter().map(|(s, q)| (s.as_str(), *q)).collect();
            let dropped = db.delete_segments(&pairs)?;
            ctx.bytes.store(db.total_bytes()?, Ordering::Relaxed);
            let swept = ctx.sweep(db, WallClock::now())?;
            Ok((dropped, swept))
        })?;
        if dropped > 0 {
            warn!(
                stream = %name,
                rows = dropped,
                "recording rows whose segment file is gone were dropped"
            );
        }
        info!(
            stream = %name,
            record_retention_s = settings.record_retention.as_secs(),
            clip_retention_s = settings.clip_retention.as_secs(),
            expired = swept.expired,
            evicted = swept.evicted,
            "recording"
        );
        Ok(Recorder {
            name: name.clone(),
            settings,
            db: recordings.db.clone(),
            ctx,
            clips: VecDeque::new(),
            lost: Arc::default(),
        })
    }

    /// Calls the database lost so far (its queue was full or it had stopped).
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// Queues `job` without waiting; a lost one is counted and logged.
    fn send(&self, what: &'static str, job: impl FnOnce(&mut Db) + Send + 'static) {
        if let Err(e) = self.db.try_call(job) {
            let n = self.lost.fetch_add(1, Ordering::Relaxed) + 1;
            // Logged at the first loss and then at powers of two, not once a segment.
            if n.is_power_of_two() {
                warn!(stream = %self.name, what, lost = n, error = %e, "recording index call lost");
            }
        }
    }

    /// Segment `sequence` was published (its file written, the playlist listing it): recorded
    /// as live, kept for every clip it overlaps, then a sweep.
    #[allow(clippy::too_many_arguments)]
    pub fn segment_published(
        &mut self,
        sequence: u64,
        start: WallClock,
        start_90k: StreamTime,
        duration: Duration90k,
        bytes: u64,
        discontinuity: bool,
    ) {
        let start_ms = start.unix_millis();
        let end_ms = start_ms + duration.as_millis() as i64;
        // Clips wholly before this segment are done with (segments come in time order).
        while self.clips.front().is_some_and(|c| c.end_ms <= start_ms) {
            self.clips.pop_front();
        }
        let until = self
            .clips
            .iter()
            .filter(|c| c.start_ms < end_ms && c.end_ms > start_ms)
            .map(|c| c.until_ms)
            .max();
        let row = SegmentRow {
            stream: self.name.as_str().to_owned(),
            sequence,
            start,
            start_90k,
            duration,
            bytes,
            discontinuity,
            file: self.name.segment_file(sequence),
            retained_until: until.and_then(WallClock::try_from_unix_millis),
        };
        let ctx = self.ctx.clone();
        self.send("insert", move |db| {
            let r = db.insert_live_segment(&row).and_then(|()| {
                ctx.bytes.fetch_add(row.bytes, Ordering::Relaxed);
                ctx.sweep(db, WallClock::now())
            });
            if let Err(e) = r {
                warn!(stream = %row.stream, sequence = row.sequence, error = %e, "recording index: segment not recorded");
            }
        });
    }

    /// The R25 grace of these segments ended: retention decides from now on. Files without a
    /// row (a lost insert) are deleted now, as the live path always did.
    pub fn release(&mut self, sequences: Vec<u64>) {
        if sequences.is_empty() {
            return;
        }
        let ctx = self.ctx.clone();
        let name = self.name.clone();
        self.send("release", move |db| {
            let r = db.release_segments(&ctx.stream, &sequences).map(|missing| {
                for seq in missing {
                    let file = name.segment_file(seq);
                    match fs::remove_file(ctx.dir.join(&file)) {
                        Ok(()) => debug!(%file, "unrecorded segment deleted after its grace"),
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => warn!(%file, error = %e, "could not delete an expired segment"),
                    }
                }
            });
            let r = r.and_then(|()| ctx.sweep(db, WallClock::now()).map(drop));
            if let Err(e) = r {
                warn!(stream = %ctx.stream, error = %e, "recording index: release failed");
            }
        });
    }

    /// A marker at `at` (UTC of its frame) is published: the segments of its clip are kept
    /// until `at` + `--clip-retention`, those recorded already and those still to come.
    pub fn marker(&mut self, at: WallClock) {
        let clip_ms = i64::try_from(self.settings.clip_retention.as_millis()).unwrap_or(i64::MAX);
        let until_ms = at.unix_millis().saturating_add(clip_ms);
        if until_ms <= WallClock::now().unix_millis() {
            return; // an old marker read back: its clip has expired
        }
        let w = ClipWindow {
            start_ms: at.unix_millis() - CLIP_BEFORE.as_millis() as i64,
            end_ms: at.unix_millis() + CLIP_AFTER.as_millis() as i64,
            until_ms,
        };
        // Markers come in publication order, not time order: keep the deque sorted by end.
        let i = self.clips.partition_point(|c| c.end_ms <= w.end_ms);
        self.clips.insert(i, w);
        let stream = self.ctx.stream.clone();
        self.send("retain", move |db| {
            let (Some(start), Some(end), Some(until)) = (
                WallClock::try_from_unix_millis(w.start_ms),
                WallClock::try_from_unix_millis(w.end_ms),
                WallClock::try_from_unix_millis(w.until_ms),
            ) else {
                return;
            };
            if let Err(e) = db.retain(&stream, start, end, until) {
                warn!(%stream, error = %e, "recording index: a clip's segments not retained");
            }
        });
    }
}

#[cfg(test)]
#[path = "recorder_tests.rs"]
mod tests;
