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
//! file, synced, renamed over it), so it never grows without bound.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::{Marker, DEFAULT_MARKER_CAPACITY};
use crate::time::{Duration90k, StreamTime};

/// Lines above which the log is compacted at start.
pub(crate) const COMPACT_ABOVE: usize = 2 * DEFAULT_MARKER_CAPACITY;

/// Where the marker writer makes markers durable.
pub(crate) trait MarkerLog: Send {
    /// Appends `lines` (whole lines, each ending in `\n`) and returns once they are durable. On
    /// an error none of them is kept: the log is as it was before the call.
    fn append(&mut self, lines: &[u8]) -> io::Result<()>;
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
}

impl Loaded {
    /// The id after every id ever written here.
    pub(crate) fn next_id(&self) -> u64 {
        self.markers.last().map_or(1, |m| m.id + 1)
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
            Ok(m) => out.markers.push(m),
            Err(_) => out.corrupt.push(i + 1),
        }
    }
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
}

impl JsonlFile {
    /// Opens (creating) the log at `path` and reads it back, cutting off a torn last line and
    /// compacting it when it is long. Returns the markers it holds.
    pub(crate) fn open(path: &Path) -> io::Result<(JsonlFile, Loaded)> {
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| annotate(e, "opening", path))?;
        if !existed {
            sync_dir(path)?;
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
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
            file.set_len(loaded.good_len as u64)
                .and_then(|()| file.sync_data())
                .map_err(|e| annotate(e, "repairing", path))?;
        }
        let mut log = JsonlFile {
            file,
            path: path.to_path_buf(),
            len: loaded.good_len as u64,
        };
        if loaded.lines > COMPACT_ABOVE {
            log.compact(
                &loaded.markers[loaded.markers.len().saturating_sub(DEFAULT_MARKER_CAPACITY)..],
            )?;
            info!(
                file = %path.display(),
                lines = loaded.lines,
                kept = loaded.markers.len().min(DEFAULT_MARKER_CAPACITY),
                "marker log compacted"
            );
        }
        log.file
            .seek(SeekFrom::Start(log.len))
            .map_err(|e| annotate(e, "seeking", path))?;
        Ok((log, loaded))
    }

    /// Rewrites the log with `keep` only: temporary file, synced, renamed over the log.
    fn compact(&mut self, keep: &[Marker]) -> io::Result<()> {
        let tmp = self.path.with_extension("jsonl.tmp");
        let mut buf = Vec::new();
        for m in keep {
            write_line(m, &mut buf);
        }
        let result = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(&buf)?;
            f.sync_all()?;
            fs::rename(&tmp, &self.path)?;
            sync_dir(&self.path)?;
            OpenOptions::new().read(true).write(true).open(&self.path)
        })();
        match result {
            Ok(f) => {
                self.file = f;
                self.len = buf.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(annotate(e, "compacting", &self.path))
            }
        }
    }
}

impl MarkerLog for JsonlFile {
    fn append(&mut self, lines: &[u8]) -> io::Result<()> {
        let result = self
            .file
            .write_all(lines)
            .and_then(|()| self.file.sync_data());
        match result {
            Ok(()) => {
                self.len += lines.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Take back whatever part of the batch reached the file, so the next append
                // starts on a clean line.
                let _ = self
                    .file
                    .set_len(self.len)
                    .and_then(|()| self.file.seek(SeekFrom::Start(self.len)).map(drop));
                Err(annotate(e, "appending to", &self.path))
            }
        }
    }
}

fn annotate(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// Makes a new or renamed directory entry durable.
fn sync_dir(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => File::open(".")?.sync_all(),
    }
}

#[cfg(test)]
mod tests {
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
        assert_eq!(loaded.next_id(), 4);
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
        let (mut log, loaded) = JsonlFile::open(&path).unwrap();
        assert_eq!(loaded.markers.len(), 1);
        assert_eq!(loaded.torn_bytes, 13);
        log.append(&lines(&[marker(2, 60, Some("x"))])).unwrap();
        drop(log);
        let (_, again) = JsonlFile::open(&path).unwrap();
        assert_eq!(
            again.markers.iter().map(|m| m.id).collect::<Vec<_>>(),
            vec![1, 2]
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
        let (mut log, loaded) = JsonlFile::open(&path).unwrap();
        assert_eq!(loaded.markers.len(), n as usize);
        log.append(&lines(&[marker(n + 1, (n + 1) * 30, None)]))
            .unwrap();
        let (_, again) = JsonlFile::open(&path).unwrap();
        assert_eq!(again.lines, DEFAULT_MARKER_CAPACITY + 1);
        assert_eq!(
            again.markers.first().unwrap().id,
            n - DEFAULT_MARKER_CAPACITY as u64 + 1
        );
        assert_eq!(again.next_id(), n + 2);
    }
}
