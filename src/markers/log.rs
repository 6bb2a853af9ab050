//! The marker log: `OUT_DIR/NAME.markers.jsonl`, one JSON object per marker per line, only ever
//! appended to, each batch synced to disk (`fdatasync`) before any of its markers is
//! acknowledged.
//!
//! Reading it back is forgiving in the two ways a real file goes wrong: a torn last line (the
//! process died in the middle of a write) is skipped with a warning and cut off, so the next
//! append starts on a clean line; a corrupt line in the middle (edited by hand, a bad disk) is
//! reported with its line number and skipped. Nothing else is lost. `--fresh` removes the file
//! with the stream; nothing else deletes it. When it holds more than [`COMPACT_ABOVE`] lines it
//! is rewritten at start with the newest [`DEFAULT_MARKER_CAPACITY`] markers (to a temporary
//! file, synced, renamed over it), so it never grows without bound; the rewrite starts with a
//! high-water line `{"next_id": N}`, so ids of markers compacted away are not reused. Ids are
//! never reused either after a corrupt or torn line: the largest id readable on it counts.
//!
//! A failed append is cut off again; if even that fails the log is *broken*: it refuses every
//! later append (one would be glued onto the partial line) until a restart repairs it.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::{Marker, DEFAULT_MARKER_CAPACITY};
use crate::atomic_write::{self, sync_parent, Durability};
use crate::time::{Duration90k, StreamTime};

/// Lines above which the log is compacted at start.
pub(crate) const COMPACT_ABOVE: usize = 2 * DEFAULT_MARKER_CAPACITY;

/// The marker store the writer keeps: where markers are made durable and read back. The
/// default is [`JsonlFile`]; tests use one in memory. Only the writer thread calls it.
pub(crate) trait MarkerLog: Send {
    /// Reads back everything the store holds (repairing what a crash left, as [`load`] does).
    fn load(&mut self) -> io::Result<Loaded>;
    /// Appends `markers` and returns once they are durable. On [`AppendError::Refused`] none
    /// of them is kept: the store is as it was before the call.
    fn append(&mut self, markers: &[Marker]) -> Result<(), AppendError>;
    /// Replaces the whole contents with `keep`, remembering that ids below `next_id` are used.
    fn compact(&mut self, keep: &[Marker], next_id: u64) -> io::Result<()>;
}

/// Why an append did not happen.
#[derive(Debug)]
pub(crate) enum AppendError {
    /// Nothing was kept; a later append may work (a full disk that frees up).
    Refused(io::Error),
    /// Part of a batch may be in the store and could not be taken back: the store must not be
    /// appended to again (a later line would be glued onto the partial one) until the process
    /// restarts and the reload cuts the torn tail off.
    Broken(io::Error),
}

impl std::fmt::Display for AppendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppendError::Refused(e) => write!(f, "{e}"),
            AppendError::Broken(e) => write!(
                f,
                "{e}; the log could not be repaired, so it takes no more markers until restart"
            ),
        }
    }
}

/// Loads `log` and compacts it when it holds more than [`COMPACT_ABOVE`] lines (to the newest
/// [`DEFAULT_MARKER_CAPACITY`] markers and the high-water mark of ids).
pub(crate) fn load_and_compact(log: &mut dyn MarkerLog) -> io::Result<Loaded> {
    let loaded = log.load()?;
    if loaded.lines > COMPACT_ABOVE {
        let keep = &loaded.markers[loaded.markers.len().saturating_sub(DEFAULT_MARKER_CAPACITY)..];
        log.compact(keep, loaded.next_id())?;
        info!(
            lines = loaded.lines,
            kept = keep.len(),
            next_id = loaded.next_id(),
            "marker log compacted"
        );
    }
    Ok(loaded)
}

/// The line that keeps the highest id used when the markers holding it are compacted away or
/// were corrupt: ids are never reused.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HighWater {
    next_id: u64,
}

/// One line of the log: the marker as the API shows it, plus its exact times and its key.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    id: u64,
    /// Stream time of the frame, 90 kHz ticks (exact; `time` is derived from it).
    at_90k: u64,
    duration_90k: u64,
    text: String,
    source: String,
    timecode: String,
    program_date_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
}

/// Appends `m` as one line to `out`.
pub(crate) fn write_line(m: &Marker, out: &mut Vec<u8>) {
    let r = Record {
        id: m.id,
        at_90k: m.at.as_u64(),
        duration_90k: m.length.as_u64(),
        text: m.text.clone(),
        source: m.source.clone(),
        timecode: m.timecode.clone(),
        program_date_time: m.program_date_time.clone(),
        key: m.key.clone(),
    };
    serde_json::to_writer(&mut *out, &r).expect("a marker record serialises");
    out.push(b'\n');
}

/// Ids at most this large are believed when read from a damaged line (beyond it the line's
/// bytes are garbage, and ids would run out).
const MAX_PLAUSIBLE_ID: u64 = 1 << 53;

/// The largest number after an `"id"` key anywhere in `line`: the id a damaged line may have
/// held. Conservative: a text that quotes `"id": 9` only makes ids skip ahead.
fn ids_in(line: &[u8]) -> u64 {
    let mut max = 0;
    let mut rest = line;
    while let Some(i) = rest.windows(4).position(|w| w == b"\"id\"") {
        rest = &rest[i + 4..];
        let after = rest.trim_ascii_start();
        let Some(after) = after.strip_prefix(b":") else {
            continue;
        };
        let after = after.trim_ascii_start();
        let digits = after.iter().take_while(|b| b.is_ascii_digit()).count();
        if let Some(n) = std::str::from_utf8(&after[..digits])
            .ok()
            .and_then(|d| d.parse::<u64>().ok())
            .filter(|&n| n <= MAX_PLAUSIBLE_ID)
        {
            max = max.max(n);
        }
    }
    max
}

fn read_line(line: &[u8]) -> Result<Marker, String> {
    let r: Record = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    if r.id == 0 {
        return Err("id 0".into());
    }
    let at = StreamTime(r.at_90k);
    let length = Duration90k(r.duration_90k);
    Ok(Marker {
        id: r.id,
        time: at.as_secs_f64(),
        text: r.text,
        program_date_time: r.program_date_time,
        timecode: r.timecode,
        source: r.source,
        duration: length.as_secs_f64(),
        at,
        length,
        key: r.key,
    })
}

/// What a log's bytes hold.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    /// In id order, each id once.
    pub(crate) markers: Vec<Marker>,
    /// Whole lines read (good or not).
    pub(crate) lines: usize,
    /// Line numbers (1-based) of corrupt lines that were skipped.
    pub(crate) corrupt: Vec<usize>,
    /// Bytes of a torn last line (no newline), cut off.
    pub(crate) torn_bytes: usize,
    /// Length of the good prefix: everything up to the last newline.
    pub(crate) good_len: usize,
    /// The highest id any line held or named: good markers, corrupt and torn lines (as far as
    /// an id can be read from them) and high-water lines.
    pub(crate) max_id: u64,
}

impl Loaded {
    /// The id after every id ever written here, even on a line that is now unreadable.
    pub(crate) fn next_id(&self) -> u64 {
        self.max_id + 1
    }
}

/// Reads a log's bytes. Never fails: bad lines are counted and skipped (the caller warns).
pub(crate) fn load(bytes: &[u8]) -> Loaded {
    let mut out = Loaded::default();
    let good_len = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    out.good_len = good_len;
    out.torn_bytes = bytes.len() - good_len;
    for (i, line) in bytes[..good_len]
        .split_inclusive(|&b| b == b'\n')
        .enumerate()
    {
        out.lines += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match read_line(line) {
            Ok(m) => {
                out.max_id = out.max_id.max(m.id);
                out.markers.push(m);
            }
            Err(_) => match serde_json::from_slice::<HighWater>(line) {
                Ok(h) => out.max_id = out.max_id.max(h.next_id.saturating_sub(1)),
                Err(_) => {
                    out.max_id = out.max_id.max(ids_in(line));
                    out.corrupt.push(i + 1);
                }
            },
        }
    }
    // A torn line was never acknowledged, but its id may have been handed out: skip it too.
    out.max_id = out.max_id.max(ids_in(&bytes[good_len..]));
    out.markers.sort_by_key(|m| m.id);
    out.markers.dedup_by_key(|m| m.id);
    out
}

/// The log file of one stream.
#[derive(Debug)]
pub(crate) struct JsonlFile {
    file: File,
    path: PathBuf,
    len: u64,
    /// A failed append could not be taken back: no more appends.
    broken: bool,
    lines: Vec<u8>,
}

impl JsonlFile {
    /// Opens (creating) the log at `path`; [`MarkerLog::load`] reads it.
    pub(crate) fn open(path: &Path) -> io::Result<JsonlFile> {
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| annotate(e, "opening", path))?;
        if !existed {
            sync_parent(path)?;
        }
        Ok(JsonlFile {
            file,
            path: path.to_path_buf(),
            len: 0,
            broken: false,
            lines: Vec::with_capacity(64 * 1024),
        })
    }
}

impl MarkerLog for JsonlFile {
    /// Reads the file back, cutting off a torn last line; appends go after the good lines.
    fn load(&mut self) -> io::Result<Loaded> {
        let path = &self.path;
        let mut bytes = Vec::new();
        self.file
            .seek(SeekFrom::Start(0))
            .and_then(|_| self.file.read_to_end(&mut bytes))
            .map_err(|e| annotate(e, "reading", path))?;
        let loaded = load(&bytes);
        for line in &loaded.corrupt {
            warn!(file = %path.display(), line, "corrupt marker line skipped");
        }
        if loaded.torn_bytes > 0 {
            warn!(
                file = %path.display(),
                bytes = loaded.torn_bytes,
                "the last marker line was torn (a crash while writing it); skipped and cut off"
            );
            self.file
                .set_len(loaded.good_len as u64)
                .and_then(|()| self.file.sync_data())
                .map_err(|e| annotate(e, "repairing", path))?;
        }
        self.len = loaded.good_len as u64;
        self.file
            .seek(SeekFrom::Start(self.len))
            .map_err(|e| annotate(e, "seeking", path))?;
        Ok(loaded)
    }

    fn append(&mut self, markers: &[Marker]) -> Result<(), AppendError> {
        if self.broken {
            return Err(AppendError::Broken(io::Error::other(format!(
                "an earlier write to {} could not be taken back",
                self.path.display()
            ))));
        }
        self.lines.clear();
        for m in markers {
            write_line(m, &mut self.lines);
        }
        let r = append_or_roll_back(&mut self.file, self.len, &self.lines);
        match r {
            Ok(()) => {
                self.len += self.lines.len() as u64;
                Ok(())
            }
            Err(AppendError::Refused(e)) => Err(AppendError::Refused(annotate(
                e,
                "appending to",
                &self.path,
            ))),
            Err(AppendError::Broken(e)) => {
                self.broken = true;
                Err(AppendError::Broken(annotate(e, "appending to", &self.path)))
            }
        }
    }

    /// Rewrites the log with `keep` only (after a high-water line): temporary file, synced,
    /// renamed over the log.
    fn compact(&mut self, keep: &[Marker], next_id: u64) -> io::Result<()> {
        let tmp = self.path.with_extension("jsonl.tmp");
        let mut buf = serde_json::to_vec(&HighWater { next_id }).expect("serialises");
        buf.push(b'\n');
        for m in keep {
            write_line(m, &mut buf);
        }
        // Open at its end, where the next append goes.
        self.file = atomic_write::replace(&tmp, &self.path, &buf, Durability::Durable)
            .map_err(|e| annotate(e, "compacting", &self.path))?;
        self.len = buf.len() as u64;
        Ok(())
    }
}

/// What an append needs of the file (a trait so that tests can make each step fail).
trait AppendTarget: Write {
    fn sync_data(&mut self) -> io::Result<()>;
    /// Truncates to `len` and puts the write position there.
    fn roll_back_to(&mut self, len: u64) -> io::Result<()>;
}

impl AppendTarget for File {
    fn sync_data(&mut self) -> io::Result<()> {
        File::sync_data(self)
    }

    fn roll_back_to(&mut self, len: u64) -> io::Result<()> {
        self.set_len(len)?;
        self.seek(SeekFrom::Start(len))?;
        File::sync_data(self)
    }
}

/// Writes and syncs `lines` at the end of a file `len` bytes long. On a failure whatever part
/// reached the file is cut off again (`Refused`); if even that fails the file may end in a
/// partial line (`Broken`), and nothing may be appended after it.
fn append_or_roll_back(
    file: &mut impl AppendTarget,
    len: u64,
    lines: &[u8],
) -> Result<(), AppendError> {
    match file.write_all(lines).and_then(|()| file.sync_data()) {
        Ok(()) => Ok(()),
        Err(e) => match file.roll_back_to(len) {
            Ok(()) => Err(AppendError::Refused(e)),
            Err(undo) => {
                tracing::error!(error = %e, undo = %undo, "a failed marker write could not be taken back");
                Err(AppendError::Broken(io::Error::new(
                    e.kind(),
                    format!("{e} (and taking it back failed: {undo})"),
                )))
            }
        },
    }
}

fn annotate(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::markers::tests::marker;

    fn lines(markers: &[Marker]) -> Vec<u8> {
        let mut b = Vec::new();
        for m in markers {
            write_line(m, &mut b);
        }
        b
    }

    #[test]
    fn lines_round_trip_exactly() {
        let ms = [marker(1, 31, Some("k-1")), marker(2, 95, None)];
        let loaded = load(&lines(&ms));
        assert_eq!(loaded.markers, ms);
        assert_eq!((loaded.lines, loaded.torn_bytes), (2, 0));
        assert!(loaded.corrupt.is_empty());
        assert_eq!(loaded.next_id(), 3);
    }

    #[test]
    fn a_torn_last_line_and_a_corrupt_middle_line_lose_nothing_else() {
        let mut b = lines(&[marker(1, 30, None)]);
        b.extend_from_slice(b"{\"id\": 2, this is not json\n");
        b.extend_from_slice(&lines(&[marker(3, 90, None)]));
        let good_len = b.len();
        let torn = lines(&[marker(4, 120, None)]);
        b.extend_from_slice(&torn[..torn.len() / 2]);
        let loaded = load(&b);
        assert_eq!(
            loaded.markers.iter().map(|m| m.id).collect::<Vec<_>>(),
            vec![1, 3]
        );
        assert_eq!(loaded.corrupt, vec![2]);
        assert_eq!(loaded.good_len, good_len);
        assert_eq!(loaded.torn_bytes, torn.len() / 2);
        // The torn line was never acknowledged, but its id 4 was handed out: never again.
        assert_eq!(loaded.next_id(), 5);
    }

    #[test]
    fn empty_and_blank() {
        let l = load(b"");
        assert!(l.markers.is_empty() && l.corrupt.is_empty());
        assert_eq!(l.next_id(), 1);
        let l = load(b"\n\n");
        assert!(l.markers.is_empty() && l.corrupt.is_empty());
    }

    /// The file: a torn tail is cut off on open, appends go after the good lines, a reopen reads
    /// everything back.
    #[test]
    fn file_repairs_a_torn_tail_and_appends_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cam.markers.jsonl");
        let mut b = lines(&[marker(1, 30, None)]);
        b.extend_from_slice(b"{\"id\":2,\"at_9");
        fs::write(&path, &b).unwrap();
        let mut log = JsonlFile::open(&path).unwrap();
        let loaded = load_and_compact(&mut log).unwrap();
        assert_eq!(loaded.markers.len(), 1);
        assert_eq!(loaded.torn_bytes, 13);
        // The torn line may have been given id 2: it is not handed out again.
        assert_eq!(loaded.next_id(), 3);
        log.append(&[marker(3, 60, Some("x"))]).unwrap();
        drop(log);
        let again = JsonlFile::open(&path).unwrap().load().unwrap();
        assert_eq!(
            again.markers.iter().map(|m| m.id).collect::<Vec<_>>(),
            vec![1, 3]
        );
        assert!(again.corrupt.is_empty() && again.torn_bytes == 0);
    }

    #[test]
    fn a_long_log_is_compacted_to_the_newest_markers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cam.markers.jsonl");
        let n = COMPACT_ABOVE as u64 + 5;
        let all: Vec<Marker> = (1..=n).map(|i| marker(i, i * 30, None)).collect();
        fs::write(&path, lines(&all)).unwrap();
        let mut log = JsonlFile::open(&path).unwrap();
        let loaded = load_and_compact(&mut log).unwrap();
        assert_eq!(loaded.markers.len(), n as usize);
        log.append(&[marker(n + 1, (n + 1) * 30, None)]).unwrap();
        let again = JsonlFile::open(&path).unwrap().load().unwrap();
        // The high-water line, the newest markers, the one appended.
        assert_eq!(again.lines, DEFAULT_MARKER_CAPACITY + 2);
        assert_eq!(
            again.markers.first().unwrap().id,
            n - DEFAULT_MARKER_CAPACITY as u64 + 1
        );
        assert_eq!(again.next_id(), n + 2);
    }

    /// Ids are never reused: a corrupt last line keeps its id (as far as one can be read), and
    /// compaction, which drops the corrupt line, keeps the high-water mark.
    #[test]
    fn a_corrupt_last_line_keeps_its_id_through_compaction() {
        let mut b = lines(&[marker(1, 30, None), marker(2, 60, None)]);
        b.extend_from_slice(b"{\"id\": 3, \"at_90k\": oops}\n");
        let l = load(&b);
        assert_eq!(l.corrupt, vec![3]);
        assert_eq!(l.markers.len(), 2);
        assert_eq!(l.next_id(), 4, "id 3 was written once: never again");
        // Garbage with no readable id, or an absurd one, changes nothing.
        let mut g = lines(&[marker(1, 30, None)]);
        g.extend_from_slice(b"\x00\x00garbage\n{\"id\": 99999999999999999999999}\n");
        assert_eq!(load(&g).next_id(), 2);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cam.markers.jsonl");
        fs::write(&path, &b).unwrap();
        let mut log = JsonlFile::open(&path).unwrap();
        let loaded = log.load().unwrap();
        log.compact(&loaded.markers[1..], loaded.next_id()).unwrap();
        drop(log);
        let again = JsonlFile::open(&path).unwrap().load().unwrap();
        assert!(
            again.corrupt.is_empty(),
            "the high-water line is not corrupt"
        );
        assert_eq!(
            again.markers.iter().map(|m| m.id).collect::<Vec<_>>(),
            vec![2]
        );
        assert_eq!(again.next_id(), 4);
    }

    /// A file whose writes and truncations can be told to fail.
    #[derive(Default)]
    struct Flaky {
        bytes: Vec<u8>,
        /// Bytes a write accepts before it fails (`None`: all).
        write_room: Option<usize>,
        fail_roll_back: bool,
    }

    impl Write for Flaky {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            match self.write_room {
                Some(0) => Err(io::Error::other("disk full")),
                Some(room) => {
                    let n = room.min(buf.len());
                    self.bytes.extend_from_slice(&buf[..n]);
                    self.write_room = Some(room - n);
                    Ok(n)
                }
                None => {
                    self.bytes.extend_from_slice(buf);
                    Ok(buf.len())
                }
            }
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl AppendTarget for Flaky {
        fn sync_data(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn roll_back_to(&mut self, len: u64) -> io::Result<()> {
            if self.fail_roll_back {
                return Err(io::Error::other("EIO on truncate"));
            }
            self.bytes.truncate(len as usize);
            Ok(())
        }
    }

    /// A failed write is taken back (the file ends on a whole line); when taking it back fails
    /// too, the append says the log is broken.
    #[test]
    fn a_failed_append_is_taken_back_or_the_log_is_broken() {
        let good = lines(&[marker(1, 30, None)]);
        let batch = lines(&[marker(2, 60, None), marker(3, 90, None)]);
        let mut f = Flaky {
            bytes: good.clone(),
            write_room: Some(10),
            ..Flaky::default()
        };
        let r = append_or_roll_back(&mut f, good.len() as u64, &batch);
        assert!(matches!(r, Err(AppendError::Refused(_))), "{r:?}");
        assert_eq!(f.bytes, good, "the partial line is gone");
        f.write_room = Some(10);
        f.fail_roll_back = true;
        let r = append_or_roll_back(&mut f, good.len() as u64, &batch);
        assert!(matches!(r, Err(AppendError::Broken(_))), "{r:?}");
        assert_eq!(f.bytes.len(), good.len() + 10, "a partial line is left");
    }

    /// A broken JsonlFile refuses every later append instead of gluing a line onto the partial
    /// one.
    #[test]
    fn a_broken_log_takes_no_more_appends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cam.markers.jsonl");
        let mut log = JsonlFile::open(&path).unwrap();
        log.load().unwrap();
        log.append(&[marker(1, 30, None)]).unwrap();
        log.broken = true;
        let e = log.append(&[marker(2, 60, None)]).unwrap_err();
        assert!(matches!(e, AppendError::Broken(_)));
        assert!(e.to_string().contains("until restart"), "{e}");
        assert_eq!(fs::read(&path).unwrap(), lines(&[marker(1, 30, None)]));
    }
}
