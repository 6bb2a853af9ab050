//! The one embedded database of an output directory: the recording index (every segment kept
//! on disk, for how long and why) and the markers of every stream written there.
//!
//! SQLite through `rusqlite` (its `bundled` feature builds SQLite from source, so no system
//! library), as moonfire-nvr keeps its index. One file, `OUT_DIR/hls.db`, with its `-wal` and
//! `-shm` beside it.
//!
//! # Durability
//! The journal is a write-ahead log (`journal_mode=WAL`: readers never wait for the writer) and
//! `synchronous=FULL`: every commit syncs the WAL before it returns, so a marker whose insert
//! returned is on disk when the `201` goes out, even across a power cut. `NORMAL` would be
//! enough for consistency in WAL mode (the database is never corrupted) but may lose the last
//! commits on power loss, which breaks the promise of an acknowledged marker. The price is one
//! `fdatasync` per commit: one per segment (every two seconds) and one per marker batch.
//!
//! # Schema
//! Migrations are numbered in the code ([`MIGRATIONS`]): the database's `PRAGMA user_version`
//! says how many have run; opening runs the rest, each in its own transaction with the new
//! version. A database with a version above what this binary knows is refused (a downgrade
//! would misread it).
//!
//! ```text
//! streams   name PK | next_marker_id                  ids are per stream, never reused
//!           | max_segment_ms                           bounds the range scans below
//! segments  (stream, sequence) PK | start_ms end_ms (UTC) | start_90k duration_90k (stream
//!           time) | bytes | discontinuity | file | retained_until_ms (NULL: no clip needs it)
//!           | live (2: listed or in its R25 grace; never deleted while set)
//!           index (stream, start_ms); index (start_ms) for eviction across streams
//! markers   (stream, id) PK | at_90k duration_90k | pdt_ms program_date_time | timecode
//!           | text | source | key;  UNIQUE (stream, key); index (stream, pdt_ms, id);
//!           index (stream, source, pdt_ms, id)
//! ```
//!
//! # Threads
//! A `rusqlite::Connection` is `Send` but not `Sync`: [`Db`] is a plain blocking value for one
//! thread; [`DbHandle`] (cheap to clone) owns one dedicated thread that holds the `Db` and runs
//! the calls sent to it in order, through a bounded queue, each answered on a oneshot channel.
//! Async handlers `await` [`DbHandle::call`] (they never block a tokio worker: a full queue
//! makes them wait asynchronously); threads (the encoder's marker path, the publisher) use
//! [`DbHandle::call_blocking`]. One thread for reads and writes keeps it simple: SQLite has
//! one writer anyway, and a page of markers answers in well under a millisecond.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Transaction};

use crate::clock::WallClock;
use crate::markers::Marker;
use crate::time::{Duration90k, StreamTime};

/// The database's file name inside the output directory.
pub const DB_FILE: &str = "hls.db";

/// Suffix the imported marker log is renamed with (`NAME.markers.jsonl.imported`).
pub const IMPORTED_SUFFIX: &str = ".imported";

/// Largest page of markers one query returns.
pub const MAX_PAGE: usize = 1000;

/// The schema, one migration per entry: `user_version` N means the first N have run. Never
/// edit an entry once released; append a new one.
pub const MIGRATIONS: &[&str] = &[
    // 1: streams, segments, markers.
    "CREATE TABLE streams (
        name TEXT PRIMARY KEY NOT NULL,
        next_marker_id INTEGER NOT NULL DEFAULT 1 CHECK (next_marker_id >= 1),
        max_segment_ms INTEGER NOT NULL DEFAULT 0
    ) STRICT;
    CREATE TABLE segments (
        stream TEXT NOT NULL,
        sequence INTEGER NOT NULL,
        start_ms INTEGER NOT NULL,
        end_ms INTEGER NOT NULL CHECK (end_ms >= start_ms),
        start_90k INTEGER NOT NULL,
        duration_90k INTEGER NOT NULL CHECK (duration_90k > 0),
        bytes INTEGER NOT NULL CHECK (bytes >= 0),
        discontinuity INTEGER NOT NULL CHECK (discontinuity IN (0, 1)),
        file TEXT NOT NULL,
        retained_until_ms INTEGER,
        PRIMARY KEY (stream, sequence)
    ) STRICT;
    CREATE INDEX segments_by_time ON segments (stream, start_ms);
    CREATE INDEX segments_by_age ON segments (start_ms);
    CREATE TABLE markers (
        stream TEXT NOT NULL,
        id INTEGER NOT NULL CHECK (id >= 1),
        at_90k INTEGER NOT NULL,
        duration_90k INTEGER NOT NULL,
        pdt_ms INTEGER NOT NULL,
        program_date_time TEXT NOT NULL,
        timecode TEXT NOT NULL,
        text TEXT NOT NULL,
        source TEXT NOT NULL,
        key TEXT,
        PRIMARY KEY (stream, id)
    ) STRICT;
    CREATE UNIQUE INDEX markers_by_key ON markers (stream, key);
    CREATE INDEX markers_by_time ON markers (stream, pdt_ms, id);
    CREATE INDEX markers_by_source ON markers (stream, source, pdt_ms, id);",
    // 2: a segment still listed by its live playlist, or in its R25 grace after it, is `live`:
    // no retention rule or storage budget may delete it. The publisher releases it when the
    // grace ends (or, for a previous run's files, when that run's grace ends).
    "ALTER TABLE segments ADD COLUMN live INTEGER NOT NULL DEFAULT 0 CHECK (live IN (0, 1));",
];

/// Why the database could not be opened or a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// The file is not a database, or its pages are damaged.
    #[error("{}: not a usable SQLite database ({detail}); move it away to start an empty index, or restore a backup", .path.display())]
    Corrupt { path: PathBuf, detail: String },
    /// The file (or its directory) cannot be written.
    #[error("{}: the database cannot be written ({detail}); check the permissions of the file, its -wal and -shm and the directory", .path.display())]
    ReadOnly { path: PathBuf, detail: String },
    /// Written by a newer version of this program.
    #[error("{}: schema version {found} is newer than this program's {known}; run the newer version", .path.display())]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: usize,
    },
    /// Any other SQLite error, with what was being done.
    #[error("{what}: {source}")]
    Sqlite {
        what: &'static str,
        source: rusqlite::Error,
    },
    /// Reading or renaming the marker log.
    #[error("importing {}: {source}", .path.display())]
    Import {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A value out of SQLite's range (an `i64`).
    #[error("{what} {value} is out of range")]
    OutOfRange { what: &'static str, value: u64 },
    /// The database thread is gone (it panicked or the handle was shut down).
    #[error("the database thread has stopped")]
    Closed,
    /// [`DbHandle::try_call`]: the queue is full (the database is slow), the job is dropped.
    #[error("the database is busy: {QUEUE_DEPTH} calls wait already")]
    Busy,
}

impl From<DbError> for crate::error::Error {
    /// Damaged or newer databases need a person (`FailedPrecondition`); one that cannot be
    /// written is an I/O failure; a stopped database thread is `Unavailable`. Every kind but
    /// `InvalidArgument` exits 1.
    fn from(e: DbError) -> Self {
        use crate::error::ErrorKind;
        let kind = match &e {
            DbError::Corrupt { .. } | DbError::NewerSchema { .. } => ErrorKind::FailedPrecondition,
            DbError::ReadOnly { .. } | DbError::Import { .. } => ErrorKind::Io,
            DbError::Closed | DbError::Busy => ErrorKind::Unavailable,
            DbError::Sqlite { .. } | DbError::OutOfRange { .. } => ErrorKind::Internal,
        };
        crate::error::Error::new(kind, e.to_string())
    }
}

/// Attaches what was being done to a rusqlite error.
trait Context<T> {
    fn ctx(self, what: &'static str) -> Result<T, DbError>;
}

impl<T> Context<T> for rusqlite::Result<T> {
    fn ctx(self, what: &'static str) -> Result<T, DbError> {
        self.map_err(|source| DbError::Sqlite { what, source })
    }
}

fn i64_of(what: &'static str, value: u64) -> Result<i64, DbError> {
    i64::try_from(value).map_err(|_| DbError::OutOfRange { what, value })
}

/// One segment kept on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentRow {
    pub stream: String,
    /// Media sequence number (the number in its file name).
    pub sequence: u64,
    /// UTC of its first frame (its `EXT-X-PROGRAM-DATE-TIME`).
    pub start: WallClock,
    /// Stream time of its first frame.
    pub start_90k: StreamTime,
    pub duration: Duration90k,
    pub bytes: u64,
    /// Preceded by `EXT-X-DISCONTINUITY` in the live playlist.
    pub discontinuity: bool,
    /// File name inside the output directory.
    pub file: String,
    /// A clip needs it until then; `None`: only continuous retention keeps it.
    pub retained_until: Option<WallClock>,
}

impl SegmentRow {
    /// UTC just after its last frame, rounded down to the millisecond.
    pub fn end(&self) -> WallClock {
        WallClock::from_unix_millis(self.start.unix_millis() + self.duration.as_millis() as i64)
    }
}

/// A contiguous run of recorded segments, for the timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: WallClock,
    pub end: WallClock,
    pub bytes: u64,
    pub segments: u64,
}

/// Two segments whose dates are at most this far apart are one span (dates are rounded down to
/// the millisecond, so consecutive segments may seem 1 ms apart).
pub const SPAN_TOLERANCE_MS: i64 = 1;

/// What [`Db::insert_marker`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum Inserted {
    /// Stored with a new id (in the returned marker).
    New(Marker),
    /// A marker with the same idempotency key was already stored: that one, unchanged.
    Existing(Marker),
}

impl Inserted {
    pub fn marker(&self) -> &Marker {
        match self {
            Inserted::New(m) | Inserted::Existing(m) => m,
        }
    }
}

/// Where a page of markers continues: the (date, id) of the last marker of the previous page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub pdt_ms: i64,
    pub id: u64,
}

impl fmt::Display for Cursor {
    /// `PDTMS-ID`, e.g. `1764072000123-42`: opaque to clients, safe in a query string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.pdt_ms, self.id)
    }
}

impl std::str::FromStr for Cursor {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        // The date may be negative (before 1970): split at the last '-'.
        let (ms, id) = s
            .rsplit_once('-')
            .ok_or_else(|| format!("cursor {s:?}: expected DATE-ID"))?;
        Ok(Cursor {
            pdt_ms: ms.parse().map_err(|_| format!("cursor {s:?}: bad date"))?,
            id: id.parse().map_err(|_| format!("cursor {s:?}: bad id"))?,
        })
    }
}

/// Filters and paging of a marker listing (`GET /markers`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MarkerQuery {
    /// Markers at or after this date.
    pub from: Option<WallClock>,
    /// Markers before this date.
    pub to: Option<WallClock>,
    /// Only this `source`.
    pub source: Option<String>,
    /// Text contains this (ASCII case-insensitive).
    pub q: Option<String>,
    /// Continue after this marker (from the previous page's `next`).
    pub after: Option<Cursor>,
    /// Newest first (the default listing) rather than oldest first.
    pub newest_first: bool,
    /// At most this many (clamped to 1..=[`MAX_PAGE`]).
    pub limit: usize,
}

/// One page of markers, in the query's order.
#[derive(Clone, Debug, PartialEq)]
pub struct MarkerPage {
    pub markers: Vec<Marker>,
    /// Where the next page starts, when there are more.
    pub next: Option<Cursor>,
}

/// What [`Db::import_marker_log`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportReport {
    /// Markers now in the database from the log.
    pub imported: usize,
    /// Markers of the log already there (an earlier import that stopped before the rename).
    pub already_present: usize,
    /// Line numbers of corrupt lines skipped.
    pub corrupt_lines: Vec<usize>,
    /// Bytes of a torn last line skipped.
    pub torn_bytes: usize,
    /// The stream's next marker id after the import (ids of every line, even unreadable ones,
    /// are never handed out again).
    pub next_id: u64,
    /// Where the log now is.
    pub renamed_to: PathBuf,
}

/// The database: one connection, used from one thread at a time.
pub struct Db {
    conn: Connection,
    path: PathBuf,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db").field("path", &self.path).finish()
    }
}

/// Sorts an open error into corrupt, read-only or other.
fn classify(path: &Path, what: &'static str, e: rusqlite::Error) -> DbError {
    use rusqlite::ffi::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => DbError::Corrupt {
            path: path.to_owned(),
            detail: e.to_string(),
        },
        Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => {
            DbError::ReadOnly {
                path: path.to_owned(),
                detail: e.to_string(),
            }
        }
        _ => DbError::Sqlite { what, source: e },
    }
}

impl Db {
    /// Opens (creating) the database at `path`, checks it and brings its schema up to date.
    /// A file that is not a database, is damaged, or cannot be written is an error here, never
    /// an empty store.
    pub fn open(path: &Path) -> Result<Db, DbError> {
        Self::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
    }

    /// [`Db::open`] with SQLite's own flags (tests open read-only with them).
    fn open_with_flags(path: &Path, flags: OpenFlags) -> Result<Db, DbError> {
        let conn =
            Connection::open_with_flags(path, flags).map_err(|e| classify(path, "opening", e))?;
        // SQLite opens a write-protected file read-only without a word: say so at start, not
        // at the first marker.
        if conn
            .is_readonly(rusqlite::MAIN_DB)
            .map_err(|e| classify(path, "opening", e))?
        {
            return Err(DbError::ReadOnly {
                path: path.to_owned(),
                detail: "SQLite opened it read-only (the file is write-protected)".into(),
            });
        }
        let db = Db {
            conn,
            path: path.to_owned(),
        };
        db.configure()?;
        db.check()?;
        db.migrate()?;
        Ok(db)
    }

    /// A database in memory (tests and benches).
    pub fn open_in_memory() -> Result<Db, DbError> {
        let conn = Connection::open_in_memory().ctx("opening in memory")?;
        let db = Db {
            conn,
            path: PathBuf::from(":memory:"),
        };
        db.migrate()?;
        Ok(db)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn configure(&self) -> Result<(), DbError> {
        let p = &self.path;
        // Reading the header is the first thing that fails on a file that is not a database.
        let mode: String = self
            .conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(|e| classify(p, "setting journal_mode", e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(DbError::ReadOnly {
                path: p.clone(),
                detail: format!("journal_mode stayed {mode:?}, not WAL"),
            });
        }
        self.conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(|e| classify(p, "setting synchronous", e))?;
        self.conn
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| classify(p, "setting busy_timeout", e))?;
        Ok(())
    }

    /// `PRAGMA quick_check`: damaged pages are an error at start. It reads every page, which
    /// for an index of a week of segments and 100,000 markers takes well under a second.
    fn check(&self) -> Result<(), DbError> {
        let p = &self.path;
        let mut stmt = self
            .conn
            .prepare("PRAGMA quick_check")
            .map_err(|e| classify(p, "checking", e))?;
        let problems: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| classify(p, "checking", e))?;
        if problems.len() != 1 || problems[0] != "ok" {
            return Err(DbError::Corrupt {
                path: p.clone(),
                detail: problems.join("; "),
            });
        }
        Ok(())
    }

    /// Runs the migrations this database has not seen, each in its own transaction.
    fn migrate(&self) -> Result<(), DbError> {
        let p = &self.path;
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| classify(p, "reading user_version", e))?;
        if version < 0 || version as usize > MIGRATIONS.len() {
            return Err(DbError::NewerSchema {
                path: p.clone(),
                found: version,
                known: MIGRATIONS.len(),
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self
                .conn
                .unchecked_transaction()
                .map_err(|e| classify(p, "starting a migration", e))?;
            tx.execute_batch(sql)
                .map_err(|e| classify(p, "migrating", e))?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(|e| classify(p, "setting user_version", e))?;
            tx.commit().map_err(|e| classify(p, "migrating", e))?;
            tracing::info!(path = %p.display(), version = i + 1, "database schema migrated");
        }
        Ok(())
    }

    /// The schema version (`user_version`).
    pub fn schema_version(&self) -> Result<usize, DbError> {
        self.conn
            .pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))
            .ctx("reading user_version")
            .map(|v| v as usize)
    }

    fn ensure_stream(tx: &Transaction<'_>, stream: &str) -> Result<(), DbError> {
        tx.execute(
            "INSERT OR IGNORE INTO streams (name) VALUES (?1)",
            params![stream],
        )
        .ctx("adding the stream")?;
        Ok(())
    }

    // ---- segments ----

    /// Records a segment written to disk (replacing a row of the same sequence: a segment
    /// rewritten after a crash).
    pub fn insert_segment(&mut self, s: &SegmentRow) -> Result<(), DbError> {
        self.insert_segment_row(s, false)
    }

    /// Records a segment the live playlist lists now: `live` until [`Db::release_segments`]
    /// (its R25 grace ended), so neither retention nor the storage budget deletes it before.
    pub fn insert_live_segment(&mut self, s: &SegmentRow) -> Result<(), DbError> {
        self.insert_segment_row(s, true)
    }

    fn insert_segment_row(&mut self, s: &SegmentRow, live: bool) -> Result<(), DbError> {
        let tx = self.conn.transaction().ctx("starting a transaction")?;
        Self::ensure_stream(&tx, &s.stream)?;
        let len_ms = s.end().unix_millis() - s.start.unix_millis();
        tx.execute(
            "INSERT OR REPLACE INTO segments (stream, sequence, start_ms, end_ms, start_90k,
                duration_90k, bytes, discontinuity, file, retained_until_ms, live)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                s.stream,
                i64_of("sequence", s.sequence)?,
                s.start.unix_millis(),
                s.end().unix_millis(),
                i64_of("start_90k", s.start_90k.as_u64())?,
                i64_of("duration_90k", s.duration.as_u64())?,
                i64_of("bytes", s.bytes)?,
                s.discontinuity,
                s.file,
                s.retained_until.map(WallClock::unix_millis),
                live,
            ],
        )
        .ctx("inserting a segment")?;
        tx.execute(
            "UPDATE streams SET max_segment_ms = max(max_segment_ms, ?2) WHERE name = ?1",
            params![s.stream, len_ms],
        )
        .ctx("updating max_segment_ms")?;
        tx.commit().ctx("committing a segment")
    }

    const SEGMENT_COLUMNS: &'static str = "stream, sequence, start_ms, start_90k, duration_90k, \
        bytes, discontinuity, file, retained_until_ms";

    fn segment_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<SegmentRow> {
        Ok(SegmentRow {
            stream: r.get(0)?,
            sequence: r.get::<_, i64>(1)? as u64,
            start: WallClock::from_unix_millis(r.get(2)?),
            start_90k: StreamTime(r.get::<_, i64>(3)? as u64),
            duration: Duration90k(r.get::<_, i64>(4)? as u64),
            bytes: r.get::<_, i64>(5)? as u64,
            discontinuity: r.get(6)?,
            file: r.get(7)?,
            retained_until: r.get::<_, Option<i64>>(8)?.map(WallClock::from_unix_millis),
        })
    }

    fn segments_where(
        &self,
        clause: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<SegmentRow>, DbError> {
        let sql = format!("SELECT {} FROM segments {clause}", Self::SEGMENT_COLUMNS);
        let mut stmt = self.conn.prepare_cached(&sql).ctx("preparing")?;
        let rows = stmt
            .query_map(params, Self::segment_of)
            .and_then(|r| r.collect::<Result<Vec<_>, _>>())
            .ctx("reading segments")?;
        Ok(rows)
    }

    fn max_segment_ms(&self, stream: &str) -> Result<i64, DbError> {
        Ok(self
            .conn
            .query_row(
                "SELECT max_segment_ms FROM streams WHERE name = ?1",
                params![stream],
                |r| r.get(0),
            )
            .optional()
            .ctx("reading max_segment_ms")?
            .unwrap_or(0))
    }

    /// The segments of `stream` that overlap `[start, end)`, in time order.
    pub fn segments_in(
        &self,
        stream: &str,
        start: WallClock,
        end: WallClock,
    ) -> Result<Vec<SegmentRow>, DbError> {
        // A segment starting before `start - longest` cannot reach `start`: the index range
        // is bounded on both sides.
        let earliest = start.unix_millis() - self.max_segment_ms(stream)?;
        self.segments_where(
            "WHERE stream = ?1 AND start_ms >= ?2 AND start_ms < ?3 AND end_ms > ?4
             ORDER BY start_ms, sequence",
            params![stream, earliest, end.unix_millis(), start.unix_millis()],
        )
    }

    /// Every segment of `stream`, in sequence order (reconciling with the files at start).
    pub fn segments_of(&self, stream: &str) -> Result<Vec<SegmentRow>, DbError> {
        self.segments_where("WHERE stream = ?1 ORDER BY sequence", params![stream])
    }

    /// What is recorded of `stream`: contiguous runs of segments, oldest first.
    pub fn spans(&self, stream: &str) -> Result<Vec<Span>, DbError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT start_ms, end_ms, bytes FROM segments WHERE stream = ?1
                 ORDER BY start_ms",
            )
            .ctx("preparing")?;
        let mut rows = stmt.query(params![stream]).ctx("reading spans")?;
        let mut spans: Vec<Span> = Vec::new();
        while let Some(r) = rows.next().ctx("reading spans")? {
            let (start, end, bytes): (i64, i64, i64) =
                (r.get(0).ctx("")?, r.get(1).ctx("")?, r.get(2).ctx("")?);
            match spans.last_mut() {
                Some(s) if start <= s.end.unix_millis() + SPAN_TOLERANCE_MS => {
                    s.end = s.end.max(WallClock::from_unix_millis(end));
                    s.bytes += bytes as u64;
                    s.segments += 1;
                }
                _ => spans.push(Span {
                    start: WallClock::from_unix_millis(start),
                    end: WallClock::from_unix_millis(end),
                    bytes: bytes as u64,
                    segments: 1,
                }),
            }
        }
        Ok(spans)
    }

    /// Keeps the segments of `stream` overlapping `[start, end)` at least until `until` (a
    /// marker's clip). Returns how many segments that touched.
    pub fn retain(
        &mut self,
        stream: &str,
        start: WallClock,
        end: WallClock,
        until: WallClock,
    ) -> Result<usize, DbError> {
        let earliest = start.unix_millis() - self.max_segment_ms(stream)?;
        let n = self
            .conn
            .execute(
                "UPDATE segments SET retained_until_ms = max(coalesce(retained_until_ms, ?5), ?5)
                 WHERE stream = ?1 AND start_ms >= ?2 AND start_ms < ?3 AND end_ms > ?4",
                params![
                    stream,
                    earliest,
                    end.unix_millis(),
                    start.unix_millis(),
                    until.unix_millis()
                ],
            )
            .ctx("retaining segments")?;
        Ok(n)
    }

    /// Segments (of every stream) that ended at or before `recorded_before`, that no clip
    /// needs at `now` and that are not live: what continuous retention lets go. Oldest first,
    /// at most `limit`.
    pub fn expired_segments(
        &self,
        recorded_before: WallClock,
        now: WallClock,
        limit: usize,
    ) -> Result<Vec<SegmentRow>, DbError> {
        self.segments_where(
            "WHERE start_ms < ?1 AND end_ms <= ?1 AND live = 0
               AND (retained_until_ms IS NULL OR retained_until_ms <= ?2)
             ORDER BY start_ms LIMIT ?3",
            params![
                recorded_before.unix_millis(),
                now.unix_millis(),
                limit as i64
            ],
        )
    }

    /// Bytes of every segment recorded (the `--storage-max` budget is per directory).
    pub fn total_bytes(&self) -> Result<u64, DbError> {
        self.conn
            .query_row("SELECT coalesce(sum(bytes), 0) FROM segments", [], |r| {
                r.get::<_, i64>(0)
            })
            .ctx("summing bytes")
            .map(|b| b as u64)
    }

    /// What to delete first when the directory is over its budget, at most `limit` rows:
    /// continuous recording that no clip needs at `now`, oldest first; then clip segments,
    /// oldest first. Segments that started at or after `keep_from`, and live segments (listed,
    /// or in their R25 grace), are never candidates.
    pub fn eviction_candidates(
        &self,
        now: WallClock,
        keep_from: WallClock,
        limit: usize,
    ) -> Result<Vec<SegmentRow>, DbError> {
        let mut out = self.segments_where(
            "WHERE start_ms < ?1 AND live = 0
               AND (retained_until_ms IS NULL OR retained_until_ms <= ?2)
             ORDER BY start_ms LIMIT ?3",
            params![keep_from.unix_millis(), now.unix_millis(), limit as i64],
        )?;
        if out.len() < limit {
            out.extend(self.segments_where(
                "WHERE start_ms < ?1 AND live = 0 AND retained_until_ms > ?2
                 ORDER BY start_ms LIMIT ?3",
                params![
                    keep_from.unix_millis(),
                    now.unix_millis(),
                    (limit - out.len()) as i64
                ],
            )?);
        }
        Ok(out)
    }

    /// Deletes the rows of these segments (after their files are gone), in one transaction.
    /// Returns how many rows went.
    pub fn delete_segments(&mut self, which: &[(&str, u64)]) -> Result<usize, DbError> {
        let tx = self.conn.transaction().ctx("starting a transaction")?;
        let mut n = 0;
        {
            let mut stmt = tx
                .prepare_cached("DELETE FROM segments WHERE stream = ?1 AND sequence = ?2")
                .ctx("preparing")?;
            for (stream, seq) in which {
                n += stmt
                    .execute(params![stream, i64_of("sequence", *seq)?])
                    .ctx("deleting a segment")?;
            }
        }
        tx.commit().ctx("committing deletions")?;
        Ok(n)
    }

    /// The R25 grace of these segments of `stream` ended: they are no longer live, and from
    /// now on retention and the storage budget decide when they go. Returns the sequence
    /// numbers that have no row (a segment whose insert was lost): their files are nobody's
    /// recording, and the caller deletes them as the live path always did.
    pub fn release_segments(
        &mut self,
        stream: &str,
        sequences: &[u64],
    ) -> Result<Vec<u64>, DbError> {
        let tx = self.conn.transaction().ctx("starting a transaction")?;
        let mut missing = Vec::new();
        {
            let mut stmt = tx
                .prepare_cached("UPDATE segments SET live = 0 WHERE stream = ?1 AND sequence = ?2")
                .ctx("preparing")?;
            for &seq in sequences {
                if stmt
                    .execute(params![stream, i64_of("sequence", seq)?])
                    .ctx("releasing a segment")?
                    == 0
                {
                    missing.push(seq);
                }
            }
        }
        tx.commit().ctx("committing releases")?;
        Ok(missing)
    }

    /// [`Db::expired_segments`] of one stream (retention is a per-stream setting).
    pub fn expired_segments_of(
        &self,
        stream: &str,
        recorded_before: WallClock,
        now: WallClock,
        limit: usize,
    ) -> Result<Vec<SegmentRow>, DbError> {
        self.segments_where(
            "WHERE stream = ?1 AND start_ms < ?2 AND end_ms <= ?2 AND live = 0
               AND (retained_until_ms IS NULL OR retained_until_ms <= ?3)
             ORDER BY start_ms LIMIT ?4",
            params![
                stream,
                recorded_before.unix_millis(),
                now.unix_millis(),
                limit as i64
            ],
        )
    }

    /// Whether segment `sequence` of `stream` is live (`None`: no row).
    pub fn segment_is_live(&self, stream: &str, sequence: u64) -> Result<Option<bool>, DbError> {
        self.conn
            .query_row(
                "SELECT live FROM segments WHERE stream = ?1 AND sequence = ?2",
                params![stream, i64_of("sequence", sequence)?],
                |r| r.get(0),
            )
            .optional()
            .ctx("reading a segment")
    }

    // ---- markers ----

    const MARKER_COLUMNS: &'static str =
        "id, at_90k, duration_90k, program_date_time, timecode, text, source, key";

    fn marker_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Marker> {
        let at = StreamTime(r.get::<_, i64>(1)? as u64);
        let length = Duration90k(r.get::<_, i64>(2)? as u64);
        Ok(Marker {
            id: r.get::<_, i64>(0)? as u64,
            time: at.as_secs_f64(),
            text: r.get(5)?,
            program_date_time: r.get(3)?,
            timecode: r.get(4)?,
            source: r.get(6)?,
            duration: length.as_secs_f64(),
            at,
            length,
            key: r.get(7)?,
        })
    }

    fn insert_marker_row(tx: &Transaction<'_>, stream: &str, m: &Marker) -> Result<(), DbError> {
        let pdt_ms = WallClock::parse_rfc3339(&m.program_date_time)
            .map(WallClock::unix_millis)
            .ok_or(DbError::OutOfRange {
                what: "program_date_time of marker",
                value: m.id,
            })?;
        tx.prepare_cached(
            "INSERT INTO markers (stream, id, at_90k, duration_90k, pdt_ms, program_date_time,
                timecode, text, source, key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .ctx("preparing")?
        .execute(params![
            stream,
            i64_of("marker id", m.id)?,
            i64_of("at_90k", m.at.as_u64())?,
            i64_of("duration_90k", m.length.as_u64())?,
            pdt_ms,
            m.program_date_time,
            m.timecode,
            m.text,
            m.source,
            m.key,
        ])
        .ctx("inserting a marker")?;
        Ok(())
    }

    fn by_key(conn: &Connection, stream: &str, key: &str) -> Result<Option<Marker>, DbError> {
        let sql = format!(
            "SELECT {} FROM markers WHERE stream = ?1 AND key = ?2",
            Self::MARKER_COLUMNS
        );
        conn.prepare_cached(&sql)
            .ctx("preparing")?
            .query_row(params![stream, key], Self::marker_of)
            .optional()
            .ctx("reading a marker by key")
    }

    /// Stores `markers` of `stream` in one transaction, durably (committed and synced before it
    /// returns). Each gets the stream's next id (the `id` given is ignored); one whose `key`
    /// is already stored is not stored again, and the stored one is returned instead. In the
    /// order given.
    pub fn insert_markers(
        &mut self,
        stream: &str,
        markers: Vec<Marker>,
    ) -> Result<Vec<Inserted>, DbError> {
        let tx = self.conn.transaction().ctx("starting a transaction")?;
        Self::ensure_stream(&tx, stream)?;
        let mut next: i64 = tx
            .query_row(
                "SELECT next_marker_id FROM streams WHERE name = ?1",
                params![stream],
                |r| r.get(0),
            )
            .ctx("reading next_marker_id")?;
        let mut out = Vec::with_capacity(markers.len());
        for mut m in markers {
            if let Some(k) = &m.key {
                if let Some(existing) = Self::by_key(&tx, stream, k)? {
                    out.push(Inserted::Existing(existing));
                    continue;
                }
            }
            m.id = next as u64;
            next += 1;
            Self::insert_marker_row(&tx, stream, &m)?;
            out.push(Inserted::New(m));
        }
        tx.execute(
            "UPDATE streams SET next_marker_id = ?2 WHERE name = ?1",
            params![stream, next],
        )
        .ctx("updating next_marker_id")?;
        tx.commit().ctx("committing markers")?;
        Ok(out)
    }

    /// One marker: [`Db::insert_markers`] of one.
    pub fn insert_marker(&mut self, stream: &str, marker: Marker) -> Result<Inserted, DbError> {
        Ok(self
            .insert_markers(stream, vec![marker])?
            .pop()
            .expect("one in, one out"))
    }

    /// The marker of `stream` with idempotency key `key`.
    pub fn marker_by_key(&self, stream: &str, key: &str) -> Result<Option<Marker>, DbError> {
        Self::by_key(&self.conn, stream, key)
    }

    /// The marker `id` of `stream`.
    pub fn marker(&self, stream: &str, id: u64) -> Result<Option<Marker>, DbError> {
        let sql = format!(
            "SELECT {} FROM markers WHERE stream = ?1 AND id = ?2",
            Self::MARKER_COLUMNS
        );
        self.conn
            .prepare_cached(&sql)
            .ctx("preparing")?
            .query_row(params![stream, i64_of("id", id)?], Self::marker_of)
            .optional()
            .ctx("reading a marker")
    }

    /// The first `limit` markers of `stream` with an id above `id`, in id order (the order they
    /// were accepted: server-sent events catch up with it).
    pub fn markers_after_id(
        &self,
        stream: &str,
        id: u64,
        limit: usize,
    ) -> Result<Vec<Marker>, DbError> {
        let sql = format!(
            "SELECT {} FROM markers WHERE stream = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
            Self::MARKER_COLUMNS
        );
        let mut stmt = self.conn.prepare_cached(&sql).ctx("preparing")?;
        let rows = stmt
            .query_map(
                params![stream, i64_of("id", id)?, limit.min(MAX_PAGE) as i64],
                Self::marker_of,
            )
            .and_then(|r| r.collect::<Result<Vec<_>, _>>())
            .ctx("reading markers")?;
        Ok(rows)
    }

    /// The SQL and parameters of a marker page; one more row than the page is asked for, to
    /// know whether another page follows.
    fn page_sql(stream: &str, q: &MarkerQuery) -> (String, Vec<rusqlite::types::Value>) {
        use rusqlite::types::Value;
        let mut sql = format!(
            "SELECT {}, pdt_ms FROM markers WHERE stream = ?",
            Self::MARKER_COLUMNS
        );
        let mut args: Vec<Value> = vec![Value::Text(stream.to_owned())];
        if let Some(s) = &q.source {
            sql.push_str(" AND source = ?");
            args.push(Value::Text(s.clone()));
        }
        if let Some(f) = q.from {
            sql.push_str(" AND pdt_ms >= ?");
            args.push(Value::Integer(f.unix_millis()));
        }
        if let Some(t) = q.to {
            sql.push_str(" AND pdt_ms < ?");
            args.push(Value::Integer(t.unix_millis()));
        }
        if let Some(c) = q.after {
            // Row values compare lexicographically and use the (…, pdt_ms, id) index.
            sql.push_str(if q.newest_first {
                " AND (pdt_ms, id) < (?, ?)"
            } else {
                " AND (pdt_ms, id) > (?, ?)"
            });
            args.push(Value::Integer(c.pdt_ms));
            args.push(Value::Integer(c.id.min(i64::MAX as u64) as i64));
        }
        if let Some(text) = &q.q {
            sql.push_str(" AND text LIKE ? ESCAPE '\\'");
            let mut pattern = String::with_capacity(text.len() + 2);
            pattern.push('%');
            for c in text.chars() {
                if matches!(c, '%' | '_' | '\\') {
                    pattern.push('\\');
                }
                pattern.push(c);
            }
            pattern.push('%');
            args.push(Value::Text(pattern));
        }
        sql.push_str(if q.newest_first {
            " ORDER BY pdt_ms DESC, id DESC LIMIT ?"
        } else {
            " ORDER BY pdt_ms, id LIMIT ?"
        });
        args.push(Value::Integer(q.limit.clamp(1, MAX_PAGE) as i64 + 1));
        (sql, args)
    }

    /// One page of the markers of `stream` that match `q`, ordered by date (then id), oldest or
    /// newest first. Uses an index whatever the filters (`q` only filters the rows the index
    /// range yields).
    pub fn markers_page(&self, stream: &str, q: &MarkerQuery) -> Result<MarkerPage, DbError> {
        let (sql, args) = Self::page_sql(stream, q);
        let mut stmt = self.conn.prepare_cached(&sql).ctx("preparing")?;
        let mut rows: Vec<(Marker, i64)> = stmt
            .query_map(rusqlite::params_from_iter(args), |r| {
                Ok((Self::marker_of(r)?, r.get::<_, i64>(8)?))
            })
            .and_then(|r| r.collect::<Result<Vec<_>, _>>())
            .ctx("reading markers")?;
        let limit = q.limit.clamp(1, MAX_PAGE);
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|(m, pdt_ms)| Cursor {
                pdt_ms: *pdt_ms,
                id: m.id,
            })
        } else {
            None
        };
        Ok(MarkerPage {
            markers: rows.into_iter().map(|(m, _)| m).collect(),
            next,
        })
    }

    /// SQLite's plan for a marker page (tests check that it uses an index).
    #[cfg(test)]
    fn explain_page(&self, stream: &str, q: &MarkerQuery) -> Result<Vec<String>, DbError> {
        let (sql, args) = Self::page_sql(stream, q);
        let mut stmt = self
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .ctx("preparing")?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
            .and_then(|r| r.collect::<Result<Vec<_>, _>>())
            .ctx("explaining")?;
        Ok(rows)
    }

    /// Markers of `stream` whose date is in `[start, end)`, in date order (a VOD playlist's
    /// DATERANGEs), at most [`MAX_PAGE`] of them... times ten: a 24 h playlist holds every
    /// marker of the day.
    pub fn markers_between(
        &self,
        stream: &str,
        start: WallClock,
        end: WallClock,
        limit: usize,
    ) -> Result<Vec<Marker>, DbError> {
        let sql = format!(
            "SELECT {} FROM markers WHERE stream = ?1 AND pdt_ms >= ?2 AND pdt_ms < ?3
             ORDER BY pdt_ms, id LIMIT ?4",
            Self::MARKER_COLUMNS
        );
        let mut stmt = self.conn.prepare_cached(&sql).ctx("preparing")?;
        let rows = stmt
            .query_map(
                params![stream, start.unix_millis(), end.unix_millis(), limit as i64],
                Self::marker_of,
            )
            .and_then(|r| r.collect::<Result<Vec<_>, _>>())
            .ctx("reading markers")?;
        Ok(rows)
    }

    /// Deletes everything of `stream` (`--fresh`): its segments, markers and id counter.
    pub fn delete_stream(&mut self, stream: &str) -> Result<(), DbError> {
        let tx = self.conn.transaction().ctx("starting a transaction")?;
        for sql in [
            "DELETE FROM segments WHERE stream = ?1",
            "DELETE FROM markers WHERE stream = ?1",
            "DELETE FROM streams WHERE name = ?1",
        ] {
            tx.execute(sql, params![stream]).ctx("deleting a stream")?;
        }
        tx.commit().ctx("committing")
    }

    /// Imports the marker log `path` (`NAME.markers.jsonl`) of `stream` once: every readable
    /// marker with its id and key (a torn last line and corrupt lines are skipped, as the log
    /// reader always did, and their ids are never handed out), in one transaction; then renames
    /// the log to `path` + [`IMPORTED_SUFFIX`], so it is never read again. `Ok(None)` when
    /// there is no log. Safe to repeat after a crash between the commit and the rename: the
    /// markers already there are counted, not doubled.
    pub fn import_marker_log(
        &mut self,
        stream: &str,
        path: &Path,
    ) -> Result<Option<ImportReport>, DbError> {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(DbError::Import {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        let loaded = crate::markers::log::load(&bytes);
        let tx = self.conn.transaction().ctx("starting a transaction")?;
        Self::ensure_stream(&tx, stream)?;
        let (mut imported, mut already_present) = (0, 0);
        for m in &loaded.markers {
            let present: bool = tx
                .query_row(
                    "SELECT count(*) > 0 FROM markers WHERE stream = ?1 AND id = ?2",
                    params![stream, i64_of("marker id", m.id)?],
                    |r| r.get(0),
                )
                .ctx("looking up a marker")?;
            if present {
                already_present += 1;
                continue;
            }
            Self::insert_marker_row(&tx, stream, m)?;
            imported += 1;
        }
        let next_id = i64_of("next marker id", loaded.next_id())?;
        tx.execute(
            "UPDATE streams SET next_marker_id = max(next_marker_id, ?2) WHERE name = ?1",
            params![stream, next_id],
        )
        .ctx("updating next_marker_id")?;
        let next_id: i64 = tx
            .query_row(
                "SELECT next_marker_id FROM streams WHERE name = ?1",
                params![stream],
                |r| r.get(0),
            )
            .ctx("reading next_marker_id")?;
        tx.commit().ctx("committing the import")?;
        let mut renamed = path.as_os_str().to_owned();
        renamed.push(IMPORTED_SUFFIX);
        let renamed_to = PathBuf::from(renamed);
        let import_err = |source| DbError::Import {
            path: path.to_owned(),
            source,
        };
        fs::rename(path, &renamed_to).map_err(import_err)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(import_err)?;
        }
        Ok(Some(ImportReport {
            imported,
            already_present,
            corrupt_lines: loaded.corrupt,
            torn_bytes: loaded.torn_bytes,
            next_id: next_id as u64,
            renamed_to,
        }))
    }
}

/// A job for the database thread.
type Job = Box<dyn FnOnce(&mut Db) + Send>;

/// How many calls may wait for the database thread before callers wait to queue theirs.
pub const QUEUE_DEPTH: usize = 256;

/// A cloneable handle to a [`Db`] owned by one dedicated thread (see the module docs).
#[derive(Clone, Debug)]
pub struct DbHandle {
    tx: tokio::sync::mpsc::Sender<Job>,
}

/// The database's side of a [`DbHandle`]: [`DbWorker::run`] is the body of its thread, which
/// `crate::pipeline::spawn_db` starts (the pipeline is the one module that spawns threads).
pub struct DbWorker {
    db: Db,
    rx: tokio::sync::mpsc::Receiver<Job>,
}

impl DbWorker {
    /// Runs the calls as they come; returns when every handle is dropped (after running the
    /// calls already queued).
    pub fn run(mut self) {
        while let Some(job) = self.rx.blocking_recv() {
            job(&mut self.db);
        }
        tracing::debug!(path = %self.db.path().display(), "database thread stopped");
    }
}

impl DbHandle {
    /// A handle to `db` and the worker that must run on the database's own thread.
    pub fn new(db: Db) -> (DbHandle, DbWorker) {
        let (tx, rx) = tokio::sync::mpsc::channel::<Job>(QUEUE_DEPTH);
        (DbHandle { tx }, DbWorker { db, rx })
    }

    fn job<T: Send + 'static>(
        f: impl FnOnce(&mut Db) -> Result<T, DbError> + Send + 'static,
    ) -> (Job, tokio::sync::oneshot::Receiver<Result<T, DbError>>) {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |db| {
            // The caller may have gone (a client that hung up): nothing to do about it.
            let _ = reply.send(f(db));
        });
        (job, answer)
    }

    /// Runs `f` on the database thread; for async code (waits without blocking the worker).
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Db) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, DbError> {
        let (job, answer) = Self::job(f);
        self.tx.send(job).await.map_err(|_| DbError::Closed)?;
        answer.await.map_err(|_| DbError::Closed)?
    }

    /// Queues `f` for the database thread and returns at once, never waiting: for the media
    /// threads, which a slow or stuck database must not stall. `Err` (the job not queued) when
    /// the queue is full or the thread is gone; the caller counts and logs it.
    pub fn try_call(&self, f: impl FnOnce(&mut Db) + Send + 'static) -> Result<(), DbError> {
        self.tx.try_send(Box::new(f)).map_err(|e| match e {
            tokio::sync::mpsc::error::TrySendError::Full(_) => DbError::Busy,
            tokio::sync::mpsc::error::TrySendError::Closed(_) => DbError::Closed,
        })
    }

    /// Runs `f` on the database thread and waits for it; for plain threads only (it panics
    /// inside an async runtime, as blocking there would stall it).
    pub fn call_blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Db) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, DbError> {
        let (job, answer) = Self::job(f);
        self.tx.blocking_send(job).map_err(|_| DbError::Closed)?;
        answer.blocking_recv().map_err(|_| DbError::Closed)?
    }
}

#[cfg(test)]
#[path = "db_tests.rs"]
mod tests;
