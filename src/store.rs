//! Where a stream's files live: the [`Storage`] the publisher writes through, and its one real
//! implementation, [`MediaDir`], the only filesystem code of the media path. Segments and the
//! playlist are written to a temporary name and renamed into place, so a reader (the HTTP
//! server, nginx, a CDN pulling from disk) never sees half a file (HLS R5, R20). Only files this
//! program names are ever deleted.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::atomic_write::{self, Durability};
use crate::name::{MediaFile, SegmentType, StreamName};

/// What the publisher needs of the place a stream's files go: whole-file writes, reads of the
/// previous playlist, a listing and deletion of segments. Tests use an in-memory store that
/// records the order of these calls.
pub(crate) trait Storage {
    /// Writes segment `sequence` whole; readers never see part of it. Returns the written file,
    /// open for reading, when there is one (the server sends it with `sendfile(2)`).
    fn write_segment(&mut self, sequence: u64, bytes: &[u8]) -> io::Result<Option<fs::File>>;
    /// Writes the fMP4 init segment `NAME<init>.init.mp4` whole, like a segment.
    fn write_init(&mut self, init: u64, bytes: &[u8]) -> io::Result<Option<fs::File>>;
    /// Replaces the playlist whole.
    fn write_playlist(&mut self, text: &str) -> io::Result<()>;
    /// Replaces `NAME.index.m3u8`, the multivariant playlist (atomically, not durably: it is
    /// rewritten with every segment and read by no restart).
    fn write_multivariant(&mut self, text: &str) -> io::Result<()>;
    /// The playlist a previous run left, if any.
    fn read_playlist(&self) -> io::Result<Option<Vec<u8>>>;
    /// Deletes one of this stream's segment or init segment files (`file` as the playlist names
    /// it); a file that is already gone is not an error. Refuses any other name.
    fn delete_segment(&mut self, file: &str) -> io::Result<()>;
    /// This stream's segment files, by sequence number.
    fn list_segments(&self) -> io::Result<Vec<(u64, String)>>;
    /// The stream clock file a previous run left, if any.
    fn read_clock(&self) -> io::Result<Option<Vec<u8>>>;
    /// Writes the stream clock file, durably (it outlives every run).
    fn write_clock(&mut self, text: &str) -> io::Result<()>;
    /// A marker log of this stream exists (its markers are on the stored clock).
    fn has_marker_log(&self) -> io::Result<bool>;
}

/// The media directory of one stream: `NAME.m3u8` and `NAME<seq>.ts`.
#[derive(Clone, Debug)]
pub(crate) struct MediaDir {
    dir: PathBuf,
    name: StreamName,
}

impl MediaDir {
    /// Opens (creating it if needed) the directory for stream `name`.
    pub(crate) fn open(dir: &Path, name: &StreamName) -> io::Result<Self> {
        fs::create_dir_all(dir).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display()))
        })?;
        Ok(MediaDir {
            dir: dir.to_path_buf(),
            name: name.clone(),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }

    /// Where this stream's marker log lives.
    pub(crate) fn markers_path(&self) -> PathBuf {
        self.dir.join(self.name.markers_file())
    }
}

impl Storage for MediaDir {
    fn write_segment(&mut self, sequence: u64, bytes: &[u8]) -> io::Result<Option<fs::File>> {
        self.write_via_temp(&self.name.segment_file(sequence), bytes, false)
            .map(Some)
    }

    fn write_init(&mut self, init: u64, bytes: &[u8]) -> io::Result<Option<fs::File>> {
        self.write_via_temp(&self.name.file(MediaFile::Init(init)), bytes, false)
            .map(Some)
    }

    fn write_playlist(&mut self, text: &str) -> io::Result<()> {
        self.write_atomic(&self.name.playlist_file(), text.as_bytes())
    }

    fn write_multivariant(&mut self, text: &str) -> io::Result<()> {
        self.write_atomic(&self.name.multivariant_file(), text.as_bytes())
    }

    fn read_playlist(&self) -> io::Result<Option<Vec<u8>>> {
        read_if_exists(&self.dir.join(self.name.playlist_file()))
    }

    fn delete_segment(&mut self, file: &str) -> io::Result<()> {
        if !matches!(
            self.name.parse_file(file),
            Some(MediaFile::Segment(_) | MediaFile::Init(_))
        ) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "refusing to delete {file:?}: not a segment of {}",
                    self.name
                ),
            ));
        }
        match fs::remove_file(self.dir.join(file)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            r => r,
        }
    }

    fn list_segments(&self) -> io::Result<Vec<(u64, String)>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            if let Some(name) = entry.file_name().to_str() {
                if let Some(seq) = self.name.parse_segment_file(name) {
                    if entry.file_type()?.is_file() {
                        out.push((seq, name.to_string()));
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn read_clock(&self) -> io::Result<Option<Vec<u8>>> {
        read_if_exists(&self.dir.join(self.name.clock_file()))
    }

    fn write_clock(&mut self, text: &str) -> io::Result<()> {
        // Unlike a segment, this file must survive a power cut: its bytes are synced before the
        // rename (else a crash may leave an empty file under the final name) and the directory
        // entry after it.
        self.write_atomic_durable(&self.name.clock_file(), text.as_bytes())
    }

    fn has_marker_log(&self) -> io::Result<bool> {
        self.dir.join(self.name.markers_file()).try_exists()
    }
}

/// A whole file, or `None` if there is none.
fn read_if_exists(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl MediaDir {
    /// `--fresh`: removes this stream's playlist, segments, clock, marker log and leftover
    /// temporary files. Returns how many files went.
    pub(crate) fn clean(&self) -> io::Result<usize> {
        let mut n = 0;
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            // Either segment type: --fresh also clears a stream that changed --segment-type.
            let ours = self.name.parse_file(&name).is_some()
                || self
                    .name
                    .clone()
                    .with_segment_type(match self.name.segment_type() {
                        SegmentType::Mpegts => SegmentType::Fmp4,
                        SegmentType::Fmp4 => SegmentType::Mpegts,
                    })
                    .parse_file(&name)
                    .is_some()
                || self.parse_temp_name(&name)
                || name == self.name.clock_file()
                || name == self.name.markers_file()
                || name == format!("{}.tmp", self.name.markers_file());
            if ours && entry.file_type()?.is_file() {
                fs::remove_file(entry.path())?;
                n += 1;
            }
        }
        Ok(n)
    }

    fn temp_name(&self, file: &str) -> String {
        format!(".{file}.tmp")
    }

    fn parse_temp_name(&self, file: &str) -> bool {
        file.strip_prefix('.')
            .and_then(|f| f.strip_suffix(".tmp"))
            .is_some_and(|f| self.name.parse_file(f).is_some())
    }

    fn write_atomic(&self, file: &str, bytes: &[u8]) -> io::Result<()> {
        // No fsync: atomicity for readers comes from rename; durability across a power cut is
        // not worth a disk flush per segment for a live stream.
        self.write_via_temp(file, bytes, false).map(drop)
    }

    /// [`Self::write_atomic`], and durable: the file's bytes are on disk before the rename
    /// makes them visible, and the rename is on disk before this returns.
    fn write_atomic_durable(&self, file: &str, bytes: &[u8]) -> io::Result<()> {
        self.write_via_temp(file, bytes, true).map(drop)
    }

    /// Writes `file` through a temporary name; returns it open (for reading, too).
    fn write_via_temp(&self, file: &str, bytes: &[u8], durable: bool) -> io::Result<fs::File> {
        let durability = if durable {
            Durability::Durable
        } else {
            Durability::Atomic
        };
        let path = self.dir.join(file);
        atomic_write::replace(
            &self.dir.join(self.temp_name(file)),
            &path,
            bytes,
            durability,
        )
        .map_err(|e| io::Error::new(e.kind(), format!("writing {}: {e}", path.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_strict() {
        let d = MediaDir {
            dir: PathBuf::from("/nonexistent"),
            name: StreamName::new("chessboard").unwrap(),
        };
        assert_eq!(d.name.parse_segment_file("chessboard12.ts"), Some(12));
        assert_eq!(d.name.parse_segment_file("chessboard0.ts"), Some(0));
        for bad in [
            "chessboard.ts",
            "chessboard012.ts",
            "chessboard1.ts.tmp",
            "other1.ts",
            "chessboard-1.ts",
            "chessboard1.m3u8",
            "../chessboard1.ts",
        ] {
            assert_eq!(d.name.parse_segment_file(bad), None, "{bad}");
            assert!(!d.parse_temp_name(bad), "{bad}");
        }
        assert!(d.parse_temp_name(".chessboard1.ts.tmp"));
        assert!(d.parse_temp_name(".chessboard.m3u8.tmp"));
        assert!(!d.parse_temp_name(".other.m3u8.tmp"));
    }

    /// R5/R20: files appear whole, by rename; clean and delete touch only our names.
    #[test]
    fn r20_atomic_writes_and_careful_deletes() {
        let tmp = tempfile::tempdir().unwrap();
        let mut d = MediaDir::open(tmp.path(), &StreamName::new("cam").unwrap()).unwrap();
        d.write_segment(3, b"abc").unwrap();
        d.write_playlist("#EXTM3U\n").unwrap();
        fs::write(tmp.path().join("keep.txt"), b"x").unwrap();
        fs::write(tmp.path().join(".cam4.ts.tmp"), b"half").unwrap();
        d.write_clock("{}").unwrap();
        fs::write(d.markers_path(), b"{}\n").unwrap();
        fs::write(tmp.path().join("other.markers.jsonl"), b"{}\n").unwrap();
        assert_eq!(fs::read(tmp.path().join("cam3.ts")).unwrap(), b"abc");
        assert_eq!(d.list_segments().unwrap(), vec![(3, "cam3.ts".to_string())]);
        assert!(d.delete_segment("keep.txt").is_err());
        assert_eq!(d.read_clock().unwrap().as_deref(), Some(&b"{}"[..]));
        assert_eq!(d.clean().unwrap(), 5);
        let left: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        let mut left = left;
        left.sort();
        assert_eq!(
            left,
            vec![
                std::ffi::OsString::from("keep.txt"),
                std::ffi::OsString::from("other.markers.jsonl")
            ]
        );
    }
}
